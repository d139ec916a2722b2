#!/usr/bin/python3
"""What the diskwin test kernel (tests/firmware/diskwin.s) computes and
writes, from a raw copy of its disk (qemu-img convert -O raw).

    disk-sum.py sum RAW           the checksum diskwin prints: h = h *
                                  0x01000193 + d over the disk's
                                  little-endian dwords d, from 0 (hex)
    disk-sum.py window OLD NEW    NEW is OLD but for diskwin's window
                                  (sectors 2049..4096), which holds pass
                                  P's pattern, or P's up to some sector and
                                  P-1's after it (stopped mid-pass);
                                  prints P, fails naming the difference
"""
import struct
import sys

FIRST, WINDOW = 2049, 2048


def checksum(data):
    h = 0
    for (d,) in struct.iter_unpack('<I', data):
        h = (h * 0x01000193 + d) & 0xffffffff
    return '%08x' % h


def pattern(lba, p):
    base = (lba * 0x01000193) & 0xffffffff
    return struct.pack('<128I', *[base ^ i ^ (p << 16) ^ 0x5a5a0000
                                  for i in range(128)])


def window(old, new):
    if len(old) != len(new):
        sys.exit('sizes differ: %d and %d' % (len(old), len(new)))
    lo = FIRST * 512
    hi = min(len(old), (FIRST + WINDOW) * 512)
    if old[:lo] != new[:lo]:
        sys.exit('bytes before the window changed')
    if old[hi:] != new[hi:]:
        sys.exit('bytes past the window changed')
    first = struct.unpack_from('<I', new, lo)[0]
    p = ((first ^ ((FIRST * 0x01000193) & 0xffffffff)) ^ 0x5a5a0000) >> 16
    cur = p
    for lba in range(FIRST, hi // 512):
        sector = new[lba * 512:(lba + 1) * 512]
        if sector != pattern(lba, cur):
            if cur == p and p > 1 and sector == pattern(lba, p - 1):
                cur = p - 1
            else:
                sys.exit('sector %d does not hold pass %d' % (lba, cur))
    print(p)


def main():
    if len(sys.argv) == 3 and sys.argv[1] == 'sum':
        print(checksum(open(sys.argv[2], 'rb').read()))
    elif len(sys.argv) == 4 and sys.argv[1] == 'window':
        window(open(sys.argv[2], 'rb').read(), open(sys.argv[3], 'rb').read())
    else:
        sys.exit(__doc__)


main()

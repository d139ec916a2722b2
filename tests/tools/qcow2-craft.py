#!/usr/bin/python3
"""Hostile qcow2 images for the tests, built from nothing (or patched into
an image hop made), so no large binary needs to be kept in the repository.

    qcow2-craft.py dup-refblocks OUT     one refcount block named by every
                                         entry of an 8 MiB refcount table
    qcow2-craft.py many-problems OUT     a 1 MiB image with ~100k problems:
                                         12 L2 tables of entries past the
                                         end, each named by ~680 L1 entries
    qcow2-craft.py shared-l1 OUT         65536 snapshots sharing one L1
                                         table whose 8192 entries all name
                                         one L2 table
    qcow2-craft.py point IMG GUEST WHAT  make the L2 entry of guest offset
                                         GUEST point (COPIED) at WHAT:
                                         l1, refcount-table, refcount-block
                                         or l2 (the first L2 table)
    qcow2-craft.py zero-rc IMG WHAT      set the refcount of WHAT (as above)
                                         to 0
    qcow2-craft.py offset IMG WHAT       print WHAT's host offset
"""
import struct
import sys

MAGIC = 0x514649FB


def header(cluster_bits, size, l1_size, l1_off, rt_off, rt_clusters,
           refcount_order, nb_snapshots=0, snapshots_off=0):
    h = struct.pack(">IIQIIQIIQQIIQQQQII", MAGIC, 3, 0, 0, cluster_bits, size,
                    0, l1_size, l1_off, rt_off, rt_clusters, nb_snapshots,
                    snapshots_off, 0, 0, 0, refcount_order, 112)
    return h + bytes(8)   # to header_length; then zeros end the extensions


def write_clusters(path, cs, nclusters, parts):
    """parts: {cluster index: bytes}; the rest of the file is zeros."""
    with open(path, "wb") as f:
        f.truncate(cs * nclusters)
        for idx, data in sorted(parts.items()):
            f.seek(idx * cs)
            f.write(data)


def be64s(values):
    return b"".join(struct.pack(">Q", v) for v in values)


def refblock16(nclusters, cs):
    """16-bit refcounts of 1 for clusters 0..nclusters-1."""
    return (struct.pack(">H", 1) * nclusters).ljust(cs, b"\0")


def dup_refblocks(out):
    # 2 MiB clusters, 1-bit refcounts: 0 header, 1-4 refcount table
    # (8 MiB, 1M entries), 5 the one refcount block, 6 the L1 table.
    bits, cs = 21, 1 << 21
    rb = 5 * cs
    parts = {
        0: header(bits, 1 << 30, 1, 6 * cs, 1 * cs, 4, 0),
        1: be64s([rb] * (4 * cs // 8)),
        5: bytes([0x7F]),            # clusters 0..6 have refcount 1
    }
    write_clusters(out, cs, 7, parts)


def many_problems(out):
    # 64 KiB clusters: 0 header, 1 refcount table, 2 refcount block, 3 the
    # L1 table (8192 entries), 4-15 twelve L2 tables whose 8192 entries all
    # point past the end of the file.
    bits, cs = 16, 1 << 16
    n_l2 = 12
    parts = {
        0: header(bits, 1 << 40, 8192, 3 * cs, 1 * cs, 1, 4),
        1: be64s([2 * cs]),
        2: refblock16(4 + n_l2, cs),
        3: be64s([((4 + i % n_l2) * cs) | (1 << 63) for i in range(8192)]),
    }
    l2 = be64s([(1 << 40) + k * cs for k in range(8192)])
    for i in range(n_l2):
        parts[4 + i] = l2
    write_clusters(out, cs, 4 + n_l2, parts)


def shared_l1(out):
    # 64 KiB clusters: 0 header, 1 refcount table, 2 refcount block, 3 the
    # active L1 (1 entry), 4 the L1 table every snapshot names (8192
    # entries, all pointing at cluster 5), 5 an empty L2 table, 6.. the
    # snapshot table.
    bits, cs = 16, 1 << 16
    nsnap = 65536
    table = bytearray()
    for i in range(nsnap):
        sid = str(i + 1).encode()
        name = b"s%d" % i
        e = struct.pack(">QIHHIIQII", 4 * cs, 8192, len(sid), len(name), 0, 0,
                        0, 0, 24)
        e += struct.pack(">QQq", 0, 1 << 29, -1) + sid + name
        table += e + bytes(-len(e) % 8)
    table_clusters = -(-len(table) // cs)
    nclusters = 6 + table_clusters
    parts = {
        0: header(bits, 1 << 29, 1, 3 * cs, 1 * cs, 1, 4, nsnap, 6 * cs),
        1: be64s([2 * cs]),
        2: refblock16(nclusters, cs),
        4: be64s([5 * cs] * 8192),
        6: bytes(table),
    }
    write_clusters(out, cs, nclusters, parts)


class Image:
    def __init__(self, path):
        self.path = path
        self.f = open(path, "r+b")
        h = self.read(0, 112)
        self.cluster_bits = struct.unpack(">I", h[20:24])[0]
        self.cs = 1 << self.cluster_bits
        self.l1_size = struct.unpack(">I", h[36:40])[0]
        self.l1_off = struct.unpack(">Q", h[40:48])[0]
        self.rt_off = struct.unpack(">Q", h[48:56])[0]
        self.refcount_order = struct.unpack(">I", h[96:100])[0]

    def read(self, off, n):
        self.f.seek(off)
        return self.f.read(n)

    def write(self, off, data):
        self.f.seek(off)
        self.f.write(data)

    def u64(self, off):
        return struct.unpack(">Q", self.read(off, 8))[0]

    def l2_entry_addr(self, guest):
        l2_bits = self.cluster_bits - 3
        l1i = guest >> (self.cluster_bits + l2_bits)
        l2i = (guest >> self.cluster_bits) & ((1 << l2_bits) - 1)
        l2 = self.u64(self.l1_off + 8 * l1i) & 0x00FFFFFFFFFFFE00
        if not l2:
            sys.exit("guest offset %#x has no L2 table" % guest)
        return l2 + 8 * l2i

    def offset_of(self, what):
        if what == "header":
            return 0
        if what == "l1":
            return self.l1_off
        if what == "refcount-table":
            return self.rt_off
        if what == "refcount-block":
            return self.u64(self.rt_off) & ~0x1FF
        if what == "l2":
            return self.u64(self.l1_off) & 0x00FFFFFFFFFFFE00
        sys.exit("unknown structure %s" % what)

    def set_refcount(self, cluster, value):
        if self.refcount_order != 4:
            sys.exit("only 16-bit refcounts are patched")
        per_block = self.cs * 8 // 16
        rb = self.u64(self.rt_off + 8 * (cluster // per_block)) & ~0x1FF
        self.write(rb + 2 * (cluster % per_block), struct.pack(">H", value))


def main(argv):
    cmd = argv[1] if len(argv) > 1 else ""
    if cmd == "dup-refblocks":
        dup_refblocks(argv[2])
    elif cmd == "many-problems":
        many_problems(argv[2])
    elif cmd == "shared-l1":
        shared_l1(argv[2])
    elif cmd == "point":
        img = Image(argv[2])
        target = img.offset_of(argv[4])
        img.write(img.l2_entry_addr(int(argv[3], 0)),
                  struct.pack(">Q", target | (1 << 63)))
    elif cmd == "zero-rc":
        img = Image(argv[2])
        img.set_refcount(img.offset_of(argv[3]) >> img.cluster_bits, 0)
    elif cmd == "offset":
        print(Image(argv[2]).offset_of(argv[3]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)

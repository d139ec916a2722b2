#!/usr/bin/env bash
# Seeds the fuzz corpora from the fixtures: golden and QEMU-made streams,
# QEMU-made images, hostile inputs kept as regression files, and a few
# small images made here with qemu-img.  Seeds are named by their content,
# so running this again adds nothing twice.
#   tests/fuzz/make-seeds.sh CORPUS_ROOT
set -eu
cd "$(dirname "$0")/../.."
root=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

add() {   # add TARGET FILE
    mkdir -p "$root/$1"
    cp "$2" "$root/$1/seed-$(sha1sum "$2" | cut -c1-16)"
}

# Streams: hop's golden file, QEMU's streams, hostile regression streams.
streams=(tests/fixtures/golden/*.stream)
for x in tests/fixtures/qemu/*.stream.xz; do
    out=$tmp/$(basename "$x" .xz)
    xz -dc "$x" >"$out"
    streams+=("$out")
done
# hop's own machine streams (what an incoming migration really reads),
# from a small machine of each guest, saved through exec: as a migration.
hop=${HOP:-build/hop}
if [ -x "$hop" ]; then
    for g in counter memtest echo; do
        for smp in 1 2; do
            out=$tmp/hop-$g-$smp.stream
            printf 'migrate "exec:cat > %s"\nquit\n' "$out" |
                timeout 60 "$hop" run -m 2M -smp $smp -guest $g -serial none \
                    -monitor stdio >/dev/null 2>&1 || true
            [ -s "$out" ] && streams+=("$out")
        done
    done
fi
for f in tests/fixtures/hostile/*.stream; do
    [ -e "$f" ] && streams+=("$f")
done
for s in "${streams[@]}"; do
    # The fuzzer's inputs stay small: keep the first 64 KiB of big streams
    # (their vmdesc is lost, the walk up to it is not).
    if [ "$(stat -c %s "$s")" -gt 65536 ]; then
        head -c 65536 "$s" >"$tmp/cut" && s2=$tmp/cut
    else
        s2=$s
    fi
    add inspect "$s2"
    add stream_load "$s2"
done

# vmdesc: each device entry of each stream's vmdesc, a NUL, then bytes
# from the stream's start (the decoder needs a payload, any payload).
# RAM: the body of each stream's ram START section up to its footer.
/usr/bin/python3 - "$tmp" "${streams[@]}" <<'PY'
import json, os, struct, sys
out = sys.argv[1]
n = 0
for path in sys.argv[2:]:
    data = open(path, 'rb').read()
    # vmdesc trailer: 0x06, be32 length, JSON object at the end.
    i = data.rfind(b'\x06\x00')
    while i > 0:
        ln = struct.unpack('>I', data[i + 1:i + 5])[0]
        if i + 5 + ln == len(data):
            try:
                desc = json.loads(data[i + 5:])
            except ValueError:
                desc = None
            if desc:
                for dev in desc.get('devices', []):
                    n += 1
                    with open(os.path.join(out, 'vmdesc-%d' % n), 'wb') as f:
                        f.write(json.dumps(dev).encode() + b'\0' + data[:512])
            break
        i = data.rfind(b'\x06\x00', 0, i)
    # ram START section: 0x01, be32 id, counted "ram", be32 instance,
    # be32 version, then the body.
    j = data.find(b'\x01\x00\x00\x00')
    while j >= 0:
        if data[j + 5:j + 9] == b'\x03ram':
            body = data[j + 17:j + 17 + 16384]
            n += 1
            with open(os.path.join(out, 'ram-%d' % n), 'wb') as f:
                f.write(b'\0' + body)
            break
        j = data.find(b'\x01\x00\x00\x00', j + 1)
PY
for f in "$tmp"/vmdesc-*; do [ -e "$f" ] && add vmdesc "$f"; done
for f in "$tmp"/ram-*; do [ -e "$f" ] && add ram_decode "$f"; done

# XBZRLE: a few hand-made deltas (run of zeros, then literal bytes).
printf '\x10\x04abcd' >"$tmp/x1" && add xbzrle "$tmp/x1"
printf '\x80\x20\x02zz\x01\x01q' >"$tmp/x2" && add xbzrle "$tmp/x2"

# Postcopy: an ADVISE body, a DISCARD of two ranges of pc.ram, a
# REQ_PAGES and a REQ_PAGES_ID (first byte: which parser).
printf '\x00\0\0\0\0\0\0\x10\0\0\0\0\0\0\0\x10\0' >"$tmp/p1" && add postcopy "$tmp/p1"
printf '\x01\x00\x06pc.ram\x00\0\0\0\0\0\0\x10\0\0\0\0\0\0\0\x20\0\0\0\0\0\0\0\x80\0\0\0\0\0\0\0\x10\0' \
    >"$tmp/p2" && add postcopy "$tmp/p2"
printf '\x02\0\0\0\0\0\0\x30\0\0\0\x10\0' >"$tmp/p3" && add postcopy "$tmp/p3"
printf '\x06\0\0\0\0\0\0\x30\0\0\0\x10\0\x07pc.bios' >"$tmp/p4" && add postcopy "$tmp/p4"

# qcow2: small-cluster images with snapshots, and the QEMU-made ones.
if command -v qemu-img >/dev/null; then
    for cs in 512 4096; do
        img=$tmp/small-$cs.qcow2
        qemu-img create -q -f qcow2 -o cluster_size=$cs "$img" 1M
        qemu-img snapshot -c one "$img"
        qemu-io -c 'write -P 0x41 0 8k' "$img" >/dev/null 2>&1 || true
        qemu-img snapshot -c two "$img"
        add qcow2 "$img"
    done
    qemu-img create -q -f qcow2 -o compat=0.10,cluster_size=512 "$tmp/v2.qcow2" 64k
    add qcow2 "$tmp/v2.qcow2"
fi
for f in tests/fixtures/qemu-made/*.qcow2 tests/fixtures/hostile/*.qcow2; do
    [ -e "$f" ] && add qcow2 "$f"
done

# HMP: the first byte picks the command, the rest is its argument line.
i=0
for line in 'tcp:127.0.0.1:4444' '-d unix:/tmp/x' '/10xb 0x100000' \
    '"quoted \" string" 12' 'max-bandwidth 64M' 'xbzrle on' \
    'ctrl-alt-f1 100' '0 4096 "/tmp/f"' '1.5G' '-12 0x2a'; do
    for pick in 0 5 11 23 42; do
        i=$((i + 1))
        printf "\\x$(printf %02x $pick)%s" "$line" >"$tmp/h$i"
        add hmp_args "$tmp/h$i"
    done
done

# QMP: negotiation and a few requests per seed.
neg='{"execute":"qmp_capabilities"}'
i=0
for req in '{"execute":"query-status"}' '{"execute":"query-migrate","id":1}' \
    '{"execute":"migrate-set-capabilities","arguments":{"capabilities":[{"capability":"xbzrle","state":true}]}}' \
    '{"execute":"migrate-set-parameters","arguments":{"max-bandwidth":1048576,"downtime-limit":30}}' \
    '{"execute":"query-migrate-parameters"}' '{"execute":"stop"}{"execute":"cont"}' \
    '{"execute":"snapshot-save","arguments":{"job-id":"j","tag":"t","vmstate":"d","devices":["d"]}}' \
    '{"execute":"query-snapshots"}' '{"execute":"getfd","arguments":{"fdname":"x"}}' \
    '{"execute":"calc-dirty-rate","arguments":{"calc-time":1}}' \
    '{"execute":"query-cpus-fast"} {"execute":"system_reset"}' '[1,{"a":[[]]}]'; do
    i=$((i + 1))
    printf '%s\r\n%s\r\n' "$neg" "$req" >"$tmp/q$i"
    add qmp "$tmp/q$i"
done

#!/usr/bin/env bash
# Fetches QEMU's own tools that hop's tests use as independent oracles —
# its python QMP client and qmp-shell, and analyze-migration.py — from
# Debian's qemu source package into a cache outside the repository (they
# are QEMU's, not hop's; nothing of them is committed).
#   tests/tools/fetch-qemu-tools.sh [DIR]
# DIR defaults to $HOP_QEMU_TOOLS, else /var/cache/hop/qemu-tools as root
# or ~/.cache/hop/qemu-tools.  tests/run-tests.sh finds them there.  Needs
# a deb-src source; as root, one mirroring /etc/apt's deb sources is
# added if there is none.  Exits 0 with a warning when it cannot fetch:
# the tests that need these tools then skip and say why.
set -u
dir=${1:-$(tests/tools/qemu-tools-dir.sh)}
want=(python/qemu/qmp scripts/qmp/qmp-shell scripts/analyze-migration.py)

have_all() {
    local w
    for w in "${want[@]}"; do
        [ -e "$dir/$w" ] || return 1
    done
}
warn() {
    echo "fetch-qemu-tools: $*; the tests that use QEMU's tools will skip" >&2
    exit 0
}

have_all && exit 0
command -v apt-get >/dev/null || warn "no apt-get"

tmp=$(mktemp -d) || warn "no temporary directory"
trap 'rm -rf "$tmp"' EXIT

fetch() { (cd "$tmp" && apt-get source -q --download-only qemu >/dev/null 2>&1); }
if ! fetch; then
    src=/etc/apt/sources.list.d/hop-deb-src.sources
    [ "$(id -u)" = 0 ] || warn "no deb-src source, and adding one needs root"
    [ -f /etc/apt/sources.list.d/debian.sources ] ||
        warn "no deb-src source and no debian.sources to derive one from"
    sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources >"$src"
    apt-get update -q >/dev/null 2>&1 || warn "apt-get update failed"
    fetch || warn "apt-get source qemu failed"
fi
orig=$(ls "$tmp"/qemu_*.orig.tar.* 2>/dev/null | head -1)
[ -n "$orig" ] || warn "no qemu orig tarball in the source package"
mkdir -p "$dir" || warn "cannot create $dir"
tar -xf "$orig" -C "$dir" --strip-components=1 --wildcards \
    '*/python/qemu/qmp/*' '*/scripts/qmp/qmp-shell' \
    '*/scripts/analyze-migration.py' || warn "cannot extract from $orig"
have_all || warn "the source package lacks some of: ${want[*]}"
echo "fetch-qemu-tools: QEMU's QMP client, qmp-shell and analyze-migration.py in $dir"

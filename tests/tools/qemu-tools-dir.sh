#!/bin/sh
# Where fetch-qemu-tools.sh keeps QEMU's tools (and run-tests.sh looks):
# $HOP_QEMU_TOOLS; else the system cache (root's, or made by `sudo make
# deps` for everyone); else the user's own.
if [ -n "${HOP_QEMU_TOOLS:-}" ]; then
    echo "$HOP_QEMU_TOOLS"
elif [ "$(id -u)" = 0 ] || [ -d /var/cache/hop/qemu-tools ]; then
    echo /var/cache/hop/qemu-tools
else
    echo "${XDG_CACHE_HOME:-$HOME/.cache}/hop/qemu-tools"
fi

#!/bin/sh
# Where fetch-qemu-tools.sh keeps QEMU's tools (and run-tests.sh looks).
if [ -n "${HOP_QEMU_TOOLS:-}" ]; then
    echo "$HOP_QEMU_TOOLS"
elif [ "$(id -u)" = 0 ]; then
    echo /var/cache/hop/qemu-tools
else
    echo "${XDG_CACHE_HOME:-$HOME/.cache}/hop/qemu-tools"
fi

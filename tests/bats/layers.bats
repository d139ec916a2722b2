#!/usr/bin/env bats
# The layout is the architecture: a folder includes only headers of the
# layers below it (README.md, "Layout").  Folders on one line are peers and
# do not include each other.

load helper

LAYERS=(
    "cli bench"
    "monitor"
    "core"
    "migration snapshot"
    "ram"
    "machine"
    "vmstate block"
    "util"
)

rank_of() {   # rank_of FOLDER: its line in LAYERS, or nothing
    local i
    for i in "${!LAYERS[@]}"; do
        if [[ " ${LAYERS[$i]} " == *" $1 "* ]]; then
            echo "$i"
            return
        fi
    done
}

@test "every folder includes only the layers below it" {
    cd "$BATS_TEST_DIRNAME/../.."
    local bad=() f dir inc r_dir r_inc
    for dir in $(printf '%s ' "${LAYERS[@]}"); do
        r_dir=$(rank_of "$dir")
        for f in "$dir"/*.[ch]; do
            while read -r inc; do
                [ "$inc" = "$dir" ] && continue
                r_inc=$(rank_of "$inc")
                [ -n "$r_inc" ] || continue
                if [ "$r_inc" -le "$r_dir" ]; then
                    bad+=("$f includes $inc/")
                fi
            done < <(sed -n 's|^#include "\([a-z]*\)/.*|\1|p' "$f" | sort -u)
        done
    done
    printf '%s\n' "${bad[@]}"
    [ "${#bad[@]}" -eq 0 ]
}

@test "every source folder has its place in the layers" {
    cd "$BATS_TEST_DIRNAME/../.."
    local d missing=()
    for d in */; do
        d=${d%/}
        compgen -G "$d/*.c" >/dev/null || continue
        [ -n "$(rank_of "$d")" ] || missing+=("$d")
    done
    printf 'not in LAYERS: %s\n' "${missing[@]}"
    [ "${#missing[@]}" -eq 0 ]
}

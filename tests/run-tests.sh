#!/usr/bin/env bash
# Runs every unit test binary (cmocka, TAP output) and every bats file, shows
# their output, and ends with one line: "N passed, N failed, N skipped".
# Exit status is non-zero if anything failed or if no test ran at all.
#   HOP_BUILD   build directory (default: build)
#   HOP_TESTS   optional regex: only run test binaries / bats files matching it
#   HOP_QEMU_PYTHON, HOP_QEMU_SCRIPTS   QEMU's python/ and scripts/ folders
#               (default: from tests/tools/fetch-qemu-tools.sh's cache)
set -u
cd "$(dirname "$0")/.." || exit 1
build=${HOP_BUILD:-build}
filter=${HOP_TESTS:-}
log=$(mktemp)
trap 'rm -f "$log"' EXIT

export HOP="$PWD/$build/hop"
export HOP_BUILD_DIR="$PWD/$build"
export CMOCKA_MESSAGE_OUTPUT=TAP
# Sanitizer builds: fail on the first report, keep leak checking on.
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=0:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# ThreadSanitizer builds: a race ends the process (and fails its test);
# races on guest RAM are by design (tests/tsan.supp says why).
export TSAN_OPTIONS=${TSAN_OPTIONS:-suppressions=$PWD/tests/tsan.supp:halt_on_error=1:second_deadlock_stack=1}
# QEMU's own tools as oracles, where tests/tools/fetch-qemu-tools.sh (run
# by make deps) put them; the tests that use them skip without.
qemu_tools=$(tests/tools/qemu-tools-dir.sh)
if [ -z "${HOP_QEMU_PYTHON:-}" ] && [ -d "$qemu_tools/python/qemu/qmp" ]; then
    export HOP_QEMU_PYTHON=$qemu_tools/python
fi
if [ -z "${HOP_QEMU_SCRIPTS:-}" ] && [ -d "$qemu_tools/scripts" ]; then
    export HOP_QEMU_SCRIPTS=$qemu_tools/scripts
fi

status=0
for t in "$build"/tests/test_*; do
    [ -x "$t" ] || continue
    [ -n "$filter" ] && ! [[ $t =~ $filter ]] && continue
    echo "# unit: $(basename "$t")"
    out=$("$t" 2>&1)
    rc=$?
    printf '%s\n' "$out" | tee -a "$log"
    if [ "$rc" -ne 0 ]; then
        status=1
        # A binary that dies before reporting must not pass silently.
        if ! grep -q '^not ok' <<<"$out"; then
            echo "not ok - $(basename "$t") exited with status $rc" | tee -a "$log"
        fi
    fi
done

bats_files=()
for b in tests/bats/*.bats; do
    [ -e "$b" ] || continue
    [ -n "$filter" ] && ! [[ $b =~ $filter ]] && continue
    bats_files+=("$b")
done
if [ ${#bats_files[@]} -gt 0 ]; then
    echo "# bats: ${bats_files[*]}"
    if ! bats --tap "${bats_files[@]}" 2>&1 | tee -a "$log"; then
        status=1
    fi
fi

# TAP: "ok N ... # skip REASON" (bats) and "not ok N # SKIP NAME" (cmocka,
# whose reason is the "# skip: ..." message printed just before) are skips;
# any other "not ok" is a failure.
skip_re='# [Ss][Kk][Ii][Pp]'
skipped=$(grep -cE "^(not )?ok [0-9]+.*$skip_re" "$log")
passed=$(grep -E '^ok ' "$log" | grep -cvE "$skip_re")
failed=$(grep -E '^not ok ' "$log" | grep -cvE "$skip_re")
if [ "$skipped" -ne 0 ]; then
    echo
    echo "skipped:"
    awk -v re="$skip_re" '
        /^# (kvm part )?skip(ped)?:/ { reason = $0; sub(/^# [^:]*: */, "", reason); next }
        /^skip: / { reason = substr($0, 7); next }
        $0 ~ "^(not )?ok [0-9]+.*" re {
            line = $0
            sub(/^(not )?ok [0-9]+ *-? */, "", line)
            if (line ~ /^# [Ss][Kk][Ii][Pp] /) {
                # cmocka: the test name follows SKIP, the reason came before
                sub(/^# [Ss][Kk][Ii][Pp] */, "", line)
                printf "  %s: %s\n", line, (reason != "" ? reason : "no reason given")
            } else {
                name = line; sub(/ *# [Ss][Kk][Ii][Pp].*/, "", name)
                why = line; sub(/.*# [Ss][Kk][Ii][Pp] */, "", why)
                printf "  %s: %s\n", name, (why != "" ? why : "no reason given")
            }
            reason = ""
            next
        }
        /^(not )?ok / { reason = "" }
    ' "$log"
fi
# Failures last, with their diagnostics, so that the tail of a long log
# (all a CI page may show) names what failed and why.
if [ "$failed" -ne 0 ]; then
    echo
    echo "failed:"
    awk -v re="$skip_re" '
        /^(not )?ok / { show = 0 }
        /^not ok / && $0 !~ re { show = 1; n = 0; print "  " $0; next }
        show && /^#/ && n < 30 { print "    " $0; n++ }
    ' "$log"
fi
echo
echo "$passed passed, $failed failed, $skipped skipped"
if [ "$failed" -ne 0 ] || [ "$status" -ne 0 ]; then
    exit 1
fi
if [ "$passed" -eq 0 ]; then
    echo "no test ran" >&2
    exit 1
fi
exit 0

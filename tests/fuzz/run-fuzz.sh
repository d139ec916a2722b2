#!/usr/bin/env bash
# Runs every libFuzzer target (build-fuzz/fuzz/fuzz_*) for FUZZ_SECONDS on a
# corpus seeded from the fixtures, then prints one line per target.
#   tests/fuzz/run-fuzz.sh BUILD_DIR       (make fuzz calls it)
#   FUZZ_SECONDS   time per target (default 60)
#   FUZZ_TARGETS   regex: only matching targets
# Crashes, leaks, timeouts and out-of-memory inputs are written to
# BUILD_DIR/findings/TARGET/; the exit status is non-zero if any target
# found something.  Turn each finding into a regression input under
# tests/fixtures/hostile/ with the test that replays it.
set -u
cd "$(dirname "$0")/../.." || exit 1
build=${1:-build-fuzz}
secs=${FUZZ_SECONDS:-60}
filter=${FUZZ_TARGETS:-.}

corpus_root=$build/corpus
findings_root=$build/findings
mkdir -p "$corpus_root" "$findings_root"

tests/fuzz/make-seeds.sh "$corpus_root" || exit 1

status=0
summary=()
for t in "$build"/fuzz/fuzz_*; do
    [ -x "$t" ] || continue
    name=$(basename "$t")
    [[ $name =~ $filter ]] || continue
    corpus=$corpus_root/${name#fuzz_}
    findings=$findings_root/$name
    mkdir -p "$corpus" "$findings"
    opts=()
    [ -f "tests/fuzz/$name.options" ] && read -ra opts <"tests/fuzz/$name.options"
    echo "# $name: $secs s, corpus $(ls "$corpus" | wc -l) inputs"
    log=$findings/fuzz.log
    # -rss_limit_mb and -timeout turn unbounded memory and hangs into
    # findings: the acceptance bar is 2 GiB and 20 s per input.
    "$t" "${opts[@]}" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=20 \
        -artifact_prefix="$findings/" -print_final_stats=1 \
        "$corpus" >"$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1)
    found=$(find "$findings" -maxdepth 1 -type f \( -name 'crash-*' -o \
        -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | wc -l)
    line="$name: ${execs:-?} runs, ${cov:-cov ?}, $found findings (exit $rc)"
    summary+=("$line")
    if [ "$rc" -ne 0 ] || [ "$found" -ne 0 ]; then
        status=1
        tail -40 "$log"
    fi
done
echo
printf '%s\n' "${summary[@]}"
exit $status

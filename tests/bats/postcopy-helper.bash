# Shared steps of the postcopy tests (load after helper and mig-helper).

# need_postcopy NAME: skips, with the kernel's reason, where userfaultfd
# cannot serve missing pages here.
need_postcopy() {
    local out
    out=$(hop_mon "$1" "migrate_set_capability postcopy-ram on")
    if [ -n "$out" ]; then
        skip "${out#*Error: }"
    fi
}

# start_pair SMP [DST_ARGS...]: a memtest source with SMP vCPUs that has
# filled its RAM and a destination waiting on unix:$D/mig.sock, both with
# postcopy-ram on; the link is too slow and the downtime limit too short
# for precopy ever to converge.  After the switch the pages trickle in
# at PC_BW (default 16M) a second, so the guest surely faults on some
# before they arrive.
start_pair() {
    local smp=$1
    shift
    hop_start dst -m 64M -smp "$smp" "$@" -incoming "unix:$D/mig.sock"
    hop_start src -m 64M -smp "$smp"
    need_postcopy src
    run hop_mon dst "migrate_set_capability postcopy-ram on"
    assert_output ""
    wait_filled src
    run hop_mon src "migrate_set_parameter max-bandwidth 4M" \
        "migrate_set_parameter downtime-limit 1" \
        "migrate_set_parameter max-postcopy-bandwidth ${PC_BW:-16M}"
    assert_output ""
}

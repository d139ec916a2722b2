#!/usr/bin/env bats
# completions/hop.bash, run the way bash runs it: COMP_WORDS, COMP_CWORD
# (and COMP_LINE/COMP_POINT where bash's own word splitting matters), then
# _hop, then COMPREPLY.

load helper

setup() {
    hop_sandbox
    source "$HOP_SRC/completions/hop.bash"
    # The completion runs the binary by the name typed: hop.
    PATH="$(dirname "$HOP"):$PATH"
    mkdir -p "$BATS_TEST_TMPDIR/w"
    cd "$BATS_TEST_TMPDIR/w"
    mkdir -p images
    touch images/disk.qcow2 images/other.raw state.bin
}

# complete_words WORD...: completes the last word, as split by the caller.
complete_words() {
    COMP_WORDS=("$@")
    COMP_CWORD=$(($# - 1))
    unset COMP_LINE COMP_POINT
    COMPREPLY=()
    _hop
    reply=$(printf '%s\n' "${COMPREPLY[@]}" | sort | tr '\n' ' ')
    reply=${reply% }
}

# complete_line LINE: as bash gives it, split at COMP_WORDBREAKS too.
complete_line() {
    COMP_LINE=$1
    COMP_POINT=${#1}
    # bash's split: blanks separate; ':' and '=' are words of their own.
    local line=$1 w=() cur=""
    local i ch
    for ((i = 0; i < ${#line}; i++)); do
        ch=${line:i:1}
        if [[ $ch == [[:blank:]] ]]; then
            [ -n "$cur" ] && w+=("$cur")
            cur=""
        elif [[ $ch == [:=] ]]; then
            [ -n "$cur" ] && w+=("$cur")
            w+=("$ch")
            cur=""
        else
            cur+=$ch
        fi
    done
    w+=("$cur")
    # "file" ":" "" -> the ':' is the word being completed.
    if [ -z "$cur" ] && [[ ${line: -1} == [:=] ]]; then
        unset 'w[${#w[@]}-1]'
    fi
    COMP_WORDS=("${w[@]}")
    COMP_CWORD=$((${#w[@]} - 1))
    COMPREPLY=()
    _hop
    reply=$(printf '%s\n' "${COMPREPLY[@]}" | sort | tr '\n' ' ')
    reply=${reply% }
}

@test "subcommands, hidden ones not offered" {
    complete_words hop ''
    for c in help version run img inspect vmstate-check --help --version; do
        [[ " $reply " == *" $c "* ]] || fail "'$c' not offered: $reply"
    done
    [[ " $reply " != *" complete "* ]]
    complete_words hop i
    assert_equal "$reply" "img inspect"
    complete_words hop help ve
    assert_equal "$reply" "version"
}

@test "options of hop run, hop inspect and hop vmstate-check come from their tables" {
    complete_words hop run -
    for o in -m -smp -accel -guest -kernel -serial -S -name -drive \
             -monitor -qmp -incoming -dump-vmstate --help; do
        [[ " $reply " == *" $o "* ]] || fail "'$o' not offered: $reply"
    done
    # Every option the run help lists is offered.
    local listed
    listed=$("$HOP" run --help | sed -n 's/^  \(-[a-zA-Z-]*\).*/\1/p' | sort -u)
    [ -n "$listed" ]
    for o in $listed; do
        [[ " $reply " == *" $o "* ]] || fail "'$o' (in hop run --help) not offered"
    done
    complete_words hop run -mo
    assert_equal "$reply" "-monitor"
    complete_words hop inspect --ex
    assert_equal "$reply" "--extract-ram"
    complete_words hop vmstate-check --r
    assert_equal "$reply" "--reverse"
}

@test "option values: accelerators and guests from hop's own tables" {
    complete_words hop run -accel ''
    assert_equal "$reply" "emu kvm"
    complete_words hop run -m 64M -accel k
    assert_equal "$reply" "kvm"
    # The guests hop names in its error for an unknown one.
    run "$HOP" run -guest nosuch
    local names
    names=$(sed -n 's/.*(built in: \(.*\)).*/\1/p' <<<"$output" | tr -d ',' |
            tr ' ' '\n' | sort | tr '\n' ' ')
    [ -n "$names" ]
    complete_words hop run -guest ''
    assert_equal "$reply " "$names"
    complete_words hop run -guest me
    assert_equal "$reply" "memtest"
}

@test "option values: serial, monitor, qmp, incoming, drive" {
    complete_words hop run -serial ''
    assert_equal "$reply" "file: none stdio"
    complete_words hop run -monitor ''
    assert_equal "$reply" "none stdio unix:"
    complete_words hop run -qmp ''
    assert_equal "$reply" "none unix:"
    complete_words hop run -incoming ''
    assert_equal "$reply" "defer exec: fd: file: memfd: tcp: unix:"
    complete_words hop run -drive ''
    assert_equal "$reply" "file= format= if= readonly="
    complete_words hop run -drive file=d.qcow2,readonly=
    assert_equal "$reply" "file=d.qcow2,readonly=off file=d.qcow2,readonly=on"
    complete_words hop run -drive file=images/disk.qcow2,format=
    assert_equal "$reply" "file=images/disk.qcow2,format=qcow2 file=images/disk.qcow2,format=raw"
    complete_words hop img convert -O ''
    assert_equal "$reply" "qcow2 raw"
    complete_words hop img info --output=j
    assert_equal "$reply" "--output=json"
}

@test "option values: memory backends for -object, memory-backend= for -machine" {
    complete_words hop run -object ''
    assert_equal "$reply" "memory-backend-file memory-backend-memfd memory-backend-ram"
    complete_words hop run -object memory-backend-m
    assert_equal "$reply" "memory-backend-memfd"
    complete_words hop run -machine ''
    assert_equal "$reply" "memory-backend="
    # Each type offered is one -object takes.
    local t
    for t in memory-backend-file memory-backend-memfd memory-backend-ram; do
        run "$HOP" run -object "$t,id=x" -machine memory-backend=x
        refute_output --partial "unknown type"
    done
}

@test "file names: operands, file options, and after file: and file=" {
    complete_words hop inspect st
    assert_equal "$reply" "state.bin"
    complete_words hop inspect im
    assert_equal "$reply" "images/"
    complete_words hop img info images/d
    assert_equal "$reply" "images/disk.qcow2"
    complete_words hop run -kernel images/o
    assert_equal "$reply" "images/other.raw"
    complete_words hop run -dump-vmstate sta
    assert_equal "$reply" "state.bin"
    complete_words hop run -serial file:sta
    assert_equal "$reply" "file:state.bin"
    complete_words hop run -drive file=images/
    assert_equal "$reply" "file=images/disk.qcow2 file=images/other.raw"
    # A value with no file in it is not completed as one.
    complete_words hop run -accel sta
    assert_equal "$reply" ""
    complete_words hop version sta
    assert_equal "$reply" ""
}

@test "bash's own word splitting at ':' and '=' is undone" {
    complete_line "hop run -serial file:sta"
    assert_equal "$reply" "state.bin"
    complete_line "hop run -serial file:"
    assert_equal "$reply" ":images/ :state.bin"
    complete_line "hop run -incoming unix:ima"
    assert_equal "$reply" "images/"
    complete_line "hop run -drive file=images/disk.qcow2,if="
    assert_equal "$reply" "=ide =none"
    complete_line "hop run -drive file=images/disk.qcow2,if=i"
    assert_equal "$reply" "ide"
    complete_line "hop run -m 64M -acc"
    assert_equal "$reply" "-accel"
}

@test "img subcommands and their options" {
    complete_words hop img ''
    assert_equal "$reply" "check convert create info snapshot"
    complete_words hop img snapshot -
    assert_equal "$reply" "--force-share --help -U -a -c -d -l"
    complete_words hop img create -f ''
    assert_equal "$reply" "qcow2 raw"
    complete_words hop img create -
    assert_equal "$reply" "--help -F -b -f -o"
    complete_words hop img create -F ''
    assert_equal "$reply" "qcow2 raw"
    complete_words hop img nosuch ''
    assert_equal "$reply" ""
}

@test "every option in hop run's table is in hop run --help and man/hop.1" {
    local opts o
    opts=$("$HOP" complete -- hop run -)
    [ "$(wc -l <<<"$opts")" -ge 14 ]
    run "$HOP" run --help
    for o in $opts; do
        [ "$o" = --help ] && continue
        assert_line --regexp "^  $o( |$)"
        grep -qE "^\.B[IR]? \\\\$(sed 's/-/\\\\-/g' <<<"${o#-}" | sed 's/^/-/')( |$)" \
            "$HOP_SRC/man/hop.1" || fail "$o is not in man/hop.1"
    done
}

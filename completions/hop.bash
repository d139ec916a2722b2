# bash completion for hop.  The binary is the single source of truth:
# `hop complete -- hop WORD...` prints the candidates for the last word
# (subcommands, options, option values, file names), one per line.
_hop()
{
    local cur=${COMP_WORDS[COMP_CWORD]}
    local -a words
    # bash splits words at ':' and '=' (COMP_WORDBREAKS), but hop's values
    # contain them (file:PATH, file=PATH,format=qcow2): take the words from
    # the line itself, split at blanks only, when bash gives it.
    if [ -n "${COMP_LINE+set}" ] && [ -n "${COMP_POINT:-}" ]; then
        local line=${COMP_LINE:0:COMP_POINT}
        read -ra words <<<"$line"
        if [ -z "$line" ] || [[ $line == *[[:blank:]] ]]; then
            words+=("")
        fi
    else
        words=("${COMP_WORDS[@]:0:COMP_CWORD+1}")
    fi
    local full=${words[${#words[@]}-1]}
    # What bash will replace is cur, the tail of full.
    local drop=$(( ${#full} - ${#cur} ))
    [ "$drop" -ge 0 ] || drop=0

    local out IFS=$'\n'
    if ! out=$("${COMP_WORDS[0]}" complete -- "${words[@]}" 2>/dev/null); then
        # An older hop without `complete`: file names.
        COMPREPLY=($(compgen -f -- "$cur"))
        return 0
    fi
    COMPREPLY=()
    local c
    for c in $out; do
        COMPREPLY+=("${c:drop}")
    done
    # A directory, a "file:" prefix or "key=" goes on without a space.
    if [ ${#COMPREPLY[@]} -eq 1 ] && [[ ${COMPREPLY[0]} == *[/:=,] ]]; then
        compopt -o nospace 2>/dev/null || true
    fi
    return 0
}
complete -F _hop hop

# bash completion for hop.  The binary is the single source of truth:
# `hop complete -- WORDS...` prints the candidates for the last word.
_hop()
{
    local cur=${COMP_WORDS[COMP_CWORD]}
    local IFS=$'\n'
    local words
    words=$("${COMP_WORDS[0]}" complete -- "${COMP_WORDS[@]:0:COMP_CWORD+1}" 2>/dev/null)
    if [ -n "$words" ]; then
        COMPREPLY=($(compgen -W "$words" -- "$cur"))
    else
        # Nothing to offer from hop itself: complete file names.
        COMPREPLY=($(compgen -f -- "$cur"))
        compopt -o filenames 2>/dev/null || true
    fi
}
complete -F _hop hop

# Common set-up for hop's bats tests: a private HOME and XDG directories so
# no test touches a user's history, catalog or state.
bats_require_minimum_version 1.5.0
bats_load_library bats-support
bats_load_library bats-assert

HOP=${HOP:-$BATS_TEST_DIRNAME/../../build/hop}
HOP_SRC=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)

hop_sandbox() {
    export HOME="$BATS_TEST_TMPDIR/home"
    export XDG_STATE_HOME="$HOME/.local/state"
    export XDG_DATA_HOME="$HOME/.local/share"
    export XDG_CONFIG_HOME="$HOME/.config"
    export XDG_CACHE_HOME="$HOME/.cache"
    export HOP_CATALOG="$BATS_TEST_TMPDIR/catalog.db"
    mkdir -p "$HOME"
}

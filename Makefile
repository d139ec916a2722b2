# hop — one binary, built from the layers below.  `make V=1` shows commands,
# `make SANITIZE=1` builds with ASan+UBSan into build-san/,
# `make SANITIZE=thread` with ThreadSanitizer into build-tsan/, `WERROR=0`
# keeps warnings as warnings.  `make fuzz FUZZ_SECONDS=N` builds the
# libFuzzer targets (clang) into build-fuzz/ and runs each for N seconds.

VERSION  := 0.1.0
PREFIX   ?= /usr/local
SANITIZE ?= 0
WERROR   ?= 1

ifeq ($(SANITIZE),1)
BUILD    ?= build-san
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
OPT      ?= -O1
else ifeq ($(SANITIZE),thread)
BUILD    ?= build-tsan
SANFLAGS := -fsanitize=thread -fno-omit-frame-pointer -Wno-tsan
OPT      ?= -O1
else ifeq ($(SANITIZE),fuzz)
# libFuzzer needs clang; the library is instrumented for coverage, the
# targets link the fuzzer's main.
CC       := clang
WERROR   := 0
BUILD    ?= build-fuzz
SANFLAGS := -fsanitize=address,undefined,fuzzer-no-link -fno-omit-frame-pointer \
            -fno-sanitize-recover=undefined
OPT      ?= -O1
else
BUILD    ?= build
SANFLAGS :=
OPT      ?= -O2
endif

PKGS     := readline sqlite3 libqcow jansson zlib
CC       ?= cc
WARNINGS := -Wall -Wextra -Wformat=2 -Wmissing-prototypes -Wstrict-prototypes \
            -Wwrite-strings -Wundef -Wno-unused-parameter \
            -Wno-missing-field-initializers
ifeq ($(WERROR),1)
WARNINGS += -Werror
endif
CFLAGS   ?= $(OPT) -g
ALL_CFLAGS := -std=gnu11 -D_GNU_SOURCE $(WARNINGS) $(CFLAGS) $(SANFLAGS) -I. -I$(BUILD) \
              -DHOP_VERSION='"$(VERSION)"' -pthread \
              $(shell pkg-config --cflags $(PKGS))
LDLIBS   := $(shell pkg-config --libs $(PKGS)) -pthread -lm
ALL_LDFLAGS := $(LDFLAGS) $(SANFLAGS)

ifneq ($(V),1)
Q := @
E := @echo
else
Q :=
E := @true
endif

# Every layer is a directory; its .c files go into libhop.a.  cli/main.c is
# the program entry, kept out of the library so tests can link it.
LAYERS   := util vmstate ram machine block migration snapshot core monitor cli
LIB_SRCS := $(filter-out cli/main.c,$(foreach d,$(LAYERS),$(wildcard $(d)/*.c)))
LIB_ASM  := $(foreach d,$(LAYERS),$(wildcard $(d)/*.S))
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/%.o) $(LIB_ASM:%.S=$(BUILD)/%.o)

UNIT_SRCS    := $(wildcard tests/unit/test_*.c)
UNIT_SUPPORT := $(filter-out $(UNIT_SRCS),$(wildcard tests/unit/*.c))
UNIT_BINS    := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
TOOL_SRCS    := $(wildcard tests/tools/*.c)
TOOL_BINS    := $(TOOL_SRCS:tests/tools/%.c=$(BUILD)/tests/tools/%)

-include machine/firmware/firmware.mk

.PHONY: all check deps install uninstall clean tools man fuzz fuzz-build \
    format format-check
# Keep intermediate objects (test support code) between runs.
.SECONDARY:
all: $(BUILD)/hop

$(BUILD)/libhop.a: $(LIB_OBJS)
	$(E) "  AR      $@"
	$(Q)rm -f $@ && ar rcs $@ $^

$(BUILD)/hop: $(BUILD)/cli/main.o $(BUILD)/libhop.a
	$(E) "  LINK    $@"
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/%.o: %.c
	$(E) "  CC      $@"
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/%.o: %.S
	$(E) "  AS      $@"
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/tests/support/%.o: tests/unit/%.c
	$(E) "  CC      $@"
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(ALL_CFLAGS) $(shell pkg-config --cflags cmocka) -MMD -MP -c -o $@ $<

UNIT_SUPPORT_OBJS := $(UNIT_SUPPORT:tests/unit/%.c=$(BUILD)/tests/support/%.o)

$(BUILD)/tests/%: tests/unit/%.c $(UNIT_SUPPORT_OBJS) $(BUILD)/libhop.a
	$(E) "  TEST    $@"
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(ALL_CFLAGS) $(shell pkg-config --cflags cmocka) -MMD -MP \
	    $(ALL_LDFLAGS) -o $@ $< $(UNIT_SUPPORT_OBJS) $(BUILD)/libhop.a \
	    $(shell pkg-config --libs cmocka) $(LDLIBS)

$(BUILD)/tests/tools/%: tests/tools/%.c $(UNIT_SUPPORT_OBJS) $(BUILD)/libhop.a
	$(E) "  TOOL    $@"
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(ALL_CFLAGS) -MMD -MP $(ALL_LDFLAGS) -o $@ $< \
	    $(UNIT_SUPPORT_OBJS) $(BUILD)/libhop.a $(LDLIBS)

tools: $(TOOL_BINS)

# ---- benchmark helpers (bench/*.c) ----
BENCH_BINS := $(patsubst bench/%.c,$(BUILD)/bench/%,$(wildcard bench/*.c))

$(BUILD)/bench/%: bench/%.c $(BUILD)/libhop.a
	$(E) "  BENCH   $@"
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(ALL_CFLAGS) -MMD -MP $(ALL_LDFLAGS) -o $@ $< \
	    $(BUILD)/libhop.a $(LDLIBS)

bench-tools: $(BENCH_BINS)

# ---- fuzzing (SANITIZE=fuzz: clang, libFuzzer, ASan+UBSan) ----
FUZZ_SRCS    := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_SUPPORT := $(filter-out $(FUZZ_SRCS),$(wildcard tests/fuzz/*.c))
FUZZ_BINS    := $(FUZZ_SRCS:tests/fuzz/%.c=$(BUILD)/fuzz/%)
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= .

$(BUILD)/fuzz/support/%.o: tests/fuzz/%.c
	$(E) "  CC      $@"
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/fuzz/%: tests/fuzz/%.c $(FUZZ_SUPPORT:tests/fuzz/%.c=$(BUILD)/fuzz/support/%.o) $(BUILD)/libhop.a
	$(E) "  FUZZ    $@"
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(ALL_CFLAGS) -fsanitize=fuzzer -MMD -MP $(ALL_LDFLAGS) -o $@ $< \
	    $(FUZZ_SUPPORT:tests/fuzz/%.c=$(BUILD)/fuzz/support/%.o) \
	    $(BUILD)/libhop.a $(LDLIBS)

fuzz-build: $(FUZZ_BINS)

# Each target runs FUZZ_SECONDS on a corpus seeded from the fixtures
# (build-fuzz/corpus/TARGET); findings land in build-fuzz/findings/.
fuzz: $(BUILD)/hop
	$(Q)$(MAKE) --no-print-directory SANITIZE=fuzz fuzz-build
	$(Q)FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_TARGETS='$(FUZZ_TARGETS)' \
	    HOP=$(BUILD)/hop tests/fuzz/run-fuzz.sh build-fuzz

# Runs every unit test binary and every bats file; ends with "N passed, N failed".
# Under ThreadSanitizer the threaded parts run: migration, the monitors
# and snapshots (the emulator alone is too slow there for the rest).
ifeq ($(SANITIZE),thread)
HOP_TESTS ?= migration|multifd|validate-uuid|monitor|qmp|snapshot|test_machine|memory-backend|test_memory_backend
export HOP_TESTS
endif
check: $(BUILD)/hop $(UNIT_BINS) $(TOOL_BINS)
	$(Q)HOP_BUILD=$(BUILD) tests/run-tests.sh

# Debian packages needed to build, test and compare with QEMU.
DEB_PACKAGES := build-essential pkg-config libreadline-dev libsqlite3-dev \
    libqcow-dev libjansson-dev libcmocka-dev zlib1g-dev bats bats-assert bats-support \
    qemu-utils qemu-system-x86 python3 python3-libqcow libqcow-utils \
    sqlite3 socat tmux util-linux jq xz-utils clang libclang-rt-14-dev \
    clang-format
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
deps:
	$(SUDO) apt-get update -q
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends $(DEB_PACKAGES)
	$(SUDO) tests/tools/fetch-qemu-tools.sh

# Layout: .clang-format, for every C file in the tree.
FORMAT_FILES = $(shell git ls-files '*.[ch]')
format:
	clang-format -i $(FORMAT_FILES)
format-check:
	clang-format --dry-run --Werror $(FORMAT_FILES)

# Both pages are generated: hop(1) from the command line's tables,
# hop-monitor(7) from the monitor's; tests fail when a committed page is
# out of date.
man: $(BUILD)/hop
	$(BUILD)/hop help --man >man/hop.1
	$(BUILD)/hop help --monitor-man >man/hop-monitor.7

install: $(BUILD)/hop
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 \
	    $(DESTDIR)$(PREFIX)/share/man/man7 \
	    $(DESTDIR)$(PREFIX)/share/bash-completion/completions
	install -m 755 $(BUILD)/hop $(DESTDIR)$(PREFIX)/bin/hop
	install -m 644 man/*.1 $(DESTDIR)$(PREFIX)/share/man/man1/
	install -m 644 man/*.7 $(DESTDIR)$(PREFIX)/share/man/man7/
	install -m 644 completions/hop.bash \
	    $(DESTDIR)$(PREFIX)/share/bash-completion/completions/hop

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/hop \
	    $(DESTDIR)$(PREFIX)/share/bash-completion/completions/hop
	cd man && for m in *.1; do rm -f $(DESTDIR)$(PREFIX)/share/man/man1/$$m; done
	cd man && for m in *.7; do rm -f $(DESTDIR)$(PREFIX)/share/man/man7/$$m; done

clean:
	rm -rf build build-san build-tsan build-fuzz

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

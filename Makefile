# cvmm — plain GNU make. Sources are found recursively under the source
# folders, so adding a file (or a device folder) needs no Makefile change:
#   vmm/ arch/$(ARCH)/ devices/ vhost/  -> the cvmm binary (vmm/main.c holds main)
#   tests/unit/test_*.c             -> one Check binary each, linked with everything but main
#   tests/integration/*.sh          -> run by tests/run-integration.sh
# Build directory is $(BUILD) (default build/; `make asan` uses build-asan/).
# ARCH=x86 (x86-64) or arm64 (aarch64); it defaults to this machine's. On
# another machine ARCH=arm64 cross-builds with CROSS_COMPILE=aarch64-linux-gnu-
# against Debian's multiarch :arm64 libraries (tests/install-deps.sh), into
# build-arm64/ by default.

HOST_ARCH := $(subst aarch64,arm64,$(subst x86_64,x86,$(shell uname -m)))
ARCH      ?= $(HOST_ARCH)
ifeq ($(ARCH),arm64)
ifneq ($(HOST_ARCH),arm64)
CROSS_COMPILE ?= aarch64-linux-gnu-
endif
BUILD     ?= build-arm64
else
BUILD     ?= build
endif
ifneq ($(CROSS_COMPILE),)
CC        := $(CROSS_COMPILE)gcc
# The target's .pc files (Debian multiarch), not this machine's.
PKG_CONFIG ?= PKG_CONFIG_LIBDIR=/usr/lib/$(shell $(CC) -dumpmachine)/pkgconfig:/usr/share/pkgconfig pkg-config
else
PKG_CONFIG ?= pkg-config
endif

PKGS      := libseccomp libcap liburing
# Debian 12 ships libfdt without a .pc file: fall back to plain -lfdt, or to
# the runtime library itself where only that is installed (libfdt-dev is not
# multiarch: the :arm64 one would replace this machine's; its headers are
# the same for every arch).
FDT_CFLAGS := $(shell $(PKG_CONFIG) --cflags libfdt 2>/dev/null)
FDT_LIBS   := $(shell $(PKG_CONFIG) --libs libfdt 2>/dev/null || \
                { [ -e "$$($(CC) -print-file-name=libfdt.so)" ] && echo -lfdt || echo -l:libfdt.so.1; })

WARN      := -Wall -Wextra -Werror -Wmissing-prototypes -Wstrict-prototypes \
             -Wsign-compare -Wshadow -Wformat=2 -Wvla
CFLAGS    ?= -O2 -g
# -I.: arch/ implements vmm/'s interface and includes its headers as vmm/*.h.
ALL_CFLAGS = -std=gnu11 $(WARN) $(CFLAGS) $(EXTRA_CFLAGS) -D_GNU_SOURCE -Iinclude -I. \
             -MMD -MP $(shell $(PKG_CONFIG) --cflags $(PKGS)) $(FDT_CFLAGS)
LDLIBS    := $(shell $(PKG_CONFIG) --libs $(PKGS)) $(FDT_LIBS) -lz -lpthread
CHECK_LIBS := $(shell $(PKG_CONFIG) --libs check 2>/dev/null)
CHECK_CFLAGS := $(shell $(PKG_CONFIG) --cflags check 2>/dev/null)

SRC_DIRS  := vmm arch/$(ARCH) devices vhost
SRCS      := $(sort $(shell find $(SRC_DIRS) -name '*.c'))
# The arm64 device tree, Image and --check-host verdict code needs no KVM: unit tests check it on
# every build machine.
ifneq ($(ARCH),arm64)
PORTABLE_SRCS := arch/arm64/fdt.c arch/arm64/image.c arch/arm64/hostcheck_verdict.c
endif
# Assembly that is part of cvmm itself (e.g. the host-check probe guest).
ASRCS     := $(sort $(shell find $(SRC_DIRS) -name '*.S'))
OBJS      := $(SRCS:%.c=$(BUILD)/%.o) $(ASRCS:%.S=$(BUILD)/%.o)
LIB_OBJS  := $(filter-out $(BUILD)/vmm/main.o,$(OBJS))

UNIT_SRCS := $(wildcard tests/unit/test_*.c)
ifeq ($(ARCH),arm64)
# x86's boot code and host-check probe are not in an arm64 build.
UNIT_SRCS := $(filter-out tests/unit/test_x86_%.c tests/unit/test_hostcheck.c,$(UNIT_SRCS))
endif
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
# make check on a machine of another architecture runs the cross-built unit
# tests under qemu-user (qemu-aarch64; about a minute): every suite but those
# whose subject the emulator does not provide. test_confine: qemu-user
# refuses seccomp filters (they would bind the emulator's own system calls;
# tests/integration/arm64_linux.sh checks cvmm's filters on a real arm64
# kernel). test_blk_writethrough: qemu-user has no io_uring, whose syncs its
# ordering checks drive. Test cases tagged no-qemu-user are left out too.
QEMU_USER_UNIT_SKIP := test_confine test_blk_writethrough
QEMU_USER_UNIT_BINS := $(filter-out $(QEMU_USER_UNIT_SKIP:%=$(BUILD)/tests/%),$(UNIT_BINS))
QEMU_USER := qemu-$(subst arm64,aarch64,$(subst x86,x86_64,$(ARCH)))
UNIT_HELPERS := $(filter-out tests/unit/test_%.c,$(wildcard tests/unit/*.c))
UNIT_HELPER_OBJS := $(UNIT_HELPERS:%.c=$(BUILD)/%.o)

BENCH_SRCS := $(wildcard bench/*.c)
BENCH_BINS := $(BENCH_SRCS:bench/%.c=$(BUILD)/bench/%)

# Fuzz targets (clang libFuzzer): tests/fuzz/<target>.c -> $(BUILD)/bin/<target>
# in the fuzz build ($(BUILD)/fuzz), linked with the library and tests/fuzz/lib.
FUZZ_SRCS := $(wildcard tests/fuzz/*.c)
FUZZ_BINS := $(FUZZ_SRCS:tests/fuzz/%.c=$(BUILD)/bin/%)
FUZZ_HELPER_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(wildcard tests/fuzz/lib/*.c))
FUZZ_SAN  := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
# GNU C the project uses (a struct kvm_msrs header with its entries after
# it) and positional initializers that leave trailing fields zero.
FUZZ_CLANG_WARN := -Wno-gnu-variable-sized-type-not-at-end -Wno-missing-field-initializers

CVMM      := $(BUILD)/cvmm

.SECONDARY:
.PHONY: all deps check unit unit-bins qemu-user-unit integration asan asan-unit asan-integration demo testguest images clean bench fuzz fuzz-bins fuzz-check
all: $(CVMM) testguest

$(CVMM): $(OBJS)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/%.o: %.S
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/tests/unit/%.o: tests/unit/%.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(CHECK_CFLAGS) -Itests/unit -I. -c -o $@ $<

$(BUILD)/tests/test_%: $(BUILD)/tests/unit/test_%.o $(LIB_OBJS) $(UNIT_HELPER_OBJS) $(PORTABLE_SRCS:%.c=$(BUILD)/%.o)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(CHECK_LIBS) $(LDLIBS)

$(BUILD)/bench/%: bench/%.c $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The freestanding test guest has its own flags (no libc, no SSE): see images/testguest/Makefile.
testguest:
	@if [ "$(ARCH)" = x86 ] && [ -f images/testguest/Makefile ]; then $(MAKE) -C images/testguest BUILD=$(abspath $(BUILD))/testguest; fi

bench: $(CVMM) $(BENCH_BINS) testguest

$(BUILD)/bin/%: $(BUILD)/tests/fuzz/%.o $(FUZZ_HELPER_OBJS) $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

fuzz-bins: $(FUZZ_BINS)

# Builds the fuzz targets with clang: the whole library instrumented for
# libFuzzer, ASan and UBSan, into $(BUILD)/fuzz/bin/. See docs/fuzzing.md.
fuzz:
	$(MAKE) BUILD=$(BUILD)/fuzz CC=clang CFLAGS="-O1 -g" \
	  EXTRA_CFLAGS="-fsanitize=fuzzer-no-link $(FUZZ_SAN) $(FUZZ_CLANG_WARN)" \
	  LDFLAGS="-fsanitize=fuzzer $(FUZZ_SAN)" fuzz-bins

# Replays the committed crash inputs, then runs each target briefly from its seeds.
fuzz-check: fuzz
	./tests/run-fuzz.sh $(abspath $(BUILD))/fuzz/bin

# Debian packages needed to build and test; idempotent, skipped when all are present.
deps:
	@./tests/install-deps.sh

unit-bins: $(UNIT_BINS)

unit: $(UNIT_BINS)
	@./tests/run-unit.sh $(UNIT_BINS)

# The unit tests of a cross build (e.g. make ARCH=arm64 on x86), under qemu-user.
qemu-user-unit: $(UNIT_BINS)
	@UNIT_RUNNER=$(QEMU_USER) CK_EXCLUDE_TAGS=no-qemu-user CK_TIMEOUT_MULTIPLIER=3 \
	  ./tests/run-unit.sh $(QEMU_USER_UNIT_BINS)

integration: $(CVMM) testguest $(BENCH_BINS)
	@./tests/run-integration.sh $(abspath $(BUILD))

# The README's test command: install what tests need, build (for arm64 too),
# run unit tests (also under ASan+UBSan, and the arm64 ones under qemu-user
# on other machines) and integration tests.
check: deps
	$(MAKE) all $(UNIT_BINS)
	$(MAKE) ARCH=arm64 BUILD=$(BUILD)/arm64 all
	$(MAKE) asan-unit
	./tests/run-unit.sh $(UNIT_BINS)
ifneq ($(HOST_ARCH),arm64)
	$(MAKE) ARCH=arm64 BUILD=$(BUILD)/arm64 qemu-user-unit
endif
	$(MAKE) fuzz-check
	./tests/run-integration.sh $(abspath $(BUILD))
	$(MAKE) asan-integration

# The ASan+UBSan build (build-asan/): cvmm, its unit tests, and the
# integration tests that run cvmm directly on this machine.
ASAN_MAKE = $(MAKE) BUILD=build-asan CFLAGS="-O1 -g" LDFLAGS="-fsanitize=address,undefined" \
	  EXTRA_CFLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"

asan:
	$(ASAN_MAKE) all

asan-unit:
	$(ASAN_MAKE) unit

# Not run against the sanitized cvmm: the Linux guests under cvmm
# (boot_linux, virtio_linux, vsock_linux, virtiofs_linux), where cvmm runs inside a nested
# QEMU/TCG machine (that machine would need the sanitizer runtime, and those
# tests are already the slowest part of `make check`), arm64_linux (the
# aarch64 cvmm under qemu-system-aarch64), arm64_vhost_user (the aarch64 cvmm
# under qemu-user), linux_image (no cvmm in it) and
# guest_ram (it finds guest RAM in /proc/PID/smaps by its size, and ASan's
# shadow has mappings of that size; its guest is a few instructions that
# boot_minimal's cover).
# The sanitized cvmm runs with its default confinement (--seccomp true): in
# sanitizer builds the allow-lists gain what the sanitizer runtimes need
# (vmm/confine_rules.c, docs/security.md).
ASAN_INTEGRATION := blk_backend_cli boot_minimal boot_testguest check_host cli_errors confinement \
	net_backend_cli vsock_backend_cli virtio_testguest vhost_user_frontend vhost_user_frontend_net \
	vhost_blk_qemu vhost_blk_restart vhost_net_dpdk vhost_net_qemu vhost_vsock_qemu

# Any sanitizer report fails the test (tests/run-integration.sh --sanitizers).
asan-integration: asan
	./tests/run-integration.sh --sanitizers $(abspath build-asan) $(ASAN_INTEGRATION)

# Sets up this machine (packages, a Linux guest where the host's KVM can run
# Linux) and boots a demo guest with its console on the terminal.
demo: deps all
	@./tests/demo.sh $(abspath $(BUILD))

clean:
	rm -rf build build-asan

-include $(OBJS:.o=.d) $(UNIT_SRCS:%.c=$(BUILD)/%.d) $(UNIT_HELPER_OBJS:.o=.d) $(PORTABLE_SRCS:%.c=$(BUILD)/%.d) \
  $(FUZZ_SRCS:%.c=$(BUILD)/%.d) $(FUZZ_HELPER_OBJS:.o=.d)

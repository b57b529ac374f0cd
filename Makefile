# zipcache build. `make` builds lib + CLI, `make test` runs the default suite,
# `make asan` runs the suite under AddressSanitizer + UBSan, `make fuzz` runs the fuzzers.
# Sources are discovered by wildcard: adding a file under src/ or a tests/test_*.c
# needs no change here. Files named *_avx2.c are compiled for AVX2+FMA+F16C and
# must only be entered after a run-time CPU check (see src/util/cpu.h).

CC      ?= cc
BUILD   ?= build
OPT     ?= -O2
CFLAGS  ?=
WARN    := -Wall -Wextra -Wno-unused-parameter -Wshadow -Wstrict-prototypes
# -fvisibility=hidden: the shared library exports only what include/zipcache.h
# marks ZC_API (the programs and tests link the static libraries and may use internals).
BASE    := -std=c11 -D_GNU_SOURCE -g $(OPT) -fPIC -pthread -fvisibility=hidden -Iinclude -Isrc -fno-strict-aliasing $(WARN)
SIMD_AVX2 := -mavx2 -mfma -mf16c
LDLIBS  := -lm -pthread

# The core library (libzipcache): model, tokenizer, forward, kv, quant, attn,
# kernels, util. Evaluation (src/eval) and the benchmark code are not part of
# it: they form libzipcache-tools.a, which only the CLI and the tests link.
TOOLS_SRC := $(sort $(wildcard src/eval/*.c)) src/kernels/matmul_bench.c $(sort $(wildcard src/util/membw*.c))
LIB_SRC  := $(filter-out $(TOOLS_SRC),$(sort $(wildcard src/*/*.c)))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
TOOLS_OBJ := $(TOOLS_SRC:%.c=$(BUILD)/%.o)
LIBS_A   := $(BUILD)/libzipcache-tools.a $(BUILD)/libzipcache.a
CLI_SRC  := $(sort $(wildcard programs/*.c))
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/%.o)
TEST_SRC := $(sort $(wildcard tests/test_*.c))
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
# Fuzz targets: tests/fuzz/fuzz_<name>.c. In the default suite each is linked
# with a replay main as test_fuzz_<name> (re-runs its corpus); `make fuzz`
# builds the libFuzzer binaries with clang.
FUZZ_SRC := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_REPLAY := $(FUZZ_SRC:tests/fuzz/fuzz_%.c=$(BUILD)/tests/test_fuzz_%)

.PHONY: all lib cli tests test asan check fuzz fuzz-build clean install uninstall coverage
.SECONDARY:
all: lib cli
lib: $(BUILD)/libzipcache.a $(BUILD)/libzipcache.so
cli: $(BUILD)/zipcache
tests: $(TEST_BIN) $(FUZZ_REPLAY) $(BUILD)/tests/libzipcache_internal.so

$(BUILD)/%_avx2.o: %_avx2.c
	@mkdir -p $(dir $@)
	$(CC) $(BASE) $(SIMD_AVX2) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(BASE) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libzipcache.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/libzipcache-tools.a: $(TOOLS_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/libzipcache.so: $(LIB_OBJ)
	$(CC) -shared -Wl,-soname,libzipcache.so.$(VERSION_MAJOR) $(CFLAGS) -o $@ $^ $(LDLIBS)

# the CLI alone links libmicrohttpd (zipcache serve)
$(BUILD)/zipcache: $(CLI_OBJ) $(LIBS_A)
	$(CC) $(CFLAGS) -o $@ $(CLI_OBJ) $(LIBS_A) $(LDLIBS) -lmicrohttpd

$(BUILD)/tests/%: $(BUILD)/tests/%.o $(LIBS_A)
	$(CC) $(CFLAGS) -o $@ $< $(LIBS_A) $(LDLIBS)

$(BUILD)/tests/test_fuzz_%: $(BUILD)/tests/fuzz/fuzz_%.o $(BUILD)/tests/fuzz/replay_main.o $(LIBS_A)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

# Internal functions for the ctypes tests in tests/py (tests/shim_internal.c).
$(BUILD)/tests/libzipcache_internal.so: $(BUILD)/tests/shim_internal.o $(BUILD)/libzipcache.a
	$(CC) -shared $(CFLAGS) -o $@ $^ $(LDLIBS)

# ---- make install PREFIX=... (DESTDIR for staging) --------------------------
# The core library (static and shared), the public header and zipcache.pc;
# examples/ builds against these alone (tests/test_install.sh).
PREFIX  ?= /usr/local
LIBDIR  ?= $(PREFIX)/lib
INCDIR  ?= $(PREFIX)/include
VERSION_MAJOR := $(shell sed -n 's/^\#define ZC_VERSION_MAJOR \([0-9]*\).*/\1/p' include/zipcache.h)
VERSION := $(VERSION_MAJOR).$(shell sed -n 's/^\#define ZC_VERSION_MINOR \([0-9]*\).*/\1/p' include/zipcache.h).$(shell sed -n 's/^\#define ZC_VERSION_PATCH \([0-9]*\).*/\1/p' include/zipcache.h)

install: lib
	install -d $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCDIR)
	sed -e 's|@PREFIX@|$(PREFIX)|; s|@LIBDIR@|$(LIBDIR)|; s|@INCDIR@|$(INCDIR)|; s|@VERSION@|$(VERSION)|' \
	  zipcache.pc.in >$(BUILD)/zipcache.pc
	install -m 644 include/zipcache.h $(DESTDIR)$(INCDIR)/zipcache.h
	install -m 644 $(BUILD)/libzipcache.a $(DESTDIR)$(LIBDIR)/libzipcache.a
	install -m 755 $(BUILD)/libzipcache.so $(DESTDIR)$(LIBDIR)/libzipcache.so.$(VERSION)
	ln -sf libzipcache.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libzipcache.so.$(VERSION_MAJOR)
	ln -sf libzipcache.so.$(VERSION_MAJOR) $(DESTDIR)$(LIBDIR)/libzipcache.so
	install -m 644 $(BUILD)/zipcache.pc $(DESTDIR)$(LIBDIR)/pkgconfig/zipcache.pc

uninstall:
	rm -f $(DESTDIR)$(INCDIR)/zipcache.h $(DESTDIR)$(LIBDIR)/libzipcache.a $(DESTDIR)$(LIBDIR)/libzipcache.so* \
	  $(DESTDIR)$(LIBDIR)/pkgconfig/zipcache.pc

# The default suite: every tests/test_* binary, tests/*.sh and tests/py/*.py,
# aggregated by tests/run.sh into one "N passed, N failed, N skipped" line.
test: all tests
	@BUILD=$(BUILD) tests/run.sh

asan:
	$(MAKE) BUILD=build-asan OPT=-O1 \
	  CFLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" test

FUZZ_CFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
fuzz: fuzz-build
	tests/fuzz/run.sh

# The libFuzzer binaries only (build-fuzz/fuzz_<name>), for campaigns run by hand.
fuzz-build:
	$(MAKE) BUILD=build-fuzz CC=clang OPT=-O1 CFLAGS="$(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link" lib \
	  build-fuzz/libzipcache-tools.a
	@for f in $(FUZZ_SRC); do n=$$(basename $$f .c); \
	  echo "clang $$f -> build-fuzz/$$n"; \
	  clang $(BASE) -O1 $(FUZZ_CFLAGS) -fsanitize=fuzzer $$f build-fuzz/libzipcache-tools.a build-fuzz/libzipcache.a \
	    $(LDLIBS) -o build-fuzz/$$n || exit 1; \
	done

# What CI runs: the suite in the normal build, then again under ASan+UBSan.
check:
	$(MAKE) test
	$(MAKE) asan

# Line coverage of src/ by the default suite (gcov + lcov from Debian, see
# scripts/setup.sh): build-cov/coverage.info, the summary on stdout and an
# HTML report in build-cov/html.
# (-O1: -O0 makes the suite ~50x slower than the normal build; from scratch, so that
# no object or count of an earlier build mixes in)
coverage:
	rm -rf build-cov
	-$(MAKE) BUILD=build-cov OPT=-O1 CFLAGS="--coverage" test
	lcov --quiet --capture --directory build-cov/src --base-directory . --output-file build-cov/all.info \
	  --ignore-errors mismatch,negative,unused 2>/dev/null || \
	  lcov --quiet --capture --directory build-cov/src --base-directory . --output-file build-cov/all.info
	lcov --quiet --extract build-cov/all.info "$$(pwd)/src/*" --output-file build-cov/cov.info
	genhtml --quiet build-cov/cov.info --output-directory build-cov/html
	lcov --summary build-cov/cov.info

clean:
	rm -rf build build-asan build-fuzz build-cov

-include $(LIB_OBJ:.o=.d) $(TOOLS_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(TEST_BIN:%=%.d) $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/tests/fuzz/%.d)

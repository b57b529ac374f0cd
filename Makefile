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
BASE    := -std=c11 -D_GNU_SOURCE -g $(OPT) -fPIC -pthread -Iinclude -Isrc -fno-strict-aliasing $(WARN)
SIMD_AVX2 := -mavx2 -mfma -mf16c
LDLIBS  := -lm -pthread

LIB_SRC  := $(sort $(wildcard src/*/*.c))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_SRC  := $(sort $(wildcard programs/*.c))
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/%.o)
TEST_SRC := $(sort $(wildcard tests/test_*.c))
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
# Fuzz targets: tests/fuzz/fuzz_<name>.c. In the default suite each is linked
# with a replay main as test_fuzz_<name> (re-runs its corpus); `make fuzz`
# builds the libFuzzer binaries with clang.
FUZZ_SRC := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_REPLAY := $(FUZZ_SRC:tests/fuzz/fuzz_%.c=$(BUILD)/tests/test_fuzz_%)

.PHONY: all lib cli tests test asan check fuzz clean
.SECONDARY:
all: lib cli
lib: $(BUILD)/libzipcache.a $(BUILD)/libzipcache.so
cli: $(BUILD)/zipcache
tests: $(TEST_BIN) $(FUZZ_REPLAY)

$(BUILD)/%_avx2.o: %_avx2.c
	@mkdir -p $(dir $@)
	$(CC) $(BASE) $(SIMD_AVX2) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(BASE) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libzipcache.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/libzipcache.so: $(LIB_OBJ)
	$(CC) -shared $(CFLAGS) -o $@ $^ $(LDLIBS)

# the CLI alone links libmicrohttpd (zipcache serve)
$(BUILD)/zipcache: $(CLI_OBJ) $(BUILD)/libzipcache.a
	$(CC) $(CFLAGS) -o $@ $(CLI_OBJ) $(BUILD)/libzipcache.a $(LDLIBS) -lmicrohttpd

$(BUILD)/tests/%: $(BUILD)/tests/%.o $(BUILD)/libzipcache.a
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libzipcache.a $(LDLIBS)

$(BUILD)/tests/test_fuzz_%: $(BUILD)/tests/fuzz/fuzz_%.o $(BUILD)/tests/fuzz/replay_main.o $(BUILD)/libzipcache.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

# The default suite: every tests/test_* binary, tests/*.sh and tests/py/*.py,
# aggregated by tests/run.sh into one "N passed, N failed, N skipped" line.
test: all tests
	@BUILD=$(BUILD) tests/run.sh

asan:
	$(MAKE) BUILD=build-asan OPT=-O1 \
	  CFLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" test

FUZZ_CFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
fuzz:
	$(MAKE) BUILD=build-fuzz CC=clang OPT=-O1 CFLAGS="$(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link" lib
	@for f in $(FUZZ_SRC); do n=$$(basename $$f .c); \
	  echo "clang $$f -> build-fuzz/$$n"; \
	  clang $(BASE) -O1 $(FUZZ_CFLAGS) -fsanitize=fuzzer $$f build-fuzz/libzipcache.a $(LDLIBS) -o build-fuzz/$$n || exit 1; \
	done
	tests/fuzz/run.sh

# What CI runs: the suite in the normal build, then again under ASan+UBSan.
check:
	$(MAKE) test
	$(MAKE) asan

clean:
	rm -rf build build-asan build-fuzz

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(TEST_BIN:%=%.d)

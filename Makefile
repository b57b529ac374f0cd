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

.PHONY: all lib cli tests test asan fuzz clean
.SECONDARY:
all: lib cli
lib: $(BUILD)/libzipcache.a $(BUILD)/libzipcache.so
cli: $(BUILD)/zipcache
tests: $(TEST_BIN)

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

$(BUILD)/zipcache: $(CLI_OBJ) $(BUILD)/libzipcache.a
	$(CC) $(CFLAGS) -o $@ $(CLI_OBJ) $(BUILD)/libzipcache.a $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/tests/%.o $(BUILD)/libzipcache.a
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libzipcache.a $(LDLIBS)

# The default suite: every tests/test_* binary, tests/*.sh and tests/py/*.py,
# aggregated by tests/run.sh into one "N passed, N failed, N skipped" line.
test: all tests
	@BUILD=$(BUILD) tests/run.sh

asan:
	$(MAKE) BUILD=build-asan OPT=-O1 \
	  CFLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" test

clean:
	rm -rf build build-asan build-fuzz

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(TEST_BIN:%=%.d)

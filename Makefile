# Thin wrapper over CMake + ninja (+ ccache). `make serve` and `make test` are
# the two commands a fresh machine needs.
BUILD_DIR ?= build
BUILD_TYPE ?= Release
CMAKE_FLAGS ?=
JOBS ?= $(shell nproc)
MODEL ?= models/stories260k
HOST ?= 127.0.0.1
PORT ?= 8000

# The sanitizer trees (`make test-sanitize`, `make fuzz-replay`): g++, no
# CUDA, no benchmarks, only the test directories below. -O1 keeps the ASan
# runs fast enough for CI; assertions stay on.
ASAN_DIR ?= build-asan
TSAN_DIR ?= build-tsan
FUZZ_DIR ?= build-fuzz
SANITIZE_CMAKE = -DKAON_WITH_CUDA=OFF -DKAON_BUILD_BENCH=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	-DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g1" -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" $(CMAKE_FLAGS)
ASAN_TEST_DIRS = common;loading;backend;tokenizer;template;models;engine;api;http;grpc;metrics;cli;fuzz
TSAN_TEST_DIRS = api;engine;http
# Reports are fatal: a sanitizer finding fails the test that hit it, also
# inside a `kaon serve` started by a node test (the variables are inherited).
export ASAN_OPTIONS ?= detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1
export UBSAN_OPTIONS ?= halt_on_error=1:print_stacktrace=1
TSAN_OPTIONS_RUN = halt_on_error=1:second_deadlock_stack=1:suppressions=$(CURDIR)/tests/sanitize/tsan.supp
# Tests too slow under a sanitizer for CI carry the label `sanitize-heavy`.
SANITIZE_CTEST = ctest --output-on-failure -j $(JOBS) --timeout 900 -LE 'sanitize-heavy|fuzz-replay'

.PHONY: all deps node-deps configure build test serve bench clean test-sanitize fuzz-replay fuzz fuzz-deps hardening-check

all: build

deps:
	@scripts/install-deps.sh

node-deps:
	@scripts/install-node-deps.sh

$(BUILD_DIR)/build.ninja:
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(CMAKE_FLAGS)

configure: deps $(BUILD_DIR)/build.ninja

build: configure
	cmake --build $(BUILD_DIR) -j $(JOBS)

test: build node-deps
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) --timeout 600

serve: build
	$(BUILD_DIR)/bin/kaon serve $(MODEL) --host $(HOST) --port $(PORT)

$(ASAN_DIR)/build.ninja:
	cmake -S . -B $(ASAN_DIR) -G Ninja -DKAON_SANITIZE=address -DKAON_TEST_DIRS="$(ASAN_TEST_DIRS)" $(SANITIZE_CMAKE)

$(TSAN_DIR)/build.ninja:
	cmake -S . -B $(TSAN_DIR) -G Ninja -DKAON_SANITIZE=thread -DKAON_TEST_DIRS="$(TSAN_TEST_DIRS)" $(SANITIZE_CMAKE)

# Every unit and end-to-end test of the front half and the engine under
# ASan + UBSan, then the concurrency-heavy directories (not gRPC: see
# tests/sanitize/tsan.supp) under TSan.
test-sanitize: deps node-deps $(ASAN_DIR)/build.ninja $(TSAN_DIR)/build.ninja
	cmake --build $(ASAN_DIR) -j $(JOBS)
	cd $(ASAN_DIR) && $(SANITIZE_CTEST)
	cmake --build $(TSAN_DIR) -j $(JOBS)
	cd $(TSAN_DIR) && TSAN_OPTIONS="$(TSAN_OPTIONS_RUN)" $(SANITIZE_CTEST)

# Every fuzz target's checked-in corpus through its harness, in the ASan tree.
fuzz-replay: deps $(ASAN_DIR)/build.ninja
	cmake --build $(ASAN_DIR) -j $(JOBS)
	cd $(ASAN_DIR) && ctest --output-on-failure -j $(JOBS) -L fuzz-replay

# Real fuzzing, by hand: clang + libFuzzer (tests/fuzz/README.md).
$(FUZZ_DIR)/build.ninja: | fuzz-deps
	cmake -S . -B $(FUZZ_DIR) -G Ninja -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 -DKAON_FUZZ=ON \
	  -DKAON_WITH_CUDA=OFF -DKAON_BUILD_BENCH=OFF -DKAON_HARDENING=OFF -DKAON_TEST_DIRS=fuzz \
	  -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  "-DCMAKE_CXX_FLAGS=-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined"

fuzz-deps:
	@scripts/install-deps.sh fuzz

fuzz: fuzz-deps $(FUZZ_DIR)/build.ninja
	cmake --build $(FUZZ_DIR) -j $(JOBS) --target kaon_fuzz_all
	tests/fuzz/run.sh $(FUZZ_DIR)/bin

# What ships is hardened (PIE, stack protector, FORTIFY, BIND_NOW).
hardening-check: build
	scripts/hardening-check.sh $(BUILD_DIR)

clean:
	rm -rf $(BUILD_DIR) $(ASAN_DIR) $(TSAN_DIR) $(FUZZ_DIR)

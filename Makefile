# Thin wrapper over CMake + ninja (+ ccache). `make serve` and `make test` are
# the two commands a fresh machine needs.
BUILD_DIR ?= build
BUILD_TYPE ?= Release
CMAKE_FLAGS ?=
JOBS ?= $(shell nproc)
MODEL ?= models/stories260k
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: all deps node-deps configure build test serve bench clean

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

clean:
	rm -rf $(BUILD_DIR)

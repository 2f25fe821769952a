# Thin wrapper over CMake so a fresh machine needs two commands (see README).
BUILD ?= build
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
WORKDIR ?= ./data
ADDR ?= 127.0.0.1:6380

.PHONY: all setup build werror-config run sim-demo test test-fast asan lint clean

all: build

setup:
	./tools/setup.sh

# A user's build: warnings stay warnings (NOKV_WERROR is off by default), so
# a newer compiler or another optimisation level cannot break `make run`.
$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo

build: $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

# Developer and CI commands build with -Werror: (re)configure the build
# directory with NOKV_WERROR=ON unless it already is.
werror-config:
	@grep -q '^NOKV_WERROR:BOOL=ON$$' $(BUILD)/CMakeCache.txt 2>/dev/null || \
	  cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNOKV_WERROR=ON

# The main job: the standalone server (builds only what it needs).
run: setup $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS) --target nokv_cli
	./tools/run-main.sh $(BUILD) $(WORKDIR) $(ADDR)

sim-demo: build
	$(BUILD)/nokv-sim --seed 7 scenarios/echo_flap

# Everything CI runs: install deps, build (-Werror), lint, unit tests,
# scenario sweeps.
test: setup werror-config build lint
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# Same tests without the setup step (for a machine already set up).
test-fast: werror-config build lint
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

asan:
	cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DNOKV_SANITIZE=ON -DNOKV_WERROR=ON
	cmake --build build-asan -j $(JOBS)
	cd build-asan && ctest --output-on-failure -j $(JOBS)

lint:
	./tools/lint/determinism.sh

clean:
	rm -rf $(BUILD) build-asan build-ci-release build-ci-debug

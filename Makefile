# Entry points for people and CI. Every target installs what is missing first.
#   make run    build the release binary and start Sluice on the embedded SQLite demo
#   make test   build with ASan/UBSan and run every test through ctest
#   make build  build everything (product, tests, tools) in the debug preset
#   make bench  side-by-side benchmark against the peers (bench/run.sh; ARGS=--quick)

PRESET ?= debug-asan
JOBS ?= 2
# CI builds treat warnings as errors.
CMAKE_FLAGS := $(if $(CI),-DSLUICE_WERROR=ON,)

.PHONY: all deps build test run bench format format-check clean

all: build

deps:
	@scripts/install-deps.sh

build/$(PRESET)/build.ninja: CMakeLists.txt CMakePresets.json | deps
	cmake --preset $(PRESET) $(CMAKE_FLAGS)

build: deps build/$(PRESET)/build.ninja
	cmake --build --preset $(PRESET) -j$(JOBS)

test: build
	ctest --preset $(PRESET)

run: deps
	@test -f build/release/build.ninja || cmake --preset release $(CMAKE_FLAGS)
	cmake --build --preset release -j$(JOBS) --target sluice
	./build/release/gateway/sluice $(ARGS)

bench:
	bench/run.sh $(ARGS)

format:
	git ls-files '*.cpp' '*.hpp' | xargs clang-format -i

format-check:
	git ls-files '*.cpp' '*.hpp' | xargs clang-format --dry-run -Werror

clean:
	rm -rf build

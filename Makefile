# gardefou: the two commands of the README, over meson.
#   make run   installs the Debian dependencies, builds, and starts the gateway on 127.0.0.1:8080
#   make test  installs them, builds with AddressSanitizer+UndefinedBehaviorSanitizer, runs every suite
# Other targets: build, deps, test-long (full budgets), fuzz, coverage, bench, clean.

BUILD      ?= build
TESTBUILD  ?= build-test
ARGS       ?=
SUDO       := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DEB_DEPS   := build-essential meson ninja-build pkg-config libevent-dev libcurl4-openssl-dev \
              libcjson-dev libpcre2-dev libopenblas-dev nodejs slowhttptest
# nodejs brings npm (Debian splits it out; NodeSource ships both in one package).
# Suite budget for the long suite when run from `make test` (fuzzing, crash loops); seconds.
LONG_BUDGET ?= 5
# libFuzzer build (clang): `make test` runs a reproducible fuzzing smoke pass when clang is
# installed; `make fuzz FUZZ_BUDGET=600` is the nightly run (docs/testing.md).
FUZZBUILD   ?= build-fuzz
FUZZ_BUDGET ?= 15
# The fuzzing pass inside `make test` (CI) is a smoke run: a fixed seed and TEST_FUZZ_RUNS inputs
# per target (reproducible), capped at TEST_FUZZ_BUDGET seconds. FUZZ_RUNS empty = time budget only.
TEST_FUZZ_BUDGET ?= 60
TEST_FUZZ_RUNS ?= 20000
FUZZ_RUNS ?=
COVBUILD    ?= build-cov

.PHONY: all deps build run test test-long fuzz coverage bench clean

all: build

deps:
	@missing=""; for p in $(DEB_DEPS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

$(BUILD)/build.ninja:
	meson setup $(BUILD) --buildtype=release -Dtests=false

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

run: build
	./$(BUILD)/gateway/gardefou serve $(ARGS)

$(TESTBUILD)/build.ninja:
	meson setup $(TESTBUILD) --buildtype=debugoptimized -Db_sanitize=address,undefined \
	  -Db_lundef=false

test: deps $(TESTBUILD)/build.ninja
	ninja -C $(TESTBUILD)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	  meson test -C $(TESTBUILD) --print-errorlogs --no-rebuild \
	  --suite unit --suite integration --suite fuzz-replay
	GF_LONG_BUDGET=$(LONG_BUDGET) meson test -C $(TESTBUILD) --print-errorlogs --no-rebuild \
	  --suite long
	@if command -v clang >/dev/null 2>&1; then $(MAKE) --no-print-directory fuzz FUZZ_BUDGET=$(TEST_FUZZ_BUDGET) \
	  FUZZ_RUNS=$(TEST_FUZZ_RUNS); \
	else echo "clang not found: libFuzzer runs skipped (corpora were replayed above)"; fi

# Builds only the fuzz targets with clang + libFuzzer + ASan/UBSan and fuzzes each FUZZ_BUDGET s.
$(FUZZBUILD)/build.ninja:
	CC=clang meson setup $(FUZZBUILD) --buildtype=debugoptimized -Dfuzzing=libfuzzer \
	  -Db_sanitize=address,undefined -Db_lundef=false

fuzz: $(FUZZBUILD)/build.ninja
	ninja -C $(FUZZBUILD) $(patsubst tests/fuzz/%.c,tests/fuzz/%,$(wildcard tests/fuzz/fuzz_*.c))
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	  GF_LONG_BUDGET=$(FUZZ_BUDGET) GF_FUZZ_RUNS=$(FUZZ_RUNS) meson test -C $(FUZZBUILD) --print-errorlogs --no-rebuild \
	  --suite fuzz

# Line and branch coverage per component (gcovr); figures are quoted in docs/testing.md.
# Atomic counter updates: the writer, engine and server threads update the same counters, and
# racy updates can leave negative counts that gcovr refuses to parse.
$(COVBUILD)/build.ninja:
	meson setup $(COVBUILD) --buildtype=debugoptimized -Db_coverage=true \
	  -Dc_args=-fprofile-update=atomic

coverage: deps $(COVBUILD)/build.ninja
	@command -v gcovr >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq gcovr; }
	ninja -C $(COVBUILD)
	-meson test -C $(COVBUILD) --no-rebuild --suite unit --suite integration --suite fuzz-replay
	sh tests/coverage.sh $(COVBUILD)

test-long: deps $(TESTBUILD)/build.ninja
	ninja -C $(TESTBUILD)
	GF_LONG_BUDGET=60 meson test -C $(TESTBUILD) --print-errorlogs --suite long -t 20

bench: build
	@for b in bench/*.sh; do echo "== $$b"; bash $$b || exit 1; done

clean:
	rm -rf $(BUILD) $(TESTBUILD) $(FUZZBUILD) $(COVBUILD)

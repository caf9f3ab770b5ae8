# gardefou: the two commands of the README, over meson.
#   make run   installs the Debian dependencies, builds, and starts the gateway on 127.0.0.1:8080
#   make test  installs them, builds with AddressSanitizer+UndefinedBehaviorSanitizer, runs every suite
# Other targets: build, deps, test-long (full budgets), bench, clean.

BUILD      ?= build
TESTBUILD  ?= build-test
ARGS       ?=
SUDO       := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DEB_DEPS   := build-essential meson ninja-build pkg-config libevent-dev libcurl4-openssl-dev \
              libcjson-dev libpcre2-dev libopenblas-dev nodejs slowhttptest
# nodejs brings npm (Debian splits it out; NodeSource ships both in one package).
# Suite budget for the long suite when run from `make test` (fuzzing, crash loops); seconds.
LONG_BUDGET ?= 5

.PHONY: all deps build run test test-long bench clean

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

test-long: deps $(TESTBUILD)/build.ninja
	ninja -C $(TESTBUILD)
	GF_LONG_BUDGET=60 meson test -C $(TESTBUILD) --print-errorlogs --suite long -t 20

bench: build
	@for b in bench/*.sh; do echo "== $$b"; bash $$b || exit 1; done

clean:
	rm -rf $(BUILD) $(TESTBUILD)

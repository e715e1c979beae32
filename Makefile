# Totebox Envelope B: the one contributor interface. `make test` is exactly what CI runs.

TARGET        := aarch64-unknown-none
# Crates that run inside a protection domain: built for the target by `make build`.
TARGET_CRATES := note tlog
CARGO         ?= cargo

.PHONY: all setup fmt-check clippy host-test build test bench fuzz

all: build

# Everything a fresh machine needs before the rest: the pinned toolchain and the target.
setup:
	rustup show active-toolchain >/dev/null 2>&1 || rustup toolchain install
	rustup target add $(TARGET)
	rustup component add rustfmt clippy

fmt-check:
	$(CARGO) fmt --all --check

clippy:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

host-test:
	$(CARGO) test --workspace

# Every crate meant for aarch64-unknown-none, built for that target.
build:
	$(CARGO) build --release --target $(TARGET) $(addprefix -p ,$(TARGET_CRATES))

test: setup fmt-check clippy host-test build

bench:
	$(CARGO) run --release -p tlog --example bench_append

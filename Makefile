# Totebox Envelope B: the one contributor interface. `make test` is exactly what CI runs.

TARGET        := aarch64-unknown-none
# Crates that run inside a protection domain: built for the target by `make build`.
TARGET_CRATES := note tlog
# The system's no_std crates and PD crates (libraries and seL4 binaries; the runtime needs the
# SDK configuration named).
PD_CRATES     := protocol interface wire-pd ledger-pd audit-pd psdb-pd
# The PD binaries (pds/<pd>/src/main.rs), copied to $(ELF_DIR)/<pd>.elf.
PD_BINS       := wire ledger audit psdb
MICROKIT_CONFIG ?= debug
BUILD_DIR     ?= build
# Cargo's output directory (CARGO_TARGET_DIR if set) and the PD images' profile there: one per
# configuration (Cargo.toml [profile.pd-*]).
TARGET_DIR    := $(or $(CARGO_TARGET_DIR),target)
PD_PROFILE    := pd-$(MICROKIT_CONFIG)
ELF_DIR       := $(BUILD_DIR)/elf
# Where the simulator listens: HOST:PORT (port 0: any free port) or unix:PATH.
SIM_LISTEN    ?= 127.0.0.1:0
SIM_DISK      ?= $(BUILD_DIR)/sim-disk.img
CARGO         ?= cargo

.PHONY: all setup fmt-check clippy host-test build test bench fuzz sim sim-test

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

# Every crate meant for aarch64-unknown-none, built for that target, and every PD's ELF in
# $(ELF_DIR) (no SDK needed): wire.elf, ledger.elf (every tenant's, before its key is set),
# audit.elf, psdb.elf.
build:
	$(CARGO) build --release --target $(TARGET) $(addprefix -p ,$(TARGET_CRATES))
	$(CARGO) build --profile $(PD_PROFILE) --target $(TARGET) $(addprefix -p ,$(PD_CRATES)) \
		--features microkit/config-$(MICROKIT_CONFIG)
	mkdir -p $(ELF_DIR)
	for pd in $(PD_BINS); do \
		cp $(TARGET_DIR)/$(TARGET)/$(PD_PROFILE)/$$pd $(ELF_DIR)/$$pd.elf || exit 1; \
	done

# Run the whole system on the host (no SDK needed): prints `SIM|INFO: connect with --connect ADDR`
# for `totebox client --connect ADDR ...`. psdb's disk is $(SIM_DISK) (created if absent).
sim:
	$(CARGO) run --release -p sim --bin totebox-sim -- --system system.xml \
		--disk $(SIM_DISK) --listen $(SIM_LISTEN)

# The simulator end to end through the real binaries (tests/sim-cli.sh).
sim-test:
	$(CARGO) build -p sim -p totebox
	tests/sim-cli.sh $${CARGO_TARGET_DIR:-target}/debug

test: setup fmt-check clippy host-test build sim-test

bench:
	$(CARGO) run --release -p tlog --example bench_append

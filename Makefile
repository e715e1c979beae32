# Totebox Envelope B: the one contributor interface. `make test` is exactly what CI runs.
#
#   make build      every PD's ELF for aarch64-unknown-none in $(ELF_DIR) (no SDK needed); with the
#                   SHA-256 instructions (PD_RUSTFLAGS, default -C target-feature=+sha2)
#   make provision  the signing keys, the archive identity, the ADMIN key and pairings.yaml
#                   ($(KEYS_DIR)) and the per-PD ELFs holding them ($(IMAGE_DIR)); no SDK needed
#   make image      $(BUILD_DIR)/loader.img and report.txt (needs the Microkit SDK)
#   make inspect    the capability graph and the isolation rules (`totebox inspect`) in
#                   $(INSPECT_DIR): report.txt, capdl.json, the table, DOT (+ SVG with graphviz)
#   make qemu       boot the image in QEMU on $(QEMU_DISK); prints where the client connects
#   make sim        run the whole system on the host (no SDK); prints where the client connects
#   make install    the host tool `totebox` into $(PREFIX)/bin (default ~/.local/bin)
#   make test       formatting, lints, host tests, build, key provisioning check, capability
#                   inspection (its CapDL part SKIPPED without an SDK), simulator end to end,
#                   a fourth tenant and the template PD's system (four-tenant-test,
#                   template-test), QEMU end to end (SKIPPED, never passed, without an SDK or QEMU)
#   make template-test  the template PD (docs/adding-a-pd.md) in its own system: simulator,
#                   inspection, and with an SDK a QEMU boot
#   make sdk        fetch the pinned Microkit SDK into $(MICROKIT_SDK)
#   make bench bench-pd bench-system   figures (benchmarks, not tests)
#   make fuzz       every fuzz target for FUZZ_SECONDS (default 60) each

TARGET        := aarch64-unknown-none
# Crates that run inside a protection domain: built for the target by `make build`.
TARGET_CRATES := note tlog
# The system's no_std crates and PD crates (libraries and seL4 binaries; the runtime needs the
# SDK configuration named).
PD_CRATES     := protocol msg-core msg-ledger msg-audit msg-psdb interface wire-pd ledger-pd audit-pd psdb-pd template-pd
# The PD binaries (pds/<pd>/src/main.rs), copied to $(ELF_DIR)/<pd>.elf.
PD_BINS       := wire ledger audit psdb template

# The Microkit world's variables. The SDK comes from the environment, else the per-user cache
# `make sdk` fills; board and configuration are passed to the microkit tool as they are (the
# PDs are built with the matching runtime features, microkit/config-$(MICROKIT_CONFIG) and
# microkit/board-$(MICROKIT_BOARD)).
MICROKIT_VERSION := 2.3.0
MICROKIT_SDK    ?= $(HOME)/.cache/totebox/microkit-sdk-$(MICROKIT_VERSION)
MICROKIT_BOARD  ?= qemu_virt_aarch64
MICROKIT_CONFIG ?= debug
# The boards system.toml describes, the default first (its `boards`).
BOARDS          := $(shell sed -n 's/^boards = \[\(.*\)\]$$/\1/p' system.toml | tr -d '",')
DEFAULT_BOARD   := $(firstword $(BOARDS))
# The default board's build in build/, another board's in build/<board>/ (its own keys, disk
# and image: an image for one board never picks up another's ELFs).
BUILD_DIR       ?= $(if $(filter $(DEFAULT_BOARD),$(MICROKIT_BOARD)),build,build/$(MICROKIT_BOARD))
MICROKIT        := $(MICROKIT_SDK)/bin/microkit

# Cargo's output directory (CARGO_TARGET_DIR if set) and the PD images' profile there: one per
# configuration (Cargo.toml [profile.pd-*]), so switching configurations never reuses a stale
# binary.
TARGET_DIR    := $(or $(CARGO_TARGET_DIR),target)
PD_PROFILE    := pd-$(MICROKIT_CONFIG)
# Code generation for the target's crates and PD images: by default the Armv8 cryptography
# extension's SHA-256 instructions (sha256h, sha256h2, sha256su0/1). Both boards' Cortex-A53 have
# it: optional on an A53, present on the ZynqMP's (UG1085, "Arm v8 Architecture": cryptography
# extension for AES and SHA1/256), and QEMU's cortex-a53 model emulates it. sha2 0.11 picks its
# aarch64 backend from compile-time target features on bare metal (cpufeatures cannot ask an OS
# there), so without the flag every PD hashes in software. `PD_RUSTFLAGS=` builds without (as
# crates/drivers/examples/tlog-bench/run.sh builds its PD for the figures without). Passed as
# CARGO_TARGET_AARCH64_UNKNOWN_NONE_RUSTFLAGS, which Cargo adds to .cargo/config.toml's target
# rustflags (the linker script) and never gives host builds; a RUSTFLAGS in the environment would
# replace both, so leave it unset.
PD_RUSTFLAGS_DEFAULT := -C target-feature=+sha2
PD_RUSTFLAGS         ?= $(PD_RUSTFLAGS_DEFAULT)
PD_CARGO_ENV  := CARGO_TARGET_AARCH64_UNKNOWN_NONE_RUSTFLAGS='$(strip $(PD_RUSTFLAGS))'
# Other flags, their own Cargo directory below the board's (rustflags-none for none, else
# rustflags-<hash of the flags>): Cargo rebuilds everything when the flags change, and a build
# with one set never leaves its binary where a build with another looks.
ifeq ($(strip $(PD_RUSTFLAGS)),$(PD_RUSTFLAGS_DEFAULT))
PD_FLAGS_DIR  :=
else ifeq ($(strip $(PD_RUSTFLAGS)),)
PD_FLAGS_DIR  := /rustflags-none
else
PD_FLAGS_DIR  := /rustflags-$(shell printf '%s' '$(strip $(PD_RUSTFLAGS))' | sha256sum | cut -c1-12)
endif
# The PD images' own Cargo directory for a board other than the default: a build for one board
# never leaves its binary where another board's build looks (the same reason as PD_PROFILE).
PD_TARGET_DIR := $(if $(filter $(DEFAULT_BOARD),$(MICROKIT_BOARD)),$(TARGET_DIR),$(TARGET_DIR)/board-$(MICROKIT_BOARD))$(PD_FLAGS_DIR)
# Built PD ELFs (ledger.elf and audit.elf with empty key slots).
ELF_DIR       := $(BUILD_DIR)/elf
# The microkit tool's search path: the ELFs system.xml names, ledgers and audit provisioned.
IMAGE_DIR     := $(BUILD_DIR)/image
# Signing keys: <log>.skey (secret, generated with `totebox keygen` when absent, never
# committed) and <log>.vkey (what clients verify checkpoints with). The simulator uses the same.
KEYS_DIR      ?= $(BUILD_DIR)/keys
# The system description `make image`, `inspect`, `sim` and `qemu` read: system.xml, generated
# from system.toml (`make system.xml`). Another one (SYSTEM_XML=...) needs PD images and host
# tools built from its own system.toml, in their own directories: TOTEBOX_SYSTEM=<its
# system.toml> CARGO_TARGET_DIR=<a target dir> BUILD_DIR=<a build dir> (docs/adding-a-pd.md;
# `make template-test` prints the whole command for the template's system).
# For another board than the default, the description's system.$(MICROKIT_BOARD).xml.
SYSTEM_XML    ?= $(if $(filter $(DEFAULT_BOARD),$(MICROKIT_BOARD)),system.xml,system.$(MICROKIT_BOARD).xml)
# The tenants, as $(SYSTEM_XML) names their ledgers' program images (ledger_<tenant>.elf).
TENANTS       := $(shell sed -n 's/.*program_image path="ledger_\([a-z0-9_]*\)\.elf".*/\1/p' $(SYSTEM_XML))
# Its other program images, copied into $(IMAGE_DIR) as built (no key slot): wire.elf, psdb.elf
# and those of PDs a description adds (template.elf).
PLAIN_IMAGES  := $(shell sed -n 's/.*program_image path="\([a-z0-9_]*\.elf\)".*/\1/p' $(SYSTEM_XML) | \
	grep -v -e '^ledger_' -e '^audit\.elf$$')
# Host tools (debug builds: what the tests build anyway).
HOST_BIN      := $(TARGET_DIR)/debug
TOTEBOX       := $(HOST_BIN)/totebox

# QEMU (qemu/run.sh): psdb's disk image (created blank if absent) and the client's socket.
QEMU_DISK     ?= $(BUILD_DIR)/disk.img
QEMU_SOCKET   ?= $(abspath $(BUILD_DIR))/wire.sock
# Where the simulator listens: HOST:PORT (port 0: any free port) or unix:PATH.
SIM_LISTEN    ?= 127.0.0.1:0
SIM_DISK      ?= $(BUILD_DIR)/sim-disk.img
# Where the simulator serves the tlog-tiles read endpoints over HTTP/1.1 (README, "HTTP
# (simulator)"); empty: no HTTP. It prints `SIM|INFO: http on http://ADDR`.
SIM_HTTP      ?= 127.0.0.1:8080
CARGO         ?= cargo

.PHONY: all setup fmt-check clippy host-test build host-tools provision image image-check \
	qemu qemu-test qemu-test-boards sdk test bench bench-pd bench-system fuzz sim sim-test install inspect inspect-test \
	system.xml four-tenant-test template-test archive-identity access-keys footprint

all: build

# system.xml (the default board's) and system.<board>.xml (every other board's) are generated
# from system.toml, the one description of tenants and PDs (crates/sysdesc/src/topology.rs
# states the rules); a host test fails when they disagree. `make system.xml` writes them all.
system.xml:
	$(CARGO) run -q -p sysdesc --bin gen-system -- system.toml > $@.tmp && mv $@.tmp $@
	for b in $(filter-out $(DEFAULT_BOARD),$(BOARDS)); do \
		$(CARGO) run -q -p sysdesc --bin gen-system -- system.toml --board $$b > system.$$b.xml.tmp && \
		mv system.$$b.xml.tmp system.$$b.xml || exit 1; \
	done

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
# audit.elf, psdb.elf, and template.elf (from system.toml, which does not name it: it builds, and
# would say so at start-up; `make template-test` builds the template system's own). With the
# SHA-256 instructions unless PD_RUSTFLAGS says otherwise (above).
build:
	$(PD_CARGO_ENV) $(CARGO) build --release --target $(TARGET) $(addprefix -p ,$(TARGET_CRATES)) \
		--target-dir $(TARGET_DIR)$(PD_FLAGS_DIR)
	$(PD_CARGO_ENV) $(CARGO) build --profile $(PD_PROFILE) --target $(TARGET) $(addprefix -p ,$(PD_CRATES)) \
		--target-dir $(PD_TARGET_DIR) \
		--features microkit/config-$(MICROKIT_CONFIG),microkit/board-$(MICROKIT_BOARD)
	mkdir -p $(ELF_DIR)
	for pd in $(PD_BINS); do \
		cp $(PD_TARGET_DIR)/$(TARGET)/$(PD_PROFILE)/$$pd $(ELF_DIR)/$$pd.elf || exit 1; \
	done

host-tools:
	$(CARGO) build -p totebox -p sim

# The host tool on your PATH: `cargo install` of crates/totebox into $(PREFIX)/bin.
PREFIX ?= $(HOME)/.local
install:
	$(CARGO) install --locked --path crates/totebox --root $(PREFIX)
	@echo "install: $(PREFIX)/bin/totebox (put $(PREFIX)/bin on your PATH)"

# The archive's identity key (docs/access.md): $(ARCHIVE_KEY) (secret, generated with
# `totebox keygen archive` when absent, never committed) and $(ARCHIVE_VKEY) (what clients pass
# as --archive). Not `archive.vkey`: a tenant may be named `archive` (make four-tenant-test),
# and its checkpoint key is `archive.vkey`.
ARCHIVE_KEY   := $(KEYS_DIR)/archive-identity.key
ARCHIVE_VKEY  := $(KEYS_DIR)/archive-identity.vkey
archive-identity: host-tools
	@mkdir -p $(KEYS_DIR)
	@if [ ! -f $(ARCHIVE_KEY) ]; then \
		(umask 077 && $(TOTEBOX) keygen archive >$(KEYS_DIR)/.keygen-archive && \
		 head -n 1 $(KEYS_DIR)/.keygen-archive >$(ARCHIVE_KEY) && \
		 sed -n 2p $(KEYS_DIR)/.keygen-archive >$(ARCHIVE_VKEY) && chmod 644 $(ARCHIVE_VKEY) && \
		 rm -f $(KEYS_DIR)/.keygen-archive) || exit 1; \
		echo "generated $(ARCHIVE_KEY)"; \
	fi
	@test -s $(ARCHIVE_VKEY) || { echo "$(ARCHIVE_KEY) has no $(ARCHIVE_VKEY)"; exit 1; }
	@echo "archive identity $$(cat $(ARCHIVE_VKEY)) ($(ARCHIVE_VKEY))"

# Access control's provisioning (docs/access.md): the identity key above, the operator's ADMIN
# key $(ADMIN_SKEY) (secret, mode 0600, generated with `totebox keygen admin` when absent) and
# $(ADMIN_VKEY), and the initial pairings $(PAIRINGS), created when absent with that ADMIN for
# every tenant (`totebox pair add --type ADMIN --tenant '*'`). Point PAIRINGS at your own file
# to provision other pairings (it must hold an ADMIN). PUBLIC_METADATA=1 answers unsigned
# metadata requests from anyone (as INTERFACE); off by default. Clients sign with
#   totebox client --skey $(ADMIN_SKEY) --archive $(ARCHIVE_VKEY) ...
ADMIN_SKEY    := $(KEYS_DIR)/admin.skey
ADMIN_VKEY    := $(KEYS_DIR)/admin.vkey
PAIRINGS      ?= $(KEYS_DIR)/pairings.yaml
PUBLIC_METADATA ?= 0
PUBLIC_METADATA_FLAG := $(if $(filter 1 on yes true,$(PUBLIC_METADATA)),--public-metadata)
access-keys: archive-identity
	@if [ ! -f $(ADMIN_SKEY) ]; then \
		(umask 077 && $(TOTEBOX) keygen admin >$(KEYS_DIR)/.keygen-admin && \
		 head -n 1 $(KEYS_DIR)/.keygen-admin >$(ADMIN_SKEY) && \
		 sed -n 2p $(KEYS_DIR)/.keygen-admin >$(ADMIN_VKEY) && chmod 644 $(ADMIN_VKEY) && \
		 rm -f $(KEYS_DIR)/.keygen-admin) || exit 1; \
		echo "generated $(ADMIN_SKEY)"; \
	fi
	@test -s $(ADMIN_VKEY) || { echo "$(ADMIN_SKEY) has no $(ADMIN_VKEY)"; exit 1; }
	@if [ ! -f $(PAIRINGS) ]; then \
		$(TOTEBOX) pair add --type ADMIN --tenant '*' --vkey $(ADMIN_VKEY) --file $(PAIRINGS) || exit 1; \
	fi
	@echo "pairings $(PAIRINGS) (public metadata $(if $(PUBLIC_METADATA_FLAG),on,off)):"
	@$(TOTEBOX) pair list --file $(PAIRINGS)

# The keys and the ELFs that hold them (crates/interface/src/keys.rs): an absent
# $(KEYS_DIR)/<log>.skey is generated; ledger.elf is copied once per tenant with that tenant's
# key in its key slot; audit.elf with audit's key, the archive identity key (slot
# totebox_identity_key) and the initial pairing set from $(PAIRINGS) (slot totebox_pairings,
# `totebox image set-pairings`), so the image enforces access control; the .vkey of each key
# patched in is (re)written from the key itself. Nothing else of an ELF changes (`make
# image-check` proves it). $(BUILD_DIR)/pairings.txt: what audit.elf holds.
provision: build host-tools access-keys
	mkdir -p $(KEYS_DIR) $(IMAGE_DIR)
	for log in $(TENANTS) audit; do \
		if [ ! -f $(KEYS_DIR)/$$log.skey ]; then \
			(umask 077 && $(TOTEBOX) keygen totebox-envelope-b/$$log >$(KEYS_DIR)/.keygen && \
			 head -n 1 $(KEYS_DIR)/.keygen >$(KEYS_DIR)/$$log.skey && \
			 rm -f $(KEYS_DIR)/.keygen) || exit 1; \
			echo "generated $(KEYS_DIR)/$$log.skey"; \
		fi; \
	done
	for t in $(TENANTS); do \
		$(TOTEBOX) image set-key $(ELF_DIR)/ledger.elf $(IMAGE_DIR)/ledger_$$t.elf \
			--skey $(KEYS_DIR)/$$t.skey >$(KEYS_DIR)/$$t.vkey || exit 1; \
	done
	$(TOTEBOX) image set-key $(ELF_DIR)/audit.elf $(BUILD_DIR)/.audit-1.elf \
		--skey $(KEYS_DIR)/audit.skey >$(KEYS_DIR)/audit.vkey
	$(TOTEBOX) image set-key $(BUILD_DIR)/.audit-1.elf $(BUILD_DIR)/.audit-2.elf \
		--skey $(ARCHIVE_KEY) --symbol totebox_identity_key >$(ARCHIVE_VKEY)
	$(TOTEBOX) image set-pairings $(BUILD_DIR)/.audit-2.elf $(IMAGE_DIR)/audit.elf \
		--pairings $(PAIRINGS) $(PUBLIC_METADATA_FLAG) >$(BUILD_DIR)/pairings.txt
	rm -f $(BUILD_DIR)/.audit-1.elf $(BUILD_DIR)/.audit-2.elf
	cp $(addprefix $(ELF_DIR)/,$(PLAIN_IMAGES)) $(IMAGE_DIR)/

# The provisioned ELFs differ from the built ones only inside their slots, and each holds only
# its own key; audit.elf also the identity key and the pairing set of $(PAIRINGS)
# (tests/tests/image_keys.rs).
image-check: provision
	TOTEBOX_ELF_DIR=$(abspath $(ELF_DIR)) TOTEBOX_IMAGE_DIR=$(abspath $(IMAGE_DIR)) \
	TOTEBOX_KEYS_DIR=$(abspath $(KEYS_DIR)) TOTEBOX_PAIRINGS=$(abspath $(PAIRINGS)) \
	TOTEBOX_PUBLIC_METADATA=$(if $(PUBLIC_METADATA_FLAG),1,0) \
		$(CARGO) test -p system-tests --test image_keys -- --ignored

# The bootable image: $(BUILD_DIR)/loader.img and the tool's report.txt. The image holds every
# provisioned ELF, so every signing key (each mapped into its own PD only, once booted): keep
# it, like $(KEYS_DIR), private.
image: provision
	@test -x $(MICROKIT) || { \
		echo "make image: no Microkit SDK at $(MICROKIT_SDK) (no $(MICROKIT)):"; \
		echo "  run 'make sdk', or set MICROKIT_SDK to a Microkit $(MICROKIT_VERSION) SDK with board $(MICROKIT_BOARD)"; \
		exit 1; }
	@# The runtime's board constants (IPC buffer, invocation labels) are the SDK's, or no image.
	MICROKIT_SDK=$(abspath $(MICROKIT_SDK)) $(CARGO) test -q -p microkit --test sdk_constants -- --ignored
	$(MICROKIT) $(SYSTEM_XML) --search-path $(IMAGE_DIR) --board $(MICROKIT_BOARD) \
		--config $(MICROKIT_CONFIG) -o $(BUILD_DIR)/loader.img -r $(BUILD_DIR)/report.txt
	chmod 600 $(BUILD_DIR)/loader.img  # it holds every PD's signing key
	@echo "image: access control on: archive identity $$(cat $(ARCHIVE_VKEY)) (clients: --archive $(ARCHIVE_VKEY))"
	@echo "image: audit.elf's pairings (from $(PAIRINGS)):"
	@sed 's/^/image:   /' $(BUILD_DIR)/pairings.txt

# Tenant isolation from capabilities (crates/inspect, `totebox inspect`). `make inspect` writes
# into $(INSPECT_DIR) the microkit tool's report.txt and CapDL spec (capdl.json, ~14 MB) for
# system.xml and the provisioned ELFs, the table (inspect.txt), capabilities.dot and, when
# Graphviz's `dot` is installed, capabilities.svg; without an SDK, the description's view only.
# It exits non-zero on a violation. INSPECT_FLAGS: the receive rights the Microkit 2.3 tool mints
# on every badged endpoint capability are accepted (each printed as ACCEPTED); set
# INSPECT_FLAGS= to count them as violations.
INSPECT_DIR   := $(BUILD_DIR)/inspect
INSPECT_FLAGS ?= --accept-microkit-rights
inspect: provision
	mkdir -p $(INSPECT_DIR)
	@capdl=; \
	if [ -x $(MICROKIT) ]; then \
		$(MICROKIT) $(SYSTEM_XML) --search-path $(IMAGE_DIR) --board $(MICROKIT_BOARD) \
			--config $(MICROKIT_CONFIG) -o $(INSPECT_DIR)/loader.img -r $(INSPECT_DIR)/report.txt \
			--capdl-json $(INSPECT_DIR)/capdl.json >/dev/null || exit 1; \
		rm -f $(INSPECT_DIR)/loader.img; \
		capdl="--capdl $(INSPECT_DIR)/capdl.json"; \
	else \
		echo "inspect: no Microkit SDK at $(MICROKIT_SDK): the description's view only"; \
	fi; \
	$(TOTEBOX) inspect $(SYSTEM_XML) $$capdl --elf-dir $(IMAGE_DIR) --dot $(INSPECT_DIR)/capabilities.dot \
		$(INSPECT_FLAGS) >$(INSPECT_DIR)/inspect.txt; status=$$?; \
	cat $(INSPECT_DIR)/inspect.txt; \
	if command -v dot >/dev/null 2>&1; then \
		dot -Tsvg $(INSPECT_DIR)/capabilities.dot -o $(INSPECT_DIR)/capabilities.svg || exit 1; \
	else \
		echo "inspect: no Graphviz dot (Debian: apt-get install graphviz), so no SVG"; \
	fi; \
	echo "inspect: wrote $$(cd $(INSPECT_DIR) && ls | tr '\n' ' ')in $(INSPECT_DIR)"; \
	exit $$status

# The inspection in `make test`: the real system.xml with the provisioned ELFs' key slots (the
# description's view, no SDK needed: it says it checked the description only), then, with an
# SDK, the CapDL specs the microkit tool writes for system.xml and for each deliberately broken
# copy (crates/inspect/tests/capdl.rs; the description-level checks of the same copies are in
# `cargo test`). Without an SDK the CapDL part prints one `SKIPPED: <reason>` line, never a pass.
inspect-test: provision
	$(TOTEBOX) inspect system.xml --elf-dir $(IMAGE_DIR) >$(BUILD_DIR)/inspect-xml.txt || \
		{ cat $(BUILD_DIR)/inspect-xml.txt; exit 1; }
	@tail -n 1 $(BUILD_DIR)/inspect-xml.txt
	@if [ -x $(MICROKIT) ]; then \
		mkdir -p $(BUILD_DIR)/inspect-test && \
		INSPECT_MICROKIT=$(abspath $(MICROKIT)) INSPECT_BOARD=$(MICROKIT_BOARD) \
		INSPECT_CONFIG=$(MICROKIT_CONFIG) INSPECT_IMAGE_DIR=$(abspath $(IMAGE_DIR)) \
		INSPECT_TOTEBOX=$(abspath $(TOTEBOX)) INSPECT_OUT=$(abspath $(BUILD_DIR))/inspect-test \
			$(CARGO) test -p inspect --test capdl -- --ignored --nocapture; \
	else \
		echo "SKIPPED: inspect-test: the CapDL check needs the Microkit SDK (no $(MICROKIT)); only the description was checked"; \
	fi

# Boots the image (qemu/run.sh): creates $(QEMU_DISK) with `totebox psdb create` if absent, prints
# where the client connects, then the serial console. Quit QEMU with Ctrl-A x.
qemu: image host-tools
	MICROKIT_BOARD=$(MICROKIT_BOARD) TOTEBOX=$(TOTEBOX) \
		qemu/run.sh $(BUILD_DIR)/loader.img $(QEMU_DISK) $(QEMU_SOCKET)

# The QEMU end-to-end test (tests/qemu-e2e.sh). With an SDK but no QEMU, installs Debian's
# qemu-system-arm when it can (root, apt-get); without an SDK or QEMU the script prints one
# `SKIPPED: <reason>` line, which is not a pass.
qemu-test: host-tools
	@if [ -x $(MICROKIT) ] && ! command -v qemu-system-aarch64 >/dev/null 2>&1 && \
	    [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "qemu-test: installing qemu-system-arm (provides qemu-system-aarch64)"; \
		apt-get install -y qemu-system-arm >/dev/null 2>&1 || \
		{ apt-get update >/dev/null && apt-get install -y qemu-system-arm >/dev/null; } || \
		echo "qemu-test: apt-get could not install qemu-system-arm"; \
	fi
	@if [ -x $(MICROKIT) ] && command -v qemu-system-aarch64 >/dev/null 2>&1; then \
		$(MAKE) --no-print-directory image; \
	fi
	$(CARGO) build -p system-tests --example access_table_client
	MICROKIT_SDK=$(MICROKIT_SDK) MICROKIT_CONFIG=$(MICROKIT_CONFIG) MICROKIT_BOARD=$(MICROKIT_BOARD) \
		tests/qemu-e2e.sh $(BUILD_DIR) $(HOST_BIN)

# The same end-to-end test on every other board the description names (system.toml `boards`),
# each in its own build directory: an SDK without the board, or no QEMU, prints `SKIPPED`.
qemu-test-boards:
	@for b in $(filter-out $(DEFAULT_BOARD),$(BOARDS)); do \
		if [ -x $(MICROKIT) ] && [ ! -d $(MICROKIT_SDK)/board/$$b/$(MICROKIT_CONFIG) ]; then \
			echo "SKIPPED: qemu-test ($$b): the SDK at $(MICROKIT_SDK) has no board $$b ($(MICROKIT_CONFIG))"; \
			continue; \
		fi; \
		$(MAKE) --no-print-directory qemu-test MICROKIT_BOARD=$$b || exit 1; \
	done

# Run the whole system on the host (no SDK needed): prints `SIM|INFO: connect with --connect ADDR`
# for `totebox client --connect ADDR --skey $(ADMIN_SKEY) --archive $(ARCHIVE_VKEY) ...`. psdb's
# disk is $(SIM_DISK) (created if absent); the signing keys are $(KEYS_DIR)'s (generated if
# absent), the same files `make image` uses, and so are the identity key and $(PAIRINGS):
# access control on, as in the image (PUBLIC_METADATA=1 as there). With SIM_HTTP (default
# 127.0.0.1:8080; `SIM_HTTP=` for none) it also serves HTTP: `SIM|INFO: http on http://ADDR`.
sim: access-keys
	$(CARGO) run --release -p sim --bin totebox-sim -- --system $(SYSTEM_XML) \
		--disk $(SIM_DISK) --keys $(KEYS_DIR) --listen $(SIM_LISTEN) \
		--pairings $(PAIRINGS) $(PUBLIC_METADATA_FLAG) $(if $(SIM_HTTP),--http $(SIM_HTTP))

# The simulator end to end through the real binaries (tests/sim-cli.sh).
sim-test: host-tools
	$(CARGO) build -p system-tests --example access_table_client
	tests/sim-cli.sh $(HOST_BIN)

# Adding a tenant is one name in system.toml: this builds the simulator and the host tool from a
# copy of system.toml with a fourth tenant (`archive`), in their own target directory, and runs
# the client script against all four.
FOUR_DIR      := $(BUILD_DIR)/four-tenants
four-tenant-test:
	mkdir -p $(FOUR_DIR)
	sed 's/^tenants = \[\(.*\)\]$$/tenants = [\1, "archive"]/' system.toml >$(FOUR_DIR)/system.toml
	grep -q '"archive"\]$$' $(FOUR_DIR)/system.toml
	$(CARGO) run -q -p sysdesc --bin gen-system -- $(FOUR_DIR)/system.toml >$(FOUR_DIR)/system.xml
	TOTEBOX_SYSTEM=$(abspath $(FOUR_DIR)/system.toml) CARGO_TARGET_DIR=$(TARGET_DIR)/four-tenants \
		$(CARGO) build -q -p sim -p totebox
	TOTEBOX_SYSTEM=$(abspath $(FOUR_DIR)/system.toml) CARGO_TARGET_DIR=$(TARGET_DIR)/four-tenants \
		$(CARGO) build -q -p system-tests --example access_table_client
	SYSTEM_XML=$(FOUR_DIR)/system.xml tests/sim-cli.sh $(TARGET_DIR)/four-tenants/debug

# Adding a PD (docs/adding-a-pd.md): the system of system.toml plus pds/template/add.toml in
# $(TEMPLATE_DIR), built in its own target directory (TOTEBOX_SYSTEM), sharing nothing with the
# main build. The template PD's tests with that description's constants, then
# tests/template.sh: the simulator shows the template's line, a tenant still round-trips, and
# `totebox inspect` finds no violation; with an SDK and QEMU, `make image inspect` for that
# system (the CapDL check too, in $(TEMPLATE_DIR)/inspect) and a boot in QEMU showing the same
# line; without them the boot prints `SKIPPED: <reason>`.
TEMPLATE_DIR    := $(BUILD_DIR)/template
TEMPLATE_TARGET := $(TARGET_DIR)/template
TEMPLATE_VARS   := SYSTEM_XML=$(TEMPLATE_DIR)/system.xml BUILD_DIR=$(TEMPLATE_DIR) \
	TOTEBOX_SYSTEM=$(abspath $(TEMPLATE_DIR)/system.toml) CARGO_TARGET_DIR=$(TEMPLATE_TARGET)
template-test:
	mkdir -p $(TEMPLATE_DIR)
	cat system.toml pds/template/add.toml >$(TEMPLATE_DIR)/system.toml
	$(CARGO) run -q -p sysdesc --bin gen-system -- $(TEMPLATE_DIR)/system.toml >$(TEMPLATE_DIR)/system.xml
	TOTEBOX_SYSTEM=$(abspath $(TEMPLATE_DIR)/system.toml) CARGO_TARGET_DIR=$(TEMPLATE_TARGET) \
		$(CARGO) build -q -p sim -p totebox
	TOTEBOX_SYSTEM=$(abspath $(TEMPLATE_DIR)/system.toml) CARGO_TARGET_DIR=$(TEMPLATE_TARGET) \
		$(CARGO) test -q -p template-pd
	@if [ -x $(MICROKIT) ] && command -v qemu-system-aarch64 >/dev/null 2>&1; then \
		echo "template-test: make image inspect $(TEMPLATE_VARS)"; \
		$(MAKE) --no-print-directory image inspect $(TEMPLATE_VARS) >$(TEMPLATE_DIR)/image.log 2>&1 || \
			{ tail -n 40 $(TEMPLATE_DIR)/image.log; exit 1; }; \
		tail -n 2 $(TEMPLATE_DIR)/inspect/inspect.txt; \
	fi
	MICROKIT_SDK=$(MICROKIT_SDK) MICROKIT_CONFIG=$(MICROKIT_CONFIG) tests/template.sh \
		$(TEMPLATE_DIR) $(TEMPLATE_TARGET)/debug
	@echo "template-test: by hand: make sim $(TEMPLATE_VARS)"
	@echo "template-test:      or: make qemu $(TEMPLATE_VARS)"

test: setup fmt-check clippy host-test build image-check inspect-test sim-test four-tenant-test \
	template-test qemu-test qemu-test-boards

bench:
	$(CARGO) run --release -p tlog --example bench_append
	$(CARGO) run --release -p psdb --features std --example bench

# Every fuzz target for FUZZ_SECONDS each (cargo-fuzz needs a nightly toolchain; installed if
# absent). libFuzzer prints the executions run; a crash stops with the reproducer's path.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := crates/note/fuzz:parse_note crates/note/fuzz:parse_keys \
	crates/tlog/fuzz:tile_path crates/tlog/fuzz:tile_decode crates/tlog/fuzz:bundle_decode \
	psdb/fuzz:mount
fuzz:
	rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
	command -v cargo-fuzz >/dev/null 2>&1 || $(CARGO) install cargo-fuzz --locked
	for t in $(FUZZ_TARGETS); do \
		dir=$${t%%:*}; name=$${t##*:}; \
		(cd $$dir && cargo +nightly fuzz run $$name -- -max_total_time=$(FUZZ_SECONDS)) || exit 1; \
	done

# The README's footprint table, regenerated from the built image (the microkit tool's
# report.txt: every frame the initialiser creates; the ELFs' sizes) and cross-checked against
# system.xml (tests/footprint.rs). tests/tests/readme_footprint.rs, in `make test`, fails when
# system.xml's sizes no longer match the README: then run this.
footprint: image
	$(CARGO) run -q -p system-tests --example footprint -- $(SYSTEM_XML) $(IMAGE_DIR) \
		$(BUILD_DIR)/report.txt --readme README.md

# The ledger core inside a PD, with and without the SHA-256 instructions (a benchmark): the
# tlog_bench PD (crates/drivers/examples/tlog-bench) built both ways, each booted in QEMU virt,
# appends/s and SHA-256 MB/s side by side. Needs the SDK and QEMU; `make bench-system` runs it.
bench-pd:
	MICROKIT_SDK=$(abspath $(MICROKIT_SDK)) CARGO_TARGET_DIR=$(abspath $(TARGET_DIR)) \
		crates/drivers/examples/tlog-bench/run.sh $(BUILD_DIR)/tlog-bench

# System figures (benchmarks, not tests; tests/bench-system.sh): boot-to-ready in QEMU next to
# the SDK's hello example, appends per second through the simulator, the ledger core (on the
# host, and inside a PD with and without the SHA-256 instructions: `make bench-pd`) and QEMU,
# where boot time goes (tests/boot-profile.sh, blank and populated disk), and each PD's ELF size
# and memory footprint.
bench-system: image
	$(CARGO) build --release -p sim
	$(CARGO) build --release -p system-tests --examples
	MICROKIT_SDK=$(MICROKIT_SDK) MICROKIT_BOARD=$(MICROKIT_BOARD) SYSTEM_XML=$(abspath $(SYSTEM_XML)) \
	MICROKIT_CONFIG=$(MICROKIT_CONFIG) TOTEBOX=$(abspath $(TOTEBOX)) KEYS_DIR=$(abspath $(KEYS_DIR)) \
	CARGO_TARGET_DIR=$(abspath $(TARGET_DIR)) \
		tests/bench-system.sh $(BUILD_DIR) $(TARGET_DIR)/release

# ---------------------------------------------------------------------------------------------
# The SDK: the official release for this host, from seL4/microkit's GitHub releases, unpacked so
# that $(MICROKIT_SDK)/bin/microkit exists.
#
# Checksum: NOT PINNED. The official SHA-256 of the $(MICROKIT_VERSION) release assets could not
# be obtained when this was written (the build machine had no route to github.com), and a
# checksum is never invented. So `make sdk` prints the SHA-256 of what it downloaded and
# installs nothing until you pass the value published on the release page:
#   make sdk MICROKIT_SDK_SHA256=<sha256 from https://github.com/seL4/microkit/releases/tag/$(MICROKIT_VERSION)>
# (Whoever confirms it should pin it here as the default.)
MICROKIT_SDK_SHA256 ?=
HOST_OS_ARCH  := $(shell uname -s)-$(shell uname -m)
SDK_HOST      := $(or $(if $(filter Linux-x86_64,$(HOST_OS_ARCH)),linux-x86-64), \
	$(if $(filter Linux-aarch64,$(HOST_OS_ARCH)),linux-aarch64), \
	$(if $(filter Darwin-x86_64,$(HOST_OS_ARCH)),macos-x86-64), \
	$(if $(filter Darwin-arm64,$(HOST_OS_ARCH)),macos-aarch64),unsupported-$(HOST_OS_ARCH))
SDK_TARBALL   := microkit-sdk-$(MICROKIT_VERSION)-$(SDK_HOST).tar.gz
SDK_URL       := https://github.com/seL4/microkit/releases/download/$(MICROKIT_VERSION)/$(SDK_TARBALL)

sdk:
	@if [ -x $(MICROKIT) ]; then echo "sdk: $(MICROKIT_SDK) is ready"; exit 0; fi; \
	parent=$$(dirname $(MICROKIT_SDK)); mkdir -p "$$parent" || exit 1; \
	tarball="$$parent/$(SDK_TARBALL)"; \
	if [ ! -f "$$tarball" ]; then \
		echo "sdk: fetching $(SDK_URL)"; \
		if ! curl -fL --retry 2 -o "$$tarball.part" "$(SDK_URL)"; then \
			rm -f "$$tarball.part"; \
			echo "sdk: cannot download $(SDK_URL)."; \
			echo "sdk: what is needed: that file (Microkit $(MICROKIT_VERSION) SDK for $(SDK_HOST)), checked against"; \
			echo "sdk: the SHA-256 on https://github.com/seL4/microkit/releases/tag/$(MICROKIT_VERSION), placed at"; \
			echo "sdk: $$tarball; then run 'make sdk MICROKIT_SDK_SHA256=<that sha256>' again."; \
			echo "sdk: Or point MICROKIT_SDK at an SDK you already have (its bin/microkit)."; \
			exit 1; \
		fi; \
		mv "$$tarball.part" "$$tarball"; \
	fi; \
	sum=$$(sha256sum "$$tarball" | cut -d' ' -f1); \
	if [ -z "$(MICROKIT_SDK_SHA256)" ]; then \
		echo "sdk: $$tarball has SHA-256 $$sum"; \
		echo "sdk: no checksum is pinned (see the Makefile): compare it with the release page and run"; \
		echo "sdk:   make sdk MICROKIT_SDK_SHA256=<the published sha256>"; \
		exit 1; \
	fi; \
	if [ "$$sum" != "$(MICROKIT_SDK_SHA256)" ]; then \
		echo "sdk: SHA-256 mismatch for $$tarball: got $$sum, expected $(MICROKIT_SDK_SHA256)"; \
		exit 1; \
	fi; \
	tar -xzf "$$tarball" -C "$$parent" || exit 1; \
	test -x $(MICROKIT) || { echo "sdk: unpacked, but there is no $(MICROKIT)"; exit 1; }; \
	echo "sdk: $(MICROKIT_SDK) is ready"

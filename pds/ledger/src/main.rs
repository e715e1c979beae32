//! A **ledger_<tenant>** PD's seL4 image (one ELF for every tenant; the tenant is the PD name).
//! Passive: it runs on the wire's budget, only inside the wire's protected calls.
//!
//! Everything it does is the library ([`ledger_pd::LedgerPd`]), tested on the host and run by
//! the simulator. This file adds the tenant's signing key: the key slot
//! ([`interface::keys::KEY_SLOT_SYMBOL`]), empty in the built `ledger.elf` and written by
//! `make image` into this tenant's copy, `ledger_<tenant>.elf`, alone.
//!
//! A ledger that cannot start keeps answering with a refusal ([`ledger_pd::start`], the same
//! start-up the simulator runs).

#![cfg_attr(target_os = "none", no_std, no_main)]
#![forbid(unsafe_code)]

use ledger_pd::LedgerImage;

microkit::patched_bytes! {
    /// This tenant's checkpoint signing key (`totebox image set-key`; see `interface::keys`).
    static KEY_SLOT: [u8; interface::keys::KEY_SLOT_LEN] =
        ("totebox_signing_key", interface::keys::EMPTY_SLOT);
}

// The tenant's log state, request and response buffers (system.xml `heap_<tenant>`).
microkit::heap!(vaddr = "heap_vaddr", size = "heap_size");

fn init() -> LedgerImage {
    let slot = KEY_SLOT.get();
    ledger_pd::start(interface::keys::slot_skey(&slot).map_err(ledger_pd::InitError::Key))
}

microkit::protection_domain!(init);

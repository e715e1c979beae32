//! The **audit** PD's seL4 image. Passive: it runs on a ledger's budget, only inside that
//! ledger's protected call.
//!
//! Everything it does is the library ([`audit_pd::AuditPd`]), tested on the host and run by
//! the simulator. This file adds the audit log's signing key: the key slot
//! ([`interface::keys::KEY_SLOT_SYMBOL`]), empty in the built ELF and written by `make image`.
//!
//! An audit PD that cannot start keeps answering with a refusal ([`audit_pd::start`], the same
//! start-up the simulator runs): reads fail closed.

#![cfg_attr(target_os = "none", no_std, no_main)]
#![forbid(unsafe_code)]

use audit_pd::AuditImage;

microkit::patched_bytes! {
    /// The audit log's checkpoint signing key (`totebox image set-key`; see `interface::keys`).
    static KEY_SLOT: [u8; interface::keys::KEY_SLOT_LEN] =
        ("totebox_signing_key", interface::keys::EMPTY_SLOT);
}

// The audit log's state (system.xml `heap_audit`).
microkit::heap!(vaddr = "heap_vaddr", size = "heap_size");

fn init() -> AuditImage {
    let slot = KEY_SLOT.get();
    audit_pd::start(interface::keys::slot_skey(&slot).map_err(audit_pd::InitError::Key))
}

microkit::protection_domain!(init);

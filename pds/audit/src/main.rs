//! The **audit** PD's seL4 image. Passive: it runs on its callers' budgets, only inside a
//! protected call (a ledger's, or the wire's Check and Serve).
//!
//! Everything it does is the library ([`audit_pd::AuditPd`]), tested on the host and run by
//! the simulator. This file adds what the image holds: the audit log's signing key (the key
//! slot [`interface::keys::KEY_SLOT_SYMBOL`]), the archive identity key
//! ([`interface::keys::IDENTITY_SLOT_SYMBOL`]) and the initial pairing set
//! ([`interface::keys::PAIRINGS_SLOT_SYMBOL`]), each empty in the built ELF and written by
//! `make image`; and the clock, the PL031 system.xml maps as `rtc` (`drivers::rtc`).
//!
//! An audit PD that cannot start keeps answering with a refusal ([`audit_pd::start`], the same
//! start-up the simulator runs): every signed request and every read fails closed. An identity
//! slot or pairings slot left empty is such a failure: the image never runs without access
//! control.

#![cfg_attr(target_os = "none", no_std, no_main)]
#![forbid(unsafe_code)]

use audit_pd::{Access, AuditImage, Clock, String};

microkit::patched_bytes! {
    /// The audit log's checkpoint signing key (`totebox image set-key`; see `interface::keys`).
    static KEY_SLOT: [u8; interface::keys::KEY_SLOT_LEN] =
        ("totebox_signing_key", interface::keys::EMPTY_SLOT);
    /// The archive identity key (`totebox image set-key --symbol totebox_identity_key`).
    static IDENTITY_SLOT: [u8; interface::keys::KEY_SLOT_LEN] =
        ("totebox_identity_key", interface::keys::EMPTY_SLOT);
    /// The initial pairing set (`totebox image set-pairings`).
    static PAIRINGS_SLOT: [u8; interface::keys::PAIRINGS_SLOT_LEN] =
        ("totebox_pairings", interface::keys::EMPTY_PAIRINGS_SLOT);
}

microkit::memory_region! {
    /// The PL031's registers (system.xml: audit's first device, `rtc`).
    static RTC: ReadWrite(vaddr = "mmio_vaddr", size = "mmio_size", min_len = 0x1000);
}

// The audit log's and the access state's memory (system.xml `heap_audit`).
microkit::heap!(vaddr = "heap_vaddr", size = "heap_size");

fn clock() -> Clock {
    let rtc = RTC.get().ok().and_then(drivers::rtc::Pl031::probe);
    if rtc.is_none() {
        microkit::debug_println!("audit|ERROR: no PL031 clock: every signed request is refused");
    }
    Clock::new(move || rtc.as_ref().and_then(|r| r.now()))
}

fn init() -> AuditImage {
    let slot = KEY_SLOT.get();
    let identity = IDENTITY_SLOT.get();
    let pairings = PAIRINGS_SLOT.get();
    let access = interface::keys::slot_skey(&identity)
        .and_then(|id| {
            let p = interface::keys::slot_pairings(&pairings)?;
            Ok(Access::Enforce {
                identity: id.into(),
                pairings: p.to_vec(),
            })
        })
        .map_err(|e| audit_pd::InitError::Access(alloc_free(e)));
    let skey = interface::keys::slot_skey(&slot).map_err(audit_pd::InitError::Key);
    match (skey, access) {
        (Ok(k), Ok(a)) => audit_pd::start(Ok(k), a, clock()),
        (Err(e), _) | (_, Err(e)) => audit_pd::start(Err(e), Access::Open, Clock::none()),
    }
}

/// The identity or pairings slot's problem, in words.
fn alloc_free(e: interface::keys::KeyError) -> String {
    use core::fmt::Write as _;
    let mut s = String::new();
    let _ = write!(s, "identity key or pairings slot: {e}");
    s
}

microkit::protection_domain!(init);

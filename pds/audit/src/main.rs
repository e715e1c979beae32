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
//! Both the identity and the pairings slot empty (every image until `make image` fills them):
//! the archive is **not provisioned** and runs with access control off, as in phase 1
//! ([`audit_pd::access_from_slots`]; it prints [`audit_pd::NOT_PROVISIONED_LINE`]). Only one
//! of them filled, or either unreadable, is a failure to start: an audit PD that cannot start
//! keeps answering with a refusal ([`audit_pd::start`], the same start-up the simulator runs),
//! so every signed request and every read fails closed.

#![cfg_attr(target_os = "none", no_std, no_main)]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::boxed::Box;

use audit_pd::{Access, AuditImage, Clock};

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
    /// The clock's registers (system.xml: audit's first device, `rtc`).
    static RTC: ReadWrite(vaddr = "mmio_vaddr", size = "mmio_size", min_len = 0x1000);
}

// The audit log's and the access state's memory (system.xml `heap_audit`).
microkit::heap!(vaddr = "heap_vaddr", size = "heap_size");

/// The board's real-time clock (system.toml: audit's `rtc`): QEMU virt's PL031, the ZCU102's
/// Zynq UltraScale+ RTC. Both drivers are compiled on every board; the board constant picks one.
/// A clock's reading: seconds since the Unix epoch, if it gives one.
type Reading = Box<dyn Fn() -> Option<u64>>;

fn clock() -> Clock {
    use microkit::abi::board::{Board, BOARD};
    let regs = RTC.get().ok();
    let (name, rtc): (&str, Option<Reading>) = match BOARD {
        Board::QemuVirtAarch64 => (
            "PL031",
            regs.and_then(drivers::rtc::Pl031::probe)
                .map(|r| Box::new(move || r.now()) as Reading),
        ),
        Board::Zcu102 => (
            "Zynq UltraScale+ RTC",
            regs.map(drivers::zynqmp_rtc::ZynqMpRtc::new)
                .map(|r| Box::new(move || r.now()) as Reading),
        ),
    };
    match rtc.as_ref().map(|r| r()) {
        None => microkit::debug_println!(
            "audit|ERROR: no {name} clock: every signed request is refused"
        ),
        Some(None) => microkit::debug_println!("audit|ERROR: the {name} gives no time"),
        Some(Some(t)) => microkit::debug_println!("audit|INFO: clock: {name} reads {t} s (Unix)"),
    }
    Clock::new(move || rtc.as_ref().and_then(|r| r()))
}

fn init() -> AuditImage {
    let slot = KEY_SLOT.get();
    let identity = IDENTITY_SLOT.get();
    // 16 KiB: on the heap, not the PD's 64 KiB stack.
    let mut pairings = alloc::vec![0u8; interface::keys::PAIRINGS_SLOT_LEN];
    PAIRINGS_SLOT.read_into(&mut pairings);
    let access = audit_pd::access_from_slots(
        interface::keys::slot_skey(&identity),
        interface::keys::slot_pairings(&pairings),
    );
    drop(pairings);
    let skey = interface::keys::slot_skey(&slot).map_err(audit_pd::InitError::Key);
    match (skey, access) {
        (Ok(k), Ok(a)) => audit_pd::start(Ok(k), a, clock()),
        (Err(e), _) | (_, Err(e)) => audit_pd::start(Err(e), Access::Open, Clock::none()),
    }
}

microkit::protection_domain!(init);

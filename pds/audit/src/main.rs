//! The **audit** PD's seL4 image. Passive: it runs on a ledger's budget, only inside that
//! ledger's protected call.
//!
//! Everything it does is the library ([`audit_pd::AuditPd`]), tested on the host and run by
//! the simulator. This file adds the audit log's signing key: the key slot
//! ([`interface::keys::KEY_SLOT_SYMBOL`]), empty in the built ELF and written by `make image`.
//!
//! An audit PD that cannot start (missing region, an empty slot or another log's key) prints why
//! on an `|ERROR:` line and answers every record `STORAGE`: every ledger then fails its reads
//! closed (no content leaves unaudited).

#![cfg_attr(target_os = "none", no_std, no_main)]
#![forbid(unsafe_code)]

use audit_pd::AuditPd;
use interface::audit_call;
use microkit::{debug_println, set_mr, Channel, Handler, MessageInfo};

microkit::patched_bytes! {
    /// The audit log's checkpoint signing key (`totebox image set-key`; see `interface::keys`).
    static KEY_SLOT: [u8; interface::keys::KEY_SLOT_LEN] =
        ("totebox_signing_key", interface::keys::EMPTY_SLOT);
}

// The audit log's state (system.xml `heap_audit`).
microkit::heap!(vaddr = "heap_vaddr", size = "heap_size");

/// The audit log, or `None` when it could not start (then every record is refused).
struct AuditImage(Option<AuditPd>);

impl Handler for AuditImage {
    type Error = core::convert::Infallible;

    fn protected(
        &mut self,
        channel: Channel,
        info: MessageInfo,
    ) -> Result<MessageInfo, Self::Error> {
        match &mut self.0 {
            Some(pd) => pd.protected(channel, info),
            None => {
                set_mr(0, 0);
                Ok(MessageInfo::new(audit_call::STORAGE, 1))
            }
        }
    }
}

fn start() -> Result<AuditPd, audit_pd::InitError> {
    let slot = KEY_SLOT.get();
    let skey = interface::keys::slot_skey(&slot).map_err(audit_pd::InitError::Key)?;
    audit_pd::init(skey)
}

fn init() -> AuditImage {
    match start() {
        Ok(pd) => {
            debug_println!("audit|INFO: serving, {} records", pd.size());
            AuditImage(Some(pd))
        }
        Err(e) => {
            debug_println!("audit|ERROR: not serving: {e}");
            AuditImage(None)
        }
    }
}

microkit::protection_domain!(init);

//! A **ledger_<tenant>** PD's seL4 image (one ELF for every tenant; the tenant is the PD name).
//! Passive: it runs on the wire's budget, only inside the wire's protected calls.
//!
//! Everything it does is the library ([`ledger_pd::LedgerPd`]), tested on the host and run by
//! the simulator. This file adds the tenant's signing key: the key slot
//! ([`interface::keys::KEY_SLOT_SYMBOL`]), empty in the built `ledger.elf` and written by
//! `make image` into this tenant's copy, `ledger_<tenant>.elf`, alone.
//!
//! A ledger that cannot start (unknown tenant, missing region, an empty slot or another log's
//! key) prints why on an `|ERROR:` line and answers every call `BAD_CALL`, which the wire turns
//! into `Unavailable` for that tenant alone: the other tenants do not notice.

#![cfg_attr(target_os = "none", no_std, no_main)]
#![forbid(unsafe_code)]

use interface::ledger_call;
use ledger_pd::LedgerPd;
use microkit::{debug_println, pd_name, Channel, Handler, MessageInfo};

microkit::patched_bytes! {
    /// This tenant's checkpoint signing key (`totebox image set-key`; see `interface::keys`).
    static KEY_SLOT: [u8; interface::keys::KEY_SLOT_LEN] =
        ("totebox_signing_key", interface::keys::EMPTY_SLOT);
}

// The tenant's log state, request and response buffers (system.xml `heap_<tenant>`).
microkit::heap!(vaddr = "heap_vaddr", size = "heap_size");

/// The ledger, or `None` when it could not start (then every call is refused).
struct LedgerImage(Option<LedgerPd>);

impl Handler for LedgerImage {
    type Error = core::convert::Infallible;

    fn protected(
        &mut self,
        channel: Channel,
        info: MessageInfo,
    ) -> Result<MessageInfo, Self::Error> {
        match &mut self.0 {
            Some(pd) => pd.protected(channel, info),
            None => Ok(MessageInfo::new(ledger_call::BAD_CALL, 0)),
        }
    }
}

fn start() -> Result<LedgerPd, ledger_pd::InitError> {
    let slot = KEY_SLOT.get();
    let skey = interface::keys::slot_skey(&slot).map_err(ledger_pd::InitError::Key)?;
    ledger_pd::init(skey)
}

fn init() -> LedgerImage {
    match start() {
        Ok(pd) => {
            match pd.last_error() {
                None => debug_println!("{}|INFO: serving tenant {}", pd_name(), pd.tenant()),
                Some(e) => debug_println!(
                    "{}|INFO: serving tenant {}; log not open yet: {e}",
                    pd_name(),
                    pd.tenant()
                ),
            }
            LedgerImage(Some(pd))
        }
        Err(e) => {
            debug_println!("{}|ERROR: not serving: {e}", pd_name());
            LedgerImage(None)
        }
    }
}

microkit::protection_domain!(init);

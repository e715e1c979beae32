//! The **audit** PD's seL4 image. Passive: it runs on a ledger's budget, only inside that
//! ledger's protected call.
//!
//! Everything it does is the library ([`audit_pd::AuditPd`]), tested on the host and run by
//! the simulator. An audit PD that cannot start prints why and answers every record `STORAGE`:
//! every ledger then fails its reads closed (no content leaves unaudited).

#![cfg_attr(target_os = "none", no_std, no_main)]
#![forbid(unsafe_code)]

use audit_pd::AuditPd;
use interface::audit_call;
use microkit::{debug_println, set_mr, Channel, Handler, MessageInfo};

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

fn init() -> AuditImage {
    match audit_pd::init() {
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

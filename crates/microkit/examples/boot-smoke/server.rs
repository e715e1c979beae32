//! Boot smoke test, server PD: passive, higher priority than the client. Answers one kind of
//! protected call (label 1: sum the message registers, which exercises MR0..MR3 in machine
//! registers and MR4.. in the IPC buffer) and notifies the caller once it has replied.
//!
//! The expected console lines are listed in `README.md`.

#![cfg_attr(target_os = "none", no_std, no_main)]
#![forbid(unsafe_code)]

use microkit::{debug_println, get_mr, pd_name, set_mr, Channel, Handler, MessageInfo};

/// The channel to the client (`smoke.system`).
const CLIENT: Channel = Channel::new(0);
/// Label of a "sum these words" request.
const SUM: u64 = 1;
/// Reply labels.
const OK: u64 = 0;
const BAD_REQUEST: u64 = 1;

struct Server {
    calls: u64,
}

impl Handler for Server {
    type Error = core::convert::Infallible;

    fn protected(
        &mut self,
        channel: Channel,
        msg: MessageInfo,
    ) -> Result<MessageInfo, Self::Error> {
        self.calls += 1;
        debug_println!(
            "{}|INFO: protected call {} on channel {}: label {}, {} words",
            pd_name(),
            self.calls,
            channel.index(),
            msg.label(),
            msg.count()
        );
        if channel != CLIENT || msg.label() != SUM {
            return Ok(MessageInfo::new(BAD_REQUEST, 0));
        }
        let sum = (0..msg.count()).map(get_mr).fold(0u64, u64::wrapping_add);
        set_mr(0, sum);
        set_mr(4, self.calls); // an MR beyond the four machine registers
                               // Notifies the client (delivered after the reply: the client is blocked until then).
        CLIENT.notify();
        Ok(MessageInfo::new(OK, 5))
    }
}

fn init() -> Server {
    debug_println!(
        "{}|INFO: init, passive={}",
        pd_name(),
        microkit::pd_is_passive()
    );
    Server { calls: 0 }
}

microkit::protection_domain!(init);

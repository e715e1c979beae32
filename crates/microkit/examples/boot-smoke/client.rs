//! Boot smoke test, client PD: ppcalls the server from init with six message registers,
//! checks the reply, then waits for the server's notification and prints the final line.
//!
//! The expected console lines are listed in `README.md`.

#![cfg_attr(target_os = "none", no_std, no_main)]
#![forbid(unsafe_code)]

use microkit::{debug_println, get_mr, pd_name, set_mr, Channel, ChannelSet, Handler, MessageInfo};

/// The channel to the server (`smoke.system`).
const SERVER: Channel = Channel::new(0);
const SUM: u64 = 1;
const WORDS: [u64; 6] = [1, 2, 3, 4, 5, 6];

struct Client {
    reply_ok: bool,
}

impl Handler for Client {
    type Error = &'static str;

    fn notified(&mut self, channels: ChannelSet) -> Result<(), Self::Error> {
        debug_println!(
            "{}|INFO: notified on channels {}",
            pd_name(),
            channels.display()
        );
        if !channels.contains(SERVER) {
            return Err("notification from an unexpected channel");
        }
        if !self.reply_ok {
            return Err("notified before a correct reply");
        }
        debug_println!("BOOT-SMOKE|PASS");
        Ok(())
    }
}

fn init() -> Client {
    debug_println!("{}|INFO: init, calling server", pd_name());
    for (i, w) in WORDS.iter().enumerate() {
        set_mr(i, *w);
    }
    let reply = SERVER.pp_call(MessageInfo::new(SUM, WORDS.len()));
    let (sum, calls) = (get_mr(0), get_mr(4));
    debug_println!(
        "{}|INFO: reply label {}, {} words, sum {}, call {}",
        pd_name(),
        reply.label(),
        reply.count(),
        sum,
        calls
    );
    let reply_ok = reply.label() == 0 && reply.count() == 5 && sum == 21 && calls == 1;
    if !reply_ok {
        debug_println!("BOOT-SMOKE|FAIL: unexpected reply");
    }
    Client { reply_ok }
}

microkit::protection_domain!(init);

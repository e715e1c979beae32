//! Calls to the template PD: its typed request and reply, their labels and their message
//! registers, in one place, as every protocol here has them (`interface::msg::{ledger, audit,
//! psdb}`, built on what `interface::msg` shares): requests from 1, replies from 0x100, the one
//! [`NOT_SERVING`] for a PD that did not start, `encode` to a [`Message`] and `decode(info,
//! mrs)` back, and a [`DecodeError`] (never a panic) for anything else.
//!
//! | message | label | registers |
//! |---------|-------|-----------|
//! | [`Request::Usage`] | 1 | none |
//! | [`Reply::Usage`] | 0x100 | psdb's six `Usage` registers ([`Usage`]) |
//! | [`Reply::BadCall`] | 0x101 | none |
//! | [`Reply::Storage`] | 0x102 | none |
//! | [`Reply::NotServing`] | [`NOT_SERVING`] | none |
//!
//! Only the template handles these calls today, so the module lives in its crate. When a
//! second PD calls it, move this file into a crate of its own beside the others
//! (`crates/msg-<name>`, depending on `microkit`, `msg-core` and what its fields need), so that
//! both ends share one definition.

use interface::msg::{DecodeError, Message, Registers, NOT_SERVING, NOT_SERVING_REPLY};
use interface::Usage;
use microkit::MessageInfo;

/// The labels, each written once.
pub mod label {
    /// [`Request::Usage`](super::Request::Usage).
    pub const USAGE: u64 = 1;
    /// Every request label (a new request's label goes here too: the tests decode exactly these).
    pub const REQUESTS: [u64; 1] = [USAGE];
    /// [`Reply::Usage`](super::Reply::Usage): the figures are in the message registers.
    pub const OK: u64 = 0x100;
    /// [`Reply::BadCall`](super::Reply::BadCall).
    pub const BAD_CALL: u64 = 0x101;
    /// [`Reply::Storage`](super::Reply::Storage).
    pub const STORAGE: u64 = 0x102;
    /// [`Reply::NotServing`](super::Reply::NotServing): the shared value.
    pub const NOT_SERVING: u64 = interface::msg::NOT_SERVING;
}

/// A call to the template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// What the template's psdb namespace uses. No registers.
    Usage,
}

impl Request {
    /// Its label.
    pub const fn label(&self) -> u64 {
        match self {
            Request::Usage => label::USAGE,
        }
    }

    /// The message.
    pub const fn encode(&self) -> Message {
        match self {
            Request::Usage => Message::new(label::USAGE, []),
        }
    }

    /// The request a received message is: a known label and exactly its registers.
    pub fn decode(info: MessageInfo, mrs: &[u64]) -> Result<Request, DecodeError> {
        match info.label() {
            label::USAGE => {
                Registers::<0>::of(info, mrs)?;
                Ok(Request::Usage)
            }
            l => Err(DecodeError::UnknownLabel(l)),
        }
    }
}

/// The template's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// What psdb answered.
    Usage(Usage),
    /// A call the template does not know (or with registers it does not take).
    BadCall,
    /// psdb did not answer.
    Storage,
    /// The template did not start (its `|ERROR:` line says why).
    NotServing,
}

impl Reply {
    /// Its label.
    pub const fn label(&self) -> u64 {
        match self {
            Reply::Usage(_) => label::OK,
            Reply::BadCall => label::BAD_CALL,
            Reply::Storage => label::STORAGE,
            Reply::NotServing => NOT_SERVING,
        }
    }

    /// The message.
    pub const fn encode(&self) -> Message {
        match *self {
            Reply::Usage(u) => u.encode(label::OK),
            Reply::BadCall => Message::new(label::BAD_CALL, []),
            Reply::Storage => Message::new(label::STORAGE, []),
            Reply::NotServing => NOT_SERVING_REPLY,
        }
    }

    /// The template's answer to `to`, from the reply message.
    pub fn decode(to: &Request, info: MessageInfo, mrs: &[u64]) -> Result<Reply, DecodeError> {
        let reply = match (to, info.label()) {
            (Request::Usage, label::OK) => return Ok(Reply::Usage(Usage::decode(info, mrs)?)),
            (_, label::BAD_CALL) => Reply::BadCall,
            (_, label::STORAGE) => Reply::Storage,
            (_, NOT_SERVING) => Reply::NotServing,
            (_, l) => return Err(DecodeError::UnknownLabel(l)),
        };
        Registers::<0>::of(info, mrs)?;
        Ok(reply)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use interface::msg::{REPLY_LABELS, REQUEST_LABELS};

    const FIGURES: Usage = Usage {
        disk_used: 1,
        disk_quota: 2,
        index_used: 3,
        index_quota: 4,
        volume_free: 5,
        damaged: true,
    };

    #[test]
    fn every_request_and_reply_round_trips_within_the_ranges() {
        let req = Request::Usage;
        let m = req.encode();
        assert!(REQUEST_LABELS.contains(&m.label()));
        assert_eq!(Request::decode(m.info(), m.mrs()), Ok(req));
        for reply in [
            Reply::Usage(FIGURES),
            Reply::BadCall,
            Reply::Storage,
            Reply::NotServing,
        ] {
            let m = reply.encode();
            assert!(REPLY_LABELS.contains(&m.label()), "{reply:?}");
            assert_eq!(Reply::decode(&req, m.info(), m.mrs()), Ok(reply));
        }
        assert_eq!(Reply::NotServing.encode(), NOT_SERVING_REPLY);
    }

    #[test]
    fn unknown_labels_and_wrong_counts_are_refused() {
        for l in (0..0x400).chain([0xFFFF_FFFF]) {
            let r = Request::decode(MessageInfo::new(l, 0), &[]);
            assert_eq!(r.is_ok(), label::REQUESTS.contains(&l), "{l:#x}");
        }
        assert_eq!(
            Request::decode(MessageInfo::new(label::USAGE, 1), &[0]),
            Err(DecodeError::Count {
                label: label::USAGE,
                expected: 0,
                got: 1
            })
        );
        // A usage reply short of its six registers, an error reply with some.
        let short = MessageInfo::new(label::OK, 5);
        assert!(Reply::decode(&Request::Usage, short, &[0; 5]).is_err());
        let long = MessageInfo::new(label::STORAGE, 1);
        assert!(Reply::decode(&Request::Usage, long, &[0]).is_err());
    }
}

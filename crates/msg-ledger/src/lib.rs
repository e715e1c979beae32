//! The wire's calls to a tenant's ledger (wire -> ledger_<tenant>): the typed request and
//! reply, their labels and their message registers, shared by both ends. What the request and
//! response bytes in the shared region are, and the rules of a group in several calls, are in
//! `interface::ledger_call`.
//!
//! | message | label | MR0 |
//! |---------|-------|-----|
//! | [`Request`] with [`Call::Request`] / [`Call::Stage`] / [`Call::Commit`] | 1 / 2 / 3 | the request's length at offset 0 of the region |
//! | [`Reply::Ok`] | 0x100 | the response's length at offset 0 of the region |
//! | [`Reply::BadCall`] | 0x101 | (no registers) |
//! | [`Reply::Staged`] (to a stage only) | 0x102 | the entries staged so far |
//! | [`Reply::NotServing`] | [`NOT_SERVING`] | (no registers) |
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

use microkit::MessageInfo;
pub use msg_core::{DecodeError, Message, NOT_SERVING};
use msg_core::{Registers, NOT_SERVING_REPLY};

/// The labels, each written once: requests from 1, replies from 0x100
/// (`msg_core::REQUEST_LABELS`, `msg_core::REPLY_LABELS`).
pub mod label {
    /// [`Call::Request`](crate::Call::Request).
    pub const REQUEST: u64 = 1;
    /// [`Call::Stage`](crate::Call::Stage).
    pub const STAGE: u64 = 2;
    /// [`Call::Commit`](crate::Call::Commit).
    pub const COMMIT: u64 = 3;
    /// Every request label.
    pub const REQUESTS: [u64; 3] = [REQUEST, STAGE, COMMIT];
    /// [`Reply::Ok`](crate::Reply::Ok).
    pub const OK: u64 = 0x100;
    /// [`Reply::BadCall`](crate::Reply::BadCall).
    pub const BAD_CALL: u64 = 0x101;
    /// [`Reply::Staged`](crate::Reply::Staged).
    pub const STAGED: u64 = 0x102;
    /// [`Reply::NotServing`](crate::Reply::NotServing): the shared value.
    pub const NOT_SERVING: u64 = msg_core::NOT_SERVING;
}

/// What a call asks of the ledger (its label). Every call carries one request, so they differ
/// only in this.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// One client request, answered alone.
    Request,
    /// Append these entries to the group being staged; do not store or checkpoint yet.
    Stage,
    /// Append everything staged, then these entries, and sign one checkpoint.
    Commit,
}

impl Call {
    /// Its label.
    pub const fn label(self) -> u64 {
        match self {
            Call::Request => label::REQUEST,
            Call::Stage => label::STAGE,
            Call::Commit => label::COMMIT,
        }
    }
}

/// A call from the wire: which, and the length of the request (a `protocol::Request`'s
/// postcard bytes) at offset 0 of the region shared with the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    /// What is asked.
    pub call: Call,
    /// MR0: the request's length.
    pub len: usize,
}

impl Request {
    /// Its label.
    pub const fn label(&self) -> u64 {
        self.call.label()
    }

    /// The message: the call's label, MR0 the length.
    pub const fn encode(&self) -> Message {
        Message::new(self.label(), [self.len as u64])
    }

    /// The request a received message is: a known label and exactly one register.
    pub fn decode(info: MessageInfo, mrs: &[u64]) -> Result<Request, DecodeError> {
        let call = match info.label() {
            label::REQUEST => Call::Request,
            label::STAGE => Call::Stage,
            label::COMMIT => Call::Commit,
            l => return Err(DecodeError::UnknownLabel(l)),
        };
        let r = Registers::<1>::of(info, mrs)?;
        Ok(Request {
            call,
            len: r.length(0)?,
        })
    }
}

/// A ledger's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// A response is at offset 0 of the region (to a stage: it was refused, the stage
    /// discarded).
    Ok {
        /// MR0: its length.
        len: usize,
    },
    /// The call itself was malformed (label, register, length or channel).
    BadCall,
    /// A [`Call::Stage`] was kept.
    Staged {
        /// MR0: the entries staged so far.
        count: u32,
    },
    /// The ledger could not start ([`NOT_SERVING`]): the wire answers `Unavailable`.
    NotServing,
}

impl Reply {
    /// Its label.
    pub const fn label(&self) -> u64 {
        match self {
            Reply::Ok { .. } => label::OK,
            Reply::BadCall => label::BAD_CALL,
            Reply::Staged { .. } => label::STAGED,
            Reply::NotServing => NOT_SERVING,
        }
    }

    /// The message.
    pub const fn encode(&self) -> Message {
        match *self {
            Reply::Ok { len } => Message::new(label::OK, [len as u64]),
            Reply::BadCall => Message::new(label::BAD_CALL, []),
            Reply::Staged { count } => Message::new(label::STAGED, [count as u64]),
            Reply::NotServing => NOT_SERVING_REPLY,
        }
    }

    /// The ledger's answer to `to`, from the reply message: [`Reply::Staged`] answers only a
    /// stage.
    pub fn decode(to: &Request, info: MessageInfo, mrs: &[u64]) -> Result<Reply, DecodeError> {
        Ok(match info.label() {
            label::OK => Reply::Ok {
                len: Registers::<1>::of(info, mrs)?.length(0)?,
            },
            label::STAGED if to.call == Call::Stage => Reply::Staged {
                count: Registers::<1>::of(info, mrs)?.u32(0)?,
            },
            label::BAD_CALL => {
                Registers::<0>::of(info, mrs)?;
                Reply::BadCall
            }
            NOT_SERVING => {
                Registers::<0>::of(info, mrs)?;
                Reply::NotServing
            }
            l => return Err(DecodeError::UnknownLabel(l)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use msg_core::{REPLY_LABELS, REQUEST_LABELS};

    const CALLS: [Call; 3] = [Call::Request, Call::Stage, Call::Commit];

    fn replies(to: Call) -> Vec<Reply> {
        let mut v = vec![
            Reply::Ok { len: 0 },
            Reply::Ok { len: 128 << 10 },
            Reply::BadCall,
            Reply::NotServing,
        ];
        if to == Call::Stage {
            v.extend([
                Reply::Staged { count: 1 },
                Reply::Staged { count: u32::MAX },
            ]);
        }
        v
    }

    #[test]
    fn every_request_and_reply_round_trips() {
        for call in CALLS {
            for len in [0, 25, usize::MAX] {
                let req = Request { call, len };
                let m = req.encode();
                assert!(REQUEST_LABELS.contains(&m.label()));
                assert_eq!(Request::decode(m.info(), m.mrs()), Ok(req));
                for reply in replies(call) {
                    let m = reply.encode();
                    assert!(REPLY_LABELS.contains(&m.label()));
                    assert_eq!(Reply::decode(&req, m.info(), m.mrs()), Ok(reply));
                }
            }
        }
    }

    #[test]
    fn labels_are_as_documented() {
        assert_eq!(CALLS.map(Call::label), [1, 2, 3]);
        assert_eq!(CALLS.map(Call::label), label::REQUESTS);
        let r = [
            Reply::Ok { len: 1 },
            Reply::BadCall,
            Reply::Staged { count: 1 },
            Reply::NotServing,
        ];
        assert_eq!(r.map(|r| r.label()), [0x100, 0x101, 0x102, NOT_SERVING]);
    }

    #[test]
    fn unknown_labels_and_wrong_counts_are_refused() {
        let req = Request {
            call: Call::Request,
            len: 1,
        };
        for l in (0..0x400).chain([0xFFFF_FFFF]) {
            let r = Request::decode(MessageInfo::new(l, 1), &[1]);
            assert_eq!(r.is_ok(), label::REQUESTS.contains(&l), "{l:#x}");
            if !label::REQUESTS.contains(&l) {
                assert_eq!(r, Err(DecodeError::UnknownLabel(l)));
            }
        }
        for count in [0, 2, 6, 120] {
            assert_eq!(
                Request::decode(MessageInfo::new(label::STAGE, count), &[1; 6]),
                Err(DecodeError::Count {
                    label: label::STAGE,
                    expected: 1,
                    got: count
                })
            );
        }
        // A reply with its label's count wrong; a stage's answer to anything but a stage.
        let bad = |to: &Request, l, n| Reply::decode(to, MessageInfo::new(l, n), &[1, 1]);
        assert!(bad(&req, label::OK, 0).is_err());
        assert!(bad(&req, label::OK, 2).is_err());
        assert!(bad(&req, label::BAD_CALL, 1).is_err());
        assert!(bad(&req, NOT_SERVING, 1).is_err());
        assert_eq!(
            bad(&req, label::STAGED, 1),
            Err(DecodeError::UnknownLabel(label::STAGED))
        );
        let commit = Request {
            call: Call::Commit,
            len: 1,
        };
        assert!(bad(&commit, label::STAGED, 1).is_err());
        let stage = Request {
            call: Call::Stage,
            len: 1,
        };
        assert_eq!(
            bad(&stage, label::STAGED, 1),
            Ok(Reply::Staged { count: 1 })
        );
        // A staged count past u32.
        assert!(Reply::decode(&stage, MessageInfo::new(label::STAGED, 1), &[1 << 32]).is_err());
    }
}

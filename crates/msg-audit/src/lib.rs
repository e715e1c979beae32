//! A ledger's calls to audit (ledger_<tenant> -> audit): the typed requests and replies, their
//! labels and their message registers, shared by both ends. The record's bytes in the shared
//! region are `interface::audit_call`'s; the tenant a record is about is the channel it arrives
//! on, never a field of a message.
//!
//! | message | label | registers |
//! |---------|-------|-----------|
//! | [`Request::Record`] | 1 | MR0: the encoded record's length at offset 0 of the region |
//! | [`Request::Usage`] | 3 | none |
//! | [`Reply::Recorded`] (to a record) | 0x100 | MR0: the record's index in the audit log |
//! | [`Reply::Usage`] (to a usage request) | 0x100 | the six of psdb's `Usage` reply ([`Usage`]) |
//! | [`Reply::BadCall`] | 0x101 | none |
//! | [`Reply::Storage`] | 0x102 | none |
//! | [`Reply::NotServing`] | [`NOT_SERVING`] | none |
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

use microkit::MessageInfo;
pub use msg_core::{DecodeError, Message, NOT_SERVING};
use msg_core::{Registers, NOT_SERVING_REPLY};
pub use msg_psdb::Usage;

/// The labels, each written once: requests from 1, replies from 0x100
/// (`msg_core::REQUEST_LABELS`, `msg_core::REPLY_LABELS`).
pub mod label {
    /// [`Request::Record`](crate::Request::Record).
    pub const RECORD: u64 = 1;
    /// [`Request::Usage`](crate::Request::Usage).
    pub const USAGE: u64 = 3;
    /// Every request label.
    pub const REQUESTS: [u64; 2] = [RECORD, USAGE];
    /// [`Reply::Recorded`](crate::Reply::Recorded), and [`Reply::Usage`](crate::Reply::Usage)
    /// ("done": which of the two it is follows from the request).
    pub const RECORDED: u64 = 0x100;
    /// [`Reply::BadCall`](crate::Reply::BadCall).
    pub const BAD_CALL: u64 = 0x101;
    /// [`Reply::Storage`](crate::Reply::Storage).
    pub const STORAGE: u64 = 0x102;
    /// [`Reply::NotServing`](crate::Reply::NotServing): the shared value.
    pub const NOT_SERVING: u64 = msg_core::NOT_SERVING;
}

/// A call from a ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// Record a read before its content leaves the ledger: the encoded record at offset 0 of
    /// the region.
    Record {
        /// MR0: the record's length.
        len: usize,
    },
    /// What the audit log's namespace uses of its quota (for a tenant's status request):
    /// audit asks psdb on its own channel, so it can only learn its own namespace's figures.
    /// No registers. Metadata only: nothing is recorded.
    Usage,
}

impl Request {
    /// Its label.
    pub const fn label(&self) -> u64 {
        match self {
            Request::Record { .. } => label::RECORD,
            Request::Usage => label::USAGE,
        }
    }

    /// The message.
    pub const fn encode(&self) -> Message {
        match *self {
            Request::Record { len } => Message::new(label::RECORD, [len as u64]),
            Request::Usage => Message::new(label::USAGE, []),
        }
    }

    /// The request a received message is: a known label and exactly its registers.
    pub fn decode(info: MessageInfo, mrs: &[u64]) -> Result<Request, DecodeError> {
        match info.label() {
            label::RECORD => Ok(Request::Record {
                len: Registers::<1>::of(info, mrs)?.length(0)?,
            }),
            label::USAGE => {
                Registers::<0>::of(info, mrs)?;
                Ok(Request::Usage)
            }
            l => Err(DecodeError::UnknownLabel(l)),
        }
    }
}

/// Audit's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// To a record: it is durable in the audit log.
    Recorded {
        /// MR0: its index.
        index: u64,
    },
    /// To a usage request: the audit namespace's figures, as psdb stated them.
    Usage(Usage),
    /// Malformed call (label, registers, length, record or channel).
    BadCall,
    /// The audit log could not store the record (to a usage request: psdb did not answer).
    Storage,
    /// The audit log could not start ([`NOT_SERVING`]): every read fails closed.
    NotServing,
}

impl Reply {
    /// Its label.
    pub const fn label(&self) -> u64 {
        match self {
            Reply::Recorded { .. } | Reply::Usage(_) => label::RECORDED,
            Reply::BadCall => label::BAD_CALL,
            Reply::Storage => label::STORAGE,
            Reply::NotServing => NOT_SERVING,
        }
    }

    /// The message.
    pub const fn encode(&self) -> Message {
        match *self {
            Reply::Recorded { index } => Message::new(label::RECORDED, [index]),
            Reply::Usage(u) => u.encode(label::RECORDED),
            Reply::BadCall => Message::new(label::BAD_CALL, []),
            Reply::Storage => Message::new(label::STORAGE, []),
            Reply::NotServing => NOT_SERVING_REPLY,
        }
    }

    /// Audit's answer to `to`, from the reply message: a `RECORDED` reply is read as the
    /// answer `to` asked for (an index to a record, the figures to a usage request).
    pub fn decode(to: &Request, info: MessageInfo, mrs: &[u64]) -> Result<Reply, DecodeError> {
        Ok(match info.label() {
            label::RECORDED => match to {
                Request::Record { .. } => Reply::Recorded {
                    index: Registers::<1>::of(info, mrs)?.word(0)?,
                },
                Request::Usage => Reply::Usage(Usage::decode(info, mrs)?),
            },
            l => {
                let reply = match l {
                    label::BAD_CALL => Reply::BadCall,
                    label::STORAGE => Reply::Storage,
                    NOT_SERVING => Reply::NotServing,
                    _ => return Err(DecodeError::UnknownLabel(l)),
                };
                Registers::<0>::of(info, mrs)?;
                reply
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use msg_core::{REPLY_LABELS, REQUEST_LABELS};

    const FIGURES: Usage = Usage {
        disk_used: 10,
        disk_quota: 20,
        index_used: 30,
        index_quota: 40,
        volume_free: u64::MAX,
        damaged: true,
    };

    fn replies(to: &Request) -> Vec<Reply> {
        let mut v = vec![Reply::BadCall, Reply::Storage, Reply::NotServing];
        match to {
            Request::Record { .. } => v.extend([
                Reply::Recorded { index: 0 },
                Reply::Recorded { index: u64::MAX },
            ]),
            Request::Usage => v.extend([Reply::Usage(FIGURES), Reply::Usage(Usage::default())]),
        }
        v
    }

    #[test]
    fn every_request_and_reply_round_trips() {
        for req in [
            Request::Record { len: 25 },
            Request::Record { len: 0 },
            Request::Usage,
        ] {
            let m = req.encode();
            assert!(REQUEST_LABELS.contains(&m.label()));
            assert_eq!(Request::decode(m.info(), m.mrs()), Ok(req));
            for reply in replies(&req) {
                let m = reply.encode();
                assert!(REPLY_LABELS.contains(&m.label()));
                assert_eq!(
                    Reply::decode(&req, m.info(), m.mrs()),
                    Ok(reply),
                    "{reply:?}"
                );
            }
        }
    }

    #[test]
    fn labels_are_as_documented() {
        assert_eq!(
            [Request::Record { len: 1 }, Request::Usage].map(|r| r.label()),
            label::REQUESTS
        );
        assert_eq!(label::REQUESTS, [1, 3]);
        let r = [
            Reply::Recorded { index: 1 },
            Reply::Usage(FIGURES),
            Reply::BadCall,
            Reply::Storage,
            Reply::NotServing,
        ];
        assert_eq!(
            r.map(|r| r.label()),
            [0x100, 0x100, 0x101, 0x102, NOT_SERVING]
        );
    }

    #[test]
    fn unknown_labels_and_wrong_counts_are_refused() {
        for l in (0..0x400).chain([0xFFFF_FFFF]) {
            let count = if l == label::USAGE { 0 } else { 1 };
            let r = Request::decode(MessageInfo::new(l, count), &[25]);
            assert_eq!(r.is_ok(), label::REQUESTS.contains(&l), "{l:#x}");
            if !label::REQUESTS.contains(&l) {
                assert_eq!(r, Err(DecodeError::UnknownLabel(l)));
            }
        }
        // A record without its length; a usage request with registers.
        assert!(Request::decode(MessageInfo::new(label::RECORD, 0), &[]).is_err());
        assert!(Request::decode(MessageInfo::new(label::USAGE, 1), &[0]).is_err());
        // The index reply read as figures and the reverse; an error reply with registers.
        let m = Reply::Recorded { index: 4 }.encode();
        assert!(Reply::decode(&Request::Usage, m.info(), m.mrs()).is_err());
        let m = Reply::Usage(FIGURES).encode();
        assert!(Reply::decode(&Request::Record { len: 25 }, m.info(), m.mrs()).is_err());
        assert!(Reply::decode(&Request::Usage, MessageInfo::new(label::STORAGE, 1), &[0]).is_err());
        // Not serving: the shared label, no registers (what msg_core::Image answers).
        assert_eq!(
            Reply::decode(&Request::Usage, MessageInfo::new(NOT_SERVING, 0), &[]),
            Ok(Reply::NotServing)
        );
    }
}

//! A ledger's calls to audit (ledger_<tenant> -> audit): the typed requests and replies, their
//! labels and their message registers, shared by both ends. The record's bytes in the shared
//! region are `interface::audit_call`'s; the tenant a record is about is the channel it arrives
//! on, never a field of a message.
//!
//! | message | label | registers |
//! |---------|-------|-----------|
//! | [`Request::Record`] | 1 | MR0: the encoded record's length at offset 0 of the region |
//! | [`Request::Usage`] | 3 | none |
//! | [`Request::Check`] (wire -> audit) | 4 | MR0: the [`AccessCall`]'s length at offset 0 |
//! | [`Request::Authorize`] (ledger -> audit) | 5 | MR0: the [`AccessCall`]'s length at offset 0 |
//! | [`Request::Serve`] (wire -> audit) | 6 | MR0: an archive-wide protocol request's length |
//! | [`Reply::Recorded`] (to a record) | 0x100 | MR0: the record's index in the audit log |
//! | [`Reply::Usage`] (to a usage request) | 0x100 | the six of psdb's `Usage` reply ([`Usage`]) |
//! | [`Reply::BadCall`] | 0x101 | none |
//! | [`Reply::Storage`] | 0x102 | none |
//! | [`Reply::Granted`] (to Check, Authorize) | 0x103 | MR0: 1 if rows follow, MR1, MR2: rows `start..end` |
//! | [`Reply::Open`] (to Check, Authorize) | 0x104 | none: access control is off (the archive is not provisioned: `Access::Open`) |
//! | [`Reply::Refused`] (to Check, Authorize) | 0x105 | MR0: the protocol `ErrorCode` |
//! | [`Reply::Served`] (to Serve) | 0x106 | MR0: the protocol response's length at offset 0 |
//! | [`Reply::NotServing`] | [`NOT_SERVING`] | none |
//!
//! Check and Authorize carry an [`AccessCall`] in the region (tenant, action text, the
//! request's authorization); the tenant of an Authorize is the channel's, the field is empty.
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
    /// [`Request::Check`](super::Request::Check).
    pub const CHECK: u64 = 4;
    /// [`Request::Authorize`](super::Request::Authorize).
    pub const AUTHORIZE: u64 = 5;
    /// [`Request::Serve`](super::Request::Serve).
    pub const SERVE: u64 = 6;
    /// [`Request::Usage`](crate::Request::Usage).
    pub const USAGE: u64 = 3;
    /// Every request label.
    pub const REQUESTS: [u64; 5] = [RECORD, USAGE, CHECK, AUTHORIZE, SERVE];
    /// [`Reply::Recorded`](crate::Reply::Recorded), and [`Reply::Usage`](crate::Reply::Usage)
    /// ("done": which of the two it is follows from the request).
    pub const RECORDED: u64 = 0x100;
    /// [`Reply::BadCall`](crate::Reply::BadCall).
    pub const BAD_CALL: u64 = 0x101;
    /// [`Reply::Storage`](crate::Reply::Storage).
    pub const STORAGE: u64 = 0x102;
    /// [`Reply::Granted`](super::Reply::Granted).
    pub const GRANTED: u64 = 0x103;
    /// [`Reply::Open`](super::Reply::Open).
    pub const OPEN: u64 = 0x104;
    /// [`Reply::Refused`](super::Reply::Refused).
    pub const REFUSED: u64 = 0x105;
    /// [`Reply::Served`](super::Reply::Served).
    pub const SERVED: u64 = 0x106;
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
    /// From the wire: may this request go on? `authorize` and the nonce check without
    /// remembering it; a refusal is recorded before the answer.
    Check {
        /// MR0: the [`AccessCall`]'s length.
        len: usize,
    },
    /// From a ledger, about to act: `authorize` for the channel's tenant, remember the nonce,
    /// record; only then [`Reply::Granted`].
    Authorize {
        /// MR0: the [`AccessCall`]'s length.
        len: usize,
    },
    /// From the wire: an archive-wide protocol request (pair change, audit object,
    /// identity), answered by audit itself with a protocol response in the region.
    Serve {
        /// MR0: the request's length.
        len: usize,
    },
}

impl Request {
    /// Its label.
    pub const fn label(&self) -> u64 {
        match self {
            Request::Record { .. } => label::RECORD,
            Request::Usage => label::USAGE,
            Request::Check { .. } => label::CHECK,
            Request::Authorize { .. } => label::AUTHORIZE,
            Request::Serve { .. } => label::SERVE,
        }
    }

    /// The message.
    pub const fn encode(&self) -> Message {
        match *self {
            Request::Record { len } => Message::new(label::RECORD, [len as u64]),
            Request::Usage => Message::new(label::USAGE, []),
            Request::Check { len } => Message::new(label::CHECK, [len as u64]),
            Request::Authorize { len } => Message::new(label::AUTHORIZE, [len as u64]),
            Request::Serve { len } => Message::new(label::SERVE, [len as u64]),
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
            label::CHECK => Ok(Request::Check {
                len: Registers::<1>::of(info, mrs)?.length(0)?,
            }),
            label::AUTHORIZE => Ok(Request::Authorize {
                len: Registers::<1>::of(info, mrs)?.length(0)?,
            }),
            label::SERVE => Ok(Request::Serve {
                len: Registers::<1>::of(info, mrs)?.length(0)?,
            }),
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
    /// To Check or Authorize: go on; for content, serve no rows outside `rows`
    /// (`start..end`).
    Granted {
        /// MR0 (1 if present), MR1, MR2.
        rows: Option<(u64, u64)>,
    },
    /// To Check or Authorize: access control is off (the archive is not provisioned,
    /// `Access::Open`, the phase-1 behaviour): go on, and record a read with
    /// [`Request::Record`] as before.
    Open,
    /// To Check or Authorize: refused, and the refusal is recorded (if audit could).
    Refused {
        /// MR0: the protocol error code.
        code: u8,
    },
    /// To Serve: the protocol response, `len` bytes at offset 0 of the region.
    Served {
        /// MR0.
        len: usize,
    },
}

impl Reply {
    /// Its label.
    pub const fn label(&self) -> u64 {
        match self {
            Reply::Recorded { .. } | Reply::Usage(_) => label::RECORDED,
            Reply::BadCall => label::BAD_CALL,
            Reply::Storage => label::STORAGE,
            Reply::NotServing => NOT_SERVING,
            Reply::Granted { .. } => label::GRANTED,
            Reply::Open => label::OPEN,
            Reply::Refused { .. } => label::REFUSED,
            Reply::Served { .. } => label::SERVED,
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
            Reply::Granted { rows: None } => Message::new(label::GRANTED, [0, 0, 0]),
            Reply::Granted { rows: Some((a, b)) } => Message::new(label::GRANTED, [1, a, b]),
            Reply::Open => Message::new(label::OPEN, []),
            Reply::Refused { code } => Message::new(label::REFUSED, [code as u64]),
            Reply::Served { len } => Message::new(label::SERVED, [len as u64]),
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
                _ => return Err(DecodeError::UnknownLabel(label::RECORDED)),
            },
            label::GRANTED | label::OPEN | label::REFUSED
                if matches!(to, Request::Check { .. } | Request::Authorize { .. }) =>
            {
                match info.label() {
                    label::GRANTED => {
                        let r = Registers::<3>::of(info, mrs)?;
                        let rows = if r.flag(0)? {
                            Some((r.word(1)?, r.word(2)?))
                        } else {
                            r.zero(1)?;
                            r.zero(2)?;
                            None
                        };
                        Reply::Granted { rows }
                    }
                    label::OPEN => {
                        Registers::<0>::of(info, mrs)?;
                        Reply::Open
                    }
                    _ => {
                        let code = Registers::<1>::of(info, mrs)?.u32(0)?;
                        let r = Registers::<1>::of(info, mrs)?;
                        Reply::Refused {
                            code: u8::try_from(code).map_err(|_| r.bad(0))?,
                        }
                    }
                }
            }
            label::SERVED if matches!(to, Request::Serve { .. }) => Reply::Served {
                len: Registers::<1>::of(info, mrs)?.length(0)?,
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

/// Longest action text an [`AccessCall`] carries (`access::Action::to_text`: a `get-object`
/// with a path of at most 256 bytes and its offset is under 320 bytes).
pub const MAX_ACTION: usize = 320;

/// Longest encoded [`AccessCall`]: the tenant (with its length byte), the action text and the
/// authorization (with their `u16` lengths). The ledger <-> audit region must hold it
/// (`interface` checks `size::LEDGER_AUDIT >= ACCESS_CALL_MAX`).
pub const ACCESS_CALL_MAX: usize =
    1 + protocol::MAX_TENANT + 2 + MAX_ACTION + 2 + protocol::MAX_AUTH;

/// What Check and Authorize carry in the region: the tenant the request is for (empty for an
/// Authorize: the channel says, and for an archive-wide action), the action's text as the
/// `access` crate writes it, and the request's authorization as it came (empty: unsigned).
///
/// Encoding: the tenant's length (one byte) and bytes, the action's length (`u16`
/// little-endian) and bytes, the authorization's length (`u16`) and bytes; nothing after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccessCall<'a> {
    /// The tenant (`moduleId`).
    pub tenant: &'a str,
    /// The action text.
    pub action: &'a [u8],
    /// The authorization (`protocol::Request::capability`).
    pub auth: &'a [u8],
}

impl<'a> AccessCall<'a> {
    /// Encodes into `out`; its length, or `None` if a field is over its bound or `out` is short.
    pub fn encode(&self, out: &mut [u8]) -> Option<usize> {
        if self.tenant.len() > protocol::MAX_TENANT
            || self.action.len() > MAX_ACTION
            || self.auth.len() > protocol::MAX_AUTH
        {
            return None;
        }
        let mut n = 0;
        let mut put = |b: &[u8]| -> Option<()> {
            out.get_mut(n..n + b.len())?.copy_from_slice(b);
            n += b.len();
            Some(())
        };
        put(&[self.tenant.len() as u8])?;
        put(self.tenant.as_bytes())?;
        put(&(self.action.len() as u16).to_le_bytes())?;
        put(self.action)?;
        put(&(self.auth.len() as u16).to_le_bytes())?;
        put(self.auth)?;
        Some(n)
    }

    /// Decodes exactly `b`; `None` if it is not one call within the bounds.
    pub fn decode(b: &'a [u8]) -> Option<AccessCall<'a>> {
        let (&t, rest) = b.split_first()?;
        let (tenant, rest) = rest.split_at_checked(usize::from(t))?;
        let tenant = core::str::from_utf8(tenant).ok()?;
        let (al, rest) = rest.split_at_checked(2)?;
        let (action, rest) =
            rest.split_at_checked(usize::from(u16::from_le_bytes([al[0], al[1]])))?;
        let (ul, rest) = rest.split_at_checked(2)?;
        let (auth, rest) =
            rest.split_at_checked(usize::from(u16::from_le_bytes([ul[0], ul[1]])))?;
        let ok = rest.is_empty()
            && tenant.len() <= protocol::MAX_TENANT
            && action.len() <= MAX_ACTION
            && auth.len() <= protocol::MAX_AUTH;
        ok.then_some(AccessCall {
            tenant,
            action,
            auth,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use msg_core::{REPLY_LABELS, REQUEST_LABELS};

    #[test]
    fn access_calls_round_trip_and_refuse_anything_else() {
        let auth = vec![7u8; protocol::MAX_AUTH];
        let action = vec![b'a'; MAX_ACTION];
        let tenant = "t".repeat(protocol::MAX_TENANT);
        let big = AccessCall {
            tenant: &tenant,
            action: &action,
            auth: &auth,
        };
        let mut buf = vec![0u8; ACCESS_CALL_MAX + 10];
        let n = big.encode(&mut buf).unwrap();
        assert_eq!(n, ACCESS_CALL_MAX);
        assert_eq!(AccessCall::decode(&buf[..n]), Some(big));
        // Short output, over bounds, trailing or missing bytes.
        assert_eq!(big.encode(&mut buf[..n - 1]), None);
        let over = vec![0u8; protocol::MAX_AUTH + 1];
        assert_eq!(AccessCall { auth: &over, ..big }.encode(&mut buf), None);
        let small = AccessCall {
            tenant: "corporate",
            action: b"x",
            auth: &[],
        };
        let n = small.encode(&mut buf).unwrap();
        assert_eq!(AccessCall::decode(&buf[..n]), Some(small));
        assert_eq!(AccessCall::decode(&buf[..n + 1]), None);
        for k in 0..n {
            assert_eq!(AccessCall::decode(&buf[..k]), None, "{k}");
        }
    }

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
            Request::Check { .. } | Request::Authorize { .. } => v.extend([
                Reply::Granted { rows: None },
                Reply::Granted {
                    rows: Some((10, 20)),
                },
                Reply::Open,
                Reply::Refused { code: 29 },
            ]),
            Request::Serve { .. } => v.extend([Reply::Served { len: 77 }]),
        }
        v
    }

    #[test]
    fn every_request_and_reply_round_trips() {
        for req in [
            Request::Record { len: 25 },
            Request::Record { len: 0 },
            Request::Usage,
            Request::Check { len: 100 },
            Request::Authorize { len: 2000 },
            Request::Serve { len: 5 },
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
            [
                Request::Record { len: 1 },
                Request::Usage,
                Request::Check { len: 1 },
                Request::Authorize { len: 1 },
                Request::Serve { len: 1 },
            ]
            .map(|r| r.label()),
            label::REQUESTS
        );
        assert_eq!(label::REQUESTS, [1, 3, 4, 5, 6]);
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

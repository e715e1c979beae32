//! The messages: a [`Request`] from a client, a [`Response`] from the box, postcard-encoded.
//!
//! Every request names its tenant (`moduleId`) and carries a request id the response echoes
//! (0 answers a frame that could not be decoded far enough to find its id). Entries travel in
//! the tlog-tiles entry-bundle encoding (each entry a big-endian `u16` length, then its bytes),
//! borrowed from the frame: decoding allocates nothing.

use serde::{Deserialize, Serialize};

use crate::frame::MAX_PAYLOAD;

/// Largest entry (the tlog-tiles limit: a `u16` length).
pub const MAX_ENTRY: usize = u16::MAX as usize;

/// Room a [`Response`] needs besides its entries or object bytes (id, tags, counters and length
/// prefixes, each a varint of at most 10 bytes): the box fills a response with at most
/// `MAX_PAYLOAD - RESPONSE_OVERHEAD` bytes of entries.
pub const RESPONSE_OVERHEAD: usize = 64;

/// Most object bytes one [`Body::Object`] carries; larger objects (an entry bundle is up to
/// 16 MiB) are fetched in chunks with [`Op::GetObject`]'s `offset`.
pub const MAX_CHUNK: usize = 64 * 1024;

/// Longest tenant name (`moduleId`).
pub const MAX_TENANT: usize = 32;

/// Most bytes of [`Request::capability`]: an [`Authorization`] of a request note and a
/// capability note of at most [`MAX_AUTH_NOTE`] bytes each, plus postcard's tag and lengths.
pub const MAX_AUTH: usize = 2 * MAX_AUTH_NOTE + 8;

/// Most bytes of one note an [`Authorization`] carries (the `access` crate's limit on a
/// request or capability note; the longest it writes are about 800 bytes).
pub const MAX_AUTH_NOTE: usize = 1024;

/// What [`Request::capability`] holds when it is not empty: the notes that authorize the
/// request. An enum so that a later version is a new variant (postcard: its index first),
/// which a box that predates it refuses as undecodable instead of misreading.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Authorization<'a> {
    /// Version 1: a `totebox-request/v1` note signed by the requester, and a
    /// `totebox-capability/v1` note signed by an ADMIN key (empty when the request needs none).
    V1 {
        /// The signed request note's bytes.
        request: &'a [u8],
        /// The capability note's bytes, or empty.
        capability: &'a [u8],
    },
}

impl<'a> Authorization<'a> {
    /// Decodes the whole of `bytes` (a non-empty [`Request::capability`]); refuses more than
    /// [`MAX_AUTH`] bytes, or notes over [`MAX_AUTH_NOTE`].
    pub fn decode(bytes: &'a [u8]) -> Result<Self, CodecError> {
        if bytes.len() > MAX_AUTH {
            return Err(CodecError::TooLarge);
        }
        let a: Authorization<'a> = decode(bytes)?;
        let Authorization::V1 {
            request,
            capability,
        } = &a;
        if request.len() > MAX_AUTH_NOTE || capability.len() > MAX_AUTH_NOTE {
            return Err(CodecError::TooLarge);
        }
        Ok(a)
    }

    /// Encodes into `out`; returns the length.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, CodecError> {
        let n = encode(self, out)?;
        if n > MAX_AUTH {
            return Err(CodecError::TooLarge);
        }
        Ok(n)
    }
}

/// A client request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request<'a> {
    /// Echoed in the response; chosen by the client.
    pub id: u64,
    /// The tenant (`moduleId`) whose ledger serves the request. Ignored by [`Op::Ping`].
    pub tenant: &'a str,
    /// The request's **authorization**: empty for an unsigned request, else an
    /// [`Authorization`] (postcard) holding the request's signed note and, when one is needed,
    /// a capability note (`docs/access.md`; the `access` crate parses and checks them). At
    /// most [`MAX_AUTH`] bytes. The field keeps the name and place it had when it was
    /// reserved, so a frame from before access control (an empty field) still decodes and is
    /// refused as [`ErrorCode::Unsigned`] by an archive that requires signatures (or served
    /// as INTERFACE metadata when the archive is public, `PUBLIC_METADATA=1`).
    pub capability: &'a [u8],
    /// What to do.
    #[serde(borrow)]
    pub op: Op<'a>,
}

/// An operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op<'a> {
    /// Liveness: answered by the wire itself with [`Body::Pong`].
    Ping,
    /// The tenant log's origin, verifier key and committed size.
    Hello,
    /// Append the entries (entry-bundle encoding, at least one), then commit them with one
    /// signed checkpoint. Acknowledged only once the checkpoint is durable.
    Append {
        /// The entries.
        entries: &'a [u8],
    },
    /// Committed entries from index `since`, at most `max` (fewer if the response fills up).
    Read {
        /// First index.
        since: u64,
        /// Most entries wanted.
        max: u32,
    },
    /// The latest signed checkpoint.
    Checkpoint,
    /// Bytes `offset..` (at most [`MAX_CHUNK`]) of a tlog-tiles object of the tenant's log:
    /// `checkpoint`, `tile/<L>/<N>[.p/<W>]` or `tile/entries/<N>[.p/<W>]`. For export.
    GetObject {
        /// The object's path.
        path: &'a str,
        /// First byte wanted.
        offset: u64,
    },
    /// How much of its storage the tenant uses, and the audit log's: answered with
    /// [`Body::Status`]. Metadata, no entry content: not audited.
    ///
    /// Last on purpose: postcard encodes a variant as its index (a varint) followed by its
    /// fields, so appending a variant keeps every earlier request's bytes as they were, and a
    /// box that predates it refuses the request as [`ErrorCode::BadMessage`] (an unknown
    /// index does not decode). New variants go after this one.
    Status,
    /// An ADMIN-signed pairing change (`totebox-pairing/v1` note, `docs/access.md`), applied
    /// by the archive's audit PD and recorded append-only on its disk; answered
    /// [`Body::Pong`] once durable. Archive-wide: `tenant` is empty. Its signed request's
    /// `op pair-change` names the note's SHA-256.
    PairChange {
        /// The change note's bytes (at most [`MAX_AUTH_NOTE`]).
        change: &'a [u8],
    },
    /// Bytes `offset..` of an object of the audit log (psdb namespace `audit`): `checkpoint`,
    /// tiles, entry bundles, `journal/<16 hex>`: the audit export, ADMIN paired for `*` only.
    /// Archive-wide: `tenant` is empty. Answered [`Body::Object`].
    AuditObject {
        /// The object's path.
        path: &'a str,
        /// First byte wanted.
        offset: u64,
    },
    /// The archive's identity: its verifier key and a proof over `challenge`
    /// ([`Body::Identity`]). Never signed (the client needs the key before it can sign).
    Identity {
        /// A client-chosen random challenge.
        challenge: [u8; 16],
    },
}

/// The box's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response<'a> {
    /// The request's id (0 if the request could not be decoded).
    pub id: u64,
    /// The result.
    #[serde(borrow)]
    pub body: Body<'a>,
}

/// What a response says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Body<'a> {
    /// Answer to [`Op::Ping`].
    Pong,
    /// Answer to [`Op::Hello`].
    Hello {
        /// The log's origin (first line of its checkpoints).
        origin: &'a str,
        /// The note verifier key of the log's checkpoints.
        vkey: &'a str,
        /// Size of the latest checkpoint.
        size: u64,
    },
    /// The entries were appended as `first .. first + count` and are durable, covered by the
    /// checkpoint of `size`.
    Appended {
        /// Index of the first entry.
        first: u64,
        /// Number appended.
        count: u32,
        /// Size of the checkpoint that commits them.
        size: u64,
    },
    /// Entries `first ..` (entry-bundle encoding; possibly none).
    Entries {
        /// Index of the first entry.
        first: u64,
        /// The entries.
        entries: &'a [u8],
    },
    /// The latest signed checkpoint note.
    Checkpoint {
        /// The note's bytes.
        note: &'a [u8],
    },
    /// A piece of an object.
    Object {
        /// The object's size.
        total: u64,
        /// Where `data` starts.
        offset: u64,
        /// The bytes.
        data: &'a [u8],
    },
    /// The request failed; nothing was changed unless the code says otherwise.
    Error {
        /// Why.
        code: ErrorCode,
    },
    /// Answer to [`Op::Status`]: the tenant's use of its share of the box's storage (its psdb
    /// namespace's disk and index quotas), the audit log's use of its share, and the volume's
    /// free bytes. Last, like [`Op::Status`], so earlier responses keep their encoding.
    Status {
        /// Entries in the tenant's log (its committed size; 0 if the log cannot be opened
        /// because it is damaged).
        size: u64,
        /// Disk bytes the tenant's namespace uses.
        disk_used: u64,
        /// The tenant's disk quota.
        disk_quota: u64,
        /// Index bytes charged to the tenant's namespace.
        index_used: u64,
        /// The tenant's index quota.
        index_quota: u64,
        /// Bytes still free on the volume (shared by every namespace).
        volume_free: u64,
        /// Disk bytes the audit log uses.
        audit_disk_used: u64,
        /// The audit log's disk quota.
        audit_disk_quota: u64,
        /// Whether the tenant's stored log is damaged: psdb marks its namespace (no more
        /// writes), or the ledger cannot open it for damage.
        damaged: bool,
    },
    /// Answer to [`Op::Identity`]: the archive's identity verifier key and a
    /// `totebox-identity/v1` note over the challenge, signed by it.
    Identity {
        /// The archive's verifier key string.
        archive: &'a str,
        /// The identity proof note.
        proof: &'a [u8],
    },
}

/// Why a request failed. Closed, explicit discriminants from 1; on the wire as that byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "u8", try_from = "u8")]
#[repr(u8)]
pub enum ErrorCode {
    /// The frame was damaged (COBS or checksum); it was dropped.
    BadFrame = 1,
    /// The frame was longer than the maximum; it was dropped.
    Oversize = 2,
    /// The frame's payload is not a request.
    BadMessage = 3,
    /// No such tenant in this box.
    UnknownTenant = 4,
    /// The request reached a ledger that is not its tenant's (never from a correct wire).
    WrongTenant = 5,
    /// An argument is invalid (empty append, bad path, non-empty capability, ...).
    BadRequest = 6,
    /// An entry is longer than [`MAX_ENTRY`] or the entries are not a valid bundle.
    BadEntries = 7,
    /// No such object.
    NotFound = 8,
    /// Storage failed; nothing of this request was acknowledged.
    Storage = 9,
    /// The audit ledger did not record the read, so nothing was returned (fail closed).
    AuditFailed = 10,
    /// The tenant's ledger did not answer properly.
    Unavailable = 11,
    /// The answer would not fit in a frame.
    TooLarge = 12,
    /// The tenant's storage is full (the disk, psdb's index or the tenant's quota): nothing of
    /// this request was acknowledged, and everything acknowledged before stays readable.
    Full = 13,
    /// The box is serving another client (the simulator serves one connection at a time, as
    /// the image's one serial line does): nothing of this request was done; connect again.
    Busy = 14,
    /// The tenant's stored log is damaged, or holds an object beyond its signed checkpoint that
    /// it did not write: the damage is kept on disk as evidence and named on the console; the
    /// tenant serves what still verifies and appends nothing past a state it cannot prove.
    Damaged = 15,
    // Access control (docs/access.md), 16 onwards. Each refusal kind has its own code; a
    // refused request changed nothing, and (once the archive records refusals) it is in the
    // audit log.
    /// The request is not signed, and this archive answers only signed requests (or, with
    /// public metadata, unsigned metadata requests).
    Unsigned = 16,
    /// The authorization is not a well-formed signed request or capability note.
    MalformedAuth = 17,
    /// The request's or the capability's signature does not verify.
    BadSignature = 18,
    /// The signing key is not paired with this archive, or not for this tenant.
    Unpaired = 19,
    /// The request or capability names another archive identity.
    WrongArchive = 20,
    /// The pairing type (or the capability) does not allow this operation.
    WrongOperation = 21,
    /// The capability is held by another key than the one that signed the request.
    WrongHolder = 22,
    /// The capability is not signed by an ADMIN key paired for its tenant.
    UntrustedIssuer = 23,
    /// Reading record content needs a capability from an ADMIN, and none came.
    CapabilityRequired = 24,
    /// The capability has expired.
    Expired = 25,
    /// The capability is not valid yet.
    NotYetValid = 26,
    /// The rows asked for are outside those the capability grants.
    OutOfRange = 27,
    /// The request's time is outside the archive's window (too old or too far ahead).
    StaleRequest = 28,
    /// This request (its key and nonce) was already made.
    Replayed = 29,
    /// The archive has no clock, so it refuses every time-bound request.
    ClockUnavailable = 30,
    /// The archive's clock is earlier than a time it has already recorded.
    ClockBehind = 31,
    /// The archive remembers as many recent requests of this key (or in all) as it can.
    NonceMemoryFull = 32,
    /// The signed text does not describe the request it came with.
    RequestMismatch = 33,
    /// The pairing change would leave the archive without an ADMIN key.
    LastAdmin = 34,
}

impl From<ErrorCode> for u8 {
    fn from(c: ErrorCode) -> u8 {
        c as u8
    }
}

impl TryFrom<u8> for ErrorCode {
    type Error = UnknownErrorCode;

    fn try_from(v: u8) -> Result<Self, UnknownErrorCode> {
        use ErrorCode::*;
        Ok(match v {
            1 => BadFrame,
            2 => Oversize,
            3 => BadMessage,
            4 => UnknownTenant,
            5 => WrongTenant,
            6 => BadRequest,
            7 => BadEntries,
            8 => NotFound,
            9 => Storage,
            10 => AuditFailed,
            11 => Unavailable,
            12 => TooLarge,
            13 => Full,
            14 => Busy,
            15 => Damaged,
            16 => Unsigned,
            17 => MalformedAuth,
            18 => BadSignature,
            19 => Unpaired,
            20 => WrongArchive,
            21 => WrongOperation,
            22 => WrongHolder,
            23 => UntrustedIssuer,
            24 => CapabilityRequired,
            25 => Expired,
            26 => NotYetValid,
            27 => OutOfRange,
            28 => StaleRequest,
            29 => Replayed,
            30 => ClockUnavailable,
            31 => ClockBehind,
            32 => NonceMemoryFull,
            33 => RequestMismatch,
            34 => LastAdmin,
            _ => return Err(UnknownErrorCode(v)),
        })
    }
}

/// An error code this version does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownErrorCode(pub u8);

impl core::fmt::Display for UnknownErrorCode {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "unknown error code {}", self.0)
    }
}

impl core::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            ErrorCode::BadFrame => "damaged frame",
            ErrorCode::Oversize => "frame too long",
            ErrorCode::BadMessage => "not a request",
            ErrorCode::UnknownTenant => "unknown tenant",
            ErrorCode::WrongTenant => {
                "wrong tenant: the signed request or its capability names another tenant than \
                 the one it reached"
            }
            ErrorCode::BadRequest => "invalid request",
            ErrorCode::BadEntries => "invalid entries",
            ErrorCode::NotFound => "not found",
            ErrorCode::Storage => "storage failed",
            ErrorCode::AuditFailed => "audit did not record the read",
            ErrorCode::Unavailable => "ledger unavailable",
            ErrorCode::TooLarge => "answer too large",
            ErrorCode::Full => "storage full (nothing of this request was stored)",
            ErrorCode::Busy => {
                "busy serving another client (nothing of this request was done; try again)"
            }
            ErrorCode::Damaged => {
                "the tenant's stored log is damaged or holds objects it did not write (kept as \
                 evidence; see the console); nothing of this request was stored"
            }
            ErrorCode::Unsigned => {
                "unsigned: this archive answers only requests signed by a paired key (--skey)"
            }
            ErrorCode::MalformedAuth => "malformed signed request or capability",
            ErrorCode::BadSignature => "bad signature on the request or its capability",
            ErrorCode::Unpaired => {
                "the signing key is not paired with this archive for this tenant"
            }
            ErrorCode::WrongArchive => "the request or capability is for another archive",
            ErrorCode::WrongOperation => {
                "operation not allowed for this key's pairing type or by its capability"
            }
            ErrorCode::WrongHolder => "the capability belongs to another key",
            ErrorCode::UntrustedIssuer => {
                "the capability is not signed by an ADMIN key paired for its tenant"
            }
            ErrorCode::CapabilityRequired => {
                "reading record content needs a capability from an ADMIN (--cap)"
            }
            ErrorCode::Expired => "the capability has expired",
            ErrorCode::NotYetValid => "the capability is not valid yet",
            ErrorCode::OutOfRange => "rows outside those the capability grants",
            ErrorCode::StaleRequest => {
                "the request's time is outside the archive's window (check this host's clock)"
            }
            ErrorCode::Replayed => "replayed request (its nonce was already used)",
            ErrorCode::ClockUnavailable => {
                "the archive has no clock, so it refuses every time-bound request"
            }
            ErrorCode::ClockBehind => {
                "the archive's clock is behind a time it already recorded (it went backwards)"
            }
            ErrorCode::NonceMemoryFull => {
                "too many recent requests from this key for the archive to remember; retry later"
            }
            ErrorCode::RequestMismatch => "the signed text does not match the request it came with",
            ErrorCode::LastAdmin => "the change would leave the archive without an ADMIN key",
        })
    }
}

/// Why a message could not be encoded or decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodecError {
    /// Not a valid message (postcard could not decode it, or bytes were left over).
    Invalid,
    /// The output buffer is too small (or the message exceeds [`MAX_PAYLOAD`]).
    TooLarge,
}

impl core::fmt::Display for CodecError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            CodecError::Invalid => "invalid message",
            CodecError::TooLarge => "message too large",
        })
    }
}

fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, CodecError> {
    match postcard::take_from_bytes::<T>(bytes) {
        Ok((v, [])) => Ok(v),
        _ => Err(CodecError::Invalid),
    }
}

fn encode<T: Serialize>(v: &T, out: &mut [u8]) -> Result<usize, CodecError> {
    let limit = out.len().min(MAX_PAYLOAD);
    postcard::to_slice(v, &mut out[..limit])
        .map(|s| s.len())
        .map_err(|_| CodecError::TooLarge)
}

impl<'a> Request<'a> {
    /// Decodes a request; the whole of `bytes` must be one request.
    pub fn decode(bytes: &'a [u8]) -> Result<Self, CodecError> {
        decode(bytes)
    }

    /// Encodes into `out`; returns the length.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, CodecError> {
        encode(self, out)
    }
}

impl<'a> Response<'a> {
    /// Decodes a response; the whole of `bytes` must be one response.
    pub fn decode(bytes: &'a [u8]) -> Result<Self, CodecError> {
        decode(bytes)
    }

    /// Encodes into `out`; returns the length.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, CodecError> {
        encode(self, out)
    }

    /// An error response.
    pub fn error(id: u64, code: ErrorCode) -> Self {
        Response {
            id,
            body: Body::Error { code },
        }
    }
}

/// Reads just the id of what may be a request, for answering one that fails to decode further
/// (postcard puts the id first). 0 if even that is unreadable.
pub fn peek_request_id(bytes: &[u8]) -> u64 {
    postcard::take_from_bytes::<u64>(bytes).map_or(0, |(id, _)| id)
}

/// The entries of an entry-bundle encoding, in order; an `Err` (then the end) where it is
/// truncated.
pub fn entries(bundle: &[u8]) -> Entries<'_> {
    Entries { rest: bundle }
}

/// Iterator over encoded entries; see [`entries`].
#[derive(Debug, Clone)]
pub struct Entries<'a> {
    rest: &'a [u8],
}

/// The entries end in the middle of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TruncatedEntries;

impl<'a> Iterator for Entries<'a> {
    type Item = Result<&'a [u8], TruncatedEntries>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let parsed = self
            .rest
            .split_first_chunk::<2>()
            .and_then(|(len, tail)| tail.split_at_checked(usize::from(u16::from_be_bytes(*len))));
        match parsed {
            Some((entry, tail)) => {
                self.rest = tail;
                Some(Ok(entry))
            }
            None => {
                self.rest = &[];
                Some(Err(TruncatedEntries))
            }
        }
    }
}

/// Counts the entries of an encoding; `None` if it is truncated.
pub fn count_entries(bundle: &[u8]) -> Option<u64> {
    let mut n = 0u64;
    for e in entries(bundle) {
        e.ok()?;
        n += 1;
    }
    Some(n)
}

/// Appends `entry` to an encoding in `out[*len..]`; false (nothing written) if it does not fit
/// or is longer than [`MAX_ENTRY`].
pub fn push_entry(out: &mut [u8], len: &mut usize, entry: &[u8]) -> bool {
    let Ok(n) = u16::try_from(entry.len()) else {
        return false;
    };
    let end = *len + 2 + entry.len();
    let Some(dst) = out.get_mut(*len..end) else {
        return false;
    };
    dst[..2].copy_from_slice(&n.to_be_bytes());
    dst[2..].copy_from_slice(entry);
    *len = end;
    true
}

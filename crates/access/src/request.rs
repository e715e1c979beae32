//! Signed requests: what a client signs for every request, and how a PD checks that the
//! request it is about to execute is exactly the one signed.

use alloc::string::String;
use alloc::vec::Vec;

use note::{Signer, Verifier};
use protocol::{Authorization, Op};
use sha2::{Digest, Sha256};
use tlog::TileKind;

use crate::capability::Capability;
use crate::pairing::{parse_note, verify_note};
use crate::text::{self, Lines};
use crate::{Refusal, MAX_ROW};

/// The first line of a request note.
pub const REQUEST_KIND: &str = "totebox-request/v1";

/// An operation with its arguments as the signed text states them. Small arguments are stated
/// as they are; an append's entries and a pairing change's note by their SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// `op hello`.
    Hello,
    /// `op checkpoint`.
    Checkpoint,
    /// `op status`.
    Status,
    /// `op read`, `since N`, `max N`.
    Read {
        /// First index.
        since: u64,
        /// Most entries.
        max: u32,
    },
    /// `op get-object`, `path P`, `offset N`: a hash tile or the checkpoint (metadata) or an
    /// entry bundle (content).
    GetObject {
        /// The object's path.
        path: String,
        /// First byte.
        offset: u64,
    },
    /// `op append`, `entries N` (how many), `sha256 B64` (of the entry-bundle encoding, the
    /// bytes of [`Op::Append`]'s `entries`).
    Append {
        /// Number of entries.
        count: u64,
        /// SHA-256 of the encoded entries.
        sha256: [u8; 32],
    },
    /// `op pair-change`, `sha256 B64` (of the `totebox-pairing/v1` note carried). Archive-wide
    /// (`tenant -`). Its protocol op is phase 2's.
    PairChange {
        /// SHA-256 of the change note's bytes.
        sha256: [u8; 32],
    },
    /// `op audit-object`, `path P`, `offset N`: an object of the audit log (export).
    /// Archive-wide. Its protocol op is phase 2's.
    AuditObject {
        /// The object's path in the audit namespace.
        path: String,
        /// First byte.
        offset: u64,
    },
}

/// What an action is, for the permission table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Sizes, checkpoints, hash tiles, status: any pairing.
    Metadata,
    /// Record content of these rows (`start..end`, end excluded): a `read` (`bundle` false)
    /// or an entry bundle (`bundle` true).
    Content {
        /// First row.
        start: u64,
        /// One past the last row asked for (a read's `since + max`, capped at [`MAX_ROW`]).
        end: u64,
        /// An entry bundle (granted only whole).
        bundle: bool,
    },
    /// An append: INPUT or ADMIN.
    Append,
    /// A pairing change or the audit export: ADMIN.
    Admin,
}

impl Action {
    /// The action a protocol op asks for (`None` for [`Op::Ping`] and [`Op::Identity`], never
    /// signed). An append's
    /// entries must be a valid bundle encoding ([`Refusal::Malformed`] if not).
    pub fn from_op(op: &Op<'_>) -> Result<Option<Action>, Refusal> {
        Ok(Some(match op {
            Op::Ping => return Ok(None),
            Op::Hello => Action::Hello,
            Op::Checkpoint => Action::Checkpoint,
            Op::Status => Action::Status,
            Op::Read { since, max } => Action::Read {
                since: *since,
                max: *max,
            },
            Op::GetObject { path, offset } => Action::GetObject {
                path: String::from(*path),
                offset: *offset,
            },
            Op::Append { entries } => Action::Append {
                count: protocol::count_entries(entries).ok_or(Refusal::Malformed)?,
                sha256: Sha256::digest(entries).into(),
            },
            Op::PairChange { change } => Action::PairChange {
                sha256: Sha256::digest(change).into(),
            },
            Op::AuditObject { path, offset } => Action::AuditObject {
                path: String::from(*path),
                offset: *offset,
            },
            Op::Identity { .. } => return Ok(None),
        }))
    }

    /// The op's name on its `op` line.
    pub fn name(&self) -> &'static str {
        match self {
            Action::Hello => "hello",
            Action::Checkpoint => "checkpoint",
            Action::Status => "status",
            Action::Read { .. } => "read",
            Action::GetObject { .. } => "get-object",
            Action::Append { .. } => "append",
            Action::PairChange { .. } => "pair-change",
            Action::AuditObject { .. } => "audit-object",
        }
    }

    /// Whether it concerns the archive as a whole (`tenant -`) rather than one tenant.
    pub fn archive_wide(&self) -> bool {
        matches!(self, Action::PairChange { .. } | Action::AuditObject { .. })
    }

    /// Its class. A `get-object` path is classified as the ledger reads it
    /// (`tlog::tile::parse_tile_path`, or `checkpoint`); any other path is
    /// [`Refusal::Malformed`], so nothing unknown passes as metadata.
    pub fn class(&self) -> Result<Class, Refusal> {
        Ok(match self {
            Action::Hello | Action::Checkpoint | Action::Status => Class::Metadata,
            Action::Read { since, max } => Class::Content {
                start: *since,
                end: since.saturating_add(u64::from(*max)).min(MAX_ROW),
                bundle: false,
            },
            Action::GetObject { path, .. } => {
                if path == "checkpoint" {
                    return Ok(Class::Metadata);
                }
                let tile = tlog::tile::parse_tile_path(path).map_err(|_| Refusal::Malformed)?;
                match tile.kind() {
                    TileKind::Hashes(_) => Class::Metadata,
                    TileKind::Entries => {
                        let start = tile
                            .index()
                            .checked_mul(tlog::tile::TILE_WIDTH)
                            .ok_or(Refusal::OutOfRange)?;
                        Class::Content {
                            start,
                            end: start.saturating_add(u64::from(tile.width())),
                            bundle: true,
                        }
                    }
                }
            }
            Action::Append { .. } => Class::Append,
            Action::PairChange { .. } | Action::AuditObject { .. } => Class::Admin,
        })
    }

    /// The action alone as text (`action` then its `op` lines): what the wire and a ledger
    /// send audit with a Check or Authorize (`msg_audit::AccessCall`), so audit can decide an
    /// unsigned request and compare a signed one with what will be executed.
    pub fn to_text(&self) -> String {
        let mut s = String::from("action\n");
        self.write_lines(&mut s);
        s
    }

    /// Reads [`Action::to_text`]'s form back ([`Refusal::Malformed`] for anything else).
    pub fn parse_text(t: &str) -> Result<Action, Refusal> {
        let mut l = Lines::new(t, "action")?;
        let a = Action::parse_lines(&mut l)?;
        l.end()?;
        Ok(a)
    }

    fn write_lines(&self, s: &mut String) {
        use core::fmt::Write as _;
        s.push_str("op ");
        s.push_str(self.name());
        s.push('\n');
        // Writing to a String cannot fail.
        let _ = match self {
            Action::Hello | Action::Checkpoint | Action::Status => Ok(()),
            Action::Read { since, max } => write!(s, "since {since}\nmax {max}\n"),
            Action::GetObject { path, offset } | Action::AuditObject { path, offset } => {
                write!(s, "path {path}\noffset {offset}\n")
            }
            Action::Append { count, sha256 } => {
                write!(s, "entries {count}\nsha256 {}\n", text::b64(sha256))
            }
            Action::PairChange { sha256 } => writeln!(s, "sha256 {}", text::b64(sha256)),
        };
    }

    fn parse_lines(l: &mut Lines<'_>) -> Result<Action, Refusal> {
        let path = |l: &mut Lines<'_>| -> Result<(String, u64), Refusal> {
            let p = l.field("path")?;
            if !text::valid_path(p) {
                return Err(Refusal::Malformed);
            }
            Ok((String::from(p), text::decimal(l.field("offset")?)?))
        };
        Ok(match l.field("op")? {
            "hello" => Action::Hello,
            "checkpoint" => Action::Checkpoint,
            "status" => Action::Status,
            "read" => Action::Read {
                since: text::decimal(l.field("since")?)?,
                max: u32::try_from(text::decimal(l.field("max")?)?)
                    .map_err(|_| Refusal::Malformed)?,
            },
            "get-object" => {
                let (path, offset) = path(l)?;
                Action::GetObject { path, offset }
            }
            "audit-object" => {
                let (path, offset) = path(l)?;
                Action::AuditObject { path, offset }
            }
            "append" => Action::Append {
                count: text::decimal(l.field("entries")?)?,
                sha256: text::sha256_b64(l.field("sha256")?)?,
            },
            "pair-change" => Action::PairChange {
                sha256: text::sha256_b64(l.field("sha256")?)?,
            },
            _ => return Err(Refusal::Malformed),
        })
    }
}

/// A `totebox-request/v1` note, signed by `key`:
///
/// ```text
/// totebox-request/v1
/// archive <archive vkey>
/// tenant corporate                (- for an archive-wide action)
/// key <signer vkey>
/// time 1767225600                 (Unix seconds, when it was made)
/// nonce 00112233445566778899aabbccddeeff
/// capability <base64 SHA-256 of the capability note> | none
/// op read
/// since 10
/// max 10
/// ```
///
/// The signer's whole verifier key is in the text, so any PD can check the signature without
/// the pairing set (the ledger does); whether that key may act is [`crate::authorize`]'s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedRequest {
    /// The archive it is for.
    pub archive: Verifier,
    /// The tenant, `None` for an archive-wide action.
    pub tenant: Option<String>,
    /// The signer (and the capability's holder).
    pub key: Verifier,
    /// When it was made, by the archive's clock as the client knows it.
    pub time: u64,
    /// Random, never reused by the key.
    pub nonce: [u8; 16],
    /// SHA-256 of the capability note carried, if any.
    pub capability_hash: Option<[u8; 32]>,
    /// What it asks.
    pub action: Action,
    /// The note's bytes (as received: the signature covers them).
    note: Vec<u8>,
    /// The capability note carried, as received (empty if none).
    capability: Vec<u8>,
}

impl SignedRequest {
    /// The text to sign for these fields.
    #[allow(clippy::too_many_arguments)]
    fn text(
        archive: &Verifier,
        tenant: Option<&str>,
        key: &Verifier,
        time: u64,
        nonce: &[u8; 16],
        capability_hash: Option<&[u8; 32]>,
        action: &Action,
    ) -> String {
        let mut s = alloc::format!(
            "{REQUEST_KIND}\narchive {}\ntenant {}\nkey {}\ntime {time}\nnonce {}\ncapability {}\n",
            archive.vkey(),
            tenant.unwrap_or("-"),
            key.vkey(),
            text::hex(nonce),
            capability_hash.map_or_else(|| String::from("none"), |h| text::b64(h)),
        );
        action.write_lines(&mut s);
        s
    }

    /// Builds and signs a request (host side): `capability` is the capability note to carry
    /// (empty for none). `tenant` is `""` for an archive-wide action. Returns the encoded
    /// [`Authorization`] for [`protocol::Request::capability`].
    #[allow(clippy::too_many_arguments)]
    pub fn sign(
        signer: &Signer,
        archive: &Verifier,
        tenant: &str,
        action: &Action,
        time: u64,
        nonce: [u8; 16],
        capability: &[u8],
    ) -> Result<Vec<u8>, Refusal> {
        let tenant = (!tenant.is_empty()).then_some(tenant);
        if tenant.is_some() == action.archive_wide() {
            return Err(Refusal::WrongTenant);
        }
        let cap_hash = (!capability.is_empty()).then(|| Capability::hash(capability));
        let text = SignedRequest::text(
            archive,
            tenant,
            &signer.verifier(),
            time,
            &nonce,
            cap_hash.as_ref(),
            action,
        );
        let note = signer.sign(&text).map_err(|_| Refusal::Malformed)?;
        let auth = Authorization::V1 {
            request: note.as_bytes(),
            capability,
        };
        let mut out = alloc::vec![0u8; protocol::MAX_AUTH];
        let n = auth.encode(&mut out).map_err(|_| Refusal::Malformed)?;
        out.truncate(n);
        // What is sent must parse back: a path too long or a note over the bound is refused
        // here, not by the box.
        SignedRequest::parse(&out)?;
        Ok(out)
    }

    /// Parses a non-empty [`protocol::Request::capability`] (an encoded [`Authorization`]):
    /// [`Refusal::Malformed`] unless it is one request note of exactly this grammar with one
    /// signature line, and a capability note or nothing. Nothing is verified yet.
    pub fn parse(auth: &[u8]) -> Result<SignedRequest, Refusal> {
        let Authorization::V1 {
            request,
            capability,
        } = Authorization::decode(auth).map_err(|_| Refusal::Malformed)?;
        let n = parse_note(request)?;
        let mut l = Lines::new(n.text(), REQUEST_KIND)?;
        let archive = text::vkey(l.field("archive")?)?;
        let tenant = match l.field("tenant")? {
            "-" => None,
            t if text::valid_tenant(t) => Some(String::from(t)),
            _ => return Err(Refusal::Malformed),
        };
        let key = text::vkey(l.field("key")?)?;
        let time = text::decimal(l.field("time")?)?;
        let nonce = text::nonce(l.field("nonce")?)?;
        let capability_hash = match l.field("capability")? {
            "none" => None,
            h => Some(text::sha256_b64(h)?),
        };
        let action = Action::parse_lines(&mut l)?;
        l.end()?;
        if tenant.is_some() == action.archive_wide() {
            return Err(Refusal::Malformed);
        }
        // The signature line must name the key the text names.
        let sig = &n.signatures()[0];
        if sig.name() != key.name() || sig.key_id() != key.key_id() {
            return Err(Refusal::BadSignature);
        }
        Ok(SignedRequest {
            archive,
            tenant,
            key,
            time,
            nonce,
            capability_hash,
            action,
            note: request.to_vec(),
            capability: capability.to_vec(),
        })
    }

    /// Verifies the signature against the key the text names ([`Refusal::BadSignature`]).
    /// Pure: what a ledger runs before it trusts anything else of the request.
    pub fn verify_signature(&self) -> Result<(), Refusal> {
        verify_note(&self.note, &self.key)
    }

    /// Checks that this signed request is exactly `op` on `tenant` ("" for archive-wide):
    /// [`Refusal::WrongTenant`] for another tenant, [`Refusal::RequestMismatch`] for another
    /// operation or other arguments (for an append, other entries), and that the capability
    /// carried is the one signed. What the wire and the ledger run on the request they hold.
    pub fn matches(&self, tenant: &str, op: &Op<'_>) -> Result<(), Refusal> {
        match Action::from_op(op) {
            Ok(Some(a)) => self.matches_action(tenant, &a),
            _ => Err(Refusal::RequestMismatch),
        }
    }

    /// [`SignedRequest::matches`] for an action already derived (an op this crate's
    /// [`Action::from_op`] does not know yet, such as a pairing change: its `sha256` is of
    /// the change note carried).
    pub fn matches_action(&self, tenant: &str, action: &Action) -> Result<(), Refusal> {
        if self.tenant.as_deref().unwrap_or("") != tenant {
            return Err(Refusal::WrongTenant);
        }
        if action != &self.action {
            return Err(Refusal::RequestMismatch);
        }
        self.check_capability_binding()
    }

    /// The capability carried is the one the text names (or none and none).
    pub(crate) fn check_capability_binding(&self) -> Result<(), Refusal> {
        let carried = (!self.capability.is_empty()).then(|| Capability::hash(&self.capability));
        if carried != self.capability_hash {
            return Err(Refusal::RequestMismatch);
        }
        Ok(())
    }

    /// The capability note carried (empty if none).
    pub fn capability_note(&self) -> &[u8] {
        &self.capability
    }

    /// The request note's bytes.
    pub fn note(&self) -> &[u8] {
        &self.note
    }
}

//! Capabilities: an ADMIN's signed grant of operations on a tenant's rows to one holder key.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use note::{Signer, Verifier};
use sha2::{Digest, Sha256};

use crate::pairing::{parse_note, verify_note};
use crate::text::{self, Lines};
use crate::{Refusal, MAX_ROW};

/// The first line of a capability note.
pub const CAPABILITY_KIND: &str = "totebox-capability/v1";

/// The operations a capability can grant: the content reads (metadata needs none; appends
/// come from an INPUT or ADMIN pairing, never from a capability).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct CapOps {
    /// `read`: [`protocol::Op::Read`] within the rows.
    pub read: bool,
    /// `bundle`: entry bundles (`GetObject tile/entries/...`) whose rows are all granted.
    pub bundle: bool,
}

impl CapOps {
    /// `read`, `bundle` or `read,bundle` (that order, no repeats).
    pub fn to_text(self) -> &'static str {
        match (self.read, self.bundle) {
            (true, true) => "read,bundle",
            (true, false) => "read",
            (false, true) => "bundle",
            (false, false) => "",
        }
    }

    /// Parses a comma list of `read` and `bundle` in any order (the CLI's `--op`); `exact`
    /// also demands [`CapOps::to_text`]'s spelling (a note).
    pub fn parse(s: &str, exact: bool) -> Result<CapOps, Refusal> {
        let mut ops = CapOps::default();
        for w in s.split(',') {
            let seen = match w {
                "read" => core::mem::replace(&mut ops.read, true),
                "bundle" => core::mem::replace(&mut ops.bundle, true),
                _ => return Err(Refusal::Malformed),
            };
            if seen {
                return Err(Refusal::Malformed);
            }
        }
        if exact && ops.to_text() != s {
            return Err(Refusal::Malformed);
        }
        Ok(ops)
    }
}

/// Rows `start..end` (half-open, like Rust's ranges: `10..20` is rows 10 to 19); `end` None
/// means every row from `start` on (`10..`). Invariant: `start < end <= MAX_ROW` when bounded,
/// `start < MAX_ROW`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RowRange {
    /// First row.
    pub start: u64,
    /// One past the last row, or unbounded.
    pub end: Option<u64>,
}

impl RowRange {
    /// Every row.
    pub const ALL: RowRange = RowRange {
        start: 0,
        end: None,
    };

    /// Parses `A..B` or `A..` (decimal, no leading zeros; `A < B <= 2^48`).
    pub fn parse(s: &str) -> Result<RowRange, Refusal> {
        let (a, b) = s.split_once("..").ok_or(Refusal::Malformed)?;
        let start = text::decimal(a)?;
        let end = if b.is_empty() {
            None
        } else {
            Some(text::decimal(b)?)
        };
        let r = RowRange { start, end };
        if start >= MAX_ROW || end.is_some_and(|e| e <= start || e > MAX_ROW) {
            return Err(Refusal::Malformed);
        }
        Ok(r)
    }

    /// The end as a number ([`MAX_ROW`] when unbounded).
    pub fn end_or_max(&self) -> u64 {
        self.end.unwrap_or(MAX_ROW)
    }

    /// Whether row `r` is in the range.
    pub fn contains(&self, r: u64) -> bool {
        r >= self.start && r < self.end_or_max()
    }
}

impl fmt::Display for RowRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.end {
            Some(e) => write!(f, "{}..{e}", self.start),
            None => write!(f, "{}..", self.start),
        }
    }
}

/// A `totebox-capability/v1` note, signed by an ADMIN key paired for its tenant:
///
/// ```text
/// totebox-capability/v1
/// archive <archive vkey>
/// tenant corporate
/// holder <holder vkey>
/// ops read,bundle
/// rows 10..20
/// not-before 1767225600
/// expires 1767229200
/// nonce 00112233445566778899aabbccddeeff
/// ```
///
/// `not-before <= t < expires` is when it is valid (archive clock); `nonce` makes each grant's
/// text unique (and names it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capability {
    /// The archive it is for.
    pub archive: Verifier,
    /// The tenant.
    pub tenant: String,
    /// The only key that may use it.
    pub holder: Verifier,
    /// What it grants.
    pub ops: CapOps,
    /// Which rows.
    pub rows: RowRange,
    /// Valid from (Unix seconds).
    pub not_before: u64,
    /// Valid until, excluded.
    pub expires: u64,
    /// Random.
    pub nonce: [u8; 16],
}

impl Capability {
    /// The note text.
    pub fn to_text(&self) -> String {
        alloc::format!(
            "{CAPABILITY_KIND}\narchive {}\ntenant {}\nholder {}\nops {}\nrows {}\nnot-before {}\n\
             expires {}\nnonce {}\n",
            self.archive.vkey(),
            self.tenant,
            self.holder.vkey(),
            self.ops.to_text(),
            self.rows,
            self.not_before,
            self.expires,
            text::hex(&self.nonce)
        )
    }

    /// Parses a capability text exactly.
    pub fn parse_text(t: &str) -> Result<Capability, Refusal> {
        let mut l = Lines::new(t, CAPABILITY_KIND)?;
        let archive = text::vkey(l.field("archive")?)?;
        let tenant = l.field("tenant")?;
        if !text::valid_tenant(tenant) {
            return Err(Refusal::Malformed);
        }
        let holder = text::vkey(l.field("holder")?)?;
        let ops = CapOps::parse(l.field("ops")?, true)?;
        let rows_text = l.field("rows")?;
        let rows = RowRange::parse(rows_text)?;
        let not_before = text::decimal(l.field("not-before")?)?;
        let expires = text::decimal(l.field("expires")?)?;
        let nonce = text::nonce(l.field("nonce")?)?;
        l.end()?;
        if expires <= not_before || alloc::format!("{rows}") != rows_text {
            return Err(Refusal::Malformed);
        }
        Ok(Capability {
            archive,
            tenant: tenant.into(),
            holder,
            ops,
            rows,
            not_before,
            expires,
            nonce,
        })
    }

    /// The signed note's bytes (what `totebox grant` prints). Refuses a capability that
    /// would not parse back (no ops, an empty validity, a bad tenant).
    pub fn sign(&self, admin: &Signer) -> Result<Vec<u8>, Refusal> {
        let text = self.to_text();
        Capability::parse_text(&text)?;
        let note = admin.sign(&text).map_err(|_| Refusal::Malformed)?;
        if note.len() > protocol::MAX_AUTH_NOTE {
            return Err(Refusal::Malformed);
        }
        Ok(note.into_bytes())
    }

    /// Parses a signed capability note (not verified): the capability and its signature's key
    /// name and id (the issuer to look up among the ADMIN pairings).
    pub fn parse(note: &[u8]) -> Result<(Capability, (String, u32)), Refusal> {
        let n = parse_note(note)?;
        let sig = &n.signatures()[0];
        let who = (String::from(sig.name()), sig.key_id());
        Ok((Capability::parse_text(n.text())?, who))
    }

    /// Verifies the note's signature against the issuer's key.
    pub fn verify(note: &[u8], issuer: &Verifier) -> Result<(), Refusal> {
        verify_note(note, issuer)
    }

    /// The SHA-256 of the note's bytes: what a request's `capability` line names.
    pub fn hash(note: &[u8]) -> [u8; 32] {
        Sha256::digest(note).into()
    }
}

//! Pairings: which keys may use the archive, as what, for which tenants; and the ADMIN-signed
//! changes to them.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use note::{Note, Verifier};

use crate::text::{self, Lines};
use crate::{Refusal, MAX_KEY_NAME, MAX_PAIRINGS, MAX_TENANTS_PER_PAIRING};

/// The four pairing types (`docs/access.md` has the permission table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PairingType {
    /// Full authority over its tenants: content reads without a capability, appends, grants,
    /// pairing changes; the audit export when it covers every tenant.
    Admin,
    /// Appends; content reads with an ADMIN's capability; metadata.
    Input,
    /// Content reads with an ADMIN's capability; metadata.
    User,
    /// Metadata only (Hello, Checkpoint, Status, hash tiles): never record content.
    Interface,
}

impl PairingType {
    /// Every type.
    pub const ALL: [PairingType; 4] = [
        PairingType::Admin,
        PairingType::Input,
        PairingType::User,
        PairingType::Interface,
    ];

    /// Lowercase name, as in notes and audit records.
    pub fn name(self) -> &'static str {
        match self {
            PairingType::Admin => "admin",
            PairingType::Input => "input",
            PairingType::User => "user",
            PairingType::Interface => "interface",
        }
    }

    /// Uppercase name, as in `pairings.yaml` and the issue.
    pub fn upper(self) -> &'static str {
        match self {
            PairingType::Admin => "ADMIN",
            PairingType::Input => "INPUT",
            PairingType::User => "USER",
            PairingType::Interface => "INTERFACE",
        }
    }

    /// Parses a name in lowercase or uppercase (not mixed).
    pub fn parse(s: &str) -> Option<PairingType> {
        PairingType::ALL
            .into_iter()
            .find(|t| t.name() == s || t.upper() == s)
    }
}

impl fmt::Display for PairingType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.upper())
    }
}

/// The tenants a pairing covers.
///
/// Invariant: `Some` holds 1 to [`MAX_TENANTS_PER_PAIRING`] valid tenant names, sorted, no
/// repeats (so equal sets compare equal and format alike).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Tenants {
    /// `*`: every tenant of the archive, present and future.
    All,
    /// These tenants.
    Some(Vec<String>),
}

impl Tenants {
    /// The set of `names` (sorted, repeats dropped); `["*"]` is [`Tenants::All`].
    pub fn new<S: AsRef<str>>(names: &[S]) -> Result<Tenants, PairingError> {
        if names.len() == 1 && names[0].as_ref() == "*" {
            return Ok(Tenants::All);
        }
        let mut v: Vec<String> = Vec::with_capacity(names.len());
        for n in names {
            let n = n.as_ref();
            if n == "*" {
                return Err(PairingError::Tenant("*".into()));
            }
            if !text::valid_tenant(n) {
                return Err(PairingError::Tenant(n.into()));
            }
            v.push(n.to_string());
        }
        v.sort();
        v.dedup();
        if v.is_empty() || v.len() > MAX_TENANTS_PER_PAIRING {
            return Err(PairingError::TenantCount(v.len()));
        }
        Ok(Tenants::Some(v))
    }

    /// Whether `tenant` is covered.
    pub fn covers(&self, tenant: &str) -> bool {
        match self {
            Tenants::All => true,
            Tenants::Some(v) => v.iter().any(|t| t == tenant),
        }
    }

    /// Whether every tenant of `other` is covered.
    pub fn covers_all(&self, other: &Tenants) -> bool {
        match (self, other) {
            (Tenants::All, _) => true,
            (Tenants::Some(_), Tenants::All) => false,
            (Tenants::Some(_), Tenants::Some(o)) => o.iter().all(|t| self.covers(t)),
        }
    }

    /// `*` or the names joined by `,` (the notes' and the image form's spelling).
    pub fn to_text(&self) -> String {
        match self {
            Tenants::All => "*".into(),
            Tenants::Some(v) => v.join(","),
        }
    }

    /// Parses [`Tenants::to_text`]'s spelling exactly.
    pub fn from_text(s: &str) -> Result<Tenants, Refusal> {
        let names: Vec<&str> = s.split(',').collect();
        let t = Tenants::new(&names).map_err(|_| Refusal::Malformed)?;
        if t.to_text() != s {
            return Err(Refusal::Malformed);
        }
        Ok(t)
    }
}

/// One pairing: a key, its type, its tenants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pairing {
    /// The key (Ed25519, name at most [`MAX_KEY_NAME`] bytes).
    pub key: Verifier,
    /// What it may do.
    pub kind: PairingType,
    /// Where.
    pub tenants: Tenants,
}

impl Pairing {
    /// A pairing, its key checked (Ed25519 type, name length).
    pub fn new(
        key: Verifier,
        kind: PairingType,
        tenants: Tenants,
    ) -> Result<Pairing, PairingError> {
        check_key(&key)?;
        Ok(Pairing { key, kind, tenants })
    }
}

fn check_key(key: &Verifier) -> Result<(), PairingError> {
    if key.key_type() != note::KeyType::Ed25519 {
        return Err(PairingError::Key(
            "not an Ed25519 (type 0x01) note key".into(),
        ));
    }
    if key.name().len() > MAX_KEY_NAME {
        return Err(PairingError::Key(alloc::format!(
            "key name longer than {MAX_KEY_NAME} bytes"
        )));
    }
    Ok(())
}

/// Why a pairing set could not be built or changed as asked (host side and image decoding;
/// at run time a change is refused with a [`Refusal`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PairingError {
    /// A tenant name is not valid (or `*` is mixed with names).
    Tenant(String),
    /// A pairing names no tenant, or more than [`MAX_TENANTS_PER_PAIRING`].
    TenantCount(usize),
    /// The key is not usable.
    Key(String),
    /// The key is already paired, or another paired key has the same key id.
    Duplicate(String),
    /// More than [`MAX_PAIRINGS`] pairings.
    TooMany,
    /// The key is not paired.
    NotPaired(String),
    /// The image form is not valid (line number, from 1).
    Encoding(usize),
}

impl fmt::Display for PairingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PairingError::Tenant(t) => write!(
                f,
                "invalid tenant {t:?} (a lowercase letter, then lowercase letters, digits, _; \
                 or * alone for every tenant)"
            ),
            PairingError::TenantCount(n) => write!(
                f,
                "a pairing names 1 to {MAX_TENANTS_PER_PAIRING} tenants, not {n}"
            ),
            PairingError::Key(why) => write!(f, "invalid key: {why}"),
            PairingError::Duplicate(k) => {
                write!(
                    f,
                    "{k} is already paired (or shares its key id with a paired key)"
                )
            }
            PairingError::TooMany => write!(f, "more than {MAX_PAIRINGS} pairings"),
            PairingError::NotPaired(k) => write!(f, "{k} is not paired"),
            PairingError::Encoding(line) => write!(f, "pairing set, line {line}: invalid"),
        }
    }
}

/// The archive's pairings, and whether unsigned metadata requests are served
/// (`PUBLIC_METADATA=1`).
///
/// Invariants: at most [`MAX_PAIRINGS`]; no two pairings share a public key or a key id (so
/// the 8-hex key id in audit records names one paired key); sorted by verifier key string,
/// so [`PairingSet::to_bytes`] is canonical. Memory: at most 64 pairings of about 200 bytes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PairingSet {
    pairings: Vec<Pairing>,
    public_metadata: bool,
}

const SET_HEADER: &str = "totebox-pairings/v1";

impl PairingSet {
    /// No pairings, metadata not public.
    pub fn new() -> PairingSet {
        PairingSet::default()
    }

    /// The pairings, sorted by key string.
    pub fn pairings(&self) -> &[Pairing] {
        &self.pairings
    }

    /// Whether unsigned metadata requests are answered (as INTERFACE).
    pub fn public_metadata(&self) -> bool {
        self.public_metadata
    }

    /// Sets [`PairingSet::public_metadata`].
    pub fn set_public_metadata(&mut self, on: bool) {
        self.public_metadata = on;
    }

    /// Adds a pairing; refuses a key already paired (use [`PairingSet::upsert`] to replace).
    pub fn insert(&mut self, p: Pairing) -> Result<(), PairingError> {
        check_key(&p.key)?;
        if self
            .pairings
            .iter()
            .any(|q| q.key.key_id() == p.key.key_id() || q.key.public_key() == p.key.public_key())
        {
            return Err(PairingError::Duplicate(p.key.vkey()));
        }
        if self.pairings.len() >= MAX_PAIRINGS {
            return Err(PairingError::TooMany);
        }
        let at = self
            .pairings
            .partition_point(|q| q.key.vkey() < p.key.vkey());
        self.pairings.insert(at, p);
        Ok(())
    }

    /// Adds a pairing or replaces the one of the same key.
    pub fn upsert(&mut self, p: Pairing) -> Result<(), PairingError> {
        let old = self.remove(&p.key);
        let r = self.insert(p);
        if r.is_err() {
            if let Some(old) = old {
                // Put back what was there: it fitted before.
                let _ = self.insert(old);
            }
        }
        r
    }

    /// Removes the pairing of `key`; returns it.
    pub fn remove(&mut self, key: &Verifier) -> Option<Pairing> {
        let at = self.pairings.iter().position(|p| &p.key == key)?;
        Some(self.pairings.remove(at))
    }

    /// The pairing of exactly this key.
    pub fn get(&self, key: &Verifier) -> Option<&Pairing> {
        self.pairings.iter().find(|p| &p.key == key)
    }

    /// The pairing whose key has this name and key id (how a signature line names its key).
    pub fn by_name_id(&self, name: &str, key_id: u32) -> Option<&Pairing> {
        self.pairings
            .iter()
            .find(|p| p.key.key_id() == key_id && p.key.name() == name)
    }

    /// Whether some ADMIN would remain if `without` were removed.
    fn admin_left_without(&self, without: &Verifier) -> bool {
        self.pairings
            .iter()
            .any(|p| p.kind == PairingType::Admin && &p.key != without)
    }

    /// The image form: `totebox-pairings/v1`, `public-metadata on|off`, then one line per
    /// pairing, `pairing <type> <tenants> <vkey>`; every line ends in `\n`. At most about
    /// 64 x 140 bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut s = String::from(SET_HEADER);
        s.push('\n');
        s.push_str(if self.public_metadata {
            "public-metadata on\n"
        } else {
            "public-metadata off\n"
        });
        for p in &self.pairings {
            s.push_str("pairing ");
            s.push_str(p.kind.name());
            s.push(' ');
            s.push_str(&p.tenants.to_text());
            s.push(' ');
            s.push_str(&p.key.vkey());
            s.push('\n');
        }
        s.into_bytes()
    }

    /// Parses [`PairingSet::to_bytes`]'s form, exactly (the same bytes come back).
    pub fn from_bytes(b: &[u8]) -> Result<PairingSet, PairingError> {
        let s = core::str::from_utf8(b).map_err(|_| PairingError::Encoding(1))?;
        let body = s.strip_suffix('\n').ok_or(PairingError::Encoding(1))?;
        let mut lines = body.split('\n');
        if lines.next() != Some(SET_HEADER) {
            return Err(PairingError::Encoding(1));
        }
        let mut set = PairingSet::new();
        set.public_metadata = match lines.next() {
            Some("public-metadata on") => true,
            Some("public-metadata off") => false,
            _ => return Err(PairingError::Encoding(2)),
        };
        for (i, line) in lines.enumerate() {
            let bad = PairingError::Encoding(i + 3);
            let rest = line.strip_prefix("pairing ").ok_or(bad.clone())?;
            let mut parts = rest.splitn(3, ' ');
            let (Some(kind), Some(tenants), Some(key)) = (parts.next(), parts.next(), parts.next())
            else {
                return Err(bad);
            };
            let kind = PairingType::parse(kind)
                .filter(|k| k.name() == kind)
                .ok_or(bad.clone())?;
            let tenants = Tenants::from_text(tenants).map_err(|_| bad.clone())?;
            let key = text::vkey(key).map_err(|_| bad.clone())?;
            set.insert(Pairing::new(key, kind, tenants).map_err(|_| bad.clone())?)
                .map_err(|_| bad.clone())?;
        }
        if set.to_bytes() != b {
            // Out of order: canonical form only, so one set has one encoding.
            return Err(PairingError::Encoding(1));
        }
        Ok(set)
    }

    /// Applies an ADMIN-signed pairing change (`note` is the change note's bytes), checking:
    /// the note and its one signature; the signer is a paired ADMIN ([`Refusal::UntrustedIssuer`]
    /// if not) whose tenants cover every tenant the change touches (the new pairing's, and the
    /// replaced or removed one's: [`Refusal::Unpaired`] if not); the archive
    /// ([`Refusal::WrongArchive`]); a removal names a paired key ([`Refusal::Unpaired`]); no
    /// change leaves the set without an ADMIN ([`Refusal::LastAdmin`]). Time and nonce are
    /// the request's to check (the change travels in a signed `pair-change` request whose
    /// `sha256` is the note's). On any refusal the set is unchanged. Returns the change.
    pub fn apply(&mut self, note: &[u8], archive: &Verifier) -> Result<PairingChange, Refusal> {
        let (change, signer) = PairingChange::parse_signed(note)?;
        let admin = self
            .by_name_id(&signer.0, signer.1)
            .filter(|p| p.kind == PairingType::Admin)
            .ok_or(Refusal::UntrustedIssuer)?
            .clone();
        change.verify_with(note, &admin.key)?;
        if &change.archive != archive {
            return Err(Refusal::WrongArchive);
        }
        let existing = self.get(&change.key).cloned();
        if let Some(old) = &existing {
            if !admin.tenants.covers_all(&old.tenants) {
                return Err(Refusal::Unpaired);
            }
        }
        match &change.change {
            Change::Add { kind, tenants } => {
                if !admin.tenants.covers_all(tenants) {
                    return Err(Refusal::Unpaired);
                }
                if *kind != PairingType::Admin && !self.admin_left_without(&change.key) {
                    return Err(Refusal::LastAdmin);
                }
                let p = Pairing::new(change.key.clone(), *kind, tenants.clone())
                    .map_err(|_| Refusal::Malformed)?;
                // A key id shared with another paired key, or a full set: not applicable.
                self.upsert(p).map_err(|_| Refusal::WrongOperation)?;
            }
            Change::Remove => {
                if existing.is_none() {
                    return Err(Refusal::Unpaired);
                }
                if !self.admin_left_without(&change.key) {
                    return Err(Refusal::LastAdmin);
                }
                self.remove(&change.key);
            }
        }
        Ok(change)
    }
}

/// What a pairing change does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Pair the key (replacing its pairing if it has one).
    Add {
        /// The type.
        kind: PairingType,
        /// The tenants.
        tenants: Tenants,
    },
    /// Unpair the key.
    Remove,
}

/// A `totebox-pairing/v1` note: an ADMIN's change to the pairing set, kept append-only on the
/// archive's disk.
///
/// ```text
/// totebox-pairing/v1
/// archive <archive vkey>
/// change add                      (or: change remove, without the type and tenants lines)
/// key <vkey>
/// type input
/// tenants corporate,personnel     (or *)
/// time <unix seconds>
/// nonce <32 hex>
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairingChange {
    /// The archive it is for.
    pub archive: Verifier,
    /// Add or remove.
    pub change: Change,
    /// The key paired or unpaired.
    pub key: Verifier,
    /// When the ADMIN made it (archive clock, Unix seconds).
    pub time: u64,
    /// Random, so two changes never have the same text.
    pub nonce: [u8; 16],
}

/// The first line of a pairing change note.
pub const PAIRING_KIND: &str = "totebox-pairing/v1";

impl PairingChange {
    /// The note text (ending in `\n`).
    pub fn to_text(&self) -> String {
        let mut s = String::from(PAIRING_KIND);
        s.push_str("\narchive ");
        s.push_str(&self.archive.vkey());
        match &self.change {
            Change::Add { kind, tenants } => {
                s.push_str("\nchange add\nkey ");
                s.push_str(&self.key.vkey());
                s.push_str("\ntype ");
                s.push_str(kind.name());
                s.push_str("\ntenants ");
                s.push_str(&tenants.to_text());
            }
            Change::Remove => {
                s.push_str("\nchange remove\nkey ");
                s.push_str(&self.key.vkey());
            }
        }
        s.push_str(&alloc::format!(
            "\ntime {}\nnonce {}\n",
            self.time,
            text::hex(&self.nonce)
        ));
        s
    }

    /// Parses a change text exactly.
    pub fn parse_text(t: &str) -> Result<PairingChange, Refusal> {
        let mut l = Lines::new(t, PAIRING_KIND)?;
        let archive = text::vkey(l.field("archive")?)?;
        let what = l.field("change")?;
        let key = text::vkey(l.field("key")?)?;
        let change = match what {
            "add" => {
                let kind = l.field("type")?;
                let kind = PairingType::parse(kind)
                    .filter(|k| k.name() == kind)
                    .ok_or(Refusal::Malformed)?;
                let tenants = Tenants::from_text(l.field("tenants")?)?;
                Change::Add { kind, tenants }
            }
            "remove" => Change::Remove,
            _ => return Err(Refusal::Malformed),
        };
        let time = text::decimal(l.field("time")?)?;
        let nonce = text::nonce(l.field("nonce")?)?;
        l.end()?;
        Ok(PairingChange {
            archive,
            change,
            key,
            time,
            nonce,
        })
    }

    /// Signs the change with an ADMIN's key: the note's bytes.
    pub fn sign(&self, admin: &note::Signer) -> Result<Vec<u8>, Refusal> {
        admin
            .sign(&self.to_text())
            .map(String::into_bytes)
            .map_err(|_| Refusal::Malformed)
    }

    /// Parses a signed change note (not verified): the change and its one signature's key name
    /// and id.
    pub fn parse_signed(note: &[u8]) -> Result<(PairingChange, (String, u32)), Refusal> {
        let n = parse_note(note)?;
        let sig = &n.signatures()[0];
        let who = (sig.name().to_string(), sig.key_id());
        Ok((PairingChange::parse_text(n.text())?, who))
    }

    /// Verifies `note`'s signature against `key`.
    pub fn verify_with(&self, note: &[u8], key: &Verifier) -> Result<(), Refusal> {
        verify_note(note, key)
    }
}

/// Parses a note of at most [`protocol::MAX_AUTH_NOTE`] bytes with exactly one signature.
pub(crate) fn parse_note(bytes: &[u8]) -> Result<Note, Refusal> {
    if bytes.len() > protocol::MAX_AUTH_NOTE {
        return Err(Refusal::Malformed);
    }
    let n = Note::parse(bytes).map_err(|_| Refusal::Malformed)?;
    if n.signatures().len() != 1 {
        return Err(Refusal::Malformed);
    }
    Ok(n)
}

/// Verifies a one-signature note against `key`: [`Refusal::BadSignature`] unless the one
/// signature is `key`'s and verifies.
pub(crate) fn verify_note(bytes: &[u8], key: &Verifier) -> Result<(), Refusal> {
    let n = parse_note(bytes)?;
    n.verify(core::slice::from_ref(key))
        .map(|_| ())
        .map_err(|_| Refusal::BadSignature)
}

/// The audit namespace's object holding the archive's initial pairing set
/// ([`PairingSet::to_bytes`]), written by audit at first boot (docs/access.md, "What is stored
/// where").
pub const INITIAL_PAIRINGS_PATH: &str = "pairings/initial";

/// The audit namespace's object holding accepted pairing change `n` (0, 1, ...): the signed
/// change note verbatim, replayed in order onto the initial set.
pub fn pairing_change_path(n: u64) -> String {
    alloc::format!("pairings/{n:016x}")
}

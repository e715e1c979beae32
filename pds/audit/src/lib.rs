//! The **audit** protection domain's logic: the audit sub-ledger, its own [`tlog::Log`] in psdb
//! namespace `audit` (which psdb gives it by the channel it calls on), recording every read a
//! ledger is about to answer ([`interface::audit_call`]).
//!
//! **Which tenant a record is about is the channel it arrived on** ([`interface::audit::LEDGERS`]),
//! never a field of the message: ledger_corporate can only ever write records that say
//! `tenant=corporate`.
//!
//! # Records: durable and signed at once, in a checkpoint within 256 records
//!
//! Each record is one line of text, `index=<i> tenant=<t> op=<read|bundle> first=<n>
//! count=<n> request=<id> outcome=granted`, `<i>` its index in the audit log (the index the
//! ledger gets back). Time and the requester's identity join it with the access-control issue
//! (there is no clock or identity yet).
//!
//! **A record is acknowledged once it is durable in a psdb journal** (psdb format v3: a
//! preallocated member of one-sector records, see psdb's `FORMAT.md`): audit signs the line as
//! a signed note with the audit log's key (the key and origin of its checkpoints) and appends
//! the note as the next record of the current journal; psdb replies only after that one sector
//! write and one device flush. So a ledger that got the acknowledgement knows the read is on
//! disk, signed, before any content leaves it; nothing else is written per record (no
//! checkpoint, no tile), which is what keeps an audited read under 1 KiB of disk (issue 7).
//!
//! **Folding.** Journal `journal/<first index as 16 hex digits>` holds the records from its
//! first index up to the next multiple of 256 (256 slots, fewer only for the first journal of
//! a log made before journals). The record that finds its journal full first *folds* it: the
//! journal's record lines (the unsigned lines: the checkpoint signs them all) are appended to
//! the audit tlog as entries, ONE checkpoint is signed, and the next journal is created, all
//! in one psdb batch; then the record goes into the new journal. So the audit tlog's size is
//! always the current journal's first index, a checkpoint is signed once per 256 records, and
//! a signed checkpoint covers every record within 256 records of it. The folded journal stays
//! on disk with its signed records (write-once). A crash at any point loses no acknowledged
//! record and never folds twice: the fold batch is written whole or not at all, and the tlog
//! size says which journal is current, so a fold that did not land is done again from the
//! same journal, and one that did is never repeated.
//!
//! **At open** (boot, and after any failure): the tlog is opened (or created, with its first
//! journal, in one batch), the journal at its size found (a log from before journals gets its
//! journal created, with a checkpoint of the same size), its records read and each verified:
//! the signature with the audit key, and `index=` the journal's first index plus the slot. A
//! record that does not verify (planted in the raw disk: psdb checks framing, not who wrote it)
//! is not folded: audit prints `audit|ERROR:` naming it and refuses every record from then on
//! (fail closed: no read is answered), as it does for a damaged audit namespace.
//!
//! # Memory
//!
//! Fixed at open: the lines of the current journal's records, at most 256 x
//! [`interface::psdb_call::JOURNAL_RECORD`] (363) bytes = 92,928 bytes, allocated once at init
//! and never grown, plus the log's append state and buffers (its bundle grows to one bundle of
//! these lines, under 40 KiB). Per record: the line and its signed note, a few hundred bytes,
//! freed when the call returns. With the access state ([`ACCESS_HEAP`]) the worst case peaks at
//! 2,332,776 bytes (`tests/heap.rs`, run in a heap of system.xml's `heap_audit`, 3 MiB).
//!
//! A ledger may also ask what the audit log uses of its quota ([`Request::Usage`], for a
//! tenant's status request): audit asks psdb on its own channel (so it can only learn the
//! audit namespace's figures) and passes the answer on. Nothing is recorded for it. A record
//! takes no new disk (its journal was charged when it was created); a fold does.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod authority;

use alloc::boxed::Box;
pub use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::fmt::Write as _;

use interface::audit_call::{self, Kind};
use interface::audit_log::{journal_path, journal_slots, verify_record, JOURNAL_SLOTS};
use interface::msg::audit::{Reply, Request};
use interface::msg::{Image, Message};
use interface::psdb_call::JOURNAL_RECORD;
use interface::{audit, PsdbClient, PsdbError, AUDIT_NAMESPACE, TENANTS, TENANT_COUNT};
use microkit::region::{ReadWrite, Region, RegionError};
use microkit::{Channel, Handler, MessageInfo};
use note::{Signer, Verifier};
use tlog::{Log, Storage};

pub use authority::{Access, Clock, ACCESS_HEAP};
use authority::{Authority, Decision};
use interface::msg::audit::AccessCall;
use protocol::{Body, ErrorCode, Op, MAX_CHUNK, MAX_PAYLOAD};

interface::audit_ledger_regions!();

interface::audit_psdb_region!();

/// Most bytes of the pending record lines kept in memory: [`JOURNAL_SLOTS`] records of at most
/// [`JOURNAL_RECORD`] bytes (a line is shorter than the signed note holding it).
pub const PENDING_BYTES: usize = JOURNAL_SLOTS as usize * JOURNAL_RECORD;

/// Why the PD could not start.
#[derive(Debug)]
pub enum InitError {
    /// A shared region is missing or too small.
    Region(RegionError),
    /// No usable signing key for the audit log.
    Key(interface::keys::KeyError),
    /// The pending records' buffer could not be allocated.
    OutOfMemory,
    /// The identity key or the initial pairing set is missing or unusable.
    Access(String),
}

impl fmt::Display for InitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InitError::Region(e) => write!(f, "region: {e}"),
            InitError::Key(e) => write!(f, "key: {e}"),
            InitError::OutOfMemory => write!(f, "no memory for {PENDING_BYTES} bytes of records"),
            InitError::Access(e) => write!(f, "access control: {e}"),
        }
    }
}

/// The audit tlog's storage: psdb, creating a journal along with the first checkpoint of a new
/// log (so the log and its first journal are one batch).
#[derive(Debug, Clone)]
pub struct AuditStorage {
    psdb: PsdbClient,
    /// The journal to create with the next checkpoint (`Log::create` writes it).
    with_checkpoint: Option<(u64, u32)>,
}

impl Storage for AuditStorage {
    type Error = PsdbError;

    fn put(&mut self, path: &str, data: &[u8]) -> Result<(), PsdbError> {
        self.psdb.put(path, data)
    }

    fn set_checkpoint(&mut self, checkpoint: &[u8]) -> Result<(), PsdbError> {
        if let Some((first, slots)) = self.with_checkpoint.take() {
            self.psdb.create_journal(&journal_path(first), slots)?;
        }
        self.psdb.set_checkpoint(checkpoint)
    }

    fn get(&mut self, path: &str, out: &mut Vec<u8>) -> Result<bool, PsdbError> {
        self.psdb.get(path, out)
    }

    fn put_begin(&mut self, path: &str, len: usize) -> Result<(), PsdbError> {
        Storage::put_begin(&mut self.psdb, path, len)
    }

    fn put_chunk(&mut self, data: &[u8]) -> Result<(), PsdbError> {
        Storage::put_chunk(&mut self.psdb, data)
    }

    fn get_range(
        &mut self,
        path: &str,
        offset: u64,
        out: &mut [u8],
    ) -> Result<Option<(u64, usize)>, PsdbError> {
        Storage::get_range(&mut self.psdb, path, offset, out)
    }

    fn checkpoint(&mut self, out: &mut Vec<u8>) -> Result<bool, PsdbError> {
        self.psdb.checkpoint(out)
    }
}

/// The lines of the current journal's records, in slot order: one buffer allocated once at
/// [`PENDING_BYTES`], never grown.
#[derive(Debug)]
struct Pending {
    text: Vec<u8>,
    ends: Vec<usize>,
}

impl Pending {
    fn len(&self) -> u32 {
        self.ends.len() as u32
    }

    fn clear(&mut self) {
        self.text.clear();
        self.ends.clear();
    }

    /// Adds a line; `false` (nothing added) if it would grow a buffer.
    fn push(&mut self, line: &str) -> bool {
        if self.ends.len() == self.ends.capacity()
            || line.len() > self.text.capacity() - self.text.len()
        {
            return false;
        }
        self.text.extend_from_slice(line.as_bytes());
        self.ends.push(self.text.len());
        true
    }

    fn lines(&self) -> impl Iterator<Item = &[u8]> + '_ {
        let starts = core::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(self.ends.iter().copied())
            .map(|(a, b)| &self.text[a..b])
    }
}

/// The open audit log and its current journal.
#[derive(Debug)]
struct Current {
    log: Log<AuditStorage>,
    /// The journal's first index: the tlog's size.
    first: u64,
    path: String,
    slots: u32,
}

/// Why opening or recording failed.
enum Failure {
    /// psdb refused or failed (retried from a fresh open at the next record).
    Storage,
    /// The audit log on disk cannot be trusted (a record that does not verify, damage):
    /// reported once; every record is refused until the PD restarts.
    Refuse,
}

/// The audit PD.
#[derive(Debug)]
pub struct AuditPd {
    origin: String,
    signer: Signer,
    verifier: Verifier,
    ledgers: [Region<ReadWrite>; TENANT_COUNT],
    psdb: PsdbClient,
    current: Option<Current>,
    pending: Pending,
    /// Set when the log on disk cannot be trusted (see [`Failure::Refuse`]).
    refusing: bool,
    line: String,
    /// `None`: access control off ([`Access::Open`]).
    authority: Option<Box<Authority>>,
    clock: Clock,
    wire: Region<ReadWrite>,
    /// A Check's or Authorize's call, a Serve's request (copied out of the region first).
    call: Vec<u8>,
    resp: Vec<u8>,
    obj: Vec<u8>,
}

/// Builds the PD with the audit log's signer key string `skey` (on seL4 from the key slot of
/// audit.elf, see [`interface::keys`]; in the simulator from the key file), which must be named
/// for the audit log, and opens (or creates) the audit log if psdb answers.
pub fn init(skey: &str, access: Access, clock: Clock) -> Result<AuditPd, InitError> {
    let region = |d: &microkit::region::RegionDecl<ReadWrite>| d.get().map_err(InitError::Region);
    let signer = interface::keys::signer(AUDIT_NAMESPACE, skey).map_err(InitError::Key)?;
    let mut pending = Pending {
        text: Vec::new(),
        ends: Vec::new(),
    };
    pending
        .text
        .try_reserve_exact(PENDING_BYTES)
        .map_err(|_| InitError::OutOfMemory)?;
    pending
        .ends
        .try_reserve_exact(JOURNAL_SLOTS as usize)
        .map_err(|_| InitError::OutOfMemory)?;
    let authority = match access {
        Access::Open => None,
        Access::Enforce { identity, pairings } => Some(Box::new(
            Authority::new(&identity, &pairings).map_err(InitError::Access)?,
        )),
    };
    let buf = |n: usize| -> Result<Vec<u8>, InitError> {
        let mut v = Vec::new();
        v.try_reserve_exact(n).map_err(|_| InitError::OutOfMemory)?;
        v.resize(n, 0);
        Ok(v)
    };
    let mut pd = AuditPd {
        authority,
        clock,
        wire: region(&WIRE)?,
        call: buf(MAX_PAYLOAD)?,
        resp: buf(MAX_PAYLOAD)?,
        obj: buf(MAX_CHUNK)?,
        origin: interface::keys::origin(AUDIT_NAMESPACE),
        verifier: signer.verifier(),
        signer,
        ledgers: interface::regions(&REGIONS).map_err(InitError::Region)?,
        psdb: PsdbClient::new(audit::PSDB, region(&PSDB)?),
        current: None,
        pending,
        refusing: false,
        line: String::new(),
    };
    let _ = pd.open();
    Ok(pd)
}

impl AuditPd {
    /// Records in the audit log: those in its checkpointed tlog and those pending in its
    /// current journal.
    pub fn size(&self) -> u64 {
        self.current
            .as_ref()
            .map_or(0, |c| c.first + u64::from(self.pending.len()))
    }

    /// Whether audit refuses every record because the log on disk cannot be trusted.
    pub fn refusing(&self) -> bool {
        self.refusing
    }

    fn report(&mut self, what: fmt::Arguments<'_>) -> Failure {
        microkit::debug_println!(
            "audit|ERROR: {what}: refusing every record (reads fail closed) until the audit \
             log is checked"
        );
        self.refusing = true;
        Failure::Refuse
    }

    /// Opens the log and its journal (see the crate docs), folding a full journal.
    fn open(&mut self) -> Result<(), Failure> {
        if self.refusing {
            return Err(Failure::Refuse);
        }
        if self.current.is_some() {
            return Ok(());
        }
        self.pending.clear();
        let mut storage = AuditStorage {
            psdb: self.psdb.clone(),
            with_checkpoint: None,
        };
        let mut buf = Vec::new();
        let exists = storage.checkpoint(&mut buf).map_err(|_| Failure::Storage)?;
        drop(buf);
        if self.psdb.usage().is_ok_and(|u| u.damaged) {
            return Err(self.report(format_args!(
                "the audit namespace holds damaged committed data (psdb reported it at mount)"
            )));
        }
        let opened = if exists {
            Log::open(storage, &self.origin, self.signer.clone())
        } else {
            storage.with_checkpoint = Some((0, journal_slots(0)));
            Log::create(storage, &self.origin, self.signer.clone())
        };
        let mut log = match opened {
            Ok(log) => log,
            Err(tlog::Error::Corrupt(e)) => {
                return Err(self.report(format_args!("the audit log does not verify: {e}")))
            }
            Err(tlog::Error::Storage(e)) if e.is_damage() => {
                return Err(self.report(format_args!("the audit log cannot be read: {e}")))
            }
            Err(_) => return Err(Failure::Storage),
        };
        let first = log.committed_size();
        let slots = journal_slots(first);
        let path = journal_path(first);
        let used = match self.psdb.journal_stat(&path) {
            Ok(Some(st)) if st.slots == slots => st.used,
            Ok(Some(st)) => {
                return Err(self.report(format_args!("{path} has {} slots, not {slots}", st.slots)))
            }
            Ok(None) => {
                // A log from before journals (or one whose create batch predates them): its
                // journal, with a checkpoint of the same size, in one batch.
                self.psdb
                    .create_journal(&path, slots)
                    .map_err(|_| Failure::Storage)?;
                log.checkpoint().map_err(|_| Failure::Storage)?;
                0
            }
            Err(e) if e.is_damage() => {
                return Err(self.report(format_args!("{path} cannot be read: {e}")))
            }
            Err(_) => return Err(Failure::Storage),
        };
        let mut record = [0u8; JOURNAL_RECORD];
        for slot in 0..used {
            let n = match self.psdb.journal_read(&path, slot, &mut record) {
                Ok(Some(n)) => n,
                Ok(None) => return Err(Failure::Storage),
                Err(e) if e.is_damage() => {
                    return Err(self.report(format_args!("{path} slot {slot}: {e}")))
                }
                Err(_) => return Err(Failure::Storage),
            };
            let index = first + u64::from(slot);
            let mut note = None;
            let checked = verify_record(&record[..n], &self.verifier, index, &mut note);
            let added = checked.map(|line| self.pending.push(line));
            match added {
                Ok(true) => {}
                Ok(false) => return Err(Failure::Storage),
                Err(why) => {
                    return Err(self.report(format_args!(
                        "{path} slot {slot} (audit index {index}) refused, not folded: {why}"
                    )))
                }
            }
        }
        self.current = Some(Current {
            log,
            first,
            path,
            slots,
        });
        if used == slots {
            if let Err(e) = self.fold() {
                self.current = None;
                return Err(e);
            }
        }
        if self.authority.as_ref().is_some_and(|a| !a.loaded) {
            if let Err(e) = self.load_access() {
                self.current = None;
                return Err(e);
            }
        }
        Ok(())
    }

    /// At the first open: the archive's pairings from disk (storing the image's initial set
    /// at first boot), every change replayed; the nonce window and the clock floor from the
    /// records of the last `WINDOW_BACK + WINDOW_AHEAD` seconds.
    fn load_access(&mut self) -> Result<(), Failure> {
        let Some(mut a) = self.authority.take() else {
            return Ok(());
        };
        let r = self.load_into(&mut a);
        self.authority = Some(a);
        r
    }

    fn load_into(&mut self, a: &mut Authority) -> Result<(), Failure> {
        let mut buf = Vec::new();
        let initial = match self.psdb.get(authority::INITIAL_PATH, &mut buf) {
            Ok(true) => match access::PairingSet::from_bytes(&buf) {
                Ok(set) => set,
                Err(e) => return Err(self.report(format_args!("{}: {e}", authority::INITIAL_PATH))),
            },
            Ok(false) => {
                let bytes = a.image_set.to_bytes();
                self.commit_object(authority::INITIAL_PATH, &bytes)?;
                a.image_set.clone()
            }
            Err(_) => return Err(Failure::Storage),
        };
        a.set = initial;
        let mut n = 0u64;
        loop {
            let path = authority::change_path(n);
            match self.psdb.get(&path, &mut buf) {
                Ok(true) => {
                    if let Err(why) = a.set.apply(&buf, &a.archive) {
                        return Err(self.report(format_args!("{path} does not apply: {why}")));
                    }
                }
                Ok(false) => break,
                Err(_) => return Err(Failure::Storage),
            }
            n += 1;
        }
        a.changes = n;
        // The window: the current journal's lines, then the tlog's entries backwards, a
        // bundle at a time, until a record older than the window. From an empty window (a
        // rebuild that failed part way is done again whole: `restore` does not look for
        // repeats), repeats removed at the end (`NonceWindow::restored`).
        a.nonces = access::NonceWindow::new();
        let now = self.clock.read().unwrap_or(0);
        let restore = |a: &mut Authority, line: &[u8]| -> bool {
            let Some((_, rec)) = core::str::from_utf8(line)
                .ok()
                .and_then(access::AuditRecord::parse_line)
            else {
                return true;
            };
            a.floor = a.floor.max(rec.time);
            if let Some((key, nonce, t)) = rec.nonce_entry() {
                let _ = a.nonces.restore(key, nonce, t, now.max(a.floor));
            }
            authority::in_window(rec.time, now)
        };
        for line in self.pending.lines() {
            restore(a, line);
        }
        let Some(cur) = self.current.as_mut() else {
            return Err(Failure::Storage);
        };
        let mut end = cur.first;
        while end > 0 {
            let start = end.saturating_sub(256);
            let mut recent = false;
            cur.log
                .read_since_with(start, end - start, |_, e| recent |= restore(a, e))
                .map_err(|_| Failure::Storage)?;
            if !recent {
                break;
            }
            end = start;
        }
        a.nonces.restored();
        a.loaded = true;
        Ok(())
    }

    /// Writes `data` at `path` in the audit namespace and commits it with the log's current
    /// checkpoint (one psdb batch): durable once this returns.
    fn commit_object(&mut self, path: &str, data: &[u8]) -> Result<(), Failure> {
        let mut cp = Vec::new();
        match self.psdb.checkpoint(&mut cp) {
            Ok(true) => {}
            _ => return Err(Failure::Storage),
        }
        self.psdb.put(path, data).map_err(|_| Failure::Storage)?;
        self.psdb.set_checkpoint(&cp).map_err(|_| Failure::Storage)
    }

    /// Folds the full current journal into the tlog: its lines as entries, one checkpoint,
    /// the next journal; one psdb batch.
    fn fold(&mut self) -> Result<(), Failure> {
        let Some(cur) = self.current.as_mut() else {
            return Err(Failure::Storage);
        };
        for line in self.pending.lines() {
            cur.log.append(line).map_err(|_| Failure::Storage)?;
        }
        let next = cur.first + u64::from(cur.slots);
        let path = journal_path(next);
        let slots = journal_slots(next);
        self.psdb
            .create_journal(&path, slots)
            .map_err(|_| Failure::Storage)?;
        cur.log.checkpoint().map_err(|_| Failure::Storage)?;
        cur.first = next;
        cur.path = path;
        cur.slots = slots;
        self.pending.clear();
        Ok(())
    }

    /// Journals the record of `rec` from tenant `t` as a signed note; its audit index.
    fn journal(&mut self, t: usize, rec: &audit_call::Record) -> Result<u64, Failure> {
        let op = match rec.kind {
            Kind::Read => "read",
            Kind::Bundle => "bundle",
        };
        let (tenant, first, count, request) = (TENANTS[t], rec.first, rec.count, rec.request);
        self.journal_with(|index, line| {
            writeln!(
                line,
                "index={index} tenant={tenant} op={op} first={first} count={count} \
                 request={request} outcome=granted"
            )
            .is_ok()
        })
    }

    /// Journals an access record (`access::AuditRecord`'s line); its audit index.
    fn journal_access(&mut self, rec: &access::AuditRecord) -> Result<u64, Failure> {
        self.journal_with(|index, line| match rec.to_line(index) {
            Some(l) => {
                line.push_str(&l);
                line.push('\n');
                true
            }
            None => false,
        })
    }

    /// Journals the line `write(index, line)` writes (ending in a newline) as a signed note.
    fn journal_with(
        &mut self,
        write: impl FnOnce(u64, &mut String) -> bool,
    ) -> Result<u64, Failure> {
        self.open()?;
        if self
            .current
            .as_ref()
            .is_some_and(|c| self.pending.len() >= c.slots)
        {
            self.fold()?;
        }
        let Some(cur) = self.current.as_ref() else {
            return Err(Failure::Storage);
        };
        let index = cur.first + u64::from(self.pending.len());
        let mut line = core::mem::take(&mut self.line);
        line.clear();
        if !write(index, &mut line) {
            self.line = line;
            return Err(Failure::Storage);
        }
        let signed = self.signer.sign(&line);
        let result = match signed {
            Ok(note) => match self.psdb.journal_append(&cur.path, note.as_bytes()) {
                Ok(slot) if slot == self.pending.len() => {
                    if self.pending.push(line.trim_end_matches('\n')) {
                        Ok(index)
                    } else {
                        Err(Failure::Storage)
                    }
                }
                _ => Err(Failure::Storage),
            },
            Err(_) => Err(Failure::Storage),
        };
        self.line = line;
        result
    }

    /// Records the read described by a [`Request::Record`] of the record `len` bytes at the
    /// start of `channel`'s region: [`Reply::Recorded`] with the record's index in the audit
    /// log, or why not.
    pub fn record(&mut self, channel: Channel, len: usize) -> Reply {
        let Some(t) = audit::LEDGERS.iter().position(|c| *c == channel) else {
            return Reply::BadCall;
        };
        let mut buf = [0u8; 25];
        if len != buf.len() || self.ledgers[t].read(0, &mut buf).is_err() {
            return Reply::BadCall;
        }
        let Some(rec) = audit_call::decode(&buf) else {
            return Reply::BadCall;
        };
        match self.journal(t, &rec) {
            Ok(index) => Reply::Recorded { index },
            Err(_) => {
                // Reopened from psdb at the next record (resynchronises the journal's slots).
                self.current = None;
                Reply::Storage
            }
        }
    }
}

impl AuditPd {
    /// The archive's identity verifier key (`None` with access control off).
    pub fn archive(&self) -> Option<Verifier> {
        self.authority.as_ref().map(|a| a.archive.clone())
    }

    /// The effective pairing set (`None` with access control off).
    pub fn pairings(&self) -> Option<&access::PairingSet> {
        self.authority.as_ref().map(|a| &a.set)
    }

    /// The clock's reading, `None` if it has none or it is at or past `access::MAX_TIME`.
    fn now(&mut self) -> Option<u64> {
        self.clock.read().filter(|&t| t < access::MAX_TIME)
    }

    /// Records decision `d` about `tenant`; `false` if it could not be made durable.
    fn record_decision(&mut self, d: &Decision, tenant: &str, now: Option<u64>) -> bool {
        let floor = self.authority.as_ref().map_or(0, |a| a.floor);
        let t = now.unwrap_or(0).max(floor);
        let Some(rec) = authority::record_of(d, tenant, t) else {
            return true;
        };
        match self.journal_access(&rec) {
            Ok(_) => {
                if let Some(a) = self.authority.as_mut() {
                    a.floor = a.floor.max(t);
                }
                true
            }
            Err(_) => {
                self.current = None;
                false
            }
        }
    }

    /// Check (the wire) or Authorize (a ledger, `insert`) of the [`AccessCall`] of `len`
    /// bytes in `region`, for `tenant` (`None`: the call's own, from the wire).
    fn access_call(&mut self, from: Option<usize>, len: usize, insert: bool) -> Reply {
        let region = match from {
            Some(t) => self.ledgers.get(t),
            None => Some(&self.wire),
        };
        let mut call = core::mem::take(&mut self.call);
        let ok = len <= call.len() && region.is_some_and(|r| r.read(0, &mut call[..len]).is_ok());
        let reply = if ok {
            self.decide_call(from, &call[..len], insert)
        } else {
            Reply::BadCall
        };
        self.call = call;
        reply
    }

    fn decide_call(&mut self, from: Option<usize>, bytes: &[u8], insert: bool) -> Reply {
        let Some(c) = AccessCall::decode(bytes) else {
            return Reply::BadCall;
        };
        let tenant = match from {
            Some(t) => TENANTS[t],
            None => c.tenant,
        };
        if self.authority.is_none() {
            // Access control off: the phase-1 behaviour (no log needed to say so).
            return if c.auth.is_empty() {
                Reply::Open
            } else {
                Reply::Refused {
                    code: ErrorCode::BadRequest as u8,
                }
            };
        }
        if self.open().is_err() {
            return Reply::Refused {
                code: ErrorCode::AuditFailed as u8,
            };
        }
        let now = self.now();
        let Some(a) = self.authority.as_mut() else {
            return Reply::BadCall;
        };
        let decision = match core::str::from_utf8(c.action)
            .ok()
            .and_then(|t| access::Action::parse_text(t).ok())
        {
            Some(action) => authority::decide(a, tenant, &action, c.auth, now, insert),
            None => Decision::Refused(access::Refusal::Malformed, None),
        };
        let must_record = match &decision {
            Decision::Granted(g) => insert && g.key.is_some(),
            Decision::Refused(..) => true,
        };
        let recorded = !must_record || self.record_decision(&decision, tenant, now);
        match decision {
            Decision::Granted(_) if !recorded => Reply::Refused {
                code: ErrorCode::AuditFailed as u8,
            },
            Decision::Granted(g) => Reply::Granted { rows: g.rows },
            Decision::Refused(r, _) => Reply::Refused {
                code: r.code() as u8,
            },
        }
    }

    /// Serve: an archive-wide protocol request of `len` bytes in the wire's region, answered
    /// there.
    fn serve(&mut self, len: usize) -> Reply {
        let mut call = core::mem::take(&mut self.call);
        let mut resp = core::mem::take(&mut self.resp);
        let n = if len <= call.len() && self.wire.read(0, &mut call[..len]).is_ok() {
            self.serve_request(&call[..len], &mut resp)
        } else {
            None
        };
        let reply = match n {
            Some(n) if self.wire.write(0, &resp[..n]).is_ok() => Reply::Served { len: n },
            _ => Reply::BadCall,
        };
        self.call = call;
        self.resp = resp;
        reply
    }

    fn serve_request(&mut self, bytes: &[u8], out: &mut [u8]) -> Option<usize> {
        let req = authority::Served::decode(bytes)?.req;
        let id = req.id;
        let err = |code: ErrorCode, out: &mut [u8]| authority::error_response(id, code, out);
        if self.open().is_err() {
            return err(ErrorCode::AuditFailed, out);
        }
        let now = self.now();
        let Some(a) = self.authority.as_mut() else {
            return err(ErrorCode::BadRequest, out);
        };
        if let Op::Identity { challenge } = req.op {
            let Some(t) = now else {
                return err(ErrorCode::ClockUnavailable, out);
            };
            let vkey = a.archive.vkey();
            let proof = a.identity.prove(challenge, t).ok()?;
            let body = Body::Identity {
                archive: &vkey,
                proof: proof.as_bytes(),
            };
            return authority::respond(id, body, out);
        }
        let action = match access::Action::from_op(&req.op) {
            Ok(Some(action)) if action.archive_wide() && req.tenant.is_empty() => action,
            _ => return err(ErrorCode::BadRequest, out),
        };
        let decision = authority::decide(a, "", &action, req.capability, now, true);
        if let Decision::Refused(r, _) = &decision {
            let code = r.code();
            self.record_decision(&decision, "", now);
            return err(code, out);
        }
        // Granted: act, then record, then answer.
        match req.op {
            Op::PairChange { change } => {
                let mut set = a.set.clone();
                let archive = a.archive.clone();
                if let Err(r) = set.apply(change, &archive) {
                    let d = Decision::Refused(r, None);
                    self.record_decision(&d, "", now);
                    return err(r.code(), out);
                }
                let n = a.changes;
                let path = authority::change_path(n);
                if self.commit_object(&path, change).is_err() {
                    self.current = None;
                    return err(ErrorCode::Storage, out);
                }
                if let Some(a) = self.authority.as_mut() {
                    a.set = set;
                    a.changes = n + 1;
                }
                if !self.record_decision(&decision, "", now) {
                    return err(ErrorCode::AuditFailed, out);
                }
                authority::respond(id, Body::Pong, out)
            }
            Op::AuditObject { path, offset } => {
                if !self.record_decision(&decision, "", now) {
                    return err(ErrorCode::AuditFailed, out);
                }
                let object = (path != "checkpoint").then_some(path);
                let mut obj = core::mem::take(&mut self.obj);
                let got = self.psdb.get_range(object, offset, &mut obj);
                let n = match got {
                    Ok(Some((total, n))) if offset <= total => authority::respond(
                        id,
                        Body::Object {
                            total,
                            offset,
                            data: &obj[..n],
                        },
                        out,
                    ),
                    Ok(Some(_)) => err(ErrorCode::BadRequest, out),
                    Ok(None) => err(ErrorCode::NotFound, out),
                    Err(_) => err(ErrorCode::Storage, out),
                };
                self.obj = obj;
                n
            }
            _ => err(ErrorCode::BadRequest, out),
        }
    }

    /// What the audit namespace uses of its quota, as psdb states it ([`Request::Usage`]
    /// from a ledger on `channel`): [`Reply::Usage`], or why not.
    pub fn usage(&mut self, channel: Channel) -> Reply {
        if !audit::LEDGERS.contains(&channel) {
            return Reply::BadCall;
        }
        match self.psdb.usage() {
            Ok(u) => Reply::Usage(u),
            Err(_) => Reply::Storage,
        }
    }
}

impl Handler for AuditPd {
    type Error = core::convert::Infallible;

    fn protected(
        &mut self,
        channel: Channel,
        info: MessageInfo,
    ) -> Result<MessageInfo, Self::Error> {
        let m = Message::received(info);
        let reply = match Request::decode(m.info(), m.mrs()) {
            Ok(Request::Usage) => self.usage(channel),
            Ok(Request::Record { len }) => self.record(channel, len),
            Ok(Request::Check { len }) if channel == audit::WIRE => {
                self.access_call(None, len, false)
            }
            Ok(Request::Serve { len }) if channel == audit::WIRE => self.serve(len),
            Ok(Request::Authorize { len }) => {
                match audit::LEDGERS.iter().position(|c| *c == channel) {
                    Some(t) => self.access_call(Some(t), len, true),
                    None => Reply::BadCall,
                }
            }
            Ok(Request::Check { .. } | Request::Serve { .. }) | Err(_) => Reply::BadCall,
        };
        Ok(reply.encode().set_mrs())
    }
}

/// What the audit PD runs, in the seL4 image and in the simulator alike ([`start`]): the audit
/// log, or, when it could not start (missing region, an empty key slot or another log's key),
/// a PD that answers every call [`Reply::NotServing`] (the one [`interface::msg::NOT_SERVING`]
/// of every PD): every ledger then fails its reads closed (no content leaves unaudited), while
/// appends go on.
pub type AuditImage = Image<AuditPd, InitError>;

/// The console line of an archive that is not provisioned ([`Access::Open`]).
pub const NOT_PROVISIONED_LINE: &str = "audit|WARN: access control off: archive not provisioned";

/// How audit.elf's identity and pairings slots (as `interface::keys::slot_skey` and
/// `slot_pairings` read them) decide access (docs/access.md, "Not provisioned"):
///
/// - both empty ([`KeyError::Unprovisioned`](interface::keys::KeyError::Unprovisioned)): the
///   archive is **not provisioned**, [`Access::Open`] (the phase-1 behaviour: unsigned requests
///   go on, reads are recorded and served, a non-empty authorization is refused `BadRequest`);
/// - both filled: [`Access::Enforce`] with them (checked in full by [`init`]);
/// - one filled and the other empty or unreadable, or either unreadable: an error, so audit
///   does not start and every read fails closed (a half-provisioned image never runs open).
pub fn access_from_slots(
    identity: Result<&str, interface::keys::KeyError>,
    pairings: Result<&[u8], interface::keys::KeyError>,
) -> Result<Access, InitError> {
    use interface::keys::KeyError::Unprovisioned;
    let fail = |what: &str, e: &dyn fmt::Display| {
        let mut s = String::new();
        let _ = write!(s, "{what}: {e}");
        InitError::Access(s)
    };
    match (identity, pairings) {
        (Err(Unprovisioned), Err(Unprovisioned)) => Ok(Access::Open),
        (Ok(id), Ok(p)) => Ok(Access::Enforce {
            identity: String::from(id),
            pairings: p.to_vec(),
        }),
        (Err(e), _) => Err(fail("identity key slot", &e)),
        (_, Err(e)) => Err(fail("pairings slot", &e)),
    }
}

/// Starts the audit log with the signer key string the PD's key slot holds (or why it holds
/// none), printing `audit|INFO: serving, <n> records` or `audit|ERROR: not serving: <why>`,
/// and [`NOT_PROVISIONED_LINE`] when it serves with access control off.
pub fn start(skey: Result<&str, InitError>, access: Access, clock: Clock) -> AuditImage {
    let started = skey.and_then(|k| init(k, access, clock));
    match &started {
        Ok(pd) => {
            microkit::debug_println!("audit|INFO: serving, {} records", pd.size());
            if pd.authority.is_none() {
                microkit::debug_println!("{NOT_PROVISIONED_LINE}");
            }
        }
        Err(e) => microkit::debug_println!("audit|ERROR: not serving: {e}"),
    }
    Image::from(started)
}

#[cfg(test)]
mod tests {
    use super::*;
    use interface::keys::KeyError;

    #[test]
    fn both_slots_empty_is_not_provisioned_open() {
        let a = access_from_slots(Err(KeyError::Unprovisioned), Err(KeyError::Unprovisioned));
        assert!(matches!(a, Ok(Access::Open)));
    }

    #[test]
    fn both_slots_filled_enforce() {
        let a = access_from_slots(Ok("id"), Ok(b"set"));
        match a {
            Ok(Access::Enforce { identity, pairings }) => {
                assert_eq!(identity, "id");
                assert_eq!(pairings, b"set");
            }
            other => panic!("expected Enforce, got {other:?}"),
        }
    }

    #[test]
    fn half_provisioned_or_damaged_slots_do_not_start() {
        type Slots<'a> = (Result<&'a str, KeyError>, Result<&'a [u8], KeyError>);
        let cases: [Slots<'_>; 5] = [
            (Ok("id"), Err(KeyError::Unprovisioned)),
            (Err(KeyError::Unprovisioned), Ok(b"set")),
            (Err(KeyError::Malformed), Err(KeyError::Unprovisioned)),
            (Err(KeyError::Unprovisioned), Err(KeyError::NotASlot)),
            (Ok("id"), Err(KeyError::Malformed)),
        ];
        for (id, p) in cases {
            assert!(
                matches!(access_from_slots(id, p), Err(InitError::Access(_))),
                "must not start"
            );
        }
    }
}

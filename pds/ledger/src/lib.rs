//! A **ledger_<tenant>** protection domain's logic: one tenant's append-only log
//! ([`tlog::Log`]) stored in psdb through [`interface::PsdbClient`], answering the client
//! requests the wire forwards ([`interface::ledger_call`]).
//!
//! - **Tenant identity** is the PD's name after `ledger_` (`microkit_name`, written by the tool
//!   from system.xml): one ELF serves every tenant. A request naming another tenant is refused
//!   ([`ErrorCode::WrongTenant`]): a confused or compromised wire cannot write for a tenant
//!   through the wrong ledger.
//! - **Signing key**: the tenant's own, handed to [`init`] (on seL4 from the key slot of this
//!   tenant's copy of the ELF, see [`interface::keys`]; in the simulator from the key file). A key
//!   named for another log is refused: the PD then serves nothing.
//! - **Append** = every entry of the request appended, then one checkpoint signed with the
//!   tenant's key; the response is sent only after psdb has made the checkpoint durable.
//! - **A group in several calls** ([`Stage`](Call::Stage) ... [`Commit`](Call::Commit), the
//!   wire's group commit beyond one region): a stage is validated as an append is and its
//!   entries are copied into the stage buffer, in memory only: nothing reaches psdb or the
//!   log. The commit appends the staged entries, then its own, and signs one checkpoint, in
//!   that one call, exactly as one append of all of them would: the same writes, the same
//!   all-or-nothing refusal (psdb discards a refused request whole, the log is reopened from
//!   the committed state), the same durable acknowledgement. Any other call, a stage that is
//!   refused or does not fit [`ledger_call::MAX_STAGED`], and every commit discard what is
//!   staged. Because staging writes nothing, a group abandoned part way (the wire failed or
//!   was restarted, another request came in between, the PD was restarted) leaves nothing on
//!   disk that a reopen could find, and no interleaving of other callers with psdb between
//!   the calls can make this ledger sign over objects psdb has discarded (psdb drops a
//!   caller's staged puts when another caller arrives).
//! - **Reads fail closed**: before any entry content leaves (a read, or an entry bundle fetched
//!   for export) the ledger has audit record it and waits for the acknowledgement; without it
//!   the answer is [`ErrorCode::AuditFailed`] and no content. Checkpoints and hash tiles are
//!   public by design and are not audited.
//! - Nothing a request contains stops the PD: every failure is an error response. A storage
//!   failure poisons the log (see [`tlog::Log`]); the next request reopens it from psdb, exactly
//!   as after a crash.
//! - **Damage is reported, never worked around.** Damaged committed data (psdb refuses to serve
//!   or write it), an object beyond the signed checkpoint that this log did not write (found
//!   at open: never adopted, never signed over), or a tree that does not extend the last signed
//!   checkpoint (checked before every signature) is answered [`ErrorCode::Damaged`] and named
//!   once on a `ledger_<tenant>|ERROR:` console line. The tenant keeps serving what verifies;
//!   it never signs a checkpoint it cannot prove consistent with the ones before.
//! - **Status** ([`Op::Status`]) is metadata: the log's size, what psdb says this tenant's
//!   namespace uses of its quotas ([`PsdbClient::usage`]: psdb answers for the calling channel's
//!   namespace only) and what audit says the audit log uses ([`Usage`](audit_msg::Request::Usage)). No entry
//!   content, so it is not audited.
//!
//! # Memory
//! Fixed, allocated once by [`init`] and never grown, whatever a peer sends: the log's pending
//! bundle, [`MAX_PENDING`] (the most one commit appends), and read window
//! ([`tlog::log::WINDOW`], one largest entry; the log writes and reads bundles in pieces and by
//! range, never whole: [`tlog::Buffers::preallocated`], handed back and reused when the log is
//! reopened), and the request copy, the response and one answer buffer (entries read,
//! the checkpoint, one object chunk), [`protocol::MAX_PAYLOAD`] (128 KiB) each, and the stage
//! buffer, [`ledger_call::MAX_STAGED`] (896 KiB): in all [`FIXED_HEAP`] bytes, plus the log's append state (at most 66 KiB) and a few small
//! allocations per request. Objects are served chunk by chunk straight from the region
//! shared with psdb ([`PsdbClient::get_range`]), never copied whole. Every reservation is
//! fallible: if the heap cannot hold the buffers, [`init`] fails ([`InitError::OutOfMemory`])
//! rather than the PD panicking later. system.xml sizes `heap_<tenant>` from this, with a
//! margin; a host test (tests/heap.rs) runs the worst case in a heap of that size.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use interface::audit_call::{self, Kind, Record};
use interface::msg::ledger::Call;
use interface::msg::{audit as audit_msg, ledger as wire_msg, Image, Message};
use interface::{ledger, ledger_call, PsdbClient};
use microkit::region::{ReadWrite, Region, RegionError};
use microkit::{Channel, Handler, MessageInfo};
use note::Signer;
use protocol::{
    count_entries, entries, peek_request_id, push_entry, Body, ErrorCode, Op, Request, Response,
    MAX_CHUNK, MAX_PAYLOAD, RESPONSE_OVERHEAD,
};
use tlog::tile::{parse_tile_path, TileKind, TILE_WIDTH};
use tlog::Log;

interface::ledger_regions!();

/// Why the PD could not start.
#[derive(Debug)]
pub enum InitError {
    /// The PD's name is not `ledger_<known tenant>`.
    UnknownTenant,
    /// A shared region is missing or too small.
    Region(RegionError),
    /// No usable signing key for this tenant.
    Key(interface::keys::KeyError),
    /// The heap cannot hold the PD's fixed buffers ([`FIXED_HEAP`] bytes).
    OutOfMemory,
}

/// Bytes of buffers [`init`] allocates up front: the log's two bundle-sized buffers, then the
/// request copy, the response, the answer buffer and the stage buffer.
pub const FIXED_HEAP: usize =
    tlog::Buffers::preallocated_bytes(MAX_PENDING) + 3 * MAX_PAYLOAD + ledger_call::MAX_STAGED;

/// The most encoded entry bytes one commit appends to the log before its checkpoint: the
/// staged entries and the request's own bundle. The log's pending bundle holds no more.
pub const MAX_PENDING: usize = ledger_call::MAX_STAGED + MAX_PAYLOAD;

/// Most entries one commit appends: what the stage buffer and one request can hold, at 2 bytes
/// (an empty entry) each. Far below `u32::MAX` (an answer's count), and what psdb writes for
/// them (at worst 2,048 full bundles and level-0 tiles for 1 MiB of empty entries, about
/// 19 MiB with tar headers and manifest lines) fits psdb's batch limit, 32 MiB.
pub const MAX_GROUP_ENTRIES: usize = (ledger_call::MAX_STAGED + MAX_PAYLOAD) / 2;

/// A zeroed buffer of `len` bytes, reserved fallibly and exactly.
fn buffer(len: usize) -> Result<Vec<u8>, InitError> {
    let mut v = Vec::new();
    v.try_reserve_exact(len)
        .map_err(|_| InitError::OutOfMemory)?;
    v.resize(len, 0);
    Ok(v)
}

impl fmt::Display for InitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InitError::UnknownTenant => f.write_str("PD name is not ledger_<known tenant>"),
            InitError::Region(e) => write!(f, "region: {e}"),
            InitError::Key(e) => write!(f, "key: {e}"),
            InitError::OutOfMemory => write!(f, "heap cannot hold {FIXED_HEAP} bytes of buffers"),
        }
    }
}

/// The ledger PD of one tenant.
#[derive(Debug)]
pub struct LedgerPd {
    tenant: &'static str,
    origin: String,
    signer: Signer,
    wire: Region<ReadWrite>,
    audit: Region<ReadWrite>,
    /// A stateless handle for direct reads (checkpoints, objects) and for reopening the log.
    psdb: PsdbClient,
    log: Option<Log<PsdbClient>>,
    /// Why the last open failed (for the PD's console).
    last_error: Option<String>,
    /// The last damage reported on the console (each is printed once, not per request).
    reported: Option<String>,
    /// The log's buffers while no log is open (see [`tlog::Log::open_in`]).
    bufs: tlog::Buffers,
    /// Request copy, response, answer: capacity [`MAX_PAYLOAD`] each, never grown.
    req: Vec<u8>,
    resp: Vec<u8>,
    obj: Vec<u8>,
    /// The group being staged: its entries (a bundle, capacity [`ledger_call::MAX_STAGED`],
    /// never grown), how many, and the id every call of the group carries (`None`: nothing
    /// staged).
    stage: Vec<u8>,
    staged: u32,
    stage_id: Option<u64>,
    /// Whether what is staged came in signed stages, each Authorized on its own: the commit
    /// then needs no authorization of its own (it carries no entries).
    stage_signed: bool,
}

/// What a well-formed call produced, before the response is copied to the wire.
/// What audit said to a request (Authorize, `docs/access.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Gate {
    /// Access control off: act, and record reads with `Record` (phase 1).
    Open,
    /// Granted and recorded: act, serving no rows outside these (for content).
    Granted(Option<(u64, u64)>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// A response of this length is in `resp`.
    Response(usize),
    /// A stage was kept: entries staged so far.
    Staged(u32),
    /// A signed stage refused on its own: the error response of this length is in `resp`,
    /// and what was staged before stays staged.
    Refused(usize),
}

/// Builds the PD: tenant from the PD name, regions from system.xml, the signer from `skey` (the
/// tenant's signer key string, which must be named for this tenant's log). Opens (or creates)
/// the tenant's log now if psdb answers; otherwise at the first request.
pub fn init(skey: &str) -> Result<LedgerPd, InitError> {
    let name = microkit::pd_name();
    let t = interface::tenant_of_pd_name(name.as_str()).ok_or(InitError::UnknownTenant)?;
    let tenant = interface::TENANTS[t];
    let signer = interface::keys::signer(tenant, skey).map_err(InitError::Key)?;
    let wire = WIRE.get().map_err(InitError::Region)?;
    let audit = AUDIT.get().map_err(InitError::Region)?;
    let psdb = PsdbClient::new(ledger::PSDB, PSDB.get().map_err(InitError::Region)?);
    let bufs = tlog::Buffers::preallocated(MAX_PENDING).map_err(|_| InitError::OutOfMemory)?;
    let (mut req, resp, mut obj, mut stage) = (
        buffer(MAX_PAYLOAD)?,
        buffer(MAX_PAYLOAD)?,
        buffer(MAX_PAYLOAD)?,
        buffer(ledger_call::MAX_STAGED)?,
    );
    req.clear();
    obj.clear();
    stage.clear();
    let mut pd = LedgerPd {
        tenant,
        origin: interface::keys::origin(tenant),
        signer,
        wire,
        audit,
        psdb,
        log: None,
        last_error: None,
        reported: None,
        bufs,
        req,
        resp,
        obj,
        stage,
        staged: 0,
        stage_id: None,
        stage_signed: false,
    };
    let _ = pd.open();
    Ok(pd)
}

type R<T> = Result<T, ErrorCode>;

impl LedgerPd {
    /// The tenant this PD serves.
    pub fn tenant(&self) -> &str {
        self.tenant
    }

    /// Why opening the log last failed, if it did.
    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    /// The log, opened (or created, on an empty namespace) if it is not yet.
    fn open(&mut self) -> R<&mut Log<PsdbClient>> {
        if self.log.is_none() {
            let mut storage = self.psdb.clone();
            let exists = match storage.get_range(None, 0, &mut []) {
                Ok(exists) => exists,
                Err(e) => {
                    let why = alloc::format!("{e}");
                    let code = if e.is_damage() {
                        self.report(alloc::format!("checkpoint cannot be read: {why}"));
                        ErrorCode::Damaged
                    } else {
                        ErrorCode::Storage
                    };
                    self.last_error = Some(why);
                    return Err(code);
                }
            };
            let (origin, signer) = (&self.origin, self.signer.clone());
            let opened = if exists.is_some() {
                Log::open_in(storage, origin, signer, &mut self.bufs)
            } else {
                Log::create_in(storage, origin, signer, &mut self.bufs)
            };
            match opened {
                Ok(log) => {
                    self.last_error = None;
                    if let Some(t) = log.stray() {
                        self.report(alloc::format!(
                            "{} lies beyond the signed checkpoint of {} entries and was not \
                             written by this ledger: left on disk, never signed",
                            t.path(),
                            log.committed_size()
                        ));
                    }
                    self.log = Some(log);
                }
                Err(e) => {
                    let code = error_code(&e);
                    let why = alloc::format!("{e}");
                    if code == ErrorCode::Damaged {
                        self.report(alloc::format!("log cannot be opened: {why}"));
                    }
                    self.last_error = Some(why);
                    return Err(code);
                }
            }
        }
        self.log.as_mut().ok_or(ErrorCode::Storage)
    }

    /// Prints `what` on an `|ERROR:` console line, unless it was the last thing reported.
    fn report(&mut self, what: String) {
        if self.reported.as_deref() != Some(what.as_str()) {
            microkit::debug_println!("ledger_{}|ERROR: {what}", self.tenant);
            self.reported = Some(what);
        }
    }

    /// Drops a poisoned log (it is reopened from psdb at the next request, as after a crash),
    /// keeping its buffers for that.
    fn drop_log(&mut self) {
        if let Some(log) = self.log.take() {
            self.bufs = log.into_parts().1;
        }
    }

    /// Reads bytes `offset..` of an object (the checkpoint if `path` is `None`) into `obj`, at
    /// most `max` of them; the object's total length.
    fn read_object(&mut self, path: Option<&str>, offset: u64, max: usize) -> R<u64> {
        let mut out = core::mem::take(&mut self.obj);
        out.clear();
        out.resize(max.min(out.capacity()), 0);
        let got = self.psdb.clone().get_range(path, offset, &mut out);
        let n = match got {
            Ok(Some((_, n))) => n,
            _ => 0,
        };
        out.truncate(n);
        self.obj = out;
        match got {
            Ok(Some((total, _))) => Ok(total),
            Ok(None) => Err(ErrorCode::NotFound),
            Err(e) if e.is_damage() => {
                let what = path.unwrap_or("checkpoint");
                self.report(alloc::format!("{what} cannot be read: {e}"));
                Err(ErrorCode::Damaged)
            }
            Err(_) => Err(ErrorCode::Storage),
        }
    }

    /// Has audit durably record a read before content leaves; fails closed.
    fn audited(&mut self, record: Record) -> R<()> {
        let bytes = audit_call::encode(&record);
        self.audit
            .write(0, &bytes)
            .map_err(|_| ErrorCode::AuditFailed)?;
        let call = audit_msg::Request::Record { len: bytes.len() };
        let m = call.encode().call(ledger::AUDIT);
        match audit_msg::Reply::decode(&call, m.info(), m.mrs()) {
            Ok(audit_msg::Reply::Recorded { .. }) => Ok(()),
            Ok(
                audit_msg::Reply::Usage(_)
                | audit_msg::Reply::BadCall
                | audit_msg::Reply::Storage
                | audit_msg::Reply::NotServing
                | audit_msg::Reply::Granted { .. }
                | audit_msg::Reply::Open
                | audit_msg::Reply::Refused { .. }
                | audit_msg::Reply::Served { .. },
            )
            | Err(_) => Err(ErrorCode::AuditFailed),
        }
    }

    /// Handles one call from the wire: `call.call` (a request, a stage or a commit) of the
    /// request `call.len` bytes at the start of the wire region. A response is written there.
    /// Anything but a stage kept or a commit discards what was staged first; a commit discards
    /// it once done (see [`interface::ledger_call`]). The reply: `Ok` with the response's
    /// length, `Staged` with the entries staged so far, or `BadCall` for a malformed call.
    /// Authorize `op` with its authorization `auth` on this ledger's own audit channel: the
    /// signature and `matches(own tenant, op)` checked here first, then audit decides for the
    /// channel's tenant, remembers the nonce and records the grant before answering.
    fn gate(&mut self, auth: &[u8], op: &Op<'_>) -> R<Gate> {
        let action = match access::Action::from_op(op) {
            Ok(Some(a)) => a,
            // Ping: never signed (docs/access.md), so an authorization on it is refused as
            // on a phase-1 box.
            Ok(None) if auth.is_empty() => return Ok(Gate::Open),
            Ok(None) => return Err(ErrorCode::BadRequest),
            // The one refusal of `from_op`: an append's entries are no bundle.
            Err(_) => return Err(ErrorCode::BadEntries),
        };
        let text = action.to_text();
        let mut buf = [0u8; audit_msg::ACCESS_CALL_MAX];
        let n = audit_msg::AccessCall {
            tenant: "",
            action: text.as_bytes(),
            auth,
        }
        .encode(&mut buf)
        .ok_or(ErrorCode::MalformedAuth)?;
        self.audit
            .write(0, &buf[..n])
            .map_err(|_| ErrorCode::AuditFailed)?;
        let call = audit_msg::Request::Authorize { len: n };
        let m = call.encode().call(ledger::AUDIT);
        match audit_msg::Reply::decode(&call, m.info(), m.mrs()) {
            Ok(audit_msg::Reply::Open) => Ok(Gate::Open),
            // An audit PD that could not start (no audit key, or identity and pairings slots
            // half provisioned or unreadable): as on a phase-1 box whose audit is down, an
            // unsigned request goes on and a read still fails closed at its Record. A signed
            // one is refused.
            Ok(audit_msg::Reply::NotServing) if auth.is_empty() => Ok(Gate::Open),
            Ok(audit_msg::Reply::Granted { rows }) => {
                // Audit checked them for this channel's tenant; checked here again, so a
                // ledger never acts on a request it has not seen signed for itself.
                if !auth.is_empty() {
                    let req = access::SignedRequest::parse(auth).map_err(|r| r.code())?;
                    req.verify_signature().map_err(|r| r.code())?;
                    req.matches_action(self.tenant, &action)
                        .map_err(|r| r.code())?;
                }
                Ok(Gate::Granted(rows))
            }
            Ok(audit_msg::Reply::Refused { code }) => {
                Err(ErrorCode::try_from(code).unwrap_or(ErrorCode::AuditFailed))
            }
            Ok(_) | Err(_) => Err(ErrorCode::AuditFailed),
        }
    }

    pub fn handle(&mut self, call: wire_msg::Request) -> wire_msg::Reply {
        let staging = match call.call {
            Call::Stage | Call::Commit => true,
            Call::Request => false,
        };
        if !staging {
            self.discard_stage();
        }
        let len = call.len;
        if len > self.wire.len() || len > MAX_PAYLOAD {
            self.discard_stage();
            return wire_msg::Reply::BadCall;
        }
        // Copy out first: the request is validated on bytes the wire can no longer change.
        let mut req = core::mem::take(&mut self.req);
        req.clear();
        req.resize(len, 0);
        let outcome = match self.wire.read(0, &mut req) {
            Ok(()) => match call.call {
                Call::Stage => self.stage(&req),
                Call::Commit => self.commit(&req).map(Outcome::Response),
                Call::Request => self.answer(&req).map(Outcome::Response),
            },
            Err(_) => Err(wire_msg::Reply::BadCall),
        };
        self.req = req;
        let keep = matches!(outcome, Ok(Outcome::Staged(_) | Outcome::Refused(_)));
        if call.call == Call::Commit || !keep {
            self.discard_stage();
        }
        match outcome {
            Ok(Outcome::Staged(count)) => wire_msg::Reply::Staged { count },
            Ok(Outcome::Response(n) | Outcome::Refused(n)) => {
                match self.wire.write(0, &self.resp[..n]) {
                    Ok(()) => wire_msg::Reply::Ok { len: n },
                    Err(_) => wire_msg::Reply::BadCall,
                }
            }
            Err(reply) => reply,
        }
    }

    /// Forgets the group being staged (nothing of it was written anywhere).
    fn discard_stage(&mut self) {
        self.stage.clear();
        self.staged = 0;
        self.stage_id = None;
        self.stage_signed = false;
    }

    /// Entries staged so far (tests and the simulator's reports).
    pub fn staged(&self) -> u32 {
        self.staged
    }

    /// Decodes `req` and checks what every request must be: this tenant's, no capability.
    fn decode<'r>(&self, req: &'r [u8]) -> Result<Request<'r>, (u64, ErrorCode)> {
        match Request::decode(req) {
            Err(_) => Err((peek_request_id(req), ErrorCode::BadMessage)),
            Ok(r) if r.tenant != self.tenant => Err((r.id, ErrorCode::WrongTenant)),
            Ok(r) => Ok(r),
        }
    }

    /// A stage ([`Stage`](Call::Stage)): an append request whose entries are kept, in memory
    /// only, for the commit. Validated as an append is; it must carry the group's id, and fit
    /// the stage buffer. Refused: an error response (and the caller discards the stage).
    fn stage(&mut self, req: &[u8]) -> Result<Outcome, wire_msg::Reply> {
        if let Ok(r) = Request::decode(req) {
            if !r.capability.is_empty() {
                return self.stage_signed(req);
            }
        }
        let (id, code) = match self.decode(req) {
            Ok(r) => match self
                .gate(r.capability, &r.op)
                .and_then(|_| self.keep(r.id, r.op))
            {
                Ok(total) => return Ok(Outcome::Staged(total)),
                Err(code) => (r.id, code),
            },
            Err(e) => e,
        };
        self.respond(id, Err(code)).map(Outcome::Response)
    }

    /// A signed stage (group commit of signed appends): checked first for what keeping it
    /// needs (this tenant's, an append of a valid bundle under the group's id, room in the
    /// stage buffer), then Authorized with its own authorization (audit remembers its nonce
    /// and records the grant), then kept. A refusal at any step answers its code and changes
    /// nothing: what was staged before stays staged, so one refused request does not stop the
    /// others of its group.
    fn stage_signed(&mut self, req: &[u8]) -> Result<Outcome, wire_msg::Reply> {
        let (id, code) = match self.decode(req) {
            Err(e) => e,
            Ok(r) => {
                let fits = match r.op {
                    Op::Append { entries: bundle } => bundle_count(bundle).and_then(|_| {
                        if self.stage_id.is_some_and(|g| g != r.id) {
                            Err(ErrorCode::BadRequest)
                        } else if bundle.len() > ledger_call::MAX_STAGED - self.stage.len() {
                            Err(ErrorCode::TooLarge)
                        } else {
                            Ok(())
                        }
                    }),
                    _ => Err(ErrorCode::BadRequest),
                };
                match fits
                    .and_then(|()| self.gate(r.capability, &r.op))
                    .and_then(|_| self.keep(r.id, r.op))
                {
                    Ok(total) => {
                        self.stage_signed = true;
                        return Ok(Outcome::Staged(total));
                    }
                    Err(code) => (r.id, code),
                }
            }
        };
        self.respond(id, Err(code)).map(Outcome::Refused)
    }

    /// Adds a stage's entries to the stage buffer; entries staged so far.
    fn keep(&mut self, id: u64, op: Op<'_>) -> R<u32> {
        let Op::Append { entries: bundle } = op else {
            return Err(ErrorCode::BadRequest);
        };
        let n = bundle_count(bundle)?;
        if self.stage_id.is_some_and(|g| g != id) {
            return Err(ErrorCode::BadRequest);
        }
        if bundle.len() > ledger_call::MAX_STAGED - self.stage.len() {
            return Err(ErrorCode::TooLarge);
        }
        // Within the capacity reserved at init: never grows.
        self.stage.extend_from_slice(bundle);
        self.staged += n;
        self.stage_id = Some(id);
        Ok(self.staged)
    }

    /// A commit ([`Commit`](Call::Commit)): the staged entries and the request's own appended,
    /// one checkpoint. Refused (nothing stored) unless something is staged under its id.
    fn commit(&mut self, req: &[u8]) -> Result<usize, wire_msg::Reply> {
        let (id, body) = match self.decode(req) {
            Ok(r) => match r.op {
                _ if self.stage_id != Some(r.id) => (r.id, Err(ErrorCode::BadRequest)),
                // The commit of signed stages, each Authorized when it was kept: it adds no
                // entries, so it needs no authorization of its own.
                Op::Append { entries: [] } if self.stage_signed && r.capability.is_empty() => {
                    let stage = core::mem::take(&mut self.stage);
                    let done = self.append(&stage, &[]);
                    self.stage = stage;
                    (r.id, done)
                }
                _ if self.gate(r.capability, &r.op).is_err() => (r.id, Err(ErrorCode::BadRequest)),
                Op::Append { entries: bundle } => {
                    let stage = core::mem::take(&mut self.stage);
                    let done = self.append(&stage, bundle);
                    self.stage = stage;
                    (r.id, done)
                }
                _ => (r.id, Err(ErrorCode::BadRequest)),
            },
            Err((id, code)) => (id, Err(code)),
        };
        self.respond(id, body)
    }

    /// Decodes and serves `req`; encodes the response into `self.resp`.
    fn answer(&mut self, req: &[u8]) -> Result<usize, wire_msg::Reply> {
        let (id, body) = match self.decode(req) {
            Err((id, code)) => (id, Err(code)),
            Ok(r) => {
                let gate = self.gate(r.capability, &r.op);
                (r.id, gate.and_then(|g| self.serve(r.id, r.op, g)))
            }
        };
        self.respond(id, body)
    }

    /// Encodes the response to request `id` into `self.resp`; its length.
    fn respond(&mut self, id: u64, body: R<Answer>) -> Result<usize, wire_msg::Reply> {
        // The body borrows `self.obj`/`self.req` (objects, entries); encode it into `resp`.
        let mut out = core::mem::take(&mut self.resp);
        let n = match &body {
            Ok(b) => Response {
                id,
                body: b.to_body(&self.obj),
            }
            .encode(&mut out),
            Err(code) => Response::error(id, *code).encode(&mut out),
        };
        let n = match n {
            Ok(n) => Ok(n),
            Err(_) => Response::error(id, ErrorCode::TooLarge)
                .encode(&mut out)
                .map_err(|_| wire_msg::Reply::BadCall),
        };
        self.resp = out;
        n
    }

    fn serve(&mut self, id: u64, op: Op<'_>, gate: Gate) -> R<Answer> {
        match op {
            Op::Ping => Ok(Answer::Pong),
            Op::Hello => {
                let size = self.open()?.committed_size();
                Ok(Answer::Hello {
                    origin: self.origin.clone(),
                    vkey: self.signer.verifier().vkey(),
                    size,
                })
            }
            Op::Append { entries: bundle } => self.append(&[], bundle),
            Op::Read { since, max } => self.read(id, since, max, gate),
            Op::Checkpoint => {
                self.open()?;
                let total = self.read_object(None, 0, MAX_PAYLOAD)?;
                if total > self.obj.len() as u64 {
                    return Err(ErrorCode::TooLarge);
                }
                Ok(Answer::Checkpoint)
            }
            Op::GetObject { path, offset } => self.get_object(id, path, offset, gate),
            Op::Status => self.status(),
            // Archive-wide: audit's (the wire sends them there), never a ledger's.
            Op::PairChange { .. } | Op::AuditObject { .. } | Op::Identity { .. } => {
                Err(ErrorCode::BadRequest)
            }
        }
    }

    fn status(&mut self) -> R<Answer> {
        let mut own = self.psdb.clone().usage().map_err(|_| ErrorCode::Storage)?;
        // A log that cannot be opened because it is damaged (psdb flags the namespace, or the
        // log does not verify) still has a status: size 0, flagged damaged.
        let size = match self.open() {
            Ok(log) => log.committed_size(),
            Err(ErrorCode::Damaged) => {
                own.damaged = true;
                0
            }
            Err(_) if own.damaged => 0,
            Err(e) => return Err(e),
        };
        let call = audit_msg::Request::Usage;
        let m = call.encode().call(ledger::AUDIT);
        let audit = match audit_msg::Reply::decode(&call, m.info(), m.mrs()) {
            Ok(audit_msg::Reply::Usage(u)) => u,
            Ok(
                audit_msg::Reply::Recorded { .. }
                | audit_msg::Reply::BadCall
                | audit_msg::Reply::Storage
                | audit_msg::Reply::NotServing
                | audit_msg::Reply::Granted { .. }
                | audit_msg::Reply::Open
                | audit_msg::Reply::Refused { .. }
                | audit_msg::Reply::Served { .. },
            )
            | Err(_) => return Err(ErrorCode::Storage),
        };
        Ok(Answer::Status {
            size,
            own,
            audit_disk: (audit.disk_used, audit.disk_quota),
        })
    }

    /// Appends the entries of `staged` (a group's stages, already validated), then those of
    /// `bundle`, and signs one checkpoint.
    fn append(&mut self, staged: &[u8], bundle: &[u8]) -> R<Answer> {
        // A signed group's commit adds nothing of its own to what it staged.
        if !bundle.is_empty() || staged.is_empty() {
            bundle_count(bundle)?;
        }
        let log = self.open()?;
        let first = log.size();
        let mut count = 0u32;
        let mut error = None;
        for e in entries(staged).chain(entries(bundle)).flatten() {
            if let Err(e) = log.append(e) {
                error = Some(e);
                break;
            }
            count += 1;
        }
        let done = match error {
            Some(e) => Err(e),
            None => log.checkpoint().map(|_| ()),
        };
        match done {
            Ok(()) => Ok(Answer::Appended {
                first,
                count,
                size: log.committed_size(),
            }),
            Err(e) => {
                // No room (disk, index or quota) is the tenant's to know; damage is reported;
                // any other failure is a storage fault. Either way nothing of this request was
                // acknowledged (psdb discards a refused request whole), and the log is
                // poisoned: reopen from psdb at the next request, as after a crash.
                let code = error_code(&e);
                if code == ErrorCode::Damaged {
                    self.report(alloc::format!("append refused: {e}"));
                }
                self.drop_log();
                Err(code)
            }
        }
    }

    fn read(&mut self, id: u64, since: u64, max: u32, gate: Gate) -> R<Answer> {
        // Never more than the grant's rows (a capability's end).
        let max = match gate {
            Gate::Granted(Some((start, end))) if start == since => {
                u32::try_from(end.saturating_sub(since))
                    .unwrap_or(u32::MAX)
                    .min(max)
            }
            Gate::Granted(_) => return Err(ErrorCode::OutOfRange),
            Gate::Open => max,
        };
        let budget = MAX_PAYLOAD - RESPONSE_OVERHEAD;
        // Every entry takes at least its 2-byte length: no more than this many can fit.
        let max = u64::from(max).min((budget / 2) as u64);
        let mut out = core::mem::take(&mut self.obj);
        out.clear();
        out.resize(budget, 0);
        let (mut len, mut count, mut full) = (0usize, 0u64, false);
        let res = self.open()?.read_since_with(since, max, |_, e| {
            if !full && push_entry(&mut out, &mut len, e) {
                count += 1;
            } else {
                full = true;
            }
        });
        out.truncate(len);
        self.obj = out;
        if let Err(e) = res {
            let code = error_code(&e);
            if code == ErrorCode::Damaged {
                self.report(alloc::format!("read refused: {e}"));
            }
            self.drop_log();
            return Err(code);
        }
        if gate == Gate::Open {
            self.audited(Record {
                request: id,
                kind: Kind::Read,
                first: since,
                count,
            })?;
        }
        Ok(Answer::Entries { first: since })
    }

    fn get_object(&mut self, id: u64, path: &str, offset: u64, gate: Gate) -> R<Answer> {
        let committed = self.open()?.committed_size();
        let bundle = if path == "checkpoint" {
            None
        } else {
            let tile = parse_tile_path(path).map_err(|_| ErrorCode::BadRequest)?;
            match tile.kind() {
                TileKind::Entries => {
                    let first = tile.index().saturating_mul(TILE_WIDTH);
                    let count = u64::from(tile.width());
                    // Only committed entries leave, never a bundle written ahead of a checkpoint.
                    if first.saturating_add(count) > committed {
                        return Err(ErrorCode::NotFound);
                    }
                    Some((first, count))
                }
                TileKind::Hashes(level) => {
                    // Public, but only for the committed tree: a tile (or partial tile) beyond
                    // the checkpoint would leak leaf hashes of unacknowledged entries.
                    if !hash_tile_committed(level, tile.index(), tile.width(), committed) {
                        return Err(ErrorCode::NotFound);
                    }
                    None
                }
            }
        };
        // Straight from the region shared with psdb: one chunk, never a copy of the object.
        let object = (path != "checkpoint").then_some(path);
        let total = self.read_object(object, offset, MAX_CHUNK)?;
        if offset > total {
            return Err(ErrorCode::BadRequest);
        }
        if let Some((first, count)) = bundle {
            if let Gate::Granted(rows) = gate {
                // A bundle is served whole, only if every row of it was granted.
                let whole = rows.is_some_and(|(a, b)| a <= first && first + count <= b);
                if !whole {
                    return Err(ErrorCode::OutOfRange);
                }
            }
        }
        if let Some((first, count)) = bundle.filter(|_| gate == Gate::Open) {
            self.audited(Record {
                request: id,
                kind: Kind::Bundle,
                first,
                count,
            })?;
        }
        Ok(Answer::Object {
            total,
            offset,
            range: (0, self.obj.len()),
        })
    }
}

/// How many entries an append request's `bundle` holds: refused as an append is when it is not
/// a valid bundle or holds none.
fn bundle_count(bundle: &[u8]) -> R<u32> {
    match count_entries(bundle) {
        None => Err(ErrorCode::BadEntries),
        Some(0) => Err(ErrorCode::BadRequest),
        Some(n) => u32::try_from(n).map_err(|_| ErrorCode::TooLarge),
    }
}

/// The client's error code for a failed log operation: no room, damage (psdb's damage or
/// conflict refusals, a corrupt object read back, a tree that would not extend the signed
/// one), else a storage fault.
fn error_code(e: &tlog::Error<interface::PsdbError>) -> ErrorCode {
    match e {
        tlog::Error::Storage(pe) if pe.is_full() => ErrorCode::Full,
        tlog::Error::Storage(pe) if pe.is_damage() => ErrorCode::Damaged,
        tlog::Error::Corrupt(_) | tlog::Error::Inconsistent { .. } => ErrorCode::Damaged,
        _ => ErrorCode::Storage,
    }
}

/// Whether the hash tile at `level`, index `n`, `width` hashes lies within a tree of
/// `committed` entries: `n·256^(level+1) + width·256^level <= committed`, in checked
/// arithmetic (anything that overflows is beyond every tree).
fn hash_tile_committed(level: u8, n: u64, width: u16, committed: u64) -> bool {
    let pow = |l: u32| 256u128.checked_pow(l);
    let end = pow(u32::from(level) + 1)
        .and_then(|full| u128::from(n).checked_mul(full))
        .zip(pow(u32::from(level)))
        .and_then(|(first, unit)| first.checked_add(u128::from(width).checked_mul(unit)?));
    end.is_some_and(|end| end <= u128::from(committed))
}

#[cfg(test)]
mod tests {
    use super::hash_tile_committed;

    #[test]
    fn hash_tiles_are_bounded_by_the_committed_size() {
        // Level 0: full tile 0 needs 256 entries; a partial of width 5 needs 5.
        assert!(hash_tile_committed(0, 0, 256, 256));
        assert!(!hash_tile_committed(0, 0, 256, 255));
        assert!(hash_tile_committed(0, 0, 5, 5));
        assert!(!hash_tile_committed(0, 0, 6, 5));
        assert!(hash_tile_committed(0, 1, 3, 259));
        assert!(!hash_tile_committed(0, 1, 4, 259));
        // Level 1: each hash covers 256 entries.
        assert!(hash_tile_committed(1, 0, 2, 512));
        assert!(!hash_tile_committed(1, 0, 2, 511));
        assert!(hash_tile_committed(1, 2, 1, 2 * 65536 + 256));
        assert!(!hash_tile_committed(1, 2, 1, 2 * 65536 + 255));
        // Overflowing positions are beyond every tree.
        assert!(!hash_tile_committed(7, u64::MAX, 256, u64::MAX));
        assert!(!hash_tile_committed(40, 0, 1, u64::MAX));
        assert!(hash_tile_committed(7, 0, 1, 1 << 56));
        assert!(!hash_tile_committed(7, 0, 1, (1 << 56) - 1));
    }
}

/// A successful answer whose bytes live in the PD's buffers until it is encoded.
#[derive(Debug)]
enum Answer {
    Pong,
    Hello {
        origin: String,
        vkey: String,
        size: u64,
    },
    Appended {
        first: u64,
        count: u32,
        size: u64,
    },
    /// Entries in `obj`.
    Entries {
        first: u64,
    },
    /// The note in `obj`.
    Checkpoint,
    /// `obj[range]`.
    Object {
        total: u64,
        offset: u64,
        range: (usize, usize),
    },
    Status {
        size: u64,
        own: interface::Usage,
        /// Used, quota.
        audit_disk: (u64, u64),
    },
}

impl Answer {
    fn to_body<'a>(&'a self, obj: &'a [u8]) -> Body<'a> {
        match self {
            Answer::Pong => Body::Pong,
            Answer::Hello { origin, vkey, size } => Body::Hello {
                origin,
                vkey,
                size: *size,
            },
            Answer::Appended { first, count, size } => Body::Appended {
                first: *first,
                count: *count,
                size: *size,
            },
            Answer::Entries { first } => Body::Entries {
                first: *first,
                entries: obj,
            },
            Answer::Checkpoint => Body::Checkpoint { note: obj },
            Answer::Object {
                total,
                offset,
                range,
            } => Body::Object {
                total: *total,
                offset: *offset,
                data: obj.get(range.0..range.1).unwrap_or_default(),
            },
            Answer::Status {
                size,
                own,
                audit_disk,
            } => Body::Status {
                size: *size,
                disk_used: own.disk_used,
                disk_quota: own.disk_quota,
                index_used: own.index_used,
                index_quota: own.index_quota,
                volume_free: own.volume_free,
                audit_disk_used: audit_disk.0,
                audit_disk_quota: audit_disk.1,
                damaged: own.damaged,
            },
        }
    }
}

impl Handler for LedgerPd {
    type Error = core::convert::Infallible;

    fn protected(
        &mut self,
        channel: Channel,
        info: MessageInfo,
    ) -> Result<MessageInfo, Self::Error> {
        let m = Message::received(info);
        let reply = match wire_msg::Request::decode(m.info(), m.mrs()) {
            Ok(call) if channel == ledger::WIRE => self.handle(call),
            Ok(_) | Err(_) => {
                self.discard_stage();
                wire_msg::Reply::BadCall
            }
        };
        Ok(reply.encode().set_mrs())
    }
}

/// What a ledger PD runs, in the seL4 image and in the simulator alike ([`start`]): the ledger,
/// or, when it could not start (unknown tenant, missing region, an empty key slot or another
/// log's key), a PD that answers every call [`wire_msg::Reply::NotServing`] (the one
/// [`interface::msg::NOT_SERVING`] of every PD), which the wire turns into `Unavailable` for
/// this tenant alone. The other tenants do not notice.
pub type LedgerImage = Image<LedgerPd, InitError>;

/// Starts the ledger with the signer key string the PD's key slot holds (or why it holds
/// none), printing the start-up line: `<pd>|INFO: serving tenant <t>` or `<pd>|ERROR: not
/// serving: <why>`.
pub fn start(skey: Result<&str, InitError>) -> LedgerImage {
    let started = skey.and_then(init);
    match &started {
        Ok(pd) => match pd.last_error() {
            None => microkit::debug_println!(
                "{}|INFO: serving tenant {}",
                microkit::pd_name(),
                pd.tenant()
            ),
            Some(e) => microkit::debug_println!(
                "{}|INFO: serving tenant {}; log not open yet: {e}",
                microkit::pd_name(),
                pd.tenant()
            ),
        },
        Err(e) => microkit::debug_println!("{}|ERROR: not serving: {e}", microkit::pd_name()),
    }
    Image::from(started)
}

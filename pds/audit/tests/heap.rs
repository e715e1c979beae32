//! The audit PD's heap in its worst case, provisioned (`Access::Enforce`): its handler runs
//! inside a heap exactly as large as system.xml's `heap_audit`, on the allocator the PD uses
//! (`microkit::heap::Heap`, first-fit), so fragmentation counts. Any allocation audit cannot get
//! aborts the test (as it would fault the PD, and with it every read and signed request).
//!
//! The worst case run:
//! - the pairing set at its bound: [`access::MAX_PAIRINGS`] pairings, all but the ADMIN's with
//!   [`access::MAX_TENANTS_PER_PAIRING`] tenants of 32-byte names, key names of 32 bytes; it is
//!   on disk as the initial set plus changes replayed at boot, and the image's set (which audit
//!   keeps too) is as large as the pairings slot holds;
//! - the nonce window at its capacity ([`access::NONCE_CAPACITY`]: 4 keys x
//!   [`access::NONCE_PER_KEY`]), filled by the **boot rebuild**: the disk's audit tlog ends in
//!   65,536 granted records of the last 30 s (the clock is fake), read back a bundle at a time
//!   (`load_into`, `NonceWindow::restore`/`restored`), and then again **at run time**: the
//!   clock moved past every restored entry, 65,536 Authorize calls with real signed requests
//!   (presigned; about 25 s in a debug build) fill it through `NonceWindow::insert`, each
//!   grant journaled (256 folds);
//! - a journal fold with the longest record lines audit writes here (the journal pre-filled on
//!   disk with 254 of them, then records until the 257th folds: 256 lines -> one entry bundle,
//!   its tiles, a checkpoint, the next journal);
//! - Authorize at capacity (`NonceMemoryFull`, recorded), Check, ledger records;
//! - a pairing change at the bound (a 64th key's pairing replaced; a 65th refused);
//! - the largest `AuditObject` chunk reads (a whole entry bundle, and the checkpoint);
//! - a reboot over the same disk (the rebuild again, with the runtime records in it).
//!
//! Everything the test needs (regions, the fake psdb's storage, presigned requests) is
//! allocated before audit's share of the heap is fenced off; the fake psdb allocates nothing
//! while audit runs.

// A test without the harness (it owns the global allocator): panicking is how it fails.
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use access::{
    Action, AuditRecord, Change, Outcome, Pairing, PairingChange, PairingSet, PairingType,
    SignedRequest, Tenants,
};
use interface::audit_log::{journal_path, journal_slots};
use interface::msg::audit::{AccessCall, Reply as AuditReply, Request as AuditCall};
use interface::msg::psdb::{JournalStat, Piece, Reply as PsdbReply, Request as PsdbRequest};
use interface::msg::{Message, MAX_MRS};
use interface::psdb_call::{DATA, JOURNAL_RECORD};
use interface::{audit, AUDIT_NAMESPACE};
use microkit::heap::{Heap, HeapArena};
use microkit::host::{set_backend, Backend, HostMemory};
use microkit::{Channel, Handler, IrqAckError, MessageInfo};
use protocol::{Body, Op, Request, Response, MAX_CHUNK, MAX_PAYLOAD};

const ARENA_SIZE: usize = 512 << 20;
static ARENA: HeapArena<ARENA_SIZE> = HeapArena::new();
#[global_allocator]
static HEAP: Heap = Heap::from_arena(&ARENA);

/// The archive clock at boot.
const T0: u64 = 1_750_000_000;
/// Object slots free for what audit writes while it runs, each of this capacity.
const SPARE_OBJECTS: usize = 640;
const SPARE_CAPACITY: usize = 128 << 10;
const SPARE_JOURNALS: usize = 4;

struct Object {
    path: [u8; 96],
    path_len: usize,
    data: Vec<u8>,
}

struct Journal {
    path: [u8; 96],
    path_len: usize,
    slots: u32,
    records: Vec<[u8; JOURNAL_RECORD]>,
    lens: Vec<usize>,
}

/// psdb as the audit namespace sees it; allocation-free once the run starts.
struct Fake {
    mrs: RefCell<[u64; MAX_MRS]>,
    psdb: HostMemory,
    wire: HostMemory,
    ledgers: [HostMemory; 3],
    objects: RefCell<Vec<Object>>,
    journals: RefCell<Vec<Journal>>,
    checkpoint: RefCell<Vec<u8>>,
    /// The slot a `PutBegin` opened and the bytes it still expects.
    open: Cell<Option<(usize, usize)>>,
    /// Whether the run started (no more allocation by the fake).
    running: Cell<bool>,
    peak: Cell<usize>,
    base: Cell<usize>,
}

fn family(path: &[u8]) -> &[u8] {
    match path.windows(3).position(|w| w == b".p/") {
        Some(i) => &path[..i],
        None => path,
    }
}

fn fixed(s: &[u8]) -> ([u8; 96], usize) {
    let mut p = [0u8; 96];
    p[..s.len()].copy_from_slice(s);
    (p, s.len())
}

impl Fake {
    fn reply(&self, m: Message) -> MessageInfo {
        self.mrs.borrow_mut()[..m.mrs().len()].copy_from_slice(m.mrs());
        m.info()
    }

    fn sample(&self) {
        let used = HEAP.stats().used.saturating_sub(self.base.get());
        self.peak.set(self.peak.get().max(used));
    }

    /// Stores an object (setup: allocates; running: into a free slot of fixed capacity).
    fn put_object(&self, path: &[u8], data: &[u8]) {
        let mut objects = self.objects.borrow_mut();
        let i = match objects
            .iter()
            .position(|o| o.path_len > 0 && o.path[..o.path_len] == *path)
        {
            Some(i) => i,
            None => {
                if self.running.get() {
                    objects
                        .iter()
                        .position(|o| o.path_len == 0 && o.data.capacity() >= SPARE_CAPACITY)
                        .expect("fake psdb: out of object slots")
                } else {
                    objects.push(Object {
                        path: [0; 96],
                        path_len: 0,
                        data: Vec::new(),
                    });
                    objects.len() - 1
                }
            }
        };
        let o = &mut objects[i];
        (o.path, o.path_len) = fixed(path);
        if self.running.get() {
            assert!(
                data.len() <= o.data.capacity(),
                "fake psdb: object too large"
            );
        }
        o.data.clear();
        o.data.extend_from_slice(data);
        drop(objects);
        if self.running.get() && self.open.get().is_none() {
            self.drop_narrower(i);
        }
    }

    /// A whole tile replaces the narrower partials of its family (`<path>.p/<W>`): all that
    /// is ever read back.
    fn drop_narrower(&self, i: usize) {
        let mut objects = self.objects.borrow_mut();
        let p = objects[i].path;
        let fam = family(&p[..objects[i].path_len]);
        for (j, o) in objects.iter_mut().enumerate() {
            if j != i
                && o.path_len > 0
                && family(&o.path[..o.path_len]) == fam
                && fam.starts_with(b"tile/")
            {
                o.path_len = 0;
                o.data.clear();
            }
        }
    }

    fn find(&self, path: &[u8]) -> Option<usize> {
        self.objects
            .borrow()
            .iter()
            .position(|o| o.path_len > 0 && o.path[..o.path_len] == *path)
    }

    fn journal(&self, path: &[u8]) -> Option<usize> {
        self.journals
            .borrow()
            .iter()
            .position(|j| j.path_len > 0 && j.path[..j.path_len] == *path)
    }

    fn psdb_call(&self, info: MessageInfo) -> MessageInfo {
        let req = PsdbRequest::decode(info, &self.mrs.borrow()[..]).unwrap();
        let (plen, dlen) = (req.path_len(), req.data_len());
        let mut pbuf = [0u8; 96];
        assert!(plen <= pbuf.len(), "path too long for the fake psdb");
        self.psdb.read(0, &mut pbuf[..plen]).unwrap();
        let path = &pbuf[..plen];
        let max_data = self.psdb.len() - DATA;
        let mut data = [0u8; 0x11000];
        let data = &mut data[..dlen];
        self.psdb.read(DATA, data).unwrap();
        let reply = match req {
            PsdbRequest::Put { .. } => {
                self.open.set(None);
                self.put_object(path, data);
                PsdbReply::Done
            }
            PsdbRequest::SetCheckpoint { .. } => {
                self.open.set(None);
                let mut cp = self.checkpoint.borrow_mut();
                assert!(dlen <= cp.capacity());
                cp.clear();
                cp.extend_from_slice(data);
                PsdbReply::Done
            }
            PsdbRequest::PutBegin { size, .. } => {
                self.put_object(path, &[]);
                let i = self.find(path).unwrap();
                self.open.set(Some((i, size as usize)));
                PsdbReply::Done
            }
            PsdbRequest::PutChunk { .. } => {
                let (i, left) = self.open.get().expect("fake psdb: chunk without a put");
                assert!(dlen <= left);
                self.open.set((left > dlen).then_some((i, left - dlen)));
                let mut objects = self.objects.borrow_mut();
                let o = &mut objects[i];
                assert!(o.data.len() + dlen <= o.data.capacity());
                o.data.extend_from_slice(data);
                drop(objects);
                if left == dlen {
                    self.drop_narrower(i);
                }
                PsdbReply::Done
            }
            PsdbRequest::Get { .. } | PsdbRequest::Checkpoint => {
                let objects = self.objects.borrow();
                let cp = self.checkpoint.borrow();
                let found = if let PsdbRequest::Checkpoint = req {
                    (!cp.is_empty()).then_some(&cp[..])
                } else {
                    self.find(path).map(|i| &objects[i].data[..])
                };
                match found {
                    Some(d) if d.len() > max_data => PsdbReply::TooLarge,
                    Some(d) => {
                        self.psdb.write(DATA, d).unwrap();
                        PsdbReply::Found(Some(d.len()))
                    }
                    None => PsdbReply::Found(None),
                }
            }
            PsdbRequest::Verify { .. } => {
                PsdbReply::Found(self.find(path).map(|i| self.objects.borrow()[i].data.len()))
            }
            PsdbRequest::ReadAt { offset, max, .. } => match self.find(path) {
                None => PsdbReply::Piece(None),
                Some(i) => {
                    let objects = self.objects.borrow();
                    let d = &objects[i].data;
                    let at = (offset as usize).min(d.len());
                    let n = (d.len() - at).min(max).min(max_data);
                    self.psdb.write(DATA, &d[at..at + n]).unwrap();
                    PsdbReply::Piece(Some(Piece {
                        len: n,
                        size: d.len() as u64,
                        verified: true,
                    }))
                }
            },
            PsdbRequest::Usage => PsdbReply::Usage(interface::Usage {
                disk_quota: 1 << 30,
                index_quota: 64 << 20,
                volume_free: 1 << 30,
                ..Default::default()
            }),
            PsdbRequest::JournalCreate { slots, .. } => {
                self.open.set(None);
                let mut js = self.journals.borrow_mut();
                // Only the current journal is ever read again: reuse the oldest.
                let i = (0..js.len())
                    .min_by_key(|&i| (js[i].path_len > 0, js[i].path))
                    .unwrap();
                let j = &mut js[i];
                (j.path, j.path_len) = fixed(path);
                j.slots = slots;
                j.lens.clear();
                PsdbReply::Done
            }
            PsdbRequest::JournalAppend { .. } => {
                let i = self.journal(path).expect("no such journal");
                let j = &mut self.journals.borrow_mut()[i];
                let slot = j.lens.len();
                assert!(slot < j.slots as usize && dlen <= JOURNAL_RECORD);
                j.records[slot][..dlen].copy_from_slice(data);
                j.lens.push(dlen);
                PsdbReply::Appended { slot: slot as u32 }
            }
            PsdbRequest::JournalRead { slot, .. } => {
                let i = self.journal(path).expect("no such journal");
                let j = &self.journals.borrow()[i];
                match j.lens.get(slot as usize) {
                    Some(&n) => {
                        self.psdb
                            .write(DATA, &j.records[slot as usize][..n])
                            .unwrap();
                        PsdbReply::Found(Some(n))
                    }
                    None => PsdbReply::Found(None),
                }
            }
            PsdbRequest::JournalStat { .. } => PsdbReply::Stat(self.journal(path).map(|i| {
                let j = &self.journals.borrow()[i];
                JournalStat {
                    slots: j.slots,
                    used: j.lens.len() as u32,
                }
            })),
        };
        self.reply(reply.encode())
    }
}

impl Backend for Fake {
    fn pd_name(&self) -> &str {
        "audit"
    }
    fn is_passive(&self) -> bool {
        true
    }
    fn notify(&self, _: Channel) {}
    fn pp_call(&self, channel: Channel, info: MessageInfo) -> MessageInfo {
        self.sample();
        assert_eq!(channel, audit::PSDB, "audit called channel {channel:?}");
        self.psdb_call(info)
    }
    fn irq_ack(&self, _: Channel) -> Result<(), IrqAckError> {
        Ok(())
    }
    fn get_mr(&self, i: usize) -> u64 {
        self.mrs.borrow()[i]
    }
    fn set_mr(&self, i: usize, v: u64) {
        self.mrs.borrow_mut()[i] = v;
    }
    fn debug_put_str(&self, s: &str) {
        eprint!("{s}");
    }
    fn memory_region(&self, name: &str) -> Option<HostMemory> {
        match name {
            "corporate_vaddr" => Some(self.ledgers[0].clone()),
            "personnel_vaddr" => Some(self.ledgers[1].clone()),
            "property_vaddr" => Some(self.ledgers[2].clone()),
            "psdb_vaddr" => Some(self.psdb.clone()),
            "wire_vaddr" => Some(self.wire.clone()),
            _ => None,
        }
    }
}

/// Setup only: the tlog writes the disk's audit log straight into the fake's objects.
struct SetupStorage(Rc<Fake>, String, Vec<u8>);

impl tlog::Storage for SetupStorage {
    type Error = String;
    fn put(&mut self, path: &str, data: &[u8]) -> Result<(), String> {
        self.0.put_object(path.as_bytes(), data);
        Ok(())
    }
    fn set_checkpoint(&mut self, cp: &[u8]) -> Result<(), String> {
        let mut c = self.0.checkpoint.borrow_mut();
        c.clear();
        c.extend_from_slice(cp);
        Ok(())
    }
    fn get(&mut self, path: &str, out: &mut Vec<u8>) -> Result<bool, String> {
        out.clear();
        Ok(match self.0.find(path.as_bytes()) {
            Some(i) => {
                out.extend_from_slice(&self.0.objects.borrow()[i].data);
                true
            }
            None => false,
        })
    }
    fn put_begin(&mut self, path: &str, _: usize) -> Result<(), String> {
        self.1 = path.into();
        self.2.clear();
        Ok(())
    }
    fn put_chunk(&mut self, data: &[u8]) -> Result<(), String> {
        self.2.extend_from_slice(data);
        self.0.put_object(self.1.as_bytes(), &self.2);
        Ok(())
    }
    fn checkpoint(&mut self, out: &mut Vec<u8>) -> Result<bool, String> {
        out.clear();
        out.extend_from_slice(&self.0.checkpoint.borrow());
        Ok(!out.is_empty())
    }
}

/// A valid tenant name of 32 bytes.
fn tenant32(i: usize) -> String {
    format!("tenant_{i:025}")
}

/// A key name of 32 bytes.
fn key_name(what: &str, i: usize) -> String {
    let s = format!("{what}-{i:0w$}", w = 31 - what.len());
    assert_eq!(s.len(), access::MAX_KEY_NAME);
    s
}

fn nonce(k: usize, n: usize) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&(n as u64).to_be_bytes());
    b[8] = k as u8;
    b[15] = 0x5a;
    b
}

/// Calls audit as its callers do, from presigned requests; allocation-free.
struct Caller {
    sys: Rc<Fake>,
    buf: Vec<u8>,
    resp: Vec<u8>,
}

impl Caller {
    fn call(&self, pd: &mut audit_pd::AuditPd, ch: Channel, req: AuditCall) -> AuditReply {
        let info = pd.protected(ch, req.encode().set_mrs()).unwrap();
        self.sys.sample();
        let m = Message::received(info);
        AuditReply::decode(&req, m.info(), m.mrs()).unwrap()
    }

    /// Authorize (from ledger `t`, `insert`) or Check (from the wire) of `auth` for `action`.
    fn access(
        &mut self,
        pd: &mut audit_pd::AuditPd,
        ledger: Option<usize>,
        tenant: &str,
        action: &[u8],
        auth: &[u8],
    ) -> AuditReply {
        let c = AccessCall {
            tenant,
            action,
            auth,
        };
        let n = c.encode(&mut self.buf).unwrap();
        match ledger {
            Some(t) => {
                self.sys.ledgers[t].write(0, &self.buf[..n]).unwrap();
                self.call(pd, audit::LEDGERS[t], AuditCall::Authorize { len: n })
            }
            None => {
                self.sys.wire.write(0, &self.buf[..n]).unwrap();
                self.call(pd, audit::WIRE, AuditCall::Check { len: n })
            }
        }
    }

    /// A Serve of the encoded protocol request `req`: the response's body, checked by `f`.
    fn serve(&mut self, pd: &mut audit_pd::AuditPd, req: &[u8], f: impl FnOnce(Body<'_>)) {
        self.sys.wire.write(0, req).unwrap();
        let AuditReply::Served { len } =
            self.call(pd, audit::WIRE, AuditCall::Serve { len: req.len() })
        else {
            panic!("serve")
        };
        self.sys.wire.read(0, &mut self.resp[..len]).unwrap();
        f(Response::decode(&self.resp[..len]).unwrap().body);
    }

    fn record(&self, pd: &mut audit_pd::AuditPd, request: u64) -> u64 {
        let rec = interface::audit_call::Record {
            request,
            kind: interface::audit_call::Kind::Read,
            first: access::MAX_ROW - 1000,
            count: 1000,
        };
        let bytes = interface::audit_call::encode(&rec);
        self.sys.ledgers[0].write(0, &bytes).unwrap();
        let r = self.call(
            pd,
            audit::LEDGERS[0],
            AuditCall::Record { len: bytes.len() },
        );
        match r {
            AuditReply::Recorded { index } => index,
            other => panic!("record: {other:?}"),
        }
    }
}

fn main() {
    // A failing assertion must not try to symbolise a backtrace in the fenced-off heap.
    std::panic::set_hook(Box::new(|info| {
        eprintln!("heap test failed: {info}");
        std::process::abort();
    }));
    let xml =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../system.xml")).unwrap();
    let sys = sysdesc::System::parse(&xml).unwrap();
    let heap = sys.region("heap_audit").unwrap().size as usize;
    drop(sys);
    drop(xml);
    // `AUDIT_HEAP_LESS=<bytes>`: run in a heap that much smaller (to show the test can fail).
    let heap = heap
        - std::env::var("AUDIT_HEAP_LESS")
            .ok()
            .map_or(0, |v| v.parse::<usize>().unwrap());

    // Keys. The audit log's, the archive identity, one ADMIN of every tenant, four requesters
    // (the window's keys), and the rest of the 64 pairings.
    let log_skey = note::Signer::generate(&interface::keys::origin(AUDIT_NAMESPACE), &[3; 32])
        .unwrap()
        .skey();
    let log_signer = interface::keys::signer(AUDIT_NAMESPACE, &log_skey).unwrap();
    let identity = note::Signer::generate("archive", &[7; 32]).unwrap();
    let archive = identity.verifier();
    let admin = note::Signer::generate(&key_name("admin", 0), &[8; 32]).unwrap();
    let mut tenants: Vec<String> = (0..access::MAX_TENANTS_PER_PAIRING - 1)
        .map(tenant32)
        .collect();
    tenants.push("corporate".into());
    let full = Tenants::new(&tenants).unwrap();
    let requesters: Vec<note::Signer> = (0..4)
        .map(|i| note::Signer::generate(&key_name("requester", i), &[20 + i as u8; 32]).unwrap())
        .collect();
    let others: Vec<note::Signer> = (0..access::MAX_PAIRINGS - 5)
        .map(|i| note::Signer::generate(&key_name("other", i), &[(40 + i) as u8; 32]).unwrap())
        .collect();
    let pairing =
        |s: &note::Signer, kind, t: &Tenants| Pairing::new(s.verifier(), kind, t.clone()).unwrap();
    // The image's set: the ADMIN, the requesters, then others while it fits the slot.
    let mut image_set = PairingSet::new();
    image_set
        .insert(pairing(&admin, PairingType::Admin, &Tenants::All))
        .unwrap();
    for r in &requesters {
        image_set
            .insert(pairing(r, PairingType::Admin, &full))
            .unwrap();
    }
    let mut in_image = 0;
    for o in &others {
        let mut s = image_set.clone();
        s.insert(pairing(o, PairingType::User, &full)).unwrap();
        if s.to_bytes().len() > interface::keys::PAIRINGS_SLOT_LEN {
            break;
        }
        image_set = s;
        in_image += 1;
    }
    let image_bytes = image_set.to_bytes();

    let sys = Rc::new(Fake {
        mrs: RefCell::new([0; MAX_MRS]),
        psdb: HostMemory::new(interface::size::AUDIT_PSDB),
        wire: HostMemory::new(interface::size::WIRE_AUDIT),
        ledgers: [(); 3].map(|_| HostMemory::new(interface::size::LEDGER_AUDIT)),
        objects: RefCell::new(Vec::new()),
        journals: RefCell::new(Vec::new()),
        checkpoint: RefCell::new(Vec::with_capacity(4096)),
        open: Cell::new(None),
        running: Cell::new(false),
        peak: Cell::new(0),
        base: Cell::new(0),
    });

    // The disk: the pairings (initial set, then one change per remaining key: the set at its
    // bound), the audit tlog with 65,536 granted records of the last 30 s (4 keys x 16,384),
    // and the current journal with 254 of the longest lines.
    sys.put_object(access::INITIAL_PAIRINGS_PATH.as_bytes(), &image_bytes);
    let mut set = image_set.clone();
    let mut changes = 0u64;
    for o in &others[in_image..] {
        let change = PairingChange {
            archive: archive.clone(),
            change: Change::Add {
                kind: PairingType::User,
                tenants: full.clone(),
            },
            key: o.verifier(),
            time: T0 - 3600,
            nonce: nonce(99, changes as usize),
        }
        .sign(&admin)
        .unwrap();
        set.apply(&change, &archive).unwrap();
        sys.put_object(access::pairing_change_path(changes).as_bytes(), &change);
        changes += 1;
    }
    assert_eq!(set.pairings().len(), access::MAX_PAIRINGS);
    let origin = interface::keys::origin(AUDIT_NAMESPACE);
    let mut log = tlog::Log::create(
        SetupStorage(sys.clone(), String::new(), Vec::new()),
        &origin,
        log_signer.clone(),
    )
    .map_err(|_| "create")
    .unwrap();
    let per_key = access::NONCE_PER_KEY;
    let total = access::NONCE_CAPACITY;
    let mut longest = 0;
    for n in 0..total {
        let k = n % 4;
        let time = T0 - 30 + (n * 31 / total) as u64;
        let rec = AuditRecord {
            time,
            key: Some(requesters[k].verifier().key_id()),
            pairing: Some(PairingType::Admin),
            tenant: Some(tenant32(n % 15)),
            op: Some("get-object"),
            rows: Some((access::MAX_ROW - 2, access::MAX_ROW - 1)),
            nonce: Some(nonce(k, n / 4)),
            skew: Some(0),
            outcome: Outcome::Granted,
        };
        let line = rec.to_line(n as u64).unwrap();
        longest = longest.max(line.len());
        log.append(line.as_bytes()).map_err(|_| "append").unwrap();
        if n % 256 == 255 {
            log.checkpoint().map_err(|_| "checkpoint").unwrap();
        }
    }
    assert_eq!(total / 4, per_key);
    drop(log);
    let first = total as u64;
    let slots = journal_slots(first);
    // The longest lines audit writes at these indexes: a grant (nonce and skew are in it) of
    // the longest type and op names, a 32-byte tenant, rows near 2^48. Their nonces go back
    // into the window at boot too (a fifth key's: the rebuild refuses the oldest past the
    // capacity).
    let long_line = |index: u64| {
        AuditRecord {
            time: T0,
            key: Some(others[0].verifier().key_id()),
            pairing: Some(PairingType::Interface),
            tenant: Some(tenant32(0)),
            op: Some("audit-object"),
            rows: Some((access::MAX_ROW - 2, access::MAX_ROW - 1)),
            nonce: Some(nonce(7, index as usize)),
            skew: Some(-30),
            outcome: Outcome::Granted,
        }
        .to_line(index)
        .unwrap()
    };
    let mut journals: Vec<Journal> = (0..SPARE_JOURNALS)
        .map(|_| Journal {
            path: [0; 96],
            path_len: 0,
            slots: 0,
            records: vec![[0; JOURNAL_RECORD]; 256],
            lens: Vec::with_capacity(256),
        })
        .collect();
    (journals[0].path, journals[0].path_len) = fixed(journal_path(first).as_bytes());
    journals[0].slots = slots;
    let mut journal_line = 0;
    for slot in 0..254 {
        let line = long_line(first + slot);
        journal_line = journal_line.max(line.len());
        let note = log_signer.sign(&format!("{line}\n")).unwrap();
        let b = note.as_bytes();
        assert!(b.len() <= JOURNAL_RECORD);
        journals[0].records[slot as usize][..b.len()].copy_from_slice(b);
        journals[0].lens.push(b.len());
    }
    *sys.journals.borrow_mut() = journals;
    {
        let mut objects = sys.objects.borrow_mut();
        for _ in 0..SPARE_OBJECTS {
            objects.push(Object {
                path: [0; 96],
                path_len: 0,
                data: Vec::with_capacity(SPARE_CAPACITY),
            });
        }
    }
    eprintln!(
        "heap test: disk: {} pairings ({in_image} more than the ADMIN and requesters in the \
         image's {} bytes, {changes} changes), {total} granted records in the window (lines \
         up to {longest} bytes), 254 journal lines of {journal_line} bytes (MAX_AUDIT_LINE {})",
        set.pairings().len(),
        image_bytes.len(),
        access::MAX_AUDIT_LINE
    );

    // Presigned requests for the run.
    let read = Action::Read {
        since: access::MAX_ROW - 1000,
        max: 1000,
    };
    let read_text = read.to_text().into_bytes();
    let sign = |s: &note::Signer, tenant: &str, action: &Action, time: u64, n: [u8; 16]| {
        SignedRequest::sign(s, &archive, tenant, action, time, n, &[]).unwrap()
    };
    // The window filled again at run time, once the clock has moved past every restored entry:
    // 4 keys x 16,384 grants.
    let refill: Vec<Vec<u8>> = (0..total)
        .map(|i| {
            let mut a = sign(
                &requesters[i % 4],
                "corporate",
                &read,
                T0 + 31,
                nonce(i % 4, 1_000_000 + i),
            );
            a.shrink_to_fit();
            a
        })
        .collect();
    let over = sign(
        &requesters[3],
        "corporate",
        &read,
        T0 + 31,
        nonce(3, 2_000_000),
    );
    let at_capacity = sign(&requesters[1], "corporate", &read, T0, nonce(1, 999_999));
    let replay = sign(
        &requesters[2],
        "corporate",
        &read,
        T0,
        nonce(2, per_key - 1),
    );
    let serve_req = |op: Op<'_>, id: u64, n: usize| {
        let action = Action::from_op(&op).unwrap().unwrap();
        let auth = sign(&admin, "", &action, T0 + 15, nonce(9, n));
        let mut out = vec![0u8; MAX_PAYLOAD];
        let len = Request {
            id,
            tenant: "",
            capability: &auth,
            op,
        }
        .encode(&mut out)
        .unwrap();
        out.truncate(len);
        out
    };
    let change = |key: &note::Signer, t: &Tenants, n: usize| {
        PairingChange {
            archive: archive.clone(),
            change: Change::Add {
                kind: PairingType::Input,
                tenants: t.clone(),
            },
            key: key.verifier(),
            time: T0 + 15,
            nonce: nonce(98, n),
        }
        .sign(&admin)
        .unwrap()
    };
    let replace = change(&others[others.len() - 1], &full, 0);
    let stranger = note::Signer::generate(&key_name("stranger", 0), &[200; 32]).unwrap();
    let one_more = change(&stranger, &full, 1);
    let pair_replace = serve_req(Op::PairChange { change: &replace }, 1, 1);
    let pair_over = serve_req(Op::PairChange { change: &one_more }, 2, 2);
    // Bundle 256: the folded journal, the longest lines.
    let bundle_path = tlog::tile::entries_path(256, 256)
        .unwrap()
        .as_str()
        .to_string();
    let audit_bundle = serve_req(
        Op::AuditObject {
            path: &bundle_path,
            offset: 0,
        },
        3,
        3,
    );
    let audit_tail = serve_req(
        Op::AuditObject {
            path: &bundle_path,
            offset: 1,
        },
        4,
        4,
    );
    let audit_cp = serve_req(
        Op::AuditObject {
            path: "checkpoint",
            offset: 0,
        },
        5,
        5,
    );
    let mut caller = Caller {
        sys: sys.clone(),
        buf: vec![0; MAX_PAYLOAD],
        resp: vec![0; MAX_PAYLOAD],
    };
    let clock = Rc::new(Cell::new(T0));
    let reads = clock.clone();
    let clock_of = |c: &Rc<Cell<u64>>| {
        let c = c.clone();
        audit_pd::Clock::new(move || Some(c.get()))
    };
    let mut clocks = [Some(clock_of(&reads)), Some(clock_of(&reads))];
    set_backend(Some(sys.clone()));
    sys.running.set(true);

    // Fence: leave exactly `heap` bytes free in one block after everything above.
    let stats = HEAP.stats();
    let filler_len = stats.size - stats.used - heap;
    let mut filler: Vec<u8> = Vec::new();
    filler.try_reserve_exact(filler_len).unwrap();
    let fenced = HEAP.stats();
    sys.base.set(fenced.used);
    eprintln!(
        "heap test: heap_audit = {heap} bytes; {} bytes free for audit",
        fenced.size - fenced.used
    );

    let enforce = || audit_pd::Access::Enforce {
        identity: identity.skey(),
        pairings: image_bytes.clone(),
    };
    // `enforce` allocates the image's slot contents, as audit.elf's init does from its slot.
    let mut pd = audit_pd::init(&log_skey, enforce(), clocks[0].take().unwrap()).unwrap();
    sys.sample();
    assert!(!pd.refusing());
    assert_eq!(pd.size(), first + 254);
    assert_eq!(
        pd.pairings().unwrap().pairings().len(),
        access::MAX_PAIRINGS
    );

    // At capacity: a fresh nonce is refused (and recorded: the journal is full then), a
    // replay too, and Check's refusal is recorded as well: the third record folds the journal
    // (256 lines -> an entry bundle, its tiles, a checkpoint, the next journal).
    let refused = |r: AuditReply| matches!(r, AuditReply::Refused { .. });
    assert!(refused(caller.access(
        &mut pd,
        Some(0),
        "corporate",
        &read_text,
        &at_capacity
    )));
    assert!(refused(caller.access(
        &mut pd,
        None,
        "corporate",
        &read_text,
        &at_capacity
    )));
    assert_eq!(pd.size(), first + 256);
    assert!(refused(caller.access(
        &mut pd,
        Some(0),
        "corporate",
        &read_text,
        &replay
    )));
    assert_eq!(pd.size(), first + 257);
    caller.record(&mut pd, 1);
    // 31 s on: every restored entry has expired; grants fill the window again (each
    // journaled: 256 folds), all but 8 places first: the ADMIN's archive-wide requests below
    // take 5 of them (at capacity they too are refused `NonceMemoryFull`).
    clock.set(T0 + 31);
    let (most, last) = refill.split_at(total - 8);
    for (i, auth) in most.iter().enumerate() {
        let r = caller.access(&mut pd, Some(0), "corporate", &read_text, auth);
        assert!(matches!(r, AuditReply::Granted { .. }), "refill {i}: {r:?}");
    }
    // A pairing change at the bound (replacing one of 64; the set is cloned to apply it),
    // and one over it (refused).
    caller.serve(&mut pd, &pair_replace, |b| {
        assert!(matches!(b, Body::Pong), "{b:?}")
    });
    caller.serve(&mut pd, &pair_over, |b| {
        assert!(matches!(b, Body::Error { .. }), "{b:?}")
    });
    assert_eq!(
        pd.pairings().unwrap().pairings().len(),
        access::MAX_PAIRINGS
    );
    // The largest AuditObject reads: a whole entry bundle of the longest lines, its tail, the
    // checkpoint.
    caller.serve(&mut pd, &audit_bundle, |b| match b {
        Body::Object { data, total, .. } => {
            assert!(data.len() as u64 == total.min(MAX_CHUNK as u64) && total > 32 << 10)
        }
        other => panic!("{other:?}"),
    });
    caller.serve(&mut pd, &audit_tail, |b| {
        assert!(matches!(b, Body::Object { .. }))
    });
    caller.serve(&mut pd, &audit_cp, |b| {
        assert!(matches!(b, Body::Object { .. }))
    });
    // The window's last places, then it is full.
    let granted = last
        .iter()
        .filter(|auth| {
            let r = caller.access(&mut pd, Some(0), "corporate", &read_text, auth);
            matches!(r, AuditReply::Granted { .. })
        })
        .count();
    assert_eq!(granted, 3);
    assert!(refused(caller.access(
        &mut pd,
        Some(0),
        "corporate",
        &read_text,
        &over
    )));
    let size = pd.size();

    // Reboot over the same disk: the rebuild again (now with the runtime records).
    drop(pd);
    let mut pd = audit_pd::init(&log_skey, enforce(), clocks[1].take().unwrap()).unwrap();
    sys.sample();
    assert!(!pd.refusing());
    assert_eq!(pd.size(), size);
    assert!(refused(caller.access(
        &mut pd,
        Some(0),
        "corporate",
        &read_text,
        &refill[0]
    )));
    // One place is free after the rebuild: the refused pair change's nonce was remembered
    // while running (decided before the change was applied) but has no grant record.
    let r = caller.access(&mut pd, Some(0), "corporate", &read_text, &over);
    assert!(matches!(r, AuditReply::Granted { .. }), "{r:?}");
    assert!(refused(caller.access(
        &mut pd,
        Some(0),
        "corporate",
        &read_text,
        &last[7]
    )));
    caller.record(&mut pd, 2);
    drop(pd);
    drop(filler);

    let peak = sys.peak.get();
    eprintln!(
        "heap test: peak audit heap use seen at its calls out: {peak} bytes of {heap} \
         ({:.1}% margin; access state bound ACCESS_HEAP {} bytes)",
        100.0 * (heap - peak) as f64 / heap as f64,
        audit_pd::ACCESS_HEAP
    );
    assert!(peak <= heap);
    set_backend(None);
    eprintln!("heap test: ok");
}

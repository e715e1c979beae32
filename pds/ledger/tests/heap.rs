//! The ledger's heap use has a fixed maximum, whatever a client sends: the worst-case request
//! sequences run through the ledger's handler inside a heap exactly as large as system.xml's
//! `heap_<tenant>`, on the same allocator the PD uses (`microkit::heap::Heap`, a first-fit
//! linked-list heap), so fragmentation counts too. Any allocation the ledger cannot get aborts
//! the test (as it would fault the PD, and with it the wire and every tenant).
//!
//! Everything the test itself needs (regions, the fake psdb's storage, request and response
//! buffers) is allocated before the ledger's share of the heap is fenced off; the fake psdb
//! and audit allocate nothing while the ledger runs.

// A test without the harness (it owns the global allocator): panicking is how it fails.
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use interface::msg::ledger::{Call, Reply as LedgerReply, Request as LedgerCall};
use interface::msg::psdb::{Reply as PsdbReply, Request as PsdbRequest};
use interface::msg::{audit, Message, MAX_MRS};
use interface::psdb_call::DATA;
use interface::{ledger, ledger_call};
use microkit::heap::{Heap, HeapArena};
use microkit::host::{set_backend, Backend, HostMemory};
use microkit::{Channel, Handler, IrqAckError, MessageInfo};
use protocol::{Body, Op, Request, Response, MAX_PAYLOAD};
use tlog::tile::MAX_BUNDLE_SIZE;

const ARENA_SIZE: usize = 400 << 20;
static ARENA: HeapArena<ARENA_SIZE> = HeapArena::new();
#[global_allocator]
static HEAP: Heap = Heap::from_arena(&ARENA);

const TENANT: &str = "corporate";
/// Objects the fake psdb keeps: one per path with its `.p/<W>` suffix stripped (the widest
/// partial, then the full tile, replaces the narrower ones: all the ledger ever reads back).
const FAMILIES: usize = 12;

struct Object {
    path: [u8; 64],
    path_len: usize,
    family_len: usize,
    data: Vec<u8>,
    /// Read back whole and checked (`Verify`) since it was put: its pieces say `verified`.
    verified: bool,
}

/// psdb and audit, as far as one ledger sees them; allocation-free after `new`.
struct Box_ {
    mrs: RefCell<[u64; MAX_MRS]>,
    wire: HostMemory,
    audit: HostMemory,
    psdb: HostMemory,
    objects: RefCell<Vec<Object>>,
    /// The object slot a `PutBegin` opened, the bytes it still expects, and the slot of the
    /// same family it replaces once whole (the ledger reads that one while it writes this one:
    /// a new bundle is the previous partial's bytes, then the new entries).
    open: Cell<Option<(usize, usize, Option<usize>)>>,
    /// Highest ledger heap use seen at a call out of the ledger (psdb or audit).
    peak: Cell<usize>,
    base: Cell<usize>,
}

fn family(path: &[u8]) -> usize {
    match path.windows(3).position(|w| w == b".p/") {
        Some(i) => i,
        None => path.len(),
    }
}

impl Box_ {
    /// Puts a reply's registers in place (as the kernel copies them to the caller); its info.
    fn reply(&self, m: Message) -> MessageInfo {
        self.mrs.borrow_mut()[..m.mrs().len()].copy_from_slice(m.mrs());
        m.info()
    }

    fn psdb_call(&self, info: MessageInfo) -> MessageInfo {
        let req = PsdbRequest::decode(info, &self.mrs.borrow()[..]).unwrap();
        let (plen, dlen) = (req.path_len(), req.data_len());
        let mut path = [0u8; 64];
        assert!(plen <= 64, "path too long for the fake psdb");
        self.psdb.read(0, &mut path[..plen]).unwrap();
        let path = match req {
            PsdbRequest::SetCheckpoint { .. } | PsdbRequest::Checkpoint => &b"checkpoint"[..],
            _ => &path[..plen],
        };
        let fam = family(path);
        let mut objects = self.objects.borrow_mut();
        let slot = objects
            .iter()
            .position(|o| o.family_len == fam && o.path[..o.family_len] == path[..fam]);
        let found = objects
            .iter()
            .position(|o| o.path_len > 0 && o.path[..o.path_len] == *path);
        let max_data = self.psdb.len() - DATA;
        // Another write drops an open put (as psdb does); reads in between do not (the ledger
        // reads the previous partial while it writes the next).
        if matches!(
            req,
            PsdbRequest::Put { .. }
                | PsdbRequest::PutBegin { .. }
                | PsdbRequest::SetCheckpoint { .. }
        ) {
            self.open.set(None);
        }
        let (i, start, len) = match req {
            PsdbRequest::Put { .. } | PsdbRequest::SetCheckpoint { .. } => (slot, 0, dlen),
            PsdbRequest::PutBegin { size, .. } => (None, 0, size as usize),
            PsdbRequest::PutChunk { .. } => {
                let (i, left, old) = self.open.get().expect("fake psdb: chunk without a put");
                assert!(dlen <= left);
                self.open.set(Some((i, left - dlen, old)));
                let o = &mut objects[i];
                let at = o.data.len();
                o.data.resize(at + dlen, 0);
                self.psdb.read(DATA, &mut o.data[at..]).unwrap();
                if left == dlen {
                    // Whole: it replaces the narrower one of its family.
                    self.open.set(None);
                    if let Some(old) = old.filter(|&old| old != i) {
                        objects[old].path_len = 0;
                        objects[old].family_len = 0;
                        objects[old].data.clear();
                    }
                }
                return self.reply(PsdbReply::Done.encode());
            }
            PsdbRequest::Get { .. } | PsdbRequest::Checkpoint => {
                let len = found.map(|i| &objects[i]).map(|o| o.data.len());
                if len.is_some_and(|n| n > max_data) {
                    return self.reply(PsdbReply::TooLarge.encode());
                }
                if let Some(i) = found {
                    self.psdb.write(DATA, &objects[i].data).unwrap();
                }
                return self.reply(PsdbReply::Found(len).encode());
            }
            PsdbRequest::ReadAt { offset, max, .. } => {
                let Some(i) = found else {
                    return self.reply(PsdbReply::Piece(None).encode());
                };
                let data = &objects[i].data;
                let at = (offset as usize).min(data.len());
                let n = (data.len() - at).min(max).min(max_data);
                self.psdb.write(DATA, &data[at..at + n]).unwrap();
                let piece = interface::msg::psdb::Piece {
                    len: n,
                    size: data.len() as u64,
                    verified: objects[i].verified,
                };
                return self.reply(PsdbReply::Piece(Some(piece)).encode());
            }
            PsdbRequest::Verify { .. } => {
                let len = found.map(|i| {
                    objects[i].verified = true;
                    objects[i].data.len()
                });
                return self.reply(PsdbReply::Found(len).encode());
            }
            other => panic!("fake psdb: {other:?}"),
        };
        let i = i
            .or_else(|| objects.iter().position(|o| o.path_len == 0))
            .expect("fake psdb: out of object slots");
        let o = &mut objects[i];
        o.path[..path.len()].copy_from_slice(path);
        (o.path_len, o.family_len) = (path.len(), fam);
        assert!(len <= o.data.capacity());
        o.data.clear();
        o.verified = false;
        if let PsdbRequest::PutBegin { .. } = req {
            self.open.set(Some((i, len, slot)));
        } else {
            o.data.resize(len, 0);
            self.psdb.read(DATA, &mut o.data[start..]).unwrap();
        }
        self.reply(PsdbReply::Done.encode())
    }

    fn sample(&self) {
        let used = HEAP.stats().used.saturating_sub(self.base.get());
        self.peak.set(self.peak.get().max(used));
    }
}

impl Backend for Box_ {
    fn pd_name(&self) -> &str {
        "ledger_corporate"
    }
    fn is_passive(&self) -> bool {
        true
    }
    fn notify(&self, _: Channel) {}
    fn pp_call(&self, channel: Channel, info: MessageInfo) -> MessageInfo {
        self.sample();
        if channel == ledger::PSDB {
            self.psdb_call(info)
        } else if channel == ledger::AUDIT {
            // Audit with access control off: Authorize is answered Open, a record recorded.
            if info.label() == audit::label::AUTHORIZE {
                self.reply(audit::Reply::Open.encode())
            } else {
                self.reply(audit::Reply::Recorded { index: 0 }.encode())
            }
        } else {
            panic!("ledger called channel {channel:?}")
        }
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
            "wire_vaddr" => Some(self.wire.clone()),
            "audit_vaddr" => Some(self.audit.clone()),
            "psdb_vaddr" => Some(self.psdb.clone()),
            _ => None,
        }
    }
}

/// Drives requests through the ledger's handler, as the wire does; allocation-free.
struct Client {
    sys: Rc<Box_>,
    req: Vec<u8>,
    bundle: Vec<u8>,
    resp: Vec<u8>,
    id: u64,
}

impl Client {
    fn call(&mut self, pd: &mut ledger_pd::LedgerPd, op: Op<'_>) -> Body<'_> {
        self.id += 1;
        self.call_as(pd, Call::Request, self.id, op)
    }

    /// A call `call` for request `id`, answered with a response.
    fn call_as(
        &mut self,
        pd: &mut ledger_pd::LedgerPd,
        call: Call,
        id: u64,
        op: Op<'_>,
    ) -> Body<'_> {
        match self.send(pd, call, id, op) {
            LedgerReply::Ok { len } => self.response(id, len),
            other => panic!("{call:?}: {other:?}"),
        }
    }

    /// Calls the ledger as the wire does: the request in the region, its typed message.
    fn send(
        &mut self,
        pd: &mut ledger_pd::LedgerPd,
        call: Call,
        id: u64,
        op: Op<'_>,
    ) -> LedgerReply {
        let n = Request {
            id,
            tenant: TENANT,
            capability: &[],
            op,
        }
        .encode(&mut self.req)
        .unwrap();
        self.sys.wire.write(0, &self.req[..n]).unwrap();
        let req = LedgerCall { call, len: n };
        let info = pd.protected(ledger::WIRE, req.encode().set_mrs()).unwrap();
        self.sys.sample();
        let m = Message::received(info);
        LedgerReply::decode(&req, m.info(), m.mrs()).unwrap()
    }

    /// Stages one entry of `len` bytes for group `id`: kept, `total` entries staged so far.
    fn stage(&mut self, pd: &mut ledger_pd::LedgerPd, id: u64, len: usize, total: u64) {
        self.bundle.clear();
        self.bundle.extend_from_slice(&(len as u16).to_be_bytes());
        self.bundle.resize(2 + len, (total % 251) as u8);
        let bundle = std::mem::take(&mut self.bundle);
        let reply = self.send(pd, Call::Stage, id, Op::Append { entries: &bundle });
        assert_eq!(
            reply,
            LedgerReply::Staged {
                count: total as u32
            }
        );
        self.bundle = bundle;
    }

    fn response(&mut self, id: u64, len: usize) -> Body<'_> {
        self.sys.wire.read(0, &mut self.resp[..len]).unwrap();
        let r = Response::decode(&self.resp[..len]).unwrap();
        assert_eq!(r.id, id);
        r.body
    }

    /// Appends one entry of `len` bytes (one frame).
    fn append(&mut self, pd: &mut ledger_pd::LedgerPd, len: usize, expect_first: u64) {
        self.bundle.clear();
        self.bundle.extend_from_slice(&(len as u16).to_be_bytes());
        self.bundle.resize(2 + len, (expect_first % 251) as u8);
        let bundle = std::mem::take(&mut self.bundle);
        match self.call(pd, Op::Append { entries: &bundle }) {
            Body::Appended { first, count, .. } => {
                assert_eq!((first, count), (expect_first, 1))
            }
            other => panic!("append {expect_first}: {other:?}"),
        }
        self.bundle = bundle;
    }

    fn get(&mut self, pd: &mut ledger_pd::LedgerPd, path: &str, offset: u64) -> u64 {
        match self.call(pd, Op::GetObject { path, offset }) {
            Body::Object { total, data, .. } => {
                assert!(!data.is_empty() || offset == total);
                total
            }
            other => panic!("get {path}: {other:?}"),
        }
    }

    fn read(&mut self, pd: &mut ledger_pd::LedgerPd, since: u64) {
        match self.call(pd, Op::Read { since, max: 10 }) {
            Body::Entries { first, entries } => {
                assert_eq!(first, since);
                assert!(!entries.is_empty());
            }
            other => panic!("read {since}: {other:?}"),
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
    let heap = sys.region(&format!("heap_{TENANT}")).unwrap().size as usize;
    drop(sys);
    drop(xml);

    let skey = note::Signer::generate(&interface::keys::origin(TENANT), &[7; 32])
        .unwrap()
        .skey();
    let objects = (0..FAMILIES)
        .map(|_| Object {
            path: [0; 64],
            path_len: 0,
            family_len: 0,
            data: Vec::with_capacity(MAX_BUNDLE_SIZE),
            verified: false,
        })
        .collect();
    let sys = Rc::new(Box_ {
        mrs: RefCell::new([0; MAX_MRS]),
        wire: HostMemory::new(interface::size::WIRE_LEDGER),
        audit: HostMemory::new(interface::size::LEDGER_AUDIT),
        psdb: HostMemory::new(interface::size::LEDGER_PSDB),
        objects: RefCell::new(objects),
        open: Cell::new(None),
        peak: Cell::new(0),
        base: Cell::new(0),
    });
    set_backend(Some(sys.clone()));
    let mut client = Client {
        sys: sys.clone(),
        req: vec![0; MAX_PAYLOAD],
        bundle: Vec::with_capacity(MAX_PAYLOAD),
        resp: vec![0; MAX_PAYLOAD],
        id: 0,
    };

    // Fence: leave exactly `heap` bytes free in one block after everything above; the
    // ledger gets that and the (small) holes setup left behind.
    let stats = HEAP.stats();
    let filler_len = stats.size - stats.used - heap;
    let mut filler: Vec<u8> = Vec::new();
    filler.try_reserve_exact(filler_len).unwrap();
    let fenced = HEAP.stats();
    sys.base.set(fenced.used);
    eprintln!(
        "heap test: heap_{TENANT} = {heap} bytes; {} bytes free for the ledger",
        fenced.size - fenced.used
    );

    let max = u16::MAX as usize;
    let mut pd = ledger_pd::init(&skey).unwrap();
    assert!(pd.last_error().is_none(), "{:?}", pd.last_error());
    // (a) one entry of 65,534 bytes, then 255 of 65,535, one per frame: bundle 0 fills up.
    client.append(&mut pd, max - 1, 0);
    for i in 1..256 {
        client.append(&mut pd, max, i);
    }
    // Bundle 1: 255 of the largest entries pending-and-committed (a partial bundle of
    // 255 × 65,537 bytes), while reads pull the full bundle 0 (16,777,472 bytes) through the
    // read buffer.
    for i in 256..511 {
        client.append(&mut pd, max, i);
    }
    client.read(&mut pd, 0);
    client.read(&mut pd, 300);
    assert_eq!(
        client.get(&mut pd, "tile/entries/000", 0),
        MAX_BUNDLE_SIZE as u64 - 1
    );
    client.get(&mut pd, "tile/entries/000", MAX_BUNDLE_SIZE as u64 - 100);
    client.get(&mut pd, "tile/entries/001.p/255", 1 << 20);
    client.get(&mut pd, "tile/0/001.p/255", 0);
    client.get(&mut pd, "tile/1/000.p/1", 0);
    client.get(&mut pd, "checkpoint", 0);
    assert!(matches!(
        client.call(&mut pd, Op::Checkpoint),
        Body::Checkpoint { .. }
    ));
    assert!(matches!(
        client.call(&mut pd, Op::Hello),
        Body::Hello { size: 511, .. }
    ));
    // Beyond the checkpoint: refused, not served.
    assert!(matches!(
        client.call(
            &mut pd,
            Op::GetObject {
                path: "tile/0/001",
                offset: 0
            }
        ),
        Body::Error { .. }
    ));
    // (c) reopen with the large partial bundle: a fresh PD over the same storage (the old
    // one gone, as after a restart), then append (the bundle completes) and read.
    drop(pd);
    let mut pd = ledger_pd::init(&skey).unwrap();
    assert!(pd.last_error().is_none(), "{:?}", pd.last_error());
    client.append(&mut pd, max, 511);
    client.append(&mut pd, max, 512);
    client.read(&mut pd, 256);
    client.read(&mut pd, 512);
    // (d) a group in several calls at the stage buffer's bound: 13 stages of the largest
    // entry and one of 65,521 bytes fill MAX_STAGED exactly (14 × 2 bytes of length); one more
    // byte is refused (and discards the stage); staged again, the commit appends all 14 and its
    // own largest entry (the bundle completes on the way) under one checkpoint.
    let staged_max = 13 * (max + 2) + 65_521 + 2;
    assert_eq!(staged_max, ledger_call::MAX_STAGED);
    for round in 0..2 {
        let group = 1_000_000 + round;
        for k in 0..13 {
            client.stage(&mut pd, group, max, k + 1);
        }
        client.stage(&mut pd, group, 65_521, 14);
        assert_eq!(pd.staged(), 14);
        if round == 0 {
            let one = [0u8, 1, b'x'];
            let reply = client.send(&mut pd, Call::Stage, group, Op::Append { entries: &one });
            let LedgerReply::Ok { len } = reply else {
                panic!("{reply:?}")
            };
            assert!(matches!(
                client.response(group, len),
                Body::Error {
                    code: protocol::ErrorCode::TooLarge
                }
            ));
            assert_eq!(pd.staged(), 0);
        }
    }
    client.bundle.clear();
    client.bundle.extend_from_slice(&(max as u16).to_be_bytes());
    client.bundle.resize(2 + max, 7);
    let bundle = std::mem::take(&mut client.bundle);
    match client.call_as(
        &mut pd,
        Call::Commit,
        1_000_001,
        Op::Append { entries: &bundle },
    ) {
        Body::Appended { first, count, size } => assert_eq!((first, count, size), (513, 15, 528)),
        other => panic!("commit: {other:?}"),
    }
    client.bundle = bundle;
    assert_eq!(pd.staged(), 0);
    client.read(&mut pd, 520);
    drop(pd);
    drop(filler);

    let peak = sys.peak.get();
    eprintln!(
        "heap test: peak ledger heap use seen at its calls out: {peak} bytes of {heap} \
         (fixed buffers {} bytes)",
        ledger_pd::FIXED_HEAP
    );
    assert!(peak <= heap);
    assert!(peak >= ledger_pd::FIXED_HEAP);
    set_backend(None);
    eprintln!("heap test: ok");
}

//! The wire's heap use has a fixed maximum, whatever a client sends: the worst-case inputs (a
//! group at its bound, sent in every call it may take; a request too large to group; the
//! largest answer; damaged and oversized frames) run through the wire inside a heap exactly as
//! large as system.xml's `heap_wire`, on the same allocator the PD uses
//! (`microkit::heap::Heap`, first fit), with the seL4 image's gather buffer allocated beside
//! it. Any allocation the wire cannot get aborts the test (as it would fault the PD).
//!
//! Everything the test itself needs (regions, inputs, the fake ledger's buffers) is allocated
//! before the wire's share of the heap is fenced off; the fake ledger and the output sink
//! allocate nothing while the wire runs.

// A test without the harness (it owns the global allocator): panicking is how it fails.
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use interface::TENANTS;
use microkit::heap::{Heap, HeapArena};
use microkit::host::{set_backend, Backend, HostMemory};
use microkit::{Channel, IrqAckError, MessageInfo};
use protocol::{
    count_entries, encode_frame, push_entry, Body, Op, Request, Response, MAX_PAYLOAD,
    RESPONSE_OVERHEAD,
};
use wire_pd::{FIXED_HEAP, GATHER, GROUP_ENTRIES, MAX_GROUP_CALLS};

/// The typed protocol's labels ([`interface::msg::ledger::label`]), as numbers to match on.
use interface::msg::ledger::label as ledger_labels;

const ARENA_SIZE: usize = 64 << 20;
static ARENA: HeapArena<ARENA_SIZE> = HeapArena::new();
#[global_allocator]
static HEAP: Heap = Heap::from_arena(&ARENA);

/// The ledgers, as far as the wire sees them: every append stored, a read answered with the
/// largest response; allocation-free after `new`.
struct Ledgers {
    regions: Vec<HostMemory>,
    mrs: RefCell<[u64; 4]>,
    req: RefCell<Vec<u8>>,
    resp: RefCell<Vec<u8>>,
    filler: Vec<u8>,
    size: Cell<u64>,
    staged: Cell<u64>,
    commits: Cell<u64>,
    peak: Cell<usize>,
    base: Cell<usize>,
}

impl Ledgers {
    fn sample(&self) {
        let used = HEAP.stats().used.saturating_sub(self.base.get());
        self.peak.set(self.peak.get().max(used));
    }
}

impl Backend for Ledgers {
    fn pd_name(&self) -> &str {
        "wire"
    }
    fn notify(&self, _: Channel) {}
    fn pp_call(&self, ch: Channel, info: MessageInfo) -> MessageInfo {
        // Audit, with access control off: every Check is answered Open.
        if ch.index() == interface::wire::AUDIT.index() {
            return MessageInfo::new(interface::msg::audit::label::OPEN, 0);
        }
        self.sample();
        let t = interface::wire::LEDGERS
            .iter()
            .position(|c| c.index() == ch.index())
            .unwrap();
        let len = self.mrs.borrow()[0] as usize;
        let mut req = self.req.borrow_mut();
        self.regions[t].read(0, &mut req[..len]).unwrap();
        let r = Request::decode(&req[..len]).unwrap();
        let body = match r.op {
            Op::Append { entries } => {
                let n = count_entries(entries).unwrap() as u64;
                if info.label() == ledger_labels::STAGE {
                    self.staged.set(self.staged.get() + n);
                    self.mrs.borrow_mut()[0] = self.staged.get();
                    return MessageInfo::new(ledger_labels::STAGED, 1);
                }
                if info.label() == ledger_labels::COMMIT {
                    self.commits.set(self.commits.get() + 1);
                }
                let count = self.staged.get() + n;
                self.staged.set(0);
                let first = self.size.get();
                self.size.set(first + count);
                Body::Appended {
                    first,
                    count: count as u32,
                    size: first + count,
                }
            }
            _ => Body::Entries {
                first: 0,
                entries: &self.filler,
            },
        };
        let mut resp = self.resp.borrow_mut();
        let n = Response { id: r.id, body }.encode(&mut resp).unwrap();
        self.regions[t].write(0, &resp[..n]).unwrap();
        self.mrs.borrow_mut()[0] = n as u64;
        MessageInfo::new(ledger_labels::OK, 1)
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
    fn memory_region(&self, setvar_vaddr: &str) -> Option<HostMemory> {
        if setvar_vaddr == interface::wire::AUDIT_REGION {
            return Some(HostMemory::new(interface::size::WIRE_AUDIT));
        }
        let i = interface::wire::LEDGER_REGIONS
            .iter()
            .position(|v| *v == setvar_vaddr)?;
        Some(self.regions[i].clone())
    }
}

fn frame(id: u64, tenant: &str, op: Op<'_>) -> Vec<u8> {
    let mut buf = vec![0u8; MAX_PAYLOAD];
    let n = Request {
        id,
        tenant,
        capability: &[],
        op,
    }
    .encode(&mut buf)
    .unwrap();
    let mut out = Vec::new();
    encode_frame(&buf[..n], |b| out.extend_from_slice(b));
    out
}

fn bundle(entries: &[&[u8]]) -> Vec<u8> {
    let mut buf = vec![0u8; MAX_PAYLOAD];
    let mut len = 0;
    for e in entries {
        assert!(push_entry(&mut buf, &mut len, e));
    }
    buf.truncate(len);
    buf
}

fn main() {
    std::panic::set_hook(Box::new(|info| {
        eprintln!("heap test failed: {info}");
        std::process::abort();
    }));
    let xml =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../system.xml")).unwrap();
    let sys = sysdesc::System::parse(&xml).unwrap();
    let heap = sys.region("heap_wire").unwrap().size as usize;
    drop(sys);
    drop(xml);

    // Inputs: (a) a group at its bound, 13 requests of 10 entries of 1,000 bytes per call, in
    // every call a group may take, twice over (two groups, the second cut by the bound);
    // (b) a request too large to group, alone; (c) a read answered with the largest response;
    // (d) a damaged frame and garbage past the largest frame.
    let e = vec![b'z'; 1000];
    let es: Vec<&[u8]> = vec![&e; 10];
    let b10 = bundle(&es);
    let per_group = GROUP_ENTRIES / b10.len() * MAX_GROUP_CALLS;
    let mut input = vec![0u8];
    for id in 1..=2 * per_group as u64 {
        input.extend(frame(id, TENANTS[0], Op::Append { entries: &b10 }));
    }
    let big = vec![b'B'; 65_535];
    let rest = vec![b'R'; GROUP_ENTRIES + 6 - (2 + big.len()) - 2];
    let big_bundle = bundle(&[&big, &rest]);
    input.extend(frame(
        9_000,
        TENANTS[1],
        Op::Append {
            entries: &big_bundle,
        },
    ));
    input.extend(frame(9_001, TENANTS[1], Op::Read { since: 0, max: 100 }));
    let mut bad = frame(9_002, TENANTS[2], Op::Append { entries: &b10 });
    bad[5] ^= 0x55;
    input.extend(bad);
    input.extend(vec![0x42u8; 200_000]);
    input.push(0);

    let ledgers = Rc::new(Ledgers {
        regions: TENANTS
            .iter()
            .map(|_| HostMemory::new(interface::size::WIRE_LEDGER))
            .collect(),
        mrs: RefCell::new([0; 4]),
        req: RefCell::new(vec![0; MAX_PAYLOAD]),
        resp: RefCell::new(vec![0; MAX_PAYLOAD]),
        // Three entries of 43,600 bytes: within 200 bytes of the largest response.
        filler: {
            let r = vec![b'r'; 43_600];
            let f = bundle(&[&r, &r, &r]);
            assert!(f.len() <= MAX_PAYLOAD - RESPONSE_OVERHEAD);
            f
        },
        size: Cell::new(0),
        staged: Cell::new(0),
        commits: Cell::new(0),
        peak: Cell::new(0),
        base: Cell::new(0),
    });
    set_backend(Some(ledgers.clone()));

    // Fence: leave exactly `heap` bytes free in one block after everything above.
    let stats = HEAP.stats();
    let filler_len = stats.size - stats.used - heap;
    let mut filler: Vec<u8> = Vec::new();
    filler.try_reserve_exact(filler_len).unwrap();
    let fenced = HEAP.stats();
    ledgers.base.set(fenced.used);
    eprintln!(
        "heap test: heap_wire = {heap} bytes; {} bytes free for the wire",
        fenced.size - fenced.used
    );

    // What the seL4 image allocates: the wire, then its gather buffer.
    let mut wire = wire_pd::init().unwrap();
    let gather = vec![0u8; GATHER];
    ledgers.sample();
    let (mut answered, mut bytes) = (0usize, 0usize);
    // Whole, then in gather-sized pieces (as the image hands the console's bytes over).
    wire.on_bytes(&input, &mut |b| {
        bytes += b.len();
        answered += b.iter().filter(|&&x| x == 0).count();
    });
    ledgers.sample();
    for piece in input.chunks(gather.len()) {
        wire.on_bytes(piece, &mut |b| bytes += b.len());
        ledgers.sample();
    }
    assert!(answered >= 2 * per_group + 3, "{answered} answers");
    assert!(bytes > MAX_PAYLOAD, "the largest answer went out");
    assert!(
        ledgers.commits.get() >= 2,
        "groups in several calls were sent"
    );
    let s = wire.stats();
    assert!(s.stages >= 2 * (MAX_GROUP_CALLS as u64 - 1));
    drop(gather);
    drop(wire);
    drop(filler);

    let peak = ledgers.peak.get();
    eprintln!(
        "heap test: peak wire heap use seen at its calls out: {peak} bytes of {heap} (fixed \
         buffers {FIXED_HEAP} + gather {GATHER} bytes)"
    );
    assert!(peak <= heap);
    assert!(peak >= FIXED_HEAP + GATHER);
    set_backend(None);
    eprintln!("heap test: ok");
}

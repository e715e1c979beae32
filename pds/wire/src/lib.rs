//! The **wire** protection domain's logic: a pure bytes-in / bytes-out state machine ([`Wire`])
//! between the client byte stream and the tenants' ledgers. The same code runs over
//! virtio-console on seL4 (`src/main.rs`) and over a socket in the simulator.
//!
//! For each frame ([`protocol::frame`]): decode the [`protocol::Request`], route it by its
//! tenant (`moduleId`) to that tenant's ledger ([`interface::wire::LEDGERS`]) with a protected
//! call, the request's bytes in the region shared with that ledger; frame the ledger's response
//! back. `Ping` is answered here. Damaged, truncated, oversized frames, garbage, undecodable
//! requests and unknown tenants get an error response (id 0 when there is no readable id) and
//! the stream carries on; nothing reaches a ledger but a decoded request for its own tenant, so
//! no other tenant notices. A ledger that answers nonsense gets the client
//! [`ErrorCode::Unavailable`].
//!
//! The wire never sees a signing key or the disk: it has channels to the ledgers only.
//!
//! # Group commit
//! Every append the ledger serves costs one signed checkpoint and new copies of the partial
//! tiles and entry bundle, whatever its size: a few KiB of disk writes for an entry of a few
//! hundred bytes. A client that pipelines its appends (sends several before reading the
//! answers, `protocol::client::Client::append_pipelined`) lets the wire share that cost: when
//! the input handed to one [`Wire::on_bytes`] call holds several complete consecutive
//! [`Op::Append`] frames for the same tenant, they go to its ledger as **one** append whose
//! entries are their entries, in order (the entry-bundle encoding concatenates). Each request
//! is then answered in order, with its own id, its own part of the index range and the
//! combined checkpoint's size: exactly what it would have been told alone, had the others been
//! sent just before it. An acknowledgement still means durable (the ledger answers after the
//! checkpoint that commits them all is durable), every checkpoint is still one the ledger
//! signed over what it stored, and the disk is written the same way, only less often.
//!
//! - Every request but `Ping` is first Checked with audit (docs/access.md, "Where each check
//!   happens"): a refusal is answered its code in its place (ending the group before it), no
//!   ledger called and no tenant looked up; archive-wide requests are answered by audit
//!   (Serve). With access control off audit answers `Open` and nothing else changes.
//! - A group holds only requests the ledger would accept as they are: decoded, Checked, known
//!   tenant, a valid non-empty entry bundle, all unsigned or all signed. Anything else (a bad
//!   frame, a request of another kind or for another tenant, a bad append) ends the group and
//!   is answered as before, in its place. So does the end of the input: nothing complete is held back for
//!   more input (no added latency), every group is sent before `on_bytes` returns, and the
//!   answers come in request order.
//! - A group is at most [`MAX_GROUP`] requests, sent in at most [`MAX_GROUP_CALLS`] protected
//!   calls of at most [`GROUP_ENTRIES`] entry bytes each (whole requests, so each call, with
//!   a request's header, fits [`protocol::MAX_PAYLOAD`], the region shared with the ledger):
//!   at most [`GROUP_BYTES`] (1 MiB) of entries. A group that fits one call is one append
//!   request, one any single client could send. A larger one goes as
//!   [`Stage`](LedgerCall::Stage) calls (the ledger keeps those entries in memory, stores nothing)
//!   and a closing [`Commit`](LedgerCall::Commit) (it appends them all and signs **one** checkpoint),
//!   all under the id of the group's first request; its answer is an append's answer for the
//!   whole group, split as for one call. The fixed cost of a checkpoint (the partial entry
//!   bundle and tiles rewritten, the manifest, the commit record: about 43 KB for entries of
//!   256 bytes) is then shared by up to 4,000 entries instead of 500. A request too large to
//!   share a call with any other is forwarded alone, unchanged.
//! - A stage the ledger does not keep (refused, or any other answer) stored nothing (see
//!   [`interface::ledger_call`]): the group is then treated as refused, below. Nothing is
//!   answered before the commit's checkpoint is durable.
//! - A ledger refuses an append whole (all or nothing). If it refuses the combined one (its
//!   quota cannot take them all, a storage fault, damage), nothing of it was stored, and each
//!   request is sent again on its own and gets the answer it would have got alone: the ones
//!   that fit are stored, the refused ones store nothing. A ledger that gives no valid answer
//!   to the combined append may have stored it, so sending the requests again could store their
//!   entries twice: each is answered [`ErrorCode::Unavailable`] instead, as a lone request
//!   would be.
//! - A group of one is sent as the single request it is.
//! - **Signed appends** keep their authorizations with their entries ([`AUTH_BYTES`]). A group
//!   of them goes as one [`Stage`](LedgerCall::Stage) per request under the group's id, each
//!   with its own authorization, which the ledger Authorizes (audit remembers the nonce and
//!   records the grant) before keeping its entries; a refused one is answered its code, stores
//!   nothing and keeps what was staged; then one [`Commit`](LedgerCall::Commit) with no entries
//!   and no authorization, one checkpoint. Each request is acknowledged only then, with its own
//!   range. A commit refused whole, or a stage without a valid answer, leaves every request
//!   Authorized so far unanswerable but by its code (`Unavailable` when unknown): their nonces
//!   are taken, so they are never sent again; requests not yet staged are sent alone.
//! - What the wire sees at once is what its front end hands over: the simulator's socket front
//!   end gathers what the socket already holds, up to a group's worth (`sim::server`'s
//!   `GATHER_MAX`), so 32 pipelined appends of 100 entries written at once form one group; the
//!   seL4 image drains up to [`GATHER`] (64 KiB) from a console that delivers 4 KiB at a
//!   time, so its groups are smaller (and fit one call). The output bound
//!   ([`session::MAX_UNSENT`], about 257 KiB) does not limit a group: a full table owes
//!   [`MAX_GROUP`] x [`APPEND_ANSWER_MAX`], about 26 KiB.
//!
//! # One client must not hold up the others
//! The wire is one byte stream, so a client that stalls holds every tenant up. [`session`]
//! states the policy every front end shares: a partial frame, unread output or an idle
//! connection is dropped after [`session::IDLE_LIMIT_MS`] without progress, input is taken
//! only while the output waiting (counting the answers owed for appends the wire holds) is at
//! most [`session::MAX_UNSENT`] bytes ([`Wire::on_bytes_within`]), and a connection that cannot
//! be served gets one framed [`ErrorCode::Busy`] answer ([`session::Refusal`]). The simulator
//! runs every connection through a [`session::Session`] with the host's clock. The seL4 image
//! has no clock and no output queue (see [`session`]): it relies on the lone delimiter every
//! client sends first to end a partial frame left by a previous client, and on QEMU dropping
//! console output a client does not read.
//!
//! # Memory
//! One receive buffer of [`protocol::MAX_ENCODED`] bytes (a frame), one response buffer of
//! [`protocol::MAX_PAYLOAD`] (also where a request is encoded on its way to a ledger), and for
//! group commit a buffer of [`GROUP_BYTES`] (the group's entries, kept until every request is
//! answered: a refused group is sent again request by request), a table of [`MAX_GROUP`]
//! requests (16 bytes each) and one of [`MAX_GROUP_CALLS`] calls (16 bytes each), all
//! allocated once by [`Wire::new`]: [`FIXED_HEAP`] bytes. A
//! [`session::Session`] (front ends that queue output: the simulator) adds
//! [`session::OUTBOX_CAPACITY`] bytes, allocated once.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod session;

use alloc::string::String;
use alloc::vec::Vec;

use interface::msg::ledger::{Call as LedgerCall, Reply as LedgerReply, Request as LedgerRequest};
use interface::msg::DecodeError;
use interface::{ledger_call, wire, TENANTS, TENANT_COUNT};
use microkit::region::{ReadWrite, Region, RegionError};
use protocol::frame::{max_encoded_len, CRC_LEN};
use protocol::{
    count_entries, encode_frame, peek_request_id, Body, Decoder, ErrorCode, FrameError, Op,
    Request, Response, MAX_ENCODED, MAX_PAYLOAD, MAX_TENANT,
};

interface::wire_regions!();

// The region shared with audit: Check calls and the archive-wide requests (docs/access.md).
interface::wire_audit_region!();

/// The console line the wire prints when it serves (tests wait for it).
pub const READY_LINE: &str = "WIRE|INFO: ready";

/// Most requests one combined append answers (the size of the table allocated once).
pub const MAX_GROUP: usize = 512;

/// Most protected calls one group is sent in: up to [`ledger_call::MAX_STAGE_CALLS`] stages
/// and the commit (see [`interface::ledger_call`]).
pub const MAX_GROUP_CALLS: usize = ledger_call::MAX_STAGE_CALLS + 1;

/// Room a combined append's request needs besides its entries: the id (a varint, at most 10
/// bytes), the tenant (length and name), the empty capability, the op's tag and the entries'
/// length (a varint of at most 3 bytes below 2 MiB).
pub const GROUP_HEADER: usize = 10 + 1 + MAX_TENANT + 1 + 1 + 3;

/// Most entry bytes one call of a group carries: what fits one request with [`GROUP_HEADER`].
/// A request with more entries than this is never grouped.
pub const GROUP_ENTRIES: usize = MAX_PAYLOAD - GROUP_HEADER;

/// Most entry bytes a group holds (the buffer allocated once): [`MAX_GROUP_CALLS`] calls'
/// worth, 1,047,936 bytes.
pub const GROUP_BYTES: usize = MAX_GROUP_CALLS * GROUP_ENTRIES;

/// Most authorization bytes a group holds (the buffer allocated once): the signed requests'
/// [`Request::capability`] fields, kept with their entries until each is answered. At about
/// 600 bytes an authorization, some 200 signed appends; a signed request whose authorization
/// does not fit ends the group and starts the next.
pub const AUTH_BYTES: usize = MAX_PAYLOAD;

/// Most entry bytes a group of signed requests holds: what the ledger can stage
/// ([`ledger_call::MAX_STAGED`]), each request being one stage (see "Group commit").
pub const SIGNED_GROUP_BYTES: usize = ledger_call::MAX_STAGED;

/// The longest payload of an answer to an append: `Appended` (id, tag, first, count, size:
/// varints of at most 10, 1, 10, 5, 10 bytes); an error answer is shorter.
const APPEND_ANSWER_PAYLOAD: usize = 10 + 1 + 10 + 5 + 10;

/// The longest framed answer to an append (COBS, delimiter): what the wire owes for each
/// request it holds in a group, counted against the output limit of [`Wire::on_bytes_within`].
pub const APPEND_ANSWER_MAX: usize = max_encoded_len(APPEND_ANSWER_PAYLOAD + CRC_LEN) + 1;

/// The longest framed answer to any request: a COBS body of [`MAX_ENCODED`] and its delimiter.
pub const ANSWER_MAX: usize = MAX_ENCODED + 1;

/// Most bytes the seL4 image drains from the console per step (`src/main.rs`), allocated once:
/// what the console already holds, up to about 240 appends of one 256-byte entry, or two of
/// 100, handed to the wire at once. QEMU's console delivers 4 KiB at a time, so a larger buffer
/// would rarely fill; the simulator's socket front end reads more (`crates/sim`).
pub const GATHER: usize = 64 * 1024;

/// Bytes of buffers [`Wire::new`] allocates (see "Memory"): about 1.39 MiB.
pub const FIXED_HEAP: usize = MAX_ENCODED
    + MAX_PAYLOAD
    + GROUP_BYTES
    + AUTH_BYTES
    + MAX_GROUP * size_of::<Member>()
    + MAX_GROUP_CALLS * size_of::<Part>();

/// Counters, for the console and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Requests answered through a ledger (alone or in a combined append), and pings.
    pub forwarded: u64,
    /// Error responses sent by the wire itself (bad frames, bad requests, unknown tenants,
    /// unavailable ledgers).
    pub rejected: u64,
    /// Protected calls made to the ledgers: one per request sent alone, one per call of a
    /// combined append (its stages and its commit).
    pub calls: u64,
    /// Of those, the stages ([`Stage`](LedgerCall::Stage)): `calls - stages` is the number of
    /// requests that could store (and checkpoint) anything.
    pub stages: u64,
    /// Combined appends a ledger stored, each answering several requests.
    pub combined: u64,
    /// Requests answered from a combined append.
    pub grouped: u64,
    /// Combined appends a ledger refused, whose requests were then sent one by one.
    pub fallbacks: u64,
}

/// The wire's state machine.
#[derive(Debug)]
pub struct Wire {
    decoder: Decoder<Vec<u8>>,
    core: Core,
}

/// Everything but the frame decoder: what handling one frame needs.
#[derive(Debug)]
struct Core {
    ledgers: [Region<ReadWrite>; TENANT_COUNT],
    /// Shared with audit: Check calls and the archive-wide requests (docs/access.md).
    audit: Region<ReadWrite>,
    /// A response from a ledger, or a request being encoded for one.
    resp: Vec<u8>,
    group: Group,
    stats: Stats,
}

/// Consecutive appends for one tenant, waiting to be sent as one.
#[derive(Debug)]
struct Group {
    tenant: usize,
    /// Their entries, concatenated: `entries[..len]` (capacity [`GROUP_BYTES`]).
    entries: Vec<u8>,
    len: usize,
    /// Whether its requests are signed (each then carries its own authorization, and is
    /// Authorized by the ledger on its own): a group is all signed or all unsigned.
    signed: bool,
    /// Their authorizations, concatenated: `auths[..auth_len]` (capacity [`AUTH_BYTES`]).
    auths: Vec<u8>,
    auth_len: usize,
    /// Each request, in order (capacity [`MAX_GROUP`], never grown).
    members: Vec<Member>,
    /// The calls the group is sent in, in order (capacity [`MAX_GROUP_CALLS`], never grown):
    /// whole requests, at most [`GROUP_ENTRIES`] entry bytes each.
    parts: Vec<Part>,
}

/// One call of a group: the requests and entry bytes since the previous part's end.
#[derive(Debug, Clone, Copy)]
struct Part {
    /// Where its entries end in [`Group::entries`].
    end: usize,
    /// The group's entries up to its end.
    total: u64,
}

#[derive(Debug, Clone, Copy)]
struct Member {
    id: u64,
    /// Where its entries end in [`Group::entries`] (they start where the previous one's end).
    end: u32,
    /// Where its authorization ends in [`Group::auths`] (likewise).
    auth_end: u32,
    count: u32,
    /// A signed group's request the ledger refused on its own (its Authorize, or its
    /// stage): the code it is answered.
    refused: Option<ErrorCode>,
}

/// Where the wire's answers go, counted.
struct Sink<'a> {
    out: &'a mut dyn FnMut(&[u8]),
    written: usize,
}

impl Sink<'_> {
    fn put(&mut self, bytes: &[u8]) {
        self.written += bytes.len();
        (self.out)(bytes);
    }

    /// Frames a response made by the wire itself (small: an error or an append's answer).
    fn answer(&mut self, r: &Response<'_>) {
        let mut buf = [0u8; APPEND_ANSWER_PAYLOAD];
        if let Ok(n) = r.encode(&mut buf) {
            encode_frame(&buf[..n], |b| self.put(b));
        }
    }
}

/// Gets the regions shared with the ledgers and builds the state machine.
pub fn init() -> Result<Wire, RegionError> {
    Ok(Wire::new(interface::regions(&REGIONS)?, AUDIT.get()?))
}

impl Wire {
    /// A wire over the regions shared with each tenant's ledger (in `TENANTS` order) and
    /// with audit.
    pub fn new(ledgers: [Region<ReadWrite>; TENANT_COUNT], audit: Region<ReadWrite>) -> Self {
        Wire {
            decoder: Decoder::new(alloc::vec![0; MAX_ENCODED]),
            core: Core {
                ledgers,
                audit,
                resp: alloc::vec![0; MAX_PAYLOAD],
                group: Group {
                    tenant: 0,
                    entries: alloc::vec![0; GROUP_BYTES],
                    len: 0,
                    signed: false,
                    auths: alloc::vec![0; AUTH_BYTES],
                    auth_len: 0,
                    members: Vec::with_capacity(MAX_GROUP),
                    parts: Vec::with_capacity(MAX_GROUP_CALLS),
                },
                stats: Stats::default(),
            },
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> Stats {
        self.core.stats
    }

    /// Drops a partial frame (the simulator calls it when a client disconnects or is dropped
    /// for stalling).
    pub fn reset(&mut self) {
        self.decoder.reset();
    }

    /// Whether part of a frame has been received (its delimiter not yet).
    pub fn in_frame(&self) -> bool {
        self.decoder.in_frame()
    }

    /// Feeds bytes received from the client; every response goes to `out` (framed, possibly in
    /// several pieces) before this returns. Consecutive appends for one tenant in `input` are
    /// sent to its ledger as one (see the crate documentation, "Group commit").
    pub fn on_bytes(&mut self, input: &[u8], out: &mut dyn FnMut(&[u8])) {
        self.on_bytes_within(input, usize::MAX, out);
    }

    /// [`Wire::on_bytes`] for a front end that bounds its output: takes `input` a frame at a
    /// time (each piece ends at a delimiter, or is the start of a frame), and only while what
    /// it has sent to `out` in this call plus what it owes for the appends it holds in a group
    /// ([`APPEND_ANSWER_MAX`] each) is at most `limit`. Returns how many leading bytes of
    /// `input` it took; the caller keeps the rest for later. Every frame taken is answered
    /// before this returns, each with at most [`ANSWER_MAX`] bytes, so at most
    /// `limit + ANSWER_MAX` bytes go to `out`.
    pub fn on_bytes_within(
        &mut self,
        input: &[u8],
        limit: usize,
        out: &mut dyn FnMut(&[u8]),
    ) -> usize {
        let Wire { decoder, core } = self;
        let mut sink = Sink { out, written: 0 };
        let mut used = 0;
        while used < input.len() && sink.written.saturating_add(core.group.owed()) <= limit {
            let rest = &input[used..];
            let end = rest
                .iter()
                .position(|&b| b == 0)
                .map_or(rest.len(), |z| z + 1);
            used += end;
            decoder.feed(&rest[..end], |frame| core.frame(frame, &mut sink));
        }
        core.flush(&mut sink);
        used
    }

    /// Handles one whole request `payload` (a [`protocol::Request`]'s encoding, not framed)
    /// from a front end other than the byte stream (the simulator's HTTP front end): Checked
    /// with audit and routed exactly as a frame of the stream would be, its answer framed to
    /// `out` (at most [`ANSWER_MAX`] bytes) before this returns. The stream's partial frame,
    /// if any, is left as it was, and no group is held across the call.
    pub fn on_request(&mut self, payload: &[u8], out: &mut dyn FnMut(&[u8])) {
        let core = &mut self.core;
        let mut sink = Sink { out, written: 0 };
        core.flush(&mut sink);
        core.frame(Ok(payload), &mut sink);
        core.flush(&mut sink);
    }
}

impl Group {
    fn members(&self) -> usize {
        self.members.len()
    }

    /// The most the wire will send when this group is answered.
    fn owed(&self) -> usize {
        self.members() * APPEND_ANSWER_MAX
    }

    /// Entry bytes of the last part (0 when there is none).
    fn last_part_len(&self) -> usize {
        match self.parts.len() {
            0 => 0,
            n => self.len - self.part_start(n - 1),
        }
    }

    /// Where part `k`'s entries start.
    fn part_start(&self, k: usize) -> usize {
        k.checked_sub(1)
            .and_then(|p| self.parts.get(p))
            .map_or(0, |p| p.end)
    }

    /// Whether a request of `len` entry bytes fits the last part.
    fn fits_last(&self, len: usize) -> bool {
        !self.parts.is_empty() && len <= GROUP_ENTRIES - self.last_part_len()
    }

    /// Whether a request of `len` entry bytes and `auth` authorization bytes (0: unsigned)
    /// for tenant `t` can join: the group's table has room, it is of the group's tenant and
    /// kind, and its entries fit the last call or a new one (unsigned), or its own stage and
    /// what the ledger stages (signed).
    fn admits(&self, t: usize, len: usize, auth: usize) -> bool {
        let signed = auth > 0;
        let joins = self.members.is_empty() || (self.tenant == t && self.signed == signed);
        if !(self.members() < MAX_GROUP && joins) {
            return false;
        }
        if signed {
            // Sent as a stage of its own: its request, under the group's id (up to 10 bytes)
            // and with its authorization (a length of up to 2 bytes), fits one call.
            len.saturating_add(auth).saturating_add(GROUP_HEADER + 2) <= MAX_PAYLOAD
                && len <= SIGNED_GROUP_BYTES - self.len.min(SIGNED_GROUP_BYTES)
                && auth <= AUTH_BYTES - self.auth_len
        } else {
            len <= GROUP_ENTRIES && (self.fits_last(len) || self.parts.len() < MAX_GROUP_CALLS)
        }
    }

    /// Adds a request the group [`Group::admits`] (false, nothing added, if it does not).
    fn push(&mut self, t: usize, id: u64, bundle: &[u8], count: u32, auth: &[u8]) -> bool {
        if !self.admits(t, bundle.len(), auth.len()) {
            return false;
        }
        let end = self.len + bundle.len();
        let auth_end = self.auth_len + auth.len();
        let (Some(dst), Some(adst), Ok(end32), Ok(auth_end32)) = (
            self.entries.get_mut(self.len..end),
            self.auths.get_mut(self.auth_len..auth_end),
            u32::try_from(end),
            u32::try_from(auth_end),
        ) else {
            return false;
        };
        dst.copy_from_slice(bundle);
        adst.copy_from_slice(auth);
        self.signed = !auth.is_empty();
        self.auth_len = auth_end;
        if self.signed {
            // A signed group is sent a request a call: no parts.
            self.tenant = t;
            self.len = end;
            self.members.push(Member {
                id,
                end: end32,
                auth_end: auth_end32,
                count,
                refused: None,
            });
            return true;
        }
        let before = self.parts.last().map_or(0, |p| p.total);
        if self.fits_last(bundle.len()) {
            if let Some(p) = self.parts.last_mut() {
                p.end = end;
                p.total += u64::from(count);
            }
        } else {
            self.parts.push(Part {
                end,
                total: before + u64::from(count),
            });
        }
        self.tenant = t;
        self.len = end;
        self.members.push(Member {
            id,
            end: end32,
            auth_end: auth_end32,
            count,
            refused: None,
        });
        true
    }

    /// Part `k`'s entries.
    fn part_entries(&self, k: usize) -> &[u8] {
        let end = self.parts.get(k).map_or(0, |p| p.end);
        self.entries
            .get(self.part_start(k)..end)
            .unwrap_or_default()
    }

    /// Request `i`'s entries.
    fn entries_of(&self, i: usize) -> &[u8] {
        let start = match i.checked_sub(1) {
            Some(p) => self.members.get(p).map_or(0, |m| m.end as usize),
            None => 0,
        };
        let end = self.members.get(i).map_or(start, |m| m.end as usize);
        self.entries.get(start..end).unwrap_or_default()
    }

    /// Request `i`'s authorization (empty: unsigned).
    fn auth_of(&self, i: usize) -> &[u8] {
        let start = match i.checked_sub(1) {
            Some(p) => self.members.get(p).map_or(0, |m| m.auth_end as usize),
            None => 0,
        };
        let end = self.members.get(i).map_or(start, |m| m.auth_end as usize);
        self.auths.get(start..end).unwrap_or_default()
    }

    fn clear(&mut self) {
        self.len = 0;
        self.auth_len = 0;
        self.signed = false;
        self.members.clear();
        self.parts.clear();
    }
}

/// A request that may join a group: a decoded append (Checked) for a known tenant with a
/// valid non-empty bundle. Its tenant's index, id, entries, count and authorization (empty:
/// unsigned).
type Groupable<'a> = (usize, u64, &'a [u8], u32, &'a [u8]);

fn groupable(payload: &[u8]) -> Option<Groupable<'_>> {
    let req = Request::decode(payload).ok()?;
    let Op::Append { entries } = req.op else {
        return None;
    };
    let t = interface::tenant_index(req.tenant)?;
    let count = u32::try_from(count_entries(entries)?).ok()?;
    (count > 0).then_some((t, req.id, entries, count, req.capability))
}

/// What audit said of a request before it is routed.
enum Checked {
    /// Route it (Check granted, or access control is off).
    Go,
    /// Audit answered it itself (archive-wide): the response's length in `resp`.
    Answered(usize),
    /// Refused (recorded by audit): answer this code.
    Refused(u64, ErrorCode),
}

/// What a ledger made of a combined append.
enum Combined {
    /// Stored: its entries are `first ..`, committed by the checkpoint of `size`.
    Stored { first: u64, size: u64 },
    /// Refused with an error answer, or one of its stages was not kept: nothing of it was
    /// stored.
    Refused,
    /// Not sent (it could not be encoded or written to the region): nothing reached the ledger.
    NotSent,
    /// No valid answer: whether it was stored is unknown.
    Unavailable,
}

impl Core {
    /// Handles one frame (or why it was dropped).
    fn frame(&mut self, frame: Result<&[u8], FrameError>, sink: &mut Sink<'_>) {
        let payload = match frame {
            Ok(p) => p,
            Err(e) => {
                self.flush(sink);
                let code = match e {
                    FrameError::Oversize => ErrorCode::Oversize,
                    _ => ErrorCode::BadFrame,
                };
                self.reject(0, code, sink);
                return;
            }
        };
        // Access control first (docs/access.md): audit Checks every request but Ping before
        // anything is routed, and before an unknown tenant is named; archive-wide requests
        // are audit's to answer.
        match self.check(payload) {
            Checked::Go => {}
            Checked::Answered(n) => {
                self.flush(sink);
                self.stats.forwarded += 1;
                encode_frame(&self.resp[..n], |b| sink.put(b));
                return;
            }
            Checked::Refused(id, code) => {
                self.flush(sink);
                self.reject(id, code, sink);
                return;
            }
        }
        if let Some((t, id, bundle, count, auth)) = groupable(payload) {
            if !self.group.admits(t, bundle.len(), auth.len()) {
                self.flush(sink);
            }
            if self.group.push(t, id, bundle, count, auth) {
                return;
            }
            // Too large to share a request with any other: sent alone, as it came.
        }
        self.flush(sink);
        match route(payload, &self.ledgers, &mut self.resp, &mut self.stats) {
            Ok(n) => {
                self.stats.forwarded += 1;
                encode_frame(&self.resp[..n], |b| sink.put(b));
            }
            Err((id, code)) => self.reject(id, code, sink),
        }
    }

    /// Check (or, for an archive-wide request, Serve) with audit (docs/access.md, "Where
    /// each check happens"). Every decoded request but `Ping` is Checked: audit decides it
    /// (and records a refusal) before any ledger sees it or the tenant is looked up.
    fn check(&mut self, payload: &[u8]) -> Checked {
        use interface::msg::audit::{AccessCall, Reply as AuditReply, Request as AuditRequest};
        // What does not decode is answered as before (`BadMessage`, no tenant named); Ping
        // never reaches audit.
        let Ok(req) = Request::decode(payload) else {
            return Checked::Go;
        };
        let id = req.id;
        let failed = Checked::Refused(id, ErrorCode::AuditFailed);
        if req.op == Op::Ping {
            return Checked::Go;
        }
        if matches!(
            req.op,
            Op::PairChange { .. } | Op::AuditObject { .. } | Op::Identity { .. }
        ) {
            // Archive-wide: audit answers it with a protocol response, relayed as it is.
            if self.audit.write(0, payload).is_err() {
                return Checked::Refused(id, ErrorCode::TooLarge);
            }
            let call = AuditRequest::Serve { len: payload.len() };
            let m = call.encode().call(wire::AUDIT);
            return match AuditReply::decode(&call, m.info(), m.mrs()) {
                Ok(AuditReply::Served { len }) if len <= self.resp.len() => {
                    match self.audit.read(0, &mut self.resp[..len]) {
                        // Only an answer to this request goes back.
                        Ok(()) if Response::decode(&self.resp[..len]).is_ok_and(|r| r.id == id) => {
                            Checked::Answered(len)
                        }
                        _ => failed,
                    }
                }
                _ => failed,
            };
        }
        // An append whose entries are no bundle has no action: it is Checked with none, which
        // audit refuses (`MalformedAuth`) when access control is on and lets through when it
        // is off (the ledger then answers `BadEntries`, as before).
        let text = match access::Action::from_op(&req.op) {
            Ok(Some(a)) => a.to_text(),
            Ok(None) | Err(_) => String::new(),
        };
        let mut buf = [0u8; interface::msg::audit::ACCESS_CALL_MAX];
        let Some(n) = (AccessCall {
            tenant: req.tenant,
            action: text.as_bytes(),
            auth: req.capability,
        })
        .encode(&mut buf) else {
            return Checked::Refused(id, ErrorCode::MalformedAuth);
        };
        if self.audit.write(0, &buf[..n]).is_err() {
            return failed;
        }
        let call = AuditRequest::Check { len: n };
        let m = call.encode().call(wire::AUDIT);
        match AuditReply::decode(&call, m.info(), m.mrs()) {
            Ok(AuditReply::Open | AuditReply::Granted { .. }) => Checked::Go,
            // An audit PD that could not start (no audit key; identity and pairings slots half
            // provisioned or unreadable): the ledger decides as it does then (its Authorize
            // gets the same answer: an unsigned request goes on, a read still fails closed at
            // its Record, a signed one is refused).
            Ok(AuditReply::NotServing) => Checked::Go,
            Ok(AuditReply::Refused { code }) => Checked::Refused(
                id,
                ErrorCode::try_from(code).unwrap_or(ErrorCode::AuditFailed),
            ),
            _ => failed,
        }
    }

    fn reject(&mut self, id: u64, code: ErrorCode, sink: &mut Sink<'_>) {
        self.stats.rejected += 1;
        sink.answer(&Response::error(id, code));
    }

    /// Sends the group (as one append if it holds several requests) and answers each of its
    /// requests, in order.
    fn flush(&mut self, sink: &mut Sink<'_>) {
        let n = self.group.members();
        if n == 0 {
            return;
        }
        if self.group.signed && n > 1 {
            self.flush_signed(sink);
            self.group.clear();
            return;
        }
        let combined = if n > 1 {
            self.send_combined()
        } else {
            Combined::NotSent
        };
        match combined {
            Combined::Stored { first, size } => {
                self.stats.combined += 1;
                let mut next = first;
                for m in &self.group.members {
                    self.stats.forwarded += 1;
                    self.stats.grouped += 1;
                    sink.answer(&Response {
                        id: m.id,
                        body: Body::Appended {
                            first: next,
                            count: m.count,
                            size,
                        },
                    });
                    next += u64::from(m.count);
                }
            }
            Combined::Unavailable => {
                for i in 0..n {
                    let id = self.group.members.get(i).map_or(0, |m| m.id);
                    self.reject(id, ErrorCode::Unavailable, sink);
                }
            }
            Combined::Refused | Combined::NotSent => {
                if matches!(combined, Combined::Refused) {
                    self.stats.fallbacks += 1;
                }
                for i in 0..n {
                    self.send_alone(i, sink);
                }
            }
        }
        self.group.clear();
    }

    /// Sends the group as one append: one request if its entries fit one call, else its parts
    /// as stages and the last as the commit (see [`interface::ledger_call`]), all under the id
    /// of its first request.
    fn send_combined(&mut self) -> Combined {
        let g = &self.group;
        let (Some(head), Some(tenant), Some(last)) =
            (g.members.first(), TENANTS.get(g.tenant), g.parts.last())
        else {
            return Combined::NotSent;
        };
        let (id, t, want, parts) = (head.id, g.tenant, last.total, g.parts.len());
        let encode = |g: &Group, k: usize, buf: &mut [u8]| {
            Request {
                id,
                tenant,
                capability: &[],
                op: Op::Append {
                    entries: g.part_entries(k),
                },
            }
            .encode(buf)
            .ok()
        };
        for k in 0..parts - 1 {
            let Some(len) = encode(&self.group, k, &mut self.resp) else {
                // Nothing stored: what was staged is discarded by the next call.
                return Combined::NotSent;
            };
            let staged = self.group.parts.get(k).map(|p| p.total);
            self.stats.stages += 1;
            match raw_call(
                &self.ledgers,
                t,
                LedgerCall::Stage,
                &self.resp[..len],
                &mut self.stats,
            ) {
                // A stage stores nothing, whatever its answer: the requests can go again.
                Ok(Ok(LedgerReply::Staged { count })) if Some(u64::from(count)) == staged => {}
                _ => return Combined::Refused,
            }
        }
        let Some(len) = encode(&self.group, parts - 1, &mut self.resp) else {
            return Combined::NotSent;
        };
        let kind = if parts > 1 {
            LedgerCall::Commit
        } else {
            LedgerCall::Request
        };
        let n = match call_in_place(&self.ledgers, t, kind, &mut self.resp, len, &mut self.stats) {
            Ok(n) => n,
            Err(Sent::No) => return Combined::NotSent,
            Err(Sent::Yes) => return Combined::Unavailable,
        };
        match Response::decode(&self.resp[..n]) {
            Ok(r) if r.id != id => Combined::Unavailable,
            Ok(Response {
                body: Body::Appended { first, count, size },
                ..
            }) if u64::from(count) == want
                && first.checked_add(want).is_some_and(|end| end <= size) =>
            {
                Combined::Stored { first, size }
            }
            Ok(Response {
                body: Body::Error { .. },
                ..
            }) => Combined::Refused,
            _ => Combined::Unavailable,
        }
    }

    /// Sends a group of signed requests (see "Group commit"): each as a stage of its own,
    /// carrying its own authorization, which the ledger Authorizes before keeping its
    /// entries; then one commit of what was kept, with no entries of its own. Each request is
    /// answered in order: its part of the committed range, or its own refusal.
    fn flush_signed(&mut self, sink: &mut Sink<'_>) {
        let n = self.group.members();
        let (Some(head), Some(tenant)) =
            (self.group.members.first(), TENANTS.get(self.group.tenant))
        else {
            return;
        };
        let (id, t) = (head.id, self.group.tenant);
        // Entries the ledger holds staged, and how many requests it kept.
        let (mut staged, mut kept) = (0u64, 0usize);
        let mut stopped = None;
        for i in 0..n {
            let count = self.group.members.get(i).map_or(0, |m| m.count);
            let req = Request {
                id,
                tenant,
                capability: self.group.auth_of(i),
                op: Op::Append {
                    entries: self.group.entries_of(i),
                },
            };
            let Ok(len) = req.encode(&mut self.resp) else {
                stopped = Some(i);
                break;
            };
            self.stats.stages += 1;
            let reply = raw_call(
                &self.ledgers,
                t,
                LedgerCall::Stage,
                &self.resp[..len],
                &mut self.stats,
            );
            let refused = match reply {
                Ok(Ok(LedgerReply::Staged { count: total }))
                    if u64::from(total) == staged + u64::from(count) =>
                {
                    staged += u64::from(count);
                    kept += 1;
                    None
                }
                // Refused on its own (its Authorize, or its stage): the ledger keeps what it
                // had staged (interface::ledger_call).
                Ok(Ok(LedgerReply::Ok { len })) => {
                    match response(&self.ledgers, t, &mut self.resp, len)
                        .ok()
                        .and_then(|b| Response::decode(b).ok())
                    {
                        Some(Response {
                            id: rid,
                            body: Body::Error { code },
                        }) if rid == id => Some(code),
                        _ => {
                            // It reached the ledger: never sent again.
                            if let Some(m) = self.group.members.get_mut(i) {
                                m.refused = Some(ErrorCode::Unavailable);
                            }
                            stopped = Some(i + 1);
                            break;
                        }
                    }
                }
                Err(Sent::No) => {
                    stopped = Some(i);
                    break;
                }
                _ => {
                    // No valid answer: whether it was Authorized is unknown; nothing is
                    // sent again.
                    if let Some(m) = self.group.members.get_mut(i) {
                        m.refused = Some(ErrorCode::Unavailable);
                    }
                    stopped = Some(i + 1);
                    break;
                }
            };
            if let Some(m) = self.group.members.get_mut(i) {
                m.refused = refused;
            }
        }
        // What the kept requests come to: committed as one (`Ok((first, size))`), or the
        // code each is answered.
        let done = match stopped {
            // The group broke off: what was kept is never committed (the ledger discards it
            // at the next call), and those requests cannot be sent again (their nonces are
            // remembered): unavailable.
            Some(_) => Err(ErrorCode::Unavailable),
            None if kept == 0 => Err(ErrorCode::Unavailable),
            None => self.commit_signed(id, t, staged),
        };
        let end = stopped.unwrap_or(n);
        let mut next = done.map_or(0, |(first, _)| first);
        for i in 0..end {
            let Some(m) = self.group.members.get(i).copied() else {
                continue;
            };
            let body = match (m.refused, done) {
                (Some(code), _) => Err(code),
                (None, Ok((_, size))) => {
                    let b = Body::Appended {
                        first: next,
                        count: m.count,
                        size,
                    };
                    next += u64::from(m.count);
                    Ok(b)
                }
                (None, Err(code)) => Err(code),
            };
            match body {
                Ok(body) => {
                    self.stats.forwarded += 1;
                    self.stats.grouped += 1;
                    sink.answer(&Response { id: m.id, body });
                }
                Err(code) => self.reject(m.id, code, sink),
            }
        }
        if done.is_ok() {
            self.stats.combined += 1;
        }
        // Requests never sent (the group broke off before them): each on its own.
        for i in end..n {
            self.send_alone(i, sink);
        }
    }

    /// The commit of a signed group's `staged` entries: `(first, size)`, or the code every
    /// kept request is answered (nothing of them stored, or unknown).
    fn commit_signed(&mut self, id: u64, t: usize, staged: u64) -> Result<(u64, u64), ErrorCode> {
        let tenant = TENANTS.get(t).ok_or(ErrorCode::Unavailable)?;
        let len = Request {
            id,
            tenant,
            capability: &[],
            op: Op::Append { entries: &[] },
        }
        .encode(&mut self.resp)
        .map_err(|_| ErrorCode::Unavailable)?;
        let n = call_in_place(
            &self.ledgers,
            t,
            LedgerCall::Commit,
            &mut self.resp,
            len,
            &mut self.stats,
        )
        .map_err(|_| ErrorCode::Unavailable)?;
        match Response::decode(&self.resp[..n]) {
            Ok(Response {
                id: rid,
                body: Body::Appended { first, count, size },
            }) if rid == id
                && u64::from(count) == staged
                && first.checked_add(staged).is_some_and(|end| end <= size) =>
            {
                Ok((first, size))
            }
            // Refused whole: nothing stored. The requests are not sent again (their nonces
            // are remembered): each is answered the refusal.
            Ok(Response {
                id: rid,
                body: Body::Error { code },
            }) if rid == id => Err(code),
            _ => Err(ErrorCode::Unavailable),
        }
    }

    /// Sends request `i` of the group on its own and answers it with what its ledger said.
    fn send_alone(&mut self, i: usize, sink: &mut Sink<'_>) {
        let (Some(m), Some(tenant)) = (
            self.group.members.get(i).copied(),
            TENANTS.get(self.group.tenant),
        ) else {
            return;
        };
        let req = Request {
            id: m.id,
            tenant,
            capability: self.group.auth_of(i),
            op: Op::Append {
                entries: self.group.entries_of(i),
            },
        };
        let answer = req
            .encode(&mut self.resp)
            .map_err(|_| ErrorCode::TooLarge)
            .and_then(|len| {
                call_in_place(
                    &self.ledgers,
                    self.group.tenant,
                    LedgerCall::Request,
                    &mut self.resp,
                    len,
                    &mut self.stats,
                )
                .map_err(|_| ErrorCode::Unavailable)
            });
        // Only an append's answer, for this request: re-encoded here, so it is never longer
        // than what the wire owes for it.
        let resp = match answer {
            Ok(n) => match Response::decode(&self.resp[..n]) {
                Ok(r) if r.id == m.id => match r.body {
                    b @ (Body::Appended { .. } | Body::Error { .. }) => Ok(b),
                    _ => Err(ErrorCode::Unavailable),
                },
                _ => Err(ErrorCode::Unavailable),
            },
            Err(code) => Err(code),
        };
        match resp {
            Ok(body) => {
                self.stats.forwarded += 1;
                sink.answer(&Response { id: m.id, body });
            }
            Err(code) => self.reject(m.id, code, sink),
        }
    }
}

/// Whether a failed call reached the ledger.
enum Sent {
    /// Nothing reached it.
    No,
    /// It was called, and answered nothing valid.
    Yes,
}

/// Calls ledger `t` with `kind` and `req` in the region shared with it; the ledger's reply, or
/// why it is none of the protocol's replies to that call. `Err` only if nothing was sent.
fn raw_call(
    ledgers: &[Region<ReadWrite>; TENANT_COUNT],
    t: usize,
    kind: LedgerCall,
    req: &[u8],
    stats: &mut Stats,
) -> Result<Result<LedgerReply, DecodeError>, Sent> {
    let (Some(region), Some(channel)) = (ledgers.get(t), wire::LEDGERS.get(t)) else {
        return Err(Sent::No);
    };
    region.write(0, req).map_err(|_| Sent::No)?;
    stats.calls += 1;
    let request = LedgerRequest {
        call: kind,
        len: req.len(),
    };
    let m = request.encode().call(*channel);
    Ok(LedgerReply::decode(&request, m.info(), m.mrs()))
}

/// Calls ledger `t` with `kind` ([`LedgerCall::Request`] or [`LedgerCall::Commit`]) and `req`
/// in the region shared with it; the length of its response.
fn call(
    ledgers: &[Region<ReadWrite>; TENANT_COUNT],
    t: usize,
    kind: LedgerCall,
    req: &[u8],
    stats: &mut Stats,
) -> Result<usize, Sent> {
    match raw_call(ledgers, t, kind, req, stats)? {
        Ok(LedgerReply::Ok { len }) => Ok(len),
        // Malformed, not serving, a stage's answer or a message no ledger gives: unavailable.
        Ok(LedgerReply::BadCall | LedgerReply::Staged { .. } | LedgerReply::NotServing)
        | Err(_) => Err(Sent::Yes),
    }
}

/// Copies the `n`-byte response of ledger `t` into `buf`: `buf[..n]`.
fn response<'b>(
    ledgers: &[Region<ReadWrite>; TENANT_COUNT],
    t: usize,
    buf: &'b mut [u8],
    n: usize,
) -> Result<&'b [u8], Sent> {
    let region = ledgers.get(t).ok_or(Sent::Yes)?;
    let dst = buf.get_mut(..n).ok_or(Sent::Yes)?;
    region.read(0, dst).map_err(|_| Sent::Yes)?;
    Ok(dst)
}

/// Calls ledger `t` with `kind` and the request `buf[..len]`; its response is then
/// `buf[..n]`.
fn call_in_place(
    ledgers: &[Region<ReadWrite>; TENANT_COUNT],
    t: usize,
    kind: LedgerCall,
    buf: &mut [u8],
    len: usize,
    stats: &mut Stats,
) -> Result<usize, Sent> {
    let req = buf.get(..len).ok_or(Sent::No)?;
    let n = call(ledgers, t, kind, req, stats)?;
    response(ledgers, t, buf, n).map(<[u8]>::len)
}

/// Forwards one request to its tenant's ledger; the response is `resp[..n]`.
fn route(
    payload: &[u8],
    ledgers: &[Region<ReadWrite>; TENANT_COUNT],
    resp: &mut [u8],
    stats: &mut Stats,
) -> Result<usize, (u64, ErrorCode)> {
    let req =
        Request::decode(payload).map_err(|_| (peek_request_id(payload), ErrorCode::BadMessage))?;
    let id = req.id;
    if req.op == Op::Ping {
        // Pings are never signed (docs/access.md): one carrying an authorization is malformed,
        // in either mode, and is answered without reaching audit or a ledger.
        if !req.capability.is_empty() {
            return Err((id, ErrorCode::BadRequest));
        }
        let n = Response {
            id,
            body: Body::Pong,
        }
        .encode(resp)
        .map_err(|_| (id, ErrorCode::TooLarge))?;
        return Ok(n);
    }
    let t = interface::tenant_index(req.tenant).ok_or((id, ErrorCode::UnknownTenant))?;
    let unavailable = (id, ErrorCode::Unavailable);
    let n = call(ledgers, t, LedgerCall::Request, payload, stats).map_err(|e| match e {
        Sent::No => (id, ErrorCode::TooLarge),
        Sent::Yes => unavailable,
    })?;
    let dst = response(ledgers, t, resp, n).map_err(|_| unavailable)?;
    // The ledger answers this request or nothing: a response for another id is refused.
    match Response::decode(dst) {
        Ok(r) if r.id == id => Ok(n),
        _ => Err(unavailable),
    }
}

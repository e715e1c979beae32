//! What the protection domains of Totebox Envelope B agree on, stated once for the Rust code:
//! the tenants, priorities, every PD's channel ids, the `setvar_vaddr` symbols and sizes of its
//! shared regions, and the protocols of the protected calls between them. `system.xml` states
//! the same facts for the microkit tool; `tests/tests/system_xml.rs` checks the two agree.
//!
//! The call protocols (hubris-style interface types, shared by both ends):
//! - [`ledger_call`]: wire -> ledger_<t>, one client request per call, in the shared region.
//! - [`audit_call`]: ledger_<t> -> audit, one read record per call; the tenant is the channel.
//! - [`psdb_call`]: ledger_<t>/audit -> psdb, tlog objects in the shared region; the namespace
//!   is the channel. [`PsdbClient`] is the caller's side, a [`tlog::Storage`].
//!
//! Every value read from a shared region or a message register is untrusted input: the
//! receiving side checks it against the region size before using it.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod audit_log;
pub mod keys;
mod psdb_client;

pub use psdb_client::{
    JournalStat, PsdbClient, PsdbError, Usage, PSDB_CONFLICT_CODES, PSDB_DAMAGED_CODES,
    PSDB_FULL_CODES,
};

use microkit::Channel;

/// The tenants of this box, in channel order. A ledger PD is named `ledger_<tenant>`.
pub const TENANTS: [&str; 3] = ["corporate", "personnel", "property"];

/// psdb namespace of the audit log.
pub const AUDIT_NAMESPACE: &str = "audit";

/// Prefix of a ledger PD's name; the rest is its tenant.
pub const LEDGER_PREFIX: &str = "ledger_";

/// The tenant index of a ledger PD name (`ledger_corporate` -> 0), if it names a known tenant.
pub fn tenant_of_pd_name(name: &str) -> Option<usize> {
    let t = name.strip_prefix(LEDGER_PREFIX)?;
    TENANTS.iter().position(|x| *x == t)
}

/// The tenant index of a tenant name (`moduleId`).
pub fn tenant_index(name: &str) -> Option<usize> {
    TENANTS.iter().position(|x| *x == name)
}

/// PD names and priorities (system.xml `<protection_domain name priority>`).
pub mod pd {
    /// The client-facing PD.
    pub const WIRE: &str = "wire";
    /// The audit PD.
    pub const AUDIT: &str = "audit";
    /// The storage PD.
    pub const PSDB: &str = "psdb";
    /// Priorities: ppcalls only go uphill.
    pub const WIRE_PRIORITY: u8 = 100;
    /// The ledger PDs, in [`crate::TENANTS`] order. Distinct only so that their start-up (and
    /// its console lines) happens one at a time; each is between wire's and audit's.
    pub const LEDGER_PRIORITIES: [u8; 3] = [152, 151, 150];
    /// The audit PD.
    pub const AUDIT_PRIORITY: u8 = 200;
    /// The psdb PD.
    pub const PSDB_PRIORITY: u8 = 250;
}

/// Sizes of the shared regions (system.xml `<memory_region size>`).
pub mod size {
    /// wire <-> ledger_<t>: one request or response payload.
    pub const WIRE_LEDGER: usize = protocol::MAX_PAYLOAD;
    /// ledger_<t> <-> audit: one audit record.
    pub const LEDGER_AUDIT: usize = 0x1000;
    /// ledger_<t> <-> psdb: the path area, then one whole object.
    pub const LEDGER_PSDB: usize = 0x100_2000;
    /// audit <-> psdb.
    pub const AUDIT_PSDB: usize = 0x4_0000;
}

/// The wire PD's ends.
pub mod wire {
    use super::Channel;

    /// The virtio-console interrupt (IRQ 48: virtio-mmio bus 0).
    pub const CONSOLE_IRQ: Channel = Channel::new(0);
    /// Its ppcall channel to each tenant's ledger, in [`TENANTS`](super::TENANTS) order.
    pub const LEDGERS: [Channel; 3] = [Channel::new(1), Channel::new(2), Channel::new(3)];
    /// `setvar_vaddr` of the region shared with each ledger (size [`super::size::WIRE_LEDGER`]).
    pub const LEDGER_REGIONS: [&str; 3] = ["corporate_vaddr", "personnel_vaddr", "property_vaddr"];
}

/// A ledger PD's ends (the same in every ledger: one ELF).
pub mod ledger {
    use super::Channel;

    /// Called by the wire.
    pub const WIRE: Channel = Channel::new(0);
    /// Calls audit.
    pub const AUDIT: Channel = Channel::new(1);
    /// Calls psdb.
    pub const PSDB: Channel = Channel::new(2);
    /// `setvar_vaddr` of the region shared with the wire.
    pub const WIRE_REGION: &str = "wire_vaddr";
    /// `setvar_vaddr` of the region shared with audit.
    pub const AUDIT_REGION: &str = "audit_vaddr";
    /// `setvar_vaddr` of the region shared with psdb.
    pub const PSDB_REGION: &str = "psdb_vaddr";
}

/// The audit PD's ends.
pub mod audit {
    use super::Channel;

    /// Called by each tenant's ledger, in [`TENANTS`](super::TENANTS) order: the channel a
    /// record arrives on is the tenant it is about.
    pub const LEDGERS: [Channel; 3] = [Channel::new(0), Channel::new(1), Channel::new(2)];
    /// Calls psdb.
    pub const PSDB: Channel = Channel::new(3);
    /// `setvar_vaddr` of the region shared with each ledger.
    pub const LEDGER_REGIONS: [&str; 3] = ["corporate_vaddr", "personnel_vaddr", "property_vaddr"];
    /// `setvar_vaddr` of the region shared with psdb.
    pub const PSDB_REGION: &str = "psdb_vaddr";
}

/// The psdb PD's ends.
pub mod psdb {
    use super::Channel;

    /// Every caller: its channel, the namespace that channel stands for, the `setvar_vaddr` of
    /// the region shared with it and that region's size. The namespace of a request is the
    /// channel it arrived on; nothing in a message names one.
    pub const CLIENTS: [(Channel, &str, &str, usize); 4] = [
        (
            Channel::new(0),
            "corporate",
            "corporate_vaddr",
            super::size::LEDGER_PSDB,
        ),
        (
            Channel::new(1),
            "personnel",
            "personnel_vaddr",
            super::size::LEDGER_PSDB,
        ),
        (
            Channel::new(2),
            "property",
            "property_vaddr",
            super::size::LEDGER_PSDB,
        ),
        (
            Channel::new(3),
            super::AUDIT_NAMESPACE,
            "audit_vaddr",
            super::size::AUDIT_PSDB,
        ),
    ];
}

/// wire -> ledger_<t>: the request's postcard bytes (a [`protocol::Request`]) at offset 0 of the
/// shared region, their length in MR0. Reply: label [`ledger_call::OK`], the response's length
/// in MR0, the [`protocol::Response`] at offset 0; any other label means the ledger could not
/// answer and the wire answers [`protocol::ErrorCode::Unavailable`].
pub mod ledger_call {
    /// Label of a request.
    pub const REQUEST: u64 = 1;
    /// Reply label: a response is in the region.
    pub const OK: u64 = 0;
    /// Reply label: the call itself was malformed (bad label or length).
    pub const BAD_CALL: u64 = 1;
}

/// ledger_<t> -> audit: an [`AuditRecord`](audit_call) encoded by [`audit_call::encode`] at
/// offset 0 of the shared region, its length in MR0. Reply label [`audit_call::RECORDED`] (the
/// record is durable in the audit log; MR0 its index) or an error label. Also
/// [`audit_call::USAGE`]: the audit namespace's use of its quota.
pub mod audit_call {
    /// Label: record a read.
    pub const RECORD: u64 = 1;
    /// Reply: durable.
    pub const RECORDED: u64 = 0;
    /// Reply: malformed call.
    pub const BAD_CALL: u64 = 1;
    /// Reply: the audit log could not store it (to [`USAGE`]: psdb did not answer).
    pub const STORAGE: u64 = 2;
    /// Label: what the audit log's namespace uses of its quota. No arguments; audit asks psdb
    /// ([`crate::psdb_call::USAGE`], on its own channel: it can only learn its own namespace's)
    /// and replies [`RECORDED`] with the same message registers
    /// ([`crate::psdb_call::Usage`]), or [`STORAGE`]. Metadata only: nothing is recorded.
    /// Distinct from every other label of this protocol, request or reply.
    pub const USAGE: u64 = 3;
    /// Largest encoded record (and audit log entry): 512 bytes.
    pub const MAX_RECORD: usize = 512;

    /// What a ledger reports before content leaves it. The tenant is not in it: audit takes
    /// it from the channel.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Record {
        /// The client's request id.
        pub request: u64,
        /// What is read.
        pub kind: Kind,
        /// First entry index.
        pub first: u64,
        /// Number of entries.
        pub count: u64,
    }

    /// Kinds of read.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    #[repr(u8)]
    pub enum Kind {
        /// `read(since, max)`.
        Read = 1,
        /// An entry bundle fetched for export.
        Bundle = 2,
    }

    /// Encodes a record as 25 bytes: kind, then request, first, count as little-endian u64.
    pub fn encode(r: &Record) -> [u8; 25] {
        let mut out = [0u8; 25];
        out[0] = r.kind as u8;
        out[1..9].copy_from_slice(&r.request.to_le_bytes());
        out[9..17].copy_from_slice(&r.first.to_le_bytes());
        out[17..25].copy_from_slice(&r.count.to_le_bytes());
        out
    }

    /// Decodes what [`encode`] wrote; `None` for anything else.
    pub fn decode(b: &[u8]) -> Option<Record> {
        let b: &[u8; 25] = b.try_into().ok()?;
        let kind = match b[0] {
            1 => Kind::Read,
            2 => Kind::Bundle,
            _ => return None,
        };
        let word = |i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&b[i..i + 8]);
            u64::from_le_bytes(w)
        };
        Some(Record {
            request: word(1),
            kind,
            first: word(9),
            count: word(17),
        })
    }
}

/// ledger_<t>/audit -> psdb: region layout and labels. The object path is at offset 0 (MR0 its
/// length, at most [`psdb_call::MAX_PATH`]), the object's bytes at [`psdb_call::DATA`] (MR1 their
/// length). Reply label [`psdb_call::OK`] or an error: 1..=19 are `psdb::Error::code()`, then the
/// call errors below. A `GET`/`CHECKPOINT` reply has MR0 = 1 if found, MR1 = the length.
/// [`psdb_call::USAGE`] takes no arguments and answers in six registers.
///
/// Journals (psdb format v3: a preallocated member of one-sector records, see psdb's
/// `FORMAT.md`), the path at offset 0 and MR0 its length as for every call:
///
/// | label | MR1 | data at [`psdb_call::DATA`] | reply [`psdb_call::OK`] |
/// |-------|-----|------------------------------|--------------------------|
/// | [`psdb_call::JOURNAL_CREATE`] | slots | none | no registers; staged like `PUT`, durable with the next `SET_CHECKPOINT` |
/// | [`psdb_call::JOURNAL_APPEND`] | the record's length | the record | MR0 its slot; durable when OK arrives |
/// | [`psdb_call::JOURNAL_READ`] | the slot | none | MR0 1 if written, MR1 the length; the record at `DATA` |
/// | [`psdb_call::JOURNAL_STAT`] | ignored | none | MR0 1 if it exists, MR1 its slots, MR2 the slots used |
pub mod psdb_call {
    /// Store an immutable object.
    pub const PUT: u64 = 1;
    /// Read an object.
    pub const GET: u64 = 2;
    /// Make earlier puts durable, then record the data as the latest checkpoint (durable on OK).
    pub const SET_CHECKPOINT: u64 = 3;
    /// Read the latest checkpoint.
    pub const CHECKPOINT: u64 = 4;
    /// What the caller's own namespace uses of its quota, and the volume's free bytes. No
    /// arguments (no region, no message registers needed). Reply [`OK`] with
    /// [`Usage::REGISTERS`] message registers:
    ///
    /// | MR | value |
    /// |----|-------|
    /// | 0  | disk bytes used by the namespace (durable objects, checkpoints, manifest lines) |
    /// | 1  | the namespace's disk quota, bytes |
    /// | 2  | index bytes charged to the namespace |
    /// | 3  | the namespace's index quota, bytes |
    /// | 4  | bytes still free on the volume (the only figure not the caller's own) |
    /// | 5  | 1 if the namespace is marked damaged (it takes no more writes), else 0 |
    ///
    /// Nothing about any other namespace is revealed. The value is above every other request
    /// label and every reply label (`psdb::Error::code()` 1..=19, the call errors 20..=23), so a
    /// reply can never be mistaken for it nor it for an error.
    pub const USAGE: u64 = 24;
    /// Create a journal of MR1 slots at the path (a member of MR1 x 512 zero bytes, charged to
    /// the caller's quota now): staged like [`PUT`], written with the next [`SET_CHECKPOINT`]'s
    /// batch (or with nothing, if the request fails). The same journal again is a no-op.
    pub const JOURNAL_CREATE: u64 = 25;
    /// Append the data (MR1 bytes, at most [`JOURNAL_RECORD`]) as the next record of the
    /// journal at the path, which must be the namespace's latest: one sector write and one
    /// device flush. [`OK`] only once it is durable, with MR0 = its slot. Refused (nothing
    /// written) while the caller has puts staged, and for a full or closed journal
    /// (`psdb::Error::JournalFull`, 16).
    pub const JOURNAL_APPEND: u64 = 26;
    /// Read record MR1 of the journal at the path (checked against its sector's hash, slot and
    /// volume first): MR0 = 1 if that slot was written, MR1 = the record's length, the record
    /// at [`DATA`].
    pub const JOURNAL_READ: u64 = 27;
    /// How many records the journal at the path holds: MR0 = 1 if it exists (0: no such
    /// object), MR1 = its slots, MR2 = the slots used (records `0..used`).
    pub const JOURNAL_STAT: u64 = 28;
    /// Most bytes one journal record holds (`psdb::journal::MAX_RECORD`, checked by a test).
    pub const JOURNAL_RECORD: usize = 363;
    /// Reply: done.
    pub const OK: u64 = 0;
    /// Reply: unknown label.
    pub const BAD_LABEL: u64 = 20;
    /// Reply: a length past the region or the path limit, or a path that is not UTF-8.
    pub const BAD_LENGTH: u64 = 21;
    /// Reply: the object does not fit in the caller's region.
    pub const TOO_LARGE: u64 = 22;
    /// Reply: psdb has no store (its disk failed to mount).
    pub const NO_STORE: u64 = 23;
    /// Longest path (psdb's own limit is a tar name, 99 bytes).
    pub const MAX_PATH: usize = 256;
    /// Offset of the object's bytes in the region.
    pub const DATA: usize = 0x1000;

    /// A [`USAGE`] reply, in its message registers (layout at [`USAGE`]).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub struct Usage {
        /// MR0: disk bytes the namespace uses.
        pub disk_used: u64,
        /// MR1: its disk quota.
        pub disk_quota: u64,
        /// MR2: index bytes charged to it.
        pub index_used: u64,
        /// MR3: its index quota.
        pub index_quota: u64,
        /// MR4: bytes free on the volume.
        pub volume_free: u64,
        /// MR5: whether the namespace is marked damaged.
        pub damaged: bool,
    }

    impl Usage {
        /// Message registers of a [`USAGE`] reply.
        pub const REGISTERS: usize = 6;

        /// Sets MR0..MR5 (the reply's message count is [`Usage::REGISTERS`]).
        pub fn set_mrs(&self) {
            let words = [
                self.disk_used,
                self.disk_quota,
                self.index_used,
                self.index_quota,
                self.volume_free,
                u64::from(self.damaged),
            ];
            for (i, w) in words.into_iter().enumerate() {
                microkit::set_mr(i, w);
            }
        }

        /// Reads a reply of `count` message registers: `None` unless it carries all of them
        /// (on seL4 a register the callee did not set still holds the caller's own value) and
        /// MR5 is 0 or 1.
        pub fn from_mrs(count: usize) -> Option<Usage> {
            if count < Self::REGISTERS {
                return None;
            }
            let damaged = match microkit::get_mr(5) {
                0 => false,
                1 => true,
                _ => return None,
            };
            Some(Usage {
                disk_used: microkit::get_mr(0),
                disk_quota: microkit::get_mr(1),
                index_used: microkit::get_mr(2),
                index_quota: microkit::get_mr(3),
                volume_free: microkit::get_mr(4),
                damaged,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    /// A new label collides with no request or reply label of its protocol.
    #[test]
    fn usage_labels_collide_with_nothing() {
        use super::{audit_call as a, psdb_call as p};
        // psdb: requests 1..=4, replies 0, psdb::Error::code() 1..=19, call errors 20..=23.
        let older: alloc::vec::Vec<u64> = [p::PUT, p::GET, p::SET_CHECKPOINT, p::CHECKPOINT, p::OK]
            .into_iter()
            .chain(1..=19)
            .chain([p::BAD_LABEL, p::BAD_LENGTH, p::TOO_LARGE, p::NO_STORE])
            .collect();
        assert!(!older.contains(&p::USAGE));
        // The journal labels: above all of those and USAGE, and distinct.
        let journal = [
            p::JOURNAL_CREATE,
            p::JOURNAL_APPEND,
            p::JOURNAL_READ,
            p::JOURNAL_STAT,
        ];
        for (k, l) in journal.iter().enumerate() {
            assert!(!older.contains(l) && *l != p::USAGE, "{l}");
            assert!(!journal[k + 1..].contains(l), "{l}");
        }
        let audit = [a::RECORD, a::RECORDED, a::BAD_CALL, a::STORAGE];
        assert!(!audit.contains(&a::USAGE));
    }
}

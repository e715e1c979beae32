//! The psdb PD's journal calls, driven through its handler as audit drives them: a journal
//! created with a request (and not without it), records durable on the reply and read back,
//! each namespace's journals its own, and every malformed call an error reply.
// A panic is how a test reports failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use interface::psdb_call::{DATA, JOURNAL_RECORD};
use microkit::host::{set_backend, Backend};
use microkit::{Channel, MessageInfo};
use psdb::RamDevice;
use psdb_labels::{
    BAD_LENGTH, CHECKPOINT, JOURNAL_APPEND, JOURNAL_CREATE, JOURNAL_READ, JOURNAL_STAT, OK, PUT,
    SET_CHECKPOINT,
};

/// The typed protocol's labels ([`interface::msg::psdb::label`]), as numbers to match on.
use interface::msg::psdb::label as psdb_labels;

const J: &str = "journal/0000000000000000";

/// The reply label psdb gives for a store error.
fn code(e: psdb::Error) -> u64 {
    interface::msg::psdb::Reply::Store(e.code()).label()
}

impl Rig {
    fn stat(&mut self, ch: Channel, path: &str) -> Option<(u64, u64)> {
        let r = self.call_arg(ch, JOURNAL_STAT, path, 0);
        assert_eq!((r.label(), r.count()), (OK, 3));
        match self.kernel.get_mr(0) {
            0 => None,
            1 => Some((self.kernel.get_mr(1), self.kernel.get_mr(2))),
            v => panic!("found = {v}"),
        }
    }

    fn append(&mut self, ch: Channel, path: &str, record: &[u8]) -> Result<u64, u64> {
        let r = self.call(ch, JOURNAL_APPEND, path, record);
        match r.label() {
            OK => {
                assert_eq!(r.count(), 1);
                Ok(self.kernel.get_mr(0))
            }
            e => Err(e),
        }
    }

    fn read(&mut self, ch: Channel, path: &str, slot: u64) -> Option<Vec<u8>> {
        let r = self.call_arg(ch, JOURNAL_READ, path, slot);
        assert_eq!((r.label(), r.count()), (OK, 2));
        if self.kernel.get_mr(0) == 0 {
            return None;
        }
        let mut out = vec![0u8; self.kernel.get_mr(1) as usize];
        self.region(ch).read(DATA, &mut out).unwrap();
        Some(out)
    }
}

/// The first request of an audit log: its checkpoint and its first journal, one batch.
fn created(rig: &mut Rig) {
    assert_eq!(rig.call_arg(AUDIT, JOURNAL_CREATE, J, 256).label(), OK);
    assert_eq!(rig.call(AUDIT, SET_CHECKPOINT, "", b"cp 0").label(), OK);
}

#[test]
fn a_journal_is_created_with_its_request_and_records_are_durable_on_the_reply() {
    let mut rig = boot(RamDevice::new(16 << 11));
    let before = rig.usage(AUDIT);
    // Created and then abandoned (the caller re-reads its checkpoint: a new request): nothing.
    assert_eq!(rig.call_arg(AUDIT, JOURNAL_CREATE, J, 256).label(), OK);
    assert_eq!(rig.call(AUDIT, CHECKPOINT, "", b"").label(), OK);
    assert_eq!(rig.stat(AUDIT, J), None);
    assert_eq!(rig.usage(AUDIT), before);
    // Staged with a request: an append waits for its checkpoint.
    assert_eq!(rig.call_arg(AUDIT, JOURNAL_CREATE, J, 256).label(), OK);
    assert_eq!(
        rig.append(AUDIT, J, b"early"),
        Err(code(psdb::Error::Staged))
    );
    assert_eq!(rig.call(AUDIT, SET_CHECKPOINT, "", b"cp 0").label(), OK);
    assert_eq!(rig.stat(AUDIT, J), Some((256, 0)));
    // Charged whole, once, at creation.
    let after = rig.usage(AUDIT);
    assert!(after.disk_used >= before.disk_used + 257 * 512, "{after:?}");
    for i in 0..3u64 {
        assert_eq!(rig.append(AUDIT, J, format!("r{i}").as_bytes()), Ok(i));
    }
    assert_eq!(rig.usage(AUDIT), after);
    assert_eq!(rig.read(AUDIT, J, 1).as_deref(), Some(&b"r1"[..]));
    assert_eq!(rig.read(AUDIT, J, 3), None);
    assert_eq!(rig.stat(AUDIT, J), Some((256, 3)));
    // Each reply came after the record was on the device: a fresh mount of the bytes finds
    // them (the RAM device has no cache to lose).
    let image = rig.pd.store().device().image().to_vec();
    set_backend(None);
    let mut rig = boot(RamDevice::from_image(image));
    assert_eq!(rig.stat(AUDIT, J), Some((256, 3)));
    assert_eq!(rig.append(AUDIT, J, b"r3"), Ok(3));
    assert_eq!(rig.read(AUDIT, J, 0).as_deref(), Some(&b"r0"[..]));
    // A namespace's journals are its own: corporate's channel names no journal of audit's.
    assert_eq!(rig.stat(CORPORATE, J), None);
    assert_eq!(
        rig.append(CORPORATE, J, b"forged"),
        Err(code(psdb::Error::WrongKind))
    );
    assert_eq!(rig.stat(AUDIT, J), Some((256, 4)));
    set_backend(None);
}

#[test]
fn malformed_journal_calls_get_error_replies() {
    let mut rig = boot(RamDevice::new(16 << 11));
    created(&mut rig);
    assert_eq!(rig.call(AUDIT, PUT, "tile/0/000", b"t").label(), OK);
    assert_eq!(rig.call(AUDIT, SET_CHECKPOINT, "", b"cp 1").label(), OK);
    let label = |r: MessageInfo| r.label();
    // Too long a record, a slot count or slot past u32, a path past the limit.
    let long = [b'x'; JOURNAL_RECORD + 1];
    assert_eq!(label(rig.call(AUDIT, JOURNAL_APPEND, J, &long)), BAD_LENGTH);
    assert_eq!(
        label(rig.call_arg(AUDIT, JOURNAL_CREATE, "journal/x", 1 << 32)),
        BAD_LENGTH
    );
    assert_eq!(
        label(rig.call_arg(AUDIT, JOURNAL_READ, J, 1 << 32)),
        BAD_LENGTH
    );
    let path = "p".repeat(300);
    assert_eq!(
        label(rig.call_arg(AUDIT, JOURNAL_STAT, &path, 0)),
        BAD_LENGTH
    );
    // A message without MR1.
    assert_eq!(
        rig.pd
            .handle(AUDIT, MessageInfo::new(JOURNAL_STAT, 1))
            .label(),
        BAD_LENGTH
    );
    // Not a journal, none at all, a bad name, an object read as a journal.
    assert_eq!(
        rig.append(AUDIT, "tile/0/000", b"r"),
        Err(code(psdb::Error::WrongKind))
    );
    assert_eq!(
        label(rig.call_arg(AUDIT, JOURNAL_READ, "tile/0/000", 0)),
        code(psdb::Error::WrongKind)
    );
    assert_eq!(
        rig.append(AUDIT, "../corporate/x", b"r"),
        Err(code(psdb::Error::WrongKind))
    );
    assert_eq!(
        label(rig.call_arg(AUDIT, JOURNAL_CREATE, "../x", 1)),
        code(psdb::Error::InvalidName(psdb::NameError::DotComponent))
    );
    assert_eq!(
        label(rig.call_arg(AUDIT, JOURNAL_CREATE, "journal/z", 0)),
        code(psdb::Error::TooLarge)
    );
    // A journal larger than a batch: refused, nothing staged.
    assert_eq!(
        label(rig.call_arg(
            AUDIT,
            JOURNAL_CREATE,
            "journal/big",
            u64::from(u32::MAX / 512)
        )),
        code(psdb::Error::TooLarge)
    );
    // A closed journal takes no more records.
    assert_eq!(
        rig.call_arg(AUDIT, JOURNAL_CREATE, "journal/next", 2)
            .label(),
        OK
    );
    assert_eq!(rig.call(AUDIT, SET_CHECKPOINT, "", b"cp 2").label(), OK);
    assert_eq!(
        rig.append(AUDIT, J, b"r"),
        Err(code(psdb::Error::JournalFull))
    );
    assert_eq!(rig.append(AUDIT, "journal/next", b"a"), Ok(0));
    assert_eq!(rig.append(AUDIT, "journal/next", b"b"), Ok(1));
    assert_eq!(
        rig.append(AUDIT, "journal/next", b"c"),
        Err(code(psdb::Error::JournalFull))
    );
    // Nothing of all that stopped the PD or touched another namespace.
    assert_eq!(rig.stat(AUDIT, J), Some((256, 0)));
    assert_eq!(rig.request(CORPORATE, &[("tile/0/000", b"c")], b"c 1"), OK);
    set_backend(None);
}

//! The archive's two access modes through the simulator (docs/access.md, "Not provisioned"):
//! without an identity and pairing set audit serves with access control off, exactly as
//! phase 1 did; provisioned ([`sim::Keys::with_access`], what audit.elf's identity and
//! pairings slots hold) the audit PD is the authority and an unsigned read is refused.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use access::{Action, Pairing, PairingSet, PairingType, SignedRequest, Tenants};
use common::*;
use protocol::client::{Authorizer, Client, ClientError};
use protocol::{ErrorCode, Op};
use psdb::RamDevice;
use sim::{Disk, Keys, Sim};

fn boot_keys(keys: &Keys) -> (Client<SimStream>, Rc<RefCell<RamDevice>>, Vec<String>) {
    let disk = Rc::new(RefCell::new(RamDevice::new(32 << 11)));
    let sim = Sim::new(
        system(),
        Disk::Shared(disk.clone(), Rc::new(Cell::new(false))),
        keys,
        false,
    )
    .unwrap();
    let console = sim.console().to_vec();
    (Client::new(SimStream::new(sim)), disk, console)
}

/// Sends these bytes as every request's authorization.
#[derive(Debug)]
struct Fixed(Vec<u8>);

impl Authorizer for Fixed {
    fn authorize(&mut self, _: &str, _: &Op<'_>) -> Result<Vec<u8>, String> {
        Ok(self.0.clone())
    }
}

/// Signs every request as `signer` for `archive` (no capability), as `totebox client --skey`.
#[derive(Debug)]
struct Signs {
    signer: note::Signer,
    archive: note::Verifier,
    nonce: u8,
}

impl Authorizer for Signs {
    fn authorize(&mut self, tenant: &str, op: &Op<'_>) -> Result<Vec<u8>, String> {
        let action = Action::from_op(op)
            .map_err(|e| e.to_string())?
            .ok_or("a ping is not signed")?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|e| e.to_string())?
            .as_secs();
        self.nonce = self.nonce.wrapping_add(1);
        SignedRequest::sign(
            &self.signer,
            &self.archive,
            tenant,
            &action,
            now,
            [self.nonce; 16],
            &[],
        )
        .map_err(|e| e.to_string())
    }
}

#[test]
fn not_provisioned_serves_as_phase_one_and_says_so() {
    let (mut c, disk, console) = boot_keys(&keys());
    assert!(console.iter().any(|l| l == NOT_PROVISIONED), "{console:?}");
    assert!(problems(&console).is_empty(), "{console:?}");
    assert!(
        console.iter().any(|l| l.starts_with("audit|INFO: serving")),
        "{console:?}"
    );
    // Unsigned requests work; reads are audited (the phase-1 record line) and served.
    assert_eq!(c.append("corporate", &[b"a", b"b"]).unwrap(), [0, 1]);
    let got = c.read("corporate", 0, 10).unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].1, b"b");
    assert_eq!(export_and_verify(&mut c, "corporate"), 2);
    let records: Vec<String> = audit_log(&disk).into_iter().map(|(_, l)| l).collect();
    assert!(
        records
            .iter()
            .any(|l| l.contains("tenant=corporate op=read first=0 count=2 ")),
        "{records:?}"
    );
    // A non-empty authorization is refused cleanly, and the box keeps serving.
    c.set_authorizer(Box::new(Fixed(b"not an authorization".to_vec())));
    for r in [
        c.read("corporate", 0, 10).map(|_| ()),
        c.append("corporate", &[b"c"]).map(|_| ()),
        c.hello("corporate").map(|_| ()),
    ] {
        assert!(
            matches!(r, Err(ClientError::Remote(ErrorCode::BadRequest))),
            "{r:?}"
        );
    }
    let (mut c2, _, _) = boot_keys(&keys());
    c2.ping().unwrap();
}

fn provisioned() -> (Keys, note::Signer, note::Verifier) {
    let identity = note::Signer::generate("archive", &[7; 32]).unwrap();
    let admin = note::Signer::generate("admin", &[8; 32]).unwrap();
    let mut set = PairingSet::new();
    set.insert(
        Pairing::new(
            admin.verifier(),
            PairingType::Admin,
            Tenants::new(&["*"]).unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    let keys = keys().with_access(identity.skey(), set.to_bytes());
    (keys, admin, identity.verifier())
}

#[test]
fn provisioned_refuses_an_unsigned_read_and_serves_a_signed_one() {
    let (keys, admin, archive) = provisioned();
    let (mut c, disk, console) = boot_keys(&keys);
    assert!(!console.iter().any(|l| l == NOT_PROVISIONED), "{console:?}");
    assert!(
        console.iter().any(|l| l.starts_with("audit|INFO: serving")),
        "{console:?}"
    );
    // Unsigned: no content, no append (no PUBLIC_METADATA: no metadata either).
    for r in [
        c.read("corporate", 0, 10).map(|_| ()),
        c.append("corporate", &[b"x"]).map(|_| ()),
        c.hello("corporate").map(|_| ()),
    ] {
        assert!(
            matches!(r, Err(ClientError::Remote(ErrorCode::Unsigned))),
            "{r:?}"
        );
    }
    // ADMIN, signed: appends and reads.
    c.set_authorizer(Box::new(Signs {
        signer: admin,
        archive,
        nonce: 0,
    }));
    assert_eq!(c.append("corporate", &[b"a", b"b"]).unwrap(), [0, 1]);
    let got = c.read("corporate", 0, 10).unwrap();
    assert_eq!(got.len(), 2);
    // A key that is not paired is refused.
    let stranger = note::Signer::generate("stranger", &[9; 32]).unwrap();
    c.set_authorizer(Box::new(Signs {
        signer: stranger,
        archive: provisioned().2,
        nonce: 0,
    }));
    let r = c.read("corporate", 0, 10);
    assert!(
        matches!(r, Err(ClientError::Remote(ErrorCode::Unpaired))),
        "{r:?}"
    );
    // Every decision is on disk in the access record format, the refusals included.
    let records: Vec<String> = audit_log(&disk).into_iter().map(|(_, l)| l).collect();
    assert!(
        records.iter().any(|l| l.contains("outcome=granted")),
        "{records:?}"
    );
    assert!(
        records
            .iter()
            .filter(|l| !l.contains("outcome=granted"))
            .count()
            >= 4,
        "{records:?}"
    );
}

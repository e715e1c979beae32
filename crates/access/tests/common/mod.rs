//! Shared fixtures: an archive, keys of every pairing type, signing helpers.
#![allow(dead_code, clippy::new_without_default)]

use access::*;
use note::{Signer, Verifier};

pub const NOW: u64 = 1_767_225_600;

pub fn signer(name: &str, seed: u8) -> Signer {
    Signer::generate(name, &[seed; 32]).unwrap()
}

pub struct World {
    pub archive: Identity,
    pub other_archive: Identity,
    pub admin: Signer,
    pub input: Signer,
    pub user: Signer,
    pub interface: Signer,
    pub stranger: Signer,
    /// An ADMIN of personnel only.
    pub admin_p: Signer,
    pub set: PairingSet,
}

impl World {
    pub fn new() -> World {
        let archive = Identity::from_signer(signer("archive", 1));
        let other_archive = Identity::from_signer(signer("archive", 2));
        let admin = signer("admin", 3);
        let input = signer("input", 4);
        let user = signer("user", 5);
        let interface = signer("iface", 6);
        let stranger = signer("stranger", 7);
        let admin_p = signer("admin-p", 8);
        let mut set = PairingSet::new();
        let t = |v: &[&str]| Tenants::new(v).unwrap();
        for (s, k, ts) in [
            (&admin, PairingType::Admin, t(&["*"])),
            (&input, PairingType::Input, t(&["corporate"])),
            (&user, PairingType::User, t(&["corporate"])),
            (&interface, PairingType::Interface, t(&["corporate"])),
            (&admin_p, PairingType::Admin, t(&["personnel"])),
        ] {
            set.insert(Pairing::new(s.verifier(), k, ts).unwrap())
                .unwrap();
        }
        World {
            archive,
            other_archive,
            admin,
            input,
            user,
            interface,
            stranger,
            admin_p,
            set,
        }
    }

    pub fn archive_key(&self) -> Verifier {
        self.archive.verifier()
    }

    pub fn cap(&self, issuer: &Signer, holder: &Signer, ops: &str, rows: &str) -> Vec<u8> {
        self.cap_with(issuer, |c| {
            c.holder = holder.verifier();
            c.ops = CapOps::parse(ops, false).unwrap();
            c.rows = RowRange::parse(rows).unwrap();
        })
    }

    pub fn cap_with(&self, issuer: &Signer, f: impl FnOnce(&mut Capability)) -> Vec<u8> {
        let mut c = Capability {
            archive: self.archive_key(),
            tenant: "corporate".into(),
            holder: self.user.verifier(),
            ops: CapOps {
                read: true,
                bundle: true,
            },
            rows: RowRange::ALL,
            not_before: NOW - 60,
            expires: NOW + 3600,
            nonce: [9; 16],
        };
        f(&mut c);
        c.sign(issuer).unwrap()
    }

    pub fn sign(&self, who: &Signer, tenant: &str, action: &Action, cap: &[u8]) -> Vec<u8> {
        self.sign_at(who, tenant, action, cap, NOW, nonce(who, action))
    }

    pub fn sign_at(
        &self,
        who: &Signer,
        tenant: &str,
        action: &Action,
        cap: &[u8],
        time: u64,
        n: [u8; 16],
    ) -> Vec<u8> {
        SignedRequest::sign(who, &self.archive_key(), tenant, action, time, n, cap).unwrap()
    }

    pub fn decide(&self, auth: &[u8], tenant: &str) -> Result<Grant, Refusal> {
        let req = SignedRequest::parse(auth)?;
        authorize(&self.set, &self.archive_key(), tenant, &req, Some(NOW), 0)
    }
}

/// A nonce that differs per key and action, so tests do not collide by accident.
pub fn nonce(who: &Signer, action: &Action) -> [u8; 16] {
    let mut n = [0u8; 16];
    n[..4].copy_from_slice(&who.key_id().to_be_bytes());
    n[4] = action.name().len() as u8;
    n
}

pub fn read(since: u64, max: u32) -> Action {
    Action::Read { since, max }
}

pub fn object(path: &str) -> Action {
    Action::GetObject {
        path: path.into(),
        offset: 0,
    }
}

pub fn append(entries: &[&[u8]]) -> (Vec<u8>, Action) {
    let mut buf = vec![0u8; 4096];
    let mut len = 0;
    for e in entries {
        assert!(protocol::push_entry(&mut buf, &mut len, e));
    }
    buf.truncate(len);
    let a = Action::from_op(&protocol::Op::Append { entries: &buf })
        .unwrap()
        .unwrap();
    (buf, a)
}

//! The nonce window, pairing changes, audit records.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use access::*;
use common::*;

fn grant(w: &World, who: &note::Signer, n: [u8; 16], time: u64) -> Grant {
    let auth = w.sign_at(who, "corporate", &Action::Hello, &[], time, n);
    let req = SignedRequest::parse(&auth).unwrap();
    authorize(&w.set, &w.archive_key(), "corporate", &req, Some(NOW), 0).unwrap()
}

#[test]
fn replay_is_refused_within_the_window_and_after_restore() {
    let w = World::new();
    let mut win = NonceWindow::new();
    let g = grant(&w, &w.user, [1; 16], NOW);
    win.insert(&g, NOW).unwrap();
    assert_eq!(win.insert(&g, NOW), Err(Refusal::Replayed));
    assert_eq!(win.check(&g, NOW + WINDOW_BACK), Err(Refusal::Replayed));
    // Another key may use the same nonce.
    win.insert(&grant(&w, &w.input, [1; 16], NOW), NOW).unwrap();
    // Once the request's time is out of the window, the nonce is forgotten (the request
    // itself would now be refused as stale).
    assert_eq!(win.check(&g, NOW + WINDOW_BACK + 1), Ok(()));
    assert_eq!(win.len(), 0);

    // The audit record carries what a reboot needs: key id, nonce, request time.
    let g = grant(&w, &w.user, [7; 16], NOW - 5);
    let rec = AuditRecord::granted(&g, NOW);
    let line = rec.to_line(41).unwrap();
    let (i, back) = AuditRecord::parse_line(&line).unwrap();
    assert_eq!((i, &back), (41, &rec));
    let (key, nonce, time) = back.nonce_entry().unwrap();
    assert_eq!((key, nonce, time), (w.user.key_id(), [7; 16], NOW - 5));
    let mut rebooted = NonceWindow::new();
    rebooted.restore(key, nonce, time, NOW + 10).unwrap();
    assert_eq!(rebooted.check(&g, NOW + 10), Err(Refusal::Replayed));
    // A record older than the window is not restored.
    let mut late = NonceWindow::new();
    late.restore(key, nonce, time, time + WINDOW_BACK + 1)
        .unwrap();
    assert!(late.is_empty());
    // Refusal records restore nothing.
    let r = AuditRecord::refused(None, "corporate", Refusal::Unsigned, NOW);
    assert_eq!(r.nonce_entry(), None);
}

#[test]
fn nonce_memory_is_bounded_per_key_and_in_all() {
    let w = World::new();
    let mut win = NonceWindow::new();
    let n = |i: usize| {
        let mut n = [0u8; 16];
        n[..8].copy_from_slice(&(i as u64).to_be_bytes());
        n
    };
    // Grants built once, then the same grant with other nonces (signing 65k notes is slow).
    let base = grant(&w, &w.user, n(0), NOW);
    for i in 0..NONCE_PER_KEY {
        win.insert(
            &Grant {
                nonce: Some(n(i)),
                ..base.clone()
            },
            NOW,
        )
        .unwrap();
    }
    let over = Grant {
        nonce: Some(n(NONCE_PER_KEY)),
        ..base.clone()
    };
    assert_eq!(win.insert(&over, NOW), Err(Refusal::NonceMemoryFull));
    // Others are not stopped by one flooding key.
    let other = grant(&w, &w.input, n(0), NOW);
    win.insert(&other, NOW).unwrap();
    // Fill the rest with three more keys: then every key is refused.
    for id in 1..=3u32 {
        for i in 0..NONCE_PER_KEY {
            let mut g = base.clone();
            g.key.as_mut().unwrap().key_id = id;
            g.nonce = Some(n(i));
            if win.len() < NONCE_CAPACITY {
                win.insert(&g, NOW).unwrap();
            }
        }
    }
    assert_eq!(win.len(), NONCE_CAPACITY);
    let admin = grant(&w, &w.admin, n(0), NOW);
    assert_eq!(win.insert(&admin, NOW), Err(Refusal::NonceMemoryFull));
    // Time frees it.
    assert_eq!(win.insert(&admin, NOW + WINDOW_BACK + 1), Ok(()));
    assert_eq!(win.len(), 1);
    // Unsigned grants are not remembered.
    let mut s = w.set.clone();
    s.set_public_metadata(true);
    let anon = authorize_unsigned(&s, "corporate", &Action::Hello).unwrap();
    assert_eq!(win.insert(&anon, NOW), Ok(()));
    assert_eq!(win.insert(&anon, NOW), Ok(()));
}

#[test]
fn a_rebuild_of_a_full_key_keeps_every_nonce_once_and_refuses_each_replay() {
    // A key's whole bound (16,384 entries), restored newest first as audit reads them, with
    // every 7th record read twice (a rebuild that restores a record again), then
    // `restored`: each nonce once, with its latest time, and each one's replay refused.
    // (Before issue 13 each restore scanned the key's entries: this took seconds.)
    let w = World::new();
    let base = grant(&w, &w.user, [0; 16], NOW);
    let id = base.key.as_ref().unwrap().key_id;
    let n = |i: usize| {
        let mut n = [0u8; 16];
        n[8..].copy_from_slice(&(i as u64).to_le_bytes());
        n
    };
    let time = |i: usize| NOW - (i as u64 * WINDOW_BACK) / NONCE_PER_KEY as u64;
    let mut win = NonceWindow::new();
    for i in 0..NONCE_PER_KEY {
        win.restore(id, n(i), time(i), NOW).unwrap();
        if i % 7 == 0 {
            win.restore(id, n(i), time(i), NOW).unwrap();
        }
    }
    // The same nonce reused once its first use had expired: kept at its latest time.
    win.restore(id, n(10_000), NOW, NOW).unwrap();
    win.restored();
    assert_eq!(win.len(), NONCE_PER_KEY);
    for i in [0, 1, 5, 7, 8_000, NONCE_PER_KEY - 1] {
        let g = Grant {
            nonce: Some(n(i)),
            time: time(i),
            ..base.clone()
        };
        assert_eq!(win.check(&g, NOW), Err(Refusal::Replayed), "nonce {i}");
    }
    // The key is full: a fresh nonce is refused for memory, not taken.
    let fresh = Grant {
        nonce: Some(n(NONCE_PER_KEY)),
        ..base.clone()
    };
    assert_eq!(win.check(&fresh, NOW), Err(Refusal::NonceMemoryFull));
    // n(10,000)'s latest time (NOW, not NOW - 18) is what was kept: still remembered at
    // NOW + WINDOW_BACK, when every entry older than NOW has expired.
    assert!(time(10_000) < NOW);
    let reused = Grant {
        nonce: Some(n(10_000)),
        ..base.clone()
    };
    assert_eq!(
        win.check(&reused, NOW + WINDOW_BACK),
        Err(Refusal::Replayed)
    );
    let at_now = (0..NONCE_PER_KEY).filter(|&i| time(i) == NOW).count();
    assert_eq!(win.len(), at_now + 1);
    // A rebuild with nothing in it.
    let mut empty = NonceWindow::new();
    empty.restored();
    assert!(empty.is_empty());
}

fn change(w: &World, by: &note::Signer, key: &note::Signer, c: Change) -> Vec<u8> {
    PairingChange {
        archive: w.archive_key(),
        change: c,
        key: key.verifier(),
        time: NOW,
        nonce: [3; 16],
    }
    .sign(by)
    .unwrap()
}

#[test]
fn pairing_changes() {
    let w = World::new();
    let k = w.archive_key();
    let add = |t: PairingType, ts: &[&str]| Change::Add {
        kind: t,
        tenants: Tenants::new(ts).unwrap(),
    };
    let mut set = w.set.clone();
    let note = change(
        &w,
        &w.admin,
        &w.stranger,
        add(PairingType::User, &["corporate"]),
    );
    let c = set.apply(&note, &k).unwrap();
    assert_eq!(PairingChange::parse_text(&c.to_text()).unwrap(), c);
    assert_eq!(
        set.get(&w.stranger.verifier()).unwrap().kind,
        PairingType::User
    );
    // Re-pairing replaces.
    set.apply(
        &change(
            &w,
            &w.admin,
            &w.stranger,
            add(PairingType::Input, &["corporate", "personnel"]),
        ),
        &k,
    )
    .unwrap();
    assert_eq!(
        set.get(&w.stranger.verifier()).unwrap().kind,
        PairingType::Input
    );
    let before = set.clone();
    let refuse = |set: &mut PairingSet, note: &[u8], want: Refusal| {
        assert_eq!(set.apply(note, &k).err(), Some(want));
        assert_eq!(set, &before, "a refused change changes nothing");
    };
    // Only ADMINs, only within their tenants, only for this archive.
    refuse(
        &mut set,
        &change(&w, &w.user, &w.user, add(PairingType::Admin, &["*"])),
        Refusal::UntrustedIssuer,
    );
    refuse(
        &mut set,
        &change(
            &w,
            &w.admin_p,
            &w.user,
            add(PairingType::User, &["corporate"]),
        ),
        Refusal::Unpaired,
    );
    refuse(
        &mut set,
        &change(&w, &w.admin_p, &w.stranger, Change::Remove),
        Refusal::Unpaired,
    );
    refuse(
        &mut set,
        &change(&w, &w.admin_p, &w.admin, Change::Remove),
        Refusal::Unpaired,
    );
    let other = PairingChange {
        archive: w.other_archive.verifier(),
        change: Change::Remove,
        key: w.user.verifier(),
        time: NOW,
        nonce: [0; 16],
    }
    .sign(&w.admin)
    .unwrap();
    refuse(&mut set, &other, Refusal::WrongArchive);
    let mut bad = note.clone();
    let at = bad.iter().position(|&b| b == b'\n').unwrap() + 10;
    bad[at] ^= 1;
    assert!(set.apply(&bad, &k).is_err());
    refuse(
        &mut set,
        &change(&w, &w.admin, &signer("nobody", 99), Change::Remove),
        Refusal::Unpaired,
    );
    // The last ADMIN cannot go, nor be demoted.
    let mut one = PairingSet::new();
    one.insert(Pairing::new(w.admin.verifier(), PairingType::Admin, Tenants::All).unwrap())
        .unwrap();
    let snapshot = one.clone();
    assert_eq!(
        one.apply(&change(&w, &w.admin, &w.admin, Change::Remove), &k),
        Err(Refusal::LastAdmin)
    );
    assert_eq!(
        one.apply(
            &change(
                &w,
                &w.admin,
                &w.admin,
                add(PairingType::User, &["corporate"])
            ),
            &k
        ),
        Err(Refusal::LastAdmin)
    );
    assert_eq!(one, snapshot);
    // An ADMIN may remove another ADMIN while one remains.
    set.apply(&change(&w, &w.admin, &w.admin_p, Change::Remove), &k)
        .unwrap();
    assert!(set.get(&w.admin_p.verifier()).is_none());
}

#[test]
fn pairing_set_rules_and_image_form() {
    let w = World::new();
    let bytes = w.set.to_bytes();
    assert_eq!(PairingSet::from_bytes(&bytes).unwrap(), w.set);
    let mut p = w.set.clone();
    p.set_public_metadata(true);
    assert_eq!(PairingSet::from_bytes(&p.to_bytes()).unwrap(), p);
    let text = String::from_utf8(bytes.clone()).unwrap();
    assert!(text.starts_with("totebox-pairings/v1\npublic-metadata off\npairing "));
    // Lines out of order, a repeated key, trailing garbage: refused.
    let mut lines: Vec<&str> = text.lines().collect();
    lines.swap(2, 3);
    assert!(PairingSet::from_bytes((lines.join("\n") + "\n").as_bytes()).is_err());
    assert!(PairingSet::from_bytes(&[bytes.clone(), b"x\n".to_vec()].concat()).is_err());
    // Duplicate key, and duplicate key id.
    let mut s = w.set.clone();
    let dup = Pairing::new(w.user.verifier(), PairingType::Admin, Tenants::All).unwrap();
    assert!(matches!(s.insert(dup), Err(PairingError::Duplicate(_))));
    assert!(Tenants::new(&["*", "corporate"]).is_err());
    assert!(Tenants::new(&["Corporate"]).is_err());
    assert!(Tenants::new::<&str>(&[]).is_err());
    let long = signer(&"n".repeat(MAX_KEY_NAME + 1), 40);
    assert!(Pairing::new(long.verifier(), PairingType::User, Tenants::All).is_err());
    let mut full = PairingSet::new();
    for i in 0..MAX_PAIRINGS {
        let s = signer(&format!("k{i}"), i as u8);
        full.insert(Pairing::new(s.verifier(), PairingType::User, Tenants::All).unwrap())
            .unwrap();
    }
    let s = signer("one-more", 200);
    assert_eq!(
        full.insert(Pairing::new(s.verifier(), PairingType::User, Tenants::All).unwrap()),
        Err(PairingError::TooMany)
    );
}

#[test]
fn audit_lines_are_bounded_and_exact() {
    let w = World::new();
    let tenant = "t".repeat(32);
    let worst = AuditRecord {
        time: MAX_TIME - 1,
        key: Some(u32::MAX),
        pairing: Some(PairingType::Interface),
        tenant: Some(tenant.clone()),
        op: Some("audit-object"),
        rows: Some((MAX_ROW - 1, MAX_ROW)),
        nonce: Some([0xff; 16]),
        skew: Some(-120),
        outcome: Outcome::Refused(Refusal::CapabilityRequired),
    };
    let line = worst.to_line(MAX_ROW - 1).unwrap();
    assert_eq!(line.len(), MAX_AUDIT_LINE, "{line}");
    assert_eq!(
        AuditRecord::parse_line(&line).unwrap(),
        (MAX_ROW - 1, worst.clone())
    );
    // Past the bounds, no line (the request then fails closed).
    assert!(worst.to_line(MAX_ROW).is_none());
    assert!(AuditRecord {
        time: MAX_TIME,
        ..worst.clone()
    }
    .to_line(0)
    .is_none());
    assert!(AuditRecord {
        skew: Some(-1000),
        ..worst.clone()
    }
    .to_line(0)
    .is_none());
    // Every refusal name is short enough and parses back.
    for r in Refusal::ALL {
        assert!(r.name().len() <= 19);
        assert_eq!(Refusal::from_name(r.name()), Some(r));
        assert_eq!(Refusal::from_code(r.code()), Some(r));
        let rec = AuditRecord::refused(None, "corporate", r, NOW);
        let l = rec.to_line(3).unwrap();
        assert_eq!(AuditRecord::parse_line(&l).unwrap().1, rec);
    }
    // A refusal of a parsed request names the claimed key and what it asked.
    let cap = w.cap(&w.admin, &w.user, "read", "0..10");
    let auth = w.sign(&w.user, "corporate", &read(4, 2), &cap);
    let req = SignedRequest::parse(&auth).unwrap();
    let rec = AuditRecord::refused(Some(&req), "corporate", Refusal::Replayed, NOW);
    assert_eq!(
        rec.to_line(9).unwrap(),
        format!(
            "index=9 time={NOW} key={:08x} type=- tenant=corporate op=read rows=4..6 nonce=- \
             skew=- outcome=replayed",
            w.user.key_id()
        )
    );
    // Non-canonical spellings are refused.
    let good = rec.to_line(9).unwrap();
    for bad in [
        good.replace("index=9", "index=09"),
        good.replace(" time", "  time"),
        good.replace("outcome=replayed", "outcome=Replayed"),
        good.clone() + " extra=1",
        good.replace("key=", "key=A"),
    ] {
        assert!(AuditRecord::parse_line(&bad).is_none(), "{bad}");
    }
}

#[test]
fn identity_proofs() {
    let w = World::new();
    let p = w.archive.prove([5; 16], NOW).unwrap();
    assert_eq!(
        verify_identity_proof(&w.archive_key(), p.as_bytes(), [5; 16]),
        Ok(NOW)
    );
    assert_eq!(
        verify_identity_proof(&w.archive_key(), p.as_bytes(), [6; 16]),
        Err(Refusal::Replayed)
    );
    assert_eq!(
        verify_identity_proof(&w.other_archive.verifier(), p.as_bytes(), [5; 16]),
        Err(Refusal::WrongArchive)
    );
    let q = w.other_archive.prove([5; 16], NOW).unwrap();
    let forged = q.replace(&w.other_archive.verifier().vkey(), &w.archive_key().vkey());
    assert!(verify_identity_proof(&w.archive_key(), forged.as_bytes(), [5; 16]).is_err());
}

#[test]
fn action_text_round_trips() {
    use access::Action;
    let path = "tile/0/x001/234.p/5".to_string();
    for a in [
        Action::Hello,
        Action::Status,
        Action::Read { since: 3, max: 9 },
        Action::GetObject { path, offset: 7 },
        Action::Append {
            count: 2,
            sha256: [9; 32],
        },
        Action::PairChange { sha256: [1; 32] },
        Action::AuditObject {
            path: "checkpoint".into(),
            offset: 0,
        },
    ] {
        let t = a.to_text();
        assert!(t.len() <= 320, "{t}");
        assert_eq!(Action::parse_text(&t), Ok(a));
        assert!(Action::parse_text(&t[1..]).is_err());
        assert!(Action::parse_text(&format!("{t}x\n")).is_err());
    }
}

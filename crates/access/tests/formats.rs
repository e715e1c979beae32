//! Note formats: exact round trips, the documented examples, and total parsing under mutation.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use access::*;
use common::*;

/// A small deterministic generator (no dependency): xorshift64*.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..1 + rng.below(3) {
        match rng.below(5) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            1 if !v.is_empty() => {
                let i = rng.below(v.len());
                v.remove(i);
            }
            2 => {
                let i = rng.below(v.len() + 1);
                v.insert(i, b"\n -.0a+=\xe2\x00"[rng.below(10)]);
            }
            3 if !v.is_empty() => {
                let i = rng.below(v.len());
                v.truncate(i);
            }
            _ => {
                let i = rng.below(v.len() + 1);
                let j = rng.below(v.len() + 1);
                let (a, b) = (i.min(j), i.max(j));
                let chunk = v[a..b].to_vec();
                v.splice(a..a, chunk);
            }
        }
    }
    v
}

#[test]
fn texts_round_trip_exactly() {
    let w = World::new();
    let cap = w.cap(&w.admin, &w.user, "read,bundle", "10..20");
    let (c, (name, id)) = Capability::parse(&cap).unwrap();
    assert_eq!((name.as_str(), id), ("admin", w.admin.key_id()));
    assert_eq!(
        c.rows,
        RowRange {
            start: 10,
            end: Some(20)
        }
    );
    assert_eq!(
        c.to_text().as_bytes(),
        note::Note::parse(&cap).unwrap().text().as_bytes()
    );
    assert_eq!(Capability::parse_text(&c.to_text()).unwrap(), c);
    let (entries, app) = append(&[b"a", b"b"]);
    assert_eq!(entries.len(), 6);
    for a in [
        Action::Hello,
        Action::Checkpoint,
        Action::Status,
        read(0, u32::MAX),
        object("tile/entries/x001/234.p/7"),
        app,
    ] {
        let auth = w.sign(&w.admin, "corporate", &a, &cap);
        let r = SignedRequest::parse(&auth).unwrap();
        assert_eq!(r.action, a);
        assert_eq!(r.tenant.as_deref(), Some("corporate"));
        assert_eq!(r.capability_note(), &cap[..]);
        r.verify_signature().unwrap();
    }
    for a in [
        Action::PairChange { sha256: [7; 32] },
        Action::AuditObject {
            path: "journal/0000000000000100".into(),
            offset: 512,
        },
    ] {
        let r = SignedRequest::parse(&w.sign(&w.admin, "", &a, &[])).unwrap();
        assert_eq!((r.action, r.tenant), (a, None));
    }
    // The shape docs/access.md shows.
    let auth = w.sign_at(&w.user, "corporate", &read(10, 10), &cap, NOW, [0x11; 16]);
    let r = SignedRequest::parse(&auth).unwrap();
    let text = note::Note::parse(r.note()).unwrap().text().to_string();
    let lines: Vec<&str> = text.lines().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(
        lines,
        [
            "totebox-request/v1",
            "archive",
            "tenant",
            "key",
            "time",
            "nonce",
            "capability",
            "op",
            "since",
            "max"
        ]
    );
    assert!(text.contains(&format!(
        "\ntime {NOW}\nnonce 11111111111111111111111111111111\n"
    )));
    // Row ranges.
    assert_eq!(RowRange::parse("5..").unwrap().to_string(), "5..");
    for bad in [
        "5..5",
        "6..5",
        "05..7",
        "..7",
        "1..2..3",
        "a..b",
        "281474976710656..",
        "0..281474976710657",
    ] {
        assert!(RowRange::parse(bad).is_err(), "{bad}");
    }
    assert!(CapOps::parse("bundle,read", true).is_err());
    assert_eq!(
        CapOps::parse("bundle,read", false).unwrap().to_text(),
        "read,bundle"
    );
    assert!(CapOps::parse("read,read", false).is_err());
    assert!(CapOps::parse("append", false).is_err());
}

/// Domain separation: a note of one type never parses as another, even signed by the same key.
#[test]
fn note_types_are_distinct() {
    let w = World::new();
    let cap = w.cap(&w.admin, &w.user, "read", "0..");
    let change = PairingChange {
        archive: w.archive_key(),
        change: Change::Remove,
        key: w.user.verifier(),
        time: NOW,
        nonce: [0; 16],
    }
    .sign(&w.admin)
    .unwrap();
    let req = SignedRequest::parse(&w.sign(&w.admin, "corporate", &Action::Hello, &[])).unwrap();
    let proof = w.archive.prove([0; 16], NOW).unwrap();
    for n in [&cap[..], &change[..], proof.as_bytes()] {
        assert!(SignedRequest::parse(&table_envelope(n, &[])).is_err());
    }
    for n in [req.note(), &change[..], proof.as_bytes()] {
        assert!(Capability::parse(n).is_err());
    }
    for n in [req.note(), &cap[..], proof.as_bytes()] {
        assert!(PairingChange::parse_signed(n).is_err());
    }
    // Two signatures on a request: refused (one holder signs).
    let mut note = note::Note::parse(req.note()).unwrap();
    note.add_signature(w.user.signature(note.text()).unwrap())
        .unwrap();
    assert_eq!(
        SignedRequest::parse(&table_envelope(&note.to_bytes(), &[])).err(),
        Some(Refusal::Malformed)
    );
}

fn table_envelope(request: &[u8], capability: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; protocol::MAX_AUTH];
    let n = protocol::Authorization::V1 {
        request,
        capability,
    }
    .encode(&mut out)
    .unwrap();
    out.truncate(n);
    out
}

/// Parsers are total: 20,000 mutations of valid inputs, none panics, and whatever still
/// parses and is granted is exactly the original (a mutation never yields another grant).
#[test]
fn mutated_inputs_never_panic_or_forge() {
    let w = World::new();
    let cap = w.cap(&w.admin, &w.user, "read", "0..100");
    let auth = w.sign(&w.user, "corporate", &read(1, 2), &cap);
    let original = w.decide(&auth, "corporate").unwrap();
    let set_bytes = w.set.to_bytes();
    let yaml = yaml::to_yaml(&w.set);
    let change = PairingChange {
        archive: w.archive_key(),
        change: Change::Add {
            kind: PairingType::User,
            tenants: Tenants::All,
        },
        key: w.stranger.verifier(),
        time: NOW,
        nonce: [0; 16],
    }
    .sign(&w.admin)
    .unwrap();
    let line = AuditRecord::granted(&original, NOW).to_line(5).unwrap();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut granted_same = 0;
    for _ in 0..20_000 {
        let m = mutate(&mut rng, &auth);
        if let Ok(g) = w.decide(&m, "corporate") {
            assert_eq!(g, original);
            granted_same += 1;
        }
        let _ = Capability::parse(&mutate(&mut rng, &cap));
        let _ = PairingSet::from_bytes(&mutate(&mut rng, &set_bytes));
        let _ = w
            .set
            .clone()
            .apply(&mutate(&mut rng, &change), &w.archive_key());
        if let Ok(s) = std::str::from_utf8(&mutate(&mut rng, yaml.as_bytes())) {
            let _ = yaml::parse(s);
        }
        if let Ok(s) = std::str::from_utf8(&mutate(&mut rng, line.as_bytes())) {
            if let Some((i, r)) = AuditRecord::parse_line(s) {
                assert_eq!(r.to_line(i).as_deref(), Some(s));
            }
        }
    }
    // Mutations that only touch the envelope's lengths can leave it valid; nothing else may.
    assert!(granted_same < 200, "{granted_same}");
}

#[test]
fn yaml_reads_the_subset_and_names_the_line_of_an_error() {
    let w = World::new();
    let y = yaml::to_yaml(&w.set);
    assert_eq!(yaml::parse(&y).unwrap(), w.set);
    let a = w.admin.verifier().vkey();
    let u = w.user.verifier().vkey();
    let src = format!(
        "# who may use the archive\n\npairings:   # the list\n  - key: {a}\n    type: admin\n    tenants: \"*\"\n  - type: USER   # order is free\n    tenants:\n      - personnel\n      - corporate\n    key: \"{u}\"\n"
    );
    let s = yaml::parse(&src).unwrap();
    assert_eq!(s.pairings().len(), 2);
    assert_eq!(
        s.get(&w.user.verifier()).unwrap().tenants,
        Tenants::new(&["corporate", "personnel"]).unwrap()
    );
    assert_eq!(s.get(&w.admin.verifier()).unwrap().tenants, Tenants::All);
    assert_eq!(yaml::parse("pairings: []\n").unwrap(), PairingSet::new());
    assert_eq!(
        yaml::to_yaml(&PairingSet::new()).lines().last(),
        Some("pairings: []")
    );
    let item = |body: &str| format!("pairings:\n  - key: {u}\n{body}");
    let cases: Vec<(String, usize, &str)> = vec![
        (String::new(), 1, "empty"),
        ("users:\n".into(), 1, "pairings"),
        ("pairings:\n\t- key: x\n".into(), 2, "tab"),
        (item("    type: USER\n"), 2, "tenants"),
        (
            item("    type: OWNER\n    tenants: [corporate]\n"),
            3,
            "unknown type",
        ),
        (
            item("    type: USER\n    tenants: [Corporate]\n"),
            4,
            "invalid tenant",
        ),
        (
            item("    type: USER\n    tenants: [corporate]\n    colour: red\n"),
            5,
            "unknown field",
        ),
        (item("    type: USER\n    type: USER\n"), 4, "twice"),
        (item("    type: USER\n    tenants: *\n"), 4, "unsupported"),
        (
            item("    type: USER\n    tenants: [corporate, \"*\"]\n"),
            4,
            "invalid tenant",
        ),
        (
            item("    type: USER\n      tenants: [corporate]\n"),
            4,
            "indentation",
        ),
        (
            "pairings:\n  - key: nope\n    type: USER\n    tenants: [a]\n".into(),
            2,
            "verifier key",
        ),
        (
            format!(
                "{}{}",
                item("    type: USER\n    tenants: [corporate]\n"),
                &item("    type: ADMIN\n    tenants: [corporate]\n")[10..]
            ),
            5,
            "already paired",
        ),
        ("pairings: []\n  - key: x\n".into(), 2, "nothing may follow"),
        (
            item("    type: \"USER\n    tenants: [corporate]\n"),
            3,
            "unterminated",
        ),
    ];
    for (src, line, what) in cases {
        let e = yaml::parse(&src).unwrap_err();
        assert_eq!(e.line, line, "{src:?}: {e}");
        assert!(e.to_string().contains(what), "{src:?}: {e}");
    }
}

/// docs/access.md's examples are what the code reads and writes.
#[test]
fn the_documented_examples_parse() {
    let doc = include_str!("../../../docs/access.md");
    let block = |start: &str| -> String {
        let at = doc.find(start).unwrap();
        let end = doc[at..].find("```").unwrap();
        doc[at..at + end].to_string()
    };
    let cap = block("totebox-capability/v1\narchive archive+");
    let note = note::Note::parse(cap.as_bytes()).unwrap();
    let c = Capability::parse_text(note.text()).unwrap();
    assert_eq!(
        (c.rows.to_string(), c.ops.to_text()),
        ("10..20".into(), "read")
    );
    let set = block("totebox-pairings/v1\n");
    let s = PairingSet::from_bytes(set.as_bytes()).unwrap();
    assert_eq!(s.pairings().len(), 2);
    let lines: Vec<&str> = doc.lines().filter(|l| l.starts_with("index=")).collect();
    assert_eq!(lines.len(), 2);
    for l in lines {
        let (_, r) = AuditRecord::parse_line(l).unwrap();
        assert!(r.to_line(0).is_some());
    }
}

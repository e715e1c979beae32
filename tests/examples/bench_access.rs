//! The pure cost of access control per signed append request, on the host, so the added
//! latency `make bench-system` measures end to end can be attributed: `bench_access
//! [REQUESTS]` (default 2000) times each step for appends of 1 and of 100 entries (64 bytes
//! each) and prints microseconds per request.
//!
//! Steps (docs/access.md, "Where each check happens"):
//! - client: `access::host::HostSigner::authorize`, what `bench_client --skey` and `totebox
//!   client --skey` run per request (the entries' SHA-256, the request text, Ed25519 sign, the
//!   host clock and a random nonce, the postcard envelope);
//! - box, each as a PD runs it: `Action::from_op` (the entries' SHA-256), `SignedRequest::parse`,
//!   `verify_signature` (Ed25519 verify), `authorize` (which verifies again), `matches_action`,
//!   `NonceWindow::check`/`insert` (a scan of the key's nonces: the window is filled as the
//!   requests go, as on a box), `AuditRecord::to_line`;
//! - box per request as a whole: audit's Check for the wire (from_op, parse, authorize,
//!   matches, nonce check), the ledger's re-check (from_op, parse, verify, matches), audit's
//!   Authorize (parse, authorize, matches, nonce insert, record line). Not included: the IPC
//!   and copies between PDs, and the audit record's durable write.
//!
//! A benchmark, not a test (tests/bench-system.sh).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Instant;

use access::host::HostSigner;
use access::{
    authorize, Action, AuditRecord, NonceWindow, Pairing, PairingSet, PairingType, SignedRequest,
    Tenants,
};
use protocol::client::Authorizer;
use protocol::Op;

/// Runs `f` `n` times and returns microseconds per run.
fn time<T>(n: usize, mut f: impl FnMut(usize) -> T) -> f64 {
    let start = Instant::now();
    for i in 0..n {
        std::hint::black_box(f(i));
    }
    start.elapsed().as_secs_f64() * 1e6 / n as f64
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map_or(2000, |s| s.parse().expect("REQUESTS"));
    let archive = note::Signer::generate("archive", &[1; 32])
        .unwrap()
        .verifier();
    let admin = note::Signer::generate("admin", &[2; 32]).unwrap();
    let input = note::Signer::generate("bench-input", &[3; 32]).unwrap();
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
    set.insert(
        Pairing::new(
            input.verifier(),
            PairingType::Input,
            Tenants::new(&["corporate", "personnel"]).unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    let tenant = "corporate";
    let now = access::host::now().unwrap();
    println!(
        "access control per signed append request, host CPU, {n} requests each (microseconds):"
    );
    println!(
        "{:<8} {:>7} {:>8} {:>7} {:>7} {:>9} {:>7} {:>7} {:>7} {:>7} | {:>6} {:>6} {:>6} {:>7}",
        "entries",
        "sign",
        "from_op",
        "parse",
        "verify",
        "authorize",
        "matches",
        "n.check",
        "n.insert",
        "line",
        "check",
        "ledger",
        "grant",
        "box"
    );
    for batch in [1usize, 100] {
        let mut bundle = vec![0u8; batch * 80];
        let mut len = 0;
        for i in 0..batch {
            let e = format!("{i:08} bench entry {:>44}", "x");
            assert!(protocol::push_entry(&mut bundle, &mut len, e.as_bytes()));
        }
        let op = Op::Append {
            entries: &bundle[..len],
        };
        let mut signer = HostSigner::new(input.clone(), archive.clone(), Vec::new());
        let sign = time(n, |_| signer.authorize(tenant, &op).unwrap());
        let auths: Vec<Vec<u8>> = (0..n)
            .map(|_| signer.authorize(tenant, &op).unwrap())
            .collect();
        let from_op = time(n, |_| Action::from_op(&op).unwrap().unwrap());
        let reqs: Vec<SignedRequest> = auths
            .iter()
            .map(|a| SignedRequest::parse(a).unwrap())
            .collect();
        let parse = time(n, |i| SignedRequest::parse(&auths[i]).unwrap());
        let verify = time(n, |i| reqs[i].verify_signature().unwrap());
        let grants: Vec<_> = reqs
            .iter()
            .map(|r| authorize(&set, &archive, tenant, r, Some(now), 0).unwrap())
            .collect();
        let auth = time(n, |i| {
            authorize(&set, &archive, tenant, &reqs[i], Some(now), 0).unwrap()
        });
        let action = Action::from_op(&op).unwrap().unwrap();
        let matches = time(n, |i| reqs[i].matches_action(tenant, &action).unwrap());
        // The nonce window filled as requests go: check each against the ones before it.
        let mut w = NonceWindow::new();
        let insert = time(n, |i| w.insert(&grants[i], now).unwrap());
        let check = time(n, |i| {
            // Every nonce is in the window now: a check scans them all and finds it.
            w.check(&grants[i], now).unwrap_err()
        });
        let line = time(n, |i| {
            AuditRecord::granted(&grants[i], now)
                .to_line(i as u64)
                .unwrap()
        });
        // The three passes as the PDs make them, with a fresh window.
        let mut w = NonceWindow::new();
        let wire_check = |i: usize, w: &mut NonceWindow| {
            let a = Action::from_op(&op).unwrap().unwrap();
            let r = SignedRequest::parse(&auths[i]).unwrap();
            let g = authorize(&set, &archive, tenant, &r, Some(now), 0).unwrap();
            r.matches_action(tenant, &a).unwrap();
            w.check(&g, now).unwrap();
        };
        let ledger = |i: usize| {
            let a = Action::from_op(&op).unwrap().unwrap();
            let r = SignedRequest::parse(&auths[i]).unwrap();
            r.verify_signature().unwrap();
            r.matches_action(tenant, &a).unwrap();
        };
        let grant = |i: usize, w: &mut NonceWindow| {
            let r = SignedRequest::parse(&auths[i]).unwrap();
            let g = authorize(&set, &archive, tenant, &r, Some(now), 0).unwrap();
            r.matches_action(tenant, &action).unwrap();
            w.insert(&g, now).unwrap();
            AuditRecord::granted(&g, now).to_line(i as u64).unwrap()
        };
        let t_check = time(n, |i| wire_check(i, &mut NonceWindow::new()));
        let t_ledger = time(n, &ledger);
        let t_grant = time(n, |i| grant(i, &mut w));
        let mut w = NonceWindow::new();
        let t_box = time(n, |i| {
            wire_check(i, &mut w);
            ledger(i);
            grant(i, &mut w)
        });
        println!(
            "{batch:<8} {sign:>7.1} {from_op:>8.1} {parse:>7.1} {verify:>7.1} {auth:>9.1} {matches:>7.1} {check:>7.1} {insert:>8.1} {line:>7.1} | {t_check:>6.1} {t_ledger:>6.1} {t_grant:>6.1} {t_box:>7.1}"
        );
    }
    println!(
        "(n.check: a replay found among {n} nonces of one key, the worst case up to NONCE_PER_KEY = {}; \
         check/ledger/grant: the three passes a request takes on the box, box: all three, nonce window filling)",
        access::NONCE_PER_KEY
    );
}

//! Appends per second through a running box, end to end (client protocol over its socket):
//! `bench_client [--skey FILE]... [--archive VKEY] ADDR TENANT REQUESTS BATCH [WINDOW]` makes
//! REQUESTS append requests of BATCH entries (64 bytes each) and prints one line of figures:
//! one request at a time, or with WINDOW requests in flight (`Client::append_pipelined`, which
//! the wire stores together: group commit). ADDR: `unix:PATH` or `HOST:PORT` (what `make sim` /
//! `make qemu` print). A benchmark, not a test (tests/bench-system.sh).
//!
//! With `--skey FILE` (and `--archive VKEY`, the archive's identity verifier key or a file
//! holding it) every request is signed exactly as `totebox client --skey` signs it
//! (`access::host::HostSigner`: the host clock, a fresh random nonce); several `--skey` take
//! turns, request by request. The archive remembers at most `access::NONCE_PER_KEY` nonces per
//! key over its window (`WINDOW_BACK` seconds of request time), so a run that would sign more
//! than that with one key is refused before it starts (pass more keys, or wait out the window
//! between runs). Without `--skey` requests go unsigned (an archive run `--open`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::time::Instant;

use access::host::HostSigner;
use protocol::client::{Authorizer, Client};
use protocol::Op;

trait Stream: Read + Write {}
impl<T: Read + Write> Stream for T {}

const USAGE: &str =
    "usage: bench_client [--skey FILE]... [--archive VKEY] ADDR TENANT REQUESTS BATCH [WINDOW]";

/// Several signers taking turns, one request each.
#[derive(Debug)]
struct Rotate {
    signers: Vec<HostSigner>,
    next: usize,
}

impl Authorizer for Rotate {
    fn authorize(&mut self, tenant: &str, op: &Op<'_>) -> Result<Vec<u8>, String> {
        let i = self.next % self.signers.len();
        self.next += 1;
        self.signers[i].authorize(tenant, op)
    }
}

/// The first line of `arg` if it names a file, else `arg` itself.
fn key_text(arg: &str) -> String {
    match std::fs::read_to_string(arg) {
        Ok(text) => text.lines().next().unwrap_or("").trim_end().to_string(),
        Err(_) => arg.to_string(),
    }
}

fn main() {
    let mut skeys = Vec::new();
    let mut archive = None;
    let mut args = Vec::new();
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--skey" => skeys.push(it.next().expect(USAGE)),
            "--archive" => archive = Some(it.next().expect(USAGE)),
            _ => args.push(a),
        }
    }
    let (addr, tenant, requests, batch, window) = match &args[..] {
        [a, t, r, b] => (a, t, r, b, None),
        [a, t, r, b, w] => (a, t, r, b, Some(w.parse::<usize>().unwrap())),
        _ => {
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    };
    let requests: usize = requests.parse().unwrap();
    let batch: usize = batch.parse().unwrap();
    let signers: Vec<HostSigner> = match (&skeys[..], &archive) {
        ([], None) => Vec::new(),
        ([], Some(_)) | ([_, ..], None) => {
            eprintln!("bench_client: --skey and --archive go together\n{USAGE}");
            std::process::exit(2);
        }
        (files, Some(archive)) => {
            let archive = note::Verifier::from_vkey(&key_text(archive))
                .unwrap_or_else(|e| panic!("--archive {archive}: {e}"));
            files
                .iter()
                .map(|f| {
                    let s = note::Signer::from_skey(&key_text(f))
                        .unwrap_or_else(|e| panic!("--skey {f}: {e}"));
                    HostSigner::new(s, archive.clone(), Vec::new())
                })
                .collect()
        }
    };
    // The warm-up request below is signed too.
    let per_key = (requests + 1).div_ceil(signers.len().max(1));
    if !signers.is_empty() && per_key > access::NONCE_PER_KEY {
        eprintln!(
            "bench_client: {} signed requests with {} key(s) is {per_key} per key, over the archive's \
             {} nonces per key in {} s (access::NONCE_PER_KEY): pass more --skey",
            requests + 1,
            signers.len(),
            access::NONCE_PER_KEY,
            access::WINDOW_BACK
        );
        std::process::exit(2);
    }
    let stream: Box<dyn Stream> = match addr.strip_prefix("unix:") {
        Some(path) => Box::new(UnixStream::connect(path).unwrap()),
        None => {
            let s = TcpStream::connect(addr).unwrap();
            s.set_nodelay(true).unwrap();
            Box::new(s)
        }
    };
    let mut c = Client::new(stream);
    let keys = signers.len();
    if keys > 0 {
        c.set_authorizer(Box::new(Rotate { signers, next: 0 }));
    }
    let entries: Vec<Vec<u8>> = (0..batch)
        .map(|i| format!("{i:08} bench entry {:>44}", "x").into_bytes())
        .collect();
    c.append(tenant, &entries[..1]).unwrap(); // warm: log open, first checkpoint
    let start = Instant::now();
    match window {
        None => {
            for _ in 0..requests {
                let idx = c.append(tenant, &entries).unwrap();
                assert_eq!(idx.len(), batch);
            }
        }
        Some(w) => {
            let all = vec![entries.clone(); requests];
            let mut next = None;
            for r in c.append_pipelined(tenant, &all, w) {
                let acked = r.unwrap();
                assert_eq!(acked.indices.end - acked.indices.start, batch as u64);
                assert!(next.is_none_or(|n| n == acked.indices.start));
                next = Some(acked.indices.end);
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let n = (requests * batch) as f64;
    let flight = window.map_or(String::new(), |w| format!(", {w} in flight"));
    let signed = match keys {
        0 => "unsigned".to_string(),
        1 => "signed, 1 key".to_string(),
        k => format!("signed, {k} keys ({per_key} requests per key)"),
    };
    println!(
        "{:.0} appends/s, {:.1} requests/s ({requests} requests x {batch} entries in {secs:.2} s, {:.3} ms/request{flight}, {signed})",
        n / secs,
        requests as f64 / secs,
        secs * 1000.0 / requests as f64
    );
}

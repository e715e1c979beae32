//! The simulator's HTTP front end (`sim::http`, `tiles_http`) end to end: a box with public
//! metadata on, entries appended with ADMIN-signed requests through the console wire, then
//! fetched over HTTP/1.1 with a plain `TcpStream` client: the checkpoint verifies with the
//! tenant's key, hash tiles are served, entry bundles are refused without a capability, bad
//! requests get their statuses, and a walk of the tenant's hash tiles over HTTP verifies the
//! checkpoint's root (`tlog::verify_tree`, what `totebox log verify` runs). Without public
//! metadata the same unsigned requests are refused 401.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use access::{Pairing, PairingSet, PairingType, Tenants};
use common::*;
use note::Signer;
use protocol::Op;
use psdb::RamDevice;
use sim::http::HttpServer;
use sim::{Disk, Sim};
use system_tests::access_cases::{self as cases, answers, bundle, frame, Ans, T};

/// Entries appended: a full level-0 tile and a partial one.
const ENTRIES: usize = 300;

struct Box_ {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Box_ {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

/// A provisioned box (the ADMIN paired for `*`) with [`ENTRIES`] entries in tenant [`T`],
/// serving HTTP on a free port, on its own thread (the simulator is single-threaded).
fn start(public_metadata: bool) -> Box_ {
    let (tx, rx) = std::sync::mpsc::channel();
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let thread = std::thread::spawn(move || {
        let s = |name: &str, seed: u8| Signer::generate(name, &[seed; 32]).unwrap();
        let identity = s("archive", 40);
        let w = cases::World::new(
            identity.verifier(),
            [
                s("admin", 41),
                s("input", 42),
                s("user", 43),
                s("iface", 44),
                s("stranger", 45),
            ],
            [7; 8],
        );
        let mut set = PairingSet::new();
        set.insert(
            Pairing::new(
                w.admin.verifier(),
                PairingType::Admin,
                Tenants::new(&["*"]).unwrap(),
            )
            .unwrap(),
        )
        .unwrap();
        set.set_public_metadata(public_metadata);
        let keys = keys().with_access(identity.skey(), set.to_bytes());
        let mut sim =
            Sim::new(system(), Disk::Ram(RamDevice::new(64 << 11)), &keys, false).unwrap();
        let mut next = 0;
        for chunk in 0..3 {
            let es: Vec<Vec<u8>> = (0..ENTRIES / 3)
                .map(|i| format!("entry {}", chunk * 100 + i).into_bytes())
                .collect();
            let refs: Vec<&[u8]> = es.iter().map(|e| e.as_slice()).collect();
            let b = bundle(&refs);
            let op = Op::Append { entries: &b };
            let auth = w.sign(&w.admin, T, &op, &[]);
            next += 1;
            let mut out = Vec::new();
            sim.feed(&frame(next, T, &auth, op), &mut |x| {
                out.extend_from_slice(x)
            })
            .unwrap();
            assert_eq!(answers(&out), vec![(next, Ans::Ok("Appended".into()))]);
        }
        let mut http = HttpServer::new(TcpListener::bind("127.0.0.1:0").unwrap()).unwrap();
        tx.send(http.local_addr().unwrap()).unwrap();
        let t0 = Instant::now();
        while !stop2.load(Ordering::SeqCst) {
            let now = t0.elapsed().as_millis() as u64;
            if !http.step(&mut sim, now).unwrap() {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        // The console still answers after the HTTP traffic.
        let op = Op::Checkpoint;
        let auth = w.sign(&w.admin, T, &op, &[]);
        let mut out = Vec::new();
        sim.feed(&frame(999, T, &auth, op), &mut |x| out.extend_from_slice(x))
            .unwrap();
        assert_eq!(answers(&out), vec![(999, Ans::Ok("Checkpoint".into()))]);
    });
    let addr = rx.recv_timeout(Duration::from_secs(120)).unwrap();
    Box_ {
        addr,
        stop,
        thread: Some(thread),
    }
}

/// One HTTP exchange on a fresh connection: status, head, body (read to Content-Length, or to
/// the end when the server closes).
fn exchange(addr: SocketAddr, raw: &[u8]) -> (u16, String, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(raw).unwrap();
    read_response(&mut s)
}

fn read_response(s: &mut TcpStream) -> (u16, String, Vec<u8>) {
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        if let Some(at) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8(got[..at].to_vec()).unwrap();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .expect("a Content-Length")
                .parse()
                .unwrap();
            while got.len() < at + 4 + len {
                let n = s.read(&mut buf).unwrap();
                assert!(n > 0, "closed before the body's end");
                got.extend_from_slice(&buf[..n]);
            }
            let status = head[9..12].parse().unwrap();
            return (status, head, got[at + 4..at + 4 + len].to_vec());
        }
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "closed without an answer: {got:?}");
        got.extend_from_slice(&buf[..n]);
    }
}

fn get(addr: SocketAddr, path: &str) -> (u16, String, Vec<u8>) {
    exchange(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes(),
    )
}

/// The tenant's log over HTTP, for `tlog::verify_tree`: hash tiles must be served; an entry
/// bundle refused (401/403) is absent (a public mirror's view).
struct Http {
    addr: SocketAddr,
    tenant: &'static str,
    conn: Option<TcpStream>,
    refused_bundles: u64,
}

impl tlog::ObjectReader for Http {
    type Error = String;
    fn read_object(&mut self, path: &str, out: &mut Vec<u8>) -> Result<bool, String> {
        out.clear();
        // One keep-alive connection for the whole walk.
        if self.conn.is_none() {
            let s = TcpStream::connect(self.addr).map_err(|e| e.to_string())?;
            s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            self.conn = Some(s);
        }
        let s = self.conn.as_mut().unwrap();
        s.write_all(format!("GET /{}/{path} HTTP/1.1\r\nHost: t\r\n\r\n", self.tenant).as_bytes())
            .map_err(|e| e.to_string())?;
        let (status, head, body) = read_response(s);
        match status {
            200 => {
                assert!(
                    head.contains("Content-Type: application/octet-stream"),
                    "{head}"
                );
                assert!(
                    head.contains("Cache-Control: public, max-age=31536000, immutable"),
                    "{head}"
                );
                out.extend_from_slice(&body);
                Ok(true)
            }
            401 | 403 if path.starts_with("tile/entries/") => {
                self.refused_bundles += 1;
                Ok(false)
            }
            s => Err(format!("{path}: HTTP {s}")),
        }
    }
}

#[test]
fn tlog_tiles_over_http_with_public_metadata() {
    let b = start(true);
    let vkey = verifier(T);

    // The checkpoint: the spec's content type and a short cache, and it verifies.
    let (status, head, cp) = get(b.addr, &format!("/{T}/checkpoint"));
    assert_eq!(status, 200, "{head}");
    assert!(
        head.contains("Content-Type: text/plain; charset=utf-8"),
        "{head}"
    );
    assert!(head.contains("Cache-Control: max-age=5"), "{head}");
    let n = note::Note::parse(&cp).unwrap();
    n.verify(std::slice::from_ref(&vkey)).unwrap();
    let c = note::Checkpoint::parse(n.text()).unwrap();
    assert_eq!(c.size(), ENTRIES as u64);

    // A hash tile; an entry bundle without a capability.
    let (status, _, tile) = get(b.addr, &format!("/{T}/tile/0/000"));
    assert_eq!(status, 200);
    assert_eq!(tile.len(), 256 * 32);
    let (status, _, _) = get(b.addr, &format!("/{T}/tile/0/001.p/44"));
    assert_eq!(status, 200);
    let (status, head, _) = get(b.addr, &format!("/{T}/tile/entries/000"));
    assert!(status == 401 || status == 403, "{head}");
    // A tile that does not exist (yet).
    let (status, _, _) = get(b.addr, &format!("/{T}/tile/0/005"));
    assert_eq!(status, 404);

    // Bad requests.
    let (status, _, _) = exchange(b.addr, b"GET\x01 nonsense\r\n\r\n");
    assert_eq!(status, 400);
    let (status, _, _) = exchange(b.addr, b"BREW /x HTTP/1.1\r\n\r\n");
    assert_eq!(status, 405);
    let big = format!(
        "GET /{T}/checkpoint HTTP/1.1\r\nX-Big: {}\r\n\r\n",
        "a".repeat(tiles_http::MAX_HEAD)
    );
    let (status, head, _) = exchange(b.addr, big.as_bytes());
    assert_eq!(status, 431);
    assert!(head.contains("Connection: close"), "{head}");
    let (status, _, _) = get(b.addr, "/nobody/checkpoint");
    assert_eq!(status, 404);
    let (status, _, _) = get(b.addr, &format!("/{T}/issuer"));
    assert_eq!(status, 404);
    let (status, _, _) = get(b.addr, "/");
    assert_eq!(status, 404);

    // A tiles walk over HTTP verifies the checkpoint's root.
    let mut reader = Http {
        addr: b.addr,
        tenant: T,
        conn: None,
        refused_bundles: 0,
    };
    let tree = tlog::verify_tree(&mut reader, &cp, &[vkey]).unwrap();
    assert_eq!(tree.size, ENTRIES as u64);
    assert_eq!(&tree.root, c.root());
    // tile/0/000, tile/0/001.p/44 and tile/1/000.p/1.
    assert_eq!(tree.hash_tiles, 3);
    assert!(tree.first_missing_bundle.is_some());
    assert!(reader.refused_bundles >= 1);
}

#[test]
fn unsigned_http_is_refused_without_public_metadata() {
    let b = start(false);
    let (status, head, _) = get(b.addr, &format!("/{T}/checkpoint"));
    assert_eq!(status, 401, "{head}");
    let (status, _, _) = get(b.addr, &format!("/{T}/tile/0/000"));
    assert_eq!(status, 401);
}

#[test]
fn a_slow_client_does_not_hold_up_the_others() {
    let b = start(true);
    // Half a request head, then nothing: the next client is served meanwhile.
    let mut slow = TcpStream::connect(b.addr).unwrap();
    slow.write_all(b"GET /").unwrap();
    let (status, _, _) = get(b.addr, &format!("/{T}/checkpoint"));
    assert_eq!(status, 200);
    drop(slow);
}

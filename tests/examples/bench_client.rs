//! Appends per second through a running box, end to end (client protocol over its socket):
//! `bench_client ADDR TENANT REQUESTS BATCH [WINDOW]` makes REQUESTS append requests of BATCH
//! entries (64 bytes each) and prints one line of figures: one request at a time, or with
//! WINDOW requests in flight (`Client::append_pipelined`, which the wire stores together: group
//! commit). ADDR: `unix:PATH` or `HOST:PORT` (what `make sim` / `make qemu` print). A
//! benchmark, not a test (tests/bench-system.sh).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::time::Instant;

use protocol::client::Client;

trait Stream: Read + Write {}
impl<T: Read + Write> Stream for T {}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (addr, tenant, requests, batch, window) = match &args[..] {
        [a, t, r, b] => (a, t, r, b, None),
        [a, t, r, b, w] => (a, t, r, b, Some(w.parse::<usize>().unwrap())),
        _ => {
            eprintln!("usage: bench_client ADDR TENANT REQUESTS BATCH [WINDOW]");
            std::process::exit(2);
        }
    };
    let requests: usize = requests.parse().unwrap();
    let batch: usize = batch.parse().unwrap();
    let stream: Box<dyn Stream> = match addr.strip_prefix("unix:") {
        Some(path) => Box::new(UnixStream::connect(path).unwrap()),
        None => {
            let s = TcpStream::connect(addr).unwrap();
            s.set_nodelay(true).unwrap();
            Box::new(s)
        }
    };
    let mut c = Client::new(stream);
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
    println!(
        "{:.0} appends/s ({requests} requests x {batch} entries in {secs:.2} s, {:.2} ms/request{flight})",
        n / secs,
        secs * 1000.0 / requests as f64
    );
}

//! Appends per second through a running box, end to end (client protocol over its socket):
//! `bench_client ADDR TENANT REQUESTS BATCH` makes REQUESTS append requests of BATCH entries
//! (64 bytes each) and prints one line of figures. ADDR: `unix:PATH` or `HOST:PORT`
//! (what `make sim` / `make qemu` print). A benchmark, not a test (tests/bench-system.sh).

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
    let [addr, tenant, requests, batch] = &args[..] else {
        eprintln!("usage: bench_client ADDR TENANT REQUESTS BATCH");
        std::process::exit(2);
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
    for _ in 0..requests {
        let idx = c.append(tenant, &entries).unwrap();
        assert_eq!(idx.len(), batch);
    }
    let secs = start.elapsed().as_secs_f64();
    let n = (requests * batch) as f64;
    println!(
        "{:.0} appends/s ({requests} requests x {batch} entries in {secs:.2} s, {:.2} ms/request)",
        n / secs,
        secs * 1000.0 / requests as f64
    );
}

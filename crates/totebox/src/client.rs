//! `totebox client --connect ADDR ...`: talks to the box's wire PD (the simulator's socket, or
//! QEMU's virtio-console socket) with the client protocol (crates/protocol).
//!
//! `ADDR` is what `make sim` / `make qemu` print: `HOST:PORT`, or `unix:PATH` (a path with a
//! `/` works too).

use std::io::{BufRead, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use protocol::client::Client;

/// A connected stream of either kind.
pub enum Stream {
    /// TCP.
    Tcp(TcpStream),
    /// A UNIX socket.
    Unix(UnixStream),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Stream::Tcp(s) => s.flush(),
            Stream::Unix(s) => s.flush(),
        }
    }
}

/// How long to wait for an answer before giving up (appends wait for a durable checkpoint).
const TIMEOUT: Duration = Duration::from_secs(60);

/// Connects to `addr`.
pub fn connect(addr: &str) -> Result<Client<Stream>, String> {
    let stream = if let Some(path) = addr
        .strip_prefix("unix:")
        .or(addr.contains('/').then_some(addr))
    {
        let s = UnixStream::connect(path).map_err(|e| format!("connect {addr}: {e}"))?;
        s.set_read_timeout(Some(TIMEOUT))
            .map_err(|e| e.to_string())?;
        Stream::Unix(s)
    } else {
        let s = TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
        s.set_read_timeout(Some(TIMEOUT))
            .map_err(|e| e.to_string())?;
        let _ = s.set_nodelay(true);
        Stream::Tcp(s)
    };
    Ok(Client::new(stream))
}

fn fail(what: &str) -> impl Fn(protocol::client::ClientError) -> String + '_ {
    move |e| format!("client {what}: {e}")
}

/// Appends each line of stdin as one entry; prints each assigned index.
pub fn append(addr: &str, tenant: &str) -> Result<(), String> {
    let mut entries = Vec::new();
    for line in std::io::stdin().lock().lines() {
        entries.push(line.map_err(|e| format!("client append: stdin: {e}"))?);
    }
    let mut c = connect(addr)?;
    let idx = c.append(tenant, &entries).map_err(fail("append"))?;
    let mut out = std::io::stdout().lock();
    for i in idx {
        writeln!(out, "{i}").map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Prints committed entries from `since` (at most `max`), one per line: `index<TAB>entry`.
pub fn read(addr: &str, tenant: &str, since: u64, max: u64) -> Result<(), String> {
    let mut c = connect(addr)?;
    let got = c.read(tenant, since, max).map_err(fail("read"))?;
    let mut out = std::io::stdout().lock();
    for (i, e) in got {
        writeln!(out, "{i}\t{}", String::from_utf8_lossy(&e)).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Prints the latest signed checkpoint.
pub fn checkpoint(addr: &str, tenant: &str) -> Result<(), String> {
    let mut c = connect(addr)?;
    let note = c.checkpoint(tenant).map_err(fail("checkpoint"))?;
    std::io::stdout()
        .lock()
        .write_all(&note)
        .map_err(|e| e.to_string())
}

/// Writes the tenant's tlog-tiles directory (checkpoint, every tile and entry bundle of its
/// size) to `dir`, and `dir/vkey` with the log's verifier key as the box states it (check it
/// against the key you hold before trusting it). `totebox log verify DIR --vkey KEY` accepts the
/// directory.
pub fn export(addr: &str, tenant: &str, dir: &Path) -> Result<(), String> {
    let mut c = connect(addr)?;
    let hello = c.hello(tenant).map_err(fail("export"))?;
    let cp = c
        .get_object(tenant, "checkpoint")
        .map_err(fail("export"))?
        .ok_or("client export: the log has no checkpoint")?;
    let text = String::from_utf8_lossy(&cp);
    let size: u64 = text
        .lines()
        .nth(1)
        .and_then(|l| l.parse().ok())
        .ok_or("client export: malformed checkpoint")?;
    let write = |rel: &str, data: &[u8]| -> Result<(), String> {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        std::fs::write(&path, data).map_err(|e| format!("{}: {e}", path.display()))
    };
    let mut n = 0;
    for tile in tlog::tile::tiles_for_size(size).chain(tlog::tile::entry_bundles_for_size(size)) {
        let path = tile.path();
        let data = c
            .get_object(tenant, path.as_str())
            .map_err(fail("export"))?
            .ok_or_else(|| format!("client export: {} missing", path.as_str()))?;
        write(path.as_str(), &data)?;
        n += 1;
    }
    write("checkpoint", &cp)?;
    write("vkey", format!("{}\n", hello.vkey).as_bytes())?;
    println!(
        "exported {} ({size} entries, {n} tiles) to {}",
        hello.origin,
        dir.display()
    );
    Ok(())
}

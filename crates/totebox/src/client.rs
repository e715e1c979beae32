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
/// size) to `dir`, and `dir/vkey` with the log's verifier key. With `pinned` (`--vkey`: the key
/// or a file holding it) the box's key must be that one; without it the key the box states is
/// used, with a warning. The checkpoint is verified with that key before anything is fetched,
/// and the walk is bounded by its signed size. `totebox log verify DIR --vkey KEY` accepts the
/// directory.
pub fn export(addr: &str, tenant: &str, dir: &Path, pinned: Option<&str>) -> Result<(), String> {
    let mut c = connect(addr)?;
    export_from(&mut c, tenant, dir, pinned)
}

/// [`export`] over a connected client.
pub fn export_from<S: Read + Write>(
    c: &mut Client<S>,
    tenant: &str,
    dir: &Path,
    pinned: Option<&str>,
) -> Result<(), String> {
    let hello = c.hello(tenant).map_err(fail("export"))?;
    let stated = note::Verifier::from_vkey(&hello.vkey)
        .map_err(|e| format!("client export: the box's key for {tenant} is malformed: {e}"))?;
    let verifier = match pinned {
        Some(arg) => {
            let v = crate::keys::verifier_arg(arg)?;
            if v.vkey() != stated.vkey() {
                return Err(format!(
                    "client export: the box's key for {tenant} ({}) is not the pinned --vkey ({})",
                    stated.vkey(),
                    v.vkey()
                ));
            }
            v
        }
        None => {
            eprintln!(
                "client export: warning: trusting the key the box states for {tenant} (pin it with --vkey)"
            );
            stated
        }
    };
    let cp = c
        .get_object(tenant, "checkpoint")
        .map_err(fail("export"))?
        .ok_or("client export: the log has no checkpoint")?;
    let note = note::Note::parse(&cp).map_err(|e| format!("client export: checkpoint: {e}"))?;
    note.verify(std::slice::from_ref(&verifier))
        .map_err(|e| format!("client export: checkpoint not signed by the log's key: {e}"))?;
    let checkpoint = note::Checkpoint::parse(note.text())
        .map_err(|e| format!("client export: malformed checkpoint: {e}"))?;
    if checkpoint.origin() != verifier.name() {
        return Err(format!(
            "client export: checkpoint is for {}, not {}",
            checkpoint.origin(),
            verifier.name()
        ));
    }
    let size = checkpoint.size();
    let write = |rel: &str, data: &[u8]| -> Result<(), String> {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        std::fs::write(&path, data).map_err(|e| format!("{}: {e}", path.display()))
    };
    let mut n = 0;
    // Bounded by the signed size: every tile of it, each of which the box must produce.
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
    write("vkey", format!("{}\n", verifier.vkey()).as_bytes())?;
    println!(
        "exported {} ({size} entries, {n} tiles) to {}",
        hello.origin,
        dir.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;
    use protocol::frame::encode_frame_vec;
    use protocol::{Body, Decoder, Request, Response, MAX_ENCODED, MAX_PAYLOAD};
    use std::collections::VecDeque;

    /// A box that states `vkey` and serves `checkpoint`; every other object is absent.
    struct FakeBox {
        decoder: Decoder<Vec<u8>>,
        inbox: VecDeque<u8>,
        vkey: String,
        checkpoint: Vec<u8>,
        fetched: usize,
    }

    impl Write for FakeBox {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let mut reqs = Vec::new();
            self.decoder.feed(buf, |f| {
                if let Ok(p) = f {
                    reqs.push(p.to_vec());
                }
            });
            for p in reqs {
                let Ok(req) = Request::decode(&p) else {
                    continue;
                };
                let body = match req.op {
                    protocol::Op::Hello => Body::Hello {
                        origin: "totebox-envelope-b/corporate",
                        vkey: &self.vkey,
                        size: 0,
                    },
                    protocol::Op::GetObject {
                        path: "checkpoint", ..
                    } => Body::Object {
                        total: self.checkpoint.len() as u64,
                        offset: 0,
                        data: &self.checkpoint,
                    },
                    _ => {
                        self.fetched += 1;
                        Body::Error {
                            code: protocol::ErrorCode::NotFound,
                        }
                    }
                };
                let mut out = vec![0u8; MAX_PAYLOAD];
                let n = Response { id: req.id, body }.encode(&mut out).unwrap();
                self.inbox.extend(encode_frame_vec(&out[..n]));
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Read for FakeBox {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = buf.len().min(self.inbox.len());
            for (d, s) in buf.iter_mut().zip(self.inbox.drain(..n)) {
                *d = s;
            }
            Ok(n)
        }
    }

    fn fake(vkey: &str, checkpoint: &[u8]) -> Client<FakeBox> {
        Client::new(FakeBox {
            decoder: Decoder::new(vec![0u8; MAX_ENCODED]),
            inbox: VecDeque::new(),
            vkey: vkey.to_string(),
            checkpoint: checkpoint.to_vec(),
            fetched: 0,
        })
    }

    const ORIGIN: &str = "totebox-envelope-b/corporate";
    const ROOT: &str = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";

    fn signed(signer: &note::Signer, size: u64) -> Vec<u8> {
        signer
            .sign(&format!("{ORIGIN}\n{size}\n{ROOT}\n"))
            .unwrap()
            .into_bytes()
    }

    #[test]
    fn an_unsigned_huge_checkpoint_is_refused_before_any_walk() {
        let box_key = note::Signer::generate(ORIGIN, &[1; 32]).unwrap();
        let forged = format!("{ORIGIN}\n{}\n{ROOT}\n\n", 1u64 << 63);
        let dir = tempfile::tempdir().unwrap();
        let mut c = fake(&box_key.verifier().vkey(), forged.as_bytes());
        let e = export_from(&mut c, "corporate", dir.path(), None).unwrap_err();
        assert!(e.starts_with("client export: checkpoint"), "{e}");
        assert!(!e.contains('\n'));
        assert_eq!(c.stream_mut().fetched, 0);
        // Signed by another key than the box states: refused too.
        let other = note::Signer::generate(ORIGIN, &[2; 32]).unwrap();
        let mut c = fake(&box_key.verifier().vkey(), &signed(&other, 1 << 63));
        let e = export_from(&mut c, "corporate", dir.path(), None).unwrap_err();
        assert!(e.contains("not signed by the log's key"), "{e}");
        assert_eq!(c.stream_mut().fetched, 0);
    }

    #[test]
    fn a_pinned_key_refuses_a_box_stating_another() {
        let real = note::Signer::generate(ORIGIN, &[1; 32]).unwrap();
        let impostor = note::Signer::generate(ORIGIN, &[2; 32]).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut c = fake(&impostor.verifier().vkey(), &signed(&impostor, 3));
        let pinned = real.verifier().vkey();
        let e = export_from(&mut c, "corporate", dir.path(), Some(&pinned)).unwrap_err();
        assert!(e.contains("is not the pinned --vkey"), "{e}");
        assert_eq!(c.stream_mut().fetched, 0);
        // The right key, a verified checkpoint: the walk goes as far as the box serves.
        let mut c = fake(&pinned, &signed(&real, 3));
        let e = export_from(&mut c, "corporate", dir.path(), Some(&pinned)).unwrap_err();
        assert!(e.contains("missing"), "{e}");
        assert_eq!(c.stream_mut().fetched, 1);
    }
}

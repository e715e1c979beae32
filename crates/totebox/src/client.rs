//! `totebox client --connect ADDR ...`: talks to the box's wire PD (the simulator's socket, or
//! QEMU's virtio-console socket) with the client protocol (crates/protocol).
//!
//! `ADDR` is what `make sim` / `make qemu` print: `HOST:PORT`, or `unix:PATH` (a path with a
//! `/` works too).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use protocol::client::{Client, ClientError};
use protocol::{Body, Op, Response};
use tlog::Storage;

use crate::dir::DirStorage;
use crate::fsio;
use crate::trust::{self, StateDir};

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

/// Where to connect and how to sign: `--connect`, and `--skey`/`--cap`/`--archive`.
#[derive(Debug)]
pub struct Connect {
    /// `HOST:PORT` or `unix:PATH`.
    pub addr: String,
    /// Signs every request when given (`--skey`); without it requests go unsigned.
    pub signing: Option<crate::access_cmd::Signing>,
}

impl Connect {
    /// A connected client that signs its requests if `--skey` was given.
    fn open(&self) -> Result<Client<Stream>, String> {
        let mut c = connect(&self.addr)?;
        if let Some(s) = &self.signing {
            c.set_authorizer(Box::new(s.clone()));
        }
        Ok(c)
    }

    /// `max` cut so a read stays within the capability's rows (the box refuses a read that
    /// starts past them, and would cut one that runs past).
    fn read_max(&self, since: u64, max: u64) -> u64 {
        match self.signing.as_ref().and_then(|s| s.rows_end()) {
            Some(end) => max.min(end.saturating_sub(since)),
            None => max,
        }
    }
}

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

fn fail(what: &str) -> impl Fn(ClientError) -> String + '_ {
    move |e| format!("client {what}: {e}")
}

/// The most bytes `client append` reads from stdin (as `log build`): the input is read whole
/// and every entry checked before anything is sent.
const MAX_INPUT: u64 = 1 << 30;

/// The log's verifier key: the one the box states for `tenant` (`Hello`), which must be
/// `pinned` if given (`--vkey`: the key or a file holding it). Without a pin and with `warn`,
/// says on stderr that the box's word is taken for it.
fn box_key<S: Read + Write>(
    c: &mut Client<S>,
    what: &str,
    tenant: &str,
    pinned: Option<&str>,
    warn: bool,
) -> Result<note::Verifier, String> {
    let hello = c.hello(tenant).map_err(fail(what))?;
    let stated = note::Verifier::from_vkey(&hello.vkey)
        .map_err(|e| format!("client {what}: the box's key for {tenant} is malformed: {e}"))?;
    match pinned {
        Some(arg) => {
            let v = crate::keys::verifier_arg(arg)?;
            if v.vkey() != stated.vkey() {
                return Err(format!(
                    "client {what}: the box's key for {tenant} ({}) is not the pinned --vkey ({})",
                    stated.vkey(),
                    v.vkey()
                ));
            }
            Ok(v)
        }
        None => {
            if warn {
                eprintln!(
                    "client {what}: warning: trusting the key the box states for {tenant} (pin it with --vkey)"
                );
            }
            Ok(stated)
        }
    }
}

/// Which log of the box: a tenant's (`GetObject`) or the audit log (`AuditObject`, ADMIN
/// paired for `*` only).
#[derive(Debug, Clone, Copy)]
enum Log<'a> {
    Tenant(&'a str),
    Audit,
}

impl Log<'_> {
    /// The whole object `path` of this log, at most `max` bytes; `None` if absent.
    fn get<S: Read + Write>(
        self,
        c: &mut Client<S>,
        path: &str,
        max: u64,
    ) -> Result<Option<Vec<u8>>, ClientError> {
        match self {
            Log::Tenant(t) => c.get_object_max(t, path, max),
            Log::Audit => audit_object_max(c, path, max),
        }
    }
}

/// Sends `op` and hands the answer's body to `f` (`None`: not the answer expected); an error
/// answer is [`ClientError::Remote`]. (What `Client`'s own calls do, for the archive-wide ops.)
fn call_with<S: Read + Write, T>(
    c: &mut Client<S>,
    tenant: &str,
    op: Op<'_>,
    f: impl FnOnce(Body<'_>) -> Option<T>,
) -> Result<T, ClientError> {
    let payload = c.call_raw(tenant, op)?;
    let resp = Response::decode(&payload).map_err(|e| ClientError::Unexpected(format!("{e}")))?;
    match resp.body {
        Body::Error { code } => Err(ClientError::Remote(code)),
        body => {
            let what = format!("{body:?}");
            f(body).ok_or(ClientError::Unexpected(what))
        }
    }
}

/// The archive's identity ([`Op::Identity`], unsigned): its verifier key string and the proof
/// over `challenge`.
pub fn identity<S: Read + Write>(
    c: &mut Client<S>,
    challenge: [u8; 16],
) -> Result<(String, Vec<u8>), ClientError> {
    call_with(c, "", Op::Identity { challenge }, |b| match b {
        Body::Identity { archive, proof } => Some((archive.to_string(), proof.to_vec())),
        _ => None,
    })
}

/// Sends a signed pairing change note ([`Op::PairChange`], archive-wide); `Ok` once the box
/// says it is durable.
pub fn pair_change<S: Read + Write>(c: &mut Client<S>, change: &[u8]) -> Result<(), ClientError> {
    call_with(c, "", Op::PairChange { change }, |b| {
        matches!(b, Body::Pong).then_some(())
    })
}

/// A whole object of the audit log ([`Op::AuditObject`], in chunks), at most `max` bytes;
/// `None` if absent. As `Client::get_object_max`: a box stating more than `max`, changing the
/// size it stated, or sending chunks out of order or past it, is refused.
pub fn audit_object_max<S: Read + Write>(
    c: &mut Client<S>,
    path: &str,
    max: u64,
) -> Result<Option<Vec<u8>>, ClientError> {
    c.fetch_object_max("", path, max, |offset| Op::AuditObject { path, offset })
}

/// The box's public hash tiles of a log, fetched on demand, each bounded by a hash tile's
/// size: what a consistency proof is built from.
struct BoxTiles<'a, S> {
    c: &'a mut Client<S>,
    log: Log<'a>,
}

impl<S: Read + Write> tlog::ObjectReader for BoxTiles<'_, S> {
    type Error = String;

    fn read_object(&mut self, path: &str, out: &mut Vec<u8>) -> Result<bool, String> {
        out.clear();
        match self
            .log
            .get(self.c, path, fsio::MAX_TILE)
            .map_err(|e| e.to_string())?
        {
            Some(data) => {
                *out = data;
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

/// Verifies `note` (or, if `None`, the box's latest checkpoint) with the log's key and
/// accepts it only if it extends the checkpoint remembered for the log ([`trust::advance`]);
/// returns it and its bytes.
fn check_latest<S: Read + Write>(
    c: &mut Client<S>,
    what: &str,
    tenant: &str,
    verifier: &note::Verifier,
    state: &StateDir,
    note: Option<Vec<u8>>,
) -> Result<(note::Checkpoint, Vec<u8>), String> {
    let note = match note {
        Some(n) => n,
        None => c.checkpoint(tenant).map_err(fail(what))?,
    };
    let log = Log::Tenant(tenant);
    let cp = trust::advance(state, verifier, &note, &mut BoxTiles { c, log })
        .map_err(|e| format!("client {what}: {e}"))?;
    Ok((cp, note))
}

/// The lines of `input`, each without its `\n` (and a `\r` before it, as `BufRead::lines`
/// strips); a final line without a newline still counts.
fn split_lines(input: &[u8]) -> Vec<&[u8]> {
    if input.is_empty() {
        return Vec::new();
    }
    let body = input.strip_suffix(b"\n").unwrap_or(input);
    body.split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .collect()
}

/// Appends each line of stdin as one entry; prints each assigned index, then checks the box's
/// checkpoint that commits them against the one remembered.
pub fn append(conn: &Connect, tenant: &str, state: &StateDir) -> Result<(), String> {
    let mut input = Vec::new();
    std::io::stdin()
        .lock()
        .take(MAX_INPUT + 1)
        .read_to_end(&mut input)
        .map_err(|e| format!("client append: stdin: {e}"))?;
    if input.len() as u64 > MAX_INPUT {
        return Err(format!(
            "client append: stdin is over {MAX_INPUT} bytes; append in batches"
        ));
    }
    let entries = split_lines(&input);
    let mut c = conn.open()?;
    append_on(
        &mut c,
        tenant,
        &entries,
        state,
        &mut std::io::stdout().lock(),
    )
}

/// [`append`] of `entries` over a connected client, printing indices to `out`.
pub fn append_on<S: Read + Write>(
    c: &mut Client<S>,
    tenant: &str,
    entries: &[&[u8]],
    state: &StateDir,
    out: &mut impl Write,
) -> Result<(), String> {
    // Every entry checked before anything is sent (append_all checks again, by index).
    if let Some((n, e)) = entries
        .iter()
        .enumerate()
        .find(|(_, e)| e.len() > protocol::MAX_ENTRY)
    {
        return Err(format!(
            "client append: line {}: entry of {} bytes is over the {}-byte limit; nothing was sent",
            n + 1,
            e.len(),
            protocol::MAX_ENTRY
        ));
    }
    let verifier = box_key(c, "append", tenant, None, false)?;
    let print = |out: &mut dyn Write, idx: &[u64]| -> Result<(), String> {
        for i in idx {
            writeln!(out, "{i}").map_err(|e| format!("client append: stdout: {e}"))?;
        }
        out.flush()
            .map_err(|e| format!("client append: stdout: {e}"))
    };
    let appended = match c.append_all(tenant, entries) {
        Ok(a) => a,
        Err(f) => {
            let stored = f.stored.indices.len();
            print(out, &f.stored.indices)?;
            let rest = entries.len() - stored;
            let fate = match f.error {
                ClientError::Io(_) => {
                    "were not acknowledged (the box may have stored the first request of them)"
                }
                _ => "were not stored",
            };
            return Err(format!(
                "client append: {stored} of {} entries stored (their indices printed); the other \
                 {rest}, from line {}, {fate}: {}",
                entries.len(),
                stored + 1,
                f.error
            ));
        }
    };
    print(out, &appended.indices)?;
    if entries.is_empty() {
        return Ok(());
    }
    let (cp, _) = check_latest(c, "append", tenant, &verifier, state, None)?;
    if cp.size() < appended.size {
        return Err(format!(
            "client append: the box acknowledged entries committed at size {}, but its latest \
             checkpoint has size {}",
            appended.size,
            cp.size()
        ));
    }
    Ok(())
}

/// Prints committed entries from `since` (at most `max`), one per line: `index<TAB>entry`,
/// once the box's checkpoint covering them is checked against the one remembered.
pub fn read(
    conn: &Connect,
    tenant: &str,
    since: u64,
    max: u64,
    state: &StateDir,
) -> Result<(), String> {
    let mut c = conn.open()?;
    let got = read_on(&mut c, tenant, since, conn.read_max(since, max), state)?;
    let mut out = std::io::stdout().lock();
    for (i, e) in got {
        writeln!(out, "{i}\t{}", String::from_utf8_lossy(&e)).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// [`read`] over a connected client: the entries, after the checkpoint check.
pub fn read_on<S: Read + Write>(
    c: &mut Client<S>,
    tenant: &str,
    since: u64,
    max: u64,
    state: &StateDir,
) -> Result<Vec<(u64, Vec<u8>)>, String> {
    let verifier = box_key(c, "read", tenant, None, false)?;
    let got = c.read(tenant, since, max).map_err(fail("read"))?;
    // Fetched after the entries: the box's latest checkpoint covers every committed entry.
    let (cp, _) = check_latest(c, "read", tenant, &verifier, state, None)?;
    if let Some((i, _)) = got.iter().find(|(i, _)| *i >= cp.size()) {
        return Err(format!(
            "client read: the box sent entry {i}, beyond its checkpoint's size {}",
            cp.size()
        ));
    }
    Ok(got)
}

/// Prints the latest signed checkpoint, once checked against the one remembered.
pub fn checkpoint(conn: &Connect, tenant: &str, state: &StateDir) -> Result<(), String> {
    let mut c = conn.open()?;
    let note = checkpoint_on(&mut c, tenant, state)?;
    std::io::stdout()
        .lock()
        .write_all(&note)
        .map_err(|e| e.to_string())
}

/// [`checkpoint`] over a connected client: the note's bytes.
pub fn checkpoint_on<S: Read + Write>(
    c: &mut Client<S>,
    tenant: &str,
    state: &StateDir,
) -> Result<Vec<u8>, String> {
    let verifier = box_key(c, "checkpoint", tenant, None, false)?;
    let (_, note) = check_latest(c, "checkpoint", tenant, &verifier, state, None)?;
    Ok(note)
}

/// Writes the tenant's tlog-tiles directory (checkpoint, every tile and entry bundle of its
/// size) to `dir`, and `dir/vkey` with the log's verifier key. With `pinned` (`--vkey`: the key
/// or a file holding it) the box's key must be that one; without it the key the box states is
/// used, with a warning. The checkpoint is verified with that key, and checked against the one
/// remembered, before anything is fetched or written, and the walk is bounded by its signed
/// size. `dir` must be empty, absent, or hold an export of the same log that the new
/// checkpoint extends (an update): another log's export is never overwritten. `totebox log
/// verify DIR --vkey KEY` accepts the directory.
pub fn export(
    conn: &Connect,
    tenant: &str,
    dir: &Path,
    pinned: Option<&str>,
    state: &StateDir,
) -> Result<(), String> {
    let mut c = conn.open()?;
    export_from(&mut c, tenant, dir, pinned, state)
}

/// What `dir` already holds, for an export of the log `verifier` verifies: `None` if it is
/// empty; the checkpoint of an earlier export of the same log; an error for anything else.
fn existing_export(
    storage: &DirStorage,
    dir: &Path,
    verifier: &note::Verifier,
) -> Result<Option<note::Checkpoint>, String> {
    let shown = dir.display();
    let refuse = |why: String| format!("client export: {shown} {why}: refusing to write into it");
    if storage
        .is_empty()
        .map_err(|e| format!("client export: {e}"))?
    {
        return Ok(None);
    }
    let mut buf = Vec::new();
    if storage
        .read("vkey", &mut buf)
        .map_err(|e| refuse(format!("has an unreadable vkey ({e})")))?
    {
        let text = String::from_utf8_lossy(&buf);
        let theirs = text.lines().next().unwrap_or("").trim_end();
        if theirs != verifier.vkey() {
            return Err(refuse(format!(
                "holds the export of another log (vkey {theirs}, not {})",
                verifier.vkey()
            )));
        }
    }
    if !storage
        .read("checkpoint", &mut buf)
        .map_err(|e| refuse(format!("has an unreadable checkpoint ({e})")))?
    {
        return Err(refuse("is not empty and holds no log checkpoint".into()));
    }
    trust::verified(&buf, verifier)
        .map(Some)
        .map_err(|e| refuse(format!("holds a checkpoint that is not this log's ({e})")))
}

/// [`export`] over a connected client.
pub fn export_from<S: Read + Write>(
    c: &mut Client<S>,
    tenant: &str,
    dir: &Path,
    pinned: Option<&str>,
    state: &StateDir,
) -> Result<(), String> {
    let verifier = box_key(c, "export", tenant, pinned, true)?;
    export_log(c, Log::Tenant(tenant), "export", dir, &verifier, state)
}

/// `client --skey ADMIN --archive VKEY audit export DIR --vkey AUDIT_VKEY`: the audit log's
/// tlog-tiles directory, as [`export`] writes a tenant's (checkpoint verified with the audit
/// log's key and checked against the one remembered first; an update only if it extends the
/// earlier export), fetched with `AuditObject` (an ADMIN paired for `*` only). The key is
/// required: the box states no key for its audit log. `totebox log verify DIR --vkey
/// AUDIT_VKEY` accepts the directory. Records not yet in a checkpoint are not exported.
pub fn audit_export(
    conn: &Connect,
    dir: &Path,
    vkey: &str,
    state: &StateDir,
) -> Result<(), String> {
    let mut c = conn.open()?;
    audit_export_from(&mut c, dir, vkey, state)
}

/// [`audit_export`] over a connected client.
pub fn audit_export_from<S: Read + Write>(
    c: &mut Client<S>,
    dir: &Path,
    vkey: &str,
    state: &StateDir,
) -> Result<(), String> {
    let verifier = crate::keys::verifier_arg(vkey)?;
    export_log(c, Log::Audit, "audit export", dir, &verifier, state)
}

/// Writes `log`'s tlog-tiles directory to `dir` (see [`export`]), its checkpoint verified with
/// `verifier`.
fn export_log<S: Read + Write>(
    c: &mut Client<S>,
    log: Log<'_>,
    what: &str,
    dir: &Path,
    verifier: &note::Verifier,
    state: &StateDir,
) -> Result<(), String> {
    let cp = log
        .get(c, "checkpoint", fsio::MAX_NOTE)
        .map_err(fail(what))?
        .ok_or_else(|| format!("client {what}: the log has no checkpoint"))?;
    let checkpoint = trust::advance(state, verifier, &cp, &mut BoxTiles { c, log })
        .map_err(|e| format!("client {what}: {e}"))?;
    let size = checkpoint.size();
    let mut storage = DirStorage::open(dir).map_err(|e| format!("client {what}: {e}"))?;
    if let Some(old) =
        existing_export(&storage, dir, verifier).map_err(|e| e.replacen("export", what, 1))?
    {
        // An update of an earlier export: only if this checkpoint extends that one.
        tlog::verify::verify_consistency_tiles(
            &mut BoxTiles { c, log },
            old.size(),
            old.root(),
            size,
            checkpoint.root(),
        )
        .map_err(|e| {
            format!(
                "client {what}: {} holds an export ({}) that the box's checkpoint ({}) does not \
                 extend: {e}; refusing to write into it",
                dir.display(),
                trust::describe(old.size(), old.root()),
                trust::describe(size, checkpoint.root())
            )
        })?;
    }
    let mut n = 0;
    // Bounded by the signed size: every tile of it, each of which the box must produce, each
    // at most its format's size. Written once: a different object already at a path is an
    // error, never overwritten.
    for tile in tlog::tile::tiles_for_size(size).chain(tlog::tile::entry_bundles_for_size(size)) {
        let path = tile.path();
        let max = match tile.kind() {
            tlog::TileKind::Entries => fsio::MAX_BUNDLE,
            tlog::TileKind::Hashes(_) => fsio::MAX_TILE,
        };
        let data = log
            .get(c, path.as_str(), max)
            .map_err(fail(what))?
            .ok_or_else(|| format!("client {what}: {} missing", path.as_str()))?;
        storage
            .put(path.as_str(), &data)
            .map_err(|e| format!("client {what}: {}: {e}", dir.display()))?;
        n += 1;
    }
    // The checkpoint last: the directory never names a tree whose tiles are not all there.
    storage
        .set_checkpoint(&cp)
        .and_then(|()| storage.replace("vkey", format!("{}\n", verifier.vkey()).as_bytes()))
        .map_err(|e| format!("client {what}: {}: {e}", dir.display()))?;
    println!(
        "exported {} ({size} entries, {n} tiles) to {}",
        checkpoint.origin(),
        dir.display()
    );
    Ok(())
}

/// The warning threshold of `client status`, in percent of a quota (psdb's console warns from
/// the same figure).
const WARN_PERCENT: u64 = 90;

/// `used` in whole percent of `quota`, rounded down (0 for no quota).
fn percent(used: u64, quota: u64) -> u64 {
    if quota == 0 {
        return 0;
    }
    (u128::from(used) * 100 / u128::from(quota)).min(u128::from(u64::MAX)) as u64
}

/// Prints how much of its storage the tenant uses, and the audit log: a table of used, quota
/// and percent, the volume's free bytes, and a `WARNING:` line for each quota at 90% or more.
/// Metadata the box states (the size is not a signed checkpoint's: `checkpoint` verifies that).
pub fn status(conn: &Connect, tenant: &str) -> Result<(), String> {
    let mut c = conn.open()?;
    status_on(&mut c, tenant, &mut std::io::stdout().lock())
}

/// [`status`] over a connected client, printing to `out`.
pub fn status_on<S: Read + Write>(
    c: &mut Client<S>,
    tenant: &str,
    out: &mut impl Write,
) -> Result<(), String> {
    let s = c.status(tenant).map_err(fail("status"))?;
    let rows = [
        (format!("{tenant} disk"), s.disk_used, s.disk_quota),
        (format!("{tenant} index"), s.index_used, s.index_quota),
        (
            "audit disk".to_string(),
            s.audit_disk_used,
            s.audit_disk_quota,
        ),
    ];
    let width = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    let mut text = format!(
        "tenant {tenant}: {} entries (as the box states it)\n{:width$}  {:>14}  {:>14}  {:>5}\n",
        s.size, "", "used", "quota", "used%"
    );
    for (what, used, quota) in &rows {
        text.push_str(&format!(
            "{what:width$}  {used:>14}  {quota:>14}  {:>4}%\n",
            percent(*used, *quota)
        ));
    }
    text.push_str(&format!("volume free: {} bytes\n", s.volume_free));
    if s.damaged {
        text.push_str(&format!(
            "DAMAGED: {tenant}'s stored log is damaged and takes no more writes (see the box's console)\n"
        ));
    }
    for (what, used, quota) in &rows {
        let p = percent(*used, *quota);
        if p >= WARN_PERCENT {
            text.push_str(&format!(
                "WARNING: {what} at {p}% of its quota ({used}/{quota} bytes)\n"
            ));
        }
    }
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| format!("client status: stdout: {e}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;
    use protocol::frame::encode_frame_vec;
    use protocol::{
        Body, Decoder, ErrorCode, Request, Response, MAX_CHUNK, MAX_ENCODED, MAX_PAYLOAD,
    };
    use std::collections::{BTreeMap, VecDeque};

    /// A box that states `vkey` and serves `checkpoint` and `objects` (a log's tiles and
    /// bundles) for any tenant, appends nothing. Counts the objects asked for besides the
    /// checkpoint.
    struct FakeBox {
        decoder: Decoder<Vec<u8>>,
        inbox: VecDeque<u8>,
        vkey: String,
        checkpoint: Vec<u8>,
        objects: BTreeMap<String, Vec<u8>>,
        entries: Vec<Vec<u8>>,
        /// Append requests still to succeed; later ones fail with `Storage`.
        appends_left: usize,
        fetched: usize,
        /// `AuditObject` requests served (the same objects, tenant `""` only).
        audit_calls: usize,
        /// Each `PairChange`'s note and the authorization it came with.
        changes: Vec<(Vec<u8>, Vec<u8>)>,
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
                let mut encoded = vec![0u8; MAX_CHUNK];
                let not_found = Body::Error {
                    code: ErrorCode::NotFound,
                };
                let chunk = |data: &'_ [u8], offset: u64| {
                    let from = (offset as usize).min(data.len());
                    let to = (from + MAX_CHUNK).min(data.len());
                    (data.len() as u64, from, to)
                };
                let body = match req.op {
                    Op::Hello => Body::Hello {
                        origin: ORIGIN,
                        vkey: &self.vkey,
                        size: 0,
                    },
                    Op::Checkpoint => Body::Checkpoint {
                        note: &self.checkpoint,
                    },
                    Op::Append { entries } if self.appends_left > 0 => {
                        self.appends_left -= 1;
                        let first = self.entries.len() as u64;
                        for e in protocol::entries(entries) {
                            self.entries.push(e.unwrap().to_vec());
                        }
                        Body::Appended {
                            first,
                            count: (self.entries.len() as u64 - first) as u32,
                            size: self.entries.len() as u64,
                        }
                    }
                    Op::Append { .. } => Body::Error {
                        code: ErrorCode::Storage,
                    },
                    Op::Read { since, max } => {
                        let (mut len, mut n) = (0, since as usize);
                        while n < self.entries.len()
                            && n - (since as usize) < max as usize
                            && protocol::push_entry(&mut encoded, &mut len, &self.entries[n])
                        {
                            n += 1;
                        }
                        Body::Entries {
                            first: since,
                            entries: &encoded[..len],
                        }
                    }
                    Op::GetObject {
                        path: "checkpoint",
                        offset,
                    } => {
                        let (total, from, to) = chunk(&self.checkpoint, offset);
                        Body::Object {
                            total,
                            offset,
                            data: &self.checkpoint[from..to],
                        }
                    }
                    Op::GetObject { path, offset } => {
                        if offset == 0 {
                            self.fetched += 1;
                        }
                        match self.objects.get(path) {
                            Some(data) => {
                                let (total, from, to) = chunk(data, offset);
                                Body::Object {
                                    total,
                                    offset,
                                    data: &data[from..to],
                                }
                            }
                            None => not_found,
                        }
                    }
                    Op::AuditObject { .. } if !req.tenant.is_empty() => Body::Error {
                        code: ErrorCode::BadRequest,
                    },
                    Op::AuditObject { path, offset } => {
                        self.audit_calls += 1;
                        let data = if path == "checkpoint" {
                            Some(&self.checkpoint)
                        } else {
                            self.objects.get(path)
                        };
                        match data {
                            Some(data) => {
                                let (total, from, to) = chunk(data, offset);
                                Body::Object {
                                    total,
                                    offset,
                                    data: &data[from..to],
                                }
                            }
                            None => not_found,
                        }
                    }
                    Op::PairChange { change } => {
                        self.changes
                            .push((change.to_vec(), req.capability.to_vec()));
                        Body::Pong
                    }
                    Op::Status => Body::Status {
                        size: self.entries.len() as u64,
                        disk_used: 950,
                        disk_quota: 1000,
                        index_used: 5,
                        index_quota: 100,
                        volume_free: 4096,
                        audit_disk_used: 0,
                        audit_disk_quota: 0,
                        damaged: false,
                    },
                    _ => not_found,
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
            objects: BTreeMap::new(),
            entries: Vec::new(),
            appends_left: 0,
            fetched: 0,
            audit_calls: 0,
            changes: Vec::new(),
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

    fn key(seed: u8) -> note::Signer {
        note::Signer::generate(ORIGIN, &[seed; 32]).unwrap()
    }

    /// A box serving a real log of `size` entries signed by `signer`; `fork_at` replaces that
    /// entry (another history from there on).
    fn log_box(signer: &note::Signer, size: u64, fork_at: Option<u64>) -> Client<FakeBox> {
        let mut log = tlog::Log::create(tlog::MemStorage::new(), ORIGIN, signer.clone()).unwrap();
        let mut entries = Vec::new();
        for i in 0..size {
            let e = if Some(i) == fork_at {
                b"another history".to_vec()
            } else {
                format!("entry {i}").into_bytes()
            };
            log.append(&e).unwrap();
            entries.push(e);
        }
        log.checkpoint().unwrap();
        let storage = log.into_storage();
        let mut c = fake(
            &signer.verifier().vkey(),
            storage.latest_checkpoint().unwrap(),
        );
        c.stream_mut().objects = storage.objects().clone();
        c.stream_mut().entries = entries;
        c
    }

    struct Env {
        _tmp: tempfile::TempDir,
        state: StateDir,
        root: PathBuf,
    }

    fn env() -> Env {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        let state = StateDir::locate(Some(&root.join("state"))).unwrap();
        Env {
            _tmp: tmp,
            state,
            root,
        }
    }

    use std::path::PathBuf;

    #[test]
    fn audit_export_fetches_the_audit_log_with_audit_object_and_it_verifies() {
        let e = env();
        let k = key(7);
        let mut c = log_box(&k, 300, None);
        let dir = e.root.join("audit-export");
        let vkey = k.verifier().vkey();
        audit_export_from(&mut c, &dir, &vkey, &e.state).unwrap();
        // Every object through AuditObject, none through a tenant's GetObject.
        assert_eq!(c.stream_mut().fetched, 0);
        assert!(c.stream_mut().audit_calls >= 3);
        crate::log_cmd::verify(&crate::log_cmd::Place::Dir(dir.clone()), &vkey, false).unwrap();
        // Another key refuses the box's checkpoint before anything else is fetched.
        let mut c = log_box(&k, 300, None);
        let other = key(8).verifier().vkey();
        let err = audit_export_from(&mut c, &e.root.join("x"), &other, &e.state).unwrap_err();
        assert!(err.starts_with("client audit export:"), "{err}");
        assert_eq!(c.stream_mut().audit_calls, 1);
    }

    #[test]
    fn a_pair_change_is_sent_archive_wide_in_a_signed_request_the_archive_grants() {
        use access::{Change, PairingSet, PairingType, SignedRequest, Tenants};
        let admin = note::Signer::generate("admin", &[3; 32]).unwrap();
        let archive = note::Signer::generate("archive", &[4; 32])
            .unwrap()
            .verifier();
        let bob = note::Signer::generate("bob", &[5; 32]).unwrap().verifier();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let change = Change::Add {
            kind: PairingType::Input,
            tenants: Tenants::new(&["corporate"]).unwrap(),
        };
        let note =
            crate::access_cmd::change_note(&admin, &archive, change, bob.clone(), now, [9; 16])
                .unwrap();
        let mut c = fake("unused", b"");
        c.set_authorizer(Box::new(crate::access_cmd::Signing::from_parts(
            admin.clone(),
            archive.clone(),
        )));
        pair_change(&mut c, &note).unwrap();
        let (sent, auth) = c.stream_mut().changes.pop().unwrap();
        assert_eq!(sent, note);
        // The archive's rules: the request is granted archive-wide, and the change applies.
        let mut set = PairingSet::new();
        set.insert(
            access::Pairing::new(admin.verifier(), PairingType::Admin, Tenants::All).unwrap(),
        )
        .unwrap();
        let req = SignedRequest::parse(&auth).unwrap();
        access::authorize(&set, &archive, "", &req, Some(now), 0).unwrap();
        let action = access::Action::from_op(&Op::PairChange { change: &sent })
            .unwrap()
            .unwrap();
        req.matches_action("", &action).unwrap();
        set.apply(&sent, &archive).unwrap();
        assert_eq!(set.get(&bob).unwrap().kind, PairingType::Input);
        // Another archive's request is refused.
        let other = note::Signer::generate("other", &[6; 32])
            .unwrap()
            .verifier();
        assert!(access::authorize(&set, &other, "", &req, Some(now), 0).is_err());
    }

    #[test]
    fn an_unsigned_huge_checkpoint_is_refused_before_any_walk() {
        let e = env();
        let box_key = key(1);
        let forged = format!("{ORIGIN}\n{}\n{ROOT}\n\n", 1u64 << 63);
        let dir = e.root.join("export");
        let mut c = fake(&box_key.verifier().vkey(), forged.as_bytes());
        let err = export_from(&mut c, "corporate", &dir, None, &e.state).unwrap_err();
        assert!(err.starts_with("client export: checkpoint"), "{err}");
        assert!(!err.contains('\n'));
        assert_eq!(c.stream_mut().fetched, 0);
        // Signed by another key than the box states: refused too.
        let mut c = fake(&box_key.verifier().vkey(), &signed(&key(2), 1 << 63));
        let err = export_from(&mut c, "corporate", &dir, None, &e.state).unwrap_err();
        assert!(err.contains("not signed by the log's key"), "{err}");
        assert_eq!(c.stream_mut().fetched, 0);
        assert!(!fsio::exists(&dir));
    }

    #[test]
    fn a_pinned_key_refuses_a_box_stating_another() {
        let e = env();
        let (real, impostor) = (key(1), key(2));
        let dir = e.root.join("export");
        let mut c = fake(&impostor.verifier().vkey(), &signed(&impostor, 3));
        let pinned = real.verifier().vkey();
        let err = export_from(&mut c, "corporate", &dir, Some(&pinned), &e.state).unwrap_err();
        assert!(err.contains("is not the pinned --vkey"), "{err}");
        assert_eq!(c.stream_mut().fetched, 0);
        // The right key, a verified checkpoint: the walk goes as far as the box serves.
        let mut c = fake(&pinned, &signed(&real, 3));
        let err = export_from(&mut c, "corporate", &dir, Some(&pinned), &e.state).unwrap_err();
        assert!(err.contains("missing"), "{err}");
        assert_eq!(c.stream_mut().fetched, 1);
    }

    #[test]
    fn an_honest_box_is_accepted_and_the_state_advances() {
        let e = env();
        let k = key(1);
        let mut sizes = Vec::new();
        for size in [0, 1, 5, 256, 300, 300, 1000] {
            let mut c = log_box(&k, size, None);
            let note = checkpoint_on(&mut c, "corporate", &e.state).unwrap();
            assert_eq!(note, c.stream_mut().checkpoint);
            let seen = e.state.load(&k.verifier()).unwrap().unwrap();
            sizes.push(seen.size);
            // The stored note is the box's, byte for byte.
            assert_eq!(std::fs::read(&seen.file).unwrap(), note);
        }
        assert_eq!(sizes, [0, 1, 5, 256, 300, 300, 1000]);
        // read checks the checkpoint too, and the state stays where it is.
        let mut c = log_box(&k, 1000, None);
        let got = read_on(&mut c, "corporate", 998, 10, &e.state).unwrap();
        assert_eq!(
            got,
            [(998, b"entry 998".to_vec()), (999, b"entry 999".to_vec())]
        );
        // A box sending entries beyond the checkpoint it signs is refused.
        c.stream_mut().entries.push(b"uncommitted".to_vec());
        let err = read_on(&mut c, "corporate", 998, 10, &e.state).unwrap_err();
        assert!(err.contains("entry 1000, beyond"), "{err}");
        assert_eq!(e.state.load(&k.verifier()).unwrap().unwrap().size, 1000);
    }

    #[test]
    fn a_rolled_back_box_is_refused_naming_both_checkpoints() {
        let e = env();
        let k = key(1);
        checkpoint_on(&mut log_box(&k, 300, None), "corporate", &e.state).unwrap();
        let before = e.state.load(&k.verifier()).unwrap().unwrap();
        let mut c = log_box(&k, 200, None);
        let err = checkpoint_on(&mut c, "corporate", &e.state).unwrap_err();
        assert!(err.contains("rollback"), "{err}");
        assert!(
            err.contains("size 200, root ") && err.contains("size 300, root "),
            "{err}"
        );
        assert!(!err.contains('\n'));
        // Every command refuses it, export before writing anything; the state is unchanged.
        let err = read_on(&mut c, "corporate", 0, 10, &e.state).unwrap_err();
        assert!(err.contains("rollback"), "{err}");
        let dir = e.root.join("export");
        let err = export_from(&mut c, "corporate", &dir, None, &e.state).unwrap_err();
        assert!(err.contains("rollback"), "{err}");
        assert!(!fsio::exists(&dir));
        assert_eq!(e.state.load(&k.verifier()).unwrap().unwrap(), before);
        // A box with a new key is another log: no history, accepted.
        checkpoint_on(&mut log_box(&key(2), 200, None), "corporate", &e.state).unwrap();
    }

    #[test]
    fn a_forked_box_is_refused() {
        let e = env();
        let k = key(1);
        checkpoint_on(&mut log_box(&k, 300, None), "corporate", &e.state).unwrap();
        // Same size, another root.
        let err = checkpoint_on(&mut log_box(&k, 300, Some(7)), "corporate", &e.state).unwrap_err();
        assert!(err.contains("fork"), "{err}");
        assert!(err.contains("size 300, root "), "{err}");
        // Larger, but not an extension of what was seen.
        let err =
            checkpoint_on(&mut log_box(&k, 1000, Some(299)), "corporate", &e.state).unwrap_err();
        assert!(err.contains("fork") && err.contains("size 1000"), "{err}");
        assert_eq!(e.state.load(&k.verifier()).unwrap().unwrap().size, 300);
        // A fork after the entries seen is still an extension of them.
        checkpoint_on(&mut log_box(&k, 1000, Some(300)), "corporate", &e.state).unwrap();
        assert_eq!(e.state.load(&k.verifier()).unwrap().unwrap().size, 1000);
    }

    #[test]
    fn a_box_that_withholds_or_garbles_tiles_proves_nothing() {
        let e = env();
        let k = key(1);
        checkpoint_on(&mut log_box(&k, 300, None), "corporate", &e.state).unwrap();
        let mut c = log_box(&k, 1000, None);
        c.stream_mut().objects.remove("tile/0/003.p/232");
        let err = checkpoint_on(&mut c, "corporate", &e.state).unwrap_err();
        assert!(err.contains("cannot check"), "{err}");
        assert!(err.contains("tile/0/003.p/232"), "{err}");
        let mut c = log_box(&k, 1000, None);
        c.stream_mut()
            .objects
            .insert("tile/0/003.p/232".into(), vec![0; 1 << 20]);
        let err = checkpoint_on(&mut c, "corporate", &e.state).unwrap_err();
        assert!(err.contains("limit"), "{err}");
        assert_eq!(e.state.load(&k.verifier()).unwrap().unwrap().size, 300);
    }

    #[test]
    fn a_damaged_state_file_is_an_error_not_a_fresh_start() {
        let e = env();
        let k = key(1);
        checkpoint_on(&mut log_box(&k, 5, None), "corporate", &e.state).unwrap();
        let file = e.state.file(&k.verifier());
        std::fs::write(&file, signed(&key(2), 5)).unwrap();
        let err = checkpoint_on(&mut log_box(&k, 5, None), "corporate", &e.state).unwrap_err();
        assert!(
            err.contains("remembered checkpoint does not verify"),
            "{err}"
        );
    }

    #[test]
    fn export_refuses_a_directory_holding_another_log() {
        let e = env();
        let (a, b) = (key(1), key(2));
        let dir = e.root.join("export");
        export_from(
            &mut log_box(&a, 300, None),
            "corporate",
            &dir,
            None,
            &e.state,
        )
        .unwrap();
        let before: Vec<u8> = std::fs::read(dir.join("checkpoint")).unwrap();
        // Another tenant's (another key's) log into the same directory: refused, untouched.
        let err = export_from(
            &mut log_box(&b, 10, None),
            "personnel",
            &dir,
            None,
            &e.state,
        )
        .unwrap_err();
        assert!(
            err.contains("another log") && err.contains("refusing"),
            "{err}"
        );
        assert_eq!(std::fs::read(dir.join("checkpoint")).unwrap(), before);
        assert_eq!(
            std::fs::read_to_string(dir.join("vkey")).unwrap(),
            format!("{}\n", a.verifier().vkey())
        );
        // Without a vkey file, the checkpoint still tells.
        std::fs::remove_file(dir.join("vkey")).unwrap();
        let err = export_from(
            &mut log_box(&b, 10, None),
            "personnel",
            &dir,
            None,
            &e.state,
        )
        .unwrap_err();
        assert!(err.contains("not this log's"), "{err}");
        // A non-empty directory with no log in it.
        let other = e.root.join("other");
        std::fs::create_dir_all(&other).unwrap();
        std::fs::write(other.join("notes.txt"), b"mine").unwrap();
        let err = export_from(
            &mut log_box(&a, 300, None),
            "corporate",
            &other,
            None,
            &e.state,
        )
        .unwrap_err();
        assert!(err.contains("holds no log checkpoint"), "{err}");
        // The same log, grown: the export is updated, and verifies.
        export_from(
            &mut log_box(&a, 1000, None),
            "corporate",
            &dir,
            None,
            &e.state,
        )
        .unwrap();
        let text = std::fs::read_to_string(dir.join("checkpoint")).unwrap();
        assert_eq!(text.lines().nth(1), Some("1000"));
    }

    #[test]
    fn append_checks_every_line_before_sending_anything() {
        let e = env();
        let k = key(1);
        let mut c = log_box(&k, 0, None);
        let long = vec![b'x'; 70_000];
        let entries: Vec<&[u8]> = vec![b"first", &long, b"third"];
        let mut out = Vec::new();
        let err = append_on(&mut c, "corporate", &entries, &e.state, &mut out).unwrap_err();
        assert!(err.contains("line 2") && err.contains("70000"), "{err}");
        assert!(err.contains("nothing was sent"), "{err}");
        assert!(out.is_empty());
        // Not even a hello went out.
        assert!(c.stream_mut().inbox.is_empty());
        assert_eq!(c.stream_mut().fetched, 0);
    }

    #[test]
    fn a_failed_later_request_prints_what_was_stored() {
        let e = env();
        let mut c = log_box(&key(1), 0, None);
        c.stream_mut().appends_left = 1;
        // 60,000-byte entries: two fit a request.
        let big = vec![b'x'; 60_000];
        let entries: Vec<&[u8]> = vec![&big; 5];
        let mut out = Vec::new();
        let err = append_on(&mut c, "corporate", &entries, &e.state, &mut out).unwrap_err();
        assert_eq!(String::from_utf8(out).unwrap(), "0\n1\n");
        assert!(
            err.contains("2 of 5 entries stored") && err.contains("the other 3, from line 3"),
            "{err}"
        );
        assert!(err.contains("were not stored"), "{err}");
        assert_eq!(c.stream_mut().entries.len(), 2);
    }

    #[test]
    fn an_acknowledgement_beyond_the_signed_checkpoint_is_refused() {
        let e = env();
        // The box acknowledges the append but its checkpoint stays at size 0.
        let mut c = log_box(&key(1), 0, None);
        c.stream_mut().appends_left = 1;
        let mut out = Vec::new();
        let err = append_on(&mut c, "corporate", &[b"a"], &e.state, &mut out).unwrap_err();
        assert_eq!(out, b"0\n");
        assert!(
            err.contains("committed at size 1") && err.contains("size 0"),
            "{err}"
        );
    }

    #[test]
    fn status_prints_a_table_and_warns_at_90_percent() {
        let mut c = log_box(&key(1), 3, None);
        let mut out = Vec::new();
        status_on(&mut c, "corporate", &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "tenant corporate: 3 entries (as the box states it)\n\
             \x20                          used           quota  used%\n\
             corporate disk              950            1000    95%\n\
             corporate index               5             100     5%\n\
             audit disk                    0               0     0%\n\
             volume free: 4096 bytes\n\
             WARNING: corporate disk at 95% of its quota (950/1000 bytes)\n"
        );
        // Nothing about the trust state: status neither reads nor advances it.
        assert_eq!(c.stream_mut().fetched, 0);
    }

    #[test]
    fn lines_like_bufread() {
        assert!(split_lines(b"").is_empty());
        assert_eq!(split_lines(b"a\r\nb\n"), vec![&b"a"[..], b"b"]);
        assert_eq!(split_lines(b"a\nb"), vec![&b"a"[..], b"b"]);
        assert_eq!(split_lines(b"\n\n"), vec![&b""[..], b""]);
    }
}

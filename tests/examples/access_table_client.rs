//! The access table (tests/access_cases.rs, the cases tests/tests/access_table.rs runs through
//! the simulator library) against a running box over its socket: the simulator binary
//! (tests/sim-cli.sh) or the image in QEMU (tests/qemu-e2e.sh).
//!
//! ```text
//! access_table_client ADDR KEYS_DIR [--public-metadata] [--capture FILE | --replay FILE]
//! ```
//!
//! ADDR is `unix:PATH`; KEYS_DIR holds `admin.skey` (the ADMIN paired for `*`),
//! `archive-identity.vkey` and `audit.vkey`. The box's initial set pairs only the ADMIN, so
//! the run first pairs fresh INPUT, USER and INTERFACE keys for the first tenant with
//! ADMIN-signed pairing changes (`Op::PairChange`, what `totebox pair add --connect` sends),
//! then runs every case: each answer's exact code, and for each refusal every tenant's state
//! unchanged as the box states it (an ADMIN-signed checkpoint per tenant before and after:
//! origin, size and root hash). The table's column is the box's: with `--public-metadata` (a
//! box provisioned with `PUBLIC_METADATA=1`) the public-metadata one, else the other, and the
//! run says it skipped the public-metadata column. Then
//! the audit log: fetched with `Op::AuditObject` (what `totebox client audit export` does),
//! verified offline with `audit.vkey`, and checked to hold one record per audited request of
//! the run, in order, with its key id and outcome. Prints `access-table: N cases, M failed
//! (...)`; exit status 1 on any failure.
//!
//! `--capture FILE` instead sends one granted ADMIN-signed append and writes its frame to
//! FILE; `--replay FILE` sends that frame again and expects it refused, `Replayed` while its
//! time is within the archive's 120 s window (docs/access.md "Time and replay"),
//! `StaleRequest` after, with every tenant's state unchanged.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use access::{AuditRecord, PairingType, SignedRequest};
use note::{Signer, Verifier};
use protocol::{Body, Decoder, ErrorCode, Op, Request, Response};
use system_tests::access_cases::{
    bundle, frame, key_of, now, Ans, Runner, Transport, World, BAD_REQUESTS, T, TABLE_CASES,
};

/// Padding after the table: more records than a journal holds (256), so that the audit log's
/// signed checkpoint covers every record of the run (pds/audit: a journal is folded into the
/// tlog, one checkpoint, when the record after its last slot comes).
const PADDING: usize = 257;
/// The archive's window back (`access::WINDOW_BACK`, docs/access.md): a replay within it is
/// `Replayed`, after it `StaleRequest`; within `SLACK` s of the edge either is accepted (the
/// two clocks' seconds need not tick together).
const WINDOW_BACK: u64 = access::WINDOW_BACK;
const SLACK: u64 = 3;

/// A box's client socket.
struct Live {
    s: UnixStream,
    dec: Decoder<Vec<u8>>,
}

impl Live {
    fn connect(addr: &str) -> Result<Live, String> {
        let path = addr
            .strip_prefix("unix:")
            .ok_or_else(|| format!("{addr}: only unix:PATH"))?;
        let s = UnixStream::connect(path).map_err(|e| format!("{path}: {e}"))?;
        s.set_read_timeout(Some(Duration::from_secs(120)))
            .map_err(|e| e.to_string())?;
        Ok(Live {
            s,
            dec: Decoder::new(vec![0u8; protocol::MAX_ENCODED]),
        })
    }
}

impl Transport for Live {
    fn exchange(&mut self, frames: &[u8], n: usize) -> Result<Vec<u8>, String> {
        self.s.write_all(frames).map_err(|e| format!("send: {e}"))?;
        let mut out = Vec::new();
        let mut got = 0;
        let mut buf = vec![0u8; 1 << 16];
        while got < n {
            let k = self.s.read(&mut buf).map_err(|e| format!("receive: {e}"))?;
            if k == 0 {
                return Err(format!(
                    "the box closed the connection after {got} of {n} answers"
                ));
            }
            self.dec.feed(&buf[..k], |f| {
                if let Ok(f) = f {
                    protocol::encode_frame(f, |b| out.extend_from_slice(b));
                }
                got += 1;
            });
        }
        Ok(out)
    }
}

/// 32 bytes no earlier run chose (the process's randomized hasher keys, the time, the pid).
fn random32() -> [u8; 32] {
    let mut out = [0u8; 32];
    for (i, c) in out.chunks_mut(8).enumerate() {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_usize(i);
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        h.write_u32(std::process::id());
        c.copy_from_slice(&h.finish().to_be_bytes());
    }
    out
}

fn read_key(dir: &Path, name: &str) -> Result<String, String> {
    let p = dir.join(name);
    let t = std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
    Ok(t.lines().next().unwrap_or("").trim().to_string())
}

fn world(keys: &Path) -> Result<World, String> {
    let admin = Signer::from_skey(&read_key(keys, "admin.skey")?)
        .map_err(|e| format!("admin.skey: {e}"))?;
    let archive = Verifier::from_vkey(&read_key(keys, "archive-identity.vkey")?)
        .map_err(|e| format!("archive-identity.vkey: {e}"))?;
    let fresh = |name: &str| Signer::generate(name, &random32()).map_err(|e| e.to_string());
    let salt: [u8; 8] = random32()[..8].try_into().map_err(|_| "salt")?;
    Ok(World::new(
        archive,
        [
            admin,
            fresh("input")?,
            fresh("user")?,
            fresh("iface")?,
            fresh("stranger")?,
        ],
        salt,
    ))
}

/// The signed request in a captured frame: its time.
fn frame_time(bytes: &[u8]) -> Result<(u64, u64), String> {
    let mut d = Decoder::new(vec![0u8; protocol::MAX_ENCODED]);
    let mut out = Err("no frame".to_string());
    d.feed(bytes, |f| {
        out = f
            .map_err(|e| format!("{e:?}"))
            .and_then(|f| Request::decode(f).map_err(|e| format!("{e:?}")))
            .and_then(|r| {
                let s = SignedRequest::parse(r.capability).map_err(|e| format!("{e:?}"))?;
                Ok((r.id, s.time))
            });
    });
    out
}

/// Fetches a whole object of the audit log, in chunks.
fn audit_object<X: Transport>(
    r: &mut Runner<'_, X>,
    path: &str,
) -> Result<Option<Vec<u8>>, String> {
    let mut out = Vec::new();
    loop {
        let id = r.next_id;
        r.next_id += 1;
        let op = Op::AuditObject {
            path,
            offset: out.len() as u64,
        };
        let auth = r.w.sign(&r.w.admin, "", &op, &[]);
        let bytes = r.x.exchange(&frame(id, "", &auth, op), 1)?;
        let mut d = Decoder::new(vec![0u8; protocol::MAX_ENCODED]);
        let mut chunk = Err(format!("no answer for {path}"));
        d.feed(&bytes, |f| {
            chunk = match f.map(Response::decode) {
                Ok(Ok(Response {
                    body: Body::Object { total, data, .. },
                    ..
                })) => Ok(Some((total, data.to_vec()))),
                Ok(Ok(Response {
                    body:
                        Body::Error {
                            code: ErrorCode::NotFound,
                        },
                    ..
                })) => Ok(None),
                e => Err(format!("{path}: {e:?}")),
            };
        });
        let Some((total, data)) = chunk? else {
            return Ok(None);
        };
        if data.is_empty() && (out.len() as u64) < total {
            return Err(format!("{path}: an empty chunk at {}", out.len()));
        }
        out.extend_from_slice(&data);
        if out.len() as u64 >= total {
            return Ok(Some(out));
        }
    }
}

struct Fetched(BTreeMap<String, Vec<u8>>);
impl tlog::ObjectReader for Fetched {
    type Error = std::convert::Infallible;
    fn read_object(&mut self, path: &str, out: &mut Vec<u8>) -> Result<bool, Self::Error> {
        out.clear();
        Ok(self.0.get(path).is_some_and(|b| {
            out.extend_from_slice(b);
            true
        }))
    }
}

/// The audit log as `client audit export` fetches it, verified with `audit`: its records'
/// lines in index order.
fn audit_export<X: Transport>(
    r: &mut Runner<'_, X>,
    audit: &Verifier,
) -> Result<Vec<String>, String> {
    let cp = audit_object(r, "checkpoint")?.ok_or("the audit log has no checkpoint")?;
    let size: u64 = String::from_utf8_lossy(&cp)
        .lines()
        .nth(1)
        .and_then(|l| l.parse().ok())
        .ok_or("the audit checkpoint has no size")?;
    let mut objects = BTreeMap::new();
    for tile in tlog::tile::tiles_for_size(size).chain(tlog::tile::entry_bundles_for_size(size)) {
        let path = tile.path().as_str().to_string();
        let data = audit_object(r, &path)?.ok_or_else(|| format!("{path} missing"))?;
        objects.insert(path, data);
    }
    let mut reader = Fetched(objects);
    let tree = tlog::verify_tree(&mut reader, &cp, std::slice::from_ref(audit))
        .map_err(|e| format!("the audit log does not verify with audit.vkey: {e:?}"))?;
    let mut lines = Vec::new();
    for tile in tlog::tile::entry_bundles_for_size(tree.size) {
        for e in tlog::tile::bundle_entries(&reader.0[tile.path().as_str()]) {
            let e = e.map_err(|e| format!("{}: {e:?}", tile.path().as_str()))?;
            lines.push(String::from_utf8_lossy(e).into_owned());
        }
    }
    Ok(lines)
}

fn field(l: &str, k: &str) -> String {
    l.split(' ')
        .find_map(|f| f.strip_prefix(k))
        .unwrap_or("?")
        .to_string()
}

/// Every tenant's state; `Err` if the box did not state one.
fn capture(r: &mut Runner<'_, Live>, file: &Path) -> Result<String, String> {
    let entries = bundle(&[b"captured on the wire"]);
    let op = Op::Append { entries: &entries };
    let auth = r.w.sign(&r.w.admin, T, &op, &[]);
    let id = 1_000_000 + u64::from(std::process::id());
    let bytes = frame(id, T, &auth, op);
    match r.send_frame(id, &bytes) {
        Ans::Ok(b) if b == "Appended" => {}
        a => return Err(format!("the append to capture: {a:?}")),
    }
    std::fs::write(file, &bytes).map_err(|e| format!("{}: {e}", file.display()))?;
    Ok(format!(
        "access-table capture: a granted signed append to {T} written to {}",
        file.display()
    ))
}

fn replay(r: &mut Runner<'_, Live>, file: &Path) -> Result<String, String> {
    let bytes = std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let (id, time) = frame_time(&bytes)?;
    let before = r.state();
    let elapsed = now().saturating_sub(time);
    let got = r.send_frame(id, &bytes);
    let after = r.state();
    let want: &[ErrorCode] = if elapsed + SLACK < WINDOW_BACK {
        &[ErrorCode::Replayed]
    } else if elapsed > WINDOW_BACK + SLACK {
        &[ErrorCode::StaleRequest]
    } else {
        &[ErrorCode::Replayed, ErrorCode::StaleRequest]
    };
    if !want.iter().any(|c| got == Ans::Err(*c)) {
        return Err(format!(
            "replayed {elapsed} s after it was signed: {got:?}, expected {want:?}"
        ));
    }
    if before != after {
        return Err("the replay changed a tenant's state".into());
    }
    Ok(format!(
        "access-table replay: refused {got:?} {elapsed} s after it was signed (window {WINDOW_BACK} s), state unchanged"
    ))
}

fn run() -> Result<bool, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: access_table_client ADDR KEYS_DIR [--public-metadata] [--capture FILE | --replay FILE]";
    let (addr, keys) = match args.as_slice() {
        [a, k, ..] => (a.as_str(), Path::new(k)),
        _ => return Err(usage.into()),
    };
    let mut public_metadata = false;
    let mut mode = None;
    let mut rest = args[2..].iter();
    while let Some(a) = rest.next() {
        match a.as_str() {
            "--public-metadata" => public_metadata = true,
            "--capture" | "--replay" => mode = Some((a.clone(), rest.next().ok_or(usage)?.clone())),
            _ => return Err(usage.into()),
        }
    }
    let w = world(keys)?;
    let mut r = Runner::new(Live::connect(addr)?, &w);
    match mode {
        Some((m, file)) if m == "--capture" => {
            println!("{}", capture(&mut r, Path::new(&file))?);
            return Ok(true);
        }
        Some((_, file)) => {
            println!("{}", replay(&mut r, Path::new(&file))?);
            return Ok(true);
        }
        None => {}
    }
    let audit = Verifier::from_vkey(&read_key(keys, "audit.vkey")?)
        .map_err(|e| format!("audit.vkey: {e}"))?;
    // The run's first request: its nonce finds the run's records in the audit log.
    let pairings = [
        (PairingType::Input, &w.input),
        (PairingType::User, &w.user),
        (PairingType::Interface, &w.iface),
    ];
    let mut first_nonce = None;
    for (kind, key) in pairings {
        let note = w.pairing_note(kind, &[T], key.verifier());
        let op = Op::PairChange { change: &note };
        let auth = w.sign(&w.admin, "", &op, &[]);
        first_nonce.get_or_insert(
            SignedRequest::parse(&auth)
                .map_err(|e| format!("{e:?}"))?
                .nonce,
        );
        match r.send(Some(&w.admin), "", &auth, op) {
            Ans::Ok(b) if b == "Pong" => {}
            a => return Err(format!("pairing a fresh {kind} key for {T}: {a:?}")),
        }
    }
    r.fill();
    // One column: the box's. The other needs another box (its initial set decides).
    let table = r.run_table(public_metadata);
    let bad = r.bad_requests();
    let column = if public_metadata {
        "public-metadata column (PUBLIC_METADATA=1 box); the column without it runs against a box built without"
    } else {
        "public-metadata column skipped: the box was not built with PUBLIC_METADATA=1"
    };
    let mut n = r.cases;
    if table + bad != TABLE_CASES + BAD_REQUESTS {
        r.failures.push(format!(
            "{} cases run, {} expected",
            table + bad,
            TABLE_CASES + BAD_REQUESTS
        ));
    }
    // The audit log: pad so its checkpoint covers the run, export, verify, compare.
    let mut pad = Vec::new();
    for _ in 0..PADDING {
        let id = r.next_id;
        r.next_id += 1;
        let auth = w.sign(&w.admin, T, &Op::Hello, &[]);
        pad.extend(frame(id, T, &auth, Op::Hello));
        r.expected.push((key_of(Some(&w.admin)), "granted".into()));
    }
    let padded =
        r.x.exchange(&pad, PADDING)
            .map(|b| system_tests::access_cases::answers(&b));
    if !padded
        .as_ref()
        .is_ok_and(|a| a.len() == PADDING && a.iter().all(|(_, a)| matches!(a, Ans::Ok(_))))
    {
        r.failures.push(format!(
            "{PADDING} ADMIN hellos: {:?}",
            padded.map(|a| a.len())
        ));
    }
    n += 1;
    let records = match audit_export(&mut r, &audit) {
        Err(e) => {
            r.failures.push(format!("audit export: {e}"));
            0
        }
        Ok(lines) => {
            let first = first_nonce.ok_or("no first nonce")?;
            let start = lines.iter().position(|l| {
                AuditRecord::parse_line(l).is_some_and(|(_, rec)| rec.nonce == Some(first))
            });
            match start {
                None => {
                    r.failures
                        .push("the audit log has no record of the run's first request".into());
                    0
                }
                Some(p) => {
                    let got: Vec<(String, String)> = lines[p..]
                        .iter()
                        .map(|l| (field(l, "key="), field(l, "outcome=")))
                        .collect();
                    let k = got.len().min(r.expected.len());
                    if k + PADDING < r.expected.len() {
                        r.failures.push(format!(
                            "the audit export holds {k} of the run's {} records",
                            r.expected.len() - PADDING
                        ));
                    }
                    for i in 0..k {
                        if got[i] != r.expected[i] {
                            r.failures.push(format!(
                                "audit record {}: {} (expected key={} outcome={})",
                                p + i,
                                lines[p + i],
                                r.expected[i].0,
                                r.expected[i].1
                            ));
                            break;
                        }
                    }
                    k
                }
            }
        }
    };
    let failed = r.failures.len();
    for f in &r.failures {
        eprintln!("FAIL: {f}");
    }
    println!(
        "access-table: {n} cases, {failed} failed (table: {table}, bad requests: {bad}, {column}; \
         audit log exported and verified with audit.vkey: {records} records of the run, one per audited request, key ids and outcomes as sent)"
    );
    Ok(failed == 0)
}

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("access_table_client: {e}");
            println!("access-table: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}

//! `totebox-sim`: runs the system of `system.xml` on the host and serves the client protocol.
//!
//! ```text
//! totebox-sim [--system system.xml] [--disk build/sim-disk.img] [--disk-size BYTES]
//!             [--keys build/keys] [--listen 127.0.0.1:0 | --listen unix:PATH]
//!             [--pairings FILE] [--public-metadata] | [--open] [--http HOST:PORT]
//! ```
//!
//! Access control (docs/access.md) is on: the archive is provisioned from the keys directory,
//! as `make image` provisions audit.elf: the identity key `archive-identity.key` and the
//! initial pairing set from `pairings.yaml` there (or `--pairings FILE`; it must hold an ADMIN),
//! with `--public-metadata` making unsigned metadata requests public. `make sim` creates both
//! when absent. Without them the simulator refuses to start, unless `--open` asks for the
//! **not provisioned** mode (access control off; audit prints its WARN line, as an image
//! built without provisioning does).
//! The disk file is created (sparse) if absent and formatted by psdb on first use. The signing
//! keys are `<log>.skey` in the keys directory (the same files `make image` provisions the ELFs
//! from); absent ones are generated there, with their `<log>.vkey`. The line
//! `SIM|INFO: connect with --connect ADDR` says where `totebox client` connects.
//!
//! One client at a time, as the image's one serial line ([`sim::server`]): a connection that
//! arrives while another is served gets one framed `Busy` answer and is closed; a client that
//! stalls (half a frame, answers it does not read, an idle connection) is dropped after the
//! wire's idle limit (`wire_pd::session::IDLE_LIMIT_MS`), and the next connection is served.
//!
//! `--http HOST:PORT` also serves the C2SP tlog-tiles read endpoints over plain HTTP/1.1
//! ([`sim::http`]), each request sent through the same wire as the console's (so unsigned:
//! public with `--public-metadata`); `SIM|INFO: http on http://ADDR` says where.
//!
//! The disk is locked while the simulator runs (exclusively: see `psdb::FileDevice`): a
//! second simulator, or a `totebox psdb` command, on the same disk is refused at once and
//! says so, rather than both writing to it.
#![forbid(unsafe_code)]

use std::io::{self, Read, Write};
use std::net::TcpListener;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use psdb::FileDevice;
use sim::http::HttpServer;
use sim::server::{Conn, Server};
use sim::{Disk, Keys, Sim};

const USAGE: &str = "usage: totebox-sim [--system FILE] [--disk FILE] [--disk-size BYTES] [--keys DIR] [--listen HOST:PORT|unix:PATH] [--pairings FILE] [--public-metadata] [--open] [--http HOST:PORT]";

/// The identity key's file in the keys directory (`make archive-identity` writes it).
const IDENTITY_FILE: &str = "archive-identity.key";
/// The pairings file in the keys directory unless `--pairings` names another.
const PAIRINGS_FILE: &str = "pairings.yaml";
/// Largest key or pairings file read (as the host tool: 64 pairings take about 12 KiB).
const MAX_FILE: u64 = 256 * 1024;

/// A small file, read whole (at most [`MAX_FILE`] bytes).
fn read_small(path: &Path) -> Result<String, String> {
    let f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut text = String::new();
    f.take(MAX_FILE + 1)
        .read_to_string(&mut text)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if text.len() as u64 > MAX_FILE {
        return Err(format!("{}: over {MAX_FILE} bytes", path.display()));
    }
    Ok(text)
}

/// The archive's provisioning from the keys directory: the identity signer key string and
/// the initial pairing set's image form (what `make image` writes into audit.elf's slots).
fn provisioning(
    keys_dir: &Path,
    pairings: Option<&Path>,
    public_metadata: bool,
) -> Result<(String, Vec<u8>, String), String> {
    let id_path = keys_dir.join(IDENTITY_FILE);
    let default_pairings = keys_dir.join(PAIRINGS_FILE);
    let p_path = pairings.unwrap_or(&default_pairings);
    let (has_id, has_p) = (id_path.exists(), p_path.exists());
    if !has_id && !has_p {
        return Err(format!(
            "the archive is not provisioned: no {} and no {} (`make sim` creates both; \
             --open runs with access control off)",
            id_path.display(),
            p_path.display()
        ));
    }
    if !has_id {
        return Err(format!(
            "no identity key {} for the pairings in {} (`make archive-identity` creates it)",
            id_path.display(),
            p_path.display()
        ));
    }
    if !has_p {
        return Err(format!(
            "no pairings file {} (create it with `totebox pair add --type ADMIN --tenant '*' \
             --vkey admin.vkey --file {}`)",
            p_path.display(),
            p_path.display()
        ));
    }
    let identity = read_small(&id_path)?
        .lines()
        .next()
        .unwrap_or("")
        .trim_end()
        .to_string();
    let archive = note::Signer::from_skey(&identity)
        .map_err(|e| format!("{}: not a signer key: {e}", id_path.display()))?
        .verifier()
        .vkey();
    let mut set = access::yaml::parse(&read_small(p_path)?)
        .map_err(|e| format!("{}: {e}", p_path.display()))?;
    if !set
        .pairings()
        .iter()
        .any(|p| p.kind == access::PairingType::Admin)
    {
        return Err(format!(
            "{}: no ADMIN pairing: nobody could ever change the archive's pairings",
            p_path.display()
        ));
    }
    set.set_public_metadata(public_metadata);
    let bytes = set.to_bytes();
    // What would not fit audit.elf's slot is refused here too.
    interface::keys::encode_pairings_slot(&bytes).map_err(|_| {
        format!(
            "{}: the pairing set's image form is {} bytes, over the {}-byte pairings slot",
            p_path.display(),
            bytes.len(),
            interface::keys::PAIRINGS_SLOT_LEN
        )
    })?;
    let said = format!(
        "SIM|INFO: access control on: archive {archive} ({}), {} pairings from {}, public metadata {}",
        id_path.display(),
        set.pairings().len(),
        p_path.display(),
        if public_metadata { "on" } else { "off" }
    );
    Ok((identity, bytes, said))
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("totebox-sim: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let mut system = PathBuf::from("system.xml");
    let mut disk = PathBuf::from("build/sim-disk.img");
    let mut keys_dir = PathBuf::from("build/keys");
    let mut disk_size: u64 = 256 << 20;
    let mut listen = String::from("127.0.0.1:0");
    let mut pairings: Option<PathBuf> = None;
    let mut public_metadata = false;
    let mut open = false;
    let mut http: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || {
            args.next()
                .ok_or_else(|| format!("{a} needs a value\n{USAGE}"))
        };
        match a.as_str() {
            "--system" => system = val()?.into(),
            "--disk" => disk = val()?.into(),
            "--disk-size" => disk_size = val()?.parse().map_err(|e| format!("--disk-size: {e}"))?,
            "--listen" => listen = val()?,
            "--keys" => keys_dir = val()?.into(),
            "--pairings" => pairings = Some(val()?.into()),
            "--public-metadata" => public_metadata = true,
            "--open" => open = true,
            "--http" => http = Some(val()?),
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            _ => return Err(format!("unknown argument {a}\n{USAGE}")),
        }
    }
    if open && (pairings.is_some() || public_metadata) {
        return Err(format!(
            "--open (access control off) takes no --pairings or --public-metadata\n{USAGE}"
        ));
    }
    // Before the disk is touched: a simulator that will not start changes nothing.
    let access = if open {
        None
    } else {
        Some(provisioning(
            &keys_dir,
            pairings.as_deref(),
            public_metadata,
        )?)
    };
    let text =
        std::fs::read_to_string(&system).map_err(|e| format!("{}: {e}", system.display()))?;
    let desc = sysdesc::System::parse(&text).map_err(|e| format!("{}: {e}", system.display()))?;
    let dev = if disk.exists() {
        FileDevice::open(&disk, true)
    } else {
        if let Some(dir) = disk.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        FileDevice::create(&disk, disk_size)
    }
    .map_err(|e| format!("{}: {e}", disk.display()))?;
    let mut keys = Keys::load_or_generate(&keys_dir).map_err(|e| e.to_string())?;
    if let Some((identity, set, said)) = access {
        println!("{said}");
        keys = keys.with_access(identity, set);
    }
    println!(
        "SIM|INFO: serving tenants {}; verifier keys in {}/<tenant>.vkey (audit: audit.vkey)",
        interface::TENANTS.join(", "),
        keys_dir.display()
    );
    let mut sim = Sim::new(desc, Disk::File(dev), &keys, true).map_err(|e| e.to_string())?;
    let mut http = match http {
        Some(addr) => {
            let l = TcpListener::bind(&addr).map_err(|e| format!("--http {addr}: {e}"))?;
            let h = HttpServer::new(l).map_err(|e| format!("--http {addr}: {e}"))?;
            let bound = h.local_addr().map_err(|e| e.to_string())?;
            println!("SIM|INFO: http on http://{bound}");
            Some(h)
        }
        None => None,
    };

    if let Some(path) = listen.strip_prefix("unix:") {
        let _ = std::fs::remove_file(path);
        let l = UnixListener::bind(path).map_err(|e| format!("{path}: {e}"))?;
        announce(&format!("unix:{path}"));
        serve(&mut sim, http.as_mut(), |block| {
            l.set_nonblocking(!block)?;
            l.accept().map(|(s, _)| s)
        });
    } else {
        let l = TcpListener::bind(&listen).map_err(|e| format!("{listen}: {e}"))?;
        let addr = l.local_addr().map_err(|e| e.to_string())?;
        announce(&addr.to_string());
        serve(&mut sim, http.as_mut(), |block| {
            l.set_nonblocking(!block)?;
            let (s, _) = l.accept()?;
            let _ = s.set_nodelay(true);
            Ok(s)
        });
    }
}

fn announce(addr: &str) {
    println!("SIM|INFO: connect with --connect {addr}");
    let _ = io::stdout().flush();
}

/// How long the loop sleeps when nothing happened and nothing waits in a read or write (only
/// while refused connections linger and nobody is served).
const NAP: Duration = Duration::from_millis(5);

/// Serves connections from `accept` (`true`: wait for one) for ever, through the front end
/// [`Server`]; exits (status 1) if the system stopped (a PD faulted during a call).
///
/// With an HTTP front end, nothing blocks: the loop naps [`NAP`] when nothing happened.
fn serve<C: Conn>(
    sim: &mut Sim,
    mut http: Option<&mut HttpServer>,
    mut accept: impl FnMut(bool) -> io::Result<C>,
) -> ! {
    let start = Instant::now();
    let now = || u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
    let mut server = Server::new(now());
    loop {
        // Nobody to serve and nobody to answer: wait for a connection.
        let block = !server.serving() && server.refusing() == 0 && http.is_none();
        let mut progress = false;
        loop {
            match accept(block && !progress) {
                Ok(c) => {
                    if let Err(e) = server.accept(sim, c, now()) {
                        halted(&e);
                    }
                    progress = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    eprintln!("SIM|ERROR: accept: {e}");
                    break;
                }
            }
        }
        match server.step(sim, now()) {
            Ok(p) => progress |= p,
            Err(e) => halted(&e),
        }
        if let Some(h) = http.as_deref_mut() {
            match h.step(sim, now()) {
                Ok(p) => progress |= p,
                Err(e) => halted(&e),
            }
        }
        if !progress && !server.serving() {
            std::thread::sleep(NAP);
        }
    }
}

/// A PD faulted during a call: on seL4 the wire is blocked forever. Stop here (the report is on
/// the console) rather than serve from a system that would not.
fn halted(e: &sim::SimError) -> ! {
    eprintln!("{e}");
    std::process::exit(1);
}

//! `totebox-sim`: runs the system of `system.xml` on the host and serves the client protocol.
//!
//! ```text
//! totebox-sim [--system system.xml] [--disk build/sim-disk.img] [--disk-size BYTES]
//!             [--keys build/keys] [--listen 127.0.0.1:0 | --listen unix:PATH]
//! ```
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
//! The disk is locked while the simulator runs (exclusively: see `psdb::FileDevice`): a
//! second simulator, or a `totebox psdb` command, on the same disk is refused at once and
//! says so, rather than both writing to it.
#![forbid(unsafe_code)]

use std::io::{self, Write};
use std::net::TcpListener;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use psdb::FileDevice;
use sim::server::{Conn, Server};
use sim::{Disk, Keys, Sim};

const USAGE: &str = "usage: totebox-sim [--system FILE] [--disk FILE] [--disk-size BYTES] [--keys DIR] [--listen HOST:PORT|unix:PATH]";

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
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            _ => return Err(format!("unknown argument {a}\n{USAGE}")),
        }
    }
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
    let keys = Keys::load_or_generate(&keys_dir).map_err(|e| e.to_string())?;
    println!(
        "SIM|INFO: serving tenants {}; verifier keys in {}/<tenant>.vkey (audit: audit.vkey)",
        interface::TENANTS.join(", "),
        keys_dir.display()
    );
    let mut sim = Sim::new(desc, Disk::File(dev), &keys, true).map_err(|e| e.to_string())?;

    if let Some(path) = listen.strip_prefix("unix:") {
        let _ = std::fs::remove_file(path);
        let l = UnixListener::bind(path).map_err(|e| format!("{path}: {e}"))?;
        announce(&format!("unix:{path}"));
        serve(&mut sim, |block| {
            l.set_nonblocking(!block)?;
            l.accept().map(|(s, _)| s)
        });
    } else {
        let l = TcpListener::bind(&listen).map_err(|e| format!("{listen}: {e}"))?;
        let addr = l.local_addr().map_err(|e| e.to_string())?;
        announce(&addr.to_string());
        serve(&mut sim, |block| {
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
fn serve<C: Conn>(sim: &mut Sim, mut accept: impl FnMut(bool) -> io::Result<C>) -> ! {
    let start = Instant::now();
    let now = || u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
    let mut server = Server::new(now());
    loop {
        // Nobody to serve and nobody to answer: wait for a connection.
        let block = !server.serving() && server.refusing() == 0;
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

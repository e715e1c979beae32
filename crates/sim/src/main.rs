//! `totebox-sim`: runs the system of `system.xml` on the host and serves the client protocol.
//!
//! ```text
//! totebox-sim [--system system.xml] [--disk build/sim-disk.img] [--disk-size BYTES]
//!             [--keys build/keys] [--listen 127.0.0.1:0 | --listen unix:PATH]
//! ```
//! The disk file is created (sparse) if absent and formatted by psdb on first use. The signing
//! keys are `<log>.skey` in the keys directory (the same files `make image` provisions the ELFs
//! from); absent ones are generated there, with their `<log>.vkey`. The line
//! `SIM|INFO: connect with --connect ADDR` says where `totebox client` connects. One client at a
//! time (as one serial line); the next connection is served when the previous one closes.
#![forbid(unsafe_code)]

use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::process::ExitCode;

use psdb::FileDevice;
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
    let mut sim = Sim::new(desc, Disk::File(dev), &keys, true).map_err(|e| e.to_string())?;

    if let Some(path) = listen.strip_prefix("unix:") {
        let _ = std::fs::remove_file(path);
        let l = UnixListener::bind(path).map_err(|e| format!("{path}: {e}"))?;
        announce(&format!("unix:{path}"));
        for conn in l.incoming() {
            match conn {
                Ok(s) => serve(&mut sim, s),
                Err(e) => eprintln!("SIM|ERROR: accept: {e}"),
            }
        }
    } else {
        let l = TcpListener::bind(&listen).map_err(|e| format!("{listen}: {e}"))?;
        let addr = l.local_addr().map_err(|e| e.to_string())?;
        announce(&addr.to_string());
        for conn in l.incoming() {
            match conn {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    serve(&mut sim, s)
                }
                Err(e) => eprintln!("SIM|ERROR: accept: {e}"),
            }
        }
    }
    Ok(())
}

fn announce(addr: &str) {
    println!("SIM|INFO: connect with --connect {addr}");
    let _ = std::io::stdout().flush();
}

/// Serves one client until it closes the connection.
fn serve<S: Read + Write>(sim: &mut Sim, mut stream: S) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut out = Vec::new();
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        out.clear();
        let fed = sim.feed(&buf[..n], &mut |b| out.extend_from_slice(b));
        if !out.is_empty() && stream.write_all(&out).is_err() {
            break;
        }
        if let Err(e) = fed {
            // A PD faulted during a call: on seL4 the wire is blocked forever. Stop here (the
            // report is on the console) rather than serve from a system that would not.
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
    sim.disconnect();
}

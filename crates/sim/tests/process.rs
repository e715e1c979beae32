//! The real `totebox-sim` binary on a UNIX socket: a second simulator on the same disk refuses
//! to start, and says why; any other program opening the disk is refused too; a client that
//! stalls half-way through a frame gets the next client a Busy answer, not silence; once the
//! stalled client leaves, the next one is served.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use protocol::client::{Client, ClientError};
use protocol::ErrorCode;

const SIM: &str = env!("CARGO_BIN_EXE_totebox-sim");

/// Fails a test that would otherwise hang (never a timing assertion: every wait here ends as
/// soon as the behaviour shows).
const HANG: Duration = Duration::from_secs(60);

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn tempdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("sim-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn command(dir: &Path, sock: &str) -> Command {
    let mut c = Command::new(SIM);
    c.arg("--system")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/../../system.xml"))
        .arg("--disk")
        .arg(dir.join("disk.img"))
        .arg("--disk-size")
        .arg((64u64 << 20).to_string())
        .arg("--keys")
        .arg(dir.join("keys"))
        .arg("--listen")
        .arg(format!("unix:{}", dir.join(sock).display()))
        // Not provisioned: these tests are about the process (one client at a time, the disk
        // lock), and send unsigned requests; tests/sim-cli.sh runs the provisioned binary.
        .arg("--open");
    c
}

/// Starts the simulator and waits for its `--connect` line.
fn start(dir: &Path) -> (Running, PathBuf) {
    let mut child = command(dir, "wire.sock")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let running = Running(child);
    let mut line = String::new();
    let mut r = BufReader::new(out);
    while !line.contains("--connect") {
        line.clear();
        assert!(
            r.read_line(&mut line).unwrap() > 0,
            "the simulator did not start"
        );
    }
    (running, dir.join("wire.sock"))
}

#[test]
fn a_second_simulator_on_the_same_disk_refuses_to_start() {
    let dir = tempdir("lock");
    let (_first, _) = start(&dir);
    let mut second = command(&dir, "second.sock")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t = Instant::now();
    let status = loop {
        if let Some(s) = second.try_wait().unwrap() {
            break s;
        }
        if t.elapsed() > HANG {
            let _ = second.kill();
            panic!("the second simulator started on a disk in use");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut second.stderr.take().unwrap(), &mut err).unwrap();
    assert!(!status.success());
    let disk = dir.join("disk.img");
    assert!(
        err.contains(&format!("{}: in use by another program", disk.display()))
            && err.contains("locked"),
        "{err}"
    );
    // Nor may any other program open it while the simulator runs, even to read.
    let e = psdb::FileDevice::open(&disk, false).expect_err("the disk is locked");
    assert!(e.to_string().contains("in use by another program"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_stalled_client_gets_the_next_one_busy_then_it_is_served() {
    let dir = tempdir("busy");
    let (_sim, sock) = start(&dir);
    // Client 1: a lone delimiter and half a frame, then nothing.
    let mut c1 = UnixStream::connect(&sock).unwrap();
    let frame = protocol::frame::encode_frame_vec(b"half of this");
    c1.write_all(&[0]).unwrap();
    c1.write_all(&frame[..5]).unwrap();
    // Client 2 (connected after client 1, so accepted after it) is told Busy at once, in
    // words, and closed: not left waiting in silence.
    let e = Client::new(UnixStream::connect(&sock).unwrap())
        .ping()
        .unwrap_err();
    assert!(
        matches!(e, ClientError::Remote(ErrorCode::Busy)),
        "a second client must be told Busy, got: {e}"
    );
    assert!(e.to_string().contains("busy serving another client"), "{e}");
    // Client 1 leaves: the next client is served.
    drop(c1);
    wait_for(
        || match Client::new(UnixStream::connect(&sock).unwrap()).ping() {
            Ok(()) => Some(()),
            Err(ClientError::Remote(ErrorCode::Busy)) => None, // client 1's close not yet seen
            Err(e) => panic!("{e}"),
        },
    )
    .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Retries `f` until it gives an answer, or fails the test after [`HANG`].
fn wait_for<T>(mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let t = Instant::now();
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        assert!(t.elapsed() < HANG, "no answer");
        std::thread::sleep(Duration::from_millis(10));
    }
}

//! The `totebox` command as scripts use it: exact output forms, exit codes, one-line errors,
//! and tamper detection on a real log directory.

// Test helpers outside #[test] functions: a panic is how they fail the test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn totebox(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_totebox"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A command that fails on its arguments may exit before reading stdin: a broken pipe
    // here is expected then, and the exit status and output say what happened.
    let _ = child.stdin.take().unwrap().write_all(stdin);
    child.wait_with_output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

/// Asserts failure with exactly one line on stderr, no panic, and returns that line.
fn fails(o: &Output) -> String {
    assert!(!o.status.success(), "expected failure, got {o:?}");
    let err = String::from_utf8(o.stderr.clone()).unwrap();
    assert_eq!(err.lines().count(), 1, "not one line: {err:?}");
    assert!(err.starts_with("totebox: "), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

struct Keys {
    skey_file: PathBuf,
    vkey: String,
}

fn keygen(dir: &Path, name: &str) -> Keys {
    let o = totebox(&["keygen", name], b"");
    assert!(o.status.success());
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines[0].starts_with(&format!("PRIVATE+KEY+{name}+")),
        "{}",
        lines[0]
    );
    assert!(lines[1].starts_with(&format!("{name}+")), "{}", lines[1]);
    let skey_file = dir.join(format!("{}.skey", name.replace('/', "_")));
    std::fs::write(&skey_file, format!("{}\n", lines[0])).unwrap();
    Keys {
        skey_file,
        vkey: lines[1].to_string(),
    }
}

fn build(dir: &Path, keys: &Keys, origin: &str, input: &[u8]) -> Output {
    let d = dir.to_str().unwrap();
    let k = keys.skey_file.to_str().unwrap();
    totebox(&["log", "build", d, "--skey", k, "--origin", origin], input)
}

fn verify(dir: &Path, vkey: &str) -> Output {
    totebox(
        &["log", "verify", dir.to_str().unwrap(), "--vkey", vkey],
        b"",
    )
}

fn lines(range: std::ops::Range<u32>) -> Vec<u8> {
    range
        .map(|i| format!("record {i}\n"))
        .collect::<String>()
        .into_bytes()
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn build_continue_and_verify() {
    let tmp = tempfile::tempdir().unwrap();
    let keys = keygen(tmp.path(), "example.com/log");
    let log = tmp.path().join("log");
    let o = build(&log, &keys, "example.com/log", &lines(0..300));
    assert!(o.status.success(), "{o:?}");
    assert_eq!(stdout(&o), "300\n");
    // An existing log is continued.
    let o = build(&log, &keys, "example.com/log", &lines(300..520));
    assert_eq!(stdout(&o), "520\n");
    let o = verify(&log, &keys.vkey);
    assert!(o.status.success(), "{o:?}");
    let out = stdout(&o);
    let words: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(words[..3], ["verified", "example.com/log", "520"]);
    // The root printed is the checkpoint's.
    let cp = std::fs::read_to_string(log.join("checkpoint")).unwrap();
    assert_eq!(cp.lines().nth(2), Some(words[3]));
    // The vkey may also be given as a file.
    let vfile = tmp.path().join("vkey");
    std::fs::write(&vfile, format!("{}\n", keys.vkey)).unwrap();
    assert!(verify(&log, vfile.to_str().unwrap()).status.success());
    // And the checkpoint is a note that `note verify` accepts, naming the signer.
    let o = totebox(
        &[
            "note",
            "verify",
            log.join("checkpoint").to_str().unwrap(),
            "--vkey",
            &keys.vkey,
        ],
        b"",
    );
    assert_eq!(stdout(&o), "example.com/log\n");
}

#[test]
fn bad_input_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let keys = keygen(tmp.path(), "example.com/log");
    let log = tmp.path().join("log");
    assert!(build(&log, &keys, "example.com/log", &lines(0..10))
        .status
        .success());
    let before: Vec<(PathBuf, Vec<u8>)> = files(&log)
        .into_iter()
        .map(|p| (p.clone(), std::fs::read(p).unwrap()))
        .collect();

    let mut big = lines(10..20);
    big.extend(vec![b'a'; 65_536]);
    big.push(b'\n');
    let err = fails(&build(&log, &keys, "example.com/log", &big));
    assert!(err.contains("line 11") && err.contains("65536"), "{err}");

    let err = fails(&build(&log, &keys, "another.origin", &lines(0..1)));
    assert!(err.contains("origin"), "{err}");

    let other = keygen(tmp.path(), "someone.else");
    fails(&build(&log, &other, "example.com/log", &lines(0..1)));

    let after: Vec<(PathBuf, Vec<u8>)> = files(&log)
        .into_iter()
        .map(|p| (p.clone(), std::fs::read(p).unwrap()))
        .collect();
    assert_eq!(before, after);
    assert!(verify(&log, &keys.vkey).status.success());
    // A different key does not verify the log.
    let err = fails(&verify(&log, &other.vkey));
    assert!(err.contains("checkpoint"), "{err}");
}

#[test]
fn bad_arguments_are_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    fails(&totebox(&["log", "frobnicate"], b""));
    fails(&totebox(
        &[
            "log",
            "verify",
            "/nonexistent/dir",
            "--vkey",
            "x+00000000+AAAA",
        ],
        b"",
    ));
    fails(&totebox(&["keygen", "bad name"], b""));
    let skey = tmp.path().join("skey");
    std::fs::write(&skey, "PRIVATE+KEY+broken\n").unwrap();
    let d = tmp.path().join("log");
    let o = totebox(
        &[
            "log",
            "build",
            d.to_str().unwrap(),
            "--skey",
            skey.to_str().unwrap(),
            "--origin",
            "o",
        ],
        b"x\n",
    );
    fails(&o);
    let note = tmp.path().join("note");
    std::fs::write(&note, "not a note").unwrap();
    fails(&totebox(
        &[
            "note",
            "verify",
            note.to_str().unwrap(),
            "--vkey",
            "a+01020304+AAAA",
        ],
        b"",
    ));
}

/// Changing any single byte of the checkpoint, a tile or a bundle makes `log verify` fail:
/// every byte of a small log, and a spread of bytes of a log with full tiles.
#[test]
fn any_tampered_byte_fails_verification() {
    let tmp = tempfile::tempdir().unwrap();
    let keys = keygen(tmp.path(), "example.com/log");
    for (entries, stride) in [(5u32, 1usize), (260, 61)] {
        let log = tmp.path().join(format!("log{entries}"));
        assert!(build(&log, &keys, "example.com/log", &lines(0..entries))
            .status
            .success());
        assert!(verify(&log, &keys.vkey).status.success());
        let mut tried = 0;
        for file in files(&log) {
            let original = std::fs::read(&file).unwrap();
            let mut positions: Vec<usize> = (0..original.len()).step_by(stride).collect();
            positions.push(original.len() - 1);
            for &i in &positions {
                let mut bytes = original.clone();
                bytes[i] ^= 0x01;
                std::fs::write(&file, &bytes).unwrap();
                let o = verify(&log, &keys.vkey);
                let rel = file.strip_prefix(&log).unwrap().display().to_string();
                assert!(
                    !o.status.success(),
                    "{rel} byte {i} changed and still verified"
                );
                fails(&o);
                tried += 1;
            }
            std::fs::write(&file, &original).unwrap();
        }
        assert!(tried > 100, "{tried}");
        assert!(verify(&log, &keys.vkey).status.success());
    }
}

/// The signed-note vectors: a valid note verifies with its key, and not with another.
#[test]
fn note_verify_vectors() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../note/testdata/notes");
    let vkey = std::fs::read_to_string(dir.join("peterneumann.vkey")).unwrap();
    let note = dir.join("peterneumann.note");
    let o = totebox(
        &[
            "note",
            "verify",
            note.to_str().unwrap(),
            "--vkey",
            vkey.trim(),
        ],
        b"",
    );
    assert!(o.status.success(), "{o:?}");
    assert_eq!(stdout(&o), "PeterNeumann\n");
    let other = std::fs::read_to_string(dir.join("enochroot.vkey")).unwrap();
    fails(&totebox(
        &[
            "note",
            "verify",
            note.to_str().unwrap(),
            "--vkey",
            other.trim(),
        ],
        b"",
    ));
}

fn run_verify(dir: &Path, vkey: &str, extra: &[&str]) -> Output {
    let mut args = vec!["log", "verify", dir.to_str().unwrap(), "--vkey", vkey];
    args.extend_from_slice(extra);
    totebox(&args, b"")
}

/// `log verify` says what it checked, and a log without its entry bundles is not "verified"
/// unless only the hash tiles were asked for.
#[test]
fn verify_says_what_it_checked_and_needs_the_bundles() {
    let tmp = tempfile::tempdir().unwrap();
    let keys = keygen(tmp.path(), "example.com/log");
    let log = tmp.path().join("log");
    assert!(build(&log, &keys, "example.com/log", &lines(0..600))
        .status
        .success());
    let o = verify(&log, &keys.vkey);
    let out = stdout(&o);
    let mut l = out.lines();
    let first = l.next().unwrap();
    assert!(first.starts_with("verified example.com/log 600 "), "{out}");
    assert_eq!(first.split(' ').count(), 4, "{out}");
    assert_eq!(l.next(), Some("checked 3/3 entry bundles, 4 hash tiles"));
    assert_eq!(l.next(), None);

    // One bundle gone: a one-line failure naming it and the count.
    std::fs::remove_file(log.join("tile/entries/001")).unwrap();
    let err = fails(&verify(&log, &keys.vkey));
    assert!(
        err.contains("tile/entries/001 missing") && err.contains("2/3 entry bundles"),
        "{err}"
    );
    assert!(stdout(&verify(&log, &keys.vkey)).is_empty());
    // All of tile/entries/ gone.
    std::fs::remove_dir_all(log.join("tile/entries")).unwrap();
    let err = fails(&verify(&log, &keys.vkey));
    assert!(err.contains("tile/entries/000 missing"), "{err}");
    assert!(err.contains("0/3 entry bundles"), "{err}");
    // --tiles-only: the same first line, and the second says what was not there.
    let o = run_verify(&log, &keys.vkey, &["--tiles-only"]);
    assert!(o.status.success(), "{o:?}");
    let out = stdout(&o);
    assert_eq!(out.lines().next(), Some(first));
    assert_eq!(
        out.lines().nth(1),
        Some("checked 0/3 entry bundles, 4 hash tiles (--tiles-only)")
    );
    // The hash tiles are still all needed.
    std::fs::remove_file(log.join("tile/0/000")).unwrap();
    let err = fails(&run_verify(&log, &keys.vkey, &["--tiles-only"]));
    assert!(err.contains("tile/0/000"), "{err}");
}

/// Files that are not what they claim: a checkpoint that is a symlink to /dev/zero or a FIFO,
/// objects that are symlinks out of the log directory, oversized objects, and the same for the
/// files `note verify`, `log consistency` and `--vkey` read. Each is refused at once (a FIFO
/// would block this test forever if it were opened for a blocking read).
#[test]
fn hostile_files_are_refused_without_reading_them() {
    let tmp = tempfile::tempdir().unwrap();
    let keys = keygen(tmp.path(), "example.com/log");
    let log = tmp.path().join("log");
    assert!(build(&log, &keys, "example.com/log", &lines(0..10))
        .status
        .success());
    let cp = log.join("checkpoint");
    let good = std::fs::read(&cp).unwrap();
    let mkfifo = |p: &Path| {
        assert!(Command::new("mkfifo").arg(p).status().unwrap().success());
    };

    // The checkpoint as a symlink to /dev/zero: refused (it leaves the directory).
    std::fs::remove_file(&cp).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &cp).unwrap();
    let err = fails(&verify(&log, &keys.vkey));
    assert!(
        err.contains("checkpoint") && err.contains("outside"),
        "{err}"
    );
    // As a FIFO.
    std::fs::remove_file(&cp).unwrap();
    mkfifo(&cp);
    let err = fails(&verify(&log, &keys.vkey));
    assert!(err.contains("FIFO"), "{err}");
    // Oversized.
    std::fs::remove_file(&cp).unwrap();
    std::fs::write(&cp, vec![b'a'; 70_000]).unwrap();
    let err = fails(&verify(&log, &keys.vkey));
    assert!(err.contains("limit"), "{err}");
    // A symlink inside the directory is followed.
    std::fs::remove_file(&cp).unwrap();
    std::fs::write(log.join("checkpoint.real"), &good).unwrap();
    std::os::unix::fs::symlink("checkpoint.real", &cp).unwrap();
    assert!(verify(&log, &keys.vkey).status.success());
    // A tile reached through a symlink to a copy outside: refused, though the bytes are right.
    let outside = tmp.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::rename(log.join("tile/0"), outside.join("0")).unwrap();
    std::os::unix::fs::symlink(outside.join("0"), log.join("tile/0")).unwrap();
    let err = fails(&verify(&log, &keys.vkey));
    assert!(
        err.contains("tile/0/000.p/10") && err.contains("outside"),
        "{err}"
    );

    // note verify, --vkey files and log consistency read through the same bounds.
    let zero = tmp.path().join("zero");
    std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
    let fifo = tmp.path().join("fifo");
    mkfifo(&fifo);
    for bad in [&zero, &fifo] {
        let b = bad.to_str().unwrap();
        let err = fails(&totebox(&["note", "verify", b, "--vkey", &keys.vkey], b""));
        assert!(err.contains("not a regular file"), "{err}");
        let err = fails(&totebox(
            &[
                "note",
                "verify",
                log.join("checkpoint.real").to_str().unwrap(),
                "--vkey",
                b,
            ],
            b"",
        ));
        assert!(err.contains("not a regular file"), "{err}");
        let err = fails(&totebox(
            &[
                "log",
                "consistency",
                b,
                log.to_str().unwrap(),
                "--vkey",
                &keys.vkey,
            ],
            b"",
        ));
        assert!(err.contains("not a regular file"), "{err}");
    }
}

/// `log consistency` on grown and on rewritten logs.
#[test]
fn consistency_of_a_grown_log_and_of_a_rewritten_one() {
    let tmp = tempfile::tempdir().unwrap();
    let keys = keygen(tmp.path(), "example.com/log");
    let log = tmp.path().join("log");
    assert!(build(&log, &keys, "example.com/log", &lines(0..300))
        .status
        .success());
    let old = tmp.path().join("old.note");
    std::fs::copy(log.join("checkpoint"), &old).unwrap();
    assert!(build(&log, &keys, "example.com/log", &lines(300..1000))
        .status
        .success());
    let args = |dir: &Path| {
        totebox(
            &[
                "log",
                "consistency",
                old.to_str().unwrap(),
                dir.to_str().unwrap(),
                "--vkey",
                &keys.vkey,
            ],
            b"",
        )
    };
    let o = args(&log);
    assert!(o.status.success(), "{o:?}");
    assert_eq!(stdout(&o), "consistent example.com/log 300 1000\n");
    // The same key, another history of 1000 entries: both roots are signed, not consistent.
    let other = tmp.path().join("other");
    let mut rewritten = lines(0..1000);
    rewritten[3] = b'X';
    assert!(build(&other, &keys, "example.com/log", &rewritten)
        .status
        .success());
    let err = fails(&args(&other));
    assert!(
        err.contains("is not consistent") && err.contains("size 300"),
        "{err}"
    );
}

//! `totebox psdb ...` and `totebox log ... --psdb IMAGE --namespace NS` as scripts use them, and
//! the forensic path of psdb/FORMAT.md with the system's own `tar` and `sha256sum`.

// Test helpers outside #[test] functions: a panic is how they fail the test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::path::Path;
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

fn ok(o: Output) -> String {
    assert!(o.status.success(), "{o:?}");
    String::from_utf8(o.stdout).unwrap()
}

fn fails(o: &Output) -> String {
    assert!(!o.status.success(), "expected failure, got {o:?}");
    let err = String::from_utf8(o.stderr.clone()).unwrap();
    assert_eq!(err.lines().count(), 1, "not one line: {err:?}");
    assert!(
        err.starts_with("totebox: ") && !err.contains("panicked"),
        "{err}"
    );
    err
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn create_put_get_ls_fsck() {
    let tmp = tempfile::tempdir().unwrap();
    let img = tmp.path().join("disk.img");
    let out = ok(totebox(&["psdb", "create", s(&img), "--size", "8M"], b""));
    assert!(out.starts_with("created"), "{out}");
    assert_eq!(std::fs::metadata(&img).unwrap().len(), 8 << 20);
    // Never overwrites an existing image.
    fails(&totebox(&["psdb", "create", s(&img), "--size", "8M"], b""));

    ok(totebox(
        &["psdb", "put", s(&img), "alpha", "docs/one"],
        b"first object",
    ));
    // Write-once: the same bytes again are a no-op, different bytes are refused.
    ok(totebox(
        &["psdb", "put", s(&img), "alpha", "docs/one"],
        b"first object",
    ));
    let err = fails(&totebox(
        &["psdb", "put", s(&img), "alpha", "docs/one"],
        b"changed",
    ));
    assert!(err.contains("write-once"), "{err}");
    ok(totebox(
        &["psdb", "put", s(&img), "beta", "docs/one"],
        b"beta's own",
    ));
    // The checkpoint is versioned: the latest wins.
    ok(totebox(
        &["psdb", "put", s(&img), "alpha", "checkpoint"],
        b"v1\n",
    ));
    ok(totebox(
        &["psdb", "put", s(&img), "alpha", "checkpoint"],
        b"v2\n",
    ));

    assert_eq!(
        ok(totebox(&["psdb", "get", s(&img), "alpha", "docs/one"], b"")),
        "first object"
    );
    assert_eq!(
        ok(totebox(&["psdb", "get", s(&img), "beta", "docs/one"], b"")),
        "beta's own"
    );
    assert_eq!(
        ok(totebox(
            &["psdb", "get", s(&img), "alpha", "checkpoint"],
            b""
        )),
        "v2\n"
    );
    fails(&totebox(
        &["psdb", "get", s(&img), "alpha", "docs/two"],
        b"",
    ));
    fails(&totebox(
        &["psdb", "get", s(&img), "gamma", "docs/one"],
        b"",
    ));

    assert_eq!(ok(totebox(&["psdb", "ls", s(&img)], b"")), "alpha\nbeta\n");
    assert_eq!(
        ok(totebox(&["psdb", "ls", s(&img), "alpha"], b"")),
        "checkpoint 3\ndocs/one 12\n"
    );
    let out = ok(totebox(&["psdb", "fsck", s(&img)], b""));
    assert!(
        out.contains("consistent: 2 objects, 2 checkpoint versions"),
        "{out}"
    );

    // Names that could escape a namespace on extraction are refused.
    for bad in ["../x", "/abs", "a/../../b", ".psdb/x", ""] {
        fails(&totebox(&["psdb", "put", s(&img), "alpha", bad], b"x"));
    }
    fails(&totebox(&["psdb", "put", s(&img), "../up", "x"], b"x"));
}

#[test]
fn corruption_is_reported_with_its_offset() {
    let tmp = tempfile::tempdir().unwrap();
    let img = tmp.path().join("disk.img");
    ok(totebox(&["psdb", "create", s(&img), "--size", "4M"], b""));
    for i in 0..4 {
        let path = format!("obj/{i}");
        ok(totebox(
            &["psdb", "put", s(&img), "ns", &path],
            format!("data {i}").as_bytes(),
        ));
    }
    let clean = std::fs::read(&img).unwrap();
    // Flip one byte inside each of the first 40 blocks in turn: fsck must fail or (for bytes
    // that carry no meaning, such as the unused tail of a header) still find it consistent;
    // it must never crash, and a failure names an offset.
    let mut failures = 0;
    for block in 0..40u64 {
        let mut bytes = clean.clone();
        let at = (block * 512 + 7) as usize;
        bytes[at] ^= 0x20;
        std::fs::write(&img, &bytes).unwrap();
        let o = totebox(&["psdb", "fsck", s(&img)], b"");
        if !o.status.success() {
            let err = fails(&o);
            assert!(err.contains("offset"), "{err}");
            failures += 1;
        }
    }
    assert!(failures >= 8, "only {failures} of 40 corruptions found");
    // Random bytes are not a PSDB image.
    std::fs::write(&img, vec![0x5a; 1 << 20]).unwrap();
    let err = fails(&totebox(&["psdb", "fsck", s(&img)], b""));
    assert!(err.contains("offset 0"), "{err}");
    fails(&totebox(&["psdb", "ls", s(&img)], b""));
}

/// A tenant log built into an image verifies in place, and also after extracting the raw image
/// with the system's `tar` and checking every object with the system's `sha256sum`
/// (psdb/FORMAT.md, "Forensic procedure").
#[test]
fn log_in_an_image_survives_tar_and_sha256sum() {
    let tmp = tempfile::tempdir().unwrap();
    let img = tmp.path().join("disk.img");
    ok(totebox(&["psdb", "create", s(&img), "--size", "16M"], b""));
    let keys = ok(totebox(&["keygen", "example.com/tenant"], b""));
    let (skey, vkey) = keys.split_once('\n').unwrap();
    let vkey = vkey.trim();
    let skey_file = tmp.path().join("skey");
    std::fs::write(&skey_file, format!("{skey}\n")).unwrap();
    let input: String = (0..700).map(|i| format!("record {i}\n")).collect();
    let build = |ns: &str, input: &[u8]| {
        totebox(
            &[
                "log",
                "build",
                "--psdb",
                s(&img),
                "--namespace",
                ns,
                "--skey",
                s(&skey_file),
                "--origin",
                "example.com/tenant",
            ],
            input,
        )
    };
    // Two builds: the second continues the log in the image.
    let cut = input.find("record 300\n").unwrap();
    assert_eq!(ok(build("corporate", &input.as_bytes()[..cut])), "300\n");
    assert_eq!(ok(build("corporate", &input.as_bytes()[cut..])), "700\n");
    ok(build("personnel", b"one\ntwo\n"));
    let verify = |ns: &str| {
        totebox(
            &[
                "log",
                "verify",
                "--psdb",
                s(&img),
                "--namespace",
                ns,
                "--vkey",
                vkey,
            ],
            b"",
        )
    };
    let out = ok(verify("corporate"));
    assert!(out.starts_with("verified example.com/tenant 700 "), "{out}");
    // What was checked: 3 bundles of 3; level 0 two full tiles and a partial, level 1 a partial.
    assert!(
        out.ends_with("\nchecked 3/3 entry bundles, 4 hash tiles\n"),
        "{out}"
    );
    fails(&verify("property"));

    let out_dir = tmp.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let tar = Command::new("tar")
        .arg("-xf")
        .arg(&img)
        .arg("-C")
        .arg(&out_dir)
        .output()
        .unwrap();
    assert!(tar.status.success() && tar.stderr.is_empty(), "{tar:?}");
    let check = Command::new("sh")
        .arg("-c")
        .arg("find .psdb -name '*.sha256' -exec cat {} + | sha256sum -c --strict --quiet")
        .current_dir(&out_dir)
        .output()
        .unwrap();
    assert!(check.status.success(), "{check:?}");
    let dir_out = ok(totebox(
        &[
            "log",
            "verify",
            s(&out_dir.join("corporate")),
            "--vkey",
            vkey,
        ],
        b"",
    ));
    assert_eq!(dir_out, out);

    // A changed byte in an extracted tile is caught by both sha256sum and log verify.
    let tile = out_dir.join("corporate/tile/0/000");
    let mut bytes = std::fs::read(&tile).unwrap();
    bytes[100] ^= 1;
    std::fs::write(&tile, &bytes).unwrap();
    let check = Command::new("sh")
        .arg("-c")
        .arg("find .psdb -name '*.sha256' -exec cat {} + | sha256sum -c --strict --quiet")
        .current_dir(&out_dir)
        .output()
        .unwrap();
    assert!(!check.status.success());
    let err = fails(&totebox(
        &[
            "log",
            "verify",
            s(&out_dir.join("corporate")),
            "--vkey",
            vkey,
        ],
        b"",
    ));
    assert!(err.contains("tile/0/000"), "{err}");
}

/// An image that is a FIFO or a character device is refused before psdb opens it (a FIFO
/// would block this test forever).
#[test]
fn images_that_are_not_files_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let fifo = tmp.path().join("fifo.img");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let keys = ok(totebox(&["keygen", "x"], b""));
    let vkey = keys.lines().nth(1).unwrap();
    for img in [s(&fifo), "/dev/zero"] {
        for args in [
            vec!["psdb", "ls", img],
            vec!["psdb", "fsck", img],
            vec![
                "log",
                "verify",
                "--psdb",
                img,
                "--namespace",
                "x",
                "--vkey",
                vkey,
            ],
        ] {
            let err = fails(&totebox(&args, b""));
            assert!(err.contains("not a disk image"), "{args:?}: {err}");
        }
    }
}

/// An audit log in an image as the audit PD leaves it: folded entries in its tlog, then
/// records pending in the journal at its size, each a signed note. `log read` prints both,
/// the pending ones after their marker line and each verified; a planted record fails the
/// read, a damaged one fails it and `psdb fsck`.
#[test]
fn log_read_prints_the_audit_logs_pending_records_verified() {
    use interface::audit_log::{journal_path, journal_slots};
    let tmp = tempfile::tempdir().unwrap();
    let img = tmp.path().join("disk.img");
    let vkey_file = tmp.path().join("audit.vkey");
    let origin = interface::keys::origin("audit");
    let signer = note::Signer::generate(&origin, &[3; 32]).unwrap();
    std::fs::write(&vkey_file, format!("{}\n", signer.verifier().vkey())).unwrap();
    let line = |i: u64| format!("index={i} tenant=corporate op=read first={i} count=1");
    {
        let dev = psdb::FileDevice::create(&img, 4 << 20).unwrap();
        let mut store = psdb::Store::format(dev, psdb::FormatOptions::new([4; 16])).unwrap();
        let ns = store.open_namespace("audit").unwrap();
        let mut log = tlog::Log::create(
            psdb::NamespaceStorage::new(&mut store, ns),
            &origin,
            signer.clone(),
        )
        .unwrap();
        for i in 0..3 {
            log.append(line(i).as_bytes()).unwrap();
        }
        log.checkpoint().unwrap();
        drop(log);
        // The journal the audit PD creates with that checkpoint, and two records in it.
        store
            .put_journal(ns, &journal_path(3), journal_slots(3))
            .unwrap();
        store.flush().unwrap();
        for i in 3..5 {
            let note = signer.sign(&format!("{}\n", line(i))).unwrap();
            store
                .journal_append(ns, &journal_path(3), note.as_bytes())
                .unwrap();
        }
    }
    let read = |extra: &[&str]| {
        let mut args = vec![
            "log",
            "read",
            "--psdb",
            s(&img),
            "--namespace",
            "audit",
            "--vkey",
            s(&vkey_file),
        ];
        args.extend_from_slice(extra);
        totebox(&args, b"")
    };
    let all: Vec<String> = ok(read(&[])).lines().map(String::from).collect();
    let mut want: Vec<String> = (0..3).map(|i| format!("{i}\t{}", line(i))).collect();
    want.push("# pending (journal, signed records, not yet in a checkpoint)".to_string());
    want.extend((3..5).map(|i| format!("{i}\t{}", line(i))));
    assert_eq!(all, want);
    let some = ok(read(&["--since", "4", "--max", "1"]));
    assert_eq!(some, format!("{}\n{}\n", want[3], want[5]));
    assert_eq!(
        ok(read(&["--max", "2"])),
        format!("{}\n{}\n", want[0], want[1])
    );
    ok(totebox(&["psdb", "fsck", s(&img)], b""));
    let ls = ok(totebox(&["psdb", "ls", s(&img), "audit"], b""));
    assert!(ls.contains("journal/0000000000000003 129536\n"), "{ls}");
    let clean = std::fs::read(&img).unwrap();
    let (store, _) = psdb::Store::mount(
        psdb::RamDevice::from_image(clean.clone()),
        psdb::Mode::ReadOnly,
    )
    .unwrap();
    let volume = store.volume_id();
    let name = "audit/journal/0000000000000003";
    let member = (0..clean.len() / 512)
        .map(|k| k * 512)
        .rfind(|&at| clean[at..].starts_with(name.as_bytes()))
        .unwrap();
    let slot = |n: usize| member + 512 * (1 + n);
    // A well-framed record psdb takes for one, not signed by the audit key: the read fails,
    // naming it.
    let mut planted = clean.clone();
    let sector = psdb::journal::encode(&volume, 2, format!("{}\n", line(5)).as_bytes()).unwrap();
    planted[slot(2)..slot(3)].copy_from_slice(&sector);
    std::fs::write(&img, &planted).unwrap();
    ok(totebox(&["psdb", "fsck", s(&img)], b""));
    let err = fails(&read(&[]));
    assert!(err.contains("slot 2 (index 5)"), "{err}");
    // A flipped byte in a record: damage, for fsck and for the read.
    let mut damaged = clean;
    damaged[slot(0) + 90] ^= 0x08;
    std::fs::write(&img, &damaged).unwrap();
    let err = fails(&totebox(&["psdb", "fsck", s(&img)], b""));
    assert!(
        err.contains("damage to committed data") && err.contains("journal sector"),
        "{err}"
    );
    let err = fails(&read(&[]));
    assert!(err.contains("journal"), "{err}");
}

//! Message registers are read and written in one place: `msg_core::Message` (`received` reads
//! them, `set_mrs` writes them). No PD, no protocol crate and no part of `interface` names
//! `microkit::get_mr` or `microkit::set_mr`: they encode and decode typed messages instead, so
//! a register's meaning is stated once, in its protocol's crate. Test code (after
//! `#[cfg(test)]`, and `tests/` directories) may stand in for a kernel or a hostile peer and
//! is not scanned.

// A panic is how a test reports failure (also in the scan's helpers).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::path::{Path, PathBuf};

/// Where a PD's or a protocol's code lives, from the workspace root.
const SCANNED: &[&str] = &["pds", "crates/interface/src", "crates/msg-core/src"];

/// The protocol crates (every `crates/msg-*`) are scanned too.
fn msg_crates(root: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(root.join("crates"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("msg-"))
        })
        .map(|p| p.join("src"))
        .collect();
    v.sort();
    v
}

/// Every `.rs` file under `dir` that is not under a `tests` directory.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries {
        let p = e.unwrap().path();
        if p.is_dir() {
            if p.file_name().is_some_and(|n| n != "tests") {
                sources(&p, out);
            }
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The lines of `text` before its first `#[cfg(test)]` that name `get_mr` or `set_mr` (as a
/// whole identifier: `set_mrs` is not `set_mr`).
fn register_uses(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("#[cfg(test)]") {
            break;
        }
        for name in ["get_mr", "set_mr"] {
            let whole = line.match_indices(name).any(|(at, _)| {
                let before = line[..at].chars().next_back();
                let after = line[at + name.len()..].chars().next();
                let ident = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
                !ident(before) && !ident(after)
            });
            if whole {
                found.push((i + 1, line.trim().to_string()));
            }
        }
    }
    found
}

#[test]
fn only_msg_core_touches_message_registers() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    for dir in SCANNED
        .iter()
        .map(|d| root.join(d))
        .chain(msg_crates(&root))
    {
        sources(&dir, &mut files);
    }
    // The scan covers what it should (an empty or wrong scan would pass vacuously).
    for must in [
        "pds/wire/src/lib.rs",
        "pds/ledger/src/lib.rs",
        "pds/audit/src/lib.rs",
        "pds/psdb/src/lib.rs",
        "pds/psdb/src/main.rs",
        "pds/template/src/msg.rs",
        "crates/interface/src/psdb_client.rs",
        "crates/msg-psdb/src/lib.rs",
        "crates/msg-ledger/src/lib.rs",
        "crates/msg-audit/src/lib.rs",
    ] {
        assert!(
            files.iter().any(|f| f.ends_with(must)),
            "{must} not scanned"
        );
    }
    let core = root.join("crates/msg-core/src/lib.rs");
    let mut offenders = Vec::new();
    for f in &files {
        let uses = register_uses(&fs::read_to_string(f).unwrap());
        if f.ends_with("crates/msg-core/src/lib.rs") {
            // Message::received and Message::set_mrs, and nothing else.
            let lines: Vec<&str> = uses.iter().map(|(_, l)| l.as_str()).collect();
            assert_eq!(
                lines,
                ["microkit::set_mr(i, *w);", "*w = microkit::get_mr(i);"],
                "{}",
                core.display()
            );
            continue;
        }
        offenders
            .extend(uses.into_iter().map(|(n, l)| {
                format!("{}:{n}: {l}", f.strip_prefix(&root).unwrap_or(f).display())
            }));
    }
    assert!(
        offenders.is_empty(),
        "message registers named outside msg_core::Message (use the protocol's encode/decode):\n{}",
        offenders.join("\n")
    );
}

#[test]
fn the_scan_finds_what_it_looks_for() {
    let text = "use microkit::{get_mr, Channel};\nlet x = microkit::set_mr(0, 1);\nm.set_mrs();\n\
                fn get_mrs() {}\n#[cfg(test)]\nfn get_mr(&self) {}\n";
    let found: Vec<usize> = register_uses(text).into_iter().map(|(n, _)| n).collect();
    assert_eq!(found, [1, 2]);
}

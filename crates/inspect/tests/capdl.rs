//! The CapDL view, with the Microkit SDK: the microkit tool is run on the real system.xml and on
//! each broken copy (same provisioned ELFs), and `totebox inspect` on each spec it writes.
//! Ignored by `cargo test` (it needs the SDK and `make provision`'s ELFs); `make inspect-test`
//! runs it when an SDK is present and prints `SKIPPED: <reason>` otherwise. Environment:
//! INSPECT_MICROKIT (the tool), INSPECT_BOARD, INSPECT_CONFIG, INSPECT_IMAGE_DIR (its search
//! path), INSPECT_TOTEBOX (the totebox binary), INSPECT_OUT (a scratch directory).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{assert_found, system_xml, view_lines, Capdl, BROKEN};

struct Env {
    microkit: PathBuf,
    board: String,
    config: String,
    images: PathBuf,
    totebox: PathBuf,
    out: PathBuf,
}

fn env() -> Env {
    let v = |k: &str| {
        std::env::var(k).unwrap_or_else(|_| panic!("{k} is not set (run `make inspect-test`)"))
    };
    Env {
        microkit: v("INSPECT_MICROKIT").into(),
        board: v("INSPECT_BOARD"),
        config: v("INSPECT_CONFIG"),
        images: v("INSPECT_IMAGE_DIR").into(),
        totebox: v("INSPECT_TOTEBOX").into(),
        out: v("INSPECT_OUT").into(),
    }
}

/// Runs the microkit tool on `xml`: Ok(the spec's path) or Err(what it said).
fn microkit(e: &Env, name: &str, xml: &str) -> Result<PathBuf, String> {
    let sys = e.out.join(format!("{name}.xml"));
    std::fs::write(&sys, xml).unwrap();
    let json = e.out.join(format!("{name}.capdl.json"));
    let img = e.out.join(format!("{name}.loader.img"));
    let out = Command::new(&e.microkit)
        .arg(&sys)
        .arg("--search-path")
        .arg(&e.images)
        .args(["--board", &e.board, "--config", &e.config, "-o"])
        .arg(&img)
        .arg("-r")
        .arg(e.out.join(format!("{name}.report.txt")))
        .arg("--capdl-json")
        .arg(&json)
        .output()
        .unwrap();
    // The image holds every signing key and is not needed here.
    let _ = std::fs::remove_file(&img);
    if out.status.success() {
        Ok(json)
    } else {
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        Err(text.trim().to_string())
    }
}

/// Runs `totebox inspect`: (exit success, stdout lines).
fn totebox(e: &Env, name: &str, json: &Path, accept: bool) -> (bool, Vec<String>) {
    let mut c = Command::new(&e.totebox);
    c.arg("inspect")
        .arg(e.out.join(format!("{name}.xml")))
        .arg("--capdl")
        .arg(json)
        .arg("--elf-dir")
        .arg(&e.images);
    if accept {
        c.arg("--accept-microkit-rights");
    }
    let out = c.output().unwrap();
    let lines = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    (out.status.success(), lines)
}

fn summary(lines: &[String]) -> &str {
    lines.last().map_or("", String::as_str)
}

#[test]
#[ignore = "needs the Microkit SDK and the provisioned ELFs (make inspect-test)"]
fn the_capdl_specs_of_the_system_and_its_broken_copies() {
    let e = env();
    std::fs::create_dir_all(&e.out).unwrap();
    // The real system: no violation once the receive rights the tool mints are accepted...
    let json = microkit(&e, "system", &system_xml()).expect("microkit refused system.xml");
    let (ok, lines) = totebox(&e, "system", &json, true);
    assert!(ok, "the real system fails:\n{}", lines.join("\n"));
    let accepted: Vec<&String> = lines.iter().filter(|l| l.starts_with("ACCEPTED")).collect();
    assert!(!accepted.is_empty());
    assert!(
        accepted
            .iter()
            .all(|l| l.starts_with("ACCEPTED [capdl] endpoint-rights: ")),
        "{accepted:?}"
    );
    println!("capdl: system.xml: {}", summary(&lines));
    for l in &accepted {
        println!("  {l}");
    }
    // ...and without that, the spec shows them, and what they open between tenants.
    let (ok, lines) = totebox(&e, "system", &json, false);
    assert!(!ok);
    assert_found(
        &view_lines(&lines, "capdl"),
        &[
            "endpoint-rights: ledger_corporate can receive on psdb's endpoint (`ep_psdb`)",
            "isolation: tenant corporate's ledger ledger_corporate reaches tenant personnel's ledger ledger_personnel",
        ],
        "system.xml without --accept-microkit-rights",
    );
    println!(
        "capdl: system.xml without --accept-microkit-rights: {}",
        summary(&lines)
    );
    // Each broken copy.
    for b in BROKEN {
        let xml = (b.edit)(&system_xml());
        let name = format!("broken-{}", b.name);
        match (&b.capdl, microkit(&e, &name, &xml)) {
            (Capdl::ToolRefuses(why), Err(said)) => {
                assert!(said.contains(why), "{}: the tool said {said:?}", b.name);
                println!(
                    "capdl: {} ({}): the microkit tool refuses it (kernel side): {}",
                    b.name,
                    b.what,
                    said.lines().last().unwrap_or("")
                );
            }
            (Capdl::ToolRefuses(_), Ok(_)) => {
                panic!("{}: the microkit tool accepted it", b.name)
            }
            (Capdl::Finds(_), Err(said)) => {
                panic!("{}: the microkit tool refused it: {said}", b.name)
            }
            (Capdl::Finds(want), Ok(json)) => {
                let (ok, lines) = totebox(&e, &name, &json, true);
                assert!(!ok, "{}: passed", b.name);
                let capdl = view_lines(&lines, "capdl");
                assert_found(&capdl, want, b.name);
                println!(
                    "capdl: {} ({}): rejected, {}",
                    b.name,
                    b.what,
                    summary(&lines)
                );
                for l in capdl.iter().filter(|l| l.starts_with("VIOLATION")) {
                    println!("  {l}");
                }
                // The broken copy's spec is 15 MB: not kept.
                std::fs::remove_file(&json).unwrap();
            }
        }
    }
}

//! `totebox inspect SYSTEM.xml [--capdl CAPDL.json] [--elf-dir DIR] [--dot FILE]
//! [--accept-microkit-rights]`: the capability graph and the isolation rules (crates/inspect).
//!
//! Prints the table, then one line per finding (`VIOLATION [view] rule: ...`, or `ACCEPTED`
//! for what `--accept-microkit-rights` accepts), then one summary line saying what was checked
//! and how long it took. Exits non-zero when there is a violation. Without `--capdl` only the
//! description is checked, and the summary says so.

use std::path::Path;
use std::time::Instant;

use crate::fsio;

/// The largest system description read.
const MAX_SYSTEM: u64 = 4 << 20;
/// The largest CapDL spec read (this project's is about 14 MB).
const MAX_CAPDL: u64 = 1 << 30;

/// `totebox inspect`.
pub fn inspect(
    system: &Path,
    capdl: Option<&Path>,
    elf_dir: Option<&Path>,
    dot: Option<&Path>,
    accept_microkit_rights: bool,
) -> Result<(), String> {
    let text = fsio::read_file(system, MAX_SYSTEM)?;
    let text = String::from_utf8(text).map_err(|_| format!("{}: not UTF-8", system.display()))?;
    let json = capdl.map(|p| fsio::read_file(p, MAX_CAPDL)).transpose()?;
    let start = Instant::now();
    let opts = inspect::Options {
        accept_microkit_rights,
    };
    let report = inspect::inspect(&text, json.as_deref(), elf_dir, opts)?;
    let took = start.elapsed();
    print!("{}", report.table());
    println!();
    for f in &report.findings {
        println!("{f}");
    }
    if let Some(path) = dot {
        std::fs::write(path, report.dot())
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    let n = report.violations().count();
    let accepted = report.findings.len() - n;
    let what =
        match (&report.capdl, &json) {
            (Some(m), Some(j)) => format!(
                "checked the description and the CapDL spec ({} objects, {:.1} MB){}",
                m.objects,
                j.len() as f64 / 1e6,
                if elf_dir.is_some() {
                    " with the program images"
                } else {
                    ""
                }
            ),
            _ => format!(
            "checked the description only{} (no --capdl: what the kernel is given was not checked)",
            if elf_dir.is_some() { " with the program images" } else { "" }
        ),
        };
    println!(
        "inspect: {what} in {:.3} s: {n} violation(s), {accepted} accepted",
        took.as_secs_f64()
    );
    if n > 0 {
        return Err(format!("inspect: {n} isolation violation(s)"));
    }
    Ok(())
}

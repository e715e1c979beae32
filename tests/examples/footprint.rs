//! Each PD's ELF and memory footprint, from the built image (`system_tests::footprint`):
//!
//! ```text
//! footprint SYSTEM_XML IMAGE_DIR REPORT_TXT [--readme README.md]
//! ```
//! prints the markdown block: each PD's ELF file size (IMAGE_DIR), the frames the image's
//! initialiser creates for it (REPORT_TXT, the microkit tool's report), its stack, heap,
//! shared regions and devices, and the totals. It exits non-zero when the report and
//! system.xml disagree (a region whose frames do not add up to its size). With `--readme` it
//! also writes the block into that README between the markers (`make footprint`). A figure,
//! not a test; `tests/tests/readme_footprint.rs` checks the README against system.xml.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use system_tests::footprint;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (system, dir, report, readme) = match &args[..] {
        [s, d, r] => (s, d, r, None),
        [s, d, r, flag, f] if flag == "--readme" => (s, d, r, Some(f)),
        _ => {
            eprintln!("usage: footprint SYSTEM_XML IMAGE_DIR REPORT_TXT [--readme README.md]");
            std::process::exit(2);
        }
    };
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{p}: {e}"));
    let sys = sysdesc::System::parse(&read(system)).unwrap();
    let rep = footprint::Report::parse(&read(report)).unwrap_or_else(|e| panic!("{e}"));
    let problems = footprint::check(&sys, &rep);
    for p in &problems {
        eprintln!("footprint: {p}");
    }
    if !problems.is_empty() {
        std::process::exit(1);
    }
    let rows = footprint::rows(&sys, &rep, |elf| {
        std::fs::metadata(std::path::Path::new(dir).join(elf))
            .ok()
            .map(|m| m.len())
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let block = footprint::render(&sys, &rows, &rep);
    print!("{block}");
    if let Some(f) = readme {
        let text = footprint::replace(&read(f), &block).unwrap_or_else(|e| panic!("{f}: {e}"));
        std::fs::write(f, text).unwrap_or_else(|e| panic!("{f}: {e}"));
        eprintln!("footprint: wrote the table into {f}");
    }
}

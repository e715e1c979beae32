//! `gen-system SYSTEM.toml [--board BOARD]` prints the `system.xml` the description generates
//! for BOARD (default: its first board); `gen-system SYSTEM.toml [--board BOARD] --check
//! SYSTEM.xml` exits non-zero (saying so) when that file is not it.
#![forbid(unsafe_code)]

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut board = None;
    if let Some(i) = args.iter().position(|a| a == "--board") {
        if i + 1 >= args.len() {
            eprintln!("gen-system: --board needs a board name");
            return ExitCode::from(2);
        }
        board = Some(args.remove(i + 1));
        args.remove(i);
    }
    let (desc, check) = match args.as_slice() {
        [d] => (d, None),
        [d, flag, x] if flag == "--check" => (d, Some(x)),
        _ => {
            eprintln!("usage: gen-system SYSTEM.toml [--board BOARD] [--check SYSTEM.xml]");
            return ExitCode::from(2);
        }
    };
    let text = match std::fs::read_to_string(desc) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("gen-system: {desc}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let topo = match &board {
        Some(b) => sysdesc::topology::Topology::from_toml_for(&text, b),
        None => sysdesc::topology::Topology::from_toml(&text),
    };
    let xml = match topo {
        Ok(t) => t.to_xml(),
        Err(e) => {
            eprintln!("gen-system: {desc}: {e}");
            return ExitCode::FAILURE;
        }
    };
    match check {
        None => {
            print!("{xml}");
            ExitCode::SUCCESS
        }
        Some(path) => match std::fs::read_to_string(path) {
            Ok(have) if have == xml => ExitCode::SUCCESS,
            Ok(_) => {
                eprintln!("gen-system: {path} is not what {desc} generates: run `make {path}`");
                ExitCode::FAILURE
            }
            Err(e) => {
                eprintln!("gen-system: {path}: {e}");
                ExitCode::FAILURE
            }
        },
    }
}

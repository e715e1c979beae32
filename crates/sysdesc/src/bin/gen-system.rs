//! `gen-system SYSTEM.toml` prints the `system.xml` the description generates;
//! `gen-system SYSTEM.toml --check SYSTEM.xml` exits non-zero (saying so) when that file is not it.
#![forbid(unsafe_code)]

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (desc, check) = match args.as_slice() {
        [d] => (d, None),
        [d, flag, x] if flag == "--check" => (d, Some(x)),
        _ => {
            eprintln!("usage: gen-system SYSTEM.toml [--check SYSTEM.xml]");
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
    let xml = match sysdesc::topology::Topology::from_toml(&text) {
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
                eprintln!("gen-system: {path} is not what {desc} generates: run `make system.xml`");
                ExitCode::FAILURE
            }
            Err(e) => {
                eprintln!("gen-system: {path}: {e}");
                ExitCode::FAILURE
            }
        },
    }
}

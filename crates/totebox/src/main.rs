//! `totebox`: the host command for Totebox Envelope B.
//!
//! Every failure is one line on stderr (`totebox: <what failed>: <why>`) and a non-zero exit;
//! nothing here panics on input. Scripts call these exact forms:
//!
//! ```text
//! totebox keygen NAME
//! totebox log build DIR --skey FILE --origin ORIGIN      (entries: stdin, one per line)
//! totebox log verify DIR --vkey VKEY
//! totebox note verify FILE --vkey VKEY [--vkey VKEY ...]
//! totebox client --connect ADDR append --tenant T        (entries: stdin, one per line)
//! totebox client --connect ADDR read --tenant T --since N [--max M]
//! totebox client --connect ADDR checkpoint --tenant T
//! totebox client --connect ADDR export --tenant T DIR
//! ```
#![forbid(unsafe_code)]

mod client;
mod dir;
mod keys;
mod log_cmd;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Host tools for Totebox Envelope B: keys, offline log verification.
#[derive(Parser, Debug)]
#[command(name = "totebox", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Generate an Ed25519 note key: prints the signer key, then the verifier key.
    Keygen {
        /// The key name (e.g. the log origin).
        name: String,
    },
    /// Build or verify a C2SP tlog-tiles log.
    #[command(subcommand)]
    Log(LogCommand),
    /// Verify signed notes.
    #[command(subcommand)]
    Note(NoteCommand),
    /// Talk to a running box (what `make sim` / `make qemu` print as ADDR).
    Client {
        /// `HOST:PORT` or `unix:PATH`.
        #[arg(long)]
        connect: String,
        #[command(subcommand)]
        op: ClientCommand,
    },
}

#[derive(Subcommand, Debug)]
enum ClientCommand {
    /// Append each line of stdin as one entry; prints each assigned index.
    Append {
        #[arg(long)]
        tenant: String,
    },
    /// Print committed entries from SINCE (`index<TAB>entry` per line).
    Read {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        since: u64,
        #[arg(long, default_value_t = u64::MAX)]
        max: u64,
    },
    /// Print the latest signed checkpoint.
    Checkpoint {
        #[arg(long)]
        tenant: String,
    },
    /// Write the tenant's tlog-tiles directory (and DIR/vkey).
    Export {
        #[arg(long)]
        tenant: String,
        dir: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
enum LogCommand {
    /// Append each line of stdin as one entry, write tiles, bundles and a signed checkpoint.
    Build {
        /// The log directory (created if absent; an existing log is continued).
        dir: PathBuf,
        /// File holding the signer key string (`PRIVATE+KEY+...`).
        #[arg(long)]
        skey: PathBuf,
        /// The log's origin line (must match an existing log's).
        #[arg(long)]
        origin: String,
    },
    /// Verify a tlog-tiles directory: checkpoint signature, bundles, every tile level, root.
    Verify {
        /// The log directory.
        dir: PathBuf,
        /// Verifier key: the key string itself, or a file whose first line is one.
        #[arg(long)]
        vkey: String,
    },
}

#[derive(Subcommand, Debug)]
enum NoteCommand {
    /// Verify a signed note; prints the names whose signatures verified.
    Verify {
        /// The note file.
        file: PathBuf,
        /// Verifier keys (key strings or files); at least one.
        #[arg(long, required = true)]
        vkey: Vec<String>,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                print!("{e}");
                return ExitCode::SUCCESS;
            }
            // One line: clap's first line already says what is wrong.
            let text = e.render().to_string();
            let first = text.lines().next().unwrap_or("invalid arguments");
            eprintln!("totebox: {}", first.trim_start_matches("error: "));
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        Command::Keygen { name } => keys::keygen(&name),
        Command::Log(LogCommand::Build { dir, skey, origin }) => {
            log_cmd::build(&dir, &skey, &origin)
        }
        Command::Log(LogCommand::Verify { dir, vkey }) => log_cmd::verify(&dir, &vkey),
        Command::Note(NoteCommand::Verify { file, vkey }) => keys::note_verify(&file, &vkey),
        Command::Client { connect, op } => match op {
            ClientCommand::Append { tenant } => client::append(&connect, &tenant),
            ClientCommand::Read { tenant, since, max } => {
                client::read(&connect, &tenant, since, max)
            }
            ClientCommand::Checkpoint { tenant } => client::checkpoint(&connect, &tenant),
            ClientCommand::Export { tenant, dir } => client::export(&connect, &tenant, &dir),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("totebox: {msg}");
            ExitCode::FAILURE
        }
    }
}

//! `totebox`: the host command for Totebox Envelope B.
//!
//! Every failure is one line on stderr (`totebox: <what failed>: <why>`) and a non-zero exit;
//! nothing here panics on input. Scripts call these exact forms:
//!
//! ```text
//! totebox keygen NAME
//! totebox log build DIR --skey FILE --origin ORIGIN      (entries: stdin, one per line)
//! totebox log build --psdb IMAGE --namespace NS --skey FILE --origin ORIGIN
//! totebox log verify DIR --vkey VKEY [--tiles-only]
//! totebox log verify --psdb IMAGE --namespace NS --vkey VKEY [--tiles-only]
//! totebox log consistency OLD_CHECKPOINT DIR --vkey VKEY
//! totebox image set-key IN.elf OUT.elf --skey FILE [--symbol NAME]   (prints the vkey)
//! totebox image set-pairings IN.elf OUT.elf --pairings pairings.yaml [--public-metadata]
//! totebox psdb create IMAGE --size SIZE                  (e.g. 64M)
//! totebox psdb put IMAGE NAMESPACE PATH                  (content: stdin; exit 0 once durable)
//! totebox psdb get IMAGE NAMESPACE PATH                  (content to stdout)
//! totebox psdb ls IMAGE [NAMESPACE]
//! totebox psdb fsck IMAGE
//! totebox note verify FILE --vkey VKEY [--vkey VKEY ...]
//! totebox client --connect ADDR [--state DIR] append --tenant T   (entries: stdin, one a line)
//! totebox client --connect ADDR [--state DIR] read --tenant T --since N [--max M]
//! totebox client --connect ADDR [--state DIR] checkpoint --tenant T
//! totebox client --connect ADDR [--state DIR] export --tenant T DIR [--vkey VKEY]
//! totebox client --connect ADDR status --tenant T
//! totebox client --connect ADDR --skey FILE --archive VKEY [--cap FILE] ...   (signs every request)
//! totebox pair add --type TYPE --tenant T [--tenant T ...] --vkey VKEY [--file pairings.yaml]
//! totebox pair remove --vkey VKEY [--file pairings.yaml]
//! totebox pair add|remove ... --connect ADDR --skey ADMIN_SKEY [--archive VKEY]   (a running archive)
//! totebox client --connect ADDR --skey ADMIN_SKEY --archive VKEY audit export DIR --vkey AUDIT_VKEY
//! totebox pair list [--file pairings.yaml]
//! totebox grant --skey ADMIN_SKEY --to VKEY --archive VKEY --tenant T --op OP [--op OP]
//!               [--rows A..B] --expires DURATION                (prints a capability note)
//! totebox inspect SYSTEM.xml [--capdl CAPDL.json] [--elf-dir DIR] [--dot FILE] [--accept-microkit-rights]
//! ```
//!
//! `log verify` prints `verified ORIGIN SIZE ROOT`, then `checked B/E entry bundles, T hash
//! tiles`. Every file the offline commands read is bounded by its format's limit and must be a
//! regular file (`fsio`). The client remembers the latest checkpoint it verified for each log
//! in a state directory and refuses a rolled-back or forked one (`trust`).
#![forbid(unsafe_code)]

mod access_cmd;
mod client;
mod consistency;
mod dir;
mod fsio;
mod image;
mod inspect_cmd;
mod keys;
mod log_cmd;
mod psdb_cmd;
mod trust;

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
    /// PSDB disk images: create, put, get, list, check.
    #[command(subcommand)]
    Psdb(PsdbCommand),
    /// Boot image files: provision a PD's ELF with its own signing key.
    #[command(subcommand)]
    Image(ImageCommand),
    /// The capability graph and the isolation rules, from the description and the CapDL spec.
    Inspect {
        /// The system description.
        system: PathBuf,
        /// The microkit tool's `--capdl-json` output for it.
        #[arg(long)]
        capdl: Option<PathBuf>,
        /// The program images it names (the tool's search path): key slots checked too.
        #[arg(long)]
        elf_dir: Option<PathBuf>,
        /// Write the graph as Graphviz DOT.
        #[arg(long)]
        dot: Option<PathBuf>,
        /// Accept the receive rights Microkit 2.3 mints on every badged endpoint capability.
        #[arg(long)]
        accept_microkit_rights: bool,
    },
    /// Pairings in `pairings.yaml` (docs/access.md): add, remove, list.
    #[command(subcommand)]
    Pair(PairCommand),
    /// Print a capability (a signed note) granting OP on a tenant's rows to one key.
    Grant {
        /// File holding the ADMIN's signer key.
        #[arg(long)]
        skey: PathBuf,
        /// The holder's verifier key (the key string, or a file whose first line is one).
        #[arg(long)]
        to: String,
        /// The archive's identity verifier key (string or file; `make image` writes it).
        #[arg(long)]
        archive: String,
        #[arg(long)]
        tenant: String,
        /// `read` (entries) or `bundle` (entry bundles, for export); repeat or comma-separate.
        #[arg(long = "op", required = true)]
        ops: Vec<String>,
        /// Rows A..B (A to B-1) or A.. (A onwards); every row if absent.
        #[arg(long)]
        rows: Option<String>,
        /// How long from now it is valid: 90s, 15m, 8h, 30d.
        #[arg(long)]
        expires: String,
    },
    /// Talk to a running box (what `make sim` / `make qemu` print as ADDR).
    Client {
        /// `HOST:PORT` or `unix:PATH`.
        #[arg(long)]
        connect: String,
        /// Sign every request with the signer key in this file (else requests go unsigned).
        #[arg(long)]
        skey: Option<PathBuf>,
        /// A capability (from `totebox grant`) to attach to content reads; needs --skey.
        #[arg(long, requires = "skey")]
        cap: Option<PathBuf>,
        /// The archive's identity verifier key (string or file); needed with --skey.
        #[arg(long, requires = "skey")]
        archive: Option<String>,
        /// Where the latest verified checkpoint of each log is remembered (default:
        /// $TOTEBOX_STATE, else $XDG_STATE_HOME/totebox, else ~/.local/state/totebox).
        #[arg(long)]
        state: Option<PathBuf>,
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
    /// Print how much of its storage quota the tenant and the audit log use, the volume's free
    /// bytes, and a WARNING line for each quota at 90% or more (exit 0 all the same).
    Status {
        #[arg(long)]
        tenant: String,
    },
    /// Write the tenant's tlog-tiles directory (and DIR/vkey), its checkpoint verified first.
    Export {
        #[arg(long)]
        tenant: String,
        dir: PathBuf,
        /// The log's verifier key (the key string, or a file whose first line is one): refuse a
        /// box that states another. Without it the box's own key is used, with a warning.
        #[arg(long)]
        vkey: Option<String>,
    },
    /// The archive's audit log (needs --skey of an ADMIN paired for `*`).
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Ask the archive for its identity (unsigned; anyone may): it signs a proof over a fresh
    /// random challenge with its identity key; prints `archive VKEY` once the proof verifies.
    Identity {
        /// Refuse an archive whose identity is not this verifier key (string or file).
        #[arg(long)]
        expect: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
enum AuditCommand {
    /// Write the audit log's tlog-tiles directory (and DIR/vkey), its checkpoint verified with
    /// --vkey first; `totebox log verify DIR --vkey VKEY` accepts it.
    Export {
        dir: PathBuf,
        /// The audit log's verifier key (`make image` writes it: build/keys/audit.vkey).
        #[arg(long)]
        vkey: String,
    },
}

/// `pair add|remove --connect`: send the change to a running archive instead of editing a file.
#[derive(clap::Args, Debug)]
struct PairRemote {
    /// Send the change, signed, to the archive at `HOST:PORT` or `unix:PATH` (the file is then
    /// not touched: the initial pairings are provisioned, changes live on the archive's disk).
    #[arg(long, requires = "skey")]
    connect: Option<String>,
    /// File holding the signer key of an ADMIN paired on the archive (with --connect).
    #[arg(long, requires = "connect")]
    skey: Option<PathBuf>,
    /// The archive's identity verifier key (string or file); without it the identity the box
    /// proves is used, with a warning.
    #[arg(long, requires = "connect")]
    archive: Option<String>,
}

#[derive(Subcommand, Debug)]
enum PairCommand {
    /// Pair a key (replacing its pairing if it has one).
    Add {
        /// ADMIN, INPUT, USER or INTERFACE.
        #[arg(long = "type")]
        kind: String,
        /// A tenant it covers (repeat for more; `*` alone for every tenant).
        #[arg(long = "tenant", required = true)]
        tenants: Vec<String>,
        /// Its verifier key (the key string, or a file whose first line is one).
        #[arg(long)]
        vkey: String,
        #[arg(long, default_value = "pairings.yaml", conflicts_with = "connect")]
        file: PathBuf,
        #[command(flatten)]
        remote: PairRemote,
    },
    /// Unpair a key.
    Remove {
        #[arg(long)]
        vkey: String,
        #[arg(long, default_value = "pairings.yaml", conflicts_with = "connect")]
        file: PathBuf,
        #[command(flatten)]
        remote: PairRemote,
    },
    /// Print each pairing: TYPE, tenants, key id (as audit records name it), key. With
    /// --connect: the running archive's effective set (its initial set and every change made
    /// at run time), fetched by an ADMIN paired for `*`.
    List {
        #[arg(long, default_value = "pairings.yaml", conflicts_with = "connect")]
        file: PathBuf,
        #[command(flatten)]
        remote: PairRemote,
    },
}

#[derive(Subcommand, Debug)]
enum LogCommand {
    /// Append each line of stdin as one entry, write tiles, bundles and a signed checkpoint.
    Build {
        /// The log directory (created if absent; an existing log is continued).
        #[arg(required_unless_present = "psdb")]
        dir: Option<PathBuf>,
        #[command(flatten)]
        image: ImageArgs,
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
        #[arg(required_unless_present = "psdb")]
        dir: Option<PathBuf>,
        #[command(flatten)]
        image: ImageArgs,
        /// Verifier key: the key string itself, or a file whose first line is one.
        #[arg(long)]
        vkey: String,
        /// Check the hash tiles only: absent entry bundles are not an error (those present
        /// are still checked).
        #[arg(long)]
        tiles_only: bool,
    },
    /// Print the entries of a log (`index<TAB>entry` per line, as `client read`) after
    /// verifying it whole: e.g. the audit log, `--psdb disk.img --namespace audit`, whose
    /// records not yet in a checkpoint follow a `# pending ...` line, each verified too.
    Read {
        /// The log directory.
        #[arg(required_unless_present = "psdb")]
        dir: Option<PathBuf>,
        #[command(flatten)]
        image: ImageArgs,
        /// Verifier key: the key string itself, or a file whose first line is one.
        #[arg(long)]
        vkey: String,
        /// First entry index to print.
        #[arg(long, default_value_t = 0)]
        since: u64,
        /// At most this many entries.
        #[arg(long, default_value_t = u64::MAX)]
        max: u64,
    },
    /// Check that the log in DIR (verified whole) extends the one OLD_CHECKPOINT signed.
    Consistency {
        /// An earlier signed checkpoint of the same log.
        old: PathBuf,
        /// The log directory now (e.g. a fresh `client export`).
        dir: PathBuf,
        /// Verifier key: the key string itself, or a file whose first line is one.
        #[arg(long)]
        vkey: String,
    },
}

#[derive(Subcommand, Debug)]
enum ImageCommand {
    /// Write OUT: IN with its key slot holding the key in --skey; prints the verifier key.
    SetKey {
        /// The PD's ELF with an empty key slot (ledger.elf, audit.elf).
        input: PathBuf,
        /// The provisioned copy to write.
        output: PathBuf,
        /// File holding the signer key string (`PRIVATE+KEY+...`).
        #[arg(long)]
        skey: PathBuf,
        /// The key slot's symbol: `totebox_signing_key` (the log's checkpoint key) or
        /// `totebox_identity_key` (audit.elf: the archive identity key).
        #[arg(long, default_value = image::DEFAULT_SYMBOL)]
        symbol: String,
    },
    /// Write OUT: audit.elf IN with its pairings slot holding the initial pairing set of
    /// --pairings (and the public-metadata flag); prints the pairings.
    SetPairings {
        /// audit.elf (built, or already given its keys).
        input: PathBuf,
        /// The provisioned copy to write.
        output: PathBuf,
        /// The pairings file (`totebox pair add --file ...`); must hold an ADMIN.
        #[arg(long)]
        pairings: PathBuf,
        /// Answer unsigned metadata requests from anyone (as INTERFACE).
        #[arg(long)]
        public_metadata: bool,
    },
}

impl PairRemote {
    /// Where to send the change, if `--connect` was given (clap requires `--skey` with it).
    fn target(&self) -> Option<access_cmd::Remote<'_>> {
        match (&self.connect, &self.skey) {
            (Some(addr), Some(skey)) => Some(access_cmd::Remote {
                addr,
                skey,
                archive: self.archive.as_deref(),
            }),
            _ => None,
        }
    }
}

/// A log inside a PSDB disk image instead of a directory.
#[derive(clap::Args, Debug)]
struct ImageArgs {
    /// The PSDB disk image (in place of DIR).
    #[arg(long, requires = "namespace", conflicts_with = "dir")]
    psdb: Option<PathBuf>,
    /// The namespace in the image that holds the log.
    #[arg(long, requires = "psdb")]
    namespace: Option<String>,
}

impl ImageArgs {
    fn place(self, dir: Option<PathBuf>) -> log_cmd::Place {
        match (dir, self.psdb, self.namespace) {
            (_, Some(image), Some(namespace)) => log_cmd::Place::Psdb { image, namespace },
            (Some(dir), _, _) => log_cmd::Place::Dir(dir),
            // clap's `required_unless_present` and `requires` rule out the rest.
            (None, _, _) => log_cmd::Place::Dir(PathBuf::new()),
        }
    }
}

#[derive(Subcommand, Debug)]
enum PsdbCommand {
    /// Create an empty PSDB image of SIZE bytes (K, M, G suffixes); never overwrites a file.
    Create {
        image: PathBuf,
        #[arg(long)]
        size: String,
    },
    /// Store stdin as NAMESPACE/PATH (write-once; `checkpoint` is versioned); exit 0 once durable.
    Put {
        image: PathBuf,
        namespace: String,
        path: String,
    },
    /// Write NAMESPACE/PATH to stdout (`checkpoint`: the latest version).
    Get {
        image: PathBuf,
        namespace: String,
        path: String,
    },
    /// List namespaces, or a namespace's objects as `PATH SIZE`.
    Ls {
        image: PathBuf,
        namespace: Option<String>,
    },
    /// Check every record and checksum; exit 0 when consistent, else name the first bad record.
    Fsck { image: PathBuf },
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
            if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                eprintln!("totebox: a subcommand is missing (see `totebox --help`)");
                return ExitCode::from(2);
            }
            // One line: what clap says is wrong (its lines before the usage), joined.
            let text = e.render().to_string();
            let what: Vec<&str> = text
                .lines()
                .take_while(|l| !l.is_empty() && !l.starts_with("Usage:"))
                .map(str::trim)
                .collect();
            let what = what.join(" ");
            eprintln!("totebox: {}", what.trim_start_matches("error: "));
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        Command::Keygen { name } => keys::keygen(&name),
        Command::Log(LogCommand::Build {
            dir,
            image,
            skey,
            origin,
        }) => log_cmd::build(&image.place(dir), &skey, &origin),
        Command::Log(LogCommand::Verify {
            dir,
            image,
            vkey,
            tiles_only,
        }) => log_cmd::verify(&image.place(dir), &vkey, tiles_only),
        Command::Log(LogCommand::Read {
            dir,
            image,
            vkey,
            since,
            max,
        }) => log_cmd::read(&image.place(dir), &vkey, since, max),
        Command::Log(LogCommand::Consistency { old, dir, vkey }) => {
            consistency::consistency(&old, &dir, &vkey)
        }
        Command::Image(ImageCommand::SetKey {
            input,
            output,
            skey,
            symbol,
        }) => image::set_key(&input, &output, &skey, &symbol),
        Command::Image(ImageCommand::SetPairings {
            input,
            output,
            pairings,
            public_metadata,
        }) => image::set_pairings(&input, &output, &pairings, public_metadata)
            .map_err(|e| format!("image set-pairings: {e}")),
        Command::Psdb(cmd) => match cmd {
            PsdbCommand::Create { image, size } => psdb_cmd::create(&image, &size),
            PsdbCommand::Put {
                image,
                namespace,
                path,
            } => psdb_cmd::put(&image, &namespace, &path),
            PsdbCommand::Get {
                image,
                namespace,
                path,
            } => psdb_cmd::get(&image, &namespace, &path),
            PsdbCommand::Ls { image, namespace } => psdb_cmd::ls(&image, namespace.as_deref()),
            PsdbCommand::Fsck { image } => psdb_cmd::fsck(&image),
        }
        .map_err(|e| format!("psdb: {e}")),
        Command::Note(NoteCommand::Verify { file, vkey }) => keys::note_verify(&file, &vkey),
        Command::Inspect {
            system,
            capdl,
            elf_dir,
            dot,
            accept_microkit_rights,
        } => inspect_cmd::inspect(
            &system,
            capdl.as_deref(),
            elf_dir.as_deref(),
            dot.as_deref(),
            accept_microkit_rights,
        ),
        Command::Pair(PairCommand::Add {
            kind,
            tenants,
            vkey,
            file,
            remote,
        }) => match remote.target() {
            Some(r) => access_cmd::pair_add_remote(&r, &kind, &tenants, &vkey),
            None => access_cmd::pair_add(&file, &kind, &tenants, &vkey),
        },
        Command::Pair(PairCommand::Remove { vkey, file, remote }) => match remote.target() {
            Some(r) => access_cmd::pair_remove_remote(&r, &vkey),
            None => access_cmd::pair_remove(&file, &vkey),
        },
        Command::Pair(PairCommand::List { file, remote }) => match remote.target() {
            Some(r) => access_cmd::pair_list_remote(&r),
            None => access_cmd::pair_list(&file),
        },
        Command::Grant {
            skey,
            to,
            archive,
            tenant,
            ops,
            rows,
            expires,
        } => access_cmd::grant(&access_cmd::GrantArgs {
            skey: &skey,
            to: &to,
            archive: &archive,
            tenant: &tenant,
            ops: &ops,
            rows: rows.as_deref(),
            expires: &expires,
        }),
        Command::Client {
            connect,
            skey,
            cap,
            archive,
            state,
            op,
        } => skey
            .map(|k| access_cmd::Signing::new(&k, cap.as_deref(), archive.as_deref()))
            .transpose()
            .map(|signing| client::Connect {
                addr: connect,
                signing,
            })
            .and_then(|conn| trust::StateDir::locate(state.as_deref()).map(|state| (conn, state)))
            .and_then(|(conn, state)| match op {
                ClientCommand::Append { tenant } => client::append(&conn, &tenant, &state),
                ClientCommand::Read { tenant, since, max } => {
                    client::read(&conn, &tenant, since, max, &state)
                }
                ClientCommand::Checkpoint { tenant } => client::checkpoint(&conn, &tenant, &state),
                ClientCommand::Export { tenant, dir, vkey } => {
                    client::export(&conn, &tenant, &dir, vkey.as_deref(), &state)
                }
                ClientCommand::Status { tenant } => client::status(&conn, &tenant),
                ClientCommand::Audit(AuditCommand::Export { dir, vkey }) => {
                    client::audit_export(&conn, &dir, &vkey, &state)
                }
                ClientCommand::Identity { expect } => {
                    access_cmd::identity(&conn.addr, expect.as_deref())
                }
            }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("totebox: {msg}");
            ExitCode::FAILURE
        }
    }
}

//! `totebox log build` and `totebox log verify`.

use std::io::Read;
use std::path::{Path, PathBuf};

use base64::Engine;

use crate::dir::DirStorage;
use crate::keys;

/// The most bytes `log build` reads from stdin. The input is read whole and checked before the
/// first append, so a bad line changes nothing; this bounds that buffer.
const MAX_INPUT: u64 = 1 << 30;

/// Where a log lives.
#[derive(Debug)]
pub enum Place {
    /// A tlog-tiles directory.
    Dir(PathBuf),
    /// A namespace of a PSDB disk image.
    Psdb {
        /// The image file.
        image: PathBuf,
        /// The namespace holding the log.
        namespace: String,
    },
}

impl Place {
    fn shown(&self) -> String {
        match self {
            Place::Dir(d) => d.display().to_string(),
            Place::Psdb { image, namespace } => format!("{}:{namespace}", image.display()),
        }
    }
}

/// Appends each line of stdin (without its `\n`) to the log at `place`, creating it if absent,
/// then writes a new signed checkpoint and prints the new size.
pub fn build(place: &Place, skey: &Path, origin: &str) -> Result<(), String> {
    let signer = keys::signer_file(skey)?;
    let mut input = Vec::new();
    std::io::stdin()
        .take(MAX_INPUT + 1)
        .read_to_end(&mut input)
        .map_err(|e| format!("log build: reading stdin: {e}"))?;
    if input.len() as u64 > MAX_INPUT {
        return Err(format!(
            "log build: stdin is over {MAX_INPUT} bytes; build in batches"
        ));
    }
    let entries = split_lines(&input);
    // Check every entry before appending any, so a bad line leaves the log untouched.
    for (n, entry) in entries.iter().enumerate() {
        if entry.len() > tlog::tile::MAX_ENTRY_SIZE {
            return Err(format!(
                "log build: line {}: entry of {} bytes is over the {}-byte limit of an entry bundle",
                n + 1,
                entry.len(),
                tlog::tile::MAX_ENTRY_SIZE
            ));
        }
    }
    let shown = place.shown();
    let size = match place {
        Place::Dir(dir) => {
            let storage = DirStorage::open(dir).map_err(|e| format!("log build: {e}"))?;
            append_all(storage, origin, signer, &entries)
        }
        Place::Psdb { image, namespace } => {
            let mut store =
                open_image(image, psdb::Mode::ReadWrite).map_err(|e| format!("log build: {e}"))?;
            let ns = store
                .open_namespace(namespace)
                .map_err(|e| format!("log build: {e}"))?;
            append_all(
                psdb::NamespaceStorage::new(&mut store, ns),
                origin,
                signer,
                &entries,
            )
        }
    }
    .map_err(|e| format!("log build: {shown}: {e}"))?;
    println!("{size}");
    Ok(())
}

/// Opens (or creates) the log in `storage`, appends `entries`, checkpoints; the new size.
fn append_all<S: tlog::Storage>(
    mut storage: S,
    origin: &str,
    signer: note::Signer,
    entries: &[&[u8]],
) -> Result<u64, String> {
    let exists = storage
        .checkpoint(&mut Vec::new())
        .map_err(|e| e.to_string())?;
    let mut log = if exists {
        tlog::Log::open(storage, origin, signer).map_err(|e| e.to_string())?
    } else {
        tlog::Log::create(storage, origin, signer).map_err(|e| e.to_string())?
    };
    for entry in entries {
        log.append(entry).map_err(|e| e.to_string())?;
    }
    log.checkpoint().map_err(|e| e.to_string())?;
    Ok(log.committed_size())
}

fn open_image(image: &Path, mode: psdb::Mode) -> Result<psdb::Store<psdb::FileDevice>, String> {
    crate::fsio::check_image(image)?;
    let shown = image.display();
    let dev = psdb::FileDevice::open(image, mode == psdb::Mode::ReadWrite)
        .map_err(|e| format!("{shown}: {e}"))?;
    let (store, _) = psdb::Store::mount(dev, mode).map_err(|e| format!("{shown}: {e}"))?;
    Ok(store)
}

/// The lines of `input`, each without its `\n`; a final line without one still counts.
fn split_lines(input: &[u8]) -> Vec<&[u8]> {
    let body = input.strip_suffix(b"\n").unwrap_or(input);
    if input.is_empty() {
        return Vec::new();
    }
    body.split(|&b| b == b'\n').collect()
}

/// Verifies the tlog-tiles tree at `place` against its checkpoint and `vkey`. Prints
/// `verified <origin> <size> <root-base64>` (the line scripts read), then what was checked:
/// `checked <B>/<E> entry bundles, <T> hash tiles`. Every hash tile the size calls for must be
/// there and correct. Every entry bundle must be too, unless `tiles_only` (a public mirror may
/// hold only hash tiles): then the bundles present are still checked, and the second line
/// says how many of the expected ones that was.
pub fn verify(place: &Place, vkey: &str, tiles_only: bool) -> Result<(), String> {
    let verifier = keys::verifier_arg(vkey)?;
    let shown = place.shown();
    let tree = match place {
        Place::Dir(dir) => {
            if !dir.is_dir() {
                return Err(format!("log verify: {shown}: not a directory"));
            }
            let storage = DirStorage::open_existing(dir).map_err(|e| format!("log verify: {e}"))?;
            verify_in(storage, &verifier)
        }
        Place::Psdb { image, namespace } => {
            let mut store =
                open_image(image, psdb::Mode::ReadOnly).map_err(|e| format!("log verify: {e}"))?;
            if !store.namespaces().any(|n| n == namespace) {
                return Err(format!(
                    "log verify: {shown}: no such namespace on the image"
                ));
            }
            let ns = store
                .open_namespace(namespace)
                .map_err(|e| format!("log verify: {e}"))?;
            verify_in(
                Bounded {
                    store: &mut store,
                    ns,
                },
                &verifier,
            )
        }
    }
    .map_err(|e| format!("log verify: {shown}: {e}"))?;
    let checked = format!(
        "{}/{} entry bundles, {} hash tiles",
        tree.bundles, tree.bundles_expected, tree.hash_tiles
    );
    if let Some(missing) = tree.first_missing_bundle {
        if !tiles_only {
            return Err(format!(
                "log verify: {shown}: {} missing: only {checked} present and correct \
                 (--tiles-only checks the hash tiles alone)",
                missing.path()
            ));
        }
    }
    let root = base64::engine::general_purpose::STANDARD.encode(tree.root);
    println!("verified {} {} {}", tree.origin, tree.size, root);
    let mode = if tiles_only { " (--tiles-only)" } else { "" };
    println!("checked {checked}{mode}");
    Ok(())
}

/// `log read`: verifies the log whole (as `log verify`, every bundle required), then prints
/// its entries from `since`, at most `max`, as `index<TAB>entry` lines (invalid UTF-8 shown
/// with replacement characters, as `client read` does).
///
/// On a PSDB image, a log with a journal at its size (the audit log: records durable and
/// signed, not yet in a checkpoint; `interface::audit_log`) then has its pending records
/// printed the same way after a `# pending ...` line, each verified first with the same key
/// (its signature, and `index=` its place); one that does not verify is an error. Records of
/// a tar-extracted directory are not read (its journal file is there, see FORMAT.md).
pub fn read(place: &Place, vkey: &str, since: u64, max: u64) -> Result<(), String> {
    let verifier = keys::verifier_arg(vkey)?;
    let shown = place.shown();
    let fail = |e: String| format!("log read: {shown}: {e}");
    match place {
        Place::Dir(dir) => {
            if !dir.is_dir() {
                return Err(fail("not a directory".into()));
            }
            let storage = DirStorage::open_existing(dir).map_err(|e| fail(e.to_string()))?;
            print_entries(storage, &verifier, since, max)
                .map(|_| ())
                .map_err(fail)
        }
        Place::Psdb { image, namespace } => {
            let mut store = open_image(image, psdb::Mode::ReadOnly).map_err(fail)?;
            if !store.namespaces().any(|n| n == namespace) {
                return Err(fail("no such namespace on the image".into()));
            }
            let ns = store
                .open_namespace(namespace)
                .map_err(|e| fail(e.to_string()))?;
            let storage = Bounded {
                store: &mut store,
                ns,
            };
            let size = print_entries(storage, &verifier, since, max).map_err(fail)?;
            print_pending(&mut store, ns, &verifier, size, since, max).map_err(fail)
        }
    }
}

/// The line `log read` prints before a log's pending journal records.
pub const PENDING_LINE: &str = "# pending (journal, signed records, not yet in a checkpoint)";

/// The records pending in the journal at `size` of `ns`, if there is one: every one verified
/// (a signed note of `verifier`'s key, at its index), those in `since..since + max` printed.
fn print_pending(
    store: &mut psdb::Store<psdb::FileDevice>,
    ns: psdb::Namespace,
    verifier: &note::Verifier,
    size: u64,
    since: u64,
    max: u64,
) -> Result<(), String> {
    use interface::audit_log::{journal_path, journal_slots, verify_record};
    use std::io::Write as _;
    let path = journal_path(size);
    let Some(stat) = store
        .journal_stat(ns, &path)
        .map_err(|e| format!("{path}: {e}"))?
    else {
        return Ok(());
    };
    if stat.slots != journal_slots(size) {
        return Err(format!(
            "{path}: {} slots, where a journal from index {size} has {}",
            stat.slots,
            journal_slots(size)
        ));
    }
    let end = since.saturating_add(max);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut record = Vec::new();
    let mut header = false;
    for slot in 0..stat.used {
        let index = size + u64::from(slot);
        if !store
            .journal_read(ns, &path, slot, &mut record)
            .map_err(|e| format!("{path} slot {slot}: {e}"))?
        {
            return Err(format!("{path} slot {slot}: missing"));
        }
        let mut note = None;
        let line = verify_record(&record, verifier, index, &mut note)
            .map_err(|why| format!("{path} slot {slot} (index {index}): {why}"))?;
        if (since..end).contains(&index) {
            if !header {
                writeln!(out, "{PENDING_LINE}").map_err(|e| e.to_string())?;
                header = true;
            }
            writeln!(out, "{index}\t{line}").map_err(|e| e.to_string())?;
        }
    }
    out.flush().map_err(|e| e.to_string())
}

/// Verifies the tree in `storage` and prints its entries in `since..since + max`; the tree's
/// size.
fn print_entries<S: tlog::Storage>(
    mut storage: S,
    verifier: &note::Verifier,
    since: u64,
    max: u64,
) -> Result<u64, String> {
    use std::io::Write as _;
    let mut cp = Vec::new();
    if !storage.checkpoint(&mut cp).map_err(|e| e.to_string())? {
        return Err("checkpoint: missing".to_string());
    }
    let tree = tlog::verify_tree(&mut storage, &cp, core::slice::from_ref(verifier))
        .map_err(|e| e.to_string())?;
    if let Some(missing) = tree.first_missing_bundle {
        return Err(format!(
            "{} missing: entries cannot be read",
            missing.path()
        ));
    }
    let end = tree.size.min(since.saturating_add(max));
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut bundle = Vec::new();
    for tile in tlog::tile::entry_bundles_for_size(tree.size) {
        let first = tile.index() * tlog::tile::TILE_WIDTH;
        if first + u64::from(tile.width()) <= since || first >= end {
            continue;
        }
        if !storage
            .get(tile.path().as_str(), &mut bundle)
            .map_err(|e| e.to_string())?
        {
            return Err(format!("{} missing", tile.path()));
        }
        for (k, e) in tlog::tile::bundle_entries(&bundle).enumerate() {
            let i = first + k as u64;
            let e = e.map_err(|e| format!("{}: {e}", tile.path()))?;
            if (since..end).contains(&i) {
                writeln!(out, "{i}\t{}", String::from_utf8_lossy(e)).map_err(|e| e.to_string())?;
            }
        }
    }
    out.flush().map_err(|e| e.to_string())?;
    Ok(tree.size)
}

/// Verifies the tree in `storage` against its own latest checkpoint.
fn verify_in<S: tlog::Storage>(
    mut storage: S,
    verifier: &note::Verifier,
) -> Result<tlog::VerifiedTree, String> {
    let mut cp = Vec::new();
    if !storage.checkpoint(&mut cp).map_err(|e| e.to_string())? {
        return Err("checkpoint: missing".to_string());
    }
    tlog::verify_tree(&mut storage, &cp, core::slice::from_ref(verifier)).map_err(|e| e.to_string())
}

/// A namespace of an image, read-only, each object refused by its recorded size if that is
/// over the object's format limit (an image is outside input: its index could state anything
/// up to 4 GiB, and reading would allocate that).
struct Bounded<'s> {
    store: &'s mut psdb::Store<psdb::FileDevice>,
    ns: psdb::Namespace,
}

impl Bounded<'_> {
    fn check(&self, path: &str, max: u64) -> Result<(), String> {
        match self.store.size(self.ns, path).map_err(|e| e.to_string())? {
            Some(size) if size > max => Err(format!(
                "{path}: {size} bytes, over the {max}-byte limit for it: refused before reading"
            )),
            _ => Ok(()),
        }
    }
}

impl tlog::Storage for Bounded<'_> {
    type Error = String;

    fn put(&mut self, _: &str, _: &[u8]) -> Result<(), String> {
        Err("read-only".into())
    }

    fn set_checkpoint(&mut self, _: &[u8]) -> Result<(), String> {
        Err("read-only".into())
    }

    fn put_begin(&mut self, _: &str, _: usize) -> Result<(), String> {
        Err("read-only".into())
    }

    fn put_chunk(&mut self, _: &[u8]) -> Result<(), String> {
        Err("read-only".into())
    }

    fn get(&mut self, path: &str, out: &mut Vec<u8>) -> Result<bool, String> {
        let max = match tlog::tile::parse_tile_path(path).map(|t| t.kind()) {
            Ok(tlog::TileKind::Entries) => crate::fsio::MAX_BUNDLE,
            Ok(tlog::TileKind::Hashes(_)) => crate::fsio::MAX_TILE,
            Err(e) => return Err(format!("{path}: {e}")),
        };
        self.check(path, max)?;
        self.store
            .get(self.ns, path, out)
            .map_err(|e| e.to_string())
    }

    fn checkpoint(&mut self, out: &mut Vec<u8>) -> Result<bool, String> {
        self.check("checkpoint", crate::fsio::MAX_NOTE)?;
        self.store
            .checkpoint(self.ns, out)
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::split_lines;

    #[test]
    fn lines_without_newlines() {
        assert!(split_lines(b"").is_empty());
        assert_eq!(split_lines(b"a\nb\n"), vec![&b"a"[..], b"b"]);
        assert_eq!(split_lines(b"a\nb"), vec![&b"a"[..], b"b"]);
        assert_eq!(split_lines(b"\n"), vec![&b""[..]]);
        assert_eq!(split_lines(b"a\n\nb\n"), vec![&b"a"[..], b"", b"b"]);
    }
}

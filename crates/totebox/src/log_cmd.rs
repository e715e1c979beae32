//! `totebox log build` and `totebox log verify`.

use std::io::Read;
use std::path::Path;

use base64::Engine;

use crate::dir::DirStorage;
use crate::keys;

/// The most bytes `log build` reads from stdin. The input is read whole and checked before the
/// first append, so a bad line changes nothing; this bounds that buffer.
const MAX_INPUT: u64 = 1 << 30;

/// Appends each line of stdin (without its `\n`) to the log in `dir`, creating it if absent,
/// then writes a new signed checkpoint and prints the new size.
pub fn build(dir: &Path, skey: &Path, origin: &str) -> Result<(), String> {
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
    let storage = DirStorage::open(dir).map_err(|e| format!("log build: {e}"))?;
    let mut probe = storage;
    let exists = tlog::Storage::checkpoint(&mut probe, &mut Vec::new())
        .map_err(|e| format!("log build: {e}"))?;
    let shown = dir.display();
    let mut log = if exists {
        tlog::Log::open(probe, origin, signer).map_err(|e| format!("log build: {shown}: {e}"))?
    } else {
        tlog::Log::create(probe, origin, signer).map_err(|e| format!("log build: {shown}: {e}"))?
    };
    for entry in &entries {
        log.append(entry)
            .map_err(|e| format!("log build: {shown}: {e}"))?;
    }
    log.checkpoint()
        .map_err(|e| format!("log build: {shown}: {e}"))?;
    println!("{}", log.committed_size());
    Ok(())
}

/// The lines of `input`, each without its `\n`; a final line without one still counts.
fn split_lines(input: &[u8]) -> Vec<&[u8]> {
    let body = input.strip_suffix(b"\n").unwrap_or(input);
    if input.is_empty() {
        return Vec::new();
    }
    body.split(|&b| b == b'\n').collect()
}

/// Verifies the tlog-tiles tree in `dir` against its checkpoint and `vkey`; prints
/// `verified <origin> <size> <root-base64>`.
pub fn verify(dir: &Path, vkey: &str) -> Result<(), String> {
    let verifier = keys::verifier_arg(vkey)?;
    if !dir.is_dir() {
        return Err(format!("log verify: {}: not a directory", dir.display()));
    }
    let mut storage = DirStorage::open(dir).map_err(|e| format!("log verify: {e}"))?;
    let mut cp = Vec::new();
    if !tlog::Storage::checkpoint(&mut storage, &mut cp).map_err(|e| format!("log verify: {e}"))? {
        return Err(format!(
            "log verify: {}: checkpoint: missing",
            dir.display()
        ));
    }
    let tree = tlog::verify_tree(&mut storage, &cp, &[verifier])
        .map_err(|e| format!("log verify: {}: {e}", dir.display()))?;
    let root = base64::engine::general_purpose::STANDARD.encode(tree.root);
    println!("verified {} {} {}", tree.origin, tree.size, root);
    Ok(())
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

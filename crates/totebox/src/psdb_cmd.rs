//! `totebox psdb ...`: PSDB disk images on the host (the same engine the psdb PD runs).

use std::io::{Read, Write};
use std::path::Path;

use psdb::{FileDevice, FormatOptions, Mode, Store};

/// The most bytes `psdb put` reads from stdin: the largest object a ledger writes (a full entry
/// bundle, 256 x (2 + 65,535) bytes) with room to spare. Larger objects are refused before
/// anything is written.
const MAX_PUT: u64 = 32 << 20;

/// The path under which a namespace's versioned checkpoint is stored.
const CHECKPOINT: &str = "checkpoint";

/// Parses `64M`, `1G`, `512K`, `4096` (binary units: K = 1024).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let (digits, unit) = match s.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => s.split_at(i),
        None => (s, ""),
    };
    let shift = match unit {
        "" => 0,
        "K" | "k" | "KiB" => 10,
        "M" | "m" | "MiB" => 20,
        "G" | "g" | "GiB" => 30,
        "T" | "t" | "TiB" => 40,
        _ => return Err(format!("--size {s}: unknown unit (use K, M, G or T)")),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("--size {s}: not a size"))?;
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("--size {s}: too large"))
}

fn mount(image: &Path, mode: Mode) -> Result<Store<FileDevice>, String> {
    crate::fsio::check_image(image)?;
    let shown = image.display();
    let dev =
        FileDevice::open(image, mode == Mode::ReadWrite).map_err(|e| format!("{shown}: {e}"))?;
    let (store, report) = Store::mount(dev, mode).map_err(|e| format!("{shown}: {e}"))?;
    if let Some(p) = report.tail {
        // A crashed, never-acknowledged tail (discarded, or a whole batch kept). Stderr only.
        eprintln!("totebox: note: {shown}: tail never acknowledged: {p}");
    }
    if let Some(p) = report.damage {
        eprintln!(
            "totebox: warning: {shown}: damage to committed data at {} place(s), first {p}; kept \
             as evidence",
            report.damaged
        );
        for (ns, p, lost) in store.damaged_namespaces() {
            let what = if lost { "lost a batch" } else { "damaged" };
            eprintln!("totebox: warning: {shown}: namespace {ns} {what} at {p}: read-only");
        }
    }
    Ok(store)
}

/// `psdb create IMAGE --size SIZE`: a new, empty volume. Never overwrites an existing file.
pub fn create(image: &Path, size: &str) -> Result<(), String> {
    let bytes = parse_size(size)?;
    let shown = image.display();
    let mut volume_id = [0u8; 16];
    getrandom::fill(&mut volume_id).map_err(|e| format!("no randomness from the OS: {e}"))?;
    let dev = FileDevice::create(image, bytes).map_err(|e| format!("{shown}: {e}"))?;
    let store = Store::format(dev, FormatOptions::new(volume_id)).map_err(|e| {
        let _ = std::fs::remove_file(image);
        format!("{shown}: {e}")
    })?;
    println!("created {shown}: {} bytes free", store.free_bytes());
    Ok(())
}

/// `psdb put IMAGE NS PATH`: stdin becomes the object; exits 0 only once it is durable.
pub fn put(image: &Path, ns: &str, path: &str) -> Result<(), String> {
    let mut data = Vec::new();
    std::io::stdin()
        .take(MAX_PUT + 1)
        .read_to_end(&mut data)
        .map_err(|e| format!("reading stdin: {e}"))?;
    if data.len() as u64 > MAX_PUT {
        return Err(format!("{ns}/{path}: object over {MAX_PUT} bytes"));
    }
    let mut store = mount(image, Mode::ReadWrite)?;
    let handle = store
        .open_namespace(ns)
        .map_err(|e| format!("namespace {ns}: {e}"))?;
    let result = if path == CHECKPOINT {
        store.put_checkpoint(handle, &data)
    } else {
        store.put(handle, path, &data)
    };
    result.map_err(|e| format!("{ns}/{path}: {e}"))?;
    store
        .flush()
        .map_err(|e| format!("{ns}/{path}: flush: {e}"))
}

/// `psdb get IMAGE NS PATH`: the object to stdout (for `checkpoint`, the latest version).
pub fn get(image: &Path, ns: &str, path: &str) -> Result<(), String> {
    let mut store = mount(image, Mode::ReadOnly)?;
    let handle = open_existing(&mut store, ns)?;
    let mut out = Vec::new();
    let found = if path == CHECKPOINT {
        store.checkpoint(handle, &mut out)
    } else {
        store.get(handle, path, &mut out)
    };
    if !found.map_err(|e| format!("{ns}/{path}: {e}"))? {
        return Err(format!("{ns}/{path}: no such object"));
    }
    std::io::stdout()
        .write_all(&out)
        .map_err(|e| format!("writing stdout: {e}"))
}

fn open_existing(store: &mut Store<FileDevice>, ns: &str) -> Result<psdb::Namespace, String> {
    if !store.namespaces().any(|n| n == ns) {
        return Err(format!("namespace {ns}: not on this image"));
    }
    store
        .open_namespace(ns)
        .map_err(|e| format!("namespace {ns}: {e}"))
}

/// `psdb ls IMAGE [NS]`: namespaces, one per line; or a namespace's objects as `PATH SIZE`,
/// in byte order of path, its checkpoint (latest version) included.
pub fn ls(image: &Path, ns: Option<&str>) -> Result<(), String> {
    let mut store = mount(image, Mode::ReadOnly)?;
    let mut out = String::new();
    match ns {
        None => {
            for name in store.namespaces() {
                out.push_str(name);
                out.push('\n');
            }
        }
        Some(ns) => {
            let handle = open_existing(&mut store, ns)?;
            // In byte order; the checkpoint row is its latest version.
            for (p, n) in store.list(handle, "").map_err(|e| format!("{ns}: {e}"))? {
                out.push_str(&format!("{p} {n}\n"));
            }
        }
    }
    std::io::stdout()
        .write_all(out.as_bytes())
        .map_err(|e| format!("writing stdout: {e}"))
}

/// `psdb fsck IMAGE`: reads every record and checks every checksum; exit 0 when consistent,
/// otherwise names the first bad record (its byte offset) and what is wrong with it.
pub fn fsck(image: &Path) -> Result<(), String> {
    crate::fsio::check_image(image)?;
    let shown = image.display();
    let dev = FileDevice::open(image, false).map_err(|e| format!("{shown}: {e}"))?;
    let report = psdb::fsck(dev).map_err(|e| format!("{shown}: {e}"))?;
    if let Some(p) = report.damage {
        return Err(format!(
            "{shown}: damage to committed data at {} place(s), first {p} (kept as evidence, \
             never repaired; see psdb/FORMAT.md)",
            report.damaged
        ));
    }
    if let Some(p) = report.problem {
        if report.end > 0 {
            // What FORMAT.md's forensic procedure extracts instead: `head -c END`.
            return Err(format!(
                "{shown}: {p} (complete batches end at byte {})",
                report.end
            ));
        }
        return Err(format!("{shown}: {p}"));
    }
    println!(
        "{shown}: consistent: {} objects, {} checkpoint versions, {} data bytes, {} of {} bytes used",
        report.objects, report.checkpoint_versions, report.data_bytes, report.end, report.capacity
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64M"), Ok(64 << 20));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("512K"), Ok(512 << 10));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("64X").is_err());
        assert!(parse_size("M").is_err());
        assert!(parse_size("").is_err());
        assert!(parse_size("99999999999T").is_err());
    }
}

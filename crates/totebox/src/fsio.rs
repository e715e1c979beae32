//! Bounded, type-checked file access: every file the offline commands and the client read goes
//! through here, so no file can make them read without limit (a symlink to `/dev/zero`), block
//! (a FIFO) or wander off (a symlink leaving a log directory).
//!
//! Rules:
//! - A file is opened with `O_NONBLOCK` (opening a FIFO returns at once instead of waiting for a
//!   writer), then `fstat`ed: only a regular file is read, and only if it holds at most the
//!   caller's limit (each object's format limit), and at most limit + 1 bytes are read in case
//!   it grows meanwhile.
//! - A file the user names on the command line (`note verify FILE`, `--vkey FILE`) may be a
//!   symlink: the user chose it. An object inside a directory ([`read_in`]) may be reached
//!   through symlinks only if its canonical path stays inside the directory's canonical path,
//!   and the final open does not follow a symlink (`O_NOFOLLOW`).
//! - Writes ([`write_new`]) go to a new temporary file (`O_CREAT|O_EXCL`: never an existing
//!   file or symlink), synced, then renamed over the target (replacing a symlink there, never
//!   following it); the directory is synced after.

use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A signed note file (a checkpoint): its text (origin, size, root, extension lines) and at
/// most 100 signature lines (note::MAX_SIGNATURES) of a name and about 100 base64 bytes each.
/// 64 KiB leaves room for long names; the box sends a checkpoint in one 128 KiB frame.
pub const MAX_NOTE: u64 = 64 * 1024;
/// A key file: one key string (name, key id, base64 key) on its first line, nothing large.
pub const MAX_KEY_FILE: u64 = 64 * 1024;
/// A hash tile: 256 hashes of 32 bytes.
pub const MAX_TILE: u64 = tlog::tile::TILE_WIDTH * tlog::hash::HASH_SIZE as u64;
/// An entry bundle: 256 entries of at most 65,535 bytes, each with a 2-byte length.
pub const MAX_BUNDLE: u64 = tlog::tile::MAX_BUNDLE_SIZE as u64;
/// A PD's ELF for `image set-key` (a ledger's is a few MiB).
pub const MAX_ELF: u64 = 256 << 20;

/// Why a bounded read refused or failed.
#[derive(Debug)]
pub enum ReadError {
    /// The file system said no.
    Io(io::Error),
    /// Not a regular file (what it is instead).
    NotRegular(&'static str),
    /// Larger than the limit for what it should hold.
    TooLarge {
        /// Its size (or at least this many bytes, if it grew while being read).
        size: u64,
        /// The limit.
        max: u64,
    },
    /// Its canonical path (symlinks resolved) is outside the directory it must be in.
    Escapes(PathBuf),
    /// A symlink to nothing.
    Dangling,
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Io(e) => write!(f, "{e}"),
            ReadError::NotRegular(what) => write!(f, "not a regular file ({what}): refused"),
            ReadError::TooLarge { size, max } => write!(
                f,
                "{size} bytes, over the {max}-byte limit for it: refused before reading"
            ),
            ReadError::Escapes(to) => write!(
                f,
                "a symlink to {}, outside the directory: refused",
                to.display()
            ),
            ReadError::Dangling => f.write_str("a symlink to nothing"),
        }
    }
}

fn kind(ft: fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if ft.is_dir() {
        "a directory"
    } else if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_char_device() {
        "a character device"
    } else if ft.is_block_device() {
        "a block device"
    } else if ft.is_socket() {
        "a socket"
    } else if ft.is_symlink() {
        "a symlink"
    } else {
        "not a file"
    }
}

/// Opens `path` without blocking (and, with `nofollow`, without following a final symlink),
/// checks it is a regular file of at most `max` bytes, and reads it.
fn open_checked(path: &Path, max: u64, nofollow: bool) -> Result<Vec<u8>, ReadError> {
    let mut flags = libc::O_NONBLOCK | libc::O_CLOEXEC;
    if nofollow {
        flags |= libc::O_NOFOLLOW;
    }
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags)
        .open(path)
        .map_err(|e| {
            // O_NOFOLLOW on a symlink: ELOOP. Say what it is rather than "too many levels".
            if nofollow && e.raw_os_error() == Some(libc::ELOOP) {
                ReadError::NotRegular("a symlink")
            } else {
                ReadError::Io(e)
            }
        })?;
    let meta = file.metadata().map_err(ReadError::Io)?;
    if !meta.file_type().is_file() {
        return Err(ReadError::NotRegular(kind(meta.file_type())));
    }
    if meta.len() > max {
        return Err(ReadError::TooLarge {
            size: meta.len(),
            max,
        });
    }
    let mut out = Vec::new();
    // The size is at most `max`, so this reserve is bounded; the read is bounded anyway.
    out.try_reserve_exact(meta.len() as usize)
        .map_err(|_| ReadError::Io(io::Error::from(io::ErrorKind::OutOfMemory)))?;
    file.take(max + 1)
        .read_to_end(&mut out)
        .map_err(ReadError::Io)?;
    if out.len() as u64 > max {
        return Err(ReadError::TooLarge {
            size: out.len() as u64,
            max,
        });
    }
    Ok(out)
}

/// A file the user named: at most `max` bytes of a regular file (symlinks followed: the user
/// chose the path). Errors are `PATH: why`.
pub fn read_file(path: &Path, max: u64) -> Result<Vec<u8>, String> {
    open_checked(path, max, false).map_err(|e| format!("{}: {e}", path.display()))
}

/// Checks that a disk image the user named is a regular file or a block device (a real disk),
/// before psdb opens it: a FIFO would block the open, a character device has no size.
/// (Checked by path, then opened by psdb: a file swapped in between is the user's own race.)
pub fn check_image(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::FileTypeExt;
    let meta = fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let ft = meta.file_type();
    if ft.is_file() || ft.is_block_device() {
        Ok(())
    } else {
        Err(format!(
            "{}: {}, not a disk image (a regular file or a block device): refused",
            path.display(),
            kind(ft)
        ))
    }
}

/// Whether `path` names something (a file, a directory, a symlink, even a dangling one).
pub fn exists(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok()
}

/// The object at `rel` inside the directory whose canonical path is `root`: `Ok(None)` if
/// absent, else at most `max` bytes of a regular file whose canonical path is inside `root`.
/// `rel` must be a relative path of plain components (callers check; see `dir.rs`).
pub fn read_in(root: &Path, rel: &Path, max: u64) -> Result<Option<Vec<u8>>, ReadError> {
    let full = root.join(rel);
    match fs::symlink_metadata(&full) {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(ReadError::Io(e)),
    }
    // Every symlink on the way (the object's own, or a directory's) is resolved here.
    let canonical = match fs::canonicalize(&full) {
        Ok(c) => c,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(ReadError::Dangling),
        Err(e) => return Err(ReadError::Io(e)),
    };
    if !canonical.starts_with(root) {
        return Err(ReadError::Escapes(canonical));
    }
    open_checked(&canonical, max, true).map(Some)
}

/// Checks that `dir` (which must exist) resolves to a place inside `root` (canonical): a
/// write there cannot land outside the log directory through a symlinked subdirectory.
pub fn check_inside(root: &Path, dir: &Path) -> io::Result<()> {
    let canonical = fs::canonicalize(dir)?;
    if canonical.starts_with(root) {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "{} is a symlink to {}, outside the directory: refused",
            dir.display(),
            canonical.display()
        )))
    }
}

/// Writes `bytes` to `path` through a temporary file and a rename. The temporary file is
/// created new (never an existing file or symlink) with a unique name in `path`'s directory
/// and `mode` from the start (the umask still applies), synced, then renamed over `path`
/// (replacing a symlink there, never following it); the directory is synced after.
pub fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), String> {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let name = path
        .file_name()
        .ok_or_else(|| format!("{}: not a file name", path.display()))?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let mut attempt = 0u32;
    let (tmp, mut file) = loop {
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = path.with_file_name(format!(
            ".{}.{}.{nanos:08x}.{n}.tmp",
            name.to_string_lossy(),
            std::process::id()
        ));
        match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
        {
            Ok(f) => break (tmp, f),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < 100 => {
                attempt += 1;
            }
            Err(e) => return Err(format!("{}: {e}", tmp.display())),
        }
    };
    let written = file
        .write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("{}: {e}", tmp.display()))
        .and_then(|()| fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display())));
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written?;
    // Make the rename durable too.
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    Ok(())
}

/// The permission bits of `path` (for `image set-key`, which derives OUT's from IN's).
pub fn mode_of(path: &Path) -> Result<u32, String> {
    fs::metadata(path)
        .map(|m| m.permissions().mode())
        .map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_fifos_and_large_files_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let root = fs::canonicalize(dir.path()).unwrap();
        // A symlink to /dev/zero, as a file named by the user and inside the directory.
        let zero = root.join("checkpoint");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        let e = read_file(&zero, MAX_NOTE).unwrap_err();
        assert!(e.contains("character device"), "{e}");
        assert!(matches!(
            read_in(&root, Path::new("checkpoint"), MAX_NOTE),
            Err(ReadError::Escapes(_))
        ));
        // A FIFO with no writer: refused at once (this test would hang otherwise).
        let fifo = root.join("fifo");
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(status.success());
        let e = read_file(&fifo, MAX_NOTE).unwrap_err();
        assert!(e.contains("FIFO"), "{e}");
        assert!(matches!(
            read_in(&root, Path::new("fifo"), MAX_NOTE),
            Err(ReadError::NotRegular("a FIFO"))
        ));
        // Over the limit: refused by size, not read.
        let big = root.join("big");
        fs::write(&big, vec![b'x'; 100]).unwrap();
        assert!(matches!(
            read_in(&root, Path::new("big"), 99),
            Err(ReadError::TooLarge { size: 100, max: 99 })
        ));
        assert_eq!(
            read_in(&root, Path::new("big"), 100)
                .unwrap()
                .unwrap()
                .len(),
            100
        );
        // A directory is not a file.
        fs::create_dir(root.join("d")).unwrap();
        assert!(matches!(
            read_in(&root, Path::new("d"), 100),
            Err(ReadError::NotRegular("a directory"))
        ));
        assert!(read_in(&root, Path::new("absent"), 100).unwrap().is_none());
    }

    #[test]
    fn symlinks_may_stay_inside_the_directory_only() {
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("secret"), b"secret").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let root = fs::canonicalize(dir.path()).unwrap();
        fs::create_dir_all(root.join("tile/0")).unwrap();
        fs::write(root.join("tile/0/000"), b"inside").unwrap();
        // Inside: followed.
        std::os::unix::fs::symlink("0/000", root.join("tile/link")).unwrap();
        assert_eq!(
            read_in(&root, Path::new("tile/link"), 100)
                .unwrap()
                .unwrap(),
            b"inside"
        );
        // A file, or a directory on the way, leading outside: refused.
        std::os::unix::fs::symlink(outside.path().join("secret"), root.join("out")).unwrap();
        std::os::unix::fs::symlink(outside.path(), root.join("tile/entries")).unwrap();
        for rel in ["out", "tile/entries/secret"] {
            assert!(
                matches!(
                    read_in(&root, Path::new(rel), 100),
                    Err(ReadError::Escapes(_))
                ),
                "{rel}"
            );
        }
        std::os::unix::fs::symlink(root.join("nothing"), root.join("dangling")).unwrap();
        assert!(matches!(
            read_in(&root, Path::new("dangling"), 100),
            Err(ReadError::Dangling)
        ));
        assert!(check_inside(&root, &root.join("tile/entries")).is_err());
        assert!(check_inside(&root, &root.join("tile/0")).is_ok());
    }
}

//! A tlog-tiles directory on the host file system, as a [`tlog::Storage`].
//!
//! The layout is exactly the C2SP one (`checkpoint`, `tile/...`), so the directory can be served
//! over HTTP as a tlog-tiles log, or checked by any other implementation.
//!
//! Reads are bounded by each object's format limit and refuse anything but a regular file whose
//! canonical path is inside the directory ([`crate::fsio::read_in`]): a log directory is
//! outside input (an export from a box, a copy from a stranger).

use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

use crate::fsio::{self, ReadError};

/// Why a directory operation failed.
#[derive(Debug)]
pub enum DirError {
    /// The object path is not a relative path of plain components (`..`, `/x`, empty parts).
    BadPath(String),
    /// The object exists with different bytes: tiles and bundles are write-once.
    Immutable(String),
    /// The file system said no.
    Io(String, io::Error),
    /// The object is not a regular file inside the directory, or over its format's limit.
    Refused(String, ReadError),
}

impl core::fmt::Display for DirError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            DirError::BadPath(p) => write!(f, "{p}: not a valid object path"),
            DirError::Immutable(p) => {
                write!(
                    f,
                    "{p}: already exists with different bytes (objects are write-once)"
                )
            }
            DirError::Io(p, e) => write!(f, "{p}: {e}"),
            DirError::Refused(p, e) => write!(f, "{p}: {e}"),
        }
    }
}

/// A log directory. Every object is written to a temporary file, synced, and renamed into
/// place, and its directory is synced, before `put` returns: a reader never sees a partial
/// object, and puts are durable in the order they were made (the order [`tlog::Log::open`]
/// relies on after a crash). The checkpoint is replaced the same way.
#[derive(Debug)]
pub struct DirStorage {
    /// The directory's canonical path: every object read or written must resolve inside it.
    root: PathBuf,
    /// The put `put_begin` opened: path, length, bytes so far (put whole at its last byte).
    open: Option<(String, usize, Vec<u8>)>,
}

/// The most bytes the object at `path` may hold: a checkpoint is a signed note, a hash tile
/// 256 hashes, a bundle 256 maximal entries; any other name is not a log object.
fn limit(path: &str) -> Option<u64> {
    if path == "checkpoint" {
        return Some(fsio::MAX_NOTE);
    }
    if path == "vkey" {
        return Some(fsio::MAX_KEY_FILE);
    }
    match tlog::tile::parse_tile_path(path).ok()?.kind() {
        tlog::TileKind::Entries => Some(fsio::MAX_BUNDLE),
        tlog::TileKind::Hashes(_) => Some(fsio::MAX_TILE),
    }
}

impl DirStorage {
    /// Opens (creating if absent) the log directory at `root`.
    pub fn open(root: &Path) -> Result<DirStorage, DirError> {
        fs::create_dir_all(root).map_err(|e| DirError::Io(root.display().to_string(), e))?;
        DirStorage::open_existing(root)
    }

    /// Opens the existing log directory at `root` (for reading: nothing is created).
    pub fn open_existing(root: &Path) -> Result<DirStorage, DirError> {
        let shown = root.display().to_string();
        let root = fs::canonicalize(root).map_err(|e| DirError::Io(shown.clone(), e))?;
        if !root.is_dir() {
            return Err(DirError::Io(
                shown,
                io::Error::new(io::ErrorKind::NotADirectory, "not a directory"),
            ));
        }
        Ok(DirStorage { root, open: None })
    }

    fn resolve(&self, path: &str) -> Result<PathBuf, DirError> {
        let rel = Path::new(path);
        let plain = !path.is_empty()
            && rel.components().all(|c| matches!(c, Component::Normal(_)))
            && !path.ends_with('/');
        if !plain {
            return Err(DirError::BadPath(path.to_string()));
        }
        Ok(self.root.join(rel))
    }

    /// Reads the log object (or `vkey`) at `path` into `out`; `Ok(false)` if absent.
    pub fn read(&self, path: &str, out: &mut Vec<u8>) -> Result<bool, DirError> {
        out.clear();
        self.resolve(path)?;
        let max = limit(path).ok_or_else(|| DirError::BadPath(path.to_string()))?;
        match fsio::read_in(&self.root, Path::new(path), max) {
            Ok(Some(bytes)) => {
                *out = bytes;
                Ok(true)
            }
            Ok(None) => Ok(false),
            Err(ReadError::Io(e)) => Err(DirError::Io(path.to_string(), e)),
            Err(e) => Err(DirError::Refused(path.to_string(), e)),
        }
    }

    /// Whether the directory holds nothing at all.
    pub fn is_empty(&self) -> Result<bool, DirError> {
        let mut entries = fs::read_dir(&self.root)
            .map_err(|e| DirError::Io(self.root.display().to_string(), e))?;
        Ok(entries.next().is_none())
    }

    /// Replaces the file at `path` (`checkpoint`, `vkey`) durably, as the checkpoint is.
    pub fn replace(&self, path: &str, data: &[u8]) -> Result<(), DirError> {
        let full = self.resolve(path)?;
        self.write_durable(&full, data)
            .map_err(|e| DirError::Io(path.into(), e))
    }

    /// Writes `data` to `full` durably and atomically: a new temporary sibling (never an
    /// existing file or symlink), synced, renamed into place, then the directories up to the
    /// root synced (new directories included). A directory on the way that resolves outside
    /// the root (a symlink) is refused before anything is written.
    fn write_durable(&self, full: &Path, data: &[u8]) -> io::Result<()> {
        if let Some(parent) = full.parent() {
            fs::create_dir_all(parent)?;
            fsio::check_inside(&self.root, parent)?;
        }
        fsio::write_new(full, data, 0o644).map_err(io::Error::other)?;
        let mut dir = full.parent();
        while let Some(d) = dir {
            fs::File::open(d)?.sync_all()?;
            if d == self.root {
                break;
            }
            dir = d.parent();
        }
        Ok(())
    }
}

impl tlog::Storage for DirStorage {
    type Error = DirError;

    fn put(&mut self, path: &str, data: &[u8]) -> Result<(), DirError> {
        let full = self.resolve(path)?;
        let mut existing = Vec::new();
        if self.read(path, &mut existing)? {
            return if existing == data {
                Ok(())
            } else {
                Err(DirError::Immutable(path.into()))
            };
        }
        self.write_durable(&full, data)
            .map_err(|e| DirError::Io(path.into(), e))
    }

    fn set_checkpoint(&mut self, checkpoint: &[u8]) -> Result<(), DirError> {
        self.replace("checkpoint", checkpoint)
    }

    fn get(&mut self, path: &str, out: &mut Vec<u8>) -> Result<bool, DirError> {
        self.read(path, out)
    }

    fn put_begin(&mut self, path: &str, len: usize) -> Result<(), DirError> {
        self.resolve(path)?;
        self.open = Some((path.into(), len, Vec::new()));
        Ok(())
    }

    fn put_chunk(&mut self, data: &[u8]) -> Result<(), DirError> {
        let Some((path, len, mut got)) = self.open.take() else {
            return Err(DirError::Immutable("(no put open)".into()));
        };
        if data.len() > len - got.len() {
            return Err(DirError::Immutable(path));
        }
        got.extend_from_slice(data);
        if got.len() == len {
            return self.put(&path, &got);
        }
        self.open = Some((path, len, got));
        Ok(())
    }

    fn checkpoint(&mut self, out: &mut Vec<u8>) -> Result<bool, DirError> {
        self.read("checkpoint", out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tlog::Storage;

    #[test]
    fn write_once_and_checkpoint_versions() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = DirStorage::open(dir.path()).unwrap();
        s.put("tile/0/000.p/1", b"abc").unwrap();
        s.put("tile/0/000.p/1", b"abc").unwrap();
        assert!(matches!(
            s.put("tile/0/000.p/1", b"abd"),
            Err(DirError::Immutable(_))
        ));
        let mut out = Vec::new();
        assert!(s.get("tile/0/000.p/1", &mut out).unwrap());
        assert_eq!(out, b"abc");
        assert!(!s.get("tile/0/001", &mut out).unwrap());
        assert!(!s.checkpoint(&mut out).unwrap());
        s.set_checkpoint(b"one").unwrap();
        s.set_checkpoint(b"two").unwrap();
        assert!(s.checkpoint(&mut out).unwrap());
        assert_eq!(out, b"two");
    }

    #[test]
    fn writes_never_follow_symlinks_out() {
        let outside = tempfile::tempdir().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut s = DirStorage::open(dir.path()).unwrap();
        // A symlinked subdirectory leading outside: the put is refused, nothing lands there.
        fs::create_dir_all(dir.path().join("tile")).unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("tile/0")).unwrap();
        assert!(s.put("tile/0/000", b"abc").is_err());
        assert_eq!(fs::read_dir(outside.path()).unwrap().count(), 0);
        // A symlink at the checkpoint's place is replaced, its target untouched.
        let victim = outside.path().join("victim");
        fs::write(&victim, b"untouched").unwrap();
        std::os::unix::fs::symlink(&victim, dir.path().join("checkpoint")).unwrap();
        s.set_checkpoint(b"cp").unwrap();
        assert_eq!(fs::read(&victim).unwrap(), b"untouched");
        assert_eq!(fs::read(dir.path().join("checkpoint")).unwrap(), b"cp");
        // Objects over their format's limit are refused on read.
        fs::create_dir_all(dir.path().join("tile/1")).unwrap();
        fs::write(dir.path().join("tile/1/000"), vec![0u8; 8193]).unwrap();
        let mut out = Vec::new();
        assert!(matches!(
            s.get("tile/1/000", &mut out),
            Err(DirError::Refused(_, ReadError::TooLarge { .. }))
        ));
        assert!(matches!(
            s.get("not/a/tile", &mut out),
            Err(DirError::BadPath(_))
        ));
    }

    #[test]
    fn rejects_escaping_paths() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = DirStorage::open(dir.path()).unwrap();
        for bad in ["../x", "/etc/passwd", "", "tile/../../x", "tile/"] {
            assert!(
                matches!(s.put(bad, b"x"), Err(DirError::BadPath(_))),
                "{bad}"
            );
        }
    }
}

//! A tlog-tiles directory on the host file system, as a [`tlog::Storage`].
//!
//! The layout is exactly the C2SP one (`checkpoint`, `tile/...`), so the directory can be served
//! over HTTP as a tlog-tiles log, or checked by any other implementation.

use std::fs;
use std::io::{self, Write};
use std::path::{Component, Path, PathBuf};

/// Why a directory operation failed.
#[derive(Debug)]
pub enum DirError {
    /// The object path is not a relative path of plain components (`..`, `/x`, empty parts).
    BadPath(String),
    /// The object exists with different bytes: tiles and bundles are write-once.
    Immutable(String),
    /// The file system said no.
    Io(String, io::Error),
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
        }
    }
}

/// A log directory. Every object is written to a temporary file, synced, and renamed into
/// place, and its directory is synced, before `put` returns: a reader never sees a partial
/// object, and puts are durable in the order they were made (the order [`tlog::Log::open`]
/// relies on after a crash). The checkpoint is replaced the same way.
#[derive(Debug)]
pub struct DirStorage {
    root: PathBuf,
}

impl DirStorage {
    /// Opens (creating if absent) the log directory at `root`.
    pub fn open(root: &Path) -> Result<DirStorage, DirError> {
        fs::create_dir_all(root).map_err(|e| DirError::Io(root.display().to_string(), e))?;
        Ok(DirStorage {
            root: root.to_path_buf(),
        })
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

    fn read(&self, path: &str, out: &mut Vec<u8>) -> Result<bool, DirError> {
        out.clear();
        let full = self.resolve(path)?;
        match fs::read(&full) {
            Ok(bytes) => {
                *out = bytes;
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(DirError::Io(path.to_string(), e)),
        }
    }

    /// Writes `data` to `full` durably and atomically: a synced temporary sibling, a rename,
    /// then the directories up to the root synced (new directories included).
    fn write_durable(&self, full: &Path, data: &[u8]) -> io::Result<()> {
        if let Some(parent) = full.parent() {
            fs::create_dir_all(parent)?;
        }
        let mut tmp = full.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let mut file = fs::File::create(&tmp)?;
        file.write_all(data)?;
        file.sync_all()?;
        fs::rename(&tmp, full)?;
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
        let full = self.root.join("checkpoint");
        self.write_durable(&full, checkpoint)
            .map_err(|e| DirError::Io("checkpoint".into(), e))
    }

    fn get(&mut self, path: &str, out: &mut Vec<u8>) -> Result<bool, DirError> {
        self.read(path, out)
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

//! Namespace names and object paths: what may appear in a tar member name.
//!
//! A member is named `<namespace>/<path>`. The rules below make every such name a relative path
//! that tar extracts strictly inside `<namespace>/`:
//!
//! - a namespace name is 1..=[`MAX_NAMESPACE`] bytes of `[A-Za-z0-9._-]` starting with a letter
//!   or digit (so it is never `.`, `..` or `.psdb`, the directory PSDB's own members live in);
//! - a path is one or more `/`-separated components, each non-empty, of `[A-Za-z0-9._-]`, not
//!   starting with `.` (so no `.`/`..`, no hidden files), no leading, trailing or doubled `/`;
//!   no NUL, backslash, space or non-ASCII byte can appear;
//! - `<namespace>/<path>` is at most [`crate::tar::MAX_NAME`] (99) bytes, so it fits the ustar
//!   name field whole;
//! - the path `checkpoint` is the versioned object and is written with `put_checkpoint`; no
//!   other path may start with `checkpoint/`.

use crate::error::NameError;
use crate::tar::MAX_NAME;

/// Longest namespace name.
pub const MAX_NAMESPACE: usize = 32;
/// The versioned object's path.
pub const CHECKPOINT: &str = "checkpoint";

fn allowed(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-'
}

/// Checks a namespace name.
pub fn check_namespace(name: &str) -> Result<(), NameError> {
    let b = name.as_bytes();
    if b.is_empty() {
        return Err(NameError::Empty);
    }
    if b.len() > MAX_NAMESPACE {
        return Err(NameError::TooLong);
    }
    if !b.iter().all(|&c| allowed(c)) {
        return Err(NameError::BadChar);
    }
    if !b[0].is_ascii_alphanumeric() {
        return Err(NameError::DotComponent);
    }
    Ok(())
}

/// Checks an object path (including `checkpoint`) for use in `namespace`.
pub fn check_path(namespace: &str, path: &str) -> Result<(), NameError> {
    let b = path.as_bytes();
    if b.is_empty() {
        return Err(NameError::Empty);
    }
    if namespace.len() + 1 + b.len() > MAX_NAME {
        return Err(NameError::TooLong);
    }
    for comp in path.split('/') {
        let c = comp.as_bytes();
        if c.is_empty() {
            return Err(NameError::BadSlash);
        }
        if !c.iter().all(|&x| allowed(x)) {
            return Err(NameError::BadChar);
        }
        if c[0] == b'.' {
            return Err(NameError::DotComponent);
        }
    }
    Ok(())
}

/// Checks a path a caller may `put` (everything [`check_path`] allows except `checkpoint`).
pub fn check_object_path(namespace: &str, path: &str) -> Result<(), NameError> {
    check_path(namespace, path)?;
    if path.split('/').next() == Some(CHECKPOINT) {
        return Err(NameError::Reserved);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces() {
        assert!(check_namespace("tenant-a").is_ok());
        assert!(check_namespace("A0_b.c").is_ok());
        for bad in [
            "",
            ".psdb",
            "..",
            ".",
            "-x",
            "a/b",
            "a b",
            "a\0",
            "é",
            &"x".repeat(33),
        ] {
            assert!(check_namespace(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn paths() {
        for good in [
            "tile/0/000",
            "tile/entries/x001/x234/067.p/255",
            "checkpoint",
            "a",
        ] {
            assert!(check_path("ns", good).is_ok(), "{good}");
        }
        let long = "x".repeat(97);
        for bad in [
            "",
            "/abs",
            "a/",
            "a//b",
            "..",
            "a/../b",
            "./a",
            "a/.hidden",
            "a\\b",
            "a b",
            "a\0b",
            "ü",
            "a/\n",
            &long,
        ] {
            assert!(check_path("ns", bad).is_err(), "{bad:?}");
        }
        assert!(check_path("ns", &"x".repeat(96)).is_ok());
        assert_eq!(
            check_object_path("ns", "checkpoint"),
            Err(NameError::Reserved)
        );
        assert_eq!(
            check_object_path("ns", "checkpoint/x"),
            Err(NameError::Reserved)
        );
        assert!(check_object_path("ns", "checkpoints").is_ok());
    }
}

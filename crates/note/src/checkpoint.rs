//! Checkpoints, c2sp.org/tlog-checkpoint@v1.0.0: the note text of a signed tree head.

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;

use crate::Error;

/// A tree head: origin, tree size, root hash and optional extension lines.
///
/// Invariants (checked by [`Checkpoint::new`] and [`Checkpoint::parse`]): the origin and every
/// extension line are non-empty and contain no newline or other ASCII control character. So
/// [`Checkpoint::to_text`] is a valid note text that `parse` accepts, and `parse` followed by
/// `to_text` reproduces its input byte for byte.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Checkpoint {
    origin: String,
    size: u64,
    root: [u8; 32],
    extensions: Vec<String>,
}

fn valid_line(line: &str) -> bool {
    !line.is_empty() && !line.bytes().any(|b| b < 0x20)
}

impl Checkpoint {
    /// A checkpoint; `extensions` are the lines after the root hash (normally none).
    pub fn new(
        origin: &str,
        size: u64,
        root: [u8; 32],
        extensions: &[&str],
    ) -> Result<Self, Error> {
        if !valid_line(origin) {
            return Err(Error::CheckpointOrigin);
        }
        if !extensions.iter().all(|e| valid_line(e)) {
            return Err(Error::CheckpointExtension);
        }
        Ok(Checkpoint {
            origin: origin.to_string(),
            size,
            root,
            extensions: extensions.iter().map(|e| e.to_string()).collect(),
        })
    }

    /// Parses a checkpoint note text (as returned by [`crate::Note::text`]). The origin is not
    /// required to follow the recommended URL form; the size must be decimal without leading
    /// zeros (`0` for the empty tree) and fit a u64; the root hash must be canonical standard
    /// base64 of exactly 32 bytes.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let body = text.strip_suffix('\n').ok_or(Error::CheckpointLines)?;
        let mut lines = body.split('\n');
        let (Some(origin), Some(size), Some(root)) = (lines.next(), lines.next(), lines.next())
        else {
            return Err(Error::CheckpointLines);
        };
        if !valid_line(origin) {
            return Err(Error::CheckpointOrigin);
        }
        let size = parse_size(size)?;
        let root: [u8; 32] = BASE64
            .decode(root)
            .map_err(|_| Error::CheckpointRoot)?
            .try_into()
            .map_err(|_| Error::CheckpointRoot)?;
        let mut extensions = Vec::new();
        for line in lines {
            if !valid_line(line) {
                return Err(Error::CheckpointExtension);
            }
            extensions.push(line.to_string());
        }
        Ok(Checkpoint {
            origin: origin.to_string(),
            size,
            root,
            extensions,
        })
    }

    /// The note text: origin, size, base64 root hash and extension lines, each ending in `\n`.
    pub fn to_text(&self) -> String {
        let mut s = String::with_capacity(self.origin.len() + 70);
        s.push_str(&self.origin);
        s.push('\n');
        s.push_str(&self.size.to_string());
        s.push('\n');
        s.push_str(&BASE64.encode(self.root));
        s.push('\n');
        for e in &self.extensions {
            s.push_str(e);
            s.push('\n');
        }
        s
    }

    /// The log origin.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The tree size.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The root hash.
    pub fn root(&self) -> &[u8; 32] {
        &self.root
    }

    /// The extension lines, without their newlines.
    pub fn extensions(&self) -> &[String] {
        &self.extensions
    }
}

/// Decimal digits only (no sign, no spaces), no leading zero unless the value is 0.
fn parse_size(s: &str) -> Result<u64, Error> {
    let b = s.as_bytes();
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) || (b.len() > 1 && b[0] == b'0') {
        return Err(Error::CheckpointSize);
    }
    s.parse().map_err(|_| Error::CheckpointSize)
}

//! Batch heads (format v4): the first member of a v4 batch, which says where its manifest is.
//!
//! A v4 batch streams its members to the disk as they are put, so its manifest (which lists
//! them, with their SHA-256) can only be written after them. The batch therefore starts with a
//! one-sector member `.psdb/head/<seq as 16 hex digits>` that mount reads first: it carries the
//! batch's chain fields (as the manifest's header line does) and the manifest member's offset
//! and data size. It is written in the first phase of the flush, over the old end-of-archive
//! marker, after the members and the manifest (so on a device that keeps write order a crash
//! leaves that marker in place); nothing is acknowledged before the second phase.
//!
//! Content, ASCII, at most one sector:
//!
//! ```text
//! #psdb-head v4 seq=<n> volume=<32 hex> prev=<64 hex> maxbatch=<bytes> manifest=<offset> size=<bytes>
//! #end <sha256 hex of the line above>
//! ```

use alloc::string::String;
use core::fmt::Write;

use crate::device::SECTOR_SIZE;
use crate::manifest::{dec, push_hex, sha256, unhex, END_LINE, META_DIR};
use crate::tar;

const BLOCK: usize = SECTOR_SIZE;

/// Bytes a head member takes on disk: its header and one data sector.
pub const HEAD_LEN: u64 = 2 * BLOCK as u64;

/// Name of the head member of batch `seq`.
pub fn head_name(seq: u64) -> String {
    let mut s = String::new();
    let _ = write!(s, "{META_DIR}/head/{seq:016x}");
    s
}

/// A parsed, hash-checked head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    pub seq: u64,
    pub volume: [u8; 16],
    pub prev: [u8; 32],
    pub max_batch: u64,
    /// Offset of the manifest member's header.
    pub manifest: u64,
    /// The manifest member's data bytes.
    pub size: u64,
}

impl Head {
    /// The head's text.
    pub fn text(&self) -> String {
        let mut s = String::new();
        let _ = write!(s, "#psdb-head v4 seq={} volume=", self.seq);
        push_hex(&mut s, &self.volume);
        s.push_str(" prev=");
        push_hex(&mut s, &self.prev);
        let _ = writeln!(
            s,
            " maxbatch={} manifest={} size={}",
            self.max_batch, self.manifest, self.size
        );
        let end = sha256(s.as_bytes());
        s.push_str("#end ");
        push_hex(&mut s, &end);
        s.push('\n');
        s
    }

    /// The whole member (header, data, padding): [`HEAD_LEN`] bytes.
    pub fn member(&self) -> [u8; HEAD_LEN as usize] {
        let text = self.text();
        let mut v = [0u8; HEAD_LEN as usize];
        v[..BLOCK].copy_from_slice(&tar::header(
            head_name(self.seq).as_bytes(),
            text.len() as u64,
        ));
        let n = text.len().min(BLOCK);
        v[BLOCK..BLOCK + n].copy_from_slice(&text.as_bytes()[..n]);
        v
    }

    /// Reads the head member at `block` ([`HEAD_LEN`] bytes): the head if it is one of batch
    /// `seq` with a header exactly as PSDB writes it and zero padding.
    pub fn from_member(block: &[u8], seq: u64) -> Option<Head> {
        if block.len() != HEAD_LEN as usize {
            return None;
        }
        let (name, size) = tar::parse(&block[..BLOCK])?;
        if name != head_name(seq).as_bytes() || size as usize > BLOCK {
            return None;
        }
        if block[..BLOCK] != tar::header(name, size)[..] {
            return None;
        }
        let data = &block[BLOCK..];
        if data[size as usize..].iter().any(|&b| b != 0) {
            return None;
        }
        Head::parse(&data[..size as usize]).filter(|h| h.seq == seq)
    }

    /// Parses a head's data; `None` if it is not exactly a head PSDB writes.
    pub fn parse(data: &[u8]) -> Option<Head> {
        let n = data.len();
        if !(END_LINE..=BLOCK).contains(&n) || !data[n - END_LINE..].starts_with(b"#end ") {
            return None;
        }
        let body = &data[..n - END_LINE];
        let end = unhex::<32>(&data[n - END_LINE + 5..n - 1])?;
        if data[n - 1] != b'\n' || sha256(body) != end {
            return None;
        }
        let line = body.strip_suffix(b"\n")?;
        let rest = line.strip_prefix(b"#psdb-head v4 seq=")?;
        let mut f = rest.split(|&b| b == b' ');
        let mut field = |name: &[u8]| f.next().and_then(|s| s.strip_prefix(name));
        let seq = dec(field(b"")?)?;
        let volume = unhex::<16>(field(b"volume=")?)?;
        let prev = unhex::<32>(field(b"prev=")?)?;
        let max_batch = dec(field(b"maxbatch=")?)?;
        let manifest = dec(field(b"manifest=")?)?;
        let size = dec(field(b"size=")?)?;
        if field(b"").is_some() {
            return None;
        }
        Some(Head {
            seq,
            volume,
            prev,
            max_batch,
            manifest,
            size,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_reject() {
        let h = Head {
            seq: u64::MAX,
            volume: [0xff; 16],
            prev: [0xee; 32],
            max_batch: 256 << 20,
            manifest: u64::MAX,
            size: u64::MAX,
        };
        let m = h.member();
        assert_eq!(Head::from_member(&m, u64::MAX), Some(h));
        assert_eq!(Head::from_member(&m, 7), None);
        for pos in 0..m.len() {
            let mut bad = m;
            bad[pos] ^= 1;
            assert_ne!(Head::from_member(&bad, u64::MAX), Some(h), "flip at {pos}");
        }
    }
}

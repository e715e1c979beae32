//! Commit records: what tells a torn tail from damage to committed data.
//!
//! A batch is written in two phases, each ended by a device flush: first the manifest and the
//! members (with the end-of-archive marker after them), then the batch's commit record, a
//! one-sector member `.psdb/commit/<seq as 16 hex digits>` placed right after the batch. The
//! batch is acknowledged only when the second flush returns. So:
//!
//! - a **valid commit record** proves its batch was durable, whole, before anything claimed it:
//!   a member of that batch that does not verify was altered afterwards. That is damage to
//!   committed data: it is reported and kept on disk, never discarded or overwritten;
//! - a batch **without one** was never acknowledged. If its members verify it is kept (nothing
//!   is lost by keeping a complete batch); if they do not, it is a torn tail and may be
//!   discarded.
//!
//! The record also carries the batch's length, its manifest's hash and the namespaces it wrote,
//! so that a committed batch whose manifest is damaged can be stepped over (the chain goes on
//! after it) and the namespaces it touched are known: they may have lost a checkpoint version,
//! so they are marked damaged rather than served at an older state.
//!
//! Content, ASCII, at most one sector:
//!
//! ```text
//! #psdb-commit v1 seq=<n> volume=<32 hex> batch=<offset> length=<bytes> manifest=<64 hex> ns=<a,b,...|*|->
//! #end <sha256 hex of the line above>
//! ```
//!
//! `ns=*` means "more namespaces than fit" (every namespace is then suspect if the manifest is
//! lost); `ns=-` means none (the volume batch).

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

use crate::device::SECTOR_SIZE;
use crate::manifest::{dec, push_hex, sha256, unhex, META_DIR};
use crate::names::check_namespace;
use crate::tar;

const BLOCK: u64 = SECTOR_SIZE as u64;

/// Bytes a commit member takes on disk: its header and one data sector.
pub const COMMIT_LEN: u64 = 2 * BLOCK;

/// Longest commit text: one sector.
const MAX_TEXT: usize = BLOCK as usize;

/// Name of the commit member of batch `seq`.
pub fn commit_name(seq: u64) -> String {
    let mut s = String::new();
    let _ = write!(s, "{META_DIR}/commit/{seq:016x}");
    s
}

/// Which namespaces a batch wrote, as its commit record states them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Touched {
    /// These (sorted, without duplicates).
    Some(Vec<String>),
    /// More than fit in the record: any namespace may be affected.
    All,
}

/// A parsed, hash-checked commit record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    pub seq: u64,
    pub volume: [u8; 16],
    /// Offset of the batch's manifest member.
    pub batch: u64,
    /// The batch's length without this record (manifest member and members).
    pub length: u64,
    /// The batch manifest's `#end` hash (the next manifest's `prev`).
    pub manifest: [u8; 32],
    pub touched: Touched,
}

impl Commit {
    /// The record's text; `Touched::Some` lists that do not fit one sector become `*`.
    pub fn text(&self) -> String {
        let head = |ns: &str| {
            let mut s = String::new();
            let _ = write!(s, "#psdb-commit v1 seq={} volume=", self.seq);
            push_hex(&mut s, &self.volume);
            let _ = write!(s, " batch={} length={} manifest=", self.batch, self.length);
            push_hex(&mut s, &self.manifest);
            let _ = writeln!(s, " ns={ns}");
            s
        };
        let list = match &self.touched {
            Touched::Some(v) if v.is_empty() => String::from("-"),
            Touched::Some(v) => v.join(","),
            Touched::All => String::from("*"),
        };
        let mut line = head(&list);
        if line.len() + crate::manifest::END_LINE > MAX_TEXT {
            line = head("*");
        }
        let end = sha256(line.as_bytes());
        line.push_str("#end ");
        push_hex(&mut line, &end);
        line.push('\n');
        line
    }

    /// Parses a record's data; `None` if it is not exactly a record PSDB writes.
    pub fn parse(data: &[u8]) -> Option<Commit> {
        let n = data.len();
        let end_line = crate::manifest::END_LINE;
        if !(end_line..=MAX_TEXT).contains(&n) || !data[n - end_line..].starts_with(b"#end ") {
            return None;
        }
        let body = &data[..n - end_line];
        let end = unhex::<32>(&data[n - end_line + 5..n - 1])?;
        if data[n - 1] != b'\n' || sha256(body) != end {
            return None;
        }
        let line = body.strip_suffix(b"\n")?;
        let rest = line.strip_prefix(b"#psdb-commit v1 seq=")?;
        let mut f = rest.split(|&b| b == b' ');
        let mut field = |name: &[u8]| f.next().and_then(|s| s.strip_prefix(name));
        let seq = dec(field(b"")?)?;
        let volume = unhex::<16>(field(b"volume=")?)?;
        let batch = dec(field(b"batch=")?)?;
        let length = dec(field(b"length=")?)?;
        let manifest = unhex::<32>(field(b"manifest=")?)?;
        let ns = field(b"ns=")?;
        if field(b"").is_some() {
            return None;
        }
        let touched = match ns {
            b"*" => Touched::All,
            b"-" => Touched::Some(Vec::new()),
            list => {
                let mut v: Vec<String> = Vec::new();
                for name in list.split(|&b| b == b',') {
                    let name = core::str::from_utf8(name).ok()?;
                    check_namespace(name).ok()?;
                    if v.last().is_some_and(|l| l.as_str() >= name) {
                        return None;
                    }
                    v.push(name.into());
                }
                Touched::Some(v)
            }
        };
        Some(Commit {
            seq,
            volume,
            batch,
            length,
            manifest,
            touched,
        })
    }

    /// The whole member (header, data, padding): [`COMMIT_LEN`] bytes.
    pub fn member(&self) -> Vec<u8> {
        let text = self.text();
        let mut v = Vec::with_capacity(COMMIT_LEN as usize);
        v.extend_from_slice(&tar::header(
            commit_name(self.seq).as_bytes(),
            text.len() as u64,
        ));
        v.extend_from_slice(text.as_bytes());
        v.resize(COMMIT_LEN as usize, 0);
        v
    }

    /// Reads the commit member at `block` (two sectors): the record if it is one of batch `seq`
    /// with a header exactly as PSDB writes it and zero padding.
    pub fn from_member(block: &[u8], seq: u64) -> Option<Commit> {
        if block.len() != COMMIT_LEN as usize {
            return None;
        }
        let (name, size) = tar::parse(&block[..BLOCK as usize])?;
        if name != commit_name(seq).as_bytes() || size as usize > MAX_TEXT {
            return None;
        }
        if block[..BLOCK as usize] != tar::header(name, size)[..] {
            return None;
        }
        let data = &block[BLOCK as usize..];
        if data[size as usize..].iter().any(|&b| b != 0) {
            return None;
        }
        Commit::parse(&data[..size as usize]).filter(|c| c.seq == seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(touched: Touched) -> Commit {
        Commit {
            seq: 7,
            volume: [3; 16],
            batch: 4096,
            length: 8192,
            manifest: [9; 32],
            touched,
        }
    }

    #[test]
    fn roundtrip_and_reject() {
        let c = sample(Touched::Some(vec!["audit".into(), "corporate".into()]));
        let m = c.member();
        assert_eq!(m.len() as u64, COMMIT_LEN);
        assert_eq!(Commit::from_member(&m, 7), Some(c.clone()));
        assert_eq!(Commit::from_member(&m, 8), None);
        for pos in (0..m.len()).step_by(7) {
            let mut bad = m.clone();
            bad[pos] ^= 1;
            assert_ne!(
                Commit::from_member(&bad, 7),
                Some(c.clone()),
                "flip at {pos}"
            );
        }
        let none = sample(Touched::Some(Vec::new()));
        assert_eq!(Commit::from_member(&none.member(), 7), Some(none));
        let all = sample(Touched::All);
        assert_eq!(Commit::from_member(&all.member(), 7), Some(all));
    }

    #[test]
    fn long_lists_become_all() {
        let many = (0..20)
            .map(|i| alloc::format!("namespace-{i:02}-padding-xxxxxxxx"))
            .collect();
        let c = sample(Touched::Some(many));
        let got = Commit::from_member(&c.member(), 7).unwrap();
        assert_eq!(got.touched, Touched::All);
    }
}

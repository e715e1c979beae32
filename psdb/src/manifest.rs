//! Batch manifests: the first member of every v2/v3 batch, the last before the commit record in
//! a v4 batch (after its head and members: [`crate::head`]), readable by `sha256sum -c`.
//!
//! A manifest is ASCII text, one `\n`-terminated line each:
//!
//! ```text
//! #psdb-batch v4 seq=<n> volume=<32 hex> prev=<64 hex> maxbatch=<n>
//! #o <size>                                  ┐ an immutable object: a comment with its size,
//! <sha256 hex>  <namespace>/<path>           ┘ then a `sha256sum` line
//! #c <size> <sha256 hex>  <namespace>/checkpoint            a checkpoint version
//! #s <size> <sha256 hex>  .psdb/checkpoint/<namespace>.sha256   its checksum file
//! #j <size>  <namespace>/<path>              a journal (v3): preallocated, no checksum
//! #end <sha256 hex of every byte before this line>
//! ```
//!
//! This code writes `v4`; it reads `v2`, `v3` and `v4` (a `v2` manifest cannot hold a `#j`
//! line, as v2 had no journals; v4 differs from v3 only in where the manifest lies in its
//! batch, which the header's version tells the mount code). `sha256sum` skips lines starting with `#`, so `sha256sum -c --strict`
//! on a manifest checks exactly the immutable objects of its batch (a journal's content is
//! written after its batch, one record at a time: see [`crate::journal`]). Checkpoint versions share one name, so only the
//! latest survives extraction; each is followed by a member `.psdb/checkpoint/<ns>.sha256`
//! holding `<sha256>  <ns>/checkpoint`, which extraction also leaves at its latest version.
//! Members appear in the batch in manifest order. Numbers are canonical decimal, hex is lower
//! case; anything else is malformed.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;
use core::ops::Range;

use sha2::{Digest, Sha256};

use crate::device::SECTOR_SIZE;
use crate::error::Corruption;
use crate::head::HEAD_LEN;
use crate::names::{check_namespace, check_object_path, CHECKPOINT};
use crate::tar::member_len;

/// The format version this code writes (it reads 2, 3 and 4).
pub const VERSION: u8 = 4;

/// Length of the final `#end <hex>\n` line.
pub const END_LINE: usize = 5 + 64 + 1;
/// Directory of PSDB's own members; no namespace can be called this.
pub const META_DIR: &str = ".psdb";

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// SHA-256 computed piece by piece (a member streamed to or from the disk).
#[derive(Debug, Clone, Default)]
pub struct Hasher(Sha256);

impl Hasher {
    /// An empty hash state.
    pub fn new() -> Self {
        Hasher(Sha256::new())
    }

    /// Adds `data`.
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    /// The hash of everything added.
    pub fn finish(self) -> [u8; 32] {
        self.0.finalize().into()
    }
}

/// Appends lowercase hex.
pub fn push_hex(out: &mut String, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for &b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 15)]));
    }
}

pub(crate) fn unhex<const N: usize>(s: &[u8]) -> Option<[u8; N]> {
    if s.len() != 2 * N {
        return None;
    }
    let nib = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        *o = (nib(s[2 * i])? << 4) | nib(s[2 * i + 1])?;
    }
    Some(out)
}

pub(crate) fn dec(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 20 || (s.len() > 1 && s[0] == b'0') {
        return None;
    }
    let mut v = 0u64;
    for &c in s {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    Some(v)
}

/// Name of the manifest member of batch `seq`.
pub fn manifest_name(seq: u64) -> String {
    let mut s = String::new();
    let _ = write!(s, "{META_DIR}/batch/{seq:016x}.sha256");
    s
}

/// Name of the checkpoint checksum member of `namespace`.
pub fn sidecar_name(namespace: &str) -> String {
    let mut s = String::new();
    let _ = write!(s, "{META_DIR}/checkpoint/{namespace}.sha256");
    s
}

/// Content of the checkpoint checksum member: a `sha256sum` line for `<namespace>/checkpoint`.
pub fn sidecar_content(namespace: &str, checkpoint_hash: &[u8; 32]) -> String {
    let mut s = String::new();
    push_hex(&mut s, checkpoint_hash);
    let _ = writeln!(s, "  {namespace}/{CHECKPOINT}");
    s
}

/// The first line of a manifest.
pub fn header_line(seq: u64, volume: &[u8; 16], prev: &[u8; 32], max_batch: u64) -> String {
    let mut s = String::new();
    let _ = write!(s, "#psdb-batch v{VERSION} seq={seq} volume=");
    push_hex(&mut s, volume);
    s.push_str(" prev=");
    push_hex(&mut s, prev);
    let _ = writeln!(s, " maxbatch={max_batch}");
    s
}

/// What kind of member a manifest line describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A write-once object `<ns>/<path>`.
    Object,
    /// A version of `<ns>/checkpoint`.
    Checkpoint,
    /// `.psdb/checkpoint/<ns>.sha256`, following its checkpoint version.
    Sidecar,
    /// A journal `<ns>/<path>` (v3): `size` zero bytes at creation, records written later.
    Journal,
}

/// Appends the manifest line(s) of one member.
pub fn push_record(out: &mut String, kind: Kind, size: u64, hash: &[u8; 32], name: &str) {
    let _ = match kind {
        Kind::Object => writeln!(out, "#o {size}"),
        Kind::Checkpoint => write!(out, "#c {size} "),
        Kind::Sidecar => write!(out, "#s {size} "),
        Kind::Journal => {
            let _ = writeln!(out, "#j {size}  {name}");
            return;
        }
    };
    push_hex(out, hash);
    let _ = writeln!(out, "  {name}");
}

/// One member of a batch, as its manifest lists it.
#[derive(Debug, Clone)]
pub struct Record {
    pub kind: Kind,
    pub size: u64,
    pub hash: [u8; 32],
    /// The member name's byte range in the manifest text.
    pub name: Range<usize>,
    /// Length of the namespace part of the name (`<ns>/...`, or the ns inside a sidecar name).
    pub ns_len: usize,
}

/// A parsed, hash-checked manifest.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub seq: u64,
    pub volume: [u8; 16],
    pub prev: [u8; 32],
    pub max_batch: u64,
    pub records: Vec<Record>,
    /// SHA-256 of the text before the `#end` line: the next batch's `prev`.
    pub end: [u8; 32],
    /// The format version of its header line (2, 3 or 4).
    pub version: u8,
    /// Bytes of the whole batch without its commit record: this manifest member plus every
    /// listed member, and in v4 the head member ([`crate::head::HEAD_LEN`]).
    pub length: u64,
    /// Where the first listed member starts, from the start of the batch: after the manifest
    /// member (v2, v3) or after the head (v4).
    pub members_off: u64,
    /// Where the manifest member starts, from the start of the batch: 0 (v2, v3), after the
    /// head and the members (v4).
    pub manifest_off: u64,
    pub text: Vec<u8>,
}

impl Manifest {
    /// The member name of `r`.
    pub fn name(&self, r: &Record) -> &str {
        core::str::from_utf8(&self.text[r.name.clone()]).unwrap_or("")
    }

    /// Checks the `#end` hash, then parses. `max_batch` bounds sizes (`None` for batch 0).
    pub fn parse(text: Vec<u8>) -> Result<Manifest, Corruption> {
        let n = text.len();
        if n < END_LINE || !text[n - END_LINE..].starts_with(b"#end ") || text[n - 1] != b'\n' {
            return Err(Corruption::ManifestHash);
        }
        let end = unhex::<32>(&text[n - END_LINE + 5..n - 1]).ok_or(Corruption::ManifestHash)?;
        if sha256(&text[..n - END_LINE]) != end {
            return Err(Corruption::ManifestHash);
        }
        let body = &text[..n - END_LINE];
        let bad = Corruption::BadManifest;
        let mut lines = LineIter { text: body, pos: 0 };
        let (_, first) = lines.next().ok_or(bad)?;
        let (version, rest) = if let Some(r) = first.strip_prefix(b"#psdb-batch v4 seq=") {
            (4u8, r)
        } else if let Some(r) = first.strip_prefix(b"#psdb-batch v3 seq=") {
            (3, r)
        } else {
            (2, first.strip_prefix(b"#psdb-batch v2 seq=").ok_or(bad)?)
        };
        let mut f = rest.split(|&b| b == b' ');
        let seq = dec(f.next().ok_or(bad)?).ok_or(bad)?;
        let volume = unhex::<16>(
            f.next()
                .and_then(|s| s.strip_prefix(b"volume="))
                .ok_or(bad)?,
        )
        .ok_or(bad)?;
        let prev =
            unhex::<32>(f.next().and_then(|s| s.strip_prefix(b"prev=")).ok_or(bad)?).ok_or(bad)?;
        let max_batch = dec(f
            .next()
            .and_then(|s| s.strip_prefix(b"maxbatch="))
            .ok_or(bad)?)
        .ok_or(bad)?;
        if f.next().is_some() {
            return Err(bad);
        }
        // One record per `#` line after the header: allocated once, at its size (a manifest of
        // the limit's size holds tens of thousands; growing by doubling would need up to three
        // times their memory while mounting).
        let count = body
            .split(|&b| b == b'\n')
            .skip(1)
            .filter(|l| l.first() == Some(&b'#'))
            .count();
        let mut records = Vec::with_capacity(count);
        let own = member_len(n as u64) + if version >= 4 { HEAD_LEN } else { 0 };
        let mut length = own;
        while let Some((start, line)) = lines.next() {
            let (kind, size, hash, name_start, name) = if let Some(s) = line.strip_prefix(b"#o ") {
                let size = dec(s).ok_or(bad)?;
                let (start2, l2) = lines.next().ok_or(bad)?;
                let (hash, name) = check_line(l2).ok_or(bad)?;
                (Kind::Object, size, hash, start2 + 66, name)
            } else if let Some(s) = line.strip_prefix(b"#j ") {
                if version < 3 {
                    return Err(bad);
                }
                let sp = s.iter().position(|&b| b == b' ').ok_or(bad)?;
                let size = dec(&s[..sp]).ok_or(bad)?;
                let name = s[sp..].strip_prefix(b"  ").ok_or(bad)?;
                (Kind::Journal, size, [0; 32], start + 3 + sp + 2, name)
            } else {
                let kind = if line.starts_with(b"#c ") {
                    Kind::Checkpoint
                } else if line.starts_with(b"#s ") {
                    Kind::Sidecar
                } else {
                    return Err(bad);
                };
                let s = &line[3..];
                let sp = s.iter().position(|&b| b == b' ').ok_or(bad)?;
                let size = dec(&s[..sp]).ok_or(bad)?;
                let (hash, name) = check_line(&s[sp + 1..]).ok_or(bad)?;
                (kind, size, hash, start + 3 + sp + 1 + 66, name)
            };
            let ns_len = check_name(kind, name, records.last(), &text, size, &hash)?;
            length = length
                .checked_add(member_len(size))
                .filter(|&l| l <= max_batch.max(own))
                .ok_or(bad)?;
            records.push(Record {
                kind,
                size,
                hash,
                name: name_start..name_start + name.len(),
                ns_len,
            });
        }
        if seq == 0 && !records.is_empty() {
            return Err(bad);
        }
        let (members_off, manifest_off) = if version >= 4 {
            (HEAD_LEN, length - member_len(n as u64))
        } else {
            (member_len(n as u64), 0)
        };
        Ok(Manifest {
            seq,
            volume,
            prev,
            max_batch,
            records,
            end,
            version,
            length,
            members_off,
            manifest_off,
            text,
        })
    }
}

/// `<64 hex>  <name>` → (hash, name).
fn check_line(l: &[u8]) -> Option<([u8; 32], &[u8])> {
    if l.len() < 67 || &l[64..66] != b"  " {
        return None;
    }
    Some((unhex::<32>(&l[..64])?, &l[66..]))
}

/// Validates a member name against its kind; returns the namespace length.
fn check_name(
    kind: Kind,
    name: &[u8],
    prev: Option<&Record>,
    text: &[u8],
    size: u64,
    hash: &[u8; 32],
) -> Result<usize, Corruption> {
    let name = core::str::from_utf8(name).map_err(|_| Corruption::BadName)?;
    match kind {
        Kind::Object | Kind::Checkpoint | Kind::Journal => {
            let (ns, path) = name.split_once('/').ok_or(Corruption::BadName)?;
            check_namespace(ns).map_err(|_| Corruption::BadName)?;
            let ok = match kind {
                Kind::Object => check_object_path(ns, path).is_ok(),
                // A journal is whole slots, at least one.
                Kind::Journal => {
                    check_object_path(ns, path).is_ok()
                        && size > 0
                        && size.is_multiple_of(SECTOR_SIZE as u64)
                }
                _ => path == CHECKPOINT,
            };
            if !ok || size > u64::from(u32::MAX) {
                return Err(Corruption::BadName);
            }
            Ok(ns.len())
        }
        Kind::Sidecar => {
            // Must directly follow its checkpoint, with exactly the content PSDB writes.
            let p = prev
                .filter(|p| p.kind == Kind::Checkpoint)
                .ok_or(Corruption::BadName)?;
            let ns = core::str::from_utf8(&text[p.name.start..p.name.start + p.ns_len])
                .map_err(|_| Corruption::BadName)?;
            let content = sidecar_content(ns, &p.hash);
            if name != sidecar_name(ns)
                || size != content.len() as u64
                || *hash != sha256(content.as_bytes())
            {
                return Err(Corruption::BadName);
            }
            Ok(ns.len())
        }
    }
}

struct LineIter<'a> {
    text: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for LineIter<'a> {
    type Item = (usize, &'a [u8]);
    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.text.len() {
            return None;
        }
        let start = self.pos;
        let len = self.text[start..].iter().position(|&b| b == b'\n')?;
        self.pos = start + len + 1;
        Some((start, &self.text[start..start + len]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(records: &[(Kind, &[u8], &str)]) -> Vec<u8> {
        let mut s = header_line(3, &[7; 16], &[9; 32], 1 << 20);
        for (k, data, name) in records {
            push_record(&mut s, *k, data.len() as u64, &sha256(data), name);
        }
        let end = sha256(s.as_bytes());
        s.push_str("#end ");
        push_hex(&mut s, &end);
        s.push('\n');
        s.into_bytes()
    }

    #[test]
    fn roundtrip() {
        let cp = b"origin\n5\nhash\n";
        let side = sidecar_content("ns", &sha256(cp));
        let text = build(&[
            (Kind::Object, b"abc", "ns/tile/0/000"),
            (Kind::Checkpoint, cp, "ns/checkpoint"),
            (Kind::Sidecar, side.as_bytes(), ".psdb/checkpoint/ns.sha256"),
        ]);
        let m = Manifest::parse(text).unwrap();
        assert_eq!(
            (m.seq, m.volume, m.prev, m.max_batch),
            (3, [7; 16], [9; 32], 1 << 20)
        );
        assert_eq!(m.records.len(), 3);
        assert_eq!(m.name(&m.records[0]), "ns/tile/0/000");
        assert_eq!(m.name(&m.records[1]), "ns/checkpoint");
        assert_eq!(m.name(&m.records[2]), ".psdb/checkpoint/ns.sha256");
        assert_eq!(m.records[0].ns_len, 2);
        assert_eq!(m.records[0].size, 3);
    }

    #[test]
    fn journals_are_v3_and_v2_still_parses() {
        let text = build(&[
            (Kind::Object, b"abc", "ns/a"),
            (Kind::Journal, &[0; 1024], "ns/journal/0"),
        ]);
        let t = core::str::from_utf8(&text).unwrap();
        assert!(t.starts_with("#psdb-batch v4 seq=3 "), "{t}");
        assert!(t.contains("\n#j 1024  ns/journal/0\n"), "{t}");
        let m = Manifest::parse(text).unwrap();
        assert_eq!(m.records[1].kind, Kind::Journal);
        assert_eq!(m.name(&m.records[1]), "ns/journal/0");
        assert_eq!((m.records[1].size, m.records[1].ns_len), (1024, 2));
        // The same header as v2: parses without the journal, refused with it.
        let v2 = |records: &[(Kind, &[u8], &str)]| {
            let t = String::from_utf8(build(records)).unwrap();
            let body = t[..t.len() - END_LINE].replacen("#psdb-batch v4", "#psdb-batch v2", 1);
            let end = sha256(body.as_bytes());
            let mut out = body;
            out.push_str("#end ");
            push_hex(&mut out, &end);
            out.push('\n');
            out.into_bytes()
        };
        assert!(Manifest::parse(v2(&[(Kind::Object, b"abc", "ns/a")])).is_ok());
        assert_eq!(
            Manifest::parse(v2(&[(Kind::Journal, &[0; 512], "ns/j")])).unwrap_err(),
            Corruption::BadManifest
        );
        // A journal is whole sectors, at least one.
        for size in [0usize, 100] {
            let data = alloc::vec![0u8; size];
            assert_eq!(
                Manifest::parse(build(&[(Kind::Journal, &data, "ns/j")])).unwrap_err(),
                Corruption::BadName
            );
        }
    }

    #[test]
    fn rejects() {
        // A sidecar without its checkpoint, an escaping name, a flipped byte.
        let side = sidecar_content("ns", &sha256(b"x"));
        assert!(Manifest::parse(build(&[(Kind::Sidecar, side.as_bytes(), ".psdb/x")])).is_err());
        assert_eq!(
            Manifest::parse(build(&[(Kind::Object, b"a", "ns/../x")])).unwrap_err(),
            Corruption::BadName
        );
        let mut t = build(&[(Kind::Object, b"a", "ns/a")]);
        t[20] ^= 1;
        assert_eq!(Manifest::parse(t).unwrap_err(), Corruption::ManifestHash);
    }
}

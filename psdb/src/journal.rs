//! Journal records: the one-sector records appended to a journal member (format v3).
//!
//! A **journal** is a member created, like any object, inside a batch, with data of `slots x
//! 512` zero bytes (manifest line `#j <size>  <ns>/<path>`: no checksum, its content is filled
//! later). Afterwards each [`crate::Store::journal_append`] writes one record into the next
//! free slot, one sector, followed by a device flush: the record is durable when the call
//! returns, and it is never rewritten. A sector is either all zeros (never written) or:
//!
//! ```text
//! #psdb-jrec v1 volume=<32 hex> slot=<n> len=<L>\n
//! <L data bytes>\n
//! #end <sha256 hex of every byte of the sector before this line>\n
//! <zeros to 512 bytes>
//! ```
//!
//! (`<n>` and `<L>` canonical decimal, hex lower case; the hash covers the header line, the
//! data and the `\n` after it.) The volume id and slot bind a record to its volume and its place
//! in the journal: a stale sector of another volume, or a record moved to another slot, does
//! not verify.
//!
//! **Why zero means "never written" and anything else invalid means damage**: a 512-byte
//! sector write is assumed atomic (the logical-block atomicity virtio-blk, NVMe and SCSI disks
//! give for one block): after a crash a record's sector holds either its old bytes (zeros) or
//! the whole record. So the records of a journal are always slots `0..k` followed only by
//! zero sectors, and a non-zero sector that fails its framing, hash, slot or volume, or a
//! record after a zero sector, was altered after it was written: damage to committed data,
//! reported and kept. A record whose sector write reached the disk but whose flush never
//! returned was never acknowledged; it is a valid record, and keeping it loses nothing.

use crate::device::SECTOR_SIZE;
use crate::manifest::{dec, sha256, unhex};

/// `#psdb-jrec v1 volume=`.
const MAGIC: &[u8] = b"#psdb-jrec v1 volume=";

/// The longest header line: the magic, 32 hex digits, ` slot=` and a `u32` (10 digits),
/// ` len=` and 3 digits, `\n`.
const MAX_HEAD: usize = MAGIC.len() + 32 + 6 + 10 + 5 + 3 + 1;

/// `\n#end <64 hex>\n`.
const END: usize = 1 + 5 + 64 + 1;

/// Most data bytes one record holds: what fits a sector with the longest header line.
pub const MAX_RECORD: usize = SECTOR_SIZE - MAX_HEAD - END;

/// The sector of record `slot` holding `data` on volume `volume`; `None` if `data` is longer
/// than [`MAX_RECORD`].
pub fn encode(volume: &[u8; 16], slot: u32, data: &[u8]) -> Option<[u8; SECTOR_SIZE]> {
    if data.len() > MAX_RECORD {
        return None;
    }
    let mut s = [0u8; SECTOR_SIZE];
    let mut w = Writer { buf: &mut s, at: 0 };
    w.put(MAGIC);
    w.hex(volume);
    w.put(b" slot=");
    w.num(u64::from(slot));
    w.put(b" len=");
    w.num(data.len() as u64);
    w.put(b"\n");
    w.put(data);
    w.put(b"\n");
    let n = w.at;
    let hash = sha256(&s[..n]);
    let mut w = Writer { buf: &mut s, at: n };
    w.put(b"#end ");
    w.hex(&hash);
    w.put(b"\n");
    Some(s)
}

/// What a journal sector holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sector<'a> {
    /// All zeros: never written.
    Zero,
    /// A valid record for this volume and slot: its data.
    Record(&'a [u8]),
    /// Anything else: damage (see the module docs).
    Bad,
}

/// Decodes the sector of slot `slot` of a journal on volume `volume`.
pub fn decode<'a>(sector: &'a [u8], volume: &[u8; 16], slot: u32) -> Sector<'a> {
    if sector.len() != SECTOR_SIZE {
        return Sector::Bad;
    }
    if sector.iter().all(|&b| b == 0) {
        return Sector::Zero;
    }
    match parse(sector, volume, slot) {
        Some(data) => Sector::Record(data),
        None => Sector::Bad,
    }
}

fn parse<'a>(s: &'a [u8], volume: &[u8; 16], slot: u32) -> Option<&'a [u8]> {
    let rest = s.strip_prefix(MAGIC)?;
    let vol = unhex::<16>(rest.get(..32)?)?;
    let rest = rest.get(32..)?.strip_prefix(b" slot=")?;
    let sp = rest.iter().position(|&b| b == b' ')?;
    let n = dec(&rest[..sp])?;
    let rest = rest[sp..].strip_prefix(b" len=")?;
    let nl = rest.iter().position(|&b| b == b'\n')?;
    let len = usize::try_from(dec(&rest[..nl])?).ok()?;
    if vol != *volume || n != u64::from(slot) || len > MAX_RECORD {
        return None;
    }
    let data_at = SECTOR_SIZE - rest.len() + nl + 1;
    let hashed = data_at.checked_add(len)?.checked_add(1)?;
    let end = hashed.checked_add(END - 1)?;
    if end > SECTOR_SIZE || s[hashed - 1] != b'\n' {
        return None;
    }
    let tail = &s[hashed..end];
    let hex = tail.strip_prefix(b"#end ")?.strip_suffix(b"\n")?;
    if unhex::<32>(hex)? != sha256(&s[..hashed]) || s[end..].iter().any(|&b| b != 0) {
        return None;
    }
    Some(&s[data_at..data_at + len])
}

/// Writes into a sector; every caller stays within [`SECTOR_SIZE`] (checked by the length
/// bound in [`encode`]), and a write past it is dropped rather than panicking.
struct Writer<'a> {
    buf: &'a mut [u8; SECTOR_SIZE],
    at: usize,
}

impl Writer<'_> {
    fn put(&mut self, b: &[u8]) {
        let n = b.len().min(SECTOR_SIZE - self.at);
        self.buf[self.at..self.at + n].copy_from_slice(&b[..n]);
        self.at += n;
    }

    fn hex(&mut self, bytes: &[u8]) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        for &b in bytes {
            self.put(&[HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
        }
    }

    fn num(&mut self, v: u64) {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        let mut v = v;
        loop {
            i -= 1;
            digits[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        self.put(&digits[i..]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::String;

    #[test]
    fn roundtrip_and_limits() {
        let vol = [7u8; 16];
        for (slot, data) in [
            (0u32, &b""[..]),
            (5, b"index=5 x\n"),
            (u32::MAX, &[0xAB; MAX_RECORD][..]),
        ] {
            let s = encode(&vol, slot, data).unwrap();
            assert_eq!(decode(&s, &vol, slot), Sector::Record(data));
            // Another slot, another volume: not this record.
            assert_eq!(decode(&s, &vol, slot.wrapping_add(1)), Sector::Bad);
            assert_eq!(decode(&s, &[8; 16], slot), Sector::Bad);
        }
        assert!(encode(&vol, 0, &[0; MAX_RECORD + 1]).is_none());
        assert_eq!(decode(&[0; SECTOR_SIZE], &vol, 3), Sector::Zero);
        let s = encode(&vol, 1, b"hello").unwrap();
        let text = core::str::from_utf8(&s[..s.iter().position(|&b| b == 0).unwrap()]).unwrap();
        assert!(text.starts_with(
            "#psdb-jrec v1 volume=07070707070707070707070707070707 slot=1 len=5\nhello\n#end "
        ));
        assert_eq!(text.len(), 67 + 6 + 70);
        let hash = sha256(&s[..67 + 6]);
        let mut hex = String::new();
        crate::manifest::push_hex(&mut hex, &hash);
        assert!(text.ends_with(&alloc::format!("#end {hex}\n")));
        // Every single byte flip anywhere in the sector is caught.
        for i in 0..SECTOR_SIZE {
            let mut bad = s;
            bad[i] ^= 0x01;
            assert_eq!(decode(&bad, &vol, 1), Sector::Bad, "byte {i}");
        }
    }
}

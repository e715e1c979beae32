//! The audit log's layout on psdb, which the audit PD writes and offline tools read
//! (`totebox log read --namespace audit`): a tlog of record lines, and the records not yet
//! folded into it in psdb journals, each a signed note (the audit PD's crate docs say why).
//!
//! - Journal `journal/<first index as 16 lower-hex digits>` ([`journal_path`]) holds the
//!   records from its first index to the next multiple of [`JOURNAL_SLOTS`]
//!   ([`journal_slots`]); the current one starts at the tlog's size.
//! - A record is the signed note (audit log key and origin) of one line `index=<i> ...\n`
//!   ([`verify_record`]); its slot is `i` minus the journal's first index.

use alloc::string::String;
use core::fmt::Write as _;

use note::{Note, Verifier};

/// Records per journal: an entry bundle's width, so that folding a journal completes one entry
/// bundle of the tlog.
pub const JOURNAL_SLOTS: u32 = tlog::tile::TILE_WIDTH as u32;

/// The path of the journal whose first record has audit index `first`.
pub fn journal_path(first: u64) -> String {
    let mut s = String::new();
    let _ = write!(s, "journal/{first:016x}");
    s
}

/// How many records the journal starting at `first` holds: up to the next multiple of
/// [`JOURNAL_SLOTS`].
pub fn journal_slots(first: u64) -> u32 {
    JOURNAL_SLOTS - (first % u64::from(JOURNAL_SLOTS)) as u32
}

/// Checks one journal record: a signed note that `verifier` verifies, whose text is one line
/// starting `index=<index> `. Returns the line (without its `\n`), or why it was refused.
pub fn verify_record<'a>(
    record: &'a [u8],
    verifier: &Verifier,
    index: u64,
    note: &'a mut Option<Note>,
) -> Result<&'a str, &'static str> {
    let parsed = Note::parse(record).map_err(|_| "not a signed note")?;
    parsed
        .verify(core::slice::from_ref(verifier))
        .map_err(|_| "no valid signature of the audit log's key")?;
    let note = note.insert(parsed);
    let line = note
        .text()
        .strip_suffix('\n')
        .filter(|l| !l.contains('\n'))
        .ok_or("not one line")?;
    let mut want = String::new();
    let _ = write!(want, "index={index} ");
    if !line.starts_with(want.as_str()) {
        return Err("index is not its place in the audit log");
    }
    Ok(line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use note::Signer;

    #[test]
    fn paths_and_slots() {
        assert_eq!(journal_path(0), "journal/0000000000000000");
        assert_eq!(journal_path(256), "journal/0000000000000100");
        assert_eq!(journal_path(u64::MAX), "journal/ffffffffffffffff");
        assert_eq!(
            [0, 4, 255, 256, 257].map(journal_slots),
            [256, 252, 1, 256, 255]
        );
    }

    #[test]
    fn a_record_is_one_signed_line_at_its_index() {
        let audit = Signer::generate("totebox-envelope-b/audit", &[1; 32]).unwrap();
        let other = Signer::generate("totebox-envelope-b/audit", &[2; 32]).unwrap();
        let v = audit.verifier();
        let check = |rec: &[u8], index| verify_record(rec, &v, index, &mut None).map(String::from);
        let line = "index=7 tenant=corporate op=read first=0 count=1 request=3 outcome=granted";
        let signed = audit.sign(&alloc::format!("{line}\n")).unwrap();
        assert_eq!(check(signed.as_bytes(), 7).as_deref(), Ok(line));
        // At another index, signed by another key (same name), unsigned, two lines.
        assert!(check(signed.as_bytes(), 8).is_err());
        assert!(check(signed.as_bytes(), 70).is_err());
        let forged = other.sign(&alloc::format!("{line}\n")).unwrap();
        assert!(check(forged.as_bytes(), 7).is_err());
        assert!(check(line.as_bytes(), 7).is_err());
        let two = audit.sign("index=7 a\nindex=8 b\n").unwrap();
        assert!(check(two.as_bytes(), 7).is_err());
        // Every flipped bit of the signed record is refused.
        for i in 0..signed.len() {
            let mut bad = signed.clone().into_bytes();
            bad[i] ^= 0x02;
            assert!(check(&bad, 7).is_err(), "byte {i}");
        }
    }
}

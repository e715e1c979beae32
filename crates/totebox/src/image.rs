//! `totebox image set-key`: gives one copy of a PD's ELF its own signing key.
//!
//! `ledger.elf` and `audit.elf` are built with an empty key slot (`interface::keys`): a
//! [`KEY_SLOT_LEN`]-byte object named [`KEY_SLOT_SYMBOL`] in `.data`. `set-key` finds that
//! symbol in the ELF's symbol table, checks it (unique, the slot's size, inside a file-backed
//! section, starting with the slot magic), and writes OUT: IN's bytes with the slot replaced by
//! one holding the key, nothing else changed. It prints the key's verifier key (what clients
//! verify checkpoints with), so `make image` writes the `.vkey` next to the key it patched in.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use interface::keys::{encode_slot, KEY_SLOT_LEN, KEY_SLOT_MAGIC, KEY_SLOT_SYMBOL};
use object::read::elf::{ElfFile64, FileHeader};
use object::{Object, ObjectSection, ObjectSymbol};

use crate::keys;

/// The symbol `set-key` patches unless told otherwise.
pub const DEFAULT_SYMBOL: &str = KEY_SLOT_SYMBOL;

/// Where a key slot sits in an ELF file: its byte range.
pub fn slot_range(elf: &[u8], symbol: &str) -> Result<std::ops::Range<usize>, String> {
    let file = ElfFile64::<object::Endianness>::parse(elf)
        .map_err(|e| format!("not an ELF64 file: {e}"))?;
    let _ = file.elf_header().e_machine(file.endian());
    let mut found = file.symbols().filter(|s| s.name() == Ok(symbol));
    let sym = found
        .next()
        .ok_or_else(|| format!("no symbol `{symbol}` (not a Totebox ledger or audit ELF?)"))?;
    if found.next().is_some() {
        return Err(format!("symbol `{symbol}` is defined more than once"));
    }
    if sym.size() != KEY_SLOT_LEN as u64 {
        return Err(format!(
            "symbol `{symbol}` is {} bytes, a key slot is {KEY_SLOT_LEN}",
            sym.size()
        ));
    }
    let index = sym
        .section_index()
        .ok_or_else(|| format!("symbol `{symbol}` is not in a section"))?;
    let section = file
        .section_by_index(index)
        .map_err(|e| format!("symbol `{symbol}`: {e}"))?;
    let (sec_off, sec_len) = section.file_range().ok_or_else(|| {
        format!("symbol `{symbol}` is in a section with no bytes in the file (.bss?)")
    })?;
    let rel = sym
        .address()
        .checked_sub(section.address())
        .filter(|rel| rel + KEY_SLOT_LEN as u64 <= sec_len)
        .ok_or_else(|| format!("symbol `{symbol}` lies outside its section"))?;
    let start = usize::try_from(sec_off + rel).map_err(|_| "offset overflow".to_string())?;
    let range = start..start + KEY_SLOT_LEN;
    let bytes = elf
        .get(range.clone())
        .ok_or_else(|| format!("symbol `{symbol}` lies past the end of the file"))?;
    if bytes[..KEY_SLOT_MAGIC.len()] != KEY_SLOT_MAGIC {
        return Err(format!(
            "symbol `{symbol}` does not hold a key slot (no magic)"
        ));
    }
    Ok(range)
}

/// `totebox image set-key IN OUT --skey FILE [--symbol NAME]`.
pub fn set_key(input: &Path, output: &Path, skey: &Path, symbol: &str) -> Result<(), String> {
    let signer = keys::signer_file(skey)?;
    let slot = encode_slot(&signer.skey()).map_err(|e| format!("{}: {e}", skey.display()))?;
    let mut elf = std::fs::read(input).map_err(|e| format!("{}: {e}", input.display()))?;
    let range = slot_range(&elf, symbol).map_err(|e| format!("{}: {e}", input.display()))?;
    elf[range].copy_from_slice(&slot);
    // IN's permissions minus group and other access: OUT holds a secret key.
    let mode = std::fs::metadata(input)
        .map_err(|e| format!("{}: {e}", input.display()))?
        .permissions()
        .mode();
    let perms = std::fs::Permissions::from_mode(mode & 0o700);
    write_new(output, &elf, perms)?;
    println!("{}", signer.verifier().vkey());
    Ok(())
}

/// Writes `bytes` to `path` through a temporary file and a rename, with `perms` (an ELF stays
/// executable, for its owner only).
fn write_new(path: &Path, bytes: &[u8], perms: std::fs::Permissions) -> Result<(), String> {
    let name = path
        .file_name()
        .ok_or_else(|| format!("{}: not a file name", path.display()))?;
    let tmp = path.with_file_name(format!(".{}.tmp", name.to_string_lossy()));
    std::fs::write(&tmp, bytes).map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::set_permissions(&tmp, perms).map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use object::write::{Object as WObject, StandardSection, Symbol, SymbolSection};
    use object::{Architecture, BinaryFormat, Endianness, SymbolFlags, SymbolKind, SymbolScope};

    /// A relocatable ELF with `symbol` of `len` bytes holding `data` in .data.
    fn elf_with(symbol: &str, data: &[u8]) -> Vec<u8> {
        let mut obj = WObject::new(BinaryFormat::Elf, Architecture::Aarch64, Endianness::Little);
        let section = obj.section_id(StandardSection::Data);
        obj.append_section_data(section, b"before..", 8);
        let offset = obj.append_section_data(section, data, 8);
        obj.append_section_data(section, b"..after.", 8);
        obj.add_symbol(Symbol {
            name: symbol.as_bytes().to_vec(),
            value: offset,
            size: data.len() as u64,
            kind: SymbolKind::Data,
            scope: SymbolScope::Dynamic,
            weak: false,
            section: SymbolSection::Section(section),
            flags: SymbolFlags::None,
        });
        obj.write().unwrap()
    }

    #[test]
    fn patches_only_the_slot() {
        let dir = tempfile::tempdir().unwrap();
        let elf = elf_with(KEY_SLOT_SYMBOL, &interface::keys::EMPTY_SLOT);
        let input = dir.path().join("ledger.elf");
        std::fs::write(&input, &elf).unwrap();
        let signer = note::Signer::generate("totebox-envelope-b/corporate", &[7; 32]).unwrap();
        let skey = dir.path().join("corporate.skey");
        std::fs::write(&skey, format!("{}\n", signer.skey())).unwrap();
        let out = dir.path().join("ledger_corporate.elf");
        set_key(&input, &out, &skey, KEY_SLOT_SYMBOL).unwrap();
        let patched = std::fs::read(&out).unwrap();
        let range = slot_range(&patched, KEY_SLOT_SYMBOL).unwrap();
        assert_eq!(patched.len(), elf.len());
        for (i, (a, b)) in elf.iter().zip(&patched).enumerate() {
            assert!(
                a == b || range.contains(&i),
                "byte {i} changed outside the slot"
            );
        }
        let skey_back = interface::keys::slot_skey(&patched[range]).unwrap();
        assert_eq!(skey_back, signer.skey());
    }

    #[test]
    fn refuses_what_is_not_a_slot() {
        let wrong_size = elf_with(KEY_SLOT_SYMBOL, &[1; 100]);
        assert!(slot_range(&wrong_size, KEY_SLOT_SYMBOL)
            .unwrap_err()
            .contains("100 bytes"));
        let no_magic = elf_with(KEY_SLOT_SYMBOL, &[1; KEY_SLOT_LEN]);
        assert!(slot_range(&no_magic, KEY_SLOT_SYMBOL)
            .unwrap_err()
            .contains("magic"));
        let elf = elf_with("other", &interface::keys::EMPTY_SLOT);
        assert!(slot_range(&elf, KEY_SLOT_SYMBOL)
            .unwrap_err()
            .contains("no symbol"));
        assert!(slot_range(b"not an elf", KEY_SLOT_SYMBOL)
            .unwrap_err()
            .contains("ELF"));
    }
}

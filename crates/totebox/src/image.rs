//! `totebox image set-key`: gives one copy of a PD's ELF its own signing key (or, with
//! `--symbol totebox_identity_key`, audit.elf the archive's identity key); `totebox image
//! set-pairings`: writes the archive's initial pairing set into audit.elf's pairings slot.
//!
//! `ledger.elf` and `audit.elf` are built with an empty key slot (`interface::keys`): a
//! [`KEY_SLOT_LEN`]-byte object named [`KEY_SLOT_SYMBOL`] in `.data`. `set-key` finds that
//! symbol in the ELF's symbol table, checks it (unique, the slot's size, inside a file-backed
//! section and a PT_LOAD segment's file bytes, starting with the slot magic; the ELF must be
//! for AArch64), and writes OUT: IN's bytes with the slot replaced by one holding the key,
//! nothing else changed. OUT is created private (0600 at most) under a fresh temporary name in
//! its directory, synced, then renamed over OUT: the key is never readable by others, and a
//! symlink at OUT or at a guessed temporary name is never followed. It prints the key's verifier key (what clients
//! verify checkpoints with), so `make image` writes the `.vkey` next to the key it patched in.
//!
//! The pairings slot ([`PAIRINGS_SLOT_SYMBOL`], [`PAIRINGS_SLOT_LEN`] bytes, the same header)
//! is checked and written the same way by `set-pairings`: it holds `PairingSet::to_bytes` of
//! `pairings.yaml` and the public-metadata flag (docs/access.md), refused if the set has no
//! ADMIN (nobody could ever change it) or does not fit the slot.

use std::path::Path;

use interface::keys::{
    encode_pairings_slot, encode_slot, IDENTITY_SLOT_SYMBOL, KEY_SLOT_LEN, KEY_SLOT_MAGIC,
    KEY_SLOT_SYMBOL, PAIRINGS_SLOT_LEN, PAIRINGS_SLOT_SYMBOL,
};
use object::read::elf::{ElfFile64, FileHeader, ProgramHeader};
use object::{Object, ObjectSection, ObjectSymbol};

use crate::{fsio, keys};

/// The symbol `set-key` patches unless told otherwise.
pub const DEFAULT_SYMBOL: &str = KEY_SLOT_SYMBOL;

/// Where a key slot (of [`KEY_SLOT_LEN`] bytes) sits in an ELF file: its byte range.
pub fn slot_range(elf: &[u8], symbol: &str) -> Result<std::ops::Range<usize>, String> {
    slot_range_len(elf, symbol, KEY_SLOT_LEN)
}

/// Where a slot of `len` bytes named `symbol` sits in an ELF file: its byte range.
pub fn slot_range_len(
    elf: &[u8],
    symbol: &str,
    len: usize,
) -> Result<std::ops::Range<usize>, String> {
    let file = ElfFile64::<object::Endianness>::parse(elf)
        .map_err(|e| format!("not an ELF64 file: {e}"))?;
    let endian = file.endian();
    let machine = file.elf_header().e_machine(endian);
    if machine != object::elf::EM_AARCH64 {
        return Err(format!(
            "not an AArch64 ELF (e_machine {machine}, expected {})",
            object::elf::EM_AARCH64
        ));
    }
    let mut found = file.symbols().filter(|s| s.name() == Ok(symbol));
    let sym = found
        .next()
        .ok_or_else(|| format!("no symbol `{symbol}` (not a Totebox ledger or audit ELF?)"))?;
    if found.next().is_some() {
        return Err(format!("symbol `{symbol}` is defined more than once"));
    }
    if sym.size() != len as u64 {
        return Err(format!(
            "symbol `{symbol}` is {} bytes, a {} slot is {len}",
            sym.size(),
            if len == KEY_SLOT_LEN {
                "key"
            } else {
                "pairings"
            }
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
    let slot_len = len as u64;
    let outside = || format!("symbol `{symbol}` lies outside its section");
    let rel = sym
        .address()
        .checked_sub(section.address())
        .filter(|rel| rel.checked_add(slot_len).is_some_and(|end| end <= sec_len))
        .ok_or_else(outside)?;
    let file_start = sec_off.checked_add(rel).ok_or_else(outside)?;
    let file_end = file_start.checked_add(slot_len).ok_or_else(outside)?;
    // The slot must be bytes the loader maps: inside one PT_LOAD segment's file range.
    let headers = file.elf_program_headers();
    let loaded = headers.iter().any(|ph| {
        let (off, filesz) = (ph.p_offset(endian), ph.p_filesz(endian));
        ph.p_type(endian) == object::elf::PT_LOAD
            && off <= file_start
            && off.checked_add(filesz).is_some_and(|end| file_end <= end)
    });
    if !loaded {
        return Err(format!(
            "symbol `{symbol}` is not inside a loaded (PT_LOAD) segment's file bytes"
        ));
    }
    let past_end = || format!("symbol `{symbol}` lies past the end of the file");
    let start = usize::try_from(file_start).map_err(|_| past_end())?;
    let end = usize::try_from(file_end).map_err(|_| past_end())?;
    let range = start..end;
    let bytes = elf.get(range.clone()).ok_or_else(past_end)?;
    if bytes[..KEY_SLOT_MAGIC.len()] != KEY_SLOT_MAGIC {
        return Err(format!(
            "symbol `{symbol}` does not hold a key slot (no magic)"
        ));
    }
    Ok(range)
}

/// `totebox image set-key IN OUT --skey FILE [--symbol NAME]`: the checkpoint signing key
/// slot by default; [`IDENTITY_SLOT_SYMBOL`] for the archive identity key (audit.elf). The
/// pairings slot is `set-pairings`'.
pub fn set_key(input: &Path, output: &Path, skey: &Path, symbol: &str) -> Result<(), String> {
    if symbol == PAIRINGS_SLOT_SYMBOL {
        return Err(format!(
            "image set-key: `{symbol}` is the pairings slot, not a key slot: use `totebox image set-pairings`"
        ));
    }
    if symbol != KEY_SLOT_SYMBOL && symbol != IDENTITY_SLOT_SYMBOL {
        return Err(format!(
            "image set-key: unknown key slot `{symbol}` (the key slots are {KEY_SLOT_SYMBOL} and {IDENTITY_SLOT_SYMBOL})"
        ));
    }
    let signer = keys::signer_file(skey)?;
    let slot = encode_slot(&signer.skey()).map_err(|e| format!("{}: {e}", skey.display()))?;
    let mut elf = fsio::read_file(input, fsio::MAX_ELF)?;
    let range = slot_range(&elf, symbol).map_err(|e| format!("{}: {e}", input.display()))?;
    elf[range].copy_from_slice(&slot);
    // IN's permissions minus group and other access: OUT holds a secret key.
    let mode = fsio::mode_of(input)?;
    fsio::write_new(output, &elf, (mode & 0o700) | 0o600)?;
    println!("{}", signer.verifier().vkey());
    Ok(())
}

/// The pairing set `set-pairings` writes: `pairings.yaml` with the public-metadata flag,
/// refused without an ADMIN. Returns the set and its image form.
pub fn pairings_image(
    pairings: &Path,
    public_metadata: bool,
) -> Result<(access::PairingSet, Vec<u8>), String> {
    if !fsio::exists(pairings) {
        return Err(format!(
            "{}: no such file (create it with `totebox pair add --type ADMIN --tenant '*' --vkey admin.vkey --file {}`)",
            pairings.display(),
            pairings.display()
        ));
    }
    let mut set = crate::access_cmd::load(pairings)?;
    if !set
        .pairings()
        .iter()
        .any(|p| p.kind == access::PairingType::Admin)
    {
        return Err(format!(
            "{}: no ADMIN pairing: nobody could ever change the archive's pairings (add one with `totebox pair add --type ADMIN ...`)",
            pairings.display()
        ));
    }
    set.set_public_metadata(public_metadata);
    let bytes = set.to_bytes();
    Ok((set, bytes))
}

/// `totebox image set-pairings IN OUT --pairings FILE [--public-metadata]`: OUT is IN with its
/// pairings slot holding the set's image form; prints each pairing as `pair list` does and the
/// public-metadata flag.
pub fn set_pairings(
    input: &Path,
    output: &Path,
    pairings: &Path,
    public_metadata: bool,
) -> Result<(), String> {
    let (set, bytes) = pairings_image(pairings, public_metadata)?;
    let slot = encode_pairings_slot(&bytes).map_err(|_| {
        format!(
            "{}: the pairing set's image form is {} bytes, over the {}-byte pairings slot ({} bytes of data)",
            pairings.display(),
            bytes.len(),
            PAIRINGS_SLOT_LEN,
            PAIRINGS_SLOT_LEN - KEY_SLOT_MAGIC.len() - 2
        )
    })?;
    let mut elf = fsio::read_file(input, fsio::MAX_ELF)?;
    let range = slot_range_len(&elf, PAIRINGS_SLOT_SYMBOL, PAIRINGS_SLOT_LEN)
        .map_err(|e| format!("{}: {e}", input.display()))?;
    elf[range].copy_from_slice(&slot);
    let mode = fsio::mode_of(input)?;
    fsio::write_new(output, &elf, (mode & 0o700) | 0o600)?;
    for p in set.pairings() {
        println!(
            "pairing {}\t{}\t{:08x}\t{}",
            p.kind,
            p.tenants.to_text(),
            p.key.key_id(),
            p.key.vkey()
        );
    }
    println!(
        "public-metadata {}",
        if public_metadata { "on" } else { "off" }
    );
    Ok(())
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
        let elf = obj.write().unwrap();
        with_load_segment(elf, 0)
    }

    /// Byte range of section `name` in `elf`.
    fn section_range(elf: &[u8], name: &str) -> (u64, u64) {
        let file = ElfFile64::<Endianness>::parse(elf).unwrap();
        file.section_by_name(name).unwrap().file_range().unwrap()
    }

    /// `elf` (a relocatable object from `object::write`) with one PT_LOAD program header
    /// appended, covering `.data`'s file bytes minus `shrink` at the end: what a linked PD image
    /// has around its key slot.
    fn with_load_segment(mut elf: Vec<u8>, shrink: u64) -> Vec<u8> {
        let (off, len) = section_range(&elf, ".data");
        while !elf.len().is_multiple_of(8) {
            elf.push(0);
        }
        let phoff = elf.len() as u64;
        let mut ph = Vec::new();
        ph.extend_from_slice(&object::elf::PT_LOAD.to_le_bytes()); // p_type
        ph.extend_from_slice(&6u32.to_le_bytes()); // p_flags: rw
        for v in [off, 0, 0, len - shrink, len, 8] {
            // p_offset p_vaddr p_paddr p_filesz p_memsz p_align
            ph.extend_from_slice(&v.to_le_bytes());
        }
        elf.extend_from_slice(&ph);
        elf[0x20..0x28].copy_from_slice(&phoff.to_le_bytes()); // e_phoff
        elf[0x36..0x38].copy_from_slice(&56u16.to_le_bytes()); // e_phentsize
        elf[0x38..0x3a].copy_from_slice(&1u16.to_le_bytes()); // e_phnum
        elf
    }

    fn elf_with_symbol_at(symbol: &str, value: u64) -> Vec<u8> {
        let mut obj = WObject::new(BinaryFormat::Elf, Architecture::Aarch64, Endianness::Little);
        let section = obj.section_id(StandardSection::Data);
        obj.append_section_data(section, &interface::keys::EMPTY_SLOT, 8);
        obj.add_symbol(Symbol {
            name: symbol.as_bytes().to_vec(),
            value,
            size: KEY_SLOT_LEN as u64,
            kind: SymbolKind::Data,
            scope: SymbolScope::Dynamic,
            weak: false,
            section: SymbolSection::Section(section),
            flags: SymbolFlags::None,
        });
        with_load_segment(obj.write().unwrap(), 0)
    }

    #[test]
    fn malformed_elfs_are_errors_not_panics() {
        let good = elf_with(KEY_SLOT_SYMBOL, &interface::keys::EMPTY_SLOT);
        assert!(slot_range(&good, KEY_SLOT_SYMBOL).is_ok());
        // Truncated anywhere: an error, never a panic.
        for cut in [0, 10, 63, good.len() / 2, good.len() - 1] {
            let e = slot_range(&good[..cut], KEY_SLOT_SYMBOL);
            assert!(e.is_err(), "cut at {cut}: {e:?}");
        }
        // Another machine.
        let mut x86 = good.clone();
        x86[0x12..0x14].copy_from_slice(&object::elf::EM_X86_64.to_le_bytes());
        let e = slot_range(&x86, KEY_SLOT_SYMBOL).unwrap_err();
        assert!(e.contains("not an AArch64 ELF"), "{e}");
        // A symbol address whose slot end overflows u64, and one past its section.
        for value in [u64::MAX - 10, 1 << 40] {
            let e = slot_range(&elf_with_symbol_at(KEY_SLOT_SYMBOL, value), KEY_SLOT_SYMBOL)
                .unwrap_err();
            assert!(e.contains("outside its section"), "{value}: {e}");
        }
        // A slot the loader does not map (no PT_LOAD, or one that stops short of its end).
        let mut obj = WObject::new(BinaryFormat::Elf, Architecture::Aarch64, Endianness::Little);
        let section = obj.section_id(StandardSection::Data);
        obj.append_section_data(section, &interface::keys::EMPTY_SLOT, 8);
        obj.add_symbol(Symbol {
            name: KEY_SLOT_SYMBOL.as_bytes().to_vec(),
            value: 0,
            size: KEY_SLOT_LEN as u64,
            kind: SymbolKind::Data,
            scope: SymbolScope::Dynamic,
            weak: false,
            section: SymbolSection::Section(section),
            flags: SymbolFlags::None,
        });
        let unloaded = obj.write().unwrap();
        for elf in [unloaded.clone(), with_load_segment(unloaded, 1)] {
            let e = slot_range(&elf, KEY_SLOT_SYMBOL).unwrap_err();
            assert!(e.contains("PT_LOAD"), "{e}");
        }
        // A section header pointing past the end of the file.
        let mut far = good.clone();
        let (off, _) = section_range(&good, ".data");
        let file = ElfFile64::<Endianness>::parse(&good[..]).unwrap();
        let shoff = file.elf_header().e_shoff(file.endian()) as usize;
        let shnum = usize::from(file.elf_header().e_shnum(file.endian()));
        drop(file);
        for i in 0..shnum {
            let h = shoff + i * 64;
            if u64::from_le_bytes(good[h + 0x18..h + 0x20].try_into().unwrap()) == off {
                far[h + 0x18..h + 0x20].copy_from_slice(&(u64::MAX - 8).to_le_bytes());
            }
        }
        assert!(slot_range(&far, KEY_SLOT_SYMBOL).is_err());
    }

    #[test]
    fn the_output_is_private_and_symlinks_are_not_followed() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("ledger.elf");
        std::fs::write(
            &input,
            elf_with(KEY_SLOT_SYMBOL, &interface::keys::EMPTY_SLOT),
        )
        .unwrap();
        std::fs::set_permissions(&input, std::fs::Permissions::from_mode(0o755)).unwrap();
        let signer = note::Signer::generate("totebox-envelope-b/corporate", &[7; 32]).unwrap();
        let skey = dir.path().join("corporate.skey");
        std::fs::write(&skey, format!("{}\n", signer.skey())).unwrap();
        // A symlink at OUT and at the old predictable temporary name, both to a victim file.
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"untouched").unwrap();
        let out = dir.path().join("ledger_corporate.elf");
        std::os::unix::fs::symlink(&victim, &out).unwrap();
        std::os::unix::fs::symlink(&victim, dir.path().join(".ledger_corporate.elf.tmp")).unwrap();
        set_key(&input, &out, &skey, KEY_SLOT_SYMBOL).unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"untouched");
        let meta = std::fs::symlink_metadata(&out).unwrap();
        assert!(meta.file_type().is_file());
        assert_eq!(meta.permissions().mode() & 0o077, 0, "readable by others");
        assert_eq!(meta.permissions().mode() & 0o700, 0o700);
        // No temporary file is left behind.
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp") && n != ".ledger_corporate.elf.tmp")
            .collect();
        assert!(names.is_empty(), "{names:?}");
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

    #[test]
    fn set_key_writes_the_identity_slot_and_refuses_other_symbols() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("audit.elf");
        std::fs::write(
            &input,
            elf_with(IDENTITY_SLOT_SYMBOL, &interface::keys::EMPTY_SLOT),
        )
        .unwrap();
        let signer = note::Signer::generate("archive", &[9; 32]).unwrap();
        let skey = dir.path().join("archive-identity.key");
        std::fs::write(&skey, format!("{}\n", signer.skey())).unwrap();
        let out = dir.path().join("out.elf");
        set_key(&input, &out, &skey, IDENTITY_SLOT_SYMBOL).unwrap();
        let patched = std::fs::read(&out).unwrap();
        let range = slot_range(&patched, IDENTITY_SLOT_SYMBOL).unwrap();
        assert_eq!(
            interface::keys::slot_skey(&patched[range]).unwrap(),
            signer.skey()
        );
        let other = dir.path().join("other.elf");
        let e = set_key(&input, &other, &skey, PAIRINGS_SLOT_SYMBOL).unwrap_err();
        assert!(e.contains("set-pairings"), "{e}");
        let e = set_key(&input, &other, &skey, "totebox_nothing").unwrap_err();
        assert!(e.contains("unknown key slot"), "{e}");
        assert!(!other.exists());
    }

    fn admin_yaml(dir: &Path, kind: &str) -> std::path::PathBuf {
        let admin = note::Signer::generate("admin", &[5; 32]).unwrap();
        let f = dir.join("pairings.yaml");
        crate::access_cmd::pair_add(&f, kind, &["*".into()], &admin.verifier().vkey()).unwrap();
        f
    }

    #[test]
    fn set_pairings_writes_the_set_and_its_flag_into_the_pairings_slot() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("audit.elf");
        let elf = elf_with(PAIRINGS_SLOT_SYMBOL, &interface::keys::EMPTY_PAIRINGS_SLOT);
        std::fs::write(&input, &elf).unwrap();
        let yaml = admin_yaml(dir.path(), "ADMIN");
        for public in [false, true] {
            let out = dir.path().join(format!("out-{public}.elf"));
            set_pairings(&input, &out, &yaml, public).unwrap();
            let patched = std::fs::read(&out).unwrap();
            let range = slot_range_len(&patched, PAIRINGS_SLOT_SYMBOL, PAIRINGS_SLOT_LEN).unwrap();
            assert_eq!(patched.len(), elf.len());
            for (i, (a, b)) in elf.iter().zip(&patched).enumerate() {
                assert!(
                    a == b || range.contains(&i),
                    "byte {i} changed outside the slot"
                );
            }
            let bytes = interface::keys::slot_pairings(&patched[range]).unwrap();
            let set = access::PairingSet::from_bytes(bytes).unwrap();
            assert_eq!(set.public_metadata(), public);
            assert_eq!(set.pairings().len(), 1);
            assert_eq!(set.pairings()[0].kind, access::PairingType::Admin);
        }
        // The key slot is not the pairings slot.
        let e = slot_range_len(&elf, PAIRINGS_SLOT_SYMBOL, KEY_SLOT_LEN).unwrap_err();
        assert!(e.contains("16384 bytes"), "{e}");
    }

    #[test]
    fn set_pairings_refuses_what_cannot_be_provisioned() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("audit.elf");
        std::fs::write(
            &input,
            elf_with(PAIRINGS_SLOT_SYMBOL, &interface::keys::EMPTY_PAIRINGS_SLOT),
        )
        .unwrap();
        let out = dir.path().join("out.elf");
        // No file.
        let e = set_pairings(&input, &out, &dir.path().join("none.yaml"), false).unwrap_err();
        assert!(e.contains("no such file"), "{e}");
        // No ADMIN.
        let yaml = admin_yaml(dir.path(), "USER");
        let e = set_pairings(&input, &out, &yaml, false).unwrap_err();
        assert!(e.contains("no ADMIN"), "{e}");
        // An ELF without the slot.
        let yaml = admin_yaml(dir.path(), "ADMIN");
        let keyonly = dir.path().join("ledger.elf");
        std::fs::write(
            &keyonly,
            elf_with(KEY_SLOT_SYMBOL, &interface::keys::EMPTY_SLOT),
        )
        .unwrap();
        let e = set_pairings(&keyonly, &out, &yaml, false).unwrap_err();
        assert!(e.contains("no symbol `totebox_pairings`"), "{e}");
        assert!(!out.exists());
        // Too big for the slot: the slot's data bound, stated.
        assert!(encode_pairings_slot(&vec![b'x'; PAIRINGS_SLOT_LEN]).is_err());
    }
}

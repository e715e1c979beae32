//! What the inspector reads from a PD's program image: its entry point, its PT_LOAD segments
//! (to tie the CapDL spec's `ElfContent` references to the file) and its checkpoint signing key
//! slot (`interface::keys`: symbol `totebox_signing_key`, 256 bytes of `.data`).

use interface::keys::{slot_skey, KeyError, KEY_SLOT_LEN, KEY_SLOT_SYMBOL};
use object::read::elf::{ElfFile64, FileHeader, ProgramHeader};
use object::{Object, ObjectSymbol};

/// One PT_LOAD segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// Virtual address.
    pub vaddr: u64,
    /// Bytes in memory.
    pub memsz: u64,
    /// Offset of its bytes in the file.
    pub offset: u64,
    /// Bytes in the file.
    pub filesz: u64,
}

/// What a program image's key slot holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    /// Not looked at (no ELF directory given).
    Unknown,
    /// The image has no key slot symbol.
    NoSlot,
    /// The slot is there but holds no key (never provisioned).
    Empty,
    /// The slot is damaged or its key does not parse.
    Bad(String),
    /// A key: its name (the log origin, `totebox-envelope-b/<log>`) and its verifier key (public).
    Log {
        /// The key's name.
        name: String,
        /// The verifier key string (`name+id+public key`).
        vkey: String,
    },
}

impl Key {
    /// The log a key is for (`corporate`, `audit`), from its name.
    pub fn log(&self) -> Option<&str> {
        match self {
            Key::Log { name, .. } => Some(name.rsplit('/').next().unwrap_or(name)),
            _ => None,
        }
    }

    /// A short public description: name and key id (never the secret).
    pub fn describe(&self) -> String {
        match self {
            Key::Unknown => "-".into(),
            Key::NoSlot => "no key slot".into(),
            Key::Empty => "EMPTY key slot".into(),
            Key::Bad(e) => format!("BAD key slot ({e})"),
            Key::Log { name, vkey } => {
                let id = vkey.split('+').nth(1).unwrap_or("?");
                format!("{name} (key id {id})")
            }
        }
    }
}

/// A parsed program image.
#[derive(Debug, Clone)]
pub struct Elf {
    /// Entry point.
    pub entry: u64,
    /// PT_LOAD segments in file order (the tool's `elf_seg_idx` counts these).
    pub segments: Vec<Segment>,
    /// The key slot's virtual address, if the image has one.
    pub slot_vaddr: Option<u64>,
    /// What the slot holds.
    pub key: Key,
}

impl Elf {
    /// Reads an AArch64 ELF64 image.
    pub fn parse(bytes: &[u8]) -> Result<Elf, String> {
        let file = ElfFile64::<object::Endianness>::parse(bytes)
            .map_err(|e| format!("not an ELF64 file: {e}"))?;
        let endian = file.endian();
        let entry = file.elf_header().e_entry(endian);
        let segments: Vec<Segment> = file
            .elf_program_headers()
            .iter()
            .filter(|ph| ph.p_type(endian) == object::elf::PT_LOAD)
            .map(|ph| Segment {
                vaddr: ph.p_vaddr(endian),
                memsz: ph.p_memsz(endian),
                offset: ph.p_offset(endian),
                filesz: ph.p_filesz(endian),
            })
            .collect();
        let mut found = file.symbols().filter(|s| s.name() == Ok(KEY_SLOT_SYMBOL));
        let (slot_vaddr, key) = match (found.next(), found.next()) {
            (None, _) => (None, Key::NoSlot),
            (Some(_), Some(_)) => (None, Key::Bad(format!("`{KEY_SLOT_SYMBOL}` defined twice"))),
            (Some(sym), None) => {
                let a = sym.address();
                let key = if sym.size() != KEY_SLOT_LEN as u64 {
                    Key::Bad(format!("`{KEY_SLOT_SYMBOL}` is {} bytes", sym.size()))
                } else {
                    slot_key(bytes, &segments, a)
                };
                (Some(a), key)
            }
        };
        Ok(Elf {
            entry,
            segments,
            slot_vaddr,
            key,
        })
    }

    /// The segment index holding virtual address `a`.
    pub fn segment_of(&self, a: u64) -> Option<usize> {
        self.segments
            .iter()
            .position(|s| s.vaddr <= a && a < s.vaddr.saturating_add(s.memsz))
    }
}

fn slot_key(bytes: &[u8], segments: &[Segment], a: u64) -> Key {
    let len = KEY_SLOT_LEN as u64;
    let Some(seg) = segments
        .iter()
        .find(|s| s.vaddr <= a && a.saturating_add(len) <= s.vaddr.saturating_add(s.filesz))
    else {
        return Key::Bad("the slot is not in a loaded segment's file bytes".into());
    };
    let start = seg.offset + (a - seg.vaddr);
    let slot = usize::try_from(start)
        .ok()
        .and_then(|s| bytes.get(s..s.checked_add(KEY_SLOT_LEN)?));
    let Some(slot) = slot else {
        return Key::Bad("the slot lies past the end of the file".into());
    };
    match slot_skey(slot) {
        Err(KeyError::Unprovisioned) => Key::Empty,
        Err(e) => Key::Bad(e.to_string()),
        Ok(skey) => match note::Signer::from_skey(skey) {
            Ok(s) => Key::Log {
                name: s.name().to_string(),
                vkey: s.verifier().vkey(),
            },
            Err(e) => Key::Bad(format!("signer key: {e}")),
        },
    }
}

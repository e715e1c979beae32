//! The provisioned boot-image ELFs (`make image-check`, part of `make test`; no SDK needed):
//! each tenant's `ledger_<t>.elf` differs from the built `ledger.elf` only inside the key slot,
//! and holds its own tenant's key and no other log's; the same for `audit.elf`, which also
//! holds, in its identity and pairings slots, the archive identity key and the initial pairing
//! set of `pairings.yaml` (and nothing else differs); the identity key is in no other ELF.
//!
//! Ignored by plain `cargo test` (the ELFs come from `make build` and `make provision`); the
//! Makefile runs it with `--ignored` and `TOTEBOX_ELF_DIR`, `TOTEBOX_IMAGE_DIR`,
//! `TOTEBOX_KEYS_DIR`, `TOTEBOX_PAIRINGS` pointing at them and `TOTEBOX_PUBLIC_METADATA` (0 or
//! 1) saying what `make provision` was asked for.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use interface::keys::{
    origin, slot_pairings, slot_skey, EMPTY_PAIRINGS_SLOT, EMPTY_SLOT, IDENTITY_SLOT_SYMBOL,
    KEY_SLOT_LEN, KEY_SLOT_SYMBOL, PAIRINGS_SLOT_LEN, PAIRINGS_SLOT_SYMBOL,
};
use interface::{AUDIT_NAMESPACE, TENANTS};
use object::{Object, ObjectSection, ObjectSymbol};

fn dir(var: &str) -> PathBuf {
    PathBuf::from(std::env::var_os(var).unwrap_or_else(|| panic!("{var} is not set")))
}

/// The byte range of the key slot in an ELF file.
fn slot_range(elf: &[u8]) -> std::ops::Range<usize> {
    symbol_range(elf, KEY_SLOT_SYMBOL, KEY_SLOT_LEN)
}

/// The byte range of the slot `symbol` of `len` bytes in an ELF file.
fn symbol_range(elf: &[u8], symbol: &str, len: usize) -> std::ops::Range<usize> {
    let file = object::File::parse(elf).unwrap();
    let syms: Vec<_> = file.symbols().filter(|s| s.name() == Ok(symbol)).collect();
    assert_eq!(syms.len(), 1, "one {symbol}");
    let sym = &syms[0];
    assert_eq!(sym.size(), len as u64);
    let section = file.section_by_index(sym.section_index().unwrap()).unwrap();
    let (off, _) = section
        .file_range()
        .expect("the slot has bytes in the file");
    let start = (off + sym.address() - section.address()) as usize;
    start..start + len
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn skey_file(log: &str) -> String {
    let text =
        std::fs::read_to_string(dir("TOTEBOX_KEYS_DIR").join(format!("{log}.skey"))).unwrap();
    text.lines().next().unwrap().trim_end().to_string()
}

fn identity_key() -> String {
    let text =
        std::fs::read_to_string(dir("TOTEBOX_KEYS_DIR").join("archive-identity.key")).unwrap();
    text.lines().next().unwrap().trim_end().to_string()
}

/// Checks `provisioned` against `built`: same bytes outside the slots (the key slot, and for
/// audit.elf the identity and pairings slots), `log`'s key inside, and no other log's key
/// anywhere; the identity key only in audit.elf.
fn check(built: &str, provisioned: &str, log: &str) {
    let built = std::fs::read(dir("TOTEBOX_ELF_DIR").join(built)).unwrap();
    let elf = std::fs::read(dir("TOTEBOX_IMAGE_DIR").join(provisioned)).unwrap();
    let range = slot_range(&built);
    let audit = log == AUDIT_NAMESPACE;
    let mut slots = vec![range.clone()];
    if audit {
        let id = symbol_range(&built, IDENTITY_SLOT_SYMBOL, KEY_SLOT_LEN);
        let p = symbol_range(&built, PAIRINGS_SLOT_SYMBOL, PAIRINGS_SLOT_LEN);
        assert_eq!(
            built[id.clone()],
            EMPTY_SLOT,
            "the built audit.elf has no identity"
        );
        assert_eq!(
            built[p.clone()],
            EMPTY_PAIRINGS_SLOT,
            "the built audit.elf has no pairings"
        );
        assert_eq!(
            symbol_range(&elf, IDENTITY_SLOT_SYMBOL, KEY_SLOT_LEN),
            id,
            "identity slot moved"
        );
        assert_eq!(
            symbol_range(&elf, PAIRINGS_SLOT_SYMBOL, PAIRINGS_SLOT_LEN),
            p,
            "pairings slot moved"
        );
        assert_eq!(
            slot_skey(&elf[id.clone()]).unwrap(),
            identity_key(),
            "audit.elf: not the archive-identity.key file's key"
        );
        let set = access::PairingSet::from_bytes(slot_pairings(&elf[p.clone()]).unwrap()).unwrap();
        let yaml = std::fs::read_to_string(dir("TOTEBOX_PAIRINGS")).unwrap();
        let mut want = access::yaml::parse(&yaml).unwrap();
        want.set_public_metadata(std::env::var("TOTEBOX_PUBLIC_METADATA").as_deref() == Ok("1"));
        assert_eq!(set, want, "audit.elf: not the pairings of TOTEBOX_PAIRINGS");
        assert!(
            set.pairings()
                .iter()
                .any(|p| p.kind == access::PairingType::Admin),
            "no ADMIN"
        );
        slots.extend([id, p]);
    } else {
        assert!(
            !contains(&elf, identity_key().as_bytes()),
            "{provisioned} holds the identity key"
        );
    }
    assert_eq!(
        built[range.clone()],
        EMPTY_SLOT,
        "the built ELF carries no key"
    );
    assert_eq!(elf.len(), built.len(), "{provisioned}: length");
    assert_eq!(slot_range(&elf), range, "{provisioned}: slot moved");
    let outside = (0..elf.len())
        .filter(|i| !slots.iter().any(|r| r.contains(i)) && elf[*i] != built[*i])
        .count();
    assert_eq!(outside, 0, "{provisioned}: bytes differ outside the slots");

    let skey = slot_skey(&elf[range]).unwrap();
    assert_eq!(skey, skey_file(log), "{provisioned}: not {log}'s key file");
    let signer = interface::keys::signer(log, skey).unwrap();
    assert_eq!(signer.name(), origin(log));
    for other in TENANTS.iter().copied().chain([AUDIT_NAMESPACE]) {
        if other != log {
            assert!(
                !contains(&elf, skey_file(other).as_bytes()),
                "{provisioned} holds {other}'s key"
            );
        }
    }
}

#[test]
#[ignore = "needs the provisioned ELFs: run by `make image-check` (part of `make test`)"]
fn each_tenant_elf_differs_only_in_its_key_slot_and_holds_only_its_own_key() {
    for t in TENANTS {
        check("ledger.elf", &format!("ledger_{t}.elf"), t);
    }
    check("audit.elf", "audit.elf", AUDIT_NAMESPACE);
    // Keys differ between tenants (no shared key).
    let keys: std::collections::BTreeSet<String> = TENANTS.iter().map(|t| skey_file(t)).collect();
    assert_eq!(keys.len(), TENANTS.len());
}

//! The provisioned boot-image ELFs (`make image-check`, part of `make test`; no SDK needed):
//! each tenant's `ledger_<t>.elf` differs from the built `ledger.elf` only inside the key slot,
//! and holds its own tenant's key and no other log's; the same for `audit.elf`.
//!
//! Ignored by plain `cargo test` (the ELFs come from `make build` and `make provision`); the
//! Makefile runs it with `--ignored` and `TOTEBOX_ELF_DIR`, `TOTEBOX_IMAGE_DIR`,
//! `TOTEBOX_KEYS_DIR` pointing at them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use interface::keys::{origin, slot_skey, EMPTY_SLOT, KEY_SLOT_LEN, KEY_SLOT_SYMBOL};
use interface::{AUDIT_NAMESPACE, TENANTS};
use object::{Object, ObjectSection, ObjectSymbol};

fn dir(var: &str) -> PathBuf {
    PathBuf::from(std::env::var_os(var).unwrap_or_else(|| panic!("{var} is not set")))
}

/// The byte range of the key slot in an ELF file.
fn slot_range(elf: &[u8]) -> std::ops::Range<usize> {
    let file = object::File::parse(elf).unwrap();
    let syms: Vec<_> = file
        .symbols()
        .filter(|s| s.name() == Ok(KEY_SLOT_SYMBOL))
        .collect();
    assert_eq!(syms.len(), 1, "one {KEY_SLOT_SYMBOL}");
    let sym = &syms[0];
    assert_eq!(sym.size(), KEY_SLOT_LEN as u64);
    let section = file.section_by_index(sym.section_index().unwrap()).unwrap();
    let (off, _) = section
        .file_range()
        .expect("the slot has bytes in the file");
    let start = (off + sym.address() - section.address()) as usize;
    start..start + KEY_SLOT_LEN
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn skey_file(log: &str) -> String {
    let text =
        std::fs::read_to_string(dir("TOTEBOX_KEYS_DIR").join(format!("{log}.skey"))).unwrap();
    text.lines().next().unwrap().trim_end().to_string()
}

/// Checks `provisioned` against `built`: same bytes outside the slot, `log`'s key inside, and
/// no other log's key anywhere.
fn check(built: &str, provisioned: &str, log: &str) {
    let built = std::fs::read(dir("TOTEBOX_ELF_DIR").join(built)).unwrap();
    let elf = std::fs::read(dir("TOTEBOX_IMAGE_DIR").join(provisioned)).unwrap();
    let range = slot_range(&built);
    assert_eq!(
        built[range.clone()],
        EMPTY_SLOT,
        "the built ELF carries no key"
    );
    assert_eq!(elf.len(), built.len(), "{provisioned}: length");
    assert_eq!(slot_range(&elf), range, "{provisioned}: slot moved");
    let outside = (0..elf.len())
        .filter(|i| !range.contains(i) && elf[*i] != built[*i])
        .count();
    assert_eq!(
        outside, 0,
        "{provisioned}: bytes differ outside the key slot"
    );

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

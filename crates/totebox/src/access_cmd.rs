//! Access control on the host (docs/access.md): `totebox pair add|remove|list` edit and show
//! `pairings.yaml`; `totebox grant` prints a capability; [`Signing`] signs every request of
//! `totebox client --skey`.
//!
//! The pure rules are the `access` crate's; this module reads files, the host clock and the
//! OS's randomness.

use std::path::Path;

use access::host::{now, random16, HostSigner};
use access::{
    yaml, CapOps, Capability, Change, Pairing, PairingChange, PairingSet, PairingType, RowRange,
    Tenants,
};
use protocol::client::Authorizer;
use protocol::Op;

use crate::fsio;
use crate::keys::{signer_file, verifier_arg};

/// Largest `pairings.yaml` read: 64 pairings take about 12 KiB.
const MAX_PAIRINGS_FILE: u64 = 256 * 1024;

/// Reads `pairings.yaml` at `file`; an absent file is an empty set.
pub fn load(file: &Path) -> Result<PairingSet, String> {
    if !fsio::exists(file) {
        return Ok(PairingSet::new());
    }
    let bytes = fsio::read_file(file, MAX_PAIRINGS_FILE)?;
    let text =
        String::from_utf8(bytes).map_err(|_| format!("{}: not UTF-8 text", file.display()))?;
    yaml::parse(&text).map_err(|e| format!("{}: {e}", file.display()))
}

/// Writes `set` to `file` in canonical form: a new file beside it, then renamed over it, so a
/// reader sees the old file or the new one, never half of one.
fn store(file: &Path, set: &PairingSet) -> Result<(), String> {
    let mut tmp = file.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    let _ = std::fs::remove_file(&tmp);
    fsio::write_new(&tmp, yaml::to_yaml(set).as_bytes(), 0o644)?;
    std::fs::rename(&tmp, file).map_err(|e| format!("{}: {e}", file.display()))
}

/// `totebox pair add --type TYPE --tenant T... --vkey VKEY [--file F]`: pairs the key (its
/// pairing replaced if it had one).
pub fn pair_add(file: &Path, kind: &str, tenants: &[String], vkey: &str) -> Result<(), String> {
    let kind = pairing_type(kind)?;
    let tenants = Tenants::new(tenants).map_err(|e| format!("pair add: {e}"))?;
    let key = verifier_arg(vkey)?;
    let mut set = load(file)?;
    let replaced = set.get(&key).is_some();
    let p =
        Pairing::new(key.clone(), kind, tenants.clone()).map_err(|e| format!("pair add: {e}"))?;
    set.upsert(p).map_err(|e| format!("pair add: {e}"))?;
    store(file, &set)?;
    println!(
        "{} {} as {kind} for {} in {}",
        if replaced { "re-paired" } else { "paired" },
        key.vkey(),
        tenants.to_text(),
        file.display()
    );
    Ok(())
}

/// `totebox pair remove --vkey VKEY [--file F]`.
pub fn pair_remove(file: &Path, vkey: &str) -> Result<(), String> {
    let key = verifier_arg(vkey)?;
    let mut set = load(file)?;
    if set.remove(&key).is_none() {
        return Err(format!(
            "pair remove: {} is not paired in {}",
            key.vkey(),
            file.display()
        ));
    }
    store(file, &set)?;
    println!("unpaired {} in {}", key.vkey(), file.display());
    Ok(())
}

/// `totebox pair list [--file F]`: one line per pairing, `TYPE<TAB>TENANTS<TAB>KEY ID<TAB>VKEY`
/// (the key id is what audit records name).
pub fn pair_list(file: &Path) -> Result<(), String> {
    print_set(&load(file)?);
    Ok(())
}

/// `totebox pair list --connect ADDR --skey ADMIN_SKEY [--archive VKEY]`: the running
/// archive's **effective** set, as its audit PD holds it: the initial set stored at first boot
/// (`pairings/initial`), then every accepted change (`pairings/<n>`) applied in order with the
/// same rules the archive applies ([`PairingSet::apply`]: each change ADMIN-signed, for this
/// archive). Fetched with `AuditObject`, so an ADMIN paired for `*` only, and audited. Prints
/// what `pair list` prints, then one `# ...` line: how many changes were applied.
pub fn pair_list_remote(r: &Remote<'_>) -> Result<(), String> {
    let what = "pair list";
    let admin = signer_file(r.skey)?;
    let mut c = crate::client::connect(r.addr)?;
    let archive = archive_of(&mut c, r.archive, what)?;
    c.set_authorizer(Box::new(Signing::from_parts(admin, archive.clone())));
    let (set, changes) = effective_set(&mut c, &archive).map_err(|e| format!("{what}: {e}"))?;
    print_set(&set);
    println!(
        "# {} change(s) applied to the initial set, archive {}",
        changes,
        archive.vkey()
    );
    Ok(())
}

/// The initial set and the changes the box holds, applied in order; the count of changes.
pub fn effective_set<S: std::io::Read + std::io::Write>(
    c: &mut protocol::client::Client<S>,
    archive: &note::Verifier,
) -> Result<(PairingSet, u64), String> {
    // Bounds: the set's image form fits audit.elf's slot; a change note is one auth note.
    let max_set = interface::keys::PAIRINGS_SLOT_LEN as u64;
    let initial = crate::client::audit_object_max(c, access::INITIAL_PAIRINGS_PATH, max_set)
        .map_err(|e| format!("{}: {e}", access::INITIAL_PAIRINGS_PATH))?
        .ok_or_else(|| format!("the box has no {}", access::INITIAL_PAIRINGS_PATH))?;
    let mut set = PairingSet::from_bytes(&initial)
        .map_err(|e| format!("{}: {e}", access::INITIAL_PAIRINGS_PATH))?;
    let mut n = 0u64;
    loop {
        let path = access::pairing_change_path(n);
        let max = protocol::MAX_AUTH_NOTE as u64;
        let Some(note) =
            crate::client::audit_object_max(c, &path, max).map_err(|e| format!("{path}: {e}"))?
        else {
            return Ok((set, n));
        };
        set.apply(&note, archive)
            .map_err(|r| format!("{path}: the archive holds a change its rules refuse: {r}"))?;
        n += 1;
    }
}

fn print_set(set: &PairingSet) {
    for p in set.pairings() {
        println!(
            "{}\t{}\t{:08x}\t{}",
            p.kind,
            p.tenants.to_text(),
            p.key.key_id(),
            p.key.vkey()
        );
    }
}

/// `totebox client --connect ADDR identity [--expect VKEY]`: the identity the archive proves
/// over a fresh challenge (`Op::Identity`), printed as `archive VKEY`; with `--expect`, any
/// other identity is refused.
pub fn identity(addr: &str, expect: Option<&str>) -> Result<(), String> {
    let mut c = crate::client::connect(addr)?;
    let challenge = random16()?;
    let (vkey, proof) =
        crate::client::identity(&mut c, challenge).map_err(|e| format!("identity: {e}"))?;
    let archive = note::Verifier::from_vkey(&vkey)
        .map_err(|e| format!("identity: the box states a malformed identity key: {e}"))?;
    access::verify_identity_proof(&archive, &proof, challenge)
        .map_err(|e| format!("identity: the box's proof does not verify: {e}"))?;
    if let Some(e) = expect {
        let want = verifier_arg(e)?;
        if want.vkey() != archive.vkey() {
            return Err(format!(
                "identity: the box is archive {}, not the expected {}",
                archive.vkey(),
                want.vkey()
            ));
        }
    }
    println!("archive {}", archive.vkey());
    Ok(())
}

/// Where `pair add|remove --connect` sends its change.
#[derive(Debug)]
pub struct Remote<'a> {
    /// `--connect ADDR`.
    pub addr: &'a str,
    /// `--skey`: an ADMIN's signer key file.
    pub skey: &'a Path,
    /// `--archive`: the archive's identity verifier key (string or file), if pinned.
    pub archive: Option<&'a str>,
}

/// A `pair add` type argument, upper or lower case.
fn pairing_type(kind: &str) -> Result<PairingType, String> {
    PairingType::parse(kind)
        .or_else(|| PairingType::parse(&kind.to_ascii_lowercase()))
        .ok_or_else(|| format!("pair add: unknown type {kind:?} (ADMIN, INPUT, USER or INTERFACE)"))
}

/// The signed `totebox-pairing/v1` note of `change` to `key` on `archive`, by `admin`.
pub fn change_note(
    admin: &note::Signer,
    archive: &note::Verifier,
    change: Change,
    key: note::Verifier,
    now: u64,
    nonce: [u8; 16],
) -> Result<Vec<u8>, String> {
    PairingChange {
        archive: archive.clone(),
        change,
        key,
        time: now,
        nonce,
    }
    .sign(admin)
    .map_err(|e| format!("cannot sign the pairing change: {e}"))
}

/// The archive's identity: `pinned` (`--archive`) if given, else the one the box proves over a
/// fresh challenge (`Op::Identity`), with a warning that its word is taken for it.
fn archive_of<S: std::io::Read + std::io::Write>(
    c: &mut protocol::client::Client<S>,
    pinned: Option<&str>,
    what: &str,
) -> Result<note::Verifier, String> {
    if let Some(arg) = pinned {
        return verifier_arg(arg);
    }
    let challenge = random16()?;
    let (vkey, proof) = crate::client::identity(c, challenge)
        .map_err(|e| format!("{what}: the archive's identity: {e}"))?;
    let archive = note::Verifier::from_vkey(&vkey)
        .map_err(|e| format!("{what}: the box states a malformed identity key: {e}"))?;
    access::verify_identity_proof(&archive, &proof, challenge)
        .map_err(|e| format!("{what}: the box's identity proof does not verify: {e}"))?;
    eprintln!(
        "{what}: warning: trusting the identity the box proves ({vkey}; pin it with --archive)"
    );
    Ok(archive)
}

/// Sends `change` to `key` to the archive at `r`, signed by its ADMIN key, in a signed
/// `pair-change` request.
fn pair_change_remote(
    r: &Remote<'_>,
    what: &str,
    change: Change,
    key: note::Verifier,
) -> Result<(), String> {
    let admin = signer_file(r.skey)?;
    let mut c = crate::client::connect(r.addr)?;
    let archive = archive_of(&mut c, r.archive, what)?;
    let note = change_note(&admin, &archive, change, key, now()?, random16()?)?;
    c.set_authorizer(Box::new(Signing::from_parts(admin, archive)));
    crate::client::pair_change(&mut c, &note).map_err(|e| format!("{what}: {e}"))
}

/// `totebox pair add ... --connect ADDR --skey ADMIN_SKEY [--archive VKEY]`.
pub fn pair_add_remote(
    r: &Remote<'_>,
    kind: &str,
    tenants: &[String],
    vkey: &str,
) -> Result<(), String> {
    let kind = pairing_type(kind)?;
    let tenants = Tenants::new(tenants).map_err(|e| format!("pair add: {e}"))?;
    let key = verifier_arg(vkey)?;
    // The archive would refuse what a file would: checked before anything is sent.
    Pairing::new(key.clone(), kind, tenants.clone()).map_err(|e| format!("pair add: {e}"))?;
    let text = tenants.to_text();
    let change = Change::Add { kind, tenants };
    pair_change_remote(r, "pair add", change, key.clone())?;
    println!("paired {} as {kind} for {text} on {}", key.vkey(), r.addr);
    Ok(())
}

/// `totebox pair remove --vkey VKEY --connect ADDR --skey ADMIN_SKEY [--archive VKEY]`.
pub fn pair_remove_remote(r: &Remote<'_>, vkey: &str) -> Result<(), String> {
    let key = verifier_arg(vkey)?;
    pair_change_remote(r, "pair remove", Change::Remove, key.clone())?;
    println!("unpaired {} on {}", key.vkey(), r.addr);
    Ok(())
}

/// Parses a duration: a number and a unit, `s`, `m`, `h` or `d` (`90s`, `15m`, `8h`, `30d`).
pub fn parse_duration(s: &str) -> Result<u64, String> {
    let bad = || format!("invalid duration {s:?} (a number and s, m, h or d: 15m, 8h, 30d)");
    let (num, unit) = s.split_at(s.len().saturating_sub(1));
    let n: u64 = num.parse().map_err(|_| bad())?;
    let mul = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    n.checked_mul(mul).filter(|&d| d > 0).ok_or_else(bad)
}

/// What `totebox grant` signs.
#[derive(Debug)]
pub struct GrantArgs<'a> {
    /// The ADMIN's signer key file.
    pub skey: &'a Path,
    /// The holder's verifier key (string or file).
    pub to: &'a str,
    /// The archive's identity verifier key (string or file).
    pub archive: &'a str,
    /// The tenant.
    pub tenant: &'a str,
    /// `--op` values: `read`, `bundle`, or comma lists of them.
    pub ops: &'a [String],
    /// `--rows A..B` or `A..`; every row if absent.
    pub rows: Option<&'a str>,
    /// `--expires DURATION` from now.
    pub expires: &'a str,
}

/// The capability note `totebox grant` prints, valid from now for the duration.
pub fn grant_note(a: &GrantArgs<'_>, now: u64, nonce: [u8; 16]) -> Result<Vec<u8>, String> {
    let admin = signer_file(a.skey)?;
    let holder = verifier_arg(a.to)?;
    let archive = verifier_arg(a.archive)?;
    let mut ops = CapOps::default();
    for o in a.ops {
        let more = CapOps::parse(o, false)
            .map_err(|_| format!("grant: --op {o}: the operations are read and bundle"))?;
        ops.read |= more.read;
        ops.bundle |= more.bundle;
    }
    let rows = match a.rows {
        None => RowRange::ALL,
        Some(r) => RowRange::parse(r).map_err(|_| {
            format!("grant: --rows {r}: expected A..B (rows A to B-1) or A.. (A < B <= 2^48)")
        })?,
    };
    if !access::valid_tenant(a.tenant) {
        return Err(format!("grant: invalid tenant {:?}", a.tenant));
    }
    let expires = now
        .checked_add(parse_duration(a.expires).map_err(|e| format!("grant: --expires: {e}"))?)
        .ok_or("grant: --expires is too far")?;
    let cap = Capability {
        archive,
        tenant: a.tenant.to_string(),
        holder,
        ops,
        rows,
        not_before: now,
        expires,
        nonce,
    };
    cap.sign(&admin)
        .map_err(|e| format!("grant: cannot sign the capability: {e}"))
}

/// `totebox grant ...`: prints the capability note.
pub fn grant(a: &GrantArgs<'_>) -> Result<(), String> {
    let note = grant_note(a, now()?, random16()?)?;
    print!("{}", String::from_utf8_lossy(&note));
    Ok(())
}

/// Signs each request `totebox client --skey FILE [--cap FILE] --archive VKEY` sends
/// ([`HostSigner`]: dated by the host clock, with a fresh random nonce, the capability
/// attached to content reads, the only requests that use one).
#[derive(Clone, Debug)]
pub struct Signing {
    signer: HostSigner,
    rows_end: Option<u64>,
}

impl Signing {
    /// From the `--skey`, `--cap` and `--archive` arguments.
    pub fn new(skey: &Path, cap: Option<&Path>, archive: Option<&str>) -> Result<Signing, String> {
        let signer = signer_file(skey)?;
        // Phase 2 lets the box state its identity (and the client pin it); until then it is
        // given.
        let archive = archive
            .ok_or("client: --skey needs --archive VKEY (the archive's identity verifier key)")?;
        let archive = verifier_arg(archive)?;
        let (capability, rows_end) = match cap {
            None => (Vec::new(), None),
            Some(path) => {
                let note = fsio::read_file(path, protocol::MAX_AUTH_NOTE as u64)?;
                let (c, _) = Capability::parse(&note)
                    .map_err(|e| format!("{}: not a capability: {e}", path.display()))?;
                if c.holder != signer.verifier() {
                    return Err(format!(
                        "{}: the capability is held by {}, not by the --skey key",
                        path.display(),
                        c.holder.vkey()
                    ));
                }
                (note, c.rows.end)
            }
        };
        Ok(Signing {
            signer: HostSigner::new(signer, archive, capability),
            rows_end,
        })
    }

    /// Signs with `signer` for `archive`, no capability (`pair --connect`).
    pub fn from_parts(signer: note::Signer, archive: note::Verifier) -> Signing {
        Signing {
            signer: HostSigner::new(signer, archive, Vec::new()),
            rows_end: None,
        }
    }

    /// One past the capability's last row, if it bounds them.
    pub fn rows_end(&self) -> Option<u64> {
        self.rows_end
    }
}

impl Authorizer for Signing {
    fn authorize(&mut self, tenant: &str, op: &Op<'_>) -> Result<Vec<u8>, String> {
        self.signer.authorize(tenant, op)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use access::SignedRequest;

    fn key_files(dir: &Path, name: &str, seed: u8) -> (std::path::PathBuf, String) {
        let s = note::Signer::generate(name, &[seed; 32]).unwrap();
        let p = dir.join(format!("{name}.skey"));
        std::fs::write(&p, s.skey()).unwrap();
        (p, s.verifier().vkey())
    }

    #[test]
    fn pair_add_remove_list_edit_the_file() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("pairings.yaml");
        let (_, alice) = key_files(d.path(), "alice", 1);
        let (_, bob) = key_files(d.path(), "bob", 2);
        pair_add(&f, "ADMIN", &["*".into()], &alice).unwrap();
        pair_add(&f, "user", &["corporate".into(), "personnel".into()], &bob).unwrap();
        let set = load(&f).unwrap();
        assert_eq!(set.pairings().len(), 2);
        // Re-pairing replaces.
        pair_add(&f, "INPUT", &["corporate".into()], &bob).unwrap();
        let set = load(&f).unwrap();
        let b = set.get(&note::Verifier::from_vkey(&bob).unwrap()).unwrap();
        assert_eq!(b.kind, PairingType::Input);
        assert!(pair_add(&f, "OWNER", &["corporate".into()], &bob)
            .unwrap_err()
            .contains("unknown type"));
        assert!(pair_add(&f, "USER", &["Bad".into()], &bob)
            .unwrap_err()
            .contains("invalid tenant"));
        assert!(pair_add(&f, "USER", &["corporate".into()], "nope").is_err());
        pair_remove(&f, &bob).unwrap();
        assert!(pair_remove(&f, &bob).unwrap_err().contains("not paired"));
        assert_eq!(load(&f).unwrap().pairings().len(), 1);
        // A broken file is named with its line, and left as it was.
        std::fs::write(&f, "pairings:\n  - key: x\n").unwrap();
        let e = pair_add(&f, "USER", &["corporate".into()], &bob).unwrap_err();
        assert!(e.contains("line 2"), "{e}");
        assert_eq!(
            std::fs::read_to_string(&f).unwrap(),
            "pairings:\n  - key: x\n"
        );
    }

    #[test]
    fn grant_prints_a_capability_the_archive_accepts() {
        let d = tempfile::tempdir().unwrap();
        let (admin_skey, admin) = key_files(d.path(), "admin", 3);
        let (user_skey, user) = key_files(d.path(), "user", 4);
        let (_, archive) = key_files(d.path(), "archive", 5);
        let ops = ["read".to_string(), "bundle".to_string()];
        let a = GrantArgs {
            skey: &admin_skey,
            to: &user,
            archive: &archive,
            tenant: "corporate",
            ops: &ops,
            rows: Some("10..20"),
            expires: "1h",
        };
        let note = grant_note(&a, 1_000_000, [1; 16]).unwrap();
        let (c, _) = Capability::parse(&note).unwrap();
        assert_eq!((c.not_before, c.expires), (1_000_000, 1_003_600));
        assert_eq!(c.ops.to_text(), "read,bundle");
        for (bad, what) in [
            (
                GrantArgs {
                    rows: Some("20..10"),
                    ..a
                },
                "--rows",
            ),
            (GrantArgs { expires: "1y", ..a }, "--expires"),
            (
                GrantArgs {
                    tenant: "Corp",
                    ..a
                },
                "invalid tenant",
            ),
            (
                GrantArgs {
                    ops: &["append".to_string()],
                    ..a
                },
                "--op",
            ),
        ] {
            let e = grant_note(&bad, 1_000_000, [1; 16]).unwrap_err();
            assert!(e.contains(what), "{e}");
        }
        // The client signs with the capability; the archive's rules grant it.
        let mut set = PairingSet::new();
        for (k, t) in [(&admin, PairingType::Admin), (&user, PairingType::User)] {
            let v = note::Verifier::from_vkey(k).unwrap();
            set.insert(Pairing::new(v, t, Tenants::All).unwrap())
                .unwrap();
        }
        let cap_file = d.path().join("cap");
        let note = grant_note(
            &GrantArgs {
                expires: "3650d",
                ..a
            },
            now().unwrap() - 10,
            [2; 16],
        )
        .unwrap();
        std::fs::write(&cap_file, &note).unwrap();
        let mut s = Signing::new(&user_skey, Some(&cap_file), Some(&archive)).unwrap();
        assert_eq!(s.rows_end(), Some(20));
        let auth = s
            .authorize(
                "corporate",
                &Op::Read {
                    since: 12,
                    max: 100,
                },
            )
            .unwrap();
        let req = SignedRequest::parse(&auth).unwrap();
        let arch = note::Verifier::from_vkey(&archive).unwrap();
        let g = access::authorize(&set, &arch, "corporate", &req, Some(now().unwrap()), 0).unwrap();
        assert_eq!(g.rows, Some((12, 20)));
        // Metadata goes without the capability.
        let auth = s.authorize("corporate", &Op::Checkpoint).unwrap();
        assert!(SignedRequest::parse(&auth)
            .unwrap()
            .capability_note()
            .is_empty());
        // Another key's capability is refused before anything is sent.
        let e = Signing::new(&admin_skey, Some(&cap_file), Some(&archive)).unwrap_err();
        assert!(e.contains("held by"), "{e}");
        assert!(Signing::new(&user_skey, None, None)
            .unwrap_err()
            .contains("--archive"));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Ok(90));
        assert_eq!(parse_duration("15m"), Ok(900));
        assert_eq!(parse_duration("8h"), Ok(28_800));
        assert_eq!(parse_duration("30d"), Ok(2_592_000));
        for bad in [
            "",
            "h",
            "0s",
            "-1h",
            "1.5h",
            "10",
            "1w",
            "99999999999999999999d",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}

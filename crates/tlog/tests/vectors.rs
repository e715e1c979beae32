//! The published vectors: transparency-dev/merkle proof vectors (testdata/merkle) and the
//! hash, root and path values of testdata/hashes.md.

// Test helpers outside #[test] functions: a panic is how a test fails (clippy.toml allows it
// inside tests only).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde_json::Value;
use tlog::proof::{root, verify_consistency, verify_inclusion, ProofError};
use tlog::{leaf_hash, Hash, Log, MemStorage};

fn json_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            json_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "json") {
            out.push(p);
        }
    }
}

fn vectors(kind: &str) -> Vec<(PathBuf, Value)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/merkle/testdata")
        .join(kind);
    let mut files = Vec::new();
    json_files(&dir, &mut files);
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let v = serde_json::from_str(&fs::read_to_string(&p).unwrap()).unwrap();
            (p, v)
        })
        .collect()
}

fn b64(v: &Value) -> Vec<u8> {
    B64.decode(v.as_str().unwrap()).unwrap()
}

fn proof(v: &Value) -> Vec<Vec<u8>> {
    match v {
        Value::Null => Vec::new(),
        Value::Array(a) => a.iter().map(b64).collect(),
        _ => panic!("proof is not an array"),
    }
}

/// Vectors whose `wantErr: false` this crate deliberately does not follow, with the error it
/// gives instead (see the `proof` module docs): their roots are 12-byte strings, which are
/// not SHA-256 tree hashes.
const DEVIATIONS: &[(&str, ProofError)] = &[(
    "consistency/additional/sizes-are-equal-one-and-proof-is-empty.json",
    ProofError::HashLength,
)];

fn deviation(p: &Path) -> Option<ProofError> {
    DEVIATIONS
        .iter()
        .find(|(name, _)| p.ends_with(name))
        .map(|&(_, e)| e)
}

#[test]
fn inclusion_vectors() {
    let vs = vectors("inclusion");
    assert!(vs.len() >= 70, "only {} inclusion vectors", vs.len());
    let (mut ok, mut err) = (0, 0);
    for (p, v) in &vs {
        let got = verify_inclusion(
            &b64(&v["leafHash"]),
            v["leafIdx"].as_u64().unwrap(),
            v["treeSize"].as_u64().unwrap(),
            &proof(&v["proof"]),
            &b64(&v["root"]),
        );
        if v["wantErr"].as_bool().unwrap() {
            assert!(got.is_err(), "{}: accepted, want error", p.display());
            err += 1;
        } else {
            assert_eq!(got, Ok(()), "{}", p.display());
            ok += 1;
        }
    }
    assert_eq!(ok, 6);
    assert!(err > 60);
}

#[test]
fn consistency_vectors() {
    let vs = vectors("consistency");
    assert!(vs.len() >= 98, "only {} consistency vectors", vs.len());
    let (mut ok, mut err, mut deviated) = (0, 0, 0);
    for (p, v) in &vs {
        let got = verify_consistency(
            v["size1"].as_u64().unwrap(),
            v["size2"].as_u64().unwrap(),
            &proof(&v["proof"]),
            &b64(&v["root1"]),
            &b64(&v["root2"]),
        );
        if let Some(e) = deviation(p) {
            assert_eq!(got, Err(e), "{}", p.display());
            deviated += 1;
        } else if v["wantErr"].as_bool().unwrap() {
            assert!(got.is_err(), "{}: accepted, want error", p.display());
            err += 1;
        } else {
            assert_eq!(got, Ok(()), "{}", p.display());
            ok += 1;
        }
    }
    assert_eq!((ok, deviated), (5, 1));
    assert!(err > 90);
    // The size-0 vectors are among the errors, whatever the roots and proof.
    let zero = vs
        .iter()
        .filter(|(_, v)| v["size1"].as_u64() == Some(0))
        .count();
    assert!(zero >= 6);
}

/// The deviation is only about length: the same case with real 32-byte roots is accepted.
#[test]
fn equal_sizes_with_real_roots() {
    let r = leaf_hash(b"x");
    let none: [&[u8]; 0] = [];
    assert_eq!(verify_consistency(1, 1, &none, &r, &r), Ok(()));
    assert_eq!(
        verify_consistency(1, 1, &none, &r, &leaf_hash(b"y")),
        Err(ProofError::RootMismatch)
    );
}

fn hex(h: &Hash) -> String {
    h.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

const REFERENCE_LEAVES: [&str; 8] = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
];

const REFERENCE_ROOTS: [&str; 9] = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

#[test]
fn reference_tree_roots() {
    let entries: Vec<Vec<u8>> = REFERENCE_LEAVES.iter().map(|s| unhex(s)).collect();
    let leaves: Vec<Hash> = entries.iter().map(|e| leaf_hash(e)).collect();
    let signer = note::Signer::generate("example.com/log", &[1; 32]).unwrap();
    let mut log = Log::create(MemStorage::new(), "example.com/log", signer).unwrap();
    assert_eq!(hex(&log.committed_root()), REFERENCE_ROOTS[0]);
    for (size, want) in REFERENCE_ROOTS.iter().enumerate() {
        let mut src = &leaves[..size];
        assert_eq!(
            hex(&root(&mut src, size as u64).unwrap()),
            *want,
            "size {size}"
        );
        if size > 0 {
            log.append(&entries[size - 1]).unwrap();
            log.checkpoint().unwrap();
            assert_eq!(hex(&log.committed_root()), *want, "log at size {size}");
        }
    }
    // Once all 8 are in, the log computes every earlier root from its tiles as well.
    for (size, want) in REFERENCE_ROOTS.iter().enumerate() {
        assert_eq!(hex(&log.root_at(size as u64).unwrap()), *want);
    }
}

//! Running the system's tar and sha256sum on images.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::Model;

pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let k = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("psdb-{name}-{}-{k}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Every regular file under `root`, relative path → bytes.
pub fn tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let t = e.file_type().unwrap();
            if t.is_dir() {
                walk(root, &e.path(), out);
            } else {
                assert!(t.is_file(), "{:?} is not a regular file", e.path());
                let rel = e
                    .path()
                    .strip_prefix(root)
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .to_string();
                out.insert(rel, std::fs::read(e.path()).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// Extracts `image` with the system's tar; asserts exit status 0 and no diagnostics.
pub fn extract(image: &[u8], dir: &TempDir) -> PathBuf {
    let img = dir.0.join("disk.img");
    std::fs::write(&img, image).unwrap();
    let out = dir.0.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let r = Command::new("tar")
        .arg("-xf")
        .arg(&img)
        .arg("-C")
        .arg(&out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert!(
        r.status.success() && stderr.is_empty(),
        "tar: {:?} {stderr}",
        r.status
    );
    out
}

/// The files tar must produce for `model`: objects, checkpoints, and nothing else outside
/// `.psdb/`.
pub fn check_tree(out: &Path, model: &Model) {
    let files = tree(out);
    let mut expected = BTreeMap::new();
    for (ns, objs) in &model.objects {
        for (p, d) in objs {
            expected.insert(format!("{ns}/{p}"), d.clone());
        }
    }
    for (ns, cp) in &model.checkpoints {
        expected.insert(format!("{ns}/checkpoint"), cp.clone());
    }
    let data: BTreeMap<_, _> = files
        .iter()
        .filter(|(k, _)| !k.starts_with(".psdb/"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    assert_eq!(
        data.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>()
    );
    assert!(data == expected, "extracted bytes differ");
    for ns in model.checkpoints.keys() {
        assert!(files.contains_key(&format!(".psdb/checkpoint/{ns}.sha256")));
    }
}

/// `sha256sum -c --strict` over every checksum file tar produced, run in the extraction root.
pub fn sha256sum_check(out: &Path) -> (bool, String) {
    let r = Command::new("sh")
        .arg("-c")
        .arg("find .psdb -name '*.sha256' -type f -exec cat {} + | sha256sum -c --strict --quiet -")
        .current_dir(out)
        .output()
        .unwrap();
    (
        r.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&r.stdout),
            String::from_utf8_lossy(&r.stderr)
        ),
    )
}

//! The simulator rig the whole-system tests share: a client over the simulated wire, booted on
//! a RAM disk that outlives the boot (so a test can restart, copy or damage it).

#![allow(dead_code)]

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;

use protocol::client::Client;
use psdb::RamDevice;
use sim::{Disk, Keys, Sim};

pub use system_tests::{system, SimStream};

pub struct Rig {
    pub client: Client<SimStream>,
    pub disk: Rc<RefCell<RamDevice>>,
    pub fail: Rc<Cell<bool>>,
}

/// The test box's signing keys (the same on every boot, as the key files of a real box).
pub fn keys() -> Keys {
    Keys::from_seed(1)
}

pub fn verifier(log: &str) -> note::Verifier {
    keys().verifier(log).unwrap()
}

pub fn boot_on(disk: Rc<RefCell<RamDevice>>) -> Rig {
    let fail = Rc::new(Cell::new(false));
    let sim = Sim::new(
        system(),
        Disk::Shared(disk.clone(), fail.clone()),
        &keys(),
        false,
    )
    .unwrap();
    assert!(sim.console().iter().any(|l| l == wire_ready()));
    Rig {
        client: Client::new(SimStream::new(sim)),
        disk,
        fail,
    }
}

pub fn boot() -> Rig {
    boot_on(Rc::new(RefCell::new(RamDevice::new(128 << 11)))) // 128 MiB
}

pub fn wire_ready() -> &'static str {
    "WIRE|INFO: ready"
}

/// The line audit prints at every boot of an archive that is not provisioned (docs/access.md,
/// "Not provisioned"): expected, so not a problem.
pub const NOT_PROVISIONED: &str = "audit|WARN: access control off: archive not provisioned";

/// The console's `|WARN` and `|ERROR` lines but [`NOT_PROVISIONED`].
pub fn problems(console: &[String]) -> Vec<&String> {
    console
        .iter()
        .filter(|l| (l.contains("|WARN") || l.contains("|ERROR")) && *l != NOT_PROVISIONED)
        .collect()
}

pub fn sim(rig: &mut Rig) -> &mut Sim {
    &mut rig.client.stream_mut().sim
}

/// tlog objects fetched from the box, as a verifier reads them.
pub struct Fetched(pub BTreeMap<String, Vec<u8>>);

impl tlog::ObjectReader for Fetched {
    type Error = std::convert::Infallible;
    fn read_object(&mut self, path: &str, out: &mut Vec<u8>) -> Result<bool, Self::Error> {
        out.clear();
        match self.0.get(path) {
            Some(b) => {
                out.extend_from_slice(b);
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

/// Exports a tenant's log the way `totebox client export` does and verifies it from scratch.
pub fn export_and_verify(c: &mut Client<SimStream>, tenant: &str) -> u64 {
    let cp = c.get_object(tenant, "checkpoint").unwrap().unwrap();
    let text = std::str::from_utf8(&cp).unwrap();
    let size: u64 = text.lines().nth(1).unwrap().parse().unwrap();
    let mut objects = BTreeMap::new();
    objects.insert("checkpoint".to_string(), cp.clone());
    for tile in tlog::tile::tiles_for_size(size).chain(tlog::tile::entry_bundles_for_size(size)) {
        let path = tile.path().as_str().to_string();
        let data = c.get_object(tenant, &path).unwrap().unwrap();
        objects.insert(path, data);
    }
    let v = verifier(tenant);
    let origin = interface::keys::origin(tenant);
    let tree = tlog::verify_tree(&mut Fetched(objects), &cp, &[v]).unwrap();
    assert_eq!((tree.size, tree.origin.as_str()), (size, origin.as_str()));
    size
}

/// The audit log on an image, as a fresh read-only mount sees it: its verified tlog's entries,
/// then the records pending in its current journal (each a signed note, verified against the
/// audit key). Each is `(index, line)` with the line as audit wrote it (`index=<i> ...`,
/// checked to be its place); the indices run 0, 1, 2, ... in order. Empty if there is no
/// audit log.
pub fn audit_log_of(image: Vec<u8>) -> Vec<(u64, String)> {
    use interface::audit_log::{journal_path, journal_slots, verify_record};
    let (mut store, _) =
        psdb::Store::mount(RamDevice::from_image(image), psdb::Mode::ReadOnly).unwrap();
    let Ok(ns) = store.open_namespace("audit") else {
        return Vec::new();
    };
    let mut cp = Vec::new();
    if !store.checkpoint(ns, &mut cp).unwrap() {
        return Vec::new();
    }
    let mut storage = psdb::NamespaceStorage::new(&mut store, ns);
    let tree = tlog::verify_tree(&mut storage, &cp, &[verifier("audit")]).unwrap();
    assert!(tree.first_missing_bundle.is_none());
    let mut out = Vec::new();
    let mut buf = Vec::new();
    for tile in tlog::tile::entry_bundles_for_size(tree.size) {
        assert!(store.get(ns, tile.path().as_str(), &mut buf).unwrap());
        for e in tlog::tile::bundle_entries(&buf) {
            let line = String::from_utf8(e.unwrap().to_vec()).unwrap();
            out.push((out.len() as u64, line));
        }
    }
    assert_eq!(out.len() as u64, tree.size);
    let path = journal_path(tree.size);
    let stat = store
        .journal_stat(ns, &path)
        .unwrap()
        .expect("the current journal");
    assert_eq!(stat.slots, journal_slots(tree.size));
    for slot in 0..stat.used {
        assert!(store.journal_read(ns, &path, slot, &mut buf).unwrap());
        let index = tree.size + u64::from(slot);
        let line = verify_record(&buf, &verifier("audit"), index, &mut None)
            .unwrap()
            .to_string();
        out.push((index, line));
    }
    for (i, (index, line)) in out.iter().enumerate() {
        assert_eq!(*index, i as u64);
        // Entries audit wrote before journals have no `index=` (psdb/tests/data/README.md).
        let legacy = !line.starts_with("index=") && (i as u64) < tree.size;
        assert!(legacy || line.starts_with(&format!("index={i} ")), "{line}");
    }
    out
}

/// [`audit_log_of`] the rig's disk now.
pub fn audit_log(disk: &Rc<RefCell<RamDevice>>) -> Vec<(u64, String)> {
    audit_log_of(disk.borrow().image().to_vec())
}

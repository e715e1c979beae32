//! The simulator rig the whole-system tests share: a client over the simulated wire, booted on
//! a RAM disk that outlives the boot (so a test can restart, copy or damage it).

#![allow(dead_code)]

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::io::{self, Read, Write};
use std::rc::Rc;

use protocol::client::Client;
use psdb::RamDevice;
use sim::{Disk, Keys, Sim};

/// A byte stream to the simulated wire: what the client writes is fed to the wire, its
/// responses are read back.
pub struct SimStream {
    pub sim: Sim,
    pub inbox: VecDeque<u8>,
}

impl Read for SimStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.inbox.len());
        for b in buf.iter_mut().take(n) {
            *b = self.inbox.pop_front().unwrap();
        }
        Ok(n) // 0 = "connection closed": a request that got no answer fails the test
    }
}

impl Write for SimStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let inbox = &mut self.inbox;
        // A system that stopped (a PD faulted during a call) answers nothing, ever: the
        // request fails with the simulator's report.
        self.sim
            .feed(buf, &mut |b| inbox.extend(b))
            .map_err(|e| io::Error::other(e.0))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

pub fn system() -> sysdesc::System {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../system.xml")).unwrap();
    sysdesc::System::parse(&text).unwrap()
}

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
        client: Client::new(SimStream {
            sim,
            inbox: VecDeque::new(),
        }),
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

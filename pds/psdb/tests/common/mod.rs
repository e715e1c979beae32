//! The simulated kernel the psdb PD's tests call it through: its four regions, its message
//! registers and its console.
#![allow(dead_code)]

use std::cell::RefCell;
use std::rc::Rc;

use interface::msg::psdb::{Reply, Request};
use interface::msg::Message;
use interface::psdb::CLIENTS;
use interface::psdb_call::DATA;
use interface::Usage;
use microkit::host::{set_backend, Backend, HostMemory};
use microkit::{Channel, IrqAckError, MessageInfo};
use psdb::RamDevice;
use psdb_labels::{OK, PUT, SET_CHECKPOINT, USAGE};
use psdb_pd::PsdbPd;

/// The typed protocol's labels ([`interface::msg::psdb::label`]), as numbers to match on.
use interface::msg::psdb::label as psdb_labels;

/// The psdb PD's kernel: its four regions, its message registers and its console.
pub struct Kernel {
    pub regions: Vec<(&'static str, HostMemory)>,
    pub mrs: RefCell<[u64; 120]>,
    pub console: RefCell<String>,
}

impl Backend for Kernel {
    fn pd_name(&self) -> &str {
        "psdb"
    }
    fn notify(&self, _: Channel) {}
    fn pp_call(&self, _: Channel, _: MessageInfo) -> MessageInfo {
        MessageInfo::new(u64::MAX, 0)
    }
    fn irq_ack(&self, _: Channel) -> Result<(), IrqAckError> {
        Ok(())
    }
    fn get_mr(&self, i: usize) -> u64 {
        self.mrs.borrow()[i]
    }
    fn set_mr(&self, i: usize, v: u64) {
        self.mrs.borrow_mut()[i] = v;
    }
    fn debug_put_str(&self, s: &str) {
        self.console.borrow_mut().push_str(s);
    }
    fn memory_region(&self, name: &str) -> Option<HostMemory> {
        self.regions
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, m)| m.clone())
    }
}

pub struct Rig {
    pub kernel: Rc<Kernel>,
    pub pd: PsdbPd<RamDevice>,
}

pub const CORPORATE: Channel = Channel::new(0);
pub const PERSONNEL: Channel = Channel::new(1);
pub const AUDIT: Channel = CLIENTS[interface::TENANT_COUNT].0;

pub fn boot(dev: RamDevice) -> Rig {
    let kernel = Rc::new(Kernel {
        regions: CLIENTS
            .iter()
            .map(|c| (c.2, HostMemory::new(c.3)))
            .collect(),
        mrs: RefCell::new([0; 120]),
        console: RefCell::new(String::new()),
    });
    set_backend(Some(kernel.clone()));
    let (store, opened) = psdb_pd::open_store(dev).unwrap();
    psdb_pd::print_opened(&store, &opened);
    let pd = psdb_pd::init(store).unwrap();
    Rig { kernel, pd }
}

impl Rig {
    pub fn region(&self, ch: Channel) -> HostMemory {
        let name = CLIENTS[ch.index()].2;
        self.kernel.memory_region(name).unwrap()
    }

    /// A call with a path and a number in MR1 (a journal's slots or slot).
    pub fn call_arg(&mut self, ch: Channel, label: u64, path: &str, arg: u64) -> MessageInfo {
        self.region(ch).write(0, path.as_bytes()).unwrap();
        self.kernel.set_mr(0, path.len() as u64);
        self.kernel.set_mr(1, arg);
        self.pd.handle(ch, MessageInfo::new(label, 2))
    }

    pub fn call(&mut self, ch: Channel, label: u64, path: &str, data: &[u8]) -> MessageInfo {
        let r = self.region(ch);
        r.write(0, path.as_bytes()).unwrap();
        r.write(DATA, data).unwrap();
        self.kernel.set_mr(0, path.len() as u64);
        self.kernel.set_mr(1, data.len() as u64);
        self.pd.handle(ch, MessageInfo::new(label, 2))
    }

    /// One request as a ledger makes it: puts, then the checkpoint that flushes them.
    pub fn request(&mut self, ch: Channel, puts: &[(&str, &[u8])], cp: &[u8]) -> u64 {
        for (p, d) in puts {
            let r = self.call(ch, PUT, p, d);
            if r.label() != OK {
                return r.label();
            }
        }
        self.call(ch, SET_CHECKPOINT, "", cp).label()
    }

    pub fn usage(&mut self, ch: Channel) -> Usage {
        // Stale registers from the caller must not matter: USAGE reads none.
        self.kernel.mrs.borrow_mut()[..8].fill(0xdead);
        let reply = self.pd.handle(ch, MessageInfo::new(USAGE, 0));
        assert_eq!(reply.label(), OK);
        assert_eq!(reply.count(), Usage::REGISTERS);
        let m = Message::received(reply);
        match Reply::decode(&Request::Usage, m.info(), m.mrs()) {
            Ok(Reply::Usage(u)) => u,
            other => panic!("{other:?}"),
        }
    }

    pub fn warnings(&self) -> Vec<String> {
        self.kernel
            .console
            .borrow()
            .lines()
            .filter(|l| l.starts_with("psdb|WARN:"))
            .map(str::to_string)
            .collect()
    }
}

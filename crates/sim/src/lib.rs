//! The host simulator: the system of `system.xml`, run on one thread, deterministically.
//!
//! - Reads the system description ([`sysdesc`]) and refuses one that breaks the structural rules
//!   (a ppcall that does not go strictly uphill, a region shared outside a channel, ...).
//! - Instantiates every PD's handler by its program image (`wire.elf`, `ledger_<tenant>.elf`,
//!   `audit.elf`, `psdb.elf`, and `template.elf` for a description that adds `pds/template`:
//!   the same library code the seL4 binaries run), highest priority first, each with
//!   its own [`microkit::host::Backend`] installed: its name, its message registers, and the
//!   memory regions it maps (one [`HostMemory`] per `<memory_region>`, shared by the PDs that map
//!   it, allocated when first asked for).
//! - Protected calls are synchronous and checked at call time as the kernel would: the caller
//!   must hold the ppcall right on that channel end and the callee must have a strictly higher
//!   priority; anything else is refused (reply label [`REFUSED`]) and logged. Message registers
//!   are copied caller -> callee -> caller, up to each message's length.
//! - A PD fault (its handler returns an error, or panics) is what seL4 makes of it. The PD
//!   stops (`MON|ERROR: faulting PD: ...`). If it faulted inside a protected call, its caller
//!   is blocked forever (a passive callee that faults never replies), and so is every PD below
//!   it in the call chain, down to the wire: the system serves nothing more. The simulator
//!   does not invent a reply: it reports `SIM|ERROR: PD <callee> faulted during a call from
//!   <caller>: <why>`, stops ([`Sim::halted`]), drops whatever the blocked PDs would have done
//!   after the call (their calls go nowhere, their output is discarded) and every later
//!   [`Sim::feed`] returns that error. A protected call to a PD that has already faulted blocks
//!   its caller the same way. [`Sim::inject_fault`] makes a PD fault on its next call (tests).
//! - Notifications (none in this system; supported for completeness) are queued and delivered
//!   after the current event, highest priority PD first.
//! - The wire's byte stream is a socket ([`Sim::feed`] / the `totebox-sim` binary); psdb's disk
//!   is a file or RAM ([`Disk`]).
//! - Signing keys ([`Keys`]): on seL4 each ledger's key is in the key slot of its own ELF copy
//!   and audit's in audit.elf (`interface::keys`); here each PD gets the same key string from
//!   the same `<log>.skey` file (`make image` and `make sim` share `$(KEYS_DIR)`), handed to the
//!   same init code.
#![forbid(unsafe_code)]

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::fmt;
use std::rc::{Rc, Weak};

use microkit::host::{set_backend, Backend, HostMemory};
use microkit::{Channel, ChannelSet, Handler, IrqAckError, MessageInfo};
use psdb::{BlockDevice, FileDevice, IoError, RamDevice};
use sysdesc::System;

pub mod http;
pub mod server;

mod disk;
mod kernel;
mod keys;

pub use disk::Disk;
use kernel::*;
pub use keys::{logs, Keys};

/// Reply label of a protected call the simulator refused (no right, unknown channel, downhill).
/// Never the answer to a call whose callee faulted: that call does not return (see the crate
/// documentation); after the system halted the blocked PDs' code that still runs in the
/// simulator sees this label, but nothing it does has any effect.
pub const REFUSED: u64 = 0xFFFF_FFFF;

// A refusal is no request nor reply of any protocol (interface::msg), nor "not serving".
const _: () =
    assert!(REFUSED >= interface::msg::REPLY_LABELS.end && REFUSED != interface::msg::NOT_SERVING);

/// Why the simulator could not start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimError(pub String);

impl fmt::Display for SimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SimError {}

/// A PD's handler, type-erased (its error becomes a string: the fault report).
trait SimHandler {
    fn protected(&mut self, ch: Channel, info: MessageInfo) -> Result<MessageInfo, String>;
    fn notified(&mut self, set: ChannelSet) -> Result<(), String>;
}

impl<H: Handler> SimHandler for H {
    fn protected(&mut self, ch: Channel, info: MessageInfo) -> Result<MessageInfo, String> {
        Handler::protected(self, ch, info).map_err(|e| e.to_string())
    }
    fn notified(&mut self, set: ChannelSet) -> Result<(), String> {
        Handler::notified(self, set).map_err(|e| e.to_string())
    }
}

/// The simulated system.
pub struct Sim {
    core: Rc<Core>,
    wire: wire_pd::Wire,
    wire_backend: Rc<PdBackend>,
}

impl fmt::Debug for Sim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sim")
            .field("wire", &self.wire.stats())
            .finish()
    }
}

/// Runs `f` with `backend` installed as the current PD.
fn as_pd<T>(backend: &Rc<PdBackend>, f: impl FnOnce() -> T) -> T {
    let prev = set_backend(Some(backend.clone()));
    let r = f();
    set_backend(prev);
    r
}

impl Sim {
    /// Builds the system of `system` with psdb on `disk` and the signing `keys`; `echo` prints
    /// console lines to stderr.
    pub fn new(system: System, disk: Disk, keys: &Keys, echo: bool) -> Result<Sim, SimError> {
        let problems = system.problems();
        if !problems.is_empty() {
            return Err(SimError(format!(
                "system description: {}",
                problems.join("; ")
            )));
        }
        let core = Rc::new_cyclic(|weak: &Weak<Core>| {
            let slots = system
                .pds
                .iter()
                .map(|pd| {
                    Rc::new(Slot {
                        name: pd.name.clone(),
                        priority: pd.priority,
                        backend: Rc::new(PdBackend {
                            core: weak.clone(),
                            name: pd.name.clone(),
                            priority: pd.priority,
                            passive: pd.passive,
                            mrs: RefCell::new([0; 120]),
                            line: RefCell::new(String::new()),
                        }),
                        handler: RefCell::new(None),
                        armed: RefCell::new(None),
                    })
                })
                .collect();
            Core {
                system: system.clone(),
                slots: RefCell::new(slots),
                regions: RefCell::new(BTreeMap::new()),
                pending: RefCell::new(Vec::new()),
                console: RefCell::new(Vec::new()),
                echo: Cell::new(echo),
                halted: RefCell::new(None),
                blocked: RefCell::new(Vec::new()),
            }
        });
        // Highest priority first: a PD's init may call the PDs above it.
        let mut order: Vec<Rc<Slot>> = core.slots.borrow().clone();
        order.sort_by_key(|s| std::cmp::Reverse(s.priority));
        let mut disk = Some(disk);
        let mut wire = None;
        for slot in order {
            let image = system
                .pd(&slot.name)
                .map(|p| p.program_image.clone())
                .unwrap_or_default();
            // A ledger PD's image is its tenant's copy of ledger.elf (`ledger_<tenant>.elf`).
            let kind = match image.as_str() {
                i if i.starts_with("ledger") && i.ends_with(".elf") => "ledger.elf",
                i => i,
            };
            let handler: Box<dyn SimHandler> = match kind {
                "psdb.elf" => {
                    let disk = disk.take().ok_or_else(|| SimError("two psdb PDs".into()))?;
                    as_pd(&slot.backend, || psdb_handler(disk))?
                }
                "ledger.elf" => {
                    let tenant = interface::tenant_of_pd_name(&slot.name)
                        .map(|t| interface::TENANTS[t])
                        .ok_or_else(|| SimError(format!("{}: not a tenant's ledger", slot.name)))?;
                    // The image's own start-up: a ledger that cannot start (no key, or
                    // another log's) keeps refusing, and the other tenants carry on.
                    let skey = keys.skey(tenant).ok_or(ledger_pd::InitError::Key(
                        interface::keys::KeyError::Unprovisioned,
                    ));
                    Box::new(as_pd(&slot.backend, || ledger_pd::start(skey)))
                }
                "audit.elf" => {
                    let log = interface::AUDIT_NAMESPACE;
                    let skey = keys.skey(log).ok_or(audit_pd::InitError::Key(
                        interface::keys::KeyError::Unprovisioned,
                    ));
                    // Provisioned: the authority; not provisioned: access control off (the
                    // phase-1 behaviour, docs/access.md "Not provisioned"). The host clock.
                    let access = match keys.access() {
                        Some((identity, pairings)) => audit_pd::Access::Enforce {
                            identity: identity.to_string(),
                            pairings: pairings.to_vec(),
                        },
                        None => audit_pd::Access::Open,
                    };
                    let clock = audit_pd::Clock::new(|| {
                        std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .ok()
                            .map(|d| d.as_secs())
                    });
                    Box::new(as_pd(&slot.backend, || {
                        audit_pd::start(skey, access, clock)
                    }))
                }
                // The skeleton of docs/adding-a-pd.md; a copy of it adds its image here.
                "template.elf" => Box::new(as_pd(&slot.backend, template_pd::boot)),
                "wire.elf" => {
                    wire = Some((
                        as_pd(&slot.backend, wire_pd::init)
                            .map_err(|e| SimError(format!("{}: {e}", slot.name)))?,
                        slot.backend.clone(),
                    ));
                    continue;
                }
                other => return Err(SimError(format!("no handler for program image `{other}`"))),
            };
            *slot.handler.borrow_mut() = Some(handler);
        }
        let (wire, wire_backend) = wire.ok_or_else(|| SimError("no wire PD".into()))?;
        let sim = Sim {
            core,
            wire,
            wire_backend,
        };
        sim.core.say(wire_pd::READY_LINE.to_string());
        Ok(sim)
    }

    /// Feeds bytes from the client to the wire; responses go to `out`.
    ///
    /// An error once the system has stopped ([`Sim::halted`]): a PD faulted during a protected
    /// call, so the wire is blocked forever. Responses to frames before that one still went
    /// out; nothing is answered after it (on seL4 the client would wait forever).
    pub fn feed(&mut self, bytes: &[u8], out: &mut dyn FnMut(&[u8])) -> Result<(), SimError> {
        self.feed_within(bytes, usize::MAX, out).map(|_| ())
    }

    /// [`Sim::feed`] with the wire's output bound ([`wire_pd::Wire::on_bytes_within`]): the
    /// wire takes frames while what it sent plus what it owes is at most `limit`; how many
    /// leading bytes of `bytes` it took.
    pub fn feed_within(
        &mut self,
        bytes: &[u8],
        limit: usize,
        out: &mut dyn FnMut(&[u8]),
    ) -> Result<usize, SimError> {
        if let Some(why) = self.halted() {
            return Err(SimError(why));
        }
        let backend = self.wire_backend.clone();
        let core = self.core.clone();
        let wire = &mut self.wire;
        let mut gated = |b: &[u8]| {
            if !core.halted() {
                out(b);
            }
        };
        let taken = as_pd(&backend, || wire.on_bytes_within(bytes, limit, &mut gated));
        if let Some(why) = self.halted() {
            return Err(SimError(why));
        }
        self.deliver_notifications();
        Ok(taken)
    }

    /// Sends one encoded [`protocol::Request`] (`payload`) through the wire
    /// ([`wire_pd::Wire::on_request`]: Checked with audit and routed as a console frame, the
    /// console's partial frame untouched) and returns the response's encoding. An error once
    /// the system has stopped, or if the wire's answer is not one frame.
    pub fn request(&mut self, payload: &[u8]) -> Result<Vec<u8>, SimError> {
        if let Some(why) = self.halted() {
            return Err(SimError(why));
        }
        let backend = self.wire_backend.clone();
        let wire = &mut self.wire;
        let mut framed = Vec::new();
        as_pd(&backend, || {
            wire.on_request(payload, &mut |b| framed.extend_from_slice(b))
        });
        if let Some(why) = self.halted() {
            return Err(SimError(why));
        }
        self.deliver_notifications();
        let mut dec = protocol::Decoder::new(vec![0u8; protocol::MAX_ENCODED]);
        let mut answer = None;
        let mut frames = 0;
        dec.feed(&framed, |f| {
            frames += 1;
            if let Ok(p) = f {
                answer = Some(p.to_vec());
            }
        });
        match answer {
            Some(a) if frames == 1 => Ok(a),
            _ => Err(SimError("the wire gave no single answer".into())),
        }
    }

    /// Why the system stopped (`SIM|ERROR: PD <callee> faulted during a call from <caller>:
    /// ...`), if it has: every PD in that call chain is blocked forever.
    pub fn halted(&self) -> Option<String> {
        self.core.halted.borrow().clone()
    }

    /// Makes PD `name` fault at its next protected call, with `why` as the fault report (what a
    /// bug or a hardware fault in it would do). Tests only. `false` if there is no such PD.
    pub fn inject_fault(&self, name: &str, why: &str) -> bool {
        match self.core.slot(name) {
            Some(slot) => {
                *slot.armed.borrow_mut() = Some(why.to_string());
                true
            }
            None => false,
        }
    }

    /// A client went away: drop its partial frame.
    pub fn disconnect(&mut self) {
        self.wire.reset();
    }

    /// The wire's counters.
    pub fn wire_stats(&self) -> wire_pd::Stats {
        self.wire.stats()
    }

    /// Every console line so far.
    pub fn console(&self) -> Vec<String> {
        self.core.console.borrow().clone()
    }

    /// Runs `f` as PD `name` (its backend installed): tests use it to make calls a compromised
    /// PD could make. `None` if there is no such PD.
    pub fn as_pd<T>(&self, name: &str, f: impl FnOnce() -> T) -> Option<T> {
        let slot = self.core.slot(name)?;
        Some(as_pd(&slot.backend, f))
    }

    /// The memory of region `name`, if some PD has mapped it.
    pub fn region(&self, name: &str) -> Option<HostMemory> {
        self.core.regions.borrow().get(name).cloned()
    }

    /// Whether PD `name` is running: neither faulted nor blocked in a call that never returns.
    pub fn is_running(&self, name: &str) -> bool {
        self.core.slot(name).is_some() && !self.is_blocked(name) && !self.has_faulted(name)
    }

    /// Whether PD `name` is blocked forever in a protected call whose callee faulted.
    pub fn is_blocked(&self, name: &str) -> bool {
        self.core.blocked.borrow().iter().any(|b| b == name)
    }

    /// Whether PD `name` has faulted (its handler is gone).
    pub fn has_faulted(&self, name: &str) -> bool {
        // The wire's handler lives in `Sim` itself, not in its slot.
        name != interface::pd::WIRE
            && self
                .core
                .slot(name)
                .is_some_and(|s| s.handler.try_borrow().map(|h| h.is_none()).unwrap_or(false))
    }

    fn deliver_notifications(&mut self) {
        loop {
            if self.core.halted() {
                return;
            }
            let next = {
                let mut pending = self.core.pending.borrow_mut();
                if pending.is_empty() {
                    return;
                }
                let slots = self.core.slots.borrow();
                let pd = pending
                    .iter()
                    .map(|(i, _)| *i)
                    .max_by_key(|i| slots.get(*i).map_or(0, |s| s.priority));
                let Some(pd) = pd else { return };
                let mut set = ChannelSet::empty();
                pending.retain(|(i, ch)| {
                    if *i == pd {
                        set = set.with(*ch);
                        false
                    } else {
                        true
                    }
                });
                slots.get(pd).cloned().map(|s| (s, set))
            };
            let Some((slot, set)) = next else { return };
            let Ok(mut h) = slot.handler.try_borrow_mut() else {
                continue;
            };
            if let Some(handler) = h.as_mut() {
                let r = as_pd(&slot.backend, || handler.notified(set));
                if let Err(e) = r {
                    *h = None;
                    self.core
                        .say(format!("MON|ERROR: faulting PD: {}: {e}", slot.name));
                }
            }
        }
    }
}

fn psdb_handler(disk: Disk) -> Result<Box<dyn SimHandler>, SimError> {
    match psdb_pd::open_store(disk) {
        Ok((store, opened)) => {
            psdb_pd::print_opened(&store, &opened);
            let pd = psdb_pd::init(store).map_err(|e| SimError(format!("psdb: {e}")))?;
            Ok(Box::new(pd))
        }
        Err(e) => {
            microkit::debug_println!("psdb|ERROR: cannot mount the disk: {e}");
            // As the seL4 image: every call answered NOT_SERVING.
            Ok(Box::new(
                interface::msg::Image::<psdb_pd::PsdbPd<Disk>, _>::Failed(e),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    struct Panics;
    impl SimHandler for Panics {
        fn protected(&mut self, _: Channel, _: MessageInfo) -> Result<MessageInfo, String> {
            panic!("boom")
        }
        fn notified(&mut self, _: ChannelSet) -> Result<(), String> {
            Ok(())
        }
    }

    /// A PD that panics inside a call faults like one returning an error: its caller is
    /// blocked, the system stops, and no reply is invented.
    #[test]
    fn a_panic_in_a_callee_is_a_fault_that_blocks_its_caller() {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../system.xml"))
                .unwrap();
        let system = System::parse(&text).unwrap();
        let sim = Sim::new(
            system,
            Disk::Ram(RamDevice::new(1 << 15)),
            &Keys::from_seed(3),
            false,
        )
        .unwrap();
        let audit = sim.core.slot("audit").unwrap();
        *audit.handler.borrow_mut() = Some(Box::new(Panics));
        let r = sim
            .as_pd("ledger_personnel", || {
                interface::ledger::AUDIT.pp_call(MessageInfo::new(1, 0))
            })
            .unwrap();
        assert_eq!(r.label(), REFUSED); // the simulator's code goes on; seL4's would not
        let why = sim.halted().unwrap();
        assert_eq!(
            why,
            "SIM|ERROR: PD audit faulted during a call from ledger_personnel: panicked: boom"
        );
        assert!(sim.has_faulted("audit") && sim.is_blocked("ledger_personnel"));
        // A later call to the faulted PD, from anyone, goes nowhere.
        let before = sim.console().len();
        let _ = sim.as_pd("ledger_corporate", || {
            microkit::debug_println!("ledger_corporate|INFO: not printed");
            interface::ledger::AUDIT.pp_call(MessageInfo::new(1, 0))
        });
        assert_eq!(
            sim.console().len(),
            before,
            "a stopped system prints nothing"
        );
    }
}

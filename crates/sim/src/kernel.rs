//! The kernel rules the simulator enforces, as seL4 and the Microkit would: each PD's backend
//! (its regions, its channels and the rights on them, protected calls only uphill and only on
//! channels the PD has, a faulted callee blocking its caller for good), the run queue.

use super::*;

pub(crate) struct Slot {
    pub(crate) name: String,
    pub(crate) priority: u8,
    pub(crate) backend: Rc<PdBackend>,
    pub(crate) handler: RefCell<Option<Box<dyn SimHandler>>>,
    /// A fault to raise at the next protected call into this PD ([`Sim::inject_fault`]).
    pub(crate) armed: RefCell<Option<String>>,
}

pub(crate) struct Core {
    pub(crate) system: System,
    pub(crate) slots: RefCell<Vec<Rc<Slot>>>,
    pub(crate) regions: RefCell<BTreeMap<String, HostMemory>>,
    /// (PD index, channel) notifications not yet delivered.
    pub(crate) pending: RefCell<Vec<(usize, Channel)>>,
    /// Every console line any PD printed, and the simulator's own reports.
    pub(crate) console: RefCell<Vec<String>>,
    pub(crate) echo: Cell<bool>,
    /// Why the system stopped: a PD faulted during a protected call (or one was made to a
    /// faulted PD), blocking the call chain down to the wire.
    pub(crate) halted: RefCell<Option<String>>,
    /// PDs blocked forever in a protected call that will never return.
    pub(crate) blocked: RefCell<Vec<String>>,
}

impl Core {
    pub(crate) fn slot(&self, name: &str) -> Option<Rc<Slot>> {
        self.slots.borrow().iter().find(|s| s.name == name).cloned()
    }

    pub(crate) fn halted(&self) -> bool {
        self.halted.borrow().is_some()
    }

    /// Stops the system: `caller` is blocked forever in a call into `callee`.
    pub(crate) fn halt(&self, line: String) {
        if self.halted() {
            return;
        }
        self.say(line.clone());
        *self.halted.borrow_mut() = Some(line);
    }

    pub(crate) fn block(&self, pd: &str) {
        let mut blocked = self.blocked.borrow_mut();
        if !blocked.iter().any(|b| b == pd) {
            blocked.push(pd.to_string());
        }
    }

    pub(crate) fn say(&self, line: String) {
        if self.echo.get() {
            eprintln!("{line}");
        }
        self.console.borrow_mut().push(line);
    }
}

/// One PD's kernel, as the simulator provides it.
pub(crate) struct PdBackend {
    pub(crate) core: Weak<Core>,
    pub(crate) name: String,
    pub(crate) priority: u8,
    pub(crate) passive: bool,
    pub(crate) mrs: RefCell<[u64; 120]>,
    pub(crate) line: RefCell<String>,
}

impl PdBackend {
    pub(crate) fn refuse(&self, core: &Core, what: String) -> MessageInfo {
        core.say(format!("SIM|ERROR: {}: {what}", self.name));
        MessageInfo::new(REFUSED, 0)
    }
}

impl Backend for PdBackend {
    fn pd_name(&self) -> &str {
        &self.name
    }

    fn is_passive(&self) -> bool {
        self.passive
    }

    fn notify(&self, channel: Channel) {
        let Some(core) = self.core.upgrade() else {
            return;
        };
        if core.halted() {
            return; // a blocked PD's code after its call: it never runs on seL4
        }
        let peer = core.system.peer(&self.name, channel.index() as u8);
        match peer {
            Some((me, peer)) if me.notify => {
                let slots = core.slots.borrow();
                if let Some(i) = slots.iter().position(|s| s.name == peer.pd) {
                    let ch = Channel::new(usize::from(peer.id));
                    core.pending.borrow_mut().push((i, ch));
                }
            }
            _ => {
                let _ = self.refuse(
                    &core,
                    format!("notify on channel {} refused", channel.index()),
                );
            }
        }
    }

    fn pp_call(&self, channel: Channel, info: MessageInfo) -> MessageInfo {
        let Some(core) = self.core.upgrade() else {
            return MessageInfo::new(REFUSED, 0);
        };
        if core.halted() {
            // The system stopped: this code runs only in the simulator (on seL4 the PD making
            // this call is blocked below a faulted callee). The call goes nowhere.
            core.block(&self.name);
            return MessageInfo::new(REFUSED, 0);
        }
        let Some((me, peer)) = core.system.peer(&self.name, channel.index() as u8) else {
            return self.refuse(
                &core,
                format!("ppcall on unknown channel {}", channel.index()),
            );
        };
        let Some(callee) = core.slot(&peer.pd) else {
            return self.refuse(&core, format!("ppcall to unknown PD {}", peer.pd));
        };
        if !me.pp {
            return self.refuse(
                &core,
                format!("no ppcall right on channel {}", channel.index()),
            );
        }
        if callee.priority <= self.priority {
            return self.refuse(
                &core,
                format!("ppcall to {} does not go uphill", callee.name),
            );
        }
        let Ok(mut handler) = callee.handler.try_borrow_mut() else {
            return self.refuse(&core, format!("ppcall into {} re-entered", callee.name));
        };
        let Some(h) = handler.as_mut() else {
            // A faulted passive PD never receives again: the caller waits forever.
            core.block(&self.name);
            core.halt(format!(
                "SIM|ERROR: PD {} called {}, which has faulted: the call never returns",
                self.name, callee.name
            ));
            return MessageInfo::new(REFUSED, 0);
        };
        let n = info.count().min(120);
        callee.backend.mrs.borrow_mut()[..n].copy_from_slice(&self.mrs.borrow()[..n]);
        let prev = set_backend(Some(callee.backend.clone()));
        let armed = callee.armed.borrow_mut().take();
        let ch = Channel::new(usize::from(peer.id));
        let result = match armed {
            Some(why) => Err(why),
            None => {
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| h.protected(ch, info)))
                    .unwrap_or_else(|p| Err(panic_message(p.as_ref())))
            }
        };
        set_backend(prev);
        if let Err(e) = result {
            *handler = None;
            core.say(format!("MON|ERROR: faulting PD: {}: {e}", callee.name));
            core.block(&self.name);
            core.halt(format!(
                "SIM|ERROR: PD {} faulted during a call from {}: {e}",
                callee.name, self.name
            ));
            return MessageInfo::new(REFUSED, 0);
        }
        if core.halted() {
            // Something above the callee faulted: the callee is blocked, so is its caller.
            core.block(&self.name);
            return MessageInfo::new(REFUSED, 0);
        }
        match result {
            Ok(reply) => {
                let n = reply.count().min(120);
                self.mrs.borrow_mut()[..n].copy_from_slice(&callee.backend.mrs.borrow()[..n]);
                reply
            }
            Err(_) => MessageInfo::new(REFUSED, 0),
        }
    }

    fn irq_ack(&self, _: Channel) -> Result<(), IrqAckError> {
        Ok(())
    }

    fn get_mr(&self, index: usize) -> u64 {
        self.mrs.borrow().get(index).copied().unwrap_or(0)
    }

    fn set_mr(&self, index: usize, value: u64) {
        if let Some(r) = self.mrs.borrow_mut().get_mut(index) {
            *r = value;
        }
    }

    fn debug_put_str(&self, s: &str) {
        if self.core.upgrade().is_some_and(|c| c.halted()) {
            return; // a blocked PD prints nothing
        }
        let mut line = self.line.borrow_mut();
        for c in s.chars() {
            if c == '\n' {
                let text = std::mem::take(&mut *line);
                if let Some(core) = self.core.upgrade() {
                    core.say(text);
                }
            } else {
                line.push(c);
            }
        }
    }

    fn memory_region(&self, setvar_vaddr: &str) -> Option<HostMemory> {
        let core = self.core.upgrade()?;
        let pd = core.system.pd(&self.name)?;
        let map = pd
            .maps
            .iter()
            .find(|m| m.setvar_vaddr.as_deref() == Some(setvar_vaddr))?;
        let region = core.system.region(&map.mr)?;
        let mut regions = core.regions.borrow_mut();
        let mem = regions.entry(region.name.clone()).or_insert_with(|| {
            let m = HostMemory::new(usize::try_from(region.size).unwrap_or(0));
            match region.phys_addr {
                Some(p) => m.with_paddr(p),
                None => m,
            }
        });
        Some(mem.clone())
    }
}

/// What a panic carried, as a fault report.
pub(crate) fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    match (p.downcast_ref::<&str>(), p.downcast_ref::<String>()) {
        (Some(s), _) => format!("panicked: {s}"),
        (_, Some(s)) => format!("panicked: {s}"),
        _ => "panicked".to_string(),
    }
}

//! The capability graph, in one shape for both views: what the system description declares
//! ([`Model::from_description`]) and what the CapDL spec grants ([`Model::from_capdl`]). The
//! rules (`check`) run on either; `compare` sets the two side by side.
//!
//! In the CapDL view nothing is derived from object names. Each TCB is tied to a PD of the
//! description by the program image mapped at its entry point (the tool numbers images in the
//! order of the description's PDs; the monitor's is the last). Its CSpace is walked from the
//! TCB's CSpace root through every CNode capability; its VSpace from the TCB's VSpace root down
//! the page tables to each frame (virtual address from the table indices). A frame belongs to
//! a memory region when a PD that declares that region maps the frame inside the region's
//! declared range; to the program image when it holds the image's bytes; to the IPC buffer when
//! the TCB names it; to the stack when it lies in the stack's range below the IPC buffer.
//! Everything else mapped is undeclared. Names appear in the output only as labels.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use sysdesc::System;

use crate::capdl::{self, Cap, Object, Rights, Spec};
use crate::elf::{Elf, Key};

/// Which view a model is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// The system description (system.xml).
    Description,
    /// The CapDL spec.
    Capdl,
}

impl View {
    /// As printed in violations.
    pub fn tag(self) -> &'static str {
        match self {
            View::Description => "xml",
            View::Capdl => "capdl",
        }
    }
}

/// What a PD is for (the description gives the meaning: its name).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// `wire`: the client-facing PD; a trusted relay (it reaches every ledger).
    Wire,
    /// `ledger_<tenant>`.
    Ledger(String),
    /// `audit`: a trusted relay (every ledger calls it).
    Audit,
    /// `psdb`: a trusted relay (every ledger and audit call it).
    Psdb,
    /// Microkit's monitor: trusted (it holds every PD's TCB by design).
    Monitor,
    /// Anything else: not trusted to relay between tenants.
    Other,
}

impl Role {
    /// The role a description name gives.
    pub fn of(name: &str) -> Role {
        match name {
            "wire" => Role::Wire,
            "audit" => Role::Audit,
            "psdb" => Role::Psdb,
            _ => match name.strip_prefix("ledger_") {
                Some(t) => Role::Ledger(t.to_string()),
                None => Role::Other,
            },
        }
    }

    /// Trusted to keep tenants apart while connected to several (wire, audit, psdb, monitor).
    pub fn trusted_relay(&self) -> bool {
        matches!(self, Role::Wire | Role::Audit | Role::Psdb | Role::Monitor)
    }

    /// The tenant, for a ledger.
    pub fn tenant(&self) -> Option<&str> {
        match self {
            Role::Ledger(t) => Some(t),
            _ => None,
        }
    }

    /// In words.
    pub fn describe(&self) -> String {
        match self {
            Role::Wire => "wire (trusted relay)".into(),
            Role::Ledger(t) => format!("ledger of tenant {t}"),
            Role::Audit => "audit (trusted relay)".into(),
            Role::Psdb => "psdb (trusted relay)".into(),
            Role::Monitor => "Microkit monitor (trusted)".into(),
            Role::Other => "other (untrusted)".into(),
        }
    }
}

/// A protection domain.
#[derive(Debug, Clone)]
pub struct Pd {
    /// Its name in the description (`monitor` for Microkit's).
    pub name: String,
    /// What it is for.
    pub role: Role,
    /// Priority.
    pub priority: u8,
    /// Its program image file (as the description names it).
    pub image: Option<String>,
    /// What its key slot holds.
    pub key: Key,
    /// Where the key slot is mapped (CapDL view: vaddr and the frame's label).
    pub key_at: Option<String>,
}

/// Endpoint or notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpcKind {
    /// IPC endpoint (protected calls, faults).
    Endpoint,
    /// Notification (signals, IRQs).
    Notification,
}

/// A PD's capability to an endpoint or notification.
#[derive(Debug, Clone)]
pub struct Holder {
    /// The PD.
    pub pd: usize,
    /// Its rights.
    pub rights: Rights,
    /// Its badge.
    pub badge: u64,
    /// Where (CSpace slot, or the TCB's fault endpoint).
    pub at: String,
    /// In the PD's CSpace, so the PD can invoke it (a TCB's fault endpoint is the kernel's to
    /// use: it sends the PD's faults on it).
    pub in_cspace: bool,
}

/// An endpoint or notification and who holds it.
#[derive(Debug, Clone)]
pub struct Ipc {
    /// Label for people.
    pub label: String,
    /// Which kind.
    pub kind: IpcKind,
    /// The PD that receives on it (endpoint: holds it unbadged; notification: bound to it).
    pub server: Option<usize>,
    /// A fault endpoint (some TCB's fault handler).
    pub fault: bool,
    /// Every PD capability to it.
    pub holders: Vec<Holder>,
}

/// What a piece of memory is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemKind {
    /// A declared memory region.
    Region,
    /// A declared region at a fixed physical address (device registers, DMA).
    Device,
    /// A PD's program image (the PD it is for, if known).
    Image(Option<usize>),
    /// A PD's stack.
    Stack(usize),
    /// A PD's IPC buffer.
    IpcBuffer(usize),
    /// Mapped but declared nowhere.
    Undeclared,
}

/// A PD's access to a piece of memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemMap {
    /// The PD.
    pub pd: usize,
    /// Lowest virtual address (None: a frame capability in its CSpace, mappable at will).
    pub vaddr: Option<u64>,
    /// Readable.
    pub read: bool,
    /// Writable.
    pub write: bool,
    /// Executable.
    pub exec: bool,
    /// Cached.
    pub cached: bool,
    /// Bytes mapped.
    pub bytes: u64,
    /// The distinct rights of its frames, when they differ (a program image: `rx`, `r`, `rw`).
    pub each: BTreeSet<String>,
}

fn perm_str(read: bool, write: bool, exec: bool) -> String {
    let mut s = String::new();
    if read {
        s.push('r');
    }
    if write {
        s.push('w');
    }
    if exec {
        s.push('x');
    }
    s
}

impl MemMap {
    /// `rw`, `rx`, ...; `rx+r+rw` when its frames differ.
    pub fn perms(&self) -> String {
        if self.each.len() > 1 {
            let v: Vec<&str> = self.each.iter().map(String::as_str).collect();
            return v.join("+");
        }
        perm_str(self.read, self.write, self.exec)
    }
}

/// A piece of memory: a region, an image, a stack, ...
#[derive(Debug, Clone)]
pub struct Mem {
    /// Label (the region's name, the image file, ...).
    pub label: String,
    /// Which kind.
    pub kind: MemKind,
    /// Whose it is, per the description (a tenant), if anyone's.
    pub tenant: Option<String>,
    /// Bytes.
    pub bytes: u64,
    /// Frames (CapDL view).
    pub frames: usize,
    /// Physical address, if fixed.
    pub paddr: Option<u64>,
    /// Who can access it.
    pub maps: Vec<MemMap>,
}

impl Mem {
    /// The PDs that can access it.
    pub fn pds(&self) -> BTreeSet<usize> {
        self.maps.iter().map(|m| m.pd).collect()
    }
}

/// An interrupt and who owns it.
#[derive(Debug, Clone)]
pub struct Irq {
    /// The number.
    pub irq: u64,
    /// PDs holding its handler capability (acknowledge it).
    pub handlers: BTreeSet<usize>,
    /// PDs its notification wakes.
    pub targets: BTreeSet<usize>,
}

/// A capability over another PD itself (its TCB, CSpace, VSpace, scheduling, replies).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authority {
    /// Who holds it.
    pub holder: usize,
    /// Over whom.
    pub over: usize,
    /// What it is.
    pub what: String,
}

/// A whole capability graph.
#[derive(Debug, Clone)]
pub struct Model {
    /// Which view.
    pub view: View,
    /// PDs: the description's in order, then the monitor.
    pub pds: Vec<Pd>,
    /// Endpoints and notifications.
    pub ipcs: Vec<Ipc>,
    /// Memory.
    pub mems: Vec<Mem>,
    /// Interrupts.
    pub irqs: Vec<Irq>,
    /// Capabilities over other PDs.
    pub authority: Vec<Authority>,
    /// Problems found while building it (unreadable structure, the description's own
    /// structural problems, the spec not matching what it should hold).
    pub problems: Vec<String>,
    /// CapDL view: where the spec and the description disagree, found while building.
    pub mismatches: Vec<String>,
    /// CapDL view: objects in the spec.
    pub objects: usize,
}

/// Where a TCB's own fault endpoint capability is (not in its CSpace).
const TCB_FAULT: &str = "TCB fault endpoint";
/// Microkit's default stack size.
const DEFAULT_STACK: u64 = 0x2000;
/// The monitor's stack: at most this far below its IPC buffer.
const MAX_STACK: u64 = 16 << 20;
/// The guard page between the stack and the IPC buffer.
const PAGE: u64 = 0x1000;

/// The tenant a name stands for: the one tenant among `tenants` that is a `_`-separated part
/// of it (`wire_corporate`, `corporate_psdb`, `heap_corporate`, `ledger_corporate.elf`).
pub fn tenant_in(name: &str, tenants: &[String]) -> Option<String> {
    let stem = name.strip_suffix(".elf").unwrap_or(name);
    let hits: Vec<&String> = tenants
        .iter()
        .filter(|t| {
            stem == t.as_str()
                || stem.starts_with(&format!("{t}_"))
                || stem.ends_with(&format!("_{t}"))
                || stem.contains(&format!("_{t}_"))
        })
        .collect();
    match hits.as_slice() {
        [one] => Some((*one).clone()),
        _ => None,
    }
}

/// The tenants: every ledger PD's name after `ledger_`.
pub fn tenants(sys: &System) -> Vec<String> {
    sys.pds
        .iter()
        .filter_map(|p| p.name.strip_prefix("ledger_").map(str::to_string))
        .collect()
}

/// The tenant a region belongs to: the one it names, else that of the one ledger mapping it.
fn region_tenant(sys: &System, region: &str, tenants: &[String]) -> Option<String> {
    if let Some(t) = tenant_in(region, tenants) {
        return Some(t);
    }
    let ledgers: BTreeSet<&str> = sys
        .pds
        .iter()
        .filter(|p| p.maps.iter().any(|m| m.mr == region))
        .filter_map(|p| p.name.strip_prefix("ledger_"))
        .collect();
    match ledgers.len() {
        1 => ledgers.into_iter().next().map(str::to_string),
        _ => None,
    }
}

fn perms_of(p: &str) -> (bool, bool, bool) {
    (p.contains('r'), p.contains('w'), p.contains('x'))
}

/// Reads the program images named by the description from `dir`.
pub fn read_elves(sys: &System, dir: &Path) -> Vec<Result<Elf, String>> {
    sys.pds
        .iter()
        .map(|p| {
            let path = dir.join(&p.program_image);
            let bytes =
                std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            Elf::parse(&bytes).map_err(|e| format!("{}: {e}", path.display()))
        })
        .collect()
}

fn monitor_pd() -> Pd {
    Pd {
        name: "monitor".into(),
        role: Role::Monitor,
        priority: 255,
        image: None,
        key: Key::Unknown,
        key_at: None,
    }
}

fn ends_toward<'a>(
    sys: &'a System,
    pd: &'a str,
) -> impl Iterator<Item = (&'a sysdesc::End, &'a sysdesc::End)> {
    sys.channels.iter().filter_map(move |c| {
        if c.b.pd == pd {
            Some((&c.a, &c.b))
        } else if c.a.pd == pd {
            Some((&c.b, &c.a))
        } else {
            None
        }
    })
}

impl Model {
    /// Index of the PD called `name`.
    pub fn pd_index(&self, name: &str) -> Option<usize> {
        self.pds.iter().position(|p| p.name == name)
    }

    /// The PD's name.
    pub fn name(&self, pd: usize) -> &str {
        self.pds.get(pd).map_or("?", |p| p.name.as_str())
    }

    /// The index of Microkit's monitor.
    pub fn monitor(&self) -> Option<usize> {
        self.pds.iter().position(|p| p.role == Role::Monitor)
    }

    /// Protected calls: (caller, callee, endpoint). Fault endpoints are not calls.
    pub fn calls(&self) -> Vec<(usize, usize, usize)> {
        let mut v = Vec::new();
        for (i, e) in self.ipcs.iter().enumerate() {
            if e.kind != IpcKind::Endpoint || e.fault {
                continue;
            }
            let Some(s) = e.server else { continue };
            for h in &e.holders {
                if h.pd != s && h.rights.write {
                    v.push((h.pd, s, i));
                }
            }
        }
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Signals: (signaller, receiver, notification), the monitor's left out.
    pub fn signals(&self) -> Vec<(usize, usize, usize)> {
        let mon = self.monitor();
        let mut v = Vec::new();
        for (i, e) in self.ipcs.iter().enumerate() {
            if e.kind != IpcKind::Notification {
                continue;
            }
            let Some(s) = e.server else { continue };
            for h in &e.holders {
                if h.pd != s && h.rights.write && Some(h.pd) != mon {
                    v.push((h.pd, s, i));
                }
            }
        }
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Unordered pairs of PDs joined by a call or a signal (the channels).
    pub fn channel_pairs(&self) -> BTreeSet<(usize, usize)> {
        self.calls()
            .into_iter()
            .chain(self.signals())
            .map(|(a, b, _)| (a.min(b), a.max(b)))
            .collect()
    }

    /// The system description's view.
    pub fn from_description(sys: &System, elves: Option<&[Result<Elf, String>]>) -> Model {
        let tenants = tenants(sys);
        let mut m = Model {
            view: View::Description,
            pds: Vec::new(),
            ipcs: Vec::new(),
            mems: Vec::new(),
            irqs: Vec::new(),
            authority: Vec::new(),
            problems: sys.problems(),
            mismatches: Vec::new(),
            objects: 0,
        };
        for (i, p) in sys.pds.iter().enumerate() {
            let (key, problem) = match elves.and_then(|e| e.get(i)) {
                None => (Key::Unknown, None),
                Some(Ok(elf)) => (elf.key.clone(), None),
                Some(Err(e)) => (Key::Unknown, Some(e.clone())),
            };
            m.problems.extend(problem);
            m.pds.push(Pd {
                name: p.name.clone(),
                role: Role::of(&p.name),
                priority: p.priority,
                image: Some(p.program_image.clone()),
                key,
                key_at: None,
            });
        }
        m.pds.push(monitor_pd());
        let mon = m.pds.len() - 1;
        let idx = |name: &str| sys.pds.iter().position(|p| p.name == name);
        let caller = Rights {
            read: false,
            write: true,
            grant: true,
            grant_reply: true,
        };
        let own = Rights {
            read: true,
            write: true,
            grant: true,
            grant_reply: false,
        };
        for (s, p) in sys.pds.iter().enumerate() {
            let callers: Vec<_> = ends_toward(sys, &p.name).filter(|(o, _)| o.pp).collect();
            if !callers.is_empty() {
                let mut holders = vec![Holder {
                    pd: s,
                    rights: own,
                    badge: 0,
                    at: "own endpoint".into(),
                    in_cspace: true,
                }];
                for (o, me) in callers {
                    if let Some(c) = idx(&o.pd) {
                        holders.push(Holder {
                            pd: c,
                            rights: caller,
                            badge: (1 << 63) | u64::from(me.id),
                            at: format!("channel {}", o.id),
                            in_cspace: true,
                        });
                    }
                }
                m.ipcs.push(Ipc {
                    label: format!("{}'s endpoint", p.name),
                    kind: IpcKind::Endpoint,
                    server: Some(s),
                    fault: false,
                    holders,
                });
            }
            let mut holders = vec![Holder {
                pd: s,
                rights: own,
                badge: 0,
                at: "own notification".into(),
                in_cspace: true,
            }];
            for (o, me) in ends_toward(sys, &p.name).filter(|(o, _)| o.notify) {
                if let Some(c) = idx(&o.pd) {
                    holders.push(Holder {
                        pd: c,
                        rights: Rights {
                            write: true,
                            ..Rights::default()
                        },
                        badge: 1 << me.id,
                        at: format!("channel {}", o.id),
                        in_cspace: true,
                    });
                }
            }
            m.ipcs.push(Ipc {
                label: format!("{}'s notification", p.name),
                kind: IpcKind::Notification,
                server: Some(s),
                fault: false,
                holders,
            });
            for irq in &p.irqs {
                match m.irqs.iter_mut().find(|q| q.irq == u64::from(irq.irq)) {
                    Some(q) => {
                        q.handlers.insert(s);
                        q.targets.insert(s);
                    }
                    None => m.irqs.push(Irq {
                        irq: u64::from(irq.irq),
                        handlers: [s].into(),
                        targets: [s].into(),
                    }),
                }
            }
        }
        // Every PD's faults go to the monitor.
        let mut holders = vec![Holder {
            pd: mon,
            rights: own,
            badge: 0,
            at: "own endpoint".into(),
            in_cspace: true,
        }];
        for s in 0..sys.pds.len() {
            holders.push(Holder {
                pd: s,
                rights: caller,
                badge: s as u64 + 1,
                at: "fault endpoint".into(),
                in_cspace: true,
            });
        }
        m.ipcs.push(Ipc {
            label: "monitor's fault endpoint".into(),
            kind: IpcKind::Endpoint,
            server: Some(mon),
            fault: true,
            holders,
        });
        for r in &sys.regions {
            let mut maps = Vec::new();
            for (i, p) in sys.pds.iter().enumerate() {
                for mp in p.maps.iter().filter(|mp| mp.mr == r.name) {
                    let (read, write, exec) = perms_of(&mp.perms);
                    maps.push(MemMap {
                        pd: i,
                        vaddr: Some(mp.vaddr),
                        read,
                        write,
                        exec,
                        cached: mp.cached,
                        bytes: r.size,
                        each: BTreeSet::new(),
                    });
                }
            }
            m.mems.push(Mem {
                label: r.name.clone(),
                kind: if sys.is_device_region(&r.name) {
                    MemKind::Device
                } else {
                    MemKind::Region
                },
                tenant: region_tenant(sys, &r.name, &tenants),
                bytes: r.size,
                frames: 0,
                paddr: r.phys_addr,
                maps,
            });
        }
        // Program images: one per file; the PD it is for is the one named like the file.
        let mut files: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, p) in sys.pds.iter().enumerate() {
            files.entry(p.program_image.as_str()).or_default().push(i);
        }
        for (file, users) in files {
            let stem = file.strip_suffix(".elf").unwrap_or(file);
            let owner = idx(stem).or_else(|| (users.len() == 1).then(|| users[0]));
            m.mems.push(Mem {
                label: file.to_string(),
                kind: MemKind::Image(owner),
                tenant: tenant_in(file, &tenants),
                bytes: 0,
                frames: 0,
                paddr: None,
                maps: users
                    .iter()
                    // Each PD gets its own copy of the bytes: nothing written is shared.
                    .map(|&pd| MemMap {
                        pd,
                        vaddr: None,
                        read: true,
                        write: false,
                        exec: true,
                        cached: true,
                        bytes: 0,
                        each: BTreeSet::new(),
                    })
                    .collect(),
            });
        }
        for s in 0..sys.pds.len() {
            m.authority.push(Authority {
                holder: mon,
                over: s,
                what: "TCB".into(),
            });
        }
        m
    }

    /// The CapDL spec's view, the description giving the meaning (which PD is which, whose
    /// each region is). `elves`: the program images the description names (from the search
    /// path the tool was given), to tie image content to files and read key slots.
    pub fn from_capdl(sys: &System, spec: &Spec, elves: Option<&[Result<Elf, String>]>) -> Model {
        CapdlBuilder::new(sys, spec, elves).build()
    }
}

/// One mapping found by walking a VSpace.
#[derive(Debug, Clone, Copy)]
struct Mapping {
    vaddr: u64,
    frame: usize,
    bytes: u64,
    cap: capdl::FrameCap,
}

#[derive(Debug, Default, Clone)]
struct TcbInfo {
    obj: usize,
    cspace: Option<capdl::CNodeCap>,
    vspace: Option<usize>,
    ipc_frame: Option<usize>,
    fault_ep: Option<capdl::IpcCap>,
    sc: Option<usize>,
    bound: Option<usize>,
    prio: u8,
    ip: u64,
    ipc_addr: u64,
    maps: Vec<Mapping>,
    tables: BTreeSet<usize>,
    cnodes: BTreeSet<usize>,
    caps: Vec<(String, Cap)>,
}

struct CapdlBuilder<'a> {
    sys: &'a System,
    spec: &'a Spec,
    elves: Option<&'a [Result<Elf, String>]>,
    tenants: Vec<String>,
    m: Model,
}

impl<'a> CapdlBuilder<'a> {
    fn new(sys: &'a System, spec: &'a Spec, elves: Option<&'a [Result<Elf, String>]>) -> Self {
        CapdlBuilder {
            sys,
            spec,
            elves,
            tenants: tenants(sys),
            m: Model {
                view: View::Capdl,
                pds: Vec::new(),
                ipcs: Vec::new(),
                mems: Vec::new(),
                irqs: Vec::new(),
                authority: Vec::new(),
                problems: Vec::new(),
                mismatches: Vec::new(),
                objects: spec.objects.len(),
            },
        }
    }

    fn label(&self, id: usize) -> &str {
        &self.spec.obj(id).name
    }

    fn problem(&mut self, s: String) {
        self.m.problems.push(s);
    }

    /// The TCB's bound objects.
    fn tcb(&mut self, obj: usize, t: &capdl::Tcb) -> TcbInfo {
        let mut info = TcbInfo {
            obj,
            prio: t.extra.prio,
            ip: t.extra.ip,
            ipc_addr: t.extra.ipc_buffer_addr,
            ..TcbInfo::default()
        };
        for s in &t.slots {
            match (s.slot, s.cap) {
                (0, Cap::CNode(c)) => info.cspace = Some(c),
                (1, Cap::PageTable(r)) => info.vspace = Some(r.object),
                (4, Cap::Frame(f)) => info.ipc_frame = Some(f.object),
                (5, Cap::Endpoint(e)) => info.fault_ep = Some(e),
                (6, Cap::SchedContext(r)) => info.sc = Some(r.object),
                (8, Cap::Notification(n)) => info.bound = Some(n.object),
                (slot, cap) => {
                    let l = self.label(obj).to_string();
                    self.problem(format!(
                        "TCB `{l}` slot {slot} holds a {} capability this inspector does not model",
                        cap.kind()
                    ));
                }
            }
        }
        info
    }

    /// Walks a VSpace from its root table.
    fn walk_vspace(&mut self, info: &mut TcbInfo) {
        let Some(root) = info.vspace else {
            let l = self.label(info.obj).to_string();
            self.problem(format!("TCB `{l}` has no VSpace"));
            return;
        };
        let mut stack = vec![(root, 0u64)];
        while let Some((pt, base)) = stack.pop() {
            if !info.tables.insert(pt) {
                let l = self.label(pt).to_string();
                self.problem(format!("page table `{l}` appears twice in one VSpace"));
                continue;
            }
            let Object::PageTable(table) = &self.spec.obj(pt).object else {
                let l = self.label(pt).to_string();
                self.problem(format!("`{l}` is used as a page table but is not one"));
                continue;
            };
            let Some(level) = table.level.filter(|l| *l <= 3) else {
                let l = self.label(pt).to_string();
                self.problem(format!("page table `{l}` has no level (0..=3)"));
                continue;
            };
            let shift = 12 + 9 * u32::from(3 - level);
            for s in &table.slots {
                let Some(va) = s.slot.checked_shl(shift).map(|o| base | o) else {
                    continue;
                };
                match s.cap {
                    Cap::PageTable(r) => stack.push((r.object, va)),
                    Cap::Frame(f) => {
                        let size_bits = match &self.spec.obj(f.object).object {
                            Object::Frame(fr) => fr.size_bits,
                            _ => {
                                let l = self.label(f.object).to_string();
                                self.problem(format!("`{l}` is mapped as a frame but is not one"));
                                continue;
                            }
                        };
                        if u32::from(size_bits) != shift {
                            let l = self.label(f.object).to_string();
                            self.problem(format!(
                                "frame `{l}` of 2^{size_bits} bytes sits in a table of 2^{shift}-byte entries"
                            ));
                        }
                        if f.rights.write && f.executable {
                            let l = self.label(f.object).to_string();
                            self.problem(format!(
                                "frame `{l}` is mapped writable and executable at {va:#x}"
                            ));
                        }
                        info.maps.push(Mapping {
                            vaddr: va,
                            frame: f.object,
                            bytes: 1u64 << size_bits.min(63),
                            cap: f,
                        });
                    }
                    other => {
                        let l = self.label(pt).to_string();
                        self.problem(format!(
                            "page table `{l}` slot {} holds a {} capability",
                            s.slot,
                            other.kind()
                        ));
                    }
                }
            }
        }
        info.maps.sort_by_key(|m| m.vaddr);
    }

    /// Walks a CSpace from its root CNode capability.
    fn walk_cspace(&mut self, info: &mut TcbInfo) {
        let Some(root) = info.cspace else {
            let l = self.label(info.obj).to_string();
            self.problem(format!("TCB `{l}` has no CSpace"));
            return;
        };
        let mut stack = vec![(root.object, String::new())];
        while let Some((cn, path)) = stack.pop() {
            if !info.cnodes.insert(cn) {
                continue;
            }
            let Object::CNode(node) = &self.spec.obj(cn).object else {
                let l = self.label(cn).to_string();
                self.problem(format!("`{l}` is used as a CNode but is not one"));
                continue;
            };
            for s in &node.slots {
                let here = if path.is_empty() {
                    format!("slot {}", s.slot)
                } else {
                    format!("{path}/{}", s.slot)
                };
                if let Cap::CNode(c) = s.cap {
                    stack.push((c.object, here));
                } else {
                    info.caps.push((here, s.cap));
                }
            }
        }
    }

    fn build(mut self) -> Model {
        let sys = self.sys;
        let spec = self.spec;
        let npds = sys.pds.len();
        // 1. TCBs and their VSpaces and CSpaces.
        let mut tcbs = Vec::new();
        for (id, o) in spec.objects.iter().enumerate() {
            if let Object::Tcb(t) = &o.object {
                let mut info = self.tcb(id, t);
                self.walk_vspace(&mut info);
                self.walk_cspace(&mut info);
                tcbs.push(info);
            }
        }
        // 2. Which PD each TCB is: the image mapped at its entry point.
        let mut by_pd: Vec<Option<usize>> = vec![None; npds + 1];
        for (ti, info) in tcbs.iter().enumerate() {
            let elf = info
                .maps
                .iter()
                .find(|mp| mp.vaddr <= info.ip && info.ip < mp.vaddr + mp.bytes)
                .and_then(|mp| frame_elf(spec, mp.frame));
            let l = self.label(info.obj).to_string();
            match elf {
                Some(k) if k <= npds => {
                    if let Some(prev) = by_pd[k] {
                        let pl = self.label(tcbs[prev].obj).to_string();
                        self.problem(format!(
                            "TCBs `{pl}` and `{l}` both run program image {k}"
                        ));
                    } else {
                        by_pd[k] = Some(ti);
                    }
                }
                Some(k) => self.problem(format!(
                    "TCB `{l}` runs program image {k}, but the description has {npds} PDs (+ the monitor)"
                )),
                None => self.problem(format!(
                    "TCB `{l}`: no program image is mapped at its entry point {:#x}",
                    info.ip
                )),
            }
        }
        // PDs: the description's, then the monitor; a PD without a TCB is a mismatch.
        let mut tcb_of_pd: Vec<Option<usize>> = Vec::new();
        for (k, slot) in by_pd.iter().enumerate() {
            let (name, role, image, declared_prio) = match sys.pds.get(k) {
                Some(p) => (
                    p.name.clone(),
                    Role::of(&p.name),
                    Some(p.program_image.clone()),
                    Some(p.priority),
                ),
                None => ("monitor".to_string(), Role::Monitor, None, None),
            };
            let prio = slot.map_or(0, |t| tcbs[t].prio);
            match (slot, declared_prio) {
                (None, Some(_)) => self.m.mismatches.push(format!(
                    "PD `{name}` is declared but no TCB in the CapDL spec runs its program image"
                )),
                (None, None) => self.problem("no TCB runs the monitor's image".into()),
                (Some(t), Some(dp)) => {
                    if dp != prio {
                        self.m.mismatches.push(format!(
                            "PD `{name}`: priority {dp} declared, {prio} in the CapDL spec"
                        ));
                    }
                    let l = self.label(tcbs[*t].obj);
                    if l != format!("tcb_{name}") {
                        let l = l.to_string();
                        self.problem(format!(
                            "TCB `{l}` runs PD `{name}`'s program image (the spec's names disagree)"
                        ));
                    }
                }
                (Some(_), None) => {}
            }
            tcb_of_pd.push(*slot);
            self.m.pds.push(Pd {
                name,
                role,
                priority: prio,
                image,
                key: Key::Unknown,
                key_at: None,
            });
        }
        // Who owns which kernel object (for authority over another PD).
        let mut owner_tcb: BTreeMap<usize, usize> = BTreeMap::new();
        let mut owner_sc: BTreeMap<usize, usize> = BTreeMap::new();
        let mut owner_table: BTreeMap<usize, usize> = BTreeMap::new();
        let mut owner_cnode: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for (pd, t) in tcb_of_pd.iter().enumerate() {
            let Some(t) = *t else { continue };
            let info = &tcbs[t];
            owner_tcb.insert(info.obj, pd);
            if let Some(sc) = info.sc {
                owner_sc.insert(sc, pd);
            }
            for &pt in &info.tables {
                if let Some(prev) = owner_table.insert(pt, pd) {
                    if prev != pd {
                        self.m.authority.push(Authority {
                            holder: pd,
                            over: prev,
                            what: format!("a shared page table (`{}`)", self.label(pt)),
                        });
                    }
                }
            }
            for &cn in &info.cnodes {
                owner_cnode.entry(cn).or_default().push(pd);
            }
        }
        for (cn, pds) in &owner_cnode {
            if let [a, b, ..] = pds.as_slice() {
                self.m.authority.push(Authority {
                    holder: *b,
                    over: *a,
                    what: format!("a shared CNode (`{}`)", self.label(*cn)),
                });
            }
        }
        // 3. Capabilities.
        let mut ipc_index: BTreeMap<usize, usize> = BTreeMap::new();
        let mut cspace_frames: Vec<(usize, String, capdl::FrameCap)> = Vec::new();
        let mut reply_holders: BTreeMap<usize, BTreeSet<usize>> = BTreeMap::new();
        let mut irq_handlers: BTreeMap<usize, BTreeSet<usize>> = BTreeMap::new();
        for (pd, t) in tcb_of_pd.iter().enumerate() {
            let Some(t) = *t else { continue };
            let info = &tcbs[t];
            let mut entries: Vec<(String, Cap)> = info.caps.clone();
            if let Some(f) = info.fault_ep {
                entries.push((TCB_FAULT.into(), Cap::Endpoint(f)));
            }
            for (at, cap) in entries {
                match cap {
                    Cap::Endpoint(c) | Cap::Notification(c) => {
                        let kind = if matches!(cap, Cap::Endpoint(_)) {
                            IpcKind::Endpoint
                        } else {
                            IpcKind::Notification
                        };
                        let i = *ipc_index.entry(c.object).or_insert_with(|| {
                            self.m.ipcs.push(Ipc {
                                label: spec.obj(c.object).name.clone(),
                                kind,
                                server: None,
                                fault: false,
                                holders: Vec::new(),
                            });
                            self.m.ipcs.len() - 1
                        });
                        let in_cspace = at != TCB_FAULT;
                        self.m.ipcs[i].holders.push(Holder {
                            pd,
                            rights: c.rights,
                            badge: c.badge,
                            at,
                            in_cspace,
                        });
                    }
                    Cap::Frame(f) => cspace_frames.push((pd, at, f)),
                    Cap::PageTable(r) => match owner_table.get(&r.object) {
                        Some(&o) if o == pd => {}
                        Some(&o) => self.m.authority.push(Authority {
                            holder: pd,
                            over: o,
                            what: format!("its VSpace ({at})"),
                        }),
                        None => self.problem(format!(
                            "`{}` holds page table `{}` ({at}) that no VSpace uses",
                            self.m.pds[pd].name,
                            spec.obj(r.object).name
                        )),
                    },
                    Cap::Tcb(r) => match owner_tcb.get(&r.object) {
                        Some(&o) if o == pd => {}
                        Some(&o) => self.m.authority.push(Authority {
                            holder: pd,
                            over: o,
                            what: format!("its TCB ({at})"),
                        }),
                        None => self.problem(format!(
                            "`{}` holds TCB `{}` ({at}) of no PD",
                            self.m.pds[pd].name,
                            spec.obj(r.object).name
                        )),
                    },
                    Cap::SchedContext(r) => match owner_sc.get(&r.object) {
                        Some(&o) if o == pd => {}
                        Some(&o) => self.m.authority.push(Authority {
                            holder: pd,
                            over: o,
                            what: format!("its scheduling context ({at})"),
                        }),
                        None => {}
                    },
                    Cap::Reply(r) => {
                        reply_holders.entry(r.object).or_default().insert(pd);
                    }
                    Cap::ArmIrqHandler(r) => {
                        irq_handlers.entry(r.object).or_default().insert(pd);
                    }
                    Cap::CNode(_) => {}
                }
            }
        }
        for (r, pds) in &reply_holders {
            let v: Vec<usize> = pds.iter().copied().collect();
            if let [a, b, ..] = v.as_slice() {
                self.m.authority.push(Authority {
                    holder: *b,
                    over: *a,
                    what: format!("a shared reply object (`{}`)", self.label(*r)),
                });
            }
        }
        // Servers: who receives on each endpoint (holds it unbadged with receive rights) or
        // has each notification bound; fault endpoints: the TCBs' fault handlers.
        let bound: BTreeMap<usize, usize> = tcb_of_pd
            .iter()
            .enumerate()
            .filter_map(|(pd, t)| t.and_then(|t| tcbs[t].bound.map(|n| (n, pd))))
            .collect();
        let faults: BTreeSet<usize> = tcbs
            .iter()
            .filter_map(|t| t.fault_ep.map(|e| e.object))
            .collect();
        for (&obj, &i) in &ipc_index {
            let e = &mut self.m.ipcs[i];
            e.fault = faults.contains(&obj);
            e.server = match e.kind {
                IpcKind::Notification => bound.get(&obj).copied(),
                IpcKind::Endpoint => {
                    let s: BTreeSet<usize> = e
                        .holders
                        .iter()
                        .filter(|h| h.badge == 0 && h.rights.read)
                        .map(|h| h.pd)
                        .collect();
                    if s.len() > 1 {
                        let names: Vec<&str> =
                            s.iter().map(|&p| self.m.pds[p].name.as_str()).collect();
                        self.m.problems.push(format!(
                            "endpoint `{}` is held unbadged with receive rights by {names:?}",
                            e.label
                        ));
                    }
                    s.into_iter().next()
                }
            };
            if let Some(s) = e.server {
                let server = self.m.pds[s].name.clone();
                e.label = match (e.kind, e.fault) {
                    (IpcKind::Endpoint, true) => format!("{server}'s fault endpoint"),
                    (IpcKind::Endpoint, false) => format!("{server}'s endpoint"),
                    (IpcKind::Notification, _) => format!("{server}'s notification"),
                };
                e.label.push_str(&format!(" (`{}`)", spec.obj(obj).name));
            }
        }
        // Bound notifications are held by their TCB (it waits on them).
        for (&n, &pd) in &bound {
            if let std::collections::btree_map::Entry::Vacant(v) = ipc_index.entry(n) {
                self.m.ipcs.push(Ipc {
                    label: format!(
                        "{}'s notification (`{}`)",
                        self.m.pds[pd].name,
                        spec.obj(n).name
                    ),
                    kind: IpcKind::Notification,
                    server: Some(pd),
                    fault: false,
                    holders: Vec::new(),
                });
                v.insert(self.m.ipcs.len() - 1);
            }
        }
        // 4. IRQs.
        let mut irq_objs: BTreeMap<usize, u64> = BTreeMap::new();
        for e in &spec.irqs {
            irq_objs.insert(e.handler, e.irq);
        }
        for &obj in irq_handlers.keys() {
            irq_objs.entry(obj).or_insert(u64::MAX);
        }
        for (obj, irq) in irq_objs {
            let mut targets = BTreeSet::new();
            if let Object::ArmIrq(a) = &spec.obj(obj).object {
                for s in &a.slots {
                    if let Cap::Notification(n) = s.cap {
                        match bound.get(&n.object) {
                            Some(&pd) => {
                                targets.insert(pd);
                            }
                            None => self.problem(format!(
                                "IRQ {irq} signals notification `{}`, bound to no PD",
                                spec.obj(n.object).name
                            )),
                        }
                    }
                }
            } else {
                self.problem(format!(
                    "IRQ {irq}: handler `{}` is not an IRQ",
                    self.label(obj)
                ));
            }
            self.m.irqs.push(Irq {
                irq,
                handlers: irq_handlers.get(&obj).cloned().unwrap_or_default(),
                targets,
            });
        }
        // 5. Memory.
        self.memory(&tcbs, &tcb_of_pd, &cspace_frames);
        // 6. Program images and keys.
        self.keys(&tcbs, &tcb_of_pd);
        self.m
    }

    fn memory(
        &mut self,
        tcbs: &[TcbInfo],
        tcb_of_pd: &[Option<usize>],
        cspace_frames: &[(usize, String, capdl::FrameCap)],
    ) {
        let sys = self.sys;
        let spec = self.spec;
        // Every access to every frame: (frame, pd, vaddr or None, cap).
        let mut access: BTreeMap<usize, Vec<(usize, Option<u64>, capdl::FrameCap)>> =
            BTreeMap::new();
        for (pd, t) in tcb_of_pd.iter().enumerate() {
            let Some(t) = *t else { continue };
            for mp in &tcbs[t].maps {
                access
                    .entry(mp.frame)
                    .or_default()
                    .push((pd, Some(mp.vaddr), mp.cap));
            }
        }
        for (pd, _, f) in cspace_frames {
            access.entry(f.object).or_default().push((*pd, None, *f));
        }
        // Attribute frames: declared regions first, by each declaring PD's map.
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
        enum Class {
            Region(usize),
            Image(usize),
            Stack(usize),
            Ipc(usize),
            Undeclared(BTreeSet<usize>),
        }
        let mut class: BTreeMap<usize, Class> = BTreeMap::new();
        for (pd, p) in sys.pds.iter().enumerate() {
            let Some(t) = tcb_of_pd.get(pd).copied().flatten() else {
                continue;
            };
            let maps = &tcbs[t].maps;
            for mp in &p.maps {
                let Some(ri) = sys.regions.iter().position(|r| r.name == mp.mr) else {
                    continue;
                };
                let r = &sys.regions[ri];
                let end = mp.vaddr.saturating_add(r.size);
                let (read, write, exec) = perms_of(&mp.perms);
                let mut covered = 0u64;
                let mut expect_pa = r.phys_addr;
                let mut bad_rights = false;
                for m in maps.iter().filter(|m| m.vaddr >= mp.vaddr && m.vaddr < end) {
                    covered += m.bytes;
                    let c = m.cap;
                    if c.rights.read != read
                        || c.rights.write != write
                        || c.executable != exec
                        || c.cached != mp.cached
                    {
                        bad_rights = true;
                    }
                    if let (Some(pa), Object::Frame(fr)) = (expect_pa, &spec.obj(m.frame).object) {
                        if fr.paddr != Some(pa) {
                            self.m.mismatches.push(format!(
                                "`{}` maps `{}` at {:#x}: frame `{}` is at physical {}, the description says {pa:#x}",
                                p.name,
                                r.name,
                                m.vaddr,
                                spec.obj(m.frame).name,
                                fr.paddr.map_or("(any)".to_string(), |a| format!("{a:#x}"))
                            ));
                        }
                        expect_pa = Some(pa + m.bytes);
                    }
                    match class.get(&m.frame) {
                        Some(Class::Region(other)) if *other != ri => {
                            self.m.mismatches.push(format!(
                                "frame `{}` is both `{}` and `{}`",
                                spec.obj(m.frame).name,
                                sys.regions[*other].name,
                                r.name
                            ));
                        }
                        _ => {
                            class.insert(m.frame, Class::Region(ri));
                        }
                    }
                }
                if covered != r.size {
                    self.m.mismatches.push(format!(
                        "`{}` declares `{}` ({:#x} bytes) at {:#x}; the CapDL spec maps {covered:#x} bytes there",
                        p.name, r.name, r.size, mp.vaddr
                    ));
                }
                if bad_rights {
                    self.m.mismatches.push(format!(
                        "`{}` maps `{}` at {:#x} with other rights than the declared perms=\"{}\" cached=\"{}\"",
                        p.name, r.name, mp.vaddr, mp.perms, mp.cached
                    ));
                }
            }
        }
        let npds = sys.pds.len();
        for (pd, t) in tcb_of_pd.iter().enumerate() {
            let Some(t) = *t else { continue };
            let info = &tcbs[t];
            let stack = if pd < npds {
                sys.pds[pd].stack_size.unwrap_or(DEFAULT_STACK)
            } else {
                MAX_STACK
            };
            let stack_top = info.ipc_addr.saturating_sub(PAGE);
            let stack_lo = stack_top.saturating_sub(stack);
            for m in &info.maps {
                if class.contains_key(&m.frame) {
                    continue;
                }
                let c = if Some(m.frame) == info.ipc_frame && m.vaddr == info.ipc_addr {
                    Class::Ipc(pd)
                } else if let Some(k) = frame_elf(spec, m.frame) {
                    Class::Image(k)
                } else if m.vaddr >= stack_lo && m.vaddr < stack_top {
                    Class::Stack(pd)
                } else {
                    continue;
                };
                class.insert(m.frame, c);
            }
        }
        for (&f, acc) in &access {
            class.entry(f).or_insert_with(|| {
                let pds: BTreeSet<usize> = acc.iter().map(|a| a.0).collect();
                Class::Undeclared(pds)
            });
        }
        // Group frames into memory nodes.
        let mut groups: BTreeMap<Class, Vec<usize>> = BTreeMap::new();
        for (f, c) in class {
            groups.entry(c).or_default().push(f);
        }
        let tenants = self.tenants.clone();
        for ri in 0..sys.regions.len() {
            groups.entry(Class::Region(ri)).or_default();
        }
        for (c, frames) in groups {
            let (label, kind, tenant) = match &c {
                Class::Region(ri) => {
                    let r = &sys.regions[*ri];
                    (
                        r.name.clone(),
                        if sys.is_device_region(&r.name) {
                            MemKind::Device
                        } else {
                            MemKind::Region
                        },
                        region_tenant(sys, &r.name, &tenants),
                    )
                }
                Class::Image(k) => (
                    format!(
                        "program image {k} ({})",
                        sys.pds
                            .get(*k)
                            .map_or("the monitor's", |p| p.program_image.as_str())
                    ),
                    MemKind::Image(Some(*k)),
                    self.m
                        .pds
                        .get(*k)
                        .and_then(|p| p.role.tenant().map(str::to_string)),
                ),
                Class::Stack(pd) => (
                    format!("{}'s stack", self.m.pds[*pd].name),
                    MemKind::Stack(*pd),
                    self.m.pds[*pd].role.tenant().map(str::to_string),
                ),
                Class::Ipc(pd) => (
                    format!("{}'s IPC buffer", self.m.pds[*pd].name),
                    MemKind::IpcBuffer(*pd),
                    self.m.pds[*pd].role.tenant().map(str::to_string),
                ),
                Class::Undeclared(_) => {
                    ("undeclared frames".to_string(), MemKind::Undeclared, None)
                }
            };
            let mut bytes = 0;
            let mut paddr: Option<u64> = None;
            let mut per_pd: BTreeMap<(usize, bool), MemMap> = BTreeMap::new();
            for &f in &frames {
                let (fb, fpa) = match &spec.obj(f).object {
                    Object::Frame(fr) => (1u64 << fr.size_bits.min(63), fr.paddr),
                    _ => (0, None),
                };
                bytes += fb;
                if let Some(pa) = fpa {
                    paddr = Some(paddr.map_or(pa, |p: u64| p.min(pa)));
                }
                for &(pd, va, cap) in access.get(&f).map(Vec::as_slice).unwrap_or(&[]) {
                    let e = per_pd.entry((pd, va.is_none())).or_insert(MemMap {
                        pd,
                        vaddr: va,
                        read: false,
                        write: false,
                        exec: false,
                        cached: true,
                        bytes: 0,
                        each: BTreeSet::new(),
                    });
                    e.each
                        .insert(perm_str(cap.rights.read, cap.rights.write, cap.executable));
                    e.vaddr = match (e.vaddr, va) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    };
                    e.read |= cap.rights.read;
                    e.write |= cap.rights.write;
                    e.exec |= cap.executable;
                    e.cached &= cap.cached;
                    e.bytes += fb;
                }
            }
            let label = if let (MemKind::Undeclared, Some(&f)) = (&kind, frames.first()) {
                format!(
                    "{} undeclared frame(s) from `{}`",
                    frames.len(),
                    spec.obj(f).name
                )
            } else {
                label
            };
            self.m.mems.push(Mem {
                label,
                kind,
                tenant,
                bytes,
                frames: frames.len(),
                paddr,
                maps: per_pd.into_values().collect(),
            });
        }
    }

    fn keys(&mut self, tcbs: &[TcbInfo], tcb_of_pd: &[Option<usize>]) {
        let Some(elves) = self.elves else { return };
        let spec = self.spec;
        for (pd, elf) in elves.iter().enumerate() {
            let name = self.m.pds[pd].name.clone();
            let elf = match elf {
                Ok(e) => e,
                Err(e) => {
                    self.problem(e.clone());
                    continue;
                }
            };
            let Some(t) = tcb_of_pd.get(pd).copied().flatten() else {
                continue;
            };
            let info = &tcbs[t];
            if elf.entry != info.ip {
                self.problem(format!(
                    "PD `{name}`: its TCB starts at {:#x}, its program image's entry is {:#x} (not the file the description names?)",
                    info.ip, elf.entry
                ));
            }
            // Every image frame must sit where its segment's bytes belong.
            let mut misplaced = 0;
            for m in &info.maps {
                for e in frame_fill(spec, m.frame) {
                    let Some(c) = e.elf() else { continue };
                    if c.elf_id != pd {
                        continue;
                    }
                    let ok = elf.segments.get(c.seg).is_some_and(|s| {
                        m.vaddr + e.range.start == s.vaddr + c.data.start
                            && c.data.end <= s.memsz.max(s.filesz)
                    });
                    if !ok {
                        misplaced += 1;
                    }
                }
            }
            if misplaced > 0 {
                self.problem(format!(
                    "PD `{name}`: {misplaced} image frame(s) do not match {}'s segments",
                    self.m.pds[pd].image.as_deref().unwrap_or("?")
                ));
            }
            let Some(slot) = elf.slot_vaddr else {
                self.m.pds[pd].key = elf.key.clone();
                continue;
            };
            // The frame mapped at the slot, and whose image bytes it holds.
            let at = info
                .maps
                .iter()
                .find(|m| m.vaddr <= slot && slot < m.vaddr + m.bytes);
            let Some(at) = at else {
                self.problem(format!(
                    "PD `{name}`: nothing is mapped at its key slot {slot:#x}"
                ));
                continue;
            };
            let from: BTreeSet<usize> = frame_fill(spec, at.frame)
                .iter()
                .filter_map(|e| e.elf().map(|c| c.elf_id))
                .collect();
            let frame = spec.obj(at.frame).name.clone();
            self.m.pds[pd].key_at = Some(format!("{slot:#x} in frame `{frame}`"));
            if from != BTreeSet::from([pd]) {
                self.problem(format!(
                    "PD `{name}`: the frame at its key slot ({frame}) holds bytes of program image(s) {from:?}, not its own ({pd})"
                ));
                continue;
            }
            self.m.pds[pd].key = elf.key.clone();
        }
    }
}

fn frame_fill(spec: &Spec, f: usize) -> &[capdl::FillEntry] {
    match &spec.obj(f).object {
        Object::Frame(fr) => &fr.init.entries,
        _ => &[],
    }
}

/// The program image a frame's bytes come from (the first ELF entry's).
fn frame_elf(spec: &Spec, f: usize) -> Option<usize> {
    frame_fill(spec, f)
        .iter()
        .find_map(|e| e.elf().map(|c| c.elf_id))
}

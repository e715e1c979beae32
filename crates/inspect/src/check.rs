//! The isolation rules, checked on either view of the capability graph, and the comparison of
//! the two views.
//!
//! # Trusted relays
//! `wire`, `audit` and `psdb` are connected to every tenant by design (wire → ledger →
//! audit/psdb) and are trusted to keep tenants apart inside their code: wire routes each request
//! to its tenant's ledger only, audit learns the tenant from the channel a record arrives on,
//! psdb takes the namespace from the channel. Microkit's monitor is trusted too: it holds every
//! PD's TCB by design (it is part of Microkit's trusted computing base). Every other PD, and
//! every ledger, is *not* trusted to relay: a path from one tenant's ledger to another tenant's
//! ledger or memory through untrusted PDs is a violation, as is any untrusted PD that two
//! tenants' ledgers can both reach.
//!
//! # What "reach" means
//! Two PDs are joined when data can pass between them through a capability: an endpoint or
//! notification one can send on and the other receive on (calls are joined both ways: the
//! reply), memory both can map with at least one writing, or a capability over the other PD
//! (TCB, CSpace, VSpace, scheduling context, reply object). Capability transfer (grant) needs
//! a send edge, so it adds no pair that is not joined already. Reach follows joins from a PD
//! through untrusted PDs only; a trusted relay or a ledger is reached but not gone through.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::elf::Key;
use crate::model::{IpcKind, Mem, MemKind, Model, Role, View};

/// A rule violation (or, with `accepted`, a finding the caller chose to accept).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Finding {
    /// `xml`, `capdl` or `xml/capdl` (a mismatch between the two).
    pub view: &'static str,
    /// Short rule name.
    pub rule: &'static str,
    /// What is wrong, in words.
    pub text: String,
    /// Accepted by an explicit option (printed, not counted).
    pub accepted: bool,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let head = if self.accepted {
            "ACCEPTED"
        } else {
            "VIOLATION"
        };
        write!(f, "{head} [{}] {}: {}", self.view, self.rule, self.text)
    }
}

/// Checking options.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Accept what the Microkit 2.3 tool itself grants and no description can change: the
    /// receive right on every badged endpoint capability it mints (each protected call's
    /// endpoint, each PD's fault endpoint). Accepted findings are printed, never hidden.
    pub accept_microkit_rights: bool,
}

/// The rule name of the Microkit-minted receive rights.
pub const MICROKIT_RIGHTS: &str = "endpoint-rights";

fn names(m: &Model, pds: impl IntoIterator<Item = usize>) -> String {
    let v: Vec<&str> = pds.into_iter().map(|p| m.name(p)).collect();
    v.join(", ")
}

/// Checks every rule on `model`.
pub fn check(model: &Model, opts: Options) -> Vec<Finding> {
    let view = model.view.tag();
    let mut out = Vec::new();
    let mut m = model.clone();
    // Receive rights on endpoints a PD only calls (or faults on) must not be there; the
    // Microkit 2.3 tool mints every badged endpoint capability with all rights, so they are,
    // and with the option they are accepted (and left out of the reach analysis below). One
    // finding per PD and object, naming every slot.
    let mon = model.monitor();
    for e in &mut m.ipcs {
        let Some(server) = e.server else { continue };
        let mut by_pd: BTreeMap<usize, (Vec<String>, bool)> = BTreeMap::new();
        for h in &mut e.holders {
            if h.pd == server || !h.rights.read || Some(h.pd) == mon {
                continue;
            }
            let minted = e.kind == IpcKind::Endpoint && h.badge != 0 && h.rights.write;
            let accepted = opts.accept_microkit_rights && minted;
            if h.in_cspace {
                let entry = by_pd.entry(h.pd).or_insert((Vec::new(), true));
                entry.0.push(format!("{} badge {:#x}", h.at, h.badge));
                entry.1 &= accepted;
            }
            if accepted || !h.in_cspace {
                h.rights.read = false;
            }
        }
        for (pd, (slots, accepted)) in by_pd {
            let what = if e.kind == IpcKind::Endpoint {
                "take the messages sent to it"
            } else {
                "consume its signals"
            };
            out.push(Finding {
                view,
                rule: MICROKIT_RIGHTS,
                text: format!(
                    "{} can receive on {} ({}): it could {what}{}",
                    model.name(pd),
                    e.label,
                    slots.join(", "),
                    if e.kind == IpcKind::Endpoint {
                        "; the Microkit 2.3 tool mints every badged endpoint capability with receive rights"
                    } else {
                        ""
                    }
                ),
                accepted,
            });
        }
    }
    let mut v = |rule: &'static str, text: String| {
        out.push(Finding {
            view,
            rule,
            text,
            accepted: false,
        })
    };
    for p in &m.problems {
        v("structure", p.clone());
    }
    pds_and_images(&m, &mut v);
    keys(&m, &mut v);
    memory(&m, &mut v);
    irqs(&m, &mut v);
    calls(&m, &mut v);
    for a in &m.authority {
        if m.pds.get(a.holder).map(|p| &p.role) != Some(&Role::Monitor) {
            v(
                "authority",
                format!(
                    "{} holds {} of {}: control over another PD",
                    m.name(a.holder),
                    a.what,
                    m.name(a.over)
                ),
            );
        }
    }
    reach(&m, &mut v);
    out.sort();
    out.dedup();
    out
}

fn pds_and_images(m: &Model, v: &mut impl FnMut(&'static str, String)) {
    for p in &m.pds {
        if p.role == Role::Ledger(String::new()) {
            v("tenants", format!("PD `{}` names no tenant", p.name));
        }
        if m.view != View::Description {
            continue;
        }
        if let (Role::Ledger(t), Some(img)) = (&p.role, &p.image) {
            let want = format!("ledger_{t}.elf");
            if *img != want {
                let whose = crate::model::tenant_in(img, &tenant_names(m))
                    .map(|u| format!(" (tenant {u}'s copy, holding {u}'s signing key)"))
                    .unwrap_or_default();
                v(
                    "images",
                    format!("{} loads `{img}`{whose}, not its own copy `{want}`", p.name),
                );
            }
        }
    }
}

fn tenant_names(m: &Model) -> Vec<String> {
    m.pds
        .iter()
        .filter_map(|p| p.role.tenant().map(str::to_string))
        .collect()
}

fn keys(m: &Model, v: &mut impl FnMut(&'static str, String)) {
    let mut by_key: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, p) in m.pds.iter().enumerate() {
        let wants = match &p.role {
            Role::Ledger(t) => Some(t.as_str()),
            Role::Audit => Some("audit"),
            _ => None,
        };
        let at = p
            .key_at
            .as_ref()
            .map(|a| format!(" (slot at {a})"))
            .unwrap_or_default();
        match (&p.key, wants) {
            (Key::Unknown, _) | (Key::NoSlot, None) => {}
            (Key::NoSlot, Some(_)) => v(
                "keys",
                format!("{}'s program image has no key slot", p.name),
            ),
            (Key::Empty, Some(_)) => v(
                "keys",
                format!(
                    "{}'s key slot is empty: no signing key provisioned{at}",
                    p.name
                ),
            ),
            (Key::Bad(e), Some(_)) => v("keys", format!("{}'s key slot: {e}{at}", p.name)),
            (Key::Empty | Key::Bad(_), None) => {}
            (k @ Key::Log { vkey, .. }, wants) => {
                by_key.entry(vkey.as_str()).or_default().push(i);
                match wants {
                    Some(w) if k.log() == Some(w) => {}
                    Some(w) => v(
                        "keys",
                        format!(
                            "{}'s key slot holds the signing key {}{at}, not {w}'s",
                            p.name,
                            k.describe()
                        ),
                    ),
                    None => v(
                        "keys",
                        format!(
                            "{}'s program image holds a signing key: {}{at}",
                            p.name,
                            k.describe()
                        ),
                    ),
                }
            }
        }
    }
    for (_, pds) in by_key {
        if pds.len() > 1 {
            let k = m.pds[pds[0]].key.describe();
            v(
                "keys",
                format!(
                    "the signing key {k} is mapped into {} PDs: {}",
                    pds.len(),
                    names(m, pds.iter().copied())
                ),
            );
        }
    }
}

fn ranges(m: &Model, mem: &Mem) -> String {
    let v: Vec<String> = mem
        .maps
        .iter()
        .map(|mp| match mp.vaddr {
            Some(a) => format!("{} at {a:#x}", m.name(mp.pd)),
            None => format!("{} (frame capability in its CSpace)", m.name(mp.pd)),
        })
        .collect();
    v.join(", ")
}

fn memory(m: &Model, v: &mut impl FnMut(&'static str, String)) {
    let pairs = m.channel_pairs();
    for mem in &m.mems {
        let pds = mem.pds();
        let n = pds.len();
        match &mem.kind {
            MemKind::Device => {
                if n > 1 {
                    v(
                        "devices",
                        format!(
                            "device/DMA region `{}` (physical {}) is mapped into {n} PDs: {}; a device is owned by exactly one PD",
                            mem.label,
                            mem.paddr.map_or("?".into(), |a| format!("{a:#x}")),
                            names(m, pds.iter().copied())
                        ),
                    );
                }
            }
            MemKind::Region => {
                if n > 2 {
                    v(
                        "regions",
                        format!(
                            "region `{}` is mapped into {n} PDs ({}): a shared region is mapped into exactly the two PDs of its channel",
                            mem.label,
                            names(m, pds.iter().copied())
                        ),
                    );
                } else if n == 2 {
                    let (a, b) = (pds.iter().copied().min(), pds.iter().copied().max());
                    if let (Some(a), Some(b)) = (a, b) {
                        if !pairs.contains(&(a, b)) {
                            v(
                                "regions",
                                format!(
                                    "region `{}` is shared by {} and {}, which have no channel",
                                    mem.label,
                                    m.name(a),
                                    m.name(b)
                                ),
                            );
                        }
                    }
                }
            }
            MemKind::Image(owner) => {
                if n > 1 {
                    v(
                        "images",
                        format!(
                            "{} is in {n} PDs: {}; a program image (and the key in it) belongs to one PD",
                            mem.label,
                            names(m, pds.iter().copied())
                        ),
                    );
                }
                if let Some(o) = owner {
                    for &p in pds.iter().filter(|&&p| p != *o) {
                        v(
                            "images",
                            format!(
                                "{} (for {}) is mapped into {}",
                                mem.label,
                                m.name(*o),
                                m.name(p)
                            ),
                        );
                    }
                }
            }
            MemKind::Stack(o) | MemKind::IpcBuffer(o) => {
                for &p in pds.iter().filter(|&&p| p != *o) {
                    v(
                        "memory",
                        format!("{} is mapped into {}", mem.label, m.name(p)),
                    );
                }
            }
            MemKind::Undeclared => {
                if !pds.is_empty() {
                    v(
                        "undeclared",
                        format!(
                            "{} ({:#x} bytes) are mapped into {}: declared nowhere (not a region, a program image, a stack or an IPC buffer)",
                            mem.label,
                            mem.bytes,
                            ranges(m, mem)
                        ),
                    );
                }
            }
        }
        if let Some(u) = &mem.tenant {
            for &p in &pds {
                if let Some(t) = m.pds[p].role.tenant() {
                    if t != u {
                        v(
                            "tenant-memory",
                            format!(
                                "{} (tenant {u}'s) is mapped into {} (tenant {t}'s ledger)",
                                describe_mem(mem),
                                m.name(p)
                            ),
                        );
                    }
                }
            }
        }
    }
    // Distinct memory at overlapping physical addresses, used by different PDs.
    let fixed: Vec<&Mem> = m
        .mems
        .iter()
        .filter(|x| x.paddr.is_some() && x.bytes > 0)
        .collect();
    for (i, a) in fixed.iter().enumerate() {
        for b in &fixed[i + 1..] {
            let (Some(pa), Some(pb)) = (a.paddr, b.paddr) else {
                continue;
            };
            if pa < pb + b.bytes && pb < pa + a.bytes && a.pds() != b.pds() {
                v(
                    "devices",
                    format!(
                        "`{}` ({}) and `{}` ({}) cover the same physical memory ({:#x})",
                        a.label,
                        names(m, a.pds()),
                        b.label,
                        names(m, b.pds()),
                        pa.max(pb)
                    ),
                );
            }
        }
    }
}

fn describe_mem(mem: &Mem) -> String {
    match mem.kind {
        MemKind::Region | MemKind::Device => format!("region `{}`", mem.label),
        _ => mem.label.clone(),
    }
}

fn irqs(m: &Model, v: &mut impl FnMut(&'static str, String)) {
    for q in &m.irqs {
        let owners: BTreeSet<usize> = q.handlers.union(&q.targets).copied().collect();
        let irq = if q.irq == u64::MAX {
            "an IRQ missing from the spec's IRQ list".to_string()
        } else {
            format!("IRQ {}", q.irq)
        };
        if owners.len() > 1 {
            v(
                "irqs",
                format!(
                    "{irq} is owned by {} PDs ({}): an IRQ is owned by exactly one PD",
                    owners.len(),
                    names(m, owners)
                ),
            );
        } else if q.handlers.is_empty() || q.targets.is_empty() {
            v(
                "irqs",
                format!(
                    "{irq}: handled by [{}], signals [{}]: not one owning PD",
                    names(m, q.handlers.iter().copied()),
                    names(m, q.targets.iter().copied())
                ),
            );
        }
    }
}

fn calls(m: &Model, v: &mut impl FnMut(&'static str, String)) {
    let calls = m.calls();
    for &(a, b, _) in &calls {
        let (pa, pb) = (m.pds[a].priority, m.pds[b].priority);
        if pb <= pa {
            v(
                "uphill",
                format!(
                    "protected call {} ({pa}) -> {} ({pb}) does not go strictly uphill",
                    m.name(a),
                    m.name(b)
                ),
            );
        }
    }
    // Cycles: depth-first search for a back edge.
    let mut adj: BTreeMap<usize, BTreeSet<usize>> = BTreeMap::new();
    for &(a, b, _) in &calls {
        adj.entry(a).or_default().insert(b);
    }
    let mut state: BTreeMap<usize, u8> = BTreeMap::new();
    let mut cycles = BTreeSet::new();
    for &start in adj.keys() {
        if state.contains_key(&start) {
            continue;
        }
        let mut path = vec![start];
        let mut iters = vec![adj.get(&start).cloned().unwrap_or_default().into_iter()];
        state.insert(start, 1);
        while let Some(it) = iters.last_mut() {
            match it.next() {
                Some(n) => match state.get(&n) {
                    Some(1) => {
                        if let Some(pos) = path.iter().position(|&p| p == n) {
                            let mut c: Vec<usize> = path[pos..].to_vec();
                            c.push(n);
                            cycles.insert(c);
                        }
                    }
                    Some(_) => {}
                    None => {
                        state.insert(n, 1);
                        path.push(n);
                        iters.push(adj.get(&n).cloned().unwrap_or_default().into_iter());
                    }
                },
                None => {
                    iters.pop();
                    if let Some(p) = path.pop() {
                        state.insert(p, 2);
                    }
                }
            }
        }
    }
    for c in cycles {
        let s: Vec<&str> = c.iter().map(|&p| m.name(p)).collect();
        v(
            "cycle",
            format!("protected calls form a cycle: {}", s.join(" -> ")),
        );
    }
}

/// Joins between PDs: (other PD, how).
fn joins(m: &Model) -> Vec<Vec<(usize, String)>> {
    let mut adj: Vec<BTreeMap<usize, String>> = vec![BTreeMap::new(); m.pds.len()];
    let mut join = |a: usize, b: usize, how: String| {
        if a == b || a >= adj.len() || b >= adj.len() {
            return;
        }
        adj[a].entry(b).or_insert_with(|| how.clone());
        adj[b].entry(a).or_insert(how);
    };
    for e in &m.ipcs {
        let readers: BTreeSet<usize> = e
            .holders
            .iter()
            .filter(|h| h.rights.read)
            .map(|h| h.pd)
            .chain(e.server)
            .collect();
        for w in e.holders.iter().filter(|h| h.rights.write) {
            for &r in &readers {
                let how = if Some(r) == e.server {
                    format!("{} can send to {}", m.name(w.pd), e.label)
                } else {
                    format!(
                        "{} can send on {}, which {} can receive on",
                        m.name(w.pd),
                        e.label,
                        m.name(r)
                    )
                };
                join(w.pd, r, how);
            }
        }
    }
    for mem in &m.mems {
        for a in &mem.maps {
            for b in &mem.maps {
                if a.pd < b.pd && (a.write || b.write) {
                    join(
                        a.pd,
                        b.pd,
                        format!(
                            "{} and {} share {}",
                            m.name(a.pd),
                            m.name(b.pd),
                            describe_mem(mem)
                        ),
                    );
                }
            }
        }
    }
    for a in &m.authority {
        join(
            a.holder,
            a.over,
            format!(
                "{} holds {} of {}",
                m.name(a.holder),
                a.what,
                m.name(a.over)
            ),
        );
    }
    adj.into_iter().map(|x| x.into_iter().collect()).collect()
}

/// What `src` reaches through untrusted PDs: PD -> the chain of joins to it; and the memory
/// the untrusted PDs on the way (not `src` itself) can access -> the chain to the PD that can.
fn reach_from(
    m: &Model,
    adj: &[Vec<(usize, String)>],
    src: usize,
) -> (BTreeMap<usize, Vec<String>>, BTreeMap<usize, Vec<String>>) {
    let mut seen: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    let mut mems: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    seen.insert(src, Vec::new());
    let mut q = VecDeque::from([src]);
    while let Some(p) = q.pop_front() {
        if p != src && m.pds[p].role != Role::Other {
            continue;
        }
        let path = seen.get(&p).cloned().unwrap_or_default();
        if p != src {
            for (i, mem) in m.mems.iter().enumerate() {
                if mem.maps.iter().any(|mp| mp.pd == p) {
                    mems.entry(i).or_insert_with(|| path.clone());
                }
            }
        }
        for (n, how) in &adj[p] {
            if !seen.contains_key(n) {
                let mut np = path.clone();
                np.push(how.clone());
                seen.insert(*n, np);
                q.push_back(*n);
            }
        }
    }
    seen.remove(&src);
    (seen, mems)
}

fn reach(m: &Model, v: &mut impl FnMut(&'static str, String)) {
    let adj = joins(m);
    let mut relays: BTreeMap<usize, BTreeSet<String>> = BTreeMap::new();
    for (s, p) in m.pds.iter().enumerate() {
        match &p.role {
            Role::Ledger(t) => {
                let (pds, mems) = reach_from(m, &adj, s);
                for (w, path) in &pds {
                    match &m.pds[*w].role {
                        Role::Ledger(u) if u != t => v(
                            "isolation",
                            format!(
                                "tenant {t}'s ledger {} reaches tenant {u}'s ledger {}: {}",
                                p.name,
                                m.name(*w),
                                path.join("; ")
                            ),
                        ),
                        Role::Other => {
                            relays.entry(*w).or_default().insert(t.clone());
                        }
                        _ => {}
                    }
                }
                for (i, path) in mems {
                    if let Some(u) = &m.mems[i].tenant {
                        if u != t {
                            v(
                                "isolation",
                                format!(
                                    "tenant {t}'s ledger {} reaches tenant {u}'s {}: {}",
                                    p.name,
                                    describe_mem(&m.mems[i]),
                                    path.join("; ")
                                ),
                            );
                        }
                    }
                }
            }
            Role::Wire => {
                let (pds, mems) = reach_from(m, &adj, s);
                for (w, path) in &pds {
                    let why = match m.pds[*w].role {
                        Role::Psdb => {
                            "every psdb namespace is one of psdb's channels; the wire reaches none"
                        }
                        // Audit is the access authority the wire asks (docs/access.md).
                        _ => continue,
                    };
                    v(
                        "wire",
                        format!(
                            "{} reaches {} ({why}): {}",
                            p.name,
                            m.name(*w),
                            path.join("; ")
                        ),
                    );
                }
                // Memory the wire (or an untrusted PD it reaches) can access.
                let mut direct: BTreeMap<usize, Vec<String>> = BTreeMap::new();
                for (i, mem) in m.mems.iter().enumerate() {
                    if mem.maps.iter().any(|mp| mp.pd == s) {
                        direct.insert(i, vec![format!("{} maps it", p.name)]);
                    }
                }
                for (i, path) in direct.into_iter().chain(mems) {
                    let mem = &m.mems[i];
                    let psdb = mem.maps.iter().any(|mp| m.pds[mp.pd].role == Role::Psdb);
                    let key = matches!(mem.kind, MemKind::Image(Some(o)) if o != s);
                    if psdb {
                        v(
                            "wire",
                            format!(
                                "{} reaches psdb's {} (a psdb namespace or the disk): {}",
                                p.name,
                                describe_mem(mem),
                                path.join("; ")
                            ),
                        );
                    }
                    if key {
                        v(
                            "wire",
                            format!(
                                "{} reaches {} (another PD's program image and the signing key in it): {}",
                                p.name,
                                mem.label,
                                path.join("; ")
                            ),
                        );
                    }
                }
            }
            _ => {}
        }
    }
    for (r, ts) in relays {
        if ts.len() > 1 {
            let t: Vec<&str> = ts.iter().map(String::as_str).collect();
            v(
                "relay",
                format!(
                    "{} could relay between tenants {}: only wire, audit and psdb (and Microkit's monitor) are trusted relays",
                    m.name(r),
                    t.join(" and ")
                ),
            );
        }
    }
}

/// Where the CapDL spec and the description disagree (the spec granting more than declared,
/// or less).
pub fn compare(desc: &Model, capdl: &Model) -> Vec<Finding> {
    let mut out: Vec<Finding> = Vec::new();
    let mut v = |text: String| {
        out.push(Finding {
            view: "xml/capdl",
            rule: "mismatch",
            text,
            accepted: false,
        })
    };
    for s in &capdl.mismatches {
        v(s.clone());
    }
    type Rel = BTreeSet<(String, String)>;
    let rel = |m: &Model, r: Vec<(usize, usize, usize)>| -> Rel {
        r.into_iter()
            .map(|(a, b, _)| (m.name(a).to_string(), m.name(b).to_string()))
            .collect()
    };
    for (what, d, c) in [
        (
            "a protected call",
            rel(desc, desc.calls()),
            rel(capdl, capdl.calls()),
        ),
        (
            "a notification",
            rel(desc, desc.signals()),
            rel(capdl, capdl.signals()),
        ),
    ] {
        for (a, b) in c.difference(&d) {
            v(format!(
                "the CapDL spec grants {a} {what} to {b}, which the description does not declare"
            ));
        }
        for (a, b) in d.difference(&c) {
            v(format!(
                "the description declares {what} from {a} to {b}, absent from the CapDL spec"
            ));
        }
    }
    let irqs = |m: &Model| -> BTreeSet<(u64, String)> {
        m.irqs
            .iter()
            .flat_map(|q| {
                q.handlers
                    .union(&q.targets)
                    .map(|&p| (q.irq, m.name(p).to_string()))
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let (di, ci) = (irqs(desc), irqs(capdl));
    for (irq, pd) in ci.difference(&di) {
        v(format!(
            "the CapDL spec gives {pd} IRQ {irq}, which the description does not"
        ));
    }
    for (irq, pd) in di.difference(&ci) {
        v(format!(
            "the description gives {pd} IRQ {irq}, absent from the CapDL spec"
        ));
    }
    for dm in desc
        .mems
        .iter()
        .filter(|x| matches!(x.kind, MemKind::Region | MemKind::Device))
    {
        let Some(cm) = capdl
            .mems
            .iter()
            .find(|x| x.label == dm.label && matches!(x.kind, MemKind::Region | MemKind::Device))
        else {
            continue;
        };
        let set = |m: &Model, x: &Mem| -> BTreeSet<(String, Option<u64>)> {
            x.maps
                .iter()
                .map(|mp| (m.name(mp.pd).to_string(), mp.vaddr))
                .collect()
        };
        let (d, c) = (set(desc, dm), set(capdl, cm));
        for (pd, va) in c.difference(&d) {
            let at = va.map_or("through a frame capability".into(), |a| {
                format!("at {a:#x}")
            });
            v(format!(
                "the CapDL spec lets {pd} map region `{}` {at}, which the description does not declare",
                dm.label
            ));
        }
        for (pd, va) in d.difference(&c) {
            let at = va.map_or(String::new(), |a| format!(" at {a:#x}"));
            v(format!(
                "the description maps region `{}` into {pd}{at}, absent from the CapDL spec",
                dm.label
            ));
        }
    }
    out.sort();
    out.dedup();
    out
}

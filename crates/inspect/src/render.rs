//! The capability graph for people: a table, and Graphviz DOT with each tenant in its own
//! cluster.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::model::{IpcKind, Mem, MemKind, Model, Role};

fn rights(r: &crate::capdl::Rights) -> String {
    let mut s = String::new();
    for (b, c) in [
        (r.read, 'R'),
        (r.write, 'W'),
        (r.grant, 'G'),
        (r.grant_reply, 'g'),
    ] {
        if b {
            s.push(c);
        }
    }
    s
}

fn size(b: u64) -> String {
    if b >= 1 << 20 && b.is_multiple_of(1 << 20) {
        format!("{} MiB", b >> 20)
    } else if b >= 1 << 10 && b.is_multiple_of(1 << 10) {
        format!("{} KiB", b >> 10)
    } else {
        format!("{b} B")
    }
}

fn mem_kind(mem: &Mem) -> &'static str {
    match mem.kind {
        MemKind::Region => "region",
        MemKind::Device => "device/DMA",
        MemKind::Image(_) => "image",
        MemKind::Stack(_) => "stack",
        MemKind::IpcBuffer(_) => "IPC buffer",
        MemKind::Undeclared => "UNDECLARED",
    }
}

/// The capability graph as a table: per PD, what it can call, signal and receive on (with
/// priorities), the memory it can map (rights, physical address for devices), its IRQs, its
/// program image and key; then what it holds over other PDs.
pub fn table(m: &Model) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<18} {:>4}  {:<28} {:<22} signing key",
        "PD", "prio", "role", "program image"
    );
    for p in &m.pds {
        let _ = writeln!(
            s,
            "{:<18} {:>4}  {:<28} {:<22} {}",
            p.name,
            p.priority,
            p.role.describe(),
            p.image.as_deref().unwrap_or("(Microkit's)"),
            p.key.describe()
        );
    }
    for (i, p) in m.pds.iter().enumerate() {
        let _ = writeln!(s, "\n{} (priority {}):", p.name, p.priority);
        for e in &m.ipcs {
            for h in e.holders.iter().filter(|h| h.pd == i) {
                let verb = match (e.kind, e.server == Some(i), e.fault) {
                    (IpcKind::Endpoint, true, _) => "receives on".to_string(),
                    (IpcKind::Notification, true, _) => "waits on".to_string(),
                    (IpcKind::Endpoint, false, true) => "faults to".to_string(),
                    (kind, false, false) => {
                        let prio = e
                            .server
                            .map_or(String::new(), |sv| format!(" ({})", m.pds[sv].priority));
                        let v = if kind == IpcKind::Endpoint {
                            "calls"
                        } else {
                            "signals"
                        };
                        format!("{v} {}{prio}", e.server.map_or("?", |sv| m.name(sv)))
                    }
                    (IpcKind::Notification, false, true) => "signals".to_string(),
                };
                let _ = writeln!(
                    s,
                    "  {verb:<30} {} [{}, badge {:#x}, rights {}]",
                    e.label,
                    h.at,
                    h.badge,
                    rights(&h.rights)
                );
            }
        }
        for q in &m.irqs {
            if q.handlers.contains(&i) || q.targets.contains(&i) {
                let _ = writeln!(
                    s,
                    "  {:<30} {}{}",
                    format!("owns IRQ {}", q.irq),
                    if q.handlers.contains(&i) {
                        "handler"
                    } else {
                        ""
                    },
                    if q.targets.contains(&i) {
                        " + notification"
                    } else {
                        ""
                    }
                );
            }
        }
        for mem in &m.mems {
            for mp in mem.maps.iter().filter(|mp| mp.pd == i) {
                let at = mp
                    .vaddr
                    .map_or("(cap)".to_string(), |a| format!("{a:#012x}"));
                let pa = mem.paddr.map_or(String::new(), |a| format!(" phys {a:#x}"));
                let frames = if mem.frames > 0 {
                    format!(" {} frame(s)", mem.frames)
                } else {
                    String::new()
                };
                let _ = writeln!(
                    s,
                    "  maps {:<25} {at} {:>8} {:<3}{}{}  {}{frames}{pa}",
                    mem.label,
                    size(mp.bytes.max(if m.view == crate::model::View::Description {
                        mem.bytes
                    } else {
                        0
                    })),
                    mp.perms(),
                    if mp.cached { "" } else { " uncached" },
                    mem.tenant
                        .as_ref()
                        .map_or(String::new(), |t| format!(" [{t}]")),
                    mem_kind(mem)
                );
            }
        }
        let held: Vec<String> = m
            .authority
            .iter()
            .filter(|a| a.holder == i)
            .map(|a| format!("{} of {}", a.what, m.name(a.over)))
            .collect();
        if !held.is_empty() {
            let _ = writeln!(s, "  holds {}", held.join(", "));
        }
    }
    s
}

/// A DOT string; `\n` in `s` stays a DOT line break.
fn q(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\\\""))
}

/// Graphviz DOT: one cluster per tenant (its ledger and its memory), one for the trusted
/// relays; protected calls as arrows with priorities, memory as boxes joined to each PD that
/// can map it, devices as 3D boxes. Red: what a violation names.
pub fn dot(m: &Model, flagged: &[String]) -> String {
    let hot = |label: &str| flagged.iter().any(|f| f.contains(label));
    let mut s = String::new();
    let _ = writeln!(s, "digraph capabilities {{");
    let _ = writeln!(
        s,
        "  rankdir=LR; compound=true; fontname=\"Helvetica\"; node [fontname=\"Helvetica\"]; edge [fontname=\"Helvetica\", fontsize=9];"
    );
    let mut clusters: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let cluster_of = |p: usize| match &m.pds[p].role {
        Role::Ledger(t) => format!("tenant {t}"),
        r if r.trusted_relay() && *r != Role::Monitor => "trusted relays".into(),
        _ => String::new(),
    };
    for (i, p) in m.pds.iter().enumerate() {
        let node = format!(
            "  {} [shape=ellipse, style=filled, fillcolor={}, color={}, label={}];",
            q(&p.name),
            if p.role == Role::Monitor {
                "lightgrey"
            } else if p.role.tenant().is_some() {
                "lightblue"
            } else {
                "khaki"
            },
            if hot(&p.name) { "red" } else { "black" },
            q(&format!(
                "{}\\nprio {}\\n{}",
                p.name,
                p.priority,
                p.key.describe()
            ))
        );
        clusters.entry(cluster_of(i)).or_default().push(node);
    }
    for (i, mem) in m.mems.iter().enumerate() {
        if matches!(mem.kind, MemKind::Stack(_) | MemKind::IpcBuffer(_)) {
            continue;
        }
        let shape = match mem.kind {
            MemKind::Device => "box3d",
            MemKind::Image(_) => "note",
            _ => "box",
        };
        let color = if hot(&mem.label) || mem.kind == MemKind::Undeclared {
            "red"
        } else {
            "black"
        };
        let node = format!(
            "  {} [shape={shape}, color={color}, fontsize=10, label={}];",
            q(&format!("mem{i}")),
            q(&format!(
                "{}\\n{}{}",
                mem.label,
                size(mem.bytes),
                mem.paddr.map_or(String::new(), |a| format!(" @ {a:#x}"))
            ))
        );
        // A tenant's memory in its cluster; other memory with its PDs' cluster if they share one.
        let key = match &mem.tenant {
            Some(t) => format!("tenant {t}"),
            None => {
                let keys: std::collections::BTreeSet<String> =
                    mem.maps.iter().map(|mp| cluster_of(mp.pd)).collect();
                match keys.len() {
                    1 => keys.into_iter().next().unwrap_or_default(),
                    _ => String::new(),
                }
            }
        };
        clusters.entry(key).or_default().push(node);
    }
    for (n, (name, nodes)) in clusters.iter().enumerate() {
        if name.is_empty() {
            for node in nodes {
                let _ = writeln!(s, "{node}");
            }
            continue;
        }
        let _ = writeln!(s, "  subgraph cluster_{n} {{");
        let _ = writeln!(
            s,
            "    label={}; style=\"rounded,filled\"; fillcolor={}; color=grey40;",
            q(name),
            if name == "trusted relays" {
                "lightyellow"
            } else {
                "aliceblue"
            }
        );
        for node in nodes {
            let _ = writeln!(s, "  {node}");
        }
        let _ = writeln!(s, "  }}");
    }
    for (a, b, _) in m.calls() {
        let (na, nb) = (m.name(a), m.name(b));
        let red = flagged.iter().any(|f| f.contains(na) && f.contains(nb));
        let _ = writeln!(
            s,
            "  {} -> {} [label={}, color={}];",
            q(na),
            q(nb),
            q(&format!(
                "ppcall {}→{}",
                m.pds[a].priority, m.pds[b].priority
            )),
            if red { "red" } else { "black" }
        );
    }
    for (a, b, _) in m.signals() {
        let _ = writeln!(
            s,
            "  {} -> {} [style=dotted, label=\"notify\"];",
            q(m.name(a)),
            q(m.name(b))
        );
    }
    for q_ in &m.irqs {
        let irq = format!("IRQ {}", q_.irq);
        let _ = writeln!(s, "  {} [shape=diamond, fontsize=10];", q(&irq));
        for &t in q_.handlers.union(&q_.targets) {
            let _ = writeln!(s, "  {} -> {} [style=bold];", q(&irq), q(m.name(t)));
        }
    }
    for (i, mem) in m.mems.iter().enumerate() {
        if matches!(mem.kind, MemKind::Stack(_) | MemKind::IpcBuffer(_)) {
            continue;
        }
        for mp in &mem.maps {
            let _ = writeln!(
                s,
                "  {} -> {} [dir=none, style=dashed, label={}];",
                q(m.name(mp.pd)),
                q(&format!("mem{i}")),
                q(&mp.perms())
            );
        }
    }
    let _ = writeln!(s, "}}");
    s
}

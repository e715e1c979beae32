//! Generates the topology constants of this crate (`$OUT_DIR/topology.rs`, included by
//! `src/lib.rs`) from the system's one description, `system.toml`, by the rules of
//! `sysdesc::topology`: the tenant table, PD names and priorities, every PD's channel ids, the
//! `setvar_vaddr` symbols and sizes of its shared regions. Nothing here is written by hand, so
//! a tenant added to `system.toml` reaches every PD's constants; the roles (which PD is the
//! wire, a ledger, audit, psdb) are this crate's, and a description that lacks one, or whose
//! ledgers differ in shape, fails the build with the reason. Any other PD finds its channels by
//! name in the generic table of every channel end (`$OUT_DIR/ends.rs`, `src/topology.rs`), and
//! psdb serves every PD with a channel to it (`psdb::CLIENTS`, its namespace the PD's short name).

use std::fmt::Write as _;
use std::path::PathBuf;

use sysdesc::topology::{ChannelFact, PdFacts, Topology};

fn main() {
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    // TOTEBOX_SYSTEM names another description (`make four-tenant-test` builds a system with a
    // fourth tenant that way, in its own target directory); by default the repository's.
    println!("cargo:rerun-if-env-changed=TOTEBOX_SYSTEM");
    let desc = match std::env::var_os("TOTEBOX_SYSTEM") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => dir.join("../../system.toml"),
    };
    println!("cargo:rerun-if-changed={}", desc.display());
    let text = std::fs::read_to_string(&desc)
        .unwrap_or_else(|e| fail(&format!("{}: {e}", desc.display())));
    let topo = Topology::from_toml(&text).unwrap_or_else(|e| fail(&e));
    let code = generate(&topo).unwrap_or_else(|e| fail(&e));
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default());
    for (name, text) in [("topology.rs", code), ("ends.rs", ends(&topo))] {
        let out = out_dir.join(name);
        std::fs::write(&out, text).unwrap_or_else(|e| fail(&format!("{}: {e}", out.display())));
    }
}

fn fail(msg: &str) -> ! {
    eprintln!("interface/build.rs: system.toml: {msg}");
    std::process::exit(1)
}

fn pd<'a>(t: &'a Topology, name: &str) -> Result<&'a PdFacts, String> {
    t.pd(name).ok_or_else(|| format!("no PD `{name}`"))
}

fn to<'a>(p: &'a PdFacts, peer: &str) -> Result<&'a ChannelFact, String> {
    p.channels
        .iter()
        .find(|c| c.peer == peer)
        .ok_or_else(|| format!("PD `{}` has no channel to `{peer}`", p.name))
}

fn list<T: std::fmt::Display>(v: impl IntoIterator<Item = T>) -> String {
    v.into_iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn generate(t: &Topology) -> Result<String, String> {
    let n = t.tenants.len();
    let ledger = |i: usize| format!("ledger_{}", t.tenants[i]);
    let ledgers: Vec<&PdFacts> = (0..n)
        .map(|i| pd(t, &ledger(i)))
        .collect::<Result<_, _>>()?;
    let (wire, audit, psdb) = (pd(t, "wire")?, pd(t, "audit")?, pd(t, "psdb")?);
    // One ledger ELF serves every tenant: every ledger must see the same ids and symbols.
    let shape = |p: &PdFacts| -> Vec<(u8, String, bool, String, u64)> {
        p.channels
            .iter()
            .map(|c| {
                let peer = if c.peer.starts_with("ledger_") {
                    "ledger".into()
                } else {
                    c.peer.clone()
                };
                (c.id, peer, c.calls, c.symbol.clone(), c.size)
            })
            .collect()
    };
    if ledgers.iter().any(|l| shape(l) != shape(ledgers[0])) {
        return Err("the ledger PDs differ in their channels (one ledger.elf serves all)".into());
    }
    let l0 = ledgers[0];
    let (lw, la, lp) = (to(l0, "wire")?, to(l0, "audit")?, to(l0, "psdb")?);
    let wl: Vec<&ChannelFact> = (0..n)
        .map(|i| to(wire, &ledger(i)))
        .collect::<Result<_, _>>()?;
    let al: Vec<&ChannelFact> = (0..n)
        .map(|i| to(audit, &ledger(i)))
        .collect::<Result<_, _>>()?;
    // psdb's callers, in its channel-id order: every PD with a channel to psdb, its namespace
    // its short name (a ledger's is its tenant). The ledgers come first, in tenant order, then
    // audit (the ids the tests and psdb's quota shares rely on), then any other PD.
    let pc: Vec<&ChannelFact> = psdb.channels.iter().filter(|c| !c.calls).collect();
    let roles_first =
        pc.len() > n && (0..n).all(|i| pc[i].peer == ledger(i)) && pc[n].peer == audit.name;
    if !roles_first {
        return Err("psdb's callers must be the ledgers (in tenant order), then audit, then any other PD: declare other PDs' channels to psdb after audit's".into());
    }
    for (k, c) in pc.iter().enumerate() {
        if pc[..k].iter().any(|d| d.peer_short == c.peer_short) {
            return Err(format!(
                "two PDs with the psdb namespace `{}` (a PD's namespace is its short name)",
                c.peer_short
            ));
        }
        // psdb::names::check_namespace's rule (a psdb test applies that function to CLIENTS).
        let b = c.peer_short.as_bytes();
        let ok = (1..=32).contains(&b.len())
            && b[0].is_ascii_alphanumeric()
            && b.iter()
                .all(|&x| x.is_ascii_alphanumeric() || b".-_".contains(&x));
        if !ok {
            return Err(format!("psdb namespace `{}`: 1-32 of [A-Za-z0-9._-], starting with a letter or digit (a PD's namespace is its short name)", c.peer_short));
        }
    }
    let ap = to(audit, "psdb")?;
    let (wa, aw) = (to(wire, "audit")?, to(audit, "wire")?);
    let console = wire
        .irqs
        .iter()
        .find(|(_, _, dev)| dev == "console")
        .ok_or("the wire takes no console IRQ")?;

    let q = |s: &str| format!("{s:?}");
    let mut o = String::new();
    let _ = writeln!(
        o,
        "// GENERATED by crates/interface/build.rs from system.toml: do not edit."
    );
    let _ = writeln!(o, "/// The tenants of this box, in channel order (system.toml `tenants`). A ledger PD is named `ledger_<tenant>`.");
    let _ = writeln!(
        o,
        "pub const TENANTS: [&str; {n}] = [{}];",
        list(t.tenants.iter().map(|s| q(s)))
    );
    let _ = writeln!(
        o,
        "/// How many tenants.\npub const TENANT_COUNT: usize = {n};"
    );
    let _ = writeln!(
        o,
        "/// PD names and priorities (system.toml `[[pd]]`).\npub mod pd {{"
    );
    let _ = writeln!(
        o,
        "    /// The client-facing PD.\n    pub const WIRE: &str = \"wire\";"
    );
    let _ = writeln!(
        o,
        "    /// The audit PD.\n    pub const AUDIT: &str = \"audit\";"
    );
    let _ = writeln!(
        o,
        "    /// The storage PD.\n    pub const PSDB: &str = \"psdb\";"
    );
    let _ = writeln!(
        o,
        "    /// Priorities: ppcalls only go uphill.\n    pub const WIRE_PRIORITY: u8 = {};",
        wire.priority
    );
    let _ = writeln!(o, "    /// The ledger PDs, in [`crate::TENANTS`] order. Distinct only so that their start-up (and\n    /// its console lines) happens one at a time; each is between wire's and audit's.");
    let _ = writeln!(
        o,
        "    pub const LEDGER_PRIORITIES: [u8; {n}] = [{}];",
        list(ledgers.iter().map(|l| l.priority))
    );
    let _ = writeln!(
        o,
        "    /// The audit PD.\n    pub const AUDIT_PRIORITY: u8 = {};",
        audit.priority
    );
    let _ = writeln!(
        o,
        "    /// The psdb PD.\n    pub const PSDB_PRIORITY: u8 = {};\n}}",
        psdb.priority
    );
    let _ = writeln!(
        o,
        "/// Sizes of the shared regions (system.toml `[[channel]] region`).\npub mod size {{"
    );
    let _ = writeln!(o, "    /// wire <-> ledger_<t>: one request or response payload.\n    pub const WIRE_LEDGER: usize = {:#x};", lw.size);
    let _ = writeln!(o, "    /// ledger_<t> <-> audit: one audit record.\n    pub const LEDGER_AUDIT: usize = {:#x};", la.size);
    let _ = writeln!(o, "    /// ledger_<t> <-> psdb: the path area, then one whole object.\n    pub const LEDGER_PSDB: usize = {:#x};", lp.size);
    let _ = writeln!(o, "    /// wire <-> audit: one Check call, or one archive-wide request and its response.\n    pub const WIRE_AUDIT: usize = {:#x};", wa.size);
    let _ = writeln!(
        o,
        "    /// audit <-> psdb.\n    pub const AUDIT_PSDB: usize = {:#x};\n}}",
        ap.size
    );
    let _ = writeln!(
        o,
        "/// The wire PD's ends.\npub mod wire {{\n    use microkit::Channel;"
    );
    let _ = writeln!(o, "    /// The virtio-console interrupt (IRQ {}).\n    pub const CONSOLE_IRQ: Channel = Channel::new({});", console.1, console.0);
    let _ = writeln!(
        o,
        "    /// Its ppcall channel to each tenant's ledger, in [`TENANTS`](crate::TENANTS) order."
    );
    let _ = writeln!(
        o,
        "    pub const LEDGERS: [Channel; {n}] = [{}];",
        list(wl.iter().map(|c| format!("Channel::new({})", c.id)))
    );
    let _ = writeln!(o, "    /// `setvar_vaddr` of the region shared with each ledger (size [`crate::size::WIRE_LEDGER`]).");
    let _ = writeln!(
        o,
        "    pub const LEDGER_REGIONS: [&str; {n}] = [{}];",
        list(wl.iter().map(|c| q(&c.symbol)))
    );
    let _ = writeln!(o, "    /// Calls audit (Check, and the archive-wide requests).\n    pub const AUDIT: Channel = Channel::new({});", wa.id);
    let _ = writeln!(o, "    /// `setvar_vaddr` of the region shared with audit (size [`crate::size::WIRE_AUDIT`]).\n    pub const AUDIT_REGION: &str = {};\n}}", q(&wa.symbol));
    let _ = writeln!(o, "/// A ledger PD's ends (the same in every ledger: one ELF).\npub mod ledger {{\n    use microkit::Channel;");
    let _ = writeln!(
        o,
        "    /// Called by the wire.\n    pub const WIRE: Channel = Channel::new({});",
        lw.id
    );
    let _ = writeln!(
        o,
        "    /// Calls audit.\n    pub const AUDIT: Channel = Channel::new({});",
        la.id
    );
    let _ = writeln!(
        o,
        "    /// Calls psdb.\n    pub const PSDB: Channel = Channel::new({});",
        lp.id
    );
    let _ = writeln!(o, "    /// `setvar_vaddr` of the region shared with the wire.\n    pub const WIRE_REGION: &str = {};", q(&lw.symbol));
    let _ = writeln!(o, "    /// `setvar_vaddr` of the region shared with audit.\n    pub const AUDIT_REGION: &str = {};", q(&la.symbol));
    let _ = writeln!(o, "    /// `setvar_vaddr` of the region shared with psdb.\n    pub const PSDB_REGION: &str = {};\n}}", q(&lp.symbol));
    let _ = writeln!(
        o,
        "/// The audit PD's ends.\npub mod audit {{\n    use microkit::Channel;"
    );
    let _ = writeln!(o, "    /// Called by each tenant's ledger, in [`TENANTS`](crate::TENANTS) order: the channel a\n    /// record arrives on is the tenant it is about.");
    let _ = writeln!(
        o,
        "    pub const LEDGERS: [Channel; {n}] = [{}];",
        list(al.iter().map(|c| format!("Channel::new({})", c.id)))
    );
    let _ = writeln!(
        o,
        "    /// Calls psdb.\n    pub const PSDB: Channel = Channel::new({});",
        ap.id
    );
    let _ = writeln!(o, "    /// Called by the wire (Check, and the archive-wide requests).\n    pub const WIRE: Channel = Channel::new({});", aw.id);
    let _ = writeln!(o, "    /// `setvar_vaddr` of the region shared with the wire.\n    pub const WIRE_REGION: &str = {};", q(&aw.symbol));
    let _ = writeln!(
        o,
        "    /// `setvar_vaddr` of the region shared with each ledger."
    );
    let _ = writeln!(
        o,
        "    pub const LEDGER_REGIONS: [&str; {n}] = [{}];",
        list(al.iter().map(|c| q(&c.symbol)))
    );
    let _ = writeln!(o, "    /// `setvar_vaddr` of the region shared with psdb.\n    pub const PSDB_REGION: &str = {};\n}}", q(&ap.symbol));
    let _ = writeln!(
        o,
        "/// The psdb PD's ends.\npub mod psdb {{\n    use microkit::Channel;"
    );
    let _ = writeln!(o, "    /// Every caller: its channel, the namespace that channel stands for, the `setvar_vaddr` of\n    /// the region shared with it and that region's size. The namespace of a request is the\n    /// channel it arrived on; nothing in a message names one.");
    let clients: Vec<String> = pc
        .iter()
        .map(|c| {
            format!(
                "(Channel::new({}), {}, {}, {:#x})",
                c.id,
                q(&c.peer_short),
                q(&c.symbol),
                c.size
            )
        })
        .collect();
    let _ = writeln!(
        o,
        "    pub const CLIENTS: [(Channel, &str, &str, usize); {}] = [{}];\n}}",
        pc.len(),
        clients.join(", ")
    );
    // Region declarations, expanded in the PD crate that invokes the macro (the symbols must be
    // in that PD's ELF, for the microkit tool to patch).
    let decls = |name: &str, doc: &str, chans: &[(&ChannelFact, String)], min: &str| {
        let mut m = format!("/// {doc}\n#[macro_export]\nmacro_rules! {name} {{\n    () => {{\n        ::microkit::memory_region! {{\n");
        for (i, (c, what)) in chans.iter().enumerate() {
            let size = c.symbol.replace("_vaddr", "_size");
            let _ = writeln!(m, "            /// Shared with {what} (channel {}).\n            pub static REGION_{i}: ReadWrite(vaddr = {}, size = {}, min_len = {min});", c.id, q(&c.symbol), q(&size));
        }
        let _ = writeln!(m, "        }}\n        /// In channel order.\n        pub static REGIONS: [&::microkit::region::RegionDecl<::microkit::region::ReadWrite>; {}] = [{}];\n    }};\n}}", chans.len(), list((0..chans.len()).map(|i| format!("&REGION_{i}"))));
        m
    };
    o.push_str(&decls("wire_regions", "Declares the wire's regions shared with each ledger, `REGIONS` in [`TENANTS`] order (size [`size::WIRE_LEDGER`]).", &named(&wl), "$crate::size::WIRE_LEDGER"));
    o.push_str(&decls("audit_ledger_regions", "Declares audit's regions shared with each ledger, `REGIONS` in [`TENANTS`] order (size [`size::LEDGER_AUDIT`]).", &named(&al), "$crate::size::LEDGER_AUDIT"));
    let mut m = decls("psdb_regions", "Declares psdb's regions shared with each client, `REGIONS` in [`psdb::CLIENTS`] order (each at least its size there).", &named(&pc), "MIN");
    for i in 0..pc.len() {
        m = m.replacen(
            "min_len = MIN",
            &format!("min_len = $crate::psdb::CLIENTS[{i}].3"),
            1,
        );
    }
    o.push_str(&m);
    // Single regions by name, for the PDs that have one per peer.
    let single = |name: &str, doc: &str, items: &[(&str, &ChannelFact, &str, &str)]| {
        let mut m = format!("/// {doc}\n#[macro_export]\nmacro_rules! {name} {{\n    () => {{\n        ::microkit::memory_region! {{\n");
        for (stat, c, min, what) in items {
            let size = c.symbol.replace("_vaddr", "_size");
            let _ = writeln!(m, "            /// Shared with {what} (channel {}).\n            pub static {stat}: ReadWrite(vaddr = {}, size = {}, min_len = {min});", c.id, q(&c.symbol), q(&size));
        }
        m.push_str("        }\n    };\n}\n");
        m
    };
    o.push_str(&single(
        "ledger_regions",
        "Declares a ledger's regions: `WIRE` (one request, then its response), `AUDIT` (one read record), `PSDB` (one object).",
        &[
            ("WIRE", lw, "$crate::size::WIRE_LEDGER", "the wire"),
            ("AUDIT", la, "$crate::size::LEDGER_AUDIT", "audit"),
            ("PSDB", lp, "$crate::size::LEDGER_PSDB", "psdb"),
        ],
    ));
    o.push_str(&single(
        "audit_psdb_region",
        "Declares audit's regions shared with psdb, `PSDB`, and with the wire, `WIRE`.",
        &[
            ("PSDB", ap, "$crate::size::AUDIT_PSDB", "psdb"),
            ("WIRE", aw, "$crate::size::WIRE_AUDIT", "the wire"),
        ],
    ));
    o.push_str(&single(
        "wire_audit_region",
        "Declares the wire's region shared with audit, `AUDIT`.",
        &[("AUDIT", wa, "$crate::size::WIRE_AUDIT", "audit")],
    ));
    Ok(o)
}

/// `src/topology.rs`'s table: every PD's channel ends, PD by PD, each PD's in id order.
fn ends(t: &Topology) -> String {
    let mut o = String::from(
        "// GENERATED by crates/interface/build.rs from system.toml: do not edit.\n&[\n",
    );
    for p in &t.pds {
        for c in &p.channels {
            let _ = writeln!(
                o,
                "    End {{ pd: {:?}, peer: {:?}, channel: Channel::new({}), calls: {}, region: {:?}, symbol: {:?}, size: {:#x} }},",
                p.name, c.peer, c.id, c.calls, c.region, c.symbol, c.size
            );
        }
    }
    o.push(']');
    o
}

fn named<'a>(v: &[&'a ChannelFact]) -> Vec<(&'a ChannelFact, String)> {
    v.iter().map(|c| (*c, c.peer.clone())).collect()
}

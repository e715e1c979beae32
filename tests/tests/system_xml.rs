//! system.xml agrees with the Rust code (crates/interface), and follows the isolation rules:
//! every shared region mapped into exactly the two PDs of one channel, every ppcall strictly
//! uphill, no path between two tenants' ledgers or between wire and psdb.

// Test helpers outside #[test] functions: a panic is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;

use interface::{audit, ledger, pd, psdb, psdb_call, size, wire, TENANTS};
use sysdesc::System;

fn system() -> System {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../system.xml");
    let text = std::fs::read_to_string(path).unwrap();
    System::parse(&text).unwrap()
}

/// The region `pd` maps with `setvar_vaddr = symbol`: (region name, size).
fn mapped(sys: &System, pd: &str, symbol: &str) -> (String, u64) {
    let p = sys.pd(pd).unwrap_or_else(|| panic!("no PD {pd}"));
    let m = p
        .maps
        .iter()
        .find(|m| m.setvar_vaddr.as_deref() == Some(symbol))
        .unwrap_or_else(|| panic!("{pd} maps nothing with setvar_vaddr={symbol}"));
    (m.mr.clone(), sys.region(&m.mr).unwrap().size)
}

/// Asserts a channel `from`(id a) -> `to`(id b) exists, ppcall from `from` only.
fn assert_ppcall(sys: &System, from: &str, a: usize, to: &str, b: usize) {
    let (me, peer) = sys
        .peer(from, a as u8)
        .unwrap_or_else(|| panic!("{from} has no channel {a}"));
    assert_eq!(
        (peer.pd.as_str(), usize::from(peer.id)),
        (to, b),
        "{from}:{a}"
    );
    assert!(me.pp, "{from}:{a} may not ppcall");
    assert!(!peer.pp, "{to}:{b} may ppcall back (downhill)");
    assert!(
        !me.notify && !peer.notify,
        "{from}<->{to} carries notifications"
    );
}

#[test]
fn structural_rules_hold() {
    let sys = system();
    assert_eq!(sys.problems(), Vec::<String>::new());
}

#[test]
fn pds_and_priorities_match_the_code() {
    let sys = system();
    let mut want: BTreeSet<String> = [pd::WIRE, pd::AUDIT, pd::PSDB]
        .iter()
        .map(|s| s.to_string())
        .collect();
    want.extend(TENANTS.iter().map(|t| format!("ledger_{t}")));
    let got: BTreeSet<String> = sys.pds.iter().map(|p| p.name.clone()).collect();
    // Every role is there; any other PD is one a description adds (docs/adding-a-pd.md), which
    // must not pass for a ledger.
    assert!(
        want.is_subset(&got),
        "missing PDs: {:?}",
        want.difference(&got)
    );
    for other in got.difference(&want) {
        assert!(!other.starts_with("ledger_"), "{other} names no tenant");
    }

    let w = sys.pd(pd::WIRE).unwrap();
    assert_eq!((w.priority, w.passive), (pd::WIRE_PRIORITY, false));
    assert_eq!(w.irqs.len(), 1);
    assert_eq!(usize::from(w.irqs[0].id), wire::CONSOLE_IRQ.index());
    assert_eq!(w.irqs[0].irq, 48, "virtio-mmio bus 0 is SPI 16 = GIC 48");
    for p in &sys.pds {
        if let Some(t) = p.name.strip_prefix("ledger_") {
            // The tenant identity a ledger PD derives from its name.
            let i = interface::tenant_of_pd_name(&p.name).unwrap();
            assert_eq!(TENANTS[i], t);
            // Its own copy of ledger.elf: the copy holding this tenant's key and no other's.
            assert_eq!(p.program_image, format!("ledger_{t}.elf"));
            assert_eq!((p.priority, p.passive), (pd::LEDGER_PRIORITIES[i], true));
            assert!(pd::WIRE_PRIORITY < p.priority && p.priority < pd::AUDIT_PRIORITY);
            assert!(p.irqs.is_empty());
        }
    }
    let a = sys.pd(pd::AUDIT).unwrap();
    assert_eq!((a.priority, a.passive), (pd::AUDIT_PRIORITY, true));
    let s = sys.pd(pd::PSDB).unwrap();
    assert_eq!((s.priority, s.passive), (pd::PSDB_PRIORITY, true));
    assert!(interface::tenant_of_pd_name("ledger_nobody").is_none());
    assert!(interface::tenant_of_pd_name("corporate").is_none());
}

#[test]
fn channels_match_the_code_and_nothing_else_exists() {
    let sys = system();
    for (t, tenant) in TENANTS.iter().enumerate() {
        let l = format!("ledger_{tenant}");
        assert_ppcall(
            &sys,
            pd::WIRE,
            wire::LEDGERS[t].index(),
            &l,
            ledger::WIRE.index(),
        );
        assert_ppcall(
            &sys,
            &l,
            ledger::AUDIT.index(),
            pd::AUDIT,
            audit::LEDGERS[t].index(),
        );
        let (ch, ns, _, _) = psdb::CLIENTS[t];
        assert_eq!(ns, *tenant, "psdb namespace of tenant channel");
        assert_ppcall(&sys, &l, ledger::PSDB.index(), pd::PSDB, ch.index());
    }
    let (ch, ns, _, _) = psdb::CLIENTS[TENANTS.len()];
    assert_eq!(ns, interface::AUDIT_NAMESPACE);
    assert_ppcall(&sys, pd::AUDIT, audit::PSDB.index(), pd::PSDB, ch.index());
    // Exactly those channels between the roles: per tenant wire->ledger, ledger->audit,
    // ledger->psdb; audit->psdb, wire->audit (the access checks, docs/access.md). Any other channel has a PD a description adds at one end.
    let roles: BTreeSet<String> = [pd::WIRE, pd::AUDIT, pd::PSDB]
        .iter()
        .map(|s| s.to_string())
        .chain(TENANTS.iter().map(|t| format!("ledger_{t}")))
        .collect();
    let between_roles = sys
        .channels
        .iter()
        .filter(|c| roles.contains(&c.a.pd) && roles.contains(&c.b.pd))
        .count();
    assert_eq!(between_roles, 3 * TENANTS.len() + 2);
    assert_ppcall(
        &sys,
        pd::WIRE,
        wire::AUDIT.index(),
        pd::AUDIT,
        audit::WIRE.index(),
    );
    for c in &sys.channels {
        let pair = [c.a.pd.as_str(), c.b.pd.as_str()];
        let ledgers = pair.iter().filter(|p| p.starts_with("ledger_")).count();
        assert!(ledgers < 2, "channel between two ledgers: {pair:?}");
        assert!(
            !(pair.contains(&pd::WIRE) && pair.contains(&pd::PSDB)),
            "wire <-> psdb channel"
        );
    }
    // psdb's namespace table is one-to-one.
    let ns: BTreeSet<&str> = psdb::CLIENTS.iter().map(|c| c.1).collect();
    assert_eq!(ns.len(), psdb::CLIENTS.len());
}

#[test]
fn regions_match_the_code_and_are_shared_by_channel_peers_only() {
    let sys = system();
    for (t, tenant) in TENANTS.iter().enumerate() {
        let l = format!("ledger_{tenant}");
        let (r, sz) = mapped(&sys, pd::WIRE, wire::LEDGER_REGIONS[t]);
        assert_eq!(sz as usize, size::WIRE_LEDGER);
        assert_eq!(mapped(&sys, &l, ledger::WIRE_REGION).0, r);

        let (r, sz) = mapped(&sys, &l, ledger::AUDIT_REGION);
        assert_eq!(sz as usize, size::LEDGER_AUDIT);
        assert_eq!(mapped(&sys, pd::AUDIT, audit::LEDGER_REGIONS[t]).0, r);

        let (r, sz) = mapped(&sys, &l, ledger::PSDB_REGION);
        assert_eq!(sz as usize, size::LEDGER_PSDB);
        let (_, _, sym, psz) = psdb::CLIENTS[t];
        assert_eq!(psz, size::LEDGER_PSDB);
        assert_eq!(mapped(&sys, pd::PSDB, sym).0, r);
    }
    let (r, sz) = mapped(&sys, pd::AUDIT, audit::PSDB_REGION);
    assert_eq!(sz as usize, size::AUDIT_PSDB);
    assert_eq!(mapped(&sys, pd::PSDB, psdb::CLIENTS[TENANTS.len()].2).0, r);
    let (r, sz) = mapped(&sys, pd::WIRE, wire::AUDIT_REGION);
    assert_eq!(sz as usize, size::WIRE_AUDIT);
    const { assert!(size::WIRE_AUDIT >= protocol::MAX_PAYLOAD) };
    assert_eq!(mapped(&sys, pd::AUDIT, audit::WIRE_REGION).0, r);

    // Every region is either private (heap, device, DMA) or shared by exactly one channel's
    // two ends (checked by `problems`); every map tells the PD its address and size.
    for (mr, pds) in sys.mappers() {
        let region = sys.region(mr).unwrap();
        if mr.starts_with("heap_") || sys.is_device_region(mr) {
            assert_eq!(pds.len(), 1, "{mr} is private but mapped into {pds:?}");
        } else {
            assert_eq!(pds.len(), 2, "{mr} is mapped into {pds:?}");
        }
        assert_eq!(region.size % 0x1000, 0, "{mr} is not whole pages");
    }
    for p in &sys.pds {
        for m in &p.maps {
            assert!(
                m.setvar_vaddr.is_some() && m.setvar_size.is_some(),
                "{}: {}",
                p.name,
                m.mr
            );
        }
        assert_eq!(
            mapped(&sys, &p.name, "heap_vaddr").0,
            format!("heap_{}", p.name.trim_start_matches("ledger_"))
        );
    }
    // Devices: the console in wire only, the disk in psdb only, DMA at fixed addresses.
    assert_eq!(
        sys.region("console_mmio").unwrap().phys_addr,
        Some(0x0a00_0000)
    );
    assert_eq!(
        sys.region("disk_mmio").unwrap().phys_addr,
        Some(0x0a00_1000)
    );
    assert_eq!(mapped(&sys, pd::WIRE, "mmio_vaddr").0, "console_mmio");
    assert_eq!(mapped(&sys, pd::PSDB, "mmio_vaddr").0, "disk_mmio");
    assert_eq!(mapped(&sys, pd::WIRE, "dma_vaddr").0, "console_dma");
    assert_eq!(mapped(&sys, pd::PSDB, "dma_vaddr").0, "disk_dma");
}

// The regions hold their largest content (checked at compile time).
const _: () = {
    assert!(size::WIRE_LEDGER == protocol::MAX_PAYLOAD);
    // One export chunk per call (larger objects move in pieces), and a whole tile or journal
    // record in one call.
    assert!(size::LEDGER_PSDB - psdb_call::DATA >= protocol::MAX_CHUNK);
    assert!(size::AUDIT_PSDB - psdb_call::DATA >= tlog::tile::TILE_WIDTH as usize * 32);
    assert!(size::AUDIT_PSDB - psdb_call::DATA >= psdb_call::JOURNAL_RECORD);
    assert!(psdb_call::MAX_PATH <= psdb_call::DATA);
    assert!(size::LEDGER_AUDIT >= interface::audit_call::MAX_RECORD);
};

#[test]
fn committed_system_xml_is_what_system_toml_generates() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let desc = std::fs::read_to_string(format!("{dir}/system.toml")).unwrap();
    let topo = sysdesc::topology::Topology::from_toml(&desc).unwrap();
    let committed = std::fs::read_to_string(format!("{dir}/system.xml")).unwrap();
    assert!(
        committed == topo.to_xml(),
        "system.xml is not what system.toml generates: run `make system.xml`"
    );
    assert_eq!(topo.tenants, TENANTS, "the tenants the Rust code serves");
}

/// Every other board's system.<board>.xml is what system.toml generates for it, and differs
/// from the default board's only in devices: the PDs, channels and shared regions the code
/// relies on are the same (the description's board rules, checked here on the real files).
#[test]
fn every_boards_system_xml_is_generated_and_differs_only_in_devices() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let text = std::fs::read_to_string(format!("{dir}/system.toml")).unwrap();
    let desc = sysdesc::topology::Description::parse(&text).unwrap();
    assert_eq!(desc.default_board(), Some("qemu_virt_aarch64"));
    assert!(
        desc.boards.iter().any(|b| b == "zcu102"),
        "{:?}",
        desc.boards
    );
    let default = system();
    for board in &desc.boards[1..] {
        let topo = sysdesc::topology::Topology::expand_for(&desc, board).unwrap();
        let path = format!("{dir}/system.{board}.xml");
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == topo.to_xml(),
            "{path} is not what system.toml generates for {board}: run `make system.xml`"
        );
        let sys = System::parse(&committed).unwrap();
        assert!(sys.problems().is_empty(), "{board}: {:?}", sys.problems());
        assert_eq!(sys.channels, default.channels, "{board}: channels");
        let shared = |s: &System| {
            s.regions
                .iter()
                .filter(|r| !s.is_device_region(&r.name))
                .cloned()
                .collect::<Vec<_>>()
        };
        assert_eq!(
            shared(&sys),
            shared(&default),
            "{board}: shared regions and heaps"
        );
        for (a, b) in sys.pds.iter().zip(&default.pds) {
            assert_eq!(
                (&a.name, a.priority, a.passive),
                (&b.name, b.priority, b.passive)
            );
            let ids = |p: &sysdesc::Pd| p.irqs.iter().map(|i| i.id).collect::<Vec<_>>();
            assert_eq!(ids(a), ids(b), "{board}: {} IRQ channel ids", a.name);
        }
    }
}

/// psdb's manifest limit holds the largest batch a ledger writes: one group commit of
/// `MAX_GROUP_ENTRIES` empty entries from an empty log, every object of it one manifest line
/// of at most 178 bytes (`#o <size>\n`, 64 hex digits, two spaces, a tar name of at most 99
/// bytes, `\n`), with the log starting anywhere (one more partial object per level).
#[test]
fn psdb_manifest_limit_holds_a_ledgers_largest_group() {
    let n = ledger_pd::MAX_GROUP_ENTRIES as u64;
    let w = tlog::tile::TILE_WIDTH;
    let mut objects = n.div_ceil(w) + 1; // entry bundles, full and partial
    let mut level = n;
    while level > 1 {
        objects += level.div_ceil(w) + 1; // hash tiles of this level, full and partial
        level = level.div_ceil(w);
    }
    objects += 2; // the checkpoint and its checksum member
    assert!(objects > 4_000, "{objects}");
    assert!(objects * 178 <= psdb_pd::MAX_MANIFEST, "{objects} objects");
}

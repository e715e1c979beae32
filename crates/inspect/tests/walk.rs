//! The graph walk on a small hand-written CapDL spec (tests/data/small.json, for small.xml):
//! what it derives from the CSpaces and VSpaces, and that each kind of excess authority planted
//! in the spec is found and named.

// A panic is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use inspect::capdl::Spec;
use inspect::model::{MemKind, Model, Role};
use inspect::{inspect, Options};
use serde_json::{json, Value};

const XML: &str = include_str!("data/small.xml");
const JSON: &str = include_str!("data/small.json");

fn spec() -> Value {
    serde_json::from_str(JSON).unwrap()
}

fn model(v: &Value) -> Model {
    let sys = sysdesc::System::parse(XML).unwrap();
    let spec = Spec::parse(v.to_string().as_bytes()).unwrap();
    Model::from_capdl(&sys, &spec, None)
}

/// Every finding's text, one a line (`VIOLATION [view] rule: text`).
fn findings(v: &Value, opts: Options) -> String {
    let r = inspect(XML, Some(v.to_string().as_bytes()), None, opts).unwrap();
    r.findings
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

fn id(v: &Value, name: &str) -> usize {
    v["objects"]
        .as_array()
        .unwrap()
        .iter()
        .position(|o| o["name"] == name)
        .unwrap_or_else(|| panic!("no object {name}"))
}

/// Adds a slot to a CNode or page table.
fn put(v: &mut Value, table: &str, slot: u64, cap: Value) {
    let i = id(v, table);
    let obj = &mut v["objects"][i]["object"];
    let kind = obj.as_object().unwrap().keys().next().unwrap().clone();
    obj[&kind]["slots"]
        .as_array_mut()
        .unwrap()
        .push(json!({"slot": slot, "cap": cap}));
}

fn frame_cap(object: usize, write: bool, exec: bool) -> Value {
    json!({"Frame": {"object": object, "rights": {"read": true, "write": write, "grant": false, "grant_reply": false}, "cached": true, "executable": exec}})
}

fn ep_cap(object: usize, badge: u64, read: bool) -> Value {
    json!({"Endpoint": {"object": object, "badge": badge, "rights": {"read": read, "write": true, "grant": true, "grant_reply": false}}})
}

#[test]
fn the_walk_derives_pds_calls_memory_and_irqs_from_capabilities() {
    let v = spec();
    let m = model(&v);
    assert_eq!(m.problems, Vec::<String>::new());
    assert_eq!(m.mismatches, Vec::<String>::new());
    let names: Vec<&str> = m.pds.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["wire", "ledger_a", "ledger_b", "monitor"]);
    assert_eq!(m.pds[2].role, Role::Ledger("b".into()));
    assert_eq!(m.pds[3].role, Role::Monitor);
    let prios: Vec<u8> = m.pds.iter().map(|p| p.priority).collect();
    assert_eq!(prios, [100, 150, 151, 255]);
    // Calls: from the endpoint capabilities and who receives on each.
    let calls: Vec<(usize, usize)> = m.calls().iter().map(|c| (c.0, c.1)).collect();
    assert_eq!(calls, [(0, 1), (0, 2)]);
    // Memory: virtual addresses from the page-table indices, frames to regions by the
    // declaring PD's map, the rest to images, stacks and IPC buffers.
    let mem = |label: &str| m.mems.iter().find(|x| x.label == label).unwrap();
    let wa = mem("wire_a");
    let at: Vec<(usize, Option<u64>, String)> =
        wa.maps.iter().map(|x| (x.pd, x.vaddr, x.perms())).collect();
    assert_eq!(
        at,
        [
            (0, Some(0x4000_0000), "rw".to_string()),
            (1, Some(0x4000_0000), "rw".to_string())
        ]
    );
    assert_eq!(wa.tenant.as_deref(), Some("a"));
    assert_eq!(mem("wire_b").maps[0].vaddr, Some(0x4000_1000));
    let dev = mem("dev");
    assert_eq!(dev.kind, MemKind::Device);
    assert_eq!(dev.paddr, Some(0x0a00_0000));
    assert!(!dev.maps[0].cached);
    assert_eq!(mem("wire's stack").maps[0].vaddr, Some(0xff_ffff_d000));
    assert_eq!(
        mem("ledger_b's IPC buffer").maps[0].vaddr,
        Some(0xff_ffff_f000)
    );
    let img = m
        .mems
        .iter()
        .find(|x| x.kind == MemKind::Image(Some(2)))
        .unwrap();
    assert_eq!(
        (img.maps.len(), img.maps[0].pd, img.maps[0].perms().as_str()),
        (1, 2, "rx")
    );
    // The IRQ: its handler capability and the notification it signals, both wire's.
    assert_eq!(m.irqs.len(), 1);
    assert_eq!(m.irqs[0].irq, 48);
    assert_eq!(m.irqs[0].handlers, [0].into());
    assert_eq!(m.irqs[0].targets, [0].into());
    // Only the monitor holds other PDs' TCBs.
    assert!(m.authority.iter().all(|a| a.holder == 3));
    assert_eq!(
        m.authority
            .iter()
            .filter(|a| a.what.contains("TCB"))
            .count(),
        3
    );
    // And the whole spec passes.
    assert_eq!(findings(&v, Options::default()), "");
}

#[test]
fn names_are_labels_only() {
    // Swap two TCBs' names: the PDs are still told apart by the image at their entry point,
    // and the disagreement is reported.
    let mut v = spec();
    let (a, b) = (id(&v, "tcb_ledger_a"), id(&v, "tcb_ledger_b"));
    v["objects"][a]["name"] = json!("tcb_ledger_b");
    v["objects"][b]["name"] = json!("tcb_ledger_a");
    let m = model(&v);
    assert_eq!(m.pds[1].priority, 150);
    let f = findings(&v, Options::default());
    assert!(
        f.contains(
            "TCB `tcb_ledger_b` runs PD `ledger_a`'s program image (the spec's names disagree)"
        ),
        "{f}"
    );
}

#[test]
fn another_tenants_frame_in_a_ledgers_page_table_is_found() {
    let mut v = spec();
    let wire_b = id(&v, "frame_mr_wire_b_000000000");
    put(&mut v, "pt_ledger_a_1g", 1, frame_cap(wire_b, false, false));
    let f = findings(&v, Options::default());
    for want in [
        "VIOLATION [capdl] tenant-memory: region `wire_b` (tenant b's) is mapped into ledger_a (tenant a's ledger)",
        "VIOLATION [capdl] regions: region `wire_b` is mapped into 3 PDs (wire, ledger_a, ledger_b)",
        "VIOLATION [capdl] isolation: tenant a's ledger ledger_a reaches tenant b's ledger ledger_b: ledger_a and ledger_b share region `wire_b`",
        "VIOLATION [xml/capdl] mismatch: the CapDL spec lets ledger_a map region `wire_b` at 0x40001000, which the description does not declare",
    ] {
        assert!(f.contains(want), "missing {want:?} in\n{f}");
    }
}

#[test]
fn a_frame_capability_in_a_cspace_counts_as_access() {
    let mut v = spec();
    let wire_b = id(&v, "frame_mr_wire_b_000000000");
    put(
        &mut v,
        "cnode_ledger_a",
        100,
        frame_cap(wire_b, true, false),
    );
    let f = findings(&v, Options::default());
    assert!(
        f.contains("region `wire_b` (tenant b's) is mapped into ledger_a"),
        "{f}"
    );
    assert!(
        f.contains("lets ledger_a map region `wire_b` through a frame capability"),
        "{f}"
    );
}

#[test]
fn an_endpoint_capability_between_tenants_is_found() {
    let mut v = spec();
    let ep_b = id(&v, "ep_ledger_b");
    put(
        &mut v,
        "cnode_ledger_a",
        80,
        ep_cap(ep_b, 1 << 63 | 5, false),
    );
    let f = findings(&v, Options::default());
    for want in [
        "VIOLATION [capdl] isolation: tenant a's ledger ledger_a reaches tenant b's ledger ledger_b: ledger_a can send to ledger_b's endpoint (`ep_ledger_b`)",
        "VIOLATION [xml/capdl] mismatch: the CapDL spec grants ledger_a a protected call to ledger_b, which the description does not declare",
    ] {
        assert!(f.contains(want), "missing {want:?} in\n{f}");
    }
    // And back: a downhill call and a cycle.
    let ep_a = id(&v, "ep_ledger_a");
    put(
        &mut v,
        "cnode_ledger_b",
        80,
        ep_cap(ep_a, 1 << 63 | 5, false),
    );
    let f = findings(&v, Options::default());
    assert!(
        f.contains("protected call ledger_b (151) -> ledger_a (150) does not go strictly uphill"),
        "{f}"
    );
    assert!(
        f.contains("protected calls form a cycle: ledger_a -> ledger_b -> ledger_a"),
        "{f}"
    );
}

#[test]
fn receive_rights_on_a_called_endpoint_are_found_and_only_accepted_when_asked() {
    // What the Microkit 2.3 tool does: the fault endpoint capabilities carry receive rights.
    let mut v = spec();
    let fault = id(&v, "ep_fault_monitor");
    for (cnode, badge) in [("cnode_ledger_a", 2), ("cnode_ledger_b", 3)] {
        let i = id(&v, cnode);
        let slots = v["objects"][i]["object"]["CNode"]["slots"]
            .as_array_mut()
            .unwrap();
        slots.retain(|s| s["slot"] != 2);
        slots.push(json!({"slot": 2, "cap": ep_cap(fault, badge, true)}));
    }
    let f = findings(&v, Options::default());
    for want in [
        "VIOLATION [capdl] endpoint-rights: ledger_a can receive on monitor's fault endpoint (`ep_fault_monitor`) (slot 2 badge 0x2): it could take the messages sent to it",
        "VIOLATION [capdl] isolation: tenant a's ledger ledger_a reaches tenant b's ledger ledger_b: ledger_a can send on monitor's fault endpoint (`ep_fault_monitor`), which ledger_b can receive on",
    ] {
        assert!(f.contains(want), "missing {want:?} in\n{f}");
    }
    let f = findings(
        &v,
        Options {
            accept_microkit_rights: true,
        },
    );
    assert!(!f.contains("VIOLATION"), "{f}");
    assert!(
        f.contains(
            "ACCEPTED [capdl] endpoint-rights: ledger_b can receive on monitor's fault endpoint"
        ),
        "{f}"
    );
    // An unbadged receive capability is never what the tool mints: not accepted.
    let ep_b = id(&v, "ep_ledger_b");
    put(&mut v, "cnode_ledger_a", 81, ep_cap(ep_b, 0, true));
    let f = findings(
        &v,
        Options {
            accept_microkit_rights: true,
        },
    );
    assert!(f.contains("endpoint `ep_ledger_b` is held unbadged with receive rights by [\"ledger_a\", \"ledger_b\"]"), "{f}");
}

#[test]
fn authority_over_another_pd_is_found() {
    let mut v = spec();
    let tcb_b = id(&v, "tcb_ledger_b");
    put(
        &mut v,
        "cnode_ledger_a",
        90,
        json!({"Tcb": {"object": tcb_b}}),
    );
    let pud_b = id(&v, "pud_ledger_b");
    put(
        &mut v,
        "cnode_wire",
        91,
        json!({"PageTable": {"object": pud_b}}),
    );
    let f = findings(&v, Options::default());
    for want in [
        "VIOLATION [capdl] authority: ledger_a holds its TCB (slot 90) of ledger_b: control over another PD",
        "VIOLATION [capdl] authority: wire holds its VSpace (slot 91) of ledger_b: control over another PD",
        "VIOLATION [capdl] isolation: tenant a's ledger ledger_a reaches tenant b's ledger ledger_b: ledger_a holds its TCB (slot 90) of ledger_b",
    ] {
        assert!(f.contains(want), "missing {want:?} in\n{f}");
    }
}

#[test]
fn devices_irqs_and_undeclared_frames_are_found() {
    let mut v = spec();
    // The device page also in ledger_b, at an undeclared address.
    let dev = id(&v, "frame_mr_dev_000000000");
    put(&mut v, "pt_ledger_b_1g", 5, frame_cap(dev, true, false));
    // wire's IRQ handler also in ledger_a.
    let irq = id(&v, "irq_48_wire");
    put(
        &mut v,
        "cnode_ledger_a",
        138,
        json!({"ArmIrqHandler": {"object": irq}}),
    );
    // A frame nobody declares, in ledger_a, writable and executable.
    let n = v["objects"].as_array().unwrap().len();
    v["objects"].as_array_mut().unwrap().push(json!({"name": "stray", "object": {"Frame": {"size_bits": 12, "paddr": null, "init": {"entries": []}}}}));
    put(&mut v, "pt_ledger_a_1g", 7, frame_cap(n, true, true));
    let f = findings(&v, Options::default());
    for want in [
        "VIOLATION [capdl] devices: device/DMA region `dev` (physical 0xa000000) is mapped into 2 PDs: wire, ledger_b; a device is owned by exactly one PD",
        "VIOLATION [capdl] irqs: IRQ 48 is owned by 2 PDs (wire, ledger_a): an IRQ is owned by exactly one PD",
        "VIOLATION [capdl] undeclared: 1 undeclared frame(s) from `stray` (0x1000 bytes) are mapped into ledger_a at 0x40007000",
        "VIOLATION [capdl] structure: frame `stray` is mapped writable and executable at 0x40007000",
        "VIOLATION [xml/capdl] mismatch: the CapDL spec gives ledger_a IRQ 48, which the description does not",
    ] {
        assert!(f.contains(want), "missing {want:?} in\n{f}");
    }
}

#[test]
fn what_the_inspector_cannot_interpret_is_refused() {
    let mut v = spec();
    put(
        &mut v,
        "cnode_ledger_a",
        99,
        json!({"Untyped": {"object": 0}}),
    );
    let e = Spec::parse(v.to_string().as_bytes()).unwrap_err();
    assert!(e.contains("unknown variant `Untyped`"), "{e}");
    let mut v = spec();
    put(
        &mut v,
        "cnode_ledger_a",
        99,
        json!({"Tcb": {"object": 100_000}}),
    );
    let e = Spec::parse(v.to_string().as_bytes()).unwrap_err();
    assert!(e.contains("names object 100000; the spec has 59"), "{e}");
    assert!(Spec::parse(b"{}").is_err());
}

#[test]
fn a_missing_or_resized_mapping_is_a_mismatch() {
    let mut v = spec();
    let i = id(&v, "pt_ledger_a_1g");
    v["objects"][i]["object"]["PageTable"]["slots"] = json!([]);
    let f = findings(&v, Options::default());
    assert!(
        f.contains("`ledger_a` declares `wire_a` (0x1000 bytes) at 0x40000000; the CapDL spec maps 0x0 bytes there"),
        "{f}"
    );
    assert!(
        f.contains("the description maps region `wire_a` into ledger_a at 0x40000000, absent from the CapDL spec"),
        "{f}"
    );
    // Read-only where the description says rw.
    let mut v = spec();
    let i = id(&v, "pt_ledger_a_1g");
    v["objects"][i]["object"]["PageTable"]["slots"][0]["cap"]["Frame"]["rights"]["write"] =
        json!(false);
    let f = findings(&v, Options::default());
    assert!(
        f.contains("`ledger_a` maps `wire_a` at 0x40000000 with other rights than the declared perms=\"rw\""),
        "{f}"
    );
}

#[test]
fn the_table_and_dot_show_the_graph() {
    let r = inspect(XML, Some(JSON.as_bytes()), None, Options::default()).unwrap();
    let t = r.table();
    assert!(t.contains("calls ledger_b (151)"), "{t}");
    assert!(t.contains("owns IRQ 48"), "{t}");
    assert!(t.contains("maps dev"), "{t}");
    let d = r.dot();
    assert!(d.starts_with("digraph capabilities {"), "{d}");
    assert!(d.contains("label=\"tenant a\""), "{d}");
    assert!(d.contains("label=\"tenant b\""), "{d}");
    assert!(d.contains("label=\"trusted relays\""), "{d}");
    assert!(d.contains("\"wire\" -> \"ledger_b\""), "{d}");
}

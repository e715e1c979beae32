//! The description-level checks on the real system.xml (no violation) and on each deliberately
//! broken copy (rejected, for the right reason). No SDK needed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{assert_found, system_xml, view_lines, BROKEN};
use inspect::{inspect, Options};

fn findings(xml: &str) -> Vec<String> {
    inspect(xml, None, None, Options::default())
        .unwrap()
        .findings
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn the_real_description_follows_every_rule() {
    let f = findings(&system_xml());
    assert_eq!(f, Vec::<String>::new());
}

#[test]
fn each_broken_copy_is_rejected_for_the_right_reason() {
    for b in BROKEN {
        let xml = (b.edit)(&system_xml());
        let f = findings(&xml);
        assert!(
            f.iter().any(|l| l.starts_with("VIOLATION")),
            "{}: not rejected",
            b.name
        );
        assert_found(&view_lines(&f, "xml"), b.xml, b.name);
        println!("{} ({}):\n  {}", b.name, b.what, f.join("\n  "));
    }
}

#[test]
fn the_description_view_tells_the_tenants_apart() {
    let r = inspect(&system_xml(), None, None, Options::default()).unwrap();
    let ledgers: Vec<&str> = r.desc.pds.iter().filter_map(|p| p.role.tenant()).collect();
    assert_eq!(ledgers, ["corporate", "personnel", "property"]);
    let t = r.table();
    assert!(t.contains("calls ledger_corporate (152)"), "{t}");
    let d = r.dot();
    for t in ["tenant corporate", "tenant personnel", "tenant property"] {
        assert!(d.contains(&format!("label=\"{t}\"")), "{d}");
    }
}

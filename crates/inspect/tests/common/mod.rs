//! Deliberately broken copies of the real system.xml, each with the violation it must be
//! rejected for, in the description's view and in the CapDL spec's (or what the microkit tool
//! itself says when it refuses the copy). Shared by tests/description.rs (always) and
//! tests/capdl.rs (with an SDK).

#![allow(dead_code, clippy::panic)]

/// The project's system description.
pub fn system_xml() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../system.xml");
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// `s` with `from`, which must occur exactly once, replaced by `to` (a broken copy that no
/// longer applies fails the test instead of silently testing the original).
fn once(s: &str, from: &str, to: &str) -> String {
    assert_eq!(
        s.matches(from).count(),
        1,
        "system.xml no longer holds {from:?} once"
    );
    s.replacen(from, to, 1)
}

/// What the CapDL view of a broken copy must show.
#[derive(Debug)]
pub enum Capdl {
    /// The microkit tool builds it; inspecting its spec finds each of these.
    Finds(&'static [&'static str]),
    /// The microkit tool refuses the copy with this message: the kernel-side result.
    ToolRefuses(&'static str),
}

/// One broken copy.
#[derive(Debug)]
pub struct Broken {
    /// Short name (file names).
    pub name: &'static str,
    /// What is broken.
    pub what: &'static str,
    /// The edit.
    pub edit: fn(&str) -> String,
    /// Findings of the description's view (`[xml]`), each a substring of one line.
    pub xml: &'static [&'static str],
    /// The CapDL view.
    pub capdl: Capdl,
}

const LEDGERS: &str = "isolation: tenant property's ledger ledger_property reaches tenant corporate's ledger ledger_corporate: ledger_property can send to ledger_corporate's endpoint";
const FOREIGN: &str = "tenant-memory: region `corporate_psdb` (tenant corporate's) is mapped into ledger_personnel (tenant personnel's ledger)";
const WIRE_PSDB: &str = "wire: wire reaches psdb (every psdb namespace is one of psdb's channels; the wire reaches none): wire can send to psdb's endpoint";
const THREE: &str = "regions: region `corporate_audit` is mapped into 3 PDs (wire, ledger_corporate, audit): a shared region is mapped into exactly the two PDs of its channel";
const DEVICE: &str = "devices: device/DMA region `disk_mmio` (physical 0xa001000) is mapped into 2 PDs: audit, psdb; a device is owned by exactly one PD";

/// Every broken copy.
pub const BROKEN: &[Broken] = &[
    Broken {
        name: "ledger-channel",
        what: "a channel between two tenants' ledgers (ledger_property calls ledger_corporate)",
        edit: |s| {
            once(
                s,
                "</system>",
                r#"    <channel>
        <end pd="ledger_property" id="3" pp="true" notify="false" />
        <end pd="ledger_corporate" id="3" notify="false" />
    </channel>
</system>"#,
            )
        },
        xml: &[LEDGERS],
        capdl: Capdl::Finds(&[LEDGERS]),
    },
    Broken {
        name: "foreign-region",
        what: "a region of one tenant (corporate_psdb) mapped into another tenant's ledger (ledger_personnel)",
        edit: |s| {
            once(
                s,
                r#"<map mr="heap_personnel" vaddr="0x20000000""#,
                r#"<map mr="corporate_psdb" vaddr="0x50000000" perms="r" />
        <map mr="heap_personnel" vaddr="0x20000000""#,
            )
        },
        xml: &[
            FOREIGN,
            "isolation: tenant personnel's ledger ledger_personnel reaches tenant corporate's ledger ledger_corporate: ledger_corporate and ledger_personnel share region `corporate_psdb`",
        ],
        capdl: Capdl::Finds(&[
            FOREIGN,
            "isolation: tenant personnel's ledger ledger_personnel reaches tenant corporate's ledger ledger_corporate: ledger_corporate and ledger_personnel share region `corporate_psdb`",
        ]),
    },
    Broken {
        name: "wire-psdb",
        // Ids free on both ends (the wire's 4 is its audit channel).
        what: "a wire <-> psdb channel",
        edit: |s| {
            once(
                s,
                "</system>",
                r#"    <channel>
        <end pd="wire" id="20" pp="true" notify="false" />
        <end pd="psdb" id="20" notify="false" />
    </channel>
</system>"#,
            )
        },
        xml: &[WIRE_PSDB],
        capdl: Capdl::Finds(&[WIRE_PSDB]),
    },
    Broken {
        name: "downhill",
        what: "a downhill protected call (audit, 200, calls ledger_corporate, 152)",
        edit: |s| {
            once(
                s,
                r#"<end pd="ledger_corporate" id="1" pp="true" notify="false" />
        <end pd="audit" id="0" notify="false" />"#,
                r#"<end pd="ledger_corporate" id="1" notify="false" />
        <end pd="audit" id="0" pp="true" notify="false" />"#,
            )
        },
        xml: &["uphill: protected call audit (200) -> ledger_corporate (152) does not go strictly uphill"],
        capdl: Capdl::ToolRefuses(
            "PPCs must be to protection domains of strictly higher priorities",
        ),
    },
    Broken {
        name: "three-pds",
        what: "a region (corporate_audit) mapped into three PDs (also wire)",
        edit: |s| {
            once(
                s,
                r#"<map mr="heap_wire" vaddr="0x20000000""#,
                r#"<map mr="corporate_audit" vaddr="0x50000000" perms="rw" />
        <map mr="heap_wire" vaddr="0x20000000""#,
            )
        },
        xml: &[THREE],
        capdl: Capdl::Finds(&[THREE]),
    },
    Broken {
        name: "shared-device",
        what: "a device (disk_mmio) mapped into two PDs (also audit)",
        // Not at 0x30000000: audit's own device (the PL031) is mapped there.
        edit: |s| {
            once(
                s,
                r#"<map mr="heap_audit" vaddr="0x20000000""#,
                r#"<map mr="disk_mmio" vaddr="0x31000000" perms="rw" cached="false" />
        <map mr="heap_audit" vaddr="0x20000000""#,
            )
        },
        xml: &[DEVICE],
        capdl: Capdl::Finds(&[DEVICE]),
    },
    Broken {
        name: "wrong-elf",
        what: "a ledger's ELF copy loaded for the wrong tenant (ledger_personnel loads ledger_corporate.elf)",
        edit: |s| {
            once(
                s,
                r#"<program_image path="ledger_personnel.elf" />"#,
                r#"<program_image path="ledger_corporate.elf" />"#,
            )
        },
        xml: &["images: ledger_personnel loads `ledger_corporate.elf` (tenant corporate's copy, holding corporate's signing key), not its own copy `ledger_personnel.elf`"],
        // In the spec: the key slot mapped into ledger_personnel holds corporate's key (the
        // program images are read from the tool's search path).
        capdl: Capdl::Finds(&[
            "keys: ledger_personnel's key slot holds the signing key totebox-envelope-b/corporate",
            "keys: the signing key totebox-envelope-b/corporate",
        ]),
    },
];

/// The lines of `report` of one view (`[xml]`, `[capdl]`).
pub fn view_lines(findings: &[String], view: &str) -> Vec<String> {
    let tag = format!("[{view}] ");
    findings
        .iter()
        .filter(|l| l.contains(&tag))
        .cloned()
        .collect()
}

/// Asserts each expected text is a substring of some line.
pub fn assert_found(lines: &[String], want: &[&str], what: &str) {
    for w in want {
        assert!(
            lines.iter().any(|l| l.contains(w)),
            "{what}: no finding contains {w:?}; found:\n{}",
            lines.join("\n")
        );
    }
}

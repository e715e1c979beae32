//! Reads a Microkit 2.3 system description (`system.xml`) into plain data, and checks the rules
//! Totebox relies on. Host only: the simulator builds the system from it, the tests check the
//! Rust constants against it.
//!
//! Only the subset the project uses is read: `<memory_region>`, top-level `<protection_domain>`
//! with `<program_image>`, `<map>`, `<irq>`, `<setvar region_paddr>`, and `<channel>`.
//! Anything else (child PDs, virtual machines) is refused, so the simulator never silently runs
//! a different system than the image.
#![forbid(unsafe_code)]

pub mod topology;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// A memory region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryRegion {
    /// Its name.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// Fixed physical address (devices, DMA).
    pub phys_addr: Option<u64>,
}

/// A `<map>` of a region into a PD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Map {
    /// The region's name.
    pub mr: String,
    /// Virtual address.
    pub vaddr: u64,
    /// `r`, `rw`, `rx`, ...
    pub perms: String,
    /// Whether cached (default true).
    pub cached: bool,
    /// The symbol that receives the address.
    pub setvar_vaddr: Option<String>,
    /// The symbol that receives the size.
    pub setvar_size: Option<String>,
}

/// An `<irq>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Irq {
    /// Interrupt number.
    pub irq: u32,
    /// Channel id in the PD.
    pub id: u8,
}

/// A protection domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pd {
    /// Its name.
    pub name: String,
    /// Priority (0..=254).
    pub priority: u8,
    /// Whether passive.
    pub passive: bool,
    /// Stack size in bytes, if given.
    pub stack_size: Option<u64>,
    /// The ELF file name.
    pub program_image: String,
    /// Regions mapped.
    pub maps: Vec<Map>,
    /// Interrupts.
    pub irqs: Vec<Irq>,
    /// `<setvar symbol region_paddr>`: symbol -> region.
    pub paddr_setvars: Vec<(String, String)>,
}

/// One end of a channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct End {
    /// The PD.
    pub pd: String,
    /// Channel id in that PD.
    pub id: u8,
    /// This end may ppcall the other.
    pub pp: bool,
    /// This end may notify the other.
    pub notify: bool,
}

/// A channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelDesc {
    /// First end.
    pub a: End,
    /// Second end.
    pub b: End,
}

/// A whole system description.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct System {
    /// Memory regions, in file order.
    pub regions: Vec<MemoryRegion>,
    /// PDs, in file order.
    pub pds: Vec<Pd>,
    /// Channels, in file order.
    pub channels: Vec<ChannelDesc>,
}

/// Why a description could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub String);

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParseError {}

fn err<T>(msg: impl Into<String>) -> Result<T, ParseError> {
    Err(ParseError(msg.into()))
}

fn parse_int(s: &str) -> Option<u64> {
    let s = s.trim();
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(&hex.replace('_', ""), 16).ok(),
        None => s.replace('_', "").parse().ok(),
    }
}

fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

struct Node<'a, 'i>(roxmltree::Node<'a, 'i>);

impl Node<'_, '_> {
    fn opt(&self, name: &str) -> Option<String> {
        self.0.attribute(name).map(str::to_owned)
    }
    fn req(&self, name: &str) -> Result<String, ParseError> {
        match self.0.attribute(name) {
            Some(v) => Ok(v.to_owned()),
            None => err(format!(
                "<{}> at byte {} lacks attribute `{name}`",
                self.0.tag_name().name(),
                self.0.range().start
            )),
        }
    }
    fn int(&self, name: &str) -> Result<u64, ParseError> {
        let v = self.req(name)?;
        parse_int(&v).ok_or_else(|| ParseError(format!("`{name}=\"{v}\"` is not a number")))
    }
    fn opt_int(&self, name: &str) -> Result<Option<u64>, ParseError> {
        match self.opt(name) {
            None => Ok(None),
            Some(v) => parse_int(&v)
                .map(Some)
                .ok_or_else(|| ParseError(format!("`{name}=\"{v}\"` is not a number"))),
        }
    }
    fn opt_bool(&self, name: &str, default: bool) -> Result<bool, ParseError> {
        match self.opt(name) {
            None => Ok(default),
            Some(v) => {
                parse_bool(&v).ok_or_else(|| ParseError(format!("`{name}=\"{v}\"` is not a bool")))
            }
        }
    }
}

fn small<T: TryFrom<u64>>(v: u64, what: &str) -> Result<T, ParseError> {
    T::try_from(v).map_err(|_| ParseError(format!("{what} {v} out of range")))
}

impl System {
    /// Parses a description.
    pub fn parse(text: &str) -> Result<System, ParseError> {
        let doc = roxmltree::Document::parse(text).map_err(|e| ParseError(e.to_string()))?;
        let root = doc.root_element();
        if root.tag_name().name() != "system" {
            return err("the root element is not <system>");
        }
        let mut sys = System::default();
        for el in root.children().filter(roxmltree::Node::is_element) {
            let n = Node(el);
            match el.tag_name().name() {
                "memory_region" => sys.regions.push(MemoryRegion {
                    name: n.req("name")?,
                    size: n.int("size")?,
                    phys_addr: n.opt_int("phys_addr")?,
                }),
                "protection_domain" => sys.pds.push(parse_pd(el)?),
                "channel" => {
                    let ends: Vec<_> = el
                        .children()
                        .filter(|c| c.is_element() && c.tag_name().name() == "end")
                        .collect();
                    let [a, b] = ends.as_slice() else {
                        return err("a <channel> needs exactly two <end>s");
                    };
                    sys.channels.push(ChannelDesc {
                        a: parse_end(*a)?,
                        b: parse_end(*b)?,
                    });
                }
                other => return err(format!("unsupported element <{other}>")),
            }
        }
        Ok(sys)
    }

    /// The PD called `name`.
    pub fn pd(&self, name: &str) -> Option<&Pd> {
        self.pds.iter().find(|p| p.name == name)
    }

    /// The region called `name`.
    pub fn region(&self, name: &str) -> Option<&MemoryRegion> {
        self.regions.iter().find(|r| r.name == name)
    }

    /// Whether region `name` belongs to a device: it has a fixed physical address (MMIO, or DMA
    /// pinned in RAM), or a PD learns where the tool placed it (`<setvar region_paddr>`: a DMA
    /// region). Such a region is one PD's only.
    pub fn is_device_region(&self, name: &str) -> bool {
        self.region(name).is_some_and(|r| r.phys_addr.is_some())
            || self
                .pds
                .iter()
                .any(|p| p.paddr_setvars.iter().any(|(_, r)| r == name))
    }

    /// The other end of the channel that `pd` knows as `id`.
    pub fn peer(&self, pd: &str, id: u8) -> Option<(&End, &End)> {
        self.channels.iter().find_map(|c| {
            if c.a.pd == pd && c.a.id == id {
                Some((&c.a, &c.b))
            } else if c.b.pd == pd && c.b.id == id {
                Some((&c.b, &c.a))
            } else {
                None
            }
        })
    }

    /// The PDs each region is mapped into.
    pub fn mappers(&self) -> BTreeMap<&str, BTreeSet<&str>> {
        let mut m: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for pd in &self.pds {
            for map in &pd.maps {
                m.entry(map.mr.as_str())
                    .or_default()
                    .insert(pd.name.as_str());
            }
        }
        m
    }

    /// Every violation of the structural rules (empty if none):
    /// - names unique; every map names a declared region; channel ids < 62, unique per PD
    ///   (IRQs included); channel ends name declared PDs;
    /// - every ppcall goes to a strictly higher priority, and a passive PD ppcalls nothing it
    ///   could be called back on (only uphill calls exist, so the call graph is a DAG);
    /// - every region mapped into two or more PDs is mapped into exactly the two PDs of one
    ///   channel; a region with a physical address (device, DMA) into exactly one PD.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        let mut names = BTreeSet::new();
        for pd in &self.pds {
            if !names.insert(pd.name.as_str()) {
                p.push(format!("PD `{}` declared twice", pd.name));
            }
        }
        let mut rnames = BTreeSet::new();
        for r in &self.regions {
            if !rnames.insert(r.name.as_str()) {
                p.push(format!("region `{}` declared twice", r.name));
            }
        }
        let mut ids: BTreeMap<&str, BTreeSet<u8>> = BTreeMap::new();
        for pd in &self.pds {
            for m in &pd.maps {
                if self.region(&m.mr).is_none() {
                    p.push(format!(
                        "PD `{}` maps undeclared region `{}`",
                        pd.name, m.mr
                    ));
                }
            }
            for irq in &pd.irqs {
                if irq.id >= 62 || !ids.entry(&pd.name).or_default().insert(irq.id) {
                    p.push(format!(
                        "PD `{}`: IRQ channel id {} reused or >= 62",
                        pd.name, irq.id
                    ));
                }
            }
        }
        let pairs: BTreeSet<(&str, &str)> = self
            .channels
            .iter()
            .flat_map(|c| {
                [
                    (c.a.pd.as_str(), c.b.pd.as_str()),
                    (c.b.pd.as_str(), c.a.pd.as_str()),
                ]
            })
            .collect();
        for c in &self.channels {
            for (from, to) in [(&c.a, &c.b), (&c.b, &c.a)] {
                if from.id >= 62 || !ids.entry(&from.pd).or_default().insert(from.id) {
                    p.push(format!(
                        "PD `{}`: channel id {} reused or >= 62",
                        from.pd, from.id
                    ));
                }
                let (Some(f), Some(t)) = (self.pd(&from.pd), self.pd(&to.pd)) else {
                    p.push(format!("channel {} <-> {}: undeclared PD", from.pd, to.pd));
                    continue;
                };
                if from.pp && t.priority <= f.priority {
                    p.push(format!(
                        "ppcall {} ({}) -> {} ({}) does not go strictly uphill",
                        f.name, f.priority, t.name, t.priority
                    ));
                }
            }
        }
        for (mr, pds) in self.mappers() {
            if self.region(mr).is_none() {
                continue;
            }
            let v: Vec<&str> = pds.iter().copied().collect();
            if self.is_device_region(mr) && v.len() != 1 {
                p.push(format!(
                    "device/DMA region `{mr}` mapped into {v:?}, not exactly one PD"
                ));
            }
            if v.len() > 2 {
                p.push(format!(
                    "region `{mr}` mapped into {v:?}: more than two PDs"
                ));
            }
            if v.len() == 2 && !pairs.contains(&(v[0], v[1])) {
                p.push(format!(
                    "region `{mr}` shared by {v:?}, which have no channel"
                ));
            }
        }
        p
    }
}

fn parse_end(el: roxmltree::Node<'_, '_>) -> Result<End, ParseError> {
    let n = Node(el);
    Ok(End {
        pd: n.req("pd")?,
        id: small(n.int("id")?, "channel id")?,
        pp: n.opt_bool("pp", false)?,
        notify: n.opt_bool("notify", true)?,
    })
}

fn parse_pd(el: roxmltree::Node<'_, '_>) -> Result<Pd, ParseError> {
    let n = Node(el);
    let mut pd = Pd {
        name: n.req("name")?,
        priority: small(n.opt_int("priority")?.unwrap_or(0), "priority")?,
        passive: n.opt_bool("passive", false)?,
        stack_size: n.opt_int("stack_size")?,
        program_image: String::new(),
        maps: Vec::new(),
        irqs: Vec::new(),
        paddr_setvars: Vec::new(),
    };
    for c in el.children().filter(roxmltree::Node::is_element) {
        let cn = Node(c);
        match c.tag_name().name() {
            "program_image" => pd.program_image = cn.req("path")?,
            "map" => pd.maps.push(Map {
                mr: cn.req("mr")?,
                vaddr: cn.int("vaddr")?,
                perms: cn.opt("perms").unwrap_or_else(|| "rw".into()),
                cached: cn.opt_bool("cached", true)?,
                setvar_vaddr: cn.opt("setvar_vaddr"),
                setvar_size: cn.opt("setvar_size"),
            }),
            "irq" => pd.irqs.push(Irq {
                irq: small(cn.int("irq")?, "irq")?,
                id: small(cn.int("id")?, "irq id")?,
            }),
            "setvar" => match (cn.opt("symbol"), cn.opt("region_paddr")) {
                (Some(s), Some(r)) => pd.paddr_setvars.push((s, r)),
                _ => return err("only <setvar symbol region_paddr> is supported"),
            },
            other => return err(format!("unsupported element <{other}> in PD `{}`", pd.name)),
        }
    }
    if pd.program_image.is_empty() {
        return err(format!("PD `{}` has no <program_image>", pd.name));
    }
    Ok(pd)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: &str = r#"<?xml version="1.0"?>
<system>
  <memory_region name="shared" size="0x1000" />
  <memory_region name="dev" size="0x1000" phys_addr="0x0a000000" />
  <protection_domain name="lo" priority="100">
    <program_image path="lo.elf" />
    <map mr="shared" vaddr="0x4000000" perms="rw" setvar_vaddr="s_vaddr" setvar_size="s_size" />
    <map mr="dev" vaddr="0x5000000" perms="rw" cached="false" />
    <irq irq="48" id="0" />
  </protection_domain>
  <protection_domain name="hi" priority="200" passive="true">
    <program_image path="hi.elf" />
    <map mr="shared" vaddr="0x4000000" perms="r" />
  </protection_domain>
  <channel>
    <end pd="lo" id="1" pp="true" notify="false" />
    <end pd="hi" id="0" />
  </channel>
</system>"#;

    #[test]
    fn parses_and_passes_checks() {
        let s = System::parse(SMALL).unwrap();
        assert_eq!(s.pds.len(), 2);
        assert_eq!(s.region("shared").unwrap().size, 0x1000);
        assert_eq!(s.region("dev").unwrap().phys_addr, Some(0x0a00_0000));
        let lo = s.pd("lo").unwrap();
        assert_eq!(lo.irqs, [Irq { irq: 48, id: 0 }]);
        assert_eq!(lo.maps[0].setvar_vaddr.as_deref(), Some("s_vaddr"));
        assert!(!lo.maps[1].cached);
        assert!(s.pd("hi").unwrap().passive);
        let (me, peer) = s.peer("lo", 1).unwrap();
        assert!(me.pp && !me.notify);
        assert_eq!(peer.pd, "hi");
        assert!(peer.notify);
        assert_eq!(s.problems(), Vec::<String>::new());
    }

    #[test]
    fn finds_every_kind_of_violation() {
        let bad = SMALL
            .replace(r#"name="hi" priority="200""#, r#"name="hi" priority="50""#)
            .replace(r#"<map mr="dev" vaddr="0x5000000""#, r#"<map mr="nope" vaddr="0x5000000""#)
            .replace(
                r#"<end pd="hi" id="0" />"#,
                r#"<end pd="hi" id="0" /></channel><channel><end pd="lo" id="0" /><end pd="ghost" id="0" />"#,
            );
        let s = System::parse(&bad).unwrap();
        let p = s.problems().join("\n");
        assert!(p.contains("does not go strictly uphill"), "{p}");
        assert!(p.contains("undeclared region `nope`"), "{p}");
        assert!(p.contains("channel id 0 reused"), "{p}");
        assert!(p.contains("undeclared PD"), "{p}");

        // A region shared by two PDs without a channel, and a device region in two PDs.
        let s = System::parse(
            &SMALL
                .replace("<channel>", "<!--")
                .replace("</channel>", "-->")
                .replace(
                    r#"<map mr="shared" vaddr="0x4000000" perms="r" />"#,
                    r#"<map mr="dev" vaddr="0x4000000" /><map mr="shared" vaddr="0x4000000" />"#,
                ),
        )
        .unwrap();
        let p = s.problems().join("\n");
        assert!(p.contains("which have no channel"), "{p}");
        assert!(p.contains("not exactly one PD"), "{p}");
    }

    #[test]
    fn refuses_what_it_does_not_model() {
        assert!(System::parse("<nope/>").is_err());
        assert!(System::parse("<system><virtual_machine/></system>").is_err());
        assert!(System::parse(r#"<system><protection_domain name="x"/></system>"#).is_err());
        assert!(System::parse(r#"<system><memory_region name="x" size="big"/></system>"#).is_err());
        assert!(
            System::parse("<system><channel><end pd=\"a\" id=\"0\"/></channel></system>").is_err()
        );
        assert!(System::parse("not xml").is_err());
    }
}

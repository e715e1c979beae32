//! The system's one description (`system.toml`) and what is generated from it: the Microkit
//! [`System`] (written out as `system.xml` by [`Topology::to_xml`]) and, per PD, the facts its
//! Rust code uses ([`PdFacts`]: channel ids, region symbols and sizes, tenant table).
//!
//! The description names tenants and PDs once; everything else is derived by fixed rules, so
//! adding a tenant is one name in `tenants`:
//! - a PD or channel end named with `{tenant}` is instantiated once per tenant, in `tenants`
//!   order; such a PD's priority is `priority` minus the tenant's index, its image name may use
//!   `{tenant}` too;
//! - channel ids: in each PD, its IRQs first (from 0), then its channels in the order they are
//!   declared (a per-tenant channel in tenant order);
//! - regions: a channel's shared region is `<client>_<server>` by short names (a per-tenant PD's
//!   short name is its tenant, others their name); a heap is `heap_<short>`; a device's are
//!   `<device>_mmio` (at the device's physical address) and `<device>_dma` (wherever the
//!   microkit tool places it: the PD learns it from its `dma_paddr` setvar);
//! - virtual addresses: heap at [`HEAP_VADDR`]; device k's MMIO at [`DEVICE_VADDR`] + k ×
//!   [`DEVICE_STRIDE`], its DMA [`DMA_OFFSET`] above; shared regions from [`SHARED_VADDR`], in
//!   channel-id order, each at the next multiple of [`SHARED_ALIGN`] after the previous one;
//! - symbols: a shared region `<peer>_vaddr`/`<peer>_size` (peer: the other end's short name),
//!   the heap `heap_vaddr`/`heap_size`, a PD's first device `mmio_vaddr`, `mmio_size`,
//!   `dma_vaddr`, `dma_size`, `dma_paddr` (later devices prefixed `<device>_`);
//! - boards: `boards` lists the Microkit boards the system is built for, the first the default;
//!   a device with `board = "<b>"` exists only on that board, one without on every board. On
//!   every board each PD has the same device names, in the same order, the same ones taking an
//!   IRQ: so channel ids, region names and symbols are the same on every board, and only
//!   physical addresses and interrupt numbers differ (the per-board device map, stated once).

use std::fmt::Write as _;

use serde::Deserialize;

use crate::{ChannelDesc, End, Irq, Map, MemoryRegion, Pd, System};

/// Placeholder in PD names, channel ends and image names for "each tenant".
pub const TENANT: &str = "{tenant}";
/// Where every PD's heap is mapped.
pub const HEAP_VADDR: u64 = 0x2000_0000;
/// Where a PD's first device's MMIO page is mapped.
pub const DEVICE_VADDR: u64 = 0x3000_0000;
/// Between two devices' mappings in one PD.
pub const DEVICE_STRIDE: u64 = 0x200_0000;
/// A device's DMA region, above its MMIO mapping.
pub const DMA_OFFSET: u64 = 0x100_0000;
/// Where a PD's first shared region is mapped.
pub const SHARED_VADDR: u64 = 0x4000_0000;
/// Shared regions start at multiples of this.
pub const SHARED_ALIGN: u64 = 0x200_0000;

/// `system.toml`, as written.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Description {
    /// The boards, the default first.
    pub boards: Vec<String>,
    /// The tenants, in channel order.
    pub tenants: Vec<String>,
    /// Protection domains, in order.
    #[serde(rename = "pd")]
    pub pds: Vec<PdDesc>,
    /// Channels, in order.
    #[serde(rename = "channel", default)]
    pub channels: Vec<ChannelSpec>,
}

/// A PD (or, named with `{tenant}`, one per tenant).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PdDesc {
    /// Its name.
    pub name: String,
    /// Priority (of the first tenant's instance for a per-tenant PD).
    pub priority: u8,
    /// Passive (runs only inside calls to it).
    #[serde(default)]
    pub passive: bool,
    /// Its ELF file name.
    pub image: String,
    /// Stack size in bytes.
    pub stack: Option<u64>,
    /// Heap size in bytes (a private region).
    pub heap: u64,
    /// Devices it owns.
    #[serde(rename = "device", default)]
    pub devices: Vec<DeviceDesc>,
}

/// A memory-mapped device owned by one PD.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DeviceDesc {
    /// Its name.
    pub name: String,
    /// The one board it is on; none: every board.
    #[serde(default)]
    pub board: Option<String>,
    /// Physical address of its MMIO page.
    pub mmio: u64,
    /// Size of the MMIO mapping.
    pub mmio_size: u64,
    /// A fixed physical address for its DMA region, only where a board needs one (an IOMMU
    /// window, say). Without it the microkit tool places the region in RAM next to the other
    /// objects it creates: a fixed address in the middle of RAM makes the initialiser create
    /// (and the kernel clear) filler objects up to it at every boot, which cost this image
    /// 262 MiB of memory touched and most of its boot time (issue 13).
    #[serde(default)]
    pub dma: Option<u64>,
    /// Size of its DMA region (none for a device without DMA, such as a clock or a UART).
    #[serde(default)]
    pub dma_size: Option<u64>,
    /// Its interrupt, if the PD takes it.
    pub irq: Option<u32>,
}

/// A channel of protected calls from `client` to `server` (strictly uphill), with the region
/// they share.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ChannelSpec {
    /// The calling end.
    pub client: String,
    /// The called end.
    pub server: String,
    /// Size of the shared region, bytes.
    pub region: u64,
}

/// One channel as one PD sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelFact {
    /// Its id in this PD.
    pub id: u8,
    /// The PD at the other end.
    pub peer: String,
    /// The peer's short name (its tenant, for a per-tenant PD).
    pub peer_short: String,
    /// This PD calls the peer (else the peer calls this PD).
    pub calls: bool,
    /// The shared region's name.
    pub region: String,
    /// Its size.
    pub size: u64,
    /// Where this PD maps it.
    pub vaddr: u64,
    /// The `setvar_vaddr` symbol (`<peer_short>_vaddr`); the size symbol is `<peer_short>_size`.
    pub symbol: String,
}

/// What one PD's code may rely on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PdFacts {
    /// Its name.
    pub name: String,
    /// Its short name.
    pub short: String,
    /// Its tenant's index, for a per-tenant PD.
    pub tenant: Option<usize>,
    /// Its priority.
    pub priority: u8,
    /// Its heap size.
    pub heap: u64,
    /// Its IRQs: (channel id, interrupt, device name).
    pub irqs: Vec<(u8, u32, String)>,
    /// Its channels, in id order.
    pub channels: Vec<ChannelFact>,
}

/// The expanded system, for one board.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    /// The board.
    pub board: String,
    /// The tenants.
    pub tenants: Vec<String>,
    /// Per PD, in declaration order.
    pub pds: Vec<PdFacts>,
    /// The Microkit system.
    pub system: System,
}

impl Description {
    /// Parses `system.toml`.
    pub fn parse(text: &str) -> Result<Description, String> {
        toml::from_str(text).map_err(|e| format!("system.toml: {e}"))
    }

    /// The default board (the first).
    pub fn default_board(&self) -> Option<&str> {
        self.boards.first().map(String::as_str)
    }

    /// PD `pd`'s devices on `board`.
    fn devices_on<'a>(
        &'a self,
        pd: &'a PdDesc,
        board: &'a str,
    ) -> impl Iterator<Item = &'a DeviceDesc> {
        pd.devices
            .iter()
            .filter(move |d| d.board.as_deref().is_none_or(|b| b == board))
    }

    /// Checks the board rules (module docs): known boards only, and on every board the same
    /// device names in the same order, the same ones with an IRQ.
    fn check_boards(&self) -> Result<(), String> {
        if self.boards.is_empty() {
            return Err("no boards".into());
        }
        for (i, b) in self.boards.iter().enumerate() {
            if self.boards[..i].contains(b) {
                return Err(format!("board `{b}` named twice"));
            }
        }
        for p in &self.pds {
            for d in &p.devices {
                if let Some(b) = &d.board {
                    if !self.boards.contains(b) {
                        return Err(format!(
                            "PD `{}` device `{}`: board `{b}` is not in `boards`",
                            p.name, d.name
                        ));
                    }
                }
            }
            let shape = |b: &str| -> Vec<(String, bool)> {
                self.devices_on(p, b)
                    .map(|d| (d.name.clone(), d.irq.is_some()))
                    .collect()
            };
            let first = shape(&self.boards[0]);
            for (i, (n, _)) in first.iter().enumerate() {
                if first[..i].iter().any(|(m, _)| m == n) {
                    return Err(format!(
                        "PD `{}`: device `{n}` named twice on board `{}`",
                        p.name, self.boards[0]
                    ));
                }
            }
            for b in &self.boards[1..] {
                let other = shape(b);
                if other != first {
                    return Err(format!(
                        "PD `{}`: its devices on board `{b}` ({other:?}) are not those on `{}` \
                         ({first:?}): each board must give a PD the same device names, in the \
                         same order, the same ones with an IRQ",
                        p.name, self.boards[0]
                    ));
                }
            }
        }
        Ok(())
    }
}

fn valid_tenant(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 24
        && t.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
        && t.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

fn align_up(v: u64, a: u64) -> u64 {
    v.div_ceil(a) * a
}

impl Topology {
    /// Expands a description for its default board by the rules of this module; every
    /// inconsistency is an error.
    pub fn expand(desc: &Description) -> Result<Topology, String> {
        let board = desc.default_board().ok_or("no boards")?.to_owned();
        Topology::expand_for(desc, &board)
    }

    /// Expands a description for `board` (one of its `boards`).
    pub fn expand_for(desc: &Description, board: &str) -> Result<Topology, String> {
        desc.check_boards()?;
        if !desc.boards.iter().any(|b| b == board) {
            return Err(format!(
                "board `{board}` is not one of the description's boards ({})",
                desc.boards.join(", ")
            ));
        }
        if desc.tenants.is_empty() {
            return Err("no tenants".into());
        }
        for (i, t) in desc.tenants.iter().enumerate() {
            if !valid_tenant(t) {
                return Err(format!(
                    "tenant `{t}`: 1-24 of [a-z0-9_], starting with a letter"
                ));
            }
            if desc.tenants[..i].contains(t) {
                return Err(format!("tenant `{t}` named twice"));
            }
        }
        // PDs.
        struct Inst {
            desc: usize,
            name: String,
            short: String,
            tenant: Option<usize>,
            priority: u8,
            image: String,
        }
        let mut insts: Vec<Inst> = Vec::new();
        for (d, p) in desc.pds.iter().enumerate() {
            if p.name.contains(TENANT) {
                for (i, t) in desc.tenants.iter().enumerate() {
                    let priority = u8::try_from(i)
                        .ok()
                        .and_then(|i| p.priority.checked_sub(i))
                        .ok_or_else(|| format!("PD `{}`: priority underflow", p.name))?;
                    insts.push(Inst {
                        desc: d,
                        name: p.name.replace(TENANT, t),
                        short: t.clone(),
                        tenant: Some(i),
                        priority,
                        image: p.image.replace(TENANT, t),
                    });
                }
            } else {
                if p.image.contains(TENANT) {
                    return Err(format!(
                        "PD `{}`: only a per-tenant PD's image names a tenant",
                        p.name
                    ));
                }
                insts.push(Inst {
                    desc: d,
                    name: p.name.clone(),
                    short: p.name.clone(),
                    tenant: None,
                    priority: p.priority,
                    image: p.image.clone(),
                });
            }
        }
        let find = |name: &str| insts.iter().position(|i| i.name == name);
        // Channels, expanded in declaration order.
        struct Chan {
            client: usize,
            server: usize,
            size: u64,
            tenant: Option<usize>,
        }
        let mut chans = Vec::new();
        for c in &desc.channels {
            let (ct, st) = (c.client.contains(TENANT), c.server.contains(TENANT));
            if ct && st {
                return Err(format!(
                    "channel {} -> {}: at most one end may be per tenant",
                    c.client, c.server
                ));
            }
            let tenants: Vec<Option<usize>> = if ct || st {
                (0..desc.tenants.len()).map(Some).collect()
            } else {
                vec![None]
            };
            for t in tenants {
                let name = |s: &str| match t {
                    Some(i) => s.replace(TENANT, &desc.tenants[i]),
                    None => s.to_owned(),
                };
                let (cn, sn) = (name(&c.client), name(&c.server));
                let client = find(&cn).ok_or_else(|| format!("channel names unknown PD `{cn}`"))?;
                let server = find(&sn).ok_or_else(|| format!("channel names unknown PD `{sn}`"))?;
                if client == server {
                    return Err(format!("channel from `{cn}` to itself"));
                }
                chans.push(Chan {
                    client,
                    server,
                    size: c.region,
                    tenant: t,
                });
            }
        }
        // Per-PD facts: IRQs first, then channels in order.
        let mut facts: Vec<PdFacts> = insts
            .iter()
            .map(|i| PdFacts {
                name: i.name.clone(),
                short: i.short.clone(),
                tenant: i.tenant,
                priority: i.priority,
                heap: desc.pds[i.desc].heap,
                irqs: Vec::new(),
                channels: Vec::new(),
            })
            .collect();
        let mut next_id = vec![0u8; insts.len()];
        for (k, inst) in insts.iter().enumerate() {
            for dev in desc.devices_on(&desc.pds[inst.desc], board) {
                if let Some(irq) = dev.irq {
                    facts[k].irqs.push((next_id[k], irq, dev.name.clone()));
                    next_id[k] += 1;
                }
            }
        }
        let mut next_vaddr = vec![SHARED_VADDR; insts.len()];
        for c in &chans {
            let region = format!("{}_{}", insts[c.client].short, insts[c.server].short);
            for (me, peer, calls) in [(c.client, c.server, true), (c.server, c.client, false)] {
                let id = next_id[me];
                if id >= 62 {
                    return Err(format!("PD `{}` has more than 62 channels", insts[me].name));
                }
                next_id[me] += 1;
                let vaddr = next_vaddr[me];
                next_vaddr[me] = align_up(vaddr + c.size, SHARED_ALIGN);
                facts[me].channels.push(ChannelFact {
                    id,
                    peer: insts[peer].name.clone(),
                    peer_short: insts[peer].short.clone(),
                    calls,
                    region: region.clone(),
                    size: c.size,
                    vaddr,
                    symbol: format!("{}_vaddr", insts[peer].short),
                });
            }
        }
        // The Microkit system, in the order system.xml lists it: shared regions (tenant by
        // tenant, then the rest), devices, heaps; PDs; channels.
        let mut sys = System::default();
        let shared = |c: &Chan| MemoryRegion {
            name: format!("{}_{}", insts[c.client].short, insts[c.server].short),
            size: c.size,
            phys_addr: None,
        };
        for t in 0..desc.tenants.len() {
            sys.regions
                .extend(chans.iter().filter(|c| c.tenant == Some(t)).map(shared));
        }
        sys.regions
            .extend(chans.iter().filter(|c| c.tenant.is_none()).map(shared));
        for inst in &insts {
            for dev in desc.devices_on(&desc.pds[inst.desc], board) {
                sys.regions.push(MemoryRegion {
                    name: format!("{}_mmio", dev.name),
                    size: dev.mmio_size,
                    phys_addr: Some(dev.mmio),
                });
                if let Some(size) = dev.dma_size {
                    sys.regions.push(MemoryRegion {
                        name: format!("{}_dma", dev.name),
                        size,
                        phys_addr: dev.dma,
                    });
                } else if dev.dma.is_some() {
                    return Err(format!(
                        "device `{}`: `dma` (an address) without `dma_size`",
                        dev.name
                    ));
                }
            }
        }
        for inst in &insts {
            sys.regions.push(MemoryRegion {
                name: format!("heap_{}", inst.short),
                size: desc.pds[inst.desc].heap,
                phys_addr: None,
            });
        }
        for (k, inst) in insts.iter().enumerate() {
            let p = &desc.pds[inst.desc];
            let mut pd = Pd {
                name: inst.name.clone(),
                priority: inst.priority,
                passive: p.passive,
                stack_size: p.stack,
                program_image: inst.image.clone(),
                maps: Vec::new(),
                irqs: Vec::new(),
                paddr_setvars: Vec::new(),
            };
            pd.maps.push(Map {
                mr: format!("heap_{}", inst.short),
                vaddr: HEAP_VADDR,
                perms: "rw".into(),
                cached: true,
                setvar_vaddr: Some("heap_vaddr".into()),
                setvar_size: Some("heap_size".into()),
            });
            for c in &facts[k].channels {
                pd.maps.push(Map {
                    mr: c.region.clone(),
                    vaddr: c.vaddr,
                    perms: "rw".into(),
                    cached: true,
                    setvar_vaddr: Some(c.symbol.clone()),
                    setvar_size: Some(format!("{}_size", c.peer_short)),
                });
            }
            for (d, dev) in desc.devices_on(p, board).enumerate() {
                let prefix = if d == 0 {
                    String::new()
                } else {
                    format!("{}_", dev.name)
                };
                let base = DEVICE_VADDR + d as u64 * DEVICE_STRIDE;
                pd.maps.push(Map {
                    mr: format!("{}_mmio", dev.name),
                    vaddr: base,
                    perms: "rw".into(),
                    cached: false,
                    setvar_vaddr: Some(format!("{prefix}mmio_vaddr")),
                    setvar_size: Some(format!("{prefix}mmio_size")),
                });
                if dev.dma_size.is_none() {
                    continue;
                }
                pd.maps.push(Map {
                    mr: format!("{}_dma", dev.name),
                    vaddr: base + DMA_OFFSET,
                    perms: "rw".into(),
                    cached: true,
                    setvar_vaddr: Some(format!("{prefix}dma_vaddr")),
                    setvar_size: Some(format!("{prefix}dma_size")),
                });
                pd.paddr_setvars
                    .push((format!("{prefix}dma_paddr"), format!("{}_dma", dev.name)));
            }
            pd.irqs = facts[k]
                .irqs
                .iter()
                .map(|(id, irq, _)| Irq { irq: *irq, id: *id })
                .collect();
            sys.pds.push(pd);
        }
        for c in &chans {
            let id = |me: usize, peer: usize| {
                facts[me]
                    .channels
                    .iter()
                    .find(|f| f.peer == insts[peer].name)
                    .map_or(0, |f| f.id)
            };
            sys.channels.push(ChannelDesc {
                a: End {
                    pd: insts[c.client].name.clone(),
                    id: id(c.client, c.server),
                    pp: true,
                    notify: false,
                },
                b: End {
                    pd: insts[c.server].name.clone(),
                    id: id(c.server, c.client),
                    pp: false,
                    notify: false,
                },
            });
        }
        let problems = sys.problems();
        if !problems.is_empty() {
            return Err(format!(
                "the generated system breaks the rules: {}",
                problems.join("; ")
            ));
        }
        Ok(Topology {
            board: board.to_owned(),
            tenants: desc.tenants.clone(),
            pds: facts,
            system: sys,
        })
    }

    /// Parses and expands `system.toml`'s text for its default board.
    pub fn from_toml(text: &str) -> Result<Topology, String> {
        Topology::expand(&Description::parse(text)?)
    }

    /// Parses and expands `system.toml`'s text for `board`.
    pub fn from_toml_for(text: &str, board: &str) -> Result<Topology, String> {
        Topology::expand_for(&Description::parse(text)?, board)
    }

    /// The PD called `name`.
    pub fn pd(&self, name: &str) -> Option<&PdFacts> {
        self.pds.iter().find(|p| p.name == name)
    }

    /// `system.xml`, as the microkit tool reads it.
    pub fn to_xml(&self) -> String {
        let sys = &self.system;
        let mut x = String::new();
        x.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        x.push_str(
            "<!--\n  GENERATED from system.toml by `make system.xml` (crates/sysdesc, topology.rs):\n  \
             do not edit. system.toml describes the topology and the rules that derive this file;\n  \
             tests/tests/system_xml.rs fails when this file is not what it generates.\n-->\n",
        );
        let _ = writeln!(x, "<!-- board: {} -->", self.board);
        x.push_str("<system>\n");
        x.push_str("    <!-- ===== regions shared between two PDs ===== -->\n");
        let mut section = 0;
        for r in &sys.regions {
            let s = if sys.is_device_region(&r.name) {
                1
            } else if r.name.starts_with("heap_") {
                2
            } else {
                0
            };
            if s != section {
                section = s;
                x.push_str(match s {
                    1 => "\n    <!-- ===== devices and DMA (owned by one PD each) ===== -->\n",
                    _ => "\n    <!-- ===== heaps (private) ===== -->\n",
                });
            }
            let _ = write!(
                x,
                "    <memory_region name=\"{}\" size=\"{:#x}\"",
                r.name, r.size
            );
            if let Some(p) = r.phys_addr {
                let _ = write!(x, " phys_addr=\"{p:#010x}\"");
            }
            x.push_str(" />\n");
        }
        for pd in &sys.pds {
            let _ = write!(
                x,
                "\n    <protection_domain name=\"{}\" priority=\"{}\"",
                pd.name, pd.priority
            );
            if pd.passive {
                x.push_str(" passive=\"true\"");
            }
            if let Some(s) = pd.stack_size {
                let _ = write!(x, " stack_size=\"{s:#x}\"");
            }
            x.push_str(">\n");
            let _ = writeln!(x, "        <program_image path=\"{}\" />", pd.program_image);
            for m in &pd.maps {
                let _ = write!(
                    x,
                    "        <map mr=\"{}\" vaddr=\"{:#x}\" perms=\"{}\"",
                    m.mr, m.vaddr, m.perms
                );
                if !m.cached {
                    x.push_str(" cached=\"false\"");
                }
                if let Some(v) = &m.setvar_vaddr {
                    let _ = write!(x, " setvar_vaddr=\"{v}\"");
                }
                if let Some(v) = &m.setvar_size {
                    let _ = write!(x, " setvar_size=\"{v}\"");
                }
                x.push_str(" />\n");
            }
            for (s, r) in &pd.paddr_setvars {
                let _ = writeln!(x, "        <setvar symbol=\"{s}\" region_paddr=\"{r}\" />");
            }
            for i in &pd.irqs {
                let _ = writeln!(x, "        <irq irq=\"{}\" id=\"{}\" />", i.irq, i.id);
            }
            x.push_str("    </protection_domain>\n");
        }
        x.push_str("\n    <!-- ===== channels: only protected calls, each from the lower-priority end ===== -->\n");
        for c in &sys.channels {
            let _ = writeln!(
                x,
                "    <!-- {} -> {}: {} id {}, {} id {} -->",
                c.a.pd, c.b.pd, c.a.pd, c.a.id, c.b.pd, c.b.id
            );
            x.push_str("    <channel>\n");
            for e in [&c.a, &c.b] {
                let _ = write!(x, "        <end pd=\"{}\" id=\"{}\"", e.pd, e.id);
                if e.pp {
                    x.push_str(" pp=\"true\"");
                }
                x.push_str(" notify=\"false\" />\n");
            }
            x.push_str("    </channel>\n");
        }
        x.push_str("</system>\n");
        x
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    const SMALL: &str = r#"
boards = ["virt", "other"]
tenants = ["a", "b"]
[[pd]]
name = "front"
priority = 100
image = "front.elf"
heap = 0x1000
[[pd.device]]
name = "con"
mmio = 0x0a000000
mmio_size = 0x1000
dma = 0xa0000000
dma_size = 0x1000
irq = 48
[[pd]]
name = "led_{tenant}"
priority = 150
passive = true
image = "led_{tenant}.elf"
heap = 0x2000
[[pd]]
name = "store"
priority = 200
passive = true
image = "store.elf"
heap = 0x3000
[[channel]]
client = "front"
server = "led_{tenant}"
region = 0x1000
[[channel]]
client = "led_{tenant}"
server = "store"
region = 0x3000000
"#;

    #[test]
    fn expands_tenants_ids_regions_and_round_trips_through_xml() {
        let t = Topology::from_toml(SMALL).unwrap();
        let names: Vec<_> = t.pds.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["front", "led_a", "led_b", "store"]);
        let front = t.pd("front").unwrap();
        assert_eq!(front.irqs, [(0, 48, "con".to_string())]);
        let ids: Vec<_> = front
            .channels
            .iter()
            .map(|c| (c.id, c.peer.as_str(), c.symbol.as_str()))
            .collect();
        assert_eq!(ids, [(1, "led_a", "a_vaddr"), (2, "led_b", "b_vaddr")]);
        let lb = t.pd("led_b").unwrap();
        assert_eq!(lb.priority, 149);
        assert_eq!(lb.channels[0].region, "front_b");
        assert_eq!(lb.channels[1].region, "b_store");
        let store = t.pd("store").unwrap();
        // 48 MiB regions: the second starts at the next 32 MiB boundary after the first.
        assert_eq!(store.channels[0].vaddr, SHARED_VADDR);
        assert_eq!(store.channels[1].vaddr, SHARED_VADDR + 0x400_0000);
        assert_eq!((store.channels[1].id, store.channels[1].calls), (1, false));
        let xml = t.to_xml();
        assert_eq!(System::parse(&xml).unwrap(), t.system);
    }

    #[test]
    fn inconsistent_descriptions_are_refused() {
        let bad = [
            (
                SMALL.replace(r#"["a", "b"]"#, r#"["a", "a"]"#),
                "named twice",
            ),
            (SMALL.replace(r#"["a", "b"]"#, "[]"), "no tenants"),
            (SMALL.replace(r#"["a", "b"]"#, r#"["A"]"#), "tenant `A`"),
            (
                SMALL.replace("server = \"store\"", "server = \"nowhere\""),
                "unknown PD `nowhere`",
            ),
            (
                SMALL.replace("client = \"front\"", "client = \"led_{tenant}\""),
                "at most one end",
            ),
            // A downhill call: the store calls a ledger.
            (
                format!(
                    "{SMALL}[[channel]]\nclient = \"store\"\nserver = \"front\"\nregion = 0x1000\n"
                ),
                "breaks the rules",
            ),
            (
                SMALL.replace("heap = 0x1000", "heap = 0x1000\nbogus = 1"),
                "unknown field",
            ),
        ];
        for (text, want) in bad {
            let e = Topology::from_toml(&text).unwrap_err();
            assert!(e.contains(want), "{want}: got {e}");
        }
    }

    /// SMALL with `front`'s console on `virt` only, and its `other` board twin at another
    /// address and interrupt.
    fn two_boards() -> String {
        SMALL.replace(
            "[[pd.device]]\nname = \"con\"\n",
            "[[pd.device]]\nname = \"con\"\nboard = \"other\"\nmmio = 0xff010000\nmmio_size = 0x1000\nirq = 54\n\
             [[pd.device]]\nname = \"con\"\nboard = \"virt\"\n",
        )
    }

    #[test]
    fn each_board_gets_its_own_devices_and_the_same_ids_and_symbols() {
        let text = two_boards();
        let virt = Topology::from_toml(&text).unwrap();
        assert_eq!(virt.board, "virt", "the first board is the default");
        assert_eq!(virt, Topology::from_toml_for(&text, "virt").unwrap());
        let other = Topology::from_toml_for(&text, "other").unwrap();
        assert_eq!(other.board, "other");
        let con = |t: &Topology| {
            t.system
                .regions
                .iter()
                .find(|r| r.name == "con_mmio")
                .and_then(|r| r.phys_addr)
        };
        assert_eq!(con(&virt), Some(0x0a00_0000));
        assert_eq!(con(&other), Some(0xff01_0000));
        // No DMA on the other board's console: no region, no map, no paddr setvar.
        assert!(virt.system.regions.iter().any(|r| r.name == "con_dma"));
        assert!(!other.system.regions.iter().any(|r| r.name == "con_dma"));
        let front = |t: &Topology| {
            t.system
                .pds
                .iter()
                .find(|p| p.name == "front")
                .cloned()
                .unwrap()
        };
        assert_eq!(front(&virt).irqs, vec![Irq { irq: 48, id: 0 }]);
        assert_eq!(front(&other).irqs, vec![Irq { irq: 54, id: 0 }]);
        assert!(front(&other).paddr_setvars.is_empty());
        // What the code relies on is the same: ids, regions, symbols of every channel.
        for (a, b) in virt.pds.iter().zip(&other.pds) {
            assert_eq!(a.channels, b.channels, "{}", a.name);
            let ids = |f: &PdFacts| {
                f.irqs
                    .iter()
                    .map(|(id, _, n)| (*id, n.clone()))
                    .collect::<Vec<_>>()
            };
            assert_eq!(ids(a), ids(b), "{}", a.name);
        }
        assert!(other.to_xml().contains("<!-- board: other -->"));
        let e = Topology::from_toml_for(&text, "rpi4").unwrap_err();
        assert!(e.contains("not one of the description's boards"), "{e}");
    }

    #[test]
    fn boards_that_would_change_what_the_code_sees_are_refused() {
        let text = two_boards();
        let bad = [
            // A device the other board lacks.
            (
                text.replace(
                    "board = \"other\"\nmmio = 0xff010000",
                    "board = \"virt\"\nmmio = 0xff010000",
                ),
                "named twice on board",
            ),
            // The other board's console without its IRQ: ids would shift.
            (
                text.replace("mmio_size = 0x1000\nirq = 54\n", "mmio_size = 0x1000\n"),
                "are not those on",
            ),
            // A board not in the list.
            (
                text.replace("board = \"other\"", "board = \"zcu104\""),
                "not in `boards`",
            ),
            (
                text.replace(r#"boards = ["virt", "other"]"#, "boards = []"),
                "no boards",
            ),
            (
                text.replace(
                    r#"boards = ["virt", "other"]"#,
                    r#"boards = ["virt", "virt"]"#,
                ),
                "named twice",
            ),
        ];
        for (t, want) in bad {
            let e = Topology::from_toml(&t).unwrap_err();
            assert!(e.contains(want), "{want}: got {e}");
        }
    }
}

//! The CapDL spec the Microkit 2.3 tool writes with `--capdl-json`: the objects the CapDL
//! initialiser creates and every capability it places. Only what capability inspection needs
//! is read; a kind of object or capability this model does not know is refused (serde fails
//! on an unknown variant), so an authority the inspector cannot interpret is never ignored.
//!
//! Shape (as written by microkit 2.3.0, checked against this project's system):
//! `{"objects": [{"name": .., "object": <Object>}, ..], "irqs": [{"irq": n, "handler": id}],
//! ..}`. An object id is its index in `objects`. A capability names its object by id.

use serde::Deserialize;

/// The whole spec.
#[derive(Debug, Deserialize)]
pub struct Spec {
    /// Every object, indexed by object id.
    pub objects: Vec<NamedObject>,
    /// IRQ numbers and the `ArmIrq` object handling each.
    #[serde(default)]
    pub irqs: Vec<IrqEntry>,
}

/// One object and its name (the name is a label for people, never used to derive authority).
#[derive(Debug, Deserialize)]
pub struct NamedObject {
    /// The tool's name for it (`tcb_wire`, `frame_mr_heap_wire_000000000`, ...).
    pub name: String,
    /// What it is.
    pub object: Object,
}

/// An IRQ and its handler object.
#[derive(Debug, Deserialize)]
pub struct IrqEntry {
    /// The interrupt number.
    pub irq: u64,
    /// The `ArmIrq` object.
    pub handler: usize,
}

/// A kernel object.
#[derive(Debug, Deserialize)]
pub enum Object {
    /// A page of memory.
    Frame(Frame),
    /// A page table (any level) or a VSpace root.
    PageTable(PageTable),
    /// A capability table.
    CNode(CNode),
    /// A thread.
    Tcb(Tcb),
    /// A scheduling context.
    SchedContext(serde::de::IgnoredAny),
    /// An MCS reply object.
    Reply,
    /// A notification.
    Notification,
    /// An IPC endpoint.
    Endpoint,
    /// An interrupt (its slots: the notification it signals).
    ArmIrq(ArmIrq),
}

/// A frame.
#[derive(Debug, Deserialize)]
pub struct Frame {
    /// log2 of its size.
    pub size_bits: u8,
    /// Its fixed physical address (devices, DMA regions), if any.
    pub paddr: Option<u64>,
    /// What it holds at boot.
    #[serde(default)]
    pub init: FrameInit,
}

/// A frame's initial contents.
#[derive(Debug, Default, Deserialize)]
pub struct FrameInit {
    /// Byte ranges of the frame and where their bytes come from.
    #[serde(default)]
    pub entries: Vec<FillEntry>,
}

/// One range of a frame's initial contents.
#[derive(Debug, Deserialize)]
pub struct FillEntry {
    /// Offsets in the frame.
    pub range: Range,
    /// Where the bytes come from (kept raw: only ELF content is interpreted).
    pub content: serde_json::Value,
}

/// A byte range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct Range {
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
}

/// Bytes of an ELF segment a frame range is filled with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ElfContent {
    /// Which program image: the tool numbers them in the order of its PD list (the system
    /// description's PDs in file order), the monitor's last.
    pub elf_id: usize,
    /// The PT_LOAD segment's index among the ELF's PT_LOAD segments.
    pub seg: usize,
    /// Offsets in the segment's data.
    pub data: Range,
}

impl FillEntry {
    /// The ELF bytes this entry copies, if it copies ELF bytes.
    pub fn elf(&self) -> Option<ElfContent> {
        let c = self.content.get("Data")?.get("ElfContent")?;
        let r = c.get("elf_seg_data_range")?;
        Some(ElfContent {
            elf_id: usize::try_from(c.get("elf_id")?.as_u64()?).ok()?,
            seg: usize::try_from(c.get("elf_seg_idx")?.as_u64()?).ok()?,
            data: Range {
                start: r.get("start")?.as_u64()?,
                end: r.get("end")?.as_u64()?,
            },
        })
    }
}

/// A page table.
#[derive(Debug, Deserialize)]
pub struct PageTable {
    /// Whether it is a VSpace root.
    #[serde(default)]
    pub is_root: bool,
    /// Its level (the root's is the smallest; the last level maps 4 KiB pages).
    pub level: Option<u8>,
    /// Its entries.
    #[serde(default)]
    pub slots: Vec<Slot>,
}

/// A CNode.
#[derive(Debug, Deserialize)]
pub struct CNode {
    /// log2 of its slot count.
    pub size_bits: u8,
    /// Its filled slots.
    #[serde(default)]
    pub slots: Vec<Slot>,
}

/// A TCB.
#[derive(Debug, Deserialize)]
pub struct Tcb {
    /// Its bound objects: 0 CSpace, 1 VSpace, 4 IPC buffer, 5 fault endpoint, 6 scheduling
    /// context, 8 bound notification.
    #[serde(default)]
    pub slots: Vec<Slot>,
    /// Registers and scheduling.
    pub extra: TcbExtra,
}

/// A TCB's scheduling and initial registers.
#[derive(Debug, Deserialize)]
pub struct TcbExtra {
    /// The IPC buffer's virtual address.
    pub ipc_buffer_addr: u64,
    /// Priority.
    pub prio: u8,
    /// Maximum controlled priority.
    pub max_prio: u8,
    /// Entry point.
    pub ip: u64,
    /// Initial stack pointer.
    pub sp: u64,
}

/// An IRQ object.
#[derive(Debug, Deserialize)]
pub struct ArmIrq {
    /// Slot 0: the notification it signals.
    #[serde(default)]
    pub slots: Vec<Slot>,
}

/// A filled slot.
#[derive(Debug, Deserialize)]
pub struct Slot {
    /// The slot index.
    pub slot: u64,
    /// The capability in it.
    pub cap: Cap,
}

/// Access rights of a capability.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub struct Rights {
    /// Receive (endpoints, notifications: wait), read (frames).
    #[serde(default)]
    pub read: bool,
    /// Send / signal, write.
    #[serde(default)]
    pub write: bool,
    /// Transfer capabilities with a message.
    #[serde(default)]
    pub grant: bool,
    /// Transfer a reply capability.
    #[serde(default)]
    pub grant_reply: bool,
}

/// An object reference.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct ObjRef {
    /// The object id.
    pub object: usize,
}

/// An endpoint or notification capability.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct IpcCap {
    /// The object id.
    pub object: usize,
    /// The badge it delivers (0: none).
    #[serde(default)]
    pub badge: u64,
    /// Its rights.
    pub rights: Rights,
}

/// A frame capability.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct FrameCap {
    /// The object id.
    pub object: usize,
    /// Read / write.
    pub rights: Rights,
    /// Whether mapped cached.
    #[serde(default)]
    pub cached: bool,
    /// Whether mapped executable.
    #[serde(default)]
    pub executable: bool,
}

/// A CNode capability.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct CNodeCap {
    /// The object id.
    pub object: usize,
    /// Guard bits.
    #[serde(default)]
    pub guard: u64,
    /// Guard size.
    #[serde(default)]
    pub guard_size: u8,
}

/// A capability.
#[derive(Debug, Clone, Copy, Deserialize)]
pub enum Cap {
    /// Endpoint.
    Endpoint(IpcCap),
    /// Notification.
    Notification(IpcCap),
    /// Frame.
    Frame(FrameCap),
    /// Page table / VSpace.
    PageTable(ObjRef),
    /// CNode.
    CNode(CNodeCap),
    /// Thread control.
    Tcb(ObjRef),
    /// Reply object.
    Reply(ObjRef),
    /// Scheduling context.
    SchedContext(ObjRef),
    /// IRQ handler (acknowledge, set the notification).
    ArmIrqHandler(ObjRef),
}

impl Cap {
    /// The object the capability names.
    pub fn object(&self) -> usize {
        match *self {
            Cap::Endpoint(c) | Cap::Notification(c) => c.object,
            Cap::Frame(c) => c.object,
            Cap::CNode(c) => c.object,
            Cap::PageTable(r)
            | Cap::Tcb(r)
            | Cap::Reply(r)
            | Cap::SchedContext(r)
            | Cap::ArmIrqHandler(r) => r.object,
        }
    }

    /// The kind, in words.
    pub fn kind(&self) -> &'static str {
        match self {
            Cap::Endpoint(_) => "endpoint",
            Cap::Notification(_) => "notification",
            Cap::Frame(_) => "frame",
            Cap::PageTable(_) => "page table",
            Cap::CNode(_) => "CNode",
            Cap::Tcb(_) => "TCB",
            Cap::Reply(_) => "reply",
            Cap::SchedContext(_) => "scheduling context",
            Cap::ArmIrqHandler(_) => "IRQ handler",
        }
    }
}

impl Spec {
    /// Parses the JSON text.
    pub fn parse(text: &[u8]) -> Result<Spec, String> {
        let spec: Spec = serde_json::from_slice(text)
            .map_err(|e| format!("not a CapDL spec we can read: {e}"))?;
        // Every reference must name an object.
        let n = spec.objects.len();
        let bad = |what: &str, id: usize| -> Result<(), String> {
            if id >= n {
                Err(format!("{what} names object {id}; the spec has {n}"))
            } else {
                Ok(())
            }
        };
        for (i, o) in spec.objects.iter().enumerate() {
            let slots: &[Slot] = match &o.object {
                Object::PageTable(p) => &p.slots,
                Object::CNode(c) => &c.slots,
                Object::Tcb(t) => &t.slots,
                Object::ArmIrq(a) => &a.slots,
                _ => &[],
            };
            for s in slots {
                bad(
                    &format!("object {i} (`{}`) slot {}", o.name, s.slot),
                    s.cap.object(),
                )?;
            }
        }
        for irq in &spec.irqs {
            bad(&format!("IRQ {}", irq.irq), irq.handler)?;
        }
        Ok(spec)
    }

    /// The object with id `id` (ids were checked at parse time).
    pub fn obj(&self, id: usize) -> &NamedObject {
        &self.objects[id]
    }
}

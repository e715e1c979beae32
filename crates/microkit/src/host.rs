//! The host side: where a PD's kernel operations go when it runs outside seL4.
//!
//! On the host the same [`Channel`] / [`get_mr`](crate::get_mr) / [`debug_print!`](crate::debug_print)
//! API forwards to a [`Backend`] installed for the current thread (on hosted targets, or with feature `std`): the
//! simulator installs one per PD it runs, a unit test installs a mock. With no backend installed
//! the kernel operations fail loudly; debug output goes to stderr (with `std`) or nowhere.

use alloc::{string::String, sync::Arc, vec::Vec};
use core::{
    fmt,
    sync::atomic::{AtomicU8, Ordering},
};

use crate::{Channel, IrqAckError, MessageInfo};

/// The kernel operations of one PD, for running PDs off seL4.
///
/// Methods take `&self`: a `pp_call` runs the callee to completion, and the callee may use the
/// backend of its own PD meanwhile, so an implementation keeps its state behind interior
/// mutability.
pub trait Backend {
    /// The PD's name, as `microkit_name` would hold it.
    fn pd_name(&self) -> &str;
    /// Whether the PD is passive.
    fn is_passive(&self) -> bool {
        false
    }
    /// `Channel::notify`.
    fn notify(&self, channel: Channel);
    /// `Channel::pp_call`.
    fn pp_call(&self, channel: Channel, msg_info: MessageInfo) -> MessageInfo;
    /// `Channel::irq_ack`.
    fn irq_ack(&self, channel: Channel) -> Result<(), IrqAckError>;
    /// Message register `index` (< 120).
    fn get_mr(&self, index: usize) -> u64;
    /// Set message register `index` (< 120).
    fn set_mr(&self, index: usize, value: u64);
    /// Debug output of the PD.
    fn debug_put_str(&self, s: &str);
    /// The memory of the region this PD maps with `setvar_vaddr="<setvar_vaddr>"`, or `None`
    /// if it maps none by that name. A simulator allocates one [`HostMemory`] per
    /// `<memory_region>` of system.xml and returns a clone of it to every PD that maps it (and
    /// one more per PD for a private region such as a heap), so writes by one PD are seen by the
    /// other. The default maps nothing.
    fn memory_region(&self, setvar_vaddr: &str) -> Option<HostMemory> {
        let _ = setvar_vaddr;
        None
    }
}

/// Host memory backing a [`Region`](crate::region::Region) off seL4: zeroed bytes, shared by
/// clones (reference counted), page aligned like a mapping (drivers translate addresses by page
/// offset), safe to access from several threads (relaxed atomic bytes, so a word written by one
/// thread may be seen torn by another: the simulator runs PDs on one thread, as seL4 runs them
/// on one core).
#[derive(Clone)]
pub struct HostMemory {
    pages: Arc<[Page]>,
    len: usize,
    paddr: Option<u64>,
}

const PAGE: usize = 4096;

#[repr(C, align(4096))]
struct Page([AtomicU8; PAGE]);

impl HostMemory {
    /// `len` zero bytes (a `<memory_region size="len">`), starting on a page boundary.
    pub fn new(len: usize) -> Self {
        Self {
            pages: (0..len.div_ceil(PAGE))
                .map(|_| Page([const { AtomicU8::new(0) }; PAGE]))
                .collect(),
            len,
            paddr: None,
        }
    }

    /// The same memory, reporting `paddr` as its physical address (for a region whose
    /// declaration names a `region_paddr` symbol).
    #[must_use]
    pub fn with_paddr(mut self, paddr: u64) -> Self {
        self.paddr = Some(paddr);
        self
    }

    /// Size in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The physical address it reports, if any.
    pub fn paddr(&self) -> Option<u64> {
        self.paddr
    }

    /// Whether `self` and `other` are the same memory.
    pub fn same_memory(&self, other: &HostMemory) -> bool {
        Arc::ptr_eq(&self.pages, &other.pages)
    }

    /// Copies the bytes at `offset` into `buf` (for the simulator and tests to inspect); `None`
    /// if out of bounds.
    pub fn read(&self, offset: usize, buf: &mut [u8]) -> Option<()> {
        let end = offset.checked_add(buf.len())?;
        (end <= self.len).then(|| self.read_unchecked(offset, buf))
    }

    /// Copies `buf` to `offset`; `None` if out of bounds.
    pub fn write(&self, offset: usize, buf: &[u8]) -> Option<()> {
        let end = offset.checked_add(buf.len())?;
        (end <= self.len).then(|| self.write_unchecked(offset, buf))
    }

    fn byte(&self, i: usize) -> &AtomicU8 {
        &self.pages[i / PAGE].0[i % PAGE]
    }

    /// Bounds already checked by the caller (an out-of-bounds access still panics, not UB).
    pub(crate) fn read_unchecked(&self, offset: usize, buf: &mut [u8]) {
        for (i, b) in buf.iter_mut().enumerate() {
            *b = self.byte(offset + i).load(Ordering::Relaxed);
        }
    }

    pub(crate) fn write_unchecked(&self, offset: usize, buf: &[u8]) {
        for (i, b) in buf.iter().enumerate() {
            self.byte(offset + i).store(*b, Ordering::Relaxed);
        }
    }

    /// The first byte's address: the pages are contiguous (a slice), `AtomicU8` has `u8`'s
    /// layout and permits shared mutation.
    pub(crate) fn as_ptr(&self) -> *mut u8 {
        self.pages.as_ptr() as *mut u8
    }
}

impl fmt::Debug for HostMemory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostMemory")
            .field("len", &self.len)
            .field("paddr", &self.paddr)
            .finish()
    }
}

#[cfg(any(test, feature = "std", not(target_os = "none")))]
mod slot {
    use std::{cell::RefCell, rc::Rc};

    use super::Backend;

    std::thread_local! {
        static BACKEND: RefCell<Option<Rc<dyn Backend>>> = const { RefCell::new(None) };
    }

    /// Install `backend` for the current thread (or remove it with `None`); returns the one it
    /// replaces, so a caller can switch PDs and switch back.
    pub fn set_backend(backend: Option<Rc<dyn Backend>>) -> Option<Rc<dyn Backend>> {
        BACKEND.with(|b| b.replace(backend))
    }

    /// The current thread's backend. A clone: the slot is not borrowed while the backend runs,
    /// so the backend may switch it (a pp_call into another PD).
    pub(crate) fn current() -> Option<Rc<dyn Backend>> {
        BACKEND.with(|b| b.borrow().clone())
    }

    pub(crate) fn fallback_put_str(s: &str) {
        std::eprint!("{s}");
    }
}

#[cfg(any(test, feature = "std", not(target_os = "none")))]
pub use slot::set_backend;

/// A [`Backend`] that only maps regions, for tests of code that reads and writes them (a
/// driver over a fake device page, a DMA pool): each `setvar_vaddr` symbol given is served its
/// memory; every kernel operation is a no-op (`notify` nothing, `pp_call` an empty reply,
/// `irq_ack` Ok, message registers 0, debug output dropped). One PD, one thread: install it
/// with [`set_backend`].
#[derive(Debug, Clone)]
pub struct RegionsOnly {
    name: String,
    regions: Vec<(String, HostMemory)>,
}

impl RegionsOnly {
    /// A PD called `pd_name` mapping each `(setvar_vaddr, memory)` given.
    pub fn new(pd_name: &str, regions: &[(&str, HostMemory)]) -> Self {
        Self {
            name: pd_name.into(),
            regions: regions
                .iter()
                .map(|(n, m)| ((*n).into(), m.clone()))
                .collect(),
        }
    }
}

impl Backend for RegionsOnly {
    fn pd_name(&self) -> &str {
        &self.name
    }
    fn notify(&self, _: Channel) {}
    fn pp_call(&self, _: Channel, _: MessageInfo) -> MessageInfo {
        MessageInfo::default()
    }
    fn irq_ack(&self, _: Channel) -> Result<(), IrqAckError> {
        Ok(())
    }
    fn get_mr(&self, _: usize) -> u64 {
        0
    }
    fn set_mr(&self, _: usize, _: u64) {}
    fn debug_put_str(&self, _: &str) {}
    fn memory_region(&self, setvar_vaddr: &str) -> Option<HostMemory> {
        self.regions
            .iter()
            .find(|(n, _)| n == setvar_vaddr)
            .map(|(_, m)| m.clone())
    }
}

#[cfg(not(any(test, feature = "std", not(target_os = "none"))))]
mod slot {
    /// Without `std` there is nowhere to install a backend.
    pub(crate) fn current() -> Option<&'static dyn super::Backend> {
        None
    }

    pub(crate) fn fallback_put_str(_: &str) {}
}

#[allow(clippy::panic)] // Kernel operations with no backend: a test or simulator set-up bug.
#[track_caller]
fn missing(what: &str) -> ! {
    panic!("microkit: {what} on the host needs a backend (host::set_backend)")
}

pub(crate) fn pd_name() -> crate::PdName {
    let mut bytes = [0; crate::abi::PD_NAME_LENGTH];
    let name = slot::current();
    let src = name.as_ref().map_or("host", |b| b.pd_name()).as_bytes();
    let n = src.len().min(bytes.len());
    bytes[..n].copy_from_slice(&src[..n]);
    crate::PdName::from_bytes(bytes)
}

pub(crate) fn pd_is_passive() -> bool {
    slot::current().is_some_and(|b| b.is_passive())
}

#[track_caller]
pub(crate) fn notify(channel: Channel) {
    match slot::current() {
        Some(b) => b.notify(channel),
        None => missing("notify"),
    }
}

#[track_caller]
pub(crate) fn pp_call(channel: Channel, msg_info: MessageInfo) -> MessageInfo {
    match slot::current() {
        Some(b) => b.pp_call(channel, msg_info),
        None => missing("pp_call"),
    }
}

#[track_caller]
pub(crate) fn irq_ack(channel: Channel) -> Result<(), IrqAckError> {
    match slot::current() {
        Some(b) => b.irq_ack(channel),
        None => missing("irq_ack"),
    }
}

#[track_caller]
pub(crate) fn get_mr(index: usize) -> u64 {
    match slot::current() {
        Some(b) => b.get_mr(index),
        None => missing("get_mr"),
    }
}

#[track_caller]
pub(crate) fn set_mr(index: usize, value: u64) {
    match slot::current() {
        Some(b) => b.set_mr(index, value),
        None => missing("set_mr"),
    }
}

pub(crate) fn memory_region(setvar_vaddr: &str) -> Option<HostMemory> {
    slot::current().and_then(|b| b.memory_region(setvar_vaddr))
}

pub(crate) fn debug_put_str(s: &str) {
    match slot::current() {
        Some(b) => b.debug_put_str(s),
        None => slot::fallback_put_str(s),
    }
}

#[cfg(test)]
mod tests {
    use std::{cell::RefCell, collections::BTreeMap, rc::Rc};

    use super::*;
    use crate::{debug_println, get_mr, pd_name, set_mr};

    #[derive(Default)]
    struct Mock {
        log: RefCell<Vec<String>>,
        out: RefCell<String>,
        mrs: RefCell<BTreeMap<usize, u64>>,
    }

    impl Backend for Mock {
        fn pd_name(&self) -> &str {
            "mock"
        }
        fn notify(&self, channel: Channel) {
            self.log
                .borrow_mut()
                .push(format!("notify {}", channel.index()));
        }
        fn pp_call(&self, channel: Channel, info: MessageInfo) -> MessageInfo {
            self.log
                .borrow_mut()
                .push(format!("pp_call {} {info:?}", channel.index()));
            MessageInfo::new(0, 1)
        }
        fn irq_ack(&self, channel: Channel) -> Result<(), IrqAckError> {
            Err(IrqAckError {
                code: channel.index() as u64,
            })
        }
        fn get_mr(&self, index: usize) -> u64 {
            self.mrs.borrow().get(&index).copied().unwrap_or(0)
        }
        fn set_mr(&self, index: usize, value: u64) {
            self.mrs.borrow_mut().insert(index, value);
        }
        fn debug_put_str(&self, s: &str) {
            self.out.borrow_mut().push_str(s);
        }
    }

    #[test]
    fn api_forwards_to_the_installed_backend() {
        let mock = Rc::new(Mock::default());
        let previous = set_backend(Some(mock.clone()));
        assert!(previous.is_none());

        Channel::new(3).notify();
        let reply = Channel::new(1).pp_call(MessageInfo::new(5, 2));
        assert_eq!(reply, MessageInfo::new(0, 1));
        assert_eq!(Channel::new(7).irq_ack(), Err(IrqAckError { code: 7 }));
        set_mr(4, 99);
        assert_eq!(get_mr(4), 99);
        assert_eq!(pd_name().as_str(), "mock");
        debug_println!("x={}", 1);

        assert!(set_backend(None).is_some());
        assert_eq!(pd_name().as_str(), "host");
        assert_eq!(
            *mock.log.borrow(),
            ["notify 3", "pp_call 1 MessageInfo { label: 5, count: 2 }"]
        );
        assert_eq!(*mock.out.borrow(), "x=1\n");
    }

    #[test]
    fn host_memory_is_page_aligned_shared_and_bounded() {
        let m = HostMemory::new(0x2000 + 3);
        assert_eq!(m.len(), 0x2003);
        assert!(!m.is_empty());
        assert_eq!(m.as_ptr() as usize % 4096, 0);
        let peer = m.clone();
        assert!(peer.same_memory(&m));
        assert!(!HostMemory::new(1).same_memory(&m));
        // Across a page boundary, up to the last byte.
        m.write(0xffe, b"abcd").unwrap();
        m.write(0x2002, b"z").unwrap();
        let mut b = [0; 4];
        peer.read(0xffe, &mut b).unwrap();
        assert_eq!(&b, b"abcd");
        assert_eq!(peer.write(0x2003, b"z"), None);
        assert_eq!(peer.read(usize::MAX, &mut b), None);
        assert_eq!(m.paddr(), None);
        assert_eq!(m.with_paddr(0x1000).paddr(), Some(0x1000));
        assert_eq!(
            format!("{:?}", HostMemory::new(8)),
            "HostMemory { len: 8, paddr: None }"
        );
    }

    #[test]
    #[should_panic(expected = "needs a backend")]
    fn no_backend_fails_loudly() {
        Channel::new(0).notify();
    }
}

/// A global allocator for host tests that bound a PD's heap use: the host's own allocator, with
/// the bytes live and the peak counted. A reallocation is charged as a new block plus the old
/// one (the trait's default `realloc`: allocate, copy, free), which is what a first-fit PD heap
/// needs when it cannot grow in place, so the peak is an upper bound of the bytes a PD heap must
/// hold at once. Install it with `#[global_allocator]` in the test binary; the `unsafe` of
/// implementing `GlobalAlloc` stays here, in the runtime.
#[derive(Debug)]
pub struct CountingAlloc {
    live: core::sync::atomic::AtomicUsize,
    peak: core::sync::atomic::AtomicUsize,
}

impl CountingAlloc {
    /// Nothing counted yet.
    pub const fn new() -> Self {
        CountingAlloc {
            live: core::sync::atomic::AtomicUsize::new(0),
            peak: core::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// Bytes allocated and not yet freed.
    pub fn live(&self) -> usize {
        self.live.load(Ordering::Relaxed)
    }

    /// The most bytes live at once since the last [`CountingAlloc::reset_peak`].
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }

    /// Restarts the peak from the bytes live now; returns them (a baseline to subtract).
    pub fn reset_peak(&self) -> usize {
        let live = self.live();
        self.peak.store(live, Ordering::Relaxed);
        live
    }
}

impl Default for CountingAlloc {
    fn default() -> Self {
        Self::new()
    }
}

// SAFETY: every call is forwarded to the host's system allocator with the caller's arguments,
// so the `GlobalAlloc` contract is the system allocator's; the counters are atomics and never
// affect what is returned.
unsafe impl core::alloc::GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: core::alloc::Layout) -> *mut u8 {
        let live = self.live.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        self.peak.fetch_max(live, Ordering::Relaxed);
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, which is System's.
        unsafe { std::alloc::System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: core::alloc::Layout) {
        self.live.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` above with this `layout`, i.e. from System.
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
}

//! DMA memory for virtio devices: one physically contiguous region, and the
//! [`virtio_drivers::Hal`] over it.
//!
//! system.xml declares the region once, maps it into the driver PD and tells the PD both
//! addresses; the microkit tool chooses the physical address of a region a `setvar
//! region_paddr` names, in one piece (system.toml no longer pins it: a fixed address in the
//! middle of RAM cost every boot its filler objects, README "Boot to ready"):
//!
//! ```xml
//! <memory_region name="blk_dma" size="0x200000" />
//! <protection_domain name="psdb" ...>
//!     <map mr="blk_dma" vaddr="0x3000000" perms="rw" setvar_vaddr="dma_vaddr"
//!          setvar_size="dma_size" />
//!     <setvar symbol="dma_paddr" region_paddr="blk_dma" />
//! </protection_domain>
//! ```
//!
//! The PD declares it with `microkit::memory_region!` (`paddr = "dma_paddr"`) and hands it to
//! [`init`] before creating any device. Then:
//! - physical and virtual addresses map by a constant offset (the region is contiguous: the tool
//!   places it in one piece, as a fixed `phys_addr` would);
//! - [`DmaHal::dma_alloc`] takes whole pages from the region with a first-fit bitmap allocator
//!   ([`PageBitmap`]) and zeroes them (virtqueues, request buffers);
//! - [`DmaHal::share`] passes a buffer inside the region through by address and *bounce-buffers*
//!   one outside it (the caller's stack or heap, which the device cannot reach): pages are taken
//!   from the region, filled from the buffer if the device reads it, copied back by
//!   [`DmaHal::unshare`] if the device writes it, then freed.
//!
//! QEMU's virtio devices are cache coherent, so the region is mapped cached and no cache
//! maintenance is done; a board with non-coherent DMA would need it (or `cached="false"`).
//!
//! The `Hal` trait has no `self`, so the pool is one static per PD: a PD with two devices shares
//! one DMA region between them.

use core::{cell::UnsafeCell, fmt, ptr::NonNull};

use microkit::region::{ReadWrite, Region};
use virtio_drivers::{BufferDirection, Hal, PhysAddr, PAGE_SIZE};

/// Most pages a pool manages (8 MiB); a larger region is used up to this size.
pub const MAX_PAGES: usize = 2048;
const WORDS: usize = MAX_PAGES / 64;

/// A first-fit allocator of runs of contiguous pages, as a bitmap (bit set = page in use).
#[derive(Clone)]
pub struct PageBitmap {
    used: [u64; WORDS],
    pages: usize,
}

impl PageBitmap {
    /// `pages` free pages (at most [`MAX_PAGES`]).
    pub const fn new(pages: usize) -> Self {
        Self {
            used: [0; WORDS],
            pages: if pages < MAX_PAGES { pages } else { MAX_PAGES },
        }
    }

    /// Pages managed.
    pub fn pages(&self) -> usize {
        self.pages
    }

    fn is_used(&self, page: usize) -> bool {
        self.used[page / 64] & (1 << (page % 64)) != 0
    }

    fn set(&mut self, first: usize, count: usize, used: bool) {
        for page in first..first + count {
            let bit = 1u64 << (page % 64);
            if used {
                self.used[page / 64] |= bit;
            } else {
                self.used[page / 64] &= !bit;
            }
        }
    }

    /// Pages not in use.
    pub fn free_pages(&self) -> usize {
        (0..self.pages).filter(|&p| !self.is_used(p)).count()
    }

    /// Takes the lowest run of `count` free pages; returns its first page.
    pub fn alloc(&mut self, count: usize) -> Option<usize> {
        if count == 0 || count > self.pages {
            return None;
        }
        let mut run_start = 0;
        let mut run_len = 0;
        for page in 0..self.pages {
            if self.is_used(page) {
                run_len = 0;
                run_start = page + 1;
            } else {
                run_len += 1;
                if run_len == count {
                    self.set(run_start, count, true);
                    return Some(run_start);
                }
            }
        }
        None
    }

    /// Returns `count` pages from `first`; `false` (and nothing freed) if any is out of range or
    /// not in use, which means a caller's bookkeeping is wrong.
    pub fn free(&mut self, first: usize, count: usize) -> bool {
        let Some(end) = first.checked_add(count) else {
            return false;
        };
        if end > self.pages || !(first..end).all(|p| self.is_used(p)) {
            return false;
        }
        self.set(first, count, false);
        true
    }
}

impl fmt::Debug for PageBitmap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PageBitmap")
            .field("pages", &self.pages)
            .field("free", &self.free_pages())
            .finish()
    }
}

/// Why the DMA pool could not be set up or used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DmaError {
    /// The region's declaration names no `paddr` symbol, or system.xml set none.
    NoPhysicalAddress,
    /// The region or its physical address is not page aligned, or smaller than a page.
    BadRegion,
    /// [`init`] was already called in this PD.
    AlreadyInitialised,
    /// [`init`] was not called before a device was created.
    NotInitialised,
    /// Not enough contiguous free pages.
    Exhausted,
}

impl fmt::Display for DmaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NoPhysicalAddress => "DMA region has no physical address (setvar region_paddr)",
            Self::BadRegion => "DMA region is not page aligned or too small",
            Self::AlreadyInitialised => "DMA pool already initialised",
            Self::NotInitialised => "DMA pool not initialised",
            Self::Exhausted => "DMA region exhausted",
        })
    }
}

struct PoolState {
    vaddr: usize,
    paddr: u64,
    len: usize,
    pages: PageBitmap,
}

/// A DMA pool: the region's two addresses and its page allocator. [`DmaHal`] uses the PD's one
/// static pool; tests make their own.
pub struct DmaPool {
    busy: core::sync::atomic::AtomicBool,
    state: UnsafeCell<Option<PoolState>>,
}

// SAFETY: `state` is only reached inside `with`, which holds `busy`; the memory it names is only
// written through pointers derived from it while `busy` is held or by the device.
unsafe impl Sync for DmaPool {}

impl Default for DmaPool {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for DmaPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DmaPool")
            .field("free_pages", &self.free_pages())
            .finish()
    }
}

/// A run of pages from the pool: both addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DmaPages {
    /// The device's address of the first byte.
    pub paddr: u64,
    /// This PD's address of the first byte.
    pub vaddr: NonNull<u8>,
    /// Pages.
    pub pages: usize,
}

impl DmaPool {
    /// An empty pool; [`set_region`](Self::set_region) gives it memory.
    pub const fn new() -> Self {
        Self {
            busy: core::sync::atomic::AtomicBool::new(false),
            state: UnsafeCell::new(None),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut Option<PoolState>) -> R) -> Option<R> {
        use core::sync::atomic::Ordering;
        if self.busy.swap(true, Ordering::Acquire) {
            return None;
        }
        // SAFETY: `busy` is held: no other reference to the state exists until it is released.
        let r = f(unsafe { &mut *self.state.get() });
        self.busy.store(false, Ordering::Release);
        Some(r)
    }

    /// Gives the pool the region (once).
    pub fn set_region(&self, region: &Region<ReadWrite>) -> Result<(), DmaError> {
        let paddr = region.paddr().ok_or(DmaError::NoPhysicalAddress)?;
        let vaddr = region.as_ptr() as usize;
        let pages = region.len() / PAGE_SIZE;
        if paddr == 0
            || !paddr.is_multiple_of(PAGE_SIZE as u64)
            || !vaddr.is_multiple_of(PAGE_SIZE)
            || pages == 0
        {
            return Err(DmaError::BadRegion);
        }
        self.with(|state| match state {
            Some(_) => Err(DmaError::AlreadyInitialised),
            None => {
                *state = Some(PoolState {
                    vaddr,
                    paddr,
                    len: pages.min(MAX_PAGES) * PAGE_SIZE,
                    pages: PageBitmap::new(pages),
                });
                Ok(())
            }
        })
        .unwrap_or(Err(DmaError::AlreadyInitialised))
    }

    /// Free pages (0 before [`set_region`](Self::set_region)).
    pub fn free_pages(&self) -> usize {
        self.with(|s| s.as_ref().map_or(0, |s| s.pages.free_pages()))
            .unwrap_or(0)
    }

    /// Takes `pages` zeroed contiguous pages.
    pub fn alloc(&self, pages: usize) -> Result<DmaPages, DmaError> {
        self.with(|state| {
            let s = state.as_mut().ok_or(DmaError::NotInitialised)?;
            let first = s.pages.alloc(pages).ok_or(DmaError::Exhausted)?;
            let offset = first * PAGE_SIZE;
            let vaddr = (s.vaddr + offset) as *mut u8;
            // SAFETY: the pages lie inside the region (the bitmap covers `len` bytes of it), are
            // mapped read-write in this PD, and were free: nothing else uses them.
            unsafe { vaddr.write_bytes(0, pages * PAGE_SIZE) };
            Ok(DmaPages {
                paddr: s.paddr + offset as u64,
                vaddr: NonNull::new(vaddr).ok_or(DmaError::BadRegion)?,
                pages,
            })
        })
        .unwrap_or(Err(DmaError::Exhausted))
    }

    /// Returns pages taken by [`alloc`](Self::alloc); `false` if they were not (a bug).
    pub fn free(&self, paddr: u64, pages: usize) -> bool {
        self.with(|state| {
            let Some(s) = state.as_mut() else {
                return false;
            };
            let Some(offset) = paddr.checked_sub(s.paddr) else {
                return false;
            };
            offset.is_multiple_of(PAGE_SIZE as u64)
                && s.pages.free((offset / PAGE_SIZE as u64) as usize, pages)
        })
        .unwrap_or(false)
    }

    /// The device address of `len` bytes at `vaddr`, if they lie wholly inside the region.
    pub fn paddr_of(&self, vaddr: usize, len: usize) -> Option<u64> {
        self.with(|state| {
            let s = state.as_ref()?;
            let offset = vaddr.checked_sub(s.vaddr)?;
            (offset.checked_add(len)? <= s.len).then_some(s.paddr + offset as u64)
        })
        .flatten()
    }

    /// This PD's address of a device address inside the region.
    pub fn vaddr_of(&self, paddr: u64) -> Option<usize> {
        self.with(|state| {
            let s = state.as_ref()?;
            let offset = usize::try_from(paddr.checked_sub(s.paddr)?).ok()?;
            (offset < s.len).then_some(s.vaddr + offset)
        })
        .flatten()
    }

    /// [`Hal::share`]: the device address for `buffer`, bounce-buffered if it lies outside the
    /// region.
    ///
    /// # Safety
    /// `buffer` is valid for reads (and writes, unless `DriverToDevice`) and not accessed by
    /// anyone else until the matching [`unshare`](Self::unshare).
    pub unsafe fn share(
        &self,
        buffer: NonNull<[u8]>,
        direction: BufferDirection,
    ) -> Result<u64, DmaError> {
        let (addr, len) = (buffer.cast::<u8>().as_ptr() as usize, buffer.len());
        if let Some(paddr) = self.paddr_of(addr, len) {
            return Ok(paddr);
        }
        let bounce = self.alloc(len.div_ceil(PAGE_SIZE).max(1))?;
        if direction != BufferDirection::DeviceToDriver {
            // SAFETY: the caller vouches for `buffer` (readable for `len` bytes); the bounce
            // pages are fresh, at least `len` bytes, and cannot overlap a buffer outside the
            // region.
            unsafe {
                core::ptr::copy_nonoverlapping(
                    buffer.cast::<u8>().as_ptr(),
                    bounce.vaddr.as_ptr(),
                    len,
                )
            };
        }
        Ok(bounce.paddr)
    }

    /// [`Hal::unshare`]: copies a bounce buffer back (if the device may have written it) and
    /// frees it.
    ///
    /// # Safety
    /// As [`share`](Self::share); `paddr` is what `share` returned for this `buffer`.
    pub unsafe fn unshare(
        &self,
        paddr: u64,
        buffer: NonNull<[u8]>,
        direction: BufferDirection,
    ) -> Result<(), DmaError> {
        let (addr, len) = (buffer.cast::<u8>().as_ptr() as usize, buffer.len());
        if self.paddr_of(addr, len).is_some() {
            return Ok(()); // passed through, not bounced
        }
        let bounce = self.vaddr_of(paddr).ok_or(DmaError::BadRegion)?;
        if direction != BufferDirection::DriverToDevice {
            // SAFETY: `bounce` holds `len` bytes (allocated by `share` for this buffer), and the
            // caller vouches that `buffer` is writable and unaliased.
            unsafe {
                core::ptr::copy_nonoverlapping(
                    bounce as *const u8,
                    buffer.cast::<u8>().as_ptr(),
                    len,
                )
            };
        }
        if self.free(paddr, len.div_ceil(PAGE_SIZE).max(1)) {
            Ok(())
        } else {
            Err(DmaError::BadRegion)
        }
    }
}

/// The PD's pool, behind [`DmaHal`].
static POOL: DmaPool = DmaPool::new();

/// Gives the PD's DMA region to the driver layer. Call once, in `init`, before creating a
/// device: the region must carry its physical address (`paddr = "..."` in `memory_region!`,
/// `<setvar region_paddr>` in system.xml).
pub fn init(region: &Region<ReadWrite>) -> Result<(), DmaError> {
    POOL.set_region(region)
}

/// The PD's pool (for drivers that stage data in DMA memory, and for statistics).
pub fn pool() -> &'static DmaPool {
    &POOL
}

/// The [`virtio_drivers::Hal`] over the PD's DMA region (see the module documentation).
#[derive(Debug)]
pub enum DmaHal {}

#[allow(clippy::panic)] // The Hal trait has no error path for these; see each call site.
#[track_caller]
fn fatal(what: fmt::Arguments<'_>) -> ! {
    panic!("DMA: {what}")
}

// SAFETY: `dma_alloc` returns zeroed, page-aligned pages of the region, valid and unaliased until
// `dma_dealloc` (the bitmap never hands a page out twice); `share` returns a device address
// covering the buffer (inside the region) or a bounce copy of it; `unshare` copies back.
unsafe impl Hal for DmaHal {
    fn dma_alloc(pages: usize, _direction: BufferDirection) -> (PhysAddr, NonNull<u8>) {
        match POOL.alloc(pages) {
            Ok(p) => (p.paddr, p.vaddr),
            // virtio-drivers turns a zero physical address into `Error::DmaError`.
            Err(_) => (0, NonNull::dangling()),
        }
    }

    unsafe fn dma_dealloc(paddr: PhysAddr, _vaddr: NonNull<u8>, pages: usize) -> i32 {
        if POOL.free(paddr, pages) {
            0
        } else {
            -1
        }
    }

    unsafe fn mmio_phys_to_virt(paddr: PhysAddr, size: usize) -> NonNull<u8> {
        // Only the PCI transport asks this (for BARs); on seL4 device memory is mapped by the
        // tool, not at run time, so there is nothing to return. Unreachable with MMIO.
        fatal(format_args!(
            "cannot map MMIO at {paddr:#x} (+{size:#x}) at run time"
        ))
    }

    unsafe fn share(buffer: NonNull<[u8]>, direction: BufferDirection) -> PhysAddr {
        // SAFETY: forwarded from the caller of `share`.
        match unsafe { POOL.share(buffer, direction) } {
            Ok(paddr) => paddr,
            // No error path exists: a device handed a bad address would corrupt memory or the
            // request. Drivers here keep buffers small (bounded chunks) and size the region so
            // this cannot happen; if it does, stop the PD with the reason.
            Err(e) => fatal(format_args!(
                "cannot share {} bytes: {e} ({} pages free)",
                buffer.len(),
                POOL.free_pages()
            )),
        }
    }

    unsafe fn unshare(paddr: PhysAddr, buffer: NonNull<[u8]>, direction: BufferDirection) {
        // SAFETY: forwarded from the caller of `unshare`.
        if let Err(e) = unsafe { POOL.unshare(paddr, buffer, direction) } {
            fatal(format_args!("cannot unshare {paddr:#x}: {e}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::rc::Rc;

    use microkit::host::{set_backend, HostMemory, RegionsOnly};

    use super::*;

    #[test]
    fn bitmap_first_fit_runs() {
        let mut b = PageBitmap::new(8);
        assert_eq!(b.alloc(3), Some(0));
        assert_eq!(b.alloc(2), Some(3));
        assert_eq!(b.free_pages(), 3);
        assert!(b.free(0, 3));
        assert_eq!(b.alloc(4), None, "0..3 and 5..8 are free, no run of 4");
        assert_eq!(b.alloc(3), Some(0));
        assert_eq!(b.alloc(3), Some(5));
        assert_eq!(b.alloc(1), None);
        assert_eq!(b.alloc(0), None);
        assert!(!b.free(7, 2), "out of range");
        assert!(b.free(3, 2));
        assert!(!b.free(3, 1), "double free is refused");
        assert!(!b.free(usize::MAX, 2));
        assert_eq!(PageBitmap::new(MAX_PAGES + 10).pages(), MAX_PAGES);
        let mut big = PageBitmap::new(MAX_PAGES);
        assert_eq!(big.alloc(MAX_PAGES), Some(0));
        assert_eq!(big.free_pages(), 0);
        assert_eq!(format!("{big:?}"), "PageBitmap { pages: 2048, free: 0 }");
    }

    microkit::memory_region! {
        static DMA: ReadWrite(
            vaddr = "dma_vaddr", size = "dma_size", min_len = 0x1000, paddr = "dma_paddr"
        );
        static NO_PADDR: ReadWrite(vaddr = "dma_vaddr", size = "dma_size", min_len = 0x1000);
    }

    /// A pool over 4 pages of host memory at "physical" 0x4000_0000.
    fn pool() -> (DmaPool, HostMemory) {
        let mem = HostMemory::new(4 * PAGE_SIZE).with_paddr(0x4000_0000);
        set_backend(Some(Rc::new(RegionsOnly::new(
            "dma",
            &[("dma_vaddr", mem.clone())],
        ))));
        let pool = DmaPool::new();
        pool.set_region(&DMA.get().unwrap()).unwrap();
        (pool, mem)
    }

    #[test]
    fn pool_maps_by_offset_and_zeroes() {
        let (pool, mem) = pool();
        let region = DMA.get().unwrap();
        let base = region.as_ptr() as usize;
        assert_eq!(pool.free_pages(), 4);
        mem.write(PAGE_SIZE, &[0xff; 16]).unwrap();
        pool.alloc(1).unwrap();
        let p = pool.alloc(2).unwrap();
        assert_eq!(p.paddr, 0x4000_1000);
        assert_eq!(p.vaddr.as_ptr() as usize, base + PAGE_SIZE);
        let mut b = [1; 16];
        mem.read(PAGE_SIZE, &mut b).unwrap();
        assert_eq!(b, [0; 16], "allocated pages are zeroed");
        assert_eq!(pool.alloc(2), Err(DmaError::Exhausted));
        assert_eq!(pool.paddr_of(base + 10, 100), Some(0x4000_000a));
        assert_eq!(pool.paddr_of(base + 4 * PAGE_SIZE - 1, 2), None);
        assert_eq!(pool.paddr_of(base - 1, 1), None);
        assert_eq!(pool.vaddr_of(0x4000_3000), Some(base + 3 * PAGE_SIZE));
        assert_eq!(pool.vaddr_of(0x4000_4000), None);
        assert!(pool.free(p.paddr, 2));
        assert!(!pool.free(p.paddr, 2));
        assert!(!pool.free(0x3fff_f000, 1));
        assert_eq!(pool.set_region(&region), Err(DmaError::AlreadyInitialised));
        set_backend(None);
    }

    #[test]
    fn share_bounces_outside_buffers_and_copies_back() {
        let (pool, mem) = pool();
        let mut buf = *b"request header..";
        let ptr = NonNull::from(&mut buf[..]);
        // Driver to device: copied in, not back.
        // SAFETY (test): `buf` outlives the share and is not touched meanwhile.
        let paddr = unsafe { pool.share(ptr, BufferDirection::DriverToDevice) }.unwrap();
        let mut seen = [0; 16];
        mem.read((paddr - 0x4000_0000) as usize, &mut seen).unwrap();
        assert_eq!(&seen, b"request header..");
        assert_eq!(pool.free_pages(), 3);
        // SAFETY (test): as above.
        unsafe { pool.unshare(paddr, ptr, BufferDirection::DriverToDevice) }.unwrap();
        assert_eq!(pool.free_pages(), 4);

        // Device to driver: the "device" writes the bounce page, unshare copies it back.
        let mut out = [0u8; 5000];
        let ptr = NonNull::from(&mut out[..]);
        // SAFETY (test): as above.
        let paddr = unsafe { pool.share(ptr, BufferDirection::DeviceToDriver) }.unwrap();
        assert_eq!(pool.free_pages(), 2, "5000 bytes take two pages");
        mem.write((paddr - 0x4000_0000) as usize + 4990, b"0123456789")
            .unwrap();
        // SAFETY (test): as above.
        unsafe { pool.unshare(paddr, ptr, BufferDirection::DeviceToDriver) }.unwrap();
        assert_eq!(&out[4990..], b"0123456789");
        assert_eq!(pool.free_pages(), 4);

        // A buffer inside the region passes through by address, nothing is allocated.
        let page = pool.alloc(1).unwrap();
        let inside = NonNull::slice_from_raw_parts(page.vaddr, 64);
        // SAFETY (test): pool memory, unaliased.
        assert_eq!(
            unsafe { pool.share(inside, BufferDirection::Both) },
            Ok(page.paddr)
        );
        assert_eq!(pool.free_pages(), 3);
        // SAFETY (test): as above.
        unsafe { pool.unshare(page.paddr, inside, BufferDirection::Both) }.unwrap();
        assert_eq!(pool.free_pages(), 3);

        // Too big to bounce: an error (the Hal turns it into a stop).
        let mut huge = vec![0u8; 4 * PAGE_SIZE];
        let ptr = NonNull::from(&mut huge[..]);
        // SAFETY (test): as above.
        assert_eq!(
            unsafe { pool.share(ptr, BufferDirection::Both) },
            Err(DmaError::Exhausted)
        );
        set_backend(None);
    }

    #[test]
    fn region_must_have_a_physical_address() {
        let mem = HostMemory::new(PAGE_SIZE);
        set_backend(Some(Rc::new(RegionsOnly::new(
            "dma",
            &[("dma_vaddr", mem)],
        ))));
        let pool = DmaPool::new();
        assert_eq!(
            pool.set_region(&NO_PADDR.get().unwrap()),
            Err(DmaError::NoPhysicalAddress)
        );
        assert_eq!(pool.alloc(1), Err(DmaError::NotInitialised));
        assert_eq!(pool.free_pages(), 0);
        set_backend(None);
    }
}

//! Typed memory regions: the `<map>`s system.xml gives a PD, reached by copy, never by reference.
//!
//! Microkit maps a memory region into a PD at a virtual address it writes into an 8-byte symbol
//! the PD names with `setvar_vaddr` (and its size into one named with `setvar_size`). A PD crate
//! declares such a region with [`memory_region!`](crate::memory_region), which defines both
//! symbols, and gets a [`Region`] from the declaration at start-up with
//! [`RegionDecl::get`], which checks the size the tool wrote against the size the code needs.
//!
//! # Why copies
//! A peer PD (or a device) may change a shared region at any time, so the runtime never hands out
//! `&T` or `&[u8]` into one: the compiler would be entitled to assume the bytes do not change
//! under it. Access is a bounds-checked volatile copy in ([`Region::read`]) or out
//! ([`Region::write`]), plus aligned 64-bit words ([`Region::read_u64`], [`Region::write_u64`])
//! that are single-copy atomic on aarch64, with acquire/release flavours for indices that publish
//! data (write the data, then the index with release; read the index with acquire, then the
//! data). What a copy returns is untrusted input: validate it after copying, never before.
//!
//! A [`Region<ReadOnly>`] has no write methods: map the region `perms="r"` in system.xml too, so
//! the kernel enforces what the type says.
//!
//! # Host backend
//! Off seL4 there is no tool to patch symbols: [`RegionDecl::get`] asks the thread's
//! [`host::Backend`](crate::host::Backend) for the region by its `setvar_vaddr` symbol name
//! ([`memory_region`](crate::host::Backend::memory_region)), and the backend answers with a
//! [`HostMemory`](crate::host::HostMemory): host memory the simulator allocates once per
//! `<memory_region>` and hands to every PD that maps it, so two PDs sharing a region see each
//! other's writes exactly as on seL4. The same PD code runs on both.

use core::{fmt, marker::PhantomData};

#[cfg(not(all(target_os = "none", target_arch = "aarch64")))]
use crate::host::HostMemory;

/// Read-only access (the region is mapped `perms="r"`).
#[derive(Debug, Clone, Copy)]
pub enum ReadOnly {}

/// Read-write access (the region is mapped `perms="rw"`).
#[derive(Debug, Clone, Copy)]
pub enum ReadWrite {}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::ReadOnly {}
    impl Sealed for super::ReadWrite {}
}

/// [`ReadOnly`] or [`ReadWrite`].
pub trait Access: sealed::Sealed {
    /// Whether the access allows writes.
    const WRITABLE: bool;
}

impl Access for ReadOnly {
    const WRITABLE: bool = false;
}

impl Access for ReadWrite {
    const WRITABLE: bool = true;
}

/// Why a region could not be obtained or accessed. Closed; a peer can only cause
/// [`OutOfBounds`](Self::OutOfBounds) or [`Misaligned`](Self::Misaligned) (by sending an offset
/// the PD then uses), every other variant is a build or set-up mistake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegionError {
    /// The `setvar_vaddr` symbol is zero: system.xml maps no region with that `setvar_vaddr` into
    /// this PD (on the host: the backend has no region of that name).
    NotMapped {
        /// The `setvar_vaddr` symbol.
        symbol: &'static str,
    },
    /// The region is smaller than the code needs.
    TooSmall {
        /// The `setvar_vaddr` symbol.
        symbol: &'static str,
        /// The size system.xml gave it (`setvar_size`).
        size: usize,
        /// The size the code declared it needs.
        min_len: usize,
    },
    /// The virtual address the tool wrote is not page aligned (never happens with a real tool).
    BadAddress {
        /// The `setvar_vaddr` symbol.
        symbol: &'static str,
        /// The address.
        vaddr: u64,
    },
    /// An access reaching past the end of the region.
    OutOfBounds {
        /// First byte of the access.
        offset: usize,
        /// Bytes accessed.
        len: usize,
        /// The region's size.
        region_len: usize,
    },
    /// A word access at an offset that is not a multiple of the word size.
    Misaligned {
        /// The offset.
        offset: usize,
    },
}

impl fmt::Display for RegionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::NotMapped { symbol } => write!(f, "region `{symbol}` is not mapped"),
            Self::TooSmall {
                symbol,
                size,
                min_len,
            } => write!(
                f,
                "region `{symbol}` is {size:#x} bytes, the code needs {min_len:#x}"
            ),
            Self::BadAddress { symbol, vaddr } => {
                write!(f, "region `{symbol}` at unaligned address {vaddr:#x}")
            }
            Self::OutOfBounds {
                offset,
                len,
                region_len,
            } => write!(
                f,
                "access of {len} bytes at offset {offset:#x} outside a region of {region_len:#x}"
            ),
            Self::Misaligned { offset } => write!(f, "misaligned word access at {offset:#x}"),
        }
    }
}

/// An 8-byte symbol the microkit tool patches (`setvar_vaddr`, `setvar_size`, `<setvar
/// region_paddr>`). Zero until patched; read volatile, so the compiler never folds the zero in.
///
/// Declared by [`memory_region!`](crate::memory_region), not by hand.
#[repr(transparent)]
pub struct SetVar(core::cell::UnsafeCell<u64>);

// SAFETY: the value is written only by the tool, in the ELF file, before the PD runs; at run
// time it is only ever read, so sharing it between threads cannot race.
unsafe impl Sync for SetVar {}

impl SetVar {
    /// An unpatched symbol.
    pub const fn new() -> Self {
        Self(core::cell::UnsafeCell::new(0))
    }

    /// The value the tool wrote (0 if it wrote none).
    pub fn get(&self) -> u64 {
        // SAFETY: the pointer comes from a live `UnsafeCell<u64>`, aligned; nothing writes it
        // at run time (see the `Sync` impl), so a volatile read is a plain read of what the
        // image holds.
        unsafe { core::ptr::read_volatile(self.0.get()) }
    }
}

impl Default for SetVar {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for SetVar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SetVar({:#x})", self.get())
    }
}

/// A region as a PD crate declares it with [`memory_region!`](crate::memory_region): the names
/// of its symbols, the size the code needs, and (on seL4) the symbols themselves.
pub struct RegionDecl<A: Access> {
    vaddr_symbol: &'static str,
    min_len: usize,
    vaddr: &'static SetVar,
    size: &'static SetVar,
    paddr: Option<&'static SetVar>,
    _access: PhantomData<A>,
}

impl<A: Access> RegionDecl<A> {
    /// Used by [`memory_region!`](crate::memory_region).
    #[doc(hidden)]
    pub const fn new(
        vaddr_symbol: &'static str,
        min_len: usize,
        vaddr: &'static SetVar,
        size: &'static SetVar,
        paddr: Option<&'static SetVar>,
    ) -> Self {
        Self {
            vaddr_symbol,
            min_len,
            vaddr,
            size,
            paddr,
            _access: PhantomData,
        }
    }

    /// The `setvar_vaddr` symbol name (the region's key in the host backend).
    pub const fn symbol(&self) -> &'static str {
        self.vaddr_symbol
    }

    /// The size the code declared it needs.
    pub const fn min_len(&self) -> usize {
        self.min_len
    }

    /// The region, checked: mapped, page aligned, at least [`min_len`](Self::min_len) bytes.
    /// Its length is the size system.xml gives it. Call it in `init` and keep the result; a
    /// second call returns a handle to the same memory.
    pub fn get(&self) -> Result<Region<A>, RegionError> {
        let symbol = self.vaddr_symbol;
        let (mem, size, paddr) = self.locate()?;
        if size < self.min_len {
            return Err(RegionError::TooSmall {
                symbol,
                size,
                min_len: self.min_len,
            });
        }
        Ok(Region {
            mem,
            len: size,
            paddr,
            _access: PhantomData,
        })
    }

    #[cfg(all(target_os = "none", target_arch = "aarch64"))]
    fn locate(&self) -> Result<(Memory, usize, Option<u64>), RegionError> {
        let symbol = self.vaddr_symbol;
        let vaddr = self.vaddr.get();
        if vaddr == 0 {
            return Err(RegionError::NotMapped { symbol });
        }
        if !vaddr.is_multiple_of(4096) {
            return Err(RegionError::BadAddress { symbol, vaddr });
        }
        let size = usize::try_from(self.size.get()).unwrap_or(0);
        let paddr = self.paddr.map(SetVar::get);
        Ok((
            Memory {
                base: vaddr as usize,
            },
            size,
            paddr,
        ))
    }

    #[cfg(not(all(target_os = "none", target_arch = "aarch64")))]
    fn locate(&self) -> Result<(Memory, usize, Option<u64>), RegionError> {
        // The symbols are never patched on the host; the backend provides the memory instead.
        let _ = (self.vaddr, self.size, self.paddr);
        let symbol = self.vaddr_symbol;
        match crate::host::memory_region(symbol) {
            Some(host) => {
                let size = host.len();
                let paddr = host.paddr();
                Ok((Memory { host }, size, paddr))
            }
            None => Err(RegionError::NotMapped { symbol }),
        }
    }
}

impl<A: Access> fmt::Debug for RegionDecl<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegionDecl")
            .field("symbol", &self.vaddr_symbol)
            .field("min_len", &self.min_len)
            .field("writable", &A::WRITABLE)
            .finish()
    }
}

/// Where a region's bytes are: an address on seL4, host memory off it.
#[derive(Clone)]
struct Memory {
    #[cfg(all(target_os = "none", target_arch = "aarch64"))]
    base: usize,
    #[cfg(not(all(target_os = "none", target_arch = "aarch64")))]
    host: HostMemory,
}

#[cfg(all(target_os = "none", target_arch = "aarch64"))]
impl Memory {
    fn as_ptr(&self) -> *mut u8 {
        self.base as *mut u8
    }

    /// Volatile copy of `buf.len()` bytes at `offset` into `buf` (bounds checked by the caller).
    fn read(&self, offset: usize, buf: &mut [u8]) {
        let src = self.base + offset;
        for (i, b) in buf.iter_mut().enumerate() {
            // SAFETY: `offset + buf.len()` <= the region's size (checked by the caller), and the
            // tool maps the region's whole size readable at `base`; a volatile byte read has no
            // alignment requirement and creates no reference to memory a peer may change.
            *b = unsafe { core::ptr::read_volatile((src + i) as *const u8) };
        }
    }

    /// Volatile copy of `buf` to `offset` (bounds checked by the caller; region writable).
    fn write(&self, offset: usize, buf: &[u8]) {
        let dst = self.base + offset;
        for (i, b) in buf.iter().enumerate() {
            // SAFETY: as in `read`, and only `Region<ReadWrite>` calls this, whose declaration
            // promises a `perms="rw"` mapping.
            unsafe { core::ptr::write_volatile((dst + i) as *mut u8, *b) };
        }
    }

    fn read_u64(&self, offset: usize) -> u64 {
        // SAFETY: in bounds and 8-byte aligned (checked by the caller; `base` is page aligned);
        // an aligned 64-bit load is single-copy atomic on aarch64.
        unsafe { core::ptr::read_volatile((self.base + offset) as *const u64) }
    }

    fn write_u64(&self, offset: usize, value: u64) {
        // SAFETY: as in `read_u64`, on a writable region.
        unsafe { core::ptr::write_volatile((self.base + offset) as *mut u64, value) }
    }
}

#[cfg(not(all(target_os = "none", target_arch = "aarch64")))]
impl Memory {
    fn as_ptr(&self) -> *mut u8 {
        self.host.as_ptr()
    }
    fn read(&self, offset: usize, buf: &mut [u8]) {
        self.host.read_unchecked(offset, buf)
    }
    fn write(&self, offset: usize, buf: &[u8]) {
        self.host.write_unchecked(offset, buf)
    }
    fn read_u64(&self, offset: usize) -> u64 {
        let mut b = [0; 8];
        self.host.read_unchecked(offset, &mut b);
        u64::from_ne_bytes(b)
    }
    fn write_u64(&self, offset: usize, value: u64) {
        self.host.write_unchecked(offset, &value.to_ne_bytes())
    }
}

/// A mapped memory region: bounds-checked volatile copies in and out, never references.
///
/// Cheap to clone (an address, or a reference-counted handle on the host); clones access the
/// same memory.
#[derive(Clone)]
pub struct Region<A: Access> {
    mem: Memory,
    len: usize,
    paddr: Option<u64>,
    _access: PhantomData<A>,
}

impl<A: Access> fmt::Debug for Region<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Region")
            .field("addr", &self.mem.as_ptr())
            .field("len", &self.len)
            .field("paddr", &self.paddr)
            .field("writable", &A::WRITABLE)
            .finish()
    }
}

impl<A: Access> Region<A> {
    /// Size in bytes (`setvar_size`).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the region has no bytes (never, for a region the tool mapped).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Its physical address, if the declaration names a `<setvar region_paddr>` symbol.
    pub fn paddr(&self) -> Option<u64> {
        self.paddr
    }

    /// The first byte's address in this PD. Obtaining it is safe; using it is for drivers that
    /// hand the region to a device, under their own `unsafe` and its justification.
    pub fn as_ptr(&self) -> *mut u8 {
        self.mem.as_ptr()
    }

    fn check(&self, offset: usize, len: usize) -> Result<(), RegionError> {
        match offset.checked_add(len) {
            Some(end) if end <= self.len => Ok(()),
            _ => Err(RegionError::OutOfBounds {
                offset,
                len,
                region_len: self.len,
            }),
        }
    }

    fn check_word(&self, offset: usize) -> Result<(), RegionError> {
        self.check(offset, 8)?;
        if !offset.is_multiple_of(8) {
            return Err(RegionError::Misaligned { offset });
        }
        Ok(())
    }

    /// Copies `buf.len()` bytes at `offset` into `buf`.
    pub fn read(&self, offset: usize, buf: &mut [u8]) -> Result<(), RegionError> {
        self.check(offset, buf.len())?;
        self.mem.read(offset, buf);
        Ok(())
    }

    /// The native-endian (little-endian on aarch64) 64-bit word at `offset` (a multiple of 8).
    pub fn read_u64(&self, offset: usize) -> Result<u64, RegionError> {
        self.check_word(offset)?;
        Ok(self.mem.read_u64(offset))
    }

    /// [`read_u64`](Self::read_u64), ordered before every later read: read a peer's published
    /// index with this, then the data it covers.
    pub fn read_u64_acquire(&self, offset: usize) -> Result<u64, RegionError> {
        let v = self.read_u64(offset)?;
        core::sync::atomic::fence(core::sync::atomic::Ordering::Acquire);
        Ok(v)
    }
}

impl Region<ReadWrite> {
    /// Copies `buf` to `offset`.
    pub fn write(&self, offset: usize, buf: &[u8]) -> Result<(), RegionError> {
        self.check(offset, buf.len())?;
        self.mem.write(offset, buf);
        Ok(())
    }

    /// Writes a native-endian 64-bit word at `offset` (a multiple of 8).
    pub fn write_u64(&self, offset: usize, value: u64) -> Result<(), RegionError> {
        self.check_word(offset)?;
        self.mem.write_u64(offset, value);
        Ok(())
    }

    /// [`write_u64`](Self::write_u64), ordered after every earlier write: write the data, then
    /// publish the index that covers it with this.
    pub fn write_u64_release(&self, offset: usize, value: u64) -> Result<(), RegionError> {
        self.check_word(offset)?;
        core::sync::atomic::fence(core::sync::atomic::Ordering::Release);
        self.mem.write_u64(offset, value);
        Ok(())
    }

    /// Sets `len` bytes at `offset` to `byte`.
    pub fn fill(&self, offset: usize, len: usize, byte: u8) -> Result<(), RegionError> {
        self.check(offset, len)?;
        let chunk = [byte; 64];
        let mut done = 0;
        while done < len {
            let n = (len - done).min(chunk.len());
            self.mem.write(offset + done, &chunk[..n]);
            done += n;
        }
        Ok(())
    }

    /// The same region, read-only (to hand to code that must not write it).
    pub fn read_only(&self) -> Region<ReadOnly> {
        Region {
            mem: self.mem.clone(),
            len: self.len,
            paddr: self.paddr,
            _access: PhantomData,
        }
    }
}

/// Declare a memory region a PD maps, in the PD's crate (which may stay
/// `#![forbid(unsafe_code)]`):
///
/// ```ignore
/// microkit::memory_region! {
///     /// Requests from wire (system.xml: `<map mr="wire_req" ... perms="r"
///     /// setvar_vaddr="wire_req_vaddr" setvar_size="wire_req_size"/>`).
///     pub static WIRE_REQ: ReadOnly(vaddr = "wire_req_vaddr", size = "wire_req_size",
///                                   min_len = 0x1000);
///     /// A DMA region, whose physical address system.xml states once
///     /// (`<setvar symbol="blk_dma_paddr" region_paddr="blk_dma"/>`).
///     pub static DMA: ReadWrite(vaddr = "blk_dma_vaddr", size = "blk_dma_size",
///                               min_len = 0x10000, paddr = "blk_dma_paddr");
/// }
/// // in init:
/// let req = WIRE_REQ.get()?; // a Region<ReadOnly>
/// ```
///
/// On seL4 this defines the 8-byte symbols the tool patches (it refuses images that lack one
/// system.xml names); on the host it defines none and [`RegionDecl::get`] asks the backend.
/// The symbol names must match system.xml; `min_len` is checked against `setvar_size` when the
/// region is obtained.
#[macro_export]
macro_rules! memory_region {
    ($(
        $(#[$meta:meta])*
        $vis:vis static $name:ident : $access:ident (
            vaddr = $vaddr:literal, size = $size:literal, min_len = $min:expr
            $(, paddr = $paddr:literal)? $(,)?
        );
    )+) => {$(
        $(#[$meta])*
        $vis static $name: $crate::region::RegionDecl<$crate::region::$access> = {
            #[cfg_attr(all(target_os = "none", target_arch = "aarch64"), export_name = $vaddr)]
            #[cfg_attr(all(target_os = "none", target_arch = "aarch64"), used)]
            static VADDR: $crate::region::SetVar = $crate::region::SetVar::new();
            #[cfg_attr(all(target_os = "none", target_arch = "aarch64"), export_name = $size)]
            #[cfg_attr(all(target_os = "none", target_arch = "aarch64"), used)]
            static SIZE: $crate::region::SetVar = $crate::region::SetVar::new();
            $crate::region::RegionDecl::new(
                $vaddr,
                $min,
                &VADDR,
                &SIZE,
                $crate::__region_paddr!($($paddr)?),
            )
        };
    )+};
}

#[doc(hidden)]
#[macro_export]
macro_rules! __region_paddr {
    () => {
        ::core::option::Option::None
    };
    ($paddr:literal) => {{
        #[cfg_attr(all(target_os = "none", target_arch = "aarch64"), export_name = $paddr)]
        #[cfg_attr(all(target_os = "none", target_arch = "aarch64"), used)]
        static PADDR: $crate::region::SetVar = $crate::region::SetVar::new();
        ::core::option::Option::Some(&PADDR)
    }};
}

#[cfg(test)]
mod tests {
    use std::rc::Rc;

    use super::*;
    use crate::host::{set_backend, HostMemory, RegionsOnly};

    crate::memory_region! {
        static SHARED: ReadWrite(vaddr = "shared_vaddr", size = "shared_size", min_len = 0x1000);
        static SHARED_RO: ReadOnly(vaddr = "shared_vaddr", size = "shared_size", min_len = 64,);
        static BIG: ReadWrite(vaddr = "big_vaddr", size = "big_size", min_len = 0x2000);
        static DMA: ReadWrite(
            vaddr = "dma_vaddr", size = "dma_size", min_len = 0x1000, paddr = "dma_paddr"
        );
        static ABSENT: ReadOnly(vaddr = "absent_vaddr", size = "absent_size", min_len = 1);
    }

    /// A PD whose system.xml maps `shared` (and `big`, too small, and a DMA region).
    struct Pd {
        shared: HostMemory,
        dma: HostMemory,
    }

    fn install() -> Rc<Pd> {
        let pd = Rc::new(Pd {
            shared: HostMemory::new(0x1000),
            dma: HostMemory::new(0x1000).with_paddr(0x5000_0000),
        });
        set_backend(Some(Rc::new(RegionsOnly::new(
            "pd",
            &[
                ("shared_vaddr", pd.shared.clone()),
                ("big_vaddr", HostMemory::new(0x1000)),
                ("dma_vaddr", pd.dma.clone()),
            ],
        ))));
        pd
    }

    #[test]
    fn copies_in_and_out_with_bounds_checks() {
        let pd = install();
        let r = SHARED.get().unwrap();
        assert_eq!(r.len(), 0x1000);
        assert!(!r.is_empty());
        assert_eq!(r.paddr(), None);
        r.write(10, b"hello").unwrap();
        let mut buf = [0; 5];
        r.read(10, &mut buf).unwrap();
        assert_eq!(&buf, b"hello");
        // The simulator sees the bytes the PD wrote (and a peer mapping the same memory would).
        let mut seen = [0; 5];
        pd.shared.read(10, &mut seen).unwrap();
        assert_eq!(&seen, b"hello");

        assert_eq!(r.write(0xffe, b"abc"), Err(oob(0xffe, 3)));
        assert_eq!(r.read(0x1000, &mut [0; 1]), Err(oob(0x1000, 1)));
        assert_eq!(r.read(usize::MAX, &mut [0; 2]), Err(oob(usize::MAX, 2)));
        // Empty accesses at the end are in bounds; past it they are not.
        r.read(0x1000, &mut []).unwrap();
        assert_eq!(r.write(0x1001, &[]), Err(oob(0x1001, 0)));
        r.fill(0xff0, 16, 0xaa).unwrap();
        let mut tail = [0; 16];
        r.read(0xff0, &mut tail).unwrap();
        assert_eq!(tail, [0xaa; 16]);
        assert_eq!(r.fill(0xff0, 17, 0), Err(oob(0xff0, 17)));
        set_backend(None);
    }

    fn oob(offset: usize, len: usize) -> RegionError {
        RegionError::OutOfBounds {
            offset,
            len,
            region_len: 0x1000,
        }
    }

    #[test]
    fn words_are_aligned_and_shared_between_views() {
        let pd = install();
        let rw = SHARED.get().unwrap();
        let ro = SHARED_RO.get().unwrap();
        rw.write_u64(8, 0x0102_0304_0506_0708).unwrap();
        assert_eq!(ro.read_u64(8).unwrap(), 0x0102_0304_0506_0708);
        rw.write_u64_release(0xff8, 7).unwrap();
        assert_eq!(ro.read_u64_acquire(0xff8).unwrap(), 7);
        assert_eq!(rw.read_only().read_u64(0xff8).unwrap(), 7);
        assert_eq!(
            rw.write_u64(4, 1),
            Err(RegionError::Misaligned { offset: 4 })
        );
        assert_eq!(ro.read_u64(0x1000), Err(oob(0x1000, 8)));
        // A peer (here the simulator) changes the memory: the next read sees it.
        pd.shared.write(8, &9u64.to_ne_bytes()).unwrap();
        assert_eq!(ro.read_u64(8).unwrap(), 9);
        set_backend(None);
    }

    #[test]
    fn size_and_mapping_are_checked() {
        let _pd = install();
        assert_eq!(
            BIG.get().unwrap_err(),
            RegionError::TooSmall {
                symbol: "big_vaddr",
                size: 0x1000,
                min_len: 0x2000
            }
        );
        assert_eq!(
            ABSENT.get().unwrap_err(),
            RegionError::NotMapped {
                symbol: "absent_vaddr"
            }
        );
        assert_eq!(DMA.get().unwrap().paddr(), Some(0x5000_0000));
        assert_eq!(SHARED.symbol(), "shared_vaddr");
        assert_eq!(SHARED.min_len(), 0x1000);
        set_backend(None);
        // No backend: nothing is mapped.
        assert!(matches!(SHARED.get(), Err(RegionError::NotMapped { .. })));
        assert_eq!(
            BIG.get().unwrap_err().to_string(),
            "region `big_vaddr` is not mapped"
        );
    }

    #[test]
    fn errors_display() {
        assert_eq!(
            oob(4, 8).to_string(),
            "access of 8 bytes at offset 0x4 outside a region of 0x1000"
        );
        let e = RegionError::TooSmall {
            symbol: "x",
            size: 0x1000,
            min_len: 0x2000,
        };
        assert_eq!(
            e.to_string(),
            "region `x` is 0x1000 bytes, the code needs 0x2000"
        );
        assert_eq!(SetVar::new().get(), 0);
        assert_eq!(format!("{:?}", SetVar::default()), "SetVar(0x0)");
    }
}

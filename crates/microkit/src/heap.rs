//! A bounded heap for PDs that use `alloc`: a `#[global_allocator]` over a memory region
//! system.xml maps into the PD (its size stated once, there) or over a static arena.
//!
//! The allocator is `linked_list_allocator`'s first-fit [`Heap`](linked_list_allocator::Heap)
//! (a small, long-maintained `no_std` allocator with no dependencies when its `spin` feature is
//! off), initialised on the first allocation and guarded by a flag rather than a spin lock: a PD
//! has one thread, so the only way to find the heap busy is re-entrancy (an allocation from
//! inside the allocator), which is answered with a failed allocation instead of a deadlock.
//!
//! # When memory runs out
//! A failed allocation prints `<pd>|ERROR: heap: <size> bytes (align <a>) do not fit: <used> of
//! <total> bytes in use` and returns null, as [`GlobalAlloc`] requires. Fallible users
//! (`try_reserve`) carry on; everyone else reaches `alloc::alloc::handle_alloc_error`, whose
//! `no_std` default panics (`memory allocation of <n> bytes failed`), and the runtime's panic
//! handler prints that with the PD's name and stops the PD with a fault the monitor reports.
//! Nothing continues past an allocation it did not get.
//!
//! # Declaring it
//! ```ignore
//! // system.xml, the size stated once:
//! //   <memory_region name="ledger_heap" size="0x100000" />
//! //   <map mr="ledger_heap" vaddr="0x2000000" perms="rw"
//! //        setvar_vaddr="heap_vaddr" setvar_size="heap_size" />
//! microkit::heap!(vaddr = "heap_vaddr", size = "heap_size");
//! // or, with no region: a static arena in the PD's .bss
//! microkit::heap!(arena = 256 * 1024);
//! ```
//! On the host the macro expands to nothing: a PD's logic runs on std's allocator there.

use core::{
    alloc::{GlobalAlloc, Layout},
    cell::UnsafeCell,
    fmt::{self, Write as _},
    ptr::{self, NonNull},
    sync::atomic::{AtomicBool, Ordering},
};

use crate::region::{ReadWrite, RegionDecl};

/// Smallest heap accepted: room for the allocator's bookkeeping and a few allocations.
pub const MIN_HEAP: usize = 256;

/// A static arena of `N` bytes for [`Heap::from_arena`] (declared by [`heap!`](crate::heap)).
#[repr(C, align(4096))]
pub struct HeapArena<const N: usize>(UnsafeCell<[u8; N]>);

// SAFETY: the arena is only ever reached through the raw pointer `Heap::from_arena` takes, and
// the `Heap` serialises every access to it.
unsafe impl<const N: usize> Sync for HeapArena<N> {}

impl<const N: usize> HeapArena<N> {
    /// A zeroed arena (in `.bss`).
    pub const fn new() -> Self {
        Self(UnsafeCell::new([0; N]))
    }
}

impl<const N: usize> Default for HeapArena<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> fmt::Debug for HeapArena<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HeapArena<{N}>")
    }
}

/// Where the heap's memory comes from.
enum Source {
    Arena { base: *mut u8, len: usize },
    Region(&'static RegionDecl<ReadWrite>),
}

struct State {
    heap: linked_list_allocator::Heap,
    /// `None` before the first allocation; then whether initialisation succeeded.
    ready: Option<bool>,
}

/// The allocator: declare it with [`heap!`](crate::heap).
pub struct Heap {
    busy: AtomicBool,
    source: Source,
    state: UnsafeCell<State>,
}

// SAFETY: every access to `state` (and through it to the memory `source` names) happens with
// `busy` held (see `Heap::with`), so at most one thread touches them at a time; `source` is
// immutable after construction.
unsafe impl Sync for Heap {}

/// What the heap holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeapStats {
    /// Bytes the heap manages (0 before the first allocation).
    pub size: usize,
    /// Bytes allocated (rounded as the allocator rounds them).
    pub used: usize,
}

impl Heap {
    /// A heap over a static arena (`heap!(arena = N)`).
    pub const fn from_arena<const N: usize>(arena: &'static HeapArena<N>) -> Self {
        Self::new(Source::Arena {
            base: arena.0.get() as *mut u8,
            len: N,
        })
    }

    /// A heap over a region system.xml maps into the PD (`heap!(vaddr = .., size = ..)`); the
    /// region is obtained (and its size checked against [`MIN_HEAP`]) on the first allocation.
    pub const fn from_region(region: &'static RegionDecl<ReadWrite>) -> Self {
        Self::new(Source::Region(region))
    }

    /// A heap over `len` bytes at `base`.
    ///
    /// # Safety
    /// `base..base + len` must be valid for reads and writes for the rest of the program and
    /// used by nothing but this heap.
    pub const unsafe fn from_raw(base: *mut u8, len: usize) -> Self {
        Self::new(Source::Arena { base, len })
    }

    const fn new(source: Source) -> Self {
        Self {
            busy: AtomicBool::new(false),
            source,
            state: UnsafeCell::new(State {
                heap: linked_list_allocator::Heap::empty(),
                ready: None,
            }),
        }
    }

    /// Bytes managed and in use.
    pub fn stats(&self) -> HeapStats {
        self.with(|state| HeapStats {
            size: state.heap.size(),
            used: state.heap.used(),
        })
        .unwrap_or(HeapStats { size: 0, used: 0 })
    }

    /// Runs `f` with the state, or returns `None` if the heap is busy (re-entrancy).
    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> Option<R> {
        if self.busy.swap(true, Ordering::Acquire) {
            return None;
        }
        // SAFETY: `busy` was false and is now true: no other `&mut State` exists until it is
        // released below.
        let r = f(unsafe { &mut *self.state.get() });
        self.busy.store(false, Ordering::Release);
        Some(r)
    }

    /// Initialises the allocator on first use; whether it is usable.
    fn ready(&self, state: &mut State) -> bool {
        if let Some(ready) = state.ready {
            return ready;
        }
        let (base, len) = match &self.source {
            Source::Arena { base, len } => (*base, *len),
            Source::Region(decl) => match decl.get() {
                Ok(region) => (region.as_ptr(), region.len()),
                Err(e) => {
                    report(format_args!("heap region: {e}"));
                    state.ready = Some(false);
                    return false;
                }
            },
        };
        if len < MIN_HEAP || base.is_null() {
            report(format_args!("heap of {len} bytes is below {MIN_HEAP}"));
            state.ready = Some(false);
            return false;
        }
        // SAFETY: called once (guarded by `ready`), on an empty heap. An arena is a static this
        // heap alone reaches (`from_arena`) or memory the caller of `from_raw` vouched for; a
        // region is mapped read-write for the PD's lifetime by the tool, and system.xml maps a
        // heap region into no other PD (the same memory could only be reached through a second
        // `RegionDecl` of the same symbol, which the PD crate has no reason to declare).
        unsafe { state.heap.init(base, len) };
        state.ready = Some(true);
        true
    }
}

fn report(why: fmt::Arguments<'_>) {
    let _ = writeln!(crate::DebugWriter, "{}|ERROR: {why}", crate::pd_name());
}

// SAFETY: `alloc` returns either null or a block of at least `layout.size()` bytes aligned to
// `layout.align()` that the linked-list heap handed out and will not hand out again until
// `dealloc`; every access to the heap's state is serialised by `with`.
unsafe impl GlobalAlloc for Heap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let got = self.with(|state| {
            if !self.ready(state) {
                return Err((0, 0));
            }
            state
                .heap
                .allocate_first_fit(layout)
                .map_err(|()| (state.heap.used(), state.heap.size()))
        });
        match got {
            Some(Ok(p)) => p.as_ptr(),
            Some(Err((used, size))) => {
                report(format_args!(
                    "heap: {} bytes (align {}) do not fit: {used} of {size} bytes in use",
                    layout.size(),
                    layout.align()
                ));
                ptr::null_mut()
            }
            None => {
                report(format_args!("heap: re-entrant allocation"));
                ptr::null_mut()
            }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let Some(ptr) = NonNull::new(ptr) else {
            return;
        };
        let freed = self.with(|state| {
            // SAFETY: `GlobalAlloc::dealloc`'s contract: `ptr` came from `alloc` of this
            // allocator with this layout and was not freed since.
            unsafe { state.heap.deallocate(ptr, layout) }
        });
        if freed.is_none() {
            // Re-entrant free: leak the block rather than corrupt the free list.
            report(format_args!("heap: re-entrant free leaked"));
        }
    }
}

impl fmt::Debug for Heap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Heap")
            .field("stats", &self.stats())
            .finish()
    }
}

/// Declare the PD's `#[global_allocator]` (once, in the PD's binary crate), over a region
/// system.xml maps (`heap!(vaddr = "heap_vaddr", size = "heap_size")`: the size is whatever
/// system.xml says) or a static arena (`heap!(arena = 65536)`). Nothing on the host.
#[macro_export]
macro_rules! heap {
    (vaddr = $vaddr:literal, size = $size:literal $(,)?) => {
        #[cfg(all(target_os = "none", target_arch = "aarch64"))]
        #[global_allocator]
        static __MICROKIT_HEAP: $crate::heap::Heap = {
            $crate::memory_region! {
                static REGION: ReadWrite(
                    vaddr = $vaddr, size = $size, min_len = $crate::heap::MIN_HEAP
                );
            }
            $crate::heap::Heap::from_region(&REGION)
        };
    };
    (arena = $len:expr $(,)?) => {
        #[cfg(all(target_os = "none", target_arch = "aarch64"))]
        #[global_allocator]
        static __MICROKIT_HEAP: $crate::heap::Heap = {
            static ARENA: $crate::heap::HeapArena<{ $len }> = $crate::heap::HeapArena::new();
            $crate::heap::Heap::from_arena(&ARENA)
        };
    };
}

#[cfg(test)]
mod tests {
    use std::rc::Rc;

    use super::*;
    use crate::host::{set_backend, HostMemory, RegionsOnly};

    fn layout(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).unwrap()
    }

    #[test]
    fn arena_heap_allocates_frees_and_runs_out() {
        static ARENA: HeapArena<4096> = HeapArena::new();
        static HEAP: Heap = Heap::from_arena(&ARENA);
        assert_eq!(HEAP.stats().size, 0, "initialised lazily");
        // SAFETY (test): layouts are non-zero; every block is freed with its layout.
        unsafe {
            let a = HEAP.alloc(layout(100, 8));
            assert!(!a.is_null());
            a.write_bytes(0x5a, 100);
            let b = HEAP.alloc(layout(64, 64));
            assert!(!b.is_null());
            assert_eq!(b as usize % 64, 0);
            assert_eq!(HEAP.stats().size, 4096);
            assert!(HEAP.stats().used >= 164);
            // Too big: null, not UB or a panic.
            assert!(HEAP.alloc(layout(8192, 8)).is_null());
            HEAP.dealloc(a, layout(100, 8));
            HEAP.dealloc(b, layout(64, 64));
            assert_eq!(HEAP.stats().used, 0);
            // All of it is usable again.
            let c = HEAP.alloc(layout(3000, 8));
            assert!(!c.is_null());
            HEAP.dealloc(c, layout(3000, 8));
        }
    }

    #[test]
    fn tiny_arena_is_refused() {
        static ARENA: HeapArena<64> = HeapArena::new();
        static HEAP: Heap = Heap::from_arena(&ARENA);
        // SAFETY (test): a non-zero layout.
        assert!(unsafe { HEAP.alloc(layout(8, 8)) }.is_null());
        assert_eq!(HEAP.stats(), HeapStats { size: 0, used: 0 });
    }

    #[test]
    fn region_heap_takes_its_size_from_the_region() {
        crate::memory_region! {
            static REGION: ReadWrite(vaddr = "heap_vaddr", size = "heap_size", min_len = MIN_HEAP);
        }
        static HEAP: Heap = Heap::from_region(&REGION);
        set_backend(Some(Rc::new(RegionsOnly::new(
            "heapy",
            &[("heap_vaddr", HostMemory::new(0x2000))],
        ))));
        // SAFETY (test): a non-zero layout, freed with it.
        unsafe {
            let p = HEAP.alloc(layout(0x1000, 16));
            assert!(!p.is_null());
            assert_eq!(HEAP.stats().size, 0x2000);
            assert!(HEAP.alloc(layout(0x1800, 16)).is_null());
            HEAP.dealloc(p, layout(0x1000, 16));
        }
        set_backend(None);
    }

    #[test]
    fn unmapped_region_heap_fails_every_allocation() {
        crate::memory_region! {
            static REGION: ReadWrite(vaddr = "nope_vaddr", size = "nope_size", min_len = MIN_HEAP);
        }
        static HEAP: Heap = Heap::from_region(&REGION);
        // SAFETY (test): a non-zero layout.
        unsafe {
            assert!(HEAP.alloc(layout(8, 8)).is_null());
            assert!(HEAP.alloc(layout(8, 8)).is_null());
        }
    }

    #[test]
    fn busy_heap_fails_instead_of_deadlocking() {
        static ARENA: HeapArena<1024> = HeapArena::new();
        static HEAP: Heap = Heap::from_arena(&ARENA);
        let inner = HEAP.with(|_| {
            // SAFETY (test): a non-zero layout.
            unsafe { HEAP.alloc(layout(8, 8)) }
        });
        assert_eq!(inner, Some(ptr::null_mut()));
        assert_eq!(format!("{ARENA:?}"), "HeapArena<1024>");
    }
}

//! Byte arrays a host tool writes into the PD's ELF file after linking, read at run time.
//!
//! The microkit tool patches its own symbols (`microkit_name`, `setvar_*`, see [`region`]); a
//! system may patch more, per PD, without rebuilding: the same ELF copied once per PD, each copy
//! given its own bytes (Totebox gives each tenant's ledger its own signing key this way, see
//! `interface::keys`). Declare the symbol with [`patched_bytes!`](crate::patched_bytes) and an
//! initial value that is **not all zeros**: a zero-initialised static lands in `.bss`, which has
//! no bytes in the file to patch; with a non-zero value it lands in `.data`, a file-backed
//! PT_LOAD segment, at the file offset its section header gives. The symbol keeps its name
//! (`export_name`) and its size (`st_size` = N) in `.symtab`, which the patching tool checks.
//!
//! Like [`SetVar`](crate::region::SetVar), the value is read with a volatile copy, so the
//! compiler never folds in the initial value it saw at build time.
//!
//! [`region`]: crate::region

use core::{cell::UnsafeCell, fmt};

/// `N` bytes patched into the ELF file (declared by [`patched_bytes!`](crate::patched_bytes)).
#[repr(transparent)]
pub struct PatchedBytes<const N: usize>(UnsafeCell<[u8; N]>);

// SAFETY: the bytes are written only in the ELF file, before the PD runs; at run time they are
// only ever read (no method hands out a mutable access), so sharing them cannot race.
unsafe impl<const N: usize> Sync for PatchedBytes<N> {}

impl<const N: usize> PatchedBytes<N> {
    /// The value the ELF holds until a tool patches it (make it non-zero: see the module docs).
    pub const fn new(initial: [u8; N]) -> Self {
        Self(UnsafeCell::new(initial))
    }

    /// The bytes the image holds (patched, or the initial value).
    pub fn get(&self) -> [u8; N] {
        // SAFETY: the pointer comes from a live, aligned `UnsafeCell<[u8; N]>` that nothing
        // writes at run time (see the `Sync` impl); the volatile read makes the compiler read
        // the memory instead of assuming the initial value.
        unsafe { core::ptr::read_volatile(self.0.get()) }
    }

    /// The bytes the image holds copied into the start of `out` (at most `N`, at most
    /// `out.len()`), how many. One byte at a time, so a large slot never goes through the
    /// stack as [`get`](Self::get)'s value does (the PDs' stacks are 64 KiB).
    pub fn read_into(&self, out: &mut [u8]) -> usize {
        let base = self.0.get().cast::<u8>();
        let n = out.len().min(N);
        for (i, b) in out[..n].iter_mut().enumerate() {
            // SAFETY: `i < N`, so `base + i` is inside the live, aligned `[u8; N]` nothing
            // writes at run time (see the `Sync` impl); volatile for the reason `get` is.
            *b = unsafe { core::ptr::read_volatile(base.add(i)) };
        }
        n
    }
}

impl<const N: usize> fmt::Debug for PatchedBytes<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PatchedBytes<{N}>")
    }
}

/// Declares `N` bytes under a fixed symbol name for a host tool to patch in the ELF file:
///
/// ```ignore
/// microkit::patched_bytes! {
///     /// The tenant's signing key (written by `totebox image set-key`).
///     static KEY_SLOT: [u8; 256] = ("totebox_signing_key", interface::keys::EMPTY_SLOT);
/// }
/// let bytes = KEY_SLOT.get();
/// ```
/// On seL4 the static is exported under that name and kept (`#[used]`); on the host it is a
/// plain static holding the initial value (the simulator provides such values another way).
#[macro_export]
macro_rules! patched_bytes {
    ($(
        $(#[$meta:meta])*
        $vis:vis static $name:ident : [u8; $n:expr] = ($symbol:literal, $initial:expr $(,)?);
    )+) => {$(
        $(#[$meta])*
        #[cfg_attr(all(target_os = "none", target_arch = "aarch64"), export_name = $symbol)]
        #[cfg_attr(all(target_os = "none", target_arch = "aarch64"), used)]
        $vis static $name: $crate::patched::PatchedBytes<{ $n }> =
            $crate::patched::PatchedBytes::new($initial);
    )+};
}

#[cfg(test)]
mod tests {
    crate::patched_bytes! {
        static SLOT: [u8; 4] = ("test_slot", *b"abcd");
    }

    #[test]
    fn unpatched_bytes_read_as_declared() {
        assert_eq!(SLOT.get(), *b"abcd");
        assert_eq!(format!("{SLOT:?}"), "PatchedBytes<4>");
    }

    #[test]
    fn read_into_copies_at_most_both_lengths() {
        let mut big = [0u8; 6];
        assert_eq!(SLOT.read_into(&mut big), 4);
        assert_eq!(big, *b"abcd\0\0");
        let mut small = [0u8; 2];
        assert_eq!(SLOT.read_into(&mut small), 2);
        assert_eq!(small, *b"ab");
    }
}

//! Device registers at byte offsets: the one trait every register-level driver here is written
//! against ([`crate::rtc`], [`crate::zynqmp_rtc`], [`crate::cadence_uart`], [`crate::sdhci`]),
//! and its one implementation over a mapped device page ([`Region<ReadWrite>`]), which holds
//! the only `unsafe` these drivers need. Host tests implement the trait for fake devices.
//!
//! Every access returns `None` when the offset is outside the block or not aligned to the
//! access size. A device with 32-bit registers only implements [`Registers::read32`] (and
//! [`Registers::write32`] if it is written); the narrower accesses default to `None`.

use core::mem::size_of;

use microkit::region::{ReadWrite, Region};

/// 8-, 16- and 32-bit device registers at byte offsets.
pub trait Registers {
    /// The 32-bit register at `offset`.
    fn read32(&self, offset: usize) -> Option<u32>;
    /// Writes the 32-bit register at `offset` (default: not writable).
    fn write32(&self, _offset: usize, _value: u32) -> Option<()> {
        None
    }
    /// The 8-bit register at `offset` (default: none).
    fn read8(&self, _offset: usize) -> Option<u8> {
        None
    }
    /// The 16-bit register at `offset` (default: none).
    fn read16(&self, _offset: usize) -> Option<u16> {
        None
    }
    /// Writes the 8-bit register at `offset` (default: none).
    fn write8(&self, _offset: usize, _value: u8) -> Option<()> {
        None
    }
    /// Writes the 16-bit register at `offset` (default: none).
    fn write16(&self, _offset: usize, _value: u16) -> Option<()> {
        None
    }
}

mod word {
    /// A register width: u8, u16 or u32 (alignment equal to size).
    pub trait Word: Copy {}
    impl Word for u8 {}
    impl Word for u16 {}
    impl Word for u32 {}
}

/// The address of a `T` register at `offset`, if it lies inside the region and is aligned.
fn register_ptr<T: word::Word>(region: &Region<ReadWrite>, offset: usize) -> Option<*mut T> {
    let size = size_of::<T>();
    if !offset.is_multiple_of(size) || offset.checked_add(size)? > region.len() {
        return None;
    }
    Some(region.as_ptr().wrapping_add(offset).cast::<T>())
}

fn mmio_read<T: word::Word>(region: &Region<ReadWrite>, offset: usize) -> Option<T> {
    let p = register_ptr::<T>(region, offset)?;
    // SAFETY: `p` lies inside the mapped device region (checked against its length) and is
    // aligned to `T` (the region is page aligned and `offset` a multiple of `T`'s size, which is
    // its alignment: u8, u16 or u32 only). It is device memory the PD maps uncached (system.toml's
    // rule for every device's MMIO); a read may have a side effect on the device (a FIFO or data
    // port pops a word), which is what the driver asks for, and touches no Rust object. Volatile,
    // so every read reaches the device, once, at that width, in program order.
    Some(unsafe { core::ptr::read_volatile(p) })
}

fn mmio_write<T: word::Word>(region: &Region<ReadWrite>, offset: usize, value: T) -> Option<()> {
    let p = register_ptr::<T>(region, offset)?;
    // SAFETY: as in `mmio_read`: in bounds, aligned, mapped read-write device memory that no
    // Rust reference covers (regions are only ever copied in and out); volatile, so the write
    // reaches the device once, at that width, in program order.
    unsafe { core::ptr::write_volatile(p, value) };
    Some(())
}

impl Registers for Region<ReadWrite> {
    fn read32(&self, offset: usize) -> Option<u32> {
        mmio_read(self, offset)
    }
    fn write32(&self, offset: usize, value: u32) -> Option<()> {
        mmio_write(self, offset, value)
    }
    fn read8(&self, offset: usize) -> Option<u8> {
        mmio_read(self, offset)
    }
    fn read16(&self, offset: usize) -> Option<u16> {
        mmio_read(self, offset)
    }
    fn write8(&self, offset: usize, value: u8) -> Option<()> {
        mmio_write(self, offset, value)
    }
    fn write16(&self, offset: usize, value: u16) -> Option<()> {
        mmio_write(self, offset, value)
    }
}

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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::rc::Rc;

    use microkit::host::{set_backend, HostMemory, RegionsOnly};

    use super::Registers;

    microkit::memory_region! {
        static PAGE: ReadWrite(vaddr = "page_vaddr", size = "page_size", min_len = 0x100);
    }

    /// The device-page implementation: every width lands at its offset, little-endian, and
    /// reads back; the last word is in range; past the end, or misaligned, is refused.
    #[test]
    fn region_registers_are_bounded_and_aligned() {
        let mem = HostMemory::new(0x1000);
        set_backend(Some(Rc::new(RegionsOnly::new(
            "mmio",
            &[("page_vaddr", mem.clone())],
        ))));
        let r = PAGE.get().unwrap();
        assert_eq!(r.write32(0x08, 0x1234_5678), Some(()));
        assert_eq!(r.write16(0x0E, 0x1A3A), Some(()));
        assert_eq!(r.write8(0x2F, 0x06), Some(()));
        let mut b = [0u8; 8];
        mem.read(0x08, &mut b).unwrap();
        assert_eq!(b, [0x78, 0x56, 0x34, 0x12, 0, 0, 0x3A, 0x1A]);
        assert_eq!(r.read32(0x08), Some(0x1234_5678));
        assert_eq!(r.read16(0x0E), Some(0x1A3A));
        assert_eq!(r.read8(0x2F), Some(0x06));
        assert_eq!(r.read32(0x0FFC), Some(0));
        assert_eq!(r.read32(0x1000), None);
        assert_eq!(r.write32(0x1000, 1), None);
        assert_eq!(r.read8(0x1000), None);
        assert_eq!(r.read16(0x0FFF), None, "misaligned and past the end");
        assert_eq!(r.read32(0x02), None);
        assert_eq!(r.write16(0x01, 0), None);
        assert_eq!(r.write32(usize::MAX - 1, 0), None);
        assert_eq!(r.read32(usize::MAX - 1), None);
        set_backend(None);
    }

    /// A device with 32-bit registers only implements those; the narrow accesses are `None`.
    #[test]
    fn narrow_accesses_default_to_none() {
        struct Word;
        impl Registers for Word {
            fn read32(&self, _: usize) -> Option<u32> {
                Some(7)
            }
        }
        assert_eq!(Word.read32(0), Some(7));
        assert_eq!(Word.write32(0, 1), None);
        assert_eq!(Word.read8(0), None);
        assert_eq!(Word.read16(0), None);
        assert_eq!(Word.write8(0, 1), None);
        assert_eq!(Word.write16(0, 1), None);
    }
}

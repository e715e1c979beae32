//! Device drivers for Totebox protection domains: virtio-mmio block and console devices on
//! QEMU `virt`, over a DMA region system.xml declares.
//!
//! The device protocols (virtqueues, feature negotiation, request formats) come from the
//! `virtio-drivers` crate; this crate supplies what seL4 Microkit needs around them:
//! - [`dma`]: the [`Hal`](virtio_drivers::Hal) over one physically contiguous memory region
//!   (phys/virt by offset, page allocation, bounce buffers for memory outside the region);
//! - [`mmio`]: device registers at byte offsets, the one trait the register-level drivers use
//!   and its one implementation over a mapped device page;
//! - [`transport`]: the virtio-mmio transport in a mapped device page, checked against the
//!   device type the driver expects;
//! - [`blk`]: a [`psdb::BlockDevice`] with a real flush, by polling;
//! - [`console`]: a non-blocking byte stream with IRQ acknowledgement;
//! - [`counter`]: the generic timer's counter, for measuring;
//! - [`rtc`]: the PL031 real-time clock (the audit PD's clock on QEMU `virt`), read only;
//! - [`zynqmp_rtc`]: the Zynq UltraScale+ real-time clock (the audit PD's clock on the ZCU102),
//!   read only;
//! - [`cadence_uart`]: the Cadence UART of the Zynq UltraScale+ (the ZCU102's serial ports, for
//!   the wire on that board): interrupt-driven receive, bounded polled transmit, no DMA;
//! - [`sdhci`]: an SD card behind an SD host controller (the ZCU102's Arasan SD1), a
//!   [`psdb::BlockDevice`] by polled PIO, for boards without virtio.
//!
//! A driver PD (see `examples/virtio-smoke`):
//! ```ignore
//! microkit::memory_region! {
//!     static DISK_MMIO: ReadWrite(vaddr = "disk_mmio_vaddr", size = "disk_mmio_size",
//!                                 min_len = 0x1000);
//!     static DMA: ReadWrite(vaddr = "dma_vaddr", size = "dma_size", min_len = 0x10000,
//!                           paddr = "dma_paddr");
//! }
//! microkit::heap!(vaddr = "heap_vaddr", size = "heap_size");
//!
//! fn init() -> Pd {
//!     drivers::dma::init(&DMA.get()?)?;
//!     let transport = drivers::transport::probe(&DISK_MMIO.get()?,
//!         drivers::transport::qemu_virt_offset(8), DeviceType::Block)?;
//!     let disk = drivers::blk::VirtioBlock::new(transport)?;
//!     ...
//! }
//! ```
//!
//! With `crates/microkit`, this is the only crate allowed `unsafe`; each block says why it holds.

#![cfg_attr(not(test), no_std)]

pub mod blk;
pub mod cadence_uart;
pub mod console;
pub mod counter;
pub mod dma;
pub mod mmio;
pub mod rtc;
pub mod sdhci;
pub mod transport;
pub mod zynqmp_rtc;

pub use virtio_drivers::{transport::DeviceType, Error as VirtioError};

/// The sectors `len` bytes at `lba` cover, if they are whole sectors on a device of `sectors`
/// (the request check of every [`psdb::BlockDevice`] here: [`blk`], [`sdhci`]).
pub(crate) fn sectors(sectors: u64, lba: u64, len: usize) -> Result<u64, psdb::IoError> {
    let size = psdb::SECTOR_SIZE;
    if !len.is_multiple_of(size) {
        return Err(psdb::IoError::Misaligned);
    }
    let n = (len / size) as u64;
    match lba.checked_add(n) {
        Some(end) if end <= sectors => Ok(n),
        _ => Err(psdb::IoError::OutOfRange),
    }
}

//! The **psdb** PD's seL4 image: PSDB on the virtio-blk disk (virtio-mmio bus 8), serving
//! [`interface::psdb_call`] to the ledgers and audit ([`psdb_pd::PsdbPd`]).
//!
//! The logic (namespaces by channel, every length checked) is the library, tested on the host
//! and run by the simulator; this file only owns the device. The driver
//! ([`drivers::blk::VirtioBlock`]) negotiates `VIRTIO_BLK_F_FLUSH` and sends a real flush for
//! every [`psdb::BlockDevice::flush`], so an acknowledged checkpoint is on the image file. I/O is
//! polled inside the protected call (psdb is passive and the highest-priority PD).
//!
//! A blank disk (first sector zero) is formatted; anything else is mounted, discarding an
//! incomplete tail left by a crash. A disk that cannot be mounted leaves the PD answering every
//! call `NotServing` ([`interface::msg::Image`]) after an `|ERROR:` line, so the ledgers fail
//! their requests cleanly instead of the whole system stopping.

#![cfg_attr(target_os = "none", no_std, no_main)]
#![forbid(unsafe_code)]

use drivers::{
    blk::VirtioBlock,
    transport::{probe, qemu_virt_offset},
    DeviceType,
};
use interface::msg::Image;
use microkit::debug_println;
use psdb_pd::PsdbPd;

microkit::memory_region! {
    /// The page of virtio-mmio transports 8..15 (bus 8 at 0x0a00_1000), uncached.
    static DISK_MMIO: ReadWrite(vaddr = "mmio_vaddr", size = "mmio_size", min_len = 0x1000);
    /// The disk's DMA memory, at a fixed physical address (system.xml `disk_dma`).
    static DMA: ReadWrite(
        vaddr = "dma_vaddr", size = "dma_size", min_len = 0x40000, paddr = "dma_paddr"
    );
}

// PSDB's staged batch, one object and its index (system.xml `heap_psdb`; the index budget is
// derived from psdb_pd::HEAP_BYTES, which a test checks against system.xml).
microkit::heap!(vaddr = "heap_vaddr", size = "heap_size");

/// The virtio-mmio bus the disk is pinned to (`bus=virtio-mmio-bus.8`).
const DISK_BUS: usize = 8;

/// The store, or why there is none: then every call gets `NotServing`.
type PsdbImage = Image<PsdbPd<VirtioBlock>, &'static str>;

fn start() -> Result<PsdbPd<VirtioBlock>, &'static str> {
    let dma = DMA.get().map_err(|_| "DMA region not mapped")?;
    drivers::dma::init(&dma).map_err(|_| "DMA region unusable")?;
    let mmio = DISK_MMIO.get().map_err(|_| "disk MMIO region not mapped")?;
    let transport = probe(&mmio, qemu_virt_offset(DISK_BUS), DeviceType::Block).map_err(|e| {
        debug_println!("psdb|ERROR: {e}");
        "no virtio-blk disk on virtio-mmio bus 8"
    })?;
    let disk = VirtioBlock::new(transport).map_err(|e| {
        debug_println!("psdb|ERROR: {e}");
        "virtio-blk did not start"
    })?;
    let (store, opened) = psdb_pd::open_store(disk).map_err(|e| {
        debug_println!("psdb|ERROR: {e}");
        "cannot format or mount the disk"
    })?;
    psdb_pd::print_opened(&store, &opened);
    psdb_pd::init(store).map_err(|e| {
        debug_println!("psdb|ERROR: {e}");
        "regions or namespaces"
    })
}

fn init() -> PsdbImage {
    let started = start();
    if let Err(why) = &started {
        debug_println!("psdb|ERROR: no store, every call fails: {why}");
    }
    Image::from(started)
}

microkit::protection_domain!(init);

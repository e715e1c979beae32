//! The **psdb** PD's seL4 image: PSDB on the board's disk (system.toml: on QEMU virt the
//! virtio-blk disk on virtio-mmio bus 8, on the ZCU102 the SD card in SD1), serving
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
    sdhci::{Options as SdOptions, SdCard, Sdhci, SpinDelay},
    transport::{probe, qemu_virt_offset},
    DeviceType,
};
use interface::msg::Image;
use microkit::abi::board::{Board, BOARD};
use microkit::debug_println;
use microkit::region::{ReadWrite, Region};
use psdb::{BlockDevice, IoError};
use psdb_pd::PsdbPd;

microkit::memory_region! {
    /// The disk's registers, uncached (system.xml: psdb's first device, `disk`): on QEMU virt
    /// the page of virtio-mmio transports 8..15 (bus 8 at 0x0a00_1000), on the ZCU102 the SD
    /// host controller SD1 (0xff17_0000).
    static DISK_MMIO: ReadWrite(vaddr = "mmio_vaddr", size = "mmio_size", min_len = 0x1000);
    /// The virtio disk's DMA memory (system.xml `disk_dma`, where the tool placed it:
    /// `dma_paddr`); the SD card moves data by programmed I/O and has none.
    static DMA: ReadWrite(
        vaddr = "dma_vaddr", size = "dma_size", min_len = 0x40000, paddr = "dma_paddr"
    );
}

// PSDB's staged batch, one object and its index (system.xml `heap_psdb`; the index budget is
// derived from psdb_pd::HEAP_BYTES, which a test checks against system.xml).
microkit::heap!(vaddr = "heap_vaddr", size = "heap_size");

/// The virtio-mmio bus the disk is pinned to (`bus=virtio-mmio-bus.8`).
const DISK_BUS: usize = 8;

/// The board's disk (system.toml: psdb's `disk`). Both flush for real: virtio-blk sends
/// `VIRTIO_BLK_T_FLUSH`; the SD card's every write returns only once the card has left its
/// busy state and reports itself ready (`drivers::sdhci`, "Durability"), so its flush checks
/// that the card is idle and error-free.
// One Disk per PD, made once: its size is no concern (nothing moves it around).
#[allow(clippy::large_enum_variant)]
enum Disk {
    Virtio(VirtioBlock),
    Sd(SdCard<Region<ReadWrite>, SpinDelay>),
}

impl BlockDevice for Disk {
    fn sector_count(&self) -> u64 {
        match self {
            Disk::Virtio(d) => d.sector_count(),
            Disk::Sd(d) => d.sector_count(),
        }
    }
    fn read(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), IoError> {
        match self {
            Disk::Virtio(d) => d.read(lba, buf),
            Disk::Sd(d) => d.read(lba, buf),
        }
    }
    fn write(&mut self, lba: u64, buf: &[u8]) -> Result<usize, IoError> {
        match self {
            Disk::Virtio(d) => d.write(lba, buf),
            Disk::Sd(d) => d.write(lba, buf),
        }
    }
    fn flush(&mut self) -> Result<(), IoError> {
        match self {
            Disk::Virtio(d) => d.flush(),
            Disk::Sd(d) => d.flush(),
        }
    }
}

/// The store, or why there is none: then every call gets `NotServing`.
type PsdbImage = Image<PsdbPd<Disk>, &'static str>;

fn disk() -> Result<Disk, &'static str> {
    let mmio = DISK_MMIO.get().map_err(|_| "disk MMIO region not mapped")?;
    match BOARD {
        Board::QemuVirtAarch64 => {
            let dma = DMA.get().map_err(|_| "DMA region not mapped")?;
            drivers::dma::init(&dma).map_err(|_| "DMA region unusable")?;
            let transport =
                probe(&mmio, qemu_virt_offset(DISK_BUS), DeviceType::Block).map_err(|e| {
                    debug_println!("psdb|ERROR: {e}");
                    "no virtio-blk disk on virtio-mmio bus 8"
                })?;
            let disk = VirtioBlock::new(transport).map_err(|e| {
                debug_println!("psdb|ERROR: {e}");
                "virtio-blk did not start"
            })?;
            Ok(Disk::Virtio(disk))
        }
        Board::Zcu102 => {
            // Spinning, not the counter: see SpinDelay (the counter traps on this board in QEMU).
            let host = Sdhci::new(mmio, SpinDelay);
            let card = SdCard::init(host, SdOptions::default()).map_err(|e| {
                debug_println!("psdb|ERROR: {e}");
                "no SD card in SD1"
            })?;
            debug_println!(
                "psdb|INFO: SD card in SD1: {} sectors, {} capacity, {} kHz",
                card.sectors(),
                if card.high_capacity() {
                    "high"
                } else {
                    "standard"
                },
                card.clock_hz() / 1000
            );
            Ok(Disk::Sd(card))
        }
    }
}

fn start() -> Result<PsdbPd<Disk>, &'static str> {
    let disk = disk()?;
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

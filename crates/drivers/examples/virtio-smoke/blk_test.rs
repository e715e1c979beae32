//! virtio-blk proof, `blktest` PD: writes a known pattern to the first sectors of the disk,
//! flushes, reads it back, then measures throughput (write+flush and read) and checks that a
//! request past the end is an error, not a panic. Everything happens in `init`; the host then
//! checks the image file after QEMU is killed (README.md).

#![cfg_attr(target_os = "none", no_std, no_main)]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::vec;

use drivers::{
    blk::VirtioBlock,
    counter,
    transport::{probe, qemu_virt_offset},
    DeviceType,
};
use microkit::{debug_println, NullHandler};
use psdb::{BlockDevice, IoError, SECTOR_SIZE};

microkit::memory_region! {
    /// The page of virtio-mmio transports 8..15 (bus 8 at 0x0a00_1000), uncached.
    static DISK_MMIO: ReadWrite(
        vaddr = "disk_mmio_vaddr", size = "disk_mmio_size", min_len = 0x1000
    );
    /// DMA memory at a fixed physical address (system file: `blk_dma`).
    static DMA: ReadWrite(
        vaddr = "dma_vaddr", size = "dma_size", min_len = 0x40000, paddr = "dma_paddr"
    );
}

microkit::heap!(vaddr = "heap_vaddr", size = "heap_size");

/// The virtio-mmio bus the disk is pinned to (`bus=virtio-mmio-bus.8`).
const DISK_BUS: usize = 8;
/// Sectors holding the checked pattern.
const PATTERN_SECTORS: u64 = 64;
/// Where the throughput runs write, and how much.
const BENCH_LBA: u64 = 1024;
const BENCH_BYTES: usize = 8 << 20;
const BENCH_CHUNK: usize = 64 << 10;

/// Sector `lba` of the pattern: the 32-byte line `sector NNNNNN totebox-blk-test.\n`, 16 times
/// (so `printf` can produce the expected bytes on the host).
fn pattern(lba: u64, sector: &mut [u8]) {
    let mut line = *b"sector 000000 totebox-blk-test.\n";
    let mut n = lba;
    for d in line[7..13].iter_mut().rev() {
        *d = b'0' + (n % 10) as u8;
        n /= 10;
    }
    for chunk in sector.chunks_mut(line.len()) {
        chunk.copy_from_slice(&line[..chunk.len()]);
    }
}

fn write_all(disk: &mut VirtioBlock, mut lba: u64, mut buf: &[u8]) -> Result<(), IoError> {
    while !buf.is_empty() {
        let n = disk.write(lba, buf)?;
        if n == 0 {
            return Err(IoError::NoProgress);
        }
        buf = &buf[n * SECTOR_SIZE..];
        lba += n as u64;
    }
    Ok(())
}

fn run() -> Result<(), &'static str> {
    let dma = DMA.get().map_err(|_| "DMA region")?;
    drivers::dma::init(&dma).map_err(|_| "DMA init")?;
    let mmio = DISK_MMIO.get().map_err(|_| "disk MMIO region")?;
    let transport = match probe(&mmio, qemu_virt_offset(DISK_BUS), DeviceType::Block) {
        Ok(t) => t,
        Err(e) => {
            debug_println!("BLK-TEST|ERROR: {e}");
            return Err("no virtio-blk device on bus 8");
        }
    };
    let mut disk = match VirtioBlock::new(transport) {
        Ok(d) => d,
        Err(e) => {
            debug_println!("BLK-TEST|ERROR: {e}");
            return Err("virtio-blk init");
        }
    };
    let sectors = disk.sector_count();
    debug_println!(
        "BLK-TEST|INFO: virtio-blk on bus {DISK_BUS}: {sectors} sectors, flush negotiated"
    );
    let bench_sectors = (BENCH_BYTES / SECTOR_SIZE) as u64;
    if sectors < BENCH_LBA + bench_sectors {
        return Err("disk too small (needs 16 MiB)");
    }

    // 1. The pattern: write, flush, read back.
    let mut data = vec![0u8; PATTERN_SECTORS as usize * SECTOR_SIZE];
    for (lba, sector) in data.chunks_mut(SECTOR_SIZE).enumerate() {
        pattern(lba as u64, sector);
    }
    write_all(&mut disk, 0, &data).map_err(|_| "pattern write")?;
    disk.flush().map_err(|_| "flush")?;
    let mut back = vec![0u8; data.len()];
    disk.read(0, &mut back).map_err(|_| "pattern read")?;
    if back != data {
        return Err("pattern read back differs");
    }
    debug_println!("BLK-TEST|PASS: {PATTERN_SECTORS} sectors written, flushed and read back");

    // 2. Errors, not panics.
    let past_end = disk.read(sectors, &mut [0; SECTOR_SIZE]);
    let misaligned = disk.write(0, &[0; 100]);
    if past_end != Err(IoError::OutOfRange) || misaligned != Err(IoError::Misaligned) {
        return Err("bad requests were not refused");
    }
    debug_println!("BLK-TEST|PASS: out-of-range and misaligned requests refused");

    // 3. Throughput.
    let freq = counter::frequency();
    let chunk = vec![0xa5u8; BENCH_CHUNK];
    let start = counter::ticks();
    let mut lba = BENCH_LBA;
    for _ in 0..BENCH_BYTES / BENCH_CHUNK {
        write_all(&mut disk, lba, &chunk).map_err(|_| "bench write")?;
        lba += (BENCH_CHUNK / SECTOR_SIZE) as u64;
    }
    disk.flush().map_err(|_| "bench flush")?;
    let write_ticks = counter::ticks().wrapping_sub(start);
    let mut rbuf = vec![0u8; BENCH_CHUNK];
    let start = counter::ticks();
    let mut lba = BENCH_LBA;
    for _ in 0..BENCH_BYTES / BENCH_CHUNK {
        disk.read(lba, &mut rbuf).map_err(|_| "bench read")?;
        lba += (BENCH_CHUNK / SECTOR_SIZE) as u64;
    }
    let read_ticks = counter::ticks().wrapping_sub(start);
    if rbuf != chunk {
        return Err("bench read back differs");
    }
    let mb = |ticks| match counter::kb_per_s(BENCH_BYTES as u64, ticks, freq) {
        Some(kb) => (kb / 1000, (kb % 1000) / 10),
        None => (0, 0),
    };
    let (w, wf) = mb(write_ticks);
    let (r, rf) = mb(read_ticks);
    debug_println!(
        "BLK-TEST|INFO: throughput, {} MiB in {} KiB requests: write+flush {w}.{wf:02} MB/s, \
         read {r}.{rf:02} MB/s (counter {freq} Hz)",
        BENCH_BYTES >> 20,
        BENCH_CHUNK >> 10
    );
    Ok(())
}

fn init() -> NullHandler {
    match run() {
        Ok(()) => debug_println!("BLK-TEST|DONE"),
        Err(why) => debug_println!("BLK-TEST|FAIL: {why}"),
    }
    NullHandler::new()
}

microkit::protection_domain!(init);

//! virtio-blk as a [`psdb::BlockDevice`]: 512-byte sectors, read, write, and a real flush.
//!
//! # Completion by polling, not by IRQ
//! psdb's [`BlockDevice`] is synchronous: `read` returns with the data, `flush` returns when the
//! data is durable. It is called from inside psdb's protected-procedure handler, and a Microkit
//! PD that is serving a ppcall cannot wait for its notification (the IRQ) without giving up the
//! reply it owes; psdb is also passive (it runs on its callers' budgets). So the driver disables
//! the device's used-buffer interrupts and spins on the used ring until the request completes.
//! Under QEMU a request completes in microseconds to milliseconds (an `fdatasync` for a flush),
//! which is the time the PD would block anyway. An IRQ path (submit, return to the event loop,
//! complete on the notification) needs an asynchronous storage interface first.
//!
//! # Durability
//! The driver requires `VIRTIO_BLK_F_FLUSH` and sends a real `VIRTIO_BLK_T_FLUSH` for
//! [`BlockDevice::flush`]: QEMU (which offers the feature for every drive) then `fdatasync`s
//! the image file (a no-op only with `cache=unsafe`, which the project never uses). A device
//! without the feature, or a read-only one, is refused at start-up with an error: psdb's
//! durability contract could not be kept.
//!
//! # Buffers
//! Data moves through a staging buffer the driver owns in the DMA region ([`CHUNK_SECTORS`]
//! sectors), so requests never depend on bounce allocations of the caller's buffer size; a write
//! longer than a chunk is a short write (the contract lets `write` write leading sectors only).

use core::fmt;

use psdb::{BlockDevice, IoError, SECTOR_SIZE};
use virtio_drivers::{
    device::blk::VirtIOBlk,
    transport::{mmio::MmioTransport, Transport},
    PAGE_SIZE,
};

use crate::dma::{self, DmaError, DmaHal, DmaPages};

/// Sectors moved per request (64 KiB).
pub const CHUNK_SECTORS: usize = 128;
const CHUNK_BYTES: usize = CHUNK_SECTORS * SECTOR_SIZE;

/// Feature bit `VIRTIO_BLK_F_FLUSH` (virtio 1.2, 5.2.3).
const VIRTIO_BLK_F_FLUSH: u64 = 1 << 9;

/// Why the block device could not be started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockInitError {
    /// The device does not offer `VIRTIO_BLK_F_FLUSH`: writes could never be made durable.
    NoFlush,
    /// The device is read-only.
    ReadOnly,
    /// Device initialisation failed (virtqueue set-up, DMA).
    Virtio(virtio_drivers::Error),
    /// No room for the staging buffer in the DMA region.
    Dma(DmaError),
}

impl fmt::Display for BlockInitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoFlush => f.write_str("virtio-blk: device offers no flush (VIRTIO_BLK_F_FLUSH)"),
            Self::ReadOnly => f.write_str("virtio-blk: device is read-only"),
            Self::Virtio(e) => write!(f, "virtio-blk: {e}"),
            Self::Dma(e) => write!(f, "virtio-blk: staging buffer: {e}"),
        }
    }
}

/// A virtio-blk device driven by polling (see the module documentation).
pub struct VirtioBlock {
    dev: VirtIOBlk<DmaHal, MmioTransport<'static>>,
    sectors: u64,
    staging: Staging,
    last_error: Option<virtio_drivers::Error>,
}

impl fmt::Debug for VirtioBlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VirtioBlock")
            .field("sectors", &self.sectors)
            .field("last_error", &self.last_error)
            .finish()
    }
}

impl VirtioBlock {
    /// Starts the device behind `transport` (from [`crate::transport::probe`] with
    /// `DeviceType::Block`), after [`dma::init`].
    pub fn new(mut transport: MmioTransport<'static>) -> Result<Self, BlockInitError> {
        if transport.read_device_features() & VIRTIO_BLK_F_FLUSH == 0 {
            return Err(BlockInitError::NoFlush);
        }
        let mut dev = VirtIOBlk::<DmaHal, _>::new(transport).map_err(BlockInitError::Virtio)?;
        if dev.readonly() {
            return Err(BlockInitError::ReadOnly);
        }
        dev.disable_interrupts();
        let staging = dma::pool()
            .alloc(CHUNK_BYTES.div_ceil(PAGE_SIZE))
            .map_err(BlockInitError::Dma)?;
        Ok(Self {
            sectors: dev.capacity(),
            dev,
            staging: Staging(staging),
            last_error: None,
        })
    }

    /// The device's last error, for diagnostics (an I/O error reaches psdb as
    /// [`IoError::Failed`]).
    pub fn last_error(&self) -> Option<virtio_drivers::Error> {
        self.last_error
    }

    fn failed(&mut self, e: virtio_drivers::Error) -> IoError {
        self.last_error = Some(e);
        IoError::Failed
    }
}

/// DMA pages only this driver uses, to move data to and from the device.
struct Staging(DmaPages);

impl Staging {
    /// The first `len` bytes (at most a chunk).
    fn buf(&mut self, len: usize) -> &mut [u8] {
        let len = len.min(CHUNK_BYTES);
        // SAFETY: the pages were allocated from the DMA pool for this driver alone and are
        // freed only when it is dropped; they hold at least CHUNK_BYTES, mapped read-write. The
        // device touches them only during a request the driver issues and waits for, while the
        // `&mut self` borrow makes this slice the only reference.
        unsafe { core::slice::from_raw_parts_mut(self.0.vaddr.as_ptr(), len) }
    }
}

use crate::sectors as check;

fn block_id(lba: u64) -> Result<usize, IoError> {
    usize::try_from(lba).map_err(|_| IoError::OutOfRange)
}

impl BlockDevice for VirtioBlock {
    fn sector_count(&self) -> u64 {
        self.sectors
    }

    fn read(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), IoError> {
        check(self.sectors, lba, buf.len())?;
        let mut lba = lba;
        for chunk in buf.chunks_mut(CHUNK_BYTES) {
            let id = block_id(lba)?;
            let staging = self.staging.buf(chunk.len());
            if let Err(e) = self.dev.read_blocks(id, staging) {
                return Err(self.failed(e));
            }
            chunk.copy_from_slice(staging);
            lba += (chunk.len() / SECTOR_SIZE) as u64;
        }
        Ok(())
    }

    fn write(&mut self, lba: u64, buf: &[u8]) -> Result<usize, IoError> {
        check(self.sectors, lba, buf.len())?;
        // One chunk per call: a short write, which the contract allows and psdb continues.
        let chunk = &buf[..buf.len().min(CHUNK_BYTES)];
        if chunk.is_empty() {
            return Ok(0);
        }
        let id = block_id(lba)?;
        let staging = self.staging.buf(chunk.len());
        staging.copy_from_slice(chunk);
        match self.dev.write_blocks(id, staging) {
            Ok(()) => Ok(chunk.len() / SECTOR_SIZE),
            Err(e) => Err(self.failed(e)),
        }
    }

    fn flush(&mut self) -> Result<(), IoError> {
        match self.dev.flush() {
            Ok(()) => Ok(()),
            Err(e) => Err(self.failed(e)),
        }
    }
}

impl Drop for VirtioBlock {
    fn drop(&mut self) {
        // No request is in flight (every one is waited for), so the device no longer touches
        // the staging pages: they go back to the pool. `dev` then resets its queue.
        let _ = dma::pool().free(self.staging.0.paddr, self.staging.0.pages);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_whole_sectors_on_the_device() {
        assert_eq!(check(100, 0, 512), Ok(1));
        assert_eq!(check(100, 99, 512), Ok(1));
        assert_eq!(check(100, 0, 0), Ok(0));
        assert_eq!(check(100, 100, 512), Err(IoError::OutOfRange));
        assert_eq!(check(100, 99, 1024), Err(IoError::OutOfRange));
        assert_eq!(check(100, u64::MAX, 512), Err(IoError::OutOfRange));
        assert_eq!(check(100, 0, 100), Err(IoError::Misaligned));
        assert_eq!(block_id(7), Ok(7));
    }

    #[test]
    fn errors_display() {
        assert_eq!(
            BlockInitError::NoFlush.to_string(),
            "virtio-blk: device offers no flush (VIRTIO_BLK_F_FLUSH)"
        );
        assert_eq!(
            BlockInitError::Dma(DmaError::Exhausted).to_string(),
            "virtio-blk: staging buffer: DMA region exhausted"
        );
    }
}

//! The block device PSDB stores its tar stream on, and the RAM device every test uses.
//!
//! A device is an array of 512-byte sectors, the tar block size and the virtio-blk sector size, so
//! one tar block is one sector and a torn write can only ever tear within a tar block.

use alloc::vec;
use alloc::vec::Vec;

/// Bytes in a sector (and in a tar block).
pub const SECTOR_SIZE: usize = 512;

/// Why a device operation failed. Closed, explicit discriminants from 1 (see style.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum IoError {
    /// The device reported a failure; what reached the medium is unknown.
    Failed = 1,
    /// The request reached past the last sector.
    OutOfRange = 2,
    /// A buffer that is not a whole number of sectors.
    Misaligned = 3,
    /// A write that made no progress (zero sectors written without an error).
    NoProgress = 4,
}

impl core::fmt::Display for IoError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            IoError::Failed => "device I/O failed",
            IoError::OutOfRange => "request beyond the end of the device",
            IoError::Misaligned => "buffer is not a whole number of sectors",
            IoError::NoProgress => "device wrote nothing",
        })
    }
}

/// A raw block device: virtio-blk inside the image, a file or RAM on the host.
///
/// # Contract
///
/// - Buffers are whole sectors; `lba` counts sectors.
/// - `write` may write fewer sectors than asked (a short write): it returns how many leading
///   sectors it wrote, and the caller writes the rest. Writes are volatile until `flush`.
/// - `flush` is a barrier: when it returns `Ok`, every write issued before it is durable.
///   Writes not yet flushed may reach the medium in any order, partially, or not at all, and a
///   sector being written during a power loss may be torn (part old bytes, part new).
/// - After an error nothing is known about what reached the medium.
pub trait BlockDevice {
    /// Number of sectors.
    fn sector_count(&self) -> u64;
    /// Reads whole sectors starting at `lba` into `buf`.
    fn read(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), IoError>;
    /// Writes leading sectors of `buf` at `lba`; returns how many sectors were written (>= 1).
    fn write(&mut self, lba: u64, buf: &[u8]) -> Result<usize, IoError>;
    /// Makes every earlier write durable.
    fn flush(&mut self) -> Result<(), IoError>;
}

impl<D: BlockDevice + ?Sized> BlockDevice for &mut D {
    fn sector_count(&self) -> u64 {
        (**self).sector_count()
    }
    fn read(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), IoError> {
        (**self).read(lba, buf)
    }
    fn write(&mut self, lba: u64, buf: &[u8]) -> Result<usize, IoError> {
        (**self).write(lba, buf)
    }
    fn flush(&mut self) -> Result<(), IoError> {
        (**self).flush()
    }
}

/// Checks a request against a device of `sectors` sectors; returns the byte range.
pub(crate) fn check_range(sectors: u64, lba: u64, len: usize) -> Result<(usize, usize), IoError> {
    if !len.is_multiple_of(SECTOR_SIZE) {
        return Err(IoError::Misaligned);
    }
    let n = (len / SECTOR_SIZE) as u64;
    match lba.checked_add(n) {
        Some(end) if end <= sectors => {
            let start = usize::try_from(lba).map_err(|_| IoError::OutOfRange)? * SECTOR_SIZE;
            Ok((start, start + len))
        }
        _ => Err(IoError::OutOfRange),
    }
}

/// Writes all of `buf`, continuing after short writes.
pub(crate) fn write_all<D: BlockDevice + ?Sized>(
    dev: &mut D,
    mut lba: u64,
    mut buf: &[u8],
) -> Result<(), IoError> {
    while !buf.is_empty() {
        let n = dev.write(lba, buf)?;
        let bytes = n.checked_mul(SECTOR_SIZE).ok_or(IoError::NoProgress)?;
        if n == 0 || bytes > buf.len() {
            return Err(IoError::NoProgress);
        }
        buf = &buf[bytes..];
        lba += n as u64;
    }
    Ok(())
}

/// A device in memory: what tests, the fuzzer and the simulator use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RamDevice {
    data: Vec<u8>,
}

impl RamDevice {
    /// A zeroed device of `sectors` sectors.
    pub fn new(sectors: u64) -> Self {
        let len = usize::try_from(sectors)
            .unwrap_or(0)
            .saturating_mul(SECTOR_SIZE);
        RamDevice { data: vec![0; len] }
    }

    /// A device holding `image`; a trailing partial sector is dropped, as a block device would.
    pub fn from_image(mut image: Vec<u8>) -> Self {
        image.truncate(image.len() - image.len() % SECTOR_SIZE);
        RamDevice { data: image }
    }

    /// The raw image.
    pub fn image(&self) -> &[u8] {
        &self.data
    }

    /// The raw image, mutable (tests corrupt it).
    pub fn image_mut(&mut self) -> &mut [u8] {
        &mut self.data
    }

    /// Consumes the device, returning its image.
    pub fn into_image(self) -> Vec<u8> {
        self.data
    }
}

impl BlockDevice for RamDevice {
    fn sector_count(&self) -> u64 {
        (self.data.len() / SECTOR_SIZE) as u64
    }
    fn read(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), IoError> {
        let (s, e) = check_range(self.sector_count(), lba, buf.len())?;
        buf.copy_from_slice(&self.data[s..e]);
        Ok(())
    }
    fn write(&mut self, lba: u64, buf: &[u8]) -> Result<usize, IoError> {
        let (s, e) = check_range(self.sector_count(), lba, buf.len())?;
        self.data[s..e].copy_from_slice(buf);
        Ok(buf.len() / SECTOR_SIZE)
    }
    fn flush(&mut self) -> Result<(), IoError> {
        Ok(())
    }
}

/// A device backed by a file or a raw block device node (host only).
#[cfg(any(feature = "std", test))]
pub use file::FileDevice;

#[cfg(any(feature = "std", test))]
mod file {
    #[cfg(not(test))]
    extern crate std;
    use super::{check_range, BlockDevice, IoError, SECTOR_SIZE};
    use std::fs::{File, OpenOptions, TryLockError};
    use std::io;
    use std::os::unix::fs::FileExt;
    use std::path::Path;

    /// A file (or block device node) used as a disk. `flush` is `fdatasync`.
    ///
    /// # Locking
    ///
    /// A disk has one writer or any number of readers, never both: a second writer would
    /// append after its own idea of the end and overwrite the first one's acknowledged
    /// records. So every `FileDevice` holds an advisory lock on its file for as long as it
    /// lives (`flock(2)` through [`File::try_lock`]): exclusive when writable ([`create`],
    /// [`open`] with `writable`), shared when read-only. Taking it never waits: an image
    /// another program holds is refused at once with an [`io::ErrorKind::ResourceBusy`] error
    /// that says so ("in use by another program (locked)"). Every host program that opens a PSDB
    /// image (the simulator, `totebox psdb ...`, `totebox log ... --psdb`) opens it here.
    /// The lock is advisory: it binds only programs that take it (QEMU's own image locks are
    /// `fcntl` byte-range locks, which Linux keeps apart from `flock`).
    ///
    /// [`create`]: FileDevice::create
    /// [`open`]: FileDevice::open
    #[derive(Debug)]
    pub struct FileDevice {
        file: File,
        sectors: u64,
    }

    impl FileDevice {
        /// Creates a new image file of `bytes` bytes (rounded down to whole sectors), sparse and
        /// zeroed. Fails if the file exists.
        pub fn create(path: &Path, bytes: u64) -> io::Result<Self> {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(path)?;
            lock(&file, true)?;
            let bytes = bytes - bytes % SECTOR_SIZE as u64;
            file.set_len(bytes)?;
            file.sync_all()?;
            Ok(FileDevice {
                file,
                sectors: bytes / SECTOR_SIZE as u64,
            })
        }

        /// Opens an existing image; `writable` false opens it read-only. Locked exclusively
        /// when writable, shared otherwise; refused at once if another program's lock
        /// conflicts (see [`FileDevice`]).
        pub fn open(path: &Path, writable: bool) -> io::Result<Self> {
            let file = OpenOptions::new().read(true).write(writable).open(path)?;
            lock(&file, writable)?;
            let len = file.metadata()?.len();
            // A block device node reports length 0 through metadata; seek to its end instead.
            let len = if len == 0 {
                use std::io::Seek;
                let mut f = &file;
                f.seek(io::SeekFrom::End(0))?
            } else {
                len
            };
            Ok(FileDevice {
                file,
                sectors: len / SECTOR_SIZE as u64,
            })
        }
    }

    /// Why a writable open was refused: another program holds the image (reading or writing).
    const IN_USE: &str =
        "in use by another program (locked): a disk image has one writer, or any number of readers";

    /// Why a read-only open was refused: another program holds the image for writing.
    const IN_USE_BY_WRITER: &str = "in use by another program that writes to it (locked): a disk image has one writer, or any number of readers";

    /// Takes the lock without waiting: exclusive for a writer, shared for a reader.
    fn lock(file: &File, exclusive: bool) -> io::Result<()> {
        let taken = if exclusive {
            file.try_lock()
        } else {
            file.try_lock_shared()
        };
        match taken {
            Ok(()) => Ok(()),
            Err(TryLockError::WouldBlock) => Err(io::Error::new(
                io::ErrorKind::ResourceBusy,
                if exclusive { IN_USE } else { IN_USE_BY_WRITER },
            )),
            Err(TryLockError::Error(e)) => Err(io::Error::new(
                e.kind(),
                std::format!("cannot lock the image: {e}"),
            )),
        }
    }

    impl BlockDevice for FileDevice {
        fn sector_count(&self) -> u64 {
            self.sectors
        }
        fn read(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), IoError> {
            let (s, _) = check_range(self.sectors, lba, buf.len())?;
            self.file
                .read_exact_at(buf, s as u64)
                .map_err(|_| IoError::Failed)
        }
        fn write(&mut self, lba: u64, buf: &[u8]) -> Result<usize, IoError> {
            let (s, _) = check_range(self.sectors, lba, buf.len())?;
            self.file
                .write_all_at(buf, s as u64)
                .map_err(|_| IoError::Failed)?;
            Ok(buf.len() / SECTOR_SIZE)
        }
        fn flush(&mut self) -> Result<(), IoError> {
            self.file.sync_data().map_err(|_| IoError::Failed)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_device_roundtrip() {
        let path = std::env::temp_dir().join(format!("psdb-filedev-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let mut d = FileDevice::create(&path, 8 * 512 + 100).unwrap();
        assert_eq!(d.sector_count(), 8);
        assert!(FileDevice::create(&path, 4096).is_err());
        let data: Vec<u8> = (0..1024).map(|i| i as u8).collect();
        assert_eq!(d.write(3, &data), Ok(2));
        d.flush().unwrap();
        assert_eq!(d.write(7, &data), Err(IoError::OutOfRange));
        assert_eq!(d.write(0, &data[..100]), Err(IoError::Misaligned));
        drop(d);
        let mut d = FileDevice::open(&path, false).unwrap();
        let mut buf = vec![0u8; 1536];
        d.read(2, &mut buf).unwrap();
        assert_eq!(&buf[..512], &[0; 512][..]);
        assert_eq!(&buf[512..], &data[..]);
        assert!(d.write(0, &[0; 512]).is_err());
        std::fs::remove_file(&path).unwrap();
    }

    /// One writer or any number of readers: a second writable open, and any open beside a
    /// writer, is refused at once (never waits) with an error that says why; the lock goes
    /// with the device.
    #[test]
    fn an_image_has_one_writer_or_many_readers() {
        let path = std::env::temp_dir().join(format!("psdb-lock-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let refused = |r: std::io::Result<FileDevice>| {
            let e = r.expect_err("must be refused");
            assert_eq!(e.kind(), std::io::ErrorKind::ResourceBusy);
            assert!(
                e.to_string().contains("in use by another program")
                    && e.to_string().contains("locked"),
                "{e}"
            );
        };
        // The creator is the writer.
        let created = FileDevice::create(&path, 8 * 512).unwrap();
        refused(FileDevice::open(&path, true));
        refused(FileDevice::open(&path, false));
        drop(created);
        // A writer excludes a second writer and every reader.
        let writer = FileDevice::open(&path, true).unwrap();
        refused(FileDevice::open(&path, true));
        refused(FileDevice::open(&path, false));
        drop(writer);
        // Readers share; a writer is refused while any reader remains.
        let r1 = FileDevice::open(&path, false).unwrap();
        let r2 = FileDevice::open(&path, false).unwrap();
        refused(FileDevice::open(&path, true));
        drop(r1);
        refused(FileDevice::open(&path, true));
        drop(r2);
        // Everyone gone: a writer may open it again.
        drop(FileDevice::open(&path, true).unwrap());
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn short_writes_are_continued() {
        struct Halves(RamDevice);
        impl BlockDevice for Halves {
            fn sector_count(&self) -> u64 {
                self.0.sector_count()
            }
            fn read(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), IoError> {
                self.0.read(lba, buf)
            }
            fn write(&mut self, lba: u64, buf: &[u8]) -> Result<usize, IoError> {
                let n = (buf.len() / SECTOR_SIZE).div_ceil(2);
                self.0.write(lba, &buf[..n * SECTOR_SIZE])
            }
            fn flush(&mut self) -> Result<(), IoError> {
                Ok(())
            }
        }
        let mut d = Halves(RamDevice::new(16));
        let data = vec![9u8; 7 * SECTOR_SIZE];
        write_all(&mut d, 2, &data).unwrap();
        assert_eq!(&d.0.image()[2 * SECTOR_SIZE..9 * SECTOR_SIZE], &data[..]);
    }
}

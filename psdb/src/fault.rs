//! A RAM device that models volatile caches, power loss and injected faults, for tests.
//!
//! It keeps two images: `durable` (what survives power loss for certain) and `visible` (what
//! reads return), plus the sector writes issued since the last successful flush, in order.
//! [`FaultDevice::crash`] builds the image a power loss could leave: the durable image plus any
//! subset of those writes, possibly with one sector torn. Faults are scheduled by operation
//! number (writes and flushes counted together from 0).

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use crate::device::{check_range, BlockDevice, IoError, RamDevice, SECTOR_SIZE};

/// A fault injected at one operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The write fails; `persisted`: its sectors reached the cache anyway.
    FailWrite { persisted: bool },
    /// The flush fails; `persisted`: the cache reached the medium anyway. If not, the device
    /// lost its cache: unflushed writes are gone and reads return the durable image.
    FailFlush { persisted: bool },
    /// The write reports only its first half written (at least one sector); `persisted`: the
    /// rest reached the cache anyway.
    ShortWrite { persisted: bool },
    /// Power fails at this operation: it and every later one fail with no effect, and
    /// [`FaultDevice::crash`] shows what the loss leaves.
    PowerLoss,
}

/// What a power loss keeps of the unflushed writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Crash {
    /// None of them.
    LoseAll,
    /// All of them.
    KeepAll,
    /// The first `n` sector writes in issue order, and the next one torn (its first half new).
    Prefix { n: usize, torn: bool },
    /// A pseudo-random subset chosen by `seed`, in any order; one sector torn if `torn`.
    Random { seed: u64, torn: bool },
}

/// One device operation, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Sectors written at `lba` (what the device accepted).
    Write { lba: u64, data: Vec<u8> },
    /// A successful flush.
    Flush,
}

/// The fault-injecting device.
#[derive(Debug, Clone)]
pub struct FaultDevice {
    durable: Vec<u8>,
    visible: Vec<u8>,
    /// Sector writes since the last successful flush: (lba, bytes), in issue order.
    unflushed: Vec<(u64, [u8; SECTOR_SIZE])>,
    faults: BTreeMap<u64, Fault>,
    ops: u64,
    log: Option<Vec<Op>>,
    dead: bool,
}

impl FaultDevice {
    /// A zeroed device of `sectors` sectors.
    pub fn new(sectors: u64) -> Self {
        Self::from_image(RamDevice::new(sectors).into_image())
    }

    /// A device whose durable content is `image`.
    pub fn from_image(image: Vec<u8>) -> Self {
        let image = RamDevice::from_image(image).into_image();
        FaultDevice {
            durable: image.clone(),
            visible: image,
            unflushed: Vec::new(),
            faults: BTreeMap::new(),
            ops: 0,
            log: None,
            dead: false,
        }
    }

    /// Injects `fault` at operation number `op`.
    pub fn inject(&mut self, op: u64, fault: Fault) {
        self.faults.insert(op, fault);
    }

    /// Operations so far.
    pub fn ops(&self) -> u64 {
        self.ops
    }

    /// Starts recording operations.
    pub fn record(&mut self) {
        self.log = Some(Vec::new());
    }

    /// The recorded operations.
    pub fn take_log(&mut self) -> Vec<Op> {
        self.log.take().unwrap_or_default()
    }

    /// The image that survives for certain.
    pub fn durable(&self) -> &[u8] {
        &self.durable
    }

    /// Sector writes not yet flushed.
    pub fn unflushed(&self) -> usize {
        self.unflushed.len()
    }

    /// The image a power loss now could leave.
    pub fn crash(&self, how: Crash) -> RamDevice {
        let mut img = self.durable.clone();
        apply_crash(&mut img, &self.unflushed, how);
        RamDevice::from_image(img)
    }

    fn put_sectors(&mut self, lba: u64, buf: &[u8]) {
        for (k, s) in buf.chunks_exact(SECTOR_SIZE).enumerate() {
            let at = (lba as usize + k) * SECTOR_SIZE;
            self.visible[at..at + SECTOR_SIZE].copy_from_slice(s);
            let mut sector = [0u8; SECTOR_SIZE];
            sector.copy_from_slice(s);
            self.unflushed.push((lba + k as u64, sector));
        }
        if let Some(log) = &mut self.log {
            log.push(Op::Write {
                lba,
                data: buf.to_vec(),
            });
        }
    }

    fn commit(&mut self) {
        for (lba, s) in self.unflushed.drain(..) {
            let at = lba as usize * SECTOR_SIZE;
            self.durable[at..at + SECTOR_SIZE].copy_from_slice(&s);
        }
    }
}

/// Applies to `img` what a power loss keeps of `unflushed` (sector writes in issue order).
pub fn apply_crash(img: &mut [u8], unflushed: &[(u64, [u8; SECTOR_SIZE])], how: Crash) {
    let put = |img: &mut [u8], (lba, s): &(u64, [u8; SECTOR_SIZE]), torn: bool| {
        let at = *lba as usize * SECTOR_SIZE;
        let n = if torn { SECTOR_SIZE / 2 } else { SECTOR_SIZE };
        img[at..at + n].copy_from_slice(&s[..n]);
    };
    match how {
        Crash::LoseAll => {}
        Crash::KeepAll => unflushed.iter().for_each(|w| put(img, w, false)),
        Crash::Prefix { n, torn } => {
            unflushed.iter().take(n).for_each(|w| put(img, w, false));
            if let (true, Some(w)) = (torn, unflushed.get(n)) {
                put(img, w, true);
            }
        }
        Crash::Random { seed, torn } => {
            let mut rng = seed | 1;
            let mut next = move || {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                rng
            };
            let torn_at = if torn && !unflushed.is_empty() {
                Some(next() as usize % unflushed.len())
            } else {
                None
            };
            // Writes may land in any order: a later write to a sector may be lost while an
            // earlier one to the same sector persists.
            let mut order: Vec<usize> = (0..unflushed.len()).collect();
            for i in (1..order.len()).rev() {
                order.swap(i, next() as usize % (i + 1));
            }
            for i in order {
                if Some(i) == torn_at {
                    put(img, &unflushed[i], true);
                } else if next() % 2 == 0 {
                    put(img, &unflushed[i], false);
                }
            }
        }
    }
}

impl BlockDevice for FaultDevice {
    fn sector_count(&self) -> u64 {
        (self.visible.len() / SECTOR_SIZE) as u64
    }

    fn read(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), IoError> {
        let (s, e) = check_range(self.sector_count(), lba, buf.len())?;
        buf.copy_from_slice(&self.visible[s..e]);
        Ok(())
    }

    fn write(&mut self, lba: u64, buf: &[u8]) -> Result<usize, IoError> {
        check_range(self.sector_count(), lba, buf.len())?;
        let op = self.ops;
        self.ops += 1;
        let sectors = buf.len() / SECTOR_SIZE;
        if self.dead || self.faults.get(&op) == Some(&Fault::PowerLoss) {
            self.dead = true;
            return Err(IoError::Failed);
        }
        match self.faults.get(&op).copied() {
            Some(Fault::FailWrite { persisted }) => {
                if persisted {
                    self.put_sectors(lba, buf);
                }
                Err(IoError::Failed)
            }
            Some(Fault::ShortWrite { persisted }) if sectors > 1 => {
                let n = sectors / 2;
                let upto = if persisted { sectors } else { n };
                self.put_sectors(lba, &buf[..upto * SECTOR_SIZE]);
                Ok(n)
            }
            _ => {
                self.put_sectors(lba, buf);
                Ok(sectors)
            }
        }
    }

    fn flush(&mut self) -> Result<(), IoError> {
        let op = self.ops;
        self.ops += 1;
        if self.dead || self.faults.get(&op) == Some(&Fault::PowerLoss) {
            self.dead = true;
            return Err(IoError::Failed);
        }
        match self.faults.get(&op).copied() {
            Some(Fault::FailFlush { persisted: true }) => {
                self.commit();
                Err(IoError::Failed)
            }
            Some(Fault::FailFlush { persisted: false }) => {
                self.unflushed.clear();
                self.visible.copy_from_slice(&self.durable);
                Err(IoError::Failed)
            }
            _ => {
                self.commit();
                if let Some(log) = &mut self.log {
                    log.push(Op::Flush);
                }
                Ok(())
            }
        }
    }
}

//! psdb's disk in the simulator: a file, or RAM shared with a test (which can fail it).

use super::*;

/// psdb's disk in the simulator.
#[derive(Debug)]
pub enum Disk {
    /// A file (the `totebox-sim` binary; `fdatasync` on flush).
    File(FileDevice),
    /// Memory (tests).
    Ram(RamDevice),
    /// Memory shared with the test that made it, which can read the image and make every
    /// write fail (a dying disk) while the system runs.
    Shared(Rc<RefCell<RamDevice>>, Rc<Cell<bool>>),
    /// psdb's fault-injecting device ([`psdb::fault::FaultDevice`]: one failed write or flush,
    /// power lost at a given operation, and the images a crash could leave), shared with the
    /// test that made it (tests).
    Faulty(Rc<RefCell<psdb::fault::FaultDevice>>),
}

impl BlockDevice for Disk {
    fn sector_count(&self) -> u64 {
        match self {
            Disk::File(d) => d.sector_count(),
            Disk::Ram(d) => d.sector_count(),
            Disk::Shared(d, _) => d.borrow().sector_count(),
            Disk::Faulty(d) => d.borrow().sector_count(),
        }
    }
    fn read(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), IoError> {
        match self {
            Disk::File(d) => d.read(lba, buf),
            Disk::Ram(d) => d.read(lba, buf),
            Disk::Shared(d, _) => d.borrow_mut().read(lba, buf),
            Disk::Faulty(d) => d.borrow_mut().read(lba, buf),
        }
    }
    fn write(&mut self, lba: u64, buf: &[u8]) -> Result<usize, IoError> {
        match self {
            Disk::File(d) => d.write(lba, buf),
            Disk::Ram(d) => d.write(lba, buf),
            Disk::Shared(_, fail) if fail.get() => Err(IoError::Failed),
            Disk::Shared(d, _) => d.borrow_mut().write(lba, buf),
            Disk::Faulty(d) => d.borrow_mut().write(lba, buf),
        }
    }
    fn flush(&mut self) -> Result<(), IoError> {
        match self {
            Disk::File(d) => d.flush(),
            Disk::Ram(d) => d.flush(),
            Disk::Shared(_, fail) if fail.get() => Err(IoError::Failed),
            Disk::Shared(d, _) => d.borrow_mut().flush(),
            Disk::Faulty(d) => d.borrow_mut().flush(),
        }
    }
}

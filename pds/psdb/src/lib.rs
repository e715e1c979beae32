//! The **psdb** protection domain's logic: PSDB ([`psdb::Store`]) on the disk, serving
//! [`interface::psdb_call`] to every ledger and to audit.
//!
//! **The caller's namespace is the channel the call arrived on** ([`interface::psdb::CLIENTS`]:
//! channel 0 is `corporate`, 1 `personnel`, 2 `property`, 3 `audit`), resolved to a
//! [`psdb::Namespace`] handle once, at init. Nothing in a message names a namespace, so a ledger
//! can reach its own tenant's objects and no others whatever it sends.
//!
//! Every length read from a message register is checked against the caller's region before it
//! is used, and the bytes are copied out of the shared region before psdb sees them (the caller
//! cannot change them under it). Every failure is an error reply; nothing a caller sends stops
//! this PD.
//!
//! The same code runs over virtio-blk on seL4 (`src/main.rs`) and over a file in the simulator:
//! it is generic over [`psdb::BlockDevice`]. I/O is polled inside the protected call, which is
//! acceptable for the highest-priority PD.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::vec::Vec;
use core::fmt;

use interface::psdb::CLIENTS;
use interface::psdb_call::{
    BAD_LABEL, BAD_LENGTH, CHECKPOINT, DATA, GET, MAX_PATH, NO_STORE, OK, PUT, SET_CHECKPOINT,
    TOO_LARGE,
};
use microkit::region::{ReadWrite, Region, RegionError};
use microkit::{get_mr, set_mr, Channel, Handler, MessageInfo};
use psdb::{BlockDevice, FormatOptions, Mode, Namespace, Report, Store, SECTOR_SIZE};
use sha2::{Digest, Sha256};

/// Largest batch the volume is formatted with: psdb's default, which a whole entry bundle
/// (16 MiB) plus its tar header and manifest line fits (the same limit `totebox psdb create`
/// uses, so host-made and PD-made disks are alike).
pub const MAX_BATCH: u32 = psdb::DEFAULT_MAX_BATCH;

microkit::memory_region! {
    /// Shared with ledger_corporate (psdb channel 0).
    pub static CORPORATE: ReadWrite(vaddr = "corporate_vaddr", size = "corporate_size",
        min_len = interface::size::LEDGER_PSDB);
    /// Shared with ledger_personnel (psdb channel 1).
    pub static PERSONNEL: ReadWrite(vaddr = "personnel_vaddr", size = "personnel_size",
        min_len = interface::size::LEDGER_PSDB);
    /// Shared with ledger_property (psdb channel 2).
    pub static PROPERTY: ReadWrite(vaddr = "property_vaddr", size = "property_size",
        min_len = interface::size::LEDGER_PSDB);
    /// Shared with audit (psdb channel 3).
    pub static AUDIT: ReadWrite(vaddr = "audit_vaddr", size = "audit_size",
        min_len = interface::size::AUDIT_PSDB);
}

/// Why the PD could not start.
#[derive(Debug)]
pub enum InitError {
    /// A shared region is missing or too small.
    Region(RegionError),
    /// The disk could not be read, formatted or mounted.
    Store(psdb::Error),
}

impl fmt::Display for InitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InitError::Region(e) => write!(f, "region: {e}"),
            InitError::Store(e) => write!(f, "store: {e}"),
        }
    }
}

/// What [`open_store`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opened {
    /// The disk was blank (first sector zero) and was formatted.
    Formatted,
    /// An existing volume was mounted.
    Mounted(Report),
}

/// Mounts the volume on `dev`, formatting it first if its first sector is all zeros (a fresh
/// disk image). The volume id of a volume formatted here is derived from the disk size (the PD
/// has no random source; the id names a volume, it is no secret); host tools format with random
/// ids.
pub fn open_store<D: BlockDevice>(mut dev: D) -> Result<(Store<D>, Opened), psdb::Error> {
    let mut first = [0u8; SECTOR_SIZE];
    dev.read(0, &mut first)?;
    if first.iter().all(|&b| b == 0) {
        let mut h = Sha256::new();
        h.update(b"totebox-envelope-b/psdb-volume/v0\0");
        h.update(dev.sector_count().to_le_bytes());
        let digest: [u8; 32] = h.finalize().into();
        let mut volume_id = [0u8; 16];
        volume_id.copy_from_slice(&digest[..16]);
        let opts = FormatOptions {
            volume_id,
            max_batch_bytes: MAX_BATCH,
        };
        return Ok((Store::format(dev, opts)?, Opened::Formatted));
    }
    let (store, report) = Store::mount(dev, Mode::ReadWrite)?;
    Ok((store, Opened::Mounted(report)))
}

/// The psdb PD.
#[derive(Debug)]
pub struct PsdbPd<D: BlockDevice> {
    store: Store<D>,
    /// Indexed like [`CLIENTS`]: the namespace and region of each calling channel.
    clients: Vec<(Channel, Namespace, Region<ReadWrite>)>,
    /// One object, copied out of or into a region (at most the largest region's data area).
    buf: Vec<u8>,
}

/// Gets every region and builds the PD over `store`.
pub fn init<D: BlockDevice>(mut store: Store<D>) -> Result<PsdbPd<D>, InitError> {
    let decls = [&CORPORATE, &PERSONNEL, &PROPERTY, &AUDIT];
    let mut clients = Vec::with_capacity(CLIENTS.len());
    for ((channel, ns, _, _), decl) in CLIENTS.iter().zip(decls) {
        let region = decl.get().map_err(InitError::Region)?;
        let ns = store.open_namespace(ns).map_err(InitError::Store)?;
        clients.push((*channel, ns, region));
    }
    Ok(PsdbPd {
        store,
        clients,
        buf: Vec::new(),
    })
}

impl<D: BlockDevice> PsdbPd<D> {
    /// The store (for tests and the simulator's reports).
    pub fn store(&self) -> &Store<D> {
        &self.store
    }

    /// Handles one call on `channel`; returns the reply (registers already set).
    pub fn handle(&mut self, channel: Channel, info: MessageInfo) -> MessageInfo {
        match self.serve(channel, info) {
            Ok(reply) => reply,
            Err(code) => MessageInfo::new(code, 0),
        }
    }

    fn serve(&mut self, channel: Channel, info: MessageInfo) -> Result<MessageInfo, u64> {
        let Some(i) = self.clients.iter().position(|c| c.0 == channel) else {
            return Err(BAD_LABEL);
        };
        let (_, ns, region) = &self.clients[i];
        let (ns, region) = (*ns, region.clone());
        if info.count() < 2 {
            return Err(BAD_LENGTH);
        }
        let max_data = region.len().saturating_sub(DATA);
        let path_len = usize::try_from(get_mr(0)).map_err(|_| BAD_LENGTH)?;
        let data_len = usize::try_from(get_mr(1)).map_err(|_| BAD_LENGTH)?;
        if path_len > MAX_PATH || data_len > max_data {
            return Err(BAD_LENGTH);
        }
        let mut path_buf = [0u8; MAX_PATH];
        let path_bytes = &mut path_buf[..path_len];
        region.read(0, path_bytes).map_err(|_| BAD_LENGTH)?;
        let path = core::str::from_utf8(path_bytes).map_err(|_| BAD_LENGTH)?;
        let code = |e: psdb::Error| u64::from(e.code());
        match info.label() {
            PUT | SET_CHECKPOINT => {
                self.buf.clear();
                self.buf.resize(data_len, 0);
                region.read(DATA, &mut self.buf).map_err(|_| BAD_LENGTH)?;
                if info.label() == PUT {
                    self.store.put(ns, path, &self.buf).map_err(code)?;
                } else {
                    self.store.put_checkpoint(ns, &self.buf).map_err(code)?;
                    self.store.flush().map_err(code)?;
                }
                Ok(MessageInfo::new(OK, 0))
            }
            GET | CHECKPOINT => {
                let found = if info.label() == GET {
                    self.store.get(ns, path, &mut self.buf).map_err(code)?
                } else {
                    self.store.checkpoint(ns, &mut self.buf).map_err(code)?
                };
                if found {
                    if self.buf.len() > max_data {
                        return Err(TOO_LARGE);
                    }
                    region.write(DATA, &self.buf).map_err(|_| TOO_LARGE)?;
                }
                set_mr(0, u64::from(found));
                set_mr(1, if found { self.buf.len() as u64 } else { 0 });
                Ok(MessageInfo::new(OK, 2))
            }
            _ => Err(BAD_LABEL),
        }
    }
}

impl<D: BlockDevice> Handler for PsdbPd<D> {
    type Error = core::convert::Infallible;

    fn protected(
        &mut self,
        channel: Channel,
        info: MessageInfo,
    ) -> Result<MessageInfo, Self::Error> {
        Ok(self.handle(channel, info))
    }
}

/// A psdb PD whose disk failed to mount: answers every call [`NO_STORE`] instead of stopping, so
/// the ledgers fail their requests cleanly and the monitor is not the only witness.
#[derive(Debug, Default)]
pub struct NoStore;

impl Handler for NoStore {
    type Error = core::convert::Infallible;

    fn protected(&mut self, _: Channel, _: MessageInfo) -> Result<MessageInfo, Self::Error> {
        Ok(MessageInfo::new(NO_STORE, 0))
    }
}

//! PSDB: the storage engine behind the psdb protection domain.
//!
//! Capability-addressed, write-once object storage on a raw block device whose image is a valid
//! tar stream: `tar -xf image` yields `<namespace>/<path>` for every object, the latest
//! checkpoint of each namespace, and `.psdb/` holding `sha256sum` files for all of them. The
//! on-disk format and the forensic procedure are in `FORMAT.md`; the crash-safety argument is
//! in [`store`]'s module docs.
//!
//! - [`BlockDevice`]: read, write, flush; [`RamDevice`], [`FileDevice`] (feature `std`) and the
//!   fault-injecting [`fault::FaultDevice`].
//! - [`Store`]: [`Store::format`], [`Store::mount`], [`Store::open_namespace`] (privileged),
//!   [`Store::put`], [`Store::put_checkpoint`], [`Store::flush`], [`Store::get`],
//!   [`Store::exists`], [`Store::list`]; journals ([`journal`], format v3):
//!   [`Store::put_journal`], [`Store::journal_append`] (one sector, durable on return),
//!   [`Store::journal_read`], [`Store::journal_stat`], [`Store::journals`]; [`fsck`].
//! - [`NamespaceStorage`]: the ledger core's `tlog::Storage` on one namespace.
//!
//! # Use
//!
//! ```
//! use psdb::{fsck, FormatOptions, Mode, RamDevice, Store};
//!
//! // `totebox psdb create`: a fresh volume (host tools use `FileDevice::create(path, bytes)`
//! // and 16 random bytes for the volume id).
//! let mut store = Store::format(RamDevice::new(2048), FormatOptions::new([7; 16]))?;
//! // Privileged: the psdb PD does this once per channel at init.
//! let ns = store.open_namespace("tenant-a")?;
//! // `put`: durable once `flush` returns.
//! store.put(ns, "tile/0/000", b"tile bytes")?;
//! store.put_checkpoint(ns, b"example.com/log\n1\nroot\n")?;
//! store.flush()?;
//! assert_eq!(store.put(ns, "tile/0/000", b"other"), Err(psdb::Error::Immutable));
//!
//! // `get` / `ls` / `fsck` on the raw image.
//! let (mut store, report) = Store::mount(store.into_device(), Mode::ReadOnly)?;
//! assert_eq!(report.problem, None);
//! let ns = store.open_namespace("tenant-a")?;
//! let mut out = Vec::new();
//! assert!(store.get(ns, "tile/0/000", &mut out)?);
//! let listed: Vec<(&str, u64)> = store.list(ns, "tile/")?.collect();
//! assert_eq!(listed, [("tile/0/000", 10)]);
//! let names: Vec<&str> = store.namespaces().collect();
//! assert_eq!(names, ["tenant-a"]);
//! assert_eq!(fsck(store.into_device())?.problem, None);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Memory
//!
//! Bounded by [`store::Limits`]: an index budget (charged [`store::INDEX_ENTRY_BYTES`] (56) +
//! path length per object, measured at 52-55 + path) past which puts fail
//! [`Error::IndexFull`] and mount fails [`Error::ExceedsLimits`], a ceiling on the batch limit
//! and one on manifests. Outside the index: no batch data, the manifest lines at
//! [`store::manifest_limit`], one 8 KiB write buffer, and during mount two manifests and a
//! 64 KiB check buffer. Reads in pieces ([`Store::open_read`], [`Store::read_next`],
//! [`Store::read_at`]) fill the caller's buffer only. Details and measurements in `FORMAT.md`.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod commit;
mod device;
mod error;
pub mod fault;
pub mod head;
pub mod journal;
mod ledger;
mod manifest;
pub mod names;
pub mod store;
mod tar;

#[cfg(any(feature = "std", test))]
pub use device::FileDevice;
pub use device::{BlockDevice, IoError, RamDevice, SECTOR_SIZE};
pub use error::{Corruption, Error, NameError, Problem};
pub use ledger::NamespaceStorage;
pub use store::{
    fsck, Chunk, FormatOptions, JournalStat, Limits, Mode, Namespace, Quota, Reader, Report, Store,
    Usage, DEFAULT_MAX_BATCH,
};

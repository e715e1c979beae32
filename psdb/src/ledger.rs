//! The ledger core's [`tlog::Storage`] on a PSDB namespace, so a tenant log can live in PSDB.

use alloc::vec::Vec;

use crate::device::BlockDevice;
use crate::error::Error;
use crate::store::{Namespace, Store};

/// One namespace of a store, seen as a tlog [`tlog::Storage`].
///
/// The contract holds because a batch is atomic on disk: `set_checkpoint` stages the checkpoint
/// after every object put before it and flushes, so a checkpoint is never durable without the
/// objects it covers (objects flushed earlier, when a batch filled up, are durable earlier).
#[derive(Debug)]
pub struct NamespaceStorage<'s, D: BlockDevice> {
    store: &'s mut Store<D>,
    ns: Namespace,
}

impl<'s, D: BlockDevice> NamespaceStorage<'s, D> {
    /// `ns` of `store`.
    pub fn new(store: &'s mut Store<D>, ns: Namespace) -> Self {
        NamespaceStorage { store, ns }
    }
}

impl<D: BlockDevice> tlog::Storage for NamespaceStorage<'_, D> {
    type Error = Error;

    fn put(&mut self, path: &str, data: &[u8]) -> Result<(), Error> {
        self.store.put(self.ns, path, data)
    }

    fn set_checkpoint(&mut self, checkpoint: &[u8]) -> Result<(), Error> {
        self.store.put_checkpoint(self.ns, checkpoint)?;
        self.store.flush()
    }

    fn get(&mut self, path: &str, out: &mut Vec<u8>) -> Result<bool, Error> {
        self.store.get(self.ns, path, out)
    }

    fn put_begin(&mut self, path: &str, len: usize) -> Result<(), Error> {
        self.store.put_begin(self.ns, path, len as u64)
    }

    fn put_chunk(&mut self, data: &[u8]) -> Result<(), Error> {
        self.store.put_chunk(data).map(|_| ())
    }

    fn checkpoint(&mut self, out: &mut Vec<u8>) -> Result<bool, Error> {
        self.store.checkpoint(self.ns, out)
    }
}

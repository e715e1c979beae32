//! The caller's side of [`psdb_call`](crate::psdb_call): a [`tlog::Storage`] over a ppcall
//! channel to psdb and the region shared with it.

use alloc::vec::Vec;
use core::fmt;

use microkit::region::{ReadWrite, Region};
use microkit::{get_mr, set_mr, Channel, MessageInfo};

use crate::psdb_call::{CHECKPOINT, DATA, GET, MAX_PATH, OK, PUT, SET_CHECKPOINT};

/// Why a psdb call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PsdbError {
    /// psdb answered with this error label (see [`psdb_call`](crate::psdb_call)).
    Refused(u64),
    /// The path or object does not fit the region.
    TooLarge,
    /// psdb's reply does not make sense (a length past the region).
    BadReply,
}

impl fmt::Display for PsdbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PsdbError::Refused(code) => write!(f, "psdb refused with code {code}"),
            PsdbError::TooLarge => f.write_str("object too large for the psdb region"),
            PsdbError::BadReply => f.write_str("malformed psdb reply"),
        }
    }
}

/// One PD's connection to psdb. The namespace is whichever the channel stands for in psdb.
#[derive(Debug, Clone)]
pub struct PsdbClient {
    channel: Channel,
    region: Region<ReadWrite>,
}

impl PsdbClient {
    /// A client calling psdb on `channel`, sharing `region` with it.
    pub fn new(channel: Channel, region: Region<ReadWrite>) -> Self {
        PsdbClient { channel, region }
    }

    /// Largest object this client can move.
    pub fn max_object(&self) -> usize {
        self.region.len().saturating_sub(DATA)
    }

    fn call(&mut self, label: u64, path: &str, data: &[u8]) -> Result<(), PsdbError> {
        if path.len() > MAX_PATH || data.len() > self.max_object() {
            return Err(PsdbError::TooLarge);
        }
        self.region
            .write(0, path.as_bytes())
            .map_err(|_| PsdbError::TooLarge)?;
        self.region
            .write(DATA, data)
            .map_err(|_| PsdbError::TooLarge)?;
        set_mr(0, path.len() as u64);
        set_mr(1, data.len() as u64);
        let reply = self.channel.pp_call(MessageInfo::new(label, 2));
        match reply.label() {
            OK => Ok(()),
            code => Err(PsdbError::Refused(code)),
        }
    }

    fn read_reply(&mut self, out: &mut Vec<u8>) -> Result<bool, PsdbError> {
        let (found, len) = (get_mr(0), get_mr(1));
        out.clear();
        if found == 0 {
            return Ok(false);
        }
        let len = usize::try_from(len).map_err(|_| PsdbError::BadReply)?;
        if len > self.max_object() {
            return Err(PsdbError::BadReply);
        }
        out.resize(len, 0);
        self.region
            .read(DATA, out)
            .map_err(|_| PsdbError::BadReply)?;
        Ok(true)
    }
}

impl tlog::Storage for PsdbClient {
    type Error = PsdbError;

    fn put(&mut self, path: &str, data: &[u8]) -> Result<(), PsdbError> {
        self.call(PUT, path, data)
    }

    fn set_checkpoint(&mut self, checkpoint: &[u8]) -> Result<(), PsdbError> {
        self.call(SET_CHECKPOINT, "", checkpoint)
    }

    fn get(&mut self, path: &str, out: &mut Vec<u8>) -> Result<bool, PsdbError> {
        self.call(GET, path, &[])?;
        self.read_reply(out)
    }

    fn checkpoint(&mut self, out: &mut Vec<u8>) -> Result<bool, PsdbError> {
        self.call(CHECKPOINT, "", &[])?;
        self.read_reply(out)
    }
}

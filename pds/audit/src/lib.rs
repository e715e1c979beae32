//! The **audit** protection domain's logic: the audit sub-ledger, its own [`tlog::Log`] in psdb
//! namespace `audit` (which psdb gives it by the channel it calls on), recording every read a
//! ledger is about to answer ([`interface::audit_call`]).
//!
//! **Which tenant a record is about is the channel it arrived on** ([`interface::audit::LEDGERS`]),
//! never a field of the message: ledger_corporate can only ever write records that say
//! `tenant=corporate`. A record is acknowledged only once the checkpoint covering it is durable,
//! so a ledger that got the acknowledgement knows the read is on the audit log.
//!
//! Each entry is one line of text: `tenant=<t> op=<read|bundle> first=<i> count=<n>
//! request=<id> outcome=granted`. Time and the requester's identity join it with the
//! access-control issue (there is no clock or identity yet).
//!
//! A ledger may also ask what the audit log uses of its quota ([`audit_call::USAGE`], for a
//! tenant's status request): audit asks psdb on its own channel (so it can only learn the
//! audit namespace's figures) and passes the answer on. Nothing is recorded for it.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::fmt::Write as _;

use interface::audit_call::{self, Kind, BAD_CALL, RECORDED, STORAGE};
use interface::{audit, PsdbClient, AUDIT_NAMESPACE, TENANTS, TENANT_COUNT};
use microkit::region::{ReadWrite, Region, RegionError};
use microkit::{get_mr, set_mr, Channel, Handler, MessageInfo};
use note::Signer;
use tlog::{Log, Storage};

interface::audit_ledger_regions!();

interface::audit_psdb_region!();

/// Why the PD could not start.
#[derive(Debug)]
pub enum InitError {
    /// A shared region is missing or too small.
    Region(RegionError),
    /// No usable signing key for the audit log.
    Key(interface::keys::KeyError),
}

impl fmt::Display for InitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InitError::Region(e) => write!(f, "region: {e}"),
            InitError::Key(e) => write!(f, "key: {e}"),
        }
    }
}

/// The audit PD.
#[derive(Debug)]
pub struct AuditPd {
    origin: String,
    signer: Signer,
    ledgers: [Region<ReadWrite>; TENANT_COUNT],
    psdb: PsdbClient,
    log: Option<Log<PsdbClient>>,
    line: String,
}

/// Builds the PD with the audit log's signer key string `skey` (on seL4 from the key slot of
/// audit.elf, see [`interface::keys`]; in the simulator from the key file), which must be named
/// for the audit log, and opens (or creates) the audit log if psdb answers.
pub fn init(skey: &str) -> Result<AuditPd, InitError> {
    let region = |d: &microkit::region::RegionDecl<ReadWrite>| d.get().map_err(InitError::Region);
    let mut pd = AuditPd {
        origin: interface::keys::origin(AUDIT_NAMESPACE),
        signer: interface::keys::signer(AUDIT_NAMESPACE, skey).map_err(InitError::Key)?,
        ledgers: interface::regions(&REGIONS).map_err(InitError::Region)?,
        psdb: PsdbClient::new(audit::PSDB, region(&PSDB)?),
        log: None,
        line: String::new(),
    };
    let _ = pd.open();
    Ok(pd)
}

impl AuditPd {
    fn open(&mut self) -> Option<&mut Log<PsdbClient>> {
        if self.log.is_none() {
            let mut storage = self.psdb.clone();
            let mut buf = Vec::new();
            let exists = storage.checkpoint(&mut buf).ok()?;
            let opened = if exists {
                Log::open(storage, &self.origin, self.signer.clone())
            } else {
                Log::create(storage, &self.origin, self.signer.clone())
            };
            self.log = opened.ok();
        }
        self.log.as_mut()
    }

    /// Entries in the audit log (committed).
    pub fn size(&self) -> u64 {
        self.log.as_ref().map_or(0, Log::committed_size)
    }

    /// Records the read described by the message on `channel`; returns the reply label and,
    /// when recorded, the record's index in the audit log.
    pub fn record(&mut self, channel: Channel, info: MessageInfo) -> (u64, u64) {
        let Some(t) = audit::LEDGERS.iter().position(|c| *c == channel) else {
            return (BAD_CALL, 0);
        };
        if info.label() != audit_call::RECORD || info.count() < 1 {
            return (BAD_CALL, 0);
        }
        let mut buf = [0u8; 25];
        let len = get_mr(0);
        if len != buf.len() as u64 || self.ledgers[t].read(0, &mut buf).is_err() {
            return (BAD_CALL, 0);
        }
        let Some(rec) = audit_call::decode(&buf) else {
            return (BAD_CALL, 0);
        };
        let mut line = core::mem::take(&mut self.line);
        line.clear();
        let op = match rec.kind {
            Kind::Read => "read",
            Kind::Bundle => "bundle",
        };
        let _ = write!(
            line,
            "tenant={} op={op} first={} count={} request={} outcome=granted",
            TENANTS[t], rec.first, rec.count, rec.request
        );
        let result = match self.open() {
            None => Err(()),
            Some(log) => match log.append(line.as_bytes()) {
                Ok(index) => log.checkpoint().map(|_| index).map_err(|_| ()),
                Err(_) => Err(()),
            },
        };
        self.line = line;
        match result {
            Ok(index) => (RECORDED, index),
            Err(()) => {
                self.log = None; // poisoned: reopen from psdb next time
                (STORAGE, 0)
            }
        }
    }
}

impl AuditPd {
    /// What the audit namespace uses of its quota, as psdb states it ([`audit_call::USAGE`]
    /// from a ledger on `channel`).
    pub fn usage(&mut self, channel: Channel) -> Result<interface::Usage, u64> {
        if !audit::LEDGERS.contains(&channel) {
            return Err(BAD_CALL);
        }
        self.psdb.usage().map_err(|_| STORAGE)
    }
}

impl Handler for AuditPd {
    type Error = core::convert::Infallible;

    fn protected(
        &mut self,
        channel: Channel,
        info: MessageInfo,
    ) -> Result<MessageInfo, Self::Error> {
        if info.label() == audit_call::USAGE {
            return Ok(match self.usage(channel) {
                Ok(u) => {
                    u.set_mrs();
                    MessageInfo::new(RECORDED, interface::Usage::REGISTERS)
                }
                Err(label) => MessageInfo::new(label, 0),
            });
        }
        let (label, index) = self.record(channel, info);
        set_mr(0, index);
        Ok(MessageInfo::new(label, 1))
    }
}

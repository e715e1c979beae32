//! The **template** protection domain: a copyable skeleton for a new PD that talks to an
//! existing one over a channel (`docs/adding-a-pd.md` walks through copying it).
//!
//! What it does: at start-up it asks psdb, on its own channel, what its namespace uses
//! ([`interface::msg::psdb::Request::Usage`]) and prints the answer,
//! `template|INFO: psdb answers: namespace template uses N of M bytes (...)`. psdb names a
//! caller's namespace after the calling PD's short name, so this PD can only ever learn its own
//! namespace's figures, and, being neither a tenant nor audit, its namespace has no share of the
//! disk (`psdb_pd::share_percent`: reads and `USAGE` work, every write is refused). When called
//! ([`msg::Request::Usage`]) it asks psdb again and answers with the same figures.
//!
//! **Its protocol** is [`msg`]: typed request and reply with their labels and registers, one
//! `encode` and one `decode` each, as every protocol between PDs has them. The handler decodes
//! a call, matches it exhaustively and encodes the reply; it never touches a message register
//! itself.
//!
//! **Passive**, like every PD but the wire: it runs its init, then only inside a call to it (of
//! which there are none in the template system). That keeps the box's argument about endpoint
//! receive rights (README, "Known limits"): only the wire ever runs on its own.
//!
//! **Where its constants come from.** The template is not in the committed `system.toml`;
//! `make template-test` builds a description with it (`pds/template/add.toml` appended). So
//! its channel is looked up by name in the generated table of every channel end
//! ([`interface::topology`]): [`PSDB`] is `None` when the description the crate is built with
//! does not name it, and [`init`] then says so instead of calling anything. The region's
//! symbols follow the description's rule (`<peer>_vaddr`, `<peer>_size`) and are checked
//! against the table at compile time.
//!
//! **Bounds.** No allocation (a heap test counts none); every reply from psdb is checked by
//! [`PsdbClient::usage`] before it is used; nothing a caller sends can make it panic: a call it
//! does not know is answered [`msg::Reply::BadCall`].
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

use core::fmt;

use interface::msg::Message;
use interface::topology::{self, End};
use interface::{PsdbClient, PsdbError, Usage};
use microkit::region::{ReadWrite, Region, RegionError};
use microkit::{Channel, Handler, MessageInfo};

pub mod msg;

/// This PD's name in the system description (`[[pd]] name`): its channels are found by it,
/// and psdb's namespace for it is this name (its short name).
pub const NAME: &str = "template";

/// Its end of the channel to psdb, if the description it is built with has one.
pub const PSDB: Option<End> = topology::end(NAME, interface::pd::PSDB);

/// The least region this PD accepts on its psdb channel: psdb's path area
/// ([`interface::psdb_call::DATA`]; `USAGE` itself uses no region).
pub const MIN_PSDB_REGION: usize = interface::psdb_call::DATA;

microkit::memory_region! {
    /// Shared with psdb (psdb_call's layout: the path at 0, data from `DATA`). The symbols are
    /// the rule's `<peer>_vaddr`/`<peer>_size`, checked against the description below.
    pub static PSDB_REGION: ReadWrite(vaddr = "psdb_vaddr", size = "psdb_size", min_len = MIN_PSDB_REGION);
}

// What the code relies on of the description, when it names this PD: it calls psdb, through a
// region with the symbols declared above, at least MIN_PSDB_REGION bytes.
const _: () = {
    if let Some(e) = PSDB {
        assert!(
            e.calls && topology::str_eq(e.symbol, "psdb_vaddr") && e.size >= MIN_PSDB_REGION,
            "system.toml's template -> psdb channel is not what pds/template expects"
        );
    }
};

/// Why the PD could not start.
#[derive(Debug)]
pub enum InitError {
    /// The description it was built with has no channel from [`NAME`] to psdb.
    NotInSystem,
    /// It runs under another name than [`NAME`] (system.toml and the code disagree).
    Named(microkit::PdName),
    /// The region shared with psdb is missing or too small.
    Region(RegionError),
}

impl fmt::Display for InitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InitError::NotInSystem => write!(
                f,
                "the system description this was built with has no channel {NAME} -> psdb \
                 (build with TOTEBOX_SYSTEM naming one that has: see docs/adding-a-pd.md)"
            ),
            InitError::Named(n) => write!(f, "running as PD `{n}`, but the code is for `{NAME}`"),
            InitError::Region(e) => write!(f, "region: {e}"),
        }
    }
}

/// The template PD: its psdb client.
#[derive(Debug)]
pub struct TemplatePd {
    psdb: PsdbClient,
}

/// Starts the PD from the description's constants: its channel to psdb and the region shared
/// with it, then asks psdb once and prints the answer ([`TemplatePd::report`]).
pub fn init() -> Result<TemplatePd, InitError> {
    let end = PSDB.ok_or(InitError::NotInSystem)?;
    let name = microkit::pd_name();
    if name.as_str() != NAME {
        return Err(InitError::Named(name));
    }
    let region = PSDB_REGION.get().map_err(InitError::Region)?;
    let mut pd = TemplatePd::new(end.channel, region);
    let _ = pd.report();
    Ok(pd)
}

impl TemplatePd {
    /// The PD calling psdb on `channel`, sharing `region` with it.
    pub fn new(channel: Channel, region: Region<ReadWrite>) -> Self {
        TemplatePd {
            psdb: PsdbClient::new(channel, region),
        }
    }

    /// Asks psdb what this PD's namespace uses and prints it (`template|INFO: psdb answers:
    /// ...`), or why it could not (`template|ERROR: ...`).
    pub fn report(&mut self) -> Result<Usage, PsdbError> {
        let answer = self.psdb.usage();
        match &answer {
            Ok(u) => microkit::debug_println!(
                "{NAME}|INFO: psdb answers: namespace {NAME} uses {} of {} bytes (index {} of \
                 {}; {} bytes free on the volume{})",
                u.disk_used,
                u.disk_quota,
                u.index_used,
                u.index_quota,
                u.volume_free,
                if u.damaged { "; damaged" } else { "" }
            ),
            Err(e) => microkit::debug_println!("{NAME}|ERROR: psdb did not answer USAGE: {e}"),
        }
        answer
    }

    /// Answers one call ([`msg`]).
    pub fn answer(&mut self, call: msg::Request) -> msg::Reply {
        match call {
            msg::Request::Usage => match self.psdb.usage() {
                Ok(u) => msg::Reply::Usage(u),
                Err(_) => msg::Reply::Storage,
            },
        }
    }
}

impl Handler for TemplatePd {
    type Error = core::convert::Infallible;

    /// Any channel: on seL4 a protected call arrives only on a channel whose other end may
    /// call this PD, which the description states (psdb's end may not).
    fn protected(&mut self, _: Channel, info: MessageInfo) -> Result<MessageInfo, Self::Error> {
        let m = Message::received(info);
        let reply = match msg::Request::decode(m.info(), m.mrs()) {
            Ok(call) => self.answer(call),
            Err(_) => msg::Reply::BadCall,
        };
        Ok(reply.encode().set_mrs())
    }
}

/// The PD as its image runs it (`src/main.rs`) and the simulator too: serving, or, when it
/// could not start, answering every call [`msg::Reply::NotServing`] after an `|ERROR:` line
/// saying why, instead of stopping (`interface::msg::Image`, every PD's fail-closed start-up).
pub type Image = interface::msg::Image<TemplatePd, InitError>;

/// [`init`], or why not on the console: the image's entry (`microkit::protection_domain!`).
pub fn boot() -> Image {
    let started = init();
    if let Err(e) = &started {
        microkit::debug_println!("{NAME}|ERROR: not serving: {e}");
    }
    Image::from(started)
}

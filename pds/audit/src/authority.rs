//! The audit PD as the access authority (docs/access.md, "Where each check happens"): the
//! clock, the pairing set, the nonce window and the identity key, and the record of every
//! decision before it is answered.
//!
//! - **Check** (the wire, before routing): `authorize` and the nonce check, nothing
//!   remembered; a refusal is recorded, a grant is not (the ledger's Authorize records it).
//! - **Authorize** (a ledger, before acting; the tenant is the channel's): `authorize`
//!   again, the nonce remembered, the grant recorded durably, then [`Reply::Granted`] with the
//!   rows the ledger may serve. So each request leaves exactly one record: its refusal at
//!   Check, or its grant or refusal at Authorize.
//! - **Serve** (the wire, archive-wide): `Identity` (unsigned), `PairChange` and
//!   `AuditObject` (ADMIN), answered here with a protocol response.
//!
//! Pairings: the image's initial set (`totebox_pairings` slot, written by `make image` from
//! `pairings.yaml`) is stored at first boot as the object `pairings/initial`; from then on the
//! disk's copy is the archive's initial set (a later image's slot does not change it).
//! Accepted changes are the write-once objects `pairings/<n as 16 hex digits>`, replayed in
//! order at boot. Both are committed with the audit log's current checkpoint (one psdb batch).
//!
//! Memory: the nonce window (at most 1.5 MiB, `access::NonceWindow`), the pairing set (at most
//! 64 pairings), one response buffer of [`protocol::MAX_PAYLOAD`] and one object buffer of
//! [`protocol::MAX_CHUNK`], allocated at init ([`ACCESS_HEAP`] in all, with margin).

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;

use access::{
    authorize, authorize_unsigned, Action, AuditRecord, Grant, Identity, NonceWindow, PairingSet,
    Refusal, SignedRequest, WINDOW_AHEAD, WINDOW_BACK,
};
use note::Verifier;
use protocol::{Body, ErrorCode, Op, Request, Response, MAX_CHUNK, MAX_PAYLOAD};

/// Heap the access state may use: the nonce window's bound (65,536 x 24 bytes), a response and
/// an object buffer, the pairing set and the rebuild's scratch, rounded up: 2 MiB.
pub const ACCESS_HEAP: usize = 2 << 20;
const _: () =
    assert!(access::NONCE_CAPACITY * 24 + MAX_PAYLOAD + MAX_CHUNK + 64 * 1024 <= ACCESS_HEAP);

/// The archive's clock: seconds since the Unix epoch, `None` when there is none (the PL031 in
/// the image, the host's clock in the simulator).
pub struct Clock(pub Box<dyn FnMut() -> Option<u64>>);

impl Clock {
    /// A clock reading `f`.
    pub fn new(f: impl FnMut() -> Option<u64> + 'static) -> Clock {
        Clock(Box::new(f))
    }

    /// No clock: every signed request is refused `ClockUnavailable`.
    pub fn none() -> Clock {
        Clock::new(|| None)
    }

    /// The reading.
    pub fn read(&mut self) -> Option<u64> {
        (self.0)()
    }
}

impl core::fmt::Debug for Clock {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Clock")
    }
}

/// How the archive decides requests.
pub enum Access {
    /// No access control, the archive **not provisioned** (docs/access.md): every unsigned
    /// request goes on and reads are recorded with the phase-1 record lines; a non-empty
    /// authorization is refused `BadRequest`. An image whose identity and pairings slots are
    /// both empty runs it (`crate::access_from_slots`), and so does the simulator without
    /// `sim::Keys::with_access`; provisioning (phase 2) removes it.
    Open,
    /// The archive's identity key and the initial pairing set (its image form).
    Enforce {
        /// The identity signer key string.
        identity: String,
        /// `PairingSet::to_bytes` of the initial set.
        pairings: Vec<u8>,
    },
}

impl core::fmt::Debug for Access {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Access::Open => "Open",
            Access::Enforce { .. } => "Enforce",
        })
    }
}

/// The enforcing state.
pub(crate) struct Authority {
    pub(crate) identity: Identity,
    pub(crate) archive: Verifier,
    /// The image's initial set (used only if the disk has none yet).
    pub(crate) image_set: PairingSet,
    pub(crate) set: PairingSet,
    pub(crate) nonces: NonceWindow,
    /// The latest time recorded.
    pub(crate) floor: u64,
    /// The next `pairings/<n>`.
    pub(crate) changes: u64,
    /// Whether the pairings and the window were loaded from disk.
    pub(crate) loaded: bool,
}

impl core::fmt::Debug for Authority {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Authority")
            .field("archive", &self.archive.vkey())
            .field("pairings", &self.set.pairings().len())
            .field("nonces", &self.nonces.len())
            .field("floor", &self.floor)
            .finish()
    }
}

impl Authority {
    pub(crate) fn new(identity: &str, pairings: &[u8]) -> Result<Authority, String> {
        let identity =
            Identity::from_skey(identity).map_err(|e| alloc::format!("identity key: {e}"))?;
        let image_set = PairingSet::from_bytes(pairings)
            .map_err(|e| alloc::format!("initial pairing set: {e}"))?;
        Ok(Authority {
            archive: identity.verifier(),
            identity,
            set: image_set.clone(),
            image_set,
            nonces: NonceWindow::new(),
            floor: 0,
            changes: 0,
            loaded: false,
        })
    }
}

/// The object path of pairing change `n` (stated once, in `access`).
pub fn change_path(n: u64) -> String {
    access::pairing_change_path(n)
}

/// The object holding the initial pairing set (stated once, in `access`).
pub const INITIAL_PATH: &str = access::INITIAL_PAIRINGS_PATH;

/// What a decision comes to.
#[allow(clippy::large_enum_variant)] // one on the stack per call, never stored
pub(crate) enum Decision {
    Granted(Grant),
    Refused(Refusal, Option<SignedRequest>),
}

/// Decides `auth` for `action` on `tenant` at `now`; `insert` remembers the nonce.
pub(crate) fn decide(
    a: &mut Authority,
    tenant: &str,
    action: &Action,
    auth: &[u8],
    now: Option<u64>,
    insert: bool,
) -> Decision {
    if auth.is_empty() {
        return match authorize_unsigned(&a.set, tenant, action) {
            Ok(g) => Decision::Granted(g),
            Err(r) => Decision::Refused(r, None),
        };
    }
    let req = match SignedRequest::parse(auth) {
        Ok(r) => r,
        Err(r) => return Decision::Refused(r, None),
    };
    let granted = authorize(&a.set, &a.archive, tenant, &req, now, a.floor)
        .and_then(|g| req.matches_action(tenant, action).map(|()| g));
    let g = match granted {
        Ok(g) => g,
        Err(r) => return Decision::Refused(r, Some(req)),
    };
    let t = now.unwrap_or(0);
    let nonce = if insert {
        a.nonces.insert(&g, t)
    } else {
        a.nonces.check(&g, t)
    };
    match nonce {
        Ok(()) => Decision::Granted(g),
        Err(r) => Decision::Refused(r, Some(req)),
    }
}

/// The record of a decision at `now` (the floor if the clock is missing or behind: records
/// never go back in time).
pub(crate) fn record_of(d: &Decision, tenant: &str, now: u64) -> Option<AuditRecord> {
    match d {
        Decision::Granted(g) => Some(AuditRecord::granted(g, now)),
        Decision::Refused(r, req) => Some(AuditRecord::refused(req.as_ref(), tenant, *r, now)),
    }
}

/// Whether a record at `time` may still hold a nonce of the window at `now`.
pub(crate) fn in_window(time: u64, now: u64) -> bool {
    time.saturating_add(WINDOW_BACK + WINDOW_AHEAD) >= now
}

/// The protocol request a Serve call carries, answered into `out`: its length.
pub(crate) fn error_response(id: u64, code: ErrorCode, out: &mut [u8]) -> Option<usize> {
    Response::error(id, code).encode(out).ok()
}

/// A Serve request's parts.
pub(crate) struct Served<'a> {
    pub(crate) req: Request<'a>,
}

impl<'a> Served<'a> {
    pub(crate) fn decode(b: &'a [u8]) -> Option<Served<'a>> {
        Request::decode(b).ok().map(|req| Served { req })
    }
}

/// Encodes `body` for request `id` into `out`.
pub(crate) fn respond(id: u64, body: Body<'_>, out: &mut [u8]) -> Option<usize> {
    Response { id, body }.encode(out).ok()
}

/// Whether an op is one audit serves (archive-wide, or the identity).
pub fn archive_wide(op: &Op<'_>) -> bool {
    matches!(
        op,
        Op::PairChange { .. } | Op::AuditObject { .. } | Op::Identity { .. }
    )
}

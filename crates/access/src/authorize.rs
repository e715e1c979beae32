//! The permission table as one pure function.

use alloc::string::String;
use core::fmt;

use note::Verifier;

use crate::capability::Capability;
use crate::pairing::{PairingSet, PairingType, Tenants};
use crate::request::{Action, Class, SignedRequest};
use crate::{Refusal, MAX_ROW, MAX_TIME, WINDOW_AHEAD, WINDOW_BACK};

/// A key as audit records and the nonce window name it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyRef {
    /// The note key name.
    pub name: String,
    /// The note key id (unique among paired keys: [`PairingSet`]'s invariant).
    pub key_id: u32,
}

impl KeyRef {
    /// The key of a verifier.
    pub fn of(v: &Verifier) -> KeyRef {
        KeyRef {
            name: String::from(v.name()),
            key_id: v.key_id(),
        }
    }
}

impl fmt::Display for KeyRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}+{:08x}", self.name, self.key_id)
    }
}

/// What [`authorize`] allowed: enough to act on and to write the audit record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The requester; `None` for an unsigned request served as public metadata.
    pub key: Option<KeyRef>,
    /// The pairing type it acted as (INTERFACE for public metadata).
    pub pairing: PairingType,
    /// The tenant (`None` for an archive-wide action).
    pub tenant: Option<String>,
    /// What is allowed.
    pub action: Action,
    /// For content: the rows that may be served, `start..end` (a read is cut at the
    /// capability's end: serve at most these). `None` for other actions.
    pub rows: Option<(u64, u64)>,
    /// The request's nonce (`None` unsigned): [`crate::NonceWindow::insert`] it, then record.
    pub nonce: Option<[u8; 16]>,
    /// The request's time (0 unsigned).
    pub time: u64,
    /// The nonce of the capability used, if any (it names the grant).
    pub capability: Option<[u8; 16]>,
}

/// Serves an unsigned request (an empty authorization): granted as INTERFACE only if the
/// archive's metadata is public and the action is metadata; else [`Refusal::Unsigned`].
/// `tenant` is the tenant the request reached.
pub fn authorize_unsigned(
    set: &PairingSet,
    tenant: &str,
    action: &Action,
) -> Result<Grant, Refusal> {
    if !set.public_metadata() || action.archive_wide() || action.class()? != Class::Metadata {
        return Err(Refusal::Unsigned);
    }
    Ok(Grant {
        key: None,
        pairing: PairingType::Interface,
        tenant: Some(String::from(tenant)),
        action: action.clone(),
        rows: None,
        nonce: None,
        time: 0,
        capability: None,
    })
}

/// Decides a signed request, as the table in `docs/access.md` says, checking in this order
/// (the first failure is the answer):
///
/// 1. the request's signature ([`Refusal::BadSignature`]);
/// 2. the signer is paired at all ([`Refusal::Unpaired`]);
/// 3. the archive named is `archive` ([`Refusal::WrongArchive`]);
/// 4. the tenant named is `tenant`, the one the request reached (`""` for archive-wide)
///    ([`Refusal::WrongTenant`]); the capability carried is the one signed
///    ([`Refusal::RequestMismatch`]);
/// 5. the clock: `now` is `Some` and below [`MAX_TIME`] ([`Refusal::ClockUnavailable`]) and
///    not earlier than `clock_floor`, the latest time already recorded
///    ([`Refusal::ClockBehind`]);
/// 6. the request's time is within `now - WINDOW_BACK ..= now + WINDOW_AHEAD`
///    ([`Refusal::Stale`]);
/// 7. the pairing covers the tenant (every tenant for the audit export)
///    ([`Refusal::Unpaired`]);
/// 8. the pairing type allows the action, with a capability where the table needs one
///    ([`Refusal::WrongOperation`], [`Refusal::CapabilityRequired`]), the capability checked
///    whenever one is carried ([`check_capability`]), and the rows ([`Refusal::OutOfRange`]).
///
/// The nonce is not checked here: [`crate::NonceWindow`] does that with the grant.
pub fn authorize(
    set: &PairingSet,
    archive: &Verifier,
    tenant: &str,
    req: &SignedRequest,
    now: Option<u64>,
    clock_floor: u64,
) -> Result<Grant, Refusal> {
    req.verify_signature()?;
    let pairing = set.get(&req.key).ok_or(Refusal::Unpaired)?;
    if &req.archive != archive {
        return Err(Refusal::WrongArchive);
    }
    if req.tenant.as_deref().unwrap_or("") != tenant {
        return Err(Refusal::WrongTenant);
    }
    req.check_capability_binding()?;
    let now = now
        .filter(|&t| t < MAX_TIME)
        .ok_or(Refusal::ClockUnavailable)?;
    if now < clock_floor {
        return Err(Refusal::ClockBehind);
    }
    if req.time < now.saturating_sub(WINDOW_BACK) || req.time > now.saturating_add(WINDOW_AHEAD) {
        return Err(Refusal::Stale);
    }
    let covered = match &req.action {
        Action::AuditObject { .. } => pairing.tenants == Tenants::All,
        Action::PairChange { .. } => true, // each change is checked against the ADMIN's tenants
        _ => pairing.tenants.covers(tenant),
    };
    if !covered {
        return Err(Refusal::Unpaired);
    }
    // A capability carried is always checked, and always bounds what it is used for.
    let cap = if req.capability_note().is_empty() {
        None
    } else {
        Some(check_capability(set, archive, tenant, req, now)?)
    };
    let kind = pairing.kind;
    let mut rows = None;
    match req.action.class()? {
        Class::Metadata => {}
        Class::Append => {
            if !matches!(kind, PairingType::Admin | PairingType::Input) {
                return Err(Refusal::WrongOperation);
            }
        }
        Class::Admin => {
            if kind != PairingType::Admin {
                return Err(Refusal::WrongOperation);
            }
        }
        Class::Content { start, end, bundle } => {
            if kind == PairingType::Interface {
                return Err(Refusal::WrongOperation);
            }
            if start >= MAX_ROW {
                return Err(Refusal::OutOfRange);
            }
            let mut served = (start, end);
            match &cap {
                None if kind != PairingType::Admin => return Err(Refusal::CapabilityRequired),
                None => {}
                Some(c) => {
                    let granted = if bundle { c.ops.bundle } else { c.ops.read };
                    if !granted {
                        return Err(Refusal::WrongOperation);
                    }
                    if !c.rows.contains(start) {
                        return Err(Refusal::OutOfRange);
                    }
                    let cap_end = c.rows.end_or_max();
                    if bundle && end > cap_end {
                        // A bundle is served whole or not at all.
                        return Err(Refusal::OutOfRange);
                    }
                    served.1 = end.min(cap_end);
                }
            }
            rows = Some(served);
        }
    }
    Ok(Grant {
        key: Some(KeyRef::of(&req.key)),
        pairing: kind,
        tenant: req.tenant.clone(),
        action: req.action.clone(),
        rows,
        nonce: Some(req.nonce),
        time: req.time,
        capability: cap.map(|c| c.nonce),
    })
}

/// Checks the capability a request carries, in this order: parses
/// ([`Refusal::Malformed`]); its signer is an ADMIN paired for the capability's tenant
/// ([`Refusal::UntrustedIssuer`]); its signature ([`Refusal::BadSignature`]); archive
/// ([`Refusal::WrongArchive`]); tenant is the request's ([`Refusal::WrongTenant`]); holder is
/// the request's signer ([`Refusal::WrongHolder`]); `not-before <= now`
/// ([`Refusal::NotYetValid`]); `now < expires` ([`Refusal::Expired`]).
fn check_capability(
    set: &PairingSet,
    archive: &Verifier,
    tenant: &str,
    req: &SignedRequest,
    now: u64,
) -> Result<Capability, Refusal> {
    let note = req.capability_note();
    let (cap, (name, id)) = Capability::parse(note)?;
    let issuer = set
        .by_name_id(&name, id)
        .filter(|p| p.kind == PairingType::Admin && p.tenants.covers(&cap.tenant))
        .ok_or(Refusal::UntrustedIssuer)?;
    Capability::verify(note, &issuer.key)?;
    if &cap.archive != archive {
        return Err(Refusal::WrongArchive);
    }
    if cap.tenant != tenant {
        return Err(Refusal::WrongTenant);
    }
    if cap.holder != req.key {
        return Err(Refusal::WrongHolder);
    }
    if now < cap.not_before {
        return Err(Refusal::NotYetValid);
    }
    if now >= cap.expires {
        return Err(Refusal::Expired);
    }
    Ok(cap)
}

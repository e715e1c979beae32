//! Why a request is refused: one kind per cause, each its own protocol [`ErrorCode`].

use core::fmt;

use protocol::ErrorCode;

/// Why access was refused. Closed; each maps to its own [`ErrorCode`] ([`Refusal::code`]) and
/// to a short name for audit records ([`Refusal::name`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// No signature, and the operation is not public metadata on a public archive.
    Unsigned,
    /// The authorization, request note or capability note is not well formed.
    Malformed,
    /// A signature does not verify.
    BadSignature,
    /// The signer is not paired, or not for the tenant(s) concerned.
    Unpaired,
    /// The request or capability names another archive.
    WrongArchive,
    /// The request or capability names another tenant than the one it reached.
    WrongTenant,
    /// The pairing type, or the capability, does not allow the operation.
    WrongOperation,
    /// The capability's holder is not the request's signer.
    WrongHolder,
    /// The capability is not signed by an ADMIN paired for its tenant.
    UntrustedIssuer,
    /// Content read by INPUT or USER without a capability.
    CapabilityRequired,
    /// The capability's `expires` has passed.
    Expired,
    /// The capability's `not-before` has not come.
    NotYetValid,
    /// Rows outside the capability's (or past [`crate::MAX_ROW`]).
    OutOfRange,
    /// The request's time is outside the window around the archive's clock.
    Stale,
    /// The (key, nonce) was already used within the window.
    Replayed,
    /// The archive has no trusted clock reading.
    ClockUnavailable,
    /// The clock reads earlier than a time already recorded.
    ClockBehind,
    /// The nonce window is at its bound for this key, or in all.
    NonceMemoryFull,
    /// The signed text does not describe the request it came with.
    RequestMismatch,
    /// The pairing change would leave no ADMIN.
    LastAdmin,
}

impl Refusal {
    /// Every refusal, in [`ErrorCode`] order (tests iterate over it).
    pub const ALL: [Refusal; 20] = [
        Refusal::Unsigned,
        Refusal::Malformed,
        Refusal::BadSignature,
        Refusal::Unpaired,
        Refusal::WrongArchive,
        Refusal::WrongTenant,
        Refusal::WrongOperation,
        Refusal::WrongHolder,
        Refusal::UntrustedIssuer,
        Refusal::CapabilityRequired,
        Refusal::Expired,
        Refusal::NotYetValid,
        Refusal::OutOfRange,
        Refusal::Stale,
        Refusal::Replayed,
        Refusal::ClockUnavailable,
        Refusal::ClockBehind,
        Refusal::NonceMemoryFull,
        Refusal::RequestMismatch,
        Refusal::LastAdmin,
    ];

    /// The protocol error code the client gets.
    pub fn code(self) -> ErrorCode {
        match self {
            Refusal::Unsigned => ErrorCode::Unsigned,
            Refusal::Malformed => ErrorCode::MalformedAuth,
            Refusal::BadSignature => ErrorCode::BadSignature,
            Refusal::Unpaired => ErrorCode::Unpaired,
            Refusal::WrongArchive => ErrorCode::WrongArchive,
            Refusal::WrongTenant => ErrorCode::WrongTenant,
            Refusal::WrongOperation => ErrorCode::WrongOperation,
            Refusal::WrongHolder => ErrorCode::WrongHolder,
            Refusal::UntrustedIssuer => ErrorCode::UntrustedIssuer,
            Refusal::CapabilityRequired => ErrorCode::CapabilityRequired,
            Refusal::Expired => ErrorCode::Expired,
            Refusal::NotYetValid => ErrorCode::NotYetValid,
            Refusal::OutOfRange => ErrorCode::OutOfRange,
            Refusal::Stale => ErrorCode::StaleRequest,
            Refusal::Replayed => ErrorCode::Replayed,
            Refusal::ClockUnavailable => ErrorCode::ClockUnavailable,
            Refusal::ClockBehind => ErrorCode::ClockBehind,
            Refusal::NonceMemoryFull => ErrorCode::NonceMemoryFull,
            Refusal::RequestMismatch => ErrorCode::RequestMismatch,
            Refusal::LastAdmin => ErrorCode::LastAdmin,
        }
    }

    /// The refusal an error code stands for, if it is one.
    pub fn from_code(code: ErrorCode) -> Option<Refusal> {
        Refusal::ALL.into_iter().find(|r| r.code() == code)
    }

    /// Its name in audit records (`outcome=<name>`): lowercase words joined by `-`, at most
    /// 19 bytes.
    pub fn name(self) -> &'static str {
        match self {
            Refusal::Unsigned => "unsigned",
            Refusal::Malformed => "malformed",
            Refusal::BadSignature => "bad-signature",
            Refusal::Unpaired => "unpaired",
            Refusal::WrongArchive => "wrong-archive",
            Refusal::WrongTenant => "wrong-tenant",
            Refusal::WrongOperation => "wrong-operation",
            Refusal::WrongHolder => "wrong-holder",
            Refusal::UntrustedIssuer => "untrusted-issuer",
            Refusal::CapabilityRequired => "capability-required",
            Refusal::Expired => "expired",
            Refusal::NotYetValid => "not-yet-valid",
            Refusal::OutOfRange => "out-of-range",
            Refusal::Stale => "stale",
            Refusal::Replayed => "replayed",
            Refusal::ClockUnavailable => "clock-unavailable",
            Refusal::ClockBehind => "clock-behind",
            Refusal::NonceMemoryFull => "nonce-memory-full",
            Refusal::RequestMismatch => "request-mismatch",
            Refusal::LastAdmin => "last-admin",
        }
    }

    /// The refusal named `name` ([`Refusal::name`]).
    pub fn from_name(name: &str) -> Option<Refusal> {
        Refusal::ALL.into_iter().find(|r| r.name() == name)
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The words the client prints are the protocol's.
        fmt::Display::fmt(&self.code(), f)
    }
}

//! Typed messages of the protected calls between PDs, one module per channel kind (the
//! issue's "one small message crate per channel kind", kept as modules of `interface` so both
//! ends share one definition): [`ledger`] (wire -> ledger_<t>), [`audit`] (ledger_<t> ->
//! audit) and [`psdb`] (ledger_<t>/audit -> psdb).
//!
//! Each protocol has a closed request enum and a closed reply enum with explicit label values;
//! a label is encoded by `label()` and decoded by `TryFrom<u64>` in that module and nowhere
//! else, and a label that is not one of the enum's decodes to [`UnknownLabel`] (never a
//! panic). The receiving side decodes first and then matches exhaustively. The message
//! registers each variant carries are documented on it.
//!
//! Request labels lie in [`REQUEST_LABELS`] (from 1), reply labels in [`REPLY_LABELS`] (from
//! 0x100), so a reply can never be taken for a request nor one protocol's reply for another's
//! request. Every protocol's reply enum has `NotServing` = [`NOT_SERVING`]: what a PD that
//! could not start answers to every call (`ledger_pd::LedgerImage`, `audit_pd::AuditImage`,
//! psdb's `NoStore`); callers treat it as "unavailable". The simulator's `sim::REFUSED`
//! (0xFFFF_FFFF, a call the kernel rules refuse) is outside both ranges.

pub mod audit;
pub mod ledger;
pub mod psdb;

use core::ops::Range;

/// Labels of requests, in every protocol.
pub const REQUEST_LABELS: Range<u64> = 1..0x100;
/// Labels of replies, in every protocol.
pub const REPLY_LABELS: Range<u64> = 0x100..0x200;
/// The one "peer not serving" reply label, shared by every protocol's reply enum.
pub const NOT_SERVING: u64 = 0x1FF;

/// A label that is not one of its enum's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownLabel(pub u64);

/// Declares a closed `#[repr(u64)]` label enum with `label()`, `ALL` and `TryFrom<u64>`.
macro_rules! labels {
    ($(#[$m:meta])* pub enum $name:ident { $($(#[$vm:meta])* $v:ident = $val:expr,)+ }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[repr(u64)]
        pub enum $name {
            $($(#[$vm])* $v = $val,)+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$v,)+];

            /// The label on the wire.
            pub const fn label(self) -> u64 {
                self as u64
            }

            /// A `MessageInfo` with this label and `count` message registers.
            pub const fn info(self, count: usize) -> microkit::MessageInfo {
                microkit::MessageInfo::new(self as u64, count)
            }
        }

        impl TryFrom<u64> for $name {
            type Error = $crate::msg::UnknownLabel;

            fn try_from(label: u64) -> Result<Self, Self::Error> {
                $(if label == $val { return Ok($name::$v); })+
                Err($crate::msg::UnknownLabel(label))
            }
        }
    };
}
pub(crate) use labels;

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec::Vec;

    use super::*;

    fn all_requests() -> Vec<u64> {
        let mut v: Vec<u64> = Vec::new();
        v.extend(ledger::Request::ALL.iter().map(|r| r.label()));
        v.extend(audit::Request::ALL.iter().map(|r| r.label()));
        v.extend(psdb::Request::ALL.iter().map(|r| r.label()));
        v
    }

    fn all_replies() -> Vec<u64> {
        let mut v: Vec<u64> = Vec::new();
        v.extend(ledger::Reply::ALL.iter().map(|r| r.label()));
        v.extend(audit::Reply::ALL.iter().map(|r| r.label()));
        v.extend(psdb::Reply::all().iter().map(|r| r.label()));
        v
    }

    /// Requests and replies of every protocol lie in their ranges, so none collides with
    /// another kind; within one protocol, all are distinct.
    #[test]
    fn requests_and_replies_are_disjoint() {
        const { assert!(REQUEST_LABELS.end <= REPLY_LABELS.start) };
        let (req, rep) = (all_requests(), all_replies());
        assert!(req.iter().all(|l| REQUEST_LABELS.contains(l)), "{req:?}");
        assert!(rep.iter().all(|l| REPLY_LABELS.contains(l)), "{rep:?}");
        assert!(req.iter().all(|l| !rep.contains(l)));
        let distinct = |v: &[u64]| v.iter().enumerate().all(|(i, a)| !v[i + 1..].contains(a));
        for set in [
            ledger::Request::ALL
                .iter()
                .map(|r| r.label())
                .collect::<Vec<_>>(),
            ledger::Reply::ALL.iter().map(|r| r.label()).collect(),
            audit::Request::ALL.iter().map(|r| r.label()).collect(),
            audit::Reply::ALL.iter().map(|r| r.label()).collect(),
            psdb::Request::ALL.iter().map(|r| r.label()).collect(),
            psdb::Reply::all().iter().map(|r| r.label()).collect(),
        ] {
            assert!(distinct(&set), "{set:?}");
        }
    }

    /// The "not serving" reply is one value in every protocol, a reply, and not the
    /// simulator's refusal (0xFFFF_FFFF, checked again in `sim`).
    #[test]
    fn not_serving_is_shared() {
        assert_eq!(ledger::Reply::NotServing.label(), NOT_SERVING);
        assert_eq!(audit::Reply::NotServing.label(), NOT_SERVING);
        assert_eq!(psdb::Reply::NotServing.label(), NOT_SERVING);
        assert!(REPLY_LABELS.contains(&NOT_SERVING));
        assert_ne!(NOT_SERVING, 0xFFFF_FFFF);
    }

    /// Every label outside a protocol's enums is refused by its decoders, never a panic.
    #[test]
    fn unknown_labels_are_refused() {
        let (req, rep) = (all_requests(), all_replies());
        for l in (0..0x400).chain([u64::MAX, 0xFFFF_FFFF, 1 << 51]) {
            let lr = ledger::Request::try_from(l);
            assert_eq!(
                lr.is_ok(),
                ledger::Request::ALL.iter().any(|r| r.label() == l)
            );
            let lp = ledger::Reply::try_from(l);
            assert_eq!(
                lp.is_ok(),
                ledger::Reply::ALL.iter().any(|r| r.label() == l)
            );
            let ar = audit::Request::try_from(l);
            assert_eq!(
                ar.is_ok(),
                audit::Request::ALL.iter().any(|r| r.label() == l)
            );
            let ap = audit::Reply::try_from(l);
            assert_eq!(ap.is_ok(), audit::Reply::ALL.iter().any(|r| r.label() == l));
            let pr = psdb::Request::try_from(l);
            assert_eq!(
                pr.is_ok(),
                psdb::Request::ALL.iter().any(|r| r.label() == l)
            );
            let pp = psdb::Reply::try_from(l);
            assert_eq!(
                pp.is_ok(),
                psdb::Reply::all().iter().any(|r| r.label() == l)
            );
            if !req.contains(&l) && !rep.contains(&l) {
                assert_eq!(lr, Err(UnknownLabel(l)));
                assert_eq!(pp, Err(UnknownLabel(l)));
            }
        }
    }

    /// Every request and reply round-trips through its label.
    #[test]
    fn every_label_round_trips() {
        for r in ledger::Request::ALL {
            assert_eq!(ledger::Request::try_from(r.label()), Ok(*r));
        }
        for r in ledger::Reply::ALL {
            assert_eq!(ledger::Reply::try_from(r.label()), Ok(*r));
        }
        for r in audit::Request::ALL {
            assert_eq!(audit::Request::try_from(r.label()), Ok(*r));
        }
        for r in audit::Reply::ALL {
            assert_eq!(audit::Reply::try_from(r.label()), Ok(*r));
        }
        for r in psdb::Request::ALL {
            assert_eq!(psdb::Request::try_from(r.label()), Ok(*r));
        }
        for r in psdb::Reply::all() {
            assert_eq!(psdb::Reply::try_from(r.label()), Ok(r));
            assert_eq!(r.info(0).label(), r.label());
        }
    }
}

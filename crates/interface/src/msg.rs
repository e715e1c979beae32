//! Typed messages of the protected calls between PDs, one small crate per channel kind,
//! shared by both ends (as rust-sel4's `interface-types` and hubris's `*-api` crates are):
//! [`ledger`] (`msg-ledger`: wire -> ledger_<t>), [`audit`] (`msg-audit`: ledger_<t> ->
//! audit) and [`psdb`] (`msg-psdb`: ledger_<t>/audit/other PDs -> psdb), over what they all
//! share (`msg-core`, re-exported here: [`Message`], [`DecodeError`], [`Image`], the label
//! ranges and [`NOT_SERVING`]). Those crates hold labels and registers only; the region
//! layouts and limits, which the system description sizes, stay in this crate
//! ([`crate::ledger_call`], [`crate::audit_call`], [`crate::psdb_call`]).
//!
//! Each protocol's request and reply types carry their register arguments; `encode` makes a
//! [`Message`], `decode(info, mrs)` takes one apart (a reply decodes against the request it
//! answers), and anything else is a [`DecodeError`]. The receiving side decodes first and then
//! matches exhaustively. The simulator's `sim::REFUSED` (0xFFFF_FFFF, a call the kernel rules
//! refuse) is outside both label ranges, so it decodes as no protocol's reply.

pub use msg_audit as audit;
pub use msg_core::{
    DecodeError, Image, Message, Registers, MAX_MRS, NOT_SERVING, NOT_SERVING_REPLY, REPLY_LABELS,
    REQUEST_LABELS,
};
pub use msg_ledger as ledger;
pub use msg_psdb as psdb;

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec::Vec;

    use super::*;

    /// Every label a protocol's replies use (psdb's refusals are 0x100 + code).
    fn replies() -> Vec<(&'static str, Vec<u64>)> {
        let mut p: Vec<u64> = Vec::from([psdb::label::OK]);
        p.extend(
            (psdb::FIRST_STORE_CODE..=psdb::LAST_STORE_CODE).map(|c| psdb::Reply::Store(c).label()),
        );
        p.extend([
            psdb::label::BAD_LABEL,
            psdb::label::BAD_LENGTH,
            psdb::label::TOO_LARGE,
            psdb::label::NOT_SERVING,
        ]);
        Vec::from([
            (
                "ledger",
                Vec::from([
                    ledger::label::OK,
                    ledger::label::BAD_CALL,
                    ledger::label::STAGED,
                    ledger::label::NOT_SERVING,
                ]),
            ),
            (
                "audit",
                Vec::from([
                    audit::label::RECORDED,
                    audit::label::BAD_CALL,
                    audit::label::STORAGE,
                    audit::label::NOT_SERVING,
                ]),
            ),
            ("psdb", p),
        ])
    }

    fn requests() -> Vec<(&'static str, Vec<u64>)> {
        Vec::from([
            ("ledger", Vec::from(ledger::label::REQUESTS)),
            ("audit", Vec::from(audit::label::REQUESTS)),
            ("psdb", Vec::from(psdb::label::REQUESTS)),
        ])
    }

    /// Requests and replies of every protocol lie in their ranges, so none collides with
    /// another kind; within one protocol, all requests are distinct, and all replies.
    #[test]
    fn requests_and_replies_are_disjoint() {
        let distinct = |v: &[u64]| v.iter().enumerate().all(|(i, a)| !v[i + 1..].contains(a));
        for (name, req) in requests() {
            assert!(
                req.iter().all(|l| REQUEST_LABELS.contains(l)),
                "{name} {req:?}"
            );
            assert!(distinct(&req), "{name} {req:?}");
        }
        for (name, rep) in replies() {
            assert!(
                rep.iter().all(|l| REPLY_LABELS.contains(l)),
                "{name} {rep:?}"
            );
            assert!(distinct(&rep), "{name} {rep:?}");
        }
    }

    /// The "not serving" reply is one value in every protocol, with no registers, and not
    /// the simulator's refusal (0xFFFF_FFFF, checked again in `sim`).
    #[test]
    fn not_serving_is_shared() {
        assert_eq!(ledger::Reply::NotServing.encode(), NOT_SERVING_REPLY);
        assert_eq!(audit::Reply::NotServing.encode(), NOT_SERVING_REPLY);
        assert_eq!(psdb::Reply::NotServing.encode(), NOT_SERVING_REPLY);
        assert_eq!(NOT_SERVING_REPLY.info().count(), 0);
        assert_ne!(NOT_SERVING, 0xFFFF_FFFF);
        // What a peer that did not start answers decodes as every protocol's NotServing.
        let (info, mrs) = (NOT_SERVING_REPLY.info(), NOT_SERVING_REPLY.mrs());
        let l = ledger::Request {
            call: ledger::Call::Request,
            len: 1,
        };
        assert_eq!(
            ledger::Reply::decode(&l, info, mrs),
            Ok(ledger::Reply::NotServing)
        );
        assert_eq!(
            audit::Reply::decode(&audit::Request::Usage, info, mrs),
            Ok(audit::Reply::NotServing)
        );
        assert_eq!(
            psdb::Reply::decode(&psdb::Request::Usage, info, mrs),
            Ok(psdb::Reply::NotServing)
        );
    }

    /// The labels the committed documents and tests name (`docs/adding-a-pd.md`).
    #[test]
    fn labels_are_unchanged() {
        assert_eq!(
            (REQUEST_LABELS, REPLY_LABELS, NOT_SERVING),
            (1..0x100, 0x100..0x200, 0x1FF)
        );
        assert_eq!(ledger::label::REQUESTS, [1, 2, 3]);
        assert_eq!(audit::label::REQUESTS, [1, 3, 4, 5, 6]);
        assert_eq!(
            psdb::label::REQUESTS,
            [1, 2, 3, 4, 24, 25, 26, 27, 28, 29, 30, 31, 32]
        );
        let r = replies();
        assert_eq!(r[0].1, [0x100, 0x101, 0x102, 0x1FF]);
        assert_eq!(r[1].1, [0x100, 0x101, 0x102, 0x1FF]);
        assert_eq!(r[2].1.len(), 1 + 19 + 4);
        assert_eq!(r[2].1[1..=20], (0x101..=0x114).collect::<Vec<_>>()[..]);
    }
}

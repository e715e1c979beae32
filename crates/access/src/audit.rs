//! The audit record of one request: who did what, when, and how it ended. One line of text,
//! what the audit PD signs and keeps in its journal (`pds/audit`), parsed back at boot to
//! rebuild the nonce window and the clock floor.

use alloc::string::String;
use core::fmt::Write as _;

use crate::request::{Class, SignedRequest};
use crate::text;
use crate::{Grant, PairingType, Refusal, MAX_ROW, MAX_TIME};

/// Longest line [`AuditRecord::to_line`] writes (without a newline): 228 bytes, reached with
/// an index and rows near 2^48, a 32-byte tenant and the longest op and refusal names. The
/// audit journal holds a signed note of the line in one record of 363 bytes; with the audit
/// log's origin `totebox-envelope-b/audit` the note adds 124 bytes, leaving 239.
pub const MAX_AUDIT_LINE: usize = 228;

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Granted (and recorded before it acts).
    Granted,
    /// Refused, changing nothing.
    Refused(Refusal),
}

/// One audit record:
///
/// `index=<i> time=<t> key=<8 hex|-> type=<type|-> tenant=<t|-> op=<op|-> rows=<a>..<b>|-
/// nonce=<base64|-> skew=<s|-> outcome=<granted|refusal name>` (one line, single spaces).
///
/// `time` is the archive's clock when it was recorded; `key` the requester's key id (for a
/// refusal, the key the request claims, which may not have verified); `type` the pairing type
/// it acted as (granted only); `rows` the rows served or asked for, end excluded; `nonce` and
/// `skew` (request time minus `time`) are recorded for grants, so that the request's nonce
/// and its time come back at boot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// Archive clock, Unix seconds.
    pub time: u64,
    /// Requester key id.
    pub key: Option<u32>,
    /// Pairing type acted as.
    pub pairing: Option<PairingType>,
    /// Tenant.
    pub tenant: Option<String>,
    /// Operation name ([`crate::Action::name`]).
    pub op: Option<&'static str>,
    /// Rows `start..end`.
    pub rows: Option<(u64, u64)>,
    /// The request's nonce (grants).
    pub nonce: Option<[u8; 16]>,
    /// Request time minus record time (grants: within `-WINDOW_BACK..=WINDOW_AHEAD`).
    pub skew: Option<i64>,
    /// Granted or the refusal.
    pub outcome: Outcome,
}

const OPS: [&str; 8] = [
    "hello",
    "checkpoint",
    "status",
    "read",
    "get-object",
    "append",
    "pair-change",
    "audit-object",
];

impl AuditRecord {
    /// The record of a grant at archive time `now`.
    pub fn granted(g: &Grant, now: u64) -> AuditRecord {
        AuditRecord {
            time: now,
            key: g.key.as_ref().map(|k| k.key_id),
            pairing: Some(g.pairing),
            tenant: g.tenant.clone(),
            op: Some(g.action.name()),
            rows: g.rows,
            nonce: g.nonce,
            skew: g.nonce.map(|_| g.time as i64 - now as i64),
            outcome: Outcome::Granted,
        }
    }

    /// The record of a refusal at `now` of a request that reached `tenant` (`""`: none):
    /// `req` is what could be parsed of it (unverified, so its key is only claimed).
    pub fn refused(
        req: Option<&SignedRequest>,
        tenant: &str,
        why: Refusal,
        now: u64,
    ) -> AuditRecord {
        let rows = req.and_then(|r| match r.action.class() {
            Ok(Class::Content { start, end, .. }) if start < MAX_ROW => {
                Some((start, end.min(MAX_ROW)))
            }
            _ => None,
        });
        AuditRecord {
            time: now,
            key: req.map(|r| r.key.key_id()),
            pairing: None,
            tenant: (text::valid_tenant(tenant)).then(|| String::from(tenant)),
            op: req.map(|r| r.action.name()),
            rows,
            nonce: None,
            skew: None,
            outcome: Outcome::Refused(why),
        }
    }

    /// The line for audit-log index `index`; `None` if a field is outside its bound (index or
    /// rows at or past 2^48, time past 2^32, skew beyond four characters), so a line is never
    /// longer than [`MAX_AUDIT_LINE`].
    pub fn to_line(&self, index: u64) -> Option<String> {
        if index >= MAX_ROW
            || self.time >= MAX_TIME
            || self
                .rows
                .is_some_and(|(a, b)| a >= MAX_ROW || b > MAX_ROW || b < a)
            || self.skew.is_some_and(|s| !(-999..=9999).contains(&s))
            || self.tenant.as_ref().is_some_and(|t| !text::valid_tenant(t))
            || self.op.is_some_and(|o| !OPS.contains(&o))
        {
            return None;
        }
        let mut s = String::with_capacity(MAX_AUDIT_LINE);
        let _ = write!(s, "index={index} time={}", self.time);
        match self.key {
            Some(k) => {
                let _ = write!(s, " key={k:08x}");
            }
            None => s.push_str(" key=-"),
        }
        s.push_str(" type=");
        s.push_str(self.pairing.map_or("-", PairingType::name));
        s.push_str(" tenant=");
        s.push_str(self.tenant.as_deref().unwrap_or("-"));
        s.push_str(" op=");
        s.push_str(self.op.unwrap_or("-"));
        match self.rows {
            Some((a, b)) => {
                let _ = write!(s, " rows={a}..{b}");
            }
            None => s.push_str(" rows=-"),
        }
        s.push_str(" nonce=");
        match &self.nonce {
            Some(n) => s.push_str(&text::b64(n)),
            None => s.push('-'),
        }
        match self.skew {
            Some(k) => {
                let _ = write!(s, " skew={k}");
            }
            None => s.push_str(" skew=-"),
        }
        s.push_str(" outcome=");
        s.push_str(match self.outcome {
            Outcome::Granted => "granted",
            Outcome::Refused(r) => r.name(),
        });
        Some(s)
    }

    /// Parses [`AuditRecord::to_line`]'s line exactly: its index and the record.
    pub fn parse_line(line: &str) -> Option<(u64, AuditRecord)> {
        let mut f = line.split(' ');
        let mut field = |k: &str| -> Option<&str> {
            let (key, v) = f.next()?.split_once('=')?;
            (key == k && !v.is_empty()).then_some(v)
        };
        let index = text::decimal(field("index")?).ok()?;
        let time = text::decimal(field("time")?).ok()?;
        let key = match opt(field("key")?) {
            None => None,
            Some(h)
                if h.len() == 8
                    && h.bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) =>
            {
                Some(u32::from_str_radix(h, 16).ok()?)
            }
            Some(_) => return None,
        };
        let pairing = match opt(field("type")?) {
            None => None,
            Some(t) => Some(PairingType::parse(t).filter(|p| p.name() == t)?),
        };
        let tenant = opt(field("tenant")?).map(String::from);
        let op = match opt(field("op")?) {
            None => None,
            Some(o) => Some(*OPS.iter().find(|x| **x == o)?),
        };
        let rows = match opt(field("rows")?) {
            None => None,
            Some(r) => {
                let (a, b) = r.split_once("..")?;
                Some((text::decimal(a).ok()?, text::decimal(b).ok()?))
            }
        };
        let nonce = match opt(field("nonce")?) {
            None => None,
            Some(n) => {
                let v = base64_16(n)?;
                Some(v)
            }
        };
        let skew = match opt(field("skew")?) {
            None => None,
            Some(k) => Some(k.parse::<i64>().ok()?),
        };
        let outcome = match field("outcome")? {
            "granted" => Outcome::Granted,
            r => Outcome::Refused(Refusal::from_name(r)?),
        };
        if f.next().is_some() {
            return None;
        }
        let rec = AuditRecord {
            time,
            key,
            pairing,
            tenant,
            op,
            rows,
            nonce,
            skew,
            outcome,
        };
        // One spelling per record.
        (rec.to_line(index)?.as_str() == line).then_some((index, rec))
    }

    /// For a granted record: the key id, nonce and request time to put back in the nonce
    /// window at boot ([`crate::NonceWindow::restore`]).
    pub fn nonce_entry(&self) -> Option<(u32, [u8; 16], u64)> {
        if self.outcome != Outcome::Granted {
            return None;
        }
        let t = self.time.checked_add_signed(self.skew?)?;
        Some((self.key?, self.nonce?, t))
    }
}

fn opt(v: &str) -> Option<&str> {
    (v != "-").then_some(v)
}

fn base64_16(s: &str) -> Option<[u8; 16]> {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine as _;
    let v = STANDARD.decode(s).ok()?;
    v.try_into().ok()
}

//! The access table of docs/access.md as data, for any box (issue 8): every pairing type
//! against every operation, with and without a capability, with and without public metadata;
//! and every kind of bad request. One definition for `tests/tests/access_table.rs` (the
//! simulator library, its disk inspected directly) and `examples/access_table_client.rs` (a
//! running box over its socket, the simulator binary or the image in QEMU, its state read
//! through ADMIN-signed checkpoint requests). A [`Transport`] carries frames; a [`Runner`]
//! builds the signed requests, sends them, checks each answer's exact code and, for every
//! refusal, that no tenant's state changed, and keeps what each audited request should have
//! left in the audit log. A failed case is counted and described, never a panic, so a live
//! run reports them all. (Building a request, signing it with a valid key, never fails for
//! these inputs: an `expect` there is a broken table, not a case.)

#![allow(clippy::expect_used, clippy::unreachable)]

use std::cell::Cell;

use access::{Action, CapOps, Capability, Change, PairingChange, PairingType, Refusal, RowRange};
use access::{SignedRequest, Tenants};
use note::{Signer, Verifier};
use protocol::{encode_frame, Authorization, Body, Decoder, ErrorCode, Op, Request, Response};

/// The tenant the table runs against (the first), and another one (signed-for-another-tenant).
pub const T: &str = interface::TENANTS[0];
/// Another tenant of the box.
pub const OTHER: &str = interface::TENANTS[1];

/// The host clock, seconds since the epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The keys a table run signs with: the ADMIN (paired for `*`), an INPUT, a USER and an
/// INTERFACE key (paired for [`T`]), and a stranger nobody paired.
#[derive(Debug)]
pub struct World {
    /// The archive's identity verifier (what requests name).
    pub archive: Verifier,
    /// ADMIN for `*`.
    pub admin: Signer,
    /// INPUT for [`T`].
    pub input: Signer,
    /// USER for [`T`].
    pub user: Signer,
    /// INTERFACE for [`T`].
    pub iface: Signer,
    /// Never paired.
    pub stranger: Signer,
    nonce: Cell<u64>,
    salt: [u8; 8],
}

impl World {
    /// The keys; nonces are a counter and `salt` (a live box remembers earlier runs' nonces).
    pub fn new(
        archive: Verifier,
        [admin, input, user, iface, stranger]: [Signer; 5],
        salt: [u8; 8],
    ) -> World {
        World {
            archive,
            admin,
            input,
            user,
            iface,
            stranger,
            nonce: Cell::new(1),
            salt,
        }
    }

    /// A nonce never used before by this world.
    pub fn fresh_nonce(&self) -> [u8; 16] {
        let n = self.nonce.get();
        self.nonce.set(n + 1);
        let mut out = [0u8; 16];
        out[..8].copy_from_slice(&n.to_be_bytes());
        out[8..].copy_from_slice(&self.salt);
        out
    }

    /// A capability from `issuer` to `holder` for [`T`] (read,bundle on every row, valid for
    /// an hour), edited by `f`.
    pub fn cap(
        &self,
        issuer: &Signer,
        holder: &Signer,
        f: impl FnOnce(&mut Capability),
    ) -> Vec<u8> {
        let mut c = Capability {
            archive: self.archive.clone(),
            tenant: T.into(),
            holder: holder.verifier(),
            ops: CapOps::parse("read,bundle", true).expect("ops"),
            rows: RowRange::parse("0..").expect("rows"),
            not_before: now() - 60,
            expires: now() + 3600,
            nonce: self.fresh_nonce(),
        };
        f(&mut c);
        c.sign(issuer).expect("a capability signs")
    }

    /// `who`'s signed request for `op` on `tenant` ("" archive-wide) with `cap`.
    pub fn sign(&self, who: &Signer, tenant: &str, op: &Op<'_>, cap: &[u8]) -> Vec<u8> {
        self.sign_with(who, &self.archive, tenant, op, cap, now())
    }

    /// As [`World::sign`], for `archive` at `time`.
    pub fn sign_with(
        &self,
        who: &Signer,
        archive: &Verifier,
        tenant: &str,
        op: &Op<'_>,
        cap: &[u8],
        time: u64,
    ) -> Vec<u8> {
        let action = Action::from_op(op)
            .expect("an op the table signs")
            .expect("a signable op");
        SignedRequest::sign(who, archive, tenant, &action, time, self.fresh_nonce(), cap)
            .expect("a request signs")
    }

    /// The ADMIN's signed pairing change note pairing `key` as `kind` for `tenants` (what
    /// `totebox pair add --connect` sends).
    pub fn pairing_note(&self, kind: PairingType, tenants: &[&str], key: Verifier) -> Vec<u8> {
        PairingChange {
            archive: self.archive.clone(),
            change: Change::Add {
                kind,
                tenants: Tenants::new(tenants).expect("tenants"),
            },
            key,
            time: now(),
            nonce: self.fresh_nonce(),
        }
        .sign(&self.admin)
        .expect("a pairing change signs")
    }

    /// A valid pairing change by the ADMIN: a new USER key for [`T`].
    pub fn pair_change(&self) -> Vec<u8> {
        let n = self.fresh_nonce();
        let key = Signer::generate("new", &[n[7]; 32]).expect("key");
        self.pairing_note(PairingType::User, &[T], key.verifier())
    }
}

/// An answer, owned: its body's name (`Appended`, `Object`, ...) or its error code; `Lost` if
/// the transport failed or the box answered something else than one response to the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ans {
    /// Not an error: the body's variant name.
    Ok(String),
    /// An error answer.
    Err(ErrorCode),
    /// No (well-formed) answer.
    Lost(String),
}

/// One request's frame.
pub fn frame(id: u64, tenant: &str, auth: &[u8], op: Op<'_>) -> Vec<u8> {
    let mut buf = vec![0u8; protocol::MAX_PAYLOAD];
    let n = Request {
        id,
        tenant,
        capability: auth,
        op,
    }
    .encode(&mut buf)
    .expect("a request encodes");
    let mut out = Vec::new();
    encode_frame(&buf[..n], |b| out.extend_from_slice(b));
    out
}

/// The answers in `bytes`, each with its request id.
pub fn answers(bytes: &[u8]) -> Vec<(u64, Ans)> {
    let mut d = Decoder::new(vec![0u8; protocol::MAX_ENCODED]);
    let mut got = Vec::new();
    d.feed(bytes, |f| {
        let r = match f.map(Response::decode) {
            Ok(Ok(r)) => r,
            e => {
                got.push((0, Ans::Lost(format!("a malformed answer: {e:?}"))));
                return;
            }
        };
        let a = match r.body {
            Body::Error { code } => Ans::Err(code),
            b => Ans::Ok(body_name(&b)),
        };
        got.push((r.id, a));
    });
    got
}

/// A body's variant name.
pub fn body_name(b: &Body<'_>) -> String {
    format!("{b:?}")
        .split([' ', '{', '('])
        .next()
        .unwrap_or("")
        .into()
}

/// One frame of entries.
pub fn bundle(es: &[&[u8]]) -> Vec<u8> {
    let mut buf = vec![0u8; protocol::MAX_PAYLOAD];
    let mut len = 0;
    for e in es {
        assert!(protocol::push_entry(&mut buf, &mut len, e));
    }
    buf.truncate(len);
    buf
}

/// A key's id as the audit log spells it; `-` for none.
pub fn key_of(who: Option<&Signer>) -> String {
    who.map_or("-".into(), |s| format!("{:08x}", s.verifier().key_id()))
}

/// The audit record's outcome name for an answer.
pub fn outcome_of(ans: &Ans) -> String {
    match ans {
        Ans::Ok(_) => "granted".to_string(),
        Ans::Err(code) => {
            Refusal::from_code(*code).map_or_else(|| format!("{code:?}"), |r| r.name().to_string())
        }
        Ans::Lost(_) => "lost".to_string(),
    }
}

/// What carries frames to a box.
pub trait Transport {
    /// Sends `frames` (`n` encoded requests) and returns the bytes of their `n` answers.
    fn exchange(&mut self, frames: &[u8], n: usize) -> Result<Vec<u8>, String>;
    /// Every tenant's state as the box's disk holds it, if the transport can see the disk;
    /// `None`: the [`Runner`] asks the box (an ADMIN-signed checkpoint per tenant).
    fn state(&mut self) -> Option<Vec<Vec<u8>>> {
        None
    }
}

/// The tenants' states: per tenant, what identifies it (its checkpoint's origin, size and
/// root hash, as the box states them, or its checkpoint as the disk holds it).
pub type State = Vec<Vec<u8>>;

/// Runs cases against one box.
#[derive(Debug)]
pub struct Runner<'w, X> {
    /// The transport.
    pub x: X,
    /// The keys.
    pub w: &'w World,
    /// The next request id.
    pub next_id: u64,
    /// What each audited request should have left in the audit log, in order: its key id
    /// (`-` unsigned) and its outcome (`granted` or the refusal's name).
    pub expected: Vec<(String, String)>,
    /// The failed cases, each described.
    pub failures: Vec<String>,
    /// Cases run.
    pub cases: usize,
}

impl<'w, X: Transport> Runner<'w, X> {
    /// A runner over `x`.
    pub fn new(x: X, w: &'w World) -> Self {
        Runner {
            x,
            w,
            next_id: 1,
            expected: Vec::new(),
            failures: Vec::new(),
            cases: 0,
        }
    }

    fn fail(&mut self, what: String) {
        self.failures.push(what);
    }

    /// Sends frames at once (`n` requests); their answers.
    pub fn feed(&mut self, input: &[u8], n: usize) -> Vec<(u64, Ans)> {
        match self.x.exchange(input, n) {
            Ok(b) => answers(&b),
            Err(e) => vec![(0, Ans::Lost(e))],
        }
    }

    /// Sends one frame with request id `id`; its answer.
    pub fn send_frame(&mut self, id: u64, bytes: &[u8]) -> Ans {
        let got = self.feed(bytes, 1);
        match got.as_slice() {
            [(i, a)] if *i == id => a.clone(),
            [(_, a @ Ans::Lost(_))] => a.clone(),
            g => Ans::Lost(format!("not one answer to request {id}: {g:?}")),
        }
    }

    /// Sends one request; its answer. `who` signed it (`None`: unsigned): an audited request
    /// leaves one record, except an unsigned one that is granted (public metadata).
    pub fn send(&mut self, who: Option<&Signer>, tenant: &str, auth: &[u8], op: Op<'_>) -> Ans {
        let id = self.next_id;
        self.next_id += 1;
        let ans = self.send_frame(id, &frame(id, tenant, auth, op));
        let outcome = outcome_of(&ans);
        if !(who.is_none() && outcome == "granted") {
            self.expected.push((key_of(who), outcome));
        }
        ans
    }

    /// The ADMIN's signed request for `op`; its answer.
    pub fn admin(&mut self, tenant: &str, op: Op<'_>) -> Ans {
        let w = self.w;
        let auth = w.sign(&w.admin, tenant, &op, &[]);
        self.send(Some(&w.admin), tenant, &auth, op)
    }

    /// Every tenant's state: from the transport, or through the box (an ADMIN-signed
    /// checkpoint request per tenant: its first three lines, origin, size and root hash).
    pub fn state(&mut self) -> State {
        if let Some(s) = self.x.state() {
            return s;
        }
        let mut out = Vec::new();
        for t in interface::TENANTS {
            let id = self.next_id;
            self.next_id += 1;
            let auth = self.w.sign(&self.w.admin, t, &Op::Checkpoint, &[]);
            let bytes = frame(id, t, &auth, Op::Checkpoint);
            let got = match self.x.exchange(&bytes, 1) {
                Ok(b) => b,
                Err(e) => {
                    self.expected
                        .push((key_of(Some(&self.w.admin)), "lost".into()));
                    out.push(format!("lost: {e}").into_bytes());
                    continue;
                }
            };
            let mut d = Decoder::new(vec![0u8; protocol::MAX_ENCODED]);
            let mut cp = None;
            d.feed(&got, |f| {
                if let Ok(Ok(r)) = f.map(Response::decode) {
                    cp = Some(match r.body {
                        Body::Checkpoint { note } => {
                            let text = String::from_utf8_lossy(note);
                            let head: Vec<&str> = text.lines().take(3).collect();
                            Ok(head.join("\n").into_bytes())
                        }
                        Body::Error { code } => Err(Ans::Err(code)),
                        b => Err(Ans::Ok(body_name(&b))),
                    });
                }
            });
            let ok = matches!(cp, Some(Ok(_)));
            self.expected.push((
                key_of(Some(&self.w.admin)),
                if ok { "granted".into() } else { "lost".into() },
            ));
            out.push(match cp {
                Some(Ok(c)) => c,
                other => format!("no checkpoint of {t}: {other:?}").into_bytes(),
            });
        }
        out
    }

    /// Sends a request expected to be refused `code`: no tenant's state changes.
    pub fn refused(
        &mut self,
        who: Option<&Signer>,
        tenant: &str,
        auth: &[u8],
        op: Op<'_>,
        code: ErrorCode,
        what: &str,
    ) {
        let before = self.state();
        let got = self.send(who, tenant, auth, op);
        self.cases += 1;
        if got != Ans::Err(code) {
            self.fail(format!("{what}: answered {got:?}, expected {code:?}"));
        } else if self.state() != before {
            self.fail(format!("{what}: a refusal changed a tenant's state"));
        }
    }

    /// Sends a request expected to be granted; only an append (`changes`) changes a state.
    pub fn granted(
        &mut self,
        who: Option<&Signer>,
        tenant: &str,
        auth: &[u8],
        op: Op<'_>,
        changes: bool,
        what: &str,
    ) {
        let before = self.state();
        let got = self.send(who, tenant, auth, op);
        self.cases += 1;
        if !matches!(got, Ans::Ok(_)) {
            self.fail(format!("{what}: {got:?}, expected a grant"));
        } else if (self.state() != before) != changes {
            self.fail(format!(
                "{what}: a tenant's state {}",
                if changes { "did not change" } else { "changed" }
            ));
        }
    }

    /// Appends 300 entries to [`T`] as the ADMIN (so its first bundle and tile are whole).
    pub fn fill(&mut self) {
        let es: Vec<Vec<u8>> = (0..300).map(|i| format!("row {i}").into_bytes()).collect();
        let refs: Vec<&[u8]> = es.iter().map(Vec::as_slice).collect();
        let entries = bundle(&refs);
        let got = self.admin(T, Op::Append { entries: &entries });
        if got != Ans::Ok("Appended".into()) {
            self.fail(format!("{T}: 300 appends by the ADMIN: {got:?}"));
        }
    }

    /// The table (docs/access.md): every pairing type against every operation, with and
    /// without a capability. The number of cases.
    pub fn run_table(&mut self, public_metadata: bool) -> usize {
        let w = self.w;
        let start = self.cases;
        let who: [(&str, Option<&Signer>); 6] = [
            ("ADMIN", Some(&w.admin)),
            ("INPUT", Some(&w.input)),
            ("USER", Some(&w.user)),
            ("INTERFACE", Some(&w.iface)),
            ("unpaired", Some(&w.stranger)),
            ("unsigned", None),
        ];
        for (name, signer) in who {
            for i in 0..OPS {
                let change = w.pair_change();
                let entries = bundle(&[format!("{name} {i}").as_bytes()]);
                let (op_name, op, cap_relevant) = ops(&change, &entries).swap_remove(i);
                let want = expect(name, i, public_metadata);
                for (k, cap_on) in [false, true].into_iter().enumerate() {
                    if cap_on && (!cap_relevant || signer.is_none()) {
                        continue;
                    }
                    let cap = match (cap_on, signer) {
                        (true, Some(s)) => w.cap(&w.admin, s, |_| {}),
                        _ => Vec::new(),
                    };
                    let change = w.pair_change();
                    let op = match &op {
                        Op::PairChange { .. } => Op::PairChange { change: &change },
                        o => o.clone(),
                    };
                    let tenant = if cap_relevant { T } else { "" };
                    let auth = signer.map_or(Vec::new(), |s| w.sign(s, tenant, &op, &cap));
                    let what = format!(
                        "{name} {op_name} (capability: {cap_on}, public metadata: {public_metadata})"
                    );
                    match want[k] {
                        Some(r) => self.refused(signer, tenant, &auth, op, r.code(), &what),
                        // Only a granted append changes its tenant's state.
                        None => self.granted(signer, tenant, &auth, op, i == 7, &what),
                    }
                }
            }
        }
        self.cases - start
    }

    /// Every bad request, each refused its code and changing nothing. The number of cases
    /// ([`BAD_REQUESTS`]).
    pub fn bad_requests(&mut self) -> usize {
        let w = self.w;
        let start = self.cases;
        let read = Op::Read { since: 0, max: 10 };
        // Replayed: the same frame's authorization twice; the first is granted.
        let auth = w.sign(&w.admin, T, &read, &[]);
        let first = self.send(Some(&w.admin), T, &auth, read.clone());
        if !matches!(first, Ans::Ok(_)) {
            self.fail(format!("the read to replay: {first:?}"));
        }
        self.refused(
            Some(&w.admin),
            T,
            &auth,
            read.clone(),
            ErrorCode::Replayed,
            "replayed",
        );
        // Capabilities: expired, not yet valid, rows out of range, another holder's, issued
        // by a USER (not an ADMIN).
        let caps: [(&Signer, &Signer, &Signer, CapEdit, ErrorCode, &str); 5] = [
            (
                &w.admin,
                &w.user,
                &w.user,
                expired,
                ErrorCode::Expired,
                "expired capability",
            ),
            (
                &w.admin,
                &w.user,
                &w.user,
                not_yet,
                ErrorCode::NotYetValid,
                "not-yet-valid capability",
            ),
            (
                &w.admin,
                &w.user,
                &w.user,
                rows_100_200,
                ErrorCode::OutOfRange,
                "out-of-range rows",
            ),
            (
                &w.admin,
                &w.user,
                &w.input,
                |_| {},
                ErrorCode::WrongHolder,
                "wrong holder",
            ),
            (
                &w.user,
                &w.user,
                &w.user,
                |_| {},
                ErrorCode::UntrustedIssuer,
                "untrusted issuer",
            ),
        ];
        for (issuer, holder, sender, edit, code, what) in caps {
            let cap = w.cap(issuer, holder, edit);
            let auth = w.sign(sender, T, &read, &cap);
            self.refused(Some(sender), T, &auth, read.clone(), code, what);
        }
        // Requests: for another archive, signed for another tenant, an operation the type may
        // not do, a damaged signature, not an authorization at all, outside the time window.
        let other = Signer::generate("archive", &[99; 32])
            .expect("key")
            .verifier();
        let auth = w.sign_with(&w.admin, &other, T, &read, &[], now());
        self.refused(
            Some(&w.admin),
            T,
            &auth,
            read.clone(),
            ErrorCode::WrongArchive,
            "wrong archive",
        );
        let auth = w.sign(&w.admin, OTHER, &read, &[]);
        self.refused(
            Some(&w.admin),
            T,
            &auth,
            read.clone(),
            ErrorCode::WrongTenant,
            "wrong tenant",
        );
        let entries = bundle(&[b"user may not append"]);
        let app = Op::Append { entries: &entries };
        let auth = w.sign(&w.user, T, &app, &[]);
        self.refused(
            Some(&w.user),
            T,
            &auth,
            app,
            ErrorCode::WrongOperation,
            "wrong operation",
        );
        let auth = damage_signature(&w.sign(&w.admin, T, &read, &[]));
        self.refused(
            Some(&w.admin),
            T,
            &auth,
            read.clone(),
            ErrorCode::BadSignature,
            "bad signature",
        );
        // Not an authorization: recorded with no key.
        self.refused(
            None,
            T,
            b"\x00\x07not an authorization",
            read.clone(),
            ErrorCode::MalformedAuth,
            "malformed authorization",
        );
        let auth = w.sign_with(&w.admin, &w.archive, T, &read, &[], now() - 1000);
        self.refused(
            Some(&w.admin),
            T,
            &auth,
            read.clone(),
            ErrorCode::StaleRequest,
            "stale time",
        );
        let auth = w.sign_with(&w.admin, &w.archive, T, &read, &[], now() + 1000);
        self.refused(
            Some(&w.admin),
            T,
            &auth,
            read,
            ErrorCode::StaleRequest,
            "time ahead",
        );
        // Entries changed after signing.
        let signed = bundle(&[b"what was signed"]);
        let auth = w.sign(&w.admin, T, &Op::Append { entries: &signed }, &[]);
        let sent = bundle(&[b"what was sent!!"]);
        let op = Op::Append { entries: &sent };
        self.refused(
            Some(&w.admin),
            T,
            &auth,
            op,
            ErrorCode::RequestMismatch,
            "request mismatch",
        );
        self.cases - start
    }
}

type CapEdit = fn(&mut Capability);
fn expired(c: &mut Capability) {
    c.not_before = now() - 7200;
    c.expires = now() - 3600;
}
fn not_yet(c: &mut Capability) {
    c.not_before = now() + 3600;
    c.expires = now() + 7200;
}
fn rows_100_200(c: &mut Capability) {
    c.rows = RowRange::parse("100..200").expect("rows");
}

/// The number of bad requests [`Runner::bad_requests`] sends.
pub const BAD_REQUESTS: usize = 14;
/// The operations of the table.
pub const OPS: usize = 10;
/// The cases of one column of the table (one `PUBLIC_METADATA` setting): 6 types x 10 ops,
/// plus a capability for the 4 signed paired types and the unpaired key on 8 tenant ops.
pub const TABLE_CASES: usize = 6 * OPS + 5 * 8;

/// The operations of the table, for a tenant of 300 entries (bundle 0 and level-0 tile 0 are
/// whole). Each: its name, the op, and whether a capability is relevant (tenant operations;
/// the archive-wide ones take none).
pub fn ops<'a>(change: &'a [u8], entries: &'a [u8]) -> Vec<(&'static str, Op<'a>, bool)> {
    let get = |path| Op::GetObject { path, offset: 0 };
    vec![
        ("hello", Op::Hello, true),
        ("checkpoint", Op::Checkpoint, true),
        ("status", Op::Status, true),
        ("get-object checkpoint", get("checkpoint"), true),
        ("get-object tile", get("tile/0/000"), true),
        ("get-object bundle", get("tile/entries/000"), true),
        ("read", Op::Read { since: 0, max: 10 }, true),
        ("append", Op::Append { entries }, true),
        ("pair-change", Op::PairChange { change }, false),
        (
            "audit-object",
            Op::AuditObject {
                path: "checkpoint",
                offset: 0,
            },
            false,
        ),
    ]
}

use Refusal::{CapabilityRequired as CapReq, Unpaired, Unsigned, WrongOperation as WrongOp};

/// The expected refusal of `who` (a type) for op `i` of [`ops`], without and with a
/// capability (read,bundle on every row, from the ADMIN): docs/access.md's table.
pub fn expect(who: &str, i: usize, public_metadata: bool) -> [Option<Refusal>; 2] {
    let metadata = i <= 4;
    let content = i == 5 || i == 6;
    match (who, i) {
        ("ADMIN", _) => [None, None],
        ("INPUT" | "USER", _) if content => [Some(CapReq), None],
        ("USER", 7) => [Some(WrongOp); 2],
        ("INPUT" | "USER" | "INTERFACE", 8) => [Some(WrongOp); 2],
        ("INPUT" | "USER" | "INTERFACE", 9) => [Some(Unpaired); 2],
        ("INTERFACE", _) if !metadata => [Some(WrongOp); 2],
        ("INPUT" | "USER" | "INTERFACE", _) => [None, None],
        ("unpaired", _) => [Some(Unpaired); 2],
        ("unsigned", _) if metadata && public_metadata => [None, None],
        ("unsigned", _) => [Some(Unsigned); 2],
        _ => unreachable!("{who}"),
    }
}

/// The authorization with one character of its request note's signature changed.
pub fn damage_signature(auth: &[u8]) -> Vec<u8> {
    let Authorization::V1 {
        request,
        capability,
    } = Authorization::decode(auth).expect("an authorization");
    let mut note = request.to_vec();
    let at = note.len() - 10;
    note[at] = if note[at] == b'A' { b'B' } else { b'A' };
    let mut out = vec![0u8; protocol::MAX_AUTH];
    let n = Authorization::V1 {
        request: &note,
        capability,
    }
    .encode(&mut out)
    .expect("encodes");
    out.truncate(n);
    out
}

//! A blocking client over any byte stream (a UNIX socket, TCP, a pipe to QEMU's serial port):
//! what `totebox client` and the whole-system tests use. Host only (feature `std`).

use std::boxed::Box;
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::string::String;
use std::vec::Vec;

use crate::frame::{encode_frame_vec, Decoder, FrameError, MAX_ENCODED, MAX_PAYLOAD};
use crate::msg::{
    push_entry, Body, ErrorCode, Op, Request, Response, MAX_AUTH, MAX_ENTRY, RESPONSE_OVERHEAD,
};

/// Signs requests: what a [`Client`] puts in each request's authorization
/// ([`Request::capability`]). The `access` crate's host side implements it (`totebox client
/// --skey`); this crate knows nothing of keys. Never asked for [`Op::Ping`], which is never
/// signed.
pub trait Authorizer: core::fmt::Debug {
    /// The encoded [`crate::Authorization`] for a request `op` on `tenant` (at most
    /// [`MAX_AUTH`] bytes), or why it cannot be made (nothing is sent then).
    fn authorize(&mut self, tenant: &str, op: &Op<'_>) -> Result<Vec<u8>, String>;
}

/// Why a call failed.
#[derive(Debug)]
pub enum ClientError {
    /// The stream failed or closed.
    Io(io::Error),
    /// The box answered with an error.
    Remote(ErrorCode),
    /// The answer was not a valid response, or not the kind the request expects.
    Unexpected(String),
    /// The request would not fit in a frame.
    TooLarge,
    /// The request could not be signed (the [`Authorizer`] said why); nothing was sent.
    Unsigned(String),
    /// Entry `index` (counting from 0) of an append is `len` bytes, over [`MAX_ENTRY`]:
    /// nothing of that append was sent.
    EntryTooLarge {
        /// Position of the entry in the append.
        index: usize,
        /// Its length.
        len: usize,
    },
    /// The box states an object of `total` bytes, over the `max` the caller allows for it:
    /// nothing more was fetched.
    ObjectTooLarge {
        /// The object's path.
        path: String,
        /// The size the box stated.
        total: u64,
        /// The caller's limit.
        max: u64,
    },
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::Io(e) => write!(f, "connection: {e}"),
            ClientError::Remote(c) => write!(f, "the box refused: {c}"),
            ClientError::Unexpected(s) => write!(f, "unexpected answer: {s}"),
            ClientError::TooLarge => f.write_str("request too large for one frame"),
            ClientError::Unsigned(why) => write!(f, "cannot sign the request: {why}"),
            ClientError::EntryTooLarge { index, len } => write!(
                f,
                "entry {index} is {len} bytes, over the {MAX_ENTRY}-byte limit (nothing sent)"
            ),
            ClientError::ObjectTooLarge { path, total, max } => write!(
                f,
                "the box states {path} is {total} bytes, over the {max}-byte limit of such an object"
            ),
        }
    }
}

impl From<io::Error> for ClientError {
    fn from(e: io::Error) -> Self {
        ClientError::Io(e)
    }
}

/// What [`Client::hello`] returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// The log's origin.
    pub origin: String,
    /// The checkpoint verifier key.
    pub vkey: String,
    /// The latest checkpoint's size.
    pub size: u64,
}

/// What [`Client::status`] returns: [`Body::Status`], owned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Status {
    /// Entries in the tenant's log (as the box states it: not a signed size).
    pub size: u64,
    /// Disk bytes the tenant uses.
    pub disk_used: u64,
    /// The tenant's disk quota.
    pub disk_quota: u64,
    /// Index bytes charged to the tenant.
    pub index_used: u64,
    /// The tenant's index quota.
    pub index_quota: u64,
    /// Bytes free on the volume.
    pub volume_free: u64,
    /// Disk bytes the audit log uses.
    pub audit_disk_used: u64,
    /// The audit log's disk quota.
    pub audit_disk_quota: u64,
    /// Whether the tenant's stored log is marked damaged.
    pub damaged: bool,
}

/// What [`Client::append_all`] stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Appended {
    /// The index of each entry stored, in order (a prefix of the entries given).
    pub indices: Vec<u64>,
    /// The largest checkpoint size the box said commits them (0 if nothing was stored).
    pub size: u64,
}

/// What one request of [`Client::append_pipelined`] stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acked {
    /// The index of each of its entries, in order.
    pub indices: core::ops::Range<u64>,
    /// The size of the checkpoint the box said commits them.
    pub size: u64,
}

/// Why [`Client::append_all`] stopped: what had been stored by then, and the error.
#[derive(Debug)]
pub struct AppendFailure {
    /// The entries acknowledged before the failing request (a prefix of those given).
    pub stored: Appended,
    /// The failing request's error. With [`ClientError::Io`] the box may have stored that
    /// request's entries without the acknowledgement arriving; with
    /// [`ClientError::Remote`] it did not store them.
    pub error: ClientError,
}

/// A client on `stream`. Requests are answered in order; frames that answer something else
/// (id 0: garbage this client or another sent earlier) are skipped.
#[derive(Debug)]
pub struct Client<S> {
    stream: S,
    decoder: Decoder<Vec<u8>>,
    frames: VecDeque<Result<Vec<u8>, FrameError>>,
    next_id: u64,
    /// Whether the leading delimiter has been sent on this stream.
    synced: bool,
    /// Signs each request; `None`: requests go unsigned (an empty authorization).
    authorizer: Option<Box<dyn Authorizer>>,
}

impl<S: Read + Write> Client<S> {
    /// A client on a connected stream.
    pub fn new(stream: S) -> Self {
        Client {
            stream,
            decoder: Decoder::new(std::vec![0; MAX_ENCODED]),
            frames: VecDeque::new(),
            next_id: 1,
            synced: false,
            authorizer: None,
        }
    }

    /// Signs every request from now on with `a` (each request then leaves [`MAX_AUTH`]
    /// bytes of its frame for the authorization, so appends carry that much fewer entries).
    pub fn set_authorizer(&mut self, a: Box<dyn Authorizer>) {
        self.authorizer = Some(a);
    }

    /// The authorization for `op` on `tenant`: empty without an authorizer or for a ping.
    fn authorization(&mut self, tenant: &str, op: &Op<'_>) -> Result<Vec<u8>, ClientError> {
        match (&mut self.authorizer, op) {
            (None, _) | (_, Op::Ping) => Ok(Vec::new()),
            (Some(a), op) => {
                let auth = a.authorize(tenant, op).map_err(ClientError::Unsigned)?;
                if auth.len() > MAX_AUTH {
                    return Err(ClientError::Unsigned(std::format!(
                        "authorization of {} bytes, over the {MAX_AUTH}-byte limit",
                        auth.len()
                    )));
                }
                Ok(auth)
            }
        }
    }

    /// Bytes of a frame an append's entries may take: the payload less the response's
    /// overhead, the tenant and, when signing, the authorization.
    fn entries_budget(&self, tenant: &str) -> usize {
        let auth = if self.authorizer.is_some() {
            MAX_AUTH
        } else {
            0
        };
        MAX_PAYLOAD
            .saturating_sub(RESPONSE_OVERHEAD)
            .saturating_sub(tenant.len())
            .saturating_sub(auth)
    }

    /// The stream (to send raw bytes in tests).
    pub fn stream_mut(&mut self) -> &mut S {
        &mut self.stream
    }

    /// Sends `op` for `tenant` and returns the payload of the response with its id.
    pub fn call_raw(&mut self, tenant: &str, op: Op<'_>) -> Result<Vec<u8>, ClientError> {
        let auth = self.authorization(tenant, &op)?;
        let id = self.next_id;
        self.next_id += 1;
        let req = Request {
            id,
            tenant,
            capability: &auth,
            op,
        };
        let mut buf = std::vec![0; MAX_PAYLOAD];
        let n = req.encode(&mut buf).map_err(|_| ClientError::TooLarge)?;
        if !self.synced {
            // A lone delimiter first: a virtio-console stream outlives connections, so a
            // previous client killed mid-frame may have left a partial frame in the wire's
            // decoder. This ends it (answered as a damaged frame with id 0, which `call`
            // skips) instead of it swallowing our first request. Empty frames are ignored.
            self.stream.write_all(&[0])?;
            self.synced = true;
        }
        self.stream.write_all(&encode_frame_vec(&buf[..n]))?;
        self.stream.flush()?;
        loop {
            let payload = match self.next_frame()? {
                Ok(p) => p,
                Err(_) => continue, // a damaged frame: not ours to judge, the next one may be
            };
            let resp = Response::decode(&payload)
                .map_err(|e| ClientError::Unexpected(std::format!("{e}")))?;
            if resp.id == id {
                return Ok(payload);
            }
        }
    }

    /// Reads the next frame from the stream.
    pub fn next_frame(&mut self) -> Result<Result<Vec<u8>, FrameError>, ClientError> {
        let mut chunk = [0u8; 4096];
        loop {
            if let Some(f) = self.frames.pop_front() {
                return Ok(f);
            }
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                return Err(ClientError::Io(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the box closed the connection",
                )));
            }
            let frames = &mut self.frames;
            self.decoder
                .feed(&chunk[..n], |f| frames.push_back(f.map(<[u8]>::to_vec)));
        }
    }

    fn call<T>(
        &mut self,
        tenant: &str,
        op: Op<'_>,
        f: impl FnOnce(Body<'_>) -> Option<T>,
    ) -> Result<T, ClientError> {
        let payload = self.call_raw(tenant, op)?;
        let resp =
            Response::decode(&payload).map_err(|e| ClientError::Unexpected(std::format!("{e}")))?;
        match resp.body {
            Body::Error { code } => Err(ClientError::Remote(code)),
            body => {
                let what = std::format!("{body:?}");
                f(body).ok_or(ClientError::Unexpected(what))
            }
        }
    }

    /// Liveness check.
    pub fn ping(&mut self) -> Result<(), ClientError> {
        self.call("", Op::Ping, |b| matches!(b, Body::Pong).then_some(()))
    }

    /// The tenant log's origin, key and size.
    pub fn hello(&mut self, tenant: &str) -> Result<Hello, ClientError> {
        self.call(tenant, Op::Hello, |b| match b {
            Body::Hello { origin, vkey, size } => Some(Hello {
                origin: origin.into(),
                vkey: vkey.into(),
                size,
            }),
            _ => None,
        })
    }

    /// Appends `entries` in as few requests as fit in frames (each request is one durable
    /// checkpoint); returns the index of each entry. See [`Client::append_all`]: this is it
    /// without the partial progress.
    pub fn append<E: AsRef<[u8]>>(
        &mut self,
        tenant: &str,
        entries: &[E],
    ) -> Result<Vec<u64>, ClientError> {
        self.append_all(tenant, entries)
            .map(|a| a.indices)
            .map_err(|f| f.error)
    }

    /// Appends `entries` in as few requests as fit in frames, each request one durable
    /// checkpoint. Every entry is checked against [`MAX_ENTRY`] before anything is sent, so an
    /// oversized one stores nothing. If a later request fails, the failure carries what the
    /// earlier ones stored.
    pub fn append_all<E: AsRef<[u8]>>(
        &mut self,
        tenant: &str,
        entries: &[E],
    ) -> Result<Appended, AppendFailure> {
        let mut done = Appended::default();
        if let Some((index, e)) = entries
            .iter()
            .enumerate()
            .find(|(_, e)| e.as_ref().len() > MAX_ENTRY)
        {
            let error = ClientError::EntryTooLarge {
                index,
                len: e.as_ref().len(),
            };
            return Err(AppendFailure {
                stored: done,
                error,
            });
        }
        let budget = self.entries_budget(tenant);
        let mut buf = std::vec![0u8; budget];
        let mut i = 0;
        while i < entries.len() {
            match self.append_batch(tenant, entries, &mut i, &mut buf) {
                Ok((range, size)) => {
                    done.indices.extend(range);
                    done.size = done.size.max(size);
                }
                Err(error) => {
                    return Err(AppendFailure {
                        stored: done,
                        error,
                    })
                }
            }
        }
        Ok(done)
    }

    /// One append request of as many entries from `entries[*i..]` as fit in `buf`; advances
    /// `*i` past them. Returns their index range and the size of the checkpoint that commits
    /// them.
    fn append_batch<E: AsRef<[u8]>>(
        &mut self,
        tenant: &str,
        entries: &[E],
        i: &mut usize,
        buf: &mut [u8],
    ) -> Result<(core::ops::Range<u64>, u64), ClientError> {
        let (mut len, start) = (0usize, *i);
        while *i < entries.len() && push_entry(buf, &mut len, entries[*i].as_ref()) {
            *i += 1;
        }
        if *i == start {
            return Err(ClientError::TooLarge);
        }
        let want = (*i - start) as u32;
        let (first, count, size) = self.call(
            tenant,
            Op::Append {
                entries: &buf[..len],
            },
            |b| match b {
                Body::Appended { first, count, size } => Some((first, count, size)),
                _ => None,
            },
        )?;
        checked_appended(first, count, size, want)
    }

    /// Appends each of `requests` as one append request (its entries committed by one
    /// checkpoint, as [`Client::append`] would send them if they fit one frame), keeping up to
    /// `window` requests in flight: as many as the window allows are written at once, then
    /// the answers are read, matched to their requests by id, and the window is filled again.
    /// Returns each request's outcome, in the order given.
    ///
    /// A box whose wire receives several appends for one tenant at once stores them with one
    /// checkpoint and answers each with its own indices (group commit: far fewer disk bytes
    /// per entry for small appends). Each request still succeeds or fails on its own: a
    /// refused one stores nothing and the others are unaffected. A request with an entry over
    /// [`MAX_ENTRY`] ([`ClientError::EntryTooLarge`]) or too large for a frame
    /// ([`ClientError::TooLarge`]) is not sent; one of no entries is sent as it is (the box
    /// refuses it). If the connection fails, every request not yet answered gets
    /// [`ClientError::Io`]: those already sent may have been stored without the
    /// acknowledgement arriving; those never sent were not, and their error says "not sent".
    /// [`Client::append`] and [`Client::append_all`] are unchanged: one request at a time.
    pub fn append_pipelined<R, E>(
        &mut self,
        tenant: &str,
        requests: &[R],
        window: usize,
    ) -> Vec<Result<Acked, ClientError>>
    where
        R: AsRef<[E]>,
        E: AsRef<[u8]>,
    {
        let window = window.max(1);
        let mut results: Vec<Option<Result<Acked, ClientError>>> =
            requests.iter().map(|_| None).collect();
        // (id, request index, entries), in the order sent.
        let mut waiting: VecDeque<(u64, usize, u32)> = VecDeque::new();
        let budget = self.entries_budget(tenant);
        let mut entries = std::vec![0u8; budget];
        let mut payload = std::vec![0u8; MAX_PAYLOAD];
        let mut out = Vec::new();
        let mut next = 0;
        // Once a write fails nothing more is sent, but the answers to what was sent are still
        // read, until the stream ends.
        let mut write_failed: Option<io::Error> = None;
        let failure = loop {
            if write_failed.is_none() {
                // As many requests as the window allows, in one write.
                out.clear();
                if !self.synced {
                    out.push(0); // see `call_raw`
                }
                let before = out.len();
                while next < requests.len() && waiting.len() < window {
                    let i = next;
                    next += 1;
                    let es = requests[i].as_ref();
                    match self.encode_append(tenant, es, &mut entries, &mut payload) {
                        Ok((id, n)) => {
                            out.extend_from_slice(&encode_frame_vec(&payload[..n]));
                            waiting.push_back((id, i, es.len() as u32));
                        }
                        Err(e) => results[i] = Some(Err(e)),
                    }
                }
                if out.len() > before {
                    let sent = self
                        .stream
                        .write_all(&out)
                        .and_then(|()| self.stream.flush());
                    match sent {
                        Ok(()) => self.synced = true,
                        Err(e) => write_failed = Some(e),
                    }
                }
            }
            if waiting.is_empty() {
                break None;
            }
            // At least one answer, then every answer already received.
            let mut answered = false;
            let failed = loop {
                if waiting.is_empty() || (answered && self.frames.is_empty()) {
                    break None;
                }
                let payload = match self.next_frame() {
                    Ok(Ok(p)) => p,
                    Ok(Err(_)) => continue, // a damaged frame: not ours to judge
                    Err(ClientError::Io(e)) => break Some(e),
                    Err(e) => break Some(io::Error::other(std::format!("{e}"))),
                };
                let resp = match Response::decode(&payload) {
                    Ok(r) => r,
                    Err(e) => break Some(io::Error::other(std::format!("unexpected answer: {e}"))),
                };
                // Frames for no request in flight (id 0: garbage sent earlier) are skipped.
                let Some(pos) = waiting.iter().position(|w| w.0 == resp.id) else {
                    continue;
                };
                let Some((_, i, want)) = waiting.remove(pos) else {
                    continue;
                };
                results[i] = Some(match resp.body {
                    Body::Appended { first, count, size } => {
                        checked_appended(first, count, size, want)
                            .map(|(indices, size)| Acked { indices, size })
                    }
                    Body::Error { code } => Err(ClientError::Remote(code)),
                    body => Err(ClientError::Unexpected(std::format!("{body:?}"))),
                });
                answered = true;
            };
            if let Some(e) = failed {
                break Some(e);
            }
        };
        let io_error = |e: &io::Error, what: &str| {
            ClientError::Io(io::Error::new(e.kind(), std::format!("{what}{e}")))
        };
        // What was sent and not answered: the stream failed (the box may have stored it).
        if let Some(e) = failure.as_ref().or(write_failed.as_ref()) {
            for (_, i, _) in waiting {
                results[i] = Some(Err(io_error(e, "")));
            }
        }
        // What was never sent.
        if let Some(e) = write_failed.as_ref().or(failure.as_ref()) {
            for r in results.iter_mut().skip(next) {
                *r = Some(Err(io_error(e, "not sent: ")));
            }
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(ClientError::Unexpected("no answer".into()))))
            .collect()
    }

    /// Encodes one append request of `es` (entries built in `entries`) into `payload`, with a
    /// fresh id: the id and the request's length. Nothing is sent.
    fn encode_append<E: AsRef<[u8]>>(
        &mut self,
        tenant: &str,
        es: &[E],
        entries: &mut [u8],
        payload: &mut [u8],
    ) -> Result<(u64, usize), ClientError> {
        if let Some((index, e)) = es
            .iter()
            .enumerate()
            .find(|(_, e)| e.as_ref().len() > MAX_ENTRY)
        {
            let len = e.as_ref().len();
            return Err(ClientError::EntryTooLarge { index, len });
        }
        let mut len = 0;
        if !es.iter().all(|e| push_entry(entries, &mut len, e.as_ref())) {
            return Err(ClientError::TooLarge);
        }
        let op = Op::Append {
            entries: &entries[..len],
        };
        let auth = self.authorization(tenant, &op)?;
        let id = self.next_id;
        let n = Request {
            id,
            tenant,
            capability: &auth,
            op,
        }
        .encode(payload)
        .map_err(|_| ClientError::TooLarge)?;
        self.next_id += 1;
        Ok((id, n))
    }

    /// Committed entries from `since`, at most `max` (all of them, over as many requests as
    /// needed, until `max` or the end of the log).
    pub fn read(
        &mut self,
        tenant: &str,
        since: u64,
        max: u64,
    ) -> Result<Vec<(u64, Vec<u8>)>, ClientError> {
        let mut out: Vec<(u64, Vec<u8>)> = Vec::new();
        let mut next = since;
        while (out.len() as u64) < max {
            let want = u32::try_from(max - out.len() as u64).unwrap_or(u32::MAX);
            let got = self.call(
                tenant,
                Op::Read {
                    since: next,
                    max: want,
                },
                |b| match b {
                    Body::Entries { first, entries } => {
                        let mut v = Vec::new();
                        for e in crate::msg::entries(entries) {
                            v.push(e.ok()?.to_vec());
                        }
                        Some((first, v))
                    }
                    _ => None,
                },
            )?;
            let (first, batch) = got;
            if first != next {
                return Err(ClientError::Unexpected(std::format!(
                    "entries from {first}, asked from {next}"
                )));
            }
            if batch.is_empty() {
                break;
            }
            for e in batch {
                out.push((next, e));
                next = next.checked_add(1).ok_or_else(|| {
                    ClientError::Unexpected("entry index past the largest u64".into())
                })?;
            }
        }
        Ok(out)
    }

    /// The tenant's and the audit log's use of their storage quotas ([`Op::Status`]).
    pub fn status(&mut self, tenant: &str) -> Result<Status, ClientError> {
        self.call(tenant, Op::Status, |b| match b {
            Body::Status {
                size,
                disk_used,
                disk_quota,
                index_used,
                index_quota,
                volume_free,
                audit_disk_used,
                audit_disk_quota,
                damaged,
            } => Some(Status {
                size,
                disk_used,
                disk_quota,
                index_used,
                index_quota,
                volume_free,
                audit_disk_used,
                audit_disk_quota,
                damaged,
            }),
            _ => None,
        })
    }

    /// The latest signed checkpoint note.
    pub fn checkpoint(&mut self, tenant: &str) -> Result<Vec<u8>, ClientError> {
        self.call(tenant, Op::Checkpoint, |b| match b {
            Body::Checkpoint { note } => Some(note.to_vec()),
            _ => None,
        })
    }

    /// A whole object of the tenant's log (fetched in chunks); `None` if absent.
    pub fn get_object(&mut self, tenant: &str, path: &str) -> Result<Option<Vec<u8>>, ClientError> {
        self.get_object_max(tenant, path, u64::MAX)
    }

    /// [`Client::get_object`] for an object of at most `max` bytes: a box stating a larger
    /// one gets [`ClientError::ObjectTooLarge`] before more than one chunk is taken, and one
    /// sending more bytes than it stated, or changing its stated size, is refused.
    pub fn get_object_max(
        &mut self,
        tenant: &str,
        path: &str,
        max: u64,
    ) -> Result<Option<Vec<u8>>, ClientError> {
        self.fetch_object_max(tenant, path, max, |offset| Op::GetObject { path, offset })
    }

    /// A whole object fetched in chunks by `op(offset)` (`Op::GetObject`, or `Op::AuditObject`
    /// for the audit log), with [`Client::get_object_max`]'s checks: at most `max` bytes, the
    /// stated size never changing, chunks in order and never past it; `None` if absent.
    pub fn fetch_object_max<'p>(
        &mut self,
        tenant: &str,
        path: &str,
        max: u64,
        op: impl Fn(u64) -> Op<'p>,
    ) -> Result<Option<Vec<u8>>, ClientError> {
        let mut out = Vec::new();
        let mut stated = None;
        loop {
            let r = self.call(tenant, op(out.len() as u64), |b| match b {
                Body::Object {
                    total,
                    offset,
                    data,
                } => Some((total, offset, data.to_vec())),
                _ => None,
            });
            let (total, offset, data) = match r {
                Err(ClientError::Remote(ErrorCode::NotFound)) if out.is_empty() => return Ok(None),
                r => r?,
            };
            if total > max {
                return Err(ClientError::ObjectTooLarge {
                    path: path.into(),
                    total,
                    max,
                });
            }
            if *stated.get_or_insert(total) != total {
                return Err(ClientError::Unexpected(std::format!(
                    "{path}: stated as {} bytes, then {total}",
                    stated.unwrap_or(total)
                )));
            }
            if offset != out.len() as u64 || (data.is_empty() && offset < total) {
                return Err(ClientError::Unexpected("object chunk out of order".into()));
            }
            out.extend_from_slice(&data);
            if out.len() as u64 > total {
                return Err(ClientError::Unexpected(std::format!(
                    "{path}: more bytes than the {total} stated"
                )));
            }
            if out.len() as u64 == total {
                return Ok(Some(out));
            }
        }
    }
}

/// Checks the box's answer to an append of `want` entries: their index range and the size of
/// the checkpoint that commits them. Box-supplied: a count other than asked, an index range that
/// does not fit a u64, or that the checkpoint it names does not cover, is an error, not a panic
/// or a silent lie.
fn checked_appended(
    first: u64,
    count: u32,
    size: u64,
    want: u32,
) -> Result<(core::ops::Range<u64>, u64), ClientError> {
    if count != want {
        return Err(ClientError::Unexpected(std::format!(
            "appended {count} of {want} entries"
        )));
    }
    let end = first.checked_add(u64::from(count)).ok_or_else(|| {
        ClientError::Unexpected(std::format!("appended {count} entries from {first}"))
    })?;
    if end > size {
        return Err(ClientError::Unexpected(std::format!(
            "appended entries {first}..{end}, committed by a checkpoint of size {size}"
        )));
    }
    Ok((first..end, size))
}

//! The C2SP tlog-tiles **read endpoints over HTTP/1.1**, as a pure bytes-in / bytes-out library
//! (`no_std` + `alloc`, no `unsafe`, no panics on any input), so the same logic can run in the
//! simulator today and in a network wire PD later (issue 11).
//!
//! - [`parse`]: one request head from the bytes received so far, with `httparse`, bounded:
//!   at most [`MAX_HEAD`] bytes of head, [`MAX_HEADERS`] headers, a target of at most
//!   [`MAX_PATH`] bytes. Only `GET`, and no body (`Content-Length` other than 0, or any
//!   `Transfer-Encoding`, is refused).
//! - The endpoints, per tenant (the tenant exactly as the client protocol names it, one of the
//!   caller's `tenants`):
//!
//!   | Path                               | Protocol request                         |
//!   |------------------------------------|------------------------------------------|
//!   | `/<tenant>/checkpoint`             | [`Op::Checkpoint`]                       |
//!   | `/<tenant>/tile/<L>/<N>[.p/<W>]`   | [`Op::GetObject`] with the tile path     |
//!   | `/<tenant>/tile/entries/<N>[.p/<W>]` | [`Op::GetObject`] with the bundle path |
//!
//!   Tile paths must be canonical (`tlog::parse_tile_path`); a query string is ignored.
//!   Requests are sent **unsigned** (an empty authorization): the archive's access control
//!   decides (docs/access.md): with `PUBLIC_METADATA=1` checkpoints and hash tiles are public,
//!   entry bundles always need a capability (so they are refused here: signed requests over
//!   HTTP are issue 11's).
//! - [`serve`]: sends the request(s) through a caller-supplied call (the wire), and writes the
//!   HTTP response. An object larger than one protocol chunk ([`protocol::MAX_CHUNK`]) is
//!   fetched in several [`Op::GetObject`] requests and sent whole, with `Content-Length` (the
//!   object's `total`) written before the first chunk; if a later chunk fails or disagrees,
//!   the connection must be closed ([`Served::close`]), since the status is already sent.
//!
//! # Statuses
//!
//! | Status | When |
//! |--------|------|
//! | 200 | the checkpoint (`text/plain; charset=utf-8`, `Cache-Control: max-age=5`) or the tile / bundle (`application/octet-stream`, `Cache-Control: public, max-age=31536000, immutable`) |
//! | 400 | malformed request line or headers, a body on a GET; [`ErrorCode::BadRequest`] |
//! | 401 | [`ErrorCode::Unsigned`]: the archive answers only signed requests for this |
//! | 403 | any other access refusal: `MalformedAuth`, `BadSignature`, `Unpaired`, `WrongArchive`, `WrongOperation`, `WrongHolder`, `UntrustedIssuer`, `CapabilityRequired`, `Expired`, `NotYetValid`, `OutOfRange`, `StaleRequest`, `Replayed`, `RequestMismatch` |
//! | 404 | unknown tenant, a path outside the endpoints, [`ErrorCode::NotFound`], [`ErrorCode::UnknownTenant`] |
//! | 405 | a method other than `GET` (with `Allow: GET`) |
//! | 414 | a request target over [`MAX_PATH`] bytes |
//! | 431 | a head over [`MAX_HEAD`] bytes or over [`MAX_HEADERS`] headers |
//! | 500 | any other error code (storage, damage, audit failure, ...), or an answer that is not one |
//! | 503 | no answer from the box, [`ErrorCode::Unavailable`], `Busy`, `ClockUnavailable`, `ClockBehind`, `NonceMemoryFull` |
//!
//! Error answers carry a short `text/plain` body (the status line's text). After a
//! 400/405/414/431 the connection is closed ([`Served::close`] / [`Parsed::Refused`]); other
//! answers keep an HTTP/1.1 connection open unless the client asked `Connection: close`.
//!
//! # Memory
//! [`parse`] uses a stack table of [`MAX_HEADERS`] headers and allocates nothing; [`serve`]
//! encodes each request in a stack buffer of [`REQUEST_MAX`] bytes and holds one answer of the
//! call (at most [`protocol::MAX_PAYLOAD`]) at a time: the object streams through `out`.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write as _;

use protocol::{Body, ErrorCode, Op, Request, Response, MAX_TENANT};

/// Most bytes of a request head (request line and headers, with the blank line).
pub const MAX_HEAD: usize = 8 * 1024;
/// Most headers in a request.
pub const MAX_HEADERS: usize = 32;
/// Longest request target (path and query).
pub const MAX_PATH: usize = 256;
/// `Cache-Control: max-age` of a checkpoint, seconds (the spec: a few seconds at most).
pub const CHECKPOINT_MAX_AGE: u32 = 5;
/// Largest object served: a full entry bundle of 256 entries of the largest size.
pub const MAX_OBJECT: u64 = 256 * (2 + protocol::MAX_ENTRY as u64);
/// Room to encode one request (id, tenant, an empty authorization, a tile path, an offset).
pub const REQUEST_MAX: usize = 64 + MAX_TENANT + MAX_PATH;

/// The content type of a checkpoint.
pub const CHECKPOINT_TYPE: &str = "text/plain; charset=utf-8";
/// The content type of tiles and entry bundles.
pub const TILE_TYPE: &str = "application/octet-stream";
/// `Cache-Control` of tiles and entry bundles (immutable objects).
pub const TILE_CACHE: &str = "public, max-age=31536000, immutable";

/// What a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route<'a> {
    /// `/<tenant>/checkpoint`.
    Checkpoint {
        /// The tenant.
        tenant: &'a str,
    },
    /// `/<tenant>/tile/...`: a hash tile or an entry bundle.
    Object {
        /// The tenant.
        tenant: &'a str,
        /// The object's canonical path (`tile/...`).
        path: &'a str,
    },
}

/// The result of [`parse`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed<'a> {
    /// The head is not complete yet (and is within the bounds): read more.
    Incomplete,
    /// A well-formed GET head of `len` bytes.
    Request {
        /// Bytes of the head (the next request starts there).
        len: usize,
        /// Whether the connection stays open after the answer.
        keep_alive: bool,
        /// The endpoint, or the status to answer (404) when the path names none.
        route: Result<Route<'a>, u16>,
    },
    /// Not an acceptable request: answer this status ([`error_response`]) and close.
    Refused(u16),
}

/// Parses the request head at the start of `buf` (the bytes received so far). See the crate
/// documentation for the bounds. Tenants not in `tenants` are answered 404.
pub fn parse<'a>(buf: &'a [u8], tenants: &[&str]) -> Parsed<'a> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            // A request line still unfinished past the longest acceptable one: 414.
            let line_end = buf.iter().position(|&b| b == b'\n');
            if line_end.is_none() && buf.len() > MAX_PATH + 32 {
                return Parsed::Refused(414);
            }
            if buf.len() >= MAX_HEAD {
                return Parsed::Refused(431);
            }
            return Parsed::Incomplete;
        }
        Err(httparse::Error::TooManyHeaders) => return Parsed::Refused(431),
        Err(_) => return Parsed::Refused(400),
    };
    if len > MAX_HEAD {
        return Parsed::Refused(431);
    }
    let (Some(method), Some(target), Some(version)) = (req.method, req.path, req.version) else {
        return Parsed::Refused(400);
    };
    if target.len() > MAX_PATH {
        return Parsed::Refused(414);
    }
    if method != "GET" {
        return Parsed::Refused(405);
    }
    let mut keep_alive = version == 1;
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("transfer-encoding") {
            return Parsed::Refused(400);
        }
        if h.name.eq_ignore_ascii_case("content-length") && h.value != b"0" {
            return Parsed::Refused(400);
        }
        if h.name.eq_ignore_ascii_case("connection") {
            if h.value.eq_ignore_ascii_case(b"close") {
                keep_alive = false;
            } else if h.value.eq_ignore_ascii_case(b"keep-alive") {
                keep_alive = true;
            }
        }
    }
    Parsed::Request {
        len,
        keep_alive,
        route: route(target, tenants),
    }
}

/// The endpoint `target` names (`/<tenant>/checkpoint`, `/<tenant>/tile/...`), or 404.
pub fn route<'a>(target: &'a str, tenants: &[&str]) -> Result<Route<'a>, u16> {
    let path = target.split_once('?').map_or(target, |(p, _)| p);
    let rest = path.strip_prefix('/').ok_or(404u16)?;
    let (tenant, object) = rest.split_once('/').ok_or(404u16)?;
    if !tenants.contains(&tenant) {
        return Err(404);
    }
    if object == "checkpoint" {
        return Ok(Route::Checkpoint { tenant });
    }
    match tlog::tile::parse_tile_path(object) {
        Ok(_) => Ok(Route::Object {
            tenant,
            path: object,
        }),
        Err(_) => Err(404),
    }
}

/// The HTTP status for an error code of the box (the crate documentation's table).
pub fn status_of(code: ErrorCode) -> u16 {
    use ErrorCode::*;
    match code {
        NotFound | UnknownTenant => 404,
        BadRequest => 400,
        Unsigned => 401,
        MalformedAuth | BadSignature | Unpaired | WrongArchive | WrongOperation | WrongHolder
        | UntrustedIssuer | CapabilityRequired | Expired | NotYetValid | OutOfRange
        | StaleRequest | Replayed | RequestMismatch => 403,
        Unavailable | Busy | ClockUnavailable | ClockBehind | NonceMemoryFull => 503,
        _ => 500,
    }
}

/// The reason phrase of the statuses this crate answers.
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        414 => "URI Too Long",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Internal Server Error",
    }
}

/// Whether the connection must close after answering `status` (a request it cannot trust the
/// framing of).
pub fn closes(status: u16) -> bool {
    matches!(status, 400 | 405 | 414 | 431)
}

fn head(
    status: u16,
    content_type: &str,
    cache: Option<&str>,
    len: u64,
    keep_alive: bool,
    extra: &str,
) -> String {
    let mut h = String::with_capacity(256);
    let _ = write!(
        h,
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {len}\r\n",
        reason(status)
    );
    if let Some(c) = cache {
        let _ = write!(h, "Cache-Control: {c}\r\n");
    }
    h.push_str(extra);
    h.push_str(if keep_alive {
        "Connection: keep-alive\r\n\r\n"
    } else {
        "Connection: close\r\n\r\n"
    });
    h
}

/// Writes an error answer for `status` with a short text body.
pub fn error_response(status: u16, keep_alive: bool, out: &mut dyn FnMut(&[u8])) {
    let keep_alive = keep_alive && !closes(status);
    let mut body = String::with_capacity(48);
    let _ = writeln!(body, "{status} {}", reason(status));
    let extra = if status == 405 { "Allow: GET\r\n" } else { "" };
    let h = head(
        status,
        "text/plain; charset=utf-8",
        None,
        body.len() as u64,
        keep_alive,
        extra,
    );
    out(h.as_bytes());
    out(body.as_bytes());
}

/// What [`serve`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Served {
    /// The status sent.
    pub status: u16,
    /// The connection must be closed now (the answer is cut short, or it asked to close).
    pub close: bool,
}

/// Answers `route`: encodes the protocol request(s) (ids from `next_id`, unsigned), hands each
/// to `call` (which returns the box's response encoding, or `None` if it gave none) and writes
/// the HTTP response to `out`.
pub fn serve(
    route: &Route<'_>,
    keep_alive: bool,
    next_id: &mut u64,
    call: &mut dyn FnMut(&[u8]) -> Option<Vec<u8>>,
    out: &mut dyn FnMut(&[u8]),
) -> Served {
    let fail = |status: u16, out: &mut dyn FnMut(&[u8])| {
        error_response(status, keep_alive, out);
        Served {
            status,
            close: !keep_alive || closes(status),
        }
    };
    let mut ask = |tenant: &str, op: Op<'_>| -> Result<Vec<u8>, u16> {
        *next_id = next_id.wrapping_add(1);
        let id = *next_id;
        let mut buf = [0u8; REQUEST_MAX];
        let n = Request {
            id,
            tenant,
            capability: &[],
            op,
        }
        .encode(&mut buf)
        .map_err(|_| 500u16)?;
        let resp = call(&buf[..n]).ok_or(503u16)?;
        match Response::decode(&resp) {
            Ok(r) if r.id == id => Ok(resp),
            _ => Err(500),
        }
    };
    match *route {
        Route::Checkpoint { tenant } => {
            let resp = match ask(tenant, Op::Checkpoint) {
                Ok(r) => r,
                Err(s) => return fail(s, out),
            };
            match Response::decode(&resp).map(|r| r.body) {
                Ok(Body::Checkpoint { note }) => {
                    let mut cache = String::new();
                    let _ = write!(cache, "max-age={CHECKPOINT_MAX_AGE}");
                    let h = head(
                        200,
                        CHECKPOINT_TYPE,
                        Some(&cache),
                        note.len() as u64,
                        keep_alive,
                        "",
                    );
                    out(h.as_bytes());
                    out(note);
                    Served {
                        status: 200,
                        close: !keep_alive,
                    }
                }
                Ok(Body::Error { code }) => fail(status_of(code), out),
                _ => fail(500, out),
            }
        }
        Route::Object { tenant, path } => {
            let mut offset = 0u64;
            let mut total = None;
            loop {
                let resp = ask(tenant, Op::GetObject { path, offset });
                let body = match &resp {
                    Ok(r) => Response::decode(r).map(|r| r.body).map_err(|_| 500u16),
                    Err(s) => Err(*s),
                };
                let piece = match body {
                    Ok(Body::Object {
                        total: t,
                        offset: o,
                        data,
                    }) if o == offset
                        && t <= MAX_OBJECT
                        && total.is_none_or(|known| known == t)
                        && offset.saturating_add(data.len() as u64) <= t
                        && (!data.is_empty() || offset == t) =>
                    {
                        Ok((t, data))
                    }
                    Ok(Body::Error { code }) => Err(status_of(code)),
                    Ok(_) => Err(500),
                    Err(s) => Err(s),
                };
                let (t, data) = match piece {
                    Ok(p) => p,
                    // Nothing sent yet: an error status. Part of the object sent: cut short.
                    Err(s) if total.is_none() => return fail(s, out),
                    Err(_) => {
                        return Served {
                            status: 200,
                            close: true,
                        }
                    }
                };
                if total.is_none() {
                    total = Some(t);
                    out(head(200, TILE_TYPE, Some(TILE_CACHE), t, keep_alive, "").as_bytes());
                }
                out(data);
                offset += data.len() as u64;
                if offset >= t {
                    return Served {
                        status: 200,
                        close: !keep_alive,
                    };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use std::string::String;
use std::vec;

const TENANTS: &[&str] = &["corporate", "hr"];

fn status(p: Parsed<'_>) -> u16 {
    match p {
        Parsed::Refused(s) => s,
        Parsed::Request { route: Err(s), .. } => s,
        Parsed::Request { route: Ok(_), .. } => 200,
        Parsed::Incomplete => 0,
    }
}

#[test]
fn routes_the_endpoints() {
    let p = parse(
        b"GET /corporate/checkpoint HTTP/1.1\r\nHost: x\r\n\r\nGET",
        TENANTS,
    );
    assert_eq!(
        p,
        Parsed::Request {
            len: 47,
            keep_alive: true,
            route: Ok(Route::Checkpoint {
                tenant: "corporate"
            })
        }
    );
    for (path, obj) in [
        ("/hr/tile/0/000", "tile/0/000"),
        ("/hr/tile/1/x001/234.p/7", "tile/1/x001/234.p/7"),
        ("/hr/tile/entries/005", "tile/entries/005"),
        ("/hr/tile/entries/000.p/3?x=1", "tile/entries/000.p/3"),
    ] {
        assert_eq!(
            route(path, TENANTS),
            Ok(Route::Object {
                tenant: "hr",
                path: obj
            }),
            "{path}"
        );
    }
}

#[test]
fn refuses_what_is_not_an_endpoint() {
    for path in [
        "/",
        "/hr",
        "/hr/",
        "/nobody/checkpoint",
        "/HR/checkpoint",
        "/hr/checkpoint/",
        "/hr/tile/0/5",
        "/hr/tile/0/x000/005",
        "/hr/tile/0/000.p/256",
        "/hr/tile/0/000.p/0",
        "/hr/tile/entries/01",
        "/hr/../corporate/checkpoint",
        "hr/checkpoint",
        "*",
    ] {
        assert_eq!(route(path, TENANTS), Err(404), "{path}");
    }
}

#[test]
fn bounds_and_malformed_requests() {
    assert_eq!(
        parse(b"GET /hr/checkpoint HTTP/1.1\r\n", TENANTS),
        Parsed::Incomplete
    );
    assert_eq!(parse(b"", TENANTS), Parsed::Incomplete);
    assert_eq!(status(parse(b"GARBAGE\r\n\r\n", TENANTS)), 400);
    assert_eq!(
        status(parse(b"GET /hr/checkpoint HTTP/9.9\r\n\r\n", TENANTS)),
        400
    );
    assert_eq!(status(parse(b"\x00\x01\x02\r\n\r\n", TENANTS)), 400);
    assert_eq!(
        status(parse(b"POST /hr/checkpoint HTTP/1.1\r\n\r\n", TENANTS)),
        405
    );
    assert_eq!(
        status(parse(b"HEAD /hr/checkpoint HTTP/1.1\r\n\r\n", TENANTS)),
        405
    );
    // A body on a GET.
    assert_eq!(
        status(parse(
            b"GET /hr/checkpoint HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
            TENANTS
        )),
        400
    );
    assert_eq!(
        status(parse(
            b"GET /hr/checkpoint HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            TENANTS
        )),
        400
    );
    assert_eq!(
        status(parse(
            b"GET /hr/checkpoint HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
            TENANTS
        )),
        200
    );
    // A long target: complete or still arriving.
    let long = format!("GET /hr/{} HTTP/1.1\r\n\r\n", "a".repeat(MAX_PATH));
    assert_eq!(status(parse(long.as_bytes(), TENANTS)), 414);
    let arriving = format!("GET /hr/{}", "a".repeat(MAX_PATH + 40));
    assert_eq!(status(parse(arriving.as_bytes(), TENANTS)), 414);
    let ok = format!("GET /hr/{} HTTP/1.1\r\n\r\n", "a".repeat(MAX_PATH - 4));
    assert_eq!(status(parse(ok.as_bytes(), TENANTS)), 404);
    // Too many headers, or too many header bytes (complete or not).
    let mut many = String::from("GET /hr/checkpoint HTTP/1.1\r\n");
    for i in 0..=MAX_HEADERS {
        many.push_str(&format!("X-{i}: y\r\n"));
    }
    many.push_str("\r\n");
    assert_eq!(status(parse(many.as_bytes(), TENANTS)), 431);
    let big = format!(
        "GET /hr/checkpoint HTTP/1.1\r\nX-Big: {}\r\n\r\n",
        "b".repeat(MAX_HEAD)
    );
    assert_eq!(status(parse(big.as_bytes(), TENANTS)), 431);
    assert_eq!(
        status(parse(&big.as_bytes()[..MAX_HEAD + 10], TENANTS)),
        431
    );
    assert_eq!(status(parse(&big.as_bytes()[..MAX_HEAD - 10], TENANTS)), 0);
}

#[test]
fn keep_alive_follows_the_client() {
    let ka = |req: &[u8]| match parse(req, TENANTS) {
        Parsed::Request { keep_alive, .. } => keep_alive,
        other => panic!("{other:?}"),
    };
    assert!(ka(b"GET /hr/checkpoint HTTP/1.1\r\n\r\n"));
    assert!(!ka(
        b"GET /hr/checkpoint HTTP/1.1\r\nConnection: close\r\n\r\n"
    ));
    assert!(!ka(b"GET /hr/checkpoint HTTP/1.0\r\n\r\n"));
    assert!(ka(
        b"GET /hr/checkpoint HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"
    ));
}

#[test]
fn statuses_of_error_codes() {
    assert_eq!(status_of(ErrorCode::NotFound), 404);
    assert_eq!(status_of(ErrorCode::UnknownTenant), 404);
    assert_eq!(status_of(ErrorCode::Unsigned), 401);
    for c in [
        ErrorCode::Unpaired,
        ErrorCode::WrongOperation,
        ErrorCode::CapabilityRequired,
        ErrorCode::BadSignature,
        ErrorCode::Replayed,
    ] {
        assert_eq!(status_of(c), 403, "{c:?}");
    }
    assert_eq!(status_of(ErrorCode::Unavailable), 503);
    assert_eq!(status_of(ErrorCode::Storage), 500);
    assert_eq!(status_of(ErrorCode::Damaged), 500);
}

/// A box holding one object of `size` bytes at `tile/entries/000`, served in chunks of
/// `chunk`; `fail_at`: the answer to the request at that offset is `Storage`.
fn fake(size: usize, chunk: usize, fail_at: Option<u64>) -> impl FnMut(&[u8]) -> Option<Vec<u8>> {
    let object: Vec<u8> = (0..size).map(|i| i as u8).collect();
    move |req: &[u8]| {
        let r = Request::decode(req).ok()?;
        assert!(r.capability.is_empty());
        let mut buf = vec![0u8; protocol::MAX_PAYLOAD];
        let body = match r.op {
            Op::Checkpoint => Body::Checkpoint {
                note: b"origin\n1\nroot\n\n- sig\n",
            },
            Op::GetObject { offset, .. } if Some(offset) == fail_at => Body::Error {
                code: ErrorCode::Storage,
            },
            Op::GetObject {
                path: "tile/entries/000",
                offset,
            } => {
                let start = (offset as usize).min(size);
                let end = (start + chunk).min(size);
                Body::Object {
                    total: size as u64,
                    offset,
                    data: &object[start..end],
                }
            }
            Op::GetObject { .. } => Body::Error {
                code: ErrorCode::Unsigned,
            },
            _ => return None,
        };
        let n = Response { id: r.id, body }.encode(&mut buf).ok()?;
        buf.truncate(n);
        Some(buf)
    }
}

fn run(route: Route<'_>, call: &mut dyn FnMut(&[u8]) -> Option<Vec<u8>>) -> (Served, Vec<u8>) {
    let mut out = Vec::new();
    let mut id = 0;
    let s = serve(&route, true, &mut id, call, &mut |b| {
        out.extend_from_slice(b)
    });
    (s, out)
}

fn split(resp: &[u8]) -> (String, Vec<u8>) {
    let at = resp.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    (
        String::from_utf8(resp[..at].to_vec()).unwrap(),
        resp[at + 4..].to_vec(),
    )
}

#[test]
fn checkpoint_answer() {
    let (s, out) = run(Route::Checkpoint { tenant: "hr" }, &mut fake(0, 1, None));
    assert_eq!(
        s,
        Served {
            status: 200,
            close: false
        }
    );
    let (h, body) = split(&out);
    assert!(h.starts_with("HTTP/1.1 200 OK\r\n"), "{h}");
    assert!(h.contains("Content-Type: text/plain; charset=utf-8"), "{h}");
    assert!(h.contains("Cache-Control: max-age=5"), "{h}");
    assert!(
        h.contains(&format!("Content-Length: {}", body.len())),
        "{h}"
    );
    assert_eq!(body, b"origin\n1\nroot\n\n- sig\n");
}

#[test]
fn large_objects_are_fetched_in_chunks_and_sent_whole() {
    let size = 3 * protocol::MAX_CHUNK + 17;
    let mut calls = 0;
    let mut inner = fake(size, protocol::MAX_CHUNK, None);
    let mut counted = |r: &[u8]| {
        calls += 1;
        inner(r)
    };
    let (s, out) = run(
        Route::Object {
            tenant: "hr",
            path: "tile/entries/000",
        },
        &mut counted,
    );
    assert_eq!(s.status, 200);
    assert_eq!(calls, 4);
    let (h, body) = split(&out);
    assert!(h.contains("Content-Type: application/octet-stream"), "{h}");
    assert!(
        h.contains("Cache-Control: public, max-age=31536000, immutable"),
        "{h}"
    );
    assert!(h.contains(&format!("Content-Length: {size}\r\n")), "{h}");
    assert_eq!(body, (0..size).map(|i| i as u8).collect::<Vec<u8>>());
}

#[test]
fn a_failure_after_the_head_closes_the_connection() {
    let size = 2 * protocol::MAX_CHUNK;
    let route = Route::Object {
        tenant: "hr",
        path: "tile/entries/000",
    };
    let (s, out) = run(
        route,
        &mut fake(size, protocol::MAX_CHUNK, Some(protocol::MAX_CHUNK as u64)),
    );
    assert_eq!(
        s,
        Served {
            status: 200,
            close: true
        }
    );
    let (_, body) = split(&out);
    assert_eq!(body.len(), protocol::MAX_CHUNK, "cut short, never padded");
    // A failure at the first chunk is a status.
    let (s, out) = run(route, &mut fake(size, protocol::MAX_CHUNK, Some(0)));
    assert_eq!(
        s,
        Served {
            status: 500,
            close: false
        }
    );
    assert!(out.starts_with(b"HTTP/1.1 500 "));
    // A box that makes no progress is not looped on.
    let (s, _) = run(route, &mut fake(size, 0, None));
    assert_eq!(s.status, 500);
}

#[test]
fn refusals_and_silence() {
    let (s, out) = run(
        Route::Object {
            tenant: "hr",
            path: "tile/0/000",
        },
        &mut fake(1, 1, None),
    );
    assert_eq!(s.status, 401);
    assert!(out.starts_with(b"HTTP/1.1 401 Unauthorized\r\n"));
    let (s, _) = run(Route::Checkpoint { tenant: "hr" }, &mut |_: &[u8]| None);
    assert_eq!(s.status, 503);
    // An answer to another request is no answer.
    let (s, _) = run(Route::Checkpoint { tenant: "hr" }, &mut |_: &[u8]| {
        let mut buf = vec![0u8; 64];
        let n = Response::error(999, ErrorCode::NotFound)
            .encode(&mut buf)
            .unwrap();
        buf.truncate(n);
        Some(buf)
    });
    assert_eq!(s.status, 500);
}

#[test]
fn error_answers_close_when_they_must() {
    let mut out = Vec::new();
    error_response(431, true, &mut |b| out.extend_from_slice(b));
    let (h, body) = split(&out);
    assert!(
        h.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"),
        "{h}"
    );
    assert!(h.contains("Connection: close"), "{h}");
    assert_eq!(body, b"431 Request Header Fields Too Large\n");
    out.clear();
    error_response(405, true, &mut |b| out.extend_from_slice(b));
    assert!(split(&out).0.contains("Allow: GET"));
    out.clear();
    error_response(404, true, &mut |b| out.extend_from_slice(b));
    assert!(split(&out).0.contains("Connection: keep-alive"));
}

//! The client wire protocol of Totebox Envelope B: how a client talks to the **wire** PD over a
//! byte stream (virtio-console inside the image, a socket in the simulator).
//!
//! - [`frame`]: each message is one frame, `COBS(payload || CRC-32) 0x00`, payload at most
//!   [`MAX_PAYLOAD`] (128 KiB, stated once here). Damaged, truncated, oversized frames and
//!   garbage are dropped at the next `0x00` and answered with an error; the stream stays usable.
//! - [`msg`]: the postcard-encoded [`Request`] (request id, tenant `moduleId`, its
//!   authorization, an [`Op`]) and [`Response`]. Decoding borrows from the frame. The
//!   authorization ([`Authorization`]: the signed request note and a capability note) is
//!   checked by the `access` crate (`docs/access.md`).
//! - [`client`] (feature `std`): a blocking client.
//!
//! `no_std`, no allocation, no `unsafe`, no panics on any input.
#![cfg_attr(not(feature = "std"), no_std)]
#![forbid(unsafe_code)]

#[cfg(feature = "std")]
extern crate std;

#[cfg(feature = "std")]
pub mod client;
pub mod frame;
pub mod msg;

pub use frame::{encode_frame, Decoder, FrameError, MAX_ENCODED, MAX_PAYLOAD};
pub use msg::{
    count_entries, entries, peek_request_id, push_entry, Authorization, Body, CodecError,
    ErrorCode, Op, Request, Response, MAX_AUTH, MAX_AUTH_NOTE, MAX_CHUNK, MAX_ENTRY, MAX_TENANT,
    RESPONSE_OVERHEAD,
};

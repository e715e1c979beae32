//! Framing: every message travels as `COBS(payload || CRC-32(payload) as 4 little-endian bytes)`
//! followed by one `0x00` delimiter.
//!
//! COBS removes every zero from the frame body, so a zero always ends a frame: a receiver that
//! joins mid-stream, or meets garbage, resynchronises at the next zero. The CRC catches bytes
//! damaged or lost inside a frame. The decoded payload is at most [`MAX_PAYLOAD`] bytes; a frame
//! whose body grows past [`MAX_ENCODED`] before its delimiter is dropped (and reported once, when
//! the delimiter arrives), so a stream of garbage costs the receiver a fixed buffer and nothing
//! else.
//!
//! The CRC is `crc32fast` (CRC-32/ISO-HDLC). COBS is written here rather than taken from the
//! `cobs` crate because its encoder needs the whole encoded frame in an output buffer (up to
//! [`MAX_ENCODED`] bytes), while [`encode_frame`] streams into the console in pieces of at most
//! 255 bytes with no buffer, and [`Decoder`] enforces the frame limit before the delimiter.

/// Largest payload (the postcard message) of one frame: 128 KiB. Stated once; every buffer on
/// both sides of the wire, and the wire <-> ledger shared region, derive from it.
pub const MAX_PAYLOAD: usize = 128 * 1024;

/// Bytes of checksum after the payload.
pub const CRC_LEN: usize = 4;

/// Longest COBS encoding of `n` bytes (without the delimiter): one code byte per 254 data bytes,
/// plus one.
pub const fn max_encoded_len(n: usize) -> usize {
    n + n / 254 + 1
}

/// Longest frame body (COBS of the largest payload and its CRC), without the delimiter: the
/// receive buffer a [`Decoder`] needs.
pub const MAX_ENCODED: usize = max_encoded_len(MAX_PAYLOAD + CRC_LEN);

/// Why a frame was dropped. Closed, explicit discriminants from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum FrameError {
    /// The body grew past [`MAX_ENCODED`] bytes before its delimiter.
    Oversize = 1,
    /// The body is not valid COBS (a code byte pointing past the end).
    BadEncoding = 2,
    /// Shorter than a checksum.
    Truncated = 3,
    /// The checksum does not match: bytes were damaged or lost.
    BadChecksum = 4,
}

impl core::fmt::Display for FrameError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            FrameError::Oversize => "frame longer than the maximum",
            FrameError::BadEncoding => "frame is not valid COBS",
            FrameError::Truncated => "frame shorter than its checksum",
            FrameError::BadChecksum => "frame checksum mismatch",
        })
    }
}

/// Encodes `payload` as one frame (COBS body, then the `0x00` delimiter), handing the bytes to
/// `sink` in pieces of at most 255 bytes. Needs no buffer. The caller keeps `payload` within
/// [`MAX_PAYLOAD`]; a longer one is still encoded, and every receiver drops it.
pub fn encode_frame(payload: &[u8], mut sink: impl FnMut(&[u8])) {
    let crc = crc32fast::hash(payload).to_le_bytes();
    // block[0] is the code byte: 1 + the number of data bytes that follow it.
    let mut block = [0u8; 255];
    let mut n = 0usize;
    for &b in payload.iter().chain(crc.iter()) {
        if b == 0 {
            block[0] = (n + 1) as u8;
            sink(&block[..=n]);
            n = 0;
        } else {
            n += 1;
            block[n] = b;
            if n == 254 {
                block[0] = 0xFF;
                sink(&block);
                n = 0;
            }
        }
    }
    block[0] = (n + 1) as u8;
    sink(&block[..=n]);
    sink(&[0]);
}

#[cfg(feature = "std")]
use std::vec::Vec;

/// [`encode_frame`] into a `Vec` (host convenience).
#[cfg(feature = "std")]
pub fn encode_frame_vec(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(max_encoded_len(payload.len() + CRC_LEN) + 1);
    encode_frame(payload, |b| out.extend_from_slice(b));
    out
}

/// Decodes a COBS body in place; returns the decoded length.
fn cobs_decode_in_place(buf: &mut [u8]) -> Result<usize, FrameError> {
    let len = buf.len();
    let (mut i, mut out) = (0usize, 0usize);
    while i < len {
        let code = usize::from(buf[i]);
        if code == 0 {
            return Err(FrameError::BadEncoding);
        }
        i += 1;
        let end = i + code - 1;
        if end > len {
            return Err(FrameError::BadEncoding);
        }
        // out <= i - 1 always, so the copy moves bytes left (or not at all).
        buf.copy_within(i..end, out);
        out += code - 1;
        i = end;
        if code != 0xFF && i < len {
            buf[out] = 0;
            out += 1;
        }
    }
    Ok(out)
}

/// A streaming frame receiver over a caller-provided buffer of at least [`MAX_ENCODED`] bytes
/// (a smaller one lowers the frame limit accordingly).
#[derive(Debug)]
pub struct Decoder<B> {
    buf: B,
    len: usize,
    overflow: bool,
}

impl<B: AsMut<[u8]>> Decoder<B> {
    /// A receiver using `buf`.
    pub fn new(buf: B) -> Self {
        Decoder {
            buf,
            len: 0,
            overflow: false,
        }
    }

    /// Drops any partial frame (a new connection on the simulator's socket).
    pub fn reset(&mut self) {
        self.len = 0;
        self.overflow = false;
    }

    /// Whether a frame has started and not yet ended.
    pub fn in_frame(&self) -> bool {
        self.len > 0 || self.overflow
    }

    /// Feeds received bytes; calls `on` once per delimiter that ends a non-empty frame, with
    /// the payload (checksum removed) or why the frame was dropped. Empty frames (repeated
    /// delimiters) are ignored.
    pub fn feed(&mut self, mut input: &[u8], mut on: impl FnMut(Result<&[u8], FrameError>)) {
        while !input.is_empty() {
            let zero = input.iter().position(|&b| b == 0);
            let chunk = &input[..zero.unwrap_or(input.len())];
            let buf = self.buf.as_mut();
            if !self.overflow {
                match buf.get_mut(self.len..self.len + chunk.len()) {
                    Some(dst) => {
                        dst.copy_from_slice(chunk);
                        self.len += chunk.len();
                    }
                    None => self.overflow = true,
                }
            }
            let Some(z) = zero else { return };
            input = &input[z + 1..];
            if self.overflow {
                self.reset();
                on(Err(FrameError::Oversize));
                continue;
            }
            if self.len == 0 {
                continue;
            }
            let body = &mut buf[..self.len];
            self.len = 0;
            match cobs_decode_in_place(body) {
                Err(e) => on(Err(e)),
                Ok(n) if n < CRC_LEN => on(Err(FrameError::Truncated)),
                Ok(n) => {
                    let (payload, crc) = body[..n].split_at(n - CRC_LEN);
                    if crc == crc32fast::hash(payload).to_le_bytes() {
                        on(Ok(payload));
                    } else {
                        on(Err(FrameError::BadChecksum));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn checksum_is_crc32_iso_hdlc() {
        // The standard check value of CRC-32/ISO-HDLC: what every peer must compute.
        assert_eq!(crc32fast::hash(b"123456789"), 0xCBF4_3926);
        let mut frame = Vec::new();
        super::encode_frame(b"123456789", |b| frame.extend_from_slice(b));
        // No zero in the payload or CRC: one COBS block, code byte 14, then the delimiter.
        assert_eq!(frame[0], 14);
        assert_eq!(&frame[1..10], b"123456789");
        assert_eq!(&frame[10..14], &0xCBF4_3926u32.to_le_bytes());
        assert_eq!(frame[14..], [0]);
    }
}

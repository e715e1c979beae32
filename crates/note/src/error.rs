//! The one error type of this crate.

use core::fmt;

/// Everything that can go wrong parsing, signing or verifying.
///
/// Closed on purpose: callers (and protection domains passing it over IPC as a `u8`) can match
/// every case. Discriminants start at 1 and never change once published; new cases get new
/// numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Error {
    /// The note is not valid UTF-8.
    NoteNotUtf8 = 1,
    /// The note (or a text to sign) contains an ASCII control character other than newline.
    ControlCharacter = 2,
    /// The note has no blank line separating the text from the signatures.
    MissingBlankLine = 3,
    /// The note has a text and a blank line but no signature line.
    NoSignatures = 4,
    /// The last signature line does not end in a newline.
    MissingFinalNewline = 5,
    /// A signature line does not start with an em dash (U+2014) and a space.
    SignatureLinePrefix = 6,
    /// A signature line has no space between the key name and the signature.
    SignatureLineFormat = 7,
    /// A key name is empty or contains a Unicode space, a `+` or a control character.
    KeyName = 8,
    /// A signature is not canonical standard padded base64.
    SignatureBase64 = 9,
    /// A signature is shorter than a 4-byte key id plus one byte.
    SignatureTooShort = 10,
    /// The note carries more than [`crate::MAX_SIGNATURES`] signature lines.
    TooManySignatures = 11,
    /// A text to sign is empty or does not end in a newline.
    TextFormat = 12,
    /// The verifier set holds two keys with the same name and key id.
    AmbiguousVerifiers = 13,
    /// A signature whose name and key id match a known key does not verify.
    InvalidSignature = 14,
    /// No signature in the note is from a known key.
    NoVerifiedSignature = 15,
    /// A key string does not have the `<name>+<key id>+<base64 key>` shape.
    KeyFormat = 16,
    /// A key id is not exactly 8 lowercase hexadecimal digits.
    KeyIdHex = 17,
    /// The key material is not canonical standard padded base64.
    KeyBase64 = 18,
    /// The key type byte is not one this crate implements (0x01 Ed25519, 0x04 cosignature).
    KeyType = 19,
    /// The key material after the type byte is not 32 bytes.
    KeyLength = 20,
    /// The key id in the key string does not match the name and key.
    KeyIdMismatch = 21,
    /// A signer key string does not start with `PRIVATE+KEY+`.
    SignerKeyPrefix = 22,
    /// The public key is not a valid Ed25519 point, or is of small order.
    PublicKey = 23,
    /// The key has the wrong type for this use (e.g. a cosignature key given to [`crate::Signer`]).
    WrongKeyType = 24,
    /// A checkpoint text has fewer than three lines, or a line not ending in newline.
    CheckpointLines = 25,
    /// A checkpoint origin line is empty or contains a control character.
    CheckpointOrigin = 26,
    /// A checkpoint tree size is not a decimal u64 without leading zeros.
    CheckpointSize = 27,
    /// A checkpoint root hash is not canonical base64 of exactly 32 bytes.
    CheckpointRoot = 28,
    /// A checkpoint extension line is empty or contains a control character.
    CheckpointExtension = 29,
    /// A cosignature timestamp exceeds 2^63 - 1.
    CosignatureTimestamp = 30,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let msg = match self {
            Error::NoteNotUtf8 => "malformed note: not valid UTF-8",
            Error::ControlCharacter => {
                "malformed note: contains an ASCII control character other than newline"
            }
            Error::MissingBlankLine => {
                "malformed note: no blank line between the text and the signatures"
            }
            Error::NoSignatures => "malformed note: no signature lines after the blank line",
            Error::MissingFinalNewline => "malformed note: last signature line lacks its newline",
            Error::SignatureLinePrefix => {
                "malformed note: signature line does not start with an em dash and a space"
            }
            Error::SignatureLineFormat => {
                "malformed note: signature line is not `— <name> <base64 signature>`"
            }
            Error::KeyName => {
                "invalid key name: empty, or contains a space, a plus or a control character"
            }
            Error::SignatureBase64 => "malformed note: signature is not standard padded base64",
            Error::SignatureTooShort => {
                "malformed note: signature is shorter than a key id plus one byte"
            }
            Error::TooManySignatures => "malformed note: more than 100 signatures",
            Error::TextFormat => "invalid note text: empty or not ending in a newline",
            Error::AmbiguousVerifiers => {
                "ambiguous verifiers: two known keys share a name and key id"
            }
            Error::InvalidSignature => "invalid signature from a known key",
            Error::NoVerifiedSignature => "no signature from a known key",
            Error::KeyFormat => "malformed key: not `<name>+<key id>+<base64 key>`",
            Error::KeyIdHex => "malformed key: key id is not 8 lowercase hex digits",
            Error::KeyBase64 => "malformed key: key is not standard padded base64",
            Error::KeyType => "unsupported key type (this crate knows 0x01 and 0x04)",
            Error::KeyLength => "malformed key: key is not 32 bytes",
            Error::KeyIdMismatch => "malformed key: key id does not match name and key",
            Error::SignerKeyPrefix => "malformed signer key: does not start with PRIVATE+KEY+",
            Error::PublicKey => "invalid public key: not an Ed25519 point of large order",
            Error::WrongKeyType => "wrong key type for this operation",
            Error::CheckpointLines => {
                "malformed checkpoint: fewer than three newline-terminated lines"
            }
            Error::CheckpointOrigin => {
                "malformed checkpoint: origin is empty or has a control character"
            }
            Error::CheckpointSize => {
                "malformed checkpoint: tree size is not a decimal u64 without leading zeros"
            }
            Error::CheckpointRoot => "malformed checkpoint: root hash is not base64 of 32 bytes",
            Error::CheckpointExtension => {
                "malformed checkpoint: extension line is empty or has a control character"
            }
            Error::CosignatureTimestamp => "cosignature timestamp exceeds 2^63 - 1",
        };
        f.write_str(msg)
    }
}

impl core::error::Error for Error {}

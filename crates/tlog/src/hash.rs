//! RFC 9162 §2.1.1 Merkle tree hashing with SHA-256.
//!
//! Every function here takes or returns [`Hash`](type@Hash), a fixed 32-byte array: a value that is not
//! 32 bytes long cannot be a SHA-256 tree hash, so code that receives hashes from outside turns
//! them into [`Hash`](type@Hash) with [`hash_from_slice`], which rejects any other length.

use sha2::{Digest, Sha256};

/// A SHA-256 Merkle tree hash (leaf, interior node or root).
pub type Hash = [u8; 32];

/// Bytes in a [`Hash`](type@Hash).
pub const HASH_SIZE: usize = 32;

/// Root of the empty tree: `SHA-256("")` (RFC 9162 §2.1.1).
pub const EMPTY_ROOT: Hash = [
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
    0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
];

/// Leaf hash of an entry: `SHA-256(0x00 || entry)`.
pub fn leaf_hash(entry: &[u8]) -> Hash {
    Sha256::new()
        .chain_update([0x00])
        .chain_update(entry)
        .finalize()
        .into()
}

/// Interior node hash: `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    // One contiguous 65-byte message: sha2 then compresses it with a single buffered update.
    let mut msg = [0u8; 1 + 2 * HASH_SIZE];
    msg[0] = 0x01;
    msg[1..1 + HASH_SIZE].copy_from_slice(left);
    msg[1 + HASH_SIZE..].copy_from_slice(right);
    Sha256::digest(msg).into()
}

/// The given bytes as a [`Hash`](type@Hash); `None` unless they are exactly 32 bytes.
pub fn hash_from_slice(bytes: &[u8]) -> Option<Hash> {
    bytes.try_into().ok()
}

/// Root of a perfect subtree whose `2^k` bottom hashes are `hashes` (k >= 0), computed in place
/// in `scratch` without allocating. `scratch` must hold at least `hashes.len() / 2` hashes.
///
/// Returns `None` when `hashes` is empty, not a power of two long, or `scratch` is too small;
/// callers pass fixed tile-sized buffers, so `None` means a bug, reported as an error upstream.
pub(crate) fn perfect_root(hashes: &[Hash], scratch: &mut [Hash]) -> Option<Hash> {
    let n = hashes.len();
    if n == 0 || !n.is_power_of_two() {
        return None;
    }
    if n == 1 {
        return Some(hashes[0]);
    }
    let half = n / 2;
    let scratch = scratch.get_mut(..half)?;
    for (i, out) in scratch.iter_mut().enumerate() {
        *out = node_hash(&hashes[2 * i], &hashes[2 * i + 1]);
    }
    let mut len = half;
    while len > 1 {
        for i in 0..len / 2 {
            scratch[i] = node_hash(&scratch[2 * i], &scratch[2 * i + 1]);
        }
        len /= 2;
    }
    Some(scratch[0])
}

/// Largest power of two strictly smaller than `n` (the RFC 9162 split point `k`); `n >= 2`.
pub(crate) fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1u64 << (63 - (n - 1).leading_zeros())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(h: &Hash) -> String {
        h.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn rfc6962_hash_vectors() {
        // testdata/hashes.md, "RFC 6962 hashing".
        assert_eq!(
            hex(&EMPTY_ROOT),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(hex(&Sha256::digest(b"").into()), hex(&EMPTY_ROOT));
        assert_eq!(
            hex(&leaf_hash(b"")),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
        assert_eq!(
            hex(&leaf_hash(b"L123456")),
            "395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56"
        );
        assert_eq!(
            hex(&leaf_hash(b"hello world")),
            "4eccf34608d31bac5c7becf6006df59005d828181056d092084e341e6bb005bd"
        );
        // node("N123", "N456") hashes 0x01 || "N123" || "N456": not 32-byte children, so
        // compute it directly to check the domain separation byte.
        let direct: Hash = Sha256::new()
            .chain_update([1u8])
            .chain_update(b"N123")
            .chain_update(b"N456")
            .finalize()
            .into();
        assert_eq!(
            hex(&direct),
            "aa217fe888e47007fa15edab33c2b492a722cb106c64667fc2b044444de66bbb"
        );
        let (a, b) = (leaf_hash(b"a"), leaf_hash(b"b"));
        let expect: Hash = Sha256::new()
            .chain_update([1u8])
            .chain_update(a)
            .chain_update(b)
            .finalize()
            .into();
        assert_eq!(node_hash(&a, &b), expect);
    }

    #[test]
    fn hash_lengths() {
        assert!(hash_from_slice(&[0u8; 31]).is_none());
        assert!(hash_from_slice(&[0u8; 33]).is_none());
        assert!(hash_from_slice(&[]).is_none());
        assert_eq!(hash_from_slice(&[7u8; 32]), Some([7u8; 32]));
    }

    #[test]
    fn perfect_root_and_split() {
        let leaves: Vec<Hash> = (0u8..8).map(|i| leaf_hash(&[i])).collect();
        let mut scratch = [[0u8; 32]; 4];
        let n01 = node_hash(&leaves[0], &leaves[1]);
        let n23 = node_hash(&leaves[2], &leaves[3]);
        let n45 = node_hash(&leaves[4], &leaves[5]);
        let n67 = node_hash(&leaves[6], &leaves[7]);
        let want = node_hash(&node_hash(&n01, &n23), &node_hash(&n45, &n67));
        assert_eq!(perfect_root(&leaves, &mut scratch), Some(want));
        assert_eq!(perfect_root(&leaves[..1], &mut scratch), Some(leaves[0]));
        assert_eq!(perfect_root(&leaves[..3], &mut scratch), None);
        assert_eq!(perfect_root(&[], &mut scratch), None);
        assert_eq!(perfect_root(&leaves, &mut scratch[..3]), None);
        assert_eq!(split_point(2), 1);
        assert_eq!(split_point(3), 2);
        assert_eq!(split_point(4), 2);
        assert_eq!(split_point(5), 4);
        assert_eq!(split_point(u64::MAX), 1 << 63);
    }
}

//! Inclusion and consistency proofs, RFC 9162 §2.1.3 and §2.1.4 (the algorithms of RFC 6962
//! with the verification steps written out).
//!
//! # Decisions where implementations differ
//!
//! - **Hash lengths.** A leaf hash, root or proof element that is not exactly 32 bytes is
//!   rejected ([`ProofError::HashLength`]) before anything is hashed, including in the
//!   "equal sizes, empty proof, equal roots" case that the reference Go implementation accepts
//!   for any byte strings: a 12-byte "root" is not a SHA-256 tree head, and accepting it would
//!   let a caller compare two garbage values and call them consistent.
//! - **Consistency from size 0 is rejected** ([`ProofError::SizeZero`]), for every second
//!   size and even with an empty proof, as the transparency-dev/merkle vectors require. The
//!   empty tree's root is a constant, so a proof from it carries no information: every tree
//!   extends it. A caller asking for one has almost certainly confused "no earlier checkpoint"
//!   with "a checkpoint of size 0"; making that an error surfaces the bug. Protocols that want
//!   `old 0` with an empty proof (c2sp.org/tlog-witness) handle size 0 themselves before
//!   calling here, where the correct answer needs no proof at all.
//!
//! Proof generation reads perfect-subtree hashes from a [`NodeSource`]: the [`crate::Log`]
//! provides one over its tiles, and tests provide one over a list of leaf hashes.

use alloc::vec::Vec;

use crate::hash::{hash_from_slice, node_hash, split_point, Hash, EMPTY_ROOT};

/// Why a proof did not verify or could not be generated. Closed; discriminants start at 1 and
/// never change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ProofError {
    /// A leaf hash, root or proof element is not exactly 32 bytes.
    HashLength = 1,
    /// The leaf index is not below the tree size.
    IndexOutOfRange = 2,
    /// A consistency proof from (or generation at) tree size 0 was requested.
    SizeZero = 3,
    /// The first size of a consistency proof exceeds the second.
    SizeOrder = 4,
    /// The proof has too many or too few elements for the sizes given.
    ProofLength = 5,
    /// The proof is well formed but does not lead to the given root(s).
    RootMismatch = 6,
}

impl core::fmt::Display for ProofError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            ProofError::HashLength => "a leaf hash, root or proof element is not 32 bytes",
            ProofError::IndexOutOfRange => "leaf index is not below the tree size",
            ProofError::SizeZero => {
                "consistency with the empty tree (size 0) is not proved, it holds trivially"
            }
            ProofError::SizeOrder => "first tree size exceeds the second",
            ProofError::ProofLength => "proof has the wrong number of elements for the sizes",
            ProofError::RootMismatch => "proof does not lead to the given root",
        })
    }
}

impl core::error::Error for ProofError {}

/// Hashes of perfect subtrees of one tree.
///
/// `node(level, index)` is the root of the `2^level` leaves starting at leaf `index << level`;
/// level 0 is the leaf hashes. Proof generation only asks for nodes wholly inside the tree.
pub trait NodeSource {
    /// Why a node could not be read (storage failure, corrupt tile, ...).
    type Error: From<ProofError>;

    /// The root of the perfect subtree at `level`, `index`.
    fn node(&mut self, level: u8, index: u64) -> Result<Hash, Self::Error>;
}

/// A list of leaf hashes is a [`NodeSource`] for the tree of exactly those leaves (tests and
/// small trees: each node is recomputed from its leaves).
impl NodeSource for &[Hash] {
    type Error = ProofError;

    fn node(&mut self, level: u8, index: u64) -> Result<Hash, ProofError> {
        fn go(leaves: &[Hash], level: u8, index: u64) -> Option<Hash> {
            if level == 0 {
                return leaves.get(usize::try_from(index).ok()?).copied();
            }
            let l = go(leaves, level - 1, index.checked_mul(2)?)?;
            let r = go(leaves, level - 1, index.checked_mul(2)?.checked_add(1)?)?;
            Some(node_hash(&l, &r))
        }
        go(self, level, index).ok_or(ProofError::IndexOutOfRange)
    }
}

/// MTH of leaves `[lo, hi)` (RFC 9162 §2.1.1), `lo < hi`, from perfect subtrees of `src`.
fn range_hash<S: NodeSource>(src: &mut S, lo: u64, hi: u64) -> Result<Hash, S::Error> {
    let n = hi - lo;
    if n.is_power_of_two() && lo.is_multiple_of(n) {
        // A stored perfect subtree. The tree's ranges are always aligned this way; the split
        // below also handles unaligned ones by recursing down to single leaves.
        return src.node(n.trailing_zeros() as u8, lo >> n.trailing_zeros());
    }
    let k = if n.is_power_of_two() {
        n / 2
    } else {
        split_point(n)
    };
    let left = range_hash(src, lo, lo + k)?;
    let right = range_hash(src, lo + k, hi)?;
    Ok(node_hash(&left, &right))
}

/// Root of the tree of the first `size` leaves of `src` ([`EMPTY_ROOT`] for size 0).
pub fn root<S: NodeSource>(src: &mut S, size: u64) -> Result<Hash, S::Error> {
    if size == 0 {
        return Ok(EMPTY_ROOT);
    }
    range_hash(src, 0, size)
}

/// Inclusion proof `PATH(index, D[size])` (RFC 9162 §2.1.3.1), leaf-side element first.
pub fn prove_inclusion<S: NodeSource>(
    src: &mut S,
    index: u64,
    size: u64,
) -> Result<Vec<Hash>, S::Error> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange.into());
    }
    // Walk down from the root, remembering the sibling ranges; the proof lists them bottom-up.
    // At most 64 levels: a fixed array, no allocation besides the returned proof.
    let mut siblings = [(0u64, 0u64); 64];
    let mut depth = 0;
    let (mut lo, mut hi) = (0u64, size);
    while hi - lo > 1 {
        let k = split_point(hi - lo);
        if index < lo + k {
            siblings[depth] = (lo + k, hi);
            hi = lo + k;
        } else {
            siblings[depth] = (lo, lo + k);
            lo += k;
        }
        depth += 1;
    }
    let mut proof = Vec::with_capacity(depth);
    for &(a, b) in siblings[..depth].iter().rev() {
        proof.push(range_hash(src, a, b)?);
    }
    Ok(proof)
}

/// Consistency proof `PROOF(size1, D[size2])` (RFC 9162 §2.1.4.1). Empty when the sizes are
/// equal; [`ProofError::SizeZero`] when `size1` is 0 (see the module docs).
pub fn prove_consistency<S: NodeSource>(
    src: &mut S,
    size1: u64,
    size2: u64,
) -> Result<Vec<Hash>, S::Error> {
    if size1 == 0 {
        return Err(ProofError::SizeZero.into());
    }
    if size1 > size2 {
        return Err(ProofError::SizeOrder.into());
    }
    let mut proof = Vec::new();
    if size1 == size2 {
        return Ok(proof);
    }
    // SUBPROOF(m, D[lo..hi], b), unrolled: going down, the path records the sibling range
    // that SUBPROOF appends after its recursive call; the final node is emitted first.
    let mut siblings = [(0u64, 0u64); 64];
    let mut depth = 0;
    let (mut lo, mut hi, mut m, mut b) = (0u64, size2, size1, true);
    let last = loop {
        let n = hi - lo;
        if m == n {
            break if b { None } else { Some((lo, hi)) };
        }
        let k = split_point(n);
        if m <= k {
            siblings[depth] = (lo + k, hi);
            hi = lo + k;
        } else {
            siblings[depth] = (lo, lo + k);
            lo += k;
            m -= k;
            b = false;
        }
        depth += 1;
    };
    if let Some((a, z)) = last {
        proof.push(range_hash(src, a, z)?);
    }
    for &(a, z) in siblings[..depth].iter().rev() {
        proof.push(range_hash(src, a, z)?);
    }
    Ok(proof)
}

fn proof_hashes<P: AsRef<[u8]>>(proof: &[P]) -> impl Iterator<Item = Option<Hash>> + '_ {
    proof.iter().map(|p| hash_from_slice(p.as_ref()))
}

/// Verifies that `leaf_hash` is at `index` in the tree of `size` leaves with root `root`
/// (RFC 9162 §2.1.3.2). Every hash must be exactly 32 bytes.
pub fn verify_inclusion<P: AsRef<[u8]>>(
    leaf_hash: &[u8],
    index: u64,
    size: u64,
    proof: &[P],
    root: &[u8],
) -> Result<(), ProofError> {
    let leaf = hash_from_slice(leaf_hash).ok_or(ProofError::HashLength)?;
    let root = hash_from_slice(root).ok_or(ProofError::HashLength)?;
    if proof_hashes(proof).any(|p| p.is_none()) {
        return Err(ProofError::HashLength);
    }
    if index >= size {
        return Err(ProofError::IndexOutOfRange);
    }
    let (mut fn_, mut sn) = (index, size - 1);
    let mut r = leaf;
    for p in proof_hashes(proof).flatten() {
        if sn == 0 {
            return Err(ProofError::ProofLength);
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(&p, &r);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            r = node_hash(&r, &p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(ProofError::ProofLength);
    }
    if r != root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// Verifies that the tree of `size2` leaves with root `root2` extends the tree of `size1`
/// leaves with root `root1` (RFC 9162 §2.1.4.2). Every hash must be exactly 32 bytes;
/// `size1 == 0` is rejected (module docs).
pub fn verify_consistency<P: AsRef<[u8]>>(
    size1: u64,
    size2: u64,
    proof: &[P],
    root1: &[u8],
    root2: &[u8],
) -> Result<(), ProofError> {
    let root1 = hash_from_slice(root1).ok_or(ProofError::HashLength)?;
    let root2 = hash_from_slice(root2).ok_or(ProofError::HashLength)?;
    if proof_hashes(proof).any(|p| p.is_none()) {
        return Err(ProofError::HashLength);
    }
    if size1 == 0 {
        return Err(ProofError::SizeZero);
    }
    if size1 > size2 {
        return Err(ProofError::SizeOrder);
    }
    if size1 == size2 {
        if !proof.is_empty() {
            return Err(ProofError::ProofLength);
        }
        return if root1 == root2 {
            Ok(())
        } else {
            Err(ProofError::RootMismatch)
        };
    }
    let mut elems = proof_hashes(proof).flatten();
    // Step 2: if size1 is a power of two, the proof starts (implicitly) with root1.
    let first = if size1.is_power_of_two() {
        root1
    } else {
        elems.next().ok_or(ProofError::ProofLength)?
    };
    let (mut fn_, mut sn) = (size1 - 1, size2 - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let (mut fr, mut sr) = (first, first);
    for c in elems {
        if sn == 0 {
            return Err(ProofError::ProofLength);
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(&c, &fr);
            sr = node_hash(&c, &sr);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, &c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(ProofError::ProofLength);
    }
    if fr != root1 || sr != root2 {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::leaf_hash;

    fn leaves(n: u64) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
    }

    /// RFC 9162 MTH, written recursively and independently of `range_hash`.
    fn mth(l: &[Hash]) -> Hash {
        match l.len() {
            0 => EMPTY_ROOT,
            1 => l[0],
            n => {
                let k = split_point(n as u64) as usize;
                node_hash(&mth(&l[..k]), &mth(&l[k..]))
            }
        }
    }

    #[test]
    fn all_small_proofs_round_trip() {
        let all = leaves(70);
        for size in 1..=70u64 {
            let mut src = &all[..size as usize];
            let r = root(&mut src, size).unwrap();
            assert_eq!(r, mth(src));
            for i in 0..size {
                let p = prove_inclusion(&mut src, i, size).unwrap();
                verify_inclusion(&src[i as usize], i, size, &p, &r).unwrap();
                if size > 1 {
                    let other = (i + 1) % size;
                    assert!(verify_inclusion(&src[other as usize], i, size, &p, &r).is_err());
                }
            }
            for s1 in 1..=size {
                let r1 = mth(&src[..s1 as usize]);
                let p = prove_consistency(&mut src, s1, size).unwrap();
                verify_consistency(s1, size, &p, &r1, &r).unwrap();
                if s1 < size {
                    assert_eq!(
                        verify_consistency(s1, size, &p, &r, &r1),
                        Err(ProofError::RootMismatch)
                    );
                    assert!(verify_consistency(s1, size, &p[..p.len() - 1], &r1, &r).is_err());
                }
            }
        }
    }

    #[test]
    fn generation_rejects_bad_sizes() {
        let all = leaves(4);
        let mut src = &all[..];
        assert_eq!(
            prove_inclusion(&mut src, 4, 4),
            Err(ProofError::IndexOutOfRange)
        );
        assert_eq!(
            prove_inclusion(&mut src, 0, 0),
            Err(ProofError::IndexOutOfRange)
        );
        assert_eq!(prove_consistency(&mut src, 0, 4), Err(ProofError::SizeZero));
        assert_eq!(
            prove_consistency(&mut src, 3, 2),
            Err(ProofError::SizeOrder)
        );
        assert_eq!(prove_consistency(&mut src, 2, 2), Ok(Vec::new()));
        // Asking a source for nodes beyond its leaves is an error, not a panic.
        assert_eq!(root(&mut src, 5), Err(ProofError::IndexOutOfRange));
    }

    #[test]
    fn verification_rejects_short_hashes() {
        let h = [0u8; 32];
        let short = [0u8; 31];
        let none: [&[u8]; 0] = [];
        assert_eq!(
            verify_inclusion(&short, 0, 1, &none, &h),
            Err(ProofError::HashLength)
        );
        assert_eq!(
            verify_inclusion(&h, 0, 1, &none, &short),
            Err(ProofError::HashLength)
        );
        assert_eq!(
            verify_inclusion(&h, 0, 2, &[&short[..]], &h),
            Err(ProofError::HashLength)
        );
        assert_eq!(verify_inclusion(&h, 0, 1, &none, &h), Ok(()));
        assert_eq!(
            verify_consistency(1, 1, &none, &short, &short),
            Err(ProofError::HashLength)
        );
        assert_eq!(
            verify_consistency(0, 0, &none, &EMPTY_ROOT, &EMPTY_ROOT),
            Err(ProofError::SizeZero)
        );
    }
}

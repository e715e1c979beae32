//! The replay memory: which (key, nonce) pairs were granted within the window.

use alloc::vec::Vec;

use crate::{Grant, Refusal, NONCE_CAPACITY, NONCE_PER_KEY, WINDOW_BACK};

/// The nonces of granted requests whose time is still within the window (`time >= now -
/// WINDOW_BACK`: an older request is refused as stale anyway, so its nonce can go).
///
/// Bounds: at most [`NONCE_PER_KEY`] entries for one key and [`NONCE_CAPACITY`] in all, so at
/// most 65,536 entries of 24 bytes (1.5 MiB) plus one small header per key with live entries;
/// memory grows only as requests are granted and is given back as entries expire. A check is
/// a scan of one key's entries (at most 16,384 compares). Built again at boot from the audit
/// records of the last `WINDOW_BACK + WINDOW_AHEAD` seconds ([`NonceWindow::restore`]), so a
/// replay is refused after a reboot and on a copy of the disk.
#[derive(Debug, Clone, Default)]
pub struct NonceWindow {
    keys: Vec<KeyNonces>,
    total: usize,
    /// The `now` of the last prune: entries expire by the second, so pruning again within
    /// the same second finds nothing (this keeps a check to one key's scan).
    pruned_at: u64,
}

#[derive(Debug, Clone)]
struct KeyNonces {
    /// The key id: unique among paired keys ([`crate::PairingSet`]'s invariant), and what
    /// audit records name.
    key: u32,
    /// (request time, nonce), in the order granted.
    seen: Vec<(u64, [u8; 16])>,
}

impl NonceWindow {
    /// Empty.
    pub fn new() -> NonceWindow {
        NonceWindow::default()
    }

    /// Entries remembered.
    pub fn len(&self) -> usize {
        self.total
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// Forgets what is older than the window at `now`.
    pub fn prune(&mut self, now: u64) {
        if now == self.pruned_at && now != 0 {
            return;
        }
        self.pruned_at = now;
        let oldest = now.saturating_sub(WINDOW_BACK);
        let mut total = 0;
        for k in &mut self.keys {
            k.seen.retain(|&(t, _)| t >= oldest);
            total += k.seen.len();
        }
        self.keys.retain(|k| !k.seen.is_empty());
        self.total = total;
    }

    /// Whether `grant` would be accepted now: [`Refusal::Replayed`] if its key used its nonce
    /// within the window, [`Refusal::NonceMemoryFull`] if remembering it would pass a bound.
    /// An unsigned grant (no key) always passes. Changes nothing but expired entries.
    pub fn check(&mut self, grant: &Grant, now: u64) -> Result<(), Refusal> {
        let (Some(key), Some(nonce)) = (&grant.key, &grant.nonce) else {
            return Ok(());
        };
        self.prune(now);
        let mine = self.keys.iter().find(|k| k.key == key.key_id);
        if mine.is_some_and(|k| k.seen.iter().any(|(_, n)| n == nonce)) {
            return Err(Refusal::Replayed);
        }
        if mine.is_some_and(|k| k.seen.len() >= NONCE_PER_KEY) || self.total >= NONCE_CAPACITY {
            return Err(Refusal::NonceMemoryFull);
        }
        Ok(())
    }

    /// [`NonceWindow::check`], then remembers the nonce. Call it before the request acts, and
    /// make its audit record durable before anything is acknowledged.
    pub fn insert(&mut self, grant: &Grant, now: u64) -> Result<(), Refusal> {
        self.check(grant, now)?;
        if let (Some(key), Some(nonce)) = (&grant.key, grant.nonce) {
            self.push(key.key_id, grant.time, nonce);
        }
        Ok(())
    }

    /// Puts back one granted request read from an audit record at boot: no replay or per-key
    /// check (it was granted under them), only the total bound (`NonceMemoryFull` then, which
    /// cannot happen for records this window wrote). Entries already outside the window at
    /// `now` are skipped. Call [`NonceWindow::restored`] after the last one.
    ///
    /// Constant time: a repeat is **not** looked for here. It used to be (a scan of the key's
    /// entries per restore), which made a rebuild quadratic: at boot after a busy minute,
    /// 8,570 entries of one key took 0.8-0.9 s of the audit PD's init in QEMU, and a key's
    /// 16,384 would take four times that (issue 13). Repeats are removed once, in
    /// [`NonceWindow::restored`]. Until then a repeat takes one more place of the total bound;
    /// a rebuild meets one only when the same key used the same nonce twice within the 40 s
    /// of records read (allowed once the first had expired), or when the same records are
    /// restored twice (audit starts a retried rebuild from an empty window instead).
    pub fn restore(
        &mut self,
        key: u32,
        nonce: [u8; 16],
        time: u64,
        now: u64,
    ) -> Result<(), Refusal> {
        if time < now.saturating_sub(WINDOW_BACK) {
            return Ok(());
        }
        if self.total >= NONCE_CAPACITY {
            return Err(Refusal::NonceMemoryFull);
        }
        self.push(key, time, nonce);
        Ok(())
    }

    /// Ends a rebuild ([`NonceWindow::restore`]): each key's entries sorted by nonce, a
    /// repeated nonce kept once with its latest time (remembered the longest: the stricter
    /// choice), then put back in time order (the order granted). In place (no allocation),
    /// `O(n log n)`. Whether [`NonceWindow::check`] answers [`Refusal::Replayed`] is the same
    /// as before it, for any grant: only repeats go.
    pub fn restored(&mut self) {
        let mut total = 0;
        for k in &mut self.keys {
            k.seen
                .sort_unstable_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)));
            // Equal nonces are adjacent, the latest time first: dedup keeps the first.
            k.seen.dedup_by(|later, first| later.1 == first.1);
            k.seen.sort_unstable();
            total += k.seen.len();
        }
        self.total = total;
    }

    fn push(&mut self, key: u32, time: u64, nonce: [u8; 16]) {
        match self.keys.iter_mut().find(|k| k.key == key) {
            Some(k) => k.seen.push((time, nonce)),
            None => self.keys.push(KeyNonces {
                key,
                seen: alloc::vec![(time, nonce)],
            }),
        }
        self.total += 1;
    }
}

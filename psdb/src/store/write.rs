//! The write path: staging puts into a batch, its manifest, the two-phase flush, rollback and
//! the scrub of a failed batch (see the crate's FORMAT.md, "Writing, flushing, crashes").

use super::*;

impl<D: BlockDevice> Store<D> {
    /// Stores `data` at `path` in `ns`, write-once: a new path is staged (durable after the next
    /// [`Store::flush`]); the same bytes again are a no-op; different bytes fail with
    /// [`Error::Immutable`] and change nothing. May flush the staged batch first when the new
    /// object would not fit in it.
    pub fn put(&mut self, ns: Namespace, path: &str, data: &[u8]) -> Result<(), Error> {
        self.writable()?;
        let i = self.ns(ns)?;
        self.undamaged(i)?;
        let st = &self.namespaces[i];
        names::check_object_path(&st.name, path).map_err(Error::InvalidName)?;
        let hash = manifest::sha256(data);
        if let Some(o) = st.objects.get(path) {
            return if !o.journal && o.size as usize == data.len() && o.hash == hash {
                Ok(())
            } else {
                Err(Error::Immutable)
            };
        }
        if conflicts(&st.objects, path) {
            return Err(Error::PathConflict);
        }
        self.stage(i, path, Content::Bytes(data), hash, None)
    }

    /// Creates a journal of `slots` records at `path` in `ns` (format v3): staged like a put
    /// (durable after the next [`Store::flush`]), a member of `slots x 512` zero bytes, all
    /// charged to the namespace's disk quota (and its path to the index) now. Write-once like
    /// an object: the same journal again (same path, same slots) is a no-op; anything else at
    /// that path fails with [`Error::Immutable`]. Once flushed it is the namespace's latest
    /// journal, the only one that takes records ([`Store::journal_append`]); the earlier ones
    /// are closed. `slots` must be at least 1 and the member must fit a batch
    /// ([`Error::TooLarge`]).
    pub fn put_journal(&mut self, ns: Namespace, path: &str, slots: u32) -> Result<(), Error> {
        self.writable()?;
        let i = self.ns(ns)?;
        self.undamaged(i)?;
        let st = &self.namespaces[i];
        names::check_object_path(&st.name, path).map_err(Error::InvalidName)?;
        let size = u32::try_from(u64::from(slots) * BLOCK).map_err(|_| Error::TooLarge)?;
        if slots == 0 {
            return Err(Error::TooLarge);
        }
        if let Some(o) = st.objects.get(path) {
            return if o.journal && o.size == size {
                Ok(())
            } else {
                Err(Error::Immutable)
            };
        }
        if conflicts(&st.objects, path) {
            return Err(Error::PathConflict);
        }
        self.stage(i, path, Content::Zeros(size), [0; 32], None)
    }

    /// Appends a new version of `ns`'s checkpoint (staged like a put; durable after the next
    /// flush). Readers see the latest version; every version stays on disk.
    pub fn put_checkpoint(&mut self, ns: Namespace, data: &[u8]) -> Result<(), Error> {
        self.writable()?;
        let i = self.ns(ns)?;
        self.undamaged(i)?;
        let hash = manifest::sha256(data);
        let side = manifest::sidecar_content(&self.namespaces[i].name, &hash);
        self.stage(i, CHECKPOINT, Content::Bytes(data), hash, Some(side))
    }

    pub(super) fn stage(
        &mut self,
        i: usize,
        path: &str,
        content: Content<'_>,
        hash: [u8; 32],
        sidecar: Option<String>,
    ) -> Result<(), Error> {
        let size = match content {
            Content::Bytes(data) => u32::try_from(data.len()).map_err(|_| Error::TooLarge)?,
            Content::Zeros(n) => n,
        };
        let is_journal = matches!(content, Content::Zeros(_));
        let ns_name = self.namespaces[i].name.clone();
        let mut full = String::with_capacity(ns_name.len() + 1 + path.len());
        full.push_str(&ns_name);
        full.push('/');
        full.push_str(path);
        let mut lines = String::new();
        let kind = if sidecar.is_some() {
            Kind::Checkpoint
        } else if is_journal {
            Kind::Journal
        } else {
            Kind::Object
        };
        manifest::push_record(&mut lines, kind, u64::from(size), &hash, &full);
        let mut members_len = tar::member_len(u64::from(size));
        let side_name = manifest::sidecar_name(&ns_name);
        if let Some(s) = &sidecar {
            let h = manifest::sha256(s.as_bytes());
            manifest::push_record(&mut lines, Kind::Sidecar, s.len() as u64, &h, &side_name);
            members_len += tar::member_len(s.len() as u64);
        }
        let mlimit = manifest_limit(self.max_batch);
        let exists = self.namespaces[i].objects.contains_key(path);
        let charge = staged_cost(path) + if exists { 0 } else { entry_cost(path) };
        let over_index = |s: &Self| s.index_used.saturating_add(charge) > s.limits.index_bytes;
        let over_quota = |s: &Self| {
            let st = &s.namespaces[i];
            st.used.index_bytes.saturating_add(charge) > st.quota.index_bytes
        };
        // A full batch, manifest or index budget flushes the batch first (that frees the staged
        // charges); disk quota is not freed by a flush.
        if self.early_flush
            && !self.staged.members.is_empty()
            && (self.batch_len(lines.len(), members_len) > self.max_batch
                || self.manifest_len(lines.len()) > mlimit
                || over_index(self)
                || over_quota(self))
        {
            self.flush()?;
        }
        let len = self.batch_len(lines.len(), members_len);
        if len > self.max_batch || self.manifest_len(lines.len()) > mlimit {
            return Err(Error::TooLarge);
        }
        if over_index(self) {
            return Err(Error::IndexFull);
        }
        // The first object of a batch also pays for the batch (its manifest member and commit
        // record), at most BATCH_OVERHEAD_MAX until the flush knows the exact figure.
        let overhead = if self.staged.entries.is_empty() {
            BATCH_OVERHEAD_MAX
        } else {
            0
        };
        let disk = members_len + lines.len() as u64 + overhead;
        let st = &self.namespaces[i];
        if over_quota(self) || st.used.disk_bytes.saturating_add(disk) > st.quota.disk_bytes {
            return Err(Error::Quota);
        }
        if self
            .end
            .saturating_add(len)
            .saturating_add(COMMIT_LEN + TAIL)
            > self.capacity
        {
            return Err(Error::Full);
        }
        self.reserve_staging()?;
        self.staged
            .entries
            .try_reserve(1)
            .map_err(|_| Error::OutOfMemory)?;
        let staged_path = try_box(path)?;
        let key = if exists { None } else { Some(try_box(path)?) };
        let rel = self.staged.members.len() as u64;
        self.staged.lines.push_str(&lines);
        match content {
            Content::Bytes(data) => push_member(&mut self.staged.members, full.as_bytes(), data),
            Content::Zeros(n) => {
                let m = &mut self.staged.members;
                m.extend_from_slice(&tar::header(full.as_bytes(), u64::from(n)));
                m.resize(m.len() + n as usize, 0);
            }
        }
        if let Some(s) = &sidecar {
            push_member(&mut self.staged.members, side_name.as_bytes(), s.as_bytes());
        }
        let obj = Obj {
            hash,
            loc: STAGED | rel,
            size,
            journal: is_journal,
        };
        let st = &mut self.namespaces[i];
        let journal_prev = is_journal.then(|| {
            st.journal.replace(Latest {
                loc: STAGED | rel,
                slots: size / BLOCK as u32,
                next: 0,
            })
        });
        let old = match key {
            Some(key) => {
                st.objects.insert(key, obj);
                None
            }
            None => st.objects.get_mut(path).map(|o| core::mem::replace(o, obj)),
        };
        let checkpoint = sidecar.is_some();
        if checkpoint {
            st.checkpoint_versions += 1;
            self.checkpoint_versions += 1;
        } else if old.is_none() {
            self.objects += 1;
        }
        self.staged.entries.push(StagedEntry {
            ns: i as u32,
            path: staged_path,
            old,
            charge,
            disk,
            checkpoint,
            size,
            journal_prev,
        });
        st.used.index_bytes += charge;
        st.used.disk_bytes += disk;
        self.index_used += charge;
        self.data_bytes += u64::from(size);
        Ok(())
    }

    /// Allocates the staging buffers at their limits, once: they never grow by doubling.
    pub(super) fn reserve_staging(&mut self) -> Result<(), Error> {
        let oom = |_| Error::OutOfMemory;
        let members = usize::try_from(self.max_batch + TAIL).map_err(|_| Error::OutOfMemory)?;
        let lines =
            usize::try_from(manifest_limit(self.max_batch)).map_err(|_| Error::OutOfMemory)?;
        let st = &mut self.staged;
        if st.members.capacity() < members {
            st.members
                .try_reserve_exact(members - st.members.len())
                .map_err(oom)?;
        }
        if st.lines.capacity() < lines {
            st.lines
                .try_reserve_exact(lines - st.lines.len())
                .map_err(oom)?;
        }
        Ok(())
    }

    /// Undoes every staged index change and empties the batch (keeping its buffers): the store
    /// is back at what the last successful flush made durable.
    pub(super) fn rollback(&mut self) {
        let Store {
            staged, namespaces, ..
        } = self;
        for e in staged.entries.drain(..).rev() {
            let st = &mut namespaces[e.ns as usize];
            if let Some(prev) = e.journal_prev {
                st.journal = prev;
            }
            match e.old {
                Some(o) => {
                    if let Some(cur) = st.objects.get_mut(&*e.path) {
                        *cur = o;
                    }
                }
                None => {
                    st.objects.remove(&*e.path);
                }
            }
            if e.checkpoint {
                st.checkpoint_versions -= 1;
                self.checkpoint_versions -= 1;
            } else if e.old.is_none() {
                self.objects -= 1;
            }
            self.data_bytes -= u64::from(e.size);
            self.index_used -= e.charge;
            st.used.index_bytes -= e.charge;
            st.used.disk_bytes -= e.disk;
        }
        staged.lines.clear();
        staged.members.clear();
    }

    /// Length of the staged batch's manifest text with `extra_lines` more bytes of lines.
    pub(super) fn manifest_head_len(&self) -> usize {
        manifest::header_line(self.seq, &self.volume, &self.prev, self.max_batch).len()
    }

    pub(super) fn manifest_len(&self, extra_lines: usize) -> u64 {
        let head = manifest::header_line(self.seq, &self.volume, &self.prev, self.max_batch);
        (head.len() + self.staged.lines.len() + extra_lines + END_LINE) as u64
    }

    /// Bytes the staged batch would take on disk with `extra_lines` more manifest bytes and
    /// `extra_members` more member bytes.
    pub(super) fn batch_len(&self, extra_lines: usize, extra_members: u64) -> u64 {
        let head = manifest::header_line(self.seq, &self.volume, &self.prev, self.max_batch);
        let text = head.len() + self.staged.lines.len() + extra_lines + END_LINE;
        tar::member_len(text as u64) + self.staged.members.len() as u64 + extra_members
    }

    pub(super) fn manifest_text(&self) -> Result<String, Error> {
        let mut text = manifest::header_line(self.seq, &self.volume, &self.prev, self.max_batch);
        text.try_reserve_exact(self.staged.lines.len() + END_LINE)
            .map_err(|_| Error::OutOfMemory)?;
        text.push_str(&self.staged.lines);
        let end = manifest::sha256(text.as_bytes());
        text.push_str("#end ");
        manifest::push_hex(&mut text, &end);
        text.push('\n');
        Ok(text)
    }

    /// Makes every staged object durable: when this returns `Ok`, they survive any crash. With
    /// nothing staged it does nothing. On error the staged batch is discarded and every staged
    /// index change undone: reads see again exactly what the last successful flush made durable
    /// (never a checkpoint that may not reach the disk), and the caller puts again what it still
    /// wants stored (the next flush writes it in full at the same place).
    pub fn flush(&mut self) -> Result<(), Error> {
        self.writable()?;
        if self.staged.members.is_empty() {
            return Ok(());
        }
        if let Err(e) = self.scrub_failed() {
            self.rollback();
            return Err(e);
        }
        let r = self.write_batch();
        if r.is_err() {
            self.rollback();
        }
        r
    }

    /// Zeroes and flushes what a failed batch may have left (the `scrub` range), if anything,
    /// through a fixed block of zeros (no allocation). Until it succeeds, nothing is written.
    pub(super) fn scrub_failed(&mut self) -> Result<(), Error> {
        let Some((from, to)) = self.scrub else {
            return Ok(());
        };
        const ZEROS: [u8; 16 * SECTOR_SIZE] = [0; 16 * SECTOR_SIZE];
        let mut at = from;
        while at < to {
            let n = (to - at).min(ZEROS.len() as u64) as usize;
            write_all(&mut self.dev, at / BLOCK, &ZEROS[..n])?;
            at += n as u64;
        }
        self.dev.flush()?;
        self.scrub = None;
        Ok(())
    }

    pub(super) fn write_batch(&mut self) -> Result<(), Error> {
        // Anything that fails from the first write on leaves bytes behind: scrub them first
        // next time (see `scrub`). The range ends at the device's end at most.
        let end = self.end;
        let len = self.batch_len(0, 0) + COMMIT_LEN + 2 * TAIL;
        let scrub = (end, end.saturating_add(len).min(self.capacity));
        let r = self.write_batch_phases();
        if r.is_err() {
            self.scrub = Some(scrub);
        }
        r
    }

    pub(super) fn write_batch_phases(&mut self) -> Result<(), Error> {
        let text = self.manifest_text()?;
        let name = manifest::manifest_name(self.seq);
        let mut head = Vec::new();
        head.try_reserve_exact(tar::member_len(text.len() as u64) as usize)
            .map_err(|_| Error::OutOfMemory)?;
        push_member(&mut head, name.as_bytes(), text.as_bytes());
        let members_at = self.end + head.len() as u64;
        let batch_end = members_at + self.staged.members.len() as u64;
        if batch_end + COMMIT_LEN + TAIL > self.capacity {
            return Err(Error::Full);
        }
        let manifest_hash = manifest::sha256(&text.as_bytes()[..text.len() - END_LINE]);
        // The commit record names the namespaces written, so that if this manifest is ever
        // damaged they are known (see crate::commit).
        let mut touched: Vec<String> = Vec::new();
        for e in &self.staged.entries {
            let name = &self.namespaces[e.ns as usize].name;
            if let Err(k) = touched.binary_search_by(|t| t.as_str().cmp(name)) {
                touched.insert(k, String::from(&**name));
            }
        }
        let commit = Commit {
            seq: self.seq,
            volume: self.volume,
            batch: self.end,
            length: batch_end - self.end,
            manifest: manifest_hash,
            touched: Touched::Some(touched),
        };
        // Phase 1: members and an end marker after them first, the manifest last (over the old
        // end marker), then a flush. On a device that keeps write order, a crash leaves the old
        // end marker in place and the image a clean tar stream. (The staging buffer has room
        // for the marker: it never reallocates.)
        let n = self.staged.members.len();
        self.staged.members.extend_from_slice(&[0; TAIL as usize]);
        let r = write_all(&mut self.dev, members_at / BLOCK, &self.staged.members);
        self.staged.members.truncate(n);
        r?;
        write_all(&mut self.dev, self.end / BLOCK, &head)?;
        self.dev.flush()?;
        // Phase 2: the commit record (over that end marker) and a new end marker, then a flush.
        // Only now is the batch acknowledged: from here on a member that fails its hash was
        // altered after it was durable, which mount reports as damage, never as a torn tail.
        let mut rec = commit.member();
        rec.extend_from_slice(&[0; TAIL as usize]);
        write_all(&mut self.dev, batch_end / BLOCK, &rec)?;
        self.dev.flush()?;
        // The batch's exact overhead, charged to its first object's namespace, which was
        // charged BATCH_OVERHEAD_MAX when it was staged.
        let overhead = head.len() as u64
            - (text.len() - self.manifest_head_len() - END_LINE) as u64
            + COMMIT_LEN;
        if let Some(first) = self.staged.entries.first() {
            let st = &mut self.namespaces[first.ns as usize];
            st.used.disk_bytes -= BATCH_OVERHEAD_MAX - overhead.min(BATCH_OVERHEAD_MAX);
        }
        let Store {
            staged, namespaces, ..
        } = self;
        for e in staged.entries.drain(..) {
            let st = &mut namespaces[e.ns as usize];
            if let Some(o) = st.objects.get_mut(&*e.path) {
                if o.loc & STAGED != 0 {
                    let staged_at = o.loc;
                    o.loc = members_at + (o.loc & !STAGED);
                    if let Some(j) = st.journal.as_mut().filter(|j| j.loc == staged_at) {
                        j.loc = o.loc;
                    }
                }
            }
            let released = staged_cost(&e.path);
            self.index_used -= released;
            namespaces[e.ns as usize].used.index_bytes -= released;
        }
        staged.lines.clear();
        staged.members.clear();
        self.end = batch_end + COMMIT_LEN;
        self.seq += 1;
        self.prev = manifest_hash;
        Ok(())
    }
}

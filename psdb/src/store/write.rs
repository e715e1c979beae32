//! The write path: staging puts into a batch, its manifest, the two-phase flush, rollback and
//! the scrub of a failed batch (see the crate's FORMAT.md, "Writing, flushing, crashes").

use super::*;

impl<D: BlockDevice> Store<D> {
    /// Stores `data` at `path` in `ns`, write-once: a new path is staged (written to the disk
    /// beyond the end of the stream now, durable after the next [`Store::flush`]); the same
    /// bytes again are a no-op; different bytes fail with [`Error::Immutable`] and change
    /// nothing. May flush the staged batch first when the new object would not fit in it. A
    /// write that fails discards the whole staged batch (see [`Store::put_chunk`]).
    pub fn put(&mut self, ns: Namespace, path: &str, data: &[u8]) -> Result<(), Error> {
        self.writable_idle()?;
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
        self.writable_idle()?;
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
        self.writable_idle()?;
        let i = self.ns(ns)?;
        self.undamaged(i)?;
        let hash = manifest::sha256(data);
        let side = manifest::sidecar_content(&self.namespaces[i].name, &hash);
        self.stage(i, CHECKPOINT, Content::Bytes(data), hash, Some(side))
    }

    /// Stages one member (an object, a journal or a checkpoint version with its checksum
    /// member): checks it fits, writes it beyond the end, then records it.
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
        let kind = if sidecar.is_some() {
            Kind::Checkpoint
        } else if matches!(content, Content::Zeros(_)) {
            Kind::Journal
        } else {
            Kind::Object
        };
        let prep = self.prepare(i, path, kind, size, sidecar.as_deref())?;
        let in_flight = prep.members_len;
        let mut name = [0u8; tar::MAX_NAME];
        let n = full_name(&mut name, &self.namespaces[i].name, path);
        let mut w = self.writer();
        let written = (|| {
            w.push(&mut self.dev, &tar::header(&name[..n], u64::from(size)))?;
            match content {
                Content::Bytes(data) => w.push(&mut self.dev, data)?,
                Content::Zeros(mut left) => {
                    while left > 0 {
                        let k = (left as usize).min(ZEROS.len());
                        w.push(&mut self.dev, &ZEROS[..k])?;
                        left -= k as u32;
                    }
                }
            }
            w.pad(&mut self.dev)?;
            if let Some(s) = &sidecar {
                let side = manifest::sidecar_name(&self.namespaces[i].name);
                w.push(&mut self.dev, &tar::header(side.as_bytes(), s.len() as u64))?;
                w.push(&mut self.dev, s.as_bytes())?;
            }
            w.finish(&mut self.dev)
        })();
        self.staged.buf = w.into_buf();
        if let Err(e) = written {
            return Err(self.fail_streamed(e, in_flight));
        }
        self.record(prep, hash, sidecar.as_deref());
        Ok(())
    }

    /// Checks that a member of `size` bytes at `path` (with a checkpoint's checksum member
    /// `sidecar`) fits the batch, the manifest, the index budget, the namespace's quota and the
    /// device, flushing the staged batch first if that makes it fit (early flush); reserves
    /// what recording it needs. Changes nothing else: nothing is written.
    pub(super) fn prepare(
        &mut self,
        i: usize,
        path: &str,
        kind: Kind,
        size: u32,
        sidecar: Option<&str>,
    ) -> Result<Prep, Error> {
        // A record's lines have the same length whatever its hash: measure with zeros.
        let ns_name = &self.namespaces[i].name;
        let mut full = String::new();
        full.try_reserve_exact(ns_name.len() + 1 + path.len())
            .map_err(|_| Error::OutOfMemory)?;
        full.push_str(ns_name);
        full.push('/');
        full.push_str(path);
        let mut lines = String::new();
        manifest::push_record(&mut lines, kind, u64::from(size), &[0; 32], &full);
        let mut members_len = tar::member_len(u64::from(size));
        if let Some(s) = sidecar {
            let side_name = manifest::sidecar_name(ns_name);
            manifest::push_record(
                &mut lines,
                Kind::Sidecar,
                s.len() as u64,
                &[0; 32],
                &side_name,
            );
            members_len += tar::member_len(s.len() as u64);
        }
        let lines_len = lines.len();
        let mlimit = self.manifest_cap();
        let exists = self.namespaces[i].objects.contains(path);
        let charge = staged_cost(path) + if exists { 0 } else { entry_cost(path) };
        let over_index = |s: &Self| s.index_used.saturating_add(charge) > s.limits.index_bytes;
        let over_quota = |s: &Self| {
            let st = &s.namespaces[i];
            st.used.index_bytes.saturating_add(charge) > st.quota.index_bytes
        };
        // A full batch, manifest or index budget flushes the batch first (that frees the staged
        // charges); disk quota is not freed by a flush.
        if self.early_flush
            && !self.staged.entries.is_empty()
            && (self.batch_len(lines_len, members_len) > self.max_batch
                || self.manifest_len(lines_len) > mlimit
                || over_index(self)
                || over_quota(self))
        {
            self.flush()?;
        }
        let len = self.batch_len(lines_len, members_len);
        if len > self.max_batch || self.manifest_len(lines_len) > mlimit {
            return Err(Error::TooLarge);
        }
        if over_index(self) {
            return Err(Error::IndexFull);
        }
        // The first object of a batch also pays for the batch (its head, manifest member and
        // commit record), at most BATCH_OVERHEAD_MAX until the flush knows the exact figure.
        let overhead = if self.staged.entries.is_empty() {
            BATCH_OVERHEAD_MAX
        } else {
            0
        };
        let disk = members_len + lines_len as u64 + overhead;
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
        // Scrub what an earlier failed batch left before writing anything beyond the end.
        self.scrub_failed()?;
        self.reserve_staging()?;
        self.staged
            .entries
            .try_reserve(1)
            .map_err(|_| Error::OutOfMemory)?;
        if !exists {
            self.namespaces[i].objects.reserve(path.len())?;
        }
        let path = try_box(path)?;
        Ok(Prep {
            ns: i as u32,
            path,
            new: !exists,
            kind,
            size,
            charge,
            disk,
            full,
            rel: self.staged.members,
            members_len,
        })
    }

    /// The writer for the next member of the staged batch, through the staging sectors.
    pub(super) fn writer(&mut self) -> SectorWriter {
        let at = self.end + HEAD_LEN + self.staged.members;
        SectorWriter::new(at / BLOCK, core::mem::take(&mut self.staged.buf))
    }

    /// A write of the staged batch failed: the batch is discarded (its index changes undone)
    /// and everything it may have written is scrubbed before anything else is written.
    /// `in_flight`: the bytes of the member being written (after the recorded ones).
    pub(super) fn fail_streamed(&mut self, e: IoError, in_flight: u64) -> Error {
        let to = (self.end + HEAD_LEN + self.staged.members + in_flight + TAIL).min(self.capacity);
        let from = self.end;
        self.rollback();
        self.widen_scrub(from, to);
        Error::Io(e)
    }

    /// Adds `[from, to)` to the range to scrub.
    pub(super) fn widen_scrub(&mut self, from: u64, to: u64) {
        self.scrub = Some(match self.scrub {
            Some((a, b)) => (a.min(from), b.max(to)),
            None => (from, to),
        });
    }

    /// Records a member that was written: its manifest lines, its index entry (pointing into
    /// the staged batch) and its rollback record. Cannot fail: [`Store::prepare`] reserved it.
    pub(super) fn record(&mut self, prep: Prep, hash: [u8; 32], sidecar: Option<&str>) {
        let i = prep.ns as usize;
        manifest::push_record(
            &mut self.staged.lines,
            prep.kind,
            u64::from(prep.size),
            &hash,
            &prep.full,
        );
        if let Some(s) = sidecar {
            let h = manifest::sha256(s.as_bytes());
            let side_name = manifest::sidecar_name(&self.namespaces[i].name);
            manifest::push_record(
                &mut self.staged.lines,
                Kind::Sidecar,
                s.len() as u64,
                &h,
                &side_name,
            );
        }
        self.staged.members += prep.members_len;
        let is_journal = prep.kind == Kind::Journal;
        let obj = Obj {
            hash,
            loc: STAGED | prep.rel,
            size: prep.size,
            journal: is_journal,
            check: Check::Unchecked,
        };
        let st = &mut self.namespaces[i];
        let journal_prev = is_journal.then(|| {
            st.journal.replace(Latest {
                loc: STAGED | prep.rel,
                slots: prep.size / BLOCK as u32,
                next: 0,
            })
        });
        let old = if prep.new {
            // Cannot be refused: `prepare` checked the path is new and reserved its room, and
            // nothing changed the index since (every other write fails while a put is open).
            // Were it refused, the object would still be in its manifest, indexed at mount.
            let _ = st.objects.insert(&prep.path, obj);
            None
        } else {
            st.objects.set(&prep.path, obj)
        };
        let checkpoint = prep.kind == Kind::Checkpoint;
        if checkpoint {
            st.checkpoint_versions += 1;
            self.checkpoint_versions += 1;
        } else if old.is_none() {
            self.objects += 1;
        }
        st.used.index_bytes += prep.charge;
        st.used.disk_bytes += prep.disk;
        self.index_used += prep.charge;
        self.data_bytes += u64::from(prep.size);
        self.staged.entries.push(StagedEntry {
            ns: prep.ns,
            path: prep.path,
            old,
            charge: prep.charge,
            disk: prep.disk,
            checkpoint,
            size: prep.size,
            journal_prev,
        });
    }

    /// Starts a put of an object of `size` bytes at `path` in `ns` whose data the caller gives
    /// in pieces ([`Store::put_chunk`], in order), so that neither the caller nor the store
    /// holds it whole: each piece is written to the disk beyond the end of the stream as it
    /// arrives (never over committed data) and its SHA-256 computed as it goes. The object is
    /// staged once its last byte arrived, and durable (and readable by others than this store)
    /// after the next [`Store::flush`], like [`Store::put`].
    ///
    /// Everything that can refuse the object is checked here, before any byte is written
    /// (name, damage, size, batch and manifest room, index budget, quota, device room), with
    /// the same errors as `put`; a `put_begin` may flush the staged batch first (early flush).
    /// An existing path of the same size is a write-once check instead: the pieces are hashed,
    /// nothing is written, and the last one answers `Ok` for the same bytes or
    /// [`Error::Immutable`]; a different size is `Immutable` at once.
    ///
    /// While a put is open, every other write (`put`, `put_begin`, `put_checkpoint`,
    /// `put_journal`, `flush`, `journal_append`) fails with [`Error::Staged`] and changes
    /// nothing; [`Store::discard`] drops it with the rest of the staged batch.
    pub fn put_begin(&mut self, ns: Namespace, path: &str, size: u64) -> Result<(), Error> {
        self.writable_idle()?;
        let i = self.ns(ns)?;
        self.undamaged(i)?;
        let st = &self.namespaces[i];
        names::check_object_path(&st.name, path).map_err(Error::InvalidName)?;
        let size32 = u32::try_from(size).map_err(|_| Error::TooLarge)?;
        let mut open = OpenPut {
            prep: None,
            same: None,
            got: 0,
            hasher: manifest::Hasher::new(),
            writer: None,
        };
        if let Some(o) = st.objects.get(path) {
            if o.journal || o.size != size32 {
                return Err(Error::Immutable);
            }
            open.same = Some((o.hash, size32));
        } else {
            if conflicts(&st.objects, path) {
                return Err(Error::PathConflict);
            }
            let prep = self.prepare(i, path, Kind::Object, size32, None)?;
            let mut name = [0u8; tar::MAX_NAME];
            let n = full_name(&mut name, &self.namespaces[i].name, path);
            let mut w = self.writer();
            if let Err(e) = w.push(&mut self.dev, &tar::header(&name[..n], size)) {
                self.staged.buf = w.into_buf();
                return Err(self.fail_streamed(e, prep.members_len));
            }
            open.prep = Some(prep);
            open.writer = Some(w);
        }
        self.staged.open = Some(open);
        self.put_chunk(&[]).map(|_| ())
    }

    /// The next piece of the object [`Store::put_begin`] started: returns how many bytes are
    /// still expected; at 0 the object is staged (or, for an existing path, found the same).
    /// A piece longer than what is left fails with [`Error::TooLarge`] and changes nothing;
    /// with no put open, [`Error::Staged`]. A write that fails discards the whole staged batch
    /// (nothing of it was acknowledged; what it wrote is scrubbed before anything else is
    /// written) and returns the error.
    pub fn put_chunk(&mut self, data: &[u8]) -> Result<u64, Error> {
        let Some(open) = self.staged.open.as_mut() else {
            return Err(Error::Staged);
        };
        let size = match (&open.prep, open.same) {
            (Some(p), _) => p.size,
            (None, Some((_, size))) => size,
            (None, None) => 0,
        };
        let left = size - open.got;
        if data.len() as u64 > u64::from(left) {
            return Err(Error::TooLarge);
        }
        open.hasher.update(data);
        open.got += data.len() as u32;
        if let Some(w) = open.writer.as_mut() {
            if let Err(e) = w.push(&mut self.dev, data) {
                return Err(self.fail_open(e));
            }
        }
        let left = u64::from(size - open.got);
        if left > 0 {
            return Ok(left);
        }
        let Some(open) = self.staged.open.take() else {
            return Ok(0);
        };
        let hash = open.hasher.finish();
        if let Some((want, _)) = open.same {
            return if hash == want {
                Ok(0)
            } else {
                Err(Error::Immutable)
            };
        }
        let (Some(prep), Some(mut w)) = (open.prep, open.writer) else {
            return Ok(0);
        };
        let r = w.finish(&mut self.dev);
        self.staged.buf = w.into_buf();
        if let Err(e) = r {
            return Err(self.fail_streamed(e, prep.members_len));
        }
        self.record(prep, hash, None);
        Ok(0)
    }

    /// A write of the open put failed: drop it, then the batch (see [`Store::fail_streamed`]).
    fn fail_open(&mut self, e: IoError) -> Error {
        let mut in_flight = 0;
        if let Some(open) = self.staged.open.take() {
            if let Some(w) = open.writer {
                self.staged.buf = w.into_buf();
            }
            // Its bytes lie after the recorded members: scrub them too.
            in_flight = open.prep.map_or(0, |p| p.members_len);
        }
        self.fail_streamed(e, in_flight)
    }

    /// Allocates the staging buffers at their limits, once: they never grow by doubling.
    pub(super) fn reserve_staging(&mut self) -> Result<(), Error> {
        let oom = |_| Error::OutOfMemory;
        let lines = usize::try_from(self.manifest_cap()).map_err(|_| Error::OutOfMemory)?;
        let st = &mut self.staged;
        if st.buf.capacity() < WRITE_CHUNK {
            st.buf.try_reserve_exact(WRITE_CHUNK).map_err(oom)?;
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
                    st.objects.set(&e.path, o);
                }
                None => {
                    st.objects.remove(&e.path);
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
        staged.members = 0;
        staged.release_entries();
        if let Some(w) = staged.open.take().and_then(|o| o.writer) {
            staged.buf = w.into_buf();
        }
    }

    /// The longest manifest this store writes or mounts: [`manifest_limit`] of its batch limit,
    /// at most [`Limits::max_manifest`].
    pub(super) fn manifest_cap(&self) -> u64 {
        manifest_limit(self.max_batch).min(self.limits.max_manifest)
    }

    /// Length of the staged batch's manifest text with `extra_lines` more bytes of lines.
    pub(super) fn manifest_len(&self, extra_lines: usize) -> u64 {
        let head = manifest::header_line(self.seq, &self.volume, &self.prev, self.max_batch);
        (head.len() + self.staged.lines.len() + extra_lines + END_LINE) as u64
    }

    /// Bytes the staged batch would take on disk with `extra_lines` more manifest bytes and
    /// `extra_members` more member bytes.
    pub(super) fn batch_len(&self, extra_lines: usize, extra_members: u64) -> u64 {
        let head = manifest::header_line(self.seq, &self.volume, &self.prev, self.max_batch);
        let text = head.len() + self.staged.lines.len() + extra_lines + END_LINE;
        HEAD_LEN + self.staged.members + extra_members + tar::member_len(text as u64)
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
        self.writable_idle()?;
        if self.staged.entries.is_empty() {
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
            self.widen_scrub(scrub.0, scrub.1);
        }
        r
    }

    pub(super) fn write_batch_phases(&mut self) -> Result<(), Error> {
        let head_line = manifest::header_line(self.seq, &self.volume, &self.prev, self.max_batch);
        let text_len = (head_line.len() + self.staged.lines.len() + END_LINE) as u64;
        let members_at = self.end + HEAD_LEN;
        let manifest_at = members_at + self.staged.members;
        let batch_end = manifest_at + tar::member_len(text_len);
        if batch_end + COMMIT_LEN + TAIL > self.capacity {
            return Err(Error::Full);
        }
        let mut hasher = manifest::Hasher::new();
        hasher.update(head_line.as_bytes());
        hasher.update(self.staged.lines.as_bytes());
        let manifest_hash = hasher.finish();
        let mut end_line = String::new();
        end_line.push_str("#end ");
        manifest::push_hex(&mut end_line, &manifest_hash);
        end_line.push('\n');
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
        let head = Head {
            seq: self.seq,
            volume: self.volume,
            prev: self.prev,
            max_batch: self.max_batch,
            manifest: manifest_at,
            size: text_len,
        };
        // Phase 1: the members were written as they were put; now the manifest after them and
        // an end marker after it, then the head over the old end marker, then a flush. On a
        // device that keeps write order, a crash leaves the old end marker in place and the
        // image a clean tar stream. The manifest is written from the staged lines, not copied.
        let name = manifest::manifest_name(self.seq);
        let mut w = SectorWriter::new(manifest_at / BLOCK, core::mem::take(&mut self.staged.buf));
        let r = (|| {
            w.push(&mut self.dev, &tar::header(name.as_bytes(), text_len))?;
            w.push(&mut self.dev, head_line.as_bytes())?;
            w.push(&mut self.dev, self.staged.lines.as_bytes())?;
            w.push(&mut self.dev, end_line.as_bytes())?;
            w.pad(&mut self.dev)?;
            w.push(&mut self.dev, &ZEROS[..TAIL as usize])?;
            w.finish(&mut self.dev)
        })();
        self.staged.buf = w.into_buf();
        r?;
        write_all(&mut self.dev, self.end / BLOCK, &head.member())?;
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
        let overhead =
            HEAD_LEN + tar::member_len(text_len) - self.staged.lines.len() as u64 + COMMIT_LEN;
        if let Some(first) = self.staged.entries.first() {
            let st = &mut self.namespaces[first.ns as usize];
            st.used.disk_bytes -= BATCH_OVERHEAD_MAX - overhead.min(BATCH_OVERHEAD_MAX);
        }
        let Store {
            staged, namespaces, ..
        } = self;
        for e in staged.entries.drain(..) {
            let st = &mut namespaces[e.ns as usize];
            if let Some(mut o) = st.objects.get(&e.path) {
                if o.loc & STAGED != 0 {
                    let staged_at = o.loc;
                    o.loc = members_at + (o.loc & !STAGED);
                    st.objects.set(&e.path, o);
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
        staged.members = 0;
        staged.release_entries();
        self.end = batch_end + COMMIT_LEN;
        self.seq += 1;
        self.prev = manifest_hash;
        Ok(())
    }
}

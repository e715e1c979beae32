//! The mount path: walking the chain of batches, classifying each by its commit record,
//! verifying members and journals, building the index; and fsck.

use super::*;

pub(super) enum MemberError {
    Io(IoError),
    NoMemory,
    Bad(Corruption),
}

impl From<IoError> for MemberError {
    fn from(e: IoError) -> Self {
        MemberError::Io(e)
    }
}

/// Reads the member at `at` into `out` and checks header, padding and hash; leaves the data.
pub(super) fn read_member<D: BlockDevice>(
    dev: &mut D,
    at: u64,
    name: &[u8],
    size: u64,
    hash: &[u8; 32],
    out: &mut Vec<u8>,
) -> Result<(), MemberError> {
    let len = usize::try_from(tar::member_len(size)).map_err(|_| IoError::OutOfRange)?;
    out.clear();
    out.try_reserve_exact(len)
        .map_err(|_| MemberError::NoMemory)?;
    out.resize(len, 0);
    dev.read(at / BLOCK, out)?;
    if out[..SECTOR_SIZE] != tar::header(name, size)[..] {
        return Err(MemberError::Bad(Corruption::BadHeader));
    }
    let end = SECTOR_SIZE + size as usize;
    if out[end..].iter().any(|&b| b != 0) {
        return Err(MemberError::Bad(Corruption::BadPadding));
    }
    if manifest::sha256(&out[SECTOR_SIZE..end]) != *hash {
        return Err(MemberError::Bad(Corruption::DataHash));
    }
    out.truncate(end);
    out.drain(..SECTOR_SIZE);
    Ok(())
}

/// Bytes read at a time when a member is checked without being kept ([`check_member`]).
pub(super) const CHECK_CHUNK: usize = 64 << 10;

/// Checks the member at `at` (header, padding and hash) reading it [`CHECK_CHUNK`] bytes at a
/// time through `buf`, so that checking a member costs no memory of its size.
pub(super) fn check_member<D: BlockDevice>(
    dev: &mut D,
    at: u64,
    name: &[u8],
    size: u64,
    hash: &[u8; 32],
    buf: &mut Vec<u8>,
) -> Result<(), MemberError> {
    if buf.len() < CHECK_CHUNK {
        buf.clear();
        buf.try_reserve_exact(CHECK_CHUNK)
            .map_err(|_| MemberError::NoMemory)?;
        buf.resize(CHECK_CHUNK, 0);
    }
    let mut head = [0u8; SECTOR_SIZE];
    dev.read(at / BLOCK, &mut head)?;
    if head != tar::header(name, size) {
        return Err(MemberError::Bad(Corruption::BadHeader));
    }
    let padded = tar::padded(size);
    let mut hasher = manifest::Hasher::new();
    let mut done = 0u64;
    while done < padded {
        let n = (padded - done).min(CHECK_CHUNK as u64) as usize;
        let chunk = &mut buf[..n];
        dev.read((at + BLOCK + done) / BLOCK, chunk)?;
        let data = (size.saturating_sub(done)).min(n as u64) as usize;
        hasher.update(&chunk[..data]);
        if chunk[data..].iter().any(|&b| b != 0) {
            return Err(MemberError::Bad(Corruption::BadPadding));
        }
        done += n as u64;
    }
    if hasher.finish() != *hash {
        return Err(MemberError::Bad(Corruption::DataHash));
    }
    Ok(())
}

/// Checks every member of a batch: each bad one's record index, offset and reason. A
/// journal's header is checked, and with `journals` its records too ([`scan_journal`]).
pub(super) fn verify_batch<D: BlockDevice>(
    dev: &mut D,
    at: u64,
    m: &Manifest,
    journals: bool,
    volume: &[u8; 16],
) -> Result<Vec<(usize, Problem)>, Error> {
    let mut off = at + m.members_off;
    let mut buf = Vec::new();
    let mut bad = Vec::new();
    for (k, r) in m.records.iter().enumerate() {
        if r.kind == Kind::Journal {
            let mut head = [0u8; SECTOR_SIZE];
            dev.read(off / BLOCK, &mut head)?;
            let problem = if head != tar::header(m.name(r).as_bytes(), r.size) {
                Some(Problem {
                    offset: off,
                    reason: Corruption::BadHeader,
                })
            } else if journals {
                let slots = (r.size / BLOCK) as u32;
                scan_journal(dev, off, slots, volume)?.err()
            } else {
                None
            };
            bad.extend(problem.map(|p| (k, p)));
            off += tar::member_len(r.size);
            continue;
        }
        match check_member(dev, off, m.name(r).as_bytes(), r.size, &r.hash, &mut buf) {
            Ok(()) => {}
            Err(MemberError::Io(e)) => return Err(Error::Io(e)),
            Err(MemberError::NoMemory) => return Err(Error::OutOfMemory),
            Err(MemberError::Bad(reason)) => bad.push((
                k,
                Problem {
                    offset: off,
                    reason,
                },
            )),
        }
        off += tar::member_len(r.size);
    }
    Ok(bad)
}

/// Checks the records of the journal whose member header is at `at`: slots `0..used` valid
/// records, then only zero sectors. `Ok(Ok(used))`, or the first damaged sector: one that is
/// neither zeros nor a valid record for its slot ([`Corruption::JournalRecord`]), or a record
/// after a zero sector ([`Corruption::JournalGap`]). Reads the whole journal, 64 sectors at a
/// time.
pub(super) fn scan_journal<D: BlockDevice>(
    dev: &mut D,
    at: u64,
    slots: u32,
    volume: &[u8; 16],
) -> Result<Result<u32, Problem>, Error> {
    let from = at + BLOCK;
    let stop = from + u64::from(slots) * BLOCK;
    let mut used = None;
    let found = scan_sectors(dev, from, stop, |_, here, block| {
        let slot = ((here - from) / BLOCK) as u32;
        let bad = |reason| {
            Ok(Some(Problem {
                offset: here,
                reason,
            }))
        };
        match journal::decode(block, volume, slot) {
            Sector::Zero => {
                used.get_or_insert(slot);
                Ok(None)
            }
            Sector::Record(_) if used.is_none() => Ok(None),
            Sector::Record(_) => bad(Corruption::JournalGap),
            Sector::Bad => bad(Corruption::JournalRecord),
        }
    })?;
    Ok(match found {
        Some(p) => Err(p),
        None => Ok(used.unwrap_or(slots)),
    })
}

/// The namespace a manifest record belongs to (a checkpoint checksum member: its checkpoint's).
pub(super) fn record_namespace<'m>(m: &'m Manifest, r: &manifest::Record) -> &'m str {
    let name = m.name(r);
    let skip = match r.kind {
        Kind::Sidecar => manifest::META_DIR.len() + "/checkpoint/".len(),
        _ => 0,
    };
    name.get(skip..skip + r.ns_len).unwrap_or("")
}

/// What the commit slot after a batch holds.
pub(super) enum Slot {
    /// This batch's commit record, agreeing with its manifest.
    Commit,
    /// Zero blocks: the record was never written.
    Zero,
    /// Anything else: a torn or damaged record.
    Bad,
}

/// Reads the commit slot at `at` of batch `seq`, which started at `batch` with manifest `m`.
pub(super) fn read_slot<D: BlockDevice>(
    dev: &mut D,
    at: u64,
    batch: u64,
    m: &Manifest,
    volume: &[u8; 16],
) -> Result<Slot, Error> {
    let mut block = [0u8; COMMIT_LEN as usize];
    dev.read(at / BLOCK, &mut block)?;
    if block.iter().all(|&b| b == 0) {
        return Ok(Slot::Zero);
    }
    Ok(match Commit::from_member(&block, m.seq) {
        Some(c)
            if c.volume == *volume
                && c.batch == batch
                && c.length == m.length
                && c.manifest == m.end =>
        {
            Slot::Commit
        }
        _ => Slot::Bad,
    })
}

/// Calls `look(dev, offset, sector)` for every sector in `[from, stop)` (in order, read 64
/// sectors at a time) until it returns `Some`; what it returned. The scans for evidence past a
/// damaged spot (a commit record, a later manifest) are this loop.
pub(super) fn scan_sectors<D: BlockDevice, T>(
    dev: &mut D,
    from: u64,
    stop: u64,
    mut look: impl FnMut(&mut D, u64, &[u8]) -> Result<Option<T>, Error>,
) -> Result<Option<T>, Error> {
    let mut chunk = vec![0u8; 64 * SECTOR_SIZE];
    let mut off = from;
    while off < stop {
        let n = ((stop - off) as usize).min(chunk.len());
        dev.read(off / BLOCK, &mut chunk[..n])?;
        for (k, block) in chunk[..n].chunks_exact(SECTOR_SIZE).enumerate() {
            if let Some(t) = look(dev, off + (k * SECTOR_SIZE) as u64, block)? {
                return Ok(Some(t));
            }
        }
        off += n as u64;
    }
    Ok(None)
}

/// After a damaged manifest at `at`: the commit record of batch `seq` for a batch starting at
/// `at`, if one lies within one batch length (its offset and record). Only a batch that was
/// whole and flushed gets one, so finding it means the manifest was altered, not torn.
pub(super) fn find_commit<D: BlockDevice>(
    dev: &mut D,
    capacity: u64,
    at: u64,
    seq: u64,
    volume: &[u8; 16],
    max_batch: u64,
) -> Result<Option<(u64, Commit)>, Error> {
    let stop = capacity.min(at.saturating_add(max_batch + COMMIT_LEN)) / BLOCK * BLOCK;
    let name = crate::commit::commit_name(seq);
    scan_sectors(dev, at + BLOCK, stop, |dev, here, block| {
        if !block.starts_with(name.as_bytes()) || here + COMMIT_LEN > stop {
            return Ok(None);
        }
        let mut rec = [0u8; COMMIT_LEN as usize];
        dev.read(here / BLOCK, &mut rec)?;
        Ok(Commit::from_member(&rec, seq).filter(|c| {
            c.volume == *volume
                && c.batch == at
                && c.length <= max_batch
                && at.checked_add(c.length) == Some(here)
        }))
        .map(|c| c.map(|c| (here, c)))
    })
}

/// What is at an offset where a batch may start.
pub(super) enum Probe {
    /// A batch of the expected sequence whose manifest parses and passes its hash (and, in v4,
    /// whose head agrees with it).
    Batch(Manifest),
    /// Two zero blocks: the end of the stream.
    End,
    /// Anything else; with a valid v4 head whose manifest is not, the end of the extent the
    /// head gives (its manifest, commit record and end marker), which a torn tail's scrub
    /// zeroes.
    Dirty(Option<u64>),
}

/// Reads the manifest member at `at` named `name` with `size` data bytes: its text, if the
/// header is exactly the one PSDB writes and the padding is zeros.
fn read_manifest_member<D: BlockDevice>(
    dev: &mut D,
    capacity: u64,
    at: u64,
    name: &[u8],
    size: u64,
    mlimit: u64,
) -> Result<Option<Vec<u8>>, Error> {
    if size > mlimit {
        // Only a writer with other limits makes this: refuse, do not truncate.
        return Err(Error::ExceedsLimits);
    }
    let len = tar::member_len(size);
    if at.saturating_add(len) > capacity {
        return Err(Error::Corrupt(Problem {
            offset: at,
            reason: Corruption::Truncated,
        }));
    }
    let mut buf = Vec::new();
    buf.try_reserve_exact(len as usize)
        .map_err(|_| Error::OutOfMemory)?;
    buf.resize(len as usize, 0);
    dev.read(at / BLOCK, &mut buf)?;
    let data_end = SECTOR_SIZE + size as usize;
    if buf[..SECTOR_SIZE] != tar::header(name, size) || buf[data_end..].iter().any(|&b| b != 0) {
        return Ok(None);
    }
    buf.truncate(data_end);
    buf.drain(..SECTOR_SIZE);
    Ok(Some(buf))
}

/// Reads the batch `seq` at `at`, if one is there: a v2/v3 manifest member, or a v4 head and
/// the manifest it points to.
pub(super) fn probe<D: BlockDevice>(
    dev: &mut D,
    capacity: u64,
    at: u64,
    seq: u64,
    max_batch: u64,
    mlimit: u64,
) -> Result<Probe, Error> {
    let corrupt = |reason| Error::Corrupt(Problem { offset: at, reason });
    if at + TAIL > capacity {
        return Err(corrupt(Corruption::Truncated));
    }
    let mut first = [0u8; HEAD_LEN as usize];
    dev.read(at / BLOCK, &mut first)?;
    if first[..TAIL as usize].iter().all(|&b| b == 0) {
        return Ok(Probe::End);
    }
    let Some((name, size)) = tar::parse(&first[..SECTOR_SIZE]) else {
        return Ok(Probe::Dirty(None));
    };
    if name == manifest::manifest_name(seq).as_bytes() {
        // v2 or v3: the manifest comes first.
        if tar::member_len(size) > max_batch {
            return Ok(Probe::Dirty(None));
        }
        let name = manifest::manifest_name(seq);
        let Some(text) = read_manifest_member(dev, capacity, at, name.as_bytes(), size, mlimit)?
        else {
            return Ok(Probe::Dirty(None));
        };
        return Ok(match Manifest::parse(text) {
            Ok(m) if m.version <= 3 => Probe::Batch(m),
            _ => Probe::Dirty(None),
        });
    }
    if name != head::head_name(seq).as_bytes() {
        return Ok(Probe::Dirty(None));
    }
    // v4: the head, then the manifest where it says.
    let Some(h) = Head::from_member(&first, seq) else {
        return Ok(Probe::Dirty(None));
    };
    let fits = h.manifest >= at + HEAD_LEN
        && h.manifest.is_multiple_of(BLOCK)
        && (h.manifest - at).saturating_add(tar::member_len(h.size)) <= max_batch;
    if !fits {
        return Ok(Probe::Dirty(None));
    }
    let manifest_end = h.manifest + tar::member_len(h.size);
    if manifest_end + COMMIT_LEN + TAIL > capacity {
        return Err(corrupt(Corruption::Truncated));
    }
    let extent = Some(manifest_end + COMMIT_LEN + TAIL);
    let name = manifest::manifest_name(seq);
    let Some(text) =
        read_manifest_member(dev, capacity, h.manifest, name.as_bytes(), h.size, mlimit)?
    else {
        return Ok(Probe::Dirty(extent));
    };
    Ok(match Manifest::parse(text) {
        Ok(m)
            if m.version >= 4
                && m.seq == h.seq
                && m.volume == h.volume
                && m.prev == h.prev
                && m.max_batch == h.max_batch
                && at + m.manifest_off == h.manifest =>
        {
            Probe::Batch(m)
        }
        _ => Probe::Dirty(extent),
    })
}

/// After a dirty end at `at`: whether a valid manifest of a later batch of this volume lies
/// within one batch length, which a crash cannot produce.
pub(super) fn later_batch_within<D: BlockDevice>(
    dev: &mut D,
    capacity: u64,
    at: u64,
    seq: u64,
    volume: &[u8; 16],
    max_batch: u64,
    mlimit: u64,
) -> Result<bool, Error> {
    let stop = capacity.min(at.saturating_add(max_batch + TAIL)) / BLOCK * BLOCK;
    let found = scan_sectors(dev, at + BLOCK, stop, |dev, here, block| {
        // A v2/v3 batch starts with its manifest, a v4 batch with its head.
        if !block.starts_with(b".psdb/batch/") && !block.starts_with(b".psdb/head/") {
            return Ok(None);
        }
        let Some(s) = tar::parse(block)
            .and_then(|(name, _)| {
                name.strip_prefix(b".psdb/batch/")
                    .and_then(|r| r.strip_suffix(b".sha256"))
                    .or_else(|| name.strip_prefix(b".psdb/head/"))
            })
            .filter(|hex| hex.len() == 16)
            .and_then(|hex| core::str::from_utf8(hex).ok())
            .and_then(|h| u64::from_str_radix(h, 16).ok())
            .filter(|&s| s > seq)
        else {
            return Ok(None);
        };
        match probe(dev, capacity, here, s, max_batch, mlimit) {
            Ok(Probe::Batch(m)) if m.volume == *volume => Ok(Some(())),
            Err(e @ (Error::Io(_) | Error::OutOfMemory)) => Err(e),
            // Anything else here (not a manifest, another volume's, one reaching past the end
            // of the device) is not evidence of a later batch.
            _ => Ok(None),
        }
    })?;
    Ok(found.is_some())
}

/// At mount, a budget error means the volume needs more index than this store may use.
pub(super) fn over(e: Error) -> Error {
    match e {
        Error::IndexFull => Error::ExceedsLimits,
        e => e,
    }
}

/// Whether a manifest continues the chain of `store`.
pub(super) fn continues<D: BlockDevice>(store: &Store<D>, m: &Manifest) -> bool {
    m.volume == store.volume
        && m.prev == store.prev
        && m.seq == store.seq
        && m.max_batch == store.max_batch
        && m.length <= store.max_batch
}

/// Bytes the chain walk reads at a time ([`ReadAhead`]): one request of the virtio driver.
pub(super) const READ_AHEAD: usize = 64 << 10;

/// The chain walk's reads through one [`READ_AHEAD`]-byte window (issue 13). The walk reads
/// forwards, per batch its head, its manifest and its commit record, then the next batch's
/// head: small reads close together (the manifest, the record and the next head are
/// adjacent). Each device read costs about 45 us in QEMU whatever its size up to a few KiB
/// (64 KiB: 140 us), so reading 64 KiB once and serving the small reads from it replaces
/// three requests per batch by about one per 64 KiB of disk. The bytes are the device's, read
/// once during the walk (nothing writes the device until mount returns): every check on them
/// is the same. A read larger than half the window, or any read when the window could not be
/// allocated, goes to the device as it is; so does a read the window's fill could not make
/// (near the end of the device, or an error: then the device's own answer is returned).
pub(super) struct ReadAhead {
    buf: Vec<u8>,
    /// The first sector in `buf`, and how many bytes of it are valid.
    lba: u64,
    len: usize,
}

impl ReadAhead {
    /// A window (empty, pass-through, if the heap has no [`READ_AHEAD`] bytes).
    pub(super) fn new() -> Self {
        let mut buf = Vec::new();
        if buf.try_reserve_exact(READ_AHEAD).is_ok() {
            buf.resize(READ_AHEAD, 0);
        }
        ReadAhead {
            buf,
            lba: 0,
            len: 0,
        }
    }

    /// The device seen through the window.
    pub(super) fn on<'a, D: BlockDevice>(&'a mut self, dev: &'a mut D) -> Ahead<'a, D> {
        Ahead { ra: self, dev }
    }
}

/// A device read through a [`ReadAhead`] window (reads only: the walk never writes).
pub(super) struct Ahead<'a, D> {
    ra: &'a mut ReadAhead,
    dev: &'a mut D,
}

impl<D: BlockDevice> BlockDevice for Ahead<'_, D> {
    fn sector_count(&self) -> u64 {
        self.dev.sector_count()
    }

    fn read(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), IoError> {
        let ra = &mut *self.ra;
        let win = ra.buf.len();
        if buf.len() > win / 2 || !buf.len().is_multiple_of(SECTOR_SIZE) {
            return self.dev.read(lba, buf);
        }
        let hit = |ra: &ReadAhead| {
            lba.checked_sub(ra.lba)
                .and_then(|d| usize::try_from(d).ok()?.checked_mul(SECTOR_SIZE))
                .filter(|&off| off.saturating_add(buf.len()) <= ra.len)
        };
        let off = match hit(ra) {
            Some(off) => off,
            None => {
                let room = self.dev.sector_count().saturating_sub(lba);
                let n = (win as u64 / BLOCK).min(room) as usize * SECTOR_SIZE;
                ra.len = 0;
                if n < buf.len() || self.dev.read(lba, &mut ra.buf[..n]).is_err() {
                    return self.dev.read(lba, buf);
                }
                (ra.lba, ra.len) = (lba, n);
                0
            }
        };
        buf.copy_from_slice(&ra.buf[off..off + buf.len()]);
        Ok(())
    }

    fn write(&mut self, _: u64, _: &[u8]) -> Result<usize, IoError> {
        Err(IoError::Failed)
    }

    fn flush(&mut self) -> Result<(), IoError> {
        Err(IoError::Failed)
    }
}

/// Walks the chain and builds the index. `verify_all` (fsck) reads and checks every member;
/// otherwise only the final batch's, and those of a batch without a commit record.
///
/// Each batch is classified by its commit record (see [`crate::commit`]):
/// - committed: indexed; members that do not verify are damage (reported, kept, their
///   namespace marked: it takes no more writes);
/// - committed, manifest damaged: stepped over using the record; the namespaces it names are
///   marked lost (their checkpoints are not served);
/// - no record, members whole: indexed (a complete batch loses nothing by being kept); at the
///   end of the chain a read-write mount writes its record, before later batches the record
///   was damaged;
/// - no record, members not whole, nothing after it: a torn tail, discarded.
///
/// A damaged batch that no commit record or later batch accounts for, followed by later
/// batches, fails the mount ([`Corruption::DamagedBatch`]): two faults in one place.
pub(crate) fn load<D: BlockDevice>(
    mut dev: D,
    mode: Mode,
    verify_all: bool,
    limits: Limits,
) -> Result<(Store<D>, Report), Error> {
    let capacity = dev
        .sector_count()
        .saturating_mul(BLOCK)
        .min(index::MAX_CAPACITY);
    let not_psdb = |reason| Error::Corrupt(Problem { offset: 0, reason });
    let ceiling = u64::from(limits.max_batch_ceiling.min(MAX_MAX_BATCH));
    let vol_mlimit = manifest_limit(ceiling).min(limits.max_manifest);
    let vol = match probe(&mut dev, capacity, 0, 0, ceiling, vol_mlimit) {
        Ok(Probe::Batch(m)) => m,
        Ok(_) | Err(Error::Corrupt(_)) => {
            let mut first = [0u8; 2 * SECTOR_SIZE];
            let old = capacity >= first.len() as u64
                && dev.read(0, &mut first).is_ok()
                && first[SECTOR_SIZE..].starts_with(b"#psdb-batch v1 seq=0 ");
            return Err(not_psdb(if old {
                Corruption::UnsupportedVersion
            } else {
                Corruption::NotPsdb
            }));
        }
        Err(e) => return Err(e),
    };
    if vol.seq != 0
        || vol.prev != [0; 32]
        || !(u64::from(MIN_MAX_BATCH)..=u64::from(MAX_MAX_BATCH)).contains(&vol.max_batch)
        || !vol.max_batch.is_multiple_of(BLOCK)
    {
        return Err(not_psdb(Corruption::NotPsdb));
    }
    if vol.max_batch > ceiling {
        return Err(Error::ExceedsLimits);
    }
    let mut store = Store::empty(dev, mode, vol.volume, vol.max_batch, capacity);
    store.limits = limits;
    let mut at = 0;
    // The last committed batch, whose members are checked at the end (unless verify_all did).
    let mut last: Option<(u64, Manifest)> = None;
    let mut tail = None;
    // Freed when the walk ends, before the final batch's check (see `ReadAhead`).
    let mut ahead = ReadAhead::new();
    loop {
        let mlimit = store.manifest_cap();
        let probed = probe(
            &mut ahead.on(&mut store.dev),
            capacity,
            at,
            store.seq,
            store.max_batch,
            mlimit,
        )?;
        let m = match probed {
            Probe::End => break,
            Probe::Batch(m) if continues(&store, &m) => m,
            probed @ (Probe::Batch(_) | Probe::Dirty(_)) => {
                if at == 0 {
                    return Err(not_psdb(Corruption::NotPsdb));
                }
                let found = find_commit(
                    &mut store.dev,
                    capacity,
                    at,
                    store.seq,
                    &store.volume,
                    store.max_batch,
                )?;
                if let Some((c_at, c)) = found {
                    // A committed batch whose manifest was altered afterwards.
                    let problem = Problem {
                        offset: at,
                        reason: Corruption::LostBatch,
                    };
                    store.note_damage(problem);
                    match &c.touched {
                        Touched::Some(names) => {
                            for n in names {
                                let i = store.ns_index_or_create(n).map_err(over)? as usize;
                                store.mark(i, problem, true);
                            }
                        }
                        Touched::All => {
                            store.lost_all = Some(problem);
                            for i in 0..store.namespaces.len() {
                                store.mark(i, problem, true);
                            }
                        }
                    }
                    last = None;
                    store.seq += 1;
                    store.prev = c.manifest;
                    at = c_at + COMMIT_LEN;
                    continue;
                }
                if later_batch_within(
                    &mut store.dev,
                    capacity,
                    at,
                    store.seq,
                    &store.volume,
                    store.max_batch,
                    mlimit,
                )? {
                    return Err(Error::Corrupt(Problem {
                        offset: at,
                        reason: Corruption::DamagedBatch,
                    }));
                }
                tail = Some(Problem {
                    offset: at,
                    reason: Corruption::IncompleteTail,
                });
                if let Probe::Dirty(Some(extent)) = probed {
                    // A v4 head whose manifest is torn: its extent is known, zero all of it
                    // (as for a torn batch below).
                    store.scrub = Some((at, extent.min(capacity)));
                }
                break;
            }
        };
        let slot_at = at + m.length;
        if slot_at + COMMIT_LEN + TAIL > capacity {
            return Err(Error::Corrupt(Problem {
                offset: at,
                reason: Corruption::Truncated,
            }));
        }
        let next = slot_at + COMMIT_LEN;
        let slot = read_slot(
            &mut ahead.on(&mut store.dev),
            slot_at,
            at,
            &m,
            &store.volume,
        )?;
        let committed = matches!(slot, Slot::Commit);
        let bad = if verify_all || !committed {
            // Without a record, a journal whose sectors are not zeros or records (stale bytes
            // of an older volume, say) makes the batch torn, not damaged.
            Some(verify_batch(&mut store.dev, at, &m, true, &store.volume)?)
        } else {
            None
        };
        // Without a valid record, only a later batch proves this one was committed (it was
        // written only after this batch's record was flushed).
        let proven_later = !committed && {
            let after = probe(
                &mut store.dev,
                capacity,
                next,
                store.seq + 1,
                store.max_batch,
                mlimit,
            )?;
            matches!(after, Probe::Batch(n) if n.volume == store.volume && n.prev == m.end)
        };
        let whole = bad.as_ref().is_none_or(|b| b.is_empty());
        if !committed && !whole && !proven_later {
            // Torn: never acknowledged. Discard it.
            let offset = match bad.as_ref().and_then(|b| b.first()) {
                Some((_, p)) if verify_all => p.offset,
                _ => at,
            };
            tail = Some(Problem {
                offset,
                reason: Corruption::IncompleteTail,
            });
            // A read-write mount zeroes all of it, not just where the end marker goes: what a
            // torn batch held (a checkpoint signed for a request never acknowledged, say)
            // must not stay readable beside the one signed in its place later.
            store.scrub = Some((at, (next + TAIL).min(capacity)));
            break;
        }
        store.apply(at, &m)?;
        if let Some(bad) = bad {
            store.mark_members(&m, &bad).map_err(over)?;
        }
        store.seq += 1;
        store.prev = m.end;
        at = next;
        if committed {
            last = if verify_all {
                None
            } else {
                Some((slot_at - m.length, m))
            };
            continue;
        }
        last = None;
        let problem = Problem {
            offset: slot_at,
            reason: Corruption::BadCommit,
        };
        if proven_later {
            // The record of a committed batch was damaged: report it (it holds no data).
            store.note_damage(problem);
            continue;
        }
        // The end of the chain: a whole batch whose record never landed (a crash between the
        // two flushes: never acknowledged, and kept). A read-write mount writes the record.
        tail = Some(problem);
        let commit = Commit {
            seq: m.seq,
            volume: store.volume,
            batch: slot_at - m.length,
            length: m.length,
            manifest: m.end,
            touched: Touched::Some(touched_by(&m)),
        };
        store.pending_commit = Some((slot_at, commit));
        break;
    }
    drop(ahead);
    if let Some((off, m)) = last.take() {
        // The final committed batch: checked whole at every mount (bounded by the batch limit).
        let bad = verify_batch(&mut store.dev, off, &m, false, &store.volume)?;
        store.mark_members(&m, &bad).map_err(over)?;
        store.mark_checked(off, &m, &bad);
    }
    if !verify_all {
        // Every namespace's latest journal, the one that takes records: its records are
        // checked at every mount (at most `maxbatch` bytes each) and its next slot found.
        // Earlier journals are checked when read, and all of them by fsck (`verify_all`,
        // which checked them with their batches above).
        for i in 0..store.namespaces.len() {
            let Some(j) = store.namespaces[i].journal else {
                continue;
            };
            match scan_journal(&mut store.dev, j.loc, j.slots, &store.volume)? {
                Ok(used) => {
                    if let Some(j) = store.namespaces[i].journal.as_mut() {
                        j.next = used;
                    }
                }
                Err(problem) => {
                    store.note_damage(problem);
                    store.mark(i, problem, false);
                }
            }
        }
    }
    store.end = at;
    let stats = store.stats();
    let report = Report {
        problem: stats.damage.or(tail),
        tail,
        ..stats
    };
    Ok((store, report))
}

/// The namespaces a manifest's records write, sorted and without duplicates.
pub(super) fn touched_by(m: &Manifest) -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    for r in &m.records {
        let ns = record_namespace(m, r);
        if let Err(k) = v.binary_search_by(|t| t.as_str().cmp(ns)) {
            v.insert(k, String::from(ns));
        }
    }
    v
}

impl<D: BlockDevice> Store<D> {
    /// Marks the namespaces of a committed batch's bad members damaged, and counts them.
    pub(super) fn mark_members(
        &mut self,
        m: &Manifest,
        bad: &[(usize, Problem)],
    ) -> Result<(), Error> {
        for &(k, problem) in bad {
            self.note_damage(problem);
            if let Some(r) = m.records.get(k) {
                let i = self.ns_index_or_create(record_namespace(m, r))? as usize;
                self.mark(i, problem, false);
            }
        }
        Ok(())
    }
}

impl<D: BlockDevice> Store<D> {
    /// Remembers which objects of the batch at `at` were verified (all but `bad`), for
    /// [`Store::read_at`]'s `verified`.
    pub(super) fn mark_checked(&mut self, at: u64, m: &Manifest, bad: &[(usize, Problem)]) {
        let mut off = at + m.members_off;
        for (k, r) in m.records.iter().enumerate() {
            let here = off;
            off += tar::member_len(r.size);
            if matches!(r.kind, Kind::Sidecar | Kind::Journal) {
                continue;
            }
            let name = m.name(r);
            let (Some(ns), Some(path)) = (name.get(..r.ns_len), name.get(r.ns_len + 1..)) else {
                continue;
            };
            let Some(&i) = self.by_name.get(ns) else {
                continue;
            };
            let check = if bad.iter().any(|&(b, _)| b == k) {
                Check::Bad
            } else {
                Check::Good
            };
            self.set_check(i as usize, path, here, check);
        }
    }

    /// Adds a mounted batch to the index.
    pub(super) fn apply(&mut self, at: u64, m: &Manifest) -> Result<(), Error> {
        let mut off = at + m.members_off;
        // The namespace of the previous record: a sidecar follows its checkpoint.
        let mut last = None;
        // Where the current record's manifest lines start: after the header line, then after
        // the previous record's name (a record's lines end with its name).
        let mut line_start = m.text.iter().position(|&b| b == b'\n').map_or(0, |p| p + 1);
        // The batch's own cost (manifest member beyond its records' lines, commit record) is
        // its first object's namespace's, as when it was written.
        let records_lines = m.text.len().saturating_sub(line_start + END_LINE) as u64;
        let members: u64 = m.records.iter().map(|r| tar::member_len(r.size)).sum();
        let overhead = (m.length - members) - records_lines + COMMIT_LEN;
        let mut overhead = Some(overhead).filter(|_| !m.records.is_empty());
        for r in &m.records {
            let name = m.name(r);
            let offset = off;
            off += tar::member_len(r.size);
            // Disk charged to the namespace: the member and its manifest lines.
            let lines = (r.name.end + 1).saturating_sub(line_start) as u64;
            line_start = r.name.end + 1;
            let disk = tar::member_len(r.size) + lines;
            if r.kind == Kind::Sidecar {
                if let Some(i) = last.take() {
                    let st: &mut NsState = &mut self.namespaces[i];
                    st.used.disk_bytes += disk;
                }
                continue;
            }
            let (ns, path) = (&name[..r.ns_len], &name[r.ns_len + 1..]);
            let i = self.ns_index_or_create(ns).map_err(over)? as usize;
            last = Some(i);
            self.namespaces[i].used.disk_bytes += disk + overhead.take().unwrap_or(0);
            let journal = r.kind == Kind::Journal;
            let obj = Obj {
                hash: r.hash,
                loc: offset,
                size: r.size as u32,
                journal,
                check: Check::Unchecked,
            };
            self.data_bytes += r.size;
            let st = &mut self.namespaces[i];
            if journal {
                // The latest so far; its records are checked once the chain is walked.
                st.journal = Some(Latest {
                    loc: offset,
                    slots: (r.size / BLOCK) as u32,
                    next: 0,
                });
            }
            // A checkpoint version replaces the one before; any other path is new.
            if r.kind != Kind::Checkpoint || st.objects.set(path, obj).is_none() {
                let cost = entry_cost(path);
                if self.index_used.saturating_add(cost) > self.limits.index_bytes {
                    return Err(Error::ExceedsLimits);
                }
                st.objects.reserve(path.len())?;
                match st.objects.insert(path, obj) {
                    Ok(()) => {}
                    Err(index::Refused::Exists) => {
                        return Err(Error::Corrupt(Problem {
                            offset,
                            reason: Corruption::Duplicate,
                        }))
                    }
                    Err(index::Refused::NoRoom) => return Err(Error::OutOfMemory),
                }
                st.used.index_bytes += cost;
                self.index_used += cost;
                if r.kind != Kind::Checkpoint {
                    self.objects += 1;
                }
            }
            if r.kind == Kind::Checkpoint {
                st.checkpoint_versions += 1;
                self.checkpoint_versions += 1;
            }
        }
        Ok(())
    }
}

/// Checks a whole image: every manifest, header, padding and data hash, and the end marker.
/// Reads everything; writes nothing. `Err` only for device errors: damage is in the report.
pub fn fsck<D: BlockDevice>(dev: D) -> Result<Report, IoError> {
    let capacity = dev
        .sector_count()
        .saturating_mul(BLOCK)
        .min(index::MAX_CAPACITY);
    match load(dev, Mode::ReadOnly, true, Limits::UNLIMITED) {
        Ok((_, report)) => Ok(report),
        Err(Error::Io(e)) => Err(e),
        Err(Error::Corrupt(p)) => Ok(Report {
            capacity,
            problem: Some(p),
            ..Report::default()
        }),
        Err(_) => Err(IoError::Failed),
    }
}

//! PSDB on a file-backed image: ledger-shaped throughput next to the raw limit of the same file
//! system, and mount time against object count.
//!
//! `cargo run --release -p psdb --features std --example bench [DIR] [batches]`
//!
//! Ledger workload, per batch of 256 entries: the entry bundle (256 entries of 16..80 bytes,
//! each with its 2-byte length), the full level-0 tile (8 KiB), the level-1 tile (partial, or
//! full every 256 batches), higher levels as they change, and the checkpoint, then one flush.
//! The raw limit writes the same payload bytes, object by object, sequentially to a file on the
//! same file system with one `fdatasync` per batch, exactly as many as PSDB's flushes.
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use psdb::{FileDevice, FormatOptions, Mode, Store};

/// Interleaved rounds of each side; the median is reported.
const ROUNDS: usize = 5;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn err(e: psdb::Error) -> Box<dyn std::error::Error> {
    e.to_string().into()
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn fill(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// `tile/<level>/<N>[.p/<w>]` with N in 3-digit groups, as tlog-tiles names it.
fn tile_path(level: &str, n: u64, w: u64) -> String {
    let mut s = format!("{:03}", n % 1000);
    let mut rest = n / 1000;
    while rest > 0 {
        s = format!("x{:03}/{s}", rest % 1000);
        rest /= 1000;
    }
    if w == 0 {
        format!("tile/{level}/{s}")
    } else {
        format!("tile/{level}/{s}.p/{w}")
    }
}

/// The objects of batch `b` (after which the log has `(b + 1) * 256` entries).
fn ledger_batch(rng: &mut Rng, b: u64) -> (Vec<(String, Vec<u8>)>, Vec<u8>) {
    let mut bundle = Vec::new();
    for _ in 0..256 {
        let len = 16 + (rng.next() % 65) as usize;
        bundle.extend_from_slice(&(len as u16).to_be_bytes());
        bundle.extend(rng.fill(len));
    }
    let mut objs = vec![
        (tile_path("entries", b, 0), bundle),
        (tile_path("0", b, 0), rng.fill(8192)),
    ];
    let size = (b + 1) * 256;
    let mut level = 1;
    // Level L changes whenever a level L-1 tile fills, i.e. when size crosses 256^L.
    while size >> (8 * level) > 0 && size.is_multiple_of(1 << (8 * level)) {
        let hashes = size >> (8 * level);
        let (full, w) = (hashes / 256, hashes % 256);
        let path = if w == 0 {
            tile_path(&level.to_string(), full - 1, 0)
        } else {
            tile_path(&level.to_string(), full, w)
        };
        objs.push((path, rng.fill(32 * if w == 0 { 256 } else { w as usize })));
        level += 1;
    }
    let cp = format!("example.com/bench\n{size}\n{}\n", rng.next()).into_bytes();
    (objs, cp)
}

struct Run {
    secs: f64,
    puts: u64,
    payload: u64,
    disk: u64,
}

fn run_psdb(path: &Path, batches: u64) -> Res<Run> {
    let _ = std::fs::remove_file(path);
    let dev = FileDevice::create(path, (batches + 64) * 64 * 1024)?;
    let mut s = Store::format(dev, FormatOptions::new(*b"bench-volume-001")).map_err(err)?;
    let ns = s.open_namespace("tenant").map_err(err)?;
    let mut rng = Rng(1);
    let work: Vec<_> = (0..batches).map(|b| ledger_batch(&mut rng, b)).collect();
    let (mut puts, mut payload) = (0, 0);
    let t = Instant::now();
    for (objs, cp) in &work {
        for (p, d) in objs {
            s.put(ns, p, d).map_err(err)?;
            payload += d.len() as u64;
        }
        s.put_checkpoint(ns, cp).map_err(err)?;
        s.flush().map_err(err)?;
        puts += objs.len() as u64 + 1;
        payload += cp.len() as u64;
    }
    let secs = t.elapsed().as_secs_f64();
    Ok(Run {
        secs,
        puts,
        payload,
        disk: s.stats().end,
    })
}

fn run_raw(path: &Path, batches: u64) -> Res<Run> {
    let _ = std::fs::remove_file(path);
    let mut f = OpenOptions::new().write(true).create_new(true).open(path)?;
    let mut rng = Rng(1);
    let work: Vec<_> = (0..batches).map(|b| ledger_batch(&mut rng, b)).collect();
    let (mut puts, mut payload) = (0, 0);
    let t = Instant::now();
    for (objs, cp) in &work {
        for (_, d) in objs {
            f.write_all(d)?;
            payload += d.len() as u64;
        }
        f.write_all(cp)?;
        f.sync_data()?;
        puts += objs.len() as u64 + 1;
        payload += cp.len() as u64;
    }
    let secs = t.elapsed().as_secs_f64();
    Ok(Run {
        secs,
        puts,
        payload,
        disk: payload,
    })
}

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|v| v.parse::<u64>().ok())
        })
        .map_or(0, |pages| pages * 4096)
}

/// Builds an image of `objects` objects of `size` bytes (batches as full as the limit allows).
fn build_image(path: &Path, objects: u64, size: usize) -> Res<u64> {
    let _ = std::fs::remove_file(path);
    let per = 512 + size.div_ceil(512) * 512 + 128;
    let dev = FileDevice::create(path, objects * per as u64 + (64 << 20))?;
    let mut s = Store::format(dev, FormatOptions::new(*b"bench-volume-002")).map_err(err)?;
    let ns = s.open_namespace("tenant").map_err(err)?;
    let mut rng = Rng(2);
    let data = rng.fill(size);
    for i in 0..objects {
        let mut d = data.clone();
        d[..8.min(size)].copy_from_slice(&i.to_be_bytes()[..8.min(size)]);
        s.put(ns, &tile_path("0", i, 0), &d).map_err(err)?;
    }
    s.flush().map_err(err)?;
    Ok(s.stats().end)
}

/// Mounts `path` in a fresh process (so the heap it measures holds nothing else): prints
/// `<seconds> <objects> <rss growth bytes>`.
fn mount_child(path: &Path) -> Res<()> {
    let before = rss_bytes();
    let t = Instant::now();
    let (s, report) = Store::mount(FileDevice::open(path, false)?, Mode::ReadOnly).map_err(err)?;
    let secs = t.elapsed().as_secs_f64();
    let grown = rss_bytes().saturating_sub(before);
    println!("{secs} {} {grown}", report.objects);
    drop(s);
    Ok(())
}

fn mount_time(path: &Path) -> Res<(f64, u64, u64)> {
    let out = std::process::Command::new(std::env::current_exe()?)
        .arg("--mount")
        .arg(path)
        .output()?;
    let text = String::from_utf8(out.stdout)?;
    let mut f = text.split_whitespace();
    let mut next = || f.next().ok_or("mount child failed");
    Ok((next()?.parse()?, next()?.parse()?, next()?.parse()?))
}

fn main() -> Res<()> {
    let mut args = std::env::args().skip(1);
    if std::env::args().nth(1).as_deref() == Some("--mount") {
        let path = std::env::args().nth(2).ok_or("--mount PATH")?;
        return mount_child(Path::new(&path));
    }
    let dir: PathBuf = args
        .next()
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("psdb-bench"));
    let batches: u64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(2000);
    std::fs::create_dir_all(&dir)?;
    println!(
        "psdb bench in {} (file system of that directory), {batches} batches of 256 entries",
        dir.display()
    );
    let (img, raw) = (dir.join("psdb.img"), dir.join("raw.bin"));

    // Interleaved rounds so both see the same machine state; the median round is reported.
    let mut ours = Vec::new();
    let mut limit = Vec::new();
    for _ in 0..ROUNDS {
        limit.push(run_raw(&raw, batches)?);
        ours.push(run_psdb(&img, batches)?);
    }
    ours.sort_by(|a, b| a.secs.total_cmp(&b.secs));
    limit.sort_by(|a, b| a.secs.total_cmp(&b.secs));
    let (o, r) = (&ours[ROUNDS / 2], &limit[ROUNDS / 2]);
    let mb = |run: &Run| run.payload as f64 / run.secs / 1e6;
    println!(
        "ledger workload ({} puts, {:.1} MB payload, {} flushes):",
        o.puts,
        o.payload as f64 / 1e6,
        batches
    );
    println!(
        "  psdb : {:>9.0} puts/s  {:>7.2} MB/s payload  ({:.2} s; {:.1} MB on disk, {:.1}% format overhead)",
        o.puts as f64 / o.secs,
        mb(o),
        o.secs,
        o.disk as f64 / 1e6,
        (o.disk as f64 / o.payload as f64 - 1.0) * 100.0
    );
    println!(
        "  raw  : {:>9.0} puts/s  {:>7.2} MB/s payload  ({:.2} s; write + fdatasync per batch)",
        r.puts as f64 / r.secs,
        mb(r),
        r.secs
    );
    println!("  ratio: {:.2} of the raw limit (median of {ROUNDS} interleaved rounds; all psdb rounds {:?} s, raw {:?} s)",
        r.secs / o.secs,
        ours.iter().map(|x| (x.secs * 100.0).round() / 100.0).collect::<Vec<_>>(),
        limit.iter().map(|x| (x.secs * 100.0).round() / 100.0).collect::<Vec<_>>());
    let _ = std::fs::remove_file(&raw);
    let _ = std::fs::remove_file(&img);

    println!(
        "mount time against object count (warm page cache, read-only mount in a fresh process):"
    );
    let mut cases = vec![
        (10_000u64, 32usize),
        (100_000, 32),
        (1_000_000, 32),
        (10_000, 8192),
    ];
    if let Some(n) = args.next() {
        cases.retain(|(c, _)| *c <= n.parse::<u64>().unwrap_or(u64::MAX));
    }
    for (n, size) in cases {
        let path = dir.join(format!("mount-{n}-{size}.img"));
        let t = Instant::now();
        let used = build_image(&path, n, size)?;
        let build = t.elapsed().as_secs_f64();
        let (secs, objects, grown) = mount_time(&path)?;
        let (secs2, _, _) = mount_time(&path)?;
        println!(
            "  {objects:>8} objects of {size:>5} B ({:>7.1} MB used; built in {build:.1} s): mount {:.3} s / {:.3} s, {:.2} µs/object, RSS growth {} B/object",
            used as f64 / 1e6,
            secs,
            secs2,
            secs2 * 1e6 / objects as f64,
            grown / objects.max(1)
        );
        let _ = std::fs::remove_file(&path);
    }
    let _ = File::open(&dir).map(|_| std::fs::remove_dir(&dir));
    Ok(())
}

//! Writes a small demo image: three namespaces of tlog-tiles-shaped objects, several checkpoint
//! versions. Used for the fuzz seed corpus and to try the forensic procedure in FORMAT.md.
//!
//! `cargo run -p psdb --example make_image -- OUT [batches] [KiB]`
use psdb::{FormatOptions, RamDevice, Store};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let out = args.next().ok_or("usage: make_image OUT [batches] [KiB]")?;
    let batches: u64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(4);
    let kib: u64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(64);
    let opts = FormatOptions {
        volume_id: *b"demo-volume-0001",
        max_batch_bytes: 16 << 10,
    };
    let mut s = Store::format(RamDevice::new(kib * 2), opts).map_err(|e| e.to_string())?;
    for b in 0..batches {
        for (k, name) in ["tenant-a", "tenant-b", "audit"].iter().enumerate() {
            let ns = s.open_namespace(name).map_err(|e| e.to_string())?;
            let data: Vec<u8> = (0..(b * 97 + k as u64 * 13) % 700)
                .map(|i| (i * 7 + b) as u8)
                .collect();
            let path = format!("tile/0/{:03}", b);
            s.put(ns, &path, &data).map_err(|e| e.to_string())?;
            let cp = format!("example.com/{name}\n{}\nroot{b}\n", b + 1);
            s.put_checkpoint(ns, cp.as_bytes())
                .map_err(|e| e.to_string())?;
        }
        s.flush().map_err(|e| e.to_string())?;
    }
    std::fs::write(&out, s.into_device().image())?;
    Ok(())
}

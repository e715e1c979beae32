//! Each PD's ELF size and memory footprint: `footprint SYSTEM_XML IMAGE_DIR` prints a markdown
//! table from the ELFs the image is packed from (file size, bytes loaded by the PT_LOAD
//! segments) and system.xml (stack, heap, shared regions, device and DMA regions). Shared
//! regions are counted in each PD that maps them. A figure, not a test (tests/bench-system.sh).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use object::{Object, ObjectSegment};

fn kib(b: u64) -> String {
    if b >= 1 << 20 {
        format!("{:.1} MiB", b as f64 / f64::from(1 << 20))
    } else {
        format!("{:.1} KiB", b as f64 / 1024.0)
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [system, dir] = &args[..] else {
        eprintln!("usage: footprint SYSTEM_XML IMAGE_DIR");
        std::process::exit(2);
    };
    let sys = sysdesc::System::parse(&std::fs::read_to_string(system).unwrap()).unwrap();
    println!(
        "| PD | priority | ELF file | loaded (PT_LOAD) | stack | heap | shared regions | devices + DMA | total mapped |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    let mut sum = 0;
    for pd in &sys.pds {
        let path = std::path::Path::new(dir).join(&pd.program_image);
        let bytes = std::fs::read(&path).unwrap();
        let elf = object::File::parse(&*bytes).unwrap();
        let loaded: u64 = elf.segments().map(|s| s.size()).sum();
        let stack = pd.stack_size.unwrap_or(0x2000);
        let (mut heap, mut shared, mut device) = (0, 0, 0);
        for m in &pd.maps {
            let r = sys.region(&m.mr).unwrap();
            if r.phys_addr.is_some() {
                device += r.size;
            } else if m.setvar_vaddr.as_deref() == Some("heap_vaddr") {
                heap += r.size;
            } else {
                shared += r.size;
            }
        }
        let total = loaded + stack + heap + shared + device;
        sum += total;
        println!(
            "| {} | {} | {} ({}) | {} | {} | {} | {} | {} | {} |",
            pd.name,
            pd.priority,
            kib(bytes.len() as u64),
            pd.program_image,
            kib(loaded),
            kib(stack),
            kib(heap),
            kib(shared),
            kib(device),
            kib(total)
        );
    }
    let regions: u64 = sys.regions.iter().map(|r| r.size).sum();
    println!(
        "\nAll memory regions of system.xml (each counted once): {}; per-PD mappings summed: {}.",
        kib(regions),
        kib(sum)
    );
}

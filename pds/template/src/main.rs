//! The **template** PD's seL4 image: the library's [`template_pd::boot`] (tested on the host,
//! and what the simulator runs for `template.elf`) and a heap. Copy it with the library
//! (`docs/adding-a-pd.md`).
//!
//! A template PD that cannot start (not in the description it was built with, another name, a
//! missing region) prints why on an `|ERROR:` line and answers every call
//! [`template_pd::msg::Reply::NotServing`] instead of stopping.

#![cfg_attr(target_os = "none", no_std, no_main)]
#![forbid(unsafe_code)]

// The heap (system.toml `heap`, mapped at `heap_vaddr`). The PD allocates nothing itself
// (tests/heap.rs); the crates it links (interface) use `alloc`, which needs an allocator.
microkit::heap!(vaddr = "heap_vaddr", size = "heap_size");

microkit::protection_domain!(template_pd::boot);

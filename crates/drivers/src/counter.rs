//! The Arm generic timer's physical counter, for measuring (block throughput).
//!
//! seL4's `qemu_virt_aarch64` kernels are built with `CONFIG_EXPORT_PCNT_USER` (the SDK's
//! `gen_config.h`), so user level may read `CNTPCT_EL0` and `CNTFRQ_EL0`; `CNTVCT_EL0` is not
//! exported. Off seL4 both read 0: callers treat a zero frequency as "no clock".

/// Counter ticks since boot.
pub fn ticks() -> u64 {
    #[cfg(all(target_os = "none", target_arch = "aarch64"))]
    {
        let t: u64;
        // SAFETY: reads a system register the kernel exports to EL0 (see the module docs); no
        // memory access. `isb` so the read is not hoisted above earlier instructions.
        unsafe {
            core::arch::asm!("isb", "mrs {t}, cntpct_el0", t = out(reg) t, options(nomem, nostack))
        };
        t
    }
    #[cfg(not(all(target_os = "none", target_arch = "aarch64")))]
    0
}

/// Counter ticks per second (0 off seL4).
pub fn frequency() -> u64 {
    #[cfg(all(target_os = "none", target_arch = "aarch64"))]
    {
        let f: u64;
        // SAFETY: as in `ticks`.
        unsafe { core::arch::asm!("mrs {f}, cntfrq_el0", f = out(reg) f, options(nomem, nostack)) };
        f
    }
    #[cfg(not(all(target_os = "none", target_arch = "aarch64")))]
    0
}

/// `bytes` moved in `ticks` at `frequency` ticks per second, in kB/s (10^3 bytes); `None` if
/// there is no clock or no time passed.
pub fn kb_per_s(bytes: u64, ticks: u64, frequency: u64) -> Option<u64> {
    if ticks == 0 || frequency == 0 {
        return None;
    }
    let v = u128::from(bytes) * u128::from(frequency) / u128::from(ticks) / 1000;
    u64::try_from(v).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throughput() {
        assert_eq!(kb_per_s(4 << 20, 62_500_000, 62_500_000), Some(4194));
        assert_eq!(kb_per_s(1_000_000, 31_250_000, 62_500_000), Some(2000));
        assert_eq!(kb_per_s(1, 0, 62_500_000), None);
        assert_eq!(kb_per_s(1, 1, 0), None);
        assert_eq!(ticks(), 0);
        assert_eq!(frequency(), 0);
    }
}

//! The Zynq UltraScale+ MPSoC real-time clock (the ZCU102's, in the low-power domain at
//! 0xFFA6_0000, 4 KiB; QEMU's `xlnx-zcu102` has a model of it): the audit PD's clock on that
//! board, as the PL031 ([`crate::rtc`]) is on QEMU `virt`.
//!
//! Read only, like the PL031 driver: it never sets the clock (firmware or an operator does, and
//! the battery keeps it). `CURRENT_TIME` is the seconds counter; a counter that reads zero has
//! never been set, and with the oscillator off (`CONTROL.OSC_EN`, bit 24) it does not run:
//! either way [`ZynqMpRtc::now`] is `None`, and every signed request is refused
//! `ClockUnavailable` (the caller keeps its clock floor, as with the PL031).
//!
//! Linux's driver (drivers/rtc/rtc-zynqmp.c) reads `SET_TIME_READ` minus one second until the
//! first seconds tick after it *wrote* the time; this driver never writes it, so
//! `CURRENT_TIME` is always the right register. QEMU's model computes both from the host's
//! clock (`-rtc base=`) and never raises the seconds interrupt.
//!
//! Register offsets: UG1085 (Zynq UltraScale+ TRM), module RTC; the same in QEMU's
//! hw/rtc/xlnx-zynqmp-rtc.h and Linux's rtc-zynqmp.c. The block has no id register, so there
//! is no probe beyond the oscillator bit and a non-zero time.

use crate::mmio::Registers;

/// `CURRENT_TIME`: seconds (the counter).
pub const CURRENT_TIME: usize = 0x10;
/// `CONTROL`: bit 24 enables the oscillator (`OSC_EN`), bit 31 the battery switch (`BATT_EN`).
pub const CONTROL: usize = 0x40;
/// `CONTROL.OSC_EN`.
pub const OSC_EN: u32 = 1 << 24;
/// Bytes of the register block (one page).
pub const BLOCK: usize = 0x1000;

/// The RTC at a register block.
#[derive(Debug)]
pub struct ZynqMpRtc<R: Registers> {
    regs: R,
}

impl<R: Registers> ZynqMpRtc<R> {
    /// The clock at `regs` (the block is not checked: it has no id; see [`ZynqMpRtc::now`]).
    pub fn new(regs: R) -> ZynqMpRtc<R> {
        ZynqMpRtc { regs }
    }

    /// Seconds since the Unix epoch, or `None` if the oscillator is off or the counter was
    /// never set (reads zero).
    pub fn now(&self) -> Option<u64> {
        if self.regs.read32(CONTROL)? & OSC_EN == 0 {
            return None;
        }
        match self.regs.read32(CURRENT_TIME)? {
            0 => None,
            t => Some(u64::from(t)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::cell::Cell;

    /// A fake register block: 1,024 words, reset as QEMU's model (`CONTROL` = 0x0100_0000).
    struct Fake(Vec<Cell<u32>>);

    impl Fake {
        fn new(time: u32) -> Fake {
            let f = Fake((0..BLOCK / 4).map(|_| Cell::new(0)).collect());
            f.0[CONTROL / 4].set(OSC_EN);
            f.0[CURRENT_TIME / 4].set(time);
            f
        }
    }

    impl Registers for &Fake {
        fn read32(&self, offset: usize) -> Option<u32> {
            if !offset.is_multiple_of(4) {
                return None;
            }
            self.0.get(offset / 4).map(Cell::get)
        }
    }

    #[test]
    fn reads_the_seconds_counter() {
        let f = Fake::new(1_796_175_230);
        let rtc = ZynqMpRtc::new(&f);
        assert_eq!(rtc.now(), Some(1_796_175_230));
        f.0[CURRENT_TIME / 4].set(1_796_175_231);
        assert_eq!(rtc.now(), Some(1_796_175_231));
    }

    #[test]
    fn an_rtc_that_does_not_run_or_was_never_set_is_no_clock() {
        let f = Fake::new(1_796_175_230);
        f.0[CONTROL / 4].set(0);
        assert_eq!(ZynqMpRtc::new(&f).now(), None, "oscillator off");
        let g = Fake::new(0);
        assert_eq!(ZynqMpRtc::new(&g).now(), None, "never set");
        // A block too small to hold the registers.
        let short = Fake((0..4).map(|_| Cell::new(OSC_EN)).collect());
        assert_eq!(ZynqMpRtc::new(&short).now(), None);
    }
}

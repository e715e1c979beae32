//! The Arm PL031 real-time clock (QEMU `virt` maps one at 0x0901_0000, 4 KiB): the audit PD's
//! clock (docs/access.md, "Time and replay").
//!
//! Read only: the driver never sets the clock. It checks the PrimeCell and peripheral ids
//! before trusting the block ([`Pl031::probe`]), reads the data register `RTCDR` (seconds since
//! the Unix epoch, as QEMU starts it from the host's clock) and reports `None` when there is
//! no PL031 there or the counter is not running: the caller then has no clock, and every
//! signed request is refused `ClockUnavailable`. Whether a reading went backwards is the
//! caller's rule (audit keeps the clock floor), not the driver's.
//!
//! The registers are reached through [`Registers`], so the same code is tested on the host
//! against a fake register block.

/// `RTCDR`: the current time in seconds.
pub const RTCDR: usize = 0x000;
/// `RTCCR`: bit 0 set once the counter runs.
pub const RTCCR: usize = 0x00C;
/// `RTCPeriphID0..3` at 0xFE0.. and `RTCPCellID0..3` at 0xFF0.. (one byte per word).
pub const ID_BASE: usize = 0xFE0;
/// The expected id bytes: peripheral 0x31, 0x10, 0x?4 (revision in the high nibble), 0x00;
/// PrimeCell 0x0D, 0xF0, 0x05, 0xB1.
pub const PERIPH_ID: [u32; 4] = [0x31, 0x10, 0x04, 0x00];
/// The PrimeCell id bytes.
pub const PCELL_ID: [u32; 4] = [0x0D, 0xF0, 0x05, 0xB1];
/// Bytes of the register block (one page).
pub const BLOCK: usize = 0x1000;

/// The registers the driver is written against (32-bit reads only; one trait for every
/// driver: [`crate::mmio`]).
pub use crate::mmio::Registers;

/// A PL031 found at a register block.
#[derive(Debug)]
pub struct Pl031<R: Registers> {
    regs: R,
}

impl<R: Registers> Pl031<R> {
    /// The clock at `regs`, if its id registers say PL031; `None` otherwise (not a clock).
    pub fn probe(regs: R) -> Option<Pl031<R>> {
        for (i, want) in PERIPH_ID.iter().chain(PCELL_ID.iter()).enumerate() {
            let got = regs.read32(ID_BASE + 4 * i)? & 0xFF;
            // PeriphID2's high nibble is the revision.
            let got = if i == 2 { got & 0x0F } else { got };
            if got != *want {
                return None;
            }
        }
        Some(Pl031 { regs })
    }

    /// Seconds since the Unix epoch, or `None` if the counter is not running.
    pub fn now(&self) -> Option<u64> {
        let running = self.regs.read32(RTCCR)? & 1 == 1;
        running.then(|| self.regs.read32(RTCDR).map(u64::from))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::cell::Cell;

    /// A fake register block: 1,024 words.
    struct Fake(Vec<Cell<u32>>);

    impl Fake {
        fn pl031(time: u32) -> Fake {
            let f = Fake((0..BLOCK / 4).map(|_| Cell::new(0)).collect());
            for (i, b) in PERIPH_ID.iter().chain(PCELL_ID.iter()).enumerate() {
                f.set(ID_BASE + 4 * i, *b);
            }
            f.set(ID_BASE + 8, 0x14); // revision 1, as QEMU's
            f.set(RTCCR, 1);
            f.set(RTCDR, time);
            f
        }
        fn set(&self, off: usize, v: u32) {
            self.0[off / 4].set(v);
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
    fn reads_the_time_of_a_running_pl031() {
        let f = Fake::pl031(1_796_175_230);
        let rtc = Pl031::probe(&f).expect("a PL031");
        assert_eq!(rtc.now(), Some(1_796_175_230));
        f.set(RTCDR, 1_796_175_231);
        assert_eq!(rtc.now(), Some(1_796_175_231));
        // Stopped: no clock.
        f.set(RTCCR, 0);
        assert_eq!(rtc.now(), None);
    }

    #[test]
    fn anything_else_is_no_clock() {
        // Blank memory, another PrimeCell (a PL011 UART's ids), one id byte wrong.
        let blank = Fake((0..BLOCK / 4).map(|_| Cell::new(0)).collect());
        assert!(Pl031::probe(&blank).is_none());
        let uart = Fake::pl031(5);
        uart.set(ID_BASE, 0x11);
        assert!(Pl031::probe(&uart).is_none());
        for k in 0..8 {
            let f = Fake::pl031(5);
            f.set(
                ID_BASE + 4 * k,
                (f.0[(ID_BASE + 4 * k) / 4].get() ^ 0x01) & 0xFF,
            );
            assert!(Pl031::probe(&f).is_none(), "id byte {k}");
        }
        // A block too small to hold the ids.
        let short = Fake((0..16).map(|_| Cell::new(0)).collect());
        assert!(Pl031::probe(&short).is_none());
    }
}

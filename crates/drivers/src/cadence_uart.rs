//! The Cadence UART (`cdns,uart-r1p12`) of the Zynq UltraScale+ MPSoC, the serial ports of the
//! Xilinx ZCU102: receive woken by its IRQ, transmit by polling the FIFO, no DMA (issue 12).
//!
//! # The board
//!
//! | | UART0 | UART1 |
//! |---|---|---|
//! | registers (4 KiB) | `0xFF00_0000` | `0xFF01_0000` |
//! | GIC SPI; interrupt ID (system.xml `<irq irq=...>`) | SPI 21; 53 | SPI 22; 54 |
//! | role | debug console (seL4 prints there) | the client wire |
//!
//! Sources: Linux `arch/arm64/boot/dts/xilinx/zynqmp.dtsi` (`serial@ff000000` with
//! `interrupts = <0 21 4>`, `serial@ff010000` with `<0 22 4>`: SPIs, level high) and QEMU's
//! `hw/arm/xlnx-zynqmp.c` (`uart_addr` = 0xFF000000, 0xFF010000; `uart_intr` = 21, 22, wired to
//! the GIC's SPI inputs), the SoC the `xlnx-zcu102` machine builds. An SPI's interrupt ID is 32
//! plus its number, as for the virtio IRQs of system.xml (SPI 16 is `irq="48"`). QEMU connects
//! `-serial` number *n* to UART*n*, so the wire's port is the second `-serial`.
//!
//! [`CadenceUart::init`] resets the block it is given, so a PD must never be handed UART0 while
//! the kernel prints there. The registers must be mapped uncached (`cached="false"`: device
//! memory), one 4 KiB page ([`BLOCK`]).
//!
//! **Reference clock.** The ZCU102's `UART_REF_CLK` is 100 MHz ([`ZCU102_UART_REF_CLK_HZ`]): the
//! board's boot firmware (psu_init) programs it, and Linux's `zynqmp-clk.dtsi` describes both
//! UARTs with that fixed 100 MHz clock (`&uart0 { clocks = <&clk100 &clk100>; }`). The driver
//! cannot read it back, so [`Config::ref_clk_hz`] states it; at 100 MHz, 115,200 baud is
//! CD = 124, BDIV = 6 (100 MHz / (124 × 7) = 115,207 baud, 0.006 % fast: [`Divisors::for_baud`],
//! the same search as Linux's `cdns_uart_calc_baud_divs` and Xilinx's `XUartPs_SetBaudRate`).
//! QEMU's model uses the baud rate only to time its receive timeout and to set a real serial
//! back-end, and assumes 50 MHz (`UART_DEFAULT_REF_CLK`) when the machine connects no clock to
//! it, as the `xlnx-zynqmp.c` read for this driver does not.
//!
//! **FIFOs.** 64 bytes each way on the silicon ([`FIFO_DEPTH`]; Linux's `CDNS_UART_FIFO_SIZE`),
//! 16 in QEMU's model (`CADENCE_UART_RX_FIFO_SIZE`, `..._TX_...`). The driver never counts on the
//! depth: it reads the status register (`SR`) before every FIFO access.
//!
//! # Receiving: the interrupt contract with the PD
//!
//! [`CadenceUart::init`] enables the receive interrupts [`RX_IRQS`]: the RX FIFO reached the
//! trigger level ([`ixr::RTRIG`], [`Config::rx_trigger`] bytes), the line went quiet with bytes
//! waiting ([`ixr::TIMEOUT`], after [`Config::rx_timeout`] × 4 bit periods), and the errors
//! counted in [`UartStats`] (overrun [`ixr::ROVR`], framing [`ixr::FRAME`], parity
//! [`ixr::PARE`]). On each notification of the UART's IRQ channel the PD:
//! 1. calls [`CadenceUart::ack_interrupt`]: it reads `ISR` and writes the same value back, which
//!    clears exactly the events it read (`ISR` is write-1-to-clear; an event raised after the
//!    read stays pending: UG1085, "Determine the Source of Interrupt"), and counts the errors;
//! 2. drains [`CadenceUart::recv`] until it returns 0 (it reads while `SR.REMPTY` is clear);
//! 3. answers with [`write`](CadenceUart::write) / [`send`](CadenceUart::send);
//! 4. acknowledges the IRQ channel (`Channel::irq_ack`).
//!
//! The SPI is level-triggered and seL4 keeps it masked until step 4, so a byte that arrives after
//! step 1 raises its event in `ISR` again, the line stays asserted, and the PD is notified again
//! after step 4: nothing is lost. Clearing `ISR` *after* draining instead could throw away the
//! event of a byte that arrived between the last empty check and the clear. On QEMU, whose model
//! re-raises `RTRIG` while the FIFO is at or above the trigger, a burst that reached the trigger
//! costs one extra notification whose drain finds nothing; that is harmless.
//!
//! Per UG1085 ("Receiver Timeout Mechanism") the timeout counter is reloaded by every start bit
//! or by writing `CR.TORST`, and the same section adds that software must write `TORST` "to
//! generate further receive timeout interrupts". The driver never writes it, like Linux's
//! `xilinx_uartps.c` (which defines `CDNS_UART_CR_RST_TO` and does not use it, and whose console
//! receives single keystrokes through this timeout): each new character's start bit re-arms the
//! counter, whereas a `TORST` while the line is idle would only schedule a timeout with no data.
//! That reading of the manual is Linux's practice, not yet checked on a ZCU102 here: if a short
//! request (under [`Config::rx_trigger`] bytes) after an earlier timeout is never delivered on
//! the board, this is the place to look.
//!
//! Errors are counted per acknowledgement that saw them, so [`UartStats`] gives a lower bound (two
//! overruns between acknowledgements count once). The per-byte status register `RXBS` (0x48) is
//! not used: QEMU's model decodes nothing past `TXWM` (0x44), so reading it there is a bus error.
//!
//! # Sending: bounded polling
//!
//! [`CadenceUart::write`] pushes each byte into the TX FIFO once `SR.TFUL` is clear;
//! [`CadenceUart::flush`] waits until the FIFO is empty (`SR.TEMPTY`) and the transmitter idle
//! (`SR.TACTIVE` clear: the last byte left the shift register, Linux's `cdns_uart_tx_empty`).
//! The hardware drains the FIFO on its own at the line rate (no flow control is enabled), so
//! every wait is short unless the device is stuck (transmitter disabled, clock gated): each wait
//! gives up after [`Config::poll_limit`] status reads without progress and reports
//! [`UartError::TxStuck`] (with how many bytes of the call were queued) or
//! [`UartError::FlushStuck`], rather than spin forever. The default ([`poll_limit_for`]) is twice
//! the time a full 64-byte FIFO takes to drain at the configured baud rate, counting each status
//! read as 10 ns. A device read on the A53 crosses the interconnect to the low-power domain and
//! takes longer than that (a dozen cycles at 1.2 GHz; not measured here), so real polls make the
//! bound longer still, never too short: at 115,200 baud, 1,111,111 polls, at least 11 ms. On
//! QEMU a byte leaves the FIFO as soon as the back-end takes it, so the FIFO stays full only
//! while a connected client does not read; after the bound the caller decides whether to retry.
//!
//! # No identity probe
//!
//! The block has no ID register, and reset values prove nothing here: the boot firmware (FSBL,
//! U-Boot) may have programmed the UARTs before any PD runs, and QEMU's reset values have
//! differed from the silicon's (older models reset `BAUDGEN` to 0xF, the silicon to 0x28B).
//! Instead [`CadenceUart::init`] checks two behaviours that both the silicon and QEMU's model
//! have and that memory or an unbacked hole lacks: the soft-reset bits `CR.TXRST`/`CR.RXRST`
//! clear themselves ([`UartError::ResetStuck`] otherwise), and every register it programs reads
//! back what it wrote ([`UartError::NotResponding`] otherwise).
//!
//! # No DMA, no cache maintenance
//!
//! Every byte moves through the FIFO register by the CPU; the device never reads or writes
//! memory, so there are no buffers to share and nothing to clean or invalidate.
//!
//! The registers are reached through [`Registers`], so the same code is tested on the host
//! against a fake register block that models the FIFOs and status bits.

use core::fmt;

/// `CR` (Control): resets, enables, break, timeout restart ([`cr`]).
pub const CR: usize = 0x00;
/// `MR` (Mode): character format, clock select, channel mode ([`mr`]).
pub const MR: usize = 0x04;
/// `IER` (Interrupt Enable): write 1 to set a bit of `IMR` ([`ixr`]).
pub const IER: usize = 0x08;
/// `IDR` (Interrupt Disable): write 1 to clear a bit of `IMR`.
pub const IDR: usize = 0x0C;
/// `IMR` (Interrupt Mask): which events drive the IRQ; read only.
pub const IMR: usize = 0x10;
/// `ISR` (Channel Interrupt Status): events seen; write 1 to clear.
pub const ISR: usize = 0x14;
/// `BAUDGEN` (Baud Rate Generator): CD, 1..=65535.
pub const BAUDGEN: usize = 0x18;
/// `RXTOUT` (Receiver Timeout): RTO in units of 4 bit periods, 0 disables.
pub const RXTOUT: usize = 0x1C;
/// `RXWM` (Receiver FIFO Trigger Level): RTRIG, 1..=63 (6 bits), 0 disables.
pub const RXWM: usize = 0x20;
/// `MODEMCR` (Modem Control); not used.
pub const MODEMCR: usize = 0x24;
/// `MODEMSR` (Modem Status); not used.
pub const MODEMSR: usize = 0x28;
/// `SR` (Channel Status): live FIFO and transmitter state ([`sr`]).
pub const SR: usize = 0x2C;
/// `FIFO` (Transmit and Receive FIFO): write pushes a byte to TX, read pops one from RX.
pub const FIFO: usize = 0x30;
/// `BAUDDIV` (Baud Rate Divider): BDIV, 4..=255.
pub const BAUDDIV: usize = 0x34;
/// `FLOWDEL` (Flow Control Delay); not used.
pub const FLOWDEL: usize = 0x38;
/// `TXWM` (Transmitter FIFO Trigger Level); not used.
pub const TXWM: usize = 0x44;
/// `RXBS` (Receiver FIFO Byte Status, r1p12); not used (QEMU's model does not decode it).
pub const RXBS: usize = 0x48;
/// Bytes of the register block (one page).
pub const BLOCK: usize = 0x1000;

/// Bytes each FIFO holds on the silicon (QEMU's model holds 16).
pub const FIFO_DEPTH: usize = 64;
/// ZCU102 UART0 registers (the debug console).
pub const ZCU102_UART0_PADDR: u64 = 0xFF00_0000;
/// ZCU102 UART0 interrupt ID (SPI 21).
pub const ZCU102_UART0_IRQ: u32 = 32 + 21;
/// ZCU102 UART1 registers (the client wire).
pub const ZCU102_UART1_PADDR: u64 = 0xFF01_0000;
/// ZCU102 UART1 interrupt ID (SPI 22), for system.xml's `<irq irq="54">`.
pub const ZCU102_UART1_IRQ: u32 = 32 + 22;
/// The ZCU102's UART reference clock (see the module documentation).
pub const ZCU102_UART_REF_CLK_HZ: u32 = 100_000_000;

/// `CR` bits.
pub mod cr {
    /// Software reset of the receive path (clears itself).
    pub const RXRST: u32 = 1 << 0;
    /// Software reset of the transmit path (clears itself).
    pub const TXRST: u32 = 1 << 1;
    /// Receiver enable.
    pub const RX_EN: u32 = 1 << 2;
    /// Receiver disable (wins over `RX_EN`).
    pub const RX_DIS: u32 = 1 << 3;
    /// Transmitter enable.
    pub const TX_EN: u32 = 1 << 4;
    /// Transmitter disable (wins over `TX_EN`).
    pub const TX_DIS: u32 = 1 << 5;
    /// Restart the receiver timeout counter.
    pub const TORST: u32 = 1 << 6;
    /// Start transmitting a break.
    pub const STTBRK: u32 = 1 << 7;
    /// Stop transmitting a break (set at reset).
    pub const STPBRK: u32 = 1 << 8;
}

/// `MR` fields.
pub mod mr {
    /// `CLKS`: the baud rate generator runs from `UART_REF_CLK` / 8.
    pub const CLKS: u32 = 1 << 0;
    /// `CHRL` (bits 2:1): `0b0x` is 8 data bits.
    pub const CHRL_8: u32 = 0b00 << 1;
    /// `PAR` (bits 5:3): `0b1xx` is no parity.
    pub const PAR_NONE: u32 = 0b100 << 3;
    /// `NBSTOP` (bits 7:6): `0b00` is 1 stop bit.
    pub const NBSTOP_1: u32 = 0b00 << 6;
    /// `CHMODE` (bits 9:8): `0b00` is normal mode (no echo, no loopback).
    pub const CHMODE_NORMAL: u32 = 0b00 << 8;
    /// The fields this driver programs (bits 9:0).
    pub const MASK: u32 = 0x3FF;
    /// 8 data bits, no parity, 1 stop bit, normal mode, `UART_REF_CLK` undivided.
    pub const MODE_8N1: u32 = CHRL_8 | PAR_NONE | NBSTOP_1 | CHMODE_NORMAL;
}

/// Bits of `IER`, `IDR`, `IMR` and `ISR` (one layout for all four).
pub mod ixr {
    /// RX FIFO at or above the trigger level (`RXWM`).
    pub const RTRIG: u32 = 1 << 0;
    /// RX FIFO empty.
    pub const REMPTY: u32 = 1 << 1;
    /// RX FIFO full.
    pub const RFUL: u32 = 1 << 2;
    /// TX FIFO empty.
    pub const TEMPTY: u32 = 1 << 3;
    /// TX FIFO full.
    pub const TFUL: u32 = 1 << 4;
    /// Receiver overflow: a byte arrived with the RX FIFO full and was lost.
    pub const ROVR: u32 = 1 << 5;
    /// Receiver framing error (no stop bit where one belongs; also a break).
    pub const FRAME: u32 = 1 << 6;
    /// Receiver parity error.
    pub const PARE: u32 = 1 << 7;
    /// Receiver timeout: the line was idle for `RXTOUT` × 4 bit periods.
    pub const TIMEOUT: u32 = 1 << 8;
    /// Modem status change.
    pub const DMSI: u32 = 1 << 9;
    /// TX FIFO at or above its trigger level.
    pub const TTRIG: u32 = 1 << 10;
    /// TX FIFO nearly full.
    pub const TNFUL: u32 = 1 << 11;
    /// TX FIFO overflow: a byte was written with the TX FIFO full.
    pub const TOVR: u32 = 1 << 12;
    /// Receiver break detect (r1p12).
    pub const RBRK: u32 = 1 << 13;
    /// Every defined bit.
    pub const ALL: u32 = 0x3FFF;
}

/// `SR` bits (the live state; `ISR` latches the events).
pub mod sr {
    /// RX FIFO at or above the trigger level.
    pub const RTRIG: u32 = 1 << 0;
    /// RX FIFO empty (Linux: `CDNS_UART_SR_RXEMPTY`).
    #[doc(alias = "RXEMPTY")]
    pub const REMPTY: u32 = 1 << 1;
    /// RX FIFO full.
    #[doc(alias = "RXFULL")]
    pub const RFUL: u32 = 1 << 2;
    /// TX FIFO empty (Linux: `CDNS_UART_SR_TXEMPTY`).
    #[doc(alias = "TXEMPTY")]
    pub const TEMPTY: u32 = 1 << 3;
    /// TX FIFO full (Linux: `CDNS_UART_SR_TXFULL`).
    #[doc(alias = "TXFULL")]
    pub const TFUL: u32 = 1 << 4;
    /// Receiver active.
    pub const RACTIVE: u32 = 1 << 10;
    /// Transmitter active: a character is being shifted out.
    pub const TACTIVE: u32 = 1 << 11;
    /// RX FIFO at or above the flow delay level.
    pub const FDELT: u32 = 1 << 12;
    /// TX FIFO at or above its trigger level.
    pub const TTRIG: u32 = 1 << 13;
    /// TX FIFO nearly full.
    pub const TNFUL: u32 = 1 << 14;
}

/// The interrupts [`CadenceUart::init`] enables: data to read, and the errors to count.
pub const RX_IRQS: u32 = ixr::RTRIG | ixr::TIMEOUT | ixr::ROVR | ixr::FRAME | ixr::PARE;

/// Baud rate error refused by [`Divisors::for_baud`], in tenths of a percent: an 8N1 receiver
/// tolerates roughly 5 % between the two ends' clocks, so each end keeps well under half of it.
pub const MAX_BAUD_ERROR_PERMILLE: u64 = 20;

/// The default poll bound for `baud` (see the module documentation): twice the time a full
/// [`FIFO_DEPTH`]-byte FIFO of 10-bit (8N1) characters takes to leave at `baud`, in polls of
/// 10 ns; at least 1,000.
pub const fn poll_limit_for(baud: u32) -> u32 {
    if baud == 0 {
        return u32::MAX;
    }
    // 2 × 64 characters × 10 bits / baud seconds, / 10 ns per poll.
    let polls = 2 * FIFO_DEPTH as u64 * 10 * 100_000_000 / baud as u64;
    if polls > u32::MAX as u64 {
        u32::MAX
    } else if polls < 1_000 {
        1_000
    } else {
        polls as u32
    }
}

/// The registers the driver is written against (32-bit only; one trait for every driver:
/// [`crate::mmio`]).
pub use crate::mmio::Registers;

/// A UART error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UartError {
    /// A register lies outside the mapped block (the region is smaller than [`BLOCK`]).
    Register {
        /// The register's offset.
        offset: usize,
    },
    /// No divisors give `baud` from `ref_clk_hz` within [`MAX_BAUD_ERROR_PERMILLE`].
    BaudUnreachable {
        /// The reference clock, Hz.
        ref_clk_hz: u32,
        /// The requested rate.
        baud: u32,
    },
    /// A [`Config`] field is out of range.
    InvalidConfig(&'static str),
    /// `CR.TXRST`/`CR.RXRST` did not clear within the poll bound: not a working Cadence UART.
    ResetStuck,
    /// A register did not read back what [`CadenceUart::init`] wrote: not a working Cadence UART.
    NotResponding {
        /// The register's offset.
        offset: usize,
        /// The value written (masked to the field).
        wrote: u32,
        /// The value read back (masked the same way).
        read: u32,
    },
    /// The TX FIFO stayed full for the poll bound; `sent` bytes of the call were queued first.
    TxStuck {
        /// Bytes of this `write` in the FIFO before it gave up (the caller may retry the rest).
        sent: usize,
    },
    /// The transmitter did not finish within the poll bound.
    FlushStuck,
}

impl fmt::Display for UartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Register { offset } => {
                write!(
                    f,
                    "cadence-uart: register {offset:#x} is outside the mapped block"
                )
            }
            Self::BaudUnreachable { ref_clk_hz, baud } => write!(
                f,
                "cadence-uart: no divisors give {baud} baud from a {ref_clk_hz} Hz reference clock"
            ),
            Self::InvalidConfig(why) => write!(f, "cadence-uart: invalid configuration: {why}"),
            Self::ResetStuck => f.write_str("cadence-uart: the soft reset did not complete"),
            Self::NotResponding {
                offset,
                wrote,
                read,
            } => write!(
                f,
                "cadence-uart: register {offset:#x} reads {read:#x} after {wrote:#x} was written"
            ),
            Self::TxStuck { sent } => write!(
                f,
                "cadence-uart: the transmit FIFO stayed full ({sent} bytes of the write queued)"
            ),
            Self::FlushStuck => f.write_str("cadence-uart: the transmitter did not drain"),
        }
    }
}

/// Baud rate divisors: baud = sel_clk / (CD × (BDIV + 1)), sel_clk = `UART_REF_CLK`, or
/// `UART_REF_CLK` / 8 with `MR.CLKS` (UG1085, "Baud Rate Generator").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Divisors {
    /// `BAUDGEN.CD`, 1..=65535.
    pub cd: u16,
    /// `BAUDDIV.BDIV`, 4..=255.
    pub bdiv: u8,
    /// `MR.CLKS`: divide the reference clock by 8 first (only for rates below
    /// `UART_REF_CLK` / (256 × 65,535), under 6 baud at 100 MHz).
    pub clks: bool,
}

impl Divisors {
    /// The divisors closest to `baud` from a `ref_clk_hz` reference clock: for each BDIV from
    /// 4 to 255 the nearest CD, keeping the first pair with the smallest error (the search of
    /// Linux's `cdns_uart_calc_baud_divs`, so both program the same values). Refused if even
    /// the best is off by [`MAX_BAUD_ERROR_PERMILLE`] or more.
    pub fn for_baud(ref_clk_hz: u32, baud: u32) -> Result<Divisors, UartError> {
        let unreachable = UartError::BaudUnreachable { ref_clk_hz, baud };
        if ref_clk_hz == 0 || baud == 0 {
            return Err(unreachable);
        }
        let want = u64::from(baud);
        let mut sel = u64::from(ref_clk_hz);
        let clks = want * 256 * 65_535 < sel;
        if clks {
            sel /= 8;
        }
        let mut best: Option<(u64, u64, u64)> = None;
        for bdiv in 4..=255u64 {
            let per_cd = want * (bdiv + 1);
            let cd = (sel + per_cd / 2) / per_cd;
            if !(1..=65_535).contains(&cd) {
                continue;
            }
            let error = (sel / (cd * (bdiv + 1))).abs_diff(want);
            if best.is_none_or(|(_, _, e)| error < e) {
                best = Some((cd, bdiv, error));
            }
        }
        let (cd, bdiv, error) = best.ok_or(unreachable)?;
        if error * 1000 >= want * MAX_BAUD_ERROR_PERMILLE {
            return Err(unreachable);
        }
        Ok(Divisors {
            cd: u16::try_from(cd).map_err(|_| unreachable)?,
            bdiv: u8::try_from(bdiv).map_err(|_| unreachable)?,
            clks,
        })
    }

    /// The rate these divisors give from `ref_clk_hz` (rounded down).
    pub fn baud(&self, ref_clk_hz: u32) -> u32 {
        let sel = u64::from(ref_clk_hz) / if self.clks { 8 } else { 1 };
        let div = u64::from(self.cd) * (u64::from(self.bdiv) + 1);
        u32::try_from(sel / div.max(1)).unwrap_or(u32::MAX)
    }
}

/// How [`CadenceUart::init`] programs the block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// `UART_REF_CLK`, Hz.
    pub ref_clk_hz: u32,
    /// Line rate; the format is always 8N1.
    pub baud: u32,
    /// `RXWM`: RX FIFO level that raises [`ixr::RTRIG`], 1..=63.
    pub rx_trigger: u8,
    /// `RXTOUT`: idle time, in 4-bit-period units, that raises [`ixr::TIMEOUT`], 1..=255.
    pub rx_timeout: u8,
    /// Status reads a wait makes without progress before it reports a stuck device (≥ 1).
    pub poll_limit: u32,
}

impl Config {
    /// The ZCU102's UART1 as the client wire: 100 MHz reference clock, 115,200 baud 8N1;
    /// trigger at 16 bytes, the most QEMU's 16-byte FIFO can reach, which leaves 48 bytes of
    /// the silicon's FIFO (4.2 ms at 115,200 baud) for the PD to be scheduled; timeout after 10
    /// units, 40 bit periods (about 4 characters, 0.35 ms), Linux's default `rx_timeout`; poll
    /// bound [`poll_limit_for`] 115,200.
    pub const ZCU102: Config = Config {
        ref_clk_hz: ZCU102_UART_REF_CLK_HZ,
        baud: 115_200,
        rx_trigger: 16,
        rx_timeout: 10,
        poll_limit: poll_limit_for(115_200),
    };
}

impl Default for Config {
    fn default() -> Self {
        Self::ZCU102
    }
}

/// Counters, for the PD and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UartStats {
    /// Bytes read from the RX FIFO.
    pub bytes_in: u64,
    /// Bytes written to the TX FIFO.
    pub bytes_out: u64,
    /// Acknowledgements that found a receive event pending.
    pub interrupts: u64,
    /// Acknowledgements that found an RX overflow (bytes lost; a lower bound on overflows).
    pub overruns: u64,
    /// Acknowledgements that found a framing error (or a break).
    pub framing_errors: u64,
    /// Acknowledgements that found a parity error (none with 8N1, counted all the same).
    pub parity_errors: u64,
    /// Waits that gave up ([`UartError::TxStuck`], [`UartError::FlushStuck`]).
    pub stalls: u64,
}

/// A Cadence UART set up by [`CadenceUart::init`].
pub struct CadenceUart<R: Registers> {
    regs: R,
    config: Config,
    divisors: Divisors,
    stats: UartStats,
}

impl<R: Registers> fmt::Debug for CadenceUart<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CadenceUart")
            .field("config", &self.config)
            .field("divisors", &self.divisors)
            .field("stats", &self.stats)
            .finish()
    }
}

fn read<R: Registers>(regs: &R, offset: usize) -> Result<u32, UartError> {
    regs.read32(offset).ok_or(UartError::Register { offset })
}

fn write<R: Registers>(regs: &R, offset: usize, value: u32) -> Result<(), UartError> {
    regs.write32(offset, value)
        .ok_or(UartError::Register { offset })
}

/// Reads `offset` and checks the field `mask` holds `want`.
fn read_back<R: Registers>(regs: &R, offset: usize, mask: u32, want: u32) -> Result<(), UartError> {
    let got = read(regs, offset)? & mask;
    if got != want & mask {
        return Err(UartError::NotResponding {
            offset,
            wrote: want & mask,
            read: got,
        });
    }
    Ok(())
}

/// Reads `offset` until `done` holds, at most `limit` times; whether it did.
fn poll<R: Registers>(
    regs: &R,
    offset: usize,
    limit: u32,
    done: impl Fn(u32) -> bool,
) -> Result<bool, UartError> {
    for _ in 0..limit {
        if done(read(regs, offset)?) {
            return Ok(true);
        }
        core::hint::spin_loop();
    }
    Ok(false)
}

impl<R: Registers> CadenceUart<R> {
    /// Programs the UART at `regs` as `config` says and checks that it behaves like one (see
    /// "No identity probe" in the module documentation). In order: every interrupt masked
    /// (`IDR`), receiver and transmitter disabled (`CR`), 8N1 and the clock select (`MR`), the
    /// divisors (`BAUDGEN`, `BAUDDIV`) — UG1085 requires both paths disabled while those change
    /// and soft-reset before they are enabled — then the soft reset of both paths (`CR.TXRST |
    /// CR.RXRST`, waited for; it also empties both FIFOs), `RXWM`, `RXTOUT`, each of those read
    /// back, both paths enabled, stale events cleared (`ISR`), the receive interrupts
    /// [`RX_IRQS`] enabled (`IER`) and `IMR` read back. A block that fails a check is left with
    /// both paths disabled and every interrupt masked.
    pub fn init(regs: R, config: Config) -> Result<Self, UartError> {
        if !(1..=63).contains(&config.rx_trigger) {
            return Err(UartError::InvalidConfig("rx_trigger must be 1..=63"));
        }
        if config.rx_timeout == 0 {
            return Err(UartError::InvalidConfig(
                "rx_timeout must be 1..=255 (0 would leave bytes below the trigger waiting)",
            ));
        }
        if config.poll_limit == 0 {
            return Err(UartError::InvalidConfig("poll_limit must be at least 1"));
        }
        let divisors = Divisors::for_baud(config.ref_clk_hz, config.baud)?;
        let mode = mr::MODE_8N1 | if divisors.clks { mr::CLKS } else { 0 };

        write(&regs, IDR, ixr::ALL)?;
        write(&regs, CR, cr::RX_DIS | cr::TX_DIS | cr::STPBRK)?;
        write(&regs, MR, mode)?;
        write(&regs, BAUDGEN, u32::from(divisors.cd))?;
        write(&regs, BAUDDIV, u32::from(divisors.bdiv))?;
        write(
            &regs,
            CR,
            cr::TXRST | cr::RXRST | cr::RX_DIS | cr::TX_DIS | cr::STPBRK,
        )?;
        let reset_done = poll(&regs, CR, config.poll_limit, |v| {
            v & (cr::TXRST | cr::RXRST) == 0
        })?;
        if !reset_done {
            return Err(UartError::ResetStuck);
        }
        write(&regs, RXWM, u32::from(config.rx_trigger))?;
        write(&regs, RXTOUT, u32::from(config.rx_timeout))?;
        // Checked while both paths are still disabled, so a block that fails is left quiet.
        read_back(&regs, MR, mr::MASK, mode)?;
        read_back(&regs, BAUDGEN, 0xFFFF, u32::from(divisors.cd))?;
        read_back(&regs, BAUDDIV, 0xFF, u32::from(divisors.bdiv))?;
        read_back(&regs, RXWM, 0x3F, u32::from(config.rx_trigger))?;
        read_back(&regs, RXTOUT, 0xFF, u32::from(config.rx_timeout))?;
        write(&regs, CR, cr::RX_EN | cr::TX_EN | cr::STPBRK)?;
        write(&regs, ISR, ixr::ALL)?;
        write(&regs, IER, RX_IRQS)?;
        if let Err(e) = read_back(&regs, IMR, ixr::ALL, RX_IRQS) {
            // Leave it masked and disabled, as it was found wanting.
            write(&regs, IDR, ixr::ALL)?;
            write(&regs, CR, cr::RX_DIS | cr::TX_DIS | cr::STPBRK)?;
            return Err(e);
        }
        Ok(CadenceUart {
            regs,
            config,
            divisors,
            stats: UartStats::default(),
        })
    }

    /// The configuration it was set up with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The divisors programmed.
    pub fn divisors(&self) -> Divisors {
        self.divisors
    }

    /// Counters so far.
    pub fn stats(&self) -> UartStats {
        self.stats
    }

    /// Acknowledges the UART's events: reads `ISR`, writes the value back (clearing exactly
    /// those events), counts the errors among them; whether a receive event ([`RX_IRQS`]) was
    /// pending. Call it first when the IRQ channel is notified, then drain
    /// [`recv`](Self::recv), then acknowledge the IRQ channel (see the module documentation).
    pub fn ack_interrupt(&mut self) -> Result<bool, UartError> {
        let isr = read(&self.regs, ISR)?;
        if isr != 0 {
            write(&self.regs, ISR, isr)?;
        }
        let pending = isr & RX_IRQS;
        if pending & ixr::ROVR != 0 {
            self.stats.overruns += 1;
        }
        if pending & ixr::FRAME != 0 {
            self.stats.framing_errors += 1;
        }
        if pending & ixr::PARE != 0 {
            self.stats.parity_errors += 1;
        }
        if pending != 0 {
            self.stats.interrupts += 1;
        }
        Ok(pending != 0)
    }

    /// Copies received bytes into `buf` while the RX FIFO has any, without waiting: how many
    /// (0 if none are waiting or `buf` is empty).
    pub fn recv(&mut self, buf: &mut [u8]) -> Result<usize, UartError> {
        let mut n = 0;
        for slot in buf.iter_mut() {
            if read(&self.regs, SR)? & sr::REMPTY != 0 {
                break;
            }
            // The data is the low byte of the FIFO register.
            *slot = (read(&self.regs, FIFO)? & 0xFF) as u8;
            n += 1;
        }
        self.stats.bytes_in += n as u64;
        Ok(n)
    }

    /// Pushes `bytes` into the TX FIFO, waiting while it is full; the hardware sends them on
    /// its own. [`UartError::TxStuck`] if the FIFO stays full for [`Config::poll_limit`] polls.
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), UartError> {
        let room = |s: u32| s & sr::TFUL == 0;
        for (sent, &b) in bytes.iter().enumerate() {
            if !poll(&self.regs, SR, self.config.poll_limit, room)? {
                self.stats.stalls += 1;
                return Err(UartError::TxStuck { sent });
            }
            write(&self.regs, FIFO, u32::from(b))?;
            self.stats.bytes_out += 1;
        }
        Ok(())
    }

    /// Waits until every queued byte has left: TX FIFO empty and transmitter idle.
    /// [`UartError::FlushStuck`] if that takes more than [`Config::poll_limit`] polls.
    pub fn flush(&mut self) -> Result<(), UartError> {
        let idle = |s: u32| s & (sr::TEMPTY | sr::TACTIVE) == sr::TEMPTY;
        if !poll(&self.regs, SR, self.config.poll_limit, idle)? {
            self.stats.stalls += 1;
            return Err(UartError::FlushStuck);
        }
        Ok(())
    }

    /// Sends `bytes` now ([`write`](Self::write) then [`flush`](Self::flush)).
    pub fn send(&mut self, bytes: &[u8]) -> Result<(), UartError> {
        self.write(bytes)?;
        self.flush()
    }
}

/// Text goes to the TX FIFO ([`CadenceUart::write`]); the hardware sends it without a flush.
impl<R: Registers> fmt::Write for CadenceUart<R> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.write(s.as_bytes()).map_err(|_| fmt::Error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::fmt::Write as _;
    use std::{
        cell::{Cell, RefCell},
        collections::VecDeque,
    };

    /// A short poll bound, so a stuck fake fails fast.
    const POLLS: u32 = 500;

    fn config() -> Config {
        Config {
            poll_limit: POLLS,
            ..Config::ZCU102
        }
    }

    /// A model of the register block: RX and TX FIFOs of `depth` bytes, `ISR` write-1-to-clear,
    /// `IER`/`IDR` setting and clearing `IMR`, `SR` computed from the FIFOs, `CR`'s reset bits
    /// emptying a FIFO and clearing themselves. Time passes only when the driver reads `SR`:
    /// each read moves up to `drain` bytes from the TX FIFO to the line, and the transmitter
    /// shows `TACTIVE` for the read that moved the last of them.
    struct Fake {
        depth: usize,
        /// Plain read/write registers (CR, MR, BAUDGEN, RXTOUT, RXWM, BAUDDIV, TXWM, ...).
        regs: RefCell<[u32; RXBS / 4]>,
        imr: Cell<u32>,
        isr: Cell<u32>,
        rx: RefCell<VecDeque<u8>>,
        tx: RefCell<VecDeque<u8>>,
        /// Bytes the transmitter has sent.
        line: RefCell<Vec<u8>>,
        drain: Cell<usize>,
        active: Cell<bool>,
        /// The deepest the TX FIFO got.
        tx_peak: Cell<usize>,
        sr_reads: Cell<u64>,
        last_sr: Cell<u32>,
        /// Every register write, in order.
        writes: RefCell<Vec<(usize, u32)>>,
        /// The reset bits never clear (not a UART).
        reset_sticks: Cell<bool>,
        /// Writes to this register are lost (nothing there).
        deaf: Cell<Option<usize>>,
        /// Events raised just after the driver reads `ISR`.
        late: Cell<u32>,
    }

    impl Fake {
        /// The block as the silicon resets it (CR 0x128, RXWM 0x20, BAUDGEN 0x28B, ...).
        fn new(depth: usize) -> Fake {
            let mut regs = [0; RXBS / 4];
            regs[CR / 4] = cr::STPBRK | cr::TX_DIS | cr::RX_DIS;
            regs[RXWM / 4] = 0x20;
            regs[BAUDGEN / 4] = 0x28B;
            regs[BAUDDIV / 4] = 0xF;
            regs[TXWM / 4] = 0x20;
            Fake {
                depth,
                regs: RefCell::new(regs),
                imr: Cell::new(0),
                isr: Cell::new(0),
                rx: RefCell::new(VecDeque::new()),
                tx: RefCell::new(VecDeque::new()),
                line: RefCell::new(Vec::new()),
                drain: Cell::new(depth),
                active: Cell::new(false),
                tx_peak: Cell::new(0),
                sr_reads: Cell::new(0),
                last_sr: Cell::new(0),
                writes: RefCell::new(Vec::new()),
                reset_sticks: Cell::new(false),
                deaf: Cell::new(None),
                late: Cell::new(0),
            }
        }

        fn reg(&self, offset: usize) -> u32 {
            self.regs.borrow()[offset / 4]
        }

        fn rx_enabled(&self) -> bool {
            let cr = self.reg(CR);
            cr & cr::RX_EN != 0 && cr & cr::RX_DIS == 0
        }

        fn tx_enabled(&self) -> bool {
            let cr = self.reg(CR);
            cr & cr::TX_EN != 0 && cr & cr::TX_DIS == 0
        }

        /// Bytes arriving on the line (dropped while the receiver is disabled).
        fn receive(&self, bytes: &[u8]) {
            if !self.rx_enabled() {
                return;
            }
            let mut rx = self.rx.borrow_mut();
            for &b in bytes {
                if rx.len() == self.depth {
                    self.isr.set(self.isr.get() | ixr::ROVR);
                } else {
                    rx.push_back(b);
                }
                if rx.len() >= self.reg(RXWM) as usize {
                    self.isr.set(self.isr.get() | ixr::RTRIG);
                }
            }
        }

        /// A byte that arrived without its stop bit.
        fn receive_bad_frame(&self, b: u8) {
            self.receive(&[b]);
            self.isr.set(self.isr.get() | ixr::FRAME);
        }

        /// The line stayed quiet for the timeout.
        fn idle(&self) {
            if self.reg(RXTOUT) != 0 {
                self.isr.set(self.isr.get() | ixr::TIMEOUT);
            }
        }

        /// Whether the IRQ line is asserted.
        fn irq(&self) -> bool {
            self.imr.get() & self.isr.get() != 0
        }

        fn tick(&self) {
            let mut tx = self.tx.borrow_mut();
            let mut moved = 0;
            while moved < self.drain.get() {
                let Some(b) = tx.pop_front() else { break };
                self.line.borrow_mut().push(b);
                moved += 1;
            }
            self.active.set(moved > 0);
        }

        fn status(&self) -> u32 {
            let (rx, tx) = (self.rx.borrow().len(), self.tx.borrow().len());
            let mut s = 0;
            if rx >= self.reg(RXWM) as usize && self.reg(RXWM) != 0 {
                s |= sr::RTRIG;
            }
            if rx == 0 {
                s |= sr::REMPTY;
            }
            if rx == self.depth {
                s |= sr::RFUL;
            }
            if tx == 0 {
                s |= sr::TEMPTY;
            }
            if tx == self.depth {
                s |= sr::TFUL;
            }
            if self.active.get() {
                s |= sr::TACTIVE;
            }
            s
        }

        /// Offsets the driver wrote, in order.
        fn written(&self) -> Vec<(usize, u32)> {
            self.writes.borrow().clone()
        }
    }

    impl Registers for &Fake {
        fn read32(&self, offset: usize) -> Option<u32> {
            if !offset.is_multiple_of(4) || offset >= RXBS {
                return None;
            }
            Some(match offset {
                SR => {
                    self.sr_reads.set(self.sr_reads.get() + 1);
                    self.tick();
                    let s = self.status();
                    self.last_sr.set(s);
                    s
                }
                FIFO => {
                    if self.rx_enabled() {
                        self.rx.borrow_mut().pop_front().map_or(0, u32::from)
                    } else {
                        0
                    }
                }
                ISR => {
                    let v = self.isr.get();
                    self.isr.set(v | self.late.take());
                    v
                }
                IMR => self.imr.get(),
                IER | IDR => 0,
                _ => self.reg(offset),
            })
        }

        fn write32(&self, offset: usize, value: u32) -> Option<()> {
            if !offset.is_multiple_of(4) || offset >= RXBS {
                return None;
            }
            self.writes.borrow_mut().push((offset, value));
            if self.deaf.get() == Some(offset) {
                return Some(());
            }
            match offset {
                CR => {
                    if value & cr::TXRST != 0 {
                        self.tx.borrow_mut().clear();
                    }
                    if value & cr::RXRST != 0 {
                        self.rx.borrow_mut().clear();
                    }
                    let keep = if self.reset_sticks.get() {
                        value
                    } else {
                        value & !(cr::TXRST | cr::RXRST)
                    };
                    self.regs.borrow_mut()[CR / 4] = keep;
                }
                IER => self.imr.set(self.imr.get() | (value & ixr::ALL)),
                IDR => self.imr.set(self.imr.get() & !value),
                ISR => self.isr.set(self.isr.get() & !value),
                IMR | SR => {}
                FIFO => {
                    if self.tx_enabled() {
                        let mut tx = self.tx.borrow_mut();
                        if tx.len() < self.depth {
                            tx.push_back(value as u8);
                            self.tx_peak.set(self.tx_peak.get().max(tx.len()));
                        } else {
                            self.isr.set(self.isr.get() | ixr::TOVR);
                        }
                    }
                }
                _ => self.regs.borrow_mut()[offset / 4] = value,
            }
            Some(())
        }
    }

    fn uart(f: &Fake) -> CadenceUart<&Fake> {
        CadenceUart::init(f, config()).expect("init")
    }

    #[test]
    fn divisors_for_the_zcu102_and_qemu_clocks() {
        // 100 MHz / (124 × 7) = 115,207.37: the pair Linux and Xilinx's driver program too.
        let d = Divisors::for_baud(100_000_000, 115_200).unwrap();
        assert_eq!(
            d,
            Divisors {
                cd: 124,
                bdiv: 6,
                clks: false
            }
        );
        assert_eq!(d.baud(100_000_000), 115_207);
        // QEMU's default 50 MHz: 50 MHz / (62 × 7).
        let q = Divisors::for_baud(50_000_000, 115_200).unwrap();
        assert_eq!((q.cd, q.bdiv, q.clks), (62, 6, false));
        assert_eq!(q.baud(50_000_000), 115_207);
        // What the ZCU102 configuration programs.
        let f = Fake::new(FIFO_DEPTH);
        let u = CadenceUart::init(&f, Config::ZCU102).unwrap();
        assert_eq!(u.divisors(), d);
        assert_eq!((f.reg(BAUDGEN), f.reg(BAUDDIV)), (124, 6));
    }

    #[test]
    fn divisors_cover_common_rates_and_refuse_impossible_ones() {
        for baud in [
            9_600, 19_200, 38_400, 57_600, 115_200, 230_400, 460_800, 921_600,
        ] {
            let d = Divisors::for_baud(100_000_000, baud).unwrap();
            assert!((4..=255).contains(&d.bdiv) && d.cd >= 1, "{baud}: {d:?}");
            let got = d.baud(100_000_000);
            // 921,600 is the one common rate 100 MHz divides badly (917,431, 0.45 % slow).
            assert!(got.abs_diff(baud) * 1000 < baud * 5, "{baud}: {got}");
            // No other pair is closer (the search is exhaustive over BDIV).
            for bdiv in 4..=255u32 {
                for cd in 1..=65_535u32 {
                    let other = 100_000_000 / (cd * (bdiv + 1));
                    if other.abs_diff(baud) < got.abs_diff(baud) {
                        panic!("{baud}: cd {cd} bdiv {bdiv} gives {other}, closer than {got}");
                    }
                    if other < baud / 2 {
                        break;
                    }
                }
            }
        }
        // Below 100 MHz / (256 × 65,535), about 6 baud, only the /8 clock reaches.
        let slow = Divisors::for_baud(100_000_000, 2).unwrap();
        assert!(slow.clks);
        assert_eq!(slow.baud(100_000_000), 2);
        // Faster than 100 MHz / 5, no rate, and no clock.
        for (clk, baud) in [(100_000_000, 30_000_000), (100_000_000, 0), (0, 115_200)] {
            assert_eq!(
                Divisors::for_baud(clk, baud),
                Err(UartError::BaudUnreachable {
                    ref_clk_hz: clk,
                    baud
                })
            );
        }
        // 18 Mbaud from 100 MHz needs CD × (BDIV + 1) = 5.56: 5 gives 20 Mbaud, 6 gives 16.7,
        // both over 7 % off: refused. (3 Mbaud is reachable: 3 × 11 gives 3.03, 1 % fast.)
        assert!(Divisors::for_baud(100_000_000, 18_000_000).is_err());
        let d = Divisors::for_baud(100_000_000, 3_000_000).unwrap();
        assert_eq!(d.baud(100_000_000), 3_030_303);
    }

    #[test]
    fn poll_limit_covers_twice_a_full_fifo() {
        // 64 × 10 bits at 115,200 baud = 5.56 ms; twice that in 10 ns polls.
        assert_eq!(poll_limit_for(115_200), 1_111_111);
        assert_eq!(Config::ZCU102.poll_limit, 1_111_111);
        assert_eq!(poll_limit_for(9_600), 13_333_333);
        assert_eq!(poll_limit_for(0), u32::MAX);
        assert_eq!(poll_limit_for(1), u32::MAX);
        assert_eq!(poll_limit_for(u32::MAX), 1_000);
    }

    #[test]
    fn init_programs_the_block_in_order() {
        let f = Fake::new(FIFO_DEPTH);
        let u = uart(&f);
        let dis = cr::RX_DIS | cr::TX_DIS | cr::STPBRK;
        assert_eq!(
            f.written(),
            vec![
                (IDR, ixr::ALL),
                (CR, dis),
                (MR, mr::PAR_NONE),
                (BAUDGEN, 124),
                (BAUDDIV, 6),
                (CR, cr::TXRST | cr::RXRST | dis),
                (RXWM, 16),
                (RXTOUT, 10),
                (CR, cr::RX_EN | cr::TX_EN | cr::STPBRK),
                (ISR, ixr::ALL),
                (IER, RX_IRQS),
            ]
        );
        assert_eq!(RX_IRQS, 0x1E1, "RTRIG | ROVR | FRAME | PARE | TIMEOUT");
        assert_eq!(mr::MODE_8N1, 0x20, "8 bits, no parity, 1 stop bit, normal");
        assert_eq!(f.imr.get(), RX_IRQS);
        assert!(f.rx_enabled() && f.tx_enabled());
        assert_eq!(u.stats(), UartStats::default());
        assert_eq!(u.config(), &config());
    }

    #[test]
    fn init_discards_what_the_firmware_left() {
        let f = Fake::new(FIFO_DEPTH);
        // Firmware had the port running: bytes waiting, events latched, its interrupts enabled.
        f.regs.borrow_mut()[CR / 4] = cr::RX_EN | cr::TX_EN;
        f.receive(b"stale");
        f.tx.borrow_mut().extend(b"half-sent");
        f.drain.set(0);
        f.isr.set(ixr::ROVR | ixr::TEMPTY | ixr::RTRIG);
        f.imr.set(ixr::TEMPTY | ixr::TTRIG);
        let mut u = uart(&f);
        assert!(f.rx.borrow().is_empty() && f.tx.borrow().is_empty());
        assert_eq!(f.isr.get(), 0);
        assert_eq!(f.imr.get(), RX_IRQS, "only the receive interrupts");
        assert!(!f.irq());
        let mut buf = [0; 16];
        assert_eq!(u.recv(&mut buf).unwrap(), 0);
        assert!(!u.ack_interrupt().unwrap());
        assert_eq!(u.stats().overruns, 0, "the firmware's overrun is not ours");
    }

    #[test]
    fn init_refuses_what_is_not_a_uart() {
        // Memory: the reset bits stay set.
        let f = Fake::new(FIFO_DEPTH);
        f.reset_sticks.set(true);
        assert_eq!(
            CadenceUart::init(&f, config()).unwrap_err(),
            UartError::ResetStuck
        );
        let dis = cr::RX_DIS | cr::TX_DIS | cr::STPBRK;
        assert_eq!(f.written().len(), 6, "it stopped at the reset");
        assert_eq!(f.written()[5], (CR, cr::TXRST | cr::RXRST | dis));
        // A hole where RXWM should be.
        let f = Fake::new(FIFO_DEPTH);
        f.deaf.set(Some(RXWM));
        assert_eq!(
            CadenceUart::init(&f, config()).unwrap_err(),
            UartError::NotResponding {
                offset: RXWM,
                wrote: 16,
                read: 0x20
            }
        );
        assert!(
            !f.rx_enabled() && !f.tx_enabled() && f.imr.get() == 0,
            "left quiet"
        );
        // The interrupt mask does not take.
        let f = Fake::new(FIFO_DEPTH);
        f.deaf.set(Some(IER));
        assert!(matches!(
            CadenceUart::init(&f, config()),
            Err(UartError::NotResponding { offset: IMR, .. })
        ));
        assert!(!f.rx_enabled() && !f.tx_enabled(), "disabled again");
        assert_eq!(
            f.written().last(),
            Some(&(CR, cr::RX_DIS | cr::TX_DIS | cr::STPBRK))
        );
        // An interrupt mask with extra bits set (IDR does not take) is refused too.
        let f = Fake::new(FIFO_DEPTH);
        f.imr.set(ixr::TEMPTY);
        f.deaf.set(Some(IDR));
        assert!(matches!(
            CadenceUart::init(&f, config()),
            Err(UartError::NotResponding { offset: IMR, .. })
        ));
        // A block too small: the first register past it is reported.
        struct Short;
        impl Registers for Short {
            fn read32(&self, offset: usize) -> Option<u32> {
                (offset < BAUDGEN).then_some(0)
            }
            fn write32(&self, offset: usize, _: u32) -> Option<()> {
                (offset < BAUDGEN).then_some(())
            }
        }
        assert_eq!(
            CadenceUart::init(Short, config()).unwrap_err(),
            UartError::Register { offset: BAUDGEN }
        );
    }

    #[test]
    fn init_rejects_bad_configurations() {
        for bad in [
            Config {
                rx_trigger: 0,
                ..config()
            },
            Config {
                rx_trigger: 64,
                ..config()
            },
            Config {
                rx_timeout: 0,
                ..config()
            },
            Config {
                poll_limit: 0,
                ..config()
            },
        ] {
            let f = Fake::new(FIFO_DEPTH);
            assert!(matches!(
                CadenceUart::init(&f, bad),
                Err(UartError::InvalidConfig(_))
            ));
            assert!(f.written().is_empty(), "refused before touching the block");
        }
        let f = Fake::new(FIFO_DEPTH);
        assert!(matches!(
            CadenceUart::init(
                &f,
                Config {
                    baud: 40_000_000,
                    ..config()
                }
            ),
            Err(UartError::BaudUnreachable { .. })
        ));
    }

    #[test]
    fn recv_drains_exactly_what_is_there() {
        let f = Fake::new(FIFO_DEPTH);
        let mut u = uart(&f);
        let mut buf = [0u8; 100];
        assert_eq!(u.recv(&mut buf).unwrap(), 0);
        f.receive(b"hello");
        assert_eq!(u.recv(&mut buf).unwrap(), 5);
        assert_eq!(&buf[..5], b"hello");
        assert_eq!(u.recv(&mut buf).unwrap(), 0);
        // A full FIFO, read in pieces smaller than it.
        let full: Vec<u8> = (0..64).collect();
        f.receive(&full);
        let mut got = Vec::new();
        let mut small = [0u8; 20];
        loop {
            let n = u.recv(&mut small).unwrap();
            assert!(n <= 20);
            if n == 0 {
                break;
            }
            got.extend_from_slice(&small[..n]);
        }
        assert_eq!(got, full);
        assert_eq!(u.recv(&mut []).unwrap(), 0, "an empty buffer reads nothing");
        assert_eq!(u.stats().bytes_in, 69);
        assert!(f.rx.borrow().is_empty());
    }

    #[test]
    fn overrun_is_counted_and_the_fifo_keeps_its_64() {
        let f = Fake::new(FIFO_DEPTH);
        let mut u = uart(&f);
        let input: Vec<u8> = (0..70).collect();
        f.receive(&input);
        assert!(f.irq());
        assert!(u.ack_interrupt().unwrap());
        assert!(!f.irq());
        let s = u.stats();
        assert_eq!((s.overruns, s.interrupts, s.framing_errors), (1, 1, 0));
        let mut buf = [0u8; 100];
        assert_eq!(u.recv(&mut buf).unwrap(), 64);
        assert_eq!(
            &buf[..64],
            &input[..64],
            "the first 64 bytes, in order; 6 lost"
        );
        // Nothing new: no further overrun counted.
        assert!(!u.ack_interrupt().unwrap());
        assert_eq!(u.stats().overruns, 1);
    }

    #[test]
    fn ack_clears_isr_and_keeps_later_events() {
        let f = Fake::new(FIFO_DEPTH);
        let mut u = uart(&f);
        // Below the trigger: no interrupt until the line goes quiet.
        f.receive(b"abc");
        assert!(!f.irq());
        f.idle();
        assert!(f.irq());
        // An overrun raised between the driver's read of ISR and its write-back survives.
        f.late.set(ixr::ROVR);
        assert!(u.ack_interrupt().unwrap());
        assert_eq!(
            f.isr.get(),
            ixr::ROVR,
            "TIMEOUT cleared, the later ROVR kept"
        );
        assert!(f.irq(), "so the IRQ stays asserted for the next round");
        assert_eq!(u.stats().overruns, 0);
        assert!(u.ack_interrupt().unwrap());
        assert_eq!(u.stats().overruns, 1);
        assert_eq!(f.isr.get(), 0);
        assert!(!u.ack_interrupt().unwrap(), "nothing pending");
        assert_eq!(u.stats().interrupts, 2);
        let mut buf = [0u8; 8];
        assert_eq!(u.recv(&mut buf).unwrap(), 3);
        // Events outside RX_IRQS are cleared but not reported.
        f.isr.set(ixr::TEMPTY | ixr::REMPTY);
        assert!(!u.ack_interrupt().unwrap());
        assert_eq!(f.isr.get(), 0);
    }

    /// What the wire PD does on a notification: ack, drain until 0; bytes drained.
    fn round(u: &mut CadenceUart<&Fake>) -> (bool, usize) {
        let pending = u.ack_interrupt().unwrap();
        let mut buf = [0u8; 256];
        let mut n = 0;
        loop {
            let got = u.recv(&mut buf[n..]).unwrap();
            if got == 0 {
                return (pending, n);
            }
            n += got;
        }
    }

    #[test]
    fn the_wire_pd_round_trip() {
        let f = Fake::new(FIFO_DEPTH);
        let mut u = uart(&f);
        f.receive(&[7; 16]);
        assert!(f.irq(), "16 bytes reach the trigger");
        // Bytes that arrive after the ack are drained with the rest, and their event stays
        // pending: the IRQ is still asserted when the PD acknowledges the channel, so it is
        // notified once more and finds nothing. No byte waits for an event that was cleared.
        let pending = u.ack_interrupt().unwrap();
        f.receive(b"late");
        let mut buf = [0u8; 64];
        let mut n = 0;
        while let got @ 1.. = u.recv(&mut buf[n..]).unwrap() {
            n += got;
        }
        assert!(pending);
        assert_eq!(n, 20);
        assert!(f.irq());
        assert_eq!(round(&mut u), (true, 0));
        assert!(!f.irq(), "quiet until the next byte");
        // A byte below the trigger is delivered by the timeout.
        f.receive(b"x");
        assert!(!f.irq());
        f.idle();
        assert!(f.irq());
        assert_eq!(round(&mut u), (true, 1));
        assert!(!f.irq());
        assert_eq!(u.stats().bytes_in, 21);
    }

    #[test]
    fn framing_and_parity_errors_are_counted() {
        let f = Fake::new(FIFO_DEPTH);
        let mut u = uart(&f);
        f.receive_bad_frame(0);
        assert!(u.ack_interrupt().unwrap());
        f.isr.set(f.isr.get() | ixr::PARE);
        assert!(u.ack_interrupt().unwrap());
        let s = u.stats();
        assert_eq!((s.framing_errors, s.parity_errors, s.overruns), (1, 1, 0));
        let mut buf = [9u8; 4];
        assert_eq!(u.recv(&mut buf).unwrap(), 1, "the byte is still delivered");
        assert_eq!(buf[0], 0);
    }

    #[test]
    fn a_qemu_sized_fifo_still_reaches_the_trigger() {
        // QEMU's model holds 16 bytes: the default trigger of 16 fires when it is full.
        let f = Fake::new(16);
        let mut u = uart(&f);
        f.receive(&[1; 15]);
        assert!(!f.irq());
        f.receive(&[2]);
        assert!(f.irq());
        assert!(u.ack_interrupt().unwrap());
        let mut buf = [0u8; 64];
        assert_eq!(u.recv(&mut buf).unwrap(), 16);
    }

    #[test]
    fn write_polls_while_the_fifo_is_full() {
        let f = Fake::new(FIFO_DEPTH);
        let mut u = uart(&f);
        // The line takes one byte per status read: the FIFO fills, then the driver waits.
        f.drain.set(0);
        let data: Vec<u8> = (0..200u32).map(|i| (i * 7) as u8).collect();
        u.write(&data[..64]).unwrap();
        assert_eq!(
            f.tx.borrow().len(),
            64,
            "64 bytes fit with the line stopped"
        );
        f.drain.set(1);
        let before = f.sr_reads.get();
        u.write(&data[64..]).unwrap();
        assert!(
            f.sr_reads.get() - before >= 136,
            "it read SR before each byte"
        );
        u.flush().unwrap();
        assert_eq!(*f.line.borrow(), data);
        assert_eq!(f.tx_peak.get(), 64, "never past the FIFO");
        assert_eq!(f.isr.get() & ixr::TOVR, 0, "never wrote a full FIFO");
        assert_eq!(u.stats().bytes_out, 200);
        assert_eq!(u.stats().stalls, 0);
    }

    #[test]
    fn write_reports_a_stuck_transmitter_after_the_poll_limit() {
        let f = Fake::new(FIFO_DEPTH);
        let mut u = uart(&f);
        f.drain.set(0);
        let data: Vec<u8> = (0..100).collect();
        let before = f.sr_reads.get();
        assert_eq!(u.write(&data), Err(UartError::TxStuck { sent: 64 }));
        // 64 reads that found room, then exactly the bound.
        assert_eq!(f.sr_reads.get() - before, 64 + u64::from(POLLS));
        let before = f.sr_reads.get();
        assert_eq!(u.flush(), Err(UartError::FlushStuck));
        assert_eq!(f.sr_reads.get() - before, u64::from(POLLS));
        assert_eq!(u.stats().stalls, 2);
        assert_eq!(u.stats().bytes_out, 64);
        // The line recovers: the rest goes out after the first 64, in order.
        f.drain.set(4);
        u.send(&data[64..]).unwrap();
        assert_eq!(*f.line.borrow(), data);
    }

    #[test]
    fn flush_waits_for_the_last_byte_to_leave() {
        let f = Fake::new(FIFO_DEPTH);
        let mut u = uart(&f);
        f.drain.set(0);
        u.write(b"abc").unwrap();
        assert!(f.line.borrow().is_empty());
        f.drain.set(1);
        u.flush().unwrap();
        assert_eq!(*f.line.borrow(), b"abc");
        // It returned on a status with the FIFO empty and the transmitter idle, not on the
        // read that emptied the FIFO while the last byte was still shifting out.
        assert_eq!(f.last_sr.get() & (sr::TEMPTY | sr::TACTIVE), sr::TEMPTY);
        // Already idle: one status read.
        let before = f.sr_reads.get();
        u.flush().unwrap();
        assert_eq!(f.sr_reads.get() - before, 1);
    }

    #[test]
    fn formatted_text_and_send() {
        let f = Fake::new(FIFO_DEPTH);
        let mut u = uart(&f);
        let (what, irq) = ("READY", ZCU102_UART1_IRQ);
        write!(u, "WIRE|{what}|{irq:#x}").unwrap();
        u.send(b"\r\n").unwrap();
        assert_eq!(*f.line.borrow(), b"WIRE|READY|0x36\r\n");
        f.drain.set(0);
        let long = "x".repeat(65);
        assert!(
            u.write_str(&long).is_err(),
            "a stuck device is a fmt::Error"
        );
    }

    #[test]
    fn board_facts() {
        assert_eq!(ZCU102_UART0_IRQ, 53);
        assert_eq!(ZCU102_UART1_IRQ, 54);
        assert_eq!(ZCU102_UART1_PADDR - ZCU102_UART0_PADDR, 0x1_0000);
        const { assert!(RXBS + 4 <= BLOCK) };
    }

    #[test]
    fn errors_display() {
        assert_eq!(
            UartError::TxStuck { sent: 3 }.to_string(),
            "cadence-uart: the transmit FIFO stayed full (3 bytes of the write queued)"
        );
        assert_eq!(
            UartError::BaudUnreachable {
                ref_clk_hz: 100_000_000,
                baud: 0
            }
            .to_string(),
            "cadence-uart: no divisors give 0 baud from a 100000000 Hz reference clock"
        );
        assert_eq!(
            UartError::NotResponding {
                offset: RXWM,
                wrote: 16,
                read: 0
            }
            .to_string(),
            "cadence-uart: register 0x20 reads 0x0 after 0x10 was written"
        );
        for e in [
            UartError::Register { offset: 0x30 },
            UartError::InvalidConfig("x"),
            UartError::ResetStuck,
            UartError::FlushStuck,
        ] {
            assert!(e.to_string().starts_with("cadence-uart: "), "{e}");
        }
    }
}

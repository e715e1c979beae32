//! An SD card behind an SD Host Controller (SDHCI, spec v3.00 register set) as a
//! [`psdb::BlockDevice`]: the disk of boards without virtio, first the Xilinx ZCU102 (issue 12).
//!
//! # Where the controllers are
//! The Zynq UltraScale+ MPSoC has two Arasan SD controllers, SD0 at [`ZYNQMP_SD0_PADDR`]
//! (`0xFF16_0000`) and SD1 at [`ZYNQMP_SD1_PADDR`] (`0xFF17_0000`), on GIC SPIs 48 and 49
//! (INTIDs [`ZYNQMP_SD0_IRQ`] 80 and [`ZYNQMP_SD1_IRQ`] 81, the numbers a Microkit `<irq>`
//! takes). The ZCU102's SD card slot is SD1. QEMU's `xlnx-zcu102` (`hw/arm/xlnx-zynqmp.c`,
//! `hw/arm/xlnx-zcu102.c`, 7.x) creates both as `sysbus-sdhci` (spec version 3, capabilities
//! `0x280737ec6481`: 100 MHz base clock, 3.3/3.0/1.8 V, SDMA/ADMA2) and plugs the card of
//! `-drive if=sd,index=N` into SD*N* (`drive_get(IF_SD, 0, i)` for controller `i`), so to
//! reach the same controller as the board use `-drive if=sd,index=1,...`; with `index=0` the
//! card is on SD0. A controller with no drive has a card device without a medium: its
//! `PRESENT_STATE` says no card, and [`SdCard::init`] fails with [`SdError::NoCard`]. QEMU 7.2
//! refuses an SD image whose size is not a power of two ("SD card size has to be a power of
//! 2"), and emulates a standard-capacity card (CSD version 1, byte addresses) up to 2 GiB and a
//! high-capacity one (CSD version 2, block addresses) above: the driver handles both. (Checked
//! by running this file under QEMU 7.2 `xlnx-zcu102` in a bare-metal harness: `index=1`
//! reaches SD1 and `index=0` SD0; 64 MiB, 256 MiB, 1 GiB and 2 GiB images come up SDSC and
//! 4 GiB SDHC; writes land at the expected image offsets; psdb formats and mounts.)
//!
//! # Why not a crate
//! `sdhci-host` (crates.io, 0.5) is a no_std SDHCI backend for `sdmmc-protocol`, but it is
//! ADMA2-only (no PIO path), IRQ-driven through its own block runtime (`rdif-block`, a boxed
//! hard-IRQ endpoint; its README forbids a local polling loop), takes a raw MMIO pointer rather
//! than a checked region, and needs a `dma-api` DMA capability. psdb's [`BlockDevice`] is
//! synchronous and called inside a protected procedure, where a Microkit PD cannot wait for a
//! notification (see [`crate::blk`]), and DMA on the ZCU102 needs cache maintenance this crate
//! does not have yet. `embedded-sdmmc` speaks SPI mode only; `sdio-host` has protocol types
//! but no host controller. So this is a small polled PIO driver of its own: the register
//! sequences follow the SDHCI spec and Linux's `drivers/mmc/host/sdhci.c`; the ZynqMP quirks
//! Linux's `sdhci-of-arasan.c` lists for `xlnx,zynqmp-8.9a` are respected (no preset values,
//! never the divide-by-zero clock, card detect waited for until stable).
//!
//! # Data path: PIO, so no cache maintenance
//! Every byte moves through the Buffer Data Port (`BUFFER_DATA_PORT`), 128 32-bit words per
//! 512-byte block, after `BUF_RD_READY` / `BUF_WR_READY`. The controller never reads or writes
//! memory (no SDMA, no ADMA2: `TRANSFER_MODE.DMA_ENABLE` is never set), so there is nothing to
//! clean or invalidate: real hardware is not DMA-coherent the way QEMU is, and PIO sidesteps
//! that entirely. The register page must be mapped uncached (`cached="false"`, device memory),
//! as every MMIO region in system.xml is. Reads use `READ_SINGLE_BLOCK` (CMD17) or
//! `READ_MULTIPLE_BLOCK` (CMD18) with Auto CMD12, writes `WRITE_BLOCK` (CMD24) or
//! `WRITE_MULTIPLE_BLOCK` (CMD25) with Auto CMD12, at most [`MAX_BLOCKS`] blocks per command (a
//! longer write is a short write, which the [`BlockDevice`] contract allows). The bus runs at
//! default speed (at most 25 MHz), 4 bits wide when [`Options::four_bit_bus`].
//!
//! # Durability
//! [`BlockDevice::write`] returns only when the written blocks are programmed: the controller
//! has raised Transfer Complete (which SDHCI raises after the card releases its busy signal on
//! DAT0 for the last block), `PRESENT_STATE` shows DAT0 high and the DAT lines free, and
//! `SEND_STATUS` (CMD13) reports the card in the `tran` state with `READY_FOR_DATA` and none of
//! the error bits [`R1_ERRORS`] (a programming failure the card reports after the fact shows
//! there: `WP_VIOLATION`, `CARD_ECC_FAILED`, `CC_ERROR`, `ERROR`). An SD card in this mode has
//! no volatile write cache: the cache is an optional function of the SD Physical Layer spec
//! 6.00 (Performance Enhancement extension register), off until the host sets its Cache Enable
//! bit with `WRITE_EXTR_SINGLE` (CMD49), which is what Linux's `sd_enable_cache` does; this
//! driver issues no CMD48/CMD49, so a card's cache is never enabled. [`BlockDevice::flush`] is
//! therefore a check, not a barrier: CMD13, which must find the card idle in `tran` and
//! error-free. What remains is the card's own flash management, which the SD protocol gives a
//! host no control over: a block whose programming was cut by power loss may be torn, which
//! psdb's contract already allows.
//!
//! # Bounded waits
//! Nothing waits unboundedly: every poll has a stated budget ([`Wait::budget`], a poll count
//! and the delay between polls) and fails with [`SdError::Timeout`] naming what it waited for;
//! error interrupt status is read after every command and every data phase; a failed command
//! resets the controller's CMD (and DAT) line, and a failed multi-block transfer is stopped
//! with CMD12. Delays come from [`Delay`] ([`CounterDelay`]: the generic timer's physical
//! counter, which the PD may read only if the seL4 kernel exports it to user level,
//! `KernelArmExportPCNTUser`, as the `qemu_virt_aarch64` kernels do; a ZCU102 kernel must be
//! checked for the same, or the PD faults on its first delay). All I/O is
//! polled inside the caller's call, as for [`crate::blk`]: the controller's interrupt signal
//! stays disabled (no `<irq>` is needed for it).
//!
//! The registers are reached through [`Registers`], so the whole driver runs on the host
//! against a fake controller and card (the tests below).

use core::fmt;

use psdb::{BlockDevice, IoError, SECTOR_SIZE};

/// SD0's register block on the Zynq UltraScale+ MPSoC.
pub const ZYNQMP_SD0_PADDR: u64 = 0xFF16_0000;
/// SD1's register block: the ZCU102's SD card slot.
pub const ZYNQMP_SD1_PADDR: u64 = 0xFF17_0000;
/// SD0's interrupt (GIC INTID; SPI 48).
pub const ZYNQMP_SD0_IRQ: u32 = 80;
/// SD1's interrupt (GIC INTID; SPI 49).
pub const ZYNQMP_SD1_IRQ: u32 = 81;
/// Bytes of the standard SDHCI register set (a mapping is one page).
pub const BLOCK: usize = 0x100;

// ---- Register offsets (SD Host Controller Simplified Specification v3.00, 2.1) ----

/// SDMA System Address / Argument 2 (32-bit; unused: no DMA).
pub const SDMA_SYSTEM_ADDRESS: usize = 0x00;
/// Block Size (16-bit): transfer block size in bits 11:0, SDMA buffer boundary in 14:12.
pub const BLOCK_SIZE: usize = 0x04;
/// Block Count (16-bit).
pub const BLOCK_COUNT: usize = 0x06;
/// Argument 1 (32-bit): the command argument.
pub const ARGUMENT: usize = 0x08;
/// Transfer Mode (16-bit).
pub const TRANSFER_MODE: usize = 0x0C;
/// Command (16-bit): writing it issues the command.
pub const COMMAND: usize = 0x0E;
/// Response 0..3 (four 32-bit registers, 0x10..0x1F).
pub const RESPONSE: usize = 0x10;
/// Buffer Data Port (32-bit).
pub const BUFFER_DATA_PORT: usize = 0x20;
/// Present State (32-bit).
pub const PRESENT_STATE: usize = 0x24;
/// Host Control 1 (8-bit).
pub const HOST_CONTROL_1: usize = 0x28;
/// Power Control (8-bit).
pub const POWER_CONTROL: usize = 0x29;
/// Clock Control (16-bit).
pub const CLOCK_CONTROL: usize = 0x2C;
/// Timeout Control (8-bit).
pub const TIMEOUT_CONTROL: usize = 0x2E;
/// Software Reset (8-bit).
pub const SOFTWARE_RESET: usize = 0x2F;
/// Normal Interrupt Status (16-bit, write 1 to clear).
pub const NORMAL_INT_STATUS: usize = 0x30;
/// Error Interrupt Status (16-bit, write 1 to clear).
pub const ERROR_INT_STATUS: usize = 0x32;
/// Normal Interrupt Status Enable (16-bit): which events are latched in the status.
pub const NORMAL_INT_STATUS_ENABLE: usize = 0x34;
/// Error Interrupt Status Enable (16-bit).
pub const ERROR_INT_STATUS_ENABLE: usize = 0x36;
/// Normal Interrupt Signal Enable (16-bit): which latched events raise the IRQ.
pub const NORMAL_INT_SIGNAL_ENABLE: usize = 0x38;
/// Error Interrupt Signal Enable (16-bit).
pub const ERROR_INT_SIGNAL_ENABLE: usize = 0x3A;
/// Auto CMD Error Status (16-bit).
pub const AUTO_CMD_ERROR_STATUS: usize = 0x3C;
/// Host Control 2 (16-bit; left at its reset value: no UHS modes, no preset values).
pub const HOST_CONTROL_2: usize = 0x3E;
/// Capabilities (64-bit, read as two 32-bit registers).
pub const CAPABILITIES: usize = 0x40;
/// Host Controller Version (16-bit): spec version in bits 7:0.
pub const HOST_CONTROLLER_VERSION: usize = 0xFE;

// ---- Register bits ----

/// Transfer Mode: DMA Enable (never set by this driver).
pub const TM_DMA_ENABLE: u16 = 1 << 0;
/// Transfer Mode: Block Count Enable.
pub const TM_BLOCK_COUNT_ENABLE: u16 = 1 << 1;
/// Transfer Mode: Auto CMD Enable = Auto CMD12 (bits 3:2 = 01).
pub const TM_AUTO_CMD12: u16 = 1 << 2;
/// Transfer Mode: Data Transfer Direction Select, 1 = read (card to host).
pub const TM_READ: u16 = 1 << 4;
/// Transfer Mode: Multi / Single Block Select.
pub const TM_MULTI_BLOCK: u16 = 1 << 5;

/// Command: Response Type Select, no response.
pub const CMD_RESP_NONE: u16 = 0b00;
/// Command: Response Type Select, 136 bits.
pub const CMD_RESP_136: u16 = 0b01;
/// Command: Response Type Select, 48 bits.
pub const CMD_RESP_48: u16 = 0b10;
/// Command: Response Type Select, 48 bits with busy.
pub const CMD_RESP_48_BUSY: u16 = 0b11;
/// Command: Command CRC Check Enable.
pub const CMD_CRC_CHECK: u16 = 1 << 3;
/// Command: Command Index Check Enable.
pub const CMD_INDEX_CHECK: u16 = 1 << 4;
/// Command: Data Present Select.
pub const CMD_DATA_PRESENT: u16 = 1 << 5;
/// Command: Command Index field shift (bits 13:8).
pub const CMD_INDEX_SHIFT: u16 = 8;

/// Present State: Command Inhibit (CMD).
pub const PS_CMD_INHIBIT: u32 = 1 << 0;
/// Present State: Command Inhibit (DAT).
pub const PS_DAT_INHIBIT: u32 = 1 << 1;
/// Present State: DAT Line Active.
pub const PS_DAT_LINE_ACTIVE: u32 = 1 << 2;
/// Present State: Buffer Write Enable.
pub const PS_BUFFER_WRITE_ENABLE: u32 = 1 << 10;
/// Present State: Buffer Read Enable.
pub const PS_BUFFER_READ_ENABLE: u32 = 1 << 11;
/// Present State: Card Inserted.
pub const PS_CARD_INSERTED: u32 = 1 << 16;
/// Present State: Card State Stable.
pub const PS_CARD_STATE_STABLE: u32 = 1 << 17;
/// Present State: Write Protect Switch Pin Level (1 = writes allowed).
pub const PS_WRITE_PROTECT_PIN: u32 = 1 << 19;
/// Present State: DAT0 line signal level (low while the card is busy).
pub const PS_DAT0_LEVEL: u32 = 1 << 20;

/// Host Control 1: Data Transfer Width, 1 = 4-bit.
pub const HC1_DATA_WIDTH_4BIT: u8 = 1 << 1;
/// Host Control 1: High Speed Enable (never set: default speed).
pub const HC1_HIGH_SPEED: u8 = 1 << 2;
/// Host Control 1: DMA Select (bits 4:3; left 0).
pub const HC1_DMA_SELECT_MASK: u8 = 0b11 << 3;

/// Power Control: SD Bus Power.
pub const PC_BUS_POWER: u8 = 1 << 0;
/// Power Control: SD Bus Voltage Select = 3.3 V (bits 3:1 = 111).
pub const PC_BUS_VOLTAGE_3V3: u8 = 0b111 << 1;

/// Clock Control: Internal Clock Enable.
pub const CC_INTERNAL_CLOCK_ENABLE: u16 = 1 << 0;
/// Clock Control: Internal Clock Stable.
pub const CC_INTERNAL_CLOCK_STABLE: u16 = 1 << 1;
/// Clock Control: SD Clock Enable.
pub const CC_SD_CLOCK_ENABLE: u16 = 1 << 2;
/// Clock Control: SDCLK Frequency Select, lower 8 bits of the divisor (bits 15:8).
pub const CC_FREQ_SELECT_SHIFT: u16 = 8;
/// Clock Control: upper 2 bits of the 10-bit divisor (bits 7:6, spec 3.00).
pub const CC_FREQ_SELECT_HIGH_SHIFT: u16 = 6;

/// Timeout Control: Data Timeout Counter Value, the largest (TMCLK x 2^27).
pub const TIMEOUT_MAX: u8 = 0xE;

/// Software Reset: Software Reset For All.
pub const SR_ALL: u8 = 1 << 0;
/// Software Reset: Software Reset For CMD Line.
pub const SR_CMD: u8 = 1 << 1;
/// Software Reset: Software Reset For DAT Line.
pub const SR_DAT: u8 = 1 << 2;

/// Normal Interrupt Status: Command Complete.
pub const NIS_CMD_COMPLETE: u16 = 1 << 0;
/// Normal Interrupt Status: Transfer Complete.
pub const NIS_TRANSFER_COMPLETE: u16 = 1 << 1;
/// Normal Interrupt Status: Buffer Write Ready.
pub const NIS_BUF_WR_READY: u16 = 1 << 4;
/// Normal Interrupt Status: Buffer Read Ready.
pub const NIS_BUF_RD_READY: u16 = 1 << 5;
/// Normal Interrupt Status: Card Interrupt (SDIO; never enabled).
pub const NIS_CARD_INTERRUPT: u16 = 1 << 8;
/// Normal Interrupt Status: Error Interrupt (some bit of Error Interrupt Status is set).
pub const NIS_ERROR: u16 = 1 << 15;
/// The normal events latched: bits 0..7 (command and transfer complete, block gap, DMA,
/// buffer ready, card insertion and removal), not the SDIO card interrupt.
pub const NIS_ENABLE_ALL: u16 = 0x00FF;

/// Error Interrupt Status: Command Timeout Error.
pub const EIS_CMD_TIMEOUT: u16 = 1 << 0;
/// Error Interrupt Status: Command CRC Error.
pub const EIS_CMD_CRC: u16 = 1 << 1;
/// Error Interrupt Status: Command End Bit Error.
pub const EIS_CMD_END_BIT: u16 = 1 << 2;
/// Error Interrupt Status: Command Index Error.
pub const EIS_CMD_INDEX: u16 = 1 << 3;
/// Error Interrupt Status: Data Timeout Error.
pub const EIS_DATA_TIMEOUT: u16 = 1 << 4;
/// Error Interrupt Status: Data CRC Error.
pub const EIS_DATA_CRC: u16 = 1 << 5;
/// Error Interrupt Status: Data End Bit Error.
pub const EIS_DATA_END_BIT: u16 = 1 << 6;
/// Error Interrupt Status: Current Limit Error.
pub const EIS_CURRENT_LIMIT: u16 = 1 << 7;
/// Error Interrupt Status: Auto CMD Error (details in `AUTO_CMD_ERROR_STATUS`).
pub const EIS_AUTO_CMD: u16 = 1 << 8;
/// Error Interrupt Status: ADMA Error.
pub const EIS_ADMA: u16 = 1 << 9;
/// The command-line errors: timeout, CRC, end bit, index.
pub const EIS_CMD_ERRORS: u16 = EIS_CMD_TIMEOUT | EIS_CMD_CRC | EIS_CMD_END_BIT | EIS_CMD_INDEX;
/// The error events latched: bits 0..9 (not tuning, not vendor bits).
pub const EIS_ENABLE_ALL: u16 = 0x03FF;

/// Capabilities: Base Clock Frequency For SD Clock, MHz (bits 15:8 in spec 3.00, 13:8 before).
pub const CAP_BASE_CLOCK_SHIFT: u32 = 8;
/// Capabilities: Voltage Support 3.3 V.
pub const CAP_VOLTAGE_3V3: u32 = 1 << 24;

/// Host Controller Version: Specification Version Number 3.00.
pub const SPEC_VERSION_3: u8 = 2;

// ---- SD card protocol (SD Physical Layer Simplified Specification) ----

/// `GO_IDLE_STATE`.
pub const CMD0: u8 = 0;
/// `ALL_SEND_CID`.
pub const CMD2: u8 = 2;
/// `SEND_RELATIVE_ADDR`.
pub const CMD3: u8 = 3;
/// `SET_BUS_WIDTH` (application command).
pub const ACMD6: u8 = 6;
/// `SELECT/DESELECT_CARD`.
pub const CMD7: u8 = 7;
/// `SEND_IF_COND`.
pub const CMD8: u8 = 8;
/// `SEND_CSD`.
pub const CMD9: u8 = 9;
/// `STOP_TRANSMISSION`.
pub const CMD12: u8 = 12;
/// `SEND_STATUS`.
pub const CMD13: u8 = 13;
/// `SET_BLOCKLEN`.
pub const CMD16: u8 = 16;
/// `READ_SINGLE_BLOCK`.
pub const CMD17: u8 = 17;
/// `READ_MULTIPLE_BLOCK`.
pub const CMD18: u8 = 18;
/// `WRITE_BLOCK`.
pub const CMD24: u8 = 24;
/// `WRITE_MULTIPLE_BLOCK`.
pub const CMD25: u8 = 25;
/// `SD_SEND_OP_COND` (application command).
pub const ACMD41: u8 = 41;
/// `APP_CMD`.
pub const CMD55: u8 = 55;

/// CMD8 argument: VHS = 2.7-3.6 V (bits 11:8 = 0001) and check pattern 0xAA.
pub const CMD8_ARG: u32 = 0x1AA;
/// ACMD41 argument: Host Capacity Support (we address SDHC/SDXC cards by block).
pub const OCR_HCS: u32 = 1 << 30;
/// OCR: card power-up status (busy while 0).
pub const OCR_READY: u32 = 1 << 31;
/// OCR: Card Capacity Status (1 = SDHC/SDXC, block addressing).
pub const OCR_CCS: u32 = 1 << 30;
/// OCR voltage window 3.2-3.4 V (bits 20 and 21): what a 3.3 V bus needs.
pub const OCR_VDD_3V3: u32 = (1 << 20) | (1 << 21);

/// R1 card status: `OUT_OF_RANGE`.
pub const R1_OUT_OF_RANGE: u32 = 1 << 31;
/// R1 card status: `ADDRESS_ERROR`.
pub const R1_ADDRESS_ERROR: u32 = 1 << 30;
/// R1 card status: `BLOCK_LEN_ERROR`.
pub const R1_BLOCK_LEN_ERROR: u32 = 1 << 29;
/// R1 card status: `WP_VIOLATION`.
pub const R1_WP_VIOLATION: u32 = 1 << 26;
/// R1 card status: `CARD_ECC_FAILED`.
pub const R1_CARD_ECC_FAILED: u32 = 1 << 21;
/// R1 card status: `CC_ERROR`.
pub const R1_CC_ERROR: u32 = 1 << 20;
/// R1 card status: `ERROR`.
pub const R1_ERROR: u32 = 1 << 19;
/// R1 card status: `CURRENT_STATE` (bits 12:9).
pub const R1_STATE_SHIFT: u32 = 9;
/// R1 card status: `READY_FOR_DATA`.
pub const R1_READY_FOR_DATA: u32 = 1 << 8;
/// R1 card status: `APP_CMD` (the card took the command as an application command).
pub const R1_APP_CMD: u32 = 1 << 5;
/// The R1 bits that fail a command: the errors of the command itself and of earlier
/// programming (the set Linux's MMC core checks, `CMD_ERRORS`). `COM_CRC_ERROR` and
/// `ILLEGAL_COMMAND` are left out: they describe the previous command (a CMD8 a version 1 card
/// did not know shows up in the next response).
pub const R1_ERRORS: u32 = R1_OUT_OF_RANGE
    | R1_ADDRESS_ERROR
    | R1_BLOCK_LEN_ERROR
    | R1_WP_VIOLATION
    | R1_CARD_ECC_FAILED
    | R1_CC_ERROR
    | R1_ERROR;
/// R6 (CMD3) status bits that are errors: bits 15, 14, 13 (`COM_CRC_ERROR`,
/// `ILLEGAL_COMMAND`, `ERROR`).
pub const R6_ERRORS: u32 = 0xE000;
/// `CURRENT_STATE` `tran`.
pub const STATE_TRAN: u32 = 4;
/// `CURRENT_STATE` `rcv` (receiving data).
pub const STATE_RCV: u32 = 6;
/// `CURRENT_STATE` `prg` (programming).
pub const STATE_PRG: u32 = 7;

// ---- Bounds ----

/// Blocks moved per command (64 KiB). The Block Count register would take 65,535.
pub const MAX_BLOCKS: usize = 128;
/// Microseconds between two polls of a register.
pub const POLL_INTERVAL_US: u32 = 10;
/// Polls for a software reset to self-clear: 100 ms (Linux `sdhci_do_reset`).
pub const RESET_POLLS: u32 = 10_000;
/// Polls for Internal Clock Stable: 150 ms (Linux `sdhci_enable_clk`).
pub const CLOCK_POLLS: u32 = 15_000;
/// Polls for Card State Stable after reset: 100 ms.
pub const CARD_DETECT_POLLS: u32 = 10_000;
/// Polls for the CMD or DAT inhibit to clear before a command: 1 s.
pub const INHIBIT_POLLS: u32 = 100_000;
/// Polls for Command Complete: 1 s (the controller's own response timeout is 64 SD clocks).
pub const COMMAND_POLLS: u32 = 100_000;
/// Polls for each buffer-ready and for transfer complete: 1 s (the SD spec's read timeout is
/// 100 ms, its write busy timeout 250 ms for SDHC and 500 ms for SDXC).
pub const DATA_POLLS: u32 = 100_000;
/// Polls for DAT0 to go high (card not busy) after a write or an R1b command: 1 s.
pub const BUSY_POLLS: u32 = 100_000;
/// ACMD41 attempts before a card that never leaves power-up is given up: with
/// [`POWER_UP_INTERVAL_US`], 1 s, the time the SD spec gives a card to initialise.
pub const POWER_UP_TRIES: u32 = 1_000;
/// Microseconds between two ACMD41 attempts.
pub const POWER_UP_INTERVAL_US: u32 = 1_000;
/// CMD13 attempts for a card to reach `tran` with `READY_FOR_DATA`: with
/// [`STATUS_INTERVAL_US`], 1 s.
pub const STATUS_TRIES: u32 = 1_000;
/// Microseconds between two CMD13 attempts.
pub const STATUS_INTERVAL_US: u32 = 1_000;
/// Bus power ramp-up before the clock starts (Linux: 10 ms).
pub const POWER_ON_DELAY_US: u32 = 10_000;
/// Clock run before CMD0: the spec asks for 74 clocks, 185 us at 400 kHz.
pub const CLOCK_RUN_DELAY_US: u32 = 1_000;
/// The identification clock limit.
pub const IDENT_CLOCK_HZ: u32 = 400_000;
/// The default-speed clock limit.
pub const DEFAULT_SPEED_HZ: u32 = 25_000_000;
/// CMD3 attempts when a card publishes RCA 0 (reserved, so it is asked again).
pub const RCA_TRIES: u32 = 3;

/// The registers the driver is written against (one trait for every driver: [`crate::mmio`]).
pub use crate::mmio::Registers;

/// Busy-waiting for a number of microseconds.
pub trait Delay {
    /// Returns after at least `us` microseconds (as well as the clock can tell).
    fn delay_us(&mut self, us: u32);
}

/// [`Delay`] on the generic timer's physical counter ([`crate::counter`]). Without a counter
/// (frequency 0: off seL4, or a kernel that does not export it) it spins
/// [`CounterDelay::SPINS_PER_US`] spin-loop hints per microsecond instead, which is longer
/// than a microsecond on any core this runs on, so waits only get longer, never shorter.
#[derive(Debug, Clone, Copy, Default)]
pub struct CounterDelay;

impl CounterDelay {
    /// Spin-loop hints per microsecond without a counter.
    pub const SPINS_PER_US: u32 = 1_000;
}

impl Delay for CounterDelay {
    fn delay_us(&mut self, us: u32) {
        let freq = crate::counter::frequency();
        if freq == 0 {
            for _ in 0..u64::from(us) * u64::from(Self::SPINS_PER_US) {
                core::hint::spin_loop();
            }
            return;
        }
        let ticks = (u64::from(us) * freq).div_ceil(1_000_000);
        let start = crate::counter::ticks();
        while crate::counter::ticks().wrapping_sub(start) < ticks {
            core::hint::spin_loop();
        }
    }
}

/// [`Delay`] by spinning alone, [`CounterDelay::SPINS_PER_US`] spin-loop hints per microsecond
/// (at least a microsecond on any core this runs on: waits only get longer). For a board whose
/// counter user level cannot read: on QEMU 7.2's `xlnx-zcu102` a read of `CNTPCT_EL0` at EL0
/// traps to the kernel as a VCPU fault (seen at psdb's first delay), although the zcu102
/// kernel is built with `CONFIG_EXPORT_PCNT_USER` like `qemu_virt_aarch64`'s, which reads it.
#[derive(Debug, Clone, Copy, Default)]
pub struct SpinDelay;

impl Delay for SpinDelay {
    fn delay_us(&mut self, us: u32) {
        for _ in 0..u64::from(us) * u64::from(CounterDelay::SPINS_PER_US) {
            core::hint::spin_loop();
        }
    }
}

/// What a bounded wait was waiting for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// `SOFTWARE_RESET` bits to self-clear.
    SoftwareReset,
    /// `CLOCK_CONTROL` Internal Clock Stable.
    InternalClockStable,
    /// `PRESENT_STATE` Card State Stable (card detect debounced).
    CardStateStable,
    /// `PRESENT_STATE` Command Inhibit (CMD) to clear before command `cmd`.
    CommandInhibit {
        /// The command about to be issued.
        cmd: u8,
    },
    /// `PRESENT_STATE` Command Inhibit (DAT) to clear before command `cmd`.
    DataInhibit {
        /// The command about to be issued.
        cmd: u8,
    },
    /// Command Complete for `cmd`.
    CommandComplete {
        /// The command.
        cmd: u8,
    },
    /// Buffer Read Ready during `cmd`.
    BufferReadReady {
        /// The read command.
        cmd: u8,
    },
    /// Buffer Write Ready during `cmd`.
    BufferWriteReady {
        /// The write command.
        cmd: u8,
    },
    /// Transfer Complete of `cmd` (after its data, or its busy for an R1b command).
    TransferComplete {
        /// The command.
        cmd: u8,
    },
    /// DAT0 high (the card no longer busy) after `cmd`.
    CardBusy {
        /// The command.
        cmd: u8,
    },
    /// ACMD41 to report the card powered up.
    CardPowerUp,
    /// CMD13 to report `tran` with `READY_FOR_DATA`.
    TransferState,
}

impl Wait {
    /// The budget: how many polls, and the microseconds between them.
    pub const fn budget(self) -> (u32, u32) {
        match self {
            Wait::SoftwareReset => (RESET_POLLS, POLL_INTERVAL_US),
            Wait::InternalClockStable => (CLOCK_POLLS, POLL_INTERVAL_US),
            Wait::CardStateStable => (CARD_DETECT_POLLS, POLL_INTERVAL_US),
            Wait::CommandInhibit { .. } | Wait::DataInhibit { .. } => {
                (INHIBIT_POLLS, POLL_INTERVAL_US)
            }
            Wait::CommandComplete { .. } => (COMMAND_POLLS, POLL_INTERVAL_US),
            Wait::BufferReadReady { .. }
            | Wait::BufferWriteReady { .. }
            | Wait::TransferComplete { .. } => (DATA_POLLS, POLL_INTERVAL_US),
            Wait::CardBusy { .. } => (BUSY_POLLS, POLL_INTERVAL_US),
            Wait::CardPowerUp => (POWER_UP_TRIES, POWER_UP_INTERVAL_US),
            Wait::TransferState => (STATUS_TRIES, STATUS_INTERVAL_US),
        }
    }
}

impl fmt::Display for Wait {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Wait::SoftwareReset => f.write_str("the software reset to complete"),
            Wait::InternalClockStable => f.write_str("the internal clock to become stable"),
            Wait::CardStateStable => f.write_str("the card detect state to become stable"),
            Wait::CommandInhibit { cmd } => write!(f, "the CMD line to be free for CMD{cmd}"),
            Wait::DataInhibit { cmd } => write!(f, "the DAT lines to be free for CMD{cmd}"),
            Wait::CommandComplete { cmd } => write!(f, "CMD{cmd} to complete"),
            Wait::BufferReadReady { cmd } => write!(f, "read data of CMD{cmd}"),
            Wait::BufferWriteReady { cmd } => write!(f, "buffer space to write CMD{cmd}'s data"),
            Wait::TransferComplete { cmd } => write!(f, "the transfer of CMD{cmd} to complete"),
            Wait::CardBusy { cmd } => write!(f, "the card to finish CMD{cmd} (DAT0 busy)"),
            Wait::CardPowerUp => f.write_str("the card to power up (ACMD41)"),
            Wait::TransferState => f.write_str("the card to be ready in tran state (CMD13)"),
        }
    }
}

/// Why the card could not be started, or a transfer failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SdError {
    /// A register access outside the mapped block (a region smaller than [`BLOCK`]).
    Register {
        /// The register offset.
        offset: usize,
    },
    /// A bounded wait ran out.
    Timeout(Wait),
    /// The controller reported an error for a command (`ERROR_INT_STATUS` bits).
    Command {
        /// The command.
        cmd: u8,
        /// `ERROR_INT_STATUS`.
        status: u16,
    },
    /// The controller reported an error in a command's data or busy phase.
    Data {
        /// The command.
        cmd: u8,
        /// `ERROR_INT_STATUS`.
        status: u16,
    },
    /// The Auto CMD12 after a multi-block transfer failed (`AUTO_CMD_ERROR_STATUS`).
    AutoCmd12 {
        /// The transfer's command.
        cmd: u8,
        /// `AUTO_CMD_ERROR_STATUS`.
        status: u16,
    },
    /// The card answered with error bits in its status ([`R1_ERRORS`], [`R6_ERRORS`]).
    CardStatus {
        /// The command.
        cmd: u8,
        /// The card status it returned.
        status: u32,
    },
    /// The card was not in the state a command needs (CMD13's `CURRENT_STATE`).
    CardState {
        /// The card status.
        status: u32,
    },
    /// `PRESENT_STATE` shows no card in the slot.
    NoCard,
    /// The controller cannot supply 3.3 V.
    No3v3,
    /// The controller did not keep SD bus power on.
    NoPower,
    /// The capabilities give no base clock and [`Options::base_clock_hz`] is not set.
    NoBaseClock,
    /// No divisor reaches a clock at or below `target_hz` from `base_hz`.
    ClockRange {
        /// The base clock.
        base_hz: u32,
        /// The clock wanted.
        target_hz: u32,
    },
    /// CMD8 came back with another voltage or check pattern than sent.
    InterfaceCondition {
        /// The R7 response.
        response: u32,
    },
    /// The card's OCR does not include 3.2-3.4 V.
    Voltage {
        /// The OCR.
        ocr: u32,
    },
    /// The card kept publishing RCA 0.
    NoRca,
    /// A CSD structure this driver does not read (2: SDUC; 3: reserved), or a version 1 CSD
    /// with an impossible block length.
    Csd {
        /// `CSD_STRUCTURE`.
        structure: u8,
    },
    /// The write-protect switch is set (and [`Options::honour_write_protect`]).
    WriteProtected,
}

impl fmt::Display for SdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            SdError::Register { offset } => {
                write!(f, "sdhci: register {offset:#x} is outside the mapped block")
            }
            SdError::Timeout(w) => {
                let (polls, us) = w.budget();
                write!(
                    f,
                    "sdhci: timed out waiting for {w} ({polls} polls {us} us apart)"
                )
            }
            SdError::Command { cmd, status } => {
                write!(
                    f,
                    "sdhci: CMD{cmd} failed (error interrupt status {status:#06x})"
                )
            }
            SdError::Data { cmd, status } => {
                write!(
                    f,
                    "sdhci: data of CMD{cmd} failed (error interrupt status {status:#06x})"
                )
            }
            SdError::AutoCmd12 { cmd, status } => {
                write!(
                    f,
                    "sdhci: auto CMD12 after CMD{cmd} failed (auto CMD error status {status:#06x})"
                )
            }
            SdError::CardStatus { cmd, status } => {
                write!(
                    f,
                    "sdhci: card reported errors for CMD{cmd} (status {status:#010x})"
                )
            }
            SdError::CardState { status } => write!(
                f,
                "sdhci: card in state {} instead of tran (status {status:#010x})",
                (status >> R1_STATE_SHIFT) & 0xF
            ),
            SdError::NoCard => f.write_str("sdhci: no card in the slot"),
            SdError::No3v3 => f.write_str("sdhci: controller cannot supply 3.3 V"),
            SdError::NoPower => f.write_str("sdhci: controller did not power the SD bus"),
            SdError::NoBaseClock => f.write_str("sdhci: base clock unknown (capabilities give 0)"),
            SdError::ClockRange { base_hz, target_hz } => {
                write!(
                    f,
                    "sdhci: no divisor of {base_hz} Hz gives at most {target_hz} Hz"
                )
            }
            SdError::InterfaceCondition { response } => {
                write!(
                    f,
                    "sdhci: CMD8 answer {response:#x} does not echo {CMD8_ARG:#x}"
                )
            }
            SdError::Voltage { ocr } => {
                write!(f, "sdhci: card does not take 3.3 V (OCR {ocr:#010x})")
            }
            SdError::NoRca => f.write_str("sdhci: card published no relative address"),
            SdError::Csd { structure } => {
                write!(f, "sdhci: unsupported CSD (structure {structure})")
            }
            SdError::WriteProtected => f.write_str("sdhci: card is write-protected"),
        }
    }
}

/// Response types (SD spec 4.9) and the Command register bits each needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resp {
    None,
    /// Normal response (card status).
    R1,
    /// R1 with busy on DAT0.
    R1b,
    /// CID or CSD, 136 bits.
    R2,
    /// OCR, no CRC.
    R3,
    /// Published RCA.
    R6,
    /// Card interface condition.
    R7,
}

impl Resp {
    const fn command_bits(self) -> u16 {
        match self {
            Resp::None => CMD_RESP_NONE,
            Resp::R1 | Resp::R6 | Resp::R7 => CMD_RESP_48 | CMD_CRC_CHECK | CMD_INDEX_CHECK,
            Resp::R1b => CMD_RESP_48_BUSY | CMD_CRC_CHECK | CMD_INDEX_CHECK,
            Resp::R2 => CMD_RESP_136 | CMD_CRC_CHECK,
            Resp::R3 => CMD_RESP_48,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dir {
    Read,
    Write,
}

/// The Clock Control divisor bits and the clock they give, for a clock at most `target_hz`
/// from `base_hz`. Spec 3.00 has a 10-bit divisor N (SDCLK = base / 2N); earlier versions a
/// power of two up to 128. N is never 0 (base clock undivided): the ZynqMP's Arasan controller
/// has it broken (`SDHCI_QUIRK2_CLOCK_DIV_ZERO_BROKEN` in Linux).
pub fn clock_divisor(spec: u8, base_hz: u32, target_hz: u32) -> Result<(u16, u32), SdError> {
    let range = SdError::ClockRange { base_hz, target_hz };
    if target_hz == 0 || base_hz == 0 {
        return Err(range);
    }
    let (base, target) = (u64::from(base_hz), u64::from(target_hz));
    let n = if spec >= SPEC_VERSION_3 {
        base.div_ceil(2 * target).max(1)
    } else {
        let mut n = 1u64;
        while n < 128 && base / (2 * n) > target {
            n *= 2;
        }
        n
    };
    if n > 0x3FF || base / (2 * n) > target {
        return Err(range);
    }
    let actual = u32::try_from(base / (2 * n)).map_err(|_| range)?;
    let n = n as u16; // at most 0x3FF
    let bits =
        ((n & 0xFF) << CC_FREQ_SELECT_SHIFT) | (((n >> 8) & 0x3) << CC_FREQ_SELECT_HIGH_SHIFT);
    Ok((bits, actual))
}

/// The card's capacity in 512-byte sectors from its CSD (bits 127:0, CRC byte in 7:0).
/// Version 1 (SDSC): (C_SIZE + 1) x 2^(C_SIZE_MULT + 2) blocks of 2^READ_BL_LEN bytes.
/// Version 2 (SDHC/SDXC): (C_SIZE + 1) x 512 KiB. Version 3 (SDUC, over 2 TB) is refused:
/// it needs CMD22 addressing.
pub fn csd_sectors(csd: u128) -> Result<u64, SdError> {
    let field = |hi: u32, lo: u32| ((csd >> lo) & ((1u128 << (hi - lo + 1)) - 1)) as u64;
    let structure = field(127, 126) as u8;
    match structure {
        0 => {
            let read_bl_len = field(83, 80);
            if !(9..=11).contains(&read_bl_len) {
                return Err(SdError::Csd { structure });
            }
            let c_size = field(73, 62);
            let c_size_mult = field(49, 47);
            let bytes = (c_size + 1) << (c_size_mult + 2 + read_bl_len);
            Ok(bytes / SECTOR_SIZE as u64)
        }
        1 => Ok((field(69, 48) + 1) * 1024),
        _ => Err(SdError::Csd { structure }),
    }
}

/// An SD host controller (one slot) driven by polling.
#[derive(Debug)]
pub struct Sdhci<R: Registers, D: Delay = CounterDelay> {
    regs: R,
    delay: D,
    spec: u8,
    base_hz: u32,
    clock_hz: u32,
}

fn reg<T>(value: Option<T>, offset: usize) -> Result<T, SdError> {
    value.ok_or(SdError::Register { offset })
}

impl<R: Registers, D: Delay> Sdhci<R, D> {
    /// The controller at `regs` (the page at [`ZYNQMP_SD1_PADDR`] on the ZCU102), waiting
    /// with `delay`. Touches no register.
    pub fn new(regs: R, delay: D) -> Self {
        Sdhci {
            regs,
            delay,
            spec: 0,
            base_hz: 0,
            clock_hz: 0,
        }
    }

    /// The register block.
    pub fn registers(&self) -> &R {
        &self.regs
    }

    /// The SD clock now running (0 before [`Sdhci::set_clock`]).
    pub fn clock_hz(&self) -> u32 {
        self.clock_hz
    }

    fn r8(&self, off: usize) -> Result<u8, SdError> {
        reg(self.regs.read8(off), off)
    }
    fn r16(&self, off: usize) -> Result<u16, SdError> {
        reg(self.regs.read16(off), off)
    }
    fn r32(&self, off: usize) -> Result<u32, SdError> {
        reg(self.regs.read32(off), off)
    }
    fn w8(&self, off: usize, v: u8) -> Result<(), SdError> {
        reg(self.regs.write8(off, v), off)
    }
    fn w16(&self, off: usize, v: u16) -> Result<(), SdError> {
        reg(self.regs.write16(off, v), off)
    }
    fn w32(&self, off: usize, v: u32) -> Result<(), SdError> {
        reg(self.regs.write32(off, v), off)
    }

    /// Polls `check` within `what`'s budget.
    fn wait<T>(
        &mut self,
        what: Wait,
        mut check: impl FnMut(&Self) -> Result<Option<T>, SdError>,
    ) -> Result<T, SdError> {
        let (polls, interval) = what.budget();
        for _ in 0..polls {
            if let Some(v) = check(self)? {
                return Ok(v);
            }
            self.delay.delay_us(interval);
        }
        check(self)?.ok_or(SdError::Timeout(what))
    }

    /// Waits for `PRESENT_STATE & mask == want`.
    fn wait_present(&mut self, what: Wait, mask: u32, want: u32) -> Result<(), SdError> {
        self.wait(what, |h| {
            Ok((h.r32(PRESENT_STATE)? & mask == want).then_some(()))
        })
    }

    /// Software reset of `bits` ([`SR_ALL`], [`SR_CMD`], [`SR_DAT`]), waited for.
    pub fn reset(&mut self, bits: u8) -> Result<(), SdError> {
        self.w8(SOFTWARE_RESET, bits)?;
        self.wait(Wait::SoftwareReset, |h| {
            Ok((h.r8(SOFTWARE_RESET)? & bits == 0).then_some(()))
        })
    }

    /// Resets the controller, reads its version and base clock (`base_clock_hz` overrides the
    /// capabilities), latches every status and signals none, sets the longest data timeout,
    /// and checks for a card.
    fn start(&mut self, base_clock_hz: Option<u32>) -> Result<(), SdError> {
        self.reset(SR_ALL)?;
        self.spec = (self.r16(HOST_CONTROLLER_VERSION)? & 0xFF) as u8;
        let caps = self.r32(CAPABILITIES)?;
        let field_mask = if self.spec >= SPEC_VERSION_3 {
            0xFF
        } else {
            0x3F
        };
        let caps_mhz = (caps >> CAP_BASE_CLOCK_SHIFT) & field_mask;
        self.base_hz = match base_clock_hz {
            Some(hz) if hz > 0 => hz,
            _ if caps_mhz > 0 => caps_mhz * 1_000_000,
            _ => return Err(SdError::NoBaseClock),
        };
        if caps & CAP_VOLTAGE_3V3 == 0 {
            return Err(SdError::No3v3);
        }
        self.w16(NORMAL_INT_STATUS_ENABLE, NIS_ENABLE_ALL)?;
        self.w16(ERROR_INT_STATUS_ENABLE, EIS_ENABLE_ALL)?;
        self.w16(NORMAL_INT_SIGNAL_ENABLE, 0)?;
        self.w16(ERROR_INT_SIGNAL_ENABLE, 0)?;
        self.clear_status()?;
        self.w8(TIMEOUT_CONTROL, TIMEOUT_MAX)?;
        self.wait_present(
            Wait::CardStateStable,
            PS_CARD_STATE_STABLE,
            PS_CARD_STATE_STABLE,
        )?;
        if self.r32(PRESENT_STATE)? & PS_CARD_INSERTED == 0 {
            return Err(SdError::NoCard);
        }
        Ok(())
    }

    /// SD bus power at 3.3 V, then the ramp-up delay.
    pub fn power_on(&mut self) -> Result<(), SdError> {
        self.w8(POWER_CONTROL, PC_BUS_VOLTAGE_3V3)?;
        self.w8(POWER_CONTROL, PC_BUS_VOLTAGE_3V3 | PC_BUS_POWER)?;
        if self.r8(POWER_CONTROL)? & PC_BUS_POWER == 0 {
            return Err(SdError::NoPower);
        }
        self.delay.delay_us(POWER_ON_DELAY_US);
        Ok(())
    }

    /// Runs the SD clock at most `target_hz`; returns the clock it runs at. The SD clock is
    /// stopped while the divisor changes, and restarted once the internal clock is stable.
    pub fn set_clock(&mut self, target_hz: u32) -> Result<u32, SdError> {
        let (bits, actual) = clock_divisor(self.spec, self.base_hz, target_hz)?;
        let clk = self.r16(CLOCK_CONTROL)?;
        self.w16(CLOCK_CONTROL, clk & !CC_SD_CLOCK_ENABLE)?;
        self.clock_hz = 0;
        self.w16(CLOCK_CONTROL, bits | CC_INTERNAL_CLOCK_ENABLE)?;
        self.wait(Wait::InternalClockStable, |h| {
            Ok((h.r16(CLOCK_CONTROL)? & CC_INTERNAL_CLOCK_STABLE != 0).then_some(()))
        })?;
        self.w16(
            CLOCK_CONTROL,
            bits | CC_INTERNAL_CLOCK_ENABLE | CC_SD_CLOCK_ENABLE,
        )?;
        self.clock_hz = actual;
        Ok(actual)
    }

    /// Sets the controller's data width: 4 bits, or 1.
    fn set_bus_width_4(&mut self, four: bool) -> Result<(), SdError> {
        let hc = self.r8(HOST_CONTROL_1)? & !(HC1_DATA_WIDTH_4BIT | HC1_HIGH_SPEED);
        let hc = hc & !HC1_DMA_SELECT_MASK;
        self.w8(
            HOST_CONTROL_1,
            if four { hc | HC1_DATA_WIDTH_4BIT } else { hc },
        )
    }

    fn clear_status(&self) -> Result<(), SdError> {
        self.w16(NORMAL_INT_STATUS, 0xFFFF)?;
        self.w16(ERROR_INT_STATUS, 0xFFFF)
    }

    /// After an error: resets the CMD line (and the DAT lines when data or busy was involved)
    /// and clears every status. Best effort: a reset that fails too leaves the first error.
    fn recover(&mut self, dat: bool) {
        let _ = self.reset(if dat { SR_CMD | SR_DAT } else { SR_CMD });
        let _ = self.clear_status();
    }

    /// Issues command `cmd` and waits for its response (and, for R1b, for its busy to end).
    /// Returns the Response registers. Any error status fails the command and resets the
    /// lines; R1 responses with [`R1_ERRORS`] fail it too.
    fn command(
        &mut self,
        cmd: u8,
        arg: u32,
        resp: Resp,
        data: Option<(Dir, u16)>,
    ) -> Result<[u32; 4], SdError> {
        let uses_dat = data.is_some() || resp == Resp::R1b;
        let r = self.command_inner(cmd, arg, resp, data);
        // A data command the card refused (error bits in its R1) leaves the controller
        // expecting data: the DAT lines are reset too.
        if let Err(e) = r {
            if !matches!(e, SdError::Register { .. }) {
                self.recover(uses_dat);
            }
        }
        r
    }

    fn command_inner(
        &mut self,
        cmd: u8,
        arg: u32,
        resp: Resp,
        data: Option<(Dir, u16)>,
    ) -> Result<[u32; 4], SdError> {
        let uses_dat = data.is_some() || resp == Resp::R1b;
        self.wait_present(Wait::CommandInhibit { cmd }, PS_CMD_INHIBIT, 0)?;
        if uses_dat {
            self.wait_present(Wait::DataInhibit { cmd }, PS_DAT_INHIBIT, 0)?;
        }
        self.clear_status()?;
        let mut mode = 0;
        if let Some((dir, blocks)) = data {
            self.w16(BLOCK_SIZE, SECTOR_SIZE as u16)?;
            self.w16(BLOCK_COUNT, blocks)?;
            if dir == Dir::Read {
                mode |= TM_READ;
            }
            if blocks > 1 {
                mode |= TM_BLOCK_COUNT_ENABLE | TM_MULTI_BLOCK | TM_AUTO_CMD12;
            }
        }
        self.w32(ARGUMENT, arg)?;
        self.w16(TRANSFER_MODE, mode)?;
        let data_bit = if data.is_some() { CMD_DATA_PRESENT } else { 0 };
        let word = (u16::from(cmd & 0x3F) << CMD_INDEX_SHIFT) | resp.command_bits() | data_bit;
        self.w16(COMMAND, word)?;

        let nis = self.wait(Wait::CommandComplete { cmd }, |h| {
            let s = h.r16(NORMAL_INT_STATUS)?;
            Ok((s & (NIS_CMD_COMPLETE | NIS_ERROR) != 0).then_some(s))
        })?;
        let eis = self.r16(ERROR_INT_STATUS)?;
        if nis & NIS_ERROR != 0 || eis != 0 {
            // A data error can already be latched when the response arrives.
            if data.is_some() && eis & EIS_CMD_ERRORS == 0 {
                return Err(SdError::Data { cmd, status: eis });
            }
            return Err(SdError::Command { cmd, status: eis });
        }
        self.w16(NORMAL_INT_STATUS, NIS_CMD_COMPLETE)?;
        let mut r = [0u32; 4];
        for (i, word) in r.iter_mut().enumerate() {
            *word = self.r32(RESPONSE + 4 * i)?;
        }
        if resp == Resp::R1b {
            // The controller raises Transfer Complete when the card releases DAT0.
            self.wait_event(Wait::TransferComplete { cmd }, NIS_TRANSFER_COMPLETE, cmd)?;
            self.w16(NORMAL_INT_STATUS, NIS_TRANSFER_COMPLETE)?;
            self.wait_present(Wait::CardBusy { cmd }, PS_DAT0_LEVEL, PS_DAT0_LEVEL)?;
        }
        if matches!(resp, Resp::R1 | Resp::R1b) && r[0] & R1_ERRORS != 0 {
            return Err(SdError::CardStatus { cmd, status: r[0] });
        }
        Ok(r)
    }

    /// Waits for the normal status `bit` (or an error) during `cmd`'s data or busy phase, then
    /// checks the error status.
    fn wait_event(&mut self, what: Wait, bit: u16, cmd: u8) -> Result<(), SdError> {
        let nis = self.wait(what, |h| {
            let s = h.r16(NORMAL_INT_STATUS)?;
            Ok((s & (bit | NIS_ERROR) != 0).then_some(s))
        })?;
        let eis = self.r16(ERROR_INT_STATUS)?;
        if eis & EIS_AUTO_CMD != 0 {
            let status = self.r16(AUTO_CMD_ERROR_STATUS)?;
            return Err(SdError::AutoCmd12 { cmd, status });
        }
        if nis & NIS_ERROR != 0 || eis != 0 {
            return Err(SdError::Data { cmd, status: eis });
        }
        Ok(())
    }

    /// Stops a failed transfer: resets the lines and, for a multi-block one, sends CMD12 so
    /// the card leaves its data state (ignoring how that goes: the transfer's error is what
    /// the caller gets).
    fn abort(&mut self, multi: bool) {
        self.recover(true);
        if multi {
            let _ = self.command(CMD12, 0, Resp::R1b, None);
        }
    }

    /// Reads `buf.len() / 512` blocks (1..=[`MAX_BLOCKS`]) with `cmd` at card address `arg`.
    fn read_blocks(&mut self, cmd: u8, arg: u32, buf: &mut [u8]) -> Result<(), SdError> {
        let blocks = (buf.len() / SECTOR_SIZE) as u16;
        self.command(cmd, arg, Resp::R1, Some((Dir::Read, blocks)))?;
        let r = self.read_data(cmd, buf);
        if r.is_err() {
            self.abort(blocks > 1);
        }
        r
    }

    fn read_data(&mut self, cmd: u8, buf: &mut [u8]) -> Result<(), SdError> {
        for block in buf.chunks_exact_mut(SECTOR_SIZE) {
            self.wait_event(Wait::BufferReadReady { cmd }, NIS_BUF_RD_READY, cmd)?;
            // Cleared before the block is read: the controller sets it again for the next one.
            self.w16(NORMAL_INT_STATUS, NIS_BUF_RD_READY)?;
            for word in block.chunks_exact_mut(4) {
                word.copy_from_slice(&self.r32(BUFFER_DATA_PORT)?.to_le_bytes());
            }
        }
        self.wait_event(Wait::TransferComplete { cmd }, NIS_TRANSFER_COMPLETE, cmd)?;
        self.w16(NORMAL_INT_STATUS, NIS_TRANSFER_COMPLETE)?;
        if buf.len() > SECTOR_SIZE {
            self.check_auto_cmd12()?;
        }
        Ok(())
    }

    /// Writes `buf.len() / 512` blocks (1..=[`MAX_BLOCKS`]) with `cmd` at card address `arg`;
    /// returns when the controller reports the transfer complete and DAT0 is high.
    fn write_blocks(&mut self, cmd: u8, arg: u32, buf: &[u8]) -> Result<(), SdError> {
        let blocks = (buf.len() / SECTOR_SIZE) as u16;
        self.command(cmd, arg, Resp::R1, Some((Dir::Write, blocks)))?;
        let r = self.write_data(cmd, buf);
        if r.is_err() {
            self.abort(blocks > 1);
        }
        r
    }

    fn write_data(&mut self, cmd: u8, buf: &[u8]) -> Result<(), SdError> {
        for block in buf.chunks_exact(SECTOR_SIZE) {
            self.wait_event(Wait::BufferWriteReady { cmd }, NIS_BUF_WR_READY, cmd)?;
            self.w16(NORMAL_INT_STATUS, NIS_BUF_WR_READY)?;
            for word in block.chunks_exact(4) {
                let w = u32::from_le_bytes([word[0], word[1], word[2], word[3]]);
                self.w32(BUFFER_DATA_PORT, w)?;
            }
        }
        // Transfer Complete follows the card's busy after the last block.
        self.wait_event(Wait::TransferComplete { cmd }, NIS_TRANSFER_COMPLETE, cmd)?;
        self.w16(NORMAL_INT_STATUS, NIS_TRANSFER_COMPLETE)?;
        if buf.len() > SECTOR_SIZE {
            self.check_auto_cmd12()?;
        }
        self.wait_present(
            Wait::CardBusy { cmd },
            PS_DAT0_LEVEL | PS_DAT_INHIBIT,
            PS_DAT0_LEVEL,
        )
    }

    /// The Auto CMD12 response (Response register 3) must carry no error. `OUT_OF_RANGE` is
    /// allowed there: a card may set it when a multi-block transfer ends at its last block.
    fn check_auto_cmd12(&self) -> Result<(), SdError> {
        let status = self.r32(RESPONSE + 12)?;
        if status & R1_ERRORS & !R1_OUT_OF_RANGE != 0 {
            return Err(SdError::CardStatus { cmd: CMD12, status });
        }
        Ok(())
    }
}

/// How to start the card.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// The controller's base clock, when the capabilities' field is wrong or 0 (on the ZynqMP
    /// it is what the boot firmware programmed into `IOU_SLCR`; Linux takes the clock
    /// framework's rate instead). `None`: the capabilities.
    pub base_clock_hz: Option<u32>,
    /// Switch card and controller to a 4-bit data bus (ACMD6), which every SD memory card
    /// supports.
    pub four_bit_bus: bool,
    /// Refuse writes while `PRESENT_STATE` reports the write-protect switch set. Off for a slot
    /// whose WP pin is not wired (a micro-SD slot has no switch).
    pub honour_write_protect: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            base_clock_hz: None,
            four_bit_bus: true,
            honour_write_protect: true,
        }
    }
}

/// An initialised SD memory card (SDSC, SDHC or SDXC) as a [`BlockDevice`].
#[derive(Debug)]
pub struct SdCard<R: Registers, D: Delay = CounterDelay> {
    host: Sdhci<R, D>,
    rca: u16,
    high_capacity: bool,
    sectors: u64,
    cid: u128,
    csd: u128,
    honour_wp: bool,
    last_error: Option<SdError>,
}

/// A 136-bit response's Response registers as the register's bits 127:0 (CRC byte 0): the
/// controller drops the CRC and shifts the rest down 8 bits.
fn long_response(r: [u32; 4]) -> u128 {
    let v = u128::from(r[0])
        | (u128::from(r[1]) << 32)
        | (u128::from(r[2]) << 64)
        | (u128::from(r[3]) << 96);
    v << 8
}

impl<R: Registers, D: Delay> SdCard<R, D> {
    /// Resets the controller and brings the card in its slot to the `tran` state: power
    /// (3.3 V), identification clock (at most 400 kHz), CMD0, CMD8, ACMD41 until powered up,
    /// CMD2, CMD3, CMD9 (capacity), default-speed clock (at most 25 MHz), CMD7, CMD16 for a
    /// standard-capacity card, ACMD6 for a 4-bit bus, and CMD13 to check.
    pub fn init(host: Sdhci<R, D>, options: Options) -> Result<Self, SdError> {
        let mut host = host;
        host.start(options.base_clock_hz)?;
        host.power_on()?;
        host.set_clock(IDENT_CLOCK_HZ)?;
        host.delay.delay_us(CLOCK_RUN_DELAY_US);

        host.command(CMD0, 0, Resp::None, None)?;
        // CMD8: a version 2.00+ card echoes it; an older one does not answer (and is SDSC).
        let v2 = match host.command(CMD8, CMD8_ARG, Resp::R7, None) {
            Ok(r) if r[0] & 0xFFF == CMD8_ARG => true,
            Ok(r) => return Err(SdError::InterfaceCondition { response: r[0] }),
            Err(SdError::Command { status, .. }) if status & EIS_CMD_TIMEOUT != 0 => false,
            Err(e) => return Err(e),
        };
        let hcs = if v2 { OCR_HCS } else { 0 };
        let mut ocr = 0;
        for _ in 0..POWER_UP_TRIES {
            app_command(&mut host, 0)?;
            ocr = host.command(ACMD41, hcs | OCR_VDD_3V3, Resp::R3, None)?[0];
            if ocr & OCR_READY != 0 {
                break;
            }
            host.delay.delay_us(POWER_UP_INTERVAL_US);
        }
        if ocr & OCR_READY == 0 {
            return Err(SdError::Timeout(Wait::CardPowerUp));
        }
        if ocr & OCR_VDD_3V3 == 0 {
            return Err(SdError::Voltage { ocr });
        }
        let high_capacity = v2 && ocr & OCR_CCS != 0;

        let cid = long_response(host.command(CMD2, 0, Resp::R2, None)?);
        let mut rca = 0u16;
        for _ in 0..RCA_TRIES {
            let r6 = host.command(CMD3, 0, Resp::R6, None)?[0];
            if r6 & R6_ERRORS != 0 {
                return Err(SdError::CardStatus {
                    cmd: CMD3,
                    status: r6,
                });
            }
            rca = (r6 >> 16) as u16;
            if rca != 0 {
                break;
            }
        }
        if rca == 0 {
            return Err(SdError::NoRca);
        }
        let rca_arg = u32::from(rca) << 16;
        let csd = long_response(host.command(CMD9, rca_arg, Resp::R2, None)?);
        let sectors = csd_sectors(csd)?;

        host.set_clock(DEFAULT_SPEED_HZ)?;
        host.command(CMD7, rca_arg, Resp::R1b, None)?;
        if !high_capacity {
            host.command(CMD16, SECTOR_SIZE as u32, Resp::R1, None)?;
        }
        if options.four_bit_bus {
            app_command(&mut host, rca)?;
            host.command(ACMD6, 2, Resp::R1, None)?;
            host.set_bus_width_4(true)?;
        } else {
            host.set_bus_width_4(false)?;
        }
        let mut card = SdCard {
            host,
            rca,
            high_capacity,
            sectors,
            cid,
            csd,
            honour_wp: options.honour_write_protect,
            last_error: None,
        };
        card.wait_transfer_state()?;
        Ok(card)
    }

    /// Sectors on the card.
    pub fn sectors(&self) -> u64 {
        self.sectors
    }

    /// Whether the card is SDHC/SDXC (block addresses) rather than SDSC (byte addresses).
    pub fn high_capacity(&self) -> bool {
        self.high_capacity
    }

    /// The card's relative address.
    pub fn rca(&self) -> u16 {
        self.rca
    }

    /// The CID register (bits 127:0).
    pub fn cid(&self) -> u128 {
        self.cid
    }

    /// The CSD register (bits 127:0).
    pub fn csd(&self) -> u128 {
        self.csd
    }

    /// The SD clock.
    pub fn clock_hz(&self) -> u32 {
        self.host.clock_hz()
    }

    /// The controller.
    pub fn host(&self) -> &Sdhci<R, D> {
        &self.host
    }

    /// The last error, for diagnostics (an I/O error reaches psdb as [`IoError::Failed`]).
    pub fn last_error(&self) -> Option<SdError> {
        self.last_error
    }

    /// CMD13 until the card is in `tran` with `READY_FOR_DATA` (it may still be programming
    /// or receiving); any other state, or an error bit, fails. Returns the card status.
    pub fn wait_transfer_state(&mut self) -> Result<u32, SdError> {
        let arg = u32::from(self.rca) << 16;
        for _ in 0..STATUS_TRIES {
            let status = self.host.command(CMD13, arg, Resp::R1, None)?[0];
            let state = (status >> R1_STATE_SHIFT) & 0xF;
            match state {
                STATE_TRAN if status & R1_READY_FOR_DATA != 0 => return Ok(status),
                STATE_TRAN | STATE_RCV | STATE_PRG => self.host.delay.delay_us(STATUS_INTERVAL_US),
                _ => return Err(SdError::CardState { status }),
            }
        }
        Err(SdError::Timeout(Wait::TransferState))
    }

    /// The card address of sector `lba`: the sector number, or its byte offset on SDSC.
    fn address(&self, lba: u64) -> Result<u32, IoError> {
        let a = if self.high_capacity {
            Some(lba)
        } else {
            lba.checked_mul(SECTOR_SIZE as u64)
        };
        a.and_then(|a| u32::try_from(a).ok())
            .ok_or(IoError::OutOfRange)
    }

    fn failed(&mut self, e: SdError) -> IoError {
        self.last_error = Some(e);
        IoError::Failed
    }

    fn write_protected(&self) -> Result<bool, SdError> {
        Ok(self.honour_wp && self.host.r32(PRESENT_STATE)? & PS_WRITE_PROTECT_PIN == 0)
    }
}

/// CMD55 for the application command that follows, to the card at `rca` (0 before CMD3).
fn app_command<R: Registers, D: Delay>(host: &mut Sdhci<R, D>, rca: u16) -> Result<(), SdError> {
    let status = host.command(CMD55, u32::from(rca) << 16, Resp::R1, None)?[0];
    if status & R1_APP_CMD == 0 {
        return Err(SdError::CardStatus { cmd: CMD55, status });
    }
    Ok(())
}

use crate::sectors as check;

impl<R: Registers, D: Delay> BlockDevice for SdCard<R, D> {
    fn sector_count(&self) -> u64 {
        self.sectors
    }

    fn read(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), IoError> {
        check(self.sectors, lba, buf.len())?;
        let mut lba = lba;
        for chunk in buf.chunks_mut(MAX_BLOCKS * SECTOR_SIZE) {
            let arg = self.address(lba)?;
            let cmd = if chunk.len() == SECTOR_SIZE {
                CMD17
            } else {
                CMD18
            };
            if let Err(e) = self.host.read_blocks(cmd, arg, chunk) {
                return Err(self.failed(e));
            }
            lba += (chunk.len() / SECTOR_SIZE) as u64;
        }
        Ok(())
    }

    fn write(&mut self, lba: u64, buf: &[u8]) -> Result<usize, IoError> {
        check(self.sectors, lba, buf.len())?;
        let chunk = &buf[..buf.len().min(MAX_BLOCKS * SECTOR_SIZE)];
        if chunk.is_empty() {
            return Ok(0);
        }
        let arg = self.address(lba)?;
        match self.write_protected() {
            Ok(false) => {}
            Ok(true) => return Err(self.failed(SdError::WriteProtected)),
            Err(e) => return Err(self.failed(e)),
        }
        let cmd = if chunk.len() == SECTOR_SIZE {
            CMD24
        } else {
            CMD25
        };
        let r = self
            .host
            .write_blocks(cmd, arg, chunk)
            .and_then(|()| self.wait_transfer_state());
        match r {
            Ok(_) => Ok(chunk.len() / SECTOR_SIZE),
            Err(e) => {
                // Let a card still programming finish before the next request (bounded).
                let _ = self.wait_transfer_state();
                Err(self.failed(e))
            }
        }
    }

    /// Every write is programmed before it returns (see the module documentation), so this
    /// only confirms that the card is idle in `tran` and reports no error (CMD13).
    fn flush(&mut self) -> Result<(), IoError> {
        match self.wait_transfer_state() {
            Ok(_) => Ok(()),
            Err(e) => Err(self.failed(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::{Cell, RefCell};
    use std::rc::Rc;

    // ---------------------------------------------------------------------------------------
    // A fake SD card: the SD state machine, R1/R3/R6/R7/R2 answers, a Vec<u8> disk.
    // ---------------------------------------------------------------------------------------

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum St {
        Idle,
        Ready,
        Ident,
        Stby,
        Tran,
        Data,
        Rcv,
        Prg,
    }

    impl St {
        fn code(self) -> u32 {
            match self {
                St::Idle => 0,
                St::Ready => 1,
                St::Ident => 2,
                St::Stby => 3,
                St::Tran => 4,
                St::Data => 5,
                St::Rcv => 6,
                St::Prg => 7,
            }
        }
    }

    const ILLEGAL_COMMAND: u32 = 1 << 22;
    const CID: u128 = 0xAA58_5951_454D_5521_01DE_ADBE_EF00_6201;
    const RCA: u16 = 0x4567;

    enum Answer {
        Nothing,
        Short(u32),
        Long(u128),
    }

    #[derive(Debug, Clone)]
    struct Card {
        disk: Vec<u8>,
        /// What the CSD claims (normally the disk's sectors).
        claimed_sectors: u64,
        high_capacity: bool,
        /// Answers CMD8 (physical layer 2.00 or later).
        v2: bool,
        /// READ_BL_LEN of a version 1 CSD.
        bl_len: u32,
        state: St,
        rca: u16,
        app: bool,
        acmd41: u32,
        /// ACMD41 calls answered busy before ready; `None`: never ready.
        ready_after: Option<u32>,
        /// Error bits for the next R1 (clear on read).
        errors: u32,
        /// Commands the card never answers.
        silent: Vec<u8>,
        wrong_echo: bool,
        /// A sector whose read fails with a data CRC error.
        crc_error_at: Option<u64>,
        /// Polls the card stays busy (DAT0 low) after a write.
        busy_polls: u32,
        stuck_busy: bool,
        bus_width_4: bool,
        block_len: u32,
        data_lba: u64,
    }

    impl Card {
        fn sdhc(sectors: u64) -> Card {
            assert!(
                sectors.is_multiple_of(1024),
                "SDHC capacity is in 512 KiB units"
            );
            Card {
                disk: vec![0; sectors as usize * SECTOR_SIZE],
                claimed_sectors: sectors,
                high_capacity: true,
                v2: true,
                bl_len: 9,
                state: St::Idle,
                rca: 0,
                app: false,
                acmd41: 0,
                ready_after: Some(3),
                errors: 0,
                silent: Vec::new(),
                wrong_echo: false,
                crc_error_at: None,
                busy_polls: 5,
                stuck_busy: false,
                bus_width_4: false,
                block_len: 512,
                data_lba: 0,
            }
        }

        fn sdsc(sectors: u64, bl_len: u32) -> Card {
            Card {
                high_capacity: false,
                bl_len,
                ..Card::sdhc(1024)
            }
            .with_disk(vec![0; sectors as usize * SECTOR_SIZE])
        }

        fn with_disk(mut self, disk: Vec<u8>) -> Card {
            self.claimed_sectors = (disk.len() / SECTOR_SIZE) as u64;
            self.disk = disk;
            self
        }

        fn sectors(&self) -> u64 {
            (self.disk.len() / SECTOR_SIZE) as u64
        }

        fn csd(&self) -> u128 {
            let mut v = 0u128;
            let mut set = |hi: u32, lo: u32, val: u64| {
                let mask = (1u128 << (hi - lo + 1)) - 1;
                assert!(u128::from(val) <= mask, "CSD field {hi}:{lo} overflows");
                v = (v & !(mask << lo)) | (u128::from(val) << lo);
            };
            set(0, 0, 1); // end bit
            if self.high_capacity {
                set(127, 126, 1);
                set(83, 80, 9);
                set(69, 48, self.claimed_sectors / 1024 - 1);
            } else {
                let bytes = self.claimed_sectors * SECTOR_SIZE as u64;
                let mult = 7u32;
                let unit = 1u64 << (mult + 2 + self.bl_len);
                assert!(bytes.is_multiple_of(unit), "SDSC capacity not expressible");
                set(83, 80, u64::from(self.bl_len));
                set(73, 62, bytes / unit - 1);
                set(49, 47, u64::from(mult));
            }
            v
        }

        fn status(&mut self, at: St, app: bool) -> u32 {
            let mut s = self.errors | (at.code() << R1_STATE_SHIFT);
            if at != St::Prg && at != St::Rcv {
                s |= R1_READY_FOR_DATA;
            }
            if app {
                s |= R1_APP_CMD;
            }
            self.errors = 0;
            s
        }

        /// The sector a data command addresses, or why not (error bits).
        fn sector_of(&self, arg: u32) -> Result<u64, u32> {
            let lba = if self.high_capacity {
                u64::from(arg)
            } else if !arg.is_multiple_of(512) {
                return Err(R1_ADDRESS_ERROR);
            } else {
                u64::from(arg) / 512
            };
            if lba >= self.sectors() {
                return Err(R1_OUT_OF_RANGE);
            }
            Ok(lba)
        }

        fn command(&mut self, idx: u8, arg: u32) -> Option<Answer> {
            let app = std::mem::take(&mut self.app);
            if self.silent.contains(&idx) {
                return None;
            }
            let at = self.state;
            let for_me = (arg >> 16) as u16 == self.rca;
            match (idx, app) {
                (0, _) => {
                    self.state = St::Idle;
                    self.bus_width_4 = false;
                    Some(Answer::Nothing)
                }
                (8, false) if at == St::Idle => {
                    if !self.v2 {
                        self.errors |= ILLEGAL_COMMAND;
                        return None;
                    }
                    let echo = if self.wrong_echo { 0x2AA } else { arg & 0xFFF };
                    Some(Answer::Short(echo))
                }
                (55, _) if at == St::Idle || for_me => {
                    self.app = true;
                    Some(Answer::Short(self.status(at, true)))
                }
                (41, true) if at == St::Idle => {
                    self.acmd41 += 1;
                    let ready = self.ready_after.is_some_and(|n| self.acmd41 > n)
                        && (arg & OCR_HCS != 0 || !self.high_capacity)
                        && arg & 0x00FF_8000 != 0;
                    let mut ocr = 0x00FF_8000;
                    if ready {
                        ocr |= OCR_READY;
                        if self.high_capacity {
                            ocr |= OCR_CCS;
                        }
                        self.state = St::Ready;
                    }
                    Some(Answer::Short(ocr))
                }
                (2, false) if at == St::Ready => {
                    self.state = St::Ident;
                    Some(Answer::Long(CID))
                }
                (3, false) if matches!(at, St::Ident | St::Stby) => {
                    self.state = St::Stby;
                    self.rca = RCA;
                    let s = self.status(at, false);
                    Some(Answer::Short((u32::from(RCA) << 16) | (s & 0x1FFF)))
                }
                (9, false) if at == St::Stby && for_me => Some(Answer::Long(self.csd())),
                (7, false) if for_me && matches!(at, St::Stby | St::Tran) => {
                    self.state = St::Tran;
                    Some(Answer::Short(self.status(at, false)))
                }
                (13, false) if for_me => Some(Answer::Short(self.status(at, false))),
                (16, false) if at == St::Tran => {
                    if arg != 512 {
                        self.errors |= R1_BLOCK_LEN_ERROR;
                    } else {
                        self.block_len = arg;
                    }
                    Some(Answer::Short(self.status(at, false)))
                }
                (6, true) if at == St::Tran => {
                    self.bus_width_4 = arg == 2;
                    Some(Answer::Short(self.status(at, true)))
                }
                (17 | 18 | 24 | 25, false) if at == St::Tran => {
                    match self.sector_of(arg) {
                        Ok(lba) => {
                            self.data_lba = lba;
                            self.state = if idx < 20 { St::Data } else { St::Rcv };
                        }
                        Err(bits) => self.errors |= bits,
                    }
                    Some(Answer::Short(self.status(at, false)))
                }
                (12, false) if matches!(at, St::Data | St::Rcv) => {
                    self.state = St::Tran;
                    Some(Answer::Short(self.status(at, false)))
                }
                _ => {
                    self.errors |= ILLEGAL_COMMAND;
                    None
                }
            }
        }
    }

    // ---------------------------------------------------------------------------------------
    // A fake SDHCI controller: the register semantics the driver relies on.
    // ---------------------------------------------------------------------------------------

    const BASE_HZ: u64 = 100_000_000;

    #[derive(Debug)]
    struct Xfer {
        read: bool,
        lba: u64,
        left: u32,
        auto12: bool,
        buf: Vec<u8>,
        pos: usize,
        ready: bool,
    }

    #[derive(Debug)]
    struct Ctl {
        card: Option<Card>,
        caps: u64,
        version: u16,
        blksize: u16,
        blkcnt: u16,
        arg: u32,
        mode: u16,
        resp: [u32; 4],
        hc1: u8,
        power: u8,
        clock: u16,
        timeout: u8,
        nis: u16,
        eis: u16,
        nisen: u16,
        eisen: u16,
        acmd_err: u16,
        reset_bits: u8,
        reset_reads: u32,
        reset_stuck: bool,
        clock_never_stable: bool,
        xfer: Option<Xfer>,
        busy: u32,
        write_protect: bool,
        commands: Vec<(u8, u32)>,
        violations: Vec<String>,
    }

    struct Fake(RefCell<Ctl>);

    impl Fake {
        fn new(card: Option<Card>) -> Fake {
            Fake(RefCell::new(Ctl {
                card,
                // QEMU's xlnx-zynqmp capabilities.
                caps: 0x2807_37EC_6481,
                version: 0x0002,
                blksize: 0,
                blkcnt: 0,
                arg: 0,
                mode: 0,
                resp: [0; 4],
                hc1: 0,
                power: 0,
                clock: 0,
                timeout: 0,
                nis: 0,
                eis: 0,
                nisen: 0,
                eisen: 0,
                acmd_err: 0,
                reset_bits: 0,
                reset_reads: 0,
                reset_stuck: false,
                clock_never_stable: false,
                xfer: None,
                busy: 0,
                write_protect: false,
                commands: Vec::new(),
                violations: Vec::new(),
            }))
        }
        fn ctl(&self) -> std::cell::RefMut<'_, Ctl> {
            self.0.borrow_mut()
        }
        fn card<T>(&self, f: impl FnOnce(&mut Card) -> T) -> T {
            f(self.ctl().card.as_mut().expect("a card"))
        }
        fn commands(&self) -> Vec<u8> {
            self.ctl().commands.iter().map(|c| c.0).collect()
        }
        fn clean(&self) {
            let v = &self.ctl().violations;
            assert!(v.is_empty(), "the driver broke the protocol: {v:?}");
        }
    }

    impl Ctl {
        fn raise(&mut self, bit: u16) {
            if self.nisen & bit != 0 {
                self.nis |= bit;
            }
        }
        fn raise_error(&mut self, bit: u16) {
            if self.eisen & bit != 0 {
                self.eis |= bit;
            }
        }
        fn nis(&self) -> u16 {
            self.nis | if self.eis != 0 { NIS_ERROR } else { 0 }
        }

        fn sd_clock(&self) -> u64 {
            let on = CC_INTERNAL_CLOCK_ENABLE | CC_SD_CLOCK_ENABLE;
            if self.clock & on != on || self.clock_never_stable {
                return 0;
            }
            let n = u64::from((self.clock >> 8) & 0xFF) | (u64::from((self.clock >> 6) & 3) << 8);
            if n == 0 {
                return BASE_HZ;
            }
            BASE_HZ / (2 * n)
        }

        /// Time passes when the driver polls: a busy card finishes after `busy` polls.
        fn tick(&mut self) {
            let stuck = self.card.as_ref().is_some_and(|c| c.stuck_busy);
            if self.busy > 0 && !stuck {
                self.busy -= 1;
                if self.busy == 0 {
                    if let Some(c) = self.card.as_mut() {
                        if c.state == St::Prg {
                            c.state = St::Tran;
                        }
                    }
                    self.raise(NIS_TRANSFER_COMPLETE);
                }
            }
        }

        fn present_state(&mut self) -> u32 {
            self.tick();
            let mut ps = 1 << 24; // CMD line high
            if self.xfer.is_some() || self.busy > 0 {
                ps |= PS_DAT_INHIBIT | PS_DAT_LINE_ACTIVE;
            }
            if let Some(x) = &self.xfer {
                if x.ready {
                    ps |= if x.read {
                        PS_BUFFER_READ_ENABLE
                    } else {
                        PS_BUFFER_WRITE_ENABLE
                    };
                }
            }
            ps |= PS_CARD_STATE_STABLE;
            if self.card.is_some() {
                ps |= PS_CARD_INSERTED | (1 << 18);
            }
            if !self.write_protect {
                ps |= PS_WRITE_PROTECT_PIN;
            }
            ps |= if self.busy > 0 { 0xE << 20 } else { 0xF << 20 };
            ps
        }

        fn software_reset(&mut self, bits: u8) {
            if bits & SR_ALL != 0 {
                self.blksize = 0;
                self.blkcnt = 0;
                self.arg = 0;
                self.mode = 0;
                self.resp = [0; 4];
                self.hc1 = 0;
                self.power = 0;
                self.clock = 0;
                self.timeout = 0;
                self.nis = 0;
                self.eis = 0;
                self.nisen = 0;
                self.eisen = 0;
                self.acmd_err = 0;
                self.xfer = None;
            }
            if bits & SR_CMD != 0 {
                self.nis &= !NIS_CMD_COMPLETE;
            }
            if bits & SR_DAT != 0 {
                self.xfer = None;
                self.nis &= !(NIS_TRANSFER_COMPLETE | NIS_BUF_RD_READY | NIS_BUF_WR_READY);
            }
            self.reset_bits = bits;
            self.reset_reads = 3;
        }

        fn load_block(&mut self) {
            let (Some(x), Some(card)) = (self.xfer.as_mut(), self.card.as_mut()) else {
                return;
            };
            if card.crc_error_at == Some(x.lba) {
                x.ready = false;
                if !x.auto12 {
                    // The card sent its one block and is back in tran; the host saw bad CRC.
                    card.state = St::Tran;
                }
                self.raise_error(EIS_DATA_CRC);
                return;
            }
            let s = x.lba as usize * SECTOR_SIZE;
            x.buf.copy_from_slice(&card.disk[s..s + SECTOR_SIZE]);
            x.pos = 0;
            x.ready = true;
            self.raise(NIS_BUF_RD_READY);
        }

        fn finish(&mut self) {
            let Some(x) = self.xfer.take() else { return };
            let card = self.card.as_mut().expect("a card");
            let mut auto12_failed = false;
            if x.auto12 {
                match card.command(CMD12, 0) {
                    Some(Answer::Short(s)) => self.resp[3] = s,
                    _ => auto12_failed = true,
                }
            } else if card.state == St::Data || card.state == St::Rcv {
                card.state = St::Tran;
            }
            let busy = if x.read { 0 } else { card.busy_polls };
            if busy > 0 {
                card.state = St::Prg;
            }
            if auto12_failed {
                self.acmd_err |= 1;
                self.raise_error(EIS_AUTO_CMD);
            }
            if busy == 0 {
                self.raise(NIS_TRANSFER_COMPLETE);
            } else {
                self.busy = busy;
            }
        }

        fn command(&mut self, word: u16) {
            let idx = ((word >> CMD_INDEX_SHIFT) & 0x3F) as u8;
            let rtype = word & 0b11;
            let data = word & CMD_DATA_PRESENT != 0;
            self.commands.push((idx, self.arg));
            let clk = self.sd_clock();
            if self.power & PC_BUS_POWER == 0 || clk == 0 {
                // QEMU ignores a command with the clock off: nothing completes.
                self.violations.push(format!(
                    "CMD{idx} with the bus powered off or the clock stopped"
                ));
                return;
            }
            if self.clock & 0xFFC0 == 0 {
                self.violations
                    .push("SD clock divisor 0 (broken on ZynqMP)".into());
            }
            let identifying = self
                .card
                .as_ref()
                .is_some_and(|c| matches!(c.state, St::Idle | St::Ready | St::Ident));
            if identifying && clk > u64::from(IDENT_CLOCK_HZ) {
                self.violations
                    .push(format!("CMD{idx} in identification at {clk} Hz"));
            }
            if clk > u64::from(DEFAULT_SPEED_HZ) {
                self.violations.push(format!("CMD{idx} at {clk} Hz"));
            }
            if (data || rtype == 0b11) && (self.xfer.is_some() || self.busy > 0) {
                self.violations
                    .push(format!("CMD{idx} while the DAT lines are busy"));
            }
            let Some(card) = self.card.as_mut() else {
                self.raise_error(EIS_CMD_TIMEOUT);
                return;
            };
            let answer = card.command(idx, self.arg);
            let accepted = matches!(card.state, St::Data | St::Rcv);
            match (answer, rtype) {
                (Some(Answer::Nothing), 0) => {}
                (None, _) => {
                    self.raise_error(EIS_CMD_TIMEOUT);
                    return;
                }
                (Some(Answer::Short(s)), 0b10 | 0b11) => self.resp = [s, 0, 0, 0],
                (Some(Answer::Long(v)), 0b01) => {
                    let v = v >> 8;
                    self.resp = [
                        v as u32,
                        (v >> 32) as u32,
                        (v >> 64) as u32,
                        (v >> 96) as u32,
                    ];
                }
                _ => {
                    self.violations
                        .push(format!("CMD{idx} with response type {rtype}"));
                    return;
                }
            }
            let crc_index = word & (CMD_CRC_CHECK | CMD_INDEX_CHECK);
            let want = match idx {
                2 | 9 => CMD_CRC_CHECK,
                41 | 0 => 0,
                _ => CMD_CRC_CHECK | CMD_INDEX_CHECK,
            };
            if crc_index != want {
                self.violations
                    .push(format!("CMD{idx} with checks {crc_index:#x}"));
            }
            self.raise(NIS_CMD_COMPLETE);
            if rtype == 0b11 {
                self.raise(NIS_TRANSFER_COMPLETE);
            }
            if !data {
                return;
            }
            let read = self.mode & TM_READ != 0;
            let multi = self.mode & TM_MULTI_BLOCK != 0;
            if self.blksize != 512 {
                self.violations.push(format!("block size {}", self.blksize));
            }
            if self.mode & TM_DMA_ENABLE != 0 {
                self.violations.push("DMA enabled".into());
            }
            if read != matches!(idx, 17 | 18) || multi != matches!(idx, 18 | 25) {
                self.violations
                    .push(format!("CMD{idx} with transfer mode {:#x}", self.mode));
            }
            if multi && self.mode & (TM_BLOCK_COUNT_ENABLE | TM_AUTO_CMD12) == 0 {
                self.violations
                    .push("open-ended multi-block transfer".into());
            }
            let card = self.card.as_ref().expect("a card");
            self.xfer = Some(Xfer {
                read,
                lba: card.data_lba,
                left: if multi { u32::from(self.blkcnt) } else { 1 },
                auto12: self.mode & TM_AUTO_CMD12 != 0,
                buf: vec![0; SECTOR_SIZE],
                pos: 0,
                ready: false,
            });
            if !accepted {
                // The card refused: no data ever comes (the driver must reset the DAT line).
                return;
            }
            if read {
                self.load_block();
            } else {
                self.xfer.as_mut().expect("xfer").ready = true;
                self.raise(NIS_BUF_WR_READY);
            }
        }

        fn read_port(&mut self) -> u32 {
            let Some(x) = self.xfer.as_mut().filter(|x| x.read && x.ready) else {
                self.violations
                    .push("Buffer Data Port read with no data".into());
                return 0;
            };
            let b = &x.buf[x.pos..x.pos + 4];
            let w = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            x.pos += 4;
            if x.pos == SECTOR_SIZE {
                x.left -= 1;
                x.lba += 1;
                x.ready = false;
                if x.left > 0 {
                    self.load_block();
                } else {
                    self.finish();
                }
            }
            w
        }

        fn write_port(&mut self, w: u32) {
            let Some(x) = self.xfer.as_mut().filter(|x| !x.read && x.ready) else {
                self.violations
                    .push("Buffer Data Port write with no space".into());
                return;
            };
            x.buf[x.pos..x.pos + 4].copy_from_slice(&w.to_le_bytes());
            x.pos += 4;
            if x.pos == SECTOR_SIZE {
                let card = self.card.as_mut().expect("a card");
                let s = x.lba as usize * SECTOR_SIZE;
                card.disk[s..s + SECTOR_SIZE].copy_from_slice(&x.buf);
                x.left -= 1;
                x.lba += 1;
                x.pos = 0;
                if x.left > 0 {
                    self.raise(NIS_BUF_WR_READY);
                } else {
                    x.ready = false;
                    self.finish();
                }
            }
        }
    }

    impl Registers for &Fake {
        fn read8(&self, offset: usize) -> Option<u8> {
            let mut c = self.ctl();
            Some(match offset {
                HOST_CONTROL_1 => c.hc1,
                POWER_CONTROL => c.power,
                TIMEOUT_CONTROL => c.timeout,
                SOFTWARE_RESET => {
                    if c.reset_reads > 0 && !c.reset_stuck {
                        c.reset_reads -= 1;
                    }
                    if c.reset_reads == 0 && !c.reset_stuck {
                        c.reset_bits = 0;
                    }
                    c.reset_bits
                }
                _ => return None,
            })
        }
        fn read16(&self, offset: usize) -> Option<u16> {
            let mut c = self.ctl();
            Some(match offset {
                HOST_CONTROLLER_VERSION => c.version,
                CLOCK_CONTROL => {
                    if c.clock & CC_INTERNAL_CLOCK_ENABLE != 0 && !c.clock_never_stable {
                        c.clock | CC_INTERNAL_CLOCK_STABLE
                    } else {
                        c.clock & !CC_INTERNAL_CLOCK_STABLE
                    }
                }
                NORMAL_INT_STATUS => {
                    c.tick();
                    c.nis()
                }
                ERROR_INT_STATUS => c.eis,
                AUTO_CMD_ERROR_STATUS => c.acmd_err,
                _ => return None,
            })
        }
        fn read32(&self, offset: usize) -> Option<u32> {
            let mut c = self.ctl();
            Some(match offset {
                PRESENT_STATE => c.present_state(),
                CAPABILITIES => c.caps as u32,
                o if o == CAPABILITIES + 4 => (c.caps >> 32) as u32,
                o if (RESPONSE..RESPONSE + 16).contains(&o) && o.is_multiple_of(4) => {
                    c.resp[(o - RESPONSE) / 4]
                }
                BUFFER_DATA_PORT => c.read_port(),
                _ => return None,
            })
        }
        fn write8(&self, offset: usize, value: u8) -> Option<()> {
            let mut c = self.ctl();
            match offset {
                HOST_CONTROL_1 => c.hc1 = value,
                POWER_CONTROL => {
                    c.power = value;
                    // As QEMU: no power without a card, or at a voltage it cannot supply.
                    if c.card.is_none() || value & 0b1110 != PC_BUS_VOLTAGE_3V3 {
                        c.power &= !PC_BUS_POWER;
                    }
                }
                TIMEOUT_CONTROL => c.timeout = value,
                SOFTWARE_RESET => c.software_reset(value),
                _ => return None,
            }
            Some(())
        }
        fn write16(&self, offset: usize, value: u16) -> Option<()> {
            let mut c = self.ctl();
            match offset {
                BLOCK_SIZE => c.blksize = value,
                BLOCK_COUNT => c.blkcnt = value,
                TRANSFER_MODE => c.mode = value,
                COMMAND => c.command(value),
                CLOCK_CONTROL => c.clock = value,
                NORMAL_INT_STATUS => c.nis &= !value,
                ERROR_INT_STATUS => {
                    c.eis &= !value;
                    if c.eis & EIS_AUTO_CMD == 0 {
                        c.acmd_err = 0;
                    }
                }
                NORMAL_INT_STATUS_ENABLE => {
                    c.nisen = value;
                    c.nis &= value;
                }
                ERROR_INT_STATUS_ENABLE => {
                    c.eisen = value;
                    c.eis &= value;
                }
                NORMAL_INT_SIGNAL_ENABLE | ERROR_INT_SIGNAL_ENABLE => {
                    if value != 0 {
                        c.violations.push("interrupt signals enabled".into());
                    }
                }
                _ => return None,
            }
            Some(())
        }
        fn write32(&self, offset: usize, value: u32) -> Option<()> {
            let mut c = self.ctl();
            match offset {
                ARGUMENT => c.arg = value,
                BUFFER_DATA_PORT => c.write_port(value),
                _ => return None,
            }
            Some(())
        }
    }

    /// A delay that only counts (microseconds "slept").
    #[derive(Debug, Clone, Default)]
    struct Clock(Rc<Cell<u64>>);

    impl Delay for Clock {
        fn delay_us(&mut self, us: u32) {
            self.0.set(self.0.get() + u64::from(us));
        }
    }

    fn init_with(f: &Fake, options: Options) -> (Result<SdCard<&Fake, Clock>, SdError>, Clock) {
        let clock = Clock::default();
        (SdCard::init(Sdhci::new(f, clock.clone()), options), clock)
    }

    fn init(f: &Fake) -> SdCard<&Fake, Clock> {
        let card = init_with(f, Options::default()).0.expect("the card starts");
        f.clean();
        card
    }

    fn pattern(seed: u64, sectors: usize) -> Vec<u8> {
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..sectors * SECTOR_SIZE)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    fn write_all(card: &mut SdCard<&Fake, Clock>, mut lba: u64, mut data: &[u8]) {
        while !data.is_empty() {
            let n = card.write(lba, data).expect("write");
            assert!((1..=MAX_BLOCKS).contains(&n), "wrote {n} sectors");
            data = &data[n * SECTOR_SIZE..];
            lba += n as u64;
        }
    }

    // ---------------------------------------------------------------------------------------

    #[test]
    fn init_brings_an_sdhc_card_to_tran_and_reports_its_capacity() {
        let f = Fake::new(Some(Card::sdhc(2048)));
        let card = init(&f);
        assert_eq!(card.sectors(), 2048);
        assert_eq!(card.sector_count(), 2048);
        assert!(card.high_capacity());
        assert_eq!(card.rca(), RCA);
        assert_eq!(card.cid(), CID & !0xFF, "the CRC byte is not kept");
        assert_eq!(card.clock_hz(), 25_000_000);
        assert_eq!(
            f.commands(),
            [0, 8, 55, 41, 55, 41, 55, 41, 55, 41, 2, 3, 9, 7, 55, 6, 13],
            "three busy ACMD41s, then ready; no CMD16 for SDHC"
        );
        let c = f.ctl();
        assert_eq!(c.commands[1], (CMD8, 0x1AA));
        assert_eq!(c.commands[3], (ACMD41, OCR_HCS | OCR_VDD_3V3));
        assert_eq!(c.commands[12], (CMD9, u32::from(RCA) << 16));
        assert_eq!(c.hc1 & HC1_DATA_WIDTH_4BIT, HC1_DATA_WIDTH_4BIT);
        assert_eq!(c.timeout, TIMEOUT_MAX);
        assert!(c.card.as_ref().unwrap().bus_width_4);
        assert_eq!(c.card.as_ref().unwrap().state, St::Tran);
    }

    #[test]
    fn init_reads_version_1_csds_and_sets_the_block_length() {
        for bl_len in [9, 10, 11] {
            let f = Fake::new(Some(Card::sdsc(8192, bl_len)));
            let card = init(&f);
            assert_eq!(card.sectors(), 8192, "READ_BL_LEN {bl_len}");
            assert!(!card.high_capacity());
            assert!(f.commands().contains(&CMD16));
            assert_eq!(f.card(|c| c.block_len), 512);
        }
        // A version 1.x card does not know CMD8: ACMD41 then goes without HCS.
        let mut old = Card::sdsc(4096, 9);
        old.v2 = false;
        let f = Fake::new(Some(old));
        let card = init(&f);
        assert_eq!(card.sectors(), 4096);
        let c = f.ctl();
        assert!(c.commands.contains(&(ACMD41, OCR_VDD_3V3)));
        assert!(!c
            .commands
            .iter()
            .any(|&(cmd, arg)| cmd == ACMD41 && arg & OCR_HCS != 0));
    }

    #[test]
    fn a_one_bit_bus_skips_acmd6() {
        let f = Fake::new(Some(Card::sdhc(1024)));
        let options = Options {
            four_bit_bus: false,
            ..Options::default()
        };
        let card = init_with(&f, options).0.unwrap();
        f.clean();
        assert!(!f.commands().contains(&ACMD6));
        assert_eq!(f.ctl().hc1 & HC1_DATA_WIDTH_4BIT, 0);
        drop(card);
    }

    #[test]
    fn reads_and_writes_round_trip_at_the_right_card_addresses() {
        for mut card in [Card::sdhc(2048), Card::sdsc(2048, 9), Card::sdsc(2048, 10)] {
            card.busy_polls = 7;
            let high = card.high_capacity;
            let f = Fake::new(Some(card));
            let mut sd = init(&f);
            let cases: [(u64, usize); 9] = [
                (0, 1),
                (1, 2),
                (7, 3),
                (100, 17),
                (300, 128),
                (500, 129),
                (700, 300),
                (2047, 1),
                (2040, 8),
            ];
            for (i, &(lba, n)) in cases.iter().enumerate() {
                let data = pattern(i as u64 + 1, n);
                let before = f.ctl().commands.len();
                write_all(&mut sd, lba, &data);
                // On the medium, at that sector: a wrong SDSC byte address would land elsewhere.
                let s = lba as usize * SECTOR_SIZE;
                assert!(
                    f.card(|c| c.disk[s..s + data.len()] == data[..]),
                    "lba {lba} x {n} (high capacity {high})"
                );
                let cmds: Vec<(u8, u32)> = f.ctl().commands[before..].to_vec();
                let first = if n == 1 { CMD24 } else { CMD25 };
                let addr = if high { lba as u32 } else { lba as u32 * 512 };
                assert_eq!(cmds[0], (first, addr));
                assert_eq!(cmds.last().unwrap().0, CMD13, "each write ends with CMD13");
                let mut back = vec![0u8; data.len()];
                let before = f.ctl().commands.len();
                sd.read(lba, &mut back).unwrap();
                assert_eq!(back, data, "lba {lba} x {n}");
                let reads: Vec<u8> = f.commands()[before..].to_vec();
                let want: Vec<u8> = (0..n)
                    .step_by(MAX_BLOCKS)
                    .map(|i| if n - i == 1 { CMD17 } else { CMD18 })
                    .collect();
                assert_eq!(reads, want, "{n} sectors in chunks of at most {MAX_BLOCKS}");
            }
            sd.flush().unwrap();
            // Nothing else was touched: sector 2 still zero... except where written above.
            assert!(f.card(|c| c.disk[4 * SECTOR_SIZE..7 * SECTOR_SIZE]
                .iter()
                .all(|&b| b == 0)));
            f.clean();
        }
    }

    #[test]
    fn a_write_returns_only_after_the_card_finished_programming() {
        let mut card = Card::sdhc(1024);
        card.busy_polls = 200;
        let f = Fake::new(Some(card));
        let mut sd = init(&f);
        for n in [1, 5] {
            assert_eq!(sd.write(10, &pattern(3, n)), Ok(n));
            let c = f.ctl();
            assert_eq!(c.busy, 0, "DAT0 released before write returned");
            assert_eq!(c.card.as_ref().unwrap().state, St::Tran);
            assert_eq!(c.commands.last().unwrap().0, CMD13);
        }
        assert_eq!(sd.flush(), Ok(()));
        assert_eq!(f.commands().last(), Some(&CMD13), "flush asks the card");
        f.clean();
    }

    #[test]
    fn a_card_stuck_busy_fails_the_write_within_its_budget() {
        let f = Fake::new(Some(Card::sdhc(1024)));
        let mut sd = init(&f);
        f.card(|c| c.stuck_busy = true);
        assert_eq!(sd.write(0, &[7; 512]), Err(IoError::Failed));
        assert_eq!(
            sd.last_error(),
            Some(SdError::Timeout(Wait::TransferComplete { cmd: CMD24 }))
        );
        // It gets better: the next write goes through.
        f.card(|c| c.stuck_busy = false);
        assert_eq!(sd.write(0, &[8; 512]), Ok(1));
        assert!(f.card(|c| c.disk[..512].iter().all(|&b| b == 8)));
    }

    #[test]
    fn out_of_range_and_misaligned_requests_are_refused_before_the_card_sees_them() {
        let f = Fake::new(Some(Card::sdhc(1024)));
        let mut sd = init(&f);
        let before = f.commands().len();
        let mut buf = vec![0u8; 1024];
        assert_eq!(sd.read(1023, &mut buf), Err(IoError::OutOfRange));
        assert_eq!(sd.read(1024, &mut buf[..512]), Err(IoError::OutOfRange));
        assert_eq!(sd.read(u64::MAX, &mut buf[..512]), Err(IoError::OutOfRange));
        assert_eq!(sd.read(0, &mut buf[..100]), Err(IoError::Misaligned));
        assert_eq!(sd.write(1023, &buf), Err(IoError::OutOfRange));
        assert_eq!(sd.write(u64::MAX, &buf), Err(IoError::OutOfRange));
        assert_eq!(sd.write(0, &buf[..513]), Err(IoError::Misaligned));
        assert_eq!(sd.write(0, &[]), Ok(0));
        assert_eq!(sd.read(0, &mut []), Ok(()));
        assert_eq!(f.commands().len(), before, "nothing reached the card");
    }

    #[test]
    fn a_card_reporting_out_of_range_fails_the_read_and_the_next_one_works() {
        // The CSD claims twice the sectors the card has: the card answers OUT_OF_RANGE.
        let mut card = Card::sdhc(1024);
        card.claimed_sectors = 2048;
        let f = Fake::new(Some(card));
        let mut sd = init(&f);
        assert_eq!(sd.sectors(), 2048);
        let mut buf = vec![0u8; 2048];
        assert_eq!(sd.read(1500, &mut buf), Err(IoError::Failed));
        match sd.last_error() {
            Some(SdError::CardStatus { cmd: CMD18, status }) => {
                assert_ne!(status & R1_OUT_OF_RANGE, 0)
            }
            e => panic!("{e:?}"),
        }
        assert!(f.ctl().xfer.is_none(), "the DAT line was reset");
        f.card(|c| c.disk[512..1024].fill(0x5A));
        sd.read(1, &mut buf[..512]).unwrap();
        assert!(buf[..512].iter().all(|&b| b == 0x5A));
        f.clean();
    }

    #[test]
    fn a_data_crc_error_fails_the_read_stops_the_card_and_leaves_it_usable() {
        let mut card = Card::sdhc(1024);
        card.crc_error_at = Some(5);
        let f = Fake::new(Some(card));
        let mut sd = init(&f);
        f.card(|c| c.disk[..8 * SECTOR_SIZE].copy_from_slice(&pattern(9, 8)));
        let mut buf = vec![0u8; 4 * SECTOR_SIZE];
        assert_eq!(sd.read(4, &mut buf), Err(IoError::Failed));
        match sd.last_error() {
            Some(SdError::Data { cmd: CMD18, status }) => assert_ne!(status & EIS_DATA_CRC, 0),
            e => panic!("{e:?}"),
        }
        assert_eq!(
            f.commands().last(),
            Some(&CMD12),
            "the multi-block read was stopped"
        );
        assert_eq!(f.card(|c| c.state), St::Tran);
        assert_eq!(sd.read(0, &mut buf), Ok(()));
        assert_eq!(buf, pattern(9, 8)[..4 * SECTOR_SIZE]);
        // A single-block read of the bad sector fails too, without a CMD12.
        assert_eq!(sd.read(5, &mut buf[..512]), Err(IoError::Failed));
        assert!(
            matches!(sd.last_error(), Some(SdError::Data { cmd: CMD17, .. })),
            "{:?}",
            sd.last_error()
        );
        assert_eq!(f.commands().last(), Some(&CMD17));
        assert_eq!(sd.flush(), Ok(()));
        f.clean();
    }

    #[test]
    fn a_card_that_never_powers_up_fails_after_one_second() {
        let mut card = Card::sdhc(1024);
        card.ready_after = None;
        let f = Fake::new(Some(card));
        let (r, clock) = init_with(&f, Options::default());
        assert_eq!(r.err(), Some(SdError::Timeout(Wait::CardPowerUp)));
        assert_eq!(f.card(|c| c.acmd41), POWER_UP_TRIES);
        let slept = clock.0.get();
        assert!(
            (1_000_000..1_100_000).contains(&slept),
            "{slept} us: the ACMD41 budget"
        );
        // An SDHC card asked without HCS never powers up either: the driver always sends HCS
        // to a version 2 card, so this one does.
        let f = Fake::new(Some(Card::sdhc(1024)));
        assert!(init_with(&f, Options::default()).0.is_ok());
    }

    #[test]
    fn a_command_timeout_fails_init_or_the_request_naming_the_command() {
        for cmd in [CMD2, CMD3, CMD9, CMD7, CMD55] {
            let mut card = Card::sdhc(1024);
            card.silent.push(cmd);
            let f = Fake::new(Some(card));
            match init_with(&f, Options::default()).0.err() {
                Some(SdError::Command { cmd: c, status }) => {
                    assert_eq!(c, cmd);
                    assert_ne!(status & EIS_CMD_TIMEOUT, 0);
                }
                e => panic!("CMD{cmd}: {e:?}"),
            }
            f.clean();
        }
        // After init: the card stops answering CMD13 (flush), then CMD17.
        let f = Fake::new(Some(Card::sdhc(1024)));
        let mut sd = init(&f);
        f.card(|c| c.silent.push(CMD13));
        assert_eq!(sd.flush(), Err(IoError::Failed));
        assert!(matches!(
            sd.last_error(),
            Some(SdError::Command { cmd: CMD13, .. })
        ));
        f.card(|c| c.silent = vec![CMD17]);
        assert_eq!(sd.read(0, &mut [0; 512]), Err(IoError::Failed));
        assert!(matches!(
            sd.last_error(),
            Some(SdError::Command { cmd: CMD17, .. })
        ));
        f.card(|c| c.silent.clear());
        assert_eq!(sd.read(0, &mut [0; 512]), Ok(()));
    }

    #[test]
    fn broken_controllers_and_cards_fail_init_with_what_went_wrong() {
        let f = Fake::new(None);
        assert_eq!(
            init_with(&f, Options::default()).0.err(),
            Some(SdError::NoCard)
        );

        let f = Fake::new(Some(Card::sdhc(1024)));
        f.ctl().clock_never_stable = true;
        let (r, clock) = init_with(&f, Options::default());
        assert_eq!(r.err(), Some(SdError::Timeout(Wait::InternalClockStable)));
        assert!(clock.0.get() >= u64::from(CLOCK_POLLS * POLL_INTERVAL_US));

        let f = Fake::new(Some(Card::sdhc(1024)));
        f.ctl().reset_stuck = true;
        assert_eq!(
            init_with(&f, Options::default()).0.err(),
            Some(SdError::Timeout(Wait::SoftwareReset))
        );

        let mut card = Card::sdhc(1024);
        card.wrong_echo = true;
        let f = Fake::new(Some(card));
        assert_eq!(
            init_with(&f, Options::default()).0.err(),
            Some(SdError::InterfaceCondition { response: 0x2AA })
        );

        // No base clock in the capabilities: refused unless the caller gives one.
        let f = Fake::new(Some(Card::sdhc(1024)));
        f.ctl().caps &= !0xFF00;
        assert_eq!(
            init_with(&f, Options::default()).0.err(),
            Some(SdError::NoBaseClock)
        );
        let f = Fake::new(Some(Card::sdhc(1024)));
        f.ctl().caps &= !0xFF00;
        let options = Options {
            base_clock_hz: Some(100_000_000),
            ..Options::default()
        };
        assert!(init_with(&f, options).0.is_ok());
        f.clean();

        let f = Fake::new(Some(Card::sdhc(1024)));
        f.ctl().caps &= !u64::from(CAP_VOLTAGE_3V3);
        assert_eq!(
            init_with(&f, Options::default()).0.err(),
            Some(SdError::No3v3)
        );
    }

    #[test]
    fn the_write_protect_switch_is_honoured_unless_told_otherwise() {
        let f = Fake::new(Some(Card::sdhc(1024)));
        let mut sd = init(&f);
        f.ctl().write_protect = true;
        let before = f.commands().len();
        assert_eq!(sd.write(0, &[1; 512]), Err(IoError::Failed));
        assert_eq!(sd.last_error(), Some(SdError::WriteProtected));
        assert_eq!(f.commands().len(), before);
        let mut buf = [0; 512];
        assert_eq!(sd.read(0, &mut buf), Ok(()), "reads still work");

        let f = Fake::new(Some(Card::sdhc(1024)));
        f.ctl().write_protect = true;
        let options = Options {
            honour_write_protect: false,
            ..Options::default()
        };
        let mut sd = init_with(&f, options).0.unwrap();
        assert_eq!(sd.write(0, &[1; 512]), Ok(1));
    }

    #[test]
    fn psdb_formats_and_mounts_a_store_on_the_card() {
        use psdb::{FormatOptions, Mode, Store};
        for card in [Card::sdhc(4096), Card::sdsc(4096, 9)] {
            let f = Fake::new(Some(card));
            let opts = FormatOptions {
                volume_id: *b"sdhci-test-volum",
                max_batch_bytes: 64 << 10,
            };
            let mut store = Store::format(init(&f), opts).unwrap();
            let ns = store.open_namespace("tenant-a").unwrap();
            store.put(ns, "tile/0/000", b"on an SD card").unwrap();
            store.put(ns, "big", &pattern(4, 60)).unwrap();
            store.flush().unwrap();
            drop(store.into_device());
            f.clean();

            // "Reboot": the card's medium in a new controller and card.
            let disk = f.card(|c| c.disk.clone());
            let card = Card {
                state: St::Idle,
                ..f.ctl().card.clone().unwrap()
            }
            .with_disk(disk);
            let g = Fake::new(Some(card));
            let (mut store, report) = Store::mount(init(&g), Mode::ReadWrite).unwrap();
            assert_eq!(report.problem, None);
            assert_eq!(report.objects, 2);
            let ns = store.open_namespace("tenant-a").unwrap();
            let mut out = Vec::new();
            assert!(store.get(ns, "tile/0/000", &mut out).unwrap());
            assert_eq!(out, b"on an SD card");
            assert!(store.get(ns, "big", &mut out).unwrap());
            assert_eq!(out, pattern(4, 60));
            g.clean();
        }
    }

    #[test]
    fn csds_as_qemu_builds_them() {
        // hw/sd/sd.c sd_set_csd: a 256 MiB standard-capacity card (C_SIZE 1023,
        // C_SIZE_MULT 7, READ_BL_LEN 9) and a 4 GiB high-capacity one (C_SIZE 8191).
        let sdsc: [u8; 16] = [
            0x00, 0x26, 0x00, 0x5a, 0x5f, 0x59, 0xe0, 0xff, 0xff, 0xff, 0xdf, 0xff, 0x92, 0x60,
            0x00, 0x01,
        ];
        assert_eq!(csd_sectors(u128::from_be_bytes(sdsc)), Ok(256 << 11));
        let sdhc: [u8; 16] = [
            0x40, 0x0e, 0x00, 0x32, 0x5b, 0x59, 0x00, 0x00, 0x1f, 0xff, 0x7f, 0x80, 0x0a, 0x40,
            0x00, 0x01,
        ];
        assert_eq!(csd_sectors(u128::from_be_bytes(sdhc)), Ok(4 << 21));
        let sduc = u128::from_be_bytes(sdhc) ^ (0b11 << 126);
        assert_eq!(csd_sectors(sduc), Err(SdError::Csd { structure: 2 }));
        let bad_bl = u128::from_be_bytes(sdsc) & !(0xF << 80);
        assert_eq!(csd_sectors(bad_bl), Err(SdError::Csd { structure: 0 }));
        // The Response registers hold bits 127:8; long_response puts them back.
        let r = [0x1122_3344, 0x5566_7788, 0x99AA_BBCC, 0x00DD_EEFF];
        assert_eq!(long_response(r), 0xDDEE_FF99_AABB_CC55_6677_8811_2233_4400);
    }

    #[test]
    fn clock_divisors_never_exceed_the_target_and_never_divide_by_zero() {
        let v3 = SPEC_VERSION_3;
        assert_eq!(
            clock_divisor(v3, 100_000_000, 400_000),
            Ok((125 << 8, 400_000))
        );
        assert_eq!(
            clock_divisor(v3, 100_000_000, 25_000_000),
            Ok((2 << 8, 25_000_000))
        );
        // 10-bit divisors: 200 MHz at 400 kHz is N = 250; 400 MHz is N = 500 (0x1F4).
        assert_eq!(
            clock_divisor(v3, 200_000_000, 400_000),
            Ok((250 << 8, 400_000))
        );
        assert_eq!(
            clock_divisor(v3, 400_000_000, 400_000),
            Ok(((0xF4 << 8) | (1 << 6), 400_000))
        );
        assert_eq!(
            clock_divisor(v3, 187_500_000, 25_000_000),
            Ok((4 << 8, 23_437_500))
        );
        assert_eq!(
            clock_divisor(v3, 20_000_000, 25_000_000),
            Ok((1 << 8, 10_000_000))
        );
        assert!(
            clock_divisor(v3, 1_000_000_000, 400_000).is_err(),
            "N would be 1250"
        );
        assert!(clock_divisor(v3, 0, 400_000).is_err());
        // Before 3.00: powers of two up to 128.
        assert_eq!(
            clock_divisor(1, 100_000_000, 400_000),
            Ok((128 << 8, 390_625))
        );
        assert_eq!(
            clock_divisor(1, 100_000_000, 25_000_000),
            Ok((2 << 8, 25_000_000))
        );
        assert!(clock_divisor(1, 200_000_000, 400_000).is_err());
    }

    #[test]
    fn errors_say_what_went_wrong() {
        assert_eq!(
            SdError::Timeout(Wait::CardPowerUp).to_string(),
            "sdhci: timed out waiting for the card to power up (ACMD41) (1000 polls 1000 us apart)"
        );
        assert_eq!(
            SdError::Timeout(Wait::BufferReadReady { cmd: 18 }).to_string(),
            "sdhci: timed out waiting for read data of CMD18 (100000 polls 10 us apart)"
        );
        assert_eq!(
            SdError::Data {
                cmd: 17,
                status: EIS_DATA_CRC
            }
            .to_string(),
            "sdhci: data of CMD17 failed (error interrupt status 0x0020)"
        );
        assert_eq!(
            SdError::CardState { status: 7 << 9 }.to_string(),
            "sdhci: card in state 7 instead of tran (status 0x00000e00)"
        );
        assert_eq!(SdError::NoCard.to_string(), "sdhci: no card in the slot");
        // Every budget is at least a second for card operations, and no wait is unbounded.
        for w in [
            Wait::CardBusy { cmd: 24 },
            Wait::TransferState,
            Wait::CardPowerUp,
        ] {
            let (polls, us) = w.budget();
            assert!(u64::from(polls) * u64::from(us) >= 1_000_000, "{w}");
        }
    }
}

//! The numbers of the Microkit 2.3 PD ABI on seL4 16 (MCS, aarch64), in one place.
//!
//! Sources: `/work/shared/design/microkit-abi.md`, checked against the Microkit 2.3.0 tool and
//! `libmicrokit` sources and the SDK built from them (`invocations_all.json`, `syscall.h`).

/// Cap slot of the PD's own endpoint (or notification, if it receives no PPCs).
pub const INPUT_CAP: u64 = 1;
/// Cap slot of the MCS reply object.
pub const REPLY_CAP: u64 = 4;
/// Cap slot of the monitor's endpoint (passive PDs only).
pub const MONITOR_EP: u64 = 5;
/// First cap slot of the notification caps, indexed by channel.
pub const BASE_OUTPUT_NOTIFICATION_CAP: u64 = 10;
/// First cap slot of the PPC endpoint caps, indexed by channel.
pub const BASE_ENDPOINT_CAP: u64 = 74;
/// First cap slot of the IRQ handler caps, indexed by channel.
pub const BASE_IRQ_CAP: u64 = 138;
/// First cap slot of child PD TCB caps, indexed by child id.
pub const BASE_TCB_CAP: u64 = 202;

/// Badge bit marking a protected procedure call (the low bits are the callee's channel).
pub const BADGE_PPC_BIT: u32 = 63;
/// Badge bit marking a fault of a child PD (the low bits are the child id).
pub const BADGE_FAULT_BIT: u32 = 62;
/// Mask of the channel id in a PPC badge.
pub const PPC_CHANNEL_MASK: u64 = 0x3f;
/// Mask of the child id in a fault badge.
pub const FAULT_CHILD_MASK: u64 = 0xff;

/// Number of channel ids a PD has (0..=61): bits 62 and 63 of a badge are flags.
pub const MAX_CHANNELS: usize = 62;
/// Length of the `microkit_name` symbol.
pub const PD_NAME_LENGTH: usize = 64;

/// Message registers in the IPC buffer (`seL4_MsgMaxLength`).
pub const MSG_MAX_LENGTH: usize = 120;
/// Message registers passed in machine registers (x2..x5 on aarch64).
pub const MSG_REGISTERS_IN_CPU: usize = 4;

/// Address of the IPC buffer: the tool maps it at `vspace_user_top & !0xfff`, the SDK's
/// `board/<board>/<config>/address_space_constants.json` ([`board::SDK`]).
pub const IPC_BUFFER_ADDR: usize = (board::SDK.vspace_user_top & !0xfff) as usize;

/// aarch64 MCS system call numbers (x7).
pub mod syscall {
    pub const CALL: i64 = -1;
    pub const REPLY_RECV: i64 = -2;
    pub const NB_SEND_RECV: i64 = -3;
    pub const SEND: i64 = -5;
    pub const RECV: i64 = -7;
    /// Only on kernels built with `CONFIG_PRINTING` (the SDK's debug config).
    pub const DEBUG_PUT_CHAR: i64 = -12;
}

/// Object invocation labels that differ between boards and SDK configurations: a kernel with
/// the hardware debug API (`qemu_virt_aarch64`'s debug configuration; not zcu102's) has four
/// more TCB invocations before the IRQ ones. Values from the SDK's
/// `board/<board>/<config>/invocations_all.json` ([`board::SDK`]).
pub mod invocation {
    /// `IRQAckIRQ` of the board and configuration built for.
    pub const IRQ_ACK_IRQ: u64 = super::board::SDK.irq_ack_irq;
}

/// The board the image is built for, chosen by the crate's `board-*` feature (none: the
/// default board, `qemu_virt_aarch64`), and the SDK's constants for it in the configuration
/// built for. This table is the one place they are written; `tests/sdk_constants.rs` compares
/// every entry with the SDK's own files (`address_space_constants.json`,
/// `invocations_all.json`, the kernel's `gen_config.h`) when an SDK is there.
pub mod board {
    /// A board Microkit 2.3.0 supports and this runtime was checked on.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Board {
        /// QEMU's `virt` machine, Cortex-A53.
        QemuVirtAarch64,
        /// The Xilinx ZCU102 (Zynq UltraScale+ MPSoC, Cortex-A53), and QEMU's `xlnx-zcu102`.
        Zcu102,
    }

    impl Board {
        /// The SDK's name for it (`microkit --board`).
        pub const fn name(self) -> &'static str {
            match self {
                Board::QemuVirtAarch64 => "qemu_virt_aarch64",
                Board::Zcu102 => "zcu102",
            }
        }
    }

    /// What the runtime takes from one board's SDK files in one configuration.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct SdkConstants {
        /// `vspace_user_top` (`address_space_constants.json`).
        pub vspace_user_top: u64,
        /// `IRQAckIRQ` (`invocations_all.json`).
        pub irq_ack_irq: u64,
        /// `CONFIG_EXPORT_PCNT_USER` (the physical counter readable at EL0: drivers::counter).
        pub export_pcnt_user: bool,
    }

    const fn k(vspace_user_top: u64, irq_ack_irq: u64) -> SdkConstants {
        SdkConstants {
            vspace_user_top,
            irq_ack_irq,
            export_pcnt_user: true,
        }
    }

    /// Every (board, configuration) and its constants, as the SDK states them.
    pub const TABLE: &[(Board, &str, SdkConstants)] = &[
        (Board::QemuVirtAarch64, "debug", k(0xff_ffff_ffff, 31)),
        (Board::QemuVirtAarch64, "release", k(0xff_ffff_ffff, 27)),
        (Board::Zcu102, "debug", k(0xff_ffff_ffff, 27)),
        (Board::Zcu102, "release", k(0xff_ffff_ffff, 27)),
    ];

    /// The board built for.
    pub const BOARD: Board = if cfg!(feature = "board-zcu102") {
        Board::Zcu102
    } else {
        Board::QemuVirtAarch64
    };

    /// The configuration built for (`release` with `config-release`, else `debug`: a host
    /// build has neither and never uses these values).
    pub const CONFIG: &str = if cfg!(feature = "config-release") {
        "release"
    } else {
        "debug"
    };

    /// The constants of [`BOARD`] in [`CONFIG`].
    // A constant, evaluated when the crate is built: a board or configuration the table lacks
    // fails the build with this message, never a running PD.
    #[allow(clippy::panic)]
    pub const SDK: SdkConstants = match lookup(BOARD, CONFIG) {
        Some(k) => k,
        None => panic!("microkit: no SDK constants for this board and configuration"),
    };

    const fn same(a: &str, b: &str) -> bool {
        let (a, b) = (a.as_bytes(), b.as_bytes());
        if a.len() != b.len() {
            return false;
        }
        let mut i = 0;
        while i < a.len() {
            if a[i] != b[i] {
                return false;
            }
            i += 1;
        }
        true
    }

    /// The table's entry for `board` in `config`, if it has one.
    pub const fn lookup(board: Board, config: &str) -> Option<SdkConstants> {
        let mut i = 0;
        while i < TABLE.len() {
            let (b, c, k) = TABLE[i];
            if b as u8 == board as u8 && same(c, config) {
                return Some(k);
            }
            i += 1;
        }
        None
    }
}

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

/// Address of the IPC buffer: the tool maps it at `vspace_user_top & !0xfff`, read from the
/// SDK's `board/qemu_virt_aarch64/<config>/address_space_constants.json`
/// (`vspace_user_top` = 0xff_ffff_ffff). Board specific: re-check for another board.
pub const IPC_BUFFER_ADDR: usize = 0xff_ffff_f000;

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

/// Object invocation labels that differ between SDK configurations (the debug kernel enables
/// the hardware debug API, which adds four TCB invocations before the IRQ ones). Values from the
/// SDK's `board/qemu_virt_aarch64/<config>/invocations_all.json`.
pub mod invocation {
    /// `IRQAckIRQ` in the debug configuration.
    pub const IRQ_ACK_IRQ_DEBUG: u64 = 31;
    /// `IRQAckIRQ` in the release configuration.
    pub const IRQ_ACK_IRQ_RELEASE: u64 = 27;
}

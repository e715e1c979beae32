//! The seL4 backend: patched symbols, system calls, the event loop and the panic handler.
//!
//! Compiled only for `aarch64` bare metal (`target_os = "none"`). Every `unsafe` block of the
//! project outside device drivers is in this file, `region.rs` (volatile access to mapped
//! regions) and `heap.rs` (the global allocator).

use core::{
    arch::asm,
    fmt::{self, Write as _},
    ptr,
    sync::atomic::{AtomicBool, Ordering},
};

use crate::{
    abi::{
        invocation, syscall, BASE_ENDPOINT_CAP, BASE_IRQ_CAP, BASE_OUTPUT_NOTIFICATION_CAP,
        INPUT_CAP, IPC_BUFFER_ADDR, MONITOR_EP, MSG_MAX_LENGTH, MSG_REGISTERS_IN_CPU,
        PD_NAME_LENGTH, REPLY_CAP,
    },
    event::{dispatch, Event, Wait},
    Channel, Handler, IrqAckError, MessageInfo, PdName,
};

#[cfg(all(feature = "config-debug", feature = "config-release"))]
compile_error!("microkit: enable exactly one of the features `config-debug`, `config-release`");
#[cfg(not(any(feature = "config-debug", feature = "config-release")))]
compile_error!(
    "microkit: building for seL4 needs the SDK configuration: enable feature `config-debug` or \
     `config-release` (the same as `microkit --config`)"
);

#[cfg(all(feature = "board-qemu_virt_aarch64", feature = "board-zcu102"))]
compile_error!("microkit: enable at most one `board-*` feature (the same as `microkit --board`)");

const IRQ_ACK_IRQ: u64 = invocation::IRQ_ACK_IRQ;

// ---------------------------------------------------------------------------------------------
// Symbols the microkit tool writes into the ELF file (it aborts if one is missing). They are
// zero here and patched in the image, so the compiler must never see their value: every read is
// volatile. `#[used]` and the linker script's KEEP stop section GC from dropping them.

#[allow(non_upper_case_globals)]
#[no_mangle]
#[used]
static mut microkit_name: [u8; PD_NAME_LENGTH] = [0; PD_NAME_LENGTH];
/// 1 if the PD is passive (a byte, not a `bool`, so any patched value is valid).
#[allow(non_upper_case_globals)]
#[no_mangle]
#[used]
static mut microkit_passive: u8 = 0;
#[allow(non_upper_case_globals)]
#[no_mangle]
#[used]
static mut microkit_irqs: u64 = 0;
#[allow(non_upper_case_globals)]
#[no_mangle]
#[used]
static mut microkit_notifications: u64 = 0;
#[allow(non_upper_case_globals)]
#[no_mangle]
#[used]
static mut microkit_pps: u64 = 0;
/// x86 I/O ports: unused on aarch64, but the tool requires the symbol on every architecture.
#[allow(non_upper_case_globals)]
#[no_mangle]
#[used]
static mut microkit_ioports: u64 = 0;

pub(crate) fn pd_name() -> PdName {
    // SAFETY: the symbol is a plain byte array written only by the tool, before boot; a
    // volatile copy reads what the image holds instead of the compile-time zeros.
    let bytes = unsafe { ptr::read_volatile(&raw const microkit_name) };
    PdName::from_bytes(bytes)
}

pub(crate) fn pd_is_passive() -> bool {
    // SAFETY: as in `pd_name`: a byte patched by the tool, read volatile.
    unsafe { ptr::read_volatile(&raw const microkit_passive) != 0 }
}

fn irqs() -> u64 {
    // SAFETY: as in `pd_name`.
    unsafe { ptr::read_volatile(&raw const microkit_irqs) }
}

fn notifications() -> u64 {
    // SAFETY: as in `pd_name`.
    unsafe { ptr::read_volatile(&raw const microkit_notifications) }
}

fn pps() -> u64 {
    // SAFETY: as in `pd_name`.
    unsafe { ptr::read_volatile(&raw const microkit_pps) }
}

#[allow(clippy::panic)] // A channel system.xml does not grant is a build mistake: stop the PD.
#[track_caller]
fn check(mask: u64, channel: Channel, what: &str) {
    if mask & (1 << channel.index()) == 0 {
        panic!(
            "{what}: channel {} not allowed by system.xml",
            channel.index()
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Message registers. MR0..MR3 travel in x2..x5; like libsel4, the runtime keeps the IPC buffer
// as the single home of every message register: a send loads MR0..MR3 from it into x2..x5, a
// receive stores x2..x5 back, and MR4.. are read and written there directly.

/// Address of message register `i` in the IPC buffer (`seL4_IPCBuffer.msg[i]`, after `tag`).
fn mr_ptr(i: usize) -> *mut u64 {
    (IPC_BUFFER_ADDR + 8 * (1 + i)) as *mut u64
}

#[allow(clippy::panic)] // Register indices are chosen by code, not by a peer: a bad one is a bug.
#[track_caller]
fn check_mr(i: usize) {
    if i >= MSG_MAX_LENGTH {
        panic!("message register {i} out of range (max {MSG_MAX_LENGTH})");
    }
}

#[track_caller]
pub(crate) fn get_mr(i: usize) -> u64 {
    check_mr(i);
    // SAFETY: i < 120, so the word lies in the IPC buffer page the tool maps read-write at
    // IPC_BUFFER_ADDR for the PD's only thread; volatile because the kernel writes it.
    unsafe { ptr::read_volatile(mr_ptr(i)) }
}

#[track_caller]
pub(crate) fn set_mr(i: usize, value: u64) {
    check_mr(i);
    // SAFETY: as in `get_mr`.
    unsafe { ptr::write_volatile(mr_ptr(i), value) }
}

fn load_cpu_mrs() -> [u64; MSG_REGISTERS_IN_CPU] {
    [get_mr(0), get_mr(1), get_mr(2), get_mr(3)]
}

fn store_cpu_mrs(mrs: [u64; MSG_REGISTERS_IN_CPU]) {
    for (i, v) in mrs.into_iter().enumerate() {
        set_mr(i, v);
    }
}

// ---------------------------------------------------------------------------------------------
// System calls (aarch64, MCS): `svc #0`, x7 = number, x0 = cap in / badge out, x1 = info,
// x2..x5 = MR0..MR3, x6 = reply cap, x8 = NBSendRecv destination. The kernel preserves every
// other register; the IPC buffer is ordinary memory it may read and write, which `asm!` assumes
// by default (no `nomem`/`readonly`).

/// `seL4_Recv(INPUT_CAP, &badge, REPLY_CAP)`.
fn recv() -> (u64, MessageInfo) {
    let (badge, info, m0, m1, m2, m3): (u64, u64, u64, u64, u64, u64);
    // SAFETY: a Recv on the PD's own input cap; it only writes the registers declared here and
    // the IPC buffer.
    unsafe {
        asm!(
            "svc #0",
            inout("x0") INPUT_CAP => badge,
            lateout("x1") info,
            lateout("x2") m0,
            lateout("x3") m1,
            lateout("x4") m2,
            lateout("x5") m3,
            inout("x6") REPLY_CAP => _,
            in("x7") syscall::RECV,
            options(nostack),
        );
    }
    store_cpu_mrs([m0, m1, m2, m3]);
    (badge, MessageInfo::from_word(info))
}

/// `seL4_ReplyRecv(INPUT_CAP, reply, &badge, REPLY_CAP)`.
fn reply_recv(reply: MessageInfo) -> (u64, MessageInfo) {
    let [m0, m1, m2, m3] = load_cpu_mrs();
    let (badge, info, o0, o1, o2, o3): (u64, u64, u64, u64, u64, u64);
    // SAFETY: replies on the PD's reply object and waits on its input cap; writes only the
    // declared registers and the IPC buffer.
    unsafe {
        asm!(
            "svc #0",
            inout("x0") INPUT_CAP => badge,
            inout("x1") reply.into_word() => info,
            inout("x2") m0 => o0,
            inout("x3") m1 => o1,
            inout("x4") m2 => o2,
            inout("x5") m3 => o3,
            inout("x6") REPLY_CAP => _,
            in("x7") syscall::REPLY_RECV,
            options(nostack),
        );
    }
    store_cpu_mrs([o0, o1, o2, o3]);
    (badge, MessageInfo::from_word(info))
}

/// `seL4_NBSendRecv(dest, msg, INPUT_CAP, &badge, REPLY_CAP)`.
fn nb_send_recv(dest: u64, msg: MessageInfo) -> (u64, MessageInfo) {
    let [m0, m1, m2, m3] = load_cpu_mrs();
    let (badge, info, o0, o1, o2, o3): (u64, u64, u64, u64, u64, u64);
    // SAFETY: a non-blocking send to `dest` (a cap of this PD) then a wait on the input cap;
    // writes only the declared registers and the IPC buffer.
    unsafe {
        asm!(
            "svc #0",
            inout("x0") INPUT_CAP => badge,
            inout("x1") msg.into_word() => info,
            inout("x2") m0 => o0,
            inout("x3") m1 => o1,
            inout("x4") m2 => o2,
            inout("x5") m3 => o3,
            inout("x6") REPLY_CAP => _,
            in("x7") syscall::NB_SEND_RECV,
            inout("x8") dest => _,
            options(nostack),
        );
    }
    store_cpu_mrs([o0, o1, o2, o3]);
    (badge, MessageInfo::from_word(info))
}

/// `seL4_Call(cap, msg)`; MR0..MR3 of the reply are returned, not stored.
fn call(cap: u64, msg: MessageInfo) -> (MessageInfo, [u64; MSG_REGISTERS_IN_CPU]) {
    let [m0, m1, m2, m3] = load_cpu_mrs();
    let (info, o0, o1, o2, o3): (u64, u64, u64, u64, u64);
    // SAFETY: a Call on a cap of this PD with no reply cap (x6 = 0, as libsel4 does on MCS);
    // writes only the declared registers and the IPC buffer.
    unsafe {
        asm!(
            "svc #0",
            inout("x0") cap => _,
            inout("x1") msg.into_word() => info,
            inout("x2") m0 => o0,
            inout("x3") m1 => o1,
            inout("x4") m2 => o2,
            inout("x5") m3 => o3,
            inout("x6") 0u64 => _,
            in("x7") syscall::CALL,
            options(nostack),
        );
    }
    (MessageInfo::from_word(info), [o0, o1, o2, o3])
}

/// `seL4_Signal(cap)`: a Send of an empty message.
fn signal(cap: u64) {
    // SAFETY: a Send with an empty message on a cap of this PD; clobbers x0 and x1 only.
    unsafe {
        asm!(
            "svc #0",
            inout("x0") cap => _,
            inout("x1") 0u64 => _,
            in("x7") syscall::SEND,
            options(nostack),
        );
    }
}

#[track_caller]
pub(crate) fn notify(channel: Channel) {
    check(notifications(), channel, "notify");
    signal(BASE_OUTPUT_NOTIFICATION_CAP + channel.index() as u64);
}

#[track_caller]
pub(crate) fn pp_call(channel: Channel, msg: MessageInfo) -> MessageInfo {
    check(pps(), channel, "pp_call");
    let (reply, mrs) = call(BASE_ENDPOINT_CAP + channel.index() as u64, msg);
    store_cpu_mrs(mrs);
    reply
}

#[track_caller]
pub(crate) fn irq_ack(channel: Channel) -> Result<(), IrqAckError> {
    check(irqs(), channel, "irq_ack");
    // The invocation's reply carries the seL4 error in its label and no registers: leave the
    // PD's message registers untouched, as libsel4's invocation stubs do.
    let (reply, _) = call(
        BASE_IRQ_CAP + channel.index() as u64,
        MessageInfo::new(IRQ_ACK_IRQ, 0),
    );
    match reply.label() {
        0 => Ok(()),
        code => Err(IrqAckError { code }),
    }
}

// ---------------------------------------------------------------------------------------------
// Debug output: the kernel's DebugPutChar, which only debug kernels (CONFIG_PRINTING) have.

pub(crate) fn debug_put_str(s: &str) {
    #[cfg(feature = "config-debug")]
    for b in s.bytes() {
        // SAFETY: DebugPutChar exists on the debug kernel this build is configured for; it
        // takes the byte in x0 and, like libsel4's stub, may clobber x0..x6.
        unsafe {
            asm!(
                "svc #0",
                inout("x0") u64::from(b) => _,
                lateout("x1") _,
                lateout("x2") _,
                lateout("x3") _,
                lateout("x4") _,
                lateout("x5") _,
                lateout("x6") _,
                in("x7") syscall::DEBUG_PUT_CHAR,
                options(nostack),
            );
        }
    }
    #[cfg(not(feature = "config-debug"))]
    let _ = s;
}

// ---------------------------------------------------------------------------------------------
// Entry, event loop, stopping.

/// Runs the PD: `init`, then acknowledges every IRQ channel once (libmicrokit's workaround for
/// seL4 issue 1536), then loops: wait, decode, dispatch. Never returns; a handler error stops
/// the PD.
pub fn run_main<H: Handler>(init: impl FnOnce() -> H) -> ! {
    let mut handler = init();
    let mut pending = irqs();
    while pending != 0 {
        let index = pending.trailing_zeros() as usize;
        pending &= pending - 1;
        if let Some(channel) = Channel::try_new(index) {
            if let Err(e) = channel.irq_ack() {
                stop(format_args!("initial {e} on channel {index}"));
            }
        }
    }
    let mut wait = Wait::first(pd_is_passive());
    loop {
        let (badge, info) = match wait {
            Wait::Recv => recv(),
            Wait::ReplyRecv(reply) => reply_recv(reply),
            Wait::SignalMonitorRecv => nb_send_recv(MONITOR_EP, MessageInfo::default()),
        };
        wait = match dispatch(&mut handler, Event::decode(badge, info)) {
            Ok(next) => next,
            Err(e) => stop(format_args!("handler error: {e}")),
        };
    }
}

/// Prints `<pd>|ERROR: <why>` (debug config) and stops the PD with a fault the monitor reports.
fn stop(why: fmt::Arguments<'_>) -> ! {
    let name = pd_name();
    let _ = writeln!(crate::DebugWriter, "{}|ERROR: {why}", name.as_str());
    fault()
}

/// Stops this PD: an undefined instruction raises a user exception the kernel sends to the
/// monitor (or the parent PD), which prints `MON|ERROR: faulting PD: <name>` and the registers.
fn fault() -> ! {
    loop {
        // SAFETY: `udf` only raises an exception; the thread is suspended by its fault handler
        // and never resumed past it (the loop covers a handler that does resume it).
        unsafe { asm!("udf #0", options(nomem, nostack)) }
    }
}

static PANICKING: AtomicBool = AtomicBool::new(false);

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    // A panic while printing a panic: skip straight to the fault.
    if !PANICKING.swap(true, Ordering::Relaxed) {
        let name = pd_name();
        let _ = writeln!(crate::DebugWriter, "{}|PANIC: {info}", name.as_str());
    }
    fault()
}

/// The `_start` of a PD: `protection_domain!` expands this with the PD's entry function.
#[doc(hidden)]
#[macro_export]
macro_rules! __sel4_entry {
    ($main:ident) => {
        // The tool starts the PD at e_entry with every register zero and SP at the top of the
        // stack it mapped: clear the frame pointer and link register (so backtraces end here)
        // and branch to Rust, which never returns. (Inside this runtime's macro: the PD crate
        // itself stays free of `unsafe`.)
        ::core::arch::global_asm!(
            ".section .text._start, \"ax\", %progbits",
            ".global _start",
            ".type _start, %function",
            "_start:",
            "    mov x29, #0",
            "    mov x30, #0",
            "    b {main}",
            ".size _start, . - _start",
            main = sym $main,
        );
    };
}

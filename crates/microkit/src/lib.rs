//! A pure-Rust runtime for seL4 Microkit 2.3 protection domains.
//!
//! It implements the PD side of the Microkit ABI directly (no libmicrokit, no libsel4, no C),
//! for `aarch64-unknown-none` on stable Rust, linked by rust-lld with this crate's
//! `microkit-pd.ld`: the symbols the `microkit` tool patches (`microkit_name`, `microkit_passive`,
//! `microkit_irqs`, `microkit_notifications`, `microkit_pps`, `microkit_ioports`), the `_start`
//! entry, the MCS system calls, the event loop, message registers, debug output and a panic
//! handler that names the PD. The ABI facts it relies on are in
//! `/work/shared/design/microkit-abi.md` and, numerically, in [`abi`].
//!
//! # For readers of rust-sel4's `sel4-microkit`
//! The API follows that crate so its users feel at home: a [`Handler`] with `notified`,
//! `protected` and `fault` (defaults that fail loudly, errors that stop the PD), [`Channel`] with
//! [`notify`](Channel::notify), [`pp_call`](Channel::pp_call) and [`irq_ack`](Channel::irq_ack),
//! [`MessageInfo`], [`ChannelSet`] iteration, [`get_mr`]/[`set_mr`], [`pd_name`],
//! [`debug_println!`], and an entry macro ([`protection_domain!`], a `macro_rules!` stand-in for
//! the `#[protection_domain]` attribute). Not provided (yet): deferred actions, child TCB
//! control, vCPUs; [`MessageInfo`] has no capability fields.
//!
//! # Memory
//! - [`region`]: the `<map>`s of system.xml as typed [`Region`](region::Region)s, declared with
//!   [`memory_region!`] (which defines the `setvar_vaddr`/`setvar_size` symbols the tool
//!   patches) and reached only by bounds-checked volatile copies, never by reference.
//! - [`patched`]: byte arrays a host tool writes into the ELF file after linking
//!   ([`patched_bytes!`]), e.g. a per-PD key in copies of one ELF.
//! - [`heap`]: a bounded `#[global_allocator]` for PDs that use `alloc`, over a region whose size
//!   system.xml states, or a static arena ([`heap!`]); running out stops the PD with its name.
//!
//! # Backends
//! - **seL4** (`target_os = "none"`, `aarch64`): system calls. Exactly one of the features
//!   `config-debug` / `config-release` must name the SDK configuration the image is packed with
//!   (object invocation numbers differ, and only debug kernels have `DebugPutChar`; in release
//!   [`debug_println!`] prints nothing).
//! - **host** (everything else): the same API forwards to a [`host::Backend`] installed per
//!   thread (hosted targets; feature `std` elsewhere), which is how the simulator and tests run a PD's handler; the
//!   backend also provides the memory of the PD's regions ([`host::HostMemory`]).
//!
//! The logic that decides things (badge decoding, [`MessageInfo`] packing, dispatch and the
//! choice of the next system call, [`ChannelSet`]) is plain code in [`event`], [`message`] and
//! [`channel`] and is unit-tested on the host.
//!
//! # A PD
//! ```ignore
//! #![cfg_attr(target_os = "none", no_std, no_main)]
//! #![forbid(unsafe_code)]
//! use microkit::{debug_println, Channel, ChannelSet, Handler};
//!
//! struct Pd;
//! impl Handler for Pd {
//!     type Error = core::convert::Infallible;
//!     fn notified(&mut self, channels: ChannelSet) -> Result<(), Self::Error> {
//!         debug_println!("notified on {}", channels.display());
//!         Ok(())
//!     }
//! }
//!
//! fn init() -> Pd {
//!     debug_println!("{}|INFO: hello", microkit::pd_name());
//!     Pd
//! }
//!
//! microkit::protection_domain!(init);
//! ```
//! On the host the macro expands to a `main` that explains the binary is a PD image, so PD
//! binaries still build (and are linted) in `cargo test --workspace`.

#![cfg_attr(not(test), no_std)]

// The host backend's per-thread slot (`host::set_backend`) needs std; tests have it anyway.
#[cfg(all(any(feature = "std", not(target_os = "none")), not(test)))]
extern crate std;
// Host memory for regions (`host::HostMemory`) is reference counted: every host target has alloc.
#[cfg(not(all(target_os = "none", target_arch = "aarch64")))]
extern crate alloc;

pub mod abi;
pub mod channel;
pub mod event;
mod handler;
pub mod heap;
pub mod message;
pub mod patched;
pub mod region;

#[cfg(all(target_os = "none", target_arch = "aarch64"))]
mod sel4;
#[cfg(all(target_os = "none", target_arch = "aarch64"))]
use sel4 as backend;

#[cfg(not(all(target_os = "none", target_arch = "aarch64")))]
pub mod host;
#[cfg(not(all(target_os = "none", target_arch = "aarch64")))]
use host as backend;

use core::fmt;

pub use channel::{Channel, ChannelSet, ChannelSetIter, Child, DisplayChannelSet, IrqAckError};
pub use handler::{Handler, NullHandler};
pub use message::{MessageInfo, MessageLabel, MessageRegisterValue};

/// Message register `i` of the message just received, or of the reply a `pp_call` got.
///
/// # Panics
/// If `i` >= 120 ([`abi::MSG_MAX_LENGTH`]): indices come from code, not from a peer.
#[track_caller]
pub fn get_mr(i: usize) -> MessageRegisterValue {
    backend::get_mr(i)
}

/// Set message register `i` of the next message sent (a `pp_call` or the reply of
/// [`Handler::protected`]).
///
/// # Panics
/// If `i` >= 120 ([`abi::MSG_MAX_LENGTH`]).
#[track_caller]
pub fn set_mr(i: usize, value: MessageRegisterValue) {
    backend::set_mr(i, value)
}

/// This PD's name, as system.xml gives it (`microkit_name`).
pub fn pd_name() -> PdName {
    backend::pd_name()
}

/// Whether this PD is passive (`microkit_passive`).
pub fn pd_is_passive() -> bool {
    backend::pd_is_passive()
}

/// A PD name: up to 64 bytes, as the tool writes `microkit_name` (NUL-terminated if shorter).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PdName {
    bytes: [u8; abi::PD_NAME_LENGTH],
    len: usize,
}

impl PdName {
    /// The name held by a `microkit_name` image: up to the first NUL, or all 64 bytes.
    pub fn from_bytes(bytes: [u8; abi::PD_NAME_LENGTH]) -> Self {
        let len = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        Self { bytes, len }
    }

    /// The name; if it is not UTF-8 (the tool copies bytes), its longest UTF-8 prefix.
    pub fn as_str(&self) -> &str {
        let bytes = &self.bytes[..self.len];
        match core::str::from_utf8(bytes) {
            Ok(s) => s,
            Err(e) => core::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or_default(),
        }
    }
}

impl fmt::Display for PdName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for PdName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

/// A [`fmt::Write`] to the debug console (the kernel's `DebugPutChar` on seL4, debug config).
#[derive(Debug, Clone, Copy, Default)]
pub struct DebugWriter;

impl fmt::Write for DebugWriter {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        backend::debug_put_str(s);
        Ok(())
    }
}

/// Print to the debug console (nothing in the release configuration).
#[macro_export]
macro_rules! debug_print {
    ($($arg:tt)*) => {
        $crate::_private::print(::core::format_args!($($arg)*))
    };
}

/// Print a line to the debug console (nothing in the release configuration).
#[macro_export]
macro_rules! debug_println {
    () => {
        $crate::_private::print(::core::format_args!("\n"))
    };
    ($($arg:tt)*) => {{
        $crate::_private::print(::core::format_args!($($arg)*));
        $crate::_private::print(::core::format_args!("\n"));
    }};
}

/// Declare the PD's entry: `init` (an `FnOnce() -> impl Handler`, usually a `fn`) runs once,
/// then the runtime's event loop dispatches to the handler it returned, forever.
///
/// Use it once, in the PD's binary crate. On seL4 it defines `_start`; on the host it defines a
/// `main` that says the binary is a PD image (run the PD's handler in the simulator instead).
#[macro_export]
macro_rules! protection_domain {
    ($init:expr $(,)?) => {
        #[cfg(all(target_os = "none", target_arch = "aarch64"))]
        extern "C" fn __microkit_pd_main() -> ! {
            $crate::_private::run_main($init)
        }
        #[cfg(all(target_os = "none", target_arch = "aarch64"))]
        $crate::__sel4_entry!(__microkit_pd_main);

        #[cfg(not(all(target_os = "none", target_arch = "aarch64")))]
        fn main() {
            let _ = $init;
            ::std::eprintln!(
                "this is a seL4 Microkit protection domain: build it for aarch64-unknown-none and \
                 pack it with the microkit tool, or run its handler in the simulator"
            );
            ::std::process::exit(2);
        }
    };
}

#[doc(hidden)]
pub mod _private {
    #[cfg(all(target_os = "none", target_arch = "aarch64"))]
    pub use crate::sel4::run_main;

    /// Whether debug output goes anywhere: release kernels have no console.
    const PRINTING: bool = !cfg!(all(
        target_os = "none",
        target_arch = "aarch64",
        not(feature = "config-debug")
    ));

    pub fn print(args: core::fmt::Arguments<'_>) {
        if PRINTING {
            let _ = core::fmt::Write::write_fmt(&mut crate::DebugWriter, args);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &[u8]) -> PdName {
        let mut bytes = [0; 64];
        bytes[..s.len()].copy_from_slice(s);
        PdName::from_bytes(bytes)
    }

    #[test]
    fn pd_names_stop_at_nul_or_64_bytes() {
        assert_eq!(name(b"ledger-acme").as_str(), "ledger-acme");
        assert_eq!(name(b"").as_str(), "");
        assert_eq!(name(&[b'x'; 64]).as_str().len(), 64);
        assert_eq!(name(b"ab\xffcd").as_str(), "ab");
        assert_eq!(name(b"wire").to_string(), "wire");
        assert_eq!(format!("{:?}", name(b"wire")), "\"wire\"");
    }
}

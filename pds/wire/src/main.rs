//! The **wire** PD's seL4 image: the client's console fed to the [`wire_pd::Wire`] state
//! machine, woken by the console's IRQ. The console is the board's (system.toml): on QEMU virt
//! a virtio-console (virtio-mmio bus 0), on the ZCU102 the Cadence UART1 (`drivers::cadence_uart`;
//! UART0 stays the kernel's debug console); the same framed protocol on both.
//!
//! The logic (framing, routing by tenant, every error answer) is the library, tested on the
//! host and run by the simulator; this file only owns the device. On each notification of the
//! IRQ channel: acknowledge the device, drain every received byte into the wire (whose framed
//! responses go back to the console, flushed after each drained chunk), then acknowledge the
//! IRQ. Bytes that arrive after the drain raise the IRQ again. The console is a flow-controlled
//! serial port (`drivers::console`): an answer waits for a slow client instead of being lost.
//!
//! A drained chunk is what the console already holds, up to [`GATHER`] bytes (gathered from
//! its one-page receive buffers without waiting for more), so the appends a client pipelines
//! reach the wire together and are stored as one (`wire_pd`'s "Group commit"); the console's
//! 4 KiB buffers alone would give it a few small frames at a time.
//!
//! The connection policy of [`wire_pd::session`] (idle limit, output bound, Busy answers) is
//! the simulator's: this PD has no clock, and it queues nothing. A partial frame a vanished
//! client left is ended by the lone delimiter every client sends first; the responses go to the
//! console as they are made, and QEMU drops what a client does not read (from its source: `qemu/README.md`).
//!
//! [`wire_pd::READY_LINE`] is printed once the console is up and the ledger regions are
//! mapped: the ledgers (higher priority, passive) have finished their own start-up before this
//! lowest-priority PD runs, so a client that waits for the line is served.

#![cfg_attr(target_os = "none", no_std, no_main)]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::boxed::Box;
use alloc::vec::Vec;

use core::fmt;

use drivers::{
    cadence_uart::{CadenceUart, Config as UartConfig, UartError},
    console::{ConsoleError, VirtioConsole},
    transport::{probe, qemu_virt_offset},
    DeviceType,
};
use interface::wire::CONSOLE_IRQ;
use microkit::abi::board::{Board, BOARD};
use microkit::region::{ReadWrite, Region};
use microkit::{debug_println, ChannelSet, Handler};
use wire_pd::{Wire, GATHER};

microkit::memory_region! {
    /// The client console's registers, uncached (system.xml: the wire's first device,
    /// `console`): on QEMU virt the page of virtio-mmio transports 0..7 (bus 0 at
    /// 0x0a00_0000), on the ZCU102 the Cadence UART1 (0xff01_0000).
    static CONSOLE_MMIO: ReadWrite(vaddr = "mmio_vaddr", size = "mmio_size", min_len = 0x1000);
    /// The virtio console's DMA memory (system.xml `console_dma`, where the tool placed it:
    /// `dma_paddr`); the UART has none.
    static DMA: ReadWrite(
        vaddr = "dma_vaddr", size = "dma_size", min_len = 0x10000, paddr = "dma_paddr"
    );
}

// The wire's buffers (a frame, a response, a group's entries and tables: `wire_pd`'s "Memory",
// `wire_pd::FIXED_HEAP`) and the gather buffer, under 1.4 MiB in all (system.xml `heap_wire`,
// 2 MiB; pds/wire/tests/heap.rs runs the worst case); the console's buffers are in its DMA
// region.
microkit::heap!(vaddr = "heap_vaddr", size = "heap_size");

/// The virtio-mmio bus the client console is pinned to (`bus=virtio-mmio-bus.0`).
const CONSOLE_BUS: usize = 0;

/// The client's byte stream: the board's device (system.toml's `console` of the wire).
// One Console per PD, made once and boxed with the rest of `Serving`: its size is no concern.
#[allow(clippy::large_enum_variant)]
enum Console {
    /// QEMU virt: a virtio-console, flow-controlled (an answer waits for a slow client).
    Virtio(VirtioConsole),
    /// ZCU102: the Cadence UART1, receive by IRQ, transmit polled into its FIFO. A transmit
    /// that stays blocked past the driver's bound (a client that stopped reading: QEMU holds
    /// its bytes) loses that answer and is counted; the wire serves on.
    Uart(CadenceUart<Region<ReadWrite>>),
}

/// What stops the wire: a console that can no longer be driven.
#[derive(Debug)]
enum DeviceError {
    Virtio(ConsoleError),
    Uart(UartError),
}

impl fmt::Display for DeviceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceError::Virtio(e) => write!(f, "virtio-console: {e}"),
            DeviceError::Uart(e) => write!(f, "UART: {e}"),
        }
    }
}

impl Console {
    fn ack_interrupt(&mut self) -> Result<(), DeviceError> {
        match self {
            Console::Virtio(c) => c.ack_interrupt().map(drop).map_err(DeviceError::Virtio),
            Console::Uart(u) => u.ack_interrupt().map(drop).map_err(DeviceError::Uart),
        }
    }

    fn recv(&mut self, buf: &mut [u8]) -> Result<usize, DeviceError> {
        match self {
            Console::Virtio(c) => c.recv(buf).map_err(DeviceError::Virtio),
            Console::Uart(u) => u.recv(buf).map_err(DeviceError::Uart),
        }
    }

    /// Queues `out`. A UART transmit that stays blocked is no device failure (see [`Console`]).
    fn write(&mut self, out: &[u8]) -> Result<(), DeviceError> {
        match self {
            Console::Virtio(c) => c.write(out).map_err(DeviceError::Virtio),
            Console::Uart(u) => match u.write(out) {
                Ok(()) | Err(UartError::TxStuck { .. }) => Ok(()),
                Err(e) => Err(DeviceError::Uart(e)),
            },
        }
    }

    fn flush(&mut self) -> Result<(), DeviceError> {
        match self {
            Console::Virtio(c) => c.flush().map_err(DeviceError::Virtio),
            // The UART sends what its FIFO holds by itself: nothing to hand over.
            Console::Uart(_) => Ok(()),
        }
    }

    /// Restarts (virtio) or stalled transmits (UART) so far, for the console line.
    fn troubles(&self) -> u64 {
        match self {
            Console::Virtio(c) => c.stats().resets,
            Console::Uart(u) => u.stats().stalls,
        }
    }
}

/// The running wire, or why it could not start (then it ignores every event: the client sees
/// no readiness line and the console says why).
enum WireImage {
    Serving(Box<Serving>),
    Failed,
}

struct Serving {
    wire: Wire,
    console: Console,
    /// [`GATHER`] bytes, allocated once.
    buf: Vec<u8>,
    /// Console restarts (virtio) or stalled transmits (UART) reported so far.
    resets: u64,
}

impl Handler for WireImage {
    type Error = DeviceError;

    fn notified(&mut self, channels: ChannelSet) -> Result<(), Self::Error> {
        let WireImage::Serving(s) = self else {
            return Ok(());
        };
        if !channels.contains(CONSOLE_IRQ) {
            return Ok(());
        }
        let Serving {
            wire,
            console,
            buf,
            resets,
        } = &mut **s;
        console.ack_interrupt()?;
        loop {
            let mut sent: Result<(), DeviceError> = Ok(());
            let mut n = 0;
            while n < buf.len() {
                let got = console.recv(&mut buf[n..])?;
                if got == 0 {
                    break;
                }
                n += got;
            }
            if n == 0 {
                break;
            }
            // The framed answers arrive in small pieces: the console gathers them into large
            // transmit buffers, and the flush hands over the rest.
            wire.on_bytes(&buf[..n], &mut |out| {
                if sent.is_ok() {
                    sent = console.write(out);
                }
            });
            // A console that can no longer send is a dead device: stop (the monitor reports it).
            sent?;
            console.flush()?;
        }
        if console.troubles() != *resets {
            *resets = console.troubles();
            match console {
                Console::Virtio(_) => debug_println!("WIRE|INFO: console restarted ({resets} so far): QEMU lost an answer's buffer when its client left"),
                Console::Uart(_) => debug_println!("WIRE|WARN: UART transmit blocked ({resets} so far): an answer was lost (a client that stopped reading?)"),
            }
        }
        if let Err(e) = CONSOLE_IRQ.irq_ack() {
            debug_println!("WIRE|ERROR: {e}");
        }
        Ok(())
    }
}

/// The board's client console (system.toml: the wire's `console`).
fn console() -> Result<Console, &'static str> {
    let mmio = CONSOLE_MMIO
        .get()
        .map_err(|_| "console MMIO region not mapped")?;
    match BOARD {
        Board::QemuVirtAarch64 => {
            let dma = DMA.get().map_err(|_| "DMA region not mapped")?;
            drivers::dma::init(&dma).map_err(|_| "DMA region unusable")?;
            let transport = probe(&mmio, qemu_virt_offset(CONSOLE_BUS), DeviceType::Console)
                .map_err(|e| {
                    debug_println!("WIRE|ERROR: {e}");
                    "no virtio-console on virtio-mmio bus 0"
                })?;
            let console = VirtioConsole::new(transport).map_err(|e| {
                debug_println!("WIRE|ERROR: {e}");
                "virtio-console did not start"
            })?;
            Ok(Console::Virtio(console))
        }
        Board::Zcu102 => {
            let uart = CadenceUart::init(mmio, UartConfig::ZCU102).map_err(|e| {
                debug_println!("WIRE|ERROR: {e}");
                "the Cadence UART1 did not start"
            })?;
            Ok(Console::Uart(uart))
        }
    }
}

fn start() -> Result<Serving, &'static str> {
    let console = console()?;
    let wire = wire_pd::init().map_err(|e| {
        debug_println!("WIRE|ERROR: {e}");
        "ledger regions"
    })?;
    Ok(Serving {
        wire,
        console,
        buf: alloc::vec![0; GATHER],
        resets: 0,
    })
}

fn init() -> WireImage {
    match start() {
        Ok(s) => {
            debug_println!("{}", wire_pd::READY_LINE);
            WireImage::Serving(Box::new(s))
        }
        Err(why) => {
            debug_println!("WIRE|ERROR: not serving: {why}");
            WireImage::Failed
        }
    }
}

microkit::protection_domain!(init);

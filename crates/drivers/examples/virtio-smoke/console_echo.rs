//! virtio-console proof, `echo` PD: every byte the client sends over the console (a UNIX socket
//! on the host) comes back, woken by the console's IRQ (README.md).

#![cfg_attr(target_os = "none", no_std, no_main)]
#![forbid(unsafe_code)]

use drivers::{
    console::{ConsoleError, VirtioConsole},
    transport::{probe, qemu_virt_offset},
    DeviceType,
};
use microkit::{debug_println, Channel, ChannelSet, Handler};

microkit::memory_region! {
    /// The page of virtio-mmio transports 0..7 (bus 0 at 0x0a00_0000), uncached.
    static CONSOLE_MMIO: ReadWrite(
        vaddr = "console_mmio_vaddr", size = "console_mmio_size", min_len = 0x1000
    );
    /// DMA memory at a fixed physical address (system file: `console_dma`).
    static DMA: ReadWrite(
        vaddr = "dma_vaddr", size = "dma_size", min_len = 0x10000, paddr = "dma_paddr"
    );
}

// The runtime's heap (the console driver keeps its buffers in the DMA region).
microkit::heap!(vaddr = "heap_vaddr", size = "heap_size");

/// The virtio-mmio bus the console is pinned to (`bus=virtio-mmio-bus.0`).
const CONSOLE_BUS: usize = 0;
/// The console's IRQ (GIC 48 = SPI 16 + bus 0) in the system file.
const CONSOLE_IRQ: Channel = Channel::new(0);

struct Echo {
    /// `None` after a failed start (the FAIL line says why): events are then ignored.
    console: Option<VirtioConsole>,
    echoed: u64,
}

impl Handler for Echo {
    type Error = ConsoleError;

    fn notified(&mut self, channels: ChannelSet) -> Result<(), Self::Error> {
        let Some(console) = self.console.as_mut() else {
            return Ok(());
        };
        if !channels.contains(CONSOLE_IRQ) {
            return Ok(());
        }
        console.ack_interrupt()?;
        let mut buf = [0u8; 256];
        let mut batch = 0;
        loop {
            let n = console.recv(&mut buf)?;
            if n == 0 {
                break;
            }
            console.send(&buf[..n])?;
            batch += n;
        }
        if batch > 0 {
            self.echoed += batch as u64;
            debug_println!("ECHO|INFO: echoed {batch} bytes ({} in all)", self.echoed);
        }
        if let Err(e) = CONSOLE_IRQ.irq_ack() {
            debug_println!("ECHO|ERROR: {e}");
        }
        Ok(())
    }
}

fn start() -> Result<VirtioConsole, &'static str> {
    let dma = DMA.get().map_err(|_| "DMA region")?;
    drivers::dma::init(&dma).map_err(|_| "DMA init")?;
    let mmio = CONSOLE_MMIO.get().map_err(|_| "console MMIO region")?;
    let transport = match probe(&mmio, qemu_virt_offset(CONSOLE_BUS), DeviceType::Console) {
        Ok(t) => t,
        Err(e) => {
            debug_println!("ECHO|ERROR: {e}");
            return Err("no virtio-console on bus 0");
        }
    };
    VirtioConsole::new(transport).map_err(|_| "virtio-console init")
}

fn init() -> Echo {
    let console = match start() {
        Ok(console) => {
            debug_println!("ECHO|INFO: virtio-console on bus {CONSOLE_BUS} ready");
            Some(console)
        }
        Err(why) => {
            debug_println!("ECHO|FAIL: {why}");
            None
        }
    };
    Echo { console, echoed: 0 }
}

microkit::protection_domain!(init);

//! virtio-console as a non-blocking byte stream, woken by its IRQ.
//!
//! The PD that owns the console (wire) maps the device page, the DMA region and the console's
//! IRQ (`<irq irq="48" id=".." trigger="edge"/>` for bus 0), then on each notification of that
//! channel: [`VirtioConsole::ack_interrupt`] (clears the device's interrupt status and completes
//! a finished receive), drain [`VirtioConsole::recv`] until it returns 0, then
//! `Channel::irq_ack`. Bytes that arrive between the drain and the ack raise the IRQ again.
//!
//! Receiving never blocks: [`recv`](VirtioConsole::recv) returns what has arrived (possibly
//! nothing). Sending hands the bytes to the device and waits until it has consumed them, which
//! QEMU does at once while the host end of the socket is connected or absent (unconnected bytes
//! are dropped); a connected client that stops reading can stall the sender once the socket
//! buffer is full. Only port 0 is used (no `VIRTIO_CONSOLE_F_MULTIPORT`).

use core::fmt;

use virtio_drivers::{device::console::VirtIOConsole, transport::mmio::MmioTransport, PAGE_SIZE};

use crate::dma::DmaHal;

/// Bytes handed to the device per transmit request (one bounce page).
pub const MAX_SEND: usize = PAGE_SIZE;

/// A console error: the device or its queues misbehaved (or the DMA region ran out).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsoleError(pub virtio_drivers::Error);

impl fmt::Display for ConsoleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "virtio-console: {}", self.0)
    }
}

/// A virtio console (port 0).
pub struct VirtioConsole {
    dev: VirtIOConsole<DmaHal, MmioTransport<'static>>,
}

impl fmt::Debug for VirtioConsole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("VirtioConsole")
    }
}

impl VirtioConsole {
    /// Starts the device behind `transport` (from [`crate::transport::probe`] with
    /// `DeviceType::Console`), after [`crate::dma::init`], with a heap (its receive buffer is
    /// boxed). A receive buffer is posted at once, so bytes sent before the PD first looks are
    /// kept (by the device, then the host socket) rather than lost.
    pub fn new(transport: MmioTransport<'static>) -> Result<Self, ConsoleError> {
        VirtIOConsole::new(transport)
            .map(|dev| Self { dev })
            .map_err(ConsoleError)
    }

    /// Acknowledges the device's interrupt; whether new bytes arrived. Call it when the IRQ
    /// channel is notified, before draining [`recv`](Self::recv) and acknowledging the IRQ.
    pub fn ack_interrupt(&mut self) -> Result<bool, ConsoleError> {
        self.dev.ack_interrupt().map_err(ConsoleError)
    }

    /// Copies received bytes into `buf`, without waiting: how many (0 if none are pending).
    pub fn recv(&mut self, buf: &mut [u8]) -> Result<usize, ConsoleError> {
        let mut n = 0;
        while n < buf.len() {
            match self.dev.recv(true).map_err(ConsoleError)? {
                Some(b) => {
                    buf[n] = b;
                    n += 1;
                }
                None => break,
            }
        }
        Ok(n)
    }

    /// Sends `bytes` (in requests of at most [`MAX_SEND`] bytes).
    pub fn send(&mut self, bytes: &[u8]) -> Result<(), ConsoleError> {
        for chunk in bytes.chunks(MAX_SEND) {
            self.dev.send_bytes(chunk).map_err(ConsoleError)?;
        }
        Ok(())
    }
}

impl fmt::Write for VirtioConsole {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.send(s.as_bytes()).map_err(|_| fmt::Error)
    }
}

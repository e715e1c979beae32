//! virtio-console as a non-blocking, flow-controlled byte stream, woken by its IRQ.
//!
//! # Why a multiport serial port, not port 0
//!
//! QEMU has two kinds of port on a `virtio-serial-device`. Port 0 is a `virtconsole`, which
//! has no flow control: when the host socket cannot take a write at once (its send buffer is
//! full because the client has not been scheduled yet), QEMU drops the bytes and reports them
//! sent (`hw/char/virtio-console.c`, `flush_buf`: "we should be queuing data to send later for
//! the console devices too rather than silently dropping console data on EAGAIN"). A large
//! answer then reaches the client with a hole in it, the frame's CRC fails, and the client
//! waits for an answer that never comes. A `virtserialport` is throttled instead: QEMU keeps
//! the guest's buffer until the socket is writable again, so nothing is lost however slowly the
//! client reads. Such a port has an id of 1 or more, which only a driver that negotiates
//! `VIRTIO_CONSOLE_F_MULTIPORT` and speaks the control queue can reach; `virtio-drivers`'
//! console driver cannot (port 0 only), so this module drives the device itself over
//! `virtio-drivers`' virtqueues. `qemu/run.sh` plugs
//! `-device virtserialport,chardev=client,nr=1`, and [`PORT`] is that `nr`.
//!
//! # Use
//!
//! The PD that owns the console (wire) maps the device page, the DMA region and the console's
//! IRQ, calls [`crate::dma::init`], then [`VirtioConsole::new`]. On each notification of the
//! IRQ channel: [`VirtioConsole::ack_interrupt`] (clears the device's interrupt status, handles
//! control messages, completes a finished receive), drain [`VirtioConsole::recv`] until it
//! returns 0, answer with [`write`](VirtioConsole::write) and end with
//! [`flush`](VirtioConsole::flush), then `Channel::irq_ack`. Bytes that arrive between the
//! drain and the ack raise the IRQ again.
//!
//! Receiving never blocks. Sending gathers bytes into one DMA buffer of [`TX_BUF`] bytes and
//! hands it to the device whole (one host write per buffer, not one per small piece), then
//! waits until the device has taken it: at once while no client is connected (QEMU discards
//! the bytes), otherwise as fast as the client reads. A connected client that stops reading
//! therefore stalls the sender (it is the only client: the console is one line); one that
//! disconnects releases it. If QEMU forgets the buffer it was writing when the client went away
//! (its `discard_throttle_data` detaches the element without returning it to the guest), the
//! driver notices the port closing while it waits and resets the device, so a client killed
//! mid-answer never wedges the console.
//!
//! Every buffer the device sees (virtqueues, receive, transmit and control buffers) is taken
//! from the DMA region once at start-up; nothing is allocated afterwards (a reset makes new
//! virtqueues in the pages of the old ones).

use core::fmt;

use virtio_drivers::{
    queue::VirtQueue,
    transport::{mmio::MmioTransport, DeviceStatus, InterruptStatus, Transport},
    PAGE_SIZE,
};

use crate::dma::{pool, DmaError, DmaHal};

/// The serial port the console uses: `nr=1` of `-device virtserialport` (port 0 is reserved by
/// QEMU for a `virtconsole`, which has no flow control).
pub const PORT: u32 = 1;

/// Bytes gathered before they are handed to the device (and the most in one host write).
pub const TX_BUF: usize = 16 * PAGE_SIZE;

/// Bytes the device can deliver per receive buffer.
pub const RX_BUF: usize = PAGE_SIZE;

/// Feature bits (virtio 1.2 §5.3.3).
const F_MULTIPORT: u64 = 1 << 1;
const F_VERSION_1: u64 = 1 << 32;

/// Control messages (virtio 1.2 §5.3.6.2).
const DEVICE_READY: u16 = 0;
const DEVICE_ADD: u16 = 1;
const PORT_READY: u16 = 3;
const PORT_OPEN: u16 = 6;
/// The port id of messages about the device rather than a port.
const NO_PORT: u32 = u32::MAX;
/// Bytes of a control message: port id (le32), event (le16), value (le16).
const CTRL_LEN: usize = 8;

/// Receive buffers posted on the control queue (QEMU drops a control message when none is
/// free; each is returned as soon as it is read).
const CTRL_RX: usize = 8;
/// Bytes of each control receive buffer (a message, or a port name after one).
const CTRL_RX_LEN: usize = 64;
/// Virtqueue sizes: descriptors per queue (QEMU offers 32 per control queue, 128 per port).
const CTRL_QUEUE: usize = 8;
const DATA_QUEUE: usize = 2;

/// Offset of `max_nr_ports` (le32) in the device configuration space.
const CONFIG_MAX_NR_PORTS: usize = 4;

/// A console error: the device or its queues misbehaved, or the machine is not the one
/// `qemu/run.sh` builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsoleError {
    /// A virtqueue operation failed.
    Virtio(virtio_drivers::Error),
    /// The DMA region could not hold the console's buffers.
    Dma(DmaError),
    /// The device does not offer `VIRTIO_CONSOLE_F_MULTIPORT` (a `virtio-serial-device` with
    /// `max_ports=1`, or not a virtio-serial device).
    NoMultiport,
    /// The device has no port [`PORT`] (no `-device virtserialport,nr=1` on it).
    NoPort(u32),
}

impl fmt::Display for ConsoleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Virtio(e) => write!(f, "virtio-console: {e}"),
            Self::Dma(e) => write!(f, "virtio-console: {e}"),
            Self::NoMultiport => f.write_str("virtio-console: the device offers no multiport"),
            Self::NoPort(p) => write!(
                f,
                "virtio-console: the device has no serial port {p} (-device virtserialport,nr={p})"
            ),
        }
    }
}

impl From<virtio_drivers::Error> for ConsoleError {
    fn from(e: virtio_drivers::Error) -> Self {
        Self::Virtio(e)
    }
}

/// The console's four virtqueues: control receive and transmit, the port's receive and
/// transmit.
struct Queues {
    ctrl_rx: VirtQueue<DmaHal, CTRL_QUEUE>,
    ctrl_tx: VirtQueue<DmaHal, CTRL_QUEUE>,
    rx: VirtQueue<DmaHal, DATA_QUEUE>,
    tx: VirtQueue<DmaHal, DATA_QUEUE>,
}

/// Memory the device reads and writes, in the DMA region, taken once.
struct Buffers {
    rx: &'static mut [u8],
    tx: &'static mut [u8],
    /// `CTRL_RX` receive buffers of `CTRL_RX_LEN` bytes.
    ctrl_rx: &'static mut [u8],
    /// One control message being sent.
    ctrl_tx: &'static mut [u8],
}

/// Counters, for the console and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConsoleStats {
    /// Transmit buffers handed to the device.
    pub sends: u64,
    /// Device resets after QEMU lost a transmit buffer to a client that went away.
    pub resets: u64,
}

/// A virtio console: one flow-controlled serial port ([`PORT`]) of a multiport device.
pub struct VirtioConsole {
    transport: MmioTransport<'static>,
    port: u32,
    q: Queues,
    buf: Buffers,
    /// Token of the posted receive buffer, if one is posted.
    rx_token: Option<u16>,
    /// Received bytes not yet returned: `buf.rx[rx_pos..rx_len]`.
    rx_pos: usize,
    rx_len: usize,
    /// Token of each posted control receive buffer.
    ctrl_tokens: [Option<u16>; CTRL_RX],
    /// Bytes gathered in `buf.tx`.
    tx_len: usize,
    /// Whether a client is connected (the device's last `PORT_OPEN` for our port).
    host_open: bool,
    /// Set when the device says the port closed (checked while a send waits).
    closed_seen: bool,
    /// Whether the device announced our port (`DEVICE_ADD`) since the last start.
    port_added: bool,
    stats: ConsoleStats,
}

impl fmt::Debug for VirtioConsole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VirtioConsole")
            .field("port", &self.port)
            .field("host_open", &self.host_open)
            .field("stats", &self.stats)
            .finish()
    }
}

/// `pages` pages of the DMA region, for the console's lifetime.
fn dma_buffer(pages: usize) -> Result<&'static mut [u8], ConsoleError> {
    let p = pool().alloc(pages).map_err(ConsoleError::Dma)?;
    // SAFETY: the pool hands out each page once and these are never returned, so nothing else
    // aliases them; they lie in the DMA region, mapped read-write for the PD's whole life
    // ('static) and zeroed by `alloc`. The device touches them only while a descriptor naming
    // them is posted, and this driver does not touch a buffer while it is posted.
    Ok(unsafe { core::slice::from_raw_parts_mut(p.vaddr.as_ptr(), pages * PAGE_SIZE) })
}

/// Resets the device and negotiates features; the ports' count.
fn negotiate(t: &mut MmioTransport<'static>) -> Result<u32, ConsoleError> {
    t.set_status(DeviceStatus::empty());
    t.set_status(DeviceStatus::ACKNOWLEDGE | DeviceStatus::DRIVER);
    let offered = t.read_device_features();
    if offered & F_MULTIPORT == 0 {
        t.set_status(DeviceStatus::FAILED);
        return Err(ConsoleError::NoMultiport);
    }
    t.write_driver_features(offered & (F_MULTIPORT | F_VERSION_1));
    t.set_status(DeviceStatus::ACKNOWLEDGE | DeviceStatus::DRIVER | DeviceStatus::FEATURES_OK);
    t.set_guest_page_size(PAGE_SIZE as u32);
    Ok(t.read_config_space::<u32>(CONFIG_MAX_NR_PORTS)?)
}

/// Queue indices of port `p` (virtio 1.2 §5.3.2): 0 and 1 for port 0, 2 and 3 for control,
/// then two per port.
fn port_queues(p: u32) -> Option<(u16, u16)> {
    if p == 0 {
        return Some((0, 1));
    }
    let rx = u16::try_from(p.checked_mul(2)?.checked_add(2)?).ok()?;
    Some((rx, rx.checked_add(1)?))
}

impl VirtioConsole {
    /// Starts the device behind `transport` (from [`crate::transport::probe`] with
    /// `DeviceType::Console`) on serial port [`PORT`], after [`crate::dma::init`]. Receive
    /// buffers are posted and the port opened at once, so bytes a client sends before the PD
    /// first looks are kept (by the device, then the host socket) rather than lost.
    pub fn new(transport: MmioTransport<'static>) -> Result<Self, ConsoleError> {
        let mut transport = transport;
        let q = Self::queues(&mut transport, PORT)?;
        let buf = Buffers {
            rx: dma_buffer(RX_BUF / PAGE_SIZE)?,
            tx: dma_buffer(TX_BUF / PAGE_SIZE)?,
            ctrl_rx: dma_buffer((CTRL_RX * CTRL_RX_LEN).div_ceil(PAGE_SIZE))?,
            ctrl_tx: dma_buffer(1)?,
        };
        let mut console = VirtioConsole {
            transport,
            port: PORT,
            q,
            buf,
            rx_token: None,
            rx_pos: 0,
            rx_len: 0,
            ctrl_tokens: [None; CTRL_RX],
            tx_len: 0,
            host_open: false,
            closed_seen: false,
            port_added: false,
            stats: ConsoleStats::default(),
        };
        console.open()?;
        Ok(console)
    }

    /// Resets the device and makes its queues (the device is `DRIVER_OK` when this returns).
    fn queues(t: &mut MmioTransport<'static>, port: u32) -> Result<Queues, ConsoleError> {
        let ports = negotiate(t)?;
        let (rxq, txq) = port_queues(port)
            .filter(|_| port < ports)
            .ok_or(ConsoleError::NoPort(port))?;
        let q = Queues {
            ctrl_rx: VirtQueue::new(t, 2, false, false)?,
            ctrl_tx: VirtQueue::new(t, 3, false, false)?,
            rx: VirtQueue::new(t, rxq, false, false)?,
            tx: VirtQueue::new(t, txq, false, false)?,
        };
        t.finish_init();
        Ok(q)
    }

    /// The handshake on fresh queues: control buffers posted, the device told we are ready,
    /// our port checked, made ready and opened, a receive buffer posted.
    fn open(&mut self) -> Result<(), ConsoleError> {
        // Transmit completions are polled, never interrupts.
        self.q.tx.set_dev_notify(false);
        self.q.ctrl_tx.set_dev_notify(false);
        for i in 0..CTRL_RX {
            self.post_ctrl(i)?;
        }
        self.port_added = false;
        self.control(NO_PORT, DEVICE_READY, 1)?;
        // QEMU answers DEVICE_READY with a DEVICE_ADD per port before it returns our message,
        // so the announcement is already there.
        self.poll_control()?;
        if !self.port_added {
            return Err(ConsoleError::NoPort(self.port));
        }
        self.control(self.port, PORT_READY, 1)?;
        self.control(self.port, PORT_OPEN, 1)?;
        self.poll_control()?;
        self.closed_seen = false;
        self.post_rx()
    }

    /// Resets the device and starts it again on new queues (after QEMU lost a buffer).
    fn restart(&mut self) -> Result<(), ConsoleError> {
        self.stats.resets += 1;
        // `queues` resets the device first, so it no longer uses the old queues' memory when
        // they are dropped (and freed) by the assignment.
        self.q = Self::queues(&mut self.transport, self.port)?;
        self.rx_token = None;
        self.rx_pos = 0;
        self.rx_len = 0;
        self.ctrl_tokens = [None; CTRL_RX];
        self.tx_len = 0;
        self.host_open = false;
        self.open()
    }

    /// Counters so far.
    pub fn stats(&self) -> ConsoleStats {
        self.stats
    }

    /// Whether a client is connected to the host end (as the device last said).
    pub fn host_connected(&self) -> bool {
        self.host_open
    }

    /// Posts control receive buffer `i`.
    fn post_ctrl(&mut self, i: usize) -> Result<(), ConsoleError> {
        let b = &mut self.buf.ctrl_rx[i * CTRL_RX_LEN..(i + 1) * CTRL_RX_LEN];
        // SAFETY: `b` is DMA memory of this driver (`dma_buffer`), not posted now (its token
        // slot is empty), and not touched again until `pop_used` returns it in `poll_control`.
        let token = unsafe { self.q.ctrl_rx.add(&[], &mut [b]) }?;
        self.ctrl_tokens[i] = Some(token);
        if self.q.ctrl_rx.should_notify() {
            self.transport.notify(2);
        }
        Ok(())
    }

    /// Reads every control message the device has returned and posts its buffer again.
    fn poll_control(&mut self) -> Result<(), ConsoleError> {
        while let Some(token) = self.q.ctrl_rx.peek_used() {
            let i = self
                .ctrl_tokens
                .iter()
                .position(|&t| t == Some(token))
                .ok_or(ConsoleError::Virtio(virtio_drivers::Error::WrongToken))?;
            let b = &mut self.buf.ctrl_rx[i * CTRL_RX_LEN..(i + 1) * CTRL_RX_LEN];
            // SAFETY: the buffer posted with this token in `post_ctrl`, still valid ('static).
            let len = unsafe { self.q.ctrl_rx.pop_used(token, &[], &mut [b]) }?;
            self.ctrl_tokens[i] = None;
            let b = &self.buf.ctrl_rx[i * CTRL_RX_LEN..(i + 1) * CTRL_RX_LEN];
            if len as usize >= CTRL_LEN {
                let id = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                let event = u16::from_le_bytes([b[4], b[5]]);
                let value = u16::from_le_bytes([b[6], b[7]]);
                if id == self.port {
                    match event {
                        DEVICE_ADD => self.port_added = true,
                        PORT_OPEN => {
                            self.host_open = value != 0;
                            if value == 0 {
                                self.closed_seen = true;
                            }
                        }
                        _ => {}
                    }
                }
            }
            self.post_ctrl(i)?;
        }
        Ok(())
    }

    /// Sends one control message and waits until the device has taken it (QEMU handles it
    /// before returning it).
    fn control(&mut self, id: u32, event: u16, value: u16) -> Result<(), ConsoleError> {
        let msg = &mut self.buf.ctrl_tx[..CTRL_LEN];
        msg[..4].copy_from_slice(&id.to_le_bytes());
        msg[4..6].copy_from_slice(&event.to_le_bytes());
        msg[6..8].copy_from_slice(&value.to_le_bytes());
        let msg = &self.buf.ctrl_tx[..CTRL_LEN];
        self.q
            .ctrl_tx
            .add_notify_wait_pop(&[msg], &mut [], &mut self.transport)?;
        Ok(())
    }

    /// Posts the receive buffer (once every received byte has been returned).
    fn post_rx(&mut self) -> Result<(), ConsoleError> {
        if self.rx_token.is_none() && self.rx_pos == self.rx_len {
            // SAFETY: `buf.rx` is DMA memory of this driver, not posted (no token), and not
            // touched again until `pop_used` returns it in `finish_rx`.
            let token = unsafe { self.q.rx.add(&[], &mut [&mut *self.buf.rx]) }?;
            self.rx_token = Some(token);
            if self.q.rx.should_notify() {
                let (rxq, _) = port_queues(self.port).ok_or(ConsoleError::NoPort(self.port))?;
                self.transport.notify(rxq);
            }
        }
        Ok(())
    }

    /// Completes the posted receive if the device has filled it.
    fn finish_rx(&mut self) -> Result<(), ConsoleError> {
        if let Some(token) = self.rx_token {
            if self.q.rx.peek_used() == Some(token) {
                // SAFETY: the buffer posted with this token in `post_rx`.
                let len = unsafe { self.q.rx.pop_used(token, &[], &mut [&mut *self.buf.rx]) }?;
                self.rx_token = None;
                self.rx_pos = 0;
                self.rx_len = (len as usize).min(self.buf.rx.len());
            }
        }
        Ok(())
    }

    /// Acknowledges the device's interrupt and handles what it signalled (control messages, a
    /// finished receive); whether received bytes are waiting. Call it when the IRQ channel is
    /// notified, before draining [`recv`](Self::recv) and acknowledging the IRQ.
    pub fn ack_interrupt(&mut self) -> Result<bool, ConsoleError> {
        let status = self.transport.ack_interrupt();
        if status.contains(InterruptStatus::QUEUE_INTERRUPT) {
            self.poll_control()?;
            self.finish_rx()?;
        }
        Ok(self.rx_pos < self.rx_len)
    }

    /// Copies received bytes into `buf`, without waiting: how many (0 if none are pending).
    pub fn recv(&mut self, buf: &mut [u8]) -> Result<usize, ConsoleError> {
        self.finish_rx()?;
        let n = buf.len().min(self.rx_len - self.rx_pos);
        buf[..n].copy_from_slice(&self.buf.rx[self.rx_pos..self.rx_pos + n]);
        self.rx_pos += n;
        self.post_rx()?;
        Ok(n)
    }

    /// Queues `bytes` for sending: whole buffers of [`TX_BUF`] bytes go to the device as they
    /// fill, the rest on [`flush`](Self::flush).
    pub fn write(&mut self, mut bytes: &[u8]) -> Result<(), ConsoleError> {
        while !bytes.is_empty() {
            let n = bytes.len().min(self.buf.tx.len() - self.tx_len);
            self.buf.tx[self.tx_len..self.tx_len + n].copy_from_slice(&bytes[..n]);
            self.tx_len += n;
            bytes = &bytes[n..];
            if self.tx_len == self.buf.tx.len() {
                self.flush()?;
            }
        }
        Ok(())
    }

    /// Hands every queued byte to the device and waits until it has taken them (see the
    /// module documentation).
    pub fn flush(&mut self) -> Result<(), ConsoleError> {
        let len = core::mem::take(&mut self.tx_len);
        if len == 0 {
            return Ok(());
        }
        self.stats.sends += 1;
        // A close reported before this buffer is posted says nothing about it.
        self.poll_control()?;
        self.closed_seen = false;
        // SAFETY: `buf.tx` is DMA memory of this driver, not posted (the previous send was
        // popped or the queue made anew), and not written again until it is popped below or
        // the device is reset.
        let token = unsafe { self.q.tx.add(&[&self.buf.tx[..len]], &mut []) }?;
        if self.q.tx.should_notify() {
            let (_, txq) = port_queues(self.port).ok_or(ConsoleError::NoPort(self.port))?;
            self.transport.notify(txq);
        }
        loop {
            if self.q.tx.peek_used() == Some(token) {
                // SAFETY: the buffer posted with this token just above.
                unsafe { self.q.tx.pop_used(token, &[&self.buf.tx[..len]], &mut []) }?;
                return Ok(());
            }
            self.poll_control()?;
            // QEMU returns or discards what it holds before it reports the port closed, so a
            // buffer still out after the report is one it forgot: start the device again.
            if self.closed_seen && self.q.tx.peek_used() != Some(token) {
                return self.restart();
            }
            core::hint::spin_loop();
        }
    }

    /// Sends `bytes` now ([`write`](Self::write) then [`flush`](Self::flush)).
    pub fn send(&mut self, bytes: &[u8]) -> Result<(), ConsoleError> {
        self.write(bytes)?;
        self.flush()
    }
}

impl fmt::Write for VirtioConsole {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.send(s.as_bytes()).map_err(|_| fmt::Error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_layout() {
        assert_eq!(port_queues(0), Some((0, 1)));
        assert_eq!(port_queues(PORT), Some((4, 5)));
        assert_eq!(port_queues(30), Some((62, 63)));
        assert_eq!(port_queues(u32::MAX), None);
    }

    #[test]
    fn errors_display() {
        assert_eq!(
            ConsoleError::NoPort(1).to_string(),
            "virtio-console: the device has no serial port 1 (-device virtserialport,nr=1)"
        );
    }
}

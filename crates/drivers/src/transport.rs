//! virtio-mmio transports, found where system.xml maps them and checked before use.
//!
//! On QEMU `virt` there are 32 virtio-mmio transports, 0x200 bytes apart from 0x0a00_0000, eight
//! to a 4 KiB page (`bus=virtio-mmio-bus.N` pins a device at 0x0a00_0000 + N * 0x200, IRQ 48 + N).
//! A PD maps the page holding its device (`cached="false"`) and names the transport by its
//! offset in that page. [`probe`] reads the transport's magic, version and device id registers
//! (QEMU leaves unused transports present with device id 0) and refuses anything but the device
//! the driver expects: a misplaced `-device` or a wrong system.xml shows up as an error at
//! start-up, not as a driver talking to the wrong device.

use core::{fmt, ptr::NonNull};

use microkit::region::{ReadWrite, Region};
use virtio_drivers::transport::{
    mmio::{MmioError, MmioTransport, VirtIOHeader},
    DeviceType, Transport,
};

/// Bytes of one virtio-mmio transport (registers and configuration space) on QEMU `virt`.
pub const TRANSPORT_SIZE: usize = 0x200;

/// The transport of a device on QEMU `virt` bus `N`: offset of `bus` in its 4 KiB page.
pub const fn qemu_virt_offset(bus: usize) -> usize {
    (bus % 8) * TRANSPORT_SIZE
}

/// Why a transport was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeError {
    /// The offset is not a transport inside the mapped region.
    OutsideRegion {
        /// The offset asked for.
        offset: usize,
    },
    /// No virtio device there, or one this crate cannot drive (bad magic, unknown version,
    /// device id 0 = an empty transport).
    Mmio(MmioError),
    /// A virtio device of another type.
    WrongDevice {
        /// The type the driver needs.
        expected: DeviceType,
        /// The type the device id register names.
        found: DeviceType,
    },
}

impl fmt::Display for ProbeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OutsideRegion { offset } => {
                write!(
                    f,
                    "no virtio-mmio transport at offset {offset:#x} of the region"
                )
            }
            Self::Mmio(MmioError::InvalidDeviceID(e)) => {
                write!(
                    f,
                    "virtio-mmio: no usable device ({e}; 0 = empty transport)"
                )
            }
            Self::Mmio(e) => write!(f, "virtio-mmio: {e}"),
            Self::WrongDevice { expected, found } => {
                write!(
                    f,
                    "virtio-mmio: found a {found:?} device, expected {expected:?}"
                )
            }
        }
    }
}

/// The transport at `offset` in the device region (mapped uncached), if it holds an `expected`
/// device.
pub fn probe(
    region: &Region<ReadWrite>,
    offset: usize,
    expected: DeviceType,
) -> Result<MmioTransport<'static>, ProbeError> {
    let in_region = offset.is_multiple_of(TRANSPORT_SIZE)
        && offset
            .checked_add(TRANSPORT_SIZE)
            .is_some_and(|end| end <= region.len());
    if !in_region {
        return Err(ProbeError::OutsideRegion { offset });
    }
    let header = NonNull::new(region.as_ptr().wrapping_add(offset))
        .ok_or(ProbeError::OutsideRegion { offset })?
        .cast::<VirtIOHeader>();
    // SAFETY: `header` is `TRANSPORT_SIZE` bytes inside a region the tool maps for the PD's
    // lifetime ('static); system.xml maps it uncached over the device's registers (the region
    // is the device page), 0x200-aligned as `VirtIOHeader` needs. The transport is the only
    // accessor of those registers: a PD probes each transport once.
    let transport =
        unsafe { MmioTransport::new(header, TRANSPORT_SIZE) }.map_err(ProbeError::Mmio)?;
    let found = transport.device_type();
    if found != expected {
        return Err(ProbeError::WrongDevice { expected, found });
    }
    Ok(transport)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qemu_virt_layout() {
        assert_eq!(qemu_virt_offset(0), 0);
        assert_eq!(qemu_virt_offset(8), 0, "bus 8 starts page 0x0a00_1000");
        assert_eq!(qemu_virt_offset(9), 0x200);
        assert_eq!(qemu_virt_offset(31), 0xe00);
    }

    #[test]
    fn errors_display() {
        assert_eq!(
            ProbeError::WrongDevice {
                expected: DeviceType::Block,
                found: DeviceType::Console
            }
            .to_string(),
            "virtio-mmio: found a Console device, expected Block"
        );
        assert_eq!(
            ProbeError::OutsideRegion { offset: 0x1000 }.to_string(),
            "no virtio-mmio transport at offset 0x1000 of the region"
        );
    }
}

#!/bin/sh
# Boots a Totebox image in QEMU: how the image meets its devices. Used by `make qemu` and by
# tests/qemu-e2e.sh, so both boot exactly the same machine.
#
# Usage: qemu/run.sh LOADER_IMG DISK_IMG SOCKET
#   LOADER_IMG  the Microkit image (`make image`: $(BUILD_DIR)/loader.img)
#   DISK_IMG    psdb's raw disk image; created if absent (256 MiB, sparse; see TOTEBOX). psdb
#               formats a blank disk at boot and mounts anything else (a crashed tail is
#               discarded).
#   SOCKET      the client's UNIX socket (created by QEMU; `totebox client --connect unix:SOCKET`)
# Environment:
#   QEMU_TIMEOUT  seconds before QEMU is stopped (default 3600): QEMU never runs unbounded
#   QEMU          the emulator (default qemu-system-aarch64; Debian: package qemu-system-arm)
#   DISK_SIZE     size of a new disk image (default 256M)
#   TOTEBOX       the host tool; when set, a new disk is formatted with `totebox psdb create`
#                 (random volume id) instead of left blank for psdb to format at boot
#   QEMU_PIDFILE  where QEMU writes its process id (tests kill QEMU itself with SIGKILL)
#   MICROKIT_BOARD  the board the image is for: qemu_virt_aarch64 (default) or zcu102
#
# zcu102: QEMU's `xlnx-zcu102` (4 GiB, virtualization=on, secure=on), no virtio, booted the way
# the board's firmware hands over: the loader at 0x40000000, entered at EL2 in Non-secure state
# (see "zcu102 boot" below). The first -serial is UART0, the kernel's debug console; the second
# is UART1, the client socket (the wire PD's Cadence UART; QEMU connects -serial n to UART n,
# and holds what a client does not read). DISK_IMG is the SD card in SD1, the board's card slot
# (`if=sd`, `index=1`: index N reaches controller SDN); QEMU takes only a power-of-two card size
# (the default 256M is), and psdb's every write waits for the card to leave its busy state.
#
# qemu_virt_aarch64 (see microkit-abi.md §6): QEMU `virt` with virtualization=on (seL4 runs at
# EL2), a Cortex-A53, 2 GiB (system.xml's regions fit in the board's RAM), the loader at
# 0x70000000.
# Devices, pinned to the virtio-mmio transports system.xml maps:
#   bus 0 (0x0a000000, IRQ 48): virtio-serial  -> the client socket (the wire PD), as serial
#                               port 1 (`virtserialport,nr=1`), not a `virtconsole`: QEMU drops
#                               what a virtconsole's socket cannot take at once (a client not
#                               scheduled for a few ms loses part of a large answer), while a
#                               serial port is throttled until the socket drains
#                               (crates/drivers/src/console.rs)
#   bus 8 (0x0a001000):         virtio-blk     -> DISK_IMG, raw, cache=writeback: the guest's
#                               flush becomes an fdatasync of the file (psdb's durability)
# The serial console (kernel and PD debug output, the expected lines in qemu/console.txt) is
# this process's stdout.
#
# zcu102 boot. The ZynqMP's GIC-400 has the Security Extensions, and on the board secure
# firmware (ATF) runs first: it puts every interrupt in Group 1 (Non-secure), leaves the
# priority mask writable from Non-secure state, serves PSCI through SMC, and the boot loader
# enters our loader at EL2 (NS). seL4's GICv2 driver (gic_v2.c, hypervisor build, any platform
# but QEMU virt) counts on exactly that: it puts every interrupt in Group 1 and enables the
# distributor and its CPU interface by writing 1 to GICD_CTLR and GICC_CTLR, which from
# Non-secure state is EnableGrp1. QEMU's machine without `secure=on` builds its GIC without the
# Security Extensions (xlnx-zynqmp.c: has-security-extensions = secure), where bit 0 of both is
# EnableGrp0 only: the kernel's Group 1 interrupts, every one (the UART1's SPI 22, the kernel's
# timer), stay pending in the distributor and never reach the CPU. So `secure=on`. With it the
# CPU resets into EL3 and QEMU serves PSCI itself only for a kernel it enters below EL3: a
# `-device loader` image would start at EL3 with no firmware there, and the Microkit loader's
# PSCI_VERSION SMC would never return. Instead the loader is booted as QEMU boots a Linux kernel
# (`-kernel`), which is QEMU's model of that firmware hand-over: EL2 (NS), the GIC reset with
# every interrupt in Group 1 and Non-secure-writable priority masks, PSCI on SMC. The loader is
# wrapped for it in a U-Boot legacy image header (the `bootm` format: OS Linux, load address and
# entry 0x40000000, the link address of the SDK's loader), written beside SOCKET as
# SOCKET.loader.uimg; and QEMU boots a kernel with 4 GiB of RAM or more only with a device
# tree, which it completes with /memory and places in RAM: qemu/zcu102-boot.dtb (from
# qemu/zcu102-boot.dts; neither the loader nor seL4 reads it).
set -eu

# be32 N...: each N as 4 bytes, most significant first.
be32() {
    for n; do
        printf "$(printf '\\%03o' $((n >> 24 & 255)) $((n >> 16 & 255)) $((n >> 8 & 255)) $((n & 255)))"
    done
}
# crc32 <FILE: the CRC-32 (the zlib / U-Boot one) of standard input, from gzip's trailer.
crc32() {
    gzip -1 -c | tail -c 8 | od -An -N4 -tu1 | { read -r a b c d; echo $((a | b << 8 | c << 16 | d << 24)); }
}
# uimage_header HCRC SIZE DCRC: a U-Boot legacy image header (include/image.h), 64 bytes: magic,
# header CRC, time 0, data size, load address, entry point, data CRC; OS Linux (5), arch ARM64
# (22), type kernel (2), no compression (0); the name, 32 bytes.
uimage_header() {
    be32 0x27051956 "$1" 0 "$2" 0x40000000 0x40000000 "$3"
    printf '\005\026\002\000Microkit loader'
    dd if=/dev/zero bs=17 count=1 2>/dev/null
}
# uimage FILE: FILE behind its uImage header, on standard output.
uimage() {
    size=$(wc -c <"$1") dcrc=$(crc32 <"$1")
    hcrc=$(uimage_header 0 "$size" "$dcrc" | crc32)
    uimage_header "$hcrc" "$size" "$dcrc"
    cat "$1"
}

[ $# -eq 3 ] || { echo "usage: qemu/run.sh LOADER_IMG DISK_IMG SOCKET" >&2; exit 2; }
IMG=$1 DISK=$2 SOCK=$3
QEMU=${QEMU:-qemu-system-aarch64}
[ -f "$IMG" ] || { echo "QEMU|ERROR: no image $IMG (make image)" >&2; exit 2; }
if [ ! -e "$DISK" ]; then
    mkdir -p "$(dirname "$DISK")"
    if [ -n "${TOTEBOX:-}" ] && [ -x "$TOTEBOX" ]; then
        # Formatted on the host: a fresh random volume id, which the PD (no random source)
        # cannot make for itself.
        "$TOTEBOX" psdb create "$DISK" --size "${DISK_SIZE:-256M}" >/dev/null
        echo "QEMU|INFO: created PSDB disk $DISK (${DISK_SIZE:-256M})"
    else
        truncate -s "${DISK_SIZE:-256M}" "$DISK"
        echo "QEMU|INFO: created blank disk $DISK (${DISK_SIZE:-256M}); psdb formats it at boot"
    fi
fi
mkdir -p "$(dirname "$SOCK")"
rm -f "$SOCK"
echo "QEMU|INFO: client connects with --connect unix:$SOCK (after WIRE|INFO: ready)"
set --
if [ -n "${QEMU_PIDFILE:-}" ]; then set -- -pidfile "$QEMU_PIDFILE"; fi
case ${MICROKIT_BOARD:-qemu_virt_aarch64} in
qemu_virt_aarch64)
    exec timeout -s KILL "${QEMU_TIMEOUT:-3600}" "$QEMU" \
        -machine virt,virtualization=on -cpu cortex-a53 -m size=2G \
        -nographic -serial mon:stdio \
        -device loader,file="$IMG",addr=0x70000000,cpu-num=0 \
        -chardev socket,id=client,path="$SOCK",server=on,wait=off \
        -device virtio-serial-device,bus=virtio-mmio-bus.0 -device virtserialport,chardev=client,nr=1 \
        -drive file="$DISK",if=none,format=raw,id=disk0,cache=writeback \
        -device virtio-blk-device,drive=disk0,bus=virtio-mmio-bus.8 "$@" ;;
zcu102)
    UIMG=$SOCK.loader.uimg
    uimage "$IMG" >"$UIMG.part" && mv "$UIMG.part" "$UIMG"
    exec timeout -s KILL "${QEMU_TIMEOUT:-3600}" "$QEMU" \
        -machine xlnx-zcu102,virtualization=on,secure=on -m size=4G \
        -nographic -serial mon:stdio \
        -chardev socket,id=client,path="$SOCK",server=on,wait=off -serial chardev:client \
        -kernel "$UIMG" -dtb "$(cd "$(dirname "$0")" && pwd)/zcu102-boot.dtb" \
        -drive file="$DISK",if=sd,index=1,format=raw,cache=writeback "$@" ;;
*)
    echo "QEMU|ERROR: no QEMU machine for board ${MICROKIT_BOARD} (qemu_virt_aarch64, zcu102)" >&2
    exit 2 ;;
esac

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
# zcu102: QEMU's `xlnx-zcu102` (the SDK's loader at 0x40000000, 4 GiB, virtualization=on);
# no virtio. The first -serial is UART0, the kernel's debug console; the second is UART1, the
# client socket (the wire PD's Cadence UART; QEMU connects -serial n to UART n, and holds what
# a client does not read). DISK_IMG is the SD card in SD1, the board's card slot (`if=sd`,
# `index=1`: index N reaches controller SDN); QEMU takes only a power-of-two card size (the
# default 256M is), and psdb's every write waits for the card to leave its busy state.
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
set -eu
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
    exec timeout -s KILL "${QEMU_TIMEOUT:-3600}" "$QEMU" \
        -machine xlnx-zcu102,virtualization=on -m size=4G \
        -nographic -serial mon:stdio \
        -chardev socket,id=client,path="$SOCK",server=on,wait=off -serial chardev:client \
        -device loader,file="$IMG",addr=0x40000000,cpu-num=0 \
        -drive file="$DISK",if=sd,index=1,format=raw,cache=writeback "$@" ;;
*)
    echo "QEMU|ERROR: no QEMU machine for board ${MICROKIT_BOARD} (qemu_virt_aarch64, zcu102)" >&2
    exit 2 ;;
esac

#!/bin/sh
# The virtio proof in QEMU, end to end (README.md): build the two PDs, pack the image, boot it
# with a console socket and a fresh 16 MiB raw disk, echo bytes over the socket, wait for the
# block test, kill QEMU, then check the disk image's bytes on the host.
#
# Usage (from the repository root): MICROKIT_SDK=<sdk> crates/drivers/examples/virtio-smoke/run.sh [OUT]
# Needs: cargo, qemu-system-aarch64 (7.2), python3. Prints VIRTIO-SMOKE|PASS or exits non-zero.
set -eu

: "${MICROKIT_SDK:?set MICROKIT_SDK to a Microkit 2.3.0 SDK with board qemu_virt_aarch64}"
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${1:-target/virtio-smoke}
TIMEOUT=${TIMEOUT:-60}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

# Copy the executables cargo reports: the uplifted examples/<name> is not refreshed when a
# fresh build of another feature set (config-debug vs config-release) is reused.
cargo build --release --target aarch64-unknown-none -p drivers --features config-debug \
    --example blk_test --example console_echo --message-format=json-render-diagnostics |
    python3 -c '
import json, shutil, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable"):
        shutil.copy(m["executable"], sys.argv[1] + "/" + m["target"]["name"] + ".elf")
' "$OUT"

"$MICROKIT_SDK/bin/microkit" "$HERE/virtio.system" --search-path "$OUT" \
    --board qemu_virt_aarch64 --config debug -o "$OUT/loader.img" -r "$OUT/report.txt"

rm -f "$OUT/disk.img" "$OUT/client.sock" "$OUT/qemu.log"
truncate -s 16M "$OUT/disk.img"
timeout "$TIMEOUT" qemu-system-aarch64 -machine virt,virtualization=on -cpu cortex-a53 \
    -m size=2G -nographic -serial mon:stdio \
    -device loader,file="$OUT/loader.img",addr=0x70000000,cpu-num=0 \
    -chardev socket,id=client,path="$OUT/client.sock",server=on,wait=off \
    -device virtio-serial-device,bus=virtio-mmio-bus.0 -device virtserialport,chardev=client,nr=1 \
    -drive file="$OUT/disk.img",if=none,format=raw,id=disk0,cache=writeback \
    -device virtio-blk-device,drive=disk0,bus=virtio-mmio-bus.8 \
    </dev/null >"$OUT/qemu.log" 2>&1 &
QEMU=$!
trap 'kill $QEMU 2>/dev/null || true' EXIT

# Wait for both PDs, echo over the socket, wait for the echo line; fail on any error line.
python3 - "$OUT" "$TIMEOUT" <<'PY'
import os, socket, sys, time
out, timeout = sys.argv[1], float(sys.argv[2])
log = os.path.join(out, "qemu.log")
deadline = time.time() + timeout
def wait(line):
    while time.time() < deadline:
        text = open(log, errors="replace").read()
        for bad in ("|FAIL", "|ERROR", "|PANIC", "MON|ERROR"):
            if bad in text:
                sys.exit("error line in qemu.log:\n" + text[text.index("Monitor started"):])
        if line in text:
            return
        time.sleep(0.1)
    sys.exit("timeout waiting for " + line)
wait("ECHO|INFO: virtio-console on bus 0 ready")
s = socket.socket(socket.AF_UNIX)
s.connect(os.path.join(out, "client.sock"))
s.settimeout(max(1.0, deadline - time.time()))
def echo(msg):
    s.sendall(msg)
    got = b""
    while len(got) < len(msg):
        chunk = s.recv(65536)
        if not chunk:
            break
        got += chunk
    if got != msg:
        sys.exit("echo: sent %d bytes, got %d back (first difference at %d)" % (
            len(msg), len(got), next((i for i, (a, b) in enumerate(zip(msg, got)) if a != b),
                                     min(len(msg), len(got)))))
small = b"totebox echo \x00\xff 0123456789\n"
big = bytes((i * 7 + i // 251) & 0xff for i in range(20000))  # 5 receive buffers' worth
echo(small)
echo(big)
print("ECHO-CLIENT|PASS: %d + %d bytes echoed" % (len(small), len(big)))
wait("ECHO|INFO: echoed")
wait("BLK-TEST|DONE")
PY

kill $QEMU 2>/dev/null || true
wait $QEMU 2>/dev/null || true
sed -n '/Monitor started/,$p' "$OUT/qemu.log"

# The disk, after QEMU is gone: the pattern in sectors 0..63, 0xa5 in the benchmark range.
i=0
while [ $i -lt 64 ]; do
    k=0
    while [ $k -lt 16 ]; do printf 'sector %06d totebox-blk-test.\n' $i; k=$((k + 1)); done
    i=$((i + 1))
done >"$OUT/expected-pattern.bin"
head -c 32768 "$OUT/disk.img" | cmp - "$OUT/expected-pattern.bin"
dd if="$OUT/disk.img" bs=512 skip=1024 count=16384 status=none |
    cmp - "$(python3 -c '
import sys; p = sys.argv[1] + "/expected-bench.bin"; open(p, "wb").write(b"\xa5" * (8 << 20)); print(p)
' "$OUT")"
echo "DISK-CHECK|PASS: pattern sectors 0..63 and 8 MiB benchmark range on the image file"
echo "VIRTIO-SMOKE|PASS"

#!/bin/sh
# System figures (`make bench-system`): benchmarks, not tests. Prints:
#   1. boot to ready in QEMU: the Totebox image (to WIRE|INFO: ready, blank disk) next to the
#      SDK's own `hello` example (to "hello, world"), alternated in the same run, same machine
#   2. appends per second: the ledger core called directly, the simulator in-process, the
#      simulator end to end over its socket, the image in QEMU end to end over its socket (one
#      request at a time, then pipelined: requests in flight, stored together by the wire)
#   3. where boot time goes (tests/boot-profile.sh): each phase's median of RUNS boots, on a
#      blank disk and on the disk the QEMU appends above filled
#   4. each PD's ELF size and memory footprint (tests/examples/footprint.rs, from report.txt)
# Usage: tests/bench-system.sh BUILD_DIR RELEASE_DIR   (after `make image`; RELEASE_DIR holds
# the release totebox-sim and examples/bench_client, bench_core, footprint)
# Environment: MICROKIT_SDK, MICROKIT_BOARD, MICROKIT_CONFIG (debug), RUNS (boots each, 3).
set -u
BUILD=${1:?usage: bench-system.sh BUILD_DIR RELEASE_DIR}
REL=${2:?usage: bench-system.sh BUILD_DIR RELEASE_DIR}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SDK=${MICROKIT_SDK:-$HOME/.cache/totebox/microkit-sdk-2.3.0}
BOARD=${MICROKIT_BOARD:-qemu_virt_aarch64}
RUNS=${RUNS:-3}
command -v qemu-system-aarch64 >/dev/null || { echo "bench-system: no qemu-system-aarch64"; exit 1; }
T=$(mktemp -d "${TMPDIR:-/tmp}/bench-system.XXXXXX")
PID=
cleanup() {
    [ -f "$T/qemu.pid" ] && kill -KILL "$(cat "$T/qemu.pid")" 2>/dev/null
    [ -n "$PID" ] && kill "$PID" 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f\n", b - a }'; }

# boot IMG LINE NAME: QEMU (qemu/run.sh, blank disk) until a console line starts with LINE; prints the
# seconds from starting QEMU to the line. QEMU is left running (qemu_stop).
boot() {
    rm -f "$T/qemu.pid" "$T/$3.img" "$T/$3.log"
    start=$(now)
    (cd "$ROOT" && QEMU_TIMEOUT=600 QEMU_PIDFILE="$T/qemu.pid" \
        exec qemu/run.sh "$1" "$T/$3.img" "$T/$3.sock") </dev/null >"$T/$3.log" 2>&1 &
    RUN=$!
    i=0
    until grep -q "^$2" "$T/$3.log" && { [ "$3" = hello ] || [ -S "$T/$3.sock" ]; }; do
        i=$((i + 1))
        [ $i -gt 6000 ] && { echo "bench-system: $3 did not print '$2'" >&2; exit 1; }
        sleep 0.02
    done
    since "$start"
}
qemu_stop() {
    kill -KILL "$(cat "$T/qemu.pid")" 2>/dev/null
    wait "$RUN" 2>/dev/null
    rm -f "$T/qemu.pid"
}
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# The SDK's hello example, built with the SDK's own Makefile (needs a C cross compiler).
CC_TRIPLE=
for t in aarch64-none-elf aarch64-linux-gnu; do
    command -v "$t-gcc" >/dev/null && { CC_TRIPLE=$t; break; }
done
[ -n "$CC_TRIPLE" ] || { echo "bench-system: no aarch64 C compiler for the SDK's hello (Debian: gcc-aarch64-linux-gnu)"; exit 1; }
mkdir -p "$T/hello"
make -s -C "$SDK/example/hello" BUILD_DIR="$T/hello" MICROKIT_SDK="$SDK" MICROKIT_BOARD="$BOARD" \
    MICROKIT_CONFIG=debug TARGET_TRIPLE="$CC_TRIPLE" >/dev/null || exit 1

echo "== boot to ready in QEMU ($RUNS runs each, alternated; seconds from starting QEMU)"
: >"$T/hello.times"
: >"$T/totebox.times"
n=0
while [ $n -lt "$RUNS" ]; do
    n=$((n + 1))
    boot "$T/hello/loader.img" "hello, world" hello >>"$T/hello.times"
    qemu_stop
    boot "$BUILD/loader.img" "WIRE|INFO: ready" totebox >>"$T/totebox.times"
    qemu_stop
done
echo "SDK hello (to 'hello, world'):     median $(median <"$T/hello.times") s  (runs: $(tr '\n' ' ' <"$T/hello.times"))"
echo "Totebox (to 'WIRE|INFO: ready'):   median $(median <"$T/totebox.times") s  (runs: $(tr '\n' ' ' <"$T/totebox.times"))"
echo "image sizes: hello $(stat -c %s "$T/hello/loader.img") bytes, totebox $(stat -c %s "$BUILD/loader.img") bytes"
# Issue 13's target is a ratio measured in one run: boot to ready <= 3 x the SDK's hello.
awk -v h="$(median <"$T/hello.times")" -v t="$(median <"$T/totebox.times")" \
    'BEGIN { printf "boot ratio (medians, this run): totebox / hello = %.2f (target <= 3)\n", t / h }'
# Every memory region the system maps (system.xml), which the initialiser creates and the
# kernel clears at every boot.
bytes=0
for v in $(sed -n 's/.*<memory_region [^>]*size="\([0-9a-fx]*\)".*/\1/p' "$ROOT/system.xml"); do
    bytes=$((bytes + v))
done
awk -v b="$bytes" 'BEGIN { printf "memory regions, all together: %.1f MiB (target <= 64)\n", b / 1048576 }'

echo
echo "== appends per second (64-byte entries; each request: append, sign a checkpoint, durable)"
"$REL/examples/bench_core" 2000 1
"$REL/examples/bench_core" 200 100
# Not provisioned (--open): bench_client sends unsigned requests, so these are the figures
# without access control (issue 8 leaves the benchmark with checks on to do; the QEMU figures
# below need a bench_client that signs, as the image is provisioned).
"$REL/totebox-sim" --system "$ROOT/system.xml" --disk "$T/sim.img" --keys "$T/keys" --open \
    --listen "unix:$T/sim.sock" >"$T/sim.out" 2>"$T/sim.err" &
PID=$!
i=0
until grep -q -- --connect "$T/sim.out" 2>/dev/null; do
    i=$((i + 1)); [ $i -gt 200 ] && { echo "bench-system: simulator did not start"; exit 1; }
    sleep 0.05
done
printf 'simulator end to end (socket, disk file, fdatasync): '
"$REL/examples/bench_client" "unix:$T/sim.sock" corporate 500 1
printf 'simulator end to end (socket, disk file, fdatasync): '
"$REL/examples/bench_client" "unix:$T/sim.sock" personnel 100 100
printf 'simulator end to end, pipelined: '
"$REL/examples/bench_client" "unix:$T/sim.sock" corporate 2000 1 64
printf 'simulator end to end, pipelined: '
"$REL/examples/bench_client" "unix:$T/sim.sock" personnel 100 100 16
kill "$PID"; wait "$PID" 2>/dev/null; PID=
boot "$BUILD/loader.img" "WIRE|INFO: ready" qemu >/dev/null
printf 'QEMU end to end (virtio-console, virtio-blk, fdatasync): '
"$REL/examples/bench_client" "unix:$T/qemu.sock" corporate 100 1
printf 'QEMU end to end (virtio-console, virtio-blk, fdatasync): '
"$REL/examples/bench_client" "unix:$T/qemu.sock" personnel 20 100
printf 'QEMU end to end, pipelined: '
"$REL/examples/bench_client" "unix:$T/qemu.sock" corporate 1000 1 64
printf 'QEMU end to end, pipelined: '
"$REL/examples/bench_client" "unix:$T/qemu.sock" personnel 40 100 16
qemu_stop
cp "$T/qemu.img" "$T/populated.img"

echo
echo "== where boot time goes (tests/boot-profile.sh; medians of $RUNS boots, seconds)"
n=0
while [ $n -lt "$RUNS" ]; do
    n=$((n + 1))
    rm -f "$T/blank.img"
    "$ROOT/tests/boot-profile.sh" "$BUILD/loader.img" "$T/blank.img" blank >>"$T/profile" || exit 1
    "$ROOT/tests/boot-profile.sh" "$BUILD/loader.img" "$T/populated.img" populated >>"$T/profile" || exit 1
done
grep '# ' "$T/profile" | sort -u | sed 's/\t# /: /'
grep -v '# ' "$T/profile" | awk -F'\t' '
    { k = $2; if (!(k in seen)) { seen[k] = 1; order[++n] = k }
      v[$1, k, ++c[$1, k]] = $3 }
    function med(l, k,   m, i, j, t, a) {
        m = c[l, k]; for (i = 1; i <= m; i++) a[i] = v[l, k, i]
        for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
        return a[int((m + 1) / 2)]
    }
    END { printf "%-18s %8s %10s\n", "phase", "blank", "populated"
          for (i = 1; i <= n; i++) printf "%-18s %8s %10s\n", order[i], med("blank", order[i]), med("populated", order[i]) }'

echo
echo "== each PD's ELF and memory footprint (report.txt of $BUILD/image; make footprint writes it into the README)"
"$SDK/bin/microkit" "$ROOT/system.xml" --search-path "$BUILD/image" --board "$BOARD" \
    --config "${MICROKIT_CONFIG:-debug}" -o "$T/loader.img" -r "$T/report.txt" >/dev/null || exit 1
"$REL/examples/footprint" "$ROOT/system.xml" "$BUILD/image" "$T/report.txt"

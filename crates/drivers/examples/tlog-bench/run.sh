#!/bin/sh
# The ledger core inside a PD (README.md), with and without the SHA-256 instructions: builds
# tlog_bench twice (with `-C target-feature=+sha2`, the Makefile's default PD_RUSTFLAGS, and
# with none, as `make build PD_RUSTFLAGS=`), packs each with bench.system, boots each in QEMU
# virt until `bench|DONE` (one QEMU at a time, BOOTS boots of each, alternated), and prints both
# PDs' lines, then the best figures side by side. A benchmark: it prints figures; it fails only
# when a build, a boot or a run does, or when the two builds' roots or digests differ.
#
# Usage: MICROKIT_SDK=<sdk> crates/drivers/examples/tlog-bench/run.sh [OUT]   (`make bench-pd`)
# Environment: CARGO_TARGET_DIR (default target, under the repository root; the build without
# the instructions goes to <it>/rustflags-none, as `make build PD_RUSTFLAGS=` does: each set of
# flags keeps its own directory), BOOTS (boots of each build, alternated; 3), TIMEOUT (seconds
# per boot, 300).
# Needs: cargo, python3, qemu-system-aarch64 (7.2); aarch64-linux-gnu-objdump to count sha256h.
set -eu

: "${MICROKIT_SDK:?set MICROKIT_SDK to a Microkit 2.3.0 SDK with board qemu_virt_aarch64}"
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${1:-target/tlog-bench}
TIMEOUT=${TIMEOUT:-300}
BOOTS=${BOOTS:-3}
TARGET_DIR=${CARGO_TARGET_DIR:-target}
WITH="-C target-feature=+sha2"
mkdir -p "$OUT/sha2" "$OUT/soft"
OUT=$(cd "$OUT" && pwd)
cd "$HERE/../../../.."

# build DIR FLAGS TARGET_DIR: tlog_bench.elf into DIR (the executable cargo reports: the
# uplifted examples/<name> is not refreshed when a build of another feature set is reused).
build() {
    CARGO_TARGET_AARCH64_UNKNOWN_NONE_RUSTFLAGS="$2" CARGO_TARGET_DIR= \
        cargo build --profile pd-debug --target aarch64-unknown-none --target-dir "$3" \
        -p drivers --features config-debug --example tlog_bench \
        --message-format=json-render-diagnostics |
        python3 -c '
import json, shutil, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable"):
        shutil.copy(m["executable"], sys.argv[1] + "/tlog_bench.elf")
' "$1"
    test -s "$1/tlog_bench.elf"
    "$MICROKIT_SDK/bin/microkit" "$HERE/bench.system" --search-path "$1" \
        --board qemu_virt_aarch64 --config debug -o "$1/loader.img" -r "$1/report.txt" >/dev/null
}
rm -f "$OUT"/*/tlog_bench.elf
build "$OUT/sha2" "$WITH" "$TARGET_DIR"
build "$OUT/soft" "" "$TARGET_DIR/rustflags-none"
for b in sha2 soft; do
    if command -v aarch64-linux-gnu-objdump >/dev/null; then
        n=$(aarch64-linux-gnu-objdump -d "$OUT/$b/tlog_bench.elf" | grep -c 'sha256h	' || true)
        echo "tlog-bench: $b build: $n sha256h instructions in tlog_bench.elf"
    else
        echo "tlog-bench: $b build: no aarch64-linux-gnu-objdump, sha256h not counted"
    fi
done

# boot DIR LOG: QEMU on DIR/loader.img until bench|DONE (or an error line, or TIMEOUT); the
# console in LOG.
boot() {
    rm -f "$2"
    timeout "$TIMEOUT" qemu-system-aarch64 -machine virt,virtualization=on -cpu cortex-a53 \
        -m size=2G -nographic -serial mon:stdio \
        -device loader,file="$1/loader.img",addr=0x70000000,cpu-num=0 \
        </dev/null >"$2" 2>&1 &
    QEMU=$!
    status=0
    python3 - "$2" "$TIMEOUT" <<'PY' || status=$?
import sys, time
log, deadline = sys.argv[1], time.time() + float(sys.argv[2])
while time.time() < deadline:
    text = open(log, errors="replace").read()
    for bad in ("|ERROR", "|PANIC", "MON|ERROR"):
        if bad in text:
            sys.exit("tlog-bench: error line in " + log + ", which ends:\n" + text[-3000:])
    if "bench|DONE" in text:
        sys.exit(0)
    time.sleep(0.2)
sys.exit("tlog-bench: no bench|DONE in " + log)
PY
    kill "$QEMU" 2>/dev/null || true
    wait "$QEMU" 2>/dev/null || true
    QEMU=
    return $status
}
QEMU=
trap '[ -z "$QEMU" ] || kill "$QEMU" 2>/dev/null || true' EXIT
# BOOTS boots of each build, alternated (the machine may be shared: a busy spell then hits both).
i=1
while [ "$i" -le "$BOOTS" ]; do
    for b in sha2 soft; do
        boot "$OUT/$b" "$OUT/$b/qemu-$i.log" || exit 1
    done
    i=$((i + 1))
done
for b in sha2 soft; do
    echo "== $([ $b = sha2 ] && echo "with the SHA-256 instructions ($WITH)" || echo "without (software SHA-256)"), boot 1 of $BOOTS"
    tr -d '\r' <"$OUT/$b/qemu-1.log" | grep '^bench|'
done

# The two builds hash the same entries: every boot's roots and digests must agree.
keys() { tr -d '\r' <"$1" | grep -o 'root [0-9a-f]*\|digest [0-9a-f]*\|chain [0-9a-f]*'; }
keys "$OUT/sha2/qemu-1.log" >"$OUT/keys"
for f in "$OUT"/sha2/qemu-*.log "$OUT"/soft/qemu-*.log; do
    keys "$f" | cmp -s - "$OUT/keys" || { echo "tlog-bench: roots or digests differ: $f"; exit 1; }
done
echo
echo "== side by side: best of $BOOTS boots each (QEMU virt, cortex-a53, TCG; the roots and digests agree)"
python3 - "$OUT" "$BOOTS" <<'PY'
import re, sys
out, boots = sys.argv[1], int(sys.argv[2])
def figures(build):
    f = {}
    for i in range(1, boots + 1):
        for line in open("%s/%s/qemu-%d.log" % (out, build, i), errors="replace"):
            m = re.match(r"bench\|INFO: (.*?): ([0-9.]+) (MB/s|entries/s|appends/s)", line.strip())
            if m:
                k = m.group(1) + " (" + m.group(3) + ")"
                f[k] = max(f.get(k, 0.0), float(m.group(2)))
    return f
on, off = figures("sha2"), figures("soft")
print("%-56s %11s %11s %7s" % ("", "with sha2", "without", "ratio"))
for k, v in on.items():
    w = off.get(k, 0.0)
    fmt = "%11.2f" if k.endswith("(MB/s)") else "%11.0f"
    print(("%-56s " + fmt + " " + fmt + " %6.2fx") % (k, v, w, v / w if w else 0))
PY

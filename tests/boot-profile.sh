#!/usr/bin/env bash
# Where boot time goes (issue 13): boots an image in QEMU (qemu/run.sh) and times each phase
# from the console lines, stamped as they arrive (bash's EPOCHREALTIME, no fork per line). A
# figure, not a test: `make bench-system` runs it on a blank disk and on a populated one.
#
# Usage: tests/boot-profile.sh LOADER_IMG DISK_IMG [LABEL]
#   DISK_IMG is used as it is (a blank one is created by qemu/run.sh if absent); boot it again
#   to time a mount of what an earlier run stored.
# Prints one line per phase, `LABEL<TAB>PHASE<TAB>SECONDS`, then `LABEL<TAB>total<TAB>SECONDS`
# (QEMU started to WIRE|INFO: ready). Phases, each from the line that ends the one before:
#   qemu         QEMU started, until the loader's first line (QEMU's own start, firmware)
#   loader       the loader copying the image's regions, until it jumps to the kernel
#   kernel       the kernel's boot, until it drops to user space
#   initialiser  the CapDL initialiser: creating every object (the kernel clears each frame
#                it retypes: memory regions cost here), mapping them, until it starts threads
#   psdb         psdb's init: probing the disk, then formatting or mounting it (its index)
#   audit        audit's init: opening the audit log (records, journal)
#   ledger_<t>   each ledger's init: opening its log (checkpoint, tiles)
#   wire         the wire's init, until WIRE|INFO: ready
# The lines matched are the debug configuration's (qemu/console.txt); a phase whose line is
# missing prints `-`. READY (default `WIRE|INFO: ready`) is the line that ends the boot: with
# READY='hello, world' the same stamping times the SDK's hello example (make bench-system's
# ratio), so both boots are measured the same way, to the line, not by polling a log.
set -u
IMG=${1:?usage: boot-profile.sh LOADER_IMG DISK_IMG [LABEL]}
DISK=${2:?usage: boot-profile.sh LOADER_IMG DISK_IMG [LABEL]}
LABEL=${3:-boot}
READY=${READY:-WIRE|INFO: ready}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
T=$(mktemp -d "${TMPDIR:-/tmp}/boot-profile.XXXXXX")
trap '[ -f "$T/pid" ] && kill -KILL "$(cat "$T/pid")" 2>/dev/null; rm -rf "$T"' EXIT

start=$EPOCHREALTIME
(cd "$ROOT" && QEMU_TIMEOUT=300 QEMU_PIDFILE="$T/pid" exec qemu/run.sh "$IMG" "$DISK" "$T/sock") \
    </dev/null 2>&1 | while IFS= read -r line; do
    printf '%s %s\n' "$EPOCHREALTIME" "$line"
    # Stop QEMU here: it writes nothing more, so the pipe alone would not end it.
    case $line in "$READY"* | *"|ERROR"* | *"|PANIC"*)
        kill -KILL "$(cat "$T/pid" 2>/dev/null)" 2>/dev/null
        break ;;
    esac
done >"$T/log"
[ -f "$T/pid" ] && kill -KILL "$(cat "$T/pid")" 2>/dev/null

# at PATTERN: the time of the first line matching PATTERN (grep -E), or nothing.
at() { grep -E -m 1 "^[0-9.]+ $1" "$T/log" | cut -d' ' -f1; }
prev=$start
phase() {
    t=$(at "$2")
    if [ -z "$t" ]; then
        printf '%s\t%s\t-\n' "$LABEL" "$1"
        return
    fi
    awk -v l="$LABEL" -v p="$1" -v a="$prev" -v b="$t" 'BEGIN { printf "%s\t%s\t%.3f\n", l, p, b - a }'
    prev=$t
}
phase qemu 'LDR\|INFO'
phase loader 'LDR\|INFO\|CPU0: jumping to kernel'
phase kernel 'Booting all finished'
phase initialiser 'MON\|INFO: Microkit Monitor started'
phase psdb 'psdb\|INFO: '
phase audit 'audit\|INFO: serving'
for l in $(sed -n 's/^[0-9.]* \(ledger_[a-z0-9_]*\)|INFO: serving.*/\1/p' "$T/log"); do
    phase "$l" "$l\|INFO: serving"
done
phase wire 'WIRE\|INFO: ready'
# The first line that starts with READY (not one that only mentions it, as qemu/run.sh's does).
t=$(awk -v r="$READY" 'substr($0, length($1) + 2, length(r)) == r { print $1; exit }' "$T/log")
if [ -n "$t" ]; then
    awk -v l="$LABEL" -v a="$start" -v b="$t" 'BEGIN { printf "%s\ttotal\t%.3f\n", l, b - a }'
else
    echo "boot-profile: $LABEL did not reach $READY; its console:" >&2
    sed 's/^[0-9.]* //' "$T/log" | tail -n 20 >&2
    exit 1
fi
grep -E -m 1 '^[0-9.]+ psdb\|INFO: ' "$T/log" | sed "s/^[0-9.]* /$LABEL\t# /"

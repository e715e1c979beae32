#!/bin/sh
# A PD added to the description, end to end (`make template-test`, part of `make test`): the
# system of system.toml plus pds/template/add.toml (DIR/system.toml, DIR/system.xml), with the
# simulator and host tool built from it (TOTEBOX_SYSTEM, their own target directory).
#   1. the simulator runs it: the template's console line `template|INFO: psdb answers:
#      namespace template uses N of M bytes ...` appears, and no PD reports an error or faults
#   2. a tenant still appends and reads through the wire (the added PD changes nothing for them)
#   3. `totebox inspect DIR/system.xml` (the description's view) reports no violation
#   4. with a Microkit SDK and QEMU, DIR/loader.img (`make image` for this system, which the
#      Makefile builds then) boots in QEMU: the same console line before `WIRE|INFO: ready`,
#      the same tenant round trip; without them one `SKIPPED: <reason>` line, never a pass.
# Prints `template: N passed, M failed` (exit 1 if M > 0).
# Usage: tests/template.sh DIR BIN_DIR   (BIN_DIR: totebox and totebox-sim built from DIR/system.toml)
# Environment: MICROKIT_SDK, MICROKIT_CONFIG, BOOT_TIMEOUT (seconds, default 180).
set -u
DIR=${1:?usage: template.sh DIR BIN_DIR}
BIN=${2:?usage: template.sh DIR BIN_DIR}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
SDK=${MICROKIT_SDK:-$HOME/.cache/totebox/microkit-sdk-2.3.0}
BOOT_TIMEOUT=${BOOT_TIMEOUT:-180}
SYSTEM_XML=$DIR/system.xml
T=$(mktemp -d "${TMPDIR:-/tmp}/template-test.XXXXXX")
KEYS=$T/keys
PID=
cleanup() {
    [ -n "$PID" ] && kill "$PID" 2>/dev/null
    [ -f "$T/qemu.pid" ] && kill -KILL "$(cat "$T/qemu.pid")" 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
. "$HERE/client-lib.sh"
LINE='template\|INFO: psdb answers: namespace template uses [0-9]+ of [0-9]+ bytes'
FIRST=$(echo $TENANTS | cut -d' ' -f1)

round_trip() {
    printf 'written beside the template\n' | client append --tenant "$FIRST" >"$T/idx" &&
        [ "$(client read --tenant "$FIRST" --since "$(cat "$T/idx")" | cut -f2)" = "written beside the template" ]
}

# 1-2. The simulator, provisioned as `make sim` (access control on).
provision_access "$KEYS" || echo "template: cannot create the access keys" >&2
"$BIN/totebox-sim" --system "$SYSTEM_XML" --disk "$T/disk.img" --keys "$KEYS" \
    --listen "unix:$T/wire.sock" >"$T/sim.out" 2>"$T/sim.err" &
PID=$!
i=0
until grep -q -- '--connect' "$T/sim.out" 2>/dev/null; do
    i=$((i + 1))
    [ $i -gt 100 ] && { echo "template: simulator did not start" >&2; cat "$T/sim.err" >&2; break; }
    sleep 0.1
done
ADDR=$(sed -n 's/.*--connect //p' "$T/sim.out")
check "simulator: the template's console line" grep -qE "^$LINE" "$T/sim.err"
check "simulator: no error lines, no faulting PD" sh -c '! grep -E "\|ERROR|MON\|ERROR|SIM\|ERROR" "$1" >&2' _ "$T/sim.err"
check "simulator: $FIRST appends and reads beside the template" round_trip
echo "template: simulator: $(grep -E "^$LINE" "$T/sim.err" | head -n 1)"
kill "$PID"; wait "$PID" 2>/dev/null; PID=

# 3. The isolation rules, on the description.
inspected() {
    "$BIN/totebox" inspect "$SYSTEM_XML" >"$T/inspect.txt" || { cat "$T/inspect.txt" >&2; return 1; }
    grep -q "^template (priority" "$T/inspect.txt" && echo "template: $(tail -n 1 "$T/inspect.txt")"
}
check "totebox inspect: no violation" inspected

# 4. QEMU.
if [ ! -x "$SDK/bin/microkit" ]; then
    echo "SKIPPED: template: QEMU boot: no Microkit SDK at $SDK (run 'make sdk' or set MICROKIT_SDK)"
elif ! command -v qemu-system-aarch64 >/dev/null 2>&1; then
    echo "SKIPPED: template: QEMU boot: qemu-system-aarch64 not found (Debian: apt-get install qemu-system-arm)"
elif [ "${MICROKIT_CONFIG:-debug}" != debug ]; then
    echo "SKIPPED: template: QEMU boot: MICROKIT_CONFIG=${MICROKIT_CONFIG} has no console to wait on (use debug)"
else
    LOG=$T/qemu.log
    ADDR=unix:$T/qemu.sock
    rm -rf "$T/client-state" # another box: its own keys, so the client's own state
    KEYS=$DIR/keys           # what `make image` provisioned DIR/loader.img with
    booted() {
        [ -f "$DIR/loader.img" ] || { echo "template: no $DIR/loader.img" >&2; return 1; }
        (cd "$ROOT" && QEMU_TIMEOUT=600 QEMU_PIDFILE="$T/qemu.pid" \
            exec qemu/run.sh "$DIR/loader.img" "$T/qemu-disk.img" "${ADDR#unix:}") </dev/null >"$LOG" 2>&1 &
        deadline=$(($(date +%s) + BOOT_TIMEOUT))
        while [ "$(date +%s)" -lt "$deadline" ]; do
            grep -q '^WIRE|INFO: ready' "$LOG" && [ -S "${ADDR#unix:}" ] && return 0
            grep -qE '\|ERROR|\|PANIC|MON\|ERROR' "$LOG" && break
            sleep 0.2
        done
        echo "template: QEMU did not come up; console:" >&2
        sed -n '/Monitor started/,$p' "$LOG" | head -40 >&2
        return 1
    }
    if check "QEMU: boots to WIRE|INFO: ready" booted; then
        check "QEMU: the template's console line" grep -qE "^$LINE" "$LOG"
        check "QEMU: $FIRST appends and reads beside the template" round_trip
        check "QEMU: no error lines" sh -c '! grep -E "\|ERROR|\|PANIC|MON\|ERROR" "$1" >&2' _ "$LOG"
        echo "template: QEMU: $(tr -d '\r' <"$LOG" | grep -E "^$LINE" | head -n 1)"
    fi
fi
echo "template: $PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]

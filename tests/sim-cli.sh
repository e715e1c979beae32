#!/bin/sh
# Whole-system check through the real binaries: start `totebox-sim` on a UNIX socket with a
# fresh disk file and fresh keys, run the client script (tests/client-lib.sh, the same one
# tests/qemu-e2e.sh runs against the image in QEMU): three tenants appended to, read,
# checkpointed, exported and verified with the key files the simulator signs with, malformed
# input survived; then restart the simulator on the same disk and check everything is still
# there; finally restart it on a blank disk with the same keys (a rolled-back disk): the client,
# remembering the checkpoints it verified, must refuse it. Exit status 0 only if every check
# held.
# Usage: tests/sim-cli.sh BIN_DIR   (where totebox and totebox-sim are)
#   SYSTEM_XML   the system description the simulator runs (default system.xml); its binaries
#                must be built from the same system.toml (TOTEBOX_SYSTEM, see the Makefile)
set -u
BIN=${1:?usage: sim-cli.sh BIN_DIR}
SYSTEM_XML=${SYSTEM_XML:-system.xml}
T=$(mktemp -d)
KEYS=$T/keys
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
. "$(dirname "$0")/client-lib.sh"
# Access control on, as `make sim`: the identity, the ADMIN key and pairings.yaml in $KEYS.
provision_access "$KEYS" || { echo "sim-cli: cannot create the access keys"; exit 1; }
start() {
    "$BIN/totebox-sim" --system "$SYSTEM_XML" --disk "${DISK:-$T/disk.img}" --keys "$KEYS" --listen "unix:$T/wire.sock" "$@" >"$T/sim.out" 2>>"$T/sim.err" &
    PID=$!
    i=0; until grep -q -- '--connect' "$T/sim.out" 2>/dev/null; do
        i=$((i+1)); [ $i -gt 100 ] && { echo "sim-cli: simulator did not start"; cat "$T/sim.err"; exit 1; }
        sleep 0.1
    done
    ADDR=$(sed -n 's/.*--connect //p' "$T/sim.out")
}
start
client_script
check "no faulting PD in the simulator" sh -c '! grep -q "MON|ERROR" "$1"' _ "$T/sim.err"
check "access control on: no 'access control off' line" sh -c '! grep -q "access control off" "$1"' _ "$T/sim.err"
kill "$PID"; wait "$PID" 2>/dev/null || true; PID=
rm -f "$T/sim.out"
start
restart_script
# The access table (tests/access_cases.rs, as tests/tests/access_table.rs runs it through the
# simulator library) against the running simulator over its socket; then a granted request's
# frame captured, replayed after a restart on the same disk and against a copy of the disk.
TABLE=$BIN/examples/access_table_client
check "the access table through the socket: every case's code, refusals change nothing, the audit log exported and verified" \
    sh -c '"$1" "$2" "$3" >"$4" && tail -n 1 "$4"' _ "$TABLE" "$ADDR" "$KEYS" "$T/table.out"
check "a granted signed request's frame captured" "$TABLE" "$ADDR" "$KEYS" --capture "$T/captured.frame"
kill "$PID"; wait "$PID" 2>/dev/null || true; PID=
rm -f "$T/sim.out"
start
check "the captured frame replayed after a restart is refused, state unchanged" "$TABLE" "$ADDR" "$KEYS" --replay "$T/captured.frame"
kill "$PID"; wait "$PID" 2>/dev/null || true; PID=
cp "$T/disk.img" "$T/copy.img"
rm -f "$T/sim.out"
DISK=$T/copy.img start
check "the captured frame replayed against a copy of the disk is refused, state unchanged" "$TABLE" "$ADDR" "$KEYS" --replay "$T/captured.frame"
kill "$PID"; wait "$PID" 2>/dev/null || true; PID=
# Offline, with the box stopped: the disk is consistent and the audit log reads back verified,
# one line per decision: the ADMIN's granted reads, appends and entry bundles (export), and the
# refusals above.
check "psdb fsck: the disk is consistent" sh -c '"$1" psdb fsck "$2" >/dev/null' _ "$BIN/totebox" "$T/disk.img"
audit_log_reads() {
    "$BIN/totebox" log read --psdb "$T/disk.img" --namespace audit --vkey "$KEYS/audit.vkey" >"$T/audit.txt" &&
        grep -q "type=admin tenant=corporate op=read .*outcome=granted" "$T/audit.txt" &&
        grep -q "type=admin tenant=corporate op=append .*outcome=granted" "$T/audit.txt" &&
        grep -q "op=get-object .*outcome=granted" "$T/audit.txt" &&
        grep -q "key=- type=- tenant=corporate op=- .*outcome=unsigned" "$T/audit.txt" &&
        grep -q "key=[0-9a-f]* type=- tenant=corporate op=hello .*outcome=unpaired" "$T/audit.txt"
}
check "the audit log verifies and reads back offline (log read): grants and refusals recorded" audit_log_reads
# Not provisioned only when asked (--open); without the keys the simulator refuses to start.
refuses_unprovisioned() {
    ! "$BIN/totebox-sim" --system "$SYSTEM_XML" --disk "$T/open.img" --keys "$T/nokeys" \
        --listen "unix:$T/open.sock" >/dev/null 2>"$T/open.err" &&
        grep -q "the archive is not provisioned" "$T/open.err" && [ ! -e "$T/open.img" ]
}
check "without an identity key and pairings the simulator refuses to start (no --open)" refuses_unprovisioned
rm -f "$T/sim.out" "$T/disk.img"
start
rolled_back_refused() {
    ! client checkpoint --tenant corporate >/dev/null 2>"$T/rollback.err" &&
        grep -q "rollback.*size 0.*size 301" "$T/rollback.err"
}
check "a blank disk with the same keys is refused as a rollback" rolled_back_refused
kill "$PID"; wait "$PID" 2>/dev/null || true; PID=
# PUBLIC_METADATA (make sim PUBLIC_METADATA=1) on a fresh archive (the flag is the initial
# set's, stored at first boot): unsigned metadata is answered, so the unsigned append itself
# reaches the archive, and is refused.
rm -f "$T/sim.out"
rm -rf "$T/client-state" # another archive's logs from here on
DISK=$T/public.img start --public-metadata --http 127.0.0.1:0
HTTP=$(sed -n 's/^SIM|INFO: http on //p' "$T/sim.out")
public_metadata() {
    unsigned checkpoint --tenant corporate >"$T/public.note" &&
        tb note verify "$T/public.note" --vkey "$KEYS/corporate.vkey" >/dev/null &&
        unsigned_append_refused corporate &&
        ! unsigned read --tenant corporate --since 0 >/dev/null 2>&1
}
check "public metadata: an unsigned checkpoint is answered; the unsigned append itself and an unsigned read are refused" public_metadata
# The tlog-tiles read endpoints over HTTP (sim::http): curl fetches the checkpoint unsigned and
# it verifies; an entry bundle is refused without a capability.
if command -v curl >/dev/null 2>&1; then
    http_checkpoint() {
        curl -sf "$HTTP/corporate/checkpoint" >"$T/http.note" &&
            tb note verify "$T/http.note" --vkey "$KEYS/corporate.vkey" >/dev/null &&
            code=$(curl -s -o /dev/null -w '%{http_code}' "$HTTP/corporate/tile/entries/000") &&
            { [ "$code" = 401 ] || [ "$code" = 403 ]; }
    }
    check "HTTP: curl $HTTP/corporate/checkpoint verifies with totebox note verify; an entry bundle is refused" http_checkpoint
else
    echo "SKIPPED: HTTP checks (no curl)"
fi
check "the access table with its public-metadata column (--public-metadata) through the socket" \
    sh -c '"$1" "$2" "$3" --public-metadata >"$4" && tail -n 1 "$4"' _ "$TABLE" "$ADDR" "$KEYS" "$T/table-public.out"
if [ "$FAILED" -ne 0 ]; then
    echo "sim-cli: $PASSED passed, $FAILED failed"
    exit 1
fi
echo "sim-cli: PASS ($PASSED checks: access control on, every request signed; $(echo $TENANTS | wc -w) tenants ($TENANTS) x 300 entries, exports verified with the key files, unsigned and unpaired requests refused, garbage survived, restart kept everything, the audit log read offline, a rolled-back disk refused, the access table through the socket with and without public metadata, a captured frame replayed after a restart and on a copy refused)"

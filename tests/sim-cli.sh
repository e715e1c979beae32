#!/bin/sh
# Whole-system check through the real binaries: start `totebox-sim` on a UNIX socket with a
# fresh disk file, append to all three tenants with `totebox client`, read back, export each
# log and `totebox log verify` it, send garbage on the socket, then restart the simulator on the
# same disk and check the logs are all still there. Exports are verified with the key files the
# simulator signs with (generated in the state directory: the `.vkey` files, never the key the
# box itself reports). Exit status 0 only if everything held.
# Usage: tests/sim-cli.sh BIN_DIR   (where totebox and totebox-sim are)
set -eu
BIN=${1:?usage: sim-cli.sh BIN_DIR}
T=$(mktemp -d)
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
start() {
    "$BIN/totebox-sim" --disk "$T/disk.img" --keys "$T/keys" --listen "unix:$T/wire.sock" >"$T/sim.out" 2>>"$T/sim.err" &
    PID=$!
    i=0; until grep -q -- '--connect' "$T/sim.out" 2>/dev/null; do
        i=$((i+1)); [ $i -gt 100 ] && { echo "sim-cli: simulator did not start"; cat "$T/sim.err"; exit 1; }
        sleep 0.1
    done
    ADDR=$(sed -n 's/.*--connect //p' "$T/sim.out")
}
start
for t in corporate personnel property; do
    seq 1 300 | sed "s/^/$t record /" | "$BIN/totebox" client --connect "$ADDR" append --tenant $t >"$T/$t.idx"
    [ "$(tail -n1 "$T/$t.idx")" = 299 ] || { echo "sim-cli: $t indices wrong"; exit 1; }
    [ "$("$BIN/totebox" client --connect "$ADDR" read --tenant $t --since 299 | cut -f2)" = "$t record 300" ]
    "$BIN/totebox" client --connect "$ADDR" export --tenant $t "$T/$t" >/dev/null
    cmp -s "$T/$t/vkey" "$T/keys/$t.vkey" || { echo "sim-cli: $t exported a vkey that is not its key file's"; exit 1; }
    "$BIN/totebox" log verify "$T/$t" --vkey "$T/keys/$t.vkey" >/dev/null
done
# Garbage on the socket: the wire answers and keeps serving.
python3 -c "import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(b'\x13\x37garbage\xff\x00' + b'\x55'*200000 + b'\x00'); s.recv(100); s.close()" "$T/wire.sock"
"$BIN/totebox" client --connect "$ADDR" read --tenant nobody --since 0 2>/dev/null && { echo "sim-cli: unknown tenant accepted"; exit 1; }
# Restart on the same disk: everything acknowledged is there.
kill "$PID"; wait "$PID" 2>/dev/null || true; PID=
rm -f "$T/sim.out"
start
for t in corporate personnel property; do
    # Any other tenant's key refuses this tenant's checkpoints.
    for o in corporate personnel property audit; do
        [ $o = $t ] && continue
        "$BIN/totebox" log verify "$T/$t" --vkey "$T/keys/$o.vkey" >/dev/null 2>&1 && { echo "sim-cli: $t verified with $o's key"; exit 1; }
    done
    [ "$("$BIN/totebox" client --connect "$ADDR" read --tenant $t --since 0 | wc -l)" = 300 ] || { echo "sim-cli: $t lost entries"; exit 1; }
    echo more | "$BIN/totebox" client --connect "$ADDR" append --tenant $t | grep -qx 300
done
echo "sim-cli: PASS (3 tenants x 300 entries, exports verified, garbage survived, restart kept everything)"

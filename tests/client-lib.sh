# The client script, shared by tests/sim-cli.sh (the simulator) and tests/qemu-e2e.sh (the
# image in QEMU): the same requests and checks against either box. Source it, then set
#   BIN   directory holding `totebox`
#   ADDR  unix:PATH of the box's client socket
#   KEYS  directory of <log>.vkey: the keys the box was provisioned with (never the key the
#         box reports about itself)
#   T     a scratch directory (also the client's state: $T/client-state remembers the latest
#         checkpoint verified per log, so a box that rolls back during the run is caught, and
#         runs never share it: the QEMU test boots fresh disks with the same provisioned keys)
# Every `check DESCRIPTION COMMAND...` counts one test in PASSED or FAILED (and prints FAIL),
# and returns the command's status. Scripts sourcing this run without `set -e`.

PASSED=0
FAILED=0
# Every totebox client of the run, `client` below or called directly, keeps its state here and
# never in the user's own state directory (which an earlier run on the same keys would fill).
export TOTEBOX_STATE="$T/client-state"
# The tenants the box serves: as the system description it runs names their ledgers' images
# (SYSTEM_XML, default system.xml; generated from system.toml).
TENANTS=${TENANTS:-$(sed -n 's/.*program_image path="ledger_\([a-z0-9_]*\)\.elf".*/\1/p' "${SYSTEM_XML:-system.xml}" | tr '\n' ' ')}

check() {
    desc=$1
    shift
    if "$@"; then
        PASSED=$((PASSED + 1))
    else
        FAILED=$((FAILED + 1))
        echo "FAIL: $desc" >&2
        return 1
    fi
}

tb() { "$BIN/totebox" "$@"; }
client() { "$BIN/totebox" client --connect "$ADDR" --state "$T/client-state" "$@"; }

fill_tenant() {
    seq 1 300 | sed "s/^/$1 record /" | client append --tenant "$1" >"$T/$1.idx" &&
        [ "$(tail -n 1 "$T/$1.idx")" = 299 ] && [ "$(wc -l <"$T/$1.idx")" -eq 300 ]
}
reads_back() {
    [ "$(client read --tenant "$1" --since 299 | cut -f2)" = "$1 record 300" ] &&
        [ "$(client read --tenant "$1" --since 0 | wc -l)" -eq 300 ]
}
checkpoint_verifies() {
    client checkpoint --tenant "$1" >"$T/$1.note" &&
        tb note verify "$T/$1.note" --vkey "$KEYS/$1.vkey" >/dev/null
}
export_verifies() {
    rm -rf "${T:?}/$1"
    client export --tenant "$1" --vkey "$KEYS/$1.vkey" "$T/$1" >/dev/null &&
        cmp -s "$T/$1/vkey" "$KEYS/$1.vkey" &&
        tb log verify "$T/$1" --vkey "$KEYS/$1.vkey" >/dev/null
}
no_other_key_verifies() {
    for o in $TENANTS audit; do
        [ "$o" = "$1" ] && continue
        tb log verify "$T/$1" --vkey "$KEYS/$o.vkey" >/dev/null 2>&1 && return 1
    done
    return 0
}
garbage_answered() {
    python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(60)
s.connect(sys.argv[1])
s.sendall(b"\x13\x37garbage\xff\x00" + b"\x55" * 200000 + b"\x00")
got = s.recv(100)
s.close()
sys.exit(0 if got else 1)
' "${ADDR#unix:}"
}
unknown_tenant_refused() { ! client read --tenant nobody --since 0 2>/dev/null; }
still_serving() {
    [ "$(client read --tenant property --since 0 --max 1 | cut -f2)" = "property record 1" ]
}

# Every tenant appended to, read, checkpointed, exported and verified; malformed input survived.
client_script() {
    for t in $TENANTS; do
        check "$t: 300 appends acknowledged as 0..299" fill_tenant "$t"
        check "$t: entries read back" reads_back "$t"
        check "$t: checkpoint signed with $t's provisioned key" checkpoint_verifies "$t"
        check "$t: export verifies with $KEYS/$t.vkey" export_verifies "$t"
        check "$t: no other log's key verifies $t's export" no_other_key_verifies "$t"
    done
    check "garbage on the socket is answered" garbage_answered
    check "an unknown tenant is refused" unknown_tenant_refused
    check "the wire still serves after malformed input" still_serving
}

kept() {
    [ "$(client read --tenant "$1" --since 0 | wc -l)" -eq 300 ] &&
        [ "$(echo more | client append --tenant "$1")" = 300 ]
}

# After a restart on the same disk: everything is there and appends continue.
restart_script() {
    for t in $TENANTS; do
        check "$t: 300 entries kept across the restart, next index 300" kept "$t"
    done
}

# The client script, shared by tests/sim-cli.sh (the simulator) and tests/qemu-e2e.sh (the
# image in QEMU): the same requests and checks against either box. Source it, then set
#   BIN   directory holding `totebox`
#   ADDR  unix:PATH of the box's client socket
#   KEYS  directory of <log>.vkey: the keys the box was provisioned with (never the key the
#         box reports about itself), and its access control's: the archive identity
#         (archive-identity.vkey, what clients pass as --archive), the operator's ADMIN key
#         (admin.skey, paired for every tenant in pairings.yaml). Every client call signs
#         with them (`client`; qemu-e2e.sh passes the same under `timeout`); `unsigned` and
#         `stranger` are the refused ones.
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
# Signed by the ADMIN key (access control is on: docs/access.md).
client() {
    "$BIN/totebox" client --connect "$ADDR" --state "$T/client-state" \
        --skey "$KEYS/admin.skey" --archive "$KEYS/archive-identity.vkey" "$@"
}
# Unsigned (no --skey), and signed by a key the archive never paired.
unsigned() { "$BIN/totebox" client --connect "$ADDR" --state "$T/client-state" "$@"; }
stranger() {
    [ -f "$T/stranger.skey" ] || { tb keygen stranger >"$T/stranger.keys" && head -n 1 "$T/stranger.keys" >"$T/stranger.skey"; }
    "$BIN/totebox" client --connect "$ADDR" --state "$T/client-state" \
        --skey "$T/stranger.skey" --archive "$KEYS/archive-identity.vkey" "$@"
}

# provision_access DIR: what `make access-keys` creates, for a box started on a fresh keys
# directory (the simulator): the identity key, the ADMIN key and pairings.yaml pairing it for
# every tenant.
provision_access() {
    mkdir -p "$1" &&
        (umask 077 && tb keygen archive >"$1/.archive" && head -n 1 "$1/.archive" >"$1/archive-identity.key" &&
            sed -n 2p "$1/.archive" >"$1/archive-identity.vkey" &&
            tb keygen admin >"$1/.admin" && head -n 1 "$1/.admin" >"$1/admin.skey" &&
            sed -n 2p "$1/.admin" >"$1/admin.vkey" && rm -f "$1/.archive" "$1/.admin") &&
        tb pair add --type ADMIN --tenant '*' --vkey "$1/admin.vkey" --file "$1/pairings.yaml" >/dev/null
}

fill_tenant() {
    seq 1 300 | sed "s/^/$1 record /" | client append --tenant "$1" >"$T/$1.idx" &&
        [ "$(tail -n 1 "$T/$1.idx")" = 299 ] && [ "$(wc -l <"$T/$1.idx")" -eq 300 ]
}
# The 300 entries of fill_tenant (and the one entry of a writer paired at run time, if any).
reads_back() {
    [ "$(client read --tenant "$1" --since 299 --max 1 | cut -f2)" = "$1 record 300" ] &&
        [ "$(client read --tenant "$1" --since 0 | wc -l)" -eq $((300 + $(cat "$T/$1.extra" 2>/dev/null || echo 0))) ]
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
# The size of $1's latest checkpoint (signed, checked as every client call is).
size_of() { client checkpoint --tenant "$1" | sed -n 2p; }
# An unsigned append is refused with the refusal's words and changes nothing.
unsigned_append_refused() {
    before=$(size_of "$1") || return 1
    if echo "unsigned entry" | unsigned append --tenant "$1" >"$T/unsigned.out" 2>"$T/unsigned.err"; then
        echo "an unsigned append was acknowledged: $(cat "$T/unsigned.out")" >&2
        return 1
    fi
    grep -q "the box refused: unsigned: this archive answers only requests signed by a paired key" "$T/unsigned.err" ||
        { cat "$T/unsigned.err" >&2; return 1; }
    [ ! -s "$T/unsigned.out" ] && [ "$(size_of "$1")" = "$before" ]
}
# A read signed by a key the archive never paired is refused (Unpaired) and returns nothing.
unpaired_read_refused() {
    before=$(size_of "$1") || return 1
    if stranger read --tenant "$1" --since 0 >"$T/stranger.out" 2>"$T/stranger.err"; then
        echo "an unpaired key read $1: $(head -n 2 "$T/stranger.out")" >&2
        return 1
    fi
    grep -q "the box refused: the signing key is not paired with this archive for this tenant" "$T/stranger.err" ||
        { cat "$T/stranger.err" >&2; return 1; }
    [ ! -s "$T/stranger.out" ] && [ "$(size_of "$1")" = "$before" ]
}
# ... and so is its append.
unpaired_append_refused() {
    before=$(size_of "$1") || return 1
    ! echo "stranger entry" | stranger append --tenant "$1" >/dev/null 2>"$T/stranger.err" &&
        grep -q "not paired with this archive" "$T/stranger.err" && [ "$(size_of "$1")" = "$before" ]
}

# Archive-wide operations (docs/access.md): `pair add|remove --connect` and `client audit
# export`, which the wire routes to audit (Op::PairChange, Op::AuditObject).
paired_at_run_time() {
    tb keygen writer >"$T/writer.keys" && head -n 1 "$T/writer.keys" >"$T/writer.skey" &&
        sed -n 2p "$T/writer.keys" >"$T/writer.vkey" || return 1
    w() {
        "$BIN/totebox" client --connect "$ADDR" --state "$T/client-state" \
            --skey "$T/writer.skey" --archive "$KEYS/archive-identity.vkey" "$@"
    }
    ! echo "before pairing" | w append --tenant "$1" >/dev/null 2>&1 || { echo "unpaired writer appended" >&2; return 1; }
    tb pair add --type INPUT --tenant "$1" --vkey "$T/writer.vkey" --connect "$ADDR" \
        --skey "$KEYS/admin.skey" --archive "$KEYS/archive-identity.vkey" >/dev/null || return 1
    echo "paired writer" | w append --tenant "$1" >/dev/null || { echo "paired writer refused" >&2; return 1; }
    wv=$(cat "$T/writer.vkey")
    admin_list() {
        tb pair list --connect "$ADDR" --skey "$KEYS/admin.skey" --archive "$KEYS/archive-identity.vkey"
    }
    admin_list | grep -q "^INPUT	$1	.*	$wv\$" || { echo "pair list --connect does not show the writer" >&2; return 1; }
    echo 1 >"$T/$1.extra" # one entry more than the 300 of fill_tenant (kept, below)
    tb pair remove --vkey "$T/writer.vkey" --connect "$ADDR" \
        --skey "$KEYS/admin.skey" --archive "$KEYS/archive-identity.vkey" >/dev/null || return 1
    ! echo "after unpairing" | w append --tenant "$1" >/dev/null 2>"$T/writer.err" &&
        grep -q "not paired" "$T/writer.err" && ! admin_list | grep -q "$wv" &&
        admin_list | grep -q "^# 2 change(s) applied"
}
audit_export_verifies() {
    rm -rf "${T:?}/audit-export"
    client audit export "$T/audit-export" --vkey "$KEYS/audit.vkey" >/dev/null &&
        tb log verify "$T/audit-export" --vkey "$KEYS/audit.vkey" >/dev/null &&
        ! stranger audit export "$T/audit-stranger" --vkey "$KEYS/audit.vkey" >/dev/null 2>&1
}
# The archive proves the identity it was provisioned with, over a fresh challenge, to anyone.
identity_proved() {
    [ "$(tb client --connect "$ADDR" identity --expect "$KEYS/archive-identity.vkey")" = \
        "archive $(cat "$KEYS/archive-identity.vkey")" ] &&
        ! tb client --connect "$ADDR" identity --expect "$KEYS/admin.vkey" >/dev/null 2>&1
}
# The archive-wide operations, which the wire hands to audit: its identity, pairing changes at
# run time and the audit log's export.
archive_wide_script() {
    check "client identity: the archive proves its provisioned identity (unsigned)" identity_proved
    check "pair add --connect pairs an INPUT key at run time, pair list --connect shows it, pair remove --connect unpairs it" \
        paired_at_run_time "$(echo $TENANTS | awk '{ print $NF }')" # the last: qemu-e2e loads the first
    check "client audit export (ADMIN for *) verifies with audit.vkey; an unpaired key's is refused" \
        audit_export_verifies
}
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
    first=$(echo $TENANTS | cut -d' ' -f1)
    check "$first: an unsigned append is refused (unsigned) and changes nothing" unsigned_append_refused "$first"
    check "$first: a read by an unpaired key is refused (not paired) and returns nothing" unpaired_read_refused "$first"
    check "$first: an append by an unpaired key is refused and changes nothing" unpaired_append_refused "$first"
    check "garbage on the socket is answered" garbage_answered
    check "an unknown tenant is refused" unknown_tenant_refused
    check "the wire still serves after malformed input" still_serving
    archive_wide_script
}

# The 300 entries of fill_tenant, and the one a writer paired at run time added, if any.
kept() {
    n=$((300 + $(cat "$T/$1.extra" 2>/dev/null || echo 0)))
    [ "$(client read --tenant "$1" --since 0 | wc -l)" -eq "$n" ] &&
        [ "$(echo more | client append --tenant "$1")" = "$n" ]
}

# After a restart on the same disk: everything is there and appends continue.
restart_script() {
    for t in $TENANTS; do
        check "$t: every entry kept across the restart, the next index follows" kept "$t"
    done
}

#!/usr/bin/env bash
# cvmm --vsock-backend user errors: each bad option string or unusable
# socket ends with one error line naming the problem and a non-zero exit,
# leaving no socket file behind; a uds_path or socket another back-end
# listens on is refused; socket files of a killed back-end are taken over;
# SIGINT stops a running back-end with exit 0 and removes both sockets; a
# low soft open-file limit is raised to the hard limit. No guest needed.
set -u
. "$(dirname "$0")/lib/common.sh"
it_setup vsockcli
tmp=$IT_TMP
fails=0

BACKEND_FLAG=--vsock-backend
. "$(dirname "$0")/lib/backend_cli.sh"

sock=$tmp/vu.sock
uds=$tmp/vm.vsock
expect_error "cid=3,socket=$sock,uds_path=$uds,bogus=1" "bogus"
expect_error "socket=$sock,uds_path=$uds" "cid="
expect_error "cid=2,socket=$sock,uds_path=$uds" "cid=2"
expect_error "cid=4294967295,socket=$sock,uds_path=$uds" "cid=4294967295"
expect_error "cid=x,socket=$sock,uds_path=$uds" "cid"
expect_error "cid=3,uds_path=$uds" "socket="
expect_error "cid=3,socket=$sock" "uds_path="
expect_error "cid=3,socket=$sock,uds_path=$sock" "different"
expect_error "cid=3,socket=$sock,uds_path=$tmp/no/such/dir/vm.vsock" "no/such/dir"
expect_error "cid=3,socket=$sock,uds_path=$tmp/$(printf 'x%.0s' $(seq 100))" "too long"
expect_error "cid=3,socket=$tmp/no/such/dir/vu.sock,uds_path=$uds" "no/such/dir"
for f in "$sock" "$uds"; do
    [ ! -e "$f" ] || { echo "FAIL: a failed start left $f behind"; fails=$((fails + 1)); }
done

# Socket files left by a killed back-end are taken over.
"$CVMM" --vsock-backend "cid=3,socket=$sock,uds_path=$uds" 2>/dev/null &
be=$!; it_track "$be"
for _ in $(seq 100); do [ -S "$sock" ] && [ -S "$uds" ] && break; sleep 0.1; done
kill -KILL "$be"; wait "$be" 2>/dev/null
[ -S "$uds" ] || { echo "FAIL: no stale socket file after SIGKILL"; exit 1; }
timeout 60 "$CVMM" -v --vsock-backend "cid=3,socket=$sock,uds_path=$uds" 2>"$tmp/be.log" &
be=$!; it_track "$be"
for _ in $(seq 100); do grep -q "vsock-backend: guest cid" "$tmp/be.log" && break; sleep 0.1; done
if [ -S "$sock" ] && [ -S "$uds" ] && kill -0 "$be" 2>/dev/null; then
    echo "ok: socket files of a killed back-end are replaced"
else
    echo "FAIL: back-end did not start over a stale socket file: $(cat "$tmp/be.log")"; exit 1
fi

# Both sockets are taken while it runs.
expect_error "cid=4,socket=$tmp/other.sock,uds_path=$uds" "another process"
expect_error "cid=4,socket=$sock,uds_path=$tmp/other.vsock" "vu.sock"
[ ! -e "$tmp/other.sock" ] && [ ! -e "$tmp/other.vsock" ] ||
    { echo "FAIL: a refused start left a socket file behind"; fails=$((fails + 1)); }

kill -INT "$be"; wait "$be"; rc=$?
if [ "$rc" = 0 ] && [ ! -e "$sock" ] && [ ! -e "$uds" ]; then
    echo "ok: SIGINT: exit 0, both sockets removed"
else
    echo "FAIL: SIGINT: rc=$rc, left: $(ls "$tmp")"; fails=$((fails + 1))
fi
# Started with a low soft open-file limit, it raises it to the hard limit
# (host connections are fds).
( ulimit -Sn 256; exec "$CVMM" -v --vsock-backend "cid=3,socket=$sock,uds_path=$uds" ) 2>"$tmp/be2.log" &
be=$!; pids+=("$be")
for _ in $(seq 100); do grep -q "vsock-backend: guest cid" "$tmp/be2.log" && break; sleep 0.1; done
nofile=$(awk '/^Max open files/ { print $4, $5 }' "/proc/$be/limits" 2>/dev/null)
read -r soft hard <<<"$nofile"
if [ -n "$soft" ] && [ "$soft" = "$hard" ] && [ "$soft" != 256 ]; then
    echo "ok: open-file limit raised from 256 to the hard limit ($hard)"
else
    echo "FAIL: open-file limit (soft hard): '$nofile', expected soft = hard > 256"; fails=$((fails + 1))
fi
kill -INT "$be"; wait "$be"

[ "$fails" = 0 ] && echo "PASS" || { echo "FAIL: $fails checks"; exit 1; }

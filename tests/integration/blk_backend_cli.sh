#!/usr/bin/env bash
# cvmm --block-backend user errors: each bad option string, missing image or
# unusable socket ends with one error line that names the problem and a
# non-zero exit; an image or socket in use is refused; SIGHUP does not stop
# the back-end; SIGINT stops it with exit 0 and removes its socket.
set -u
. "$(dirname "$0")/lib/common.sh"
it_setup blkcli
tmp=$IT_TMP
fails=0
img=$tmp/disk.img
truncate -s 16M "$img"

BACKEND_FLAG=--block-backend
. "$(dirname "$0")/lib/backend_cli.sh"

sock=$tmp/blk.sock
expect_error "path=$img,socket=$sock,bogus=1" "bogus"
expect_error "socket=$sock" "path="
expect_error "path=$img" "socket="
expect_error "path=$tmp/missing.img,socket=$sock" "missing.img"
expect_error "path=$img,socket=$tmp/no/such/dir/blk.sock" "no/such/dir"
expect_error "path=$img,socket=$tmp/$(printf 'x%.0s' $(seq 120)).sock" "sock"
expect_error "path=$img,socket=$sock,num_queues=0" "num_queues"
expect_error "path=$img,socket=$sock,queue_size=1000" "queue_size"
expect_error "path=$img,socket=$sock,readonly=maybe" "readonly"
expect_error "path=$tmp,socket=$sock" "$tmp"
[ ! -e "$sock" ] || { echo "FAIL: a failed start left $sock behind"; fails=$((fails + 1)); }

# A running back-end: the image and the socket are taken.
timeout 60 "$CVMM" --block-backend "path=$img,socket=$sock" 2>"$tmp/be.log" &
be=$!; it_track "$be"
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done
[ -S "$sock" ] || { echo "FAIL: back-end did not create $sock"; exit 1; }
expect_error "path=$img,socket=$tmp/other.sock" "in use"
expect_error "path=$img,socket=$tmp/other.sock,readonly=on" "in use"
cp "$img" "$tmp/copy.img"
expect_error "path=$tmp/copy.img,socket=$sock" "$sock"

kill -HUP "$be"; sleep 0.5
if kill -0 "$be" 2>/dev/null; then echo "ok: SIGHUP does not stop the back-end"
else echo "FAIL: SIGHUP stopped the back-end"; fails=$((fails + 1)); fi
kill -INT "$be"; wait "$be"; rc=$?
if [ $rc -eq 0 ] && [ ! -e "$sock" ]; then echo "ok: SIGINT: exit 0, socket removed"
else echo "FAIL: SIGINT: rc=$rc, socket $( [ -e "$sock" ] && echo left || echo removed)"; fails=$((fails + 1)); fi
[ -s "$tmp/be.log" ] && echo "note: back-end stderr: $(cat "$tmp/be.log")"

[ $fails -eq 0 ] || { echo "$fails check(s) failed"; exit 1; }
echo PASS

#!/usr/bin/env bash
# cvmm --vsock-backend against a real front-end: QEMU (TCG) boots Debian's
# kernel with vhost-user-vsock-pci; host programs speak hybrid vsock to the
# back-end. Checks: host -> guest and guest -> host move 16 MiB each with a
# matching checksum; 32 concurrent connections each way exchange a message;
# host clients that send garbage, an over-long line or nothing are closed
# and the back-end keeps serving; the back-end's fd count is the same
# before and after 1,000 connections; a second front-end (with MSI-X where
# the first used INTx) is served by the same process; SIGTERM exits 0 and
# removes both sockets.
set -u
. "$(dirname "$0")/lib/vhost_vsock.sh"
vv_setup

BYTES=$((16 << 20))
CONNS=1000
vv_backend

# 1. hostile host clients, before any front-end: closed, not answered
out=$(timeout 10 "$VV_TOOL" garbage "$VV_UDS" $'HELLO THERE\n') || it_fail "garbage line: $out"
[ "$(vv_field "$out" after)" -lt 2000 ] || it_fail "garbage line closed only after $(vv_field "$out" after) ms"
out=$(timeout 10 "$VV_TOOL" garbage "$VV_UDS" "$(head -c 200 /dev/zero | tr '\0' 7)") ||
    it_fail "over-long line: $out"
[ "$(vv_field "$out" after)" -lt 2000 ] || it_fail "over-long line closed only after $(vv_field "$out" after) ms"
out=$(timeout 10 "$VV_TOOL" garbage "$VV_UDS" $'CONNECT 12x\n') || it_fail "bad port: $out"
out=$(timeout 15 "$VV_TOOL" garbage "$VV_UDS" -) || it_fail "silent client: $out"
echo "ok: garbage, over-long and silent host clients closed (silent after $(vv_field "$out" after) ms)"

# 2. the guest: servers on 1234 (recv), 1235 (echo 32), 1236 (echo $CONNS),
#    then clients to host ports 5000 (send) and 5001 (32 at once)
vv_host_bg "$VV_TMP/g2h.out" recv "unix:${VV_UDS}_5000"
G2H_PID=$VV_HOST_PID
vv_host_bg "$VV_TMP/echo.out" echo "unix:${VV_UDS}_5001" 32
ECHO_PID=$VV_HOST_PID
vv_qemu_bg test "$VV_TMP/guest.log" "cvmm_vsock_bytes=$BYTES cvmm_vsock_conns=$CONNS"

# host -> guest, 16 MiB (the tool retries until the guest listens)
h2g=$(timeout 300 "$VV_TOOL" send "hybrid:$VV_UDS:1234" "$BYTES" 11) || it_fail "host -> guest send: $h2g"
echo "host: $h2g"

# 32 concurrent host connections
m32=$(timeout 120 "$VV_TOOL" multi "hybrid:$VV_UDS:1235" 32 32) || it_fail "32 concurrent: $m32"
echo "host: $m32"

# a garbage client while a guest is attached
out=$(timeout 10 "$VV_TOOL" garbage "$VV_UDS" $'GET / HTTP/1.0\n') || it_fail "garbage with a guest: $out"

# fd count stays flat over $CONNS connections, 50 at a time
sleep 1
fd_before=$(ls /proc/"$VV_BACKEND_PID"/fd | wc -l)
mN=$(timeout 300 "$VV_TOOL" multi "hybrid:$VV_UDS:1236" "$CONNS" 50) || it_fail "$CONNS connections: $mN"
echo "host: $mN"
fd_after=$fd_before
for _ in $(seq 50); do
    fd_after=$(ls /proc/"$VV_BACKEND_PID"/fd | wc -l)
    [ "$fd_after" -le "$fd_before" ] && break
    sleep 0.1
done
[ "$fd_after" -le "$fd_before" ] || it_fail "back-end fds: $fd_before before $CONNS connections, $fd_after after"
echo "ok: $CONNS connections, back-end fds $fd_before before and $fd_after after"

wait "$VV_QEMU_PID" || it_fail "qemu exited with $?"
grep -aq "CVMM-VSOCK: finished" "$VV_TMP/guest.log" || it_fail "guest did not finish"
wait "$G2H_PID" || it_fail "host receiver failed"
wait "$ECHO_PID" || it_fail "host echo server failed"

# checksums: host -> guest
g=$(vv_guest_line "$VV_TMP/guest.log" h2g)
[ "$(vv_field "$g" bytes)" = "$BYTES" ] && [ "$(vv_field "$g" sum)" = "$(vv_field "$h2g" sum)" ] ||
    it_fail "host -> guest: host sent '$h2g', guest got '$g'"
echo "ok: host -> guest $BYTES bytes, checksum $(vv_field "$g" sum) ($(vv_field "$g" ms) ms)"
# guest -> host
g=$(vv_guest_line "$VV_TMP/guest.log" g2h)
h=$(grep RECV "$VV_TMP/g2h.out")
[ "$(vv_field "$h" bytes)" = "$BYTES" ] && [ "$(vv_field "$g" sum)" = "$(vv_field "$h" sum)" ] ||
    it_fail "guest -> host: guest sent '$g', host got '$h'"
echo "ok: guest -> host $BYTES bytes, checksum $(vv_field "$h" sum) ($(vv_field "$h" ms) ms)"
# concurrency both ways
[ "$m32" = "MULTI ok=32 of 32" ] || it_fail "host side of 32 concurrent: $m32"
[ "$(vv_guest_line "$VV_TMP/guest.log" echo32)" = "ECHO served=32" ] || it_fail "guest echoed: $(vv_guest_line "$VV_TMP/guest.log" echo32)"
[ "$(vv_guest_line "$VV_TMP/guest.log" multi32)" = "MULTI ok=32 of 32" ] ||
    it_fail "guest -> host 32 concurrent: $(vv_guest_line "$VV_TMP/guest.log" multi32)"
grep -q "ECHO served=32" "$VV_TMP/echo.out" || it_fail "host echo server: $(cat "$VV_TMP/echo.out")"
[ "$(vv_guest_line "$VV_TMP/guest.log" echoN)" = "ECHO served=$CONNS" ] || it_fail "guest served: $(vv_guest_line "$VV_TMP/guest.log" echoN)"
echo "ok: 32 concurrent connections each way, each message echoed intact"

# 3. the same back-end serves the next front-end (after a reset), this
#    time with MSI-X interrupts
vv_host_bg "$VV_TMP/g2h2.out" recv "unix:${VV_UDS}_5000"
G2H_PID=$VV_HOST_PID
VV_DEV_OPTS= vv_qemu_bg bench "$VV_TMP/guest2.log" "cvmm_vsock_bytes=1048576"
h2g=$(timeout 300 "$VV_TOOL" send "hybrid:$VV_UDS:1234" 1048576 12) || it_fail "second guest: $h2g"
wait "$VV_QEMU_PID" || it_fail "qemu (second) exited with $?"
wait "$G2H_PID" || it_fail "host receiver (second) failed"
g=$(vv_guest_line "$VV_TMP/guest2.log" h2g)
[ "$(vv_field "$g" sum)" = "$(vv_field "$h2g" sum)" ] || it_fail "second guest: host sent '$h2g', guest got '$g'"
g=$(vv_guest_line "$VV_TMP/guest2.log" g2h)
h=$(grep RECV "$VV_TMP/g2h2.out")
[ "$(vv_field "$g" sum)" = "$(vv_field "$h" sum)" ] || it_fail "second guest: guest sent '$g', host got '$h'"
echo "ok: a second front-end (MSI-X this time) served by the same back-end process"

# 4. clean stop
kill -TERM "$VV_BACKEND_PID"
wait "$VV_BACKEND_PID"; rc=$?
[ "$rc" = 0 ] || it_fail "back-end exited with $rc on SIGTERM"
[ ! -e "$VV_SOCK" ] && [ ! -e "$VV_UDS" ] || it_fail "socket files left behind"
echo "ok: SIGTERM: exit 0, both sockets removed"
echo "PASS"

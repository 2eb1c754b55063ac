#!/bin/sh
# The host side of vsock_linux.sh (busybox sh; runs directly or in the
# nested machine, see tests/lib/linux-guest.sh): Debian's kernel under cvmm
# --vsock, driven by the same host tool (vsock-tool, hybrid-vsock addresses)
# and guest script (tests/integration/guest/vhost_vsock_guest.sh) as cvmm
# --vsock-backend in vhost_vsock_qemu.sh. One PASS/FAIL line per property.
fails=0
ok() { echo "PASS $1"; }
no() { echo "FAIL $1"; fails=$((fails + 1)); }
check() { name=$1; shift; if "$@"; then ok "$name"; else no "$name"; fi; }
field() { printf '%s\n' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
gline() { tr -d '\r' <"$1" | grep -a "^CVMM-VSOCK: $2 " | tail -n 1 | sed "s/^CVMM-VSOCK: $2 //"; }
# listening SER TAG [N]: until the guest says its TAG server listens (for
# the Nth time, default 1; boots and steps are slow nested, vsock-tool's own
# retries last only 60 s). Gives up after 600 s or when cvmm ($pid) has ended.
listening() {
    i=0
    while :; do
        n=$(grep -c "^CVMM-VSOCK: $2 LISTENING" "$1" 2>/dev/null)
        [ "${n:-0}" -ge "${3:-1}" ] && return 0
        kill -0 "$pid" 2>/dev/null || return 1
        i=$((i + 1)); [ $i -gt 3000 ] && return 1
        sleep 0.2
    done
}
# wait_for FILE REGEX SECS: until FILE has a line matching REGEX.
wait_for() {
    i=0
    while ! grep -q "$2" "$1" 2>/dev/null; do
        i=$((i + 1)); [ $i -gt $(($3 * 5)) ] && return 1
        sleep 0.2
    done
}
# stop PIDS...: ends what a failed step left waiting (cvmm, host tools).
stop() { kill "$@" 2>/dev/null; }
t=./vsock-tool
uds=$FILES/vm.vsock
bytes=16777216
conns=200
cid=5

# 1. PCI: 16 MiB each way (the host reader of guest -> host stops for a
#    second after the first MiB), 32 connections each way, $conns
#    connections in turn with cvmm's fds counted, a device reset and a
#    reboot with connections open, which cvmm turns into a second boot
#    (--on-reboot restart) on the same socket: new connections both ways,
#    then the guest powers off.
timeout 540 "$CVMM" -v --kernel "$GUEST_KERNEL" --initramfs initrd.gz --cpus boot=2 --memory size=512M \
    --vsock "cid=$cid,socket=$uds" --serial file=ser-pci --on-reboot restart \
    --cmdline "console=ttyS0 panic=-1 reboot=k quiet no_timer_check cvmm_vsock=full cvmm_vsock_bytes=$bytes cvmm_vsock_conns=$conns cvmm_vsock_phase=1" \
    </dev/null >/dev/null 2>err-pci &
pid=$!
listening ser-pci phase && timeout 60 $t send "hybrid:$uds:1199" 1 1 >/dev/null || stop $pid
timeout 900 $t recv "unix:${uds}_5000" 1000 >g2h.out 2>&1 &
g2h=$!
timeout 900 $t echo "unix:${uds}_5001" 32 >echo.out 2>&1 &
echo32=$!
listening ser-pci h2g
h2g=$(timeout 600 $t send "hybrid:$uds:1234" $bytes 11) || stop $pid $g2h $echo32
m32=$(timeout 300 $t multi "hybrid:$uds:1235" 32 32) || stop $pid $g2h $echo32
sleep 1
fd_before=$(ls /proc/$pid/fd | wc -l)
mN=$(timeout 600 $t multi "hybrid:$uds:1236" $conns 20) || stop $pid $g2h $echo32
wait $g2h $echo32
# Counted once the guest's own transfers (the 16 MiB g2h, 32 echoes) are
# over too: they may have started after fd_before was taken.
fd_after=$fd_before
for i in $(seq 50); do
    fd_after=$(ls /proc/$pid/fd | wc -l)
    [ "$fd_after" -le "$fd_before" ] && break
    sleep 0.2
done
# the reset: four held connections end, new ones work
listening ser-pci held1237
timeout 300 $t hold "hybrid:$uds:1237" 4 >hold1.out 2>&1 &
hold1=$!
wait_for hold1.out '^HELD 4' 120 && timeout 60 $t send "hybrid:$uds:1238" 1 1 >/dev/null || stop $pid $hold1
wait $hold1
listening ser-pci after_reset
m8=$(timeout 120 $t multi "hybrid:$uds:1239" 8 8) || stop $pid
# the reboot: four held connections end, the second boot is told so
listening ser-pci held1240
timeout 300 $t hold "hybrid:$uds:1240" 4 >hold2.out 2>&1 &
hold2=$!
wait_for hold2.out '^HELD 4' 120 && timeout 60 $t send "hybrid:$uds:1241" 1 1 >/dev/null || stop $pid $hold2
wait $hold2
timeout 400 $t echo "unix:${uds}_5002" 4 >echo2.out 2>&1 &
echo2=$!
listening ser-pci phase 2 && timeout 60 $t send "hybrid:$uds:1199" 2 1 >/dev/null || stop $pid $echo2
listening ser-pci after_reboot
m8b=$(timeout 120 $t multi "hybrid:$uds:1242" 8 8) || stop $pid $echo2
wait $pid; rc=$?
wait $echo2
tr -d '\r' <ser-pci | grep -a '^CVMM-VSOCK:' | sed 's/^/    pci: /'
[ $rc -eq 0 ] || tail -n 20 ser-pci err-pci | sed 's/^/    pci: /'
echo "    host: send $h2g"
echo "    host: $(cat g2h.out)"
echo "    host: $m32; $mN; cvmm fds $fd_before before, $fd_after after"
echo "    host: $(cat hold1.out | tr '\n' ' '); after reset $m8"
echo "    host: $(cat hold2.out | tr '\n' ' '); after the reboot $m8b, $(grep ECHO echo2.out)"

check "pci: cvmm exited 0 when the guest powered off after its reboot" [ $rc -eq 0 ]
g=$(gline ser-pci h2g)
check "pci: host -> guest 16 MiB, checksums match" \
    [ "$(field "$g" bytes)" = $bytes -a -n "$(field "$h2g" sum)" -a "$(field "$g" sum)" = "$(field "$h2g" sum)" ]
g=$(gline ser-pci g2h)
h=$(grep RECV g2h.out)
check "pci: guest -> host 16 MiB, checksums match" \
    [ "$(field "$h" bytes)" = $bytes -a -n "$(field "$g" sum)" -a "$(field "$g" sum)" = "$(field "$h" sum)" ]
check "pci: ... with the host reader stopped for a second" [ "$(field "$h" paused)" = 1000 ]
check "pci: 32 concurrent host -> guest connections echoed" \
    [ "$m32" = "MULTI ok=32 of 32" -a "$(gline ser-pci echo32)" = "ECHO served=32" ]
check "pci: 32 concurrent guest -> host connections echoed" \
    [ "$(gline ser-pci multi32)" = "MULTI ok=32 of 32" -a "$(cat echo.out | grep ECHO)" = "ECHO served=32" ]
check "pci: $conns connections, cvmm's fd count back to $fd_before" \
    [ "$mN" = "MULTI ok=$conns of $conns" -a "$fd_after" -le "$fd_before" ]
check "pci: device reset: the guest rebound its driver" grep -aq '^CVMM-VSOCK: rebound virtio' ser-pci
check "pci: device reset: the host saw its 4 connections closed" grep -q '^CLOSED 4 of 4' hold1.out
check "pci: device reset: 8 new connections after it" \
    [ "$m8" = "MULTI ok=8 of 8" -a "$(gline ser-pci after_reset)" = "ECHO served=8" ]
check "pci: reboot: the host saw its 4 connections closed" \
    eval 'grep -aq "^CVMM-VSOCK: rebooting" ser-pci && grep -q "^CLOSED 4 of 4" hold2.out'
check "pci: reboot: cvmm booted the guest again (--on-reboot restart), both vCPUs up" \
    eval 'grep -q "restarting the guest (--on-reboot restart)" err-pci &&
          [ "$(tr -d "\r" <ser-pci | grep -ac "^CVMM-INIT: start .* cpus=2")" -eq 2 ]'
check "pci: after the reboot, 8 host -> guest connections on the same socket echoed" \
    [ "$m8b" = "MULTI ok=8 of 8" -a "$(gline ser-pci after_reboot)" = "ECHO served=8" ]
check "pci: after the reboot, 4 guest -> host connections echoed" \
    [ "$(gline ser-pci g2h_after_reboot)" = "MULTI ok=4 of 4" -a "$(grep ECHO echo2.out)" = "ECHO served=4" ]
check "pci: the socket is gone with cvmm" [ ! -e "$uds" ]

# 2. MMIO, a new cvmm on the same socket path: connections work again.
rm -f g2h.out
timeout 600 "$CVMM" --kernel "$GUEST_KERNEL" --initramfs initrd.gz --cpus boot=2 --memory size=512M \
    --transport mmio --vsock "cid=$cid,socket=$uds" --serial file=ser-mmio \
    --cmdline "console=ttyS0 panic=-1 reboot=k quiet no_timer_check cvmm_vsock=bench cvmm_vsock_bytes=1048576" \
    </dev/null >/dev/null 2>err-mmio &
pid=$!
timeout 600 $t recv "unix:${uds}_5000" >g2h.out 2>&1 &
g2h=$!
listening ser-mmio h2g
h2g=$(timeout 300 $t send "hybrid:$uds:1234" 1048576 12) || stop $pid $g2h
wait $pid; rc=$?
wait $g2h
tr -d '\r' <ser-mmio | grep -a '^CVMM-VSOCK:' | sed 's/^/    mmio: /'
[ $rc -eq 0 ] || tail -n 20 ser-mmio err-mmio | sed 's/^/    mmio: /'
check "mmio: cvmm exited 0" [ $rc -eq 0 ]
g=$(gline ser-mmio h2g)
check "mmio: host -> guest 1 MiB on the same socket path, checksums match" \
    [ -n "$(field "$h2g" sum)" -a "$(field "$g" sum)" = "$(field "$h2g" sum)" ]
g=$(gline ser-mmio g2h)
h=$(grep RECV g2h.out)
check "mmio: guest -> host 1 MiB, checksums match" [ -n "$(field "$g" sum)" -a "$(field "$g" sum)" = "$(field "$h" sum)" ]

# 3. The same guest with its vsock device served through cvmm's vhost-user
#    front-end by cvmm --vsock-backend, which owns the hybrid socket: the
#    host tool cannot tell the difference. After 1 MiB each way, the
#    back-end is killed (SIGKILL) with a host connection open and started
#    again: the host sees that connection closed, cvmm reconnects, and the
#    guest's listener (kept through TRANSPORT_RESET) echoes 4 new ones.
rm -f g2h.out "$uds"
# backend N: starts cvmm --vsock-backend and waits for its Nth ready line.
backend() {
    "$CVMM" -v --vsock-backend "cid=$cid,socket=$FILES/be.sock,uds_path=$uds" 2>>err-be &
    be=$!
    i=0
    while :; do
        # No err-be yet (the back-end's shell has not opened it) counts as
        # none: an empty count made the test fail ("bad number") and so
        # ended the wait before the back-end was ready.
        n=$(grep -c "host connections on" err-be 2>/dev/null)
        [ "${n:-0}" -ge "$1" ] && return 0
        i=$((i + 1)); [ $i -gt 150 ] && return 1
        sleep 0.2
    done
}
backend 1 || no "vhost-user: cvmm --vsock-backend did not start"
timeout 600 "$CVMM" -v --kernel "$GUEST_KERNEL" --initramfs initrd.gz --cpus boot=2 --memory size=512M \
    --vsock "cid=$cid,vhost_user=on,socket=$FILES/be.sock" --serial file=ser-vu \
    --cmdline "console=ttyS0 panic=-1 reboot=k quiet no_timer_check cvmm_vsock=bench cvmm_vsock_bytes=1048576 cvmm_vsock_cps=5" \
    </dev/null >/dev/null 2>err-vu &
pid=$!
timeout 600 $t recv "unix:${uds}_5000" >g2h.out 2>&1 &
g2h=$!
listening ser-vu h2g
h2g=$(timeout 300 $t send "hybrid:$uds:1234" 1048576 13) || stop $pid $g2h
wait $g2h
listening ser-vu cps
timeout 300 $t hold "hybrid:$uds:1236" 1 >hold-vu.out 2>&1 &
hold=$!
wait_for hold-vu.out '^HELD 1' 120 || stop $pid $hold
kill -KILL $be; wait $be
wait $hold
backend 2 || stop $pid
m4=$(timeout 180 $t multi "hybrid:$uds:1236" 4 4) || stop $pid
wait $pid; rc=$?
kill $be 2>/dev/null; wait $be; be_rc=$?
tr -d '\r' <ser-vu | grep -a '^CVMM-VSOCK:' | sed 's/^/    vhost-user: /'
echo "    host: $(tr '\n' ' ' <hold-vu.out); after the restart $m4"
[ $rc -eq 0 ] || tail -n 20 ser-vu err-vu err-be | sed 's/^/    vhost-user: /'
check "vhost-user: cvmm exited 0" [ $rc -eq 0 ]
check "vhost-user: the guest's driver ran on the back-end's rings" grep -q "front-end connected" err-be
g=$(gline ser-vu h2g)
check "vhost-user: host -> guest 1 MiB through cvmm --vsock-backend, checksums match" \
    [ -n "$(field "$h2g" sum)" -a "$(field "$g" sum)" = "$(field "$h2g" sum)" ]
g=$(gline ser-vu g2h)
h=$(grep RECV g2h.out)
check "vhost-user: guest -> host 1 MiB through cvmm --vsock-backend, checksums match" \
    [ -n "$(field "$g" sum)" -a "$(field "$g" sum)" = "$(field "$h" sum)" ]
check "vhost-user: back-end killed: the host saw its open connection closed" grep -q '^CLOSED 1 of 1' hold-vu.out
check "vhost-user: cvmm reconnected to the restarted back-end" grep -q "back-end reconnected" err-vu
check "vhost-user: after the restart, 4 new connections echoed by the guest's listener" \
    [ "$m4" = "MULTI ok=4 of 4" -a "$(gline ser-vu cps)" = "ECHO served=5" ]
check "vhost-user: the restarted back-end ended cleanly on SIGTERM" [ $be_rc -eq 0 ]
echo "vsock_linux: $fails failed"
[ $fails -eq 0 ]

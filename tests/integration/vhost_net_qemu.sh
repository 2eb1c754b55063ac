#!/usr/bin/env bash
# cvmm --net-backend against QEMU's vhost-user-net front-end: QEMU (TCG)
# boots Debian's kernel; its virtio_net driver (MRG_RXBUF, offloads) talks
# through the back-end to a tap in a network namespace. The guest pings the
# tap's address, sends 4 MiB over TCP to busybox nc in the namespace and
# fetches 4 MiB from busybox httpd there; both checksums must match. Once
# with one queue pair, once with two (num_queues=4, two guest CPUs).
set -u
. "$(dirname "$0")/lib/vhost_net.sh"
command -v qemu-system-x86_64 >/dev/null || { echo "SKIP: qemu-system-x86_64 is not installed"; exit 77; }
command -v busybox >/dev/null || { echo "SKIP: busybox is not installed"; exit 77; }
LINUX_DIR=${LINUX_DIR:-$BUILD/linux}
if ! timeout 300 "$IT_ROOT/images/linux/build.sh" "$LINUX_DIR" >/dev/null 2>"$BUILD/vhost_net_kernel.err"; then
    echo "SKIP: cannot get Debian's cloud kernel: $(tail -n 1 "$BUILD/vhost_net_kernel.err")"
    exit 77
fi
vn_setup vnetqemu
LINUX_DIR=$LINUX_DIR "$IT_ROOT/images/linux/mkinitrd.sh" "$VN_TMP/initrd.gz" \
    "$IT_ROOT/tests/integration/guest/vhost_net_guest.sh" || it_fail "mkinitrd"

# The host side, in the namespace: a web server (its file is served to
# every guest) and, per guest, a TCP sink.
mkdir -p "$VN_TMP/www"
head -c 4M /dev/urandom >"$VN_TMP/www/data"
want_recv=$(md5sum <"$VN_TMP/www/data" | cut -d' ' -f1)
ip netns exec "$VN_NS" timeout 300 busybox httpd -f -p 8080 -h "$VN_TMP/www" </dev/null >/dev/null 2>"$VN_TMP/httpd.err" &
it_track $!

# guest NAME QUEUE_PAIRS CPUS: boots a guest with that many queue pairs and
# checks what it reports.
guest() {
    local name=$1 pairs=$2 cpus=$3 log=$VN_TMP/guest-$1.log feat sent got recv sink
    # nc hands the connection to a sink that reads until the guest's EOF
    # (nc itself would stop at its own stdin's EOF).
    sink=$VN_TMP/sink-$name.sh
    printf '#!/bin/sh\nexec cat >"%s"\n' "$VN_TMP/received-$name" >"$sink"
    chmod +x "$sink"
    ip netns exec "$VN_NS" timeout 300 busybox nc -l -p 5000 -e "$sink" </dev/null >/dev/null 2>"$VN_TMP/nc.err" &
    it_track $!
    timeout 300 qemu-system-x86_64 -accel tcg -cpu max -m 512 -smp "$cpus" -nographic -no-reboot \
        -object memory-backend-memfd,id=mem,size=512M,share=on -numa node,memdev=mem \
        -chardev "socket,id=c1,path=$VN_SOCK" -netdev "vhost-user,id=n0,chardev=c1,queues=$pairs" \
        -device "virtio-net-pci,netdev=n0,vectors=0,mq=$([ "$pairs" -gt 1 ] && echo on || echo off),mac=$VN_GUEST_MAC" \
        -kernel "$LINUX_DIR/vmlinuz" -initrd "$VN_TMP/initrd.gz" \
        -append "console=ttyS0 panic=-1 reboot=k quiet no_timer_check cvmm_net=$VN_GUEST_IP,$VN_HOST_IP" \
        </dev/null >"$log" 2>&1 || it_fail "qemu ($name) exited with $?"
    grep -aq "CVMM-INIT: done" "$log" || it_fail "guest ($name) did not finish"

    line() { grep -a "CVMM-NET: $1" "$log" | tail -n 1 | tr -d '\r'; }
    grep -aq "CVMM-NET: mac $VN_GUEST_MAC" "$log" || it_fail "$name: guest has no eth0 with mac $VN_GUEST_MAC: $(line mac)"
    # The negotiated virtio features, one character per bit: the paths under
    # test are the ones Linux uses by default.
    feat=$(line features | sed -n 's/.*features //p')
    for b in 1:GUEST_CSUM 7:GUEST_TSO4 11:HOST_TSO4 15:MRG_RXBUF 32:VERSION_1; do
        [ "${feat:${b%%:*}:1}" = 1 ] || it_fail "$name: driver did not negotiate ${b#*:} (features $feat)"
    done
    echo "ok ($name): driver negotiated VERSION_1, MRG_RXBUF, checksum and TSO offloads"
    [ "$(line ping)" = "CVMM-NET: ping 3 packets received" ] || it_fail "$name: ping: $(line ping)"
    echo "ok ($name): guest pinged $VN_HOST_IP through the tap"

    sent=$(line 'send md5' | sed -n 's/.*md5=//p')
    [ "$(line 'send rc')" = "CVMM-NET: send rc=0" ] || it_fail "$name: guest nc: $(line 'send rc')"
    got=$(md5sum <"$VN_TMP/received-$name" | cut -d' ' -f1)
    [ -n "$sent" ] && [ "$got" = "$sent" ] ||
        it_fail "$name: host received $(stat -c %s "$VN_TMP/received-$name") bytes, md5 $got; guest sent $sent"
    echo "ok ($name): guest -> host TCP, 4 MiB, md5 $got"

    recv=$(line recv | sed -n 's/.*md5=//p')
    [ "$recv" = "$want_recv" ] || it_fail "$name: guest fetched md5 $recv, host served $want_recv"
    echo "ok ($name): host -> guest TCP, 4 MiB, md5 $recv"
}

# stop_backend: SIGTERM, exit 0, its tap gone before the next one starts.
stop_backend() {
    local rc i
    kill -0 "$VN_BACKEND_PID" || it_fail "back-end died"
    kill -TERM "$VN_BACKEND_PID"
    wait "$VN_BACKEND_PID"; rc=$?
    [ "$rc" = 0 ] || it_fail "back-end exited with $rc on SIGTERM"
    for i in $(seq 50); do vn_ns test -e "/sys/class/net/$VN_TAP" || break; sleep 0.1; done
}

vn_backend
guest single 1 1
stop_backend

# Two queue pairs, two guest CPUs: Linux turns both pairs on (QEMU runs the
# control queue), and its flows spread over them.
vn_backend num_queues=4
# Until a front-end enables pair 1's rings its tap queue is detached: the
# kernel would otherwise steer frames to a queue nobody reads.
n=$(vn_ns ls "/sys/class/net/$VN_TAP/queues" | grep -c '^rx-')
[ "$n" = 1 ] || it_fail "with no front-end yet, $n tap receive queues are attached (want 1)"
echo "ok (mq): before a front-end uses pair 1, only pair 0's tap queue is attached"
guest mq 2 2
stop_backend
grep -aq "pair 1: rx [1-9][0-9]* frames.*tx [1-9]" "$VN_TMP/backend.log" ||
    it_fail "the second queue pair carried no frames both ways"
echo "ok (mq): both queue pairs carried frames"
echo "PASS"

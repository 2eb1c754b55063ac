#!/usr/bin/env bash
# cvmm --net-backend against DPDK's virtio_user front-end (dpdk-testpmd, no
# VM, no hugepages), with the tap in a network namespace:
#  1. txonly: UDP frames addressed to the tap's IP/MAC go guest -> tap; the
#     tap counts them and the namespace's UDP stack receives them;
#  2. the same back-end serves a second front-end (rxonly): frames the
#     namespace sends (UDP, 64 B and 1400 B payloads) arrive at testpmd;
#  3. SIGTERM: exit 0, socket removed;
#  4. multiqueue: num_queues=4 (two pairs, a two-queue tap) driven by a
#     two-queue front-end; both TX queues deliver into the tap; mtu= is set
#     on the tap;
#  5. client=on: the front-end listens (virtio_user server=1), the back-end
#     connects to it.
set -u
. "$(dirname "$0")/lib/vhost_net.sh"
command -v dpdk-testpmd >/dev/null || { echo "SKIP: dpdk-testpmd is not installed (dpdk-dev)"; exit 77; }
[ "$(nproc)" -ge 2 ] || { echo "SKIP: testpmd needs two cores"; exit 77; }
vn_setup vnetdpdk
vn_backend

# testpmd MODE SECS LOG [EXTRA...]: runs the front-end for SECS seconds and
# lets it print its statistics (SIGINT). QUEUES (default 1) queue pairs.
testpmd() {
    local mode=$1 secs=$2 log=$3
    shift 3
    timeout -s INT -k 10 "$secs" dpdk-testpmd -l 0-1 --no-pci --no-huge -m 512 \
        --file-prefix="cvmm-vnet-$$" --single-file-segments \
        --vdev "net_virtio_user0,path=$VN_SOCK,queues=${QUEUES:-1},mac=$VN_GUEST_MAC${SERVER:+,server=1}" -- \
        --no-mlockall --forward-mode="$mode" --auto-start --stats-period 1 \
        --total-num-mbufs=8192 "$@" </dev/null >"$log" 2>&1
}

udp_noports() {
    vn_ns awk '/^Udp:/ { if (h) { print $3; exit } h = 1 }' /proc/net/snmp
}

# 1. guest -> tap
before=$(vn_tap_stat rx_packets)
noports_before=$(udp_noports)
testpmd txonly 6 "$VN_TMP/txonly.log" --eth-peer="0,$VN_HOST_MAC" --tx-ip="$VN_GUEST_IP,$VN_HOST_IP"
sent=$(vn_testpmd_stat "$VN_TMP/txonly.log" TX-packets)
[ -n "$sent" ] || it_fail "testpmd (txonly) printed no statistics"
got=$(( $(vn_tap_stat rx_packets) - before ))
noports=$(( $(udp_noports) - noports_before ))
echo "txonly: testpmd sent $sent, tap received $got, UDP stack saw $noports datagrams to closed ports"
[ "$sent" -gt 1000 ] || it_fail "testpmd sent only $sent frames"
# Frames still on the ring when testpmd stopped may be left: at most a queue's worth.
[ "$got" -le "$sent" ] && [ "$got" -ge $(( sent - 256 )) ] || it_fail "tap received $got of $sent frames"
[ "$noports" -ge $(( got * 9 / 10 )) ] || it_fail "only $noports of $got frames reached the UDP stack intact"
kill -0 "$VN_BACKEND_PID" || it_fail "back-end died"
echo "ok: guest -> tap"

# 2. tap -> guest, by a second front-end on the same back-end
vn_ns ip neigh replace "$VN_GUEST_IP" lladdr "$VN_GUEST_MAC" dev "$VN_TAP" nud permanent
testpmd rxonly 12 "$VN_TMP/rxonly.log" &
pmd=$!
it_track "$pmd"
for i in $(seq 100); do
    grep -q "Port 0: link state change event\|Press enter to exit\|Port statistics" "$VN_TMP/rxonly.log" 2>/dev/null && break
    sleep 0.1
done
sleep 1
# 300 UDP datagrams of 64 bytes and 300 of 1400, one write (one frame) each.
vn_ns bash -c 'exec 3>"/dev/udp/$1/9" || exit 1
    for len in 64 1400; do
        p=$(head -c "$len" /dev/zero | tr "\0" x)
        for i in $(seq 300); do printf %s "$p" >&3 2>/dev/null; done
    done' sh "$VN_GUEST_IP" || it_fail "cannot send UDP datagrams in the namespace"
wait "$pmd"
rx=$(vn_testpmd_stat "$VN_TMP/rxonly.log" RX-packets)
echo "rxonly: namespace sent 600 frames, testpmd received ${rx:-nothing}"
[ -n "$rx" ] || it_fail "testpmd (rxonly) printed no statistics"
[ "$rx" -ge 600 ] || it_fail "testpmd received $rx of 600 frames"
kill -0 "$VN_BACKEND_PID" || it_fail "back-end died"
echo "ok: tap -> guest (64 B and 1400 B payloads), second front-end served by the same back-end"

# 3. clean stop
kill -TERM "$VN_BACKEND_PID"
wait "$VN_BACKEND_PID"; rc=$?
[ "$rc" = 0 ] || it_fail "back-end exited with $rc on SIGTERM"
[ ! -e "$VN_SOCK" ] || it_fail "socket file left behind"
echo "ok: SIGTERM: exit 0, socket removed"

# 4. two queue pairs (and an MTU set on the tap)
vn_backend num_queues=4,mtu=9000
[ "$(vn_ns cat "/sys/class/net/$VN_TAP/mtu")" = 9000 ] || it_fail "tap mtu is $(vn_ns cat "/sys/class/net/$VN_TAP/mtu"), not 9000"
before=$(vn_tap_stat rx_packets)
QUEUES=2 testpmd txonly 5 "$VN_TMP/mq.log" --txq=2 --rxq=2 --txonly-multi-flow
sent=$(vn_testpmd_stat "$VN_TMP/mq.log" TX-packets)
got=$(( $(vn_tap_stat rx_packets) - before ))
q1=$(grep -A1 "Queue= 1 -> TX Port= 0/Queue= 1" "$VN_TMP/mq.log" | awk '/TX-packets:/ { for (i = 1; i < NF; i++) if ($i == "TX-packets:") print $(i + 1) }' | tail -n 1)
echo "multiqueue: testpmd sent $sent (queue 1: ${q1:-none}), tap received $got"
[ -n "$sent" ] && [ "$got" -le "$sent" ] && [ "$got" -ge $(( sent - 512 )) ] || it_fail "tap received $got of $sent frames"
[ "${q1:-0}" -gt 1000 ] || it_fail "the second queue pair carried ${q1:-no} frames"
echo "ok: two queue pairs"
kill -TERM "$VN_BACKEND_PID"
wait "$VN_BACKEND_PID" || it_fail "back-end exited with $? on SIGTERM"

# 5. client mode
for i in $(seq 100); do vn_ns test -e "/sys/class/net/$VN_TAP" || break; sleep 0.1; done
SERVER=1 testpmd txonly 6 "$VN_TMP/client.log" &
pmd=$!
it_track "$pmd"
for i in $(seq 100); do [ -S "$VN_SOCK" ] && break; sleep 0.1; done
[ -S "$VN_SOCK" ] || it_fail "testpmd (server=1) did not create $VN_SOCK"
ip netns exec "$VN_NS" "$CVMM" -v --net-backend "tap=$VN_TAP,socket=$VN_SOCK,client=on" >>"$VN_TMP/backend.log" 2>&1 &
VN_BACKEND_PID=$!
it_track "$VN_BACKEND_PID"
wait "$pmd"
sent=$(vn_testpmd_stat "$VN_TMP/client.log" TX-packets)
got=$(vn_tap_stat rx_packets)
echo "client mode: testpmd sent ${sent:-nothing}, tap received $got"
[ "${sent:-0}" -gt 1000 ] && [ "$got" -le "$sent" ] && [ "$got" -ge $(( sent - 256 )) ] || it_fail "tap received $got of ${sent:-no} frames"
kill -0 "$VN_BACKEND_PID" || it_fail "back-end (client=on) died when the front-end left"
echo "ok: client=on"
echo "PASS"

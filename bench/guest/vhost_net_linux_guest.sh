#!/bin/sh
# /test.sh of bench/vhost_net_linux.sh's initramfs: three NICs, told apart
# by their MACs: 52:54:00:80:00:02 (cvmm's in-process virtio-net on a tap,
# 10.80.0.2, host 10.80.0.1), 52:54:00:81:00:02 (cvmm's vhost-user
# front-end, served by `cvmm --net-backend` on a tap, 10.81.0.2, host
# 10.81.0.1) and 52:54:00:82:00:02 (the same front-end, served by DPDK's
# testpmd on a tap, 10.82.0.2, host 10.82.0.1). ROUNDS rounds, each loading
# the three in turn with /netload (bench/guest/netload.c) against `netload
# serve` on the host: a TCP stream guest -> host, one host -> guest, and
# one-byte request/response exchanges. Round r starts with the r-th NIC
# (cyclically), so none always runs first. One line per figure:
# "BENCH: ROUND WAY <netload's line>", WAY inproc, vu or dpdk.
# From the command line: bench.rounds=N bench.netmib=MIB bench.rr=COUNT.
arg() { sed -n "s/.*$1=\([0-9]*\).*/\1/p" /proc/cmdline; }
rounds=$(arg bench.rounds) netmib=$(arg bench.netmib) rr=$(arg bench.rr)
port=5679
# nic_of MAC: the interface with that MAC, once the driver has it.
nic_of() {
    i=0
    while [ $i -lt 200 ]; do
        for a in /sys/class/net/*/address; do
            [ "$(cat "$a")" = "$1" ] && { basename "$(dirname "$a")"; return 0; }
        done
        sleep 0.1
        i=$((i + 1))
    done
    return 1
}
for way in "inproc 52:54:00:80:00:02 10.80.0" "vu 52:54:00:81:00:02 10.81.0" "dpdk 52:54:00:82:00:02 10.82.0"; do
    set -- $way
    nic=$(nic_of "$2") || { echo "BENCH: no NIC with MAC $2 ($1)"; exit 1; }
    ip link set "$nic" up
    ip addr add "$3.2/24" dev "$nic"
    # The first packet waits for ARP; take that out of the figures.
    ping -c 1 -W 10 "$3.1" >/dev/null 2>&1 || echo "BENCH: $1 ($nic): no answer from $3.1"
    echo "BENCH: $1 is $nic"
done
load() {   # ROUND WAY HOST
    echo "BENCH: $1 $2 $(/netload "$3" $port send "$netmib")"
    echo "BENCH: $1 $2 $(/netload "$3" $port recv "$netmib")"
    echo "BENCH: $1 $2 $(/netload "$3" $port rr "$rr")"
}
r=1
while [ "$r" -le "$rounds" ]; do
    case $((r % 3)) in
        1) order="inproc vu dpdk";;
        2) order="vu dpdk inproc";;
        *) order="dpdk inproc vu";;
    esac
    for way in $order; do
        case $way in
            inproc) load $r inproc 10.80.0.1;;
            vu) load $r vu 10.81.0.1;;
            dpdk) load $r dpdk 10.82.0.1;;
        esac
    done
    r=$((r + 1))
done

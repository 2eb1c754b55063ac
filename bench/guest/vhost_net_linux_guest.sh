#!/bin/sh
# /test.sh of bench/vhost_net_linux.sh's initramfs: two NICs, told apart by
# their MACs: 52:54:00:80:00:02 (cvmm's in-process virtio-net on a tap,
# 10.80.0.2, host 10.80.0.1) and 52:54:00:81:00:02 (cvmm's vhost-user
# front-end, served by `cvmm --net-backend` on a tap, 10.81.0.2, host
# 10.81.0.1). ROUNDS rounds, each loading the two in turn with /netload
# (bench/guest/netload.c) against `netload serve` on the host: a TCP stream
# guest -> host, one host -> guest, and one-byte request/response exchanges.
# Odd rounds start with the in-process NIC, even rounds with the vhost-user
# one, so neither always runs first. One line per figure:
# "BENCH: ROUND WAY <netload's line>", WAY inproc or vu.
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
for way in "inproc 52:54:00:80:00:02 10.80.0" "vu 52:54:00:81:00:02 10.81.0"; do
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
    if [ $((r % 2)) -eq 1 ]; then
        load $r inproc 10.80.0.1
        load $r vu 10.81.0.1
    else
        load $r vu 10.81.0.1
        load $r inproc 10.80.0.1
    fi
    r=$((r + 1))
done

#!/bin/sh
# The host side of bench/vhost_net_linux.sh (busybox sh; runs directly or in
# the nested machine, see tests/lib/linux-guest.sh): one guest under cvmm
# (virtio-pci, one vCPU) with two NICs: one in-process on the tap bench0
# (10.80.0.1/24 this side), one through cvmm's vhost-user front-end to `cvmm
# --net-backend` on the tap vubench0 (10.81.0.1/24 this side), both with the
# default queue pair and ring size. `netload serve` answers on both taps;
# the guest (bench/guest/vhost_net_linux_guest.sh) loads the two NICs in
# turn, round after round, and this side prints every round's figures, the
# medians and the ratios of the vhost-user medians to the in-process ones.
# Env: ROUNDS, NETMIB (MiB per stream), RR (request/response exchanges).
ROUNDS=${ROUNDS:-3} NETMIB=${NETMIB:-64} RR=${RR:-1000}
limit=$((ROUNDS * 2 * (4 * NETMIB + RR / 10 + 60) + 600))
wait_sock() { i=0; while [ ! -S "$1" ] && [ $i -lt 150 ]; do sleep 0.2; i=$((i + 1)); done; [ -S "$1" ]; }
./netload serve 5679 2>server.log &
server=$!
"$CVMM" --net-backend "tap=vubench0,socket=net.sock,ip=10.81.0.1,mask=255.255.255.0" 2>be.log &
be=$!
wait_sock net.sock || { echo "vhost_net_linux: cvmm --net-backend did not start"; cat be.log; kill $server; exit 1; }
timeout $limit "$CVMM" -v --kernel "$GUEST_KERNEL" --initramfs initrd.gz --cpus boot=1 \
    --memory size=512M --transport pci --serial tty \
    --net "tap=bench0,mac=52:54:00:80:00:02,ip=10.80.0.1,mask=255.255.255.0,id=inproc" \
    --net "vhost_user=on,socket=net.sock,mac=52:54:00:81:00:02,id=vu" \
    --cmdline "console=ttyS0 panic=-1 reboot=k bench.rounds=$ROUNDS bench.netmib=$NETMIB bench.rr=$RR" \
    </dev/null 2>cvmm.log | tr -d '\r' >guest.out
rc=$?
kill $be $server 2>/dev/null
wait $be $server 2>/dev/null
# "round way figure value" lines; the request/response mean time per
# exchange becomes a rate (exchanges per second).
sed -n 's/^BENCH: \([0-9]*\) \([a-z]*\) BENCH: net-\([a-z]*\) [a-z]*=\([0-9.]*\)$/\1 \2 \3 \4/p' guest.out |
    awk '$3 == "tx" { $3 = "tx-mibps" } $3 == "rx" { $3 = "rx-mibps" }
         $3 == "rr" { $3 = "rr-per-s"; $4 = $4 > 0 ? sprintf("%.1f", 1e6 / $4) : "" }
         $4 != "" { print }' >figures
# Which device is which, as cvmm and the guest saw them.
sed -n 's/^cvmm.*: \(\(inproc\|vu\) (.*): virtio-pci at .*\)/vhost_net_linux: cvmm: \1/p' cvmm.log
sed -n 's/^BENCH: \([a-z]*\) is \(.*\)/vhost_net_linux: guest: \1 is \2/p' guest.out
grep -E 'BENCH: .*(errors|no NIC|no answer)' guest.out && echo "vhost_net_linux: the guest saw errors (above)"
grep 'needs reset' cvmm.log && echo "vhost_net_linux: the vhost-user NIC needed a reset (above)"
grep -q 'CVMM-INIT: done rc=0' guest.out && [ "$rc" -eq 0 ] && [ -s figures ] ||
    { echo "vhost_net_linux: cvmm exited $rc"; tail -n 20 guest.out cvmm.log be.log; exit 1; }
echo "TCP through a tap, $NETMIB MiB per stream, $RR one-byte request/response exchanges (one in flight), $ROUNDS rounds"
echo "tx = guest -> host, rx = host -> guest (MiB/s); rr = exchanges per second"
name() { case $1 in inproc) echo in-process;; vu) echo vu-cvmm;; esac; }
for r in $(seq "$ROUNDS"); do
    for f in tx-mibps rx-mibps rr-per-s; do
        printf 'round %s %-9s' "$r" "$f"
        for w in inproc vu; do
            printf ' %s=%s' "$(name $w)" "$(awk -v r="$r" -v w="$w" -v f="$f" '$1 == r && $2 == w && $3 == f { print $4 }' figures)"
        done
        echo
    done
done
median() {   # WAY FIGURE: of the rounds that produced it
    awk -v w="$1" -v f="$2" '$2 == w && $3 == f { print $4 }' figures | sort -n |
        awk '{ v[NR] = $1 } END { if (NR) print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || !b) print "-"; else printf "%.2f", a / b }'; }
echo "medians of the rounds that produced the figure; ratio = vhost-user / in-process (all figures: higher is better)"
printf '%-9s %12s %12s %15s\n' figure in-process vu-cvmm vu-cvmm/inproc
for f in tx-mibps rx-mibps rr-per-s; do
    a=$(median inproc "$f") b=$(median vu "$f")
    printf '%-9s %12s %12s %15s\n' "$f" "${a:-failed}" "${b:-failed}" "$(ratio "$b" "$a")"
done

#!/bin/sh
# The host side of bench/vhost_net_linux.sh (busybox sh; runs directly or in
# the nested machine, see tests/lib/linux-guest.sh): one guest under cvmm
# (virtio-pci, one vCPU) with three NICs: one in-process on the tap bench0
# (10.80.0.1/24 this side), one through cvmm's vhost-user front-end to `cvmm
# --net-backend` on the tap vubench0 (10.81.0.1/24), one through the same
# front-end to dpdk-testpmd (net_vhost forwarding to net_tap, io mode) on the
# tap dpbench0 (10.82.0.1/24), each with the default queue pair and ring
# size. `netload serve` answers on the three taps; the guest
# (bench/guest/vhost_net_linux_guest.sh) loads the NICs in turn, round after
# round, and this side prints every round's figures, the medians and the
# median of the rounds' vhost-user ratios to the in-process ones.
# Env: ROUNDS, NETMIB (MiB per stream), RR (request/response exchanges),
# PMDS (the directory of DPDK's PMDs).
ROUNDS=${ROUNDS:-3} NETMIB=${NETMIB:-64} RR=${RR:-1000}
limit=$((ROUNDS * 3 * (4 * NETMIB + RR / 10 + 60) + 600))
if [ -x dpdk/dpdk-testpmd ]; then
    TESTPMD="dpdk/ld.so --library-path dpdk/lib dpdk/dpdk-testpmd"
else
    TESTPMD=dpdk-testpmd
fi
wait_sock() { i=0; while [ ! -S "$1" ] && [ $i -lt 150 ]; do sleep 0.2; i=$((i + 1)); done; [ -S "$1" ]; }
./netload serve 5679 2>server.log &
server=$!
"$CVMM" --net-backend "tap=vubench0,socket=net.sock,ip=10.81.0.1,mask=255.255.255.0" 2>be.log &
be=$!
# Its forwarding lcore (0) polls CPU 0, where this script and netload serve
# run; the main lcore (1) only waits (--stats-period: without it testpmd
# ends when its standard input does). EAL keeps its runtime files under
# /var/run/dpdk, which the nested machine lacks.
mkdir -p /var/run
$TESTPMD -d "$PMDS/librte_mempool_ring.so" -d "$PMDS/librte_net_vhost.so" -d "$PMDS/librte_net_tap.so" \
    -l 0-1 --main-lcore 1 --no-pci --no-huge -m 256 --file-prefix=vnetbench \
    --vdev "net_vhost0,iface=$PWD/dpdk.sock,queues=1" --vdev net_tap0,iface=dpbench0 \
    -- --no-mlockall --forward-mode=io --auto-start --stats-period 60 --total-num-mbufs=8192 </dev/null >testpmd.log 2>&1 &
dpdk=$!
wait_sock net.sock && wait_sock dpdk.sock || {
    echo "vhost_net_linux: a back-end did not start"; tail -n 20 be.log testpmd.log; kill $server $be $dpdk; exit 1; }
i=0
while ! ip link show dpbench0 >/dev/null 2>&1 && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
ip addr add 10.82.0.1/24 dev dpbench0 && ip link set dpbench0 up ||
    { echo "vhost_net_linux: testpmd's tap dpbench0 did not appear"; tail -n 20 testpmd.log; kill $server $be $dpdk; exit 1; }
timeout $limit "$CVMM" -v --kernel "$GUEST_KERNEL" --initramfs initrd.gz --cpus boot=1 \
    --memory size=512M --transport pci --serial tty \
    --net "tap=bench0,mac=52:54:00:80:00:02,ip=10.80.0.1,mask=255.255.255.0,id=inproc" \
    --net "vhost_user=on,socket=net.sock,mac=52:54:00:81:00:02,id=vu" \
    --net "vhost_user=on,socket=dpdk.sock,mac=52:54:00:82:00:02,id=dpdk" \
    --cmdline "console=ttyS0 panic=-1 reboot=k bench.rounds=$ROUNDS bench.netmib=$NETMIB bench.rr=$RR" \
    </dev/null 2>cvmm.log | tr -d '\r' >guest.out
rc=$?
kill $be $server $dpdk 2>/dev/null
wait $be $server $dpdk 2>/dev/null
# "round way figure value" lines; the request/response mean time per
# exchange becomes a rate (exchanges per second).
sed -n 's/^BENCH: \([0-9]*\) \([a-z]*\) BENCH: net-\([a-z]*\) [a-z]*=\([0-9.]*\)$/\1 \2 \3 \4/p' guest.out |
    awk '$3 == "tx" { $3 = "tx-mibps" } $3 == "rx" { $3 = "rx-mibps" }
         $3 == "rr" { $3 = "rr-per-s"; $4 = $4 > 0 ? sprintf("%.1f", 1e6 / $4) : "" }
         $4 != "" { print }' >figures
# Which device is which, as cvmm and the guest saw them.
sed -n 's/^cvmm.*: \(\(inproc\|vu\|dpdk\) (.*): virtio-pci at .*\)/vhost_net_linux: cvmm: \1/p' cvmm.log
sed -n 's/^BENCH: \([a-z]*\) is \(.*\)/vhost_net_linux: guest: \1 is \2/p' guest.out
grep -E 'BENCH: .*(errors|no NIC|no answer)' guest.out && echo "vhost_net_linux: the guest saw errors (above)"
grep 'needs reset' cvmm.log && echo "vhost_net_linux: the vhost-user NIC needed a reset (above)"
grep -q 'CVMM-INIT: done rc=0' guest.out && [ "$rc" -eq 0 ] && [ -s figures ] ||
    { echo "vhost_net_linux: cvmm exited $rc"; tail -n 20 guest.out cvmm.log be.log testpmd.log; exit 1; }
echo "TCP through a tap, $NETMIB MiB per stream, $RR one-byte request/response exchanges (one in flight), $ROUNDS rounds"
echo "tx = guest -> host, rx = host -> guest (MiB/s); rr = exchanges per second"
name() { case $1 in inproc) echo in-process;; vu) echo vu-cvmm;; dpdk) echo vu-dpdk;; esac; }
for r in $(seq "$ROUNDS"); do
    for f in tx-mibps rx-mibps rr-per-s; do
        printf 'round %s %-9s' "$r" "$f"
        for w in inproc vu dpdk; do
            printf ' %s=%s' "$(name $w)" "$(awk -v r="$r" -v w="$w" -v f="$f" '$1 == r && $2 == w && $3 == f { print $4 }' figures)"
        done
        echo
    done
done
. ./rounds.sh
echo "medians of the rounds that produced the figure; ratio = median of the rounds' vhost-user / in-process (all figures: higher is better)"
printf '%-9s %12s %12s %12s %15s %15s\n' figure in-process vu-cvmm vu-dpdk vu-cvmm/inproc vu-dpdk/inproc
for f in tx-mibps rx-mibps rr-per-s; do
    a=$(rounds_median inproc "$f") b=$(rounds_median vu "$f") c=$(rounds_median dpdk "$f")
    printf '%-9s %12s %12s %12s %15s %15s\n' "$f" "${a:-failed}" "${b:-failed}" "${c:-failed}" \
        "$(rounds_ratio inproc vu "$f")" "$(rounds_ratio inproc dpdk "$f")"
done

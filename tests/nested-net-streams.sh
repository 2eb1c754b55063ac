#!/usr/bin/env bash
# Usage: BUILD=build tests/nested-net-streams.sh [RUNS]
#
# A measuring tool, not a test: inside the nested machine (tests/lib/
# nested.sh), boots Debian's kernel RUNS times (default 2) under each of
# cvmm on virtio-pci, cvmm on virtio-mmio and QEMU (-M pc, virtio-net-pci,
# vhost=off), in turn, each with a tap to the outer machine; 2 vCPUs, 1 GiB.
# The guest sends three 32 MiB TCP streams to bench/guest/netload on the
# tap's host side, one after the other, printing after each the guest's TCP
# segments sent and retransmitted so far, then receives one. Prints each
# boot's figures on one line. docs/performance.md has what it showed: how
# far streams of one boot scatter under every VMM.
set -u
BUILD=$(cd "${BUILD:?BUILD must be set}" && pwd)
root=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-2}
. "$root/tests/lib/linux-guest.sh"
LINUX_GUEST_MODE=nested
linux_guest_test netstreams
cat >"$tmp/guest.sh" <<'GUEST'
#!/bin/sh
host=10.80.0.1
i=0
while ! ip link show eth0 >/dev/null 2>&1 && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
ip link set eth0 up
ip addr add 10.80.0.2/24 dev eth0
ping -c 1 -W 5 "$host" >/dev/null 2>&1
for i in 1 2 3; do
    /netload "$host" 5679 send 32
    awk '/^Tcp:/ { n++ } /^Tcp:/ && n == 2 { print "BENCH: segments sent", $12, "retransmitted", $13 }' /proc/net/snmp
done
/netload "$host" 5679 recv 32
GUEST
linux_guest_loop_head "$runs" >"$tmp/loop.sh"
cat >>"$tmp/loop.sh" <<'INNER'
./netload serve 5679 &
server=$!
# QEMU creates its tap itself; it is addressed once it exists.
tap_for_qemu() {
    i=0
    while ! ip link show bench1 >/dev/null 2>&1 && [ $i -lt 600 ]; do sleep 0.05; i=$((i + 1)); done
    ip addr add 10.80.0.1/24 dev bench1 && ip link set bench1 up
}
n=0
while [ $n -lt $runs ]; do
    n=$((n + 1))
    for vmm in cvmm-pci cvmm-mmio qemu; do
        if [ $vmm = qemu ]; then
            tap_for_qemu &
            tap=$!
            timeout 300 $QEMU -M pc -enable-kvm -cpu host -smp 2 -m 1G -nographic -nodefaults \
                -serial file:out -no-reboot -kernel "$GUEST_KERNEL" -initrd initrd.gz -append "$append" \
                -netdev tap,id=n0,ifname=bench1,script=no,downscript=no,vhost=off \
                -device virtio-net-pci,netdev=n0,romfile= </dev/null >/dev/null 2>err
            rc=$?
            wait $tap
        else
            timeout 300 "$CVMM" --kernel "$GUEST_KERNEL" --initramfs initrd.gz --cpus boot=2 --memory size=1G \
                --transport ${vmm#cvmm-} --serial file=out --net "tap=bench0,ip=10.80.0.1,mask=255.255.255.0" \
                --cmdline "$append" </dev/null >/dev/null 2>err
            rc=$?
        fi
        echo "NETSTREAMS $vmm run $n: exit $rc, $(tr -d '\r' <out | sed -n 's/^BENCH: //p' | tr '\n' ' ')"
    done
done
kill $server
INNER
gcc -static -O2 -o "$tmp/netload" "$root/bench/guest/netload.c" || exit 1
LINUX_DIR=$BUILD/linux "$root/images/linux/mkinitrd.sh" "$tmp/initrd.gz" "$tmp/guest.sh" "$tmp/netload:/netload" \
    >/dev/null || exit 1
qf=$(nested_qemu_files) || { echo "cannot ship QEMU into the nested machine"; exit 1; }
mapfile -t qfiles <<<"$qf"
NESTED_MEM_MIB=4096 NESTED_TIMEOUT=$((runs * 3 * 300 + 300)) \
    nested_run netstreams "$tmp/loop.sh" "$tmp/initrd.gz" "$tmp/netload" "${qfiles[@]}" | grep -a "^NETSTREAMS"

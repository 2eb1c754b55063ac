#!/usr/bin/env bash
# vhost-user front-end benchmark, network: what one Linux guest under cvmm
# sees of a NIC served in-process on a tap, of one served through cvmm's
# vhost-user front-end by `cvmm --net-backend` on a tap, and of one served
# the same way by DPDK (dpdk-testpmd: net_vhost forwarding to net_tap, io
# mode, its forwarding lcore polling the CPU the host scripts run on, as
# DPDK does, for the whole run): TCP throughput
# guest -> host and host -> guest (MiB/s) and the rate of one-byte
# request/response exchanges with one in flight (bench/guest/netload.c, the
# tool of bench/inproc.sh), the two NICs loaded in turn, round after round.
# Prints each round, the medians and the median of the rounds' ratios
# vhost-user / in-process.
#
#   bench/vhost_net_linux.sh [BUILD_DIR]
#       env: ROUNDS=3, NETMIB=64 (MiB per stream), RR=1000 (exchanges)
#
# Both NICs sit in the same guest boot (as the disks of vhost_blk_linux.sh)
# rather than one boot per way, to keep the comparison fair: the guest's
# kernel, memory (shared, as any vhost-user device makes it, so the
# in-process device works on the same kind of mapping), vCPU and the host
# processes are the same for both, the measurements alternate within
# seconds of each other (and which NIC goes first alternates from round to
# round), so drift in the machine's load hits both alike instead of falling
# on one boot; and one boot instead of 2 x ROUNDS keeps the nested run short.
# The NICs not being measured are idle. Each NIC has its own tap and subnet
# (10.80.0.0/24 in-process, 10.81.0.0/24 cvmm's back-end, 10.82.0.0/24
# DPDK), one queue pair and the default ring size (256) on virtio-pci.
#
# Runs where tests/lib/linux-guest.sh says Linux guests run: directly, or
# nested inside a QEMU/TCG machine, where only the ratios mean something.
set -u
BUILD=$(cd "${1:-build}" && pwd) || exit 1
export BUILD
root=$(cd "$(dirname "$0")/.." && pwd)
export ROUNDS=${ROUNDS:-3} NETMIB=${NETMIB:-64} RR=${RR:-1000}
[ -x "$BUILD/cvmm" ] || { echo "vhost_net_linux: build cvmm first (make BUILD=$BUILD)"; exit 1; }
testpmd=$(command -v dpdk-testpmd) || { echo "vhost_net_linux: dpdk-testpmd is not installed (dpdk-dev)"; exit 1; }
# The PMDs testpmd loads (-d): they are plugins, not linked.
pmds=$(ls -d /usr/lib/x86_64-linux-gnu/dpdk/pmds-*/ 2>/dev/null | tail -n 1)
for p in mempool_ring net_vhost net_tap; do
    [ -e "$pmds/librte_$p.so" ] || { echo "vhost_net_linux: DPDK's $p PMD is not in '$pmds'"; exit 1; }
done
. "$root/tests/lib/linux-guest.sh"
linux_guest_bench vhost_net_linux

tmp=$(mktemp -d /var/tmp/cvmm-bench-vnet.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
gcc -static -O2 -o "$tmp/netload" "$root/bench/guest/netload.c" ||
    { echo "vhost_net_linux: cannot build the load tool"; exit 1; }
LINUX_DIR=$BUILD/linux "$root/images/linux/mkinitrd.sh" "$tmp/initrd.gz" "$root/bench/guest/vhost_net_linux_guest.sh" \
    "$tmp/netload:/netload" >/dev/null || { echo "vhost_net_linux: mkinitrd failed"; exit 1; }
files=("$tmp/initrd.gz" "$tmp/netload" "$root/bench/host/rounds.sh")
if [ "$LINUX_GUEST_MODE" = nested ]; then
    # testpmd, its libraries and the three PMDs with theirs, into dpdk/.
    list=$(nested_program_files "$testpmd" dpdk) || { echo "vhost_net_linux: cannot ship dpdk-testpmd"; exit 1; }
    for p in mempool_ring net_vhost net_tap; do
        so=$(readlink -f "$pmds/librte_$p.so")
        list+=$'\n'"$so:dpdk/pmd/librte_$p.so"
        list+=$'\n'$(nested_library_files "$so" dpdk)
    done
    # glibc loads it when testpmd cancels its threads at exit.
    gcc_s=$(gcc -print-file-name=libgcc_s.so.1)
    list+=$'\n'"$(readlink -f "$gcc_s"):dpdk/lib/libgcc_s.so.1"
    mapfile -t dfiles < <(sort -u <<<"$list" | grep .)
    files+=("${dfiles[@]}")
    export PMDS=dpdk/pmd
else
    export PMDS=$pmds
fi
# The host side runs `netload serve` too.
NESTED_APPEND="ROUNDS=$ROUNDS NETMIB=$NETMIB RR=$RR PMDS=$PMDS" NESTED_MEM_MIB=2048 \
    NESTED_TIMEOUT=$((ROUNDS * 3 * (4 * NETMIB + RR / 10 + 60) + 900)) \
    linux_guest_run vhost_net_linux "$root/bench/host/vhost_net_linux_run.sh" "${files[@]}"

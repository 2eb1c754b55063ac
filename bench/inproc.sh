#!/usr/bin/env bash
# In-process device benchmark: what a Linux guest sees of its virtio-blk
# (4 KiB random and sequential reads and writes at queue depth 1 and 32,
# 1 MiB sequential at depth 4, O_DIRECT, bench/guest/blkload.c), of its
# virtio-net (a TCP stream each way through a tap and 1-byte request/
# response latency, bench/guest/netload.c, each run on vCPU 0 and on the
# last vCPU, with the device's interrupts put on the same vCPUs under every
# VMM: net-tx-vcpu0-mibps and so on) and the time from starting the
# VMM to the guest's /init, under cvmm (virtio-pci and virtio-mmio) and, in
# the same run, under QEMU with KVM and its own in-process devices
# (virtio-blk with aio=io_uring on the page cache, as cvmm by default;
# virtio-net on a tap with vhost=off), on virtio-pci (-M pc) and on
# virtio-mmio (-M microvm), on the same image and the same kind of tap, in
# turn for ROUNDS rounds. Prints each round, the medians and the median of
# the rounds' cvmm/QEMU ratios (each cvmm transport against QEMU on PCI, the
# reference, and virtio-mmio against QEMU's virtio-mmio).
#
#   bench/inproc.sh [BUILD_DIR]
#       env: ROUNDS=3, SECS=10 (per block workload), NETMIB=64 (per TCP
#       stream), RR=1000 (request/response exchanges), VCPUS=2 (the
#       guest's vCPUs under both VMMs)
#
# Runs where tests/lib/linux-guest.sh says Linux guests run: directly, or
# nested inside a QEMU/TCG machine, where QEMU with -enable-kvm runs on the
# same nested /dev/kvm as cvmm. Nested, only the ratios mean something: the
# absolute figures are those of an emulated machine.
set -u
BUILD=$(cd "${1:-build}" && pwd) || exit 1
export BUILD
root=$(cd "$(dirname "$0")/.." && pwd)
export ROUNDS=${ROUNDS:-3} SECS=${SECS:-10} NETMIB=${NETMIB:-64} RR=${RR:-1000} VCPUS=${VCPUS:-2}
[ -x "$BUILD/cvmm" ] || { echo "inproc: build cvmm first (make BUILD=$BUILD)"; exit 1; }
command -v qemu-system-x86_64 >/dev/null || { echo "inproc: qemu-system-x86_64 is not installed"; exit 1; }
. "$root/tests/lib/linux-guest.sh"
linux_guest_bench inproc

tmp=$(mktemp -d /var/tmp/cvmm-bench-inproc.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
{ gcc -static -O2 -o "$tmp/blkload" "$root/bench/guest/blkload.c" -lpthread &&
  gcc -static -O2 -o "$tmp/netload" "$root/bench/guest/netload.c"; } ||
    { echo "inproc: cannot build the guest load tools"; exit 1; }
LINUX_DIR=$BUILD/linux "$root/images/linux/mkinitrd.sh" "$tmp/initrd.gz" "$root/bench/guest/inproc_guest.sh" \
    "$tmp/blkload:/blkload" "$tmp/netload:/netload" "$root/bench/guest/net_irqs.sh:/net_irqs.sh" >/dev/null ||
    { echo "inproc: mkinitrd failed"; exit 1; }
files=("$tmp/initrd.gz" "$tmp/netload" "$root/bench/host/rounds.sh")
if [ "$LINUX_GUEST_MODE" = nested ]; then
    # QEMU for the outer machine (tests/lib/nested.sh).
    qf=$(nested_qemu_files) || { echo "inproc: cannot ship QEMU into the nested machine"; exit 1; }
    mapfile -t qfiles <<<"$qf"
    files+=("${qfiles[@]}")
fi
echo "inproc: guests with $VCPUS vCPU(s) under both VMMs"
# Nested, the settings reach the outer /init as environment through its
# kernel command line.
NESTED_APPEND="ROUNDS=$ROUNDS SECS=$SECS NETMIB=$NETMIB RR=$RR VCPUS=$VCPUS" NESTED_MEM_MIB=4096 NESTED_TIMEOUT=$((ROUNDS * 4 * (600 + 12 * SECS) + 300)) \
    linux_guest_run inproc "$root/bench/host/inproc_run.sh" "${files[@]}"

#!/usr/bin/env bash
# In-process device benchmark: what a Linux guest sees of its virtio-blk
# (4 KiB random read/write at queue depth 32, 1 MiB sequential at depth 4,
# O_DIRECT, bench/guest/blkload.c) and of its virtio-net (a 256 MiB TCP
# stream into a tap, timed by the guest), under cvmm and, in the same run,
# under QEMU with KVM and its own in-process devices (virtio-blk-pci with
# aio=io_uring on the page cache, as cvmm by default; virtio-net-pci on a
# tap with vhost=off), on the same image and the same kind of tap, in turn
# for ROUNDS rounds. Prints each round, the medians and the cvmm/QEMU ratio.
#
#   bench/inproc.sh [BUILD_DIR]      env: ROUNDS=3, SECS=10 (per block workload)
#
# Runs where tests/lib/linux-guest.sh says Linux guests run: directly, or
# nested inside a QEMU/TCG machine, where QEMU with -enable-kvm runs on the
# same nested /dev/kvm as cvmm. Nested, only the ratios mean something: the
# absolute figures are those of an emulated machine.
set -u
BUILD=$(cd "${1:-build}" && pwd) || exit 1
export BUILD
root=$(cd "$(dirname "$0")/.." && pwd)
export ROUNDS=${ROUNDS:-3} SECS=${SECS:-10}
[ -x "$BUILD/cvmm" ] || { echo "inproc: build cvmm first (make BUILD=$BUILD)"; exit 1; }
command -v qemu-system-x86_64 >/dev/null || { echo "inproc: qemu-system-x86_64 is not installed"; exit 1; }
. "$root/tests/lib/linux-guest.sh"
linux_guest_mode
case $? in
    0) echo "inproc: $LINUX_GUEST_MODE: $LINUX_GUEST_WHY";;
    *) echo "inproc: not measured on this host: $LINUX_GUEST_WHY"; exit 0;;
esac
linux_guest_prepare || { echo "inproc: cannot build the guest images"; exit 1; }
[ "$LINUX_GUEST_MODE" = nested ] &&
    echo "inproc: NESTED (QEMU/TCG outer machine): absolute figures mean nothing here, compare the ratios only"

tmp=$(mktemp -d /var/tmp/cvmm-bench-inproc.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
gcc -static -O2 -o "$tmp/blkload" "$root/bench/guest/blkload.c" -lpthread ||
    { echo "inproc: cannot build the guest load tool"; exit 1; }
LINUX_DIR=$BUILD/linux "$root/images/linux/mkinitrd.sh" "$tmp/initrd.gz" "$root/bench/guest/inproc_guest.sh" \
    "$tmp/blkload:/blkload" >/dev/null || { echo "inproc: mkinitrd failed"; exit 1; }
files=("$tmp/initrd.gz")
if [ "$LINUX_GUEST_MODE" = nested ]; then
    # QEMU for the outer machine: its binary, its dynamic loader and
    # libraries (run through the loader, so no paths change) and the
    # firmware it loads for -kernel.
    q=$(command -v qemu-system-x86_64)
    files+=("$q:qemu/qemu-system-x86_64")
    while read -r lib; do
        case $lib in
            */ld-linux*) files+=("$(readlink -f "$lib"):qemu/ld.so");;
            *) files+=("$(readlink -f "$lib"):qemu/lib/$(basename "$lib")");;
        esac
    done < <(ldd "$q" | awk '/=> \// { print $3 } /^\t\/[^ ]* \(/ { print $1 }')
    for f in seabios/bios-256k.bin qemu/linuxboot_dma.bin qemu/kvmvapic.bin; do
        [ -f "/usr/share/$f" ] || { echo "inproc: QEMU firmware /usr/share/$f not found"; exit 1; }
        files+=("$(readlink -f "/usr/share/$f"):qemu/share/$(basename "$f")")
    done
fi
NESTED_MEM_MIB=4096 NESTED_TIMEOUT=$((ROUNDS * 2 * (600 + 5 * SECS) + 300)) \
    linux_guest_run inproc "$root/bench/host/inproc_run.sh" "${files[@]}"

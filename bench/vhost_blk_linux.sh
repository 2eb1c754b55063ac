#!/usr/bin/env bash
# vhost-user front-end benchmark: what one Linux guest under cvmm sees of a
# disk served in-process, of one served through cvmm's vhost-user front-end
# by `cvmm --block-backend`, and of one served the same way by
# qemu-storage-daemon: 4 KiB random reads and writes at queue depth 32
# (O_DIRECT, bench/guest/blkload.c), the three disks loaded in turn, round
# after round, in the same boot. Prints each round, the medians and the
# median of the rounds' ratios to in-process.
#
#   bench/vhost_blk_linux.sh [BUILD_DIR]     env: ROUNDS=3, SECS=5, SPAN=64 (MiB)
#
# Runs where tests/lib/linux-guest.sh says Linux guests run: directly, or
# nested inside a QEMU/TCG machine, where only the ratios mean something.
set -u
BUILD=$(cd "${1:-build}" && pwd) || exit 1
export BUILD
root=$(cd "$(dirname "$0")/.." && pwd)
export ROUNDS=${ROUNDS:-3} SECS=${SECS:-5} SPAN=${SPAN:-64}
[ -x "$BUILD/cvmm" ] || { echo "vhost_blk_linux: build cvmm first (make BUILD=$BUILD)"; exit 1; }
command -v qemu-storage-daemon >/dev/null || { echo "vhost_blk_linux: qemu-storage-daemon is not installed"; exit 1; }
. "$root/tests/lib/linux-guest.sh"
linux_guest_bench vhost_blk_linux

tmp=$(mktemp -d /var/tmp/cvmm-bench-vblk.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
gcc -static -O2 -o "$tmp/blkload" "$root/bench/guest/blkload.c" -lpthread ||
    { echo "vhost_blk_linux: cannot build the guest load tool"; exit 1; }
LINUX_DIR=$BUILD/linux "$root/images/linux/mkinitrd.sh" "$tmp/initrd.gz" "$root/bench/guest/vhost_blk_linux_guest.sh" \
    "$tmp/blkload:/blkload" >/dev/null || { echo "vhost_blk_linux: mkinitrd failed"; exit 1; }
files=("$tmp/initrd.gz" "$root/bench/host/rounds.sh")
if [ "$LINUX_GUEST_MODE" = nested ]; then
    qf=$(nested_program_files "$(command -v qemu-storage-daemon)" qemu) || { echo "vhost_blk_linux: cannot ship qemu-storage-daemon"; exit 1; }
    mapfile -t qfiles <<<"$qf"
    files+=("${qfiles[@]}")
fi
NESTED_APPEND="ROUNDS=$ROUNDS SECS=$SECS SPAN=$SPAN" NESTED_MEM_MIB=2048 \
    NESTED_TIMEOUT=$((ROUNDS * 6 * (SECS + 30) + 900)) \
    linux_guest_run vhost_blk_linux "$root/bench/host/vhost_blk_linux_run.sh" "${files[@]}"

#!/usr/bin/env bash
# A Linux guest (Debian's cloud kernel, its own virtio drivers) under cvmm
# with every in-process device over both transports: virtio-blk (16 MiB in
# the image, discard, flush, readonly=on, two queues), virtio-net on a tap
# (ping and TCP both ways, two queue pairs both used), virtio-rng, and
# virtio-console (a line each way). tests/integration/host/
# virtio_linux_run.sh lists the checks. Runs directly or nested
# (tests/lib/linux-guest.sh decides).
set -u
: "${BUILD:?BUILD is not set}"
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$root/tests/lib/linux-guest.sh"
linux_guest_test virtio-linux

# ethtool (per-queue packet counts) and the libraries it links.
ethtool=$(command -v ethtool) || { echo "FAIL: ethtool is not installed (tests/install-deps.sh)"; exit 1; }
extra=("$ethtool:/bin/ethtool")
while read -r lib; do extra+=("$(readlink -f "$lib"):$lib"); done < <(
    ldd "$ethtool" | awk '/=> \// { print $3 } /^\t\/[^ ]* \(/ { print $1 }')
LINUX_DIR=$BUILD/linux "$root/images/linux/mkinitrd.sh" "$tmp/initrd.gz" \
    "$here/guest/virtio_linux_guest.sh" "${extra[@]}" || { echo "FAIL: mkinitrd"; exit 1; }
NESTED_MEM_MIB=2048 linux_guest_run virtio_linux "$here/host/virtio_linux_run.sh" "$here/host/run_lib.sh" "$tmp/initrd.gz"

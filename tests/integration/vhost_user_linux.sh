#!/usr/bin/env bash
# A Linux guest (Debian's cloud kernel, its own virtio drivers) under cvmm
# as a vhost-user front-end: a disk on `cvmm --block-backend`, a disk on
# qemu-storage-daemon and a network on `cvmm --net-backend` (a tap), over
# both transports. Data written by the guest is checked in the images; the
# images grown under the guest reach it (CONFIG_CHANGE_MSG through the
# front-end, a config interrupt); ping both ways and TCP both ways with
# checksums; interrupts through the back-ends' call fds; each back-end
# killed with SIGKILL and started again while the guest writes to both
# disks and streams over TCP: no I/O error, every chunk in the images, the
# stream whole. tests/integration/host/vhost_user_linux_run.sh lists the
# checks. Runs directly or nested (tests/lib/linux-guest.sh decides); nested,
# qemu-storage-daemon is shipped into the outer machine with its libraries.
# VUL_TRANSPORTS=pci (or mmio) runs one transport only (default pci,mmio).
set -u
: "${BUILD:?BUILD is not set}"
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$root/tests/lib/linux-guest.sh"
command -v qemu-storage-daemon >/dev/null ||
    { echo "FAIL: qemu-storage-daemon is not installed (tests/install-deps.sh)"; exit 1; }
linux_guest_test vhost-user-linux

# The data the guest writes and sends, known to both sides.
dd if=/dev/urandom of="$tmp/pat" bs=1M count=4 2>/dev/null
LINUX_DIR=$BUILD/linux "$root/images/linux/mkinitrd.sh" "$tmp/initrd.gz" \
    "$here/guest/vhost_user_linux_guest.sh" "$tmp/pat:/pat" || { echo "FAIL: mkinitrd"; exit 1; }
files=("$here/host/run_lib.sh" "$tmp/initrd.gz" "$tmp/pat")
if [ "$LINUX_GUEST_MODE" = nested ]; then
    qf=$(nested_program_files "$(command -v qemu-storage-daemon)" qemu) || { echo "FAIL: cannot ship qemu-storage-daemon"; exit 1; }
    mapfile -t qfiles <<<"$qf"
    files+=("${qfiles[@]}")
fi
# The transports reach the outer /init as environment through its kernel
# command line.
export VUL_TRANSPORTS=${VUL_TRANSPORTS:-pci,mmio}
NESTED_APPEND="VUL_TRANSPORTS=$VUL_TRANSPORTS" NESTED_MEM_MIB=2048 \
    linux_guest_run vhost_user_linux "$here/host/vhost_user_linux_run.sh" "${files[@]}"

#!/usr/bin/env bash
# A Linux guest (Debian's cloud kernel, its own virtio-vsock driver) under
# cvmm --vsock, over both transports, driven through the hybrid-vsock socket
# by the host tool and guest script that vhost_vsock_qemu.sh uses with cvmm
# --vsock-backend: the two are interchangeable. tests/integration/host/
# vsock_linux_run.sh lists the checks (16 MiB each way, a host reader that
# stops for a second, 32 connections each way, fds after many connections,
# a device reset and a reboot with connections open, which cvmm --on-reboot
# restart turns into a second boot on the same socket; then the same guest
# through the vhost-user front-end on cvmm --vsock-backend, killed and
# restarted under it). Runs directly or
# nested (tests/lib/linux-guest.sh decides).
set -u
: "${BUILD:?BUILD is not set}"
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$root/tests/lib/linux-guest.sh"
linux_guest_test vsock-linux

gcc -static -O2 -o "$tmp/vsock-tool" "$here/guest/vsock-tool.c" 2>"$tmp/gcc.err" ||
    { echo "FAIL: cannot link vsock-tool statically: $(tail -n 1 "$tmp/gcc.err")"; exit 1; }
LINUX_DIR=$BUILD/linux "$root/images/linux/mkinitrd.sh" "$tmp/initrd.gz" \
    "$here/guest/vhost_vsock_guest.sh" "$tmp/vsock-tool:/vsock-tool" || { echo "FAIL: mkinitrd"; exit 1; }
NESTED_MEM_MIB=2048 NESTED_TIMEOUT=1800 linux_guest_run vsock_linux "$here/host/vsock_linux_run.sh" "$tmp/initrd.gz" "$tmp/vsock-tool"

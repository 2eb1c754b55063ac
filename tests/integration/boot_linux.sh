#!/usr/bin/env bash
# Debian's stock cloud kernel under cvmm (tests/integration/host/
# boot_linux_run.sh says what is checked): from bzImage and from vmlinux ELF,
# 1/2/4 vCPUs, 128 MiB/1 GiB/3.5 GiB, initramfs and command line, the serial
# console both ways, and poweroff/reboot/panic each ending cvmm with 0.
# Runs directly or nested (tests/lib/linux-guest.sh decides).
set -u
: "${BUILD:?BUILD is not set}"
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$root/tests/lib/linux-guest.sh"
linux_guest_test boot-linux

echo bl-initrd-ok >"$tmp/bl-marker"
LINUX_DIR=$BUILD/linux "$root/images/linux/mkinitrd.sh" "$tmp/initrd.gz" "$here/guest/boot_linux_guest.sh" \
    "$tmp/bl-marker" || { echo "FAIL: mkinitrd"; exit 1; }
"$root/images/linux/extract-vmlinux.sh" "$BUILD/linux/vmlinuz" "$tmp/vmlinux" ||
    { echo "FAIL: cannot extract vmlinux from the bzImage"; exit 1; }
# The outer machine holds the 3.5 GiB guest (touched lazily) and the files.
NESTED_MEM_MIB=5120 linux_guest_run boot_linux "$here/host/boot_linux_run.sh" \
    "$tmp/initrd.gz" "$tmp/vmlinux"

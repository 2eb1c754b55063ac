#!/usr/bin/env bash
# A Linux guest (Debian's cloud kernel, its own virtiofs driver) under cvmm
# --fs, served by Debian's virtiofsd, over both transports: the guest mounts
# the tag, reads the host's files and writes its own, which the host finds;
# killing virtiofsd under the guest puts the device in DEVICE_NEEDS_RESET.
# tests/integration/host/virtiofs_linux_run.sh lists the checks. Runs
# directly or nested (tests/lib/linux-guest.sh decides); virtiofsd, its
# loader and libraries go along.
set -u
: "${BUILD:?BUILD is not set}"
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$root/tests/lib/linux-guest.sh"
virtiofsd=/usr/lib/qemu/virtiofsd
[ -x "$virtiofsd" ] || { echo "FAIL: $virtiofsd is missing (qemu-system-common; tests/install-deps.sh)"; exit 1; }
linux_guest_test virtiofs-linux

lines=$(nested_program_files "$virtiofsd" vfs) || { echo "FAIL: cannot ship virtiofsd"; exit 1; }
mapfile -t vfs <<<"$lines"
LINUX_DIR=$BUILD/linux "$root/images/linux/mkinitrd.sh" "$tmp/initrd.gz" \
    "$here/guest/virtiofs_linux_guest.sh" || { echo "FAIL: mkinitrd"; exit 1; }
NESTED_MEM_MIB=2048 linux_guest_run virtiofs_linux "$here/host/virtiofs_linux_run.sh" "$here/host/run_lib.sh" "$tmp/initrd.gz" "${vfs[@]}"

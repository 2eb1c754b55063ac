#!/usr/bin/env bash
# `make demo` after the build: boots a guest with its console on this
# terminal. Where `cvmm --check-host` says the host's KVM can run Linux, that
# is Debian's cloud kernel with a busybox shell (images/linux); elsewhere one
# line says why, and the freestanding test guest boots instead.
set -u
BUILD=${1:?usage: demo.sh BUILD_DIR}
root=$(cd "$(dirname "$0")/.." && pwd)
cvmm=$BUILD/cvmm
cpus=2

verdict=$("$cvmm" --check-host)
rc=$?
if [ $rc -eq 0 ]; then
    linux=$BUILD/linux
    "$root/images/linux/build.sh" "$linux" || exit 1
    shell=$(mktemp /tmp/cvmm-demo.XXXXXX)
    trap 'rm -f "$shell" "$linux/initrd-demo.gz"' EXIT
    cat >"$shell" <<'EOS'
echo "cvmm demo: busybox shell on the serial console; 'exit' resets the VM"
setsid cttyhack sh -l
EOS
    LINUX_DIR=$linux "$root/images/linux/mkinitrd.sh" "$linux/initrd-demo.gz" "$shell" || exit 1
    echo "cvmm demo: booting Linux ($(cat "$linux/version")) with $cpus CPUs"
    truncate -s 64M "$BUILD/demo-disk.img"
    "$cvmm" --kernel "$linux/vmlinuz" --initramfs "$linux/initrd-demo.gz" --cpus "boot=$cpus" \
        --memory size=512M --disk "path=$BUILD/demo-disk.img" --rng \
        --cmdline "console=ttyS0 panic=-1 reboot=k quiet"
    exit $?
fi

echo "${verdict:-cvmm --check-host gave no verdict (exit $rc)}; booting the test guest instead"
# With a scratch disk and an entropy device, which the test guest drives.
truncate -s 1M "$BUILD/demo-disk.img"
exec "$cvmm" --kernel "$BUILD/testguest/testguest.elf" --cpus "boot=$cpus" --memory size=256M \
    --disk "path=$BUILD/demo-disk.img" --rng --cmdline "tg.cpus=$cpus tg.mem=256M tg.virtio=2"

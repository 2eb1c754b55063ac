#!/usr/bin/env bash
# `make demo` after the build: boots Debian's cloud kernel with a busybox
# shell under cvmm, its console on this terminal. tests/lib/linux-guest.sh
# decides where: directly where the host's KVM runs Linux, else nested inside
# a QEMU/TCG machine (one line says why). Only where neither works does the
# freestanding test guest boot instead.
set -u
BUILD=${1:?usage: demo.sh BUILD_DIR}
export BUILD
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/tests/lib/linux-guest.sh"
cvmm=$BUILD/cvmm
cpus=2

linux_guest_mode
case $? in
    0) ;;
    1) echo "cvmm demo: $LINUX_GUEST_WHY; booting the test guest instead"
       # With a scratch disk and an entropy device, which the test guest drives.
       truncate -s 1M "$BUILD/demo-disk.img"
       exec "$cvmm" --kernel "$BUILD/testguest/testguest.elf" --cpus "boot=$cpus" --memory size=256M \
           --disk "path=$BUILD/demo-disk.img" --rng --cmdline "tg.cpus=$cpus tg.mem=256M tg.virtio=2";;
    *) echo "cvmm demo: $LINUX_GUEST_WHY"; exit 1;;
esac
linux_guest_prepare || exit 1
linux=$BUILD/linux
tmp=$(mktemp -d /tmp/cvmm-demo.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
cat >"$tmp/shell.sh" <<'EOS'
echo "cvmm demo: busybox shell on the serial console; 'exit' resets the VM"
setsid cttyhack sh -l
EOS
LINUX_DIR=$linux "$root/images/linux/mkinitrd.sh" "$tmp/initrd-demo.gz" "$tmp/shell.sh" || exit 1
cmdline="console=ttyS0 panic=-1 reboot=k quiet"

if [ "$LINUX_GUEST_MODE" = direct ]; then
    echo "cvmm demo: booting Linux ($(cat "$linux/version")) with $cpus CPUs"
    truncate -s 64M "$BUILD/demo-disk.img"
    "$cvmm" --kernel "$linux/vmlinuz" --initramfs "$tmp/initrd-demo.gz" --cpus "boot=$cpus" \
        --memory size=512M --disk "path=$BUILD/demo-disk.img" --rng --cmdline "$cmdline"
    exit $?
fi

# Nested: the outer machine runs cvmm on its own serial console, which QEMU
# connects to this terminal.
cat >"$tmp/outer.sh" <<EOS
echo "cvmm demo: booting Linux ($(cat "$linux/version")) with $cpus CPUs under cvmm in the nested machine"
truncate -s 64M /tmp/demo-disk.img
"\$CVMM" --kernel "\$GUEST_KERNEL" --initramfs initrd-demo.gz --cpus boot=$cpus --memory size=512M \\
    --disk path=/tmp/demo-disk.img --rng --cmdline "$cmdline"
EOS
echo "cvmm demo: nested: $LINUX_GUEST_WHY"
echo "cvmm demo: QEMU/TCG is slow; Linux under cvmm reaches its shell in about a minute (Ctrl-A x quits QEMU)"
initrd=$(nested_initrd demo "$tmp/outer.sh" "$tmp/initrd-demo.gz") || exit 1
trap 'rm -rf "$tmp" "$(dirname "$initrd")"' EXIT
mapfile -t args < <(NESTED_APPEND=loglevel=1 nested_qemu_args "$initrd")
"$NESTED_QEMU" "${args[@]}" -serial mon:stdio

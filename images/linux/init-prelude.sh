#!/bin/busybox sh
# shellcheck shell=dash
# /init of every cvmm test initramfs (images/linux/mkinitrd.sh): sets up a
# minimal system, loads the virtio modules, runs the test's script
# (/test.sh) and resets the machine. Lines for the host to parse start
# with "CVMM-INIT:".
/bin/busybox mkdir -p /proc /sys /dev /tmp /sbin /usr/bin /usr/sbin
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
# The kernel found no /dev/console in the initramfs; take it from devtmpfs.
exec </dev/console >/dev/console 2>&1

echo "CVMM-INIT: start $(uname -r) cpus=$(grep -c ^processor /proc/cpuinfo)"
while read -r m; do
    insmod "/lib/modules/$m.ko" || echo "CVMM-INIT: insmod $m failed"
done </lib/modules/order

sh /test.sh
echo "CVMM-INIT: done rc=$?"
sync
reboot -f

#!/bin/sh
# /test.sh of the arm64 guest that arm64_linux.sh boots under the aarch64
# cvmm (inside QEMU). What it does comes from the command line (a64.mode=):
#   reboot    report CPUs and return: /init then reboots (PSCI SYSTEM_RESET)
#   poweroff  report CPUs and power off (PSCI SYSTEM_OFF)
#   echo      ask the host for a line on the console and print it back
#   devices   the virtio device checks of virtio_linux_guest.sh (/virtio.sh)
# Lines for the host start with "A64G:" (and "VL:" from /virtio.sh).
mode=$(sed -n 's/.*a64\.mode=\([a-z]*\).*/\1/p' /proc/cmdline)
echo "A64G: mode=$mode cpus=$(grep -c ^processor /proc/cpuinfo) online=$(cat /sys/devices/system/cpu/online)"
case $mode in
poweroff)
    echo "A64G: powering off"
    sync
    poweroff -f
    ;;
echo)
    echo "A64G: ready for a line"
    read -r line
    echo "A64G: got '$line'"
    ;;
devices)
    sh /virtio.sh
    ;;
esac

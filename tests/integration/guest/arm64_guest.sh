#!/bin/sh
# /test.sh of the arm64 guest that arm64_linux.sh boots under the aarch64
# cvmm (inside QEMU). What it does comes from the command line (a64.mode=):
#   mmio  the virtio device checks of arm64_virtio.sh (/virtio.sh),
#         then ask the host for a line on the console and print it back,
#         then return: /init reboots (PSCI SYSTEM_RESET)
#   pci   the device checks, then power off (PSCI SYSTEM_OFF)
# Lines for the host start with "A64G:" (and "VL:" from /virtio.sh).
mode=$(sed -n 's/.*a64\.mode=\([a-z]*\).*/\1/p' /proc/cmdline)
echo "A64G: mode=$mode cpus=$(grep -c ^processor /proc/cpuinfo) online=$(cat /sys/devices/system/cpu/online)"
sh /virtio.sh
case $mode in
mmio)
    echo "A64G: ready for a line"
    read -r line
    echo "A64G: got '$line'"
    ;;
pci)
    echo "A64G: powering off"
    sync
    poweroff -f
    ;;
esac

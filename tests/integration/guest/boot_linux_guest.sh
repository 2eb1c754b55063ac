#!/bin/sh
# /test.sh of boot_linux.sh's initramfs: reports what Linux sees of its
# machine on the serial console ("BL:" lines), then ends the way the command
# line asks (bl.end=poweroff|reboot|panic|shell; shell reads commands from
# the serial console).
arg() { sed -n "s/.*$1=\([^ ]*\).*/\1/p" /proc/cmdline; }

# RAM from the firmware map the kernel was given (the e820 map).
ram=0; high=no
for d in /sys/firmware/memmap/*; do
    [ "$(cat "$d/type")" = "System RAM" ] || continue
    start=$(cat "$d/start"); end=$(cat "$d/end")
    ram=$((ram + end - start + 1))
    [ $((start >= 0x100000000)) -eq 1 ] && high=yes
done
echo "BL: cpus=$(grep -c ^processor /proc/cpuinfo) online=$(cat /sys/devices/system/cpu/online) ram_kib=$((ram / 1024)) above_4g=$high memtotal_kib=$(awk '/^MemTotal/ {print $2}' /proc/meminfo) tsc_deadline=$(grep -qw tsc_deadline_timer /proc/cpuinfo && echo yes || echo no)"
echo "BL: token=$(arg bl.token)"
echo "BL: initramfs=$(cat /bl-marker)"
case $(arg bl.end) in
    poweroff) poweroff -f;;
    reboot) reboot -f;;
    panic) echo 1 >/proc/sys/kernel/sysrq; echo c >/proc/sysrq-trigger;;
    shell) echo "BL: shell ready"; exec sh -i;;
esac
echo "BL: bl.end=$(arg bl.end) did not end the machine"

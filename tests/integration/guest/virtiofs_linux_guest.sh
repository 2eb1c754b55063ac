#!/bin/sh
# /test.sh of virtiofs_linux.sh's initramfs: Debian's virtiofs driver on
# cvmm's --fs, served by virtiofsd on the host. Mounts the tag from
# vf.tag=, reads the host's files, writes, renames and deletes its own,
# resets the device (driver unbound and bound) and mounts again, then waits for the host to kill virtiofsd and reports the device status
# (DEVICE_NEEDS_RESET, 0x40, expected). Reports in "VF:" lines; the host
# side is tests/integration/host/virtiofs_linux_run.sh.
arg() { sed -n "s/.*$1=\([^ ]*\).*/\1/p" /proc/cmdline; }
md5() { md5sum | cut -d' ' -f1; }
say() { echo "VF: $*"; }
# What the kernel said about the device, for a failure's report.
klog() { dmesg | grep -i 'virtio\|fuse' | tail -n 20; }
tag=$(arg vf.tag)

fsdev=
i=0
while [ -z "$fsdev" ] && [ $i -lt 100 ]; do
    for d in /sys/bus/virtio/devices/*; do
        [ "$(cat "$d/device" 2>/dev/null)" = 0x001a ] && fsdev=$d
    done
    [ -n "$fsdev" ] || sleep 0.1
    i=$((i + 1))
done
[ -n "$fsdev" ] || { say "no virtio-fs device"; klog; exit 1; }
say "device $(basename "$fsdev") status=$(cat "$fsdev/status")"
mkdir -p /mnt
mount -t virtiofs "$tag" /mnt || { say "mount of $tag failed"; klog; exit 1; }
say "mounted $(grep " /mnt " /proc/mounts | cut -d' ' -f1,3)"
say "host file md5=$(md5 </mnt/host.bin)"
say "hello [$(cat /mnt/hello.txt)]"
dd if=/dev/urandom of=/tmp/g.bin bs=1M count=4 2>/dev/null
cp /tmp/g.bin /mnt/guest.bin && say "guest file md5=$(md5 </tmp/g.bin)"
mkdir /mnt/dir && echo "written by the guest" >/mnt/dir/note.tmp && mv /mnt/dir/note.tmp /mnt/dir/note.txt &&
    say "renamed"
rm /mnt/delete-me && say "deleted"
sync
# Read back through FUSE, not the page cache.
echo 3 >/proc/sys/vm/drop_caches
say "guest file read back md5=$(md5 </mnt/guest.bin)"
# A device reset with the back-end there: unmount, unbind and bind the
# driver (cvmm stops the rings and hands them over again), mount again.
dev=$(basename "$fsdev")
umount /mnt && echo "$dev" >/sys/bus/virtio/drivers/virtiofs/unbind &&
    echo "$dev" >/sys/bus/virtio/drivers/virtiofs/bind && mount -t virtiofs "$tag" /mnt &&
    say "remounted after a device reset: [$(cat /mnt/dir/note.txt)] status=$(cat "$fsdev/status")"
say "files written"

# The host checks the files, then kills virtiofsd: the device must say
# DEVICE_NEEDS_RESET. Nothing may touch /mnt from here on: its requests
# would never complete.
i=0
st=$(cat "$fsdev/status")
while [ $((st & 0x40)) -eq 0 ] && [ $i -lt 1200 ]; do
    sleep 0.1
    i=$((i + 1))
    st=$(cat "$fsdev/status")
done
say "status after the back-end went=$st"
# /init's sync would wait for the lost back-end: reset without it, once the
# lines above are out on the serial port.
sleep 1
reboot -n -f

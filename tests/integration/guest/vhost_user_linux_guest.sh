#!/bin/sh
# /test.sh of vhost_user_linux.sh's initramfs: a Linux guest whose disks and
# network are served by vhost-user back-ends through cvmm's front-end: vda
# by `cvmm --block-backend`, vdb by qemu-storage-daemon, eth0 by `cvmm
# --net-backend`. Reports on the serial console in "VL:" lines; the host
# side (tests/integration/host/vhost_user_linux_run.sh) checks them, acts on
# some (resizes the images, kills and restarts the back-ends) and checks
# what it sees itself. Commands from the host come as lines on hvc0 (an
# in-process virtio-console, so they do not depend on the devices under
# test): "stop" ends the load. /pat (4 MiB, random, made by the host) is
# what the guest writes and sends, so the host checks the images and the
# stream itself: a nested guest computes slowly. From the command line:
# vl.host=A.B.C.D (the guest takes .2 of the same /24), vl.port=P (the
# host listens on P, P+1 and P+3, the guest on P+2), vl.pat=MD5 of the
# first MiB of /pat, vl.want=MD5 of what the host sends over TCP.
arg() { sed -n "s/.*$1=\([^ ]*\).*/\1/p" /proc/cmdline; }
host=$(arg vl.host) port=$(arg vl.port)
guest=${host%.*}.2

wait_for() {   # PATH: up to 20 s
    i=0
    while [ ! -e "$1" ] && [ $i -lt 200 ]; do sleep 0.1; i=$((i + 1)); done
    [ -e "$1" ]
}
md5() { md5sum | cut -d' ' -f1; }
# The virtioN a device hangs off, and the interrupts of its named vectors
# (MSI-X, so PCI only): "name=count" for each.
virtio_of() { basename "$(readlink -f "$1/device")"; }
irqs() {
    grep " $1-" /proc/interrupts | awk '{ printf "%s=%d ", $NF, $2 + $3 }'
}

if ! wait_for /dev/hvc0 || ! wait_for /dev/vda || ! wait_for /dev/vdb || ! wait_for /sys/class/net/eth0; then
    echo "VL: devices missing: $(ls /dev/hvc0 /dev/vd* /sys/class/net 2>&1 | tr '\n' ' ')"
    exit 1
fi
stty -F /dev/hvc0 -echo
(while read -r cmd; do
    touch "/tmp/cmd-$cmd"
    echo "VL: $cmd at $(cut -d' ' -f1 /proc/uptime) s"
done </dev/hvc0) &
blkv=$(virtio_of /sys/block/vda) qsdv=$(virtio_of /sys/block/vdb) netv=$(virtio_of /sys/class/net/eth0)
echo "VL: blk is $blkv"
echo "VL: qsd is $qsdv"
echo "VL: net is $netv"
# Where the time goes, for whoever reads the console.
phase() { echo "VL: phase $1 at $(cut -d' ' -f1 /proc/uptime) s"; }
phase data

# Data: 1 MiB at offset 0 of each disk, flushed, read back past the page
# cache; the host finds it in the images.
for d in vda vdb; do
    echo "VL: $d size=$(cat /sys/block/$d/size) serial=$(cat /sys/block/$d/serial 2>/dev/null)"
    dd if=/pat of=/dev/$d bs=64k count=16 conv=fsync 2>/dev/null || echo "VL: $d write failed"
done
echo 3 >/proc/sys/vm/drop_caches
for d in vda vdb; do
    got=$(dd if=/dev/$d bs=64k count=16 iflag=direct 2>/dev/null | md5)
    [ "$got" = "$(arg vl.pat)" ] && echo "VL: $d read back ok" || echo "VL: $d read back $got"
done

# Resize: the host grows both images. cvmm --block-backend tells the
# front-end (CONFIG_CHANGE_MSG), which raises a config interrupt;
# qemu-storage-daemon 7.2 sends nothing on block_resize, so vdb grows only
# when the front-end fetches the config again, at reconnect (below).
phase resize
a0=$(cat /sys/block/vda/size) b0=$(cat /sys/block/vdb/size)
echo "VL: irqs before resize: $(irqs "$blkv") $(irqs "$qsdv")"
echo "VL: resize ready"
i=0
while [ "$(cat /sys/block/vda/size)" = "$a0" ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
echo "VL: vda resized $a0 -> $(cat /sys/block/vda/size)"
echo "VL: vdb before reconnect $b0 -> $(cat /sys/block/vdb/size)"
echo "VL: irqs after resize: $(irqs "$blkv") $(irqs "$qsdv")"

# Network: ping the host, be pinged, TCP both ways.
phase net
ip link set eth0 up
ip addr add "$guest/24" dev eth0
ping -c 3 -W 5 "$host" >/dev/null 2>&1 && echo "VL: ping ok" || echo "VL: ping failed"
mkfifo /tmp/hold
exec 5<>/tmp/hold
# The host pings us and then reports how that went on port+2.
timeout 300 nc -l -p $((port + 2)) </tmp/hold >/tmp/hostmsg &
listener=$!
echo "VL: net up"
dd if=/pat bs=64k count=16 2>/dev/null | nc "$host" "$port" && echo "VL: tcp sent"
nc "$host" $((port + 1)) </tmp/hold >/tmp/got
got=$(md5 </tmp/got)
[ "$got" = "$(arg vl.want)" ] && echo "VL: tcp received ok" || echo "VL: tcp received $got"
wait $listener
echo "VL: host says [$(cat /tmp/hostmsg)]"
rm -f /tmp/got

# Load while the host kills and restarts each back-end: both disks written
# 64 KiB at a time (O_DIRECT, from 16 MiB on; chunk k is /pat's chunk k mod
# 64) and a TCP stream to the host (/pat's 64 KiB chunks in turn), until the
# host says stop (or a cap). Each disk's load reports its progress and, at
# the end, how many chunks it wrote and how many writes failed; the stream,
# how many chunks went into nc and nc's exit status.
blkload() {   # DEV
    k=0 errors=0
    while [ ! -e /tmp/cmd-stop ] && [ $k -lt 1536 ]; do
        dd if=/pat of=/dev/$1 bs=64k count=1 skip=$((k % 64)) seek=$((256 + k)) oflag=direct 2>/dev/null ||
            errors=$((errors + 1))
        k=$((k + 1))
        [ $((k % 8)) -eq 0 ] && echo "VL: load $1 k=$k at $(cut -d' ' -f1 /proc/uptime) s"
    done
    echo "VL: load $1 done chunks=$k errors=$errors"
}
netload() {
    n=0
    while [ ! -e /tmp/cmd-stop ] && [ $n -lt 1536 ]; do
        dd if=/pat bs=64k count=1 skip=$((n % 64)) 2>/dev/null
        n=$((n + 1))
        echo $n >/tmp/stream-chunks
    done | nc "$host" $((port + 3))
    echo "VL: stream done nc=$? chunks=$(cat /tmp/stream-chunks 2>/dev/null)"
}
phase load
blkload vda &
a=$!
blkload vdb &
b=$!
netload &
n=$!
echo "VL: load started"
wait $a $b $n
phase done
echo "VL: vdb resized $b0 -> $(cat /sys/block/vdb/size)"
echo "VL: irqs: $(irqs "$blkv") $(irqs "$qsdv") $(irqs "$netv")"

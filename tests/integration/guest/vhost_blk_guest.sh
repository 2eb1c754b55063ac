#!/bin/sh
# /test.sh of the vhost-user-blk tests' initramfs (runs in the QEMU guest
# under /init, see images/linux/mkinitrd.sh). The mode comes from the kernel
# command line (cvmm_blk=MODE); lines for the host start with "CVMM-BLK:".
mode=$(sed -n 's/.*cvmm_blk=\([a-z]*\).*/\1/p' /proc/cmdline)
dev=/dev/vda
i=0
while [ ! -b $dev ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
if [ ! -b $dev ]; then
    echo "CVMM-BLK: no $dev"
    exit 1
fi
echo "CVMM-BLK: size $(cat /sys/block/vda/size) ro $(cat /sys/block/vda/ro) serial $(cat /sys/block/vda/serial 2>/dev/null) mq $(ls /sys/block/vda/mq | wc -l)"

# Writes N MiB of fresh random data at MiB offset OFF, reads it back past
# the page cache and reports both checksums.
write_check() {
    n=$1 off=$2
    dd if=/dev/urandom of=/tmp/pat bs=1M count="$n" 2>/dev/null
    want=$(md5sum </tmp/pat | cut -d' ' -f1)
    dd if=/tmp/pat of=$dev bs=1M seek="$off" conv=fsync 2>/dev/null
    wrc=$?
    echo 3 >/proc/sys/vm/drop_caches
    got=$(dd if=$dev bs=1M skip="$off" count="$n" 2>/dev/null | md5sum | cut -d' ' -f1)
    echo "CVMM-BLK: write off=$off n=$n rc=$wrc want=$want got=$got"
    rm -f /tmp/pat
}

case "$mode" in
rw)
    write_check 4 1
    # discard: the backend punches a hole, which reads back as zeroes
    dd if=/dev/urandom of=$dev bs=64k count=1 conv=fsync 2>/dev/null
    blkdiscard -o 0 -l 65536 $dev
    drc=$?
    echo 3 >/proc/sys/vm/drop_caches
    zero=$(dd if=/dev/zero bs=64k count=1 2>/dev/null | md5sum | cut -d' ' -f1)
    got=$(dd if=$dev bs=64k count=1 2>/dev/null | md5sum | cut -d' ' -f1)
    [ "$got" = "$zero" ] && echo "CVMM-BLK: discard rc=$drc zeroed" || echo "CVMM-BLK: discard rc=$drc not-zeroed"
    ;;
resize)
    old=$(cat /sys/block/vda/size)
    echo "CVMM-BLK: ready-for-resize $old"
    i=0
    while [ "$(cat /sys/block/vda/size)" = "$old" ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
    echo "CVMM-BLK: resized $(cat /sys/block/vda/size)"
    # the new space is usable
    write_check 1 $(( $(cat /sys/block/vda/size) / 2048 - 1 ))
    ;;
ro)
    dd if=/dev/zero of=$dev bs=4k count=1 conv=fsync 2>/dev/null
    echo "CVMM-BLK: ro-write rc=$?"
    dd if=$dev of=/dev/null bs=64k count=16 2>/dev/null
    echo "CVMM-BLK: ro-read rc=$?"
    ;;
stress)
    # Long writes the host interrupts by killing the back-end.
    dd if=/dev/urandom of=/tmp/pat bs=1M count=4 2>/dev/null
    want=$(md5sum </tmp/pat | cut -d' ' -f1)
    chunks=$(( $(cat /sys/block/vda/size) / 8192 ))
    echo "CVMM-BLK: writing $chunks chunks"
    # Direct I/O of 1 MiB requests, each copy followed by a flush: the
    # guest produces requests cheaply, so the back-end spends most of its
    # time inside them and a kill is likely to leave some in flight. Every
    # chunk is written once, so a lost write shows up in the check below.
    k=0
    while [ $k -lt $chunks ]; do
        dd if=/tmp/pat of=$dev bs=1M seek=$((k * 4)) count=4 oflag=direct conv=fsync,notrunc 2>/dev/null ||
            echo "CVMM-BLK: dd $k failed"
        k=$((k + 1))
    done
    echo 3 >/proc/sys/vm/drop_caches
    bad=0 k=0
    while [ $k -lt $chunks ]; do
        got=$(dd if=$dev bs=64k skip=$((k * 64)) count=64 2>/dev/null | md5sum | cut -d' ' -f1)
        [ "$got" = "$want" ] || bad=$((bad + 1))
        k=$((k + 1))
    done
    echo "CVMM-BLK: stress chunks=$chunks want=$want bad=$bad"
    ;;
*)
    echo "CVMM-BLK: unknown mode '$mode'"
    ;;
esac

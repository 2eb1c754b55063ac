#!/bin/sh
# /virtio.sh of arm64_linux.sh's inner guest (run by arm64_guest.sh): cvmm's
# in-process virtio-blk, virtio-net, virtio-rng and virtio-console, and a
# vhost-user disk (vl.vudisk=1), driven by Linux's own drivers. Lighter
# than virtio_linux_guest.sh (1 MiB of data, one queue each, TCP one way):
# here the guest runs under two levels of emulation. Lines for the host
# start with "VL:". The host address comes from the command line
# (vl.host=A.B.C.D, the guest takes .2 of its /24).
host=$(sed -n 's/.*vl\.host=\([0-9.]*\).*/\1/p' /proc/cmdline)
guest=${host%.*}.2

wait_for() {   # PATH: up to 10 s
    i=0
    while [ ! -e "$1" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
    [ -e "$1" ]
}

# disk_by_serial PREFIX: the /dev node of the virtio disk whose serial (GET_ID:
# the image's file name) starts with PREFIX, waiting up to 10 s for it.
disk_by_serial() {
    i=0
    while [ $i -lt 100 ]; do
        for d in /sys/block/vd*; do
            grep -q "^$1" "$d/serial" 2>/dev/null && { echo "/dev/${d##*/}"; return 0; }
        done
        sleep 0.1
        i=$((i + 1))
    done
    return 1
}

# Disk (cvmm's in-process virtio-blk): 1 MiB of random data at offset 0,
# read back past the page cache.
dd if=/dev/urandom of=/tmp/pat bs=64k count=16 2>/dev/null
want=$(md5sum </tmp/pat | cut -d' ' -f1)
if disk=$(disk_by_serial disk-); then
    dd if=/tmp/pat of="$disk" bs=64k conv=fsync 2>/dev/null
    echo 3 >/proc/sys/vm/drop_caches
    got=$(dd if="$disk" bs=64k count=16 2>/dev/null | md5sum | cut -d' ' -f1)
    echo "VL: disk want=$want got=$got"
else
    echo "VL: disk missing"
fi

# The vhost-user disk (cvmm --block-backend beside cvmm): 64 KiB.
if grep -q 'vl\.vudisk=1' /proc/cmdline; then
    if disk=$(disk_by_serial vudisk-); then
        dd if=/dev/urandom of=/tmp/vupat bs=64k count=1 2>/dev/null
        vuwant=$(md5sum </tmp/vupat | cut -d' ' -f1)
        dd if=/tmp/vupat of="$disk" bs=64k conv=fsync 2>/dev/null
        echo 3 >/proc/sys/vm/drop_caches
        vugot=$(dd if="$disk" bs=64k count=1 2>/dev/null | md5sum | cut -d' ' -f1)
        echo "VL: vudisk want=$vuwant got=$vugot"
    else
        echo "VL: vudisk missing"
    fi
fi

# Entropy: 64 bytes from the virtio-rng, which must be the current source.
if wait_for /dev/hwrng; then
    echo "VL: rng current=$(cat /sys/class/misc/hw_random/rng_current) bytes=$(head -c 64 /dev/hwrng | od -An -tx1 | tr -d ' \n')"
else
    echo "VL: rng missing"
fi

# Console: a line the host finds in --console file=.
if wait_for /dev/hvc0; then
    echo "VL: hello over hvc0" >/dev/hvc0
    echo "VL: console written"
else
    echo "VL: console missing"
fi

# Network: ping the host behind the tap, then send it the disk pattern over TCP.
if wait_for /sys/class/net/eth0; then
    ip link set eth0 up
    ip addr add "$guest/24" dev eth0
    ping -c 3 -W 5 "$host" >/dev/null 2>&1 && echo "VL: ping ok" || echo "VL: ping failed"
    nc -w 10 "$host" 5678 </tmp/pat && echo "VL: tcp sent $want" || echo "VL: tcp failed"
else
    echo "VL: net missing"
fi

#!/bin/sh
# /test.sh of virtio_linux.sh's initramfs: a Linux guest (2 vCPUs) with
# cvmm's in-process virtio-blk (vda: 2 queues; vdb: readonly=on),
# virtio-net (2 queue pairs), virtio-rng and virtio-console, all driven by
# Debian's own modules. Reports on the serial console in "VL:" lines; the
# host side (tests/integration/host/virtio_linux_run.sh) checks them and
# what it sees itself. From the command line: vl.host=A.B.C.D (the guest
# takes .2 of the same /24), vl.want=MD5 of what the host sends over TCP.
arg() { sed -n "s/.*$1=\([^ ]*\).*/\1/p" /proc/cmdline; }
host=$(arg vl.host)
guest=${host%.*}.2

wait_for() {   # PATH: up to 20 s
    i=0
    while [ ! -e "$1" ] && [ $i -lt 200 ]; do sleep 0.1; i=$((i + 1)); done
    [ -e "$1" ]
}
md5() { md5sum | cut -d' ' -f1; }

# Console: say when hvc0 is open, read the host's line, answer on hvc0.
if wait_for /dev/hvc0; then
    exec 4<>/dev/hvc0
    stty -F /dev/hvc0 -echo
    echo "VL: console ready"
    if read -t 60 -r line <&4; then
        echo "VL: hvc0 got [$line]"
        echo "VL: hvc0 answer to [$line]" >&4
    else
        echo "VL: hvc0 read nothing"
    fi
    exec 4>&-
else
    echo "VL: console missing"
fi

# Entropy: 64 bytes from /dev/hwrng, which must be the virtio-rng.
if wait_for /dev/hwrng; then
    echo "VL: rng current=$(cat /sys/class/misc/hw_random/rng_current) bytes=$(head -c 64 /dev/hwrng | od -An -tx1 | tr -d ' \n')"
else
    echo "VL: rng missing"
fi

# Disk: the writable one is vda (first --disk), the readonly=on one vdb.
if wait_for /dev/vda && wait_for /dev/vdb; then
    echo "VL: vda ro=$(cat /sys/block/vda/ro) queues=$(ls /sys/block/vda/mq | wc -l) cache=$(tr ' ' _ </sys/block/vda/queue/write_cache) discard_max=$(cat /sys/block/vda/queue/discard_max_bytes)"
    echo "VL: vdb ro=$(cat /sys/block/vdb/ro)"
    # 16 MiB at offset 0, flushed (conv=fsync ends in a FLUSH with a
    # write-back cache), read back past the page cache.
    dd if=/dev/urandom of=/tmp/pat bs=1M count=16 2>/dev/null
    dd if=/tmp/pat of=/dev/vda bs=1M conv=fsync 2>/dev/null && echo "VL: disk written and flushed"
    echo 3 >/proc/sys/vm/drop_caches
    echo "VL: disk want=$(md5 </tmp/pat) got=$(dd if=/dev/vda bs=1M count=16 2>/dev/null | md5)"
    # Discard: 4 MiB at 32 MiB, written first so zeros there prove it.
    dd if=/tmp/pat of=/dev/vda bs=1M seek=32 count=4 conv=fsync 2>/dev/null
    blkdiscard -o $((32 << 20)) -l $((4 << 20)) /dev/vda && echo "VL: discard done"
    # Both queues: I/O from each vCPU goes through that CPU's hardware queue.
    for cpu in 0 1; do
        taskset -c $cpu dd if=/dev/vda of=/dev/null bs=4k count=256 iflag=direct 2>/dev/null
    done
    # The completion interrupts of each virtqueue (MSI-X, so PCI only; the
    # hardware queues' "run" counts miss directly issued requests).
    for q in 0 1; do
        irqs=$(grep "virtio[0-9]*-req\.$q\$" /proc/interrupts | awk '{ print $2 + $3 }')
        echo "VL: vda queue $q cpus=$(cat /sys/block/vda/mq/$q/cpu_list) irqs=${irqs:-none}"
    done
    # readonly=on: the write must fail, whatever the kernel thinks of it.
    blockdev --setrw /dev/vdb 2>/dev/null
    if dd if=/tmp/pat of=/dev/vdb bs=1M count=1 oflag=direct 2>/dev/null; then
        echo "VL: vdb write accepted"
    else
        echo "VL: vdb write refused"
    fi
else
    echo "VL: disk missing"
fi

# Network: two queue pairs; a TCP connection from each vCPU (XPS sends on
# that CPU's TX queue, the tap steers the replies to the matching RX queue).
if wait_for /sys/class/net/eth0; then
    ip link set eth0 up
    ip addr add "$guest/24" dev eth0
    echo "VL: net queues=$(ls -d /sys/class/net/eth0/queues/rx-* | wc -l)"
    ping -c 3 -W 5 "$host" >/dev/null 2>&1 && echo "VL: ping ok" || echo "VL: ping failed"
    mkfifo /tmp/hold
    exec 5<>/tmp/hold
    # The host pings us and then reports how that went on port 5680.
    timeout 120 nc -l -p 5680 </tmp/hold >/tmp/hostmsg &
    listener=$!
    echo "VL: net up"
    head -c $((4 << 20)) /tmp/pat >/tmp/net
    taskset -c 0 nc "$host" 5678 </tmp/net && echo "VL: tcp sent $(md5 </tmp/net)"
    taskset -c 1 nc "$host" 5679 </tmp/hold >/tmp/got
    got=$(md5 </tmp/got)
    [ "$got" = "$(arg vl.want)" ] && echo "VL: tcp received ok" || echo "VL: tcp received $got"
    wait $listener
    echo "VL: host says [$(cat /tmp/hostmsg)]"
    exec 5>&-
    ethtool -S eth0 | sed -n 's/^ *\([rt]x_queue_[01]_packets\): \([0-9]*\)/VL: net \1=\2/p'
else
    echo "VL: net missing"
fi

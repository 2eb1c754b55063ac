#!/bin/sh
# The host side of virtio_linux.sh (busybox sh; runs directly or in the
# nested machine, see tests/lib/linux-guest.sh): boots Debian's kernel under
# cvmm with every in-process device, once per transport, and prints one
# PASS/FAIL line per property. The guest's side is
# tests/integration/guest/virtio_linux_guest.sh; what this side checks
# itself: the disk images, the tap (ping, TCP both ways), the console.
. "$FILES/run_lib.sh"
# Console input goes to cvmm through a fifo: if cvmm has ended, a write must
# fail (EPIPE) rather than kill this script before it reports why.
trap '' PIPE
vl() { tr -d '\r' <"$ser" | sed -n "s/^VL: $1/\1/p" | head -n 1; }
gt0() { [ "${1:-0}" -gt 0 ] 2>/dev/null; }

hostip=10.79.0.1 guestip=10.79.0.2
mkfifo hold
exec 5<>hold
zero4m=$(dd if=/dev/zero bs=1M count=4 2>/dev/null | md5)

for t in pci mmio; do
    disk=disk-$t.img ro=ro-$t.img ser=ser-$t.out con=con-$t.out
    truncate -s 64M "$disk"
    dd if=/dev/urandom of="$ro" bs=1M count=16 2>/dev/null
    ro_md5=$(md5 <"$ro")
    dd if=/dev/urandom of="tx-$t.bin" bs=1M count=4 2>/dev/null
    tx_md5=$(md5 <"tx-$t.bin")
    timeout 600 nc -l -p 5678 <hold >"rx-$t.bin" &
    sink=$!
    timeout 600 nc -l -p 5679 <"tx-$t.bin" &
    source=$!
    mkfifo "con-$t.in"
    start=$(date +%s)
    timeout 400 "$CVMM" --kernel "$GUEST_KERNEL" --initramfs initrd.gz --cpus boot=2 --memory size=512M \
        --transport "$t" --disk "path=$disk,num_queues=2" --disk "path=$ro,readonly=on" \
        --net "tap=vltap0,ip=$hostip,mask=255.255.255.0,num_queues=4" --rng \
        --serial "file=$ser" --console tty \
        --cmdline "console=ttyS0 panic=-1 reboot=k vl.host=$hostip vl.want=$tx_md5" \
        <"con-$t.in" >"$con" 2>"err-$t" &
    pid=$!
    # Read-write: that open of the FIFO does not wait for cvmm to open it, so
    # no signal can interrupt it (one did, "can't create ...: Interrupted
    # system call", and busybox sh ended the script at the failed exec).
    exec 3<>"con-$t.in"
    if wait_for "$ser" '^VL: console ready' 300; then
        echo "hello-from-host-$t" >&3
    fi
    if wait_for "$ser" '^VL: net up' 300; then
        ping -c 3 -W 5 "$guestip" >/dev/null 2>&1 && msg="ping ok" || msg="ping failed"
        echo "$msg" | timeout 60 nc "$guestip" 5680
    fi
    wait $pid; rc=$?
    exec 3>&-
    kill $sink $source 2>/dev/null
    wait $sink $source 2>/dev/null
    echo "    $t: cvmm exited $rc after $(($(date +%s) - start)) s"
    tr -d '\r' <"$ser" | grep '^VL:' | sed "s/^/    $t: /"
    [ $rc -eq 0 ] || tail -n 30 "$ser" "err-$t" | sed "s/^/    $t: /"

    check "$t: cvmm exited 0" [ $rc -eq 0 ]
    # Things Linux complained about at probe before (issue 8).
    check "$t: the ECAM window is announced (no 'fail to add MMCONFIG')" lacks "$ser" 'fail to add MMCONFIG'
    check "$t: PCI interrupt routing is described (_PRT)" lacks "$ser" "can't derive routing"
    check "$t: no capacity change at probe" lacks "$ser" 'capacity change'
    check "$t: no virtio probe failures" lacks "$ser" 'probe of virtio[0-9]* failed\|bad capability len'
    # virtio-blk
    check "$t: blk: vda has two queues" has "$ser" '^VL: vda ro=0 queues=2 '
    # Per-queue evidence needs a vector per queue: MSI-X, so PCI only.
    if [ "$t" = pci ]; then
        q0=$(vl 'vda queue 0 .*irqs=\([0-9]*\)'); q1=$(vl 'vda queue 1 .*irqs=\([0-9]*\)')
        check "$t: blk: both virtqueues interrupted on completion (MSI-X: $q0, $q1)" eval 'gt0 "$q0" && gt0 "$q1"'
    fi
    want=$(vl 'disk want=\([0-9a-f]*\) got=.*')
    check "$t: blk: 16 MiB written read back intact" has "$ser" "^VL: disk want=$want got=$want\$"
    check "$t: blk: the image holds the guest's 16 MiB" \
        [ -n "$want" -a "$(dd if="$disk" bs=1M count=16 2>/dev/null | md5)" = "$want" ]
    check "$t: blk: flush (write-back cache, fsync succeeded)" \
        eval 'has "$ser" "^VL: vda .*cache=write_back" && has "$ser" "^VL: disk written and flushed"'
    check "$t: blk: discard zeroes the range in the image" \
        eval 'has "$ser" "^VL: discard done" && [ "$(dd if="$disk" bs=1M skip=32 count=4 2>/dev/null | md5)" = "$zero4m" ]'
    check "$t: blk: readonly=on is read-only to the guest" has "$ser" '^VL: vdb ro=1$'
    check "$t: blk: readonly=on refuses writes" has "$ser" '^VL: vdb write refused$'
    check "$t: blk: readonly=on image unchanged" [ "$(md5 <"$ro")" = "$ro_md5" ]
    # virtio-net
    check "$t: net: guest pings host" has "$ser" '^VL: ping ok$'
    check "$t: net: host pings guest" has "$ser" '^VL: host says \[ping ok\]$'
    sent=$(vl 'tcp sent \([0-9a-f]*\)')
    check "$t: net: TCP guest -> host, 4 MiB intact" [ -n "$sent" -a "$(md5 <"rx-$t.bin")" = "$sent" ]
    check "$t: net: TCP host -> guest, 4 MiB intact" has "$ser" '^VL: tcp received ok$'
    check "$t: net: two queue pairs" has "$ser" '^VL: net queues=2$'
    for d in rx tx; do
        p0=$(vl "net ${d}_queue_0_packets=\\([0-9]*\\)"); p1=$(vl "net ${d}_queue_1_packets=\\([0-9]*\\)")
        check "$t: net: both $d queues carried packets ($p0, $p1)" eval 'gt0 "$p0" && gt0 "$p1"'
    done
    # virtio-rng
    check "$t: rng: virtio_rng is the guest's hwrng" has "$ser" '^VL: rng current=virtio_rng'
    check "$t: rng: 64 bytes from /dev/hwrng" \
        eval 'has "$ser" "^VL: rng .*bytes=[0-9a-f]\{128\}$" && lacks "$ser" "^VL: rng .*bytes=0\{128\}$"'
    # virtio-console
    check "$t: console: host -> guest line over hvc0" has "$ser" "^VL: hvc0 got \[hello-from-host-$t\]$"
    check "$t: console: guest -> host line over hvc0" has "$con" "^VL: hvc0 answer to \[hello-from-host-$t\]$"
    rm -f "$disk" "$ro" "rx-$t.bin" "tx-$t.bin"
done
echo "virtio_linux: $fails failed"
[ $fails -eq 0 ]

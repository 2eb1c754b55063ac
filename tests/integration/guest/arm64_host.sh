#!/bin/busybox sh
# shellcheck shell=dash
# /init of the arm64 machine arm64_linux.sh boots in QEMU (TCG, EL2, KVM in
# the kernel): it runs the aarch64 cvmm with the arm64 guest (/guest.gz,
# /test.sh = arm64_guest.sh) in each scenario and reports for the x86 side,
# in lines starting with "A64H:", then powers the machine off. Each
# scenario's cvmm output is passed on with the prefix "A64H: <name>| ".
/bin/busybox mkdir -p /proc /sys /dev /tmp /usr/bin /usr/sbin /sbin
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
exec </dev/console >/dev/console 2>&1
insmod /lib/modules/tun.ko || echo "A64H: insmod tun failed"
echo "A64H: up $(uname -r) kvm=$([ -c /dev/kvm ] && echo yes || echo no)"

# run NAME CVMM-ARGS...: one cvmm run, its output passed on, its status reported.
run() {
    name=$1
    shift
    timeout 900 /cvmm "$@" >"/tmp/$name.out" 2>"/tmp/$name.err" </dev/null
    report "$name" $?
}

report() {
    tr -d '\r' <"/tmp/$1.out" | sed "s/^/A64H: $1| /"
    tail -n 5 "/tmp/$1.err" | sed "s/^/A64H: $1 stderr| /"
    echo "A64H: $1 rc=$2"
}

# seccomp_modes PID: "<threads> <mode>" per seccomp mode among PID's threads.
seccomp_modes() {
    cat /proc/"$1"/task/*/status 2>/dev/null | sed -n 's/^Seccomp:[[:space:]]*//p' | sort | uniq -c | tr -s ' \n' ' '
}

# boot NAME CVMM-ARGS...: a guest run whose console takes a typed line,
# sent once the guest asks for it.
boot() {
    name=$1
    shift
    mkfifo "/tmp/$name.in"
    timeout 900 /cvmm "$@" <"/tmp/$name.in" >"/tmp/$name.out" 2>"/tmp/$name.err" &
    pid=$!
    # Read-write: that open of the FIFO does not wait for cvmm to open it, so
    # no signal can interrupt it (one did, "can't create ...: Interrupted
    # system call", and busybox sh ended the script at the failed exec).
    exec 3<>"/tmp/$name.in"
    seccomp=
    be_seccomp=
    while kill -0 $pid 2>/dev/null && ! grep -q 'A64G: ready for a line' "/tmp/$name.out"; do
        # Once the guest runs, every cvmm thread has its filter (mode 2).
        if [ -z "$seccomp" ] && grep -q 'A64G: mode=' "/tmp/$name.out"; then
            seccomp=$(seccomp_modes $pid)
            echo "A64H: $name seccomp modes:$seccomp"
        fi
        # The back-end's threads, last seen while the guest used its disk.
        [ -n "$BE_PID" ] && grep -q 'A64G: mode=' "/tmp/$name.out" && be_seccomp=$(seccomp_modes "$BE_PID")
        sleep 1
    done
    [ -n "$BE_PID" ] && echo "A64H: $name backend seccomp modes:$be_seccomp"
    kill -0 $pid 2>/dev/null && echo "hello from the host console" >&3
    wait $pid
    rc=$?
    exec 3>&-
    report "$name" $rc
}

# --check-host: this KVM runs arm64 Linux (the boots below prove it), so
# the probe must say it can; with /dev/kvm hidden it cannot check.
run checkhost --check-host
mv /dev/kvm /dev/kvm.hidden
run checkhost-nokvm --check-host
mv /dev/kvm.hidden /dev/kvm

BE_PID=
guest="--initramfs /guest.gz --memory size=256M"
# quiet: every console byte is an exit to cvmm, costly under emulation.
base="console=ttyS0 panic=-1 quiet"

# Two boots cover every case (each guest boot costs minutes under TCG):
# mmio: 1 vCPU, plain Image, the devices, a console line, then reboot;
# pci: 2 vCPUs, gzip-compressed Image, the devices, then poweroff.
for transport in mmio pci; do
    case $transport in
    mmio) kernel="--kernel /vmlinuz --cpus boot=1" ;;
    pci) kernel="--kernel /vmlinuz.gz --cpus boot=2" ;;
    esac
    dd if=/dev/zero of=/tmp/disk-$transport.img bs=1M count=8 2>/dev/null
    # A second disk through vhost-user: the arm64 back-end, seccomp on.
    dd if=/dev/zero of=/tmp/vudisk-$transport.img bs=1M count=1 2>/dev/null
    timeout 900 /cvmm --block-backend path=/tmp/vudisk-$transport.img,socket=/tmp/vu-$transport.sock \
        >/tmp/vubackend-$transport.out 2>/tmp/vubackend-$transport.err </dev/null &
    BE_PID=$!
    i=0
    while [ ! -S /tmp/vu-$transport.sock ] && kill -0 $BE_PID 2>/dev/null && [ $i -lt 300 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    # The listener's stdin is a FIFO held open read-write: busybox nc ends
    # the connection at EOF on its stdin.
    mkfifo /tmp/nc-$transport
    nc -l -p 5678 <>/tmp/nc-$transport >/tmp/tcp-$transport &
    nc=$!
    # shellcheck disable=SC2086
    boot devices-$transport $kernel $guest --transport $transport \
        --disk path=/tmp/disk-$transport.img --disk vhost_user=on,socket=/tmp/vu-$transport.sock \
        --rng --console file=/tmp/hvc-$transport \
        --net tap=a64tap0,ip=10.79.0.1,mask=255.255.255.0 \
        --cmdline "$base a64.mode=$transport vl.host=10.79.0.1 vl.vudisk=1"
    kill $nc 2>/dev/null
    kill -TERM $BE_PID
    wait $BE_PID
    report vubackend-$transport $?
    BE_PID=
    echo "A64H: devices-$transport vudisk image=$(head -c 65536 /tmp/vudisk-$transport.img | md5sum | cut -d' ' -f1)"
    echo "A64H: devices-$transport image=$(head -c 1048576 /tmp/disk-$transport.img | md5sum | cut -d' ' -f1)"
    echo "A64H: devices-$transport tcp=$(md5sum </tmp/tcp-$transport | cut -d' ' -f1) bytes=$(wc -c </tmp/tcp-$transport)"
    sed "s/^/A64H: devices-$transport hvc| /" /tmp/hvc-$transport
done

# The device tree, as hex for the x86 side to decode with dtc.
run dtb --kernel /vmlinuz $guest --cpus boot=2 --disk path=/tmp/disk-mmio.img --transport mmio \
    --dump-dtb /tmp/cvmm.dtb --cmdline "$base a64.mode=dtb"
od -An -tx1 -v /tmp/cvmm.dtb | sed 's/^/A64H: dtb-hex /'

# Kernels cvmm must refuse before touching KVM: exit 2, one line.
for bad in /bad/*; do
    run "bad-$(basename "$bad")" --kernel "$bad" $guest
done

echo "A64H: done"
poweroff -f

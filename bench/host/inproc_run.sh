#!/bin/sh
# The host side of bench/inproc.sh (busybox sh; runs directly or in the
# nested machine, see tests/lib/linux-guest.sh): ROUNDS rounds, each booting
# the same guest (initrd.gz: bench/guest/inproc_guest.sh) under cvmm and then
# under QEMU with KVM and its own in-process devices, on the same image and
# the same kind of tap. Prints every round's figures, the medians and the
# cvmm/QEMU ratio of the medians. Env: ROUNDS (3), SECS (per block workload).
ROUNDS=${ROUNDS:-3}
SECS=${SECS:-10}
append="console=ttyS0 panic=-1 reboot=k bench.secs=$SECS bench.host=10.80.0.1"
# QEMU shipped in (nested: with its own loader, libraries and firmware), or
# this host's.
if [ -x qemu/qemu-system-x86_64 ]; then
    qemu() { qemu/ld.so --library-path qemu/lib qemu/qemu-system-x86_64 -L qemu/share "$@"; }
else
    qemu() { qemu-system-x86_64 "$@"; }
fi
dd if=/dev/urandom of=disk.img bs=1M count=256 2>/dev/null
mkfifo hold
exec 5<>hold
WORKLOADS="randread-iops randwrite-iops seqread-mibps seqwrite-mibps net-mibps"

# run NAME ROUND COMMAND...: one boot; "workload value" lines into NAME.ROUND
run() {
    name=$1 round=$2
    shift 2
    timeout 900 nc -l -p 5679 <hold >/dev/null &
    sink=$!
    timeout 900 "$@" >"$name.out" 2>"$name.err" </dev/null
    rc=$?
    kill $sink 2>/dev/null
    wait $sink 2>/dev/null
    [ $rc -eq 0 ] || { echo "inproc: $name round $round exited $rc:"; tail -n 5 "$name.err"; }
    tr -d '\r' <"$name.out" |
        sed -n 's/^BENCH: \([a-z]*\) iops=\([0-9]*\) mibps=\([0-9.]*\)$/\1-iops \2\n\1-mibps \3/p;
                s/^BENCH: net mibps=\([0-9.]*\)$/net-mibps \1/p' >"$name.$round"
    echo "round $round $name: $(awk '{ printf "%s=%s ", $1, $2 }' "$name.$round")"
}

# tap_for_qemu: QEMU creates its tap itself; it is addressed once it exists.
tap_for_qemu() {
    i=0
    while ! ip link show bench1 >/dev/null 2>&1 && [ $i -lt 600 ]; do sleep 0.05; i=$((i + 1)); done
    ip addr add 10.80.0.1/24 dev bench1 && ip link set bench1 up
}

for round in $(seq "$ROUNDS"); do
    run cvmm "$round" "$CVMM" --kernel "$GUEST_KERNEL" --initramfs initrd.gz --cpus boot=2 --memory size=1G \
        --serial tty --disk path=disk.img --net "tap=bench0,ip=10.80.0.1,mask=255.255.255.0" \
        --cmdline "$append"
    tap_for_qemu &
    run qemu "$round" qemu -enable-kvm -cpu host -smp 2 -m 1G -nographic -nodefaults -serial stdio -no-reboot \
        -kernel "$GUEST_KERNEL" -initrd initrd.gz -append "$append" \
        -drive file=disk.img,format=raw,if=none,id=d0,aio=io_uring -device virtio-blk-pci,drive=d0 \
        -netdev tap,id=n0,ifname=bench1,script=no,downscript=no,vhost=off \
        -device virtio-net-pci,netdev=n0,romfile=
    wait
done

# median NAME WORKLOAD: of the rounds that produced the figure
median() {
    for r in $(seq "$ROUNDS"); do awk -v w="$2" '$1 == w { print $2 }' "$1.$r"; done | sort -n |
        awk '{ v[NR] = $1 } END { if (NR) print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
printf '%-18s %12s %12s %8s   (medians of %s rounds)\n' workload cvmm qemu ratio "$ROUNDS"
for w in $WORKLOADS; do
    a=$(median cvmm "$w"); b=$(median qemu "$w")
    if [ -n "$a" ] && [ -n "$b" ]; then
        printf '%-18s %12s %12s %8s\n' "$w" "$a" "$b" "$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2fx", b ? a / b : 0 }')"
    else
        printf '%-18s %12s %12s %8s\n' "$w" "${a:-failed}" "${b:-failed}" "-"
    fi
done

#!/bin/sh
# The host side of bench/inproc.sh (busybox sh; runs directly or in the
# nested machine, see tests/lib/linux-guest.sh): ROUNDS rounds, each booting
# the same guest (initrd.gz: bench/guest/inproc_guest.sh) under cvmm with
# virtio-pci, under cvmm with virtio-mmio, under QEMU with KVM and its own
# in-process devices on virtio-pci (-M pc) and under QEMU on virtio-mmio
# (-M microvm), on the same image and the same kind of tap. Prints every
# round's figures, the medians and the median of the rounds' ratios to
# QEMU's (each cvmm transport to QEMU on PCI, and virtio-mmio to QEMU's
# virtio-mmio). Env: ROUNDS (3), SECS (per block workload), NETMIB (per TCP
# stream), RR (request/response exchanges), VCPUS (2).
ROUNDS=${ROUNDS:-3}
SECS=${SECS:-10}
NETMIB=${NETMIB:-64}
RR=${RR:-1000}
VCPUS=${VCPUS:-2}
append="console=ttyS0 panic=-1 reboot=k bench.secs=$SECS bench.netmib=$NETMIB bench.rr=$RR bench.host=10.80.0.1"
# QEMU shipped in (nested: with its own loader, libraries and firmware, on
# the CPU the outer /init keeps for VMMs, $VMM_CPU), or this host's (a
# command line, split on spaces: timeout runs it).
if [ -x qemu/qemu-system-x86_64 ]; then
    QEMU="${VMM_CPU:-} qemu/ld.so --library-path qemu/lib qemu/qemu-system-x86_64 -L qemu/share"
else
    QEMU=qemu-system-x86_64
fi
dd if=/dev/urandom of=disk.img bs=1M count=256 2>/dev/null
./netload serve 5679 &
server=$!

# now: this host's uptime in seconds (a builtin read, no process started)
now() { read -r up _ </proc/uptime; echo "$up"; }

# run NAME ROUND COMMAND...: one boot; "figure value" lines into NAME.ROUND.
# Time to init: from starting the VMM to the guest's /init printing its
# first line, seen on the serial console as it comes.
run() {
    name=$1 round=$2
    shift 2
    t0=$(now)
    timeout 900 "$@" 2>"$name.err" </dev/null | tr -d '\r' | while IFS= read -r line; do
        case $line in
            "CVMM-INIT: start"*) echo "BENCH: init secs=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }')";;
        esac
        echo "$line"
    done >"$name.out"
    grep -q "CVMM-INIT: done rc=0" "$name.out" || { echo "inproc: $name round $round failed:"; tail -n 5 "$name.err" "$name.out"; }
    sed -n 's/^BENCH: \([a-z0-9-]*\) \([a-z]*\)=\([0-9.]*\)$/\1-\2 \3/p' "$name.out" >"$name.$round"
    echo "round $round $name: $(awk '{ printf "%s=%s ", $1, $2 }' "$name.$round")"
}

# tap_for_qemu: QEMU creates its tap itself; it is addressed once it exists.
tap_for_qemu() {
    i=0
    while ! ip link show bench1 >/dev/null 2>&1 && [ $i -lt 600 ]; do sleep 0.05; i=$((i + 1)); done
    ip addr add 10.80.0.1/24 dev bench1 && ip link set bench1 up
}

for round in $(seq "$ROUNDS"); do
    for t in pci mmio; do
        run "cvmm-$t" "$round" "$CVMM" --kernel "$GUEST_KERNEL" --initramfs initrd.gz --cpus "boot=$VCPUS" \
            --memory size=1G --transport "$t" --serial tty --disk path=disk.img \
            --net "tap=bench0,ip=10.80.0.1,mask=255.255.255.0" --cmdline "$append"
    done
    # The same devices on either bus: virtio-*-pci on -M pc, virtio-*-device
    # (virtio-mmio) on -M microvm.
    for t in pci mmio; do
        if [ $t = pci ]; then name=qemu machine=pc bus=pci net_rom=,romfile=; else
            name=qemu-mmio machine=microvm bus=device net_rom=; fi
        tap_for_qemu &
        run $name "$round" $QEMU -M $machine -enable-kvm -cpu host -smp "$VCPUS" -m 1G -nographic -nodefaults \
            -serial stdio -no-reboot -kernel "$GUEST_KERNEL" -initrd initrd.gz -append "$append" \
            -drive file=disk.img,format=raw,if=none,id=d0,aio=io_uring -device virtio-blk-$bus,drive=d0 \
            -netdev tap,id=n0,ifname=bench1,script=no,downscript=no,vhost=off \
            -device virtio-net-$bus,netdev=n0$net_rom
        wait $!
    done
done
kill $server

# The rounds as one figures file for rounds.sh: "ROUND VMM FIGURE VALUE".
for r in $(seq "$ROUNDS"); do
    for n in cvmm-pci cvmm-mmio qemu qemu-mmio; do
        awk -v r="$r" -v n="$n" '{ print r, n, $1, $2 }' "$n.$r" 2>/dev/null
    done
done >figures
. ./rounds.sh
# ratio A B FIGURE: rounds_ratio of A over B, with "<" after it when A is
# worse than QEMU's B.
ratio() {
    rounds_ratio "$2" "$1" "$3" | awk -v f="$3" '{ printf "%s", $1 }
        $1 != "-" && ((f ~ /-(secs|usecs)$/) ? $1 > 1 : $1 < 1) { printf " <" }'
}
echo "medians of the rounds (of $ROUNDS) that produced the figure; ratio = median of the rounds' cvmm / QEMU (iops, mibps: higher is better; secs, usecs: lower is better; '<' marks cvmm behind); qemu is -M pc with virtio-pci, qemu-mmio -M microvm with virtio-mmio"
printf '%-24s %9s %9s %9s %9s %9s %9s %14s\n' figure cvmm-pci cvmm-mmio qemu qemu-mmio pci/qemu mmio/qemu mmio/qemu-mmio
for w in $(cat cvmm-pci.[0-9]* cvmm-mmio.[0-9]* qemu.[0-9]* qemu-mmio.[0-9]* 2>/dev/null | awk '!seen[$1]++ { print $1 }'); do
    p=$(rounds_median cvmm-pci "$w"); m=$(rounds_median cvmm-mmio "$w"); q=$(rounds_median qemu "$w")
    qm=$(rounds_median qemu-mmio "$w")
    printf '%-24s %9s %9s %9s %9s %9s %9s %14s\n' "$w" "${p:-failed}" "${m:-failed}" "${q:-failed}" \
        "${qm:-failed}" "$(ratio cvmm-pci qemu "$w")" "$(ratio cvmm-mmio qemu "$w")" "$(ratio cvmm-mmio qemu-mmio "$w")"
done

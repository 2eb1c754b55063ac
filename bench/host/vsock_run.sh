#!/bin/sh
# The host side of bench/vsock.sh's in-process comparison (busybox sh; runs
# directly or in the nested machine, see tests/lib/linux-guest.sh): ROUNDS
# rounds, each booting the same Linux guest (initrd.gz, the vsock guest
# script in bench mode) with cvmm --vsock, then with QEMU (KVM) and
# vhost-user-vsock-pci on cvmm --vsock-backend, on the same /dev/kvm. Each
# boot moves BYTES host -> guest and guest -> host (timed by the receiving
# side's vsock-tool) and then opens CONNS connections (16 at a time, each
# an echoed message) timed here. Prints every round, the medians and the
# ratio in-process / back-end. ROUNDS (3), BYTES, CONNS from ./bench.env.
. ./bench.env
ROUNDS=${ROUNDS:-3}
BYTES=${BYTES:-16777216}
CONNS=${CONNS:-200}
t=./vsock-tool
uds=$FILES/vm.vsock
append="console=ttyS0 panic=-1 reboot=k quiet no_timer_check cvmm_vsock=bench cvmm_vsock_bytes=$BYTES cvmm_vsock_cps=$CONNS"
if [ -x qemu/qemu-system-x86_64 ]; then
    qemu() { ${VMM_CPU:-} qemu/ld.so --library-path qemu/lib qemu/qemu-system-x86_64 -L qemu/share "$@"; }
else
    qemu() { qemu-system-x86_64 "$@"; }
fi
field() { printf '%s\n' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
gline() { tr -d '\r' <"$1" | grep -a "^CVMM-VSOCK: $2 " | tail -n 1 | sed "s/^CVMM-VSOCK: $2 //"; }
# listening LOG TAG: until the guest says its TAG server listens (or 900 s,
# or the VM, $vm, has ended).
listening() {
    i=0
    while ! tr -d '\r' 2>/dev/null <"$1" | grep -q "^CVMM-VSOCK: $2 LISTENING" && [ $i -lt 4500 ]; do
        kill -0 "$vm" 2>/dev/null || return 1
        sleep 0.2; i=$((i + 1))
    done
}
csecs() { cut -d' ' -f1 /proc/uptime | tr -d .; }
mibps() { awk -v b="$BYTES" -v ms="$1" 'BEGIN { if (ms > 0) printf "%.1f\n", b / 1048576 / (ms / 1000) }'; }

# measure NAME ROUND: drives one booted guest ($vm, console in NAME.log);
# "metric value" lines into NAME.ROUND
measure() {
    name=$1 round=$2
    timeout 900 $t recv "unix:${uds}_5000" >g2h.out 2>&1 &
    g2h=$!
    # Booting is slow nested (QEMU's firmware most): connect once the
    # guest listens, not within vsock-tool's retry window.
    listening "$name.log" h2g
    h2g=$(timeout 600 $t send "hybrid:$uds:1234" "$BYTES" "$round") || kill $vm $g2h 2>/dev/null
    wait $g2h
    listening "$name.log" cps
    c0=$(csecs)
    m=$(timeout 600 $t multi "hybrid:$uds:1236" "$CONNS" 16) || kill $vm 2>/dev/null
    c1=$(csecs)
    wait $vm
    : >"$name.$round"
    g=$(gline "$name.log" h2g)
    [ -n "$(field "$h2g" sum)" ] && [ "$(field "$g" sum)" = "$(field "$h2g" sum)" ] &&
        echo "h2g-mibps $(mibps "$(field "$h2g" ms)")" >>"$name.$round"
    g=$(gline "$name.log" g2h)
    h=$(grep RECV g2h.out)
    [ -n "$(field "$h" sum)" ] && [ "$(field "$g" sum)" = "$(field "$h" sum)" ] &&
        echo "g2h-mibps $(mibps "$(field "$h" ms)")" >>"$name.$round"
    [ "$m" = "MULTI ok=$CONNS of $CONNS" ] && [ "$c1" -gt "$c0" ] &&
        awk -v n="$CONNS" -v cs=$((c1 - c0)) 'BEGIN { printf "conns-per-s %.0f\n", n * 100 / cs }' >>"$name.$round"
    echo "round $round $name: $(awk '{ printf "%s=%s ", $1, $2 }' "$name.$round")"
    [ "$(wc -l <"$name.$round")" -eq 3 ] || { echo "  $name round $round incomplete:"; tail -n 5 "$name.log" "$name.err" qemu.err 2>/dev/null; }
}

for round in $(seq "$ROUNDS"); do
    "$CVMM" --kernel "$GUEST_KERNEL" --initramfs initrd.gz --cpus boot=2 --memory size=512M \
        --vsock "cid=5,socket=$uds" --serial file=inproc.log --cmdline "$append" </dev/null >/dev/null 2>inproc.err &
    vm=$!
    measure inproc "$round"

    "$CVMM" --vsock-backend "cid=5,socket=$FILES/vu.sock,uds_path=$uds" 2>backend.err &
    be=$!
    i=0
    while [ ! -S "$FILES/vu.sock" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
    qemu -enable-kvm -cpu host -smp 2 -m 512M -nographic -nodefaults -serial "file:backend.log" -no-reboot \
        -object memory-backend-memfd,id=mem,size=512M,share=on -numa node,memdev=mem \
        -chardev "socket,id=c3,path=$FILES/vu.sock" -device vhost-user-vsock-pci,chardev=c3 \
        -kernel "$GUEST_KERNEL" -initrd initrd.gz -append "$append" </dev/null >/dev/null 2>qemu.err &
    vm=$!
    measure backend "$round"
    kill -TERM $be
    wait $be
done

median() {
    for r in $(seq "$ROUNDS"); do awk -v w="$2" '$1 == w { print $2 }' "$1.$r"; done | sort -n |
        awk '{ v[NR] = $1 } END { if (NR) print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
printf '%-12s %12s %12s %8s   (medians of %s rounds)\n' metric in-process back-end ratio "$ROUNDS"
for w in h2g-mibps g2h-mibps conns-per-s; do
    a=$(median inproc "$w"); b=$(median backend "$w")
    if [ -n "$a" ] && [ -n "$b" ]; then
        printf '%-12s %12s %12s %8s\n' "$w" "$a" "$b" "$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2fx", b ? a / b : 0 }')"
    else
        printf '%-12s %12s %12s %8s\n' "$w" "${a:-failed}" "${b:-failed}" "-"
    fi
done

#!/bin/sh
# The host side of bench/vhost_blk_linux.sh (busybox sh; runs directly or in
# the nested machine, see tests/lib/linux-guest.sh): one guest under cvmm
# (virtio-pci, one vCPU) with three disks on three copies of the same image:
# vda in-process, vdb through cvmm's vhost-user front-end to `cvmm
# --block-backend`, vdc through the same front-end to qemu-storage-daemon
# (aio=io_uring on the page cache, as cvmm's back-end and in-process device
# by default). The guest loads them in turn, round after round
# (bench/guest/vhost_blk_linux_guest.sh); this side prints every round's
# figures, the medians and the median of the rounds' vhost-user ratios to the
# in-process one. Env: ROUNDS, SECS, SPAN (MiB loaded).
ROUNDS=${ROUNDS:-3} SECS=${SECS:-5} SPAN=${SPAN:-64}
if [ -x qemu/qemu-storage-daemon ]; then
    QSD="qemu/ld.so --library-path qemu/lib qemu/qemu-storage-daemon"
else
    QSD=qemu-storage-daemon
fi
dd if=/dev/urandom of=in.img bs=1M count="$SPAN" 2>/dev/null
cp in.img be.img
cp in.img qsd.img
wait_sock() { i=0; while [ ! -S "$1" ] && [ $i -lt 150 ]; do sleep 0.2; i=$((i + 1)); done; [ -S "$1" ]; }
"$CVMM" --block-backend path=be.img,socket=be.sock 2>be.log &
be=$!
$QSD --blockdev driver=file,node-name=f0,filename=qsd.img,aio=io_uring \
    --export type=vhost-user-blk,id=e0,node-name=f0,addr.type=unix,addr.path=qsd.sock,writable=on,num-queues=1 \
    </dev/null 2>qsd.log &
qsd=$!
wait_sock be.sock && wait_sock qsd.sock || { echo "vhost_blk_linux: a back-end did not start"; cat be.log qsd.log; exit 1; }
timeout $((ROUNDS * 6 * (SECS + 30) + 600)) "$CVMM" --kernel "$GUEST_KERNEL" --initramfs initrd.gz --cpus boot=1 \
    --memory size=512M --transport pci --serial tty --disk path=in.img \
    --disk vhost_user=on,socket=be.sock --disk vhost_user=on,socket=qsd.sock \
    --cmdline "console=ttyS0 panic=-1 reboot=k bench.rounds=$ROUNDS bench.secs=$SECS bench.span=$SPAN" \
    </dev/null 2>cvmm.log | tr -d '\r' >guest.out
rc=$?
kill $be $qsd 2>/dev/null
wait $be $qsd 2>/dev/null
# "round dev figure value" lines
sed -n 's/^BENCH: \([0-9]*\) \(vd[a-c]\) BENCH: \([a-z0-9-]*\) iops=\([0-9]*\)$/\1 \2 \3 \4/p' guest.out >figures
grep -q 'errors\|I/O error' guest.out && echo "vhost_blk_linux: the guest saw errors (see below)"
[ "$rc" -eq 0 ] && [ -s figures ] || { echo "vhost_blk_linux: cvmm exited $rc"; tail -n 20 guest.out cvmm.log; exit 1; }
name() { case $1 in vda) echo in-process;; vdb) echo vu-cvmm;; vdc) echo vu-qsd;; esac; }
echo "4 KiB random, queue depth 32, O_DIRECT, $SPAN MiB span, $SECS s per figure, $ROUNDS rounds; IOPS"
for r in $(seq "$ROUNDS"); do
    for f in $(awk '{ print $3 }' figures | sort -u); do
        printf 'round %s %-18s' "$r" "$f"
        for d in vda vdb vdc; do
            printf ' %s=%s' "$(name $d)" "$(awk -v r="$r" -v d="$d" -v f="$f" '$1 == r && $2 == d && $3 == f { print $4 }' figures)"
        done
        echo
    done
done
. ./rounds.sh
echo "medians; ratio = median of the rounds' vhost-user / in-process (higher is better)"
printf '%-18s %12s %12s %12s %14s %14s\n' figure in-process vu-cvmm vu-qsd vu-cvmm/inproc vu-qsd/inproc
for f in $(awk '{ print $3 }' figures | sort -u); do
    a=$(rounds_median vda "$f") b=$(rounds_median vdb "$f") c=$(rounds_median vdc "$f")
    printf '%-18s %12s %12s %12s %14s %14s\n' "$f" "$a" "$b" "$c" "$(rounds_ratio vda vdb "$f")" "$(rounds_ratio vda vdc "$f")"
done

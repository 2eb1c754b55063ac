#!/usr/bin/env bash
# In-process device benchmark (issue: virtio core and devices): what a Linux
# guest sees of its virtio-blk (4 KiB random read/write at queue depth 32,
# 1 MiB sequential at depth 4, O_DIRECT, bench/guest/blkload.c) and of its
# virtio-net (a 256 MiB TCP stream into a tap, timed by the host), under cvmm
# and, in the same run, under QEMU with KVM and its own in-process devices
# (virtio-blk-pci with aio=io_uring on the page cache, as cvmm by default;
# virtio-net-pci on a tap with vhost=off),
# on the same image and the same kind of tap. Prints each figure and the
# cvmm/QEMU ratio.
#
#   bench/inproc.sh [BUILD_DIR]      env: SECS=10 (per block workload)
#
# Needs a host whose KVM runs Linux (`cvmm --check-host`); elsewhere it says
# why and measures nothing.
set -u
BUILD=$(cd "${1:-build}" && pwd) || exit 1
root=$(cd "$(dirname "$0")/.." && pwd)
SECS=${SECS:-10}
cvmm=$BUILD/cvmm
[ -x "$cvmm" ] || { echo "inproc: build cvmm first (make BUILD=$BUILD)"; exit 1; }
verdict=$(timeout 30 "$cvmm" --check-host 2>&1 | tail -n 1)
if [ "$verdict" != "cvmm: host KVM can run Linux guests" ]; then
    echo "inproc: not measured on this host: ${verdict#cvmm: }"
    exit 0
fi
command -v qemu-system-x86_64 >/dev/null || { echo "inproc: qemu-system-x86_64 is not installed"; exit 1; }

linux=$BUILD/linux
"$root/images/linux/build.sh" "$linux" >/dev/null || { echo "inproc: images/linux/build.sh failed"; exit 1; }
tmp=$(mktemp -d /var/tmp/cvmm-bench-inproc.XXXXXX)
ns=cvmm-bench-$$
cleanup() {
    ip netns del "$ns" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
gcc -static -O2 -o "$tmp/blkload" "$root/bench/guest/blkload.c" -lpthread ||
    { echo "inproc: cannot build the guest load tool"; exit 1; }
LINUX_DIR=$linux "$root/images/linux/mkinitrd.sh" "$tmp/initrd.gz" "$root/bench/guest/inproc_guest.sh" \
    "$tmp/blkload:/blkload" >/dev/null || { echo "inproc: mkinitrd failed"; exit 1; }
dd if=/dev/urandom of="$tmp/disk.img" bs=1M count=256 status=none
ip netns add "$ns" && ip netns exec "$ns" ip link set lo up || { echo "inproc: needs root (network namespace)"; exit 1; }
append="console=ttyS0 panic=-1 reboot=k bench.secs=$SECS bench.host=10.80.0.1"

# Receives the guest's stream and prints MiB/s from the first to the last byte.
sink() {
    ip netns exec "$ns" timeout 600 python3 -c '
import socket, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("", 5679)); s.listen(1)
c, _ = s.accept(); n = 0; t0 = None
while True:
    b = c.recv(1 << 20)
    if not b: break
    if t0 is None: t0 = time.monotonic()
    n += len(b)
print("BENCH: net mibps=%.1f" % (n / (time.monotonic() - t0) / 1048576))'
}

# run NAME COMMAND...: boots the guest, leaves "workload value" lines in $tmp/NAME.
run() {
    local name=$1
    shift
    sink >"$tmp/$name.net" &
    local sink_pid=$!
    timeout 900 ip netns exec "$ns" "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" </dev/null
    wait "$sink_pid"
    { tr -d '\r' <"$tmp/$name.out"; cat "$tmp/$name.net"; } |
        sed -n 's/^BENCH: \([a-z]*\) iops=\([0-9]*\) mibps=\([0-9.]*\)$/\1-iops \2\n\1-mibps \3/p;
                s/^BENCH: net mibps=\([0-9.]*\)$/net-mibps \1/p' >"$tmp/$name"
}

run cvmm "$cvmm" --kernel "$linux/vmlinuz" --initramfs "$tmp/initrd.gz" --cpus boot=2 --memory size=1G \
    --serial tty --disk "path=$tmp/disk.img" --net "tap=bench0,ip=10.80.0.1,mask=255.255.255.0" \
    --cmdline "$append"
# QEMU creates its tap itself; it is addressed once it exists.
( for _ in $(seq 200); do ip netns exec "$ns" ip link show bench1 >/dev/null 2>&1 && break; sleep 0.05; done
  ip netns exec "$ns" ip addr add 10.80.0.1/24 dev bench1 && ip netns exec "$ns" ip link set bench1 up ) &
run qemu qemu-system-x86_64 -enable-kvm -cpu host -smp 2 -m 1G -nographic -no-reboot \
    -kernel "$linux/vmlinuz" -initrd "$tmp/initrd.gz" -append "$append" \
    -drive "file=$tmp/disk.img,format=raw,if=none,id=d0,aio=io_uring" -device virtio-blk-pci,drive=d0 \
    -netdev tap,id=n0,ifname=bench1,script=no,downscript=no,vhost=off -device virtio-net-pci,netdev=n0

printf '%-18s %12s %12s %8s\n' workload cvmm qemu ratio
for w in randread-iops randwrite-iops seqread-mibps seqwrite-mibps net-mibps; do
    a=$(awk -v w="$w" '$1 == w {print $2}' "$tmp/cvmm")
    b=$(awk -v w="$w" '$1 == w {print $2}' "$tmp/qemu")
    if [ -n "$a" ] && [ -n "$b" ]; then
        printf '%-18s %12s %12s %8s\n' "$w" "$a" "$b" "$(awk -v a="$a" -v b="$b" 'BEGIN {printf "%.2fx", b ? a / b : 0}')"
    else
        printf '%-18s %12s %12s %8s\n' "$w" "${a:-failed}" "${b:-failed}" "-"
    fi
done

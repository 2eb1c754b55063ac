#!/usr/bin/env bash
# A Linux guest (Debian's cloud kernel, its own virtio drivers) under cvmm
# with the in-process devices, over both transports: virtio-blk (the data the
# guest wrote is in the image), virtio-net on a tap in a network namespace
# (ping, and a TCP transfer checked on the host), virtio-rng (the kernel's
# hwrng source), virtio-console (a line in the --console file). Runs where
# `cvmm --check-host` says KVM can run Linux; elsewhere it is skipped with
# that verdict.
set -u
: "${BUILD:?BUILD is not set}"
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/linux-capable.sh"
linux_capable_or_skip

root=$(cd "$here/../.." && pwd)
linux=$BUILD/linux
timeout 600 "$root/images/linux/build.sh" "$linux" || { echo "FAIL: images/linux/build.sh"; exit 1; }
tmp=$(mktemp -d /tmp/cvmm-virtio-linux.XXXXXX)
ns=cvmm-vl-$$
cleanup() {
    ip netns del "$ns" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
LINUX_DIR=$linux "$root/images/linux/mkinitrd.sh" "$tmp/initrd.gz" "$here/guest/virtio_linux_guest.sh" ||
    { echo "FAIL: mkinitrd"; exit 1; }
ip netns add "$ns" || { echo "FAIL: cannot create a network namespace (run as root)"; exit 1; }
ip netns exec "$ns" ip link set lo up
failed=0
fail() { echo "FAIL $*"; failed=1; }

for transport in pci mmio; do
    img=$tmp/disk-$transport.img
    truncate -s 64M "$img"
    # The TCP end on the host: whatever the guest sends, checksummed.
    ip netns exec "$ns" timeout 300 python3 -c '
import hashlib, socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("", 5678)); s.listen(1)
c, _ = s.accept(); h = hashlib.md5()
while True:
    b = c.recv(65536)
    if not b: break
    h.update(b)
print(h.hexdigest())' >"$tmp/tcp-$transport" 2>&1 &
    server=$!
    timeout 600 ip netns exec "$ns" "$BUILD/cvmm" --kernel "$linux/vmlinuz" --initramfs "$tmp/initrd.gz" \
        --cpus boot=2 --memory size=512M --transport "$transport" \
        --disk "path=$img" --rng --console "file=$tmp/hvc-$transport" \
        --net "tap=vltap0,ip=10.79.0.1,mask=255.255.255.0" \
        --cmdline "console=ttyS0 panic=-1 reboot=k vl.host=10.79.0.1" \
        >"$tmp/out-$transport" 2>"$tmp/err-$transport" </dev/null
    rc=$?
    wait "$server"
    out=$(tr -d '\r' <"$tmp/out-$transport")
    grep '^VL:' <<<"$out" | sed "s/^/    $transport: /"
    [ $rc -eq 0 ] || fail "$transport: cvmm exited $rc: $(tail -n 3 "$tmp/err-$transport")"
    want=$(sed -n 's/^VL: disk want=\([0-9a-f]*\) got=\1$/\1/p' <<<"$out")
    [ -n "$want" ] || fail "$transport: the guest could not read back what it wrote"
    [ -n "$want" ] && [ "$(head -c 1M "$img" | md5sum | cut -d' ' -f1)" = "$want" ] ||
        fail "$transport: the image does not hold the guest's data"
    grep -q '^VL: rng current=virtio_rng' <<<"$out" || fail "$transport: virtio-rng is not the guest's hwrng"
    grep -q '^VL: rng .*bytes=[0-9a-f]\{128\}$' <<<"$out" || fail "$transport: no bytes from /dev/hwrng"
    grep -q 'VL: hello over hvc0' "$tmp/hvc-$transport" || fail "$transport: nothing from hvc0 in the console file"
    grep -q '^VL: ping ok' <<<"$out" || fail "$transport: the guest cannot ping the host through the tap"
    [ -n "$want" ] && grep -qx "$want" "$tmp/tcp-$transport" || fail "$transport: the TCP transfer arrived damaged or not at all"
    [ $failed -eq 0 ] && echo "ok $transport"
done
exit $failed

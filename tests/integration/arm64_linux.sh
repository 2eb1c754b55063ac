#!/usr/bin/env bash
# The aarch64 cvmm booting Debian's arm64 cloud kernel, tested on any x86
# machine: qemu-system-aarch64 (TCG, virt with EL2 and a GICv3) boots the same
# kernel with KVM built in; its initramfs (guest/arm64_host.sh as /init)
# carries the cross-built cvmm with its arm64 libraries, the kernel and an
# inner initramfs (guest/arm64_guest.sh). Inside, cvmm boots the kernel
# twice: virtio-mmio with 1 vCPU (plain Image; a console line comes back,
# reboot ends cvmm with 0) and virtio-pci with 2 vCPUs (gzip-compressed
# Image; poweroff ends it with 0); in both virtio-blk (data checked in the
# image), virtio-net (ping and TCP through a tap), virtio-rng and
# virtio-console work, and a second disk through vhost-user, served by
# `cvmm --block-backend` (seccomp on) in the same machine. The device tree
# it dumps decodes with dtc, and malformed kernels are refused with exit 2.
# `cvmm --check-host` says it can run Linux guests there (and cannot check
# without /dev/kvm). Seccomp is on (the default), in the back-end too.
# pauth-impdef: QEMU's own pointer-authentication algorithm, much cheaper to
# emulate than QARMA (Debian's kernel signs return addresses).
set -u
: "${BUILD:?BUILD is not set}"
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
for tool in qemu-system-aarch64 aarch64-linux-gnu-gcc dtc readelf cpio; do
    command -v $tool >/dev/null || { echo "SKIP: $tool missing (tests/install-deps.sh installs it)"; exit 77; }
done

a64=$BUILD/arm64
# The path as make check spells it (build/arm64): the header dependencies in
# the .d files are keyed by that spelling, and an absolute one would miss them.
a64_make=$(realpath -m --relative-to="$root" "$a64")
make -s -C "$root" ARCH=arm64 BUILD="$a64_make" "$a64_make/cvmm" >/dev/null ||
    { echo "FAIL: cross-build (make ARCH=arm64)"; exit 1; }
linux=$BUILD/linux-arm64
timeout 600 "$root/images/linux/build.sh" "$linux" arm64 || { echo "FAIL: images/linux/build.sh arm64"; exit 1; }
tmp=$(mktemp -d /tmp/cvmm-arm64.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# The guest's initramfs: busybox, virtio modules, the test script.
BUSYBOX=$linux/busybox LINUX_DIR=$linux "$root/images/linux/mkinitrd.sh" "$tmp/guest.gz" \
    "$here/guest/arm64_guest.sh" "$here/guest/arm64_virtio.sh:/virtio.sh" ||
    { echo "FAIL: mkinitrd"; exit 1; }

# The QEMU machine's: cvmm and the shared libraries it names (recursively).
host=$tmp/host
mkdir -p "$host/bin" "$host/lib/modules" "$host/bad" "$host/lib/aarch64-linux-gnu"
cp "$linux/busybox" "$host/bin/busybox"
ln -s busybox "$host/bin/sh"
install -m 0755 "$here/guest/arm64_host.sh" "$host/init"
cp "$a64/cvmm" "$host/cvmm"
cp "$linux/extra/tun.ko" "$host/lib/modules/"
cp "$linux/vmlinuz" "$tmp/guest.gz" "$host/"
gzip -9 -c "$linux/vmlinuz" >"$host/vmlinuz.gz"
libs=("$a64/cvmm")
while [ ${#libs[@]} -gt 0 ]; do
    f=${libs[0]}
    libs=("${libs[@]:1}")
    for lib in $(readelf -d "$f" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
        [ -e "$host/lib/aarch64-linux-gnu/$lib" ] && continue
        src=$(ls /usr/lib/aarch64-linux-gnu/"$lib" /lib/aarch64-linux-gnu/"$lib" 2>/dev/null | head -n 1)
        [ -n "$src" ] || { echo "FAIL: $lib (needed by $(basename "$f")) is not installed for arm64"; exit 1; }
        cp -L "$src" "$host/lib/aarch64-linux-gnu/$lib"
        libs+=("$src")
    done
done
cp -L /lib/ld-linux-aarch64.so.1 "$host/lib/" || { echo "FAIL: no arm64 dynamic loader (libc6:arm64)"; exit 1; }
# Malformed kernels: no magic, a truncated header, an image_size beyond
# what cvmm takes, and a gzip file that does not hold an Image.
head -c 4096 /dev/zero >"$host/bad/nomagic"
head -c 40 "$linux/vmlinuz" >"$host/bad/truncated"
python3 - "$linux/vmlinuz" "$host/bad/oversized" <<'PY'
import struct, sys
hdr = bytearray(open(sys.argv[1], 'rb').read(64))
struct.pack_into('<Q', hdr, 16, 1 << 40)   # image_size: 1 TiB
open(sys.argv[2], 'wb').write(bytes(hdr) + bytes(4096))
PY
head -c 65536 /dev/urandom | gzip -c >"$host/bad/gzip-junk"
(cd "$host" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) | gzip -1 >"$tmp/host.gz"

start=$(date +%s)
timeout 2400 qemu-system-aarch64 -M virt,virtualization=on,gic-version=3 -cpu max,pauth-impdef=on -smp 2 -m 2048 \
    -nographic -no-reboot -kernel "$linux/vmlinuz" -initrd "$tmp/host.gz" \
    -append "console=ttyAMA0 panic=-1 quiet" >"$tmp/qemu.out" 2>&1 </dev/null
rc=$?
out=$(tr -d '\r' <"$tmp/qemu.out")
echo "qemu exited $rc after $(($(date +%s) - start)) s"
grep '^A64H:' <<<"$out" | grep -v 'dtb-hex' | grep -Ev '\| +\[ *[0-9]+\.[0-9]+\]' | tail -n 150
failed=0
fail() { echo "FAIL: $*"; failed=1; }
line() { grep -q -- "$1" <<<"$out"; }

line '^A64H: up .* kvm=yes' || { tail -n 30 "$tmp/qemu.out"; echo "FAIL: the QEMU machine has no /dev/kvm"; exit 1; }
line '^A64H: done' || fail "the QEMU machine did not finish its runs"
line '^A64H: devices-mmio| A64G: mode=mmio cpus=1 ' || fail "1 vCPU: the guest's init did not run"
line "^A64H: devices-mmio| A64G: got 'hello from the host console'" ||
    fail "the console line did not come back through the guest"
line '^A64H: devices-mmio| CVMM-INIT: done' || fail "1 vCPU: the guest did not finish its init to reboot"
line '^A64H: devices-pci| A64G: mode=pci cpus=2 online=0-1' || fail "2 vCPUs (gzip Image): the guest did not bring up both CPUs"
line '^A64H: devices-pci| A64G: powering off' || fail "poweroff: the guest did not get to power off"
for t in mmio pci; do
    p="^A64H: devices-$t"
    line "$p rc=0\$" || fail "$t: cvmm did not exit 0 (mmio: on reboot, pci: on poweroff)"
    want=$(sed -n "s/^A64H: devices-$t| VL: disk want=\([0-9a-f]*\) got=\1\$/\1/p" <<<"$out")
    [ -n "$want" ] || fail "$t: the guest could not read back what it wrote to virtio-blk"
    [ -n "$want" ] && line "$p image=$want\$" || fail "$t: the image does not hold the guest's data"
    [ -n "$want" ] && line "$p tcp=$want bytes=1048576\$" || fail "$t: the TCP transfer through the tap arrived damaged or not at all"
    # Every thread of cvmm (busybox timeout execs it: the pid is cvmm's) in mode 2.
    grep -Eq "$p seccomp modes: [0-9]+ 2 \$" <<<"$out" || fail "$t: cvmm's threads are not all under a seccomp filter"
    line "$p| VL: ping ok" || fail "$t: the guest cannot ping the host through the tap"
    line "$p| VL: rng current=virtio_rng" || fail "$t: virtio-rng is not the guest's hwrng"
    grep -Eq "$p\\| VL: rng .*bytes=[0-9a-f]{128}\$" <<<"$out" || fail "$t: no bytes from /dev/hwrng"
    line "$p hvc| VL: hello over hvc0" || fail "$t: nothing from hvc0 in the console file"
    # The vhost-user disk: cvmm --block-backend (arm64, seccomp on) beside cvmm.
    vuwant=$(sed -n "s/^A64H: devices-$t| VL: vudisk want=\([0-9a-f]*\) got=\1\$/\1/p" <<<"$out")
    [ -n "$vuwant" ] || fail "$t: the guest could not read back what it wrote to the vhost-user disk"
    [ -n "$vuwant" ] && line "$p vudisk image=$vuwant\$" || fail "$t: the back-end's image does not hold the guest's data"
    grep -Eq "$p backend seccomp modes: [0-9]+ 2 \$" <<<"$out" ||
        fail "$t: the back-end's threads are not all under a seccomp filter"
    line "^A64H: vubackend-$t rc=0\$" || fail "$t: cvmm --block-backend did not exit 0 on SIGTERM"
done
line '^A64H: checkhost| cvmm: host KVM can run Linux guests$' && line '^A64H: checkhost rc=0$' ||
    fail "--check-host: no 'can run Linux guests' verdict with exit 0 where arm64 Linux runs"
line '^A64H: checkhost-nokvm| cvmm: cannot check host KVM: /dev/kvm: ' && line '^A64H: checkhost-nokvm rc=2$' ||
    fail "--check-host without /dev/kvm: no 'cannot check' verdict with exit 2"
line '^A64H: dtb rc=0$' || fail "--dump-dtb: cvmm did not exit 0"
sed -n 's/^A64H: dtb-hex //p' <<<"$out" |
    python3 -c 'import sys; sys.stdout.buffer.write(bytes.fromhex(sys.stdin.read()))' >"$tmp/cvmm.dtb"
if dtc -I dtb -O dts -o "$tmp/cvmm.dts" "$tmp/cvmm.dtb" 2>"$tmp/dtc.err"; then
    for want in 'compatible = "arm,gic-v3"' 'compatible = "arm,gic-v3-its"' 'enable-method = "psci"' \
        'compatible = "virtio,mmio"' 'compatible = "pci-host-ecam-generic"' 'stdout-path = "/uart@9000000"' \
        'linux,initrd-start' 'a64.mode=dtb' 'cpu@1 {'; do
        grep -qF "$want" "$tmp/cvmm.dts" || fail "--dump-dtb: dtc shows no '$want'"
    done
else
    fail "--dump-dtb: dtc cannot read the tree: $(head -n 2 "$tmp/dtc.err")"
fi
for bad in nomagic truncated oversized gzip-junk; do
    line "^A64H: bad-$bad rc=2\$" || fail "kernel '$bad': cvmm did not exit 2"
    n=$(grep -c "^A64H: bad-$bad stderr| " <<<"$out")
    [ "$n" -eq 1 ] || fail "kernel '$bad': $n lines on stderr, want 1"
done
if [ $failed -ne 0 ]; then
    tail -n 40 "$tmp/qemu.out"
    exit 1
fi
echo "arm64_linux: ok"

#!/usr/bin/env bash
# Usage: images/nested/build.sh BUILD_DIR
#
# Builds the outer machine of tests/lib/nested.sh: Debian's cloud kernel
# (from images/linux/build.sh, in BUILD_DIR/linux) booted by
# qemu-system-x86_64 -accel tcg -cpu max, whose SVM + nested paging let
# that kernel's kvm-amd give a working /dev/kvm to a cvmm inside it. Leaves
# in BUILD_DIR/nested:
#   base.cpio.gz   busybox-static, the kvm/kvm-amd/irqbypass/tun modules
#                  (with a modules.dep from depmod), cvmm and the shared
#                  libraries ldd names, the inner guest's bzImage as
#                  /guest/vmlinuz, and the outer /init (images/nested/init.sh)
#   stamp          what base.cpio.gz was built from; it is rebuilt whenever
#                  cvmm, this script, init.sh or the kernel package change
# A run appends its own small archive (the test's script and files) to
# base.cpio.gz: the kernel unpacks concatenated archives in order.
set -euo pipefail

BUILD=${1:?usage: build.sh BUILD_DIR}
BUILD=$(cd "$BUILD" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=$BUILD/nested
linux=$BUILD/linux
cvmm=$BUILD/cvmm
busybox=/bin/busybox
# kvm-amd needs kvm, which needs irqbypass; tun gives the taps of --net.
MODULES=(virt/lib/irqbypass arch/x86/kvm/kvm arch/x86/kvm/kvm-amd drivers/net/tun)

die() { echo "images/nested: $*" >&2; exit 1; }
[ -x "$cvmm" ] || die "$cvmm not built (make all)"
[ -x "$busybox" ] && ! ldd "$busybox" >/dev/null 2>&1 ||
    die "$busybox is not the static busybox: apt-get install busybox-static"
command -v depmod >/dev/null || die "depmod missing: apt-get install kmod"

"$root/images/linux/build.sh" "$linux" >/dev/null
pkg=$(cat "$linux/version")
deb=$(ls "$linux/${pkg}_"*.deb 2>/dev/null | head -n 1 || true)
[ -n "$deb" ] || die "the .deb of $pkg is not in $linux"

stamp=$( (echo "$pkg"; sha256sum "$cvmm" "$here/build.sh" "$here/init.sh" "$linux/vmlinuz" |
          cut -d' ' -f1) | sha256sum | cut -d' ' -f1)
if [ -f "$out/base.cpio.gz" ] && [ "$(cat "$out/stamp" 2>/dev/null)" = "$stamp" ]; then
    exit 0
fi
echo "images/nested: building $out/base.cpio.gz ($pkg)"
mkdir -p "$out"
tmp=$(mktemp -d "$out/tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
dpkg-deb -x "$deb" "$tmp/deb"
kver=$(ls "$tmp/deb/lib/modules" | head -n 1)
[ -n "$kver" ] || die "$deb holds no lib/modules/<version>"

r=$tmp/root
mkdir -p "$r"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,guest,run} "$r/lib/modules/$kver"
cp "$busybox" "$r/bin/busybox"
ln -s busybox "$r/bin/sh"
for m in "${MODULES[@]}"; do
    src=$tmp/deb/lib/modules/$kver/kernel/$m
    dst=$r/lib/modules/$kver/kernel/$m.ko
    mkdir -p "$(dirname "$dst")"
    if [ -f "$src.ko" ]; then cp "$src.ko" "$dst"
    elif [ -f "$src.ko.xz" ]; then xz -dc "$src.ko.xz" >"$dst"
    elif [ -f "$src.ko.zst" ]; then zstd -qdc "$src.ko.zst" >"$dst"
    else die "module $m not found in $deb"
    fi
done
# modules.builtin tells modprobe what needs no loading; modules.order keeps depmod quiet.
for f in modules.order modules.builtin modules.builtin.modinfo; do
    cp "$tmp/deb/lib/modules/$kver/$f" "$r/lib/modules/$kver/"
done
depmod -b "$r" "$kver"
# cvmm and what its dynamic loader needs, at the paths ldd prints.
install -D -m 0755 "$cvmm" "$r/bin/cvmm"
ldd "$cvmm" | awk '/=> \// { print $3 } /^\t\/[^ ]* \(/ { print $1 }' | while read -r lib; do
    install -D -m 0755 "$(readlink -f "$lib")" "$r$lib"
done
cp "$linux/vmlinuz" "$r/guest/vmlinuz"
install -m 0755 "$here/init.sh" "$r/init"
(cd "$r" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) | gzip -1 >"$out/base.cpio.gz.tmp"
cp "$linux/vmlinuz" "$out/vmlinuz"
mv "$out/base.cpio.gz.tmp" "$out/base.cpio.gz"
echo "$stamp" >"$out/stamp"

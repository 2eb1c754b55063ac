#!/usr/bin/env bash
# Usage: images/linux/build.sh OUTDIR [amd64|arm64]
#
# Fetches Debian's cloud kernel for the given Debian architecture (default
# amd64: linux-image-<version>-cloud-amd64-unsigned, the version
# linux-image-cloud-amd64 currently depends on; arm64 needs
# `dpkg --add-architecture arm64`, see tests/install-deps.sh) with apt-get
# download and leaves in OUTDIR:
#   vmlinuz          the bzImage (amd64) or gzip-compressed Image (arm64)
#   modules/*.ko     the virtio modules, uncompressed
#   modules/order    their load order (virtio_ring before virtio)
#   extra/tun.ko     for a machine that runs cvmm with taps (nested tests)
#   busybox          for another architecture than this machine's: the static
#                    busybox of busybox-static:<arch> (Debian's busybox-static
#                    is not multiarch, so it is unpacked, not installed)
#   version          the package name the files came from
# Initramfs images are then made per test with images/linux/mkinitrd.sh.
# The .deb stays in OUTDIR, so a rerun for the same version is quick and
# needs no network.
set -euo pipefail

OUT=${1:?usage: build.sh OUTDIR [amd64|arm64]}
DEB_ARCH=${2:-amd64}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

# Load order matters: virtio needs virtio_break_device from virtio_ring.
MODULES=(
    drivers/virtio/virtio_ring
    drivers/virtio/virtio
    drivers/virtio/virtio_mmio
    drivers/virtio/virtio_pci_modern_dev
    drivers/virtio/virtio_pci_legacy_dev
    drivers/virtio/virtio_pci
    drivers/block/virtio_blk
    net/core/failover
    drivers/net/net_failover
    drivers/net/virtio_net
    net/vmw_vsock/vsock
    net/vmw_vsock/vmw_vsock_virtio_transport_common
    net/vmw_vsock/vmw_vsock_virtio_transport
    drivers/char/hw_random/virtio-rng
    drivers/char/virtio_console
    fs/fuse/fuse
    fs/fuse/virtiofs
)

# Module names as /proc/modules shows them (dashes become underscores).
module_names() {
    local m
    for m in "${MODULES[@]}"; do basename "$m" | tr - _; done
}

die() { echo "images/linux: $*" >&2; exit 1; }

kernel_package() {
    apt-cache depends "linux-image-cloud-$DEB_ARCH:$DEB_ARCH" 2>/dev/null |
        awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { sub(/:.*/, "", $2); print $2 "-unsigned"; exit }'
}

pkg=$(kernel_package)
if [ -z "$pkg" ]; then
    [ "$(id -u)" -eq 0 ] || die "apt does not know linux-image-cloud-$DEB_ARCH; run apt-get update as root"
    apt-get update -qq
    pkg=$(kernel_package)
    [ -n "$pkg" ] || die "linux-image-cloud-$DEB_ARCH not found in the configured Debian archive" \
        "(for arm64: dpkg --add-architecture arm64 && apt-get update)"
fi

foreign=false
[ "$DEB_ARCH" = "$(dpkg --print-architecture)" ] || foreign=true

if [ -f "$OUT/version" ] && [ "$(cat "$OUT/version")" = "$pkg" ] && [ -f "$OUT/vmlinuz" ] &&
   [ -f "$OUT/extra/tun.ko" ] && { ! $foreign || [ -x "$OUT/busybox" ]; } &&
   [ -f "$OUT/modules/order" ] && [ "$(cat "$OUT/modules/order")" = "$(module_names)" ]; then
    echo "images/linux: $pkg already in $OUT"
    exit 0
fi

deb=$(ls "$OUT/${pkg}_"*.deb 2>/dev/null | head -n 1 || true)
if [ -z "$deb" ]; then
    echo "images/linux: downloading $pkg"
    # apt-get download writes to the current directory; as root it warns
    # that it cannot drop privileges for the download, which is harmless.
    (cd "$OUT" && apt-get download -q "$pkg:$DEB_ARCH" 2>&1 | grep -v 'unsandboxed as root' || true)
    deb=$(ls "$OUT/${pkg}_"*.deb 2>/dev/null | head -n 1 || true)
    [ -n "$deb" ] || die "apt-get download $pkg failed"
fi

tmp=$(mktemp -d "$OUT/unpack.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
dpkg-deb -x "$deb" "$tmp"

vmlinuz=$(ls "$tmp"/boot/vmlinuz-* 2>/dev/null | head -n 1 || true)
[ -n "$vmlinuz" ] || die "$deb holds no boot/vmlinuz-*"
kdir=$(ls -d "$tmp"/lib/modules/*/kernel 2>/dev/null | head -n 1 || true)
[ -n "$kdir" ] || die "$deb holds no lib/modules/*/kernel"

# copy_module MODULE_PATH DEST.ko: uncompressed, whatever Debian compressed it with.
copy_module() {
    if [ -f "$kdir/$1.ko" ]; then
        cp "$kdir/$1.ko" "$2"
    elif [ -f "$kdir/$1.ko.xz" ]; then
        xz -dc "$kdir/$1.ko.xz" >"$2"
    elif [ -f "$kdir/$1.ko.zst" ]; then
        zstd -qdc "$kdir/$1.ko.zst" >"$2"
    else
        die "module $1 not found in $deb"
    fi
}

rm -rf "$OUT/modules" "$OUT/extra"
mkdir -p "$OUT/modules" "$OUT/extra"
: >"$OUT/modules/order"
for m in "${MODULES[@]}"; do
    name=$(basename "$m" | tr - _)
    copy_module "$m" "$OUT/modules/$name.ko"
    echo "$name" >>"$OUT/modules/order"
done
copy_module drivers/net/tun "$OUT/extra/tun.ko"
if $foreign; then
    bdeb=$(ls "$OUT"/busybox-static_*_"$DEB_ARCH".deb 2>/dev/null | head -n 1 || true)
    if [ -z "$bdeb" ]; then
        (cd "$OUT" && apt-get download -q "busybox-static:$DEB_ARCH" 2>&1 | grep -v 'unsandboxed as root' || true)
        bdeb=$(ls "$OUT"/busybox-static_*_"$DEB_ARCH".deb 2>/dev/null | head -n 1 || true)
        [ -n "$bdeb" ] || die "apt-get download busybox-static:$DEB_ARCH failed"
    fi
    mkdir "$tmp/busybox"
    dpkg-deb -x "$bdeb" "$tmp/busybox"
    install -m 0755 "$tmp/busybox/bin/busybox" "$OUT/busybox"
fi
cp "$vmlinuz" "$OUT/vmlinuz"
echo "$pkg" >"$OUT/version"
echo "images/linux: $pkg -> $OUT/vmlinuz and $(wc -l <"$OUT/modules/order") modules"

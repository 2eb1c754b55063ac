#!/usr/bin/env bash
# Usage: images/linux/mkinitrd.sh OUT.gz TEST_SCRIPT [SRC[:DEST]]...
#
# Makes a gzipped newc initramfs with busybox-static, the virtio modules from
# images/linux/build.sh (taken from LINUX_DIR, default: the directory of
# OUT.gz), the common /init (images/linux/init-prelude.sh) and TEST_SCRIPT as
# /test.sh, which /init runs after loading the modules; then /init resets
# the machine. Each extra SRC is copied to DEST (default /basename of SRC).
# BUSYBOX names another static busybox (default /bin/busybox; the arm64 one
# from images/linux/build.sh OUTDIR arm64 for arm64 guests).
set -euo pipefail

out=${1:?usage: mkinitrd.sh OUT.gz TEST_SCRIPT [SRC[:DEST]]...}
script=${2:?usage: mkinitrd.sh OUT.gz TEST_SCRIPT [SRC[:DEST]]...}
shift 2
here=$(cd "$(dirname "$0")" && pwd)
linux=${LINUX_DIR:-$(dirname "$out")}
busybox=${BUSYBOX:-/bin/busybox}

die() { echo "images/linux/mkinitrd: $*" >&2; exit 1; }
[ -f "$linux/modules/order" ] || die "no modules in $linux: run images/linux/build.sh $linux first"
[ -f "$script" ] || die "$script: no such file"
[ -x "$busybox" ] && ! ldd "$busybox" >/dev/null 2>&1 ||
    die "$busybox is not the static busybox: apt-get install busybox-static"

root=$(mktemp -d "${TMPDIR:-/tmp}/cvmm-initrd.XXXXXX")
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,lib/modules,proc,sys,dev,tmp}
cp "$busybox" "$root/bin/busybox"
ln -s busybox "$root/bin/sh"
cp "$linux"/modules/*.ko "$linux/modules/order" "$root/lib/modules/"
install -m 0755 "$here/init-prelude.sh" "$root/init"
install -m 0755 "$script" "$root/test.sh"
for spec in "$@"; do
    src=${spec%%:*}
    dest=/$(basename "$src")
    [ "$spec" != "$src" ] && dest=${spec#*:}
    [ -e "$src" ] || die "$src: no such file"
    mkdir -p "$root$(dirname "$dest")"
    cp -a "$src" "$root$dest"
done
(cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) | gzip -1 >"$out.tmp"
mv "$out.tmp" "$out"

#!/usr/bin/env bash
# Installs the Debian packages cvmm needs to build and test. Idempotent:
# does nothing (and needs no network) when every package is present.
set -euo pipefail
PKGS=(gcc clang libclang-rt-14-dev make pkg-config libc6-dev libfdt-dev libseccomp-dev libcap-dev liburing-dev zlib1g-dev check
      busybox-static cpio gzip xz-utils zstd lz4 kmod iproute2 util-linux ethtool
      qemu-system-x86 qemu-utils strace gdb
      dpdk-dev librte-net-vhost23 librte-net-virtio23 librte-mempool-ring23 librte-net-tap23
      # The aarch64 build (make ARCH=arm64) and its test (tests/integration/arm64_linux.sh,
      # in qemu-system-aarch64). libfdt-dev and busybox-static are not multiarch: their
      # :arm64 packages would replace this machine's, so the build links the :arm64
      # runtime library (libfdt1) and the test unpacks busybox-static:arm64 itself.
      gcc-aarch64-linux-gnu libc6-dev:arm64 libseccomp-dev:arm64 libcap-dev:arm64 liburing-dev:arm64
      zlib1g-dev:arm64 libfdt1:arm64 qemu-system-arm device-tree-compiler python3
      # make check runs the arm64 unit tests (Check) under qemu-user on other machines.
      check:arm64 qemu-user)
foreign_arch=true
dpkg --print-foreign-architectures | grep -qx arm64 || foreign_arch=false
missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && $foreign_arch && exit 0
if [ "$(id -u)" -ne 0 ]; then
    $foreign_arch || echo "cvmm: the arm64 packages need: dpkg --add-architecture arm64 && apt-get update" >&2
    echo "cvmm: missing Debian packages: ${missing[*]}; run as root or: apt-get install ${missing[*]}" >&2
    exit 1
fi
$foreign_arch || dpkg --add-architecture arm64
echo "cvmm: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# --no-remove: never let an :arm64 package push out one of this machine's (e.g. a
# non-multiarch -dev package); fail instead.
apt-get install -y -qq --no-install-recommends --no-remove "${missing[@]}" >/dev/null

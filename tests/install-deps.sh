#!/usr/bin/env bash
# Installs the Debian packages cvmm needs to build and test. Idempotent:
# does nothing (and needs no network) when every package is present.
set -euo pipefail
PKGS=(gcc clang libclang-rt-14-dev make pkg-config libc6-dev libfdt-dev libseccomp-dev libcap-dev liburing-dev check
      busybox-static cpio gzip xz-utils zstd lz4 kmod iproute2 util-linux ethtool
      qemu-system-x86 qemu-utils strace gdb
      dpdk-dev librte-net-vhost23 librte-net-virtio23 librte-mempool-ring23)
missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
    echo "cvmm: missing Debian packages: ${missing[*]}; run as root or: apt-get install ${missing[*]}" >&2
    exit 1
fi
echo "cvmm: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

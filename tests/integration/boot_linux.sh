#!/usr/bin/env bash
# Boots Debian's cloud kernel under cvmm with a busybox initramfs whose init
# reports the CPUs and memory it sees and a marker, then resets. Runs only
# where `cvmm --check-host` says the host's KVM can run Linux; elsewhere it
# is skipped with that verdict (never passed).
set -u
: "${BUILD:?BUILD is not set}"
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/linux-capable.sh"
linux_capable_or_skip

root=$(cd "$here/../.." && pwd)
linux=$BUILD/linux
timeout 600 "$root/images/linux/build.sh" "$linux" || { echo "FAIL: images/linux/build.sh"; exit 1; }
tmp=$(mktemp -d /tmp/cvmm-boot-linux.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
cat >"$tmp/test.sh" <<'EOS'
echo "BOOT-LINUX: cpus=$(grep -c ^processor /proc/cpuinfo) memtotal=$(awk '/MemTotal/ {print $2}' /proc/meminfo)"
echo "BOOT-LINUX: marker ok"
EOS
LINUX_DIR=$linux "$root/images/linux/mkinitrd.sh" "$tmp/initrd.gz" "$tmp/test.sh" ||
    { echo "FAIL: mkinitrd"; exit 1; }

timeout 300 "$BUILD/cvmm" --kernel "$linux/vmlinuz" --initramfs "$tmp/initrd.gz" \
    --cpus boot=2 --memory size=512M --cmdline "console=ttyS0 panic=-1 reboot=k" \
    >"$tmp/out" 2>"$tmp/err" </dev/null
rc=$?
tr -d '\r' <"$tmp/out" | tail -n 40
tail -n 5 "$tmp/err"
out=$(tr -d '\r' <"$tmp/out")
[ $rc -eq 0 ] || { echo "FAIL: cvmm exited $rc"; exit 1; }
grep -q '^BOOT-LINUX: marker ok' <<<"$out" || { echo "FAIL: no marker from init"; exit 1; }
grep -q '^BOOT-LINUX: cpus=2 ' <<<"$out" || { echo "FAIL: Linux did not bring up 2 CPUs"; exit 1; }
echo "boot_linux: ok"

#!/usr/bin/env bash
# The Linux test image (images/linux) works: Debian's cloud kernel boots
# under QEMU with TCG, the common /init loads every virtio module in order
# (none fails), the test script runs, sees a virtio-blk disk, and the guest
# resets. Other Linux tests (vhost-user with QEMU, boot_linux under cvmm)
# build on this image.
set -u
: "${BUILD:?BUILD is not set}"
root=$(cd "$(dirname "$0")/../.." && pwd)
linux=$BUILD/linux
command -v qemu-system-x86_64 >/dev/null || { echo "FAIL: qemu-system-x86_64 missing (tests/install-deps.sh)"; exit 1; }
timeout 600 "$root/images/linux/build.sh" "$linux" || { echo "FAIL: images/linux/build.sh"; exit 1; }
tmp=$(mktemp -d /tmp/cvmm-linux-image.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

cat >"$tmp/test.sh" <<'EOS'
want=$(wc -l </lib/modules/order)
have=0
while read -r m; do grep -q "^$m " /proc/modules && have=$((have + 1)); done </lib/modules/order
echo "IMG: modules $have of $want"
[ -b /dev/vda ] && echo "IMG: vda $(cat /sys/block/vda/size) sectors"
EOS
LINUX_DIR=$linux "$root/images/linux/mkinitrd.sh" "$tmp/initrd.gz" "$tmp/test.sh" || { echo "FAIL: mkinitrd"; exit 1; }
truncate -s 4M "$tmp/disk.img"

start=$(date +%s)
timeout 120 qemu-system-x86_64 -accel tcg -cpu max -m 512 -smp 1 -nographic -no-reboot \
    -drive "file=$tmp/disk.img,if=virtio,format=raw" -nic none \
    -kernel "$linux/vmlinuz" -initrd "$tmp/initrd.gz" \
    -append "console=ttyS0 panic=-1 reboot=k quiet no_timer_check" </dev/null >"$tmp/out" 2>&1
rc=$?
secs=$(( $(date +%s) - start ))
out=$(tr -d '\r' <"$tmp/out")
grep -a -E '^(CVMM-INIT|IMG):' <<<"$out"
echo "qemu exit $rc after ${secs}s"
[ $rc -eq 0 ] || { echo "FAIL: QEMU exited $rc"; exit 1; }
want=$(wc -l <"$linux/modules/order")
grep -aq "^IMG: modules $want of $want$" <<<"$out" || { echo "FAIL: not every module loaded"; exit 1; }
grep -aq 'insmod .* failed' <<<"$out" && { echo "FAIL: an insmod failed"; exit 1; }
grep -aq '^IMG: vda 8192 sectors$' <<<"$out" || { echo "FAIL: no 4 MiB /dev/vda"; exit 1; }
grep -aq '^CVMM-INIT: done rc=0$' <<<"$out" || { echo "FAIL: the test script did not finish"; exit 1; }
echo "linux_image: ok"

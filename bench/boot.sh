#!/usr/bin/env bash
# Usage: bench/boot.sh BUILD_DIR [RUNS]
#
# Boot figures for cvmm (not a timed test; `make bench` builds what it needs):
#  - VMM setup time: process spawn -> first KVM_RUN (cvmm -v logs that moment;
#    its own count, from main(), is shown too);
#  - time to the guest's boot-timer marker (docs/boot-timer.md);
#  - the VMM's own memory: RSS minus the guest memory it maps (memfd pages
#    the guest touched), read from /proc/PID/smaps while the guest idles.
# For the test guest (tg.halt keeps it running after its report) and, where
# `cvmm --check-host` says the host's KVM can run Linux, for Debian's cloud
# kernel with a busybox init. Targets: setup <= 10 ms, overhead <= 2 MiB.
set -u
BUILD=${1:?usage: bench/boot.sh BUILD_DIR [RUNS]}
BUILD=$(cd "$BUILD" && pwd)
runs=${2:-5}
root=$(cd "$(dirname "$0")/.." && pwd)
cvmm=$BUILD/cvmm
probe=$BUILD/bench/boot_probe
[ -x "$cvmm" ] && [ -x "$probe" ] && [ -f "$BUILD/testguest/testguest.elf" ] ||
    { echo "bench/boot: run 'make BUILD=$BUILD bench' first"; exit 1; }
tmp=$(mktemp -d /tmp/cvmm-bench-boot.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

median() { sort -n | awk '{v[NR] = $1} END {if (NR) print v[int((NR + 1) / 2)]; else print "n/a"}'; }

# run_case NAME HOLD_PATTERN TIMEOUT CVMM_ARGS...: RUNS boots, one report.
run_case() {
    local name=$1 hold=$2 limit=$3 i f
    shift 3
    for i in $(seq "$runs"); do
        f=$tmp/$name.$i
        "$probe" -H "$hold" -t "$limit" -- "$cvmm" -v "$@" >"$f"
        grep -q '^mem rss_kib=' "$f" || {
            echo "$name: run $i did not reach '$hold'; last lines:"; tail -n 15 "$f" | sed 's/^/    /'; return 1; }
    done
    local setup self marker rss guest over
    setup=$(for f in "$tmp/$name".*; do awk '/^err .*first KVM_RUN/ {print $2 + 0; exit}' "$f"; done | median)
    self=$(for f in "$tmp/$name".*; do
               sed -n 's/.*first KVM_RUN \([0-9.]*\) ms after start.*/\1/p' "$f" | head -n 1; done | median)
    marker=$(for f in "$tmp/$name".*; do awk '/^err .*boot-timer: guest booted/ {print $2 + 0; exit}' "$f"; done | median)
    rss=$(for f in "$tmp/$name".*; do sed -n 's/^mem rss_kib=\([0-9]*\).*/\1/p' "$f"; done | median)
    guest=$(for f in "$tmp/$name".*; do sed -n 's/^mem .*guest_kib=\([0-9]*\).*/\1/p' "$f"; done | median)
    over=$(for f in "$tmp/$name".*; do sed -n 's/^mem .*overhead_kib=\([0-9]*\).*/\1/p' "$f"; done | median)
    verdict() { awk -v v="$1" -v t="$2" 'BEGIN { if (v == "n/a" || v == "") print "not measured"; else if (v + 0 <= t) print "ok"; else print "OVER" }'; }
    echo "$name ($runs runs, medians):"
    printf '  setup, spawn -> first KVM_RUN   %8s ms   (cvmm from main(): %s ms)   target <= 10 ms: %s\n' \
        "${setup:-n/a}" "${self:-n/a}" "$(verdict "$setup" 10)"
    printf '  spawn -> boot-timer marker      %8s ms\n' "${marker:-n/a}"
    printf '  VMM memory overhead             %8s KiB (RSS %s KiB - guest %s KiB)   target <= 2048 KiB: %s\n' \
        "${over:-n/a}" "$rss" "$guest" "$(verdict "$over" 2048)"
}

status=0
run_case testguest "TG: PASS" 30 --kernel "$BUILD/testguest/testguest.elf" --cpus boot=1 \
    --memory size=128M --cmdline "tg.cpus=1 tg.mem=128M tg.halt" || status=1

verdict=$("$cvmm" --check-host)
if [ $? -ne 0 ]; then
    echo "linux: not measured: ${verdict:-cvmm --check-host gave no verdict}"
    exit $status
fi
"$root/images/linux/build.sh" "$BUILD/linux" >/dev/null || exit 1
# The init marks "booted" on the boot-timer port through /dev/port, then idles.
cat >"$tmp/init.sh" <<'EOS'
printf '\173' | dd of=/dev/port bs=1 seek=1088 count=1 2>/dev/null
echo "BENCH: booted"
sleep 60
EOS
LINUX_DIR=$BUILD/linux "$root/images/linux/mkinitrd.sh" "$tmp/initrd.gz" "$tmp/init.sh" || exit 1
run_case linux "BENCH: booted" 300 --kernel "$BUILD/linux/vmlinuz" --initramfs "$tmp/initrd.gz" \
    --cpus boot=1 --memory size=512M --cmdline "console=ttyS0 panic=-1 reboot=k quiet" || status=1
exit $status

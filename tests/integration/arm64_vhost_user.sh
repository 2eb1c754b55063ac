#!/usr/bin/env bash
# The aarch64 build of cvmm's vhost-user back-ends speaks the protocol to an
# x86 front-end: the cross-built (make ARCH=arm64) cvmm runs under qemu-user
# (qemu-aarch64) on this machine as `--block-backend` and `--net-backend`,
# and the x86 cvmm with its test guest uses them (--disk/--net
# vhost_user=on): the guest writes a seeded block, reads it back and
# flushes, the block is checked in the image; the guest's seeded frame
# reaches the back-end's tap (in a network namespace) and the host's answer
# reaches the guest. Both transports, one device each.
# Seccomp is off in the emulated back-ends (--seccomp false): qemu-user
# refuses every seccomp filter (EINVAL), as a filter would bind the
# emulator's own host system calls, not the guest program's. The arm64
# filters are checked on a real arm64 kernel by arm64_linux.sh.
set -u
: "${BUILD:?BUILD is not set}"
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$here/lib/testguest.sh"
for tool in qemu-aarch64 aarch64-linux-gnu-gcc python3; do
    command -v $tool >/dev/null || { echo "FAIL: $tool is missing (tests/install-deps.sh installs it)"; exit 1; }
done
[ -e /lib/ld-linux-aarch64.so.1 ] || { echo "FAIL: no arm64 dynamic loader (libc6:arm64, tests/install-deps.sh)"; exit 1; }

a64=$BUILD/arm64
# The path as make check spells it (build/arm64), as arm64_linux.sh does.
a64_make=$(realpath -m --relative-to="$root" "$a64")
make -s -C "$root" ARCH=arm64 BUILD="$a64_make" "$a64_make/cvmm" >/dev/null ||
    { echo "FAIL: cross-build (make ARCH=arm64)"; exit 1; }
case $(od -An -j18 -N2 -tu2 "$a64/cvmm" | tr -d ' ') in
    183) ;;   # EM_AARCH64
    *) echo "FAIL: $a64/cvmm is not an aarch64 binary"; exit 1;;
esac

tg_setup a64vu
tg_netns cvmm-a64vu-$$

# The arm64 back-end, in the background (BE_PID: qemu-aarch64 itself, which
# nsenter execs), until its socket appears.
start_backend() {   # LOG ARGS...
    local log=$1
    shift
    nsenter --net="/run/netns/$ns" qemu-aarch64 "$a64/cvmm" -v --seccomp false "$@" >"$log" 2>&1 &
    BE_PID=$!
    pids+=("$BE_PID")
}

# virtio-blk: the arm64 --block-backend behind the x86 front-end.
for transport in pci mmio; do
    name=blk-$transport
    seed=$((RANDOM % 256))
    img=$tmp/$name.img
    sock=$tmp/$name.sock
    truncate -s 1M "$img"
    start_backend "$tmp/$name.be" --block-backend "path=$img,socket=$sock"
    if ! tg_wait_sock "$sock" "$BE_PID" 30; then
        fail "$name: the arm64 back-end did not start: $(tail -n 3 "$tmp/$name.be")"
        continue
    fi
    tg_vhost_blk_check "$name" $transport "$seed" 120 &&
        echo "ok $name (seed $seed): the arm64 back-end served the x86 guest's disk"
done

# virtio-net: the arm64 --net-backend on a tap; net_peer.py answers the
# guest's frame there.
for transport in pci mmio; do
    name=net-$transport
    seed=$((RANDOM % 10))
    sock=$tmp/$name.sock
    tap=a64vu$transport
    start_backend "$tmp/$name.be" --net-backend "tap=$tap,socket=$sock"
    if ! tg_wait_sock "$sock" "$BE_PID" 30; then
        fail "$name: the arm64 back-end did not start: $(tail -n 3 "$tmp/$name.be")"
        continue
    fi
    before=$(ip netns exec "$ns" cat "/sys/class/net/$tap/statistics/rx_packets")
    ip netns exec "$ns" python3 "$here/lib/net_peer.py" "$tap" "$seed" timeout 120 "$cvmm" -v --kernel "$guest" \
        --memory size=128M --serial "file=$tmp/$name.out" --transport $transport \
        --cmdline "tg.virtio=1 tg.seed=$seed" --net "vhost_user=on,socket=$sock,mac=52:54:00:12:34:5$seed" \
        >"$tmp/$name.peer" 2>"$tmp/$name.log" </dev/null
    rc=$?
    got=$(( $(ip netns exec "$ns" cat "/sys/class/net/$tap/statistics/rx_packets") - before ))
    tg_stop_backend
    echo "--- $name: exit=$rc"
    sed 's/^/    /' "$tmp/$name.peer"
    tg_guest_lines "$tmp/$name.out" | sed 's/^/    /'
    if [ $rc -ne 0 ]; then
        fail "$name: no frame exchange (exit $rc): $(tail -n 3 "$tmp/$name.log")"
    elif ! tg_guest_lines "$tmp/$name.out" | grep -q "^TG: virtio-net $transport mac=52:54:0:12:34:5$seed pairs=1 tx+rx ok"; then
        fail "$name: no virtio-net ok line from the guest"
    elif ! grep -q "(vhost-user): virtio-$transport" "$tmp/$name.log"; then
        fail "$name: the NIC was not the vhost-user device"
    elif [ "$got" -lt 1 ]; then
        fail "$name: the back-end's tap counted no frame from the guest"
    else
        echo "ok $name (seed $seed): the arm64 back-end carried the frames both ways ($got on its tap)"
    fi
done
[ $failed -eq 0 ] && echo "arm64_vhost_user: ok"
exit $failed

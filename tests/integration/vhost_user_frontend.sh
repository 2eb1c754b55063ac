#!/usr/bin/env bash
# cvmm as a vhost-user front-end (--disk vhost_user=on,socket=...): the test
# guest's virtio-blk check (write a pattern, read it back, flush, GET_ID) on
# a disk served by `cvmm --block-backend` and by qemu-storage-daemon, over
# both transports, with the pattern then checked in the image on the host.
# Then, while the guest writes and reads back 40 blocks one after the other
# (tg.blkloop), the back-end is killed with SIGKILL in the middle of a
# request (strace holds each of its I/O syscalls 0.3 s, so one is in flight)
# and started again: cvmm reconnects, the guest sees no error and the image
# holds every block. The image grown under a guest reaches it
# (CONFIG_CHANGE_MSG, GET_CONFIG). Bad options are one-line errors (exit 2).
set -u
: "${BUILD:?BUILD is not set}"
. "$(dirname "$0")/lib/testguest.sh"
for tool in qemu-storage-daemon strace python3; do
    command -v $tool >/dev/null || { echo "FAIL: $tool is missing (tests/install-deps.sh installs it)"; exit 1; }
done
tg_setup vufe

# backend_started PID SOCK WRAPPED: BE_PID=PID (or, WRAPPED > 0, the child
# its wrapper runs), once PID's socket SOCK is there; 1 if PID ends first.
backend_started() {
    BE_PID=$1
    pids+=("$BE_PID")
    tg_wait_sock "$2" "$BE_PID" || return 1
    if [ "$3" -gt 0 ]; then
        BE_PID=$(pgrep -P "$BE_PID" | head -n 1)
        pids+=("$BE_PID")
    fi
}

# Back-ends, started in the background; BE_PID is the process itself (also
# under strace, whose tracee it then is). Each removes a stale socket.
start_cvmm_backend() {   # IMG SOCK LOG [WRAPPER...]
    local img=$1 sock=$2 log=$3
    shift 3
    "$@" "$cvmm" --block-backend "path=$img,socket=$sock" >>"$log" 2>&1 &
    backend_started $! "$sock" $#
}
start_qsd() {   # IMG SOCK LOG [WRAPPER...]
    local img=$1 sock=$2 log=$3
    shift 3
    rm -f "$sock"
    "$@" qemu-storage-daemon --blockdev "driver=file,node-name=f0,filename=$img" \
        --export "type=vhost-user-blk,id=e0,node-name=f0,addr.type=unix,addr.path=$sock,writable=on,num-queues=1" \
        </dev/null >>"$log" 2>&1 &
    backend_started $! "$sock" $#
}

# new_case NAME SIZE: a case's name, seed, image of SIZE (truncate's units)
# and back-end socket path: sets name, seed, img and sock.
new_case() {
    name=$1
    seed=$((RANDOM % 256))
    img=$tmp/$name.img
    sock=$tmp/$name.sock
    truncate -s "$2" "$img"
}

# start_block_loop NAME SEED LOOPS [TG_WORD [TRANSPORT]]: the guest writes and
# reads back LOOPS blocks on the vhost-user disk at $tmp/NAME.sock (on
# TRANSPORT, pci by default), in the background (vm is its pid); returns once
# the first check's block is through (at most 30 s).
start_block_loop() {
    timeout 120 "$cvmm" -v --kernel "$guest" --memory size=128M --serial "file=$tmp/$1.out" \
        --transport "${5:-pci}" --cmdline "tg.virtio=1 tg.seed=$2 tg.blkloop=$3${4:+ $4}" \
        --disk "vhost_user=on,socket=$tmp/$1.sock" >"$tmp/$1.log" 2>&1 </dev/null &
    vm=$!
    pids+=("$vm")
    it_wait_line "$tmp/$1.out" "wrote+read" 30
}

# The check on both back-ends and both transports.
for backend in cvmm qsd; do
    for transport in pci mmio; do
        new_case $backend-$transport 1M
        if ! start_$([ $backend = cvmm ] && echo cvmm_backend || echo qsd) "$img" "$sock" "$tmp/$name.be"; then
            fail "$name: the back-end did not start: $(tail -n 3 "$tmp/$name.be")"
            continue
        fi
        tg_vhost_blk_check "$name" $transport "$seed" 60 && echo "ok $name (seed $seed)"
    done
done

# SIGKILL and restart under a running guest, for each back-end.
loops=40
for backend in cvmm qsd; do
    new_case kill-$backend 4M
    if [ $backend = cvmm ]; then
        start=start_cvmm_backend
        slow=(strace -f -qq -o /dev/null -e trace=io_uring_enter,pwritev,preadv,fdatasync
              -e inject=io_uring_enter,pwritev,preadv,fdatasync:delay_enter=300000)
    else
        start=start_qsd
        slow=(strace -f -qq -o /dev/null -e trace=pwritev,preadv,pwrite64,pread64,io_submit,fdatasync
              -e inject=pwritev,preadv,pwrite64,pread64,io_submit,fdatasync:delay_enter=300000)
    fi
    $start "$img" "$sock" "$tmp/$name.be" "${slow[@]}" || { fail "$name: the back-end did not start"; continue; }
    start_block_loop "$name" "$seed" "$loops"
    sleep 1.5
    if grep -q "loop $loops blocks" "$tmp/$name.out"; then
        fail "$name: the guest finished before the kill; the test would prove nothing"
    fi
    kill -KILL "$BE_PID"
    sleep 0.5
    $start "$img" "$sock" "$tmp/$name.be" || fail "$name: the back-end did not restart"
    wait "$vm"
    rc=$?
    tg_stop_backend
    echo "--- $name: exit=$rc"
    tg_guest_lines "$tmp/$name.out" | sed 's/^/    /'
    grep -E "gone|reconnected" "$tmp/$name.log" | sed 's/^/    cvmm: /'
    if [ $rc -ne 0 ] || ! tg_guest_lines "$tmp/$name.out" | grep -q "^TG: virtio-blk pci loop $loops blocks ok capacity=8192$"; then
        fail "$name: the guest did not finish its blocks (exit $rc): $(tail -n 3 "$tmp/$name.log")"
    elif ! grep -q "vhost-user back-end reconnected" "$tmp/$name.log"; then
        fail "$name: cvmm did not reconnect"
    elif ! tg_blk_image_ok "$img" "$seed" $loops; then
        fail "$name: the image lacks blocks the guest wrote"
    else
        echo "ok $name: SIGKILL and restart under the guest, $loops blocks intact"
    fi
done

# A disk resized under the guest: cvmm --block-backend sends CONFIG_CHANGE_MSG,
# cvmm fetches the config again and the guest reads the new capacity (on
# virtio-mmio from the window's read-only copy, which the change rewrites).
for transport in pci mmio; do
    new_case resize-$transport 4M
    if ! start_cvmm_backend "$img" "$sock" "$tmp/$name.be"; then
        fail "$name: the back-end did not start"
        continue
    fi
    # The guest waits (10 s at most) for the disk to grow after its blocks.
    start_block_loop "$name" "$seed" 20 tg.blkgrow $transport
    truncate -s 8M "$img"
    wait "$vm"
    rc=$?
    tg_stop_backend
    tg_guest_lines "$tmp/$name.out" | grep loop | sed 's/^/    /'
    if [ $rc -ne 0 ] ||
        ! tg_guest_lines "$tmp/$name.out" | grep -q "^TG: virtio-blk $transport loop 20 blocks ok capacity=16384$"; then
        fail "$name: the guest did not see the disk grow to 16384 sectors (exit $rc)"
    else
        echo "ok $name: the guest read the new capacity"
    fi
done

# Bad options: one line naming the problem, exit 2, no VM.
tg_check_error no-socket "socket=PATH (the back-end's socket) is required" --disk vhost_user=on
tg_check_error path "path= is the back-end's to set" --disk "vhost_user=on,socket=$tmp/x.sock,path=$tmp/x.img"
tg_check_error socket-only "socket= needs vhost_user=on" --disk "socket=$tmp/x.sock"
tg_check_error no-backend "cannot connect to the vhost-user back-end on $tmp/none.sock" \
    --disk "vhost_user=on,socket=$tmp/none.sock"
tg_check_error bool "vhost_user" --disk "vhost_user=maybe,socket=$tmp/x.sock"
# A back-end with fewer queues than asked for is refused.
truncate -s 1M "$tmp/q.img"
start_cvmm_backend "$tmp/q.img" "$tmp/q.sock" "$tmp/q.be" || fail "queues: the back-end did not start"
tg_check_error queues "the vhost-user back-end has 1 queue(s), 2 configured" \
    --disk "vhost_user=on,socket=$tmp/q.sock,num_queues=2"
tg_stop_backend

exit $failed

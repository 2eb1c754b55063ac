#!/usr/bin/env bash
# Kill/restart: while a QEMU guest writes to /dev/vda through cvmm
# --block-backend, the back-end is killed with SIGKILL and started again on
# the same socket. QEMU reconnects (reconnect=1) and hands back the inflight
# region; requests that were in flight are completed by the new back-end.
# The guest must finish its writes, read back the right data, and the image
# must hold it.
set -u
. "$(dirname "$0")/lib/vhost_blk.sh"
vb_setup

img=$VB_TMP/vblk.img
truncate -s 128M "$img"
# While killed back-ends run, each I/O submission (io_uring_enter, or
# pwritev where io_uring is unavailable) and flush is held 0.3 s on entry
# (strace fault injection), so requests are in flight when SIGKILL comes.
slow=(strace -f -qq -o /dev/null -e trace=io_uring_enter,pwritev,fdatasync
      -e inject=io_uring_enter,pwritev,fdatasync:delay_enter=300000)
command -v strace >/dev/null || { echo "SKIP: strace is not installed (tests/install-deps.sh)"; exit 77; }
vb_backend "path=$img,socket=$VB_SOCK" "${slow[@]}"
vb_qemu_bg stress "$VB_TMP/stress.log" ",reconnect=1"
it_wait_line "$VB_TMP/stress.log" "CVMM-BLK: writing" 180 || it_fail "guest did not start writing"
# Kill the back-end three times in the middle of the writes, each time at a
# moment its inflight region shows requests in flight (inflight_kill.py
# stops it, checks, kills); the restarts alternate between O_DIRECT and
# buffered I/O on the image, the last one runs at full speed so that the
# guest finishes.
for cycle in 1 2 3; do
    sleep 1
    grep -aq "CVMM-BLK: stress" "$VB_TMP/stress.log" &&
        it_fail "guest finished before kill $cycle; the test would prove nothing"
    python3 "$IT_ROOT/tests/integration/lib/inflight_kill.py" "$VB_BACKEND_PID" 60 ||
        it_fail "kill $cycle: the back-end never had a request in flight"
    sleep 0.5
    opts="path=$img,socket=$VB_SOCK"
    [ $((cycle % 2)) = 1 ] && opts="$opts,direct=on"
    if [ $cycle -lt 3 ]; then
        vb_backend "$opts" "${slow[@]}"
    else
        vb_backend "$opts"
    fi
    echo "ok: kill $cycle during guest writes, back-end restarted ($opts)"
done
wait "$VB_QEMU_PID" || it_fail "qemu exited with $?"
line=$(grep -a "CVMM-BLK: stress" "$VB_TMP/stress.log" | tr -d '\r')
[ -n "$line" ] || it_fail "guest did not finish its writes"
grep -aq "dd .* failed" "$VB_TMP/stress.log" && it_fail "a guest write failed"
want=$(echo "$line" | sed -n 's/.*want=\([0-9a-f]*\).*/\1/p')
[ "$(echo "$line" | sed -n 's/.*bad=\([0-9]*\).*/\1/p')" = 0 ] || it_fail "guest read back wrong data: $line"
chunks=$(echo "$line" | sed -n 's/.*chunks=\([0-9]*\).*/\1/p')
[ "$chunks" = 32 ] || it_fail "guest wrote $chunks chunks, expected 32"
for k in $(seq 0 $((chunks - 1))); do
    got=$(dd if="$img" bs=4M skip="$k" count=1 status=none | md5sum | cut -d' ' -f1)
    [ "$got" = "$want" ] || it_fail "image chunk $k holds $got, guest wrote $want"
done
# Every kill came while the stopped back-end held requests in flight, so
# every restart must find and complete them.
n=$(grep -ac "left in flight" "$VB_TMP/backend.log")
[ "$n" = 3 ] || it_fail "$n of 3 restarts completed requests the killed back-end left in flight"
echo "ok: each of the 3 restarts completed requests the killed back-end left in flight"
echo "ok: guest finished, read back its data; all $chunks chunks of 4 MiB in the image match ($want)"
echo "PASS"

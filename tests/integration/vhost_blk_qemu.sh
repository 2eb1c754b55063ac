#!/usr/bin/env bash
# cvmm --block-backend against a real front-end: QEMU (TCG) boots Debian's
# kernel whose virtio_blk driver writes, reads back and checksums data and
# discards a range; the host verifies the image. Then, with the same
# back-end process: a second QEMU with two queues (reconnect), a resize the running guest
# must see (CONFIG_CHANGE_MSG); then readonly=on, and client=on (QEMU
# listens, the back-end connects).
set -u
. "$(dirname "$0")/lib/vhost_blk.sh"
vb_setup

img=$VB_TMP/vblk.img
truncate -s 64M "$img"
vb_backend "path=$img,socket=$VB_SOCK,num_queues=2"

# 1. fresh guest (one of the two queues): write/read/checksum, discard, serial
vb_qemu rw "$VB_TMP/rw1.log"
vb_check_write "$VB_TMP/rw1.log" "$img"
grep -aq "CVMM-BLK: size 131072 ro 0 serial vblk.img mq 1" "$VB_TMP/rw1.log" ||
    it_fail "guest saw the wrong size/ro/serial: $(grep -a 'CVMM-BLK: size' "$VB_TMP/rw1.log")"
grep -aq "CVMM-BLK: discard rc=0 zeroed" "$VB_TMP/rw1.log" || it_fail "discard did not zero the range"
[ "$(dd if="$img" bs=64k count=1 status=none | tr -d '\0' | wc -c)" = 0 ] || it_fail "discarded range not zero in the image"
echo "ok: size, serial and discard as expected"

# 2. the same back-end serves the next front-end, this one with two queues
VB_NQ=2 vb_qemu rw "$VB_TMP/rw2.log"
vb_check_write "$VB_TMP/rw2.log" "$img"
grep -aq "CVMM-BLK: size .* mq 2" "$VB_TMP/rw2.log" || it_fail "guest did not get two queues"
kill -0 "$VB_BACKEND_PID" || it_fail "back-end died"
echo "ok: second front-end (2 queues, 2 vCPUs) served by the same back-end process"

# 3. resize while the guest runs
vb_qemu_bg resize "$VB_TMP/resize.log"
it_wait_line "$VB_TMP/resize.log" "ready-for-resize" 180 || it_fail "guest did not get ready for the resize"
truncate -s 128M "$img"
wait "$VB_QEMU_PID" || it_fail "qemu (resize) exited with $?"
grep -aq "CVMM-BLK: resized 262144" "$VB_TMP/resize.log" ||
    it_fail "guest did not see the new size: $(grep -a 'resized' "$VB_TMP/resize.log")"
vb_check_write "$VB_TMP/resize.log" "$img"
echo "ok: guest saw 64 MiB -> 128 MiB without a reboot and used the new space"

# clean stop: exit 0, socket removed
kill -TERM "$VB_BACKEND_PID"
wait "$VB_BACKEND_PID"; rc=$?
[ "$rc" = 0 ] || it_fail "back-end exited with $rc on SIGTERM"
[ ! -e "$VB_SOCK" ] || it_fail "socket file left behind"
echo "ok: SIGTERM: exit 0, socket removed"

# 4. readonly=on: the guest cannot write, the image stays as it was
before=$(md5sum <"$img")
vb_backend "path=$img,socket=$VB_SOCK,readonly=on"
vb_qemu ro "$VB_TMP/ro.log"
grep -aq "CVMM-BLK: size 262144 ro 1" "$VB_TMP/ro.log" || it_fail "guest does not see a read-only disk"
grep -aq "CVMM-BLK: ro-write rc=0" "$VB_TMP/ro.log" && it_fail "guest write succeeded on a read-only disk"
grep -aq "CVMM-BLK: ro-read rc=0" "$VB_TMP/ro.log" || it_fail "guest read failed on a read-only disk"
[ "$(md5sum <"$img")" = "$before" ] || it_fail "read-only image changed"
echo "ok: readonly=on: guest write refused, reads work, image unchanged"
kill -TERM "$VB_BACKEND_PID"; wait "$VB_BACKEND_PID"

# 5. client=on: QEMU listens, the back-end connects
vb_qemu_bg rw "$VB_TMP/client.log" ",server=on,wait=off"
for _ in $(seq 100); do [ -S "$VB_SOCK" ] && break; sleep 0.1; done
vb_backend "path=$img,socket=$VB_SOCK,client=on"
wait "$VB_QEMU_PID" || it_fail "qemu (client) exited with $?"
vb_check_write "$VB_TMP/client.log" "$img"
echo "ok: client=on: the back-end connected to QEMU's socket and served it"
echo "PASS"

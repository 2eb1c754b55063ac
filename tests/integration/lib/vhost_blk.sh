# Shared by the vhost-user-blk integration tests (sourced, not run): a QEMU
# TCG guest (Debian's cloud kernel, busybox initramfs with
# tests/integration/guest/vhost_blk_guest.sh) against `cvmm --block-backend`.
# It gets $VB_TMP (common.sh's IT_TMP), vb_backend, vb_qemu*; VB_NQ
# (default 1) is the guest's queue count (and vCPUs). Everything started
# here is stopped and the temp dir removed on exit (common.sh; IT_KEEP=DIR
# copies it there first, for debugging).

. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
LINUX_DIR=${LINUX_DIR:-$BUILD/linux}

vb_setup() {
    command -v qemu-system-x86_64 >/dev/null || { echo "SKIP: qemu-system-x86_64 is not installed"; exit 77; }
    if ! timeout 300 "$IT_ROOT/images/linux/build.sh" "$LINUX_DIR" >/dev/null 2>"$BUILD/vhost_blk_kernel.err"; then
        echo "SKIP: cannot get Debian's cloud kernel: $(tail -n 1 "$BUILD/vhost_blk_kernel.err")"
        exit 77
    fi
    # /var/tmp: on disk, where direct=on (O_DIRECT) works; tmpfs may refuse it.
    it_setup vblk /var/tmp
    VB_TMP=$IT_TMP
    LINUX_DIR=$LINUX_DIR "$IT_ROOT/images/linux/mkinitrd.sh" "$VB_TMP/initrd.gz" \
        "$IT_ROOT/tests/integration/guest/vhost_blk_guest.sh" || it_fail "mkinitrd"
    VB_SOCK=$VB_TMP/blk.sock
}

# vb_backend OPTS [WRAPPER...]: starts the back-end with -v, optionally
# under a wrapper command such as strace, and waits until it serves (its
# "serving" line; a stale socket file of a killed back-end may exist).
# Sets VB_BACKEND_PID to the back-end process itself.
vb_backend() {
    local opts=$1 i before
    shift
    before=$(grep -ac "block-backend: serving" "$VB_TMP/backend.log" 2>/dev/null)
    "$@" "$CVMM" -v --block-backend "$opts" >>"$VB_TMP/backend.log" 2>&1 &
    VB_BACKEND_PID=$!
    it_track "$VB_BACKEND_PID"
    for i in $(seq 100); do
        if [ "$(grep -ac "block-backend: serving" "$VB_TMP/backend.log")" -gt "${before:-0}" ] &&
           [ -S "$VB_SOCK" ]; then
            if [ $# -gt 0 ]; then
                VB_BACKEND_PID=$(pgrep -P "$VB_BACKEND_PID" | head -n 1)
                [ -n "$VB_BACKEND_PID" ] || it_fail "back-end under $1 not found"
                it_track "$VB_BACKEND_PID"
            fi
            return 0
        fi
        kill -0 "$VB_BACKEND_PID" 2>/dev/null || it_fail "back-end exited at start"
        sleep 0.1
    done
    it_fail "back-end did not start serving on $VB_SOCK"
}

# vb_qemu_bg MODE LOG [CHARDEV_EXTRA]: boots the guest in MODE in the
# background (VB_QEMU_PID), console to LOG.
vb_qemu_bg() {
    timeout 240 qemu-system-x86_64 -accel tcg -cpu max -m 512 -smp "${VB_NQ:-1}" -nographic -no-reboot \
        -object memory-backend-memfd,id=mem,size=512M,share=on -numa node,memdev=mem \
        -chardev "socket,id=c1,path=$VB_SOCK${3:-}" -device "vhost-user-blk-pci,chardev=c1,num-queues=${VB_NQ:-1}" \
        -kernel "$LINUX_DIR/vmlinuz" -initrd "$VB_TMP/initrd.gz" \
        -append "console=ttyS0 panic=-1 reboot=k quiet no_timer_check cvmm_blk=$1" </dev/null >"$2" 2>&1 &
    VB_QEMU_PID=$!
    it_track "$VB_QEMU_PID"
}

# vb_qemu MODE LOG: boots the guest in MODE and waits for it to finish.
vb_qemu() {
    vb_qemu_bg "$1" "$2"
    wait "$VB_QEMU_PID" || it_fail "qemu ($1) exited with $?"
    grep -aq "CVMM-INIT: done" "$2" || it_fail "guest ($1) did not finish"
}

# vb_field LOG KEY: value of KEY=... on the guest's last "write" line.
vb_field() {
    grep -a "CVMM-BLK: write" "$1" | tail -n 1 | tr -d '\r' | tr ' ' '\n' | sed -n "s/^$2=//p"
}

# vb_check_write LOG IMG: the guest wrote and read back the same data, and
# the image holds exactly that data where the guest put it.
vb_check_write() {
    local want got rc off n host
    want=$(vb_field "$1" want); got=$(vb_field "$1" got); rc=$(vb_field "$1" rc)
    off=$(vb_field "$1" off); n=$(vb_field "$1" n)
    [ -n "$want" ] || it_fail "no write report from the guest in $1"
    [ "$rc" = 0 ] || it_fail "guest write failed (rc=$rc)"
    [ "$want" = "$got" ] || it_fail "guest read back $got, wrote $want"
    host=$(dd if="$2" bs=1M skip="$off" count="$n" status=none | md5sum | cut -d' ' -f1)
    [ "$host" = "$want" ] || it_fail "image holds $host at ${off} MiB, guest wrote $want"
    echo "ok: guest wrote ${n} MiB at ${off} MiB, read it back, image matches ($want)"
}

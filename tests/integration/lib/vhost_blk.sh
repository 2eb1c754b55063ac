# Shared by the vhost-user-blk integration tests (sourced, not run): a QEMU
# TCG guest (Debian's cloud kernel, busybox initramfs with
# tests/integration/guest/vhost_blk_guest.sh) against `cvmm --block-backend`.
# It gets $VB_TMP, vb_backend, vb_qemu*, vb_fail; VB_NQ (default 1) is the
# guest's queue count (and vCPUs). Everything started here is killed and
# the temp dir removed on exit (VB_KEEP=DIR copies it there first, for
# debugging).

VB_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
: "${BUILD:?BUILD (absolute build directory) must be set}"
CVMM=${CVMM:-$BUILD/cvmm}
LINUX_DIR=${LINUX_DIR:-$BUILD/linux}
VB_PIDS=()

vb_cleanup() {
    local p
    for p in "${VB_PIDS[@]}"; do
        kill -KILL "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    [ -n "${VB_TMP:-}" ] && { [ -n "${VB_KEEP:-}" ] && cp -r "$VB_TMP" "$VB_KEEP"; rm -rf "$VB_TMP"; }
}

vb_fail() {
    echo "FAIL: $*"
    for f in "$VB_TMP"/*.log; do
        [ -f "$f" ] || continue
        echo "--- $(basename "$f") (last lines)"
        tail -n 15 "$f" | tr -d '\r' | grep -av '^\s*$'
    done
    exit 1
}

vb_setup() {
    command -v qemu-system-x86_64 >/dev/null || { echo "SKIP: qemu-system-x86_64 is not installed"; exit 77; }
    [ -x "$CVMM" ] || { echo "FAIL: $CVMM not built"; exit 1; }
    if ! timeout 300 "$VB_ROOT/images/linux/build.sh" "$LINUX_DIR" >/dev/null 2>"$BUILD/vhost_blk_kernel.err"; then
        echo "SKIP: cannot get Debian's cloud kernel: $(tail -n 1 "$BUILD/vhost_blk_kernel.err")"
        exit 77
    fi
    # /var/tmp: on disk, where direct=on (O_DIRECT) works; tmpfs may refuse it.
    VB_TMP=$(mktemp -d /var/tmp/cvmm-vblk.XXXXXX)
    trap vb_cleanup EXIT
    LINUX_DIR=$LINUX_DIR "$VB_ROOT/images/linux/mkinitrd.sh" "$VB_TMP/initrd.gz" \
        "$VB_ROOT/tests/integration/guest/vhost_blk_guest.sh" || vb_fail "mkinitrd"
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
    VB_PIDS+=("$VB_BACKEND_PID")
    for i in $(seq 100); do
        if [ "$(grep -ac "block-backend: serving" "$VB_TMP/backend.log")" -gt "${before:-0}" ] &&
           [ -S "$VB_SOCK" ]; then
            if [ $# -gt 0 ]; then
                VB_BACKEND_PID=$(pgrep -P "$VB_BACKEND_PID" | head -n 1)
                [ -n "$VB_BACKEND_PID" ] || vb_fail "back-end under $1 not found"
                VB_PIDS+=("$VB_BACKEND_PID")
            fi
            return 0
        fi
        kill -0 "$VB_BACKEND_PID" 2>/dev/null || vb_fail "back-end exited at start"
        sleep 0.1
    done
    vb_fail "back-end did not start serving on $VB_SOCK"
}

# vb_qemu_bg MODE LOG [CHARDEV_EXTRA]: boots the guest in MODE in the
# background (VB_QEMU_PID), console to LOG.
vb_qemu_bg() {
    timeout 240 qemu-system-x86_64 -accel tcg -cpu max -m 512 -smp "${VB_NQ:-1}" -nographic -no-reboot \
        -object memory-backend-memfd,id=mem,size=512M,share=on -numa node,memdev=mem \
        -chardev "socket,id=c1,path=$VB_SOCK${3:-}" -device "vhost-user-blk-pci,chardev=c1,num-queues=${VB_NQ:-1}" \
        -kernel "$LINUX_DIR/vmlinuz" -initrd "$VB_TMP/initrd.gz" \
        -append "console=ttyS0 panic=-1 reboot=k quiet cvmm_blk=$1" </dev/null >"$2" 2>&1 &
    VB_QEMU_PID=$!
    VB_PIDS+=("$VB_QEMU_PID")
}

# vb_qemu MODE LOG: boots the guest in MODE and waits for it to finish.
vb_qemu() {
    vb_qemu_bg "$1" "$2"
    wait "$VB_QEMU_PID" || vb_fail "qemu ($1) exited with $?"
    grep -aq "CVMM-INIT: done" "$2" || vb_fail "guest ($1) did not finish"
}

# vb_wait_line LOG PATTERN SECS: waits for the guest to print PATTERN.
vb_wait_line() {
    local i
    for i in $(seq $(( $3 * 10 ))); do
        grep -aq "$2" "$1" && return 0
        sleep 0.1
    done
    return 1
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
    [ -n "$want" ] || vb_fail "no write report from the guest in $1"
    [ "$rc" = 0 ] || vb_fail "guest write failed (rc=$rc)"
    [ "$want" = "$got" ] || vb_fail "guest read back $got, wrote $want"
    host=$(dd if="$2" bs=1M skip="$off" count="$n" status=none | md5sum | cut -d' ' -f1)
    [ "$host" = "$want" ] || vb_fail "image holds $host at ${off} MiB, guest wrote $want"
    echo "ok: guest wrote ${n} MiB at ${off} MiB, read it back, image matches ($want)"
}

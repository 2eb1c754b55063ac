# Shared by the vsock integration test and bench/vsock.sh (sourced, not
# run): a QEMU TCG guest (Debian's cloud kernel, busybox initramfs with
# tests/integration/guest/vhost_vsock_guest.sh and a static vsock-tool)
# with vhost-user-vsock-pci against `cvmm --vsock-backend`.
# The caller gets $VV_TMP, $VV_TOOL (host build of vsock-tool), $VV_UDS,
# vv_backend, vv_qemu_bg, vv_guest_line. Everything started here is stopped
# and the temp dir removed on exit (common.sh).

. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
LINUX_DIR=${LINUX_DIR:-$BUILD/linux}
VV_CID=${VV_CID:-5}

vv_setup() {
    command -v qemu-system-x86_64 >/dev/null || { echo "SKIP: qemu-system-x86_64 is not installed"; exit 77; }
    if ! timeout 300 "$IT_ROOT/images/linux/build.sh" "$LINUX_DIR" >/dev/null 2>"$BUILD/vhost_vsock_kernel.err"; then
        echo "SKIP: cannot get Debian's cloud kernel: $(tail -n 1 "$BUILD/vhost_vsock_kernel.err")"
        exit 77
    fi
    it_setup vsock
    VV_TMP=$IT_TMP
    local src=$IT_ROOT/tests/integration/guest/vsock-tool.c
    VV_TOOL=$VV_TMP/vsock-tool
    gcc -O2 -o "$VV_TOOL" "$src" || it_fail "cannot build vsock-tool"
    if ! gcc -static -O2 -o "$VV_TMP/vsock-tool-static" "$src" 2>"$VV_TMP/gcc-static.err"; then
        echo "SKIP: cannot link a static program for the guest: $(tail -n 1 "$VV_TMP/gcc-static.err")"
        exit 77
    fi
    LINUX_DIR=$LINUX_DIR "$IT_ROOT/images/linux/mkinitrd.sh" "$VV_TMP/initrd.gz" \
        "$IT_ROOT/tests/integration/guest/vhost_vsock_guest.sh" \
        "$VV_TMP/vsock-tool-static:/vsock-tool" || it_fail "mkinitrd"
    VV_SOCK=$VV_TMP/vu.sock
    VV_UDS=$VV_TMP/uds
}

# vv_backend: starts `cvmm --vsock-backend` (VV_BACKEND_PID) and waits
# until it serves.
vv_backend() {
    local i before
    before=$(grep -ac "vsock-backend: guest cid" "$VV_TMP/backend.log" 2>/dev/null)
    "$CVMM" -v --vsock-backend "cid=$VV_CID,socket=$VV_SOCK,uds_path=$VV_UDS" >>"$VV_TMP/backend.log" 2>&1 &
    VV_BACKEND_PID=$!
    it_track "$VV_BACKEND_PID"
    for i in $(seq 100); do
        if [ "$(grep -ac "vsock-backend: guest cid" "$VV_TMP/backend.log")" -gt "${before:-0}" ] &&
           [ -S "$VV_SOCK" ] && [ -S "$VV_UDS" ]; then
            return 0
        fi
        kill -0 "$VV_BACKEND_PID" 2>/dev/null || it_fail "back-end exited at start"
        sleep 0.1
    done
    it_fail "back-end did not start serving on $VV_SOCK"
}

# vv_qemu_bg MODE LOG [APPEND...]: boots the guest in MODE in the
# background (VV_QEMU_PID), console to LOG. The device gets vectors=0
# (legacy INTx: QEMU 7.2 with TCG crashes with MSI-X for vhost-user
# virtio-net) unless VV_DEV_OPTS says otherwise (empty: MSI-X).
vv_qemu_bg() {
    local mode=$1 log=$2
    shift 2
    timeout 400 qemu-system-x86_64 -accel tcg -cpu max -m 512 -smp 1 -nographic -no-reboot \
        -object memory-backend-memfd,id=mem,size=512M,share=on -numa node,memdev=mem \
        -chardev "socket,id=c3,path=$VV_SOCK" -device "vhost-user-vsock-pci,chardev=c3${VV_DEV_OPTS-,vectors=0}" \
        -kernel "$LINUX_DIR/vmlinuz" -initrd "$VV_TMP/initrd.gz" \
        -append "console=ttyS0 panic=-1 reboot=k quiet no_timer_check cvmm_vsock=$mode $*" </dev/null >"$log" 2>&1 &
    VV_QEMU_PID=$!
    it_track "$VV_QEMU_PID"
}

# vv_host_bg OUT ARGS...: runs the host vsock-tool in the background (its
# pid in VV_HOST_PID), output to OUT.
vv_host_bg() {
    local out=$1
    shift
    timeout 400 "$VV_TOOL" "$@" >"$out" 2>&1 &
    VV_HOST_PID=$!
    it_track "$VV_HOST_PID"
}

# vv_guest_line LOG TAG: the guest's last "CVMM-VSOCK: TAG ..." line, without the prefix.
vv_guest_line() {
    grep -a "CVMM-VSOCK: $2 " "$1" | tail -n 1 | tr -d '\r' | sed "s/^.*CVMM-VSOCK: $2 //"
}

# vv_field LINE KEY: value of KEY=... in LINE.
vv_field() {
    printf '%s\n' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"
}

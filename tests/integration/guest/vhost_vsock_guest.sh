#!/bin/sh
# /test.sh of the vsock tests' initramfs (runs in the guest under /init, see
# images/linux/mkinitrd.sh), whichever host serves the device: QEMU with
# cvmm --vsock-backend (tests/integration/vhost_vsock_qemu.sh) or cvmm
# --vsock (tests/integration/host/vsock_linux_run.sh), and bench/vsock.sh.
# Lines for the host start with "CVMM-VSOCK:". Mode from the kernel command
# line (cvmm_vsock=test|full|bench), sizes from cvmm_vsock_bytes=N; full is
# test, then a device reset and a reboot with host connections open. With
# cvmm_vsock_phase=1 (cvmm --on-reboot restart boots the same kernel again)
# the host tells each boot which it is: 1 byte to port 1199 for the first,
# 2 after the reboot, which checks new connections both ways and powers off.
mode=$(sed -n 's/.*cvmm_vsock=\([a-z]*\).*/\1/p' /proc/cmdline)
bytes=$(sed -n 's/.*cvmm_vsock_bytes=\([0-9]*\).*/\1/p' /proc/cmdline)
conns=$(sed -n 's/.*cvmm_vsock_conns=\([0-9]*\).*/\1/p' /proc/cmdline)
: "${bytes:=16777216}" "${conns:=1000}"
t=/vsock-tool

i=0
while [ ! -e /dev/vsock ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
if [ ! -e /dev/vsock ]; then
    echo "CVMM-VSOCK: no /dev/vsock"
    exit 1
fi
echo "CVMM-VSOCK: up"

# Prefixes every line of a command's output for the host.
tag() { while read -r l; do echo "CVMM-VSOCK: $1 $l"; done; }

# The guest half of vsock-tool hold: an echo server on port $1 whose
# connections stay open until the host says (a connection to port $2)
# that it holds them all.
held_then() {
    ($t echo "vsock:$1" 4 | tag "held$1") &
    held=$!
    $t recv "vsock:$2" | tag "go$2"
}

test_phase() {
    # host -> guest: the host connects to port 1234 and sends $bytes.
    ($t recv vsock:1234 | tag h2g) &
    p1=$!
    # 32 concurrent host connections, echoed on port 1235.
    ($t echo vsock:1235 32 | tag echo32) &
    p2=$!
    # many host connections one after the other for the fd-leak check.
    ($t echo vsock:1236 "$conns" | tag echoN) &
    p3=$!
    wait $p1 $p2 $p3
    # guest -> host: 16 MiB to host port 5000, then 32 concurrent
    # connections to host port 5001.
    $t send vsock:2:5000 "$bytes" 7 | tag g2h
    $t multi vsock:2:5001 32 32 | tag multi32
}

# 1, or what the host says (see above).
boot_phase() {
    if ! grep -q cvmm_vsock_phase=1 /proc/cmdline; then
        echo 1
        return
    fi
    $t recv vsock:1199 | tee /tmp/phase | tag phase >/dev/console
    sed -n 's/^RECV bytes=\([0-9]*\).*/\1/p' /tmp/phase
}

case "$mode" in
test)
    test_phase
    ;;
full)
    if [ "$(boot_phase)" = 2 ]; then
        # The same cvmm after the reboot: its socket kept listening.
        $t echo vsock:1242 8 | tag after_reboot
        $t multi vsock:2:5002 4 4 | tag g2h_after_reboot
        echo "CVMM-VSOCK: finished"
        poweroff -f
    fi
    test_phase
    # A device reset (the driver unbound and bound again) under four open
    # host connections: they end, and new ones work after.
    held_then 1237 1238
    drv=/sys/bus/virtio/drivers/vmw_vsock_virtio_transport
    dev=$(basename "$(ls -d "$drv"/virtio* | head -n 1)")
    echo "$dev" >"$drv/unbind" && echo "$dev" >"$drv/bind" && echo "CVMM-VSOCK: rebound $dev"
    wait $held
    $t echo vsock:1239 8 | tag after_reset
    # A reboot under four open host connections.
    held_then 1240 1241
    echo "CVMM-VSOCK: rebooting"
    reboot -f
    ;;
bench)
    # cvmm_vsock_cps=N: also echo N host connections on port 1236 (the
    # host times them for connections/s) after the transfers.
    cps=$(sed -n 's/.*cvmm_vsock_cps=\([0-9]*\).*/\1/p' /proc/cmdline)
    ($t recv vsock:1234 | tag h2g) &
    wait $!
    $t send vsock:2:5000 "$bytes" 7 | tag g2h
    [ "${cps:-0}" -gt 0 ] && $t echo vsock:1236 "$cps" | tag cps
    ;;
*)
    echo "CVMM-VSOCK: unknown mode '$mode'"
    exit 1
    ;;
esac
echo "CVMM-VSOCK: finished"

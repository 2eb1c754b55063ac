#!/bin/sh
# /test.sh of the vsock tests' initramfs (runs in the QEMU guest under
# /init, see images/linux/mkinitrd.sh). The host side is
# tests/integration/vhost_vsock_qemu.sh (or bench/vsock.sh); lines for the
# host start with "CVMM-VSOCK:". Mode from the kernel command line
# (cvmm_vsock=test|bench), sizes from cvmm_vsock_bytes=N.
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

case "$mode" in
test)
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
    ;;
bench)
    ($t recv vsock:1234 | tag h2g) &
    wait $!
    $t send vsock:2:5000 "$bytes" 7 | tag g2h
    ;;
*)
    echo "CVMM-VSOCK: unknown mode '$mode'"
    exit 1
    ;;
esac
echo "CVMM-VSOCK: finished"

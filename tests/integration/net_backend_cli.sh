#!/usr/bin/env bash
# cvmm --net-backend user errors: each bad option string ends with one error
# line that names the problem and exit status 1, before anything is created.
# As root (in a network namespace): a tap that exists with other settings and
# a socket path that cannot be bound are refused the same way.
set -u
. "$(dirname "$0")/lib/common.sh"
it_setup netcli
tmp=$IT_TMP
ns=
fails=0
sock=$tmp/net.sock

BACKEND_FLAG=--net-backend
. "$(dirname "$0")/lib/backend_cli.sh"

expect_error "tap=t0,socket=$sock,bogus=1" "bogus"
expect_error "tap=t0" "socket="
expect_error "tap=t0,socket=$sock,num_queues=3" "num_queues=3"
expect_error "tap=t0,socket=$sock,num_queues=0" "num_queues=0"
expect_error "tap=t0,socket=$sock,num_queues=34" "num_queues=34"
expect_error "tap=t0,socket=$sock,queue_size=100" "queue_size=100"
expect_error "tap=t0,socket=$sock,mac=52:54:00:12:34" "mac=52:54:00:12:34"
expect_error "tap=t0,socket=$sock,host_mac=zz:54:00:12:34:56" "host_mac="
expect_error "tap=t0,socket=$sock,ip=10.0.0.300" "ip=10.0.0.300"
expect_error "tap=t0,socket=$sock,mask=255.255.255.0" "mask= needs ip="
expect_error "tap=t0,socket=$sock,ip=10.0.0.1,mask=255.255.0" "mask=255.255.0"
expect_error "tap=t0,socket=$sock,ip=10.0.0.1,mask=255.0.255.0" "mask=255.0.255.0"
expect_error "tap=t0,socket=$sock,mtu=40" "mtu=40"
expect_error "tap=a-very-long-tap-name,socket=$sock" "at most 15"
[ -e "$sock" ] && { echo "FAIL: a socket was created by a failed start"; fails=$((fails + 1)); }

if [ "$(id -u)" = 0 ] && [ -c /dev/net/tun ] && ns=cvmm-netcli-$$ && ip netns add "$ns" 2>/dev/null; then
    it_on_exit "ip netns del $ns 2>/dev/null"
    # A single-queue tap exists: a two-pair back-end cannot attach to it.
    ip -n "$ns" tuntap add dev t1 mode tap vnet_hdr
    expect_error "tap=t1,socket=$sock,num_queues=4" "t1 exists with other settings" ip netns exec "$ns"
    expect_error "tap=t2,socket=$tmp/no/such/dir/net.sock" "no/such/dir" ip netns exec "$ns"
    # A single-queue tap another process holds.
    ip netns exec "$ns" "$CVMM" --net-backend "tap=t3,socket=$tmp/a.sock" 2>/dev/null &
    held=$!
    for i in $(seq 50); do ip -n "$ns" link show t3 >/dev/null 2>&1 && break; sleep 0.1; done
    expect_error "tap=t3,socket=$tmp/b.sock" "t3 is in use by another process" ip netns exec "$ns"
    kill -TERM "$held"; wait "$held"
    ip -n "$ns" link show t2 >/dev/null 2>&1 && { echo "FAIL: tap t2 left behind"; fails=$((fails + 1)); }
else
    ns=
    skipped="not root or no network namespaces: the tap checks did not run"
fi

[ $fails -eq 0 ] || { echo "FAIL: $fails checks"; exit 1; }
# Half the checks did not run: that is not a pass.
[ -z "${skipped:-}" ] || { echo "SKIP: $skipped (the option checks passed)"; exit 77; }
echo "PASS"

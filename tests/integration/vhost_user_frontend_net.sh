#!/usr/bin/env bash
# cvmm as a vhost-user front-end for virtio-net (--net vhost_user=on): the
# test guest sends a frame carrying its seed and waits for the host's answer
# (tests/integration/lib/net_peer.py, on a tap in a network namespace), over
# both transports, one queue pair and two (cvmm serves the control queue and
# switches the second pair on with SET_VRING_ENABLE), with the data path in
#  - `cvmm --net-backend` on a tap: the tap counts the guest's frame;
#  - DPDK testpmd with net_vhost forwarding (io) to a net_tap port: testpmd
#    counts the frames on its vhost port both ways.
# cvmm builds the MAC itself (the guest must see mac=), DPDK has no CONFIG.
# vhost_mode=server (cvmm listens, the back-end connects) is tested with
# `cvmm --net-backend client=on`. A back-end killed and restarted between
# the guest's frame and the host's answer: the answer still arrives. Bad
# options are one-line errors.
set -u
: "${BUILD:?BUILD is not set}"
here=$(dirname "$0")
. "$(dirname "$0")/lib/testguest.sh"
command -v dpdk-testpmd >/dev/null || { echo "FAIL: dpdk-testpmd is missing (tests/install-deps.sh installs it)"; exit 1; }
[ "$(nproc)" -ge 2 ] || { echo "SKIP: testpmd needs two cores"; exit 77; }
tg_setup vufenet
tg_netns cvmm-vufe-$$
in_ns() { ip netns exec "$ns" "$@"; }
# For processes started in the background: nsenter execs the command, so $!
# is the process itself (ip netns exec stays as its parent, and signals sent
# to it do not reach the command; nor would they through a shell function).
in_ns_bg=(nsenter --net="/run/netns/$ns")

# guest NAME TAP SEED NETOPTS TRANSPORT [PAIRS]: the guest with net_peer.py on
# TAP; with 2 pairs it switches both on (VQ_PAIRS_SET on the control queue
# cvmm serves) and sends on the second.
guest() {
    local name=$1 tap=$2 seed=$3 netopts=$4 transport=$5 pairs=${6:-1}
    in_ns python3 "$here/lib/net_peer.py" "$tap" "$seed" timeout 60 "$cvmm" -v --kernel "$guest" \
        --memory size=128M --serial "file=$tmp/$name.out" --transport "$transport" \
        --cmdline "tg.virtio=1 tg.seed=$seed" --net "$netopts" >"$tmp/$name.peer" 2>"$tmp/$name.log" </dev/null
    local rc=$?
    echo "--- $name: exit=$rc"
    sed 's/^/    /' "$tmp/$name.peer"
    tr -d '\r' <"$tmp/$name.out" 2>/dev/null | grep -E '^TG: (virtio-net|FAIL|PASS)' | sed 's/^/    /'
    [ $rc -eq 0 ] && grep -q "^TG: virtio-net $transport mac=52:54:0:12:34:5$seed pairs=$pairs tx+rx ok" \
        <(tr -d '\r' <"$tmp/$name.out") && grep -q "(vhost-user): virtio-$transport" "$tmp/$name.log"
}

# cvmm --net-backend: the tap counts what the guest sent. One pair, then two.
for queues in 2 4; do
    sock=$tmp/nb$queues.sock
    tap=vufe$queues
    "${in_ns_bg[@]}" "$cvmm" -v --net-backend "tap=$tap,socket=$sock,num_queues=$queues" >"$tmp/nb$queues.log" 2>&1 &
    nb=$!
    pids+=("$nb")
    if ! tg_wait_sock "$sock" "$nb"; then
        fail "net-backend did not start: $(tail -n 3 "$tmp/nb$queues.log")"
        continue
    fi
    for transport in pci mmio; do
        name=nb-$transport-$queues
        seed=$((RANDOM % 10))
        before=$(in_ns cat /sys/class/net/$tap/statistics/rx_packets)
        if ! guest $name $tap "$seed" "vhost_user=on,socket=$sock,mac=52:54:00:12:34:5$seed,num_queues=$queues" \
                $transport $((queues / 2)); then
            fail "$name: no frame exchange through cvmm --net-backend"
            continue
        fi
        got=$(( $(in_ns cat /sys/class/net/$tap/statistics/rx_packets) - before ))
        [ "$got" -ge 1 ] || fail "$name: the tap counted no frame from the guest"
        echo "ok $name (seed $seed): the tap received $got frame(s)"
    done
    kill -TERM "$nb"
    wait "$nb" 2>/dev/null
done

# The back-end killed (SIGKILL) after the guest has sent and before the
# answer, and started again: cvmm reconnects and restores the rings (the
# receive buffers the guest posted go to the new back-end), the link stays
# up, and the answer reaches the guest (tests/integration/lib/net_restart_peer.py).
for transport in pci mmio; do
    name=restart-$transport
    sock=$tmp/$name.sock
    seed=$((RANDOM % 10))
    rm -f "$tmp/$name".{seen,restarted,done}
    "${in_ns_bg[@]}" "$cvmm" -v --net-backend "tap=vufr0,socket=$sock" >"$tmp/$name.be" 2>&1 &
    nb=$!
    pids+=("$nb")
    tg_wait_sock "$sock" "$nb" || { fail "$name: net-backend did not start"; continue; }
    in_ns python3 "$here/lib/net_restart_peer.py" vufr0 "$seed" "52:54:00:12:34:5$seed" "$tmp/$name.seen" \
        "$tmp/$name.restarted" \
        "$tmp/$name.done" >"$tmp/$name.peer" 2>&1 &
    peer=$!
    pids+=("$peer")
    timeout 60 "$cvmm" -v --kernel "$guest" --memory size=128M --serial "file=$tmp/$name.out" \
        --transport $transport --cmdline "tg.virtio=1 tg.seed=$seed" \
        --net "vhost_user=on,socket=$sock,mac=52:54:00:12:34:5$seed" >"$tmp/$name.log" 2>&1 </dev/null &
    vm=$!
    pids+=("$vm")
    for _ in $(seq 300); do
        [ -e "$tmp/$name.seen" ] && break
        sleep 0.05
    done
    [ -e "$tmp/$name.seen" ] || fail "$name: the guest's frame never reached the tap"
    kill -KILL "$nb"
    wait "$nb" 2>/dev/null
    # The kernel lets the tap go a moment after the process: until then a
    # new back-end finds it in use and exits; try again.
    rm -f "$sock"
    for _ in $(seq 20); do
        "${in_ns_bg[@]}" "$cvmm" -v --net-backend "tap=vufr0,socket=$sock" >>"$tmp/$name.be" 2>&1 &
        nb=$!
        pids+=("$nb")
        tg_wait_sock "$sock" "$nb" && break
        sleep 0.2
    done
    [ -S "$sock" ] || fail "$name: net-backend did not restart"
    touch "$tmp/$name.restarted"
    wait "$vm"
    rc=$?
    touch "$tmp/$name.done"
    wait "$peer"
    prc=$?
    kill -TERM "$nb"
    wait "$nb" 2>/dev/null
    echo "--- $name: exit=$rc"
    sed 's/^/    /' "$tmp/$name.peer"
    grep -E "gone|reconnected|needs reset" "$tmp/$name.log" | sed 's/^/    cvmm: /'
    tr -d '\r' <"$tmp/$name.out" | grep -E '^TG: (virtio-net|FAIL)' | sed 's/^/    /'
    if [ $rc -ne 0 ] || [ $prc -ne 0 ] ||
       ! grep -q "^TG: virtio-net $transport mac=52:54:0:12:34:5$seed pairs=1 tx+rx ok" <(tr -d '\r' <"$tmp/$name.out"); then
        fail "$name: the answer did not reach the guest across the back-end's restart"
    elif ! grep -q "vhost-user back-end reconnected" "$tmp/$name.log"; then
        fail "$name: cvmm did not reconnect"
    else
        echo "ok $name (seed $seed): SIGKILL and restart between the guest's frame and the answer"
    fi
done

# vhost_mode=server: cvmm listens, the back-end connects (client=on).
sock=$tmp/srv.sock
seed=$((RANDOM % 10))
( sleep 1; exec nsenter --net="/run/netns/$ns" "$cvmm" -v --net-backend "tap=vufe1,socket=$sock,client=on" ) \
    >"$tmp/nbc.log" 2>&1 &
nbc=$!
pids+=("$nbc")
# net_peer.py waits for the tap, which the back-end creates after cvmm listens.
if guest srv-pci vufe1 "$seed" "vhost_user=on,socket=$sock,vhost_mode=server,mac=52:54:00:12:34:5$seed" pci; then
    echo "ok server mode (seed $seed)"
else
    fail "srv-pci: no frame exchange with cvmm listening: $(tail -n 3 "$tmp/srv-pci.log")"
fi
kill -TERM "$nbc" 2>/dev/null
wait "$nbc" 2>/dev/null

# DPDK testpmd: net_vhost (port 0) <-> net_tap (port 1), io forwarding; one
# pair over both transports, then two pairs.
for run in "pci 1" "mmio 1" "pci 2"; do
    read -r transport pairs <<<"$run"
    name=dpdk-$transport-$pairs
    sock=$tmp/$name.sock
    seed=$((RANDOM % 10))
    "${in_ns_bg[@]}" timeout -s INT -k 10 60 dpdk-testpmd -l 0-1 --no-pci --no-huge -m 512 --file-prefix="cvmm-vufe-$$" \
        --vdev "net_vhost0,iface=$sock,queues=$pairs" --vdev "net_tap0,iface=vufe9" -- \
        --no-mlockall --forward-mode=io --auto-start --stats-period 1 --total-num-mbufs=8192 \
        --rxq=$pairs --txq=$pairs </dev/null >"$tmp/testpmd-$name.log" 2>&1 &
    pmd=$!
    pids+=("$pmd")
    tg_wait_sock "$sock" "$pmd" || { fail "$name: testpmd did not start"; continue; }
    guest $name vufe9 "$seed" "vhost_user=on,socket=$sock,mac=52:54:00:12:34:5$seed,num_queues=$((2 * pairs))" \
        $transport $pairs
    ok=$?
    kill -INT "$pmd"
    wait "$pmd" 2>/dev/null
    stats=$(awk '/Forward statistics for port 0/ { on = 1 } on && /RX-packets/ { rx = $2 }
                 on && /TX-packets/ { print rx, $2; exit }' "$tmp/testpmd-$name.log")
    read -r rx tx <<<"$stats"
    echo "    testpmd vhost port: RX-packets ${rx:-?} (from the guest), TX-packets ${tx:-?} (to the guest)"
    if [ $ok -ne 0 ]; then
        fail "$name: no frame exchange through DPDK: $(tail -n 3 "$tmp/$name.log")"
    elif [ "${rx:-0}" -lt 1 ] || [ "${tx:-0}" -lt 1 ]; then
        fail "$name: testpmd did not count the frames (RX ${rx:-none}, TX ${tx:-none})"
    else
        echo "ok $name (seed $seed)"
    fi
done

# Bad options: one line naming the problem, exit 2.
tg_check_error tap "tap= is the back-end's to set" --net "vhost_user=on,socket=$tmp/x.sock,tap=t0"
tg_check_error pairs "num_queues=3: must be even" --net "vhost_user=on,socket=$tmp/x.sock,num_queues=3"
tg_check_error mode "vhost_mode=both: expected client or server" --net "vhost_user=on,socket=$tmp/x.sock,vhost_mode=both"
tg_check_error mode-only "vhost_mode= needs vhost_user=on" --net "tap=t0,vhost_mode=client"
tg_check_error mac "mac=zz: expected six hex bytes" --net "vhost_user=on,socket=$tmp/x.sock,mac=zz"
tg_check_error nobackend "cannot connect to the vhost-user back-end on $tmp/none.sock" \
    --net "vhost_user=on,socket=$tmp/none.sock"

exit $failed

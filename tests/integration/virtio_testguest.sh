#!/usr/bin/env bash
# In-process virtio devices driven from inside the freestanding test guest,
# over both transports: virtio-blk (write a pattern, read it back, flush,
# GET_ID), virtio-rng, virtio-console (a line out to cvmm's stdout, the
# answer back in from its stdin) and virtio-vsock (host and guest
# connections through the hybrid-vsock socket, a device reset under an open
# connection; lib/vsock_peer.py is the host end). The host then reads the image file and checks the
# pattern the guest wrote (images/testguest/vio_blk.c: byte i at sector 8 is
# (seed + 31 i + i / 512) & 0xff), so the data provably went through the
# device into the file. virtio-net exchanges frames with this test through a
# tap in a network namespace. Also: a read-only disk refuses the guest's write, a
# second VM cannot open a disk in use, and bad device options are one-line
# errors.
set -u
: "${BUILD:?BUILD is not set}"
. "$(dirname "$0")/lib/testguest.sh"
tmp=$(mktemp -d /tmp/cvmm-virtio-tg.XXXXXX)
holder=
cleanup() {
    [ -n "$holder" ] && kill "$holder" 2>/dev/null && wait "$holder" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
failed=0

# Verifies the guest's pattern in image $1 for seed $2.
pattern_ok() {
    python3 - "$1" "$2" <<'PY'
import sys
path, seed = sys.argv[1], int(sys.argv[2])
with open(path, 'rb') as f:
    f.seek(8 * 512)
    got = f.read(4096)
want = bytes((seed + i * 31 + i // 512) & 0xff for i in range(4096))
sys.exit(0 if got == want else 1)
PY
}

# run NAME CMDLINE ARGS...: boots the test guest, output in $tmp/NAME.out.
run() {
    local name=$1 cmdline=$2
    shift 2
    timeout 60 "$cvmm" --kernel "$guest" --memory size=128M --serial "file=$tmp/$name.out" \
        --cmdline "$cmdline" "$@" >"$tmp/$name.stdout" 2>"$tmp/$name.err" </dev/null
    local rc=$?
    echo "--- $name: exit=$rc"
    tr -d '\r' <"$tmp/$name.out" 2>/dev/null | grep -E '^TG: (virtio|FAIL|PASS)' | sed 's/^/    /'
    sed 's/^/    stderr: /' "$tmp/$name.err" | tail -n 3
    return $rc
}

for transport in pci mmio; do
    seed=$((RANDOM % 256))
    img=$tmp/disk-$transport.img
    truncate -s 1M "$img"
    if ! run "$transport" "tg.virtio=2 tg.seed=$seed" --disk "path=$img,serial=disk-$transport" --rng \
            --transport "$transport"; then
        fail "$transport: cvmm exited non-zero"; continue
    fi
    out=$(tr -d '\r' <"$tmp/$transport.out")
    grep -q "^TG: virtio-blk $transport capacity=2048 wrote+read 4096 bytes at sector 8 flush=yes id=disk-$transport ok$" <<<"$out" ||
        fail "$transport: no virtio-blk ok line"
    grep -q "^TG: virtio-rng $transport 64+64 bytes ok$" <<<"$out" || fail "$transport: no virtio-rng ok line"
    grep -qx 'TG: PASS [0-9]* checks' <<<"$out" || fail "$transport: the guest did not report PASS"
    pattern_ok "$img" "$seed" || fail "$transport: the image does not hold the guest's pattern (seed $seed)"
    pattern_ok "$img" $(( (seed + 1) % 256 )) && fail "$transport: the pattern check cannot tell seeds apart"
    echo "ok $transport (seed $seed)"
done

# virtio-net on a tap cvmm creates in a network namespace of this test:
# lib/net_peer.py answers the guest's frame through the tap, and reports the
# tap's MTU and address, which cvmm set from the options.
ns=cvmm-vtg-$$
if ip netns add "$ns"; then
    # TRANSPORT QUEUES PAIRS: with 4 queues the guest switches both pairs on
    # through the control queue and sends on the second.
    for run in "pci 2 1" "mmio 2 1" "pci 4 2" "mmio 4 2"; do
        read -r transport queues pairs <<<"$run"
        name=net-$transport-$queues
        seed=$((RANDOM % 256))
        ip netns exec "$ns" python3 "$(dirname "$0")/lib/net_peer.py" tgnet0 "$seed" timeout 60 "$cvmm" \
            --kernel "$guest" --memory size=128M --serial "file=$tmp/$name.out" --transport "$transport" \
            --net "tap=tgnet0,mac=52:54:00:12:34:56,ip=10.77.0.1,mask=255.255.255.0,mtu=1400,num_queues=$queues" \
            --cmdline "tg.virtio=1 tg.seed=$seed" >"$tmp/$name.peer" 2>&1 </dev/null
        rc=$?
        sed 's/^/    /' "$tmp/$name.peer"
        if [ $rc -ne 0 ] || ! grep -q "^TG: virtio-net $transport mac=52:54:0:12:34:56 pairs=$pairs tx+rx ok" <(tr -d '\r' <"$tmp/$name.out"); then
            fail "$name: no frame exchange with the guest over $pairs pair(s) (peer exit $rc)"
            tr -d '\r' <"$tmp/$name.out" | grep -E '^TG: (virtio|FAIL)' | sed 's/^/    guest: /'
        elif ! grep -q "tap mtu 1400" "$tmp/$name.peer" || ! grep -q "tap addr 10.77.0.1/24" "$tmp/$name.peer"; then
            fail "$name: the tap did not get mtu 1400 and 10.77.0.1/24"
        elif grep -q "cannot switch to" "$tmp/$name.peer"; then
            fail "$name: cvmm could not switch the tap's queues (see above)"
        else
            echo "ok $name (seed $seed)"
        fi
    done
    ip netns del "$ns"
else
    fail "net: cannot create a network namespace (run as root)"
fi

# virtio-console on --console tty: lib/console_peer.py answers the guest.
for transport in pci mmio; do
    seed=$((RANDOM % 256))
    python3 "$(dirname "$0")/lib/console_peer.py" "$seed" timeout 60 "$cvmm" --kernel "$guest" \
        --memory size=128M --serial "file=$tmp/con-$transport.out" --console tty --transport "$transport" \
        --cmdline "tg.virtio=1 tg.seed=$seed" >"$tmp/con-$transport.peer" 2>&1 </dev/null
    rc=$?
    sed 's/^/    /' "$tmp/con-$transport.peer"
    if [ $rc -ne 0 ] || ! grep -q "^TG: virtio-console $transport out+in ok" <(tr -d '\r' <"$tmp/con-$transport.out"); then
        fail "console-$transport: no exchange with the guest (peer exit $rc)"
    else
        echo "ok console-$transport (seed $seed)"
    fi
done

# virtio-vsock: lib/vsock_peer.py echoes through the guest, takes the
# guest's connection to host port 5000, and sees a connection closed by a
# device reset; the guest's hash of the echoed bytes must be the host's.
for transport in pci mmio; do
    seed=$((RANDOM % 256))
    name=vsock-$transport
    python3 "$(dirname "$0")/lib/vsock_peer.py" "$tmp/$name.sock" "$seed" timeout 60 "$cvmm" --kernel "$guest" \
        --memory size=128M --serial "file=$tmp/$name.out" --transport "$transport" \
        --vsock "cid=$((3 + seed)),socket=$tmp/$name.sock" --cmdline "tg.virtio=1 tg.seed=$seed" \
        >"$tmp/$name.peer" 2>&1 </dev/null
    rc=$?
    sed 's/^/    /' "$tmp/$name.peer"
    out=$(tr -d '\r' <"$tmp/$name.out")
    h1=$(sed -n 's/^vsock peer: echo bytes=4096 fnv=\([0-9a-f]*\) intact$/\1/p' "$tmp/$name.peer")
    h2=$(sed -n 's/^vsock peer: after reset echo bytes=512 fnv=\([0-9a-f]*\) intact$/\1/p' "$tmp/$name.peer")
    if [ $rc -ne 0 ] || ! grep -q "^TG: virtio-vsock $transport host->guest+guest->host+reset ok$" <<<"$out"; then
        fail "$name: the guest and the host did not complete (peer exit $rc)"
    elif [ -z "$h1" ] || ! grep -q "^TG: virtio-vsock $transport cid=$((3 + seed)) listening$" <<<"$out" ||
         ! grep -q "^TG: virtio-vsock $transport echo bytes=4096 fnv=$h1$" <<<"$out" ||
         [ -z "$h2" ] || ! grep -q "^TG: virtio-vsock $transport after reset echo bytes=512 fnv=$h2$" <<<"$out"; then
        fail "$name: the guest's cid or hashes differ from the host's"
    elif [ -e "$tmp/$name.sock" ]; then
        fail "$name: cvmm left its socket behind"
    else
        echo "ok $name (seed $seed, fnv $h1)"
    fi
done

# An image grown under the running guest: the disk's inotify watch sees it,
# the device raises a config change and the guest, polling the config space
# after its blocks, reads the new capacity (on virtio-mmio from the window's
# read-only copy, which the change rewrites).
for transport in pci mmio; do
    seed=$((RANDOM % 256))
    name=grow-$transport
    truncate -s 4M "$tmp/$name.img"
    run "$name" "tg.virtio=1 tg.seed=$seed tg.blkloop=20 tg.blkgrow" --disk "path=$tmp/$name.img" \
        --transport "$transport" >"$tmp/$name.run" &
    vm=$!
    it_wait_line "$tmp/$name.out" "wrote+read" 30
    truncate -s 8M "$tmp/$name.img"
    wait $vm
    rc=$?
    if [ $rc -ne 0 ] ||
        ! tr -d '\r' <"$tmp/$name.out" | grep -q "^TG: virtio-blk $transport loop 20 blocks ok capacity=16384$"; then
        sed 's/^/    /' "$tmp/$name.run"
        fail "$name: the guest did not see the disk grow to 16384 sectors (exit $rc)"
    else
        echo "ok $name: the guest read the new capacity"
    fi
done

# The guest must find exactly the devices it was promised.
truncate -s 1M "$tmp/one.img"
run missing "tg.virtio=2" --disk "path=$tmp/one.img" >/dev/null
grep -q '^TG: FAIL virtio: found 1 devices, expected 2' <(tr -d '\r' <"$tmp/missing.out") ||
    fail "missing: a missing device went unnoticed"

# readonly=on: the guest's write fails with VIRTIO_BLK_S_IOERR, the image stays zero.
truncate -s 1M "$tmp/ro.img"
run readonly "tg.virtio=1" --disk "path=$tmp/ro.img,readonly=on" >/dev/null
grep -q '^TG: FAIL virtio-blk pci: write status 1$' <(tr -d '\r' <"$tmp/readonly.out") ||
    fail "readonly: the guest's write was not refused"
[ -z "$(tr -d '\0' <"$tmp/ro.img")" ] || fail "readonly: the image changed"

# A second VM cannot open an image another VM has open for writing.
truncate -s 1M "$tmp/shared.img"
"$cvmm" --kernel "$guest" --memory size=64M --serial null --cmdline "tg.halt" --disk "path=$tmp/shared.img" \
    >/dev/null 2>"$tmp/holder.err" </dev/null &
holder=$!
for _ in $(seq 50); do
    grep -q . <(ls -l /proc/$holder/fd 2>/dev/null | grep shared.img) && break
    sleep 0.1
done
timeout 20 "$cvmm" --kernel "$guest" --memory size=64M --serial null --disk "path=$tmp/shared.img" \
    >/dev/null 2>"$tmp/second.err" </dev/null
rc=$?
[ $rc -ne 0 ] && grep -q "image $tmp/shared.img is in use by another process" "$tmp/second.err" ||
    fail "lock: a second VM opened a disk in use (exit $rc: $(cat "$tmp/second.err"))"
kill -TERM "$holder" && wait "$holder"
holder=
echo "ok image lock"

# Bad device options: one line, non-zero exit, no VM.
check_error() {   # NAME EXPECTED-TEXT ARGS...
    local name=$1 want=$2
    shift 2
    timeout 20 "$cvmm" --kernel "$guest" --serial null "$@" >/dev/null 2>"$tmp/$name.err" </dev/null
    local rc=$?
    if [ $rc -eq 0 ] || ! grep -q -- "$want" "$tmp/$name.err" || [ "$(wc -l <"$tmp/$name.err")" -gt 2 ]; then
        fail "$name: exit $rc, stderr: $(cat "$tmp/$name.err")"
    else
        echo "ok $name: $(head -n1 "$tmp/$name.err")"
    fi
}
check_error disk-key "unknown key 'pth'" --disk "pth=$tmp/one.img"
check_error disk-nopath "path=IMG is required" --disk "readonly=on"
check_error disk-missing "cannot open image $tmp/nope.img" --disk "path=$tmp/nope.img"
check_error disk-qsize "queue_size=100: must be a power of two" --disk "path=$tmp/one.img,queue_size=100"
check_error rng-src "--rng: cannot open /nonexistent/rng" --rng src=/nonexistent/rng
check_error transport "--transport usb: expected pci or mmio" --transport usb
check_error disk-id "--disk: id=d names another device already" --disk "path=$tmp/one.img,id=d" --disk "path=$tmp/ro.img,id=d"
check_error net-queues "num_queues=3: must be even" --net tap=x,num_queues=3
check_error net-mac "mac=zz: expected six hex bytes" --net tap=x,mac=zz
# The terminal cannot serve both consoles (--serial defaults to tty).
timeout 20 "$cvmm" --kernel "$guest" --console tty >/dev/null 2>"$tmp/console-tty.err" </dev/null
rc=$?
[ $rc -eq 2 ] && grep -q -- "--console tty needs the terminal that --serial has" "$tmp/console-tty.err" ||
    fail "console-tty: exit $rc, stderr: $(cat "$tmp/console-tty.err")"

exit $failed

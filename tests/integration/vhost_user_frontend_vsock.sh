#!/usr/bin/env bash
# cvmm as a vhost-user front-end for vsock (--vsock vhost_user=on,socket=...):
# the test guest's virtio-vsock check (images/testguest/vio_vsock.c, with
# lib/vsock_peer.py at the host end of the back-end's hybrid socket: an echo
# whose FNV-1a hash the guest and the host compare, a guest connection to
# the host, a device reset under an open connection) on a device served by
# `cvmm --vsock-backend`, over both transports. Then, under the running
# guest, the back-end is killed with SIGKILL while a host connection is
# open and started again (tg.vsockrestart): the open connection ends, cvmm
# reconnects, the guest gets a TRANSPORT_RESET on the event queue (which
# cvmm keeps), the new back-end refuses the old connection, and new
# connections work both ways. The guest's CID comes from the back-end's
# config (pci run) or from a matching cid= (mmio run). Bad options are
# one-line errors (exit 2). A third run (pci) has cvmm listen
# (vhost_mode=server) and the back-end connect to it (client=on).
set -u
: "${BUILD:?BUILD is not set}"
here=$(dirname "$0")
. "$(dirname "$0")/lib/testguest.sh"
command -v python3 >/dev/null || { echo "FAIL: python3 is missing (tests/install-deps.sh installs it)"; exit 1; }
tg_setup vufe-vsock

for run in pci mmio pci-server; do
    transport=${run%-server}
    seed=$((RANDOM % 256))
    cid=$((3 + seed))
    name=vsock-$run
    vu=$tmp/$name-vu.sock
    uds=$tmp/$name.sock
    opts="vhost_user=on,socket=$vu"
    beopts=
    [ $transport = mmio ] && opts="cid=$cid,$opts"
    # vhost_mode=server: cvmm listens on the socket, the back-end
    # (client=on) connects to it, and connects again after its restart.
    [ $run = pci-server ] && { opts="$opts,vhost_mode=server"; beopts=,client=on; }
    # The peer starts the back-end, kills it with SIGKILL midway and starts
    # it again; it runs cvmm and waits for it.
    timeout 240 python3 "$here/lib/vsock_peer.py" --backend "$tmp/$name.be" \
        "$cvmm -v --vsock-backend cid=$cid,socket=$vu,uds_path=$uds$beopts" "$uds" "$seed" \
        timeout 150 "$cvmm" -v --kernel "$guest" --memory size=128M --serial "file=$tmp/$name.out" \
        --transport "$transport" --vsock "$opts" --cmdline "tg.virtio=1 tg.seed=$seed tg.vsockrestart" \
        >"$tmp/$name.peer" 2>&1 </dev/null
    rc=$?
    [ $rc -ne 0 ] && { tail -n 5 "$tmp/$name.peer" "$tmp/$name.be" 2>/dev/null | sed "s/^/    /"; }
    grep '^vsock peer' "$tmp/$name.peer" | sed 's/^/    /'
    grep -E "gone|reconnected" "$tmp/$name.peer" | sed 's/^/    cvmm: /'
    out=$(tr -d '\r' <"$tmp/$name.out" 2>/dev/null)
    grep -E '^TG: (virtio|FAIL|PASS)' <<<"$out" | sed 's/^/    /'
    h1=$(sed -n 's/^vsock peer: echo bytes=4096 fnv=\([0-9a-f]*\) intact$/\1/p' "$tmp/$name.peer")
    h2=$(sed -n 's/^vsock peer: after reset echo bytes=512 fnv=\([0-9a-f]*\) intact$/\1/p' "$tmp/$name.peer")
    h3=$(sed -n 's/^vsock peer: after restart echo bytes=512 fnv=\([0-9a-f]*\) intact$/\1/p' "$tmp/$name.peer")
    if [ $rc -ne 0 ] || ! grep -q "^TG: virtio-vsock $transport host->guest+guest->host+reset ok$" <<<"$out"; then
        fail "$name: the guest and the host did not complete (peer exit $rc): $(grep -E 'error|FAIL' "$tmp/$name.peer" | tail -n 3)"
    elif ! grep -q "vsock (vhost-user): virtio-$transport" "$tmp/$name.peer"; then
        fail "$name: the device was not the vhost-user one"
    elif [ -z "$h1" ] || ! grep -q "^TG: virtio-vsock $transport cid=$cid listening$" <<<"$out" ||
         ! grep -q "^TG: virtio-vsock $transport echo bytes=4096 fnv=$h1$" <<<"$out" ||
         [ -z "$h2" ] || ! grep -q "^TG: virtio-vsock $transport after reset echo bytes=512 fnv=$h2$" <<<"$out"; then
        fail "$name: the guest's cid or hashes differ from the host's"
    elif ! grep -q "^vsock peer: port 1236 echoed b'kill-me'; back-end killed, the connection ended" "$tmp/$name.peer" ||
         ! grep -q "vsock: vhost-user back-end reconnected on $vu" "$tmp/$name.peer"; then
        fail "$name: the back-end was not killed under an open connection and reconnected"
    elif [ -z "$h3" ] ||
         ! grep -q "^TG: virtio-vsock $transport after back-end restart echo bytes=512 fnv=$h3, guest->host ok$" <<<"$out" ||
         ! grep -q "^vsock peer: after restart guest connection said b'cvmm-guest seed=$seed\\\\n', then eof ok$" "$tmp/$name.peer"; then
        fail "$name: no working connections after the back-end restart"
    else
        echo "ok $name (seed $seed, cid $cid, fnv $h1 $h2 $h3): SIGKILL and restart under the guest"
    fi
done

# Bad options: one line naming the problem, exit 2, no VM.
tg_check_error no-socket "socket=PATH (the back-end's socket) is required" --vsock vhost_user=on,cid=3
tg_check_error no-backend "cannot connect to the vhost-user back-end on $tmp/none.sock" \
    --vsock "vhost_user=on,socket=$tmp/none.sock"
tg_check_error mode "vhost_mode=both: expected client or server" --vsock "vhost_user=on,socket=$tmp/x.sock,vhost_mode=both"
tg_check_error mode-alone "vhost_mode= needs vhost_user=on" --vsock "cid=3,socket=$tmp/x.sock,vhost_mode=client"
tg_check_error cid "cid=2: must be 3" --vsock "cid=2,vhost_user=on,socket=$tmp/x.sock"
# A cid= other than the back-end's is refused.
"$cvmm" -v --vsock-backend "cid=5,socket=$tmp/c.sock,uds_path=$tmp/c-h.sock" 2>"$tmp/c.be" &
pids+=($!)
for _ in $(seq 100); do grep -q "vsock-backend: guest cid" "$tmp/c.be" && break; sleep 0.1; done
tg_check_error cid-differs "cid=6, but the vhost-user back-end on $tmp/c.sock serves guest CID 5" \
    --vsock "cid=6,vhost_user=on,socket=$tmp/c.sock"

exit $failed

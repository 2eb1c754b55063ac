#!/bin/sh
# The host side of vhost_user_linux.sh (busybox sh; runs directly or in the
# nested machine, see tests/lib/linux-guest.sh): boots Debian's kernel under
# cvmm (one vCPU) with its disks and network on vhost-user back-ends, on
# each transport (VUL_TRANSPORTS, default "pci,mmio") side by side, and
# prints one PASS/FAIL line per property. The guest's side is
# tests/integration/guest/vhost_user_linux_guest.sh; pat is the 4 MiB the
# guest writes and sends (its /pat), so this side checks the data. It runs the
# back-ends (`cvmm --block-backend`, qemu-storage-daemon with a QMP monitor,
# `cvmm --net-backend` on a tap), grows the images when the guest is ready,
# answers its ping and TCP, and under the guest's load kills each back-end
# with SIGKILL and starts it again.
. "$FILES/run_lib.sh"
# vl REGEX: the \(group\) of the first "VL: REGEX..." line.
vl() { tr -d '\r' <"$ser" | sed -n "s/^VL: $1.*/\1/p" | head -n 1; }
# until_true SECS COMMAND...: until COMMAND succeeds, for up to SECS.
until_true() {
    secs=$1; shift
    i=0
    until "$@"; do
        i=$((i + 1)); [ $i -gt $((secs * 5)) ] && return 1
        sleep 0.2
    done
}
sock_of() { [ -S "$1" ]; }
# progress DEV: the last chunk count the guest's load on DEV reported.
progress() { tr -d '\r' <"$ser" | sed -n "s/^VL: load $1 k=\([0-9]*\) at .*/\1/p" | tail -n 1; }
past() { [ "$(progress "$1")" -ge "$2" ] 2>/dev/null; }
reconnects() { grep -c "$1: vhost-user back-end reconnected" "$err"; }
more_reconnects() { [ "$(reconnects "$1")" -gt "$2" ]; }
# virtio_of blk|qsd|net: the guest's virtioN for that device.
virtio_of() { vl "$1 is \(virtio[0-9]*\)"; }
# irq_count WHAT VIRTIO VECTOR: the count of VIRTIO-VECTOR on the guest's
# "VL: WHAT: ..." line of interrupt counts (nothing when VIRTIO is unknown).
irq_count() { [ -n "$2" ] && vl "$1:.* $2-$3=\([0-9]*\)"; }
# repeated FILE BYTES: the first BYTES of FILE over and over.
repeated() { while cat "$1"; do :; done | head -c "$2"; }
size_of() { wc -c <"$1"; }
grown() { [ "$(size_of "$1")" -ge "$2" ]; }

# qemu-storage-daemon shipped in (nested: with its own loader and libraries),
# or this host's.
if [ -x qemu/qemu-storage-daemon ]; then
    QSD="qemu/ld.so --library-path qemu/lib qemu/qemu-storage-daemon"
else
    QSD=qemu-storage-daemon
fi
grow=$((128 << 20))

# The back-ends, in the background; each sets its pid variable.
start_blk() {
    "$CVMM" -v --block-backend "path=$blkimg,socket=blk-$t.sock" >>"blk-$t.log" 2>&1 &
    blk=$!
    until_true 30 sock_of blk-$t.sock
}
start_qsd() {
    rm -f qsd-$t.sock
    $QSD --blockdev "driver=file,node-name=f0,filename=$qsdimg" \
        --export type=vhost-user-blk,id=e0,node-name=f0,addr.type=unix,addr.path=qsd-$t.sock,writable=on,num-queues=1 \
        --chardev "socket,id=m0,host=127.0.0.1,port=$qmp_port,server=on,wait=off" --monitor chardev=m0 \
        </dev/null >>"qsd-$t.log" 2>&1 &
    qsd=$!
    until_true 30 sock_of qsd-$t.sock
}
# A killed back-end's tap goes a moment after the process: until then a new
# one finds it busy and exits; so it is started until its socket appears.
# The tap's MAC is fixed: a new random one would leave the guest sending to
# the old one (its ARP entry) until that times out.
start_net() {
    rm -f net-$t.sock
    for _ in $(seq 50); do
        "$CVMM" -v --net-backend "tap=vultap$n,socket=net-$t.sock,ip=$hostip,mask=255.255.255.0,host_mac=52:54:00:8$n:00:01" >>"net-$t.log" 2>&1 &
        net=$!
        until_true 10 sock_of net-$t.sock && return 0
        kill "$net" 2>/dev/null
        wait "$net" 2>/dev/null
        sleep 0.2
    done
    return 1
}
qsd_resize() {   # BYTES OUT: block_resize over QMP; the replies go to OUT
    # nc ends the session when its input ends: keep it open until both
    # commands are answered (qsd may be slow to get to them), 15 s at most.
    { echo '{"execute":"qmp_capabilities"}'
      echo "{\"execute\":\"block_resize\",\"arguments\":{\"node-name\":\"f0\",\"size\":$1}}"
      i=0
      while n=$(grep -c '"return"' "$2" 2>/dev/null); [ "${n:-0}" -lt 2 ] && [ $i -lt 150 ]; do
          sleep 0.1; i=$((i + 1))
      done; } | timeout 20 nc 127.0.0.1 $qmp_port >"$2"
}
# kill_restart NAME PIDVAR START ID: SIGKILL, start again, wait until cvmm
# (front-end ID) has reconnected. Prints nothing; returns 1 on failure.
kill_restart() {
    r0=$(reconnects "$4")
    eval "kill -KILL \$$2; wait \$$2 2>/dev/null"
    echo "    $t: $1 killed (SIGKILL) at $(date +%T)"
    $3 || { echo "    $t: $1 did not start again"; return 1; }
    until_true 60 more_reconnects "$4" "$r0" || { echo "    $t: cvmm did not reconnect to $1"; return 1; }
    echo "    $t: $1 restarted, cvmm reconnected at $(date +%T)"
}

pat_md5=$(head -c $((1 << 20)) pat | md5)

# transport T N: the whole run on transport T, the Nth: its own back-ends,
# tap (10.8N.0.0/24), ports (56N0..56N3; QMP 440N) and files. Returns the
# number of failed checks.
transport() {
    t=$1 n=$2
    hostip=10.8$n.0.1 guestip=10.8$n.0.2 port=56${n}0 qmp_port=440$n
    fails=0
    mkfifo "hold-$t"
    exec 5<>"hold-$t"
    ser=ser-$t.out err=err-$t blkimg=blk-$t.img qsdimg=qsd-$t.img
    truncate -s 64M "$blkimg"
    truncate -s 64M "$qsdimg"
    dd if=/dev/urandom of="tx-$t.bin" bs=64k count=16 2>/dev/null
    tx_md5=$(md5 <"tx-$t.bin")
    start=$(date +%s)
    start_blk || no "$t: cvmm --block-backend started"
    start_qsd || no "$t: qemu-storage-daemon started"
    start_net || no "$t: cvmm --net-backend started"
    timeout 600 nc -l -p $port <"hold-$t" >"rx-$t.bin" &
    sink=$!
    timeout 600 nc -l -p $((port + 1)) <"tx-$t.bin" &
    source=$!
    timeout 600 nc -l -p $((port + 3)) <"hold-$t" >"stream-$t.bin" &
    stream=$!
    mkfifo "con-$t.in"
    timeout 400 "$CVMM" -v --kernel "$GUEST_KERNEL" --initramfs initrd.gz --cpus boot=1 --memory size=256M \
        --transport "$t" --disk "vhost_user=on,socket=blk-$t.sock,id=vublk" \
        --disk "vhost_user=on,socket=qsd-$t.sock,id=vuqsd" \
        --net "vhost_user=on,socket=net-$t.sock,mac=52:54:00:12:34:56,id=vunet" \
        --serial "file=$ser" --console tty \
        --cmdline "console=ttyS0 panic=-1 reboot=k vl.host=$hostip vl.port=$port vl.pat=$pat_md5 vl.want=$tx_md5" \
        <"con-$t.in" >"con-$t.out" 2>"$err" &
    pid=$!
    # Read-write: that open of the FIFO does not wait for cvmm to open it, so
    # no signal can interrupt it (one did, "can't create ...: Interrupted
    # system call", and busybox sh ended the script at the failed exec).
    exec 3<>"con-$t.in"

    # Resize: cvmm --block-backend watches its image, qsd is told over QMP.
    if wait_for "$ser" '^VL: resize ready' 300; then
        truncate -s $grow "$blkimg"
        qsd_resize $grow "qmp-$t.out"
    fi
    if wait_for "$ser" '^VL: net up' 300; then
        ping -c 3 -W 5 "$guestip" >/dev/null 2>&1 && msg="ping ok" || msg="ping failed"
        echo "$msg" | timeout 60 nc "$guestip" $((port + 2))
    fi
    # Under load: each back-end in turn killed and restarted, and the load
    # seen going on afterwards (blk: the guest counts 8 chunks more than it
    # had reported when cvmm reconnected, so at least one was written by the
    # new back-end; net: 128 KiB more arrive than had when it reconnected).
    killed=0 went_on=""
    if wait_for "$ser" '^VL: load started' 300 && until_true 120 past vda 8 && until_true 120 past vdb 8; then
        kill_restart "cvmm --block-backend" blk start_blk vublk && killed=$((killed + 1))
        until_true 120 past vda $(($(progress vda) + 8)) && went_on="$went_on blk"
        kill_restart qemu-storage-daemon qsd start_qsd vuqsd && killed=$((killed + 1))
        until_true 120 past vdb $(($(progress vdb) + 8)) && went_on="$went_on qsd"
        kill_restart "cvmm --net-backend" net start_net vunet && killed=$((killed + 1))
        until_true 120 grown "stream-$t.bin" $(($(size_of "stream-$t.bin") + (128 << 10))) && went_on="$went_on net"
        echo "    $t: stream at $(size_of "stream-$t.bin") bytes"
    fi
    # A subshell: should cvmm be gone, SIGPIPE ends it, not this script.
    (echo stop >&3) 2>/dev/null
    echo "    $t: stop sent at $(date +%T)"
    wait $pid; rc=$?
    exec 3>&-
    kill $sink $source $stream 2>/dev/null
    wait $sink $source $stream 2>/dev/null
    for p in $blk $qsd $net; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    echo "    $t: cvmm exited $rc after $(($(date +%s) - start)) s"
    # The guest's lines, its load's progress every 32 chunks.
    tr -d '\r' <"$ser" | awk -F'[= ]' '/^VL:/ && !($2 == "load" && $4 == "k" && $5 % 32)' | sed "s/^/    $t: /"
    grep -E 'reconnected|gone|needs reset|refused|error' "$err" | sed "s/^/    $t: cvmm: /"
    [ $rc -eq 0 ] || tail -n 30 "$ser" "$err" | sed "s/^/    $t: /"

    check "$t: cvmm exited 0" [ $rc -eq 0 ]
    check "$t: the disks and the network are the vhost-user devices" \
        eval 'grep -q "vublk (vhost-user): virtio-$t" "$err" && grep -q "vuqsd (vhost-user): virtio-$t" "$err" &&
              grep -q "vunet (vhost-user): virtio-$t" "$err"'
    check "$t: no device needed a reset" lacks "$err" 'needs reset'
    check "$t: no I/O error in the guest" lacks "$ser" 'I/O error'
    # Disks: vda on cvmm --block-backend (its serial is the image's name), vdb on qsd.
    check "$t: blk: vda is the cvmm --block-backend disk (64 MiB)" has "$ser" "^VL: vda size=131072 serial=$blkimg\$"
    check "$t: blk: vdb is the qemu-storage-daemon disk (64 MiB)" has "$ser" '^VL: vdb size=131072 '
    for d in "vda blk $blkimg" "vdb qsd $qsdimg"; do
        set -- $d
        check "$t: $2: 1 MiB written and read back intact" has "$ser" "^VL: $1 read back ok\$"
        check "$t: $2: the image holds the guest's 1 MiB" [ "$(head -c $((1 << 20)) "$3" | md5)" = "$pat_md5" ]
    done
    check "$t: blk: the guest sees the image grow (CONFIG_CHANGE_MSG)" \
        has "$ser" "^VL: vda resized 131072 -> $((grow >> 9))\$"
    check "$t: qsd: the guest sees the image grow (GET_CONFIG at reconnect)" \
        has "$ser" "^VL: vdb resized 131072 -> $((grow >> 9))\$"
    check "$t: qsd: block_resize accepted over QMP" eval '[ "$(grep -c "\"return\": {}" "qmp-$t.out")" -eq 2 ]'
    if [ "$t" = pci ]; then
        # The config changes arrive on the config vector (MSI-X): vda's with
        # the resize, vdb's by the end (its reconnect).
        v=$(virtio_of blk)
        b=$(irq_count "irqs before resize" "$v" config) a=$(irq_count "irqs after resize" "$v" config)
        check "$t: blk: a config interrupt came with the resize ($v-config: $b -> $a)" [ "${a:-0}" -gt "${b:-0}" ]
        v=$(virtio_of qsd)
        b=$(irq_count "irqs before resize" "$v" config) a=$(irq_count "irqs" "$v" config)
        check "$t: qsd: a config interrupt came by the end ($v-config: $b -> $a)" [ "${a:-0}" -gt "${b:-0}" ]
    fi
    # Network
    check "$t: net: guest pings host" has "$ser" '^VL: ping ok$'
    check "$t: net: host pings guest" has "$ser" '^VL: host says \[ping ok\]$'
    check "$t: net: TCP guest -> host, 1 MiB intact" eval 'has "$ser" "^VL: tcp sent$" && [ "$(md5 <"rx-$t.bin")" = "$pat_md5" ]'
    check "$t: net: TCP host -> guest, 1 MiB intact" has "$ser" '^VL: tcp received ok$'
    # Interrupts through the back-ends' call fds: each request queue's
    # vector counted completions (MSI-X; on mmio the I/O completing at all
    # shows it).
    if [ "$t" = pci ]; then
        for q in "blk req.0" "qsd req.0" "net input.0" "net output.0"; do
            set -- $q
            v=$(virtio_of "$1")
            n=$(irq_count irqs "$v" "$2")
            check "$t: $1: interrupts on $v-$2 through the back-end's call fd ($n)" [ "${n:-0}" -gt 0 ]
        done
    fi
    # Kill and restart under load.
    check "$t: every back-end killed and restarted under load, cvmm reconnected ($killed of 3)" [ $killed -eq 3 ]
    check "$t: the load went on after each restart (${went_on# })" [ "$went_on" = " blk qsd net" ]
    for d in "vda blk $blkimg" "vdb qsd $qsdimg"; do
        set -- $d
        chunks=$(vl "load $1 done chunks=\([0-9]*\) ")
        check "$t: $2: the load stopped when told, not at its cap (${chunks:-no} chunks)" [ "${chunks:-1536}" -lt 1536 ]
        check "$t: $2: no write failed" has "$ser" "^VL: load $1 done chunks=[0-9]* errors=0\$"
        check "$t: $2: the image holds every chunk" \
            [ "$(dd if="$3" bs=64k skip=256 count="${chunks:-0}" 2>/dev/null | md5)" = \
              "$(repeated pat $((${chunks:-0} << 16)) | md5)" ]
    done
    chunks=$(vl 'stream done nc=0 chunks=\([0-9]*\)')
    check "$t: net: the TCP stream across the restart arrived whole (${chunks:-no} chunks of 64 KiB)" \
        [ -n "$chunks" -a "$(md5 <"stream-$t.bin")" = "$(repeated pat $((${chunks:-0} << 16)) | md5)" ]
    rm -f "$blkimg" "$qsdimg" "rx-$t.bin" "tx-$t.bin" "stream-$t.bin" "con-$t.in"
    return $fails
}

# The transports side by side (the nested machine has two vCPUs and each
# guest one), each reported whole when both are done.
n=0 runs=""
for t in $(echo "${VUL_TRANSPORTS:-pci,mmio}" | tr , " "); do
    n=$((n + 1))
    transport "$t" $n >"run-$t.out" 2>&1 &
    runs="$runs $t:$!"
done
total=0
for r in $runs; do
    wait "${r#*:}"
    f=$?
    cat "run-${r%%:*}.out"
    total=$((total + f))
done
echo "vhost_user_linux: $total failed"
[ $total -eq 0 ]

# shellcheck shell=bash
# What the tests that run cvmm's test guest (its devices in-process or on
# vhost-user back-ends) share (sourced, not run; it sets cvmm and guest, checks
# they are built and /dev/kvm is there, else FAIL or SKIP):
#
#   . "$(dirname "$0")/lib/testguest.sh"
#   tg_setup NAME      # tmp=$(mktemp -d /tmp/cvmm-NAME.XXXXXX); the pids in
#                      # pids() killed on exit, the netns $ns deleted when set
#   tg_netns NAME      # ns=NAME, a new network namespace (FAIL and exit if not)
#   fail MESSAGE       # "FAIL MESSAGE" and failed=1; the test goes on
#   tg_check_error NAME EXPECTED-TEXT ARGS...
#                      # cvmm with ARGS exits 2 with one line of stderr that
#                      # says EXPECTED-TEXT (a bad option: no VM)
#   tg_wait_sock PATH PID [SECS]   # until PATH is a socket (0), for up to SECS
#                      # (default 10) while PID lives (else 1)
#   tg_guest_lines FILE  # the test guest's virtio, PASS and FAIL lines in FILE
#                      # (its serial output)
#   tg_stop_backend    # SIGTERM to the back-end $BE_PID, and wait for it
#   tg_blk_image_ok IMG SEED [LOOPS]   # IMG holds the test guest's block for
#                      # SEED (and its LOOPS tg.blkloop blocks)
#   tg_vhost_blk_check NAME TRANSPORT SEED SECS
#                      # the guest's virtio-blk check on the vhost-user disk
#                      # $tmp/NAME.sock (image $tmp/NAME.img, back-end
#                      # $BE_PID, stopped when cvmm ends): 0, or 1 after fail

# it_wait_line (lib/common.sh) waits for a line of the guest's console.
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cvmm=$BUILD/cvmm
guest=$BUILD/testguest/testguest.elf
[ -x "$cvmm" ] && [ -f "$guest" ] || { echo "FAIL: build cvmm and the test guest first (make all)"; exit 1; }
[ -c /dev/kvm ] || { echo "SKIP: no /dev/kvm"; exit 77; }

tg_cleanup() {
    local p
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    [ -n "${ns:-}" ] && ip netns del "$ns" 2>/dev/null
    rm -rf "$tmp"
}

tg_setup() {
    tmp=$(mktemp -d "/tmp/cvmm-$1.XXXXXX")
    pids=()
    ns=
    failed=0
    trap tg_cleanup EXIT
}

tg_netns() {
    ip netns add "$1" || { echo "FAIL: cannot create a network namespace (run as root)"; exit 1; }
    ns=$1
}

fail() { echo "FAIL $*"; failed=1; }

tg_check_error() {
    local name=$1 want=$2 rc
    shift 2
    timeout 20 "$cvmm" --kernel "$guest" --serial null "$@" >/dev/null 2>"$tmp/$name.err" </dev/null
    rc=$?
    if [ $rc -ne 2 ] || ! grep -q -- "$want" "$tmp/$name.err" || [ "$(wc -l <"$tmp/$name.err")" -gt 1 ]; then
        fail "$name: exit $rc, stderr: $(cat "$tmp/$name.err")"
    else
        echo "ok $name: $(head -n1 "$tmp/$name.err")"
    fi
}

tg_wait_sock() {
    local _
    for _ in $(seq $((${3:-10} * 10))); do
        [ -S "$1" ] && return 0
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

tg_guest_lines() { tr -d '\r' <"$1" 2>/dev/null | grep -E '^TG: (virtio|FAIL|PASS)'; }

tg_stop_backend() {
    kill -TERM "$BE_PID" 2>/dev/null
    wait "$BE_PID" 2>/dev/null
}

# The check's block at sector 8 and the loop's at sector 64 + 8 k
# (images/testguest/vio_blk.c).
tg_blk_image_ok() {
    python3 - "$1" "$2" "${3:-0}" <<'PY'
import sys
path, seed, loops = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with open(path, 'rb') as f:
    data = f.read()
ok = data[8 * 512:8 * 512 + 4096] == bytes((seed + i * 31 + i // 512) & 0xff for i in range(4096))
for k in range(loops):
    off = (64 + 8 * k) * 512
    if data[off:off + 4096] != bytes((seed + 7 * k + 31 * i) & 0xff for i in range(4096)):
        print("block %d differs" % k)
        ok = False
sys.exit(0 if ok else 1)
PY
}

tg_vhost_blk_check() {
    local name=$1 transport=$2 seed=$3 secs=$4 rc
    timeout "$secs" "$cvmm" -v --kernel "$guest" --memory size=128M --serial "file=$tmp/$name.out" \
        --transport "$transport" --cmdline "tg.virtio=1 tg.seed=$seed" \
        --disk "vhost_user=on,socket=$tmp/$name.sock,id=vu0" >"$tmp/$name.log" 2>&1 </dev/null
    rc=$?
    tg_stop_backend
    echo "--- $name: exit=$rc"
    tg_guest_lines "$tmp/$name.out" | sed 's/^/    /'
    if [ $rc -ne 0 ]; then
        fail "$name: cvmm exited $rc: $(tail -n 3 "$tmp/$name.log")"
    elif ! tg_guest_lines "$tmp/$name.out" |
            grep -q "^TG: virtio-blk $transport capacity=2048 wrote+read 4096 bytes at sector 8 flush=yes id=.* ok$"; then
        fail "$name: no virtio-blk ok line from the guest"
    elif ! grep -q "vu0 (vhost-user): virtio-$transport" "$tmp/$name.log"; then
        fail "$name: the disk was not the vhost-user device"
    elif ! tg_blk_image_ok "$tmp/$name.img" "$seed"; then
        fail "$name: the image does not hold the guest's block (seed $seed)"
    elif tg_blk_image_ok "$tmp/$name.img" $(((seed + 1) % 256)); then
        fail "$name: the block check cannot tell seeds apart"
    else
        return 0
    fi
    return 1
}

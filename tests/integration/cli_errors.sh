#!/usr/bin/env bash
# Every kind of bad input gets exactly one line on stderr saying what is
# wrong, a non-zero exit, and leaves no file behind.
set -u
CVMM=${BUILD:?}/cvmm
[ -x "$CVMM" ] || { echo "no $CVMM"; exit 1; }
T=$(mktemp -d /tmp/cvmm-h1-cli.XXXXXX)
chmod 755 "$T"
trap 'rm -rf "$T"' EXIT
failures=0

# expect NAME PATTERN CMD...: non-zero exit (exactly $WANT_RC when set), one
# stderr line matching PATTERN, and no new file in $T/out.
expect() {
    local name=$1 pat=$2 rc lines
    shift 2
    mkdir -p "$T/out"
    timeout 20 "$@" >/dev/null 2>"$T/err" </dev/null; rc=$?
    lines=$(wc -l <"$T/err")
    if [ $rc -eq 0 ] || [ $rc -eq 124 ] || [ "$rc" != "${WANT_RC:-$rc}" ] || [ "$lines" -ne 1 ] || ! grep -q -- "$pat" "$T/err" ||
       [ -n "$(ls -A "$T/out")" ]; then
        echo "FAIL $name: exit $rc, $lines stderr lines, files: $(ls -A "$T/out" | tr '\n' ' ')"
        sed 's/^/    /' "$T/err"
        failures=$((failures + 1))
    else
        echo "ok   $name (exit $rc): $(cat "$T/err")"
    fi
    rm -rf "$T/out"
}

# A valid tiny guest, to vary one thing at a time.
printf '\t.code64\n\t.globl _start\n_start:\n\tmov $0xfe, %%al\n\tout %%al, $0x64\n' >"$T/ok.S"
gcc -c "$T/ok.S" -o "$T/ok.o" && ld -nostdlib -static -Ttext-segment=0x100000 -e _start -o "$T/ok.elf" "$T/ok.o" ||
    { echo "cannot build the guest"; exit 1; }
chmod 644 "$T/ok.elf"
SER=(--serial "file=$T/out/console")

# Kernel files
expect "missing kernel" "not found\|No such file" "$CVMM" --kernel "$T/nope" "${SER[@]}"
expect "kernel is a directory" "not a regular file" "$CVMM" --kernel "$T" "${SER[@]}"
: >"$T/empty"
expect "empty kernel" "empty" "$CVMM" --kernel "$T/empty" "${SER[@]}"
head -c 65536 /dev/urandom >"$T/random"
expect "neither bzImage nor ELF" "neither a bzImage nor an ELF" "$CVMM" --kernel "$T/random" "${SER[@]}"
if as --32 "$T/ok.S" -o "$T/ok32.o" 2>/dev/null && ld -m elf_i386 -nostdlib -static -Ttext-segment=0x100000 \
        -e _start -o "$T/ok32.elf" "$T/ok32.o" 2>/dev/null; then
    expect "32-bit ELF" "32-bit" "$CVMM" --kernel "$T/ok32.elf" "${SER[@]}"
else
    echo "note: no 32-bit binutils, 32-bit ELF case not run"
fi
# A bzImage header of protocol 2.15 without XLF_KERNEL_64 (a 32-bit-only kernel).
poke() { printf "$3" | dd of="$1" bs=1 seek=$(($2)) conv=notrunc status=none; }
head -c 32768 /dev/zero >"$T/bz32"
poke "$T/bz32" 0x1f1 '\x04'
poke "$T/bz32" 0x1fe '\x55\xaa'
poke "$T/bz32" 0x200 '\xeb\x6a'
poke "$T/bz32" 0x202 'HdrS\x0f\x02'
poke "$T/bz32" 0x211 '\x01'
poke "$T/bz32" 0x230 '\x00\x00\x20\x00'
poke "$T/bz32" 0x258 '\x00\x00\x00\x01'
expect "32-bit bzImage" "32-bit" "$CVMM" --kernel "$T/bz32" "${SER[@]}"
poke "$T/bz32" 0x206 '\x04\x02'
expect "old boot protocol" "too old" "$CVMM" --kernel "$T/bz32" "${SER[@]}"
head -c $((3 * 1024 * 1024)) /dev/zero >"$T/initrd"
expect "memory too small for initramfs" "memory too small" \
    "$CVMM" --kernel "$T/ok.elf" --initramfs "$T/initrd" --memory size=2M "${SER[@]}"
expect "missing initramfs" "initramfs" "$CVMM" --kernel "$T/ok.elf" --initramfs "$T/nope" "${SER[@]}"
# A FIFO is refused at once, not waited on for a writer.
mkfifo "$T/fifo"
WANT_RC=2 expect "kernel is a FIFO" "not a regular file" "$CVMM" --kernel "$T/fifo" "${SER[@]}"
WANT_RC=2 expect "initramfs is a FIFO" "not a regular file" \
    "$CVMM" --kernel "$T/ok.elf" --initramfs "$T/fifo" "${SER[@]}"
WANT_RC=2 expect "disk is a FIFO" "disk" "$CVMM" --kernel "$T/ok.elf" --disk "path=$T/fifo,readonly=on" "${SER[@]}"
WANT_RC=2 expect "rng source is a directory" "not a character device" \
    "$CVMM" --kernel "$T/ok.elf" --rng "src=$T" "${SER[@]}"
: >"$T/disk.img"
WANT_RC=2 expect "disk serial too long" "at most 20" \
    "$CVMM" --kernel "$T/ok.elf" --disk "path=$T/disk.img,serial=123456789012345678901" "${SER[@]}"
WANT_RC=2 expect "serial file in a missing directory" "serial" \
    "$CVMM" --kernel "$T/ok.elf" --serial "file=$T/out/nodir/console"
# The kernel is read before the serial file (the same file) is truncated:
# the guest still boots (and resets), cvmm does not fault on the file.
cp "$T/ok.elf" "$T/self.elf"
timeout 20 "$CVMM" --kernel "$T/self.elf" --serial "file=$T/self.elf" >/dev/null 2>"$T/err" </dev/null; rc=$?
if [ $rc -eq 0 ]; then
    echo "ok   --serial file= naming the kernel: the guest ran and reset (exit 0)"
else
    echo "FAIL --serial file= naming the kernel: exit $rc"
    sed 's/^/    /' "$T/err"
    failures=$((failures + 1))
fi

# Command line
expect "no kernel" "no kernel given" "$CVMM" "${SER[@]}"
expect "unknown option" "unknown option '--frobnicate'" "$CVMM" --kernel "$T/ok.elf" --frobnicate
expect "stray argument" "unexpected argument" "$CVMM" --kernel "$T/ok.elf" extra
expect "option without value" "needs a value" "$CVMM" --kernel
expect "option given twice" "given twice" "$CVMM" --kernel "$T/ok.elf" --kernel "$T/ok.elf"
expect "bad memory size" "size=12Q" "$CVMM" --kernel "$T/ok.elf" --memory size=12Q
expect "unknown memory key" "unknown key 'bogus'" "$CVMM" --kernel "$T/ok.elf" --memory size=64M,bogus=1
expect "bad boolean" "on or off" "$CVMM" --kernel "$T/ok.elf" --memory size=64M,shared=maybe
expect "memory too small" "must be 2M" "$CVMM" --kernel "$T/ok.elf" --memory size=1M
expect "hugepage size" "multiple of 2M" "$CVMM" --kernel "$T/ok.elf" --memory size=3M,hugepages=on
expect "zero cpus" "must be 1 to" "$CVMM" --kernel "$T/ok.elf" --cpus boot=0
expect "bad cpus" "is not key=value" "$CVMM" --kernel "$T/ok.elf" --cpus 2
expect "bad serial" "expected tty, off" "$CVMM" --kernel "$T/ok.elf" --serial bogus
expect "action with VM option" "cannot be combined" "$CVMM" --check-host --kernel "$T/ok.elf"

# --vsock: bad input is exit status 2
WANT_RC=2
V=(--vsock)
expect "vsock without cid" "cid=N is required" "$CVMM" --kernel "$T/ok.elf" "${SER[@]}" "${V[@]}" "socket=$T/v.sock"
expect "vsock without socket" "socket=PATH is required" "$CVMM" --kernel "$T/ok.elf" "${SER[@]}" "${V[@]}" cid=3
expect "vsock cid 2" "cid=2: must be 3..4294967294" "$CVMM" --kernel "$T/ok.elf" "${SER[@]}" "${V[@]}" "cid=2,socket=$T/v.sock"
expect "vsock cid 2^32-1" "cid=4294967295: must be 3" "$CVMM" --kernel "$T/ok.elf" "${SER[@]}" "${V[@]}" \
    "cid=4294967295,socket=$T/v.sock"
expect "vsock cid not a number" "cid" "$CVMM" --kernel "$T/ok.elf" "${SER[@]}" "${V[@]}" "cid=three,socket=$T/v.sock"
expect "vsock unknown key" "unknown key 'uds_path'" "$CVMM" --kernel "$T/ok.elf" "${SER[@]}" "${V[@]}" \
    "cid=3,uds_path=$T/v.sock"
expect "vsock twice" "given twice" "$CVMM" --kernel "$T/ok.elf" "${SER[@]}" "${V[@]}" "cid=3,socket=$T/v.sock" \
    "${V[@]}" "cid=4,socket=$T/w.sock"
expect "vsock socket dir missing" "cannot listen on socket $T/no/v.sock" "$CVMM" --kernel "$T/ok.elf" "${SER[@]}" \
    "${V[@]}" "cid=3,socket=$T/no/v.sock"
expect "vsock socket too long" "too long" "$CVMM" --kernel "$T/ok.elf" "${SER[@]}" "${V[@]}" \
    "cid=3,socket=$T/$(printf 'x%.0s' $(seq 100))"
expect "vsock vhost_user=on, no back-end" "cannot connect to the vhost-user back-end on $T/v.sock" "$CVMM" \
    --kernel "$T/ok.elf" "${SER[@]}" "${V[@]}" "cid=3,vhost_user=on,socket=$T/v.sock"
# A socket another process listens on is refused, and left alone.
python3 -c 'import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(1); print("up", flush=True); time.sleep(60)' \
    "$T/busy.sock" >"$T/busy.up" &
busy=$!
for _ in $(seq 100); do grep -q up "$T/busy.up" && break; sleep 0.1; done
expect "vsock socket busy" "socket $T/busy.sock: another process listens there" "$CVMM" --kernel "$T/ok.elf" \
    "${SER[@]}" "${V[@]}" "cid=3,socket=$T/busy.sock"
[ -S "$T/busy.sock" ] || { echo "FAIL vsock socket busy: the other process's socket was removed"; failures=$((failures + 1)); }
kill "$busy"; wait "$busy" 2>/dev/null
WANT_RC=
for f in v.sock w.sock; do
    [ ! -e "$T/$f" ] || { echo "FAIL vsock: a refused start left $f behind"; failures=$((failures + 1)); }
done

# --fs (virtio-fs on a vhost-user back-end): bad input is exit status 2,
# found before any back-end is contacted (the socket does not exist).
WANT_RC=2
F=("$CVMM" --kernel "$T/ok.elf" "${SER[@]}" --fs)
expect "fs without tag" "tag=TAG is required" "${F[@]}" "socket=$T/fs.sock"
expect "fs empty tag" "tag=: bad value" "${F[@]}" "tag=,socket=$T/fs.sock"
expect "fs tag of 37 bytes" "tag=$(printf 'x%.0s' $(seq 37)): at most 36 bytes" "${F[@]}" \
    "tag=$(printf 'x%.0s' $(seq 37)),socket=$T/fs.sock"
expect "fs without socket" "socket=PATH .* is required" "${F[@]}" "tag=share"
expect "fs no request queue" "num_queues=0: must be 1..64" "${F[@]}" "tag=share,socket=$T/fs.sock,num_queues=0"
expect "fs too many request queues" "num_queues=65: must be 1..64" "${F[@]}" "tag=share,socket=$T/fs.sock,num_queues=65"
expect "fs queue_size not a power of two" "queue_size=100: must be a power of two" "${F[@]}" \
    "tag=share,socket=$T/fs.sock,queue_size=100"
expect "fs queue_size too big" "queue_size=65536: must be a power of two" "${F[@]}" \
    "tag=share,socket=$T/fs.sock,queue_size=65536"
expect "fs vhost_user=off" "vhost_user=off: a virtio-fs device is always served" "${F[@]}" \
    "tag=share,socket=$T/fs.sock,vhost_user=off"
expect "fs bad vhost_mode" "vhost_mode=both: expected client or server" "${F[@]}" \
    "tag=share,socket=$T/fs.sock,vhost_mode=both"
expect "fs unknown key" "unknown key 'path'" "${F[@]}" "tag=share,socket=$T/fs.sock,path=/srv"
expect "fs no back-end there" "cannot connect to the vhost-user back-end on $T/fs.sock" "${F[@]}" \
    "tag=share,socket=$T/fs.sock"
expect "fs five devices" "--fs: at most 4" "${F[@]}" "tag=a,socket=$T/fs.sock" --fs "tag=b,socket=$T/fs.sock" \
    --fs "tag=c,socket=$T/fs.sock" --fs "tag=d,socket=$T/fs.sock" --fs "tag=e,socket=$T/fs.sock"
# virtiofsd serves one request queue (hiprio + 1): more are refused at connect.
virtiofsd=/usr/lib/qemu/virtiofsd
if [ -x "$virtiofsd" ]; then
    mkdir -p "$T/share"
    "$virtiofsd" --socket-path="$T/fs.sock" -o source="$T/share" -o sandbox=chroot -f </dev/null >"$T/vfs.log" 2>&1 &
    vfs=$!
    for _ in $(seq 100); do [ -S "$T/fs.sock" ] && break; sleep 0.1; done
    expect "fs more request queues than virtiofsd has" "back-end has 2 queue(s), 3 configured: lower num_queues" \
        "${F[@]}" "tag=share,socket=$T/fs.sock,num_queues=2"
    # It ends when its front-end goes.
    for _ in $(seq 100); do kill -0 "$vfs" 2>/dev/null || break; sleep 0.1; done
    kill "$vfs" 2>/dev/null && { echo "FAIL fs: virtiofsd still runs after cvmm left"; failures=$((failures + 1)); }
    wait "$vfs" 2>/dev/null
else
    echo "FAIL fs: $virtiofsd is missing (qemu-system-common; tests/install-deps.sh)"
    failures=$((failures + 1))
fi
WANT_RC=

# KVM access
if command -v setpriv >/dev/null && [ "$(id -u)" -eq 0 ] && ! setpriv --reuid=65534 --regid=65534 --clear-groups \
        test -w /dev/kvm; then
    expect "no permission for /dev/kvm" "no permission to open /dev/kvm" \
        setpriv --reuid=65534 --regid=65534 --clear-groups "$CVMM" --kernel "$T/ok.elf" --serial null
    chmod 600 "$T/ok.elf"
    expect "unreadable kernel" "Permission denied" \
        setpriv --reuid=65534 --regid=65534 --clear-groups "$CVMM" --kernel "$T/ok.elf" --serial null
    chmod 644 "$T/ok.elf"
else
    echo "note: not root or no setpriv: permission cases not run"
fi
if [ "$(id -u)" -eq 0 ] && unshare -m true 2>/dev/null; then
    expect "no /dev/kvm" "/dev/kvm not found" \
        unshare -m sh -c 'mount -t tmpfs none /dev && exec "$@"' sh "$CVMM" --kernel "$T/ok.elf" "${SER[@]}"
else
    echo "note: cannot unshare a mount namespace: no-/dev/kvm case not run"
fi

[ $failures -eq 0 ] || { echo "$failures case(s) failed"; exit 1; }
exit 0

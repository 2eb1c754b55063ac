#!/bin/sh
# The host side of virtiofs_linux.sh (busybox sh; runs directly or in the
# nested machine, see tests/lib/linux-guest.sh): for each transport, starts
# virtiofsd (shipped as vfs/ with its loader and libraries) on a fresh
# directory, boots Debian's kernel under cvmm --fs, and prints one
# PASS/FAIL line per property: the guest mounts the tag and reads the
# host's file; the guest's files, rename and delete are found on the host;
# a device reset by the guest works with the same virtiofsd; virtiofsd
# killed under the running guest puts the device in DEVICE_NEEDS_RESET, and
# the guest still resets cleanly (cvmm exits 0).
. "$FILES/run_lib.sh"
vf() { tr -d '\r' <"$ser" | sed -n "s/^VF: $1/\1/p" | head -n 1; }
tag=hostshare

for t in pci mmio; do
    fails_before=$fails
    share=$PWD/share-$t sock=$PWD/vfs-$t.sock ser=ser-$t.out
    mkdir -p "$share"
    dd if=/dev/urandom of="$share/host.bin" bs=1M count=1 2>/dev/null
    host_md5=$(md5 <"$share/host.bin")
    echo "hello from the host ($t)" >"$share/hello.txt"
    echo "the guest deletes this" >"$share/delete-me"
    # Through its own loader and libraries (vfs/, from virtiofs_linux.sh);
    # $! is virtiofsd itself.
    vfs/ld.so --library-path vfs/lib vfs/virtiofsd --socket-path="$sock" -o source="$share" -o sandbox=chroot -f \
        </dev/null >"vfs-$t.log" 2>&1 &
    vfs=$!
    i=0
    while [ ! -S "$sock" ] && [ $i -lt 100 ] && kill -0 $vfs 2>/dev/null; do sleep 0.1; i=$((i + 1)); done
    # PCI with shared=on given; mmio with cvmm sharing guest RAM by itself.
    mem=size=256M
    [ $t = pci ] && mem=size=256M,shared=on
    start=$(date +%s)
    timeout 400 "$CVMM" --kernel "$GUEST_KERNEL" --initramfs initrd.gz --cpus boot=1 --memory "$mem" \
        --transport "$t" --fs "tag=$tag,socket=$sock" --serial "file=$ser" \
        --cmdline "console=ttyS0 panic=-1 reboot=k quiet no_timer_check vf.tag=$tag" \
        </dev/null >/dev/null 2>"err-$t" &
    pid=$!
    written=false
    if wait_for "$ser" '^VF: files written' 400; then
        written=true
        # What the guest wrote is on the host while the guest still runs.
        guest_md5=$(vf 'guest file md5=\([0-9a-f]*\)')
        host_guest_md5=$(md5 <"$share/guest.bin" 2>/dev/null)
        note=$(cat "$share/dir/note.txt" 2>/dev/null)
        [ -e "$share/dir/note.tmp" ] && tmp_left=yes || tmp_left=no
        [ -e "$share/delete-me" ] && deleted=no || deleted=yes
    fi
    kill -KILL $vfs 2>/dev/null
    wait $vfs 2>/dev/null
    wait $pid; rc=$?
    echo "    $t: cvmm exited $rc after $(($(date +%s) - start)) s"
    tr -d '\r' <"$ser" | grep '^VF:' | sed "s/^/    $t: /"

    check "$t: cvmm exited 0" [ $rc -eq 0 ]
    check "$t: the guest found the virtio-fs device, driver ready" has "$ser" '^VF: device virtio[0-9]* status=0x0000000f$'
    check "$t: mount -t virtiofs $tag" has "$ser" "^VF: mounted $tag virtiofs\$"
    check "$t: the guest reads the host's file (1 MiB intact)" has "$ser" "^VF: host file md5=$host_md5\$"
    check "$t: the guest reads the host's text" has "$ser" "^VF: hello \[hello from the host ($t)\]\$"
    check "$t: the guest wrote its files" $written
    check "$t: the guest's 4 MiB file is on the host, intact" \
        [ -n "${guest_md5:-}" -a "${host_guest_md5:-}" = "${guest_md5:-}" ]
    check "$t: the guest's file reads back intact through FUSE" has "$ser" "^VF: guest file read back md5=${guest_md5:-x}\$"
    check "$t: the guest's mkdir and rename are on the host" \
        [ "${note:-}" = "written by the guest" -a "${tmp_left:-}" = no ]
    check "$t: the guest's delete is on the host" [ "${deleted:-}" = yes ]
    check "$t: a device reset (driver unbound, bound) and the tag mounted again" \
        has "$ser" '^VF: remounted after a device reset: \[written by the guest\] status=0x0000000f$'
    st=$(vf 'status after the back-end went=\(0x[0-9a-f]*\)')
    check "$t: virtiofsd killed: DEVICE_NEEDS_RESET (status ${st:-none})" \
        eval '[ -n "$st" ] && [ $((st & 0x40)) -ne 0 ]'
    check "$t: cvmm says the device needs reset" has "err-$t" 'fs0: device needs reset'
    [ $fails -eq $fails_before ] || tail -n 40 "$ser" "err-$t" "vfs-$t.log" | sed "s/^/    $t: /"
    unset guest_md5 host_guest_md5 note tmp_left deleted
    rm -rf "$share"
done
echo "virtiofs_linux: $fails failed"
[ $fails -eq 0 ]

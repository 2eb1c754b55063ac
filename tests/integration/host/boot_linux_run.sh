#!/bin/sh
# The host side of boot_linux.sh (busybox sh; runs directly or in the nested
# machine, see tests/lib/linux-guest.sh): boots Debian's kernel under cvmm in
# three ways and prints one PASS/FAIL line per property:
#   A: bzImage, 1 vCPU, 128 MiB; a shell on the serial console answers a
#      typed line, then a typed `poweroff -f` ends cvmm with 0
#   B: vmlinux ELF, 2 vCPUs, 1 GiB; `reboot -f` ends cvmm with 0
#   C: bzImage, 4 vCPUs, 3.5 GiB (RAM continues above 4 GiB, past the PCI
#      hole); a panic with panic=-1 ends cvmm with 0
# Each run also checks the initramfs (a file only it holds) and the command
# line (a token /init reads back).
fails=0
# Input goes to cvmm through a fifo: if cvmm has ended, a write must fail
# (EPIPE) rather than kill this script before it reports why cvmm ended.
trap '' PIPE
ok() { echo "PASS $1"; }
no() { echo "FAIL $1"; fails=$((fails + 1)); }
# check NAME COMMAND...: one line for one property (COMMAND is a single command).
check() { name=$1; shift; if "$@"; then ok "$name"; else no "$name"; fi; }
has() { tr -d '\r' <"$1" | grep -q "$2"; }

# wait_for FILE REGEX SECS: until FILE has a line matching REGEX; gives up
# after SECS or when cvmm ($pid) has ended.
wait_for() {
    i=0
    while ! has "$1" "$2"; do
        i=$((i + 1)); [ $i -gt $(($3 * 5)) ] && return 1
        kill -0 "$pid" 2>/dev/null || { has "$1" "$2"; return; }
        sleep 0.2
    done
}

# boot CASE KERNEL CPUS MEM_MIB END: runs cvmm (stdin: fifo CASE.in), sets rc
boot() {
    c=$1 kernel=$2 cpus=$3 mem=$4 end=$5
    mkfifo "$c.in"
    start=$(date +%s)
    timeout 240 "$CVMM" --kernel "$kernel" --initramfs initrd.gz --cpus "boot=$cpus" --memory "size=${mem}M" \
        --cmdline "console=ttyS0 panic=-1 reboot=k bl.token=tok-$c-$$ bl.end=$end" \
        <"$c.in" >"$c.out" 2>"$c.err" &
    pid=$!
    # Read-write: that open of the FIFO does not wait for cvmm to open it, so
    # no signal can interrupt it (one did, "can't create ...: Interrupted
    # system call", and busybox sh ended the script at the failed exec).
    exec 3<>"$c.in"
    if [ "$end" = shell ]; then
        if wait_for "$c.out" '^BL: shell ready' 300; then
            # shellcheck disable=SC2016
            echo 'echo typed-$((6 * 7))' >&3
            check "$c: a line typed into the serial console reaches the guest's shell and its answer comes back" \
                wait_for "$c.out" '^typed-42$' 60
        else
            no "$c: the guest's shell did not start"
        fi
        echo 'poweroff -f' >&3
    fi
    wait $pid; rc=$?
    exec 3>&-
    tr -d '\r' <"$c.out" | grep '^BL:' | sed "s/^/    $c: /"
    echo "    $c: cvmm exited $rc after $(($(date +%s) - start)) s"
    [ $rc -eq 0 ] || tail -n 20 "$c.out" "$c.err" | sed "s/^/    $c: /"
    bl=$(tr -d '\r' <"$c.out" | grep '^BL: cpus=')
}

field() { echo "$bl" | sed -n "s/.* $1=\([^ ]*\).*/\1/p"; }

# common CASE CPUS ONLINE MEM_MIB WHAT: the checks every run makes
common() {
    c=$1
    check "$c: $5 boots to /init" [ -n "$bl" ]
    check "$c: initramfs loaded" has "$c.out" "^BL: initramfs=bl-initrd-ok$"
    check "$c: command line passed" has "$c.out" "^BL: token=tok-$c-$$\$"
    check "$c: $2 vCPUs online" [ "$(field cpus)/$(field online)" = "$2/$3" ]
    # KVM emulates it whatever the host's CPU (it says so to every VMM that
    # asks), for a guest whose VMM puts it in the guest's CPUID.
    check "$c: the guest has the TSC-deadline timer" [ "$(field tsc_deadline)" = yes ]
    # e820 RAM is the size asked for less the 640 KiB..1 MiB hole.
    kib=$(field ram_kib)
    check "$c: the guest sees $4 MiB of RAM (got ${kib:-?} KiB)" \
        [ "${kib:-0}" -le $(($4 * 1024)) -a "${kib:-0}" -gt $(($4 * 1024 - 1024)) ]
}

boot A "$GUEST_KERNEL" 1 128 shell
common A 1 0 128 bzImage
check "A: the guest powered off" has A.out 'reboot: Power down'
check "A: poweroff ends cvmm with 0" [ $rc -eq 0 ]

boot B vmlinux 2 1024 reboot
common B 2 0-1 1024 "vmlinux ELF"
check "B: the guest rebooted" has B.out 'reboot: Restarting system'
check "B: reboot ends cvmm with 0" [ $rc -eq 0 ]

boot C "$GUEST_KERNEL" 4 3584 panic
common C 4 0-3 3584 bzImage
check "C: RAM continues above 4 GiB" [ "$(field above_4g)" = yes ]
check "C: the guest panicked" has C.out 'Kernel panic'
check "C: a panic with panic=-1 ends cvmm with 0" [ $rc -eq 0 ]

echo "boot_linux: $fails failed"
[ $fails -eq 0 ]

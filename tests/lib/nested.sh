# shellcheck shell=bash
# Runs a script inside an outer QEMU/TCG machine whose kvm-amd gives cvmm a
# working /dev/kvm (images/nested/build.sh builds its image). Used through
# tests/lib/linux-guest.sh.
#
#   nested_unavailable   prints why no nested machine can run here, or returns 1
#   nested_run NAME SCRIPT [SRC[:DEST]]...
#       boots the outer machine (2 vCPUs, NESTED_MEM_MIB MiB, default 2048)
#       with SCRIPT as /run/test.sh and each SRC as /run/DEST, prints its
#       serial console and returns the script's exit status, which the outer
#       /init reports as "NESTED-EXIT: <status>"; 124 when the machine did
#       not finish in NESTED_TIMEOUT seconds (default 900) or one of its CPUs
#       stopped (nested_watch), 125 when it ended without reporting. The
#       console stays in $BUILD/nested/NAME.log.
#   nested_emulator_failure NAME STATUS   after a failed nested_run: prints
#       which failure of the emulated machine (not of cvmm) it was, or returns 1
#   nested_initrd NAME SCRIPT [SRC[:DEST]]...   the outer initramfs nested_run boots
#   nested_qemu_args INITRD   the outer machine's QEMU arguments, one a line
#       (NESTED_APPEND adds to its kernel command line)

NESTED_QEMU=${NESTED_QEMU:-qemu-system-x86_64}

nested_unavailable() {
    command -v "$NESTED_QEMU" >/dev/null ||
        { echo "$NESTED_QEMU is not installed (apt-get install qemu-system-x86)"; return 0; }
    [ -x /bin/busybox ] || { echo "busybox-static is not installed"; return 0; }
    # TCG's -cpu max offers SVM and nested paging on any host CPU; a QEMU
    # built without TCG, or too old to emulate them, refuses these flags.
    echo q | timeout 30 "$NESTED_QEMU" -accel tcg -cpu max,+svm,+npt,enforce -display none \
        -nodefaults -S -monitor stdio -serial none >/dev/null 2>&1 && return 1
    echo "$NESTED_QEMU -accel tcg -cpu max offers no SVM with nested paging"
}

# no_timer_check: on a busy host the TCG vCPUs run so unevenly that the
# kernel's boot-time check of the IO-APIC timer fails and it panics ("IO-APIC
# + timer doesn't work!"); the timer itself works. loglevel=5: the outer
# kernel's warnings, with their stack traces, reach the console (its boot
# chatter does not). softlockup_panic=1: an outer CPU stuck in the kernel
# (seen once, in a cvmm process) ends the machine at once, with a trace,
# instead of when the run times out.
nested_qemu_args() {
    printf '%s\n' -accel tcg,thread=multi -cpu max -smp 2 -m "${NESTED_MEM_MIB:-2048}" \
        -nodefaults -no-user-config -display none -no-reboot \
        -kernel "$BUILD/nested/vmlinuz" -initrd "$1" \
        -append "console=ttyS0 panic=-1 loglevel=5 softlockup_panic=1 mitigations=off no_timer_check ${NESTED_APPEND:-}"
}

# nested_initrd NAME SCRIPT [SRC[:DEST]]...: prints the path of an outer
# initramfs (base.cpio.gz and an archive with SCRIPT and the files) in a new
# directory the caller removes.
nested_initrd() {
    local name=$1 script=$2
    shift 2
    local dir spec src dest
    dir=$(mktemp -d "$BUILD/nested/run-$name.XXXXXX")
    mkdir -p "$dir/root/run"
    install -m 0755 "$script" "$dir/root/run/test.sh"
    for spec in "$@"; do
        src=${spec%%:*}
        dest=$(basename "$src")
        [ "$spec" != "$src" ] && dest=${spec#*:}
        mkdir -p "$dir/root/run/$(dirname "$dest")"
        cp -a "$src" "$dir/root/run/$dest"
    done
    (cd "$dir/root" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) | gzip -1 >"$dir/run.cpio.gz"
    cat "$BUILD/nested/base.cpio.gz" "$dir/run.cpio.gz" >"$dir/initrd.gz"
    rm -rf "$dir/root" "$dir/run.cpio.gz"
    echo "$dir/initrd.gz"
}

nested_run() {
    local name=$1 initrd dir log rc args pipe stalled
    initrd=$(nested_initrd "$@") || return 1
    dir=$(dirname "$initrd")
    log=$BUILD/nested/$name.log
    : >"$log"
    mapfile -t args < <(NESTED_APPEND="${NESTED_APPEND:-} nested_heartbeat=1" nested_qemu_args "$initrd")
    # -d cpu_reset: an outer kernel that triple-faults ends QEMU (-no-reboot)
    # without a word on the console; the CPU state at each reset is kept.
    (timeout "${NESTED_TIMEOUT:-900}" "$NESTED_QEMU" "${args[@]}" -serial stdio -pidfile "$dir/qemu.pid" \
        -d cpu_reset -D "$BUILD/nested/$name.qemu.log" </dev/null 2>&1 |
        sed -u 's/\r$//' | tee "$log" | grep --line-buffered -v '^NESTED-\(EXIT: \|ALIVE \)'
     exit "${PIPESTATUS[0]}") &
    pipe=$!
    nested_watch "$log" "$dir" "$pipe"
    wait "$pipe"
    rc=$?
    stalled=$(cat "$dir/stalled" 2>/dev/null)
    rm -rf "$dir"
    [ -n "$stalled" ] && { echo "nested: $stalled"; return 124; }
    [ "$rc" -eq 124 ] && { echo "nested: the outer machine did not finish in ${NESTED_TIMEOUT:-900} s"; return 124; }
    rc=$(sed -n 's/^NESTED-EXIT: \([0-9]*\)$/\1/p' "$log" | tail -n 1)
    [ -n "$rc" ] || { echo "nested: the outer machine ended without a result (console in $log)"; return 125; }
    return "$rc"
}

# nested_watch LOG DIR PID: until PID ends, watches the heartbeat each outer
# CPU prints (images/nested/init.sh: "NESTED-ALIVE <cpu>" every 15 s). An
# outer CPU can stop for good without a word (seen: one halted and never
# woken, the machine silent until its timeout); when a CPU's heartbeat has
# not come for NESTED_STALL seconds (default 120), it says so in DIR/stalled
# and ends QEMU (pid in DIR/qemu.pid).
nested_watch() {
    local log=$1 dir=$2 pid=$3 stall=${NESTED_STALL:-120} cpu n
    local -A seen=() since=()
    while kill -0 "$pid" 2>/dev/null; do
        sleep 5
        for cpu in 0 1; do
            n=$(grep -ac "^NESTED-ALIVE $cpu\$" "$log")
            if [ "$n" != "${seen[$cpu]:-0}" ]; then
                seen[$cpu]=$n since[$cpu]=$SECONDS
            elif [ "$n" -gt 0 ] && [ $((SECONDS - since[$cpu])) -ge "$stall" ]; then
                echo "the outer machine's CPU $cpu stopped (no heartbeat for $stall s)" >"$dir/stalled"
                kill "$(cat "$dir/qemu.pid" 2>/dev/null)" 2>/dev/null
                wait "$pid" 2>/dev/null
                return
            fi
        done
    done
}

# nested_emulator_failure NAME STATUS: whether the failed run NAME (STATUS
# from nested_run) failed in the emulated machine rather than in cvmm, and
# how. These are QEMU 7.2's TCG defects traced in docs/x86-machine.md:
#  - a guest under cvmm triple-faulted: QEMU resumes a guest whose injected
#    interrupt took a nested-page fault at the outer VMRUN's address;
#  - the outer kernel triple-faulted (QEMU logs it, then ends, -no-reboot),
#    oopsed or panicked (its own console lines, not the run's output);
#  - the outer machine ended without a result, or stopped answering: every
#    cvmm run inside has its own, shorter timeout and reports it.
nested_emulator_failure() {
    local name=$1 rc=$2 log=$BUILD/nested/$1.log crash
    crash=$(grep -aEm1 '^\[ *[0-9.]+\] (BUG:|Oops|general protection fault|Kernel panic|.*stack guard page)' "$log")
    if grep -aq "triple fault (KVM_EXIT_SHUTDOWN)" "$log"; then
        echo "a guest triple-faulted in the nested machine (QEMU TCG's SVM defect)"
    elif grep -aq "^Triple fault" "$BUILD/nested/$name.qemu.log" 2>/dev/null; then
        echo "the nested machine's own kernel triple-faulted"
    elif [ -n "$crash" ]; then
        echo "the nested machine's own kernel crashed: $crash"
    elif [ "$rc" -eq 124 ] || [ "$rc" -eq 125 ]; then
        echo "the nested machine $([ "$rc" -eq 124 ] && echo "stopped answering" || echo "ended without a result")"
    else
        return 1
    fi
}

# Prints the "SOURCE:DEST" lines that ship this host's qemu-system-x86_64 into
# the outer machine (benchmarks run QEMU beside cvmm there): the program as
# nested_program_files ships it (into qemu/, run through the loader, so no
# paths change) and the firmware it loads for -kernel (give QEMU -L
# qemu/share). Returns 1, saying why, when a firmware file is missing.
# Other QEMU programs (qemu-storage-daemon) can share qemu/.
nested_qemu_files() {
    local q f
    q=$(command -v qemu-system-x86_64) || { echo "qemu-system-x86_64 not found" >&2; return 1; }
    nested_program_files "$q" qemu || return 1
    # bios-microvm.bin: bench/inproc.sh's QEMU on virtio-mmio (-M microvm).
    for f in seabios/bios-256k.bin qemu/linuxboot_dma.bin qemu/kvmvapic.bin qemu/bios-microvm.bin; do
        [ -f "/usr/share/$f" ] || { echo "QEMU firmware /usr/share/$f not found" >&2; return 1; }
        echo "$(readlink -f "/usr/share/$f"):qemu/share/$(basename "$f")"
    done
}

# nested_program_files PROGRAM DIR: prints the "SOURCE:DEST" lines that ship
# a dynamically linked PROGRAM (e.g. /usr/lib/qemu/virtiofsd) into the outer
# machine as DIR/NAME with its loader as DIR/ld.so and its libraries in
# DIR/lib; run it there as: DIR/ld.so --library-path DIR/lib DIR/NAME ...
nested_program_files() {
    local p=$1 dir=$2
    [ -x "$p" ] || { echo "$p not found" >&2; return 1; }
    echo "$(readlink -f "$p"):$dir/$(basename "$p")"
    nested_library_files "$p" "$dir"
}

# nested_library_files FILE DIR: the "SOURCE:DEST" lines of the libraries
# FILE (a program or a shared object, e.g. a plugin it loads) links, laid out
# as nested_program_files lays them out: DIR/lib/NAME, the loader DIR/ld.so.
nested_library_files() {
    local lib
    while read -r lib; do
        case $lib in
            */ld-linux*) echo "$(readlink -f "$lib"):$2/ld.so";;
            *) echo "$(readlink -f "$lib"):$2/lib/$(basename "$lib")";;
        esac
    done < <(ldd "$1" | awk '/=> \// { print $3 } /^\t\/[^ ]* \(/ { print $1 }')
}

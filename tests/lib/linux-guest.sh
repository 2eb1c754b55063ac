# shellcheck shell=bash
# Where and how a Linux guest runs under cvmm; sourced by every test (and
# `make demo`, bench/inproc.sh) that boots Linux:
#   . "$root/tests/lib/linux-guest.sh"
#   linux_guest_mode_or_skip            # sets LINUX_GUEST_MODE, or SKIP + exit 77
#   linux_guest_test NAME               # the same, then $tmp, removed on exit
#   linux_guest_bench NAME              # a benchmark's start (not measured: exit 0)
#   linux_guest_run NAME SCRIPT [SRC[:DEST]]...
#
# The one decision: "direct" where this host's KVM runs Linux (`cvmm
# --check-host` says "can"); "nested" where it cannot but QEMU's TCG offers
# AMD SVM with nested paging, so cvmm runs on the /dev/kvm of an outer QEMU
# machine (tests/lib/nested.sh); a skip, with both reasons, only where
# neither works. LINUX_GUEST_MODE=direct|nested in the environment forces one.
#
# SCRIPT is a POSIX sh script for busybox's sh: the "host" side of a test.
# It runs cvmm ("$CVMM") with the inner guest's kernel ("$GUEST_KERNEL",
# Debian's cloud bzImage) and the files given as SRC[:DEST] (under "$FILES",
# its working directory; DEST defaults to the basename), and checks what a
# host sees (disk images, taps, console files) with busybox tools. Directly,
# it runs in a fresh network namespace with busybox's applets first on PATH;
# nested, inside the outer machine, on its CPU 0, where "$CVMM" runs cvmm
# on CPU 1 and "$VMM_CPU" is the prefix that puts another VMM there
# (images/nested/init.sh says why). Its output is printed and its exit
# status is linux_guest_run's.

_lg_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
. "$_lg_root/tests/lib/nested.sh"

# Prints cvmm --check-host's verdict line; returns its exit status.
linux_guest_host_verdict() {
    local out rc
    out=$(timeout 30 "${BUILD:?BUILD is not set}/cvmm" --check-host 2>&1)
    rc=$?
    printf '%s\n' "$out" | tail -n 1
    return $rc
}

# Sets LINUX_GUEST_MODE and LINUX_GUEST_WHY (one line saying why). Returns 1
# when Linux can run neither way here, 2 when cvmm --check-host gave no
# verdict (LINUX_GUEST_WHY then says what happened).
linux_guest_mode() {
    local v rc why
    if [ -n "${LINUX_GUEST_MODE:-}" ]; then
        LINUX_GUEST_WHY="LINUX_GUEST_MODE=$LINUX_GUEST_MODE set in the environment"
        return 0
    fi
    v=$(linux_guest_host_verdict)
    rc=$?
    case "$rc:$v" in
        "0:cvmm: host KVM can run Linux guests")
            LINUX_GUEST_MODE=direct
            LINUX_GUEST_WHY="host KVM can run Linux guests"
            return 0;;
        "1:cvmm: host KVM cannot run Linux guests: "*|"2:cvmm: cannot check host KVM: "*) ;;
        *)  LINUX_GUEST_WHY="cvmm --check-host gave no verdict (exit $rc): $v"
            return 2;;
    esac
    if why=$(nested_unavailable); then
        LINUX_GUEST_WHY="${v#cvmm: }, and no nested machine: $why"
        return 1
    fi
    LINUX_GUEST_MODE=nested
    LINUX_GUEST_WHY="${v#cvmm: }; so cvmm runs inside qemu-system-x86_64 -accel tcg -cpu max (nested SVM)"
}

# Builds what the mode needs: Debian's kernel (images/linux) and, nested,
# the outer machine's image (images/nested).
linux_guest_prepare() {
    timeout 900 "$_lg_root/images/linux/build.sh" "$BUILD/linux" >/dev/null || return 1
    [ "$LINUX_GUEST_MODE" = direct ] || timeout 900 "$_lg_root/images/nested/build.sh" "$BUILD" || return 1
}

linux_guest_mode_or_skip() {
    linux_guest_mode
    case $? in
        0) echo "linux-guest: $LINUX_GUEST_MODE ($LINUX_GUEST_WHY)";;
        1) echo "SKIP: $LINUX_GUEST_WHY"; exit 77;;
        *) echo "FAIL: $LINUX_GUEST_WHY"; exit 1;;
    esac
    linux_guest_prepare || { echo "FAIL: cannot build the guest images"; exit 1; }
}

# linux_guest_test NAME: how a test that boots Linux starts: the mode (or
# SKIP/FAIL as linux_guest_mode_or_skip), then its scratch directory $tmp
# (/tmp/cvmm-NAME.XXXXXX), removed when the test exits.
linux_guest_test() {
    linux_guest_mode_or_skip
    tmp=$(mktemp -d "/tmp/cvmm-$1.XXXXXX")
    trap 'rm -rf "$tmp"' EXIT
}

# linux_guest_blkload_initrd OUT: after linux_guest_test, the nested
# measuring tools' guest: an initramfs with bench/guest/blkload as /blkload
# whose script waits for /dev/vda and then runs the lines read from stdin.
linux_guest_blkload_initrd() {
    gcc -static -O2 -o "$tmp/blkload" "$_lg_root/bench/guest/blkload.c" -lpthread || return 1
    {
        printf '#!/bin/sh\ni=0\n'
        printf 'while [ ! -b /dev/vda ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done\n'
        cat
    } >"$tmp/guest.sh"
    LINUX_DIR=$BUILD/linux "$_lg_root/images/linux/mkinitrd.sh" "$1" "$tmp/guest.sh" \
        "$tmp/blkload:/blkload" >/dev/null
}

# linux_guest_blkload_tool NAME: how the nested measuring tools
# (tests/nested-blk-*.sh) start: nested whatever the host's KVM can do, the
# temporary directory $tmp of linux_guest_test, and $tmp/initrd.gz, the
# blkload guest running the lines read from stdin.
linux_guest_blkload_tool() {
    LINUX_GUEST_MODE=nested
    linux_guest_test "$1"
    linux_guest_blkload_initrd "$tmp/initrd.gz"
}

# linux_guest_loop_head RUNS [disk]: the first lines of a nested measuring
# tool's loop script: runs=RUNS, QEMU (the shipped QEMU on the VMMs' CPU,
# see inproc_run.sh), append (a quiet guest command line) and, with disk, a
# 256 MiB disk.img of random bytes.
linux_guest_loop_head() {
    printf '#!/bin/sh\nruns=%s\n' "$1"
    cat <<'HEAD'
QEMU="${VMM_CPU:-} qemu/ld.so --library-path qemu/lib qemu/qemu-system-x86_64 -L qemu/share"
append="console=ttyS0 panic=-1 reboot=k quiet"
HEAD
    [ "${2:-}" = disk ] && echo 'dd if=/dev/urandom of=disk.img bs=1M count=256 2>/dev/null'
    return 0
}

# linux_guest_blkload_run NAME PREFIX SECONDS [qemu]: after
# linux_guest_blkload_tool, runs $tmp/loop.sh once in the nested machine (a
# measuring loop wants the one attempt, the outer machine's failures
# included, not linux_guest_run's reruns) for at most SECONDS, with QEMU
# shipped when asked, and prints the lines that start with PREFIX.
linux_guest_blkload_run() {
    local files=("$tmp/initrd.gz") qf
    if [ "${4:-}" = qemu ]; then
        qf=$(nested_qemu_files) || { echo "cannot ship QEMU into the nested machine"; return 1; }
        mapfile -t -O 1 files <<<"$qf"
    fi
    NESTED_MEM_MIB=4096 NESTED_TIMEOUT=$3 nested_run "$1" "$tmp/loop.sh" "${files[@]}" | grep -a "^$2"
}

# linux_guest_bench NAME: how a benchmark that boots Linux starts: the mode
# said (or "not measured on this host" and why, exit 0), the guest images
# built, and nested, that only the ratios mean something.
linux_guest_bench() {
    linux_guest_mode
    case $? in
        0) echo "$1: $LINUX_GUEST_MODE: $LINUX_GUEST_WHY";;
        *) echo "$1: not measured on this host: $LINUX_GUEST_WHY"; exit 0;;
    esac
    linux_guest_prepare || { echo "$1: cannot build the guest images"; exit 1; }
    [ "$LINUX_GUEST_MODE" = nested ] &&
        echo "$1: NESTED (QEMU/TCG outer machine): absolute figures mean nothing here, compare the ratios only"
}

# linux_guest_run NAME SCRIPT [SRC[:DEST]]...   (env: NESTED_MEM_MIB, NESTED_TIMEOUT)
linux_guest_run() {
    local name=$1 script=$2
    shift 2
    if [ "$LINUX_GUEST_MODE" = nested ]; then
        local nrc attempt why
        for attempt in 1 2 3 4 5; do
            nested_run "$name" "$script" "$@"
            nrc=$?
            [ $nrc -eq 0 ] && break
            why=$(nested_emulator_failure "$name" $nrc) || break
            [ $attempt -eq 5 ] && { echo "linux-guest: $why, in all 5 runs: giving up"; break; }
            # Not cvmm's defect (docs/x86-machine.md, "The nested machine's
            # own failures"): the run again, said aloud, each console kept.
            mv "$BUILD/nested/$name.log" "$BUILD/nested/$name.$attempt.log"
            mv "$BUILD/nested/$name.qemu.log" "$BUILD/nested/$name.$attempt.qemu.log"
            echo "linux-guest: $why; running $name again (console: $BUILD/nested/$name.$attempt.log)"
        done
        return $nrc
    fi
    local dir ns rc spec src dest
    dir=$(mktemp -d "/tmp/cvmm-$name.XXXXXX")
    mkdir -p "$dir/bin" "$dir/files"
    /bin/busybox --install -s "$dir/bin"
    for spec in "$@"; do
        src=${spec%%:*}
        dest=$(basename "$src")
        [ "$spec" != "$src" ] && dest=${spec#*:}
        mkdir -p "$dir/files/$(dirname "$dest")"
        cp -a "$src" "$dir/files/$dest"
    done
    cp "$script" "$dir/test.sh"
    ns=cvmm-$name-$$
    if ! { ip netns add "$ns" && ip netns exec "$ns" ip link set lo up; }; then
        echo "linux-guest: cannot create network namespace $ns (run as root)"
        rm -rf "$dir"
        return 1
    fi
    (cd "$dir/files" && PATH="$dir/bin:$PATH" CVMM=$BUILD/cvmm GUEST_KERNEL=$BUILD/linux/vmlinuz \
        FILES=$dir/files timeout "${NESTED_TIMEOUT:-900}" ip netns exec "$ns" /bin/busybox sh "$dir/test.sh")
    rc=$?
    ip netns del "$ns"
    rm -rf "$dir"
    return $rc
}

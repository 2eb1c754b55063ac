#!/usr/bin/env bash
# Guest RAM as the host maps it (docs/x86-machine.md, "Guest RAM and huge
# pages"): with a guest running, cvmm's RAM mapping in /proc/PID/smaps is
# 2 MiB-aligned and advised for transparent huge pages (VmFlags "hg");
# private by default (anonymous), shared with shared=on (the memfd that
# back-ends map, VmFlags "sh", sealed against shrinking and growing).
# Where the host's THP mode lets advice count and the guest touched RAM,
# AnonHugePages shows it was honoured. RAM is allocated as the guest
# touches it (the guest writes 64 MiB of 256), all of it before the guest
# starts with prefault=on (and then vCPU 0's pass, arch/x86/prefault.c, has
# run and said so).
set -u
: "${BUILD:?BUILD must be set}"
CVMM=${CVMM:-$BUILD/cvmm}
[ -x "$CVMM" ] || { echo "FAIL: $CVMM not built"; exit 1; }
[ -r /dev/kvm ] && [ -w /dev/kvm ] || { echo "SKIP: no usable /dev/kvm"; exit 77; }
tmp=$(mktemp -d /tmp/cvmm-ram.XXXXXX)
pid=
cleanup() { [ -n "$pid" ] && { kill -KILL "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; }; rm -rf "$tmp"; }
trap cleanup EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# A guest that writes one byte every 4 KiB of its first 64 MiB, then spins.
cat >"$tmp/touch.S" <<'ASM'
	.code64
	.globl _start
_start:
	movq $0x1000000, %rax
1:	movb $1, (%rax)
	addq $4096, %rax
	cmpq $0x5000000, %rax
	jb 1b
2:	pause
	jmp 2b
ASM
gcc -c "$tmp/touch.S" -o "$tmp/touch.o" &&
    ld -nostdlib -static -Ttext-segment=0x100000 -e _start -o "$tmp/touch.elf" "$tmp/touch.o" ||
    { echo "FAIL: cannot build the guest"; exit 1; }

# ram_vma PID SIZE_KB: prints the smaps block of the mapping of that size.
ram_vma() {
    awk -v kb="$2" '
        /^[0-9a-f]+-[0-9a-f]+ / { if (blk != "" && size == kb) { printf "%s", blk; found = 1; exit }
                                  blk = $0 "\n"; size = 0; next }
        { blk = blk $0 "\n" }
        $1 == "Size:" { size = $2 }
        END { if (!found && size == kb) printf "%s", blk }' "/proc/$1/smaps"
}

# sealed WHAT: the running cvmm's RAM memfd, which vhost-user back-ends are
# handed, refuses to shrink or grow (truncating it would fault the guest).
sealed() {
    local fd
    fd=$(ls -l "/proc/$pid/fd" | awk '/memfd:cvmm-ram/ { print $9; exit }')
    [ -n "$fd" ] || { fail "$1: no cvmm-ram memfd among cvmm's fds"; return; }
    if truncate -s 4M "/proc/$pid/fd/$fd" 2>/dev/null; then
        fail "$1: another process holding the RAM fd could shrink guest RAM"
    elif truncate -s 512M "/proc/$pid/fd/$fd" 2>/dev/null; then
        fail "$1: another process holding the RAM fd could grow guest RAM"
    else
        echo "ok: $1: the RAM memfd is sealed against shrinking and growing"
    fi
}

check() {
    local what=$1 memopt=$2 vma start flags ahp i
    "$CVMM" --kernel "$tmp/touch.elf" --serial null --memory "$memopt" -v --log-file "$tmp/$what.log" \
        2>"$tmp/$what.err" &
    pid=$!
    for i in $(seq 200); do grep -q "first KVM_RUN" "$tmp/$what.log" 2>/dev/null && break; sleep 0.1; done
    sleep 1
    vma=$(ram_vma "$pid" $((256 * 1024)))
    case $what in *shared) sealed "$what";; esac
    kill -KILL "$pid"; wait "$pid" 2>/dev/null; pid=
    [ -n "$vma" ] || { fail "$what: no 256 MiB mapping in smaps"; return; }
    start=$(echo "$vma" | head -n 1 | cut -d- -f1)
    flags=$(echo "$vma" | awk '$1 == "VmFlags:" { $1 = ""; print }')
    [ $((0x$start % (2 * 1024 * 1024))) = 0 ] && echo "ok: $what: RAM at 0x$start, 2 MiB-aligned" ||
        fail "$what: RAM at 0x$start is not 2 MiB-aligned"
    [[ " $flags " == *" hg "* ]] && echo "ok: $what: RAM advised MADV_HUGEPAGE (VmFlags$flags)" ||
        fail "$what: RAM not advised MADV_HUGEPAGE (VmFlags$flags)"
    case $what in
        private) [[ " $flags " != *" sh "* ]] && echo "$vma" | head -n 1 | grep -qv memfd &&
                     echo "ok: private: anonymous, not shared" || fail "private: RAM is shared or a memfd";;
        shared) [[ " $flags " == *" sh "* ]] && echo "$vma" | head -n 1 | grep -q "memfd:cvmm-ram" &&
                    echo "ok: shared: the cvmm-ram memfd, MAP_SHARED" || fail "shared: RAM is not the shared memfd";;
    esac
    ahp=$(echo "$vma" | awk '$1 == ("'"$3"'" ":") { print $2 }')
    rss=$(echo "$vma" | awk '$1 == "Rss:" { print $2 }')
    echo "    $what: $3 $ahp kB, Rss $rss kB"
    eval "${what}_huge=$ahp ${what}_rss=$rss"
}

# allocated WHAT: checks RAM is allocated before the guest touches it
allocated() {
    local rss
    eval "rss=\${${1}_rss:-0}"
    [ "$rss" -ge $((256 * 1024)) ] && echo "ok: $1: all 256 MiB allocated before the guest ran (Rss $rss kB)" ||
        fail "$1: prefault=on, but only $rss kB of 256 MiB allocated"
    grep -q "prefault: 256 MiB of guest RAM mapped for the guest in" "$tmp/$1.log" &&
        echo "ok: $1: vCPU 0's prefault pass ran" || fail "$1: no prefault pass in the log"
}

check private size=256M AnonHugePages
check shared size=256M,shared=on ShmemPmdMapped
check prefault size=256M,prefault=on AnonHugePages
check prefault_shared size=256M,shared=on,prefault=on ShmemPmdMapped
[ "${private_rss:-0}" -lt $((200 * 1024)) ] && echo "ok: private: RAM allocated as the guest touches it (Rss $private_rss kB)" ||
    fail "private: ${private_rss:-?} kB allocated for a guest that wrote 64 MiB"
allocated prefault
allocated prefault_shared
thp=$(sed -n 's/.*\[\(.*\)\].*/\1/p' /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null)
if [ "$thp" = always ] || [ "$thp" = madvise ]; then
    [ "${private_huge:-0}" -gt 0 ] && echo "ok: private: the guest's writes got huge pages (THP $thp)" ||
        fail "private: THP is '$thp' here but the touched RAM has no huge page"
else
    echo "note: THP is '${thp:-absent}' here: huge pages not expected"
fi
[ $fails -eq 0 ] || { echo "FAIL: $fails check(s)"; exit 1; }
echo PASS

#!/usr/bin/env bash
# Boots the freestanding test guest (images/testguest) under cvmm with
# several CPU counts and memory sizes; the guest checks serial, e820, ACPI,
# the MP table and SMP start-up from inside against tg.cpus/tg.mem and
# reports "TG: PASS" before it resets (or powers off through ACPI), so cvmm
# must exit 0. Output goes to
# stdout and, in one run, to --serial file=PATH. A run whose command line
# expects a different CPU count than cvmm gives must make the guest fail.
# With --on-reboot restart the guest's reset boots it again (three boots).
set -u
: "${BUILD:?BUILD is not set}"
cvmm=$BUILD/cvmm
guest=$BUILD/testguest/testguest.elf
[ -x "$cvmm" ] && [ -f "$guest" ] || { echo "FAIL: build cvmm and the test guest first (make all)"; exit 1; }
tmp=$(mktemp -d /tmp/cvmm-boot-tg.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
failed=0

# boot NAME CPUS MEM SERIAL(stdout|file) [CMDLINE]; leaves the guest's output
# in $tmp/NAME.out (with file: the serial file, and cvmm's stdout must hold
# none of it).
boot() {
    local name=$1 cpus=$2 mem=$3 serial=$4 cmdline=${5:-"tg.cpus=$2 tg.mem=$3"}
    local out=$tmp/$name.out args=() rc
    [ -n "${extra:-}" ] && args+=("$extra")
    [ "$serial" = file ] && { args+=(--serial "file=$out"); out=$tmp/$name.stdout; }
    timeout 60 "$cvmm" --kernel "$guest" --cpus "boot=$cpus" --memory "size=$mem" \
        --cmdline "$cmdline" "${args[@]}" >"$out" 2>"$tmp/$name.err" </dev/null
    rc=$?
    if [ "$serial" = file ]; then
        if grep -q 'TG:' "$out"; then
            echo "FAIL $name: guest output on stdout despite --serial file="; rc=99
        fi
        out=$tmp/$name.out
        [ -f "$out" ] || : >"$out"
    fi
    echo "--- $name: cpus=$cpus mem=$mem serial=$serial exit=$rc"
    tr -d '\r' <"$out" | grep '^TG:' | sed 's/^/    /'
    sed 's/^/    stderr: /' "$tmp/$name.err" | tail -n 5
    return $rc
}

expect_pass() {   # NAME CPUS MEM SERIAL [CMDLINE]
    local name=$1 cpus=$2 out
    boot "$@"; local rc=$?
    out=$(tr -d '\r' <"$tmp/$name.out")
    if [ $rc -ne 0 ]; then echo "FAIL $name: cvmm exited $rc"; failed=1; return; fi
    if ! grep -qx "TG: PASS [0-9]* checks" <<<"$out" || grep -q '^TG: FAIL' <<<"$out"; then
        echo "FAIL $name: the guest did not report PASS"; failed=1; return
    fi
    if ! grep -q "^TG: smp cpus=$cpus .*ok$" <<<"$out" && ! grep -q "^TG: smp cpus=$cpus (no APs to start) ok$" <<<"$out"; then
        echo "FAIL $name: no 'TG: smp cpus=$cpus ... ok' line"; failed=1; return
    fi
    echo "ok $name"
}

expect_pass cpu1-128M 1 128M stdout
expect_pass cpu2-256M 2 256M file
expect_pass cpu2-1G 2 1G stdout
expect_pass cpu4-64M 4 64M stdout
# RAM above the [3 GiB, 4 GiB) hole: a second e820 range.
expect_pass cpu2-4G 2 4G stdout

# The guest's boot-timer marker reaches cvmm's boot timer (docs/boot-timer.md).
extra=-v expect_pass timer 1 64M stdout
if ! grep -q 'boot-timer: guest booted [0-9.]* ms after start' "$tmp/timer.err"; then
    echo "FAIL timer: cvmm -v logged no boot-timer line for the guest's marker"; failed=1
fi

# The guest powers off through the ACPI sleep control the FADT/DSDT describe
# (it halts if that does not end the VM, so a failure shows as a timeout).
expect_pass poweroff 2 64M stdout "tg.cpus=2 tg.mem=64M tg.poweroff"
grep -q '^TG: poweroff: S5 through port' "$tmp/poweroff.out" ||
    { echo "FAIL poweroff: the guest did not try ACPI S5"; failed=1; }

# The guest's checks are live: 2 CPUs given, 1 expected -> it must say FAIL.
boot mismatch 2 128M stdout "tg.cpus=1 tg.mem=128M"; rc=$?
out=$(tr -d '\r' <"$tmp/mismatch.out")
if [ $rc -ne 0 ] || ! grep -q '^TG: FAIL acpi' <<<"$out" || grep -q '^TG: PASS' <<<"$out"; then
    echo "FAIL mismatch: expected the guest to report the CPU count mismatch (exit $rc)"; failed=1
else
    echo "ok mismatch (the guest noticed)"
fi

# --on-reboot restart: the guest's reset (i8042) boots it again, with its
# APs started anew and its virtio devices reset, on both transports; three
# boots in a row each pass every check, then SIGTERM ends cvmm (143).
count() { local n=0; [ -f "$1" ] && n=$(tr -d '\r' <"$1" | grep -c "$2"); echo "$n"; }
for transport in pci mmio; do
    name=restart-$transport
    truncate -s 8M "$tmp/$name.img"
    "$cvmm" --kernel "$guest" --cpus boot=2 --memory size=128M --transport "$transport" \
        --disk "path=$tmp/$name.img" --rng --on-reboot restart --serial "file=$tmp/$name.out" -v \
        --cmdline "tg.cpus=2 tg.mem=128M tg.virtio=2 tg.seed=5" >/dev/null 2>"$tmp/$name.err" </dev/null &
    pid=$!
    for _ in $(seq 600); do
        [ "$(count "$tmp/$name.out" '^TG: PASS')" -ge 3 ] && break
        kill -0 $pid 2>/dev/null || break
        sleep 0.1
    done
    kill -TERM $pid 2>/dev/null; wait $pid; rc=$?
    passes=$(count "$tmp/$name.out" '^TG: PASS')
    smp=$(count "$tmp/$name.out" '^TG: smp cpus=2 .*ok$')
    blk=$(count "$tmp/$name.out" "^TG: virtio-blk $transport .* ok$")
    restarts=$(grep -c 'restarting the guest (--on-reboot restart)' "$tmp/$name.err")
    echo "--- $name: exit=$rc boots passed=$passes smp-ok=$smp blk-ok=$blk restarts=$restarts"
    if [ $rc -ne 143 ] || [ "$passes" -lt 3 ] || [ "$smp" -lt 3 ] || [ "$blk" -lt 3 ] || [ "$restarts" -lt 2 ] ||
        tr -d '\r' <"$tmp/$name.out" | grep -q '^TG: FAIL'; then
        echo "FAIL $name: expected 3 passing boots and exit 143 after SIGTERM"
        tr -d '\r' <"$tmp/$name.out" | grep '^TG: FAIL' | head -n 3 | sed 's/^/    /'
        tail -n 5 "$tmp/$name.err" | sed 's/^/    stderr: /'
        failed=1
    else
        echo "ok $name"
    fi
done

[ $failed -eq 0 ] && echo "boot_testguest: all ok"
exit $failed

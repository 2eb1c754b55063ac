# shellcheck shell=sh
# What the host sides of the Linux-guest tests (tests/integration/host/*_run.sh,
# busybox sh) share: one PASS/FAIL line per property, counted in $fails, and
# waiting on cvmm's serial output. The test's caller ships this file with the
# script (linux_guest_run ... "$here/host/run_lib.sh"); the script sources it
# from "$FILES".
fails=0
ok() { echo "PASS $1"; }
no() { echo "FAIL $1"; fails=$((fails + 1)); }
# check NAME COMMAND...: one line for one property (COMMAND is a single command).
check() { name=$1; shift; if "$@"; then ok "$name"; else no "$name"; fi; }
has() { tr -d '\r' <"$1" | grep -q "$2"; }
lacks() { ! has "$@"; }
md5() { md5sum | cut -d' ' -f1; }
# wait_for FILE REGEX SECS: until FILE has a line matching REGEX; gives up
# after SECS or when cvmm ($pid) has ended.
wait_for() {
    i=0
    while ! has "$1" "$2" 2>/dev/null; do
        i=$((i + 1)); [ $i -gt $(($3 * 5)) ] && return 1
        # shellcheck disable=SC2154 # pid: set by the sourcing script
        kill -0 "$pid" 2>/dev/null || { has "$1" "$2" 2>/dev/null; return; }
        sleep 0.2
    done
}

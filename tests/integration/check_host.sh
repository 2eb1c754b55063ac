#!/usr/bin/env bash
# `cvmm --check-host` prints exactly one verdict line in one of its three
# forms, with the exit status that goes with it, and the same answer twice.
# Without /dev/kvm (a private mount namespace hides it, when we may make
# one) it says it cannot check, with status 2.
set -u
: "${BUILD:?BUILD is not set}"
cvmm=$BUILD/cvmm
fail() { echo "FAIL: $*"; exit 1; }

check_form() {   # rc line
    case "$1:$2" in
        "0:cvmm: host KVM can run Linux guests") ;;
        "1:cvmm: host KVM cannot run Linux guests: "?*) ;;
        "2:cvmm: cannot check host KVM: "?*) ;;
        *) fail "exit status $1 does not go with verdict '$2'";;
    esac
}

out=$(timeout 30 "$cvmm" --check-host 2>/dev/null); rc=$?
echo "verdict (exit $rc): $out"
[ "$(printf '%s\n' "$out" | wc -l)" -eq 1 ] || fail "expected one line on stdout, got: $out"
check_form "$rc" "$out"

out2=$(timeout 30 "$cvmm" --check-host 2>/dev/null); rc2=$?
[ "$rc2" = "$rc" ] && [ "$out2" = "$out" ] || fail "second run differs (exit $rc2): $out2"

if [ "$(id -u)" -eq 0 ] && command -v unshare >/dev/null &&
   unshare -m true 2>/dev/null; then
    out3=$(timeout 30 unshare -m sh -c 'mount -t tmpfs none /dev && exec "$1" --check-host' sh "$cvmm" 2>/dev/null)
    rc3=$?
    echo "without /dev/kvm (exit $rc3): $out3"
    [ "$rc3" -eq 2 ] || fail "without /dev/kvm: exit $rc3, expected 2"
    check_form "$rc3" "$out3"
    case "$out3" in *"/dev/kvm"*) ;; *) fail "without /dev/kvm the reason does not name /dev/kvm";; esac
else
    echo "not checking the no-/dev/kvm case: needs root and unshare -m"
fi
echo "check_host: ok"

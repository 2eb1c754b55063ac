# shellcheck shell=bash
# Sourced by tests that boot Linux under cvmm:
#   . "$(dirname "$0")/../lib/linux-capable.sh"; linux_capable_or_skip
# Runs `$BUILD/cvmm --check-host`. Where the host's KVM cannot run Linux (or
# cannot be checked) the calling test prints "SKIP: <verdict>" and exits 77;
# an answer that is none of the three verdict forms fails the test (exit 1).

# Prints the verdict line; returns cvmm's exit status.
linux_capable_verdict() {
    local out rc
    out=$(timeout 30 "${BUILD:?BUILD is not set}/cvmm" --check-host 2>&1)
    rc=$?
    printf '%s\n' "$out" | tail -n 1
    return $rc
}

linux_capable_or_skip() {
    local v rc
    v=$(linux_capable_verdict)
    rc=$?
    case "$rc:$v" in
        "0:cvmm: host KVM can run Linux guests") return 0;;
        "1:cvmm: host KVM cannot run Linux guests: "*|"2:cvmm: cannot check host KVM: "*)
            echo "SKIP: ${v#cvmm: }"
            exit 77;;
    esac
    echo "FAIL: cvmm --check-host gave no verdict (exit $rc): $v"
    exit 1
}

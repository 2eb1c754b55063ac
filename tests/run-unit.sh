#!/usr/bin/env bash
# Runs the Check unit-test binaries given as arguments and prints one closing
# line: "unit: N passed, N failed" (suites counted by binary). UNIT_RUNNER,
# when set, is a command each binary runs under (e.g. qemu-aarch64 for
# cross-built ones).
set -u
pass=0; fail=0
for t in "$@"; do
    if CK_DEFAULT_TIMEOUT=${CK_DEFAULT_TIMEOUT:-30} ${UNIT_RUNNER:-} "$t"; then
        pass=$((pass + 1))
    else
        echo "FAILED: $t"
        fail=$((fail + 1))
    fi
done
echo "unit: $pass passed, $fail failed"
[ "$fail" -eq 0 ]

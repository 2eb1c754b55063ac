#!/usr/bin/env python3
"""Plays the host end of the test guest's virtio-console check.

Runs cvmm with --console tty on pipes: waits for the guest's
"cvmm-guest seed=N" line on cvmm's stdout, answers "cvmm-host seed=N" on its
stdin, and exits 0 when that happened and cvmm exited 0.

usage: console_peer.py SEED CVMM-ARGS...
"""
import os
import select
import subprocess
import sys
import time

seed = int(sys.argv[1])
proc = subprocess.Popen(sys.argv[2:], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
want = b'cvmm-guest seed=%d\n' % seed
got = b''
deadline = time.time() + 30
while want not in got and time.time() < deadline:
    ready, _, _ = select.select([proc.stdout], [], [], 1)
    if ready:
        chunk = os.read(proc.stdout.fileno(), 4096)
        if not chunk:
            break
        got += chunk
if want in got:
    proc.stdin.write(b'cvmm-host seed=%d\n' % seed)
    proc.stdin.flush()
try:
    rc = proc.wait(timeout=30)
except subprocess.TimeoutExpired:
    proc.kill()
    rc = proc.wait()
print('console peer: guest wrote %r, cvmm exited %d' % (got, rc))
sys.exit(0 if want in got and rc == 0 else 1)

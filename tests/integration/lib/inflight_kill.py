#!/usr/bin/env python3
"""Kills a vhost-user back-end with SIGKILL at a moment it has requests in
flight, as its inflight region (vhost-user.rst "Inflight I/O tracking",
split layout) shows them, so a restart test never depends on a sleep landing
at the right time.

The region is the memfd the back-end created ("cvmm-vu-inflight"); it is
found through /proc/PID/map_files (the back-end may have closed the fd after
mapping it). When the region shows a request in flight, the back-end is
stopped (SIGSTOP, every thread) and the region read again: only what a
stopped process holds in flight is certain to still be in flight when
SIGKILL lands; otherwise it is let go on (SIGCONT) and watched again. Each queue is a 16-byte header (features u64, version u16,
desc_num u16, last_batch_head u16, used_idx u16) then desc_num 16-byte
descriptors whose first byte is the inflight flag.

usage: inflight_kill.py PID TIMEOUT_SECONDS
Prints "inflight-kill: N requests in flight, killed PID" and exits 0, or
says why not and exits 1 (timeout, no region, process gone).
"""
import os
import signal
import struct
import sys
import time

pid, timeout = int(sys.argv[1]), float(sys.argv[2])
deadline = time.time() + timeout


def region_path():
    d = f"/proc/{pid}/map_files"
    for name in os.listdir(d):
        try:
            if "cvmm-vu-inflight" in os.readlink(os.path.join(d, name)):
                return os.path.join(d, name)
        except OSError:
            pass
    return None


def in_flight(data):
    n, off = 0, 0
    while off + 16 <= len(data):
        desc_num = struct.unpack_from("<H", data, off + 10)[0]
        if desc_num == 0:
            break
        for i in range(desc_num):
            d = off + 16 + 16 * i
            if d < len(data) and data[d] == 1:
                n += 1
        off += 16 + 16 * desc_num
    return n


def all_stopped():
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        if state not in ("T", "t"):
            return False
    return True


def stop_and_count(path):
    os.kill(pid, signal.SIGSTOP)
    until = time.time() + 2
    while not all_stopped():
        if time.time() > until:
            os.kill(pid, signal.SIGCONT)
            return 0
        time.sleep(0.001)
    with open(path, "rb") as f:
        n = in_flight(f.read())
    if not n:
        os.kill(pid, signal.SIGCONT)
    return n


path = None
while time.time() < deadline:
    try:
        if path is None:
            path = region_path()
        if path is not None:
            with open(path, "rb") as f:
                n = in_flight(f.read())
            if n:
                n = stop_and_count(path)
            if n:
                os.kill(pid, signal.SIGKILL)
                print(f"inflight-kill: {n} requests in flight, killed {pid}")
                sys.exit(0)
    except FileNotFoundError:
        print(f"inflight-kill: process {pid} is gone")
        sys.exit(1)
    except OSError:
        path = None
    time.sleep(0.005)
print(f"inflight-kill: no request seen in flight in {timeout:.0f} s"
      + ("" if path else " (no inflight region mapped)"))
sys.exit(1)

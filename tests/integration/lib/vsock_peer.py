#!/usr/bin/env python3
"""Plays the host end of the test guest's virtio-vsock check
(images/testguest/vio_vsock.c) through cvmm's hybrid-vsock socket PATH.

Listens on PATH_5000, runs cvmm, then:
  1. connects to guest port 1234 ("CONNECT 1234"), sends 4 KiB made from
     SEED, half-closes, and reads the echo back until EOF;
  2. accepts the guest's connection on PATH_5000, reads
     "cvmm-guest seed=N\\n" and answers "cvmm-host seed=N\\n";
  3. connects to guest port 1235, says something, and waits for the
     connection to close (the guest resets the device under it);
  4. connects to guest port 1234 again (PATH must still serve) and checks
     a 512-byte echo.
Prints one "vsock peer: ..." line per step with the FNV-1a hash of what was
echoed (the test compares it with the guest's) and exits 0 when every step
worked and cvmm exited 0.

usage: vsock_peer.py PATH SEED CVMM-ARGS...
"""
import os
import random
import socket
import subprocess
import sys
import time

path, seed = sys.argv[1], int(sys.argv[2])
DEADLINE = time.time() + 90


def fnv(data):
    h = 2166136261
    for b in data:
        h = ((h ^ b) * 16777619) & 0xffffffff
    return h


def remaining():
    return max(0.1, DEADLINE - time.time())


def read_line(s):
    """Reads up to and including a newline, one byte at a time so that
    nothing after it is taken; b'' on EOF first."""
    line = b''
    while not line.endswith(b'\n'):
        b = s.recv(1)
        if not b:
            return b''
        line += b
    return line


def connect(port):
    """Connects to guest port through PATH; retries while the guest is not
    there yet (cvmm not started, or the connection closed without OK)."""
    while time.time() < DEADLINE:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(remaining())
        try:
            s.connect(path)
            s.sendall(b'CONNECT %d\n' % port)
            line = read_line(s)
            if line.startswith(b'OK ') and line[3:-1].isdigit():
                return s
        except (FileNotFoundError, ConnectionRefusedError, ConnectionResetError, BrokenPipeError):
            pass
        s.close()
        time.sleep(0.05)
    raise TimeoutError('guest port %d never accepted' % port)


def read_all(s):
    out = b''
    while True:
        try:
            b = s.recv(65536)
        except ConnectionResetError:
            return out, 'reset'
        if not b:
            return out, 'eof'
        out += b


def echo(port, data):
    s = connect(port)
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
    got, _ = read_all(s)
    s.close()
    return got


listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
listener.bind(path + '_5000')
listener.listen(4)
proc = subprocess.Popen(sys.argv[3:])
ok = True
try:
    rng = random.Random(seed)
    data = bytes(rng.getrandbits(8) for _ in range(4096))
    got = echo(1234, data)
    good = got == data
    ok &= good
    print('vsock peer: echo bytes=%d fnv=%x %s' % (len(got), fnv(got), 'intact' if good else 'DIFFERS'))

    listener.settimeout(remaining())
    g, _ = listener.accept()
    g.settimeout(remaining())
    line = read_line(g)
    good = line == b'cvmm-guest seed=%d\n' % seed
    if good:
        g.sendall(b'cvmm-host seed=%d\n' % seed)
    rest, how = read_all(g)
    g.close()
    good &= rest == b''
    ok &= good
    print('vsock peer: guest connection said %r, then %s %s' % (line, how, 'ok' if good else 'WRONG'))

    s = connect(1235)
    s.sendall(b'reset-me')
    rest, how = read_all(s)
    s.close()
    print('vsock peer: connection to port 1235 ended by the reset (%s)' % how)

    data = bytes(rng.getrandbits(8) for _ in range(512))
    got = echo(1234, data)
    good = got == data
    ok &= good
    print('vsock peer: after reset echo bytes=%d fnv=%x %s' % (len(got), fnv(got), 'intact' if good else 'DIFFERS'))
except (OSError, TimeoutError) as e:
    print('vsock peer: %s' % e)
    ok = False
try:
    rc = proc.wait(timeout=remaining() + 30)
except subprocess.TimeoutExpired:
    proc.kill()
    rc = proc.wait()
listener.close()
os.unlink(path + '_5000')
print('vsock peer: cvmm exited %d' % rc)
sys.exit(0 if ok and rc == 0 else 1)

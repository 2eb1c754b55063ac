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
With --backend LOG CMD (a vhost-user back-end, e.g. `cvmm -v
--vsock-backend ...,uds_path=PATH`, which this script starts first, its
stderr appended to LOG, and the guest runs with tg.vsockrestart), then:
  5. connects to guest port 1236 and waits for the echo of what it says;
  6. kills the back-end with SIGKILL (the connection must end), starts it
     again and waits until it serves;
  7. echoes 512 bytes through guest port 1234 and takes the guest's new
     connection to PATH_5000, as in 1. and 2.
Prints one "vsock peer: ..." line per step with the FNV-1a hash of what was
echoed (the test compares it with the guest's) and exits 0 when every step
worked and cvmm exited 0.

usage: vsock_peer.py [--backend LOG CMD] PATH SEED CVMM-ARGS...
"""
import os
import random
import shlex
import signal
import socket
import subprocess
import sys
import time

args = sys.argv[1:]
backend_log = backend_cmd = None
if args[0] == '--backend':
    backend_log, backend_cmd, args = args[1], shlex.split(args[2]), args[3:]
path, seed = args[0], int(args[1])
DEADLINE = time.time() + (150 if backend_cmd else 90)


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


def guest_connection(listener):
    """Takes the guest's connection to PATH_5000 and exchanges the lines."""
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
    return line, how, good


def start_backend():
    """Starts the back-end and waits for its line saying it serves."""
    with open(backend_log, 'a') as log:
        before = open(backend_log).read().count('vsock-backend: guest cid')
        be = subprocess.Popen(backend_cmd, stdout=subprocess.DEVNULL, stderr=log)
    while open(backend_log).read().count('vsock-backend: guest cid') == before:
        if be.poll() is not None or time.time() > DEADLINE:
            raise OSError('the back-end did not start (exit %s)' % be.poll())
        time.sleep(0.05)
    return be


backend = start_backend() if backend_cmd else None
listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
listener.bind(path + '_5000')
listener.listen(4)
proc = subprocess.Popen(args[2:])
ok = True
try:
    rng = random.Random(seed)
    data = bytes(rng.getrandbits(8) for _ in range(4096))
    got = echo(1234, data)
    good = got == data
    ok &= good
    print('vsock peer: echo bytes=%d fnv=%x %s' % (len(got), fnv(got), 'intact' if good else 'DIFFERS'))

    line, how, good = guest_connection(listener)
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

    if backend:
        s = connect(1236)
        s.sendall(b'kill-me')
        said = b''
        while len(said) < 7:
            b = s.recv(7 - len(said))
            if not b:
                break
            said += b
        good = said == b'kill-me'
        ok &= good
        backend.send_signal(signal.SIGKILL)
        backend.wait()
        rest, how = read_all(s)
        s.close()
        print('vsock peer: port 1236 echoed %r; back-end killed, the connection ended (%s)' % (said, how))
        backend = start_backend()
        print('vsock peer: back-end started again')
        data = bytes(rng.getrandbits(8) for _ in range(512))
        got = echo(1234, data)
        good = got == data
        ok &= good
        print('vsock peer: after restart echo bytes=%d fnv=%x %s' % (len(got), fnv(got),
                                                                    'intact' if good else 'DIFFERS'))
        line, how, good = guest_connection(listener)
        ok &= good
        print('vsock peer: after restart guest connection said %r, then %s %s' % (line, how,
                                                                                 'ok' if good else 'WRONG'))
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
if backend:
    backend.terminate()
    backend.wait()
print('vsock peer: cvmm exited %d' % rc)
sys.exit(0 if ok and rc == 0 else 1)

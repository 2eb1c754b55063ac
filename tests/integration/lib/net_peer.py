#!/usr/bin/env python3
"""Plays the host end of the test guest's virtio-net check, on the tap.

Starts cvmm (the arguments after TAP and SEED), waits for the tap to appear,
takes the guest's frame of EtherType 0x88b5 carrying "cvmm-guest seed=N"
with an AF_PACKET socket and answers to the guest's MAC with
"cvmm-host seed=N". Exits 0 when that happened and cvmm exited 0.

usage: net_peer.py TAP SEED CVMM-ARGS...   (run inside the test's namespace)
"""
import errno
import os
import socket
import subprocess
import sys
import time

ETHERTYPE = 0x88b5
IFF_UP = 0x1
tap, seed = sys.argv[1], int(sys.argv[2])
proc = subprocess.Popen(sys.argv[3:], stdin=subprocess.DEVNULL)


def tap_is_up():
    try:
        with open('/sys/class/net/%s/flags' % tap) as f:
            return int(f.read(), 16) & IFF_UP
    except OSError:
        return False


deadline = time.time() + 20
answered = False
guest_mac = b''
try:
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETHERTYPE))
    # Bind as soon as cvmm has created the tap. The tap shows in sysfs a
    # moment before it can be bound to (ENODEV until then).
    while True:
        try:
            s.bind((tap, 0))
            break
        except OSError as e:
            if e.errno != errno.ENODEV or time.time() >= deadline or proc.poll() is not None:
                raise
            time.sleep(0.005)
    s.settimeout(1)
    # cvmm sets the tap's MTU and address, then brings it up: once it is up,
    # they are final. Read them now, while the guest cannot have sent yet
    # (it runs only after the tap is set up) and the tap certainly exists;
    # the socket, bound already, keeps the guest's frame meanwhile.
    while not tap_is_up() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.005)
    with open('/sys/class/net/%s/mtu' % tap) as f:
        print('net peer: tap mtu %s' % f.read().strip())
    addr = subprocess.run(['ip', '-4', '-o', 'addr', 'show', 'dev', tap], capture_output=True, text=True)
    print('net peer: tap addr %s' % ' '.join(addr.stdout.split()[3:4]))
    want = b'cvmm-guest seed=%d' % seed
    while time.time() < deadline and proc.poll() is None:
        try:
            frame = s.recv(2048)
        except socket.timeout:
            continue
        except OSError as e:
            # Bound before cvmm brought the tap up: the kernel reports
            # ENETDOWN once, then delivers frames from the moment it is up.
            if e.errno == errno.ENETDOWN:
                continue
            raise
        if frame[14:14 + len(want)] != want:
            continue
        guest_mac = frame[6:12]
        reply = guest_mac + bytes.fromhex('0200000000fe') + ETHERTYPE.to_bytes(2, 'big')
        reply += b'cvmm-host seed=%d' % seed
        s.send(reply.ljust(60, b'\0'))
        answered = True
        break
except OSError as e:
    print('net peer: %s' % e)
try:
    rc = proc.wait(timeout=30)
except subprocess.TimeoutExpired:
    proc.kill()
    rc = proc.wait()
print('net peer: guest mac %s, answered %s, cvmm exited %d' % (guest_mac.hex(':'), answered, rc))
sys.exit(0 if answered and rc == 0 else 1)

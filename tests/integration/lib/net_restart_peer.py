#!/usr/bin/env python3
"""The host end of the test guest's virtio-net check when the vhost-user
back-end is replaced between the guest's frame and the answer.

Waits until TAP has received a frame (the guest's, which the back-end wrote
into the tap: its rx_packets counter), creates the file SEEN, waits for the
file RESTARTED (the test has killed the back-end and started a new one, which
made the tap anew), then sends the answer ("cvmm-host seed=N", EtherType
0x88b5, to MAC) on the new tap every 0.2 s until the file DONE appears or
20 s pass. Exits 0 when an answer was sent.

usage: net_restart_peer.py TAP SEED MAC SEEN RESTARTED DONE
"""
import errno
import os
import socket
import sys
import time

ETHERTYPE = 0x88b5
tap, seed, mac, seen, restarted, done = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], \
    sys.argv[6]


def rx_packets():
    try:
        with open('/sys/class/net/%s/statistics/rx_packets' % tap) as f:
            return int(f.read())
    except OSError:
        return 0


deadline = time.time() + 30
while rx_packets() < 1 and time.time() < deadline:
    time.sleep(0.01)
if rx_packets() < 1:
    print('net restart peer: the guest sent nothing')
    sys.exit(1)
print('net restart peer: the guest has sent')
open(seen, 'w').close()
while not os.path.exists(restarted) and time.time() < deadline:
    time.sleep(0.01)
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETHERTYPE))
while True:
    try:
        s.bind((tap, 0))
        break
    except OSError as e:
        if e.errno != errno.ENODEV or time.time() >= deadline:
            raise
        time.sleep(0.01)
reply = bytes.fromhex(mac.replace(':', '')) + bytes.fromhex('0200000000fe') + ETHERTYPE.to_bytes(2, 'big')
reply += b'cvmm-host seed=%d' % seed
sent = 0
end = time.time() + 20
# Again and again: the new tap may not be up yet, nor the rings restored.
while not os.path.exists(done) and time.time() < end:
    try:
        s.send(reply.ljust(60, b'\0'))
        sent += 1
    except OSError as e:
        if e.errno not in (errno.ENETDOWN, errno.ENXIO):
            raise
    time.sleep(0.2)
print('net restart peer: answered %d times' % sent)
sys.exit(0 if sent else 1)

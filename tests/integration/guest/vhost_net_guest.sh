#!/bin/sh
# /test.sh of the vhost-user-net test's initramfs (runs in the QEMU guest
# under /init, see images/linux/mkinitrd.sh). Addresses come from the kernel
# command line (cvmm_net=GUEST_IP,HOST_IP); lines for the host start with
# "CVMM-NET:".
arg=$(sed -n 's/.*cvmm_net=\([0-9.,]*\).*/\1/p' /proc/cmdline)
me=${arg%,*}
host=${arg#*,}
i=0
while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
if [ ! -e /sys/class/net/eth0 ]; then
    echo "CVMM-NET: no eth0"
    exit 1
fi
ip link set eth0 up
ip addr add "$me/24" dev eth0
echo "CVMM-NET: mac $(cat /sys/class/net/eth0/address) mtu $(cat /sys/class/net/eth0/mtu)"
echo "CVMM-NET: features $(cat /sys/class/net/eth0/device/features)"

ping -c 3 -W 10 "$host" >/tmp/ping 2>&1
echo "CVMM-NET: ping $(grep -o '[0-9]* packets received' /tmp/ping)"

# guest -> host: the host writes what it receives to a file until we
# close our side (nc half-closes at the end of its input).
dd if=/dev/urandom of=/tmp/data bs=1M count=4 2>/dev/null
echo "CVMM-NET: send md5=$(md5sum </tmp/data | cut -d' ' -f1)"
nc -w 10 "$host" 5000 </tmp/data
echo "CVMM-NET: send rc=$?"

# host -> guest: the host's httpd serves a file. (No -T: this busybox's
# wget fails with it.)
got=$(wget -q -O - "http://$host:8080/data" | md5sum | cut -d' ' -f1)
echo "CVMM-NET: recv md5=$got"

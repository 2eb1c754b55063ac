/*
 * Tap devices: the host side of virtio-net. Frames are read and written
 * with the virtio-net header in front (IFF_VNET_HDR), so offload metadata
 * passes between guest and host stack untouched.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if_arp.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tap.h"
#include "cvmm/virtio_net.h"

static void tap_reset(struct tap *t)
{
	memset(t, 0, sizeof(*t));
	for (unsigned i = 0; i < TAP_MAX_QUEUES; i++)
		t->fds[i] = -1;
}

int tap_open(struct tap *t, const char *name, unsigned nqueues, unsigned hdr_len)
{
	struct ifreq ifr;
	int hsz = (int)hdr_len, err;

	tap_reset(t);
	if (!name || !*name || strlen(name) >= IFNAMSIZ || nqueues < 1 || nqueues > TAP_MAX_QUEUES)
		return -EINVAL;
	snprintf(t->name, sizeof(t->name), "%s", name);
	for (unsigned i = 0; i < nqueues; i++) {
		int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);

		if (fd < 0) {
			err = -errno;
			goto fail;
		}
		t->fds[i] = fd;
		t->nqueues = i + 1;
		memset(&ifr, 0, sizeof(ifr));
		memcpy(ifr.ifr_name, t->name, sizeof(ifr.ifr_name));
		ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
		if (nqueues > 1)
			ifr.ifr_flags |= IFF_MULTI_QUEUE;
		if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
			/* EINVAL from TUNSETIFF: the tap exists with other flags
			 * (e.g. single-queue vs multi-queue). */
			err = errno == EINVAL ? -EEXIST : -errno;
			goto fail;
		}
		/* A name with %d was completed by the kernel: the other
		 * queues attach to the interface it created. */
		memcpy(t->name, ifr.ifr_name, sizeof(t->name));
		t->name[IFNAMSIZ - 1] = 0;
		if (ioctl(fd, TUNSETVNETHDRSZ, &hsz) < 0) {
			err = -errno;
			goto fail;
		}
	}
	return 0;
fail:
	tap_close(t);
	return err;
}

void tap_close(struct tap *t)
{
	for (unsigned i = 0; i < TAP_MAX_QUEUES; i++)
		if (t->fds[i] >= 0)
			close(t->fds[i]);
	tap_reset(t);
}

int tap_queue_enable(struct tap *t, unsigned i, bool on)
{
	struct ifreq ifr = { .ifr_flags = on ? IFF_ATTACH_QUEUE : IFF_DETACH_QUEUE };

	if (i >= t->nqueues || t->nqueues < 2)
		return -EINVAL;
	return ioctl(t->fds[i], TUNSETQUEUE, &ifr) < 0 ? -errno : 0;
}

unsigned tap_offload_flags(uint64_t f)
{
	unsigned flags = 0;

	/* Segmentation offloads are only valid on top of checksum offload
	 * (the kernel refuses them alone; virtio 1.2 5.1.3.1 ties them too). */
	if (!(f & VIRTIO_BIT(VIRTIO_NET_F_GUEST_CSUM)))
		return 0;
	flags |= TUN_F_CSUM;
	if (f & VIRTIO_BIT(VIRTIO_NET_F_GUEST_TSO4))
		flags |= TUN_F_TSO4;
	if (f & VIRTIO_BIT(VIRTIO_NET_F_GUEST_TSO6))
		flags |= TUN_F_TSO6;
	if (f & VIRTIO_BIT(VIRTIO_NET_F_GUEST_UFO))
		flags |= TUN_F_UFO;
	return flags;
}

int tap_set_offload(struct tap *t, unsigned flags)
{
	for (unsigned i = 0; i < t->nqueues; i++)
		if (ioctl(t->fds[i], TUNSETOFFLOAD, (unsigned long)flags) < 0)
			return -errno;
	return 0;
}

int tap_set_hdr_len(struct tap *t, unsigned hdr_len)
{
	int hsz = (int)hdr_len;

	for (unsigned i = 0; i < t->nqueues; i++)
		if (ioctl(t->fds[i], TUNSETVNETHDRSZ, &hsz) < 0)
			return -errno;
	return 0;
}

/* Runs one SIOCSIF* request for interface name on a throwaway socket. */
static int tap_ifreq(const char *name, unsigned long req, struct ifreq *ifr)
{
	int fd, err = 0;

	if (!name || strlen(name) >= IFNAMSIZ)
		return -EINVAL;
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	snprintf(ifr->ifr_name, sizeof(ifr->ifr_name), "%s", name);
	if (ioctl(fd, req, ifr) < 0)
		err = -errno;
	close(fd);
	return err;
}

static void tap_sockaddr(struct sockaddr *sa, struct in_addr a)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr = a };

	memcpy(sa, &sin, sizeof(sin));
}

int tap_set_addr(const char *name, struct in_addr ip, struct in_addr mask)
{
	struct ifreq ifr;
	int err;

	memset(&ifr, 0, sizeof(ifr));
	tap_sockaddr(&ifr.ifr_addr, ip);
	err = tap_ifreq(name, SIOCSIFADDR, &ifr);
	if (err)
		return err;
	memset(&ifr, 0, sizeof(ifr));
	tap_sockaddr(&ifr.ifr_netmask, mask);
	return tap_ifreq(name, SIOCSIFNETMASK, &ifr);
}

int tap_set_mtu(const char *name, unsigned mtu)
{
	struct ifreq ifr;

	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_mtu = (int)mtu;
	return tap_ifreq(name, SIOCSIFMTU, &ifr);
}

int tap_set_mac(const char *name, const uint8_t mac[6])
{
	struct ifreq ifr;

	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_hwaddr.sa_family = ARPHRD_ETHER;
	memcpy(ifr.ifr_hwaddr.sa_data, mac, 6);
	return tap_ifreq(name, SIOCSIFHWADDR, &ifr);
}

int tap_set_up(const char *name)
{
	struct ifreq ifr;
	int err;

	memset(&ifr, 0, sizeof(ifr));
	err = tap_ifreq(name, SIOCGIFFLAGS, &ifr);
	if (err)
		return err;
	ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
	return tap_ifreq(name, SIOCSIFFLAGS, &ifr);
}

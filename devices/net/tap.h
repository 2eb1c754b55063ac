/*
 * Linux tap devices for virtio-net: opened (or created) with IFF_VNET_HDR so
 * frames carry the virtio-net header in both directions, one fd per queue
 * pair (IFF_MULTI_QUEUE), non-blocking.
 */
#ifndef CVMM_TAP_H
#define CVMM_TAP_H

#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

#define TAP_MAX_QUEUES 16

struct tap {
	char name[IFNAMSIZ];
	unsigned nqueues;
	int fds[TAP_MAX_QUEUES];
};

/* Attaches to tap `name` (a %d in it lets the kernel pick a free number;
 * t->name holds the result), creating it when it does not exist (needs
 * CAP_NET_ADMIN), with nqueues fds (IFF_MULTI_QUEUE when more than one),
 * each non-blocking with a vnet header of hdr_len bytes. 0 or -errno
 * (-EINVAL: bad name or count; -EEXIST: the tap exists with other flags;
 * -EBUSY: a single-queue tap another process has open). */
int tap_open(struct tap *t, const char *name, unsigned nqueues, unsigned hdr_len);
void tap_close(struct tap *t);

/* TUN_F_* offload flags for the guest features that let the driver take
 * checksum-less / segmentation-offloaded frames (GUEST_CSUM, GUEST_TSO4/6,
 * GUEST_UFO): what the kernel may hand us through the tap. */
unsigned tap_offload_flags(uint64_t guest_features);
/* TUNSETOFFLOAD on every queue fd. 0 or -errno. */
int tap_set_offload(struct tap *t, unsigned flags);
/* Attaches (on) or detaches queue i of a multiqueue tap, so the kernel
 * steers frames only to the queues the guest reads. 0 or -errno. */
int tap_queue_enable(struct tap *t, unsigned i, bool on);
/* TUNSETVNETHDRSZ on every queue fd. 0 or -errno. */
int tap_set_hdr_len(struct tap *t, unsigned hdr_len);

/* Interface settings through an AF_INET socket; each 0 or -errno. */
int tap_set_addr(const char *name, struct in_addr ip, struct in_addr mask);
int tap_set_mtu(const char *name, unsigned mtu);
int tap_set_mac(const char *name, const uint8_t mac[6]);
int tap_set_up(const char *name);

#endif

/*
 * The virtio-net options that --net (in-process) and --net-backend
 * (vhost-user) share, with cloud-hypervisor's names and defaults: a tap
 * (created when missing, "cvmm-net%d" when unnamed), one queue pair
 * (num_queues counts queues, so 2), queues of 256.
 */
#ifndef CVMM_NET_OPTS_H
#define CVMM_NET_OPTS_H

#include <stdint.h>

#include "cvmm/opts.h"
#include "virtio_net_dev.h"

struct net_opts {
	char *tap, *ip, *mask, *mac, *host_mac;
	uint32_t mtu, num_queues, queue_size;
};

#define NET_OPTS_DEFAULTS { .num_queues = 2, .queue_size = NET_DEV_DEFAULT_QUEUE_SIZE }

/* The opt_spec entries for a struct net_opts member m of struct st. */
#define NET_OPTS_SPECS(st, m)                                      \
	OPT_SPEC("tap", OPT_STRING, st, m.tap),                    \
	OPT_SPEC("ip", OPT_STRING, st, m.ip),                      \
	OPT_SPEC("mask", OPT_STRING, st, m.mask),                  \
	OPT_SPEC("mac", OPT_STRING, st, m.mac),                    \
	OPT_SPEC("host_mac", OPT_STRING, st, m.host_mac),          \
	OPT_SPEC("mtu", OPT_U32, st, m.mtu),                       \
	OPT_SPEC("num_queues", OPT_U32, st, m.num_queues),         \
	OPT_SPEC("queue_size", OPT_U32, st, m.queue_size)

/* Checks the values, opens (or creates) the tap into n (net_dev_init) and
 * sets its MTU, host MAC and address and brings it up as asked. On error
 * logs one line starting with who ("--net", "--net-backend") and returns
 * -errno. */
int net_opts_open(struct net_dev *n, const struct net_opts *o, const char *who);

#endif

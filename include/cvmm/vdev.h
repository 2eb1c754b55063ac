/*
 * The virtio device model interface (docs/architecture: one model, two hosts).
 * A model (blk, net, vsock, rng, console) sees guest memory, its virtqueues
 * (rings + kick/call eventfds), features and config space, and its own
 * backend fds. It never knows which host carries it:
 *  - in-process, a transport (virtio-pci / virtio-mmio) fills these from the
 *    guest's register writes (kick = ioeventfd, call = irqfd);
 *  - as a vhost-user back-end, the vhost-user server fills them from the
 *    front-end's messages.
 *
 * Sequence a host follows: set dev->mem; negotiate (set_features);
 * per queue virtq_setup + kick/call fds, then queue_start; queue_stop before
 * touching that queue or guest memory again; reset with every queue stopped.
 */
#ifndef CVMM_VDEV_H
#define CVMM_VDEV_H

#include <stdint.h>

#include "cvmm/gmem.h"
#include "cvmm/virtq.h"

struct vdev;

struct vdev_ops {
	const char *name;
	/* The driver accepted features (a subset of host_features). Optional;
	 * -EINVAL refuses the combination. */
	int (*set_features)(struct vdev *dev, uint64_t features);
	/* Copies config space bytes [off, off+len) into buf (bounds checked by the host). */
	void (*read_config)(struct vdev *dev, uint32_t off, void *buf, uint32_t len);
	/* Driver writes to config space; optional (read-only config when NULL). */
	int (*write_config)(struct vdev *dev, uint32_t off, const void *buf, uint32_t len);
	/* Queue q is set up with kick/call fds: start serving it. 0 or -errno. */
	int (*queue_start)(struct vdev *dev, unsigned q);
	/* Stop serving queue q; returns once no thread of the model touches it
	 * (requests in progress are completed and pushed first). */
	void (*queue_stop)(struct vdev *dev, unsigned q);
	/* Back to the state after init; all queues are stopped. Optional. */
	void (*reset)(struct vdev *dev);
	/* Releases everything the model owns (its backend fds, threads, vqs). */
	void (*destroy)(struct vdev *dev);
};

struct vdev {
	const struct vdev_ops *ops;
	uint32_t device_id;        /* virtio device ID (blk 2, net 1, console 3, rng 4, vsock 19) */
	uint64_t host_features;    /* offered, including the core's (VERSION_1, EVENT_IDX, INDIRECT_DESC) */
	uint64_t features;         /* negotiated */
	unsigned num_queues;
	uint16_t queue_size_max;
	struct virtq *vqs;         /* num_queues of them, allocated by the model */
	uint32_t config_size;
	const struct gmem *mem;    /* set by the host before any queue starts */

	/* Set by the host: the model calls vdev_config_changed() when its
	 * config space changed (capacity, link status, ...). */
	void (*host_config_changed)(void *host);
	/* Set by the host (optional): the model calls vdev_needs_reset() when
	 * it can no longer serve the driver (an external back-end failed); the
	 * host sets DEVICE_NEEDS_RESET and raises the config interrupt. */
	void (*host_needs_reset)(void *host);
	void *host;
};

/* Both may be called from any thread. */
static inline void vdev_config_changed(struct vdev *dev)
{
	if (dev->host_config_changed)
		dev->host_config_changed(dev->host);
}

static inline void vdev_needs_reset(struct vdev *dev)
{
	if (dev->host_needs_reset)
		dev->host_needs_reset(dev->host);
}

static inline bool vdev_has_feature(const struct vdev *dev, unsigned bit)
{
	return dev->features & VIRTIO_BIT(bit);
}

#endif

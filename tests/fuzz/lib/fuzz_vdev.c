#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_ring.h"
#include "fuzz_vdev.h"

static struct fuzz_vdev *fuzz_vdev_of(struct vdev *dev)
{
	return container_of(dev, struct fuzz_vdev, dev);
}

/* The host broke the contract: make the fuzzer report it. */
static void fuzz_vdev_violation(const char *what)
{
	fprintf(stderr, "fuzz device: the host broke the device contract: %s\n", what);
	abort();
}

static void fuzz_vdev_check_range(const struct vdev *dev, uint32_t off, uint32_t len)
{
	if (off > dev->config_size || len > dev->config_size - off)
		fuzz_vdev_violation("config access out of range");
}

static void fuzz_vdev_read_config(struct vdev *dev, uint32_t off, void *buf, uint32_t len)
{
	fuzz_vdev_check_range(dev, off, len);
	memcpy(buf, fuzz_vdev_of(dev)->config + off, len);
}

static int fuzz_vdev_write_config(struct vdev *dev, uint32_t off, const void *buf, uint32_t len)
{
	fuzz_vdev_check_range(dev, off, len);
	if (off + len > 8)
		return -EPERM;
	memcpy(fuzz_vdev_of(dev)->config + off, buf, len);
	return 0;
}

static int fuzz_vdev_queue_start(struct vdev *dev, unsigned q)
{
	struct fuzz_vdev *f = fuzz_vdev_of(dev);
	struct virtq *vq = &dev->vqs[q];

	if (q >= FUZZ_VDEV_QUEUES || f->started[q])
		fuzz_vdev_violation("queue started twice or out of range");
	if (!vq->mem || !vq->size || vq->size > dev->queue_size_max)
		fuzz_vdev_violation("queue started without a valid ring");
	f->started[q] = true;
	for (unsigned n = 0; n < FUZZ_VDEV_BUDGET; n++) {
		if (virtq_pop(vq, f->chain) != 1)
			break;
		virtq_push(vq, f->chain->head, fuzz_ring_touch(f->chain));
	}
	virtq_notify(vq);
	return 0;
}

static void fuzz_vdev_queue_stop(struct vdev *dev, unsigned q)
{
	struct fuzz_vdev *f = fuzz_vdev_of(dev);

	if (q >= FUZZ_VDEV_QUEUES || !f->started[q])
		fuzz_vdev_violation("stopping a queue that is not started");
	f->started[q] = false;
}

static void fuzz_vdev_reset(struct vdev *dev)
{
	struct fuzz_vdev *f = fuzz_vdev_of(dev);

	for (unsigned q = 0; q < FUZZ_VDEV_QUEUES; q++)
		if (f->started[q])
			fuzz_vdev_violation("reset with a queue started");
}

static const struct vdev_ops fuzz_vdev_ops = {
	.name = "fuzz",
	.read_config = fuzz_vdev_read_config,
	.write_config = fuzz_vdev_write_config,
	.queue_start = fuzz_vdev_queue_start,
	.queue_stop = fuzz_vdev_queue_stop,
	.reset = fuzz_vdev_reset,
};

int fuzz_vdev_init(struct fuzz_vdev *f, uint32_t device_id)
{
	memset(f, 0, sizeof(*f));
	f->chain = malloc(sizeof(*f->chain));
	if (!f->chain)
		return -ENOMEM;
	f->dev = (struct vdev){
		.ops = &fuzz_vdev_ops, .device_id = device_id, .num_queues = FUZZ_VDEV_QUEUES,
		.queue_size_max = FUZZ_VDEV_QUEUE_MAX, .vqs = f->vqs,
		.config_size = FUZZ_VDEV_CONFIG,
		.host_features = VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_F_EVENT_IDX) |
				 VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC) | 1,
	};
	for (unsigned i = 0; i < FUZZ_VDEV_CONFIG; i++)
		f->config[i] = (uint8_t)(0x11 * (i + 1));
	for (unsigned q = 0; q < FUZZ_VDEV_QUEUES; q++)
		virtq_init(&f->vqs[q]);
	if (vdev_init(&f->dev, 0, "fuzz")) {
		free(f->chain);
		return -ENOMEM;
	}
	return 0;
}

void fuzz_vdev_destroy(struct fuzz_vdev *f)
{
	vdev_destroy(&f->dev);
	for (unsigned q = 0; q < FUZZ_VDEV_QUEUES; q++)
		virtq_destroy(&f->vqs[q]);
	free(f->chain);
}

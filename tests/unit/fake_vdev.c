#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "fake_vdev.h"

static struct fake_vdev *fake_of(struct vdev *dev)
{
	return container_of(dev, struct fake_vdev, dev);
}

static int fake_set_features(struct vdev *dev, uint64_t f)
{
	fake_of(dev)->last_features = f;
	return 0;
}

static void fake_read_config(struct vdev *dev, uint32_t off, void *buf, uint32_t len)
{
	ck_assert_uint_le(off + len, FAKE_CONFIG_MAX);
	memcpy(buf, fake_of(dev)->config + off, len);
}

static int fake_write_config(struct vdev *dev, uint32_t off, const void *buf, uint32_t len)
{
	struct fake_vdev *f = fake_of(dev);

	ck_assert_uint_le(len, FAKE_CONFIG_MAX);
	f->woff = off;
	f->wlen = len;
	memcpy(f->wbuf, buf, len);
	f->writes++;
	if (f->notify_on_write)
		vdev_config_changed(dev);
	return 0;
}

static int fake_queue_start(struct vdev *dev, unsigned q)
{
	struct fake_vdev *f = fake_of(dev);
	struct virtq *vq = &f->vqs[q];

	if (f->start_result)
		return f->start_result;
	f->started[q]++;
	f->at_start[q].size = vq->size;
	f->at_start[q].last_avail = vq->last_avail_idx;
	f->at_start[q].event_idx = vq->event_idx;
	f->at_start[q].indirect = vq->indirect;
	f->at_start[q].inflight = vq->inflight != NULL;
	f->at_start[q].kick = vq->kick_fd;
	f->at_start[q].call = vq->call_fd;
	return 0;
}

static void fake_queue_stop(struct vdev *dev, unsigned q)
{
	fake_of(dev)->stopped[q]++;
}

static void fake_reset(struct vdev *dev)
{
	fake_of(dev)->resets++;
}

static const struct vdev_ops fake_ops = {
	.name = "fake",
	.set_features = fake_set_features,
	.read_config = fake_read_config,
	.write_config = fake_write_config,
	.queue_start = fake_queue_start,
	.queue_stop = fake_queue_stop,
	.reset = fake_reset,
};

struct fake_vdev *fake_vdev_new(uint32_t device_id)
{
	struct fake_vdev *f = calloc(1, sizeof(*f));
	struct gmem_region r = { .gpa = 0, .size = FAKE_MEM_SIZE, .fd = -1 };

	ck_assert_ptr_nonnull(f);
	f->mem_buf = calloc(1, FAKE_MEM_SIZE);
	r.hva = f->mem_buf;
	gmem_init(&f->mem);
	ck_assert_int_eq(gmem_add(&f->mem, &r), 0);
	f->dev = (struct vdev){
		.ops = &fake_ops, .device_id = device_id, .num_queues = FAKE_QUEUES,
		.queue_size_max = 64, .vqs = f->vqs, .config_size = 8, .mem = &f->mem,
		.host_features = VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_F_EVENT_IDX) | 1,
	};
	memcpy(f->config, "\x11\x22\x33\x44\x55\x66\x77\x88", 8);
	for (unsigned q = 0; q < FAKE_QUEUES; q++)
		virtq_init(&f->vqs[q]);
	ck_assert_int_eq(vdev_init(&f->dev, 0, "fake"), 0);
	return f;
}

void fake_vdev_free(struct fake_vdev *f)
{
	vdev_destroy(&f->dev);
	for (unsigned q = 0; q < FAKE_QUEUES; q++)
		virtq_destroy(&f->vqs[q]);
	gmem_destroy(&f->mem);
	free(f->mem_buf);
	free(f);
}

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "cvmm/log.h"
#include "cvmm/virtio_transport.h"

static void vtr_signal(int fd)
{
	uint64_t one = 1;

	/* Fails only with a saturated counter: the interrupt is pending anyway. */
	(void)!write(fd, &one, sizeof(one));
}

/* From any thread (the model's, the queue runtime's): the ISR bit and the
 * generation are updated atomically against the vCPU's register accesses. */
static void vtr_config_changed(void *host)
{
	struct vtr *t = host;

	/* Called from the device's own thread while a vCPU may be reading and
	 * clearing the ISR: read-modify-writes on either side must be atomic or
	 * one of them loses the other's update (and the driver the change). */
	__atomic_add_fetch(&t->config_generation, 1, __ATOMIC_RELEASE);
	__atomic_fetch_or(&t->isr, VIRTIO_ISR_CONFIG, __ATOMIC_SEQ_CST);
	if (t->watch)
		t->watch(t->watch_opaque);
	vtr_signal(t->config_fd);
}

void vtr_set_watch(struct vtr *t, void (*fn)(void *opaque), void *opaque)
{
	t->watch = fn;
	t->watch_opaque = opaque;
}

/* dev->host_queue_broken, on the queue's worker: DEVICE_NEEDS_RESET and a
 * configuration change interrupt (virtio 1.2 2.1.2); the driver's reset
 * brings the device back. */
static void vtr_queue_broken(void *host, unsigned q)
{
	struct vtr *t = host;

	(void)q;
	__atomic_store_n(&t->ring_broken, true, __ATOMIC_SEQ_CST);
	vtr_config_changed(t);
}

static void vtr_close_fds(struct vtr *t)
{
	struct vdev *dev = t->dev;

	for (unsigned q = 0; q < dev->num_queues; q++) {
		if (dev->vqs[q].kick_fd >= 0)
			close(dev->vqs[q].kick_fd);
		if (dev->vqs[q].call_fd >= 0)
			close(dev->vqs[q].call_fd);
		dev->vqs[q].kick_fd = dev->vqs[q].call_fd = -1;
	}
	if (t->config_fd >= 0)
		close(t->config_fd);
	t->config_fd = -1;
}

int vtr_init(struct vtr *t, struct vdev *dev)
{
	int err;

	memset(t, 0, sizeof(*t));
	t->dev = dev;
	t->config_fd = -1;
	t->queues = calloc(dev->num_queues, sizeof(*t->queues));
	if (!t->queues)
		return -ENOMEM;
	for (unsigned q = 0; q < dev->num_queues; q++) {
		t->queues[q].num = dev->queue_size_max;
		dev->vqs[q].kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		dev->vqs[q].call_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (dev->vqs[q].kick_fd < 0 || dev->vqs[q].call_fd < 0)
			goto fail;
	}
	t->config_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (t->config_fd < 0)
		goto fail;
	vdev_set_host(dev, vtr_config_changed, vtr_queue_broken, t);
	return 0;
fail:
	err = -errno;
	vtr_close_fds(t);
	free(t->queues);
	return err;
}

static void vtr_stop_queues(struct vtr *t)
{
	for (unsigned q = 0; q < t->dev->num_queues; q++) {
		if (!t->queues[q].started)
			continue;
		vdev_queue_stop(t->dev, q);
		t->queues[q].started = false;
	}
}

void vtr_destroy(struct vtr *t)
{
	vtr_stop_queues(t);
	vdev_set_host(t->dev, NULL, NULL, NULL);
	vtr_close_fds(t);
	free(t->queues);
	t->queues = NULL;
}

/* The driver did something the spec forbids: tell it, keep running. */
static void vtr_needs_reset(struct vtr *t, const char *why)
{
	log_warn_ratelimited("%s: driver error (%s): device needs reset", t->dev->ops->name, why);
	vtr_stop_queues(t);
	__atomic_fetch_or(&t->status, VIRTIO_STATUS_DEVICE_NEEDS_RESET, __ATOMIC_SEQ_CST);
	if (t->status & VIRTIO_STATUS_DRIVER_OK)
		vtr_config_changed(t);
}

static void vtr_reset(struct vtr *t)
{
	struct vdev *dev = t->dev;

	vtr_stop_queues(t);
	vdev_reset(dev);
	for (unsigned q = 0; q < dev->num_queues; q++) {
		int kick = dev->vqs[q].kick_fd, call = dev->vqs[q].call_fd;

		virtq_destroy(&dev->vqs[q]);
		virtq_init(&dev->vqs[q]);
		dev->vqs[q].kick_fd = kick;
		dev->vqs[q].call_fd = call;
		memset(&t->queues[q], 0, sizeof(t->queues[q]));
		t->queues[q].num = dev->queue_size_max;
	}
	t->driver_features = 0;
	__atomic_store_n(&t->status, 0, __ATOMIC_SEQ_CST);
	__atomic_store_n(&t->isr, 0, __ATOMIC_SEQ_CST);
	t->ring_broken = false;
}

static void vtr_start_queue(struct vtr *t, unsigned q)
{
	struct vdev *dev = t->dev;
	int err;

	err = vdev_queue_start(dev, q);
	if (err) {
		log_err("%s: cannot start queue %u: %s", dev->ops->name, q, strerror(-err));
		vtr_needs_reset(t, "queue start failed");
		return;
	}
	t->queues[q].started = true;
}

static bool vtr_accept_features(struct vtr *t)
{
	struct vdev *dev = t->dev;
	uint64_t f = t->driver_features;

	if ((f & ~dev->host_features) || !(f & VIRTIO_BIT(VIRTIO_F_VERSION_1)))
		return false;
	return vdev_set_features(dev, f) == 0;
}

void vtr_set_status(struct vtr *t, uint8_t status)
{
	uint8_t set = status & ~t->status;

	if (status == 0) {
		vtr_reset(t);
		return;
	}
	if ((set & VIRTIO_STATUS_FEATURES_OK) && !vtr_accept_features(t))
		status &= ~VIRTIO_STATUS_FEATURES_OK;
	if ((set & VIRTIO_STATUS_DRIVER_OK) && !(status & VIRTIO_STATUS_FEATURES_OK)) {
		vtr_needs_reset(t, "DRIVER_OK before FEATURES_OK");
		return;
	}
	/* Bits are only cleared by a reset; NEEDS_RESET is the device's. */
	__atomic_fetch_or(&t->status, status & ~VIRTIO_STATUS_DEVICE_NEEDS_RESET, __ATOMIC_SEQ_CST);
	if ((set & VIRTIO_STATUS_DRIVER_OK) && !(t->status & VIRTIO_STATUS_DEVICE_NEEDS_RESET)) {
		for (unsigned q = 0; q < t->dev->num_queues; q++)
			if (t->queues[q].enabled && !t->queues[q].started)
				vtr_start_queue(t, q);
	}
}

uint8_t vtr_status(const struct vtr *t)
{
	bool broken = __atomic_load_n(&t->ring_broken, __ATOMIC_SEQ_CST);

	/* Atomic: a watch reads it from the device's thread (vtr_set_watch). */
	return __atomic_load_n(&t->status, __ATOMIC_SEQ_CST) | (broken ? VIRTIO_STATUS_DEVICE_NEEDS_RESET : 0);
}

uint32_t vtr_device_features(const struct vtr *t, uint32_t sel)
{
	return sel < 2 ? (uint32_t)(t->dev->host_features >> (32 * sel)) : 0;
}

void vtr_set_driver_features(struct vtr *t, uint32_t sel, uint32_t val)
{
	if (sel >= 2 || (t->status & VIRTIO_STATUS_FEATURES_OK))
		return;
	t->driver_features &= ~(0xffffffffULL << (32 * sel));
	t->driver_features |= (uint64_t)val << (32 * sel);
}

bool vtr_set_queue_num(struct vtr *t, unsigned q, uint32_t num)
{
	if (q >= t->dev->num_queues || num == 0 || num > t->dev->queue_size_max || (num & (num - 1)))
		return false;
	t->queues[q].num = num;
	return true;
}

void vtr_enable_queue(struct vtr *t, unsigned q)
{
	struct vdev *dev = t->dev;
	struct vtr_queue *tq;

	if (q >= dev->num_queues || t->queues[q].enabled)
		return;
	tq = &t->queues[q];
	if (!(t->status & VIRTIO_STATUS_FEATURES_OK)) {
		vtr_needs_reset(t, "queue enabled before FEATURES_OK");
		return;
	}
	if (virtq_setup(&dev->vqs[q], dev->mem, tq->num, tq->desc, tq->avail, tq->used)) {
		vtr_needs_reset(t, "queue size or addresses invalid");
		return;
	}
	dev->vqs[q].last_avail_idx = 0;
	tq->enabled = true;
	if (t->status & VIRTIO_STATUS_DRIVER_OK)
		vtr_start_queue(t, q);
}

void vtr_set_addr_half(uint64_t *addr, bool high, uint32_t val)
{
	unsigned shift = high ? 32 : 0;

	*addr = (*addr & ~(0xffffffffULL << shift)) | ((uint64_t)val << shift);
}

void vtr_notify(struct vtr *t, unsigned q)
{
	if (q < t->dev->num_queues && t->queues[q].started)
		vtr_signal(t->dev->vqs[q].kick_fd);
}

uint8_t vtr_isr(struct vtr *t)
{
	return __atomic_load_n(&t->isr, __ATOMIC_SEQ_CST);
}

void vtr_ack_isr(struct vtr *t, uint8_t bits)
{
	__atomic_fetch_and(&t->isr, (uint8_t)~bits, __ATOMIC_SEQ_CST);
}

uint32_t vtr_config_generation(struct vtr *t)
{
	return __atomic_load_n(&t->config_generation, __ATOMIC_ACQUIRE);
}

uint8_t vtr_read_isr(struct vtr *t)
{
	return __atomic_exchange_n(&t->isr, 0, __ATOMIC_SEQ_CST);
}

void vtr_read_config(struct vtr *t, uint32_t off, void *buf, uint32_t len)
{
	memset(buf, 0, len);
	if (off < t->dev->config_size && len <= t->dev->config_size - off)
		t->dev->ops->read_config(t->dev, off, buf, len);
}

void vtr_write_config(struct vtr *t, uint32_t off, const void *buf, uint32_t len)
{
	if (t->dev->ops->write_config && off < t->dev->config_size &&
	    len <= t->dev->config_size - off)
		t->dev->ops->write_config(t->dev, off, buf, len);
}

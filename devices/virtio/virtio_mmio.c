#include <endian.h>
#include <errno.h>
#include <string.h>

#include "cvmm/virtio_mmio.h"

#define VMMIO_MAGIC 0x74726976 /* "virt" */
#define VMMIO_VERSION 2
#define VMMIO_VENDOR 0x4d4d5643 /* "CVMM" */

enum vmmio_reg {
	VMMIO_MAGIC_VALUE = 0x000,
	VMMIO_VERSION_REG = 0x004,
	VMMIO_DEVICE_ID = 0x008,
	VMMIO_VENDOR_ID = 0x00c,
	VMMIO_DEVICE_FEATURES = 0x010,
	VMMIO_DEVICE_FEATURES_SEL = 0x014,
	VMMIO_DRIVER_FEATURES = 0x020,
	VMMIO_DRIVER_FEATURES_SEL = 0x024,
	VMMIO_QUEUE_SEL = 0x030,
	VMMIO_QUEUE_NUM_MAX = 0x034,
	VMMIO_QUEUE_NUM = 0x038,
	VMMIO_QUEUE_READY = 0x044,
	VMMIO_INTERRUPT_STATUS = 0x060,
	VMMIO_STATUS = 0x070,
	VMMIO_QUEUE_DESC_LOW = 0x080,
	VMMIO_QUEUE_DESC_HIGH = 0x084,
	VMMIO_QUEUE_DRIVER_LOW = 0x090,
	VMMIO_QUEUE_DRIVER_HIGH = 0x094,
	VMMIO_QUEUE_DEVICE_LOW = 0x0a0,
	VMMIO_QUEUE_DEVICE_HIGH = 0x0a4,
	VMMIO_SHM_LEN_LOW = 0x0b0,
	VMMIO_SHM_LEN_HIGH = 0x0b4,
	VMMIO_SHM_BASE_LOW = 0x0b8,
	VMMIO_SHM_BASE_HIGH = 0x0bc,
	VMMIO_CONFIG_GENERATION = 0x0fc,
};

int vmmio_init(struct vmmio *m, struct vdev *dev, uint64_t base, unsigned irq)
{
	memset(m, 0, sizeof(*m));
	m->base = base;
	m->irq = irq;
	return vtr_init(&m->tr, dev);
}

void vmmio_destroy(struct vmmio *m)
{
	vtr_destroy(&m->tr);
}

void vmmio_reset(struct vmmio *m)
{
	vtr_set_status(&m->tr, 0);
	m->device_features_sel = m->driver_features_sel = m->queue_sel = 0;
}

/* The queue QueueSel points at, or NULL when it is out of range. */
static struct vtr_queue *vmmio_queue(struct vmmio *m)
{
	return m->queue_sel < m->tr.dev->num_queues ? &m->tr.queues[m->queue_sel] : NULL;
}

uint32_t vmmio_read(struct vmmio *m, uint64_t off, unsigned size)
{
	struct vtr_queue *q = vmmio_queue(m);
	uint32_t val = 0;

	if (off >= VMMIO_CONFIG) {
		if (size == 1 || size == 2 || size == 4)
			vtr_read_config(&m->tr, off - VMMIO_CONFIG, &val, size);
		return val;
	}
	if (size != 4)
		return 0;
	switch (off) {
	case VMMIO_MAGIC_VALUE:
		return VMMIO_MAGIC;
	case VMMIO_VERSION_REG:
		return VMMIO_VERSION;
	case VMMIO_DEVICE_ID:
		return m->tr.dev->device_id;
	case VMMIO_VENDOR_ID:
		return VMMIO_VENDOR;
	case VMMIO_DEVICE_FEATURES:
		return vtr_device_features(&m->tr, m->device_features_sel);
	case VMMIO_QUEUE_NUM_MAX:
		return q ? m->tr.dev->queue_size_max : 0;
	case VMMIO_QUEUE_READY:
		return q ? q->enabled : 0;
	case VMMIO_INTERRUPT_STATUS:
		/* Used-buffer interrupts reach the guest through irqfds that the
		 * device thread signals directly, so the transport cannot know
		 * which are pending: report the queue bit always, letting the
		 * driver check its rings (cheap and never loses one). */
		return VIRTIO_ISR_QUEUE | (vtr_isr(&m->tr) & VIRTIO_ISR_CONFIG);
	case VMMIO_STATUS:
		return vtr_status(&m->tr);
	case VMMIO_CONFIG_GENERATION:
		return vtr_config_generation(&m->tr);
	case VMMIO_SHM_LEN_LOW:
	case VMMIO_SHM_LEN_HIGH:
	case VMMIO_SHM_BASE_LOW:
	case VMMIO_SHM_BASE_HIGH:
		/* No shared memory regions: whatever SHMSel selects does not
		 * exist, which the spec (4.2.2) says is a length of -1 (a 0
		 * would be an empty region at 0: Linux's virtiofs then fails
		 * to reserve its DAX window). */
		return 0xffffffff;
	default:
		return 0;
	}
}

void vmmio_write(struct vmmio *m, uint64_t off, unsigned size, uint32_t val)
{
	struct vtr_queue *q = vmmio_queue(m);

	if (off >= VMMIO_CONFIG) {
		if (size == 1 || size == 2 || size == 4)
			vtr_write_config(&m->tr, off - VMMIO_CONFIG, &val, size);
		return;
	}
	if (size != 4)
		return;
	switch (off) {
	case VMMIO_DEVICE_FEATURES_SEL:
		m->device_features_sel = val;
		break;
	case VMMIO_DRIVER_FEATURES:
		vtr_set_driver_features(&m->tr, m->driver_features_sel, val);
		break;
	case VMMIO_DRIVER_FEATURES_SEL:
		m->driver_features_sel = val;
		break;
	case VMMIO_QUEUE_SEL:
		m->queue_sel = val;
		break;
	case VMMIO_QUEUE_NUM:
		if (q && !q->enabled)
			vtr_set_queue_num(&m->tr, m->queue_sel, val);
		break;
	case VMMIO_QUEUE_READY:
		if (q && val == 1)
			vtr_enable_queue(&m->tr, m->queue_sel);
		break;
	case VMMIO_QUEUE_NOTIFY:
		vtr_notify(&m->tr, val);
		break;
	case VMMIO_INTERRUPT_ACK:
		vtr_ack_isr(&m->tr, (uint8_t)val);
		break;
	case VMMIO_STATUS:
		vtr_set_status(&m->tr, val);
		break;
	case VMMIO_QUEUE_DESC_LOW:
	case VMMIO_QUEUE_DESC_HIGH:
		if (q && !q->enabled)
			vtr_set_addr_half(&q->desc, off == VMMIO_QUEUE_DESC_HIGH, val);
		break;
	case VMMIO_QUEUE_DRIVER_LOW:
	case VMMIO_QUEUE_DRIVER_HIGH:
		if (q && !q->enabled)
			vtr_set_addr_half(&q->avail, off == VMMIO_QUEUE_DRIVER_HIGH, val);
		break;
	case VMMIO_QUEUE_DEVICE_LOW:
	case VMMIO_QUEUE_DEVICE_HIGH:
		if (q && !q->enabled)
			vtr_set_addr_half(&q->used, off == VMMIO_QUEUE_DEVICE_HIGH, val);
		break;
	default:
		break;
	}
}

static void vmmio_store(uint32_t *win, uint64_t off, uint32_t val)
{
	__atomic_store_n(&win[off / 4], htole32(val), __ATOMIC_RELAXED);
}

/* Config space first, then the generation after it: a driver that reads the
 * generation around its config reads sees the change. */
static void vmmio_render_config(struct vmmio *m, uint32_t *win)
{
	uint32_t config[(VMMIO_WINDOW_SIZE - VMMIO_CONFIG) / 4];
	uint32_t size = m->tr.dev->config_size;

	memset(config, 0, sizeof(config));
	if (size > sizeof(config))
		size = sizeof(config);
	vtr_read_config(&m->tr, 0, config, size);
	for (uint32_t i = 0; i < sizeof(config) / 4; i++)
		__atomic_store_n(&win[VMMIO_CONFIG / 4 + i], config[i], __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	vmmio_store(win, VMMIO_CONFIG_GENERATION, vmmio_read(m, VMMIO_CONFIG_GENERATION, 4));
}

void vmmio_render_device_side(struct vmmio *m, uint32_t win[VMMIO_WINDOW_SIZE / 4])
{
	vmmio_render_config(m, win);
	vmmio_store(win, VMMIO_STATUS, vmmio_read(m, VMMIO_STATUS, 4));
	vmmio_store(win, VMMIO_INTERRUPT_STATUS, vmmio_read(m, VMMIO_INTERRUPT_STATUS, 4));
}

void vmmio_render(struct vmmio *m, uint32_t win[VMMIO_WINDOW_SIZE / 4])
{
	/* The generation (the last register word) comes after the config. */
	for (uint64_t off = 0; off < VMMIO_CONFIG_GENERATION; off += 4)
		vmmio_store(win, off, vmmio_read(m, off, 4));
	vmmio_render_config(m, win);
}

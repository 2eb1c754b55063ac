#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cvmm/virtio_pci.h"

#define VPCI_VENDOR 0x1af4
#define VPCI_DEVICE_BASE 0x1040
#define VPCI_CAP_VENDOR 0x09
#define VPCI_CAP_MSIX 0x11

enum vpci_cfg_type {
	VPCI_CAP_COMMON = 1,
	VPCI_CAP_NOTIFY = 2,
	VPCI_CAP_ISR = 3,
	VPCI_CAP_DEVICE = 4,
	VPCI_CAP_PCI_CFG = 5,
};

/* Capability list placement in config space. */
#define VPCI_CAP_COMMON_AT 0x40
#define VPCI_CAP_NOTIFY_AT 0x50
#define VPCI_CAP_ISR_AT 0x64
#define VPCI_CAP_DEVICE_AT 0x74
#define VPCI_CAP_PCI_CFG_AT 0x84
#define VPCI_CAP_MSIX_AT 0x98
#define VPCI_PCI_CFG_DATA (VPCI_CAP_PCI_CFG_AT + 16)
#define VPCI_MSIX_CTRL (VPCI_CAP_MSIX_AT + 2)
#define VPCI_MSIX_ENABLE 0x8000
#define VPCI_MSIX_MASKALL 0x4000

/* Common configuration structure offsets (virtio 1.2 4.1.4.3). */
enum vpci_common {
	VPCI_DFSELECT = 0,
	VPCI_DF = 4,
	VPCI_GFSELECT = 8,
	VPCI_GF = 12,
	VPCI_MSIX_CONFIG = 16,
	VPCI_NUM_QUEUES = 18,
	VPCI_STATUS = 20,
	VPCI_CFG_GENERATION = 21,
	VPCI_Q_SELECT = 22,
	VPCI_Q_SIZE = 24,
	VPCI_Q_MSIX = 26,
	VPCI_Q_ENABLE = 28,
	VPCI_Q_NOFF = 30,
	VPCI_Q_DESCLO = 32,
	VPCI_Q_DESCHI = 36,
	VPCI_Q_AVAILLO = 40,
	VPCI_Q_AVAILHI = 44,
	VPCI_Q_USEDLO = 48,
	VPCI_Q_USEDHI = 52,
	VPCI_COMMON_SIZE = 64,
};

static uint32_t vpci_class(uint32_t device_id)
{
	switch (device_id) {
	case 1:
		return 0x020000; /* network controller */
	case 2:
		return 0x018000; /* mass storage, other */
	case 3:
		return 0x078000; /* communication, other */
	default:
		return 0xff0000;
	}
}

static void vpci_add_cap(struct vpci *p, uint8_t at, uint8_t next, uint8_t len,
			 enum vpci_cfg_type type, uint32_t off, uint32_t size)
{
	struct pci_cfg *c = &p->cfg;

	pci_cfg_set(c, at, 1, VPCI_CAP_VENDOR);
	pci_cfg_set(c, at + 1, 1, next);
	pci_cfg_set(c, at + 2, 1, len);
	pci_cfg_set(c, at + 3, 1, type);
	pci_cfg_set(c, at + 4, 1, 0); /* BAR0 */
	pci_cfg_set(c, at + 8, 4, off);
	pci_cfg_set(c, at + 12, 4, size);
}

static void vpci_build_cfg(struct vpci *p, uint32_t bar0)
{
	struct pci_cfg *c = &p->cfg;
	struct vdev *dev = p->tr.dev;

	pci_cfg_set(c, PCI_VENDOR_ID, 2, VPCI_VENDOR);
	pci_cfg_set(c, PCI_DEVICE_ID, 2, VPCI_DEVICE_BASE + dev->device_id);
	pci_cfg_set(c, PCI_STATUS, 2, PCI_STATUS_CAP_LIST);
	pci_cfg_set(c, PCI_REVISION_ID, 1, 1);
	pci_cfg_set(c, PCI_CLASS_PROG, 3, vpci_class(dev->device_id));
	pci_cfg_set(c, PCI_BAR0, 4, bar0);
	pci_cfg_set(c, PCI_SUBSYSTEM_VENDOR_ID, 2, VPCI_VENDOR);
	pci_cfg_set(c, PCI_SUBSYSTEM_ID, 2, 0x40 + dev->device_id);
	pci_cfg_set(c, PCI_CAPABILITY_LIST, 1, VPCI_CAP_COMMON_AT);
	/* Interrupt Pin 0: no INTx. Interrupts are MSI-X only (the DSDT has
	 * no _PRT, and nothing drives a pin). */
	pci_cfg_set(c, PCI_INTERRUPT_PIN, 1, 0);
	pci_cfg_set_wmask(c, PCI_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER | PCI_COMMAND_INTX_DISABLE);
	pci_cfg_set_wmask(c, PCI_BAR0, 4, ~(uint32_t)(VPCI_BAR_SIZE - 1));
	pci_cfg_set_wmask(c, PCI_INTERRUPT_LINE, 1, 0xff);

	vpci_add_cap(p, VPCI_CAP_COMMON_AT, VPCI_CAP_NOTIFY_AT, 16, VPCI_CAP_COMMON,
		     VPCI_COMMON_OFF, VPCI_COMMON_SIZE);
	vpci_add_cap(p, VPCI_CAP_NOTIFY_AT, VPCI_CAP_ISR_AT, 20, VPCI_CAP_NOTIFY,
		     VPCI_NOTIFY_OFF, dev->num_queues * VPCI_NOTIFY_MULTIPLIER);
	pci_cfg_set(c, VPCI_CAP_NOTIFY_AT + 16, 4, VPCI_NOTIFY_MULTIPLIER);
	/* A device without device-specific configuration (virtio-rng) gets no
	 * device-config capability: virtio 1.2 4.1.4.6 asks for one only when
	 * there is a configuration, and Linux refuses a zero-length one. */
	if (dev->config_size) {
		vpci_add_cap(p, VPCI_CAP_ISR_AT, VPCI_CAP_DEVICE_AT, 16, VPCI_CAP_ISR, VPCI_ISR_OFF, 1);
		vpci_add_cap(p, VPCI_CAP_DEVICE_AT, VPCI_CAP_PCI_CFG_AT, 16, VPCI_CAP_DEVICE,
			     VPCI_DEVICE_OFF, dev->config_size);
	} else {
		vpci_add_cap(p, VPCI_CAP_ISR_AT, VPCI_CAP_PCI_CFG_AT, 16, VPCI_CAP_ISR, VPCI_ISR_OFF, 1);
	}
	/* The PCI configuration access capability: bar, offset, length and
	 * data are the driver's to write. */
	vpci_add_cap(p, VPCI_CAP_PCI_CFG_AT, VPCI_CAP_MSIX_AT, 20, VPCI_CAP_PCI_CFG, 0, 0);
	pci_cfg_set_wmask(c, VPCI_CAP_PCI_CFG_AT + 4, 1, 0xff);
	pci_cfg_set_wmask(c, VPCI_CAP_PCI_CFG_AT + 8, 4, 0xffffffff);
	pci_cfg_set_wmask(c, VPCI_CAP_PCI_CFG_AT + 12, 4, 0xffffffff);

	pci_cfg_set(c, VPCI_CAP_MSIX_AT, 1, VPCI_CAP_MSIX);
	pci_cfg_set(c, VPCI_CAP_MSIX_AT + 1, 1, 0);
	pci_cfg_set(c, VPCI_MSIX_CTRL, 2, p->nvectors - 1);
	pci_cfg_set(c, VPCI_CAP_MSIX_AT + 4, 4, VPCI_MSIX_TABLE_OFF); /* BIR 0 */
	pci_cfg_set(c, VPCI_CAP_MSIX_AT + 8, 4, VPCI_MSIX_PBA_OFF);
	pci_cfg_set_wmask(c, VPCI_MSIX_CTRL, 2, VPCI_MSIX_ENABLE | VPCI_MSIX_MASKALL);
}

static void vpci_reset_vectors(struct vpci *p)
{
	p->config_vector = VPCI_NO_VECTOR;
	for (unsigned q = 0; q < p->tr.dev->num_queues; q++)
		p->queue_vector[q] = VPCI_NO_VECTOR;
}

/* Registers and configuration space as at power-on: every MSI-X vector
 * masked until the driver programs it, no vectors chosen, BAR0 at its first
 * address with decoding off. */
static void vpci_power_on(struct vpci *p)
{
	memset(p->msix, 0, p->nvectors * sizeof(*p->msix));
	for (unsigned v = 0; v < p->nvectors; v++)
		p->msix[v].ctrl = 1;
	vpci_reset_vectors(p);
	p->device_features_sel = p->driver_features_sel = 0;
	p->queue_sel = 0;
	memset(&p->cfg, 0, sizeof(p->cfg));
	vpci_build_cfg(p, p->bar0_reset);
}

int vpci_init(struct vpci *p, struct vdev *dev, uint32_t bar0,
	      const struct vpci_host *host, void *host_ctx)
{
	int err;

	if (dev->num_queues == 0 || dev->num_queues > VPCI_MAX_QUEUES || (bar0 & (VPCI_BAR_SIZE - 1)))
		return -EINVAL;
	memset(p, 0, sizeof(*p));
	p->host = host;
	p->host_ctx = host_ctx;
	p->nvectors = dev->num_queues + 1;
	p->msix = calloc(p->nvectors, sizeof(*p->msix));
	p->queue_vector = calloc(dev->num_queues, sizeof(*p->queue_vector));
	if (!p->msix || !p->queue_vector) {
		err = -ENOMEM;
		goto fail;
	}
	err = vtr_init(&p->tr, dev);
	if (err)
		goto fail;
	pthread_mutex_init(&p->lock, NULL);
	p->bar0_reset = bar0;
	vpci_power_on(p);
	return 0;
fail:
	free(p->msix);
	free(p->queue_vector);
	return err;
}

void vpci_destroy(struct vpci *p)
{
	vtr_destroy(&p->tr);
	pthread_mutex_destroy(&p->lock);
	free(p->msix);
	free(p->queue_vector);
}

uint32_t vpci_bar0(const struct vpci *p)
{
	if (!(pci_cfg_read(&p->cfg, PCI_COMMAND, 2) & PCI_COMMAND_MEMORY))
		return 0;
	return pci_cfg_read(&p->cfg, PCI_BAR0, 4) & ~0xfu;
}

bool vpci_msix_enabled(const struct vpci *p)
{
	return pci_cfg_read(&p->cfg, VPCI_MSIX_CTRL, 2) & VPCI_MSIX_ENABLE;
}

bool vpci_msi_message(const struct vpci *p, unsigned q, uint64_t *addr, uint32_t *data)
{
	uint16_t ctrl = pci_cfg_read(&p->cfg, VPCI_MSIX_CTRL, 2);
	uint16_t v;

	if (q > p->tr.dev->num_queues || !(ctrl & VPCI_MSIX_ENABLE) || (ctrl & VPCI_MSIX_MASKALL))
		return false;
	v = q < p->tr.dev->num_queues ? p->queue_vector[q] : p->config_vector;
	if (v >= p->nvectors || (p->msix[v].ctrl & 1))
		return false;
	*addr = (uint64_t)p->msix[v].addr_hi << 32 | p->msix[v].addr_lo;
	*data = p->msix[v].data;
	return true;
}

bool vpci_config_route(struct vpci *p, bool active)
{
	uint32_t gen = __atomic_load_n(&p->tr.config_generation, __ATOMIC_ACQUIRE);

	if (!active) {
		p->config_gen_unrouted = gen;
		return false;
	}
	return gen != p->config_gen_unrouted;
}

static void vpci_msix_changed(struct vpci *p)
{
	if (p->host && p->host->msix_changed)
		p->host->msix_changed(p->host_ctx, p);
}

/* A vector the device cannot use reads back as NO_VECTOR (4.1.5.1.2). */
static uint16_t vpci_valid_vector(const struct vpci *p, uint16_t v)
{
	return v < p->nvectors ? v : VPCI_NO_VECTOR;
}

static struct vtr_queue *vpci_queue(struct vpci *p)
{
	return p->queue_sel < p->tr.dev->num_queues ? &p->tr.queues[p->queue_sel] : NULL;
}

static uint32_t vpci_common_read(struct vpci *p, uint32_t off, unsigned size)
{
	struct vtr_queue *q = vpci_queue(p);

	switch (off | size << 8) {
	case VPCI_DFSELECT | 4 << 8:
		return p->device_features_sel;
	case VPCI_DF | 4 << 8:
		return vtr_device_features(&p->tr, p->device_features_sel);
	case VPCI_GFSELECT | 4 << 8:
		return p->driver_features_sel;
	case VPCI_GF | 4 << 8:
		return p->driver_features_sel < 2 ? (uint32_t)(p->tr.driver_features >> (32 * p->driver_features_sel)) : 0;
	case VPCI_MSIX_CONFIG | 2 << 8:
		return p->config_vector;
	case VPCI_NUM_QUEUES | 2 << 8:
		return p->tr.dev->num_queues;
	case VPCI_STATUS | 1 << 8:
		return vtr_status(&p->tr);
	case VPCI_CFG_GENERATION | 1 << 8:
		return (uint8_t)vtr_config_generation(&p->tr);
	case VPCI_Q_SELECT | 2 << 8:
		return p->queue_sel;
	case VPCI_Q_SIZE | 2 << 8:
		return q ? q->num : 0;
	case VPCI_Q_MSIX | 2 << 8:
		return q ? p->queue_vector[p->queue_sel] : VPCI_NO_VECTOR;
	case VPCI_Q_ENABLE | 2 << 8:
		return q ? q->enabled : 0;
	case VPCI_Q_NOFF | 2 << 8:
		return q ? p->queue_sel : 0;
	case VPCI_Q_DESCLO | 4 << 8:
		return q ? (uint32_t)q->desc : 0;
	case VPCI_Q_DESCHI | 4 << 8:
		return q ? q->desc >> 32 : 0;
	case VPCI_Q_AVAILLO | 4 << 8:
		return q ? (uint32_t)q->avail : 0;
	case VPCI_Q_AVAILHI | 4 << 8:
		return q ? q->avail >> 32 : 0;
	case VPCI_Q_USEDLO | 4 << 8:
		return q ? (uint32_t)q->used : 0;
	case VPCI_Q_USEDHI | 4 << 8:
		return q ? q->used >> 32 : 0;
	default:
		return 0;
	}
}

static void vpci_common_write(struct vpci *p, uint32_t off, unsigned size, uint32_t val)
{
	struct vtr_queue *q = vpci_queue(p);
	bool q_open = q && !q->enabled;

	switch (off | size << 8) {
	case VPCI_DFSELECT | 4 << 8:
		p->device_features_sel = val;
		break;
	case VPCI_GFSELECT | 4 << 8:
		p->driver_features_sel = val;
		break;
	case VPCI_GF | 4 << 8:
		vtr_set_driver_features(&p->tr, p->driver_features_sel, val);
		break;
	case VPCI_MSIX_CONFIG | 2 << 8:
		p->config_vector = vpci_valid_vector(p, val);
		vpci_msix_changed(p);
		break;
	case VPCI_STATUS | 1 << 8:
		vtr_set_status(&p->tr, val);
		if (val == 0) {
			vpci_reset_vectors(p);
			vpci_msix_changed(p);
		}
		break;
	case VPCI_Q_SELECT | 2 << 8:
		p->queue_sel = val;
		break;
	case VPCI_Q_SIZE | 2 << 8:
		if (q_open)
			vtr_set_queue_num(&p->tr, p->queue_sel, val);
		break;
	case VPCI_Q_MSIX | 2 << 8:
		if (q) {
			p->queue_vector[p->queue_sel] = vpci_valid_vector(p, val);
			vpci_msix_changed(p);
		}
		break;
	case VPCI_Q_ENABLE | 2 << 8:
		if (q && val == 1)
			vtr_enable_queue(&p->tr, p->queue_sel);
		break;
	case VPCI_Q_DESCLO | 4 << 8:
	case VPCI_Q_DESCHI | 4 << 8:
		if (q_open)
			vtr_set_addr_half(&q->desc, off == VPCI_Q_DESCHI, val);
		break;
	case VPCI_Q_AVAILLO | 4 << 8:
	case VPCI_Q_AVAILHI | 4 << 8:
		if (q_open)
			vtr_set_addr_half(&q->avail, off == VPCI_Q_AVAILHI, val);
		break;
	case VPCI_Q_USEDLO | 4 << 8:
	case VPCI_Q_USEDHI | 4 << 8:
		if (q_open)
			vtr_set_addr_half(&q->used, off == VPCI_Q_USEDHI, val);
		break;
	default:
		break;
	}
}

static uint32_t *vpci_msix_word(struct vpci *p, uint32_t off)
{
	uint32_t v = off / sizeof(struct vpci_msix_entry);

	if (v >= p->nvectors)
		return NULL;
	return (uint32_t *)&p->msix[v] + (off % sizeof(struct vpci_msix_entry)) / 4;
}

static uint32_t vpci_bar_read_locked(struct vpci *p, uint32_t off, unsigned size)
{
	uint32_t val = 0;

	if (off < VPCI_COMMON_OFF + VPCI_COMMON_SIZE)
		return vpci_common_read(p, off - VPCI_COMMON_OFF, size);
	if (off == VPCI_ISR_OFF && size == 1) {
		/* As with virtio-mmio: queue interrupts bypass the transport
		 * (irqfd), so an INTx handler is always told to look at its
		 * rings. Reading clears the config bit. */
		return VIRTIO_ISR_QUEUE | (vtr_read_isr(&p->tr) & VIRTIO_ISR_CONFIG);
	}
	if (off >= VPCI_DEVICE_OFF && off < VPCI_NOTIFY_OFF && size <= 4) {
		vtr_read_config(&p->tr, off - VPCI_DEVICE_OFF, &val, size);
		return val;
	}
	if (off >= VPCI_MSIX_TABLE_OFF && off < VPCI_MSIX_PBA_OFF && size == 4 && !(off & 3)) {
		uint32_t *w = vpci_msix_word(p, off - VPCI_MSIX_TABLE_OFF);

		return w ? *w : 0;
	}
	return 0;
}

static void vpci_bar_write_locked(struct vpci *p, uint32_t off, unsigned size, uint32_t val)
{
	if (off < VPCI_COMMON_OFF + VPCI_COMMON_SIZE) {
		vpci_common_write(p, off - VPCI_COMMON_OFF, size, val);
	} else if (off >= VPCI_DEVICE_OFF && off < VPCI_NOTIFY_OFF && size <= 4) {
		vtr_write_config(&p->tr, off - VPCI_DEVICE_OFF, &val, size);
	} else if (off >= VPCI_NOTIFY_OFF && off < VPCI_NOTIFY_OFF + 0x1000) {
		vtr_notify(&p->tr, (off - VPCI_NOTIFY_OFF) / VPCI_NOTIFY_MULTIPLIER);
	} else if (off >= VPCI_MSIX_TABLE_OFF && off < VPCI_MSIX_PBA_OFF && size == 4 && !(off & 3)) {
		uint32_t *w = vpci_msix_word(p, off - VPCI_MSIX_TABLE_OFF);

		if (w) {
			*w = val;
			vpci_msix_changed(p);
		}
	}
}

/* The VIRTIO_PCI_CAP_PCI_CFG window: an access to its data field is an
 * access to BAR0 at the offset and length the driver put in the cap. */
static bool vpci_cfg_window(const struct vpci *p, uint32_t *off, unsigned *len)
{
	uint8_t bar = pci_cfg_read(&p->cfg, VPCI_CAP_PCI_CFG_AT + 4, 1);

	*off = pci_cfg_read(&p->cfg, VPCI_CAP_PCI_CFG_AT + 8, 4);
	*len = pci_cfg_read(&p->cfg, VPCI_CAP_PCI_CFG_AT + 12, 4);
	return bar == 0 && (*len == 1 || *len == 2 || *len == 4) && *off < VPCI_BAR_SIZE;
}

uint32_t vpci_bar_read(struct vpci *p, uint32_t off, unsigned size)
{
	uint32_t val;

	pthread_mutex_lock(&p->lock);
	val = vpci_bar_read_locked(p, off, size);
	pthread_mutex_unlock(&p->lock);
	return val;
}

void vpci_bar_write(struct vpci *p, uint32_t off, unsigned size, uint32_t val)
{
	pthread_mutex_lock(&p->lock);
	vpci_bar_write_locked(p, off, size, val);
	pthread_mutex_unlock(&p->lock);
}

static uint32_t vpci_cfg_read(void *fn, uint32_t off, unsigned size)
{
	struct vpci *p = fn;
	uint32_t bar_off, val;
	unsigned len;

	pthread_mutex_lock(&p->lock);
	if (off == VPCI_PCI_CFG_DATA && vpci_cfg_window(p, &bar_off, &len))
		val = vpci_bar_read_locked(p, bar_off, len);
	else
		val = pci_cfg_read(&p->cfg, off, size);
	pthread_mutex_unlock(&p->lock);
	return val;
}

void vpci_reset(struct vpci *p)
{
	uint32_t old_bar;

	pthread_mutex_lock(&p->lock);
	old_bar = vpci_bar0(p);
	vtr_set_status(&p->tr, 0);
	vpci_power_on(p);
	if (old_bar && p->host && p->host->bar_changed)
		p->host->bar_changed(p->host_ctx, p);
	vpci_msix_changed(p);
	pthread_mutex_unlock(&p->lock);
}

static void vpci_cfg_write_locked(struct vpci *p, uint32_t off, unsigned size, uint32_t val)
{
	uint32_t old_bar = vpci_bar0(p), bar_off;
	uint16_t old_msix = pci_cfg_read(&p->cfg, VPCI_MSIX_CTRL, 2);
	unsigned len;

	if (off == VPCI_PCI_CFG_DATA && vpci_cfg_window(p, &bar_off, &len)) {
		vpci_bar_write_locked(p, bar_off, len, val);
		return;
	}
	pci_cfg_write(&p->cfg, off, size, val);
	if (vpci_bar0(p) != old_bar && p->host && p->host->bar_changed)
		p->host->bar_changed(p->host_ctx, p);
	if (pci_cfg_read(&p->cfg, VPCI_MSIX_CTRL, 2) != old_msix)
		vpci_msix_changed(p);
}

static void vpci_cfg_write(void *fn, uint32_t off, unsigned size, uint32_t val)
{
	struct vpci *p = fn;

	pthread_mutex_lock(&p->lock);
	vpci_cfg_write_locked(p, off, size, val);
	pthread_mutex_unlock(&p->lock);
}

const struct pci_func_ops vpci_func_ops = {
	.cfg_read = vpci_cfg_read,
	.cfg_write = vpci_cfg_write,
};

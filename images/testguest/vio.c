#include "vio.h"

/* virtio-mmio registers (virtio 1.2 4.2.2) */
#define MMIO_MAGIC 0x000
#define MMIO_VERSION 0x004
#define MMIO_DEVICE_ID 0x008
#define MMIO_DEV_FEATURES 0x010
#define MMIO_DEV_FEATURES_SEL 0x014
#define MMIO_DRV_FEATURES 0x020
#define MMIO_DRV_FEATURES_SEL 0x024
#define MMIO_QUEUE_SEL 0x030
#define MMIO_QUEUE_NUM_MAX 0x034
#define MMIO_QUEUE_NUM 0x038
#define MMIO_QUEUE_READY 0x044
#define MMIO_QUEUE_NOTIFY 0x050
#define MMIO_STATUS 0x070
#define MMIO_QUEUE_DESC 0x080
#define MMIO_QUEUE_DRIVER 0x090
#define MMIO_QUEUE_DEVICE 0x0a0
#define MMIO_CONFIG 0x100

/* virtio-pci common configuration (virtio 1.2 4.1.4.3) */
#define PCI_DFSELECT 0
#define PCI_DF 4
#define PCI_GFSELECT 8
#define PCI_GF 12
#define PCI_STATUS 20
#define PCI_Q_SELECT 22
#define PCI_Q_SIZE 24
#define PCI_Q_ENABLE 28
#define PCI_Q_NOFF 30
#define PCI_Q_DESC 32
#define PCI_Q_DRIVER 40
#define PCI_Q_DEVICE 48

#define STATUS_ACK 1
#define STATUS_DRIVER 2
#define STATUS_DRIVER_OK 4
#define STATUS_FEATURES_OK 8

#define DESC_F_NEXT 1
#define DESC_F_WRITE 2

/* Polls of the used ring before a request counts as lost (~seconds here,
 * where guest kernel code runs at ~2M instructions/s). */
#define VIO_POLL_LIMIT 2000000

static uint8_t vio_rd8(uint64_t a)   { return *(volatile uint8_t *)(uintptr_t)a; }
static uint16_t vio_rd16(uint64_t a) { return *(volatile uint16_t *)(uintptr_t)a; }
static uint32_t vio_rd32(uint64_t a) { return *(volatile uint32_t *)(uintptr_t)a; }
static void vio_wr8(uint64_t a, uint8_t v)   { *(volatile uint8_t *)(uintptr_t)a = v; }
static void vio_wr16(uint64_t a, uint16_t v) { *(volatile uint16_t *)(uintptr_t)a = v; }
static void vio_wr32(uint64_t a, uint32_t v) { *(volatile uint32_t *)(uintptr_t)a = v; }

static void vio_wr64(uint64_t a, uint64_t v)
{
	vio_wr32(a, (uint32_t)v);
	vio_wr32(a + 4, (uint32_t)(v >> 32));
}

static uint32_t vio_pci_cfg32(unsigned slot, unsigned off)
{
	tg_outl(0xcf8, 0x80000000u | slot << 11 | (off & 0xfc));
	return tg_inl(0xcfc);
}

static void vio_pci_cfg_write32(unsigned slot, unsigned off, uint32_t v)
{
	tg_outl(0xcf8, 0x80000000u | slot << 11 | (off & 0xfc));
	tg_outl(0xcfc, v);
}

static uint8_t vio_pci_cfg8(unsigned slot, unsigned off)
{
	return (uint8_t)(vio_pci_cfg32(slot, off) >> (8 * (off & 3)));
}

/* Fills the structure addresses from the virtio vendor capabilities. As
 * Linux's virtio_pci does, refuses a structure of length 0; the
 * device-specific one is optional (virtio-rng has none). */
static bool vio_pci_caps(struct vio_dev *d)
{
	unsigned at = vio_pci_cfg8(d->slot, 0x34);
	uint64_t bar = vio_pci_cfg32(d->slot, 0x10) & ~0xfu;

	d->base = bar;
	for (int n = 0; at && n < 16; n++) {
		uint8_t type = vio_pci_cfg8(d->slot, at + 3);
		uint64_t where = bar + vio_pci_cfg32(d->slot, at + 8);

		if (vio_pci_cfg8(d->slot, at) == 0x09 && vio_pci_cfg8(d->slot, at + 4) == 0) {
			if (type >= 1 && type <= 4 && !vio_pci_cfg32(d->slot, at + 12)) {
				tg_printf("TG: FAIL virtio: PCI 00:%x.0 capability type %u has length 0\n",
					  d->slot, type);
				return false;
			}
			if (type == 1)
				d->common = where;
			else if (type == 2) {
				d->notify = where;
				d->notify_mult = vio_pci_cfg32(d->slot, at + 16);
			} else if (type == 4)
				d->devcfg = where;
		}
		at = vio_pci_cfg8(d->slot, at + 1);
	}
	return bar && d->common && d->notify;
}

static unsigned vio_find_pci(struct vio_dev *devs, unsigned max)
{
	unsigned n = 0;

	for (unsigned slot = 0; slot < 32 && n < max; slot++) {
		uint32_t id = vio_pci_cfg32(slot, 0);
		struct vio_dev *d = &devs[n];

		if ((id & 0xffff) != 0x1af4 || (id >> 16) < 0x1040 || (id >> 16) > 0x107f)
			continue;
		memset(d, 0, sizeof(*d));
		d->kind = VIO_PCI;
		d->slot = slot;
		d->device_id = (id >> 16) - 0x1040;
		/* Memory decoding on, bus mastering on. */
		vio_pci_cfg_write32(slot, 0x04, vio_pci_cfg32(slot, 0x04) | 0x6);
		if (!vio_pci_caps(d)) {
			tg_printf("TG: FAIL virtio: PCI 00:%x.0 lacks its virtio capabilities\n", slot);
			continue;
		}
		n++;
	}
	return n;
}

static bool vio_parse_hex(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;

	if (len < 3 || s[0] != '0' || s[1] != 'x')
		return false;
	for (size_t i = 2; i < len; i++) {
		char c = s[i];
		unsigned dgt = c >= '0' && c <= '9' ? (unsigned)(c - '0') :
			       c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10) : 16;

		if (dgt > 15)
			return false;
		v = v << 4 | dgt;
	}
	*out = v;
	return true;
}

/* "virtio_mmio.device=<size>@<base>:<irq>" words, as Linux reads them. */
static unsigned vio_find_mmio(const struct tg *t, struct vio_dev *devs, unsigned max)
{
	static const char key[] = "virtio_mmio.device=";
	const char *p = t->cmdline;
	unsigned n = 0;

	while (*p && n < max) {
		const char *w, *at, *colon;
		size_t len;
		uint64_t base;

		w = tg_next_word(&p, &len);
		if (len <= sizeof(key) - 1 || memcmp(w, key, sizeof(key) - 1))
			continue;
		for (at = w; at < w + len && *at != '@'; at++)
			;
		for (colon = at; colon < w + len && *colon != ':'; colon++)
			;
		if (at == w + len || colon == w + len || !vio_parse_hex(at + 1, (size_t)(colon - at - 1), &base))
			continue;
		if (vio_rd32(base + MMIO_MAGIC) != 0x74726976 || vio_rd32(base + MMIO_VERSION) != 2) {
			tg_printf("TG: FAIL virtio: no virtio-mmio v2 device at 0x%lx\n", base);
			continue;
		}
		memset(&devs[n], 0, sizeof(devs[n]));
		devs[n].kind = VIO_MMIO;
		devs[n].base = base;
		devs[n].device_id = vio_rd32(base + MMIO_DEVICE_ID);
		n++;
	}
	return n;
}

unsigned vio_find(const struct tg *t, struct vio_dev *devs, unsigned max)
{
	unsigned n = vio_find_pci(devs, max);

	return n + vio_find_mmio(t, devs + n, max - n);
}

const char *vio_kind_name(const struct vio_dev *d)
{
	return d->kind == VIO_PCI ? "pci" : "mmio";
}

uint8_t vio_status(struct vio_dev *d)
{
	return d->kind == VIO_PCI ? vio_rd8(d->common + PCI_STATUS) : (uint8_t)vio_rd32(d->base + MMIO_STATUS);
}

static void vio_set_status(struct vio_dev *d, uint8_t s)
{
	if (d->kind == VIO_PCI)
		vio_wr8(d->common + PCI_STATUS, s);
	else
		vio_wr32(d->base + MMIO_STATUS, s);
}

static uint32_t vio_features_word(struct vio_dev *d, uint32_t sel)
{
	if (d->kind == VIO_PCI) {
		vio_wr32(d->common + PCI_DFSELECT, sel);
		return vio_rd32(d->common + PCI_DF);
	}
	vio_wr32(d->base + MMIO_DEV_FEATURES_SEL, sel);
	return vio_rd32(d->base + MMIO_DEV_FEATURES);
}

static void vio_set_features_word(struct vio_dev *d, uint32_t sel, uint32_t v)
{
	if (d->kind == VIO_PCI) {
		vio_wr32(d->common + PCI_GFSELECT, sel);
		vio_wr32(d->common + PCI_GF, v);
	} else {
		vio_wr32(d->base + MMIO_DRV_FEATURES_SEL, sel);
		vio_wr32(d->base + MMIO_DRV_FEATURES, v);
	}
}

int vio_init(struct vio_dev *d, uint64_t wanted)
{
	uint64_t offered;

	vio_set_status(d, 0);
	vio_set_status(d, STATUS_ACK);
	vio_set_status(d, STATUS_ACK | STATUS_DRIVER);
	offered = vio_features_word(d, 0) | (uint64_t)vio_features_word(d, 1) << 32;
	d->features = offered & (wanted | 1ULL << VIO_F_VERSION_1);
	vio_set_features_word(d, 0, (uint32_t)d->features);
	vio_set_features_word(d, 1, (uint32_t)(d->features >> 32));
	vio_set_status(d, STATUS_ACK | STATUS_DRIVER | STATUS_FEATURES_OK);
	return vio_status(d) & STATUS_FEATURES_OK ? 0 : -1;
}

/* One page per queue from a static pool: descriptors, then avail, then used. */
#define VIO_MAX_QUEUES 16
static uint8_t vio_ring_pool[VIO_MAX_QUEUES][4096] __attribute__((aligned(4096)));
static unsigned vio_rings_used;

int vio_queue_init(struct vio_dev *d, struct vio_queue *q, uint16_t index)
{
	uint8_t *page;
	uint32_t max;

	if (vio_rings_used == VIO_MAX_QUEUES)
		return -1;
	page = vio_ring_pool[vio_rings_used++];
	memset(page, 0, 4096);
	memset(q, 0, sizeof(*q));
	q->index = index;
	q->size = VIO_QUEUE_SIZE;
	q->desc = (struct vio_desc *)page;
	q->avail = (volatile uint16_t *)(page + 0x400);
	q->used = (volatile uint16_t *)(page + 0x800);
	if (d->kind == VIO_PCI) {
		vio_wr16(d->common + PCI_Q_SELECT, index);
		max = vio_rd16(d->common + PCI_Q_SIZE);
		if (max < VIO_QUEUE_SIZE)
			return -1;
		vio_wr16(d->common + PCI_Q_SIZE, VIO_QUEUE_SIZE);
		vio_wr64(d->common + PCI_Q_DESC, (uintptr_t)q->desc);
		vio_wr64(d->common + PCI_Q_DRIVER, (uintptr_t)q->avail);
		vio_wr64(d->common + PCI_Q_DEVICE, (uintptr_t)q->used);
		q->notify_addr = d->notify + (uint64_t)vio_rd16(d->common + PCI_Q_NOFF) * d->notify_mult;
		vio_wr16(d->common + PCI_Q_ENABLE, 1);
		return vio_rd16(d->common + PCI_Q_ENABLE) == 1 ? 0 : -1;
	}
	vio_wr32(d->base + MMIO_QUEUE_SEL, index);
	max = vio_rd32(d->base + MMIO_QUEUE_NUM_MAX);
	if (max < VIO_QUEUE_SIZE)
		return -1;
	vio_wr32(d->base + MMIO_QUEUE_NUM, VIO_QUEUE_SIZE);
	vio_wr64(d->base + MMIO_QUEUE_DESC, (uintptr_t)q->desc);
	vio_wr64(d->base + MMIO_QUEUE_DRIVER, (uintptr_t)q->avail);
	vio_wr64(d->base + MMIO_QUEUE_DEVICE, (uintptr_t)q->used);
	q->notify_addr = d->base + MMIO_QUEUE_NOTIFY;
	vio_wr32(d->base + MMIO_QUEUE_READY, 1);
	return vio_rd32(d->base + MMIO_QUEUE_READY) == 1 ? 0 : -1;
}

void vio_driver_ok(struct vio_dev *d)
{
	vio_set_status(d, STATUS_ACK | STATUS_DRIVER | STATUS_FEATURES_OK | STATUS_DRIVER_OK);
}

uint16_t vio_offer(struct vio_queue *q, const struct vio_buf *bufs, unsigned n)
{
	uint16_t head = q->next_desc;

	for (unsigned i = 0; i < n; i++) {
		struct vio_desc *dd = &q->desc[(head + i) % q->size];

		dd->addr = (uintptr_t)bufs[i].addr;
		dd->len = bufs[i].len;
		dd->flags = (uint16_t)((bufs[i].writable ? DESC_F_WRITE : 0) | (i + 1 < n ? DESC_F_NEXT : 0));
		dd->next = (uint16_t)((head + i + 1) % q->size);
	}
	q->next_desc = (uint16_t)((head + n) % q->size);
	q->avail[2 + q->avail_idx % q->size] = head;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	q->avail[1] = ++q->avail_idx;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return head;
}

void vio_reoffer(struct vio_queue *q, uint16_t head)
{
	q->avail[2 + q->avail_idx % q->size] = head;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	q->avail[1] = ++q->avail_idx;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

void vio_kick(struct vio_dev *d, struct vio_queue *q)
{
	if (d->kind == VIO_PCI)
		vio_wr16(q->notify_addr, q->index);
	else
		vio_wr32(q->notify_addr, q->index);
}

int64_t vio_poll(struct vio_queue *q, uint16_t *id)
{
	const volatile uint32_t *elem;

	if (q->used[1] == q->used_seen)
		return -1;
	elem = (const volatile uint32_t *)(q->used + 2) + 2 * (q->used_seen % q->size);
	q->used_seen++;
	if (id)
		*id = (uint16_t)elem[0];
	return elem[1];
}

int64_t vio_wait(struct vio_queue *q, uint16_t *id)
{
	for (unsigned i = 0; i < VIO_POLL_LIMIT; i++) {
		int64_t len = vio_poll(q, id);

		if (len >= 0)
			return len;
		tg_pause();
	}
	return -1;
}

int64_t vio_request(struct vio_dev *d, struct vio_queue *q, const struct vio_buf *bufs, unsigned n)
{
	uint16_t head, id;
	int64_t len;

	if (n == 0 || n > q->size)
		return -1;
	head = vio_offer(q, bufs, n);
	vio_kick(d, q);
	len = vio_wait(q, &id);
	return len >= 0 && id == head ? len : -1;
}

void vio_config_read(struct vio_dev *d, uint32_t off, void *buf, uint32_t len)
{
	uint8_t *b = buf;

	for (uint32_t i = 0; i < len; i++)
		b[i] = d->kind == VIO_PCI ? vio_rd8(d->devcfg + off + i) : vio_rd8(d->base + MMIO_CONFIG + off + i);
}

unsigned vio_seed_message(char *p, const char *prefix, uint8_t seed, bool nl)
{
	unsigned n = 0;
	char digits[3];
	int nd = 0;

	while (*prefix)
		p[n++] = *prefix++;
	memcpy(p + n, " seed=", 6);
	n += 6;
	do {
		digits[nd++] = (char)('0' + seed % 10);
		seed /= 10;
	} while (seed);
	while (nd)
		p[n++] = digits[--nd];
	if (nl)
		p[n++] = '\n';
	return n;
}

/* Finds the virtio devices on both transports and checks each one the test
 * guest knows; the count must match tg.virtio=N. */
int tg_check_virtio(struct tg *t)
{
	struct vio_dev devs[VIO_MAX_DEVS];
	unsigned n = vio_find(t, devs, VIO_MAX_DEVS);
	int failed = 0;

	if (!t->want_virtio) {
		tg_printf("TG: virtio devices=%u (not checked) ok\n", n);
		return 0;
	}
	if (n != t->want_virtio) {
		tg_printf("TG: FAIL virtio: found %u devices, expected %u\n", n, t->want_virtio);
		return -1;
	}
	for (unsigned i = 0; i < n; i++) {
		switch (devs[i].device_id) {
		case 2:
			failed |= vio_check_blk(t, &devs[i]);
			break;
		case 4:
			failed |= vio_check_rng(t, &devs[i]);
			break;
		case 1:
			failed |= vio_check_net(t, &devs[i]);
			break;
		case 3:
			failed |= vio_check_console(t, &devs[i]);
			break;
		default:
			tg_printf("TG: FAIL virtio: no check for device type %u on %s\n", devs[i].device_id,
				  vio_kind_name(&devs[i]));
			failed = -1;
		}
	}
	if (failed)
		return -1;
	tg_printf("TG: virtio devices=%u ok\n", n);
	return 0;
}

/*
 * A polling virtio driver for the test guest: finds devices on both
 * transports (PCI bus 0 through 0xCF8/0xCFC; virtio-mmio windows from
 * "virtio_mmio.device=" on the command line), negotiates, sets up 16-entry
 * split queues in the guest's own memory, and waits for used entries by
 * polling (interrupts stay off). Guest addresses equal virtual addresses
 * (identity map).
 */
#ifndef TG_VIO_H
#define TG_VIO_H

#include "tg.h"

#define VIO_MAX_DEVS 8
#define VIO_QUEUE_SIZE 16
#define VIO_F_VERSION_1 32

enum vio_kind { VIO_PCI, VIO_MMIO };

struct vio_dev {
	enum vio_kind kind;
	uint32_t device_id;
	uint64_t base;          /* MMIO window, or BAR0 */
	uint64_t common, notify, devcfg; /* PCI: absolute addresses of the structures */
	uint32_t notify_mult;
	unsigned slot;          /* PCI device number */
	uint64_t features;      /* negotiated */
};

struct vio_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct vio_queue {
	uint16_t index;
	uint16_t size;
	uint16_t avail_idx;     /* next avail ring entry we publish */
	uint16_t used_seen;     /* used entries consumed */
	uint16_t next_desc;     /* next descriptor vio_offer takes */
	uint64_t notify_addr;
	struct vio_desc *desc;
	volatile uint16_t *avail; /* flags, idx, ring[size] */
	volatile uint16_t *used;  /* flags, idx, then {u32 id, u32 len}[size] */
};

/* One buffer of a request: readable by the device unless writable. */
struct vio_buf {
	void *addr;
	uint32_t len;
	bool writable;
};

/* Fills devs with what both transports show; returns how many. */
unsigned vio_find(const struct tg *t, struct vio_dev *devs, unsigned max);
const char *vio_kind_name(const struct vio_dev *d);
/* Resets the device and negotiates VERSION_1 plus the wanted features it
 * offers. 0, or -1 when the device refused FEATURES_OK. */
int vio_init(struct vio_dev *d, uint64_t wanted);
/* Sets up queue index with VIO_QUEUE_SIZE entries. 0 or -1. */
int vio_queue_init(struct vio_dev *d, struct vio_queue *q, uint16_t index);
void vio_driver_ok(struct vio_dev *d);
uint8_t vio_status(struct vio_dev *d);
/* Publishes one chain without notifying; returns its head. Descriptors are
 * taken in turn, so at most VIO_QUEUE_SIZE may be outstanding. */
uint16_t vio_offer(struct vio_queue *q, const struct vio_buf *bufs, unsigned n);
/* Makes the used chain at head available again as it is (a receive buffer
 * handed back keeps its descriptor, so its id still names its buffer). */
void vio_reoffer(struct vio_queue *q, uint16_t head);
void vio_kick(struct vio_dev *d, struct vio_queue *q);
/* Polls for the next used entry: its length (and head in *id), or -1 on timeout. */
int64_t vio_wait(struct vio_queue *q, uint16_t *id);
/* The same without waiting: -1 when nothing is used yet. */
int64_t vio_poll(struct vio_queue *q, uint16_t *id);
/* vio_offer + vio_kick + vio_wait for that chain. */
int64_t vio_request(struct vio_dev *d, struct vio_queue *q, const struct vio_buf *bufs, unsigned n);
/* Reads device config space bytes. */
void vio_config_read(struct vio_dev *d, uint32_t off, void *buf, uint32_t len);

/* Per-device checks (vio_blk.c, vio_rng.c): 0 ok, -1 failed. */
int vio_check_blk(struct tg *t, struct vio_dev *d);
int vio_check_rng(struct tg *t, struct vio_dev *d);
int vio_check_net(struct tg *t, struct vio_dev *d);
int vio_check_console(struct tg *t, struct vio_dev *d);
/* Writes "<prefix> seed=N" (and a newline when nl) at p; returns its length. */
unsigned vio_seed_message(char *p, const char *prefix, uint8_t seed, bool nl);

#endif

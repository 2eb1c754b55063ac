/*
 * What a virtio driver programs, whatever the transport: device status,
 * feature negotiation, queue setup. virtio-mmio and virtio-pci map their
 * registers onto this; neither knows which device it carries, and the device
 * model (struct vdev) never sees a register.
 *
 * In-process, each queue's kick and call fds are eventfds created here; the
 * VM glue hands them to KVM (ioeventfd on the notify address, irqfd on the
 * interrupt), so guest notifications and interrupts bypass the vCPU thread.
 * Locking: called from the vCPU thread that took the register access; the
 * caller serialises accesses to one device.
 */
#ifndef CVMM_VIRTIO_TRANSPORT_H
#define CVMM_VIRTIO_TRANSPORT_H

#include <stdbool.h>
#include <stdint.h>

#include "cvmm/vdev.h"

#define VIRTIO_STATUS_ACKNOWLEDGE 1
#define VIRTIO_STATUS_DRIVER 2
#define VIRTIO_STATUS_DRIVER_OK 4
#define VIRTIO_STATUS_FEATURES_OK 8
#define VIRTIO_STATUS_DEVICE_NEEDS_RESET 64
#define VIRTIO_STATUS_FAILED 128

/* ISR / InterruptStatus bits */
#define VIRTIO_ISR_QUEUE 1
#define VIRTIO_ISR_CONFIG 2

struct vtr_queue {
	uint16_t num;        /* size the driver chose (defaults to the maximum) */
	bool enabled;
	bool started;
	uint64_t desc, avail, used; /* guest addresses */
};

struct vtr {
	struct vdev *dev;
	uint8_t status;
	uint64_t driver_features;
	uint32_t config_generation;
	uint8_t isr;          /* pending VIRTIO_ISR_* bits */
	int config_fd;        /* eventfd raising the config-change interrupt */
	bool ring_broken;     /* a queue's ring broke: NEEDS_RESET until reset */
	struct vtr_queue *queues;
	void (*watch)(void *opaque);  /* vtr_set_watch */
	void *watch_opaque;
};

/* Takes dev (whose mem must be set) and creates the queue and config eventfds. 0 or -errno. */
int vtr_init(struct vtr *t, struct vdev *dev);
/* Stops the queues and closes the eventfds; the device itself is the caller's. */
void vtr_destroy(struct vtr *t);

/* fn(opaque) is called, from whichever thread made the change, when what
 * the driver reads changed outside a register access (a config change, a
 * broken ring), before the interrupt that tells the driver; NULL to stop.
 * Set before the device runs. */
void vtr_set_watch(struct vtr *t, void (*fn)(void *opaque), void *opaque);

/* Driver writes to the status field: 0 resets the device; FEATURES_OK is kept
 * only if the negotiated features are acceptable; DRIVER_OK starts the
 * enabled queues. */
void vtr_set_status(struct vtr *t, uint8_t status);
/* The device status the driver reads (NEEDS_RESET once a ring broke). */
uint8_t vtr_status(const struct vtr *t);
uint32_t vtr_device_features(const struct vtr *t, uint32_t sel);
/* One 32-bit half of the driver's features; ignored after FEATURES_OK. */
void vtr_set_driver_features(struct vtr *t, uint32_t sel, uint32_t val);
/* The driver enabled queue q with the addresses and size set in t->queues[q]:
 * checked here; a queue the driver got wrong puts the device in
 * DEVICE_NEEDS_RESET. */
void vtr_enable_queue(struct vtr *t, unsigned q);
/* Sets the queue size the driver asked for, if valid (power of two, at most
 * the device maximum); returns whether it was taken. */
bool vtr_set_queue_num(struct vtr *t, unsigned q, uint32_t num);
/* Sets the low or high 32 bits of a queue address register. */
void vtr_set_addr_half(uint64_t *addr, bool high, uint32_t val);
/* A notification that did not go through an ioeventfd. */
void vtr_notify(struct vtr *t, unsigned q);
/* Reads and clears the pending ISR bits. Safe against a concurrent config
 * change from the device's thread (atomic, like the generation count). */
uint8_t vtr_read_isr(struct vtr *t);
/* The pending ISR bits, and clearing some (virtio-mmio's InterruptACK). */
uint8_t vtr_isr(struct vtr *t);
void vtr_ack_isr(struct vtr *t, uint8_t bits);
/* The config generation the driver reads; a config change bumps it. */
uint32_t vtr_config_generation(struct vtr *t);
/* Config space access; out-of-range bytes read as zero and writes are dropped. */
void vtr_read_config(struct vtr *t, uint32_t off, void *buf, uint32_t len);
void vtr_write_config(struct vtr *t, uint32_t off, const void *buf, uint32_t len);

#endif

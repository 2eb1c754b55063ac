/*
 * virtio-mmio, version 2 (modern only), virtio 1.2 section 4.2. One window of
 * VMMIO_WINDOW_SIZE bytes per device and one interrupt line; Linux finds it
 * through "virtio_mmio.device=<size>@<base>:<irq>" on its command line
 * (virtio_vm_mmio_cmdline), or a device tree node later.
 */
#ifndef CVMM_VIRTIO_MMIO_H
#define CVMM_VIRTIO_MMIO_H

#include <stddef.h>
#include <stdint.h>

#include "cvmm/virtio_transport.h"

#define VMMIO_WINDOW_SIZE 0x1000
#define VMMIO_QUEUE_NOTIFY 0x050
#define VMMIO_INTERRUPT_ACK 0x064
#define VMMIO_CONFIG 0x100

struct vmmio {
	struct vtr tr;
	uint64_t base;
	unsigned irq;
	uint32_t device_features_sel;
	uint32_t driver_features_sel;
	uint32_t queue_sel;
};

int vmmio_init(struct vmmio *m, struct vdev *dev, uint64_t base, unsigned irq);
void vmmio_destroy(struct vmmio *m);
/* A machine reset: the device reset (as a driver's status 0) and the
 * selector registers cleared. */
void vmmio_reset(struct vmmio *m);
/* Register access at offset off of the window; size is 1, 2 or 4 (registers
 * below VMMIO_CONFIG take only 4-byte accesses, others read as 0). */
uint32_t vmmio_read(struct vmmio *m, uint64_t off, unsigned size);
void vmmio_write(struct vmmio *m, uint64_t off, unsigned size, uint32_t val);

/*
 * The window as 4-byte reads see it (little-endian words, config space
 * included), for a read-only mapping that spares the guest an exit per
 * register read. Each word is stored atomically, so a vCPU reading the
 * mapped copy meanwhile sees every word old or new.
 * vmmio_render: the whole window, with the register lock held (after a write).
 * vmmio_render_device_side: only what changes without a register access
 * (status, interrupt status, config generation and space), from the thread
 * that changed it (vtr_set_watch), with or without the lock.
 */
void vmmio_render(struct vmmio *m, uint32_t win[VMMIO_WINDOW_SIZE / 4]);
void vmmio_render_device_side(struct vmmio *m, uint32_t win[VMMIO_WINDOW_SIZE / 4]);

#endif

#include <errno.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cvmm/evfd.h"
#include "cvmm/log.h"
#include "cvmm/virtio_vm.h"

/* Interrupt lines the arch leaves free for virtio-mmio (arch.h). */
static const unsigned virtio_vm_mmio_irqs[] = ARCH_VIRTIO_MMIO_IRQS;

/* The firmware tables (x86 MCFG, arm64 device tree) announce one bus of ECAM. */
_Static_assert(PCI_ECAM_BUS_SIZE == ARCH_PCI_ECAM_SIZE, "the firmware tables announce one bus of ECAM");

/* The MMIO notify register is shared by all queues: KVM tells them apart by
 * the value written (the queue index). */
static int virtio_vm_ioeventfd_match(struct vm *vm, uint64_t addr, uint32_t value, int fd, bool add)
{
	struct kvm_ioeventfd io = {
		.addr = addr, .len = 4, .fd = fd, .datamatch = value,
		.flags = KVM_IOEVENTFD_FLAG_DATAMATCH | (add ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN),
	};

	return ioctl(vm->vm_fd, KVM_IOEVENTFD, &io) < 0 ? -errno : 0;
}

/* A vhost-user back-end holds the call fds too. */
static void virtio_vm_signal(int fd)
{
	(void)evfd_signal(fd);
}

/* Register blocks take accesses of 1, 2 or 4 bytes under lock (NULL: the
 * block locks itself); wider ones read as absent (fill) and are dropped. */
struct virtio_vm_regs {
	uint32_t (*read)(void *obj, uint64_t off, unsigned len);
	void (*write)(void *obj, uint64_t off, unsigned len, uint32_t val);
};

static void virtio_vm_access(const struct virtio_vm_regs *regs, void *obj, pthread_mutex_t *lock,
			       uint64_t off, uint8_t *data, unsigned len, bool is_write, uint8_t fill)
{
	uint32_t val = 0;

	if (len > 4) {
		if (!is_write)
			memset(data, fill, len);
		return;
	}
	if (lock)
		pthread_mutex_lock(lock);
	if (is_write) {
		memcpy(&val, data, len);
		regs->write(obj, off, len, val);
	} else {
		val = regs->read(obj, off, len);
		memcpy(data, &val, len);
	}
	if (lock)
		pthread_mutex_unlock(lock);
}

/* ---- virtio-mmio ---- */

/* Called with d->lock held. */
static uint32_t virtio_vm_mmio_read(void *obj, uint64_t off, unsigned len)
{
	struct virtio_vm_dev *d = obj;

	return vmmio_read(&d->mmio, off, len);
}

/* With d->lock held, after a change a register access or a reset made.
 * Renders are ordered by image_lock, each after the change it shows: the
 * last one shows the latest state. */
static void virtio_vm_mmio_refresh(struct virtio_vm_dev *d)
{
	if (!d->image)
		return;
	pthread_mutex_lock(&d->image_lock);
	vmmio_render(&d->mmio, d->image);
	pthread_mutex_unlock(&d->image_lock);
}

static void virtio_vm_mmio_write(void *obj, uint64_t off, unsigned len, uint32_t val)
{
	struct virtio_vm_dev *d = obj;

	vmmio_write(&d->mmio, off, len, val);
	virtio_vm_mmio_refresh(d);
}

/* vtr watch: a config change or a broken ring, on the thread that made it,
 * before the interrupt (d->lock may be held by a vCPU waiting for that
 * thread: not taken here). */
static void virtio_vm_mmio_changed(void *opaque)
{
	struct virtio_vm_dev *d = opaque;

	pthread_mutex_lock(&d->image_lock);
	vmmio_render_device_side(&d->mmio, d->image);
	pthread_mutex_unlock(&d->image_lock);
}

static const struct virtio_vm_regs virtio_vm_mmio_regs = { virtio_vm_mmio_read, virtio_vm_mmio_write };

static void virtio_vm_mmio_access(void *opaque, uint64_t off, uint8_t *data, unsigned len, bool is_write)
{
	struct virtio_vm_dev *d = opaque;

	virtio_vm_access(&virtio_vm_mmio_regs, d, &d->lock, off, data, len, is_write, 0);
}

/*
 * Linux reads InterruptStatus and writes InterruptACK on every interrupt of
 * a virtio-mmio device, each an exit to this process. Reads go to a
 * read-only copy of the window instead (vmmio_render), kept current after
 * every change; the queue bit's ACK, which changes nothing (the bit always
 * reads as set), ends in KVM at an eventfd nobody reads. Where the copy
 * cannot be mapped, reads exit as before.
 */
static int virtio_vm_mmio_fast_path(struct virtio_vm *h, struct virtio_vm_dev *d, uint64_t base)
{
	int err;

	d->ack_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (d->ack_fd < 0)
		return -errno;
	err = virtio_vm_ioeventfd_match(h->vm, base + VMMIO_INTERRUPT_ACK, VIRTIO_ISR_QUEUE, d->ack_fd, true);
	if (err || !ARCH_COHERENT_DEVICE_READS)
		return err;
	d->image = mmap(NULL, VMMIO_WINDOW_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (d->image == MAP_FAILED) {
		d->image = NULL;
		return -errno;
	}
	vmmio_render(&d->mmio, d->image);
	err = vm_map_readonly(h->vm, VM_DEVICE_SLOT_BASE + h->nmmio, base, d->image, VMMIO_WINDOW_SIZE);
	if (err) {
		munmap(d->image, VMMIO_WINDOW_SIZE);
		d->image = NULL;
		if (err != -EOPNOTSUPP)
			return err;
		log_debug("%s: no read-only memory slots here: register reads exit", d->id);
		return 0;
	}
	vtr_set_watch(&d->mmio.tr, virtio_vm_mmio_changed, d);
	return 0;
}

static void virtio_vm_mmio_destroy(struct virtio_vm_dev *d)
{
	vmmio_destroy(&d->mmio);
	if (d->image)
		munmap(d->image, VMMIO_WINDOW_SIZE);
	if (d->ack_fd >= 0)
		close(d->ack_fd);
	pthread_mutex_destroy(&d->image_lock);
}

int virtio_vm_mmio_slot(unsigned i, uint64_t *base, unsigned *irq)
{
	if (i >= sizeof(virtio_vm_mmio_irqs) / sizeof(virtio_vm_mmio_irqs[0]))
		return -ENOSPC;
	*base = VIRTIO_VM_MMIO_BASE + (uint64_t)i * VMMIO_WINDOW_SIZE;
	*irq = virtio_vm_mmio_irqs[i];
	return 0;
}

int virtio_vm_mmio_cmdline(unsigned n, char *buf, size_t len)
{
	size_t used = 0;

	buf[0] = 0;
	if (!ARCH_VIRTIO_MMIO_ON_CMDLINE)
		return n <= sizeof(virtio_vm_mmio_irqs) / sizeof(virtio_vm_mmio_irqs[0]) ? 0 : -ENOSPC;
	for (unsigned i = 0; i < n; i++) {
		uint64_t base;
		unsigned irq;
		int w;

		if (virtio_vm_mmio_slot(i, &base, &irq))
			return -ENOSPC;
		w = snprintf(buf + used, len - used, "%svirtio_mmio.device=%uK@0x%llx:%u", i ? " " : "",
			     VMMIO_WINDOW_SIZE / 1024, (unsigned long long)base, irq);
		if (w < 0 || (size_t)w >= len - used)
			return -ENOSPC;
		used += (size_t)w;
	}
	return 0;
}

static int virtio_vm_add_mmio(struct virtio_vm *h, struct virtio_vm_dev *d)
{
	struct vdev *dev = d->dev;
	uint64_t base;
	int err = virtio_vm_mmio_slot(h->nmmio, &base, &d->gsi[0]);

	if (err)
		return err;
	d->ack_fd = -1;
	pthread_mutex_init(&d->image_lock, NULL);
	err = vmmio_init(&d->mmio, dev, base, d->gsi[0]);
	if (err) {
		pthread_mutex_destroy(&d->image_lock);
		return err;
	}
	for (unsigned q = 0; q < dev->num_queues && !err; q++) {
		err = virtio_vm_ioeventfd_match(h->vm, base + VMMIO_QUEUE_NOTIFY, q, dev->vqs[q].kick_fd, true);
		if (!err)
			err = vm_irqfd(h->vm, dev->vqs[q].call_fd, d->gsi[0], -1);
	}
	if (!err)
		err = vm_irqfd(h->vm, d->mmio.tr.config_fd, d->gsi[0], -1);
	if (!err)
		err = virtio_vm_mmio_fast_path(h, d, base);
	if (!err)
		err = vm_mmio_register(h->vm, base, VMMIO_WINDOW_SIZE, virtio_vm_mmio_access, d);
	if (err) {
		/* KVM drops the eventfd bindings when the VM goes; the transport
		 * closes the fds. */
		virtio_vm_mmio_destroy(d);
		return err;
	}
	h->nmmio++;
	log_info("%s (%s): virtio-mmio at 0x%llx, irq %u", d->id, dev->ops->name, (unsigned long long)base,
		 d->gsi[0]);
	return 0;
}

/* ---- virtio-pci ---- */

static uint32_t virtio_vm_bar_read(void *obj, uint64_t off, unsigned len)
{
	return vpci_bar_read(obj, (uint32_t)off, len);
}

static void virtio_vm_bar_write(void *obj, uint64_t off, unsigned len, uint32_t val)
{
	vpci_bar_write(obj, (uint32_t)off, len, val);
}

static const struct virtio_vm_regs virtio_vm_bar_regs = { virtio_vm_bar_read, virtio_vm_bar_write };

static void virtio_vm_pci_bar_access(void *opaque, uint64_t off, uint8_t *data, unsigned len, bool is_write)
{
	struct virtio_vm_dev *d = opaque;

	/* vpci takes its own lock, the one its config-space path takes too. */
	virtio_vm_access(&virtio_vm_bar_regs, &d->pci, NULL, off, data, len, is_write, 0);
}

/* Moves the BAR's MMIO handler and the queues' notify ioeventfds to where
 * the guest put BAR0 (nowhere while memory decoding is off). */
static void virtio_vm_pci_bar_changed(void *ctx, struct vpci *p)
{
	struct virtio_vm_dev *d = ctx;
	struct vm *vm = d->owner->vm;
	struct vdev *dev = d->dev;
	uint32_t bar = vpci_bar0(p);

	if (d->bar) {
		for (unsigned q = 0; q < dev->num_queues; q++)
			vm_ioeventfd(vm, d->bar + VPCI_NOTIFY_OFF + q * VPCI_NOTIFY_MULTIPLIER, 2, false,
				     dev->vqs[q].kick_fd, false);
		iobus_unregister(&vm->mmio, d->bar);
	}
	d->bar = 0;
	if (!bar)
		return;
	if (iobus_register(&vm->mmio, bar, VPCI_BAR_SIZE, virtio_vm_pci_bar_access, d)) {
		log_warn_ratelimited("%s: guest put BAR0 at 0x%x, over another device: left unmapped",
				     dev->ops->name, bar);
		return;
	}
	d->bar = bar;
	for (unsigned q = 0; q < dev->num_queues; q++)
		if (vm_ioeventfd(vm, bar + VPCI_NOTIFY_OFF + q * VPCI_NOTIFY_MULTIPLIER, 2, false,
				 dev->vqs[q].kick_fd, true))
			log_warn_ratelimited("%s: queue %u notifications will exit to the VMM",
					     dev->ops->name, q);
}

/* Points each queue's (and the config) interrupt at the MSI-X message the
 * driver programmed. An interrupt raised while a vector had no route was
 * lost: a queue vector that becomes usable is signalled once (a spurious
 * queue interrupt only makes the driver look at its ring), the config
 * vector only when the configuration changed meanwhile. */
static void virtio_vm_pci_msix_changed(void *ctx, struct vpci *p)
{
	struct virtio_vm_dev *d = ctx;
	struct vdev *dev = d->dev;

	for (unsigned i = 0; i <= dev->num_queues; i++) {
		uint64_t addr = 0;
		uint32_t data = 0;
		bool active = vpci_msi_message(p, i, &addr, &data);
		bool was_active = d->route_active[i];

		if (irq_routing_set_msi(&d->owner->routing, d->gsi[i], active, addr, data, d->devid))
			continue;
		d->route_active[i] = active;
		if (active == was_active)
			continue;
		if (i < dev->num_queues) {
			if (active)
				virtio_vm_signal(dev->vqs[i].call_fd);
		} else if (vpci_config_route(p, active)) {
			virtio_vm_signal(p->tr.config_fd);
		}
	}
}

static const struct vpci_host virtio_vm_pci_ops = {
	.msix_changed = virtio_vm_pci_msix_changed,
	.bar_changed = virtio_vm_pci_bar_changed,
};

static uint32_t virtio_vm_cf8_read(void *obj, uint64_t off, unsigned len)
{
	return pci_pio_read(obj, (uint16_t)(PCI_CONFIG_ADDRESS_PORT + off), len);
}

static void virtio_vm_cf8_write(void *obj, uint64_t off, unsigned len, uint32_t val)
{
	pci_pio_write(obj, (uint16_t)(PCI_CONFIG_ADDRESS_PORT + off), len, val);
}

static uint32_t virtio_vm_ecam_read(void *obj, uint64_t off, unsigned len)
{
	return pci_ecam_read(obj, off, len);
}

static void virtio_vm_ecam_write(void *obj, uint64_t off, unsigned len, uint32_t val)
{
	pci_ecam_write(obj, off, len, val);
}

static const struct virtio_vm_regs virtio_vm_cf8_regs = { virtio_vm_cf8_read, virtio_vm_cf8_write };
static const struct virtio_vm_regs virtio_vm_ecam_regs = { virtio_vm_ecam_read, virtio_vm_ecam_write };

static void virtio_vm_pci_config(void *opaque, uint64_t off, uint8_t *data, unsigned len, bool is_write)
{
	struct virtio_vm *h = opaque;

	virtio_vm_access(&virtio_vm_cf8_regs, &h->pci, &h->pci_lock, off, data, len, is_write, 0xff);
}

static void virtio_vm_pci_ecam(void *opaque, uint64_t off, uint8_t *data, unsigned len, bool is_write)
{
	struct virtio_vm *h = opaque;

	virtio_vm_access(&virtio_vm_ecam_regs, &h->pci, &h->pci_lock, off, data, len, is_write, 0xff);
}

static int virtio_vm_pci_bus(struct virtio_vm *h)
{
	int err;

	err = ARCH_HAS_PIO ? vm_pio_register(h->vm, PCI_CONFIG_ADDRESS_PORT, 8, virtio_vm_pci_config, h) : 0;
	if (!err)
		err = vm_mmio_register(h->vm, VIRTIO_VM_ECAM_BASE, PCI_ECAM_BUS_SIZE, virtio_vm_pci_ecam, h);
	if (err) {
		log_err("cannot register the PCI host bridge: %s", strerror(-err));
		return err;
	}
	return 0;
}

static int virtio_vm_add_pci(struct virtio_vm *h, struct virtio_vm_dev *d)
{
	struct vdev *dev = d->dev;
	uint32_t bar = (uint32_t)(VIRTIO_VM_PCI_BAR_BASE + (uint64_t)h->npci * VPCI_BAR_SIZE);
	int err, slot;

	for (unsigned i = 0; i <= dev->num_queues; i++) {
		int gsi = irq_routing_alloc_msi(&h->routing);

		if (gsi < 0)
			return gsi;
		d->gsi[i] = (unsigned)gsi;
	}
	err = vpci_init(&d->pci, dev, bar, &virtio_vm_pci_ops, d);
	if (err)
		return err;
	for (unsigned q = 0; q < dev->num_queues && !err; q++)
		err = vm_irqfd(h->vm, dev->vqs[q].call_fd, d->gsi[q], -1);
	if (!err)
		err = vm_irqfd(h->vm, d->pci.tr.config_fd, d->gsi[dev->num_queues], -1);
	if (err) {
		vpci_destroy(&d->pci);
		return err;
	}
	pthread_mutex_lock(&h->pci_lock);
	slot = pci_bus_add(&h->pci, &vpci_func_ops, &d->pci);
	pthread_mutex_unlock(&h->pci_lock);
	if (slot < 0) {
		vpci_destroy(&d->pci);
		return slot;
	}
	h->npci++;
	d->devid = (uint32_t)slot << 3;
	log_info("%s (%s): virtio-pci at 00:%02x.0, BAR0 0x%x", d->id, dev->ops->name, slot, bar);
	return 0;
}

int virtio_vm_init(struct virtio_vm *h, struct vm *vm)
{
	memset(h, 0, sizeof(*h));
	h->vm = vm;
	irq_routing_init(&h->routing, vm->vm_fd);
	pci_bus_init(&h->pci);
	pthread_mutex_init(&h->pci_lock, NULL);
	/* The DSDT declares PCI bus 0 whether or not devices sit on it, and
	 * Linux trusts the 0xcf8 mechanism only when it finds the host bridge. */
	return virtio_vm_pci_bus(h);
}

int virtio_vm_add(struct virtio_vm *h, struct vdev *dev, const char *id, enum virtio_transport_kind kind)
{
	struct virtio_vm_dev *d;
	int err;

	if (h->ndevs == VIRTIO_VM_MAX_DEVS) {
		log_err("%s: at most %d virtio devices", dev->ops->name, VIRTIO_VM_MAX_DEVS);
		return -ENOSPC;
	}
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->gsi = calloc(dev->num_queues + 1, sizeof(*d->gsi));
	d->route_active = calloc(dev->num_queues + 1, sizeof(*d->route_active));
	if (!d->gsi || !d->route_active) {
		err = -ENOMEM;
		goto fail;
	}
	d->owner = h;
	d->dev = dev;
	snprintf(d->id, sizeof(d->id), "%s", id);
	d->kind = kind;
	pthread_mutex_init(&d->lock, NULL);
	dev->mem = &h->vm->mem;
	err = kind == VIRTIO_TRANSPORT_MMIO ? virtio_vm_add_mmio(h, d) : virtio_vm_add_pci(h, d);
	if (err) {
		log_err("%s (%s): cannot attach to the VM: %s", id, dev->ops->name, strerror(-err));
		pthread_mutex_destroy(&d->lock);
		goto fail;
	}
	h->devs[h->ndevs++] = d;
	return 0;
fail:
	free(d->gsi);
	free(d->route_active);
	free(d);
	return err;
}

void virtio_vm_reset(struct virtio_vm *h)
{
	for (unsigned i = 0; i < h->ndevs; i++) {
		struct virtio_vm_dev *d = h->devs[i];

		if (d->kind == VIRTIO_TRANSPORT_PCI) {
			vpci_reset(&d->pci);
			continue;
		}
		pthread_mutex_lock(&d->lock);
		vmmio_reset(&d->mmio);
		virtio_vm_mmio_refresh(d);
		pthread_mutex_unlock(&d->lock);
	}
}

void virtio_vm_destroy(struct virtio_vm *h)
{
	for (unsigned i = 0; i < h->ndevs; i++) {
		struct virtio_vm_dev *d = h->devs[i];

		if (d->kind == VIRTIO_TRANSPORT_MMIO)
			virtio_vm_mmio_destroy(d);
		else
			vpci_destroy(&d->pci);
		pthread_mutex_destroy(&d->lock);
		free(d->gsi);
		free(d->route_active);
		free(d);
	}
	h->ndevs = 0;
	pthread_mutex_destroy(&h->pci_lock);
	irq_routing_destroy(&h->routing);
}

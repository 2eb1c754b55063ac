/*
 * In-process virtio devices on a VM: puts a device model (struct vdev)
 * behind virtio-mmio or virtio-pci and wires the transport to KVM, so that
 * queue notifications are ioeventfds and interrupts are irqfds (MSI routes
 * for PCI, an IOAPIC line for MMIO) and neither takes a vCPU thread's time.
 *
 * Guest physical layout (the arch's, include/cvmm/arch.h; on x86 in the hole
 * below 4 GiB):
 *   ARCH_PCI_MMIO_START    PCI BARs (VPCI_BAR_SIZE each; x86 0xc0000000)
 *   ARCH_VIRTIO_MMIO_BASE  virtio-mmio windows (VMMIO_WINDOW_SIZE each; x86 0xd0000000)
 *   ARCH_PCI_ECAM_BASE     PCI ECAM, bus 0 (x86 0xe0000000)
 */
#ifndef CVMM_VIRTIO_VM_H
#define CVMM_VIRTIO_VM_H

#include <pthread.h>

#include "cvmm/irq_routing.h"
#include "cvmm/pci.h"
#include "cvmm/virtio_mmio.h"
#include "cvmm/virtio_pci.h"
#include "cvmm/vm.h"
#include "cvmm/arch.h"

#define VIRTIO_VM_PCI_BAR_BASE ARCH_PCI_MMIO_START /* the window firmware tables give PCI */
#define VIRTIO_VM_MMIO_BASE ARCH_VIRTIO_MMIO_BASE
#define VIRTIO_VM_ECAM_BASE ARCH_PCI_ECAM_BASE
#define VIRTIO_VM_MAX_DEVS 16

enum virtio_transport_kind {
	VIRTIO_TRANSPORT_PCI,
	VIRTIO_TRANSPORT_MMIO,
};

struct virtio_vm;

struct virtio_vm_dev {
	struct virtio_vm *owner;  /* the VM's set of virtio devices this one is in */
	struct vdev *dev;
	char id[32];          /* the user's name for it (--disk id=...), for log lines */
	enum virtio_transport_kind kind;
	pthread_mutex_t lock; /* MMIO: serialises the guest's register accesses (vpci has its own) */
	union {
		struct vmmio mmio;
		struct vpci pci;
	};
	unsigned *gsi;        /* PCI: per queue, then config; MMIO: gsi[0] is the line */
	bool *route_active;   /* PCI: whether gsi[i] has an MSI route */
	uint32_t bar;         /* PCI: BAR0 address registered now, 0 when none */
	uint32_t devid;       /* PCI: requester ID (bus 0, slot << 3) */
	uint32_t *image;      /* MMIO: the window's read-only copy the guest reads, or NULL */
	pthread_mutex_t image_lock; /* MMIO: orders the renders of image */
	int ack_fd;           /* MMIO: where KVM ends InterruptACK of the queue bit */
};

struct virtio_vm {
	struct vm *vm;
	struct irq_routing routing;
	struct pci_bus pci;
	pthread_mutex_t pci_lock;
	struct virtio_vm_dev *devs[VIRTIO_VM_MAX_DEVS];
	unsigned ndevs, nmmio, npci;
};

/* Also puts the PCI host bridge (00:00.0) on vm's ECAM window (and the
 * 0xcf8 ports where the arch has port I/O). 0 or -errno, logged. */
int virtio_vm_init(struct virtio_vm *h, struct vm *vm);
/* Stops every device's queues and unwires them; the models stay the caller's. */
void virtio_vm_destroy(struct virtio_vm *h);
/* A machine reset (call with the vCPUs parked): every device reset and its
 * transport back to its power-on state. */
void virtio_vm_reset(struct virtio_vm *h);
/* Adds dev (its ops set up, not yet started) behind the given transport,
 * named id in log lines. Sets dev->mem to the VM's memory. 0 or -errno, logged. */
int virtio_vm_add(struct virtio_vm *h, struct vdev *dev, const char *id, enum virtio_transport_kind kind);
/* The kernel command-line arguments announcing the first n MMIO devices
 * (they are placed in the order they are added), so the command line can be
 * planned before the VM exists; empty where the device tree describes them
 * (arm64). 0 or -ENOSPC. */
int virtio_vm_mmio_cmdline(unsigned n, char *buf, size_t len);
/* Where the i-th MMIO device goes: its window and interrupt line (GSI: an
 * IOAPIC line on x86, an SPI on arm64). 0, or -ENOSPC past the last slot. */
int virtio_vm_mmio_slot(unsigned i, uint64_t *base, unsigned *irq);

#endif

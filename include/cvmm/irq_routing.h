/*
 * KVM's GSI routing table: the in-kernel irqchip pins (GSI 0-23, as KVM
 * sets them up by default) plus MSI routes on GSIs from IRQ_MSI_GSI_BASE
 * on, one per interrupt source that irqfd delivers as an MSI (a virtio-pci
 * queue or config vector). KVM replaces the whole table on every change, so
 * this module keeps it. Where KVM wants to know which device sent an MSI
 * (KVM_CAP_MSI_DEVID: arm64's ITS translates by device ID), each route
 * carries the sender's PCI requester ID.
 * Locking: callable from any thread (vCPU threads reprogram MSI-X).
 */
#ifndef CVMM_IRQ_ROUTING_H
#define CVMM_IRQ_ROUTING_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define IRQ_PIN_GSIS 24
#define IRQ_MSI_GSI_BASE IRQ_PIN_GSIS
#define IRQ_MSI_GSIS 1024

struct irq_msi_route {
	bool allocated, active;
	uint64_t addr;
	uint32_t data;
	uint32_t devid;   /* PCI requester ID (bus << 8 | devfn) */
};


struct irq_routing {
	int vm_fd;
	bool msi_devid;   /* KVM needs a device ID with each MSI route */
	pthread_mutex_t lock;
	struct irq_msi_route msi[IRQ_MSI_GSIS];
};

void irq_routing_init(struct irq_routing *r, int vm_fd);
void irq_routing_destroy(struct irq_routing *r);
/* Reserves a GSI for MSI delivery (no route until set). GSI or -ENOSPC. */
int irq_routing_alloc_msi(struct irq_routing *r);
/* Points gsi at an MSI message from requester ID devid (active) or at
 * nothing (!active, e.g. a masked vector), and commits the table. 0 or -errno. */
int irq_routing_set_msi(struct irq_routing *r, unsigned gsi, bool active, uint64_t addr, uint32_t data,
			uint32_t devid);

#endif

#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "cvmm/arch.h"
#include "cvmm/irq_routing.h"
#include "cvmm/log.h"

void irq_routing_init(struct irq_routing *r, int vm_fd)
{
	memset(r, 0, sizeof(*r));
	r->vm_fd = vm_fd;
	r->msi_devid = ioctl(vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MSI_DEVID) > 0;
	pthread_mutex_init(&r->lock, NULL);
}

void irq_routing_destroy(struct irq_routing *r)
{
	pthread_mutex_destroy(&r->lock);
}

int irq_routing_alloc_msi(struct irq_routing *r)
{
	int gsi = -ENOSPC;

	pthread_mutex_lock(&r->lock);
	for (unsigned i = 0; i < IRQ_MSI_GSIS; i++) {
		if (r->msi[i].allocated)
			continue;
		r->msi[i] = (struct irq_msi_route){ .allocated = true };
		gsi = (int)(IRQ_MSI_GSI_BASE + i);
		break;
	}
	pthread_mutex_unlock(&r->lock);
	return gsi;
}

/* Rebuilds and installs the table; called with the lock held. */
static int irq_routing_commit(struct irq_routing *r)
{
	size_t max = ARCH_IRQ_PIN_ROUTES + IRQ_MSI_GSIS;
	struct kvm_irq_routing *t = calloc(1, sizeof(*t) + max * sizeof(t->entries[0]));
	unsigned n = 0;
	int err = 0;

	if (!t)
		return -ENOMEM;
	n = arch_irq_pin_routes(t->entries);
	for (unsigned i = 0; i < IRQ_MSI_GSIS; i++) {
		struct kvm_irq_routing_entry *e;

		if (!r->msi[i].active)
			continue;
		e = &t->entries[n++];
		memset(e, 0, sizeof(*e));
		e->gsi = IRQ_MSI_GSI_BASE + i;
		e->type = KVM_IRQ_ROUTING_MSI;
		e->u.msi.address_lo = (uint32_t)r->msi[i].addr;
		e->u.msi.address_hi = (uint32_t)(r->msi[i].addr >> 32);
		e->u.msi.data = r->msi[i].data;
		if (r->msi_devid) {
			e->flags = KVM_MSI_VALID_DEVID;
			e->u.msi.devid = r->msi[i].devid;
		}
	}
	t->nr = n;
	if (ioctl(r->vm_fd, KVM_SET_GSI_ROUTING, t) < 0) {
		err = -errno;
		log_err("KVM_SET_GSI_ROUTING: %s", strerror(-err));
	}
	free(t);
	return err;
}

int irq_routing_set_msi(struct irq_routing *r, unsigned gsi, bool active, uint64_t addr, uint32_t data,
			uint32_t devid)
{
	struct irq_msi_route *m;
	int err = 0;

	if (gsi < IRQ_MSI_GSI_BASE || gsi >= IRQ_MSI_GSI_BASE + IRQ_MSI_GSIS)
		return -EINVAL;
	pthread_mutex_lock(&r->lock);
	m = &r->msi[gsi - IRQ_MSI_GSI_BASE];
	if (!m->allocated) {
		err = -EINVAL;
	} else if (m->active != active || m->addr != addr || m->data != data || m->devid != devid) {
		m->active = active;
		m->addr = addr;
		m->data = data;
		m->devid = devid;
		err = irq_routing_commit(r);
	}
	pthread_mutex_unlock(&r->lock);
	return err;
}

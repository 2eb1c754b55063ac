/* The x86 side of the VM and vCPU interface (include/cvmm/arch.h). */
#include <errno.h>
#include <linux/kvm.h>
#include <string.h>
#include <sys/ioctl.h>

#include "cvmm/arch.h"
#include "cvmm/irq_routing.h"
#include "cvmm/log.h"
#include "vmm/vcpu.h"
#include "cvmm/vm.h"
#include "cvmm/x86_cpu.h"

#define X86_IRQCHIP_PIC_MASTER 0
#define X86_IRQCHIP_PIC_SLAVE 1
#define X86_IRQCHIP_IOAPIC 2

static const struct arch_kvm_cap x86_kvm_caps[] = {
	{ KVM_CAP_IRQCHIP, "in-kernel irqchip" },
	{ KVM_CAP_PIT2, "in-kernel PIT" },
	{ KVM_CAP_USER_MEMORY, "user memory" },
	{ KVM_CAP_IMMEDIATE_EXIT, "immediate exit" },
	{ KVM_CAP_IRQFD, "irqfd" },
	{ KVM_CAP_IOEVENTFD, "ioeventfd" },
	{ KVM_CAP_SET_TSS_ADDR, "TSS address" },
};

const struct arch_kvm_cap *arch_kvm_caps(size_t *n)
{
	*n = sizeof(x86_kvm_caps) / sizeof(x86_kvm_caps[0]);
	return x86_kvm_caps;
}

unsigned arch_ram_ranges(uint64_t ram_size, struct arch_ram_range r[2])
{
	struct x86_ram_range x[2];
	unsigned n = x86_ram_ranges(ram_size, x);

	for (unsigned i = 0; i < n; i++)
		r[i] = (struct arch_ram_range){ .gpa = x[i].gpa, .size = x[i].size };
	return n;
}

static int x86_vm_ioctl(struct vm *vm, unsigned long req, unsigned long arg, const char *what)
{
	if (ioctl(vm->vm_fd, req, arg) < 0) {
		int err = -errno;

		log_err("%s failed: %s", what, strerror(-err));
		return err;
	}
	return 0;
}

int arch_vm_setup(struct vm *vm)
{
	struct kvm_pit_config pit = { .flags = 0 };
	uint64_t idmap = X86_IDENTITY_MAP_ADDR;
	int err;

	vm->arch.gic_fd = vm->arch.its_fd = -1;
	err = x86_vm_ioctl(vm, KVM_SET_TSS_ADDR, X86_TSS_ADDR, "KVM_SET_TSS_ADDR");
	if (!err)
		err = x86_vm_ioctl(vm, KVM_SET_IDENTITY_MAP_ADDR, (unsigned long)&idmap, "KVM_SET_IDENTITY_MAP_ADDR");
	if (!err)
		err = x86_vm_ioctl(vm, KVM_CREATE_IRQCHIP, 0, "KVM_CREATE_IRQCHIP");
	if (!err)
		err = x86_vm_ioctl(vm, KVM_CREATE_PIT2, (unsigned long)&pit, "KVM_CREATE_PIT2");
	return err;
}

int arch_vm_vcpus_created(struct vm *vm)
{
	(void)vm;
	return 0;
}

void arch_vm_destroy(struct vm *vm)
{
	(void)vm;
}

uint32_t arch_irq_line(unsigned gsi)
{
	return gsi;
}

static void x86_irq_pin_route(struct kvm_irq_routing_entry *e, unsigned gsi, unsigned chip, unsigned pin)
{
	memset(e, 0, sizeof(*e));
	e->gsi = gsi;
	e->type = KVM_IRQ_ROUTING_IRQCHIP;
	e->u.irqchip.irqchip = chip;
	e->u.irqchip.pin = pin;
}

unsigned arch_irq_pin_routes(struct kvm_irq_routing_entry *e)
{
	unsigned n = 0;

	/* KVM's default: ISA GSIs reach both PICs and the IOAPIC. */
	for (unsigned gsi = 0; gsi < IRQ_PIN_GSIS; gsi++) {
		if (gsi < 16)
			x86_irq_pin_route(&e[n++], gsi, gsi < 8 ? X86_IRQCHIP_PIC_MASTER : X86_IRQCHIP_PIC_SLAVE,
					  gsi % 8);
		x86_irq_pin_route(&e[n++], gsi, X86_IRQCHIP_IOAPIC, gsi);
	}
	return n;
}

bool arch_vcpu_emulation_assist(struct vcpu *v)
{
	return x86_emulation_assist(v->fd, &v->vm->mem);
}

void arch_vcpu_dump(struct vcpu *v, enum log_level level)
{
	x86_vcpu_dump(v->fd, v->id, &v->vm->mem, level);
}

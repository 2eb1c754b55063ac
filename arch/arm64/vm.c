/* The arm64 side of the VM and vCPU interface (include/cvmm/arch.h): the
 * in-kernel GICv3 with its ITS, vCPUs with PSCI, SPIs as interrupt lines. */
#include <errno.h>
#include <linux/kvm.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "cvmm/arch.h"
#include "cvmm/arm64_cpu.h"
#include "cvmm/irq_routing.h"
#include "cvmm/log.h"
#include "vmm/vcpu.h"
#include "cvmm/vm.h"

#define ARM64_GIC_PRIVATE_IRQS 32   /* SGIs and PPIs come before the SPIs */

static const struct arch_kvm_cap arm64_kvm_caps[] = {
	{ KVM_CAP_IRQCHIP, "in-kernel GIC" },
	{ KVM_CAP_USER_MEMORY, "user memory" },
	{ KVM_CAP_IMMEDIATE_EXIT, "immediate exit" },
	{ KVM_CAP_IRQFD, "irqfd" },
	{ KVM_CAP_IOEVENTFD, "ioeventfd" },
	{ KVM_CAP_ONE_REG, "ONE_REG register access" },
	{ KVM_CAP_DEVICE_CTRL, "device control (KVM_CREATE_DEVICE)" },
	{ KVM_CAP_ARM_PSCI_0_2, "PSCI 0.2" },
};

const struct arch_kvm_cap *arch_kvm_caps(size_t *n)
{
	*n = sizeof(arm64_kvm_caps) / sizeof(arm64_kvm_caps[0]);
	return arm64_kvm_caps;
}

unsigned arch_ram_ranges(uint64_t ram_size, struct arch_ram_range r[2])
{
	r[0] = (struct arch_ram_range){ .gpa = ARM64_RAM_BASE, .size = ram_size };
	return 1;
}

static int arm64_dev_attr(int dev_fd, uint32_t group, uint64_t attr, const void *val, const char *what)
{
	struct kvm_device_attr a = { .group = group, .attr = attr, .addr = (uint64_t)(uintptr_t)val };

	if (ioctl(dev_fd, KVM_SET_DEVICE_ATTR, &a) < 0) {
		int err = -errno;

		log_err("%s failed: %s", what, strerror(-err));
		return err;
	}
	return 0;
}

static int arm64_create_device(struct vm *vm, uint32_t type)
{
	struct kvm_create_device cd = { .type = type };

	return ioctl(vm->vm_fd, KVM_CREATE_DEVICE, &cd) < 0 ? -errno : (int)cd.fd;
}

int arch_vm_setup(struct vm *vm)
{
	uint64_t dist = ARM64_GIC_DIST_ADDR, redist = ARM64_GIC_REDIST_ADDR, its = ARM64_GIC_ITS_ADDR;
	uint32_t nr_irqs = ARM64_GIC_NR_IRQS;
	int fd, err;

	fd = arm64_create_device(vm, KVM_DEV_TYPE_ARM_VGIC_V3);
	if (fd < 0) {
		log_err("this KVM cannot create a GICv3 (%s): cvmm's arm64 machine needs one "
			"(a GICv3 host, or qemu -M virt,gic-version=3)", strerror(-fd));
		return fd;
	}
	vm->arch.gic_fd = fd;
	err = arm64_dev_attr(fd, KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_DIST, &dist,
			     "GICv3 distributor address");
	if (!err)
		err = arm64_dev_attr(fd, KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_REDIST, &redist,
				     "GICv3 redistributor address");
	if (!err)
		err = arm64_dev_attr(fd, KVM_DEV_ARM_VGIC_GRP_NR_IRQS, 0, &nr_irqs, "GICv3 interrupt count");
	if (err)
		return err;
	/* Without an ITS only virtio-pci is lost (MSIs); the machine says so. */
	fd = arm64_create_device(vm, KVM_DEV_TYPE_ARM_VGIC_ITS);
	if (fd < 0) {
		log_info("this KVM has no GICv3 ITS (%s): no MSIs for virtio-pci", strerror(-fd));
		return 0;
	}
	vm->arch.its_fd = fd;
	return arm64_dev_attr(fd, KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_ITS_ADDR_TYPE, &its, "GICv3 ITS address");
}

int arch_vm_vcpus_created(struct vm *vm)
{
	struct kvm_vcpu_init init;
	int err;

	if (ioctl(vm->vm_fd, KVM_ARM_PREFERRED_TARGET, &init) < 0) {
		err = -errno;
		log_err("KVM_ARM_PREFERRED_TARGET failed: %s", strerror(-err));
		return err;
	}
	for (unsigned i = 0; i < vm->cfg.ncpus; i++) {
		struct kvm_vcpu_init vi = init;

		/* PSCI 0.2+ starts the others (CPU_ON) and ends the VM
		 * (SYSTEM_OFF/SYSTEM_RESET become KVM_EXIT_SYSTEM_EVENT). */
		vi.features[0] |= 1u << KVM_ARM_VCPU_PSCI_0_2;
		if (i)
			vi.features[0] |= 1u << KVM_ARM_VCPU_POWER_OFF;
		if (ioctl(vm->vcpus[i].fd, KVM_ARM_VCPU_INIT, &vi) < 0) {
			err = -errno;
			log_err("KVM_ARM_VCPU_INIT of vCPU %u (target %u) failed: %s", i, init.target, strerror(-err));
			return err;
		}
	}
	err = arm64_dev_attr(vm->arch.gic_fd, KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_VGIC_CTRL_INIT, NULL,
			     "GICv3 init");
	if (!err && vm->arch.its_fd >= 0)
		err = arm64_dev_attr(vm->arch.its_fd, KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_VGIC_CTRL_INIT, NULL,
				     "GICv3 ITS init");
	return err;
}

void arch_vm_destroy(struct vm *vm)
{
	if (vm->arch.its_fd >= 0)
		close(vm->arch.its_fd);
	if (vm->arch.gic_fd >= 0)
		close(vm->arch.gic_fd);
	vm->arch.gic_fd = vm->arch.its_fd = -1;
}

uint32_t arch_irq_line(unsigned gsi)
{
	return (KVM_ARM_IRQ_TYPE_SPI << KVM_ARM_IRQ_TYPE_SHIFT) | (gsi + ARM64_GIC_PRIVATE_IRQS);
}

unsigned arch_irq_pin_routes(struct kvm_irq_routing_entry *e)
{
	/* KVM's default on arm64: GSI n is SPI n of the one irqchip. */
	for (unsigned gsi = 0; gsi < IRQ_PIN_GSIS; gsi++) {
		memset(&e[gsi], 0, sizeof(e[gsi]));
		e[gsi].gsi = gsi;
		e[gsi].type = KVM_IRQ_ROUTING_IRQCHIP;
		e[gsi].u.irqchip.irqchip = 0;
		e[gsi].u.irqchip.pin = gsi;
	}
	return IRQ_PIN_GSIS;
}

bool arch_vcpu_emulation_assist(struct vcpu *v)
{
	(void)v;
	return false;
}

void arch_vcpu_dump(struct vcpu *v, enum log_level level)
{
	static const struct {
		const char *name;
		uint64_t id;
	} regs[] = {
		{ "pc", ARM64_CORE_REG(regs.pc) },
		{ "pstate", ARM64_CORE_REG(regs.pstate) },
		{ "sp_el1", ARM64_CORE_REG(sp_el1) },
		{ "elr_el1", ARM64_CORE_REG(elr_el1) },
		{ "x0", ARM64_CORE_REG(regs.regs[0]) },
		{ "x30", ARM64_CORE_REG(regs.regs[30]) },
		{ "esr_el1", ARM64_SYS_REG(3, 0, 5, 2, 0) },
		{ "far_el1", ARM64_SYS_REG(3, 0, 6, 0, 0) },
	};
	char line[512];
	size_t used = 0;

	for (size_t i = 0; i < sizeof(regs) / sizeof(regs[0]) && used < sizeof(line); i++) {
		uint64_t val;
		int w = arm64_get_reg(v->fd, regs[i].id, &val) ?
			snprintf(line + used, sizeof(line) - used, " %s=?", regs[i].name) :
			snprintf(line + used, sizeof(line) - used, " %s=%#llx", regs[i].name,
				 (unsigned long long)val);

		if (w > 0)
			used += (size_t)w;
	}
	log_msg(level, "vCPU %u:%s", v->id, line);
}

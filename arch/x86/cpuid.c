/* Guest CPUID: KVM's supported table, per-vCPU topology, hypervisor leaves
 * and an explicit filter. */
#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "cvmm/log.h"
#include "cvmm/x86_cpu.h"

#define CPUID_MAX_ENTRIES 256
#define CPUID_HV_BASE 0x40000000u

enum cpuid_reg { CPUID_EAX, CPUID_EBX, CPUID_ECX, CPUID_EDX };

/*
 * Features hidden from the guest. Some nested KVMs (see HOST-KVM.md) emulate
 * guest kernel code instruction by instruction and their emulator lacks
 * these instructions; a kernel that sees the feature uses them and stops
 * with an emulation failure. Hiding them costs little on other hosts: Linux
 * falls back to other paths.
 */
static const struct cpuid_filter {
	uint32_t function;
	enum cpuid_reg reg;
	uint32_t mask;
	const char *why;
} x86_cpuid_filter[] = {
	{ 1, CPUID_ECX, 1u << 13, "CX16: cmpxchg16b" },
	{ 1, CPUID_ECX, 1u << 17, "PCID" },
	{ 1, CPUID_ECX, 1u << 26, "XSAVE: xsave/xrstor" },
	{ 1, CPUID_ECX, 1u << 27, "OSXSAVE" },
	{ 1, CPUID_ECX, 1u << 28, "AVX" },
	{ 7, CPUID_EBX, 1u << 0, "FSGSBASE" },
	{ 7, CPUID_EBX, 1u << 5, "AVX2" },
	{ 7, CPUID_EBX, 1u << 10, "INVPCID" },
	{ 7, CPUID_EBX, 1u << 16, "AVX512F" },
	{ 7, CPUID_EBX, 1u << 20, "SMAP" },
};

static struct kvm_cpuid_entry2 *cpuid_find(struct kvm_cpuid2 *c, uint32_t fn, uint32_t index)
{
	for (uint32_t i = 0; i < c->nent; i++)
		if (c->entries[i].function == fn && c->entries[i].index == index)
			return &c->entries[i];
	return NULL;
}

int x86_cpuid_get_supported(int kvm_fd, struct kvm_cpuid2 **out)
{
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + CPUID_MAX_ENTRIES * sizeof(c->entries[0]));

	if (!c)
		return -ENOMEM;
	c->nent = CPUID_MAX_ENTRIES;
	if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, c) < 0) {
		int err = -errno;

		log_err("KVM_GET_SUPPORTED_CPUID failed: %s", strerror(-err));
		free(c);
		return err;
	}
	/* KVM emulates the TSC-deadline timer whatever the host's CPU, but
	 * kernels before 2025 leave it out of the supported table: it is
	 * added when the capability says KVM has it (Linux then programs its
	 * timer with one MSR write instead of the local APIC's counter). */
	if (ioctl(kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_TSC_DEADLINE_TIMER) > 0) {
		struct kvm_cpuid_entry2 *e = cpuid_find(c, 1, 0);

		if (e)
			e->ecx |= 1u << 24;
	}
	*out = c;
	return 0;
}

static uint32_t *cpuid_reg_ptr(struct kvm_cpuid_entry2 *e, enum cpuid_reg r)
{
	switch (r) {
	case CPUID_EAX:
		return &e->eax;
	case CPUID_EBX:
		return &e->ebx;
	case CPUID_ECX:
		return &e->ecx;
	case CPUID_EDX:
		break;
	}
	return &e->edx;
}

/* Drops entries of function fn (e.g. the XSAVE leaf once XSAVE is hidden). */
static void cpuid_remove(struct kvm_cpuid2 *c, uint32_t fn)
{
	uint32_t j = 0;

	for (uint32_t i = 0; i < c->nent; i++)
		if (c->entries[i].function != fn)
			c->entries[j++] = c->entries[i];
	c->nent = j;
}

static void cpuid_set_hv_leaf(struct kvm_cpuid2 *c)
{
	struct kvm_cpuid_entry2 *e = cpuid_find(c, CPUID_HV_BASE, 0);

	if (!e) {
		if (c->nent >= CPUID_MAX_ENTRIES)
			return;
		e = &c->entries[c->nent++];
		memset(e, 0, sizeof(*e));
		e->function = CPUID_HV_BASE;
		e->eax = CPUID_HV_BASE + 1;
	}
	/* KVM's signature: Linux then uses KVM's paravirtual features (leaf 0x40000001). */
	memcpy(&e->ebx, "KVMK", 4);
	memcpy(&e->ecx, "VMKV", 4);
	memcpy(&e->edx, "M\0\0\0", 4);
}

bool x86_cpuid_has_gbpages(const struct kvm_cpuid2 *c)
{
	for (uint32_t i = 0; i < c->nent; i++)
		if (c->entries[i].function == 0x80000001)
			return c->entries[i].edx & (1u << 26);
	return false;
}

void x86_cpuid_adjust(struct kvm_cpuid2 *c, unsigned id, unsigned ncpus)
{
	for (size_t f = 0; f < sizeof(x86_cpuid_filter) / sizeof(x86_cpuid_filter[0]); f++) {
		const struct cpuid_filter *flt = &x86_cpuid_filter[f];

		for (uint32_t i = 0; i < c->nent; i++)
			if (c->entries[i].function == flt->function)
				*cpuid_reg_ptr(&c->entries[i], flt->reg) &= ~flt->mask;
	}
	cpuid_remove(c, 0xd);
	for (uint32_t i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];

		switch (e->function) {
		case 1:
			/* Initial APIC ID, logical processor count, hypervisor present. */
			e->ebx = (e->ebx & 0x0000ffffu) | (uint32_t)id << 24 | (uint32_t)(ncpus & 0xff) << 16;
			e->ecx |= 1u << 31;
			if (ncpus > 1)
				e->edx |= 1u << 28;
			break;
		case 0xb:
		case 0x1f:
			e->edx = id;  /* x2APIC ID */
			break;
		default:
			break;
		}
	}
	cpuid_set_hv_leaf(c);
}

int x86_cpuid_set(int vcpu_fd, const struct kvm_cpuid2 *supported, unsigned id, unsigned ncpus)
{
	size_t sz = sizeof(*supported) + CPUID_MAX_ENTRIES * sizeof(supported->entries[0]);
	struct kvm_cpuid2 *c = malloc(sz);
	int ret = 0;

	if (!c)
		return -ENOMEM;
	memcpy(c, supported, sizeof(*supported) + supported->nent * sizeof(supported->entries[0]));
	x86_cpuid_adjust(c, id, ncpus);
	if (ioctl(vcpu_fd, KVM_SET_CPUID2, c) < 0) {
		ret = -errno;
		log_err("KVM_SET_CPUID2 on vCPU %u failed: %s", id, strerror(-ret));
	}
	free(c);
	return ret;
}

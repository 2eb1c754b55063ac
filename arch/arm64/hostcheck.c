/*
 * `cvmm --check-host` on arm64. Linux guests need what cvmm's arm64
 * machine needs from KVM (its capabilities, an in-kernel GICv3, vCPUs
 * through KVM_ARM_VCPU_INIT with PSCI 0.2), and a vCPU that really runs
 * Linux's user space: the probe guest (hostcheck_probe.S) drops to EL0 and
 * makes an `svc` there, which must be taken at EL1, then ends the VM with
 * PSCI SYSTEM_OFF. All in one small VM: 64 KiB of RAM at the machine's RAM
 * base, one vCPU, no interrupt controller instantiated (the GICv3 and its
 * ITS are only tested for, with KVM_CREATE_DEVICE_TEST).
 */
#include <errno.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>

#include "cvmm/arch.h"
#include "cvmm/arm64_cpu.h"
#include "cvmm/arm64_layout.h"
#include "vmm/hostcheck.h"

/* From hostcheck_probe.S. */
extern const uint8_t hostcheck_probe_start[], hostcheck_probe_end[];

#define HC_A64_MEM_SIZE 0x10000
#define HC_A64_REPORT 0x09000000ULL     /* REPORT_BASE in hostcheck_probe.S */
#define HC_A64_REPORT_EL0 0x00
#define HC_A64_REPORT_VECTOR 0x08
#define HC_A64_REPORT_EL 0x10
#define HC_A64_REPORT_ESR 0x18
#define HC_A64_REPORT_SPSR 0x20

/* KVM's answer to what cvmm's machine needs before any guest runs. Returns
 * NULL, or why Linux guests cannot run (in buf). */
static const char *hc_a64_machine(struct hostcheck_vm *v, char *buf, size_t len)
{
	struct kvm_create_device gic = { .type = KVM_DEV_TYPE_ARM_VGIC_V3, .flags = KVM_CREATE_DEVICE_TEST };
	struct kvm_create_device its = { .type = KVM_DEV_TYPE_ARM_VGIC_ITS, .flags = KVM_CREATE_DEVICE_TEST };
	const struct arch_kvm_cap *caps;
	struct kvm_vcpu_init init;
	size_t ncaps;

	caps = arch_kvm_caps(&ncaps);
	for (size_t i = 0; i < ncaps; i++) {
		if (ioctl(v->kvm, KVM_CHECK_EXTENSION, caps[i].cap) <= 0) {
			snprintf(buf, len, "KVM lacks %s (capability %d)", caps[i].name, caps[i].cap);
			return buf;
		}
	}
	if (ioctl(v->vm, KVM_CREATE_DEVICE, &gic) < 0) {
		snprintf(buf, len, "KVM cannot create a GICv3 (%s); cvmm's arm64 machine needs one", strerror(errno));
		return buf;
	}
	/* Without an ITS only virtio-pci is lost; the verdict stays "can". */
	if (ioctl(v->vm, KVM_CREATE_DEVICE, &its) < 0)
		fprintf(stderr, "cvmm: note: KVM has no GICv3 ITS (%s): virtio-pci needs one, use --transport mmio\n",
			strerror(errno));
	if (ioctl(v->vm, KVM_ARM_PREFERRED_TARGET, &init) < 0) {
		snprintf(buf, len, "KVM_ARM_PREFERRED_TARGET: %s", strerror(errno));
		return buf;
	}
	init.features[0] |= 1u << KVM_ARM_VCPU_PSCI_0_2;
	if (ioctl(v->vcpu, KVM_ARM_VCPU_INIT, &init) < 0) {
		snprintf(buf, len, "KVM_ARM_VCPU_INIT (target %u, PSCI 0.2): %s", init.target, strerror(errno));
		return buf;
	}
	return NULL;
}

/* Records one MMIO report; returns 1 when the run must end. */
static int hc_a64_mmio(const struct kvm_run *run, struct hostcheck_arm64_report *r)
{
	uint64_t val = 0;

	if (!run->mmio.is_write || run->mmio.len != 8 || run->mmio.phys_addr < HC_A64_REPORT) {
		snprintf(r->stop, sizeof(r->stop), "unexpected MMIO %s of %u bytes at 0x%llx",
			 run->mmio.is_write ? "write" : "read", run->mmio.len,
			 (unsigned long long)run->mmio.phys_addr);
		return 1;
	}
	memcpy(&val, run->mmio.data, sizeof(val));
	switch (run->mmio.phys_addr - HC_A64_REPORT) {
	case HC_A64_REPORT_EL0:
		r->reached_el0 = true;
		return 0;
	case HC_A64_REPORT_VECTOR:
		r->vector = (int64_t)val;
		return 0;
	case HC_A64_REPORT_EL:
		r->current_el = val;
		return 0;
	case HC_A64_REPORT_ESR:
		r->esr = val;
		return 0;
	case HC_A64_REPORT_SPSR:
		r->spsr = val;
		return 0;
	default:
		snprintf(r->stop, sizeof(r->stop), "unexpected MMIO write at 0x%llx",
			 (unsigned long long)run->mmio.phys_addr);
		return 1;
	}
}

static enum hostcheck_exit hc_a64_exit(struct hostcheck_vm *v, void *report)
{
	struct hostcheck_arm64_report *r = report;

	switch (v->run->exit_reason) {
	case KVM_EXIT_MMIO:
		return hc_a64_mmio(v->run, r) ? HOSTCHECK_EXIT_DONE : HOSTCHECK_EXIT_RUN_ON;
	case KVM_EXIT_SYSTEM_EVENT:
		if (v->run->system_event.type == KVM_SYSTEM_EVENT_SHUTDOWN)
			r->system_off = true;
		else
			snprintf(r->stop, sizeof(r->stop), "system event %u, not SYSTEM_OFF",
				 v->run->system_event.type);
		return HOSTCHECK_EXIT_DONE;
	default:
		return HOSTCHECK_EXIT_OTHER;
	}
}

int hostcheck_main(void)
{
	struct hostcheck_arm64_report res = { .vector = -1 };
	char why[256] = "", reason[320];
	const char *cannot;
	struct hostcheck_vm v;
	sigset_t saved;
	int err;

	if (hostcheck_vm_init(&v, ARM64_RAM_BASE, HC_A64_MEM_SIZE, why, sizeof(why)) < 0)
		return hostcheck_no_check(&v, why);
	cannot = hc_a64_machine(&v, reason, sizeof(reason));
	if (cannot)
		return hostcheck_verdict(&v, cannot);
	memcpy(v.mem, hostcheck_probe_start, (size_t)(hostcheck_probe_end - hostcheck_probe_start));
	err = arm64_set_reg(v.vcpu, ARM64_CORE_REG(regs.pc), ARM64_RAM_BASE);
	if (err) {
		snprintf(why, sizeof(why), "setting the probe's PC: %s", strerror(-err));
		return hostcheck_no_check(&v, why);
	}
	if (hostcheck_arm_timeout(&v, &saved, why, sizeof(why)) < 0)
		return hostcheck_no_check(&v, why);
	hostcheck_vm_run(&v, res.stop, sizeof(res.stop), hc_a64_exit, &res);
	hostcheck_disarm_timeout(&saved);
	return hostcheck_verdict(&v, hostcheck_arm64_reason(&res, reason, sizeof(reason)));
}

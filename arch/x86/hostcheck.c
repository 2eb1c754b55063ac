/*
 * `cvmm --check-host`: a capability probe, independent of the VMM proper.
 *
 * Linux needs a user-mode `syscall` to land in kernel mode at LSTAR. Some
 * nested KVMs (the PVM one this project is developed on) run guest user mode
 * natively and deliver SYSCALL to the entry point while still at CPL 3, so no
 * Linux user space works there under any VMM. The probe guest
 * (arch/x86/hostcheck_probe.S) tests exactly that in one tiny VM: one 64 KiB memory
 * slot, one vCPU, long mode set up from the VMM side.
 */
#include <errno.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "vmm/hostcheck.h"

/* From hostcheck_probe.S. */
extern const uint8_t hostcheck_probe_start[], hostcheck_probe_end[];
extern const uint64_t hostcheck_probe_entry_off;

#define HC_MEM_SIZE	0x10000
#define HC_PML4		0x1000
#define HC_PDPT		0x2000
#define HC_PD		0x3000
#define HC_GDT		0x4000
#define HC_CODE		0x5000
#define HC_STACK	0x9000

#define HC_SEL_KCODE	0x08
#define HC_SEL_KDATA	0x10
/* SYSRET to 64-bit mode loads SS = base + 8 and CS = base + 16, RPL 3. */
#define HC_SYSRET_BASE	0x10

#define HC_PORT_USER	0xe1
#define HC_PORT_ENTRY	0xe2

#define HC_MSR_STAR	0xc0000081
#define HC_MSR_LSTAR	0xc0000082
#define HC_MSR_SFMASK	0xc0000084

/* Identity-maps the first 2 MiB as one user-accessible page, writes the GDT
 * and copies the probe code. */
static void hc_write_memory(struct hostcheck_vm *v)
{
	uint64_t *pml4 = (uint64_t *)(v->mem + HC_PML4);
	uint64_t *pdpt = (uint64_t *)(v->mem + HC_PDPT);
	uint64_t *pd = (uint64_t *)(v->mem + HC_PD);
	uint64_t *gdt = (uint64_t *)(v->mem + HC_GDT);
	const uint64_t p = 1, rw = 2, us = 4, ps = 0x80;

	pml4[0] = HC_PDPT | p | rw | us;
	pdpt[0] = HC_PD | p | rw | us;
	pd[0] = 0 | p | rw | us | ps;
	/* null, kernel code64, kernel data, user data, user code64 */
	gdt[0] = 0;
	gdt[1] = 0x00af9b000000ffffULL;
	gdt[2] = 0x00cf93000000ffffULL;
	gdt[3] = 0x00cff3000000ffffULL;
	gdt[4] = 0x00affb000000ffffULL;
	memcpy(v->mem + HC_CODE, hostcheck_probe_start,
	       (size_t)(hostcheck_probe_end - hostcheck_probe_start));
}

static int hc_set_cpuid(struct hostcheck_vm *v, char *why, size_t whylen)
{
	const unsigned nent = 256;
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + nent * sizeof(c->entries[0]));
	int ret = 0;

	if (!c) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	c->nent = nent;
	/* Long mode and SYSCALL must be in the guest's CPUID for KVM to
	 * accept EFER.LME/SCE. */
	if (ioctl(v->kvm, KVM_GET_SUPPORTED_CPUID, c) < 0 || ioctl(v->vcpu, KVM_SET_CPUID2, c) < 0) {
		snprintf(why, whylen, "setting CPUID: %s", strerror(errno));
		ret = -1;
	}
	free(c);
	return ret;
}

static void hc_seg(struct kvm_segment *s, uint16_t sel, uint8_t type, int code)
{
	*s = (struct kvm_segment){
		.base = 0, .limit = 0xffffffff, .selector = sel, .type = type,
		.present = 1, .dpl = 0, .db = !code, .s = 1, .l = code, .g = 1,
	};
}

static int hc_set_regs(struct hostcheck_vm *v, char *why, size_t whylen)
{
	struct {
		struct kvm_msrs h;
		struct kvm_msr_entry e[3];
	} msrs = { .h.nmsrs = 3 };
	struct kvm_sregs sregs;
	struct kvm_regs regs;

	if (ioctl(v->vcpu, KVM_GET_SREGS, &sregs) < 0) {
		snprintf(why, whylen, "KVM_GET_SREGS: %s", strerror(errno));
		return -1;
	}
	hc_seg(&sregs.cs, HC_SEL_KCODE, 0xb, 1);
	hc_seg(&sregs.ds, HC_SEL_KDATA, 0x3, 0);
	sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
	sregs.gdt.base = HC_GDT;
	sregs.gdt.limit = 5 * 8 - 1;
	sregs.cr3 = HC_PML4;
	sregs.cr4 = 0x20;                       /* PAE */
	sregs.cr0 = 0x80050033;                 /* PG WP NE ET MP PE */
	sregs.efer = 0x501;                     /* LMA LME SCE */
	if (ioctl(v->vcpu, KVM_SET_SREGS, &sregs) < 0) {
		snprintf(why, whylen, "KVM_SET_SREGS (long mode): %s", strerror(errno));
		return -1;
	}
	msrs.e[0] = (struct kvm_msr_entry){ .index = HC_MSR_STAR,
		.data = (uint64_t)HC_SYSRET_BASE << 48 | (uint64_t)HC_SEL_KCODE << 32 };
	msrs.e[1] = (struct kvm_msr_entry){ .index = HC_MSR_LSTAR,
		.data = HC_CODE + hostcheck_probe_entry_off };
	msrs.e[2] = (struct kvm_msr_entry){ .index = HC_MSR_SFMASK, .data = 0 };
	if (ioctl(v->vcpu, KVM_SET_MSRS, &msrs) != 3) {
		snprintf(why, whylen, "KVM_SET_MSRS (STAR/LSTAR/SFMASK) refused");
		return -1;
	}
	memset(&regs, 0, sizeof(regs));
	regs.rip = HC_CODE;
	regs.rsp = HC_STACK;
	regs.rflags = 2;
	if (ioctl(v->vcpu, KVM_SET_REGS, &regs) < 0) {
		snprintf(why, whylen, "KVM_SET_REGS: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/* Handles one port write; returns 1 when the probe has said all it will. */
static int hc_pio(struct hostcheck_vm *v, struct hostcheck_report *r)
{
	const struct kvm_run *run = v->run;
	uint32_t val = 0;

	if (run->io.direction != KVM_EXIT_IO_OUT || run->io.size != 4 || run->io.count != 1) {
		snprintf(r->stop, sizeof(r->stop), "unexpected port access to 0x%x", run->io.port);
		return 1;
	}
	memcpy(&val, (const uint8_t *)run + run->io.data_offset, 4);
	switch (run->io.port) {
	case HC_PORT_USER:
		r->user_cs = val & 0xffff;
		return 0;
	case HC_PORT_ENTRY:
		r->entry_cs = val & 0xffff;
		return 1;
	default:
		snprintf(r->stop, sizeof(r->stop), "unexpected write to port 0x%x", run->io.port);
		return 1;
	}
}

static enum hostcheck_exit hc_exit(struct hostcheck_vm *v, void *report)
{
	struct hostcheck_report *r = report;

	switch (v->run->exit_reason) {
	case KVM_EXIT_IO:
		return hc_pio(v, r) ? HOSTCHECK_EXIT_DONE : HOSTCHECK_EXIT_RUN_ON;
	case KVM_EXIT_SHUTDOWN:
		snprintf(r->stop, sizeof(r->stop), "the probe guest faulted (triple fault)");
		return HOSTCHECK_EXIT_DONE;
	case KVM_EXIT_HLT:
		snprintf(r->stop, sizeof(r->stop), "the probe guest halted early");
		return HOSTCHECK_EXIT_DONE;
	default:
		return HOSTCHECK_EXIT_OTHER;
	}
}

const char *hostcheck_reason(const struct hostcheck_report *r, char *buf, size_t len)
{
	if (r->entry_cs >= 0 && (r->entry_cs & 3) == 0 && r->user_cs >= 0 && (r->user_cs & 3) == 3)
		return NULL;
	if (r->entry_cs >= 0 && (r->entry_cs & 3) != 0)
		snprintf(buf, len, "a user-mode syscall reaches the kernel entry point still in user mode "
			 "(CPL %d)", r->entry_cs & 3);
	else if (r->user_cs < 0)
		snprintf(buf, len, "the probe did not reach user mode: %s",
			 r->stop[0] ? r->stop : "no report");
	else if ((r->user_cs & 3) != 3)
		snprintf(buf, len, "sysret did not enter user mode (CPL %d)", r->user_cs & 3);
	else
		snprintf(buf, len, "a user-mode syscall did not reach the kernel entry point: %s",
			 r->stop[0] ? r->stop : "no report");
	return buf;
}

int hostcheck_main(void)
{
	struct hostcheck_report res = { .user_cs = -1, .entry_cs = -1 };
	char why[256] = "", reason[320];
	struct hostcheck_vm v;
	sigset_t saved;

	if (hostcheck_vm_init(&v, 0, HC_MEM_SIZE, why, sizeof(why)) < 0)
		return hostcheck_no_check(&v, why);
	hc_write_memory(&v);
	if (hc_set_cpuid(&v, why, sizeof(why)) < 0 || hc_set_regs(&v, why, sizeof(why)) < 0 ||
	    hostcheck_arm_timeout(&v, &saved, why, sizeof(why)) < 0)
		return hostcheck_no_check(&v, why);
	hostcheck_vm_run(&v, res.stop, sizeof(res.stop), hc_exit, &res);
	hostcheck_disarm_timeout(&saved);
	return hostcheck_verdict(&v, hostcheck_reason(&res, reason, sizeof(reason)));
}

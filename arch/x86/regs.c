/* Long-mode entry state for direct boot, and the register dump. */
#include <errno.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>

#include "cvmm/log.h"
#include "cvmm/x86_cpu.h"
#include "cvmm/x86_layout.h"

#define CR0_PE (1ULL << 0)
#define CR0_ET (1ULL << 4)
#define CR0_NE (1ULL << 5)
#define CR0_PG (1ULL << 31)
#define CR4_PAE (1ULL << 5)
#define EFER_LME (1ULL << 8)
#define EFER_LMA (1ULL << 10)
#define PTE_PRESENT 0x1ULL
#define PTE_RW 0x2ULL
#define PTE_PS 0x80ULL

#define MSR_IA32_MISC_ENABLE 0x1a0
#define MSR_MTRR_DEF_TYPE 0x2ff
#define MSR_IA32_APICBASE 0x1b
#define MSR_IA32_TSC_DEADLINE 0x6e0
#define APICBASE_ENABLE (1ULL << 11)
#define APICBASE_BSP (1ULL << 8)
#define APIC_DEFAULT_BASE 0xfee00000ULL

#define REGS_CODE_SEL 0x10
#define REGS_DATA_SEL 0x18
#define REGS_TSS_SEL 0x20
#define REGS_GDT_ENTRIES 6  /* null, null, code, data, 16-byte TSS */

static uint64_t regs_gdt_entry(uint32_t base, uint32_t limit, uint16_t flags)
{
	return ((uint64_t)(base & 0xff000000u) << 32) | ((uint64_t)(flags & 0xf0ffu) << 40) |
	       ((uint64_t)(limit & 0x000f0000u) << 32) | ((uint64_t)(base & 0x00ffffffu) << 16) |
	       (limit & 0xffffu);
}

int x86_boot_tables_write(struct gmem *mem)
{
	uint64_t gdt[REGS_GDT_ENTRIES] = {
		0, 0,
		regs_gdt_entry(0, 0xfffff, 0xa09b),  /* 64-bit code, present, DPL 0 */
		regs_gdt_entry(0, 0xfffff, 0xc093),  /* data, read/write */
		regs_gdt_entry(0, 0x67, 0x008b),     /* busy 64-bit TSS (KVM wants a usable TR) */
		0,
	};
	uint64_t *pml4 = gmem_ptr(mem, X86_PML4_ADDR, 4096);
	uint64_t *pdpt = gmem_ptr(mem, X86_PDPT_ADDR, 4096);
	uint64_t *pd = gmem_ptr(mem, X86_PD_ADDR, 4096 * X86_PD_PAGES);
	void *g = gmem_ptr(mem, X86_GDT_ADDR, sizeof(gdt));
	void *idt = gmem_ptr(mem, X86_IDT_ADDR, 8);

	if (!pml4 || !pdpt || !pd || !g || !idt)
		return -EFAULT;
	memcpy(g, gdt, sizeof(gdt));
	memset(idt, 0, 8);
	memset(pml4, 0, 4096);
	memset(pdpt, 0, 4096);
	pml4[0] = X86_PDPT_ADDR | PTE_PRESENT | PTE_RW;
	for (unsigned i = 0; i < X86_PD_PAGES; i++)
		pdpt[i] = (X86_PD_ADDR + i * 4096ULL) | PTE_PRESENT | PTE_RW;
	for (unsigned i = 0; i < X86_PD_PAGES * 512; i++)
		pd[i] = ((uint64_t)i << 21) | PTE_PRESENT | PTE_RW | PTE_PS;
	return 0;
}

static void regs_seg(struct kvm_segment *s, uint16_t sel, uint8_t type, bool code)
{
	memset(s, 0, sizeof(*s));
	s->selector = sel;
	s->limit = 0xffffffff;
	s->type = type;
	s->present = 1;
	s->s = 1;
	s->g = 1;
	s->l = code;
	s->db = !code;
}

static int regs_ioctl(int fd, unsigned long req, void *arg, const char *what)
{
	if (ioctl(fd, req, arg) < 0) {
		int err = -errno;

		log_err("%s failed: %s", what, strerror(-err));
		return err;
	}
	return 0;
}

int x86_vcpu_setup_long_mode(int vcpu_fd, uint64_t cr3, uint64_t rip, uint64_t rsi, uint64_t rsp)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	int ret;

	ret = regs_ioctl(vcpu_fd, KVM_GET_SREGS, &sregs, "KVM_GET_SREGS");
	if (ret)
		return ret;
	regs_seg(&sregs.cs, REGS_CODE_SEL, 0xb, true);
	regs_seg(&sregs.ds, REGS_DATA_SEL, 0x3, false);
	sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
	memset(&sregs.tr, 0, sizeof(sregs.tr));
	sregs.tr.selector = REGS_TSS_SEL;
	sregs.tr.limit = 0x67;
	sregs.tr.type = 0xb;
	sregs.tr.present = 1;
	sregs.gdt.base = X86_GDT_ADDR;
	sregs.gdt.limit = REGS_GDT_ENTRIES * 8 - 1;
	sregs.idt.base = X86_IDT_ADDR;
	sregs.idt.limit = 0;
	sregs.cr0 = CR0_PE | CR0_ET | CR0_NE | CR0_PG;
	sregs.cr2 = sregs.cr8 = 0;
	memset(sregs.interrupt_bitmap, 0, sizeof(sregs.interrupt_bitmap));
	sregs.cr3 = cr3;
	sregs.cr4 = CR4_PAE;
	sregs.efer = EFER_LME | EFER_LMA;
	ret = regs_ioctl(vcpu_fd, KVM_SET_SREGS, &sregs, "KVM_SET_SREGS");
	if (ret)
		return ret;
	memset(&regs, 0, sizeof(regs));
	regs.rflags = 0x2;
	regs.rip = rip;
	regs.rsi = rsi;
	regs.rsp = regs.rbp = rsp;
	return regs_ioctl(vcpu_fd, KVM_SET_REGS, &regs, "KVM_SET_REGS");
}

int x86_vcpu_setup_bsp(int vcpu_fd, uint64_t entry, uint64_t boot_params)
{
	struct kvm_fpu fpu;
	int ret;

	ret = x86_vcpu_setup_long_mode(vcpu_fd, X86_PML4_ADDR, entry, boot_params, X86_BOOT_STACK);
	if (ret)
		return ret;
	memset(&fpu, 0, sizeof(fpu));
	fpu.fcw = 0x37f;
	fpu.mxcsr = 0x1f80;
	return regs_ioctl(vcpu_fd, KVM_SET_FPU, &fpu, "KVM_SET_FPU");
}

int x86_vcpu_setup_ap(int vcpu_fd)
{
	struct kvm_mp_state mp = { .mp_state = KVM_MP_STATE_UNINITIALIZED };

	return regs_ioctl(vcpu_fd, KVM_SET_MP_STATE, &mp, "KVM_SET_MP_STATE");
}

/* Sets an LVT entry's delivery mode and mask bit. */
static void regs_lvt(struct kvm_lapic_state *l, unsigned off, uint32_t mode, bool masked)
{
	uint32_t v;

	memcpy(&v, l->regs + off, 4);
	v = (v & ~0x700u & ~0x10000u) | mode << 8 | (masked ? 0x10000u : 0);
	memcpy(l->regs + off, &v, 4);
}

int x86_vcpu_setup_common(int vcpu_fd, bool bsp)
{
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e[2];
	} msrs = {
		.hdr.nmsrs = 2,
		.e = {
			{ .index = MSR_IA32_MISC_ENABLE, .data = 1 },          /* fast strings */
			{ .index = MSR_MTRR_DEF_TYPE, .data = 0x800 | 6 },     /* MTRRs on, write-back */
		},
	};
	struct kvm_lapic_state lapic;
	int ret, n;

	ret = regs_ioctl(vcpu_fd, KVM_GET_LAPIC, &lapic, "KVM_GET_LAPIC");
	if (ret)
		return ret;
	/* As firmware leaves them: the PIC's interrupts (ExtINT on LINT0) reach
	 * the BSP only; NMI on LINT1 everywhere. */
	regs_lvt(&lapic, 0x350, 7, !bsp);
	regs_lvt(&lapic, 0x360, 4, false);
	ret = regs_ioctl(vcpu_fd, KVM_SET_LAPIC, &lapic, "KVM_SET_LAPIC");
	if (ret)
		return ret;
	n = ioctl(vcpu_fd, KVM_SET_MSRS, &msrs);
	if (n != 2)
		log_warn("KVM_SET_MSRS set %d of 2 boot MSRs; continuing", n);
	return 0;
}

/* KVM's paravirtual MSRs (Linux's arch/x86/include/uapi/asm/kvm_para.h
 * numbers): while one is on, KVM writes into the guest page it names
 * (kvmclock, steal time, async page faults, PV EOI), which after a reboot
 * is the new kernel's memory. Each goes back to its power-on value. */
static const struct kvm_msr_entry regs_reset_msrs[] = {
	{ .index = 0x4b564d01, .data = 0 },   /* MSR_KVM_SYSTEM_TIME_NEW */
	{ .index = 0x12, .data = 0 },         /* MSR_KVM_SYSTEM_TIME */
	{ .index = 0x4b564d02, .data = 0 },   /* MSR_KVM_ASYNC_PF_EN */
	{ .index = 0x4b564d06, .data = 0 },   /* MSR_KVM_ASYNC_PF_INT */
	{ .index = 0x4b564d03, .data = 0 },   /* MSR_KVM_STEAL_TIME */
	{ .index = 0x4b564d04, .data = 0 },   /* MSR_KVM_PV_EOI_EN */
	{ .index = 0x4b564d05, .data = 1 },   /* MSR_KVM_POLL_CONTROL */
	{ .index = MSR_IA32_TSC_DEADLINE, .data = 0 },
};

/* Sets one MSR; false when KVM did not take it. */
static bool regs_set_msr(int vcpu_fd, uint32_t index, uint64_t data)
{
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e;
	} m = { .hdr.nmsrs = 1, .e = { .index = index, .data = data } };

	return ioctl(vcpu_fd, KVM_SET_MSRS, &m) == 1;
}

/* The local APIC as after RESET (SDM vol. 3, 11.4.7.1): every LVT masked,
 * DFR all ones, SVR 0xff (software-disabled), the version register kept. */
static void regs_lapic_reset(struct kvm_lapic_state *l, unsigned apic_id)
{
	static const unsigned lvts[] = { 0x2f0, 0x320, 0x330, 0x340, 0x350, 0x360, 0x370 };
	uint32_t version, v;

	memcpy(&version, l->regs + 0x30, 4);
	memset(l->regs, 0, sizeof(l->regs));
	memcpy(l->regs + 0x30, &version, 4);
	v = apic_id << 24;
	memcpy(l->regs + 0x20, &v, 4);
	v = 0xffffffffu;
	memcpy(l->regs + 0xe0, &v, 4);
	v = 0xff;
	memcpy(l->regs + 0xf0, &v, 4);
	v = 0x10000;
	for (unsigned i = 0; i < sizeof(lvts) / sizeof(lvts[0]); i++)
		memcpy(l->regs + lvts[i], &v, 4);
}

int x86_vcpu_reset(int vcpu_fd, unsigned apic_id, bool bsp)
{
	struct kvm_mp_state mp = { .mp_state = KVM_MP_STATE_RUNNABLE };
	struct kvm_vcpu_events ev = { .flags = KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SIPI_VECTOR |
					       KVM_VCPUEVENT_VALID_SHADOW | KVM_VCPUEVENT_VALID_SMM };
	struct kvm_debugregs dbg = { .dr6 = 0xffff0ff0, .dr7 = 0x400 };
	struct kvm_xcrs xcrs = { .nr_xcrs = 1, .xcrs = { { .xcr = 0, .value = 1 } } };
	struct kvm_lapic_state lapic;
	int ret;

	/* The APIC base first: x2APIC mode would otherwise read the local APIC
	 * state below in its own format. */
	if (!regs_set_msr(vcpu_fd, MSR_IA32_APICBASE, APIC_DEFAULT_BASE | APICBASE_ENABLE | (bsp ? APICBASE_BSP : 0))) {
		log_err("KVM_SET_MSRS: the APIC base of a vCPU being reset was refused");
		return -EIO;
	}
	for (size_t i = 0; i < sizeof(regs_reset_msrs) / sizeof(regs_reset_msrs[0]); i++)
		if (!regs_set_msr(vcpu_fd, regs_reset_msrs[i].index, regs_reset_msrs[i].data))
			log_debug("vCPU reset: KVM has no MSR %#x", regs_reset_msrs[i].index);
	ret = regs_ioctl(vcpu_fd, KVM_GET_LAPIC, &lapic, "KVM_GET_LAPIC");
	if (ret)
		return ret;
	regs_lapic_reset(&lapic, apic_id);
	ret = regs_ioctl(vcpu_fd, KVM_SET_LAPIC, &lapic, "KVM_SET_LAPIC");
	/* SMM state (a latched INIT among it) exists only where KVM has SMM. */
	if (!ret && ioctl(vcpu_fd, KVM_SET_VCPU_EVENTS, &ev) < 0) {
		ev.flags &= ~(uint32_t)KVM_VCPUEVENT_VALID_SMM;
		ret = regs_ioctl(vcpu_fd, KVM_SET_VCPU_EVENTS, &ev, "KVM_SET_VCPU_EVENTS");
	}
	if (!ret)
		ret = regs_ioctl(vcpu_fd, KVM_SET_DEBUGREGS, &dbg, "KVM_SET_DEBUGREGS");
	if (!ret)
		ret = regs_ioctl(vcpu_fd, KVM_SET_XCRS, &xcrs, "KVM_SET_XCRS");
	/* An AP waits for INIT/SIPI again through x86_vcpu_setup_ap. */
	if (!ret && bsp)
		ret = regs_ioctl(vcpu_fd, KVM_SET_MP_STATE, &mp, "KVM_SET_MP_STATE");
	return ret;
}

/* The bytes at the guest's rip, found through its own page tables. */
static void regs_dump_code(int vcpu_fd, unsigned id, const struct gmem *mem, uint64_t rip,
			   enum log_level level)
{
	struct kvm_translation tr = { .linear_address = rip };
	char hex[16 * 3 + 1];
	const uint8_t *code;
	uint64_t len = 16, contig;

	if (!mem || ioctl(vcpu_fd, KVM_TRANSLATE, &tr) < 0 || !tr.valid)
		return;
	code = gmem_translate(mem, tr.physical_address, len, &contig);
	if (!code)
		return;
	for (uint64_t i = 0; i < contig; i++)
		snprintf(hex + 3 * i, sizeof(hex) - 3 * i, " %02x", code[i]);
	log_msg(level, "vCPU %u: code at rip (gpa %#llx):%s", id, tr.physical_address, hex);
}

void x86_vcpu_dump(int vcpu_fd, unsigned id, const struct gmem *mem, enum log_level level)
{
	struct kvm_regs r;
	struct kvm_sregs s;

	if (ioctl(vcpu_fd, KVM_GET_REGS, &r) < 0 || ioctl(vcpu_fd, KVM_GET_SREGS, &s) < 0) {
		log_msg(level, "vCPU %u: cannot read registers: %s", id, strerror(errno));
		return;
	}
	log_msg(level, "vCPU %u: rip=%#llx rsp=%#llx rflags=%#llx cs=%#x ss=%#x", id, r.rip, r.rsp, r.rflags,
		s.cs.selector, s.ss.selector);
	log_msg(level, "vCPU %u: rax=%#llx rbx=%#llx rcx=%#llx rdx=%#llx rsi=%#llx rdi=%#llx rbp=%#llx", id,
		r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rbp);
	log_msg(level, "vCPU %u: r8=%#llx r9=%#llx r10=%#llx r11=%#llx r12=%#llx r13=%#llx r14=%#llx r15=%#llx",
		id, r.r8, r.r9, r.r10, r.r11, r.r12, r.r13, r.r14, r.r15);
	log_msg(level, "vCPU %u: cr0=%#llx cr2=%#llx cr3=%#llx cr4=%#llx efer=%#llx gdt=%#llx/%#x idt=%#llx/%#x",
		id, s.cr0, s.cr2, s.cr3, s.cr4, s.efer, s.gdt.base, s.gdt.limit, s.idt.base, s.idt.limit);
	regs_dump_code(vcpu_fd, id, mem, r.rip, level);
}

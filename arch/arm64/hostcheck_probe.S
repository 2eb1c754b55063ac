/*
 * The arm64 `cvmm --check-host` probe guest (arch/arm64/hostcheck.c). cvmm
 * copies the bytes between hostcheck_probe_start and hostcheck_probe_end to
 * a 4 KiB-aligned guest address and starts there in KVM's reset state:
 * EL1h, MMU off, DAIF masked, PSCI 0.2 enabled.
 *
 * The probe points VBAR_EL1 at its vector table, drops to EL0 with eret,
 * reports from EL0 and executes `svc`. Every vector reports its offset,
 * CurrentEL, ESR_EL1 and SPSR_EL1, then calls PSCI SYSTEM_OFF. Linux needs
 * the svc taken at EL1 through "lower EL, AArch64, synchronous" (0x400) with
 * an SVC syndrome. Reports are stores to an unbacked address, which KVM
 * hands to cvmm as MMIO exits. Everything is PC-relative.
 */
#define REPORT_BASE	0x09000000	/* HOSTCHECK_A64_REPORT in hostcheck.c */
#define REPORT_EL0	0x00
#define REPORT_VECTOR	0x08
#define REPORT_EL	0x10
#define REPORT_ESR	0x18
#define REPORT_SPSR	0x20
#define SPSR_EL0T_MASKED 0x3c0		/* M = EL0t, D A I F set */
#define PSCI_SYSTEM_OFF	0x84000008

	.section .rodata
	.globl hostcheck_probe_start, hostcheck_probe_end
	.balign 4096
hostcheck_probe_start:
	adr	x0, probe_vectors
	msr	vbar_el1, x0
	isb
	mov	x0, #SPSR_EL0T_MASKED
	msr	spsr_el1, x0
	adr	x0, probe_el0
	msr	elr_el1, x0
	eret
probe_el0:
	mov	x5, #REPORT_BASE
	mov	x1, #1
	str	x1, [x5, #REPORT_EL0]
	svc	#0
1:	b	1b				/* not reached: the vector never returns */

probe_handler:					/* x0: the vector's offset */
	mov	x5, #REPORT_BASE
	str	x0, [x5, #REPORT_VECTOR]
	mrs	x1, CurrentEL
	str	x1, [x5, #REPORT_EL]
	mrs	x1, esr_el1
	str	x1, [x5, #REPORT_ESR]
	mrs	x1, spsr_el1
	str	x1, [x5, #REPORT_SPSR]
	movz	w0, #(PSCI_SYSTEM_OFF & 0xffff)
	movk	w0, #(PSCI_SYSTEM_OFF >> 16), lsl #16
	hvc	#0
2:	b	2b				/* not reached: SYSTEM_OFF ends the VM */

	.macro probe_vector offset
	.balign 0x80
	mov	x0, #\offset
	b	probe_handler
	.endm

	.balign 2048
probe_vectors:
	.irp offset, 0x000, 0x080, 0x100, 0x180, 0x200, 0x280, 0x300, 0x380, \
		     0x400, 0x480, 0x500, 0x580, 0x600, 0x680, 0x700, 0x780
	probe_vector \offset
	.endr
hostcheck_probe_end:

	.section .note.GNU-stack, "", %progbits

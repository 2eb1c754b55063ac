/*
 * The `cvmm --check-host` probe guest (see vmm/hostcheck.c). cvmm copies the
 * bytes between hostcheck_probe_start and hostcheck_probe_end into guest
 * memory and enters them in 64-bit kernel mode (CPL 0) with EFER.SCE set,
 * STAR/LSTAR pointing at probe_kernel_entry and SFMASK 0.
 *
 * The probe drops to user mode with sysretq (RFLAGS.IOPL = 3, so user mode
 * may report with `out` without faulting), reports its CS from there, then
 * executes `syscall`. The LSTAR entry reports the CS it runs with: RPL 0 means
 * the syscall arrived in kernel mode, as Linux needs. Everything is
 * RIP-relative so the bytes run at any address.
 */
#define PORT_USER	0xe1	/* value: CS seen in user mode */
#define PORT_ENTRY	0xe2	/* value: CS seen at the syscall entry point */

	.section .rodata
	.code64
	.globl hostcheck_probe_start, hostcheck_probe_end, hostcheck_probe_entry_off
	.balign 16
hostcheck_probe_start:
	lea	probe_user(%rip), %rcx		/* sysret: RIP from RCX */
	mov	$0x3002, %r11			/* sysret: RFLAGS from R11, IOPL 3 */
	sysretq
probe_user:
	mov	%cs, %eax
	mov	$PORT_USER, %dx
	outl	%eax, (%dx)
	syscall
	hlt					/* not reached: the entry never returns */
probe_kernel_entry:
	mov	%cs, %eax
	mov	$PORT_ENTRY, %dx
	outl	%eax, (%dx)
	hlt
hostcheck_probe_end:

	.balign 8
hostcheck_probe_entry_off:
	.quad	probe_kernel_entry - hostcheck_probe_start

	.section .note.GNU-stack,"",@progbits

/*
 * Entry points of the test guest.
 * _start: cvmm enters here in 64-bit mode with boot_params in %rsi.
 * tg_trampoline_*: real-mode code the boot CPU copies to a page below 1 MiB;
 * an AP woken by INIT-SIPI-SIPI starts there and goes through 32-bit
 * protected mode (tg_ap32) to long mode (tg_ap64) on the guest's own GDT and
 * the boot CPU's page tables (tg_ap_cr3), then runs tg_ap_main(slot) on a stack of its own.
 */
#define SEL_CODE64	0x08
#define SEL_DATA	0x10
#define SEL_CODE32	0x18
#define AP_STACK_SIZE	4096
#define TG_MAX_CPUS	64
#define MSR_EFER	0xc0000080

	.section .text.head, "ax"
	.code64
	.globl _start
_start:
	cli
	lea	tg_bsp_stack_top(%rip), %rsp
	mov	%rsi, %rdi
	call	tg_load_gdt
	call	tg_main
	call	tg_reset

/* Loads the guest's GDT and reloads every segment register from it. */
	.globl tg_load_gdt
tg_load_gdt:
	lgdt	tg_gdt_ptr(%rip)
	mov	$SEL_DATA, %ax
	mov	%ax, %ds
	mov	%ax, %es
	mov	%ax, %ss
	mov	%ax, %fs
	mov	%ax, %gs
	pop	%rax
	push	$SEL_CODE64
	push	%rax
	lretq

	.code32
tg_ap32:
	mov	$SEL_DATA, %ax
	mov	%ax, %ds
	mov	%ax, %es
	mov	%ax, %ss
	mov	%cr4, %eax
	or	$0x20, %eax			/* PAE */
	mov	%eax, %cr4
	mov	tg_ap_cr3, %eax
	mov	%eax, %cr3
	mov	$MSR_EFER, %ecx
	rdmsr
	or	$0x100, %eax			/* LME */
	wrmsr
	mov	%cr0, %eax
	or	$0x80000001, %eax		/* PG PE */
	mov	%eax, %cr0
	ljmp	$SEL_CODE64, $tg_ap64

	.code64
tg_ap64:
	mov	$1, %eax
	lock xadd %eax, tg_ap_next(%rip)
	cmp	$TG_MAX_CPUS - 1, %eax
	jae	2f
	mov	%eax, %edi
	lea	1(%rax), %rax
	shl	$12, %rax			/* AP_STACK_SIZE */
	lea	tg_ap_stacks(%rip), %rsp
	add	%rax, %rsp
	call	tg_ap_main
2:	cli
	hlt
	jmp	2b

/* Copied to a page P below 1 MiB and entered with CS = P >> 4, IP = 0. */
	.section .rodata
	.code16
	.globl tg_trampoline_start, tg_trampoline_end
	.balign 16
tg_trampoline_start:
	cli
	mov	%cs, %ax
	mov	%ax, %ds
	lgdtl	(tg_trampoline_gdt_ptr - tg_trampoline_start)
	mov	%cr0, %eax
	or	$1, %eax
	mov	%eax, %cr0
	ljmpl	$SEL_CODE32, $tg_ap32
	.balign 8
tg_trampoline_gdt_ptr:
	.word	tg_gdt_end - tg_gdt - 1
	.long	tg_gdt
tg_trampoline_end:
	.code64

	.balign 16
tg_gdt:
	.quad	0
	.quad	0x00af9a000000ffff		/* 0x08 code, 64-bit */
	.quad	0x00cf92000000ffff		/* 0x10 data */
	.quad	0x00cf9a000000ffff		/* 0x18 code, 32-bit */
tg_gdt_end:
tg_gdt_ptr:
	.word	tg_gdt_end - tg_gdt - 1
	.quad	tg_gdt

	.data
	.globl tg_ap_next
	.balign 4
tg_ap_next:
	.long	0

	.bss
	.balign 4096
tg_ap_stacks:
	.skip	AP_STACK_SIZE * (TG_MAX_CPUS - 1)
	.skip	16384
tg_bsp_stack_top:

	.section .note.GNU-stack, "", @progbits

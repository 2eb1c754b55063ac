/*
 * The guest-side half of --memory prefault=on (arch/x86/prefault.c): vCPU 0
 * runs these bytes in 64-bit mode, with every guest-physical address
 * identity-mapped, before the kernel is loaded into its registers. Each
 * access makes KVM build the stage-2 (nested page) mapping of its page now
 * rather than at the guest's first touch.
 *
 * In: rsi = a table of (start, end) guest-physical pairs, 4 KiB-aligned, an
 * end of 0 closing it. Reads every page's first byte (cvmm has allocated
 * RAM writable beforehand, so KVM maps each page writable at this read,
 * and a read changes nothing the kernel loader wrote), then reports done
 * with an `out` to PREFAULT_DONE_PORT (no in-kernel device claims it, so
 * KVM exits to cvmm).
 */
#define PREFAULT_DONE_PORT	0x80

	.section .rodata
	.code64
	.globl x86_prefault_stub_start, x86_prefault_stub_end
	.balign 16
x86_prefault_stub_start:
next_range:
	mov	(%rsi), %rax
	mov	8(%rsi), %rcx
	test	%rcx, %rcx
	jz	done
next_page:
	mov	(%rax), %dl
	add	$4096, %rax
	cmp	%rcx, %rax
	jb	next_page
	add	$16, %rsi
	jmp	next_range
done:
	out	%al, $PREFAULT_DONE_PORT
	hlt
x86_prefault_stub_end:

	.section .note.GNU-stack,"",@progbits

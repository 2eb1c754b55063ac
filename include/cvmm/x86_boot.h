/*
 * x86_64 direct boot (Linux boot.rst, "64-bit boot protocol"): parse a
 * bzImage (protocol >= 2.06 with XLF_KERNEL_64) or a 64-bit ELF (vmlinux or
 * a freestanding guest), plan where kernel and initramfs go, and write them
 * with boot_params, command line and e820 map into guest memory.
 *
 * Contract with ELF guests: entered in 64-bit mode at e_entry (translated to
 * a physical address when it falls in a segment's p_vaddr range), paging on
 * with the first 4 GiB identity-mapped, cs = 0x10, ds/es/ss = 0x18,
 * interrupts off, rsi = boot_params (e820 map at +0x2d0, count at +0x1e8,
 * command line at hdr.cmd_line_ptr). PT_LOAD segments must lie at or above
 * 1 MiB (p_paddr) and inside RAM below 3 GiB.
 */
#ifndef CVMM_X86_BOOT_H
#define CVMM_X86_BOOT_H

#include <stddef.h>
#include <stdint.h>

#include "cvmm/gmem.h"

enum x86_kernel_kind { X86_KERNEL_BZIMAGE, X86_KERNEL_ELF };

#define X86_ELF_MAX_SEGS 16

struct x86_kernel_seg {
	uint64_t paddr, filesz, memsz, offset;
};

struct x86_kernel {
	enum x86_kernel_kind kind;
	const uint8_t *data;        /* the file's bytes (not owned) */
	size_t size;
	/* bzImage */
	uint16_t version;           /* boot protocol, e.g. 0x020f */
	size_t setup_size;          /* bytes before the protected-mode kernel */
	size_t header_end;          /* end of the setup header in the file */
	uint32_t initrd_addr_max;
	uint32_t cmdline_size;      /* longest command line, without the NUL */
	uint64_t pref_address;
	uint32_t init_size;         /* memory the kernel needs from its load address */
	uint32_t kernel_alignment;
	int relocatable;
	/* ELF */
	struct x86_kernel_seg segs[X86_ELF_MAX_SEGS];
	unsigned nsegs;
	uint64_t elf_entry;         /* physical */
};

/* Where things go in guest memory. */
struct x86_boot_plan {
	uint64_t kernel_addr, kernel_end;  /* [addr, end) is the kernel's */
	uint64_t entry;                    /* 64-bit entry point (physical) */
	uint64_t initrd_addr, initrd_size; /* initrd_size 0: none */
};

/* Recognises and checks a kernel image. 0, or -ENOEXEC (neither bzImage nor
 * ELF) / -EINVAL (unusable: 32-bit only, too old, malformed) with a one-line
 * reason in err. */
int x86_kernel_parse(struct x86_kernel *k, const uint8_t *data, size_t size, char *err, size_t errlen);

/* Places kernel and initramfs in ram_size bytes of RAM. 0, or -E2BIG with a
 * reason in err (memory too small, command line too long, a kernel that
 * cannot be placed). */
int x86_boot_plan(const struct x86_kernel *k, uint64_t ram_size, uint64_t initrd_size,
		  size_t cmdline_len, struct x86_boot_plan *p, char *err, size_t errlen);

/* Fills the 4 KiB boot_params page for plan p (e820 for ram_size, the
 * command line at X86_CMDLINE_ADDR, the RSDP at rsdp). */
void x86_boot_params_build(uint8_t zp[4096], const struct x86_kernel *k, const struct x86_boot_plan *p,
			   uint64_t ram_size, uint64_t rsdp);

/* Copies kernel, initramfs, command line and boot_params into mem. 0 or
 * -EFAULT when the plan does not fit mem (a bug: the plan checked it). */
int x86_boot_load(struct gmem *mem, const struct x86_kernel *k, const struct x86_boot_plan *p,
		  const uint8_t *initrd, const char *cmdline, uint64_t ram_size, uint64_t rsdp);

/* Linux's e820 entry as it appears in boot_params. */
struct x86_e820_entry {
	uint64_t addr, size;
	uint32_t type;
} __attribute__((packed));

#define X86_E820_RAM 1
#define X86_E820_RESERVED 2
#define X86_E820_MAX 128

/* The e820 map for ram_size bytes of RAM; returns the number of entries. */
unsigned x86_e820_build(uint64_t ram_size, struct x86_e820_entry *e, unsigned max);

#endif

/* Placing kernel and initramfs, and writing boot_params (Linux zero-page.rst). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cvmm/le.h"
#include "cvmm/x86_boot.h"
#include "cvmm/x86_layout.h"

/* boot_params offsets */
#define ZP_ACPI_RSDP		0x070
#define ZP_EXT_RAMDISK_IMAGE	0x0c0
#define ZP_EXT_RAMDISK_SIZE	0x0c4
#define ZP_E820_ENTRIES		0x1e8
#define ZP_SETUP_HEADER		0x1f1
#define ZP_BOOT_FLAG		0x1fe
#define ZP_HEADER		0x202
#define ZP_VERSION		0x206
#define ZP_TYPE_OF_LOADER	0x210
#define ZP_LOADFLAGS		0x211
#define ZP_CODE32_START		0x214
#define ZP_RAMDISK_IMAGE	0x218
#define ZP_RAMDISK_SIZE		0x21c
#define ZP_HEAP_END_PTR		0x224
#define ZP_CMD_LINE_PTR		0x228
#define ZP_INITRD_ADDR_MAX	0x22c
#define ZP_KERNEL_ALIGNMENT	0x230
#define ZP_CMDLINE_SIZE		0x238
#define ZP_E820_TABLE		0x2d0

#define ZP_LOADED_HIGH		0x01
#define ZP_CAN_USE_HEAP		0x80
#define BOOT_PAGE		0x1000ULL
#define BOOT_MIB		(1024 * 1024ULL)

static uint64_t boot_align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

/* bzImage: its preferred address when it fits (no relocation needed), else
 * the lowest aligned address from 1 MiB if it is relocatable. The header is
 * the file's: a preferred address near 2^64 must not wrap the kernel's end
 * back into RAM. 0, or -E2BIG when the kernel cannot be placed. */
static int boot_plan_bzimage(const struct x86_kernel *k, struct x86_boot_plan *p, char *err,
			     size_t errlen)
{
	uint64_t align = k->kernel_alignment ? k->kernel_alignment : 2 * BOOT_MIB;
	uint64_t pref_end;
	bool pref_wraps = __builtin_add_overflow(k->pref_address, (uint64_t)k->init_size, &pref_end);

	p->kernel_addr = k->pref_address;
	if (k->relocatable && (pref_wraps || pref_end > X86_HOLE_START))
		p->kernel_addr = boot_align_up(X86_HIMEM_ADDR, align);
	else if (pref_wraps) {
		snprintf(err, errlen, "bzImage is not relocatable and its preferred address %#llx is "
			 "beyond any RAM", (unsigned long long)k->pref_address);
		return -E2BIG;
	}
	p->kernel_end = p->kernel_addr + k->init_size;
	/* 64-bit entry: startup_64, 0x200 into the protected-mode kernel. */
	p->entry = p->kernel_addr + 0x200;
	return 0;
}

static void boot_plan_elf(const struct x86_kernel *k, struct x86_boot_plan *p)
{
	p->kernel_addr = UINT64_MAX;
	p->kernel_end = 0;
	for (unsigned i = 0; i < k->nsegs; i++) {
		if (k->segs[i].paddr < p->kernel_addr)
			p->kernel_addr = k->segs[i].paddr;
		if (k->segs[i].paddr + k->segs[i].memsz > p->kernel_end)
			p->kernel_end = k->segs[i].paddr + k->segs[i].memsz;
	}
	p->entry = k->elf_entry;
}

int x86_boot_plan(const struct x86_kernel *k, uint64_t ram_size, uint64_t initrd_size,
		  size_t cmdline_len, struct x86_boot_plan *p, char *err, size_t errlen)
{
	struct x86_ram_range r[2];
	uint64_t low_end, top, need;

	x86_ram_ranges(ram_size, r);
	low_end = r[0].size;
	memset(p, 0, sizeof(*p));
	if (cmdline_len >= X86_CMDLINE_MAX ||
	    (k->kind == X86_KERNEL_BZIMAGE && k->cmdline_size && cmdline_len > k->cmdline_size)) {
		snprintf(err, errlen, "command line is %zu bytes, the kernel takes at most %llu: shorten --cmdline",
			 cmdline_len, k->kind == X86_KERNEL_BZIMAGE && k->cmdline_size ?
			 (unsigned long long)k->cmdline_size : X86_CMDLINE_MAX - 1);
		return -E2BIG;
	}
	if (k->kind == X86_KERNEL_BZIMAGE) {
		int ret = boot_plan_bzimage(k, p, err, errlen);

		if (ret)
			return ret;
	} else {
		boot_plan_elf(k, p);
	}
	need = boot_align_up(p->kernel_end, BOOT_PAGE) + boot_align_up(initrd_size, BOOT_PAGE);
	if (p->kernel_addr >= X86_HOLE_START || X86_HOLE_START - p->kernel_addr < p->kernel_end - p->kernel_addr) {
		/* No --memory helps: RAM below the PCI hole ends at 3 GiB. */
		snprintf(err, errlen, "the kernel must be loaded at %#llx..%#llx, past the 3 GiB below the PCI "
			 "hole where cvmm loads kernels (a kernel that is not relocatable, or too large)",
			 (unsigned long long)p->kernel_addr, (unsigned long long)p->kernel_end);
		return -E2BIG;
	}
	if (p->kernel_end > low_end) {
		snprintf(err, errlen, "memory too small: the kernel needs RAM up to %llu MiB, there are %llu MiB: "
			 "raise --memory size=", (unsigned long long)((p->kernel_end + BOOT_MIB - 1) / BOOT_MIB),
			 (unsigned long long)(ram_size / BOOT_MIB));
		return -E2BIG;
	}
	if (!initrd_size)
		return 0;
	top = low_end;
	if (k->kind == X86_KERNEL_BZIMAGE && (uint64_t)k->initrd_addr_max + 1 < top)
		top = (uint64_t)k->initrd_addr_max + 1;
	p->initrd_size = initrd_size;
	p->initrd_addr = top > initrd_size ? (top - initrd_size) & ~(BOOT_PAGE - 1) : 0;
	if (top <= initrd_size || p->initrd_addr < boot_align_up(p->kernel_end, BOOT_PAGE)) {
		if (top < low_end)
			snprintf(err, errlen, "the kernel takes an initramfs only below %llu MiB (its initrd_addr_max), "
				 "and kernel + initramfs need %llu MiB: use a smaller initramfs",
				 (unsigned long long)(top / BOOT_MIB),
				 (unsigned long long)((need + BOOT_MIB - 1) / BOOT_MIB));
		else
			snprintf(err, errlen, "memory too small for kernel + initramfs: they need %llu MiB below "
				 "%llu MiB, there are %llu MiB: raise --memory size=",
				 (unsigned long long)((need + BOOT_MIB - 1) / BOOT_MIB),
				 (unsigned long long)(top / BOOT_MIB), (unsigned long long)(ram_size / BOOT_MIB));
		return -E2BIG;
	}
	return 0;
}

void x86_boot_params_build(uint8_t zp[4096], const struct x86_kernel *k, const struct x86_boot_plan *p,
			   uint64_t ram_size, uint64_t rsdp)
{
	struct x86_e820_entry e820[X86_E820_MAX];
	unsigned n;

	memset(zp, 0, 4096);
	if (k->kind == X86_KERNEL_BZIMAGE) {
		memcpy(zp + ZP_SETUP_HEADER, k->data + ZP_SETUP_HEADER, k->header_end - ZP_SETUP_HEADER);
	} else {
		/* An ELF kernel has no setup header: describe this loader in one. */
		le_put16(zp + ZP_BOOT_FLAG, 0xaa55);
		memcpy(zp + ZP_HEADER, "HdrS", 4);
		le_put16(zp + ZP_VERSION, 0x020f);
		le_put32(zp + ZP_KERNEL_ALIGNMENT, 0x1000000);
		le_put32(zp + ZP_CMDLINE_SIZE, (uint32_t)(X86_CMDLINE_MAX - 1));
		le_put32(zp + ZP_INITRD_ADDR_MAX, (uint32_t)(X86_HOLE_START - 1));
	}
	zp[ZP_TYPE_OF_LOADER] = 0xff;
	zp[ZP_LOADFLAGS] |= ZP_LOADED_HIGH | ZP_CAN_USE_HEAP;
	le_put32(zp + ZP_CODE32_START, (uint32_t)p->kernel_addr);
	le_put16(zp + ZP_HEAP_END_PTR, 0xfe00);
	le_put32(zp + ZP_CMD_LINE_PTR, (uint32_t)X86_CMDLINE_ADDR);
	le_put32(zp + ZP_RAMDISK_IMAGE, (uint32_t)p->initrd_addr);
	le_put32(zp + ZP_RAMDISK_SIZE, (uint32_t)p->initrd_size);
	le_put32(zp + ZP_EXT_RAMDISK_IMAGE, (uint32_t)(p->initrd_addr >> 32));
	le_put32(zp + ZP_EXT_RAMDISK_SIZE, (uint32_t)(p->initrd_size >> 32));
	le_put64(zp + ZP_ACPI_RSDP, rsdp);
	n = x86_e820_build(ram_size, e820, X86_E820_MAX);
	zp[ZP_E820_ENTRIES] = (uint8_t)n;
	memcpy(zp + ZP_E820_TABLE, e820, n * sizeof(e820[0]));
}

static int boot_copy(struct gmem *mem, uint64_t gpa, const void *src, uint64_t len, uint64_t zero_len)
{
	uint8_t *dst;

	if (!len && !zero_len)
		return 0;
	dst = gmem_ptr(mem, gpa, len + zero_len);
	if (!dst)
		return -EFAULT;
	memcpy(dst, src, len);
	memset(dst + len, 0, zero_len);
	return 0;
}

int x86_boot_load(struct gmem *mem, const struct x86_kernel *k, const struct x86_boot_plan *p,
		  const uint8_t *initrd, const char *cmdline, uint64_t ram_size, uint64_t rsdp)
{
	size_t clen = strlen(cmdline);
	uint8_t zp[4096];
	int ret = 0;

	if (k->kind == X86_KERNEL_BZIMAGE) {
		ret = boot_copy(mem, p->kernel_addr, k->data + k->setup_size, k->size - k->setup_size, 0);
	} else {
		for (unsigned i = 0; i < k->nsegs && !ret; i++)
			ret = boot_copy(mem, k->segs[i].paddr, k->data + k->segs[i].offset, k->segs[i].filesz,
					k->segs[i].memsz - k->segs[i].filesz);
	}
	if (!ret && p->initrd_size)
		ret = boot_copy(mem, p->initrd_addr, initrd, p->initrd_size, 0);
	if (!ret)
		ret = boot_copy(mem, X86_CMDLINE_ADDR, cmdline, clen, 1);
	if (ret)
		return ret;
	x86_boot_params_build(zp, k, p, ram_size, rsdp);
	return boot_copy(mem, X86_ZERO_PAGE_ADDR, zp, sizeof(zp), 0);
}

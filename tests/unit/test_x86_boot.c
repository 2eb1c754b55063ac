#include <check.h>
#include <elf.h>
#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>

#include "cvmm/le.h"
#include "cvmm/x86_boot.h"
#include "cvmm/x86_cpu.h"
#include "cvmm/x86_layout.h"
#include "cvmm/x86_tables.h"
#include "check_run.h"

#define MIB (1024 * 1024ULL)
#define BZ_SIZE 0x8000

static uint8_t bz[BZ_SIZE];
static char err[256];

/* A bzImage header as a 64-bit relocatable kernel of protocol 2.15 has it:
 * 4 setup sectors after the boot sector, payload after them. */
static void test_make_bzimage(void)
{
	memset(bz, 0, sizeof(bz));
	bz[0x1f1] = 4;
	le_put16(bz + 0x1fe, 0xaa55);
	bz[0x200] = 0xeb;
	bz[0x201] = 0x6a;  /* header ends at 0x26c */
	memcpy(bz + 0x202, "HdrS", 4);
	le_put16(bz + 0x206, 0x020f);
	bz[0x211] = 0x01;  /* LOADED_HIGH */
	le_put32(bz + 0x22c, 0x7fffffff);
	le_put32(bz + 0x230, 0x200000);
	bz[0x234] = 1;
	le_put16(bz + 0x236, 0x7f);  /* XLF_KERNEL_64 and friends */
	le_put32(bz + 0x238, 2047);
	le_put64(bz + 0x258, 0x1000000);
	le_put32(bz + 0x260, 0x2000000);
	memset(bz + 0xa00, 0x90, 0x100);
}

START_TEST(bzimage_parses)
{
	struct x86_kernel k;

	test_make_bzimage();
	ck_assert_int_eq(x86_kernel_parse(&k, bz, sizeof(bz), err, sizeof(err)), 0);
	ck_assert_int_eq(k.kind, X86_KERNEL_BZIMAGE);
	ck_assert_uint_eq(k.version, 0x020f);
	ck_assert_uint_eq(k.setup_size, 5 * 512);
	ck_assert_uint_eq(k.header_end, 0x26c);
	ck_assert_uint_eq(k.pref_address, 0x1000000);
	ck_assert_uint_eq(k.init_size, 0x2000000);
	ck_assert_uint_eq(k.cmdline_size, 2047);
	ck_assert_uint_eq(k.initrd_addr_max, 0x7fffffff);
}
END_TEST

START_TEST(bzimage_bad_headers)
{
	struct x86_kernel k;

	test_make_bzimage();
	le_put16(bz + 0x206, 0x0205);
	ck_assert_int_eq(x86_kernel_parse(&k, bz, sizeof(bz), err, sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "too old"));

	test_make_bzimage();
	le_put16(bz + 0x236, 0x7e);
	ck_assert_int_eq(x86_kernel_parse(&k, bz, sizeof(bz), err, sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "32-bit"));

	test_make_bzimage();
	le_put16(bz + 0x206, 0x0206);  /* 2.06 has no 64-bit entry flag at all */
	ck_assert_int_eq(x86_kernel_parse(&k, bz, sizeof(bz), err, sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "32-bit"));

	test_make_bzimage();
	bz[0x211] = 0;
	ck_assert_int_eq(x86_kernel_parse(&k, bz, sizeof(bz), err, sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "zImage"));

	test_make_bzimage();
	bz[0x1f1] = 0x7f;  /* setup claims more than the file holds */
	ck_assert_int_eq(x86_kernel_parse(&k, bz, sizeof(bz), err, sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "truncated"));

	test_make_bzimage();
	bz[0x201] = 0x10;  /* setup header shorter than a 2.10+ one */
	ck_assert_int_eq(x86_kernel_parse(&k, bz, sizeof(bz), err, sizeof(err)), -EINVAL);

	test_make_bzimage();
	le_put32(bz + 0x230, 0x300000);  /* alignment not a power of two */
	ck_assert_int_eq(x86_kernel_parse(&k, bz, sizeof(bz), err, sizeof(err)), -EINVAL);

	/* A body over 3 GiB fits nowhere below the PCI hole (only the header
	 * is read: the size alone decides). */
	test_make_bzimage();
	ck_assert_int_eq(x86_kernel_parse(&k, bz, (4ULL << 30) + 0x2000, err, sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "3 GiB"));

	test_make_bzimage();
	memcpy(bz + 0x202, "HdrT", 4);
	ck_assert_int_eq(x86_kernel_parse(&k, bz, sizeof(bz), err, sizeof(err)), -ENOEXEC);
	ck_assert_str_eq(err, "not a kernel: neither a bzImage nor an ELF file");
	ck_assert_int_eq(x86_kernel_parse(&k, bz, 0x100, err, sizeof(err)), -ENOEXEC);
}
END_TEST

/* Found by the kernel fuzz target (tests/fuzz/crashes/kernel/): a kernel
 * that is not relocatable, with a preferred address so high that adding
 * init_size wraps, was planned at that address (its end, wrapped, looked
 * below the end of RAM) and the load then failed as an internal error. */
START_TEST(bzimage_plan_address_wraps)
{
	struct x86_boot_plan p;
	struct x86_kernel k;

	test_make_bzimage();
	bz[0x234] = 0;  /* not relocatable */
	le_put64(bz + 0x258, 0xfffffffffff00000ULL);
	ck_assert_int_eq(x86_kernel_parse(&k, bz, sizeof(bz), err, sizeof(err)), 0);
	ck_assert_int_eq(x86_boot_plan(&k, 512 * MIB, 0, 20, &p, err, sizeof(err)), -E2BIG);
	ck_assert_ptr_nonnull(strstr(err, "not relocatable"));
	/* Relocatable, the same header is placed from 1 MiB. */
	bz[0x234] = 1;
	ck_assert_int_eq(x86_kernel_parse(&k, bz, sizeof(bz), err, sizeof(err)), 0);
	ck_assert_int_eq(x86_boot_plan(&k, 512 * MIB, 0, 20, &p, err, sizeof(err)), 0);
	ck_assert_uint_eq(p.kernel_addr, 0x200000);
	ck_assert_uint_eq(p.kernel_end, 0x200000 + 0x2000000);
}
END_TEST

/* Limits no --memory lifts are said as such (found by review: the
 * messages asked for more memory). */
START_TEST(bzimage_plan_limits_named)
{
	struct x86_boot_plan p;
	struct x86_kernel k;

	/* Not relocatable, wanting 3 GiB and up: past RAM below the hole. */
	test_make_bzimage();
	bz[0x234] = 0;
	le_put64(bz + 0x258, 0xc0000000ULL);
	ck_assert_int_eq(x86_kernel_parse(&k, bz, sizeof(bz), err, sizeof(err)), 0);
	ck_assert_int_eq(x86_boot_plan(&k, 4096 * MIB, 0, 20, &p, err, sizeof(err)), -E2BIG);
	ck_assert_ptr_nonnull(strstr(err, "past the 3 GiB"));
	ck_assert_ptr_null(strstr(err, "--memory"));

	/* An initramfs the kernel takes only below 16 MiB. */
	test_make_bzimage();
	le_put32(bz + 0x22c, 16 * MIB - 1);
	ck_assert_int_eq(x86_kernel_parse(&k, bz, sizeof(bz), err, sizeof(err)), 0);
	ck_assert_int_eq(x86_boot_plan(&k, 1024 * MIB, 8 * MIB, 20, &p, err, sizeof(err)), -E2BIG);
	ck_assert_ptr_nonnull(strstr(err, "initrd_addr_max"));
	ck_assert_ptr_null(strstr(err, "--memory"));
}
END_TEST

START_TEST(bzimage_plan_and_params)
{
	struct x86_boot_plan p;
	struct x86_kernel k;
	static uint8_t zp[4096];
	const struct x86_e820_entry *e;

	test_make_bzimage();
	ck_assert_int_eq(x86_kernel_parse(&k, bz, sizeof(bz), err, sizeof(err)), 0);
	ck_assert_int_eq(x86_boot_plan(&k, 512 * MIB, 10 * MIB, 20, &p, err, sizeof(err)), 0);
	ck_assert_uint_eq(p.kernel_addr, 0x1000000);
	ck_assert_uint_eq(p.entry, 0x1000200);
	ck_assert_uint_eq(p.kernel_end, 0x3000000);
	ck_assert_uint_eq(p.initrd_addr, 512 * MIB - 10 * MIB);
	ck_assert_uint_eq(p.initrd_size, 10 * MIB);

	/* initrd_addr_max below the end of RAM caps where the initramfs goes. */
	le_put32(bz + 0x22c, 0x0fffffff);
	ck_assert_int_eq(x86_kernel_parse(&k, bz, sizeof(bz), err, sizeof(err)), 0);
	ck_assert_int_eq(x86_boot_plan(&k, 1024 * MIB, 10 * MIB + 123, 20, &p, err, sizeof(err)), 0);
	ck_assert_uint_le(p.initrd_addr + p.initrd_size, 0x10000000);
	ck_assert_uint_eq(p.initrd_addr % 4096, 0);
	ck_assert_uint_ge(p.initrd_addr, p.kernel_end);

	/* Memory too small: for the kernel, and for kernel + initramfs. */
	ck_assert_int_eq(x86_boot_plan(&k, 32 * MIB, 0, 20, &p, err, sizeof(err)), -E2BIG);
	ck_assert_ptr_nonnull(strstr(err, "memory too small"));
	ck_assert_int_eq(x86_boot_plan(&k, 64 * MIB, 40 * MIB, 20, &p, err, sizeof(err)), -E2BIG);
	ck_assert_ptr_nonnull(strstr(err, "kernel + initramfs"));
	/* Command line longer than the kernel's cmdline_size. */
	ck_assert_int_eq(x86_boot_plan(&k, 512 * MIB, 0, 2048, &p, err, sizeof(err)), -E2BIG);
	ck_assert_int_eq(x86_boot_plan(&k, 512 * MIB, 0, 2047, &p, err, sizeof(err)), 0);

	ck_assert_int_eq(x86_boot_plan(&k, 512 * MIB, 4096, 20, &p, err, sizeof(err)), 0);
	x86_boot_params_build(zp, &k, &p, 512 * MIB, 0xe0000);
	ck_assert_mem_eq(zp + 0x1f1, bz + 0x1f1, 0x202 - 0x1f1);
	ck_assert_mem_eq(zp + 0x202, "HdrS", 4);
	ck_assert_uint_eq(zp[0x210], 0xff);
	ck_assert_uint_eq(zp[0x211] & 0x81, 0x81);
	ck_assert_uint_eq(le_get32(zp + 0x228), X86_CMDLINE_ADDR);
	ck_assert_uint_eq(le_get32(zp + 0x218), p.initrd_addr);
	ck_assert_uint_eq(le_get32(zp + 0x21c), 4096);
	ck_assert_uint_eq(le_get64(zp + 0x070), 0xe0000);
	ck_assert_uint_eq(zp[0x1e8], 4);
	e = (const struct x86_e820_entry *)(zp + 0x2d0);
	ck_assert_uint_eq(e[2].addr, X86_HIMEM_ADDR);
	ck_assert_uint_eq(e[2].addr + e[2].size, 512 * MIB);
	/* The ECAM window the MCFG announces is reserved: Linux's MMCONFIG
	 * code ignores a window that is not. */
	ck_assert_uint_eq(e[3].addr, X86_PCI_ECAM_ADDR);
	ck_assert_uint_eq(e[3].size, X86_PCI_ECAM_SIZE);
	ck_assert_uint_eq(e[3].type, X86_E820_RESERVED);
	ck_assert_uint_eq(e[2].type, X86_E820_RAM);
}
END_TEST

/* A minimal ELF64 executable with one PT_LOAD. */
static size_t test_make_elf(uint8_t *buf, size_t len, uint64_t vaddr, uint64_t paddr, uint64_t entry)
{
	Elf64_Ehdr eh = { 0 };
	Elf64_Phdr ph = { 0 };

	memset(buf, 0, len);
	memcpy(eh.e_ident, ELFMAG, SELFMAG);
	eh.e_ident[EI_CLASS] = ELFCLASS64;
	eh.e_ident[EI_DATA] = ELFDATA2LSB;
	eh.e_type = ET_EXEC;
	eh.e_machine = EM_X86_64;
	eh.e_entry = entry;
	eh.e_phoff = sizeof(eh);
	eh.e_phentsize = sizeof(ph);
	eh.e_phnum = 1;
	ph.p_type = PT_LOAD;
	ph.p_offset = 0x1000;
	ph.p_vaddr = vaddr;
	ph.p_paddr = paddr;
	ph.p_filesz = 0x100;
	ph.p_memsz = 0x2000;
	memcpy(buf, &eh, sizeof(eh));
	memcpy(buf + sizeof(eh), &ph, sizeof(ph));
	return 0x1100;
}

START_TEST(elf_parses_and_translates_entry)
{
	static uint8_t elf[0x2000];
	struct x86_boot_plan p;
	struct x86_kernel k;
	size_t n;

	n = test_make_elf(elf, sizeof(elf), 0x100000, 0x100000, 0x100010);
	ck_assert_int_eq(x86_kernel_parse(&k, elf, n, err, sizeof(err)), 0);
	ck_assert_int_eq(k.kind, X86_KERNEL_ELF);
	ck_assert_uint_eq(k.nsegs, 1);
	ck_assert_uint_eq(k.elf_entry, 0x100010);
	ck_assert_int_eq(x86_boot_plan(&k, 16 * MIB, 0, 10, &p, err, sizeof(err)), 0);
	ck_assert_uint_eq(p.kernel_addr, 0x100000);
	ck_assert_uint_eq(p.kernel_end, 0x102000);
	ck_assert_uint_eq(p.entry, 0x100010);

	/* vmlinux style: virtual addresses high, entry virtual. */
	n = test_make_elf(elf, sizeof(elf), 0xffffffff81000000ULL, 0x1000000, 0xffffffff81000040ULL);
	ck_assert_int_eq(x86_kernel_parse(&k, elf, n, err, sizeof(err)), 0);
	ck_assert_uint_eq(k.elf_entry, 0x1000040);
}
END_TEST

START_TEST(elf_bad)
{
	static uint8_t elf[0x2000];
	struct x86_kernel k;
	size_t n;

	n = test_make_elf(elf, sizeof(elf), 0x100000, 0x100000, 0x100010);
	elf[EI_CLASS] = ELFCLASS32;
	ck_assert_int_eq(x86_kernel_parse(&k, elf, n, err, sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "32-bit"));

	n = test_make_elf(elf, sizeof(elf), 0x8000, 0x8000, 0x8000);
	ck_assert_int_eq(x86_kernel_parse(&k, elf, n, err, sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "1 MiB"));

	n = test_make_elf(elf, sizeof(elf), 0x100000, 0x100000, 0x200000);
	ck_assert_int_eq(x86_kernel_parse(&k, elf, n, err, sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "entry point"));

	/* Segment data past the end of the file. */
	n = test_make_elf(elf, sizeof(elf), 0x100000, 0x100000, 0x100000);
	ck_assert_int_eq(x86_kernel_parse(&k, elf, 0x1080, err, sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "outside the file"));

	/* Program headers past the end of the file. */
	ck_assert_int_eq(x86_kernel_parse(&k, elf, 0x50, err, sizeof(err)), -EINVAL);

	n = test_make_elf(elf, sizeof(elf), 0x100000, 0x100000, 0x100000);
	elf[18] = 3;  /* e_machine = EM_386 */
	ck_assert_int_eq(x86_kernel_parse(&k, elf, n, err, sizeof(err)), -EINVAL);

	/* Cut in its identification: truncated, not "32-bit". */
	ck_assert_int_eq(x86_kernel_parse(&k, (const uint8_t *)"\x7f" "ELF\x02", 5, err, sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "truncated"));

	/* A second segment over the first: loading it would wipe the first. */
	{
		Elf64_Ehdr eh;
		Elf64_Phdr ph[2];

		n = test_make_elf(elf, sizeof(elf), 0x100000, 0x100000, 0x100000);
		memcpy(&eh, elf, sizeof(eh));
		memcpy(&ph[0], elf + sizeof(eh), sizeof(ph[0]));
		ph[1] = ph[0];
		ph[1].p_paddr = ph[1].p_vaddr = 0x101000;
		ph[1].p_filesz = 0;
		eh.e_phnum = 2;
		memcpy(elf, &eh, sizeof(eh));
		memcpy(elf + sizeof(eh), ph, sizeof(ph));
		ck_assert_int_eq(x86_kernel_parse(&k, elf, n, err, sizeof(err)), -EINVAL);
		ck_assert_ptr_nonnull(strstr(err, "overlap"));
		/* Side by side they load. */
		ph[1].p_paddr = ph[1].p_vaddr = 0x102000;
		memcpy(elf + sizeof(eh), ph, sizeof(ph));
		ck_assert_int_eq(x86_kernel_parse(&k, elf, n, err, sizeof(err)), 0);
		ck_assert_uint_eq(k.nsegs, 2);
	}
}
END_TEST

START_TEST(e820_maps)
{
	struct x86_e820_entry e[X86_E820_MAX];
	unsigned n;

	n = x86_e820_build(512 * MIB, e, X86_E820_MAX);
	ck_assert_uint_eq(n, 4);
	ck_assert_uint_eq(e[3].addr, X86_PCI_ECAM_ADDR);
	ck_assert_uint_eq(e[3].size, X86_PCI_ECAM_SIZE);
	ck_assert_uint_eq(e[3].type, X86_E820_RESERVED);
	ck_assert_uint_eq(e[0].addr, 0);
	ck_assert_uint_eq(e[0].size, X86_EBDA_ADDR);
	ck_assert_uint_eq(e[0].type, X86_E820_RAM);
	ck_assert_uint_eq(e[1].addr, X86_EBDA_ADDR);
	ck_assert_uint_eq(e[1].addr + e[1].size, X86_HIMEM_ADDR);
	ck_assert_uint_eq(e[1].type, X86_E820_RESERVED);
	ck_assert_uint_eq(e[2].addr + e[2].size, 512 * MIB);

	/* 4 GiB of RAM: 3 GiB below the hole, 1 GiB from 4 GiB. */
	n = x86_e820_build(4096 * MIB, e, X86_E820_MAX);
	ck_assert_uint_eq(n, 5);
	ck_assert_uint_eq(e[2].addr + e[2].size, X86_HOLE_START);
	ck_assert_uint_eq(e[3].addr, X86_PCI_ECAM_ADDR);
	ck_assert_uint_eq(e[4].addr, X86_HIGH_RAM_ADDR);
	ck_assert_uint_eq(e[4].size, 1024 * MIB);
	ck_assert_uint_eq(e[4].type, X86_E820_RAM);

	n = x86_e820_build(3072 * MIB, e, X86_E820_MAX);
	ck_assert_uint_eq(n, 4);
}
END_TEST

/* Guest memory for load tests: 64 MiB of host memory at guest address 0. */
static uint8_t *test_gmem_setup(struct gmem *m, uint64_t size)
{
	uint8_t *ram = calloc(1, size);
	struct gmem_region r = { .gpa = 0, .size = size, .hva = ram, .fd = -1 };

	ck_assert_ptr_nonnull(ram);
	gmem_init(m);
	ck_assert_int_eq(gmem_add(m, &r), 0);
	return ram;
}

START_TEST(load_elf_into_memory)
{
	static uint8_t elf[0x2000];
	uint8_t initrd[100];
	struct x86_boot_plan p;
	struct x86_kernel k;
	struct gmem m;
	uint8_t *ram = test_gmem_setup(&m, 64 * MIB);
	size_t n = test_make_elf(elf, sizeof(elf), 0x100000, 0x100000, 0x100000);

	memset(elf + 0x1000, 0xcc, 0x100);
	memset(ram + 0x100100, 0x77, 0x100);  /* stale bytes where the bss goes */
	memset(initrd, 0x5a, sizeof(initrd));
	ck_assert_int_eq(x86_kernel_parse(&k, elf, n, err, sizeof(err)), 0);
	ck_assert_int_eq(x86_boot_plan(&k, 64 * MIB, sizeof(initrd), 9, &p, err, sizeof(err)), 0);
	ck_assert_int_eq(x86_boot_load(&m, &k, &p, initrd, "tg.cpus=1", 64 * MIB, X86_BIOS_ADDR), 0);
	ck_assert_uint_eq(ram[0x100000], 0xcc);
	ck_assert_uint_eq(ram[0x1000ff], 0xcc);
	ck_assert_uint_eq(ram[0x100100], 0);   /* p_memsz beyond p_filesz is zeroed */
	ck_assert_uint_eq(ram[0x101fff], 0);
	ck_assert_str_eq((char *)ram + X86_CMDLINE_ADDR, "tg.cpus=1");
	ck_assert_uint_eq(ram[p.initrd_addr], 0x5a);
	ck_assert_uint_eq(p.initrd_addr + sizeof(initrd) <= 64 * MIB, 1);
	ck_assert_mem_eq(ram + X86_ZERO_PAGE_ADDR + 0x202, "HdrS", 4);
	ck_assert_uint_eq(le_get32(ram + X86_ZERO_PAGE_ADDR + 0x228), X86_CMDLINE_ADDR);
	ck_assert_uint_eq(le_get64(ram + X86_ZERO_PAGE_ADDR + 0x70), X86_BIOS_ADDR);

	/* A plan that does not fit the memory is refused, not written past its end. */
	p.initrd_addr = 64 * MIB - 10;
	ck_assert_int_eq(x86_boot_load(&m, &k, &p, initrd, "", 64 * MIB, X86_BIOS_ADDR), -EFAULT);
	gmem_destroy(&m);
	free(ram);
}
END_TEST

START_TEST(load_bzimage_into_memory)
{
	struct x86_boot_plan p;
	struct x86_kernel k;
	struct gmem m;
	uint8_t *ram = test_gmem_setup(&m, 64 * MIB);

	test_make_bzimage();
	ck_assert_int_eq(x86_kernel_parse(&k, bz, sizeof(bz), err, sizeof(err)), 0);
	ck_assert_int_eq(x86_boot_plan(&k, 64 * MIB, 0, 0, &p, err, sizeof(err)), 0);
	ck_assert_int_eq(x86_boot_load(&m, &k, &p, NULL, "", 64 * MIB, X86_BIOS_ADDR), 0);
	/* The protected-mode part (after 5 sectors of setup) lands at pref_address. */
	ck_assert_mem_eq(ram + 0x1000000, bz + 0xa00, 0x100);
	ck_assert_uint_eq(le_get32(ram + X86_ZERO_PAGE_ADDR + 0x218), 0);
	gmem_destroy(&m);
	free(ram);
}
END_TEST

START_TEST(identity_page_tables)
{
	struct gmem m;
	uint8_t *ram = test_gmem_setup(&m, 2 * MIB);
	uint64_t e;

	ck_assert_int_eq(x86_boot_tables_write(&m), 0);
	e = le_get64(ram + X86_PML4_ADDR);
	ck_assert_uint_eq(e & ~0xfffULL, X86_PDPT_ADDR);
	ck_assert_uint_eq(e & 1, 1);
	for (unsigned i = 0; i < 4; i++)
		ck_assert_uint_eq(le_get64(ram + X86_PDPT_ADDR + 8 * i) & ~0xfffULL, X86_PD_ADDR + 4096 * i);
	/* PD entry n maps 2 MiB page n: 0xfee00000 (the LAPIC) is entry 2039. */
	e = le_get64(ram + X86_PD_ADDR + 8 * 2039);
	ck_assert_uint_eq(e & ~0xfffULL, 0xfee00000ULL & ~0x1fffffULL);
	ck_assert_uint_eq(e & 0x83, 0x83);
	/* GDT: 64-bit code at 0x10, data at 0x18. */
	ck_assert_uint_eq((le_get64(ram + X86_GDT_ADDR + 0x10) >> 53) & 1, 1);
	ck_assert_uint_eq((le_get64(ram + X86_GDT_ADDR + 0x18) >> 41) & 1, 1);
	gmem_destroy(&m);
	free(ram);
}
END_TEST

static uint8_t acpi_buf[0x10000];

/* The table at guest address gpa inside acpi_buf (based at X86_BIOS_ADDR). */
static const uint8_t *test_acpi_at(uint64_t gpa, const char *sig)
{
	const uint8_t *t;

	ck_assert_uint_ge(gpa, X86_BIOS_ADDR);
	ck_assert_uint_lt(gpa, X86_BIOS_ADDR + sizeof(acpi_buf));
	t = acpi_buf + (gpa - X86_BIOS_ADDR);
	ck_assert_mem_eq(t, sig, 4);
	if (strcmp(sig, "FACS"))
		ck_assert_uint_eq(x86_table_sum(t, le_get32(t + 4)), 0);
	return t;
}

START_TEST(acpi_tables)
{
	const unsigned ncpus = 3;
	const uint8_t *xsdt, *fadt, *madt, *dsdt, *mcfg, *e, *end;
	unsigned lapics = 0, ioapics = 0, isos = 0;
	int n = x86_acpi_build(acpi_buf, sizeof(acpi_buf), X86_BIOS_ADDR, ncpus, NULL, 0);

	ck_assert_int_gt(n, 0);
	ck_assert_mem_eq(acpi_buf, "RSD PTR ", 8);
	ck_assert_uint_eq(x86_table_sum(acpi_buf, 20), 0);
	ck_assert_uint_eq(x86_table_sum(acpi_buf, 36), 0);
	ck_assert_uint_eq(acpi_buf[15], 2);
	xsdt = test_acpi_at(le_get64(acpi_buf + 24), "XSDT");
	ck_assert_uint_eq(le_get32(xsdt + 4), 36 + 24);
	fadt = test_acpi_at(le_get64(xsdt + 36), "FACP");
	madt = test_acpi_at(le_get64(xsdt + 44), "APIC");
	mcfg = test_acpi_at(le_get64(xsdt + 52), "MCFG");

	/* MCFG: one ECAM allocation, segment 0, bus 0 (without it Linux says
	 * "fail to add MMCONFIG information"). */
	ck_assert_uint_eq(le_get32(mcfg + 4), 36 + 8 + 16);
	ck_assert_uint_eq(le_get64(mcfg + 44), X86_PCI_ECAM_ADDR);
	ck_assert_uint_eq(le_get16(mcfg + 52), 0);
	ck_assert_uint_eq(mcfg[54], 0);
	ck_assert_uint_eq(mcfg[55], 0);

	/* FADT: DSDT with \_S5, FACS, the PM blocks cvmm implements. */
	ck_assert_uint_eq(le_get32(fadt + 4), 276);
	ck_assert_uint_eq(le_get32(fadt + 40), le_get64(fadt + 140));
	dsdt = test_acpi_at(le_get64(fadt + 140), "DSDT");
	ck_assert_ptr_nonnull(memmem(dsdt + 36, le_get32(dsdt + 4) - 36, "\x08_S5_\x12", 6));
	test_acpi_at(le_get32(fadt + 36), "FACS");
	ck_assert_uint_eq(le_get32(fadt + 36) % 64, 0);
	ck_assert_uint_eq(le_get64(fadt + 132), 0);
	ck_assert_uint_eq(le_get16(fadt + 46), X86_ACPI_SCI_IRQ);
	ck_assert_uint_eq(le_get32(fadt + 56), X86_ACPI_PM1A_EVT);
	ck_assert_uint_eq(le_get32(fadt + 64), X86_ACPI_PM1A_CNT);
	ck_assert_uint_eq(le_get64(fadt + 172 + 4), X86_ACPI_PM1A_CNT);
	ck_assert_uint_eq(le_get32(fadt + 112) & (1u << 4), 0);  /* fixed power button */
	ck_assert_uint_eq(fadt[128], X86_ACPI_RESET_VALUE);

	/* MADT: one enabled LAPIC per vCPU with APIC ID = index, the IOAPIC. */
	ck_assert_uint_eq(le_get32(madt + 36), X86_LAPIC_ADDR);
	end = madt + le_get32(madt + 4);
	for (e = madt + 44; e < end; e += e[1]) {
		ck_assert_uint_ge(e[1], 2);
		if (e[0] == 0) {
			ck_assert_uint_eq(e[3], lapics);
			ck_assert_uint_eq(le_get32(e + 4) & 1, 1);
			lapics++;
		} else if (e[0] == 1) {
			ck_assert_uint_eq(le_get32(e + 4), X86_IOAPIC_ADDR);
			ck_assert_uint_eq(le_get32(e + 8), 0);
			ioapics++;
		} else if (e[0] == 2) {
			ck_assert_uint_eq(e[3], X86_ACPI_SCI_IRQ);
			isos++;
		}
	}
	ck_assert_ptr_eq(e, end);
	ck_assert_uint_eq(lapics, ncpus);
	ck_assert_uint_eq(ioapics, 1);
	ck_assert_uint_eq(isos, 1);

	ck_assert_int_eq(x86_acpi_build(acpi_buf, 100, X86_BIOS_ADDR, 1, NULL, 0), -ENOSPC);
	ck_assert_int_eq(x86_acpi_build(acpi_buf, sizeof(acpi_buf), X86_BIOS_ADDR, 0, NULL, 0), -ENOSPC);
	ck_assert_int_eq(x86_acpi_build(acpi_buf, sizeof(acpi_buf), X86_BIOS_ADDR, X86_MAX_CPUS + 1, NULL, 0),
			 -ENOSPC);
	ck_assert_int_gt(x86_acpi_build(acpi_buf, sizeof(acpi_buf), X86_BIOS_ADDR, X86_MAX_CPUS, NULL, 0), 0);
}
END_TEST

/* Decodes an AML PkgLength at p; returns its value and sets *n to its size. */
static size_t test_pkglen(const uint8_t *p, unsigned *n)
{
	size_t v;

	*n = 1 + (p[0] >> 6);
	if (*n == 1)
		return p[0] & 0x3f;
	v = p[0] & 0x0f;
	for (unsigned i = 1; i < *n; i++)
		v |= (size_t)p[i] << (4 + 8 * (i - 1));
	return v;
}

/* Checks the _CRS buffer that follows "_CRS" at name: descriptors that
 * walk to an end tag at the buffer's end. Returns the first descriptor. */
static const uint8_t *test_crs(const uint8_t *name, const uint8_t **end)
{
	const uint8_t *crs = name + 5, *d;
	unsigned n;
	size_t len;

	ck_assert_mem_eq(name, "_CRS\x11", 5);
	len = test_pkglen(crs, &n);
	ck_assert_uint_eq(crs[n], 0x0a);
	ck_assert_uint_eq(crs[n + 1], len - n - 2);
	*end = crs + len - 2;
	ck_assert_mem_eq(*end, "\x79\x00", 2);
	for (d = crs + n + 2; d < *end;) {
		d += d[0] & 0x80 ? 3 + le_get16(d + 1) : 1 + (d[0] & 7);
		ck_assert(d <= *end);
	}
	return crs + n + 2;
}

/* The body of Device (name) in aml: checks the PkgLength lies inside. */
static const uint8_t *test_device(const uint8_t *aml, size_t total, const char *name, const uint8_t **end)
{
	char op[6] = { 0x5b, (char)0x82 };
	const uint8_t *dev;
	unsigned n;
	size_t len;

	for (dev = aml; (dev = memmem(dev, total - (size_t)(dev - aml), op, 2)); dev += 2) {
		len = test_pkglen(dev + 2, &n);
		if (!memcmp(dev + 2 + n, name, 4)) {
			*end = dev + 2 + len;
			ck_assert(*end <= aml + total);
			return dev + 2 + n + 4;
		}
	}
	ck_abort_msg("no Device (%s)", name);
	return NULL;
}

START_TEST(dsdt_aml)
{
	static uint8_t aml[2048];
	static const struct x86_mmio_dev mmio[2] = { { 0xd0000000, 0x1000, 5 }, { 0xd0001000, 0x1000, 6 } };
	const uint8_t *scope, *dev, *dev_end, *d, *end;
	unsigned n;
	size_t len;
	int total = x86_dsdt_aml(aml, sizeof(aml), mmio, 2);
	bool window = false;

	ck_assert_int_gt(total, 0);
	ck_assert_mem_eq(aml, "\x08_S5_\x12\x08\x04\x0a\x05\x0a\x05\x00\x00", 14);
	/* Scope (\_SB) runs to the end of the AML and holds the devices. */
	scope = aml + 14;
	ck_assert_uint_eq(scope[0], 0x10);
	len = test_pkglen(scope + 1, &n);
	ck_assert_uint_eq(1 + len, (size_t)total - 14);
	ck_assert_mem_eq(scope + 1 + n, "\\_SB_\x5b\x82", 7);

	/* PCI0: the host bridge, with the memory window cvmm's layout reserves
	 * for PCI in its _CRS, and no _PRT (no INTx). */
	dev = test_device(aml, (size_t)total, "PCI0", &dev_end);
	ck_assert_mem_eq(dev, "\x08_HID\x0c\x41\xd0\x0a\x03", 10);
	ck_assert_ptr_null(memmem(aml, (size_t)total, "_PRT", 4));
	for (d = test_crs(memmem(dev, (size_t)(dev_end - dev), "_CRS", 4), &end); d < end;
	     d += d[0] & 0x80 ? 3 + le_get16(d + 1) : 1 + (d[0] & 7)) {
		if (d[0] == 0x87) {
			ck_assert_uint_eq(le_get32(d + 10), X86_PCI_MMIO_START);
			ck_assert_uint_eq(le_get32(d + 22), X86_PCI_MMIO_SIZE);
			window = true;
		}
	}
	ck_assert(window);

	/* MRES: a PNP0C02 motherboard resource reserving the ECAM window,
	 * which Linux wants before it uses the MCFG's window. */
	dev = test_device(aml, (size_t)total, "MRES", &dev_end);
	ck_assert_mem_eq(dev, "\x08_HID\x0c\x41\xd0\x0c\x02", 10);
	d = test_crs(memmem(dev, (size_t)(dev_end - dev), "_CRS", 4), &end);
	ck_assert_mem_eq(d, "\x86\x09\x00\x01", 4);  /* Memory32Fixed, read/write */
	ck_assert_uint_eq(le_get32(d + 4), X86_PCI_ECAM_ADDR);
	ck_assert_uint_eq(le_get32(d + 8), X86_PCI_ECAM_SIZE);

	/* VR00, VR01: virtio-mmio devices as Linux's virtio_mmio driver finds
	 * them without virtio_mmio.device=: _HID "LNRO0005", _UID, a
	 * Memory32Fixed window and one edge, active-high interrupt. */
	for (unsigned i = 0; i < 2; i++) {
		char name[5] = { 'V', 'R', '0', (char)('0' + i), 0 };
		const uint8_t uid[] = { 0x08, '_', 'U', 'I', 'D', 0x0a, (uint8_t)i };

		dev = test_device(aml, (size_t)total, name, &dev_end);
		ck_assert_mem_eq(dev, "\x08_HID\x0dLNRO0005\x00", 15);
		ck_assert_mem_eq(dev + 15, uid, sizeof(uid));
		d = test_crs(memmem(dev, (size_t)(dev_end - dev), "_CRS", 4), &end);
		ck_assert_mem_eq(d, "\x86\x09\x00\x01", 4);
		ck_assert_uint_eq(le_get32(d + 4), mmio[i].base);
		ck_assert_uint_eq(le_get32(d + 8), mmio[i].size);
		d += 12;
		ck_assert_mem_eq(d, "\x89\x06\x00\x03\x01", 5);  /* consumer, edge, high, exclusive */
		ck_assert_uint_eq(le_get32(d + 5), mmio[i].irq);
		ck_assert_ptr_eq(d + 9, end);
	}
	ck_assert_ptr_null(memmem(aml, (size_t)total, "VR02", 4));

	/* With PCI, no virtio-mmio device is announced. */
	total = x86_dsdt_aml(aml, sizeof(aml), NULL, 0);
	ck_assert_int_gt(total, 0);
	ck_assert_ptr_null(memmem(aml, (size_t)total, "LNRO", 4));
	ck_assert_int_eq(x86_dsdt_aml(aml, 40, NULL, 0), -1);
	ck_assert_int_eq(x86_dsdt_aml(aml, sizeof(aml), mmio, X86_MAX_MMIO_DEVS + 1), -1);
}
END_TEST

START_TEST(mptable)
{
	static uint8_t cfg[0x10000];
	uint8_t fp[16];
	unsigned cpus = 0, bsp = 0;
	const uint8_t *e;
	int n = x86_mptable_build(fp, cfg, sizeof(cfg), X86_MPTABLE_ADDR, 4);

	ck_assert_int_gt(n, 0);
	ck_assert_mem_eq(fp, "_MP_", 4);
	ck_assert_uint_eq(x86_table_sum(fp, 16), 0);
	ck_assert_uint_eq(le_get32(fp + 4), X86_MPTABLE_ADDR);
	ck_assert_mem_eq(cfg, "PCMP", 4);
	ck_assert_uint_eq(le_get16(cfg + 4), n);
	ck_assert_uint_eq(x86_table_sum(cfg, (size_t)n), 0);
	e = cfg + 44;
	for (unsigned i = 0; i < le_get16(cfg + 34); i++) {
		if (e[0] == 0) {
			cpus++;
			bsp += (e[3] & 2) != 0;
		}
		e += e[0] == 0 ? 20 : 8;
	}
	ck_assert_ptr_eq(e, cfg + n);
	ck_assert_uint_eq(cpus, 4);
	ck_assert_uint_eq(bsp, 1);
}
END_TEST

START_TEST(cpuid_adjust)
{
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + 256 * sizeof(c->entries[0]));
	bool have_hv = false, have_d = false;

	ck_assert_ptr_nonnull(c);
	c->nent = 4;
	c->entries[0] = (struct kvm_cpuid_entry2){ .function = 1, .ebx = 0xff00abcd, .ecx = 0xffffffff };
	c->entries[1] = (struct kvm_cpuid_entry2){ .function = 7, .ebx = 0xffffffff };
	c->entries[2] = (struct kvm_cpuid_entry2){ .function = 0xd, .eax = 7 };
	c->entries[3] = (struct kvm_cpuid_entry2){ .function = 0xb, .index = 1 };
	x86_cpuid_adjust(c, 2, 4);
	for (uint32_t i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];

		if (e->function == 1) {
			ck_assert_uint_eq(e->ebx >> 24, 2);
			ck_assert_uint_eq((e->ebx >> 16) & 0xff, 4);
			ck_assert_uint_eq(e->ebx & 0xffff, 0xabcd);
			ck_assert(e->ecx & (1u << 31));
			ck_assert(!(e->ecx & (1u << 26)));  /* XSAVE hidden */
			ck_assert(!(e->ecx & (1u << 13)));  /* CX16 hidden */
		} else if (e->function == 7) {
			ck_assert(!(e->ebx & 1));           /* FSGSBASE hidden */
			ck_assert(e->ebx & 2);
		} else if (e->function == 0xb) {
			ck_assert_uint_eq(e->edx, 2);
		} else if (e->function == 0x40000000) {
			have_hv = true;
			ck_assert_mem_eq(&e->ebx, "KVMK", 4);
		} else if (e->function == 0xd) {
			have_d = true;
		}
	}
	ck_assert(have_hv);
	ck_assert(!have_d);
	free(c);
}
END_TEST

static Suite *x86_boot_suite(void)
{
	Suite *s = suite_create("x86_boot");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, bzimage_parses);
	tcase_add_test(tc, bzimage_bad_headers);
	tcase_add_test(tc, bzimage_plan_and_params);
	tcase_add_test(tc, bzimage_plan_address_wraps);
	tcase_add_test(tc, bzimage_plan_limits_named);
	tcase_add_test(tc, elf_parses_and_translates_entry);
	tcase_add_test(tc, elf_bad);
	tcase_add_test(tc, e820_maps);
	tcase_add_test(tc, load_elf_into_memory);
	tcase_add_test(tc, load_bzimage_into_memory);
	tcase_add_test(tc, identity_page_tables);
	tcase_add_test(tc, acpi_tables);
	tcase_add_test(tc, dsdt_aml);
	tcase_add_test(tc, mptable);
	tcase_add_test(tc, cpuid_adjust);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_run(x86_boot_suite());
}

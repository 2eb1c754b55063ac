#include "cvmm/x86_boot.h"
#include "cvmm/x86_layout.h"

unsigned x86_ram_ranges(unsigned long long ram_size, struct x86_ram_range r[2])
{
	if (ram_size <= X86_HOLE_START) {
		r[0] = (struct x86_ram_range){ 0, ram_size };
		return 1;
	}
	r[0] = (struct x86_ram_range){ 0, X86_HOLE_START };
	r[1] = (struct x86_ram_range){ X86_HIGH_RAM_ADDR, ram_size - X86_HOLE_START };
	return 2;
}

static unsigned x86_e820_add(struct x86_e820_entry *e, unsigned n, unsigned max, uint64_t addr,
			     uint64_t size, uint32_t type)
{
	if (n < max && size)
		e[n++] = (struct x86_e820_entry){ addr, size, type };
	return n;
}

unsigned x86_e820_build(uint64_t ram_size, struct x86_e820_entry *e, unsigned max)
{
	struct x86_ram_range r[2];
	unsigned nr = x86_ram_ranges(ram_size, r), n = 0;
	uint64_t low_end = r[0].size;

	/* Base memory up to the EBDA; the EBDA and BIOS area hold the MP and
	 * ACPI tables, so they are reserved, not RAM. */
	n = x86_e820_add(e, n, max, 0, X86_EBDA_ADDR < low_end ? X86_EBDA_ADDR : low_end, X86_E820_RAM);
	if (low_end > X86_EBDA_ADDR)
		n = x86_e820_add(e, n, max, X86_EBDA_ADDR, X86_HIMEM_ADDR - X86_EBDA_ADDR, X86_E820_RESERVED);
	if (low_end > X86_HIMEM_ADDR)
		n = x86_e820_add(e, n, max, X86_HIMEM_ADDR, low_end - X86_HIMEM_ADDR, X86_E820_RAM);
	/* The ECAM window: Linux uses the MCFG's window only when it is reserved. */
	n = x86_e820_add(e, n, max, X86_PCI_ECAM_ADDR, X86_PCI_ECAM_SIZE, X86_E820_RESERVED);
	if (nr == 2)
		n = x86_e820_add(e, n, max, r[1].gpa, r[1].size, X86_E820_RAM);
	return n;
}

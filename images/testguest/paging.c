/* The guest keeps the page tables cvmm entered it with (writing CR3 is
 * expensive where guest kernel code is emulated: ~20 ms here) and checks,
 * by walking them, that what it touches is identity-mapped. The APs reuse
 * the same tables, so they must lie below 4 GiB. */
#include "tg.h"

#define PTE_P	0x1ULL
#define PTE_PS	0x80ULL
#define PTE_ADDR 0x000ffffffffff000ULL

uint32_t tg_ap_cr3;

static uint64_t tg_read_cr3(void)
{
	uint64_t v;

	__asm__ volatile("mov %%cr3, %0" : "=r"(v));
	return v;
}

/* Physical address of a page-table entry's target table, or 0. */
static const uint64_t *tg_table(uint64_t entry)
{
	return (entry & PTE_P) ? (const uint64_t *)(uintptr_t)(entry & PTE_ADDR) : NULL;
}

/* Walks the current tables for va; returns true and the mapping's size when
 * va maps to itself. */
static bool tg_walk(uint64_t va, uint64_t *page_size)
{
	const uint64_t *t = (const uint64_t *)(uintptr_t)(tg_read_cr3() & PTE_ADDR);
	unsigned shift = 39;

	for (int level = 4; level >= 1; level--, shift -= 9) {
		uint64_t e = t[(va >> shift) & 511];

		if (!(e & PTE_P))
			return false;
		if (level == 1 || ((level == 2 || level == 3) && (e & PTE_PS))) {
			uint64_t size = 1ULL << shift;

			*page_size = size;
			return (e & PTE_ADDR & ~(size - 1)) == (va & ~(size - 1));
		}
		t = tg_table(e);
	}
	return false;
}

void tg_paging_init(void)
{
	tg_ap_cr3 = (uint32_t)tg_read_cr3();
	if (tg_read_cr3() >> 32)
		tg_ap_cr3 = 0;  /* smp.c reports it */
}

bool tg_mapped(uint64_t addr, uint64_t len)
{
	uint64_t end = addr + len, size;

	if (len == 0 || end < addr || addr >> 47)
		return false;
	for (uint64_t a = addr; a < end; a = (a & ~(size - 1)) + size)
		if (!tg_walk(a, &size))
			return false;
	return true;
}

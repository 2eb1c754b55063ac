/* The guest's own identity map of the low 4 GiB with 2 MiB pages, so checks
 * can read tables anywhere below 4 GiB (LAPIC, ACPI, MP table) whatever map
 * cvmm entered us with, and so the APs have page tables below 4 GiB. */
#include "tg.h"

#define PTE_P	0x1ULL
#define PTE_RW	0x2ULL
#define PTE_PWT	0x8ULL
#define PTE_PCD	0x10ULL
#define PTE_PS	0x80ULL

static uint64_t tg_pdpt[512] __attribute__((aligned(4096)));
static uint64_t tg_pd[4][512] __attribute__((aligned(4096)));

void tg_paging_init(void)
{
	unsigned i, j;

	for (i = 0; i < 512; i++)
		tg_pml4[i] = tg_pdpt[i] = 0;
	tg_pml4[0] = (uint64_t)(uintptr_t)tg_pdpt | PTE_P | PTE_RW;
	for (i = 0; i < 4; i++) {
		/* The top GiB holds the LAPIC/IOAPIC: uncached. */
		uint64_t attr = PTE_P | PTE_RW | PTE_PS | (i == 3 ? PTE_PCD | PTE_PWT : 0);

		tg_pdpt[i] = (uint64_t)(uintptr_t)tg_pd[i] | PTE_P | PTE_RW;
		for (j = 0; j < 512; j++)
			tg_pd[i][j] = ((uint64_t)i << 30 | (uint64_t)j << 21) | attr;
	}
	__asm__ volatile("mov %0, %%cr3" : : "r"((uint64_t)(uintptr_t)tg_pml4) : "memory");
}

bool tg_mapped(uint64_t addr, uint64_t len)
{
	return len <= (1ULL << 32) && addr <= (1ULL << 32) - len;
}

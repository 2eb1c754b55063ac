/* The e820 map from the zero page: well formed, RAM where a PC has it and
 * none where it must not, the RAM total what the test asked for, and the
 * last word of each RAM range below 4 GiB really backed by memory. */
#include "tg.h"

#define MIB (1ULL << 20)

static bool tg_e820_overlaps(const struct tg_e820 *e, uint64_t start, uint64_t end)
{
	return e->addr < end && start < e->addr + e->size;
}

static bool tg_e820_ram_covers(const struct tg *t, uint64_t start, uint64_t end)
{
	for (unsigned i = 0; i < t->ne820; i++) {
		const struct tg_e820 *e = &t->e820[i];

		if (e->type == TG_E820_RAM && e->addr <= start && end <= e->addr + e->size)
			return true;
	}
	return false;
}

/* Writes a pattern to the last 8 bytes of the range, reads it back and
 * restores the old value. */
static bool tg_e820_touch(uint64_t end)
{
	volatile uint64_t *w = (volatile uint64_t *)(uintptr_t)(end - 8);
	uint64_t old = *w, pat = 0x5a5aa5a5c3c33c3cULL ^ end;
	bool ok;

	*w = pat;
	ok = *w == pat;
	*w = old;
	return ok;
}

int tg_check_e820(struct tg *t)
{
	uint64_t ram = 0, prev_end = 0;
	unsigned i;

	if (t->ne820 == 0) {
		tg_printf("TG: FAIL e820: the zero page has no e820 entries\n");
		return -1;
	}
	for (i = 0; i < t->ne820; i++) {
		const struct tg_e820 *e = &t->e820[i];

		tg_printf("TG: e820 [0x%lx-0x%lx) type %u\n", e->addr, e->addr + e->size, e->type);
		if (e->size == 0 || e->addr + e->size < e->addr) {
			tg_printf("TG: FAIL e820: entry %u is empty or wraps\n", i);
			return -1;
		}
		if (i && e->addr < prev_end) {
			tg_printf("TG: FAIL e820: entry %u overlaps or is out of order\n", i);
			return -1;
		}
		prev_end = e->addr + e->size;
		if (e->type != TG_E820_RAM)
			continue;
		ram += e->size;
		if (tg_e820_overlaps(e, 0xa0000, 0x100000) || tg_e820_overlaps(e, 0xfec00000, 0xfee01000)) {
			tg_printf("TG: FAIL e820: RAM entry %u covers the VGA/BIOS or APIC range\n", i);
			return -1;
		}
		if (tg_mapped(e->addr, e->size) && !tg_e820_touch(e->addr + e->size)) {
			tg_printf("TG: FAIL e820: memory at 0x%lx does not hold a value\n", e->addr + e->size - 8);
			return -1;
		}
	}
	if (!tg_e820_ram_covers(t, 0x1000, 0x9f000) || !tg_e820_ram_covers(t, MIB, 2 * MIB)) {
		tg_printf("TG: FAIL e820: no RAM below 640 KiB or at 1 MiB\n");
		return -1;
	}
	/* Low memory loses at most the 384 KiB VGA/BIOS hole and a few
	 * reserved KiB below it. */
	if (t->want_mem && (ram > t->want_mem || ram + MIB < t->want_mem)) {
		tg_printf("TG: FAIL e820: %luK of RAM, expected %luK\n", ram >> 10, t->want_mem >> 10);
		return -1;
	}
	tg_printf("TG: e820 entries=%u ram=%luK ok\n", t->ne820, ram >> 10);
	return 0;
}

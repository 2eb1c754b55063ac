/* The Intel MP table, for kernels built without ACPI: the floating pointer
 * where Linux looks for it, its configuration table, and one enabled
 * processor entry per CPU. */
#include "tg.h"

#define MP_SIG		0x5f504d5fu     /* "_MP_" */

static const uint8_t *tg_mp_find(void)
{
	uint64_t ebda = (uint64_t)*(volatile uint16_t *)0x40e << 4;
	/* Where Linux looks: the first KiB, the KiB below 640 KiB, the BIOS
	 * area, then the EBDA the BDA names (if it names one). */
	const uint64_t ranges[4][2] = {
		{ 0x0, 0x400 }, { 0x9fc00, 0xa0000 }, { 0xf0000, 0x100000 }, { ebda, ebda + 1024 },
	};

	for (unsigned r = 0; r < 4; r++) {
		if (r == 3 && (ebda < 0x400 || ebda + 1024 > 0xa0000))
			continue;
		for (uint64_t a = ranges[r][0]; a + 16 <= ranges[r][1]; a += 16)
			if (*(volatile uint32_t *)(uintptr_t)a == MP_SIG)
				return (const uint8_t *)(uintptr_t)a;
	}
	return NULL;
}

int tg_check_mptable(struct tg *t)
{
	const uint8_t *fp = tg_mp_find(), *ct, *e;
	uint32_t ct_addr;
	uint16_t len, count;
	unsigned cpus = 0, i;

	if (!fp) {
		tg_printf("TG: FAIL mptable: no _MP_ floating pointer\n");
		return -1;
	}
	if (fp[8] != 1 || tg_checksum(fp, 16)) {
		tg_printf("TG: FAIL mptable: floating pointer length %u or checksum\n", fp[8]);
		return -1;
	}
	memcpy(&ct_addr, fp + 4, 4);
	ct = (const uint8_t *)(uintptr_t)ct_addr;
	if (fp[11] != 0 || !ct_addr || !tg_mapped(ct_addr, 44) || memcmp(ct, "PCMP", 4)) {
		tg_printf("TG: FAIL mptable: no configuration table (default config %u, at 0x%x)\n", fp[11], ct_addr);
		return -1;
	}
	memcpy(&len, ct + 4, 2);
	memcpy(&count, ct + 34, 2);
	if (len < 44 || !tg_mapped(ct_addr, len) || tg_checksum(ct, len)) {
		tg_printf("TG: FAIL mptable: configuration table length %u or checksum\n", len);
		return -1;
	}
	e = ct + 44;
	for (i = 0; i < count; i++) {
		unsigned sz = e[0] == 0 ? 20 : 8;

		if (e[0] > 4 || e + sz > ct + len) {
			tg_printf("TG: FAIL mptable: entry %u (type %u) is malformed\n", i, e[0]);
			return -1;
		}
		if (e[0] == 0 && (e[3] & 1))
			cpus++;
		e += sz;
	}
	if (!cpus || (t->want_cpus && cpus != t->want_cpus)) {
		tg_printf("TG: FAIL mptable: %u enabled processors, expected %u\n", cpus, t->want_cpus);
		return -1;
	}
	tg_printf("TG: mptable cpus=%u entries=%u ok\n", cpus, count);
	return 0;
}

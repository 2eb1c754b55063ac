/* CPUID as a guest kernel reads it: the hypervisor-present bit and a
 * hypervisor leaf range at 0x40000000 with a signature, so Linux knows it
 * runs in a VM (and under which hypervisor's paravirtual interface). */
#include "tg.h"

int tg_check_cpuid(struct tg *t)
{
	uint32_t r[4];
	char sig[13];

	(void)t;
	tg_cpuid(1, r);
	if (!(r[2] & (1u << 31))) {
		tg_printf("TG: FAIL cpuid: leaf 1 does not set the hypervisor-present bit\n");
		return -1;
	}
	tg_cpuid(0x40000000, r);
	memcpy(sig, &r[1], 4);
	memcpy(sig + 4, &r[2], 4);
	memcpy(sig + 8, &r[3], 4);
	sig[12] = 0;
	for (unsigned i = 0; i < 12 && sig[i]; i++)
		if (sig[i] < 0x20 || sig[i] > 0x7e)
			sig[i] = '?';
	if (r[0] < 0x40000000 || r[0] > 0x400000ff || !sig[0]) {
		tg_printf("TG: FAIL cpuid: no hypervisor leaves (max 0x%x)\n", r[0]);
		return -1;
	}
	tg_printf("TG: cpuid hypervisor \"%s\" max=0x%x ok\n", sig, r[0]);
	return 0;
}

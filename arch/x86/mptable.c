/* Intel MultiProcessor Specification 1.4 table, for kernels without ACPI. */
#include <errno.h>
#include <string.h>

#include "cvmm/le.h"
#include "cvmm/x86_layout.h"
#include "cvmm/x86_tables.h"

#define MP_HDR_LEN	44
#define MP_CPU_LEN	20
#define MP_ENTRY_LEN	8
#define MP_APIC_VERSION	0x14
#define MP_IOAPIC_VERSION 0x11
#define MP_ISA_IRQS	16

/* One type-3 or type-4 interrupt assignment entry. */
static uint8_t *mp_intr(uint8_t *e, uint8_t type, uint8_t kind, uint8_t irq, uint8_t dst, uint8_t pin)
{
	e[0] = type;
	e[1] = kind;
	le_put16(e + 2, 0);  /* polarity and trigger conform to the bus (ISA: edge, high) */
	e[4] = 0;            /* source bus: ISA */
	e[5] = irq;
	e[6] = dst;
	e[7] = pin;
	return e + MP_ENTRY_LEN;
}

int x86_mptable_build(uint8_t fp[16], uint8_t *cfg, size_t len, uint64_t cfg_base, unsigned ncpus)
{
	/* CPUs, bus, IOAPIC, ISA IRQs but the cascade (2), ExtINT and NMI */
	unsigned nentries = ncpus + 1 + 1 + (MP_ISA_IRQS - 1) + 2;
	size_t total = MP_HDR_LEN + ncpus * MP_CPU_LEN + (nentries - ncpus) * MP_ENTRY_LEN;
	uint8_t ioapic_id = (uint8_t)ncpus;
	uint8_t *e;

	if (ncpus == 0 || ncpus > X86_MAX_CPUS || len < total)
		return -ENOSPC;
	memset(cfg, 0, total);
	memcpy(cfg, "PCMP", 4);
	le_put16(cfg + 4, (uint16_t)total);
	cfg[6] = 4;  /* spec 1.4 */
	memcpy(cfg + 8, "CVMM    ", 8);
	memcpy(cfg + 16, "CVMM        ", 12);
	le_put16(cfg + 34, (uint16_t)nentries);
	le_put32(cfg + 36, (uint32_t)X86_LAPIC_ADDR);

	e = cfg + MP_HDR_LEN;
	for (unsigned i = 0; i < ncpus; i++, e += MP_CPU_LEN) {
		e[0] = 0;
		e[1] = (uint8_t)i;
		e[2] = MP_APIC_VERSION;
		e[3] = 0x01 | (i == 0 ? 0x02 : 0);  /* enabled, bootstrap processor */
		le_put32(e + 4, 0x600);             /* family 6 */
		le_put32(e + 8, 0x201);             /* FPU, APIC */
	}
	e[0] = 1;
	e[1] = 0;
	memcpy(e + 2, "ISA   ", 6);
	e += MP_ENTRY_LEN;
	e[0] = 2;
	e[1] = ioapic_id;
	e[2] = MP_IOAPIC_VERSION;
	e[3] = 1;
	le_put32(e + 4, (uint32_t)X86_IOAPIC_ADDR);
	e += MP_ENTRY_LEN;
	/* ISA IRQ n on IOAPIC pin n, as KVM routes them by default. */
	for (uint8_t irq = 0; irq < MP_ISA_IRQS; irq++)
		if (irq != 2)
			e = mp_intr(e, 3, 0, irq, ioapic_id, irq);
	e = mp_intr(e, 4, 3, 0, 0xff, 0);  /* ExtINT on LINT0 */
	mp_intr(e, 4, 1, 0, 0xff, 1);      /* NMI on LINT1 */
	cfg[7] = (uint8_t)-x86_table_sum(cfg, total);

	memset(fp, 0, 16);
	memcpy(fp, "_MP_", 4);
	le_put32(fp + 4, (uint32_t)cfg_base);
	fp[8] = 1;   /* length in 16-byte units */
	fp[9] = 4;
	fp[10] = (uint8_t)-x86_table_sum(fp, 16);
	return (int)total;
}

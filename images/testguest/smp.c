/* Starts the application processors the way Linux does on a PC: INIT, then
 * STARTUP IPIs through the boot CPU's local APIC at a real-mode trampoline
 * below 1 MiB (head.S). Each AP reaches long mode, records its APIC ID and
 * counts itself in; all the CPUs the test expects must arrive, with the APIC
 * IDs the MADT lists. */
#include "tg.h"

#define MSR_APIC_BASE		0x1b
#define APIC_BASE_X2APIC	(1u << 10)
#define APIC_SVR		0xf0
#define APIC_ICR_LO		0x300
#define APIC_ICR_HI		0x310
#define ICR_BUSY		(1u << 12)
/* Destination shorthand "all excluding self", level assert. */
#define ICR_INIT		0x000c4500u
#define ICR_STARTUP		0x000c4600u

/* Poll bounds. A poll is a few instructions: ~2 µs where guest kernel code
 * is emulated, far less on hardware virtualization. */
#define WAIT_SIPI_RETRY		200000u
#define WAIT_APS		2000000u

static volatile uint32_t tg_ap_started;
static volatile uint32_t tg_ap_ids[TG_MAX_CPUS];

void tg_ap_main(uint32_t slot)
{
	uint32_t r[4];

	tg_cpuid(1, r);
	tg_ap_ids[slot] = r[1] >> 24;
	__atomic_add_fetch(&tg_ap_started, 1, __ATOMIC_SEQ_CST);
}

struct tg_lapic {
	bool x2apic;
	volatile uint32_t *mmio;
};

static void tg_lapic_write(const struct tg_lapic *l, uint32_t reg, uint32_t v)
{
	if (l->x2apic)
		__asm__ volatile("wrmsr" : : "c"(0x800 + (reg >> 4)), "a"(v), "d"(0) : "memory");
	else
		l->mmio[reg / 4] = v;
}

static uint32_t tg_lapic_read(const struct tg_lapic *l, uint32_t reg)
{
	return l->x2apic ? (uint32_t)tg_rdmsr(0x800 + (reg >> 4)) : l->mmio[reg / 4];
}

/* Sends an IPI to all but this CPU; false if it stays pending. */
static bool tg_lapic_ipi(const struct tg_lapic *l, uint32_t icr)
{
	if (l->x2apic) {
		/* x2APIC: one 64-bit write, no delivery status to wait for. */
		tg_lapic_write(l, APIC_ICR_LO, icr);
		return true;
	}
	tg_lapic_write(l, APIC_ICR_HI, 0);
	tg_lapic_write(l, APIC_ICR_LO, icr);
	for (unsigned i = 0; i < 100000; i++)
		if (!(tg_lapic_read(l, APIC_ICR_LO) & ICR_BUSY))
			return true;
	return false;
}

/* True when page p holds one of the tables that map the low 4 GiB (the APs
 * and we still use them). */
static bool tg_smp_page_is_table(uint64_t p)
{
	const uint64_t mask = 0x000ffffffffff000ULL;
	uint64_t pml4 = tg_ap_cr3 & mask, pdpt;

	if (p == pml4)
		return true;
	pdpt = ((const uint64_t *)(uintptr_t)pml4)[0] & mask;
	if (p == pdpt)
		return true;
	for (unsigned i = 0; i < 4; i++) {
		uint64_t e = ((const uint64_t *)(uintptr_t)pdpt)[i];

		if ((e & 1) && !(e & 0x80) && (e & mask) == p)
			return true;
	}
	return false;
}

/* The lowest free RAM page below 640 KiB. The zero page and command line
 * were copied out already, so only the page tables must be kept. */
static uint64_t tg_smp_trampoline_page(const struct tg *t)
{
	for (uint64_t p = 0x1000; p < 0x9f000; p += 0x1000) {
		if (tg_smp_page_is_table(p))
			continue;
		for (unsigned i = 0; i < t->ne820; i++)
			if (t->e820[i].type == TG_E820_RAM && t->e820[i].addr <= p &&
			    p + 0x1000 <= t->e820[i].addr + t->e820[i].size)
				return p;
	}
	return 0;
}

static bool tg_smp_wait(uint32_t n, uint32_t polls)
{
	for (uint32_t i = 0; i < polls; i++) {
		if (tg_ap_started >= n)
			return true;
		tg_pause();
	}
	return tg_ap_started >= n;
}

static bool tg_smp_id_listed(const struct tg *t, uint32_t id)
{
	for (unsigned i = 0; i < t->madt_cpus; i++)
		if (t->madt_apic_ids[i] == id)
			return true;
	return false;
}

static int tg_smp_verify_ids(const struct tg *t, uint32_t bsp_id, uint32_t aps)
{
	if (!t->madt_cpus)
		return 0;       /* the ACPI check has failed already */
	for (uint32_t i = 0; i <= aps; i++) {
		uint32_t id = i == aps ? bsp_id : tg_ap_ids[i];

		if (!tg_smp_id_listed(t, id)) {
			tg_printf("TG: FAIL smp: CPU with APIC ID %u is not in the MADT\n", id);
			return -1;
		}
		for (uint32_t j = 0; j < i; j++)
			if (tg_ap_ids[j] == id) {
				tg_printf("TG: FAIL smp: two CPUs have APIC ID %u\n", id);
				return -1;
			}
	}
	return 0;
}

int tg_check_smp(struct tg *t)
{
	uint32_t want = t->want_cpus ? t->want_cpus : t->madt_cpus ? t->madt_cpus : 1;
	uint64_t base = tg_rdmsr(MSR_APIC_BASE), page;
	struct tg_lapic l = { .x2apic = (base & APIC_BASE_X2APIC) != 0 };
	uint32_t r[4], bsp_id;

	tg_cpuid(1, r);
	bsp_id = r[1] >> 24;
	if (want == 1) {
		tg_printf("TG: smp cpus=1 (no APs to start) ok\n");
		return 0;
	}
	if (!tg_ap_cr3) {
		tg_printf("TG: FAIL smp: the boot page tables lie above 4 GiB; APs cannot load them\n");
		return -1;
	}
	page = tg_smp_trampoline_page(t);
	if (!page) {
		tg_printf("TG: FAIL smp: no RAM page below 640 KiB for the AP trampoline\n");
		return -1;
	}
	if (!l.x2apic) {
		uint64_t mmio = base & ~0xfffULL & ((1ULL << 52) - 1);

		if (!tg_mapped(mmio, 0x1000)) {
			tg_printf("TG: FAIL smp: local APIC at 0x%lx\n", mmio);
			return -1;
		}
		l.mmio = (volatile uint32_t *)(uintptr_t)mmio;
	}
	memcpy((void *)(uintptr_t)page, tg_trampoline_start, (size_t)(tg_trampoline_end - tg_trampoline_start));
	tg_lapic_write(&l, APIC_SVR, tg_lapic_read(&l, APIC_SVR) | 0x1ff);
	if (!tg_lapic_ipi(&l, ICR_INIT) || !tg_lapic_ipi(&l, ICR_STARTUP | (uint32_t)(page >> 12))) {
		tg_printf("TG: FAIL smp: the local APIC did not send the IPIs\n");
		return -1;
	}
	/* A second STARTUP only if an AP missed the first, as the MP spec advises. */
	if (!tg_smp_wait(want - 1, WAIT_SIPI_RETRY))
		tg_lapic_ipi(&l, ICR_STARTUP | (uint32_t)(page >> 12));
	tg_smp_wait(want - 1, WAIT_APS);
	if (tg_ap_started != want - 1 || tg_ap_next != want - 1) {
		tg_printf("TG: FAIL smp: %u of %u APs started (%u entered the trampoline)\n",
			  tg_ap_started, want - 1, tg_ap_next);
		return -1;
	}
	if (tg_smp_verify_ids(t, bsp_id, want - 1) < 0)
		return -1;
	tg_printf("TG: smp cpus=%u bsp=%u %s trampoline=0x%lx ok\n", want, bsp_id,
		  l.x2apic ? "x2apic" : "xapic", page);
	return 0;
}

/* ACPI as Linux reads it: the RSDP in the BIOS area, then the XSDT (or the
 * RSDT of ACPI 1.0), the MADT (one enabled local APIC per CPU, an IOAPIC) and
 * the FADT with a DSDT that defines \_S5 (so poweroff can end the VM). Every
 * checksum and length is verified before a table is used. */
#include "tg.h"

#define SDT_HDR_LEN	36
#define SDT_MAX_LEN	0x10000
/* "RSD PTR " as a little-endian word: one compare per 16 bytes scanned. */
#define TG_RSDP_SIG	0x2052545020445352ULL

static uint32_t tg_get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

static uint64_t tg_get64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

static const uint8_t *tg_acpi_find_rsdp(void)
{
	uint64_t ebda = (uint64_t)*(volatile uint16_t *)0x40e << 4;
	const uint64_t ranges[2][2] = { { ebda, ebda + 1024 }, { 0xe0000, 0x100000 } };

	for (unsigned r = ebda ? 0 : 1; r < 2; r++)
		for (uint64_t a = ranges[r][0]; a + 36 <= ranges[r][1]; a += 16)
			if (*(volatile uint64_t *)(uintptr_t)a == TG_RSDP_SIG)
				return (const uint8_t *)(uintptr_t)a;
	return NULL;
}

/* Returns the table at addr after checking signature, length and checksum;
 * NULL (with a FAIL line) otherwise. */
static const uint8_t *tg_acpi_table(uint64_t addr, const char *sig)
{
	const uint8_t *p = (const uint8_t *)(uintptr_t)addr;
	uint32_t len;

	if (!addr || !tg_mapped(addr, SDT_HDR_LEN)) {
		tg_printf("TG: FAIL acpi: %s at 0x%lx is outside the low 4 GiB\n", sig, addr);
		return NULL;
	}
	len = tg_get32(p + 4);
	if (memcmp(p, sig, 4)) {
		tg_printf("TG: FAIL acpi: no %s signature at 0x%lx\n", sig, addr);
		return NULL;
	}
	if (len < SDT_HDR_LEN || len > SDT_MAX_LEN || !tg_mapped(addr, len)) {
		tg_printf("TG: FAIL acpi: %s length %u\n", sig, len);
		return NULL;
	}
	if (tg_checksum(p, len)) {
		tg_printf("TG: FAIL acpi: %s checksum\n", sig);
		return NULL;
	}
	return p;
}

static int tg_acpi_madt(struct tg *t, const uint8_t *madt)
{
	uint32_t len = tg_get32(madt + 4), off = 44;
	unsigned ioapics = 0, listed = 0;

	if (len < 44) {
		tg_printf("TG: FAIL acpi: MADT too short\n");
		return -1;
	}
	t->lapic_base = tg_get32(madt + 36);
	t->madt_cpus = 0;
	while (off + 2 <= len) {
		const uint8_t *e = madt + off;
		uint32_t id = 0, flags = 0;
		bool is_cpu = false;

		if (e[1] < 2 || off + e[1] > len) {
			tg_printf("TG: FAIL acpi: MADT entry at offset %u has length %u\n", off, e[1]);
			return -1;
		}
		if (e[0] == 0 && e[1] >= 8) {           /* processor local APIC */
			id = e[3];
			flags = tg_get32(e + 4);
			is_cpu = true;
		} else if (e[0] == 9 && e[1] >= 16) {   /* processor local x2APIC */
			id = tg_get32(e + 4);
			flags = tg_get32(e + 8);
			is_cpu = true;
		} else if (e[0] == 1 && e[1] >= 12) {
			ioapics++;
		}
		if (is_cpu) {
			listed++;
			if ((flags & 1) && t->madt_cpus < TG_MAX_CPUS)
				t->madt_apic_ids[t->madt_cpus++] = id;
		}
		off += e[1];
	}
	if (!t->madt_cpus || !ioapics || (t->want_cpus && t->madt_cpus != t->want_cpus)) {
		tg_printf("TG: FAIL acpi: MADT lists %u enabled CPUs (of %u) and %u IOAPICs, expected %u CPUs\n",
			  t->madt_cpus, listed, ioapics, t->want_cpus);
		t->madt_cpus = 0;
		return -1;
	}
	tg_printf("TG: acpi madt cpus=%u ioapics=%u lapic=0x%lx ok\n", t->madt_cpus, ioapics, t->lapic_base);
	return 0;
}

/* SLP_TYPa from the DSDT's Name(_S5_, Package() { a, b, ... }) at s5 (the
 * name's first byte); -1 when the AML is not that shape. */
static int tg_acpi_s5_typ(const uint8_t *s5, const uint8_t *end)
{
	const uint8_t *p = s5 + 4;
	unsigned follow;

	if (p + 2 > end || p[0] != 0x12)                /* PackageOp */
		return -1;
	follow = p[1] >> 6;                             /* PkgLength extra bytes */
	p += 2 + follow + 1;                            /* ... and NumElements */
	if (p >= end)
		return -1;
	switch (p[0]) {
	case 0x00: return 0;                            /* ZeroOp */
	case 0x01: return 1;                            /* OneOp */
	case 0x0a: return p + 1 < end ? p[1] : -1;      /* BytePrefix */
	default: return -1;
	}
}

static int tg_acpi_fadt(struct tg *t, const uint8_t *fadt)
{
	uint32_t len = tg_get32(fadt + 4);
	uint64_t dsdt_addr = tg_get32(fadt + 40);
	const uint8_t *dsdt, *s5 = NULL;
	uint32_t dlen, i;

	if (len < 116) {
		tg_printf("TG: FAIL acpi: FADT too short (%u)\n", len);
		return -1;
	}
	if (len >= 148 && tg_get64(fadt + 140))
		dsdt_addr = tg_get64(fadt + 140);
	t->sleep_port = tg_get32(fadt + 64);
	t->sleep_hw_reduced = false;
	/* Hardware-reduced ACPI has no PM1 block; it uses the sleep control
	 * register (FADT offset 244, a GAS: space id, ..., address at 248). */
	if (!t->sleep_port && (tg_get32(fadt + 112) & (1u << 20)) && len >= 256 && fadt[244] == 1) {
		t->sleep_port = tg_get64(fadt + 248);
		t->sleep_hw_reduced = true;
	}
	dsdt = tg_acpi_table(dsdt_addr, "DSDT");
	if (!dsdt)
		return -1;
	dlen = tg_get32(dsdt + 4);
	for (i = SDT_HDR_LEN; i + 4 <= dlen && !s5; i++)
		if (!memcmp(dsdt + i, "_S5_", 4))
			s5 = dsdt + i;
	t->slp_typ = s5 ? tg_acpi_s5_typ(s5, dsdt + dlen) : -1;
	if (!s5 || t->slp_typ < 0 || !t->sleep_port || t->sleep_port > 0xffff) {
		tg_printf("TG: FAIL acpi: %s\n", !s5 ? "the DSDT defines no _S5" :
			  t->slp_typ < 0 ? "the DSDT's _S5 is not a package of integers" :
			  "the FADT has no sleep control port");
		return -1;
	}
	tg_printf("TG: acpi fadt dsdt=0x%lx len=%u sleep-control=0x%lx _S5=%d ok\n", dsdt_addr, dlen,
		  t->sleep_port, t->slp_typ);
	return 0;
}

void tg_acpi_poweroff(const struct tg *t)
{
	if (t->slp_typ < 0) {
		tg_printf("TG: FAIL poweroff: no usable ACPI sleep control (see the acpi check)\n");
		return;
	}
	tg_printf("TG: poweroff: S5 through port 0x%lx\n", t->sleep_port);
	if (t->sleep_hw_reduced)        /* SLP_TYP in bits 4:2, SLP_EN bit 5 */
		tg_outb((uint16_t)t->sleep_port, (uint8_t)((t->slp_typ & 7) << 2 | 1 << 5));
	else                            /* PM1 control: SLP_TYP in bits 12:10, SLP_EN bit 13 */
		__asm__ volatile("outw %0, %1" : : "a"((uint16_t)((t->slp_typ & 7) << 10 | 1 << 13)),
				 "Nd"((uint16_t)t->sleep_port));
}

int tg_check_acpi(struct tg *t)
{
	const uint8_t *rsdp = tg_acpi_find_rsdp(), *root, *madt = NULL, *fadt = NULL;
	unsigned entsz, n, i;
	int ret;

	if (!rsdp) {
		tg_printf("TG: FAIL acpi: no RSDP in the EBDA or 0xe0000-0xfffff\n");
		return -1;
	}
	if (tg_checksum(rsdp, 20) || (rsdp[15] >= 2 && tg_checksum(rsdp, 36))) {
		tg_printf("TG: FAIL acpi: RSDP checksum\n");
		return -1;
	}
	if (rsdp[15] >= 2) {
		root = tg_acpi_table(tg_get64(rsdp + 24), "XSDT");
		entsz = 8;
	} else {
		root = tg_acpi_table(tg_get32(rsdp + 16), "RSDT");
		entsz = 4;
	}
	if (!root)
		return -1;
	n = (tg_get32(root + 4) - SDT_HDR_LEN) / entsz;
	for (i = 0; i < n; i++) {
		const uint8_t *ent = root + SDT_HDR_LEN + i * entsz;
		uint64_t a = entsz == 8 ? tg_get64(ent) : tg_get32(ent);
		const uint8_t *h = tg_mapped(a, SDT_HDR_LEN) ? (const uint8_t *)(uintptr_t)a : NULL;

		if (h && !memcmp(h, "APIC", 4))
			madt = tg_acpi_table(a, "APIC");
		else if (h && !memcmp(h, "FACP", 4))
			fadt = tg_acpi_table(a, "FACP");
	}
	tg_printf("TG: acpi rsdp=0x%lx rev=%u %s tables=%u\n", (uint64_t)(uintptr_t)rsdp, rsdp[15],
		  entsz == 8 ? "xsdt" : "rsdt", n);
	if (!madt || !fadt) {
		tg_printf("TG: FAIL acpi: %s\n", !madt ? "no valid MADT" : "no valid FADT");
		return -1;
	}
	ret = tg_acpi_madt(t, madt);
	if (tg_acpi_fadt(t, fadt) < 0)
		ret = -1;
	if (!ret)
		tg_printf("TG: acpi ok\n");
	return ret;
}

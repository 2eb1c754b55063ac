/* ACPI tables (ACPI 6.x): RSDP, XSDT, FADT, FACS, DSDT (dsdt.c), MADT, and
 * MCFG (PCI Firmware Specification 3.0). */
#include <errno.h>
#include <string.h>

#include "cvmm/le.h"
#include "cvmm/x86_layout.h"
#include "cvmm/x86_tables.h"

#define ACPI_HDR_LEN	36
#define ACPI_RSDP_LEN	36
#define ACPI_FADT_LEN	276
#define ACPI_FACS_LEN	64
#define ACPI_MCFG_LEN	(ACPI_HDR_LEN + 8 + 16)

/* FADT flags */
#define FADT_WBINVD		(1u << 0)
#define FADT_SLP_BUTTON		(1u << 5)   /* set: no fixed-feature sleep button */
#define FADT_TMR_VAL_EXT	(1u << 8)
#define FADT_RESET_REG_SUP	(1u << 10)
/* IA-PC boot architecture flags: no VGA, no CMOS RTC. The power button is
 * the fixed-feature one (PWR_BUTTON flag clear). */
#define FADT_IAPC_VGA_NOT_PRESENT	(1u << 2)
#define FADT_IAPC_CMOS_RTC_NOT_PRESENT	(1u << 5)

uint8_t x86_table_sum(const uint8_t *p, size_t len)
{
	uint8_t s = 0;

	while (len--)
		s = (uint8_t)(s + *p++);
	return s;
}

static void acpi_header(uint8_t *t, const char *sig, uint32_t len, uint8_t rev)
{
	memcpy(t, sig, 4);
	le_put32(t + 4, len);
	t[8] = rev;
	memcpy(t + 10, "CVMM  ", 6);
	memcpy(t + 16, "CVMMTBL ", 8);
	le_put32(t + 24, 1);
	memcpy(t + 28, "CVMM", 4);
	le_put32(t + 32, 1);
}

static void acpi_checksum(uint8_t *t, size_t len, size_t at)
{
	t[at] = 0;
	t[at] = (uint8_t)-x86_table_sum(t, len);
}

/* Generic Address Structure for an I/O port block. */
static void acpi_gas_io(uint8_t *g, uint16_t port, uint8_t bits, uint8_t access)
{
	g[0] = 1;  /* system I/O space */
	g[1] = bits;
	g[2] = 0;
	g[3] = access;
	le_put64(g + 4, port);
}

static void acpi_build_fadt(uint8_t *t, uint64_t dsdt, uint64_t facs)
{
	memset(t, 0, ACPI_FADT_LEN);
	acpi_header(t, "FACP", ACPI_FADT_LEN, 6);
	le_put32(t + 36, (uint32_t)facs);
	le_put32(t + 40, (uint32_t)dsdt);
	le_put16(t + 46, X86_ACPI_SCI_IRQ);
	/* SMI_CMD 0: the machine is always in ACPI mode. */
	le_put32(t + 56, X86_ACPI_PM1A_EVT);
	le_put32(t + 64, X86_ACPI_PM1A_CNT);
	le_put32(t + 76, X86_ACPI_PM_TMR);
	t[88] = 4;   /* PM1_EVT_LEN */
	t[89] = 2;   /* PM1_CNT_LEN */
	t[91] = 4;   /* PM_TMR_LEN */
	le_put16(t + 96, 101);   /* P_LVL2_LAT > 100: C2 not supported */
	le_put16(t + 98, 1001);  /* P_LVL3_LAT > 1000: C3 not supported */
	le_put16(t + 109, FADT_IAPC_VGA_NOT_PRESENT | FADT_IAPC_CMOS_RTC_NOT_PRESENT);
	le_put32(t + 112, FADT_WBINVD | FADT_SLP_BUTTON | FADT_TMR_VAL_EXT | FADT_RESET_REG_SUP);
	acpi_gas_io(t + 116, X86_ACPI_RESET_PORT, 8, 1);
	t[128] = X86_ACPI_RESET_VALUE;
	t[131] = 4;  /* FADT minor version: 6.4 */
	/* X_FIRMWARE_CTRL stays 0: with both set, OSes install the FACS twice. */
	le_put64(t + 140, dsdt);
	acpi_gas_io(t + 148, X86_ACPI_PM1A_EVT, 32, 2);
	acpi_gas_io(t + 172, X86_ACPI_PM1A_CNT, 16, 2);
	acpi_gas_io(t + 208, X86_ACPI_PM_TMR, 32, 3);
	memcpy(t + 268, "CVMM", 4);  /* hypervisor vendor identity */
	acpi_checksum(t, ACPI_FADT_LEN, 9);
}

static size_t acpi_madt_len(unsigned ncpus)
{
	return ACPI_HDR_LEN + 8 + ncpus * 8 + 12 + 10 + 6;
}

static void acpi_build_madt(uint8_t *t, unsigned ncpus)
{
	size_t len = acpi_madt_len(ncpus);
	uint8_t *e;

	memset(t, 0, len);
	acpi_header(t, "APIC", (uint32_t)len, 5);
	le_put32(t + 36, (uint32_t)X86_LAPIC_ADDR);
	le_put32(t + 40, 1);  /* PCAT_COMPAT: there are 8259s (KVM's in-kernel PIC) */
	e = t + 44;
	for (unsigned i = 0; i < ncpus; i++, e += 8) {
		e[0] = 0;             /* processor local APIC */
		e[1] = 8;
		e[2] = (uint8_t)i;    /* ACPI processor UID */
		e[3] = (uint8_t)i;    /* APIC ID = vCPU index */
		le_put32(e + 4, 1);   /* enabled */
	}
	e[0] = 1;  /* I/O APIC, ID after the CPUs', GSIs from 0 */
	e[1] = 12;
	e[2] = (uint8_t)ncpus;
	le_put32(e + 4, (uint32_t)X86_IOAPIC_ADDR);
	le_put32(e + 8, 0);
	e += 12;
	/* ISA IRQs map 1:1 to IOAPIC pins (KVM's default routing), except the
	 * SCI, which is level-triggered, active high. */
	e[0] = 2;
	e[1] = 10;
	e[2] = 0;
	e[3] = X86_ACPI_SCI_IRQ;
	le_put32(e + 4, X86_ACPI_SCI_IRQ);
	le_put16(e + 8, 0x000d);
	e += 10;
	e[0] = 4;  /* local APIC NMI on LINT1 of every processor */
	e[1] = 6;
	e[2] = 0xff;
	le_put16(e + 3, 0);
	e[5] = 1;
	acpi_checksum(t, len, 9);
}

/* The ECAM window for PCI segment 0, bus 0 only (the host bridge's bus
 * range in the DSDT). */
static void acpi_build_mcfg(uint8_t *t)
{
	memset(t, 0, ACPI_MCFG_LEN);
	acpi_header(t, "MCFG", ACPI_MCFG_LEN, 1);
	le_put64(t + 44, X86_PCI_ECAM_ADDR);
	le_put16(t + 52, 0);  /* segment */
	t[54] = 0;            /* first bus */
	t[55] = (uint8_t)(X86_PCI_ECAM_SIZE / (1u << 20) - 1);  /* last bus: 1 MiB per bus */
	acpi_checksum(t, ACPI_MCFG_LEN, 9);
}

int x86_acpi_build(uint8_t *buf, size_t len, uint64_t base, unsigned ncpus,
		   const struct x86_mmio_dev *mmio, unsigned nmmio)
{
	/* Layout: RSDP | XSDT | FADT | FACS (64-byte aligned) | DSDT | MADT | MCFG */
	size_t xsdt = 48, xsdt_len = ACPI_HDR_LEN + 3 * 8;
	size_t fadt = xsdt + xsdt_len;
	size_t facs = (fadt + ACPI_FADT_LEN + 63) & ~(size_t)63;
	size_t dsdt = facs + ACPI_FACS_LEN, dsdt_len, madt, mcfg, end;
	uint8_t *t;
	int aml;

	if (ncpus == 0 || ncpus > X86_MAX_CPUS || len < dsdt + ACPI_HDR_LEN)
		return -ENOSPC;
	aml = x86_dsdt_aml(buf + dsdt + ACPI_HDR_LEN, len - dsdt - ACPI_HDR_LEN, mmio, nmmio);
	if (aml < 0)
		return -ENOSPC;
	dsdt_len = ACPI_HDR_LEN + (size_t)aml;
	madt = (dsdt + dsdt_len + 7) & ~(size_t)7;
	mcfg = (madt + acpi_madt_len(ncpus) + 7) & ~(size_t)7;
	end = mcfg + ACPI_MCFG_LEN;
	if (len < end)
		return -ENOSPC;
	memset(buf, 0, dsdt + ACPI_HDR_LEN);
	memset(buf + dsdt + dsdt_len, 0, end - dsdt - dsdt_len);

	t = buf;
	memcpy(t, "RSD PTR ", 8);
	memcpy(t + 9, "CVMM  ", 6);
	t[15] = 2;  /* ACPI 2.0+: XSDT */
	le_put32(t + 20, ACPI_RSDP_LEN);
	le_put64(t + 24, base + xsdt);
	acpi_checksum(t, 20, 8);
	acpi_checksum(t, ACPI_RSDP_LEN, 32);

	t = buf + xsdt;
	acpi_header(t, "XSDT", (uint32_t)xsdt_len, 1);
	le_put64(t + 36, base + fadt);
	le_put64(t + 44, base + madt);
	le_put64(t + 52, base + mcfg);
	acpi_checksum(t, xsdt_len, 9);

	acpi_build_fadt(buf + fadt, base + dsdt, base + facs);

	t = buf + facs;
	memcpy(t, "FACS", 4);
	le_put32(t + 4, ACPI_FACS_LEN);
	t[32] = 2;  /* version */

	t = buf + dsdt;
	acpi_header(t, "DSDT", (uint32_t)dsdt_len, 2);
	acpi_checksum(t, dsdt_len, 9);

	acpi_build_madt(buf + madt, ncpus);
	acpi_build_mcfg(buf + mcfg);
	return (int)end;
}

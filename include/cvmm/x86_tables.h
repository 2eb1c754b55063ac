/*
 * Firmware tables for the x86 machine: ACPI (what Linux reads to find CPUs,
 * the IOAPIC and the power-off method) and an MP table for kernels built
 * without ACPI. Both are built into host buffers that the caller copies to
 * guest memory, so they can be checked without a VM.
 */
#ifndef CVMM_X86_TABLES_H
#define CVMM_X86_TABLES_H

#include <stddef.h>
#include <stdint.h>

/* The ACPI fixed-hardware registers cvmm implements (devices/legacy/acpi_pm.c). */
#define X86_ACPI_PM1A_EVT	0x600  /* 4 bytes: PM1 status, PM1 enable */
#define X86_ACPI_PM1A_CNT	0x604  /* 2 bytes: SCI_EN, SLP_TYP, SLP_EN */
#define X86_ACPI_PM_TMR		0x608  /* 4 bytes: 3.579545 MHz timer, 32 bits */
#define X86_ACPI_SCI_IRQ	9      /* level, active high: no other device may use it */
#define X86_ACPI_S5_SLP_TYP	5      /* \_S5 in the DSDT */
#define X86_ACPI_RESET_PORT	0x64   /* FADT reset register: the i8042 command port */
#define X86_ACPI_RESET_VALUE	0xfe

/* Most vCPUs the tables describe (8-bit xAPIC IDs, the IOAPIC takes one). */
#define X86_MAX_CPUS 254

/* MP config table in the BIOS area, after the ACPI tables. */
#define X86_MPTABLE_ADDR 0xf0000ULL

/* A virtio-mmio device, announced in the DSDT (ACPI id LNRO0005) so that a
 * kernel without virtio_mmio.device= support finds it. */
struct x86_mmio_dev {
	uint64_t base;
	uint32_t size, irq;
};
#define X86_MAX_MMIO_DEVS 16

/* Builds RSDP, XSDT, MADT, FADT, FACS, DSDT (with the nmmio virtio-mmio
 * devices) and MCFG into buf, which will sit at guest address base (RSDP
 * first, so the RSDP is at base). Returns the bytes used, or -ENOSPC when
 * len is too small. */
int x86_acpi_build(uint8_t *buf, size_t len, uint64_t base, unsigned ncpus,
		   const struct x86_mmio_dev *mmio, unsigned nmmio);

/* Builds the MP floating pointer (16 bytes) into fp, pointing at the config
 * table built into cfg, which will sit at guest address cfg_base. Returns the
 * config table's length, or -ENOSPC. */
int x86_mptable_build(uint8_t fp[16], uint8_t *cfg, size_t len, uint64_t cfg_base, unsigned ncpus);

/* The DSDT's body (AML after the table header) into buf: \_S5, the PCI
 * host bridge, the ECAM reservation and the virtio-mmio devices
 * (arch/x86/dsdt.c). Returns its length or -1 when cap is too small or
 * there are more than X86_MAX_MMIO_DEVS devices. */
int x86_dsdt_aml(uint8_t *buf, size_t cap, const struct x86_mmio_dev *mmio, unsigned nmmio);

/* Sum of len bytes modulo 256 (ACPI and MP checksums make it 0). */
uint8_t x86_table_sum(const uint8_t *p, size_t len);

#endif

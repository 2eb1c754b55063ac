/*
 * Guest physical memory map of cvmm's x86 machine. Everything the VMM
 * writes for booting lies below 1 MiB; the kernel goes at or above 1 MiB.
 *
 *   0x000500  GDT (null, null, code64 = 0x10, data = 0x18, TSS = 0x20; the 64-bit
 *             boot protocol wants __BOOT_CS/__BOOT_DS there)
 *   0x000540  IDT (empty)
 *   0x007000  boot_params ("zero page"), passed in rsi
 *   0x008ff0  initial stack pointer
 *   0x009000  PML4, 0x00a000 PDPT, 0x00b000..0x00efff four page directories:
 *             identity map of the first 4 GiB with 2 MiB pages
 *   0x020000  kernel command line (up to X86_CMDLINE_MAX bytes)
 *   0x030000  scratch of the --memory prefault=on pass (code, its table, page
 *             tables) up to 0x9f000, zeroed before the kernel runs
 *   0x09fc00  EBDA: MP floating pointer
 *   0x0e0000  BIOS area: ACPI RSDP, then XSDT, FADT, FACS, DSDT, MADT;
 *   0x0f0000  MP configuration table
 *   0x100000  kernel (bzImage at its pref_address when it fits, ELF at its p_paddr)
 *   RAM continues to 3 GiB; the rest of RAM is placed from 4 GiB on, leaving
 *   [3 GiB, 4 GiB) for devices: 0xc0000000 the PCI memory window (256 MiB,
 *   declared in the DSDT), then virtio-mmio and PCI ECAM (virtio_vm.h),
 *   the IOAPIC, KVM's TSS and the LAPIC.
 */
#ifndef CVMM_X86_LAYOUT_H
#define CVMM_X86_LAYOUT_H

#define X86_GDT_ADDR		0x500ULL
#define X86_IDT_ADDR		0x540ULL
#define X86_ZERO_PAGE_ADDR	0x7000ULL
#define X86_BOOT_STACK		0x8ff0ULL
#define X86_PML4_ADDR		0x9000ULL
#define X86_PDPT_ADDR		0xa000ULL
#define X86_PD_ADDR		0xb000ULL
#define X86_PD_PAGES		4
#define X86_CMDLINE_ADDR	0x20000ULL
#define X86_CMDLINE_MAX		0x10000ULL
#define X86_PREFAULT_ADDR	0x30000ULL
#define X86_PREFAULT_SIZE	0x6f000ULL
#define X86_EBDA_ADDR		0x9fc00ULL
#define X86_BIOS_ADDR		0xe0000ULL
#define X86_BIOS_END		0x100000ULL
#define X86_HIMEM_ADDR		0x100000ULL
#define X86_HOLE_START		0xc0000000ULL
#define X86_HIGH_RAM_ADDR	0x100000000ULL
#define X86_TSS_ADDR		0xfffbd000ULL
#define X86_IDENTITY_MAP_ADDR	0xfffbc000ULL
/* The PCI host bridge's memory window (DSDT _CRS): PCI BARs go here. */
#define X86_PCI_MMIO_START	0xc0000000ULL
#define X86_PCI_MMIO_SIZE	0x10000000ULL
/* PCI ECAM (enhanced configuration) for bus 0: announced in the MCFG,
 * reserved in e820 and as a DSDT motherboard resource. */
#define X86_PCI_ECAM_ADDR	0xe0000000ULL
#define X86_PCI_ECAM_SIZE	0x100000ULL
#define X86_IOAPIC_ADDR		0xfec00000ULL
#define X86_LAPIC_ADDR		0xfee00000ULL
#define X86_IOAPIC_PINS		24

/* Guest RAM as at most two ranges (below the hole, above 4 GiB). */
struct x86_ram_range {
	unsigned long long gpa, size;
};
/* Fills r[0..1] for ram_size bytes of RAM; returns how many ranges. */
unsigned x86_ram_ranges(unsigned long long ram_size, struct x86_ram_range r[2]);

#endif

/*
 * Guest physical memory map of cvmm's arm64 machine (devices below 1 GiB,
 * RAM from 1 GiB, as on QEMU's and kvmtool's virt machines):
 *
 *   0x08000000  GICv3 distributor (64 KiB)
 *   0x08080000  GICv3 ITS (128 KiB): MSIs of virtio-pci devices
 *   0x080a0000  GICv3 redistributors, 128 KiB per vCPU (ARM64_MAX_CPUS fit
 *               below 0x09000000)
 *   0x09000000  16550A UART (8 registers, one byte apart), SPI 1
 *   0x0a000000  virtio-mmio windows (VMMIO_WINDOW_SIZE each), SPIs 5..15
 *   0x10000000  PCI memory window (256 MiB): BARs of virtio-pci devices
 *   0x30000000  PCI ECAM, bus 0 (1 MiB)
 *   0x40000000  RAM: the kernel Image at RAM + its text_offset; the device
 *               tree in the last 2 MiB; the initramfs just below it
 *
 * Interrupts are SPIs numbered from 0 as KVM's irqfd GSIs are (INTID =
 * 32 + SPI); the device tree names them the same way. The arch timer uses
 * the architected PPIs (INTID 26, 27, 30, and 29 for the secure timer).
 */
#ifndef CVMM_ARM64_LAYOUT_H
#define CVMM_ARM64_LAYOUT_H

#define ARM64_GIC_DIST_ADDR	0x08000000ULL
#define ARM64_GIC_DIST_SIZE	0x10000ULL
#define ARM64_GIC_ITS_ADDR	0x08080000ULL
#define ARM64_GIC_ITS_SIZE	0x20000ULL
#define ARM64_GIC_REDIST_ADDR	0x080a0000ULL
#define ARM64_GIC_REDIST_SIZE	0x20000ULL   /* per vCPU: RD and SGI frames */
#define ARM64_MAX_CPUS		123          /* redistributors up to 0x09000000 */
/* SPIs the GIC implements: 32 private interrupts plus 96 shared. */
#define ARM64_GIC_NR_IRQS	128

#define ARM64_UART_ADDR		0x09000000ULL
#define ARM64_UART_ADDR_STR	"0x9000000"
#define ARM64_UART_SIZE		0x1000ULL
#define ARM64_UART_SPI		1
#define ARM64_UART_CLOCK	1843200

#define ARM64_VIRTIO_MMIO_BASE	0x0a000000ULL
#define ARM64_VIRTIO_MMIO_SPIS	{ 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 }

#define ARM64_PCI_MMIO_START	0x10000000ULL
#define ARM64_PCI_MMIO_SIZE	0x10000000ULL
#define ARM64_PCI_ECAM_BASE	0x30000000ULL
#define ARM64_PCI_ECAM_SIZE	0x100000ULL

#define ARM64_RAM_BASE		0x40000000ULL
/* The device tree sits in RAM's last 2 MiB (Linux maps at most 2 MiB of it). */
#define ARM64_FDT_MAX_SIZE	0x200000ULL
/* How far above RAM_BASE (1 GiB-aligned, where the kernel is) the initramfs
 * may go: Linux's arm64 booting.rst window. */
#define ARM64_INITRD_WINDOW	(32ULL << 30)

/* Architected timer PPIs (numbers from 16: INTID - 16, as the device tree counts them). */
#define ARM64_TIMER_PPI_SEC	13
#define ARM64_TIMER_PPI_PHYS	14
#define ARM64_TIMER_PPI_VIRT	11
#define ARM64_TIMER_PPI_HYP	10

#endif

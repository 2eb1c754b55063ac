/* The arm64 machine's device tree, built with libfdt's sequential writer
 * (include/cvmm/arm64_boot.h; layout in arm64_layout.h). */
#include <errno.h>
#include <libfdt.h>
#include <stdio.h>
#include <string.h>

#include "cvmm/arm64_boot.h"
#include "cvmm/arm64_layout.h"
#include "cvmm/pci.h"

/* Device tree interrupt specifiers for the GIC: type, number, flags. */
#define FDT_GIC_SPI 0
#define FDT_GIC_PPI 1
#define FDT_IRQ_EDGE_RISING 1
#define FDT_IRQ_LEVEL_HIGH 4
/* PCI ranges: 32-bit non-prefetchable memory space. */
#define FDT_PCI_SPACE_MEM32 0x02000000u

/* Each step returns libfdt's error (< 0); the first one ends the build. */
struct fdt_writer {
	void *buf;
	int err;
};

static void fdt_w(struct fdt_writer *w, int ret)
{
	if (!w->err && ret < 0)
		w->err = ret;
}

static void fdt_begin(struct fdt_writer *w, const char *name)
{
	if (!w->err)
		fdt_w(w, fdt_begin_node(w->buf, name));
}

static void fdt_end(struct fdt_writer *w)
{
	if (!w->err)
		fdt_w(w, fdt_end_node(w->buf));
}

static void fdt_str(struct fdt_writer *w, const char *name, const char *val)
{
	if (!w->err)
		fdt_w(w, fdt_property_string(w->buf, name, val));
}

static void fdt_u32(struct fdt_writer *w, const char *name, uint32_t val)
{
	if (!w->err)
		fdt_w(w, fdt_property_u32(w->buf, name, val));
}

static void fdt_empty(struct fdt_writer *w, const char *name)
{
	if (!w->err)
		fdt_w(w, fdt_property(w->buf, name, NULL, 0));
}

/* A property of n 32-bit cells (big-endian in the tree). */
static void fdt_cells(struct fdt_writer *w, const char *name, const uint32_t *cells, unsigned n)
{
	fdt32_t be[16];

	for (unsigned i = 0; i < n && i < 16; i++)
		be[i] = cpu_to_fdt32(cells[i]);
	if (!w->err)
		fdt_w(w, fdt_property(w->buf, name, be, (int)(n * sizeof(be[0]))));
}

/* reg = <addr size> with #address-cells = #size-cells = 2. */
static void fdt_reg(struct fdt_writer *w, uint64_t addr, uint64_t size)
{
	uint32_t c[4] = { (uint32_t)(addr >> 32), (uint32_t)addr, (uint32_t)(size >> 32), (uint32_t)size };

	fdt_cells(w, "reg", c, 4);
}

static void fdt_irq(struct fdt_writer *w, uint32_t type, uint32_t num, uint32_t flags)
{
	uint32_t c[3] = { type, num, flags };

	fdt_cells(w, "interrupts", c, 3);
}

static void fdt_node_at(struct fdt_writer *w, const char *name, uint64_t addr)
{
	char n[64];

	snprintf(n, sizeof(n), "%s@%llx", name, (unsigned long long)addr);
	fdt_begin(w, n);
}

static void fdt_chosen(struct fdt_writer *w, const struct arm64_fdt_config *c)
{
	char path[64];

	fdt_begin(w, "chosen");
	fdt_str(w, "bootargs", c->cmdline);
	if (c->uart) {
		snprintf(path, sizeof(path), "/uart@%llx", (unsigned long long)ARM64_UART_ADDR);
		fdt_str(w, "stdout-path", path);
	}
	if (c->initrd_size) {
		if (!w->err)
			fdt_w(w, fdt_property_u64(w->buf, "linux,initrd-start", c->initrd_addr));
		if (!w->err)
			fdt_w(w, fdt_property_u64(w->buf, "linux,initrd-end", c->initrd_addr + c->initrd_size));
	}
	fdt_end(w);
}

static void fdt_cpus(struct fdt_writer *w, const struct arm64_fdt_config *c)
{
	char name[32];

	fdt_begin(w, "cpus");
	fdt_u32(w, "#address-cells", 1);
	fdt_u32(w, "#size-cells", 0);
	for (unsigned i = 0; i < c->ncpus; i++) {
		snprintf(name, sizeof(name), "cpu@%llx", (unsigned long long)c->mpidr[i]);
		fdt_begin(w, name);
		fdt_str(w, "device_type", "cpu");
		fdt_str(w, "compatible", "arm,arm-v8");
		fdt_u32(w, "reg", (uint32_t)c->mpidr[i]);
		fdt_str(w, "enable-method", "psci");
		fdt_end(w);
	}
	fdt_end(w);
}

static void fdt_gic(struct fdt_writer *w, const struct arm64_fdt_config *c)
{
	uint32_t reg[8] = {
		0, (uint32_t)ARM64_GIC_DIST_ADDR, 0, (uint32_t)ARM64_GIC_DIST_SIZE,
		0, (uint32_t)ARM64_GIC_REDIST_ADDR, 0, (uint32_t)(ARM64_GIC_REDIST_SIZE * c->ncpus),
	};

	fdt_node_at(w, "intc", ARM64_GIC_DIST_ADDR);
	fdt_str(w, "compatible", "arm,gic-v3");
	fdt_u32(w, "#interrupt-cells", 3);
	fdt_empty(w, "interrupt-controller");
	fdt_u32(w, "#address-cells", 2);
	fdt_u32(w, "#size-cells", 2);
	fdt_empty(w, "ranges");
	fdt_cells(w, "reg", reg, 8);
	fdt_u32(w, "phandle", ARM64_FDT_PHANDLE_GIC);
	if (c->its) {
		fdt_node_at(w, "msi-controller", ARM64_GIC_ITS_ADDR);
		fdt_str(w, "compatible", "arm,gic-v3-its");
		fdt_empty(w, "msi-controller");
		fdt_u32(w, "#msi-cells", 1);
		fdt_reg(w, ARM64_GIC_ITS_ADDR, ARM64_GIC_ITS_SIZE);
		fdt_u32(w, "phandle", ARM64_FDT_PHANDLE_ITS);
		fdt_end(w);
	}
	fdt_end(w);
}

static void fdt_timer_psci(struct fdt_writer *w)
{
	static const uint32_t ppis[] = { ARM64_TIMER_PPI_SEC, ARM64_TIMER_PPI_PHYS, ARM64_TIMER_PPI_VIRT,
					 ARM64_TIMER_PPI_HYP };
	uint32_t irqs[12];

	for (unsigned i = 0; i < 4; i++) {
		irqs[3 * i] = FDT_GIC_PPI;
		irqs[3 * i + 1] = ppis[i];
		irqs[3 * i + 2] = FDT_IRQ_LEVEL_HIGH;
	}
	fdt_begin(w, "timer");
	fdt_str(w, "compatible", "arm,armv8-timer");
	fdt_cells(w, "interrupts", irqs, 12);
	fdt_empty(w, "always-on");
	fdt_end(w);
	/* KVM implements PSCI 0.2 or later for vCPUs created with the
	 * KVM_ARM_VCPU_PSCI_0_2 feature; Linux asks for the exact version. */
	fdt_begin(w, "psci");
	fdt_str(w, "compatible", "arm,psci-0.2");
	fdt_str(w, "method", "hvc");
	fdt_end(w);
}

static void fdt_devices(struct fdt_writer *w, const struct arm64_fdt_config *c)
{
	if (c->uart) {
		fdt_node_at(w, "uart", ARM64_UART_ADDR);
		fdt_str(w, "compatible", "ns16550a");
		fdt_reg(w, ARM64_UART_ADDR, ARM64_UART_SIZE);
		fdt_irq(w, FDT_GIC_SPI, ARM64_UART_SPI, FDT_IRQ_LEVEL_HIGH);
		fdt_u32(w, "clock-frequency", ARM64_UART_CLOCK);
		fdt_end(w);
	}
	/* irqfd pulses the line: edge-triggered, as on x86's IOAPIC. */
	for (unsigned i = 0; i < c->nmmio; i++) {
		fdt_node_at(w, "virtio_mmio", c->mmio_addr[i]);
		fdt_str(w, "compatible", "virtio,mmio");
		fdt_reg(w, c->mmio_addr[i], 0x1000);
		fdt_irq(w, FDT_GIC_SPI, c->mmio_spi[i], FDT_IRQ_EDGE_RISING);
		fdt_empty(w, "dma-coherent");
		fdt_end(w);
	}
}

static void fdt_pci(struct fdt_writer *w, const struct arm64_fdt_config *c)
{
	uint32_t bus_range[2] = { 0, 0 };
	uint32_t ranges[7] = {
		FDT_PCI_SPACE_MEM32, 0, (uint32_t)ARM64_PCI_MMIO_START,
		0, (uint32_t)ARM64_PCI_MMIO_START, 0, (uint32_t)ARM64_PCI_MMIO_SIZE,
	};
	/* Requester IDs 0..0xffff are the ITS's device IDs one to one. */
	uint32_t msi_map[4] = { 0, ARM64_FDT_PHANDLE_ITS, 0, 0x10000 };

	fdt_node_at(w, "pcie", ARM64_PCI_ECAM_BASE);
	fdt_str(w, "compatible", "pci-host-ecam-generic");
	fdt_str(w, "device_type", "pci");
	fdt_u32(w, "#address-cells", 3);
	fdt_u32(w, "#size-cells", 2);
	fdt_cells(w, "bus-range", bus_range, 2);
	fdt_u32(w, "linux,pci-domain", 0);
	fdt_reg(w, ARM64_PCI_ECAM_BASE, PCI_ECAM_BUS_SIZE);
	fdt_cells(w, "ranges", ranges, 7);
	if (c->its)
		fdt_cells(w, "msi-map", msi_map, 4);
	fdt_empty(w, "dma-coherent");
	fdt_end(w);
}

int arm64_fdt_build(void *buf, size_t cap, const struct arm64_fdt_config *c, char *err, size_t errlen)
{
	struct fdt_writer w = { .buf = buf };

	if (cap > ARM64_FDT_MAX_SIZE || c->nmmio > ARM64_FDT_MAX_MMIO || !c->ncpus) {
		snprintf(err, errlen, "device tree: bad configuration (%u vCPUs, %u virtio-mmio devices, %zu bytes)",
			 c->ncpus, c->nmmio, cap);
		return -EINVAL;
	}
	fdt_w(&w, fdt_create(buf, (int)cap));
	if (!w.err)
		fdt_w(&w, fdt_finish_reservemap(buf));
	fdt_begin(&w, "");
	fdt_str(&w, "compatible", "linux,dummy-virt");
	fdt_str(&w, "model", "cvmm arm64");
	fdt_u32(&w, "#address-cells", 2);
	fdt_u32(&w, "#size-cells", 2);
	fdt_u32(&w, "interrupt-parent", ARM64_FDT_PHANDLE_GIC);
	fdt_chosen(&w, c);
	fdt_node_at(&w, "memory", ARM64_RAM_BASE);
	fdt_str(&w, "device_type", "memory");
	fdt_reg(&w, ARM64_RAM_BASE, c->ram_size);
	fdt_end(&w);
	fdt_cpus(&w, c);
	fdt_timer_psci(&w);
	fdt_gic(&w, c);
	fdt_devices(&w, c);
	fdt_pci(&w, c);
	fdt_end(&w);
	if (!w.err)
		fdt_w(&w, fdt_finish(buf));
	if (w.err) {
		snprintf(err, errlen, "device tree: %s", fdt_strerror(w.err));
		return w.err == -FDT_ERR_NOSPACE ? -ENOSPC : -EINVAL;
	}
	return (int)fdt_totalsize(buf);
}

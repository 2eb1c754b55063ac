/*
 * Fuzz target: the virtio transports driven by a hostile driver's register
 * accesses: PCI configuration space through ports 0xCF8-0xCFF and the ECAM
 * window (capabilities, BAR sizing, the PCI_CFG window), virtio-pci's BAR0
 * (common configuration, ISR, device config, notify, MSI-X table and PBA)
 * and virtio-mmio's register window. Accesses are 1 to 4 bytes at any offset
 * inside a window, as the VMM passes them on (wider ones never reach the
 * transports). Each transport serves a fuzz device (fuzz_vdev.h) whose
 * queues, when the driver enables them, are drained over fuzzed guest memory.
 *
 * Input: u16 n and n bytes of guest memory (at address 0), then accesses
 * of 10 bytes: u8 where (% 8: cf8 read, cf8 write, ecam read, ecam write,
 * BAR0 read, BAR0 write, mmio read, mmio write), u8 size (% 4 + 1),
 * u32 offset (cut into the window), u32 value.
 */
#include <stdlib.h>

#include "cvmm/pci.h"
#include "cvmm/virtio_mmio.h"
#include "cvmm/virtio_pci.h"
#include "lib/fuzz_input.h"
#include "lib/fuzz_target.h"
#include "lib/fuzz_ring.h"
#include "lib/fuzz_vdev.h"

#define TR_FUZZ_BAR0 0xc0000000u
#define TR_FUZZ_MMIO_BASE 0xd0000000u
#define TR_FUZZ_PIO_WINDOW 8

enum { TR_CF8_READ, TR_CF8_WRITE, TR_ECAM_READ, TR_ECAM_WRITE, TR_BAR_READ, TR_BAR_WRITE,
       TR_MMIO_READ, TR_MMIO_WRITE };

static struct fuzz_ring_mem tr_fuzz_mem;

static void tr_fuzz_cleanup(void)
{
	fuzz_ring_mem_destroy(&tr_fuzz_mem);
}

/* What the VMM does on these events: reads the new state back. */
static void tr_fuzz_msix_changed(void *ctx, struct vpci *p)
{
	uint64_t addr;
	uint32_t data;

	(void)ctx;
	if (!vpci_msix_enabled(p))
		return;
	for (unsigned q = 0; q <= FUZZ_VDEV_QUEUES; q++)
		vpci_msi_message(p, q, &addr, &data);
}

static void tr_fuzz_bar_changed(void *ctx, struct vpci *p)
{
	(void)ctx;
	vpci_bar0(p);
}

static const struct vpci_host tr_fuzz_host = {
	.msix_changed = tr_fuzz_msix_changed,
	.bar_changed = tr_fuzz_bar_changed,
};

/* offset cut so that [off, off + size) lies in a window of win bytes. */
static uint32_t tr_fuzz_cut(uint32_t off, unsigned size, uint32_t win)
{
	return off % (win - size + 1);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_quiet_log();
	if (fuzz_ring_mem_init(&tr_fuzz_mem))
		abort();
	atexit(tr_fuzz_cleanup);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_input in = { data, size };
	size_t mem_len;
	const uint8_t *mem = fuzz_input_take(&in, fuzz_input_u16(&in), &mem_len);
	struct fuzz_vdev pdev, mdev;
	struct pci_bus bus;
	struct vpci pci;
	struct vmmio mmio;

	fuzz_ring_mem_load(&tr_fuzz_mem, mem, mem_len);
	if (fuzz_vdev_init(&pdev, 2) || fuzz_vdev_init(&mdev, 4))
		abort();
	pdev.dev.mem = mdev.dev.mem = &tr_fuzz_mem.mem;
	pci_bus_init(&bus);
	if (vpci_init(&pci, &pdev.dev, TR_FUZZ_BAR0, &tr_fuzz_host, NULL) ||
	    pci_bus_add(&bus, &vpci_func_ops, &pci) < 0 ||
	    vmmio_init(&mmio, &mdev.dev, TR_FUZZ_MMIO_BASE, 5))
		abort();
	while (!fuzz_input_empty(&in)) {
		uint8_t where = fuzz_input_u8(&in) % 8;
		unsigned len = fuzz_input_u8(&in) % 4 + 1;
		uint32_t off = fuzz_input_u32(&in), val = fuzz_input_u32(&in);

		switch (where) {
		case TR_CF8_READ:
			pci_pio_read(&bus, PCI_CONFIG_ADDRESS_PORT + tr_fuzz_cut(off, len, TR_FUZZ_PIO_WINDOW),
				     len);
			break;
		case TR_CF8_WRITE:
			pci_pio_write(&bus, PCI_CONFIG_ADDRESS_PORT + tr_fuzz_cut(off, len, TR_FUZZ_PIO_WINDOW),
				      len, val);
			break;
		case TR_ECAM_READ:
			pci_ecam_read(&bus, tr_fuzz_cut(off, len, PCI_ECAM_BUS_SIZE), len);
			break;
		case TR_ECAM_WRITE:
			pci_ecam_write(&bus, tr_fuzz_cut(off, len, PCI_ECAM_BUS_SIZE), len, val);
			break;
		case TR_BAR_READ:
			vpci_bar_read(&pci, tr_fuzz_cut(off, len, VPCI_BAR_SIZE), len);
			break;
		case TR_BAR_WRITE:
			vpci_bar_write(&pci, tr_fuzz_cut(off, len, VPCI_BAR_SIZE), len, val);
			break;
		case TR_MMIO_READ:
			vmmio_read(&mmio, tr_fuzz_cut(off, len, VMMIO_WINDOW_SIZE), len);
			break;
		default:
			vmmio_write(&mmio, tr_fuzz_cut(off, len, VMMIO_WINDOW_SIZE), len, val);
			break;
		}
	}
	vmmio_destroy(&mmio);
	vpci_destroy(&pci);
	fuzz_vdev_destroy(&mdev);
	fuzz_vdev_destroy(&pdev);
	return 0;
}

#include <errno.h>
#include <string.h>

#include "cvmm/pci.h"

uint32_t pci_cfg_read(const struct pci_cfg *c, uint32_t off, unsigned size)
{
	uint32_t v = 0;

	if (off < sizeof(c->bytes) && size <= sizeof(c->bytes) - off)
		memcpy(&v, &c->bytes[off], size);
	return v;
}

void pci_cfg_write(struct pci_cfg *c, uint32_t off, unsigned size, uint32_t val)
{
	if (off >= sizeof(c->bytes) || size > sizeof(c->bytes) - off)
		return;
	for (unsigned i = 0; i < size; i++) {
		uint8_t m = c->wmask[off + i], b = val >> (8 * i);

		c->bytes[off + i] = (c->bytes[off + i] & ~m) | (b & m);
	}
}

void pci_cfg_set(struct pci_cfg *c, uint32_t off, unsigned size, uint32_t val)
{
	if (off < sizeof(c->bytes) && size <= sizeof(c->bytes) - off)
		memcpy(&c->bytes[off], &val, size);
}

void pci_cfg_set_wmask(struct pci_cfg *c, uint32_t off, unsigned size, uint32_t mask)
{
	if (off < sizeof(c->wmask) && size <= sizeof(c->wmask) - off)
		memcpy(&c->wmask[off], &mask, size);
}

static uint32_t pci_bridge_read(void *fn, uint32_t off, unsigned size)
{
	return pci_cfg_read(fn, off, size);
}

static void pci_bridge_write(void *fn, uint32_t off, unsigned size, uint32_t val)
{
	pci_cfg_write(fn, off, size, val);
}

static const struct pci_func_ops pci_bridge_ops = {
	.cfg_read = pci_bridge_read,
	.cfg_write = pci_bridge_write,
};

void pci_bus_init(struct pci_bus *b)
{
	struct pci_cfg *hb = &b->host_bridge;

	memset(b, 0, sizeof(*b));
	pci_cfg_set(hb, PCI_VENDOR_ID, 2, 0x1b36);   /* Red Hat, Inc. (QEMU's PCI IDs) */
	pci_cfg_set(hb, PCI_DEVICE_ID, 2, 0x0008);   /* generic PCIe host bridge */
	pci_cfg_set(hb, PCI_CLASS_PROG, 3, 0x060000); /* bridge, host bridge, no prog-if */
	pci_cfg_set_wmask(hb, PCI_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	b->slots[0].ops = &pci_bridge_ops;
	b->slots[0].fn = hb;
}

int pci_bus_add(struct pci_bus *b, const struct pci_func_ops *ops, void *fn)
{
	for (int d = 1; d < PCI_SLOTS; d++) {
		if (b->slots[d].ops)
			continue;
		b->slots[d].ops = ops;
		b->slots[d].fn = fn;
		return d;
	}
	return -ENOSPC;
}

static bool pci_aligned(uint32_t off, unsigned size)
{
	return (size == 1 || size == 2 || size == 4) && (off & (size - 1)) == 0;
}

/* Bus 0, function 0 only; everything else is absent. */
static uint32_t pci_func_read(struct pci_bus *b, unsigned bus, unsigned dev, unsigned fn,
			      uint32_t off, unsigned size)
{
	uint32_t ones = size == 4 ? 0xffffffff : (1u << (8 * size)) - 1;

	if (bus || fn || dev >= PCI_SLOTS || !b->slots[dev].ops || !pci_aligned(off, size))
		return ones;
	return b->slots[dev].ops->cfg_read(b->slots[dev].fn, off, size);
}

static void pci_func_write(struct pci_bus *b, unsigned bus, unsigned dev, unsigned fn,
			   uint32_t off, unsigned size, uint32_t val)
{
	if (bus || fn || dev >= PCI_SLOTS || !b->slots[dev].ops || !pci_aligned(off, size))
		return;
	b->slots[dev].ops->cfg_write(b->slots[dev].fn, off, size, val);
}

/* CONFIG_ADDRESS: enable bit 31, bus 23:16, device 15:11, function 10:8,
 * register 7:2; the data port's low bits pick the byte. */
#define PCI_CA_ENABLE (1u << 31)

uint32_t pci_pio_read(struct pci_bus *b, uint16_t port, unsigned size)
{
	uint32_t ca = b->config_address;

	if (port == PCI_CONFIG_ADDRESS_PORT && size == 4)
		return ca;
	if (port < PCI_CONFIG_DATA_PORT || port > PCI_CONFIG_DATA_PORT + 3 || !(ca & PCI_CA_ENABLE))
		return size == 4 ? 0xffffffff : (1u << (8 * size)) - 1;
	return pci_func_read(b, (ca >> 16) & 0xff, (ca >> 11) & 0x1f, (ca >> 8) & 7,
			     (ca & 0xfc) + (port - PCI_CONFIG_DATA_PORT), size);
}

void pci_pio_write(struct pci_bus *b, uint16_t port, unsigned size, uint32_t val)
{
	uint32_t ca = b->config_address;

	if (port == PCI_CONFIG_ADDRESS_PORT && size == 4) {
		b->config_address = val;
		return;
	}
	if (port < PCI_CONFIG_DATA_PORT || port > PCI_CONFIG_DATA_PORT + 3 || !(ca & PCI_CA_ENABLE))
		return;
	pci_func_write(b, (ca >> 16) & 0xff, (ca >> 11) & 0x1f, (ca >> 8) & 7,
		       (ca & 0xfc) + (port - PCI_CONFIG_DATA_PORT), size, val);
}

/* ECAM: bus 27:20, device 19:15, function 14:12, register 11:0. */
uint32_t pci_ecam_read(struct pci_bus *b, uint64_t off, unsigned size)
{
	return pci_func_read(b, off >> 20, (off >> 15) & 0x1f, (off >> 12) & 7, off & 0xfff, size);
}

void pci_ecam_write(struct pci_bus *b, uint64_t off, unsigned size, uint32_t val)
{
	pci_func_write(b, off >> 20, (off >> 15) & 0x1f, (off >> 12) & 7, off & 0xfff, size, val);
}

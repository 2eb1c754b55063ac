/*
 * PCI bus 0: configuration access through ports 0xCF8/0xCFC (mechanism #1)
 * and an ECAM window, a host bridge at 00:00.0, and functions that plug in
 * with a pair of config-space accessors. The bus knows nothing of virtio.
 */
#ifndef CVMM_PCI_H
#define CVMM_PCI_H

#include <stdbool.h>
#include <stdint.h>

#define PCI_CONFIG_ADDRESS_PORT 0xcf8
#define PCI_CONFIG_DATA_PORT 0xcfc
#define PCI_SLOTS 32
#define PCI_ECAM_BUS_SIZE (PCI_SLOTS * 8 * 4096)

/* Standard header offsets used here. */
#define PCI_VENDOR_ID 0x00
#define PCI_DEVICE_ID 0x02
#define PCI_COMMAND 0x04
#define PCI_STATUS 0x06
#define PCI_REVISION_ID 0x08
#define PCI_CLASS_PROG 0x09
#define PCI_HEADER_TYPE 0x0e
#define PCI_BAR0 0x10
#define PCI_SUBSYSTEM_VENDOR_ID 0x2c
#define PCI_SUBSYSTEM_ID 0x2e
#define PCI_CAPABILITY_LIST 0x34
#define PCI_INTERRUPT_LINE 0x3c
#define PCI_INTERRUPT_PIN 0x3d
#define PCI_STATUS_CAP_LIST 0x10
#define PCI_COMMAND_MEMORY 0x2
#define PCI_COMMAND_MASTER 0x4
#define PCI_COMMAND_INTX_DISABLE 0x400

/* A function's 256-byte config space with a mask of the bits the guest may
 * write: BAR sizing falls out of it (an all-ones write reads back the size
 * mask because the low bits are read-only). */
struct pci_cfg {
	uint8_t bytes[256];
	uint8_t wmask[256];
};

uint32_t pci_cfg_read(const struct pci_cfg *c, uint32_t off, unsigned size);
void pci_cfg_write(struct pci_cfg *c, uint32_t off, unsigned size, uint32_t val);
/* Sets bytes without the mask (for the function's own initial values). */
void pci_cfg_set(struct pci_cfg *c, uint32_t off, unsigned size, uint32_t val);
void pci_cfg_set_wmask(struct pci_cfg *c, uint32_t off, unsigned size, uint32_t mask);

struct pci_func_ops {
	/* off is aligned to size (1, 2 or 4) and below 4096. */
	uint32_t (*cfg_read)(void *fn, uint32_t off, unsigned size);
	void (*cfg_write)(void *fn, uint32_t off, unsigned size, uint32_t val);
};

struct pci_bus {
	struct {
		const struct pci_func_ops *ops;
		void *fn;
	} slots[PCI_SLOTS];
	struct pci_cfg host_bridge;
	uint32_t config_address; /* latched 0xCF8 value */
};

void pci_bus_init(struct pci_bus *b);
/* Puts a function at the next free device number (function 0). Returns the
 * device number or -ENOSPC. */
int pci_bus_add(struct pci_bus *b, const struct pci_func_ops *ops, void *fn);

/* Port I/O at 0xCF8..0xCFF. Reads of absent functions return all ones. */
uint32_t pci_pio_read(struct pci_bus *b, uint16_t port, unsigned size);
void pci_pio_write(struct pci_bus *b, uint16_t port, unsigned size, uint32_t val);
/* Access at offset off of the ECAM window (bus 0 only). */
uint32_t pci_ecam_read(struct pci_bus *b, uint64_t off, unsigned size);
void pci_ecam_write(struct pci_bus *b, uint64_t off, unsigned size, uint32_t val);

#endif

/*
 * Modern virtio-pci (virtio 1.2 section 4.1): one PCI function per device,
 * vendor capabilities for common/notify/ISR/device config in BAR0, and MSI-X
 * with a vector per queue plus one for config. The VM glue routes each
 * queue's call eventfd to its MSI-X message (or INTx while MSI-X is off) and
 * puts an ioeventfd on each queue's notify address; it learns about changes
 * through struct vpci_host.
 */
#ifndef CVMM_VIRTIO_PCI_H
#define CVMM_VIRTIO_PCI_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "cvmm/pci.h"
#include "cvmm/virtio_transport.h"

/* BAR0 layout (32-bit memory BAR). */
#define VPCI_BAR_SIZE 0x8000
#define VPCI_COMMON_OFF 0x0000
#define VPCI_ISR_OFF 0x1000
#define VPCI_DEVICE_OFF 0x2000
#define VPCI_NOTIFY_OFF 0x3000
#define VPCI_NOTIFY_MULTIPLIER 4
#define VPCI_MSIX_TABLE_OFF 0x4000
#define VPCI_MSIX_PBA_OFF 0x5000
#define VPCI_MAX_QUEUES 255 /* one MSI-X vector each plus config, 256 in the table */
#define VPCI_NO_VECTOR 0xffff

struct vpci;

struct vpci_host {
	/* MSI-X enable/mask, a table entry, or a queue/config vector changed. */
	void (*msix_changed)(void *ctx, struct vpci *p);
	/* BAR0 moved (or memory decoding was switched): notify addresses moved. */
	void (*bar_changed)(void *ctx, struct vpci *p);
};

struct vpci_msix_entry {
	uint32_t addr_lo, addr_hi, data, ctrl;
};

struct vpci {
	/* One lock for every register access, through BAR0 or through config
	 * space (including the PCI_CFG window onto BAR0), so two vCPUs cannot
	 * reset and enable the device at once by taking different paths. */
	pthread_mutex_t lock;
	struct vtr tr;
	struct pci_cfg cfg;
	unsigned nvectors;
	struct vpci_msix_entry *msix;
	uint16_t config_vector;
	uint16_t *queue_vector;
	uint32_t device_features_sel, driver_features_sel;
	uint16_t queue_sel;
	const struct vpci_host *host;
	void *host_ctx;
	uint32_t config_gen_unrouted; /* config_generation when the config vector last lost its route */
	uint32_t bar0_reset;          /* where BAR0 is at power-on */
};

extern const struct pci_func_ops vpci_func_ops;

/* dev->mem must be set. bar0 is the address BAR0 starts at. 0 or -errno. */
int vpci_init(struct vpci *p, struct vdev *dev, uint32_t bar0,
	      const struct vpci_host *host, void *host_ctx);
void vpci_destroy(struct vpci *p);
/* A machine reset: the device reset (as a driver's status 0), MSI-X off
 * with every vector masked, and configuration space as at power-on (BAR0
 * back home, decoding off); the host hears of the BAR and MSI-X changes. */
void vpci_reset(struct vpci *p);

/* The host tells the transport that the config vector's MSI route became
 * active (true) or inactive (false). Returns true when the device's
 * configuration changed while there was no route, so that interrupt was
 * lost and must be raised now; a change-free activation raises nothing
 * (a spurious config interrupt makes Linux re-read the configuration, and
 * virtio-blk then logs a "new size" nobody caused). */
bool vpci_config_route(struct vpci *p, bool active);

/* Current BAR0 address, or 0 while memory decoding is off. */
uint32_t vpci_bar0(const struct vpci *p);
/* Access at offset off of BAR0 (takes p->lock). */
uint32_t vpci_bar_read(struct vpci *p, uint32_t off, unsigned size);
void vpci_bar_write(struct vpci *p, uint32_t off, unsigned size, uint32_t val);

bool vpci_msix_enabled(const struct vpci *p);
/* The MSI message that queue q's interrupts go to (q == num_queues means the
 * config interrupt). False when MSI-X is off, the vector is NO_VECTOR or the
 * vector or function is masked. */
bool vpci_msi_message(const struct vpci *p, unsigned q, uint64_t *addr, uint32_t *data);

#endif

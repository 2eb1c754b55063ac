/*
 * The machine's in-process virtio devices, from the command line (--disk,
 * --net, --rng, --console, --transport): opened before the VM exists (so bad options and
 * unusable images are reported before anything is created), attached to the
 * VM once it does.
 */
#ifndef CVMM_MACHINE_VIRTIO_H
#define CVMM_MACHINE_VIRTIO_H

#include <stdbool.h>

#include "cli.h"
#include "cvmm/virtio_blk.h"
#include "cvmm/virtio_console.h"
#include "cvmm/virtio_net.h"
#include "cvmm/virtio_vm.h"
#include "cvmm/virtio_rng.h"
#include "cvmm/vu_fe_dev.h"
#include "cvmm/x86_tables.h"

struct machine_virtio {
	enum virtio_transport_kind kind;
	struct blk_dev *disks;
	unsigned ndisks;
	char (*disk_ids)[32];      /* id= of each disk, "disk<N>" by default */
	struct net_dev *nets;
	unsigned nnets;
	char (*net_ids)[32];
	struct vu_fe_dev *vus;     /* devices served by vhost-user back-ends */
	unsigned nvus;
	char (*vu_ids)[32];
	struct rng_dev *rng;
	struct vcon_dev *console;  /* with --console other than off */
	struct virtio_vm host;
	bool attached;
	char cmdline[512];  /* kernel arguments the devices need ("" for PCI) */
};

/* Creates the device models (and connects to vhost-user back-ends). Logs
 * one line and returns -errno (-EINVAL for a malformed option). */
int machine_virtio_open(struct machine_virtio *mv, const struct cli_config *cfg);
/* True when a vhost-user back-end must map guest memory (MAP_SHARED RAM). */
static inline bool machine_virtio_shares_memory(const struct machine_virtio *mv)
{
	return mv->nvus > 0;
}
/* Puts them on vm behind the chosen transport. 0 or -errno, logged. */
int machine_virtio_attach(struct machine_virtio *mv, struct vm *vm);
/* The virtio-mmio devices machine_virtio_attach() will place, for the DSDT
 * (none with --transport pci). Returns how many, at most X86_MAX_MMIO_DEVS. */
unsigned machine_virtio_mmio_devs(const struct machine_virtio *mv, struct x86_mmio_dev *out);
/* Call with the vCPUs stopped. */
void machine_virtio_destroy(struct machine_virtio *mv);

#endif

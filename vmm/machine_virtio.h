/*
 * The machine's in-process virtio devices, from the command line (the
 * device type table's options: --disk, --net, --rng; and --console,
 * --transport): opened before the VM exists (so bad options and unusable
 * images are reported before anything is created), attached to the VM once
 * it does.
 */
#ifndef CVMM_MACHINE_VIRTIO_H
#define CVMM_MACHINE_VIRTIO_H

#include <stdbool.h>

#include "cli.h"
#include "cvmm/devtype.h"
#include "cvmm/virtio_console.h"
#include "cvmm/virtio_vm.h"

struct machine_virtio {
	enum virtio_transport_kind kind;
	struct devtype_dev devs[CLI_MAX_DEVICES]; /* in table order, then command-line order */
	unsigned ndevs;
	/* --console: the virtio-console, whose host side is the VMM's console
	 * (vmm/console.c, shared with --serial), so it is not a table row. */
	struct vcon_dev *console;
	struct virtio_vm virtio;   /* the devices on the VM (transports wired to KVM) */
	bool attached;
	char cmdline[512];  /* kernel arguments the devices need ("" for PCI) */
};

/* Creates the device models. Logs one line and returns -errno (-EINVAL for
 * a malformed option). */
int machine_virtio_open(struct machine_virtio *mv, const struct cli_config *cfg);
/* True when a vhost-user back-end must map guest memory (MAP_SHARED RAM). */
static inline bool machine_virtio_shares_memory(const struct machine_virtio *mv)
{
	for (unsigned i = 0; i < mv->ndevs; i++)
		if (mv->devs[i].vhost_user)
			return true;
	return false;
}
/* Puts them on vm behind the chosen transport. 0 or -errno, logged. */
int machine_virtio_attach(struct machine_virtio *mv, struct vm *vm);
/* A machine reset (vCPUs parked): every device and transport as at power-on. */
static inline void machine_virtio_reset(struct machine_virtio *mv)
{
	if (mv->attached)
		virtio_vm_reset(&mv->virtio);
}
/* Call with the vCPUs stopped. */
void machine_virtio_destroy(struct machine_virtio *mv);

#endif

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cvmm/log.h"
#include "machine_virtio.h"

/* The new device's id must name no other device. */
static int machine_virtio_check_id(const struct machine_virtio *mv, const struct devtype_dev *d)
{
	for (unsigned i = 0; i < mv->ndevs; i++)
		if (!strcmp(mv->devs[i].id, d->id)) {
			log_err("%s: id=%s names another device already", d->type->vm_option, d->id);
			return -EINVAL;
		}
	return 0;
}

/* True when the key=value list text gives key. */
static bool machine_virtio_has_key(const char *text, const char *key)
{
	size_t len = strlen(key);

	for (const char *p = text; p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL)
		if (!strncmp(p, key, len) && p[len] == '=')
			return true;
	return false;
}

/* A device's options with its queue count defaulted per vCPU (see
 * devtype.vm_queues_key), as QEMU does for virtio-blk-pci: with one queue
 * its interrupt lands on one vCPU, and a request another vCPU issued costs
 * a wake-up of the first and an IPI back (docs/performance.md). With
 * virtio-mmio a device has one interrupt line whatever its queues. Returns
 * text itself or a malloc'd copy in *copy. */
static const char *machine_virtio_queue_default(const struct cli_config *cfg, const struct devtype *t,
						const char *text, char **copy)
{
	unsigned cpus = cfg->cpus;

	*copy = NULL;
	/* A vhost-user back-end decides its own queues: leave them to the user. */
	if (!t->vm_queues_key || cfg->transport != CLI_TRANSPORT_PCI || cpus < 2 ||
	    machine_virtio_has_key(text, t->vm_queues_key) || machine_virtio_has_key(text, "vhost_user"))
		return text;
	/* More vCPUs than the model has queues: some share one. */
	if (t->vm_queues_max && cpus > t->vm_queues_max)
		cpus = t->vm_queues_max;
	if (asprintf(copy, "%s%s%s=%u", text, *text ? "," : "", t->vm_queues_key, cpus) < 0) {
		*copy = NULL;
		return text;
	}
	return *copy;
}

/* Devices of one type, numbered in command-line order. */
static int machine_virtio_open_type(struct machine_virtio *mv, const struct cli_config *cfg,
				    const struct devtype *t)
{
	unsigned index = 0;
	int err;

	for (unsigned i = 0; i < cfg->ndevices; i++) {
		struct devtype_dev *d = &mv->devs[mv->ndevs];

		if (cfg->devices[i].type != t)
			continue;
		char *copy;
		const char *text = machine_virtio_queue_default(cfg, t, cfg->devices[i].opts, &copy);

		err = devtype_create(d, t, text, DEVTYPE_IN_VM, index++);
		free(copy);
		if (err)
			return err;
		err = machine_virtio_check_id(mv, d);
		if (err) {
			devtype_destroy(d);
			return err;
		}
		mv->ndevs++;
	}
	return 0;
}

int machine_virtio_open(struct machine_virtio *mv, const struct cli_config *cfg)
{
	int err = 0;

	memset(mv, 0, sizeof(*mv));
	mv->kind = cfg->transport == CLI_TRANSPORT_MMIO ? VIRTIO_TRANSPORT_MMIO : VIRTIO_TRANSPORT_PCI;
	/* Table order (disks, nets, rng) fixes the devices' slots and lines. */
	for (unsigned i = 0; devtype_table[i] && !err; i++)
		err = machine_virtio_open_type(mv, cfg, devtype_table[i]);
	if (err) {
		machine_virtio_destroy(mv);
		return err;
	}
	if (cfg->console != CLI_SERIAL_OFF) {
		mv->console = calloc(1, sizeof(*mv->console));
		err = mv->console ? vcon_dev_init(mv->console) : -ENOMEM;
		if (err) {
			log_err("--console: cannot create the virtio-console: %s", strerror(-err));
			free(mv->console);
			mv->console = NULL;
			machine_virtio_destroy(mv);
			return err;
		}
	}
	if (mv->kind == VIRTIO_TRANSPORT_MMIO &&
	    virtio_vm_mmio_cmdline(mv->ndevs + !!mv->console, mv->cmdline, sizeof(mv->cmdline))) {
		log_err("too many virtio-mmio devices: use --transport pci");
		machine_virtio_destroy(mv);
		return -ENOSPC;
	}
	return 0;
}

int machine_virtio_attach(struct machine_virtio *mv, struct vm *vm)
{
	int err = virtio_vm_init(&mv->virtio, vm);

	mv->attached = true;
	for (unsigned i = 0; i < mv->ndevs && !err; i++)
		err = virtio_vm_add(&mv->virtio, mv->devs[i].vdev, mv->devs[i].id, mv->kind);
	if (!err && mv->console)
		err = virtio_vm_add(&mv->virtio, &mv->console->vdev, "console", mv->kind);
	return err;
}

void machine_virtio_destroy(struct machine_virtio *mv)
{
	if (mv->attached)
		virtio_vm_destroy(&mv->virtio);
	mv->attached = false;
	for (unsigned i = 0; i < mv->ndevs; i++)
		devtype_destroy(&mv->devs[i]);
	mv->ndevs = 0;
	if (mv->console) {
		vcon_dev_destroy(mv->console);
		free(mv->console);
		mv->console = NULL;
	}
}

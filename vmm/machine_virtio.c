#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cvmm/blk_opts.h"
#include "cvmm/log.h"
#include "machine_virtio.h"
#include "cvmm/net_opts.h"
#include "cvmm/opts.h"

struct machine_disk_opts {
	struct blk_opts blk;
	char *id;
};

static const struct opt_spec machine_disk_spec[] = {
	BLK_OPTS_SPECS(struct machine_disk_opts, blk),
	OPT_SPEC("id", OPT_STRING, struct machine_disk_opts, id),
	OPT_SPEC_END,
};

struct machine_net_opts {
	struct net_opts net;
	char *id;
};

static const struct opt_spec machine_net_spec[] = {
	NET_OPTS_SPECS(struct machine_net_opts, net),
	OPT_SPEC("id", OPT_STRING, struct machine_net_opts, id),
	OPT_SPEC_END,
};

/* Takes the device's id= (or the default) if it names no other device. */
static int machine_virtio_id(struct machine_virtio *mv, const char *opt, const char *id, const char *dflt,
			     char out[32])
{
	if (id && strlen(id) >= 32) {
		log_err("%s: id=%s: at most 31 characters", opt, id);
		return -EINVAL;
	}
	snprintf(out, 32, "%s", id ? id : dflt);
	for (unsigned i = 0; i < mv->ndisks; i++)
		if (mv->disk_ids[i] != out && !strcmp(mv->disk_ids[i], out))
			goto taken;
	for (unsigned i = 0; i < mv->nnets; i++)
		if (mv->net_ids[i] != out && !strcmp(mv->net_ids[i], out))
			goto taken;
	return 0;
taken:
	log_err("%s: id=%s names another device already", opt, out);
	return -EINVAL;
}

struct machine_rng_opts {
	char *src;
};

static const struct opt_spec machine_rng_spec[] = {
	OPT_SPEC("src", OPT_STRING, struct machine_rng_opts, src),
	OPT_SPEC_END,
};

/* True when opts_parse's seen bits include key of specs. */
static bool machine_virtio_key_seen(const struct opt_spec *specs, uint64_t seen, const char *key)
{
	for (unsigned i = 0; specs[i].key; i++)
		if (!strcmp(specs[i].key, key))
			return seen & (1ULL << i);
	return false;
}

/* Queues of a disk whose --disk did not say: with virtio-pci, one per vCPU
 * (as QEMU does), so that blk-mq maps each vCPU to its own queue, whose
 * MSI-X vector Linux then targets at that vCPU: a request completes on the
 * vCPU that issued it. With one queue its interrupt lands on one vCPU, and
 * a request from another costs that vCPU a wake-up and an IPI back (traced
 * in docs/performance.md). virtio-mmio has one interrupt line per device
 * whatever the queues: one queue. */
static unsigned machine_virtio_disk_queues(const struct cli_config *cfg)
{
	if (cfg->transport != CLI_TRANSPORT_PCI || cfg->cpus < 2)
		return 1;
	return cfg->cpus < BLK_DEV_MAX_QUEUES ? cfg->cpus : BLK_DEV_MAX_QUEUES;
}

static int machine_virtio_disk(struct machine_virtio *mv, unsigned i, const char *text,
			       const struct cli_config *cfg)
{
	struct machine_disk_opts o = { .blk = BLK_OPTS_DEFAULTS };
	char why[256], dflt[16];
	uint64_t seen = 0;
	int err;

	if (opts_parse(text, machine_disk_spec, &o, &seen, why, sizeof(why))) {
		log_err("--disk %s: %s", text, why);
		return -EINVAL;
	}
	if (!machine_virtio_key_seen(machine_disk_spec, seen, "num_queues"))
		o.blk.num_queues = machine_virtio_disk_queues(cfg);
	snprintf(dflt, sizeof(dflt), "disk%u", i);
	err = machine_virtio_id(mv, "--disk", o.id, dflt, mv->disk_ids[i]);
	if (!err)
		err = blk_opts_open(&mv->disks[i], &o.blk, "--disk");
	opts_free(machine_disk_spec, &o);
	return err;
}

static int machine_virtio_net(struct machine_virtio *mv, unsigned i, const char *text)
{
	struct machine_net_opts o = { .net = NET_OPTS_DEFAULTS };
	char why[256], dflt[16];
	int err;

	if (opts_parse(text, machine_net_spec, &o, NULL, why, sizeof(why))) {
		log_err("--net %s: %s", text, why);
		return -EINVAL;
	}
	snprintf(dflt, sizeof(dflt), "net%u", i);
	err = machine_virtio_id(mv, "--net", o.id, dflt, mv->net_ids[i]);
	if (!err)
		err = net_opts_open(&mv->nets[i], &o.net, "--net");
	/* In-process, the control queue that switches pairs on is ours. */
	if (!err && o.net.num_queues > 2 && (err = net_dev_enable_ctrl(&mv->nets[i]))) {
		log_err("--net: cannot set up the control queue: %s", strerror(-err));
		net_dev_destroy(&mv->nets[i]);
	}
	opts_free(machine_net_spec, &o);
	return err;
}

static int machine_virtio_rng(struct machine_virtio *mv, const char *text)
{
	struct machine_rng_opts o = { 0 };
	char why[256];
	int err;

	if (opts_parse(text, machine_rng_spec, &o, NULL, why, sizeof(why))) {
		log_err("--rng %s: %s", text, why);
		return -EINVAL;
	}
	mv->rng = calloc(1, sizeof(*mv->rng));
	err = mv->rng ? rng_dev_init(mv->rng, o.src) : -ENOMEM;
	if (err) {
		log_err("--rng: cannot open %s: %s", o.src ? o.src : "the entropy source", strerror(-err));
		free(mv->rng);
		mv->rng = NULL;
	}
	opts_free(machine_rng_spec, &o);
	return err;
}

int machine_virtio_open(struct machine_virtio *mv, const struct cli_config *cfg)
{
	int err;

	memset(mv, 0, sizeof(*mv));
	mv->kind = cfg->transport == CLI_TRANSPORT_MMIO ? VIRTIO_TRANSPORT_MMIO : VIRTIO_TRANSPORT_PCI;
	mv->disks = calloc(cfg->ndisks, sizeof(*mv->disks));
	mv->disk_ids = calloc(cfg->ndisks, sizeof(*mv->disk_ids));
	mv->nets = calloc(cfg->nnets, sizeof(*mv->nets));
	mv->net_ids = calloc(cfg->nnets, sizeof(*mv->net_ids));
	if ((cfg->ndisks && (!mv->disks || !mv->disk_ids)) || (cfg->nnets && (!mv->nets || !mv->net_ids))) {
		machine_virtio_destroy(mv);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < cfg->ndisks; i++) {
		err = machine_virtio_disk(mv, i, cfg->disks[i], cfg);
		if (err) {
			machine_virtio_destroy(mv);
			return err;
		}
		mv->ndisks++;
	}
	for (unsigned i = 0; i < cfg->nnets; i++) {
		err = machine_virtio_net(mv, i, cfg->nets[i]);
		if (err) {
			machine_virtio_destroy(mv);
			return err;
		}
		mv->nnets++;
	}
	if (cfg->rng && (err = machine_virtio_rng(mv, cfg->rng))) {
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
	    virtio_vm_mmio_cmdline(mv->ndisks + mv->nnets + !!mv->rng + !!mv->console, mv->cmdline, sizeof(mv->cmdline))) {
		log_err("too many virtio-mmio devices: use --transport pci");
		machine_virtio_destroy(mv);
		return -ENOSPC;
	}
	return 0;
}

unsigned machine_virtio_mmio_devs(const struct machine_virtio *mv, struct x86_mmio_dev *out)
{
	unsigned n = 0, total = mv->ndisks + mv->nnets + !!mv->rng + !!mv->console;
	uint64_t base;
	unsigned irq;

	if (mv->kind != VIRTIO_TRANSPORT_MMIO)
		return 0;
	for (; n < total && n < X86_MAX_MMIO_DEVS && !virtio_vm_mmio_slot(n, &base, &irq); n++)
		out[n] = (struct x86_mmio_dev){ .base = base, .size = VMMIO_WINDOW_SIZE, .irq = irq };
	return n;
}

int machine_virtio_attach(struct machine_virtio *mv, struct vm *vm)
{
	int err = virtio_vm_init(&mv->host, vm);

	mv->attached = true;
	for (unsigned i = 0; i < mv->ndisks && !err; i++)
		err = virtio_vm_add(&mv->host, &mv->disks[i].vdev, mv->disk_ids[i], mv->kind);
	for (unsigned i = 0; i < mv->nnets && !err; i++)
		err = virtio_vm_add(&mv->host, &mv->nets[i].vdev, mv->net_ids[i], mv->kind);
	if (!err && mv->rng)
		err = virtio_vm_add(&mv->host, &mv->rng->vdev, "rng", mv->kind);
	if (!err && mv->console)
		err = virtio_vm_add(&mv->host, &mv->console->vdev, "console", mv->kind);
	return err;
}

void machine_virtio_destroy(struct machine_virtio *mv)
{
	if (mv->attached)
		virtio_vm_destroy(&mv->host);
	mv->attached = false;
	for (unsigned i = 0; i < mv->ndisks; i++)
		blk_dev_destroy(&mv->disks[i]);
	free(mv->disks);
	free(mv->disk_ids);
	mv->disks = NULL;
	mv->disk_ids = NULL;
	mv->ndisks = 0;
	for (unsigned i = 0; i < mv->nnets; i++)
		net_dev_destroy(&mv->nets[i]);
	free(mv->nets);
	free(mv->net_ids);
	mv->nets = NULL;
	mv->net_ids = NULL;
	mv->nnets = 0;
	if (mv->rng) {
		rng_dev_destroy(mv->rng);
		free(mv->rng);
		mv->rng = NULL;
	}
	if (mv->console) {
		vcon_dev_destroy(mv->console);
		free(mv->console);
		mv->console = NULL;
	}
}

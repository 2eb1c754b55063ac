#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cvmm/blk_opts.h"
#include "cvmm/log.h"
#include "machine_virtio.h"
#include "cvmm/net_opts.h"
#include "cvmm/opts.h"
#include "cvmm/vu_fe_dev.h"

struct machine_disk_opts {
	struct blk_opts blk;
	char *id;
	bool vhost_user;
	char *socket;
};

/* Indexes into machine_disk_spec (bits of opts_parse's seen mask). */
enum { MACHINE_DISK_PATH, MACHINE_DISK_READONLY, MACHINE_DISK_DIRECT, MACHINE_DISK_SERIAL = 5 };

static const struct opt_spec machine_disk_spec[] = {
	BLK_OPTS_SPECS(struct machine_disk_opts, blk),
	OPT_SPEC("id", OPT_STRING, struct machine_disk_opts, id),
	OPT_SPEC("vhost_user", OPT_BOOL, struct machine_disk_opts, vhost_user),
	OPT_SPEC("socket", OPT_STRING, struct machine_disk_opts, socket),
	OPT_SPEC_END,
};

struct machine_net_opts {
	struct net_opts net;
	char *id;
	bool vhost_user;
	char *socket, *vhost_mode;
};

/* Indexes into machine_net_spec (bits of opts_parse's seen mask). */
enum { MACHINE_NET_TAP, MACHINE_NET_IP, MACHINE_NET_MASK, MACHINE_NET_HOST_MAC = 4, MACHINE_NET_MTU };

static const struct opt_spec machine_net_spec[] = {
	NET_OPTS_SPECS(struct machine_net_opts, net),
	OPT_SPEC("id", OPT_STRING, struct machine_net_opts, id),
	OPT_SPEC("vhost_user", OPT_BOOL, struct machine_net_opts, vhost_user),
	OPT_SPEC("socket", OPT_STRING, struct machine_net_opts, socket),
	OPT_SPEC("vhost_mode", OPT_STRING, struct machine_net_opts, vhost_mode),
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
	for (unsigned i = 0; i < mv->nvus; i++)
		if (mv->vu_ids[i] != out && !strcmp(mv->vu_ids[i], out))
			goto taken;
	return 0;
taken:
	log_err("%s: id=%s names another device already", opt, out);
	return -EINVAL;
}

/* With vhost_user=on, keys that configure the back-end's side are refused:
 * the back-end owns the image or the tap. */
static int machine_virtio_backend_keys(const char *opt, const struct opt_spec *spec, uint64_t seen,
				       const unsigned *keys, unsigned nkeys)
{
	for (unsigned k = 0; k < nkeys; k++)
		if (seen & (1ULL << keys[k])) {
			log_err("%s vhost_user=on: %s= is the back-end's to set, not cvmm's", opt, spec[keys[k]].key);
			return -EINVAL;
		}
	return 0;
}

/* Connects device i of vus[] to its back-end. */
static int machine_virtio_vhost_dev(struct machine_virtio *mv, const char *opt, const char *id, const char *dflt,
				   uint32_t queue_size, struct vu_fe_dev_config *c)
{
	unsigned i = mv->nvus;
	int err;

	if (!c->socket_path) {
		log_err("%s vhost_user=on: socket=PATH (the back-end's socket) is required", opt);
		return -EINVAL;
	}
	if (queue_size < 2 || queue_size > VIRTQ_MAX_SIZE || (queue_size & (queue_size - 1))) {
		log_err("%s: queue_size=%u: must be a power of two, 2..%u", opt, queue_size, VIRTQ_MAX_SIZE);
		return -EINVAL;
	}
	c->queue_size = (uint16_t)queue_size;
	err = machine_virtio_id(mv, opt, id, dflt, mv->vu_ids[i]);
	if (err)
		return err;
	c->id = mv->vu_ids[i];
	err = vu_fe_dev_init(&mv->vus[i], c);
	if (err)
		return err == -EINVAL ? -EINVAL : -EIO;
	mv->nvus++;
	return 0;
}

struct machine_rng_opts {
	char *src;
};

static const struct opt_spec machine_rng_spec[] = {
	OPT_SPEC("src", OPT_STRING, struct machine_rng_opts, src),
	OPT_SPEC_END,
};

/* A disk served by a vhost-user back-end (vhost_user=on). */
static int machine_virtio_vhost_disk(struct machine_virtio *mv, const struct machine_disk_opts *o, uint64_t seen,
				     const char *dflt)
{
	static const unsigned backend_keys[] = { MACHINE_DISK_PATH, MACHINE_DISK_READONLY, MACHINE_DISK_DIRECT,
						 MACHINE_DISK_SERIAL };
	struct vu_fe_dev_config c = {
		.socket_path = o->socket, .device_id = VIRTIO_ID_BLOCK,
		.num_queues = o->blk.num_queues,
	};
	int err = machine_virtio_backend_keys("--disk", machine_disk_spec, seen, backend_keys,
					      sizeof(backend_keys) / sizeof(backend_keys[0]));

	if (err)
		return err;
	if (o->blk.num_queues < 1 || o->blk.num_queues > BLK_DEV_MAX_QUEUES) {
		log_err("--disk: num_queues=%u: must be 1..%u", o->blk.num_queues, BLK_DEV_MAX_QUEUES);
		return -EINVAL;
	}
	return machine_virtio_vhost_dev(mv, "--disk", o->id, dflt, o->blk.queue_size, &c);
}

static int machine_virtio_disk(struct machine_virtio *mv, unsigned i, const char *text)
{
	struct machine_disk_opts o = { .blk = BLK_OPTS_DEFAULTS };
	char why[256], dflt[16];
	uint64_t seen;
	int err;

	if (opts_parse(text, machine_disk_spec, &o, &seen, why, sizeof(why))) {
		log_err("--disk %s: %s", text, why);
		return -EINVAL;
	}
	snprintf(dflt, sizeof(dflt), "disk%u", i);
	if (o.vhost_user) {
		err = machine_virtio_vhost_disk(mv, &o, seen, dflt);
	} else if (o.socket) {
		log_err("--disk: socket= needs vhost_user=on");
		err = -EINVAL;
	} else {
		err = machine_virtio_id(mv, "--disk", o.id, dflt, mv->disk_ids[mv->ndisks]);
		if (!err)
			err = blk_opts_open(&mv->disks[mv->ndisks], &o.blk, "--disk");
		if (!err)
			mv->ndisks++;
	}
	opts_free(machine_disk_spec, &o);
	return err;
}

/* A network device served by a vhost-user back-end (vhost_user=on). */
static int machine_virtio_vhost_net(struct machine_virtio *mv, const struct machine_net_opts *o, uint64_t seen,
				    const char *dflt)
{
	static const unsigned backend_keys[] = { MACHINE_NET_TAP, MACHINE_NET_IP, MACHINE_NET_MASK,
						 MACHINE_NET_HOST_MAC, MACHINE_NET_MTU };
	struct vu_fe_dev_config c = {
		.socket_path = o->socket, .device_id = VIRTIO_ID_NET,
		.num_queues = o->net.num_queues,
	};
	uint8_t mac[6];
	int err = machine_virtio_backend_keys("--net", machine_net_spec, seen, backend_keys,
					      sizeof(backend_keys) / sizeof(backend_keys[0]));

	if (err)
		return err;
	if (o->net.num_queues < 2 || o->net.num_queues % 2 || o->net.num_queues > 2 * NET_DEV_MAX_PAIRS) {
		log_err("--net: num_queues=%u: must be even, 2..%u (two per queue pair)", o->net.num_queues,
			2 * NET_DEV_MAX_PAIRS);
		return -EINVAL;
	}
	if (o->vhost_mode && strcmp(o->vhost_mode, "client") && strcmp(o->vhost_mode, "server")) {
		log_err("--net: vhost_mode=%s: expected client or server", o->vhost_mode);
		return -EINVAL;
	}
	c.server = o->vhost_mode && !strcmp(o->vhost_mode, "server");
	if (o->net.mac) {
		if (net_parse_mac(o->net.mac, mac) < 0) {
			log_err("--net: mac=%s: expected six hex bytes like 52:54:00:12:34:56", o->net.mac);
			return -EINVAL;
		}
		c.mac = mac;
	}
	return machine_virtio_vhost_dev(mv, "--net", o->id, dflt, o->net.queue_size, &c);
}

static int machine_virtio_net(struct machine_virtio *mv, unsigned i, const char *text)
{
	struct machine_net_opts o = { .net = NET_OPTS_DEFAULTS };
	char why[256], dflt[16];
	uint64_t seen;
	int err;

	if (opts_parse(text, machine_net_spec, &o, &seen, why, sizeof(why))) {
		log_err("--net %s: %s", text, why);
		return -EINVAL;
	}
	snprintf(dflt, sizeof(dflt), "net%u", i);
	if (o.vhost_user) {
		err = machine_virtio_vhost_net(mv, &o, seen, dflt);
		goto out;
	}
	if (o.socket || o.vhost_mode) {
		log_err("--net: %s= needs vhost_user=on", o.socket ? "socket" : "vhost_mode");
		err = -EINVAL;
		goto out;
	}
	err = machine_virtio_id(mv, "--net", o.id, dflt, mv->net_ids[mv->nnets]);
	if (!err)
		err = net_opts_open(&mv->nets[mv->nnets], &o.net, "--net");
	/* In-process, the control queue that switches pairs on is ours. */
	if (!err && o.net.num_queues > 2 && (err = net_dev_enable_ctrl(&mv->nets[mv->nnets]))) {
		log_err("--net: cannot set up the control queue: %s", strerror(-err));
		net_dev_destroy(&mv->nets[mv->nnets]);
	}
	if (!err)
		mv->nnets++;
out:
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

/* Every device machine_virtio_attach() places, in its order. */
static unsigned machine_virtio_count(const struct machine_virtio *mv)
{
	return mv->ndisks + mv->nvus + mv->nnets + !!mv->rng + !!mv->console;
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
	mv->vus = calloc(cfg->ndisks + cfg->nnets, sizeof(*mv->vus));
	mv->vu_ids = calloc(cfg->ndisks + cfg->nnets, sizeof(*mv->vu_ids));
	if ((cfg->ndisks && (!mv->disks || !mv->disk_ids)) || (cfg->nnets && (!mv->nets || !mv->net_ids)) ||
	    (cfg->ndisks + cfg->nnets && (!mv->vus || !mv->vu_ids))) {
		machine_virtio_destroy(mv);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < cfg->ndisks; i++) {
		err = machine_virtio_disk(mv, i, cfg->disks[i]);
		if (err) {
			machine_virtio_destroy(mv);
			return err;
		}
	}
	for (unsigned i = 0; i < cfg->nnets; i++) {
		err = machine_virtio_net(mv, i, cfg->nets[i]);
		if (err) {
			machine_virtio_destroy(mv);
			return err;
		}
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
	    virtio_vm_mmio_cmdline(machine_virtio_count(mv), mv->cmdline, sizeof(mv->cmdline))) {
		log_err("too many virtio-mmio devices: use --transport pci");
		machine_virtio_destroy(mv);
		return -ENOSPC;
	}
	return 0;
}

unsigned machine_virtio_mmio_devs(const struct machine_virtio *mv, struct x86_mmio_dev *out)
{
	unsigned n = 0, total = machine_virtio_count(mv);
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
	for (unsigned i = 0; i < mv->nvus && !err; i++)
		err = virtio_vm_add(&mv->host, &mv->vus[i].vdev, mv->vu_ids[i], mv->kind);
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
	for (unsigned i = 0; i < mv->nvus; i++)
		vu_fe_dev_destroy(&mv->vus[i]);
	free(mv->vus);
	free(mv->vu_ids);
	mv->vus = NULL;
	mv->vu_ids = NULL;
	mv->nvus = 0;
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

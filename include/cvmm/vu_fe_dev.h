/*
 * A virtio device whose queues an external vhost-user back-end serves
 * (--disk / --net vhost_user=on,socket=..., --fs). cvmm keeps the transport and the config
 * space; the front-end (vu_frontend.h) hands the back-end guest memory and
 * each ring with its kick fd (the transport's ioeventfd) and call fd (the
 * irqfd), so no cvmm thread is in the data path.
 *
 * The device touches no data ring (net's control queue is cvmm's own, on
 * one worker): queue_start/queue_stop and
 * reset become vhost-user messages. Config reads come from the back-end's
 * config (blk: cached, refreshed on CONFIG_CHANGE_MSG) or from the one cvmm
 * builds (net: MAC, link up, the pairs; cvmm runs the control queue; fs:
 * the tag and the request queues).
 */
#ifndef CVMM_VU_FE_DEV_H
#define CVMM_VU_FE_DEV_H

#include <stdbool.h>
#include <stdint.h>

#include "cvmm/vdev.h"
#include "cvmm/vu_frontend.h"
#include "cvmm/worker.h"

struct vu_fe_type;

struct vu_fe_dev_config {
	const char *id;            /* "disk0", for log lines */
	const char *socket_path;
	bool server;               /* cvmm listens, the back-end connects */
	uint32_t device_id;        /* VIRTIO_ID_BLOCK, VIRTIO_ID_NET or VIRTIO_ID_FS */
	unsigned num_queues;       /* the back-end's rings (net: 2 per pair; fs: the
				    * high-priority queue and the request queues) */
	uint16_t queue_size;
	const uint8_t *mac;        /* net: the guest's MAC; NULL: a random local one */
	const char *tag;           /* fs: the mount tag, 1..VIRTIO_FS_TAG_LEN bytes */
	int reply_timeout_ms;      /* 0: the front-end's default */
};

struct vu_fe_dev {
	struct vdev vdev;
	const struct vu_fe_type *type;
	unsigned num_queues;       /* the back-end's rings (blk: also in its config) */
	struct virtq *vqs;         /* vdev.num_queues: those, then net's control queue */
	struct vu_frontend fe;
	uint8_t mac[6];
	uint8_t config[VU_MAX_CONFIG_SIZE]; /* the config cvmm builds (net, fs) */

	/* net with several pairs: cvmm serves the control queue (VQ_PAIRS_SET
	 * switches pairs on and off on the back-end). */
	unsigned pairs;
	bool has_ctrl, ctrl_started;
	struct worker ctrl_worker;
	struct worker_watch ctrl_watch;
	struct virtq_chain *ctrl_chain;
};

/* Connects to the back-end and negotiates, so the device's features and
 * config are known before the guest boots. Logs the cause of a failure;
 * 0 or -errno. */
int vu_fe_dev_init(struct vu_fe_dev *d, const struct vu_fe_dev_config *cfg);
/* Call once the transport is gone. */
void vu_fe_dev_destroy(struct vu_fe_dev *d);
/* Whether dev is such a device. */
bool vu_fe_dev_is(const struct vdev *dev);

struct devtype;
struct devtype_dev;
/* For a device type's create (devtype.h) when d->vhost_user: checks
 * queue_size, makes the device from c (id, socket and mode come from d) into
 * d->model / d->vdev. Logs one line and returns -errno; the row's destroy
 * then calls vu_fe_dev_destroy(d->model). */
int vu_fe_devtype_create(struct devtype_dev *d, struct vu_fe_dev_config *c, uint32_t queue_size,
			 const char *who);
/* Refuses, with one line, the keys of t (indexes into t->spec) given in seen
 * that belong to the back-end (an image path, a tap). 0 or -EINVAL. */
int vu_fe_devtype_refuse_keys(const struct devtype *t, uint64_t seen, const unsigned *keys, unsigned nkeys,
			      const char *who);

#endif

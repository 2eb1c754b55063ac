/*
 * virtio-net device model (virtio 1.2, 5.1) over a tap. Written against
 * vdev.h: hosted in-process by a transport or by the vhost-user back-end
 * (cvmm --net-backend).
 *
 * Queues 2k and 2k+1 are the RX and TX queues of pair k. Each pair has one
 * worker thread watching its RX kick, TX kick and its tap queue fd:
 *  - TX kick: chains are drained (virtq_serve) and written to the tap,
 *    header first: small frames copied and batched into one io_uring
 *    submission, large ones as one writev each;
 *  - tap readable: frames are read into a private buffer and copied into
 *    RX chains (several with MRG_RXBUF, num_buffers set); with no RX
 *    buffers left the frame stays pending and the tap is no longer
 *    watched until the RX kick says buffers arrived;
 *  - RX kick: retries the pending frame and watches the tap again.
 * A frame larger than all the buffers the driver can offer is dropped and
 * counted; nothing that fits is ever dropped.
 */
#ifndef CVMM_DEVICES_NET_VIRTIO_NET_DEV_H
#define CVMM_DEVICES_NET_VIRTIO_NET_DEV_H

#include <liburing.h>
#include <stdbool.h>
#include <stdint.h>

#include "cvmm/vdev.h"
#include "cvmm/virtio_net.h"
#include "cvmm/virtq.h"
#include "cvmm/worker.h"
#include "tap.h"

#define NET_DEV_MAX_PAIRS TAP_MAX_QUEUES
#define NET_DEV_DEFAULT_QUEUE_SIZE 256
/* Largest frame the tap hands us: a 64 KiB GSO frame plus its header. */
#define NET_MAX_FRAME (65536 + 256)
/* TX frames per io_uring submission, and the largest (header included)
 * that is copied into a slot; larger ones go out with writev directly
 * from guest memory. */
#define NET_TX_BATCH 64
#define NET_TX_SLOT 2048

struct net_dev;

/* RX chains taken from the ring but not yet filled: the pending frame
 * waits for enough of them (MRG_RXBUF), or they wait for the next frame
 * after an oversize drop. Their writable iovecs sit in one pool. */
struct net_rx_slot {
	uint16_t head;
	uint32_t cap;
	uint32_t iov_off, niov;
	uint32_t used_len;       /* bytes of the frame placed in it */
};

struct net_pair {
	struct net_dev *net;
	unsigned index;
	int tap_fd;
	bool tap_watched;               /* on the pair's worker (vdev worker index) */
	bool tap_detached;              /* its tap queue is detached: the kernel steers
	                                   no frame to a queue nobody reads */
	struct worker_watch tap_watch;
	struct virtq_chain *chain;      /* scratch */
	struct iovec *tx_iov;           /* scratch: header copy + frame */

	/* TX batching: small frames are copied into slots (so their chains
	 * can go back to the driver at once) and written to the tap with one
	 * io_uring submission per batch instead of one writev each. */
	struct io_uring ring;
	bool ring_ok;                   /* else every frame is a writev */
	bool ring_fixed_fd;             /* the tap fd is registered as file 0 */
	bool ring_broken;               /* a submission failed: give the ring up */
	uint8_t *tx_slots;              /* NET_TX_BATCH slots of NET_TX_SLOT bytes */
	uint32_t tx_len[NET_TX_BATCH];  /* each batched frame's length (to write it again) */
	unsigned tx_batched;

	uint8_t *frame;                 /* the pending RX frame, header included */
	uint32_t frame_len;             /* 0: none pending */
	struct net_rx_slot *slots;      /* RX stash, up to the queue size */
	unsigned nslots;
	bool stash_gap;                 /* a chain popped after the stash was returned */
	struct iovec *slot_iov;
	unsigned slot_iov_used;

	/* Statistics (written by the worker; read when it is stopped or racily). */
	uint64_t rx_packets, rx_bytes, rx_oversize, rx_errors;
	uint64_t tx_packets, tx_bytes, tx_errors;
};

struct net_dev_config {
	const char *tap;              /* tap name (opened or created) */
	const int *fds;               /* instead of a tap: num_pairs fds (taken over), e.g. a socketpair in tests */
	unsigned num_pairs;           /* 1..NET_DEV_MAX_PAIRS; 0 means 1 */
	uint16_t queue_size;          /* power of two; 0 means 256 */
	const uint8_t *mac;           /* NULL: random, locally administered */
	uint16_t mtu;                 /* 0: MTU feature not offered */
};

struct net_dev {
	struct vdev vdev;             /* first: the host sees a struct vdev * */
	struct tap tap;
	bool is_tap;                  /* false: cfg->fds stand in for the tap */
	struct virtio_net_config config;
	unsigned hdr_len;             /* 12, or 10 for a legacy driver without MRG_RXBUF */
	unsigned npairs;
	struct virtq *vqs;
	struct net_pair *pairs;

	/* The control queue (in-process only; vhost-user front-ends run their
	 * own): queue 2 * npairs, served by its own worker. */
	bool has_ctrl;
	unsigned active_pairs;        /* pairs the driver switched on */
	struct virtq_chain *ctrl_chain;
};

/* Opens the tap (or takes cfg->fds) and sets up the model, queues stopped.
 * 0 or -errno (tap_open's errors, -EINVAL for bad parameters). cfg->fds
 * are taken over except on -EINVAL (they are closed on other errors). */
int net_dev_init(struct net_dev *n, const struct net_dev_config *cfg);
/* Adds the control queue and offers CTRL_VQ and MQ, so a driver can switch
 * on more than one pair (the in-process host; a vhost-user front-end runs
 * its own control queue and uses net_dev_offer_mq instead). Until the
 * driver asks for more, one pair is active and the tap's other queues are
 * detached, so no flow is steered to a queue nobody reads. Call before the
 * device is put behind a transport. 0 or -errno. */
int net_dev_enable_ctrl(struct net_dev *n);
void net_dev_destroy(struct net_dev *n);
/* Offers MQ (with more than one pair). MQ is only usable with a control
 * queue to switch pairs on (virtio 1.2 5.1.3.1; Linux refuses MQ without
 * CTRL_VQ), which this model does not have: call it when the host runs the
 * control queue itself, as vhost-user front-ends (QEMU, cloud-hypervisor,
 * DPDK virtio_user) do. Without it the driver uses pair 0 only. */
void net_dev_offer_mq(struct net_dev *n);

/* Serves pair p once, as the worker does on an event; exposed for tests.
 * TX: returns chains written (or -EIO on a broken ring). RX: returns
 * frames delivered or dropped. */
int net_dev_tx_process(struct net_dev *n, unsigned p);
int net_dev_rx_process(struct net_dev *n, unsigned p);

/* Validates a TX header against the negotiated features: 0, or -EINVAL
 * when it asks for an offload the driver did not negotiate or is malformed. */
int net_hdr_check_tx(const struct virtio_net_hdr *h, uint64_t features, uint32_t frame_len);

/* Parses "aa:bb:cc:dd:ee:ff". 0 or -EINVAL. */
int net_parse_mac(const char *s, uint8_t mac[6]);

#endif

/*
 * virtio-vsock device model (virtio 1.2, 5.10) whose host side is the
 * hybrid-vsock protocol of Firecracker and cloud-hypervisor:
 *  - a host program connects to the Unix socket uds_path and writes
 *    "CONNECT <port>\n"; the device connects to the guest's port and, once
 *    the guest accepts, answers "OK <local port>\n" and relays bytes;
 *  - a guest connection to host port P is relayed to the Unix socket
 *    "<uds_path>_P" (RST when nothing listens there).
 * Three queues (rx, tx, event); config space is the guest CID. Credit on
 * both sides: a connection buffers at most VSOCK_BUF_ALLOC guest bytes the
 * host socket did not take yet, and reads a host socket only as far as the
 * guest has room. One worker thread (the core's) serves the queues and the host sockets.
 */
#ifndef CVMM_VIRTIO_VSOCK_H
#define CVMM_VIRTIO_VSOCK_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "cvmm/vdev.h"
#include "vsock_conn.h"

#define VIRTIO_ID_VSOCK 19
#define VSOCK_QUEUE_SIZE 1024
#define VSOCK_NUM_QUEUES 3
#define VSOCK_Q_RX 0
#define VSOCK_Q_TX 1
#define VSOCK_Q_EVENT 2
#define VSOCK_EVENT_TRANSPORT_RESET 0

/* Receive buffer advertised per connection (guest -> host bytes in flight). */
#define VSOCK_BUF_ALLOC (256u * 1024)
/* Host -> guest staging per connection. */
#define VSOCK_HOST_BUF (64u * 1024)
/* Connections at once, counting host clients still in their handshake. */
#define VSOCK_MAX_CONNS 1024
/* Fds kept free for everything else (vhost-user, images, eventfds) when the
 * open-file limit caps connections below VSOCK_MAX_CONNS. */
#define VSOCK_FD_RESERVE 128
/* A host client must send its CONNECT line, and the guest answer our
 * REQUEST, within this time. */
#define VSOCK_HANDSHAKE_MS 5000
/* Longest "CONNECT <port>\n" line accepted. */
#define VSOCK_LINE_MAX 32
/* Device-level replies (RSTs for unknown connections) queued at most;
 * the TX queue is not read while they are full. */
#define VSOCK_REPLY_MAX 128
#define VSOCK_CONN_BUCKETS 1024

struct vsock_hc;

struct vsock_dev_config {
	uint64_t guest_cid;    /* >= 3 */
	const char *uds_path;  /* the hybrid-vsock listening socket */
};

struct vsock_hc_list {
	struct vsock_hc *head, *tail;
};

struct vsock_dev {
	struct vdev vdev;
	struct virtq vqs[VSOCK_NUM_QUEUES];
	uint64_t guest_cid;
	char uds_path[108];
	int listen_fd;
	dev_t sock_dev;
	ino_t sock_ino;
	bool listen_paused;    /* out of fds: the listener waits for the next timer tick */
	int ep_fd;             /* host sockets and the timer, nested in the worker */
	int timer_fd;
	struct worker_watch host_watch;
	bool reset_owed;       /* TRANSPORT_RESET not yet given to this driver */
	bool tx_stalled;       /* TX left unread while replies are full */
	struct virtq_chain *rx_chain, *tx_chain, *ev_chain;
	struct iovec *scratch_iov;

	struct vsock_hc **buckets;
	unsigned nconns;
	unsigned max_conns;    /* VSOCK_MAX_CONNS, or less to stay below the fd limit */
	struct vsock_hc_list all, rx_ready, dead;
	uint32_t next_port;

	struct vsock_hdr replies[VSOCK_REPLY_MAX];
	unsigned reply_head, reply_count;
};

/* Creates the listening socket at cfg->uds_path (a stale socket file there
 * is replaced; -EADDRINUSE when something listens). 0 or -errno. */
int vsock_dev_init(struct vsock_dev *d, const struct vsock_dev_config *cfg);
/* Closes every connection and the listening socket, removing its file. */
void vsock_dev_destroy(struct vsock_dev *d);

/* Open connections (host clients in their handshake included): a snapshot
 * the worker may change at once; for tests. */
unsigned vsock_dev_nconns(const struct vsock_dev *d);

#endif

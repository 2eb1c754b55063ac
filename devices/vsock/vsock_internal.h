/*
 * Shared between the virtio-vsock model's files: virtio_vsock.c (the
 * queues, vdev ops) and vsock_host.c (host sockets: the hybrid-vsock
 * listener, host clients' handshake, relaying, connection lifetime).
 * Everything here runs on the device's worker thread, or while it is
 * stopped.
 */
#ifndef CVMM_DEVICES_VSOCK_INTERNAL_H
#define CVMM_DEVICES_VSOCK_INTERNAL_H

#include "virtio_vsock.h"

/* Host-side ports of host-initiated connections (as Firecracker does: far
 * from the ports guest programs connect to). */
#define VSOCK_EPHEMERAL_BASE (1u << 30)

enum vsock_hc_phase {
	VSOCK_HC_HANDSHAKE,    /* host client: waiting for its CONNECT line */
	VSOCK_HC_ACTIVE,       /* has a vsock_conn (connecting or established) */
	VSOCK_HC_DEAD,         /* closed; freed after the current pass */
};

/* One host socket and, once addressed, its virtio-vsock connection. */
struct vsock_hc {
	struct vsock_conn c;
	int fd;
	enum vsock_hc_phase phase;
	bool in_hash, in_rx;
	bool host_eof;         /* read 0: the host side sends no more */
	bool host_gone;        /* hung up: not watched any more */
	bool shut_wr_done;     /* shutdown(SHUT_WR) passed on to the host */
	uint32_t events;       /* epoll interest currently set */
	uint64_t deadline_ms;  /* handshake / connect limit; 0: none */
	char line[VSOCK_LINE_MAX];
	unsigned line_len;
	uint8_t *hbuf;         /* host -> guest bytes read, not yet sent */
	uint32_t hoff, hlen;
	uint8_t *gbuf;         /* guest -> host bytes the socket did not take (ring) */
	uint32_t ghead, glen;
	struct vsock_hc *hnext;
	struct vsock_hc *prev[2], *next[2]; /* all / rx_ready (dead reuses all) */
};

enum { VSOCK_L_ALL, VSOCK_L_RX };

/* vsock_host.c */
int vsock_host_open(struct vsock_dev *d);
/* Closes every connection, the listener (removing its file) and the fds. */
void vsock_host_close(struct vsock_dev *d);
void vsock_list_del(struct vsock_hc_list *l, struct vsock_hc *hc, int k);
struct vsock_hc *vsock_lookup(struct vsock_dev *d, uint32_t host_port, uint32_t guest_port);
/* Closes the host side at once; the structure is freed by vsock_reap
 * after the current pass (epoll events may still point at it). */
void vsock_hc_kill(struct vsock_dev *d, struct vsock_hc *hc);
void vsock_reap(struct vsock_dev *d);
/* Something to put on the RX queue now? */
bool vsock_hc_wants_rx(const struct vsock_hc *hc);
/* Puts hc on (or takes it off) the RX schedule per vsock_hc_wants_rx. */
void vsock_hc_sched(struct vsock_dev *d, struct vsock_hc *hc);
/* Ends the connection with an RST to the guest (sent from the RX queue
 * before the structure goes). */
void vsock_hc_abort(struct vsock_dev *d, struct vsock_hc *hc);
/* Writes guest bytes to the host socket; returns how many it took, or -1
 * when the host side is gone. */
ssize_t vsock_hc_send(struct vsock_hc *hc, const struct iovec *iov, unsigned n);
/* Moves a connection on after anything changed: half-closes, the end of
 * both directions, host reads, epoll interest and the RX schedule. */
void vsock_hc_progress(struct vsock_dev *d, struct vsock_hc *hc);
/* Guest REQUEST *h: connects to "<uds_path>_<port>" and answers RESPONSE.
 * -errno when that fails (the caller answers RST). */
int vsock_host_connect(struct vsock_dev *d, const struct vsock_hdr *h);
/* The nested epoll (host sockets, timer) is readable. */
void vsock_host_ready(void *arg, uint32_t events);
void vsock_close_all(struct vsock_dev *d);

/* virtio_vsock.c */
/* Gives the guest everything owed that its RX buffers can hold. */
void vsock_rx_flush(struct vsock_dev *d);

#endif

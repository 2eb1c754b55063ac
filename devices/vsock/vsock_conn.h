/*
 * virtio-vsock packets and the per-connection state machine with credit
 * accounting (virtio 1.2, 5.10.6). Pure logic, no I/O: the device model
 * (devices/vsock/virtio_vsock.c) moves the bytes and asks this module what each
 * guest packet means and which packets it owes the guest.
 *
 * Naming: the guest is the peer, the host side (a Unix socket) is local.
 * Guest -> host bytes: we are the receiver (buf_alloc, rx_cnt, fwd_cnt).
 * Host -> guest bytes: we are the sender (tx_cnt, peer_buf_alloc, peer_fwd_cnt)
 * and may have at most peer_buf_alloc - (tx_cnt - peer_fwd_cnt) in flight.
 * All counters are free-running u32 (wrap-around arithmetic).
 */
#ifndef CVMM_VSOCK_CONN_H
#define CVMM_VSOCK_CONN_H

#include <stdbool.h>
#include <stdint.h>

#define VSOCK_HOST_CID 2
#define VSOCK_TYPE_STREAM 1

enum vsock_op {
	VSOCK_OP_INVALID = 0,
	VSOCK_OP_REQUEST = 1,
	VSOCK_OP_RESPONSE = 2,
	VSOCK_OP_RST = 3,
	VSOCK_OP_SHUTDOWN = 4,
	VSOCK_OP_RW = 5,
	VSOCK_OP_CREDIT_UPDATE = 6,
	VSOCK_OP_CREDIT_REQUEST = 7,
};

/* SHUTDOWN flags: the sender will receive / send no more. */
#define VSOCK_SHUTDOWN_RCV 1u
#define VSOCK_SHUTDOWN_SEND 2u
#define VSOCK_SHUTDOWN_MASK (VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND)

/* Largest payload accepted in one packet (what Linux sends at most). */
#define VSOCK_MAX_PKT_LEN (64u * 1024)

/* The packet header as it is in guest memory (little-endian, packed). */
struct vsock_hdr {
	uint64_t src_cid;
	uint64_t dst_cid;
	uint32_t src_port;
	uint32_t dst_port;
	uint32_t len;
	uint16_t type;
	uint16_t op;
	uint32_t flags;
	uint32_t buf_alloc;
	uint32_t fwd_cnt;
} __attribute__((packed));

#define VSOCK_HDR_SIZE 44u

enum vsock_conn_state {
	VSOCK_CONN_CONNECTING,  /* host-initiated: REQUEST owed or sent, awaiting RESPONSE */
	VSOCK_CONN_ESTABLISHED,
	VSOCK_CONN_CLOSED,      /* reset: the device sends an owed RST and frees it */
};

/* Control packets a connection owes the guest (vsock_conn_next_ctrl). */
#define VSOCK_PEND_REQUEST 1u
#define VSOCK_PEND_RESPONSE 2u
#define VSOCK_PEND_CREDIT_UPDATE 4u
#define VSOCK_PEND_SHUTDOWN 8u
#define VSOCK_PEND_RST 16u

struct vsock_conn {
	uint64_t guest_cid;
	uint32_t guest_port, host_port;
	enum vsock_conn_state state;
	unsigned pending;            /* VSOCK_PEND_* */

	/* guest -> host: we receive */
	uint32_t buf_alloc;          /* advertised; the device buffers at most this much */
	uint32_t rx_cnt;             /* payload bytes accepted from the guest */
	uint32_t fwd_cnt;            /* of those, handed on to the host socket */
	uint32_t fwd_cnt_sent;       /* the fwd_cnt the guest was last told */

	/* host -> guest: we send */
	uint32_t tx_cnt;
	uint32_t peer_buf_alloc, peer_fwd_cnt;

	uint32_t guest_shut;         /* VSOCK_SHUTDOWN_* the guest announced */
	uint32_t host_shut;          /* VSOCK_SHUTDOWN_* we announced (or owe) */
};

/* What a guest packet means for the device (vsock_conn_recv). */
enum vsock_recv {
	VSOCK_RECV_NONE,       /* state/credit updated; check pending */
	VSOCK_RECV_DATA,       /* hdr->len payload bytes accepted: forward them */
	VSOCK_RECV_CONNECTED,  /* RESPONSE to our REQUEST: tell the host program */
	VSOCK_RECV_SHUTDOWN,   /* guest_shut grew */
	VSOCK_RECV_RESET,      /* state is CLOSED: by a guest RST (nothing owed) or
				* a protocol violation (RST owed) */
};

/* Checks a header the guest sent, with payload_avail readable bytes after
 * it in the chain. 0 when well-formed for this device (STREAM type, known
 * op, addresses guest_cid -> host, len within the chain and the packet
 * limit, payload only on RW); -EINVAL otherwise. */
int vsock_hdr_check(const struct vsock_hdr *h, uint64_t guest_cid, uint32_t payload_avail);

/* Fills *rst with the RST answering guest packet *h (no connection, bad
 * header). Returns false when none must be sent (h itself is an RST). */
bool vsock_rst_reply(const struct vsock_hdr *h, uint64_t guest_cid, struct vsock_hdr *rst);

/* A host-initiated connection to guest_port: owes REQUEST. */
void vsock_conn_init_connect(struct vsock_conn *c, uint64_t guest_cid, uint32_t guest_port,
			     uint32_t host_port, uint32_t buf_alloc);
/* A guest REQUEST *req the host side accepted: established, owes RESPONSE. */
void vsock_conn_init_accept(struct vsock_conn *c, const struct vsock_hdr *req, uint32_t buf_alloc);

/* Applies a checked guest packet addressed to this connection. */
enum vsock_recv vsock_conn_recv(struct vsock_conn *c, const struct vsock_hdr *h);

/* n of the accepted guest bytes reached the host socket: returns credit,
 * owing a CREDIT_UPDATE once the guest's view of our free space is low. */
void vsock_conn_forwarded(struct vsock_conn *c, uint32_t n);

/* Bytes we may send the guest now (0 unless established and the guest
 * still receives). */
uint32_t vsock_conn_credit(const struct vsock_conn *c);

/* The host side will send no more (flags VSOCK_SHUTDOWN_*): owes SHUTDOWN. */
void vsock_conn_shutdown(struct vsock_conn *c, uint32_t flags);
/* Aborts the connection: CLOSED, owes RST. */
void vsock_conn_reset(struct vsock_conn *c);
/* True when the guest closed both directions: the device finishes
 * forwarding and then resets (Linux waits for that RST). */
bool vsock_conn_guest_closed(const struct vsock_conn *c);

/* Builds the next owed control packet into *h, clears it from pending
 * and returns true; false when none is owed. */
bool vsock_conn_next_ctrl(struct vsock_conn *c, struct vsock_hdr *h);
/* Builds an RW header for len payload bytes (len <= vsock_conn_credit)
 * and counts them as sent. */
void vsock_conn_data_hdr(struct vsock_conn *c, struct vsock_hdr *h, uint32_t len);

#endif

#include <errno.h>
#include <string.h>

#include "vsock_conn.h"

_Static_assert(sizeof(struct vsock_hdr) == VSOCK_HDR_SIZE, "virtio-vsock header is 44 bytes");

int vsock_hdr_check(const struct vsock_hdr *h, uint64_t guest_cid, uint32_t payload_avail)
{
	if (h->type != VSOCK_TYPE_STREAM)
		return -EINVAL;
	if (h->op < VSOCK_OP_REQUEST || h->op > VSOCK_OP_CREDIT_REQUEST)
		return -EINVAL;
	if (h->src_cid != guest_cid || h->dst_cid != VSOCK_HOST_CID)
		return -EINVAL;
	if (h->len > payload_avail || h->len > VSOCK_MAX_PKT_LEN)
		return -EINVAL;
	if (h->len && h->op != VSOCK_OP_RW)
		return -EINVAL;
	return 0;
}

bool vsock_rst_reply(const struct vsock_hdr *h, uint64_t guest_cid, struct vsock_hdr *rst)
{
	/* Never answer an RST: two ends resetting each other would loop. */
	if (h->op == VSOCK_OP_RST)
		return false;
	*rst = (struct vsock_hdr){
		.src_cid = VSOCK_HOST_CID,
		.dst_cid = guest_cid,
		.src_port = h->dst_port,
		.dst_port = h->src_port,
		.type = VSOCK_TYPE_STREAM,
		.op = VSOCK_OP_RST,
	};
	return true;
}

static void vsock_conn_base(struct vsock_conn *c, uint64_t guest_cid, uint32_t guest_port,
			    uint32_t host_port, uint32_t buf_alloc)
{
	memset(c, 0, sizeof(*c));
	c->guest_cid = guest_cid;
	c->guest_port = guest_port;
	c->host_port = host_port;
	c->buf_alloc = buf_alloc;
}

void vsock_conn_init_connect(struct vsock_conn *c, uint64_t guest_cid, uint32_t guest_port,
			     uint32_t host_port, uint32_t buf_alloc)
{
	vsock_conn_base(c, guest_cid, guest_port, host_port, buf_alloc);
	c->state = VSOCK_CONN_CONNECTING;
	c->pending = VSOCK_PEND_REQUEST;
}

void vsock_conn_init_accept(struct vsock_conn *c, const struct vsock_hdr *req, uint32_t buf_alloc)
{
	vsock_conn_base(c, req->src_cid, req->src_port, req->dst_port, buf_alloc);
	c->state = VSOCK_CONN_ESTABLISHED;
	c->pending = VSOCK_PEND_RESPONSE;
	c->peer_buf_alloc = req->buf_alloc;
	c->peer_fwd_cnt = req->fwd_cnt;
}

void vsock_conn_reset(struct vsock_conn *c)
{
	c->state = VSOCK_CONN_CLOSED;
	c->pending = VSOCK_PEND_RST;
}

/* Room left in our receive buffer by the device's own count. */
static uint32_t vsock_conn_rx_room(const struct vsock_conn *c)
{
	uint32_t used = c->rx_cnt - c->fwd_cnt;

	return used >= c->buf_alloc ? 0 : c->buf_alloc - used;
}

static enum vsock_recv vsock_conn_recv_rw(struct vsock_conn *c, const struct vsock_hdr *h)
{
	/* Data before the handshake, after the guest's own SHUTDOWN SEND or
	 * beyond the credit we gave is a protocol violation. */
	if (c->state != VSOCK_CONN_ESTABLISHED || (c->guest_shut & VSOCK_SHUTDOWN_SEND) ||
	    h->len > vsock_conn_rx_room(c)) {
		vsock_conn_reset(c);
		return VSOCK_RECV_RESET;
	}
	if (!h->len)
		return VSOCK_RECV_NONE;
	c->rx_cnt += h->len;
	return VSOCK_RECV_DATA;
}

enum vsock_recv vsock_conn_recv(struct vsock_conn *c, const struct vsock_hdr *h)
{
	if (c->state == VSOCK_CONN_CLOSED)
		return VSOCK_RECV_RESET;
	if (h->op == VSOCK_OP_RST) {
		c->state = VSOCK_CONN_CLOSED;
		c->pending = 0;
		return VSOCK_RECV_RESET;
	}
	/* Every packet carries the sender's current receive window. */
	c->peer_buf_alloc = h->buf_alloc;
	c->peer_fwd_cnt = h->fwd_cnt;

	switch (h->op) {
	case VSOCK_OP_RESPONSE:
		if (c->state != VSOCK_CONN_CONNECTING)
			break;
		c->state = VSOCK_CONN_ESTABLISHED;
		return VSOCK_RECV_CONNECTED;
	case VSOCK_OP_SHUTDOWN:
		if (c->state != VSOCK_CONN_ESTABLISHED)
			break;
		if (!(h->flags & ~c->guest_shut & VSOCK_SHUTDOWN_MASK))
			return VSOCK_RECV_NONE;
		c->guest_shut |= h->flags & VSOCK_SHUTDOWN_MASK;
		return VSOCK_RECV_SHUTDOWN;
	case VSOCK_OP_RW:
		return vsock_conn_recv_rw(c, h);
	case VSOCK_OP_CREDIT_UPDATE:
		return VSOCK_RECV_NONE;
	case VSOCK_OP_CREDIT_REQUEST:
		c->pending |= VSOCK_PEND_CREDIT_UPDATE;
		return VSOCK_RECV_NONE;
	default:
		/* REQUEST on a connection that already exists. */
		break;
	}
	vsock_conn_reset(c);
	return VSOCK_RECV_RESET;
}

void vsock_conn_forwarded(struct vsock_conn *c, uint32_t n)
{
	uint32_t unseen;

	c->fwd_cnt += n;
	/* The guest thinks rx_cnt - fwd_cnt_sent of our buffer is taken; tell
	 * it about the freed space before that view leaves it less than half
	 * (it may be blocked on credit; Linux sends no CREDIT_REQUEST then). */
	unseen = c->rx_cnt - c->fwd_cnt_sent;
	if (c->fwd_cnt != c->fwd_cnt_sent && unseen > c->buf_alloc / 2)
		c->pending |= VSOCK_PEND_CREDIT_UPDATE;
}

uint32_t vsock_conn_credit(const struct vsock_conn *c)
{
	uint32_t inflight = c->tx_cnt - c->peer_fwd_cnt;

	if (c->state != VSOCK_CONN_ESTABLISHED || (c->guest_shut & VSOCK_SHUTDOWN_RCV) ||
	    (c->host_shut & VSOCK_SHUTDOWN_SEND))
		return 0;
	/* A peer_fwd_cnt ahead of tx_cnt makes inflight huge: no credit. */
	return inflight >= c->peer_buf_alloc ? 0 : c->peer_buf_alloc - inflight;
}

void vsock_conn_shutdown(struct vsock_conn *c, uint32_t flags)
{
	flags &= VSOCK_SHUTDOWN_MASK;
	if (c->state == VSOCK_CONN_CLOSED || !(flags & ~c->host_shut))
		return;
	c->host_shut |= flags;
	c->pending |= VSOCK_PEND_SHUTDOWN;
}

bool vsock_conn_guest_closed(const struct vsock_conn *c)
{
	return (c->guest_shut & VSOCK_SHUTDOWN_MASK) == VSOCK_SHUTDOWN_MASK;
}

static void vsock_conn_hdr(struct vsock_conn *c, struct vsock_hdr *h, uint16_t op)
{
	*h = (struct vsock_hdr){
		.src_cid = VSOCK_HOST_CID,
		.dst_cid = c->guest_cid,
		.src_port = c->host_port,
		.dst_port = c->guest_port,
		.type = VSOCK_TYPE_STREAM,
		.op = op,
		.buf_alloc = c->buf_alloc,
		.fwd_cnt = c->fwd_cnt,
	};
	c->fwd_cnt_sent = c->fwd_cnt;
}

/* Owed control packets in the order the guest must see them. */
static const struct {
	unsigned pend;
	uint16_t op;
} vsock_conn_ctrl_order[] = {
	{ VSOCK_PEND_RST, VSOCK_OP_RST },
	{ VSOCK_PEND_REQUEST, VSOCK_OP_REQUEST },
	{ VSOCK_PEND_RESPONSE, VSOCK_OP_RESPONSE },
	{ VSOCK_PEND_CREDIT_UPDATE, VSOCK_OP_CREDIT_UPDATE },
	{ VSOCK_PEND_SHUTDOWN, VSOCK_OP_SHUTDOWN },
};

bool vsock_conn_next_ctrl(struct vsock_conn *c, struct vsock_hdr *h)
{
	for (unsigned i = 0; i < sizeof(vsock_conn_ctrl_order) / sizeof(vsock_conn_ctrl_order[0]); i++) {
		if (!(c->pending & vsock_conn_ctrl_order[i].pend))
			continue;
		vsock_conn_hdr(c, h, vsock_conn_ctrl_order[i].op);
		if (vsock_conn_ctrl_order[i].op == VSOCK_OP_SHUTDOWN)
			h->flags = c->host_shut;
		/* After an RST nothing else is said on this connection. */
		c->pending = vsock_conn_ctrl_order[i].op == VSOCK_OP_RST ? 0 :
			     c->pending & ~vsock_conn_ctrl_order[i].pend;
		return true;
	}
	return false;
}

void vsock_conn_data_hdr(struct vsock_conn *c, struct vsock_hdr *h, uint32_t len)
{
	vsock_conn_hdr(c, h, VSOCK_OP_RW);
	h->len = len;
	c->tx_cnt += len;
	/* Carrying fwd_cnt makes a separate CREDIT_UPDATE unnecessary. */
	c->pending &= ~VSOCK_PEND_CREDIT_UPDATE;
}

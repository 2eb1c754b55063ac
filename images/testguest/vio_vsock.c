/* virtio-vsock from inside, by polling, with the host test
 * (tests/integration/lib/vsock_peer.py) at the other end of cvmm's
 * hybrid-vsock socket:
 *  1. the host connects to guest port 1234 and sends a few KiB; the guest
 *     echoes every byte and prints their FNV-1a hash, which the host
 *     compares with its own (and the echo with what it sent);
 *  2. the guest connects to host port 5000 (the host listens on PATH_5000),
 *     sends "cvmm-guest seed=N\n" and waits for "cvmm-host seed=N\n";
 *  3. the host connects to port 1235; once it is established the guest
 *     resets the device with the connection open (the host sees it close),
 *     sets the device up again, must get a TRANSPORT_RESET on the event
 *     queue, and echoes one more host connection to port 1234 (the host
 *     socket survived the reset).
 * The first TRANSPORT_RESET (after the driver's first set-up) is checked too.
 * With tg.vsockrestart (a vhost-user back-end serves the device), then:
 *  4. the host connects to port 1236 and says something, which the guest
 *     echoes; the host kills the back-end (SIGKILL) and starts another;
 *  5. the guest must get a TRANSPORT_RESET on a fresh event buffer, the
 *     new back-end must refuse the old connection (RST), and a new host
 *     connection to port 1234 and a new guest connection to host port 5000
 *     must work. */
#include "vio.h"

#define VV_HDR 44
#define VV_RX_BUFS 8
#define VV_RX_DATA 1024
#define VV_BUF_ALLOC 65536
#define VV_HOST_CID 2
#define VV_ECHO_PORT 1234
#define VV_RESET_PORT 1235
#define VV_RESTART_PORT 1236
#define VV_HOST_PORT 5000
#define VV_TYPE_STREAM 1
#define VV_SHUTDOWN_BOTH 3
/* vio_wait rounds before giving up on the host (several seconds each;
 * plenty for a back-end restart too). */
#define VV_WAIT_ROUNDS 8

enum {
	VV_OP_REQUEST = 1, VV_OP_RESPONSE, VV_OP_RST, VV_OP_SHUTDOWN, VV_OP_RW, VV_OP_CREDIT_UPDATE,
	VV_OP_CREDIT_REQUEST,
};

struct vv_hdr {
	uint64_t src_cid, dst_cid;
	uint32_t src_port, dst_port, len;
	uint16_t type, op;
	uint32_t flags, buf_alloc, fwd_cnt;
} __attribute__((packed));

_Static_assert(sizeof(struct vv_hdr) == VV_HDR, "virtio-vsock header is 44 bytes");

/* One connection: its ports and the bytes we consumed (our fwd_cnt). */
struct vv_conn {
	uint32_t port, peer_port, fwd_cnt;
};

struct vv {
	struct vio_dev *d;
	struct vio_queue rx, tx, ev;
	uint64_t cid;
	struct vv_hdr h;                 /* the last packet received */
	uint8_t data[VV_RX_DATA];        /* and its payload */
};

static uint8_t vv_rx_bufs[VV_RX_BUFS][VV_HDR + VV_RX_DATA];
static uint8_t vv_event[8];
static struct vv_hdr vv_tx_hdr;
static struct vv vv_state;

static uint32_t vv_fnv(uint32_t h, const uint8_t *p, uint32_t n)
{
	while (n--) {
		h ^= *p++;
		h *= 16777619u;
	}
	return h;
}

/* Sets the device up: queues, RX buffers, one event buffer. */
static int vv_setup(struct vv *v)
{
	struct vio_buf b;

	if (vio_init(v->d, 0) || vio_queue_init(v->d, &v->rx, 0) || vio_queue_init(v->d, &v->tx, 1) ||
	    vio_queue_init(v->d, &v->ev, 2))
		return -1;
	vio_config_read(v->d, 0, &v->cid, 8);
	vio_driver_ok(v->d);
	for (unsigned i = 0; i < VV_RX_BUFS; i++) {
		b = (struct vio_buf){ vv_rx_bufs[i], sizeof(vv_rx_bufs[i]), true };
		vio_offer(&v->rx, &b, 1);
	}
	vio_kick(v->d, &v->rx);
	memset(vv_event, 0xff, sizeof(vv_event));
	b = (struct vio_buf){ vv_event, sizeof(vv_event), true };
	vio_offer(&v->ev, &b, 1);
	vio_kick(v->d, &v->ev);
	return 0;
}

/* Waits for the TRANSPORT_RESET event (id 0) the device owes a new driver. */
static int vv_reset_event(struct vv *v)
{
	for (unsigned r = 0; r < VV_WAIT_ROUNDS; r++) {
		int64_t len = vio_wait(&v->ev, NULL);

		if (len >= 0)
			return len == 4 && vv_event[0] == 0 && !vv_event[1] && !vv_event[2] && !vv_event[3] ? 0 : -1;
	}
	return -1;
}

static int vv_send(struct vv *v, const struct vv_conn *c, uint16_t op, uint32_t flags, const void *data,
		   uint32_t len)
{
	struct vio_buf b[2] = { { &vv_tx_hdr, VV_HDR, false }, { (void *)data, len, false } };

	vv_tx_hdr = (struct vv_hdr){
		.src_cid = v->cid, .dst_cid = VV_HOST_CID, .src_port = c->port, .dst_port = c->peer_port,
		.len = len, .type = VV_TYPE_STREAM, .op = op, .flags = flags, .buf_alloc = VV_BUF_ALLOC,
		.fwd_cnt = c->fwd_cnt,
	};
	return vio_request(v->d, &v->tx, b, len ? 2 : 1) < 0 ? -1 : 0;
}

/* Takes the next packet into v->h and v->data and gives its buffer back. */
static int vv_recv(struct vv *v)
{
	uint16_t id;
	int64_t len = -1;
	const uint8_t *buf;
	struct vio_buf b;

	for (unsigned r = 0; r < VV_WAIT_ROUNDS && len < 0; r++)
		len = vio_wait(&v->rx, &id);
	if (len < VV_HDR || id >= VIO_QUEUE_SIZE)
		return -1;
	buf = (const uint8_t *)(uintptr_t)v->rx.desc[id].addr;
	memcpy(&v->h, buf, VV_HDR);
	if (v->h.len > (uint64_t)len - VV_HDR || v->h.len > VV_RX_DATA)
		return -1;
	memcpy(v->data, buf + VV_HDR, v->h.len);
	b = (struct vio_buf){ (void *)buf, VV_HDR + VV_RX_DATA, true };
	vio_offer(&v->rx, &b, 1);
	vio_kick(v->d, &v->rx);
	return 0;
}

/* Receives the next packet of connection c, answering credit requests
 * and refusing connections to ports nobody listens on. */
static int vv_next(struct vv *v, const struct vv_conn *c)
{
	for (;;) {
		struct vv_conn other;

		if (vv_recv(v))
			return -1;
		if (v->h.src_port == c->peer_port && v->h.dst_port == c->port) {
			if (v->h.op != VV_OP_CREDIT_REQUEST)
				return 0;
			if (vv_send(v, c, VV_OP_CREDIT_UPDATE, 0, NULL, 0))
				return -1;
			continue;
		}
		other = (struct vv_conn){ v->h.dst_port, v->h.src_port, 0 };
		if (v->h.op != VV_OP_RST && vv_send(v, &other, VV_OP_RST, 0, NULL, 0))
			return -1;
	}
}

/* Accepts a host connection to port: the REQUEST, then our RESPONSE. */
static int vv_accept(struct vv *v, struct vv_conn *c, uint32_t port)
{
	for (;;) {
		struct vv_conn other;

		if (vv_recv(v))
			return -1;
		other = (struct vv_conn){ v->h.dst_port, v->h.src_port, 0 };
		if (v->h.op == VV_OP_REQUEST && v->h.dst_port == port && v->h.src_cid == VV_HOST_CID) {
			*c = other;
			return vv_send(v, c, VV_OP_RESPONSE, 0, NULL, 0);
		}
		if (v->h.op != VV_OP_RST && vv_send(v, &other, VV_OP_RST, 0, NULL, 0))
			return -1;
	}
}

/* Closes c from our side once the peer is done: SHUTDOWN both ways, then
 * the device's RST ends it. */
static int vv_close(struct vv *v, struct vv_conn *c)
{
	if (vv_send(v, c, VV_OP_SHUTDOWN, VV_SHUTDOWN_BOTH, NULL, 0))
		return -1;
	do
		if (vv_next(v, c))
			return -1;
	while (v->h.op != VV_OP_RST);
	return 0;
}

/* Echoes one host connection to VV_ECHO_PORT until the host shuts it down;
 * the FNV-1a hash of the bytes in *hash, their count in *bytes. */
static int vv_echo(struct vv *v, uint32_t *bytes, uint32_t *hash)
{
	struct vv_conn c;

	*bytes = 0;
	*hash = 2166136261u;
	if (vv_accept(v, &c, VV_ECHO_PORT))
		return -1;
	for (;;) {
		if (vv_next(v, &c))
			return -1;
		if (v->h.op == VV_OP_RW) {
			*hash = vv_fnv(*hash, v->data, v->h.len);
			*bytes += v->h.len;
			c.fwd_cnt += v->h.len;
			if (vv_send(v, &c, VV_OP_RW, 0, v->data, v->h.len))
				return -1;
		} else if (v->h.op == VV_OP_SHUTDOWN) {
			return vv_close(v, &c);
		} else if (v->h.op == VV_OP_RST) {
			return -1;
		}
	}
}

/* Connects to the host's port VV_HOST_PORT and exchanges a line each way. */
static int vv_connect_host(struct tg *t, struct vv *v)
{
	struct vv_conn c = { 1024u + t->seed, VV_HOST_PORT, 0 };
	char msg[32], want[32], got[64];
	unsigned mlen = vio_seed_message(msg, "cvmm-guest", t->seed, true);
	unsigned wlen = vio_seed_message(want, "cvmm-host", t->seed, true), have = 0;

	if (vv_send(v, &c, VV_OP_REQUEST, 0, NULL, 0) || vv_next(v, &c) || v->h.op != VV_OP_RESPONSE)
		return -1;
	if (vv_send(v, &c, VV_OP_RW, 0, msg, mlen))
		return -1;
	while (have < wlen) {
		if (vv_next(v, &c) || v->h.op == VV_OP_RST || v->h.op == VV_OP_SHUTDOWN)
			return -1;
		if (v->h.op != VV_OP_RW)
			continue;
		if (v->h.len > sizeof(got) - have)
			return -1;
		memcpy(got + have, v->data, v->h.len);
		have += v->h.len;
		c.fwd_cnt += v->h.len;
	}
	if (memcmp(got, want, wlen))
		return -1;
	return vv_close(v, &c);
}

/* Resets the device under an established host connection, then sets it up
 * again: TRANSPORT_RESET must come, and the host must still reach us. */
static int vv_reset_midway(struct vv *v, uint32_t *bytes, uint32_t *hash)
{
	struct vv_conn c;

	if (vv_accept(v, &c, VV_RESET_PORT))
		return -1;
	/* The host says something once it has its OK: established both ways. */
	do
		if (vv_next(v, &c) || v->h.op == VV_OP_RST)
			return -1;
	while (v->h.op != VV_OP_RW);
	if (vv_setup(v) || vv_reset_event(v))
		return -1;
	return vv_echo(v, bytes, hash);
}

/* Lives through a back-end restart under an established host connection:
 * the TRANSPORT_RESET comes on a fresh event buffer, the new back-end knows
 * nothing of the old connection, and new connections work both ways. */
static int vv_backend_restart(struct tg *t, struct vv *v, uint32_t *bytes, uint32_t *hash)
{
	static const uint8_t probe[] = "stale";
	struct vv_conn c;
	struct vio_buf b;

	if (vv_accept(v, &c, VV_RESTART_PORT))
		return -1;
	do
		if (vv_next(v, &c) || v->h.op == VV_OP_RST)
			return -1;
	while (v->h.op != VV_OP_RW);
	c.fwd_cnt += v->h.len;
	memset(vv_event, 0xff, sizeof(vv_event));
	b = (struct vio_buf){ vv_event, sizeof(vv_event), true };
	vio_offer(&v->ev, &b, 1);
	vio_kick(v->d, &v->ev);
	/* The echo tells the host the guest waits for the restart now. */
	if (vv_send(v, &c, VV_OP_RW, 0, v->data, v->h.len))
		return -1;
	if (vv_reset_event(v)) {
		tg_printf("TG: FAIL virtio-vsock %s: no TRANSPORT_RESET after the back-end restart\n",
			  vio_kind_name(v->d));
		return -1;
	}
	if (vv_send(v, &c, VV_OP_RW, 0, probe, sizeof(probe)) || vv_next(v, &c) || v->h.op != VV_OP_RST) {
		tg_printf("TG: FAIL virtio-vsock %s: the new back-end did not refuse the old connection\n",
			  vio_kind_name(v->d));
		return -1;
	}
	if (vv_echo(v, bytes, hash))
		return -1;
	return vv_connect_host(t, v);
}

int vio_check_vsock(struct tg *t, struct vio_dev *d)
{
	struct vv *v = &vv_state;
	uint32_t bytes, hash, bytes2, hash2;

	memset(v, 0, sizeof(*v));
	v->d = d;
	if (vv_setup(v)) {
		tg_printf("TG: FAIL virtio-vsock %s: setup refused (status 0x%x)\n", vio_kind_name(d), vio_status(d));
		return -1;
	}
	if (vv_reset_event(v)) {
		tg_printf("TG: FAIL virtio-vsock %s: no TRANSPORT_RESET event\n", vio_kind_name(d));
		return -1;
	}
	tg_printf("TG: virtio-vsock %s cid=%lu listening\n", vio_kind_name(d), v->cid);
	if (vv_echo(v, &bytes, &hash)) {
		tg_printf("TG: FAIL virtio-vsock %s: echo of a host connection (op %u after %u bytes)\n",
			  vio_kind_name(d), v->h.op, bytes);
		return -1;
	}
	tg_printf("TG: virtio-vsock %s echo bytes=%u fnv=%x\n", vio_kind_name(d), bytes, hash);
	if (vv_connect_host(t, v)) {
		tg_printf("TG: FAIL virtio-vsock %s: connection to host port %u (last op %u)\n", vio_kind_name(d),
			  VV_HOST_PORT, v->h.op);
		return -1;
	}
	if (vv_reset_midway(v, &bytes2, &hash2)) {
		tg_printf("TG: FAIL virtio-vsock %s: reset with a connection open (last op %u)\n", vio_kind_name(d),
			  v->h.op);
		return -1;
	}
	tg_printf("TG: virtio-vsock %s after reset echo bytes=%u fnv=%x\n", vio_kind_name(d), bytes2, hash2);
	if (t->vsock_restart) {
		if (vv_backend_restart(t, v, &bytes2, &hash2)) {
			tg_printf("TG: FAIL virtio-vsock %s: back-end restart (last op %u)\n", vio_kind_name(d),
				  v->h.op);
			return -1;
		}
		tg_printf("TG: virtio-vsock %s after back-end restart echo bytes=%u fnv=%x, guest->host ok\n",
			  vio_kind_name(d), bytes2, hash2);
	}
	tg_printf("TG: virtio-vsock %s host->guest+guest->host+reset ok\n", vio_kind_name(d));
	return 0;
}

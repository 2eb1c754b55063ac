/*
 * virtio-vsock model end to end inside the process: a hand-made driver puts
 * packets on split rings in a malloc'd "guest memory" and host programs are
 * Unix sockets of this test; the device's worker thread serves both.
 */
#include <check.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "devices/vsock/virtio_vsock.h"
#include "check_run.h"
#include "guest_ring.h"

#define T_MEM (4u << 20)
#define T_QSIZE 64
#define T_QBASE(q) ((uint64_t)(q) * 0x4000)
#define T_RXBUF 0x100000   /* 64 x 4 KiB */
#define T_TXBUF 0x200000   /* 32 x (header + up to 64 KiB) */
#define T_EVBUF 0x380000
#define T_CID 9

struct t_vq {
	struct guest_ring ring;   /* the driver's side */
	unsigned posted;          /* buffers given so far (picks the next slot) */
};

struct t_env {
	uint8_t *buf;
	struct gmem mem;
	struct vsock_dev d;
	struct t_vq q[VSOCK_NUM_QUEUES];
	char dir[64], uds[108];
};

static struct t_env *env;

static void *t_ptr(uint64_t gpa)
{
	return env->buf + gpa;
}

static struct virtq_desc *t_desc(unsigned q)
{
	return guest_ring_desc(&env->q[q].ring);
}

static void t_kick(unsigned q)
{
	uint64_t one = 1;

	ck_assert_int_eq(write(env->d.vqs[q].kick_fd, &one, sizeof(one)), sizeof(one));
}

static void t_publish(unsigned q, uint16_t head)
{
	guest_ring_publish(&env->q[q].ring, head);
	t_kick(q);
}

/* Waits up to 3 s for the device to use one more chain of queue q; returns
 * its used element, or fails the test. */
static struct virtq_used_elem t_wait_used(unsigned q)
{
	if (!guest_ring_wait_more(&env->q[q].ring, 3000))
		ck_abort_msg("queue %u: nothing used in 3 s", q);
	return guest_ring_next_used(&env->q[q].ring);
}

/* True when queue q stays without a new used entry for ms milliseconds. */
static bool t_quiet(unsigned q, int ms)
{
	return !guest_ring_wait_more(&env->q[q].ring, ms);
}

/* Gives the device n receive buffers of 4 KiB (one descriptor each). */
static void t_post_rx(unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		uint16_t idx = env->q[VSOCK_Q_RX].posted++ % T_QSIZE;

		t_desc(VSOCK_Q_RX)[idx] = (struct virtq_desc){ T_RXBUF + idx * 4096u, 4096,
							      VIRTQ_DESC_F_WRITE, 0 };
		t_publish(VSOCK_Q_RX, idx);
	}
}

/* Next packet the device gave the guest: header in *h, payload copied to
 * payload (up to 4052 bytes); returns the used length. */
static uint32_t t_recv(struct vsock_hdr *h, void *payload)
{
	struct virtq_used_elem e = t_wait_used(VSOCK_Q_RX);
	const uint8_t *b = t_ptr(T_RXBUF + e.id * 4096u);

	ck_assert_uint_ge(e.len, VSOCK_HDR_SIZE);
	memcpy(h, b, VSOCK_HDR_SIZE);
	ck_assert_uint_eq(h->len, e.len - VSOCK_HDR_SIZE);
	if (payload)
		memcpy(payload, b + VSOCK_HDR_SIZE, h->len);
	/* Keep the number of buffers the device holds constant. */
	t_post_rx(1);
	return e.len;
}

/* Puts a packet on the TX queue: the header and the payload in separate
 * descriptors, as Linux does. */
static void t_send(const struct vsock_hdr *h, const void *payload, uint32_t len)
{
	uint16_t slot = env->q[VSOCK_Q_TX].posted++ % (T_QSIZE / 2), idx = (uint16_t)(slot * 2);
	uint64_t gpa = T_TXBUF + slot * (uint64_t)(VSOCK_HDR_SIZE + VSOCK_MAX_PKT_LEN);
	struct virtq_desc *d = t_desc(VSOCK_Q_TX);

	memcpy(t_ptr(gpa), h, VSOCK_HDR_SIZE);
	if (len)
		memcpy(t_ptr(gpa + VSOCK_HDR_SIZE), payload, len);
	d[idx] = (struct virtq_desc){ gpa, VSOCK_HDR_SIZE, len ? VIRTQ_DESC_F_NEXT : 0, (uint16_t)(idx + 1) };
	d[idx + 1] = (struct virtq_desc){ gpa + VSOCK_HDR_SIZE, len, 0, 0 };
	t_publish(VSOCK_Q_TX, idx);
	t_wait_used(VSOCK_Q_TX);
}

static struct vsock_hdr t_pkt(uint16_t op, uint32_t sport, uint32_t dport, uint32_t len, uint32_t buf_alloc,
			      uint32_t fwd_cnt)
{
	return (struct vsock_hdr){
		.src_cid = T_CID, .dst_cid = VSOCK_HOST_CID, .src_port = sport, .dst_port = dport,
		.len = len, .type = VSOCK_TYPE_STREAM, .op = op, .buf_alloc = buf_alloc, .fwd_cnt = fwd_cnt,
	};
}

static void t_setup(void)
{
	struct gmem_region r = { .gpa = 0, .size = T_MEM, .fd = -1 };
	struct vsock_dev_config cfg = { .guest_cid = T_CID };

	env = calloc(1, sizeof(*env));
	env->buf = calloc(1, T_MEM);
	r.hva = env->buf;
	gmem_init(&env->mem);
	ck_assert_int_eq(gmem_add(&env->mem, &r), 0);
	for (unsigned q = 0; q < VSOCK_NUM_QUEUES; q++)
		guest_ring_init(&env->q[q].ring, env->buf, T_QSIZE, T_QBASE(q), T_QBASE(q) + 0x1000,
				T_QBASE(q) + 0x2000);
	strcpy(env->dir, "/tmp/cvmm-h6-vsock-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(env->dir));
	snprintf(env->uds, sizeof(env->uds), "%s/v.sock", env->dir);
	cfg.uds_path = env->uds;
	ck_assert_int_eq(vsock_dev_init(&env->d, &cfg), 0);
	env->d.vdev.mem = &env->mem;
}

/* Starts the three queues, the event queue holding one buffer first. */
static void t_start(void)
{
	struct vsock_dev *d = &env->d;

	*(uint32_t *)t_ptr(T_EVBUF) = 0xffffffff;
	guest_ring_post_at(&env->q[VSOCK_Q_EVENT].ring, 0,
			   &(struct guest_buf){ T_EVBUF, 4, true }, 1);
	for (unsigned q = 0; q < VSOCK_NUM_QUEUES; q++) {
		struct virtq *vq = &d->vqs[q];

		ck_assert_int_eq(virtq_setup(vq, &env->mem, T_QSIZE, T_QBASE(q), T_QBASE(q) + 0x1000,
					     T_QBASE(q) + 0x2000), 0);
		vq->kick_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		vq->call_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		ck_assert_int_eq(vdev_queue_start(&d->vdev, q), 0);
	}
}

static void t_teardown(void)
{
	struct vsock_dev *d = &env->d;
	int fds[2 * VSOCK_NUM_QUEUES];

	for (unsigned q = 0; q < VSOCK_NUM_QUEUES; q++) {
		vdev_queue_stop(&d->vdev, q);
		fds[2 * q] = d->vqs[q].kick_fd;
		fds[2 * q + 1] = d->vqs[q].call_fd;
	}
	vsock_dev_destroy(d);
	for (unsigned i = 0; i < 2 * VSOCK_NUM_QUEUES; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	ck_assert_int_eq(access(env->uds, F_OK), -1);
	rmdir(env->dir);
	gmem_destroy(&env->mem);
	free(env->buf);
	free(env);
}

static int t_listen(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(fd, 8), 0);
	return fd;
}

static int t_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

/* Reads exactly len bytes (3 s at most). */
static void t_read_full(int fd, void *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;

		ck_assert_int_eq(poll(&p, 1, 3000), 1);
		n = read(fd, (uint8_t *)buf + got, len - got);
		ck_assert_int_gt(n, 0);
		got += (size_t)n;
	}
}

START_TEST(config_and_transport_reset)
{
	uint8_t cfg[8];

	env->d.vdev.ops->read_config(&env->d.vdev, 0, cfg, sizeof(cfg));
	ck_assert_uint_eq(cfg[0], T_CID);
	ck_assert_uint_eq(env->d.vdev.device_id, VIRTIO_ID_VSOCK);
	t_start();
	ck_assert_uint_eq(t_wait_used(VSOCK_Q_EVENT).len, 4);
	ck_assert_uint_eq(*(uint32_t *)t_ptr(T_EVBUF), VSOCK_EVENT_TRANSPORT_RESET);
}
END_TEST

START_TEST(rst_for_unknown_and_malformed_packets)
{
	struct vsock_hdr h = t_pkt(VSOCK_OP_RW, 1111, 2222, 3, 4096, 0), r;

	t_start();
	t_post_rx(4);
	/* data on a connection that does not exist */
	t_send(&h, "abc", 3);
	t_recv(&r, NULL);
	ck_assert_uint_eq(r.op, VSOCK_OP_RST);
	ck_assert_uint_eq(r.dst_cid, T_CID);
	ck_assert_uint_eq(r.src_port, 2222);
	ck_assert_uint_eq(r.dst_port, 1111);
	/* unknown type, bad op, len beyond the chain */
	h = t_pkt(VSOCK_OP_REQUEST, 1, 2, 0, 4096, 0);
	h.type = 2;
	t_send(&h, NULL, 0);
	t_recv(&r, NULL);
	ck_assert_uint_eq(r.op, VSOCK_OP_RST);
	h = t_pkt(99, 1, 2, 0, 4096, 0);
	t_send(&h, NULL, 0);
	t_recv(&r, NULL);
	ck_assert_uint_eq(r.op, VSOCK_OP_RST);
	h = t_pkt(VSOCK_OP_RW, 1, 2, 5000, 4096, 0);
	t_send(&h, "x", 1);
	t_recv(&r, NULL);
	ck_assert_uint_eq(r.op, VSOCK_OP_RST);
	/* an RST is never answered */
	h = t_pkt(VSOCK_OP_RST, 1, 2, 0, 0, 0);
	t_send(&h, NULL, 0);
	ck_assert(t_quiet(VSOCK_Q_RX, 100));
	/* nothing listens on the host port */
	h = t_pkt(VSOCK_OP_REQUEST, 1, 4444, 0, 4096, 0);
	t_send(&h, NULL, 0);
	t_recv(&r, NULL);
	ck_assert_uint_eq(r.op, VSOCK_OP_RST);
}
END_TEST

START_TEST(guest_connects_to_a_host_port)
{
	char path[128], buf[64];
	struct vsock_hdr h, r;
	int l, c;

	snprintf(path, sizeof(path), "%s_700", env->uds);
	l = t_listen(path);
	t_start();
	t_post_rx(8);
	h = t_pkt(VSOCK_OP_REQUEST, 3000, 700, 0, 8192, 0);
	t_send(&h, NULL, 0);
	t_recv(&r, NULL);
	ck_assert_uint_eq(r.op, VSOCK_OP_RESPONSE);
	ck_assert_uint_eq(r.src_port, 700);
	ck_assert_uint_eq(r.dst_port, 3000);
	ck_assert_uint_eq(r.buf_alloc, VSOCK_BUF_ALLOC);
	c = accept(l, NULL, NULL);
	ck_assert_int_ge(c, 0);
	/* guest -> host */
	h = t_pkt(VSOCK_OP_RW, 3000, 700, 5, 8192, 0);
	t_send(&h, "hello", 5);
	t_read_full(c, buf, 5);
	ck_assert_mem_eq(buf, "hello", 5);
	/* host -> guest */
	ck_assert_int_eq(write(c, "world!", 6), 6);
	t_recv(&r, buf);
	ck_assert_uint_eq(r.op, VSOCK_OP_RW);
	ck_assert_uint_eq(r.len, 6);
	ck_assert_mem_eq(buf, "world!", 6);
	/* the host closes: SHUTDOWN; the guest closes too: RST ends it */
	close(c);
	t_recv(&r, NULL);
	ck_assert_uint_eq(r.op, VSOCK_OP_SHUTDOWN);
	ck_assert_uint_eq(r.flags & VSOCK_SHUTDOWN_SEND, VSOCK_SHUTDOWN_SEND);
	h = t_pkt(VSOCK_OP_SHUTDOWN, 3000, 700, 0, 8192, 6);
	h.flags = VSOCK_SHUTDOWN_MASK;
	t_send(&h, NULL, 0);
	t_recv(&r, NULL);
	ck_assert_uint_eq(r.op, VSOCK_OP_RST);
	close(l);
	unlink(path);
}
END_TEST

START_TEST(host_connects_to_a_guest_port)
{
	struct vsock_hdr h, r;
	char line[32] = { 0 };
	unsigned port;
	int c;

	t_start();
	t_post_rx(8);
	c = t_connect(env->uds);
	/* the line and the first data in one write */
	ck_assert_int_eq(write(c, "CONNECT 52\nearly", 16), 16);
	t_recv(&r, NULL);
	ck_assert_uint_eq(r.op, VSOCK_OP_REQUEST);
	ck_assert_uint_eq(r.dst_cid, T_CID);
	ck_assert_uint_eq(r.dst_port, 52);
	ck_assert_uint_ge(r.src_port, 1u << 30);
	port = r.src_port;
	h = t_pkt(VSOCK_OP_RESPONSE, 52, port, 0, 4096, 0);
	t_send(&h, NULL, 0);
	t_read_full(c, line, strlen("OK ") + 10 + 1);
	ck_assert_uint_eq(strtoul(line + 3, NULL, 10), port);
	ck_assert_int_eq(strncmp(line, "OK ", 3), 0);
	t_recv(&r, line);
	ck_assert_uint_eq(r.op, VSOCK_OP_RW);
	ck_assert_mem_eq(line, "early", 5);
	close(c);
}
END_TEST

START_TEST(host_data_waits_for_guest_credit)
{
	static uint8_t data[3000], got[3000];
	struct vsock_hdr h, r;
	char line[32];
	uint32_t total = 0;
	int c;

	for (unsigned i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 13 + 1);
	t_start();
	t_post_rx(16);
	c = t_connect(env->uds);
	ck_assert_int_eq(write(c, "CONNECT 60\n", 11), 11);
	t_recv(&r, NULL);
	/* The guest has a 1000-byte window. */
	h = t_pkt(VSOCK_OP_RESPONSE, 60, r.src_port, 0, 1000, 0);
	t_send(&h, NULL, 0);
	t_read_full(c, line, 3 + 10 + 1);
	ck_assert_int_eq(write(c, data, sizeof(data)), (ssize_t)sizeof(data));
	while (total < 1000) {
		t_recv(&r, got + total);
		ck_assert_uint_eq(r.op, VSOCK_OP_RW);
		total += r.len;
	}
	ck_assert_uint_eq(total, 1000);
	/* no more until the guest says it consumed something */
	ck_assert(t_quiet(VSOCK_Q_RX, 200));
	while (total < sizeof(data)) {
		h = t_pkt(VSOCK_OP_CREDIT_UPDATE, 60, r.src_port, 0, 1000, total);
		t_send(&h, NULL, 0);
		t_recv(&r, got + total);
		ck_assert_uint_eq(r.op, VSOCK_OP_RW);
		ck_assert_uint_le(r.len, 1000);
		total += r.len;
	}
	ck_assert_mem_eq(got, data, sizeof(data));
	close(c);
}
END_TEST

/* Asks for the device's credit and returns the newest fwd_cnt it gave. */
static uint32_t t_fwd_cnt(uint32_t sport, uint32_t dport)
{
	struct vsock_hdr h = t_pkt(VSOCK_OP_CREDIT_REQUEST, sport, dport, 0, 8192, 0), r;
	uint32_t fwd;

	t_send(&h, NULL, 0);
	do {
		t_recv(&r, NULL);
		ck_assert_uint_eq(r.op, VSOCK_OP_CREDIT_UPDATE);
		ck_assert_uint_eq(r.buf_alloc, VSOCK_BUF_ALLOC);
		fwd = r.fwd_cnt;
	} while (!t_quiet(VSOCK_Q_RX, 20));
	return fwd;
}

START_TEST(guest_overrun_and_hostile_host_clients)
{
	static uint8_t big[VSOCK_MAX_PKT_LEN];
	char path[128];
	struct vsock_hdr h, r;
	int l, c;
	uint32_t sent = 0, fwd, credit;
	size_t got = 0;

	snprintf(path, sizeof(path), "%s_701", env->uds);
	l = t_listen(path);
	t_start();
	t_post_rx(8);
	h = t_pkt(VSOCK_OP_REQUEST, 3001, 701, 0, 8192, 0);
	t_send(&h, NULL, 0);
	t_recv(&r, NULL);
	ck_assert_uint_eq(r.op, VSOCK_OP_RESPONSE);
	c = accept(l, NULL, NULL);
	/* The host reads nothing: the guest sends exactly the credit it is
	 * given (the host socket's buffer fills, then the device's own). */
	for (;;) {
		fwd = t_fwd_cnt(3001, 701);
		credit = VSOCK_BUF_ALLOC - (sent - fwd);
		if (!credit)
			break;
		if (credit > VSOCK_MAX_PKT_LEN)
			credit = VSOCK_MAX_PKT_LEN;
		for (uint32_t i = 0; i < credit; i++)
			big[i] = (uint8_t)((sent + i) * 31 + 7);
		h = t_pkt(VSOCK_OP_RW, 3001, 701, credit, 8192, 0);
		t_send(&h, big, credit);
		sent += credit;
	}
	ck_assert_uint_gt(fwd, 0);
	/* One byte beyond the window: reset. */
	h = t_pkt(VSOCK_OP_RW, 3001, 701, 1, 8192, 0);
	t_send(&h, big, 1);
	t_recv(&r, NULL);
	ck_assert_uint_eq(r.op, VSOCK_OP_RST);
	/* What the device forwarded before is all there, intact. */
	for (;;) {
		uint8_t b[4096];
		ssize_t n = read(c, b, sizeof(b));

		if (n <= 0)
			break;
		for (ssize_t i = 0; i < n; i++)
			ck_assert_uint_eq(b[i], (uint8_t)((got + (size_t)i) * 31 + 7));
		got += (size_t)n;
	}
	ck_assert_uint_eq(got, fwd);
	close(c);
	close(l);
	unlink(path);

	/* garbage, an over-long line: closed at once */
	c = t_connect(env->uds);
	ck_assert_int_eq(write(c, "HELLO\n", 6), 6);
	{
		struct pollfd p = { .fd = c, .events = POLLIN };
		char b[8];

		ck_assert_int_eq(poll(&p, 1, 2000), 1);
		ck_assert_int_le(read(c, b, sizeof(b)), 0);
	}
	close(c);
	c = t_connect(env->uds);
	memset(big, 'A', 100);
	ck_assert_int_eq(write(c, big, 100), 100);
	{
		struct pollfd p = { .fd = c, .events = POLLIN };
		char b[8];

		ck_assert_int_eq(poll(&p, 1, 2000), 1);
		ck_assert_int_le(read(c, b, sizeof(b)), 0);
	}
	close(c);
	ck_assert(t_quiet(VSOCK_Q_RX, 50));
}
END_TEST

START_TEST(reset_closes_connections_and_owes_a_new_transport_reset)
{
	struct vsock_hdr r;
	struct pollfd p;
	char b[8];
	int c;

	t_start();
	t_post_rx(4);
	t_wait_used(VSOCK_Q_EVENT);
	c = t_connect(env->uds);
	ck_assert_int_eq(write(c, "CONNECT 61\n", 11), 11);
	t_recv(&r, NULL);
	ck_assert_uint_eq(r.op, VSOCK_OP_REQUEST);
	for (unsigned q = 0; q < VSOCK_NUM_QUEUES; q++)
		vdev_queue_stop(&env->d.vdev, q);
	vdev_reset(&env->d.vdev);
	ck_assert(env->d.reset_owed);
	ck_assert_uint_eq(vsock_dev_nconns(&env->d), 0);
	p = (struct pollfd){ .fd = c, .events = POLLIN };
	ck_assert_int_eq(poll(&p, 1, 2000), 1);
	ck_assert_int_le(read(c, b, sizeof(b)), 0);
	close(c);
}
END_TEST

START_TEST(tx_waits_while_replies_are_full)
{
	struct vsock_hdr h, r;
	uint16_t head;

	t_start();
	/* No receive buffers: every RST reply has to wait in the device. */
	for (unsigned i = 0; i < VSOCK_REPLY_MAX; i++) {
		h = t_pkt(VSOCK_OP_RW, 10000 + i, 1, 0, 4096, 0);
		t_send(&h, NULL, 0);
	}
	/* The next packet is left on the ring, not dropped. */
	h = t_pkt(VSOCK_OP_RW, 20000, 1, 0, 4096, 0);
	{
		uint16_t slot = env->q[VSOCK_Q_TX].posted++ % (T_QSIZE / 2);
		uint64_t gpa = T_TXBUF + slot * (uint64_t)(VSOCK_HDR_SIZE + VSOCK_MAX_PKT_LEN);

		head = (uint16_t)(slot * 2);
		memcpy(t_ptr(gpa), &h, VSOCK_HDR_SIZE);
		t_desc(VSOCK_Q_TX)[head] = (struct virtq_desc){ gpa, VSOCK_HDR_SIZE, 0, 0 };
		t_publish(VSOCK_Q_TX, head);
	}
	ck_assert(t_quiet(VSOCK_Q_TX, 200));
	/* Buffers arrive: all replies in order, then the waiting packet's. */
	t_post_rx(32);
	for (unsigned i = 0; i < VSOCK_REPLY_MAX; i++) {
		t_recv(&r, NULL);
		ck_assert_uint_eq(r.op, VSOCK_OP_RST);
		ck_assert_uint_eq(r.dst_port, 10000 + i);
	}
	ck_assert_uint_eq(t_wait_used(VSOCK_Q_TX).id, head);
	t_recv(&r, NULL);
	ck_assert_uint_eq(r.dst_port, 20000);
}
END_TEST

/* A hostile driver: random headers (often nearly valid) and random chain
 * shapes. The device must keep serving, answer well-formed requests after,
 * and keep no host connection it cannot account for. */
START_TEST(random_packets_do_not_break_the_device)
{
	static uint8_t payload[512];
	char path[128];
	struct vsock_hdr h, r;
	unsigned seed = 12345, responses = 0;
	int l;

	snprintf(path, sizeof(path), "%s_702", env->uds);
	l = t_listen(path);
	t_start();
	t_post_rx(32);
	for (unsigned i = 0; i < 3000; i++) {
		uint32_t len = rand_r(&seed) % 2 ? 0 : (uint32_t)rand_r(&seed) % sizeof(payload);

		h = t_pkt((uint16_t)(rand_r(&seed) % 9), (uint32_t)rand_r(&seed) % 4,
			  rand_r(&seed) % 2 ? 702 : (uint32_t)rand_r(&seed) % 1000,
			  rand_r(&seed) % 4 ? len : (uint32_t)rand_r(&seed), (uint32_t)rand_r(&seed) % 70000,
			  (uint32_t)rand_r(&seed));
		if (rand_r(&seed) % 8 == 0)
			h.type = (uint16_t)rand_r(&seed);
		if (rand_r(&seed) % 8 == 0)
			h.src_cid = (uint64_t)rand_r(&seed);
		for (unsigned k = 0; k < len; k++)
			payload[k] = (uint8_t)rand_r(&seed);
		t_send(&h, payload, len);
		/* Take whatever the device answered so the ring keeps moving. */
		while (!t_quiet(VSOCK_Q_RX, 0)) {
			t_recv(&r, NULL);
			responses += r.op == VSOCK_OP_RESPONSE;
		}
		for (;;) {
			struct pollfd p = { .fd = l, .events = POLLIN };

			if (poll(&p, 1, 0) != 1)
				break;
			close(accept(l, NULL, NULL));
		}
	}
	/* Some requests were well-formed enough to connect. */
	ck_assert_uint_gt(responses, 10);
	ck_assert_uint_le(vsock_dev_nconns(&env->d), 4);
	/* Still a working device: a fresh, well-formed connection. */
	h = t_pkt(VSOCK_OP_REQUEST, 999, 702, 0, 4096, 0);
	t_send(&h, NULL, 0);
	do
		t_recv(&r, NULL);
	while (r.dst_port != 999);
	ck_assert_uint_eq(r.op, VSOCK_OP_RESPONSE);
	close(l);
	unlink(path);
}
END_TEST

static double t_cpu_seconds(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
	       (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* Host clients arrive while the process has no fd left: accept4 fails with
 * EMFILE and the listener stays readable. The device must not spin on it,
 * and must take the clients once fds are free again. */
START_TEST(out_of_fds_pauses_the_listener)
{
	struct rlimit saved, tight;
	int c[3];
	double cpu;

	t_start();
	for (int i = 0; i < 3; i++) {
		c[i] = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		ck_assert_int_ge(c[i], 0);
	}
	ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &saved), 0);
	tight = saved;
	tight.rlim_cur = (rlim_t)(c[2] + 1); /* no fd free above the ones open */
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &tight), 0);
	for (int i = 0; i < 3; i++) {
		struct sockaddr_un sa = { .sun_family = AF_UNIX };

		snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", env->uds);
		ck_assert_int_eq(connect(c[i], (struct sockaddr *)&sa, sizeof(sa)), 0);
	}
	cpu = t_cpu_seconds();
	nanosleep(&(struct timespec){ .tv_sec = 1 }, NULL);
	cpu = t_cpu_seconds() - cpu;
	ck_assert_uint_eq(vsock_dev_nconns(&env->d), 0);
	ck_assert_msg(cpu < 0.1, "the device spun on a failing accept: %.3f s of CPU in 1 s", cpu);
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &saved), 0);
	for (int i = 0; i < 200 && vsock_dev_nconns(&env->d) < 3; i++)
		nanosleep(&(struct timespec){ .tv_nsec = 50 * 1000000 }, NULL);
	ck_assert_uint_eq(vsock_dev_nconns(&env->d), 3);
	for (int i = 0; i < 3; i++)
		close(c[i]);
}
END_TEST

static Suite *t_suite(void)
{
	Suite *s = suite_create("virtio_vsock");
	TCase *tc = tcase_create("device");

	tcase_add_checked_fixture(tc, t_setup, t_teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, config_and_transport_reset);
	tcase_add_test(tc, rst_for_unknown_and_malformed_packets);
	tcase_add_test(tc, guest_connects_to_a_host_port);
	tcase_add_test(tc, host_connects_to_a_guest_port);
	tcase_add_test(tc, host_data_waits_for_guest_credit);
	tcase_add_test(tc, guest_overrun_and_hostile_host_clients);
	tcase_add_test(tc, reset_closes_connections_and_owes_a_new_transport_reset);
	tcase_add_test(tc, tx_waits_while_replies_are_full);
	tcase_add_test(tc, random_packets_do_not_break_the_device);
	tcase_add_test(tc, out_of_fds_pauses_the_listener);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_run(t_suite());
}

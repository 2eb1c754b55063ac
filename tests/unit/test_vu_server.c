/*
 * vhost-user back-end server: every handler and each malformed class,
 * against a raw front-end on a socketpair (or a real socket), with a test
 * device model that records what the server asks of it.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cvmm/log.h"
#include "vhost/backend/vu_server.h"
#include "fake_vdev.h"
#include "vu_peer.h"
#include "check_run.h"

#define TQ FAKE_QUEUES
#define TQ_MAX 1024
#define TCFG FAKE_CONFIG_MAX
#define MEM_SIZE (1u << 20)
#define UA 0x700000000000ULL   /* the front-end's address of guest address 0 */

/* ---- test device model (fake_vdev.h, set up as a block-ish device) ---- */

#define TFEAT (VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_F_EVENT_IDX) | \
	       VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC) | VIRTIO_BIT(5))
#define PFEAT VU_BIT(VHOST_USER_F_PROTOCOL_FEATURES)

static struct fake_vdev *tdev_new(void)
{
	struct fake_vdev *t = fake_vdev_new(2);

	t->dev.host_features = TFEAT;
	t->dev.queue_size_max = TQ_MAX;
	t->dev.config_size = TCFG;
	t->dev.mem = NULL;         /* the server's to set */
	for (int i = 0; i < TCFG; i++)
		t->config[i] = (uint8_t)(0xa0 + i);
	return t;
}

/* ---- fixture: server on a socketpair, serving in a thread ---- */

static struct fake_vdev *td;
static struct vu_server srv;
static int fe = -1, stop_fd = -1;
static pthread_t srv_thread;
static bool srv_running;
static int srv_result;

static void *serve_thread(void *arg)
{
	srv_result = vu_server_serve_conn(&srv, (int)(intptr_t)arg, stop_fd);
	return NULL;
}

static void start_serving(void)
{
	int sv[2];

	ck_assert_int_eq(vu_peer_socketpair(sv), 0);
	fe = sv[1];
	ck_assert_int_eq(pthread_create(&srv_thread, NULL, serve_thread, (void *)(intptr_t)sv[0]), 0);
	srv_running = true;
}

/* Closes the front-end and waits until the server has ended the session. */
static void stop_serving(void)
{
	if (fe >= 0)
		close(fe);
	fe = -1;
	if (srv_running)
		pthread_join(srv_thread, NULL);
	srv_running = false;
}

static void setup_pf(uint64_t pfeatures)
{
	struct vu_server_config cfg = { .socket_path = NULL, .protocol_features = pfeatures };

	log_set_level(LOG_ERR);
	td = tdev_new();
	ck_assert_int_eq(vu_server_init(&srv, &td->dev, &cfg), 0);
	stop_fd = eventfd(0, EFD_CLOEXEC);
	start_serving();
}

static void setup(void)
{
	setup_pf(VU_SERVER_PROTOCOL_FEATURES);
}

static void teardown(void)
{
	stop_serving();
	vu_server_destroy(&srv);
	fake_vdev_free(td);
	close(stop_fd);
}

/* ---- front-end helpers ---- */

static void ok(uint32_t req, const void *p, uint32_t size, const int *fds, unsigned nfds)
{
	ck_assert_msg(vu_peer_call(fe, req, p, size, fds, nfds) == 0, "%s was refused",
		      vu_msg_request_name(req));
}

static void fails(uint32_t req, const void *p, uint32_t size, const int *fds, unsigned nfds)
{
	ck_assert_msg(vu_peer_call(fe, req, p, size, fds, nfds) > 0, "%s was accepted",
		      vu_msg_request_name(req));
}

static uint64_t get_u64(uint32_t req)
{
	struct vu_peer_reply rep;
	uint64_t v;

	ck_assert_int_eq(vu_peer_get(fe, req, NULL, 0, &rep), 0);
	ck_assert_uint_eq(rep.hdr.size, 8);
	memcpy(&v, rep.payload, 8);
	return v;
}

static void set_u64(uint32_t req, uint64_t v)
{
	ok(req, &v, 8, NULL, 0);
}

static void negotiate(uint64_t features, uint64_t pfeatures)
{
	set_u64(VHOST_USER_SET_FEATURES, features);
	if (features & PFEAT)
		set_u64(VHOST_USER_SET_PROTOCOL_FEATURES, pfeatures);
}

static int memfd = -1;
static uint8_t *guest;

static struct vu_mem_region region(uint64_t gpa, uint64_t size, uint64_t ua, uint64_t off)
{
	return (struct vu_mem_region){ gpa, size, ua, off };
}

static void send_mem_table(void)
{
	struct vu_mem_table t = { .nregions = 1 };

	if (memfd < 0) {
		memfd = vu_peer_memfd(MEM_SIZE);
		guest = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
		ck_assert_ptr_ne(guest, MAP_FAILED);
	}
	t.regions[0] = region(0, MEM_SIZE, UA, 0);
	ok(VHOST_USER_SET_MEM_TABLE, &t, 8 + 32, &memfd, 1);
}

static uint64_t ring_ua(unsigned q)
{
	return UA + 0x10000 + q * 0x40000ULL;
}

static struct vu_vring_addr ring_addr(unsigned q)
{
	uint64_t b = ring_ua(q);

	return (struct vu_vring_addr){ .index = q, .desc_user_addr = b,
				       .avail_user_addr = b + 0x10000,
				       .used_user_addr = b + 0x20000 };
}

static int kick_fd_of[TQ] = { -1, -1 }, call_fd_of[TQ] = { -1, -1 };

/* NUM, BASE, ADDR, KICK, CALL; enable when asked. */
static void ring_setup(unsigned q, uint32_t num, uint32_t base, bool enable)
{
	struct vu_vring_state st = { q, num };
	struct vu_vring_addr a = ring_addr(q);
	uint64_t v = q;

	ok(VHOST_USER_SET_VRING_NUM, &st, 8, NULL, 0);
	st.num = base;
	ok(VHOST_USER_SET_VRING_BASE, &st, 8, NULL, 0);
	ok(VHOST_USER_SET_VRING_ADDR, &a, 40, NULL, 0);
	if (kick_fd_of[q] < 0) {
		kick_fd_of[q] = vu_peer_eventfd();
		call_fd_of[q] = vu_peer_eventfd();
	}
	ok(VHOST_USER_SET_VRING_CALL, &v, 8, &call_fd_of[q], 1);
	ok(VHOST_USER_SET_VRING_KICK, &v, 8, &kick_fd_of[q], 1);
	if (enable) {
		st.num = 1;
		ok(VHOST_USER_SET_VRING_ENABLE, &st, 8, NULL, 0);
	}
}

static uint32_t get_vring_base(unsigned q)
{
	struct vu_vring_state st = { q, 0 };
	struct vu_peer_reply rep;

	ck_assert_int_eq(vu_peer_get(fe, VHOST_USER_GET_VRING_BASE, &st, 8, &rep), 0);
	ck_assert_uint_eq(rep.hdr.size, 8);
	memcpy(&st, rep.payload, 8);
	ck_assert_uint_eq(st.index, q);
	return st.num;
}

#define ALL_PF VU_SERVER_PROTOCOL_FEATURES

/* ---- features ---- */

START_TEST(features_offer_and_subset)
{
	struct vu_peer_reply rep;
	uint64_t v;

	ck_assert_uint_eq(get_u64(VHOST_USER_GET_FEATURES), TFEAT | PFEAT);
	/* NEED_REPLY on a request with its own reply: that reply only. */
	ck_assert_int_eq(vu_peer_send(fe, VHOST_USER_GET_FEATURES, VU_VERSION | VU_FLAG_NEED_REPLY,
				      NULL, 0, NULL, 0), 0);
	ck_assert_int_eq(vu_peer_read(fe, &rep, 5000), 0);
	memcpy(&v, rep.payload, 8);
	ck_assert_uint_eq(v, TFEAT | PFEAT);
	ck_assert_int_eq(vu_peer_read(fe, &rep, 100), -2);
	fails(VHOST_USER_SET_FEATURES, &(uint64_t){ TFEAT | VIRTIO_BIT(40) }, 8, NULL, 0);
	ck_assert_uint_eq(td->last_features, 0);
	set_u64(VHOST_USER_SET_FEATURES, VIRTIO_BIT(VIRTIO_F_VERSION_1) | PFEAT);
	ck_assert_uint_eq(td->last_features, VIRTIO_BIT(VIRTIO_F_VERSION_1));
	ck_assert_uint_eq(td->dev.features, VIRTIO_BIT(VIRTIO_F_VERSION_1));
}
END_TEST

START_TEST(access_platform_never_offered)
{
	td->dev.host_features |= VIRTIO_BIT(VIRTIO_F_ACCESS_PLATFORM);
	ck_assert_uint_eq(get_u64(VHOST_USER_GET_FEATURES), TFEAT | PFEAT);
	fails(VHOST_USER_SET_FEATURES,
	      &(uint64_t){ TFEAT | VIRTIO_BIT(VIRTIO_F_ACCESS_PLATFORM) }, 8, NULL, 0);
}
END_TEST

START_TEST(protocol_features_before_set_features)
{
	ck_assert_uint_eq(get_u64(VHOST_USER_GET_PROTOCOL_FEATURES), ALL_PF);
	fails(VHOST_USER_SET_PROTOCOL_FEATURES,
	      &(uint64_t){ VU_BIT(VHOST_USER_PROTOCOL_F_LOG_SHMFD) }, 8, NULL, 0);
	set_u64(VHOST_USER_SET_PROTOCOL_FEATURES, ALL_PF);
	ck_assert_uint_eq(srv.proto_features, ALL_PF);
}
END_TEST

START_TEST(protocol_features_limited_by_config)
{
	teardown();
	setup_pf(VU_BIT(VHOST_USER_PROTOCOL_F_MQ) | VU_BIT(VHOST_USER_PROTOCOL_F_REPLY_ACK) |
		 VU_BIT(VHOST_USER_PROTOCOL_F_LOG_SHMFD));
	/* LOG_SHMFD is not implemented by the library: never offered. */
	ck_assert_uint_eq(get_u64(VHOST_USER_GET_PROTOCOL_FEATURES),
			  VU_BIT(VHOST_USER_PROTOCOL_F_MQ) | VU_BIT(VHOST_USER_PROTOCOL_F_REPLY_ACK));
}
END_TEST

START_TEST(gated_requests_need_their_protocol_feature)
{
	negotiate(TFEAT | PFEAT, VU_BIT(VHOST_USER_PROTOCOL_F_REPLY_ACK));
	fails(VHOST_USER_SET_STATUS, &(uint64_t){ 1 }, 8, NULL, 0);
	fails(VHOST_USER_RESET_DEVICE, NULL, 0, NULL, 0);
	/* A request with its own reply cannot carry an error: dropped. */
	ck_assert_int_eq(vu_peer_send(fe, VHOST_USER_GET_QUEUE_NUM, VU_VERSION, NULL, 0, NULL, 0), 0);
	ck_assert(vu_peer_closed(fe, 5000));
}
END_TEST

START_TEST(queue_num_status_slots)
{
	negotiate(TFEAT | PFEAT, ALL_PF);
	ck_assert_uint_eq(get_u64(VHOST_USER_GET_QUEUE_NUM), TQ);
	set_u64(VHOST_USER_SET_STATUS, 0xf);
	ck_assert_uint_eq(get_u64(VHOST_USER_GET_STATUS), 0xf);
	fails(VHOST_USER_SET_STATUS, &(uint64_t){ 0x100 }, 8, NULL, 0);
	ck_assert_uint_eq(get_u64(VHOST_USER_GET_MAX_MEM_SLOTS), GMEM_MAX_REGIONS);
	ok(VHOST_USER_SET_OWNER, NULL, 0, NULL, 0);
}
END_TEST

/* ---- config space ---- */

static int get_config(uint32_t off, uint32_t size, struct vu_config *out)
{
	struct vu_config c = { .offset = off, .size = size };
	struct vu_peer_reply rep;

	ck_assert_int_eq(vu_peer_get(fe, VHOST_USER_GET_CONFIG, &c, 12 + size, &rep), 0);
	memcpy(out, rep.payload, rep.hdr.size);
	return (int)rep.hdr.size;
}

START_TEST(config_get_and_set)
{
	struct vu_config c;

	/* Not negotiated: the spec's error form, a zero-length reply. */
	ck_assert_int_eq(get_config(0, 8, &c), 0);
	negotiate(TFEAT | PFEAT, ALL_PF);
	ck_assert_int_eq(get_config(4, 8, &c), 12 + 8);
	ck_assert_uint_eq(c.offset, 4);
	ck_assert_uint_eq(c.size, 8);
	ck_assert_int_eq(memcmp(c.region, td->config + 4, 8), 0);
	/* Past the model's config: zeros, never its memory. */
	ck_assert_int_eq(get_config(TCFG - 4, 8, &c), 12 + 8);
	ck_assert_int_eq(memcmp(c.region, td->config + TCFG - 4, 4), 0);
	ck_assert_int_eq(c.region[4] | c.region[5] | c.region[6] | c.region[7], 0);
	/* Beyond the largest config space the protocol carries. */
	ck_assert_int_eq(get_config(250, 10, &c), 0);
	ck_assert_int_eq(get_config(0xfffffff0u, 32, &c), 0);

	c = (struct vu_config){ .offset = 8, .size = 2, .region = { 1, 2 } };
	ok(VHOST_USER_SET_CONFIG, &c, 12 + 2, NULL, 0);
	ck_assert_int_eq(td->writes, 1);
	ck_assert_uint_eq(td->woff, 8);
	ck_assert_uint_eq(td->wlen, 2);
	ck_assert_uint_eq(td->wbuf[1], 2);
	c.offset = TCFG - 1;
	fails(VHOST_USER_SET_CONFIG, &c, 12 + 2, NULL, 0);
	c.offset = 0;
	c.flags = 7;
	fails(VHOST_USER_SET_CONFIG, &c, 12 + 2, NULL, 0);
	ck_assert_int_eq(td->writes, 1);
}
END_TEST

/* ---- rings ---- */

START_TEST(ring_bring_up_and_base)
{
	negotiate(TFEAT | PFEAT, ALL_PF);
	send_mem_table();
	ring_setup(0, 256, 5, false);
	/* Protocol features negotiated: disabled until SET_VRING_ENABLE. */
	ck_assert_int_eq(td->started[0], 0);
	ok(VHOST_USER_SET_VRING_ENABLE, &(struct vu_vring_state){ 0, 1 }, 8, NULL, 0);
	ck_assert_int_eq(td->started[0], 1);
	ck_assert_uint_eq(td->at_start[0].size, 256);
	ck_assert_uint_eq(td->at_start[0].last_avail, 5);
	ck_assert(td->at_start[0].event_idx);
	ck_assert(td->at_start[0].indirect);
	ck_assert_int_ge(td->at_start[0].kick, 0);
	ck_assert_int_ge(td->at_start[0].call, 0);
	ck_assert_ptr_eq(td->vqs[0].desc, gmem_ptr(&srv.mem, 0x10000, 1));
	ck_assert_ptr_eq(td->vqs[0].avail, gmem_ptr(&srv.mem, 0x20000, 1));
	ck_assert_ptr_eq(td->vqs[0].used, gmem_ptr(&srv.mem, 0x30000, 1));

	/* The device made progress; GET_VRING_BASE stops it and reports it. */
	td->vqs[0].last_avail_idx = 9;
	ck_assert_uint_eq(get_vring_base(0), 9);
	ck_assert_int_eq(td->stopped[0], 1);
	/* Stopped until a new kick fd arrives. */
	ok(VHOST_USER_SET_VRING_ENABLE, &(struct vu_vring_state){ 0, 1 }, 8, NULL, 0);
	ck_assert_int_eq(td->started[0], 1);
	ok(VHOST_USER_SET_VRING_KICK, &(uint64_t){ 0 }, 8, &kick_fd_of[0], 1);
	ck_assert_int_eq(td->started[0], 2);
	ck_assert_uint_eq(td->at_start[0].last_avail, 9);
	/* Disable stops it. */
	ok(VHOST_USER_SET_VRING_ENABLE, &(struct vu_vring_state){ 0, 0 }, 8, NULL, 0);
	ck_assert_int_eq(td->stopped[0], 2);
	/* No base change while running. */
	ok(VHOST_USER_SET_VRING_ENABLE, &(struct vu_vring_state){ 0, 1 }, 8, NULL, 0);
	fails(VHOST_USER_SET_VRING_BASE, &(struct vu_vring_state){ 0, 3 }, 8, NULL, 0);
	fails(VHOST_USER_SET_VRING_NUM, &(struct vu_vring_state){ 0, 128 }, 8, NULL, 0);
}
END_TEST

START_TEST(rings_enabled_without_protocol_features)
{
	negotiate(VIRTIO_BIT(VIRTIO_F_VERSION_1), 0);
	send_mem_table();
	ring_setup(1, 64, 0, false);
	ck_assert_int_eq(td->started[1], 1);
	ck_assert(!td->at_start[1].event_idx);
	ck_assert(!td->at_start[1].indirect);
}
END_TEST

START_TEST(ring_waits_for_features)
{
	send_mem_table();
	ring_setup(0, 64, 0, true);
	ck_assert_int_eq(td->started[0], 0);
	negotiate(TFEAT | PFEAT, ALL_PF);
	ck_assert_int_eq(td->started[0], 1);
	/* Changing ring features restarts running rings with the new ones. */
	negotiate(VIRTIO_BIT(VIRTIO_F_VERSION_1) | PFEAT, ALL_PF);
	ck_assert_int_eq(td->stopped[0], 1);
	ck_assert_int_eq(td->started[0], 2);
	ck_assert(!td->at_start[0].event_idx);
}
END_TEST

START_TEST(ring_index_out_of_range)
{
	int e = vu_peer_eventfd();
	int before;
	struct vu_vring_addr a = ring_addr(0);

	negotiate(TFEAT | PFEAT, ALL_PF);
	send_mem_table();
	before = vu_peer_count_fds();
	fails(VHOST_USER_SET_VRING_NUM, &(struct vu_vring_state){ TQ, 64 }, 8, NULL, 0);
	fails(VHOST_USER_SET_VRING_BASE, &(struct vu_vring_state){ 200, 0 }, 8, NULL, 0);
	fails(VHOST_USER_SET_VRING_ENABLE, &(struct vu_vring_state){ TQ, 1 }, 8, NULL, 0);
	a.index = TQ;
	fails(VHOST_USER_SET_VRING_ADDR, &a, 40, NULL, 0);
	fails(VHOST_USER_SET_VRING_KICK, &(uint64_t){ TQ }, 8, &e, 1);
	fails(VHOST_USER_SET_VRING_CALL, &(uint64_t){ 255 }, 8, &e, 1);
	fails(VHOST_USER_SET_VRING_ERR, &(uint64_t){ TQ }, 8, &e, 1);
	/* Reserved bits above NOFD. */
	fails(VHOST_USER_SET_VRING_KICK, &(uint64_t){ 1ULL << 9 }, 8, &e, 1);
	/* The server kept none of the fds it refused. */
	ck_assert_int_eq(vu_peer_count_fds(), before);
	/* GET_VRING_BASE has its own reply: a bad index drops the connection. */
	ck_assert_int_eq(vu_peer_send(fe, VHOST_USER_GET_VRING_BASE, VU_VERSION,
				      &(struct vu_vring_state){ TQ, 0 }, 8, NULL, 0), 0);
	ck_assert(vu_peer_closed(fe, 5000));
	close(e);
}
END_TEST

START_TEST(ring_size_invalid)
{
	static const uint32_t bad[] = { 0, 3, 100, TQ_MAX * 2, 1u << 20 };

	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		fails(VHOST_USER_SET_VRING_NUM, &(struct vu_vring_state){ 0, bad[i] }, 8, NULL, 0);
	ok(VHOST_USER_SET_VRING_NUM, &(struct vu_vring_state){ 0, TQ_MAX }, 8, NULL, 0);
	fails(VHOST_USER_SET_VRING_BASE, &(struct vu_vring_state){ 0, 0x10000 }, 8, NULL, 0);
}
END_TEST

START_TEST(ring_addresses_outside_memory)
{
	struct vu_vring_addr a = ring_addr(0);

	/* No memory table yet. */
	fails(VHOST_USER_SET_VRING_ADDR, &a, 40, NULL, 0);
	negotiate(TFEAT | PFEAT, ALL_PF);
	send_mem_table();
	ok(VHOST_USER_SET_VRING_NUM, &(struct vu_vring_state){ 0, 256 }, 8, NULL, 0);
	a.desc_user_addr = UA + MEM_SIZE - 16;          /* runs off the end */
	fails(VHOST_USER_SET_VRING_ADDR, &a, 40, NULL, 0);
	a.desc_user_addr = UA - 0x1000;                 /* before the region */
	fails(VHOST_USER_SET_VRING_ADDR, &a, 40, NULL, 0);
	a = ring_addr(0);
	a.used_user_addr = UA + MEM_SIZE - 8;
	fails(VHOST_USER_SET_VRING_ADDR, &a, 40, NULL, 0);
	a = ring_addr(0);
	a.desc_user_addr += 8;                          /* misaligned */
	fails(VHOST_USER_SET_VRING_ADDR, &a, 40, NULL, 0);
	a = ring_addr(0);
	a.flags = 2;                                    /* unknown flag */
	fails(VHOST_USER_SET_VRING_ADDR, &a, 40, NULL, 0);
	a.flags = 1;                                    /* LOG: address ignored */
	a.log_guest_addr = ~0ULL;
	ok(VHOST_USER_SET_VRING_ADDR, &a, 40, NULL, 0);
}
END_TEST

START_TEST(mem_table_bad_regions)
{
	struct vu_mem_table t = { .nregions = 2 };
	int small = vu_peer_memfd(4096), ev = vu_peer_eventfd();
	int fds[2];

	send_mem_table();
	fds[0] = fds[1] = memfd;
	/* Overlapping guest ranges. */
	t.regions[0] = region(0, 0x80000, UA, 0);
	t.regions[1] = region(0x40000, 0x80000, UA + 0x100000, 0);
	fails(VHOST_USER_SET_MEM_TABLE, &t, 8 + 64, fds, 2);
	/* Overlapping front-end ranges. */
	t.regions[1] = region(0x80000, 0x80000, UA + 0x40000, 0x80000);
	fails(VHOST_USER_SET_MEM_TABLE, &t, 8 + 64, fds, 2);
	t.nregions = 1;
	/* gpa + size wraps. */
	t.regions[0] = region(~0ULL - 0x1000, 0x80000, UA, 0);
	fails(VHOST_USER_SET_MEM_TABLE, &t, 8 + 32, fds, 1);
	/* mmap_offset + size wraps. */
	t.regions[0] = region(0, 0x80000, UA, ~0ULL - 0x100);
	fails(VHOST_USER_SET_MEM_TABLE, &t, 8 + 32, fds, 1);
	/* Larger than the file behind it. */
	t.regions[0] = region(0, MEM_SIZE, UA, 0);
	fails(VHOST_USER_SET_MEM_TABLE, &t, 8 + 32, &small, 1);
	t.regions[0] = region(0, 0x1000, UA, MEM_SIZE);
	fails(VHOST_USER_SET_MEM_TABLE, &t, 8 + 32, fds, 1);
	/* Empty region; a region on something that is not a file. */
	t.regions[0] = region(0, 0, UA, 0);
	fails(VHOST_USER_SET_MEM_TABLE, &t, 8 + 32, fds, 1);
	t.regions[0] = region(0, 0x1000, UA, 0);
	fails(VHOST_USER_SET_MEM_TABLE, &t, 8 + 32, &ev, 1);
	/* The table in force is untouched by the refused ones. */
	ck_assert_uint_eq(srv.mem.nregions, 1);
	ck_assert_uint_eq(srv.mem.regions[0].size, MEM_SIZE);
	/* Two good regions, with an mmap offset. */
	t.nregions = 2;
	t.regions[0] = region(0, 0x80000, UA, 0);
	t.regions[1] = region(0x100000, 0x80000, UA + 0x80000, 0x80000);
	ok(VHOST_USER_SET_MEM_TABLE, &t, 8 + 64, fds, 2);
	ck_assert_uint_eq(srv.mem.nregions, 2);
	guest[0x80010] = 0x5a;
	ck_assert_uint_eq(*(uint8_t *)gmem_ptr(&srv.mem, 0x100010, 1), 0x5a);
	close(small);
	close(ev);
}
END_TEST

START_TEST(mem_table_change_restarts_rings)
{
	negotiate(TFEAT | PFEAT, ALL_PF);
	send_mem_table();
	ring_setup(0, 256, 0, true);
	ck_assert_int_eq(td->started[0], 1);
	td->vqs[0].last_avail_idx = 17;
	send_mem_table();
	ck_assert_int_eq(td->stopped[0], 1);
	ck_assert_int_eq(td->started[0], 2);
	ck_assert_uint_eq(td->at_start[0].last_avail, 17);
	ck_assert_ptr_eq(td->vqs[0].mem, &srv.mem);
}
END_TEST

START_TEST(call_fd_swapped_while_stopped)
{
	int e = vu_peer_eventfd();

	negotiate(TFEAT | PFEAT, ALL_PF);
	send_mem_table();
	ring_setup(0, 256, 0, true);
	ok(VHOST_USER_SET_VRING_CALL, &(uint64_t){ 0 }, 8, &e, 1);
	ck_assert_int_eq(td->stopped[0], 1);
	ck_assert_int_eq(td->started[0], 2);
	ck_assert_int_eq(td->vqs[0].call_fd, srv.queues[0].call_fd);
	/* NOFD: no call fd at all. */
	ok(VHOST_USER_SET_VRING_CALL, &(uint64_t){ VU_VRING_NOFD_MASK }, 8, NULL, 0);
	ck_assert_int_eq(td->at_start[0].call, -1);
	/* A kick without fd asks for polling, which is refused. */
	fails(VHOST_USER_SET_VRING_KICK, &(uint64_t){ VU_VRING_NOFD_MASK }, 8, NULL, 0);
	ck_assert_int_eq(srv.queues[0].started, false);
	close(e);
}
END_TEST

/* A ring the driver broke is reported on the error fd the front-end gave
 * (SET_VRING_ERR). The model's thread is played by this one: it pops the
 * malformed chain (a descriptor chained to itself). */
/* Ring 0 (at guest address gpa) gets a chain whose descriptor points at
 * itself: the ring core refuses it and breaks the ring. */
static void post_looping_chain(uint64_t gpa)
{
	struct virtq_desc *desc = (struct virtq_desc *)(void *)(guest + gpa);
	struct virtq_avail *avail = (struct virtq_avail *)(void *)(guest + gpa + 0x10000);

	desc[0] = (struct virtq_desc){ .addr = 0x1000, .len = 16, .flags = VIRTQ_DESC_F_NEXT, .next = 0 };
	avail->ring[0] = 0;
	avail->idx = 1;
}

START_TEST(broken_ring_signals_error_fd)
{
	uint64_t gpa = ring_ua(0) - UA;
	struct virtq_chain *c = malloc(sizeof(*c));
	struct pollfd p;
	uint64_t n;
	int e = vu_peer_eventfd();

	negotiate(TFEAT | PFEAT, ALL_PF);
	send_mem_table();
	ring_setup(0, 256, 0, false);
	ok(VHOST_USER_SET_VRING_ERR, &(uint64_t){ 0 }, 8, &e, 1);
	ok(VHOST_USER_SET_VRING_ENABLE, &(struct vu_vring_state){ 0, 1 }, 8, NULL, 0);
	ck_assert(srv.queues[0].started);
	post_looping_chain(gpa);
	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(virtq_pop(&td->vqs[0], c), -EIO);
	p = (struct pollfd){ .fd = e, .events = POLLIN };
	ck_assert_int_eq(poll(&p, 1, 0), 1);
	ck_assert_int_eq(read(e, &n, sizeof(n)), sizeof(n));
	free(c);
	close(e);
}
END_TEST

/* The front-end made its error fd blocking and filled its counter: the
 * broken ring is reported without the worker waiting on that fd. */
START_TEST(broken_ring_error_fd_full_and_blocking)
{
	uint64_t gpa = ring_ua(0) - UA, full = 0xfffffffffffffffeULL, n;
	struct virtq_chain *c = malloc(sizeof(*c));
	int e = eventfd(0, EFD_CLOEXEC);   /* blocking, as a hostile front-end may make it */

	ck_assert_int_eq(write(e, &full, sizeof(full)), sizeof(full));
	negotiate(TFEAT | PFEAT, ALL_PF);
	send_mem_table();
	ring_setup(0, 256, 0, false);
	ok(VHOST_USER_SET_VRING_ERR, &(uint64_t){ 0 }, 8, &e, 1);
	/* The server made the shared file non-blocking; the front-end undoes it. */
	ck_assert_int_eq(fcntl(e, F_SETFL, fcntl(e, F_GETFL) & ~O_NONBLOCK), 0);
	ok(VHOST_USER_SET_VRING_ENABLE, &(struct vu_vring_state){ 0, 1 }, 8, NULL, 0);
	post_looping_chain(gpa);
	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(virtq_pop(&td->vqs[0], c), -EIO);
	ck_assert(!(fcntl(e, F_GETFL) & O_NONBLOCK));
	ck_assert_int_eq(read(e, &n, sizeof(n)), sizeof(n));
	ck_assert_uint_eq(n, full);
	free(c);
	close(e);
}
END_TEST

START_TEST(ring_fds_must_be_eventfds)
{
	int pipefd[2], sv[2];
	int blocking = eventfd(0, EFD_CLOEXEC);
	int before;

	ck_assert_int_eq(pipe2(pipefd, O_CLOEXEC), 0);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	negotiate(TFEAT | PFEAT, ALL_PF);
	send_mem_table();
	ring_setup(0, 256, 0, true);
	before = vu_peer_count_fds();
	/* A pipe as call fd would block the worker once full; a socket whose
	 * peer closed as kick fd would report EOF for ever. */
	fails(VHOST_USER_SET_VRING_CALL, &(uint64_t){ 0 }, 8, &pipefd[1], 1);
	fails(VHOST_USER_SET_VRING_KICK, &(uint64_t){ 0 }, 8, &sv[0], 1);
	fails(VHOST_USER_SET_VRING_ERR, &(uint64_t){ 0 }, 8, &pipefd[1], 1);
	ck_assert_int_eq(vu_peer_count_fds(), before);
	/* The ring kept its eventfds and still runs. */
	ck_assert(srv.queues[0].started);
	/* A blocking eventfd is accepted and made non-blocking. */
	ok(VHOST_USER_SET_VRING_CALL, &(uint64_t){ 0 }, 8, &blocking, 1);
	ck_assert(fcntl(blocking, F_GETFL) & O_NONBLOCK);
	close(blocking);
	close(pipefd[0]);
	close(pipefd[1]);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

START_TEST(queue_start_failure_reported)
{
	negotiate(TFEAT | PFEAT, ALL_PF);
	send_mem_table();
	td->start_result = -EIO;
	ring_setup(0, 256, 0, false);
	fails(VHOST_USER_SET_VRING_ENABLE, &(struct vu_vring_state){ 0, 1 }, 8, NULL, 0);
	ck_assert(!srv.queues[0].started);
	td->start_result = 0;
	ok(VHOST_USER_SET_VRING_ENABLE, &(struct vu_vring_state){ 0, 1 }, 8, NULL, 0);
	ck_assert(srv.queues[0].started);
}
END_TEST

START_TEST(add_and_remove_regions)
{
	struct vu_mem_single one = { 0 };
	int small = vu_peer_memfd(4096), before;

	negotiate(TFEAT | PFEAT, ALL_PF);
	if (memfd < 0)
		memfd = vu_peer_memfd(MEM_SIZE);
	one.region = region(0, 0x80000, UA, 0);
	ok(VHOST_USER_ADD_MEM_REG, &one, 40, &memfd, 1);
	one.region = region(0x80000, 0x80000, UA + 0x80000, 0x80000);
	ok(VHOST_USER_ADD_MEM_REG, &one, 40, &memfd, 1);
	ck_assert_uint_eq(srv.mem.nregions, 2);
	/* Overlap, too small a file. */
	one.region = region(0x40000, 0x1000, UA + 0x200000, 0);
	fails(VHOST_USER_ADD_MEM_REG, &one, 40, &memfd, 1);
	one.region = region(0x200000, 0x10000, UA + 0x200000, 0);
	fails(VHOST_USER_ADD_MEM_REG, &one, 40, &small, 1);
	ck_assert_uint_eq(srv.mem.nregions, 2);
	/* Remove; the fd an old front-end sends along is closed unused. */
	before = vu_peer_count_fds();
	one.region = region(0, 0x80000, UA, 12345);
	ok(VHOST_USER_REM_MEM_REG, &one, 40, &small, 1);
	ck_assert_int_eq(vu_peer_count_fds(), before);
	ck_assert_uint_eq(srv.mem.nregions, 1);
	fails(VHOST_USER_REM_MEM_REG, &one, 40, NULL, 0);
	/* The same region added twice (once per vhost device of one front-end)
	 * is mapped once, and stays until both copies are removed. */
	one.region = region(0x80000, 0x80000, UA + 0x80000, 0x80000);
	before = vu_peer_count_fds();
	ok(VHOST_USER_ADD_MEM_REG, &one, 40, &memfd, 1);
	ck_assert_int_eq(vu_peer_count_fds(), before);
	ck_assert_uint_eq(srv.mem.nregions, 1);
	ok(VHOST_USER_REM_MEM_REG, &one, 40, NULL, 0);
	ck_assert_uint_eq(srv.mem.nregions, 1);
	ok(VHOST_USER_REM_MEM_REG, &one, 40, NULL, 0);
	ck_assert_uint_eq(srv.mem.nregions, 0);
	close(small);
}
END_TEST

/* ---- inflight ---- */

START_TEST(inflight_get_set_and_attach)
{
	struct vu_inflight in = { .num_queues = TQ, .queue_size = 256 };
	struct vu_peer_reply rep;
	struct vu_inflight got;
	struct stat st;
	size_t per = virtq_inflight_size(256);
	struct virtq_inflight *reg;

	negotiate(TFEAT | PFEAT, ALL_PF);
	ck_assert_int_eq(vu_peer_get(fe, VHOST_USER_GET_INFLIGHT_FD, &in, sizeof(in), &rep), 0);
	ck_assert_uint_eq(rep.hdr.size, sizeof(got));
	ck_assert_uint_eq(rep.nfds, 1);
	memcpy(&got, rep.payload, sizeof(got));
	ck_assert_uint_eq(got.mmap_size, TQ * per);
	ck_assert_uint_eq(got.mmap_offset, 0);
	ck_assert_int_eq(fstat(rep.fds[0], &st), 0);
	ck_assert_uint_eq((uint64_t)st.st_size, TQ * per);
	/* Sealed: the front-end cannot shrink it under the back-end. */
	ck_assert_int_lt(ftruncate(rep.fds[0], 16), 0);

	send_mem_table();
	ring_setup(0, 256, 0, true);
	ck_assert(td->at_start[0].inflight);
	reg = mmap(NULL, TQ * per, PROT_READ | PROT_WRITE, MAP_SHARED, rep.fds[0], 0);
	ck_assert_ptr_ne(reg, MAP_FAILED);
	ck_assert_uint_eq(reg->version, 1);
	ck_assert_uint_eq(reg->desc_num, 256);
	/* Queue 1's region starts one queue size later. */
	ring_setup(1, 256, 0, true);
	ck_assert_uint_eq(((struct virtq_inflight *)(void *)((uint8_t *)reg + per))->version, 1);

	/* Replacing the region under running rings is refused. */
	ck_assert_int_eq(vu_peer_call(fe, VHOST_USER_SET_INFLIGHT_FD, &got, sizeof(got),
				      &rep.fds[0], 1) > 0, 1);
	get_vring_base(0);
	get_vring_base(1);
	/* A restarted back-end gets the region back and resumes from it. */
	ok(VHOST_USER_SET_INFLIGHT_FD, &got, sizeof(got), &rep.fds[0], 1);
	ok(VHOST_USER_SET_VRING_KICK, &(uint64_t){ 0 }, 8, &kick_fd_of[0], 1);
	ck_assert(td->at_start[0].inflight);
	munmap(reg, TQ * per);
	close(rep.fds[0]);
}
END_TEST

START_TEST(inflight_sizes_checked)
{
	struct vu_inflight in = { .num_queues = TQ, .queue_size = 256 };
	size_t per = virtq_inflight_size(256);
	int fd = vu_peer_memfd(TQ * per), small = vu_peer_memfd(per);
	int big = vu_peer_memfd(TQ * per + 4096);

	negotiate(TFEAT | PFEAT, ALL_PF);
	in.mmap_size = TQ * per;
	ok(VHOST_USER_SET_INFLIGHT_FD, &in, sizeof(in), &fd, 1);
	in.mmap_size = TQ * per - 1;                    /* not the layout's size */
	fails(VHOST_USER_SET_INFLIGHT_FD, &in, sizeof(in), &fd, 1);
	in.mmap_size = TQ * per;
	fails(VHOST_USER_SET_INFLIGHT_FD, &in, sizeof(in), &small, 1);   /* file too small */
	in.mmap_offset = 4096;
	fails(VHOST_USER_SET_INFLIGHT_FD, &in, sizeof(in), &fd, 1);      /* past its end */
	in.mmap_offset = ~0ULL - 10;
	fails(VHOST_USER_SET_INFLIGHT_FD, &in, sizeof(in), &fd, 1);      /* wraps */
	/* Found by the vu_server fuzz target: at an offset that is not a
	 * multiple of 8 the region's 64-bit fields are misaligned. */
	in.mmap_offset = 4;
	fails(VHOST_USER_SET_INFLIGHT_FD, &in, sizeof(in), &big, 1);
	in.mmap_offset = 8;
	ok(VHOST_USER_SET_INFLIGHT_FD, &in, sizeof(in), &big, 1);
	in.mmap_offset = 0;
	in.queue_size = 100;
	fails(VHOST_USER_SET_INFLIGHT_FD, &in, sizeof(in), &fd, 1);
	in.queue_size = TQ_MAX * 2;
	fails(VHOST_USER_SET_INFLIGHT_FD, &in, sizeof(in), &fd, 1);
	in.queue_size = 256;
	in.num_queues = TQ + 1;
	fails(VHOST_USER_SET_INFLIGHT_FD, &in, sizeof(in), &fd, 1);
	in.num_queues = 0;
	fails(VHOST_USER_SET_INFLIGHT_FD, &in, sizeof(in), &fd, 1);

	/* A ring larger than the region was sized for cannot attach to it. */
	send_mem_table();
	ring_setup(0, 512, 0, false);
	fails(VHOST_USER_SET_VRING_ENABLE, &(struct vu_vring_state){ 0, 1 }, 8, NULL, 0);
	ck_assert(!srv.queues[0].started);

	/* GET_INFLIGHT_FD has its own reply: bad sizes drop the connection. */
	in = (struct vu_inflight){ .num_queues = 0, .queue_size = 256 };
	ck_assert_int_eq(vu_peer_send(fe, VHOST_USER_GET_INFLIGHT_FD, VU_VERSION, &in, sizeof(in),
				      NULL, 0), 0);
	ck_assert(vu_peer_closed(fe, 5000));
	close(fd);
	close(small);
	close(big);
}
END_TEST

/* ---- malformed input and session life cycle ---- */

/* A front-end that shrinks the file behind guest memory, then the inflight
 * region, while the back-end uses them: each time the session is dropped and
 * the server (the whole test process, without the fix: SIGBUS) serves the
 * next front-end. */
START_TEST(shrunk_shared_files_drop_the_session)
{
	struct vu_vring_state off = { 0, 0 }, on = { 0, 1 };
	struct vu_inflight in = { .num_queues = TQ, .queue_size = 256,
				  .mmap_size = TQ * virtq_inflight_size(256) };
	int inflight_fd;

	negotiate(TFEAT | PFEAT, ALL_PF);
	send_mem_table();
	ring_setup(0, 256, 0, true);
	ck_assert(srv.queues[0].started);
	ck_assert_int_eq(ftruncate(memfd, 0), 0);
	/* Restarting the ring reads its used index from guest memory. */
	ok(VHOST_USER_SET_VRING_ENABLE, &off, 8, NULL, 0);
	vu_peer_call(fe, VHOST_USER_SET_VRING_ENABLE, &on, 8, NULL, 0);
	ck_assert(vu_peer_closed(fe, 5000));
	stop_serving();
	ck_assert_uint_eq(srv.mem.nregions, 0);

	/* The next front-end, with good memory and its own inflight region. */
	memfd = -1;
	start_serving();
	negotiate(TFEAT | PFEAT, ALL_PF);
	send_mem_table();
	inflight_fd = vu_peer_memfd(in.mmap_size); /* zeros: a fresh region */
	ok(VHOST_USER_SET_INFLIGHT_FD, &in, sizeof(in), &inflight_fd, 1);
	ck_assert_int_eq(ftruncate(inflight_fd, 0), 0);
	/* Starting the ring restores from the inflight region. */
	ring_setup(0, 256, 0, true);
	ck_assert(vu_peer_closed(fe, 5000));
	stop_serving();
	close(inflight_fd);

	/* And one more, served normally. */
	start_serving();
	negotiate(TFEAT | PFEAT, ALL_PF);
	send_mem_table();
	ring_setup(0, 256, 0, true);
	ck_assert(srv.queues[0].started);
}
END_TEST

START_TEST(unknown_requests_answered)
{
	uint8_t junk[64] = { 0 };
	int e = vu_peer_eventfd();

	fails(99, junk, sizeof(junk), &e, 1);
	fails(VHOST_USER_SET_LOG_BASE, junk, 16, &e, 1);
	fails(VHOST_USER_IOTLB_MSG, junk, 24, NULL, 0);
	/* Without NEED_REPLY: ignored, the session goes on. */
	ck_assert_int_eq(vu_peer_send(fe, 77, VU_VERSION, NULL, 0, NULL, 0), 0);
	ck_assert_uint_eq(get_u64(VHOST_USER_GET_FEATURES), TFEAT | PFEAT);
	close(e);
}
END_TEST

START_TEST(wrong_payload_size_answered)
{
	fails(VHOST_USER_SET_FEATURES, &(uint32_t){ 0 }, 4, NULL, 0);
	fails(VHOST_USER_SET_VRING_NUM, &(uint64_t[2]){ 0, 0 }, 16, NULL, 0);
	fails(VHOST_USER_SET_VRING_KICK, &(uint64_t){ 0 }, 8, NULL, 0);  /* missing fd */
	ck_assert_uint_eq(get_u64(VHOST_USER_GET_FEATURES), TFEAT | PFEAT);
}
END_TEST

/* After a broken header the connection is dropped and the device reset;
 * the next front-end is served from a clean state. */
START_TEST(bad_header_drops_then_next_served)
{
	negotiate(TFEAT | PFEAT, ALL_PF);
	send_mem_table();
	ring_setup(0, 256, 0, true);
	ck_assert_int_eq(vu_peer_send(fe, VHOST_USER_GET_FEATURES, 0x3, NULL, 0, NULL, 0), 0);
	ck_assert(vu_peer_closed(fe, 5000));
	stop_serving();
	ck_assert_int_eq(td->stopped[0], 1);
	ck_assert_int_ge(td->resets, 1);
	ck_assert_uint_eq(srv.mem.nregions, 0);
	ck_assert_int_eq(srv.queues[0].kick_fd, -1);
	ck_assert_int_eq(srv.queues[0].call_fd, -1);
	ck_assert_uint_eq(srv.proto_features, 0);
	ck_assert(!srv.features_set);

	start_serving();
	ck_assert_uint_eq(get_u64(VHOST_USER_GET_FEATURES), TFEAT | PFEAT);
	negotiate(TFEAT | PFEAT, ALL_PF);
	send_mem_table();
	ring_setup(0, 256, 3, true);
	ck_assert_int_eq(td->started[0], 2);
	ck_assert_uint_eq(td->at_start[0].last_avail, 3);
	/* Reserved flag bits. */
	ck_assert_int_eq(vu_peer_send(fe, VHOST_USER_GET_FEATURES, VU_VERSION | 0x100, NULL, 0,
				      NULL, 0), 0);
	ck_assert(vu_peer_closed(fe, 5000));
}
END_TEST

START_TEST(reset_device_forgets_rings)
{
	negotiate(TFEAT | PFEAT, ALL_PF);
	send_mem_table();
	ring_setup(0, 256, 0, true);
	ok(VHOST_USER_RESET_DEVICE, NULL, 0, NULL, 0);
	ck_assert_int_eq(td->stopped[0], 1);
	ck_assert_int_eq(td->resets, 1);
	ck_assert_int_eq(srv.queues[0].kick_fd, -1);
	ck_assert_uint_eq(srv.queues[0].num, 0);
	ck_assert_uint_eq(td->dev.features, 0);
	/* Memory and protocol features stay; features must come again. */
	ck_assert_uint_eq(srv.mem.nregions, 1);
	ring_setup(0, 256, 0, true);
	ck_assert_int_eq(td->started[0], 1);
	negotiate(TFEAT | PFEAT, ALL_PF);
	ck_assert_int_eq(td->started[0], 2);
	/* RESET_OWNER: rings disabled. */
	ok(VHOST_USER_RESET_OWNER, NULL, 0, NULL, 0);
	ck_assert(!srv.queues[0].started);
	ck_assert(!srv.queues[0].enabled);
}
END_TEST

/* ---- back-end channel ---- */

static void *config_changed_thread(void *arg)
{
	vdev_config_changed(arg);
	return NULL;
}

START_TEST(config_change_on_backend_channel)
{
	int bk[2];
	struct vu_peer_reply rep;
	pthread_t t;
	uint64_t zero = 0;
	int e = vu_peer_eventfd();

	/* No channel yet: logged and dropped. */
	vdev_config_changed(&td->dev);
	negotiate(TFEAT | PFEAT, ALL_PF);
	fails(VHOST_USER_SET_BACKEND_REQ_FD, NULL, 0, &e, 1);   /* not a socket */
	ck_assert_int_eq(vu_peer_socketpair(bk), 0);
	ok(VHOST_USER_SET_BACKEND_REQ_FD, NULL, 0, &bk[0], 1);
	close(bk[0]);

	pthread_create(&t, NULL, config_changed_thread, &td->dev);
	ck_assert_int_eq(vu_peer_read(bk[1], &rep, 5000), 0);
	ck_assert_uint_eq(rep.hdr.request, VHOST_USER_BACKEND_CONFIG_CHANGE_MSG);
	ck_assert_uint_eq(rep.hdr.flags, VU_VERSION | VU_FLAG_NEED_REPLY);
	ck_assert_uint_eq(rep.hdr.size, 0);
	ck_assert_int_eq(vu_peer_send(bk[1], VHOST_USER_BACKEND_CONFIG_CHANGE_MSG,
				      VU_VERSION | VU_FLAG_REPLY, &zero, 8, NULL, 0), 0);
	pthread_join(t, NULL);

	/* From the server's own thread (a handler): no ack asked for, since the
	 * front-end's answer would need this very thread. */
	td->notify_on_write = true;
	ok(VHOST_USER_SET_CONFIG, &(struct vu_config){ .offset = 0, .size = 1 }, 12 + 1, NULL, 0);
	ck_assert_int_eq(vu_peer_read(bk[1], &rep, 5000), 0);
	ck_assert_uint_eq(rep.hdr.request, VHOST_USER_BACKEND_CONFIG_CHANGE_MSG);
	ck_assert_uint_eq(rep.hdr.flags, VU_VERSION);
	td->notify_on_write = false;

	/* Without REPLY_ACK: no ack asked for. */
	set_u64(VHOST_USER_SET_PROTOCOL_FEATURES, ALL_PF & ~VU_BIT(VHOST_USER_PROTOCOL_F_REPLY_ACK));
	vdev_config_changed(&td->dev);
	ck_assert_int_eq(vu_peer_read(bk[1], &rep, 5000), 0);
	ck_assert_uint_eq(rep.hdr.flags, VU_VERSION);
	close(bk[1]);
	close(e);
}
END_TEST

/* A device thread waits for the ack of a config change the front-end never
 * answers; the front-end then disconnects. Ending the session must not wait
 * out the ack's deadline behind the back-end channel's lock. */
START_TEST(session_end_wakes_a_pending_backend_request)
{
	struct timespec a, b;
	struct vu_peer_reply rep;
	pthread_t t;
	int bk[2];
	double took;

	negotiate(TFEAT | PFEAT, ALL_PF);
	ck_assert_int_eq(vu_peer_socketpair(bk), 0);
	ok(VHOST_USER_SET_BACKEND_REQ_FD, NULL, 0, &bk[0], 1);
	close(bk[0]);
	pthread_create(&t, NULL, config_changed_thread, &td->dev);
	ck_assert_int_eq(vu_peer_read(bk[1], &rep, 5000), 0); /* sent; never acked */
	clock_gettime(CLOCK_MONOTONIC, &a);
	stop_serving();
	pthread_join(t, NULL);
	clock_gettime(CLOCK_MONOTONIC, &b);
	took = (double)(b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9;
	ck_assert_msg(took < 3.5, "session end took %.1f s", took); /* the ack's deadline is 5 s */
	close(bk[1]);
}
END_TEST


/* ---- random input ---- */

static uint64_t rnd_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return rnd_state;
}

/* The payload size a request of this type normally has. */
static uint32_t natural_size(uint32_t req)
{
	switch (req) {
	case VHOST_USER_SET_VRING_ADDR:
	case VHOST_USER_ADD_MEM_REG:
	case VHOST_USER_REM_MEM_REG:
		return 40;
	case VHOST_USER_SET_MEM_TABLE:
		return 40;
	case VHOST_USER_GET_CONFIG:
	case VHOST_USER_SET_CONFIG:
		return 12 + 8;
	case VHOST_USER_GET_INFLIGHT_FD:
	case VHOST_USER_SET_INFLIGHT_FD:
		return 24;
	case VHOST_USER_SET_OWNER:
	case VHOST_USER_RESET_OWNER:
	case VHOST_USER_GET_PROTOCOL_FEATURES:
	case VHOST_USER_GET_QUEUE_NUM:
	case VHOST_USER_SET_BACKEND_REQ_FD:
	case VHOST_USER_RESET_DEVICE:
	case VHOST_USER_GET_MAX_MEM_SLOTS:
	case VHOST_USER_GET_STATUS:
		return 0;
	default:
		return 8;
	}
}

/* Fills a payload that is often close to valid for req, so handlers past
 * the codec are reached, and otherwise random. */
static uint32_t random_payload(uint32_t req, uint8_t *p, uint32_t max)
{
	static const uint32_t sizes[] = { 0, 8, 12, 20, 24, 40, 72, 264, 268 };
	uint32_t size = rnd() % 4 ? sizes[rnd() % 9] : (uint32_t)(rnd() % max);

	if (rnd() % 2)
		size = natural_size(req);
	uint64_t ua = UA + (rnd() % 4 ? (rnd() % MEM_SIZE) & ~0xfULL : rnd());

	for (uint32_t i = 0; i < size; i++)
		p[i] = (uint8_t)rnd();
	if (size >= 8 && rnd() % 2) {
		uint32_t small[2] = { (uint32_t)(rnd() % 3), 1u << (rnd() % 12) };

		memcpy(p, small, 8);
	}
	if (req == VHOST_USER_SET_VRING_ENABLE && size == 8 && rnd() % 2) {
		struct vu_vring_state st = { (uint32_t)(rnd() % 3), (uint32_t)(rnd() % 2) };

		memcpy(p, &st, 8);
	}
	if (req >= VHOST_USER_SET_VRING_KICK && req <= VHOST_USER_SET_VRING_ERR && size == 8 &&
	    rnd() % 2) {
		uint64_t v = rnd() % 3 | (rnd() % 4 ? 0 : VU_VRING_NOFD_MASK);

		memcpy(p, &v, 8);
	}
	if (req == VHOST_USER_SET_VRING_ADDR && size == 40 && rnd() % 2) {
		uint64_t a[3] = { ua, ua + 0x1000, ua + 0x2000 };

		memcpy(p + 8, a, sizeof(a));
	}
	if ((req == VHOST_USER_SET_MEM_TABLE || req == VHOST_USER_ADD_MEM_REG ||
	     req == VHOST_USER_REM_MEM_REG) && size >= 40 && rnd() % 2) {
		struct vu_mem_region r = region(rnd() % 2 ? 0 : rnd(), rnd() % 2 ? MEM_SIZE : rnd(),
						ua, rnd() % 2 ? 0 : rnd());

		if (req == VHOST_USER_SET_MEM_TABLE)
			p[0] = 1, p[1] = p[2] = p[3] = 0;
		memcpy(p + 8, &r, sizeof(r));
	}
	if ((req == VHOST_USER_GET_CONFIG || req == VHOST_USER_SET_CONFIG) && size >= 12 &&
	    rnd() % 2) {
		uint32_t c[3] = { (uint32_t)(rnd() % 300), size - 12, (uint32_t)(rnd() % 3) };

		memcpy(p, c, sizeof(c));
	}
	return size;
}

/* Sends GET_FEATURES and drains replies up to its answer. false when the
 * server dropped the connection. */
static bool resync(void)
{
	struct vu_peer_reply rep;

	if (vu_peer_send(fe, VHOST_USER_GET_FEATURES, VU_VERSION, NULL, 0, NULL, 0))
		return false;
	for (;;) {
		if (vu_peer_read(fe, &rep, 5000))
			return false;
		for (unsigned i = 0; i < rep.nfds; i++)
			close(rep.fds[i]);
		if (rep.hdr.request == VHOST_USER_GET_FEATURES && rep.hdr.size == 8) {
			uint64_t v;

			memcpy(&v, rep.payload, 8);
			if (v == (TFEAT | PFEAT))
				return true;
		}
	}
}

static void fuzz_session_setup(void)
{
	negotiate(TFEAT | PFEAT, ALL_PF);
	send_mem_table();
	ring_setup(0, 256, 0, true);
	ring_setup(1, 128, 0, false);
}

START_TEST(random_messages_never_break_the_server)
{
	int pool[4], bk[2], before, drops = 0;
	uint8_t p[512];

	ck_assert_int_eq(vu_peer_socketpair(bk), 0);
	pool[0] = vu_peer_memfd(MEM_SIZE);
	pool[1] = vu_peer_eventfd();
	pool[2] = vu_peer_eventfd();
	pool[3] = bk[0];
	/* Each session starts from a working device (memory, a running ring)
	 * so random messages reach the handlers' deeper paths. */
	fuzz_session_setup();
	/* Count with no session up: the server's epoll fd and both socket ends
	 * come and go with each session. */
	stop_serving();
	before = vu_peer_count_fds();
	start_serving();
	fuzz_session_setup();
	for (int i = 0; i < 20000; i++) {
		/* Not GET_FEATURES: its reply is resync()'s marker. */
		uint32_t req = 2 + (uint32_t)(rnd() % 43);
		uint32_t flags = VU_VERSION | (rnd() % 2 ? VU_FLAG_NEED_REPLY : 0);
		uint32_t size;
		unsigned nfds = rnd() % 3 ? (unsigned)(rnd() % 2) : (unsigned)(rnd() % 4);
		int fds[4];

		if (rnd() % 64 == 0)
			flags ^= 1u << (rnd() % 32);   /* occasionally a broken header */
		size = random_payload(req, p, sizeof(p));
		for (unsigned k = 0; k < nfds; k++)
			fds[k] = pool[rnd() % 4];
		ck_assert_msg(vu_peer_send(fe, req, flags, p, size, fds, nfds) == 0,
			      "iteration %d: %s size %u", i, vu_msg_request_name(req), size);
		if (!resync()) {
			/* Dropped: the next front-end must be served normally. */
			drops++;
			stop_serving();
			start_serving();
			fuzz_session_setup();
		}
	}
	stop_serving();
	/* Every fd the server received was closed or released with the session. */
	ck_assert_int_eq(vu_peer_count_fds(), before);
	/* The run went deep enough to matter: rings started and were stopped
	 * by random messages, connections were dropped and renewed. */
	ck_assert_int_gt(drops, 0);
	ck_assert_int_gt(td->started[0], drops);
	ck_assert_int_gt(td->started[1], 5);
	ck_assert_int_eq(srv.mem.nregions, 0);
	for (int k = 0; k < 3; k++)
		close(pool[k]);
	close(bk[0]);
	close(bk[1]);
}
END_TEST

/* ---- sockets: listening, client mode, fd leaks ---- */

static char sock_path[108];
static struct vu_server lsrv;
static struct fake_vdev *ltd;
static int lstop = -1;
static pthread_t lthread;

static void *run_thread(void *arg)
{
	(void)arg;
	srv_result = vu_server_run(&lsrv, lstop);
	return NULL;
}

static void lsetup(void)
{
	log_set_level(LOG_ERR);
	snprintf(sock_path, sizeof(sock_path), "/tmp/cvmm-h3-vu-%d.sock", (int)getpid());
	unlink(sock_path);
	ltd = tdev_new();
	lstop = eventfd(0, EFD_CLOEXEC);
}

static void lteardown(void)
{
	fake_vdev_free(ltd);
	close(lstop);
	unlink(sock_path);
}

static void lstart(bool client)
{
	struct vu_server_config cfg = { sock_path, client, VU_SERVER_PROTOCOL_FEATURES };

	ck_assert_int_eq(vu_server_init(&lsrv, &ltd->dev, &cfg), 0);
	ck_assert_int_eq(pthread_create(&lthread, NULL, run_thread, NULL), 0);
}

static void lstop_join(void)
{
	uint64_t one = 1;

	ck_assert_int_eq(write(lstop, &one, 8), 8);
	pthread_join(lthread, NULL);
	ck_assert_int_eq(srv_result, 0);
	vu_server_destroy(&lsrv);
}

/* One short session: negotiation, memory, a running ring, the back-end
 * channel, an inflight region; fds both ways. */
static void one_session(int mfd, int kick, int call, int bkfd)
{
	struct vu_mem_table t = { .nregions = 1 };
	struct vu_inflight in = { .num_queues = 1, .queue_size = 64 };
	struct vu_vring_addr a = ring_addr(0);
	struct vu_peer_reply rep;

	fe = vu_peer_connect(sock_path, 5000);
	ck_assert_int_ge(fe, 0);
	negotiate(TFEAT | PFEAT, ALL_PF);
	t.regions[0] = region(0, MEM_SIZE, UA, 0);
	ok(VHOST_USER_SET_MEM_TABLE, &t, 8 + 32, &mfd, 1);
	ok(VHOST_USER_SET_BACKEND_REQ_FD, NULL, 0, &bkfd, 1);
	ck_assert_int_eq(vu_peer_get(fe, VHOST_USER_GET_INFLIGHT_FD, &in, sizeof(in), &rep), 0);
	ck_assert_uint_eq(rep.nfds, 1);
	close(rep.fds[0]);
	ok(VHOST_USER_SET_VRING_NUM, &(struct vu_vring_state){ 0, 64 }, 8, NULL, 0);
	ok(VHOST_USER_SET_VRING_ADDR, &a, 40, NULL, 0);
	ok(VHOST_USER_SET_VRING_CALL, &(uint64_t){ 0 }, 8, &call, 1);
	ok(VHOST_USER_SET_VRING_KICK, &(uint64_t){ 0 }, 8, &kick, 1);
	ok(VHOST_USER_SET_VRING_ENABLE, &(struct vu_vring_state){ 0, 1 }, 8, NULL, 0);
	close(fe);
	fe = -1;
}

START_TEST(no_fd_leak_over_1000_sessions)
{
	int mfd = vu_peer_memfd(MEM_SIZE), kick = vu_peer_eventfd(), call = vu_peer_eventfd();
	int bk[2], before;

	ck_assert_int_eq(vu_peer_socketpair(bk), 0);
	before = vu_peer_count_fds();
	lstart(false);
	for (int i = 0; i < 1000; i++)
		one_session(mfd, kick, call, bk[0]);
	lstop_join();
	ck_assert_int_eq(ltd->started[0], 1000);
	ck_assert_int_eq(ltd->stopped[0], 1000);
	ck_assert_int_eq(vu_peer_count_fds(), before);
	close(mfd);
	close(kick);
	close(call);
	close(bk[0]);
	close(bk[1]);
}
END_TEST

START_TEST(socket_path_rules)
{
	struct vu_server_config cfg = { sock_path, false, 0 };
	struct vu_server other;
	struct sockaddr_un sa;
	struct stat st;
	int fd;

	/* A socket file left by a dead back-end is replaced. */
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	ck_assert_int_eq(vu_unix_addr(sock_path, &sa), 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	ck_assert_int_eq(vu_server_init(&lsrv, &ltd->dev, &cfg), 0);
	/* A live one is not. */
	ck_assert_int_eq(vu_server_init(&other, &ltd->dev, &cfg), -EADDRINUSE);
	vu_server_destroy(&lsrv);
	ck_assert_int_lt(stat(sock_path, &st), 0);
	/* A regular file is not a socket to take over. */
	fd = open(sock_path, O_CREAT | O_WRONLY, 0600);
	close(fd);
	ck_assert_int_eq(vu_server_init(&lsrv, &ltd->dev, &cfg), -EADDRINUSE);
	ck_assert_int_eq(stat(sock_path, &st), 0);
	unlink(sock_path);
	cfg.socket_path = "/tmp/cvmm-h3-a-very-long-path-that-does-not-fit-into-sun-path-at-all-"
			  "because-it-is-far-too-long-for-unix.sock";
	ck_assert_int_eq(vu_server_init(&lsrv, &ltd->dev, &cfg), -ENAMETOOLONG);
	cfg.socket_path = "/nonexistent-dir-h3/x.sock";
	ck_assert_int_eq(vu_server_init(&lsrv, &ltd->dev, &cfg), -ENOENT);
	/* A device model without queue ops is refused. */
	ltd->dev.ops = &(struct vdev_ops){ .name = "broken" };
	cfg.socket_path = sock_path;
	ck_assert_int_eq(vu_server_init(&lsrv, &ltd->dev, &cfg), -EINVAL);
}
END_TEST

START_TEST(client_mode_reconnects)
{
	struct sockaddr_un sa;
	int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	ck_assert_int_eq(vu_unix_addr(sock_path, &sa), 0);
	ck_assert_int_eq(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(lfd, 1), 0);
	lstart(true);
	for (int i = 0; i < 3; i++) {
		fe = accept(lfd, NULL, NULL);
		ck_assert_int_ge(fe, 0);
		ck_assert_uint_eq(get_u64(VHOST_USER_GET_FEATURES), TFEAT | PFEAT);
		close(fe);
		fe = -1;
	}
	lstop_join();
	/* The client never created (nor removes) the front-end's socket. */
	ck_assert_int_eq(access(sock_path, F_OK), 0);
	close(lfd);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("vu_server");
	TCase *tc = tcase_create("handlers");
	TCase *ts = tcase_create("sockets");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, features_offer_and_subset);
	tcase_add_test(tc, access_platform_never_offered);
	tcase_add_test(tc, protocol_features_before_set_features);
	tcase_add_test(tc, protocol_features_limited_by_config);
	tcase_add_test(tc, gated_requests_need_their_protocol_feature);
	tcase_add_test(tc, queue_num_status_slots);
	tcase_add_test(tc, config_get_and_set);
	tcase_add_test(tc, ring_bring_up_and_base);
	tcase_add_test(tc, rings_enabled_without_protocol_features);
	tcase_add_test(tc, ring_waits_for_features);
	tcase_add_test(tc, ring_index_out_of_range);
	tcase_add_test(tc, ring_size_invalid);
	tcase_add_test(tc, ring_addresses_outside_memory);
	tcase_add_test(tc, mem_table_bad_regions);
	tcase_add_test(tc, mem_table_change_restarts_rings);
	tcase_add_test(tc, call_fd_swapped_while_stopped);
	tcase_add_test(tc, ring_fds_must_be_eventfds);
	tcase_add_test(tc, queue_start_failure_reported);
	tcase_add_test(tc, broken_ring_signals_error_fd);
	tcase_add_test(tc, broken_ring_error_fd_full_and_blocking);
	tcase_add_test(tc, add_and_remove_regions);
	tcase_add_test(tc, inflight_get_set_and_attach);
	tcase_add_test(tc, inflight_sizes_checked);
	tcase_add_test(tc, shrunk_shared_files_drop_the_session);
	tcase_add_test(tc, unknown_requests_answered);
	tcase_add_test(tc, wrong_payload_size_answered);
	tcase_add_test(tc, bad_header_drops_then_next_served);
	tcase_add_test(tc, reset_device_forgets_rings);
	tcase_add_test(tc, config_change_on_backend_channel);
	tcase_add_test(tc, session_end_wakes_a_pending_backend_request);
	tcase_add_test(tc, random_messages_never_break_the_server);
	suite_add_tcase(s, tc);

	tcase_add_checked_fixture(ts, lsetup, lteardown);
	tcase_set_timeout(ts, 180);
	tcase_add_test(ts, no_fd_leak_over_1000_sessions);
	tcase_add_test(ts, socket_path_rules);
	tcase_add_test(ts, client_mode_reconnects);
	suite_add_tcase(s, ts);

	return check_run(s);
}

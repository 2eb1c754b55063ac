/*
 * The virtio-net model served by the vhost-user server, driven by a raw
 * front-end on a socketpair (tests/unit/vu_peer.c) with guest memory in a
 * memfd, and a SOCK_SEQPACKET socketpair standing in for the tap: the whole
 * back-end path of cvmm --net-backend without a tap or a real front-end.
 */
#include <check.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cvmm/log.h"
#include "devices/net/virtio_net_dev.h"
#include "vhost/backend/vu_server.h"
#include "guest_ring.h"
#include "vu_peer.h"

#define MEM_SIZE (1u << 20)
#define UA 0x700000000000ULL   /* the front-end's address of guest address 0 */
#define QSIZE 16
#define PFEAT VU_BIT(VHOST_USER_F_PROTOCOL_FEATURES)
/* What cvmm --net-backend offers (net_devtype, devices/net/net_opts.c). */
#define NET_PROTO (VU_BIT(VHOST_USER_PROTOCOL_F_MQ) | VU_BIT(VHOST_USER_PROTOCOL_F_REPLY_ACK) | \
		   VU_BIT(VHOST_USER_PROTOCOL_F_BACKEND_REQ) | VU_BIT(VHOST_USER_PROTOCOL_F_CONFIG) | \
		   VU_BIT(VHOST_USER_PROTOCOL_F_STATUS) | VU_BIT(VHOST_USER_PROTOCOL_F_RESET_DEVICE) | \
		   VU_BIT(VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS))
#define RX_BUF 0x40000
#define TX_BUF 0x80000

static struct net_dev net;
static struct vu_server srv;
static pthread_t srv_thread;
static int fe = -1, stop_fd = -1, host = -1, memfd = -1;
static int kick[2], call[2];
static uint8_t *guest;
static struct guest_ring ring[2];

static void *serve(void *arg)
{
	vu_server_serve_conn(&srv, (int)(intptr_t)arg, stop_fd);
	return NULL;
}

static uint64_t ring_gpa(unsigned q)
{
	return 0x10000 + q * 0x10000ULL;
}

static void setup(void)
{
	struct vu_server_config cfg = { .socket_path = NULL, .protocol_features = NET_PROTO };
	struct net_dev_config ncfg = { .num_pairs = 1, .queue_size = 256, .mtu = 9000 };
	uint8_t mac[6] = { 0x52, 0x54, 0, 0xaa, 0xbb, 0xcc };
	int tap[2], sv[2];

	log_set_level(LOG_ERR);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0, tap), 0);
	host = tap[1];
	ncfg.fds = &tap[0];
	ncfg.mac = mac;
	ck_assert_int_eq(net_dev_init(&net, &ncfg), 0);
	ck_assert_int_eq(vu_server_init(&srv, &net.vdev, &cfg), 0);
	stop_fd = eventfd(0, EFD_CLOEXEC);
	ck_assert_int_eq(vu_peer_socketpair(sv), 0);
	fe = sv[1];
	ck_assert_int_eq(pthread_create(&srv_thread, NULL, serve, (void *)(intptr_t)sv[0]), 0);
	memfd = vu_peer_memfd(MEM_SIZE);
	guest = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	ck_assert_ptr_ne(guest, MAP_FAILED);
	for (unsigned q = 0; q < 2; q++) {
		kick[q] = vu_peer_eventfd();
		call[q] = vu_peer_eventfd();
		guest_ring_init(&ring[q], guest, QSIZE, ring_gpa(q), ring_gpa(q) + 0x1000, ring_gpa(q) + 0x2000);
	}
}

static void teardown(void)
{
	close(fe);
	pthread_join(srv_thread, NULL);
	vu_server_destroy(&srv);
	net_dev_destroy(&net);
	close(stop_fd);
	close(host);
	for (unsigned q = 0; q < 2; q++) {
		close(kick[q]);
		close(call[q]);
	}
	munmap(guest, MEM_SIZE);
	close(memfd);
}

static void ok(uint32_t req, const void *p, uint32_t size, const int *fds, unsigned nfds)
{
	ck_assert_msg(vu_peer_call(fe, req, p, size, fds, nfds) == 0, "%s was refused",
		      vu_msg_request_name(req));
}

static uint64_t get_u64(uint32_t req)
{
	struct vu_peer_reply rep;
	uint64_t v;

	ck_assert_int_eq(vu_peer_get(fe, req, NULL, 0, &rep), 0);
	memcpy(&v, rep.payload, 8);
	return v;
}

/* Features, memory, both rings of pair 0 started. */
static void bring_up(uint64_t features)
{
	struct vu_mem_table t = { .nregions = 1 };
	uint64_t v;

	v = features | PFEAT;
	ok(VHOST_USER_SET_FEATURES, &v, 8, NULL, 0);
	v = NET_PROTO;
	ok(VHOST_USER_SET_PROTOCOL_FEATURES, &v, 8, NULL, 0);
	t.regions[0] = (struct vu_mem_region){ 0, MEM_SIZE, UA, 0 };
	ok(VHOST_USER_SET_MEM_TABLE, &t, 8 + 32, &memfd, 1);
	for (unsigned q = 0; q < 2; q++) {
		struct vu_vring_state st = { q, QSIZE };
		struct vu_vring_addr a = { .index = q, .desc_user_addr = UA + ring_gpa(q),
					   .avail_user_addr = UA + ring_gpa(q) + 0x1000,
					   .used_user_addr = UA + ring_gpa(q) + 0x2000 };

		v = q;
		ok(VHOST_USER_SET_VRING_NUM, &st, 8, NULL, 0);
		st.num = 0;
		ok(VHOST_USER_SET_VRING_BASE, &st, 8, NULL, 0);
		ok(VHOST_USER_SET_VRING_ADDR, &a, sizeof(a), NULL, 0);
		ok(VHOST_USER_SET_VRING_CALL, &v, 8, &call[q], 1);
		ok(VHOST_USER_SET_VRING_KICK, &v, 8, &kick[q], 1);
		st.num = 1;
		ok(VHOST_USER_SET_VRING_ENABLE, &st, 8, NULL, 0);
	}
}

/* One single-buffer chain on ring q, then a kick. */
static void post(unsigned q, uint64_t gpa, uint32_t len, bool writable)
{
	struct guest_buf b = { gpa, len, writable };
	uint64_t one = 1;

	guest_ring_post(&ring[q], &b, 1);
	ck_assert_int_eq(write(kick[q], &one, 8), 8);
}

static uint16_t used_idx(unsigned q)
{
	return guest_ring_used_idx(&ring[q]);
}

static bool wait_used(unsigned q, uint16_t want)
{
	return guest_ring_wait_used(&ring[q], want, 2000);
}

START_TEST(features_and_config)
{
	uint64_t f = get_u64(VHOST_USER_GET_FEATURES);
	struct vu_config c = { .offset = 0, .size = sizeof(struct virtio_net_config) };
	struct virtio_net_config nc;
	struct vu_peer_reply rep;

	ck_assert(f & PFEAT);
	ck_assert(f & VIRTIO_BIT(VIRTIO_NET_F_MRG_RXBUF));
	ck_assert(f & VIRTIO_BIT(VIRTIO_NET_F_MTU));
	ck_assert(!(f & VIRTIO_BIT(VIRTIO_NET_F_CTRL_VQ)));
	ck_assert_uint_eq(get_u64(VHOST_USER_GET_PROTOCOL_FEATURES), NET_PROTO);
	bring_up(VIRTIO_BIT(VIRTIO_F_VERSION_1));
	ck_assert_uint_eq(get_u64(VHOST_USER_GET_QUEUE_NUM), 2);
	ck_assert_int_eq(vu_peer_get(fe, VHOST_USER_GET_CONFIG, &c, VU_CONFIG_HDR_SIZE + c.size, &rep), 0);
	ck_assert_uint_eq(rep.hdr.size, VU_CONFIG_HDR_SIZE + sizeof(nc));
	memcpy(&nc, rep.payload + VU_CONFIG_HDR_SIZE, sizeof(nc));
	ck_assert_uint_eq(nc.mac[3], 0xaa);
	ck_assert_uint_eq(nc.status, VIRTIO_NET_S_LINK_UP);
	ck_assert_uint_eq(nc.max_virtqueue_pairs, 1);
	ck_assert_uint_eq(nc.mtu, 9000);
}
END_TEST

START_TEST(frames_both_ways)
{
	uint8_t got[256];
	struct virtio_net_hdr h = { 0 };
	uint8_t frame[12 + 60];

	bring_up(VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_NET_F_MRG_RXBUF) |
		 VIRTIO_BIT(VIRTIO_F_EVENT_IDX));
	/* guest -> tap */
	memset(guest + TX_BUF, 0, 12);
	memset(guest + TX_BUF + 12, 0x5a, 60);
	post(1, TX_BUF, 72, false);
	{
		struct pollfd p = { .fd = host, .events = POLLIN };

		ck_assert_int_eq(poll(&p, 1, 2000), 1);
	}
	ck_assert_int_eq(recv(host, got, sizeof(got), 0), 72);
	ck_assert_uint_eq(got[12 + 59], 0x5a);
	ck_assert(wait_used(1, 1));

	/* tap -> guest, buffers first */
	post(0, RX_BUF, 1526, true);
	memcpy(frame, &h, sizeof(h));
	memset(frame + 12, 0xa5, 60);
	ck_assert_int_eq(send(host, frame, sizeof(frame), 0), (ssize_t)sizeof(frame));
	ck_assert(wait_used(0, 1));
	memcpy(&h, guest + RX_BUF, sizeof(h));
	ck_assert_uint_eq(h.num_buffers, 1);
	ck_assert_uint_eq(guest[RX_BUF + 12 + 59], 0xa5);
}
END_TEST

START_TEST(pending_frame_survives_ring_stop)
{
	struct vu_vring_state st = { 0, 0 };
	struct vu_peer_reply rep;
	struct virtq_used *used = (struct virtq_used *)(guest + ring_gpa(0) + 0x2000);
	struct virtio_net_hdr h;
	uint8_t frame[12 + 600] = { 0 };
	uint64_t v = 0;

	memset(frame + 12, 0x3c, 600);
	bring_up(VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_NET_F_MRG_RXBUF));
	/* One 256-byte buffer cannot hold the frame: it waits, the chain is
	 * held back... */
	post(0, RX_BUF, 256, true);
	ck_assert_int_eq(send(host, frame, sizeof(frame), 0), (ssize_t)sizeof(frame));
	for (int i = 0; i < 400 && __atomic_load_n(&net.pairs[0].nslots, __ATOMIC_ACQUIRE) != 1; i++)
		usleep(5000);
	ck_assert_uint_eq(__atomic_load_n(&net.pairs[0].nslots, __ATOMIC_ACQUIRE), 1);
	ck_assert_uint_eq(used_idx(0), 0);
	/* ...and given back when the front-end stops the ring: the base it is
	 * told lets a restarted ring offer that buffer again. */
	ck_assert_int_eq(vu_peer_get(fe, VHOST_USER_GET_VRING_BASE, &st, 8, &rep), 0);
	memcpy(&st, rep.payload, 8);
	ck_assert_uint_eq(st.num, 0);
	/* The frame survived the stop: restarted at that base, with one more
	 * buffer, the ring gets it whole, in the returned buffer first. */
	ok(VHOST_USER_SET_VRING_BASE, &st, 8, NULL, 0);
	ok(VHOST_USER_SET_VRING_KICK, &v, 8, &kick[0], 1);
	post(0, RX_BUF + 0x1000, 1526, true);
	ck_assert(wait_used(0, 2));
	ck_assert_uint_eq(used->ring[0].id, 0);
	ck_assert_uint_eq(used->ring[0].len, 256);
	ck_assert_uint_eq(used->ring[1].id, 1);
	ck_assert_uint_eq(used->ring[1].len, sizeof(frame) - 256);
	memcpy(&h, guest + RX_BUF, sizeof(h));
	ck_assert_uint_eq(h.num_buffers, 2);
	for (unsigned i = 12; i < 256; i++)
		ck_assert_uint_eq(guest[RX_BUF + i], 0x3c);
	for (unsigned i = 0; i < sizeof(frame) - 256; i++)
		ck_assert_uint_eq(guest[RX_BUF + 0x1000 + i], 0x3c);
}
END_TEST

START_TEST(session_end_resets)
{
	bring_up(VIRTIO_BIT(VIRTIO_F_VERSION_1));
	ck_assert_uint_eq(net.hdr_len, VIRTIO_NET_HDR_LEN);
	close(fe);
	pthread_join(srv_thread, NULL);
	ck_assert_uint_eq(net.vdev.features, 0);
	ck_assert(!vdev_queue_started(&net.vdev, 0) && !vdev_queue_started(&net.vdev, 1));
	/* The fixture's teardown closes fe and joins again: give it a live pair. */
	{
		int sv[2];

		ck_assert_int_eq(vu_peer_socketpair(sv), 0);
		fe = sv[1];
		ck_assert_int_eq(pthread_create(&srv_thread, NULL, serve, (void *)(intptr_t)sv[0]), 0);
	}
}
END_TEST

static Suite *vhost_net_suite(void)
{
	Suite *s = suite_create("vhost_net");
	TCase *tc = tcase_create("server");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, features_and_config);
	tcase_add_test(tc, frames_both_ways);
	tcase_add_test(tc, pending_frame_survives_ring_stop);
	tcase_add_test(tc, session_end_resets);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(vhost_net_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

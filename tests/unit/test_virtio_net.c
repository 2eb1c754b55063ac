/*
 * virtio-net model: TX and RX chains built by hand on split rings in a
 * malloc'd "guest memory", with a SOCK_SEQPACKET socketpair standing in for
 * the tap (it keeps frame boundaries as a tap does).
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cvmm/log.h"
#include "cvmm/worker.h"
#include "devices/net/virtio_net_dev.h"
#include "check_run.h"
#include "guest_ring.h"

#define T_MEM_SIZE (1u << 20)
#define T_QSIZE 16
/* Rings: RX (queue 0) and TX (queue 1). */
#define T_RX_DESC 0x0
#define T_RX_AVAIL 0x1000
#define T_RX_USED 0x2000
#define T_TX_DESC 0x4000
#define T_TX_AVAIL 0x5000
#define T_TX_USED 0x6000
#define T_RX_BUF 0x10000   /* RX buffer i at T_RX_BUF + i * 0x1000 */
#define T_TX_BUF 0x40000

struct t_env {
	uint8_t *mem_buf;
	struct gmem mem;
	struct net_dev net;
	int peer;                 /* our end of the socketpair: the "host stack" */
	struct guest_ring rx, tx;
};

static struct t_env *env;

static void *t_ptr(uint64_t gpa)
{
	return env->mem_buf + gpa;
}

static const uint64_t t_no_mrg = VIRTIO_BIT(VIRTIO_NET_F_MRG_RXBUF);

/* Opens the model on a socketpair and negotiates all it offers but drop. */
static void t_open(uint64_t drop, uint16_t qsize)
{
	struct net_dev_config cfg = { .num_pairs = 1, .queue_size = T_QSIZE };
	uint8_t mac[6] = { 0x52, 0x54, 0, 0x12, 0x34, 0x56 };
	int sv[2];

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0, sv), 0);
	env->peer = sv[1];
	cfg.fds = &sv[0];
	cfg.mac = mac;
	cfg.mtu = 1500;
	ck_assert_int_eq(net_dev_init(&env->net, &cfg), 0);
	env->net.vdev.mem = &env->mem;
	ck_assert_int_eq(vdev_set_features(&env->net.vdev,
							 env->net.vdev.host_features & ~drop), 0);
	guest_ring_init(&env->rx, env->mem_buf, qsize, T_RX_DESC, T_RX_AVAIL, T_RX_USED);
	guest_ring_init(&env->tx, env->mem_buf, qsize, T_TX_DESC, T_TX_AVAIL, T_TX_USED);
	ck_assert_int_eq(virtq_setup(&env->net.vqs[0], &env->mem, qsize, T_RX_DESC, T_RX_AVAIL, T_RX_USED), 0);
	ck_assert_int_eq(virtq_setup(&env->net.vqs[1], &env->mem, qsize, T_TX_DESC, T_TX_AVAIL, T_TX_USED), 0);
	for (unsigned i = 0; i < 2; i++) {
		env->net.vqs[i].event_idx = true;
		env->net.vqs[i].indirect = true;
	}
}

static void t_setup(void)
{
	struct gmem_region r = { .gpa = 0, .size = T_MEM_SIZE, .fd = -1 };

	/* Expected drops would warn on every run. */
	log_set_level(LOG_ERR);
	env = calloc(1, sizeof(*env));
	env->peer = -1;
	env->mem_buf = calloc(1, T_MEM_SIZE);
	r.hva = env->mem_buf;
	gmem_init(&env->mem);
	ck_assert_int_eq(gmem_add(&env->mem, &r), 0);
}

static void t_teardown(void)
{
	if (env->net.vqs)
		net_dev_destroy(&env->net);
	if (env->peer >= 0)
		close(env->peer);
	gmem_destroy(&env->mem);
	free(env->mem_buf);
	free(env);
}

/* Posts count RX buffers of len bytes each, one per chain. */
static void t_post_rx(unsigned first, unsigned count, uint32_t len)
{
	for (unsigned i = first; i < first + count; i++) {
		struct guest_buf b = { T_RX_BUF + i * 0x1000, len, true };

		guest_ring_post(&env->rx, &b, 1);
	}
}

/* Sends a frame from the "host": header (num_buffers garbage) + payload. */
static void t_host_send(uint32_t payload_len, uint8_t seed)
{
	uint8_t buf[4096];
	struct virtio_net_hdr h = { .num_buffers = 0xdead };

	ck_assert_uint_le(payload_len + sizeof(h), sizeof(buf));
	memcpy(buf, &h, sizeof(h));
	for (uint32_t i = 0; i < payload_len; i++)
		buf[sizeof(h) + i] = (uint8_t)(seed + i * 3);
	ck_assert_int_eq(send(env->peer, buf, sizeof(h) + payload_len, 0), (ssize_t)(sizeof(h) + payload_len));
}

static void t_check_payload(const uint8_t *p, uint32_t off, uint32_t len, uint8_t seed)
{
	for (uint32_t i = 0; i < len; i++)
		ck_assert_uint_eq(p[i], (uint8_t)(seed + (off + i) * 3));
}

START_TEST(offload_mapping)
{
	uint64_t all = VIRTIO_BIT(VIRTIO_NET_F_GUEST_CSUM) | VIRTIO_BIT(VIRTIO_NET_F_GUEST_TSO4) |
		       VIRTIO_BIT(VIRTIO_NET_F_GUEST_TSO6) | VIRTIO_BIT(VIRTIO_NET_F_GUEST_UFO);

	ck_assert_uint_eq(tap_offload_flags(0), 0);
	ck_assert_uint_eq(tap_offload_flags(all), TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_UFO);
	ck_assert_uint_eq(tap_offload_flags(VIRTIO_BIT(VIRTIO_NET_F_GUEST_CSUM)), TUN_F_CSUM);
	ck_assert_uint_eq(tap_offload_flags(VIRTIO_BIT(VIRTIO_NET_F_GUEST_CSUM) |
					    VIRTIO_BIT(VIRTIO_NET_F_GUEST_TSO6)), TUN_F_CSUM | TUN_F_TSO6);
	/* Segmentation without checksum offload is not valid: nothing. */
	ck_assert_uint_eq(tap_offload_flags(all & ~VIRTIO_BIT(VIRTIO_NET_F_GUEST_CSUM)), 0);
	/* Host-side (TX) offloads do not concern the tap's reads. */
	ck_assert_uint_eq(tap_offload_flags(VIRTIO_BIT(VIRTIO_NET_F_HOST_TSO4) |
					    VIRTIO_BIT(VIRTIO_NET_F_CSUM)), 0);
}
END_TEST

START_TEST(tx_header_check)
{
	uint64_t f = VIRTIO_BIT(VIRTIO_NET_F_CSUM) | VIRTIO_BIT(VIRTIO_NET_F_HOST_TSO4);
	struct virtio_net_hdr h = { 0 };

	ck_assert_int_eq(net_hdr_check_tx(&h, 0, 60), 0);
	h.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
	h.csum_start = 34;
	h.csum_offset = 16;
	ck_assert_int_eq(net_hdr_check_tx(&h, 0, 100), -EINVAL);       /* CSUM not negotiated */
	ck_assert_int_eq(net_hdr_check_tx(&h, f, 100), 0);
	ck_assert_int_eq(net_hdr_check_tx(&h, f, 51), -EINVAL);        /* checksum field past the end */
	ck_assert_int_eq(net_hdr_check_tx(&h, f, 52), 0);
	h.gso_type = VIRTIO_NET_HDR_GSO_TCPV4;
	h.gso_size = 1448;
	ck_assert_int_eq(net_hdr_check_tx(&h, f, 3000), 0);
	h.gso_size = 0;
	ck_assert_int_eq(net_hdr_check_tx(&h, f, 3000), -EINVAL);
	h.gso_size = 1448;
	h.gso_type = VIRTIO_NET_HDR_GSO_TCPV6;                          /* HOST_TSO6 not negotiated */
	ck_assert_int_eq(net_hdr_check_tx(&h, f, 3000), -EINVAL);
	h.gso_type = VIRTIO_NET_HDR_GSO_UDP;
	ck_assert_int_eq(net_hdr_check_tx(&h, f, 3000), -EINVAL);
	ck_assert_int_eq(net_hdr_check_tx(&h, f | VIRTIO_BIT(VIRTIO_NET_F_HOST_UFO), 3000), 0);
	h.gso_type = VIRTIO_NET_HDR_GSO_TCPV4 | VIRTIO_NET_HDR_GSO_ECN;
	ck_assert_int_eq(net_hdr_check_tx(&h, f, 3000), -EINVAL);
	h.gso_type = 2;                                                 /* unknown type */
	ck_assert_int_eq(net_hdr_check_tx(&h, f, 3000), -EINVAL);
	h.gso_type = 0;
	h.flags = VIRTIO_NET_HDR_F_DATA_VALID;                          /* device-only flag */
	ck_assert_int_eq(net_hdr_check_tx(&h, f, 3000), -EINVAL);
}
END_TEST

START_TEST(mac_parse)
{
	uint8_t mac[6];

	ck_assert_int_eq(net_parse_mac("52:54:00:ab:CD:ef", mac), 0);
	ck_assert_uint_eq(mac[0], 0x52);
	ck_assert_uint_eq(mac[4], 0xcd);
	ck_assert_uint_eq(mac[5], 0xef);
	ck_assert_int_eq(net_parse_mac("52:54:00:ab:cd", mac), -EINVAL);
	ck_assert_int_eq(net_parse_mac("52:54:00:ab:cd:eg", mac), -EINVAL);
	ck_assert_int_eq(net_parse_mac("52-54-00-ab-cd-ef", mac), -EINVAL);
	ck_assert_int_eq(net_parse_mac("52:54:00:ab:cd:ef:", mac), -EINVAL);
	ck_assert_int_eq(net_parse_mac(" 2:54:00:ab:cd:ef", mac), -EINVAL);
}
END_TEST

START_TEST(config_space)
{
	struct virtio_net_config c;
	uint64_t f;

	t_open(0, T_QSIZE);
	f = env->net.vdev.host_features;
	ck_assert(f & VIRTIO_BIT(VIRTIO_F_VERSION_1));
	ck_assert(f & VIRTIO_BIT(VIRTIO_NET_F_MRG_RXBUF));
	ck_assert(f & VIRTIO_BIT(VIRTIO_NET_F_MTU));
	ck_assert(!(f & VIRTIO_BIT(VIRTIO_NET_F_CTRL_VQ)));
	/* One pair: no MQ, even when asked. */
	ck_assert(!(f & VIRTIO_BIT(VIRTIO_NET_F_MQ)));
	net_dev_offer_mq(&env->net);
	ck_assert(!(env->net.vdev.host_features & VIRTIO_BIT(VIRTIO_NET_F_MQ)));
	ck_assert_uint_eq(env->net.vdev.config_size, sizeof(c));
	memset(&c, 0xff, sizeof(c));
	env->net.vdev.ops->read_config(&env->net.vdev, 0, &c, sizeof(c));
	ck_assert_uint_eq(c.mac[0], 0x52);
	ck_assert_uint_eq(c.mac[5], 0x56);
	ck_assert_uint_eq(c.status, VIRTIO_NET_S_LINK_UP);
	ck_assert_uint_eq(c.max_virtqueue_pairs, 1);
	ck_assert_uint_eq(c.mtu, 1500);
	/* A feature not offered is refused. */
	ck_assert_int_eq(vdev_set_features(&env->net.vdev,
							 VIRTIO_BIT(VIRTIO_NET_F_CTRL_VQ)), -EINVAL);
}
END_TEST

START_TEST(random_mac)
{
	struct net_dev n;
	int sv[2];
	struct net_dev_config cfg = { .num_pairs = 1 };

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
	cfg.fds = &sv[0];
	ck_assert_int_eq(net_dev_init(&n, &cfg), 0);
	/* Locally administered, unicast. */
	ck_assert_uint_eq(n.config.mac[0] & 3, 2);
	ck_assert(!(n.vdev.host_features & VIRTIO_BIT(VIRTIO_NET_F_MTU)));
	net_dev_destroy(&n);
	close(sv[1]);
}
END_TEST

START_TEST(two_pairs)
{
	struct net_dev n;
	struct virtio_net_config c;
	int a[2], b[2], fds[2];
	struct net_dev_config cfg = { .num_pairs = 2 };

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, a), 0);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, b), 0);
	fds[0] = a[0];
	fds[1] = b[0];
	cfg.fds = fds;
	ck_assert_int_eq(net_dev_init(&n, &cfg), 0);
	/* No control queue here: MQ only when the host provides one. */
	ck_assert(!(n.vdev.host_features & VIRTIO_BIT(VIRTIO_NET_F_MQ)));
	net_dev_offer_mq(&n);
	ck_assert(n.vdev.host_features & VIRTIO_BIT(VIRTIO_NET_F_MQ));
	ck_assert_uint_eq(n.vdev.num_queues, 4);
	n.vdev.ops->read_config(&n.vdev, 0, &c, sizeof(c));
	ck_assert_uint_eq(c.max_virtqueue_pairs, 2);
	/* Queue 3 is pair 1's TX queue; not set up, it cannot start. */
	ck_assert_int_eq(vdev_queue_start(&n.vdev, 3), -EINVAL);
	ck_assert_int_eq(vdev_queue_start(&n.vdev, 4), -EINVAL);
	net_dev_destroy(&n);
	close(a[1]);
	close(b[1]);
}
END_TEST

START_TEST(tx_frames)
{
	struct virtio_net_hdr *h = t_ptr(T_TX_BUF);
	uint8_t got[256];
	struct guest_buf split[3] = {
		{ T_TX_BUF, 6, false },            /* the header across two buffers */
		{ T_TX_BUF + 6, 6, false },
		{ T_TX_BUF + 12, 100, false },
	};

	t_open(0, T_QSIZE);
	memset(h, 0, sizeof(*h));
	for (unsigned i = 0; i < 100; i++)
		((uint8_t *)t_ptr(T_TX_BUF + 12))[i] = (uint8_t)i;
	guest_ring_post(&env->tx, split, 3);
	ck_assert_int_eq(net_dev_tx_process(&env->net, 0), 1);
	ck_assert_int_eq(recv(env->peer, got, sizeof(got), 0), 112);
	for (unsigned i = 0; i < 100; i++)
		ck_assert_uint_eq(got[12 + i], i);
	ck_assert_uint_eq(guest_ring_used_idx(&env->tx), 1);
	ck_assert_uint_eq(guest_ring_next_used(&env->tx).len, 0);
	ck_assert_uint_eq(env->net.pairs[0].tx_packets, 1);
	ck_assert_uint_eq(env->net.pairs[0].tx_bytes, 100);

	/* An offload the device does not offer (ECN): not written, chain returned. */
	h->flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
	h->csum_start = 20;
	h->csum_offset = 16;
	h->gso_type = VIRTIO_NET_HDR_GSO_TCPV4 | VIRTIO_NET_HDR_GSO_ECN;
	h->gso_size = 1000;
	guest_ring_post(&env->tx, split, 3);
	/* Too short to hold a header. */
	guest_ring_post(&env->tx, split, 1);
	ck_assert_int_eq(net_dev_tx_process(&env->net, 0), 2);
	ck_assert_int_eq(recv(env->peer, got, sizeof(got), MSG_DONTWAIT), -1);
	ck_assert_int_eq(errno, EAGAIN);
	ck_assert_uint_eq(guest_ring_used_idx(&env->tx), 3);
	ck_assert_uint_eq(env->net.pairs[0].tx_errors, 2);
}
END_TEST

START_TEST(tx_full_tap_never_blocks)
{
	struct guest_buf one = { T_TX_BUF, 12 + 64, false };
	unsigned posted = 0;

	t_open(0, T_QSIZE);
	memset(t_ptr(T_TX_BUF), 0, 12);
	/* Nobody reads the "tap": once its buffer is full, frames are lost
	 * and counted, and the worker goes on. */
	for (unsigned round = 0; round < 200 && !env->net.pairs[0].tx_errors; round++) {
		for (unsigned i = 0; i < T_QSIZE; i++)
			guest_ring_post(&env->tx, &one, 1);
		posted += T_QSIZE;
		ck_assert_int_eq(net_dev_tx_process(&env->net, 0), T_QSIZE);
	}
	ck_assert_uint_gt(env->net.pairs[0].tx_errors, 0);
	ck_assert_uint_eq(env->net.pairs[0].tx_packets + env->net.pairs[0].tx_errors, posted);
	ck_assert_uint_eq(guest_ring_used_idx(&env->tx), (uint16_t)posted);
}
END_TEST

START_TEST(tx_offload_header_passes)
{
	struct virtio_net_hdr *h = t_ptr(T_TX_BUF);
	struct virtio_net_hdr got;
	uint8_t buf[2048];
	struct guest_buf one = { T_TX_BUF, 12 + 1000, false };

	t_open(0, T_QSIZE);
	memset(h, 0, sizeof(*h));
	h->flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
	h->gso_type = VIRTIO_NET_HDR_GSO_TCPV4;
	h->gso_size = 500;
	h->hdr_len = 54;
	h->csum_start = 34;
	h->csum_offset = 16;
	guest_ring_post(&env->tx, &one, 1);
	ck_assert_int_eq(net_dev_tx_process(&env->net, 0), 1);
	ck_assert_int_eq(recv(env->peer, buf, sizeof(buf), 0), 1012);
	memcpy(&got, buf, sizeof(got));
	ck_assert_uint_eq(got.gso_type, VIRTIO_NET_HDR_GSO_TCPV4);
	ck_assert_uint_eq(got.gso_size, 500);
	ck_assert_uint_eq(got.csum_start, 34);
}
END_TEST

START_TEST(rx_one_chain_per_frame)
{
	struct virtio_net_hdr h;
	struct virtq_used_elem e;

	t_open(t_no_mrg, T_QSIZE);
	t_post_rx(0, 2, 1526);
	t_host_send(100, 1);
	t_host_send(1514, 2);
	ck_assert_int_eq(net_dev_rx_process(&env->net, 0), 2);
	ck_assert_uint_eq(guest_ring_used_idx(&env->rx), 2);
	e = guest_ring_next_used(&env->rx);
	ck_assert_uint_eq(e.id, 0);
	ck_assert_uint_eq(e.len, 112);
	memcpy(&h, t_ptr(T_RX_BUF), sizeof(h));
	ck_assert_uint_eq(h.num_buffers, 1);
	t_check_payload(t_ptr(T_RX_BUF + 12), 0, 100, 1);
	e = guest_ring_next_used(&env->rx);
	ck_assert_uint_eq(e.len, 1526);
	t_check_payload(t_ptr(T_RX_BUF + 0x1000 + 12), 0, 1514, 2);
	ck_assert_uint_eq(env->net.pairs[0].rx_packets, 2);
}
END_TEST

START_TEST(rx_mergeable)
{
	struct virtio_net_hdr h;
	struct virtq_used_elem e;
	uint32_t lens[3] = { 256, 256, 612 - 512 };

	t_open(0, T_QSIZE);
	t_post_rx(0, 4, 256);
	t_host_send(600, 5);
	ck_assert_int_eq(net_dev_rx_process(&env->net, 0), 1);
	ck_assert_uint_eq(guest_ring_used_idx(&env->rx), 3);
	memcpy(&h, t_ptr(T_RX_BUF), sizeof(h));
	ck_assert_uint_eq(h.num_buffers, 3);
	for (unsigned i = 0; i < 3; i++) {
		e = guest_ring_next_used(&env->rx);
		ck_assert_uint_eq(e.id, i);
		ck_assert_uint_eq(e.len, lens[i]);
	}
	t_check_payload(t_ptr(T_RX_BUF + 12), 0, 244, 5);
	t_check_payload(t_ptr(T_RX_BUF + 0x1000), 244, 256, 5);
	t_check_payload(t_ptr(T_RX_BUF + 0x2000), 500, 100, 5);
	/* The fourth buffer is still the driver's for the next frame. */
	t_host_send(10, 6);
	ck_assert_int_eq(net_dev_rx_process(&env->net, 0), 1);
	e = guest_ring_next_used(&env->rx);
	ck_assert_uint_eq(e.id, 3);
	ck_assert_uint_eq(e.len, 22);
	memcpy(&h, t_ptr(T_RX_BUF + 0x3000), sizeof(h));
	ck_assert_uint_eq(h.num_buffers, 1);
}
END_TEST

START_TEST(rx_oversize_dropped)
{
	struct virtq_used_elem e;

	t_open(t_no_mrg, T_QSIZE);
	t_post_rx(0, 1, 128);
	t_host_send(200, 1);
	t_host_send(50, 2);
	/* The first frame cannot fit the chain: dropped and counted; the chain
	 * stays for the next frame, which fits. */
	ck_assert_int_eq(net_dev_rx_process(&env->net, 0), 2);
	ck_assert_uint_eq(env->net.pairs[0].rx_oversize, 1);
	ck_assert_uint_eq(env->net.pairs[0].rx_packets, 1);
	ck_assert_uint_eq(guest_ring_used_idx(&env->rx), 1);
	e = guest_ring_next_used(&env->rx);
	ck_assert_uint_eq(e.len, 62);
	t_check_payload(t_ptr(T_RX_BUF + 12), 0, 50, 2);
}
END_TEST

START_TEST(rx_mergeable_oversize_dropped)
{
	/* A 4-entry ring of 64-byte buffers holds 256 bytes at most. */
	t_open(0, 4);
	t_post_rx(0, 4, 64);
	t_host_send(300, 1);
	t_host_send(100, 2);
	ck_assert_int_eq(net_dev_rx_process(&env->net, 0), 2);
	ck_assert_uint_eq(env->net.pairs[0].rx_oversize, 1);
	ck_assert_uint_eq(env->net.pairs[0].rx_packets, 1);
	ck_assert_uint_eq(guest_ring_used_idx(&env->rx), 2);   /* 112 bytes in two buffers */
}
END_TEST

START_TEST(rx_waits_for_buffers)
{
	struct virtio_net_hdr h;

	t_open(0, T_QSIZE);
	t_host_send(600, 1);
	t_host_send(40, 2);
	/* No buffers: nothing read beyond the first frame, nothing dropped. */
	ck_assert_int_eq(net_dev_rx_process(&env->net, 0), 0);
	ck_assert_uint_eq(env->net.pairs[0].frame_len, 612);
	ck_assert_uint_eq(guest_ring_used_idx(&env->rx), 0);
	/* One buffer is not enough for a frame that fits in three: wait. */
	t_post_rx(0, 1, 256);
	ck_assert_int_eq(net_dev_rx_process(&env->net, 0), 0);
	ck_assert_uint_eq(guest_ring_used_idx(&env->rx), 0);
	t_post_rx(1, 3, 256);
	ck_assert_int_eq(net_dev_rx_process(&env->net, 0), 2);
	ck_assert_uint_eq(guest_ring_used_idx(&env->rx), 4);
	memcpy(&h, t_ptr(T_RX_BUF), sizeof(h));
	ck_assert_uint_eq(h.num_buffers, 3);
	t_check_payload(t_ptr(T_RX_BUF + 0x3000 + 12), 0, 40, 2);
	ck_assert_uint_eq(env->net.pairs[0].rx_oversize, 0);
	ck_assert_uint_eq(env->net.pairs[0].rx_packets, 2);
}
END_TEST

START_TEST(rx_malformed_chain)
{
	struct guest_buf bad = { T_MEM_SIZE - 16, 64, true };   /* leaves guest memory */

	t_open(0, T_QSIZE);
	guest_ring_post(&env->rx, &bad, 1);
	t_host_send(20, 1);
	ck_assert_int_eq(net_dev_rx_process(&env->net, 0), -EIO);
	ck_assert_uint_eq(guest_ring_used_idx(&env->rx), 0);
}
END_TEST

static bool t_wait_fd(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, ms) == 1;
}

/* Gives vq the kick and call eventfds a transport would. */
static void t_queue_fds_open(struct virtq *vq)
{
	vq->kick_fd = eventfd(0, EFD_NONBLOCK);
	vq->call_fd = eventfd(0, EFD_NONBLOCK);
	ck_assert(vq->kick_fd >= 0 && vq->call_fd >= 0);
}

static void t_queue_fds_close(struct virtq *vq)
{
	close(vq->kick_fd);
	close(vq->call_fd);
	vq->kick_fd = vq->call_fd = -1;
}

START_TEST(worker_serves_both_ways)
{
	struct virtq *rxq, *txq;
	struct guest_buf one = { T_TX_BUF, 12 + 64, false };
	uint8_t got[128];
	uint64_t one_kick = 1, cnt;
	struct vdev *dev;

	t_open(0, T_QSIZE);
	dev = &env->net.vdev;
	rxq = &env->net.vqs[0];
	txq = &env->net.vqs[1];
	t_queue_fds_open(rxq);
	t_queue_fds_open(txq);
	ck_assert_int_eq(vdev_queue_start(dev, 0), 0);
	ck_assert_int_eq(vdev_queue_start(dev, 1), 0);

	/* A frame arrives with no buffers: it waits for the RX kick. */
	t_host_send(300, 9);
	usleep(50000);
	ck_assert_uint_eq(guest_ring_used_idx(&env->rx), 0);
	t_post_rx(0, 2, 256);
	ck_assert_int_eq(write(rxq->kick_fd, &one_kick, 8), 8);
	ck_assert(t_wait_fd(rxq->call_fd, 2000));
	ck_assert_int_eq(read(rxq->call_fd, &cnt, 8), 8);
	ck_assert_uint_eq(guest_ring_used_idx(&env->rx), 2);

	/* TX: the kick sends the frame to the "tap". */
	memset(t_ptr(T_TX_BUF), 0, 12);
	guest_ring_post(&env->tx, &one, 1);
	ck_assert_int_eq(write(txq->kick_fd, &one_kick, 8), 8);
	ck_assert(t_wait_fd(env->peer, 2000));
	ck_assert_int_eq(recv(env->peer, got, sizeof(got), 0), 76);

	/* A buffer stashed while waiting goes back to the ring on stop. The
	 * worker must have taken it first (it is held, not used), or there
	 * would be nothing to give back. */
	t_post_rx(2, 1, 256);
	t_host_send(400, 3);
	for (int i = 0; i < 400 && __atomic_load_n(&env->net.pairs[0].nslots, __ATOMIC_ACQUIRE) != 1; i++)
		usleep(5000);
	ck_assert_uint_eq(__atomic_load_n(&env->net.pairs[0].nslots, __ATOMIC_ACQUIRE), 1);
	ck_assert_uint_eq(guest_ring_used_idx(&env->rx), 2);
	vdev_queue_stop(dev, 0);
	ck_assert_uint_eq(rxq->last_avail_idx, 2);
	ck_assert_uint_eq(env->net.pairs[0].nslots, 0);
	ck_assert_uint_eq(guest_ring_used_idx(&env->rx), 2);
	vdev_queue_stop(dev, 1);
	t_queue_fds_close(rxq);
	t_queue_fds_close(txq);
}
END_TEST

/* This process's thread named name (a worker's), or -1. */
static pid_t t_thread_named(const char *name)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	pid_t found = -1;

	ck_assert_ptr_nonnull(d);
	while (found < 0 && (e = readdir(d))) {
		char path[300], comm[32] = "";
		FILE *f;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(comm, sizeof(comm), f) && !strncmp(comm, name, strlen(name)) &&
		    comm[strlen(name)] == '\n')
			found = (pid_t)atoi(e->d_name);
		fclose(f);
	}
	closedir(d);
	return found;
}

/* A pair's worker whose passes find one frame per kick, a decision window
 * long, tries not preempting the vCPU that kicks it (SCHED_BATCH), so that
 * the guest can queue several frames per pass (docs/performance.md, "Where
 * the guest's process runs"). */
START_TEST(tx_frame_per_kick_probes_batching)
{
	struct guest_buf one = { T_TX_BUF, 12 + 64, false };
	struct virtq *txq;
	uint64_t one_kick = 1, cnt;
	uint8_t got[128];
	int policy = -1;
	pid_t tid;

	t_open(0, T_QSIZE);
	txq = &env->net.vqs[1];
	t_queue_fds_open(txq);
	ck_assert_int_eq(vdev_queue_start(&env->net.vdev, 1), 0);
	/* The worker names its thread once it runs. */
	for (int i = 0; i < 400 && (tid = t_thread_named("net-w0")) < 0; i++)
		usleep(5000);
	ck_assert_int_gt(tid, 0);
	ck_assert_int_eq(sched_getscheduler(tid), SCHED_OTHER);
	memset(t_ptr(T_TX_BUF), 0, 12);
	for (unsigned i = 0; i < WORKER_ADAPT_WINDOW; i++) {
		/* used_event: an interrupt once this frame is used, which the
		 * worker sends at the end of its pass; the next frame comes
		 * after, so that each pass finds exactly one. */
		__atomic_store_n(&guest_ring_avail(&env->tx)->ring[T_QSIZE], (uint16_t)i, __ATOMIC_RELEASE);
		guest_ring_post(&env->tx, &one, 1);
		ck_assert_int_eq(write(txq->kick_fd, &one_kick, 8), 8);
		ck_assert(t_wait_fd(txq->call_fd, 2000));
		ck_assert_int_eq(read(txq->call_fd, &cnt, 8), 8);
		ck_assert(t_wait_fd(env->peer, 2000));
		ck_assert_int_eq(recv(env->peer, got, sizeof(got), 0), 76);
	}
	/* The worker counts a pass after its frame has left. */
	for (int i = 0; i < 400 && (policy = sched_getscheduler(tid)) != SCHED_BATCH; i++)
		usleep(5000);
	ck_assert_int_eq(policy, SCHED_BATCH);
	vdev_queue_stop(&env->net.vdev, 1);
	t_queue_fds_close(txq);
}
END_TEST

START_TEST(rx_stash_returned_after_gap)
{
	struct vdev *dev;
	struct virtq *rxq;
	struct guest_buf a = { T_RX_BUF, 256, true }, b = { T_RX_BUF + 0x1000, 64, false };

	t_open(0, T_QSIZE);
	dev = &env->net.vdev;
	rxq = &env->net.vqs[0];
	t_queue_fds_open(rxq);
	/* A fits part of the frame and is held; B has nothing writable and goes
	 * straight back: A is no longer the last chain popped. */
	guest_ring_post(&env->rx, &a, 1);
	guest_ring_post(&env->rx, &b, 1);
	ck_assert_int_eq(vdev_queue_start(dev, 0), 0);
	t_host_send(600, 1);
	for (int i = 0; i < 200 && guest_ring_used_idx(&env->rx) < 1; i++)
		usleep(5000);
	usleep(20000);
	ck_assert_uint_eq(guest_ring_used_idx(&env->rx), 1);
	vdev_queue_stop(dev, 0);
	/* Stepping back would hand B out twice: A is returned unused instead. */
	ck_assert_uint_eq(rxq->last_avail_idx, 2);
	ck_assert_uint_eq(guest_ring_used_idx(&env->rx), 2);
	ck_assert_uint_eq(guest_ring_next_used(&env->rx).id, 1);
	ck_assert_uint_eq(guest_ring_next_used(&env->rx).id, 0);
	t_queue_fds_close(rxq);
}
END_TEST

/* In-process only: the control queue switches pairs on, and refuses what
 * it does not do. */
START_TEST(control_queue_switches_pairs)
{
	struct net_dev_config cfg = { .num_pairs = 2, .queue_size = T_QSIZE };
	struct guest_ring ctl;
	uint8_t *cmd = t_ptr(0xa000), *ack = t_ptr(0xa100);
	struct guest_buf bufs[2] = { { 0xa000, 4, false }, { 0xa100, 1, true } };
	static const uint8_t cases[][4] = {
		{ 4, 0, 2, 0 },  /* MQ VQ_PAIRS_SET 2: ok */
		{ 4, 0, 3, 0 },  /* more pairs than there are */
		{ 4, 0, 0, 0 },  /* no pair */
		{ 0, 0, 1, 0 },  /* CTRL_RX, not offered */
	};
	static const uint8_t want[] = { 0, 1, 1, 1 };
	struct virtq *vq;
	struct pollfd pfd;
	uint64_t cnt;
	int fds[2], sv[2][2];

	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0, sv[i]), 0);
		fds[i] = sv[i][0];
	}
	cfg.fds = fds;
	guest_ring_init(&ctl, env->mem_buf, T_QSIZE, 0x7000, 0x8000, 0x9000);
	ck_assert_int_eq(net_dev_init(&env->net, &cfg), 0);
	ck_assert(!(env->net.vdev.host_features & VIRTIO_BIT(VIRTIO_NET_F_CTRL_VQ)));
	ck_assert_int_eq(net_dev_enable_ctrl(&env->net), 0);
	ck_assert_uint_eq(env->net.vdev.num_queues, 5);
	ck_assert(env->net.vdev.host_features & VIRTIO_BIT(VIRTIO_NET_F_CTRL_VQ));
	ck_assert(env->net.vdev.host_features & VIRTIO_BIT(VIRTIO_NET_F_MQ));
	ck_assert_uint_eq(env->net.active_pairs, 1);
	env->net.vdev.mem = &env->mem;
	ck_assert_int_eq(vdev_set_features(&env->net.vdev, env->net.vdev.host_features), 0);
	vq = &env->net.vqs[4];
	ck_assert_int_eq(virtq_setup(vq, &env->mem, T_QSIZE, ctl.desc, ctl.avail, ctl.used), 0);
	vq->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	vq->call_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ck_assert_int_eq(vdev_queue_start(&env->net.vdev, 4), 0);
	for (unsigned i = 0; i < sizeof(want); i++) {
		struct virtq_used *used = t_ptr(ctl.used);

		memcpy(cmd, cases[i], 4);
		*ack = 0xff;
		guest_ring_post(&ctl, bufs, 2);
		cnt = 1;
		ck_assert_int_eq(write(vq->kick_fd, &cnt, sizeof(cnt)), sizeof(cnt));
		pfd = (struct pollfd){ .fd = vq->call_fd, .events = POLLIN };
		for (int k = 0; k < 50 && __atomic_load_n(&used->idx, __ATOMIC_ACQUIRE) != i + 1; k++)
			poll(&pfd, 1, 100);
		ck_assert_uint_eq(used->idx, i + 1);
		ck_assert_uint_eq(*ack, want[i]);
		ck_assert_uint_eq(used->ring[i].len, 1);
		(void)!read(vq->call_fd, &cnt, sizeof(cnt));
	}
	ck_assert_uint_eq(env->net.active_pairs, 2);
	vdev_reset(&env->net.vdev);
	ck_assert_uint_eq(env->net.active_pairs, 1);
	vdev_queue_stop(&env->net.vdev, 4);
	close(vq->kick_fd);
	close(vq->call_fd);
	close(sv[0][1]);
	close(sv[1][1]);
}
END_TEST

static Suite *net_suite(void)
{
	Suite *s = suite_create("virtio_net");
	TCase *tc = tcase_create("net");

	tcase_add_checked_fixture(tc, t_setup, t_teardown);
	tcase_add_test(tc, offload_mapping);
	tcase_add_test(tc, tx_header_check);
	tcase_add_test(tc, mac_parse);
	tcase_add_test(tc, config_space);
	tcase_add_test(tc, random_mac);
	tcase_add_test(tc, two_pairs);
	tcase_add_test(tc, tx_frames);
	tcase_add_test(tc, tx_offload_header_passes);
	tcase_add_test(tc, tx_full_tap_never_blocks);
	tcase_add_test(tc, rx_one_chain_per_frame);
	tcase_add_test(tc, rx_mergeable);
	tcase_add_test(tc, rx_oversize_dropped);
	tcase_add_test(tc, rx_mergeable_oversize_dropped);
	tcase_add_test(tc, rx_waits_for_buffers);
	tcase_add_test(tc, rx_malformed_chain);
	tcase_add_test(tc, worker_serves_both_ways);
	tcase_add_test(tc, tx_frame_per_kick_probes_batching);
	tcase_add_test(tc, rx_stash_returned_after_gap);
	tcase_add_test(tc, control_queue_switches_pairs);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_run(net_suite());
}

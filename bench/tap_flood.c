/*
 * tap_flood: the machine's ceiling for one thread writing frames into a tap,
 * for bench/net.sh. Opens (creates) the tap as cvmm does (IFF_VNET_HDR, a
 * 12-byte header), sets it up, and writes the same UDP frame over and over,
 * batched as far as the kernel allows: a tap write is one frame, so the
 * batch is many writes per system call (io_uring, registered file,
 * TAP_FLOOD_BATCH writes per submission).
 *
 *   tap_flood IFNAME FRAME_BYTES SECONDS
 *
 * Prints "written N" (writes the tap took); the rate is what the tap counts.
 */
#include <errno.h>
#include <liburing.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "devices/net/tap.h"
#include "devices/net/virtio_net_dev.h"
#include "udp_frame.h"

#define TAP_FLOOD_BATCH 256
#define TAP_FLOOD_MAX 1514

static double tf_now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* The frame DPDK's txonly sends: to 02:00:00:00:00:00 (not the tap's own
 * address), IPv4 UDP 198.18.0.1:9 -> 198.18.0.2:9, after a zero vnet header. */
static void tf_frame(uint8_t *f, size_t len)
{
	static const uint8_t dst[6] = { 0x02, 0, 0, 0, 0, 0 }, src[6] = { 0x02, 0, 0, 0, 0, 0x01 };
	static const uint8_t saddr[4] = { 198, 18, 0, 1 }, daddr[4] = { 198, 18, 0, 2 };

	bench_udp_frame(f, len, dst, src, saddr, daddr);
}

static int tf_up(const char *name)
{
	struct ifreq ifr = { 0 };
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), r;

	if (s < 0)
		return -errno;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	r = ioctl(s, SIOCGIFFLAGS, &ifr);
	if (r == 0) {
		ifr.ifr_flags |= IFF_UP;
		r = ioctl(s, SIOCSIFFLAGS, &ifr);
	}
	r = r < 0 ? -errno : 0;
	close(s);
	return r;
}

int main(int argc, char **argv)
{
	static uint8_t buf[VIRTIO_NET_HDR_LEN + TAP_FLOOD_MAX];
	struct io_uring ring;
	struct tap tap;
	unsigned long long written = 0;
	long len, secs;
	size_t total;
	double end;
	int err, fd;

	if (argc != 4 || (len = strtol(argv[2], NULL, 0)) < 60 || len > TAP_FLOOD_MAX ||
	    (secs = strtol(argv[3], NULL, 0)) < 1) {
		fprintf(stderr, "usage: tap_flood IFNAME FRAME_BYTES(60..%d) SECONDS\n", TAP_FLOOD_MAX);
		return 2;
	}
	err = tap_open(&tap, argv[1], 1, VIRTIO_NET_HDR_LEN);
	if (!err)
		err = tf_up(tap.name);
	if (!err)
		err = io_uring_queue_init(TAP_FLOOD_BATCH, &ring, 0);
	if (err) {
		fprintf(stderr, "tap_flood: %s: %s\n", argv[1], strerror(-err));
		return 1;
	}
	fd = tap.fds[0];
	if (io_uring_register_files(&ring, &fd, 1) == 0)
		fd = -1;
	tf_frame(buf + VIRTIO_NET_HDR_LEN, (size_t)len);
	total = VIRTIO_NET_HDR_LEN + (size_t)len;
	end = tf_now() + (double)secs;
	while (tf_now() < end) {
		struct io_uring_cqe *cqe;
		unsigned head, n = 0;

		for (unsigned i = 0; i < TAP_FLOOD_BATCH; i++) {
			struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);

			if (!sqe)
				break;
			io_uring_prep_write(sqe, fd < 0 ? 0 : fd, buf, (unsigned)total, 0);
			if (fd < 0)
				sqe->flags |= IOSQE_FIXED_FILE;
		}
		err = io_uring_submit_and_wait(&ring, TAP_FLOOD_BATCH);
		if (err < 0 && err != -EINTR) {
			fprintf(stderr, "tap_flood: io_uring: %s\n", strerror(-err));
			return 1;
		}
		io_uring_for_each_cqe(&ring, head, cqe) {
			if (cqe->res > 0)
				written++;
			n++;
		}
		io_uring_cq_advance(&ring, n);
	}
	printf("written %llu\n", written);
	io_uring_queue_exit(&ring);
	tap_close(&tap);
	return 0;
}

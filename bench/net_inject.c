/*
 * Frame source for bench/net.sh's tap -> guest runs: sends UDP frames of a
 * given size out of an interface (a tap, so they reach its reader) through
 * an AF_PACKET socket, 64 per sendmmsg, for a number of seconds.
 *
 *   net_inject IFNAME DST_MAC FRAME_BYTES SECONDS
 *
 * Prints "sent N" (frames the kernel took; the tap drops what its reader
 * does not keep up with, as a NIC would).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "devices/net/virtio_net_dev.h"
#include "udp_frame.h"

#define INJ_BATCH 64
#define INJ_MAX 1514

static double inj_now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* An Ethernet + IPv4 + UDP frame of len bytes (10.77.0.1:9 -> 10.77.0.2:9). */
static void inj_frame(uint8_t *f, size_t len, const uint8_t dst[6])
{
	static const uint8_t src[6] = { 0x02, 0x77, 0, 0, 0, 1 };
	static const uint8_t saddr[4] = { 10, 77, 0, 1 }, daddr[4] = { 10, 77, 0, 2 };

	bench_udp_frame(f, len, dst, src, saddr, daddr);
}

int main(int argc, char **argv)
{
	static uint8_t frame[INJ_MAX];
	struct mmsghdr msgs[INJ_BATCH];
	struct iovec iov;
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = 0, .sll_halen = 6 };
	uint8_t dst[6];
	unsigned long long sent = 0;
	double end;
	int fd, one = 1;
	long len, secs;

	if (argc != 5 || net_parse_mac(argv[2], dst) < 0 || (len = strtol(argv[3], NULL, 0)) < 60 ||
	    len > INJ_MAX || (secs = strtol(argv[4], NULL, 0)) < 1) {
		fprintf(stderr, "usage: net_inject IFNAME DST_MAC FRAME_BYTES(60..%d) SECONDS\n", INJ_MAX);
		return 2;
	}
	sll.sll_ifindex = (int)if_nametoindex(argv[1]);
	if (!sll.sll_ifindex) {
		fprintf(stderr, "net_inject: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	fd = socket(AF_PACKET, SOCK_RAW, 0);
	if (fd < 0) {
		fprintf(stderr, "net_inject: AF_PACKET socket: %s (needs CAP_NET_RAW)\n", strerror(errno));
		return 1;
	}
	/* Straight to the tap, past the qdisc. */
	setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof(one));
	memcpy(sll.sll_addr, dst, 6);
	inj_frame(frame, (size_t)len, dst);
	iov = (struct iovec){ .iov_base = frame, .iov_len = (size_t)len };
	for (int i = 0; i < INJ_BATCH; i++)
		msgs[i] = (struct mmsghdr){ .msg_hdr = { .msg_name = &sll, .msg_namelen = sizeof(sll),
							 .msg_iov = &iov, .msg_iovlen = 1 } };
	end = inj_now() + (double)secs;
	while (inj_now() < end) {
		int n = sendmmsg(fd, msgs, INJ_BATCH, 0);

		if (n > 0)
			sent += (unsigned long long)n;
		else if (n < 0 && errno != ENOBUFS && errno != EAGAIN && errno != EINTR) {
			fprintf(stderr, "net_inject: sendmmsg: %s\n", strerror(errno));
			return 1;
		}
	}
	printf("sent %llu\n", sent);
	close(fd);
	return 0;
}

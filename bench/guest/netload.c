/*
 * TCP load between a Linux guest and the host behind its tap (static, no
 * iperf or netperf in the initramfs). The host runs the server; the guest
 * runs the client and times each figure with its own clock, the same way
 * under either VMM, and prints one line: "BENCH: <name> <unit>=N".
 *
 *   netload serve PORT             host: serves clients until killed
 *   netload HOST PORT send MIB     guest -> host stream   (net-tx mibps)
 *   netload HOST PORT recv MIB     host -> guest stream   (net-rx mibps)
 *   netload HOST PORT rr COUNT     1-byte request/response (net-rr usecs)
 *
 * A connection starts with one byte saying what it is for; a send ends with
 * the host's one-byte acknowledgement once it read everything, so the time
 * covers the data's arrival, not just its leaving the guest's buffers.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NETLOAD_CHUNK (64 * 1024)

static double netload_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int netload_write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int netload_read_all(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t n = read(fd, p, len);

		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Reads until EOF; returns the byte count or -1. */
static long long netload_sink(int fd)
{
	static uint8_t buf[NETLOAD_CHUNK];
	long long total = 0;
	ssize_t n;

	while ((n = read(fd, buf, sizeof(buf))) > 0)
		total += n;
	return n < 0 ? -1 : total;
}

static int netload_source(int fd, uint64_t bytes)
{
	static uint8_t buf[NETLOAD_CHUNK];

	while (bytes) {
		size_t len = bytes < sizeof(buf) ? (size_t)bytes : sizeof(buf);

		if (netload_write_all(fd, buf, len))
			return -1;
		bytes -= len;
	}
	return 0;
}

static void netload_nodelay(int fd)
{
	int one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static void netload_serve_conn(int fd)
{
	uint8_t cmd, b;
	uint32_t mib;

	if (netload_read_all(fd, &cmd, 1))
		return;
	switch (cmd) {
	case 'S':
		if (netload_sink(fd) >= 0)
			(void)!write(fd, "k", 1);
		break;
	case 'R':
		if (!netload_read_all(fd, &mib, sizeof(mib)))
			netload_source(fd, (uint64_t)ntohl(mib) << 20);
		break;
	case 'P':
		netload_nodelay(fd);
		while (!netload_read_all(fd, &b, 1) && !netload_write_all(fd, &b, 1))
			;
		break;
	}
}

static int netload_serve(int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int one = 1, ls = socket(AF_INET, SOCK_STREAM, 0);

	signal(SIGCHLD, SIG_IGN);
	if (ls < 0 || setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(ls, (struct sockaddr *)&sa, sizeof(sa)) || listen(ls, 8)) {
		perror("netload: listen");
		return 1;
	}
	for (;;) {
		int fd = accept(ls, NULL, NULL);

		if (fd < 0)
			continue;
		if (fork() == 0) {
			close(ls);
			netload_serve_conn(fd);
			_exit(0);
		}
		close(fd);
	}
}

static int netload_connect(const char *host, int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0 || inet_pton(AF_INET, host, &sa.sin_addr) != 1 ||
	    connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		perror("netload: connect");
		return -1;
	}
	return fd;
}

int main(int argc, char **argv)
{
	uint64_t n;
	double t0, t1;
	int fd, failed = 0;
	uint8_t b = 'P';

	if (argc == 3 && !strcmp(argv[1], "serve"))
		return netload_serve(atoi(argv[2]));
	if (argc != 5) {
		fprintf(stderr, "usage: netload serve PORT | netload HOST PORT send|recv MIB | "
				"netload HOST PORT rr COUNT\n");
		return 2;
	}
	n = strtoull(argv[4], NULL, 0);
	fd = netload_connect(argv[1], atoi(argv[2]));
	if (fd < 0 || !n)
		return 2;
	t0 = netload_now();
	if (!strcmp(argv[3], "send")) {
		failed = netload_write_all(fd, "S", 1) || netload_source(fd, n << 20) ||
			 shutdown(fd, SHUT_WR) || netload_read_all(fd, &b, 1);
		t1 = netload_now();
		printf("BENCH: net-tx mibps=%.1f%s\n", (double)n / (t1 - t0), failed ? " (errors)" : "");
	} else if (!strcmp(argv[3], "recv")) {
		uint32_t mib = htonl((uint32_t)n);

		failed = netload_write_all(fd, "R", 1) || netload_write_all(fd, &mib, sizeof(mib)) ||
			 netload_sink(fd) != (long long)(n << 20);
		t1 = netload_now();
		printf("BENCH: net-rx mibps=%.1f%s\n", (double)n / (t1 - t0), failed ? " (errors)" : "");
	} else if (!strcmp(argv[3], "rr")) {
		netload_nodelay(fd);
		failed = netload_write_all(fd, "P", 1);
		/* The first exchange warms the path up (ARP, slow start). */
		failed |= netload_write_all(fd, &b, 1) || netload_read_all(fd, &b, 1);
		t0 = netload_now();
		for (uint64_t i = 0; i < n && !failed; i++)
			failed = netload_write_all(fd, &b, 1) || netload_read_all(fd, &b, 1);
		t1 = netload_now();
		printf("BENCH: net-rr usecs=%.1f%s\n", (t1 - t0) * 1e6 / (double)n, failed ? " (errors)" : "");
	} else {
		fprintf(stderr, "netload: unknown mode %s\n", argv[3]);
		return 2;
	}
	close(fd);
	return failed;
}

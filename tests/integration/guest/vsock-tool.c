/*
 * vsock-tool: the test peer of the vsock tests, built for the host and
 * (static) for the QEMU guest. Addresses:
 *   vsock:CID:PORT  (connect) / vsock:PORT (listen)   AF_VSOCK
 *   unix:PATH                                        AF_UNIX
 *   hybrid:PATH:PORT  AF_UNIX to a hybrid-vsock socket, "CONNECT PORT\n",
 *                     then the "OK <port>\n" answer
 * Commands (results on stdout, one line, for the test to compare):
 *   recv LISTEN [PAUSE_MS]      accept one, read to EOF: RECV bytes=N sum=X
 *                               (with PAUSE_MS, stop reading that long
 *                               after the first MiB: the sender must wait)
 *   send ADDR BYTES SEED        send a seeded pattern, half-close, read to
 *                               EOF: SEND bytes=N sum=X
 *   echo LISTEN COUNT           echo COUNT connections (concurrently) back
 *   multi ADDR COUNT PAR        COUNT connections, PAR at once, each sends a
 *                               message and checks the echo: MULTI ok=K of COUNT
 *   garbage PATH TEXT|-         send TEXT (- sends nothing) to a hybrid socket,
 *                               expect it closed: GARBAGE closed after=MS
 *   hold ADDR COUNT             COUNT connections to an echo server, each
 *                               proven with one echoed byte: HELD COUNT; then
 *                               waits until the other side closes them all:
 *                               CLOSED K of COUNT after=MS
 * Connections are retried for up to 60 s (the peer may not listen yet).
 */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

#define VT_RETRY_MS 60000
#define VT_MAX_FDS 1100

static uint64_t vt_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void vt_sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static int vt_die(const char *what)
{
	fprintf(stderr, "vsock-tool: %s: %s\n", what, strerror(errno));
	exit(2);
}

static int vt_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Reads the hybrid answer line byte by byte (no more than the line). */
static int vt_hybrid_handshake(int fd, unsigned port)
{
	char line[64];
	size_t n = 0;

	snprintf(line, sizeof(line), "CONNECT %u\n", port);
	if (vt_write_all(fd, line, strlen(line)))
		return -1;
	while (n < sizeof(line) - 1) {
		ssize_t r = read(fd, line + n, 1);

		if (r <= 0)
			return -1;
		if (line[n++] == '\n')
			break;
	}
	line[n] = '\0';
	return strncmp(line, "OK ", 3) ? -1 : 0;
}

static int vt_connect_once(const char *addr)
{
	char path[108];
	unsigned cid, port;
	int fd;

	if (sscanf(addr, "vsock:%u:%u", &cid, &port) == 2) {
		struct sockaddr_vm sa = { .svm_family = AF_VSOCK, .svm_cid = cid, .svm_port = port };

		fd = socket(AF_VSOCK, SOCK_STREAM, 0);
		if (fd < 0)
			vt_die("socket(AF_VSOCK)");
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			return fd;
		close(fd);
		return -1;
	}
	if (!strncmp(addr, "unix:", 5) || !strncmp(addr, "hybrid:", 7)) {
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		bool hybrid = addr[0] == 'h';
		const char *p = addr + (hybrid ? 7 : 5);
		const char *colon = hybrid ? strrchr(p, ':') : NULL;
		size_t len = colon ? (size_t)(colon - p) : strlen(p);

		if (len >= sizeof(path) || (hybrid && !colon))
			return errno = EINVAL, vt_die(addr);
		memcpy(path, p, len);
		path[len] = '\0';
		memcpy(sa.sun_path, path, len + 1);
		fd = socket(AF_UNIX, SOCK_STREAM, 0);
		if (fd < 0)
			vt_die("socket(AF_UNIX)");
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
		    (!hybrid || vt_hybrid_handshake(fd, (unsigned)strtoul(colon + 1, NULL, 10)) == 0))
			return fd;
		close(fd);
		return -1;
	}
	errno = EINVAL;
	return vt_die(addr);
}

static int vt_connect(const char *addr)
{
	uint64_t end = vt_now_ms() + VT_RETRY_MS;

	for (;;) {
		int fd = vt_connect_once(addr);

		if (fd >= 0)
			return fd;
		if (vt_now_ms() > end)
			vt_die(addr);
		vt_sleep_ms(100);
	}
}

static int vt_listen(const char *addr)
{
	unsigned port;
	int fd;

	if (sscanf(addr, "vsock:%u", &port) == 1) {
		struct sockaddr_vm sa = { .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY,
					  .svm_port = port };

		fd = socket(AF_VSOCK, SOCK_STREAM, 0);
		if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
			vt_die(addr);
	} else if (!strncmp(addr, "unix:", 5) && strlen(addr + 5) < 108) {
		struct sockaddr_un sa = { .sun_family = AF_UNIX };

		strcpy(sa.sun_path, addr + 5);
		unlink(sa.sun_path);
		fd = socket(AF_UNIX, SOCK_STREAM, 0);
		if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
			vt_die(addr);
	} else {
		errno = EINVAL;
		return vt_die(addr);
	}
	if (listen(fd, 1024) < 0)
		vt_die("listen");
	return fd;
}

/* FNV-1a, 64 bit: enough to tell a corrupted stream. */
static uint64_t vt_sum(uint64_t h, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ULL;
	return h;
}

#define VT_SUM_INIT 0xcbf29ce484222325ULL

static int vt_recv(const char *laddr, unsigned pause_ms)
{
	static uint8_t buf[65536];
	int l = vt_listen(laddr), fd;
	uint64_t sum = VT_SUM_INIT, total = 0, t0;
	bool paused = false;
	ssize_t n;

	printf("LISTENING\n");
	fflush(stdout);
	fd = accept(l, NULL, NULL);
	if (fd < 0)
		vt_die("accept");
	t0 = vt_now_ms();
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		sum = vt_sum(sum, buf, (size_t)n);
		total += (uint64_t)n;
		if (pause_ms && !paused && total >= (1u << 20)) {
			vt_sleep_ms(pause_ms);
			paused = true;
		}
	}
	if (n < 0)
		vt_die("read");
	printf("RECV bytes=%llu sum=%016llx ms=%llu paused=%u\n", (unsigned long long)total,
	       (unsigned long long)sum, (unsigned long long)(vt_now_ms() - t0), paused ? pause_ms : 0);
	close(fd);
	close(l);
	return 0;
}

static int vt_send(const char *addr, uint64_t bytes, uint64_t seed)
{
	static uint8_t buf[65536];
	uint64_t x = seed * 0x9e3779b97f4a7c15ULL + 1, sum = VT_SUM_INIT, left = bytes;
	int fd = vt_connect(addr);
	uint64_t t0 = vt_now_ms();

	while (left) {
		size_t n = left < sizeof(buf) ? (size_t)left : sizeof(buf);

		for (size_t i = 0; i < n; i += 8) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			memcpy(buf + i, &x, n - i < 8 ? n - i : 8);
		}
		sum = vt_sum(sum, buf, n);
		if (vt_write_all(fd, buf, n))
			vt_die("write");
		left -= n;
	}
	shutdown(fd, SHUT_WR);
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	printf("SEND bytes=%llu sum=%016llx ms=%llu\n", (unsigned long long)bytes,
	       (unsigned long long)sum, (unsigned long long)(vt_now_ms() - t0));
	close(fd);
	return 0;
}

static int vt_echo(const char *laddr, unsigned count)
{
	static struct pollfd pfd[VT_MAX_FDS];
	char buf[4096];
	unsigned accepted = 0, done = 0, n = 1;

	pfd[0].fd = vt_listen(laddr);
	pfd[0].events = POLLIN;
	printf("LISTENING\n");
	fflush(stdout);
	while (done < count) {
		if (poll(pfd, n, -1) < 0 && errno != EINTR)
			vt_die("poll");
		if ((pfd[0].revents & POLLIN) && accepted < count && n < VT_MAX_FDS) {
			int fd = accept(pfd[0].fd, NULL, NULL);

			if (fd >= 0) {
				pfd[n].fd = fd;
				pfd[n++].events = POLLIN;
				accepted++;
			}
		}
		for (unsigned i = 1; i < n; i++) {
			ssize_t r;

			if (!pfd[i].revents)
				continue;
			r = read(pfd[i].fd, buf, sizeof(buf));
			if (r > 0 && vt_write_all(pfd[i].fd, buf, (size_t)r) == 0)
				continue;
			close(pfd[i].fd);
			pfd[i--] = pfd[--n];
			done++;
		}
	}
	printf("ECHO served=%u\n", done);
	close(pfd[0].fd);
	return 0;
}

static int vt_multi(const char *addr, unsigned count, unsigned par)
{
	static int fds[VT_MAX_FDS];
	unsigned ok = 0;

	if (par > VT_MAX_FDS)
		par = VT_MAX_FDS;
	for (unsigned base = 0; base < count; base += par) {
		unsigned k = count - base < par ? count - base : par;
		char msg[80], got[128];

		for (unsigned i = 0; i < k; i++) {
			fds[i] = vt_connect(addr);
			snprintf(msg, sizeof(msg), "message %u of %u from pid %d\n", base + i, count, (int)getpid());
			if (vt_write_all(fds[i], msg, strlen(msg)))
				vt_die("write");
			shutdown(fds[i], SHUT_WR);
		}
		for (unsigned i = 0; i < k; i++) {
			size_t len = 0;
			ssize_t r;

			snprintf(msg, sizeof(msg), "message %u of %u from pid %d\n", base + i, count, (int)getpid());
			while (len < sizeof(got) && (r = read(fds[i], got + len, sizeof(got) - len)) > 0)
				len += (size_t)r;
			if (len == strlen(msg) && !memcmp(got, msg, len))
				ok++;
			close(fds[i]);
		}
	}
	printf("MULTI ok=%u of %u\n", ok, count);
	return ok == count ? 0 : 1;
}

static int vt_garbage(const char *path, const char *text)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	uint64_t t0;
	char buf[256];
	ssize_t r;
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		vt_die(path);
	t0 = vt_now_ms();
	if (strcmp(text, "-") && vt_write_all(fd, text, strlen(text)))
		vt_die("write");
	while ((r = read(fd, buf, sizeof(buf))) > 0) {
		if (!strncmp(buf, "OK", 2)) {
			printf("GARBAGE answered\n");
			return 1;
		}
	}
	printf("GARBAGE closed after=%llu\n", (unsigned long long)(vt_now_ms() - t0));
	return 0;
}

static int vt_hold(const char *addr, unsigned count)
{
	static int fds[VT_MAX_FDS];
	unsigned closed = 0;
	uint64_t t0;
	char c;

	if (count > VT_MAX_FDS)
		count = VT_MAX_FDS;
	for (unsigned i = 0; i < count; i++) {
		fds[i] = vt_connect(addr);
		c = 'h';
		if (vt_write_all(fds[i], &c, 1) || read(fds[i], &c, 1) != 1 || c != 'h') {
			fprintf(stderr, "vsock-tool: hold: connection %u was not echoed\n", i);
			return 1;
		}
	}
	printf("HELD %u\n", count);
	fflush(stdout);
	t0 = vt_now_ms();
	for (unsigned i = 0; i < count; i++) {
		ssize_t r;

		while ((r = read(fds[i], &c, 1)) > 0)
			;
		closed++;
		close(fds[i]);
	}
	printf("CLOSED %u of %u after=%llu\n", closed, count, (unsigned long long)(vt_now_ms() - t0));
	return closed == count ? 0 : 1;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if ((argc == 3 || argc == 4) && !strcmp(argv[1], "recv"))
		return vt_recv(argv[2], argc == 4 ? (unsigned)strtoul(argv[3], NULL, 0) : 0);
	if (argc == 5 && !strcmp(argv[1], "send"))
		return vt_send(argv[2], strtoull(argv[3], NULL, 0), strtoull(argv[4], NULL, 0));
	if (argc == 4 && !strcmp(argv[1], "echo"))
		return vt_echo(argv[2], (unsigned)strtoul(argv[3], NULL, 0));
	if (argc == 5 && !strcmp(argv[1], "multi"))
		return vt_multi(argv[2], (unsigned)strtoul(argv[3], NULL, 0),
				(unsigned)strtoul(argv[4], NULL, 0));
	if (argc == 4 && !strcmp(argv[1], "garbage"))
		return vt_garbage(argv[2], argv[3]);
	if (argc == 4 && !strcmp(argv[1], "hold"))
		return vt_hold(argv[2], (unsigned)strtoul(argv[3], NULL, 0));
	fprintf(stderr, "usage: vsock-tool recv|send|echo|multi|garbage|hold ... (see the source)\n");
	return 2;
}

/*
 * Fuzz target: the vhost-user back-end server (codec, handlers, ring set-up,
 * inflight restore) fed a hostile front-end's message stream with fds.
 *
 * Input: u16 n, then n bytes that every memfd the harness makes starts with
 * (guest memory or an inflight region, as the front-end wrote it); then
 * chunks {u8 fds, u16 len, len raw bytes} until the end. Each chunk's bytes
 * go to the socket in one sendmsg with up to 3 fds attached, made fresh by
 * the harness: fds & 3 is their count, bits 2-3, 4-5, 6-7 their kinds
 * (eventfd, 256 KiB memfd, socket, pipe). Headers are in the raw bytes, so
 * the codec's framing is fuzzed too. The stream ends with EOF; the server
 * serves it on this thread (the fuzz device runs no worker) and the
 * harness then reads the replies and closes every fd it got.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../vhost/backend/vu_server.h"
#include "lib/fuzz_input.h"
#include "lib/fuzz_vdev.h"

#define VS_MEMFD_SIZE (256u * 1024)
#define VS_MEM_INIT_MAX 4096
/* Bounds that keep the whole stream in the socket's buffer and the
 * process's fd count small. */
#define VS_STREAM_MAX (48u * 1024)
#define VS_FDS_MAX 48

enum { VS_EVENTFD, VS_MEMFD, VS_SOCKET, VS_PIPE };

struct vs_harness {
	int peer;                  /* the front-end's end */
	int keep[VS_FDS_MAX];      /* other ends the harness holds until the end */
	unsigned nkeep;
	unsigned nfds;
	const uint8_t *mem_init;
	size_t mem_init_len;
};

static int vs_memfd(const struct vs_harness *h)
{
	int fd = memfd_create("fuzz-vu", MFD_CLOEXEC);

	if (fd < 0)
		return -1;
	if (ftruncate(fd, VS_MEMFD_SIZE) < 0 ||
	    pwrite(fd, h->mem_init, h->mem_init_len, 0) != (ssize_t)h->mem_init_len) {
		close(fd);
		return -1;
	}
	return fd;
}

/* One fresh fd of the given kind for the server; -1 when none can be made. */
static int vs_make_fd(struct vs_harness *h, unsigned kind)
{
	int pair[2];

	switch (kind) {
	case VS_EVENTFD:
		return eventfd(0, EFD_CLOEXEC);
	case VS_MEMFD:
		return vs_memfd(h);
	case VS_SOCKET:
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, pair) < 0)
			return -1;
		h->keep[h->nkeep++] = pair[1];
		return pair[0];
	default:
		if (pipe2(pair, O_CLOEXEC | O_NONBLOCK) < 0)
			return -1;
		h->keep[h->nkeep++] = pair[1];
		return pair[0];
	}
}

/* Sends one chunk; false when the stream must end here. */
static bool vs_send_chunk(struct vs_harness *h, uint8_t spec, const uint8_t *buf, size_t len)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(3 * sizeof(int))];
	} ctl;
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	int fds[3];
	unsigned n = spec & 3, made = 0;
	bool ok;

	if (!len)
		return true;
	for (unsigned i = 0; i < n && h->nfds < VS_FDS_MAX; i++) {
		int fd = vs_make_fd(h, (spec >> (2 + 2 * i)) & 3);

		if (fd < 0)
			break;
		fds[made++] = fd;
		h->nfds++;
	}
	if (made) {
		memset(&ctl, 0, sizeof(ctl));
		mh.msg_control = ctl.buf;
		mh.msg_controllen = CMSG_SPACE(made * sizeof(int));
		struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(made * sizeof(int));
		memcpy(CMSG_DATA(cm), fds, made * sizeof(int));
	}
	ok = sendmsg(h->peer, &mh, MSG_NOSIGNAL | MSG_DONTWAIT) == (ssize_t)len;
	for (unsigned i = 0; i < made; i++)
		close(fds[i]);
	return ok;
}

/* Reads what the server answered and closes the fds it sent. */
static void vs_drain_replies(int sock)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(16 * sizeof(int))];
	} ctl;
	uint8_t buf[4096];

	for (;;) {
		struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
				     .msg_controllen = sizeof(ctl.buf) };
		ssize_t n = recvmsg(sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);

		if (n <= 0)
			return;
		for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
			if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
				continue;
			unsigned k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			int fds[16];

			memcpy(fds, CMSG_DATA(cm), k * sizeof(int));
			for (unsigned i = 0; i < k; i++)
				close(fds[i]);
		}
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_quiet_log();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_input in = { data, size };
	struct vs_harness h = { .peer = -1 };
	struct vu_server_config cfg = { .protocol_features = VU_SERVER_PROTOCOL_FEATURES };
	struct fuzz_vdev dev;
	struct vu_server s;
	size_t sent = 0, len;
	int sv[2], stop_fd;

	h.mem_init = fuzz_input_take(&in, fuzz_input_u16(&in) % (VS_MEM_INIT_MAX + 1),
				     &h.mem_init_len);
	if (fuzz_vdev_init(&dev, 2))
		abort();
	if (vu_server_init(&s, &dev.dev, &cfg))
		abort();
	stop_fd = eventfd(0, EFD_CLOEXEC);
	if (stop_fd < 0 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		abort();
	h.peer = sv[1];
	while (!fuzz_input_empty(&in)) {
		uint8_t spec = fuzz_input_u8(&in);
		const uint8_t *chunk = fuzz_input_take(&in, fuzz_input_u16(&in), &len);

		if (sent + len > VS_STREAM_MAX || !vs_send_chunk(&h, spec, chunk, len))
			break;
		sent += len;
	}
	shutdown(h.peer, SHUT_WR);
	vu_server_serve_conn(&s, sv[0], stop_fd);
	vs_drain_replies(h.peer);
	close(h.peer);
	for (unsigned i = 0; i < h.nkeep; i++)
		close(h.keep[i]);
	close(stop_fd);
	vu_server_destroy(&s);
	fuzz_vdev_destroy(&dev);
	return 0;
}

#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cvmm/vu_msg.h"
#include "vu_peer.h"

int vu_peer_socketpair(int fds[2])
{
	return socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0 ? -errno : 0;
}

int vu_peer_connect(const char *path, int timeout_ms)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	strncpy(sa.sun_path, path, sizeof(sa.sun_path) - 1);
	for (int waited = 0;; waited += 10) {
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

		if (fd < 0)
			return -errno;
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			return fd;
		close(fd);
		if (waited >= timeout_ms)
			return -ETIMEDOUT;
		usleep(10000);
	}
}

int vu_peer_send_raw(int sock, const void *buf, size_t len, const int *fds, unsigned nfds)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * 64)];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (nfds > 64)
		return -EINVAL;
	if (nfds) {
		memset(&ctl, 0, sizeof(ctl));
		vu_msg_attach_fds(&mh, ctl.buf, fds, nfds);
	}
	ssize_t n = sendmsg(sock, &mh, MSG_NOSIGNAL);

	if (n < 0)
		return -errno;
	return n == (ssize_t)len ? 0 : -EIO;
}

int vu_peer_send(int sock, uint32_t request, uint32_t flags, const void *payload,
		 uint32_t size, const int *fds, unsigned nfds)
{
	uint8_t buf[sizeof(struct vu_hdr) + 8192];
	struct vu_hdr h = { .request = request, .flags = flags, .size = size };

	if (size > 8192)
		return -EINVAL;
	memcpy(buf, &h, sizeof(h));
	if (size)
		memcpy(buf + sizeof(h), payload, size);
	return vu_peer_send_raw(sock, buf, sizeof(h) + size, fds, nfds);
}

static int vu_peer_wait(int sock, int timeout_ms)
{
	struct pollfd p = { .fd = sock, .events = POLLIN };
	int r = poll(&p, 1, timeout_ms);

	return r < 0 ? -1 : r == 0 ? -2 : 0;
}

static int vu_peer_read_n(int sock, void *buf, size_t len, int timeout_ms)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t n;
		int r = vu_peer_wait(sock, timeout_ms);

		if (r)
			return r;
		n = read(sock, p, len);
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int vu_peer_read(int sock, struct vu_peer_reply *rep, int timeout_ms)
{
	char ctl[CMSG_SPACE(sizeof(int) * 8)];
	struct iovec iov = { .iov_base = &rep->hdr, .iov_len = sizeof(rep->hdr) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl,
			     .msg_controllen = sizeof(ctl) };
	ssize_t n;
	int r;

	memset(rep, 0, sizeof(*rep));
	r = vu_peer_wait(sock, timeout_ms);
	if (r)
		return r;
	n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | MSG_WAITALL);
	if (n != (ssize_t)sizeof(rep->hdr))
		return -1;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		unsigned cnt = (unsigned)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));

		for (unsigned i = 0; i < cnt && rep->nfds < 8; i++)
			memcpy(&rep->fds[rep->nfds++], CMSG_DATA(c) + i * sizeof(int), sizeof(int));
	}
	if (rep->hdr.size > sizeof(rep->payload))
		return -1;
	return vu_peer_read_n(sock, rep->payload, rep->hdr.size, timeout_ms);
}

long long vu_peer_call(int sock, uint32_t request, const void *payload, uint32_t size,
		       const int *fds, unsigned nfds)
{
	struct vu_peer_reply rep;
	uint64_t v;

	if (vu_peer_send(sock, request, VU_VERSION | VU_FLAG_NEED_REPLY, payload, size, fds, nfds))
		return -1;
	if (vu_peer_read(sock, &rep, 5000))
		return -1;
	if (rep.hdr.request != request || rep.hdr.flags != (VU_VERSION | VU_FLAG_REPLY) ||
	    rep.hdr.size != 8 || rep.nfds)
		return -1;
	memcpy(&v, rep.payload, 8);
	return (long long)v;
}

int vu_peer_get(int sock, uint32_t request, const void *payload, uint32_t size,
		struct vu_peer_reply *rep)
{
	if (vu_peer_send(sock, request, VU_VERSION, payload, size, NULL, 0))
		return -1;
	if (vu_peer_read(sock, rep, 5000))
		return -1;
	if (rep->hdr.request != request || rep->hdr.flags != (VU_VERSION | VU_FLAG_REPLY))
		return -1;
	return 0;
}

bool vu_peer_closed(int sock, int timeout_ms)
{
	char c;

	if (vu_peer_wait(sock, timeout_ms))
		return false;
	return recv(sock, &c, 1, MSG_DONTWAIT) == 0;
}

int vu_peer_count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1;  /* the directory's own fd */
}

int vu_peer_eventfd(void)
{
	return eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
}

int vu_peer_memfd(size_t size)
{
	int fd = memfd_create("vu-peer", MFD_CLOEXEC);

	if (fd < 0)
		return -1;
	if (ftruncate(fd, (off_t)size) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

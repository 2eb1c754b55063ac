#include <fcntl.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz_fds.h"

void fuzz_fds_init(struct fuzz_fds *f, size_t memfd_size, const uint8_t *init, size_t init_len)
{
	*f = (struct fuzz_fds){ .memfd_size = memfd_size, .memfd_init = init, .memfd_init_len = init_len };
}

void fuzz_fds_destroy(struct fuzz_fds *f)
{
	for (unsigned i = 0; i < f->nkeep; i++)
		close(f->keep[i]);
	f->nkeep = 0;
}

int fuzz_memfd(size_t size, const uint8_t *init, size_t init_len)
{
	int fd = memfd_create("cvmm-fuzz", MFD_CLOEXEC);

	if (fd < 0)
		return -1;
	if (ftruncate(fd, (off_t)size) < 0 ||
	    (init_len && pwrite(fd, init, init_len, 0) != (ssize_t)init_len)) {
		close(fd);
		return -1;
	}
	return fd;
}

/* One fresh fd of the given kind to send; -1 when none can be made. */
static int fuzz_fds_make(struct fuzz_fds *f, unsigned kind)
{
	int pair[2];

	switch (kind) {
	case FUZZ_FD_EVENTFD:
		return eventfd(0, EFD_CLOEXEC);
	case FUZZ_FD_MEMFD:
		return fuzz_memfd(f->memfd_size, f->memfd_init, f->memfd_init_len);
	case FUZZ_FD_SOCKET:
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, pair) < 0)
			return -1;
		f->keep[f->nkeep++] = pair[1];
		return pair[0];
	default:
		if (pipe2(pair, O_CLOEXEC | O_NONBLOCK) < 0)
			return -1;
		f->keep[f->nkeep++] = pair[1];
		return pair[0];
	}
}

bool fuzz_fds_send(struct fuzz_fds *f, int sock, uint8_t spec, const uint8_t *buf, size_t len)
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

	if (!len || sock < 0)
		return len == 0;
	for (unsigned i = 0; i < n && f->nfds < FUZZ_FDS_MAX; i++) {
		int fd = fuzz_fds_make(f, (spec >> (2 + 2 * i)) & 3);

		if (fd < 0)
			break;
		fds[made++] = fd;
		f->nfds++;
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
	ok = sendmsg(sock, &mh, MSG_NOSIGNAL | MSG_DONTWAIT) == (ssize_t)len;
	for (unsigned i = 0; i < made; i++)
		close(fds[i]);
	return ok;
}

void fuzz_fds_drain(int sock, int *socket_out)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(16 * sizeof(int))];
	} ctl;
	uint8_t buf[4096];

	if (sock < 0)
		return;
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
			for (unsigned i = 0; i < k; i++) {
				struct stat st;

				if (socket_out && fstat(fds[i], &st) == 0 && S_ISSOCK(st.st_mode)) {
					if (*socket_out >= 0)
						close(*socket_out);
					*socket_out = fds[i];
				} else {
					close(fds[i]);
				}
			}
		}
	}
}

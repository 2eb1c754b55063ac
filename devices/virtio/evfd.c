#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <sys/uio.h>
#include <unistd.h>

#include "cvmm/evfd.h"

int evfd_take(int fd)
{
	uint64_t cnt;
	struct iovec iov = { .iov_base = &cnt, .iov_len = sizeof(cnt) };
	struct pollfd p = { .fd = fd, .events = POLLIN };
	ssize_t n;

	if (fd < 0)
		return -EBADF;
	/* RWF_NOWAIT asks this read alone not to wait, whatever the file's
	 * flags (Linux 5.10 and later for eventfds). */
	n = preadv2(fd, &iov, 1, -1, RWF_NOWAIT);
	if (n == sizeof(cnt))
		return 1;
	if (n < 0 && errno == EAGAIN)
		return 0;
	if (n >= 0 || (errno != EOPNOTSUPP && errno != EINVAL))
		return n < 0 ? -errno : -EIO;
	/* Older kernels (and qemu-user): read only what poll saw. */
	if (poll(&p, 1, 0) < 0)
		return -errno;
	if (p.revents & POLLNVAL)
		return -EBADF;
	if (!(p.revents & POLLIN))
		return 0;
	n = read(fd, &cnt, sizeof(cnt));
	return n == sizeof(cnt) ? 1 : n < 0 && errno == EAGAIN ? 0 : -errno;
}

int evfd_signal(int fd)
{
	uint64_t one = 1;
	struct pollfd p = { .fd = fd, .events = POLLOUT };

	if (fd < 0)
		return -EBADF;
	/* An eventfd is writable while one more count fits: then the write
	 * cannot wait. */
	if (poll(&p, 1, 0) < 0)
		return -errno;
	if (p.revents & POLLNVAL)
		return -EBADF;
	if (!(p.revents & POLLOUT))
		return -EAGAIN;
	return write(fd, &one, sizeof(one)) == sizeof(one) ? 0 : errno == EAGAIN ? -EAGAIN : -errno;
}

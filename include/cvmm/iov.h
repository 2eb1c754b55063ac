/* Copies between a chain's iovecs (guest memory) and a host buffer. */
#ifndef CVMM_IOV_H
#define CVMM_IOV_H

#include <stddef.h>
#include <sys/uio.h>

/* Copies up to len bytes, starting skip bytes into iov[0..n), to dst.
 * Returns the bytes copied (fewer when the iovecs end first). */
size_t iov_to_buf(const struct iovec *iov, unsigned n, size_t skip, void *dst, size_t len);
/* Copies up to len bytes of src into iov[0..n), starting skip bytes into it.
 * Returns the bytes copied. */
size_t iov_from_buf(const struct iovec *iov, unsigned n, size_t skip, const void *src, size_t len);
/* Fills out (room for max) with the iovecs covering bytes [skip, skip+len)
 * of iov[0..n); returns how many. */
unsigned iov_slice(const struct iovec *iov, unsigned n, size_t skip, size_t len, struct iovec *out,
		   unsigned max);

#endif

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "cvmm/iov.h"

/* Copies between [skip, skip+len) of iov and buf, in the direction asked. */
static size_t iov_copy(const struct iovec *iov, unsigned n, size_t skip, uint8_t *buf, size_t len,
		       bool to_iov)
{
	size_t done = 0;

	for (unsigned i = 0; i < n && done < len; i++) {
		size_t l = iov[i].iov_len;
		uint8_t *base = iov[i].iov_base;

		if (skip >= l) {
			skip -= l;
			continue;
		}
		l -= skip;
		if (l > len - done)
			l = len - done;
		if (to_iov)
			memcpy(base + skip, buf + done, l);
		else
			memcpy(buf + done, base + skip, l);
		done += l;
		skip = 0;
	}
	return done;
}

size_t iov_to_buf(const struct iovec *iov, unsigned n, size_t skip, void *dst, size_t len)
{
	return iov_copy(iov, n, skip, dst, len, false);
}

size_t iov_from_buf(const struct iovec *iov, unsigned n, size_t skip, const void *src, size_t len)
{
	/* Only read through buf in this direction. */
	return iov_copy(iov, n, skip, (uint8_t *)(uintptr_t)src, len, true);
}

unsigned iov_slice(const struct iovec *iov, unsigned n, size_t skip, size_t len, struct iovec *out,
		   unsigned max)
{
	unsigned k = 0;

	for (unsigned i = 0; i < n && len && k < max; i++) {
		size_t l = iov[i].iov_len;

		if (skip >= l) {
			skip -= l;
			continue;
		}
		l -= skip;
		if (l > len)
			l = len;
		out[k].iov_base = (uint8_t *)iov[i].iov_base + skip;
		out[k++].iov_len = l;
		len -= l;
		skip = 0;
	}
	return k;
}

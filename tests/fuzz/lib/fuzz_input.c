#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cvmm/log.h"
#include "fuzz_input.h"

size_t fuzz_input_bytes(struct fuzz_input *in, void *out, size_t n)
{
	size_t k = n < in->size ? n : in->size;

	memcpy(out, in->data, k);
	memset((uint8_t *)out + k, 0, n - k);
	in->data += k;
	in->size -= k;
	return k;
}

const uint8_t *fuzz_input_take(struct fuzz_input *in, size_t n, size_t *got)
{
	const uint8_t *p = in->data;

	*got = n < in->size ? n : in->size;
	in->data += *got;
	in->size -= *got;
	return p;
}

uint8_t fuzz_input_u8(struct fuzz_input *in)
{
	uint8_t v;

	fuzz_input_bytes(in, &v, sizeof(v));
	return v;
}

uint16_t fuzz_input_u16(struct fuzz_input *in)
{
	uint16_t v;

	fuzz_input_bytes(in, &v, sizeof(v));
	return v;
}

uint32_t fuzz_input_u32(struct fuzz_input *in)
{
	uint32_t v;

	fuzz_input_bytes(in, &v, sizeof(v));
	return v;
}

uint64_t fuzz_input_u64(struct fuzz_input *in)
{
	uint64_t v;

	fuzz_input_bytes(in, &v, sizeof(v));
	return v;
}

void fuzz_quiet_log(void)
{
	const char *v = getenv("CVMM_FUZZ_LOG");

	if (!v)
		log_set_file("/dev/null");
	else if (!strcmp(v, "debug"))
		log_set_level(LOG_DEBUG);
}

int fuzz_temp_dir(char *buf, size_t len, const char *name)
{
	const char *tmp = getenv("TMPDIR");
	int n = snprintf(buf, len, "%s/cvmm-fuzz-%s-XXXXXX", tmp && *tmp ? tmp : "/tmp", name);

	return n > 0 && (size_t)n < len && mkdtemp(buf) ? 0 : -1;
}

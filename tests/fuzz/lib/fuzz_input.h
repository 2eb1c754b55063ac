/*
 * Fuzz targets' view of their input: a cursor that hands out integers and
 * byte runs, with zeros once the input is used up (so every input, however
 * short, is a complete test case and the target stays deterministic).
 */
#ifndef CVMM_FUZZ_INPUT_H
#define CVMM_FUZZ_INPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct fuzz_input {
	const uint8_t *data;
	size_t size;
};

static inline bool fuzz_input_empty(const struct fuzz_input *in)
{
	return in->size == 0;
}

/* Copies up to n bytes into out, zero-filling what the input lacks;
 * returns how many came from the input. */
size_t fuzz_input_bytes(struct fuzz_input *in, void *out, size_t n);
/* Takes up to n bytes in place; *got says how many. */
const uint8_t *fuzz_input_take(struct fuzz_input *in, size_t n, size_t *got);
uint8_t fuzz_input_u8(struct fuzz_input *in);
uint16_t fuzz_input_u16(struct fuzz_input *in);
uint32_t fuzz_input_u32(struct fuzz_input *in);
uint64_t fuzz_input_u64(struct fuzz_input *in);

/* Sends the library's log to /dev/null (a fuzzer's guest "breaks rings"
 * millions of times) unless CVMM_FUZZ_LOG is set in the environment
 * (CVMM_FUZZ_LOG=debug: debug lines too, to see what a seed reaches). */
void fuzz_quiet_log(void);

/* Makes a private directory "$TMPDIR/cvmm-fuzz-<name>-XXXXXX" (/tmp without
 * TMPDIR: run-fuzz.sh points it into its own temporary directory, removed
 * however the fuzzer ends) into buf. 0 or -1. */
int fuzz_temp_dir(char *buf, size_t len, const char *name);

#endif

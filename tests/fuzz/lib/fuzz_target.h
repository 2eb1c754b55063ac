/*
 * The libFuzzer entry points every target in tests/fuzz/ defines, and the
 * LLVMFuzzerInitialize of a target that needs nothing set up but a quiet log.
 */
#ifndef CVMM_FUZZ_TARGET_H
#define CVMM_FUZZ_TARGET_H

#include <stddef.h>
#include <stdint.h>

#include "fuzz_input.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_TARGET_QUIET_INIT                                     \
	int LLVMFuzzerInitialize(int *argc, char ***argv)          \
	{                                                          \
		(void)argc;                                        \
		(void)argv;                                        \
		fuzz_quiet_log();                                  \
		return 0;                                          \
	}

#endif

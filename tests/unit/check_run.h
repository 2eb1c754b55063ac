/* The tail every unit-test main shares. */
#ifndef CVMM_TEST_CHECK_RUN_H
#define CVMM_TEST_CHECK_RUN_H

#include <check.h>

/* Runs every test of s (freeing it) and returns the process exit status. */
int check_run(Suite *s);
/* A suite of one test case holding tests[0..n). */
Suite *check_suite(const char *name, const TTest *const *tests, unsigned n);

#define CHECK_MAIN(name, ...)                                                        \
	int main(void)                                                               \
	{                                                                            \
		const TTest *const tests[] = { __VA_ARGS__ };                        \
		return check_run(check_suite(name, tests, sizeof(tests) / sizeof(tests[0]))); \
	}

#endif

/*
 * memcopy: the machine's single-thread memory-copy bandwidth, the ceiling
 * for a back-end moving page-cached data to or from guest memory. Copies a
 * buffer larger than the caches back and forth for a number of seconds.
 *
 *   memcopy [MIB] [SECONDS]      defaults: 256 MiB, 2 s
 *
 * Prints "memcopy mib=N seconds=S mibps=X" (bytes copied per second).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double mc_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? strtoul(argv[1], NULL, 0) : 256;
	double secs = argc > 2 ? strtod(argv[2], NULL) : 2, t0, t;
	size_t len = mib << 20;
	unsigned long long copies = 0;
	char *a, *b;

	if (!mib || secs <= 0 || argc > 3) {
		fprintf(stderr, "usage: memcopy [MIB] [SECONDS]\n");
		return 2;
	}
	a = malloc(len);
	b = malloc(len);
	if (!a || !b) {
		fprintf(stderr, "memcopy: cannot allocate 2 x %zu MiB\n", mib);
		return 1;
	}
	/* Fault every page in before timing. */
	memset(a, 1, len);
	memset(b, 2, len);
	t0 = mc_now();
	do {
		if (copies & 1)
			memcpy(a, b, len);
		else
			memcpy(b, a, len);
		copies++;
		t = mc_now();
	} while (t - t0 < secs);
	/* Keep the copies observable. */
	printf("memcopy mib=%zu seconds=%.2f mibps=%.0f check=%d\n", mib, t - t0,
	       (double)copies * (double)mib / (t - t0), a[len / 2] + b[len / 3]);
	free(a);
	free(b);
	return 0;
}

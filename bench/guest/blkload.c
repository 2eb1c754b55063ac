/*
 * Block load from inside a Linux guest (static, no fio in the initramfs):
 * QD threads each keep one O_DIRECT request of BS bytes in flight against
 * DEV for SECS seconds, random or sequential, and the totals are printed as
 * one line: "BENCH: <mode>-<size>-qd<QD> iops=N" (mibps=M from 64 KiB up).
 *
 *   blkload DEV randread|randwrite|seqread|seqwrite BS QD SECS SPAN_MIB
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct blkload {
	int fd;
	int write, random;
	size_t bs;
	uint64_t span;          /* bytes of the device used */
	double end;             /* CLOCK_MONOTONIC seconds */
};

struct blkload_thread {
	pthread_t tid;
	const struct blkload *l;
	unsigned index, nthreads;
	uint64_t ops;
	int failed;
};

static double blkload_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *blkload_run(void *arg)
{
	struct blkload_thread *t = arg;
	const struct blkload *l = t->l;
	uint64_t blocks = l->span / l->bs, next = t->index, seed = 0x9e3779b97f4a7c15ULL * (t->index + 1);
	void *buf;

	if (posix_memalign(&buf, 4096, l->bs)) {
		t->failed = 1;
		return NULL;
	}
	memset(buf, 0xa5, l->bs);
	while (blkload_now() < l->end) {
		uint64_t block;
		ssize_t n;

		if (l->random) {
			seed ^= seed << 13;
			seed ^= seed >> 7;
			seed ^= seed << 17;
			block = seed % blocks;
		} else {
			block = next % blocks;
			next += t->nthreads;
		}
		n = l->write ? pwrite(l->fd, buf, l->bs, (off_t)(block * l->bs))
			     : pread(l->fd, buf, l->bs, (off_t)(block * l->bs));
		if (n != (ssize_t)l->bs) {
			t->failed = 1;
			break;
		}
		t->ops++;
	}
	free(buf);
	return NULL;
}

int main(int argc, char **argv)
{
	struct blkload l = { 0 };
	struct blkload_thread *t;
	unsigned qd;
	double secs, start;
	uint64_t ops = 0;
	int failed = 0;

	if (argc != 7) {
		fprintf(stderr, "usage: blkload DEV randread|randwrite|seqread|seqwrite BS QD SECS SPAN_MIB\n");
		return 2;
	}
	l.write = strstr(argv[2], "write") != NULL;
	l.random = !strncmp(argv[2], "rand", 4);
	l.bs = strtoul(argv[3], NULL, 0);
	qd = (unsigned)strtoul(argv[4], NULL, 0);
	secs = strtod(argv[5], NULL);
	l.span = strtoull(argv[6], NULL, 0) << 20;
	l.fd = open(argv[1], (l.write ? O_WRONLY : O_RDONLY) | O_DIRECT);
	if (l.fd < 0 || !l.bs || l.bs % 512 || !qd || secs <= 0 || l.span < l.bs) {
		perror(argv[1]);
		return 2;
	}
	t = calloc(qd, sizeof(*t));
	start = blkload_now();
	l.end = start + secs;
	for (unsigned i = 0; i < qd; i++) {
		t[i] = (struct blkload_thread){ .l = &l, .index = i, .nthreads = qd };
		pthread_create(&t[i].tid, NULL, blkload_run, &t[i]);
	}
	for (unsigned i = 0; i < qd; i++) {
		pthread_join(t[i].tid, NULL);
		ops += t[i].ops;
		failed |= t[i].failed;
	}
	secs = blkload_now() - start;
	if (l.bs < 65536)
		printf("BENCH: %s-%zuk-qd%u iops=%.0f%s\n", argv[2], l.bs / 1024, qd, (double)ops / secs,
		       failed ? " (errors)" : "");
	else
		printf("BENCH: %s-%zuk-qd%u mibps=%.1f%s\n", argv[2], l.bs / 1024, qd,
		       (double)ops * (double)l.bs / secs / 1048576.0, failed ? " (errors)" : "");
	return failed;
}

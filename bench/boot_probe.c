/*
 * Helper for bench/boot.sh: starts cvmm and reports, against one monotonic
 * clock, when things happen and what memory the VMM uses.
 *
 *   boot_probe [-H PATTERN] [-t SECONDS] -- CVMM [ARGS...]
 *
 * Prints "spawn" (the clock reading just before posix_spawn), then every line
 * cvmm writes as "out +MS LINE" (stdout: the guest's serial console) or
 * "err +MS LINE" (stderr: log lines). MS is milliseconds since spawn; for log
 * lines ("cvmm[SEC.USEC] ...", CLOCK_MONOTONIC) it is taken from the log's
 * own timestamp. When a stdout line contains PATTERN, it reads
 * /proc/PID/smaps and prints "mem rss_kib=R guest_kib=G overhead_kib=R-G"
 * (guest memory = the memfd mappings), then sends SIGTERM. At the end:
 * "exit status=N maxrss_kib=M wall_ms=W".
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

struct bp_stream {
	int fd;
	const char *name;
	char buf[8192];
	size_t len;
};

struct bp_state {
	double t0;
	const char *pattern;
	pid_t pid;
	int measured;
};

static double bp_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Sums Rss over all mappings and over the guest's memfd mappings. */
static int bp_smaps(pid_t pid, long *rss, long *guest)
{
	char path[64], line[512];
	int in_guest = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/smaps", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return -errno;
	*rss = *guest = 0;
	while (fgets(line, sizeof(line), f)) {
		unsigned long start, end;
		char perms[8];
		long kb;

		/* A mapping header: "start-end perms offset dev inode [path]". */
		if (sscanf(line, "%lx-%lx %7s", &start, &end, perms) == 3)
			in_guest = strstr(line, " /memfd:") != NULL;
		else if (sscanf(line, "Rss: %ld kB", &kb) == 1) {
			*rss += kb;
			if (in_guest)
				*guest += kb;
		}
	}
	fclose(f);
	return 0;
}

static void bp_line(struct bp_state *s, const struct bp_stream *st, char *line)
{
	double at = bp_now() - s->t0;
	long sec, usec;
	size_t n = strlen(line);

	while (n && (line[n - 1] == '\r' || line[n - 1] == '\n'))
		line[--n] = 0;
	if (sscanf(line, "cvmm[%ld.%ld]", &sec, &usec) == 2)
		at = sec + usec / 1e6 - s->t0;
	printf("%s %+.3f %s\n", st->name, at * 1e3, line);
	if (s->pattern && !s->measured && !strcmp(st->name, "out") && strstr(line, s->pattern)) {
		long rss, guest;

		s->measured = 1;
		if (bp_smaps(s->pid, &rss, &guest) == 0)
			printf("mem rss_kib=%ld guest_kib=%ld overhead_kib=%ld\n", rss, guest, rss - guest);
		else
			printf("mem unavailable\n");
		kill(s->pid, SIGTERM);
	}
	fflush(stdout);
}

/* Reads what is there; returns 0 at EOF. */
static int bp_read(struct bp_state *s, struct bp_stream *st)
{
	ssize_t r = read(st->fd, st->buf + st->len, sizeof(st->buf) - 1 - st->len);
	char *nl;

	if (r <= 0) {
		if (r < 0 && errno == EINTR)
			return 1;
		if (st->len) {
			st->buf[st->len] = 0;
			bp_line(s, st, st->buf);
			st->len = 0;
		}
		return 0;
	}
	st->len += (size_t)r;
	st->buf[st->len] = 0;
	while ((nl = strchr(st->buf, '\n'))) {
		*nl = 0;
		bp_line(s, st, st->buf);
		st->len -= (size_t)(nl + 1 - st->buf);
		memmove(st->buf, nl + 1, st->len + 1);
	}
	if (st->len == sizeof(st->buf) - 1) {   /* an overlong line: flush it */
		bp_line(s, st, st->buf);
		st->len = 0;
	}
	return 1;
}

int main(int argc, char **argv)
{
	struct bp_state s = { .pattern = NULL };
	struct bp_stream out = { .name = "out" }, err = { .name = "err" };
	posix_spawn_file_actions_t fa;
	int opt, po[2], pe[2], status = 0, open_fds = 2;
	double timeout = 60, end;
	struct rusage ru;

	while ((opt = getopt(argc, argv, "H:t:")) != -1) {
		if (opt == 'H')
			s.pattern = optarg;
		else if (opt == 't')
			timeout = atof(optarg);
		else
			return 2;
	}
	if (optind >= argc) {
		fprintf(stderr, "usage: boot_probe [-H PATTERN] [-t SECONDS] -- CVMM [ARGS...]\n");
		return 2;
	}
	if (pipe2(po, O_CLOEXEC) < 0 || pipe2(pe, O_CLOEXEC) < 0) {
		perror("boot_probe: pipe");
		return 1;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, po[1], 1);
	posix_spawn_file_actions_adddup2(&fa, pe[1], 2);
	s.t0 = bp_now();
	errno = posix_spawn(&s.pid, argv[optind], &fa, NULL, argv + optind, environ);
	if (errno) {
		perror("boot_probe: spawn");
		return 1;
	}
	printf("spawn %.6f\n", s.t0);
	close(po[1]);
	close(pe[1]);
	out.fd = po[0];
	err.fd = pe[0];
	end = s.t0 + timeout;
	while (open_fds) {
		struct pollfd p[2] = { { out.fd, POLLIN, 0 }, { err.fd, POLLIN, 0 } };
		int left = (int)((end - bp_now()) * 1000);

		if (left <= 0 || poll(p, 2, left) == 0) {
			printf("timeout after %.0f s\n", timeout);
			kill(s.pid, SIGKILL);
			break;
		}
		if (out.fd >= 0 && p[0].revents && !bp_read(&s, &out)) {
			close(out.fd);
			out.fd = -1;
			open_fds--;
		}
		if (err.fd >= 0 && p[1].revents && !bp_read(&s, &err)) {
			close(err.fd);
			err.fd = -1;
			open_fds--;
		}
	}
	if (wait4(s.pid, &status, 0, &ru) < 0) {
		perror("boot_probe: wait");
		return 1;
	}
	printf("exit status=%d maxrss_kib=%ld wall_ms=%.3f\n",
	       WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), ru.ru_maxrss,
	       (bp_now() - s.t0) * 1e3);
	return 0;
}

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cvmm/log.h"

/* The one process-wide piece of state in cvmm: where log lines go. */
static struct {
	enum log_level level;
	int fd;
} log_state = { LOG_WARN, STDERR_FILENO };

static const char *const log_names[] = { "error", "warn", "info", "debug" };

void log_set_level(enum log_level level)
{
	log_state.level = level;
}

enum log_level log_get_level(void)
{
	return log_state.level;
}

int log_set_file(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

	if (fd < 0)
		return -errno;
	log_close();
	log_state.fd = fd;
	return 0;
}

int log_get_fd(void)
{
	return log_state.fd;
}

void log_close(void)
{
	if (log_state.fd != STDERR_FILENO)
		close(log_state.fd);
	log_state.fd = STDERR_FILENO;
}

static void log_vmsg(enum log_level level, unsigned long suppressed, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

static void log_vmsg(enum log_level level, unsigned long suppressed, const char *fmt, va_list ap)
{
	char line[1024];
	struct timespec ts;
	int n, m;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	n = snprintf(line, sizeof(line), "cvmm[%ld.%06ld] %s: ", (long)ts.tv_sec,
		     ts.tv_nsec / 1000, log_names[level]);
	if (suppressed)
		n += snprintf(line + n, sizeof(line) - n, "(%lu similar messages suppressed) ",
			      suppressed);
	m = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
	if (m < 0)
		return;
	n += m;
	if (n > (int)sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	/* One write per line keeps lines from different threads whole. */
	if (write(log_state.fd, line, n) < 0)
		return;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	if (level > log_state.level)
		return;
	va_start(ap, fmt);
	log_vmsg(level, 0, fmt, ap);
	va_end(ap);
}

void log_msg_ratelimited(struct log_ratelimit *rl, enum log_level level, const char *fmt, ...)
{
	struct timespec ts;
	unsigned long suppressed = 0;
	uint64_t now;
	bool print;
	va_list ap;

	if (level > log_state.level)
		return;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
	pthread_mutex_lock(&rl->lock);
	if (rl->printed == 0 || now - rl->window_start_ns >= LOG_RATELIMIT_WINDOW_NS) {
		rl->window_start_ns = now;
		rl->printed = 0;
	}
	print = rl->printed < LOG_RATELIMIT_BURST;
	if (print) {
		rl->printed++;
		suppressed = rl->suppressed;
		rl->suppressed = 0;
	} else {
		rl->suppressed++;
	}
	pthread_mutex_unlock(&rl->lock);
	if (!print)
		return;
	va_start(ap, fmt);
	log_vmsg(level, suppressed, fmt, ap);
	va_end(ap);
}

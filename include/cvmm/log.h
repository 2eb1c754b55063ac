/* Process-wide logging: one line per event, to stderr or a --log-file. */
#ifndef CVMM_LOG_H
#define CVMM_LOG_H

#include <pthread.h>
#include <stdint.h>

enum log_level { LOG_ERR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG };

/* Messages above this level are dropped (default LOG_WARN; -v raises it). */
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Sends log lines to PATH (appended) instead of stderr. Returns 0 or -errno. */
int log_set_file(const char *path);
void log_close(void);
/* Where log lines go now (for a signal handler's own line). */
int log_get_fd(void);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A call site's budget for log_msg_ratelimited: at most LOG_RATELIMIT_BURST
 * lines per LOG_RATELIMIT_WINDOW_NS; the count of lines dropped is reported
 * with the next line that gets through. For events a guest or peer can
 * repeat at will (malformed rings, resets, failing accepts). */
#define LOG_RATELIMIT_BURST 10
#define LOG_RATELIMIT_WINDOW_NS 5000000000ULL
struct log_ratelimit {
	pthread_mutex_t lock;
	uint64_t window_start_ns;
	unsigned printed;
	unsigned long suppressed;
};
#define LOG_RATELIMIT_INIT { .lock = PTHREAD_MUTEX_INITIALIZER }

void log_msg_ratelimited(struct log_ratelimit *rl, enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* One budget per call site: its state is the static below. */
#define log_ratelimited(level, ...)                                             \
	do {                                                                    \
		static struct log_ratelimit log_rl_ = LOG_RATELIMIT_INIT;       \
		log_msg_ratelimited(&log_rl_, level, __VA_ARGS__);              \
	} while (0)
#define log_err_ratelimited(...)  log_ratelimited(LOG_ERR, __VA_ARGS__)
#define log_warn_ratelimited(...) log_ratelimited(LOG_WARN, __VA_ARGS__)

#define log_err(...)   log_msg(LOG_ERR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif

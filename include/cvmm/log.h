/* Process-wide logging: one line per event, to stderr or a --log-file. */
#ifndef CVMM_LOG_H
#define CVMM_LOG_H

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

#define log_err(...)   log_msg(LOG_ERR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif

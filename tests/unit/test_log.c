/* Logging: the rate-limited helper a guest- or peer-triggered message uses. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cvmm/log.h"
#include "check_run.h"

static char log_path[] = "/tmp/cvmm-test-log-XXXXXX";

static void log_to_temp(void)
{
	int fd = mkstemp(log_path);

	ck_assert_int_ge(fd, 0);
	close(fd);
	ck_assert_int_eq(log_set_file(log_path), 0);
	log_set_level(LOG_WARN);
}

/* Lines of the log file containing needle; the last one copied to last. */
static int log_count(const char *needle, char *last, size_t len)
{
	FILE *f = fopen(log_path, "r");
	char line[1100];
	int n = 0;

	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f)) {
		if (!strstr(line, needle))
			continue;
		n++;
		if (last)
			snprintf(last, len, "%s", line);
	}
	fclose(f);
	return n;
}

static void flood_once(int i)
{
	log_warn_ratelimited("flood %d", i);
}

START_TEST(ratelimited_lines_are_bounded_and_counted)
{
	char last[1100];

	log_to_temp();
	for (int i = 0; i < 1000; i++)
		flood_once(i);
	ck_assert_int_eq(log_count("flood", NULL, 0), LOG_RATELIMIT_BURST);
	/* After the window, the next line says how many were dropped. */
	nanosleep(&(struct timespec){ .tv_sec = LOG_RATELIMIT_WINDOW_NS / 1000000000ULL,
				      .tv_nsec = 100 * 1000000 }, NULL);
	flood_once(1000);
	ck_assert_int_eq(log_count("flood", last, sizeof(last)), LOG_RATELIMIT_BURST + 1);
	ck_assert_ptr_nonnull(strstr(last, "(990 similar messages suppressed) flood 1000"));
	/* Plain messages are not limited. */
	for (int i = 0; i < 50; i++)
		log_warn("plain %d", i);
	ck_assert_int_eq(log_count("plain", NULL, 0), 50);
	log_close();
	unlink(log_path);
}
END_TEST

CHECK_MAIN("log",
	   ratelimited_lines_are_bounded_and_counted)

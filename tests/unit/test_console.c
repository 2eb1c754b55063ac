/* The terminal side of a console: which terminals cvmm reads and puts in
 * raw mode. Each case runs in a child with a pseudo-terminal as stdin. */
#include <check.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vmm/console.h"
#include "check_run.h"

static void tc_set_output(void *dev, int fd)
{
	(void)dev;
	(void)fd;
}

/* Exit status of a child that attaches a tty console to a fresh pty as
 * stdin: 0 when it reads input in raw mode, 1 when it reads none, 2 on a
 * setup error. controlling: the pty is the child's controlling terminal;
 * background: the child's process group is not its foreground group. */
static int tc_attach_status(bool controlling, bool background)
{
	pid_t pid = fork();
	int status;

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int master = posix_openpt(O_RDWR | O_NOCTTY);
		struct console c;
		struct console_sink sink = { .set_output = tc_set_output, .room_fd = -1 };

		if (setsid() < 0 || master < 0 || grantpt(master) || unlockpt(master))
			_exit(2);
		int slave = open(ptsname(master), O_RDWR | (controlling ? 0 : O_NOCTTY));
		if (slave < 0 || dup2(slave, STDIN_FILENO) < 0)
			_exit(2);
		if (background) {
			/* The session leader cannot leave its group: a child does. */
			pid_t child = fork();
			if (child > 0) {
				int st;
				waitpid(child, &st, 0);
				_exit(WIFEXITED(st) ? WEXITSTATUS(st) : 2);
			}
			if (child < 0 || setpgid(0, 0) < 0)
				_exit(2);
		}
		if (console_open(&c, CLI_SERIAL_TTY, NULL, "--serial") || console_attach(&c, &sink, NULL))
			_exit(2);
		int reads = c.in_fd == STDIN_FILENO && c.raw;
		console_close(&c);
		_exit(reads ? 0 : 1);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	return WEXITSTATUS(status);
}

START_TEST(test_tty_without_controlling_terminal_is_read)
{
	/* Like /dev/console in an init: no session owns it. */
	ck_assert_int_eq(tc_attach_status(false, false), 0);
}
END_TEST

START_TEST(test_controlling_terminal_in_foreground_is_read)
{
	ck_assert_int_eq(tc_attach_status(true, false), 0);
}
END_TEST

START_TEST(test_controlling_terminal_in_background_is_not_read)
{
	ck_assert_int_eq(tc_attach_status(true, true), 1);
}
END_TEST

CHECK_MAIN("console", test_tty_without_controlling_terminal_is_read,
	   test_controlling_terminal_in_foreground_is_read, test_controlling_terminal_in_background_is_not_read)

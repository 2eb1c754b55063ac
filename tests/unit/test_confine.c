/*
 * Confinement: each role's filter is built, a forbidden syscall ends the
 * thread's process with a line naming it, allowed ones run, argument rules
 * bite, log mode lets the call through, and a worker started by a confined
 * vCPU narrows itself to the worker list.
 *
 * Filters cannot be removed, so every check runs in a child process of its
 * own; the child's stderr comes back through a pipe.
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cvmm/confine.h"
#include "cvmm/worker.h"
#include "check_run.h"

struct confine_child {
	int status;
	char err[4096];
};

/* Runs body(arg) in a child whose stderr is captured; body's return value
 * is the child's exit status. */
static void confine_run_child(int (*body)(void *), void *arg, struct confine_child *out)
{
	int p[2];
	pid_t pid;
	ssize_t n;
	size_t len = 0;

	ck_assert_int_eq(pipe(p), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(p[0]);
		dup2(p[1], STDERR_FILENO);
		_exit(body(arg));
	}
	close(p[1]);
	while (len < sizeof(out->err) - 1 && (n = read(p[0], out->err + len, sizeof(out->err) - 1 - len)) > 0)
		len += (size_t)n;
	out->err[len] = 0;
	close(p[0]);
	ck_assert_int_eq(waitpid(pid, &out->status, 0), pid);
}

static void confine_expect_trap(const struct confine_child *c, const char *role, const char *syscall_name)
{
	char want[96];

	ck_assert_msg(WIFEXITED(c->status) && WEXITSTATUS(c->status) == 128 + SIGSYS,
		      "status %#x, stderr: %s", c->status, c->err);
	snprintf(want, sizeof(want), "cvmm: seccomp: thread %s (", role);
	ck_assert_msg(strstr(c->err, want), "no '%s' in: %s", want, c->err);
	snprintf(want, sizeof(want), "): forbidden syscall %s (nr ", syscall_name);
	ck_assert_msg(strstr(c->err, want), "no '%s' in: %s", want, c->err);
}

static void confine_expect_exit0(const struct confine_child *c)
{
	ck_assert_msg(WIFEXITED(c->status) && WEXITSTATUS(c->status) == 0, "status %#x, stderr: %s",
		      c->status, c->err);
}

static int confine_as(enum confine_mode mode, enum confine_role role)
{
	if (confine_configure(mode) || confine_thread(role))
		return 3;
	return 0;
}

START_TEST(modes_parse)
{
	enum confine_mode m;

	ck_assert_int_eq(confine_parse_mode("true", &m), 0);
	ck_assert_int_eq(m, CONFINE_SECCOMP_ON);
	ck_assert_int_eq(confine_parse_mode("false", &m), 0);
	ck_assert_int_eq(m, CONFINE_SECCOMP_OFF);
	ck_assert_int_eq(confine_parse_mode("log", &m), 0);
	ck_assert_int_eq(m, CONFINE_SECCOMP_LOG);
	ck_assert_int_eq(confine_parse_mode("yes", &m), -EINVAL);
	ck_assert_int_eq(confine_parse_mode("", &m), -EINVAL);
	ck_assert_int_eq(confine_parse_mode("TRUE", &m), -EINVAL);
}
END_TEST

/* Every table's rules are accepted by libseccomp, in both modes. */
START_TEST(every_role_builds)
{
	ck_assert_int_eq(confine_configure(CONFINE_SECCOMP_ON), 0);
	confine_reset();
	ck_assert_int_eq(confine_configure(CONFINE_SECCOMP_LOG), 0);
	confine_reset();
	for (int r = 0; r < CONFINE_ROLE_COUNT; r++)
		ck_assert_str_ne(confine_role_name((enum confine_role)r), "?");
}
END_TEST

/* No role may open files (glibc's malloc tries, and copes with the
 * refusal: it fails with EACCES instead of trapping), map executable
 * memory or make a process. */
static int confine_body_openat(void *arg)
{
	int err = confine_as(CONFINE_SECCOMP_ON, *(enum confine_role *)arg);

	if (err)
		return err;
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_UNDEFINED__)
	/* (Sanitizer runtimes open files to report: their builds allow it.) */
	if (open("/dev/null", O_RDONLY | O_CLOEXEC) >= 0 || errno != EACCES)
		return 4;
#endif
	mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return 0;
}

START_TEST(no_role_opens_files_or_maps_code)
{
	for (int r = 0; r < CONFINE_ROLE_COUNT; r++) {
		enum confine_role role = (enum confine_role)r;
		struct confine_child c;

		confine_run_child(confine_body_openat, &role, &c);
		confine_expect_trap(&c, confine_role_name(role), "mmap");
	}
}
END_TEST

/* Allowed calls keep working: a worker (vsock) makes Unix sockets... */
static int confine_body_unix_socket(void *arg)
{
	int fd, err = confine_as(CONFINE_SECCOMP_ON, CONFINE_ROLE_WORKER);

	(void)arg;
	if (err)
		return err;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 4;
	close(fd);
	return 0;
}

/* ... but no other kind, and no socket pairs (no table has them). */
static int confine_body_socketpair(void *arg)
{
	int sv[2], err = confine_as(CONFINE_SECCOMP_ON, CONFINE_ROLE_WORKER);

	(void)arg;
	if (err)
		return err;
	socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv);
	return 0;
}

static int confine_body_inet_socket(void *arg)
{
	int err = confine_as(CONFINE_SECCOMP_ON, CONFINE_ROLE_WORKER);

	(void)arg;
	if (err)
		return err;
	socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	return 0;
}

/* An adaptive worker changes its own scheduling policy (worker.h) ... */
static int confine_body_own_policy(void *arg)
{
	struct sched_param none = { 0 };
	int err = confine_as(CONFINE_SECCOMP_ON, CONFINE_ROLE_WORKER);

	(void)arg;
	if (err)
		return err;
	if (sched_setscheduler(0, SCHED_BATCH, &none) ||
	    sched_setscheduler(0, SCHED_OTHER, &none))
		return 4;
	return 0;
}

/* ... and no other thread's or process's. */
static int confine_body_other_policy(void *arg)
{
	struct sched_param none = { 0 };
	pid_t parent = getppid();
	int err = confine_as(CONFINE_SECCOMP_ON, CONFINE_ROLE_WORKER);

	(void)arg;
	if (err)
		return err;
	sched_setscheduler(parent, SCHED_BATCH, &none);
	return 0;
}

START_TEST(argument_rules_bite)
{
	struct confine_child c;

	confine_run_child(confine_body_unix_socket, NULL, &c);
	confine_expect_exit0(&c);
	confine_run_child(confine_body_inet_socket, NULL, &c);
	confine_expect_trap(&c, "worker", "socket");
	confine_run_child(confine_body_socketpair, NULL, &c);
	confine_expect_trap(&c, "worker", "socketpair");
	confine_run_child(confine_body_own_policy, NULL, &c);
	confine_expect_exit0(&c);
	confine_run_child(confine_body_other_policy, NULL, &c);
	confine_expect_trap(&c, "worker", "sched_setscheduler");
}
END_TEST

/* Log mode: the forbidden call runs (the kernel logs it). */
static int confine_body_log(void *arg)
{
	int fd, err = confine_as(CONFINE_SECCOMP_LOG, CONFINE_ROLE_WORKER);

	(void)arg;
	if (err)
		return err;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	return fd >= 0 ? 0 : 5;
}

START_TEST(log_mode_lets_calls_through)
{
	struct confine_child c;

	confine_run_child(confine_body_log, NULL, &c);
	confine_expect_exit0(&c);
}
END_TEST

/* Off: no filter, but capabilities are gone and no_new_privs is set. */
static int confine_body_off(void *arg)
{
	char buf[4096], *seccomp, *nnp, *capeff;
	ssize_t n;
	int fd, err = confine_as(CONFINE_SECCOMP_OFF, CONFINE_ROLE_WORKER);

	(void)arg;
	if (err)
		return err;
	fd = open("/proc/thread-self/status", O_RDONLY | O_CLOEXEC);
	if (fd < 0 || (n = read(fd, buf, sizeof(buf) - 1)) <= 0)
		return 5;
	buf[n] = 0;
	seccomp = strstr(buf, "\nSeccomp:\t0\n");
	nnp = strstr(buf, "\nNoNewPrivs:\t1\n");
	capeff = strstr(buf, "\nCapEff:\t0000000000000000\n");
	if (!seccomp || !nnp || !capeff) {
		fprintf(stderr, "%s", buf);
		return 6;
	}
	return 0;
}

START_TEST(off_still_drops_privileges)
{
	struct confine_child c;

	confine_run_child(confine_body_off, NULL, &c);
	confine_expect_exit0(&c);
}
END_TEST

/* Before confine_configure (unit tests, the host check) nothing happens. */
static int confine_body_unconfigured(void *arg)
{
	int fd;

	(void)arg;
	confine_reset();
	if (confine_thread(CONFINE_ROLE_WORKER))
		return 3;
	fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	return fd >= 0 ? 0 : 5;
}

START_TEST(unconfigured_is_a_no_op)
{
	struct confine_child c;

	confine_run_child(confine_body_unconfigured, NULL, &c);
	confine_expect_exit0(&c);
}
END_TEST

/* A vCPU thread may start threads, never processes. */
static int confine_body_vcpu_fork(void *arg)
{
	int err = confine_as(CONFINE_SECCOMP_ON, CONFINE_ROLE_VCPU);

	(void)arg;
	if (err)
		return err;
	if (fork() == 0)
		_exit(0);
	return 0;
}

START_TEST(vcpu_cannot_fork)
{
	struct confine_child c;

	confine_run_child(confine_body_vcpu_fork, NULL, &c);
	confine_expect_trap(&c, "vcpu", "clone");
}
END_TEST

/*
 * A worker started by a confined vCPU narrows itself: an eventfd (allowed
 * to a vCPU, which sets up queues) is forbidden inside the worker.
 */
static void confine_worker_makes_eventfd(void *arg, uint32_t events)
{
	(void)events;
	(void)arg;
	eventfd(0, EFD_CLOEXEC);
}

static void *confine_nothing(void *arg)
{
	return arg;
}

static int confine_body_worker_narrows(void *arg)
{
	struct worker w;
	struct worker_watch watch = { .fn = confine_worker_makes_eventfd };
	int fd, never, err;
	pthread_t first;
	uint64_t v;

	(void)arg;
	/* As in cvmm, a thread starts before confinement: glibc installs
	 * its own signal handlers when the first one does. */
	if (pthread_create(&first, NULL, confine_nothing, NULL) || pthread_join(first, NULL))
		return 7;
	err = confine_as(CONFINE_SECCOMP_ON, CONFINE_ROLE_VCPU);
	if (err)
		return err;
	fd = eventfd(1, EFD_CLOEXEC | EFD_NONBLOCK);
	never = eventfd(0, EFD_CLOEXEC);
	if (fd < 0 || never < 0 || worker_init(&w, "test-worker") || worker_watch(&w, fd, EPOLLIN, &watch) ||
	    worker_start(&w))
		return 4;
	/* Blocks (with an allowed call) until the worker's forbidden one
	 * ends the process. */
	if (read(never, &v, sizeof(v)) < 0)
		return 5;
	return 6;
}

START_TEST(worker_started_by_vcpu_narrows)
{
	struct confine_child c;

	confine_run_child(confine_body_worker_narrows, NULL, &c);
	confine_expect_trap(&c, "worker", "eventfd2");
	ck_assert_msg(strstr(c.err, "(test-worker, tid "), "thread name missing: %s", c.err);
}
END_TEST

#if defined(__SANITIZE_ADDRESS__)
/* In ASan builds (make asan-unit, and the cvmm that make asan-integration
 * runs), a confined thread's memory error gets the whole report, its stack
 * symbolized, instead of a SIGSYS from a syscall the runtime makes while
 * reporting (fcntl was one). */
static int confine_body_overflow(void *arg)
{
	enum confine_role role = *(enum confine_role *)arg;
	volatile char *volatile p;
	int err = confine_as(CONFINE_SECCOMP_ON, role);

	if (err)
		return err;
	p = malloc(8);
	p[8] = 1;
	free((void *)p);
	return 0;
}

START_TEST(sanitizer_report_completes)
{
	for (int r = 0; r < CONFINE_ROLE_COUNT; r++) {
		enum confine_role role = (enum confine_role)r;
		struct confine_child c;

		confine_run_child(confine_body_overflow, &role, &c);
		ck_assert_msg(!strstr(c.err, "forbidden syscall"), "%s: %s", confine_role_name(role), c.err);
		ck_assert_msg(strstr(c.err, "ERROR: AddressSanitizer: heap-buffer-overflow") &&
			      strstr(c.err, " in confine_body_overflow tests/unit/test_confine.c:") &&
			      strstr(c.err, "SUMMARY: AddressSanitizer"),
			      "%s: report incomplete (status %#x): %s", confine_role_name(role), c.status, c.err);
		ck_assert_msg(!WIFEXITED(c.status) || WEXITSTATUS(c.status) != 0, "%s: status %#x",
			      confine_role_name(role), c.status);
	}
}
END_TEST
#define CONFINE_SANITIZER_TESTS , sanitizer_report_completes
#else
#define CONFINE_SANITIZER_TESTS
#endif

CHECK_MAIN("confine",
	   modes_parse,
	   every_role_builds,
	   no_role_opens_files_or_maps_code,
	   argument_rules_bite,
	   log_mode_lets_calls_through,
	   off_still_drops_privileges,
	   unconfigured_is_a_no_op,
	   vcpu_cannot_fork,
	   worker_started_by_vcpu_narrows CONFINE_SANITIZER_TESTS)

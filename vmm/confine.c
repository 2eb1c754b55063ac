/*
 * Confinement: capabilities, no_new_privs and per-thread seccomp filters
 * (the tables are in confine_rules.c).
 *
 * Every role's filter is compiled to BPF once, before any thread starts,
 * so a thread confines itself with a few syscalls and no libseccomp work
 * (which would need more syscalls than the thread that started it allows).
 */
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "confine_internal.h"
#include "cvmm/log.h"

#define CONFINE_NAMES 512     /* syscall numbers whose names a violation can print */
#define CONFINE_NAME_LEN 32

/*
 * Process-wide, like the log: set once by main before threads start, read
 * by every thread as it starts and by the SIGSYS handler.
 */
static struct {
	bool configured;
	enum confine_mode mode;
	struct sock_fprog progs[CONFINE_ROLE_COUNT];
	char names[CONFINE_NAMES][CONFINE_NAME_LEN];
} confine_state;

/* What the SIGSYS handler says about the thread it runs on. */
static __thread struct {
	const char *role;
	long tid;
	char comm[16];
} confine_self;

int confine_parse_mode(const char *text, enum confine_mode *mode)
{
	static const struct { const char *word; enum confine_mode mode; } words[] = {
		{ "true", CONFINE_SECCOMP_ON }, { "false", CONFINE_SECCOMP_OFF }, { "log", CONFINE_SECCOMP_LOG },
	};

	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (!strcmp(text, words[i].word)) {
			*mode = words[i].mode;
			return 0;
		}
	return -EINVAL;
}

const char *confine_role_name(enum confine_role role)
{
	return role < CONFINE_ROLE_COUNT ? confine_roles[role].name : "?";
}

/* ---- the SIGSYS handler: async-signal-safe only ---- */

static size_t confine_put_str(char *buf, size_t n, size_t cap, const char *s)
{
	while (*s && n < cap)
		buf[n++] = *s++;
	return n;
}

static size_t confine_put_num(char *buf, size_t n, size_t cap, unsigned long v)
{
	char digits[24];
	size_t d = 0;

	do {
		digits[d++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (d && n < cap)
		buf[n++] = digits[--d];
	return n;
}

static void confine_sigsys(int sig, siginfo_t *si, void *uctx)
{
	char line[256];
	size_t n = 0, cap = sizeof(line) - 1;
	int nr = si->si_syscall;
	int log = log_get_fd();

	(void)uctx;
	n = confine_put_str(line, n, cap, "cvmm: seccomp: thread ");
	n = confine_put_str(line, n, cap, confine_self.role ? confine_self.role : "?");
	n = confine_put_str(line, n, cap, " (");
	n = confine_put_str(line, n, cap, confine_self.comm);
	n = confine_put_str(line, n, cap, ", tid ");
	n = confine_put_num(line, n, cap, (unsigned long)confine_self.tid);
	n = confine_put_str(line, n, cap, "): forbidden syscall ");
	n = confine_put_str(line, n, cap, nr >= 0 && nr < CONFINE_NAMES && confine_state.names[nr][0] ?
			    confine_state.names[nr] : "?");
	n = confine_put_str(line, n, cap, " (nr ");
	n = confine_put_num(line, n, cap, (unsigned long)nr);
	n = confine_put_str(line, n, cap, ")\n");
	/* Nothing to do if a write fails: the exit status still says why. */
	if (write(STDERR_FILENO, line, n) == (ssize_t)n && log != STDERR_FILENO && write(log, line, n) < 0)
		n = 0;
	_exit(128 + sig);
}

/* ---- building the filters ---- */

static int confine_add_rule(scmp_filter_ctx ctx, const struct confine_rule *r)
{
	uint32_t action = r->refuse_errno ? SCMP_ACT_ERRNO((uint32_t)r->refuse_errno) : SCMP_ACT_ALLOW;
	struct scmp_arg_cmp cmp;

	if (r->nr < 0)
		return -ENOSYS;
	if (r->check == CONFINE_ANY_ARGS)
		return seccomp_rule_add(ctx, action, r->nr, 0);
	cmp = (struct scmp_arg_cmp){ .arg = r->arg, .op = SCMP_CMP_MASKED_EQ, .datum_a = r->mask,
				     .datum_b = r->value_fn ? r->value_fn() : r->value };
	return seccomp_rule_add_array(ctx, action, r->nr, 1, &cmp);
}

/* Compiles ctx to BPF in memory (libseccomp 2.5 exports only to an fd). */
static int confine_export(scmp_filter_ctx ctx, struct sock_fprog *prog)
{
	struct stat st;
	void *buf;
	int fd = memfd_create("cvmm-seccomp", MFD_CLOEXEC), err;

	if (fd < 0)
		return -errno;
	err = seccomp_export_bpf(ctx, fd);
	if (!err && fstat(fd, &st) < 0)
		err = -errno;
	if (!err && (st.st_size <= 0 || st.st_size % sizeof(struct sock_filter) ||
		     st.st_size / sizeof(struct sock_filter) > BPF_MAXINSNS))
		err = -E2BIG;
	if (err) {
		close(fd);
		return err;
	}
	buf = malloc((size_t)st.st_size);
	if (!buf || pread(fd, buf, (size_t)st.st_size, 0) != st.st_size) {
		free(buf);
		close(fd);
		return -ENOMEM;
	}
	close(fd);
	prog->filter = buf;
	prog->len = (unsigned short)(st.st_size / sizeof(struct sock_filter));
	return 0;
}

static int confine_build(enum confine_role role, uint32_t default_action, struct sock_fprog *prog)
{
	const struct confine_role_spec *spec = &confine_roles[role];
	scmp_filter_ctx ctx = seccomp_init(default_action);
	int err = 0;

	if (!ctx)
		return -ENOMEM;
	for (size_t t = 0; !err && t < CONFINE_ROLE_MAX_TABLES && spec->tables[t]; t++) {
		const struct confine_table *table = spec->tables[t];

		for (size_t i = 0; !err && i < table->count; i++) {
			err = confine_add_rule(ctx, &table->rules[i]);
			if (err)
				log_err("seccomp: role %s, table %s: cannot add %s: %s", spec->name, table->name,
					table->rules[i].name, strerror(-err));
		}
	}
	if (!err) {
		err = confine_export(ctx, prog);
		if (err)
			log_err("seccomp: role %s: cannot compile the filter: %s", spec->name, strerror(-err));
	}
	seccomp_release(ctx);
	return err;
}

static void confine_name_syscalls(void)
{
	for (int nr = 0; nr < CONFINE_NAMES; nr++) {
		char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);

		if (name) {
			strncpy(confine_state.names[nr], name, CONFINE_NAME_LEN - 1);
			free(name);
		}
	}
}

void confine_reset(void)
{
	for (int r = 0; r < CONFINE_ROLE_COUNT; r++)
		free(confine_state.progs[r].filter);
	memset(&confine_state, 0, sizeof(confine_state));
}

int confine_configure(enum confine_mode mode)
{
	uint32_t action = mode == CONFINE_SECCOMP_LOG ? SCMP_ACT_LOG : SCMP_ACT_TRAP;
	struct sigaction sa = { .sa_sigaction = confine_sigsys, .sa_flags = SA_SIGINFO };
	int err;

	confine_reset();
	confine_state.mode = mode;
	if (mode != CONFINE_SECCOMP_OFF) {
		for (int r = 0; r < CONFINE_ROLE_COUNT; r++) {
			err = confine_build((enum confine_role)r, action, &confine_state.progs[r]);
			if (err) {
				confine_reset();
				return err;
			}
		}
		confine_name_syscalls();
		sigemptyset(&sa.sa_mask);
		if (sigaction(SIGSYS, &sa, NULL) < 0) {
			err = -errno;
			log_err("seccomp: cannot catch SIGSYS: %s", strerror(-err));
			confine_reset();
			return err;
		}
	}
	confine_state.configured = true;
	return 0;
}

/* ---- confining a thread ---- */

/* Capabilities are per thread: drop this one's, bounding set included, unless
 * it started with none (a thread started by a confined one). */
static int confine_drop_caps(void)
{
	cap_t now = cap_get_proc(), none = cap_init();
	cap_flag_value_t setpcap = CAP_CLEAR;
	int err = 0;

	if (!now || !none) {
		err = -ENOMEM;
		goto out;
	}
	if (!cap_compare(now, none))
		goto out;
	if (cap_get_flag(now, CAP_SETPCAP, CAP_EFFECTIVE, &setpcap) == 0 && setpcap == CAP_SET)
		for (cap_value_t c = 0; c < (cap_value_t)cap_max_bits() && !err; c++)
			if (cap_drop_bound(c) < 0)
				err = -errno;
	if (!err && cap_set_proc(none) < 0)
		err = -errno;
out:
	cap_free(now);
	cap_free(none);
	return err;
}

int confine_thread(enum confine_role role)
{
	const char *what;
	int err = 0;

	if (!confine_state.configured || role >= CONFINE_ROLE_COUNT)
		return 0;
	confine_self.role = confine_roles[role].name;
	confine_self.tid = gettid();
	prctl(PR_GET_NAME, confine_self.comm, 0, 0, 0);
	what = "drop capabilities";
	err = confine_drop_caps();
	if (!err) {
		what = "set no_new_privs";
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
			err = -errno;
	}
	if (!err && confine_state.mode != CONFINE_SECCOMP_OFF) {
		what = "install its seccomp filter";
		if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &confine_state.progs[role], 0, 0) < 0)
			err = -errno;
	}
	if (err)
		log_err("cannot confine the %s thread: %s: %s", confine_self.role, what, strerror(-err));
	return err;
}

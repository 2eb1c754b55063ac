/*
 * Confinement after setup: every thread drops all capabilities, sets
 * no_new_privs and runs under a seccomp allow-list for its role. The lists
 * are tables in vmm/confine_rules.c; docs/security.md explains them.
 *
 * Seccomp filters are per thread, stack, and are inherited by threads
 * created later. So each thread installs its own role's filter as it starts
 * (or, for a main thread, once setup is over), and a role that starts
 * threads of another role allows what those need (the tables say which).
 */
#ifndef CVMM_CONFINE_H
#define CVMM_CONFINE_H

enum confine_mode {
	CONFINE_SECCOMP_ON,    /* a forbidden syscall ends the process, naming it */
	CONFINE_SECCOMP_OFF,   /* no filter (capabilities are still dropped) */
	CONFINE_SECCOMP_LOG,   /* forbidden syscalls run and are logged by the kernel (audit) */
};

enum confine_role {
	CONFINE_ROLE_VMM,      /* the VMM's main thread: event loop, console, teardown */
	CONFINE_ROLE_VMM_RESTART, /* the same, able to reset the machine (--on-reboot restart) */
	CONFINE_ROLE_VCPU,     /* a vCPU thread: KVM_RUN and the device registers it reaches */
	CONFINE_ROLE_WORKER,   /* a device worker (devices/worker.c): queues and device back-ends */
	CONFINE_ROLE_BACKEND,  /* a --*-backend's main thread: the vhost-user server */
	CONFINE_ROLE_FRONTEND, /* a vhost-user front-end's service thread: reconnects, back-end requests */
	CONFINE_ROLE_COUNT,
};

/* "true", "false" or "log" -> *mode; -EINVAL otherwise. */
int confine_parse_mode(const char *text, enum confine_mode *mode);
const char *confine_role_name(enum confine_role role);

/*
 * Builds every role's filter and installs the SIGSYS handler. Call once,
 * from main before any thread starts; until then confine_thread does
 * nothing (unit tests that start workers rely on that). 0 or -errno, logged.
 */
int confine_configure(enum confine_mode mode);
/* The process-wide state confine_configure built; for tests. */
void confine_reset(void);

/*
 * Confines the calling thread for role: all capabilities dropped (when it
 * still has some), no_new_privs, then the role's filter unless seccomp is
 * off. Nothing happens before confine_configure. 0 or -errno, logged.
 */
int confine_thread(enum confine_role role);

#endif

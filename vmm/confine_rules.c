/*
 * The seccomp allow-lists, one table per job, and which tables each thread
 * role gets (docs/security.md explains the choices).
 *
 * A thread inherits the filter of the thread that created it and can only
 * narrow it, so a role that starts device workers (vCPU: a driver starts a
 * queue; back-end server: a front-end does; VMM main: teardown restarts a
 * worker) includes the worker table and the thread-start table: the worker
 * then narrows itself to its own list.
 *
 * Adding a syscall: put it in the table of the job that needs it, with the
 * narrowest arguments that work. Tables name syscalls of every arch cvmm
 * builds for: one this arch lacks (open, poll, epoll_wait, unlink on arm64,
 * whose glibc calls openat, ppoll, epoll_pwait, unlinkat) is left out of its
 * filter. A missing rule shows as
 * "cvmm: seccomp: thread ...: forbidden syscall NAME" and the process ends
 * (--seccomp log lets it run while you collect them).
 */
#include <fcntl.h>
#include <errno.h>
#include <linux/fs.h>
#include <linux/if_tun.h>
#include <linux/kvm.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>

#include "confine_internal.h"
#include "vcpu.h"

#define ALLOW(sys) { SCMP_SYS(sys), #sys, CONFINE_ANY_ARGS, 0, 0, 0, 0, NULL }
#define ALLOW_MASKED(sys, a, m, v) { SCMP_SYS(sys), #sys, CONFINE_ARG_MASKED_EQ, a, m, v, 0, NULL }
#define ALLOW_ARG(sys, a, v) ALLOW_MASKED(sys, a, ~0ULL, v)
/* ioctl's request is an unsigned int in the kernel: compare those 32 bits. */
#define ALLOW_IOCTL(req) ALLOW_MASKED(ioctl, 1, 0xffffffffULL, (uint32_t)(req))
/* An argument only known at run time (glibc's SIGRTMIN is a function). */
#define ALLOW_ARG_FN(sys, a, fn) { SCMP_SYS(sys), #sys, CONFINE_ARG_MASKED_EQ, a, ~0ULL, 0, 0, fn }
#define REFUSE(sys, err) { SCMP_SYS(sys), #sys, CONFINE_ANY_ARGS, 0, 0, 0, err, NULL }
#define TABLE(t) { #t, t, sizeof(t) / sizeof(t[0]) }

/* Sending the vCPU kick (vcpu.c) to a vCPU thread. */
static uint64_t confine_kick_signal(void)
{
	return (uint64_t)VCPU_KICK_SIGNAL;
}

/* Every thread: memory, time, locks, logging, ending. No PROT_EXEC. */
static const struct confine_rule confine_base[] = {
	ALLOW(brk),
	ALLOW_MASKED(mmap, 2, PROT_EXEC, 0),
	ALLOW_MASKED(mprotect, 2, PROT_EXEC, 0),
	ALLOW(munmap),
	ALLOW(mremap),
	ALLOW(madvise),
	ALLOW(futex),
	ALLOW(sched_yield),
	ALLOW(sched_getaffinity),   /* glibc sizes malloc arenas with it */
	ALLOW(clock_gettime),
	ALLOW(clock_nanosleep),
	ALLOW(nanosleep),
	ALLOW(getpid),
	ALLOW(gettid),
	ALLOW(rt_sigprocmask),
	ALLOW(rt_sigreturn),
	ALLOW(restart_syscall),
	ALLOW(write),               /* log lines, eventfd signals */
	ALLOW(close),
	ALLOW(exit),
	ALLOW(exit_group),
	/* memguard.c: its SIGBUS handler is installed when a front-end's
	 * memory is first mapped, and resets itself in whichever thread
	 * faulted on memory that is not guarded. */
	ALLOW_ARG(rt_sigaction, 0, SIGBUS),
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_UNDEFINED__)
	/* glibc's malloc opens /proc/sys/vm/overcommit_memory the first time
	 * a thread's heap shrinks, and /sys/devices/system/cpu/online when it
	 * sizes arenas, at any moment; it copes with a failure. cvmm itself
	 * opens nothing after setup, so opening fails instead of trapping. */
	REFUSE(openat, EACCES),
#endif
};

/*
 * Starting a thread, and that thread confining itself. glibc tries clone3
 * first and falls back to clone, whose flags seccomp can see: clone3 fails
 * with ENOSYS and clone must make a thread, never a process.
 */
static const struct confine_rule confine_thread_start[] = {
	REFUSE(clone3, ENOSYS),
	ALLOW_MASKED(clone, 0, CLONE_THREAD, CLONE_THREAD),
	ALLOW(set_robust_list),
	ALLOW(rseq),
	ALLOW_ARG(prctl, 0, PR_SET_NAME),
	ALLOW_ARG(prctl, 0, PR_GET_NAME),
	ALLOW_ARG(prctl, 0, PR_SET_NO_NEW_PRIVS),
	ALLOW_ARG(prctl, 0, PR_SET_SECCOMP),   /* a filter can only narrow */
	ALLOW(capget),
};

/*
 * A device worker: an epoll loop over queue kicks and the device's own fds
 * (image + io_uring, tap, vsock's Unix sockets and timer, rng source,
 * console, inotify, signalfd of a back-end), signalling the guest through
 * eventfds or, in-process, KVM interrupt ioctls.
 */
static const struct confine_rule confine_worker[] = {
	ALLOW(epoll_wait),
	ALLOW(epoll_pwait),
	ALLOW(epoll_ctl),
	ALLOW(read),
	ALLOW(readv),
	ALLOW(writev),
	ALLOW(pread64),
	ALLOW(pwrite64),
	ALLOW(preadv),
	ALLOW(pwritev),
	ALLOW(preadv2),
	ALLOW(pwritev2),
	ALLOW(lseek),
	ALLOW(fstat),
	ALLOW(newfstatat),
	ALLOW(fdatasync),
	ALLOW(fsync),
	ALLOW(fallocate),
	ALLOW(io_uring_enter),
	ALLOW(getrandom),
	ALLOW(timerfd_settime),
	ALLOW_ARG(socket, 0, AF_UNIX),
	ALLOW(connect),
	ALLOW(accept4),
	ALLOW(sendmsg),
	ALLOW(recvmsg),
	ALLOW(sendto),
	ALLOW(recvfrom),
	ALLOW(shutdown),
	ALLOW(getsockopt),
	ALLOW(poll),
	ALLOW(ppoll),
	ALLOW_IOCTL(BLKGETSIZE64),
	ALLOW_IOCTL(TUNSETQUEUE),
	ALLOW_IOCTL(TUNSETOFFLOAD),
	ALLOW_IOCTL(TUNSETVNETHDRSZ),
	ALLOW_IOCTL(KVM_SIGNAL_MSI),
	ALLOW_IOCTL(KVM_IRQ_LINE),
	/* worker.c: an adaptive worker changes its own policy (pid 0). */
	ALLOW_ARG(sched_setscheduler, 0, 0),
};

/*
 * Setting up and tearing down queues (a driver's or front-end's start and
 * stop): eventfds, epoll sets, io_uring instances, KVM ioeventfds/irqfds
 * and interrupt routes in-process.
 */
static const struct confine_rule confine_queue_control[] = {
	ALLOW(eventfd2),
	ALLOW(epoll_create1),
	ALLOW(io_uring_setup),
	ALLOW(io_uring_register),
	ALLOW_IOCTL(KVM_IOEVENTFD),
	ALLOW_IOCTL(KVM_IRQFD),
	ALLOW_IOCTL(KVM_SET_GSI_ROUTING),
};

/* A vCPU: run the guest, read and fix its state (emulation assist, dumps),
 * kick the others when the VM stops. */
static const struct confine_rule confine_vcpu[] = {
	ALLOW_IOCTL(KVM_RUN),
#if defined(__x86_64__)
	/* arch/x86: emulation assist and register dumps */
	ALLOW_IOCTL(KVM_GET_REGS),
	ALLOW_IOCTL(KVM_SET_REGS),
	ALLOW_IOCTL(KVM_GET_SREGS),
	ALLOW_IOCTL(KVM_GET_FPU),
	ALLOW_IOCTL(KVM_GET_VCPU_EVENTS),
	ALLOW_IOCTL(KVM_SET_VCPU_EVENTS),
	ALLOW_IOCTL(KVM_TRANSLATE),
	ALLOW_IOCTL(KVM_GET_LAPIC),
#elif defined(__aarch64__)
	/* arch/arm64: register dumps (PSCI is handled in KVM) */
	ALLOW_IOCTL(KVM_GET_ONE_REG),
#endif
	ALLOW_ARG_FN(tgkill, 2, confine_kick_signal),
};

/* The VMM's main loop: signalfd, console sockets and terminal, stopping
 * the vCPUs, removing a console socket at exit. */
static const struct confine_rule confine_vmm[] = {
	ALLOW_IOCTL(TCGETS),
	ALLOW_IOCTL(TCSETS),
	ALLOW_ARG_FN(tgkill, 2, confine_kick_signal),
	ALLOW(unlink),
	ALLOW(unlinkat),            /* unlink() on arm64 */
};

/* --on-reboot restart: the VMM thread puts the parked vCPUs and the
 * in-kernel interrupt controllers back to power-on state (arch/x86
 * machine.c, regs.c); the guest image is copied into RAM it has mapped. */
static const struct confine_rule confine_vmm_restart[] = {
#if defined(__x86_64__)
	ALLOW_IOCTL(KVM_SET_IRQCHIP),
	ALLOW_IOCTL(KVM_SET_PIT2),
	ALLOW_IOCTL(KVM_SET_MSRS),
	ALLOW_IOCTL(KVM_GET_LAPIC),
	ALLOW_IOCTL(KVM_SET_LAPIC),
	ALLOW_IOCTL(KVM_SET_VCPU_EVENTS),
	ALLOW_IOCTL(KVM_SET_DEBUGREGS),
	ALLOW_IOCTL(KVM_SET_XCRS),
	ALLOW_IOCTL(KVM_SET_MP_STATE),
	ALLOW_IOCTL(KVM_GET_SREGS),
	ALLOW_IOCTL(KVM_SET_SREGS),
	ALLOW_IOCTL(KVM_SET_REGS),
	ALLOW_IOCTL(KVM_SET_FPU),
#endif
	ALLOW_ARG_FN(tgkill, 2, confine_kick_signal),
};

/* A back-end's vhost-user server: the socket (listening, or reconnecting
 * with client=on), memory tables and inflight regions it maps, and
 * removing its socket at exit. */
static const struct confine_rule confine_backend[] = {
	ALLOW(memfd_create),
	ALLOW(ftruncate),
	ALLOW_ARG(fcntl, 1, F_ADD_SEALS),
	ALLOW_ARG(fcntl, 1, F_GET_SEALS),
	ALLOW_ARG(fcntl, 1, F_GETFL),           /* kick/call fds made non-blocking */
	ALLOW_ARG(fcntl, 1, F_SETFL),
	ALLOW(readlink),                        /* /proc/self/fd/N: is it an eventfd? */
	ALLOW(readlinkat),                      /* readlink() on arm64 */
	ALLOW_ARG(setsockopt, 2, SO_SNDTIMEO),   /* on each accepted front-end */
	ALLOW(unlink),
	ALLOW(unlinkat),
};

/* A vhost-user front-end's service thread (vhost/frontend): on top of a
 * worker's socket calls, a reconnect makes the new back-end request
 * channel, one end of which it sends. */
static const struct confine_rule confine_frontend[] = {
	ALLOW_ARG(socketpair, 0, AF_UNIX),
};

/*
 * ASan/UBSan runtimes report (and LeakSanitizer checks at exit) with
 * syscalls cvmm itself never makes: opening /proc/self/maps, an alternate
 * signal stack, and a tracer thread that stops the others with ptrace.
 * Sanitizer builds are for testing only.
 */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_UNDEFINED__)
static const struct confine_rule confine_sanitizer[] = {
	ALLOW(open),
	ALLOW(openat),
	ALLOW(getdents),            /* listing /proc/self/task */
	ALLOW(getdents64),
	ALLOW(stat),
	ALLOW(lstat),
	ALLOW(access),
	ALLOW(readlink),
	ALLOW(readlinkat),
	ALLOW(sigaltstack),
	ALLOW(rt_sigaction),
	ALLOW(prctl),
	ALLOW_MASKED(clone, 0, CLONE_VM, CLONE_VM),   /* LeakSanitizer's tracer: shares memory, never a fork */
	ALLOW(ptrace),
	ALLOW(wait4),
	ALLOW(getppid),
	ALLOW(kill),
	ALLOW(tgkill),
	ALLOW(prlimit64),
	ALLOW(getrlimit),
	ALLOW(uname),
	ALLOW(pipe2),
	ALLOW(dup2),
	ALLOW(dup3),
	ALLOW(fcntl),               /* symbolizing a report's stack */
	ALLOW_IOCTL(TCGETS),        /* is stderr a terminal (colours) */
	ALLOW(mkdir),               /* log_path: UBSan makes the report's directory (EEXIST) */
	ALLOW(mkdirat),
};
#define CONFINE_SANITIZER_TABLE &confine_sanitizer_table,
static const struct confine_table confine_sanitizer_table = TABLE(confine_sanitizer);
#else
#define CONFINE_SANITIZER_TABLE
#endif

static const struct confine_table confine_base_table = TABLE(confine_base);
static const struct confine_table confine_thread_start_table = TABLE(confine_thread_start);
static const struct confine_table confine_worker_table = TABLE(confine_worker);
static const struct confine_table confine_queue_control_table = TABLE(confine_queue_control);
static const struct confine_table confine_vcpu_table = TABLE(confine_vcpu);
static const struct confine_table confine_vmm_table = TABLE(confine_vmm);
static const struct confine_table confine_vmm_restart_table = TABLE(confine_vmm_restart);
static const struct confine_table confine_backend_table = TABLE(confine_backend);
static const struct confine_table confine_frontend_table = TABLE(confine_frontend);

const struct confine_role_spec confine_roles[CONFINE_ROLE_COUNT] = {
	[CONFINE_ROLE_VMM] = { "vmm", {
		&confine_base_table, &confine_vmm_table, &confine_queue_control_table,
		&confine_thread_start_table, &confine_worker_table, CONFINE_SANITIZER_TABLE NULL } },
	[CONFINE_ROLE_VMM_RESTART] = { "vmm-restart", {
		&confine_base_table, &confine_vmm_table, &confine_vmm_restart_table, &confine_queue_control_table,
		&confine_thread_start_table, &confine_worker_table, CONFINE_SANITIZER_TABLE NULL } },
	[CONFINE_ROLE_VCPU] = { "vcpu", {
		&confine_base_table, &confine_vcpu_table, &confine_queue_control_table,
		&confine_thread_start_table, &confine_worker_table, CONFINE_SANITIZER_TABLE NULL } },
	[CONFINE_ROLE_WORKER] = { "worker", {
		&confine_base_table, &confine_worker_table, CONFINE_SANITIZER_TABLE NULL } },
	[CONFINE_ROLE_BACKEND] = { "backend", {
		&confine_base_table, &confine_backend_table, &confine_queue_control_table,
		&confine_thread_start_table, &confine_worker_table, CONFINE_SANITIZER_TABLE NULL } },
	[CONFINE_ROLE_FRONTEND] = { "frontend", {
		&confine_base_table, &confine_worker_table, &confine_frontend_table, CONFINE_SANITIZER_TABLE NULL } },
};

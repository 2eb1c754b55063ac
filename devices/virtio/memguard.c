#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cvmm/memguard.h"

/* The process-wide table the handler reads without locks: a slot is live
 * while start is non-zero; end and fd are written before start. */
static struct memguard_slot {
	uintptr_t start, end;
	int fd;
} memguard_slots[MEMGUARD_MAX];
static pthread_mutex_t memguard_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t memguard_once = PTHREAD_ONCE_INIT;
static int memguard_install_err;
static size_t memguard_page = 4096;

/* Replaces the page (or, in a hugetlb mapping, the huge page) holding addr
 * with private zeros. */
static int memguard_patch(uintptr_t addr)
{
	const size_t sizes[] = { memguard_page, 2u << 20, 1u << 30 };

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		uintptr_t page = addr & ~(uintptr_t)(sizes[i] - 1);

		if (mmap((void *)page, sizes[i], PROT_READ | PROT_WRITE,
			 MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) != MAP_FAILED)
			return 0;
	}
	return -1;
}

static void memguard_sigbus(int sig, siginfo_t *si, void *uc)
{
	uintptr_t addr = (uintptr_t)si->si_addr;
	int saved = errno;

	(void)uc;
	for (unsigned i = 0; i < MEMGUARD_MAX; i++) {
		struct memguard_slot *s = &memguard_slots[i];
		uintptr_t start = __atomic_load_n(&s->start, __ATOMIC_ACQUIRE);
		uint64_t one = 1;

		if (!start || addr < start || addr >= s->end)
			continue;
		if (memguard_patch(addr) < 0)
			break;
		(void)!write(s->fd, &one, sizeof(one));
		errno = saved;
		return;
	}
	/* Not ours (or not recoverable): the access faults again and the
	 * default action ends the process, as without this handler. */
	signal(sig, SIG_DFL);
	errno = saved;
}

static void memguard_install(void)
{
	struct sigaction sa = { .sa_sigaction = memguard_sigbus, .sa_flags = SA_SIGINFO };

	memguard_page = (size_t)sysconf(_SC_PAGESIZE);
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGBUS, &sa, NULL) < 0)
		memguard_install_err = -errno;
}

int memguard_add(void *base, size_t len, int notify_fd)
{
	int r = -ENOSPC;

	pthread_once(&memguard_once, memguard_install);
	if (memguard_install_err)
		return memguard_install_err;
	if (!base || !len)
		return -EINVAL;
	pthread_mutex_lock(&memguard_lock);
	for (unsigned i = 0; i < MEMGUARD_MAX; i++) {
		struct memguard_slot *s = &memguard_slots[i];

		if (s->start)
			continue;
		s->end = (uintptr_t)base + len;
		s->fd = notify_fd;
		__atomic_store_n(&s->start, (uintptr_t)base, __ATOMIC_RELEASE);
		r = 0;
		break;
	}
	pthread_mutex_unlock(&memguard_lock);
	return r;
}

void memguard_remove(void *base)
{
	pthread_mutex_lock(&memguard_lock);
	for (unsigned i = 0; i < MEMGUARD_MAX; i++) {
		if (memguard_slots[i].start == (uintptr_t)base) {
			__atomic_store_n(&memguard_slots[i].start, 0, __ATOMIC_RELEASE);
			break;
		}
	}
	pthread_mutex_unlock(&memguard_lock);
}

/*
 * Recovery from shared memory that shrinks under us. A vhost-user back-end
 * maps files a front-end owns (guest memory, the inflight region); if the
 * front-end truncates one, the next load or store there raises SIGBUS and
 * would kill the back-end. Mappings registered here are guarded instead: the
 * SIGBUS handler puts a private zero page over the faulting page (so the
 * access completes, reading zeros) and signals the owner's eventfd, which
 * ends the session. Faults anywhere else keep their default action.
 *
 * The handler needs a process-wide table (a signal handler has no other way
 * to find it); this file owns it. Thread-safe.
 */
#ifndef CVMM_MEMGUARD_H
#define CVMM_MEMGUARD_H

#include <stddef.h>

/* Most mappings guarded at once, over all back-ends of the process. */
#define MEMGUARD_MAX 256

/* Guards [base, base+len): a fault there writes 1 to notify_fd (an eventfd).
 * Installs the SIGBUS handler on first use. 0, -ENOSPC or -errno. */
int memguard_add(void *base, size_t len, int notify_fd);
/* Stops guarding the mapping that starts at base (before it is unmapped). */
void memguard_remove(void *base);

#endif

/*
 * What the two halves of the vhost-user front-end share: vu_frontend.c (the
 * protocol) and vu_fe_conn.c (connections, the service thread). Every
 * function here expects fe->lock held unless it says otherwise.
 */
#ifndef CVMM_VU_FE_INTERNAL_H
#define CVMM_VU_FE_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <unistd.h>

#include "cvmm/vu_frontend.h"

static inline bool vu_fe_connected(const struct vu_frontend *fe)
{
	return fe->sock >= 0 && !fe->dead;
}

/* Any thread, no lock needed. */
static inline void vu_fe_wake(int fd)
{
	uint64_t one = 1;

	(void)!write(fd, &one, sizeof(one));
}

/* The device cannot go on: DEVICE_NEEDS_RESET, reported once until reset. */
void vu_fe_fail(struct vu_frontend *fe);
/* Gives up on the connection (the service thread replaces it); broken: the
 * back-end broke the protocol, so the device fails too. */
void vu_fe_drop(struct vu_frontend *fe, bool broken, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* A new connection: what the back-end offers, what is used, whether it can
 * carry the device. *config_changed: the config differs from the previous
 * connection's. 0, -EINVAL (cannot serve the device), -ENOTCONN or -errno. */
int vu_fe_negotiate(struct vu_frontend *fe, bool *config_changed);
/* GET_CONFIG into the cache. */
int vu_fe_fetch_config(struct vu_frontend *fe, bool *changed);
/* Hands a running device to a new back-end. 0 or -ENOTCONN. */
int vu_fe_restore(struct vu_frontend *fe);
/* Closes the connection's fds (service thread, or before it runs). */
void vu_fe_close_conn(struct vu_frontend *fe);
/* Unmaps and closes the inflight region (no lock: destroy only). */
void vu_fe_release_inflight(struct vu_frontend *fe);

/* The service thread's steps (vu_fe_conn.c), which the fuzz target
 * tests/fuzz/vu_frontend.c drives on its own thread, in place of the
 * service thread, to stay deterministic. */
/* Takes fd as the connection and negotiates (lock held; on failure the
 * caller closes the connection). */
int vu_fe_take(struct vu_frontend *fe, int fd, bool *config_changed);
/* Reads and handles one back-end request from backend_fd (which has data).
 * Takes the lock itself. */
void vu_fe_backend_request(struct vu_frontend *fe);
/* The back-end signalled ring q's error fd. Takes the lock itself. */
void vu_fe_ring_error(struct vu_frontend *fe, unsigned q);

#endif

/*
 * The vhost-user back-end modes of the cvmm binary (`cvmm --block-backend
 * OPTS` and the like): one main loop for every device type that has a
 * back-end (devtype.h).
 */
#ifndef CVMM_BACKENDS_H
#define CVMM_BACKENDS_H

#include "cvmm/devtype.h"

/* Creates a device of type t from opts (its keys plus socket= and, where
 * offered, client=), serves it to one vhost-user front-end at a time until
 * SIGINT/SIGTERM (SIGHUP goes to the type's on_hup) and returns the process
 * exit status: 0 after a clean stop, 1 on an error (reported once). */
int vu_backend_main(const struct devtype *t, const char *opts);

#endif

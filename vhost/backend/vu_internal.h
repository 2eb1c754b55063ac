/* Shared between the vhost-user server's files (vu_server.c, vu_handlers.c). */
#ifndef CVMM_VHOST_VU_INTERNAL_H
#define CVMM_VHOST_VU_INTERNAL_H

#include "vu_server.h"

/* Translates q's ring user addresses for a ring of num entries into guest
 * addresses, checking that each ring lies in one mapped region and is
 * aligned. 0 or -EINVAL. */
int vu_ring_gpas(const struct vu_server *s, const struct vu_queue *q, uint16_t num,
		 uint64_t *desc, uint64_t *avail, uint64_t *used);

/* Starts queue qi if it is ready (features negotiated, size, addresses, kick
 * fd, enabled) and not running. 0 when started or not ready yet, -errno when
 * a ready queue cannot start (it stays stopped). */
int vu_queue_try_start(struct vu_server *s, unsigned qi);
/* Stops queue qi if it runs, keeping its position in q->base. */
void vu_queue_stop(struct vu_server *s, unsigned qi);
void vu_queues_stop_all(struct vu_server *s);
/* Starts every ready queue; failures are logged. */
void vu_queues_start_all(struct vu_server *s);
bool vu_queues_any_started(const struct vu_server *s);

/* Drops the inflight region (queues must be stopped). */
void vu_inflight_release(struct vu_server *s);
/* RESET_DEVICE: queues stopped and forgotten, device reset, features
 * cleared; memory, protocol features and the back-end channel stay. */
void vu_device_reset(struct vu_server *s);

/* Handles one validated request and answers it. 0 to go on, -errno when
 * the connection must be dropped. */
int vu_dispatch(struct vu_server *s, struct vu_msg *m);
/* Answers a request the codec rejected (-EBADMSG / -EOPNOTSUPP): an error
 * ack when one is asked for. 0 to go on, -errno to drop the connection. */
int vu_reject(struct vu_server *s, const struct vu_msg *m, int err);

#endif

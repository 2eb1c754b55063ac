/*
 * vhost-user front-end, the protocol: requests and their replies under
 * deadlines, negotiation, start (features, memory, inflight, rings),
 * stop, reset, and the restore after a reconnect. Messages go through the
 * shared codec (vhost/vu_msg.c). Connections and the service thread are in
 * vu_fe_conn.c.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cvmm/evfd.h"
#include "cvmm/log.h"
#include "cvmm/memguard.h"
#include "cvmm/virtio_transport.h"
#include "cvmm/vu_msg.h"
#include "vu_fe_internal.h"

#define VU_FE_MAX_INFLIGHT (64u << 20)

static bool vu_fe_has(const struct vu_frontend *fe, unsigned bit)
{
	return fe->protocol_features & VU_BIT(bit);
}

/* The device cannot go on: report it once (until the guest resets it). */
void vu_fe_fail(struct vu_frontend *fe)
{
	if (!fe->driver_ok || fe->needs_reset)
		return;
	fe->needs_reset = true;
	log_warn("%s: device needs reset", fe->name);
	if (fe->cfg.ops && fe->cfg.ops->needs_reset)
		fe->cfg.ops->needs_reset(fe->cfg.opaque);
}

/* Gives up on the connection; the service thread closes and replaces it.
 * broken: the back-end broke the protocol (no answer, garbage), so the
 * driver's device cannot be trusted to be where it was. Lock held. */
void vu_fe_drop(struct vu_frontend *fe, bool broken, const char *fmt, ...)
{
	char why[160];
	va_list ap;

	if (!vu_fe_connected(fe))
		return;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	log_warn("%s: vhost-user back-end: %s", fe->name, why);
	shutdown(fe->sock, SHUT_RDWR);
	fe->dead = true;
	/* A back-end whose state went with it cannot resume the driver's device. */
	if (broken || fe->cfg.state_lost_on_disconnect)
		vu_fe_fail(fe);
	vu_fe_wake(fe->wake_fd);
}

static int vu_fe_timeout(const struct vu_frontend *fe)
{
	return fe->cfg.reply_timeout_ms > 0 ? fe->cfg.reply_timeout_ms : VU_FRONTEND_REPLY_TIMEOUT_MS;
}

/*
 * Sends one request. With has_reply (a GET_*) reads its reply into rep;
 * otherwise, when REPLY_ACK is negotiated, asks for and checks the ack.
 * Lock held. 0; -EIO when the back-end refused; -ENOTCONN when there is no
 * connection (any reply fds are closed unless has_reply).
 */
static int vu_fe_request(struct vu_frontend *fe, uint32_t req, const void *payload, uint32_t size,
			 const int *fds, unsigned nfds, bool has_reply, struct vu_msg *rep)
{
	bool ack = !has_reply && vu_fe_has(fe, VHOST_USER_PROTOCOL_F_REPLY_ACK);
	const char *name = vu_msg_request_name(req);
	int r;

	if (!vu_fe_connected(fe))
		return -ENOTCONN;
	r = vu_msg_send(fe->sock, req, VU_VERSION | (ack ? VU_FLAG_NEED_REPLY : 0), payload, size, fds, nfds);
	if (r) {
		vu_fe_drop(fe, false, "cannot send %s: %s", name, strerror(-r));
		return -ENOTCONN;
	}
	if (!has_reply && !ack)
		return 0;
	r = vu_msg_recv_reply(fe->sock, req, rep, vu_fe_timeout(fe));
	if (r == -ECONNRESET) {
		vu_fe_drop(fe, false, "closed the connection (waiting for %s)", name);
		return -ENOTCONN;
	}
	if (r == -ETIMEDOUT) {
		vu_fe_drop(fe, true, "no reply to %s within %d ms", name, vu_fe_timeout(fe));
		return -ENOTCONN;
	}
	if (r) {
		vu_fe_drop(fe, true, "malformed reply to %s (%s)", name, strerror(-r));
		return -ENOTCONN;
	}
	if (!ack)
		return 0;
	if (rep->hdr.size != sizeof(uint64_t) || rep->nfds) {
		vu_msg_close_fds(rep);
		vu_fe_drop(fe, true, "malformed ack to %s", name);
		return -ENOTCONN;
	}
	if (rep->payload.u64) {
		log_warn("%s: vhost-user back-end refused %s (error %llu)", fe->name, name,
			 (unsigned long long)rep->payload.u64);
		return -EIO;
	}
	return 0;
}

static int vu_fe_set(struct vu_frontend *fe, uint32_t req, const void *payload, uint32_t size,
		     const int *fds, unsigned nfds)
{
	struct vu_msg rep;

	return vu_fe_request(fe, req, payload, size, fds, nfds, false, &rep);
}

static int vu_fe_set_u64(struct vu_frontend *fe, uint32_t req, uint64_t val)
{
	return vu_fe_set(fe, req, &val, sizeof(val), NULL, 0);
}

static int vu_fe_set_state(struct vu_frontend *fe, uint32_t req, unsigned index, unsigned num)
{
	struct vu_vring_state st = { .index = index, .num = num };

	return vu_fe_set(fe, req, &st, sizeof(st), NULL, 0);
}

/* A request answered with a u64 (GET_FEATURES, GET_QUEUE_NUM, ...). */
static int vu_fe_get_u64(struct vu_frontend *fe, uint32_t req, uint64_t *val)
{
	struct vu_msg rep;
	int r = vu_fe_request(fe, req, NULL, 0, NULL, 0, true, &rep);

	if (r)
		return r;
	if (rep.hdr.size != sizeof(uint64_t) || rep.nfds) {
		vu_msg_close_fds(&rep);
		vu_fe_drop(fe, true, "malformed reply to %s", vu_msg_request_name(req));
		return -ENOTCONN;
	}
	*val = rep.payload.u64;
	return 0;
}

/* Without REPLY_ACK, a request with a reply tells that the back-end has
 * handled everything sent before it (the spec's suggested barrier). */
static int vu_fe_barrier(struct vu_frontend *fe)
{
	uint64_t features;

	if (vu_fe_has(fe, VHOST_USER_PROTOCOL_F_REPLY_ACK))
		return 0;
	return vu_fe_get_u64(fe, VHOST_USER_GET_FEATURES, &features);
}

/* GET_CONFIG into the cache; *changed tells whether it differs. Lock held. */
int vu_fe_fetch_config(struct vu_frontend *fe, bool *changed)
{
	struct vu_config c = { .offset = 0, .size = fe->config_len, .flags = 0 };
	struct vu_msg rep;
	int r;

	*changed = false;
	r = vu_fe_request(fe, VHOST_USER_GET_CONFIG, &c, VU_CONFIG_HDR_SIZE + c.size, NULL, 0, true, &rep);
	if (r)
		return r;
	if (rep.nfds || rep.hdr.size != VU_CONFIG_HDR_SIZE + c.size || rep.payload.config.offset != 0 ||
	    rep.payload.config.size != c.size) {
		vu_msg_close_fds(&rep);
		if (rep.hdr.size == VU_CONFIG_HDR_SIZE || rep.hdr.size == 0) {
			/* The spec's error form: the back-end cannot give it. */
			log_warn("%s: vhost-user back-end refused GET_CONFIG", fe->name);
			return -EIO;
		}
		vu_fe_drop(fe, true, "malformed reply to GET_CONFIG");
		return -ENOTCONN;
	}
	pthread_mutex_lock(&fe->config_lock);
	*changed = fe->have_config && memcmp(fe->config, rep.payload.config.region, c.size);
	memcpy(fe->config, rep.payload.config.region, c.size);
	memset(fe->config + c.size, 0, sizeof(fe->config) - c.size);
	fe->have_config = true;
	pthread_mutex_unlock(&fe->config_lock);
	return 0;
}

/* Our end of a new back-end request channel, the other end sent. */
static int vu_fe_backend_channel(struct vu_frontend *fe)
{
	int sv[2], r;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	r = vu_fe_set(fe, VHOST_USER_SET_BACKEND_REQ_FD, NULL, 0, &sv[1], 1);
	close(sv[1]);
	if (r) {
		close(sv[0]);
		return r;
	}
	fe->backend_fd = sv[0];
	vu_fe_wake(fe->wake_fd);
	return 0;
}

/*
 * A new connection: what the back-end offers, what we use, whether it can
 * carry the device (enough queues). *config_changed: the config space is
 * not what it was on the previous connection. Lock held. 0, -EINVAL for a
 * back-end that cannot serve the device, or another -errno.
 */
int vu_fe_negotiate(struct vu_frontend *fe, bool *config_changed)
{
	uint64_t offered = 0, n;
	int r;

	*config_changed = false;
	fe->protocol_features = 0;
	fe->backend_queues = 1;
	fe->max_mem_slots = VU_MAX_MEM_REGIONS;
	fe->mem_sent = false;
	fe->conn_started = false;
	r = vu_fe_set(fe, VHOST_USER_SET_OWNER, NULL, 0, NULL, 0);
	if (!r)
		r = vu_fe_get_u64(fe, VHOST_USER_GET_FEATURES, &fe->backend_features);
	if (r)
		return r;
	if (fe->backend_features & VU_BIT(VHOST_USER_F_PROTOCOL_FEATURES)) {
		uint64_t use;

		r = vu_fe_get_u64(fe, VHOST_USER_GET_PROTOCOL_FEATURES, &offered);
		if (r)
			return r;
		/* Bits we do not know are ignored, not fatal. */
		use = offered & VU_FRONTEND_PROTOCOL_FEATURES & fe->cfg.protocol_features;
		r = vu_fe_set_u64(fe, VHOST_USER_SET_PROTOCOL_FEATURES, use);
		if (r)
			return r;
		fe->protocol_features = use;
	}
	if (vu_fe_has(fe, VHOST_USER_PROTOCOL_F_MQ)) {
		r = vu_fe_get_u64(fe, VHOST_USER_GET_QUEUE_NUM, &n);
		if (r)
			return r;
		fe->backend_queues = n > VU_FRONTEND_MAX_QUEUES ? VU_FRONTEND_MAX_QUEUES : (unsigned)n;
	}
	n = fe->cfg.min_backend_queues ? fe->cfg.min_backend_queues : fe->cfg.num_queues;
	if (fe->backend_queues < n) {
		log_err("%s: the vhost-user back-end has %u queue(s)%s, %u configured: lower num_queues", fe->name,
			fe->backend_queues, fe->cfg.min_backend_queues ? " (pairs)" : "", (unsigned)n);
		return -EINVAL;
	}
	if (vu_fe_has(fe, VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS)) {
		r = vu_fe_get_u64(fe, VHOST_USER_GET_MAX_MEM_SLOTS, &n);
		if (r)
			return r;
		fe->max_mem_slots = n > GMEM_MAX_REGIONS ? GMEM_MAX_REGIONS : (unsigned)n;
	}
	if (vu_fe_has(fe, VHOST_USER_PROTOCOL_F_BACKEND_REQ) && (r = vu_fe_backend_channel(fe)))
		return r;
	fe->config_len = fe->cfg.config_size;
	if (fe->cfg.ops && fe->cfg.ops->config_size) {
		uint32_t len = fe->cfg.ops->config_size(fe->cfg.opaque, fe->backend_features);

		fe->config_len = len < fe->config_len ? len : fe->config_len;
	}
	if (vu_fe_has(fe, VHOST_USER_PROTOCOL_F_CONFIG) && fe->config_len &&
	    (r = vu_fe_fetch_config(fe, config_changed)))
		return r;
	return 0;
}

/* The guest's memory, as regions of the memfds cvmm maps it from. */
static int vu_fe_send_mem(struct vu_frontend *fe)
{
	const struct gmem *mem = fe->mem;
	int r = 0;

	if (!mem || !mem->nregions)
		return -EINVAL;
	if (vu_fe_has(fe, VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS)) {
		if (mem->nregions > fe->max_mem_slots)
			return -ENOSPC;
		for (unsigned i = 0; i < mem->nregions && !r; i++) {
			const struct gmem_region *g = &mem->regions[i];
			struct vu_mem_single s = { .region = {
				.guest_phys_addr = g->gpa, .memory_size = g->size,
				.userspace_addr = (uint64_t)(uintptr_t)g->hva,
				.mmap_offset = (uint64_t)(g->hva - (uint8_t *)g->map_base) } };

			r = vu_fe_set(fe, VHOST_USER_ADD_MEM_REG, &s, sizeof(s), &g->fd, 1);
		}
	} else {
		struct vu_mem_table t = { .nregions = mem->nregions };
		int fds[VU_MAX_MEM_REGIONS];

		if (mem->nregions > VU_MAX_MEM_REGIONS)
			return -ENOSPC;
		for (unsigned i = 0; i < mem->nregions; i++) {
			const struct gmem_region *g = &mem->regions[i];

			t.regions[i] = (struct vu_mem_region){
				.guest_phys_addr = g->gpa, .memory_size = g->size,
				.userspace_addr = (uint64_t)(uintptr_t)g->hva,
				.mmap_offset = (uint64_t)(g->hva - (uint8_t *)g->map_base) };
			fds[i] = g->fd;
		}
		r = vu_fe_set(fe, VHOST_USER_SET_MEM_TABLE, &t, 8 + mem->nregions * sizeof(struct vu_mem_region),
			      fds, mem->nregions);
	}
	if (!r)
		fe->mem_sent = true;
	return r;
}

/* GET_INFLIGHT_FD, once: the region then outlives back-ends. */
static int vu_fe_get_inflight(struct vu_frontend *fe)
{
	struct vu_inflight req = { .num_queues = (uint16_t)fe->cfg.num_queues, .queue_size = fe->cfg.queue_size };
	struct vu_msg rep;
	struct stat st;
	void *map;
	int r, fd;

	r = vu_fe_request(fe, VHOST_USER_GET_INFLIGHT_FD, &req, sizeof(req), NULL, 0, true, &rep);
	if (r)
		return r;
	fd = rep.nfds == 1 ? vu_msg_take_fd(&rep, 0) : -1;
	vu_msg_close_fds(&rep);
	if (fd < 0 || rep.hdr.size < VU_INFLIGHT_MIN_SIZE || rep.hdr.size > sizeof(struct vu_inflight) ||
	    !rep.payload.inflight.mmap_size || rep.payload.inflight.mmap_size > VU_FE_MAX_INFLIGHT ||
	    rep.payload.inflight.mmap_offset > VU_FE_MAX_INFLIGHT || fstat(fd, &st) < 0 ||
	    (uint64_t)st.st_size < rep.payload.inflight.mmap_offset + rep.payload.inflight.mmap_size) {
		if (fd >= 0)
			close(fd);
		vu_fe_drop(fe, true, "malformed reply to GET_INFLIGHT_FD");
		return -ENOTCONN;
	}
	map = mmap(NULL, rep.payload.inflight.mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		   (off_t)rep.payload.inflight.mmap_offset);
	if (map == MAP_FAILED) {
		r = -errno;
		close(fd);
		log_warn("%s: cannot map the inflight region: %s", fe->name, strerror(-r));
		return r;
	}
	/* The back-end owns the file: if it shrinks it, our accesses read and
	 * write a zero page instead of killing cvmm with SIGBUS. */
	r = memguard_add(map, rep.payload.inflight.mmap_size, fe->wake_fd);
	if (r) {
		munmap(map, rep.payload.inflight.mmap_size);
		close(fd);
		log_warn("%s: cannot guard the inflight region: %s", fe->name, strerror(-r));
		return r;
	}
	fe->inflight_fd = fd;
	fe->inflight_map = map;
	fe->inflight = rep.payload.inflight;
	fe->inflight.num_queues = req.num_queues;
	fe->inflight.queue_size = req.queue_size;
	return 0;
}

/* Features, status, memory and inflight region for a device the driver
 * started, once per connection (and after each reset). Lock held. */
static int vu_fe_dev_start(struct vu_frontend *fe)
{
	uint64_t features = fe->acked_features | (fe->backend_features & VU_BIT(VHOST_USER_F_PROTOCOL_FEATURES));
	int r;

	r = vu_fe_set_u64(fe, VHOST_USER_SET_FEATURES, features);
	if (!r && vu_fe_has(fe, VHOST_USER_PROTOCOL_F_STATUS))
		r = vu_fe_set_u64(fe, VHOST_USER_SET_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
				  VIRTIO_STATUS_FEATURES_OK);
	if (!r && !fe->mem_sent)
		r = vu_fe_send_mem(fe);
	if (!r && vu_fe_has(fe, VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD)) {
		if (fe->inflight_fd < 0)
			r = vu_fe_get_inflight(fe);
		if (!r)
			r = vu_fe_set(fe, VHOST_USER_SET_INFLIGHT_FD, &fe->inflight, sizeof(fe->inflight),
				      &fe->inflight_fd, 1);
	}
	if (!r)
		fe->conn_started = true;
	return r;
}

static uint64_t vu_fe_uaddr(const void *p)
{
	return (uint64_t)(uintptr_t)p;
}

static uint64_t vu_fe_vring_fd_arg(unsigned q, int fd)
{
	return q | (fd < 0 ? VU_VRING_NOFD_MASK : 0);
}

/* Hands ring q to the back-end at position base and enables it; returns
 * once the back-end has it. Lock held. */
static int vu_fe_ring_push(struct vu_frontend *fe, unsigned q, uint16_t base)
{
	struct virtq *vq = fe->rings[q].vq;
	struct vu_vring_addr addr = {
		.index = q, .desc_user_addr = vu_fe_uaddr(vq->desc),
		.used_user_addr = vu_fe_uaddr(vq->used), .avail_user_addr = vu_fe_uaddr(vq->avail),
	};
	uint64_t arg;
	int r;

	r = vu_fe_set_state(fe, VHOST_USER_SET_VRING_NUM, q, vq->size);
	if (!r)
		r = vu_fe_set(fe, VHOST_USER_SET_VRING_ADDR, &addr, sizeof(addr), NULL, 0);
	if (!r)
		r = vu_fe_set_state(fe, VHOST_USER_SET_VRING_BASE, q, base);
	/* The call fd first: a back-end may start the ring on the kick fd. */
	if (!r) {
		arg = vu_fe_vring_fd_arg(q, vq->call_fd);
		r = vu_fe_set(fe, VHOST_USER_SET_VRING_CALL, &arg, sizeof(arg), &vq->call_fd, vq->call_fd >= 0);
	}
	if (!r) {
		(void)evfd_take(fe->rings[q].err_fd);
		arg = vu_fe_vring_fd_arg(q, fe->rings[q].err_fd);
		r = vu_fe_set(fe, VHOST_USER_SET_VRING_ERR, &arg, sizeof(arg), &fe->rings[q].err_fd, 1);
	}
	if (!r) {
		arg = vu_fe_vring_fd_arg(q, vq->kick_fd);
		r = vu_fe_set(fe, VHOST_USER_SET_VRING_KICK, &arg, sizeof(arg), &vq->kick_fd, vq->kick_fd >= 0);
	}
	if (!r && (fe->backend_features & VU_BIT(VHOST_USER_F_PROTOCOL_FEATURES)) && !fe->rings[q].disabled)
		r = vu_fe_set_state(fe, VHOST_USER_SET_VRING_ENABLE, q, 1);
	if (!r && vu_fe_has(fe, VHOST_USER_PROTOCOL_F_STATUS))
		r = vu_fe_set_u64(fe, VHOST_USER_SET_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
				  VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
	if (!r)
		r = vu_fe_barrier(fe);
	return r;
}

/* A new back-end takes over a running device: the rings restart from the
 * used index (what the guest has seen completed; the back-end's inflight
 * region accounts for the rest) and each is kicked once, for requests
 * queued while no back-end listened. Lock held. */
int vu_fe_restore(struct vu_frontend *fe)
{
	uint64_t missing = fe->acked_features & ~fe->backend_features;
	int r;

	if (!fe->driver_ok || fe->needs_reset)
		return 0;
	if (missing) {
		log_err("%s: the new vhost-user back-end lacks features the driver uses (0x%llx)", fe->name,
			(unsigned long long)missing);
		vu_fe_fail(fe);
		return 0;
	}
	r = vu_fe_dev_start(fe);
	for (unsigned q = 0; q < fe->cfg.num_queues && !r; q++) {
		struct virtq *vq = fe->rings[q].vq;

		if (!fe->rings[q].started)
			continue;
		r = vu_fe_ring_push(fe, q, __atomic_load_n(&vq->used->idx, __ATOMIC_ACQUIRE));
		if (!r && vq->kick_fd >= 0)
			(void)evfd_signal(vq->kick_fd);
	}
	if (r == -EIO || r == -EINVAL || r == -ENOSPC)
		vu_fe_fail(fe);
	return r == -ENOTCONN ? r : 0;
}

/* ---- public ---- */

uint64_t vu_frontend_features(struct vu_frontend *fe)
{
	uint64_t f;

	pthread_mutex_lock(&fe->lock);
	f = fe->backend_features & ~(VU_BIT(VHOST_USER_F_PROTOCOL_FEATURES) | VU_BIT(VHOST_F_LOG_ALL));
	pthread_mutex_unlock(&fe->lock);
	return f;
}

void vu_frontend_read_config(struct vu_frontend *fe, uint32_t off, void *buf, uint32_t len)
{
	memset(buf, 0, len);
	if (off >= VU_MAX_CONFIG_SIZE)
		return;
	if (len > VU_MAX_CONFIG_SIZE - off)
		len = VU_MAX_CONFIG_SIZE - off;
	pthread_mutex_lock(&fe->config_lock);
	memcpy(buf, fe->config + off, len);
	pthread_mutex_unlock(&fe->config_lock);
}

int vu_frontend_write_config(struct vu_frontend *fe, uint32_t off, const void *buf, uint32_t len)
{
	struct vu_config c = { .offset = off, .size = len, .flags = VU_CONFIG_F_WRITABLE };
	bool changed;
	int r;

	pthread_mutex_lock(&fe->lock);
	if (off > fe->config_len || len > fe->config_len - off) {
		pthread_mutex_unlock(&fe->lock);
		return -EINVAL;
	}
	memcpy(c.region, buf, len);
	r = vu_fe_has(fe, VHOST_USER_PROTOCOL_F_CONFIG) ? 0 : -EOPNOTSUPP;
	if (!r)
		r = vu_fe_set(fe, VHOST_USER_SET_CONFIG, &c, VU_CONFIG_HDR_SIZE + len, NULL, 0);
	if (!r)
		r = vu_fe_fetch_config(fe, &changed);
	pthread_mutex_unlock(&fe->lock);
	return r;
}

int vu_frontend_ring_start(struct vu_frontend *fe, const struct gmem *mem, uint64_t features, unsigned q,
			   struct virtq *vq)
{
	int r = 0;

	if (q >= fe->cfg.num_queues)
		return -EINVAL;
	pthread_mutex_lock(&fe->lock);
	fe->mem = mem;
	fe->acked_features = features & ~(VU_BIT(VHOST_USER_F_PROTOCOL_FEATURES) | fe->cfg.own_features);
	fe->driver_ok = true;
	fe->rings[q].vq = vq;
	fe->rings[q].started = true;
	vu_fe_wake(fe->wake_fd);
	if (fe->needs_reset) {
		r = -EIO;
	} else if (vu_fe_connected(fe)) {
		if (!fe->conn_started)
			r = vu_fe_dev_start(fe);
		if (!r)
			r = vu_fe_ring_push(fe, q, vq->last_avail_idx);
		/* A back-end that went away gets the ring on reconnect. */
		if (r == -ENOTCONN)
			r = fe->needs_reset ? -EIO : 0;
	} else {
		log_info("%s: no vhost-user back-end now: queue %u starts when one connects", fe->name, q);
	}
	pthread_mutex_unlock(&fe->lock);
	return r;
}

int vu_frontend_ring_enable(struct vu_frontend *fe, unsigned q, bool on)
{
	int r = 0;

	if (q >= fe->cfg.num_queues)
		return -EINVAL;
	pthread_mutex_lock(&fe->lock);
	fe->rings[q].disabled = !on;
	if (fe->needs_reset) {
		r = -EIO;
	} else if (fe->rings[q].started && fe->conn_started && vu_fe_connected(fe) &&
		   (fe->backend_features & VU_BIT(VHOST_USER_F_PROTOCOL_FEATURES))) {
		r = vu_fe_set_state(fe, VHOST_USER_SET_VRING_ENABLE, q, on);
		if (!r)
			r = vu_fe_barrier(fe);
		/* A back-end that went away gets the state on reconnect. */
		if (r == -ENOTCONN)
			r = fe->needs_reset ? -EIO : 0;
	}
	pthread_mutex_unlock(&fe->lock);
	return r;
}

void vu_frontend_ring_stop(struct vu_frontend *fe, unsigned q)
{
	struct vu_vring_state st = { .index = q };
	struct vu_msg rep;

	if (q >= fe->cfg.num_queues)
		return;
	pthread_mutex_lock(&fe->lock);
	if (fe->rings[q].started && fe->conn_started && vu_fe_connected(fe)) {
		int r = 0;

		if (fe->backend_features & VU_BIT(VHOST_USER_F_PROTOCOL_FEATURES))
			r = vu_fe_set_state(fe, VHOST_USER_SET_VRING_ENABLE, q, 0);
		if (r != -ENOTCONN &&
		    !vu_fe_request(fe, VHOST_USER_GET_VRING_BASE, &st, sizeof(st), NULL, 0, true, &rep)) {
			vu_msg_close_fds(&rep);
			if (rep.hdr.size != sizeof(st) || rep.payload.state.index != q)
				vu_fe_drop(fe, true, "malformed reply to GET_VRING_BASE");
		}
	}
	fe->rings[q].started = false;
	fe->rings[q].vq = NULL;
	vu_fe_wake(fe->wake_fd);
	pthread_mutex_unlock(&fe->lock);
}

void vu_frontend_reset(struct vu_frontend *fe)
{
	pthread_mutex_lock(&fe->lock);
	for (unsigned q = 0; q < fe->cfg.num_queues; q++)
		fe->rings[q] = (struct vu_frontend_ring){ .err_fd = fe->rings[q].err_fd };
	if (vu_fe_connected(fe) && vu_fe_has(fe, VHOST_USER_PROTOCOL_F_STATUS))
		vu_fe_set_u64(fe, VHOST_USER_SET_STATUS, 0);
	if (vu_fe_connected(fe) && vu_fe_has(fe, VHOST_USER_PROTOCOL_F_RESET_DEVICE))
		vu_fe_set(fe, VHOST_USER_RESET_DEVICE, NULL, 0, NULL, 0);
	fe->conn_started = false;
	fe->driver_ok = false;
	fe->needs_reset = false;
	fe->acked_features = 0;
	/* The next driver's rings start empty: nothing of the old ones is in flight. */
	if (fe->inflight_map)
		memset(fe->inflight_map, 0, fe->inflight.mmap_size);
	pthread_mutex_unlock(&fe->lock);
}

void vu_fe_release_inflight(struct vu_frontend *fe)
{
	if (fe->inflight_map) {
		memguard_remove(fe->inflight_map);
		munmap(fe->inflight_map, fe->inflight.mmap_size);
	}
	if (fe->inflight_fd >= 0)
		close(fe->inflight_fd);
	fe->inflight_map = NULL;
	fe->inflight_fd = -1;
}

/*
 * vhost-user front-end request handlers, reached through one table indexed
 * by request. The codec has already checked payload size and fd count; each
 * handler checks the values (ring index, sizes, addresses) before use.
 * Fds a handler keeps are taken out of the message; the dispatcher closes
 * the rest on every path.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cvmm/log.h"
#include "cvmm/memguard.h"
#include "vu_internal.h"

/* A reply body for requests that have one. */
struct vu_reply {
	union vu_payload payload;
	uint32_t size;
	int fd;                    /* sent with the reply, then closed; -1 if none */
};

typedef int vu_handler_fn(struct vu_server *s, struct vu_msg *m, struct vu_reply *rep);

struct vu_handler {
	vu_handler_fn *fn;
	int8_t pfeature;           /* protocol feature that must be negotiated, or -1 */
	bool has_reply;            /* the request always has a reply body */
	bool empty_reply_on_error; /* GET_CONFIG: an error is a zero-length reply */
};

static bool vu_is_pow2(uint64_t v)
{
	return v && !(v & (v - 1));
}

static int vu_ring(struct vu_server *s, uint32_t index, struct vu_queue **q)
{
	if (index >= s->dev->num_queues)
		return -EINVAL;
	*q = &s->queues[index];
	return 0;
}

static void vu_reply_u64(struct vu_reply *rep, uint64_t v)
{
	rep->payload.u64 = v;
	rep->size = sizeof(uint64_t);
}

static uint64_t vu_offered_features(const struct vu_server *s)
{
	/* ACCESS_PLATFORM would make ring addresses IOVAs translated through
	 * IOTLB messages, which this back-end does not implement. */
	return (s->dev->host_features & ~VIRTIO_BIT(VIRTIO_F_ACCESS_PLATFORM)) |
	       VU_BIT(VHOST_USER_F_PROTOCOL_FEATURES);
}

/* ---- features and ownership ---- */

static int vu_get_features(struct vu_server *s, struct vu_msg *m, struct vu_reply *rep)
{
	(void)m;
	vu_reply_u64(rep, vu_offered_features(s));
	return 0;
}

static int vu_set_features(struct vu_server *s, struct vu_msg *m, struct vu_reply *rep)
{
	struct vdev *dev = s->dev;
	uint64_t f = m->payload.u64;
	uint64_t vf = f & ~VU_BIT(VHOST_USER_F_PROTOCOL_FEATURES);
	int r = 0;

	(void)rep;
	if (f & ~vu_offered_features(s))
		return -EINVAL;
	/* Rings depend on EVENT_IDX / INDIRECT_DESC: never change them under a
	 * running queue. */
	if (!s->features_set || vf != dev->features) {
		vu_queues_stop_all(s);
		r = vdev_set_features(dev, vf);
	}
	if (r == 0) {
		s->acked_features = f;
		s->features_set = true;
		/* Without protocol features there is no SET_VRING_ENABLE: rings
		 * start enabled (vhost-user.rst, "Ring states"). */
		if (!(f & VU_BIT(VHOST_USER_F_PROTOCOL_FEATURES)))
			for (unsigned i = 0; i < dev->num_queues; i++)
				s->queues[i].enabled = true;
	}
	vu_queues_start_all(s);
	return r;
}

static int vu_get_protocol_features(struct vu_server *s, struct vu_msg *m, struct vu_reply *rep)
{
	(void)m;
	vu_reply_u64(rep, s->proto_offered);
	return 0;
}

static int vu_set_protocol_features(struct vu_server *s, struct vu_msg *m, struct vu_reply *rep)
{
	(void)rep;
	if (m->payload.u64 & ~s->proto_offered)
		return -EINVAL;
	pthread_mutex_lock(&s->backend_lock);
	s->proto_features = m->payload.u64;
	pthread_mutex_unlock(&s->backend_lock);
	return 0;
}

static int vu_set_owner(struct vu_server *s, struct vu_msg *m, struct vu_reply *rep)
{
	(void)s, (void)m, (void)rep;
	return 0;
}

/* Deprecated; the spec recommends treating it as "disable all rings". */
static int vu_reset_owner(struct vu_server *s, struct vu_msg *m, struct vu_reply *rep)
{
	(void)m, (void)rep;
	vu_queues_stop_all(s);
	for (unsigned i = 0; i < s->dev->num_queues; i++)
		s->queues[i].enabled = false;
	return 0;
}

static int vu_get_queue_num(struct vu_server *s, struct vu_msg *m, struct vu_reply *rep)
{
	(void)m;
	vu_reply_u64(rep, s->dev->num_queues);
	return 0;
}

static int vu_reset_device(struct vu_server *s, struct vu_msg *m, struct vu_reply *rep)
{
	(void)m, (void)rep;
	vu_device_reset(s);
	return 0;
}

static int vu_set_status(struct vu_server *s, struct vu_msg *m, struct vu_reply *rep)
{
	(void)rep;
	if (m->payload.u64 > 0xff)
		return -EINVAL;
	s->status = (uint8_t)m->payload.u64;
	return 0;
}

static int vu_get_status(struct vu_server *s, struct vu_msg *m, struct vu_reply *rep)
{
	(void)m;
	vu_reply_u64(rep, s->status);
	return 0;
}

/* ---- guest memory ---- */

/* Maps [offset, offset+size) of fd, a regular file the range must lie in
 * (a mapping past EOF would fault later), from the page holding offset:
 * *base and *len are the mapping, *delta where the range starts in it. The
 * front-end may still shrink the file afterwards: the mapping is guarded
 * (memguard), a fault there signals fault_fd and the session ends. */
static int vu_map_fd(int fd, uint64_t offset, uint64_t size, int flags, int fault_fd, void **base,
		     size_t *len, size_t *delta)
{
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
	uint64_t end, aligned, total;
	struct stat st;
	void *p;
	int r;

	if (size == 0 || __builtin_add_overflow(offset, size, &end))
		return -EINVAL;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode) || end > (uint64_t)st.st_size)
		return -EINVAL;
	aligned = offset & ~(page - 1);
	total = size + (offset - aligned);
	if (total > SIZE_MAX)
		return -EINVAL;
	p = mmap(NULL, (size_t)total, PROT_READ | PROT_WRITE, MAP_SHARED | flags, fd, (off_t)aligned);
	if (p == MAP_FAILED)
		return -errno;
	r = memguard_add(p, (size_t)total, fault_fd);
	if (r) {
		munmap(p, (size_t)total);
		return r;
	}
	*base = p;
	*len = (size_t)total;
	*delta = (size_t)(offset - aligned);
	return 0;
}

/* Maps one guest memory region from fd (guarded, see vu_map_fd). */
static int vu_map_region(const struct vu_mem_region *mr, int fd, int fault_fd,
			 struct gmem_region *out)
{
	size_t len, delta;
	void *p;
	int r = vu_map_fd(fd, mr->mmap_offset, mr->memory_size, MAP_NORESERVE, fault_fd, &p, &len,
			  &delta);

	if (r)
		return r;
	*out = (struct gmem_region){
		.guarded = true,
		.gpa = mr->guest_phys_addr,
		.size = mr->memory_size,
		.uaddr = mr->userspace_addr,
		.hva = (uint8_t *)p + delta,
		.map_base = p,
		.map_size = len,
		.fd = -1,
	};
	return 0;
}

/* Maps the region and adds it to mem; on failure nothing is left mapped. */
static int vu_add_region(struct gmem *mem, const struct vu_mem_region *mr, int fd, int fault_fd)
{
	struct gmem_region gr;
	int r = vu_map_region(mr, fd, fault_fd, &gr);

	if (r)
		return r;
	r = gmem_add(mem, &gr);
	if (r) {
		memguard_remove(gr.map_base);
		munmap(gr.map_base, gr.map_size);
	}
	return r;
}

static int vu_set_mem_table(struct vu_server *s, struct vu_msg *m, struct vu_reply *rep)
{
	const struct vu_mem_table *t = &m->payload.mem;
	struct gmem next;
	int r;

	(void)rep;
	gmem_init(&next);
	for (uint32_t i = 0; i < t->nregions; i++) {
		r = vu_add_region(&next, &t->regions[i], m->fds[i], s->fault_fd);
		if (r) {
			gmem_destroy(&next);
			return r;
		}
	}
	/* Rings point into the old mappings: stop them, swap, re-translate. */
	vu_queues_stop_all(s);
	gmem_destroy(&s->mem);
	s->mem = next;
	vu_queues_start_all(s);
	return 0;
}

static int vu_get_max_mem_slots(struct vu_server *s, struct vu_msg *m, struct vu_reply *rep)
{
	(void)s, (void)m;
	vu_reply_u64(rep, GMEM_MAX_REGIONS);
	return 0;
}

static int vu_add_mem_reg(struct vu_server *s, struct vu_msg *m, struct vu_reply *rep)
{
	const struct vu_mem_region *mr = &m->payload.mem_single.region;
	struct gmem_region *same;
	int r;

	(void)rep;
	/* The same region again (QEMU: one vhost device per net queue pair on
	 * one connection) is counted, not mapped twice; its fd is closed. */
	same = gmem_find(&s->mem, mr->guest_phys_addr, mr->memory_size, mr->userspace_addr);
	if (same) {
		same->users++;
		return 0;
	}
	/* Workers translate through the table: keep them out while it changes. */
	vu_queues_stop_all(s);
	r = vu_add_region(&s->mem, mr, m->fds[0], s->fault_fd);
	vu_queues_start_all(s);
	return r;
}

static int vu_rem_mem_reg(struct vu_server *s, struct vu_msg *m, struct vu_reply *rep)
{
	const struct vu_mem_region *mr = &m->payload.mem_single.region;
	int r;

	struct gmem_region *same;

	(void)rep;
	same = gmem_find(&s->mem, mr->guest_phys_addr, mr->memory_size, mr->userspace_addr);
	if (!same)
		return -ENOENT;
	if (same->users > 1) {
		same->users--;
		return 0;
	}
	vu_queues_stop_all(s);
	r = gmem_remove(&s->mem, mr->guest_phys_addr, mr->memory_size, mr->userspace_addr);
	vu_queues_start_all(s);
	return r;
}

/* ---- rings ---- */

static int vu_set_vring_num(struct vu_server *s, struct vu_msg *m, struct vu_reply *rep)
{
	uint32_t num = m->payload.state.num;
	struct vu_queue *q;

	(void)rep;
	if (vu_ring(s, m->payload.state.index, &q))
		return -EINVAL;
	if (!vu_is_pow2(num) || num > s->dev->queue_size_max || num > VIRTQ_MAX_SIZE)
		return -EINVAL;
	if (q->started)
		return -EBUSY;
	q->num = (uint16_t)num;
	return 0;
}

static int vu_set_vring_addr(struct vu_server *s, struct vu_msg *m, struct vu_reply *rep)
{
	const struct vu_vring_addr *a = &m->payload.addr;
	struct vu_queue *q, next;
	uint64_t d, av, u;
	int r;

	(void)rep;
	if (vu_ring(s, a->index, &q))
		return -EINVAL;
	/* Only the LOG flag exists; the log address is unused without LOG_ALL,
	 * which this back-end does not offer. */
	if (a->flags & ~VU_BIT(VU_VRING_F_LOG))
		return -EINVAL;
	next = *q;
	next.desc_ua = a->desc_user_addr;
	next.avail_ua = a->avail_user_addr;
	next.used_ua = a->used_user_addr;
	next.addr_set = true;
	r = vu_ring_gpas(s, &next, q->num ? q->num : 1, &d, &av, &u);
	if (r)
		return r;
	vu_queue_stop(s, a->index);
	q->desc_ua = next.desc_ua;
	q->avail_ua = next.avail_ua;
	q->used_ua = next.used_ua;
	q->addr_set = true;
	return vu_queue_try_start(s, a->index);
}

static int vu_set_vring_base(struct vu_server *s, struct vu_msg *m, struct vu_reply *rep)
{
	struct vu_queue *q;

	(void)rep;
	if (vu_ring(s, m->payload.state.index, &q))
		return -EINVAL;
	if (m->payload.state.num > 0xffff)
		return -EINVAL;
	if (q->started)
		return -EBUSY;
	q->base = (uint16_t)m->payload.state.num;
	return 0;
}

static int vu_get_vring_base(struct vu_server *s, struct vu_msg *m, struct vu_reply *rep)
{
	uint32_t idx = m->payload.state.index;
	struct vu_queue *q;

	if (vu_ring(s, idx, &q))
		return -EINVAL;
	vu_queue_stop(s, idx);
	/* The ring stays stopped until the next SET_VRING_KICK. */
	if (q->kick_fd >= 0)
		close(q->kick_fd);
	q->kick_fd = -1;
	rep->payload.state.index = idx;
	rep->payload.state.num = q->base;
	rep->size = sizeof(rep->payload.state);
	return 0;
}

/* Decodes the u64 of SET_VRING_KICK/CALL/ERR: index in bits 0-7, NOFD in 8. */
static int vu_vring_fd_arg(struct vu_server *s, const struct vu_msg *m, unsigned *idx,
			   struct vu_queue **q)
{
	uint64_t v = m->payload.u64;

	if (v & ~(VU_VRING_IDX_MASK | VU_VRING_NOFD_MASK))
		return -EINVAL;
	*idx = (unsigned)(v & VU_VRING_IDX_MASK);
	return vu_ring(s, *idx, q);
}

static void vu_replace_fd(int *slot, int fd)
{
	if (*slot >= 0)
		close(*slot);
	*slot = fd;
}

/* A kick, call or error fd must be an eventfd: a pipe or socket could block
 * the worker that writes it, or report EOF for ever to the one that waits on
 * it. It is made non-blocking (its counter may saturate; a write then fails
 * instead of waiting). Sets *fd to the fd taken, or -1 with NOFD. */
static int vu_take_eventfd(struct vu_msg *m, int *fd)
{
	char path[32], target[32];
	struct stat st;
	ssize_t n;
	int flags;

	*fd = -1;
	if (m->nfds == 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", m->fds[0]);
	n = readlink(path, target, sizeof(target) - 1);
	if (n >= 0) {
		target[n] = '\0';
		if (strcmp(target, "anon_inode:[eventfd]"))
			return -EINVAL;
	} else if (fstat(m->fds[0], &st) < 0 || (st.st_mode & S_IFMT)) {
		/* No /proc: at least an anonymous inode (no file type), which
		 * rules out pipes, sockets, files and devices. */
		return -EINVAL;
	}
	flags = fcntl(m->fds[0], F_GETFL);
	if (flags < 0 || fcntl(m->fds[0], F_SETFL, flags | O_NONBLOCK) < 0)
		return -errno;
	*fd = vu_msg_take_fd(m, 0);
	return 0;
}

static int vu_set_vring_kick(struct vu_server *s, struct vu_msg *m, struct vu_reply *rep)
{
	struct vu_queue *q;
	unsigned idx;
	int fd;

	(void)rep;
	if (vu_vring_fd_arg(s, m, &idx, &q) || vu_take_eventfd(m, &fd))
		return -EINVAL;
	vu_queue_stop(s, idx);
	vu_replace_fd(&q->kick_fd, fd);
	/* Without a kick fd the front-end asks for polling, which this
	 * back-end does not do: the ring stays stopped. */
	if (q->kick_fd < 0)
		return -EOPNOTSUPP;
	return vu_queue_try_start(s, idx);
}

/* The ring's worker uses its call fd (to interrupt) and error fd (when the
 * ring breaks): swap either only while the ring is stopped. */
static int vu_swap_vring_fd(struct vu_server *s, struct vu_msg *m, bool err_fd)
{
	struct vu_queue *q;
	unsigned idx;
	bool was_started;
	int fd;

	if (vu_vring_fd_arg(s, m, &idx, &q) || vu_take_eventfd(m, &fd))
		return -EINVAL;
	was_started = q->started;
	vu_queue_stop(s, idx);
	vu_replace_fd(err_fd ? &q->err_fd : &q->call_fd, fd);
	return was_started ? vu_queue_try_start(s, idx) : 0;
}

static int vu_set_vring_call(struct vu_server *s, struct vu_msg *m, struct vu_reply *rep)
{
	(void)rep;
	return vu_swap_vring_fd(s, m, false);
}

static int vu_set_vring_err(struct vu_server *s, struct vu_msg *m, struct vu_reply *rep)
{
	(void)rep;
	return vu_swap_vring_fd(s, m, true);
}

static int vu_set_vring_enable(struct vu_server *s, struct vu_msg *m, struct vu_reply *rep)
{
	uint32_t idx = m->payload.state.index;
	struct vu_queue *q;

	(void)rep;
	if (vu_ring(s, idx, &q) || m->payload.state.num > 1)
		return -EINVAL;
	if (!m->payload.state.num) {
		vu_queue_stop(s, idx);
		q->enabled = false;
		return 0;
	}
	q->enabled = true;
	return vu_queue_try_start(s, idx);
}

/* ---- back-end channel and config space ---- */

static int vu_set_backend_req_fd(struct vu_server *s, struct vu_msg *m, struct vu_reply *rep)
{
	struct stat st;
	int fd;

	(void)rep;
	if (fstat(m->fds[0], &st) < 0 || !S_ISSOCK(st.st_mode))
		return -EINVAL;
	fd = vu_msg_take_fd(m, 0);
	pthread_mutex_lock(&s->backend_lock);
	vu_replace_fd(&s->backend_fd, fd);
	pthread_mutex_unlock(&s->backend_lock);
	return 0;
}

static int vu_get_config(struct vu_server *s, struct vu_msg *m, struct vu_reply *rep)
{
	const struct vu_config *c = &m->payload.config;
	struct vdev *dev = s->dev;
	struct vu_config *out = &rep->payload.config;

	if (c->offset > VU_MAX_CONFIG_SIZE || c->size > VU_MAX_CONFIG_SIZE - c->offset)
		return -EINVAL;
	out->offset = c->offset;
	out->size = c->size;
	out->flags = c->flags;
	memset(out->region, 0, sizeof(out->region));
	/* Front-ends may ask for a newer, longer config layout than the model
	 * has: bytes past config_size read as zero, as on a virtio transport. */
	if (c->offset < dev->config_size && c->size && dev->ops->read_config) {
		uint32_t n = dev->config_size - c->offset;

		dev->ops->read_config(dev, c->offset, out->region, c->size < n ? c->size : n);
	}
	rep->size = VU_CONFIG_HDR_SIZE + c->size;
	return 0;
}

static int vu_set_config(struct vu_server *s, struct vu_msg *m, struct vu_reply *rep)
{
	const struct vu_config *c = &m->payload.config;
	struct vdev *dev = s->dev;

	(void)rep;
	if (c->flags != VU_CONFIG_F_WRITABLE && c->flags != VU_CONFIG_F_MIGRATION)
		return -EINVAL;
	if (!c->size || c->offset > dev->config_size || c->size > dev->config_size - c->offset)
		return -EINVAL;
	if (!dev->ops->write_config)
		return -EPERM;
	return dev->ops->write_config(dev, c->offset, c->region, c->size);
}

/* ---- inflight tracking ---- */

/* Checks the queue count and size of an inflight description against the
 * device and gives the per-queue and total region sizes. */
static int vu_inflight_geometry(const struct vu_server *s, const struct vu_inflight *in,
				size_t *per, uint64_t *total)
{
	if (!in->num_queues || in->num_queues > s->dev->num_queues)
		return -EINVAL;
	if (!vu_is_pow2(in->queue_size) || in->queue_size > s->dev->queue_size_max)
		return -EINVAL;
	*per = virtq_inflight_size(in->queue_size);
	*total = (uint64_t)*per * in->num_queues;
	return 0;
}

static void vu_inflight_attach(struct vu_server *s, void *map, size_t map_size, size_t delta,
			       const struct vu_inflight *in)
{
	vu_inflight_release(s);
	s->inflight_map = map;
	s->inflight_map_size = map_size;
	s->inflight = (uint8_t *)map + delta;
	s->inflight_nq = in->num_queues;
	s->inflight_qsize = in->queue_size;
}

static int vu_get_inflight_fd(struct vu_server *s, struct vu_msg *m, struct vu_reply *rep)
{
	const struct vu_inflight *in = &m->payload.inflight;
	uint64_t total;
	size_t per;
	void *p;
	int fd, r;

	r = vu_inflight_geometry(s, in, &per, &total);
	if (r)
		return r;
	/* Running rings write into the current region. */
	if (vu_queues_any_started(s))
		return -EBUSY;
	fd = memfd_create("cvmm-vu-inflight", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)total) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	/* The front-end keeps this fd across our restarts: it may not shrink it
	 * under our mapping. */
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0)
		log_warn("vhost-user: sealing the inflight region: %s", strerror(errno));
	p = mmap(NULL, (size_t)total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		r = -errno;
		close(fd);
		return r;
	}
	vu_inflight_attach(s, p, (size_t)total, 0, in);
	rep->payload.inflight = (struct vu_inflight){
		.mmap_size = total,
		.mmap_offset = 0,
		.num_queues = in->num_queues,
		.queue_size = in->queue_size,
	};
	rep->size = sizeof(rep->payload.inflight);
	rep->fd = fd;
	return 0;
}

static int vu_set_inflight_fd(struct vu_server *s, struct vu_msg *m, struct vu_reply *rep)
{
	const struct vu_inflight *in = &m->payload.inflight;
	uint64_t total;
	size_t per, len, delta;
	void *p;
	int r;

	(void)rep;
	r = vu_inflight_geometry(s, in, &per, &total);
	if (r)
		return r;
	/* At an offset not a multiple of 8 the region's 64-bit fields would
	 * be misaligned (undefined behaviour, and a fault on some hosts). */
	if (in->mmap_size != total || in->mmap_offset % _Alignof(struct virtq_inflight))
		return -EINVAL;
	if (vu_queues_any_started(s))
		return -EBUSY;
	/* The front-end's file: it may shrink it later (see vu_map_fd). */
	r = vu_map_fd(m->fds[0], in->mmap_offset, total, 0, s->fault_fd, &p, &len, &delta);
	if (r)
		return r;
	vu_inflight_attach(s, p, len, delta, in);
	return 0;
}

/* ---- dispatch ---- */

#define VU_H(req, f, pf, reply) [VHOST_USER_##req] = { f, pf, reply, false }
#define VU_PF(name) VHOST_USER_PROTOCOL_F_##name

static const struct vu_handler vu_handlers[VHOST_USER_REQUEST_MAX] = {
	VU_H(GET_FEATURES, vu_get_features, -1, true),
	VU_H(SET_FEATURES, vu_set_features, -1, false),
	VU_H(SET_OWNER, vu_set_owner, -1, false),
	VU_H(RESET_OWNER, vu_reset_owner, -1, false),
	VU_H(SET_MEM_TABLE, vu_set_mem_table, -1, false),
	VU_H(SET_VRING_NUM, vu_set_vring_num, -1, false),
	VU_H(SET_VRING_ADDR, vu_set_vring_addr, -1, false),
	VU_H(SET_VRING_BASE, vu_set_vring_base, -1, false),
	VU_H(GET_VRING_BASE, vu_get_vring_base, -1, true),
	VU_H(SET_VRING_KICK, vu_set_vring_kick, -1, false),
	VU_H(SET_VRING_CALL, vu_set_vring_call, -1, false),
	VU_H(SET_VRING_ERR, vu_set_vring_err, -1, false),
	VU_H(GET_PROTOCOL_FEATURES, vu_get_protocol_features, -1, true),
	VU_H(SET_PROTOCOL_FEATURES, vu_set_protocol_features, -1, false),
	VU_H(GET_QUEUE_NUM, vu_get_queue_num, VU_PF(MQ), true),
	VU_H(SET_VRING_ENABLE, vu_set_vring_enable, -1, false),
	VU_H(SET_BACKEND_REQ_FD, vu_set_backend_req_fd, VU_PF(BACKEND_REQ), false),
	[VHOST_USER_GET_CONFIG] = { vu_get_config, VU_PF(CONFIG), true, true },
	VU_H(SET_CONFIG, vu_set_config, VU_PF(CONFIG), false),
	VU_H(GET_INFLIGHT_FD, vu_get_inflight_fd, VU_PF(INFLIGHT_SHMFD), true),
	VU_H(SET_INFLIGHT_FD, vu_set_inflight_fd, VU_PF(INFLIGHT_SHMFD), false),
	VU_H(RESET_DEVICE, vu_reset_device, VU_PF(RESET_DEVICE), false),
	VU_H(GET_MAX_MEM_SLOTS, vu_get_max_mem_slots, VU_PF(CONFIGURE_MEM_SLOTS), true),
	VU_H(ADD_MEM_REG, vu_add_mem_reg, VU_PF(CONFIGURE_MEM_SLOTS), false),
	VU_H(REM_MEM_REG, vu_rem_mem_reg, VU_PF(CONFIGURE_MEM_SLOTS), false),
	VU_H(SET_STATUS, vu_set_status, VU_PF(STATUS), false),
	VU_H(GET_STATUS, vu_get_status, VU_PF(STATUS), true),
};

static const struct vu_handler *vu_handler_of(uint32_t request)
{
	if (request >= VHOST_USER_REQUEST_MAX || !vu_handlers[request].fn)
		return NULL;
	return &vu_handlers[request];
}

/* Answers a failed request: requests with their own reply cannot carry an
 * error (GET_CONFIG excepted), so the connection is dropped; others get an
 * error ack when they asked for one. */
static int vu_answer_error(struct vu_server *s, const struct vu_msg *m,
			   const struct vu_handler *h, int err)
{
	log_warn_ratelimited("vhost-user: %s (%u) failed: %s", vu_msg_request_name(m->hdr.request),
			     m->hdr.request, strerror(-err));
	if (h && h->empty_reply_on_error)
		return vu_msg_reply(s->conn_fd, m, NULL, 0, NULL, 0);
	if (h && h->has_reply)
		return err;
	if (m->hdr.flags & VU_FLAG_NEED_REPLY)
		return vu_msg_ack(s->conn_fd, m, err);
	return 0;
}

int vu_reject(struct vu_server *s, const struct vu_msg *m, int err)
{
	return vu_answer_error(s, m, vu_handler_of(m->hdr.request), err);
}

int vu_dispatch(struct vu_server *s, struct vu_msg *m)
{
	const struct vu_handler *h = vu_handler_of(m->hdr.request);
	struct vu_reply rep = { .fd = -1 };
	int r;

	if (!h)
		r = -EOPNOTSUPP;
	else if (h->pfeature >= 0 && !(s->proto_features & VU_BIT(h->pfeature)))
		r = -EPERM;    /* its protocol feature was not negotiated */
	else
		r = h->fn(s, m, &rep);
	vu_msg_close_fds(m);
	if (r < 0) {
		if (rep.fd >= 0)
			close(rep.fd);
		return vu_answer_error(s, m, h, r);
	}
	if (h->has_reply) {
		r = vu_msg_reply(s->conn_fd, m, &rep.payload, rep.size, &rep.fd,
				 rep.fd >= 0 ? 1 : 0);
		if (rep.fd >= 0)
			close(rep.fd);
		return r;
	}
	if (m->hdr.flags & VU_FLAG_NEED_REPLY)
		return vu_msg_ack(s->conn_fd, m, 0);
	return 0;
}

/*
 * vhost-user front-end against a scripted fake back-end (on a socketpair,
 * or a listening socket for reconnects) built on the vu_peer primitives:
 * negotiation, memory table, ring start/stop, reset, reconnect, replies
 * that never come, malformed replies, and back-end requests.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cvmm/log.h"
#include "cvmm/devtype.h"
#include "cvmm/virtio_blk.h"
#include "cvmm/virtio_fs.h"
#include "cvmm/virtio_net.h"
#include "cvmm/virtio_transport.h"
#include "cvmm/vu_fe_dev.h"
#include "cvmm/vu_frontend.h"
#include "cvmm/vu_msg.h"
#include "devices/vsock/virtio_vsock.h"
#include "guest_ring.h"
#include "vu_peer.h"
#include "check_run.h"

#define NQ 2
#define QSIZE 16
#define MEM_SIZE (1u << 20)
#define CFG_SIZE 16
#define TIMEOUT_MS 300
/* A bit no protocol version defines: must be ignored, not fatal. */
#define UNKNOWN_PROTO_BIT 45

/* ---- the fake back-end ---- */

#define LOG_MAX 512

struct seen {
	uint32_t request, flags, size;
	uint8_t payload[512];
	unsigned nfds;
	struct stat fd_stat[8];
};

struct fbe {
	/* Script. */
	uint64_t features, protocol;
	uint64_t queues;
	uint8_t config[VU_MAX_CONFIG_SIZE];
	uint32_t hang_on;          /* never answer this request */
	uint32_t garbage_on;       /* answer this request with a mismatched reply */
	uint32_t refuse_on;        /* ack this request with an error */

	/* State. */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct seen log[LOG_MAX];
	unsigned nlog;
	int sock;                  /* the connection being served */
	int listen_fd;
	int backend_fd;            /* from SET_BACKEND_REQ_FD */
	int kick_fd[NQ], call_fd[NQ], err_fd[NQ];
	int inflight_fd;
	unsigned connections;
	bool stop;
	pthread_t thread;
};

static struct fbe fb;

static void fbe_reply(struct fbe *b, const struct vu_peer_reply *req, const void *p, uint32_t size,
		      const int *fds, unsigned nfds)
{
	ck_assert_int_eq(vu_peer_send(b->sock, req->hdr.request, VU_VERSION | VU_FLAG_REPLY, p, size, fds, nfds), 0);
}

static void fbe_reply_u64(struct fbe *b, const struct vu_peer_reply *req, uint64_t v)
{
	fbe_reply(b, req, &v, sizeof(v), NULL, 0);
}

static void fbe_keep_fd(int *slot, int fd)
{
	if (*slot >= 0)
		close(*slot);
	*slot = fd;
}

/* Handles one request; false when the connection should end. */
static bool fbe_handle(struct fbe *b, struct vu_peer_reply *m)
{
	struct seen *s;
	uint64_t u64 = 0;
	bool keep_fds = false;

	pthread_mutex_lock(&b->lock);
	s = &b->log[b->nlog < LOG_MAX ? b->nlog++ : LOG_MAX - 1];
	s->request = m->hdr.request;
	s->flags = m->hdr.flags;
	s->size = m->hdr.size;
	memcpy(s->payload, m->payload, sizeof(s->payload));
	s->nfds = m->nfds;
	for (unsigned i = 0; i < m->nfds; i++)
		fstat(m->fds[i], &s->fd_stat[i]);
	pthread_cond_broadcast(&b->cond);
	pthread_mutex_unlock(&b->lock);
	memcpy(&u64, m->payload, sizeof(u64));

	if (m->hdr.request == b->hang_on)
		goto done;
	if (m->hdr.request == b->garbage_on) {
		/* A reply to another request. */
		ck_assert_int_eq(vu_peer_send(b->sock, VHOST_USER_GET_STATUS, VU_VERSION | VU_FLAG_REPLY, &u64,
					      sizeof(u64), NULL, 0), 0);
		goto done;
	}
	switch (m->hdr.request) {
	case VHOST_USER_GET_FEATURES:
		fbe_reply_u64(b, m, b->features);
		goto done;
	case VHOST_USER_GET_PROTOCOL_FEATURES:
		fbe_reply_u64(b, m, b->protocol);
		goto done;
	case VHOST_USER_GET_QUEUE_NUM:
		fbe_reply_u64(b, m, b->queues);
		goto done;
	case VHOST_USER_GET_MAX_MEM_SLOTS:
		fbe_reply_u64(b, m, 32);
		goto done;
	case VHOST_USER_GET_CONFIG: {
		struct vu_config c;

		memcpy(&c, m->payload, VU_CONFIG_HDR_SIZE);
		ck_assert_uint_le(c.size, VU_MAX_CONFIG_SIZE);
		pthread_mutex_lock(&b->lock);
		memcpy(c.region, b->config, c.size);
		pthread_mutex_unlock(&b->lock);
		fbe_reply(b, m, &c, VU_CONFIG_HDR_SIZE + c.size, NULL, 0);
		goto done;
	}
	case VHOST_USER_GET_VRING_BASE: {
		struct vu_vring_state st;

		memcpy(&st, m->payload, sizeof(st));
		st.num = 7;
		fbe_reply(b, m, &st, sizeof(st), NULL, 0);
		goto done;
	}
	case VHOST_USER_GET_INFLIGHT_FD: {
		struct vu_inflight inf;
		int fd = vu_peer_memfd(4096);

		memcpy(&inf, m->payload, sizeof(inf));
		inf.mmap_size = 4096;
		inf.mmap_offset = 0;
		fbe_reply(b, m, &inf, sizeof(inf), &fd, 1);
		close(fd);
		goto done;
	}
	case VHOST_USER_SET_BACKEND_REQ_FD:
		fbe_keep_fd(&b->backend_fd, m->fds[0]);
		keep_fds = true;
		break;
	case VHOST_USER_SET_VRING_KICK:
	case VHOST_USER_SET_VRING_CALL:
	case VHOST_USER_SET_VRING_ERR:
		if (m->nfds == 1 && (u64 & 0xff) < NQ) {
			int *slot = m->hdr.request == VHOST_USER_SET_VRING_KICK ? &b->kick_fd[u64 & 0xff]
				  : m->hdr.request == VHOST_USER_SET_VRING_CALL ? &b->call_fd[u64 & 0xff]
										 : &b->err_fd[u64 & 0xff];

			pthread_mutex_lock(&b->lock);
			fbe_keep_fd(slot, m->fds[0]);
			pthread_mutex_unlock(&b->lock);
			keep_fds = true;
		}
		break;
	case VHOST_USER_SET_INFLIGHT_FD:
		fbe_keep_fd(&b->inflight_fd, m->fds[0]);
		keep_fds = true;
		break;
	default:
		break;
	}
	if (m->hdr.flags & VU_FLAG_NEED_REPLY)
		fbe_reply_u64(b, m, m->hdr.request == b->refuse_on ? EINVAL : 0);
done:
	if (!keep_fds)
		for (unsigned i = 0; i < m->nfds; i++)
			close(m->fds[i]);
	return true;
}

/* Serves connections: accepted ones in listen mode, else the one in sock. */
/* The connection the fake serves from now on. */
static void fbe_take(struct fbe *b, int fd)
{
	pthread_mutex_lock(&b->lock);
	b->sock = fd;
	b->connections++;
	pthread_cond_broadcast(&b->cond);
	pthread_mutex_unlock(&b->lock);
}

static void *fbe_thread(void *arg)
{
	struct fbe *b = arg;

	for (;;) {
		struct vu_peer_reply m;
		int r;

		if (b->sock < 0 && b->listen_fd >= 0) {
			int fd = accept4(b->listen_fd, NULL, NULL, SOCK_CLOEXEC);

			if (fd < 0)
				return NULL;
			fbe_take(b, fd);
		}
		if (b->sock < 0)
			return NULL;
		r = vu_peer_read(b->sock, &m, 50);
		pthread_mutex_lock(&b->lock);
		if (b->stop) {
			pthread_mutex_unlock(&b->lock);
			return NULL;
		}
		pthread_mutex_unlock(&b->lock);
		if (r == -2)
			continue;
		if (r) {
			pthread_mutex_lock(&b->lock);
			close(b->sock);
			b->sock = -1;
			pthread_cond_broadcast(&b->cond);
			pthread_mutex_unlock(&b->lock);
			if (b->listen_fd < 0)
				return NULL;
			continue;
		}
		fbe_handle(b, &m);
	}
}

#define FEAT_DEV (VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_F_EVENT_IDX) | VIRTIO_BIT(3))
#define PROTO_ALL (VU_FRONTEND_PROTOCOL_FEATURES | VU_BIT(UNKNOWN_PROTO_BIT) | \
		   VU_BIT(VHOST_USER_PROTOCOL_F_LOG_SHMFD))

static void fbe_init(struct fbe *b)
{
	memset(b, 0, sizeof(*b));
	b->features = FEAT_DEV | VU_BIT(VHOST_USER_F_PROTOCOL_FEATURES);
	b->protocol = PROTO_ALL;
	b->queues = NQ;
	for (int i = 0; i < VU_MAX_CONFIG_SIZE; i++)
		b->config[i] = (uint8_t)(0x10 + i);
	b->sock = b->listen_fd = b->backend_fd = b->inflight_fd = -1;
	for (int q = 0; q < NQ; q++)
		b->kick_fd[q] = b->call_fd[q] = b->err_fd[q] = -1;
	pthread_mutex_init(&b->lock, NULL);
	pthread_cond_init(&b->cond, NULL);
}

static void fbe_start(struct fbe *b)
{
	ck_assert_int_eq(pthread_create(&b->thread, NULL, fbe_thread, b), 0);
}

static void fbe_stop(struct fbe *b)
{
	pthread_mutex_lock(&b->lock);
	b->stop = true;
	pthread_mutex_unlock(&b->lock);
	if (b->listen_fd >= 0)
		shutdown(b->listen_fd, SHUT_RDWR);
	pthread_join(b->thread, NULL);
	if (b->sock >= 0)
		close(b->sock);
	if (b->listen_fd >= 0)
		close(b->listen_fd);
	if (b->backend_fd >= 0)
		close(b->backend_fd);
	if (b->inflight_fd >= 0)
		close(b->inflight_fd);
	for (int q = 0; q < NQ; q++) {
		if (b->kick_fd[q] >= 0)
			close(b->kick_fd[q]);
		if (b->call_fd[q] >= 0)
			close(b->call_fd[q]);
		if (b->err_fd[q] >= 0)
			close(b->err_fd[q]);
	}
}

/* Index in the log of the n-th (0-based) occurrence of request at or after
 * from, waiting up to 3 s for it; -1 if it never came. */
static int fbe_wait(struct fbe *b, uint32_t request, unsigned from)
{
	struct timespec dl;
	int found = -1;

	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += 3;
	pthread_mutex_lock(&b->lock);
	for (;;) {
		for (unsigned i = from; i < b->nlog && found < 0; i++)
			if (b->log[i].request == request)
				found = (int)i;
		if (found >= 0 || pthread_cond_timedwait(&b->cond, &b->lock, &dl))
			break;
	}
	pthread_mutex_unlock(&b->lock);
	return found;
}

static unsigned fbe_count(struct fbe *b, uint32_t request, unsigned from)
{
	unsigned n = 0;

	pthread_mutex_lock(&b->lock);
	for (unsigned i = from; i < b->nlog; i++)
		n += b->log[i].request == request;
	pthread_mutex_unlock(&b->lock);
	return n;
}

static unsigned fbe_nlog(struct fbe *b)
{
	unsigned n;

	pthread_mutex_lock(&b->lock);
	n = b->nlog;
	pthread_mutex_unlock(&b->lock);
	return n;
}

static uint64_t seen_u64(const struct seen *s)
{
	uint64_t v;

	memcpy(&v, s->payload, sizeof(v));
	return v;
}

/* ---- the front-end side: guest memory, rings, callbacks ---- */

static struct vu_frontend fe;
static struct gmem mem;
static struct virtq vqs[NQ];
static int config_changes, needs_resets, restores;
static pthread_mutex_t cb_lock = PTHREAD_MUTEX_INITIALIZER;
static char sock_path[108];
/* Where the tests' sockets live: made before the suite runs and removed,
 * with whatever a failed test left in it, after. */
static char sock_dir[] = "/tmp/cvmm-vufe.XXXXXX";
/* fe_config's state_lost_on_disconnect (a test sets it before its setup). */
static bool state_lost;

/* This test's socket path, in sock_dir (each test runs in its own process). */
static void sock_path_set(void)
{
	snprintf(sock_path, sizeof(sock_path), "%s/%d.sock", sock_dir, getpid());
}

/* Counts one callback of the kind *what counts. */
static void cb_bump(int *what)
{
	pthread_mutex_lock(&cb_lock);
	(*what)++;
	pthread_mutex_unlock(&cb_lock);
}

static void cb_config_changed(void *opaque)
{
	(void)opaque;
	cb_bump(&config_changes);
}

static void cb_needs_reset(void *opaque)
{
	(void)opaque;
	cb_bump(&needs_resets);
}

static void cb_restored(void *opaque)
{
	(void)opaque;
	cb_bump(&restores);
}

static int cb_count(int *what)
{
	int n;

	pthread_mutex_lock(&cb_lock);
	n = *what;
	pthread_mutex_unlock(&cb_lock);
	return n;
}

/* Waits up to 3 s for *what to reach n. */
static bool cb_wait(int *what, int n)
{
	for (int i = 0; i < 300; i++) {
		if (cb_count(what) >= n)
			return true;
		usleep(10000);
	}
	return false;
}

static const struct vu_frontend_ops cb_ops = {
	.config_changed = cb_config_changed,
	.needs_reset = cb_needs_reset,
	.restored = cb_restored,
};

static void mem_setup(void)
{
	struct gmem_region r = { .gpa = 0, .size = MEM_SIZE };

	gmem_init(&mem);
	r.fd = vu_peer_memfd(MEM_SIZE);
	ck_assert_int_ge(r.fd, 0);
	r.map_base = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, r.fd, 0);
	ck_assert_ptr_ne(r.map_base, MAP_FAILED);
	r.map_size = MEM_SIZE;
	r.hva = r.map_base;
	ck_assert_int_eq(gmem_add(&mem, &r), 0);
	for (unsigned q = 0; q < NQ; q++) {
		uint64_t base = 0x10000 * (q + 1);

		virtq_init(&vqs[q]);
		ck_assert_int_eq(virtq_setup(&vqs[q], &mem, QSIZE, base, base + 0x1000, base + 0x2000), 0);
		vqs[q].kick_fd = vu_peer_eventfd();
		vqs[q].call_fd = vu_peer_eventfd();
	}
}

static void fe_config(struct vu_frontend_config *c, const char *path)
{
	*c = (struct vu_frontend_config){
		.name = "t", .socket_path = path, .num_queues = NQ, .queue_size = QSIZE,
		.protocol_features = VU_FRONTEND_PROTOCOL_FEATURES, .config_size = CFG_SIZE,
		.reply_timeout_ms = TIMEOUT_MS, .state_lost_on_disconnect = state_lost, .ops = &cb_ops,
	};
}

/* Fake back-end on a socketpair; the front-end not yet connected. */
static int pair_setup(void)
{
	struct vu_frontend_config c;
	int sv[2];

	log_set_level(LOG_ERR);
	config_changes = needs_resets = restores = 0;
	fbe_init(&fb);
	mem_setup();
	ck_assert_int_eq(vu_peer_socketpair(sv), 0);
	fb.sock = sv[1];
	fe_config(&c, NULL);
	ck_assert_int_eq(vu_frontend_init(&fe, &c), 0);
	return sv[0];
}

static void pair_connect(void)
{
	int fd = pair_setup();

	fbe_start(&fb);
	ck_assert_int_eq(vu_frontend_connect_fd(&fe, fd), 0);
}

static void teardown(void)
{
	vu_frontend_destroy(&fe);
	fbe_stop(&fb);
	for (unsigned q = 0; q < NQ; q++) {
		close(vqs[q].kick_fd);
		close(vqs[q].call_fd);
		virtq_destroy(&vqs[q]);
	}
	gmem_destroy(&mem);
	if (sock_path[0])
		unlink(sock_path);
	sock_path[0] = 0;
	state_lost = false;
}

static void start_all(uint64_t features)
{
	for (unsigned q = 0; q < NQ; q++)
		ck_assert_int_eq(vu_frontend_ring_start(&fe, &mem, features, q, &vqs[q]), 0);
}

/* True when a and b name the same open file (an fd passed on is the same one). */
static bool same_file(const struct stat *a, int fd)
{
	struct stat b;

	return fstat(fd, &b) == 0 && a->st_dev == b.st_dev && a->st_ino == b.st_ino;
}

/* ---- tests ---- */

START_TEST(negotiation)
{
	static const uint32_t order[] = {
		VHOST_USER_SET_OWNER, VHOST_USER_GET_FEATURES, VHOST_USER_GET_PROTOCOL_FEATURES,
		VHOST_USER_SET_PROTOCOL_FEATURES, VHOST_USER_GET_QUEUE_NUM, VHOST_USER_GET_MAX_MEM_SLOTS,
		VHOST_USER_SET_BACKEND_REQ_FD, VHOST_USER_GET_CONFIG,
	};
	uint8_t cfg[CFG_SIZE];
	int i;

	pair_connect();
	ck_assert_uint_eq(fbe_nlog(&fb), sizeof(order) / sizeof(order[0]));
	for (unsigned k = 0; k < sizeof(order) / sizeof(order[0]); k++)
		ck_assert_msg(fb.log[k].request == order[k], "request %u is %s, expected %s", k,
			      vu_msg_request_name(fb.log[k].request), vu_msg_request_name(order[k]));
	/* Offered ∩ implemented: the unknown bit and LOG_SHMFD are dropped. */
	i = fbe_wait(&fb, VHOST_USER_SET_PROTOCOL_FEATURES, 0);
	ck_assert_uint_eq(seen_u64(&fb.log[i]), VU_FRONTEND_PROTOCOL_FEATURES);
	ck_assert_uint_eq(fe.protocol_features, VU_FRONTEND_PROTOCOL_FEATURES);
	/* After REPLY_ACK is on, requests without a reply ask for an ack. */
	i = fbe_wait(&fb, VHOST_USER_SET_BACKEND_REQ_FD, 0);
	ck_assert(fb.log[i].flags & VU_FLAG_NEED_REPLY);
	ck_assert_uint_eq(fb.log[i].nfds, 1);
	ck_assert_uint_eq(vu_frontend_features(&fe), FEAT_DEV);
	vu_frontend_read_config(&fe, 0, cfg, sizeof(cfg));
	ck_assert_mem_eq(cfg, fb.config, CFG_SIZE);
	/* Bytes past the config read as zero. */
	vu_frontend_read_config(&fe, VU_MAX_CONFIG_SIZE - 2, cfg, 4);
	ck_assert_uint_eq(cfg[0] | cfg[1] | cfg[2] | cfg[3], 0);
}
END_TEST

START_TEST(negotiation_minimal_backend)
{
	int fd = pair_setup();

	/* No protocol features at all: no gated request is sent. */
	fb.features = FEAT_DEV;
	fb.protocol = 0;
	fe.cfg.num_queues = 1;
	fbe_start(&fb);
	ck_assert_int_eq(vu_frontend_connect_fd(&fe, fd), 0);
	ck_assert_uint_eq(fbe_nlog(&fb), 2);
	ck_assert_uint_eq(fb.log[0].request, VHOST_USER_SET_OWNER);
	ck_assert_uint_eq(fb.log[1].request, VHOST_USER_GET_FEATURES);
	ck_assert_uint_eq(fe.protocol_features, 0);
}
END_TEST

START_TEST(too_few_queues_refused)
{
	int fd = pair_setup();

	fb.queues = NQ - 1;
	fbe_start(&fb);
	ck_assert_int_eq(vu_frontend_connect_fd(&fe, fd), -EINVAL);
}
END_TEST

START_TEST(start_sends_memory_and_rings)
{
	uint64_t features = FEAT_DEV & ~VIRTIO_BIT(3);
	unsigned from;
	int i, k;
	uint64_t v;

	pair_connect();
	from = fbe_nlog(&fb);
	start_all(features);
	i = fbe_wait(&fb, VHOST_USER_SET_FEATURES, from);
	ck_assert_int_ge(i, 0);
	ck_assert_uint_eq(seen_u64(&fb.log[i]), features | VU_BIT(VHOST_USER_F_PROTOCOL_FEATURES));
	/* CONFIGURE_MEM_SLOTS: one ADD_MEM_REG per region, its memfd attached. */
	k = fbe_wait(&fb, VHOST_USER_ADD_MEM_REG, from);
	ck_assert_int_gt(k, i);
	{
		struct vu_mem_single s;

		memcpy(&s, fb.log[k].payload, sizeof(s));
		ck_assert_uint_eq(s.region.guest_phys_addr, 0);
		ck_assert_uint_eq(s.region.memory_size, MEM_SIZE);
		ck_assert_uint_eq(s.region.userspace_addr, (uint64_t)(uintptr_t)mem.regions[0].hva);
		ck_assert_uint_eq(s.region.mmap_offset, 0);
		ck_assert(same_file(&fb.log[k].fd_stat[0], mem.regions[0].fd));
	}
	ck_assert_uint_eq(fbe_count(&fb, VHOST_USER_SET_MEM_TABLE, from), 0);
	/* Inflight: asked for once, handed back. */
	ck_assert_int_gt(fbe_wait(&fb, VHOST_USER_GET_INFLIGHT_FD, from), k);
	ck_assert_int_ge(fbe_wait(&fb, VHOST_USER_SET_INFLIGHT_FD, from), 0);
	for (unsigned q = 0; q < NQ; q++) {
		struct vu_vring_addr a;
		struct vu_vring_state st;
		int n = -1, ad = -1, b = -1, kick = -1, call = -1, en = -1;

		for (unsigned j = from; j < fbe_nlog(&fb); j++) {
			const struct seen *s = &fb.log[j];
			uint32_t idx;

			memcpy(&idx, s->payload, sizeof(idx));
			if (s->request == VHOST_USER_SET_VRING_KICK && (seen_u64(s) & 0xff) == q)
				kick = (int)j;
			else if (s->request == VHOST_USER_SET_VRING_CALL && (seen_u64(s) & 0xff) == q)
				call = (int)j;
			else if (idx != q)
				continue;
			else if (s->request == VHOST_USER_SET_VRING_NUM)
				n = (int)j;
			else if (s->request == VHOST_USER_SET_VRING_ADDR)
				ad = (int)j;
			else if (s->request == VHOST_USER_SET_VRING_BASE)
				b = (int)j;
			else if (s->request == VHOST_USER_SET_VRING_ENABLE)
				en = (int)j;
		}
		ck_assert_msg(n > k && ad > n && b > ad && call > b && kick > call && en > kick,
			      "ring %u: order num %d addr %d base %d call %d kick %d enable %d", q, n, ad, b, call,
			      kick, en);
		memcpy(&st, fb.log[n].payload, sizeof(st));
		ck_assert_uint_eq(st.num, QSIZE);
		memcpy(&a, fb.log[ad].payload, sizeof(a));
		ck_assert_uint_eq(a.desc_user_addr, (uint64_t)(uintptr_t)vqs[q].desc);
		ck_assert_uint_eq(a.avail_user_addr, (uint64_t)(uintptr_t)vqs[q].avail);
		ck_assert_uint_eq(a.used_user_addr, (uint64_t)(uintptr_t)vqs[q].used);
		memcpy(&st, fb.log[en].payload, sizeof(st));
		ck_assert_uint_eq(st.num, 1);
		/* Acked before ring_start returned (REPLY_ACK). */
		ck_assert(fb.log[en].flags & VU_FLAG_NEED_REPLY);
		/* The back-end got the transport's own eventfds. */
		v = 1;
		ck_assert_int_eq(write(vqs[q].kick_fd, &v, sizeof(v)), sizeof(v));
		v = 0;
		ck_assert_int_eq(read(fb.kick_fd[q], &v, sizeof(v)), sizeof(v));
		ck_assert_uint_eq(v, 1);
		v = 1;
		ck_assert_int_eq(write(fb.call_fd[q], &v, sizeof(v)), sizeof(v));
		ck_assert_int_eq(read(vqs[q].call_fd, &v, sizeof(v)), sizeof(v));
	}
	/* The status reached DRIVER_OK; features went once for both rings. */
	i = fbe_wait(&fb, VHOST_USER_SET_STATUS, from);
	ck_assert_uint_eq(seen_u64(&fb.log[i]), VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
						    VIRTIO_STATUS_FEATURES_OK);
	ck_assert_uint_eq(seen_u64(&fb.log[fbe_nlog(&fb) - 1]), VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
									VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
	ck_assert_uint_eq(fbe_count(&fb, VHOST_USER_SET_FEATURES, from), 1);
	ck_assert_uint_eq(fbe_count(&fb, VHOST_USER_ADD_MEM_REG, from), 1);
	ck_assert_uint_eq(fbe_count(&fb, VHOST_USER_GET_INFLIGHT_FD, from), 1);
	ck_assert_int_eq(cb_count(&needs_resets), 0);
}
END_TEST

START_TEST(mem_table_without_mem_slots)
{
	int fd = pair_setup();
	struct vu_mem_table t;
	int i;

	fb.protocol = VU_BIT(VHOST_USER_PROTOCOL_F_MQ) | VU_BIT(VHOST_USER_PROTOCOL_F_REPLY_ACK);
	fbe_start(&fb);
	ck_assert_int_eq(vu_frontend_connect_fd(&fe, fd), 0);
	start_all(FEAT_DEV);
	i = fbe_wait(&fb, VHOST_USER_SET_MEM_TABLE, 0);
	ck_assert_int_ge(i, 0);
	memcpy(&t, fb.log[i].payload, 8 + sizeof(t.regions[0]));
	ck_assert_uint_eq(t.nregions, 1);
	ck_assert_uint_eq(fb.log[i].size, 8 + 32);
	ck_assert_uint_eq(fb.log[i].nfds, 1);
	ck_assert_uint_eq(t.regions[0].userspace_addr, (uint64_t)(uintptr_t)mem.regions[0].hva);
	ck_assert_uint_eq(fbe_count(&fb, VHOST_USER_ADD_MEM_REG, 0), 0);
	ck_assert_uint_eq(fbe_count(&fb, VHOST_USER_SET_MEM_TABLE, 0), 1);
	/* No STATUS, no INFLIGHT offered: neither is sent. */
	ck_assert_uint_eq(fbe_count(&fb, VHOST_USER_SET_STATUS, 0), 0);
	ck_assert_uint_eq(fbe_count(&fb, VHOST_USER_GET_INFLIGHT_FD, 0), 0);
}
END_TEST

START_TEST(enable_barrier_without_reply_ack)
{
	int fd = pair_setup();
	unsigned from;
	int en;

	fb.protocol = VU_BIT(VHOST_USER_PROTOCOL_F_MQ);
	fbe_start(&fb);
	ck_assert_int_eq(vu_frontend_connect_fd(&fe, fd), 0);
	from = fbe_nlog(&fb);
	ck_assert_int_eq(vu_frontend_ring_start(&fe, &mem, FEAT_DEV, 0, &vqs[0]), 0);
	/* ring_start returned, so the GET_FEATURES after the enable was answered. */
	en = fbe_wait(&fb, VHOST_USER_SET_VRING_ENABLE, from);
	ck_assert_int_ge(en, 0);
	ck_assert(!(fb.log[en].flags & VU_FLAG_NEED_REPLY));
	ck_assert_int_eq(fbe_wait(&fb, VHOST_USER_GET_FEATURES, (unsigned)en), en + 1);
	ck_assert_uint_eq(fbe_nlog(&fb), (unsigned)en + 2);
}
END_TEST

/* The state of the enable request for ring q last seen from index from: -1 none, else num. */
static int last_enable(unsigned q, unsigned from)
{
	int v = -1;

	for (unsigned j = from; j < fbe_nlog(&fb); j++) {
		struct vu_vring_state st;

		memcpy(&st, fb.log[j].payload, sizeof(st));
		if (fb.log[j].request == VHOST_USER_SET_VRING_ENABLE && st.index == q)
			v = (int)st.num;
	}
	return v;
}

START_TEST(ring_kept_disabled_until_enabled)
{
	unsigned from;

	pair_connect();
	/* A ring the device keeps off (a net pair not switched on) is set up
	 * but not enabled; enabling it later is acked before the call returns. */
	ck_assert_int_eq(vu_frontend_ring_enable(&fe, 1, false), 0);
	from = fbe_nlog(&fb);
	start_all(FEAT_DEV);
	ck_assert_int_eq(last_enable(0, from), 1);
	ck_assert_int_eq(last_enable(1, from), -1);
	ck_assert_int_ge(fb.kick_fd[1], 0);
	ck_assert_int_eq(vu_frontend_ring_enable(&fe, 1, true), 0);
	ck_assert_int_eq(last_enable(1, from), 1);
	ck_assert(fb.log[fbe_nlog(&fb) - 1].flags & VU_FLAG_NEED_REPLY);
	ck_assert_int_eq(vu_frontend_ring_enable(&fe, 1, false), 0);
	ck_assert_int_eq(last_enable(1, from), 0);
	/* A refusal fails the device's request, not the connection. */
	fb.refuse_on = VHOST_USER_SET_VRING_ENABLE;
	ck_assert_int_eq(vu_frontend_ring_enable(&fe, 1, true), -EIO);
	ck_assert(!fe.dead);
	ck_assert_int_eq(vu_frontend_ring_enable(&fe, NQ, true), -EINVAL);
}
END_TEST

START_TEST(backend_queues_counted_in_pairs)
{
	int fd = pair_setup();

	/* A net back-end says 1 (pair) for our two rings: enough. */
	fb.queues = 1;
	fe.cfg.min_backend_queues = 1;
	fbe_start(&fb);
	ck_assert_int_eq(vu_frontend_connect_fd(&fe, fd), 0);
}
END_TEST

START_TEST(stop_and_reset)
{
	unsigned from;
	int i;

	pair_connect();
	start_all(FEAT_DEV);
	from = fbe_nlog(&fb);
	for (unsigned q = 0; q < NQ; q++)
		vu_frontend_ring_stop(&fe, q);
	vu_frontend_reset(&fe);
	for (unsigned q = 0; q < NQ; q++) {
		int dis = -1, base = -1;

		for (unsigned j = from; j < fbe_nlog(&fb); j++) {
			uint32_t idx, num;

			memcpy(&idx, fb.log[j].payload, 4);
			memcpy(&num, fb.log[j].payload + 4, 4);
			if (idx == q && fb.log[j].request == VHOST_USER_SET_VRING_ENABLE && num == 0)
				dis = (int)j;
			if (idx == q && fb.log[j].request == VHOST_USER_GET_VRING_BASE)
				base = (int)j;
		}
		ck_assert_msg(dis >= 0 && base > dis, "ring %u: disable %d, get base %d", q, dis, base);
	}
	i = fbe_wait(&fb, VHOST_USER_SET_STATUS, from);
	ck_assert_int_ge(i, 0);
	ck_assert_uint_eq(seen_u64(&fb.log[i]), 0);
	ck_assert_int_gt(fbe_wait(&fb, VHOST_USER_RESET_DEVICE, from), i);
	/* The connection stays; the next start sends features and the inflight
	 * region again (memory stays on this connection), without asking for a
	 * new region. */
	from = fbe_nlog(&fb);
	start_all(FEAT_DEV);
	ck_assert_uint_eq(fbe_count(&fb, VHOST_USER_SET_FEATURES, from), 1);
	ck_assert_uint_eq(fbe_count(&fb, VHOST_USER_ADD_MEM_REG, from), 0);
	ck_assert_uint_eq(fbe_count(&fb, VHOST_USER_GET_INFLIGHT_FD, from), 0);
	ck_assert_uint_eq(fbe_count(&fb, VHOST_USER_SET_INFLIGHT_FD, from), 1);
	ck_assert_int_eq(cb_count(&needs_resets), 0);
}
END_TEST

START_TEST(inflight_file_shrunk_by_backend)
{
	pair_connect();
	start_all(FEAT_DEV);
	ck_assert_int_ge(fe.inflight_fd, 0);
	/* The back-end owns the file and shrinks it: the reset's clearing of
	 * the region must not kill the front-end (SIGBUS). */
	ck_assert_int_eq(ftruncate(fe.inflight_fd, 0), 0);
	for (unsigned q = 0; q < NQ; q++)
		vu_frontend_ring_stop(&fe, q);
	vu_frontend_reset(&fe);
	start_all(FEAT_DEV);
}
END_TEST

START_TEST(reply_never_comes)
{
	struct timespec a, b;
	double ms;

	pair_connect();
	fb.hang_on = VHOST_USER_SET_VRING_ENABLE;
	clock_gettime(CLOCK_MONOTONIC, &a);
	ck_assert_int_eq(vu_frontend_ring_start(&fe, &mem, FEAT_DEV, 0, &vqs[0]), -EIO);
	clock_gettime(CLOCK_MONOTONIC, &b);
	ms = (b.tv_sec - a.tv_sec) * 1e3 + (b.tv_nsec - a.tv_nsec) / 1e6;
	ck_assert_msg(ms >= TIMEOUT_MS - 10 && ms < TIMEOUT_MS + 2000, "gave up after %.0f ms", ms);
	ck_assert_int_eq(cb_count(&needs_resets), 1);
	/* Until the guest resets the device it stays failed, and says so once. */
	ck_assert_int_eq(vu_frontend_ring_start(&fe, &mem, FEAT_DEV, 1, &vqs[1]), -EIO);
	ck_assert_int_eq(cb_count(&needs_resets), 1);
	/* The connection was dropped (framing cannot be trusted). */
	ck_assert(fe.dead || fe.sock < 0);
}
END_TEST

START_TEST(ring_error_fd_needs_reset)
{
	uint64_t one = 1;
	int i;

	pair_connect();
	start_all(FEAT_DEV);
	/* Each ring got an error fd, after its call fd and before its kick fd. */
	i = fbe_wait(&fb, VHOST_USER_SET_VRING_ERR, 0);
	ck_assert_int_gt(i, fbe_wait(&fb, VHOST_USER_SET_VRING_CALL, 0));
	ck_assert_int_lt(i, fbe_wait(&fb, VHOST_USER_SET_VRING_KICK, 0));
	ck_assert_uint_eq(fbe_count(&fb, VHOST_USER_SET_VRING_ERR, 0), NQ);
	ck_assert_int_eq(cb_count(&needs_resets), 0);
	pthread_mutex_lock(&fb.lock);
	ck_assert_int_eq(write(fb.err_fd[1], &one, sizeof(one)), sizeof(one));
	pthread_mutex_unlock(&fb.lock);
	ck_assert(cb_wait(&needs_resets, 1));
	/* The connection stays: the device is failed, not the back-end. */
	ck_assert(!fe.dead);
}
END_TEST

START_TEST(malformed_reply)
{
	pair_connect();
	fb.garbage_on = VHOST_USER_SET_VRING_NUM;
	ck_assert_int_eq(vu_frontend_ring_start(&fe, &mem, FEAT_DEV, 0, &vqs[0]), -EIO);
	ck_assert_int_eq(cb_count(&needs_resets), 1);
}
END_TEST

START_TEST(refused_request)
{
	pair_connect();
	fb.refuse_on = VHOST_USER_SET_VRING_ADDR;
	/* A refusal is an answer: the device fails, the connection stays. */
	ck_assert_int_eq(vu_frontend_ring_start(&fe, &mem, FEAT_DEV, 0, &vqs[0]), -EIO);
	ck_assert(!fe.dead && fe.sock >= 0);
}
END_TEST

START_TEST(malformed_negotiation)
{
	int fd = pair_setup();

	fb.garbage_on = VHOST_USER_GET_FEATURES;
	fbe_start(&fb);
	ck_assert_int_ne(vu_frontend_connect_fd(&fe, fd), 0);
	/* No reset to report: the driver never started the device. */
	ck_assert_int_eq(cb_count(&needs_resets), 0);
}
END_TEST

START_TEST(backend_config_change)
{
	struct vu_peer_reply rep;
	uint8_t cfg[CFG_SIZE];
	int fd, before;
	uint64_t v;

	pair_connect();
	ck_assert_int_ge(fb.backend_fd, 0);
	pthread_mutex_lock(&fb.lock);
	fb.config[0] = 0xee;
	pthread_mutex_unlock(&fb.lock);
	ck_assert_int_eq(vu_peer_send(fb.backend_fd, VHOST_USER_BACKEND_CONFIG_CHANGE_MSG,
				      VU_VERSION | VU_FLAG_NEED_REPLY, NULL, 0, NULL, 0), 0);
	ck_assert_int_eq(vu_peer_read(fb.backend_fd, &rep, 3000), 0);
	ck_assert_uint_eq(rep.hdr.request, VHOST_USER_BACKEND_CONFIG_CHANGE_MSG);
	ck_assert_uint_eq(rep.hdr.flags, VU_VERSION | VU_FLAG_REPLY);
	memcpy(&v, rep.payload, 8);
	ck_assert_uint_eq(v, 0);
	ck_assert(cb_wait(&config_changes, 1));
	vu_frontend_read_config(&fe, 0, cfg, sizeof(cfg));
	ck_assert_uint_eq(cfg[0], 0xee);

	/* An unknown request with an fd: error reply, fd closed, channel up. */
	fd = vu_peer_eventfd();
	before = vu_peer_count_fds();
	ck_assert_int_eq(vu_peer_send(fb.backend_fd, 99, VU_VERSION | VU_FLAG_NEED_REPLY, &v, 8, &fd, 1), 0);
	ck_assert_int_eq(vu_peer_read(fb.backend_fd, &rep, 3000), 0);
	ck_assert_uint_eq(rep.hdr.request, 99);
	memcpy(&v, rep.payload, 8);
	ck_assert_uint_ne(v, 0);
	close(fd);
	ck_assert_int_eq(vu_peer_count_fds(), before - 1);
	/* A malformed CONFIG_CHANGE (a payload) is refused the same way. */
	ck_assert_int_eq(vu_peer_send(fb.backend_fd, VHOST_USER_BACKEND_CONFIG_CHANGE_MSG,
				      VU_VERSION | VU_FLAG_NEED_REPLY, &v, 8, NULL, 0), 0);
	ck_assert_int_eq(vu_peer_read(fb.backend_fd, &rep, 3000), 0);
	memcpy(&v, rep.payload, 8);
	ck_assert_uint_ne(v, 0);
	ck_assert_int_eq(cb_count(&config_changes), 1);
	/* Still served, also without NEED_REPLY. */
	ck_assert_int_eq(vu_peer_send(fb.backend_fd, VHOST_USER_BACKEND_CONFIG_CHANGE_MSG, VU_VERSION, NULL, 0,
				      NULL, 0), 0);
	ck_assert(cb_wait(&config_changes, 2));
}
END_TEST

/* ---- reconnect: a listening fake back-end, the front-end in client mode ---- */

/* b's listening socket, bound to sock_path (not listening yet). */
static void fbe_bind_path(struct fbe *b)
{
	struct sockaddr_un sa;

	ck_assert_int_eq(vu_unix_addr(sock_path, &sa), 0);
	b->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(b->listen_fd, 0);
	ck_assert_int_eq(bind(b->listen_fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
}

/* The fake back-end's socket bound to sock_path, not listening yet. */
static void fbe_bind(void)
{
	log_set_level(LOG_ERR);
	config_changes = needs_resets = restores = 0;
	fbe_init(&fb);
	mem_setup();
	sock_path_set();
	unlink(sock_path);
	fbe_bind_path(&fb);
}

/* The fake back-end listening on sock_path; no front-end yet. */
static void listen_only_setup(void)
{
	fbe_bind();
	ck_assert_int_eq(listen(fb.listen_fd, 4), 0);
	fbe_start(&fb);
}

static void listen_setup(void)
{
	struct vu_frontend_config c;

	listen_only_setup();
	fe_config(&c, sock_path);
	ck_assert_int_eq(vu_frontend_init(&fe, &c), 0);
	ck_assert_int_eq(vu_frontend_connect(&fe), 0);
}

/* Started together, a back-end may bind its socket a moment before it
 * listens, or not have it yet: the front-end's first connect waits a
 * little for it instead of failing. */
static void *late_listen_thread(void *arg)
{
	struct fbe *b = arg;

	nanosleep(&(struct timespec){ .tv_nsec = 300 * 1000000L }, NULL);
	ck_assert_int_eq(listen(b->listen_fd, 4), 0);
	return fbe_thread(b);
}

START_TEST(connect_waits_for_a_starting_backend)
{
	struct vu_frontend_config c;

	fbe_bind();
	ck_assert_int_eq(pthread_create(&fb.thread, NULL, late_listen_thread, &fb), 0);
	fe_config(&c, sock_path);
	ck_assert_int_eq(vu_frontend_init(&fe, &c), 0);
	ck_assert_int_eq(vu_frontend_connect(&fe), 0);
	ck_assert_uint_eq(fbe_count(&fb, VHOST_USER_GET_FEATURES, 0), 1);
}
END_TEST

/* Nothing there at all: the front-end says so once its wait is over. */
START_TEST(connect_without_backend_fails)
{
	struct vu_frontend_config c;
	struct timespec t0, t1;

	log_set_level(LOG_ERR);
	fbe_init(&fb);
	fbe_start(&fb);   /* nothing to serve: the thread ends at once */
	mem_setup();
	sock_path_set();
	unlink(sock_path);
	fe_config(&c, sock_path);
	ck_assert_int_eq(vu_frontend_init(&fe, &c), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ck_assert_int_eq(vu_frontend_connect(&fe), -ENOENT);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ck_assert_int_lt(t1.tv_sec - t0.tv_sec, 5);
}
END_TEST

/* The back-end goes away: shuts the connection as a killed process would. */
static void fbe_drop_connection(struct fbe *b)
{
	pthread_mutex_lock(&b->lock);
	shutdown(b->sock, SHUT_RDWR);
	pthread_mutex_unlock(&b->lock);
}

static bool fbe_wait_connections(struct fbe *b, unsigned n)
{
	for (int i = 0; i < 300; i++) {
		unsigned c;

		pthread_mutex_lock(&b->lock);
		c = b->connections;
		pthread_mutex_unlock(&b->lock);
		if (c >= n)
			return true;
		usleep(10000);
	}
	return false;
}

START_TEST(reconnect_restores_rings)
{
	uint16_t used_idx[NQ] = { 5, 9 };
	unsigned from;
	uint64_t v;
	int i;

	listen_setup();
	start_all(FEAT_DEV);
	for (unsigned q = 0; q < NQ; q++)
		vqs[q].used->idx = used_idx[q];
	pthread_mutex_lock(&fb.lock);
	fb.config[1] = 0x77;   /* the new back-end's config differs */
	from = fb.nlog;
	pthread_mutex_unlock(&fb.lock);
	fbe_drop_connection(&fb);
	ck_assert(fbe_wait_connections(&fb, 2));
	/* Renegotiated, then the device is given back: features, memory, the
	 * same inflight region, each ring at its used index, enabled. */
	i = fbe_wait(&fb, VHOST_USER_GET_FEATURES, from);
	ck_assert_int_ge(i, 0);
	ck_assert_int_gt(fbe_wait(&fb, VHOST_USER_SET_FEATURES, (unsigned)i), i);
	ck_assert_int_ge(fbe_wait(&fb, VHOST_USER_ADD_MEM_REG, (unsigned)i), 0);
	i = fbe_wait(&fb, VHOST_USER_SET_INFLIGHT_FD, from);
	ck_assert_int_ge(i, 0);
	ck_assert(same_file(&fb.log[i].fd_stat[0], fe.inflight_fd));
	ck_assert_uint_eq(fbe_count(&fb, VHOST_USER_GET_INFLIGHT_FD, from), 0);
	for (unsigned q = 0; q < NQ; q++) {
		bool based = false;

		for (unsigned j = from; fbe_wait(&fb, VHOST_USER_SET_VRING_BASE, j) >= 0 && !based;) {
			struct vu_vring_state st;

			j = (unsigned)fbe_wait(&fb, VHOST_USER_SET_VRING_BASE, j);
			memcpy(&st, fb.log[j].payload, sizeof(st));
			based = st.index == q && st.num == used_idx[q];
			j++;
		}
		ck_assert_msg(based, "ring %u not restored at used index %u", q, used_idx[q]);
	}
	ck_assert_int_ge(fbe_wait(&fb, VHOST_USER_SET_VRING_ENABLE, from), 0);
	/* Each ring was kicked once on the new back-end's kick fd. */
	for (int k = 0; k < 300 && fe.reconnects < 1; k++)
		usleep(10000);
	ck_assert_uint_eq(fe.reconnects, 1);
	for (unsigned q = 0; q < NQ; q++) {
		v = 0;
		ck_assert_int_eq(read(fb.kick_fd[q], &v, sizeof(v)), sizeof(v));
		ck_assert_uint_eq(v, 1);
	}
	ck_assert(cb_wait(&config_changes, 1));
	ck_assert_int_eq(cb_count(&needs_resets), 0);
	/* The device hears that a new back-end runs it, once. */
	ck_assert(cb_wait(&restores, 1));
	usleep(50000);
	ck_assert_int_eq(cb_count(&restores), 1);
}
END_TEST

START_TEST(reconnect_before_driver_ok)
{
	unsigned from;

	listen_setup();
	from = fbe_nlog(&fb);
	fbe_drop_connection(&fb);
	ck_assert(fbe_wait_connections(&fb, 2));
	ck_assert_int_ge(fbe_wait(&fb, VHOST_USER_GET_CONFIG, from), 0);
	/* Nothing to restore; the rings started later go to the new back-end. */
	for (int k = 0; k < 300 && fe.reconnects < 1; k++)
		usleep(10000);
	ck_assert_uint_eq(fbe_count(&fb, VHOST_USER_SET_FEATURES, from), 0);
	/* No running device, so nothing was taken over. */
	ck_assert_int_eq(cb_count(&restores), 0);
	start_all(FEAT_DEV);
	ck_assert_uint_eq(fbe_count(&fb, VHOST_USER_SET_FEATURES, from), 1);
}
END_TEST

START_TEST(reconnect_lacking_feature_needs_reset)
{
	unsigned from;

	listen_setup();
	start_all(FEAT_DEV);
	pthread_mutex_lock(&fb.lock);
	fb.features &= ~VIRTIO_BIT(VIRTIO_F_EVENT_IDX);
	from = fb.nlog;
	pthread_mutex_unlock(&fb.lock);
	fbe_drop_connection(&fb);
	ck_assert(cb_wait(&needs_resets, 1));
	/* The rings are not handed to a back-end that cannot serve them. */
	ck_assert_uint_eq(fbe_count(&fb, VHOST_USER_SET_FEATURES, from), 0);
	ck_assert_uint_eq(fbe_count(&fb, VHOST_USER_SET_VRING_KICK, from), 0);
	ck_assert_int_eq(cb_count(&restores), 0);
}
END_TEST

START_TEST(ring_started_while_disconnected)
{
	unsigned from;

	listen_setup();
	/* No back-end listens for a while: the start is recorded, not refused. */
	pthread_mutex_lock(&fb.lock);
	from = fb.nlog;
	pthread_mutex_unlock(&fb.lock);
	ck_assert_int_eq(shutdown(fb.listen_fd, SHUT_RD), 0);
	fbe_stop(&fb);
	for (int k = 0; k < 300 && !(fe.sock < 0); k++)
		usleep(10000);
	start_all(FEAT_DEV);
	ck_assert_int_eq(cb_count(&needs_resets), 0);
	/* A back-end appears on the same path and gets the running device. */
	unlink(sock_path);
	fbe_init(&fb);
	fbe_bind_path(&fb);
	ck_assert_int_eq(listen(fb.listen_fd, 4), 0);
	fbe_start(&fb);
	(void)from;
	ck_assert(fbe_wait_connections(&fb, 1));
	ck_assert_int_ge(fbe_wait(&fb, VHOST_USER_SET_FEATURES, 0), 0);
	for (unsigned q = 0; q < NQ; q++) {
		for (int k = 0; k < 300; k++) {
			pthread_mutex_lock(&fb.lock);
			bool have = fb.kick_fd[q] >= 0;
			pthread_mutex_unlock(&fb.lock);
			if (have)
				break;
			usleep(10000);
		}
		ck_assert_int_ge(fb.kick_fd[q], 0);
	}
}
END_TEST

/* A back-end whose state dies with it (virtiofsd): losing it under a
 * started device is DEVICE_NEEDS_RESET, the next back-end gets no rings
 * until the guest resets the device, and then the device starts afresh. */
START_TEST(state_lost_backend_gone_needs_reset)
{
	unsigned from;

	state_lost = true;
	listen_setup();
	start_all(FEAT_DEV);
	ck_assert_int_eq(cb_count(&needs_resets), 0);
	from = fbe_nlog(&fb);
	fbe_drop_connection(&fb);
	ck_assert(cb_wait(&needs_resets, 1));
	/* A new back-end is connected and negotiated with, but not handed the rings. */
	ck_assert(fbe_wait_connections(&fb, 2));
	ck_assert_int_ge(fbe_wait(&fb, VHOST_USER_GET_FEATURES, from), 0);
	for (int k = 0; k < 300 && fe.reconnects < 1; k++)
		usleep(10000);
	ck_assert_uint_eq(fe.reconnects, 1);
	ck_assert_uint_eq(fbe_count(&fb, VHOST_USER_SET_FEATURES, from), 0);
	ck_assert_uint_eq(fbe_count(&fb, VHOST_USER_SET_VRING_KICK, from), 0);
	/* The driver cannot start rings on the failed device... */
	ck_assert_int_eq(vu_frontend_ring_start(&fe, &mem, FEAT_DEV, 0, &vqs[0]), -EIO);
	ck_assert_int_eq(cb_count(&needs_resets), 1);
	/* ...until it resets it: then the new back-end gets a fresh start. */
	for (unsigned q = 0; q < NQ; q++)
		vu_frontend_ring_stop(&fe, q);
	vu_frontend_reset(&fe);
	from = fbe_nlog(&fb);
	start_all(FEAT_DEV);
	ck_assert_uint_eq(fbe_count(&fb, VHOST_USER_SET_FEATURES, from), 1);
	ck_assert_uint_eq(fbe_count(&fb, VHOST_USER_SET_VRING_KICK, from), NQ);
	ck_assert_int_eq(cb_count(&needs_resets), 1);
}
END_TEST

/* Without a started device there is nothing to lose: a reconnect is quiet. */
START_TEST(state_lost_backend_gone_before_driver_ok)
{
	unsigned from;

	state_lost = true;
	listen_setup();
	fbe_drop_connection(&fb);
	ck_assert(fbe_wait_connections(&fb, 2));
	for (int k = 0; k < 300 && fe.reconnects < 1; k++)
		usleep(10000);
	ck_assert_uint_eq(fe.reconnects, 1);
	from = fbe_nlog(&fb);
	start_all(FEAT_DEV);
	ck_assert_uint_eq(fbe_count(&fb, VHOST_USER_SET_FEATURES, from), 1);
	ck_assert_int_eq(cb_count(&needs_resets), 0);
}
END_TEST

/* ---- the device model on top (vu_fe_dev), against the listening fake ---- */

/* The fake back-end listening, and c pointed at it. */
static void dev_setup(struct vu_fe_dev_config *c)
{
	listen_only_setup();
	c->socket_path = sock_path;
}

static void dev_teardown(void)
{
	fbe_stop(&fb);
	for (unsigned q = 0; q < NQ; q++) {
		close(vqs[q].kick_fd);
		close(vqs[q].call_fd);
		virtq_destroy(&vqs[q]);
	}
	gmem_destroy(&mem);
	unlink(sock_path);
	sock_path[0] = 0;
}

START_TEST(blk_device_features_and_config)
{
	struct vu_fe_dev d;
	struct vu_fe_dev_config c = { .id = "d", .device_id = VIRTIO_ID_BLOCK, .num_queues = 1, .queue_size = 64 };
	uint64_t want = VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_F_EVENT_IDX) |
			VIRTIO_BIT(VIRTIO_BLK_F_MQ) | VIRTIO_BIT(VIRTIO_BLK_F_DISCARD);
	uint16_t nq;
	int i;

	dev_setup(&c);
	/* Transport bits cvmm cannot carry, and vhost bits, never reach the guest. */
	fb.features = want | VIRTIO_BIT(34) | VIRTIO_BIT(VIRTIO_F_ACCESS_PLATFORM) | VU_BIT(VHOST_F_LOG_ALL) |
		      VU_BIT(VHOST_USER_F_PROTOCOL_FEATURES);
	fb.queues = 4;
	ck_assert_int_eq(vu_fe_dev_init(&d, &c), 0);
	ck_assert_uint_eq(d.vdev.host_features, want);
	ck_assert_uint_eq(d.vdev.num_queues, 1);
	/* The config read is as long as DISCARD's layout, not the whole struct. */
	i = fbe_wait(&fb, VHOST_USER_GET_CONFIG, 0);
	ck_assert_int_ge(i, 0);
	ck_assert_uint_eq(fb.log[i].size, VU_CONFIG_HDR_SIZE + offsetof(struct virtio_blk_config, max_write_zeroes_sectors));
	/* The guest sees the queue count cvmm was given, not the back-end's. */
	d.vdev.ops->read_config(&d.vdev, offsetof(struct virtio_blk_config, num_queues), &nq, sizeof(nq));
	ck_assert_uint_eq(nq, 1);
	vu_fe_dev_destroy(&d);
}
END_TEST

START_TEST(blk_device_needs_config)
{
	struct vu_fe_dev d;
	struct vu_fe_dev_config c = { .id = "d", .device_id = VIRTIO_ID_BLOCK, .num_queues = 1, .queue_size = 64 };

	dev_setup(&c);
	fb.protocol = VU_FRONTEND_PROTOCOL_FEATURES & ~VU_BIT(VHOST_USER_PROTOCOL_F_CONFIG);
	ck_assert_int_eq(vu_fe_dev_init(&d, &c), -EINVAL);
}
END_TEST

START_TEST(net_device_builds_config)
{
	static const uint8_t mac[6] = { 0x52, 0x54, 0, 1, 2, 3 };
	struct vu_fe_dev d;
	struct vu_fe_dev_config c = { .id = "n", .device_id = VIRTIO_ID_NET, .num_queues = 4, .queue_size = 64,
				      .mac = mac };
	struct virtio_net_config nc;

	dev_setup(&c);
	fb.features = VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_NET_F_MRG_RXBUF) |
		      VIRTIO_BIT(VIRTIO_NET_F_MQ) | VIRTIO_BIT(VIRTIO_NET_F_MTU) | VIRTIO_BIT(VIRTIO_NET_F_CTRL_VQ) |
		      VU_BIT(VHOST_USER_F_PROTOCOL_FEATURES);
	fb.queues = 2;   /* pairs, as net back-ends count */
	ck_assert_int_eq(vu_fe_dev_init(&d, &c), 0);
	/* MAC and STATUS are cvmm's, the control queue too; MTU (no config
	 * for it) and the back-end's own CTRL_VQ are not passed on. */
	ck_assert_uint_eq(d.vdev.host_features,
			  VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_NET_F_MRG_RXBUF) |
			  VIRTIO_BIT(VIRTIO_NET_F_MQ) | VIRTIO_BIT(VIRTIO_NET_F_CTRL_VQ) |
			  VIRTIO_BIT(VIRTIO_NET_F_MAC) | VIRTIO_BIT(VIRTIO_NET_F_STATUS));
	ck_assert_uint_eq(d.vdev.num_queues, 5);
	ck_assert_uint_eq(fbe_count(&fb, VHOST_USER_GET_CONFIG, 0), 0);
	memset(&nc, 0, sizeof(nc));
	d.vdev.ops->read_config(&d.vdev, 0, &nc, d.vdev.config_size);
	ck_assert_mem_eq(nc.mac, mac, 6);
	ck_assert_uint_eq(nc.status, VIRTIO_NET_S_LINK_UP);
	ck_assert_uint_eq(nc.max_virtqueue_pairs, 2);
	/* The second pair starts disabled until VQ_PAIRS_SET. */
	ck_assert(!d.fe.rings[0].disabled && !d.fe.rings[1].disabled);
	ck_assert(d.fe.rings[2].disabled && d.fe.rings[3].disabled);
	vu_fe_dev_destroy(&d);
}
END_TEST

START_TEST(net_multiqueue_needs_backend_mq)
{
	struct vu_fe_dev d;
	struct vu_fe_dev_config c = { .id = "n", .device_id = VIRTIO_ID_NET, .num_queues = 4, .queue_size = 64 };

	dev_setup(&c);
	fb.features = VIRTIO_BIT(VIRTIO_F_VERSION_1) | VU_BIT(VHOST_USER_F_PROTOCOL_FEATURES);
	fb.queues = 2;
	ck_assert_int_eq(vu_fe_dev_init(&d, &c), -EINVAL);
}
END_TEST

/* virtiofsd's offer (PEERS.md): MQ, REPLY_ACK, BACKEND_REQ, CONFIGURE_MEM_SLOTS
 * and others cvmm does not use, no CONFIG; GET_QUEUE_NUM counts every ring. */
static void fbe_like_virtiofsd(struct fbe *b)
{
	b->features = VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_F_EVENT_IDX) |
		      VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC) | VIRTIO_BIT(0) /* VIRTIO_FS_F_NOTIFICATION */ |
		      VU_BIT(VHOST_F_LOG_ALL) | VU_BIT(VHOST_USER_F_PROTOCOL_FEATURES);
	b->protocol = VU_BIT(VHOST_USER_PROTOCOL_F_MQ) | VU_BIT(VHOST_USER_PROTOCOL_F_LOG_SHMFD) |
		      VU_BIT(VHOST_USER_PROTOCOL_F_REPLY_ACK) | VU_BIT(VHOST_USER_PROTOCOL_F_BACKEND_REQ) |
		      VU_BIT(VHOST_USER_PROTOCOL_F_BACKEND_SEND_FD) | VU_BIT(VHOST_USER_PROTOCOL_F_HOST_NOTIFIER) |
		      VU_BIT(VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS) |
		      /* Offered by none, asked for by no fs front-end: still not used. */
		      VU_BIT(VHOST_USER_PROTOCOL_F_CONFIG) | VU_BIT(VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD);
	b->queues = NQ;
}

START_TEST(fs_device_builds_config)
{
	struct vu_fe_dev d;
	struct vu_fe_dev_config c = { .id = "f", .device_id = VIRTIO_ID_FS, .num_queues = 2, .queue_size = 128,
				      .tag = "hostshare" };
	struct virtio_fs_config fc;
	uint8_t want_tag[VIRTIO_FS_TAG_LEN] = "hostshare";
	int i;

	dev_setup(&c);
	fbe_like_virtiofsd(&fb);
	ck_assert_int_eq(vu_fe_dev_init(&d, &c), 0);
	/* Transport bits only: NOTIFICATION needs a queue cvmm does not make. */
	ck_assert_uint_eq(d.vdev.host_features, VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_F_EVENT_IDX) |
			  VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC));
	ck_assert_uint_eq(d.vdev.device_id, 26);
	ck_assert_uint_eq(d.vdev.num_queues, 2);
	ck_assert_uint_eq(d.vdev.queue_size_max, 128);
	/* The config is cvmm's: tag NUL-padded, one request queue; no GET_CONFIG. */
	ck_assert_uint_eq(d.vdev.config_size, 40);
	ck_assert_uint_eq(fbe_count(&fb, VHOST_USER_GET_CONFIG, 0), 0);
	memset(&fc, 0xff, sizeof(fc));
	d.vdev.ops->read_config(&d.vdev, 0, &fc, d.vdev.config_size);
	ck_assert_mem_eq(fc.tag, want_tag, sizeof(want_tag));
	ck_assert_uint_eq(fc.num_request_queues, 1);
	/* Read-only to the driver. */
	ck_assert_int_ne(d.vdev.ops->write_config(&d.vdev, 0, "x", 1), 0);
	/* Neither CONFIG nor INFLIGHT is negotiated, and the back-end's state
	 * does not survive it. */
	i = fbe_wait(&fb, VHOST_USER_SET_PROTOCOL_FEATURES, 0);
	ck_assert_int_ge(i, 0);
	ck_assert_uint_eq(seen_u64(&fb.log[i]),
			  VU_BIT(VHOST_USER_PROTOCOL_F_MQ) | VU_BIT(VHOST_USER_PROTOCOL_F_REPLY_ACK) |
			  VU_BIT(VHOST_USER_PROTOCOL_F_BACKEND_REQ) | VU_BIT(VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS));
	ck_assert(d.fe.cfg.state_lost_on_disconnect);
	vu_fe_dev_destroy(&d);
}
END_TEST

/* The tag fills all 36 bytes without a NUL; longer or empty tags, and a
 * device without a request queue, are refused. */
START_TEST(fs_device_tag_and_queues)
{
	static const char tag36[] = "abcdefghijklmnopqrstuvwxyz0123456789";
	struct vu_fe_dev d;
	struct vu_fe_dev_config c = { .id = "f", .device_id = VIRTIO_ID_FS, .num_queues = 2, .queue_size = 128,
				      .tag = tag36 };
	struct virtio_fs_config fc;

	dev_setup(&c);
	fbe_like_virtiofsd(&fb);
	ck_assert_uint_eq(strlen(tag36), VIRTIO_FS_TAG_LEN);
	ck_assert_int_eq(vu_fe_dev_init(&d, &c), 0);
	d.vdev.ops->read_config(&d.vdev, 0, &fc, sizeof(fc));
	ck_assert_mem_eq(fc.tag, tag36, VIRTIO_FS_TAG_LEN);
	ck_assert_uint_eq(fc.num_request_queues, 1);
	vu_fe_dev_destroy(&d);
	c.tag = "abcdefghijklmnopqrstuvwxyz0123456789X";
	ck_assert_int_eq(vu_fe_dev_init(&d, &c), -EINVAL);
	c.tag = "";
	ck_assert_int_eq(vu_fe_dev_init(&d, &c), -EINVAL);
	c.tag = NULL;
	ck_assert_int_eq(vu_fe_dev_init(&d, &c), -EINVAL);
	c.tag = "t";
	c.num_queues = 1;
	ck_assert_int_eq(vu_fe_dev_init(&d, &c), -EINVAL);
	/* A back-end with fewer rings than hiprio + request queues is refused. */
	c.num_queues = NQ + 1;
	ck_assert_int_eq(vu_fe_dev_init(&d, &c), -EINVAL);
}
END_TEST

/* --fs through the device type table: a vhost-user device (so guest RAM is
 * shared), default id, request queues counted apart from hiprio. */
START_TEST(fs_devtype_creates_device)
{
	const struct devtype *t = devtype_by_vm_option("--fs");
	struct devtype_dev d;
	struct virtio_fs_config fc;
	char opts[200];

	/* Each with socket=<the fake's path> added, but the fourth. */
	static const char *const bad[] = {
		"", "tag=", "tag=abcdefghijklmnopqrstuvwxyz0123456789X", "tag=share",
		"tag=share,num_queues=0", "tag=share,num_queues=65", "tag=share,queue_size=100",
		"tag=share,queue_size=0", "tag=share,vhost_user=off", "tag=share,vhost_mode=both",
		"tag=share,path=/srv",
	};

	listen_only_setup();
	fbe_like_virtiofsd(&fb);
	ck_assert_ptr_nonnull(t);
	/* Bad options are refused before the back-end is contacted. */
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (i == 3)
			snprintf(opts, sizeof(opts), "%s", bad[i]);
		else
			snprintf(opts, sizeof(opts), "%s%ssocket=%s", bad[i], *bad[i] ? "," : "", sock_path);
		ck_assert_msg(devtype_create(&d, t, opts, DEVTYPE_IN_VM, 0) == -EINVAL, "%s accepted", opts);
	}
	usleep(50000);
	pthread_mutex_lock(&fb.lock);
	ck_assert_uint_eq(fb.connections, 0);
	pthread_mutex_unlock(&fb.lock);
	snprintf(opts, sizeof(opts), "tag=share,socket=%s,queue_size=256", sock_path);
	ck_assert_int_eq(devtype_create(&d, t, opts, DEVTYPE_IN_VM, 0), 0);
	ck_assert(d.vhost_user);
	ck_assert(!d.vhost_server);
	ck_assert_str_eq(d.id, "fs0");
	ck_assert_str_eq(d.socket, sock_path);
	ck_assert(vu_fe_dev_is(d.vdev));
	ck_assert_uint_eq(d.vdev->device_id, VIRTIO_ID_FS);
	ck_assert_uint_eq(d.vdev->num_queues, 2);
	ck_assert_uint_eq(d.vdev->queue_size_max, 256);
	d.vdev->ops->read_config(d.vdev, 0, &fc, sizeof(fc));
	ck_assert_str_eq((const char *)fc.tag, "share");
	devtype_destroy(&d);
	/* Two request queues need a back-end with three rings. */
	snprintf(opts, sizeof(opts), "tag=share,socket=%s,num_queues=2,id=docs", sock_path);
	ck_assert_int_eq(devtype_create(&d, t, opts, DEVTYPE_IN_VM, 1), -EINVAL);
	pthread_mutex_lock(&fb.lock);
	fb.queues = 3;
	pthread_mutex_unlock(&fb.lock);
	ck_assert_int_eq(devtype_create(&d, t, opts, DEVTYPE_IN_VM, 1), 0);
	ck_assert_str_eq(d.id, "docs");
	ck_assert_uint_eq(d.vdev->num_queues, 3);
	d.vdev->ops->read_config(d.vdev, 0, &fc, sizeof(fc));
	ck_assert_uint_eq(fc.num_request_queues, 2);
	devtype_destroy(&d);
}
END_TEST


/* The fake's thread when it connects to cvmm, as a back-end does to a
 * front-end in server mode: dials sock_path until it answers (3 s), then
 * serves that one connection. */
static void *fbe_dial_and_serve(void *arg)
{
	struct fbe *b = arg;
	struct sockaddr_un sa;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	ck_assert_int_eq(vu_unix_addr(sock_path, &sa), 0);
	for (int k = 0; fd >= 0 && k < 300; k++) {
		if (!connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
			fbe_take(b, fd);
			return fbe_thread(b);
		}
		usleep(10000);
	}
	if (fd >= 0)
		close(fd);
	return NULL;
}

/* --fs ...,vhost_mode=server: cvmm listens on the socket and waits there
 * for the back-end, which connects and is negotiated with. */
START_TEST(fs_devtype_server_mode)
{
	const struct devtype *t = devtype_by_vm_option("--fs");
	struct devtype_dev d;
	struct virtio_fs_config fc;
	char opts[200];

	log_set_level(LOG_ERR);
	fbe_init(&fb);
	mem_setup();
	fbe_like_virtiofsd(&fb);
	sock_path_set();
	ck_assert_int_eq(pthread_create(&fb.thread, NULL, fbe_dial_and_serve, &fb), 0);
	snprintf(opts, sizeof(opts), "tag=share,socket=%s,vhost_mode=server", sock_path);
	ck_assert_int_eq(devtype_create(&d, t, opts, DEVTYPE_IN_VM, 0), 0);
	ck_assert(d.vhost_server);
	pthread_mutex_lock(&fb.lock);
	ck_assert_uint_eq(fb.connections, 1);
	pthread_mutex_unlock(&fb.lock);
	ck_assert_int_ge(fbe_wait(&fb, VHOST_USER_GET_QUEUE_NUM, 0), 0);
	ck_assert_uint_eq(d.vdev->device_id, VIRTIO_ID_FS);
	d.vdev->ops->read_config(d.vdev, 0, &fc, sizeof(fc));
	ck_assert_str_eq((const char *)fc.tag, "share");
	devtype_destroy(&d);
	/* cvmm made the socket, and removes it. */
	ck_assert_int_ne(access(sock_path, F_OK), 0);
}
END_TEST

/* ---- vsock: rx and tx on the back-end, the event queue cvmm's ---- */

#define VSOCK_FEATS (VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_F_EVENT_IDX) | VIRTIO_BIT(1) | \
		     VIRTIO_BIT(5) | VU_BIT(VHOST_USER_F_PROTOCOL_FEATURES))

static void fbe_set_cid(struct fbe *b, uint64_t cid)
{
	pthread_mutex_lock(&b->lock);
	memset(b->config, 0, sizeof(b->config));
	memcpy(b->config, &cid, sizeof(cid));
	pthread_mutex_unlock(&b->lock);
}

static uint64_t vsock_cid(struct vu_fe_dev *d)
{
	uint64_t cid = 0;

	d->vdev.ops->read_config(&d->vdev, 0, &cid, sizeof(cid));
	return cid;
}

START_TEST(vsock_device_cid_from_backend)
{
	struct vu_fe_dev d;
	struct vu_fe_dev_config c = { .id = "v", .device_id = VIRTIO_ID_VSOCK, .num_queues = 2, .queue_size = 64 };
	int i;

	dev_setup(&c);
	fb.features = VSOCK_FEATS;
	fbe_set_cid(&fb, 42);
	ck_assert_int_eq(vu_fe_dev_init(&d, &c), 0);
	/* rx, tx and the event queue; SEQPACKET passed on, bit 5 (no vsock
	 * bit) and the vhost bit not. */
	ck_assert_uint_eq(d.vdev.num_queues, 3);
	ck_assert_uint_eq(d.vdev.host_features, VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_F_EVENT_IDX) |
			  VIRTIO_BIT(1));
	ck_assert_uint_eq(vsock_cid(&d), 42);
	i = fbe_wait(&fb, VHOST_USER_GET_CONFIG, 0);
	ck_assert_int_ge(i, 0);
	ck_assert_uint_eq(fb.log[i].size, VU_CONFIG_HDR_SIZE + 8);
	/* No MQ (two rings, fixed) and no inflight tracking for vsock. */
	i = fbe_wait(&fb, VHOST_USER_SET_PROTOCOL_FEATURES, 0);
	ck_assert_uint_eq(seen_u64(&fb.log[i]) & (VU_BIT(VHOST_USER_PROTOCOL_F_MQ) |
						  VU_BIT(VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD)), 0);
	ck_assert_uint_eq(fbe_count(&fb, VHOST_USER_GET_QUEUE_NUM, 0), 0);
	vu_fe_dev_destroy(&d);

	/* A matching cid= is fine, another one refused. */
	c.cid = 42;
	ck_assert_int_eq(vu_fe_dev_init(&d, &c), 0);
	vu_fe_dev_destroy(&d);
	c.cid = 43;
	ck_assert_int_eq(vu_fe_dev_init(&d, &c), -EINVAL);
	/* A back-end's CID no guest may have is refused. */
	c.cid = 0;
	fbe_set_cid(&fb, 2);
	ck_assert_int_eq(vu_fe_dev_init(&d, &c), -EINVAL);
}
END_TEST

START_TEST(vsock_device_cid_from_option)
{
	struct vu_fe_dev d;
	struct vu_fe_dev_config c = { .id = "v", .device_id = VIRTIO_ID_VSOCK, .num_queues = 2, .queue_size = 64 };

	dev_setup(&c);
	fb.features = VSOCK_FEATS;
	fb.protocol = VU_FRONTEND_PROTOCOL_FEATURES & ~VU_BIT(VHOST_USER_PROTOCOL_F_CONFIG);
	/* No CONFIG: cvmm must be told the CID. */
	ck_assert_int_eq(vu_fe_dev_init(&d, &c), -EINVAL);
	c.cid = 9;
	ck_assert_int_eq(vu_fe_dev_init(&d, &c), 0);
	ck_assert_uint_eq(fbe_count(&fb, VHOST_USER_GET_CONFIG, 0), 0);
	ck_assert_uint_eq(vsock_cid(&d), 9);
	vu_fe_dev_destroy(&d);
}
END_TEST

/* The guest side of the device's three queues in mem: rings at 0x10000
 * (rx), 0x20000 (tx) and 0x30000 (event), buffers from 0x80000. */
struct vsock_guest {
	struct guest_ring ev;
	uint8_t *buf;
	int kick[3], call[3];     /* the transport's eventfds */
};

static void vsock_guest_init(struct vsock_guest *g)
{
	for (unsigned q = 0; q < 3; q++) {
		g->kick[q] = vu_peer_eventfd();
		g->call[q] = vu_peer_eventfd();
	}
}

static void vsock_guest_destroy(struct vsock_guest *g)
{
	for (unsigned q = 0; q < 3; q++) {
		close(g->kick[q]);
		close(g->call[q]);
	}
}

/* What a transport does at DRIVER_OK: fresh rings, its fds, the queues started. */
static void vsock_guest_start(struct vu_fe_dev *d, struct vsock_guest *g)
{
	uint8_t *base = mem.regions[0].hva;

	d->vdev.mem = &mem;
	memset(base + 0x10000, 0, 0x30000);
	ck_assert_int_eq(vdev_set_features(&d->vdev, VIRTIO_BIT(VIRTIO_F_VERSION_1)), 0);
	for (unsigned q = 0; q < 3; q++) {
		uint64_t at = 0x10000 * (q + 1);

		virtq_destroy(&d->vqs[q]);
		virtq_init(&d->vqs[q]);
		d->vqs[q].kick_fd = g->kick[q];
		d->vqs[q].call_fd = g->call[q];
		ck_assert_int_eq(virtq_setup(&d->vqs[q], &mem, QSIZE, at, at + 0x1000, at + 0x2000), 0);
	}
	guest_ring_init(&g->ev, base, QSIZE, 0x30000, 0x31000, 0x32000);
	g->buf = base + 0x80000;
	for (unsigned q = 0; q < 3; q++)
		ck_assert_int_eq(vdev_queue_start(&d->vdev, q), 0);
}

/* Offers event buffer k (8 bytes, 0xff) and kicks the event queue. */
static void vsock_guest_offer_event(struct vu_fe_dev *d, struct vsock_guest *g, unsigned k)
{
	struct guest_buf b = { .gpa = 0x80000 + 8 * k, .len = 8, .writable = true };
	uint64_t one = 1;

	memset(g->buf + 8 * k, 0xff, 8);
	guest_ring_post(&g->ev, &b, 1);
	ck_assert_int_eq(write(d->vqs[VSOCK_Q_EVENT].kick_fd, &one, sizeof(one)), sizeof(one));
}

/* The next event is a TRANSPORT_RESET in buffer k (within 3 s). */
static void vsock_guest_expect_reset(struct vsock_guest *g, unsigned k)
{
	static const uint8_t want[8] = { 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff };
	struct virtq_used_elem e;

	ck_assert_msg(guest_ring_wait_more(&g->ev, 3000), "no event in buffer %u", k);
	e = guest_ring_next_used(&g->ev);
	ck_assert_uint_eq(e.len, 4);
	ck_assert_mem_eq(g->buf + 8 * k, want, sizeof(want));
}

START_TEST(vsock_event_queue_transport_reset)
{
	struct vu_fe_dev d;
	struct vu_fe_dev_config c = { .id = "v", .device_id = VIRTIO_ID_VSOCK, .num_queues = 2, .queue_size = 64 };
	struct vsock_guest g;
	unsigned from;
	int i;

	dev_setup(&c);
	fb.features = VSOCK_FEATS;
	fbe_set_cid(&fb, 42);
	ck_assert_int_eq(vu_fe_dev_init(&d, &c), 0);
	vsock_guest_init(&g);
	vsock_guest_start(&d, &g);
	/* Only rx and tx reach the back-end. */
	ck_assert_int_ge(fbe_wait(&fb, VHOST_USER_SET_VRING_KICK, 0), 0);
	pthread_mutex_lock(&fb.lock);
	for (unsigned k = 0; k < fb.nlog; k++)
		if (fb.log[k].request == VHOST_USER_SET_VRING_NUM || fb.log[k].request == VHOST_USER_SET_VRING_KICK)
			ck_assert_uint_lt(fb.log[k].payload[0], 2);
	pthread_mutex_unlock(&fb.lock);
	ck_assert_uint_eq(fbe_count(&fb, VHOST_USER_SET_VRING_KICK, 0), 2);
	/* A new driver is owed a TRANSPORT_RESET: the buffer it offers after
	 * DRIVER_OK gets it, and no other event follows. */
	vsock_guest_offer_event(&d, &g, 0);
	vsock_guest_expect_reset(&g, 0);
	vsock_guest_offer_event(&d, &g, 1);
	ck_assert(!guest_ring_wait_more(&g.ev, 200));

	/* The back-end dies and another takes over: the waiting buffer gets
	 * the TRANSPORT_RESET once the rings are restored. */
	pthread_mutex_lock(&fb.lock);
	from = fb.nlog;
	pthread_mutex_unlock(&fb.lock);
	fbe_drop_connection(&fb);
	ck_assert(fbe_wait_connections(&fb, 2));
	vsock_guest_expect_reset(&g, 1);
	i = fbe_wait(&fb, VHOST_USER_SET_VRING_ENABLE, from);
	ck_assert_int_ge(i, 0);
	ck_assert_uint_eq(d.fe.reconnects, 1);
	/* A reconnect with no buffer waiting: owed until the driver offers one. */
	fbe_drop_connection(&fb);
	ck_assert(fbe_wait_connections(&fb, 3));
	for (int k = 0; k < 300 && d.fe.reconnects < 2; k++)
		usleep(10000);
	ck_assert_uint_eq(d.fe.reconnects, 2);
	ck_assert(!guest_ring_wait_more(&g.ev, 200));
	vsock_guest_offer_event(&d, &g, 2);
	vsock_guest_expect_reset(&g, 2);

	/* A guest reset: the next driver is told again. */
	for (unsigned q = 0; q < 3; q++)
		vdev_queue_stop(&d.vdev, q);
	vdev_reset(&d.vdev);
	vsock_guest_start(&d, &g);
	vsock_guest_offer_event(&d, &g, 3);
	vsock_guest_expect_reset(&g, 3);
	vu_fe_dev_destroy(&d);
	vsock_guest_destroy(&g);
}
END_TEST

static void sock_dir_remove(void)
{
	DIR *d = opendir(sock_dir);
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			unlinkat(dirfd(d), e->d_name, 0);
	closedir(d);
	rmdir(sock_dir);
}

int main(void)
{
	Suite *s = suite_create("vu_frontend");
	int failed;
	TCase *tc = tcase_create("pair");
	TCase *tl = tcase_create("reconnect");
	TCase *td = tcase_create("device");

	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, negotiation);
	tcase_add_test(tc, negotiation_minimal_backend);
	tcase_add_test(tc, too_few_queues_refused);
	tcase_add_test(tc, start_sends_memory_and_rings);
	tcase_add_test(tc, mem_table_without_mem_slots);
	tcase_add_test(tc, enable_barrier_without_reply_ack);
	tcase_add_test(tc, ring_kept_disabled_until_enabled);
	tcase_add_test(tc, backend_queues_counted_in_pairs);
	tcase_add_test(tc, stop_and_reset);
	tcase_add_test(tc, inflight_file_shrunk_by_backend);
	tcase_add_test(tc, reply_never_comes);
	tcase_add_test(tc, ring_error_fd_needs_reset);
	tcase_add_test(tc, malformed_reply);
	tcase_add_test(tc, refused_request);
	tcase_add_test(tc, malformed_negotiation);
	tcase_add_test(tc, backend_config_change);
	suite_add_tcase(s, tc);

	tcase_add_checked_fixture(tl, NULL, teardown);
	tcase_set_timeout(tl, 60);
	tcase_add_test(tl, reconnect_restores_rings);
	tcase_add_test(tl, reconnect_before_driver_ok);
	tcase_add_test(tl, reconnect_lacking_feature_needs_reset);
	tcase_add_test(tl, ring_started_while_disconnected);
	tcase_add_test(tl, state_lost_backend_gone_needs_reset);
	tcase_add_test(tl, state_lost_backend_gone_before_driver_ok);
	tcase_add_test(tl, connect_waits_for_a_starting_backend);
	tcase_add_test(tl, connect_without_backend_fails);
	suite_add_tcase(s, tl);

	tcase_add_checked_fixture(td, NULL, dev_teardown);
	tcase_set_timeout(td, 60);
	tcase_add_test(td, blk_device_features_and_config);
	tcase_add_test(td, blk_device_needs_config);
	tcase_add_test(td, net_device_builds_config);
	tcase_add_test(td, net_multiqueue_needs_backend_mq);
	tcase_add_test(td, fs_device_builds_config);
	tcase_add_test(td, fs_device_tag_and_queues);
	tcase_add_test(td, fs_devtype_creates_device);
	tcase_add_test(td, fs_devtype_server_mode);
	tcase_add_test(td, vsock_device_cid_from_backend);
	tcase_add_test(td, vsock_device_cid_from_option);
	tcase_add_test(td, vsock_event_queue_transport_reset);
	suite_add_tcase(s, td);
	if (!mkdtemp(sock_dir)) {
		perror("mkdtemp");
		return 1;
	}
	failed = check_run(s);
	sock_dir_remove();
	return failed;
}

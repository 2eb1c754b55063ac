/*
 * Fuzz target: the vhost-user front-end (vhost/frontend/) fed a hostile
 * back-end: its replies to every request the front-end makes (negotiation,
 * GET_CONFIG, the start of a device and its rings, GET_INFLIGHT_FD,
 * GET_VRING_BASE, acks) and its requests on the back-end request channel.
 *
 * The harness plays the back-end on socketpairs and, in place of the
 * front-end's service thread, runs that thread's steps itself (taking a new
 * connection, a back-end request, a ring error), so every run is one thread
 * and deterministic. The back-end's bytes for a connection are queued before
 * the front-end takes it, and the harness's end is then shut for writing: a
 * reply the stream lacks reads as EOF at once, never as a wait (the reply
 * deadline is covered by the unit tests).
 *
 * Input: u8 setup (bits 0-1: queues - 1; bit 2: the device gives a config
 * size per feature set; bit 3: min_backend_queues 1; bit 4:
 * state_lost_on_disconnect, as for virtiofsd), u8 mask of the
 * protocol features wanted (bit i: the i-th of VU_FRONTEND_PROTOCOL_FEATURES),
 * u8 config size; then records {u8 op, ...} until the end:
 *   REPLY    u8 fds, u16 len, bytes: sent on the next connection, in one
 *            sendmsg with up to 3 fresh fds (fds & 3 is their count, bits
 *            2-3, 4-5, 6-7 their kinds: eventfd, 64 KiB memfd, socket, pipe)
 *   CONNECT  the front-end takes a new connection carrying the REPLY chunks
 *            since the last one, then restores a running device on it (as
 *            after a reconnect)
 *   START    u8 q, u64 features: vu_frontend_ring_start
 *   STOP     u8 q: vu_frontend_ring_stop
 *   ENABLE   u8 q | on << 7: vu_frontend_ring_enable
 *   WRITE    u8 offset, u8 len, bytes: vu_frontend_write_config
 *   RESET    vu_frontend_reset
 *   REQUEST  u8 fds, u16 len, bytes: sent on the back-end request channel
 *            (as REPLY); then every whole message waiting there is handled
 *   ERROR    u8 q: the back-end signals ring q's error fd
 * op % 9 picks the record. At the end, the request channel is shut and what
 * is left there is handled (a partial message, EOF). The target aborts when
 * the process has more fds open after the front-end is destroyed than
 * before it was made: every fd a back-end sends must be closed.
 */
#include <errno.h>
#include <dirent.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cvmm/gmem.h"
#include "cvmm/virtq.h"
#include "cvmm/vu_frontend.h"
#include "cvmm/vu_msg.h"
#include "../../vhost/frontend/vu_fe_internal.h"
#include "lib/fuzz_fds.h"
#include "lib/fuzz_input.h"
#include "lib/fuzz_target.h"

#define VF_MAX_QUEUES 4
#define VF_QSIZE 16
#define VF_MEM_SIZE (64u * 1024)
#define VF_MEMFD_SIZE (64u * 1024)
/* Bounds that keep a connection's stream in the socket's buffer and a run
 * short. */
#define VF_STREAM_MAX (48u * 1024)
#define VF_CONNECTIONS_MAX 4
#define VF_OPS_MAX 64

enum { VF_REPLY, VF_CONNECT, VF_START, VF_STOP, VF_ENABLE, VF_WRITE, VF_RESET, VF_REQUEST, VF_ERROR,
       VF_NOPS };

/* What the harness queued for the next connection. */
struct vf_chunk {
	uint8_t spec;
	const uint8_t *buf;
	size_t len;
};

struct vf_harness {
	struct vu_frontend fe;
	struct gmem mem;
	struct virtq vqs[VF_MAX_QUEUES];
	int peer;                   /* the back-end's end of the connection, or -1 */
	int channel;                /* the back-end's end of the request channel, or -1 */
	struct fuzz_fds fds;        /* what the back-end sends */
	struct vf_chunk queued[VF_OPS_MAX];
	unsigned nqueued;
	size_t queued_len;
	unsigned connections;
	unsigned callbacks;         /* config_changed and needs_reset calls */
};

static void vf_drain_all(struct vf_harness *h)
{
	fuzz_fds_drain(h->peer, &h->channel);
	fuzz_fds_drain(h->channel, NULL);
}

/* What the service thread does for a new connection (vu_fe_reconnect):
 * take it, restore a running device on it. */
static void vf_connect(struct vf_harness *h)
{
	struct vu_frontend *fe = &h->fe;
	bool changed = false;
	int sv[2], r;

	if (h->connections == VF_CONNECTIONS_MAX ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return;
	h->connections++;
	if (h->peer >= 0)
		close(h->peer);
	if (h->channel >= 0)
		close(h->channel);
	h->peer = sv[1];
	h->channel = -1;
	for (unsigned i = 0; i < h->nqueued; i++)
		if (!fuzz_fds_send(&h->fds, h->peer, h->queued[i].spec, h->queued[i].buf, h->queued[i].len))
			break;
	h->nqueued = 0;
	h->queued_len = 0;
	shutdown(h->peer, SHUT_WR);
	pthread_mutex_lock(&fe->lock);
	vu_fe_close_conn(fe);
	r = vu_fe_take(fe, sv[0], &changed);
	if (!r)
		r = vu_fe_restore(fe);
	if (r)
		vu_fe_close_conn(fe);
	pthread_mutex_unlock(&fe->lock);
}

/* Bytes waiting on fd (FIONREAD), 0 on error. */
static size_t vf_waiting(int fd)
{
	int n = 0;

	return ioctl(fd, FIONREAD, &n) == 0 && n > 0 ? (size_t)n : 0;
}

/* The service thread's poll on the request channel: a request is handled
 * once it has fully arrived (or, at_end, whatever is there, EOF included:
 * the handler reads it and closes the channel on EOF). */
static void vf_serve_requests(struct vf_harness *h, bool at_end)
{
	struct vu_frontend *fe = &h->fe;

	for (unsigned i = 0; i < VF_OPS_MAX && fe->backend_fd >= 0; i++) {
		struct pollfd p = { .fd = fe->backend_fd, .events = POLLIN };
		struct vu_hdr hdr;
		size_t n = vf_waiting(fe->backend_fd);

		if (poll(&p, 1, 0) != 1)
			return;
		if (!at_end) {
			if (n < sizeof(hdr) ||
			    recv(fe->backend_fd, &hdr, sizeof(hdr), MSG_PEEK | MSG_DONTWAIT) != sizeof(hdr))
				return;
			if (hdr.size <= VU_MSG_MAX_PAYLOAD && n < sizeof(hdr) + hdr.size)
				return;
		}
		vu_fe_backend_request(fe);
		vf_drain_all(h);
	}
}

static void vf_ring_error(struct vf_harness *h, unsigned q)
{
	uint64_t one = 1;

	/* The service thread watches only started rings' error fds. */
	if (!h->fe.rings[q].started)
		return;
	(void)!write(h->fe.rings[q].err_fd, &one, sizeof(one));
	vu_fe_ring_error(&h->fe, q);
}

static void vf_config_changed(void *opaque)
{
	struct vf_harness *h = opaque;

	h->callbacks++;
}

static void vf_needs_reset(void *opaque)
{
	struct vf_harness *h = opaque;

	h->callbacks++;
}

/* A layout that grows with features, as virtio-net's does. */
static uint32_t vf_config_size(void *opaque, uint64_t features)
{
	(void)opaque;
	return (uint32_t)(features & 0xff);
}

static const struct vu_frontend_ops vf_ops = {
	.config_changed = vf_config_changed, .needs_reset = vf_needs_reset,
};

static const struct vu_frontend_ops vf_ops_sized = {
	.config_changed = vf_config_changed, .needs_reset = vf_needs_reset, .config_size = vf_config_size,
};

static void vf_mem_setup(struct vf_harness *h, unsigned nq)
{
	struct gmem_region r = { .gpa = 0, .size = VF_MEM_SIZE };

	gmem_init(&h->mem);
	r.fd = fuzz_memfd(VF_MEM_SIZE, NULL, 0);
	if (r.fd < 0)
		abort();
	r.map_base = mmap(NULL, VF_MEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, r.fd, 0);
	if (r.map_base == MAP_FAILED)
		abort();
	r.map_size = VF_MEM_SIZE;
	r.hva = r.map_base;
	if (gmem_add(&h->mem, &r))
		abort();
	for (unsigned q = 0; q < nq; q++) {
		uint64_t base = 0x4000 * q;

		virtq_init(&h->vqs[q]);
		if (virtq_setup(&h->vqs[q], &h->mem, VF_QSIZE, base, base + 0x1000, base + 0x2000))
			abort();
		h->vqs[q].kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		h->vqs[q].call_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (h->vqs[q].kick_fd < 0 || h->vqs[q].call_fd < 0)
			abort();
	}
}

static void vf_mem_destroy(struct vf_harness *h, unsigned nq)
{
	for (unsigned q = 0; q < nq; q++) {
		close(h->vqs[q].kick_fd);
		close(h->vqs[q].call_fd);
		virtq_destroy(&h->vqs[q]);
	}
	gmem_destroy(&h->mem);
}

/* Protocol features wanted: the bits of VU_FRONTEND_PROTOCOL_FEATURES that
 * mask keeps, in order. */
static uint64_t vf_protocol(uint8_t mask)
{
	uint64_t all = VU_FRONTEND_PROTOCOL_FEATURES, want = 0;
	unsigned i = 0;

	for (unsigned bit = 0; bit < 64; bit++) {
		if (!(all & VU_BIT(bit)))
			continue;
		if (mask & (1u << (i++ & 7)))
			want |= VU_BIT(bit);
	}
	return want;
}

static void vf_op(struct vf_harness *h, struct fuzz_input *in, unsigned nq)
{
	struct vu_frontend *fe = &h->fe;
	uint8_t op = fuzz_input_u8(in) % VF_NOPS, spec, b;
	const uint8_t *buf;
	uint8_t cfg[VU_MAX_CONFIG_SIZE];
	uint64_t features;
	size_t len;

	switch (op) {
	case VF_REPLY:
		spec = fuzz_input_u8(in);
		buf = fuzz_input_take(in, fuzz_input_u16(in), &len);
		if (h->nqueued < VF_OPS_MAX && h->queued_len + len <= VF_STREAM_MAX) {
			h->queued[h->nqueued++] = (struct vf_chunk){ spec, buf, len };
			h->queued_len += len;
		}
		break;
	case VF_CONNECT:
		vf_connect(h);
		break;
	case VF_START:
		b = fuzz_input_u8(in) % nq;
		features = fuzz_input_u64(in);
		vu_frontend_ring_start(fe, &h->mem, features, b, &h->vqs[b]);
		break;
	case VF_STOP:
		vu_frontend_ring_stop(fe, fuzz_input_u8(in) % nq);
		break;
	case VF_ENABLE:
		b = fuzz_input_u8(in);
		vu_frontend_ring_enable(fe, (b & 0x7f) % nq, b >> 7);
		break;
	case VF_WRITE:
		b = fuzz_input_u8(in);
		len = fuzz_input_u8(in);
		fuzz_input_bytes(in, cfg, len);
		vu_frontend_write_config(fe, b, cfg, (uint32_t)len);
		break;
	case VF_RESET:
		vu_frontend_reset(fe);
		break;
	case VF_REQUEST:
		spec = fuzz_input_u8(in);
		buf = fuzz_input_take(in, fuzz_input_u16(in), &len);
		fuzz_fds_send(&h->fds, h->channel, spec, buf, len);
		vf_serve_requests(h, false);
		break;
	default:
		vf_ring_error(h, fuzz_input_u8(in) % nq);
		break;
	}
	vf_drain_all(h);
}

/* Open fds of this process: every fd a back-end sends must be closed by
 * the time the front-end is destroyed. */
static unsigned vf_open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	unsigned n = 0;

	if (!d)
		abort();
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

FUZZ_TARGET_QUIET_INIT

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vf_harness h = { .peer = -1, .channel = -1 };
	struct fuzz_input in = { data, size };
	uint8_t setup = fuzz_input_u8(&in), mask = fuzz_input_u8(&in), config_size = fuzz_input_u8(&in);
	unsigned nq = (setup & 3) + 1;
	struct vu_frontend_config cfg = {
		.name = "fuzz", .num_queues = nq, .min_backend_queues = setup & 8 ? 1 : 0,
		.queue_size = VF_QSIZE, .protocol_features = vf_protocol(mask), .config_size = config_size,
		.state_lost_on_disconnect = setup & 16,
		.ops = setup & 4 ? &vf_ops_sized : &vf_ops, .opaque = &h,
	};
	unsigned fds_before = vf_open_fds();

	fuzz_fds_init(&h.fds, VF_MEMFD_SIZE, NULL, 0);
	vf_mem_setup(&h, nq);
	if (vu_frontend_init(&h.fe, &cfg))
		abort();
	for (unsigned i = 0; i < VF_OPS_MAX && !fuzz_input_empty(&in); i++)
		vf_op(&h, &in, nq);
	if (h.channel >= 0) {
		shutdown(h.channel, SHUT_WR);
		vf_serve_requests(&h, true);
	}
	vf_drain_all(&h);
	vu_frontend_destroy(&h.fe);
	if (h.peer >= 0)
		close(h.peer);
	if (h.channel >= 0)
		close(h.channel);
	fuzz_fds_destroy(&h.fds);
	vf_mem_destroy(&h, nq);
	if (vf_open_fds() != fds_before)
		abort();
	return 0;
}

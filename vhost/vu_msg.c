/*
 * vhost-user message codec. Every front-end request passes through
 * vu_msg_recv, which checks it against vu_msg_rules before any handler sees
 * it: handlers may rely on the payload size and the fd count.
 */
#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cvmm/vu_msg.h"

/* fds accepted from one recvmsg before the rest are truncated: more than any
 * request carries, so a message with a few extra fds is still read whole
 * (and rejected with its fds closed) instead of losing framing. */
#define VU_MSG_RECV_FDS 16

/* Wire rule of one request: payload size in [min_size, max_size], fd count
 * in [min_fds, max_fds], then `check` for rules that depend on the payload. */
struct vu_msg_rule {
	const char *name;
	uint32_t min_size, max_size;
	uint8_t min_fds, max_fds;
	bool (*check)(const struct vu_msg *m, unsigned nfds);
};

/* SET_MEM_TABLE: 8 + nregions * 32 bytes and one fd per region. */
static bool vu_msg_check_mem_table(const struct vu_msg *m, unsigned nfds)
{
	uint32_t n = m->payload.mem.nregions;

	if (n > VU_MAX_MEM_REGIONS)
		return false;
	return m->hdr.size == 8 + n * sizeof(struct vu_mem_region) && nfds == n;
}

/* SET_VRING_KICK/CALL/ERR: one fd, or none when the NOFD bit says so. */
static bool vu_msg_check_vring_fd(const struct vu_msg *m, unsigned nfds)
{
	bool nofd = m->payload.u64 & VU_VRING_NOFD_MASK;

	return nfds == (nofd ? 0u : 1u);
}

/* GET/SET_CONFIG: the 12-byte header, then exactly `size` bytes. */
static bool vu_msg_check_config(const struct vu_msg *m, unsigned nfds)
{
	(void)nfds;
	return m->payload.config.size <= VU_MAX_CONFIG_SIZE &&
	       m->hdr.size == VU_CONFIG_HDR_SIZE + m->payload.config.size;
}

#define VU_RULE(req, mn, mx, fmin, fmax, chk) \
	[VHOST_USER_##req] = { #req, mn, mx, fmin, fmax, chk }

static const struct vu_msg_rule vu_msg_rules[VHOST_USER_REQUEST_MAX] = {
	VU_RULE(GET_FEATURES, 0, 0, 0, 0, NULL),
	VU_RULE(SET_FEATURES, 8, 8, 0, 0, NULL),
	VU_RULE(SET_OWNER, 0, 0, 0, 0, NULL),
	VU_RULE(RESET_OWNER, 0, 0, 0, 0, NULL),
	VU_RULE(SET_MEM_TABLE, 8, sizeof(struct vu_mem_table), 0, VU_MAX_MEM_REGIONS,
		vu_msg_check_mem_table),
	VU_RULE(SET_VRING_NUM, 8, 8, 0, 0, NULL),
	VU_RULE(SET_VRING_ADDR, 40, 40, 0, 0, NULL),
	VU_RULE(SET_VRING_BASE, 8, 8, 0, 0, NULL),
	VU_RULE(GET_VRING_BASE, 8, 8, 0, 0, NULL),
	VU_RULE(SET_VRING_KICK, 8, 8, 0, 1, vu_msg_check_vring_fd),
	VU_RULE(SET_VRING_CALL, 8, 8, 0, 1, vu_msg_check_vring_fd),
	VU_RULE(SET_VRING_ERR, 8, 8, 0, 1, vu_msg_check_vring_fd),
	VU_RULE(GET_PROTOCOL_FEATURES, 0, 0, 0, 0, NULL),
	VU_RULE(SET_PROTOCOL_FEATURES, 8, 8, 0, 0, NULL),
	VU_RULE(GET_QUEUE_NUM, 0, 0, 0, 0, NULL),
	VU_RULE(SET_VRING_ENABLE, 8, 8, 0, 0, NULL),
	VU_RULE(SET_BACKEND_REQ_FD, 0, 0, 1, 1, NULL),
	VU_RULE(GET_CONFIG, VU_CONFIG_HDR_SIZE, sizeof(struct vu_config), 0, 0,
		vu_msg_check_config),
	VU_RULE(SET_CONFIG, VU_CONFIG_HDR_SIZE, sizeof(struct vu_config), 0, 0,
		vu_msg_check_config),
	VU_RULE(GET_INFLIGHT_FD, VU_INFLIGHT_MIN_SIZE, sizeof(struct vu_inflight), 0, 0, NULL),
	VU_RULE(SET_INFLIGHT_FD, VU_INFLIGHT_MIN_SIZE, sizeof(struct vu_inflight), 1, 1, NULL),
	VU_RULE(RESET_DEVICE, 0, 0, 0, 0, NULL),
	VU_RULE(GET_MAX_MEM_SLOTS, 0, 0, 0, 0, NULL),
	VU_RULE(ADD_MEM_REG, 40, 40, 1, 1, NULL),
	/* The spec lets old front-ends send one fd here; it is closed unused. */
	VU_RULE(REM_MEM_REG, 40, 40, 0, 1, NULL),
	VU_RULE(SET_STATUS, 8, 8, 0, 0, NULL),
	VU_RULE(GET_STATUS, 0, 0, 0, 0, NULL),
};

static const struct vu_msg_rule *vu_msg_rule_of(uint32_t request)
{
	if (request >= VHOST_USER_REQUEST_MAX || !vu_msg_rules[request].name)
		return NULL;
	return &vu_msg_rules[request];
}

const char *vu_msg_request_name(uint32_t request)
{
	static const char *const other[] = {
		[VHOST_USER_SET_LOG_BASE] = "SET_LOG_BASE",
		[VHOST_USER_SET_LOG_FD] = "SET_LOG_FD",
		[VHOST_USER_SEND_RARP] = "SEND_RARP",
		[VHOST_USER_NET_SET_MTU] = "NET_SET_MTU",
		[VHOST_USER_IOTLB_MSG] = "IOTLB_MSG",
		[VHOST_USER_SET_VRING_ENDIAN] = "SET_VRING_ENDIAN",
		[VHOST_USER_CREATE_CRYPTO_SESSION] = "CREATE_CRYPTO_SESSION",
		[VHOST_USER_CLOSE_CRYPTO_SESSION] = "CLOSE_CRYPTO_SESSION",
		[VHOST_USER_POSTCOPY_ADVISE] = "POSTCOPY_ADVISE",
		[VHOST_USER_POSTCOPY_LISTEN] = "POSTCOPY_LISTEN",
		[VHOST_USER_POSTCOPY_END] = "POSTCOPY_END",
		[VHOST_USER_GPU_SET_SOCKET] = "GPU_SET_SOCKET",
		[VHOST_USER_VRING_KICK] = "VRING_KICK",
		[VHOST_USER_GET_SHARED_OBJECT] = "GET_SHARED_OBJECT",
		[VHOST_USER_SET_DEVICE_STATE_FD] = "SET_DEVICE_STATE_FD",
		[VHOST_USER_CHECK_DEVICE_STATE] = "CHECK_DEVICE_STATE",
	};
	const struct vu_msg_rule *r = vu_msg_rule_of(request);

	if (r)
		return r->name;
	if (request < VHOST_USER_REQUEST_MAX && other[request])
		return other[request];
	return "UNKNOWN";
}

static void vu_msg_close_array(int *fds, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		if (fds[i] >= 0)
			close(fds[i]);
		fds[i] = -1;
	}
}

void vu_msg_close_fds(struct vu_msg *m)
{
	vu_msg_close_array(m->fds, m->nfds);
	m->nfds = 0;
}

int vu_msg_take_fd(struct vu_msg *m, unsigned i)
{
	int fd;

	if (i >= m->nfds)
		return -1;
	fd = m->fds[i];
	m->fds[i] = -1;
	return fd;
}

static int64_t vu_msg_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Deadline timeout_ms from now; -1 (no deadline) for a negative timeout. */
static int64_t vu_msg_deadline(int timeout_ms)
{
	return timeout_ms < 0 ? -1 : vu_msg_now_ms() + timeout_ms;
}

/* Waits until sock has events (POLLIN/POLLOUT), at most until deadline
 * (absolute, vu_msg_now_ms; -1: forever). 0, -ETIMEDOUT or -errno. */
static int vu_msg_wait(int sock, short events, int64_t deadline)
{
	struct pollfd p = { .fd = sock, .events = events };
	int r;

	do {
		int64_t left = deadline < 0 ? -1 : deadline - vu_msg_now_ms();

		if (deadline >= 0 && left <= 0)
			return -ETIMEDOUT;
		r = poll(&p, 1, left > INT32_MAX ? INT32_MAX : (int)left);
	} while ((r < 0 && errno == EINTR) || (r == 0 && deadline >= 0 && vu_msg_now_ms() < deadline));
	if (r < 0)
		return -errno;
	if (r == 0)
		return -ETIMEDOUT;
	return 0;
}

/* Reads exactly len bytes of a message already started, by its deadline:
 * the whole message has one, so a peer sending a byte now and then cannot
 * hold the reader. 0, -ETIMEDOUT, -EPROTO on EOF. */
static int vu_msg_read_rest(int sock, void *buf, size_t len, int64_t deadline)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t n;
		int r = vu_msg_wait(sock, POLLIN, deadline);

		if (r)
			return r;
		n = recv(sock, p, len, MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EPROTO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * Reads a header and its fds, waiting at most timeout_ms for the message to
 * start; *deadline is then when the whole message must be in. *nfds gets the
 * fd count (stored in fds[]); *ctrunc tells that more fds were sent than fit.
 * On error every received fd is closed.
 */
static int vu_msg_read_hdr(int sock, struct vu_msg *m, int *fds, unsigned *nfds,
			   bool *ctrunc, int timeout_ms, int64_t *deadline)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * VU_MSG_RECV_FDS)];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = { .iov_base = &m->hdr, .iov_len = sizeof(m->hdr) };
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf),
	};
	ssize_t n;
	int r;

	*nfds = 0;
	*ctrunc = false;
	r = vu_msg_wait(sock, POLLIN, vu_msg_deadline(timeout_ms));
	if (r)
		return r;
	do {
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EAGAIN ? -ETIMEDOUT : -errno;
	if (n == 0)
		return -ECONNRESET;
	*deadline = vu_msg_deadline(VU_MSG_TIMEOUT_MS);

	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		size_t cnt;
		const int *src;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		cnt = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		src = (const int *)(void *)CMSG_DATA(c);
		for (size_t i = 0; i < cnt; i++) {
			int fd;

			memcpy(&fd, &src[i], sizeof(fd));
			if (*nfds < VU_MSG_RECV_FDS)
				fds[(*nfds)++] = fd;
			else
				close(fd);
		}
	}
	if (mh.msg_flags & MSG_CTRUNC)
		*ctrunc = true;

	if ((size_t)n < sizeof(m->hdr)) {
		r = vu_msg_read_rest(sock, (uint8_t *)&m->hdr + n, sizeof(m->hdr) - (size_t)n,
				     *deadline);
		if (r)
			goto fail;
	}
	if (m->hdr.size > VU_MSG_MAX_PAYLOAD) {
		r = -EPROTO;
		goto fail;
	}
	return 0;
fail:
	vu_msg_close_array(fds, *nfds);
	*nfds = 0;
	return r == -ECONNRESET ? -EPROTO : r;
}

/* Reads the payload the header announced, by the message's deadline. */
static int vu_msg_read_payload(int sock, struct vu_msg *m, int64_t deadline)
{
	int r;

	/* Zero first: short payloads (inflight's 20 bytes) read as zero-padded. */
	memset(&m->payload, 0, sizeof(m->payload));
	r = vu_msg_read_rest(sock, m->raw, m->hdr.size, deadline);
	return r == -ECONNRESET ? -EPROTO : r;
}

static bool vu_msg_size_fits(const struct vu_msg_rule *rule, uint32_t size)
{
	return size >= rule->min_size && size <= rule->max_size;
}

/* A request's header: this version, known flags, not a reply. */
static int vu_msg_judge_request_hdr(const struct vu_msg *m)
{
	uint32_t fl = m->hdr.flags;

	if ((fl & VU_FLAG_VERSION_MASK) != VU_VERSION || (fl & ~VU_FLAG_KNOWN) ||
	    (fl & VU_FLAG_REPLY))
		return -EPROTO;
	return 0;
}

/* A whole request against the wire rule rule_of gives. */
static int vu_msg_judge_request(const struct vu_msg *m, unsigned nfds, bool ctrunc,
				const struct vu_msg_rule *(*rule_of)(uint32_t request))
{
	const struct vu_msg_rule *rule = rule_of(m->hdr.request);

	if (!rule)
		return -EOPNOTSUPP;
	if (ctrunc || !vu_msg_size_fits(rule, m->hdr.size) || nfds < rule->min_fds ||
	    nfds > rule->max_fds || (rule->check && !rule->check(m, nfds)))
		return -EBADMSG;
	return 0;
}

/* A whole reply to `request`. */
static int vu_msg_judge_reply(const struct vu_msg *m, unsigned nfds, bool ctrunc,
			      uint32_t request)
{
	if ((m->hdr.flags & VU_FLAG_VERSION_MASK) != VU_VERSION ||
	    !(m->hdr.flags & VU_FLAG_REPLY) || (m->hdr.flags & ~VU_FLAG_KNOWN) ||
	    m->hdr.request != request || ctrunc || nfds > VU_MAX_FDS)
		return -EPROTO;
	return 0;
}

/*
 * Reads one message by one deadline: a request whose wire rule rule_of gives
 * (front-end's, or a back-end's on its channel), or with rule_of NULL a reply
 * to reply_to. The fds are kept only when the message is accepted. A request
 * is judged on its header first, and a bad header is dropped at once, without
 * waiting for a payload that will not be used; a reply is read whole even when
 * refused, so a stray reply leaves the channel usable.
 */
static int vu_msg_recv_judged(int sock, struct vu_msg *m, int timeout_ms,
			      const struct vu_msg_rule *(*rule_of)(uint32_t request),
			      uint32_t reply_to)
{
	int fds[VU_MSG_RECV_FDS];
	unsigned nfds;
	bool ctrunc;
	int64_t deadline = -1; /* set by vu_msg_read_hdr; the compiler cannot tell */
	int r;

	m->nfds = 0;
	r = vu_msg_read_hdr(sock, m, fds, &nfds, &ctrunc, timeout_ms, &deadline);
	if (r)
		return r;
	r = rule_of ? vu_msg_judge_request_hdr(m) : 0;
	if (r)
		goto reject;
	/* The payload is consumed even when refused, to keep framing. */
	r = vu_msg_read_payload(sock, m, deadline);
	if (r)
		goto reject;
	r = rule_of ? vu_msg_judge_request(m, nfds, ctrunc, rule_of)
		    : vu_msg_judge_reply(m, nfds, ctrunc, reply_to);
	if (r)
		goto reject;
	memcpy(m->fds, fds, nfds * sizeof(int));
	m->nfds = nfds;
	return 0;
reject:
	vu_msg_close_array(fds, nfds);
	return r;
}

int vu_msg_recv(int sock, struct vu_msg *m)
{
	return vu_msg_recv_judged(sock, m, VU_MSG_TIMEOUT_MS, vu_msg_rule_of, 0);
}

/* Back-end requests the front-end understands, with their wire rules. */
static const struct vu_msg_rule vu_msg_backend_rules[VHOST_USER_BACKEND_REQUEST_MAX] = {
	[VHOST_USER_BACKEND_CONFIG_CHANGE_MSG] = { "CONFIG_CHANGE_MSG", 0, 0, 0, 0, NULL },
};

static const struct vu_msg_rule *vu_msg_backend_rule_of(uint32_t request)
{
	return request < VHOST_USER_BACKEND_REQUEST_MAX && vu_msg_backend_rules[request].name
		       ? &vu_msg_backend_rules[request]
		       : NULL;
}

int vu_msg_recv_backend(int sock, struct vu_msg *m, int timeout_ms)
{
	return vu_msg_recv_judged(sock, m, timeout_ms, vu_msg_backend_rule_of, 0);
}

int vu_msg_recv_reply(int sock, uint32_t request, struct vu_msg *m, int timeout_ms)
{
	return vu_msg_recv_judged(sock, m, timeout_ms, NULL, request);
}

void vu_msg_attach_fds(struct msghdr *mh, void *ctl, const int *fds, unsigned nfds)
{
	struct cmsghdr *c;

	mh->msg_control = ctl;
	mh->msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
	c = CMSG_FIRSTHDR(mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
	memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
}

/* Sends one message by deadline, never blocking past it: a peer that stops
 * reading costs the sender at most the deadline. */
static int vu_msg_send_by(int sock, uint32_t request, uint32_t flags, const void *payload,
			  uint32_t size, const int *fds, unsigned nfds, int64_t deadline)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * VU_MAX_FDS)];
		struct cmsghdr align;
	} ctl;
	struct vu_hdr hdr = { .request = request, .flags = flags, .size = size };
	struct iovec iov[2] = {
		{ .iov_base = &hdr, .iov_len = sizeof(hdr) },
		{ .iov_base = (void *)payload, .iov_len = size },
	};
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = size ? 2 : 1 };
	size_t left = sizeof(hdr) + size;

	if (nfds > VU_MAX_FDS || (size && !payload))
		return -EINVAL;
	if (nfds) {
		memset(&ctl, 0, sizeof(ctl));
		vu_msg_attach_fds(&mh, ctl.buf, fds, nfds);
	}
	while (left) {
		ssize_t n = sendmsg(sock, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0) {
			int r;

			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				return -errno;
			r = vu_msg_wait(sock, POLLOUT, deadline);
			if (r)
				return r;
			continue;
		}
		left -= (size_t)n;
		/* The fds went with the first bytes; send the rest without them. */
		mh.msg_control = NULL;
		mh.msg_controllen = 0;
		while (n > 0 && mh.msg_iovlen) {
			size_t take = (size_t)n < mh.msg_iov->iov_len ? (size_t)n
								     : mh.msg_iov->iov_len;

			mh.msg_iov->iov_base = (uint8_t *)mh.msg_iov->iov_base + take;
			mh.msg_iov->iov_len -= take;
			n -= (ssize_t)take;
			if (!mh.msg_iov->iov_len) {
				mh.msg_iov++;
				mh.msg_iovlen--;
			}
		}
	}
	return 0;
}

int vu_msg_send(int sock, uint32_t request, uint32_t flags, const void *payload,
		uint32_t size, const int *fds, unsigned nfds)
{
	return vu_msg_send_by(sock, request, flags, payload, size, fds, nfds,
			      vu_msg_deadline(VU_MSG_TIMEOUT_MS));
}

int vu_msg_reply(int sock, const struct vu_msg *req, const void *payload,
		 uint32_t size, const int *fds, unsigned nfds)
{
	return vu_msg_send(sock, req->hdr.request, VU_VERSION | VU_FLAG_REPLY, payload,
			   size, fds, nfds);
}

int vu_msg_ack(int sock, const struct vu_msg *req, int result)
{
	uint64_t v = result < 0 ? (uint64_t)-result : (uint64_t)result;

	return vu_msg_reply(sock, req, &v, sizeof(v), NULL, 0);
}

int vu_msg_backend_request(int sock, uint32_t request, const void *payload,
			   uint32_t size, const int *fds, unsigned nfds,
			   bool need_reply, int timeout_ms)
{
	struct vu_msg reply;
	uint32_t flags = VU_VERSION | (need_reply ? VU_FLAG_NEED_REPLY : 0);
	int64_t deadline = vu_msg_deadline(timeout_ms);
	int64_t left;
	int r;

	r = vu_msg_send_by(sock, request, flags, payload, size, fds, nfds, deadline);
	if (r || !need_reply)
		return r;
	left = deadline < 0 ? -1 : deadline - vu_msg_now_ms();
	if (deadline >= 0 && left <= 0)
		return -ETIMEDOUT;
	r = vu_msg_recv_reply(sock, request, &reply, (int)left);
	if (r)
		return r;
	vu_msg_close_fds(&reply);
	if (reply.hdr.size != sizeof(uint64_t))
		return -EPROTO;
	return reply.payload.u64 ? -EIO : 0;
}

int vu_unix_addr(const char *path, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa->sun_path))
		return -ENAMETOOLONG;
	memcpy(sa->sun_path, path, strlen(path));
	return 0;
}

int vu_unix_connect(const char *path)
{
	struct sockaddr_un sa;
	int r = vu_unix_addr(path, &sa), fd;

	if (r)
		return r;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	/* A Unix socket connects at once or not at all: no EINPROGRESS. */
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

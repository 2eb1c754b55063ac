/* vhost-user codec: every wire rule and each malformed class, against a
 * raw socketpair peer. */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cvmm/vu_msg.h"
#include "vu_peer.h"
#include "check_run.h"

static int sv[2];

static void setup(void)
{
	ck_assert_int_eq(vu_peer_socketpair(sv), 0);
}

static void teardown(void)
{
	close(sv[0]);
	close(sv[1]);
}

static struct vu_msg msg;

/* Sends a well-formed request and checks the codec accepts it. */
static void expect_ok(uint32_t req, const void *payload, uint32_t size, const int *fds,
		      unsigned nfds)
{
	ck_assert_int_eq(vu_peer_send(sv[1], req, VU_VERSION, payload, size, fds, nfds), 0);
	ck_assert_int_eq(vu_msg_recv(sv[0], &msg), 0);
	ck_assert_uint_eq(msg.hdr.request, req);
	ck_assert_uint_eq(msg.hdr.size, size);
	ck_assert_uint_eq(msg.nfds, nfds);
	vu_msg_close_fds(&msg);
}

static void expect_err(uint32_t req, uint32_t flags, const void *payload, uint32_t size,
		       const int *fds, unsigned nfds, int err)
{
	ck_assert_int_eq(vu_peer_send(sv[1], req, flags, payload, size, fds, nfds), 0);
	ck_assert_int_eq(vu_msg_recv(sv[0], &msg), err);
	ck_assert_uint_eq(msg.nfds, 0);
}

/* After a framing-intact error the next message must read normally. */
static void expect_framing_intact(void)
{
	uint64_t v = 42;

	expect_ok(VHOST_USER_SET_FEATURES, &v, 8, NULL, 0);
	ck_assert_uint_eq(msg.payload.u64, 42);
}

START_TEST(accepts_each_rule)
{
	uint64_t u = 0;
	struct vu_vring_state st = { 0, 256 };
	struct vu_vring_addr a = { 0 };
	struct vu_mem_table t = { .nregions = 2 };
	struct vu_mem_single one = { 0 };
	struct vu_config c = { .offset = 0, .size = 60 };
	struct vu_inflight in = { .num_queues = 1, .queue_size = 128 };
	int e1 = vu_peer_eventfd(), e2 = vu_peer_eventfd();
	int two[2] = { e1, e2 };

	expect_ok(VHOST_USER_GET_FEATURES, NULL, 0, NULL, 0);
	expect_ok(VHOST_USER_SET_FEATURES, &u, 8, NULL, 0);
	expect_ok(VHOST_USER_SET_OWNER, NULL, 0, NULL, 0);
	expect_ok(VHOST_USER_SET_VRING_NUM, &st, 8, NULL, 0);
	expect_ok(VHOST_USER_SET_VRING_ADDR, &a, 40, NULL, 0);
	expect_ok(VHOST_USER_GET_VRING_BASE, &st, 8, NULL, 0);
	expect_ok(VHOST_USER_SET_MEM_TABLE, &t, 8 + 2 * 32, two, 2);
	expect_ok(VHOST_USER_SET_VRING_KICK, &u, 8, &e1, 1);
	u = VU_VRING_NOFD_MASK | 1;
	expect_ok(VHOST_USER_SET_VRING_CALL, &u, 8, NULL, 0);
	expect_ok(VHOST_USER_SET_BACKEND_REQ_FD, NULL, 0, &e1, 1);
	expect_ok(VHOST_USER_GET_CONFIG, &c, 12 + 60, NULL, 0);
	expect_ok(VHOST_USER_GET_INFLIGHT_FD, &in, 24, NULL, 0);
	expect_ok(VHOST_USER_GET_INFLIGHT_FD, &in, 20, NULL, 0);
	expect_ok(VHOST_USER_SET_INFLIGHT_FD, &in, 24, &e1, 1);
	expect_ok(VHOST_USER_ADD_MEM_REG, &one, 40, &e1, 1);
	expect_ok(VHOST_USER_REM_MEM_REG, &one, 40, NULL, 0);
	expect_ok(VHOST_USER_REM_MEM_REG, &one, 40, &e1, 1);
	expect_ok(VHOST_USER_GET_STATUS, NULL, 0, NULL, 0);
	close(e1);
	close(e2);
}
END_TEST

START_TEST(bad_version)
{
	uint64_t v = 0;

	expect_err(VHOST_USER_SET_FEATURES, 0x2, &v, 8, NULL, 0, -EPROTO);
}
END_TEST

START_TEST(reserved_flags)
{
	uint64_t v = 0;

	expect_err(VHOST_USER_SET_FEATURES, VU_VERSION | 0x10, &v, 8, NULL, 0, -EPROTO);
}
END_TEST

START_TEST(reply_flag_on_request)
{
	expect_err(VHOST_USER_GET_FEATURES, VU_VERSION | VU_FLAG_REPLY, NULL, 0, NULL, 0, -EPROTO);
}
END_TEST

START_TEST(wrong_payload_size)
{
	uint8_t buf[64] = { 0 };
	struct vu_mem_table t = { .nregions = 1 };
	struct vu_config c = { .size = 8 };
	int e = vu_peer_eventfd();

	expect_err(VHOST_USER_SET_FEATURES, VU_VERSION, buf, 4, NULL, 0, -EBADMSG);
	expect_framing_intact();
	expect_err(VHOST_USER_GET_FEATURES, VU_VERSION, buf, 8, NULL, 0, -EBADMSG);
	expect_framing_intact();
	expect_err(VHOST_USER_SET_VRING_ADDR, VU_VERSION, buf, 32, NULL, 0, -EBADMSG);
	expect_framing_intact();
	/* One region announced, two regions' worth of payload. */
	expect_err(VHOST_USER_SET_MEM_TABLE, VU_VERSION, &t, 8 + 64, &e, 1, -EBADMSG);
	expect_framing_intact();
	/* More regions than the protocol allows. */
	t.nregions = 9;
	expect_err(VHOST_USER_SET_MEM_TABLE, VU_VERSION, &t, 8, NULL, 0, -EBADMSG);
	expect_framing_intact();
	/* Config size field disagrees with the payload. */
	expect_err(VHOST_USER_GET_CONFIG, VU_VERSION, &c, 12 + 4, NULL, 0, -EBADMSG);
	expect_framing_intact();
	c.size = 300;
	expect_err(VHOST_USER_SET_CONFIG, VU_VERSION, &c, 12 + 256, NULL, 0, -EBADMSG);
	expect_framing_intact();
	expect_err(VHOST_USER_GET_INFLIGHT_FD, VU_VERSION, buf, 16, NULL, 0, -EBADMSG);
	expect_framing_intact();
	close(e);
}
END_TEST

START_TEST(missing_fd)
{
	uint64_t v = 0;
	struct vu_mem_table t = { .nregions = 2 };
	int e = vu_peer_eventfd();

	expect_err(VHOST_USER_SET_VRING_KICK, VU_VERSION, &v, 8, NULL, 0, -EBADMSG);
	expect_framing_intact();
	expect_err(VHOST_USER_SET_MEM_TABLE, VU_VERSION, &t, 8 + 64, &e, 1, -EBADMSG);
	expect_framing_intact();
	expect_err(VHOST_USER_SET_BACKEND_REQ_FD, VU_VERSION, NULL, 0, NULL, 0, -EBADMSG);
	expect_framing_intact();
	close(e);
}
END_TEST

START_TEST(extra_fds_closed)
{
	uint64_t v = VU_VRING_NOFD_MASK;
	int fds[12];
	int before;

	for (int i = 0; i < 12; i++)
		fds[i] = vu_peer_eventfd();
	before = vu_peer_count_fds();
	/* NOFD set but an fd sent; a request that takes none; 12 fds on one. */
	expect_err(VHOST_USER_SET_VRING_CALL, VU_VERSION, &v, 8, fds, 1, -EBADMSG);
	expect_err(VHOST_USER_GET_FEATURES, VU_VERSION, NULL, 0, fds, 3, -EBADMSG);
	v = 0;
	expect_err(VHOST_USER_SET_VRING_KICK, VU_VERSION, &v, 8, fds, 12, -EBADMSG);
	expect_framing_intact();
	/* None of the received duplicates survived. */
	ck_assert_int_eq(vu_peer_count_fds(), before);
	for (int i = 0; i < 12; i++)
		close(fds[i]);
}
END_TEST

START_TEST(too_many_fds_truncated)
{
	uint64_t v = 0;
	int fds[40];
	int before;

	for (int i = 0; i < 40; i++)
		fds[i] = vu_peer_eventfd();
	before = vu_peer_count_fds();
	/* More than the codec's control buffer holds: MSG_CTRUNC. */
	expect_err(VHOST_USER_SET_VRING_KICK, VU_VERSION, &v, 8, fds, 40, -EBADMSG);
	expect_framing_intact();
	ck_assert_int_eq(vu_peer_count_fds(), before);
	for (int i = 0; i < 40; i++)
		close(fds[i]);
}
END_TEST

START_TEST(unknown_request)
{
	uint8_t buf[100] = { 0 };
	int e = vu_peer_eventfd();
	int before = vu_peer_count_fds();

	expect_err(99, VU_VERSION, buf, sizeof(buf), &e, 1, -EOPNOTSUPP);
	ck_assert_uint_eq(msg.hdr.request, 99);
	expect_framing_intact();
	expect_err(VHOST_USER_SET_LOG_BASE, VU_VERSION, buf, 16, NULL, 0, -EOPNOTSUPP);
	expect_framing_intact();
	ck_assert_int_eq(vu_peer_count_fds(), before);
	close(e);
}
END_TEST

START_TEST(oversized_and_truncated)
{
	struct vu_hdr h = { VHOST_USER_SET_FEATURES, VU_VERSION, VU_MSG_MAX_PAYLOAD + 1 };
	uint8_t part[4] = { 0 };

	ck_assert_int_eq(vu_peer_send_raw(sv[1], &h, sizeof(h), NULL, 0), 0);
	ck_assert_int_eq(vu_msg_recv(sv[0], &msg), -EPROTO);
	teardown();
	setup();
	/* Header promises 8 bytes, 4 arrive, then EOF. */
	h.size = 8;
	ck_assert_int_eq(vu_peer_send_raw(sv[1], &h, sizeof(h), NULL, 0), 0);
	ck_assert_int_eq(vu_peer_send_raw(sv[1], part, sizeof(part), NULL, 0), 0);
	shutdown(sv[1], SHUT_WR);
	ck_assert_int_eq(vu_msg_recv(sv[0], &msg), -EPROTO);
	teardown();
	setup();
	/* Half a header. */
	ck_assert_int_eq(vu_peer_send_raw(sv[1], &h, 6, NULL, 0), 0);
	shutdown(sv[1], SHUT_WR);
	ck_assert_int_eq(vu_msg_recv(sv[0], &msg), -EPROTO);
}
END_TEST

START_TEST(eof_between_messages)
{
	shutdown(sv[1], SHUT_WR);
	ck_assert_int_eq(vu_msg_recv(sv[0], &msg), -ECONNRESET);
}
END_TEST

START_TEST(split_message_is_reassembled)
{
	struct vu_hdr h = { VHOST_USER_SET_FEATURES, VU_VERSION, 8 };
	uint64_t v = 0x1234;
	int e = vu_peer_eventfd();

	h.request = VHOST_USER_SET_VRING_KICK;
	ck_assert_int_eq(vu_peer_send_raw(sv[1], &h, 5, &e, 1), 0);
	ck_assert_int_eq(vu_peer_send_raw(sv[1], (uint8_t *)&h + 5, 7, NULL, 0), 0);
	v = 1;
	ck_assert_int_eq(vu_peer_send_raw(sv[1], &v, 8, NULL, 0), 0);
	ck_assert_int_eq(vu_msg_recv(sv[0], &msg), 0);
	ck_assert_uint_eq(msg.nfds, 1);
	ck_assert_uint_eq(msg.payload.u64, 1);
	vu_msg_close_fds(&msg);
	close(e);
}
END_TEST

START_TEST(reply_and_ack_format)
{
	struct vu_peer_reply rep;
	uint64_t v;
	int e = vu_peer_eventfd();

	ck_assert_int_eq(vu_peer_send(sv[1], VHOST_USER_SET_FEATURES, VU_VERSION | VU_FLAG_NEED_REPLY,
				      &(uint64_t){ 0 }, 8, NULL, 0), 0);
	ck_assert_int_eq(vu_msg_recv(sv[0], &msg), 0);
	ck_assert_int_eq(vu_msg_ack(sv[0], &msg, -EINVAL), 0);
	ck_assert_int_eq(vu_peer_read(sv[1], &rep, 1000), 0);
	ck_assert_uint_eq(rep.hdr.request, VHOST_USER_SET_FEATURES);
	ck_assert_uint_eq(rep.hdr.flags, VU_VERSION | VU_FLAG_REPLY);
	ck_assert_uint_eq(rep.hdr.size, 8);
	memcpy(&v, rep.payload, 8);
	ck_assert_uint_eq(v, EINVAL);
	ck_assert_int_eq(vu_msg_ack(sv[0], &msg, 0), 0);
	ck_assert_int_eq(vu_peer_read(sv[1], &rep, 1000), 0);
	memcpy(&v, rep.payload, 8);
	ck_assert_uint_eq(v, 0);
	/* A reply carrying an fd. */
	ck_assert_int_eq(vu_msg_reply(sv[0], &msg, &v, 8, &e, 1), 0);
	ck_assert_int_eq(vu_peer_read(sv[1], &rep, 1000), 0);
	ck_assert_uint_eq(rep.nfds, 1);
	close(rep.fds[0]);
	close(e);
}
END_TEST

struct acker {
	int sock;
	uint64_t answer;
	uint32_t seen_flags;
	uint32_t seen_request;
};

static void *acker_thread(void *arg)
{
	struct acker *a = arg;
	struct vu_peer_reply rep;

	if (vu_peer_read(a->sock, &rep, 5000))
		return NULL;
	a->seen_flags = rep.hdr.flags;
	a->seen_request = rep.hdr.request;
	if (rep.hdr.flags & VU_FLAG_NEED_REPLY)
		vu_peer_send(a->sock, rep.hdr.request, VU_VERSION | VU_FLAG_REPLY, &a->answer, 8,
			     NULL, 0);
	return NULL;
}

START_TEST(backend_request_waits_for_ack)
{
	struct acker a = { .sock = sv[1], .answer = 0 };
	pthread_t t;

	pthread_create(&t, NULL, acker_thread, &a);
	ck_assert_int_eq(vu_msg_backend_request(sv[0], VHOST_USER_BACKEND_CONFIG_CHANGE_MSG, NULL,
						0, NULL, 0, true, 5000), 0);
	pthread_join(t, NULL);
	ck_assert_uint_eq(a.seen_request, VHOST_USER_BACKEND_CONFIG_CHANGE_MSG);
	ck_assert_uint_eq(a.seen_flags, VU_VERSION | VU_FLAG_NEED_REPLY);

	a.answer = 5;
	pthread_create(&t, NULL, acker_thread, &a);
	ck_assert_int_eq(vu_msg_backend_request(sv[0], VHOST_USER_BACKEND_CONFIG_CHANGE_MSG, NULL,
						0, NULL, 0, true, 5000), -EIO);
	pthread_join(t, NULL);

	/* Nobody answers: bounded wait. */
	ck_assert_int_eq(vu_msg_backend_request(sv[0], VHOST_USER_BACKEND_CONFIG_CHANGE_MSG, NULL,
						0, NULL, 0, true, 100), -ETIMEDOUT);
}
END_TEST

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

struct dribbler {
	int sock;
	atomic_bool stop;
};

/* A peer that sends a valid header, then its payload a byte every 400 ms. */
static void *dribble_thread(void *arg)
{
	struct dribbler *d = arg;
	struct vu_hdr h = { VHOST_USER_SET_VRING_ADDR, VU_VERSION, 40 };
	uint8_t zero = 0;

	vu_peer_send_raw(d->sock, &h, sizeof(h), NULL, 0);
	for (int i = 0; i < 40 && !atomic_load(&d->stop); i++) {
		nanosleep(&(struct timespec){ .tv_nsec = 400 * 1000000 }, NULL);
		if (send(d->sock, &zero, 1, MSG_NOSIGNAL) != 1)
			break;
	}
	return NULL;
}

/* The whole message has one deadline: progress does not extend it. */
START_TEST(slow_message_has_one_deadline)
{
	struct dribbler d = { .sock = sv[1] };
	pthread_t t;
	double start, took;
	int r;

	pthread_create(&t, NULL, dribble_thread, &d);
	start = now_s();
	r = vu_msg_recv(sv[0], &msg);
	took = now_s() - start;
	atomic_store(&d.stop, true);
	pthread_join(t, NULL);
	ck_assert_int_eq(r, -ETIMEDOUT);
	ck_assert_double_ge(took, VU_MSG_TIMEOUT_MS / 1000.0 - 0.5);
	/* (Without one deadline it would take the 16 s of dribbling.) */
	ck_assert_double_le(took, VU_MSG_TIMEOUT_MS / 1000.0 + 5);
}
END_TEST

/* A bad header is refused as soon as it is read, not after waiting for the
 * payload it announces. */
START_TEST(bad_header_refused_before_payload)
{
	struct vu_hdr h = { VHOST_USER_SET_FEATURES, 0x2, 100 };
	double start;

	ck_assert_int_eq(vu_peer_send_raw(sv[1], &h, sizeof(h), NULL, 0), 0);
	start = now_s();
	ck_assert_int_eq(vu_msg_recv(sv[0], &msg), -EPROTO);
	ck_assert_double_lt(now_s() - start, VU_MSG_TIMEOUT_MS / 2000.0);
}
END_TEST

struct stalled_send {
	int sock, result;
	atomic_bool done;
};

static void *stalled_send_thread(void *arg)
{
	struct stalled_send *ss = arg;

	ss->result = vu_msg_backend_request(ss->sock, VHOST_USER_BACKEND_CONFIG_CHANGE_MSG, NULL,
					    0, NULL, 0, false, 300);
	atomic_store(&ss->done, true);
	return NULL;
}

/* A front-end that never reads its back-end channel: sending gives up. */
START_TEST(send_to_stalled_peer_is_bounded)
{
	struct stalled_send ss = { .sock = sv[0] };
	static uint8_t junk[4096];
	pthread_t t;

	while (send(sv[0], junk, sizeof(junk), MSG_DONTWAIT | MSG_NOSIGNAL) > 0)
		;
	pthread_create(&t, NULL, stalled_send_thread, &ss);
	for (int i = 0; i < 1000 && !atomic_load(&ss.done); i++)
		nanosleep(&(struct timespec){ .tv_nsec = 10 * 1000000 }, NULL);
	ck_assert_msg(atomic_load(&ss.done), "send blocked for 10 s on a peer that does not read");
	pthread_join(t, NULL);
	ck_assert_int_eq(ss.result, -ETIMEDOUT);
}
END_TEST

/* A peer that listens and never accepts: its backlog fills, and every
 * further connect must fail at once (-EAGAIN) rather than wait for ever. */
struct dial_loop {
	const char *path;
	int fds[8];
	int last;
	atomic_bool done;
};

static void *dial_loop_thread(void *arg)
{
	struct dial_loop *d = arg;

	for (unsigned i = 0; i < 8; i++) {
		d->fds[i] = vu_unix_connect(d->path);
		d->last = d->fds[i];
	}
	atomic_store(&d->done, true);
	return NULL;
}

START_TEST(connect_to_full_backlog_fails_at_once)
{
	char dir[] = "/tmp/cvmm-vumsg.XXXXXX", path[64], longpath[200];
	struct sockaddr_un sa;
	struct dial_loop d = { .path = path };
	int lfd, eagain = 0, connected = 0;
	pthread_t t;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/s", dir);
	ck_assert_int_eq(vu_unix_addr(path, &sa), 0);
	lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	ck_assert_int_ge(lfd, 0);
	ck_assert_int_eq(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(lfd, 0), 0);
	pthread_create(&t, NULL, dial_loop_thread, &d);
	for (int i = 0; i < 1000 && !atomic_load(&d.done); i++)
		nanosleep(&(struct timespec){ .tv_nsec = 10 * 1000000 }, NULL);
	ck_assert_msg(atomic_load(&d.done), "connect blocked for 10 s on a peer that does not accept");
	pthread_join(t, NULL);
	for (unsigned i = 0; i < 8; i++) {
		if (d.fds[i] >= 0) {
			connected++;
			close(d.fds[i]);
		} else {
			ck_assert_int_eq(d.fds[i], -EAGAIN);
			eagain++;
		}
	}
	ck_assert_int_ge(connected, 1);
	ck_assert_int_ge(eagain, 1);
	ck_assert_int_eq(d.last, -EAGAIN);
	close(lfd);
	ck_assert_int_eq(vu_unix_connect(path), -ECONNREFUSED);
	unlink(path);
	ck_assert_int_eq(vu_unix_connect(path), -ENOENT);
	rmdir(dir);
	memset(longpath, 'x', sizeof(longpath) - 1);
	longpath[sizeof(longpath) - 1] = 0;
	ck_assert_int_eq(vu_unix_connect(longpath), -ENAMETOOLONG);
}
END_TEST

START_TEST(recv_reply_checks_header)
{
	uint64_t v = 0;

	/* Not a reply. */
	vu_peer_send(sv[1], VHOST_USER_GET_FEATURES, VU_VERSION, &v, 8, NULL, 0);
	ck_assert_int_eq(vu_msg_recv_reply(sv[0], VHOST_USER_GET_FEATURES, &msg, 1000), -EPROTO);
	/* A reply to another request. */
	vu_peer_send(sv[1], VHOST_USER_GET_STATUS, VU_VERSION | VU_FLAG_REPLY, &v, 8, NULL, 0);
	ck_assert_int_eq(vu_msg_recv_reply(sv[0], VHOST_USER_GET_FEATURES, &msg, 1000), -EPROTO);
	vu_peer_send(sv[1], VHOST_USER_GET_FEATURES, VU_VERSION | VU_FLAG_REPLY, &v, 8, NULL, 0);
	ck_assert_int_eq(vu_msg_recv_reply(sv[0], VHOST_USER_GET_FEATURES, &msg, 1000), 0);
	ck_assert_int_eq(vu_msg_recv_reply(sv[0], VHOST_USER_GET_FEATURES, &msg, 50), -ETIMEDOUT);
}
END_TEST

START_TEST(request_names)
{
	ck_assert_str_eq(vu_msg_request_name(VHOST_USER_SET_MEM_TABLE), "SET_MEM_TABLE");
	ck_assert_str_eq(vu_msg_request_name(VHOST_USER_SET_LOG_BASE), "SET_LOG_BASE");
	ck_assert_str_eq(vu_msg_request_name(1000), "UNKNOWN");
}
END_TEST

static uint64_t rnd_state = 0x2545f4914f6cdd1dULL;

static uint64_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return rnd_state;
}

/* Random byte streams, some starting with a plausible header, with random
 * fds: the codec returns an answer for each message and keeps no fd. */
START_TEST(random_streams)
{
	int pool[3] = { vu_peer_eventfd(), vu_peer_eventfd(), vu_peer_memfd(4096) };
	int before = vu_peer_count_fds();
	uint8_t buf[700];

	for (int i = 0; i < 3000; i++) {
		size_t len = (size_t)(rnd() % sizeof(buf));
		unsigned nfds = (unsigned)(rnd() % 4);
		int fds[4];
		int r, n = 0;

		for (size_t k = 0; k < len; k++)
			buf[k] = (uint8_t)rnd();
		if (len >= 12 && rnd() % 2) {
			struct vu_hdr h = { (uint32_t)(rnd() % 45), VU_VERSION,
					    (uint32_t)(rnd() % (len - 11)) };

			memcpy(buf, &h, sizeof(h));
		}
		for (unsigned k = 0; k < nfds; k++)
			fds[k] = pool[rnd() % 3];
		if (len)
			ck_assert_int_eq(vu_peer_send_raw(sv[1], buf, len, fds, nfds), 0);
		shutdown(sv[1], SHUT_WR);
		do {
			r = vu_msg_recv(sv[0], &msg);
			if (r == 0)
				vu_msg_close_fds(&msg);
			ck_assert_int_lt(++n, 1000);
		} while (r == 0 || r == -EBADMSG || r == -EOPNOTSUPP);
		ck_assert(r == -ECONNRESET || r == -EPROTO);
		teardown();
		setup();
	}
	ck_assert_int_eq(vu_peer_count_fds(), before);
	for (int k = 0; k < 3; k++)
		close(pool[k]);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("vu_msg");
	TCase *tc = tcase_create("codec");
	TCase *trunc;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, accepts_each_rule);
	tcase_add_test(tc, bad_version);
	tcase_add_test(tc, reserved_flags);
	tcase_add_test(tc, reply_flag_on_request);
	tcase_add_test(tc, wrong_payload_size);
	tcase_add_test(tc, missing_fd);
	tcase_add_test(tc, extra_fds_closed);
	tcase_add_test(tc, unknown_request);
	tcase_add_test(tc, oversized_and_truncated);
	tcase_add_test(tc, eof_between_messages);
	tcase_add_test(tc, split_message_is_reassembled);
	tcase_add_test(tc, reply_and_ack_format);
	tcase_add_test(tc, backend_request_waits_for_ack);
	tcase_add_test(tc, recv_reply_checks_header);
	tcase_add_test(tc, slow_message_has_one_deadline);
	tcase_add_test(tc, bad_header_refused_before_payload);
	tcase_add_test(tc, send_to_stalled_peer_is_bounded);
	tcase_add_test(tc, connect_to_full_backlog_fails_at_once);
	tcase_add_test(tc, request_names);
	tcase_add_test(tc, random_streams);
	suite_add_tcase(s, tc);
	/* qemu-user (make check's aarch64 run on x86) keeps the descriptors
	 * the kernel would drop from a truncated SCM_RIGHTS message, so this
	 * case is tagged for that run to leave out. */
	trunc = tcase_create("codec_ctrunc");
	tcase_set_tags(trunc, "no-qemu-user");
	tcase_add_checked_fixture(trunc, setup, teardown);
	tcase_set_timeout(trunc, 60);
	tcase_add_test(trunc, too_many_fds_truncated);
	suite_add_tcase(s, trunc);
	return check_run(s);
}

/*
 * vu_blk_load: a minimal vhost-user-blk front-end that loads a back-end.
 * One memfd region is the "guest memory", one split ring per queue, N
 * requests kept in flight on each; completions are polled from the used
 * ring (avail NO_INTERRUPT set, so the back-end never has to signal) by one
 * thread per queue. Prints IOPS and MiB/s (all queues together).
 *
 *   vu_blk_load --socket PATH [--mode randread|randwrite|seqread|seqwrite]
 *               [--bs BYTES] [--qd N] [--queues N] [--seconds S] [--no-flush]
 *
 * VIRTIO_BLK_F_FLUSH is negotiated when the back-end offers it (a
 * writeback cache, as Linux's driver does); --no-flush leaves it out, so a
 * back-end that follows virtio 1.2 5.2.6.2 must make every write durable
 * before completing it (write-through).
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "devices/blk/virtio_blk_dev.h"
#include "cvmm/virtq.h"
#include "cvmm/vu_msg.h"
#include "cvmm/vu_proto.h"

#define LOAD_TIMEOUT_MS 5000
#define LOAD_MAX_QUEUES 16

struct load;

/* One queue: its ring, its requests, the thread that drives it. */
struct load_queue {
	struct load *l;
	unsigned index;
	int kick_fd, call_fd;
	uint64_t next_seq;       /* next sequential offset */
	uint64_t rng;
	struct virtq_desc *desc;
	struct virtq_avail *avail;
	struct virtq_used *used;
	uint64_t hdr_off, status_off, data_off;
	uint16_t avail_idx, used_idx;
	uint64_t done, errors;
	pthread_t thread;
};

struct load {
	int sock;
	int mem_fd;
	uint8_t *mem;
	size_t mem_size, queue_bytes;
	uint16_t qsize;
	unsigned qd, nqueues;
	uint32_t bs;
	bool write, random;
	bool no_flush;           /* leave VIRTIO_BLK_F_FLUSH out: write-through */
	uint64_t capacity;       /* bytes */
	double seconds;
	struct load_queue q[LOAD_MAX_QUEUES];
};

static int load_fail(const char *what, int err)
{
	fprintf(stderr, "vu_blk_load: %s: %s\n", what, strerror(err < 0 ? -err : err));
	return 1;
}

static int load_call(struct load *l, uint32_t req, const void *payload, uint32_t size,
		     const int *fds, unsigned nfds, struct vu_msg *reply)
{
	int err = vu_msg_send(l->sock, req, VU_VERSION, payload, size, fds, nfds);

	if (err < 0 || !reply)
		return err;
	return vu_msg_recv_reply(l->sock, req, reply, LOAD_TIMEOUT_MS);
}

static int load_u64(struct load *l, uint32_t req, uint64_t v)
{
	return load_call(l, req, &v, sizeof(v), NULL, 0, NULL);
}

static int load_state(struct load *l, uint32_t req, uint32_t index, uint32_t num)
{
	struct vu_vring_state s = { .index = index, .num = num };

	return load_call(l, req, &s, sizeof(s), NULL, 0, NULL);
}

static uint64_t load_rand(struct load_queue *q)
{
	q->rng ^= q->rng << 13;
	q->rng ^= q->rng >> 7;
	q->rng ^= q->rng << 17;
	return q->rng;
}

static int load_connect(struct load *l, const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	l->sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l->sock < 0)
		return -errno;
	return connect(l->sock, (struct sockaddr *)&sa, sizeof(sa)) < 0 ? -errno : 0;
}

/* Negotiation and ring setup, in the order QEMU uses. */
static int load_setup(struct load *l)
{
	struct vu_msg *m = malloc(sizeof(*m));
	uint64_t features, pf, want_pf;
	struct vu_config cfg = { .offset = 0, .size = 8 };
	struct vu_mem_table mt = { .nregions = 1 };
	int err;

	if (!m)
		return -ENOMEM;
	err = load_call(l, VHOST_USER_GET_FEATURES, NULL, 0, NULL, 0, m);
	if (err)
		goto out;
	features = m->payload.u64;
	err = -EPROTO;
	if (!(features & VU_BIT(VHOST_USER_F_PROTOCOL_FEATURES)) || !(features & VU_BIT(VIRTIO_F_VERSION_1)))
		goto out;
	if ((err = load_call(l, VHOST_USER_SET_OWNER, NULL, 0, NULL, 0, NULL)) ||
	    (err = load_call(l, VHOST_USER_GET_PROTOCOL_FEATURES, NULL, 0, NULL, 0, m)))
		goto out;
	pf = m->payload.u64;
	want_pf = VU_BIT(VHOST_USER_PROTOCOL_F_CONFIG) |
		  (l->nqueues > 1 ? VU_BIT(VHOST_USER_PROTOCOL_F_MQ) : 0);
	err = -EPROTO;
	if ((pf & want_pf) != want_pf)
		goto out;
	if ((err = load_u64(l, VHOST_USER_SET_PROTOCOL_FEATURES, want_pf)) ||
	    (err = load_call(l, VHOST_USER_GET_CONFIG, &cfg, VU_CONFIG_HDR_SIZE + cfg.size, NULL, 0, m)))
		goto out;
	memcpy(&l->capacity, m->payload.config.region, 8);
	l->capacity *= VIRTIO_BLK_SECTOR_SIZE;
	err = -ENOSPC;
	if (l->capacity < (uint64_t)l->bs * l->qd * l->nqueues)
		goto out;
	err = -EPROTO;
	if (l->nqueues > 1 && !(features & VU_BIT(VIRTIO_BLK_F_MQ)))
		goto out;
	err = load_u64(l, VHOST_USER_SET_FEATURES,
		       VU_BIT(VIRTIO_F_VERSION_1) | VU_BIT(VHOST_USER_F_PROTOCOL_FEATURES) |
		       (l->no_flush ? 0 : features & VU_BIT(VIRTIO_BLK_F_FLUSH)) |
		       (l->nqueues > 1 ? VU_BIT(VIRTIO_BLK_F_MQ) : 0));
	if (err)
		goto out;

	mt.regions[0] = (struct vu_mem_region){ .guest_phys_addr = 0, .memory_size = l->mem_size,
						.userspace_addr = (uint64_t)(uintptr_t)l->mem, .mmap_offset = 0 };
	err = load_call(l, VHOST_USER_SET_MEM_TABLE, &mt, 8 + sizeof(struct vu_mem_region), &l->mem_fd, 1, NULL);
	if (err)
		goto out;
	for (unsigned i = 0; i < l->nqueues; i++) {
		struct load_queue *q = &l->q[i];
		struct vu_vring_addr va = { .index = i };

		va.desc_user_addr = (uint64_t)(uintptr_t)q->desc;
		va.avail_user_addr = (uint64_t)(uintptr_t)q->avail;
		va.used_user_addr = (uint64_t)(uintptr_t)q->used;
		if ((err = load_state(l, VHOST_USER_SET_VRING_NUM, i, l->qsize)) ||
		    (err = load_state(l, VHOST_USER_SET_VRING_BASE, i, 0)) ||
		    (err = load_call(l, VHOST_USER_SET_VRING_ADDR, &va, sizeof(va), NULL, 0, NULL)) ||
		    (err = load_call(l, VHOST_USER_SET_VRING_CALL, &(uint64_t){ i }, 8, &q->call_fd, 1, NULL)) ||
		    (err = load_call(l, VHOST_USER_SET_VRING_KICK, &(uint64_t){ i }, 8, &q->kick_fd, 1, NULL)) ||
		    (err = load_state(l, VHOST_USER_SET_VRING_ENABLE, i, 1)))
			goto out;
	}
	/* A round trip so that every message above has been handled. */
	err = load_call(l, VHOST_USER_GET_FEATURES, NULL, 0, NULL, 0, m);
out:
	free(m);
	return err;
}

static void load_kick(struct load_queue *q)
{
	uint64_t one = 1;

	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (!(__atomic_load_n(&q->used->flags, __ATOMIC_RELAXED) & VIRTQ_USED_F_NO_NOTIFY) &&
	    write(q->kick_fd, &one, sizeof(one)) < 0)
		perror("vu_blk_load: kick");
}

/* (Re)fills slot i with a new request and puts it on the avail ring. */
static void load_queue(struct load_queue *q, unsigned i)
{
	struct load *l = q->l;
	struct virtio_blk_outhdr *h = (void *)(l->mem + q->hdr_off + i * sizeof(*h));
	uint64_t off;

	if (l->random) {
		off = load_rand(q) % (l->capacity / l->bs) * l->bs;
	} else {
		if (q->next_seq + l->bs > l->capacity)
			q->next_seq = 0;
		off = q->next_seq;
		q->next_seq += l->bs;
	}
	h->type = l->write ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN;
	h->ioprio = 0;
	h->sector = off / VIRTIO_BLK_SECTOR_SIZE;
	l->mem[q->status_off + i] = 0xff;
	q->avail->ring[q->avail_idx % l->qsize] = (uint16_t)(3 * i);
	q->avail_idx++;
}

/* Bytes one queue takes in guest memory: rings, headers, status, data. */
static size_t load_queue_bytes(const struct load *l)
{
	size_t off = 16 * (size_t)l->qsize;

	off = (off + 6 + 2 * (size_t)l->qsize + 4095) & ~(size_t)4095;
	off = (off + 6 + 8 * (size_t)l->qsize + 4095) & ~(size_t)4095;
	off += 16 * (size_t)l->qd;
	off = (off + l->qd + 4095) & ~(size_t)4095;
	return off + (size_t)l->bs * l->qd;
}

static void load_layout(struct load *l, struct load_queue *q, size_t base)
{
	size_t off = base;

	q->desc = (void *)(l->mem + off);
	off += 16 * (size_t)l->qsize;
	q->avail = (void *)(l->mem + off);
	off = (off + 6 + 2 * (size_t)l->qsize + 4095) & ~(size_t)4095;
	q->used = (void *)(l->mem + off);
	off = (off + 6 + 8 * (size_t)l->qsize + 4095) & ~(size_t)4095;
	q->hdr_off = off;
	off += 16 * (size_t)l->qd;
	q->status_off = off;
	off = (off + l->qd + 4095) & ~(size_t)4095;
	q->data_off = off;
	for (unsigned i = 0; i < l->qd; i++) {
		struct virtq_desc *d = &q->desc[3 * i];

		d[0] = (struct virtq_desc){ q->hdr_off + 16 * i, 16, VIRTQ_DESC_F_NEXT, (uint16_t)(3 * i + 1) };
		d[1] = (struct virtq_desc){ q->data_off + (uint64_t)l->bs * i, l->bs,
					    (uint16_t)(VIRTQ_DESC_F_NEXT | (l->write ? 0 : VIRTQ_DESC_F_WRITE)),
					    (uint16_t)(3 * i + 2) };
		d[2] = (struct virtq_desc){ q->status_off + i, 1, VIRTQ_DESC_F_WRITE, 0 };
	}
	/* Completions are polled: no interrupts needed. */
	q->avail->flags = VIRTQ_AVAIL_F_NO_INTERRUPT;
	memset(l->mem + q->data_off, 0x5a, (size_t)l->bs * l->qd);
}

static double load_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *load_run(void *arg)
{
	struct load_queue *q = arg;
	struct load *l = q->l;
	uint64_t next_check = 0;
	double end;
	bool more = true;

	for (unsigned i = 0; i < l->qd; i++)
		load_queue(q, i);
	__atomic_store_n(&q->avail->idx, q->avail_idx, __ATOMIC_RELEASE);
	load_kick(q);
	end = load_now() + l->seconds;
	for (;;) {
		uint16_t uidx = __atomic_load_n(&q->used->idx, __ATOMIC_ACQUIRE);
		if (more && q->done >= next_check) {
			more = load_now() < end;
			next_check = q->done + 256;
		}
		if (uidx == q->used_idx) {
			if (!more && q->avail_idx == q->used_idx)
				break;
			continue;
		}
		while (q->used_idx != uidx) {
			struct virtq_used_elem *e = &q->used->ring[q->used_idx % l->qsize];
			unsigned slot = e->id / 3;

			q->used_idx++;
			q->done++;
			if (l->mem[q->status_off + slot] != VIRTIO_BLK_S_OK)
				q->errors++;
			if (more)
				load_queue(q, slot);
		}
		__atomic_store_n(&q->avail->idx, q->avail_idx, __ATOMIC_RELEASE);
		load_kick(q);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 's' }, { "mode", required_argument, NULL, 'm' },
		{ "bs", required_argument, NULL, 'b' },     { "qd", required_argument, NULL, 'q' },
		{ "seconds", required_argument, NULL, 't' }, { "no-flush", no_argument, NULL, 'n' },
		{ "queues", required_argument, NULL, 'Q' }, { NULL, 0, NULL, 0 },
	};
	static struct load l = { .sock = -1, .bs = 4096, .qd = 32, .nqueues = 1, .random = true, .seconds = 5 };
	const char *sock = NULL, *mode = "randread";
	uint64_t done = 0, errors = 0;
	double t0, t1;
	int c, err;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 's': sock = optarg; break;
		case 'm': mode = optarg; break;
		case 'b': l.bs = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 'q': l.qd = (unsigned)strtoul(optarg, NULL, 0); break;
		case 't': l.seconds = strtod(optarg, NULL); break;
		case 'n': l.no_flush = true; break;
		case 'Q': l.nqueues = (unsigned)strtoul(optarg, NULL, 0); break;
		default: return 2;
		}
	}
	if (!sock || !l.bs || l.bs % VIRTIO_BLK_SECTOR_SIZE || !l.qd || l.qd > 256 || l.seconds <= 0 ||
	    !l.nqueues || l.nqueues > LOAD_MAX_QUEUES) {
		fprintf(stderr, "usage: vu_blk_load --socket PATH [--mode randread|randwrite|seqread|seqwrite]"
				" [--bs BYTES (multiple of 512)] [--qd 1..256] [--queues 1..%d] [--seconds S]"
				" [--no-flush]\n", LOAD_MAX_QUEUES);
		return 2;
	}
	if (!strcmp(mode, "randread") || !strcmp(mode, "randwrite")) {
		l.write = mode[4] == 'w';
	} else if (!strcmp(mode, "seqread") || !strcmp(mode, "seqwrite")) {
		l.write = mode[3] == 'w';
		l.random = false;
	} else {
		fprintf(stderr, "vu_blk_load: unknown mode %s\n", mode);
		return 2;
	}
	/* Three descriptors per request; a power of two with room to spare. */
	for (l.qsize = 8; l.qsize < 3 * l.qd; l.qsize = (uint16_t)(l.qsize * 2))
		;
	l.queue_bytes = load_queue_bytes(&l);
	l.mem_size = l.queue_bytes * l.nqueues;
	l.mem_size = (l.mem_size + (2u << 20) - 1) & ~(size_t)((2u << 20) - 1);
	l.mem_fd = memfd_create("vu_blk_load", MFD_CLOEXEC);
	if (l.mem_fd < 0 || ftruncate(l.mem_fd, (off_t)l.mem_size) < 0)
		return load_fail("memfd", errno);
	l.mem = mmap(NULL, l.mem_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, l.mem_fd, 0);
	if (l.mem == MAP_FAILED)
		return load_fail("mmap", errno);
	for (unsigned i = 0; i < l.nqueues; i++) {
		struct load_queue *q = &l.q[i];

		q->l = &l;
		q->index = i;
		q->rng = 0x9e3779b97f4a7c15ULL * (i + 1);
		q->kick_fd = eventfd(0, EFD_CLOEXEC);
		q->call_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (q->kick_fd < 0 || q->call_fd < 0)
			return load_fail("eventfd", errno);
		load_layout(&l, q, l.queue_bytes * i);
	}
	err = load_connect(&l, sock);
	if (err)
		return load_fail(sock, err);
	err = load_setup(&l);
	if (err)
		return load_fail("vhost-user setup", err);

	/* Sequential streams start apart (the capacity is known now). */
	for (unsigned i = 0; i < l.nqueues; i++)
		l.q[i].next_seq = l.capacity / l.nqueues * i / l.bs * l.bs;
	t0 = load_now();
	for (unsigned i = 0; i < l.nqueues; i++) {
		err = pthread_create(&l.q[i].thread, NULL, load_run, &l.q[i]);
		if (err)
			return load_fail("pthread_create", err);
	}
	for (unsigned i = 0; i < l.nqueues; i++) {
		pthread_join(l.q[i].thread, NULL);
		done += l.q[i].done;
		errors += l.q[i].errors;
	}
	t1 = load_now();
	printf("mode=%s%s bs=%u qd=%u queues=%u seconds=%.2f requests=%llu errors=%llu iops=%.0f mibps=%.1f\n",
	       mode, l.no_flush ? " flush=no" : "", l.bs, l.qd, l.nqueues, t1 - t0, (unsigned long long)done,
	       (unsigned long long)errors, (double)done / (t1 - t0), (double)done * l.bs / (t1 - t0) / (1 << 20));
	close(l.sock);
	return errors ? 1 : 0;
}

/*
 * vu_blk_load: a minimal vhost-user-blk front-end that loads a back-end.
 * One memfd region is the "guest memory", one split ring, N requests kept in
 * flight; completions are polled from the used ring (avail NO_INTERRUPT set,
 * so the back-end never has to signal). Prints IOPS and MiB/s.
 *
 *   vu_blk_load --socket PATH [--mode randread|randwrite|seqread|seqwrite]
 *               [--bs BYTES] [--qd N] [--seconds S] [--no-flush]
 *
 * VIRTIO_BLK_F_FLUSH is negotiated when the back-end offers it (a
 * writeback cache, as Linux's driver does); --no-flush leaves it out, so a
 * back-end that follows virtio 1.2 5.2.6.2 must make every write durable
 * before completing it (write-through).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cvmm/virtio_blk.h"
#include "cvmm/virtq.h"
#include "cvmm/vu_msg.h"
#include "cvmm/vu_proto.h"

#define LOAD_TIMEOUT_MS 5000

struct load {
	int sock;
	int kick_fd, call_fd, mem_fd;
	uint8_t *mem;
	size_t mem_size;
	uint16_t qsize;
	unsigned qd;
	uint32_t bs;
	bool write, random;
	bool no_flush;           /* leave VIRTIO_BLK_F_FLUSH out: write-through */
	uint64_t capacity;       /* bytes */
	uint64_t next_seq;       /* next sequential offset */
	uint64_t rng;
	struct virtq_desc *desc;
	struct virtq_avail *avail;
	struct virtq_used *used;
	uint64_t hdr_off, status_off, data_off;
	uint16_t avail_idx, used_idx;
	uint64_t errors;
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

static uint64_t load_rand(struct load *l)
{
	l->rng ^= l->rng << 13;
	l->rng ^= l->rng >> 7;
	l->rng ^= l->rng << 17;
	return l->rng;
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
	struct vu_vring_addr va = { 0 };
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
	want_pf = VU_BIT(VHOST_USER_PROTOCOL_F_CONFIG);
	err = -EPROTO;
	if ((pf & want_pf) != want_pf)
		goto out;
	if ((err = load_u64(l, VHOST_USER_SET_PROTOCOL_FEATURES, want_pf)) ||
	    (err = load_call(l, VHOST_USER_GET_CONFIG, &cfg, VU_CONFIG_HDR_SIZE + cfg.size, NULL, 0, m)))
		goto out;
	memcpy(&l->capacity, m->payload.config.region, 8);
	l->capacity *= VIRTIO_BLK_SECTOR_SIZE;
	err = -ENOSPC;
	if (l->capacity < (uint64_t)l->bs * l->qd)
		goto out;
	err = load_u64(l, VHOST_USER_SET_FEATURES,
		       VU_BIT(VIRTIO_F_VERSION_1) | VU_BIT(VHOST_USER_F_PROTOCOL_FEATURES) |
		       (l->no_flush ? 0 : features & VU_BIT(VIRTIO_BLK_F_FLUSH)));
	if (err)
		goto out;

	mt.regions[0] = (struct vu_mem_region){ .guest_phys_addr = 0, .memory_size = l->mem_size,
						.userspace_addr = (uint64_t)(uintptr_t)l->mem, .mmap_offset = 0 };
	err = load_call(l, VHOST_USER_SET_MEM_TABLE, &mt, 8 + sizeof(struct vu_mem_region), &l->mem_fd, 1, NULL);
	if (err)
		goto out;
	va.index = 0;
	va.desc_user_addr = (uint64_t)(uintptr_t)l->desc;
	va.avail_user_addr = (uint64_t)(uintptr_t)l->avail;
	va.used_user_addr = (uint64_t)(uintptr_t)l->used;
	if ((err = load_state(l, VHOST_USER_SET_VRING_NUM, 0, l->qsize)) ||
	    (err = load_state(l, VHOST_USER_SET_VRING_BASE, 0, 0)) ||
	    (err = load_call(l, VHOST_USER_SET_VRING_ADDR, &va, sizeof(va), NULL, 0, NULL)) ||
	    (err = load_call(l, VHOST_USER_SET_VRING_CALL, &(uint64_t){ 0 }, 8, &l->call_fd, 1, NULL)) ||
	    (err = load_call(l, VHOST_USER_SET_VRING_KICK, &(uint64_t){ 0 }, 8, &l->kick_fd, 1, NULL)) ||
	    (err = load_state(l, VHOST_USER_SET_VRING_ENABLE, 0, 1)))
		goto out;
	/* A round trip so that every message above has been handled. */
	err = load_call(l, VHOST_USER_GET_FEATURES, NULL, 0, NULL, 0, m);
out:
	free(m);
	return err;
}

static void load_kick(struct load *l)
{
	uint64_t one = 1;

	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (!(__atomic_load_n(&l->used->flags, __ATOMIC_RELAXED) & VIRTQ_USED_F_NO_NOTIFY) &&
	    write(l->kick_fd, &one, sizeof(one)) < 0)
		perror("vu_blk_load: kick");
}

/* (Re)fills slot i with a new request and puts it on the avail ring. */
static void load_queue(struct load *l, unsigned i)
{
	struct virtio_blk_outhdr *h = (void *)(l->mem + l->hdr_off + i * sizeof(*h));
	uint64_t off;

	if (l->random) {
		off = load_rand(l) % (l->capacity / l->bs) * l->bs;
	} else {
		if (l->next_seq + l->bs > l->capacity)
			l->next_seq = 0;
		off = l->next_seq;
		l->next_seq += l->bs;
	}
	h->type = l->write ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN;
	h->ioprio = 0;
	h->sector = off / VIRTIO_BLK_SECTOR_SIZE;
	l->mem[l->status_off + i] = 0xff;
	l->avail->ring[l->avail_idx % l->qsize] = (uint16_t)(3 * i);
	l->avail_idx++;
}

static void load_layout(struct load *l)
{
	size_t off = 0;

	l->desc = (void *)(l->mem + off);
	off += 16 * (size_t)l->qsize;
	l->avail = (void *)(l->mem + off);
	off = (off + 6 + 2 * (size_t)l->qsize + 4095) & ~(size_t)4095;
	l->used = (void *)(l->mem + off);
	off = (off + 6 + 8 * (size_t)l->qsize + 4095) & ~(size_t)4095;
	l->hdr_off = off;
	off += 16 * (size_t)l->qd;
	l->status_off = off;
	off = (off + l->qd + 4095) & ~(size_t)4095;
	l->data_off = off;
	for (unsigned i = 0; i < l->qd; i++) {
		struct virtq_desc *d = &l->desc[3 * i];

		d[0] = (struct virtq_desc){ l->hdr_off + 16 * i, 16, VIRTQ_DESC_F_NEXT, (uint16_t)(3 * i + 1) };
		d[1] = (struct virtq_desc){ l->data_off + (uint64_t)l->bs * i, l->bs,
					    (uint16_t)(VIRTQ_DESC_F_NEXT | (l->write ? 0 : VIRTQ_DESC_F_WRITE)),
					    (uint16_t)(3 * i + 2) };
		d[2] = (struct virtq_desc){ l->status_off + i, 1, VIRTQ_DESC_F_WRITE, 0 };
	}
	/* Completions are polled: no interrupts needed. */
	l->avail->flags = VIRTQ_AVAIL_F_NO_INTERRUPT;
}

static double load_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t load_run(struct load *l, double seconds)
{
	uint64_t done = 0, next_check = 0;
	double end;
	bool more = true;

	for (unsigned i = 0; i < l->qd; i++)
		load_queue(l, i);
	__atomic_store_n(&l->avail->idx, l->avail_idx, __ATOMIC_RELEASE);
	load_kick(l);
	end = load_now() + seconds;
	for (;;) {
		uint16_t uidx = __atomic_load_n(&l->used->idx, __ATOMIC_ACQUIRE);
		if (more && done >= next_check) {
			more = load_now() < end;
			next_check = done + 256;
		}
		if (uidx == l->used_idx) {
			if (!more && l->avail_idx == l->used_idx)
				break;
			continue;
		}
		while (l->used_idx != uidx) {
			struct virtq_used_elem *e = &l->used->ring[l->used_idx % l->qsize];
			unsigned slot = e->id / 3;

			l->used_idx++;
			done++;
			if (l->mem[l->status_off + slot] != VIRTIO_BLK_S_OK)
				l->errors++;
			if (more)
				load_queue(l, slot);
		}
		__atomic_store_n(&l->avail->idx, l->avail_idx, __ATOMIC_RELEASE);
		load_kick(l);
	}
	return done;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 's' }, { "mode", required_argument, NULL, 'm' },
		{ "bs", required_argument, NULL, 'b' },     { "qd", required_argument, NULL, 'q' },
		{ "seconds", required_argument, NULL, 't' }, { "no-flush", no_argument, NULL, 'n' },
		{ NULL, 0, NULL, 0 },
	};
	struct load l = { .sock = -1, .bs = 4096, .qd = 32, .random = true, .rng = 0x9e3779b97f4a7c15ULL };
	const char *sock = NULL, *mode = "randread";
	double secs = 5, t0, t1;
	uint64_t done;
	int c, err;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 's': sock = optarg; break;
		case 'm': mode = optarg; break;
		case 'b': l.bs = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 'q': l.qd = (unsigned)strtoul(optarg, NULL, 0); break;
		case 't': secs = strtod(optarg, NULL); break;
		case 'n': l.no_flush = true; break;
		default: return 2;
		}
	}
	if (!sock || !l.bs || l.bs % VIRTIO_BLK_SECTOR_SIZE || !l.qd || l.qd > 256 || secs <= 0) {
		fprintf(stderr, "usage: vu_blk_load --socket PATH [--mode randread|randwrite|seqread|seqwrite]"
				" [--bs BYTES (multiple of 512)] [--qd 1..256] [--seconds S] [--no-flush]\n");
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
	l.mem_size = (1u << 20) + (size_t)l.bs * l.qd;
	l.mem_size = (l.mem_size + (2u << 20) - 1) & ~(size_t)((2u << 20) - 1);
	l.mem_fd = memfd_create("vu_blk_load", MFD_CLOEXEC);
	if (l.mem_fd < 0 || ftruncate(l.mem_fd, (off_t)l.mem_size) < 0)
		return load_fail("memfd", errno);
	l.mem = mmap(NULL, l.mem_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, l.mem_fd, 0);
	if (l.mem == MAP_FAILED)
		return load_fail("mmap", errno);
	l.kick_fd = eventfd(0, EFD_CLOEXEC);
	l.call_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (l.kick_fd < 0 || l.call_fd < 0)
		return load_fail("eventfd", errno);
	load_layout(&l);
	memset(l.mem + l.data_off, 0x5a, (size_t)l.bs * l.qd);
	err = load_connect(&l, sock);
	if (err)
		return load_fail(sock, err);
	err = load_setup(&l);
	if (err)
		return load_fail("vhost-user setup", err);

	t0 = load_now();
	done = load_run(&l, secs);
	t1 = load_now();
	printf("mode=%s%s bs=%u qd=%u seconds=%.2f requests=%llu errors=%llu iops=%.0f mibps=%.1f\n",
	       mode, l.no_flush ? " flush=no" : "", l.bs, l.qd, t1 - t0, (unsigned long long)done, (unsigned long long)l.errors,
	       (double)done / (t1 - t0), (double)done * l.bs / (t1 - t0) / (1 << 20));
	close(l.sock);
	return l.errors ? 1 : 0;
}

/* virtio-blk from inside: write a pattern, read it back, flush, GET_ID.
 * The host checks the image afterwards: byte i of the VIO_BLK_BYTES written
 * at sector VIO_BLK_SECTOR is (seed + i * 31 + i / 512) & 0xff, with seed
 * from tg.seed= (default 0).
 * With tg.blkloop=N, N more blocks follow: block k (0 <= k < N) at sector
 * VIO_BLK_LOOP_SECTOR + 8 k holds bytes (seed + 7 k + 31 i) & 0xff, each
 * read back before the next is written. Each request may wait
 * VIO_BLK_LOOP_WAITS times the usual poll limit, so a back-end restarted
 * under the guest has time to come back. The capacity is read again at the
 * end and printed (a test may resize the disk meanwhile). */
#include "vio.h"

#define VIO_BLK_F_FLUSH 9
#define VIO_BLK_T_IN 0
#define VIO_BLK_T_OUT 1
#define VIO_BLK_T_FLUSH 4
#define VIO_BLK_T_GET_ID 8
#define VIO_BLK_SECTOR 8
#define VIO_BLK_BYTES 4096
#define VIO_BLK_LOOP_SECTOR 64
#define VIO_BLK_LOOP_WAITS 20
/* tg.blkgrow waits by the clock (the ACPI PM timer cvmm provides, 3.579545
 * MHz): a resize from the host comes when the host gets to it. */
#define VIO_BLK_PM_TMR 0x608
#define VIO_BLK_GROW_TICKS (10u * 3579545u)
#define VIO_BLK_GROW_POLL_TICKS 3580u   /* a config read about every ms */

struct vio_blk_hdr {
	uint32_t type;
	uint32_t reserved;
	uint64_t sector;
};

static struct vio_blk_hdr vio_blk_hdr;
static uint8_t vio_blk_out[VIO_BLK_BYTES] __attribute__((aligned(4096)));
static uint8_t vio_blk_in[VIO_BLK_BYTES] __attribute__((aligned(4096)));
static uint8_t vio_blk_status;
static char vio_blk_id[21];

/* Sends one request: header, an optional data buffer, the status byte.
 * Returns the status, or -1 when the device did not answer. */
static int vio_blk_do(struct vio_dev *d, struct vio_queue *q, uint32_t type, void *data,
		      uint32_t len, bool device_writes)
{
	struct vio_buf bufs[3];
	unsigned n = 0;

	vio_blk_hdr = (struct vio_blk_hdr){ .type = type, .sector = VIO_BLK_SECTOR };
	vio_blk_status = 0xff;
	bufs[n++] = (struct vio_buf){ &vio_blk_hdr, sizeof(vio_blk_hdr), false };
	if (len)
		bufs[n++] = (struct vio_buf){ data, len, device_writes };
	bufs[n++] = (struct vio_buf){ &vio_blk_status, 1, true };
	if (vio_request(d, q, bufs, n) < 0)
		return -1;
	return vio_blk_status;
}

/* One request of the load loop, at sector, with the long wait. */
static int vio_blk_loop_do(struct vio_dev *d, struct vio_queue *q, uint32_t type, uint64_t sector, void *data,
			   bool device_writes)
{
	struct vio_buf bufs[3];
	uint16_t head, id = 0;
	int64_t len = -1;

	vio_blk_hdr = (struct vio_blk_hdr){ .type = type, .sector = sector };
	vio_blk_status = 0xff;
	bufs[0] = (struct vio_buf){ &vio_blk_hdr, sizeof(vio_blk_hdr), false };
	bufs[1] = (struct vio_buf){ data, VIO_BLK_BYTES, device_writes };
	bufs[2] = (struct vio_buf){ &vio_blk_status, 1, true };
	head = vio_offer(q, bufs, 3);
	vio_kick(d, q);
	for (unsigned i = 0; i < VIO_BLK_LOOP_WAITS && len < 0; i++)
		len = vio_wait(q, &id);
	if (len < 0 || id != head)
		return -1;
	return vio_blk_status;
}

/* first: the capacity the check began with. */
static int vio_blk_loop(struct tg *t, struct vio_dev *d, struct vio_queue *q, uint64_t first)
{
	uint64_t capacity;
	uint32_t start, poll;

	for (unsigned k = 0; k < t->blk_loops; k++) {
		uint64_t sector = VIO_BLK_LOOP_SECTOR + 8 * (uint64_t)k;
		int st;

		for (unsigned i = 0; i < VIO_BLK_BYTES; i++)
			vio_blk_out[i] = (uint8_t)(t->seed + 7 * k + 31 * i);
		st = vio_blk_loop_do(d, q, VIO_BLK_T_OUT, sector, vio_blk_out, false);
		if (st == 0)
			st = vio_blk_loop_do(d, q, VIO_BLK_T_IN, sector, vio_blk_in, true);
		if (st != 0 || memcmp(vio_blk_in, vio_blk_out, VIO_BLK_BYTES)) {
			tg_printf("TG: FAIL virtio-blk %s: loop block %u: status %d%s\n", vio_kind_name(d), k, st,
				  st ? "" : ", read back differs");
			return -1;
		}
	}
	/* Read again: a disk resized meanwhile shows its new size here. */
	vio_config_read(d, 0, &capacity, sizeof(capacity));
	start = poll = tg_inl(VIO_BLK_PM_TMR);
	while (t->blk_grow && capacity <= first && tg_inl(VIO_BLK_PM_TMR) - start < VIO_BLK_GROW_TICKS) {
		if (tg_inl(VIO_BLK_PM_TMR) - poll >= VIO_BLK_GROW_POLL_TICKS) {
			vio_config_read(d, 0, &capacity, sizeof(capacity));
			poll = tg_inl(VIO_BLK_PM_TMR);
		}
		tg_pause();
	}
	tg_printf("TG: virtio-blk %s loop %u blocks ok capacity=%lu\n", vio_kind_name(d), t->blk_loops, capacity);
	return 0;
}

int vio_check_blk(struct tg *t, struct vio_dev *d)
{
	struct vio_queue q;
	uint64_t capacity;
	int st;

	if (vio_init(d, 1ULL << VIO_BLK_F_FLUSH) || vio_queue_init(d, &q, 0)) {
		tg_printf("TG: FAIL virtio-blk %s: setup refused (status 0x%x)\n", vio_kind_name(d), vio_status(d));
		return -1;
	}
	vio_driver_ok(d);
	vio_config_read(d, 0, &capacity, sizeof(capacity));
	if (capacity < VIO_BLK_SECTOR + VIO_BLK_BYTES / 512) {
		tg_printf("TG: FAIL virtio-blk %s: capacity %lu sectors is too small\n", vio_kind_name(d), capacity);
		return -1;
	}
	for (unsigned i = 0; i < VIO_BLK_BYTES; i++)
		vio_blk_out[i] = (uint8_t)(t->seed + i * 31 + i / 512);
	st = vio_blk_do(d, &q, VIO_BLK_T_OUT, vio_blk_out, VIO_BLK_BYTES, false);
	if (st != 0) {
		tg_printf("TG: FAIL virtio-blk %s: write status %d\n", vio_kind_name(d), st);
		return -1;
	}
	memset(vio_blk_in, 0, sizeof(vio_blk_in));
	st = vio_blk_do(d, &q, VIO_BLK_T_IN, vio_blk_in, VIO_BLK_BYTES, true);
	if (st != 0 || memcmp(vio_blk_in, vio_blk_out, VIO_BLK_BYTES)) {
		tg_printf("TG: FAIL virtio-blk %s: read back status %d, data %s\n", vio_kind_name(d), st,
			  st ? "-" : "differs");
		return -1;
	}
	if ((d->features & (1ULL << VIO_BLK_F_FLUSH)) && (st = vio_blk_do(d, &q, VIO_BLK_T_FLUSH, NULL, 0, false))) {
		tg_printf("TG: FAIL virtio-blk %s: flush status %d\n", vio_kind_name(d), st);
		return -1;
	}
	memset(vio_blk_id, 0, sizeof(vio_blk_id));
	st = vio_blk_do(d, &q, VIO_BLK_T_GET_ID, vio_blk_id, 20, true);
	if (st != 0) {
		tg_printf("TG: FAIL virtio-blk %s: GET_ID status %d\n", vio_kind_name(d), st);
		return -1;
	}
	tg_printf("TG: virtio-blk %s capacity=%lu wrote+read %u bytes at sector %u flush=%s id=%s ok\n",
		  vio_kind_name(d), capacity, VIO_BLK_BYTES, VIO_BLK_SECTOR,
		  d->features & (1ULL << VIO_BLK_F_FLUSH) ? "yes" : "no", vio_blk_id);
	if (t->blk_loops && capacity < VIO_BLK_LOOP_SECTOR + 8 * (uint64_t)t->blk_loops) {
		tg_printf("TG: FAIL virtio-blk %s: capacity %lu sectors is too small for the loop\n",
			  vio_kind_name(d), capacity);
		return -1;
	}
	return t->blk_loops ? vio_blk_loop(t, d, &q, capacity) : 0;
}

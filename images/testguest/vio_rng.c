/* virtio-rng from inside: ask for 64 bytes twice; they must arrive and
 * must not be constant or repeat. */
#include "vio.h"

#define VIO_RNG_BYTES 64

static uint8_t vio_rng_a[VIO_RNG_BYTES], vio_rng_b[VIO_RNG_BYTES];

int vio_check_rng(struct tg *t, struct vio_dev *d)
{
	struct vio_buf a = { vio_rng_a, VIO_RNG_BYTES, true }, b = { vio_rng_b, VIO_RNG_BYTES, true };
	struct vio_queue q;
	unsigned distinct = 0;
	int64_t la, lb;

	(void)t;
	if (vio_init(d, 0) || vio_queue_init(d, &q, 0)) {
		tg_printf("TG: FAIL virtio-rng %s: setup refused (status 0x%x)\n", vio_kind_name(d), vio_status(d));
		return -1;
	}
	vio_driver_ok(d);
	la = vio_request(d, &q, &a, 1);
	lb = vio_request(d, &q, &b, 1);
	for (unsigned i = 1; i < VIO_RNG_BYTES; i++)
		distinct += vio_rng_a[i] != vio_rng_a[0];
	if (la != VIO_RNG_BYTES || lb != VIO_RNG_BYTES || distinct < VIO_RNG_BYTES / 2 ||
	    !memcmp(vio_rng_a, vio_rng_b, VIO_RNG_BYTES)) {
		tg_printf("TG: FAIL virtio-rng %s: got %ld and %ld bytes, %u differ from the first\n",
			  vio_kind_name(d), la, lb, distinct);
		return -1;
	}
	tg_printf("TG: virtio-rng %s %u+%u bytes ok\n", vio_kind_name(d), VIO_RNG_BYTES, VIO_RNG_BYTES);
	return 0;
}

/* Reads the test's expectations from the kernel command line:
 * tg.cpus=N (CPUs the MADT lists and that start), tg.mem=SIZE (RAM size),
 * tg.halt (halt instead of resetting at the end, so a benchmark can look at
 * the running VMM), tg.poweroff (end with ACPI S5 instead of resetting),
 * tg.virtio=N (virtio devices that must be found and work), tg.seed=N
 * (0-255, varies what the virtio-blk check writes), tg.blkloop=N (1-400:
 * the virtio-blk check then writes and reads back N more 4 KiB blocks, one
 * after the other, so a test can disturb a disk under load), tg.blkgrow
 * (after those blocks the check waits, 10 s at most, for the disk to grow:
 * a test resizes it meanwhile), tg.vsockrestart
 * (the virtio-vsock check then lives through a vhost-user back-end that
 * the host test kills and starts again).
 * An unknown tg.* word fails, so a typo in a test cannot pass silently. */
#include "tg.h"

static bool tg_word_is(const char *w, size_t len, const char *key, const char **val, size_t *vlen)
{
	size_t k = tg_strlen(key);

	if (len <= k || memcmp(w, key, k))
		return false;
	*val = w + k;
	*vlen = len - k;
	return true;
}

int tg_check_cmdline(struct tg *t)
{
	const char *p = t->cmdline;
	int bad = 0;

	tg_printf("TG: cmdline \"%s\"\n", t->cmdline);
	while (*p) {
		const char *w, *v;
		size_t len, vlen;
		uint64_t n;

		w = tg_next_word(&p, &len);
		if (len < 3 || memcmp(w, "tg.", 3))
			continue;
		if (len == 7 && !memcmp(w, "tg.halt", 7)) {
			t->halt = true;
		} else if (len == 11 && !memcmp(w, "tg.poweroff", 11)) {
			t->poweroff = true;
		} else if (len == 15 && !memcmp(w, "tg.vsockrestart", 15)) {
			t->vsock_restart = true;
		} else if (len == 10 && !memcmp(w, "tg.blkgrow", 10)) {
			t->blk_grow = true;
		} else if (tg_word_is(w, len, "tg.cpus=", &v, &vlen)) {
			if (!tg_parse_size(v, vlen, &n) || n == 0 || n > TG_MAX_CPUS)
				bad = 1;
			else
				t->want_cpus = (unsigned)n;
		} else if (tg_word_is(w, len, "tg.virtio=", &v, &vlen)) {
			if (!tg_parse_size(v, vlen, &n) || n > 64)
				bad = 1;
			else
				t->want_virtio = (unsigned)n;
		} else if (tg_word_is(w, len, "tg.seed=", &v, &vlen)) {
			if (!tg_parse_size(v, vlen, &n) || n > 255)
				bad = 1;
			else
				t->seed = (uint8_t)n;
		} else if (tg_word_is(w, len, "tg.blkloop=", &v, &vlen)) {
			if (!tg_parse_size(v, vlen, &n) || n == 0 || n > 400)
				bad = 1;
			else
				t->blk_loops = (unsigned)n;
		} else if (tg_word_is(w, len, "tg.mem=", &v, &vlen)) {
			if (!tg_parse_size(v, vlen, &n) || n == 0)
				bad = 1;
			else
				t->want_mem = n;
		} else {
			bad = 1;
		}
		if (bad) {
			tg_printf("TG: FAIL cmdline: bad word at offset %u\n", (unsigned)(w - t->cmdline));
			return -1;
		}
	}
	tg_printf("TG: cmdline want_cpus=%u want_mem=%luK%s%s ok\n", t->want_cpus, t->want_mem >> 10,
		  t->halt ? " halt" : "", t->poweroff ? " poweroff" : "");
	return 0;
}

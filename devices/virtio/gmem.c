#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cvmm/gmem.h"
#include "cvmm/memguard.h"

void gmem_init(struct gmem *m)
{
	memset(m, 0, sizeof(*m));
}

static void gmem_region_release(struct gmem_region *r)
{
	if (r->guarded)
		memguard_remove(r->map_base);
	if (r->map_base)
		munmap(r->map_base, r->map_size);
	if (r->fd >= 0)
		close(r->fd);
}

void gmem_destroy(struct gmem *m)
{
	for (unsigned i = 0; i < m->nregions; i++)
		gmem_region_release(&m->regions[i]);
	m->nregions = 0;
}

/* True when [a, a+alen) and [b, b+blen) intersect; lengths are non-zero and
 * neither range wraps (checked by the caller). */
static bool gmem_ranges_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

int gmem_add(struct gmem *m, const struct gmem_region *r)
{
	uint64_t end;

	if (r->size == 0 || __builtin_add_overflow(r->gpa, r->size, &end) ||
	    __builtin_add_overflow(r->uaddr, r->size, &end) || !r->hva)
		return -EINVAL;
	for (unsigned i = 0; i < m->nregions; i++) {
		const struct gmem_region *o = &m->regions[i];

		if (gmem_ranges_overlap(r->gpa, r->size, o->gpa, o->size))
			return -EINVAL;
		if (r->uaddr && o->uaddr && gmem_ranges_overlap(r->uaddr, r->size, o->uaddr, o->size))
			return -EINVAL;
	}
	if (m->nregions == GMEM_MAX_REGIONS)
		return -ENOSPC;
	m->regions[m->nregions] = *r;
	m->regions[m->nregions++].users = 1;
	return 0;
}

struct gmem_region *gmem_find(struct gmem *m, uint64_t gpa, uint64_t size, uint64_t uaddr)
{
	for (unsigned i = 0; i < m->nregions; i++) {
		struct gmem_region *r = &m->regions[i];

		if (r->gpa == gpa && r->size == size && r->uaddr == uaddr)
			return r;
	}
	return NULL;
}

int gmem_remove(struct gmem *m, uint64_t gpa, uint64_t size, uint64_t uaddr)
{
	struct gmem_region *r = gmem_find(m, gpa, size, uaddr);

	if (!r)
		return -ENOENT;
	gmem_region_release(r);
	*r = m->regions[--m->nregions];
	return 0;
}

void *gmem_translate(const struct gmem *m, uint64_t gpa, uint64_t len, uint64_t *contig)
{
	if (len == 0)
		return NULL;
	for (unsigned i = 0; i < m->nregions; i++) {
		const struct gmem_region *r = &m->regions[i];
		uint64_t off = gpa - r->gpa;

		if (gpa < r->gpa || off >= r->size)
			continue;
		*contig = r->size - off < len ? r->size - off : len;
		return r->hva + off;
	}
	return NULL;
}

void *gmem_ptr(const struct gmem *m, uint64_t gpa, uint64_t len)
{
	uint64_t contig;
	void *p = gmem_translate(m, gpa, len, &contig);

	return p && contig == len ? p : NULL;
}

static const struct gmem_region *gmem_find_uaddr(const struct gmem *m, uint64_t uaddr, uint64_t len)
{
	for (unsigned i = 0; i < m->nregions; i++) {
		const struct gmem_region *r = &m->regions[i];
		uint64_t off = uaddr - r->uaddr;

		if (len && r->uaddr && uaddr >= r->uaddr && off < r->size && len <= r->size - off)
			return r;
	}
	return NULL;
}

void *gmem_uaddr_ptr(const struct gmem *m, uint64_t uaddr, uint64_t len)
{
	const struct gmem_region *r = gmem_find_uaddr(m, uaddr, len);

	return r ? r->hva + (uaddr - r->uaddr) : NULL;
}

bool gmem_uaddr_to_gpa(const struct gmem *m, uint64_t uaddr, uint64_t len, uint64_t *gpa)
{
	const struct gmem_region *r = gmem_find_uaddr(m, uaddr, len);

	if (!r)
		return false;
	*gpa = r->gpa + (uaddr - r->uaddr);
	return true;
}

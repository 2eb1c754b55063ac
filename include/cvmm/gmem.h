/*
 * Guest memory: a table of mapped regions and guest-address translation.
 * Filled by the VMM (its memfd RAM) or by the vhost-user back-end (the
 * front-end's SET_MEM_TABLE / ADD_MEM_REG). Every guest-controlled address
 * goes through gmem_translate/gmem_ptr before it is touched.
 */
#ifndef CVMM_GMEM_H
#define CVMM_GMEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GMEM_MAX_REGIONS 32

struct gmem_region {
	uint64_t gpa;      /* guest physical start */
	uint64_t size;     /* bytes, > 0 */
	uint64_t uaddr;    /* front-end's address of gpa (vhost-user ring addresses use it); 0 in-process */
	uint8_t *hva;      /* where this process sees gpa */
	void *map_base;    /* mapping to munmap on removal, or NULL when not owned */
	size_t map_size;
	int fd;            /* fd to close on removal, or -1 when not owned */
	bool guarded;      /* map_base is registered with memguard (a front-end's file) */
	unsigned users;    /* vhost-user: how many ADD_MEM_REG named it (QEMU sends
			    * the same region once per vhost device sharing a
			    * connection); gmem_add makes it 1 */
};

struct gmem {
	struct gmem_region regions[GMEM_MAX_REGIONS];
	unsigned nregions;
};

void gmem_init(struct gmem *m);
/* Unmaps and closes what the table owns. */
void gmem_destroy(struct gmem *m);

/* Adds a region (copied). -EINVAL on a zero size, an address range that
 * wraps, or overlap with an existing region in gpa or uaddr space; -ENOSPC
 * when full. On error the caller still owns r's mapping and fd. */
int gmem_add(struct gmem *m, const struct gmem_region *r);
/* Removes the region that matches gpa, size and uaddr exactly, releasing
 * what it owns. -ENOENT when none does. */
int gmem_remove(struct gmem *m, uint64_t gpa, uint64_t size, uint64_t uaddr);
/* The region matching gpa, size and uaddr exactly, or NULL. */
struct gmem_region *gmem_find(struct gmem *m, uint64_t gpa, uint64_t size, uint64_t uaddr);

/* Host pointer for guest address gpa, with *contig set to how many of the
 * len bytes are contiguous there (cut at the region's end: the caller loops
 * for the rest). NULL when gpa is not in guest memory or len is 0. */
void *gmem_translate(const struct gmem *m, uint64_t gpa, uint64_t len, uint64_t *contig);
/* Host pointer for [gpa, gpa+len) only if it lies wholly inside one region. */
void *gmem_ptr(const struct gmem *m, uint64_t gpa, uint64_t len);
/* Same, for an address in the front-end's address space (vhost-user). */
void *gmem_uaddr_ptr(const struct gmem *m, uint64_t uaddr, uint64_t len);
/* Guest address of a front-end address, for rings given by uaddr. */
bool gmem_uaddr_to_gpa(const struct gmem *m, uint64_t uaddr, uint64_t len, uint64_t *gpa);

#endif

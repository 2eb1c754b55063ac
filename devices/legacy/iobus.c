#include <errno.h>
#include <string.h>

#include "cvmm/iobus.h"

void iobus_init(struct iobus *bus, const char *name)
{
	memset(bus, 0, sizeof(*bus));
	pthread_rwlock_init(&bus->lock, NULL);
	bus->name = name;
}

void iobus_destroy(struct iobus *bus)
{
	pthread_rwlock_destroy(&bus->lock);
	bus->n = 0;
}

int iobus_register(struct iobus *bus, uint64_t base, uint64_t len, iobus_fn fn, void *opaque)
{
	uint64_t end;
	int ret = 0;

	if (!len || !fn || __builtin_add_overflow(base, len - 1, &end))
		return -EINVAL;
	pthread_rwlock_wrlock(&bus->lock);
	for (unsigned i = 0; i < bus->n && !ret; i++) {
		const struct iobus_range *r = &bus->ranges[i];

		if (base <= r->base + (r->len - 1) && r->base <= end)
			ret = -EEXIST;
	}
	if (!ret && bus->n == IOBUS_MAX_RANGES)
		ret = -ENOSPC;
	if (!ret)
		bus->ranges[bus->n++] = (struct iobus_range){ base, len, fn, opaque };
	pthread_rwlock_unlock(&bus->lock);
	return ret;
}

int iobus_unregister(struct iobus *bus, uint64_t base)
{
	int ret = -ENOENT;

	pthread_rwlock_wrlock(&bus->lock);
	for (unsigned i = 0; i < bus->n; i++) {
		if (bus->ranges[i].base != base)
			continue;
		bus->ranges[i] = bus->ranges[--bus->n];
		ret = 0;
		break;
	}
	pthread_rwlock_unlock(&bus->lock);
	return ret;
}

bool iobus_dispatch(struct iobus *bus, uint64_t addr, uint8_t *data, unsigned len, bool is_write)
{
	struct iobus_range hit = { 0 };
	bool found = false;

	pthread_rwlock_rdlock(&bus->lock);
	for (unsigned i = 0; i < bus->n; i++) {
		const struct iobus_range *r = &bus->ranges[i];

		if (addr >= r->base && addr - r->base < r->len && len <= r->len - (addr - r->base)) {
			hit = *r;
			found = true;
			break;
		}
	}
	pthread_rwlock_unlock(&bus->lock);
	if (found)
		hit.fn(hit.opaque, addr - hit.base, data, len, is_write);
	else if (!is_write)
		memset(data, 0xff, len);
	return found;
}

/*
 * The device type table and what every type shares: the keys of a role
 * (id=, socket=, client=) added to the device's own, parsing, default ids.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cvmm/devtype.h"
#include "cvmm/log.h"

extern const struct devtype blk_devtype, net_devtype, rng_devtype, vsock_devtype, fs_devtype;

/* A new device type: its folder under devices/ and one row here. */
const struct devtype *const devtype_table[] = {
	&blk_devtype,
	&net_devtype,
	&rng_devtype,
	&vsock_devtype,
	&fs_devtype,
	NULL,
};

const struct devtype *devtype_by_vm_option(const char *option)
{
	for (unsigned i = 0; devtype_table[i]; i++)
		if (devtype_table[i]->vm_option && !strcmp(devtype_table[i]->vm_option, option))
			return devtype_table[i];
	return NULL;
}

const struct devtype *devtype_by_backend_option(const char *option)
{
	for (unsigned i = 0; devtype_table[i]; i++)
		if (devtype_table[i]->backend_option && !strcmp(devtype_table[i]->backend_option, option))
			return devtype_table[i];
	return NULL;
}

/* The keys of a role, parsed into this struct after the device's options. */
struct devtype_common {
	char *id;
	char *socket;
	bool client;
	bool vhost_user;
	char *vhost_mode;
};

#define DEVTYPE_MAX_KEYS 64

static bool devtype_spec_has(const struct opt_spec *spec, const char *key)
{
	for (; spec->key; spec++)
		if (!strcmp(spec->key, key))
			return true;
	return false;
}

/* The device's spec followed by the role's keys, offsets into a buffer that
 * holds the device's options then a struct devtype_common at common_off.
 * A key the device defines itself is its own (vsock's socket= in a VM is
 * the hybrid-vsock socket), so the role's key of that name is left out. */
static void devtype_spec(const struct devtype *t, enum devtype_role role, size_t common_off,
			 struct opt_spec *out)
{
	const struct opt_spec *own = role == DEVTYPE_IN_VM && t->vm_spec ? t->vm_spec : t->spec;
	static const struct opt_spec vm_keys[] = {
		OPT_SPEC("id", OPT_STRING, struct devtype_common, id),
		OPT_SPEC("vhost_user", OPT_BOOL, struct devtype_common, vhost_user),
		OPT_SPEC("socket", OPT_STRING, struct devtype_common, socket),
		OPT_SPEC("vhost_mode", OPT_STRING, struct devtype_common, vhost_mode),
		OPT_SPEC_END,
	};
	static const struct opt_spec backend_keys[] = {
		OPT_SPEC("socket", OPT_STRING, struct devtype_common, socket),
		OPT_SPEC_END,
	};
	static const struct opt_spec client_key = OPT_SPEC("client", OPT_BOOL, struct devtype_common, client);
	const struct opt_spec *role_keys = role == DEVTYPE_IN_VM ? vm_keys : backend_keys;
	unsigned n = 0;

	for (; own[n].key; n++)
		out[n] = own[n];
	for (const struct opt_spec *k = role_keys; k->key; k++) {
		if (devtype_spec_has(own, k->key))
			continue;
		out[n] = *k;
		out[n++].offset += common_off;
	}
	if (role == DEVTYPE_BACKEND && t->backend_client) {
		out[n] = client_key;
		out[n++].offset += common_off;
	}
	out[n] = (struct opt_spec)OPT_SPEC_END;
}

/* Takes the common keys into d; the id (default name<index>) at most 31 bytes. */
static int devtype_take_common(struct devtype_dev *d, const struct devtype_common *c,
			       enum devtype_role role, unsigned index, const char *who)
{
	if (role == DEVTYPE_BACKEND) {
		if (!c->socket) {
			log_err("%s: socket=PATH is required", who);
			return -EINVAL;
		}
		d->socket = strdup(c->socket);
		d->client = c->client;
		return d->socket ? 0 : -ENOMEM;
	}
	if (!c->vhost_user && (c->socket || c->vhost_mode)) {
		log_err("%s: %s= needs vhost_user=on", who, c->socket ? "socket" : "vhost_mode");
		return -EINVAL;
	}
	if (c->vhost_user && !c->socket) {
		log_err("%s vhost_user=on: socket=PATH (the back-end's socket) is required", who);
		return -EINVAL;
	}
	if (c->vhost_mode && strcmp(c->vhost_mode, "client") && strcmp(c->vhost_mode, "server")) {
		log_err("%s: vhost_mode=%s: expected client or server", who, c->vhost_mode);
		return -EINVAL;
	}
	if (c->vhost_user && !d->type->vhost_user) {
		log_err("%s: vhost_user=on is not available for this device", who);
		return -EINVAL;
	}
	d->vhost_user = c->vhost_user;
	d->vhost_server = c->vhost_mode && !strcmp(c->vhost_mode, "server");
	if (c->vhost_user && !(d->socket = strdup(c->socket)))
		return -ENOMEM;
	if (c->id && strlen(c->id) >= sizeof(d->id)) {
		log_err("%s: id=%s: at most %zu characters", who, c->id, sizeof(d->id) - 1);
		return -EINVAL;
	}
	if (c->id)
		snprintf(d->id, sizeof(d->id), "%s", c->id);
	else if (d->type->max == 1)
		snprintf(d->id, sizeof(d->id), "%s", d->type->name);
	else
		snprintf(d->id, sizeof(d->id), "%s%u", d->type->name, index);
	return 0;
}

int devtype_create(struct devtype_dev *d, const struct devtype *t, const char *text,
		   enum devtype_role role, unsigned index)
{
	const char *who = role == DEVTYPE_IN_VM ? t->vm_option : t->backend_option;
	size_t common_off = (t->opts_size + _Alignof(struct devtype_common) - 1) &
			    ~(_Alignof(struct devtype_common) - 1);
	struct opt_spec spec[DEVTYPE_MAX_KEYS];
	char why[256];
	uint64_t seen = 0;
	uint8_t *buf;
	int err;

	memset(d, 0, sizeof(*d));
	d->type = t;
	buf = calloc(1, common_off + sizeof(struct devtype_common));
	if (!buf) {
		log_err("%s: out of memory", who);
		return -ENOMEM;
	}
	if (t->opts_defaults)
		t->opts_defaults(buf);
	devtype_spec(t, role, common_off, spec);
	if (opts_parse(text, spec, buf, &seen, why, sizeof(why))) {
		log_err("%s %s: %s", who, text, why);
		free(buf);
		return -EINVAL;
	}
	err = devtype_take_common(d, (struct devtype_common *)(void *)(buf + common_off), role, index, who);
	if (!err)
		err = t->create(d, buf, seen, role, who);
	opts_free(spec, buf);
	free(buf);
	if (err) {
		free(d->socket);
		free(d->ready);
		d->socket = d->ready = NULL;
	}
	return err;
}

void devtype_destroy(struct devtype_dev *d)
{
	if (d->model)
		d->type->destroy(d);
	free(d->model);
	free(d->socket);
	free(d->ready);
	d->model = NULL;
	d->vdev = NULL;
	d->socket = d->ready = NULL;
}

/*
 * The table of device types: what the command line, --help, the machine and
 * the vhost-user back-end main loop know about each virtio device. A device
 * type is one row (struct devtype, defined beside the model in its folder)
 * and one entry in devtype_table (devices/devtype.c).
 *
 * Options are cloud-hypervisor style "key=value,..." strings. A row gives the
 * device's own keys (spec, offsets into an options struct of opts_size
 * bytes); the keys every device of a role takes are added here: id= (and
 * vhost_user=, socket=, vhost_mode= for a device served by a vhost-user
 * back-end) in a VM, socket= (and client= where offered) for a back-end.
 */
#ifndef CVMM_DEVTYPE_H
#define CVMM_DEVTYPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cvmm/opts.h"
#include "cvmm/vdev.h"

enum devtype_role {
	DEVTYPE_IN_VM,     /* behind a transport in cvmm's own VM */
	DEVTYPE_BACKEND,   /* served to a vhost-user front-end */
};

#define DEVTYPE_ID_LEN 32

struct devtype;

/* One device made from its options. */
struct devtype_dev {
	const struct devtype *type;
	struct vdev *vdev;         /* the model's struct vdev */
	void *model;               /* the model's own struct (blk_dev, ...), owned here */
	char id[DEVTYPE_ID_LEN];   /* in a VM: id= or the default ("disk0", "rng") */
	/* In a VM, vhost_user=on: an external back-end on socket serves the
	 * device (cvmm connects, or listens with vhost_mode=server). */
	bool vhost_user, vhost_server;
	/* Back-end role (and vhost_user=on): */
	char *socket;              /* socket= */
	bool client;               /* client=on: connect instead of listen */
	char *ready;               /* logged once the socket is there (malloc'd) */
	void (*on_hup)(void *model); /* SIGHUP, or NULL */
};

struct devtype {
	const char *name;          /* default ids: name<N>, or name alone when max is 1 */
	const char *vm_option;     /* "--disk"; NULL: not available in a VM */
	const char *vm_usage;      /* --help lines for it (each ends with \n) */
	unsigned max;              /* devices of this type in one VM */
	bool value_optional;       /* the option may come without a value ("--rng") */
	bool vhost_user;           /* in a VM, vhost_user=on hands it to an external back-end */
	const char *backend_option; /* "--block-backend"; NULL: no back-end */
	const char *backend_usage;  /* the --help synopsis of the back-end */
	bool backend_client;       /* offers client=on */
	uint64_t vu_protocol_features; /* offered as a back-end (within the server's) */

	/* The key counting the device's queues, or NULL: in a VM on virtio-pci,
	 * in process and not given, the machine sets it to the vCPUs, so that
	 * each vCPU has a queue whose MSI-X vector the guest targets at it. */
	const char *vm_queues_key;
	unsigned vm_queues_max;    /* the most that default gives (the model's limit) */

	const struct opt_spec *spec; /* the device's keys (at most 60) */
	const struct opt_spec *vm_spec; /* its keys in a VM when they differ (NULL: spec) */
	size_t opts_size;
	void (*opts_defaults)(void *opts);
	/* Checks the parsed options (seen: bit i set when spec[i] was given)
	 * and creates the model into d (vdev, model; for a back-end ready and
	 * on_hup). who names the option in messages. Logs one line and returns
	 * -errno on failure. */
	int (*create)(struct devtype_dev *d, const void *opts, uint64_t seen, enum devtype_role role,
		      const char *who);
	/* Stops and frees the model (d->model). */
	void (*destroy)(struct devtype_dev *d);
};

/* The table, NULL-terminated, in --help order. */
extern const struct devtype *const devtype_table[];

const struct devtype *devtype_by_vm_option(const char *option);
const struct devtype *devtype_by_backend_option(const char *option);

/* Parses text for type t in role and creates the device; index numbers
 * default ids in a VM. Logs one line and returns -errno on failure (-EINVAL
 * for bad options). */
int devtype_create(struct devtype_dev *d, const struct devtype *t, const char *text,
		   enum devtype_role role, unsigned index);
void devtype_destroy(struct devtype_dev *d);

#endif

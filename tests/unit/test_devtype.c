/* The device type table (devices/devtype.c): rows, the role's keys, ids. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cvmm/devtype.h"
#include "cvmm/log.h"
#include "devices/vsock/virtio_vsock.h"
#include "check_run.h"

START_TEST(rows_are_complete)
{
	unsigned n = 0;

	for (unsigned i = 0; devtype_table[i]; i++, n++) {
		const struct devtype *t = devtype_table[i];

		ck_assert_ptr_nonnull(t->name);
		ck_assert_ptr_nonnull(t->spec);
		ck_assert_ptr_nonnull(t->create);
		ck_assert_ptr_nonnull(t->destroy);
		ck_assert(t->vm_option || t->backend_option);
		if (t->vm_option) {
			ck_assert_ptr_nonnull(t->vm_usage);
			ck_assert_uint_ge(t->max, 1);
			ck_assert_ptr_eq(devtype_by_vm_option(t->vm_option), t);
		}
		if (t->backend_option) {
			ck_assert_ptr_nonnull(t->backend_usage);
			ck_assert_ptr_eq(devtype_by_backend_option(t->backend_option), t);
		}
	}
	ck_assert_uint_ge(n, 4);
	ck_assert_ptr_null(devtype_by_vm_option("--frobnicate"));
}
END_TEST

START_TEST(in_vm_ids)
{
	const struct devtype *rng = devtype_by_vm_option("--rng");
	struct devtype_dev d;

	log_set_level(LOG_ERR);
	ck_assert_ptr_nonnull(rng);
	ck_assert_int_eq(devtype_create(&d, rng, "", DEVTYPE_IN_VM, 0), 0);
	ck_assert_str_eq(d.id, "rng");       /* one at most: no number */
	ck_assert_uint_eq(d.vdev->device_id, 4);
	devtype_destroy(&d);
	ck_assert_ptr_null(d.model);
	ck_assert_int_eq(devtype_create(&d, rng, "id=entropy", DEVTYPE_IN_VM, 0), 0);
	ck_assert_str_eq(d.id, "entropy");
	devtype_destroy(&d);
	ck_assert_int_eq(devtype_create(&d, rng, "id=0123456789012345678901234567890123", DEVTYPE_IN_VM, 0),
			 -EINVAL);
	ck_assert_int_eq(devtype_create(&d, rng, "bogus=1", DEVTYPE_IN_VM, 0), -EINVAL);
	/* socket= belongs to back-ends only. */
	ck_assert_int_eq(devtype_create(&d, rng, "socket=/tmp/x", DEVTYPE_IN_VM, 0), -EINVAL);
}
END_TEST

START_TEST(backend_keys)
{
	const struct devtype *vsock = devtype_by_backend_option("--vsock-backend");
	struct devtype_dev d;

	log_set_level(LOG_ERR);
	ck_assert_ptr_nonnull(vsock);
	/* socket= is required; id= is the VM's. */
	ck_assert_int_eq(devtype_create(&d, vsock, "cid=3,uds_path=/tmp/cvmm-dt-u", DEVTYPE_BACKEND, 0),
			 -EINVAL);
	ck_assert_int_eq(devtype_create(&d, vsock, "cid=3,uds_path=/tmp/cvmm-dt-u,socket=/tmp/cvmm-dt-s,id=x",
					DEVTYPE_BACKEND, 0), -EINVAL);
	/* client=on: the back-end connects to the front-end's socket. */
	ck_assert_int_eq(devtype_create(&d, vsock, "cid=3,uds_path=/tmp/cvmm-dt-u,socket=/tmp/cvmm-dt-s,client=on",
					DEVTYPE_BACKEND, 0), 0);
	ck_assert(d.client);
	devtype_destroy(&d);
	ck_assert_int_eq(devtype_create(&d, vsock, "cid=3,uds_path=/tmp/cvmm-dt-u,socket=/tmp/cvmm-dt-s,client=maybe",
					DEVTYPE_BACKEND, 0), -EINVAL);
	ck_assert_int_eq(devtype_create(&d, vsock, "cid=3,uds_path=/tmp/cvmm-dt-s,socket=/tmp/cvmm-dt-s",
					DEVTYPE_BACKEND, 0), -EINVAL);
	ck_assert_int_eq(devtype_create(&d, vsock, "cid=3,uds_path=/tmp/cvmm-dt-u,socket=/tmp/cvmm-dt-s",
					DEVTYPE_BACKEND, 0), 0);
	ck_assert_str_eq(d.socket, "/tmp/cvmm-dt-s");
	ck_assert(!d.client);
	ck_assert_ptr_nonnull(d.ready);
	ck_assert_uint_eq(d.vdev->device_id, 19);
	devtype_destroy(&d);
}
END_TEST

/* A row's keys in a VM may differ from its back-end keys (vm_spec): --vsock
 * names the hybrid socket socket=, --vsock-backend uds_path=. */
START_TEST(vm_keys)
{
	const struct devtype *vsock = devtype_by_vm_option("--vsock");
	const char *path = "/tmp/cvmm-dt-vm";
	struct devtype_dev d;
	char opts[128];

	log_set_level(LOG_ERR);
	ck_assert_ptr_nonnull(vsock);
	ck_assert_ptr_eq(vsock, devtype_by_backend_option("--vsock-backend"));
	ck_assert_uint_eq(vsock->max, 1);
	snprintf(opts, sizeof(opts), "cid=3,uds_path=%s", path);
	ck_assert_int_eq(devtype_create(&d, vsock, opts, DEVTYPE_IN_VM, 0), -EINVAL);
	/* vhost_user=on: socket= is the back-end's (none listens here), so
	 * nothing is created at that path. */
	snprintf(opts, sizeof(opts), "cid=3,socket=%s,vhost_user=on", path);
	ck_assert_int_eq(devtype_create(&d, vsock, opts, DEVTYPE_IN_VM, 0), -EIO);
	ck_assert_int_eq(access(path, F_OK), -1);
	ck_assert_ptr_null(d.socket);
	snprintf(opts, sizeof(opts), "vhost_user=on,socket=%s,vhost_mode=both", path);
	ck_assert_int_eq(devtype_create(&d, vsock, opts, DEVTYPE_IN_VM, 0), -EINVAL);
	snprintf(opts, sizeof(opts), "cid=3,socket=%s,vhost_mode=client", path);
	ck_assert_int_eq(devtype_create(&d, vsock, opts, DEVTYPE_IN_VM, 0), -EINVAL);
	ck_assert_int_eq(access(path, F_OK), -1);
	/* vhost_user= is no back-end key. */
	snprintf(opts, sizeof(opts), "cid=3,uds_path=%s,socket=%s-s,vhost_user=off", path, path);
	ck_assert_int_eq(devtype_create(&d, vsock, opts, DEVTYPE_BACKEND, 0), -EINVAL);
	snprintf(opts, sizeof(opts), "cid=7,socket=%s", path);
	ck_assert_int_eq(devtype_create(&d, vsock, opts, DEVTYPE_IN_VM, 0), 0);
	ck_assert_str_eq(d.id, "vsock");
	ck_assert_ptr_null(d.socket);       /* the hybrid socket is the model's, not a back-end's */
	ck_assert_uint_eq(d.vdev->device_id, 19);
	ck_assert_uint_eq(vsock_dev_nconns(d.model), 0);
	ck_assert_int_eq(access(path, F_OK), 0);
	devtype_destroy(&d);
	ck_assert_int_eq(access(path, F_OK), -1);
}
END_TEST

CHECK_MAIN("devtype",
	   rows_are_complete,
	   in_vm_ids,
	   backend_keys,
	   vm_keys)

/*
 * evfd: eventfds a peer shares, with O_NONBLOCK cleared as a hostile peer
 * may: taking an empty counter and signalling a full one return at once.
 */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "cvmm/evfd.h"
#include "check_run.h"

#define EVFD_FULL 0xfffffffffffffffeULL   /* the largest count an eventfd holds */

START_TEST(take_never_waits)
{
	int fd = eventfd(0, EFD_CLOEXEC);   /* blocking */
	uint64_t v = 5;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(evfd_take(fd), 0);
	ck_assert_int_eq(write(fd, &v, sizeof(v)), sizeof(v));
	ck_assert_int_eq(evfd_take(fd), 1);
	ck_assert_int_eq(evfd_take(fd), 0);
	close(fd);
}
END_TEST

START_TEST(signal_never_waits)
{
	int fd = eventfd(0, EFD_CLOEXEC);   /* blocking */
	uint64_t v = EVFD_FULL;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, &v, sizeof(v)), sizeof(v));
	ck_assert_int_eq(evfd_signal(fd), -EAGAIN);
	ck_assert_int_eq(read(fd, &v, sizeof(v)), sizeof(v));
	ck_assert_uint_eq(v, EVFD_FULL);
	ck_assert_int_eq(evfd_signal(fd), 0);
	ck_assert_int_eq(evfd_signal(fd), 0);
	ck_assert_int_eq(read(fd, &v, sizeof(v)), sizeof(v));
	ck_assert_uint_eq(v, 2);
	close(fd);
}
END_TEST

START_TEST(bad_fd_is_an_error)
{
	ck_assert_int_eq(evfd_take(-1), -EBADF);
	ck_assert_int_eq(evfd_signal(-1), -EBADF);
}
END_TEST

CHECK_MAIN("evfd", take_never_waits, signal_never_waits, bad_fd_is_an_error)

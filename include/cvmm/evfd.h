/*
 * Eventfds another process also holds: a vhost-user peer's kick, call and
 * error fds. O_NONBLOCK belongs to the open file, which the peer shares and
 * may clear, so these never rely on it: a hostile peer cannot make a cvmm
 * thread wait on them.
 */
#ifndef CVMM_EVFD_H
#define CVMM_EVFD_H

/* Takes the counter: 1 when it was set, 0 when not (never waits), or -errno. */
int evfd_take(int fd);
/* Adds 1: 0, -EAGAIN when the counter is so full that a write would wait
 * (its reader has a wake-up pending anyway), or -errno. A peer that fills
 * the counter in the instant between the check and the write can still
 * make the write wait, until its next read. */
int evfd_signal(int fd);

#endif

/*
 * vhost-user back-end server: hosts one device model (struct vdev) for one
 * front-end at a time (QEMU, cloud-hypervisor, DPDK, cvmm). It turns the
 * front-end's messages into the vdev interface: guest memory (dev->mem),
 * ring setup, kick/call fds, queue_start/queue_stop, features and config.
 *
 * Threads: vu_server_run handles messages on the calling thread; the model
 * serves its queues on its own threads. vdev_config_changed(dev) may be
 * called from any thread (it sends BACKEND_CONFIG_CHANGE_MSG).
 */
#ifndef CVMM_VU_SERVER_H
#define CVMM_VU_SERVER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "cvmm/gmem.h"
#include "cvmm/vdev.h"
#include "cvmm/vu_msg.h"
#include "cvmm/vu_proto.h"

/* Protocol features this library implements; a device offers a subset. */
#define VU_SERVER_PROTOCOL_FEATURES                                        \
	(VU_BIT(VHOST_USER_PROTOCOL_F_MQ) | VU_BIT(VHOST_USER_PROTOCOL_F_REPLY_ACK) | \
	 VU_BIT(VHOST_USER_PROTOCOL_F_BACKEND_REQ) | VU_BIT(VHOST_USER_PROTOCOL_F_CONFIG) | \
	 VU_BIT(VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD) |                    \
	 VU_BIT(VHOST_USER_PROTOCOL_F_RESET_DEVICE) | VU_BIT(VHOST_USER_PROTOCOL_F_STATUS) | \
	 VU_BIT(VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS))

/* Most queues: the ring index of SET_VRING_KICK/CALL/ERR has 8 bits. */
#define VU_SERVER_MAX_QUEUES 256
/* How long a back-end request waits for the front-end's ack. */
#define VU_SERVER_BACKEND_TIMEOUT_MS 5000
/* Delay between connection attempts in client mode. */
#define VU_SERVER_RECONNECT_MS 200

struct vu_server_config {
	/* NULL: no socket of its own, connections come via vu_server_serve_conn. */
	const char *socket_path;
	bool client;               /* connect instead of listen, reconnect on loss */
	uint64_t protocol_features; /* subset of VU_SERVER_PROTOCOL_FEATURES offered */
};

/* What the front-end told us about one ring. */
struct vu_queue {
	uint16_t num;              /* SET_VRING_NUM; 0 until set */
	bool addr_set;
	uint64_t desc_ua, avail_ua, used_ua;
	uint16_t base;             /* next avail index when the ring (re)starts */
	int kick_fd, call_fd, err_fd;
	bool enabled;
	bool started;              /* queue_start succeeded, queue_stop not yet called */
};

struct vu_server {
	struct vdev *dev;
	char path[108];
	bool client;
	int listen_fd;
	dev_t sock_dev;            /* the socket file we created, unlinked on destroy */
	ino_t sock_ino;
	bool sock_created;
	uint64_t proto_offered;

	/* Session state: reset when the front-end goes away. */
	int conn_fd;
	bool features_set;
	uint64_t acked_features;   /* including VHOST_USER_F_PROTOCOL_FEATURES */
	uint64_t proto_features;   /* negotiated; written under backend_lock */
	uint8_t status;
	struct gmem mem;
	struct vu_queue *queues;   /* dev->num_queues */
	void *inflight_map;        /* the inflight region's mapping */
	size_t inflight_map_size;
	uint8_t *inflight;         /* start of queue 0's region */
	uint16_t inflight_nq, inflight_qsize;

	/* Back-end request channel, used from any thread. */
	pthread_mutex_t backend_lock;
	int backend_fd;

	/* Signalled when the front-end shrank a file we map (memguard): the
	 * session is ended, the server goes on. */
	int fault_fd;

	pthread_t run_thread;
	struct vu_msg msg;         /* the message being handled */
};

/* Binds and listens on cfg->socket_path (or, in client mode, only checks
 * it), takes over dev->mem / dev->host / dev->host_config_changed and puts
 * the device's queues in their initial state. The cause of a failure is
 * logged; returns 0 or -errno (-EADDRINUSE: another back-end listens there). */
int vu_server_init(struct vu_server *s, struct vdev *dev, const struct vu_server_config *cfg);

/* Serves front-ends one at a time until stop_fd becomes readable (it is not
 * read). When a front-end disconnects or breaks the protocol, every queue is
 * stopped, the device reset, the session state and its fds released, and the
 * next front-end is awaited (client mode: reconnects). Returns 0 when stopped,
 * -errno when the server itself cannot go on. */
int vu_server_run(struct vu_server *s, int stop_fd);

/* Serves one front-end already connected on conn_fd (a socketpair end, or
 * the socket a process was started with), which it takes over, until that
 * front-end goes away or stop_fd is readable; the session is then ended as
 * on a disconnect. 0 or -errno. */
int vu_server_serve_conn(struct vu_server *s, int conn_fd, int stop_fd);

/* Ends any session, closes everything and unlinks the socket it created.
 * The device itself stays the caller's. */
void vu_server_destroy(struct vu_server *s);

#endif

/*
 * vhost-user front-end: drives an external back-end (cvmm --block-backend,
 * qemu-storage-daemon, DPDK, virtiofsd) for a device whose transport and
 * config space stay in cvmm (QEMU docs/interop/vhost-user.rst).
 *
 * The front-end keeps the state the guest's driver set (negotiated features,
 * guest memory, the started rings) and pushes it to whatever back-end is
 * connected: at start, and again after a reconnect. Rings are given as the
 * struct virtq the transport set up (ring pointers are this process's
 * addresses, sent as front-end addresses) with its kick and call eventfds,
 * which the back-end then uses directly: no front-end thread is in the data
 * path.
 *
 * Threads: the calls below come from the transport (a vCPU thread) and are
 * serialised on the front-end's lock. A service thread of its own takes
 * back-end requests (CONFIG_CHANGE_MSG), notices a back-end that went away
 * and reconnects (client mode: with backoff, for ever; server mode: accepts
 * again), renegotiates and restores the started rings.
 *
 * Failures: every reply has a deadline (reply_timeout_ms). A back-end that
 * misses it, answers garbage, refuses a start step, signals a ring's error
 * fd (SET_VRING_ERR), or comes back without a feature the driver acked
 * (or goes away at all, with state_lost_on_disconnect),
 * makes the device call ops->needs_reset (the
 * transport sets DEVICE_NEEDS_RESET); the connection to a back-end that
 * broke the protocol is dropped and a new one sought. Until the guest resets
 * the device, rings are not restored.
 */
#ifndef CVMM_VU_FRONTEND_H
#define CVMM_VU_FRONTEND_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "cvmm/gmem.h"
#include "cvmm/virtq.h"
#include "cvmm/vu_proto.h"

/* Protocol features this front-end implements; a device wants a subset. */
#define VU_FRONTEND_PROTOCOL_FEATURES                                        \
	(VU_BIT(VHOST_USER_PROTOCOL_F_MQ) | VU_BIT(VHOST_USER_PROTOCOL_F_REPLY_ACK) | \
	 VU_BIT(VHOST_USER_PROTOCOL_F_BACKEND_REQ) | VU_BIT(VHOST_USER_PROTOCOL_F_CONFIG) | \
	 VU_BIT(VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD) |                      \
	 VU_BIT(VHOST_USER_PROTOCOL_F_RESET_DEVICE) | VU_BIT(VHOST_USER_PROTOCOL_F_STATUS) | \
	 VU_BIT(VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS))

#define VU_FRONTEND_REPLY_TIMEOUT_MS 5000
/* Client-mode reconnect backoff: first delay, doubled up to the cap. */
#define VU_FRONTEND_RECONNECT_MIN_MS 50
#define VU_FRONTEND_RECONNECT_MAX_MS 2000
/* Most queues (the ring index of SET_VRING_KICK/CALL has 8 bits). */
#define VU_FRONTEND_MAX_QUEUES 256

struct vu_frontend_ops {
	/* The back-end's config space changed (CONFIG_CHANGE_MSG, or a
	 * different config after a reconnect); the cache is already new.
	 * Called on the service thread. */
	void (*config_changed)(void *opaque);
	/* The device cannot serve the driver any more: DEVICE_NEEDS_RESET.
	 * Called on any thread, with the front-end's lock held. */
	void (*needs_reset)(void *opaque);
	/* Optional: how many config bytes a back-end offering these virtio
	 * features has (a layout grows with features, and back-ends refuse
	 * reads past their end); at most config_size. Lock held. */
	uint32_t (*config_size)(void *opaque, uint64_t features);
};

struct vu_frontend_config {
	const char *name;           /* for log lines: "disk0" */
	const char *socket_path;    /* NULL: only vu_frontend_connect_fd (tests) */
	bool server;                /* listen on socket_path, the back-end connects */
	unsigned num_queues;        /* rings the back-end serves, 1..VU_FRONTEND_MAX_QUEUES */
	unsigned min_backend_queues; /* GET_QUEUE_NUM must say at least this (0: num_queues;
				      * net back-ends count queue pairs there) */
	uint16_t queue_size;        /* largest ring the driver may set (inflight geometry) */
	uint64_t protocol_features; /* wanted, a subset of VU_FRONTEND_PROTOCOL_FEATURES */
	uint32_t config_size;       /* most device config bytes fetched with GET_CONFIG (<= 256) */
	uint64_t own_features;      /* virtio features the front-end implements itself (net MAC,
				     * STATUS): not sent to the back-end, not asked of it */
	int reply_timeout_ms;       /* 0: VU_FRONTEND_REPLY_TIMEOUT_MS */
	/* The back-end's device state dies with its connection (virtiofsd's
	 * FUSE session): losing a back-end the driver started the device on
	 * means DEVICE_NEEDS_RESET, and the rings are not handed to the next
	 * back-end until the guest resets the device. */
	bool state_lost_on_disconnect;
	const struct vu_frontend_ops *ops;
	void *opaque;
};

struct vu_frontend_ring {
	struct virtq *vq;           /* set while the driver has the ring started */
	bool started;
	bool disabled;              /* kept disabled on the back-end (net pairs not switched on) */
	int err_fd;                 /* eventfd the back-end signals on a ring error (SET_VRING_ERR) */
};

struct vu_frontend {
	struct vu_frontend_config cfg;
	char name[32];
	char path[108];

	pthread_mutex_t lock;       /* everything below, and the main socket */
	int sock;                   /* main socket; -1 while disconnected */
	bool dead;                  /* sock shut down, the service thread replaces it */
	int listen_fd;              /* server mode */
	int backend_fd;             /* our end of the back-end request channel, or -1 */
	bool mem_sent;              /* this connection has the memory table */

	/* What the connected back-end offers and what was negotiated. */
	uint64_t backend_features;  /* GET_FEATURES, bit 30 included */
	uint64_t protocol_features; /* negotiated */
	unsigned backend_queues;
	unsigned max_mem_slots;

	/* What the driver set; survives reconnects. */
	const struct gmem *mem;
	uint64_t acked_features;    /* the driver's the back-end implements, without bit 30 */
	bool driver_ok;             /* the driver started the device (since the last reset) */
	bool conn_started;          /* this connection has features, memory, inflight */
	bool needs_reset;           /* reported; rings are not restored until reset */
	struct vu_frontend_ring *rings;

	/* Inflight region (INFLIGHT_SHMFD): asked for once, kept across
	 * reconnects, zeroed at a guest reset. */
	int inflight_fd;
	void *inflight_map;
	struct vu_inflight inflight;

	pthread_mutex_t config_lock;
	uint8_t config[VU_MAX_CONFIG_SIZE];
	uint32_t config_len;        /* bytes the connected back-end has */
	bool have_config;

	int wake_fd;                /* eventfd: service thread re-checks its fds */
	int stop_fd;                /* eventfd: service thread ends */
	pthread_t thread;
	bool thread_started;
	unsigned reconnects;        /* completed reconnects, for logs and tests */
};

/* Copies cfg, allocates the rings. No connection yet. 0 or -errno. */
int vu_frontend_init(struct vu_frontend *fe, const struct vu_frontend_config *cfg);
/* Connects to cfg.socket_path (client) or waits for the back-end to connect
 * (server), negotiates, and starts the service thread. Logs the cause of a
 * failure; 0 or -errno. */
int vu_frontend_connect(struct vu_frontend *fe);
/* The same over a socket already connected (takes fd). Without a
 * socket_path a lost connection is not replaced. */
int vu_frontend_connect_fd(struct vu_frontend *fe, int fd);
/* Stops the service thread, closes every fd, unmaps the inflight region. */
void vu_frontend_destroy(struct vu_frontend *fe);

/* The back-end's virtio features, without the vhost-user bits (30, 26). */
uint64_t vu_frontend_features(struct vu_frontend *fe);
/* Copies config bytes [off, off+len) from the cache (zeros past it). */
void vu_frontend_read_config(struct vu_frontend *fe, uint32_t off, void *buf, uint32_t len);
/* SET_CONFIG for a driver write, then refreshes the cache. 0 or -errno. */
int vu_frontend_write_config(struct vu_frontend *fe, uint32_t off, const void *buf, uint32_t len);

/* The driver set DRIVER_OK with these features: ring q (set up by the
 * transport, kick/call fds in vq) is started on the back-end. The first
 * ring after a reset also sends the features, the status, the memory table
 * and the inflight region. Returns once the back-end acknowledged the ring
 * enabled. 0, or -errno (the device needs a reset). While disconnected the
 * ring is only recorded and started on reconnect. */
int vu_frontend_ring_start(struct vu_frontend *fe, const struct gmem *mem, uint64_t features, unsigned q,
			   struct virtq *vq);
/* Enables or disables ring q on the back-end (SET_VRING_ENABLE, acked),
 * now if it runs, else when it starts; a guest reset enables every ring
 * again. Needs VHOST_USER_F_PROTOCOL_FEATURES (without it the back-end
 * enables rings by itself). 0, or -errno (the device needs a reset). */
int vu_frontend_ring_enable(struct vu_frontend *fe, unsigned q, bool on);
/* Disables ring q and takes its position back (GET_VRING_BASE). */
void vu_frontend_ring_stop(struct vu_frontend *fe, unsigned q);
/* Guest reset, all rings stopped: SET_STATUS 0 and RESET_DEVICE where
 * offered; the connection stays. */
void vu_frontend_reset(struct vu_frontend *fe);

#endif

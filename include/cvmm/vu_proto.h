/*
 * vhost-user wire format (QEMU docs/interop/vhost-user.rst): message header,
 * request numbers of both channels, payload layouts, flag and feature bits.
 * All numbers are in the machine's native byte order. Bit numbers are named
 * *_F_*; use VU_BIT() to turn one into a mask.
 */
#ifndef CVMM_VU_PROTO_H
#define CVMM_VU_PROTO_H

#include <stdint.h>

#define VU_BIT(b) (1ULL << (b))

/* Header flags. */
#define VU_FLAG_VERSION_MASK 0x3u
#define VU_VERSION 0x1u
#define VU_FLAG_REPLY 0x4u       /* set on every reply */
#define VU_FLAG_NEED_REPLY 0x8u  /* REPLY_ACK: the sender wants an ack */
#define VU_FLAG_KNOWN (VU_FLAG_VERSION_MASK | VU_FLAG_REPLY | VU_FLAG_NEED_REPLY)

/* Most fds one message may carry (and most regions in SET_MEM_TABLE). */
#define VU_MAX_FDS 8
#define VU_MAX_MEM_REGIONS 8
/* Largest config-space access one GET_CONFIG / SET_CONFIG may carry. */
#define VU_MAX_CONFIG_SIZE 256

/* Virtio feature bit 30 (unused by virtio) announces protocol features. */
#define VHOST_USER_F_PROTOCOL_FEATURES 30
/* Vhost feature: the front-end logs dirty pages (migration). */
#define VHOST_F_LOG_ALL 26

/* Protocol feature bits (GET/SET_PROTOCOL_FEATURES). */
#define VHOST_USER_PROTOCOL_F_MQ 0
#define VHOST_USER_PROTOCOL_F_LOG_SHMFD 1
#define VHOST_USER_PROTOCOL_F_RARP 2
#define VHOST_USER_PROTOCOL_F_REPLY_ACK 3
#define VHOST_USER_PROTOCOL_F_NET_MTU 4
#define VHOST_USER_PROTOCOL_F_BACKEND_REQ 5   /* a.k.a. SLAVE_REQ */
#define VHOST_USER_PROTOCOL_F_CROSS_ENDIAN 6
#define VHOST_USER_PROTOCOL_F_CRYPTO_SESSION 7
#define VHOST_USER_PROTOCOL_F_PAGEFAULT 8
#define VHOST_USER_PROTOCOL_F_CONFIG 9
#define VHOST_USER_PROTOCOL_F_BACKEND_SEND_FD 10
#define VHOST_USER_PROTOCOL_F_HOST_NOTIFIER 11
#define VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD 12
#define VHOST_USER_PROTOCOL_F_RESET_DEVICE 13
#define VHOST_USER_PROTOCOL_F_INBAND_NOTIFICATIONS 14
#define VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS 15
#define VHOST_USER_PROTOCOL_F_STATUS 16
#define VHOST_USER_PROTOCOL_F_XEN_MMAP 17
#define VHOST_USER_PROTOCOL_F_SHARED_OBJECT 18
#define VHOST_USER_PROTOCOL_F_DEVICE_STATE 19

/* Front-end requests (front-end -> back-end, on the main socket). */
enum vu_request {
	VHOST_USER_NONE = 0,
	VHOST_USER_GET_FEATURES = 1,
	VHOST_USER_SET_FEATURES = 2,
	VHOST_USER_SET_OWNER = 3,
	VHOST_USER_RESET_OWNER = 4,
	VHOST_USER_SET_MEM_TABLE = 5,
	VHOST_USER_SET_LOG_BASE = 6,
	VHOST_USER_SET_LOG_FD = 7,
	VHOST_USER_SET_VRING_NUM = 8,
	VHOST_USER_SET_VRING_ADDR = 9,
	VHOST_USER_SET_VRING_BASE = 10,
	VHOST_USER_GET_VRING_BASE = 11,
	VHOST_USER_SET_VRING_KICK = 12,
	VHOST_USER_SET_VRING_CALL = 13,
	VHOST_USER_SET_VRING_ERR = 14,
	VHOST_USER_GET_PROTOCOL_FEATURES = 15,
	VHOST_USER_SET_PROTOCOL_FEATURES = 16,
	VHOST_USER_GET_QUEUE_NUM = 17,
	VHOST_USER_SET_VRING_ENABLE = 18,
	VHOST_USER_SEND_RARP = 19,
	VHOST_USER_NET_SET_MTU = 20,
	VHOST_USER_SET_BACKEND_REQ_FD = 21,   /* a.k.a. SET_SLAVE_REQ_FD */
	VHOST_USER_IOTLB_MSG = 22,
	VHOST_USER_SET_VRING_ENDIAN = 23,
	VHOST_USER_GET_CONFIG = 24,
	VHOST_USER_SET_CONFIG = 25,
	VHOST_USER_CREATE_CRYPTO_SESSION = 26,
	VHOST_USER_CLOSE_CRYPTO_SESSION = 27,
	VHOST_USER_POSTCOPY_ADVISE = 28,
	VHOST_USER_POSTCOPY_LISTEN = 29,
	VHOST_USER_POSTCOPY_END = 30,
	VHOST_USER_GET_INFLIGHT_FD = 31,
	VHOST_USER_SET_INFLIGHT_FD = 32,
	VHOST_USER_GPU_SET_SOCKET = 33,
	VHOST_USER_RESET_DEVICE = 34,
	VHOST_USER_VRING_KICK = 35,
	VHOST_USER_GET_MAX_MEM_SLOTS = 36,
	VHOST_USER_ADD_MEM_REG = 37,
	VHOST_USER_REM_MEM_REG = 38,
	VHOST_USER_SET_STATUS = 39,
	VHOST_USER_GET_STATUS = 40,
	VHOST_USER_GET_SHARED_OBJECT = 41,
	VHOST_USER_SET_DEVICE_STATE_FD = 42,
	VHOST_USER_CHECK_DEVICE_STATE = 43,
	VHOST_USER_REQUEST_MAX
};

/* Back-end requests (back-end -> front-end, on the SET_BACKEND_REQ_FD socket). */
enum vu_backend_request {
	VHOST_USER_BACKEND_NONE = 0,
	VHOST_USER_BACKEND_IOTLB_MSG = 1,
	VHOST_USER_BACKEND_CONFIG_CHANGE_MSG = 2,
	VHOST_USER_BACKEND_VRING_HOST_NOTIFIER_MSG = 3,
	VHOST_USER_BACKEND_VRING_CALL = 4,
	VHOST_USER_BACKEND_VRING_ERR = 5,
	VHOST_USER_BACKEND_SHARED_OBJECT_ADD = 6,
	VHOST_USER_BACKEND_SHARED_OBJECT_REMOVE = 7,
	VHOST_USER_BACKEND_SHARED_OBJECT_LOOKUP = 8,
	VHOST_USER_BACKEND_REQUEST_MAX
};

struct vu_hdr {
	uint32_t request;
	uint32_t flags;
	uint32_t size;   /* payload bytes that follow */
} __attribute__((packed));

/* SET_VRING_NUM / SET_VRING_BASE / GET_VRING_BASE / SET_VRING_ENABLE. */
struct vu_vring_state {
	uint32_t index;
	uint32_t num;
};

/* SET_VRING_ADDR. Addresses are front-end user addresses (no IOMMU). */
#define VU_VRING_F_LOG 0   /* bit number in vu_vring_addr.flags */
struct vu_vring_addr {
	uint32_t index;
	uint32_t flags;
	uint64_t desc_user_addr;
	uint64_t used_user_addr;
	uint64_t avail_user_addr;
	uint64_t log_guest_addr;
};

/* SET_VRING_KICK / CALL / ERR: u64 payload. */
#define VU_VRING_IDX_MASK 0xffULL
#define VU_VRING_NOFD_MASK (1ULL << 8)

struct vu_mem_region {
	uint64_t guest_phys_addr;
	uint64_t memory_size;
	uint64_t userspace_addr;
	uint64_t mmap_offset;
};

/* SET_MEM_TABLE: the payload is 8 + nregions * 32 bytes. */
struct vu_mem_table {
	uint32_t nregions;
	uint32_t padding;
	struct vu_mem_region regions[VU_MAX_MEM_REGIONS];
};

/* ADD_MEM_REG / REM_MEM_REG. */
struct vu_mem_single {
	uint64_t padding;
	struct vu_mem_region region;
};

/* GET_CONFIG / SET_CONFIG: the payload is 12 + size bytes. */
#define VU_CONFIG_HDR_SIZE 12
#define VU_CONFIG_F_WRITABLE 0   /* flags value: a driver write */
#define VU_CONFIG_F_MIGRATION 1  /* flags value: live migration restore */
struct vu_config {
	uint32_t offset;
	uint32_t size;
	uint32_t flags;
	uint8_t region[VU_MAX_CONFIG_SIZE];
};

/* GET_INFLIGHT_FD / SET_INFLIGHT_FD. 20 bytes of fields; QEMU and most
 * peers send the C struct size, 24 (trailing padding). */
#define VU_INFLIGHT_MIN_SIZE 20
struct vu_inflight {
	uint64_t mmap_size;
	uint64_t mmap_offset;
	uint16_t num_queues;
	uint16_t queue_size;
	uint8_t padding[4];
};

/* SET_LOG_BASE. */
struct vu_log {
	uint64_t mmap_size;
	uint64_t mmap_offset;
};

/* BACKEND_VRING_HOST_NOTIFIER_MSG. */
struct vu_vring_area {
	uint64_t u64;
	uint64_t size;
	uint64_t offset;
};

union vu_payload {
	uint64_t u64;
	struct vu_vring_state state;
	struct vu_vring_addr addr;
	struct vu_mem_table mem;
	struct vu_mem_single mem_single;
	struct vu_config config;
	struct vu_inflight inflight;
	struct vu_log log;
	struct vu_vring_area area;
};

_Static_assert(sizeof(struct vu_hdr) == 12, "vhost-user header is 12 bytes");
_Static_assert(sizeof(struct vu_vring_addr) == 40, "vring addr is 40 bytes");
_Static_assert(sizeof(struct vu_mem_region) == 32, "mem region is 32 bytes");
_Static_assert(sizeof(struct vu_mem_single) == 40, "single region is 40 bytes");
_Static_assert(sizeof(struct vu_inflight) == 24, "inflight is 24 bytes");

#endif

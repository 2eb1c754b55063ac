/*
 * virtio-net as virtio 1.2 (5.1) defines it: feature bits, control-queue
 * commands, the frame header and the config space layout, plus the
 * control-queue answer that the in-process device and the vhost-user
 * front-end share. The device model itself is private to devices/net/
 * (devices/net/virtio_net_dev.h).
 */
#ifndef CVMM_VIRTIO_NET_H
#define CVMM_VIRTIO_NET_H

#include <stdint.h>

#include "cvmm/virtq.h"

#define VIRTIO_ID_NET 1

/* Feature bits (bit numbers). */
#define VIRTIO_NET_F_CSUM 0
#define VIRTIO_NET_F_GUEST_CSUM 1
#define VIRTIO_NET_F_MTU 3
#define VIRTIO_NET_F_MAC 5
#define VIRTIO_NET_F_GUEST_TSO4 7
#define VIRTIO_NET_F_GUEST_TSO6 8
#define VIRTIO_NET_F_GUEST_ECN 9
#define VIRTIO_NET_F_GUEST_UFO 10
#define VIRTIO_NET_F_HOST_TSO4 11
#define VIRTIO_NET_F_HOST_TSO6 12
#define VIRTIO_NET_F_HOST_ECN 13
#define VIRTIO_NET_F_HOST_UFO 14
#define VIRTIO_NET_F_MRG_RXBUF 15
#define VIRTIO_NET_F_STATUS 16
#define VIRTIO_NET_F_CTRL_VQ 17
#define VIRTIO_NET_F_MQ 22

/* Control queue commands (virtio 1.2 5.1.6.5). */
#define VIRTIO_NET_OK 0
#define VIRTIO_NET_ERR 1
#define VIRTIO_NET_CTRL_MQ 4
#define VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET 0

#define VIRTIO_NET_S_LINK_UP 1

/* virtio_net_hdr flags and gso types. */
#define VIRTIO_NET_HDR_F_NEEDS_CSUM 1
#define VIRTIO_NET_HDR_F_DATA_VALID 2
#define VIRTIO_NET_HDR_GSO_NONE 0
#define VIRTIO_NET_HDR_GSO_TCPV4 1
#define VIRTIO_NET_HDR_GSO_UDP 3
#define VIRTIO_NET_HDR_GSO_TCPV6 4
#define VIRTIO_NET_HDR_GSO_ECN 0x80

/* The header in front of every frame (little-endian). Without VERSION_1
 * and MRG_RXBUF (legacy) num_buffers is absent: 10 bytes. */
struct virtio_net_hdr {
	uint8_t flags;
	uint8_t gso_type;
	uint16_t hdr_len;
	uint16_t gso_size;
	uint16_t csum_start;
	uint16_t csum_offset;
	uint16_t num_buffers;
} __attribute__((packed));

#define VIRTIO_NET_HDR_LEN 12
#define VIRTIO_NET_HDR_LEGACY_LEN 10

/* Device config space (virtio 1.2 5.1.4), the fields this model offers. */
struct virtio_net_config {
	uint8_t mac[6];
	uint16_t status;
	uint16_t max_virtqueue_pairs;
	uint16_t mtu;
} __attribute__((packed));

/* Answers one control-queue chain: VQ_PAIRS_SET (the only command cvmm
 * offers) with 1..max_pairs pairs calls set_pairs(arg, pairs) and acks OK
 * when it returns 0; anything else acks ERR. The ack is the chain's last
 * writable byte; returns the bytes written (0 when there is no such byte).
 * Shared by the in-process device and the vhost-user front-end. */
uint32_t net_ctrl_answer(const struct virtq_chain *c, unsigned max_pairs,
			 int (*set_pairs)(void *arg, unsigned pairs), void *arg);

#endif

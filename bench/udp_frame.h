/* The test frame the net benchmarks write: Ethernet + IPv4 + UDP (port 9
 * to port 9, discard), len bytes, IPv4 header checksum filled in. */
#ifndef CVMM_BENCH_UDP_FRAME_H
#define CVMM_BENCH_UDP_FRAME_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline void bench_udp_frame(uint8_t *f, size_t len, const uint8_t dst[6], const uint8_t src[6],
				   const uint8_t saddr[4], const uint8_t daddr[4])
{
	uint16_t ip_len = (uint16_t)(len - 14), udp_len = (uint16_t)(len - 34);
	uint32_t sum = 0;

	memset(f, 0, len);
	memcpy(f, dst, 6);
	memcpy(f + 6, src, 6);
	f[12] = 0x08;
	f[14] = 0x45;
	f[16] = (uint8_t)(ip_len >> 8);
	f[17] = (uint8_t)ip_len;
	f[22] = 64;
	f[23] = 17;
	memcpy(f + 26, saddr, 4);
	memcpy(f + 30, daddr, 4);
	for (int i = 14; i < 34; i += 2)
		sum += (uint32_t)(f[i] << 8 | f[i + 1]);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	f[24] = (uint8_t)(~sum >> 8);
	f[25] = (uint8_t)~sum;
	f[35] = 9;
	f[37] = 9;
	f[38] = (uint8_t)(udp_len >> 8);
	f[39] = (uint8_t)udp_len;
}

#endif

/* virtio-vsock connection state machine and credit accounting (pure logic). */
#include <check.h>
#include <errno.h>
#include <string.h>

#include "devices/vsock/vsock_conn.h"
#include "check_run.h"

#define T_CID 7
#define T_GPORT 1234
#define T_HPORT 5000
#define T_BUF 4096

/* A guest packet to the host. */
static struct vsock_hdr t_pkt(uint16_t op, uint32_t len, uint32_t buf_alloc, uint32_t fwd_cnt)
{
	return (struct vsock_hdr){
		.src_cid = T_CID, .dst_cid = VSOCK_HOST_CID,
		.src_port = T_GPORT, .dst_port = T_HPORT,
		.len = len, .type = VSOCK_TYPE_STREAM, .op = op,
		.buf_alloc = buf_alloc, .fwd_cnt = fwd_cnt,
	};
}

/* An established guest-initiated connection; the guest offers guest_buf. */
static void t_accepted(struct vsock_conn *c, uint32_t guest_buf)
{
	struct vsock_hdr req = t_pkt(VSOCK_OP_REQUEST, 0, guest_buf, 0), h;

	vsock_conn_init_accept(c, &req, T_BUF);
	ck_assert(vsock_conn_next_ctrl(c, &h));
	ck_assert_uint_eq(h.op, VSOCK_OP_RESPONSE);
	ck_assert(!vsock_conn_next_ctrl(c, &h));
}

START_TEST(header_checks)
{
	struct vsock_hdr h = t_pkt(VSOCK_OP_RW, 100, T_BUF, 0);

	ck_assert_int_eq(vsock_hdr_check(&h, T_CID, 100), 0);
	/* len beyond what the chain holds, or beyond the packet limit */
	ck_assert_int_eq(vsock_hdr_check(&h, T_CID, 99), -EINVAL);
	h.len = VSOCK_MAX_PKT_LEN + 1;
	ck_assert_int_eq(vsock_hdr_check(&h, T_CID, VSOCK_MAX_PKT_LEN + 1), -EINVAL);
	/* unknown type (SEQPACKET is not offered) and bad ops */
	h = t_pkt(VSOCK_OP_RW, 0, T_BUF, 0);
	h.type = 2;
	ck_assert_int_eq(vsock_hdr_check(&h, T_CID, 0), -EINVAL);
	h = t_pkt(0, 0, T_BUF, 0);
	ck_assert_int_eq(vsock_hdr_check(&h, T_CID, 0), -EINVAL);
	h = t_pkt(8, 0, T_BUF, 0);
	ck_assert_int_eq(vsock_hdr_check(&h, T_CID, 0), -EINVAL);
	/* spoofed source or a destination other than the host */
	h = t_pkt(VSOCK_OP_REQUEST, 0, T_BUF, 0);
	h.src_cid = T_CID + 1;
	ck_assert_int_eq(vsock_hdr_check(&h, T_CID, 0), -EINVAL);
	h = t_pkt(VSOCK_OP_REQUEST, 0, T_BUF, 0);
	h.dst_cid = 3;
	ck_assert_int_eq(vsock_hdr_check(&h, T_CID, 0), -EINVAL);
	/* payload on a control packet */
	h = t_pkt(VSOCK_OP_REQUEST, 4, T_BUF, 0);
	ck_assert_int_eq(vsock_hdr_check(&h, T_CID, 4), -EINVAL);
}
END_TEST

START_TEST(rst_replies_swap_ports_and_never_answer_rst)
{
	struct vsock_hdr h = t_pkt(VSOCK_OP_RW, 10, T_BUF, 0), r;

	h.src_cid = 99; /* even a spoofed source is answered at the guest's CID */
	ck_assert(vsock_rst_reply(&h, T_CID, &r));
	ck_assert_uint_eq(r.op, VSOCK_OP_RST);
	ck_assert_uint_eq(r.src_cid, VSOCK_HOST_CID);
	ck_assert_uint_eq(r.dst_cid, T_CID);
	ck_assert_uint_eq(r.src_port, T_HPORT);
	ck_assert_uint_eq(r.dst_port, T_GPORT);
	ck_assert_uint_eq(r.len, 0);
	h.op = VSOCK_OP_RST;
	ck_assert(!vsock_rst_reply(&h, T_CID, &r));
}
END_TEST

START_TEST(host_initiated_handshake)
{
	struct vsock_conn c;
	struct vsock_hdr h, resp;

	vsock_conn_init_connect(&c, T_CID, T_GPORT, T_HPORT, T_BUF);
	ck_assert_int_eq(c.state, VSOCK_CONN_CONNECTING);
	ck_assert_uint_eq(vsock_conn_credit(&c), 0);
	ck_assert(vsock_conn_next_ctrl(&c, &h));
	ck_assert_uint_eq(h.op, VSOCK_OP_REQUEST);
	ck_assert_uint_eq(h.src_cid, VSOCK_HOST_CID);
	ck_assert_uint_eq(h.dst_cid, T_CID);
	ck_assert_uint_eq(h.src_port, T_HPORT);
	ck_assert_uint_eq(h.dst_port, T_GPORT);
	ck_assert_uint_eq(h.buf_alloc, T_BUF);
	ck_assert(!vsock_conn_next_ctrl(&c, &h));
	/* Data before the RESPONSE is a violation... */
	{
		struct vsock_conn c2 = c;
		struct vsock_hdr rw = t_pkt(VSOCK_OP_RW, 1, 8192, 0);

		ck_assert_int_eq(vsock_conn_recv(&c2, &rw), VSOCK_RECV_RESET);
		ck_assert(vsock_conn_next_ctrl(&c2, &h));
		ck_assert_uint_eq(h.op, VSOCK_OP_RST);
	}
	/* ...the RESPONSE establishes it with the guest's window. */
	resp = t_pkt(VSOCK_OP_RESPONSE, 0, 8192, 0);
	ck_assert_int_eq(vsock_conn_recv(&c, &resp), VSOCK_RECV_CONNECTED);
	ck_assert_int_eq(c.state, VSOCK_CONN_ESTABLISHED);
	ck_assert_uint_eq(vsock_conn_credit(&c), 8192);
	/* A second RESPONSE is not part of the protocol. */
	ck_assert_int_eq(vsock_conn_recv(&c, &resp), VSOCK_RECV_RESET);
	ck_assert_int_eq(c.state, VSOCK_CONN_CLOSED);
}
END_TEST

START_TEST(guest_initiated_handshake_and_refused_request)
{
	struct vsock_conn c;
	struct vsock_hdr req = t_pkt(VSOCK_OP_REQUEST, 0, 3000, 0), h;

	t_accepted(&c, 3000);
	ck_assert_int_eq(c.state, VSOCK_CONN_ESTABLISHED);
	ck_assert_uint_eq(c.guest_port, T_GPORT);
	ck_assert_uint_eq(c.host_port, T_HPORT);
	ck_assert_uint_eq(vsock_conn_credit(&c), 3000);
	/* A REQUEST on an existing connection resets it. */
	ck_assert_int_eq(vsock_conn_recv(&c, &req), VSOCK_RECV_RESET);
	ck_assert(vsock_conn_next_ctrl(&c, &h));
	ck_assert_uint_eq(h.op, VSOCK_OP_RST);
	ck_assert(!vsock_conn_next_ctrl(&c, &h));
}
END_TEST

START_TEST(guest_rst_closes_silently)
{
	struct vsock_conn c;
	struct vsock_hdr rst = t_pkt(VSOCK_OP_RST, 0, 0, 0), h;

	t_accepted(&c, 3000);
	c.pending |= VSOCK_PEND_CREDIT_UPDATE;
	ck_assert_int_eq(vsock_conn_recv(&c, &rst), VSOCK_RECV_RESET);
	ck_assert_int_eq(c.state, VSOCK_CONN_CLOSED);
	ck_assert(!vsock_conn_next_ctrl(&c, &h));
	/* Anything after is ignored. */
	ck_assert_int_eq(vsock_conn_recv(&c, &rst), VSOCK_RECV_RESET);
}
END_TEST

START_TEST(send_credit_is_respected)
{
	struct vsock_conn c;
	struct vsock_hdr h, upd;

	t_accepted(&c, 1000);
	ck_assert_uint_eq(vsock_conn_credit(&c), 1000);
	vsock_conn_data_hdr(&c, &h, 600);
	ck_assert_uint_eq(h.op, VSOCK_OP_RW);
	ck_assert_uint_eq(h.len, 600);
	ck_assert_uint_eq(vsock_conn_credit(&c), 400);
	vsock_conn_data_hdr(&c, &h, 400);
	ck_assert_uint_eq(vsock_conn_credit(&c), 0);
	/* The guest consumed 700 bytes. */
	upd = t_pkt(VSOCK_OP_CREDIT_UPDATE, 0, 1000, 700);
	ck_assert_int_eq(vsock_conn_recv(&c, &upd), VSOCK_RECV_NONE);
	ck_assert_uint_eq(vsock_conn_credit(&c), 700);
	/* It may also grow or shrink its buffer. */
	upd = t_pkt(VSOCK_OP_CREDIT_UPDATE, 0, 500, 700);
	vsock_conn_recv(&c, &upd);
	ck_assert_uint_eq(vsock_conn_credit(&c), 200);
	upd = t_pkt(VSOCK_OP_CREDIT_UPDATE, 0, 100, 700);
	vsock_conn_recv(&c, &upd);
	ck_assert_uint_eq(vsock_conn_credit(&c), 0);
	/* A fwd_cnt claiming more than was sent gives no credit. */
	upd = t_pkt(VSOCK_OP_CREDIT_UPDATE, 0, 1000, 5000);
	vsock_conn_recv(&c, &upd);
	ck_assert_uint_eq(vsock_conn_credit(&c), 0);
}
END_TEST

START_TEST(credit_counters_wrap)
{
	struct vsock_conn c;
	struct vsock_hdr h, upd;

	t_accepted(&c, 1000);
	c.tx_cnt = c.peer_fwd_cnt = UINT32_MAX - 100;
	ck_assert_uint_eq(vsock_conn_credit(&c), 1000);
	vsock_conn_data_hdr(&c, &h, 800);
	ck_assert_uint_eq(vsock_conn_credit(&c), 200);
	upd = t_pkt(VSOCK_OP_CREDIT_UPDATE, 0, 1000, c.tx_cnt);
	vsock_conn_recv(&c, &upd);
	ck_assert_uint_eq(vsock_conn_credit(&c), 1000);
}
END_TEST

START_TEST(receive_window_is_enforced)
{
	struct vsock_conn c;
	struct vsock_hdr rw = t_pkt(VSOCK_OP_RW, T_BUF, 4096, 0), h;

	t_accepted(&c, 4096);
	/* Exactly our buffer is fine... */
	ck_assert_int_eq(vsock_conn_recv(&c, &rw), VSOCK_RECV_DATA);
	ck_assert_uint_eq(c.rx_cnt, T_BUF);
	/* ...one byte more before we forwarded anything is an overrun. */
	{
		struct vsock_conn c2 = c;
		struct vsock_hdr one = t_pkt(VSOCK_OP_RW, 1, 4096, 0);

		ck_assert_int_eq(vsock_conn_recv(&c2, &one), VSOCK_RECV_RESET);
		ck_assert(vsock_conn_next_ctrl(&c2, &h));
		ck_assert_uint_eq(h.op, VSOCK_OP_RST);
	}
	/* After forwarding 100 bytes, 100 more fit. */
	vsock_conn_forwarded(&c, 100);
	rw.len = 100;
	ck_assert_int_eq(vsock_conn_recv(&c, &rw), VSOCK_RECV_DATA);
	rw.len = 1;
	ck_assert_int_eq(vsock_conn_recv(&c, &rw), VSOCK_RECV_RESET);
}
END_TEST

START_TEST(credit_update_when_the_guest_view_runs_low)
{
	struct vsock_conn c;
	struct vsock_hdr rw = t_pkt(VSOCK_OP_RW, 1000, 4096, 0), h;

	t_accepted(&c, 4096);
	/* 1000 of 4096 taken, then forwarded: the guest still sees plenty. */
	vsock_conn_recv(&c, &rw);
	vsock_conn_forwarded(&c, 1000);
	ck_assert_uint_eq(c.pending, 0);
	/* Past half the buffer in the guest's view: tell it. */
	rw.len = 1100;
	vsock_conn_recv(&c, &rw);
	vsock_conn_forwarded(&c, 500);
	ck_assert_uint_ne(c.pending & VSOCK_PEND_CREDIT_UPDATE, 0);
	ck_assert(vsock_conn_next_ctrl(&c, &h));
	ck_assert_uint_eq(h.op, VSOCK_OP_CREDIT_UPDATE);
	ck_assert_uint_eq(h.fwd_cnt, 1500);
	ck_assert_uint_eq(h.buf_alloc, T_BUF);
	ck_assert_uint_eq(c.fwd_cnt_sent, 1500);
	/* Nothing forwarded since: no update, even if low. */
	vsock_conn_forwarded(&c, 0);
	ck_assert_uint_eq(c.pending, 0);
	/* A data packet carries fwd_cnt, replacing an owed update. */
	vsock_conn_forwarded(&c, 600);
	c.pending |= VSOCK_PEND_CREDIT_UPDATE;
	vsock_conn_data_hdr(&c, &h, 10);
	ck_assert_uint_eq(h.fwd_cnt, 2100);
	ck_assert_uint_eq(c.pending, 0);
	/* CREDIT_REQUEST is always answered. */
	rw = t_pkt(VSOCK_OP_CREDIT_REQUEST, 0, 4096, 0);
	ck_assert_int_eq(vsock_conn_recv(&c, &rw), VSOCK_RECV_NONE);
	ck_assert(vsock_conn_next_ctrl(&c, &h));
	ck_assert_uint_eq(h.op, VSOCK_OP_CREDIT_UPDATE);
}
END_TEST

START_TEST(shutdown_both_ways)
{
	struct vsock_conn c;
	struct vsock_hdr sd = t_pkt(VSOCK_OP_SHUTDOWN, 0, 4096, 0), h, rw;

	t_accepted(&c, 4096);
	sd.flags = VSOCK_SHUTDOWN_SEND;
	ck_assert_int_eq(vsock_conn_recv(&c, &sd), VSOCK_RECV_SHUTDOWN);
	ck_assert_uint_eq(c.guest_shut, VSOCK_SHUTDOWN_SEND);
	ck_assert(!vsock_conn_guest_closed(&c));
	/* Repeating it changes nothing. */
	ck_assert_int_eq(vsock_conn_recv(&c, &sd), VSOCK_RECV_NONE);
	/* Data after SHUTDOWN SEND is a violation. */
	{
		struct vsock_conn c2 = c;

		rw = t_pkt(VSOCK_OP_RW, 1, 4096, 0);
		ck_assert_int_eq(vsock_conn_recv(&c2, &rw), VSOCK_RECV_RESET);
	}
	/* We may still send until the guest stops receiving. */
	ck_assert_uint_eq(vsock_conn_credit(&c), 4096);
	sd.flags = VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND;
	ck_assert_int_eq(vsock_conn_recv(&c, &sd), VSOCK_RECV_SHUTDOWN);
	ck_assert(vsock_conn_guest_closed(&c));
	ck_assert_uint_eq(vsock_conn_credit(&c), 0);

	/* Our side: SHUTDOWN SEND stops our sending and is sent once. */
	t_accepted(&c, 4096);
	vsock_conn_shutdown(&c, VSOCK_SHUTDOWN_SEND);
	ck_assert_uint_eq(vsock_conn_credit(&c), 0);
	ck_assert(vsock_conn_next_ctrl(&c, &h));
	ck_assert_uint_eq(h.op, VSOCK_OP_SHUTDOWN);
	ck_assert_uint_eq(h.flags, VSOCK_SHUTDOWN_SEND);
	vsock_conn_shutdown(&c, VSOCK_SHUTDOWN_SEND);
	ck_assert(!vsock_conn_next_ctrl(&c, &h));
	/* SHUTDOWN before the handshake completes resets. */
	vsock_conn_init_connect(&c, T_CID, T_GPORT, T_HPORT, T_BUF);
	ck_assert_int_eq(vsock_conn_recv(&c, &sd), VSOCK_RECV_RESET);
}
END_TEST

START_TEST(control_packets_in_order_rst_last_word)
{
	struct vsock_conn c;
	struct vsock_hdr req = t_pkt(VSOCK_OP_REQUEST, 0, 4096, 0), h;

	vsock_conn_init_accept(&c, &req, T_BUF);
	c.pending |= VSOCK_PEND_CREDIT_UPDATE;
	vsock_conn_shutdown(&c, VSOCK_SHUTDOWN_SEND);
	ck_assert(vsock_conn_next_ctrl(&c, &h));
	ck_assert_uint_eq(h.op, VSOCK_OP_RESPONSE);
	ck_assert(vsock_conn_next_ctrl(&c, &h));
	ck_assert_uint_eq(h.op, VSOCK_OP_CREDIT_UPDATE);
	ck_assert(vsock_conn_next_ctrl(&c, &h));
	ck_assert_uint_eq(h.op, VSOCK_OP_SHUTDOWN);
	ck_assert(!vsock_conn_next_ctrl(&c, &h));
	/* A reset drops whatever else was owed. */
	vsock_conn_init_accept(&c, &req, T_BUF);
	c.pending |= VSOCK_PEND_CREDIT_UPDATE;
	vsock_conn_reset(&c);
	ck_assert(vsock_conn_next_ctrl(&c, &h));
	ck_assert_uint_eq(h.op, VSOCK_OP_RST);
	ck_assert(!vsock_conn_next_ctrl(&c, &h));
	vsock_conn_shutdown(&c, VSOCK_SHUTDOWN_SEND);
	ck_assert(!vsock_conn_next_ctrl(&c, &h));
}
END_TEST

CHECK_MAIN("vsock_conn",
	   header_checks,
	   rst_replies_swap_ports_and_never_answer_rst,
	   host_initiated_handshake,
	   guest_initiated_handshake_and_refused_request,
	   guest_rst_closes_silently,
	   send_credit_is_respected,
	   credit_counters_wrap,
	   receive_window_is_enforced,
	   credit_update_when_the_guest_view_runs_low,
	   shutdown_both_ways,
	   control_packets_in_order_rst_last_word)

/*
 * worker_session_test.c — tests for worker/session.c, a worker's NNG dial
 * session, against a coordinator played by the test over inproc://: the
 * pipe notification when the dial connects and when the peer goes, HELLO
 * out and WELCOME in through the receive descriptor, rejections counted
 * (oversize frames reach the conn instead of being dropped by NNG, garbage
 * is malformed, a replayed frame is a replay), and dial errors.
 */
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <nng/nng.h>
#include <nng/protocol/pair1/pair.h>

#include "err.h"
#include "keys.h"
#include "msg.h"
#include "reject.h"
#include "replay.h"
#include "session.h"

#define KEY "worker-session-test-key-0123456789abcdef"

/* Pipe events, recorded from NNG's thread. */
typedef struct events {
	pthread_mutex_t mtx;
	pthread_cond_t  cv;
	int             added, removed, sock;
} events;

static void
on_pipe(void *arg, int sock, bool added)
{
	events *e = arg;
	pthread_mutex_lock(&e->mtx);
	e->sock = sock;
	if (added)
		e->added++;
	else
		e->removed++;
	pthread_cond_broadcast(&e->cv);
	pthread_mutex_unlock(&e->mtx);
}

static bool
wait_count(events *e, int *field, int want)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 5;
	pthread_mutex_lock(&e->mtx);
	while (*field < want)
		if (pthread_cond_timedwait(&e->cv, &e->mtx, &ts) != 0)
			break;
	bool ok = *field >= want;
	pthread_mutex_unlock(&e->mtx);
	return ok;
}

typedef struct fixture {
	mcf_proto_keys         *keys;
	mcf_proto_replay       *rp_w, *rp_c;
	mcf_proto_reject_stats *st_w, *st_c;
	mcf_proto_conn         *coord;
	nng_socket              csock;
	events                  ev;
	mcf_session_notify      notify;
	mcf_session            *s;
} fixture;

static int
setup(void **state)
{
	static int       n;
	fixture         *fx = calloc(1, sizeof(*fx));
	mcf_proto_keyset ks;
	assert_int_equal(
	    mcf_proto_keyset_init(&ks, KEY, strlen(KEY), NULL, 0, NULL),
	    MCF_OK);
	assert_int_equal(mcf_proto_keys_create_static(&fx->keys, &ks), MCF_OK);
	mcf_proto_keyset_clear(&ks);
	assert_int_equal(mcf_proto_replay_create(&fx->rp_w, 0), MCF_OK);
	assert_int_equal(mcf_proto_replay_create(&fx->rp_c, 0), MCF_OK);
	assert_int_equal(mcf_proto_reject_stats_create(&fx->st_w), MCF_OK);
	assert_int_equal(mcf_proto_reject_stats_create(&fx->st_c), MCF_OK);
	mcf_proto_conn_opts co = { MCF_PROTO_PEER_COORDINATOR, fx->keys,
		fx->rp_c, fx->st_c, 0, "test-worker" };
	assert_int_equal(mcf_proto_conn_create(&fx->coord, &co, NULL), MCF_OK);
	pthread_mutex_init(&fx->ev.mtx, NULL);
	pthread_cond_init(&fx->ev.cv, NULL);
	fx->notify = (mcf_session_notify) { on_pipe, &fx->ev };

	char url[64];
	snprintf(url, sizeof(url), "inproc://worker-session-test-%d", n++);
	assert_int_equal(nng_pair1_open(&fx->csock), 0);
	assert_int_equal(
	    nng_socket_set_size(fx->csock, NNG_OPT_RECVMAXSZ, 1 << 24), 0);
	assert_int_equal(
	    nng_socket_set_ms(fx->csock, NNG_OPT_RECVTIMEO, 5000), 0);
	assert_int_equal(nng_listen(fx->csock, url, NULL, 0), 0);

	mcf_session_opts o = {
		.url       = url,
		.keys      = fx->keys,
		.replay    = fx->rp_w,
		.stats     = fx->st_w,
		.max_frame = 4096,
		.notify    = &fx->notify,
	};
	mcf_errinfo ei = { 0 };
	assert_int_equal(mcf_session_create(&fx->s, &o, &ei), MCF_OK);
	assert_true(wait_count(&fx->ev, &fx->ev.added, 1));
	assert_int_equal(fx->ev.sock, mcf_session_id(fx->s));
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	fixture *fx = *state;
	mcf_session_destroy(fx->s);
	nng_close(fx->csock);
	mcf_proto_conn_destroy(fx->coord);
	mcf_proto_reject_stats_destroy(fx->st_w);
	mcf_proto_reject_stats_destroy(fx->st_c);
	mcf_proto_replay_destroy(fx->rp_w);
	mcf_proto_replay_destroy(fx->rp_c);
	mcf_proto_keys_destroy(fx->keys);
	pthread_mutex_destroy(&fx->ev.mtx);
	pthread_cond_destroy(&fx->ev.cv);
	free(fx);
	return 0;
}

/* Coordinator side: raw bytes out. */
static void
coord_send_raw(fixture *fx, const void *b, size_t n)
{
	assert_int_equal(nng_send(fx->csock, (void *) b, n, 0), 0);
}

static void
coord_send(fixture *fx, const mcf_proto_msg *m, uint8_t **keep, size_t *klen)
{
	uint8_t *frame;
	size_t   len;
	assert_int_equal(
	    mcf_proto_conn_seal(fx->coord, m, &frame, &len, NULL), MCF_OK);
	coord_send_raw(fx, frame, len);
	if (keep != NULL) {
		*keep = frame;
		*klen = len;
	} else {
		free(frame);
	}
}

/* Worker side: waits for the receive descriptor, then takes a frame. */
static int
worker_recv(fixture *fx, mcf_proto_msg **out)
{
	struct pollfd p = { mcf_session_fd(fx->s), POLLIN, 0 };
	assert_true(p.fd >= 0);
	assert_int_equal(poll(&p, 1, 5000), 1);
	return mcf_session_recv(fx->s, out, NULL);
}

static void
test_session_hello_welcome(void **state)
{
	fixture      *fx = *state;
	mcf_proto_msg m;
	mcf_proto_msg_init(&m, MCF_PROTO_MSG_HELLO);
	m.u.hello.major       = MCF_PROTO_MAJOR;
	m.u.hello.minor       = MCF_PROTO_MINOR;
	m.u.hello.name        = "w-0";
	m.u.hello.incarnation = "abc";
	m.u.hello.weight      = 2;
	assert_int_equal(mcf_session_send(fx->s, &m, NULL), MCF_OK);

	/* The coordinator opens it. */
	void  *buf;
	size_t len;
	assert_int_equal(nng_recv(fx->csock, &buf, &len, NNG_FLAG_ALLOC), 0);
	mcf_proto_msg *got = NULL;
	assert_int_equal(
	    mcf_proto_conn_open(fx->coord, buf, len, &got, NULL, NULL),
	    MCF_OK);
	nng_free(buf, len);
	assert_int_equal(got->type, MCF_PROTO_MSG_HELLO);
	assert_string_equal(got->u.hello.name, "w-0");
	assert_int_equal(got->u.hello.weight, 2);
	mcf_proto_msg_destroy(got);

	/* Nothing waiting: EAGAIN. */
	assert_int_equal(mcf_session_recv(fx->s, &got, NULL), MCF_EAGAIN);

	mcf_proto_msg w;
	mcf_proto_msg_init(&w, MCF_PROTO_MSG_WELCOME);
	w.u.welcome.major = 1;
	w.u.welcome.minor = 1;
	mcf_proto_term_set(&w.u.welcome.term, "uid-1", 7);
	w.u.welcome.leader       = "coord-a";
	w.u.welcome.heartbeat_ms = 250;
	coord_send(fx, &w, NULL, NULL);
	assert_int_equal(worker_recv(fx, &got), MCF_OK);
	assert_int_equal(got->type, MCF_PROTO_MSG_WELCOME);
	assert_string_equal(got->u.welcome.term.uid, "uid-1");
	assert_int_equal(got->u.welcome.heartbeat_ms, 250);
	mcf_proto_msg_destroy(got);
	assert_int_equal(mcf_proto_reject_stats_accepted(fx->st_w), 1);
}

static void
test_session_rejections_counted(void **state)
{
	fixture       *fx  = *state;
	mcf_proto_msg *got = NULL;

	/* Oversize (max_frame 4096): reaches the conn, counted too_big. */
	size_t   big = 5000;
	uint8_t *b   = calloc(1, big);
	coord_send_raw(fx, b, big);
	free(b);
	assert_int_equal(worker_recv(fx, &got), MCF_ETOOBIG);
	assert_null(got);
	assert_int_equal(
	    mcf_proto_reject_stats_get(fx->st_w, MCF_PROTO_REJECT_TOO_BIG), 1);

	/* Garbage: malformed. */
	coord_send_raw(fx, "garbage", 7);
	assert_int_equal(worker_recv(fx, &got), MCF_EPROTO);
	assert_int_equal(
	    mcf_proto_reject_stats_get(fx->st_w, MCF_PROTO_REJECT_MALFORMED),
	    1);

	/* A heartbeat, then the very same frame again: a replay. */
	mcf_proto_msg hb;
	mcf_proto_msg_init(&hb, MCF_PROTO_MSG_HEARTBEAT);
	hb.u.heartbeat.time_ms = 1;
	hb.u.heartbeat.seq     = 1;
	mcf_proto_term_set(&hb.u.heartbeat.term, "uid-1", 7);
	uint8_t *frame;
	size_t   len;
	coord_send(fx, &hb, &frame, &len);
	assert_int_equal(worker_recv(fx, &got), MCF_OK);
	mcf_proto_msg_destroy(got);
	coord_send_raw(fx, frame, len);
	free(frame);
	assert_int_equal(worker_recv(fx, &got), MCF_EPROTO);
	assert_int_equal(
	    mcf_proto_reject_stats_get(fx->st_w, MCF_PROTO_REJECT_REPLAY), 1);

	/* A rejection the worker decides itself. */
	mcf_proto_reject rej;
	assert_int_equal(mcf_proto_conn_reject(mcf_session_conn(fx->s),
	                     MCF_PROTO_REJECT_LOWER_TERM, &rej, "test"),
	    MCF_EPERM);
	assert_int_equal(
	    mcf_proto_reject_stats_get(fx->st_w, MCF_PROTO_REJECT_LOWER_TERM),
	    1);
}

static void
test_session_peer_gone(void **state)
{
	fixture *fx = *state;
	nng_close(fx->csock);
	assert_true(wait_count(&fx->ev, &fx->ev.removed, 1));
	assert_int_equal(fx->ev.sock, mcf_session_id(fx->s));
	/* Reopen so teardown's close has a socket. */
	assert_int_equal(nng_pair1_open(&fx->csock), 0);
}

static void
test_session_bad_url(void **state)
{
	fixture         *fx = *state;
	mcf_session     *s  = NULL;
	mcf_errinfo      ei = { 0 };
	mcf_session_opts o
	    = { .url = "nope://x", .keys = fx->keys, .replay = fx->rp_w };
	assert_int_not_equal(mcf_session_create(&s, &o, &ei), MCF_OK);
	assert_null(s);
	assert_non_null(strstr(ei.msg, "nope://x"));
	o.url = "tcp://";
	assert_int_not_equal(mcf_session_create(&s, &o, &ei), MCF_OK);
	assert_null(s);
	o.url = NULL;
	assert_int_equal(mcf_session_create(&s, &o, &ei), MCF_EINVAL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_session_hello_welcome, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_session_rejections_counted, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_session_peer_gone, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_session_bad_url, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

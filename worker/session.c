/*
 * session.c — a worker's NNG dial session (session.h).
 *
 * The socket is a plain pair1 socket (the coordinator listens with a
 * polyamorous one).  Pipe events reach the owner through the notify
 * struct, which outlives the socket, so a late callback from NNG's close
 * path cannot touch freed memory.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/protocol/pair1/pair.h>

#include "alloc.h"
#include "frame.h"
#include "log.h"
#include "session.h"

/* How long a session waits for nng_close (mcf_proto_close_bounded). */
#define CLOSE_WAIT_MS 2000

struct mcf_session {
	nng_socket          sock;
	nng_dialer          dialer;
	bool                open;
	int                 fd;
	char               *url;    /* owned */
	mcf_proto_conn     *conn;   /* owned */
	mcf_session_notify *notify; /* borrowed; outlives the socket */
};

static int
from_nng(int rv)
{
	switch (rv) {
	case 0:
		return MCF_OK;
	case NNG_EAGAIN:
		return MCF_EAGAIN;
	case NNG_EINVAL:
	case NNG_EADDRINVAL:
		return MCF_EINVAL;
	case NNG_ENOTSUP:
		return MCF_EUNSUPP;
	case NNG_ECLOSED:
		return MCF_ECLOSED;
	case NNG_ENOMEM:
		mcf_panic("session: NNG is out of memory");
	default:
		return MCF_EIO;
	}
}

static void
pipe_cb(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	mcf_session_notify *n = arg;
	if (n->fn != NULL)
		n->fn(n->arg, nng_socket_id(nng_pipe_socket(p)),
		    ev == NNG_PIPE_EV_ADD_POST);
}

int
mcf_session_create(
    mcf_session **out, const mcf_session_opts *o, mcf_errinfo *ei)
{
	if (out == NULL || o == NULL || o->url == NULL || o->keys == NULL
	    || o->replay == NULL)
		return mcf_errinfo_set(
		    ei, MCF_EINVAL, "session: missing option");
	size_t max = o->max_frame ? o->max_frame : MCF_PROTO_MAX_FRAME_DEFAULT;

	mcf_session *s         = mcf_calloc(1, sizeof(*s));
	s->fd                  = -1;
	s->url                 = mcf_strdup(o->url);
	s->notify              = o->notify;
	mcf_proto_conn_opts co = {
		.self      = MCF_PROTO_PEER_WORKER,
		.keys      = o->keys,
		.replay    = o->replay,
		.stats     = o->stats,
		.max_frame = max,
		.peer      = o->url,
	};
	int rc = mcf_proto_conn_create(&s->conn, &co, ei);
	if (rc != MCF_OK)
		goto fail;
	int rv = nng_pair1_open(&s->sock);
	if (rv != 0) {
		rc = mcf_errinfo_set(
		    ei, from_nng(rv), "nng_pair1_open: %s", nng_strerror(rv));
		goto fail;
	}
	s->open = true;
	if ((rv = nng_socket_set_size(s->sock, NNG_OPT_RECVMAXSZ, 2 * max))
	        != 0
	    || (rv = nng_socket_set_int(s->sock, NNG_OPT_SENDBUF,
	            o->sendbuf > 0 ? o->sendbuf : 256))
	        != 0
	    || (rv = nng_socket_set_ms(s->sock, NNG_OPT_RECONNMINT,
	            (nng_duration) (o->redial_ms > 0 ? o->redial_ms : 200)))
	        != 0
	    || (rv = nng_socket_set_ms(s->sock, NNG_OPT_RECONNMAXT,
	            (nng_duration) (o->redial_ms > 0 ? 4 * o->redial_ms
	                                             : 1000)))
	        != 0
	    || (rv = nng_socket_get_int(s->sock, NNG_OPT_RECVFD, &s->fd))
	        != 0) {
		rc = mcf_errinfo_set(
		    ei, from_nng(rv), "socket options: %s", nng_strerror(rv));
		goto fail;
	}
	if (s->notify != NULL) {
		nng_pipe_notify(
		    s->sock, NNG_PIPE_EV_ADD_POST, pipe_cb, s->notify);
		nng_pipe_notify(
		    s->sock, NNG_PIPE_EV_REM_POST, pipe_cb, s->notify);
	}
	rc = mcf_proto_dial(s->sock, s->url, o->tls, &s->dialer, ei);
	if (rc != MCF_OK)
		goto fail;
	*out = s;
	return MCF_OK;
fail:
	mcf_session_destroy(s);
	return rc;
}

void
mcf_session_destroy(mcf_session *s)
{
	if (s == NULL)
		return;
	if (s->open) {
		/* No pipe callbacks during the close. */
		nng_pipe_notify(s->sock, NNG_PIPE_EV_ADD_POST, NULL, NULL);
		nng_pipe_notify(s->sock, NNG_PIPE_EV_REM_POST, NULL, NULL);
		nng_dialer_close(s->dialer);
		mcf_proto_close_bounded(s->sock, CLOSE_WAIT_MS);
	}
	mcf_proto_conn_destroy(s->conn);
	free(s->url);
	free(s);
}

int
mcf_session_id(const mcf_session *s)
{
	return nng_socket_id(s->sock);
}

int
mcf_session_fd(const mcf_session *s)
{
	return s->fd;
}

const char *
mcf_session_url(const mcf_session *s)
{
	return s->url;
}

mcf_proto_conn *
mcf_session_conn(mcf_session *s)
{
	return s->conn;
}

int
mcf_session_send(mcf_session *s, const mcf_proto_msg *m, mcf_errinfo *ei)
{
	uint8_t *frame = NULL;
	size_t   len   = 0;
	int      rc    = mcf_proto_conn_seal(s->conn, m, &frame, &len, ei);
	if (rc != MCF_OK)
		return rc;
	nng_msg *msg = NULL;
	int      rv  = nng_msg_alloc(&msg, len);
	if (rv != 0)
		mcf_panic("session: nng_msg_alloc failed");
	memcpy(nng_msg_body(msg), frame, len);
	free(frame);
	rv = nng_sendmsg(s->sock, msg, NNG_FLAG_NONBLOCK);
	if (rv != 0) {
		nng_msg_free(msg);
		return mcf_errinfo_set(ei, from_nng(rv), "send %s: %s",
		    mcf_proto_msg_type_name(m->type), nng_strerror(rv));
	}
	return MCF_OK;
}

int
mcf_session_recv(mcf_session *s, mcf_proto_msg **out, mcf_proto_reject *rej)
{
	nng_msg *msg = NULL;
	int      rv  = nng_recvmsg(s->sock, &msg, NNG_FLAG_NONBLOCK);
	if (rv != 0)
		return from_nng(rv);
	int rc = mcf_proto_conn_open(
	    s->conn, nng_msg_body(msg), nng_msg_len(msg), out, NULL, rej);
	nng_msg_free(msg);
	return rc;
}

/*
 * session.h — one dial session of a worker to a coordinator: an NNG pair1
 * socket dialing one URL, and the mcf_proto_conn that seals and opens its
 * frames (proto/README.md "Transport expectations").
 *
 * A session lives from a dial to the hang-up.  It never outlives its pipe
 * in spirit: when the pipe drops, the owner destroys the session and makes
 * a new one (new socket, new conn, new protocol session id) after reading
 * the coordinator Lease again, so that every connection starts with HELLO
 * and no frame of an old connection is ever taken for a new one.
 *
 * No NNG aio is used.  The owner polls mcf_session_fd() (NNG_OPT_RECVFD,
 * readable while a message waits) together with its other descriptors and
 * calls mcf_session_recv() until MCF_EAGAIN; sends are non-blocking into
 * the socket's send buffer, and a frame that does not fit is dropped
 * (the protocol tolerates lost frames).  The only code NNG runs on its
 * own threads is the pipe notification, which calls the owner's
 * mcf_session_notify function: it must only record the event and wake the
 * owner (STYLE.md §7).
 *
 * Thread model: one owner thread for everything except the notify
 * callback.  The key ring, replay tracker and rejection counters are the
 * process's, shared by every session and borrowed.
 */
#ifndef MCF_WORKER_SESSION_H
#define MCF_WORKER_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conn.h"
#include "err.h"
#include "msg.h"
#include "transport.h"

/* Pipe notifications.  The struct must stay valid until every session
 * created with it is destroyed (keep it in an object that outlives
 * them).  `fn` runs on an NNG thread with `sock` = mcf_session_id() of
 * the session whose socket gained (`added`) or lost a pipe. */
typedef struct mcf_session_notify {
	void (*fn)(void *arg, int sock, bool added);
	void *arg;
} mcf_session_notify;

typedef struct mcf_session_opts {
	const char       *url;    /* borrowed for the call */
	mcf_proto_keys   *keys;   /* borrowed until destroy */
	mcf_proto_replay *replay; /* borrowed until destroy */
	mcf_proto_reject_stats
	                   *stats; /* borrowed until destroy; may be NULL */
	size_t              max_frame; /* 0: the proto default (4 MiB) */
	mcf_session_notify *notify;    /* may be NULL; see above */
	int                 sendbuf;   /* messages; 0: 256 */
	int64_t             redial_ms; /* dialer retry; 0: 200 */
	const mcf_proto_tls_opts *tls; /* tls+tcp:// (transport.h); may
	                                  be NULL */
} mcf_session_opts;

typedef struct mcf_session mcf_session;

/* Opens a pair1 socket with NNG_OPT_RECVMAXSZ at twice the frame bound
 * (so oversize frames reach the conn and are counted as too_big), starts
 * a non-blocking dial of opts->url (NNG keeps retrying it) and creates
 * the conn.  Errors, with a message in `ei`: MCF_EINVAL (a bad URL or
 * option), MCF_EUNSUPP (a transport this NNG lacks), MCF_EIO.  *out is
 * new (mcf_session_destroy); untouched on failure. */
int mcf_session_create(
    mcf_session **out, const mcf_session_opts *opts, mcf_errinfo *ei);

/* Closes the socket (its pipe, its dialer, queued frames) and frees the
 * conn.  Accepts NULL. */
void mcf_session_destroy(mcf_session *s);


/* The socket id notifications carry (> 0). */
int mcf_session_id(const mcf_session *s);

/* A descriptor readable while a message waits; -1 if NNG gave none. */
int mcf_session_fd(const mcf_session *s);

/* The URL dialed (borrowed until destroy). */
const char *mcf_session_url(const mcf_session *s);

/* The conn, for mcf_proto_conn_reject() (borrowed until destroy). */
mcf_proto_conn *mcf_session_conn(mcf_session *s);

/* Seals `m` (borrowed) and queues the frame without blocking.  MCF_OK;
 * MCF_EINVAL or MCF_ETOOBIG from sealing (message in `ei`); MCF_EAGAIN
 * when the send buffer is full or no pipe can take it (the frame is
 * dropped); MCF_ECLOSED. */
int mcf_session_send(mcf_session *s, const mcf_proto_msg *m, mcf_errinfo *ei);

/* Takes one received frame without blocking.  MCF_OK: *out is a new
 * message (mcf_proto_msg_destroy).  MCF_EAGAIN: nothing waiting.  Any
 * other code: the frame was rejected (logged and counted by the conn;
 * `rej` may be NULL) — drop it and go on. */
int mcf_session_recv(
    mcf_session *s, mcf_proto_msg **out, mcf_proto_reject *rej);

#endif /* MCF_WORKER_SESSION_H */

/*
 * conn.c — per-connection protocol state (contract in conn.h).
 *
 * A conn is little more than a session id, a sequence counter and
 * borrowed pointers to the process-wide key ring, replay tracker and
 * counters.  Opening a frame is frame checks, then payload decoding, with
 * exactly one outcome recorded per frame: accepted, or rejected under one
 * reason.
 */
#include "conn.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include <openssl/rand.h>

#include "alloc.h"

struct mcf_proto_conn {
	enum mcf_proto_peer     self;
	enum mcf_proto_peer     peer_role;
	mcf_proto_keys         *keys;   /* borrowed */
	mcf_proto_replay       *replay; /* borrowed */
	mcf_proto_reject_stats *stats;  /* borrowed; may be NULL */
	size_t                  max_frame;
	char                   *peer; /* owned */
	uint64_t                session;
	_Atomic uint64_t        next_seq;
};

int
mcf_proto_conn_create(
    mcf_proto_conn **out, const mcf_proto_conn_opts *opts, mcf_errinfo *ei)
{
	if (opts == NULL || opts->keys == NULL || opts->replay == NULL)
		return mcf_errinfo_set(ei, MCF_EINVAL,
		    "a protocol connection needs a key ring and a replay "
		    "tracker");
	if (opts->self != MCF_PROTO_PEER_COORDINATOR
	    && opts->self != MCF_PROTO_PEER_WORKER)
		return mcf_errinfo_set(ei, MCF_EINVAL,
		    "a protocol connection belongs to a coordinator or a "
		    "worker");
	size_t max = opts->max_frame == 0 ? MCF_PROTO_MAX_FRAME_DEFAULT
	                                  : opts->max_frame;
	if (max < MCF_PROTO_MAX_FRAME_MIN || max > UINT32_MAX)
		return mcf_errinfo_set(ei, MCF_EINVAL,
		    "max frame size %zu is outside %zu..%u", max,
		    MCF_PROTO_MAX_FRAME_MIN, UINT32_MAX);

	uint64_t session = 0;
	while (session == 0)
		if (RAND_bytes((unsigned char *) &session, sizeof(session))
		    != 1)
			return mcf_errinfo_set(ei, MCF_EINTERNAL,
			    "no random session id: RAND_bytes failed");

	mcf_proto_conn *c = mcf_calloc(1, sizeof(*c));
	c->self           = opts->self;
	c->peer_role      = opts->self == MCF_PROTO_PEER_COORDINATOR
	         ? MCF_PROTO_PEER_WORKER
	         : MCF_PROTO_PEER_COORDINATOR;
	c->keys           = opts->keys;
	c->replay         = opts->replay;
	c->stats          = opts->stats;
	c->max_frame      = max;
	c->peer           = mcf_strdup(opts->peer != NULL ? opts->peer : "?");
	c->session        = session;
	atomic_init(&c->next_seq, 1);
	*out = c;
	return MCF_OK;
}

void
mcf_proto_conn_destroy(mcf_proto_conn *c)
{
	if (c == NULL)
		return;
	free(c->peer);
	free(c);
}

uint64_t
mcf_proto_conn_session(const mcf_proto_conn *c)
{
	return c->session;
}

int
mcf_proto_conn_seal(mcf_proto_conn *c, const mcf_proto_msg *m, uint8_t **frame,
    size_t *len, mcf_errinfo *ei)
{
	uint8_t *payload = NULL;
	size_t   plen    = 0;
	int      rv;

	if (frame == NULL || len == NULL)
		return mcf_errinfo_set(ei, MCF_EINVAL, "missing argument");
	rv = mcf_proto_msg_encode(m, c->self, &payload, &plen, ei);
	if (rv != MCF_OK)
		return rv;
	if (plen > c->max_frame - MCF_PROTO_OVERHEAD) {
		free(payload);
		return mcf_errinfo_set(ei, MCF_ETOOBIG,
		    "%s of %zu bytes does not fit in a %zu-byte frame",
		    mcf_proto_msg_type_name((int) m->type), plen,
		    c->max_frame);
	}

	mcf_proto_keyset ks;
	mcf_proto_hdr    h = { 0 };
	mcf_proto_keys_get(c->keys, &ks);
	h.major   = MCF_PROTO_MAJOR;
	h.minor   = MCF_PROTO_MINOR;
	h.type    = (uint8_t) m->type;
	h.session = c->session;
	h.seq
	    = atomic_fetch_add_explicit(&c->next_seq, 1, memory_order_relaxed);
	rv = mcf_proto_frame_seal(
	    &h, &ks, payload, plen, c->max_frame, frame, len, ei);
	mcf_proto_keyset_clear(&ks);
	free(payload);
	return rv;
}

static int
record(mcf_proto_conn *c, const mcf_proto_reject *r, mcf_proto_reject *out)
{
	mcf_proto_reject_stats_record(c->stats, r, c->peer);
	if (out != NULL && out != r)
		*out = *r;
	return r->code;
}

int
mcf_proto_conn_open(mcf_proto_conn *c, const void *frame, size_t len,
    mcf_proto_msg **out, mcf_proto_hdr *hdr, mcf_proto_reject *rej)
{
	mcf_proto_reject r;
	mcf_proto_frame  f;
	mcf_proto_keyset ks;
	int              rv;

	*out = NULL;
	mcf_proto_keys_get(c->keys, &ks);
	rv = mcf_proto_frame_open(
	    frame, len, &ks, c->replay, c->max_frame, &f, &r);
	mcf_proto_keyset_clear(&ks);
	bool authentic = rv == MCF_OK || r.reason == MCF_PROTO_REJECT_REPLAY
	    || r.reason == MCF_PROTO_REJECT_VERSION;
	if (authentic && hdr != NULL)
		*hdr = f.hdr;
	/* VERSION_REJECT keeps one format in every major (version.h). */
	if (rv != MCF_OK
	    && !(r.reason == MCF_PROTO_REJECT_VERSION
	        && f.hdr.type == MCF_PROTO_MSG_VERSION_REJECT))
		return record(c, &r, rej);

	rv = mcf_proto_msg_decode(f.hdr.type, f.hdr.minor, f.payload,
	    f.payload_len, c->peer_role, out, &r);
	if (rv != MCF_OK)
		return record(c, &r, rej);
	mcf_proto_reject_stats_accept(c->stats);
	mcf_proto_reject_clear(rej);
	return MCF_OK;
}

int
mcf_proto_conn_reject(mcf_proto_conn *c, enum mcf_proto_reason reason,
    mcf_proto_reject *rej, const char *fmt, ...)
{
	mcf_proto_reject r;
	va_list          ap;
	r.reason = reason;
	r.code   = mcf_proto_reject_code(reason);
	va_start(ap, fmt);
	vsnprintf(r.msg, sizeof(r.msg), fmt, ap);
	va_end(ap);
	return record(c, &r, rej);
}

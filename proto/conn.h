/*
 * conn.h — one side of one coordinator⇄worker connection, as far as the
 * protocol goes: turns messages into signed frames and frames into
 * checked messages, and logs and counts every rejection.
 *
 * Transport is not here.  The coordinator and the worker carry frames over
 * NNG, one frame per NNG message body, and create one mcf_proto_conn per
 * connection (NNG pipe): each conn draws its own random session id, so
 * the receiver's replay tracker tells connections apart.  The objects a
 * conn works with are shared by the whole process and only borrowed: the
 * key ring (keys.h), the replay tracker (replay.h) and the rejection
 * counters (reject.h).
 *
 * Sending: mcf_proto_conn_seal() encodes a message and seals it into a
 * frame numbered with the conn's next sequence number.  Frames must reach
 * the wire in the order they were sealed (the receiver refuses a sequence
 * number that goes back, as a replay), so seal-then-send must be one
 * serialized step per conn: one thread, or the conn owner's lock held
 * across both.  A frame that could not be sent is simply dropped; the gap
 * in sequence numbers is harmless.
 *
 * Receiving: mcf_proto_conn_open() runs the frame checks (frame.h), then
 * decodes the payload (msg.h).  Frames of one session must be opened in
 * the order they arrived; NNG delivers a pipe's messages in order, so
 * opening them from the pipe's receive callback, or from one queue per
 * pipe, is right.
 *
 * What the caller still decides, and records with mcf_proto_conn_reject()
 * so that it is logged and counted like the rest:
 *   - the fencing term of coordinator messages (term.h): a worker refuses
 *     a lower term with MCF_PROTO_REJECT_LOWER_TERM;
 *   - version negotiation on HELLO (version.h): the coordinator records
 *     MCF_PROTO_REJECT_VERSION when mcf_proto_version_negotiate() refuses
 *     a worker of the same major; a frame of another major was already
 *     recorded by mcf_proto_conn_open().
 *
 * Thread model: mcf_proto_conn_open() and mcf_proto_conn_reject() may run
 * on any thread, concurrently with each other and with seal (the shared
 * objects lock themselves); mcf_proto_conn_seal() is thread-safe too, but
 * see the ordering rule above.  create and destroy belong to the owner.
 */
#ifndef MCF_PROTO_CONN_H
#define MCF_PROTO_CONN_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "frame.h"
#include "keys.h"
#include "msg.h"
#include "reject.h"
#include "replay.h"

typedef struct mcf_proto_conn mcf_proto_conn;

/* Options for mcf_proto_conn_create(): a plain value type. */
typedef struct mcf_proto_conn_opts {
	/* This side: a coordinator receives worker messages and sends
	 * coordinator messages, and the other way round. */
	enum mcf_proto_peer     self;
	mcf_proto_keys         *keys;   /* required; borrowed until destroy */
	mcf_proto_replay       *replay; /* required; borrowed until destroy */
	mcf_proto_reject_stats *stats;  /* may be NULL; borrowed */
	/* Bound on frames in both directions; 0: the default, 4 MiB.  At
	 * least MCF_PROTO_MAX_FRAME_MIN.  Set the NNG socket's
	 * NNG_OPT_RECVMAXSZ above it (e.g. twice it) so oversize frames
	 * reach mcf_proto_conn_open() and are counted as TOO_BIG instead
	 * of being dropped silently by NNG. */
	size_t max_frame;
	/* Who the peer is, for log lines ("tcp://10.0.0.7:41234",
	 * "mcfleet-worker-3"); copied; may be NULL. */
	const char *peer;
} mcf_proto_conn_opts;

/* Creates a conn with a fresh random session id (never 0) and sequence
 * numbers starting at 1.  MCF_EINVAL (message in `ei`) for a missing
 * keys/replay, a bad `self` or a max_frame below the minimum.  *out is
 * new (mcf_proto_conn_destroy); untouched on failure. */
int mcf_proto_conn_create(
    mcf_proto_conn **out, const mcf_proto_conn_opts *opts, mcf_errinfo *ei);

/* Frees the conn; accepts NULL.  The shared objects are not touched. */
void mcf_proto_conn_destroy(mcf_proto_conn *c);

/* The conn's session id (for logs). */
uint64_t mcf_proto_conn_session(const mcf_proto_conn *c);

/* Encodes `m` (borrowed) as sent by this side and seals it with the
 * current key into a new frame (*frame, free()) of *len bytes, ready to be
 * an NNG message body.  Errors, with a message in `ei` (may be NULL):
 * MCF_EINVAL (the message is invalid or not one this side sends),
 * MCF_ETOOBIG (the frame would exceed max_frame: split the work or raise
 * the bound).  A failed seal consumes no sequence number. */
int mcf_proto_conn_seal(mcf_proto_conn *c, const mcf_proto_msg *m,
    uint8_t **frame, size_t *len, mcf_errinfo *ei);

/* Checks and decodes a received frame (`frame`, `len` borrowed for the
 * call).  On success returns MCF_OK with *out new (mcf_proto_msg_destroy)
 * and counts an accepted frame.  On failure returns the reason's code,
 * fills `rej` (may be NULL), logs and counts the rejection, and leaves
 * *out NULL; the caller drops the frame and carries on (no rejection
 * closes the connection by itself; a transport may choose to close after
 * BAD_AUTH or VERSION).  `hdr` (may be NULL) receives the header whenever
 * the HMAC verified: on success, and for REPLAY, VERSION, MALFORMED payload,
 * UNKNOWN_TYPE and UNEXPECTED.  A coordinator answers a VERSION rejection
 * of a HELLO (hdr->type == MCF_PROTO_MSG_HELLO) with a VERSION_REJECT
 * built by mcf_proto_version_negotiate(hdr->major, hdr->minor, ...).  A
 * VERSION_REJECT frame is decoded whatever its major, so a worker can
 * read why it was turned away. */
int mcf_proto_conn_open(mcf_proto_conn *c, const void *frame, size_t len,
    mcf_proto_msg **out, mcf_proto_hdr *hdr, mcf_proto_reject *rej);

/* Records a rejection the caller decided (LOWER_TERM, VERSION): logs and
 * counts it like mcf_proto_conn_open() does, fills `rej` (may be NULL)
 * and returns the reason's code. */
int mcf_proto_conn_reject(mcf_proto_conn *c, enum mcf_proto_reason reason,
    mcf_proto_reject *rej, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif /* MCF_PROTO_CONN_H */

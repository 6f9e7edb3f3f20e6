/*
 * version.h — the protocol version this build speaks, and negotiation.
 *
 * Versions are major.minor.  Within one major, minors are compatible both
 * ways: a newer minor only adds optional map fields (which older readers
 * ignore) and message types (which older readers count and ignore).  A
 * field added in a minor is never required, so a frame from an older minor
 * decodes in a newer one.  Anything else is a new major.
 *
 * Every frame header carries the sender's own version.  The worker's HELLO
 * opens a connection; the coordinator answers WELCOME with the negotiated
 * version (same major; the lower of the two minors) or VERSION_REJECT with
 * the range it supports and a sentence a human can act on ("coordinator
 * speaks 1.0–1.1, worker sent 2.0").  To make that possible across majors,
 * these never change in any version: the frame header layout and its
 * HMAC-SHA256 trailer, the type numbers of HELLO (1) and VERSION_REJECT (2),
 * and the VERSION_REJECT payload (below).
 *
 * Thread model: pure functions; any thread.
 */
#ifndef MCF_PROTO_VERSION_H
#define MCF_PROTO_VERSION_H

#include <stdint.h>

#include "err.h"

/* The version this build speaks (and writes in every frame header). */
#define MCF_PROTO_MAJOR 1
#define MCF_PROTO_MINOR 1
/* The oldest minor of MCF_PROTO_MAJOR this build still accepts. */
#define MCF_PROTO_MINOR_MIN 0

/* The VERSION_REJECT message body, frozen for every version: a plain value
 * type, fields public.  Wire keys in proto/README.md. */
typedef struct mcf_proto_version_reject {
	uint32_t major;      /* the rejecting side's major */
	uint32_t min_minor;  /* the oldest minor it accepts */
	uint32_t max_minor;  /* the newest minor it speaks */
	uint32_t peer_major; /* the version it was offered */
	uint32_t peer_minor;
	char     message[256]; /* human sentence, UTF-8 */
} mcf_proto_version_reject;

/* Coordinator side: decides whether a worker offering `peer_major`.
 * `peer_minor` (from its HELLO) can be served.  If so, returns MCF_OK and
 * sets *minor_out (may be NULL) to the negotiated minor: the lower of
 * `peer_minor` and MCF_PROTO_MINOR.  If not, returns MCF_EUNSUPP and fills
 * *reject (may be NULL) with this build's range, the offer and a message
 * such as "coordinator speaks 1.0–1.1, worker sent 2.0", to send back in
 * a VERSION_REJECT.  Does not count or log anything: the caller records
 * the rejection (mcf_proto_conn_reject with MCF_PROTO_REJECT_VERSION)
 * unless mcf_proto_conn_open() already did (a frame of another major). */
int mcf_proto_version_negotiate(uint32_t peer_major, uint32_t peer_minor,
    uint32_t *minor_out, mcf_proto_version_reject *reject);

#endif /* MCF_PROTO_VERSION_H */

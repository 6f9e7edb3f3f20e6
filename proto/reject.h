/*
 * reject.h — why a frame was refused, and the counters that count it.
 *
 * The rule is "a logged, counted rejection — never a crash — for
 * malformed, unauthenticated or replayed frames".  Every check in proto/
 * that refuses a frame names one reason from enum mcf_proto_reason and
 * fills an mcf_proto_reject with it, the mcf_err code that goes with it
 * and a sentence saying what was wrong.  An mcf_proto_reject_stats object
 * (one per process, shared by every connection) counts each reason
 * separately and logs each rejection as a JSON line, so an operator and
 * the end-to-end tests can see that one rogue frame of a kind raised its
 * own counter by exactly one.
 *
 * mcf_proto_conn_open() (conn.h) records its rejections itself; callers
 * record the ones they decide (a lower fencing term, an unsupported minor
 * version) with mcf_proto_conn_reject(), which lands here too.
 *
 * Thread model: mcf_proto_reject_* functions on a caller's struct are
 * plain value code.  An mcf_proto_reject_stats may be used from any thread
 * (NNG callbacks included): counters are atomics, and the log rate limiter
 * takes the object's mutex `mtx` briefly, never while logging.
 */
#ifndef MCF_PROTO_REJECT_H
#define MCF_PROTO_REJECT_H

#include <stdint.h>

#include "err.h"
#include "metrics.h"

/* Why a frame was refused.  The values are stable (they index counters);
 * mcf_proto_reject_reason_name() gives the metric label. */
enum mcf_proto_reason {
	MCF_PROTO_REJECT_NONE = 0, /* not a rejection */
	/* Longer than the receiver's max frame size (MCF_ETOOBIG). */
	MCF_PROTO_REJECT_TOO_BIG,
	/* Bad header (magic, lengths, zero session or sequence), msgpack
	 * that is truncated, not well-formed, or not what the message type
	 * requires: wrong types, missing required fields, duplicate fields,
	 * strings that are not UTF-8 or hold NUL (MCF_EPROTO). */
	MCF_PROTO_REJECT_MALFORMED,
	/* The HMAC matches neither the current nor the previous key
	 * (MCF_EAUTH). */
	MCF_PROTO_REJECT_BAD_AUTH,
	/* Authentic, but its sequence number is not above the last one
	 * accepted from its session (MCF_EPROTO). */
	MCF_PROTO_REJECT_REPLAY,
	/* Another protocol major version, or a minor the receiver no longer
	 * supports (MCF_EUNSUPP). */
	MCF_PROTO_REJECT_VERSION,
	/* A coordinator message whose fencing term is lower than the highest
	 * the worker has seen (MCF_EPERM).  Decided by the worker with
	 * mcf_proto_term_cmp() and recorded with mcf_proto_conn_reject(). */
	MCF_PROTO_REJECT_LOWER_TERM,
	/* A message type this build does not know, from a peer of a newer
	 * minor version: ignored, as forward compatibility requires
	 * (MCF_EUNSUPP).  An unknown type from a peer of the same or an
	 * older minor is MALFORMED instead. */
	MCF_PROTO_REJECT_UNKNOWN_TYPE,
	/* A known message type that this side never receives (a coordinator
	 * message sent to the coordinator, a reflected frame) (MCF_EPROTO). */
	MCF_PROTO_REJECT_UNEXPECTED,
	MCF_PROTO_REJECT_COUNT /* number of values; not a reason */
};

/* The detail of one rejection: a plain value type, fields public. */
typedef struct mcf_proto_reject {
	enum mcf_proto_reason reason; /* MCF_PROTO_REJECT_NONE when cleared */
	int                   code;   /* the mcf_err returned with it */
	char                  msg[256]; /* one sentence, no newline */
} mcf_proto_reject;

/* Label value of a reason: "too_big", "malformed", "bad_auth", "replay",
 * "version", "lower_term", "unknown_type", "unexpected" ("none" for
 * MCF_PROTO_REJECT_NONE, "invalid" outside the enum).  Never NULL. */
const char *mcf_proto_reject_reason_name(enum mcf_proto_reason reason);

/* The mcf_err code that goes with `reason` (list above); MCF_OK for
 * MCF_PROTO_REJECT_NONE. */
int mcf_proto_reject_code(enum mcf_proto_reason reason);

/* Fills `r` (if not NULL) with `reason`, its code and a printf-formatted
 * message, and returns the code, so a failing path can
 * `return mcf_proto_reject_set(r, ...)`. */
int mcf_proto_reject_set(mcf_proto_reject *r, enum mcf_proto_reason reason,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Clears `r` (if not NULL) to NONE, MCF_OK and an empty message. */
void mcf_proto_reject_clear(mcf_proto_reject *r);

/* ---- counters ---- */

typedef struct mcf_proto_reject_stats mcf_proto_reject_stats;

/* Creates zeroed counters.  *out is new (mcf_proto_reject_stats_destroy). */
int mcf_proto_reject_stats_create(mcf_proto_reject_stats **out);

/* Frees `st`; accepts NULL.  Remove a metrics collector given `st` first. */
void mcf_proto_reject_stats_destroy(mcf_proto_reject_stats *st);

/* Counts the rejection `r` (borrowed) under its reason and logs it at warn
 * level with ID "PROTO-REJECT", naming `peer` (borrowed; may be NULL) and
 * the reason.  Logging is rate-limited per reason (at most 20 lines per
 * reason per 10 s, then one line saying how many were not logged);
 * counting never is.  A NULL `st` or a reason outside the enum is
 * ignored.  Any thread. */
void mcf_proto_reject_stats_record(
    mcf_proto_reject_stats *st, const mcf_proto_reject *r, const char *peer);

/* Counts one frame accepted (opened and decoded).  Any thread. */
void mcf_proto_reject_stats_accept(mcf_proto_reject_stats *st);

/* Number of rejections recorded for `reason` (0 outside the enum). */
uint64_t mcf_proto_reject_stats_get(
    const mcf_proto_reject_stats *st, enum mcf_proto_reason reason);

/* Number of frames counted accepted. */
uint64_t mcf_proto_reject_stats_accepted(const mcf_proto_reject_stats *st);

/* A metrics collector (metrics.h): emits
 *   mcfleet_proto_frames_rejected_total{reason="..."}  one per reason,
 *                                                       zeros included
 *   mcfleet_proto_frames_accepted_total
 * Register with mcf_metrics_add_collector(reg,
 * mcf_proto_reject_stats_collect, st); `arg` is the stats object. */
void mcf_proto_reject_stats_collect(mcf_metrics_writer *w, void *arg);

#endif /* MCF_PROTO_REJECT_H */

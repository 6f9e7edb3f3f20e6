/*
 * term.h — the fencing term every coordinator message carries
 * (ARCHITECTURE.md §4, "Single writer, no lost work").
 *
 * A term is the pair (leader Lease metadata.uid, spec.leaseTransitions),
 * as common/leaderelect.h's mcf_le_fence reads it when leadership is
 * acquired.  The rule a worker applies to every coordinator message:
 *
 *   - Same uid as the highest term it has seen: refuse a lower
 *     leaseTransitions (a deposed leader still talking), accept an equal
 *     one, accept and remember a higher one (a new leader).
 *   - A different uid (the Lease was deleted and re-created, so
 *     leaseTransitions started again): accept only once the Lease the
 *     worker last saw a leader of (uid `seen.uid`) is gone or expired as
 *     the worker itself observes it in the API server (the Lease now there
 *     has another uid, or has no holder, or its renewTime +
 *     leaseDurationSeconds has passed on the worker's clock).  Then the new
 *     term replaces the old one.
 *   - Nothing seen yet (empty uid): accept any term.
 *
 * mcf_proto_term_cmp() is the pure part of the rule; observing the Lease is
 * the worker's job, and mcf_proto_term_accept() combines the two.
 *
 * Thread model: pure functions on plain values; any thread.
 */
#ifndef MCF_PROTO_TERM_H
#define MCF_PROTO_TERM_H

#include <stdbool.h>
#include <stdint.h>

/* Longest uid, NUL included (Kubernetes uids are 36 characters). */
#define MCF_PROTO_TERM_UID_MAX 128

/* A fencing term: a plain value type, fields public.  The zero value
 * (uid "", transitions 0) means "no term". */
typedef struct mcf_proto_term {
	char    uid[MCF_PROTO_TERM_UID_MAX]; /* Lease metadata.uid */
	int64_t transitions;                 /* spec.leaseTransitions, >= 0 */
} mcf_proto_term;

/* How a received term `got` compares with the highest term seen. */
enum mcf_proto_term_order {
	MCF_PROTO_TERM_LOWER = -1, /* same uid, fewer transitions: refuse;
	                              also `got` empty while `seen` is not */
	MCF_PROTO_TERM_EQUAL  = 0, /* same term (or both empty): accept */
	MCF_PROTO_TERM_HIGHER = 1, /* same uid, more transitions, or nothing
	                              seen yet: accept and remember `got` */
	MCF_PROTO_TERM_OTHER_LEASE = 2, /* different uid: accept only once
	                                   the old Lease is gone or expired */
};

/* Compares `got` against `seen` (both borrowed for the call) as above. */
enum mcf_proto_term_order mcf_proto_term_cmp(
    const mcf_proto_term *seen, const mcf_proto_term *got);

/* The whole rule: true when a message carrying `got` is to be accepted by
 * a worker whose highest term seen is `seen`.  `old_lease_gone` is the
 * worker's own observation that the Lease of uid `seen->uid` is gone or
 * expired; it only matters for MCF_PROTO_TERM_OTHER_LEASE.  When this
 * returns true and the order is not EQUAL the caller replaces `seen` with
 * `got`. */
bool mcf_proto_term_accept(const mcf_proto_term *seen,
    const mcf_proto_term *got, bool old_lease_gone);

/* True when `t` holds a term (a non-empty uid). */
bool mcf_proto_term_is_set(const mcf_proto_term *t);

/* Sets `t` from a uid (borrowed, copied; cut at MCF_PROTO_TERM_UID_MAX - 1
 * bytes, which no Kubernetes uid reaches) and a transitions count. */
void mcf_proto_term_set(
    mcf_proto_term *t, const char *uid, int64_t transitions);

#endif /* MCF_PROTO_TERM_H */

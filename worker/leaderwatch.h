/*
 * leaderwatch.h — what a worker knows about the coordinator Lease
 * (docs/fleet.md "Finding the leader"): who holds it, where to dial, its
 * uid and transitions, and whether it is expired as this worker observes
 * it.
 *
 * The worker reads the Lease itself (a GET every second, and at once when
 * its connection drops) and feeds every result to
 * mcf_leaderwatch_observe(); this module only interprets them, so it is
 * tested without an API server.
 *
 * Expiry is judged as client-go judges a Lease it does not hold: never by
 * comparing renewTime with our clock, but by when this worker last saw the
 * record change.  The record is the Lease's spec (holder, renewTime,
 * duration, transitions, acquireTime) and its uid; when it changes,
 * `observed_ms` becomes now.  The Lease is valid while its holder is not
 * empty and now < observed_ms + leaseDurationSeconds.  Annotations (the
 * fleet address, the status URL) are taken from every read without
 * restarting the clock.
 *
 * "Gone or expired" for the fencing rule (proto/README.md, "Fencing rule")
 * is stricter than "not valid": the Lease of a uid is gone when a
 * successful read found no Lease or a Lease with another uid, and expired
 * when a successful read found no holder, or found the same record after
 * observed_ms + duration had passed.  A run of failed reads therefore
 * proves nothing: a worker cut off from the API server never accepts a
 * new Lease's term on the strength of its own blindness.
 *
 * Thread model: one owner thread; no locking.  Times are monotonic ms.
 */
#ifndef MCF_WORKER_LEADERWATCH_H
#define MCF_WORKER_LEADERWATCH_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

/* Annotations the coordinator writes on its Lease (docs/fleet.md). */
#define MCF_LEADERWATCH_ADDRESS_ANNOTATION "mcfleet.io/fleet-address"
#define MCF_LEADERWATCH_STATUS_ANNOTATION "mcfleet.io/status-url"

/* The current view: a plain value type. */
typedef struct mcf_leaderwatch_view {
	bool    read;   /* some read succeeded (found or not found) */
	bool    exists; /* the last successful read found the Lease */
	bool    valid;  /* holder not empty and not expired as observed */
	char    holder[256];
	char    address[512];    /* mcfleet.io/fleet-address, "" if none */
	char    status_url[512]; /* mcfleet.io/status-url, "" if none */
	char    uid[128];
	int64_t transitions;
	int64_t duration_ms;
	int64_t observed_ms; /* when the record last changed */
	int64_t read_ms;     /* last successful read; 0 none */
	int     last_err;    /* mcf_err of the last read; MCF_OK */
} mcf_leaderwatch_view;

typedef struct mcf_leaderwatch mcf_leaderwatch;

/* *out is new (mcf_leaderwatch_destroy).  Never fails. */
void mcf_leaderwatch_create(mcf_leaderwatch **out);
void mcf_leaderwatch_destroy(mcf_leaderwatch *lw);

/* Feeds one read made at `now_ms`: `rc` MCF_OK with `lease` (borrowed, a
 * coordination.k8s.io/v1 Lease), MCF_ENOENT (no such Lease), anything
 * else a failed read (the view stays as it was, `last_err` aside).
 * Returns true when holder, address, uid or existence changed. */
bool mcf_leaderwatch_observe(
    mcf_leaderwatch *lw, int rc, const json_t *lease, int64_t now_ms);

/* The view at `now_ms` (`valid` is computed for that time). */
void mcf_leaderwatch_view_get(
    const mcf_leaderwatch *lw, int64_t now_ms, mcf_leaderwatch_view *out);

/* True when the Lease of `uid` (borrowed) is gone or expired as proved by
 * a successful read (see above).  False for an empty uid. */
bool mcf_leaderwatch_gone(const mcf_leaderwatch *lw, const char *uid);

#endif /* MCF_WORKER_LEADERWATCH_H */

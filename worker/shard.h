/*
 * shard.h — the assignment a fleet worker applies (docs/fleet.md,
 * proto/README.md "The conversation"): the table of projects it runs, the
 * table version it applied and in which term, the highest fencing term it
 * has accepted, and what it still owes the coordinator (state reports and
 * STOPPED confirmations).
 *
 * Pure bookkeeping.  Starting and stopping a project, and asking how it is
 * doing, go through callbacks (mcf_shard_ops), which the worker maps onto
 * its controller manager and the unit tests onto a recorder; nothing here
 * touches the network, so every rule below is tested alone
 * (tests/worker_shard_test.c).
 *
 * Rules:
 *   - Fencing: mcf_shard_term_accept() applies proto/term.h's rule to the
 *     highest term seen and remembers a higher or other-Lease term it
 *     accepts.  The caller observes the coordinator Lease (whether the
 *     Lease of the uid seen is gone or expired).
 *   - A snapshot is the desired set: projects not listed are stopped,
 *     listed ones not running are started, a listed one whose endpoint
 *     changed is restarted there.  It clears a pending resync and sets the
 *     applied (term, version), whatever was applied before.
 *   - A delta applies only when its term equals the applied term and its
 *     base equals the applied version; otherwise it is a gap: the caller
 *     sends RESYNC_REQUEST, and deltas are ignored until the next
 *     snapshot.  Disengages run before engages.  A disengage of a project
 *     not running still yields a STOPPED (STOPPED is idempotent).
 *   - Every stop (snapshot or delta) queues the project for STOPPED:
 *     mcf_shard_stopped_due() hands each name out MCF_SHARD_STOPPED_SENDS
 *     times (the caller sends at once, then with each heartbeat), a
 *     snapshot forgets the older ones (the full ACK that follows no longer
 *     lists them, which tells the coordinator they stopped), and engaging
 *     the project again forgets it.
 *   - State reports: mcf_shard_poll() asks each running project for its
 *     state; a change of state (engaging, synced, failing) marks the
 *     project for the next partial report and restamps `since` with the
 *     wall clock.  A full report lists every project in the table and
 *     clears every mark; a partial one lists the marked projects and the
 *     stops not yet reported (state "stopped").
 *   - A project whose engage callback failed stays in the table as
 *     failing ("engage: REASON") and is retried by mcf_shard_poll() every
 *     MCF_SHARD_ENGAGE_RETRY_MS.
 *
 * Thread model: one owner thread (the worker's control thread) calls every
 * function except mcf_shard_status_json(), mcf_shard_count() and
 * mcf_shard_state_counts(), which any thread may call: they read under the
 * shard's mutex `mtx`, which the owner takes only while it changes the
 * table.  Callbacks run on the owner thread with no lock held.
 *
 * Ownership: every string passed in is borrowed for the call and copied.
 */
#ifndef MCF_WORKER_SHARD_H
#define MCF_WORKER_SHARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "err.h"
#include "msg.h"
#include "term.h"

/* Times each stopped project is named in a STOPPED frame. */
#define MCF_SHARD_STOPPED_SENDS 3
/* Delay before an engage that failed is tried again. */
#define MCF_SHARD_ENGAGE_RETRY_MS 5000

/* What a running project reports: a plain value type. */
typedef struct mcf_shard_pstatus {
	enum mcf_proto_pstate state; /* ENGAGING, SYNCED or FAILING */
	char                  reason[256];
	uint64_t              objects; /* objects cached */
} mcf_shard_pstatus;

/* The callbacks, all run on the owner thread; `arg` is passed to each. */
typedef struct mcf_shard_ops {
	/* Starts project `name` (borrowed) at `endpoint` (borrowed).  Must
	 * not block on the project's API server.  MCF_OK, or an error with a
	 * message in `ei`: the project then shows as failing. */
	int (*engage)(void *arg, const char *name, const char *endpoint,
	    mcf_errinfo *ei);
	/* Stops project `name`; returns once none of its reconcilers runs. */
	void (*disengage)(void *arg, const char *name);
	/* Fills `out` for a running project; MCF_ENOENT if it is unknown. */
	int (*status)(void *arg, const char *name, mcf_shard_pstatus *out);
	/* The wall clock in unix ms (stamps `since`) and a monotonic clock
	 * in ms (retries, engage latency). */
	int64_t (*wall_ms)(void *arg);
	int64_t (*mono_ms)(void *arg);
	/* Optional: a project reached SYNCED for the first time since it was
	 * engaged, `ms` after its engage. */
	void (*synced)(void *arg, const char *name, int64_t ms);
	void *arg; /* borrowed */
} mcf_shard_ops;

typedef struct mcf_shard mcf_shard;

/* Creates an empty shard: nothing applied, no term seen.  `ops` is copied;
 * engage, disengage, status, wall_ms and mono_ms are required (MCF_EINVAL).
 * *out is new (mcf_shard_destroy). */
int mcf_shard_create(const mcf_shard_ops *ops, mcf_shard **out);

/* Frees the shard without calling disengage (see mcf_shard_clear).
 * Accepts NULL. */
void mcf_shard_destroy(mcf_shard *sh);

/* ---- fencing ---- */

/* The highest term accepted so far (borrowed until the next call that
 * changes it); uid "" when none. */
const mcf_proto_term *mcf_shard_term_seen(const mcf_shard *sh);

/* How `got` compares with the highest term seen (term.h). */
enum mcf_proto_term_order mcf_shard_term_order(
    const mcf_shard *sh, const mcf_proto_term *got);

/* The fencing rule: true when a coordinator message carrying `got` may be
 * acted on, given the caller's observation `old_lease_gone` (the Lease of
 * the uid seen is gone or expired; it matters only for another uid).  An
 * accepted higher or other-Lease term becomes the highest seen. */
bool mcf_shard_term_accept(
    mcf_shard *sh, const mcf_proto_term *got, bool old_lease_gone);

/* ---- the table ---- */

/* What became of a delta. */
enum mcf_shard_apply {
	MCF_SHARD_APPLIED = 0, /* applied: send STOPPED (if due) and an ACK */
	MCF_SHARD_GAP,         /* not applicable: send RESYNC_REQUEST */
	MCF_SHARD_IGNORED,     /* a resync is pending: dropped */
};

/* Applies a snapshot (borrowed) whose term the caller accepted.  Duplicate
 * names: the first entry wins. */
void mcf_shard_apply_snapshot(mcf_shard *sh, const mcf_proto_snapshot *s);

/* Applies a delta (borrowed) whose term the caller accepted.  On
 * MCF_SHARD_GAP `why` (may be NULL) receives the reason for the
 * RESYNC_REQUEST ("delta base 17, applied 16"). */
enum mcf_shard_apply mcf_shard_apply_delta(
    mcf_shard *sh, const mcf_proto_delta *d, char *why, size_t cap);

/* The applied table: its term (uid "" when none) and version (0 none). */
void mcf_shard_applied(
    const mcf_shard *sh, mcf_proto_term *term, uint64_t *version);

/* True while deltas are ignored, waiting for a snapshot. */
bool mcf_shard_resync_pending(const mcf_shard *sh);

/* Stops every project (disengage callbacks) and queues each for STOPPED;
 * the applied table is kept.  For the end of a drain. */
void mcf_shard_clear(mcf_shard *sh);

/* ---- what the coordinator is owed ---- */

/* Refreshes every project's state through the status callback, retries
 * failed engages that are due, and returns true when some project has a
 * change not reported yet. */
bool mcf_shard_poll(mcf_shard *sh);

/* Builds an ACK's report list: with `full` every project in the table
 * (and every mark cleared), else the marked projects and unreported stops.
 * *out is new (mcf_shard_reports_free), NULL when *n is 0. */
void mcf_shard_reports(
    mcf_shard *sh, bool full, mcf_proto_report **out, size_t *n);

/* Frees a list from mcf_shard_reports(); accepts NULL. */
void mcf_shard_reports_free(mcf_proto_report *r, size_t n);

/* True when a partial report would list something. */
bool mcf_shard_has_changes(const mcf_shard *sh);

/* The projects to name in a STOPPED frame now: those stopped that were
 * handed out fewer than MCF_SHARD_STOPPED_SENDS times; each is counted as
 * sent.  *names is a new NULL-terminated array of new strings
 * (mcf_shard_names_free); *n may be 0. */
void mcf_shard_stopped_due(mcf_shard *sh, char ***names, size_t *n);

/* True when some stopped project was never handed out for STOPPED. */
bool mcf_shard_stopped_owed(const mcf_shard *sh);

/* Frees a NULL-terminated name array; accepts NULL. */
void mcf_shard_names_free(char **names);

/* ---- for status pages (any thread) ---- */

/* Number of projects in the table. */
size_t mcf_shard_count(mcf_shard *sh);

/* Projects in the table per state: engaging, synced, failing. */
void mcf_shard_state_counts(
    mcf_shard *sh, size_t *engaging, size_t *synced, size_t *failing);

/* A new JSON array (json_decref) of {name, endpoint, state, reason,
 * since (RFC 3339 UTC), objects}, sorted by name. */
json_t *mcf_shard_status_json(mcf_shard *sh);

/* RFC 3339 UTC with milliseconds ("2026-01-02T15:04:05.123Z") of unix ms
 * `ms` into `buf` (at least 32 bytes). */
void mcf_shard_rfc3339(int64_t ms, char *buf, size_t cap);

#endif /* MCF_WORKER_SHARD_H */

/*
 * leaderelect.h — Lease-based leader election (KUBE_API.md §6), mirroring
 * client-go 1.32's leaderelection package on a coordination.k8s.io/v1
 * Lease.
 *
 * Thread model: an elector owns one thread, started by mcf_le_start and
 * joined by mcf_le_stop.  That thread alone creates and uses the elector's
 * REST client (STYLE.md §7: a curl handle stays on its thread) and runs the
 * callbacks, one at a time, with no lock held.  Callbacks must be short:
 * while one runs the elector neither renews nor notices a lost lease, so
 * hand the work to another thread (a queue, a flag) and return.  A callback
 * must not call mcf_le_stop or mcf_le_destroy on its own elector (that
 * would join the calling thread).  mcf_le_is_leader, mcf_le_term and
 * mcf_le_leader may be called from any thread, including callbacks; they
 * read a snapshot under the elector's mutex.  mcf_le_start, mcf_le_stop
 * and mcf_le_destroy are called by the owner thread only.
 *
 * Fencing (ARCHITECTURE.md §4): a term is the pair (Lease uid,
 * leaseTransitions) read from the Lease when leadership was acquired.
 */
#ifndef MCF_COMMON_LEADERELECT_H
#define MCF_COMMON_LEADERELECT_H

#include <stdbool.h>
#include <stdint.h>

#include "err.h"
#include "kubeconfig.h"

typedef struct mcf_le mcf_le;

/* A leadership term, the fencing token of ARCHITECTURE.md §4: a plain
 * value type, compared as (uid, transitions). */
typedef struct mcf_le_fence {
	char    uid[128];    /* the Lease's metadata.uid */
	int32_t transitions; /* its spec.leaseTransitions */
} mcf_le_fence;

/* Defaults used for a zero timing field (controller-runtime's). */
#define MCF_LE_DEFAULT_LEASE_DURATION_MS 15000
#define MCF_LE_DEFAULT_RENEW_DEADLINE_MS 10000
#define MCF_LE_DEFAULT_RETRY_PERIOD_MS 2000

typedef struct mcf_le_config {
	const char *namespace; /* the Lease's namespace (not NULL/"") */
	const char *name;      /* the Lease's name (not NULL/"") */
	const char *identity;  /* this candidate's holderIdentity */
	/* Timings; 0 picks the default.  Required: lease_duration_ms >
	 * renew_deadline_ms > 1.2 * retry_period_ms, all positive.  The
	 * Lease carries leaseDurationSeconds = lease_duration_ms rounded up
	 * to whole seconds. */
	int64_t lease_duration_ms;
	int64_t renew_deadline_ms;
	int64_t retry_period_ms;
	/* Callbacks (each may be NULL), run on the elector thread with `arg`.
	 * on_started_leading: this candidate now holds the Lease; `term` is
	 * borrowed for the call.  on_stopped_leading: it no longer does (a
	 * renewal did not succeed within renew_deadline_ms, or mcf_le_stop
	 * while leading; after the release when there is one).  Stop leading
	 * work at once.  on_new_leader: the observed non-empty holder changed
	 * (self included); `identity` is borrowed for the call. */
	void (*on_started_leading)(void *arg, const mcf_le_fence *term);
	void (*on_stopped_leading)(void *arg);
	void (*on_new_leader)(void *arg, const char *identity);
	void *arg; /* borrowed; passed to the callbacks */
	/* Annotations written on the Lease with every acquire and renew
	 * (metadata.annotations), as NULL-terminated key/value pairs, or
	 * NULL: how a leader publishes where to reach it (the coordinator's
	 * fleet address and status URL, a worker's weight).  Copied. */
	const char *const *annotations;
} mcf_le_config;

/* Sets (adds or changes) one annotation written with every later acquire
 * and renew: a holder publishing state that changes (a worker's count of
 * engaged projects).  Any thread. */
void mcf_le_set_annotation(mcf_le *le, const char *key, const char *value);

/* Checks `cfg` as mcf_le_create does, after applying the defaults.
 * Returns 0 or MCF_EINVAL with a message in `ei` (may be NULL). */
int mcf_le_config_check(const mcf_le_config *cfg, mcf_errinfo *ei);

/* Creates a stopped elector.  `cfg` is borrowed for the call (strings are
 * copied).  Errors: MCF_EINVAL (see mcf_le_config_check).  On success
 * `*out` is new (mcf_le_destroy); on failure untouched. */
int mcf_le_create(const mcf_le_config *cfg, mcf_le **out, mcf_errinfo *ei);

/* Starts the elector thread, which creates its own REST client from `kc`
 * and `user_agent` (both borrowed for the call) and then tries to acquire
 * the Lease every retry period (jittered), renewing while it leads.
 * Returns once the client exists: 0, MCF_EBUSY (already started), or the
 * error of mcf_kc_create / pthread_create (the thread is then gone).
 * curl_global_init must have been called by main(). */
int mcf_le_start(mcf_le *le, const mcf_kubeconfig *kc, const char *user_agent,
    mcf_errinfo *ei);

/* True while this candidate leads (between on_started_leading and
 * on_stopped_leading).  Any thread. */
bool mcf_le_is_leader(mcf_le *le);

/* When leading, copies the current term to `*out` and returns true; else
 * returns false and leaves `*out` untouched.  Any thread. */
bool mcf_le_term(mcf_le *le, mcf_le_fence *out);

/* The holder identity last observed on the Lease ("" when released), as a
 * new string (free()), or NULL when none was observed yet.  Any thread. */
char *mcf_le_leader(mcf_le *le);

/* Stops the elector and joins its thread; idempotent, and a no-op on an
 * elector never started.  If it leads and `release` is true, it first
 * releases the Lease as client-go's ReleaseOnCancel does (holderIdentity
 * "", leaseDurationSeconds 1, leaseTransitions unchanged) so a standby can
 * take over at its next retry; with `release` false the Lease is left to
 * expire (as after a crash).  on_stopped_leading runs (on the elector
 * thread) before this returns if it was leading.  Waits for the request
 * in flight: at most about three request deadlines of renew_deadline_ms / 5
 * (at least 100 ms) each, plus the release. */
void mcf_le_stop(mcf_le *le, bool release);

/* Stops (without release) if still running, then frees `le`.  NULL is
 * allowed. */
void mcf_le_destroy(mcf_le *le);

#endif /* MCF_COMMON_LEADERELECT_H */

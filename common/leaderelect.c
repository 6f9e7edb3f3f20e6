/*
 * leaderelect.c — leader election on a coordination.k8s.io/v1 Lease,
 * following client-go 1.32 (leaderelection.go, leaselock.go).
 *
 * The elector thread alternates two loops until stopped:
 *
 *   acquire  try_acquire_or_renew every retry period, jittered by up to
 *            1.2 × retry (client-go's JitterFactor), until it succeeds;
 *   renew    try_acquire_or_renew every retry period; a success resets the
 *            renew deadline; when no renewal has succeeded for
 *            renew_deadline_ms the candidate stops leading and goes back to
 *            acquiring.  Each request is bounded by call_ms (a fifth of
 *            the renew deadline) and none starts unless it would end by
 *            the deadline, so leadership ends by the deadline, and since
 *            lease_duration > renew_deadline, before any other candidate
 *            can consider the Lease expired.
 *
 * try_acquire_or_renew:
 *   1. fast path: when leading and the observed record is still valid, PUT
 *      the cached Lease (its last resourceVersion) with renewTime = now,
 *      keeping acquireTime and leaseTransitions.  Any failure falls
 *      through to the slow path.
 *   2. GET the Lease.  404: POST a new one (holder self, transitions 0); a
 *      409 AlreadyExists means another candidate won the race.
 *   3. If the record's bytes differ from the ones last observed, remember
 *      them and set observed_ms = now (this process's monotonic clock).
 *      A non-empty holder other than self whose observed_ms +
 *      leaseDurationSeconds is still in the future holds the Lease: give
 *      up for this round.  renewTime is never compared with our clock.
 *   4. PUT the fetched Lease with holder self and renewTime = now; when
 *      taking over, acquireTime = now and leaseTransitions + 1; when
 *      already the holder, both are kept.  409 Conflict: lost.
 *
 * Every successful write makes the written record the observed one, with
 * observed_ms = now, and caches the server's answer for the next fast path.
 *
 * Locking: `mtx` protects the snapshot readable from other threads
 * (leading, term, leader) and the stop request; the thread-private state
 * (client, cached Lease, observed record) needs none.  No lock is held
 * across a request or a callback.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "alloc.h"
#include "err.h"
#include "kclient.h"
#include "leaderelect.h"
#include "log.h"
#include "metrics.h"

#define NS_PER_MS INT64_C(1000000)

struct mcf_le {
	/* Configuration, fixed at create. */
	char *namespace;  /* owned */
	char   *name;     /* owned */
	char   *identity; /* owned */
	int64_t lease_ms;
	int64_t renew_deadline_ms;
	int64_t retry_ms;
	int32_t lease_s; /* leaseDurationSeconds we write */
	int64_t call_ms; /* deadline of one request, all its attempts */
	void (*on_started)(void *, const mcf_le_fence *);
	void (*on_stopped)(void *);
	void (*on_new_leader)(void *, const char *);
	void   *arg;         /* borrowed */
	json_t *annotations; /* owned: object of strings, or NULL; values
	                        change under mtx (mcf_le_set_annotation) */

	/* Owner-thread state. */
	pthread_t thread;
	bool      started; /* the thread exists and is not joined */

	/* Shared, under mtx. */
	pthread_mutex_t mtx;
	pthread_cond_t  cv; /* stop requests; start handshake */
	bool            stopping;
	bool            release;
	bool            leading;
	mcf_le_fence    term;
	char           *leader; /* owned; last observed holder, or NULL */
	bool            start_done;
	int             start_rc;
	mcf_errinfo     start_ei;
	/* Borrowed from mcf_le_start's caller until start_done. */
	const mcf_kubeconfig *start_kc;
	const char           *start_ua;

	/* Elector-thread state. */
	mcf_kc  *kc;       /* owned */
	json_t  *cached;   /* owned: the last Lease the server returned */
	char    *obs_raw;  /* owned: the observed record's bytes */
	json_t  *obs_spec; /* owned: the observed record (Lease spec) */
	int64_t  obs_ms;   /* when obs_raw last changed, monotonic */
	char    *reported; /* owned: last holder given to on_new_leader */
	unsigned seed;     /* jitter */
};

/* ---- small helpers ------------------------------------------------------ */

/* leader_election_master_status{name}: 1 while this process leads the
 * Lease `name`, as client-go reports it. */
static void
master_status(mcf_le *le, double v)
{
	static const char *const labels[] = {"name", NULL};
	mcf_metrics_family      *fam;
	mcf_metrics_series      *s;
	const char *const        values[] = {le->name, NULL};
	if (mcf_metrics_gauge_register(mcf_metrics_default(),
	        "leader_election_master_status",
	        "Gauge of if the reporting system is master of the relevant "
	        "lease, 0 indicates backup, 1 indicates master. 'name' is the "
	        "string used to identify the lease.",
	        labels, &fam) == MCF_OK &&
	    mcf_metrics_series_get(fam, values, &s) == MCF_OK)
		mcf_metrics_gauge_set(s, v);
}

static void
le_lock(mcf_le *le)
{
	if (pthread_mutex_lock(&le->mtx) != 0)
		mcf_panic("leaderelect: pthread_mutex_lock failed");
}

static void
le_unlock(mcf_le *le)
{
	if (pthread_mutex_unlock(&le->mtx) != 0)
		mcf_panic("leaderelect: pthread_mutex_unlock failed");
}

static int64_t
mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / NS_PER_MS;
}

/* MicroTime "2006-01-02T15:04:05.000000Z" of the wall clock into buf. */
static void
micro_now(char buf[32])
{
	struct timespec ts;
	struct tm       tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	size_t n = strftime(buf, 32, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, 32 - n, ".%06ldZ", ts.tv_nsec / 1000);
}

static const char *
spec_str(const json_t *spec, const char *key)
{
	const char *s = json_string_value(json_object_get(spec, key));
	return s != NULL ? s : "";
}

static int32_t
spec_int(const json_t *spec, const char *key)
{
	return (int32_t) json_integer_value(json_object_get(spec, key));
}

static mcf_kc_ref
le_ref(const mcf_le *le, bool named)
{
	mcf_kc_ref r = { "coordination.k8s.io", "v1", "leases", le->namespace,
		named ? le->name : NULL };
	return r;
}

/* The record bytes client-go compares: the spec, keys sorted. */
static char *
record_raw(const json_t *spec)
{
	char *s = json_dumps(spec, JSON_COMPACT | JSON_SORT_KEYS);
	if (s == NULL)
		mcf_panic("leaderelect: json_dumps failed");
	return s;
}

/* Makes `lease` (the server's answer to a read or a successful write) the
 * observed record: `changed_only` keeps observed_ms when the bytes are the
 * same (step 3 of the module comment); a write always resets it. */
static void
observe(mcf_le *le, const json_t *lease, bool changed_only)
{
	json_t *spec = json_object_get(lease, "spec");
	if (!json_is_object(spec))
		spec = json_object();
	else
		json_incref(spec);
	char *raw = record_raw(spec);
	if (changed_only && le->obs_raw != NULL
	    && strcmp(raw, le->obs_raw) == 0) {
		free(raw);
		json_decref(spec);
		return;
	}
	free(le->obs_raw);
	le->obs_raw = raw;
	json_decref(le->obs_spec);
	le->obs_spec = json_deep_copy(spec);
	if (le->obs_spec == NULL)
		mcf_panic("leaderelect: json_deep_copy failed");
	json_decref(spec);
	le->obs_ms = mono_ms();
}

static void
cache(mcf_le *le, json_t *lease)
{
	json_decref(le->cached);
	le->cached = lease; /* steals */
}

/* Holder of the observed record is self (client-go's IsLeader). */
static bool
obs_is_self(const mcf_le *le)
{
	return le->obs_spec != NULL
	    && strcmp(spec_str(le->obs_spec, "holderIdentity"), le->identity)
	    == 0;
}

static bool
obs_valid(const mcf_le *le, int64_t now)
{
	if (le->obs_spec == NULL)
		return false;
	int64_t d = spec_int(le->obs_spec, "leaseDurationSeconds");
	return le->obs_ms + d * 1000 > now;
}

/* Publishes the observed holder and reports a change to on_new_leader
 * (no lock held during the callback). */
static void
publish_holder(mcf_le *le)
{
	if (le->obs_spec == NULL)
		return;
	const char *h = spec_str(le->obs_spec, "holderIdentity");
	le_lock(le);
	if (le->leader == NULL || strcmp(le->leader, h) != 0) {
		free(le->leader);
		le->leader = mcf_strdup(h);
	}
	le_unlock(le);
	if (h[0] == '\0'
	    || (le->reported != NULL && strcmp(le->reported, h) == 0))
		return;
	free(le->reported);
	le->reported = mcf_strdup(h);
	mcf_log_info("LE-NEW-LEADER", "lease %s/%s: leader is %s",
	    le->namespace, le->name, h);
	if (le->on_new_leader != NULL)
		le->on_new_leader(le->arg, le->reported);
}

/* Merges our annotations into `lease`'s metadata.annotations. */
static void
set_annotations(const mcf_le *le, json_t *lease)
{
	json_t *meta = json_object_get(lease, "metadata");
	if (!json_is_object(meta))
		return;
	json_t *ann = json_object_get(meta, "annotations");
	if (!json_is_object(ann)) {
		ann = json_object();
		json_object_set_new(meta, "annotations", ann);
	}
	/* Fresh copies: the body must not share values that another thread
	 * may replace. */
	const char *k;
	json_t     *v;
	le_lock((mcf_le *) le);
	json_object_foreach(le->annotations, k, v)
	{
		json_object_set_new(ann, k, json_string(json_string_value(v)));
	}
	le_unlock((mcf_le *) le);
}

void
mcf_le_set_annotation(mcf_le *le, const char *key, const char *value)
{
	le_lock(le);
	json_object_set_new(le->annotations, key, json_string(value));
	le_unlock(le);
}

/* PUT `lease` with `spec` values set; on success caches and observes the
 * answer.  Returns the mcf_err of the update. */
static int
put_lease(mcf_le *le, const json_t *lease, const char *holder,
    int32_t duration_s, const char *acquire, const char *renew,
    int32_t transitions)
{
	json_t *body = json_deep_copy(lease);
	if (body == NULL)
		mcf_panic("leaderelect: json_deep_copy failed");
	if (le->annotations != NULL && strcmp(holder, le->identity) == 0)
		set_annotations(le, body);
	json_t *spec = json_object_get(body, "spec");
	if (!json_is_object(spec)) {
		spec = json_object();
		json_object_set_new(body, "spec", spec);
	}
	json_object_set_new(spec, "holderIdentity", json_string(holder));
	json_object_set_new(
	    spec, "leaseDurationSeconds", json_integer(duration_s));
	if (acquire != NULL)
		json_object_set_new(spec, "acquireTime", json_string(acquire));
	else
		json_object_del(spec, "acquireTime");
	json_object_set_new(spec, "renewTime", json_string(renew));
	json_object_set_new(
	    spec, "leaseTransitions", json_integer(transitions));
	mcf_kc_ref    ref = le_ref(le, true);
	json_t       *out = NULL;
	mcf_kc_status st;
	int           rc = mcf_kc_update(le->kc, &ref, body, &out, &st);
	json_decref(body);
	if (rc != 0) {
		mcf_log_debug("LE-UPDATE-FAILED",
		    "lease %s/%s: update: %s: %s", le->namespace, le->name,
		    mcf_err_name(rc), st.message);
		return rc;
	}
	observe(le, out, false);
	cache(le, out);
	return 0;
}

/* True when a request started now could still be running at `deadline`
 * (monotonic ms), so it must not start. */
static bool
no_room(const mcf_le *le, int64_t deadline)
{
	return mono_ms() + le->call_ms > deadline;
}

/* One round of client-go's tryAcquireOrRenew; true when this candidate
 * holds the Lease afterwards.  No request starts unless it is sure to end
 * by `deadline` (client-go cancels the round's context at the renew
 * deadline instead). */
static bool
try_acquire_or_renew(mcf_le *le, int64_t deadline)
{
	char now_s[32];
	micro_now(now_s);

	/* 1. Fast path. */
	if (no_room(le, deadline))
		return false;
	if (le->cached != NULL && obs_is_self(le)
	    && obs_valid(le, mono_ms())) {
		json_t     *spec = json_object_get(le->cached, "spec");
		const char *acq
		    = json_string_value(json_object_get(spec, "acquireTime"));
		char *acq_copy = acq != NULL ? mcf_strdup(acq) : NULL;
		int   rc = put_lease(le, le->cached, le->identity, le->lease_s,
		      acq_copy, now_s,
		      spec_int(le->obs_spec, "leaseTransitions"));
		free(acq_copy);
		if (rc == 0)
			return true;
		mcf_log_warn("LE-FASTPATH-FAILED",
		    "lease %s/%s: optimistic renew failed (%s); falling back "
		    "to the slow path",
		    le->namespace, le->name, mcf_err_name(rc));
	}

	/* 2. Read. */
	if (no_room(le, deadline))
		return false;
	mcf_kc_ref    ref   = le_ref(le, true);
	json_t       *lease = NULL;
	mcf_kc_status st;
	int           rc = mcf_kc_get(le->kc, &ref, &lease, &st);
	if (rc == MCF_ENOENT) {
		if (no_room(le, deadline))
			return false;
		json_t *body = json_pack(
		    "{s:s,s:s,s:{s:s,s:s},s:{s:s,s:i,s:s,s:s,s:i}}",
		    "apiVersion", "coordination.k8s.io/v1", "kind", "Lease",
		    "metadata", "name", le->name, "namespace", le->namespace,
		    "spec", "holderIdentity", le->identity,
		    "leaseDurationSeconds", (int) le->lease_s, "acquireTime",
		    now_s, "renewTime", now_s, "leaseTransitions", 0);
		if (body == NULL)
			mcf_panic("leaderelect: json_pack failed");
		if (le->annotations != NULL)
			set_annotations(le, body);
		mcf_kc_ref coll = le_ref(le, false);
		json_t    *out  = NULL;
		rc = mcf_kc_create_object(le->kc, &coll, body, &out, &st);
		json_decref(body);
		if (rc != 0) {
			mcf_log_debug("LE-CREATE-FAILED",
			    "lease %s/%s: create: %s: %s", le->namespace,
			    le->name, mcf_err_name(rc), st.message);
			return false;
		}
		observe(le, out, false);
		cache(le, out);
		return true;
	}
	if (rc != 0) {
		mcf_log_warn("LE-GET-FAILED", "lease %s/%s: get: %s: %s",
		    le->namespace, le->name, mcf_err_name(rc), st.message);
		return false;
	}

	/* 3. Observe; give up if someone else validly holds it. */
	observe(le, lease, true);
	cache(le, lease);
	publish_holder(le);
	int64_t     now    = mono_ms();
	const char *holder = spec_str(le->obs_spec, "holderIdentity");
	if (holder[0] != '\0' && obs_valid(le, now) && !obs_is_self(le))
		return false;

	/* 4. Take over, or renew as the holder. */
	if (no_room(le, deadline))
		return false;
	bool    self  = obs_is_self(le);
	int32_t trans = spec_int(le->obs_spec, "leaseTransitions");
	char   *acq   = NULL;
	if (self) {
		const char *a = json_string_value(
		    json_object_get(le->obs_spec, "acquireTime"));
		acq = mcf_strdup(a != NULL ? a : now_s);
	} else {
		acq = mcf_strdup(now_s);
		trans++;
	}
	rc = put_lease(
	    le, le->cached, le->identity, le->lease_s, acq, now_s, trans);
	free(acq);
	return rc == 0;
}

/* client-go's release: only when the observed holder is self. */
static void
release_lease(mcf_le *le)
{
	if (le->cached == NULL || !obs_is_self(le))
		return;
	char now_s[32];
	micro_now(now_s);
	int rc = put_lease(le, le->cached, "", 1, now_s, now_s,
	    spec_int(le->obs_spec, "leaseTransitions"));
	if (rc != 0)
		mcf_log_warn("LE-RELEASE-FAILED",
		    "lease %s/%s: release failed: %s", le->namespace, le->name,
		    mcf_err_name(rc));
	else
		mcf_log_info("LE-RELEASED", "lease %s/%s released",
		    le->namespace, le->name);
}

/* Waits up to `ms` or until a stop request; true when stopping. */
static bool
wait_stop(mcf_le *le, int64_t ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	int64_t ns = (int64_t) ts.tv_nsec + (ms > 0 ? ms : 0) * NS_PER_MS;
	ts.tv_sec += (time_t) (ns / 1000000000);
	ts.tv_nsec = (long) (ns % 1000000000);
	le_lock(le);
	while (!le->stopping) {
		int rc = pthread_cond_timedwait(&le->cv, &le->mtx, &ts);
		if (rc == ETIMEDOUT)
			break;
		if (rc != 0)
			mcf_panic(
			    "leaderelect: pthread_cond_timedwait failed");
	}
	bool s = le->stopping;
	le_unlock(le);
	return s;
}

static bool
stop_requested(mcf_le *le, bool *release)
{
	le_lock(le);
	bool s = le->stopping;
	if (release != NULL)
		*release = le->release;
	le_unlock(le);
	return s;
}

/* Leads until a renewal misses the deadline or a stop request. */
static void
lead(mcf_le *le)
{
	mcf_le_fence term = { { 0 }, 0 };
	const char  *uid  = json_string_value(
	      json_object_get(json_object_get(le->cached, "metadata"), "uid"));
	snprintf(term.uid, sizeof(term.uid), "%s", uid != NULL ? uid : "");
	term.transitions = spec_int(le->obs_spec, "leaseTransitions");
	le_lock(le);
	le->leading = true;
	master_status(le, 1);
	le->term    = term;
	le_unlock(le);
	mcf_log_info("LE-STARTED-LEADING",
	    "lease %s/%s: %s started leading (uid %s, transitions %d)",
	    le->namespace, le->name, le->identity, term.uid,
	    (int) term.transitions);
	publish_holder(le);
	if (le->on_started != NULL)
		le->on_started(le->arg, &term);

	int64_t last_renew = mono_ms();
	bool    release    = false;
	for (;;) {
		int64_t deadline = last_renew + le->renew_deadline_ms;
		/* The last moment a renewal request may start. */
		int64_t room = deadline - le->call_ms - mono_ms();
		if (room < 0) {
			mcf_log_warn("LE-LOST",
			    "lease %s/%s: %s could not "
			    "renew within %lld ms; stopped leading",
			    le->namespace, le->name, le->identity,
			    (long long) le->renew_deadline_ms);
			break;
		}
		if (wait_stop(le, le->retry_ms < room ? le->retry_ms : room)) {
			stop_requested(le, &release);
			break;
		}
		if (try_acquire_or_renew(le, deadline)) {
			last_renew = mono_ms();
			continue;
		}
		if (stop_requested(le, &release))
			break;
	}
	if (release)
		release_lease(le);
	le_lock(le);
	le->leading = false;
	master_status(le, 0);
	le_unlock(le);
	mcf_log_info("LE-STOPPED-LEADING", "lease %s/%s: %s stopped leading",
	    le->namespace, le->name, le->identity);
	if (le->on_stopped != NULL)
		le->on_stopped(le->arg);
}

static void *
le_main(void *p)
{
	mcf_le *le0 = p;
	master_status(le0, 0);
	mcf_le     *le = p;
	mcf_kc_opts o  = { 0 };
	o.timeout_ms   = le->call_ms;
	mcf_errinfo ei;
	mcf_errinfo_clear(&ei);
	int rc = mcf_kc_create(le->start_kc, le->start_ua, &o, &le->kc, &ei);
	le_lock(le);
	le->start_rc   = rc;
	le->start_ei   = ei;
	le->start_done = true;
	le->start_kc   = NULL;
	le->start_ua   = NULL;
	pthread_cond_broadcast(&le->cv);
	le_unlock(le);
	if (rc != 0)
		return NULL;

	while (!stop_requested(le, NULL)) {
		if (try_acquire_or_renew(le, INT64_MAX)) {
			lead(le);
			continue;
		}
		publish_holder(le);
		/* client-go's wait.JitterUntil with JitterFactor 1.2. */
		double j
		    = (double) rand_r(&le->seed) / ((double) RAND_MAX + 1);
		int64_t w = le->retry_ms + (int64_t) (1.2 * j * le->retry_ms);
		if (wait_stop(le, w))
			break;
	}
	mcf_kc_destroy(le->kc);
	le->kc = NULL;
	return NULL;
}

/* ---- API -------------------------------------------------------------- */

static void
apply_defaults(
    const mcf_le_config *cfg, int64_t *lease, int64_t *renew, int64_t *retry)
{
	*lease = cfg->lease_duration_ms != 0
	    ? cfg->lease_duration_ms
	    : MCF_LE_DEFAULT_LEASE_DURATION_MS;
	*renew = cfg->renew_deadline_ms != 0
	    ? cfg->renew_deadline_ms
	    : MCF_LE_DEFAULT_RENEW_DEADLINE_MS;
	*retry = cfg->retry_period_ms != 0 ? cfg->retry_period_ms
	                                   : MCF_LE_DEFAULT_RETRY_PERIOD_MS;
}

int
mcf_le_config_check(const mcf_le_config *cfg, mcf_errinfo *ei)
{
	mcf_errinfo_clear(ei);
	if (cfg == NULL)
		return mcf_errinfo_set(ei, MCF_EINVAL, "no config");
	if (cfg->namespace == NULL || cfg->namespace[0] == '\0')
		return mcf_errinfo_set(ei, MCF_EINVAL, "namespace is empty");
	if (cfg->name == NULL || cfg->name[0] == '\0')
		return mcf_errinfo_set(ei, MCF_EINVAL, "lease name is empty");
	if (cfg->identity == NULL || cfg->identity[0] == '\0')
		return mcf_errinfo_set(ei, MCF_EINVAL, "identity is empty");
	int64_t lease, renew, retry;
	apply_defaults(cfg, &lease, &renew, &retry);
	if (lease <= 0 || renew <= 0 || retry <= 0)
		return mcf_errinfo_set(ei, MCF_EINVAL,
		    "lease duration, renew deadline and retry period must be "
		    "positive");
	if (lease > INT64_C(1000) * INT32_MAX)
		return mcf_errinfo_set(
		    ei, MCF_EINVAL, "lease duration is too long");
	if (lease <= renew)
		return mcf_errinfo_set(ei, MCF_EINVAL,
		    "lease duration (%lld ms) must be greater than the renew "
		    "deadline (%lld ms)",
		    (long long) lease, (long long) renew);
	/* renew > 1.2 * retry, in integers. */
	if (renew > INT64_MAX / 10 || retry > INT64_MAX / 12
	    || renew * 10 <= retry * 12)
		return mcf_errinfo_set(ei, MCF_EINVAL,
		    "renew deadline (%lld ms) must be greater than 1.2 x the "
		    "retry period (%lld ms)",
		    (long long) renew, (long long) retry);
	return 0;
}

int
mcf_le_create(const mcf_le_config *cfg, mcf_le **out, mcf_errinfo *ei)
{
	int rc = mcf_le_config_check(cfg, ei);
	if (rc != 0)
		return rc;
	mcf_le *le    = mcf_calloc(1, sizeof(*le));
	le->namespace = mcf_strdup(cfg->namespace);
	le->name      = mcf_strdup(cfg->name);
	le->identity  = mcf_strdup(cfg->identity);
	apply_defaults(
	    cfg, &le->lease_ms, &le->renew_deadline_ms, &le->retry_ms);
	le->lease_s = (int32_t) ((le->lease_ms + 999) / 1000);
	/* A request (with the client's own retries) may take a fifth of the
	 * renew deadline: a round makes up to three, and a leader must not
	 * wait on one past its deadline. */
	le->call_ms = le->renew_deadline_ms / 5;
	if (le->call_ms < 100)
		le->call_ms = 100;
	le->on_started    = cfg->on_started_leading;
	le->on_stopped    = cfg->on_stopped_leading;
	le->on_new_leader = cfg->on_new_leader;
	le->arg           = cfg->arg;
	/* Always an object (possibly empty), so mcf_le_set_annotation only
	 * ever changes its contents, under mtx. */
	le->annotations = json_object();
	if (cfg->annotations != NULL) {
		for (size_t i = 0; cfg->annotations[i] != NULL
		     && cfg->annotations[i + 1] != NULL;
		     i += 2)
			json_object_set_new(le->annotations, cfg->annotations[i],
			    json_string(cfg->annotations[i + 1]));
	}
	le->seed          = (unsigned) mono_ms() ^ (unsigned) (uintptr_t) le;
	pthread_condattr_t ca;
	if (pthread_mutex_init(&le->mtx, NULL) != 0
	    || pthread_condattr_init(&ca) != 0
	    || pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) != 0
	    || pthread_cond_init(&le->cv, &ca) != 0)
		mcf_panic("leaderelect: pthread init failed");
	pthread_condattr_destroy(&ca);
	*out = le;
	return 0;
}

int
mcf_le_start(mcf_le *le, const mcf_kubeconfig *kc, const char *user_agent,
    mcf_errinfo *ei)
{
	mcf_errinfo_clear(ei);
	if (le == NULL || kc == NULL || user_agent == NULL)
		return mcf_errinfo_set(ei, MCF_EINVAL, "bad argument");
	if (le->started)
		return mcf_errinfo_set(ei, MCF_EBUSY, "already started");
	le_lock(le);
	le->stopping   = false;
	le->release    = false;
	le->start_done = false;
	le->start_kc   = kc;
	le->start_ua   = user_agent;
	le_unlock(le);
	int err = pthread_create(&le->thread, NULL, le_main, le);
	if (err != 0)
		return mcf_errinfo_set(ei, mcf_err_from_errno(err),
		    "pthread_create: %s", strerror(err));
	le_lock(le);
	while (!le->start_done)
		if (pthread_cond_wait(&le->cv, &le->mtx) != 0)
			mcf_panic("leaderelect: pthread_cond_wait failed");
	int         rc  = le->start_rc;
	mcf_errinfo sei = le->start_ei;
	le_unlock(le);
	if (rc != 0) {
		pthread_join(le->thread, NULL);
		if (ei != NULL)
			*ei = sei;
		return rc;
	}
	le->started = true;
	return 0;
}

bool
mcf_le_is_leader(mcf_le *le)
{
	le_lock(le);
	bool l = le->leading;
	le_unlock(le);
	return l;
}

bool
mcf_le_term(mcf_le *le, mcf_le_fence *out)
{
	le_lock(le);
	bool l = le->leading;
	if (l)
		*out = le->term;
	le_unlock(le);
	return l;
}

char *
mcf_le_leader(mcf_le *le)
{
	le_lock(le);
	char *s = le->leader != NULL ? mcf_strdup(le->leader) : NULL;
	le_unlock(le);
	return s;
}

void
mcf_le_stop(mcf_le *le, bool release)
{
	if (le == NULL || !le->started)
		return;
	le_lock(le);
	le->stopping = true;
	le->release  = release;
	pthread_cond_broadcast(&le->cv);
	le_unlock(le);
	pthread_join(le->thread, NULL);
	le->started = false;
	/* Forget the thread's view so a restart observes afresh. */
	json_decref(le->cached);
	le->cached = NULL;
	json_decref(le->obs_spec);
	le->obs_spec = NULL;
	free(le->obs_raw);
	le->obs_raw = NULL;
	free(le->reported);
	le->reported = NULL;
}

void
mcf_le_destroy(mcf_le *le)
{
	if (le == NULL)
		return;
	mcf_le_stop(le, false);
	pthread_cond_destroy(&le->cv);
	pthread_mutex_destroy(&le->mtx);
	free(le->leader);
	free(le->namespace);
	free(le->name);
	free(le->identity);
	json_decref(le->annotations);
	free(le);
}

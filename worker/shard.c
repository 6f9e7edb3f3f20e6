/*
 * shard.c — the worker's assignment table (shard.h).
 *
 * The table is an array of project entries sorted by name (binary search;
 * insertion moves pointers only, which stays cheap at thousands of
 * projects).  Stopped projects still owed a STOPPED live in a second
 * small array.  The owner thread reads both without locking (it is the
 * only writer) and takes `mtx` around every change, so status readers on
 * other threads see a consistent table.  Callbacks (engage, disengage,
 * status) always run with `mtx` released: disengage can wait for a
 * reconcile to finish, and the status page must not wait for that.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>

#include "alloc.h"
#include "log.h"
#include "shard.h"

#define LOG_ID "WORKER-SHARD"

typedef struct proj {
	char                 *name;     /* owned */
	char                 *endpoint; /* owned */
	bool                  running;  /* engage succeeded, not stopped */
	enum mcf_proto_pstate state;
	char                  reason[256];
	int64_t               since_ms;   /* wall ms of the last change */
	int64_t               engaged_ms; /* mono ms of the engage */
	int64_t               retry_ms;   /* mono ms of the next retry */
	uint64_t              objects;
	bool                  dirty;  /* state not reported yet */
	bool                  synced; /* reached SYNCED since engage */
} proj;

typedef struct stopped {
	char   *name; /* owned */
	int     sends;
	bool    reported; /* in an ACK as "stopped" */
	int64_t since_ms;
} stopped;

struct mcf_shard {
	mcf_shard_ops   ops;
	pthread_mutex_t mtx; /* guards the arrays against status readers */
	proj          **v;   /* owned entries, sorted by name */
	size_t          n, cap;
	stopped        *st; /* owed STOPPED / stop reports */
	size_t          nst, capst;
	mcf_proto_term  seen;    /* highest term accepted */
	mcf_proto_term  term;    /* term of the applied table */
	uint64_t        applied; /* version of the applied table */
	bool            resync;  /* ignoring deltas until a snapshot */
};

static void
lock(mcf_shard *sh)
{
	if (pthread_mutex_lock(&sh->mtx) != 0)
		mcf_panic("shard: pthread_mutex_lock failed");
}

static void
unlock(mcf_shard *sh)
{
	if (pthread_mutex_unlock(&sh->mtx) != 0)
		mcf_panic("shard: pthread_mutex_unlock failed");
}

int
mcf_shard_create(const mcf_shard_ops *ops, mcf_shard **out)
{
	if (ops == NULL || ops->engage == NULL || ops->disengage == NULL
	    || ops->status == NULL || ops->wall_ms == NULL
	    || ops->mono_ms == NULL || out == NULL)
		return MCF_EINVAL;
	mcf_shard *sh = mcf_calloc(1, sizeof(*sh));
	sh->ops       = *ops;
	if (pthread_mutex_init(&sh->mtx, NULL) != 0)
		mcf_panic("shard: pthread_mutex_init failed");
	*out = sh;
	return MCF_OK;
}

static void
proj_free(proj *p)
{
	if (p == NULL)
		return;
	free(p->name);
	free(p->endpoint);
	free(p);
}

void
mcf_shard_destroy(mcf_shard *sh)
{
	if (sh == NULL)
		return;
	for (size_t i = 0; i < sh->n; i++)
		proj_free(sh->v[i]);
	free(sh->v);
	for (size_t i = 0; i < sh->nst; i++)
		free(sh->st[i].name);
	free(sh->st);
	pthread_mutex_destroy(&sh->mtx);
	free(sh);
}

/* ---- lookups ---- */

/* Position of `name` in the table, or where it would go. */
static size_t
find(const mcf_shard *sh, const char *name, bool *found)
{
	size_t lo = 0, hi = sh->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int    c   = strcmp(sh->v[mid]->name, name);
		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = false;
	return lo;
}

static ssize_t
stopped_find(const mcf_shard *sh, const char *name)
{
	for (size_t i = 0; i < sh->nst; i++)
		if (strcmp(sh->st[i].name, name) == 0)
			return (ssize_t) i;
	return -1;
}

/* ---- changes (owner thread; each takes mtx for the mutation only) ---- */

static void
stopped_forget_locked(mcf_shard *sh, size_t i)
{
	free(sh->st[i].name);
	sh->st[i] = sh->st[--sh->nst];
}

static void
stopped_add(mcf_shard *sh, const char *name)
{
	int64_t now = sh->ops.wall_ms(sh->ops.arg);
	lock(sh);
	ssize_t i = stopped_find(sh, name);
	if (i >= 0) {
		/* Stopped again: owe it afresh. */
		sh->st[i].sends    = 0;
		sh->st[i].reported = false;
		sh->st[i].since_ms = now;
	} else {
		if (sh->nst == sh->capst) {
			sh->capst = sh->capst ? 2 * sh->capst : 8;
			sh->st
			    = mcf_realloc(sh->st, sh->capst * sizeof(*sh->st));
		}
		sh->st[sh->nst++]
		    = (stopped) { mcf_strdup(name), 0, false, now };
	}
	unlock(sh);
}

static void
stopped_remove(mcf_shard *sh, const char *name)
{
	lock(sh);
	ssize_t i = stopped_find(sh, name);
	if (i >= 0)
		stopped_forget_locked(sh, (size_t) i);
	unlock(sh);
}

/* Stops and removes the entry at `i`; queues a STOPPED unless `quiet`. */
static void
stop_at(mcf_shard *sh, size_t i, bool quiet)
{
	proj *p = sh->v[i];
	if (p->running)
		sh->ops.disengage(sh->ops.arg, p->name);
	lock(sh);
	memmove(&sh->v[i], &sh->v[i + 1], (sh->n - i - 1) * sizeof(*sh->v));
	sh->n--;
	unlock(sh);
	if (!quiet)
		stopped_add(sh, p->name);
	proj_free(p);
}

/* Engages `p` (already in the table); records the outcome. */
static void
start(mcf_shard *sh, proj *p)
{
	mcf_errinfo ei = { 0 };
	int     rc   = sh->ops.engage(sh->ops.arg, p->name, p->endpoint, &ei);
	int64_t wall = sh->ops.wall_ms(sh->ops.arg);
	int64_t mono = sh->ops.mono_ms(sh->ops.arg);
	lock(sh);
	p->since_ms   = wall;
	p->engaged_ms = mono;
	p->dirty      = true;
	p->synced     = false;
	p->objects    = 0;
	if (rc == MCF_OK) {
		p->running   = true;
		p->state     = MCF_PROTO_PSTATE_ENGAGING;
		p->reason[0] = '\0';
	} else {
		p->running = false;
		p->state   = MCF_PROTO_PSTATE_FAILING;
		snprintf(p->reason, sizeof(p->reason), "engage: %.200s",
		    ei.msg[0] ? ei.msg : mcf_strerror(rc));
		p->retry_ms = mono + MCF_SHARD_ENGAGE_RETRY_MS;
	}
	unlock(sh);
	if (rc != MCF_OK)
		mcf_log_warn(LOG_ID, "project %s: %s", p->name, p->reason);
}

/* Adds `name` at `endpoint` and engages it. */
static void
add(mcf_shard *sh, const char *name, const char *endpoint)
{
	proj *p     = mcf_calloc(1, sizeof(*p));
	p->name     = mcf_strdup(name);
	p->endpoint = mcf_strdup(endpoint);
	bool found;
	lock(sh);
	size_t i = find(sh, name, &found);
	if (sh->n == sh->cap) {
		sh->cap = sh->cap ? 2 * sh->cap : 16;
		sh->v   = mcf_realloc(sh->v, sh->cap * sizeof(*sh->v));
	}
	memmove(&sh->v[i + 1], &sh->v[i], (sh->n - i) * sizeof(*sh->v));
	sh->v[i] = p;
	sh->n++;
	unlock(sh);
	stopped_remove(sh, name);
	start(sh, p);
}

/* Makes `name` run at `endpoint`: nothing when it already does (marked
 * for the next report), a restart when the endpoint changed. */
static void
ensure(mcf_shard *sh, const char *name, const char *endpoint)
{
	bool   found;
	size_t i = find(sh, name, &found);
	if (found && strcmp(sh->v[i]->endpoint, endpoint) == 0) {
		lock(sh);
		sh->v[i]->dirty = true;
		unlock(sh);
		return;
	}
	if (found) {
		mcf_log_info(LOG_ID,
		    "project %s: endpoint %s -> %s: restarting", name,
		    sh->v[i]->endpoint, endpoint);
		stop_at(sh, i, true);
	}
	add(sh, name, endpoint);
}

/* ---- fencing ---- */

const mcf_proto_term *
mcf_shard_term_seen(const mcf_shard *sh)
{
	return &sh->seen;
}

enum mcf_proto_term_order
mcf_shard_term_order(const mcf_shard *sh, const mcf_proto_term *got)
{
	return mcf_proto_term_cmp(&sh->seen, got);
}

bool
mcf_shard_term_accept(
    mcf_shard *sh, const mcf_proto_term *got, bool old_lease_gone)
{
	enum mcf_proto_term_order o = mcf_proto_term_cmp(&sh->seen, got);
	if (!mcf_proto_term_accept(&sh->seen, got, old_lease_gone))
		return false;
	if (o != MCF_PROTO_TERM_EQUAL) {
		mcf_log_info(LOG_ID, "term %s/%lld accepted (was %s/%lld)",
		    got->uid, (long long) got->transitions,
		    sh->seen.uid[0] ? sh->seen.uid : "-",
		    (long long) sh->seen.transitions);
		lock(sh);
		sh->seen = *got;
		unlock(sh);
	}
	return true;
}

static bool
term_eq(const mcf_proto_term *a, const mcf_proto_term *b)
{
	return strcmp(a->uid, b->uid) == 0 && a->transitions == b->transitions;
}

/* ---- applying ---- */

/* Orders assignments by name, then by position in the snapshot (the
 * pointers point into one array), so the first of duplicates sorts first. */
static int
cmp_assignment(const void *a, const void *b)
{
	const mcf_proto_assignment *x
	    = *(const mcf_proto_assignment *const *) a;
	const mcf_proto_assignment *y
	    = *(const mcf_proto_assignment *const *) b;
	int c = strcmp(x->name, y->name);
	if (c != 0)
		return c;
	return x < y ? -1 : x > y;
}

void
mcf_shard_apply_snapshot(mcf_shard *sh, const mcf_proto_snapshot *s)
{
	/* The listed projects, sorted, duplicates dropped (first wins). */
	size_t                 n    = s->nprojects;
	mcf_proto_assignment **want = mcf_calloc(n ? n : 1, sizeof(*want));
	for (size_t i = 0; i < n; i++)
		want[i] = &s->projects[i];
	qsort(want, n, sizeof(*want), cmp_assignment);
	size_t m = 0;
	for (size_t i = 0; i < n; i++)
		if (m == 0 || strcmp(want[m - 1]->name, want[i]->name) != 0)
			want[m++] = want[i];

	/* Older STOPPED debts are settled by the full ACK that follows. */
	lock(sh);
	while (sh->nst > 0)
		stopped_forget_locked(sh, sh->nst - 1);
	unlock(sh);

	/* Stop what is not listed (or listed elsewhere), walking both sorted
	 * lists. */
	size_t i = 0, j = 0;
	while (i < sh->n) {
		proj *p = sh->v[i];
		while (j < m && strcmp(want[j]->name, p->name) < 0)
			j++;
		bool listed = j < m && strcmp(want[j]->name, p->name) == 0;
		if (!listed) {
			stop_at(sh, i, false);
			continue;
		}
		i++;
	}
	/* Start what is listed: new, or at a new endpoint. */
	for (size_t k = 0; k < m; k++)
		ensure(sh, want[k]->name, want[k]->endpoint);
	free(want);

	lock(sh);
	sh->term    = s->term;
	sh->applied = s->version;
	sh->resync  = false;
	unlock(sh);
}

enum mcf_shard_apply
mcf_shard_apply_delta(
    mcf_shard *sh, const mcf_proto_delta *d, char *why, size_t cap)
{
	if (sh->resync)
		return MCF_SHARD_IGNORED;
	if (!term_eq(&d->term, &sh->term) || d->base != sh->applied) {
		if (why != NULL && cap > 0) {
			if (!term_eq(&d->term, &sh->term))
				snprintf(why, cap,
				    "delta of term %s/%lld, applied term "
				    "%s/%lld version %llu",
				    d->term.uid,
				    (long long) d->term.transitions,
				    sh->term.uid[0] ? sh->term.uid : "-",
				    (long long) sh->term.transitions,
				    (unsigned long long) sh->applied);
			else
				snprintf(why, cap,
				    "delta base %llu, applied %llu",
				    (unsigned long long) d->base,
				    (unsigned long long) sh->applied);
		}
		lock(sh);
		sh->resync = true;
		unlock(sh);
		return MCF_SHARD_GAP;
	}
	for (size_t k = 0; k < d->ndisengage; k++) {
		bool   found;
		size_t i = find(sh, d->disengage[k], &found);
		if (found)
			stop_at(sh, i, false);
		else
			stopped_add(sh, d->disengage[k]);
	}
	for (size_t k = 0; k < d->nengage; k++)
		ensure(sh, d->engage[k].name, d->engage[k].endpoint);
	lock(sh);
	sh->applied = d->version;
	unlock(sh);
	return MCF_SHARD_APPLIED;
}

void
mcf_shard_applied(const mcf_shard *sh, mcf_proto_term *term, uint64_t *version)
{
	if (term != NULL)
		*term = sh->term;
	if (version != NULL)
		*version = sh->applied;
}

bool
mcf_shard_resync_pending(const mcf_shard *sh)
{
	return sh->resync;
}

void
mcf_shard_clear(mcf_shard *sh)
{
	while (sh->n > 0)
		stop_at(sh, sh->n - 1, false);
}

/* ---- reporting ---- */

bool
mcf_shard_poll(mcf_shard *sh)
{
	bool    changes = false;
	int64_t mono    = sh->ops.mono_ms(sh->ops.arg);
	for (size_t i = 0; i < sh->n; i++) {
		proj *p = sh->v[i];
		if (!p->running) {
			if (mono >= p->retry_ms)
				start(sh, p);
			changes = changes || p->dirty;
			continue;
		}
		mcf_shard_pstatus ps;
		memset(&ps, 0, sizeof(ps));
		if (sh->ops.status(sh->ops.arg, p->name, &ps) != MCF_OK) {
			changes = changes || p->dirty;
			continue;
		}
		bool first_sync = false;
		lock(sh);
		p->objects = ps.objects;
		if (ps.state != p->state) {
			p->state    = ps.state;
			p->since_ms = sh->ops.wall_ms(sh->ops.arg);
			p->dirty    = true;
		}
		snprintf(p->reason, sizeof(p->reason), "%s", ps.reason);
		if (ps.state == MCF_PROTO_PSTATE_SYNCED && !p->synced) {
			p->synced  = true;
			first_sync = true;
		}
		unlock(sh);
		if (first_sync && sh->ops.synced != NULL)
			sh->ops.synced(
			    sh->ops.arg, p->name, mono - p->engaged_ms);
		changes = changes || p->dirty;
	}
	return changes || mcf_shard_has_changes(sh);
}

bool
mcf_shard_has_changes(const mcf_shard *sh)
{
	for (size_t i = 0; i < sh->nst; i++)
		if (!sh->st[i].reported)
			return true;
	for (size_t i = 0; i < sh->n; i++)
		if (sh->v[i]->dirty)
			return true;
	return false;
}

static void
report_fill(mcf_proto_report *r, const char *name, enum mcf_proto_pstate state,
    const char *reason, int64_t since)
{
	r->name     = mcf_strdup(name);
	r->state    = state;
	r->reason   = mcf_strdup(reason != NULL ? reason : "");
	r->since_ms = since;
}

void
mcf_shard_reports(mcf_shard *sh, bool full, mcf_proto_report **out, size_t *n)
{
	size_t            k = 0, max = sh->n + (full ? 0 : sh->nst);
	mcf_proto_report *r = max ? mcf_calloc(max, sizeof(*r)) : NULL;
	lock(sh);
	for (size_t i = 0; i < sh->n; i++) {
		proj *p = sh->v[i];
		if (full || p->dirty)
			report_fill(&r[k++], p->name, p->state, p->reason,
			    p->since_ms);
		p->dirty = false;
	}
	for (size_t i = 0; i < sh->nst; i++) {
		if (!full && !sh->st[i].reported)
			report_fill(&r[k++], sh->st[i].name,
			    MCF_PROTO_PSTATE_STOPPED, "", sh->st[i].since_ms);
		sh->st[i].reported = true;
	}
	unlock(sh);
	if (k == 0) {
		free(r);
		r = NULL;
	}
	*out = r;
	*n   = k;
}

void
mcf_shard_reports_free(mcf_proto_report *r, size_t n)
{
	for (size_t i = 0; r != NULL && i < n; i++) {
		free(r[i].name);
		free(r[i].reason);
	}
	free(r);
}

void
mcf_shard_stopped_due(mcf_shard *sh, char ***names, size_t *n)
{
	char **v = mcf_calloc(sh->nst + 1, sizeof(*v));
	size_t k = 0;
	lock(sh);
	for (size_t i = 0; i < sh->nst;) {
		if (sh->st[i].sends < MCF_SHARD_STOPPED_SENDS) {
			v[k++] = mcf_strdup(sh->st[i].name);
			sh->st[i].sends++;
		}
		/* Settled: handed out enough and reported. */
		if (sh->st[i].sends >= MCF_SHARD_STOPPED_SENDS
		    && sh->st[i].reported)
			stopped_forget_locked(sh, i);
		else
			i++;
	}
	unlock(sh);
	*names = v;
	*n     = k;
}

bool
mcf_shard_stopped_owed(const mcf_shard *sh)
{
	for (size_t i = 0; i < sh->nst; i++)
		if (sh->st[i].sends == 0)
			return true;
	return false;
}

void
mcf_shard_names_free(char **names)
{
	for (size_t i = 0; names != NULL && names[i] != NULL; i++)
		free(names[i]);
	free(names);
}

/* ---- status (any thread) ---- */

size_t
mcf_shard_count(mcf_shard *sh)
{
	lock(sh);
	size_t n = sh->n;
	unlock(sh);
	return n;
}

void
mcf_shard_state_counts(
    mcf_shard *sh, size_t *engaging, size_t *synced, size_t *failing)
{
	size_t e = 0, s = 0, f = 0;
	lock(sh);
	for (size_t i = 0; i < sh->n; i++) {
		switch (sh->v[i]->state) {
		case MCF_PROTO_PSTATE_SYNCED:
			s++;
			break;
		case MCF_PROTO_PSTATE_FAILING:
			f++;
			break;
		default:
			e++;
			break;
		}
	}
	unlock(sh);
	*engaging = e;
	*synced   = s;
	*failing  = f;
}

void
mcf_shard_rfc3339(int64_t ms, char *buf, size_t cap)
{
	time_t    t = (time_t) (ms / 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	size_t n = strftime(buf, cap, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, cap - n, ".%03dZ", (int) (ms % 1000));
}

json_t *
mcf_shard_status_json(mcf_shard *sh)
{
	json_t *a = json_array();
	lock(sh);
	for (size_t i = 0; i < sh->n; i++) {
		const proj *p = sh->v[i];
		char        since[40];
		mcf_shard_rfc3339(p->since_ms, since, sizeof(since));
		json_array_append_new(a,
		    json_pack("{s:s,s:s,s:s,s:s,s:s,s:I}", "name", p->name,
		        "endpoint", p->endpoint, "state",
		        mcf_proto_pstate_name(p->state), "reason", p->reason,
		        "since", since, "objects", (json_int_t) p->objects));
	}
	unlock(sh);
	return a;
}

/*
 * controller.c — controllers over many clusters: informers feed one work
 * queue per controller, reconcile threads drain it (controller.h).
 *
 * Locking: one mutex per manager, `mtx`, guards the cluster table, every
 * cluster's `refs`/`active`/`gone`, and `paused`/`active_total`; `cv` is
 * broadcast whenever a reconcile ends or `paused`/`stopping` change.  The
 * informer handlers run on the informer loop thread and only take `mtx`
 * briefly (never: they only build a key and call mcf_wq_add, which is
 * thread-safe).  No lock is held while calling a reconcile, an informer or
 * the queue.
 */
#include "controller.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "informer.h"
#include "log.h"
#include "meta.h"
#include "metrics.h"
#include "workqueue.h"

#define LOG_ID "controller"

/* Failed requests in a row after which a resource's informer counts as
 * failing (before its first sync: failed requests in all). */
#define FAILING_AFTER 3

/* Per-thread REST clients kept at most (least recently used dropped). */
#define THREAD_CLIENTS_MAX 32

typedef struct ctrl_cluster ctrl_cluster;
typedef struct ctrl         ctrl;

/* Where an informer event goes: which controller, which role. */
enum hrole { ROLE_FOR, ROLE_OWNS, ROLE_WATCH };

typedef struct hreg {
	ctrl                 *c;
	ctrl_cluster         *cl;
	enum hrole            role;
	const mcf_ctrl_watch *watch;
	mcf_inf              *inf;
	uint64_t              id;
} hreg;

struct ctrl_cluster {
	char           *name;
	mcf_kubeconfig *kc;
	int             refs;   /* mtx */
	int             active; /* reconciles running; mtx */
	int             readers; /* status readers of `infs`; mtx */
	bool            gone;   /* disengaged; mtx */
	int64_t         since_ms;
	/* Per controller (index into m->ctrls), counted in process(); mtx. */
	uint64_t       *reconciles;
	uint64_t       *errors;
	int            *ctrl_active;
	mcf_inf       **infs; /* one per manager gvr; NULL if not started */
	hreg           *hregs;
	size_t          n_hregs;
};

struct ctrl {
	const mcf_ctrl_def *def;
	mcf_ctrl_mgr       *m;
	mcf_wq             *q;
	pthread_t          *threads;
	int                 n_threads;
	int                 active; /* mtx */
	uint64_t            reconciles;
	uint64_t            errors; /* mtx */
	/* Metric series, looked up once (labels: this controller). */
	mcf_metrics_series *s_total[4]; /* by mcf_ctrl_result */
	mcf_metrics_series *s_errors;
	mcf_metrics_series *s_time;
	mcf_metrics_series *s_active;
	/* Indexes into m->gvrs of the resources this controller names. */
	size_t *gvr_idx;
	size_t  n_gvr_idx;
};

struct mcf_ctrl_mgr {
	mcf_ctrl_mgr_config cfg; /* strings owned */
	mcf_inf_loop       *loop;
	ctrl               *ctrls;
	size_t              n_ctrls;
	/* Distinct resources over all controllers. */
	mcf_ctrl_gvr *gvrs;
	size_t        n_gvrs;

	pthread_mutex_t mtx;
	pthread_cond_t  cv;
	ctrl_cluster  **clusters; /* sorted by name; mtx */
	size_t          n_clusters;
	bool            paused;
	bool            stopping;
	int             active_total;

	bool collector; /* added to the default registry */
};

struct mcf_ctrl_ctx {
	mcf_ctrl_mgr *m;
	ctrl         *c;
	ctrl_cluster *cl;
	mcf_kc       *client;
};

/* ---- small helpers ---- */

static int64_t
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static double
now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static bool
gvr_eq(const mcf_ctrl_gvr *a, const mcf_ctrl_gvr *b)
{
	return strcmp(a->group, b->group) == 0 &&
	    strcmp(a->version, b->version) == 0 &&
	    strcmp(a->resource, b->resource) == 0;
}

static size_t
gvr_index(mcf_ctrl_mgr *m, const mcf_ctrl_gvr *g)
{
	for (size_t i = 0; i < m->n_gvrs; i++)
		if (gvr_eq(&m->gvrs[i], g))
			return i;
	return SIZE_MAX;
}

static bool
gvr_ok(const mcf_ctrl_gvr *g)
{
	return g->group != NULL && g->version != NULL && g->version[0] &&
	    g->resource != NULL && g->resource[0] && g->kind != NULL &&
	    g->kind[0];
}

static size_t
gvr_add(mcf_ctrl_mgr *m, const mcf_ctrl_gvr *g)
{
	size_t i = gvr_index(m, g);
	if (i != SIZE_MAX)
		return i;
	m->gvrs = mcf_realloc(m->gvrs, (m->n_gvrs + 1) * sizeof(*m->gvrs));
	m->gvrs[m->n_gvrs] = *g;
	return m->n_gvrs++;
}

static void
ctrl_add_gvr(ctrl *c, size_t idx)
{
	for (size_t i = 0; i < c->n_gvr_idx; i++)
		if (c->gvr_idx[i] == idx)
			return;
	c->gvr_idx =
	    mcf_realloc(c->gvr_idx, (c->n_gvr_idx + 1) * sizeof(*c->gvr_idx));
	c->gvr_idx[c->n_gvr_idx++] = idx;
}

/* Binary search of the sorted cluster table; mtx held.  Returns the
 * position where `name` is or would go, and sets *found. */
static size_t
cluster_pos_locked(mcf_ctrl_mgr *m, const char *name, bool *found)
{
	size_t lo = 0, hi = m->n_clusters;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int    r = strcmp(m->clusters[mid]->name, name);
		if (r == 0) {
			*found = true;
			return mid;
		}
		if (r < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = false;
	return lo;
}

static ctrl_cluster *
cluster_find_locked(mcf_ctrl_mgr *m, const char *name)
{
	bool   found;
	size_t pos = cluster_pos_locked(m, name, &found);
	return found ? m->clusters[pos] : NULL;
}

static void
cluster_free(ctrl_cluster *cl)
{
	mcf_kubeconfig_destroy(cl->kc);
	free(cl->reconciles);
	free(cl->errors);
	free(cl->ctrl_active);
	free(cl->infs);
	free(cl->hregs);
	free(cl->name);
	free(cl);
}

static void
cluster_unref_locked(ctrl_cluster *cl)
{
	if (--cl->refs == 0)
		cluster_free(cl);
}

/* ---- informer handlers: build keys, feed the queue ---- */

static void
enqueue(ctrl *c, ctrl_cluster *cl, const char *key)
{
	char *k = mcf_asprintf("%s/%s", cl->name, key);
	int   rc = mcf_wq_add(c->q, k);
	if (rc != MCF_OK && rc != MCF_ECLOSED)
		mcf_log_warn(LOG_ID, "controller %s: enqueue %s: %s",
		    c->def->name, k, mcf_strerror(rc));
	free(k);
}

static void
enqueue_obj(ctrl *c, ctrl_cluster *cl, const json_t *obj)
{
	char *key = NULL;
	if (mcf_meta_key(obj, &key) == MCF_OK)
		enqueue(c, cl, key);
	free(key);
}

/* Enqueues the controller owner of `obj` if it is of the For kind. */
static void
enqueue_owner(ctrl *c, ctrl_cluster *cl, const json_t *obj)
{
	const json_t *ref = mcf_meta_controller_of(obj);
	if (ref == NULL)
		return;
	const char *api = json_string_value(json_object_get(ref, "apiVersion"));
	const char *kind = json_string_value(json_object_get(ref, "kind"));
	const char *name = json_string_value(json_object_get(ref, "name"));
	if (api == NULL || kind == NULL || name == NULL ||
	    strcmp(kind, c->def->for_gvr.kind) != 0)
		return;
	const char *slash = strchr(api, '/');
	size_t      glen = slash != NULL ? (size_t) (slash - api) : 0;
	const char *group = c->def->for_gvr.group;
	if (glen != strlen(group) || strncmp(api, group, glen) != 0)
		return;
	const char *ns = mcf_meta_namespace(obj);
	char        key[512];
	if (c->def->for_gvr.namespaced && ns != NULL)
		snprintf(key, sizeof(key), "%s/%s", ns, name);
	else
		snprintf(key, sizeof(key), "%s", name);
	enqueue(c, cl, key);
}

typedef struct emit_ctx {
	ctrl         *c;
	ctrl_cluster *cl;
} emit_ctx;

static void
emit_key(void *ectx, const char *key)
{
	emit_ctx *e = ectx;
	if (key != NULL && key[0] != '\0')
		enqueue(e->c, e->cl, key);
}

static void
dispatch(hreg *h, const json_t *obj)
{
	switch (h->role) {
	case ROLE_FOR:
		enqueue_obj(h->c, h->cl, obj);
		break;
	case ROLE_OWNS:
		enqueue_owner(h->c, h->cl, obj);
		break;
	case ROLE_WATCH: {
		emit_ctx e = {h->c, h->cl};
		h->watch->map(obj, emit_key, &e, h->watch->arg);
		break;
	}
	}
}

static void
on_add(void *arg, const json_t *obj, bool initial)
{
	(void) initial;
	dispatch(arg, obj);
}

static void
on_update(void *arg, const json_t *old_obj, const json_t *new_obj)
{
	hreg *h = arg;
	/* An owned object that changed owner enqueues both owners, as
	 * controller-runtime's EnqueueRequestForOwner does.  Only Owns and
	 * Watches handlers ask for the old state (want_old); For gets NULL,
	 * and the old state would name the same key anyway. */
	if (h->role != ROLE_FOR && old_obj != NULL && old_obj != new_obj)
		dispatch(h, old_obj);
	dispatch(h, new_obj);
}

static void
on_delete(void *arg, const json_t *obj)
{
	dispatch(arg, obj);
}

/* ---- the per-thread client cache ---- */

typedef struct tclient {
	ctrl_cluster *cl; /* holds a reference */
	mcf_kc       *kc;
	int64_t       used_ms;
} tclient;

typedef struct tclients {
	tclient e[THREAD_CLIENTS_MAX];
	size_t  n;
} tclients;

static void
tclients_drop(mcf_ctrl_mgr *m, tclients *t, size_t i)
{
	mcf_kc_destroy(t->e[i].kc);
	pthread_mutex_lock(&m->mtx);
	cluster_unref_locked(t->e[i].cl);
	pthread_mutex_unlock(&m->mtx);
	t->e[i] = t->e[--t->n];
}

/* Returns this thread's client for `cl`, creating it; drops the clients of
 * disengaged clusters first.  NULL if the client cannot be created. */
static mcf_kc *
tclients_get(mcf_ctrl_mgr *m, tclients *t, ctrl_cluster *cl)
{
	for (size_t i = 0; i < t->n;) {
		bool gone;
		pthread_mutex_lock(&m->mtx);
		gone = t->e[i].cl->gone;
		pthread_mutex_unlock(&m->mtx);
		if (gone && t->e[i].cl != cl)
			tclients_drop(m, t, i);
		else
			i++;
	}
	for (size_t i = 0; i < t->n; i++) {
		if (t->e[i].cl == cl) {
			t->e[i].used_ms = now_ms();
			return t->e[i].kc;
		}
	}
	if (t->n == THREAD_CLIENTS_MAX) {
		size_t lru = 0;
		for (size_t i = 1; i < t->n; i++)
			if (t->e[i].used_ms < t->e[lru].used_ms)
				lru = i;
		tclients_drop(m, t, lru);
	}
	mcf_kc     *kc = NULL;
	mcf_errinfo ei = {0};
	int rc = mcf_kc_create(cl->kc, m->cfg.user_agent, NULL, &kc, &ei);
	if (rc != MCF_OK) {
		mcf_log_error(LOG_ID, "cluster %s: client: %s", cl->name,
		    ei.msg[0] ? ei.msg : mcf_strerror(rc));
		return NULL;
	}
	pthread_mutex_lock(&m->mtx);
	cl->refs++;
	pthread_mutex_unlock(&m->mtx);
	t->e[t->n++] = (tclient) {cl, kc, now_ms()};
	return kc;
}

static void
tclients_clear(mcf_ctrl_mgr *m, tclients *t)
{
	while (t->n > 0)
		tclients_drop(m, t, 0);
}

/* ---- reconcile threads ---- */

static const char *
result_label(mcf_ctrl_result r)
{
	switch (r) {
	case MCF_CTRL_DONE:
		return "success";
	case MCF_CTRL_REQUEUE:
		return "requeue";
	case MCF_CTRL_REQUEUE_AFTER:
		return "requeue_after";
	case MCF_CTRL_ERROR:
		return "error";
	}
	return "error";
}

/* Splits "CLUSTER/REST" into the cluster name and, for REST, "NS/NAME" or
 * "NAME".  `buf` receives a copy that the outputs point into. */
static int
split_key(const char *key, char *buf, size_t cap, const char **cluster,
    const char **ns, const char **name)
{
	if (strlen(key) >= cap)
		return MCF_EINVAL;
	strcpy(buf, key);
	char *s = strchr(buf, '/');
	if (s == NULL)
		return MCF_EINVAL;
	*s = '\0';
	*cluster = buf;
	char *rest = s + 1;
	char *s2 = strchr(rest, '/');
	if (s2 != NULL) {
		*s2 = '\0';
		*ns = rest;
		*name = s2 + 1;
	} else {
		*ns = NULL;
		*name = rest;
	}
	return (*name)[0] != '\0' ? MCF_OK : MCF_EINVAL;
}

static void
process(ctrl *c, tclients *tc, const char *key)
{
	mcf_ctrl_mgr *m = c->m;
	char          buf[1024];
	const char   *cname, *ns, *name;
	if (split_key(key, buf, sizeof(buf), &cname, &ns, &name) != MCF_OK) {
		mcf_log_error(LOG_ID, "controller %s: bad key %s", c->def->name,
		    key);
		mcf_wq_forget(c->q, key);
		return;
	}
	pthread_mutex_lock(&m->mtx);
	if (m->paused || m->stopping) {
		pthread_mutex_unlock(&m->mtx);
		/* Marked dirty while we hold it: queued again at done(). */
		mcf_wq_add(c->q, key);
		return;
	}
	ctrl_cluster *cl = cluster_find_locked(m, cname);
	if (cl == NULL) {
		pthread_mutex_unlock(&m->mtx);
		mcf_wq_forget(c->q, key); /* disengaged: drop the key */
		return;
	}
	size_t ci = (size_t) (c - m->ctrls);
	cl->refs++;
	cl->active++;
	cl->ctrl_active[ci]++;
	c->active++;
	m->active_total++;
	pthread_mutex_unlock(&m->mtx);
	mcf_metrics_gauge_add(c->s_active, 1);

	mcf_ctrl_result r = MCF_CTRL_ERROR;
	int64_t         after_ms = 0;
	double          t0 = now_s();
	mcf_ctrl_ctx    ctx = {m, c, cl, tclients_get(m, tc, cl)};
	if (ctx.client != NULL) {
		r = c->def->reconcile(&ctx, ns, name, &after_ms);
	}
	double dt = now_s() - t0;

	mcf_metrics_counter_inc(c->s_total[r]);
	mcf_metrics_histogram_observe(c->s_time, dt);
	mcf_metrics_gauge_add(c->s_active, -1);
	switch (r) {
	case MCF_CTRL_DONE:
		mcf_wq_forget(c->q, key);
		break;
	case MCF_CTRL_REQUEUE_AFTER:
		mcf_wq_forget(c->q, key);
		mcf_wq_add_after(c->q, key, after_ms > 0 ? after_ms : 0);
		break;
	case MCF_CTRL_REQUEUE:
		mcf_wq_add_rate_limited(c->q, key, NULL);
		break;
	case MCF_CTRL_ERROR:
		mcf_metrics_counter_inc(c->s_errors);
		mcf_wq_add_rate_limited(c->q, key, NULL);
		break;
	}

	pthread_mutex_lock(&m->mtx);
	c->reconciles++;
	cl->reconciles[ci]++;
	if (r == MCF_CTRL_ERROR) {
		c->errors++;
		cl->errors[ci]++;
	}
	cl->ctrl_active[ci]--;
	cl->active--;
	c->active--;
	m->active_total--;
	cluster_unref_locked(cl);
	pthread_cond_broadcast(&m->cv);
	pthread_mutex_unlock(&m->mtx);
}

static void *
reconcile_thread(void *arg)
{
	ctrl         *c = arg;
	mcf_ctrl_mgr *m = c->m;
	tclients      tc = {.n = 0};
	for (;;) {
		pthread_mutex_lock(&m->mtx);
		while (m->paused && !m->stopping)
			pthread_cond_wait(&m->cv, &m->mtx);
		bool stopping = m->stopping;
		pthread_mutex_unlock(&m->mtx);
		if (stopping)
			break;
		const char *key;
		int         rc = mcf_wq_get(c->q, 200, &key);
		if (rc == MCF_ECLOSED)
			break;
		if (rc != MCF_OK)
			continue;
		process(c, &tc, key);
		mcf_wq_done(c->q, key);
	}
	tclients_clear(m, &tc);
	return NULL;
}

/* ---- workqueue metrics, collected at render time ---- */

static void
collect(mcf_metrics_writer *w, void *arg)
{
	mcf_ctrl_mgr *m = arg;
	double        bounds[MCF_WQ_HIST_BUCKETS];
	for (int b = 0; b < MCF_WQ_HIST_BUCKETS; b++)
		bounds[b] = mcf_wq_hist_bound(b);
	for (size_t i = 0; i < m->n_ctrls; i++) {
		ctrl          *c = &m->ctrls[i];
		mcf_wq_metrics wm;
		mcf_wq_metrics_read(c->q, &wm);
		const char *l[] = {"name", c->def->name, NULL};
		mcf_metrics_write_gauge(w, "workqueue_depth",
		    "Current depth of workqueue", l, (double) wm.depth);
		mcf_metrics_write_counter(w, "workqueue_adds_total",
		    "Total number of adds handled by workqueue", l,
		    (double) wm.adds_total);
		mcf_metrics_write_counter(w, "workqueue_retries_total",
		    "Total number of retries handled by workqueue", l,
		    (double) wm.retries_total);
		mcf_metrics_write_gauge(w, "workqueue_unfinished_work_seconds",
		    "How many seconds of work has been done that is in "
		    "progress and hasn't been observed by work_duration.",
		    l, wm.unfinished_work_seconds);
		mcf_metrics_write_gauge(w,
		    "workqueue_longest_running_processor_seconds",
		    "How many seconds has the longest running processor for "
		    "workqueue been running.",
		    l, wm.longest_running_processor_seconds);
		mcf_metrics_write_histogram(w,
		    "workqueue_queue_duration_seconds",
		    "How long in seconds an item stays in workqueue before "
		    "being requested",
		    l, bounds, wm.queue_duration.bucket, MCF_WQ_HIST_BUCKETS,
		    wm.queue_duration.count, wm.queue_duration.sum);
		mcf_metrics_write_histogram(w,
		    "workqueue_work_duration_seconds",
		    "How long in seconds processing an item from workqueue "
		    "takes.",
		    l, bounds, wm.work_duration.bucket, MCF_WQ_HIST_BUCKETS,
		    wm.work_duration.count, wm.work_duration.sum);
	}
}

/* controller-runtime's reconcile time buckets. */
static const double reconcile_buckets[] = {0.005, 0.01, 0.025, 0.05, 0.1,
    0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0,
    1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 6.0, 7.0, 8.0, 9.0,
    10.0, 15.0, 20.0, 25.0, 30.0, 40.0, 50.0, 60.0};

/* Registers the controller-runtime families (or finds them, when an
 * earlier manager did) and looks up this manager's series. */
static int
metrics_init(mcf_ctrl_mgr *m, mcf_errinfo *ei)
{
	mcf_metrics        *reg = mcf_metrics_default();
	const char         *lc[] = {"controller", NULL};
	const char         *lcr[] = {"controller", "result", NULL};
	mcf_metrics_family *total, *errors, *time, *active, *maxconc;
	int                 rc;
	if ((rc = mcf_metrics_counter_register(reg,
	         "controller_runtime_reconcile_total",
	         "Total number of reconciliations per controller", lcr,
	         &total)) != MCF_OK ||
	    (rc = mcf_metrics_counter_register(reg,
	         "controller_runtime_reconcile_errors_total",
	         "Total number of reconciliation errors per controller", lc,
	         &errors)) != MCF_OK ||
	    (rc = mcf_metrics_histogram_register(reg,
	         "controller_runtime_reconcile_time_seconds",
	         "Length of time per reconciliation per controller", lc,
	         reconcile_buckets,
	         sizeof(reconcile_buckets) / sizeof(reconcile_buckets[0]),
	         &time)) != MCF_OK ||
	    (rc = mcf_metrics_gauge_register(reg,
	         "controller_runtime_active_workers",
	         "Number of currently used workers per controller", lc,
	         &active)) != MCF_OK ||
	    (rc = mcf_metrics_gauge_register(reg,
	         "controller_runtime_max_concurrent_reconciles",
	         "Maximum number of concurrent reconciles per controller", lc,
	         &maxconc)) != MCF_OK)
		return mcf_errinfo_set(ei, rc, "registering controller metrics");
	for (size_t i = 0; i < m->n_ctrls; i++) {
		ctrl               *c = &m->ctrls[i];
		const char         *v[] = {c->def->name, NULL};
		mcf_metrics_series *mc;
		for (int r = 0; r < 4; r++) {
			const char *vr[] = {c->def->name,
			    result_label((mcf_ctrl_result) r), NULL};
			mcf_metrics_series_get(total, vr, &c->s_total[r]);
		}
		mcf_metrics_series_get(errors, v, &c->s_errors);
		mcf_metrics_series_get(time, v, &c->s_time);
		mcf_metrics_series_get(active, v, &c->s_active);
		mcf_metrics_series_get(maxconc, v, &mc);
		mcf_metrics_gauge_set(mc, c->def->max_concurrency > 0
		        ? c->def->max_concurrency
		        : 1);
	}
	rc = mcf_metrics_add_collector(reg, collect, m);
	if (rc != MCF_OK)
		return mcf_errinfo_set(ei, rc, "adding the workqueue collector");
	m->collector = true;
	return MCF_OK;
}

/* ---- manager lifecycle ---- */

static int
check_def(const mcf_ctrl_def *d, mcf_errinfo *ei)
{
	if (d == NULL || d->name == NULL || d->name[0] == '\0' ||
	    d->reconcile == NULL || !gvr_ok(&d->for_gvr)) {
		mcf_errinfo_set(ei, MCF_EINVAL,
		    "controller definition needs a name, a For resource and a "
		    "reconcile function");
		return MCF_EINVAL;
	}
	for (size_t i = 0; i < d->n_owns; i++)
		if (!gvr_ok(&d->owns[i])) {
			mcf_errinfo_set(ei, MCF_EINVAL,
			    "controller %s: Owns[%zu] is incomplete", d->name,
			    i);
			return MCF_EINVAL;
		}
	for (size_t i = 0; i < d->n_watches; i++)
		if (!gvr_ok(&d->watches[i].gvr) || d->watches[i].map == NULL) {
			mcf_errinfo_set(ei, MCF_EINVAL,
			    "controller %s: Watches[%zu] needs a resource and "
			    "a mapper",
			    d->name, i);
			return MCF_EINVAL;
		}
	return MCF_OK;
}

static void
stop_threads(mcf_ctrl_mgr *m)
{
	pthread_mutex_lock(&m->mtx);
	m->stopping = true;
	pthread_cond_broadcast(&m->cv);
	pthread_mutex_unlock(&m->mtx);
	for (size_t i = 0; i < m->n_ctrls; i++)
		if (m->ctrls[i].q != NULL)
			mcf_wq_close(m->ctrls[i].q);
	for (size_t i = 0; i < m->n_ctrls; i++) {
		ctrl *c = &m->ctrls[i];
		for (int t = 0; t < c->n_threads; t++)
			pthread_join(c->threads[t], NULL);
		c->n_threads = 0;
	}
}

static void
mgr_free(mcf_ctrl_mgr *m)
{
	if (m->collector)
		mcf_metrics_remove_collector(mcf_metrics_default(), collect, m);
	for (size_t i = 0; i < m->n_ctrls; i++) {
		mcf_wq_destroy(m->ctrls[i].q);
		free(m->ctrls[i].threads);
		free(m->ctrls[i].gvr_idx);
	}
	free(m->ctrls);
	free(m->gvrs);
	free(m->clusters);
	mcf_inf_loop_destroy(m->loop);
	free((char *) m->cfg.user_agent);
	free((char *) m->cfg.identity);
	free((char *) m->cfg.namespace);
	pthread_cond_destroy(&m->cv);
	pthread_mutex_destroy(&m->mtx);
	free(m);
}

int
mcf_ctrl_mgr_create(
    const mcf_ctrl_mgr_config *cfg, mcf_ctrl_mgr **out, mcf_errinfo *ei)
{
	if (cfg == NULL || out == NULL || cfg->n_defs == 0 ||
	    cfg->user_agent == NULL) {
		mcf_errinfo_set(ei, MCF_EINVAL,
		    "a manager needs controllers and a user agent");
		return MCF_EINVAL;
	}
	for (size_t i = 0; i < cfg->n_defs; i++) {
		int rc = check_def(cfg->defs[i], ei);
		if (rc != MCF_OK)
			return rc;
		for (size_t j = 0; j < i; j++)
			if (strcmp(cfg->defs[i]->name, cfg->defs[j]->name) ==
			    0) {
				mcf_errinfo_set(ei, MCF_EINVAL,
				    "two controllers named %s",
				    cfg->defs[i]->name);
				return MCF_EINVAL;
			}
	}
	mcf_ctrl_mgr *m = mcf_calloc(1, sizeof(*m));
	m->cfg = *cfg;
	m->cfg.user_agent = mcf_strdup(cfg->user_agent);
	m->cfg.identity = mcf_strdup(cfg->identity ? cfg->identity : "");
	m->cfg.namespace = cfg->namespace && cfg->namespace[0]
	    ? mcf_strdup(cfg->namespace)
	    : NULL;
	m->paused = true;
	pthread_mutex_init(&m->mtx, NULL);
	pthread_cond_init(&m->cv, NULL);

	m->n_ctrls = cfg->n_defs;
	m->ctrls = mcf_calloc(m->n_ctrls, sizeof(*m->ctrls));
	for (size_t i = 0; i < m->n_ctrls; i++) {
		ctrl               *c = &m->ctrls[i];
		const mcf_ctrl_def *d = cfg->defs[i];
		c->def = d;
		c->m = m;
		ctrl_add_gvr(c, gvr_add(m, &d->for_gvr));
		for (size_t j = 0; j < d->n_owns; j++)
			ctrl_add_gvr(c, gvr_add(m, &d->owns[j]));
		for (size_t j = 0; j < d->n_watches; j++)
			ctrl_add_gvr(c, gvr_add(m, &d->watches[j].gvr));
	}

	int rc = metrics_init(m, ei);
	if (rc == MCF_OK)
		rc = mcf_inf_loop_create(&m->loop, ei);
	for (size_t i = 0; rc == MCF_OK && i < m->n_ctrls; i++) {
		ctrl       *c = &m->ctrls[i];
		mcf_wq_opts o;
		mcf_wq_opts_init(&o);
		o.name = c->def->name;
		rc = mcf_wq_create(&c->q, &o);
		if (rc != MCF_OK) {
			mcf_errinfo_set(ei, rc, "work queue");
			break;
		}
		int n = c->def->max_concurrency > 0 ? c->def->max_concurrency
		                                    : 1;
		c->threads = mcf_calloc((size_t) n, sizeof(*c->threads));
		for (int t = 0; t < n; t++) {
			if (pthread_create(&c->threads[t], NULL,
			        reconcile_thread, c) != 0) {
				rc = MCF_ENOMEM;
				mcf_errinfo_set(ei, rc, "pthread_create");
				break;
			}
			c->n_threads++;
		}
	}
	if (rc != MCF_OK) {
		stop_threads(m);
		mgr_free(m);
		return rc;
	}
	*out = m;
	return MCF_OK;
}

static void
cluster_stop(mcf_ctrl_mgr *m, ctrl_cluster *cl)
{
	for (size_t i = 0; i < cl->n_hregs; i++)
		mcf_inf_remove_handler(cl->hregs[i].inf, cl->hregs[i].id);
	for (size_t i = 0; i < m->n_gvrs; i++)
		if (cl->infs[i] != NULL)
			mcf_inf_release(cl->infs[i]);
	memset(cl->infs, 0, m->n_gvrs * sizeof(*cl->infs));
	cl->n_hregs = 0;
}

static int
add_handler(ctrl_cluster *cl, ctrl *c, mcf_inf *inf, enum hrole role,
    const mcf_ctrl_watch *w)
{
	hreg *h = &cl->hregs[cl->n_hregs];
	*h = (hreg) {c, cl, role, w, inf, 0};
	/* The old state costs a decode per update: only the roles that
	 * enqueue it ask for it. */
	mcf_inf_handler hd = {on_add, on_update, on_delete, h,
	    .want_old = role != ROLE_FOR};
	int             rc = mcf_inf_add_handler(inf, &hd, &h->id);
	if (rc == MCF_OK)
		cl->n_hregs++;
	return rc;
}

int
mcf_ctrl_mgr_engage(mcf_ctrl_mgr *m, const char *cluster,
    const mcf_kubeconfig *kc, mcf_errinfo *ei)
{
	if (cluster == NULL || kc == NULL || strchr(cluster, '/') != NULL) {
		mcf_errinfo_set(ei, MCF_EINVAL, "bad cluster name");
		return MCF_EINVAL;
	}
	pthread_mutex_lock(&m->mtx);
	bool found;
	cluster_pos_locked(m, cluster, &found);
	pthread_mutex_unlock(&m->mtx);
	if (found) {
		mcf_errinfo_set(ei, MCF_EEXIST, "cluster %s already engaged",
		    cluster);
		return MCF_EEXIST;
	}

	ctrl_cluster *cl = mcf_calloc(1, sizeof(*cl));
	cl->name = mcf_strdup(cluster);
	cl->refs = 1;
	cl->since_ms = now_ms();
	int rc = mcf_kubeconfig_dup(kc, NULL, &cl->kc);
	if (rc != MCF_OK) {
		free(cl->name);
		free(cl);
		mcf_errinfo_set(ei, rc, "copying the kubeconfig");
		return rc;
	}
	cl->infs = mcf_calloc(m->n_gvrs, sizeof(*cl->infs));
	cl->reconciles  = mcf_calloc(m->n_ctrls, sizeof(*cl->reconciles));
	cl->errors      = mcf_calloc(m->n_ctrls, sizeof(*cl->errors));
	cl->ctrl_active = mcf_calloc(m->n_ctrls, sizeof(*cl->ctrl_active));
	size_t nh = 0;
	for (size_t i = 0; i < m->n_ctrls; i++)
		nh += 1 + m->ctrls[i].def->n_owns + m->ctrls[i].def->n_watches;
	cl->hregs = mcf_calloc(nh, sizeof(*cl->hregs));

	for (size_t g = 0; rc == MCF_OK && g < m->n_gvrs; g++) {
		const mcf_ctrl_gvr *gv = &m->gvrs[g];
		mcf_inf_config      ic = {
		         .cluster = cluster,
		         .kc = cl->kc,
		         .user_agent = m->cfg.user_agent,
		         .group = gv->group,
		         .version = gv->version,
		         .resource = gv->resource,
		         .namespace = gv->namespaced ? m->cfg.namespace : NULL,
		         .resync_ms = m->cfg.resync_ms,
		         .watch_timeout_s = m->cfg.watch_timeout_s,
                };
		rc = mcf_inf_acquire(m->loop, &ic, &cl->infs[g], ei);
	}
	for (size_t i = 0; rc == MCF_OK && i < m->n_ctrls; i++) {
		ctrl               *c = &m->ctrls[i];
		const mcf_ctrl_def *d = c->def;
		rc = add_handler(cl, c, cl->infs[gvr_index(m, &d->for_gvr)],
		    ROLE_FOR, NULL);
		for (size_t j = 0; rc == MCF_OK && j < d->n_owns; j++)
			rc = add_handler(cl, c,
			    cl->infs[gvr_index(m, &d->owns[j])], ROLE_OWNS,
			    NULL);
		for (size_t j = 0; rc == MCF_OK && j < d->n_watches; j++)
			rc = add_handler(cl, c,
			    cl->infs[gvr_index(m, &d->watches[j].gvr)],
			    ROLE_WATCH, &d->watches[j]);
		if (rc != MCF_OK)
			mcf_errinfo_set(ei, rc, "adding informer handlers");
	}
	if (rc != MCF_OK) {
		cluster_stop(m, cl);
		cluster_free(cl);
		return rc;
	}

	pthread_mutex_lock(&m->mtx);
	size_t pos = cluster_pos_locked(m, cluster, &found);
	m->clusters = mcf_realloc(
	    m->clusters, (m->n_clusters + 1) * sizeof(*m->clusters));
	memmove(&m->clusters[pos + 1], &m->clusters[pos],
	    (m->n_clusters - pos) * sizeof(*m->clusters));
	m->clusters[pos] = cl;
	m->n_clusters++;
	pthread_mutex_unlock(&m->mtx);
	mcf_log_info(LOG_ID, "engaged cluster %s at %s", cluster, kc->server);
	return MCF_OK;
}

int
mcf_ctrl_mgr_disengage(mcf_ctrl_mgr *m, const char *cluster)
{
	pthread_mutex_lock(&m->mtx);
	bool   found;
	size_t pos = cluster_pos_locked(m, cluster, &found);
	if (!found) {
		pthread_mutex_unlock(&m->mtx);
		return MCF_ENOENT;
	}
	ctrl_cluster *cl = m->clusters[pos];
	memmove(&m->clusters[pos], &m->clusters[pos + 1],
	    (m->n_clusters - pos - 1) * sizeof(*m->clusters));
	m->n_clusters--;
	cl->gone = true;
	/* Status readers hold `readers` while they look at the informers
	 * that cluster_stop releases. */
	while (cl->active > 0 || cl->readers > 0)
		pthread_cond_wait(&m->cv, &m->mtx);
	pthread_mutex_unlock(&m->mtx);

	/* Handlers may still enqueue keys of this cluster until they are
	 * removed; those keys are dropped when they come up. */
	cluster_stop(m, cl);
	pthread_mutex_lock(&m->mtx);
	cluster_unref_locked(cl);
	pthread_mutex_unlock(&m->mtx);
	mcf_log_info(LOG_ID, "disengaged cluster %s", cluster);
	return MCF_OK;
}

void
mcf_ctrl_mgr_resume(mcf_ctrl_mgr *m)
{
	pthread_mutex_lock(&m->mtx);
	m->paused = false;
	pthread_cond_broadcast(&m->cv);
	pthread_mutex_unlock(&m->mtx);
}

void
mcf_ctrl_mgr_pause(mcf_ctrl_mgr *m)
{
	pthread_mutex_lock(&m->mtx);
	m->paused = true;
	while (m->active_total > 0)
		pthread_cond_wait(&m->cv, &m->mtx);
	pthread_mutex_unlock(&m->mtx);
}

/* A status reader's hold on an engaged cluster: its informers stay until
 * reader_put (disengage waits for readers).  NULL if not engaged. */
static ctrl_cluster *
reader_get(mcf_ctrl_mgr *m, const char *cluster)
{
	pthread_mutex_lock(&m->mtx);
	ctrl_cluster *cl = cluster_find_locked(m, cluster);
	if (cl != NULL) {
		cl->refs++;
		cl->readers++;
	}
	pthread_mutex_unlock(&m->mtx);
	return cl;
}

static void
reader_put(mcf_ctrl_mgr *m, ctrl_cluster *cl)
{
	pthread_mutex_lock(&m->mtx);
	cl->readers--;
	pthread_cond_broadcast(&m->cv);
	cluster_unref_locked(cl);
	pthread_mutex_unlock(&m->mtx);
}

int
mcf_ctrl_mgr_cluster_status(
    mcf_ctrl_mgr *m, const char *cluster, mcf_ctrl_cluster_status *out)
{
	ctrl_cluster *cl = reader_get(m, cluster);
	if (cl == NULL)
		return MCF_ENOENT;

	memset(out, 0, sizeof(*out));
	out->state = MCF_CTRL_CLUSTER_SYNCED;
	out->since_ms = cl->since_ms;
	size_t rlen = 0;
	for (size_t g = 0; g < m->n_gvrs; g++) {
		mcf_inf *inf = cl->infs[g];
		if (inf == NULL)
			continue;
		out->objects += mcf_inf_count(inf);
		mcf_inf_stats st;
		mcf_inf_get_stats(inf, &st);
		const char *res = m->gvrs[g].resource;
		if (mcf_inf_has_synced(inf)) {
			/* Synced once, but its server keeps failing now
			 * (the plane went away): the cache is going stale. */
			if (st.last_err != MCF_OK &&
			    st.last_err != MCF_ENOENT &&
			    st.consecutive_errors >= FAILING_AFTER) {
				out->state = MCF_CTRL_CLUSTER_FAILING;
				snprintf(out->reason, sizeof(out->reason),
				    "%s: %.200s", res, st.last_error);
				break;
			}
			continue;
		}
		if (st.last_err == MCF_ENOENT) {
			/* Not served (CRD missing): its controller waits. */
			rlen += (size_t) snprintf(out->reason + rlen,
			    rlen < sizeof(out->reason) ? sizeof(out->reason) - rlen
			                               : 0,
			    "%swaiting for %s", rlen ? "; " : "", res);
		} else if (st.last_err != MCF_OK &&
		    st.request_errors >= FAILING_AFTER) {
			out->state = MCF_CTRL_CLUSTER_FAILING;
			snprintf(out->reason, sizeof(out->reason), "%s: %.200s", res,
			    st.last_error);
			break;
		} else if (out->state == MCF_CTRL_CLUSTER_SYNCED) {
			out->state = MCF_CTRL_CLUSTER_ENGAGING;
		}
		if (rlen >= sizeof(out->reason))
			rlen = sizeof(out->reason) - 1;
	}
	reader_put(m, cl);
	return MCF_OK;
}

char **
mcf_ctrl_mgr_clusters(mcf_ctrl_mgr *m)
{
	pthread_mutex_lock(&m->mtx);
	char **v = mcf_calloc(m->n_clusters + 1, sizeof(*v));
	for (size_t i = 0; i < m->n_clusters; i++)
		v[i] = mcf_strdup(m->clusters[i]->name);
	pthread_mutex_unlock(&m->mtx);
	return v;
}

/* A resource's informer state in one cluster: "synced", "waiting" (not
 * served: the CRD is missing), "failing" or "engaging". */
static const char *
inf_state(const mcf_inf *inf_c)
{
	mcf_inf *inf = (mcf_inf *) inf_c;
	if (inf == NULL)
		return "engaging";
	mcf_inf_stats st;
	mcf_inf_get_stats(inf, &st);
	if (mcf_inf_has_synced(inf))
		return st.last_err != MCF_OK && st.last_err != MCF_ENOENT &&
		        st.consecutive_errors >= FAILING_AFTER
		    ? "failing"
		    : "synced";
	if (st.last_err == MCF_ENOENT)
		return "waiting";
	if (st.last_err != MCF_OK && st.request_errors >= FAILING_AFTER)
		return "failing";
	return "engaging";
}

static int
state_rank(const char *s)
{
	/* The worst state of a controller's resources wins. */
	return strcmp(s, "failing") == 0    ? 3
	    : strcmp(s, "engaging") == 0    ? 2
	    : strcmp(s, "waiting") == 0     ? 1
	                                    : 0;
}

json_t *
mcf_ctrl_mgr_cluster_json(mcf_ctrl_mgr *m, const char *cluster)
{
	ctrl_cluster *cl = reader_get(m, cluster);
	if (cl == NULL)
		return NULL;

	char *prefix = mcf_asprintf("%s/", cluster);
	json_t *a = json_array();
	for (size_t i = 0; i < m->n_ctrls; i++) {
		ctrl       *c     = &m->ctrls[i];
		const char *state = "synced";
		for (size_t j = 0; j < c->n_gvr_idx; j++) {
			const char *s = inf_state(cl->infs[c->gvr_idx[j]]);
			if (state_rank(s) > state_rank(state))
				state = s;
		}
		mcf_wq_prefix_count qc;
		mcf_wq_count_prefix(c->q, prefix, &qc);
		pthread_mutex_lock(&m->mtx);
		uint64_t rec = cl->reconciles[i], err = cl->errors[i];
		int      act = cl->ctrl_active[i];
		pthread_mutex_unlock(&m->mtx);
		json_array_append_new(a,
		    json_pack("{s:s,s:s,s:I,s:I,s:I,s:I,s:i}", "name",
		        c->def->name, "sync", state, "queue_depth",
		        (json_int_t) qc.queued, "requeues_waiting",
		        (json_int_t) qc.waiting, "reconciles", (json_int_t) rec,
		        "errors", (json_int_t) err, "active", act));
	}
	free(prefix);
	reader_put(m, cl);
	return a;
}

void
mcf_ctrl_mgr_stats(mcf_ctrl_mgr *m, mcf_ctrl_stats *out)
{
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&m->mtx);
	for (size_t i = 0; i < m->n_ctrls; i++) {
		out->reconciles += m->ctrls[i].reconciles;
		out->reconcile_errors += m->ctrls[i].errors;
	}
	out->active = m->active_total;
	out->clusters = m->n_clusters;
	pthread_mutex_unlock(&m->mtx);
	for (size_t i = 0; i < m->n_ctrls; i++) {
		mcf_wq_metrics wm;
		mcf_wq_metrics_read(m->ctrls[i].q, &wm);
		out->queue_depth += wm.depth;
	}
}

void
mcf_ctrl_mgr_destroy(mcf_ctrl_mgr *m)
{
	if (m == NULL)
		return;
	mcf_ctrl_mgr_pause(m);
	for (;;) {
		pthread_mutex_lock(&m->mtx);
		char *name = m->n_clusters > 0
		    ? mcf_strdup(m->clusters[0]->name)
		    : NULL;
		pthread_mutex_unlock(&m->mtx);
		if (name == NULL)
			break;
		mcf_ctrl_mgr_disengage(m, name);
		free(name);
	}
	stop_threads(m);
	mgr_free(m);
}

/* ---- reconcile context ---- */

const char *
mcf_ctrl_ctx_cluster(const mcf_ctrl_ctx *ctx)
{
	return ctx->cl->name;
}

const char *
mcf_ctrl_ctx_controller(const mcf_ctrl_ctx *ctx)
{
	return ctx->c->def->name;
}

mcf_kc *
mcf_ctrl_ctx_client(mcf_ctrl_ctx *ctx)
{
	return ctx->client;
}

static mcf_inf *
ctx_inf(mcf_ctrl_ctx *ctx, const mcf_ctrl_gvr *gvr)
{
	size_t g = gvr_index(ctx->m, gvr);
	if (g == SIZE_MAX)
		return NULL;
	for (size_t i = 0; i < ctx->c->n_gvr_idx; i++)
		if (ctx->c->gvr_idx[i] == g)
			return ctx->cl->infs[g];
	return NULL;
}

json_t *
mcf_ctrl_ctx_get(mcf_ctrl_ctx *ctx, const mcf_ctrl_gvr *gvr, const char *key)
{
	mcf_inf *inf = ctx_inf(ctx, gvr);
	return inf != NULL ? mcf_inf_get(inf, key) : NULL;
}

int
mcf_ctrl_ctx_list(mcf_ctrl_ctx *ctx, const mcf_ctrl_gvr *gvr,
    const char *index, const char *value, json_t ***out, size_t *n)
{
	mcf_inf *inf = ctx_inf(ctx, gvr);
	if (inf == NULL)
		return MCF_ENOENT;
	return mcf_inf_list(inf, index, value, out, n);
}

void
mcf_ctrl_ctx_event(mcf_ctrl_ctx *ctx, const json_t *obj, const char *type,
    const char *reason, const char *fmt, ...)
{
	char    msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	mcf_meta_recorder rec = {ctx->c->def->name,
	    ctx->m->cfg.identity[0] ? ctx->m->cfg.identity : NULL};
	mcf_meta_event_emit(ctx->client, &rec, obj, type, reason, "%s", msg);
}

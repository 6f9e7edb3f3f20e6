/*
 * controller.h — the controller runtime: controllers registered in a table,
 * run against any number of clusters (engaged projects).
 *
 * A controller is described by an mcf_ctrl_def: the resource it is `For`,
 * the resources it `Owns` (an event on an owned object enqueues the object's
 * controller owner if that owner is of the For kind), resources it
 * `Watches` with a mapper from an object to keys, a max concurrency and a
 * reconcile callback.  This is controller-runtime's builder, in a table.
 *
 * One manager (mcf_ctrl_mgr) runs every controller of a process:
 *   - one informer loop (informer.h) drives every watch of every cluster;
 *     informers are shared per (cluster, resource), so two controllers
 *     watching ConfigMaps in one project share one watch;
 *   - per controller one work queue (workqueue.h) for all clusters, as in
 *     multicluster-runtime: a queue key is "CLUSTER/NAMESPACE/NAME" (or
 *     "CLUSTER/NAME" for cluster-scoped resources; CLUSTER may be "" in the
 *     single-cluster mode, giving "/NAMESPACE/NAME");
 *   - per controller `max_concurrency` reconcile threads.  Each thread keeps
 *     its own REST client per cluster (a curl handle stays on its thread,
 *     STYLE.md §7), created on first use and dropped when the cluster is
 *     disengaged.
 *
 * Engage adds a cluster: its informers start and their events feed the
 * queues.  Disengage removes it: handlers are removed, informers released,
 * and the call returns only when no reconcile of that cluster is running
 * (the single-writer hand-off of ARCHITECTURE.md relies on it).  Keys of a
 * removed cluster still in a queue are dropped when they come up.
 *
 * Pause stops taking keys and returns when no reconcile runs (leader
 * election lost, or the worker's own Lease could not be renewed); resume
 * takes keys again.  A manager starts paused.
 *
 * Metrics (controller-runtime and client-go names) go to the default
 * registry of metrics.h: controller_runtime_reconcile_total{controller,
 * result}, controller_runtime_reconcile_errors_total{controller},
 * controller_runtime_reconcile_time_seconds{controller},
 * controller_runtime_max_concurrent_reconciles{controller},
 * controller_runtime_active_workers{controller}, and the workqueue_* family
 * for each controller's queue (name = controller name).
 *
 * Threads: mcf_ctrl_mgr_* functions are called by one owner thread (main or
 * the worker's control thread), except mcf_ctrl_mgr_cluster_status and
 * mcf_ctrl_mgr_stats, which any thread may call.  Reconcile callbacks run on
 * the reconcile threads, one key at a time per key.
 */
#ifndef MCF_WORKER_CONTROLLER_H
#define MCF_WORKER_CONTROLLER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "err.h"
#include "kclient.h"
#include "kubeconfig.h"

typedef struct mcf_ctrl_mgr mcf_ctrl_mgr;
typedef struct mcf_ctrl_ctx mcf_ctrl_ctx;

/* A resource a controller names.  Plain value type; strings static. */
typedef struct mcf_ctrl_gvr {
	const char *group; /* "" for the core group */
	const char *version;
	const char *resource; /* plural */
	const char *kind;
	bool        namespaced;
} mcf_ctrl_gvr;

/* What a reconcile asks for next. */
typedef enum mcf_ctrl_result {
	MCF_CTRL_DONE = 0,      /* success; forget the key's backoff */
	MCF_CTRL_REQUEUE,       /* requeue rate-limited, not an error */
	MCF_CTRL_REQUEUE_AFTER, /* requeue after `requeue_after_ms` */
	MCF_CTRL_ERROR,         /* error: rate-limited requeue, counted */
} mcf_ctrl_result;

/* Maps an object of a Watches resource to keys of the For resource
 * ("NAMESPACE/NAME" or "NAME", without the cluster) by calling `emit` for
 * each.  Runs on the informer loop thread: must be quick. */
typedef void (*mcf_ctrl_map_fn)(const json_t *obj,
    void (*emit)(void *ectx, const char *key), void *ectx, void *arg);

typedef struct mcf_ctrl_watch {
	mcf_ctrl_gvr    gvr;
	mcf_ctrl_map_fn map;
	void           *arg;
} mcf_ctrl_watch;

/* The reconcile callback: make the world match the object `ns`/`name` (ns
 * NULL for cluster-scoped) in the context's cluster.  Sets
 * `*requeue_after_ms` for MCF_CTRL_REQUEUE_AFTER. */
typedef mcf_ctrl_result (*mcf_ctrl_reconcile_fn)(mcf_ctrl_ctx *ctx,
    const char *ns, const char *name, int64_t *requeue_after_ms);

/* A controller, registered at build time (one static table per process). */
typedef struct mcf_ctrl_def {
	const char           *name; /* metrics label, logs, Event source */
	mcf_ctrl_gvr          for_gvr;
	const mcf_ctrl_gvr   *owns;
	size_t                n_owns;
	const mcf_ctrl_watch *watches;
	size_t                n_watches;
	int                   max_concurrency; /* 0: 1 */
	mcf_ctrl_reconcile_fn reconcile;
} mcf_ctrl_def;

typedef struct mcf_ctrl_mgr_config {
	const mcf_ctrl_def *const *defs; /* borrowed for the manager's life */
	size_t                     n_defs;
	const char *user_agent; /* copied */
	const char *identity;   /* Event reportingInstance; copied */
	/* Watch only this namespace (single-cluster --namespace); NULL: all. */
	const char *namespace;
	int64_t     resync_ms;       /* informer resync; 0: off */
	int         watch_timeout_s; /* 0: informer default */
} mcf_ctrl_mgr_config;

/* Creates a paused manager with its informer loop and reconcile threads.
 * Errors: MCF_EINVAL (bad config, `ei` says which), loop start failures. */
int mcf_ctrl_mgr_create(
    const mcf_ctrl_mgr_config *cfg, mcf_ctrl_mgr **out, mcf_errinfo *ei);

/* Starts watching `cluster` (copied; "" for the single cluster) at the API
 * server `kc` (borrowed for the call, copied).  MCF_EEXIST if engaged. */
int mcf_ctrl_mgr_engage(mcf_ctrl_mgr *m, const char *cluster,
    const mcf_kubeconfig *kc, mcf_errinfo *ei);

/* Stops everything of `cluster` and returns once no reconcile of it runs
 * and its caches are freed.  MCF_ENOENT if not engaged. */
int mcf_ctrl_mgr_disengage(mcf_ctrl_mgr *m, const char *cluster);

/* Starts taking keys from the queues. */
void mcf_ctrl_mgr_resume(mcf_ctrl_mgr *m);

/* Stops taking keys; returns once no reconcile runs (at most the running
 * reconciles' duration).  Queued keys stay queued. */
void mcf_ctrl_mgr_pause(mcf_ctrl_mgr *m);

/* Per-cluster state for /status and readiness. */
typedef enum mcf_ctrl_cluster_state {
	MCF_CTRL_CLUSTER_ENGAGING, /* some informer has not listed yet */
	MCF_CTRL_CLUSTER_SYNCED,   /* every informer listed (a resource the
	                              cluster does not serve counts as
	                              synced: its controller waits for it) */
	MCF_CTRL_CLUSTER_FAILING,  /* an informer's list keeps failing */
} mcf_ctrl_cluster_state;

typedef struct mcf_ctrl_cluster_status {
	mcf_ctrl_cluster_state state;
	char                   reason[256]; /* FAILING: why; waiting CRDs */
	int64_t                since_ms;    /* monotonic ms of engage */
	uint64_t               objects;     /* objects cached */
} mcf_ctrl_cluster_status;

/* MCF_ENOENT if `cluster` is not engaged.  Any thread. */
int mcf_ctrl_mgr_cluster_status(
    mcf_ctrl_mgr *m, const char *cluster, mcf_ctrl_cluster_status *out);

/* Per controller in one engaged cluster, for /status: an array of
 * {name, sync ("synced", "waiting" for a CRD, "engaging", "failing": the
 * worst of the resources it reads), queue_depth (its keys of this cluster
 * queued now), requeues_waiting (in the delay heap), reconciles, errors,
 * active}.  NULL if `cluster` is not engaged.  Any thread. */
json_t *mcf_ctrl_mgr_cluster_json(mcf_ctrl_mgr *m, const char *cluster);

/* Names of the engaged clusters, a NULL-terminated malloc'd array of
 * malloc'd strings (free each, then the array).  Any thread. */
char **mcf_ctrl_mgr_clusters(mcf_ctrl_mgr *m);

/* Totals for /status.  Any thread. */
typedef struct mcf_ctrl_stats {
	uint64_t reconciles;
	uint64_t reconcile_errors;
	int64_t  queue_depth; /* summed over controllers */
	int64_t  active;      /* reconciles running now */
	size_t   clusters;
} mcf_ctrl_stats;
void mcf_ctrl_mgr_stats(mcf_ctrl_mgr *m, mcf_ctrl_stats *out);

/* Disengages every cluster, stops the reconcile threads after their
 * current reconcile, stops the loop, frees.  NULL is allowed. */
void mcf_ctrl_mgr_destroy(mcf_ctrl_mgr *m);

/* ---- what a reconcile callback may use ---- */

/* The cluster name ("" in single-cluster mode). */
const char *mcf_ctrl_ctx_cluster(const mcf_ctrl_ctx *ctx);
/* The controller's name. */
const char *mcf_ctrl_ctx_controller(const mcf_ctrl_ctx *ctx);
/* A REST client for the cluster, owned by the reconcile thread: use it
 * during the call only. */
mcf_kc *mcf_ctrl_ctx_client(mcf_ctrl_ctx *ctx);
/* Cache reads of a resource the controller names (For, Owns or Watches)
 * in the context's cluster.  `key` is "NS/NAME" or "NAME".  Returns a new
 * reference (json_decref it; never modify it), or NULL when absent or the
 * resource is not one the controller names. */
json_t *mcf_ctrl_ctx_get(
    mcf_ctrl_ctx *ctx, const mcf_ctrl_gvr *gvr, const char *key);
/* Objects of `gvr` whose index `index` (informer.h names; NULL: all) has
 * `value`: *out a malloc'd array of *n new references; free with
 * mcf_inf_objs_free.  MCF_ENOENT for a resource the controller does not
 * name. */
int mcf_ctrl_ctx_list(mcf_ctrl_ctx *ctx, const mcf_ctrl_gvr *gvr,
    const char *index, const char *value, json_t ***out, size_t *n);
/* Emits a core/v1 Event about `obj` (type "Normal" or "Warning") from
 * this controller; failures are logged, never fatal. */
void mcf_ctrl_ctx_event(mcf_ctrl_ctx *ctx, const json_t *obj,
    const char *type, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

#endif /* MCF_WORKER_CONTROLLER_H */

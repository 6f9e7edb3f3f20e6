/*
 * informer.h — shared informers (list + watch + cache + handlers), all
 * driven by one event loop thread.
 *
 * An informer mirrors one collection of one API server: a paginated LIST,
 * then a WATCH from the list's resourceVersion with bookmarks
 * (allowWatchBookmarks=true) and a timeoutSeconds that is renewed when the
 * server ends the watch.  A watch that ends, cleanly or not, resumes from
 * the last resourceVersion seen (bookmarks included) without listing
 * again; only a 410 Gone (or a 404 / "too large resource version")
 * relists, and the relist is delivered to the handlers as the difference
 * to the cache (adds, updates, deletes).  Failed requests (429, 5xx,
 * transport errors, a 404 while a CRD is not served yet) are retried
 * after a jittered exponential backoff (client-go's reflector: 800 ms,
 * doubling, capped at 30 s, jitter factor 1.0, Retry-After honoured as a
 * minimum).  A malformed, oversize or cut watch stream ends that watch
 * with a logged error; the informer resumes from the last good
 * resourceVersion.
 *
 * Cache: objects keyed "namespace/name" ("name" when cluster-scoped), with
 * indexes (namespace, owner uid, custom).  metadata.managedFields is
 * stripped before an object is cached.  The cache keeps each object as
 * one copy of its compact JSON text (about 1.1 times its size, where a
 * jansson tree takes about 3 times), plus its key, resourceVersion and
 * index memberships.  Readers (mcf_inf_get, mcf_inf_list) pay a decode
 * instead: each call returns new trees decoded from that text (about
 * 1 µs per KiB), which the caller owns and must still treat as read-only
 * (the contract stays the same as when trees were shared).
 *
 * Sharing: informers are shared per (cluster, group, version, resource,
 * namespace, label selector, field selector) within one loop; every
 * acquire returns the same informer and takes a reference.
 *
 * Threads: one loop (mcf_inf_loop) owns one thread that runs every
 * informer's HTTP requests (lists and watches) through one libcurl multi
 * handle driven by epoll, decodes streams, updates caches and calls
 * handlers; no informer has a thread of its own.  Other threads talk to
 * it through commands queued under a mutex and a wake-up eventfd.  Cache
 * readers (get/list/count/stats/has_synced) may run on any thread,
 * reconcile threads included; they take the informer's read lock only.
 * Handler calls hold the informer's dispatch lock, so remove_handler and
 * release can wait for a running handler to return.
 */
#ifndef MCF_COMMON_INFORMER_H
#define MCF_COMMON_INFORMER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "err.h"
#include "kubeconfig.h"

typedef struct mcf_inf_loop mcf_inf_loop;
typedef struct mcf_inf      mcf_inf;

/* Starts the loop thread.  curl_global_init() must have been called by
 * main().  Errors: MCF_ESYS (epoll, eventfd or thread creation failed);
 * `ei` (may be NULL) gets the message.  On success `*out` is new
 * (mcf_inf_loop_destroy); on failure it is untouched.  Any thread. */
int mcf_inf_loop_create(mcf_inf_loop **out, mcf_errinfo *ei);

/* Stops the thread and frees the loop.  Every informer must have been
 * released (a programming error otherwise: panics).  NULL is allowed.
 * Not from the loop thread. */
void mcf_inf_loop_destroy(mcf_inf_loop *loop);

/* Memory of the loop's store for cached objects (the texts and entries
 * of every informer's cache; indexes and tables come from malloc):
 * `mapped`, bytes obtained from the system, which the store keeps for
 * reuse until the loop is destroyed, and `in_use`, bytes the caches hold
 * now (rounded to the store's size classes).  Under AddressSanitizer the
 * store is bypassed and both are 0.  Either pointer may be NULL.  Any
 * thread. */
void mcf_inf_loop_mem(mcf_inf_loop *loop, size_t *mapped, size_t *in_use);

/* What an informer watches and how.  Borrowed for the acquire call; every
 * field is copied.  The key fields (cluster, group, version, resource,
 * namespace, label_selector, field_selector) identify a shared informer;
 * the others are taken from the first acquirer. */
typedef struct mcf_inf_config {
	/* Cluster name: part of the key, and of log lines ("" is fine). */
	const char *cluster;
	/* Server URL (with any path prefix), TLS material, token. */
	const mcf_kubeconfig *kc;
	const char           *user_agent; /* NULL: "mcfleet/VERSION" */
	const char           *group;      /* NULL or "": the core group */
	const char           *version;
	const char           *resource; /* plural */
	const char *namespace;          /* NULL: all namespaces or
	                                   cluster-scoped */
	const char *label_selector;     /* NULL: none */
	const char *field_selector;     /* NULL: none */
	int64_t     page_size;          /* LIST limit; 0: 500 */
	int64_t     resync_ms;          /* 0: no resync */
	int         watch_timeout_s;    /* 0: random in [300, 600) per watch */
	size_t      max_event_bytes; /* longest watch event line; 0: 16 MiB */
	/* Additions to the controller layer's contract; 0 for defaults. */
	int64_t backoff_initial_ms; /* first retry delay (800) */
	int64_t backoff_max_ms;     /* delay cap before jitter (30000) */
	int64_t list_timeout_ms;    /* per LIST page request (60000) */
} mcf_inf_config;

/* Returns in `*out` the informer for the key of `cfg`, creating and
 * starting it on the first acquire; each acquire takes one reference
 * (mcf_inf_release).  Errors: MCF_EINVAL (missing kc, server, version or
 * resource; a server that is not http(s)), MCF_EIO (libcurl refused a TLS
 * option); `ei` (may be NULL) gets the message and `*out` is untouched.
 * Any thread except the loop thread. */
int mcf_inf_acquire(mcf_inf_loop *loop, const mcf_inf_config *cfg,
    mcf_inf **out, mcf_errinfo *ei);

/* Drops one reference.  The last one stops the informer's requests, waits
 * until none of its handlers runs, and frees it with its cache (objects
 * that readers still hold stay valid: they hold references).  Not from the
 * loop thread, i.e. not from a handler (panics). */
void mcf_inf_release(mcf_inf *inf);

/* Event handlers.  They run on the loop thread, one event at a time, in
 * the order of the stream; objects are borrowed for the call (json_incref
 * to keep one, with mcf_inf_obj_ref/mcf_inf_obj_release if other threads
 * will see it; never modify it).  The object of a watch event is the
 * event's own tree, decoded once and freed after the handlers ran;
 * others (initial adds, relists, resyncs, old states) are decoded from
 * the cache's text when a handler needs them, once per event for all
 * handlers.  Handlers must be quick (enqueue a key) and must not call
 * mcf_inf_release or mcf_inf_remove_handler (they may call
 * mcf_inf_add_handler and the cache readers).  Any callback may be NULL.
 *   on_add: `initial` is true for the synthetic adds a newly added handler
 *     gets for objects already cached, and for the objects of the first
 *     list; false for objects created later (watch ADDED, or found by a
 *     relist).
 *   on_update: the new state, and the old one only for a handler that set
 *     `want_old`: for the others `old_obj` is NULL (the cache no longer
 *     holds trees, and decoding the old state costs as much as the new
 *     one).  On resync every handler gets old_obj == new_obj (one tree).
 *   on_delete: the last known state (the DELETED event's object, or after
 *     a relist that found an object gone, its last cached state). */
typedef struct mcf_inf_handler {
	void (*on_add)(void *arg, const json_t *obj, bool initial);
	void (*on_update)(
	    void *arg, const json_t *old_obj, const json_t *new_obj);
	void (*on_delete)(void *arg, const json_t *obj);
	void *arg; /* borrowed: must outlive the handler's registration */
	/* on_update wants `old_obj` (decoded from the cache for it).  Last
	 * so that the positional form {on_add, on_update, on_delete, arg}
	 * still compiles, with want_old false. */
	bool want_old;
} mcf_inf_handler;

/* Adds a handler (copied).  On the loop thread it first receives
 * on_add(initial=true) for every object then cached, before any later
 * event.  `*id` identifies it for mcf_inf_remove_handler.  Returns 0, or
 * MCF_EINVAL for NULL arguments.  Any thread, handlers included. */
int mcf_inf_add_handler(mcf_inf *inf, const mcf_inf_handler *h, uint64_t *id);

/* Removes a handler.  After return it is not running and will not be
 * called again.  Unknown ids are ignored.  Not from the loop thread
 * (panics). */
void mcf_inf_remove_handler(mcf_inf *inf, uint64_t id);

/* Index function: writes up to `cap` index values for `obj` into out[]
 * (strings borrowed from `obj`, or static) and returns how many; it may
 * return more than `cap`, meaning "truncated": the informer then calls it
 * again with room for all of them.  NULL values are skipped, and a value
 * given twice counts once.  The informer copies the values it keeps.
 * Called with the cache's write lock held, on the loop thread or the
 * thread adding the index; it must be a pure function of `obj`. */
typedef size_t (*mcf_inf_index_fn)(
    const json_t *obj, const char **out, size_t cap, void *arg);

/* Built-in indexes: metadata.namespace, and every
 * metadata.ownerReferences[].uid. */
#define MCF_INF_INDEX_NAMESPACE "namespace"
#define MCF_INF_INDEX_OWNER_UID "owner-uid"

/* Adds an index `name` (copied) computed by `fn` (with `arg`, borrowed
 * for the informer's life) and indexes the objects already cached, which
 * it decodes for that under the write lock (about 1 µs per KiB of object:
 * add indexes before the informer has synced when the cache is large).
 * Returns 0, MCF_EEXIST if an index of that name exists, MCF_EINVAL for
 * NULL arguments.  Any thread except from within an index function. */
int mcf_inf_add_index(
    mcf_inf *inf, const char *name, mcf_inf_index_fn fn, void *arg);

/* True once the first list has been cached and delivered to the
 * handlers.  Any thread. */
bool mcf_inf_has_synced(mcf_inf *inf);

/* Waits until has_synced, at most `timeout_ms` (negative: no limit).
 * Returns 0 or MCF_ETIMEDOUT.  Not from the loop thread. */
int mcf_inf_wait_synced(mcf_inf *inf, int64_t timeout_ms);

/* Cache readers, any thread.  `key` is "namespace/name" or "name".
 * Returns a new tree decoded from the cached text (json_decref or
 * mcf_inf_obj_release it; treat it as read-only), or NULL.  The read
 * lock is held only to take the text, not while decoding. */
json_t *mcf_inf_get(mcf_inf *inf, const char *key);

/* Objects of the cache: every object when `index` is NULL, else those
 * whose index `index` has the value `value`.  `*out` is a new malloc'd
 * array of `*n` new trees, decoded from the cached texts outside the lock
 * (NULL when `*n` is 0); free it with mcf_inf_objs_free.  Listing every
 * object of a large cache decodes every one of them: prefer an index.
 * Order unspecified.  Returns 0, MCF_ENOENT for an unknown index,
 * MCF_EINVAL for NULL arguments (`*out` NULL, `*n` 0). */
int mcf_inf_list(mcf_inf *inf, const char *index, const char *value,
    json_t ***out, size_t *n);

/* Frees the trees of an array from mcf_inf_list (dropping one reference
 * each) and the array.  NULL is allowed. */
void mcf_inf_objs_free(json_t **objs, size_t n);

/* json_incref and json_decref for objects handlers pass to other
 * threads, with atomic reads of the count and an acquire-release
 * decrement.  jansson's inline json_incref/json_decref are correct on the
 * hardware we run on, but read the count with a plain load and free
 * after a release-only decrement, which ThreadSanitizer reports as a race
 * when two threads hold the same object; code checked with it uses
 * these.  Both accept NULL; mcf_inf_obj_ref returns `obj`.  Any
 * thread. */
json_t *mcf_inf_obj_ref(json_t *obj);
void    mcf_inf_obj_release(json_t *obj);

/* Number of cached objects.  Any thread. */
size_t mcf_inf_count(mcf_inf *inf);

/* Counters and last error of an informer.  Plain value type. */
typedef struct mcf_inf_stats {
	/* LIST attempts started (a list is one attempt however many pages
	 * it has), and LIST pages received. */
	uint64_t lists;
	uint64_t list_pages;
	uint64_t relists_gone;   /* lists caused by a 410 Gone */
	uint64_t watches;        /* WATCH requests started */
	uint64_t events;         /* watch events applied (not bookmarks) */
	uint64_t bookmarks;      /* bookmarks received */
	uint64_t stream_errors;  /* malformed, oversize or cut streams */
	uint64_t request_errors; /* failed list/watch requests */
	/* Failed list/watch requests since the last one that succeeded: a
	 * synced informer whose server went away keeps counting. */
	uint32_t consecutive_errors;
	/* mcf_err of the last failure; 0 once a request succeeded after
	 * it. */
	int last_err;
	/* HTTP code of the last request answered; 404 while the resource is
	 * not served ("waiting for CRD"). */
	int last_http_code;
	/* Text of the last failure, "" if none. */
	char last_error[256];
	/* The last resourceVersion seen (list, event or bookmark). */
	char resource_version[64];
} mcf_inf_stats;

/* A consistent copy of the informer's stats.  Any thread. */
void mcf_inf_get_stats(mcf_inf *inf, mcf_inf_stats *out);

#endif /* MCF_COMMON_INFORMER_H */

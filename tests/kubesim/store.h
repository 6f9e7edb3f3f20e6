/*
 * store.h — kubesim's object store: control planes, objects, resource
 * versions and the event history.
 *
 * The root plane ("") and one plane per Project each own their objects and
 * one monotonically increasing resourceVersion counter (KUBE_API.md §2).
 * Every persisted write takes the next RV and appends one event to the
 * plane's history ring (the last `history` events).  The history serves
 * watch resume, continue tokens and Exact lists: the state at RV S is the
 * current state with every later event undone.  The compaction floor is the
 * oldest RV whose state can still be rebuilt.
 *
 * Objects are jansson values that are never modified once stored: readers
 * get borrowed pointers, writers store a new value.  Everything runs on the
 * loop thread; the store has no lock.
 */
#ifndef KS_STORE_H
#define KS_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "types.h"

typedef struct ks_store ks_store;
typedef struct ks_plane ks_plane;

enum ks_event_type {
	KS_ADDED,
	KS_MODIFIED,
	KS_DELETED,
};

/* One persisted write, as watchers see it. */
typedef struct ks_event {
	uint64_t           rv;
	enum ks_event_type type;
	const ks_type     *rtype; /* borrowed; valid only in on_event (NULL
				     in replayed events: a CRD's types may
				     be gone by then) */
	const char        *gr;    /* "group/resource" (owned by event) */
	const char        *key;   /* "ns/name" or "name" (owned by event) */
	json_t            *obj;   /* new state; for DELETED the last state
				     with the delete's RV (owned) */
	json_t            *old;   /* previous state or NULL (owned) */
} ks_event;

/* Observers hear about every event and plane removal, on the loop thread,
 * after the store is consistent. */
typedef struct ks_store_observer {
	void (*on_event)(void *arg, ks_plane *p, const ks_event *ev);
	void (*on_plane_gone)(void *arg, ks_plane *p);
	void *arg;
} ks_store_observer;

int  ks_store_create(ks_store **out, size_t history);
void ks_store_destroy(ks_store *st);

/* Adds an observer (at most 8). */
void ks_store_observe(ks_store *st, const ks_store_observer *obs);

/* The root plane; never NULL. */
ks_plane *ks_store_root(ks_store *st);

/* A project plane by name, or NULL. */
ks_plane *ks_store_plane(ks_store *st, const char *project);

/* Creates the empty plane of `project` (RV counter at 100);
 * returns the existing one if present.  Seeding its namespaces is the
 * caller's job (admission lives in admit.c). */
ks_plane *ks_store_plane_create(ks_store *st, const char *project);

/* Removes a project plane: observers' on_plane_gone runs, then its objects
 * are freed.  No-op for unknown names. */
void ks_store_plane_delete(ks_store *st, const char *project);

/* /_sim/restart: without `keep_state` every project plane is deleted and
 * the root emptied (the caller re-seeds it); with `reset_rv` every
 * counter goes back to 100 and the histories are dropped, so clients that
 * remember later resourceVersions see "too large" answers. */
void ks_store_restart(ks_store *st, bool keep_state, bool reset_rv);

/* Visits every plane (root first). */
void ks_store_foreach_plane(ks_store *st, void (*fn)(void *, ks_plane *),
    void *arg);

const char *ks_plane_name(const ks_plane *p); /* "" for the root */
bool        ks_plane_is_root(const ks_plane *p);
uint64_t    ks_plane_rv(const ks_plane *p);
uint64_t    ks_plane_floor(const ks_plane *p);
ks_store   *ks_plane_store(ks_plane *p);

/* Moves the floor up to `rv` (compaction); events at or below it are
 * dropped. */
void ks_plane_compact(ks_plane *p, uint64_t rv);

/* Per-plane slot for the watch hub (borrowed pointer it manages). */
void **ks_plane_user(ks_plane *p);

/* Type lookup: built-in types (minus root-only ones under a project) and
 * the plane's CRD types.  NULL when not served. */
const ks_type *ks_plane_type(ks_plane *p, const char *group,
    const char *version, const char *resource);

/* Every served type in discovery order; `*out` is a new array of borrowed
 * pointers (free the array only). */
size_t ks_plane_types(ks_plane *p, const ks_type ***out);

/* Installs the types of CRD `crd_name` (steals `types`, an array of `n` new
 * types) replacing any earlier ones of the same CRD. */
void ks_plane_set_crd_types(ks_plane *p, const char *crd_name,
    ks_type **types, size_t n);

/* Removes the types of CRD `crd_name` and every object of them (final
 * deletes, DELETED events). */
void ks_plane_drop_crd_types(ks_plane *p, const char *crd_name);

/* Object key: "ns/name" for namespaced, "name" for cluster-scoped. */
void ks_key(const ks_type *t, const char *ns, const char *name, char *buf,
    size_t len);

/* Borrowed current object, or NULL. */
const json_t *ks_plane_get(ks_plane *p, const ks_type *t, const char *ns,
    const char *name);

/* Persists `obj` (steals it): takes the next RV, stamps
 * metadata.resourceVersion, stores it and emits ADDED (when absent) or
 * MODIFIED.  Returns the stored (borrowed) object. */
const json_t *ks_plane_put(ks_plane *p, const ks_type *t, json_t *obj);

/* Removes an object for good: takes the next RV and emits DELETED with the
 * last state stamped with that RV — `final` when given (stolen; an update
 * that emptied the finalizers of a deleting object), else the stored one.
 * Returns that final state (new reference, caller decrefs) or NULL when
 * absent (then `final` is freed). */
json_t *ks_plane_remove(ks_plane *p, const ks_type *t, const char *ns,
    const char *name, json_t *final);

/* Visits objects of type `t` in key order, as they were at `at_rv` (0 =
 * latest), restricted to namespace `ns` (NULL = all) and to keys greater
 * than `after` (NULL = from the start).  `fn` returns false to stop.
 * Returns MCF_EGONE when `at_rv` is below the floor. */
int ks_plane_list(ks_plane *p, const ks_type *t, const char *ns,
    uint64_t at_rv, const char *after,
    bool (*fn)(void *arg, const char *key, const json_t *obj), void *arg);

/* The compact JSON text of `obj` when it is the current object at `key`
 * (cached until the object changes), else NULL.  `*len` gets its length.
 * Borrowed until the object changes.  Lists and watches use it so an
 * object is serialised once, not once per reader. */
const char *ks_plane_text(ks_plane *p, const ks_type *t, const char *key,
    const json_t *obj, size_t *len);

/* Number of objects of type `t` (latest). */
size_t ks_plane_count(ks_plane *p, const ks_type *t);

/* Visits the retained events with RV > `since` in order.  MCF_EGONE when
 * `since` is below the floor. */
int ks_plane_events_since(ks_plane *p, uint64_t since,
    void (*fn)(void *arg, const ks_event *ev), void *arg);

#endif /* KS_STORE_H */

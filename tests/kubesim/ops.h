/*
 * ops.h — the write and read verbs on one object, independent of HTTP, so
 * the request handler and the simulated controllers (milo.c, namespace
 * cleanup) share one pipeline (KUBE_API.md §4).
 *
 * Every function fills `r` with the HTTP code and body a real server would
 * send and returns 0 on success or -1 on failure.  Bodies passed in are
 * stolen.  Loop thread only.
 */
#ifndef KS_OPS_H
#define KS_OPS_H

#include <stdbool.h>

#include <jansson.h>

#include "admit.h"
#include "sim.h"
#include "status.h"
#include "store.h"

enum ks_patch_type {
	KS_PATCH_MERGE,     /* application/merge-patch+json */
	KS_PATCH_JSON,      /* application/json-patch+json */
	KS_PATCH_STRATEGIC, /* application/strategic-merge-patch+json */
};

/* Registers the store observer that keeps project planes, CRD types and
 * namespace cleanup in step with the objects.  Call once after the watch
 * hub has registered its own observer (so watchers see an event before the
 * writes it causes). */
void ks_ops_init(ks_sim *s);

/* Cancels and frees the scheduled namespace sweeps (shutdown). */
void ks_ops_fini(ks_sim *s);

int ks_ops_get(ks_sim *s, ks_plane *p, const ks_type *t, const char *ns,
    const char *name, ks_result *r);

int ks_ops_create(ks_sim *s, ks_plane *p, const ks_type *t, const char *ns,
    json_t *body, const ks_admit_opts *o, ks_result *r);

int ks_ops_update(ks_sim *s, ks_plane *p, const ks_type *t, const char *ns,
    const char *name, json_t *body, bool status_sub, const ks_admit_opts *o,
    ks_result *r);

int ks_ops_patch(ks_sim *s, ks_plane *p, const ks_type *t, const char *ns,
    const char *name, enum ks_patch_type pt, const json_t *patch,
    bool status_sub, const ks_admit_opts *o, ks_result *r);

/* `delopts` is a DeleteOptions object (borrowed) or NULL. */
int ks_ops_delete(ks_sim *s, ks_plane *p, const ks_type *t, const char *ns,
    const char *name, const json_t *delopts, bool dry_run, ks_result *r);

/* Seeds a new plane: the root gets default, kube-system, kube-public and
 * kube-node-lease; a project plane default (labelled
 * miloapis.com/project-default=true) and milo-system
 * (miloapis.com/system=true). */
void ks_ops_seed_plane(ks_sim *s, ks_plane *p);

#endif /* KS_OPS_H */

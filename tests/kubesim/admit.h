/*
 * admit.h — admission: what the API server does to an object between the
 * request body and storage (KUBE_API.md §2, §4.3, §4.4, §5, §6).
 *
 * Metadata rules are shared by every kind; each built-in kind then has its
 * own defaulting, pruning and validation, and custom resources go through
 * their CRD schema (schema.h).  Failures fill a ks_result with the Status a
 * real server returns (400, 403, 404, 409, 422, 500).
 */
#ifndef KS_ADMIT_H
#define KS_ADMIT_H

#include <stdbool.h>

#include <jansson.h>

#include "sim.h"
#include "status.h"
#include "types.h"

enum ks_field_validation {
	KS_FV_WARN = 0, /* default: 200 with a Warning header */
	KS_FV_STRICT,   /* 400 on unknown fields */
	KS_FV_IGNORE,
};

typedef struct ks_admit_opts {
	enum ks_field_validation fv;
	bool                     dry_run;
} ks_admit_opts;

/* Turns request body `obj` (modified in place) into the object to store for
 * a create of type `t` in namespace `ns` (NULL for cluster scope): name or
 * generateName, system fields, namespace checks, kind defaults, pruning and
 * validation.  Returns 0, or -1 with the failure in `r`.  May set
 * r->warning. */
int ks_admit_create(ks_sim *s, ks_plane *p, const ks_type *t, const char *ns,
    json_t *obj, const ks_admit_opts *o, ks_result *r);

/* Turns proposed object `obj` (modified in place) into the object to store
 * for an update of `stored` (main resource, or the status subresource when
 * `status_sub`): copies system fields, applies the status rules, checks
 * finalizers while deleting, prunes, validates and bumps generation.  The
 * resourceVersion precondition is checked by the caller.  Returns 0 or -1
 * with the failure in `r`. */
int ks_admit_update(ks_sim *s, ks_plane *p, const ks_type *t,
    const json_t *stored, json_t *obj, bool status_sub,
    const ks_admit_opts *o, ks_result *r);

/* Validates an object name for type `t`; on failure fills `r` (422) and
 * returns -1. */
int ks_admit_name(const ks_type *t, const char *name, ks_result *r);

/* A new Namespace object with the defaults every namespace gets (label
 * kubernetes.io/metadata.name, spec.finalizers, status.phase Active, uid,
 * creationTimestamp), plus `labels` (borrowed, may be NULL). */
json_t *ks_admit_namespace(ks_sim *s, const char *name, const json_t *labels);

/* A new random UUIDv4 into buf (≥ 37 bytes). */
void ks_uuid(char *buf);

#endif /* KS_ADMIT_H */

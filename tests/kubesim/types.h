/*
 * types.h — the resource types a control plane serves.
 *
 * A type describes one group/version/resource: its kind, scope, whether it
 * has a status subresource, how objects are admitted (built-in kinds have
 * hand-written rules in admit.c; custom resources go through a compiled
 * CRD schema), which field selectors it supports, and the columns of its
 * Table form.  Built-in types are static and shared by every plane; a CRD
 * adds types to the one plane it was created in.
 */
#ifndef KS_TYPES_H
#define KS_TYPES_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "schema.h"

/* Which admission rules apply (admit.c). */
enum ks_kind_rules {
	KS_RULES_NAMESPACE,
	KS_RULES_CONFIGMAP,
	KS_RULES_SECRET,
	KS_RULES_LEASE,
	KS_RULES_EVENT,      /* core v1 Event */
	KS_RULES_EVENT_V1,   /* events.k8s.io/v1 Event */
	KS_RULES_CRD,        /* CustomResourceDefinition */
	KS_RULES_CUSTOM,     /* a custom resource (Project, PCP, CRDs) */
};

typedef struct ks_type {
	const char *group;     /* "" for the core group */
	const char *version;   /* "v1" */
	const char *resource;  /* plural: "configmaps" */
	const char *singular;  /* "configmap" */
	const char *kind;      /* "ConfigMap" */
	const char *list_kind; /* "ConfigMapList" */
	bool        namespaced;
	bool        has_status;  /* status subresource */
	bool        root_only;   /* not served under a project prefix */
	enum ks_kind_rules rules;
	const char *const *short_names; /* NULL-terminated, may be NULL */
	const char *const *categories;  /* NULL-terminated, may be NULL */
	const char *const *fields;      /* field selectors, NULL-terminated */
	ks_schema  *schema;  /* custom resources: owned by the type (CRD
				types) or static (Project, PCP) */
	const char *crd_name; /* the CRD that made this type, else NULL */
	json_t     *printer_columns; /* CRD additionalPrinterColumns or NULL */
} ks_type;

/* The built-in types; `count` receives how many.  Static storage. */
const ks_type *const *ks_types_builtin(size_t *count);

/* "resource" for core, "resource.group" otherwise (messages use it). */
void ks_type_gr(const ks_type *t, char *buf, size_t len);

/* "v1" for core, "group/version" otherwise. */
void ks_type_gv(const ks_type *t, char *buf, size_t len);

/* True when the type is a custom resource (CR rules: generation,
 * no unconditional update, no strategic merge patch). */
bool ks_type_is_custom(const ks_type *t);

/* Builds the types a CRD object defines (one per served version) into a new
 * array of new types (free with ks_type_free).  Validates the CRD spec;
 * returns 0 types and a message in `err` when it is invalid. */
size_t ks_types_from_crd(const json_t *crd, ks_type ***out, char *err,
    size_t errlen);
void   ks_type_free(ks_type *t);

#endif /* KS_TYPES_H */

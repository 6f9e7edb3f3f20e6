/*
 * schema.h — the structural-schema subset of CustomResourceDefinitions that
 * kubesim enforces: validation, pruning and defaulting of custom resources
 * (Project, ProjectControlPlane, and any CRD created at run time) against an
 * `openAPIV3Schema`.
 *
 * Enforced keywords: type (object, array, string, integer, number, boolean),
 * properties, required, items, enum, pattern (POSIX extended regex),
 * minLength, maxLength, minimum, maximum, minItems, maxItems, format
 * "date-time" (RFC 3339), nullable, default, additionalProperties (schema
 * form: map values), x-kubernetes-preserve-unknown-fields,
 * x-kubernetes-int-or-string.  Everything else is accepted and ignored.
 *
 * Errors are collected the way apiextensions reports them: one cause per
 * failing field, each with a Kubernetes cause reason, the field path and a
 * message, e.g. field "spec.ownerRef.kind", reason "FieldValueNotSupported",
 * message `Unsupported value: "Foo": supported values: "Organization"`.
 */
#ifndef KS_SCHEMA_H
#define KS_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

typedef struct ks_schema ks_schema;

/* Compiles `openapi` (an openAPIV3Schema object, borrowed; compiled schema
 * keeps what it needs).  Invalid schemas (bad regex, wrong keyword types)
 * return NULL with a message in `err`.  Result is new. */
ks_schema *ks_schema_compile(const json_t *openapi, char *err, size_t errlen);
void       ks_schema_free(ks_schema *s);

/* One validation failure. */
typedef struct ks_schema_cause {
	char *reason;  /* "FieldValueRequired", "FieldValueInvalid",
			  "FieldValueNotSupported", "FieldValueTypeInvalid",
			  "FieldValueTooLong", ... (owned) */
	char *field;   /* "spec.ownerRef.kind", "status.conditions[0].reason"
			  (owned) */
	char *message; /* `Unsupported value: "Foo": supported values:
			  "Organization"` (owned) */
} ks_schema_cause;

typedef struct ks_schema_result {
	ks_schema_cause *causes; /* owned array */
	size_t           count;
	char           **unknown; /* field paths pruned ("spec.foo"), owned */
	size_t           unknown_count;
} ks_schema_result;

/* Validates `obj` (a whole custom resource) in place: prunes fields the
 * schema does not know (recording their paths in `res->unknown`), applies
 * `default`s to absent fields whose parent object exists, then validates.
 * `metadata`, `apiVersion` and `kind` at the top level are never pruned or
 * validated here.  Returns the number of causes (0 = valid).  `res` must be
 * released with ks_schema_result_fini(). */
size_t ks_schema_apply(const ks_schema *s, json_t *obj, ks_schema_result *res);

void ks_schema_result_fini(ks_schema_result *res);

/* Applies only the defaults (no pruning, no validation); used when reading
 * objects from storage, where apiextensions defaults on the read path. */
void ks_schema_default(const ks_schema *s, json_t *obj);

/* "field: message" for cause i, or all causes joined with ", " — the text
 * that follows `<Kind>.<group> "<name>" is invalid: ` in a 422 Status.
 * New string. */
char *ks_schema_result_message(const ks_schema_result *res);

#endif /* KS_SCHEMA_H */

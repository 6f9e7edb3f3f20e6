/*
 * patch.h — the three PATCH dialects kubesim accepts (KUBE_API.md §4.5).
 *
 * All functions work on jansson values, never modify their inputs, and
 * return a new result through `*out` only on success.
 */
#ifndef KS_PATCH_H
#define KS_PATCH_H

#include <stddef.h>

#include <jansson.h>

/* Outcome of applying a patch. */
enum ks_patch_err {
	KS_PATCH_OK = 0,
	KS_PATCH_BAD_REQUEST, /* the patch document is malformed → HTTP 400 */
	KS_PATCH_INVALID,     /* a JSON patch op failed or a test failed → 422 */
};

/* RFC 7386 JSON merge patch: objects merge recursively, null deletes a key,
 * anything else (arrays, scalars) replaces.  A non-object patch replaces the
 * whole target.  Never fails on a valid JSON patch value. */
int ks_patch_merge(const json_t *target, const json_t *patch, json_t **out,
    char *err, size_t errlen);

/* RFC 6902 JSON patch: `patch` must be an array of operations (add, remove,
 * replace, move, copy, test) with RFC 6901 pointers ("~0", "~1", "-" for
 * append).  A non-array patch or an op without the fields it needs is
 * KS_PATCH_BAD_REQUEST; a path that does not exist, an index out of range or
 * a failed test is KS_PATCH_INVALID.  Applied atomically: on any failure the
 * target is untouched and nothing is returned. */
int ks_patch_json(const json_t *target, const json_t *patch, json_t **out,
    char *err, size_t errlen);

/* The strategic merge patch subset for ConfigMap, Secret, Namespace and
 * Lease: merge-patch semantics, except `metadata.finalizers` is unioned with
 * the existing list, `metadata.ownerReferences` merges by `uid`,
 * `$deleteFromPrimitiveList/<field>` removes listed items,
 * `$setElementOrder/<field>` and `$retainKeys` are ignored, and
 * `$patch: replace|delete|merge` inside a map is honoured.  A non-object
 * patch is KS_PATCH_BAD_REQUEST. */
int ks_patch_strategic(const json_t *target, const json_t *patch,
    json_t **out, char *err, size_t errlen);

#endif /* KS_PATCH_H */

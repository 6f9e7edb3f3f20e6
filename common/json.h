/*
 * json.h — small helpers over jansson.
 *
 * Paths are dotted field names ("metadata.name", "spec.ownerRef.kind");
 * a segment never indexes arrays.  Values returned as `borrowed` live as
 * long as the root they were found in is neither changed nor freed.
 */
#ifndef MCF_COMMON_JSON_H
#define MCF_COMMON_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "err.h"

/* Parses exactly one JSON value from `buf[0..len)`; trailing whitespace is
 * allowed, anything else is an error.  On failure returns MCF_EINVAL and
 * puts "line L, column C: <jansson text>" in `ei`.  Result is new. */
int mcf_json_parse(const char *buf, size_t len, json_t **out, mcf_errinfo *ei);

/* Compact serialisation (no spaces), key order preserved.  New string. */
char *mcf_json_dump(const json_t *v);

/* Borrowed value at `path`, or NULL when any segment is missing or a
 * non-object is traversed. */
json_t *mcf_json_path(const json_t *root, const char *path);

/* Borrowed string at `path`, or NULL when absent or not a string. */
const char *mcf_json_path_str(const json_t *root, const char *path);

/* Integer at `path` into `*out`; MCF_ENOENT if absent, MCF_EINVAL if not an
 * integer. */
int mcf_json_path_int(const json_t *root, const char *path, int64_t *out);

/* Sets `path` to `value`, creating intermediate objects; steals `value`
 * (also on failure).  MCF_EINVAL when a segment exists and is not an
 * object. */
int mcf_json_path_set(json_t *root, const char *path, json_t *value);

/* Removes the value at `path`; no error when absent. */
void mcf_json_path_del(json_t *root, const char *path);

/* Object at `key` of `obj`, created empty when absent.  Borrowed; NULL when
 * `key` exists but holds a non-object. */
json_t *mcf_json_object_ensure(json_t *obj, const char *key);

#endif /* MCF_COMMON_JSON_H */

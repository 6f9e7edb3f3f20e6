/*
 * strmap.h — a map from strings to pointers (open addressing, linear
 * probing, tombstones), for the coordinator's tables of projects, workers
 * and sessions.
 *
 * Keys are copied and owned by the map; values are the caller's (the map
 * never frees them).  Iteration order is the slot order: unspecified, and
 * stable only while the map is not changed.
 *
 * Thread model: none; a map belongs to one thread (the coordinator's
 * control thread).
 */
#ifndef MCF_COORDINATOR_STRMAP_H
#define MCF_COORDINATOR_STRMAP_H

#include <stdbool.h>
#include <stddef.h>

typedef struct mcf_strmap mcf_strmap;

/* Creates an empty map.  Never fails (alloc.h).  New: mcf_strmap_destroy. */
mcf_strmap *mcf_strmap_create(void);

/* Frees the map and its keys (not the values).  Accepts NULL. */
void mcf_strmap_destroy(mcf_strmap *m);

/* The value of `key` (borrowed for the call), or NULL. */
void *mcf_strmap_get(const mcf_strmap *m, const char *key);

/* Sets `key` (copied) to `value` (not NULL), replacing any value; returns
 * the previous value or NULL. */
void *mcf_strmap_put(mcf_strmap *m, const char *key, void *value);

/* Removes `key`; returns its value, or NULL when absent. */
void *mcf_strmap_del(mcf_strmap *m, const char *key);

/* Number of keys. */
size_t mcf_strmap_count(const mcf_strmap *m);

/* Iteration: `*pos` starts at 0; each call returns true with the next key
 * (borrowed until the map changes) and value, false at the end.  The map
 * must not change during an iteration, except through
 * mcf_strmap_del() of the key just returned. */
bool mcf_strmap_next(
    const mcf_strmap *m, size_t *pos, const char **key, void **value);

#endif /* MCF_COORDINATOR_STRMAP_H */

/*
 * table.h — server-side printing: the meta.k8s.io/v1 Table form that
 * `kubectl get` asks for (KUBE_API.md §1.4).
 *
 * Columns per built-in kind follow the real server's printers; custom
 * resources use their CRD's additionalPrinterColumns (simple JSONPath:
 * dotted fields and one `[?(@.field=='value')]` filter), else Name and Age.
 * Rows carry the object as PartialObjectMetadata.
 */
#ifndef KS_TABLE_H
#define KS_TABLE_H

#include <stdbool.h>
#include <time.h>

#include <jansson.h>

#include "types.h"

/* True when an Accept header asks for a Table first. */
bool ks_table_wanted(const char *accept);

/* columnDefinitions for type `t`.  New. */
json_t *ks_table_columns(const ks_type *t);

/* One row {"cells":[...],"object":{PartialObjectMetadata}} for `obj`, with
 * ages relative to `now`.  New. */
json_t *ks_table_row(const ks_type *t, const json_t *obj, time_t now);

/* apimachinery's duration.HumanDuration: "45s", "5m10s", "3h", "2d". */
void ks_table_human_duration(long long seconds, char *buf, size_t len);

#endif /* KS_TABLE_H */

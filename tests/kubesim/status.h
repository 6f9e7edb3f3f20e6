/*
 * status.h — metav1.Status bodies and the result of an API operation.
 *
 * Every non-2xx reply and every ERROR watch event carries a Status
 * (KUBE_API.md §4.1): kind, apiVersion, metadata {}, status "Failure",
 * message, reason, details {name, group, kind (the resource), causes,
 * retryAfterSeconds}, code.
 */
#ifndef KS_STATUS_H
#define KS_STATUS_H

#include <stdbool.h>

#include <jansson.h>

#include "types.h"

/* Outcome of one operation: an HTTP code and a body (object, list or
 * Status), plus optional headers. */
typedef struct ks_result {
	int     code;        /* HTTP status */
	json_t *body;        /* owned; NULL until set */
	char   *warning;     /* owned text for a "Warning: 299 - ..." header */
	int     retry_after; /* seconds for Retry-After, 0 for none */
} ks_result;

void ks_result_fini(ks_result *r);

/* Sets `r` to a failure Status.  `t` and `name` fill details (either may be
 * NULL).  Returns -1 so callers can `return ks_fail(...)`. */
int ks_fail(ks_result *r, int code, const char *reason, const ks_type *t,
    const char *name, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

/* Appends a cause {reason, message, field} to the failure in `r`. */
void ks_fail_cause(ks_result *r, const char *reason, const char *message,
    const char *field);

/* Sets `r` to a success (code, body stolen).  Returns 0. */
int ks_ok(ks_result *r, int code, json_t *body);

/* A new Status object for `code`/`reason`/`message` (ERROR events). */
json_t *ks_status_new(int code, const char *reason, const char *message);

/* The reason phrase Kubernetes uses for an HTTP code ("NotFound"). */
const char *ks_status_reason(int code);

#endif /* KS_STATUS_H */

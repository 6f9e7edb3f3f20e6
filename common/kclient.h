/*
 * kclient.h — synchronous Kubernetes REST client (STYLE.md §16).
 *
 * One generic client addresses any resource by (group, version, resource,
 * namespace, name) and exchanges jansson json_t values; no typed models.
 * Requests go to the kubeconfig's server URL, which may carry a path
 * prefix (a Milo project control plane), so "/api/v1/..." and
 * "/apis/G/V/..." are appended to it.  Path segments and query values are
 * percent-encoded.
 *
 * Every call returns an mcf_err code and, when the caller passes one, its
 * own mcf_kc_status (HTTP code, Status reason and message, Retry-After);
 * nothing about a call is kept in the client.  API errors are classified
 * by the Status reason first and the HTTP code second, as client-go does.
 *
 * Retries: 429 and 5xx answers (except 501) are retried for every verb,
 * and transport errors for GET only, waiting Retry-After when the server
 * sends it, else a jittered exponential backoff (200 ms doubling, capped
 * at 5 s), while attempts remain and the per-call deadline allows.  An
 * optional client-side token bucket (qps/burst, off by default) paces
 * every attempt.
 *
 * Threads: a client owns one libcurl easy handle, reused across calls so
 * that connections are kept alive.  A client must be used by one thread at
 * a time, and (STYLE.md §7) only by the thread that created it.  The
 * process must call curl_global_init() in main() before creating any
 * client.
 */
#ifndef MCF_COMMON_KCLIENT_H
#define MCF_COMMON_KCLIENT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "err.h"
#include "kubeconfig.h"

typedef struct mcf_kc mcf_kc;

/* Outcome of one call.  Cleared at the start of every call; on success
 * only http_code is set.  On an API error: the HTTP code, the Status
 * `reason` ("" when the body was not a Status) and `message` (the Status
 * message, else a printable excerpt of the body, else "HTTP <code>").  On
 * a transport error http_code is 0 and message holds curl's text.
 * retry_after is the last Retry-After in seconds, or 0. */
typedef struct mcf_kc_status {
	int  http_code;
	char reason[64];
	char message[512];
	int  retry_after;
} mcf_kc_status;

/* Client options; a zeroed struct (or NULL) gives the defaults. */
typedef struct mcf_kc_opts {
	int64_t timeout_ms;     /* per-call deadline, all attempts (30000) */
	int     max_attempts;   /* attempts per call, first included (10) */
	int     backoff_ms;     /* first backoff (200) */
	int     backoff_max_ms; /* backoff cap (5000) */
	double  qps;            /* client-side rate limit; 0: off */
	int     burst;          /* token bucket size when qps > 0 (1) */
	size_t  max_body;       /* response body limit (64 MiB) */
} mcf_kc_opts;

/* What a request addresses.  `group` NULL or "" is the core group
 * (/api/V); `namespace` NULL for cluster-scoped resources or lists across
 * all namespaces; `name` NULL for collections.  All borrowed for the
 * call. */
typedef struct mcf_kc_ref {
	const char *group;
	const char *version;
	const char *resource;
	const char *namespace;
	const char *name;
} mcf_kc_ref;

/* List options; NULL or 0 fields are left out of the query. */
typedef struct mcf_kc_list_opts {
	const char *label_selector;
	const char *field_selector;
	int64_t     limit;
	const char *cont; /* continue token from a previous page */
	const char *resource_version;
	const char *resource_version_match;
} mcf_kc_list_opts;

/* Delete options; NULL fields are left out of the DeleteOptions body. */
typedef struct mcf_kc_delete_opts {
	const char *precondition_uid;
	const char *precondition_rv;
	const char *propagation_policy; /* Background, Foreground, Orphan */
} mcf_kc_delete_opts;

enum mcf_kc_patch_type {
	MCF_KC_PATCH_MERGE,     /* application/merge-patch+json */
	MCF_KC_PATCH_JSON,      /* application/json-patch+json */
	MCF_KC_PATCH_STRATEGIC, /* application/strategic-merge-patch+json */
};

/* Creates a client for `kc` (borrowed for the call; everything needed is
 * copied).  `user_agent` (borrowed for the call, not NULL) is sent on
 * every request (ARCHITECTURE.md "Conventions").  `opts` may be NULL.
 * TLS: the server certificate is verified against kc->ca_pem (system
 * roots when NULL) unless kc->insecure; kc->cert_pem/key_pem are sent as
 * the client certificate.  Bearer token: kc->token_file, re-read whenever
 * its mtime or size changes, else kc->token.  kc->tls_server_name is not
 * honoured yet (logged).  Errors: MCF_EINVAL (bad argument or URL),
 * MCF_EIO (curl refused an option); `ei` (may be NULL) gets the message.
 * On success `*out` is new (mcf_kc_destroy); on failure untouched. */
int mcf_kc_create(const mcf_kubeconfig *kc, const char *user_agent,
    const mcf_kc_opts *opts, mcf_kc **out, mcf_errinfo *ei);

/* Closes the connection and frees `c`.  NULL is allowed. */
void mcf_kc_destroy(mcf_kc *c);

/* The requests.  On success `*out` is a new json_t (the decoded response
 * body) and 0 is returned; on failure `*out` is set to NULL and the
 * mcf_err code returned: MCF_ENOENT, MCF_EEXIST, MCF_ECONFLICT,
 * MCF_EGONE, MCF_EAGAIN, MCF_EINVAL, MCF_EPERM, MCF_EUNSUPP, MCF_ETOOBIG
 * (also a response over max_body), MCF_EINTERNAL, MCF_EUNAVAIL (API
 * errors), MCF_EIO (transport, TLS), MCF_ETIMEDOUT (the deadline passed
 * during an attempt or while rate-limited), MCF_EPROTO (a 2xx body that is
 * not JSON).  `st` may be NULL.  `body` and `patch` are borrowed for the
 * call.  `out` may be NULL when the caller does not want the body. */
int mcf_kc_get(
    mcf_kc *c, const mcf_kc_ref *ref, json_t **out, mcf_kc_status *st);
/* `ref->name` must be NULL; `opts` may be NULL. */
int mcf_kc_list(mcf_kc *c, const mcf_kc_ref *ref, const mcf_kc_list_opts *opts,
    json_t **out, mcf_kc_status *st);
/* POST to the collection (`ref->name` must be NULL). */
int mcf_kc_create_object(mcf_kc *c, const mcf_kc_ref *ref, const json_t *body,
    json_t **out, mcf_kc_status *st);
/* PUT `body` to the object, or to its status subresource. */
int mcf_kc_update(mcf_kc *c, const mcf_kc_ref *ref, const json_t *body,
    json_t **out, mcf_kc_status *st);
int mcf_kc_update_status(mcf_kc *c, const mcf_kc_ref *ref, const json_t *body,
    json_t **out, mcf_kc_status *st);
/* PATCH the object with the content type `type` selects. */
int mcf_kc_patch(mcf_kc *c, const mcf_kc_ref *ref, enum mcf_kc_patch_type type,
    const json_t *patch, json_t **out, mcf_kc_status *st);
/* DELETE the object; `opts` may be NULL.  `*out` is the deleted object
 * (or the object marked for deletion, or a Status). */
int mcf_kc_delete(mcf_kc *c, const mcf_kc_ref *ref,
    const mcf_kc_delete_opts *opts, json_t **out, mcf_kc_status *st);

/* Raw request: `method` to the server URL plus `path` (starting with '/',
 * already encoded, may hold a query), with `body` (may be NULL) sent as
 * application/json.  Same retries, results and errors as above.  For
 * paths the typed calls do not cover (discovery, /version, kubesim's
 * /_sim API). */
int mcf_kc_request(mcf_kc *c, const char *method, const char *path,
    const json_t *body, json_t **out, mcf_kc_status *st);

/* The bearer token the next request would send (re-reading the token file
 * if it changed), as a new string, or NULL when there is none.  For tests
 * and diagnostics. */
char *mcf_kc_current_token(mcf_kc *c);

/* For transfers the caller runs itself, such as the informers' watches
 * driven by one curl_multi event loop (informer.h).  Sets on `easy` (a
 * libcurl easy handle, CURL *, owned by the calling thread) the
 * connection options mcf_kc_create set on the client's own handle: user
 * agent, no signals, TCP keep-alive, http/https only, TLS verification
 * and material.  Appends to `*headers` (a curl_slist, may start NULL;
 * the caller frees it with curl_slist_free_all once the transfer is
 * over) "Accept: application/json" and, when a bearer token is
 * configured, its Authorization header, re-reading the token file if it
 * changed.  URL, method, callbacks, timeouts and CURLOPT_HTTPHEADER are
 * the caller's.  Call it before every request so a rotated token is
 * picked up.  It does not use the client's own handle, so a client used
 * only for this may be created on one thread and then used by another
 * (one thread at a time).  Errors: MCF_EINVAL, MCF_EIO (curl refused an
 * option; `*headers` unchanged). */
struct curl_slist;
int mcf_kc_easy_setup(
    mcf_kc *c, void *easy, struct curl_slist **headers, mcf_errinfo *ei);

/* Classifies an API error: Status `reason` first (may be NULL or ""),
 * then `http_code`.  Returns 0 for 2xx. */
int mcf_kc_classify(const char *reason, int http_code);

/* Counts one HTTP request in rest_client_requests_total{code,method,host}
 * of the default metrics registry (client-go's metric): `http_code` 0
 * means no response (code "<error>").  Every request of this client is
 * counted; the informer loop counts its own requests with it.  Any
 * thread. */
void mcf_kc_metrics_record(const char *method, const char *host, int http_code);

/* When the header line `line` (`n` bytes, as libcurl hands it over) is
 * "Retry-After: N" with N whole seconds in (0, 3600), returns N; else 0.
 * An HTTP-date is ignored, as by client-go. */
int mcf_kc_retry_after(const char *line, size_t n);

/* The host[:port] part of `url` into `out` (cut to `cap` - 1 bytes). */
void mcf_kc_url_host(const char *url, char *out, size_t cap);

#endif /* MCF_COMMON_KCLIENT_H */

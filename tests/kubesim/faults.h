/*
 * faults.h — fault-injection rules (KUBE_API.md §7, the contract).
 *
 * A rule matches requests by plane, method, verb, group, resource,
 * namespace, name, a path regex and a user-agent regex, and carries one
 * action.  `after` skips the first K matches, `count` limits how many
 * times it fires, `probability` draws from a PRNG seeded by --seed, and
 * `for_s` bounds its lifetime.  The request handler asks the rule set what
 * to do at two points: once the plane is known, and once the resource
 * request is parsed.  Loop thread only.
 */
#ifndef KS_FAULTS_H
#define KS_FAULTS_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

typedef struct ks_faults ks_faults;

enum ks_fault_action {
	KS_FA_NONE = 0,
	KS_FA_LATENCY,         /* latency_ms, jitter_ms, phase */
	KS_FA_STATUS,          /* status, retry_after, message */
	KS_FA_CONN_RESET,
	KS_FA_CONN_HANG,
	KS_FA_CONN_TRUNCATE,   /* after_bytes */
	KS_FA_WATCH_CLOSE,     /* after_events, after_s, mode */
	KS_FA_WATCH_EXPIRE,    /* form (also expire_storm) */
	KS_FA_EXPIRE_CONTINUE,
	KS_FA_TOO_LARGE_RV,
	KS_FA_STALE,           /* lag_rv */
	KS_FA_BOOKMARKS,       /* bookmarks_off, bookmark_every_ms */
	KS_FA_WATCH_BUFFER,    /* watch_buffer */
	KS_FA_THROTTLE,        /* throttle_bps */
	KS_FA_CONFLICT,
	KS_FA_PLANE_UNAVAILABLE, /* status */
	KS_FA_PLANE_GONE,
	KS_FA_PLANE_WARMUP,    /* the first `requests` to a new plane: 429 */
};

enum ks_close_mode {
	KS_CLOSE_CLEAN,
	KS_CLOSE_ABRUPT,
	KS_CLOSE_MIDLINE,
};

/* The action a request gets; plain values, valid until the next call. */
typedef struct ks_fault {
	enum ks_fault_action action;
	uint64_t             rule_id;
	int64_t              latency_ms;  /* with jitter already drawn */
	bool                 body_phase;  /* latency between body chunks */
	int                  status;
	int                  retry_after; /* seconds; 0 none */
	const char          *message;     /* borrowed from the rule */
	int64_t              after_bytes;
	int64_t              after_events; /* -1: unset */
	int64_t              after_ms;     /* -1: unset */
	enum ks_close_mode   mode;
	bool                 http_form;    /* expire as HTTP 410 */
	int64_t              lag_rv;
	bool                 bookmarks_off;
	int64_t              bookmark_every_ms;
	int64_t              watch_buffer;
	int64_t              throttle_bps;
} ks_fault;

/* What is known about a request when the rules are consulted. */
typedef struct ks_fault_req {
	const char *plane;    /* "" root, else the project */
	const char *method;
	const char *verb;     /* NULL before the resource is parsed */
	const char *group;
	const char *resource;
	const char *ns;
	const char *name;
	const char *path;     /* full request path */
	const char *ua;
	bool        is_watch;
	bool        has_rv;   /* resourceVersion neither "" nor "0" */
	bool        rv_zero;  /* resourceVersion is "0" */
	bool        has_continue;
	int64_t     now_ms;
} ks_fault_req;

ks_faults *ks_faults_create(uint64_t seed);
void       ks_faults_destroy(ks_faults *f);

/* Adds a rule from its JSON (§7); returns its id (> 0), or 0 with a
 * message in `err` when the rule is malformed. */
uint64_t ks_faults_add(ks_faults *f, const json_t *rule, int64_t now_ms,
    char *err, size_t errlen);

/* Removes one rule (false when unknown) or, with id 0, every rule. */
bool ks_faults_remove(ks_faults *f, uint64_t id);

/* The rules with their hit counts, for GET /_sim/faults.  New. */
json_t *ks_faults_describe(const ks_faults *f);

/* The functions below accept a NULL rule set (no faults). */

/* The plane-level action for `rq` (verb still NULL): unavailable, gone,
 * warm-up 429.  Fills `out` and returns true when one applies. */
bool ks_faults_plane(ks_faults *f, const ks_fault_req *rq, ks_fault *out);

/* Accumulated latency of matching latency rules plus the first other
 * action that applies to `rq`.  Returns true when anything applies. */
bool ks_faults_eval(ks_faults *f, const ks_fault_req *rq, int64_t *latency_ms,
    bool *body_phase, ks_fault *out);

/* For a "plane":"gone" rule: true, with the plane it names in `*plane`
 * (borrowed; NULL when it matches every plane). */
bool ks_faults_gone_plane(const ks_faults *f, uint64_t id, const char **plane);

/* Tells warm-up rules that a plane was created now. */
void ks_faults_plane_created(ks_faults *f, const char *plane);

#endif /* KS_FAULTS_H */

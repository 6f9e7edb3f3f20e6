/*
 * provider.h — the Milo provider: which projects are engageable, and
 * where their control planes are.
 *
 * ARCHITECTURE.md "The Milo provider (coordinator)".  Two modes:
 *
 *   external (default): Projects, resourcemanager.miloapis.com/v1alpha1
 *     (cluster-scoped); engageable while condition Ready is True; the
 *     endpoint is the core API server URL plus
 *     /apis/resourcemanager.miloapis.com/v1alpha1/projects/{name}/control-plane.
 *   internal: ProjectControlPlanes, infrastructure.miloapis.com/v1alpha1;
 *     engageable while ControlPlaneReady is True; the endpoint comes from
 *     a template in which "{name}" stands for the project name (default
 *     https://milo-apiserver.project-{name}.svc.cluster.local:6443).
 *
 * Disengaging: at once when the object is gone or has a deletionTimestamp;
 * when the condition stops being True (False, Unknown or absent), only
 * after it stayed so for the grace period (flapping is absorbed).  A
 * project whose condition was never True is simply not engageable.
 *
 * The coordinator's control thread feeds every informer event through
 * mcf_provider_observe() and mcf_provider_apply(), and calls
 * mcf_provider_tick() when mcf_provider_deadline() passes.  Everything
 * here is pure (time is passed in), so the grace logic is unit-tested
 * without a server.
 *
 * Thread model: no state; any thread.  Arguments borrowed for the call.
 */
#ifndef MCF_COORDINATOR_PROVIDER_H
#define MCF_COORDINATOR_PROVIDER_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "err.h"

enum mcf_provider_mode {
	MCF_PROVIDER_EXTERNAL = 0,
	MCF_PROVIDER_INTERNAL = 1,
};

#define MCF_PROVIDER_DEFAULT_TEMPLATE                                         \
	"https://milo-apiserver.project-{name}.svc.cluster.local:6443"

/* Configuration: a plain value type; strings borrowed for as long as the
 * configuration is used. */
typedef struct mcf_provider_cfg {
	enum mcf_provider_mode mode;
	const char *core_server; /* external: the core API URL (kubeconfig
	                            server, any path prefix kept) */
	const char *endpoint_template; /* internal: "{name}" is replaced;
	                                  NULL: the default */
	int64_t grace_ms; /* --disengage-grace; 0: disengage at once */
} mcf_provider_cfg;

/* "external" / "internal" → mode; MCF_EINVAL otherwise. */
int mcf_provider_mode_parse(const char *s, enum mcf_provider_mode *out);
const char *mcf_provider_mode_name(enum mcf_provider_mode mode);

/* What the mode watches: API group, version, plural, and the condition
 * type that makes an object engageable.  Static strings. */
const char *mcf_provider_group(enum mcf_provider_mode mode);
const char *mcf_provider_version(enum mcf_provider_mode mode);
const char *mcf_provider_resource(enum mcf_provider_mode mode);
const char *mcf_provider_condition(enum mcf_provider_mode mode);

/* Checks a template: it must contain "{name}" and start with http:// or
 * https://.  MCF_EINVAL with a message otherwise. */
int mcf_provider_template_check(const char *tmpl, mcf_errinfo *ei);

/* The control-plane URL of project `name` (new string). */
char *mcf_provider_endpoint(const mcf_provider_cfg *cfg, const char *name);

/* The engageability condition as an object shows it. */
enum mcf_provider_cond {
	MCF_PROVIDER_COND_ABSENT = 0,
	MCF_PROVIDER_COND_TRUE,
	MCF_PROVIDER_COND_FALSE,
	MCF_PROVIDER_COND_UNKNOWN,
};

/* One observation of a project object: a plain value type. */
typedef struct mcf_provider_obs {
	bool                   exists;   /* false: deleted (or never seen) */
	bool                   deleting; /* metadata.deletionTimestamp set */
	enum mcf_provider_cond cond;
	char                   reason[128]; /* the condition's reason, "" */
} mcf_provider_obs;

/* Reads `obj` (borrowed; NULL means the object is gone). */
void mcf_provider_observe(
    const mcf_provider_cfg *cfg, const json_t *obj, mcf_provider_obs *out);

/* Per-project engageability, kept by the caller: a plain value type;
 * zero it to start. */
typedef struct mcf_provider_state {
	bool    engageable;
	bool    in_grace;     /* engageable, condition not True: counting */
	int64_t not_ready_ms; /* when the condition stopped being True */
	char    reason[192];  /* why it is not engageable, or the grace */
} mcf_provider_state;

/* Applies an observation made at `now_ms` (any monotonic clock).
 * Returns true when `engageable` changed. */
bool mcf_provider_apply(const mcf_provider_cfg *cfg, mcf_provider_state *st,
    const mcf_provider_obs *obs, int64_t now_ms);

/* Ends a grace period that has run out by `now_ms`.  Returns true when
 * `engageable` turned false. */
bool mcf_provider_tick(
    const mcf_provider_cfg *cfg, mcf_provider_state *st, int64_t now_ms);

/* When mcf_provider_tick() has something to do: the end of the grace
 * period, or INT64_MAX. */
int64_t mcf_provider_deadline(
    const mcf_provider_cfg *cfg, const mcf_provider_state *st);

#endif /* MCF_COORDINATOR_PROVIDER_H */

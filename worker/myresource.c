/*
 * myresource.c — the MyResource controller (myresource.h).
 *
 * Level-triggered: every reconcile reads the MyResource and its ConfigMap
 * from the cache, compares with what should be, and writes only the
 * difference.  Every write carries the resourceVersion it was computed
 * from, so a stale cache turns into a Conflict and a requeue, never into
 * a lost update.
 */
#include "myresource.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "log.h"
#include "meta.h"

#define LOG_ID "myresource"

const mcf_ctrl_gvr mcf_myresource_gvr = {
    "example.mcfleet.io", "v1alpha1", "myresources", "MyResource", true};
const mcf_ctrl_gvr mcf_myresource_configmap_gvr = {
    "", "v1", "configmaps", "ConfigMap", true};

static const mcf_ctrl_gvr owns[] = {
    {"", "v1", "configmaps", "ConfigMap", true},
};

static mcf_kc_ref
ref_of(const mcf_ctrl_gvr *g, const char *ns, const char *name)
{
	return (mcf_kc_ref) {g->group, g->version, g->resource, ns, name};
}

/* The ConfigMap name the spec asks for. */
static const char *
cm_name(const json_t *mr)
{
	const char *n = json_string_value(
	    json_object_get(json_object_get(mr, "spec"), "configMapName"));
	return n != NULL && n[0] != '\0' ? n : mcf_meta_name(mr);
}

/* spec.data as a ConfigMap's data: string values only (the CRD schema
 * guarantees it; anything else is skipped). */
static json_t *
desired_data(const json_t *mr)
{
	json_t     *out = json_object();
	json_t     *data = json_object_get(json_object_get(mr, "spec"), "data");
	const char *k;
	json_t     *v;
	json_object_foreach(data, k, v)
	{
		if (json_is_string(v))
			json_object_set(out, k, v);
	}
	return out;
}

/* Data equality with {} and absent the same. */
static bool
data_equal(const json_t *a, const json_t *b)
{
	size_t na = json_is_object(a) ? json_object_size(a) : 0;
	size_t nb = json_is_object(b) ? json_object_size(b) : 0;
	if (na == 0 || nb == 0)
		return na == nb;
	return json_equal(a, b);
}

/* Writes status (condition Ready, observedGeneration, configMapName) when
 * it differs from `mr`'s.  Returns the reconcile result. */
static mcf_ctrl_result
set_status(mcf_ctrl_ctx *ctx, const json_t *mr, const char *status,
    const char *reason, const char *message, const char *cm)
{
	json_t *o = json_deep_copy(mr);
	int64_t gen = mcf_meta_generation(mr);
	bool    changed = false;

	mcf_meta_condition c = {"Ready", status, reason, message, gen, NULL};
	if (mcf_meta_condition_set(o, &c, time(NULL), &changed) != MCF_OK) {
		json_decref(o);
		return MCF_CTRL_ERROR;
	}
	json_t *st = json_object_get(o, "status");
	int64_t og = json_integer_value(json_object_get(st, "observedGeneration"));
	if (og != gen) {
		json_object_set_new(st, "observedGeneration", json_integer(gen));
		changed = true;
	}
	const char *old_cm =
	    json_string_value(json_object_get(st, "configMapName"));
	if (cm != NULL && (old_cm == NULL || strcmp(old_cm, cm) != 0)) {
		json_object_set_new(st, "configMapName", json_string(cm));
		changed = true;
	}
	mcf_ctrl_result r = MCF_CTRL_DONE;
	if (changed) {
		mcf_kc_status ks;
		mcf_kc_ref    ref = ref_of(
                    &mcf_myresource_gvr, mcf_meta_namespace(mr), mcf_meta_name(mr));
		int rc = mcf_kc_update_status(
		    mcf_ctrl_ctx_client(ctx), &ref, o, NULL, &ks);
		if (rc == MCF_ECONFLICT || rc == MCF_ENOENT)
			r = MCF_CTRL_REQUEUE; /* stale cache: the event follows */
		else if (rc != MCF_OK) {
			mcf_log_warn(LOG_ID, "%s/%s/%s: status update: %s",
			    mcf_ctrl_ctx_cluster(ctx), mcf_meta_namespace(mr),
			    mcf_meta_name(mr), ks.message);
			r = MCF_CTRL_ERROR;
		}
	}
	json_decref(o);
	return r;
}

/* Fails the reconcile with Ready=False `reason`; returns ERROR so the key
 * is retried with backoff. */
static mcf_ctrl_result
fail(mcf_ctrl_ctx *ctx, const json_t *mr, const char *reason,
    const char *message)
{
	mcf_ctrl_ctx_event(ctx, mr, "Warning", reason, "%s", message);
	set_status(ctx, mr, "False", reason, message, NULL);
	return MCF_CTRL_ERROR;
}

/* Deletes ConfigMap `name` if `mr` controls it.  0, or the error. */
static int
delete_owned_cm(mcf_ctrl_ctx *ctx, const json_t *mr, const char *name)
{
	const char *ns = mcf_meta_namespace(mr);
	mcf_kc_ref  ref = ref_of(&mcf_myresource_configmap_gvr, ns, name);
	json_t     *cm = NULL;
	int rc = mcf_kc_get(mcf_ctrl_ctx_client(ctx), &ref, &cm, NULL);
	if (rc == MCF_ENOENT)
		return MCF_OK;
	if (rc != MCF_OK)
		return rc;
	if (!mcf_meta_is_controlled_by(cm, mr)) {
		json_decref(cm);
		return MCF_OK; /* not ours: leave it */
	}
	mcf_kc_delete_opts o = {.precondition_uid = mcf_meta_uid(cm)};
	rc = mcf_kc_delete(mcf_ctrl_ctx_client(ctx), &ref, &o, NULL, NULL);
	json_decref(cm);
	return rc == MCF_ENOENT ? MCF_OK : rc;
}

/* Patches metadata.finalizers of `mr` to `fins`, guarded by its
 * resourceVersion.  On success `*out` (may be NULL) is the new object. */
static int
patch_finalizers(mcf_ctrl_ctx *ctx, const json_t *mr, json_t *fins,
    json_t **out)
{
	json_t *p = json_pack("{s:{s:O,s:s}}", "metadata", "finalizers", fins,
	    "resourceVersion", mcf_meta_resource_version(mr));
	mcf_kc_ref ref = ref_of(
	    &mcf_myresource_gvr, mcf_meta_namespace(mr), mcf_meta_name(mr));
	int rc = mcf_kc_patch(mcf_ctrl_ctx_client(ctx), &ref,
	    MCF_KC_PATCH_MERGE, p, out, NULL);
	json_decref(p);
	return rc;
}

static mcf_ctrl_result
finalize(mcf_ctrl_ctx *ctx, const json_t *mr)
{
	if (!mcf_meta_finalizer_has(mr, MCF_MYRESOURCE_FINALIZER))
		return MCF_CTRL_DONE;
	const char *cm = json_string_value(json_object_get(
	    json_object_get(mr, "status"), "configMapName"));
	int rc = delete_owned_cm(ctx, mr, cm_name(mr));
	if (rc == MCF_OK && cm != NULL && strcmp(cm, cm_name(mr)) != 0)
		rc = delete_owned_cm(ctx, mr, cm);
	if (rc != MCF_OK) {
		mcf_log_warn(LOG_ID, "%s/%s/%s: cleanup: %s",
		    mcf_ctrl_ctx_cluster(ctx), mcf_meta_namespace(mr),
		    mcf_meta_name(mr), mcf_strerror(rc));
		return MCF_CTRL_ERROR;
	}
	json_t *o = json_deep_copy(mr);
	mcf_meta_finalizer_remove(o, MCF_MYRESOURCE_FINALIZER, NULL);
	json_t *fins = json_object_get(json_object_get(o, "metadata"),
	    "finalizers");
	rc = patch_finalizers(ctx, mr, fins, NULL);
	json_decref(o);
	if (rc == MCF_ECONFLICT || rc == MCF_ENOENT)
		return rc == MCF_ENOENT ? MCF_CTRL_DONE : MCF_CTRL_REQUEUE;
	if (rc != MCF_OK)
		return MCF_CTRL_ERROR;
	mcf_ctrl_ctx_event(ctx, mr, "Normal", "Cleanup",
	    "Deleted ConfigMap %s and removed finalizer %s", cm_name(mr),
	    MCF_MYRESOURCE_FINALIZER);
	return MCF_CTRL_DONE;
}

/* The ConfigMap `name` as it should be, owned by `mr`. */
static json_t *
build_cm(const json_t *mr, const char *name, const json_t *base)
{
	json_t *cm = base != NULL ? json_deep_copy(base)
	                          : json_pack("{s:s,s:s,s:{s:s,s:s}}",
	                                "apiVersion", "v1", "kind", "ConfigMap",
	                                "metadata", "name", name, "namespace",
	                                mcf_meta_namespace(mr));
	json_object_set_new(cm, "data", desired_data(mr));
	json_object_del(cm, "binaryData");
	return cm;
}

static mcf_ctrl_result
ensure_cm(mcf_ctrl_ctx *ctx, const json_t *mr)
{
	const char *ns = mcf_meta_namespace(mr);
	const char *name = cm_name(mr);
	mcf_kc     *kc = mcf_ctrl_ctx_client(ctx);
	mcf_kc_ref  ref = ref_of(&mcf_myresource_configmap_gvr, ns, NULL);
	char       *key = mcf_meta_key_join(ns, name);
	json_t     *cur = mcf_ctrl_ctx_get(ctx, &mcf_myresource_configmap_gvr, key);
	free(key);
	/* Whether this object was reconciled before at this generation: a
	 * missing or changed ConfigMap is then drift to repair. */
	json_t *st = json_object_get(mr, "status");
	bool    seen = mcf_meta_condition_is_true(mr, "Ready") &&
	    json_integer_value(json_object_get(st, "observedGeneration")) ==
	        mcf_meta_generation(mr);
	mcf_ctrl_result r = MCF_CTRL_DONE;
	mcf_kc_status   ks;
	int             rc;

	if (cur == NULL) {
		json_t *cm = build_cm(mr, name, NULL);
		mcf_errinfo ei = {0};
		mcf_meta_controller_set(cm, mr, NULL, &ei);
		rc = mcf_kc_create_object(kc, &ref, cm, NULL, &ks);
		json_decref(cm);
		if (rc == MCF_EEXIST) {
			/* The cache has not seen it yet, or it is not ours:
			 * read it from the server and go on with that. */
			ref.name = name;
			rc = mcf_kc_get(kc, &ref, &cur, &ks);
			if (rc != MCF_OK)
				return rc == MCF_ENOENT ? MCF_CTRL_REQUEUE
				                        : MCF_CTRL_ERROR;
		} else if (rc != MCF_OK) {
			return fail(ctx, mr, "ConfigMapCreateFailed", ks.message);
		} else {
			mcf_ctrl_ctx_event(ctx, mr, "Normal",
			    seen ? "Repaired" : "Created",
			    seen ? "Re-created deleted ConfigMap %s"
			         : "Created ConfigMap %s",
			    name);
			return MCF_CTRL_DONE;
		}
	}

	if (!mcf_meta_is_controlled_by(cur, mr)) {
		json_t *owner = mcf_meta_controller_of(cur);
		char    msg[512];
		snprintf(msg, sizeof(msg),
		    "ConfigMap %s exists and is %s", name,
		    owner != NULL ? "controlled by another object"
		                  : "not controlled by this MyResource");
		json_decref(cur);
		return fail(ctx, mr, "ConfigMapConflict", msg);
	}
	if (!data_equal(json_object_get(cur, "data"),
	        json_object_get(json_object_get(mr, "spec"), "data")) ||
	    json_object_get(cur, "binaryData") != NULL) {
		json_t *cm = build_cm(mr, name, cur);
		ref.name = name;
		rc = mcf_kc_update(kc, &ref, cm, NULL, &ks);
		json_decref(cm);
		if (rc == MCF_ECONFLICT || rc == MCF_ENOENT)
			r = MCF_CTRL_REQUEUE;
		else if (rc != MCF_OK)
			r = fail(ctx, mr, "ConfigMapUpdateFailed", ks.message);
		else
			mcf_ctrl_ctx_event(ctx, mr, "Normal",
			    seen ? "Repaired" : "Updated",
			    seen ? "Repaired drifted data of ConfigMap %s"
			         : "Updated ConfigMap %s",
			    name);
	}
	json_decref(cur);
	return r;
}

static mcf_ctrl_result
reconcile(mcf_ctrl_ctx *ctx, const char *ns, const char *name,
    int64_t *requeue_after_ms)
{
	(void) requeue_after_ms;
	char   *key = mcf_meta_key_join(ns, name);
	json_t *mr = mcf_ctrl_ctx_get(ctx, &mcf_myresource_gvr, key);
	free(key);
	if (mr == NULL)
		return MCF_CTRL_DONE; /* gone; owned ConfigMaps are GC'd */

	mcf_ctrl_result r;
	if (mcf_meta_is_deleting(mr)) {
		r = finalize(ctx, mr);
		json_decref(mr);
		return r;
	}
	if (!mcf_meta_finalizer_has(mr, MCF_MYRESOURCE_FINALIZER)) {
		json_t *o = json_deep_copy(mr);
		mcf_meta_finalizer_add(o, MCF_MYRESOURCE_FINALIZER, NULL);
		json_t *updated = NULL;
		int rc = patch_finalizers(ctx, mr,
		    json_object_get(json_object_get(o, "metadata"), "finalizers"),
		    &updated);
		json_decref(o);
		json_decref(mr);
		if (rc == MCF_ECONFLICT || rc == MCF_ENOENT)
			return MCF_CTRL_REQUEUE;
		if (rc != MCF_OK)
			return MCF_CTRL_ERROR;
		mr = updated; /* go on with the server's answer */
	}

	/* A ConfigMap of an earlier configMapName that we control goes. */
	const char *old = json_string_value(json_object_get(
	    json_object_get(mr, "status"), "configMapName"));
	if (old != NULL && strcmp(old, cm_name(mr)) != 0 &&
	    delete_owned_cm(ctx, mr, old) != MCF_OK) {
		json_decref(mr);
		return MCF_CTRL_ERROR;
	}

	r = ensure_cm(ctx, mr);
	if (r == MCF_CTRL_DONE) {
		char msg[300];
		snprintf(msg, sizeof(msg), "ConfigMap %s is up to date",
		    cm_name(mr));
		r = set_status(
		    ctx, mr, "True", "ReconcileSucceeded", msg, cm_name(mr));
	}
	json_decref(mr);
	return r;
}

const mcf_ctrl_def mcf_myresource_controller = {
    .name = "myresource",
    .for_gvr = {"example.mcfleet.io", "v1alpha1", "myresources",
        "MyResource", true},
    .owns = owns,
    .n_owns = sizeof(owns) / sizeof(owns[0]),
    .max_concurrency = 4,
    .reconcile = reconcile,
};

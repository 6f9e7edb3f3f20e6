/*
 * milo.c — the simulated Milo project controller.
 *
 * Store events only schedule work (a timer per project name); the work
 * itself runs later from the timer, never inside the observer callback, so
 * the controller's own writes do not nest inside the event that caused
 * them.  Each pass is idempotent and level-triggered: it reads the Project
 * as stored and does whatever step is missing.
 */
#include "milo.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "json.h"
#include "log.h"
#include "ops.h"

#define FINALIZER "resourcemanager.miloapis.com/project-controller"

typedef struct pass {
	ks_milo     *milo;
	char        *name; /* owned */
	uint64_t     timer;
	struct pass *next;
} pass;

struct ks_milo {
	ks_sim *sim;
	int64_t delay_ms;
	pass   *pending;
};

static void run_pass(void *arg);

static bool
is_pending(ks_milo *m, const char *name)
{
	for (pass *p = m->pending; p != NULL; p = p->next)
		if (strcmp(p->name, name) == 0)
			return true;
	return false;
}

static void
schedule(ks_milo *m, const char *name, int64_t delay)
{
	if (is_pending(m, name))
		return;
	pass *p    = mcf_calloc(1, sizeof(*p));
	p->milo    = m;
	p->name    = mcf_strdup(name);
	p->next    = m->pending;
	m->pending = p;
	p->timer   = ks_httpd_timer_add(m->sim->httpd, delay, run_pass, p);
}

static const ks_type *
type_of(ks_sim *s, const char *group, const char *resource)
{
	return ks_plane_type(ks_store_root(s->store), group, "v1alpha1",
	    resource);
}

static bool
has_finalizer(const json_t *obj)
{
	json_t *f = mcf_json_path(obj, "metadata.finalizers");
	size_t  i;
	json_t *v;
	json_array_foreach (f, i, v)
		if (json_is_string(v) &&
		    strcmp(json_string_value(v), FINALIZER) == 0)
			return true;
	return false;
}

static const char *
condition_status(const json_t *obj, const char *type)
{
	json_t *c = mcf_json_path(obj, "status.conditions");
	size_t  i;
	json_t *v;
	json_array_foreach (c, i, v) {
		const char *t = json_string_value(json_object_get(v, "type"));
		if (t != NULL && strcmp(t, type) == 0)
			return json_string_value(json_object_get(v, "status"));
	}
	return NULL;
}

/* Writes condition `type` into the object's status through /status,
 * keeping the other conditions. */
static void
set_condition(ks_sim *s, const ks_type *t, const char *name,
    const char *type, const char *status, const char *reason,
    const char *message)
{
	ks_plane     *root = ks_store_root(s->store);
	const json_t *obj  = ks_plane_get(root, t, NULL, name);
	if (obj == NULL)
		return;
	char now[40];
	ks_sim_time(s, now, sizeof(now));
	json_t *conds = json_array();
	json_t *old   = mcf_json_path(obj, "status.conditions");
	size_t  i;
	json_t *v;
	json_array_foreach (old, i, v) {
		const char *ct = json_string_value(json_object_get(v, "type"));
		if (ct == NULL || strcmp(ct, type) != 0)
			json_array_append(conds, v);
	}
	json_int_t gen = 0;
	json_t    *g   = mcf_json_path(obj, "metadata.generation");
	if (json_is_integer(g))
		gen = json_integer_value(g);
	json_array_append_new(conds,
	    json_pack("{s:s,s:s,s:I,s:s,s:s,s:s}", "type", type, "status",
		status, "observedGeneration", gen, "lastTransitionTime", now,
		"reason", reason, "message", message));
	json_t *patch =
	    json_pack("{s:{s:o}}", "status", "conditions", conds);
	ks_admit_opts o = { .fv = KS_FV_IGNORE };
	ks_result     r = { 0 };
	if (ks_ops_patch(s, root, t, NULL, name, KS_PATCH_MERGE, patch, true,
		&o, &r) != 0)
		mcf_log_warn("KS-MILO-STATUS", "setting %s on %s %s failed: %s",
		    type, t->resource, name,
		    json_string_value(json_object_get(r.body, "message")));
	ks_result_fini(&r);
	json_decref(patch);
}

static void
add_finalizer(ks_sim *s, const ks_type *pt, const json_t *proj,
    const char *name)
{
	json_t *fins = json_deep_copy(mcf_json_path(proj, "metadata.finalizers"));
	if (!json_is_array(fins)) {
		json_decref(fins);
		fins = json_array();
	}
	json_array_append_new(fins, json_string(FINALIZER));
	json_t *patch =
	    json_pack("{s:{s:o}}", "metadata", "finalizers", fins);
	ks_admit_opts o = { .fv = KS_FV_IGNORE };
	ks_result     r = { 0 };
	ks_ops_patch(s, ks_store_root(s->store), pt, NULL, name,
	    KS_PATCH_MERGE, patch, false, &o, &r);
	ks_result_fini(&r);
	json_decref(patch);
}

static void
ensure_pcp(ks_sim *s, const json_t *proj, const char *name)
{
	const ks_type *ct =
	    type_of(s, "infrastructure.miloapis.com", "projectcontrolplanes");
	ks_plane *root = ks_store_root(s->store);
	if (ks_plane_get(root, ct, NULL, name) == NULL) {
		const char *uid  = mcf_json_path_str(proj, "metadata.uid");
		const char *org  = mcf_json_path_str(proj, "spec.ownerRef.name");
		json_t     *body = json_pack(
			"{s:{s:s,s:{s:s,s:s},s:{s:s}},s:{}}", "metadata", "name",
			name, "labels", "resourcemanager.miloapis.com/project-name",
			name, "resourcemanager.miloapis.com/project-uid",
			uid ? uid : "", "annotations",
			"resourcemanager.miloapis.com/owner-name", org ? org : "",
			"spec");
		ks_admit_opts o = { .fv = KS_FV_IGNORE };
		ks_result     r = { 0 };
		ks_ops_create(s, root, ct, NULL, body, &o, &r);
		ks_result_fini(&r);
	}
	const json_t *pcp = ks_plane_get(root, ct, NULL, name);
	const char   *st  = pcp ? condition_status(pcp, "ControlPlaneReady") : NULL;
	if (pcp != NULL && (st == NULL || strcmp(st, "True") != 0))
		set_condition(s, ct, name, "ControlPlaneReady", "True", "Ready",
		    "The control plane is ready");
}

static bool
collect(void *arg, const char *key, const json_t *obj)
{
	(void) key;
	json_array_append((json_t *) arg, (json_t *) obj);
	return true;
}

/* Removes every object of a project plane except its namespaces (which the
 * plane's removal takes with it). */
static void
purge_plane(ks_sim *s, const char *name)
{
	ks_plane *p = ks_store_plane(s->store, name);
	if (p == NULL)
		return;
	const ks_type **types;
	size_t          n = ks_plane_types(p, &types);
	for (size_t i = 0; i < n; i++) {
		if (!types[i]->namespaced)
			continue;
		json_t *objs = json_array();
		ks_plane_list(p, types[i], NULL, 0, NULL, collect, objs);
		size_t  j;
		json_t *o;
		json_array_foreach (objs, j, o)
			json_decref(ks_plane_remove(p, types[i],
			    mcf_json_path_str(o, "metadata.namespace"),
			    mcf_json_path_str(o, "metadata.name"), NULL));
		json_decref(objs);
	}
	free(types);
}

static void
finish_deletion(ks_sim *s, const ks_type *pt, const json_t *proj,
    const char *name)
{
	ks_plane *root = ks_store_root(s->store);
	set_condition(s, pt, name, "ResourceCleanup", "True", "CleanupStarted",
	    "Cleaning up project resources");
	purge_plane(s, name);
	set_condition(s, pt, name, "ResourceCleanup", "True",
	    "CleanupAwaitingCompletion", "Waiting for resources to be removed");
	set_condition(s, pt, name, "ResourceCleanup", "False",
	    "CleanupComplete", "Project resources have been removed");
	const ks_type *ct =
	    type_of(s, "infrastructure.miloapis.com", "projectcontrolplanes");
	ks_result r = { 0 };
	if (ks_plane_get(root, ct, NULL, name) != NULL)
		ks_ops_delete(s, root, ct, NULL, name, NULL, false, &r);
	ks_result_fini(&r);
	(void) proj;
	proj = ks_plane_get(root, pt, NULL, name);
	if (proj == NULL)
		return;
	json_t *fins = json_array();
	json_t *old  = mcf_json_path(proj, "metadata.finalizers");
	size_t  i;
	json_t *v;
	json_array_foreach (old, i, v)
		if (!json_is_string(v) ||
		    strcmp(json_string_value(v), FINALIZER) != 0)
			json_array_append(fins, v);
	json_t *patch =
	    json_pack("{s:{s:o}}", "metadata", "finalizers", fins);
	ks_admit_opts o = { .fv = KS_FV_IGNORE };
	ks_ops_patch(s, root, pt, NULL, name, KS_PATCH_MERGE, patch, false, &o,
	    &r);
	ks_result_fini(&r);
	json_decref(patch);
}

static void
run_pass(void *arg)
{
	pass    *ps = arg;
	ks_milo *m  = ps->milo;
	for (pass **pp = &m->pending; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == ps) {
			*pp = ps->next;
			break;
		}
	}
	ks_sim        *s    = m->sim;
	const ks_type *pt   = type_of(s, "resourcemanager.miloapis.com",
	      "projects");
	ks_plane      *root = ks_store_root(s->store);
	const json_t  *proj = ks_plane_get(root, pt, NULL, ps->name);
	if (proj == NULL)
		goto done;
	if (mcf_json_path(proj, "metadata.deletionTimestamp") != NULL) {
		if (has_finalizer(proj))
			finish_deletion(s, pt, proj, ps->name);
		goto done;
	}
	if (!has_finalizer(proj)) {
		add_finalizer(s, pt, proj, ps->name);
		proj = ks_plane_get(root, pt, NULL, ps->name);
	}
	ensure_pcp(s, proj, ps->name);
	ks_plane *pp = ks_store_plane_create(s->store, ps->name);
	ks_ops_seed_plane(s, pp);
	proj = ks_plane_get(root, pt, NULL, ps->name);
	const char *ready = proj ? condition_status(proj, "Ready") : NULL;
	if (proj != NULL && (ready == NULL || strcmp(ready, "True") != 0))
		set_condition(s, pt, ps->name, "Ready", "True", "Ready",
		    "Project is ready");
done:
	free(ps->name);
	free(ps);
}

static void
on_event(void *arg, ks_plane *p, const ks_event *ev)
{
	ks_milo *m = arg;
	if (!ks_plane_is_root(p) ||
	    strcmp(ev->rtype->resource, "projects") != 0 ||
	    strcmp(ev->rtype->group, "resourcemanager.miloapis.com") != 0)
		return;
	const char *name = mcf_json_path_str(ev->obj, "metadata.name");
	if (name == NULL || ev->type == KS_DELETED)
		return;
	bool deleting =
	    mcf_json_path(ev->obj, "metadata.deletionTimestamp") != NULL;
	if (ev->type == KS_ADDED)
		schedule(m, name, m->delay_ms);
	else if (deleting && has_finalizer(ev->obj))
		schedule(m, name, 0);
}

ks_milo *
ks_milo_create(ks_sim *s, int64_t ready_after_ms)
{
	ks_milo *m  = mcf_calloc(1, sizeof(*m));
	m->sim      = s;
	m->delay_ms = ready_after_ms;
	ks_store_observer obs = { .on_event = on_event, .arg = m };
	ks_store_observe(s->store, &obs);
	return m;
}

void
ks_milo_destroy(ks_milo *m)
{
	if (m == NULL)
		return;
	pass *p = m->pending;
	while (p != NULL) {
		pass *next = p->next;
		ks_httpd_timer_cancel(m->sim->httpd, p->timer);
		free(p->name);
		free(p);
		p = next;
	}
	free(m);
}

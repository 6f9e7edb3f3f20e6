/*
 * ops.c — get, create, update, patch and delete of one object.
 *
 * The pipelines follow KUBE_API.md §4: admission (admit.c), the
 * resourceVersion precondition, no-op detection (an update that changes
 * nothing is not persisted and bumps nothing), dry runs, the finalizer
 * path of deletion (mark, then remove when the last finalizer goes), and
 * the side effects the store observer applies after a write: a Project
 * brings its control plane with it, a CRD makes its resource servable,
 * and a terminating namespace is emptied and then removed.
 */
#include "ops.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "faults.h"
#include "json.h"
#include "log.h"
#include "patch.h"
#include "watch.h"

#define NS_SWEEP_MS 100

static const char *
meta_str(const json_t *obj, const char *field)
{
	return json_string_value(
	    json_object_get(json_object_get(obj, "metadata"), field));
}

static bool
is_deleting(const json_t *obj)
{
	return json_object_get(json_object_get(obj, "metadata"),
		   "deletionTimestamp") != NULL;
}

static bool
has_finalizers(const json_t *obj)
{
	return json_array_size(json_object_get(
		   json_object_get(obj, "metadata"), "finalizers")) > 0;
}

static int
not_found(ks_result *r, const ks_type *t, const char *name)
{
	char gr[300];
	ks_type_gr(t, gr, sizeof(gr));
	return ks_fail(r, 404, "NotFound", t, name, "%s \"%s\" not found", gr,
	    name);
}

static int
conflict(ks_result *r, const ks_type *t, const char *name, const char *why)
{
	char gr[300];
	ks_type_gr(t, gr, sizeof(gr));
	return ks_fail(r, 409, "Conflict", t, name,
	    "Operation cannot be fulfilled on %s \"%s\": %s", gr, name, why);
}

int
ks_ops_get(ks_sim *s, ks_plane *p, const ks_type *t, const char *ns,
    const char *name, ks_result *r)
{
	(void) s;
	const json_t *obj = ks_plane_get(p, t, ns, name);
	if (obj == NULL)
		return not_found(r, t, name);
	return ks_ok(r, 200, json_incref((json_t *) obj));
}

/* CRDs are accepted and established at once: kubesim has no naming
 * conflicts to wait for. */
static void
crd_status(json_t *crd)
{
	char        now[40] = "1970-01-01T00:00:00Z";
	const char *ct      = meta_str(crd, "creationTimestamp");
	if (ct != NULL)
		snprintf(now, sizeof(now), "%s", ct);
	json_t *spec     = json_object_get(crd, "spec");
	json_t *versions = json_object_get(spec, "versions");
	json_t *stored   = json_array();
	size_t  i;
	json_t *v;
	json_array_foreach (versions, i, v) {
		if (json_is_true(json_object_get(v, "storage")))
			json_array_append(stored, json_object_get(v, "name"));
	}
	if (json_array_size(stored) == 0 && json_array_size(versions) > 0)
		json_array_append(stored,
		    json_object_get(json_array_get(versions, 0), "name"));
	json_t *names = json_deep_copy(json_object_get(spec, "names"));
	if (names == NULL)
		names = json_object();
	json_object_set_new(crd, "status",
	    json_pack("{s:[{s:s,s:s,s:s,s:s,s:s},{s:s,s:s,s:s,s:s,s:s}],"
		      "s:o,s:o}",
		"conditions", "type", "NamesAccepted", "status", "True",
		"lastTransitionTime", now, "reason", "NoConflicts", "message",
		"no conflicts found", "type", "Established", "status", "True",
		"lastTransitionTime", now, "reason", "InitialNamesAccepted",
		"message", "the initial names have been accepted",
		"acceptedNames", names, "storedVersions", stored));
}

int
ks_ops_create(ks_sim *s, ks_plane *p, const ks_type *t, const char *ns,
    json_t *body, const ks_admit_opts *o, ks_result *r)
{
	if (ks_admit_create(s, p, t, ns, body, o, r) != 0) {
		json_decref(body);
		return -1;
	}
	const char *name = meta_str(body, "name");
	if (ks_plane_get(p, t, ns, name) != NULL) {
		char gr[300];
		ks_type_gr(t, gr, sizeof(gr));
		ks_fail(r, 409, "AlreadyExists", t, name,
		    "%s \"%s\" already exists", gr, name);
		json_decref(body);
		return -1;
	}
	if (t->rules == KS_RULES_CRD)
		crd_status(body);
	if (o->dry_run)
		return ks_ok(r, 201, body);
	const json_t *stored = ks_plane_put(p, t, body);
	return ks_ok(r, 201, json_incref((json_t *) stored));
}

/* Finishes an update whose admitted result is `obj` (stolen): no-op check,
 * dry run, persist, or remove when the last finalizer of a deleting object
 * went away. */
static int
commit_update(ks_plane *p, const ks_type *t, const json_t *stored,
    json_t *obj, bool dry_run, ks_result *r)
{
	json_t *meta = json_object_get(obj, "metadata");
	json_object_set(meta, "resourceVersion",
	    json_object_get(json_object_get(stored, "metadata"),
		"resourceVersion"));
	if (t->rules == KS_RULES_CRD)
		json_object_set(obj, "status",
		    json_object_get(stored, "status"));
	if (json_equal(obj, (json_t *) stored)) {
		json_decref(obj);
		return ks_ok(r, 200, json_incref((json_t *) stored));
	}
	if (dry_run)
		return ks_ok(r, 200, obj);
	const char *ns   = json_string_value(json_object_get(meta, "namespace"));
	const char *name = json_string_value(json_object_get(meta, "name"));
	if (is_deleting(obj) && !has_finalizers(obj)) {
		char *n  = mcf_strdup(name);
		char *nn = ns ? mcf_strdup(ns) : NULL;
		json_t *last = ks_plane_remove(p, t, nn, n, obj);
		free(n);
		free(nn);
		return ks_ok(r, 200, last);
	}
	const json_t *res = ks_plane_put(p, t, obj);
	return ks_ok(r, 200, json_incref((json_t *) res));
}

/* Validation shared by update and patch once the proposed object exists. */
static int
update_with(ks_sim *s, ks_plane *p, const ks_type *t, const json_t *stored,
    json_t *obj, bool status_sub, const ks_admit_opts *o, ks_result *r)
{
	if (ks_admit_update(s, p, t, stored, obj, status_sub, o, r) != 0) {
		json_decref(obj);
		return -1;
	}
	return commit_update(p, t, stored, obj, o->dry_run, r);
}

int
ks_ops_update(ks_sim *s, ks_plane *p, const ks_type *t, const char *ns,
    const char *name, json_t *body, bool status_sub, const ks_admit_opts *o,
    ks_result *r)
{
	const json_t *stored = ks_plane_get(p, t, ns, name);
	if (stored == NULL) {
		json_decref(body);
		return not_found(r, t, name);
	}
	const char *brv  = meta_str(body, "resourceVersion");
	const char *srv  = meta_str(stored, "resourceVersion");
	const char *bname = meta_str(body, "name");
	if (bname != NULL && bname[0] != '\0' && strcmp(bname, name) != 0) {
		ks_fail(r, 400, "BadRequest", t, name,
		    "the name of the object (%s) does not match the name on "
		    "the URL (%s)",
		    bname, name);
		json_decref(body);
		return -1;
	}
	if (brv != NULL && brv[0] != '\0') {
		if (strcmp(brv, srv) != 0) {
			json_decref(body);
			return conflict(r, t, name,
			    "the object has been modified; please apply your "
			    "changes to the latest version and try again");
		}
	} else if (ks_type_is_custom(t) || t->rules == KS_RULES_CRD) {
		char qk[256];
		if (t->group[0] != '\0')
			snprintf(qk, sizeof(qk), "%s.%s", t->kind, t->group);
		else
			snprintf(qk, sizeof(qk), "%s", t->kind);
		ks_fail(r, 422, "Invalid", t, name,
		    "%s \"%s\" is invalid: metadata.resourceVersion: Invalid "
		    "value: 0x0: must be specified for an update",
		    qk, name);
		ks_fail_cause(r, "FieldValueInvalid",
		    "Invalid value: 0x0: must be specified for an update",
		    "metadata.resourceVersion");
		json_decref(body);
		return -1;
	}
	if (!json_is_object(body)) {
		json_decref(body);
		return ks_fail(r, 400, "BadRequest", t, name,
		    "the body of the request must be an object");
	}
	return update_with(s, p, t, stored, body, status_sub, o, r);
}

int
ks_ops_patch(ks_sim *s, ks_plane *p, const ks_type *t, const char *ns,
    const char *name, enum ks_patch_type pt, const json_t *patch,
    bool status_sub, const ks_admit_opts *o, ks_result *r)
{
	if (pt == KS_PATCH_STRATEGIC &&
	    (ks_type_is_custom(t) || t->rules == KS_RULES_CRD))
		return ks_fail(r, 415, "UnsupportedMediaType", NULL, NULL,
		    "the body of the request was in an unknown format - "
		    "accepted media types include: "
		    "application/json-patch+json, "
		    "application/merge-patch+json, "
		    "application/apply-patch+yaml");
	const json_t *stored = ks_plane_get(p, t, ns, name);
	if (stored == NULL)
		return not_found(r, t, name);
	json_t *out = NULL;
	char    err[512];
	int     rc;
	switch (pt) {
	case KS_PATCH_MERGE:
		rc = ks_patch_merge(stored, patch, &out, err, sizeof(err));
		break;
	case KS_PATCH_JSON:
		rc = ks_patch_json(stored, patch, &out, err, sizeof(err));
		break;
	default:
		rc = ks_patch_strategic(stored, patch, &out, err, sizeof(err));
		break;
	}
	if (rc == KS_PATCH_BAD_REQUEST)
		return ks_fail(r, 400, "BadRequest", NULL, NULL, "%s", err);
	if (rc != KS_PATCH_OK) {
		ks_fail(r, 422, "Invalid", t, name, "%s", err);
		ks_fail_cause(r, "FieldValueInvalid", err, NULL);
		return -1;
	}
	if (!json_is_object(out)) {
		json_decref(out);
		return ks_fail(r, 400, "BadRequest", t, name,
		    "the patched object is not an object");
	}
	const char *prv = meta_str(out, "resourceVersion");
	const char *srv = meta_str(stored, "resourceVersion");
	if (prv != NULL && srv != NULL && strcmp(prv, srv) != 0) {
		json_decref(out);
		return conflict(r, t, name,
		    "the object has been modified; please apply your changes "
		    "to the latest version and try again");
	}
	const char *pname = meta_str(out, "name");
	if (pname == NULL || strcmp(pname, name) != 0) {
		json_decref(out);
		return ks_fail(r, 400, "BadRequest", t, name,
		    "the name of the object (%s) does not match the name on "
		    "the URL (%s)",
		    pname ? pname : "", name);
	}
	return update_with(s, p, t, stored, out, status_sub, o, r);
}

/* Status reply of a finished delete (KUBE_API.md §4.6). */
static json_t *
delete_status(const ks_type *t, const json_t *obj)
{
	json_t *details = json_object();
	json_object_set_new(details, "name", json_string(meta_str(obj, "name")));
	if (t->group[0] != '\0')
		json_object_set_new(details, "group", json_string(t->group));
	json_object_set_new(details, "kind", json_string(t->resource));
	const char *uid = meta_str(obj, "uid");
	if (uid != NULL)
		json_object_set_new(details, "uid", json_string(uid));
	return json_pack("{s:s,s:s,s:{},s:s,s:o}", "kind", "Status",
	    "apiVersion", "v1", "metadata", "status", "Success", "details",
	    details);
}

/* Background work, as real controllers do it: a pass of the namespace
 * controller over a terminating namespace, or the garbage collector's
 * deletion of the dependents of a removed owner.  Pending tasks form a
 * list on s->pending so shutdown can cancel and free them. */
enum task_kind {
	TASK_NS_SWEEP,
	TASK_GC,
};

typedef struct task {
	enum task_kind kind;
	ks_sim        *sim;
	char          *plane; /* owned */
	char          *arg;   /* owned: the namespace, or the owner uid */
	uint64_t       timer;
	struct task   *next;
} task;

static void task_run(void *arg);

static void
task_schedule(ks_sim *s, enum task_kind kind, ks_plane *p, const char *arg,
    int64_t delay)
{
	task *w    = mcf_calloc(1, sizeof(*w));
	w->kind    = kind;
	w->sim     = s;
	w->plane   = mcf_strdup(ks_plane_name(p));
	w->arg     = mcf_strdup(arg);
	w->next    = s->pending;
	s->pending = w;
	w->timer   = ks_httpd_timer_add(s->httpd, delay, task_run, w);
}

static void
task_free(task *w)
{
	free(w->plane);
	free(w->arg);
	free(w);
}

static void
task_unlink(task *w)
{
	for (task **pp = (task **) &w->sim->pending; *pp != NULL;
	     pp = &(*pp)->next) {
		if (*pp == w) {
			*pp = w->next;
			break;
		}
	}
}

void
ks_ops_fini(ks_sim *s)
{
	task *w = s->pending;
	while (w != NULL) {
		task *next = w->next;
		ks_httpd_timer_cancel(s->httpd, w->timer);
		task_free(w);
		w = next;
	}
	s->pending = NULL;
	json_decref(s->owners);
	s->owners = NULL;
}

static bool
collect_obj(void *arg, const char *key, const json_t *obj)
{
	(void) key;
	json_array_append((json_t *) arg, (json_t *) obj);
	return true;
}

/* Namespace controller: deletes the contents of a terminating namespace
 * (honouring finalizers) and removes the namespace once it is empty.
 * Returns true when it must run again. */
static bool
ns_sweep(ks_sim *s, ks_plane *p, const char *ns)
{
	const ks_type *nst = ks_plane_type(p, "", "v1", "namespaces");
	const json_t  *nso = ks_plane_get(p, nst, NULL, ns);
	if (nso == NULL || !is_deleting(nso))
		return false;
	const ks_type **types;
	size_t          n         = ks_plane_types(p, &types);
	size_t          remaining = 0;
	for (size_t i = 0; i < n; i++) {
		const ks_type *t = types[i];
		if (!t->namespaced)
			continue;
		json_t *objs = json_array();
		ks_plane_list(p, t, ns, 0, NULL, collect_obj, objs);
		size_t  j;
		json_t *o;
		json_array_foreach (objs, j, o) {
			remaining++;
			if (is_deleting(o))
				continue;
			ks_result r = { 0 };
			ks_ops_delete(s, p, t, ns, meta_str(o, "name"), NULL,
			    false, &r);
			ks_result_fini(&r);
		}
		json_decref(objs);
	}
	free(types);
	if (remaining > 0)
		return true;
	/* Drop the "kubernetes" finalizer and remove. */
	json_t *final = json_deep_copy(nso);
	json_object_set_new(json_object_get(final, "spec"), "finalizers",
	    json_array());
	char *name = mcf_strdup(ns);
	json_decref(ks_plane_remove(p, nst, NULL, name, final));
	free(name);
	return false;
}

/* Type by "group/resource" in plane `p`, any version. */
static const ks_type *
type_by_gr(ks_plane *p, const char *gr)
{
	const ks_type **types;
	size_t          n     = ks_plane_types(p, &types);
	const ks_type  *found = NULL;
	for (size_t i = 0; i < n && found == NULL; i++) {
		char buf[512];
		snprintf(buf, sizeof(buf), "%s/%s", types[i]->group,
		    types[i]->resource);
		if (strcmp(buf, gr) == 0)
			found = types[i];
	}
	free(types);
	return found;
}

/* Garbage collector: deletes (Background policy) every object of the
 * plane whose ownerReferences named the removed owner `uid`. */
static void
gc_dependents(ks_sim *s, ks_plane *p, const char *uid)
{
	json_t *planes = json_object_get(s->owners, ks_plane_name(p));
	json_t *deps   = json_object_get(planes, uid);
	if (deps == NULL)
		return;
	json_t *keys = json_array();
	const char *k;
	json_t     *v;
	json_object_foreach (deps, k, v)
		json_array_append_new(keys, json_string(k));
	size_t  i;
	json_t *kv;
	json_array_foreach (keys, i, kv) {
		/* "group/resource\x1fnamespace\x1fname" */
		char *copy = mcf_strdup(json_string_value(kv));
		char *ns   = strchr(copy, '\x1f');
		char *name = ns ? strchr(ns + 1, '\x1f') : NULL;
		if (name != NULL) {
			*ns++   = '\0';
			*name++ = '\0';
			const ks_type *t = type_by_gr(p, copy);
			if (t != NULL) {
				ks_result r = { 0 };
				ks_ops_delete(s, p, t, ns[0] ? ns : NULL, name,
				    NULL, false, &r);
				ks_result_fini(&r);
			}
		}
		free(copy);
	}
	json_decref(keys);
}

static void
task_run(void *arg)
{
	task   *w = arg;
	ks_sim *s = w->sim;
	task_unlink(w);
	ks_plane *p = w->plane[0] == '\0' ? ks_store_root(s->store)
					   : ks_store_plane(s->store, w->plane);
	if (p != NULL && w->kind == TASK_NS_SWEEP) {
		if (ns_sweep(s, p, w->arg))
			task_schedule(s, TASK_NS_SWEEP, p, w->arg, NS_SWEEP_MS);
	} else if (p != NULL) {
		gc_dependents(s, p, w->arg);
	}
	task_free(w);
}

int
ks_ops_delete(ks_sim *s, ks_plane *p, const ks_type *t, const char *ns,
    const char *name, const json_t *delopts, bool dry_run, ks_result *r)
{
	const json_t *stored = ks_plane_get(p, t, ns, name);
	if (stored == NULL)
		return not_found(r, t, name);
	const json_t *pre = json_object_get(delopts, "preconditions");
	if (json_is_object(pre)) {
		const char *puid = json_string_value(json_object_get(pre, "uid"));
		const char *prv =
		    json_string_value(json_object_get(pre, "resourceVersion"));
		const char *suid = meta_str(stored, "uid");
		const char *srv  = meta_str(stored, "resourceVersion");
		char        why[256];
		if (puid != NULL && strcmp(puid, suid) != 0) {
			snprintf(why, sizeof(why),
			    "Precondition failed: UID in precondition: %s, UID "
			    "in object meta: %s",
			    puid, suid);
			return conflict(r, t, name, why);
		}
		if (prv != NULL && strcmp(prv, srv) != 0) {
			snprintf(why, sizeof(why),
			    "Precondition failed: ResourceVersion in "
			    "precondition: %s, ResourceVersion in object meta: "
			    "%s",
			    prv, srv);
			return conflict(r, t, name, why);
		}
	}
	if (is_deleting(stored))
		return ks_ok(r, 200, json_incref((json_t *) stored));
	char now[40];
	ks_sim_time(s, now, sizeof(now));
	if (t->rules == KS_RULES_NAMESPACE) {
		json_t *obj  = json_deep_copy(stored);
		json_t *meta = json_object_get(obj, "metadata");
		json_object_set_new(meta, "deletionTimestamp", json_string(now));
		json_object_set_new(meta, "deletionGracePeriodSeconds",
		    json_integer(0));
		json_object_set_new(mcf_json_object_ensure(obj, "status"),
		    "phase", json_string("Terminating"));
		if (dry_run)
			return ks_ok(r, 200, obj);
		const json_t *res = ks_plane_put(p, t, obj);
		ks_ok(r, 200, json_incref((json_t *) res));
		task_schedule(s, TASK_NS_SWEEP, p, name, 0);
		return 0;
	}
	if (has_finalizers(stored)) {
		json_t *obj  = json_deep_copy(stored);
		json_t *meta = json_object_get(obj, "metadata");
		json_object_set_new(meta, "deletionTimestamp", json_string(now));
		json_object_set_new(meta, "deletionGracePeriodSeconds",
		    json_integer(0));
		json_t *gen = json_object_get(meta, "generation");
		if (json_integer_value(gen) > 0)
			json_object_set_new(meta, "generation",
			    json_integer(json_integer_value(gen) + 1));
		if (dry_run)
			return ks_ok(r, 200, obj);
		const json_t *res = ks_plane_put(p, t, obj);
		return ks_ok(r, 200, json_incref((json_t *) res));
	}
	json_t *status = delete_status(t, stored);
	if (!dry_run)
		json_decref(ks_plane_remove(p, t, ns, name, NULL));
	return ks_ok(r, 200, status);
}

void
ks_ops_seed_plane(ks_sim *s, ks_plane *p)
{
	const ks_type *nst = ks_plane_type(p, "", "v1", "namespaces");
	if (ks_plane_is_root(p)) {
		static const char *const names[] = { "default", "kube-system",
			"kube-public", "kube-node-lease", NULL };
		for (size_t i = 0; names[i] != NULL; i++)
			if (ks_plane_get(p, nst, NULL, names[i]) == NULL)
				ks_plane_put(p, nst,
				    ks_admit_namespace(s, names[i], NULL));
		return;
	}
	json_t *l1 = json_pack("{s:s}", "miloapis.com/project-default", "true");
	json_t *l2 = json_pack("{s:s}", "miloapis.com/system", "true");
	if (ks_plane_get(p, nst, NULL, "default") == NULL)
		ks_plane_put(p, nst, ks_admit_namespace(s, "default", l1));
	if (ks_plane_get(p, nst, NULL, "milo-system") == NULL)
		ks_plane_put(p, nst, ks_admit_namespace(s, "milo-system", l2));
	json_decref(l1);
	json_decref(l2);
}

/* Store observer: side effects of writes. */
static void
index_owners(json_t *planes, const ks_event *ev, const json_t *obj,
    bool add)
{
	json_t *refs = json_object_get(json_object_get(obj, "metadata"),
	    "ownerReferences");
	if (json_array_size(refs) == 0)
		return;
	const char *ns   = meta_str(obj, "namespace");
	const char *name = meta_str(obj, "name");
	char       *dep  = mcf_asprintf("%s\x1f%s\x1f%s", ev->gr, ns ? ns : "",
	       name ? name : "");
	size_t  i;
	json_t *ref;
	json_array_foreach (refs, i, ref) {
		const char *uid = json_string_value(json_object_get(ref, "uid"));
		if (uid == NULL)
			continue;
		json_t *deps = json_object_get(planes, uid);
		if (add) {
			if (deps == NULL) {
				deps = json_object();
				json_object_set_new(planes, uid, deps);
			}
			json_object_set_new(deps, dep, json_true());
		} else if (deps != NULL) {
			json_object_del(deps, dep);
			if (json_object_size(deps) == 0)
				json_object_del(planes, uid);
		}
	}
	free(dep);
}

/* Keeps the owner index current and starts the garbage collector when an
 * object that may own others is removed. */
static void
track_owners(ks_sim *s, ks_plane *p, const ks_event *ev)
{
	json_t *planes = json_object_get(s->owners, ks_plane_name(p));
	if (planes == NULL) {
		planes = json_object();
		json_object_set_new(s->owners, ks_plane_name(p), planes);
	}
	if (ev->old != NULL)
		index_owners(planes, ev, ev->old, false);
	if (ev->type != KS_DELETED) {
		index_owners(planes, ev, ev->obj, true);
		return;
	}
	const char *uid = meta_str(ev->obj, "uid");
	if (uid != NULL && json_object_get(planes, uid) != NULL)
		task_schedule(s, TASK_GC, p, uid, 0);
}

static void
on_plane_gone(void *arg, ks_plane *p)
{
	ks_sim *s = arg;
	json_object_del(s->owners, ks_plane_name(p));
}

static void
on_event(void *arg, ks_plane *p, const ks_event *ev)
{
	ks_sim        *s = arg;
	const ks_type *t = ev->rtype;
	track_owners(s, p, ev);
	if (t->rules == KS_RULES_CRD) {
		const char *crd = meta_str(ev->obj, "name");
		if (ev->type == KS_DELETED) {
			char *name = mcf_strdup(crd);
			ks_plane_drop_crd_types(p, name);
			free(name);
			const json_t *spec = json_object_get(ev->obj, "spec");
			const char   *g =
			    json_string_value(json_object_get(spec, "group"));
			const char *res = json_string_value(json_object_get(
			    json_object_get(spec, "names"), "plural"));
			if (g != NULL && res != NULL)
				ks_watchhub_end_resource(s->hub, p, g, res);
			return;
		}
		ks_type **types = NULL;
		char      err[256];
		size_t    n = ks_types_from_crd(ev->obj, &types, err, sizeof(err));
		if (n > 0)
			ks_plane_set_crd_types(p, crd, types, n);
		return;
	}
	if (!ks_plane_is_root(p) ||
	    strcmp(t->resource, "projects") != 0 || t->root_only == false)
		return;
	const char *name = meta_str(ev->obj, "name");
	if (ev->type == KS_ADDED) {
		ks_plane *pp = ks_store_plane_create(s->store, name);
		ks_ops_seed_plane(s, pp);
		if (s->faults != NULL)
			ks_faults_plane_created(s->faults, name);
	} else if (ev->type == KS_DELETED) {
		char *n = mcf_strdup(name);
		ks_store_plane_delete(s->store, n);
		free(n);
	}
}

void
ks_ops_init(ks_sim *s)
{
	s->owners             = json_object();
	ks_store_observer obs = { .on_event = on_event,
		.on_plane_gone = on_plane_gone, .arg = s };
	ks_store_observe(s->store, &obs);
}

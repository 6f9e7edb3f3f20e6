/*
 * meta.c — status conditions, finalizers, owner references, metadata
 * accessors, cache keys and Events on objects held as jansson values.
 *
 * How it works.  Every function walks to the few fields it names with
 * jansson's object and array calls and never looks at the rest of the
 * object.  Functions that change an object first check every field they
 * will touch and build every value they will store (a json_string() of a
 * non-UTF-8 string is NULL, which is the only way building can fail), and
 * only then write, so a failing call leaves the object as it was.
 *
 * The Go rules they follow (meta.h names the sources) compare strings
 * where a Go struct field would hold "" for a missing JSON field, so a
 * missing string compares equal to "" here too, and a missing integer to
 * 0.
 *
 * Event names take client-go's "<name>.<hex>" form; client-go's hex is the
 * nanosecond clock, which two recorders in different processes can share,
 * so this module uses 64 random bits from getrandom(2) instead, and falls
 * back to the nanosecond clock mixed with a process-wide counter when
 * getrandom fails.
 */
#include "meta.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "alloc.h"
#include "log.h"

/* ---- small helpers ---------------------------------------------------- */

/* A string that is absent or not a string reads as "". */
static const char *
str_or_empty(const json_t *v)
{
	const char *s = json_string_value(v);
	return s != NULL ? s : "";
}

/* `obj[key]` when it is an object; NULL otherwise.  Never creates. */
static json_t *
get_obj(const json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);
	return json_is_object(v) ? v : NULL;
}

/* metadata.<key> as a string, or NULL. */
static const char *
meta_str(const json_t *obj, const char *key)
{
	return json_string_value(
	    json_object_get(get_obj(obj, "metadata"), key));
}

/* A new json string for caller input, NULL when `s` is not UTF-8. */
static json_t *
new_str(const char *s)
{
	return json_string(s != NULL ? s : "");
}

/* Checks that `parent[key]` is absent, null (as Go decodes it: an empty
 * value) or has type `type`. */
static bool
absent_or(const json_t *parent, const char *key, json_type type)
{
	json_t *v = json_object_get(parent, key);
	return v == NULL || json_is_null(v) || json_typeof(v) == type;
}

/* parent[key], created as a new empty object or array when absent or
 * null.  The caller has checked with absent_or() that it has the right
 * type. */
static json_t *
ensure(json_t *parent, const char *key, json_type type)
{
	json_t *v = json_object_get(parent, key);
	if (v != NULL && !json_is_null(v))
		return v;
	v = type == JSON_OBJECT ? json_object() : json_array();
	json_object_set_new(parent, key, v);
	return v;
}

char *
mcf_meta_time_format(time_t t, char *buf)
{
	struct tm tm;
	if (gmtime_r(&t, &tm) == NULL
	    || strftime(buf, MCF_META_TIME_LEN, "%Y-%m-%dT%H:%M:%SZ", &tm)
	        == 0)
		/* A year outside 0..9999 has no 20-character RFC 3339
		 * form; such clocks do not occur, so a fixed time is
		 * better than an unterminated buffer. */
		snprintf(buf, MCF_META_TIME_LEN, "1970-01-01T00:00:00Z");
	return buf;
}

/* ---- status conditions ------------------------------------------------ */

/* status.conditions when it is an array, else NULL. */
static json_t *
conditions_of(const json_t *obj)
{
	json_t *v = json_object_get(get_obj(obj, "status"), "conditions");
	return json_is_array(v) ? v : NULL;
}

/* Index of the first condition of `type` in `conds`, or -1. */
static long
condition_index(const json_t *conds, const char *type)
{
	size_t  i;
	json_t *c;
	json_array_foreach(conds, i, c)
	{
		const char *t = json_string_value(json_object_get(c, "type"));
		if (t != NULL && strcmp(t, type) == 0)
			return (long) i;
	}
	return -1;
}

/* Replaces string field `key` of `c` with `v` (stolen) when it differs;
 * returns whether it did.  `v` is freed when equal. */
static bool
update_str(json_t *c, const char *key, json_t *v)
{
	if (strcmp(str_or_empty(json_object_get(c, key)), json_string_value(v))
	    == 0) {
		json_decref(v);
		return false;
	}
	json_object_set_new(c, key, v);
	return true;
}

int
mcf_meta_condition_set(
    json_t *obj, const mcf_meta_condition *c, time_t now, bool *changed)
{
	if (changed != NULL)
		*changed = false;
	if (!json_is_object(obj) || c == NULL || c->type == NULL
	    || c->type[0] == '\0' || c->status == NULL)
		return MCF_EINVAL;
	if (!absent_or(obj, "status", JSON_OBJECT)
	    || !absent_or(get_obj(obj, "status"), "conditions", JSON_ARRAY))
		return MCF_EINVAL;
	json_t *conds = conditions_of(obj);
	size_t  i;
	json_t *e;
	json_array_foreach(conds, i, e)
	{
		if (!json_is_object(e))
			return MCF_EINVAL;
	}

	/* Every value that may be stored, built before anything is
	 * written. */
	char        nowbuf[MCF_META_TIME_LEN];
	const char *ltt = c->last_transition_time;
	if (ltt == NULL || ltt[0] == '\0')
		ltt = mcf_meta_time_format(now, nowbuf);
	json_t *type    = new_str(c->type);
	json_t *status  = new_str(c->status);
	json_t *reason  = new_str(c->reason);
	json_t *message = new_str(c->message);
	json_t *when    = new_str(ltt);
	if (type == NULL || status == NULL || reason == NULL || message == NULL
	    || when == NULL) {
		json_decref(type);
		json_decref(status);
		json_decref(reason);
		json_decref(message);
		json_decref(when);
		return MCF_EINVAL;
	}

	long idx = conds != NULL ? condition_index(conds, c->type) : -1;
	if (idx < 0) {
		/* New: appended in metav1.Condition's field order. */
		json_t *nc = json_object();
		json_object_set_new(nc, "type", type);
		json_object_set_new(nc, "status", status);
		if (c->observed_generation != 0)
			json_object_set_new(nc, "observedGeneration",
			    json_integer(c->observed_generation));
		json_object_set_new(nc, "lastTransitionTime", when);
		json_object_set_new(nc, "reason", reason);
		json_object_set_new(nc, "message", message);
		json_t *st = ensure(obj, "status", JSON_OBJECT);
		json_array_append_new(
		    ensure(st, "conditions", JSON_ARRAY), nc);
		if (changed != NULL)
			*changed = true;
		return MCF_OK;
	}

	json_t *ex  = json_array_get(conds, (size_t) idx);
	bool    chg = false;
	json_decref(type);
	if (update_str(ex, "status", status)) {
		/* Only a status change moves the transition time. */
		json_object_set_new(ex, "lastTransitionTime", when);
		chg = true;
	} else {
		json_decref(when);
	}
	chg |= update_str(ex, "reason", reason);
	chg |= update_str(ex, "message", message);
	json_t *gen = json_object_get(ex, "observedGeneration");
	if (!(gen == NULL && c->observed_generation == 0)
	    && !(json_is_integer(gen)
	        && json_integer_value(gen) == c->observed_generation)) {
		if (c->observed_generation != 0)
			json_object_set_new(ex, "observedGeneration",
			    json_integer(c->observed_generation));
		else
			json_object_del(ex, "observedGeneration");
		chg = true;
	}
	if (changed != NULL)
		*changed = chg;
	return MCF_OK;
}

json_t *
mcf_meta_condition_find(const json_t *obj, const char *type)
{
	json_t *conds = conditions_of(obj);
	if (conds == NULL || type == NULL)
		return NULL;
	long idx = condition_index(conds, type);
	return idx < 0 ? NULL : json_array_get(conds, (size_t) idx);
}

bool
mcf_meta_condition_remove(json_t *obj, const char *type)
{
	json_t *conds   = conditions_of(obj);
	bool    removed = false;
	if (conds == NULL || type == NULL)
		return false;
	for (size_t i = json_array_size(conds); i-- > 0;) {
		const char *t = json_string_value(
		    json_object_get(json_array_get(conds, i), "type"));
		if (t != NULL && strcmp(t, type) == 0) {
			json_array_remove(conds, i);
			removed = true;
		}
	}
	return removed;
}

bool
mcf_meta_condition_is(const json_t *obj, const char *type, const char *status)
{
	json_t *c = mcf_meta_condition_find(obj, type);
	return c != NULL && status != NULL
	    && strcmp(str_or_empty(json_object_get(c, "status")), status) == 0;
}

bool
mcf_meta_condition_is_true(const json_t *obj, const char *type)
{
	return mcf_meta_condition_is(obj, type, "True");
}

bool
mcf_meta_condition_is_false(const json_t *obj, const char *type)
{
	return mcf_meta_condition_is(obj, type, "False");
}

/* ---- finalizers ------------------------------------------------------- */

/* Checks that metadata and metadata.finalizers are absent or have the
 * right types. */
static bool
finalizers_ok(const json_t *obj)
{
	return json_is_object(obj) && absent_or(obj, "metadata", JSON_OBJECT)
	    && absent_or(get_obj(obj, "metadata"), "finalizers", JSON_ARRAY);
}

static json_t *
finalizers_of(const json_t *obj)
{
	json_t *v = json_object_get(get_obj(obj, "metadata"), "finalizers");
	return json_is_array(v) ? v : NULL;
}

bool
mcf_meta_finalizer_has(const json_t *obj, const char *finalizer)
{
	size_t  i;
	json_t *f;
	if (finalizer == NULL)
		return false;
	json_array_foreach(finalizers_of(obj), i, f)
	{
		const char *s = json_string_value(f);
		if (s != NULL && strcmp(s, finalizer) == 0)
			return true;
	}
	return false;
}

int
mcf_meta_finalizer_add(json_t *obj, const char *finalizer, bool *changed)
{
	if (changed != NULL)
		*changed = false;
	if (finalizer == NULL || finalizer[0] == '\0' || !finalizers_ok(obj))
		return MCF_EINVAL;
	if (mcf_meta_finalizer_has(obj, finalizer))
		return MCF_OK;
	json_t *v = new_str(finalizer);
	if (v == NULL)
		return MCF_EINVAL;
	json_t *md = ensure(obj, "metadata", JSON_OBJECT);
	json_array_append_new(ensure(md, "finalizers", JSON_ARRAY), v);
	if (changed != NULL)
		*changed = true;
	return MCF_OK;
}

int
mcf_meta_finalizer_remove(json_t *obj, const char *finalizer, bool *changed)
{
	bool removed = false;
	if (changed != NULL)
		*changed = false;
	if (finalizer == NULL || !finalizers_ok(obj))
		return MCF_EINVAL;
	json_t *fins = finalizers_of(obj);
	for (size_t i = json_array_size(fins); i-- > 0;) {
		const char *s = json_string_value(json_array_get(fins, i));
		if (s != NULL && strcmp(s, finalizer) == 0) {
			json_array_remove(fins, i);
			removed = true;
		}
	}
	if (changed != NULL)
		*changed = removed;
	return MCF_OK;
}

/* ---- owner references ------------------------------------------------- */

/* schema.ParseGroupVersion's group: "" for "" and "v1", "g" for "g/v";
 * false for more than one '/'.  `*len` is the group's length in `av`. */
static bool
api_group(const char *av, size_t *len)
{
	const char *slash = strchr(av, '/');
	if (slash == NULL) {
		*len = 0;
		return true;
	}
	if (strchr(slash + 1, '/') != NULL)
		return false;
	*len = (size_t) (slash - av);
	return true;
}

/* controller-runtime's referSameObject: same API group, kind and name
 * (not uid, and not version). */
static bool
refer_same(const json_t *a, const json_t *b)
{
	const char *aav = str_or_empty(json_object_get(a, "apiVersion"));
	const char *bav = str_or_empty(json_object_get(b, "apiVersion"));
	size_t      ag, bg;
	if (!api_group(aav, &ag) || !api_group(bav, &bg))
		return false;
	return ag == bg && memcmp(aav, bav, ag) == 0
	    && strcmp(str_or_empty(json_object_get(a, "kind")),
	           str_or_empty(json_object_get(b, "kind")))
	    == 0
	    && strcmp(str_or_empty(json_object_get(a, "name")),
	           str_or_empty(json_object_get(b, "name")))
	    == 0;
}

int
mcf_meta_owner_ref_new(const json_t *owner, json_t **out)
{
	const char *av
	    = json_string_value(json_object_get(owner, "apiVersion"));
	const char *kind = json_string_value(json_object_get(owner, "kind"));
	const char *name = mcf_meta_name(owner);
	const char *uid  = mcf_meta_uid(owner);
	if (av == NULL || av[0] == '\0' || kind == NULL || kind[0] == '\0'
	    || name == NULL || name[0] == '\0' || uid == NULL
	    || uid[0] == '\0')
		return MCF_EINVAL;
	*out = json_pack("{s:s,s:s,s:s,s:s,s:b,s:b}", "apiVersion", av, "kind",
	    kind, "name", name, "uid", uid, "controller", 1,
	    "blockOwnerDeletion", 1);
	if (*out == NULL)
		mcf_panic("json_pack of an ownerReference failed");
	return MCF_OK;
}

int
mcf_meta_controller_set(
    json_t *obj, const json_t *owner, bool *changed, mcf_errinfo *ei)
{
	json_t *ref = NULL;
	mcf_errinfo_clear(ei);
	if (changed != NULL)
		*changed = false;
	if (!json_is_object(obj) || !absent_or(obj, "metadata", JSON_OBJECT)
	    || !absent_or(
	        get_obj(obj, "metadata"), "ownerReferences", JSON_ARRAY))
		return mcf_errinfo_set(ei, MCF_EINVAL,
		    "object metadata or ownerReferences has the wrong type");
	if (mcf_meta_owner_ref_new(owner, &ref) != 0)
		return mcf_errinfo_set(ei, MCF_EINVAL,
		    "owner lacks apiVersion, kind, metadata.name or "
		    "metadata.uid");

	/* controller-runtime's validateOwner. */
	const char *ons = mcf_meta_namespace(owner);
	const char *ns  = mcf_meta_namespace(obj);
	if (ons != NULL && ns == NULL) {
		json_decref(ref);
		return mcf_errinfo_set(ei, MCF_EINVAL,
		    "cluster-scoped resource must not have a "
		    "namespace-scoped owner, owner's namespace %s",
		    ons);
	}
	if (ons != NULL && strcmp(ons, ns) != 0) {
		json_decref(ref);
		return mcf_errinfo_set(ei, MCF_EINVAL,
		    "cross-namespace owner references are disallowed, "
		    "owner's namespace %s, obj's namespace %s",
		    ons, ns);
	}

	json_t *cur = mcf_meta_controller_of(obj);
	if (cur != NULL && !refer_same(cur, ref)) {
		json_decref(ref);
		const char *name = mcf_meta_name(obj);
		return mcf_errinfo_set(ei, MCF_EEXIST,
		    "Object %s%s%s is already owned by another %s "
		    "controller %s",
		    ns != NULL ? ns : "", ns != NULL ? "/" : "",
		    name != NULL ? name : "",
		    str_or_empty(json_object_get(cur, "kind")),
		    str_or_empty(json_object_get(cur, "name")));
	}

	/* upsertOwnerRef. */
	json_t *md   = ensure(obj, "metadata", JSON_OBJECT);
	json_t *refs = ensure(md, "ownerReferences", JSON_ARRAY);
	size_t  i;
	json_t *r;
	json_array_foreach(refs, i, r)
	{
		if (refer_same(r, ref)) {
			bool same = json_equal(r, ref);
			if (!same)
				json_array_set_new(refs, i, ref);
			else
				json_decref(ref);
			if (changed != NULL)
				*changed = !same;
			return MCF_OK;
		}
	}
	json_array_append_new(refs, ref);
	if (changed != NULL)
		*changed = true;
	return MCF_OK;
}

json_t *
mcf_meta_controller_of(const json_t *obj)
{
	size_t  i;
	json_t *r;
	json_t *refs
	    = json_object_get(get_obj(obj, "metadata"), "ownerReferences");
	json_array_foreach(refs, i, r)
	{
		if (json_is_true(json_object_get(r, "controller")))
			return r;
	}
	return NULL;
}

bool
mcf_meta_is_controlled_by(const json_t *obj, const json_t *owner)
{
	const char *uid = mcf_meta_uid(owner);
	json_t     *ref = mcf_meta_controller_of(obj);
	const char *ru  = json_string_value(json_object_get(ref, "uid"));
	return uid != NULL && uid[0] != '\0' && ru != NULL
	    && strcmp(uid, ru) == 0;
}

/* ---- object accessors ------------------------------------------------- */

const char *
mcf_meta_namespace(const json_t *obj)
{
	const char *ns = meta_str(obj, "namespace");
	return ns != NULL && ns[0] != '\0' ? ns : NULL;
}

const char *
mcf_meta_name(const json_t *obj)
{
	return meta_str(obj, "name");
}

const char *
mcf_meta_uid(const json_t *obj)
{
	return meta_str(obj, "uid");
}

const char *
mcf_meta_resource_version(const json_t *obj)
{
	return meta_str(obj, "resourceVersion");
}

int64_t
mcf_meta_generation(const json_t *obj)
{
	json_t *g = json_object_get(get_obj(obj, "metadata"), "generation");
	return json_is_integer(g) ? (int64_t) json_integer_value(g) : 0;
}

bool
mcf_meta_is_deleting(const json_t *obj)
{
	json_t *d
	    = json_object_get(get_obj(obj, "metadata"), "deletionTimestamp");
	return d != NULL && !json_is_null(d);
}

json_t *
mcf_meta_labels(const json_t *obj)
{
	return get_obj(get_obj(obj, "metadata"), "labels");
}

const char *
mcf_meta_label(const json_t *obj, const char *key)
{
	if (key == NULL)
		return NULL;
	return json_string_value(json_object_get(mcf_meta_labels(obj), key));
}

/* ---- cache keys ------------------------------------------------------- */

char *
mcf_meta_key_join(const char *ns, const char *name)
{
	if (ns == NULL || ns[0] == '\0')
		return mcf_strdup(name);
	return mcf_asprintf("%s/%s", ns, name);
}

int
mcf_meta_key(const json_t *obj, char **out)
{
	const char *name = mcf_meta_name(obj);
	if (name == NULL || name[0] == '\0')
		return MCF_EINVAL;
	*out = mcf_meta_key_join(mcf_meta_namespace(obj), name);
	return MCF_OK;
}

int
mcf_meta_key_split(const char *key, char **ns, char **name)
{
	if (key == NULL || key[0] == '\0')
		return MCF_EINVAL;
	const char *slash = strchr(key, '/');
	if (slash == NULL) {
		*ns   = NULL;
		*name = mcf_strdup(key);
		return MCF_OK;
	}
	if (slash == key || slash[1] == '\0' || strchr(slash + 1, '/') != NULL)
		return MCF_EINVAL;
	*ns   = mcf_strndup(key, (size_t) (slash - key));
	*name = mcf_strdup(slash + 1);
	return MCF_OK;
}

/* ---- events ----------------------------------------------------------- */

/* Longest DNS subdomain, the limit on an Event's name. */
#define NAME_MAX_LEN 253
/* ".<16 hex digits>" */
#define SUFFIX_LEN 17

/* 64 bits that differ between calls and, very likely, processes. */
static uint64_t
unique64(void)
{
	static atomic_uint_fast64_t counter;
	uint64_t                    v;
	if (getrandom(&v, sizeof v, 0) == (ssize_t) sizeof v)
		return v;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	v = (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
	return v ^ (atomic_fetch_add(&counter, 1) * 0x9e3779b97f4a7c15u);
}

/* "<name>.<16 hex>", `name` cut so that the whole stays within
 * NAME_MAX_LEN and, after a cut, ending in an alphanumeric character as a
 * DNS label must.  New string. */
static char *
event_name(const char *name)
{
	size_t n = strlen(name);
	if (n > NAME_MAX_LEN - SUFFIX_LEN) {
		n = NAME_MAX_LEN - SUFFIX_LEN;
		while (n > 0 && (name[n - 1] == '.' || name[n - 1] == '-'))
			n--;
	}
	return mcf_asprintf(
	    "%.*s.%016llx", (int) n, name, (unsigned long long) unique64());
}

/* Length of `s` cut to at most `max` bytes without splitting a UTF-8
 * sequence: the cut moves back over continuation bytes (10xxxxxx) to the
 * start of the character that would be split. */
static size_t
utf8_cut(const char *s, size_t max)
{
	size_t n = strlen(s);
	if (n <= max)
		return n;
	n = max;
	while (n > 0 && ((unsigned char) s[n] & 0xC0) == 0x80)
		n--;
	return n;
}

/* Sets obj[key] to a string copied from `s` (NULL: nothing).  False when
 * `s` is not UTF-8. */
static bool
set_str(json_t *obj, const char *key, const char *s)
{
	if (s == NULL)
		return true;
	json_t *v = json_string(s);
	if (v == NULL)
		return false;
	json_object_set_new(obj, key, v);
	return true;
}

int
mcf_meta_event_build(const json_t *obj, const mcf_meta_recorder *rec,
    const char *type, const char *reason, const char *message, time_t now,
    json_t **out)
{
	if (type == NULL
	    || (strcmp(type, "Normal") != 0 && strcmp(type, "Warning") != 0))
		return MCF_EINVAL;
	if (reason == NULL || reason[0] == '\0' || rec == NULL
	    || rec->component == NULL || rec->component[0] == '\0')
		return MCF_EINVAL;
	const char *av = json_string_value(json_object_get(obj, "apiVersion"));
	const char *kind = json_string_value(json_object_get(obj, "kind"));
	const char *name = mcf_meta_name(obj);
	if (av == NULL || av[0] == '\0' || kind == NULL || kind[0] == '\0'
	    || name == NULL || name[0] == '\0')
		return MCF_EINVAL;
	const char *ns = mcf_meta_namespace(obj);

	char ts[MCF_META_TIME_LEN];
	mcf_meta_time_format(now, ts);
	if (message == NULL)
		message = "";
	json_t *msg = json_stringn(
	    message, utf8_cut(message, MCF_META_EVENT_MESSAGE_MAX));

	/* Field order as client-go's v1.Event marshals. */
	json_t *ev  = json_object();
	json_t *md  = json_object();
	json_t *inv = json_object();
	json_t *src = json_object();
	char   *evn = event_name(name);
	bool    ok  = msg != NULL;
	json_object_set_new(ev, "kind", json_string("Event"));
	json_object_set_new(ev, "apiVersion", json_string("v1"));
	ok = ok && set_str(md, "name", evn)
	    && set_str(md, "namespace", ns != NULL ? ns : "default");
	json_object_set_new(ev, "metadata", md);
	ok = ok && set_str(inv, "kind", kind) && set_str(inv, "namespace", ns)
	    && set_str(inv, "name", name)
	    && set_str(inv, "uid", mcf_meta_uid(obj))
	    && set_str(inv, "apiVersion", av)
	    && set_str(inv, "resourceVersion", mcf_meta_resource_version(obj));
	json_object_set_new(ev, "involvedObject", inv);
	ok = ok && set_str(ev, "reason", reason);
	if (msg != NULL)
		json_object_set_new(ev, "message", msg);
	ok = ok && set_str(src, "component", rec->component)
	    && set_str(src, "host", rec->instance);
	json_object_set_new(ev, "source", src);
	json_object_set_new(ev, "firstTimestamp", json_string(ts));
	json_object_set_new(ev, "lastTimestamp", json_string(ts));
	json_object_set_new(ev, "count", json_integer(1));
	ok = ok && set_str(ev, "type", type)
	    && set_str(ev, "reportingComponent", rec->component)
	    && set_str(ev, "reportingInstance", rec->instance);
	free(evn);
	if (!ok) {
		json_decref(ev);
		return MCF_EINVAL;
	}
	*out = ev;
	return MCF_OK;
}

int
mcf_meta_event_emit(mcf_kc *client, const mcf_meta_recorder *rec,
    const json_t *obj, const char *type, const char *reason, const char *fmt,
    ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *msg = mcf_vasprintf(fmt, ap);
	va_end(ap);

	json_t *ev = NULL;
	int     rc = mcf_meta_event_build(
	        obj, rec, type, reason, msg, time(NULL), &ev);
	free(msg);
	if (rc != 0) {
		const char *name = mcf_meta_name(obj);
		mcf_log_warn("META-EVENT-FAILED",
		    "event %s for %s: cannot build: %s",
		    reason != NULL ? reason : "(null)",
		    name != NULL ? name : "(no name)", mcf_strerror(rc));
		return rc;
	}

	const char   *ns  = meta_str(ev, "namespace");
	mcf_kc_ref    ref = { NULL, "v1", "events", ns, NULL };
	mcf_kc_status st;
	rc = mcf_kc_create_object(client, &ref, ev, NULL, &st);
	if (rc != 0)
		mcf_log_warn("META-EVENT-FAILED",
		    "event %s/%s (%s %s): %s: %s", ns, mcf_meta_name(ev), type,
		    reason, mcf_strerror(rc), st.message);
	json_decref(ev);
	return rc;
}

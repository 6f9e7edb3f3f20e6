/*
 * store.c — planes, objects, resourceVersions and the history ring.
 *
 * Each plane keeps one table per group/resource: a jansson object used as a
 * hash map from key to the stored (immutable) object, plus a sorted key
 * array rebuilt lazily after creates and deletes (updates keep the order).
 * The history ring holds the last `history` events; because every persisted
 * write of a plane takes the next RV of that plane, the ring is indexed
 * directly by RV.  Reconstructing the state at RV S walks the ring from the
 * newest event back to S+1 and undoes each one (for a key, the `old` of the
 * earliest event after S is its state at S).
 */
#include "store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "err.h"

#define PLANE_FIRST_RV 100
#define MAX_OBSERVERS 8

typedef struct table {
	char   *gr;     /* "group/resource" (owned) */
	json_t *objs;   /* key → object (owned) */
	json_t *texts;  /* key → JSON string of the object's text (owned) */
	char  **sorted; /* keys in byte order (owned array, borrowed keys) */
	size_t  nsorted;
	bool    dirty;
} table;

typedef struct crd_types {
	char     *crd;   /* owned */
	ks_type **types; /* owned */
	size_t    n;
} crd_types;

struct ks_plane {
	ks_store  *store;    /* borrowed */
	char      *name;     /* owned; "" for the root */
	uint64_t   rv;
	uint64_t   floor;
	ks_event  *ring;     /* history, ring[(rv) % cap] */
	size_t     cap;
	uint64_t   oldest;   /* RV of the oldest retained event, 0 if none */
	table     *tables;   /* owned array */
	size_t     ntables;
	crd_types *crds;     /* owned array */
	size_t     ncrds;
	void      *user;     /* the watch hub's slot */
	ks_plane  *next;     /* next project plane */
};

struct ks_store {
	size_t            history;
	ks_plane         *root;
	json_t           *index; /* project name → plane pointer (integer) */
	ks_plane         *planes; /* project planes, newest first */
	ks_store_observer obs[MAX_OBSERVERS];
	size_t            nobs;
};

static ks_plane *
plane_new(ks_store *st, const char *name)
{
	ks_plane *p = mcf_calloc(1, sizeof(*p));
	p->store    = st;
	p->name     = mcf_strdup(name);
	p->rv       = PLANE_FIRST_RV;
	p->floor    = PLANE_FIRST_RV;
	p->cap      = st->history > 0 ? st->history : 1;
	p->ring     = mcf_calloc(p->cap, sizeof(*p->ring));
	return p;
}

static void
event_clear(ks_event *ev)
{
	free((char *) ev->key);
	free((char *) ev->gr);
	json_decref(ev->obj);
	json_decref(ev->old);
	memset(ev, 0, sizeof(*ev));
}

static void
plane_free(ks_plane *p)
{
	if (p == NULL)
		return;
	for (size_t i = 0; i < p->cap; i++)
		if (p->ring[i].rv != 0)
			event_clear(&p->ring[i]);
	free(p->ring);
	for (size_t i = 0; i < p->ntables; i++) {
		free(p->tables[i].gr);
		json_decref(p->tables[i].objs);
		json_decref(p->tables[i].texts);
		free(p->tables[i].sorted);
	}
	free(p->tables);
	for (size_t i = 0; i < p->ncrds; i++) {
		for (size_t j = 0; j < p->crds[i].n; j++)
			ks_type_free(p->crds[i].types[j]);
		free(p->crds[i].types);
		free(p->crds[i].crd);
	}
	free(p->crds);
	free(p->name);
	free(p);
}

int
ks_store_create(ks_store **out, size_t history)
{
	ks_store *st = mcf_calloc(1, sizeof(*st));
	st->history  = history;
	st->index    = json_object();
	st->root     = plane_new(st, "");
	*out         = st;
	return MCF_OK;
}

void
ks_store_destroy(ks_store *st)
{
	if (st == NULL)
		return;
	ks_plane *p = st->planes;
	while (p != NULL) {
		ks_plane *n = p->next;
		plane_free(p);
		p = n;
	}
	plane_free(st->root);
	json_decref(st->index);
	free(st);
}

void
ks_store_observe(ks_store *st, const ks_store_observer *obs)
{
	if (st->nobs >= MAX_OBSERVERS)
		mcf_panic("too many store observers");
	st->obs[st->nobs++] = *obs;
}

ks_plane *
ks_store_root(ks_store *st)
{
	return st->root;
}

ks_plane *
ks_store_plane(ks_store *st, const char *project)
{
	json_t *v = json_object_get(st->index, project);
	return v ? (ks_plane *) (uintptr_t) json_integer_value(v) : NULL;
}

ks_plane *
ks_store_plane_create(ks_store *st, const char *project)
{
	ks_plane *p = ks_store_plane(st, project);
	if (p != NULL)
		return p;
	p         = plane_new(st, project);
	p->next   = st->planes;
	st->planes = p;
	json_object_set_new(st->index, project,
	    json_integer((json_int_t) (uintptr_t) p));
	return p;
}

void
ks_store_plane_delete(ks_store *st, const char *project)
{
	ks_plane *p = ks_store_plane(st, project);
	if (p == NULL)
		return;
	for (size_t i = 0; i < st->nobs; i++)
		if (st->obs[i].on_plane_gone != NULL)
			st->obs[i].on_plane_gone(st->obs[i].arg, p);
	json_object_del(st->index, project);
	for (ks_plane **pp = &st->planes; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	}
	plane_free(p);
}

static void
plane_reset_history(ks_plane *p, bool reset_rv)
{
	for (size_t i = 0; i < p->cap; i++)
		if (p->ring[i].rv != 0)
			event_clear(&p->ring[i]);
	p->oldest = 0;
	if (reset_rv)
		p->rv = PLANE_FIRST_RV;
	p->floor = p->rv;
}

void
ks_store_restart(ks_store *st, bool keep_state, bool reset_rv)
{
	if (!keep_state) {
		while (st->planes != NULL) {
			char *name = mcf_strdup(st->planes->name);
			ks_store_plane_delete(st, name);
			free(name);
		}
		ks_plane *r = st->root;
		for (size_t i = 0; i < r->ntables; i++) {
			json_object_clear(r->tables[i].objs);
			json_object_clear(r->tables[i].texts);
			r->tables[i].dirty = true;
		}
		for (size_t i = 0; i < r->ncrds; i++) {
			for (size_t j = 0; j < r->crds[i].n; j++)
				ks_type_free(r->crds[i].types[j]);
			free(r->crds[i].types);
			free(r->crds[i].crd);
		}
		r->ncrds = 0;
	}
	plane_reset_history(st->root, reset_rv);
	for (ks_plane *p = st->planes; p != NULL; p = p->next)
		plane_reset_history(p, reset_rv);
}

void
ks_store_foreach_plane(ks_store *st, void (*fn)(void *, ks_plane *),
    void *arg)
{
	fn(arg, st->root);
	/* Collect first: `fn` may delete planes. */
	size_t     n = json_object_size(st->index);
	ks_plane **v = mcf_calloc(n + 1, sizeof(*v));
	size_t     i = 0;
	for (ks_plane *p = st->planes; p != NULL && i < n; p = p->next)
		v[i++] = p;
	for (size_t j = 0; j < i; j++)
		fn(arg, v[j]);
	free(v);
}

const char *
ks_plane_name(const ks_plane *p)
{
	return p->name;
}

bool
ks_plane_is_root(const ks_plane *p)
{
	return p->name[0] == '\0';
}

uint64_t
ks_plane_rv(const ks_plane *p)
{
	return p->rv;
}

uint64_t
ks_plane_floor(const ks_plane *p)
{
	return p->floor;
}

ks_store *
ks_plane_store(ks_plane *p)
{
	return p->store;
}

void **
ks_plane_user(ks_plane *p)
{
	return &p->user;
}

static ks_event *
ring_slot(ks_plane *p, uint64_t rv)
{
	return &p->ring[rv % p->cap];
}

void
ks_plane_compact(ks_plane *p, uint64_t rv)
{
	if (rv > p->rv)
		rv = p->rv;
	if (rv <= p->floor)
		return;
	for (uint64_t r = p->oldest; r != 0 && r <= rv; r++) {
		ks_event *ev = ring_slot(p, r);
		if (ev->rv == r)
			event_clear(ev);
	}
	p->floor  = rv;
	p->oldest = rv < p->rv ? rv + 1 : 0;
}

const ks_type *
ks_plane_type(ks_plane *p, const char *group, const char *version,
    const char *resource)
{
	size_t                n;
	const ks_type *const *b = ks_types_builtin(&n);
	for (size_t i = 0; i < n; i++) {
		const ks_type *t = b[i];
		if (t->root_only && !ks_plane_is_root(p))
			continue;
		if (strcmp(t->group, group) == 0 &&
		    strcmp(t->version, version) == 0 &&
		    strcmp(t->resource, resource) == 0)
			return t;
	}
	for (size_t i = 0; i < p->ncrds; i++) {
		for (size_t j = 0; j < p->crds[i].n; j++) {
			const ks_type *t = p->crds[i].types[j];
			if (strcmp(t->group, group) == 0 &&
			    strcmp(t->version, version) == 0 &&
			    strcmp(t->resource, resource) == 0)
				return t;
		}
	}
	return NULL;
}

size_t
ks_plane_types(ks_plane *p, const ks_type ***out)
{
	size_t                nb;
	const ks_type *const *b     = ks_types_builtin(&nb);
	size_t                total = nb;
	for (size_t i = 0; i < p->ncrds; i++)
		total += p->crds[i].n;
	const ks_type **v = mcf_calloc(total + 1, sizeof(*v));
	size_t          k = 0;
	for (size_t i = 0; i < nb; i++)
		if (!b[i]->root_only || ks_plane_is_root(p))
			v[k++] = b[i];
	for (size_t i = 0; i < p->ncrds; i++)
		for (size_t j = 0; j < p->crds[i].n; j++)
			v[k++] = p->crds[i].types[j];
	*out = v;
	return k;
}

static table *
table_get(ks_plane *p, const ks_type *t, bool create)
{
	char gr[512];
	snprintf(gr, sizeof(gr), "%s/%s", t->group, t->resource);
	for (size_t i = 0; i < p->ntables; i++)
		if (strcmp(p->tables[i].gr, gr) == 0)
			return &p->tables[i];
	if (!create)
		return NULL;
	p->tables = mcf_realloc(p->tables, (p->ntables + 1) * sizeof(table));
	table *tb = &p->tables[p->ntables++];
	memset(tb, 0, sizeof(*tb));
	tb->gr    = mcf_strdup(gr);
	tb->objs  = json_object();
	tb->texts = json_object();
	return tb;
}

void
ks_plane_set_crd_types(ks_plane *p, const char *crd_name, ks_type **types,
    size_t n)
{
	for (size_t i = 0; i < p->ncrds; i++) {
		if (strcmp(p->crds[i].crd, crd_name) == 0) {
			for (size_t j = 0; j < p->crds[i].n; j++)
				ks_type_free(p->crds[i].types[j]);
			free(p->crds[i].types);
			p->crds[i].types = types;
			p->crds[i].n     = n;
			return;
		}
	}
	p->crds = mcf_realloc(p->crds, (p->ncrds + 1) * sizeof(crd_types));
	p->crds[p->ncrds].crd   = mcf_strdup(crd_name);
	p->crds[p->ncrds].types = types;
	p->crds[p->ncrds].n     = n;
	p->ncrds++;
}

static bool
collect_key(void *arg, const char *key, const json_t *obj)
{
	json_t *keys = arg;
	(void) obj;
	json_array_append_new(keys, json_string(key));
	return true;
}

void
ks_plane_drop_crd_types(ks_plane *p, const char *crd_name)
{
	for (size_t i = 0; i < p->ncrds; i++) {
		if (strcmp(p->crds[i].crd, crd_name) != 0)
			continue;
		crd_types ct = p->crds[i];
		/* Remove the objects first, while the type is still
		 * known to observers (they see DELETED events). */
		if (ct.n > 0) {
			const ks_type *t    = ct.types[0];
			json_t        *keys = json_array();
			ks_plane_list(p, t, NULL, 0, NULL, collect_key, keys);
			size_t  k;
			json_t *kv;
			json_array_foreach (keys, k, kv) {
				const char *key   = json_string_value(kv);
				const char *slash = strchr(key, '/');
				char        ns[256] = "";
				const char *name    = key;
				if (t->namespaced && slash != NULL) {
					snprintf(ns, sizeof(ns), "%.*s",
					    (int) (slash - key), key);
					name = slash + 1;
				}
				json_decref(ks_plane_remove(p, t,
				    t->namespaced ? ns : NULL, name, NULL));
			}
			json_decref(keys);
		}
		for (size_t j = 0; j < ct.n; j++)
			ks_type_free(ct.types[j]);
		free(ct.types);
		free(ct.crd);
		p->crds[i] = p->crds[--p->ncrds];
		return;
	}
}

void
ks_key(const ks_type *t, const char *ns, const char *name, char *buf,
    size_t len)
{
	if (t->namespaced)
		snprintf(buf, len, "%s/%s", ns ? ns : "", name);
	else
		snprintf(buf, len, "%s", name);
}

const json_t *
ks_plane_get(ks_plane *p, const ks_type *t, const char *ns,
    const char *name)
{
	table *tb = table_get(p, t, false);
	if (tb == NULL)
		return NULL;
	char key[1024];
	ks_key(t, ns, name, key, sizeof(key));
	return json_object_get(tb->objs, key);
}

static void
set_rv(json_t *obj, uint64_t rv)
{
	json_t *meta = json_object_get(obj, "metadata");
	if (!json_is_object(meta)) {
		meta = json_object();
		json_object_set_new(obj, "metadata", meta);
	}
	char buf[32];
	snprintf(buf, sizeof(buf), "%llu", (unsigned long long) rv);
	json_object_set_new(meta, "resourceVersion", json_string(buf));
}

/* Appends an event (steals obj/old/key) and tells the observers. */
static void
record(ks_plane *p, const ks_type *t, enum ks_event_type type, char *key,
    json_t *obj, json_t *old)
{
	ks_event *slot = ring_slot(p, p->rv);
	if (slot->rv != 0) {
		/* Overwriting the oldest event moves the floor up to it:
		 * the states before it can no longer be rebuilt. */
		uint64_t dropped = slot->rv;
		event_clear(slot);
		if (dropped > p->floor)
			p->floor = dropped;
		p->oldest = dropped + 1;
	}
	char gr[512];
	snprintf(gr, sizeof(gr), "%s/%s", t->group, t->resource);
	slot->rv    = p->rv;
	slot->type  = type;
	slot->rtype = NULL;
	slot->gr    = mcf_strdup(gr);
	slot->key   = key;
	slot->obj   = obj;
	slot->old   = old;
	if (p->oldest == 0)
		p->oldest = p->rv;
	/* Observers may write (a CRD's deletion removes its objects), and a
	 * nested write can reuse this very slot when the ring is small, so
	 * they get their own references. */
	ks_event ev = { .rv = slot->rv, .type = type, .rtype = t,
		.gr = mcf_strdup(gr), .key = mcf_strdup(key),
		.obj = json_incref(obj), .old = json_incref(old) };
	ks_store *st = p->store;
	for (size_t i = 0; i < st->nobs; i++)
		if (st->obs[i].on_event != NULL)
			st->obs[i].on_event(st->obs[i].arg, p, &ev);
	event_clear(&ev);
}

const json_t *
ks_plane_put(ks_plane *p, const ks_type *t, json_t *obj)
{
	table      *tb   = table_get(p, t, true);
	json_t     *meta = json_object_get(obj, "metadata");
	const char *name = json_string_value(json_object_get(meta, "name"));
	const char *ns   = json_string_value(json_object_get(meta, "namespace"));
	char        key[1024];
	ks_key(t, ns, name ? name : "", key, sizeof(key));
	p->rv++;
	set_rv(obj, p->rv);
	json_t *old = json_object_get(tb->objs, key);
	if (old != NULL)
		json_incref(old);
	else
		tb->dirty = true;
	json_object_set(tb->objs, key, obj);
	json_object_del(tb->texts, key);
	json_incref(obj);
	record(p, t, old ? KS_MODIFIED : KS_ADDED, mcf_strdup(key), obj, old);
	json_t *stored = json_object_get(tb->objs, key);
	json_decref(obj);
	return stored;
}

json_t *
ks_plane_remove(ks_plane *p, const ks_type *t, const char *ns,
    const char *name, json_t *final)
{
	table *tb = table_get(p, t, false);
	char   key[1024];
	ks_key(t, ns, name, key, sizeof(key));
	json_t *old = tb ? json_object_get(tb->objs, key) : NULL;
	if (old == NULL) {
		json_decref(final);
		return NULL;
	}
	json_incref(old);
	json_object_del(tb->objs, key);
	json_object_del(tb->texts, key);
	tb->dirty = true;
	p->rv++;
	json_t *last = final ? final : json_deep_copy(old);
	set_rv(last, p->rv);
	json_incref(last);
	record(p, t, KS_DELETED, mcf_strdup(key), last, old);
	return last;
}

static int
cmp_keys(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

static void
table_sort(table *tb)
{
	if (!tb->dirty && tb->sorted != NULL)
		return;
	size_t n   = json_object_size(tb->objs);
	tb->sorted = mcf_realloc(tb->sorted, (n + 1) * sizeof(char *));
	size_t      i = 0;
	const char *k;
	json_t     *v;
	json_object_foreach (tb->objs, k, v)
		tb->sorted[i++] = (char *) k;
	qsort(tb->sorted, i, sizeof(char *), cmp_keys);
	tb->nsorted = i;
	tb->dirty   = false;
}

static bool
key_in_ns(const ks_type *t, const char *key, const char *ns)
{
	if (ns == NULL || !t->namespaced)
		return true;
	size_t n = strlen(ns);
	return strncmp(key, ns, n) == 0 && key[n] == '/';
}

/* First index in sorted keys greater than `after`. */
static size_t
lower_index(char **keys, size_t n, const char *after)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (strcmp(keys[mid], after) <= 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int
ks_plane_list(ks_plane *p, const ks_type *t, const char *ns,
    uint64_t at_rv, const char *after,
    bool (*fn)(void *arg, const char *key, const json_t *obj), void *arg)
{
	if (at_rv != 0 && at_rv < p->floor)
		return MCF_EGONE;
	if (at_rv > p->rv)
		at_rv = 0;
	table *tb = table_get(p, t, false);
	char   gr[512];
	snprintf(gr, sizeof(gr), "%s/%s", t->group, t->resource);
	/* Namespaced lists start at "ns/"; a later start wins. */
	char start[1024] = "";
	if (ns != NULL && t->namespaced)
		snprintf(start, sizeof(start), "%s/", ns);
	const char *from = start;
	if (after != NULL && strcmp(after, start) > 0)
		from = after;

	if (at_rv == 0 || at_rv == p->rv) {
		if (tb == NULL)
			return MCF_OK;
		table_sort(tb);
		/* Keys equal to `start` ("ns/") cannot exist, so a strict
		 * lower bound is right for both cases. */
		for (size_t i = lower_index(tb->sorted, tb->nsorted, from);
		     i < tb->nsorted; i++) {
			const char *key = tb->sorted[i];
			if (!key_in_ns(t, key, ns))
				break;
			if (!fn(arg, key, json_object_get(tb->objs, key)))
				break;
		}
		return MCF_OK;
	}

	/* State at at_rv: undo newer events of this table, newest first,
	 * so each key ends with its state just after at_rv. */
	json_t *overlay = json_object();
	for (uint64_t r = p->rv; r > at_rv; r--) {
		ks_event *ev = ring_slot(p, r);
		if (ev->rv != r)
			break;
		if (strcmp(ev->gr, gr) != 0)
			continue;
		json_object_set(overlay, ev->key,
		    ev->old ? ev->old : json_null());
	}
	json_t *merged = tb ? json_copy(tb->objs) : json_object();
	const char *k;
	json_t     *v;
	json_object_foreach (overlay, k, v) {
		if (json_is_null(v))
			json_object_del(merged, k);
		else
			json_object_set(merged, k, v);
	}
	size_t n    = json_object_size(merged);
	char **keys = mcf_calloc(n + 1, sizeof(char *));
	size_t i    = 0;
	json_object_foreach (merged, k, v)
		keys[i++] = (char *) k;
	qsort(keys, i, sizeof(char *), cmp_keys);
	for (size_t j = lower_index(keys, i, from); j < i; j++) {
		if (!key_in_ns(t, keys[j], ns))
			break;
		if (!fn(arg, keys[j], json_object_get(merged, keys[j])))
			break;
	}
	free(keys);
	json_decref(merged);
	json_decref(overlay);
	return MCF_OK;
}

const char *
ks_plane_text(ks_plane *p, const ks_type *t, const char *key,
    const json_t *obj, size_t *len)
{
	table *tb = table_get(p, t, false);
	if (tb == NULL || json_object_get(tb->objs, key) != obj)
		return NULL;
	json_t *text = json_object_get(tb->texts, key);
	if (text == NULL) {
		char *s = json_dumps(obj, JSON_COMPACT);
		if (s == NULL)
			return NULL;
		text = json_stringn_nocheck(s, strlen(s));
		free(s);
		json_object_set_new(tb->texts, key, text);
	}
	*len = json_string_length(text);
	return json_string_value(text);
}

size_t
ks_plane_count(ks_plane *p, const ks_type *t)
{
	table *tb = table_get(p, t, false);
	return tb ? json_object_size(tb->objs) : 0;
}

int
ks_plane_events_since(ks_plane *p, uint64_t since,
    void (*fn)(void *arg, const ks_event *ev), void *arg)
{
	if (since < p->floor)
		return MCF_EGONE;
	for (uint64_t r = since + 1; r <= p->rv; r++) {
		ks_event *ev = ring_slot(p, r);
		if (ev->rv == r)
			fn(arg, ev);
	}
	return MCF_OK;
}

/*
 * ks_store_test.c — kubesim's store: resourceVersions, the history ring,
 * snapshots at an older RV, compaction, planes and observers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "alloc.h"
#include "err.h"
#include "store.h"

static const ks_type *
cm_type(ks_plane *p)
{
	return ks_plane_type(p, "", "v1", "configmaps");
}

static json_t *
cm(const char *ns, const char *name, const char *value)
{
	return json_pack("{s:s,s:s,s:{s:s,s:s},s:{s:s}}", "kind", "ConfigMap",
	    "apiVersion", "v1", "metadata", "name", name, "namespace", ns,
	    "data", "v", value);
}

typedef struct seen {
	char     keys[64][64];
	char     vals[64][16];
	size_t   n;
	uint64_t rvs[64];
	int      types[64];
} seen;

static bool
collect(void *arg, const char *key, const json_t *obj)
{
	seen *s = arg;
	snprintf(s->keys[s->n], sizeof(s->keys[0]), "%s", key);
	const char *v = json_string_value(
	    json_object_get(json_object_get(obj, "data"), "v"));
	snprintf(s->vals[s->n], sizeof(s->vals[0]), "%s", v ? v : "");
	s->n++;
	return true;
}

static void
on_event(void *arg, ks_plane *p, const ks_event *ev)
{
	(void) p;
	seen *s        = arg;
	s->rvs[s->n]   = ev->rv;
	s->types[s->n] = (int) ev->type;
	s->n++;
}

static void
test_store_rv_counts_every_write(void **state)
{
	(void) state;
	ks_store *st;
	assert_int_equal(ks_store_create(&st, 100), MCF_OK);
	seen              ev  = { 0 };
	ks_store_observer obs = { .on_event = on_event, .arg = &ev };
	ks_store_observe(st, &obs);
	ks_plane      *root = ks_store_root(st);
	const ks_type *t    = cm_type(root);
	uint64_t       rv0  = ks_plane_rv(root);
	assert_true(rv0 >= 100);
	const json_t *o = ks_plane_put(root, t, cm("default", "a", "1"));
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(o, "metadata"),
		"resourceVersion")),
	    "101");
	ks_plane_put(root, t, cm("default", "a", "2"));
	json_t *last = ks_plane_remove(root, t, "default", "a", NULL);
	assert_non_null(last);
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(last, "metadata"),
		"resourceVersion")),
	    "103");
	json_decref(last);
	assert_null(ks_plane_remove(root, t, "default", "a", NULL));
	assert_int_equal(ks_plane_rv(root), rv0 + 3);
	assert_int_equal(ev.n, 3);
	assert_int_equal(ev.types[0], KS_ADDED);
	assert_int_equal(ev.types[1], KS_MODIFIED);
	assert_int_equal(ev.types[2], KS_DELETED);
	assert_int_equal(ev.rvs[2], rv0 + 3);
	ks_store_destroy(st);
}

static void
test_store_list_sorted_and_namespaced(void **state)
{
	(void) state;
	ks_store *st;
	ks_store_create(&st, 100);
	ks_plane      *root = ks_store_root(st);
	const ks_type *t    = cm_type(root);
	ks_plane_put(root, t, cm("b", "x", "1"));
	ks_plane_put(root, t, cm("a", "z", "2"));
	ks_plane_put(root, t, cm("a", "y", "3"));
	ks_plane_put(root, t, cm("ab", "w", "4"));
	seen s = { 0 };
	assert_int_equal(ks_plane_list(root, t, NULL, 0, NULL, collect, &s), 0);
	assert_int_equal(s.n, 4);
	assert_string_equal(s.keys[0], "a/y");
	assert_string_equal(s.keys[1], "a/z");
	assert_string_equal(s.keys[2], "ab/w");
	assert_string_equal(s.keys[3], "b/x");
	memset(&s, 0, sizeof(s));
	ks_plane_list(root, t, "a", 0, NULL, collect, &s);
	assert_int_equal(s.n, 2); /* "ab" is not in namespace "a" */
	memset(&s, 0, sizeof(s));
	ks_plane_list(root, t, NULL, 0, "a/z", collect, &s);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.keys[0], "ab/w");
	ks_store_destroy(st);
}

static void
test_store_snapshot_at_older_rv(void **state)
{
	(void) state;
	ks_store *st;
	ks_store_create(&st, 100);
	ks_plane      *root = ks_store_root(st);
	const ks_type *t    = cm_type(root);
	ks_plane_put(root, t, cm("d", "a", "1"));
	ks_plane_put(root, t, cm("d", "b", "1"));
	uint64_t snap = ks_plane_rv(root);
	ks_plane_put(root, t, cm("d", "a", "2"));  /* modify */
	json_decref(ks_plane_remove(root, t, "d", "b", NULL)); /* delete */
	ks_plane_put(root, t, cm("d", "c", "1"));  /* create */
	seen s = { 0 };
	assert_int_equal(ks_plane_list(root, t, NULL, snap, NULL, collect, &s),
	    0);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.keys[0], "d/a");
	assert_string_equal(s.vals[0], "1");
	assert_string_equal(s.keys[1], "d/b");
	memset(&s, 0, sizeof(s));
	ks_plane_list(root, t, NULL, 0, NULL, collect, &s);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.keys[0], "d/a");
	assert_string_equal(s.vals[0], "2");
	assert_string_equal(s.keys[1], "d/c");
	ks_store_destroy(st);
}

static void
count_event(void *arg, const ks_event *ev)
{
	(void) ev;
	(*(int *) arg)++;
}

static void
test_store_history_ring_moves_floor(void **state)
{
	(void) state;
	ks_store *st;
	ks_store_create(&st, 5);
	ks_plane      *root = ks_store_root(st);
	const ks_type *t    = cm_type(root);
	uint64_t       base = ks_plane_rv(root);
	assert_int_equal(ks_plane_floor(root), base);
	for (int i = 0; i < 12; i++) {
		char v[8];
		snprintf(v, sizeof(v), "%d", i);
		ks_plane_put(root, t, cm("d", "a", v));
	}
	uint64_t cur = ks_plane_rv(root);
	assert_int_equal(cur, base + 12);
	/* Five events kept: the oldest state rebuildable is cur - 5. */
	assert_int_equal(ks_plane_floor(root), cur - 5);
	int n = 0;
	assert_int_equal(ks_plane_events_since(root, cur - 5, count_event, &n),
	    0);
	assert_int_equal(n, 5);
	assert_int_equal(ks_plane_events_since(root, cur - 6, count_event, &n),
	    MCF_EGONE);
	seen s = { 0 };
	assert_int_equal(ks_plane_list(root, t, NULL, cur - 6, NULL, collect,
			     &s),
	    MCF_EGONE);
	assert_int_equal(ks_plane_list(root, t, NULL, cur - 5, NULL, collect,
			     &s),
	    0);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.vals[0], "6");
	ks_store_destroy(st);
}

static void
test_store_compact(void **state)
{
	(void) state;
	ks_store *st;
	ks_store_create(&st, 100);
	ks_plane      *root = ks_store_root(st);
	const ks_type *t    = cm_type(root);
	for (int i = 0; i < 4; i++)
		ks_plane_put(root, t, cm("d", "a", "x"));
	uint64_t cur = ks_plane_rv(root);
	ks_plane_compact(root, cur - 1);
	assert_int_equal(ks_plane_floor(root), cur - 1);
	int n = 0;
	assert_int_equal(ks_plane_events_since(root, cur - 2, count_event, &n),
	    MCF_EGONE);
	assert_int_equal(ks_plane_events_since(root, cur - 1, count_event, &n),
	    0);
	assert_int_equal(n, 1);
	/* Compacting to the current RV leaves nothing to replay. */
	ks_plane_compact(root, cur + 50);
	assert_int_equal(ks_plane_floor(root), cur);
	ks_plane_put(root, t, cm("d", "a", "y"));
	n = 0;
	assert_int_equal(ks_plane_events_since(root, cur, count_event, &n), 0);
	assert_int_equal(n, 1);
	ks_store_destroy(st);
}

static void
on_gone(void *arg, ks_plane *p)
{
	(void) p;
	(*(int *) arg)++;
}

static void
test_store_planes_are_independent(void **state)
{
	(void) state;
	ks_store *st;
	ks_store_create(&st, 100);
	int               gone = 0;
	ks_store_observer obs  = { .on_plane_gone = on_gone, .arg = &gone };
	ks_store_observe(st, &obs);
	ks_plane *root = ks_store_root(st);
	ks_plane *p1   = ks_store_plane_create(st, "p1");
	assert_ptr_equal(ks_store_plane_create(st, "p1"), p1);
	assert_string_equal(ks_plane_name(p1), "p1");
	assert_false(ks_plane_is_root(p1));
	/* Projects are served only at the root. */
	assert_non_null(ks_plane_type(root, "resourcemanager.miloapis.com",
	    "v1alpha1", "projects"));
	assert_null(ks_plane_type(p1, "resourcemanager.miloapis.com",
	    "v1alpha1", "projects"));
	const ks_type *t = cm_type(p1);
	ks_plane_put(p1, t, cm("d", "a", "1"));
	assert_null(ks_plane_get(root, t, "d", "a"));
	assert_non_null(ks_plane_get(p1, t, "d", "a"));
	assert_int_equal(ks_plane_rv(p1), ks_plane_rv(root) + 1);
	ks_store_plane_delete(st, "p1");
	assert_int_equal(gone, 1);
	assert_null(ks_store_plane(st, "p1"));
	ks_store_plane_delete(st, "nope");
	assert_int_equal(gone, 1);
	ks_store_destroy(st);
}

static void
test_store_crd_types(void **state)
{
	(void) state;
	ks_store *st;
	ks_store_create(&st, 100);
	ks_plane *root = ks_store_root(st);
	json_t   *crd  = json_pack(
		"{s:{s:s},s:{s:s,s:s,s:{s:s,s:s,s:s},s:[{s:s,s:b,s:b}]}}",
		"metadata", "name", "widgets.example.com", "spec", "group",
		"example.com", "scope", "Namespaced", "names", "plural",
		"widgets", "singular", "widget", "kind", "Widget", "versions",
		"name", "v1", "served", 1, "storage", 1);
	ks_type **types;
	char      err[256];
	size_t    n = ks_types_from_crd(crd, &types, err, sizeof(err));
	assert_int_equal(n, 1);
	ks_plane_set_crd_types(root, "widgets.example.com", types, n);
	const ks_type *wt =
	    ks_plane_type(root, "example.com", "v1", "widgets");
	assert_non_null(wt);
	assert_true(wt->namespaced);
	json_t *w = json_pack("{s:{s:s,s:s}}", "metadata", "name", "w1",
	    "namespace", "d");
	ks_plane_put(root, wt, w);
	assert_int_equal(ks_plane_count(root, wt), 1);
	ks_plane_drop_crd_types(root, "widgets.example.com");
	assert_null(ks_plane_type(root, "example.com", "v1", "widgets"));
	json_decref(crd);

	/* A CRD whose name does not match plural.group is refused. */
	json_t *bad = json_pack("{s:{s:s},s:{s:s,s:s,s:{s:s,s:s},s:[{s:s}]}}",
	    "metadata", "name", "wrong.example.com", "spec", "group",
	    "example.com", "scope", "Cluster", "names", "plural", "gadgets",
	    "kind", "Gadget", "versions", "name", "v1");
	assert_int_equal(ks_types_from_crd(bad, &types, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "metadata.name"));
	json_decref(bad);
	ks_store_destroy(st);
}

int
main(void)
{
	mcf_alloc_init_libs();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_store_rv_counts_every_write),
		cmocka_unit_test(test_store_list_sorted_and_namespaced),
		cmocka_unit_test(test_store_snapshot_at_older_rv),
		cmocka_unit_test(test_store_history_ring_moves_floor),
		cmocka_unit_test(test_store_compact),
		cmocka_unit_test(test_store_planes_are_independent),
		cmocka_unit_test(test_store_crd_types),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

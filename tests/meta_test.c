/*
 * meta_test.c — object helpers (common/meta.h): status conditions against
 * a table of apimachinery's SetStatusCondition cases, finalizers, owner
 * references, accessors, cache keys and Events.
 *
 * Objects are written as JSON text and compared with json_equal(), so a
 * case reads as the object before, the call and the object after.  The
 * clock is a fixed `NOW` passed to the functions.  One test starts the
 * kubesim binary named by $KUBESIM (ks_spawn.h), records an Event about a
 * ConfigMap there and reads it back; that kubesim is stopped by its PID.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>

#include "alloc.h"
#include "kclient.h"
#include "ks_spawn.h"
#include "kubeconfig.h"
#include "log.h"
#include "meta.h"

/* 2023-11-14T22:13:20Z */
#define NOW ((time_t) 1700000000)
#define NOW_S "2023-11-14T22:13:20Z"
#define HOUR_BEFORE "2023-11-14T21:13:20Z"
#define HOUR_AFTER "2023-11-14T23:13:20Z"

static int scale = 1;

/* Parses test JSON text; a typo in a case fails loudly. */
static json_t *
js(const char *text)
{
	json_error_t err;
	json_t      *v = json_loads(text, JSON_DECODE_ANY, &err);
	if (v == NULL)
		fail_msg("bad test JSON (%s): %s", err.text, text);
	return v;
}

/* Asserts `got` equals the JSON `want`, printing both when not. */
static void
assert_json(const json_t *got, const char *want)
{
	json_t *w = js(want);
	if (!json_equal(got, w)) {
		char *g = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS);
		char *e = json_dumps(w, JSON_COMPACT | JSON_SORT_KEYS);
		print_message("got:  %s\nwant: %s\n", g, e);
		free(g);
		free(e);
		json_decref(w);
		fail();
	}
	json_decref(w);
}

/* ---- time ------------------------------------------------------------- */

static void
test_meta_time_format(void **state)
{
	(void) state;
	char buf[MCF_META_TIME_LEN];
	assert_string_equal(mcf_meta_time_format(NOW, buf), NOW_S);
	assert_string_equal(
	    mcf_meta_time_format(0, buf), "1970-01-01T00:00:00Z");
}

/* ---- conditions ------------------------------------------------------- */

/* One SetStatusCondition case: `before` and `after` are the object's
 * `status.conditions` (or the whole object when `whole`). */
struct cond_case {
	const char        *name;
	const char        *before;
	mcf_meta_condition set;
	bool               changed;
	const char        *after;
};

/* The first three are apimachinery's own TestSetStatusCondition cases
 * (should-add, use-supplied-time, update-fields, with -1h/+1h around a
 * fixed NOW); the rest take each remaining rule of SetStatusCondition in
 * turn. */
static const struct cond_case cond_cases[] = {
	{ "should-add", "[{\"type\":\"first\"},{\"type\":\"third\"}]",
	    { "second", "True", "reason", "message", 0, HOUR_BEFORE }, true,
	    "[{\"type\":\"first\"},{\"type\":\"third\"},"
	    "{\"type\":\"second\",\"status\":\"True\","
	    "\"lastTransitionTime\":\"" HOUR_BEFORE "\","
	    "\"reason\":\"reason\",\"message\":\"message\"}]" },
	{ "use-supplied-time",
	    "[{\"type\":\"first\"},{\"type\":\"second\",\"status\":\"False\"},"
	    "{\"type\":\"third\"}]",
	    { "second", "True", "reason", "message", 0, HOUR_BEFORE }, true,
	    "[{\"type\":\"first\"},"
	    "{\"type\":\"second\",\"status\":\"True\","
	    "\"lastTransitionTime\":\"" HOUR_BEFORE "\","
	    "\"reason\":\"reason\",\"message\":\"message\"},"
	    "{\"type\":\"third\"}]" },
	{ "update-fields",
	    "[{\"type\":\"first\"},{\"type\":\"second\",\"status\":\"True\","
	    "\"lastTransitionTime\":\"" HOUR_BEFORE
	    "\"},{\"type\":\"third\"}]",
	    { "second", "True", "reason", "message", 3, HOUR_AFTER }, true,
	    "[{\"type\":\"first\"},"
	    "{\"type\":\"second\",\"status\":\"True\","
	    "\"lastTransitionTime\":\"" HOUR_BEFORE "\","
	    "\"reason\":\"reason\",\"message\":\"message\","
	    "\"observedGeneration\":3},"
	    "{\"type\":\"third\"}]" },
	{ "add-stamps-now", "[]",
	    { "Ready", "False", "Pending", "waiting", 2, NULL }, true,
	    "[{\"type\":\"Ready\",\"status\":\"False\",\"observedGeneration\":"
	    "2,"
	    "\"lastTransitionTime\":\"" NOW_S "\","
	    "\"reason\":\"Pending\",\"message\":\"waiting\"}]" },
	{ "add-empty-time-is-unset", "[]",
	    { "Ready", "Unknown", NULL, NULL, 0, "" }, true,
	    "[{\"type\":\"Ready\",\"status\":\"Unknown\","
	    "\"lastTransitionTime\":\"" NOW_S "\","
	    "\"reason\":\"\",\"message\":\"\"}]" },
	{ "status-change-stamps-now",
	    "[{\"type\":\"Ready\",\"status\":\"False\","
	    "\"lastTransitionTime\":\"" HOUR_BEFORE "\","
	    "\"reason\":\"Pending\",\"message\":\"m\"}]",
	    { "Ready", "True", "Pending", "m", 0, NULL }, true,
	    "[{\"type\":\"Ready\",\"status\":\"True\","
	    "\"lastTransitionTime\":\"" NOW_S "\","
	    "\"reason\":\"Pending\",\"message\":\"m\"}]" },
	{ "nothing-changes",
	    "[{\"type\":\"Ready\",\"status\":\"True\",\"observedGeneration\":"
	    "4,"
	    "\"lastTransitionTime\":\"" HOUR_BEFORE "\","
	    "\"reason\":\"Done\",\"message\":\"ok\"}]",
	    { "Ready", "True", "Done", "ok", 4, NULL }, false,
	    "[{\"type\":\"Ready\",\"status\":\"True\",\"observedGeneration\":"
	    "4,"
	    "\"lastTransitionTime\":\"" HOUR_BEFORE "\","
	    "\"reason\":\"Done\",\"message\":\"ok\"}]" },
	{ "same-status-ignores-given-time",
	    "[{\"type\":\"Ready\",\"status\":\"True\","
	    "\"lastTransitionTime\":\"" HOUR_BEFORE "\","
	    "\"reason\":\"Done\",\"message\":\"ok\"}]",
	    { "Ready", "True", "Done", "ok", 0, HOUR_AFTER }, false,
	    "[{\"type\":\"Ready\",\"status\":\"True\","
	    "\"lastTransitionTime\":\"" HOUR_BEFORE "\","
	    "\"reason\":\"Done\",\"message\":\"ok\"}]" },
	{ "reason-only",
	    "[{\"type\":\"Ready\",\"status\":\"True\","
	    "\"lastTransitionTime\":\"" HOUR_BEFORE "\","
	    "\"reason\":\"Done\",\"message\":\"ok\"}]",
	    { "Ready", "True", "Other", "ok", 0, NULL }, true,
	    "[{\"type\":\"Ready\",\"status\":\"True\","
	    "\"lastTransitionTime\":\"" HOUR_BEFORE "\","
	    "\"reason\":\"Other\",\"message\":\"ok\"}]" },
	{ "message-only",
	    "[{\"type\":\"Ready\",\"status\":\"True\","
	    "\"lastTransitionTime\":\"" HOUR_BEFORE "\","
	    "\"reason\":\"Done\",\"message\":\"ok\"}]",
	    { "Ready", "True", "Done", "fine", 0, NULL }, true,
	    "[{\"type\":\"Ready\",\"status\":\"True\","
	    "\"lastTransitionTime\":\"" HOUR_BEFORE "\","
	    "\"reason\":\"Done\",\"message\":\"fine\"}]" },
	{ "message-cleared",
	    "[{\"type\":\"Ready\",\"status\":\"True\","
	    "\"lastTransitionTime\":\"" HOUR_BEFORE "\","
	    "\"reason\":\"Done\",\"message\":\"ok\"}]",
	    { "Ready", "True", "Done", NULL, 0, NULL }, true,
	    "[{\"type\":\"Ready\",\"status\":\"True\","
	    "\"lastTransitionTime\":\"" HOUR_BEFORE "\","
	    "\"reason\":\"Done\",\"message\":\"\"}]" },
	{ "observed-generation-only",
	    "[{\"type\":\"Ready\",\"status\":\"True\",\"observedGeneration\":"
	    "1,"
	    "\"lastTransitionTime\":\"" HOUR_BEFORE "\","
	    "\"reason\":\"Done\",\"message\":\"ok\"}]",
	    { "Ready", "True", "Done", "ok", 2, NULL }, true,
	    "[{\"type\":\"Ready\",\"status\":\"True\",\"observedGeneration\":"
	    "2,"
	    "\"lastTransitionTime\":\"" HOUR_BEFORE "\","
	    "\"reason\":\"Done\",\"message\":\"ok\"}]" },
	{ "observed-generation-to-zero-drops-field",
	    "[{\"type\":\"Ready\",\"status\":\"True\",\"observedGeneration\":"
	    "1,"
	    "\"lastTransitionTime\":\"" HOUR_BEFORE "\","
	    "\"reason\":\"Done\",\"message\":\"ok\"}]",
	    { "Ready", "True", "Done", "ok", 0, NULL }, true,
	    "[{\"type\":\"Ready\",\"status\":\"True\","
	    "\"lastTransitionTime\":\"" HOUR_BEFORE "\","
	    "\"reason\":\"Done\",\"message\":\"ok\"}]" },
	{ "missing-fields-compare-as-empty",
	    "[{\"type\":\"Ready\",\"status\":\"True\"}]",
	    { "Ready", "True", NULL, "", 0, NULL }, false,
	    "[{\"type\":\"Ready\",\"status\":\"True\"}]" },
	{ "only-first-of-a-type",
	    "[{\"type\":\"Ready\",\"status\":\"False\"},"
	    "{\"type\":\"Ready\",\"status\":\"False\"}]",
	    { "Ready", "True", "R", "M", 0, HOUR_AFTER }, true,
	    "[{\"type\":\"Ready\",\"status\":\"True\","
	    "\"lastTransitionTime\":\"" HOUR_AFTER "\","
	    "\"reason\":\"R\",\"message\":\"M\"},"
	    "{\"type\":\"Ready\",\"status\":\"False\"}]" },
	{ "other-fields-kept",
	    "[{\"type\":\"Ready\",\"status\":\"True\",\"x\":1}]",
	    { "Ready", "False", NULL, NULL, 0, NULL }, true,
	    "[{\"type\":\"Ready\",\"status\":\"False\",\"x\":1,"
	    "\"lastTransitionTime\":\"" NOW_S "\"}]" },
};

static void
test_meta_condition_set_table(void **state)
{
	(void) state;
	for (size_t i = 0; i < sizeof cond_cases / sizeof cond_cases[0]; i++) {
		const struct cond_case *tc = &cond_cases[i];
		print_message("case %s\n", tc->name);
		json_t *obj = json_pack(
		    "{s:{s:o}}", "status", "conditions", js(tc->before));
		bool changed = !tc->changed;
		assert_int_equal(
		    mcf_meta_condition_set(obj, &tc->set, NOW, &changed), 0);
		if (changed != tc->changed)
			fail_msg("case %s: changed %d", tc->name, changed);
		assert_json(json_object_get(
		                json_object_get(obj, "status"), "conditions"),
		    tc->after);
		/* Setting the same condition again never changes it. */
		assert_int_equal(
		    mcf_meta_condition_set(obj, &tc->set, NOW, &changed), 0);
		assert_false(changed);
		json_decref(obj);
	}
}

static void
test_meta_condition_set_creates_status(void **state)
{
	(void) state;
	mcf_meta_condition c   = { "Ready", "True", "Done", "ok", 7, NULL };
	json_t            *obj = js("{\"metadata\":{\"name\":\"a\"}}");
	assert_int_equal(mcf_meta_condition_set(obj, &c, NOW, NULL), 0);
	assert_json(obj,
	    "{\"metadata\":{\"name\":\"a\"},\"status\":{\"conditions\":["
	    "{\"type\":\"Ready\",\"status\":\"True\",\"observedGeneration\":7,"
	    "\"lastTransitionTime\":\"" NOW_S "\","
	    "\"reason\":\"Done\",\"message\":\"ok\"}]}}");
	json_decref(obj);

	/* null status and null conditions read as empty, as in Go. */
	obj = js("{\"status\":null}");
	assert_int_equal(mcf_meta_condition_set(obj, &c, NOW, NULL), 0);
	assert_true(mcf_meta_condition_is_true(obj, "Ready"));
	json_decref(obj);
	obj = js("{\"status\":{\"conditions\":null}}");
	assert_int_equal(mcf_meta_condition_set(obj, &c, NOW, NULL), 0);
	assert_true(mcf_meta_condition_is_true(obj, "Ready"));
	json_decref(obj);

	/* status present without conditions. */
	obj = js("{\"status\":{\"phase\":\"x\"}}");
	assert_int_equal(mcf_meta_condition_set(obj, &c, NOW, NULL), 0);
	assert_true(mcf_meta_condition_is_true(obj, "Ready"));
	assert_string_equal(json_string_value(json_object_get(
	                        json_object_get(obj, "status"), "phase")),
	    "x");
	json_decref(obj);
}

static void
test_meta_condition_set_errors(void **state)
{
	(void) state;
	static const char *const bad[] = {
		"{\"status\":[]}",
		"{\"status\":{\"conditions\":{}}}",
		"{\"status\":{\"conditions\":[\"Ready\"]}}",
		"[]",
	};
	mcf_meta_condition ok = { "Ready", "True", "R", "M", 0, NULL };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		json_t *obj     = js(bad[i]);
		json_t *copy    = json_deep_copy(obj);
		bool    changed = true;
		assert_int_equal(
		    mcf_meta_condition_set(obj, &ok, NOW, &changed),
		    MCF_EINVAL);
		assert_false(changed);
		assert_true(json_equal(obj, copy));
		json_decref(obj);
		json_decref(copy);
	}

	json_t *obj  = js("{\"status\":{\"conditions\":[{\"type\":\"Ready\","
	                   "\"status\":\"False\"}]}}");
	json_t *copy = json_deep_copy(obj);
	mcf_meta_condition c[] = {
		{ NULL, "True", "R", "M", 0, NULL },
		{ "", "True", "R", "M", 0, NULL },
		{ "Ready", NULL, "R", "M", 0, NULL },
		/* Not UTF-8: nothing may be written, not even the status. */
		{ "Ready", "True", "R", "bad \xff", 0, NULL },
		{ "Ready", "True", "R", "M", 0, "\xc3" },
	};
	for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
		assert_int_equal(
		    mcf_meta_condition_set(obj, &c[i], NOW, NULL), MCF_EINVAL);
		assert_true(json_equal(obj, copy));
	}
	assert_int_equal(
	    mcf_meta_condition_set(obj, NULL, NOW, NULL), MCF_EINVAL);
	assert_int_equal(
	    mcf_meta_condition_set(NULL, &ok, NOW, NULL), MCF_EINVAL);
	json_decref(obj);
	json_decref(copy);
}

/* RemoveStatusCondition (apimachinery's present, not-present and
 * empty_conditions cases, plus duplicates), FindStatusCondition and
 * IsStatusCondition{True,False,PresentAndEqual}. */
static void
test_meta_condition_find_remove_is(void **state)
{
	(void) state;
	static const struct {
		const char *before;
		const char *type;
		bool        removed;
		const char *after;
	} rm[] = {
		{ "[{\"type\":\"first\"},{\"type\":\"second\"},"
		  "{\"type\":\"third\"}]",
		    "second", true,
		    "[{\"type\":\"first\"},{\"type\":\"third\"}]" },
		{ "[{\"type\":\"first\"},{\"type\":\"second\"},"
		  "{\"type\":\"third\"}]",
		    "fourth", false,
		    "[{\"type\":\"first\"},{\"type\":\"second\"},"
		    "{\"type\":\"third\"}]" },
		{ "[]", "Foo", false, "[]" },
		{ "[{\"type\":\"a\"},{\"type\":\"b\"},{\"type\":\"a\"}]", "a",
		    true, "[{\"type\":\"b\"}]" },
	};
	for (size_t i = 0; i < sizeof rm / sizeof rm[0]; i++) {
		json_t *obj = json_pack(
		    "{s:{s:o}}", "status", "conditions", js(rm[i].before));
		assert_int_equal(
		    mcf_meta_condition_remove(obj, rm[i].type), rm[i].removed);
		assert_json(json_object_get(
		                json_object_get(obj, "status"), "conditions"),
		    rm[i].after);
		json_decref(obj);
	}
	json_t *none = js("{\"metadata\":{}}");
	assert_false(mcf_meta_condition_remove(none, "Ready"));
	assert_null(mcf_meta_condition_find(none, "Ready"));
	assert_false(mcf_meta_condition_is_true(none, "Ready"));
	assert_false(mcf_meta_condition_is_false(none, "Ready"));
	json_decref(none);

	json_t *obj = js("{\"status\":{\"conditions\":["
	                 "{\"type\":\"first\",\"status\":\"Unknown\"},"
	                 "{\"type\":\"second\",\"status\":\"True\"},"
	                 "{\"type\":\"third\",\"status\":\"False\"},"
	                 "{\"type\":\"second\",\"status\":\"False\"},"
	                 "{\"type\":\"nostatus\"}]}}");
	json_t *f   = mcf_meta_condition_find(obj, "second");
	assert_non_null(f);
	assert_string_equal(
	    json_string_value(json_object_get(f, "status")), "True");
	assert_null(mcf_meta_condition_find(obj, "fourth"));
	/* doesnt-match-true, does-match-true, does-match-false. */
	assert_false(mcf_meta_condition_is(obj, "first", "True"));
	assert_true(mcf_meta_condition_is(obj, "first", "Unknown"));
	assert_true(mcf_meta_condition_is_true(obj, "second"));
	assert_false(mcf_meta_condition_is_false(obj, "second"));
	assert_true(mcf_meta_condition_is_false(obj, "third"));
	assert_false(mcf_meta_condition_is_true(obj, "first"));
	assert_false(mcf_meta_condition_is_false(obj, "first"));
	assert_false(mcf_meta_condition_is_true(obj, "nostatus"));
	assert_false(mcf_meta_condition_is_true(obj, "fourth"));
	json_decref(obj);
}

/* ---- finalizers ------------------------------------------------------- */

static void
test_meta_finalizers(void **state)
{
	(void) state;
	const char *fin = "example.mcfleet.io/cleanup";
	bool        changed;
	json_t     *obj = js("{}");

	assert_false(mcf_meta_finalizer_has(obj, fin));
	assert_int_equal(mcf_meta_finalizer_add(obj, fin, &changed), 0);
	assert_true(changed);
	assert_json(obj,
	    "{\"metadata\":{\"finalizers\":"
	    "[\"example.mcfleet.io/cleanup\"]}}");
	assert_true(mcf_meta_finalizer_has(obj, fin));
	assert_int_equal(mcf_meta_finalizer_add(obj, fin, &changed), 0);
	assert_false(changed);
	assert_int_equal(mcf_meta_finalizer_add(obj, "other", NULL), 0);
	assert_json(json_object_get(obj, "metadata"),
	    "{\"finalizers\":[\"example.mcfleet.io/cleanup\",\"other\"]}");
	json_decref(obj);

	/* Duplicates (as other writers may leave them) all go at once. */
	obj = js("{\"metadata\":{\"name\":\"a\",\"finalizers\":"
	         "[\"f\",\"g\",\"f\",\"h\",\"f\"]}}");
	assert_int_equal(mcf_meta_finalizer_remove(obj, "f", &changed), 0);
	assert_true(changed);
	assert_json(obj,
	    "{\"metadata\":{\"name\":\"a\","
	    "\"finalizers\":[\"g\",\"h\"]}}");
	assert_false(mcf_meta_finalizer_has(obj, "f"));
	assert_int_equal(mcf_meta_finalizer_remove(obj, "f", &changed), 0);
	assert_false(changed);
	assert_int_equal(mcf_meta_finalizer_remove(obj, "g", NULL), 0);
	assert_int_equal(mcf_meta_finalizer_remove(obj, "h", &changed), 0);
	assert_true(changed);
	assert_json(obj, "{\"metadata\":{\"name\":\"a\",\"finalizers\":[]}}");
	json_decref(obj);

	/* null finalizers: an empty list. */
	obj = js("{\"metadata\":{\"finalizers\":null}}");
	assert_false(mcf_meta_finalizer_has(obj, "f"));
	assert_int_equal(mcf_meta_finalizer_remove(obj, "f", &changed), 0);
	assert_false(changed);
	assert_int_equal(mcf_meta_finalizer_add(obj, "f", &changed), 0);
	assert_true(changed);
	assert_json(obj, "{\"metadata\":{\"finalizers\":[\"f\"]}}");
	json_decref(obj);

	/* Removing from an object without finalizers changes nothing. */
	obj = js("{\"metadata\":{}}");
	assert_int_equal(mcf_meta_finalizer_remove(obj, "f", &changed), 0);
	assert_false(changed);
	assert_json(obj, "{\"metadata\":{}}");
	json_decref(obj);

	/* Wrong types and bad names. */
	obj = js("{\"metadata\":{\"finalizers\":\"f\"}}");
	assert_int_equal(
	    mcf_meta_finalizer_add(obj, "f", &changed), MCF_EINVAL);
	assert_int_equal(
	    mcf_meta_finalizer_remove(obj, "f", &changed), MCF_EINVAL);
	assert_false(mcf_meta_finalizer_has(obj, "f"));
	json_decref(obj);
	obj = js("{\"metadata\":[]}");
	assert_int_equal(mcf_meta_finalizer_add(obj, "f", NULL), MCF_EINVAL);
	json_decref(obj);
	obj = js("{}");
	assert_int_equal(mcf_meta_finalizer_add(obj, "", NULL), MCF_EINVAL);
	assert_int_equal(mcf_meta_finalizer_add(obj, NULL, NULL), MCF_EINVAL);
	assert_int_equal(
	    mcf_meta_finalizer_add(obj, "bad\xff", NULL), MCF_EINVAL);
	assert_json(obj, "{}");
	json_decref(obj);
}

/* ---- owner references ------------------------------------------------- */

#define OWNER                                                                 \
	"{\"apiVersion\":\"example.mcfleet.io/v1alpha1\","                    \
	"\"kind\":\"MyResource\",\"metadata\":{\"name\":\"example\","         \
	"\"namespace\":\"ns1\",\"uid\":\"uid-1\"}}"
#define OWNER_REF                                                             \
	"{\"apiVersion\":\"example.mcfleet.io/v1alpha1\","                    \
	"\"kind\":\"MyResource\",\"name\":\"example\",\"uid\":\"uid-1\","     \
	"\"controller\":true,\"blockOwnerDeletion\":true}"

static void
test_meta_owner_ref_new(void **state)
{
	(void) state;
	json_t *owner = js(OWNER);
	json_t *ref   = NULL;
	assert_int_equal(mcf_meta_owner_ref_new(owner, &ref), 0);
	assert_json(ref, OWNER_REF);
	json_decref(ref);
	json_decref(owner);

	static const char *const bad[] = {
		"{\"kind\":\"K\",\"metadata\":{\"name\":\"n\",\"uid\":\"u\"}}",
		"{\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"n\","
		"\"uid\":\"u\"}}",
		"{\"apiVersion\":\"v1\",\"kind\":\"K\",\"metadata\":"
		"{\"uid\":\"u\"}}",
		"{\"apiVersion\":\"v1\",\"kind\":\"K\",\"metadata\":"
		"{\"name\":\"n\"}}",
		"{\"apiVersion\":\"v1\",\"kind\":\"K\",\"metadata\":"
		"{\"name\":\"n\",\"uid\":\"\"}}",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		owner = js(bad[i]);
		ref   = NULL;
		assert_int_equal(
		    mcf_meta_owner_ref_new(owner, &ref), MCF_EINVAL);
		assert_null(ref);
		json_decref(owner);
	}
}

static void
test_meta_controller_set(void **state)
{
	(void) state;
	json_t     *owner = js(OWNER);
	bool        changed;
	mcf_errinfo ei;

	/* Appended after a plain (non-controller) owner of another kind. */
	json_t *obj
	    = js("{\"metadata\":{\"name\":\"cm\",\"namespace\":\"ns1\","
	         "\"ownerReferences\":[{\"apiVersion\":\"v1\","
	         "\"kind\":\"Other\",\"name\":\"o\",\"uid\":\"u0\"}]}}");
	assert_int_equal(
	    mcf_meta_controller_set(obj, owner, &changed, &ei), 0);
	assert_true(changed);
	assert_json(json_object_get(
	                json_object_get(obj, "metadata"), "ownerReferences"),
	    "[{\"apiVersion\":\"v1\",\"kind\":\"Other\",\"name\":\"o\","
	    "\"uid\":\"u0\"}," OWNER_REF "]");
	assert_true(mcf_meta_is_controlled_by(obj, owner));
	assert_json(mcf_meta_controller_of(obj), OWNER_REF);

	/* Again: nothing to do. */
	assert_int_equal(
	    mcf_meta_controller_set(obj, owner, &changed, &ei), 0);
	assert_false(changed);

	/* The owner recreated (same group, kind, name; new uid and
	 * version): replaced in place, not AlreadyOwned. */
	json_t *owner2 = js("{\"apiVersion\":\"example.mcfleet.io/v1\","
	                    "\"kind\":\"MyResource\",\"metadata\":{"
	                    "\"name\":\"example\",\"namespace\":\"ns1\","
	                    "\"uid\":\"uid-2\"}}");
	assert_int_equal(
	    mcf_meta_controller_set(obj, owner2, &changed, &ei), 0);
	assert_true(changed);
	json_t *refs = json_object_get(
	    json_object_get(obj, "metadata"), "ownerReferences");
	assert_int_equal(json_array_size(refs), 2);
	assert_string_equal(
	    json_string_value(json_object_get(json_array_get(refs, 1), "uid")),
	    "uid-2");
	assert_false(mcf_meta_is_controlled_by(obj, owner));
	assert_true(mcf_meta_is_controlled_by(obj, owner2));
	json_decref(owner2);

	/* AlreadyOwned: another controller; the object is left alone. */
	json_t *other = js("{\"apiVersion\":\"example.mcfleet.io/v1alpha1\","
	                   "\"kind\":\"MyResource\",\"metadata\":{"
	                   "\"name\":\"second\",\"namespace\":\"ns1\","
	                   "\"uid\":\"uid-3\"}}");
	json_t *copy  = json_deep_copy(obj);
	changed       = true;
	assert_int_equal(
	    mcf_meta_controller_set(obj, other, &changed, &ei), MCF_EEXIST);
	assert_int_equal(ei.code, MCF_EEXIST);
	assert_false(changed);
	assert_non_null(strstr(ei.msg, "already owned"));
	assert_non_null(strstr(ei.msg, "ns1/cm"));
	assert_true(json_equal(obj, copy));
	json_decref(copy);
	json_decref(obj);

	/* A non-controller reference to the same owner is upgraded. */
	obj = js("{\"metadata\":{\"name\":\"cm\",\"namespace\":\"ns1\","
	         "\"ownerReferences\":[{\"apiVersion\":"
	         "\"example.mcfleet.io/v1alpha1\",\"kind\":\"MyResource\","
	         "\"name\":\"example\",\"uid\":\"uid-1\"}]}}");
	assert_null(mcf_meta_controller_of(obj));
	assert_false(mcf_meta_is_controlled_by(obj, owner));
	assert_int_equal(
	    mcf_meta_controller_set(obj, owner, &changed, &ei), 0);
	assert_true(changed);
	assert_json(json_object_get(
	                json_object_get(obj, "metadata"), "ownerReferences"),
	    "[" OWNER_REF "]");
	json_decref(obj);

	/* Cross-namespace, and a namespaced owner of a cluster-scoped
	 * object. */
	obj = js("{\"metadata\":{\"name\":\"cm\",\"namespace\":\"ns2\"}}");
	assert_int_equal(
	    mcf_meta_controller_set(obj, owner, &changed, &ei), MCF_EINVAL);
	assert_non_null(strstr(ei.msg, "cross-namespace"));
	assert_json(
	    obj, "{\"metadata\":{\"name\":\"cm\",\"namespace\":\"ns2\"}}");
	json_decref(obj);
	obj = js("{\"metadata\":{\"name\":\"ns\"}}");
	assert_int_equal(
	    mcf_meta_controller_set(obj, owner, NULL, &ei), MCF_EINVAL);
	assert_non_null(strstr(ei.msg, "cluster-scoped"));
	json_decref(obj);

	/* A cluster-scoped owner may own a namespaced object. */
	json_t *cowner = js("{\"apiVersion\":\"resourcemanager.miloapis.com/"
	                    "v1alpha1\",\"kind\":\"Project\",\"metadata\":{"
	                    "\"name\":\"p\",\"uid\":\"uid-p\"}}");
	obj            = js("{}");
	assert_int_equal(mcf_meta_controller_set(obj, cowner, NULL, NULL), 0);
	assert_true(mcf_meta_is_controlled_by(obj, cowner));
	json_decref(obj);

	/* Malformed input. */
	obj = js("{\"metadata\":{\"ownerReferences\":{}}}");
	assert_int_equal(
	    mcf_meta_controller_set(obj, cowner, NULL, &ei), MCF_EINVAL);
	json_decref(obj);
	obj          = js("{}");
	json_t *noid = js("{\"apiVersion\":\"v1\",\"kind\":\"K\","
	                  "\"metadata\":{\"name\":\"n\"}}");
	assert_int_equal(
	    mcf_meta_controller_set(obj, noid, NULL, &ei), MCF_EINVAL);
	assert_false(mcf_meta_is_controlled_by(obj, noid));
	json_decref(noid);
	json_decref(obj);
	json_decref(cowner);
	json_decref(other);
	json_decref(owner);
}

/* ---- accessors and keys ----------------------------------------------- */

static void
test_meta_accessors(void **state)
{
	(void) state;
	json_t *obj = js("{\"metadata\":{\"name\":\"a\",\"namespace\":\"ns\","
	                 "\"uid\":\"u\",\"resourceVersion\":\"12\","
	                 "\"generation\":3,\"labels\":{\"app\":\"x\"},"
	                 "\"deletionTimestamp\":\"" NOW_S "\"}}");
	assert_string_equal(mcf_meta_name(obj), "a");
	assert_string_equal(mcf_meta_namespace(obj), "ns");
	assert_string_equal(mcf_meta_uid(obj), "u");
	assert_string_equal(mcf_meta_resource_version(obj), "12");
	assert_int_equal(mcf_meta_generation(obj), 3);
	assert_true(mcf_meta_is_deleting(obj));
	assert_json(mcf_meta_labels(obj), "{\"app\":\"x\"}");
	assert_string_equal(mcf_meta_label(obj, "app"), "x");
	assert_null(mcf_meta_label(obj, "other"));
	json_decref(obj);

	obj = js("{\"metadata\":{\"name\":\"a\",\"namespace\":\"\","
	         "\"deletionTimestamp\":null,\"generation\":\"3\"}}");
	assert_null(mcf_meta_namespace(obj));
	assert_null(mcf_meta_uid(obj));
	assert_null(mcf_meta_resource_version(obj));
	assert_int_equal(mcf_meta_generation(obj), 0);
	assert_false(mcf_meta_is_deleting(obj));
	assert_null(mcf_meta_labels(obj));
	assert_null(mcf_meta_label(obj, "app"));
	json_decref(obj);

	/* Not even an object. */
	obj = js("[1]");
	assert_null(mcf_meta_name(obj));
	assert_false(mcf_meta_is_deleting(obj));
	json_decref(obj);
	assert_null(mcf_meta_name(NULL));
}

static void
test_meta_key(void **state)
{
	(void) state;
	char   *k = NULL;
	json_t *obj
	    = js("{\"metadata\":{\"name\":\"a\",\"namespace\":\"ns\"}}");
	assert_int_equal(mcf_meta_key(obj, &k), 0);
	assert_string_equal(k, "ns/a");
	free(k);
	json_decref(obj);
	obj = js("{\"metadata\":{\"name\":\"node1\"}}");
	assert_int_equal(mcf_meta_key(obj, &k), 0);
	assert_string_equal(k, "node1");
	free(k);
	json_decref(obj);
	obj = js("{\"metadata\":{\"namespace\":\"ns\"}}");
	k   = NULL;
	assert_int_equal(mcf_meta_key(obj, &k), MCF_EINVAL);
	assert_null(k);
	json_decref(obj);

	k = mcf_meta_key_join(NULL, "x");
	assert_string_equal(k, "x");
	free(k);
	k = mcf_meta_key_join("", "x");
	assert_string_equal(k, "x");
	free(k);
	k = mcf_meta_key_join("n", "x");
	assert_string_equal(k, "n/x");
	free(k);

	char *ns = NULL, *name = NULL;
	assert_int_equal(mcf_meta_key_split("ns/a", &ns, &name), 0);
	assert_string_equal(ns, "ns");
	assert_string_equal(name, "a");
	free(ns);
	free(name);
	assert_int_equal(mcf_meta_key_split("node1", &ns, &name), 0);
	assert_null(ns);
	assert_string_equal(name, "node1");
	free(name);

	static const char *const bad[]
	    = { "a/b/c", "/x", "x/", "", "/", "//", "a//b" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		ns   = (char *) "untouched";
		name = (char *) "untouched";
		assert_int_equal(
		    mcf_meta_key_split(bad[i], &ns, &name), MCF_EINVAL);
		assert_string_equal(ns, "untouched");
		assert_string_equal(name, "untouched");
	}
	assert_int_equal(mcf_meta_key_split(NULL, &ns, &name), MCF_EINVAL);
}

/* ---- events ----------------------------------------------------------- */

static const mcf_meta_recorder rec = { "mcfleet-worker", "worker-0" };

/* The name is "<prefix>.<16 lowercase hex digits>". */
static void
assert_event_name(const char *name, const char *prefix)
{
	size_t n = strlen(prefix);
	assert_int_equal(strlen(name), n + 17);
	assert_memory_equal(name, prefix, n);
	assert_int_equal(name[n], '.');
	for (size_t i = n + 1; i < n + 17; i++)
		assert_non_null(strchr("0123456789abcdef", name[i]));
}

static void
test_meta_event_build(void **state)
{
	(void) state;
	json_t *obj = js("{\"apiVersion\":\"example.mcfleet.io/v1alpha1\","
	                 "\"kind\":\"MyResource\",\"metadata\":{"
	                 "\"name\":\"example\",\"namespace\":\"ns1\","
	                 "\"uid\":\"uid-1\",\"resourceVersion\":\"42\"}}");
	json_t *ev  = NULL;
	assert_int_equal(mcf_meta_event_build(obj, &rec, "Normal", "Synced",
	                     "ConfigMap cm created", NOW, &ev),
	    0);
	const char *name = mcf_meta_name(ev);
	assert_non_null(name);
	assert_event_name(name, "example");
	char *want = mcf_asprintf(
	    "{\"kind\":\"Event\",\"apiVersion\":\"v1\","
	    "\"metadata\":{\"name\":\"%s\",\"namespace\":\"ns1\"},"
	    "\"involvedObject\":{\"kind\":\"MyResource\","
	    "\"namespace\":\"ns1\",\"name\":\"example\",\"uid\":\"uid-1\","
	    "\"apiVersion\":\"example.mcfleet.io/v1alpha1\","
	    "\"resourceVersion\":\"42\"},"
	    "\"reason\":\"Synced\",\"message\":\"ConfigMap cm created\","
	    "\"source\":{\"component\":\"mcfleet-worker\","
	    "\"host\":\"worker-0\"},"
	    "\"firstTimestamp\":\"" NOW_S "\",\"lastTimestamp\":\"" NOW_S "\","
	    "\"count\":1,\"type\":\"Normal\","
	    "\"reportingComponent\":\"mcfleet-worker\","
	    "\"reportingInstance\":\"worker-0\"}",
	    name);
	assert_json(ev, want);
	free(want);

	/* Every Event gets its own name. */
	json_t *ev2 = NULL;
	assert_int_equal(mcf_meta_event_build(
	                     obj, &rec, "Warning", "Failed", "x", NOW, &ev2),
	    0);
	assert_string_not_equal(mcf_meta_name(ev2), name);
	json_decref(ev2);
	json_decref(ev);

	/* Bad arguments. */
	static const char *const types[] = { "normal", "Error", "", NULL };
	for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
		ev = NULL;
		assert_int_equal(mcf_meta_event_build(
		                     obj, &rec, types[i], "R", "m", NOW, &ev),
		    MCF_EINVAL);
		assert_null(ev);
	}
	mcf_meta_recorder norec = { NULL, NULL };
	assert_int_equal(
	    mcf_meta_event_build(obj, &norec, "Normal", "R", "m", NOW, &ev),
	    MCF_EINVAL);
	assert_int_equal(
	    mcf_meta_event_build(obj, &rec, "Normal", "", "m", NOW, &ev),
	    MCF_EINVAL);
	assert_int_equal(mcf_meta_event_build(
	                     obj, &rec, "Normal", "R", "bad \xff", NOW, &ev),
	    MCF_EINVAL);
	assert_null(ev);
	json_decref(obj);
	obj = js("{\"kind\":\"K\",\"metadata\":{\"name\":\"n\"}}");
	assert_int_equal(
	    mcf_meta_event_build(obj, &rec, "Normal", "R", "m", NOW, &ev),
	    MCF_EINVAL);
	json_decref(obj);

	/* Cluster-scoped: the Event goes to "default"; no uid, no
	 * resourceVersion, no instance: left out. */
	obj = js("{\"apiVersion\":\"v1\",\"kind\":\"Namespace\","
	         "\"metadata\":{\"name\":\"ns1\"}}");
	mcf_meta_recorder rec1 = { "c", NULL };
	assert_int_equal(
	    mcf_meta_event_build(obj, &rec1, "Warning", "R", NULL, NOW, &ev),
	    0);
	assert_string_equal(mcf_meta_namespace(ev), "default");
	assert_json(json_object_get(ev, "involvedObject"),
	    "{\"kind\":\"Namespace\",\"name\":\"ns1\",\"apiVersion\":\"v1\"}");
	assert_json(json_object_get(ev, "source"), "{\"component\":\"c\"}");
	assert_null(json_object_get(ev, "reportingInstance"));
	assert_string_equal(
	    json_string_value(json_object_get(ev, "message")), "");
	json_decref(ev);
	json_decref(obj);

	/* A 253-byte object name: cut so the Event name stays 253, and not
	 * left ending in '-' or '.'. */
	char long_name[254];
	memset(long_name, 'a', 253);
	long_name[253] = '\0';
	long_name[235] = '-';
	long_name[234] = '.';
	obj = json_pack("{s:s,s:s,s:{s:s}}", "apiVersion", "v1", "kind",
	    "ConfigMap", "metadata", "name", long_name);
	assert_int_equal(
	    mcf_meta_event_build(obj, &rec, "Normal", "R", "m", NOW, &ev), 0);
	long_name[234] = '\0';
	assert_event_name(mcf_meta_name(ev), long_name);
	assert_true(strlen(mcf_meta_name(ev)) <= 253);
	json_decref(ev);
	json_decref(obj);
}

/* The message of an Event built from `msg`. */
static char *
event_message(const char *msg)
{
	json_t *obj
	    = js("{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\","
	         "\"metadata\":{\"name\":\"cm\",\"namespace\":\"n\"}}");
	json_t *ev = NULL;
	assert_int_equal(
	    mcf_meta_event_build(obj, &rec, "Normal", "R", msg, NOW, &ev), 0);
	char *m
	    = mcf_strdup(json_string_value(json_object_get(ev, "message")));
	json_decref(ev);
	json_decref(obj);
	return m;
}

static void
test_meta_event_truncation(void **state)
{
	(void) state;
	char   buf[2100];
	char  *m;
	size_t max = MCF_META_EVENT_MESSAGE_MAX;
	assert_int_equal(max, 1024);

	/* Exactly the limit: kept; one more: cut. */
	memset(buf, 'a', max);
	buf[max] = '\0';
	m        = event_message(buf);
	assert_int_equal(strlen(m), max);
	free(m);
	memset(buf, 'a', 2000);
	buf[2000] = '\0';
	m         = event_message(buf);
	assert_int_equal(strlen(m), max);
	free(m);

	/* A character across the limit goes whole: 2-, 3- and 4-byte
	 * sequences starting at each offset that would split them. */
	static const char *const chars[]
	    = { "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80" };
	for (size_t c = 0; c < 3; c++) {
		size_t clen = strlen(chars[c]);
		for (size_t back = 1; back < clen; back++) {
			size_t start = max - back; /* the char straddles */
			memset(buf, 'a', start);
			memcpy(buf + start, chars[c], clen);
			memset(buf + start + clen, 'b', 100);
			buf[start + clen + 100] = '\0';
			m                       = event_message(buf);
			assert_int_equal(strlen(m), start);
			free(m);
		}
		/* Ending exactly at the limit: kept. */
		size_t start = max - clen;
		memset(buf, 'a', start);
		memcpy(buf + start, chars[c], clen);
		memset(buf + max, 'b', 10);
		buf[max + 10] = '\0';
		m             = event_message(buf);
		assert_int_equal(strlen(m), max);
		assert_memory_equal(m + start, chars[c], clen);
		free(m);
	}

	/* All multibyte: never more than the limit, always valid (jansson
	 * accepted it). */
	for (size_t i = 0; i + 3 <= 2000; i += 3)
		memcpy(buf + i, "\xe2\x82\xac", 3);
	buf[1998] = '\0';
	m         = event_message(buf);
	assert_int_equal(strlen(m), 1023);
	free(m);
}

/* ---- events against kubesim ------------------------------------------- */

static mcf_kc *
client_for(const char *url)
{
	mcf_kubeconfig kc = { 0 };
	kc.server         = (char *) url;
	kc.namespace      = "default";
	mcf_kc     *c     = NULL;
	mcf_errinfo ei;
	int         rc
	    = mcf_kc_create(&kc, "meta_test/0.1.0 (test; 1)", NULL, &c, &ei);
	if (rc != 0)
		print_message("mcf_kc_create: %s\n", ei.msg);
	assert_int_equal(rc, 0);
	return c;
}

static void
test_meta_event_emit_kubesim(void **state)
{
	(void) state;
	ks_spawn sim;
	assert_int_equal(ks_spawn_start(&sim, NULL, scale), 0);
	mcf_kc       *c = client_for(sim.url);
	mcf_kc_status st;

	/* A real object to be about, with a uid and resourceVersion. */
	mcf_kc_ref cm_ref = { NULL, "v1", "configmaps", "default", NULL };
	json_t    *cm     = js("{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\","
	                              "\"metadata\":{\"name\":\"meta-cm\"},"
	                              "\"data\":{\"k\":\"v\"}}");
	json_t    *made   = NULL;
	assert_int_equal(mcf_kc_create_object(c, &cm_ref, cm, &made, &st), 0);
	json_decref(cm);
	/* The server's answer may lack kind/apiVersion; the Event needs
	 * them. */
	json_object_set_new(made, "apiVersion", json_string("v1"));
	json_object_set_new(made, "kind", json_string("ConfigMap"));

	assert_int_equal(
	    mcf_meta_event_emit(c, &rec, made, "Warning", "SyncFailed",
	        "could not sync %s: %d", "meta-cm", 42),
	    0);

	/* Read it back with the field selector kubectl describe uses. */
	char *sel = mcf_asprintf("involvedObject.uid=%s", mcf_meta_uid(made));
	mcf_kc_ref       ev_ref = { NULL, "v1", "events", "default", NULL };
	mcf_kc_list_opts lo     = { 0 };
	lo.field_selector       = sel;
	json_t *list            = NULL;
	assert_int_equal(mcf_kc_list(c, &ev_ref, &lo, &list, &st), 0);
	json_t *items = json_object_get(list, "items");
	assert_int_equal(json_array_size(items), 1);
	json_t *ev = json_array_get(items, 0);
	assert_event_name(mcf_meta_name(ev), "meta-cm");
	assert_non_null(mcf_meta_uid(ev));
	assert_string_equal(json_string_value(json_object_get(ev, "message")),
	    "could not sync meta-cm: 42");
	assert_string_equal(
	    json_string_value(json_object_get(ev, "type")), "Warning");
	assert_string_equal(
	    json_string_value(json_object_get(ev, "reason")), "SyncFailed");
	assert_int_equal(json_integer_value(json_object_get(ev, "count")), 1);
	assert_string_equal(
	    json_string_value(json_object_get(ev, "reportingComponent")),
	    "mcfleet-worker");
	json_t *inv = json_object_get(ev, "involvedObject");
	assert_string_equal(
	    json_string_value(json_object_get(inv, "name")), "meta-cm");
	assert_string_equal(
	    json_string_value(json_object_get(inv, "kind")), "ConfigMap");
	assert_string_equal(json_string_value(json_object_get(inv, "uid")),
	    mcf_meta_uid(made));
	assert_string_equal(
	    json_string_value(json_object_get(inv, "resourceVersion")),
	    mcf_meta_resource_version(made));
	json_decref(list);
	free(sel);

	/* Failures come back as codes, never abort: a bad type, and an
	 * object in a namespace that does not exist. */
	assert_int_equal(
	    mcf_meta_event_emit(c, &rec, made, "Fatal", "R", "%s", "m"),
	    MCF_EINVAL);
	json_t *ghost = js("{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\","
	                   "\"metadata\":{\"name\":\"g\","
	                   "\"namespace\":\"no-such-ns\"}}");
	int     rc = mcf_meta_event_emit(c, &rec, ghost, "Normal", "R", "m");
	print_message("emit into a missing namespace: %s\n", mcf_strerror(rc));
	assert_int_not_equal(rc, 0);
	json_decref(ghost);

	/* A server that is gone: a transport error, returned. */
	assert_int_equal(ks_spawn_stop(&sim, scale), 0);
	rc = mcf_meta_event_emit(c, &rec, made, "Normal", "R", "m");
	print_message("emit to a stopped server: %s\n", mcf_strerror(rc));
	assert_int_not_equal(rc, 0);
	json_decref(made);
	mcf_kc_destroy(c);
}

int
main(void)
{
	const char *s = getenv("MCF_TEST_TIMEOUT_SCALE");
	if (s != NULL && atoi(s) > 0)
		scale = atoi(s);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	mcf_log_init("meta_test", MCF_LOG_WARN);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_meta_time_format),
		cmocka_unit_test(test_meta_condition_set_table),
		cmocka_unit_test(test_meta_condition_set_creates_status),
		cmocka_unit_test(test_meta_condition_set_errors),
		cmocka_unit_test(test_meta_condition_find_remove_is),
		cmocka_unit_test(test_meta_finalizers),
		cmocka_unit_test(test_meta_owner_ref_new),
		cmocka_unit_test(test_meta_controller_set),
		cmocka_unit_test(test_meta_accessors),
		cmocka_unit_test(test_meta_key),
		cmocka_unit_test(test_meta_event_build),
		cmocka_unit_test(test_meta_event_truncation),
		cmocka_unit_test(test_meta_event_emit_kubesim),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return rc;
}

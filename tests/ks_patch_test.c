/*
 * ks_patch_test.c — unit tests for kubesim's PATCH dialects
 * (tests/kubesim/patch.c): RFC 7386 merge patch, RFC 6902 JSON patch and
 * the strategic merge patch subset of KUBE_API.md §4.5.
 *
 * The RFC appendix examples are copied as tables.  Every case also checks
 * that neither input changed, since kubesim hands in its stored objects.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "alloc.h"
#include "patch.h"

typedef int (*patch_fn)(
    const json_t *, const json_t *, json_t **, char *, size_t);

static json_t *
J(const char *text)
{
	json_error_t e;
	json_t      *v = json_loads(text, JSON_DECODE_ANY, &e);
	if (v == NULL)
		fail_msg("bad test JSON %s: %s", text, e.text);
	return v;
}

static char *
dump(const json_t *v)
{
	return json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
}

/* Applies `patch` to `target` with `fn`, expects code `want_rc` and, on
 * success, exactly the JSON `want` (key order aside; list order counts).
 * Checks that the inputs are unchanged and that failure leaves *out
 * alone.  Returns the error text in `err`. */
static void
check_patch(patch_fn fn, const char *target, const char *patch, int want_rc,
    const char *want, char *err, size_t errlen)
{
	json_t *t      = J(target);
	json_t *p      = J(patch);
	json_t *t0     = json_deep_copy(t);
	json_t *p0     = json_deep_copy(p);
	json_t *out    = (json_t *) 0x1;
	char    e[512] = "";
	if (err == NULL) {
		err    = e;
		errlen = sizeof(e);
	}
	int rc = fn(t, p, &out, err, errlen);
	if (rc != want_rc)
		fail_msg("patch %s on %s: rc %d, want %d (%s)", patch, target,
		    rc, want_rc, err);
	if (rc == KS_PATCH_OK) {
		json_t *w = J(want);
		if (!json_equal(out, w)) {
			char *got = dump(out);
			fail_msg("patch %s on %s\n got: %s\nwant: %s", patch,
			    target, got, want);
		}
		/* The result must not share storage with the inputs. */
		if (json_is_object(out) || json_is_array(out))
			assert_int_equal(out->refcount, 1);
		json_decref(w);
		json_decref(out);
	} else {
		assert_ptr_equal(out, (json_t *) 0x1);
		assert_true(err[0] != '\0');
	}
	assert_true(json_equal(t, t0));
	assert_true(json_equal(p, p0));
	json_decref(t);
	json_decref(p);
	json_decref(t0);
	json_decref(p0);
}

static void
ok(patch_fn fn, const char *target, const char *patch, const char *want)
{
	check_patch(fn, target, patch, KS_PATCH_OK, want, NULL, 0);
}

static void
fails(patch_fn fn, const char *target, const char *patch, int want_rc)
{
	check_patch(fn, target, patch, want_rc, NULL, NULL, 0);
}

/* Like fails() and also compares the message. */
static void
fails_msg(patch_fn fn, const char *target, const char *patch, int want_rc,
    const char *want_err)
{
	char err[512];
	check_patch(fn, target, patch, want_rc, NULL, err, sizeof(err));
	assert_string_equal(err, want_err);
}

/* Order-sensitive comparison of one member, for list order checks. */
static void
ok_text(patch_fn fn, const char *target, const char *patch, const char *path1,
    const char *path2, const char *want)
{
	json_t *t   = J(target);
	json_t *p   = J(patch);
	json_t *out = NULL;
	char    err[256];
	int     rc = fn(t, p, &out, err, sizeof(err));
	if (rc != KS_PATCH_OK)
		fail_msg("patch %s: %s", patch, err);
	json_t *v = json_object_get(out, path1);
	if (path2 != NULL)
		v = json_object_get(v, path2);
	char *got = dump(v);
	if (strcmp(got, want) != 0)
		fail_msg("patch %s on %s\n got: %s\nwant: %s", patch, target,
		    got, want);
	free(got);
	json_decref(out);
	json_decref(t);
	json_decref(p);
}

/* ---- RFC 7386 ---------------------------------------------------------- */

static void
test_patch_merge_rfc7386_appendix_a(void **state)
{
	(void) state;
	static const char *const cases[][3] = {
		{ "{\"a\":\"b\"}", "{\"a\":\"c\"}", "{\"a\":\"c\"}" },
		{ "{\"a\":\"b\"}", "{\"b\":\"c\"}",
		    "{\"a\":\"b\",\"b\":\"c\"}" },
		{ "{\"a\":\"b\"}", "{\"a\":null}", "{}" },
		{ "{\"a\":\"b\",\"b\":\"c\"}", "{\"a\":null}",
		    "{\"b\":\"c\"}" },
		{ "{\"a\":[\"b\"]}", "{\"a\":\"c\"}", "{\"a\":\"c\"}" },
		{ "{\"a\":\"c\"}", "{\"a\":[\"b\"]}", "{\"a\":[\"b\"]}" },
		{ "{\"a\":{\"b\":\"c\"}}", "{\"a\":{\"b\":\"d\",\"c\":null}}",
		    "{\"a\":{\"b\":\"d\"}}" },
		{ "{\"a\":[{\"b\":\"c\"}]}", "{\"a\":[1]}", "{\"a\":[1]}" },
		{ "[\"a\",\"b\"]", "[\"c\",\"d\"]", "[\"c\",\"d\"]" },
		{ "{\"a\":\"b\"}", "[\"c\"]", "[\"c\"]" },
		{ "{\"a\":\"foo\"}", "null", "null" },
		{ "{\"a\":\"foo\"}", "\"bar\"", "\"bar\"" },
		{ "{\"e\":null}", "{\"a\":1}", "{\"e\":null,\"a\":1}" },
		{ "[1,2]", "{\"a\":\"b\",\"c\":null}", "{\"a\":\"b\"}" },
		{ "{}", "{\"a\":{\"bb\":{\"ccc\":null}}}",
		    "{\"a\":{\"bb\":{}}}" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		ok(ks_patch_merge, cases[i][0], cases[i][1], cases[i][2]);
}

static void
test_patch_merge_rfc7386_example(void **state)
{
	(void) state;
	/* RFC 7386 section 3. */
	ok(ks_patch_merge,
	    "{\"title\":\"Goodbye!\",\"author\":{\"givenName\":\"John\","
	    "\"familyName\":\"Doe\"},\"tags\":[\"example\",\"sample\"],"
	    "\"content\":\"This will be unchanged\"}",
	    "{\"title\":\"Hello!\",\"phoneNumber\":\"+01-123-456-7890\","
	    "\"author\":{\"familyName\":null},\"tags\":[\"example\"]}",
	    "{\"title\":\"Hello!\",\"author\":{\"givenName\":\"John\"},"
	    "\"tags\":[\"example\"],\"content\":\"This will be unchanged\","
	    "\"phoneNumber\":\"+01-123-456-7890\"}");
}

static void
test_patch_merge_kubernetes_metadata(void **state)
{
	(void) state;
	/* kubectl label / annotate send merge patches like these. */
	ok(ks_patch_merge,
	    "{\"metadata\":{\"name\":\"c\",\"labels\":{\"a\":\"1\",\"b\":"
	    "\"2\"},\"finalizers\":[\"x\"]},\"data\":{\"k\":\"v\"}}",
	    "{\"metadata\":{\"labels\":{\"a\":null,\"c\":\"3\"},"
	    "\"finalizers\":[\"y\"]}}",
	    "{\"metadata\":{\"name\":\"c\",\"labels\":{\"b\":\"2\",\"c\":"
	    "\"3\"},\"finalizers\":[\"y\"]},\"data\":{\"k\":\"v\"}}");
}

static void
test_patch_merge_result_is_independent(void **state)
{
	(void) state;
	json_t *t   = J("{\"a\":{\"b\":1}}");
	json_t *p   = J("{\"c\":{\"d\":[1,2]}}");
	json_t *out = NULL;
	assert_int_equal(ks_patch_merge(t, p, &out, NULL, 0), KS_PATCH_OK);
	json_object_set_new(json_object_get(out, "a"), "x", json_true());
	json_array_append_new(
	    json_object_get(json_object_get(out, "c"), "d"), json_null());
	json_t *t0 = J("{\"a\":{\"b\":1}}");
	json_t *p0 = J("{\"c\":{\"d\":[1,2]}}");
	assert_true(json_equal(t, t0));
	assert_true(json_equal(p, p0));
	json_decref(t0);
	json_decref(p0);
	json_decref(out);
	json_decref(t);
	json_decref(p);

	/* NULL target counts as none; NULL patch is refused. */
	p = J("{\"a\":1}");
	assert_int_equal(ks_patch_merge(NULL, p, &out, NULL, 0), KS_PATCH_OK);
	assert_int_equal(json_integer_value(json_object_get(out, "a")), 1);
	json_decref(out);
	json_decref(p);
	assert_int_equal(
	    ks_patch_merge(NULL, NULL, &out, NULL, 0), KS_PATCH_BAD_REQUEST);
}

/* ---- RFC 6902 ---------------------------------------------------------- */

static void
test_patch_json_rfc6902_appendix_a(void **state)
{
	(void) state;
	/* A.1 Adding an Object Member */
	ok(ks_patch_json, "{\"foo\":\"bar\"}",
	    "[{\"op\":\"add\",\"path\":\"/baz\",\"value\":\"qux\"}]",
	    "{\"baz\":\"qux\",\"foo\":\"bar\"}");
	/* A.2 Adding an Array Element */
	ok(ks_patch_json, "{\"foo\":[\"bar\",\"baz\"]}",
	    "[{\"op\":\"add\",\"path\":\"/foo/1\",\"value\":\"qux\"}]",
	    "{\"foo\":[\"bar\",\"qux\",\"baz\"]}");
	/* A.3 Removing an Object Member */
	ok(ks_patch_json, "{\"baz\":\"qux\",\"foo\":\"bar\"}",
	    "[{\"op\":\"remove\",\"path\":\"/baz\"}]", "{\"foo\":\"bar\"}");
	/* A.4 Removing an Array Element */
	ok(ks_patch_json, "{\"foo\":[\"bar\",\"qux\",\"baz\"]}",
	    "[{\"op\":\"remove\",\"path\":\"/foo/1\"}]",
	    "{\"foo\":[\"bar\",\"baz\"]}");
	/* A.5 Replacing a Value */
	ok(ks_patch_json, "{\"baz\":\"qux\",\"foo\":\"bar\"}",
	    "[{\"op\":\"replace\",\"path\":\"/baz\",\"value\":\"boo\"}]",
	    "{\"baz\":\"boo\",\"foo\":\"bar\"}");
	/* A.6 Moving a Value */
	ok(ks_patch_json,
	    "{\"foo\":{\"bar\":\"baz\",\"waldo\":\"fred\"},\"qux\":{\"corge\":"
	    "\"grault\"}}",
	    "[{\"op\":\"move\",\"from\":\"/foo/waldo\",\"path\":\"/qux/"
	    "thud\"}]",
	    "{\"foo\":{\"bar\":\"baz\"},\"qux\":{\"corge\":\"grault\","
	    "\"thud\":"
	    "\"fred\"}}");
	/* A.7 Moving an Array Element */
	ok(ks_patch_json, "{\"foo\":[\"all\",\"grass\",\"cows\",\"eat\"]}",
	    "[{\"op\":\"move\",\"from\":\"/foo/1\",\"path\":\"/foo/3\"}]",
	    "{\"foo\":[\"all\",\"cows\",\"eat\",\"grass\"]}");
	/* A.8 Testing a Value: Success */
	ok(ks_patch_json, "{\"baz\":\"qux\",\"foo\":[\"a\",2,\"c\"]}",
	    "[{\"op\":\"test\",\"path\":\"/baz\",\"value\":\"qux\"},"
	    "{\"op\":\"test\",\"path\":\"/foo/1\",\"value\":2}]",
	    "{\"baz\":\"qux\",\"foo\":[\"a\",2,\"c\"]}");
	/* A.9 Testing a Value: Error */
	fails_msg(ks_patch_json, "{\"baz\":\"qux\"}",
	    "[{\"op\":\"test\",\"path\":\"/baz\",\"value\":\"bar\"}]",
	    KS_PATCH_INVALID, "testing value /baz failed: test failed");
	/* A.10 Adding a Nested Member Object */
	ok(ks_patch_json, "{\"foo\":\"bar\"}",
	    "[{\"op\":\"add\",\"path\":\"/child\",\"value\":{\"grandchild\":"
	    "{}}}]",
	    "{\"foo\":\"bar\",\"child\":{\"grandchild\":{}}}");
	/* A.11 Ignoring Unrecognized Elements */
	ok(ks_patch_json, "{\"foo\":\"bar\"}",
	    "[{\"op\":\"add\",\"path\":\"/baz\",\"value\":\"qux\",\"xyz\":"
	    "123}]",
	    "{\"foo\":\"bar\",\"baz\":\"qux\"}");
	/* A.12 Adding to a Nonexistent Target */
	fails_msg(ks_patch_json, "{\"foo\":\"bar\"}",
	    "[{\"op\":\"add\",\"path\":\"/baz/bat\",\"value\":\"qux\"}]",
	    KS_PATCH_INVALID,
	    "add operation does not apply: doc is missing path: \"/baz/bat\"");
	/* A.13 (duplicate "op" members) is a JSON parsing matter: kubesim
	 * parses bodies with jansson, which keeps the last member. */
	/* A.14 ~ Escape Ordering */
	ok(ks_patch_json, "{\"/\":9,\"~1\":10}",
	    "[{\"op\":\"test\",\"path\":\"/~01\",\"value\":10}]",
	    "{\"/\":9,\"~1\":10}");
	/* A.15 Comparing Strings and Numbers */
	fails(ks_patch_json, "{\"/\":9,\"~1\":10}",
	    "[{\"op\":\"test\",\"path\":\"/~01\",\"value\":\"10\"}]",
	    KS_PATCH_INVALID);
	/* A.16 Adding an Array Value */
	ok(ks_patch_json, "{\"foo\":[\"bar\"]}",
	    "[{\"op\":\"add\",\"path\":\"/foo/-\",\"value\":[\"abc\","
	    "\"def\"]}]",
	    "{\"foo\":[\"bar\",[\"abc\",\"def\"]]}");
}

static void
test_patch_json_not_an_array(void **state)
{
	(void) state;
	fails_msg(ks_patch_json, "{}", "{\"op\":\"add\"}",
	    KS_PATCH_BAD_REQUEST,
	    "json: cannot unmarshal object into Go value of type "
	    "jsonpatch.Patch");
	fails(ks_patch_json, "{}", "null", KS_PATCH_BAD_REQUEST);
	fails(ks_patch_json, "{}", "\"x\"", KS_PATCH_BAD_REQUEST);
	fails(ks_patch_json, "{}", "42", KS_PATCH_BAD_REQUEST);
	fails_msg(ks_patch_json, "{}", "[1]", KS_PATCH_BAD_REQUEST,
	    "json: cannot unmarshal number into Go value of type "
	    "jsonpatch.Operation");
	json_t *out = NULL;
	assert_int_equal(
	    ks_patch_json(NULL, NULL, &out, NULL, 0), KS_PATCH_BAD_REQUEST);
	assert_null(out);
	/* An empty list is a no-op. */
	ok(ks_patch_json, "{\"a\":1}", "[]", "{\"a\":1}");
}

static void
test_patch_json_malformed_operations(void **state)
{
	(void) state;
	static const char *const bad[] = {
		"[{\"path\":\"/a\",\"value\":1}]",
		"[{\"op\":1,\"path\":\"/a\",\"value\":1}]",
		"[{\"op\":\"frob\",\"path\":\"/a\"}]",
		"[{\"op\":\"add\",\"value\":1}]",
		"[{\"op\":\"add\",\"path\":\"/a\"}]",
		"[{\"op\":\"replace\",\"path\":\"/a\"}]",
		"[{\"op\":\"test\",\"path\":\"/a\"}]",
		"[{\"op\":\"remove\",\"path\":5}]",
		"[{\"op\":\"move\",\"path\":\"/a\"}]",
		"[{\"op\":\"copy\",\"path\":\"/a\",\"from\":null}]",
		"[{\"op\":\"add\",\"path\":\"a\",\"value\":1}]",
		"[{\"op\":\"add\",\"path\":\"/a~2\",\"value\":1}]",
		"[{\"op\":\"add\",\"path\":\"/a~\",\"value\":1}]",
		"[{\"op\":\"move\",\"from\":\"x\",\"path\":\"/a\"}]",
		/* shape is checked before anything applies */
		"[{\"op\":\"test\",\"path\":\"/nope\",\"value\":1},"
		"{\"op\":\"add\"}]",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		fails(
		    ks_patch_json, "{\"a\":1}", bad[i], KS_PATCH_BAD_REQUEST);
	/* "value": null is present, so it is fine. */
	ok(ks_patch_json, "{\"a\":1}",
	    "[{\"op\":\"replace\",\"path\":\"/a\",\"value\":null}]",
	    "{\"a\":null}");
}

static void
test_patch_json_is_atomic(void **state)
{
	(void) state;
	fails(ks_patch_json, "{\"a\":1,\"l\":[1,2]}",
	    "[{\"op\":\"add\",\"path\":\"/x\",\"value\":1},"
	    "{\"op\":\"remove\",\"path\":\"/l/0\"},"
	    "{\"op\":\"replace\",\"path\":\"/a\",\"value\":5},"
	    "{\"op\":\"test\",\"path\":\"/a\",\"value\":6}]",
	    KS_PATCH_INVALID);
	/* Operations see the effects of earlier ones. */
	ok(ks_patch_json, "{\"a\":1}",
	    "[{\"op\":\"add\",\"path\":\"/b\",\"value\":{}},"
	    "{\"op\":\"add\",\"path\":\"/b/c\",\"value\":2},"
	    "{\"op\":\"test\",\"path\":\"/b\",\"value\":{\"c\":2}},"
	    "{\"op\":\"remove\",\"path\":\"/a\"}]",
	    "{\"b\":{\"c\":2}}");
}

static void
test_patch_json_pointer_escapes(void **state)
{
	(void) state;
	ok(ks_patch_json, "{\"a/b\":1,\"m~n\":2,\"\":3}",
	    "[{\"op\":\"replace\",\"path\":\"/a~1b\",\"value\":10},"
	    "{\"op\":\"remove\",\"path\":\"/m~0n\"},"
	    "{\"op\":\"replace\",\"path\":\"/\",\"value\":4}]",
	    "{\"a/b\":10,\"\":4}");
	/* Annotation keys with slashes, as kubectl sends them. */
	ok(ks_patch_json,
	    "{\"metadata\":{\"annotations\":{\"example.com/x\":\"1\"}}}",
	    "[{\"op\":\"remove\",\"path\":\"/metadata/annotations/"
	    "example.com~1x\"},{\"op\":\"add\",\"path\":\"/metadata/"
	    "annotations/a~0b~1c\",\"value\":\"2\"}]",
	    "{\"metadata\":{\"annotations\":{\"a~b/c\":\"2\"}}}");
}

static void
test_patch_json_arrays(void **state)
{
	(void) state;
	const char *t = "{\"l\":[\"a\",\"b\",\"c\"]}";
	ok(ks_patch_json, t,
	    "[{\"op\":\"add\",\"path\":\"/l/-\",\"value\":\"d\"}]",
	    "{\"l\":[\"a\",\"b\",\"c\",\"d\"]}");
	ok(ks_patch_json, t,
	    "[{\"op\":\"add\",\"path\":\"/l/3\",\"value\":\"d\"}]",
	    "{\"l\":[\"a\",\"b\",\"c\",\"d\"]}");
	ok(ks_patch_json, t,
	    "[{\"op\":\"add\",\"path\":\"/l/0\",\"value\":\"z\"}]",
	    "{\"l\":[\"z\",\"a\",\"b\",\"c\"]}");
	ok(ks_patch_json, t,
	    "[{\"op\":\"replace\",\"path\":\"/l/2\",\"value\":\"z\"}]",
	    "{\"l\":[\"a\",\"b\",\"z\"]}");
	fails(ks_patch_json, t,
	    "[{\"op\":\"add\",\"path\":\"/l/4\",\"value\":\"d\"}]",
	    KS_PATCH_INVALID);
	fails(ks_patch_json, t, "[{\"op\":\"remove\",\"path\":\"/l/3\"}]",
	    KS_PATCH_INVALID);
	fails(ks_patch_json, t, "[{\"op\":\"remove\",\"path\":\"/l/-\"}]",
	    KS_PATCH_INVALID);
	fails(ks_patch_json, t,
	    "[{\"op\":\"replace\",\"path\":\"/l/3\",\"value\":1}]",
	    KS_PATCH_INVALID);
	fails(ks_patch_json, t,
	    "[{\"op\":\"replace\",\"path\":\"/l/-\",\"value\":1}]",
	    KS_PATCH_INVALID);
	fails(ks_patch_json, t, "[{\"op\":\"remove\",\"path\":\"/l/01\"}]",
	    KS_PATCH_INVALID);
	fails(ks_patch_json, t, "[{\"op\":\"remove\",\"path\":\"/l/-1\"}]",
	    KS_PATCH_INVALID);
	fails(ks_patch_json, t,
	    "[{\"op\":\"add\",\"path\":\"/l/99999999999999999999\","
	    "\"value\":1}]",
	    KS_PATCH_INVALID);
	fails(ks_patch_json, t,
	    "[{\"op\":\"test\",\"path\":\"/l/x\",\"value\":1}]",
	    KS_PATCH_INVALID);
	/* Through a scalar is a missing path. */
	fails(ks_patch_json, "{\"s\":\"x\"}",
	    "[{\"op\":\"add\",\"path\":\"/s/0\",\"value\":1}]",
	    KS_PATCH_INVALID);
}

static void
test_patch_json_add_replaces_member(void **state)
{
	(void) state;
	ok(ks_patch_json, "{\"a\":{\"x\":1},\"b\":2}",
	    "[{\"op\":\"add\",\"path\":\"/a\",\"value\":[3]}]",
	    "{\"a\":[3],\"b\":2}");
}

static void
test_patch_json_remove_replace_missing_fail(void **state)
{
	(void) state;
	fails_msg(ks_patch_json, "{\"a\":1}",
	    "[{\"op\":\"remove\",\"path\":\"/b\"}]", KS_PATCH_INVALID,
	    "remove operation does not apply: doc is missing path: \"/b\"");
	fails_msg(ks_patch_json, "{\"a\":1}",
	    "[{\"op\":\"replace\",\"path\":\"/b\",\"value\":1}]",
	    KS_PATCH_INVALID,
	    "replace operation does not apply: doc is missing path: \"/b\"");
	fails(ks_patch_json, "{\"a\":1}",
	    "[{\"op\":\"remove\",\"path\":\"/a/b\"}]", KS_PATCH_INVALID);
	fails(ks_patch_json, "{\"a\":1}",
	    "[{\"op\":\"remove\",\"path\":\"\"}]", KS_PATCH_INVALID);
}

static void
test_patch_json_move_and_copy(void **state)
{
	(void) state;
	ok(ks_patch_json, "{\"a\":{\"x\":1},\"b\":{}}",
	    "[{\"op\":\"copy\",\"from\":\"/a\",\"path\":\"/b/c\"},"
	    "{\"op\":\"replace\",\"path\":\"/b/c/x\",\"value\":2}]",
	    "{\"a\":{\"x\":1},\"b\":{\"c\":{\"x\":2}}}");
	ok(ks_patch_json, "{\"l\":[1,2]}",
	    "[{\"op\":\"copy\",\"from\":\"/l/0\",\"path\":\"/l/-\"}]",
	    "{\"l\":[1,2,1]}");
	ok(ks_patch_json, "{\"a\":1}",
	    "[{\"op\":\"move\",\"from\":\"/a\",\"path\":\"/a\"}]",
	    "{\"a\":1}");
	ok(ks_patch_json, "{\"a\":{\"b\":1}}",
	    "[{\"op\":\"move\",\"from\":\"/a/b\",\"path\":\"/a\"}]",
	    "{\"a\":1}");
	ok(ks_patch_json, "{\"a\":{\"b\":1}}",
	    "[{\"op\":\"copy\",\"from\":\"\",\"path\":\"/a/c\"}]",
	    "{\"a\":{\"b\":1,\"c\":{\"a\":{\"b\":1}}}}");
	fails(ks_patch_json, "{\"a\":{\"b\":1}}",
	    "[{\"op\":\"move\",\"from\":\"/a\",\"path\":\"/a/c\"}]",
	    KS_PATCH_INVALID);
	fails(ks_patch_json, "{\"a\":1}",
	    "[{\"op\":\"move\",\"from\":\"\",\"path\":\"/b\"}]",
	    KS_PATCH_INVALID);
	fails(ks_patch_json, "{\"a\":1}",
	    "[{\"op\":\"move\",\"from\":\"/x\",\"path\":\"/b\"}]",
	    KS_PATCH_INVALID);
	fails(ks_patch_json, "{\"a\":1}",
	    "[{\"op\":\"move\",\"from\":\"/x\",\"path\":\"/x\"}]",
	    KS_PATCH_INVALID);
	fails(ks_patch_json, "{\"a\":1}",
	    "[{\"op\":\"copy\",\"from\":\"/x\",\"path\":\"/b\"}]",
	    KS_PATCH_INVALID);
	fails(ks_patch_json, "{\"a\":1}",
	    "[{\"op\":\"move\",\"from\":\"/a\",\"path\":\"/x/y\"}]",
	    KS_PATCH_INVALID);
}

static void
test_patch_json_whole_document(void **state)
{
	(void) state;
	ok(ks_patch_json, "{\"a\":1}",
	    "[{\"op\":\"replace\",\"path\":\"\",\"value\":{\"b\":2}}]",
	    "{\"b\":2}");
	ok(ks_patch_json, "{\"a\":1}",
	    "[{\"op\":\"add\",\"path\":\"\",\"value\":[1]}]", "[1]");
	ok(ks_patch_json, "{\"a\":1}",
	    "[{\"op\":\"test\",\"path\":\"\",\"value\":{\"a\":1}}]",
	    "{\"a\":1}");
}

static void
test_patch_json_test_deep_equality(void **state)
{
	(void) state;
	const char *t = "{\"a\":[1,{\"b\":null,\"c\":\"x\"}],\"n\":1,\"f\":"
	                "2.5}";
	ok(ks_patch_json, t,
	    "[{\"op\":\"test\",\"path\":\"/a\",\"value\":[1,{\"c\":\"x\","
	    "\"b\":null}]}]",
	    t);
	ok(ks_patch_json, t,
	    "[{\"op\":\"test\",\"path\":\"/n\",\"value\":1.0},"
	    "{\"op\":\"test\",\"path\":\"/f\",\"value\":2.5}]",
	    t);
	static const char *const differ[] = {
		"[{\"op\":\"test\",\"path\":\"/"
		"a\",\"value\":[1,{\"b\":null}]}]",
		"[{\"op\":\"test\",\"path\":\"/a\",\"value\":[1]}]",
		"[{\"op\":\"test\",\"path\":\"/a/1/b\",\"value\":false}]",
		"[{\"op\":\"test\",\"path\":\"/n\",\"value\":1.5}]",
		"[{\"op\":\"test\",\"path\":\"/n\",\"value\":\"1\"}]",
		"[{\"op\":\"test\",\"path\":\"/f\",\"value\":2}]",
		"[{\"op\":\"test\",\"path\":\"/missing\",\"value\":null}]",
		"[{\"op\":\"test\",\"path\":\"/n\",\"value\":1e300}]",
	};
	for (size_t i = 0; i < sizeof(differ) / sizeof(differ[0]); i++)
		fails(ks_patch_json, t, differ[i], KS_PATCH_INVALID);
}

/* ---- strategic merge patch ------------------------------------------- */

static void
test_patch_strategic_merge_semantics(void **state)
{
	(void) state;
	ok(ks_patch_strategic,
	    "{\"metadata\":{\"name\":\"c\",\"labels\":{\"a\":\"1\",\"b\":"
	    "\"2\"}},\"data\":{\"k\":\"v\",\"old\":\"x\"}}",
	    "{\"metadata\":{\"labels\":{\"a\":null,\"c\":\"3\"}},\"data\":"
	    "{\"old\":null,\"new\":\"y\"},\"binaryData\":{\"b\":\"AA==\"}}",
	    "{\"metadata\":{\"name\":\"c\",\"labels\":{\"b\":\"2\",\"c\":"
	    "\"3\"}},\"data\":{\"k\":\"v\",\"new\":\"y\"},\"binaryData\":"
	    "{\"b\":\"AA==\"}}");
	/* Lists other than the two merged ones replace. */
	ok(ks_patch_strategic,
	    "{\"spec\":{\"finalizers\":[\"kubernetes\"]},\"metadata\":{"
	    "\"managedFields\":[{\"manager\":\"a\"}]}}",
	    "{\"spec\":{\"finalizers\":[\"x\"]},\"metadata\":{"
	    "\"managedFields\":[{\"manager\":\"b\"}]}}",
	    "{\"spec\":{\"finalizers\":[\"x\"]},\"metadata\":{"
	    "\"managedFields\":[{\"manager\":\"b\"}]}}");
	/* "finalizers" merges only under the top-level metadata. */
	ok(ks_patch_strategic,
	    "{\"spec\":{\"metadata\":{\"finalizers\":[\"a\"]}}}",
	    "{\"spec\":{\"metadata\":{\"finalizers\":[\"b\"]}}}",
	    "{\"spec\":{\"metadata\":{\"finalizers\":[\"b\"]}}}");
	/* Lease renewals, scalars and null. */
	ok(ks_patch_strategic,
	    "{\"spec\":{\"holderIdentity\":\"a\",\"leaseDurationSeconds\":15,"
	    "\"renewTime\":\"2024-01-01T00:00:00.000000Z\"}}",
	    "{\"spec\":{\"holderIdentity\":\"b\",\"renewTime\":null,"
	    "\"leaseTransitions\":1}}",
	    "{\"spec\":{\"holderIdentity\":\"b\",\"leaseDurationSeconds\":15,"
	    "\"leaseTransitions\":1}}");
	/* A null for a key the target lacks is dropped, nested too. */
	ok(ks_patch_strategic, "{\"a\":1}",
	    "{\"b\":null,\"c\":{\"d\":null,\"e\":1}}",
	    "{\"a\":1,\"c\":{\"e\":1}}");
	/* A map replaces a scalar and vice versa. */
	ok(ks_patch_strategic, "{\"a\":1,\"b\":{\"x\":1}}",
	    "{\"a\":{\"y\":2},\"b\":\"s\"}", "{\"a\":{\"y\":2},\"b\":\"s\"}");
	ok(ks_patch_strategic, "{\"a\":1}", "{}", "{\"a\":1}");
}

static void
test_patch_strategic_finalizers_union(void **state)
{
	(void) state;
	ok_text(ks_patch_strategic,
	    "{\"metadata\":{\"finalizers\":[\"a\",\"b\"]}}",
	    "{\"metadata\":{\"finalizers\":[\"b\",\"c\"]}}", "metadata",
	    "finalizers", "[\"a\",\"b\",\"c\"]");
	/* A new item goes before the server's, as the API server puts it. */
	ok_text(ks_patch_strategic,
	    "{\"metadata\":{\"finalizers\":[\"a\",\"b\"]}}",
	    "{\"metadata\":{\"finalizers\":[\"c\"]}}", "metadata",
	    "finalizers", "[\"c\",\"a\",\"b\"]");
	ok_text(ks_patch_strategic,
	    "{\"metadata\":{\"finalizers\":[\"a\",\"b\"]}}",
	    "{\"metadata\":{\"finalizers\":[\"b\",\"a\"]}}", "metadata",
	    "finalizers", "[\"b\",\"a\"]");
	ok_text(ks_patch_strategic,
	    "{\"metadata\":{\"finalizers\":[\"a\",\"b\",\"c\"]}}",
	    "{\"metadata\":{\"finalizers\":[\"b\",\"x\"]}}", "metadata",
	    "finalizers", "[\"a\",\"b\",\"x\",\"c\"]");
	/* An empty patch list changes nothing; null removes the list. */
	ok_text(ks_patch_strategic, "{\"metadata\":{\"finalizers\":[\"a\"]}}",
	    "{\"metadata\":{\"finalizers\":[]}}", "metadata", "finalizers",
	    "[\"a\"]");
	ok(ks_patch_strategic, "{\"metadata\":{\"finalizers\":[\"a\"]}}",
	    "{\"metadata\":{\"finalizers\":null}}", "{\"metadata\":{}}");
	/* The target has none yet: the patch list, duplicates dropped. */
	ok_text(ks_patch_strategic, "{\"metadata\":{\"name\":\"n\"}}",
	    "{\"metadata\":{\"finalizers\":[\"x\",\"y\",\"x\"]}}", "metadata",
	    "finalizers", "[\"x\",\"y\"]");
	ok_text(ks_patch_strategic, "{}",
	    "{\"metadata\":{\"finalizers\":[\"x\"]}}", "metadata",
	    "finalizers", "[\"x\"]");
	fails(ks_patch_strategic, "{\"metadata\":{\"finalizers\":[\"a\"]}}",
	    "{\"metadata\":{\"finalizers\":[{\"x\":1}]}}",
	    KS_PATCH_BAD_REQUEST);
}

static void
test_patch_strategic_delete_from_primitive_list(void **state)
{
	(void) state;
	/* What kubectl apply/edit sends to drop a finalizer. */
	ok_text(ks_patch_strategic,
	    "{\"metadata\":{\"finalizers\":[\"a\",\"b\",\"c\"]}}",
	    "{\"metadata\":{\"$setElementOrder/finalizers\":[\"a\",\"c\"],"
	    "\"$deleteFromPrimitiveList/finalizers\":[\"b\"]}}",
	    "metadata", "finalizers", "[\"a\",\"c\"]");
	ok_text(ks_patch_strategic,
	    "{\"metadata\":{\"finalizers\":[\"a\",\"b\"]}}",
	    "{\"metadata\":{\"$deleteFromPrimitiveList/finalizers\":[\"a\","
	    "\"b\",\"zz\"],\"finalizers\":[\"n\"]}}",
	    "metadata", "finalizers", "[\"n\"]");
	/* Nothing to delete from is fine. */
	ok(ks_patch_strategic, "{\"metadata\":{}}",
	    "{\"metadata\":{\"$deleteFromPrimitiveList/finalizers\":[\"a\"]}}",
	    "{\"metadata\":{}}");
	fails_msg(ks_patch_strategic, "{}",
	    "{\"metadata\":{\"$deleteFromPrimitiveList/finalizers\":\"a\"}}",
	    KS_PATCH_BAD_REQUEST, "invalid patch format of primitive list");
	fails(ks_patch_strategic, "{}",
	    "{\"$deleteFromPrimitiveListfinalizers\":[]}",
	    KS_PATCH_BAD_REQUEST);
}

static void
test_patch_strategic_owner_references_merge_by_uid(void **state)
{
	(void) state;
	const char *t = "{\"metadata\":{\"ownerReferences\":["
	                "{\"uid\":\"1\",\"name\":\"a\",\"kind\":\"K\","
	                "\"controller\":true},"
	                "{\"uid\":\"2\",\"name\":\"b\",\"kind\":\"K\"}]}}";
	ok_text(ks_patch_strategic, t,
	    "{\"metadata\":{\"ownerReferences\":["
	    "{\"uid\":\"2\",\"name\":\"b2\"},"
	    "{\"uid\":\"3\",\"name\":\"c\",\"kind\":\"K\"}]}}",
	    "metadata", "ownerReferences",
	    "[{\"uid\":\"1\",\"name\":\"a\",\"kind\":\"K\",\"controller\":"
	    "true},{\"uid\":\"2\",\"name\":\"b2\",\"kind\":\"K\"},{\"uid\":"
	    "\"3\",\"name\":\"c\",\"kind\":\"K\"}]");
	/* null deletes inside a merged element. */
	ok_text(ks_patch_strategic, t,
	    "{\"metadata\":{\"ownerReferences\":[{\"uid\":\"1\","
	    "\"controller\":null}]}}",
	    "metadata", "ownerReferences",
	    "[{\"uid\":\"1\",\"name\":\"a\",\"kind\":\"K\"},{\"uid\":\"2\","
	    "\"name\":\"b\",\"kind\":\"K\"}]");
	/* Deleting an element by uid. */
	ok_text(ks_patch_strategic, t,
	    "{\"metadata\":{\"ownerReferences\":[{\"uid\":\"1\",\"$patch\":"
	    "\"delete\"}]}}",
	    "metadata", "ownerReferences",
	    "[{\"uid\":\"2\",\"name\":\"b\",\"kind\":\"K\"}]");
	/* Replacing the whole list. */
	ok_text(ks_patch_strategic, t,
	    "{\"metadata\":{\"ownerReferences\":[{\"$patch\":\"replace\"},"
	    "{\"uid\":\"9\",\"name\":\"z\"}]}}",
	    "metadata", "ownerReferences", "[{\"uid\":\"9\",\"name\":\"z\"}]");
	/* A target without owners takes the patch list. */
	ok_text(ks_patch_strategic, "{\"metadata\":{}}",
	    "{\"metadata\":{\"ownerReferences\":[{\"uid\":\"5\"}]}}",
	    "metadata", "ownerReferences", "[{\"uid\":\"5\"}]");
	/* Every element needs its merge key. */
	fails_msg(ks_patch_strategic, t,
	    "{\"metadata\":{\"ownerReferences\":[{\"name\":\"x\"}]}}",
	    KS_PATCH_BAD_REQUEST,
	    "map: {\"name\":\"x\"} does not contain declared merge key: uid");
	fails(ks_patch_strategic, t,
	    "{\"metadata\":{\"ownerReferences\":[{\"$patch\":\"delete\"}]}}",
	    KS_PATCH_BAD_REQUEST);
	fails(ks_patch_strategic, t,
	    "{\"metadata\":{\"ownerReferences\":[\"1\"]}}",
	    KS_PATCH_BAD_REQUEST);
	fails(ks_patch_strategic, t,
	    "{\"metadata\":{\"ownerReferences\":[{\"uid\":\"1\",\"$patch\":"
	    "\"merge\"}]}}",
	    KS_PATCH_BAD_REQUEST);
}

static void
test_patch_strategic_patch_directive_in_map(void **state)
{
	(void) state;
	const char *t = "{\"metadata\":{\"name\":\"c\",\"labels\":{\"a\":"
	                "\"1\",\"b\":\"2\"}},\"data\":{\"k\":\"v\"}}";
	ok(ks_patch_strategic, t,
	    "{\"metadata\":{\"labels\":{\"$patch\":\"replace\",\"x\":\"1\","
	    "\"y\":null}}}",
	    "{\"metadata\":{\"name\":\"c\",\"labels\":{\"x\":\"1\"}},"
	    "\"data\":{\"k\":\"v\"}}");
	ok(ks_patch_strategic, t, "{\"data\":{\"$patch\":\"delete\"}}",
	    "{\"metadata\":{\"name\":\"c\",\"labels\":{\"a\":\"1\",\"b\":"
	    "\"2\"}}}");
	ok(ks_patch_strategic, t,
	    "{\"data\":{\"$patch\":\"merge\",\"k2\":\"v2\"}}",
	    "{\"metadata\":{\"name\":\"c\",\"labels\":{\"a\":\"1\",\"b\":"
	    "\"2\"}},\"data\":{\"k\":\"v\",\"k2\":\"v2\"}}");
	ok(ks_patch_strategic, t, "{\"$patch\":\"delete\"}", "{}");
	ok(ks_patch_strategic, t,
	    "{\"$patch\":\"replace\",\"data\":{\"z\":\"1\"}}",
	    "{\"data\":{\"z\":\"1\"}}");
	fails_msg(ks_patch_strategic, t, "{\"data\":{\"$patch\":\"frob\"}}",
	    KS_PATCH_BAD_REQUEST,
	    "unknown patch type: frob in map: {\"$patch\":\"frob\"}");
	fails(ks_patch_strategic, t, "{\"data\":{\"$patch\":1}}",
	    KS_PATCH_BAD_REQUEST);
}

static void
test_patch_strategic_ignored_directives(void **state)
{
	(void) state;
	ok(ks_patch_strategic,
	    "{\"metadata\":{\"finalizers\":[\"a\"]},\"spec\":{\"x\":1}}",
	    "{\"$retainKeys\":[\"spec\"],\"spec\":{\"$retainKeys\":[\"y\"],"
	    "\"y\":2},\"metadata\":{\"$setElementOrder/finalizers\":[\"a\"]}}",
	    "{\"metadata\":{\"finalizers\":[\"a\"]},\"spec\":{\"x\":1,\"y\":"
	    "2}}");
	fails_msg(ks_patch_strategic, "{}", "{\"$retainKeys\":\"spec\"}",
	    KS_PATCH_BAD_REQUEST, "invalid patch format of retainKeys");
	fails_msg(ks_patch_strategic, "{}",
	    "{\"metadata\":{\"$setElementOrder/finalizers\":{}}}",
	    KS_PATCH_BAD_REQUEST,
	    "invalid patch format of setElementOrder "
	    "list");
}

static void
test_patch_strategic_bad_patches(void **state)
{
	(void) state;
	fails_msg(ks_patch_strategic, "{}", "[]", KS_PATCH_BAD_REQUEST,
	    "json: cannot unmarshal array into Go value of type "
	    "map[string]interface {}");
	fails(ks_patch_strategic, "{}", "null", KS_PATCH_BAD_REQUEST);
	fails(ks_patch_strategic, "{}", "\"x\"", KS_PATCH_BAD_REQUEST);
	json_t *out = NULL;
	assert_int_equal(ks_patch_strategic(NULL, NULL, &out, NULL, 0),
	    KS_PATCH_BAD_REQUEST);
	assert_null(out);
	/* A target that is not an object counts as {}. */
	json_t *p = J("{\"a\":1}");
	assert_int_equal(
	    ks_patch_strategic(NULL, p, &out, NULL, 0), KS_PATCH_OK);
	assert_int_equal(json_integer_value(json_object_get(out, "a")), 1);
	json_decref(out);
	json_decref(p);
}

static void
test_patch_strategic_core_objects(void **state)
{
	(void) state;
	/* A ConfigMap round: kubectl apply's patch for a changed value, a
	 * new label, a finalizer added and an owner added. */
	ok(ks_patch_strategic,
	    "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{"
	    "\"name\":\"cm\",\"namespace\":\"ns\",\"resourceVersion\":\"7\","
	    "\"labels\":{\"app\":\"x\"},\"annotations\":{\"kubectl.kubernetes."
	    "io/last-applied-configuration\":\"{}\"},\"finalizers\":[\"f1\"],"
	    "\"ownerReferences\":[{\"apiVersion\":\"v1\",\"kind\":"
	    "\"Namespace\","
	    "\"name\":\"ns\",\"uid\":\"u1\"}]},\"data\":{\"a\":\"1\"}}",
	    "{\"metadata\":{\"annotations\":{\"kubectl.kubernetes.io/"
	    "last-applied-configuration\":\"{\\\"x\\\":1}\"},\"labels\":{"
	    "\"tier\":\"web\"},\"finalizers\":[\"f2\"],\"ownerReferences\":[{"
	    "\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"name\":\"s\",\"uid\":"
	    "\"u2\"}]},\"data\":{\"a\":\"2\",\"b\":\"3\"}}",
	    "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{"
	    "\"name\":\"cm\",\"namespace\":\"ns\",\"resourceVersion\":\"7\","
	    "\"labels\":{\"app\":\"x\",\"tier\":\"web\"},\"annotations\":{"
	    "\"kubectl.kubernetes.io/last-applied-configuration\":"
	    "\"{\\\"x\\\":1}\"},\"finalizers\":[\"f2\",\"f1\"],"
	    "\"ownerReferences\":[{\"apiVersion\":\"v1\",\"kind\":\"Secret\","
	    "\"name\":\"s\",\"uid\":\"u2\"},{\"apiVersion\":\"v1\",\"kind\":"
	    "\"Namespace\",\"name\":\"ns\",\"uid\":\"u1\"}]},\"data\":{\"a\":"
	    "\"2\",\"b\":\"3\"}}");
}

static uint32_t
rnd(uint32_t *state)
{
	*state = *state * 1103515245u + 12345u;
	return *state >> 8;
}

static void
test_patch_random_input_never_crashes(void **state)
{
	(void) state;
	static const char *const paths[] = { "\"\"", "\"/\"", "\"/a\"",
		"\"/a/0\"", "\"/a/-\"", "\"/a/9\"", "\"/m\"", "\"/m/x\"",
		"\"/m/x/y\"", "\"/a/01\"", "\"/~1\"", "\"/~0/~\"", "\"x\"",
		"\"/metadata/finalizers/0\"", "1" };
	static const char *const ops[]
	    = { "add", "remove", "replace", "move", "copy", "test", "nope" };
	static const char *const values[] = { "1", "null", "[1,2]",
		"{\"x\":{\"y\":1}}", "\"s\"", "{\"$patch\":\"delete\"}",
		"{\"$patch\":\"replace\",\"q\":null}", "[{\"uid\":\"1\"}]",
		"[\"f\",\"g\"]", "[{\"$patch\":\"replace\"}]" };
	static const char *const keys[] = { "a", "m", "metadata", "finalizers",
		"ownerReferences", "$patch", "$retainKeys",
		"$deleteFromPrimitiveList/finalizers",
		"$setElementOrder/finalizers", "x" };
	const char *target = "{\"a\":[1,2,3],\"m\":{\"x\":{\"y\":2}},"
	                     "\"metadata\":{\"finalizers\":[\"f\"],"
	                     "\"ownerReferences\":[{\"uid\":\"1\"}]}}";
	json_t     *t      = J(target);
	json_t     *t0     = json_deep_copy(t);
	uint32_t    seed   = 4242;
	char        buf[2048];
	for (int iter = 0; iter < 3000; iter++) {
		/* A JSON patch of up to 4 operations. */
		size_t len = (size_t) snprintf(buf, sizeof(buf), "[");
		int    nop = (int) (rnd(&seed) % 5);
		for (int i = 0; i < nop; i++)
			len += (size_t) snprintf(buf + len, sizeof(buf) - len,
			    "%s{\"op\":\"%s\",\"path\":%s,\"from\":%s,"
			    "\"value\":%s}",
			    i ? "," : "", ops[rnd(&seed) % 7],
			    paths[rnd(&seed) % 15], paths[rnd(&seed) % 15],
			    values[rnd(&seed) % 10]);
		snprintf(buf + len, sizeof(buf) - len, "]");
		json_t *p   = J(buf);
		json_t *out = NULL;
		char    err[128];
		if (ks_patch_json(t, p, &out, err, sizeof(err)) == KS_PATCH_OK)
			json_decref(out);
		json_decref(p);

		/* A strategic (and merge) patch, nested up to three deep. */
		len       = 0;
		int depth = 0;
		len += (size_t) snprintf(buf, sizeof(buf), "{");
		int nkeys = 1 + (int) (rnd(&seed) % 4);
		for (int i = 0; i < nkeys; i++) {
			const char *k = keys[rnd(&seed) % 10];
			if (depth < 3 && rnd(&seed) % 3 == 0) {
				len += (size_t) snprintf(buf + len,
				    sizeof(buf) - len, "%s\"%s\":{",
				    i ? "," : "", k);
				depth++;
				i     = -1;
				nkeys = 1 + (int) (rnd(&seed) % 3);
				continue;
			}
			len += (size_t) snprintf(buf + len, sizeof(buf) - len,
			    "%s\"%s\":%s", i ? "," : "", k,
			    values[rnd(&seed) % 10]);
		}
		while (depth-- > 0)
			len += (size_t) snprintf(
			    buf + len, sizeof(buf) - len, "}");
		snprintf(buf + len, sizeof(buf) - len, "}");
		p = json_loads(buf, 0, NULL);
		if (p == NULL)
			continue; /* a duplicate key or such: not our concern
			           */
		if (ks_patch_strategic(t, p, &out, err, sizeof(err))
		    == KS_PATCH_OK)
			json_decref(out);
		if (ks_patch_merge(t, p, &out, err, sizeof(err))
		    == KS_PATCH_OK)
			json_decref(out);
		json_decref(p);
	}
	assert_true(json_equal(t, t0));
	json_decref(t);
	json_decref(t0);
}

int
main(void)
{
	mcf_alloc_init_libs();
	const struct CMUnitTest tests[] = {
		{ "merge patch: RFC 7386 appendix A",
		    test_patch_merge_rfc7386_appendix_a, NULL, NULL, NULL },
		{ "merge patch: RFC 7386 section 3 example",
		    test_patch_merge_rfc7386_example, NULL, NULL, NULL },
		{ "merge patch: Kubernetes metadata",
		    test_patch_merge_kubernetes_metadata, NULL, NULL, NULL },
		{ "merge patch: result shares nothing with inputs",
		    test_patch_merge_result_is_independent, NULL, NULL, NULL },
		{ "JSON patch: RFC 6902 appendix A",
		    test_patch_json_rfc6902_appendix_a, NULL, NULL, NULL },
		{ "JSON patch: not an array is a bad request",
		    test_patch_json_not_an_array, NULL, NULL, NULL },
		{ "JSON patch: malformed operations are bad requests",
		    test_patch_json_malformed_operations, NULL, NULL, NULL },
		{ "JSON patch: atomic", test_patch_json_is_atomic, NULL, NULL,
		    NULL },
		{ "JSON patch: ~0 and ~1 escapes",
		    test_patch_json_pointer_escapes, NULL, NULL, NULL },
		{ "JSON patch: array indices and '-'", test_patch_json_arrays,
		    NULL, NULL, NULL },
		{ "JSON patch: add replaces an existing member",
		    test_patch_json_add_replaces_member, NULL, NULL, NULL },
		{ "JSON patch: remove/replace of a missing path fail",
		    test_patch_json_remove_replace_missing_fail, NULL, NULL,
		    NULL },
		{ "JSON patch: move and copy", test_patch_json_move_and_copy,
		    NULL, NULL, NULL },
		{ "JSON patch: the whole document",
		    test_patch_json_whole_document, NULL, NULL, NULL },
		{ "JSON patch: test uses deep equality",
		    test_patch_json_test_deep_equality, NULL, NULL, NULL },
		{ "strategic: merge-patch semantics",
		    test_patch_strategic_merge_semantics, NULL, NULL, NULL },
		{ "strategic: finalizers are unioned",
		    test_patch_strategic_finalizers_union, NULL, NULL, NULL },
		{ "strategic: $deleteFromPrimitiveList",
		    test_patch_strategic_delete_from_primitive_list, NULL,
		    NULL, NULL },
		{ "strategic: ownerReferences merge by uid",
		    test_patch_strategic_owner_references_merge_by_uid, NULL,
		    NULL, NULL },
		{ "strategic: $patch in a map",
		    test_patch_strategic_patch_directive_in_map, NULL, NULL,
		    NULL },
		{ "strategic: ignored directives",
		    test_patch_strategic_ignored_directives, NULL, NULL,
		    NULL },
		{ "strategic: bad patches", test_patch_strategic_bad_patches,
		    NULL, NULL, NULL },
		{ "strategic: a ConfigMap apply",
		    test_patch_strategic_core_objects, NULL, NULL, NULL },
		{ "random patches never crash",
		    test_patch_random_input_never_crashes, NULL, NULL, NULL },
	};
	return cmocka_run_group_tests_name("ks_patch", tests, NULL, NULL);
}

/*
 * json_test.c — tests for common/json.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "alloc.h"
#include "err.h"
#include "json.h"

static json_t *
parse_ok(const char *text)
{
	json_t     *v = NULL;
	mcf_errinfo ei;
	if (mcf_json_parse(text, strlen(text), &v, &ei) != MCF_OK)
		fail_msg("%s: %s", text, ei.msg);
	return v;
}

static void
test_json_parse_accepts_one_value(void **state)
{
	(void) state;
	json_t *v = parse_ok("{\"a\":[1,2,{\"b\":null}]}");
	assert_true(json_is_object(v));
	json_decref(v);

	/* A bare scalar is one value too. */
	v = parse_ok("42");
	assert_true(json_is_integer(v));
	assert_int_equal(json_integer_value(v), 42);
	json_decref(v);

	/* Trailing whitespace is fine. */
	v = parse_ok(" \"s\" \n\t ");
	assert_string_equal(json_string_value(v), "s");
	json_decref(v);
}

static void
test_json_parse_uses_len_not_nul(void **state)
{
	json_t *v = NULL;

	(void) state;
	/* Only the first 7 bytes are the document. */
	assert_int_equal(
	    mcf_json_parse("[1, 2]  garbage", 7, &v, NULL), MCF_OK);
	assert_int_equal(json_array_size(v), 2);
	json_decref(v);
}

static void
test_json_parse_rejects_trailing_garbage(void **state)
{
	json_t     *v = (json_t *) 0x1;
	mcf_errinfo ei;
	const char *text = "{\"a\":1}\n{\"b\":2}";

	(void) state;
	assert_int_equal(
	    mcf_json_parse(text, strlen(text), &v, &ei), MCF_EINVAL);
	assert_int_equal(ei.code, MCF_EINVAL);
	/* Untouched on failure. */
	assert_ptr_equal(v, (json_t *) 0x1);
	assert_non_null(strstr(ei.msg, "line 2, column"));
}

static void
test_json_parse_reports_line_and_column(void **state)
{
	json_t     *v = NULL;
	mcf_errinfo ei;
	const char *text = "{\n  \"a\": 1,\n  \"b\": tru\n}";

	(void) state;
	assert_int_equal(
	    mcf_json_parse(text, strlen(text), &v, &ei), MCF_EINVAL);
	assert_memory_equal(ei.msg, "line 3, column ", 15);
	assert_null(v);
}

static void
test_json_parse_rejects_bad_input(void **state)
{
	static const char *bad[] = {
		"", "   ", "{", "{\"a\":}", "[1,]", "'single'", "{\"a\":1,}",
		"\"\xff\"",                       /* invalid UTF-8 */
		"\"a\\u0000b\"",                  /* NUL inside a string */
		"123456789012345678901234567890", /* integer overflow */
	};

	(void) state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_t     *v = NULL;
		mcf_errinfo ei;
		if (mcf_json_parse(bad[i], strlen(bad[i]), &v, &ei)
		    != MCF_EINVAL)
			fail_msg("accepted %s", bad[i]);
		assert_null(v);
		assert_memory_equal(ei.msg, "line ", 5);
	}
	json_t *v = NULL;
	assert_int_equal(mcf_json_parse(NULL, 0, &v, NULL), MCF_EINVAL);
}

static void
test_json_dump_is_compact_and_ordered(void **state)
{
	(void) state;
	json_t *v = parse_ok("{ \"z\" : 1, \"a\" : [ true, null, 1.5 ],"
	                     " \"m\" : { \"k\" : \"v\\n\" } }");
	char   *s = mcf_json_dump(v);
	assert_string_equal(
	    s, "{\"z\":1,\"a\":[true,null,1.5],\"m\":{\"k\":\"v\\n\"}}");
	free(s);
	json_decref(v);

	json_t *str = json_string("plain");
	s           = mcf_json_dump(str);
	assert_string_equal(s, "\"plain\"");
	free(s);
	json_decref(str);
}

static void
test_json_dump_large_value(void **state)
{
	(void) state;
	json_t *arr = json_array();
	for (int i = 0; i < 10000; i++)
		json_array_append_new(arr, json_integer(i));
	char *s = mcf_json_dump(arr);
	assert_int_equal(s[0], '[');
	assert_int_equal(s[strlen(s) - 1], ']');
	json_t *back = parse_ok(s);
	assert_true(json_equal(arr, back));
	free(s);
	json_decref(back);
	json_decref(arr);
}

static void
test_json_path_finds_nested_values(void **state)
{
	(void) state;
	json_t *v = parse_ok("{\"metadata\":{\"name\":\"w1\",\"generation\":7,"
	                     "\"labels\":{\"app\":\"mcf\"}},\"items\":[1]}");
	assert_ptr_equal(
	    mcf_json_path(v, "metadata"), json_object_get(v, "metadata"));
	assert_string_equal(mcf_json_path_str(v, "metadata.name"), "w1");
	assert_string_equal(
	    mcf_json_path_str(v, "metadata.labels.app"), "mcf");

	int64_t n = 0;
	assert_int_equal(
	    mcf_json_path_int(v, "metadata.generation", &n), MCF_OK);
	assert_int_equal(n, 7);
	json_decref(v);
}

static void
test_json_path_missing_and_wrong_types(void **state)
{
	(void) state;
	json_t *v
	    = parse_ok("{\"a\":{\"s\":\"x\",\"f\":1.5,\"arr\":[{\"b\":1}]}}");
	assert_null(mcf_json_path(v, "nope"));
	assert_null(mcf_json_path(v, "a.nope"));
	/* Traversing a string or an array finds nothing. */
	assert_null(mcf_json_path(v, "a.s.x"));
	assert_null(mcf_json_path(v, "a.arr.0"));
	assert_null(mcf_json_path(v, "a.arr.b"));
	/* Empty segments never match. */
	assert_null(mcf_json_path(v, ""));
	assert_null(mcf_json_path(v, "a."));
	assert_null(mcf_json_path(v, ".a"));
	assert_null(mcf_json_path(v, "a..s"));
	assert_null(mcf_json_path(NULL, "a"));
	assert_null(mcf_json_path(v, NULL));

	/* _str only returns strings. */
	assert_null(mcf_json_path_str(v, "a.f"));
	assert_null(mcf_json_path_str(v, "a"));

	int64_t n = 99;
	assert_int_equal(mcf_json_path_int(v, "a.missing", &n), MCF_ENOENT);
	assert_int_equal(mcf_json_path_int(v, "a.f", &n), MCF_EINVAL);
	assert_int_equal(mcf_json_path_int(v, "a.s", &n), MCF_EINVAL);
	assert_int_equal(n, 99);

	/* A non-object root has no fields. */
	json_t *arr = json_array();
	assert_null(mcf_json_path(arr, "a"));
	json_decref(arr);
	json_decref(v);
}

static void
test_json_path_set_creates_intermediates(void **state)
{
	(void) state;
	json_t *v = json_object();
	assert_int_equal(
	    mcf_json_path_set(v, "spec.template.name", json_string("w")),
	    MCF_OK);
	assert_string_equal(mcf_json_path_str(v, "spec.template.name"), "w");

	/* Replaces an existing value, keeps siblings. */
	assert_int_equal(
	    mcf_json_path_set(v, "spec.replicas", json_integer(3)), MCF_OK);
	assert_int_equal(
	    mcf_json_path_set(v, "spec.template.name", json_string("x")),
	    MCF_OK);
	char *s = mcf_json_dump(v);
	assert_string_equal(
	    s, "{\"spec\":{\"template\":{\"name\":\"x\"},\"replicas\":3}}");
	free(s);
	json_decref(v);
}

static void
test_json_path_set_fails_and_still_steals(void **state)
{
	(void) state;
	json_t *v      = parse_ok("{\"a\":{\"s\":\"str\"}}");
	char   *before = mcf_json_dump(v);

	/* Each failing call must free the value (ASan checks for leaks) and
	 * leave the tree unchanged. */
	assert_int_equal(
	    mcf_json_path_set(v, "a.s.x", json_string("leak?")), MCF_EINVAL);
	assert_int_equal(
	    mcf_json_path_set(v, "a..b", json_string("leak?")), MCF_EINVAL);
	assert_int_equal(
	    mcf_json_path_set(v, "", json_string("leak?")), MCF_EINVAL);
	assert_int_equal(
	    mcf_json_path_set(v, "b.", json_string("leak?")), MCF_EINVAL);
	assert_int_equal(mcf_json_path_set(v, "a.b", NULL), MCF_EINVAL);

	char *after = mcf_json_dump(v);
	assert_string_equal(before, after);
	free(before);
	free(after);

	json_t *arr = json_array();
	assert_int_equal(
	    mcf_json_path_set(arr, "a", json_string("leak?")), MCF_EINVAL);
	json_decref(arr);
	json_decref(v);
}

static void
test_json_path_del_removes(void **state)
{
	(void) state;
	json_t *v = parse_ok("{\"a\":{\"b\":1,\"c\":2},\"s\":\"x\"}");
	mcf_json_path_del(v, "a.b");
	assert_null(mcf_json_path(v, "a.b"));
	assert_non_null(mcf_json_path(v, "a.c"));
	/* Absent or untraversable paths are fine. */
	mcf_json_path_del(v, "a.b");
	mcf_json_path_del(v, "zz.y");
	mcf_json_path_del(v, "s.y");
	mcf_json_path_del(v, "a..c");
	mcf_json_path_del(NULL, "a");
	assert_non_null(mcf_json_path(v, "a.c"));
	mcf_json_path_del(v, "a");
	char *s = mcf_json_dump(v);
	assert_string_equal(s, "{\"s\":\"x\"}");
	free(s);
	json_decref(v);
}

static void
test_json_object_ensure(void **state)
{
	(void) state;
	json_t *v   = parse_ok("{\"status\":{\"x\":1},\"n\":5}");
	json_t *st  = mcf_json_object_ensure(v, "status");
	json_t *neu = mcf_json_object_ensure(v, "spec");

	assert_ptr_equal(st, json_object_get(v, "status"));
	assert_non_null(neu);
	assert_true(json_is_object(neu));
	assert_int_equal(json_object_size(neu), 0);
	assert_ptr_equal(mcf_json_object_ensure(v, "spec"), neu);
	/* A non-object under the key is not replaced. */
	assert_null(mcf_json_object_ensure(v, "n"));
	assert_int_equal(json_integer_value(json_object_get(v, "n")), 5);
	/* Not an object at all. */
	json_t *arr = json_array();
	assert_null(mcf_json_object_ensure(arr, "x"));
	assert_null(mcf_json_object_ensure(NULL, "x"));
	json_decref(arr);
	json_decref(v);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_json_parse_accepts_one_value),
		cmocka_unit_test(test_json_parse_uses_len_not_nul),
		cmocka_unit_test(test_json_parse_rejects_trailing_garbage),
		cmocka_unit_test(test_json_parse_reports_line_and_column),
		cmocka_unit_test(test_json_parse_rejects_bad_input),
		cmocka_unit_test(test_json_dump_is_compact_and_ordered),
		cmocka_unit_test(test_json_dump_large_value),
		cmocka_unit_test(test_json_path_finds_nested_values),
		cmocka_unit_test(test_json_path_missing_and_wrong_types),
		cmocka_unit_test(test_json_path_set_creates_intermediates),
		cmocka_unit_test(test_json_path_set_fails_and_still_steals),
		cmocka_unit_test(test_json_path_del_removes),
		cmocka_unit_test(test_json_object_ensure),
	};
	return cmocka_run_group_tests_name("json", tests, NULL, NULL);
}

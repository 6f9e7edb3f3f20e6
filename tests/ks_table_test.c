/*
 * ks_table_test.c — Table rendering: columns per kind, cells, printer
 * columns of CRDs, and apimachinery's human durations.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "alloc.h"
#include "json.h"
#include "store.h"
#include "table.h"

static void
test_table_human_duration(void **state)
{
	(void) state;
	static const struct {
		long long   s;
		const char *want;
	} cases[] = {
		{ -5, "<invalid>" }, { -1, "0s" }, { 0, "0s" }, { 45, "45s" },
		{ 119, "119s" }, { 120, "2m" }, { 310, "5m10s" },
		{ 600, "10m" }, { 179 * 60, "179m" }, { 3 * 3600, "3h" },
		{ 3 * 3600 + 120, "3h2m" }, { 30 * 3600, "30h" },
		{ 50 * 3600, "2d2h" }, { 10 * 86400, "10d" },
		{ 3 * 365 * 86400, "3y" }, { (3 * 365 + 4) * 86400, "3y4d" },
		{ 10LL * 365 * 86400, "10y" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char buf[32];
		ks_table_human_duration(cases[i].s, buf, sizeof(buf));
		assert_string_equal(buf, cases[i].want);
	}
}

static void
test_table_wanted(void **state)
{
	(void) state;
	assert_true(ks_table_wanted(
	    "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;"
	    "as=Table;v=v1beta1;g=meta.k8s.io,application/json"));
	assert_false(ks_table_wanted("application/json"));
	assert_false(ks_table_wanted(NULL));
	assert_false(ks_table_wanted(
	    "application/json, application/json;as=Table;v=v1;g=meta.k8s.io"));
}

static const char *
col_name(const json_t *cols, size_t i)
{
	return json_string_value(json_object_get(json_array_get(cols, i), "name"));
}

static void
test_table_builtin_columns_and_cells(void **state)
{
	(void) state;
	ks_store *st;
	ks_store_create(&st, 10);
	ks_plane      *root = ks_store_root(st);
	const ks_type *cm   = ks_plane_type(root, "", "v1", "configmaps");
	json_t        *cols = ks_table_columns(cm);
	assert_int_equal(json_array_size(cols), 3);
	assert_string_equal(col_name(cols, 0), "Name");
	assert_string_equal(col_name(cols, 1), "Data");
	assert_string_equal(col_name(cols, 2), "Age");
	json_decref(cols);
	json_t *obj = json_pack("{s:{s:s,s:s,s:s},s:{s:s,s:s},s:{s:s}}",
	    "metadata", "name", "c1", "namespace", "d", "creationTimestamp",
	    "2026-01-01T00:00:00Z", "data", "a", "1", "b", "2", "binaryData",
	    "c", "AA==");
	json_t *row = ks_table_row(cm, obj, 1767225600 + 90); /* +90 s */
	json_t *cells = json_object_get(row, "cells");
	assert_string_equal(json_string_value(json_array_get(cells, 0)), "c1");
	assert_int_equal(json_integer_value(json_array_get(cells, 1)), 3);
	assert_string_equal(json_string_value(json_array_get(cells, 2)), "90s");
	assert_string_equal(mcf_json_path_str(json_object_get(row, "object"),
				"metadata.namespace"),
	    "d");
	json_decref(row);
	json_decref(obj);

	const ks_type *pt = ks_plane_type(root, "resourcemanager.miloapis.com",
	    "v1alpha1", "projects");
	cols = ks_table_columns(pt);
	assert_string_equal(col_name(cols, 1), "Ready");
	json_decref(cols);
	json_t *p = json_pack("{s:{s:s},s:{s:[{s:s,s:s},{s:s,s:s}]}}",
	    "metadata", "name", "p1", "status", "conditions", "type", "Other",
	    "status", "False", "type", "Ready", "status", "True");
	row = ks_table_row(pt, p, 0);
	assert_string_equal(json_string_value(json_array_get(
				json_object_get(row, "cells"), 1)),
	    "True");
	json_decref(row);
	json_object_del(p, "status");
	row = ks_table_row(pt, p, 0);
	assert_string_equal(json_string_value(json_array_get(
				json_object_get(row, "cells"), 1)),
	    "<none>");
	json_decref(row);
	json_decref(p);
	ks_store_destroy(st);
}

static void
test_table_printer_columns(void **state)
{
	(void) state;
	ks_type t = { .group = "example.com", .resource = "widgets",
		.rules = KS_RULES_CUSTOM };
	t.printer_columns = json_pack("[{s:s,s:s,s:s},{s:s,s:s,s:s}]", "name",
	    "Size", "type", "integer", "jsonPath", ".spec.size", "name",
	    "Phase", "type", "string", "jsonPath",
	    ".status.conds[?(@.type=='A')].phase");
	json_t *cols = ks_table_columns(&t);
	assert_int_equal(json_array_size(cols), 3);
	assert_string_equal(col_name(cols, 1), "Size");
	json_decref(cols);
	json_t *obj = json_pack("{s:{s:s},s:{s:i},s:{s:[{s:s,s:s}]}}",
	    "metadata", "name", "w", "spec", "size", 3, "status", "conds",
	    "type", "A", "phase", "Up");
	json_t *row   = ks_table_row(&t, obj, 0);
	json_t *cells = json_object_get(row, "cells");
	assert_int_equal(json_integer_value(json_array_get(cells, 1)), 3);
	assert_string_equal(json_string_value(json_array_get(cells, 2)), "Up");
	json_decref(row);
	json_object_del(obj, "spec");
	row = ks_table_row(&t, obj, 0);
	assert_true(json_is_null(json_array_get(json_object_get(row, "cells"),
	    1)));
	json_decref(row);
	json_decref(obj);
	json_decref(t.printer_columns);
}

int
main(void)
{
	mcf_alloc_init_libs();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table_human_duration),
		cmocka_unit_test(test_table_wanted),
		cmocka_unit_test(test_table_builtin_columns_and_cells),
		cmocka_unit_test(test_table_printer_columns),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

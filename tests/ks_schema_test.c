/*
 * ks_schema_test.c — unit tests for kubesim's structural schemas
 * (tests/kubesim/schema.c): pruning, defaulting and validation of custom
 * resources.
 *
 * The Project and ProjectControlPlane schemas below are Milo's
 * openAPIV3Schemas as KUBE_API.md §5.1–5.2 give them, metav1.Condition
 * items included.  Expected causes (field, reason, message) are the ones
 * apiextensions-apiserver reports for the same object, so a mismatch means
 * kubesim answers a client differently from a real server.
 *
 * Schemas and objects are written with single quotes for readability;
 * jq() turns them into double quotes before parsing.
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
#include "schema.h"

/* metav1.Condition, as controller-gen writes it into Milo's CRDs. */
#define CONDITION_ITEMS                                                       \
	"{'type':'object',"                                                   \
	"'required':['lastTransitionTime','message','reason','status',"       \
	"'type'],"                                                            \
	"'properties':{"                                                      \
	"'lastTransitionTime':{'type':'string','format':'date-time'},"        \
	"'message':{'type':'string','maxLength':32768},"                      \
	"'observedGeneration':{'type':'integer','format':'int64',"            \
	"'minimum':0},"                                                       \
	"'reason':{'type':'string','maxLength':1024,'minLength':1,"           \
	"'pattern':'^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$'},"              \
	"'status':{'type':'string','enum':['True','False','Unknown']},"       \
	"'type':{'type':'string','maxLength':316,"                            \
	"'pattern':'^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\\\.[a-z0-9]([-a-z0-9]*" \
	"[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$'}}}"

static const char project_schema[]
    = "{'type':'object','required':['spec'],'properties':{"
      "'apiVersion':{'type':'string'},'kind':{'type':'string'},"
      "'metadata':{'type':'object'},"
      "'spec':{'type':'object','required':['ownerRef'],'properties':{"
      "'ownerRef':{'type':'object','required':['kind','name'],"
      "'properties':{'kind':{'type':'string','enum':['Organization']},"
      "'name':{'type':'string'}}}}},"
      "'status':{'type':'object','properties':{'conditions':{"
      "'type':'array','default':[{'type':'Ready','status':'Unknown',"
      "'reason':'Unknown','message':'Waiting for control plane to "
      "reconcile','lastTransitionTime':'1970-01-01T00:00:00Z'}],"
      "'items':" CONDITION_ITEMS "}}}}}";

static const char pcp_schema[]
    = "{'type':'object','required':['spec'],'properties':{"
      "'apiVersion':{'type':'string'},'kind':{'type':'string'},"
      "'metadata':{'type':'object'},"
      "'spec':{'type':'object'},"
      "'status':{'type':'object','default':{'conditions':[{"
      "'type':'ControlPlaneReady','status':'False','reason':'Creating',"
      "'message':'Creating a new control plane for the project',"
      "'lastTransitionTime':'1970-01-01T00:00:00Z'}]},"
      "'properties':{'conditions':{'type':'array','items':" CONDITION_ITEMS
      "}}}}}";

/* A Project that passes, with one Ready condition to break. */
static const char valid_project[]
    = "{'apiVersion':'resourcemanager.miloapis.com/v1alpha1',"
      "'kind':'Project','metadata':{'name':'p1','labels':{'a':'b'}},"
      "'spec':{'ownerRef':{'kind':'Organization','name':'org1'}},"
      "'status':{'conditions':[{'type':'Ready','status':'True',"
      "'reason':'Ready','message':'Project is ready',"
      "'observedGeneration':1,"
      "'lastTransitionTime':'2025-01-02T03:04:05Z'}]}}";

/* ---- helpers ---- */

/* Parses `text` after turning single quotes into double quotes. */
static json_t *
jq(const char *text)
{
	char *s = mcf_strdup(text);
	for (char *p = s; *p != '\0'; p++)
		if (*p == '\'')
			*p = '"';
	json_error_t e;
	json_t      *v = json_loads(s, 0, &e);
	if (v == NULL)
		fail_msg("bad test JSON at %d:%d: %s\n%s", e.line, e.column,
		    e.text, s);
	free(s);
	return v;
}

static ks_schema *
compile(const char *text)
{
	char       err[256];
	json_t    *js = jq(text);
	ks_schema *s  = ks_schema_compile(js, err, sizeof(err));
	json_decref(js);
	if (s == NULL)
		fail_msg("schema does not compile: %s", err);
	return s;
}

/* Compiles `text`, expecting failure; returns the error text (static). */
static const char *
compile_fails(const char *text)
{
	static char err[256];
	json_t     *js = jq(text);
	ks_schema  *s  = ks_schema_compile(js, err, sizeof(err));
	json_decref(js);
	if (s != NULL) {
		ks_schema_free(s);
		fail_msg("schema compiled but should not: %s", text);
	}
	assert_true(err[0] != '\0');
	return err;
}

static void
dump_result(const ks_schema_result *r)
{
	for (size_t i = 0; i < r->count; i++)
		print_message("  cause %zu: %s %s: %s\n", i,
		    r->causes[i].reason, r->causes[i].field,
		    r->causes[i].message);
}

/* Asserts that `r` holds exactly one cause, with these texts. */
static void
expect_one(const ks_schema_result *r, const char *reason, const char *field,
    const char *message)
{
	if (r->count != 1)
		dump_result(r);
	assert_int_equal(r->count, 1);
	assert_string_equal(r->causes[0].reason, reason);
	assert_string_equal(r->causes[0].field, field);
	if (message != NULL)
		assert_string_equal(r->causes[0].message, message);
}

static const ks_schema_cause *
find_cause(const ks_schema_result *r, const char *field, const char *reason)
{
	for (size_t i = 0; i < r->count; i++)
		if (strcmp(r->causes[i].field, field) == 0
		    && strcmp(r->causes[i].reason, reason) == 0)
			return &r->causes[i];
	dump_result(r);
	fail_msg("no %s cause for %s", reason, field);
	return NULL;
}

/* The first condition of a valid Project, for breaking it. */
static json_t *
first_condition(json_t *obj)
{
	json_t *c = json_array_get(
	    json_object_get(json_object_get(obj, "status"), "conditions"), 0);
	assert_non_null(c);
	return c;
}

/* Applies the Project schema to a valid Project whose first condition got
 * `key` set to `value` (stolen; NULL deletes the key). */
static void
apply_condition(const char *key, json_t *value, ks_schema_result *res)
{
	ks_schema *s   = compile(project_schema);
	json_t    *obj = jq(valid_project);
	if (value != NULL)
		json_object_set_new(first_condition(obj), key, value);
	else
		json_object_del(first_condition(obj), key);
	ks_schema_apply(s, obj, res);
	json_decref(obj);
	ks_schema_free(s);
}

/* ---- Project and ProjectControlPlane ---- */

static void
test_schema_valid_project_passes(void **state)
{
	(void) state;
	ks_schema       *s    = compile(project_schema);
	json_t          *obj  = jq(valid_project);
	json_t          *want = jq(valid_project);
	ks_schema_result res;
	assert_int_equal(ks_schema_apply(s, obj, &res), 0);
	assert_int_equal(res.count, 0);
	assert_int_equal(res.unknown_count, 0);
	/* Nothing pruned or defaulted: metadata is left alone. */
	assert_true(json_equal(obj, want));
	ks_schema_result_fini(&res);
	assert_null(res.causes);
	json_decref(want);
	json_decref(obj);
	ks_schema_free(s);
}

static void
test_schema_required_owner_ref(void **state)
{
	(void) state;
	ks_schema       *s   = compile(project_schema);
	json_t          *obj = jq("{'metadata':{'name':'p'},'spec':{}}");
	ks_schema_result res;
	assert_int_equal(ks_schema_apply(s, obj, &res), 1);
	expect_one(
	    &res, "FieldValueRequired", "spec.ownerRef", "Required value");
	ks_schema_result_fini(&res);
	json_decref(obj);

	obj = jq("{'metadata':{'name':'p'}}");
	ks_schema_apply(s, obj, &res);
	expect_one(&res, "FieldValueRequired", "spec", "Required value");
	ks_schema_result_fini(&res);
	json_decref(obj);

	obj = jq("{'spec':{'ownerRef':{}}}");
	ks_schema_apply(s, obj, &res);
	assert_int_equal(res.count, 2);
	find_cause(&res, "spec.ownerRef.kind", "FieldValueRequired");
	find_cause(&res, "spec.ownerRef.name", "FieldValueRequired");
	ks_schema_result_fini(&res);
	json_decref(obj);
	ks_schema_free(s);
}

static void
test_schema_owner_ref_kind_enum(void **state)
{
	(void) state;
	ks_schema *s   = compile(project_schema);
	json_t    *obj = jq("{'spec':{'ownerRef':{'kind':'Foo','name':'o'}}}");
	ks_schema_result res;
	ks_schema_apply(s, obj, &res);
	expect_one(&res, "FieldValueNotSupported", "spec.ownerRef.kind",
	    "Unsupported value: \"Foo\": supported values: \"Organization\"");
	ks_schema_result_fini(&res);
	json_decref(obj);
	ks_schema_free(s);
}

static void
test_schema_condition_missing_last_transition_time(void **state)
{
	(void) state;
	ks_schema_result res;
	apply_condition("lastTransitionTime", NULL, &res);
	expect_one(&res, "FieldValueRequired",
	    "status.conditions[0].lastTransitionTime", "Required value");
	ks_schema_result_fini(&res);
}

static void
test_schema_condition_empty_reason(void **state)
{
	(void) state;
	ks_schema_result res;
	apply_condition("reason", json_string(""), &res);
	/* Both minLength and pattern fail, as in kube-openapi. */
	assert_int_equal(res.count, 2);
	assert_string_equal(
	    res.causes[0].field, "status.conditions[0].reason");
	assert_string_equal(res.causes[0].reason, "FieldValueInvalid");
	assert_string_equal(res.causes[0].message,
	    "Invalid value: \"\": status.conditions[0].reason in body should "
	    "be at least 1 chars long");
	assert_string_equal(res.causes[1].reason, "FieldValueInvalid");
	assert_non_null(strstr(res.causes[1].message, "should match"));
	ks_schema_result_fini(&res);
}

static void
test_schema_condition_status_true_lowercase(void **state)
{
	(void) state;
	ks_schema_result res;
	apply_condition("status", json_string("true"), &res);
	expect_one(&res, "FieldValueNotSupported",
	    "status.conditions[0].status",
	    "Unsupported value: \"true\": supported values: \"True\", "
	    "\"False\", \"Unknown\"");
	ks_schema_result_fini(&res);

	apply_condition("status", json_true(), &res);
	expect_one(&res, "FieldValueTypeInvalid",
	    "status.conditions[0].status",
	    "Invalid value: \"boolean\": status.conditions[0].status in body "
	    "must be of type string: \"boolean\"");
	ks_schema_result_fini(&res);
}

static void
test_schema_condition_reason_with_spaces(void **state)
{
	(void) state;
	ks_schema_result res;
	apply_condition("reason", json_string("bad reason"), &res);
	expect_one(&res, "FieldValueInvalid", "status.conditions[0].reason",
	    "Invalid value: \"bad reason\": status.conditions[0].reason in "
	    "body should match '^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$'");
	ks_schema_result_fini(&res);

	/* The pattern's other edges: commas and colons inside, not last. */
	apply_condition("reason", json_string("A,b:c_9"), &res);
	assert_int_equal(res.count, 0);
	ks_schema_result_fini(&res);
	apply_condition("reason", json_string("Ab:"), &res);
	expect_one(
	    &res, "FieldValueInvalid", "status.conditions[0].reason", NULL);
	ks_schema_result_fini(&res);
}

static void
test_schema_condition_type_too_long(void **state)
{
	(void) state;
	char long_type[318];
	memset(long_type, 'a', 317);
	long_type[317] = '\0';
	ks_schema_result res;
	apply_condition("type", json_string(long_type), &res);
	expect_one(&res, "FieldValueTooLong", "status.conditions[0].type",
	    "Too long: may not be longer than 316");
	ks_schema_result_fini(&res);

	long_type[316] = '\0';
	apply_condition("type", json_string(long_type), &res);
	assert_int_equal(res.count, 0);
	ks_schema_result_fini(&res);

	/* Qualified condition types pass the type pattern. */
	apply_condition("type", json_string("example.com/Ready-2"), &res);
	assert_int_equal(res.count, 0);
	ks_schema_result_fini(&res);
	apply_condition("type", json_string("Example.com/Ready"), &res);
	expect_one(
	    &res, "FieldValueInvalid", "status.conditions[0].type", NULL);
	ks_schema_result_fini(&res);
}

static void
test_schema_condition_date_time(void **state)
{
	(void) state;
	ks_schema_result res;
	apply_condition("lastTransitionTime", json_string("x"), &res);
	expect_one(&res, "FieldValueTypeInvalid",
	    "status.conditions[0].lastTransitionTime",
	    "Invalid value: \"x\": status.conditions[0].lastTransitionTime in "
	    "body must be of type date-time: \"x\"");
	ks_schema_result_fini(&res);

	static const char *const good[] = { "2024-02-29T12:00:00Z",
		"2024-02-29t12:00:00z", "2025-01-02T03:04:05.123456+02:00",
		"1970-01-01T00:00:00-00:00", NULL };
	static const char *const bad[]  = { "2023-02-29T00:00:00Z",
		 "2025-13-01T00:00:00Z", "2025-01-01T24:00:00Z",
		 "2025-01-01 00:00:00Z", "2025-01-01T00:00:00",
		 "2025-01-01T00:00:00+0200", "2025-01-01", "", NULL };
	for (int i = 0; good[i] != NULL; i++) {
		apply_condition(
		    "lastTransitionTime", json_string(good[i]), &res);
		if (res.count != 0)
			fail_msg("%s should be a date-time", good[i]);
		ks_schema_result_fini(&res);
	}
	for (int i = 0; bad[i] != NULL; i++) {
		apply_condition(
		    "lastTransitionTime", json_string(bad[i]), &res);
		if (res.count != 1)
			fail_msg("%s should not be a date-time", bad[i]);
		ks_schema_result_fini(&res);
	}
}

static void
test_schema_condition_observed_generation(void **state)
{
	(void) state;
	ks_schema_result res;
	apply_condition("observedGeneration", json_integer(-1), &res);
	expect_one(&res, "FieldValueInvalid",
	    "status.conditions[0].observedGeneration",
	    "Invalid value: -1: status.conditions[0].observedGeneration in "
	    "body should be greater than or equal to 0");
	ks_schema_result_fini(&res);

	apply_condition("observedGeneration", json_string("1"), &res);
	expect_one(&res, "FieldValueTypeInvalid",
	    "status.conditions[0].observedGeneration",
	    "Invalid value: \"string\": "
	    "status.conditions[0].observedGeneration in body must be of type "
	    "integer: \"string\"");
	ks_schema_result_fini(&res);
}

static void
test_schema_prune_records_paths(void **state)
{
	(void) state;
	ks_schema *s   = compile(project_schema);
	json_t    *obj = jq(valid_project);
	json_object_set_new(
	    json_object_get(obj, "spec"), "foo", json_string("bar"));
	json_object_set_new(obj, "bogus", json_integer(1));
	json_object_set_new(first_condition(obj), "extra", json_object());
	ks_schema_result res;
	assert_int_equal(ks_schema_apply(s, obj, &res), 0);
	assert_int_equal(res.unknown_count, 3);
	assert_string_equal(res.unknown[0], "spec.foo");
	assert_string_equal(res.unknown[1], "status.conditions[0].extra");
	assert_string_equal(res.unknown[2], "bogus");
	json_t *want = jq(valid_project);
	assert_true(json_equal(obj, want));
	json_decref(want);
	ks_schema_result_fini(&res);
	assert_int_equal(res.unknown_count, 0);
	json_decref(obj);

	/* metadata, apiVersion and kind at the root are never pruned, even
	 * when the schema does not declare them. */
	ks_schema_free(s);
	s   = compile("{'type':'object','properties':{'spec':{'type':"
	                "'object'}}}");
	obj = jq("{'apiVersion':'v1','kind':'K','metadata':{'name':'n'},"
	         "'spec':{'x':1}}");
	ks_schema_apply(s, obj, &res);
	assert_int_equal(res.count, 0);
	assert_int_equal(res.unknown_count, 1);
	assert_string_equal(res.unknown[0], "spec.x");
	assert_non_null(json_object_get(obj, "apiVersion"));
	assert_non_null(json_object_get(obj, "kind"));
	assert_non_null(json_object_get(obj, "metadata"));
	assert_int_equal(json_object_size(json_object_get(obj, "spec")), 0);
	ks_schema_result_fini(&res);
	json_decref(obj);
	ks_schema_free(s);
}

static void
test_schema_default_conditions_only_when_status_exists(void **state)
{
	(void) state;
	ks_schema       *s   = compile(project_schema);
	json_t          *obj = jq("{'spec':{'ownerRef':{'kind':'Organization',"
	                                   "'name':'o'}}}");
	ks_schema_result res;
	ks_schema_apply(s, obj, &res);
	assert_int_equal(res.count, 0);
	assert_null(json_object_get(obj, "status"));
	ks_schema_result_fini(&res);

	/* A status object without conditions gets the Unknown condition. */
	json_object_set_new(obj, "status", json_object());
	ks_schema_apply(s, obj, &res);
	assert_int_equal(res.count, 0);
	json_t *c = first_condition(obj);
	assert_string_equal(
	    json_string_value(json_object_get(c, "type")), "Ready");
	assert_string_equal(
	    json_string_value(json_object_get(c, "status")), "Unknown");
	assert_string_equal(json_string_value(json_object_get(c, "message")),
	    "Waiting for control plane to reconcile");
	assert_string_equal(
	    json_string_value(json_object_get(c, "lastTransitionTime")),
	    "1970-01-01T00:00:00Z");
	ks_schema_result_fini(&res);

	/* The default is a copy: changing it does not change the schema. */
	json_object_set_new(c, "type", json_string("Changed"));
	json_t *other = jq("{'spec':{},'status':{}}");
	ks_schema_default(s, other);
	assert_string_equal(
	    json_string_value(json_object_get(first_condition(other), "type")),
	    "Ready");
	json_decref(other);

	/* Conditions present (even empty) are kept as they are. */
	json_object_set_new(
	    json_object_get(obj, "status"), "conditions", json_array());
	ks_schema_apply(s, obj, &res);
	assert_int_equal(json_array_size(json_object_get(
	                     json_object_get(obj, "status"), "conditions")),
	    0);
	ks_schema_result_fini(&res);
	json_decref(obj);
	ks_schema_free(s);
}

static void
test_schema_default_pcp_status(void **state)
{
	(void) state;
	ks_schema *s = compile(pcp_schema);
	/* The read path: ks_schema_default on a stored object. */
	json_t *obj = jq("{'metadata':{'name':'p1'},'spec':{}}");
	ks_schema_default(s, obj);
	json_t *c = first_condition(obj);
	assert_string_equal(json_string_value(json_object_get(c, "type")),
	    "ControlPlaneReady");
	assert_string_equal(
	    json_string_value(json_object_get(c, "status")), "False");
	assert_string_equal(
	    json_string_value(json_object_get(c, "reason")), "Creating");
	json_decref(obj);

	/* A written status is not replaced; spec has no properties, so
	 * everything in it is pruned. */
	obj = jq("{'spec':{'foo':1},'status':{'conditions':[]}}");
	ks_schema_result res;
	assert_int_equal(ks_schema_apply(s, obj, &res), 0);
	assert_int_equal(res.unknown_count, 1);
	assert_string_equal(res.unknown[0], "spec.foo");
	assert_int_equal(json_array_size(json_object_get(
	                     json_object_get(obj, "status"), "conditions")),
	    0);
	ks_schema_result_fini(&res);
	json_decref(obj);

	/* status: null is replaced by the default (non-nullable null). */
	obj = jq("{'spec':{},'status':null}");
	assert_int_equal(ks_schema_apply(s, obj, &res), 0);
	assert_true(json_is_object(json_object_get(obj, "status")));
	ks_schema_result_fini(&res);
	json_decref(obj);
	ks_schema_free(s);
}

static void
test_schema_default_is_recursive(void **state)
{
	(void) state;
	ks_schema *s = compile(
	    "{'type':'object','properties':{'spec':{'type':'object',"
	    "'properties':{'a':{'type':'object','default':{},"
	    "'properties':{'b':{'type':'string','default':'x'},"
	    "'n':{'type':'integer','default':3}}},"
	    "'list':{'type':'array','items':{'type':'object','properties':"
	    "{'k':{'type':'string','default':'d'}}}}}}}}");
	json_t          *obj = jq("{'spec':{'list':[{},{'k':'set'}]}}");
	ks_schema_result res;
	assert_int_equal(ks_schema_apply(s, obj, &res), 0);
	json_t *want = jq("{'spec':{'list':[{'k':'d'},{'k':'set'}],"
	                  "'a':{'b':'x','n':3}}}");
	assert_true(json_equal(obj, want));
	json_decref(want);
	ks_schema_result_fini(&res);
	json_decref(obj);

	/* No spec: nothing inside it is defaulted. */
	obj = jq("{}");
	ks_schema_default(s, obj);
	assert_int_equal(json_object_size(obj), 0);
	json_decref(obj);
	ks_schema_free(s);
}

static void
test_schema_preserve_unknown_fields(void **state)
{
	(void) state;
	ks_schema *s = compile(
	    "{'type':'object','properties':{'spec':{'type':'object',"
	    "'x-kubernetes-preserve-unknown-fields':true,'properties':{"
	    "'known':{'type':'object','properties':{'a':{'type':"
	    "'string'}}},'count':{'type':'integer'}}}}}");
	json_t          *obj = jq("{'spec':{'free':{'deep':[1,{'x':null}]},"
	                                   "'known':{'a':'1','b':2},'count':5}}");
	ks_schema_result res;
	assert_int_equal(ks_schema_apply(s, obj, &res), 0);
	/* Unknown fields of spec stay; known sub-schemas still prune. */
	assert_int_equal(res.unknown_count, 1);
	assert_string_equal(res.unknown[0], "spec.known.b");
	json_t *want = jq("{'spec':{'free':{'deep':[1,{'x':null}]},"
	                  "'known':{'a':'1'},'count':5}}");
	assert_true(json_equal(obj, want));
	json_decref(want);
	ks_schema_result_fini(&res);

	/* ... and still validate. */
	json_object_set_new(
	    json_object_get(obj, "spec"), "count", json_string("five"));
	ks_schema_apply(s, obj, &res);
	expect_one(&res, "FieldValueTypeInvalid", "spec.count", NULL);
	ks_schema_result_fini(&res);
	json_decref(obj);
	ks_schema_free(s);
}

static void
test_schema_additional_properties_map(void **state)
{
	(void) state;
	ks_schema *s = compile(
	    "{'type':'object','properties':{'spec':{'type':'object',"
	    "'properties':{'labels':{'type':'object','additionalProperties':"
	    "{'type':'string','maxLength':3}},"
	    "'any':{'type':'object','additionalProperties':true}}}}}");
	/* maxLength counts characters, not bytes: "\xc3\xa9" is one. */
	json_t          *obj = jq("{'spec':{'labels':{'ok':'abc','team':5,"
	                                   "'wide':'\xc3\xa9\xc3\xa9\xc3\xa9',"
	                                   "'long':'abcd'},'any':{'x':{'y':1}}}}");
	ks_schema_result res;
	assert_int_equal(ks_schema_apply(s, obj, &res), 2);
	assert_int_equal(res.unknown_count, 0);
	find_cause(&res, "spec.labels[team]", "FieldValueTypeInvalid");
	find_cause(&res, "spec.labels[long]", "FieldValueTooLong");
	ks_schema_result_fini(&res);
	json_decref(obj);
	ks_schema_free(s);
}

static void
test_schema_integer_vs_number(void **state)
{
	(void) state;
	ks_schema *s = compile(
	    "{'type':'object','properties':{'spec':{'type':'object',"
	    "'properties':{'i':{'type':'integer','maximum':10},"
	    "'n':{'type':'number','minimum':0.5,'exclusiveMinimum':true},"
	    "'b':{'type':'boolean'},"
	    "'ios':{'x-kubernetes-int-or-string':true}}}}}");
#define TYPE "FieldValueTypeInvalid"
#define INVALID "FieldValueInvalid"
	static const struct {
		const char *spec;
		const char *reason; /* NULL: valid */
		const char *field;
		const char *message;
	} cases[] = {
		{ "{'i':3,'n':3,'b':true,'ios':1}", NULL, NULL, NULL },
		{ "{'i':3.0,'n':3.5,'ios':'50%'}", NULL, NULL, NULL },
		{ "{'i':3.5}", TYPE, "spec.i",
		    "Invalid value: \"number\": spec.i in body must be of "
		    "type integer: \"number\"" },
		{ "{'i':'3'}", TYPE, "spec.i",
		    "Invalid value: \"string\": spec.i in body must be of "
		    "type integer: \"string\"" },
		{ "{'i':11}", INVALID, "spec.i",
		    "Invalid value: 11: spec.i in body should be less than or "
		    "equal to 10" },
		{ "{'n':0.5}", INVALID, "spec.n",
		    "Invalid value: 0.5: spec.n in body should be greater "
		    "than "
		    "0.5" },
		{ "{'n':true}", TYPE, "spec.n",
		    "Invalid value: \"boolean\": spec.n in body must be of "
		    "type number: \"boolean\"" },
		{ "{'b':'true'}", TYPE, "spec.b", NULL },
		{ "{'ios':[1]}", TYPE, "spec.ios",
		    "Invalid value: \"array\": spec.ios in body must be of "
		    "type integer,string: \"array\"" },
	};
#undef TYPE
#undef INVALID
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *obj = json_object();
		json_object_set_new(obj, "spec", jq(cases[i].spec));
		ks_schema_result res;
		ks_schema_apply(s, obj, &res);
		if (cases[i].reason == NULL && res.count != 0) {
			dump_result(&res);
			fail_msg(
			    "case %zu (%s) should pass", i, cases[i].spec);
		}
		if (cases[i].reason != NULL)
			expect_one(&res, cases[i].reason, cases[i].field,
			    cases[i].message);
		ks_schema_result_fini(&res);
		json_decref(obj);
	}
	ks_schema_free(s);
}

static void
test_schema_nullable(void **state)
{
	(void) state;
	ks_schema *s
	    = compile("{'type':'object','properties':{'spec':{'type':'object',"
	              "'required':['req'],'properties':{"
	              "'opt':{'type':'string','nullable':true},"
	              "'req':{'type':'string'},"
	              "'dflt':{'type':'string','default':'d'},"
	              "'list':{'type':'array','items':{'type':'string'}},"
	              "'nlist':{'type':'array','items':{'type':'string',"
	              "'nullable':true}}}}}}");
	json_t          *obj = jq("{'spec':{'opt':null,'req':'r','dflt':null,"
	                                   "'nlist':[null,'a']}}");
	ks_schema_result res;
	assert_int_equal(ks_schema_apply(s, obj, &res), 0);
	json_t *want = jq("{'spec':{'opt':null,'req':'r','dflt':'d',"
	                  "'nlist':[null,'a']}}");
	assert_true(json_equal(obj, want));
	json_decref(want);
	ks_schema_result_fini(&res);
	json_decref(obj);

	/* A non-nullable null without default is dropped, then missing. */
	obj = jq("{'spec':{'req':null}}");
	ks_schema_apply(s, obj, &res);
	expect_one(&res, "FieldValueRequired", "spec.req", "Required value");
	assert_int_equal(res.unknown_count, 0);
	ks_schema_result_fini(&res);
	json_decref(obj);

	/* Array elements cannot be dropped: a null item is a type error. */
	obj = jq("{'spec':{'req':'r','list':['a',null]}}");
	ks_schema_apply(s, obj, &res);
	expect_one(&res, "FieldValueTypeInvalid", "spec.list[1]",
	    "Invalid value: \"null\": spec.list[1] in body must be of type "
	    "string: \"null\"");
	ks_schema_result_fini(&res);
	json_decref(obj);
	ks_schema_free(s);
}

static void
test_schema_items_bounds(void **state)
{
	(void) state;
	ks_schema *s = compile(
	    "{'type':'object','properties':{'spec':{'type':'object',"
	    "'properties':{'l':{'type':'array','minItems':1,'maxItems':2,"
	    "'items':{'type':'integer','enum':[1,2,3]}}}}}}");
	json_t          *obj = jq("{'spec':{'l':[]}}");
	ks_schema_result res;
	ks_schema_apply(s, obj, &res);
	expect_one(&res, "FieldValueInvalid", "spec.l",
	    "Invalid value: 0: spec.l in body should have at least 1 items");
	ks_schema_result_fini(&res);
	json_decref(obj);

	obj = jq("{'spec':{'l':[1,2.0,4]}}");
	ks_schema_apply(s, obj, &res);
	assert_int_equal(res.count, 2);
	const ks_schema_cause *c
	    = find_cause(&res, "spec.l[2]", "FieldValueNotSupported");
	assert_string_equal(c->message,
	    "Unsupported value: 4: supported values: \"1\", \"2\", \"3\"");
	c = find_cause(&res, "spec.l", "FieldValueTooMany");
	assert_string_equal(
	    c->message, "Too many: 3: must have at most 2 items");
	ks_schema_result_fini(&res);
	json_decref(obj);
	ks_schema_free(s);
}

static void
test_schema_wrong_types_in_object(void **state)
{
	(void) state;
	ks_schema *s = compile(project_schema);
	static const struct {
		const char *obj;
		const char *field;
		const char *got;
	} cases[] = {
		{ "{'spec':'x'}", "spec", "string" },
		{ "{'spec':{'ownerRef':[]}}", "spec.ownerRef", "array" },
		{ "{'spec':{'ownerRef':{'kind':1,'name':'o'}}}",
		    "spec.ownerRef.kind", "integer" },
		{ "{'spec':{'ownerRef':{'kind':'Organization','name':'o'}},"
		  "'status':{'conditions':{}}}",
		    "status.conditions", "object" },
		{ "{'spec':{'ownerRef':{'kind':'Organization','name':'o'}},"
		  "'status':{'conditions':[7]}}",
		    "status.conditions[0]", "integer" },
		{ "{'spec':{'ownerRef':{'kind':'Organization','name':'o'}},"
		  "'status':[]}",
		    "status", "array" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t          *obj = jq(cases[i].obj);
		ks_schema_result res;
		ks_schema_apply(s, obj, &res);
		const ks_schema_cause *c = find_cause(
		    &res, cases[i].field, "FieldValueTypeInvalid");
		char want[64];
		snprintf(
		    want, sizeof(want), "Invalid value: \"%s\"", cases[i].got);
		assert_memory_equal(c->message, want, strlen(want));
		ks_schema_result_fini(&res);
		json_decref(obj);
	}

	/* Not an object at all. */
	json_t          *arr = json_array();
	ks_schema_result res;
	assert_int_equal(ks_schema_apply(s, arr, &res), 1);
	assert_string_equal(res.causes[0].reason, "FieldValueTypeInvalid");
	ks_schema_result_fini(&res);
	json_decref(arr);
	ks_schema_free(s);
}

static void
test_schema_hostile_strings(void **state)
{
	(void) state;
	/* A 4 MiB reason: too long, and no pattern blow-up. */
	size_t big_len = 4u << 20;
	char  *big     = mcf_malloc(big_len + 1);
	memset(big, 'A', big_len);
	big[big_len] = '\0';
	ks_schema_result res;
	apply_condition("reason", json_stringn(big, big_len), &res);
	expect_one(&res, "FieldValueTooLong", "status.conditions[0].reason",
	    "Too long: may not be longer than 1024");
	ks_schema_result_fini(&res);
	big[big_len - 1] = ' ';
	apply_condition("reason", json_stringn(big, big_len), &res);
	assert_int_equal(res.count, 2);
	ks_schema_result_fini(&res);
	free(big);

	/* NUL bytes cannot sneak past a pattern. */
	apply_condition("reason", json_stringn("Ready\0 x", 8), &res);
	expect_one(&res, "FieldValueInvalid", "status.conditions[0].reason",
	    "Invalid value: \"Ready\\x00 x\": status.conditions[0].reason in "
	    "body should match '^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$'");
	ks_schema_result_fini(&res);

	/* Quotes, newlines and invalid UTF-8 are quoted as Go does. */
	apply_condition("status", json_stringn_nocheck("a\"b\n\xff", 5), &res);
	expect_one(&res, "FieldValueNotSupported",
	    "status.conditions[0].status",
	    "Unsupported value: \"a\\\"b\\n\\xff\": supported values: "
	    "\"True\", \"False\", \"Unknown\"");
	ks_schema_result_fini(&res);

	/* A key with a NUL byte is pruned and named safely. */
	ks_schema *s   = compile(project_schema);
	json_t    *obj = jq(valid_project);
	json_object_setn_new(
	    json_object_get(obj, "spec"), "fo\0o", 4, json_true());
	ks_schema_apply(s, obj, &res);
	assert_int_equal(res.count, 0);
	assert_int_equal(res.unknown_count, 1);
	assert_string_equal(res.unknown[0], "spec.fo\\x00o");
	ks_schema_result_fini(&res);
	json_decref(obj);
	ks_schema_free(s);
}

/* Builds {"n":{"n":...}} `depth` levels deep, iteratively. */
static json_t *
nested_object(int depth)
{
	json_t *v = json_object();
	for (int i = 0; i < depth; i++) {
		json_t *o = json_object();
		json_object_set_new(o, "n", v);
		v = o;
	}
	return v;
}

/* A schema text of `depth` nested `properties` levels below the root. */
static char *
nested_schema(int depth)
{
	char *s = mcf_strdup("{'type':'string'}");
	for (int i = 0; i < depth; i++) {
		char *o = mcf_asprintf(
		    "{'type':'object','properties':{'n':%s}}", s);
		free(s);
		s = o;
	}
	return s;
}

static void
test_schema_deep_nesting_guard(void **state)
{
	(void) state;
	/* 64 levels compile, 65 do not. */
	char      *text = nested_schema(64);
	ks_schema *s    = compile(text);
	free(text);
	json_t          *obj = nested_object(70);
	ks_schema_result res;
	ks_schema_apply(s, obj, &res);
	/* Level 64 is a string schema holding an object. */
	assert_int_equal(res.count, 1);
	assert_string_equal(res.causes[0].reason, "FieldValueTypeInvalid");
	ks_schema_result_fini(&res);
	json_decref(obj);
	ks_schema_free(s);

	text            = nested_schema(65);
	const char *err = compile_fails(text);
	free(text);
	assert_non_null(strstr(err, "nested more than 64 levels"));
	assert_non_null(strstr(err, "properties[n].properties[n]"));

	/* Objects far deeper than any schema: pruned or preserved without
	 * recursing through them. */
	s   = compile(project_schema);
	obj = jq(valid_project);
	json_object_set_new(
	    json_object_get(obj, "spec"), "foo", nested_object(3000));
	ks_schema_apply(s, obj, &res);
	assert_int_equal(res.count, 0);
	assert_int_equal(res.unknown_count, 1);
	ks_schema_result_fini(&res);
	json_decref(obj);
	ks_schema_free(s);

	s   = compile("{'type':'object','x-kubernetes-preserve-unknown-"
	                "fields':true}");
	obj = nested_object(3000);
	ks_schema_apply(s, obj, &res);
	assert_int_equal(res.count, 0);
	assert_int_equal(res.unknown_count, 0);
	ks_schema_result_fini(&res);
	json_decref(obj);
	ks_schema_free(s);
}

static void
test_schema_invalid_regex_fails_compile(void **state)
{
	(void) state;
	const char *err = compile_fails(
	    "{'type':'object','properties':{'spec':{'type':'object',"
	    "'properties':{'x':{'type':'string','pattern':'(abc'}}}}}");
	assert_non_null(strstr(err,
	    "properties[spec].properties[x].pattern: Invalid value: "
	    "\"(abc\": must be a valid regular expression"));

	static const char *const bad[] = { "[z-a]", "a{1001}", "\\\\p{L}",
		"(?m)^a$", "\\\\1", "[[:foo:]]", "*a", "a\\\\", "[abc",
		"(?P<n", "[!-\\\\]]", NULL };
	for (int i = 0; bad[i] != NULL; i++) {
		char *text
		    = mcf_asprintf("{'type':'string','pattern':'%s'}", bad[i]);
		err = compile_fails(text);
		if (strstr(err, "pattern: Invalid value") == NULL)
			fail_msg("%s: %s", bad[i], err);
		free(text);
	}
}

/* RE2 syntax that POSIX spells differently is translated. */
static void
test_schema_regex_translation(void **state)
{
	(void) state;
	static const struct {
		const char *pattern; /* JSON text inside single quotes */
		const char *value;
		bool        match;
	} cases[] = {
		{ "^\\\\d+$", "123", true },
		{ "^\\\\d+$", "12a", false },
		{ "^[\\\\w.-]+$", "a_b.c-d", true },
		{ "^[\\\\w.-]+$", "a b", false },
		{ "^\\\\s*$", " \\t", true },
		{ "^\\\\S+$", "ab c", false },
		{ "^[^\\\\d]$", "x", true },
		{ "(?i)^abc$", "AbC", true },
		{ "^a.c$", "abc", true },
		{ "^a.c$", "a\\nc", false },
		{ "(?s)^a.c$", "a\\nc", true },
		{ "^a\\\\.c$", "abc", false },
		{ "^[\\\\]\\\\[]+$", "][", true },
		{ "^[\\\\-a]+$", "-a", true },
		{ "^[\\\\^]$", "^", true },
		{ "^(?:ab)+$", "abab", true },
		{ "^(?P<x>a)b$", "ab", true },
		{ "^a+?$", "aaa", true },
		{ "^a{2}$", "aa", true },
		{ "^a{,2}$", "a{,2}", true },
		{ "^\\\\x41\\\\x{42}$", "AB", true },
		{ "^\\\\Qa.b\\\\E$", "a.b", true },
		{ "^\\\\Qa.b\\\\E$", "axb", false },
		{ "\\\\Aab\\\\z", "ab", true },
		{ "^[[:alpha:]]+$", "abc", true },
		{ "^x}$", "x}", true },
		{ "^\\\\/$", "/", true },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *text = mcf_asprintf(
		    "{'type':'object','properties':{'v':{'type':'string',"
		    "'pattern':'%s'}}}",
		    cases[i].pattern);
		ks_schema *s = compile(text);
		free(text);
		char   *otext = mcf_asprintf("{'v':'%s'}", cases[i].value);
		json_t *obj   = jq(otext);
		free(otext);
		ks_schema_result res;
		ks_schema_apply(s, obj, &res);
		if ((res.count == 0) != cases[i].match)
			fail_msg("pattern %s on %s: expected %s",
			    cases[i].pattern, cases[i].value,
			    cases[i].match ? "match" : "no match");
		ks_schema_result_fini(&res);
		json_decref(obj);
		ks_schema_free(s);
	}
}

static void
test_schema_bad_keywords_fail_compile(void **state)
{
	(void) state;
	static const struct {
		const char *schema;
		const char *err;
	} cases[] = {
		{ "[]", "must be a schema object" },
		{ "{'type':5}", "type: must be a string" },
		{ "{'type':'map'}", "type: Unsupported value: \"map\"" },
		{ "{'properties':[]}", "properties: must be an object" },
		{ "{'properties':{'a':3}}",
		    "properties[a]: must be a schema "
		    "object" },
		{ "{'required':'a'}", "required: must be an array" },
		{ "{'required':[1]}", "required: must be an array" },
		{ "{'items':[{}]}", "items: must be a schema object" },
		{ "{'enum':{}}", "enum: must be an array" },
		{ "{'minLength':-1}", "minLength: must be a non-negative" },
		{ "{'maxItems':1.5}", "maxItems: must be a non-negative" },
		{ "{'minimum':'0'}", "minimum: must be a number" },
		{ "{'exclusiveMaximum':1}",
		    "exclusiveMaximum: must be a "
		    "boolean" },
		{ "{'nullable':'yes'}", "nullable: must be a boolean" },
		{ "{'additionalProperties':3}",
		    "additionalProperties: must "
		    "be a schema object or a "
		    "boolean" },
		{ "{'pattern':7}", "pattern: must be a string" },
		{ "{'format':[]}", "format: must be a string" },
		{ "{'properties':{'s':{'items':{'x-kubernetes-preserve-"
		  "unknown-fields':'y'}}}}",
		    "properties[s].items.x-kubernetes-preserve-unknown-fields:"
		    " "
		    "must be a boolean" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *err = compile_fails(cases[i].schema);
		if (strstr(err, cases[i].err) == NULL)
			fail_msg("%s: got \"%s\", want \"%s\"",
			    cases[i].schema, err, cases[i].err);
	}

	/* A NULL or tiny error buffer is fine. */
	json_t *js = jq("{'type':5}");
	assert_null(ks_schema_compile(js, NULL, 0));
	char small[8];
	assert_null(ks_schema_compile(js, small, sizeof(small)));
	assert_int_equal(strlen(small), sizeof(small) - 1);
	json_decref(js);

	/* Unknown keywords, other formats, allOf... are ignored. */
	ks_schema *s = compile("{'type':'object','description':'d',"
	                       "'allOf':[{'x':1}],'properties':{'a':{"
	                       "'type':'string','format':'uuid'}}}");
	ks_schema_free(s);
	ks_schema_free(NULL);
}

static void
test_schema_result_message_text(void **state)
{
	(void) state;
	ks_schema       *s   = compile(project_schema);
	json_t          *obj = jq("{'spec':{}}");
	ks_schema_result res;
	ks_schema_apply(s, obj, &res);
	char *msg = ks_schema_result_message(&res);
	assert_string_equal(msg, "spec.ownerRef: Required value");
	free(msg);
	ks_schema_result_fini(&res);
	json_decref(obj);

	/* Several causes: bracketed, as apimachinery's aggregate prints. */
	obj = jq("{'spec':{'ownerRef':{'kind':'Foo'}}}");
	ks_schema_apply(s, obj, &res);
	msg = ks_schema_result_message(&res);
	assert_string_equal(msg,
	    "[spec.ownerRef.kind: Unsupported value: \"Foo\": supported "
	    "values: \"Organization\", spec.ownerRef.name: Required value]");
	free(msg);
	ks_schema_result_fini(&res);
	json_decref(obj);

	/* Nothing wrong: empty text. */
	obj = jq(valid_project);
	ks_schema_apply(s, obj, &res);
	msg = ks_schema_result_message(&res);
	assert_string_equal(msg, "");
	free(msg);
	ks_schema_result_fini(&res);
	json_decref(obj);

	/* Identical causes are printed once. */
	ks_schema_result dup = { 0 };
	dup.count            = 2;
	dup.causes           = mcf_calloc(2, sizeof(*dup.causes));
	for (int i = 0; i < 2; i++) {
		dup.causes[i].reason  = mcf_strdup("FieldValueRequired");
		dup.causes[i].field   = mcf_strdup("spec.x");
		dup.causes[i].message = mcf_strdup("Required value");
	}
	msg = ks_schema_result_message(&dup);
	assert_string_equal(msg, "spec.x: Required value");
	free(msg);
	ks_schema_result_fini(&dup);
	ks_schema_free(s);
}

static void
test_schema_embedded_resource(void **state)
{
	(void) state;
	ks_schema *s
	    = compile("{'type':'object','properties':{'spec':{'type':'object',"
	              "'properties':{'template':{'type':'object',"
	              "'x-kubernetes-embedded-resource':true,'properties':{"
	              "'spec':{'type':'object'}}}}}}}");
	json_t *obj = jq("{'spec':{'template':{'apiVersion':'v1','kind':'K',"
	                 "'metadata':{'name':'x'},'spec':{'a':1},'z':1}}}");
	ks_schema_result res;
	assert_int_equal(ks_schema_apply(s, obj, &res), 0);
	assert_int_equal(res.unknown_count, 2);
	assert_string_equal(res.unknown[0], "spec.template.spec.a");
	assert_string_equal(res.unknown[1], "spec.template.z");
	json_t *t = json_object_get(json_object_get(obj, "spec"), "template");
	assert_non_null(json_object_get(t, "metadata"));
	assert_non_null(json_object_get(t, "kind"));
	ks_schema_result_fini(&res);
	json_decref(obj);
	ks_schema_free(s);
}

int
main(void)
{
	mcf_alloc_init_libs();
	const struct CMUnitTest tests[] = {
		{ "a valid Project passes untouched",
		    test_schema_valid_project_passes, NULL, NULL, NULL },
		{ "spec.ownerRef is required", test_schema_required_owner_ref,
		    NULL, NULL, NULL },
		{ "ownerRef.kind enum", test_schema_owner_ref_kind_enum, NULL,
		    NULL, NULL },
		{ "condition without lastTransitionTime",
		    test_schema_condition_missing_last_transition_time, NULL,
		    NULL, NULL },
		{ "condition with empty reason",
		    test_schema_condition_empty_reason, NULL, NULL, NULL },
		{ "condition status \"true\"",
		    test_schema_condition_status_true_lowercase, NULL, NULL,
		    NULL },
		{ "condition reason with spaces",
		    test_schema_condition_reason_with_spaces, NULL, NULL,
		    NULL },
		{ "condition type too long",
		    test_schema_condition_type_too_long, NULL, NULL, NULL },
		{ "condition lastTransitionTime date-time",
		    test_schema_condition_date_time, NULL, NULL, NULL },
		{ "condition observedGeneration",
		    test_schema_condition_observed_generation, NULL, NULL,
		    NULL },
		{ "pruning records paths", test_schema_prune_records_paths,
		    NULL, NULL, NULL },
		{ "conditions default only when status exists",
		    test_schema_default_conditions_only_when_status_exists,
		    NULL, NULL, NULL },
		{ "ProjectControlPlane status default",
		    test_schema_default_pcp_status, NULL, NULL, NULL },
		{ "defaults are defaulted too",
		    test_schema_default_is_recursive, NULL, NULL, NULL },
		{ "x-kubernetes-preserve-unknown-fields",
		    test_schema_preserve_unknown_fields, NULL, NULL, NULL },
		{ "additionalProperties maps",
		    test_schema_additional_properties_map, NULL, NULL, NULL },
		{ "integer vs number", test_schema_integer_vs_number, NULL,
		    NULL, NULL },
		{ "nullable", test_schema_nullable, NULL, NULL, NULL },
		{ "minItems, maxItems, enum of numbers",
		    test_schema_items_bounds, NULL, NULL, NULL },
		{ "wrong JSON types in the object",
		    test_schema_wrong_types_in_object, NULL, NULL, NULL },
		{ "hostile strings and keys", test_schema_hostile_strings,
		    NULL, NULL, NULL },
		{ "deep nesting guard", test_schema_deep_nesting_guard, NULL,
		    NULL, NULL },
		{ "invalid regex fails compile",
		    test_schema_invalid_regex_fails_compile, NULL, NULL,
		    NULL },
		{ "RE2 patterns are translated", test_schema_regex_translation,
		    NULL, NULL, NULL },
		{ "wrong keyword types fail compile",
		    test_schema_bad_keywords_fail_compile, NULL, NULL, NULL },
		{ "result message text", test_schema_result_message_text, NULL,
		    NULL, NULL },
		{ "x-kubernetes-embedded-resource",
		    test_schema_embedded_resource, NULL, NULL, NULL },
	};
	return cmocka_run_group_tests_name("ks_schema", tests, NULL, NULL);
}

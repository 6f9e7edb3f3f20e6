/*
 * ks_api_test.c — in-process tests of kubesim's HTTP API
 * (tests/kubesim/api.c and the modules behind it), against the contract
 * in KUBE_API.md part 2 §2 (storage), §3 (list and watch) and §4 (writes),
 * plus the Milo planes of §5.3 and the CRD and discovery additions of
 * part 1.
 *
 * Each test gets a fresh ks_sim (tests/ks_fixture.c) built exactly as
 * kubesim's main.c builds it, listening on 127.0.0.1 port 0, with ks_httpd_run() in its own thread.
 * The test thread drives it over HTTP with libcurl: one easy handle (kept
 * alive between requests) for ordinary requests, and one multi handle per
 * watch stream, whose received bytes are split into JSON lines as they
 * arrive.  Every wait is bounded by a deadline stretched by
 * MCF_TEST_TIMEOUT_SCALE under the sanitizers.
 *
 * Assertions about the contract are soft (EXPECT_*): a test records every
 * broken expectation with the request and the reply, then fails at its end,
 * so one misbehaviour does not hide the next.  Steps a test cannot go on
 * without (creating its objects) are hard (NEED_*).  Every response, string
 * and stream a test allocates is registered in the fixture and freed by the
 * teardown, even when the test stops early.
 */
#include <ctype.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>

#include "alloc.h"
#include "api.h"
#include "err.h"
#include "httpd.h"
#include "json.h"
#include "log.h"
#include "milo.h"
#include "ops.h"
#include "sim.h"
#include "store.h"
#include "watch.h"

#include "ks_fixture.h"

#define MILO_GV "/apis/resourcemanager.miloapis.com/v1alpha1"
#define PROJECTS MILO_GV "/projects"
#define PCPS "/apis/infrastructure.miloapis.com/v1alpha1/projectcontrolplanes"
#define CRDS "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
#define NOT_FOUND_MSG "the server could not find the requested resource"
#define KUBECTL_ACCEPT                                                        \
	"application/json;g=apidiscovery.k8s.io;v=v2;as="                     \
	"APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;"       \
	"v=v2beta1;as=APIGroupDiscoveryList,application/json"
#define CONFLICT_TAIL                                                         \
	"the object has been modified; please apply your changes to the "     \
	"latest version and try again"
#define BOOKMARK_MS 300

/* Short local names for the shared fixture (tests/ks_fixture.h). */
typedef ks_fx       fx;
typedef ks_fx_resp  resp;
typedef ks_fx_dbuf  dbuf;
typedef ks_fx_watch wstream;

#define timeout_scale ks_fx_timeout_scale()
#define now_ms ks_fx_now_ms
#define deadline ks_fx_deadline
#define sleep_ms ks_fx_sleep_ms
#define J ks_fx_json_at
#define JS ks_fx_json_str
#define JI ks_fx_json_int
#define nz ks_fx_nz
#define rv_num ks_fx_rv_num
#define keep_str ks_fx_keep_str
#define S ks_fx_str
#define Q ks_fx_quote
#define D ks_fx_dump
#define expect_at ks_fx_expect_at
#define expect_code_at ks_fx_expect_code_at
#define expect_str_at ks_fx_expect_str_at
#define expect_status_at ks_fx_expect_status_at
#define MSG_EXACT KS_FX_MSG_EXACT
#define EXPECT KS_FX_EXPECT
#define EXPECT_CODE KS_FX_EXPECT_CODE
#define EXPECT_STR KS_FX_EXPECT_STR
#define EXPECT_JS KS_FX_EXPECT_JS
#define EXPECT_INT KS_FX_EXPECT_INT
#define EXPECT_STATUS KS_FX_EXPECT_STATUS
#define EXPECT_STATUS_PREFIX KS_FX_EXPECT_STATUS_PREFIX
#define NEED_CODE KS_FX_NEED_CODE
#define NEED KS_FX_NEED
#define finish ks_fx_finish
#define GET ks_fx_get
#define POST ks_fx_post
#define PUT ks_fx_put
#define MERGE ks_fx_merge
#define header_in ks_fx_header_in
#define header ks_fx_header
#define watch_open ks_fx_watch_open
#define watch_close ks_fx_watch_close
#define watch_wait ks_fx_watch_wait
#define watch_wait_done ks_fx_watch_wait_done
#define ev ks_fx_ev
#define ev_type ks_fx_ev_type
#define ev_summary ks_fx_ev_summary
#define copy_of ks_fx_copy
#define EXPECT_STATUS_CONTAINS KS_FX_EXPECT_STATUS_CONTAINS
#define DEL ks_fx_del
#define watch_idle ks_fx_watch_idle
#define ev_name ks_fx_ev_name
#define ev_rv ks_fx_ev_rv

static resp *
GET_ACCEPT(fx *f, const char *path, const char *accept)
{
	ks_fx_ropt o = { .accept = accept };
	return ks_fx_req_ok(f, &o, "GET", path, NULL);
}

static resp *
PATCH(fx *f, const char *path, const char *ctype, const char *body)
{
	ks_fx_ropt o = { .ctype = ctype };
	return ks_fx_req_ok(f, &o, "PATCH", path, body);
}

/* The condition of `type` in obj.status.conditions, or NULL. */
static json_t *
condition(const json_t *obj, const char *type)
{
	json_t *conds = J(obj, "status.conditions");
	size_t  i;
	json_t *c;
	json_array_foreach(conds, i, c)
	{
		const char *t = json_string_value(json_object_get(c, "type"));
		if (t != NULL && strcmp(t, type) == 0)
			return c;
	}
	return NULL;
}

static bool
array_has_str(const json_t *arr, const char *s)
{
	size_t  i;
	json_t *v;
	json_array_foreach(arr, i, v) if (json_is_string(v)
	    && strcmp(json_string_value(v), s) == 0) return true;
	return false;
}

/* --- the fixture ------------------------------------------------------ */

/* A fresh kubesim per test, requests on one keep-alive handle; `milo_ms`
 * >= 0 also runs the simulated Milo controller with that delay. */
static int
fx_setup(void **state, int64_t milo_ms)
{
	ks_fx_options o = { .srv = { .bookmark_ms = BOOKMARK_MS,
		                .ready_after_ms       = milo_ms },
		.name                               = "ks_api_test.c" };
	*state = ks_fx_create(&o);
	return 0;
}

static int
setup(void **state)
{
	return fx_setup(state, -1);
}

static int
setup_milo(void **state)
{
	return fx_setup(state, 0);
}

static int
teardown(void **state)
{
	ks_fx_destroy(*state);
	return 0;
}

/* --- the API used by the tests ---------------------------------------- */

/* The plane's resourceVersion counter as a list reports it. `pfx` is ""
 * for the root or a project prefix. */
static uint64_t
plane_rv(fx *f, const char *pfx)
{
	resp *r = GET(f, S(f, "%s/api/v1/namespaces", pfx));
	NEED_CODE(f, r, 200);
	const char *rv = JS(r->j, "metadata.resourceVersion");
	NEED(f, rv != NULL);
	return rv_num(rv);
}

static const char *
cm_path(fx *f, const char *pfx, const char *ns, const char *name)
{
	if (name == NULL)
		return S(f, "%s/api/v1/namespaces/%s/configmaps", pfx, ns);
	return S(f, "%s/api/v1/namespaces/%s/configmaps/%s", pfx, ns, name);
}

static const char *
proj_prefix(fx *f, const char *project)
{
	return S(f, PROJECTS "/%s/control-plane", project);
}

/* Creates ConfigMap ns/name with data {k: v} (required to succeed). */
static resp *
mk_cm(fx *f, const char *pfx, const char *ns, const char *name, const char *k,
    const char *v)
{
	resp *r = POST(f, cm_path(f, pfx, ns, NULL),
	    Q(f, "{'metadata':{'name':'%s'},'data':{'%s':'%s'}}", name, k, v));
	NEED_CODE(f, r, 201);
	return r;
}

static resp *
mk_ns(fx *f, const char *pfx, const char *name)
{
	resp *r = POST(f, S(f, "%s/api/v1/namespaces", pfx),
	    Q(f, "{'metadata':{'name':'%s'}}", name));
	NEED_CODE(f, r, 201);
	return r;
}

static const char *
project_body(fx *f, const char *name, const char *extra_meta)
{
	return Q(f,
	    "{'apiVersion':'resourcemanager.miloapis.com/v1alpha1',"
	    "'kind':'Project','metadata':{'name':'%s'%s},"
	    "'spec':{'ownerRef':{'kind':'Organization','name':'org1'}}}",
	    name, extra_meta ? extra_meta : "");
}

static resp *
mk_project(fx *f, const char *name, const char *extra_meta)
{
	resp *r = POST(f, PROJECTS, project_body(f, name, extra_meta));
	NEED_CODE(f, r, 201);
	return r;
}

/* A metav1.Condition that satisfies Milo's schema. */
static const char *
cond_json(fx *f, const char *type, const char *status)
{
	return Q(f,
	    "{'type':'%s','status':'%s','reason':'Testing','message':'set by "
	    "the test','lastTransitionTime':'2025-01-01T00:00:00Z'}",
	    type, status);
}

/* Names of the items of a list response, comma-joined ("a,b"). */
static const char *
names_of(fx *f, const resp *r)
{
	char   *out   = mcf_strdup("");
	json_t *items = J(r->j, "items");
	size_t  i;
	json_t *it;
	json_array_foreach(items, i, it)
	{
		char *n = mcf_asprintf("%s%s%s", out, i ? "," : "",
		    JS(it, "metadata.name") ? JS(it, "metadata.name") : "?");
		free(out);
		out = n;
	}
	return keep_str(f, out);
}

static resp *poll_until(
    fx *f, const char *path, bool (*pred)(const resp *), int ms);
static bool is_404(const resp *r);

/* ===================================================================== */
/* Bad input                                                              */
/* ===================================================================== */

static void
test_api_malformed_json_400(void **state)
{
	fx         *f      = *state;
	uint64_t    before = plane_rv(f, "");
	const char *col    = cm_path(f, "", "default", NULL);

	resp *r = POST(f, col, "{\"metadata\":{\"name\":\"bad\"");
	EXPECT_STATUS(f, r, 400, "BadRequest", NULL);
	r = POST(f, col, "{\"metadata\":{\"name\":\"bad\"}} trailing");
	EXPECT_STATUS(f, r, 400, "BadRequest", NULL);
	r = POST(f, col, "[1,2,3]");
	EXPECT_STATUS(f, r, 400, "BadRequest", NULL);
	r = POST(f, col, "");
	EXPECT_STATUS(f, r, 400, "BadRequest", NULL);

	mk_cm(f, "", "default", "good", "a", "1");
	uint64_t mid = plane_rv(f, "");
	r            = PUT(f, cm_path(f, "", "default", "good"), "{\"data\":");
	EXPECT_STATUS(f, r, 400, "BadRequest", NULL);
	r = MERGE(f, cm_path(f, "", "default", "good"), "{\"data\":");
	EXPECT_STATUS(f, r, 400, "BadRequest", NULL);

	EXPECT_INT(f, NULL, mid, before + 1);
	EXPECT_INT(f, NULL, plane_rv(f, ""), mid);
	r = GET(f, cm_path(f, "", "default", "bad"));
	EXPECT_CODE(f, r, 404);
	r = GET(f, cm_path(f, "", "default", "good"));
	EXPECT_JS(f, r, "data.a", "1");
	finish(f);
}

static void
test_api_body_mismatching_url_400(void **state)
{
	fx         *f      = *state;
	uint64_t    before = plane_rv(f, "");
	const char *col    = cm_path(f, "", "default", NULL);

	resp *r = POST(f, col,
	    Q(f,
	        "{'apiVersion':'v1','kind':'Secret','metadata':{'name':"
	        "'km1'}}"));
	EXPECT_STATUS(f, r, 400, "BadRequest", NULL);
	r = POST(f, col,
	    Q(f,
	        "{'apiVersion':'apps/v1','kind':'ConfigMap','metadata':{"
	        "'name':'km2'}}"));
	EXPECT_STATUS(f, r, 400, "BadRequest", NULL);
	r = POST(f, PROJECTS,
	    Q(f,
	        "{'apiVersion':'resourcemanager.miloapis.com/v1','kind':"
	        "'Project','metadata':{'name':'km3'},'spec':{'ownerRef':{"
	        "'kind':'Organization','name':'o'}}}"));
	EXPECT_STATUS(f, r, 400, "BadRequest", NULL);
	/* §2: a body namespace that differs from the URL. */
	r = POST(f, col,
	    Q(f, "{'metadata':{'name':'km4','namespace':'kube-system'}}"));
	EXPECT_STATUS(f, r, 400, "BadRequest",
	    "the namespace of the provided object does not match the "
	    "namespace sent on the request");
	EXPECT_INT(f, NULL, plane_rv(f, ""), before);
	for (int i = 1; i <= 4; i++) {
		r = GET(f,
		    i == 3 ? PROJECTS "/km3"
		           : cm_path(f, "", "default", S(f, "km%d", i)));
		EXPECT_CODE(f, r, 404);
	}

	/* §0: bodies without kind/apiVersion are accepted and filled in. */
	r = POST(f, col, Q(f, "{'metadata':{'name':'plain'}}"));
	EXPECT_CODE(f, r, 201);
	EXPECT_JS(f, r, "kind", "ConfigMap");
	EXPECT_JS(f, r, "apiVersion", "v1");

	/* A PUT whose kind does not match. */
	uint64_t mid = plane_rv(f, "");
	r            = PUT(f, cm_path(f, "", "default", "plain"),
	               Q(f,
	                   "{'apiVersion':'v1','kind':'Secret','metadata':{'name':"
	                              "'plain'},'data':{'x':'eA=='}}"));
	EXPECT_STATUS(f, r, 400, "BadRequest", NULL);
	/* §4.4 step 1: a body name that differs from the URL. */
	r = PUT(f, cm_path(f, "", "default", "plain"),
	    Q(f, "{'metadata':{'name':'other'},'data':{'x':'y'}}"));
	EXPECT_STATUS(f, r, 400, "BadRequest",
	    "the name of the object (other) does not match the name on the "
	    "URL (plain)");
	EXPECT_INT(f, NULL, plane_rv(f, ""), mid);
	finish(f);
}

static void
test_api_unknown_resource_404(void **state)
{
	fx                      *f       = *state;
	static const char *const paths[] = {
		"/api/v1/namespaces/default/widgets",
		"/api/v1/widgets",
		"/api/v2/namespaces",
		"/api/v2/namespaces/default/configmaps",
		"/apis/nope.example.com/v1/things",
		"/apis/nope.example.com/v1",
		"/apis/coordination.k8s.io/v2/namespaces/default/leases",
		"/apis/coordination.k8s.io/v1/namespaces/default/configmaps",
		"/apis/resourcemanager.miloapis.com/v1alpha1/namespaces/"
		"default/"
		"projects",
		"/api/v1/namespaces/default/configmaps/x/status",
		"/api/v1/namespaces/default/configmaps/x/y/z",
		"/nonsense",
	};
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		resp *r = GET(f, paths[i]);
		if (EXPECT_STATUS(f, r, 404, "NotFound", NOT_FOUND_MSG)
		    && strncmp(paths[i], "/api", 4) == 0)
			EXPECT(f, r,
			    json_is_object(J(r->j, "details"))
			        && json_object_size(J(r->j, "details")) == 0,
			    "details should be {} (§1.2)");
	}
	uint64_t before = plane_rv(f, "");
	resp    *r      = POST(f, "/apis/nope.example.com/v1/things",
	            Q(f, "{'metadata':{'name':'t'}}"));
	EXPECT_STATUS(f, r, 404, "NotFound", NOT_FOUND_MSG);
	r = POST(f, "/api/v1/namespaces/default/widgets",
	    Q(f, "{'metadata':{'name':'t'}}"));
	EXPECT_STATUS(f, r, 404, "NotFound", NOT_FOUND_MSG);
	EXPECT_INT(f, NULL, plane_rv(f, ""), before);
	finish(f);
}

static void
test_api_path_tricks_404(void **state)
{
	fx *f = *state;
	mk_cm(f, "", "default", "a", "k", "v");
	uint64_t                 before  = plane_rv(f, "");
	static const char *const paths[] = {
		"/api/v1/namespaces/../configmaps",
		"/api/v1/namespaces/default/../default/configmaps",
		"/api/v1/namespaces/default/configmaps/../configmaps/a",
		"/api/v1/namespaces/default/configmaps/a%2Fb",
		"/api/v1/namespaces/default%2Fconfigmaps/a",
		"/api/v1/namespaces/default/configmaps/a%00b",
		"/api/v1/namespaces/default/configmaps/a%00",
		"/api/v1/namespaces/default/configmaps/%2e%2e",
		"/api/v1/namespaces/default/configmaps/a%zz",
	};
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		resp *r = GET(f, paths[i]);
		EXPECT_STATUS(f, r, 404, "NotFound", NULL);
		r = DEL(f, paths[i], NULL);
		EXPECT_STATUS(f, r, 404, "NotFound", NULL);
	}
	resp *r = POST(f, "/api/v1/namespaces/../configmaps",
	    Q(f, "{'metadata':{'name':'trick'}}"));
	EXPECT_STATUS(f, r, 404, "NotFound", NULL);
	r = POST(f, "/api/v1/namespaces/default%2Fx/configmaps",
	    Q(f, "{'metadata':{'name':'trick'}}"));
	EXPECT_STATUS(f, r, 404, "NotFound", NULL);
	EXPECT_INT(f, NULL, plane_rv(f, ""), before);
	r = GET(f, cm_path(f, "", "default", "a"));
	EXPECT_CODE(f, r, 200);
	finish(f);
}

static void
test_api_unknown_project_404(void **state)
{
	fx                      *f       = *state;
	static const char *const paths[] = {
		PROJECTS "/nope/control-plane/api/v1/namespaces",
		"/projects/nope/control-plane/api/v1/namespaces",
		"/projects/nope/control-plane/version",
		PROJECTS "/nope/control-plane/api/v1/namespaces/default/"
		         "configmaps?watch=1",
	};
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		resp *r = GET(f, paths[i]);
		EXPECT_STATUS(f, r, 404, "NotFound",
		    "projects.resourcemanager.miloapis.com \"nope\" not "
		    "found");
		EXPECT_JS(f, r, "details.name", "nope");
		EXPECT_JS(
		    f, r, "details.group", "resourcemanager.miloapis.com");
		EXPECT_JS(f, r, "details.kind", "projects");
	}
	resp *r = POST(f, "/projects/nope/control-plane/api/v1/namespaces",
	    Q(f, "{'metadata':{'name':'x'}}"));
	EXPECT_STATUS(f, r, 404, "NotFound",
	    "projects.resourcemanager.miloapis.com \"nope\" not found");
	/* Creating nothing: no plane appeared. */
	r = GET(f, "/projects/nope/control-plane/api/v1/namespaces");
	EXPECT_CODE(f, r, 404);
	finish(f);
}

static void
test_api_oversized_body_413(void **state)
{
	fx      *f      = *state;
	uint64_t before = plane_rv(f, "");
	size_t   pad    = 3u * 1024 * 1024 + 1024;
	char    *body   = mcf_malloc(pad + 128);
	int      n      = snprintf(body, 128,
	              "{\"metadata\":{\"name\":\"big\"},\"data\":"
	                        "{\"a\":\"");
	memset(body + n, 'x', pad);
	memcpy(body + n + pad, "\"}}", 4);
	keep_str(f, body);
	resp *r = POST(f, cm_path(f, "", "default", NULL), body);
	EXPECT_STATUS(f, r, 413, "RequestEntityTooLarge", NULL);
	EXPECT_INT(f, NULL, plane_rv(f, ""), before);
	r = GET(f, cm_path(f, "", "default", "big"));
	EXPECT_CODE(f, r, 404);
	/* The server still answers afterwards. */
	mk_cm(f, "", "default", "small", "a", "1");
	finish(f);
}

static void
test_api_invalid_name_422(void **state)
{
	fx      *f      = *state;
	uint64_t before = plane_rv(f, "");
	resp    *r      = POST(f, cm_path(f, "", "default", NULL),
	            Q(f, "{'metadata':{'name':'Bad_Name'}}"));
	EXPECT_STATUS_PREFIX(f, r, 422, "Invalid",
	    "ConfigMap \"Bad_Name\" is invalid: metadata.name: Invalid value: "
	    "\"Bad_Name\": a lowercase RFC 1123 subdomain must consist of");
	EXPECT_JS(f, r, "details.name", "Bad_Name");
	EXPECT_JS(f, r, "details.kind", "configmaps");
	EXPECT(f, r, JS(r->j, "details.group") == NULL,
	    "details.group must be omitted for core");
	EXPECT_JS(f, r, "details.causes.0.field", "metadata.name");
	EXPECT_JS(f, r, "details.causes.0.reason", "FieldValueInvalid");

	char longname[300];
	memset(longname, 'a', 254);
	longname[254] = '\0';
	r             = POST(f, cm_path(f, "", "default", NULL),
	                Q(f, "{'metadata':{'name':'%s'}}", longname));
	EXPECT_STATUS_CONTAINS(f, r, 422, "Invalid", "metadata.name");

	/* Namespaces are DNS-1123 labels: no dots. */
	r = POST(f, "/api/v1/namespaces", Q(f, "{'metadata':{'name':'a.b'}}"));
	EXPECT_STATUS_CONTAINS(
	    f, r, 422, "Invalid", "metadata.name: Invalid value: \"a.b\"");
	r = POST(f, PROJECTS, project_body(f, "Bad_Project", NULL));
	EXPECT_STATUS_CONTAINS(f, r, 422, "Invalid",
	    "metadata.name: Invalid value: \"Bad_Project\"");
	EXPECT_INT(f, NULL, plane_rv(f, ""), before);
	finish(f);
}

static void
test_api_missing_name_422(void **state)
{
	fx      *f      = *state;
	uint64_t before = plane_rv(f, "");
	resp    *r      = POST(
	            f, cm_path(f, "", "default", NULL), Q(f, "{'data':{'a':'1'}}"));
	EXPECT_STATUS(f, r, 422, "Invalid",
	    "ConfigMap \"\" is invalid: metadata.name: Required value: name "
	    "or generateName is required");
	EXPECT_JS(f, r, "details.kind", "configmaps");
	EXPECT_JS(f, r, "details.causes.0.reason", "FieldValueRequired");
	EXPECT_JS(f, r, "details.causes.0.field", "metadata.name");
	r = POST(f, cm_path(f, "", "default", NULL),
	    Q(f, "{'metadata':{'name':''}}"));
	EXPECT_STATUS(f, r, 422, "Invalid",
	    "ConfigMap \"\" is invalid: metadata.name: Required value: name "
	    "or generateName is required");
	EXPECT_INT(f, NULL, plane_rv(f, ""), before);

	/* generateName: the prefix plus 5 characters of the alphabet. */
	r = POST(f, cm_path(f, "", "default", NULL),
	    Q(f, "{'metadata':{'generateName':'gen-'}}"));
	EXPECT_CODE(f, r, 201);
	const char *name = JS(r->j, "metadata.name");
	EXPECT(f, r,
	    name != NULL && strlen(name) == 9 && strncmp(name, "gen-", 4) == 0
	        && strspn(name + 4, "bcdfghjklmnpqrstvwxz2456789") == 5,
	    "generated name %s", name ? name : "(null)");
	finish(f);
}

static void
test_api_resource_version_on_create_500(void **state)
{
	fx      *f      = *state;
	uint64_t before = plane_rv(f, "");
	resp    *r      = POST(f, cm_path(f, "", "default", NULL),
	            Q(f, "{'metadata':{'name':'rv','resourceVersion':'5'}}"));
	EXPECT_STATUS(f, r, 500, "InternalError",
	    "resourceVersion should not be set on objects to be created");
	r = POST(
	    f, PROJECTS, project_body(f, "rvp", ",'resourceVersion':'1'"));
	EXPECT_STATUS(f, r, 500, "InternalError",
	    "resourceVersion should not be set on objects to be created");
	EXPECT_INT(f, NULL, plane_rv(f, ""), before);
	r = GET(f, cm_path(f, "", "default", "rv"));
	EXPECT_CODE(f, r, 404);
	finish(f);
}

static void
test_api_create_in_missing_namespace_404(void **state)
{
	fx      *f      = *state;
	uint64_t before = plane_rv(f, "");
	resp    *r      = POST(f, cm_path(f, "", "nope", NULL),
	            Q(f, "{'metadata':{'name':'x'}}"));
	EXPECT_STATUS(f, r, 404, "NotFound", "namespaces \"nope\" not found");
	EXPECT_JS(f, r, "details.name", "nope");
	EXPECT_JS(f, r, "details.kind", "namespaces");
	EXPECT_INT(f, NULL, plane_rv(f, ""), before);
	/* The namespace was not created on the way. */
	r = GET(f, "/api/v1/namespaces/nope");
	EXPECT_STATUS(f, r, 404, "NotFound", "namespaces \"nope\" not found");
	finish(f);
}

/* ===================================================================== */
/* Writes                                                                 */
/* ===================================================================== */

static bool
is_uuid4(const char *u)
{
	if (u == NULL || strlen(u) != 36)
		return false;
	for (int i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (u[i] != '-')
				return false;
		} else if (!isxdigit((unsigned char) u[i])) {
			return false;
		}
	}
	return u[14] == '4' && strchr("89abAB", u[19]) != NULL;
}

static bool
is_k8s_time(const char *t)
{
	static const char pat[] = "dddd-dd-ddTdd:dd:ddZ";
	if (t == NULL || strlen(t) != sizeof(pat) - 1)
		return false;
	for (size_t i = 0; i < sizeof(pat) - 1; i++)
		if (pat[i] == 'd' ? !isdigit((unsigned char) t[i])
		                  : t[i] != pat[i])
			return false;
	return true;
}

static void
test_api_create_201_sets_system_fields(void **state)
{
	fx      *f      = *state;
	uint64_t before = plane_rv(f, "");
	resp    *r      = POST(f, cm_path(f, "", "default", NULL),
	            Q(f,
	                "{'metadata':{'name':'cm1','uid':'client-uid',"
	                        "'creationTimestamp':'2001-01-01T00:00:00Z','generation':7,"
	                        "'deletionTimestamp':'2001-01-01T00:00:00Z'},"
	                        "'data':{'a':'1'}}"));
	NEED_CODE(f, r, 201);
	const char *uid = JS(r->j, "metadata.uid");
	EXPECT(f, r, is_uuid4(uid), "uid %s is not a UUIDv4",
	    uid ? uid : "(null)");
	const char *ct = JS(r->j, "metadata.creationTimestamp");
	EXPECT(f, r,
	    is_k8s_time(ct) && strcmp(ct, "2001-01-01T00:00:00Z") != 0,
	    "creationTimestamp %s", ct ? ct : "(null)");
	EXPECT(f, r, J(r->j, "metadata.generation") == NULL,
	    "a ConfigMap carries no generation (§2)");
	EXPECT(f, r, J(r->j, "metadata.deletionTimestamp") == NULL,
	    "deletionTimestamp must be cleared on create");
	EXPECT_JS(f, r, "metadata.namespace", "default");
	EXPECT_JS(f, r, "kind", "ConfigMap");
	EXPECT_JS(f, r, "apiVersion", "v1");
	EXPECT_JS(f, r, "data.a", "1");
	uint64_t rv = rv_num(JS(r->j, "metadata.resourceVersion"));
	EXPECT_INT(f, r, rv, before + 1);
	EXPECT_INT(f, NULL, plane_rv(f, ""), rv);
	EXPECT(f, r,
	    J(r->j, "metadata.managedFields") == NULL
	        && J(r->j, "metadata.selfLink") == NULL,
	    "managedFields/selfLink are never emitted");

	resp *g = GET(f, cm_path(f, "", "default", "cm1"));
	EXPECT_CODE(f, g, 200);
	EXPECT(f, g, json_equal(g->j, r->j), "GET differs from the 201 body");

	/* A Project: generation 1, no status (create strips it). */
	r = POST(f, PROJECTS,
	    Q(f,
	        "{'metadata':{'name':'p1'},'spec':{'ownerRef':{'kind':"
	        "'Organization','name':'o'}},'status':{'conditions':[%s]}}",
	        cond_json(f, "Ready", "True")));
	NEED_CODE(f, r, 201);
	EXPECT_INT(f, r, JI(r->j, "metadata.generation"), 1);
	EXPECT(f, r, J(r->j, "status") == NULL, "create must drop status");
	EXPECT(f, r, is_uuid4(JS(r->j, "metadata.uid")), "project uid");
	EXPECT_JS(f, r, "kind", "Project");
	EXPECT_JS(f, r, "apiVersion", "resourcemanager.miloapis.com/v1alpha1");

	/* GET of a missing object (§4.2). */
	r = GET(f, cm_path(f, "", "default", "nope"));
	EXPECT_STATUS(f, r, 404, "NotFound", "configmaps \"nope\" not found");
	EXPECT_JS(f, r, "details.name", "nope");
	EXPECT_JS(f, r, "details.kind", "configmaps");
	r = GET(f, PROJECTS "/nope");
	EXPECT_STATUS(f, r, 404, "NotFound",
	    "projects.resourcemanager.miloapis.com \"nope\" not found");
	EXPECT_JS(f, r, "details.group", "resourcemanager.miloapis.com");
	finish(f);
}

static void
test_api_create_existing_409(void **state)
{
	fx *f = *state;
	mk_cm(f, "", "default", "cm1", "a", "1");
	mk_project(f, "p1", NULL);
	uint64_t before = plane_rv(f, "");
	resp    *r      = POST(f, cm_path(f, "", "default", NULL),
	            Q(f, "{'metadata':{'name':'cm1'},'data':{'a':'2'}}"));
	EXPECT_STATUS(
	    f, r, 409, "AlreadyExists", "configmaps \"cm1\" already exists");
	EXPECT_JS(f, r, "details.name", "cm1");
	EXPECT_JS(f, r, "details.kind", "configmaps");
	r = POST(f, PROJECTS, project_body(f, "p1", NULL));
	EXPECT_STATUS(f, r, 409, "AlreadyExists",
	    "projects.resourcemanager.miloapis.com \"p1\" already exists");
	EXPECT_JS(f, r, "details.group", "resourcemanager.miloapis.com");
	EXPECT_JS(f, r, "details.kind", "projects");
	EXPECT_INT(f, NULL, plane_rv(f, ""), before);
	r = GET(f, cm_path(f, "", "default", "cm1"));
	EXPECT_JS(f, r, "data.a", "1");
	finish(f);
}

static void
test_api_update_stale_rv_409(void **state)
{
	fx         *f   = *state;
	resp       *c   = mk_cm(f, "", "default", "cm1", "a", "1");
	const char *rv1 = JS(c->j, "metadata.resourceVersion");
	resp       *u   = PUT(f, cm_path(f, "", "default", "cm1"),
	            Q(f,
	                "{'metadata':{'name':'cm1','resourceVersion':'%s'},'data':"
	                        "{'a':'2'}}",
	                rv1));
	NEED_CODE(f, u, 200);
	EXPECT_JS(f, u, "data.a", "2");
	EXPECT(f, u,
	    rv_num(JS(u->j, "metadata.resourceVersion")) > rv_num(rv1),
	    "update must bump the RV");
	uint64_t before = plane_rv(f, "");
	resp    *r      = PUT(f, cm_path(f, "", "default", "cm1"),
	            Q(f,
	                "{'metadata':{'name':'cm1','resourceVersion':'%s'},'data':"
	                        "{'a':'3'}}",
	                rv1));
	EXPECT_STATUS(f, r, 409, "Conflict",
	    "Operation cannot be fulfilled on configmaps "
	    "\"cm1\": " CONFLICT_TAIL);
	EXPECT_JS(f, r, "details.name", "cm1");
	EXPECT_JS(f, r, "details.kind", "configmaps");
	EXPECT_INT(f, NULL, plane_rv(f, ""), before);
	r = GET(f, cm_path(f, "", "default", "cm1"));
	EXPECT_JS(f, r, "data.a", "2");

	/* The same for a Project (group in details and message). */
	resp   *p = mk_project(f, "p1", NULL);
	json_t *o = copy_of(f, p->j);
	json_object_set_new(
	    J(o, "metadata"), "resourceVersion", json_string("1"));
	r = PUT(f, PROJECTS "/p1", D(f, o));
	EXPECT_STATUS(f, r, 409, "Conflict",
	    "Operation cannot be fulfilled on "
	    "projects.resourcemanager.miloapis.com \"p1\": " CONFLICT_TAIL);
	EXPECT_JS(f, r, "details.name", "p1");
	EXPECT_JS(f, r, "details.group", "resourcemanager.miloapis.com");
	EXPECT_JS(f, r, "details.kind", "projects");

	/* Update of a missing object: 404, nothing created. */
	r = PUT(f, cm_path(f, "", "default", "ghost"),
	    Q(f, "{'metadata':{'name':'ghost'},'data':{'a':'1'}}"));
	EXPECT_STATUS(f, r, 404, "NotFound", "configmaps \"ghost\" not found");
	finish(f);
}

static void
test_api_update_without_rv(void **state)
{
	fx   *f = *state;
	resp *c = mk_cm(f, "", "default", "cm1", "a", "1");
	resp *r = PUT(f, cm_path(f, "", "default", "cm1"),
	    Q(f, "{'metadata':{'name':'cm1'},'data':{'a':'2'}}"));
	EXPECT_CODE(f, r, 200);
	EXPECT_JS(f, r, "data.a", "2");
	EXPECT(f, r,
	    rv_num(JS(r->j, "metadata.resourceVersion"))
	        > rv_num(JS(c->j, "metadata.resourceVersion")),
	    "unconditional update must bump the RV");
	/* System fields come from the stored object (§4.4 step 3). */
	EXPECT_STR(f, r, JS(r->j, "metadata.uid"), JS(c->j, "metadata.uid"));
	EXPECT_STR(f, r, JS(r->j, "metadata.creationTimestamp"),
	    JS(c->j, "metadata.creationTimestamp"));

	mk_project(f, "p1", NULL);
	uint64_t before = plane_rv(f, "");
	r               = PUT(f, PROJECTS "/p1",
	                  Q(f,
	                      "{'apiVersion':'resourcemanager.miloapis.com/v1alpha1',"
	                                    "'kind':'Project','metadata':{'name':'p1'},'spec':{'ownerRef':"
	                                    "{'kind':'Organization','name':'org2'}}}"));
	EXPECT_STATUS(f, r, 422, "Invalid",
	    "Project.resourcemanager.miloapis.com \"p1\" is invalid: "
	    "metadata.resourceVersion: Invalid value: 0x0: must be specified "
	    "for an update");
	EXPECT_INT(f, NULL, plane_rv(f, ""), before);
	r = GET(f, PROJECTS "/p1");
	EXPECT_JS(f, r, "spec.ownerRef.name", "org1");
	finish(f);
}

static void
test_api_noop_update_keeps_rv(void **state)
{
	fx         *f      = *state;
	resp       *c      = mk_cm(f, "", "default", "cm1", "a", "1");
	const char *rv     = JS(c->j, "metadata.resourceVersion");
	uint64_t    before = plane_rv(f, "");
	wstream    *w      = watch_open(f,
	            S(f, "%s?watch=1&resourceVersion=%llu",
	                cm_path(f, "", "default", NULL), (unsigned long long) before));

	resp *r = PUT(f, cm_path(f, "", "default", "cm1"), D(f, c->j));
	EXPECT_CODE(f, r, 200);
	EXPECT_JS(f, r, "metadata.resourceVersion", rv);
	r = PUT(f, cm_path(f, "", "default", "cm1"),
	    Q(f, "{'metadata':{'name':'cm1'},'data':{'a':'1'}}"));
	EXPECT_CODE(f, r, 200);
	EXPECT_JS(f, r, "metadata.resourceVersion", rv);
	r = MERGE(
	    f, cm_path(f, "", "default", "cm1"), Q(f, "{'data':{'a':'1'}}"));
	EXPECT_CODE(f, r, 200);
	EXPECT_JS(f, r, "metadata.resourceVersion", rv);
	EXPECT_INT(f, NULL, plane_rv(f, ""), before);

	/* A Project no-op keeps RV and generation. */
	resp    *p       = mk_project(f, "p1", NULL);
	uint64_t pbefore = plane_rv(f, "");
	r                = PUT(f, PROJECTS "/p1", D(f, p->j));
	EXPECT_CODE(f, r, 200);
	EXPECT_STR(f, r, JS(r->j, "metadata.resourceVersion"),
	    JS(p->j, "metadata.resourceVersion"));
	EXPECT_INT(f, r, JI(r->j, "metadata.generation"), 1);
	EXPECT_INT(f, NULL, plane_rv(f, ""), pbefore);

	/* The watch saw nothing for the no-ops: its first configmap event
	 * is the sentinel. */
	mk_cm(f, "", "default", "sentinel", "s", "1");
	watch_wait(w, 1, 3000);
	EXPECT(f, NULL,
	    json_array_size(w->events) >= 1
	        && strcmp(nz(ev_type(w, 0), ""), "ADDED") == 0
	        && strcmp(nz(ev_name(w, 0), ""), "sentinel") == 0,
	    "watch events %s, want ADDED:sentinel first", ev_summary(f, w));
	finish(f);
}

static void
test_api_generation_rules(void **state)
{
	fx   *f = *state;
	resp *p = mk_project(f, "p1", NULL);
	EXPECT_INT(f, p, JI(p->j, "metadata.generation"), 1);

	/* Spec change: +1. */
	resp *r = MERGE(
	    f, PROJECTS "/p1", Q(f, "{'spec':{'ownerRef':{'name':'org2'}}}"));
	EXPECT_CODE(f, r, 200);
	EXPECT_JS(f, r, "spec.ownerRef.name", "org2");
	EXPECT_INT(f, r, JI(r->j, "metadata.generation"), 2);

	/* Status via /status: no change of generation. */
	r = MERGE(f, PROJECTS "/p1/status",
	    Q(f, "{'status':{'conditions':[%s]}}",
	        cond_json(f, "Ready", "True")));
	EXPECT_CODE(f, r, 200);
	EXPECT_JS(f, r, "status.conditions.0.status", "True");
	EXPECT_INT(f, r, JI(r->j, "metadata.generation"), 2);

	/* Labels: no change. */
	r = MERGE(
	    f, PROJECTS "/p1", Q(f, "{'metadata':{'labels':{'x':'y'}}}"));
	EXPECT_CODE(f, r, 200);
	EXPECT_JS(f, r, "metadata.labels.x", "y");
	EXPECT_INT(f, r, JI(r->j, "metadata.generation"), 2);

	/* Full PUT changing spec: +1. */
	json_t *o = copy_of(f, r->j);
	json_object_set_new(
	    J(o, "spec.ownerRef"), "name", json_string("org3"));
	r = PUT(f, PROJECTS "/p1", D(f, o));
	EXPECT_CODE(f, r, 200);
	EXPECT_INT(f, r, JI(r->j, "metadata.generation"), 3);

	/* A client value for generation is ignored. */
	r = MERGE(f, PROJECTS "/p1", Q(f, "{'metadata':{'generation':42}}"));
	EXPECT_CODE(f, r, 200);
	EXPECT_INT(f, r, JI(r->j, "metadata.generation"), 3);
	finish(f);
}

static void
test_api_status_subresource_split(void **state)
{
	fx   *f = *state;
	resp *p = mk_project(f, "p1", NULL);

	/* /status: only status is taken; metadata changes are ignored. */
	json_t *o = copy_of(f, p->j);
	json_object_set_new(
	    J(o, "metadata"), "labels", json_pack("{s:s}", "sneaky", "yes"));
	json_object_set_new(J(o, "metadata"), "finalizers",
	    json_pack("[s]", "example.com/sneaky"));
	json_object_set_new(
	    J(o, "spec.ownerRef"), "name", json_string("sneaky-org"));
	json_error_t e;
	json_object_set_new(o, "status",
	    json_pack("{s:[o]}", "conditions",
	        json_loads(cond_json(f, "Ready", "True"), 0, &e)));
	resp *r = PUT(f, PROJECTS "/p1/status", D(f, o));
	EXPECT_CODE(f, r, 200);
	EXPECT_JS(f, r, "status.conditions.0.type", "Ready");
	EXPECT(f, r, J(r->j, "metadata.labels.sneaky") == NULL,
	    "/status must ignore label changes (§4.4 step 4)");
	EXPECT(f, r,
	    J(r->j, "metadata.finalizers") == NULL
	        || json_array_size(J(r->j, "metadata.finalizers")) == 0,
	    "/status must ignore finalizer changes");
	EXPECT_JS(f, r, "spec.ownerRef.name", "org1");
	EXPECT_INT(f, r, JI(r->j, "metadata.generation"), 1);
	r = GET(f, PROJECTS "/p1");
	EXPECT(f, r, J(r->j, "metadata.labels.sneaky") == NULL,
	    "stored object must not have the /status label");
	EXPECT_JS(f, r, "status.conditions.0.status", "True");

	/* Main resource: status is replaced by the stored one. */
	o = copy_of(f, r->j);
	json_object_set_new(o, "status",
	    json_pack("{s:[o]}", "conditions",
	        json_loads(cond_json(f, "Ready", "False"), 0, &e)));
	json_object_set_new(
	    J(o, "metadata"), "labels", json_pack("{s:s}", "real", "yes"));
	r = PUT(f, PROJECTS "/p1", D(f, o));
	EXPECT_CODE(f, r, 200);
	EXPECT_JS(f, r, "status.conditions.0.status", "True");
	EXPECT_JS(f, r, "metadata.labels.real", "yes");
	r = MERGE(f, PROJECTS "/p1",
	    Q(f, "{'status':{'conditions':[%s]}}",
	        cond_json(f, "Ready", "Unknown")));
	EXPECT_CODE(f, r, 200);
	EXPECT_JS(f, r, "status.conditions.0.status", "True");
	r = GET(f, PROJECTS "/p1");
	EXPECT_JS(f, r, "status.conditions.0.status", "True");

	/* Namespaces have a status subresource too: PUT on the main
	 * resource keeps the stored phase. */
	mk_ns(f, "", "nsx");
	r = MERGE(f, "/api/v1/namespaces/nsx",
	    Q(f, "{'status':{'phase':'Terminating'}}"));
	EXPECT_CODE(f, r, 200);
	EXPECT_JS(f, r, "status.phase", "Active");
	finish(f);
}

static void
test_api_merge_patch(void **state)
{
	fx   *f = *state;
	resp *c = POST(f, cm_path(f, "", "default", NULL),
	    Q(f,
	        "{'metadata':{'name':'cm1','labels':{'l1':'a','l2':'b'}},"
	        "'data':{'a':'1','b':'2'}}"));
	NEED_CODE(f, c, 201);
	resp *r = MERGE(f, cm_path(f, "", "default", "cm1"),
	    Q(f,
	        "{'metadata':{'labels':{'l1':null,'l3':'c'}},"
	        "'data':{'a':null,'c':'3'}}"));
	EXPECT_CODE(f, r, 200);
	EXPECT(f, r, J(r->j, "data.a") == NULL, "null must delete data.a");
	EXPECT_JS(f, r, "data.b", "2");
	EXPECT_JS(f, r, "data.c", "3");
	EXPECT(f, r, J(r->j, "metadata.labels.l1") == NULL, "l1 deleted");
	EXPECT_JS(f, r, "metadata.labels.l2", "b");
	EXPECT_JS(f, r, "metadata.labels.l3", "c");
	EXPECT(f, r,
	    rv_num(JS(r->j, "metadata.resourceVersion"))
	        > rv_num(JS(c->j, "metadata.resourceVersion")),
	    "RV bumped");
	/* Arrays replace. */
	r = MERGE(f, cm_path(f, "", "default", "cm1"),
	    Q(f,
	        "{'metadata':{'finalizers':['example.com/a','example.com/"
	        "b']}}"));
	EXPECT_CODE(f, r, 200);
	r = MERGE(f, cm_path(f, "", "default", "cm1"),
	    Q(f, "{'metadata':{'finalizers':['example.com/c']}}"));
	EXPECT_CODE(f, r, 200);
	EXPECT_INT(f, r, json_array_size(J(r->j, "metadata.finalizers")), 1);
	EXPECT_JS(f, r, "metadata.finalizers.0", "example.com/c");
	/* Missing object. */
	r = MERGE(f, cm_path(f, "", "default", "ghost"), "{}");
	EXPECT_STATUS(f, r, 404, "NotFound", "configmaps \"ghost\" not found");
	finish(f);
}

static void
test_api_json_patch(void **state)
{
	fx *f = *state;
	mk_cm(f, "", "default", "cm1", "a", "1");
	MERGE(f, cm_path(f, "", "default", "cm1"), Q(f, "{'data':{'b':'2'}}"));
	resp *r = PATCH(f, cm_path(f, "", "default", "cm1"),
	    "application/json-patch+json",
	    Q(f,
	        "[{'op':'test','path':'/data/a','value':'1'},"
	        "{'op':'replace','path':'/data/a','value':'10'},"
	        "{'op':'add','path':'/data/c','value':'3'},"
	        "{'op':'remove','path':'/data/b'},"
	        "{'op':'copy','from':'/data/c','path':'/data/d'},"
	        "{'op':'move','from':'/data/d','path':'/data/e'}]"));
	EXPECT_CODE(f, r, 200);
	EXPECT_JS(f, r, "data.a", "10");
	EXPECT_JS(f, r, "data.c", "3");
	EXPECT_JS(f, r, "data.e", "3");
	EXPECT(f, r, J(r->j, "data.b") == NULL && J(r->j, "data.d") == NULL,
	    "remove/move must drop b and d");

	uint64_t before = plane_rv(f, "");
	r               = PATCH(f, cm_path(f, "", "default", "cm1"),
	                  "application/json-patch+json",
	                  Q(f,
	                      "[{'op':'replace','path':'/data/a','value':'99'},"
	                                    "{'op':'test','path':'/data/a','value':'nope'}]"));
	EXPECT_STATUS(f, r, 422, "Invalid", NULL);
	r = PATCH(f, cm_path(f, "", "default", "cm1"),
	    "application/json-patch+json",
	    Q(f, "[{'op':'remove','path':'/data/missing'}]"));
	EXPECT_STATUS(f, r, 422, "Invalid", NULL);
	/* An object is not a JSON patch: 400 (client-node's trap). */
	r = PATCH(f, cm_path(f, "", "default", "cm1"),
	    "application/json-patch+json", Q(f, "{'data':{'a':'5'}}"));
	EXPECT_STATUS(f, r, 400, "BadRequest", NULL);
	EXPECT_INT(f, NULL, plane_rv(f, ""), before);
	r = GET(f, cm_path(f, "", "default", "cm1"));
	EXPECT_JS(f, r, "data.a", "10");
	finish(f);
}

static void
test_api_strategic_patch(void **state)
{
	fx   *f = *state;
	resp *c = POST(f, cm_path(f, "", "default", NULL),
	    Q(f,
	        "{'metadata':{'name':'cm1','finalizers':['example.com/a']},"
	        "'data':{'a':'1','b':'2'}}"));
	NEED_CODE(f, c, 201);
	resp *r = PATCH(f, cm_path(f, "", "default", "cm1"),
	    "application/strategic-merge-patch+json",
	    Q(f,
	        "{'metadata':{'finalizers':['example.com/b']},"
	        "'data':{'b':null,'c':'3'}}"));
	EXPECT_CODE(f, r, 200);
	json_t *fins = J(r->j, "metadata.finalizers");
	EXPECT(f, r,
	    json_array_size(fins) == 2 && array_has_str(fins, "example.com/a")
	        && array_has_str(fins, "example.com/b"),
	    "strategic merge must union finalizers");
	EXPECT_JS(f, r, "data.a", "1");
	EXPECT_JS(f, r, "data.c", "3");
	EXPECT(f, r, J(r->j, "data.b") == NULL, "null deletes data.b");
	/* $deleteFromPrimitiveList removes items. */
	r = PATCH(f, cm_path(f, "", "default", "cm1"),
	    "application/strategic-merge-patch+json",
	    Q(f,
	        "{'metadata':{'$deleteFromPrimitiveList/finalizers':"
	        "['example.com/a']}}"));
	EXPECT_CODE(f, r, 200);
	fins = J(r->j, "metadata.finalizers");
	EXPECT(f, r,
	    json_array_size(fins) == 1 && array_has_str(fins, "example.com/b"),
	    "$deleteFromPrimitiveList must remove example.com/a");

	mk_project(f, "p1", NULL);
	uint64_t before = plane_rv(f, "");
	r = PATCH(f, PROJECTS "/p1", "application/strategic-merge-patch+json",
	    Q(f, "{'metadata':{'labels':{'a':'b'}}}"));
	EXPECT_STATUS(f, r, 415, "UnsupportedMediaType",
	    "the body of the request was in an unknown format - accepted "
	    "media "
	    "types include: application/json-patch+json, "
	    "application/merge-patch+json, application/apply-patch+yaml");
	EXPECT_INT(f, NULL, plane_rv(f, ""), before);
	finish(f);
}

static void
test_api_apply_patch_415(void **state)
{
	fx *f = *state;
	mk_cm(f, "", "default", "cm1", "a", "1");
	uint64_t before = plane_rv(f, "");
	resp    *r      = PATCH(f, cm_path(f, "", "default", "cm1"),
	            "application/apply-patch+yaml",
	            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm1\n"
	                    "data:\n  a: \"2\"\n");
	EXPECT_STATUS_PREFIX(f, r, 415, "UnsupportedMediaType",
	    "the body of the request was in an unknown format - accepted "
	    "media "
	    "types include:");
	r = PATCH(f, cm_path(f, "", "default", "cm1"), "text/plain", "{}");
	EXPECT_STATUS(f, r, 415, "UnsupportedMediaType", NULL);
	EXPECT_INT(f, NULL, plane_rv(f, ""), before);
	finish(f);
}

static void
test_api_patch_stale_rv_409(void **state)
{
	fx         *f   = *state;
	resp       *c   = mk_cm(f, "", "default", "cm1", "a", "1");
	const char *rv1 = JS(c->j, "metadata.resourceVersion");
	resp       *r   = MERGE(f, cm_path(f, "", "default", "cm1"),
	            Q(f, "{'metadata':{'resourceVersion':'%s'},'data':{'a':'2'}}",
	                rv1));
	EXPECT_CODE(f, r, 200);
	uint64_t before = plane_rv(f, "");
	r               = MERGE(f, cm_path(f, "", "default", "cm1"),
	                  Q(f, "{'metadata':{'resourceVersion':'%s'},'data':{'a':'3'}}",
	                      rv1));
	EXPECT_STATUS(f, r, 409, "Conflict",
	    "Operation cannot be fulfilled on configmaps "
	    "\"cm1\": " CONFLICT_TAIL);
	r = PATCH(f, cm_path(f, "", "default", "cm1"),
	    "application/json-patch+json",
	    Q(f,
	        "[{'op':'replace','path':'/metadata/resourceVersion',"
	        "'value':'%s'},{'op':'replace','path':'/data/a','value':'4'}]",
	        rv1));
	EXPECT_STATUS(f, r, 409, "Conflict",
	    "Operation cannot be fulfilled on configmaps "
	    "\"cm1\": " CONFLICT_TAIL);
	EXPECT_INT(f, NULL, plane_rv(f, ""), before);
	r = GET(f, cm_path(f, "", "default", "cm1"));
	EXPECT_JS(f, r, "data.a", "2");
	finish(f);
}

static void
test_api_dry_run_persists_nothing(void **state)
{
	fx *f = *state;
	mk_cm(f, "", "default", "cm1", "a", "1");
	POST(f, cm_path(f, "", "default", NULL),
	    Q(f,
	        "{'metadata':{'name':'held','finalizers':['example.com/"
	        "x']}}"));
	mk_ns(f, "", "dryns");
	resp       *cur    = GET(f, cm_path(f, "", "default", "cm1"));
	const char *rv1    = JS(cur->j, "metadata.resourceVersion");
	uint64_t    before = plane_rv(f, "");
	wstream    *w      = watch_open(f,
	            S(f, "/api/v1/configmaps?watch=1&resourceVersion=%llu",
	                (unsigned long long) before));

	resp *r
	    = POST(f, S(f, "%s?dryRun=All", cm_path(f, "", "default", NULL)),
	        Q(f, "{'metadata':{'name':'dry'},'data':{'a':'1'}}"));
	EXPECT_CODE(f, r, 201);
	EXPECT_JS(f, r, "metadata.name", "dry");
	const char *drv = JS(r->j, "metadata.resourceVersion");
	EXPECT(f, r, drv == NULL || drv[0] == '\0',
	    "dry-run create must return an empty resourceVersion (§4.3 "
	    "step 7), got %s",
	    drv);
	r = GET(f, cm_path(f, "", "default", "dry"));
	EXPECT_CODE(f, r, 404);

	r = PUT(f, S(f, "%s?dryRun=All", cm_path(f, "", "default", "cm1")),
	    Q(f, "{'metadata':{'name':'cm1'},'data':{'a':'2'}}"));
	EXPECT_CODE(f, r, 200);
	EXPECT_JS(f, r, "data.a", "2");

	r = MERGE(f, S(f, "%s?dryRun=All", cm_path(f, "", "default", "cm1")),
	    Q(f, "{'data':{'a':'3'}}"));
	EXPECT_CODE(f, r, 200);
	EXPECT_JS(f, r, "data.a", "3");
	EXPECT_JS(f, r, "metadata.resourceVersion", rv1);

	r = DEL(
	    f, S(f, "%s?dryRun=All", cm_path(f, "", "default", "cm1")), NULL);
	EXPECT_CODE(f, r, 200);
	EXPECT_JS(f, r, "status", "Success");
	r = DEL(
	    f, S(f, "%s?dryRun=All", cm_path(f, "", "default", "held")), NULL);
	EXPECT_CODE(f, r, 200);
	EXPECT(f, r, J(r->j, "metadata.deletionTimestamp") != NULL,
	    "dry-run delete with finalizers returns the would-be object");
	r = DEL(f, "/api/v1/namespaces/dryns?dryRun=All", NULL);
	EXPECT_CODE(f, r, 200);

	EXPECT_INT(f, NULL, plane_rv(f, ""), before);
	r = GET(f, cm_path(f, "", "default", "cm1"));
	EXPECT_CODE(f, r, 200);
	EXPECT_JS(f, r, "data.a", "1");
	EXPECT_JS(f, r, "metadata.resourceVersion", rv1);
	r = GET(f, cm_path(f, "", "default", "held"));
	EXPECT(f, r, J(r->j, "metadata.deletionTimestamp") == NULL,
	    "dry-run delete must not mark the object");
	r = GET(f, "/api/v1/namespaces/dryns");
	EXPECT_JS(f, r, "status.phase", "Active");
	EXPECT(f, r, J(r->j, "metadata.deletionTimestamp") == NULL,
	    "dry-run namespace delete must not mark it");
	/* Give a (wrongly scheduled) namespace sweep time to run. */
	sleep_ms(300);
	r = GET(f, "/api/v1/namespaces/dryns");
	EXPECT_CODE(f, r, 200);
	EXPECT_INT(f, NULL, watch_idle(w, 200), 0);
	finish(f);
}

static void
test_api_update_keeps_system_fields(void **state)
{
	fx      *f      = *state;
	resp    *c      = mk_cm(f, "", "default", "cm1", "a", "1");
	uint64_t before = plane_rv(f, "");
	/* §2: a different uid is 422 field is immutable. */
	resp *r = MERGE(f, cm_path(f, "", "default", "cm1"),
	    Q(f,
	        "{'metadata':{'uid':'0a0a0a0a-0000-4000-8000-000000000000'}"
	        "}"));
	EXPECT_STATUS_CONTAINS(f, r, 422, "Invalid",
	    "metadata.uid: Invalid value: "
	    "\"0a0a0a0a-0000-4000-8000-000000000000\": field is immutable");
	/* §2: setting deletionTimestamp where it was absent is 422. */
	r = MERGE(f, cm_path(f, "", "default", "cm1"),
	    Q(f, "{'metadata':{'deletionTimestamp':'2001-01-01T00:00:00Z'}}"));
	EXPECT_STATUS_CONTAINS(f, r, 422, "Invalid", "field is immutable");
	EXPECT_INT(f, NULL, plane_rv(f, ""), before);
	/* creationTimestamp from the client is ignored on update. */
	r = MERGE(f, cm_path(f, "", "default", "cm1"),
	    Q(f,
	        "{'metadata':{'creationTimestamp':'2001-01-01T00:00:00Z'},"
	        "'data':{'a':'2'}}"));
	EXPECT_CODE(f, r, 200);
	EXPECT_STR(f, r, JS(r->j, "metadata.creationTimestamp"),
	    JS(c->j, "metadata.creationTimestamp"));
	EXPECT_STR(f, r, JS(r->j, "metadata.uid"), JS(c->j, "metadata.uid"));
	r = GET(f, cm_path(f, "", "default", "cm1"));
	EXPECT(f, r, J(r->j, "metadata.deletionTimestamp") == NULL,
	    "deletionTimestamp must not be settable by an update");
	finish(f);
}

static void
test_api_field_validation(void **state)
{
	fx         *f      = *state;
	const char *col    = cm_path(f, "", "default", NULL);
	uint64_t    before = plane_rv(f, "");
	resp       *r      = POST(f, S(f, "%s?fieldValidation=Strict", col),
	               Q(f, "{'metadata':{'name':'fv1'},'data':{'a':'1'},'foo':'x'}"));
	EXPECT_STATUS_CONTAINS(f, r, 400, "BadRequest",
	    "strict decoding error: unknown field \"foo\"");
	r = POST(f, S(f, "%s?fieldValidation=Strict", PROJECTS),
	    Q(f,
	        "{'metadata':{'name':'fvp'},'spec':{'ownerRef':{'kind':"
	        "'Organization','name':'o'},'foo':1}}"));
	EXPECT_STATUS_CONTAINS(f, r, 400, "BadRequest",
	    "strict decoding error: unknown field \"spec.foo\"");
	EXPECT_INT(f, NULL, plane_rv(f, ""), before);

	/* Warn (the default): 201, a Warning header, the field dropped. */
	r = POST(f, col,
	    Q(f, "{'metadata':{'name':'fv2'},'data':{'a':'1'},'foo':'x'}"));
	EXPECT_CODE(f, r, 201);
	EXPECT(f, r, J(r->j, "foo") == NULL, "unknown field must be pruned");
	const char *warn = header(f, r, "Warning");
	EXPECT(f, r, warn && strstr(warn, "unknown field \\\"foo\\\""),
	    "Warning header %s", nz(warn, "(none)"));
	r = POST(f, PROJECTS,
	    Q(f,
	        "{'metadata':{'name':'fvp'},'spec':{'ownerRef':{'kind':"
	        "'Organization','name':'o'},'foo':1}}"));
	EXPECT_CODE(f, r, 201);
	EXPECT(f, r, J(r->j, "spec.foo") == NULL, "spec.foo must be pruned");
	/* Ignore: silent. */
	r = POST(f, S(f, "%s?fieldValidation=Ignore", col),
	    Q(f, "{'metadata':{'name':'fv3'},'foo':'x'}"));
	EXPECT_CODE(f, r, 201);
	EXPECT(f, r, header(f, r, "Warning") == NULL, "no Warning on Ignore");

	/* CR schema validation (§5.1): 422. */
	r = POST(f, PROJECTS,
	    Q(f,
	        "{'metadata':{'name':'badkind'},'spec':{'ownerRef':{'kind':"
	        "'Foo','name':'o'}}}"));
	EXPECT_STATUS_CONTAINS(f, r, 422, "Invalid",
	    "spec.ownerRef.kind: Unsupported value: \"Foo\": supported "
	    "values: \"Organization\"");
	r = POST(f, PROJECTS, Q(f, "{'metadata':{'name':'nospec'}}"));
	EXPECT_STATUS(f, r, 422, "Invalid", NULL);
	/* Status conditions must satisfy metav1.Condition (SHOULD). */
	r = MERGE(f, PROJECTS "/fvp/status",
	    Q(f,
	        "{'status':{'conditions':[{'type':'Ready','status':'true',"
	        "'reason':'','message':'m'}]}}"));
	EXPECT_STATUS(f, r, 422, "Invalid", NULL);
	finish(f);
}

static void
test_api_core_kinds_defaults(void **state)
{
	fx   *f = *state;
	resp *r = POST(f, "/api/v1/namespaces/default/secrets",
	    Q(f,
	        "{'metadata':{'name':'s1'},'stringData':{'pw':'x'},"
	        "'data':{'a':'YQ=='}}"));
	EXPECT_CODE(f, r, 201);
	EXPECT_JS(f, r, "data.pw", "eA==");
	EXPECT_JS(f, r, "data.a", "YQ==");
	EXPECT(f, r, J(r->j, "stringData") == NULL, "stringData dropped");
	EXPECT_JS(f, r, "type", "Opaque");
	r = POST(f, "/api/v1/namespaces", Q(f, "{'metadata':{'name':'n1'}}"));
	EXPECT_CODE(f, r, 201);
	EXPECT_STR(f, r,
	    json_string_value(json_object_get(
	        J(r->j, "metadata.labels"), "kubernetes.io/metadata.name")),
	    "n1");
	EXPECT(f, r, array_has_str(J(r->j, "spec.finalizers"), "kubernetes"),
	    "namespace spec.finalizers [kubernetes]");
	EXPECT_JS(f, r, "status.phase", "Active");
	EXPECT(f, r, J(r->j, "metadata.generation") == NULL,
	    "a Namespace carries no generation");
	finish(f);
}

static void
test_api_gc_deletes_dependents(void **state)
{
	fx   *f = *state;
	resp *o = mk_cm(f, "", "default", "owner", "k", "v");
	resp *d = POST(f, cm_path(f, "", "default", NULL),
	    Q(f,
	        "{'metadata':{'name':'dependent','ownerReferences':[{"
	        "'apiVersion':'v1','kind':'ConfigMap','name':'owner','uid':"
	        "'%s'}]}}",
	        JS(o->j, "metadata.uid")));
	NEED_CODE(f, d, 201);
	mk_cm(f, "", "default", "bystander", "k", "v");
	NEED_CODE(f, DEL(f, cm_path(f, "", "default", "owner"), NULL), 200);
	resp *r = poll_until(
	    f, cm_path(f, "", "default", "dependent"), is_404, 3000);
	EXPECT(f, r, r->code == 404,
	    "the dependent of a removed owner must be garbage-collected "
	    "(part 1)");
	r = GET(f, cm_path(f, "", "default", "bystander"));
	EXPECT_CODE(f, r, 200);
	finish(f);
}

/* ===================================================================== */
/* Deletion                                                               */
/* ===================================================================== */

static void
test_api_delete_without_finalizers(void **state)
{
	fx      *f      = *state;
	resp    *c      = mk_cm(f, "", "default", "cm1", "a", "1");
	uint64_t before = plane_rv(f, "");
	resp    *r      = DEL(f, cm_path(f, "", "default", "cm1"),
	            Q(f, "{'propagationPolicy':'Background'}"));
	EXPECT_CODE(f, r, 200);
	EXPECT_JS(f, r, "kind", "Status");
	EXPECT_JS(f, r, "apiVersion", "v1");
	EXPECT_JS(f, r, "status", "Success");
	EXPECT_JS(f, r, "details.name", "cm1");
	EXPECT_JS(f, r, "details.kind", "configmaps");
	EXPECT_JS(f, r, "details.uid", JS(c->j, "metadata.uid"));
	EXPECT(f, r, J(r->j, "details.group") == NULL, "no group for core");
	EXPECT_INT(f, NULL, plane_rv(f, ""), before + 1);
	r = GET(f, cm_path(f, "", "default", "cm1"));
	EXPECT_STATUS(f, r, 404, "NotFound", "configmaps \"cm1\" not found");
	r = DEL(f, cm_path(f, "", "default", "cm1"), NULL);
	EXPECT_STATUS(f, r, 404, "NotFound", "configmaps \"cm1\" not found");

	resp *p = mk_project(f, "p1", NULL);
	r       = DEL(f, PROJECTS "/p1", NULL);
	EXPECT_CODE(f, r, 200);
	EXPECT_JS(f, r, "status", "Success");
	EXPECT_JS(f, r, "details.name", "p1");
	EXPECT_JS(f, r, "details.group", "resourcemanager.miloapis.com");
	EXPECT_JS(f, r, "details.kind", "projects");
	EXPECT_JS(f, r, "details.uid", JS(p->j, "metadata.uid"));
	r = GET(f, PROJECTS "/p1");
	EXPECT_CODE(f, r, 404);
	finish(f);
}

static void
test_api_delete_with_finalizers(void **state)
{
	fx   *f = *state;
	resp *c = POST(f, cm_path(f, "", "default", NULL),
	    Q(f,
	        "{'metadata':{'name':'cm1','finalizers':['example.com/x']}}"));
	NEED_CODE(f, c, 201);
	resp *r = DEL(f, cm_path(f, "", "default", "cm1"), NULL);
	EXPECT_CODE(f, r, 200);
	EXPECT_JS(f, r, "kind", "ConfigMap");
	EXPECT(f, r, is_k8s_time(JS(r->j, "metadata.deletionTimestamp")),
	    "deletionTimestamp set");
	EXPECT_INT(f, r, JI(r->j, "metadata.deletionGracePeriodSeconds"), 0);
	EXPECT(f, r, J(r->j, "metadata.generation") == NULL,
	    "ConfigMap has no generation");
	const char *drv = JS(r->j, "metadata.resourceVersion");
	EXPECT(f, r,
	    rv_num(drv) > rv_num(JS(c->j, "metadata.resourceVersion")),
	    "the deletion mark is a persisted write");
	r = GET(f, cm_path(f, "", "default", "cm1"));
	EXPECT_CODE(f, r, 200);
	/* Already deleting: same object, no change. */
	uint64_t before = plane_rv(f, "");
	r               = DEL(f, cm_path(f, "", "default", "cm1"), NULL);
	EXPECT_CODE(f, r, 200);
	EXPECT_JS(f, r, "metadata.resourceVersion", drv);
	EXPECT_INT(f, NULL, plane_rv(f, ""), before);

	resp *p = mk_project(f, "p1", ",'finalizers':['example.com/hold']");
	EXPECT_INT(f, p, JI(p->j, "metadata.generation"), 1);
	r = DEL(f, PROJECTS "/p1", NULL);
	EXPECT_CODE(f, r, 200);
	EXPECT_JS(f, r, "kind", "Project");
	EXPECT(f, r, J(r->j, "metadata.deletionTimestamp") != NULL,
	    "deletionTimestamp set");
	EXPECT_INT(f, r, JI(r->j, "metadata.generation"), 2);
	/* The plane stays while the Project does. */
	r = GET(f, S(f, "%s/api/v1/namespaces", proj_prefix(f, "p1")));
	EXPECT_CODE(f, r, 200);
	finish(f);
}

static void
test_api_finalizers_while_deleting(void **state)
{
	fx   *f = *state;
	resp *c = POST(f, cm_path(f, "", "default", NULL),
	    Q(f,
	        "{'metadata':{'name':'cm1','finalizers':['example.com/x',"
	        "'example.com/y']}}"));
	NEED_CODE(f, c, 201);
	resp *d = DEL(f, cm_path(f, "", "default", "cm1"), NULL);
	NEED_CODE(f, d, 200);
	uint64_t before = plane_rv(f, "");
	wstream *w      = watch_open(f,
	         S(f, "%s?watch=1&resourceVersion=%llu",
	             cm_path(f, "", "default", NULL), (unsigned long long) before));

	resp *r = MERGE(f, cm_path(f, "", "default", "cm1"),
	    Q(f,
	        "{'metadata':{'finalizers':['example.com/x','example.com/y',"
	        "'example.com/new']}}"));
	EXPECT_STATUS_CONTAINS(f, r, 422, "Invalid",
	    "metadata.finalizers: Forbidden: no new finalizers can be added "
	    "if "
	    "the object is being deleted, found new finalizers "
	    "[]string{\"example.com/new\"}");
	EXPECT_INT(f, NULL, plane_rv(f, ""), before);

	/* The deletion fields cannot be changed by an update. */
	r = MERGE(f, cm_path(f, "", "default", "cm1"),
	    Q(f, "{'metadata':{'deletionTimestamp':'2001-01-01T00:00:00Z'}}"));
	EXPECT(f, r,
	    r->code != 200
	        || strcmp(nz(JS(r->j, "metadata.deletionTimestamp"), ""),
	               nz(JS(d->j, "metadata.deletionTimestamp"), ""))
	            == 0,
	    "an update must keep the stored deletionTimestamp");

	/* Removing one finalizer: MODIFIED; the last one: removed. */
	r = MERGE(f, cm_path(f, "", "default", "cm1"),
	    Q(f, "{'metadata':{'finalizers':['example.com/y']}}"));
	EXPECT_CODE(f, r, 200);
	r = GET(f, cm_path(f, "", "default", "cm1"));
	EXPECT_CODE(f, r, 200);
	json_t *o = copy_of(f, r->j);
	json_object_set_new(J(o, "metadata"), "finalizers", json_array());
	r = PUT(f, cm_path(f, "", "default", "cm1"), D(f, o));
	EXPECT_CODE(f, r, 200);
	uint64_t final_rv = rv_num(JS(r->j, "metadata.resourceVersion"));
	r                 = GET(f, cm_path(f, "", "default", "cm1"));
	EXPECT_STATUS(f, r, 404, "NotFound", "configmaps \"cm1\" not found");
	EXPECT_INT(f, NULL, plane_rv(f, ""), final_rv);

	watch_wait(w, 2, 3000);
	watch_idle(w, 100);
	EXPECT(f, NULL,
	    json_array_size(w->events) == 2
	        && strcmp(nz(ev_type(w, 0), ""), "MODIFIED") == 0
	        && strcmp(nz(ev_type(w, 1), ""), "DELETED") == 0,
	    "events %s, want MODIFIED DELETED", ev_summary(f, w));
	if (json_array_size(w->events) == 2)
		EXPECT_INT(f, NULL, ev_rv(w, 1), final_rv);

	/* A Project: the same through the last finalizer; its plane goes. */
	mk_project(f, "p1", ",'finalizers':['example.com/hold']");
	NEED_CODE(f, DEL(f, PROJECTS "/p1", NULL), 200);
	r = MERGE(f, PROJECTS "/p1",
	    Q(f,
	        "{'metadata':{'finalizers':['example.com/hold','a.com/b']}}"));
	EXPECT_STATUS_CONTAINS(f, r, 422, "Invalid",
	    "no new finalizers can be added if the object is being deleted");
	r = MERGE(f, PROJECTS "/p1", Q(f, "{'metadata':{'finalizers':null}}"));
	EXPECT_CODE(f, r, 200);
	r = GET(f, PROJECTS "/p1");
	EXPECT_CODE(f, r, 404);
	r = GET(f, S(f, "%s/api/v1/namespaces", proj_prefix(f, "p1")));
	EXPECT_STATUS(f, r, 404, "NotFound",
	    "projects.resourcemanager.miloapis.com \"p1\" not found");
	finish(f);
}

static void
test_api_delete_preconditions_409(void **state)
{
	fx         *f      = *state;
	resp       *c      = mk_cm(f, "", "default", "cm1", "a", "1");
	const char *uid    = JS(c->j, "metadata.uid");
	const char *rv     = JS(c->j, "metadata.resourceVersion");
	uint64_t    before = plane_rv(f, "");
	resp       *r      = DEL(f, cm_path(f, "", "default", "cm1"),
	               Q(f, "{'preconditions':{'uid':'wrong-uid'}}"));
	EXPECT_STATUS(f, r, 409, "Conflict",
	    S(f,
	        "Operation cannot be fulfilled on configmaps \"cm1\": "
	        "Precondition failed: UID in precondition: wrong-uid, UID in "
	        "object meta: %s",
	        uid));
	EXPECT_JS(f, r, "details.name", "cm1");
	r = DEL(f, cm_path(f, "", "default", "cm1"),
	    Q(f, "{'preconditions':{'resourceVersion':'1'}}"));
	EXPECT_STATUS(f, r, 409, "Conflict",
	    S(f,
	        "Operation cannot be fulfilled on configmaps \"cm1\": "
	        "Precondition failed: ResourceVersion in precondition: 1, "
	        "ResourceVersion in object meta: %s",
	        rv));
	EXPECT_INT(f, NULL, plane_rv(f, ""), before);
	r = GET(f, cm_path(f, "", "default", "cm1"));
	EXPECT_CODE(f, r, 200);
	r = DEL(f, cm_path(f, "", "default", "cm1"),
	    Q(f, "{'preconditions':{'uid':'%s','resourceVersion':'%s'}}", uid,
	        rv));
	EXPECT_CODE(f, r, 200);
	EXPECT_JS(f, r, "status", "Success");
	finish(f);
}

static void
test_api_namespace_deletion(void **state)
{
	fx *f = *state;
	mk_ns(f, "", "doomed");
	mk_cm(f, "", "doomed", "a", "k", "v");
	mk_cm(f, "", "doomed", "b", "k", "v");
	NEED_CODE(f,
	    POST(f, "/api/v1/namespaces/doomed/secrets",
	        Q(f, "{'metadata':{'name':'s'},'stringData':{'p':'w'}}")),
	    201);
	NEED_CODE(f,
	    POST(f, cm_path(f, "", "doomed", NULL),
	        Q(f,
	            "{'metadata':{'name':'held','finalizers':["
	            "'example.com/hold']}}")),
	    201);
	resp *r = DEL(f, "/api/v1/namespaces/doomed", NULL);
	EXPECT_CODE(f, r, 200);
	EXPECT_JS(f, r, "kind", "Namespace");
	EXPECT_JS(f, r, "status.phase", "Terminating");
	EXPECT(f, r, J(r->j, "metadata.deletionTimestamp") != NULL,
	    "deletionTimestamp set");

	r = POST(f, cm_path(f, "", "doomed", NULL),
	    Q(f, "{'metadata':{'name':'late'}}"));
	EXPECT_STATUS(f, r, 403, "Forbidden",
	    "configmaps \"late\" is forbidden: unable to create new content "
	    "in namespace doomed because it is being terminated");

	/* The contents go; the finalizer-held one stays, marked. */
	int64_t end  = deadline(5000);
	bool    gone = false;
	while (!gone && now_ms() < end) {
		gone = GET(f, cm_path(f, "", "doomed", "a"))->code == 404
		    && GET(f, cm_path(f, "", "doomed", "b"))->code == 404
		    && GET(f, "/api/v1/namespaces/doomed/secrets/s")->code
		        == 404;
		if (!gone)
			sleep_ms(50);
	}
	EXPECT(f, NULL, gone, "namespace contents not deleted within 5 s");
	r = GET(f, cm_path(f, "", "doomed", "held"));
	EXPECT_CODE(f, r, 200);
	EXPECT(f, r, J(r->j, "metadata.deletionTimestamp") != NULL,
	    "held object must be marked for deletion");
	sleep_ms(300);
	r = GET(f, "/api/v1/namespaces/doomed");
	EXPECT_CODE(f, r, 200);
	EXPECT_JS(f, r, "status.phase", "Terminating");

	/* Releasing the finalizer lets the namespace go. */
	r = MERGE(f, cm_path(f, "", "doomed", "held"),
	    Q(f, "{'metadata':{'finalizers':null}}"));
	EXPECT_CODE(f, r, 200);
	end  = deadline(5000);
	gone = false;
	while (!gone && now_ms() < end) {
		gone = GET(f, "/api/v1/namespaces/doomed")->code == 404;
		if (!gone)
			sleep_ms(50);
	}
	EXPECT(f, NULL, gone, "namespace not removed within 5 s");
	r = GET(f, cm_path(f, "", "doomed", "held"));
	EXPECT_CODE(f, r, 404);
	/* Creating in it now: the namespace is missing. */
	r = POST(f, cm_path(f, "", "doomed", NULL),
	    Q(f, "{'metadata':{'name':'after'}}"));
	EXPECT_STATUS(
	    f, r, 404, "NotFound", "namespaces \"doomed\" not found");
	finish(f);
}

/* ===================================================================== */
/* Lists                                                                  */
/* ===================================================================== */

static void
test_api_list_pages_share_snapshot(void **state)
{
	fx *f = *state;
	mk_ns(f, "", "pages");
	const char *names[] = { "p1", "p2", "p3", "p4", "p5" };
	for (int i = 0; i < 5; i++)
		mk_cm(f, "", "pages", names[i], "v", "orig");
	const char *col = cm_path(f, "", "pages", NULL);
	resp       *r1  = GET(f, S(f, "%s?limit=2", col));
	NEED_CODE(f, r1, 200);
	const char *snap = JS(r1->j, "metadata.resourceVersion");
	const char *tok  = JS(r1->j, "metadata.continue");
	EXPECT_STR(f, r1, names_of(f, r1), "p1,p2");
	EXPECT_JS(f, r1, "kind", "ConfigMapList");
	EXPECT_JS(f, r1, "apiVersion", "v1");
	EXPECT_INT(f, r1, rv_num(snap), plane_rv(f, ""));
	NEED(f, tok != NULL && tok[0] != '\0');

	/* Writes between pages. */
	mk_cm(f, "", "pages", "p0", "v", "new");
	mk_cm(f, "", "pages", "p35", "v", "new");
	NEED_CODE(f, DEL(f, cm_path(f, "", "pages", "p4"), NULL), 200);
	NEED_CODE(f,
	    MERGE(f, cm_path(f, "", "pages", "p3"),
	        Q(f, "{'data':{'v':'changed'}}")),
	    200);

	resp *r2 = GET(f, S(f, "%s?limit=2&continue=%s", col, tok));
	NEED_CODE(f, r2, 200);
	EXPECT_JS(f, r2, "metadata.resourceVersion", snap);
	EXPECT_STR(f, r2, names_of(f, r2), "p3,p4");
	EXPECT_JS(f, r2, "items.0.data.v", "orig");
	const char *tok2 = JS(r2->j, "metadata.continue");
	NEED(f, tok2 != NULL && tok2[0] != '\0');
	resp *r3 = GET(f, S(f, "%s?limit=2&continue=%s", col, tok2));
	NEED_CODE(f, r3, 200);
	EXPECT_JS(f, r3, "metadata.resourceVersion", snap);
	EXPECT_STR(f, r3, names_of(f, r3), "p5");
	EXPECT(f, r3,
	    J(r3->j, "metadata.continue") == NULL
	        || strcmp(nz(JS(r3->j, "metadata.continue"), ""), "") == 0,
	    "the last page has no continue");

	/* The latest state, for contrast. */
	resp *all = GET(f, col);
	EXPECT_STR(f, all, names_of(f, all), "p0,p1,p2,p3,p35,p5");
	EXPECT(f, all, J(all->j, "metadata.continue") == NULL,
	    "unpaged list has no continue");
	/* RV=0 ignores limit (simulator default, §3.2). */
	resp *z = GET(f, S(f, "%s?resourceVersion=0&limit=2", col));
	EXPECT_CODE(f, z, 200);
	EXPECT_INT(f, z, json_array_size(J(z->j, "items")), 6);
	EXPECT(f, z, J(z->j, "metadata.continue") == NULL,
	    "RV=0 list has no continue");
	/* continue with a resourceVersion is refused. */
	resp *bad = GET(f,
	    S(f, "%s?limit=2&continue=%s&resourceVersion=%s", col, tok, snap));
	EXPECT_STATUS(f, bad, 400, "BadRequest",
	    "specifying resource version is not allowed when using continue");
	finish(f);
}

static void
test_api_list_malformed_continue_400(void **state)
{
	fx                      *f      = *state;
	static const char *const toks[] = { "garbage!",
		"bm90LWpzb24=", "eyJ2IjoibWV0YS5rOHMuaW8vdjEifQ==" };
	for (size_t i = 0; i < sizeof(toks) / sizeof(toks[0]); i++) {
		resp *r = GET(f,
		    S(f, "%s?limit=2&continue=%s",
		        cm_path(f, "", "default", NULL), toks[i]));
		EXPECT_STATUS_PREFIX(
		    f, r, 400, "BadRequest", "continue key is not valid: ");
	}
	finish(f);
}

static void
test_api_list_continue_after_compaction_410(void **state)
{
	fx *f = *state;
	mk_ns(f, "", "cc");
	for (int i = 1; i <= 4; i++)
		mk_cm(f, "", "cc", S(f, "c%d", i), "v", "1");
	const char *col = cm_path(f, "", "cc", NULL);
	resp       *r1  = GET(f, S(f, "%s?limit=2", col));
	NEED_CODE(f, r1, 200);
	const char *tok = JS(r1->j, "metadata.continue");
	NEED(f, tok != NULL);
	mk_cm(f, "", "cc", "c5", "v", "1");
	resp *c = POST(f, "/_sim/compact", "{\"rv\":\"current\"}");
	EXPECT_CODE(f, c, 200);
	resp *r = GET(f, S(f, "%s?limit=2&continue=%s", col, tok));
	EXPECT_STATUS(f, r, 410, "Expired",
	    "The provided continue parameter is too old to display a "
	    "consistent list result. You can start a new list without the "
	    "continue parameter, or use the continue token in this response "
	    "to retrieve the remainder of the results. Continuing with the "
	    "provided token results in an inconsistent list - objects that "
	    "were created, modified, or deleted between the time the first "
	    "chunk was returned and now may show up in the list.");
	const char *tok2 = JS(r->j, "metadata.continue");
	EXPECT(f, r, tok2 != NULL && tok2[0] != '\0',
	    "the 410 Status must carry metadata.continue");
	if (tok2 != NULL && tok2[0] != '\0') {
		/* The inconsistent token continues at latest. */
		resp *r2 = GET(f, S(f, "%s?continue=%s", col, tok2));
		EXPECT_CODE(f, r2, 200);
		EXPECT_STR(f, r2, names_of(f, r2), "c3,c4,c5");
	}
	finish(f);
}

static void
test_api_list_exact_rv(void **state)
{
	fx *f = *state;
	mk_ns(f, "", "ex");
	mk_cm(f, "", "ex", "a", "v", "1");
	uint64_t    r0  = plane_rv(f, "");
	const char *col = cm_path(f, "", "ex", NULL);
	mk_cm(f, "", "ex", "b", "v", "1");
	MERGE(f, cm_path(f, "", "ex", "a"), Q(f, "{'data':{'v':'2'}}"));

	/* Legacy RV=N with limit is Exact N. */
	resp *r = GET(f,
	    S(f, "%s?resourceVersion=%llu&limit=10", col,
	        (unsigned long long) r0));
	EXPECT_CODE(f, r, 200);
	EXPECT_STR(f, r, names_of(f, r), "a");
	EXPECT_JS(f, r, "items.0.data.v", "1");
	EXPECT_INT(f, r, rv_num(JS(r->j, "metadata.resourceVersion")), r0);
	r = GET(f,
	    S(f, "%s?resourceVersion=%llu&resourceVersionMatch=Exact", col,
	        (unsigned long long) r0));
	EXPECT_CODE(f, r, 200);
	EXPECT_STR(f, r, names_of(f, r), "a");
	EXPECT_INT(f, r, rv_num(JS(r->j, "metadata.resourceVersion")), r0);
	/* Without limit: NotOlderThan, latest. */
	r = GET(
	    f, S(f, "%s?resourceVersion=%llu", col, (unsigned long long) r0));
	EXPECT_CODE(f, r, 200);
	EXPECT_STR(f, r, names_of(f, r), "a,b");
	EXPECT_JS(f, r, "items.0.data.v", "2");

	NEED_CODE(f, POST(f, "/_sim/compact", "{\"rv\":\"current\"}"), 200);
	r = GET(f,
	    S(f, "%s?resourceVersion=%llu&limit=10", col,
	        (unsigned long long) r0));
	EXPECT_STATUS(f, r, 410, "Expired",
	    "The resourceVersion for the provided list is too old.");
	r = GET(f,
	    S(f, "%s?resourceVersion=%llu&resourceVersionMatch=Exact", col,
	        (unsigned long long) r0));
	EXPECT_STATUS(f, r, 410, "Expired",
	    "The resourceVersion for the provided list is too old.");
	/* NotOlderThan an old RV is still fine. */
	r = GET(f,
	    S(f,
	        "%s?resourceVersion=%llu&resourceVersionMatch="
	        "NotOlderThan",
	        col, (unsigned long long) r0));
	EXPECT_CODE(f, r, 200);
	finish(f);
}

static void
test_api_list_rv_too_large_504(void **state)
{
	fx         *f    = *state;
	uint64_t    cur  = plane_rv(f, "");
	uint64_t    big  = cur + 1000;
	const char *want = S(f,
	    "Timeout: Too large resource version: %llu, "
	    "current: %llu",
	    (unsigned long long) big, (unsigned long long) cur);
	const char *qs[] = { "", "&resourceVersionMatch=NotOlderThan",
		"&resourceVersionMatch=Exact", "&limit=5" };
	for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
		resp *r = GET(f,
		    S(f, "%s?resourceVersion=%llu%s",
		        cm_path(f, "", "default", NULL),
		        (unsigned long long) big, qs[i]));
		EXPECT_STATUS(f, r, 504, "Timeout", want);
		EXPECT_JS(f, r, "details.causes.0.reason",
		    "ResourceVersionTooLarge");
		EXPECT_JS(f, r, "details.causes.0.message",
		    "Too large resource version");
		EXPECT_INT(f, r, JI(r->j, "details.retryAfterSeconds"), 1);
		EXPECT_STR(f, r, header(f, r, "Retry-After"), "1");
	}
	/* Non-numeric RV: 400. */
	resp *r = GET(f,
	    S(f, "%s?resourceVersion=abc", cm_path(f, "", "default", NULL)));
	EXPECT_STATUS(
	    f, r, 400, "BadRequest", "invalid resource version: abc");
	finish(f);
}

static void
expect_list_options_at(
    fx *f, int line, const resp *r, const char *field, const char *msg)
{
	const char *full = S(f,
	    "ListOptions.meta.k8s.io \"\" is invalid: %s: "
	    "Forbidden: %s",
	    field, msg);
	expect_status_at(f, line, r, 422, "Invalid", MSG_EXACT, full);
	expect_str_at(f, line, r, "details.group", JS(r->j, "details.group"),
	    "meta.k8s.io");
	expect_str_at(f, line, r, "details.kind", JS(r->j, "details.kind"),
	    "ListOptions");
}
#define EXPECT_LIST_OPTIONS(f, r, field, msg)                                 \
	expect_list_options_at((f), __LINE__, (r), (field), (msg))

static void
test_api_list_options_validation_422(void **state)
{
	fx         *f   = *state;
	const char *col = cm_path(f, "", "default", NULL);
	resp *r = GET(f, S(f, "%s?resourceVersionMatch=NotOlderThan", col));
	EXPECT_LIST_OPTIONS(f, r, "resourceVersionMatch",
	    "resourceVersionMatch is forbidden unless resourceVersion is "
	    "provided");
	r = GET(f,
	    S(f,
	        "%s?resourceVersion=0&resourceVersionMatch="
	        "NotOlderThan&continue=abc",
	        col));
	EXPECT_LIST_OPTIONS(f, r, "resourceVersionMatch",
	    "resourceVersionMatch is forbidden when continue is provided");
	r = GET(
	    f, S(f, "%s?resourceVersion=0&resourceVersionMatch=Exact", col));
	EXPECT_LIST_OPTIONS(f, r, "resourceVersionMatch",
	    "resourceVersionMatch \"exact\" is forbidden for resourceVersion "
	    "\"0\"");
	r = GET(f, S(f, "%s?sendInitialEvents=true", col));
	EXPECT_LIST_OPTIONS(f, r, "sendInitialEvents",
	    "sendInitialEvents is forbidden for list");
	r = GET(f,
	    S(f, "%s?resourceVersion=1&resourceVersionMatch=Sometimes", col));
	EXPECT_STATUS_CONTAINS(f, r, 422, "Invalid", "Unsupported value");
	EXPECT_STATUS_PREFIX(f, r, 422, "Invalid",
	    "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: "
	    "Unsupported value: \"Sometimes\"");
	EXPECT_JS(f, r, "details.group", "meta.k8s.io");
	EXPECT_JS(f, r, "details.kind", "ListOptions");

	/* Watch-side rules. */
	r = GET(f, S(f, "%s?watch=1&sendInitialEvents=true", col));
	EXPECT_LIST_OPTIONS(f, r, "sendInitialEvents",
	    "sendInitialEvents requires setting resourceVersionMatch to "
	    "NotOlderThan");
	r = GET(f,
	    S(f,
	        "%s?watch=1&resourceVersion=0&resourceVersionMatch="
	        "NotOlderThan",
	        col));
	EXPECT_LIST_OPTIONS(f, r, "resourceVersionMatch",
	    "resourceVersionMatch is forbidden for watch unless "
	    "sendInitialEvents is provided");
	finish(f);
}

static void
test_api_label_selectors(void **state)
{
	fx *f = *state;
	mk_ns(f, "", "lsel");
	const char *col = cm_path(f, "", "lsel", NULL);
	NEED_CODE(f,
	    POST(f, col,
	        Q(f,
	            "{'metadata':{'name':'a','labels':{"
	            "'env':'prod','tier':'web'}}}")),
	    201);
	NEED_CODE(f,
	    POST(f, col,
	        Q(f,
	            "{'metadata':{'name':'b','labels':{"
	            "'env':'dev'}}}")),
	    201);
	NEED_CODE(f, POST(f, col, Q(f, "{'metadata':{'name':'c'}}")), 201);
	NEED_CODE(f,
	    POST(f, col,
	        Q(f,
	            "{'metadata':{'name':'d','labels':{"
	            "'env':''}}}")),
	    201);
	static const struct {
		const char *sel;
		const char *want;
	} cases[] = {
		{ "env%3Dprod", "a" },
		{ "env%3D%3Dprod", "a" },
		{ "env!%3Dprod", "b,c,d" },
		{ "env+in+(prod,dev)", "a,b" },
		{ "env%20in%20(prod%2Cdev)", "a,b" },
		{ "env+notin+(prod)", "b,c,d" },
		{ "env", "a,b,d" },
		{ "!env", "c" },
		{ "env%3Dprod,tier%3Dweb", "a" },
		{ "env%3Dprod,tier!%3Dweb", "" },
		{ "+env+%3D+dev+", "b" },
		/* `k=` wants the key with an empty value. */
		{ "env%3D", "d" },
		{ "env+in+(dev,)", "b,d" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		resp *r
		    = GET(f, S(f, "%s?labelSelector=%s", col, cases[i].sel));
		if (EXPECT_CODE(f, r, 200))
			EXPECT_STR(f, r, names_of(f, r), cases[i].want);
	}
	resp *r = GET(f, S(f, "%s?labelSelector=env%%3Da%%24b", col));
	EXPECT_STATUS_PREFIX(
	    f, r, 400, "BadRequest", "unable to parse requirement: ");
	r = GET(f, S(f, "%s?labelSelector=-bad-key%%3Dx", col));
	EXPECT_STATUS_PREFIX(
	    f, r, 400, "BadRequest", "unable to parse requirement: ");
	r = GET(f, S(f, "%s?labelSelector=env+in+(prod", col));
	EXPECT_STATUS(f, r, 400, "BadRequest", NULL);
	/* Watches check selectors before streaming. */
	r = GET(f, S(f, "%s?watch=1&labelSelector=env%%3Da%%24b", col));
	EXPECT_STATUS_PREFIX(
	    f, r, 400, "BadRequest", "unable to parse requirement: ");
	finish(f);
}

static void
test_api_field_selectors(void **state)
{
	fx *f = *state;
	mk_ns(f, "", "fsel");
	mk_cm(f, "", "fsel", "a", "k", "v");
	mk_cm(f, "", "fsel", "b", "k", "v");
	mk_cm(f, "", "default", "a", "k", "v");
	const char *col = cm_path(f, "", "fsel", NULL);
	resp *r = GET(f, S(f, "%s?fieldSelector=metadata.name%%3Da", col));
	EXPECT_STR(f, r, names_of(f, r), "a");
	r = GET(f, S(f, "%s?fieldSelector=metadata.name!%%3Da", col));
	EXPECT_STR(f, r, names_of(f, r), "b");
	r = GET(f, S(f, "%s?fieldSelector=metadata.name%%3D%%3Db", col));
	EXPECT_STR(f, r, names_of(f, r), "b");
	r = GET(
	    f, "/api/v1/configmaps?fieldSelector=metadata.namespace%3Dfsel");
	EXPECT_STR(f, r, names_of(f, r), "a,b");
	r = GET(f,
	    "/api/v1/configmaps?fieldSelector=metadata.name%3Da,"
	    "metadata.namespace!%3Dfsel");
	EXPECT_STR(f, r, names_of(f, r), "a");
	EXPECT_JS(f, r, "items.0.metadata.namespace", "default");
	/* Items sorted by namespace/name. */
	r = GET(f, "/api/v1/configmaps?fieldSelector=metadata.name%3Da");
	EXPECT_STR(f, r, JS(r->j, "items.0.metadata.namespace"), "default");
	EXPECT_STR(f, r, JS(r->j, "items.1.metadata.namespace"), "fsel");
	r = GET(f, S(f, "%s?fieldSelector=spec.foo%%3D1", col));
	EXPECT_STATUS(
	    f, r, 400, "BadRequest", "field label not supported: spec.foo");
	r = GET(f, S(f, "%s?watch=1&fieldSelector=spec.foo%%3D1", col));
	EXPECT_STATUS(
	    f, r, 400, "BadRequest", "field label not supported: spec.foo");
	finish(f);
}

static void
test_api_list_empty_items_array(void **state)
{
	fx *f = *state;
	mk_ns(f, "", "empty");
	resp *r = GET(f, cm_path(f, "", "empty", NULL));
	EXPECT_CODE(f, r, 200);
	EXPECT(f, r,
	    json_is_array(J(r->j, "items"))
	        && json_array_size(J(r->j, "items")) == 0,
	    "items must be [] (§3.2)");
	EXPECT(f, r, r->body.p && strstr(r->body.p, "\"items\":[]") != NULL,
	    "raw body must contain \"items\":[]");
	EXPECT_JS(f, r, "kind", "ConfigMapList");
	EXPECT(f, r, JS(r->j, "metadata.resourceVersion") != NULL,
	    "empty list still has metadata.resourceVersion");
	r = GET(
	    f, "/api/v1/namespaces/default/secrets?labelSelector=no%3Dmatch");
	EXPECT(f, r,
	    json_is_array(J(r->j, "items"))
	        && json_array_size(J(r->j, "items")) == 0,
	    "items must be [] with a selector matching nothing");
	r = GET(f, "/apis/coordination.k8s.io/v1/leases?limit=5");
	EXPECT(f, r, json_is_array(J(r->j, "items")), "lease items array");
	EXPECT_JS(f, r, "apiVersion", "coordination.k8s.io/v1");
	EXPECT_JS(f, r, "kind", "LeaseList");
	r = GET(f, PROJECTS);
	EXPECT(f, r,
	    json_is_array(J(r->j, "items"))
	        && json_array_size(J(r->j, "items")) == 0,
	    "empty project list");
	finish(f);
}

/* ===================================================================== */
/* Watch                                                                  */
/* ===================================================================== */

static void
test_api_watch_initial_added(void **state)
{
	fx *f = *state;
	mk_ns(f, "", "wi");
	mk_cm(f, "", "wi", "a", "k", "v");
	mk_cm(f, "", "wi", "b", "k", "v");
	const char *col  = cm_path(f, "", "wi", NULL);
	const char *qs[] = { "watch=1",
		"watch=1&resourceVersion=", "watch=1&resourceVersion=0",
		"watch=True", "watch=true" };
	for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
		wstream *w = watch_open(f, S(f, "%s?%s", col, qs[i]));
		EXPECT_INT(f, NULL, w->code, 200);
		watch_wait(w, 2, 3000);
		EXPECT(f, NULL,
		    json_array_size(w->events) == 2
		        && strcmp(nz(ev_type(w, 0), ""), "ADDED") == 0
		        && strcmp(nz(ev_type(w, 1), ""), "ADDED") == 0
		        && strcmp(nz(ev_name(w, 0), ""), "a") == 0
		        && strcmp(nz(ev_name(w, 1), ""), "b") == 0,
		    "?%s: events %s, want ADDED:a ADDED:b", qs[i],
		    ev_summary(f, w));
		EXPECT(f, NULL, !w->done, "?%s: stream ended", qs[i]);
		watch_close(w);
	}
	/* watch=false and watch=0 are lists (§0 booleans). */
	resp *l = GET(f, S(f, "%s?watch=false", col));
	EXPECT_JS(f, l, "kind", "ConfigMapList");
	l = GET(f, S(f, "%s?watch=0", col));
	EXPECT_JS(f, l, "kind", "ConfigMapList");

	wstream *w = watch_open(f, S(f, "%s?watch=1", col));
	watch_wait(w, 2, 3000);
	mk_cm(f, "", "wi", "c", "k", "v");
	watch_wait(w, 3, 3000);
	EXPECT(f, NULL,
	    json_array_size(w->events) == 3
	        && strcmp(nz(ev_type(w, 2), ""), "ADDED") == 0
	        && strcmp(nz(ev_name(w, 2), ""), "c") == 0,
	    "events %s, want ... ADDED:c", ev_summary(f, w));
	EXPECT_INT(f, NULL, w->bad, 0);
	/* sendInitialEvents=false: latest, nothing synthetic. */
	wstream *w2 = watch_open(f,
	    S(f,
	        "%s?watch=1&sendInitialEvents=false&resourceVersionMatch="
	        "NotOlderThan",
	        col));
	mk_cm(f, "", "wi", "d", "k", "v");
	watch_wait(w2, 1, 3000);
	watch_idle(w2, 100);
	EXPECT(f, NULL,
	    json_array_size(w2->events) == 1
	        && strcmp(nz(ev_name(w2, 0), ""), "d") == 0,
	    "sendInitialEvents=false: events %s, want ADDED:d",
	    ev_summary(f, w2));
	finish(f);
}

static void
test_api_watch_from_rv_in_order(void **state)
{
	fx *f = *state;
	mk_ns(f, "", "wr");
	mk_cm(f, "", "wr", "old", "k", "v");
	resp    *l  = GET(f, cm_path(f, "", "wr", NULL));
	uint64_t r0 = rv_num(JS(l->j, "metadata.resourceVersion"));
	mk_cm(f, "", "wr", "x", "k", "1");
	NEED_CODE(f,
	    MERGE(f, cm_path(f, "", "wr", "x"), Q(f, "{'data':{'k':'2'}}")),
	    200);
	mk_cm(f, "", "default", "elsewhere", "k", "v");
	NEED_CODE(f, DEL(f, cm_path(f, "", "wr", "x"), NULL), 200);
	uint64_t del_rv = plane_rv(f, "");

	wstream *w = watch_open(f,
	    S(f, "%s?watch=1&resourceVersion=%llu", cm_path(f, "", "wr", NULL),
	        (unsigned long long) r0));
	watch_wait(w, 3, 3000);
	mk_cm(f, "", "wr", "y", "k", "v");
	watch_wait(w, 4, 3000);
	watch_idle(w, 100);
	EXPECT(f, NULL,
	    json_array_size(w->events) == 4
	        && strcmp(nz(ev_type(w, 0), ""), "ADDED") == 0
	        && strcmp(nz(ev_type(w, 1), ""), "MODIFIED") == 0
	        && strcmp(nz(ev_type(w, 2), ""), "DELETED") == 0
	        && strcmp(nz(ev_type(w, 3), ""), "ADDED") == 0
	        && strcmp(nz(ev_name(w, 0), ""), "x") == 0
	        && strcmp(nz(ev_name(w, 3), ""), "y") == 0,
	    "events %s, want ADDED:x MODIFIED:x DELETED:x ADDED:y",
	    ev_summary(f, w));
	for (size_t i = 1; i < json_array_size(w->events); i++)
		EXPECT(f, NULL, ev_rv(w, i) > ev_rv(w, i - 1),
		    "event RVs not increasing: %s", ev_summary(f, w));
	if (json_array_size(w->events) >= 3) {
		EXPECT_INT(f, NULL, ev_rv(w, 2), del_rv);
		EXPECT_STR(f, NULL, JS(ev(w, 1), "object.data.k"), "2");
		EXPECT_STR(f, NULL, JS(ev(w, 2), "object.data.k"), "2");
		EXPECT(
		    f, NULL, ev_rv(w, 0) > r0, "first event after the list");
	}
	EXPECT_INT(f, NULL, w->bad, 0);
	/* Framing (§3.3): chunked JSON, no Content-Length. */
	const char *ct = header_in(f, &w->head, "Content-Type");
	EXPECT(f, NULL, ct && strncmp(ct, "application/json", 16) == 0,
	    "watch Content-Type %s", nz(ct, "(none)"));
	EXPECT_STR(
	    f, NULL, header_in(f, &w->head, "Transfer-Encoding"), "chunked");
	EXPECT(f, NULL, header_in(f, &w->head, "Content-Length") == NULL,
	    "a watch has no Content-Length");
	/* One line per event: every line ended with "\n" and parsed. */
	EXPECT(f, NULL, w->off == w->data.len,
	    "a partial line is pending in the stream");
	finish(f);
}

static void
test_api_watch_selector_transitions(void **state)
{
	fx *f = *state;
	mk_ns(f, "", "wt");
	const char *col = cm_path(f, "", "wt", NULL);
	wstream    *w   = watch_open(f,
	         S(f, "%s?watch=1&labelSelector=app%%3Dx&resourceVersion=%llu", col,
	             (unsigned long long) plane_rv(f, "")));
	mk_cm(f, "", "wt", "o", "k", "v");
	const char *path = cm_path(f, "", "wt", "o");
	NEED_CODE(f,
	    MERGE(f, path, Q(f, "{'metadata':{'labels':{'app':'x'}}}")), 200);
	NEED_CODE(f, MERGE(f, path, Q(f, "{'data':{'k':'2'}}")), 200);
	NEED_CODE(f,
	    MERGE(f, path, Q(f, "{'metadata':{'labels':{'app':'y'}}}")), 200);
	NEED_CODE(f, MERGE(f, path, Q(f, "{'data':{'k':'3'}}")), 200);
	NEED_CODE(f, DEL(f, path, NULL), 200);
	NEED_CODE(f,
	    POST(f, col,
	        Q(f,
	            "{'metadata':{'name':'sentinel',"
	            "'labels':{'app':'x'}}}")),
	    201);
	watch_wait(w, 4, 3000);
	watch_idle(w, 100);
	EXPECT(f, NULL,
	    json_array_size(w->events) == 4
	        && strcmp(nz(ev_type(w, 0), ""), "ADDED") == 0
	        && strcmp(nz(ev_type(w, 1), ""), "MODIFIED") == 0
	        && strcmp(nz(ev_type(w, 2), ""), "DELETED") == 0
	        && strcmp(nz(ev_type(w, 3), ""), "ADDED") == 0
	        && strcmp(nz(ev_name(w, 3), ""), "sentinel") == 0,
	    "events %s, want ADDED:o MODIFIED:o DELETED:o ADDED:sentinel",
	    ev_summary(f, w));
	if (json_array_size(w->events) >= 3) {
		EXPECT_STR(
		    f, NULL, JS(ev(w, 0), "object.metadata.labels.app"), "x");
		/* DELETED by transition carries the new state. */
		EXPECT_STR(
		    f, NULL, JS(ev(w, 2), "object.metadata.labels.app"), "y");
	}
	finish(f);
}

static void
test_api_watch_timeout_ends_cleanly(void **state)
{
	fx      *f    = *state;
	int64_t  t0   = now_ms();
	wstream *w    = watch_open(f,
	       S(f, "%s?watch=1&timeoutSeconds=1",
	           cm_path(f, "", "default", NULL)));
	bool     done = watch_wait_done(w, 5000);
	EXPECT(f, NULL, done, "stream did not end within 5 s");
	if (done) {
		EXPECT_INT(f, NULL, w->result, CURLE_OK);
		EXPECT_INT(f, NULL, w->code, 200);
		EXPECT(f, NULL, w->done_ms - t0 >= 900,
		    "ended after %lld ms, before the timeout",
		    (long long) (w->done_ms - t0));
	}
	EXPECT_INT(f, NULL, w->bad, 0);
	/* The server still serves afterwards (keep-alive or not). */
	EXPECT_CODE(f, GET(f, "/healthz"), 200);
	finish(f);
}

static void
test_api_watch_bookmarks(void **state)
{
	fx         *f   = *state;
	const char *col = cm_path(f, "", "default", NULL);
	uint64_t    cur = plane_rv(f, "");
	wstream    *w   = watch_open(f,
	         S(f,
	             "%s?watch=1&allowWatchBookmarks=True&"
	                  "resourceVersion=%llu",
	             col, (unsigned long long) cur));
	wstream    *nb  = watch_open(f,
	        S(f, "%s?watch=1&resourceVersion=%llu", col,
	            (unsigned long long) cur));
	watch_wait(w, 1, 3000);
	EXPECT(f, NULL,
	    json_array_size(w->events) >= 1
	        && strcmp(nz(ev_type(w, 0), ""), "BOOKMARK") == 0,
	    "events %s, want BOOKMARK", ev_summary(f, w));
	if (json_array_size(w->events) >= 1) {
		json_t *o = J(ev(w, 0), "object");
		EXPECT_STR(f, NULL, JS(o, "kind"), "ConfigMap");
		EXPECT_STR(f, NULL, JS(o, "apiVersion"), "v1");
		EXPECT_INT(
		    f, NULL, rv_num(JS(o, "metadata.resourceVersion")), cur);
	}
	mk_cm(f, "", "default", "bm", "k", "v");
	uint64_t after = plane_rv(f, "");
	int64_t  end   = deadline(3000);
	size_t   seen  = json_array_size(w->events);
	bool     found = false;
	while (!found && now_ms() < end) {
		watch_wait(w, seen + 1, 500);
		for (; seen < json_array_size(w->events); seen++)
			if (strcmp(nz(ev_type(w, seen), ""), "BOOKMARK") == 0
			    && ev_rv(w, seen) == after)
				found = true;
	}
	EXPECT(f, NULL, found, "no BOOKMARK at RV %llu after a write: %s",
	    (unsigned long long) after, ev_summary(f, w));
	/* Without allowWatchBookmarks: only the ADDED. */
	watch_idle(nb, 2 * BOOKMARK_MS);
	EXPECT(f, NULL,
	    json_array_size(nb->events) == 1
	        && strcmp(nz(ev_type(nb, 0), ""), "ADDED") == 0,
	    "no-bookmark watch got %s", ev_summary(f, nb));
	finish(f);
}

static void
test_api_watch_expired_410(void **state)
{
	fx      *f  = *state;
	uint64_t r0 = plane_rv(f, "");
	mk_cm(f, "", "default", "e1", "k", "1");
	MERGE(f, cm_path(f, "", "default", "e1"), Q(f, "{'data':{'k':'2'}}"));
	MERGE(f, cm_path(f, "", "default", "e1"), Q(f, "{'data':{'k':'3'}}"));
	resp *c = POST(f, "/_sim/compact", "{\"rv\":\"current\"}");
	NEED_CODE(f, c, 200);
	uint64_t floor = JI(c->j, "floor") > 0 ? (uint64_t) JI(c->j, "floor")
	                                       : plane_rv(f, "");
	wstream *w     = watch_open(f,
	        S(f, "%s?watch=1&resourceVersion=%llu",
	            cm_path(f, "", "default", NULL), (unsigned long long) r0));
	watch_wait_done(w, 3000);
	EXPECT_INT(f, NULL, w->code, 200);
	EXPECT(f, NULL, w->done, "the stream must end after the ERROR");
	EXPECT_INT(f, NULL, json_array_size(w->events), 1);
	json_t *o = J(ev(w, 0), "object");
	EXPECT_STR(f, NULL, ev_type(w, 0), "ERROR");
	EXPECT_STR(f, NULL, JS(o, "kind"), "Status");
	EXPECT_STR(f, NULL, JS(o, "apiVersion"), "v1");
	EXPECT_STR(f, NULL, JS(o, "status"), "Failure");
	EXPECT_STR(f, NULL, JS(o, "reason"), "Expired");
	EXPECT_INT(f, NULL, JI(o, "code"), 410);
	EXPECT_STR(f, NULL, JS(o, "message"),
	    S(f, "too old resource version: %llu (%llu)",
	        (unsigned long long) r0, (unsigned long long) floor));
	/* A watch from the current RV is fine. */
	wstream *w2 = watch_open(f,
	    S(f, "%s?watch=1&resourceVersion=%llu",
	        cm_path(f, "", "default", NULL), (unsigned long long) floor));
	mk_cm(f, "", "default", "e2", "k", "1");
	watch_wait(w2, 1, 3000);
	EXPECT(f, NULL,
	    json_array_size(w2->events) == 1
	        && strcmp(nz(ev_type(w2, 0), ""), "ADDED") == 0,
	    "events %s", ev_summary(f, w2));
	finish(f);
}

static void
test_api_watch_initial_events_end_bookmark(void **state)
{
	fx *f = *state;
	mk_ns(f, "", "sie");
	mk_cm(f, "", "sie", "a", "k", "v");
	mk_cm(f, "", "sie", "b", "k", "v");
	const char *col = cm_path(f, "", "sie", NULL);
	uint64_t    cur = plane_rv(f, "");
	wstream    *w   = watch_open(f,
	         S(f,
	             "%s?watch=1&sendInitialEvents=true&"
	                  "resourceVersionMatch=NotOlderThan&"
	                  "allowWatchBookmarks=true",
	             col));
	watch_wait(w, 3, 3000);
	EXPECT(f, NULL,
	    json_array_size(w->events) >= 3
	        && strcmp(nz(ev_type(w, 0), ""), "ADDED") == 0
	        && strcmp(nz(ev_type(w, 1), ""), "ADDED") == 0
	        && strcmp(nz(ev_type(w, 2), ""), "BOOKMARK") == 0,
	    "events %s, want ADDED ADDED BOOKMARK", ev_summary(f, w));
	if (json_array_size(w->events) >= 3) {
		json_t *o = J(ev(w, 2), "object");
		EXPECT_STR(f, NULL, JS(o, "kind"), "ConfigMap");
		EXPECT_STR(f, NULL, JS(o, "apiVersion"), "v1");
		EXPECT_INT(
		    f, NULL, rv_num(JS(o, "metadata.resourceVersion")), cur);
		EXPECT_STR(f, NULL,
		    json_string_value(
		        json_object_get(J(o, "metadata.annotations"),
		            "k8s.io/initial-events-end")),
		    "true");
	}
	mk_cm(f, "", "sie", "c", "k", "v");
	int64_t end   = deadline(3000);
	bool    found = false;
	while (!found && now_ms() < end) {
		watch_wait(w, json_array_size(w->events) + 1, 300);
		for (size_t i = 3; i < json_array_size(w->events); i++)
			if (strcmp(nz(ev_type(w, i), ""), "ADDED") == 0
			    && strcmp(nz(ev_name(w, i), ""), "c") == 0)
				found = true;
	}
	EXPECT(f, NULL, found, "no ADDED:c after the initial events: %s",
	    ev_summary(f, w));

	/* Without allowWatchBookmarks, no initial-events-end bookmark. */
	wstream *w2 = watch_open(f,
	    S(f,
	        "%s?watch=1&sendInitialEvents=true&"
	        "resourceVersionMatch=NotOlderThan",
	        col));
	watch_wait(w2, 3, 3000);
	mk_cm(f, "", "sie", "d", "k", "v");
	watch_wait(w2, 4, 3000);
	watch_idle(w2, 100);
	EXPECT(f, NULL,
	    json_array_size(w2->events) == 4
	        && strcmp(nz(ev_name(w2, 3), ""), "d") == 0,
	    "events %s, want ADDED:a ADDED:b ADDED:c ADDED:d",
	    ev_summary(f, w2));
	/* With an RV above the current: the 504 (ERROR event or reply). */
	wstream *w3 = watch_open(f,
	    S(f,
	        "%s?watch=1&sendInitialEvents=true&"
	        "resourceVersionMatch=NotOlderThan&"
	        "resourceVersion=%llu",
	        col, (unsigned long long) cur + 1000));
	watch_wait_done(w3, 5000);
	EXPECT(f, NULL,
	    w3->code == 504
	        || (json_array_size(w3->events) == 1
	            && strcmp(nz(ev_type(w3, 0), ""), "ERROR") == 0
	            && JI(ev(w3, 0), "object.code") == 504),
	    "RV > current: code %ld events %s", w3->code, ev_summary(f, w3));
	finish(f);
}

static void
test_api_watch_closed_by_project_delete(void **state)
{
	fx *f = *state;
	mk_project(f, "p1", NULL);
	mk_project(f, "p2", NULL);
	const char *pfx = proj_prefix(f, "p1");
	wstream    *w   = watch_open(
	         f, S(f, "%s?watch=1", cm_path(f, pfx, "default", NULL)));
	wstream *wn = watch_open(f,
	    S(f, "%s/api/v1/namespaces?watch=1",
	        "/projects/p1/control-plane"));
	wstream *w2 = watch_open(f,
	    S(f, "%s?watch=1",
	        cm_path(f, proj_prefix(f, "p2"), "default", NULL)));
	EXPECT_INT(f, NULL, w->code, 200);
	mk_cm(f, pfx, "default", "c", "k", "v");
	watch_wait(w, 1, 3000);
	EXPECT_INT(f, NULL, json_array_size(w->events), 1);
	NEED_CODE(f, DEL(f, PROJECTS "/p1", NULL), 200);
	EXPECT(f, NULL, watch_wait_done(w, 3000),
	    "watch on the deleted plane still open");
	EXPECT(f, NULL, watch_wait_done(wn, 3000),
	    "namespace watch on the deleted plane still open");
	if (w->done)
		EXPECT_INT(f, NULL, w->result, CURLE_OK);
	EXPECT(f, NULL, !watch_wait_done(w2, 300),
	    "the other plane's watch must stay open");
	finish(f);
}

/* ===================================================================== */
/* Projects and planes                                                    */
/* ===================================================================== */

static void
expect_plane_namespaces(fx *f, int line, const char *pfx)
{
	resp *r = GET(f, S(f, "%s/api/v1/namespaces", pfx));
	if (!expect_code_at(f, line, r, 200))
		return;
	expect_str_at(
	    f, line, r, "names", names_of(f, r), "default,milo-system");
	static const char *const want_label[]
	    = { "miloapis.com/project-default", "miloapis.com/system" };
	for (size_t i = 0; i < 2; i++) {
		json_t     *ns     = J(r->j, S(f, "items.%zu", i));
		json_t     *labels = J(ns, "metadata.labels");
		const char *name   = JS(ns, "metadata.name");
		expect_str_at(f, line, r, want_label[i],
		    json_string_value(json_object_get(labels, want_label[i])),
		    "true");
		expect_str_at(f, line, r, "kubernetes.io/metadata.name",
		    json_string_value(json_object_get(
		        labels, "kubernetes.io/metadata.name")),
		    name);
		expect_str_at(f, line, r, "status.phase",
		    JS(ns, "status.phase"), "Active");
		expect_at(f, line, r,
		    array_has_str(J(ns, "spec.finalizers"), "kubernetes"),
		    "spec.finalizers of %s must hold \"kubernetes\"",
		    name ? name : "?");
	}
}

static void
test_api_project_creates_plane(void **state)
{
	fx   *f = *state;
	resp *r = GET(f, S(f, "%s/api/v1/namespaces", proj_prefix(f, "p1")));
	EXPECT_CODE(f, r, 404);
	mk_project(f, "p1", NULL);
	expect_plane_namespaces(f, __LINE__, proj_prefix(f, "p1"));
	expect_plane_namespaces(f, __LINE__, "/projects/p1/control-plane");
	r = GET(f, S(f, "%s/version", proj_prefix(f, "p1")));
	EXPECT_CODE(f, r, 200);
	EXPECT_JS(f, r, "minor", "32");
	r = GET(f, "/projects/p1/control-plane/healthz");
	EXPECT_CODE(f, r, 200);
	/* The bare prefix is not rewritten: 404. */
	r = GET(f, PROJECTS "/p1/control-plane");
	EXPECT_CODE(f, r, 404);
	r = GET(f, "/projects/p1/control-plane");
	EXPECT_CODE(f, r, 404);
	/* Writes through one prefix are visible through the other. */
	mk_cm(f, "/projects/p1/control-plane", "default", "both", "k", "v");
	r = GET(f, cm_path(f, proj_prefix(f, "p1"), "default", "both"));
	EXPECT_CODE(f, r, 200);
	/* The root plane's seeded namespaces. */
	r = GET(f, "/api/v1/namespaces");
	EXPECT_STR(f, r, names_of(f, r),
	    "default,kube-node-lease,kube-public,kube-system");
	finish(f);
}

static void
test_api_planes_are_isolated(void **state)
{
	fx *f = *state;
	mk_project(f, "p1", NULL);
	mk_project(f, "p2", NULL);
	const char *p1 = proj_prefix(f, "p1"),
	           *p2 = "/projects/p2/control-plane";
	mk_cm(f, p1, "default", "shared", "where", "p1");
	mk_cm(f, "", "default", "shared", "where", "root");
	resp *r = GET(f, cm_path(f, p1, "default", "shared"));
	EXPECT_JS(f, r, "data.where", "p1");
	r = GET(f, cm_path(f, "", "default", "shared"));
	EXPECT_JS(f, r, "data.where", "root");
	r = GET(f, cm_path(f, p2, "default", "shared"));
	EXPECT_STATUS(
	    f, r, 404, "NotFound", "configmaps \"shared\" not found");
	r = GET(f, S(f, "%s/api/v1/configmaps", p2));
	EXPECT_INT(f, r, json_array_size(J(r->j, "items")), 0);
	/* Namespaces too: one made in p1 is not in p2 or the root. */
	mk_ns(f, p1, "only-p1");
	EXPECT_CODE(f, GET(f, S(f, "%s/api/v1/namespaces/only-p1", p2)), 404);
	EXPECT_CODE(f, GET(f, "/api/v1/namespaces/only-p1"), 404);
	/* The root's kube-system is not in a project plane. */
	r = POST(f, cm_path(f, p1, "kube-system", NULL),
	    Q(f, "{'metadata':{'name':'x'}}"));
	EXPECT_STATUS(
	    f, r, 404, "NotFound", "namespaces \"kube-system\" not found");
	/* Deleting in one plane leaves the other. */
	NEED_CODE(f, DEL(f, cm_path(f, p1, "default", "shared"), NULL), 200);
	r = GET(f, cm_path(f, "", "default", "shared"));
	EXPECT_CODE(f, r, 200);
	finish(f);
}

static void
test_api_planes_have_own_rv(void **state)
{
	fx *f = *state;
	mk_project(f, "p1", NULL);
	mk_project(f, "p2", NULL);
	const char *p1 = proj_prefix(f, "p1"), *p2 = proj_prefix(f, "p2");
	uint64_t    root0 = plane_rv(f, ""), a0 = plane_rv(f, p1),
	         b0 = plane_rv(f, p2);
	EXPECT_INT(f, NULL, a0, b0);
	EXPECT(f, NULL, a0 > 1, "plane counters start above 1 (§2)");
	resp *c = mk_cm(f, p1, "default", "x", "k", "v");
	EXPECT_INT(f, c, rv_num(JS(c->j, "metadata.resourceVersion")), a0 + 1);
	mk_cm(f, p1, "default", "y", "k", "v");
	EXPECT_INT(f, NULL, plane_rv(f, p1), a0 + 2);
	EXPECT_INT(f, NULL, plane_rv(f, p2), b0);
	EXPECT_INT(f, NULL, plane_rv(f, ""), root0);
	mk_cm(f, "", "default", "z", "k", "v");
	EXPECT_INT(f, NULL, plane_rv(f, ""), root0 + 1);
	EXPECT_INT(f, NULL, plane_rv(f, p1), a0 + 2);
	/* A watch in p1 from p1's RV sees p1's writes only. */
	wstream *w = watch_open(f,
	    S(f, "%s?watch=1&resourceVersion=%llu",
	        cm_path(f, p1, "default", NULL), (unsigned long long) a0 + 2));
	mk_cm(f, "", "default", "root-only", "k", "v");
	mk_cm(f, p2, "default", "p2-only", "k", "v");
	mk_cm(f, p1, "default", "p1-new", "k", "v");
	watch_wait(w, 1, 3000);
	watch_idle(w, 100);
	EXPECT(f, NULL,
	    json_array_size(w->events) == 1
	        && strcmp(nz(ev_name(w, 0), ""), "p1-new") == 0
	        && ev_rv(w, 0) == a0 + 3,
	    "p1 watch events %s", ev_summary(f, w));
	finish(f);
}

static void
test_api_projects_not_under_prefix(void **state)
{
	fx *f = *state;
	mk_project(f, "p1", NULL);
	const char *pfx = proj_prefix(f, "p1");
	resp       *r   = GET(f, S(f, "%s" PROJECTS, pfx));
	EXPECT_STATUS(f, r, 404, "NotFound", NOT_FOUND_MSG);
	r = GET(f, S(f, "%s" PROJECTS "/p1", pfx));
	EXPECT_STATUS(f, r, 404, "NotFound", NOT_FOUND_MSG);
	r = POST(f, S(f, "%s" PROJECTS, pfx), project_body(f, "nested", NULL));
	EXPECT_STATUS(f, r, 404, "NotFound", NOT_FOUND_MSG);
	r = GET(f, S(f, "%s" PCPS, pfx));
	EXPECT_STATUS(f, r, 404, "NotFound", NOT_FOUND_MSG);
	r = GET(f, S(f, "/projects/p1/control-plane" PROJECTS));
	EXPECT_STATUS(f, r, 404, "NotFound", NOT_FOUND_MSG);
	/* /_sim is never routed through a prefix. */
	r = POST(f, S(f, "%s/_sim/compact", pfx), "{}");
	EXPECT_CODE(f, r, 404);
	finish(f);
}

static void
test_api_project_delete_removes_plane(void **state)
{
	fx *f = *state;
	mk_project(f, "p1", NULL);
	const char *pfx = proj_prefix(f, "p1");
	mk_cm(f, pfx, "default", "c", "k", "v");
	resp *r = DEL(f, PROJECTS "/p1", NULL);
	EXPECT_CODE(f, r, 200);
	EXPECT_JS(f, r, "status", "Success");
	r = GET(f, S(f, "%s/api/v1/namespaces", pfx));
	EXPECT_STATUS(f, r, 404, "NotFound",
	    "projects.resourcemanager.miloapis.com \"p1\" not found");
	r = GET(f, cm_path(f, "/projects/p1/control-plane", "default", "c"));
	EXPECT_STATUS(f, r, 404, "NotFound",
	    "projects.resourcemanager.miloapis.com \"p1\" not found");
	/* A new Project of the same name starts from a fresh plane. */
	mk_project(f, "p1", NULL);
	r = GET(f, cm_path(f, pfx, "default", "c"));
	EXPECT_STATUS(f, r, 404, "NotFound", "configmaps \"c\" not found");
	expect_plane_namespaces(f, __LINE__, pfx);
	finish(f);
}

/* Polls GET `path` until `pred` holds or `ms` pass; returns the last reply. */
static resp *
poll_until(fx *f, const char *path, bool (*pred)(const resp *), int ms)
{
	int64_t end = deadline(ms);
	resp   *r;
	for (;;) {
		r = GET(f, path);
		if (pred(r) || now_ms() > end)
			return r;
		sleep_ms(50);
	}
}

static bool
project_ready(const resp *r)
{
	json_t *c = condition(r->j, "Ready");
	return r->code == 200
	    && array_has_str(J(r->j, "metadata.finalizers"),
	        "resourcemanager.miloapis.com/project-controller")
	    && c != NULL && strcmp(nz(JS(c, "status"), ""), "True") == 0;
}

static bool
pcp_ready(const resp *r)
{
	json_t *c = condition(r->j, "ControlPlaneReady");
	return r->code == 200 && c != NULL
	    && strcmp(nz(JS(c, "status"), ""), "True") == 0;
}

static bool
is_404(const resp *r)
{
	return r->code == 404;
}

static void
test_api_milo_project_lifecycle(void **state)
{
	fx *f = *state;
	mk_project(f, "p1", NULL);
	resp *r = poll_until(f, PROJECTS "/p1", project_ready, 3000);
	EXPECT(f, r, project_ready(r),
	    "Project never got the finalizer and Ready=True");
	json_t *c = condition(r->j, "Ready");
	EXPECT_STR(f, r, JS(c, "reason"), "Ready");
	EXPECT_INT(f, r, JI(c, "observedGeneration"),
	    JI(r->j, "metadata.generation"));
	resp *p = poll_until(f, PCPS "/p1", pcp_ready, 3000);
	EXPECT(
	    f, p, pcp_ready(p), "ProjectControlPlane not ControlPlaneReady");
	EXPECT_STR(f, p,
	    json_string_value(json_object_get(J(p->j, "metadata.labels"),
	        "resourcemanager.miloapis.com/project-name")),
	    "p1");
	EXPECT_STR(f, p,
	    json_string_value(json_object_get(J(p->j, "metadata.labels"),
	        "resourcemanager.miloapis.com/project-uid")),
	    JS(r->j, "metadata.uid"));
	expect_plane_namespaces(f, __LINE__, proj_prefix(f, "p1"));
	mk_cm(f, proj_prefix(f, "p1"), "default", "c", "k", "v");

	wstream *w = watch_open(f,
	    S(f, "%s?watch=1",
	        cm_path(f, proj_prefix(f, "p1"), "default", NULL)));
	r          = DEL(f, PROJECTS "/p1", NULL);
	EXPECT_CODE(f, r, 200);
	EXPECT_JS(f, r, "kind", "Project");
	EXPECT(f, r, J(r->j, "metadata.deletionTimestamp") != NULL,
	    "a Project with the finalizer is marked first");
	r = poll_until(f, PROJECTS "/p1", is_404, 3000);
	EXPECT(f, r, r->code == 404, "Project not gone within 3 s");
	r = GET(f, PCPS "/p1");
	EXPECT_CODE(f, r, 404);
	r = GET(f, S(f, "%s/api/v1/namespaces", proj_prefix(f, "p1")));
	EXPECT_STATUS(f, r, 404, "NotFound",
	    "projects.resourcemanager.miloapis.com \"p1\" not found");
	EXPECT(f, NULL, watch_wait_done(w, 3000),
	    "plane watch not closed by the project's removal");
	finish(f);
}

/* ===================================================================== */
/* CRDs                                                                   */
/* ===================================================================== */

/* Finds the aggregated-discovery resource `resource` of group `group`
 * (items[].versions[].resources[]), or NULL. */
static json_t *
agg_find(const json_t *list, const char *group, const char *resource)
{
	size_t  i;
	json_t *it;
	json_array_foreach(J(list, "items"), i, it)
	{
		if (strcmp(nz(JS(it, "metadata.name"), "?"), group) != 0)
			continue;
		size_t  j;
		json_t *v;
		json_array_foreach(J(it, "versions"), j, v)
		{
			size_t  k;
			json_t *res;
			json_array_foreach(J(v, "resources"), k,
			    res) if (strcmp(nz(JS(res, "resource"), ""),
			                 resource)
			    == 0) return res;
		}
	}
	return NULL;
}

static size_t
agg_count(const json_t *list)
{
	size_t  n = 0, i, j;
	json_t *it, *v;
	json_array_foreach(J(list, "items"), i, it)
	    json_array_foreach(J(it, "versions"), j, v) n
	    += json_array_size(J(v, "resources"));
	return n;
}

static void
test_api_crd_lifecycle(void **state)
{
	fx         *f    = *state;
	const char *crd  = Q(f,
	     "{'apiVersion':'apiextensions.k8s.io/v1','kind':"
	      "'CustomResourceDefinition','metadata':{'name':'widgets.example."
	      "com'},'spec':{'group':'example.com','scope':'Namespaced','names':"
	      "{'plural':'widgets','singular':'widget','kind':'Widget','"
	      "listKind'"
	      ":'WidgetList','shortNames':['wd']},'versions':[{'name':'v1',"
	      "'served':true,'storage':true,'schema':{'openAPIV3Schema':{'type':"
	      "'object','properties':{'spec':{'type':'object',"
	      "'x-kubernetes-preserve-unknown-fields':true}}}}}]}}");
	const char *wcol = "/apis/example.com/v1/namespaces/default/widgets";
	resp       *r    = GET(f, wcol);
	EXPECT_STATUS(f, r, 404, "NotFound", NOT_FOUND_MSG);

	r = POST(f, CRDS, crd);
	NEED_CODE(f, r, 201);
	for (int pass = 0; pass < 2; pass++) {
		json_t *est = condition(r->j, "Established");
		json_t *acc = condition(r->j, "NamesAccepted");
		EXPECT_STR(f, r, JS(est, "status"), "True");
		EXPECT_STR(f, r, JS(acc, "status"), "True");
		r = GET(f, CRDS "/widgets.example.com");
	}

	r = POST(f, wcol,
	    Q(f,
	        "{'apiVersion':'example.com/v1','kind':'Widget',"
	        "'metadata':{'name':'w1'},'spec':{'size':3}}"));
	EXPECT_CODE(f, r, 201);
	EXPECT_INT(f, r, JI(r->j, "metadata.generation"), 1);
	EXPECT_INT(f, r, JI(r->j, "spec.size"), 3);
	r = GET(f, wcol);
	EXPECT_CODE(f, r, 200);
	EXPECT_JS(f, r, "kind", "WidgetList");
	EXPECT_STR(f, r, names_of(f, r), "w1");

	r           = GET_ACCEPT(f, "/apis", KUBECTL_ACCEPT);
	json_t *res = agg_find(r->j, "example.com", "widgets");
	EXPECT(f, r, res != NULL, "widgets missing from aggregated /apis");
	EXPECT_STR(f, r, JS(res, "scope"), "Namespaced");
	EXPECT_STR(f, r, JS(res, "responseKind.kind"), "Widget");
	EXPECT_STR(f, r, JS(res, "singularResource"), "widget");
	r = GET(f, "/apis/example.com/v1");
	EXPECT_CODE(f, r, 200);
	EXPECT_JS(f, r, "resources.0.name", "widgets");
	EXPECT_JS(f, r, "resources.0.kind", "Widget");
	r = GET(f, "/apis");
	EXPECT(f, r, r->body.p && strstr(r->body.p, "\"example.com/v1\""),
	    "legacy /apis lacks example.com/v1");
	r = GET(f, "/openapi/v3");
	EXPECT(f, r,
	    J(r->j, "paths") != NULL
	        && json_object_get(J(r->j, "paths"), "apis/example.com/v1")
	            != NULL,
	    "/openapi/v3 lacks apis/example.com/v1");
	r = GET(f, "/openapi/v3/apis/example.com/v1");
	EXPECT_CODE(f, r, 200);

	/* Delete: the resource, its watches and discovery entries go. */
	wstream *w = watch_open(f, S(f, "%s?watch=1", wcol));
	watch_wait(w, 1, 3000);
	r = DEL(f, CRDS "/widgets.example.com", NULL);
	EXPECT_CODE(f, r, 200);
	EXPECT(f, NULL, watch_wait_done(w, 3000),
	    "widget watch not closed by the CRD deletion");
	r = GET(f, wcol);
	EXPECT_STATUS(f, r, 404, "NotFound", NOT_FOUND_MSG);
	r = GET(f, "/apis/example.com/v1/namespaces/default/widgets/w1");
	EXPECT_STATUS(f, r, 404, "NotFound", NOT_FOUND_MSG);
	r = GET_ACCEPT(f, "/apis", KUBECTL_ACCEPT);
	EXPECT(f, r, agg_find(r->j, "example.com", "widgets") == NULL,
	    "widgets still in discovery");
	r = GET(f, "/openapi/v3");
	EXPECT(f, r,
	    json_object_get(J(r->j, "paths"), "apis/example.com/v1") == NULL,
	    "openapi still lists example.com/v1");
	/* Recreating starts empty. */
	NEED_CODE(f, POST(f, CRDS, crd), 201);
	r = GET(f, wcol);
	EXPECT_CODE(f, r, 200);
	EXPECT_INT(f, r, json_array_size(J(r->j, "items")), 0);
	finish(f);
}

/* ===================================================================== */
/* Discovery                                                              */
/* ===================================================================== */

static void
test_api_discovery(void **state)
{
	fx   *f = *state;
	resp *r = GET_ACCEPT(f, "/apis", KUBECTL_ACCEPT);
	EXPECT_CODE(f, r, 200);
	const char *ct = header(f, r, "Content-Type");
	EXPECT(f, r, ct && strstr(ct, "as=APIGroupDiscoveryList") != NULL,
	    "aggregated Content-Type: %s", ct ? ct : "(none)");
	EXPECT_JS(f, r, "kind", "APIGroupDiscoveryList");
	EXPECT_JS(f, r, "apiVersion", "apidiscovery.k8s.io/v2");
	json_t *pr
	    = agg_find(r->j, "resourcemanager.miloapis.com", "projects");
	EXPECT(f, r, pr != NULL, "projects missing");
	EXPECT_STR(f, r, JS(pr, "scope"), "Cluster");
	EXPECT_STR(f, r, JS(pr, "responseKind.kind"), "Project");
	EXPECT_STR(f, r, JS(pr, "subresources.0.subresource"), "status");
	EXPECT(f, r, agg_find(r->j, "coordination.k8s.io", "leases") != NULL,
	    "leases missing");
	size_t groups_res = agg_count(r->j);

	resp *a = GET_ACCEPT(f, "/api", KUBECTL_ACCEPT);
	EXPECT_JS(f, a, "kind", "APIGroupDiscoveryList");
	EXPECT_JS(f, a, "items.0.metadata.name", "");
	EXPECT_JS(f, a, "items.0.versions.0.version", "v1");
	json_t *cm = agg_find(a->j, "", "configmaps");
	EXPECT(f, a, cm != NULL && array_has_str(J(cm, "shortNames"), "cm"),
	    "configmaps with shortNames [cm]");
	json_t *ns = agg_find(a->j, "", "namespaces");
	EXPECT_STR(f, a, JS(ns, "scope"), "Cluster");
	EXPECT(f, a, ns && array_has_str(J(ns, "shortNames"), "ns"),
	    "namespaces with shortNames [ns]");
	/* Part 1: nine resources at the root. */
	EXPECT_INT(f, NULL, groups_res + agg_count(a->j), 9);

	/* Legacy forms. */
	r = GET_ACCEPT(f, "/apis", "application/json, */*");
	EXPECT_JS(f, r, "kind", "APIGroupList");
	EXPECT(f, r,
	    r->body.p
	        && strstr(
	            r->body.p, "\"resourcemanager.miloapis.com/v1alpha1\""),
	    "legacy /apis lacks resourcemanager.miloapis.com/v1alpha1");
	r = GET(f, "/api");
	EXPECT_JS(f, r, "kind", "APIVersions");
	EXPECT_JS(f, r, "versions.0", "v1");
	EXPECT_JS(f, r, "serverAddressByClientCIDRs.0.serverAddress",
	    S(f, "127.0.0.1:%d", ks_httpd_port(f->v->s.httpd)));
	r = GET(f, "/api/v1");
	EXPECT_JS(f, r, "kind", "APIResourceList");
	EXPECT_JS(f, r, "groupVersion", "v1");
	EXPECT(f, r, r->body.p && strstr(r->body.p, "\"namespaces/status\""),
	    "namespaces/status missing in /api/v1");
	r = GET(f, "/apis/resourcemanager.miloapis.com");
	EXPECT_JS(f, r, "kind", "APIGroup");
	EXPECT_JS(f, r, "preferredVersion.groupVersion",
	    "resourcemanager.miloapis.com/v1alpha1");
	r = GET(f, "/apis/resourcemanager.miloapis.com/v1alpha1");
	EXPECT_JS(f, r, "kind", "APIResourceList");
	EXPECT(f, r, r->body.p && strstr(r->body.p, "\"projects/status\""),
	    "projects/status missing");

	/* Under a project prefix: seven resources, no projects. */
	mk_project(f, "p1", NULL);
	const char *pfx = proj_prefix(f, "p1");
	r               = GET_ACCEPT(f, S(f, "%s/apis", pfx), KUBECTL_ACCEPT);
	a               = GET_ACCEPT(f, S(f, "%s/api", pfx), KUBECTL_ACCEPT);
	EXPECT(f, r,
	    agg_find(r->j, "resourcemanager.miloapis.com", "projects") == NULL
	        && agg_find(r->j, "infrastructure.miloapis.com",
	               "projectcontrolplanes")
	            == NULL,
	    "projects must be hidden under a prefix");
	EXPECT_INT(f, NULL, agg_count(r->j) + agg_count(a->j), 7);
	r = GET(f, S(f, "%s/openapi/v3", pfx));
	EXPECT(f, r,
	    json_object_get(
	        J(r->j, "paths"), "apis/resourcemanager.miloapis.com/v1alpha1")
	            == NULL
	        && json_object_get(J(r->j, "paths"), "api/v1") != NULL,
	    "openapi under a prefix");
	const char *url = JS(
	    json_object_get(J(r->j, "paths"), "api/v1"), "serverRelativeURL");
	if (url != NULL) {
		resp *o = GET(f, url);
		EXPECT_CODE(f, o, 200);
		EXPECT_JS(f, o, "openapi", "3.0.0");
	}
	/* Root OpenAPI lists every GV. */
	r                              = GET(f, "/openapi/v3");
	static const char *const gvs[] = { "api/v1",
		"apis/coordination.k8s.io/v1",
		"apis/resourcemanager.miloapis.com/v1alpha1",
		"apis/infrastructure.miloapis.com/v1alpha1",
		"apis/apiextensions.k8s.io/v1", "apis/events.k8s.io/v1" };
	for (size_t i = 0; i < sizeof(gvs) / sizeof(gvs[0]); i++)
		EXPECT(f, r, json_object_get(J(r->j, "paths"), gvs[i]) != NULL,
		    "/openapi/v3 lacks %s", gvs[i]);
	finish(f);
}

static void
test_api_version_and_health(void **state)
{
	fx   *f = *state;
	resp *r = GET(f, "/version?timeout=5s");
	EXPECT_CODE(f, r, 200);
	EXPECT_JS(f, r, "major", "1");
	EXPECT_JS(f, r, "minor", "32");
	const char *gv = JS(r->j, "gitVersion");
	EXPECT(f, r, gv && strncmp(gv, "v1.32.", 6) == 0, "gitVersion %s",
	    gv ? gv : "(null)");
	const char *ct = header(f, r, "Content-Type");
	EXPECT(f, r, ct && strncmp(ct, "application/json", 16) == 0,
	    "Content-Type %s", ct ? ct : "(none)");
	EXPECT(f, r, r->body.len > 0 && r->body.p[r->body.len - 1] == '\n',
	    "JSON bodies end with a newline (§0)");
	static const char *const health[]
	    = { "/healthz", "/readyz", "/livez" };
	for (size_t i = 0; i < 3; i++) {
		r = GET(f, health[i]);
		EXPECT_CODE(f, r, 200);
		EXPECT_STR(f, r, r->body.p, "ok");
	}
	finish(f);
}

/* --------------------------------------------------------------------- */

/* A table row: human-readable name, function, per-test fixture. */
#define T(name, fn)                                                           \
	{                                                                     \
		name, fn, setup, teardown, NULL                               \
	}
#define TM(name, fn)                                                          \
	{                                                                     \
		name, fn, setup_milo, teardown, NULL                          \
	}

int
main(void)
{
	mcf_alloc_init_libs();
	mcf_log_init("ks_api_test", MCF_LOG_WARN);
	const struct CMUnitTest tests[] = {
		/* bad input */
		T("malformed JSON body is 400", test_api_malformed_json_400),
		T("kind, apiVersion, namespace or name unlike the URL is 400",
		    test_api_body_mismatching_url_400),
		T("unknown resource, group or version is 404",
		    test_api_unknown_resource_404),
		T("dot segments, %2F and %00 in paths are 404",
		    test_api_path_tricks_404),
		T("unknown project prefix is 404",
		    test_api_unknown_project_404),
		T("body over 3 MiB is 413", test_api_oversized_body_413),
		T("invalid name is 422", test_api_invalid_name_422),
		T("missing name is 422; generateName works",
		    test_api_missing_name_422),
		T("resourceVersion on create is 500",
		    test_api_resource_version_on_create_500),
		T("create in a missing namespace is 404",
		    test_api_create_in_missing_namespace_404),
		/* writes */
		T("create is 201 with uid, timestamp, RV",
		    test_api_create_201_sets_system_fields),
		T("create of an existing object is 409 AlreadyExists",
		    test_api_create_existing_409),
		T("update with a stale RV is 409 Conflict",
		    test_api_update_stale_rv_409),
		T("update without RV: ConfigMap ok, Project 422",
		    test_api_update_without_rv),
		T("no-op update keeps the RV and sends no event",
		    test_api_noop_update_keeps_rv),
		T("generation: spec bumps, status and labels do not",
		    test_api_generation_rules),
		T("/status takes only status; main PUT keeps status",
		    test_api_status_subresource_split),
		T("merge patch", test_api_merge_patch),
		T("JSON patch; failed test op 422; object body 400",
		    test_api_json_patch),
		T("strategic merge patch; 415 on a Project",
		    test_api_strategic_patch),
		T("apply patch is 415", test_api_apply_patch_415),
		T("patch with a stale RV is 409", test_api_patch_stale_rv_409),
		T("dryRun=All persists nothing",
		    test_api_dry_run_persists_nothing),
		T("updates cannot change uid or deletionTimestamp",
		    test_api_update_keeps_system_fields),
		T("fieldValidation Strict, Warn, Ignore; CR schema",
		    test_api_field_validation),
		T("Secret stringData and Namespace defaults",
		    test_api_core_kinds_defaults),
		T("dependents of a removed owner are collected",
		    test_api_gc_deletes_dependents),
		/* deletion */
		T("delete without finalizers is a Success Status",
		    test_api_delete_without_finalizers),
		T("delete with finalizers marks the object",
		    test_api_delete_with_finalizers),
		T("finalizers while deleting; last one removes",
		    test_api_finalizers_while_deleting),
		T("delete preconditions mismatch is 409",
		    test_api_delete_preconditions_409),
		T("namespace deletion empties and removes it",
		    test_api_namespace_deletion),
		/* lists */
		T("list pages share one snapshot",
		    test_api_list_pages_share_snapshot),
		T("malformed continue is 400",
		    test_api_list_malformed_continue_400),
		T("continue after compaction is 410",
		    test_api_list_continue_after_compaction_410),
		T("Exact lists; below the floor 410", test_api_list_exact_rv),
		T("RV above current is 504 with Retry-After",
		    test_api_list_rv_too_large_504),
		T("ListOptions validation is 422",
		    test_api_list_options_validation_422),
		T("label selectors", test_api_label_selectors),
		T("field selectors", test_api_field_selectors),
		T("empty lists have items []",
		    test_api_list_empty_items_array),
		/* watch */
		T("watch from RV unset or 0 sends ADDED first",
		    test_api_watch_initial_added),
		T("watch from a list RV: later changes in order",
		    test_api_watch_from_rv_in_order),
		T("watch selector transitions",
		    test_api_watch_selector_transitions),
		T("watch timeoutSeconds ends cleanly",
		    test_api_watch_timeout_ends_cleanly),
		T("watch bookmarks carry the current RV",
		    test_api_watch_bookmarks),
		T("watch below the floor gets ERROR 410",
		    test_api_watch_expired_410),
		T("sendInitialEvents ends with the initial-events-end "
		  "bookmark",
		    test_api_watch_initial_events_end_bookmark),
		T("deleting a Project closes its plane watches",
		    test_api_watch_closed_by_project_delete),
		/* projects and planes */
		T("a Project brings its plane under both prefixes",
		    test_api_project_creates_plane),
		T("planes are isolated", test_api_planes_are_isolated),
		T("each plane has its own RV counter",
		    test_api_planes_have_own_rv),
		T("projects are 404 under a project prefix",
		    test_api_projects_not_under_prefix),
		T("deleting a Project removes its plane",
		    test_api_project_delete_removes_plane),
		TM("Milo controller: Ready, PCP, prompt deletion",
		    test_api_milo_project_lifecycle),
		/* CRDs and discovery */
		T("CRD: served, discovered, removed", test_api_crd_lifecycle),
		T("aggregated and legacy discovery, OpenAPI",
		    test_api_discovery),
		T("/version and health endpoints",
		    test_api_version_and_health),
	};
	return cmocka_run_group_tests_name(
	    "ks_api", tests, ks_fx_group_setup, ks_fx_group_teardown);
}

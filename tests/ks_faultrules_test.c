/*
 * ks_faultrules_test.c — kubesim's fault-injection rule set
 * (tests/kubesim/faults.c) through faults.h, without a server: parsing
 * and its errors, matching, "a rule only counts a match when its action
 * can apply", count/after/probability, for_s windows, latency rules adding
 * up, and the per-plane warm-up preset (KUBE_API.md §7).
 *
 * Rules are written as JSON with ' for " so the tables stay readable.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "alloc.h"
#include "faults.h"

/* --- helpers ---------------------------------------------------------- */

/* Parses `text` with every ' turned into ". New reference. */
static json_t *
jq(const char *text)
{
	char *s = mcf_strdup(text);
	for (char *p = s; *p != '\0'; p++)
		if (*p == '\'')
			*p = '"';
	json_error_t e;
	json_t      *j = json_loads(s, JSON_DECODE_ANY, &e);
	if (j == NULL)
		fail_msg("test JSON does not parse: %s (%s)", text, e.text);
	free(s);
	return j;
}

/* Adds a rule that must be accepted; returns its id. */
static uint64_t
add_at(ks_faults *f, const char *rule, int64_t now_ms)
{
	json_t  *j        = jq(rule);
	char     err[256] = "";
	uint64_t id       = ks_faults_add(f, j, now_ms, err, sizeof(err));
	json_decref(j);
	if (id == 0)
		fail_msg("rule %s rejected: %s", rule, err);
	return id;
}

static uint64_t
add(ks_faults *f, const char *rule)
{
	return add_at(f, rule, 0);
}

/* The request every test starts from: GET of ConfigMap default/a in the
 * root plane. */
static ks_fault_req
req_get(void)
{
	return (ks_fault_req) { .plane = "",
		.method                = "GET",
		.verb                  = "get",
		.group                 = "",
		.resource              = "configmaps",
		.ns                    = "default",
		.name                  = "a",
		.path   = "/api/v1/namespaces/default/configmaps/a",
		.ua     = "curl/7.88.1",
		.now_ms = 0 };
}

static ks_fault_req
req_list(void)
{
	ks_fault_req q = req_get();
	q.verb         = "list";
	q.name         = NULL;
	q.path         = "/api/v1/namespaces/default/configmaps";
	return q;
}

static ks_fault_req
req_watch(bool has_rv)
{
	ks_fault_req q = req_list();
	q.verb         = "watch";
	q.is_watch     = true;
	q.has_rv       = has_rv;
	return q;
}

static ks_fault_req
req_update(void)
{
	ks_fault_req q = req_get();
	q.method       = "PUT";
	q.verb         = "update";
	return q;
}

/* The plane-stage request (verb not parsed yet) for project `plane`. */
static ks_fault_req
req_plane(const char *plane)
{
	return (ks_fault_req) { .plane = plane,
		.method                = "GET",
		.path                  = "/api/v1/namespaces",
		.ua                    = "curl/7.88.1" };
}

/* The action ks_faults_eval() picks for `q` (KS_FA_NONE when none);
 * `lat` gets the accumulated latency when not NULL. */
static enum ks_fault_action
eval(ks_faults *f, const ks_fault_req *q, ks_fault *out, int64_t *lat)
{
	ks_fault  tmp;
	int64_t   l    = -1;
	bool      body = false;
	ks_fault *o    = out ? out : &tmp;
	bool      any  = ks_faults_eval(f, q, &l, &body, o);
	if (lat != NULL)
		*lat = l;
	if (!any)
		assert_int_equal(o->action, KS_FA_NONE);
	return o->action;
}

/* "matches"/"hits" of rule `id` from ks_faults_describe(). */
static void
counts(ks_faults *f, uint64_t id, long long *matches, long long *hits)
{
	json_t *items = ks_faults_describe(f);
	size_t  i;
	json_t *it;
	*matches = *hits = -1;
	json_array_foreach(items, i, it)
	{
		if ((uint64_t) json_integer_value(json_object_get(it, "id"))
		    == id) {
			*matches = json_integer_value(
			    json_object_get(it, "matches"));
			*hits
			    = json_integer_value(json_object_get(it, "hits"));
		}
	}
	json_decref(items);
}

/* --- parsing ---------------------------------------------------------- */

static void
test_faultrules_parse_errors(void **state)
{
	(void) state;
	static const char *const bad[] = {
		"[]",
		"'status'",
		"{}",
		"{'match':{}}",
		"{'action':'status'}",
		"{'action':{}}",
		"{'action':{'nothing':1}}",
		"{'match':'x','action':{'status':500}}",
		"{'action':{'status':200}}",
		"{'action':{'status':302}}",
		"{'action':{'status':600}}",
		"{'action':{'latency_ms':-1}}",
		"{'action':{'latency_ms':10,'jitter_ms':-1}}",
		"{'action':{'conn':'explode'}}",
		"{'action':{'watch':'close','mode':'sideways'}}",
		"{'action':{'watch':'wander'}}",
		"{'action':{'list':'shuffle'}}",
		"{'action':{'bookmarks':'sometimes'}}",
		"{'action':{'bookmarks':'every_s:0'}}",
		"{'action':{'bookmarks':'every_s:-2'}}",
		"{'action':{'throttle_bps':0}}",
		"{'action':{'throttle_bps':-5}}",
		"{'action':{'preset':'plane_cooldown'}}",
		"{'action':{'plane':'exploded'}}",
		"{'match':{'path_regex':'(unclosed'},'action':{'status':500}}",
		"{'match':{'ua_regex':'[z-a]'},'action':{'status':500}}",
		"{'action':{'status':500},'probability':1.5}",
		"{'action':{'status':500},'probability':-0.1}",
		"{'action':{'status':500},'after':-1}",
	};
	ks_faults *f = ks_faults_create(1);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_t  *j        = jq(bad[i]);
		char     err[256] = "";
		uint64_t id       = ks_faults_add(f, j, 0, err, sizeof(err));
		json_decref(j);
		if (id != 0)
			fail_msg("malformed rule %s accepted as %llu", bad[i],
			    (unsigned long long) id);
		if (err[0] == '\0')
			fail_msg(
			    "malformed rule %s: no error message", bad[i]);
	}
	json_t *items = ks_faults_describe(f);
	assert_int_equal(json_array_size(items), 0);
	json_decref(items);

	/* Every action of §7 parses, and ids count up from 1. */
	static const char *const good[] = {
		"{'action':{'latency_ms':10,'jitter_ms':5,'phase':'headers'}}",
		"{'action':{'latency_ms':10,'phase':'body'}}",
		"{'action':{'status':429,'retry_after':1,'message':'slow'}}",
		"{'action':{'status':503,'retry_after':null}}",
		"{'action':{'preset':'plane_warmup_429'}}",
		"{'action':{'conn':'reset'}}",
		"{'action':{'conn':'hang'}}",
		"{'action':{'conn':'truncate','after_bytes':7}}",
		"{'action':{'watch':'close','after_events':2,'after_s':null,"
		"'mode':'midline'}}",
		"{'action':{'watch':'expire','form':'http'}}",
		"{'action':{'watch':'expire_storm','for_s':3}}",
		"{'action':{'list':'expire_continue'}}",
		"{'action':{'list':'too_large_rv'}}",
		"{'action':{'list':'stale','lag_rv':3}}",
		"{'action':{'bookmarks':'off'}}",
		"{'action':{'bookmarks':'every_s:0.5'}}",
		"{'action':{'watch_buffer':10}}",
		"{'action':{'throttle_bps':2048}}",
		"{'action':{'conflict':true}}",
		"{'action':{'plane':'unavailable','status':503}}",
		"{'action':{'plane':'gone'}}",
		"{'match':{'plane':'*','method':'GET','verb':'list','group':''"
		","
		"'resource':'configmaps','namespace':'default','name':'x',"
		"'path_regex':'^/api/','ua_regex':'kubectl'},"
		"'action':{'status':500},'count':3,'probability':0.5,'after':"
		"1,"
		"'for_s':10}",
	};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		assert_int_equal(add(f, good[i]), i + 1);
	ks_faults_destroy(f);
}

/* The fields each action hands to the server. */
static void
test_faultrules_action_fields(void **state)
{
	(void) state;
	ks_faults   *f = ks_faults_create(1);
	ks_fault     o;
	ks_fault_req g = req_get();

	uint64_t id = add(f,
	    "{'action':{'status':429,'retry_after':2},"
	    "'count':1}");
	assert_int_equal(eval(f, &g, &o, NULL), KS_FA_STATUS);
	assert_int_equal(o.status, 429);
	assert_int_equal(o.retry_after, 2);
	assert_int_equal(o.rule_id, id);
	assert_string_equal(
	    o.message, "Too many requests, please try again later.");

	add(f, "{'action':{'status':500,'message':'boom'},'count':1}");
	assert_int_equal(eval(f, &g, &o, NULL), KS_FA_STATUS);
	assert_int_equal(o.status, 500);
	assert_int_equal(o.retry_after, 0);
	assert_string_equal(o.message, "boom");

	add(f, "{'action':{'status':503,'retry_after':null},'count':1}");
	assert_int_equal(eval(f, &g, &o, NULL), KS_FA_STATUS);
	assert_int_equal(o.status, 503);
	assert_int_equal(o.retry_after, 0);

	add(f, "{'action':{'conn':'truncate','after_bytes':7},'count':1}");
	assert_int_equal(eval(f, &g, &o, NULL), KS_FA_CONN_TRUNCATE);
	assert_int_equal(o.after_bytes, 7);

	add(f, "{'action':{'throttle_bps':2048},'count':1}");
	assert_int_equal(eval(f, &g, &o, NULL), KS_FA_THROTTLE);
	assert_int_equal(o.throttle_bps, 2048);

	ks_fault_req w = req_watch(false);
	add(f,
	    "{'action':{'watch':'close','after_s':0.25,'mode':'abrupt'},"
	    "'count':1}");
	assert_int_equal(eval(f, &w, &o, NULL), KS_FA_WATCH_CLOSE);
	assert_int_equal(o.after_ms, 250);
	assert_int_equal(o.after_events, -1);
	assert_int_equal(o.mode, KS_CLOSE_ABRUPT);

	add(f,
	    "{'action':{'watch':'close','after_events':3,'mode':'midline'},"
	    "'count':1}");
	assert_int_equal(eval(f, &w, &o, NULL), KS_FA_WATCH_CLOSE);
	assert_int_equal(o.after_events, 3);
	assert_int_equal(o.after_ms, -1);
	assert_int_equal(o.mode, KS_CLOSE_MIDLINE);

	/* Neither after_events nor after_s: the stream ends at once. */
	add(f, "{'action':{'watch':'close'},'count':1}");
	assert_int_equal(eval(f, &w, &o, NULL), KS_FA_WATCH_CLOSE);
	assert_int_equal(o.after_events, 0);
	assert_int_equal(o.mode, KS_CLOSE_CLEAN);

	add(f, "{'action':{'bookmarks':'every_s:0.5'},'count':1}");
	assert_int_equal(eval(f, &w, &o, NULL), KS_FA_BOOKMARKS);
	assert_int_equal(o.bookmark_every_ms, 500);
	assert_false(o.bookmarks_off);

	add(f, "{'action':{'bookmarks':'off'},'count':1}");
	assert_int_equal(eval(f, &w, &o, NULL), KS_FA_BOOKMARKS);
	assert_true(o.bookmarks_off);

	add(f, "{'action':{'watch_buffer':4},'count':1}");
	assert_int_equal(eval(f, &w, &o, NULL), KS_FA_WATCH_BUFFER);
	assert_int_equal(o.watch_buffer, 4);

	ks_fault_req wr = req_watch(true);
	add(f, "{'action':{'watch':'expire','form':'http'},'count':1}");
	assert_int_equal(eval(f, &wr, &o, NULL), KS_FA_WATCH_EXPIRE);
	assert_true(o.http_form);
	add(f, "{'action':{'watch':'expire'},'count':1}");
	assert_int_equal(eval(f, &wr, &o, NULL), KS_FA_WATCH_EXPIRE);
	assert_false(o.http_form);

	ks_fault_req l = req_list();
	l.rv_zero       = true; /* stale serves resourceVersion=0 lists */
	add(f, "{'action':{'list':'stale','lag_rv':3},'count':1}");
	assert_int_equal(eval(f, &l, &o, NULL), KS_FA_STALE);
	assert_int_equal(o.lag_rv, 3);

	/* Every one-shot rule is used up: nothing is left to fire. */
	assert_int_equal(eval(f, &g, &o, NULL), KS_FA_NONE);
	assert_int_equal(eval(f, &w, &o, NULL), KS_FA_NONE);
	assert_int_equal(eval(f, &wr, &o, NULL), KS_FA_NONE);
	assert_int_equal(eval(f, &l, &o, NULL), KS_FA_NONE);
	ks_faults_destroy(f);
}

/* --- matching --------------------------------------------------------- */

static void
test_faultrules_matching(void **state)
{
	(void) state;
	ks_faults   *f = ks_faults_create(1);
	ks_fault_req q;

	/* plane: "" is the root only, a name is that project, "*" any. */
	uint64_t id = add(f, "{'match':{'plane':''},'action':{'status':500}}");
	q           = req_get();
	assert_int_equal(eval(f, &q, NULL, NULL), KS_FA_STATUS);
	q.plane = "p1";
	assert_int_equal(eval(f, &q, NULL, NULL), KS_FA_NONE);
	assert_true(ks_faults_remove(f, id));
	id = add(f, "{'match':{'plane':'p1'},'action':{'status':500}}");
	assert_int_equal(eval(f, &q, NULL, NULL), KS_FA_STATUS);
	q.plane = "p2";
	assert_int_equal(eval(f, &q, NULL, NULL), KS_FA_NONE);
	q.plane = "";
	assert_int_equal(eval(f, &q, NULL, NULL), KS_FA_NONE);
	assert_true(ks_faults_remove(f, id));
	id = add(f, "{'match':{'plane':'*'},'action':{'status':500}}");
	q  = req_get();
	assert_int_equal(eval(f, &q, NULL, NULL), KS_FA_STATUS);
	q.plane = "p9";
	assert_int_equal(eval(f, &q, NULL, NULL), KS_FA_STATUS);
	assert_true(ks_faults_remove(f, id));

	/* method and verb */
	id = add(f, "{'match':{'method':'PUT'},'action':{'status':500}}");
	q  = req_get();
	assert_int_equal(eval(f, &q, NULL, NULL), KS_FA_NONE);
	q = req_update();
	assert_int_equal(eval(f, &q, NULL, NULL), KS_FA_STATUS);
	assert_true(ks_faults_remove(f, id));
	id = add(f, "{'match':{'verb':'list'},'action':{'status':500}}");
	q  = req_list();
	assert_int_equal(eval(f, &q, NULL, NULL), KS_FA_STATUS);
	q = req_watch(false);
	assert_int_equal(eval(f, &q, NULL, NULL), KS_FA_NONE);
	q = req_get();
	assert_int_equal(eval(f, &q, NULL, NULL), KS_FA_NONE);
	assert_true(ks_faults_remove(f, id));

	/* group, resource, namespace, name */
	id = add(f,
	    "{'match':{'group':'coordination.k8s.io','resource':"
	    "'leases','namespace':'kube-system','name':'leader'},"
	    "'action':{'status':500}}");
	q  = req_get();
	assert_int_equal(eval(f, &q, NULL, NULL), KS_FA_NONE);
	q.group    = "coordination.k8s.io";
	q.resource = "leases";
	q.ns       = "kube-system";
	q.name     = "leader";
	assert_int_equal(eval(f, &q, NULL, NULL), KS_FA_STATUS);
	q.name = "other";
	assert_int_equal(eval(f, &q, NULL, NULL), KS_FA_NONE);
	q.name = "leader";
	q.ns   = "default";
	assert_int_equal(eval(f, &q, NULL, NULL), KS_FA_NONE);
	q.ns    = "kube-system";
	q.group = "";
	assert_int_equal(eval(f, &q, NULL, NULL), KS_FA_NONE);
	assert_true(ks_faults_remove(f, id));

	/* A rule naming a namespace never matches a cluster-scoped
	 * request, which has none. */
	id = add(
	    f, "{'match':{'namespace':'default'},'action':{'status':500}}");
	q    = req_get();
	q.ns = NULL;
	assert_int_equal(eval(f, &q, NULL, NULL), KS_FA_NONE);
	assert_true(ks_faults_remove(f, id));

	/* path_regex and ua_regex (extended regular expressions) */
	id = add(f,
	    "{'match':{'path_regex':'/configmaps/b[0-9]+$'},"
	    "'action':{'status':500}}");
	q  = req_get();
	assert_int_equal(eval(f, &q, NULL, NULL), KS_FA_NONE);
	q.path = "/api/v1/namespaces/default/configmaps/b12";
	assert_int_equal(eval(f, &q, NULL, NULL), KS_FA_STATUS);
	q.path = "/api/v1/namespaces/default/configmaps/b12x";
	assert_int_equal(eval(f, &q, NULL, NULL), KS_FA_NONE);
	assert_true(ks_faults_remove(f, id));
	id = add(f,
	    "{'match':{'ua_regex':'^kubectl/v1\\\\.32'},"
	    "'action':{'status':500}}");
	q  = req_get();
	assert_int_equal(eval(f, &q, NULL, NULL), KS_FA_NONE);
	q.ua = "kubectl/v1.32.4 (linux/amd64) kubernetes/abc";
	assert_int_equal(eval(f, &q, NULL, NULL), KS_FA_STATUS);
	q.ua = "kubectl/v1x32";
	assert_int_equal(eval(f, &q, NULL, NULL), KS_FA_NONE);
	q.ua = NULL; /* no User-Agent header: matched as "" */
	assert_int_equal(eval(f, &q, NULL, NULL), KS_FA_NONE);
	assert_true(ks_faults_remove(f, id));
	id = add(f, "{'match':{'ua_regex':'^$'},'action':{'status':500}}");
	assert_int_equal(eval(f, &q, NULL, NULL), KS_FA_STATUS);
	assert_true(ks_faults_remove(f, id));

	/* Resource-level match fields never match at the plane stage. */
	id = add(f,
	    "{'match':{'resource':'configmaps'},"
	    "'action':{'plane':'unavailable','status':503}}");
	ks_fault     o;
	ks_fault_req p = req_plane("p1");
	assert_false(ks_faults_plane(f, &p, &o));
	assert_true(ks_faults_remove(f, id));
	ks_faults_destroy(f);
}

/* A rule only counts a match when its action can apply to the request;
 * an inapplicable rule never blocks a later one. */
static void
test_faultrules_applies_only_when_applicable(void **state)
{
	(void) state;
	ks_faults   *f = ks_faults_create(1);
	ks_fault_req l = req_list(), g = req_get(), w = req_watch(false),
	             wr = req_watch(true), u = req_update();
	long long m, h;

	uint64_t close = add(f,
	    "{'action':{'watch':'close'},'after':1,"
	    "'count':1}");
	for (int i = 0; i < 3; i++) {
		assert_int_equal(eval(f, &l, NULL, NULL), KS_FA_NONE);
		assert_int_equal(eval(f, &g, NULL, NULL), KS_FA_NONE);
		assert_int_equal(eval(f, &u, NULL, NULL), KS_FA_NONE);
	}
	counts(f, close, &m, &h);
	assert_int_equal(m, 0);
	assert_int_equal(h, 0);
	assert_int_equal(eval(f, &w, NULL, NULL), KS_FA_NONE); /* after */
	assert_int_equal(eval(f, &w, NULL, NULL), KS_FA_WATCH_CLOSE);
	assert_int_equal(eval(f, &w, NULL, NULL), KS_FA_NONE); /* count */
	counts(f, close, &m, &h);
	assert_int_equal(m, 2);
	assert_int_equal(h, 1);
	assert_true(ks_faults_remove(f, close));

	/* expire: watches whose RV is not ""/"0" only. */
	uint64_t ex = add(f, "{'action':{'watch':'expire'},'after':1}");
	assert_int_equal(eval(f, &w, NULL, NULL), KS_FA_NONE);
	assert_int_equal(eval(f, &l, NULL, NULL), KS_FA_NONE);
	assert_int_equal(eval(f, &wr, NULL, NULL), KS_FA_NONE); /* after */
	assert_int_equal(eval(f, &wr, NULL, NULL), KS_FA_WATCH_EXPIRE);
	counts(f, ex, &m, &h);
	assert_int_equal(m, 2);
	assert_int_equal(h, 1);
	assert_true(ks_faults_remove(f, ex));

	/* expire_continue: lists with a continue token only. */
	ks_fault_req lc = req_list();
	lc.has_continue = true;
	ex              = add(f, "{'action':{'list':'expire_continue'}}");
	assert_int_equal(eval(f, &l, NULL, NULL), KS_FA_NONE);
	assert_int_equal(eval(f, &g, NULL, NULL), KS_FA_NONE);
	assert_int_equal(eval(f, &w, NULL, NULL), KS_FA_NONE);
	assert_int_equal(eval(f, &lc, NULL, NULL), KS_FA_EXPIRE_CONTINUE);
	counts(f, ex, &m, &h);
	assert_int_equal(m, 1);
	assert_true(ks_faults_remove(f, ex));

	/* too_large_rv: lists and watches; stale: lists. */
	ex = add(f, "{'action':{'list':'too_large_rv'}}");
	assert_int_equal(eval(f, &g, NULL, NULL), KS_FA_NONE);
	assert_int_equal(eval(f, &u, NULL, NULL), KS_FA_NONE);
	assert_int_equal(eval(f, &l, NULL, NULL), KS_FA_TOO_LARGE_RV);
	assert_int_equal(eval(f, &w, NULL, NULL), KS_FA_TOO_LARGE_RV);
	assert_true(ks_faults_remove(f, ex));
	ex = add(f, "{'action':{'list':'stale','lag_rv':2}}");
	assert_int_equal(eval(f, &g, NULL, NULL), KS_FA_NONE);
	assert_int_equal(eval(f, &w, NULL, NULL), KS_FA_NONE);
	/* Only lists at resourceVersion=0 are served stale. */
	assert_int_equal(eval(f, &l, NULL, NULL), KS_FA_NONE);
	l.rv_zero = true;
	assert_int_equal(eval(f, &l, NULL, NULL), KS_FA_STALE);
	l.rv_zero = false;
	counts(f, ex, &m, &h);
	assert_int_equal(m, 1);
	assert_true(ks_faults_remove(f, ex));

	/* conflict: update and patch only. */
	ks_fault_req pa = req_update();
	pa.method       = "PATCH";
	pa.verb         = "patch";
	ks_fault_req cr = req_list();
	cr.method       = "POST";
	cr.verb         = "create";
	ex              = add(f, "{'action':{'conflict':true}}");
	assert_int_equal(eval(f, &g, NULL, NULL), KS_FA_NONE);
	assert_int_equal(eval(f, &cr, NULL, NULL), KS_FA_NONE);
	assert_int_equal(eval(f, &l, NULL, NULL), KS_FA_NONE);
	assert_int_equal(eval(f, &u, NULL, NULL), KS_FA_CONFLICT);
	assert_int_equal(eval(f, &pa, NULL, NULL), KS_FA_CONFLICT);
	counts(f, ex, &m, &h);
	assert_int_equal(m, 2);
	assert_true(ks_faults_remove(f, ex));

	/* bookmarks and watch_buffer: watches only. */
	ex          = add(f, "{'action':{'bookmarks':'off'}}");
	uint64_t wb = add(f, "{'action':{'watch_buffer':3}}");
	assert_int_equal(eval(f, &l, NULL, NULL), KS_FA_NONE);
	assert_int_equal(eval(f, &w, NULL, NULL), KS_FA_BOOKMARKS);
	counts(f, ex, &m, &h);
	assert_int_equal(m, 1);
	counts(f, wb, &m, &h);
	assert_int_equal(m, 0);
	assert_true(ks_faults_remove(f, ex));
	assert_true(ks_faults_remove(f, wb));

	/* An inapplicable earlier rule does not stop a later one. */
	add(f, "{'action':{'watch':'close','after_events':1}}");
	add(f, "{'action':{'status':500}}");
	ks_fault o;
	assert_int_equal(eval(f, &l, &o, NULL), KS_FA_STATUS);
	assert_int_equal(o.status, 500);
	assert_int_equal(eval(f, &w, NULL, NULL), KS_FA_WATCH_CLOSE);

	/* Plane-level rules are never picked by ks_faults_eval(). */
	assert_true(ks_faults_remove(f, 0));
	add(f, "{'action':{'plane':'gone'}}");
	add(f, "{'action':{'plane':'unavailable','status':503}}");
	add(f, "{'action':{'preset':'plane_warmup_429','requests':5}}");
	ks_faults_plane_created(f, "p1");
	g.plane = "p1";
	assert_int_equal(eval(f, &g, NULL, NULL), KS_FA_NONE);
	ks_faults_destroy(f);
}

/* The first applicable non-latency rule decides; later ones do not use
 * up their count on requests they did not decide. */
static void
test_faultrules_first_rule_decides(void **state)
{
	(void) state;
	ks_faults   *f = ks_faults_create(1);
	ks_fault_req g = req_get();
	ks_fault     o;
	uint64_t     a = add(f, "{'action':{'status':500},'count':2}");
	uint64_t     b = add(f, "{'action':{'status':503},'count':1}");
	for (int i = 0; i < 2; i++) {
		assert_int_equal(eval(f, &g, &o, NULL), KS_FA_STATUS);
		assert_int_equal(o.status, 500);
		assert_int_equal(o.rule_id, a);
	}
	assert_int_equal(eval(f, &g, &o, NULL), KS_FA_STATUS);
	assert_int_equal(o.status, 503);
	assert_int_equal(o.rule_id, b);
	assert_int_equal(eval(f, &g, &o, NULL), KS_FA_NONE);
	long long m, h;
	counts(f, a, &m, &h);
	assert_int_equal(h, 2);
	counts(f, b, &m, &h);
	assert_int_equal(h, 1);
	ks_faults_destroy(f);
}

/* --- count, after, probability, for_s ----------------------------------- */

static void
test_faultrules_count_and_after(void **state)
{
	(void) state;
	ks_faults   *f = ks_faults_create(1);
	ks_fault_req g = req_get();
	uint64_t id = add(f, "{'action':{'status':500},'count':2,'after':3}");
	static const bool want[]
	    = { false, false, false, true, true, false, false, false };
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		bool got = eval(f, &g, NULL, NULL) == KS_FA_STATUS;
		if (got != want[i])
			fail_msg("request %zu: fired %d, want %d", i + 1, got,
			    want[i]);
	}
	long long m, h;
	counts(f, id, &m, &h);
	assert_int_equal(h, 2);
	assert_true(m >= 5);

	/* count 0: never fires. */
	assert_true(ks_faults_remove(f, 0));
	add(f, "{'action':{'status':500},'count':0}");
	for (int i = 0; i < 5; i++)
		assert_int_equal(eval(f, &g, NULL, NULL), KS_FA_NONE);
	ks_faults_destroy(f);
}

/* Fires the rule `n` times and writes 1/0 per request into `out`. */
static void
draw(ks_faults *f, char *out, size_t n)
{
	ks_fault_req g = req_get();
	for (size_t i = 0; i < n; i++)
		out[i] = eval(f, &g, NULL, NULL) == KS_FA_STATUS ? '1' : '0';
	out[n] = '\0';
}

static void
test_faultrules_probability_deterministic(void **state)
{
	(void) state;
	enum { N = 400 };
	char       a[N + 1], b[N + 1];
	ks_faults *f1 = ks_faults_create(12345);
	ks_faults *f2 = ks_faults_create(12345);
	add(f1, "{'action':{'status':500},'probability':0.3}");
	add(f2, "{'action':{'status':500},'probability':0.3}");
	draw(f1, a, N);
	draw(f2, b, N);
	assert_string_equal(a, b);
	size_t ones = 0;
	for (size_t i = 0; i < N; i++)
		ones += a[i] == '1';
	/* 0.3 of 400 is 120; the bounds are ~6 standard deviations. */
	if (ones < 65 || ones > 175)
		fail_msg("probability 0.3 fired %zu of %d times", ones, N);
	ks_faults_destroy(f1);
	ks_faults_destroy(f2);

	/* 0 never, 1 always. */
	ks_faults *f = ks_faults_create(7);
	add(f, "{'action':{'status':500},'probability':0}");
	draw(f, a, N);
	assert_null(strchr(a, '1'));
	assert_true(ks_faults_remove(f, 0));
	add(f, "{'action':{'status':500},'probability':1}");
	draw(f, a, N);
	assert_null(strchr(a, '0'));
	ks_faults_destroy(f);

	/* Jitter draws are reproducible too. */
	f1 = ks_faults_create(99);
	f2 = ks_faults_create(99);
	add(f1, "{'action':{'latency_ms':100,'jitter_ms':50}}");
	add(f2, "{'action':{'latency_ms':100,'jitter_ms':50}}");
	ks_fault_req g   = req_get();
	int64_t      min = INT64_MAX, max = 0;
	for (int i = 0; i < 200; i++) {
		int64_t l1, l2;
		assert_int_equal(eval(f1, &g, NULL, &l1), KS_FA_NONE);
		assert_int_equal(eval(f2, &g, NULL, &l2), KS_FA_NONE);
		assert_int_equal(l1, l2);
		assert_in_range(l1, 100, 150);
		min = l1 < min ? l1 : min;
		max = l1 > max ? l1 : max;
	}
	assert_true(max - min >= 25);
	ks_faults_destroy(f1);
	ks_faults_destroy(f2);
}

static void
test_faultrules_for_s_expiry(void **state)
{
	(void) state;
	ks_faults   *f = ks_faults_create(1);
	ks_fault_req g = req_get();
	add_at(f, "{'action':{'status':500},'for_s':2}", 1000);
	g.now_ms = 1000;
	assert_int_equal(eval(f, &g, NULL, NULL), KS_FA_STATUS);
	g.now_ms = 2999;
	assert_int_equal(eval(f, &g, NULL, NULL), KS_FA_STATUS);
	g.now_ms = 3000;
	assert_int_equal(eval(f, &g, NULL, NULL), KS_FA_NONE);
	g.now_ms = 100000;
	assert_int_equal(eval(f, &g, NULL, NULL), KS_FA_NONE);
	assert_true(ks_faults_remove(f, 0));

	/* Fractional seconds. */
	add_at(f, "{'action':{'status':500},'for_s':0.5}", 1000);
	g.now_ms = 1499;
	assert_int_equal(eval(f, &g, NULL, NULL), KS_FA_STATUS);
	g.now_ms = 1500;
	assert_int_equal(eval(f, &g, NULL, NULL), KS_FA_NONE);
	assert_true(ks_faults_remove(f, 0));

	/* expire_storm's own for_s is the same window. */
	ks_fault_req w = req_watch(true);
	add_at(f, "{'action':{'watch':'expire_storm','for_s':2}}", 5000);
	w.now_ms = 6999;
	assert_int_equal(eval(f, &w, NULL, NULL), KS_FA_WATCH_EXPIRE);
	w.now_ms = 7000;
	assert_int_equal(eval(f, &w, NULL, NULL), KS_FA_NONE);
	assert_true(ks_faults_remove(f, 0));
	/* ... also with fractional seconds (as the rule-level for_s). */
	add_at(f, "{'action':{'watch':'expire_storm','for_s':1.5}}", 5000);
	w.now_ms               = 6250;
	enum ks_fault_action a = eval(f, &w, NULL, NULL);
	w.now_ms               = 6500;
	enum ks_fault_action b = eval(f, &w, NULL, NULL);
	ks_faults_destroy(f);
	if (a != KS_FA_WATCH_EXPIRE || b != KS_FA_NONE)
		fail_msg("expire_storm for_s 1.5 added at 5000 ms: at 6250 ms "
		         "action %d (want %d, expire), at 6500 ms action %d "
		         "(want 0, none)",
		    (int) a, (int) KS_FA_WATCH_EXPIRE, (int) b);
}

/* --- latency ---------------------------------------------------------- */

static void
test_faultrules_latency_accumulates(void **state)
{
	(void) state;
	ks_faults   *f = ks_faults_create(1);
	ks_fault_req g = req_get();
	ks_fault     o;
	int64_t      lat;
	bool         body;
	uint64_t     l1 = add(f, "{'action':{'latency_ms':100},'count':1}");
	uint64_t l2 = add(f, "{'action':{'latency_ms':250,'phase':'body'}}");
	add(f, "{'action':{'status':503},'count':1}");
	assert_true(ks_faults_eval(f, &g, &lat, &body, &o));
	assert_int_equal(lat, 350);
	assert_true(body);
	assert_int_equal(o.action, KS_FA_STATUS);
	assert_int_equal(o.status, 503);
	/* l1 and the status rule are used up. */
	assert_true(ks_faults_eval(f, &g, &lat, &body, &o));
	assert_int_equal(lat, 250);
	assert_int_equal(o.action, KS_FA_NONE);
	long long m, h;
	counts(f, l1, &m, &h);
	assert_int_equal(h, 1);
	counts(f, l2, &m, &h);
	assert_int_equal(h, 2);
	assert_true(ks_faults_remove(f, l2));
	assert_false(ks_faults_eval(f, &g, &lat, &body, &o));
	assert_int_equal(lat, 0);
	assert_false(body);

	/* Headers-phase latency only: body_phase stays false. */
	add(f, "{'action':{'latency_ms':40,'phase':'headers'}}");
	add(f, "{'action':{'latency_ms':2}}");
	assert_true(ks_faults_eval(f, &g, &lat, &body, &o));
	assert_int_equal(lat, 42);
	assert_false(body);
	/* Latency applies to watches as well. */
	ks_fault_req w = req_watch(false);
	assert_true(ks_faults_eval(f, &w, &lat, &body, &o));
	assert_int_equal(lat, 42);
	ks_faults_destroy(f);
}

/* --- plane-level rules -------------------------------------------------- */

static void
test_faultrules_warmup_per_plane(void **state)
{
	(void) state;
	ks_faults   *f = ks_faults_create(1);
	ks_fault     o;
	ks_fault_req p0 = req_plane("p0"), p1 = req_plane("p1"),
	             p2 = req_plane("p2"), root = req_plane("");
	ks_faults_plane_created(f, "p0"); /* before the rule: no warm-up */
	uint64_t id = add(f,
	    "{'action':{'preset':'plane_warmup_429',"
	    "'requests':2}}");
	assert_false(ks_faults_plane(f, &p0, &o));
	ks_faults_plane_created(f, "p1");
	for (int i = 0; i < 2; i++) {
		memset(&o, 0, sizeof(o));
		assert_true(ks_faults_plane(f, &p1, &o));
		assert_int_equal(o.action, KS_FA_PLANE_WARMUP);
		assert_int_equal(o.status, 429);
		assert_int_equal(o.retry_after, 1);
		assert_string_equal(o.message, "storage is (re)initializing");
		assert_int_equal(o.rule_id, id);
		/* another plane is not affected meanwhile */
		assert_false(ks_faults_plane(f, &p2, &o));
	}
	assert_false(ks_faults_plane(f, &p1, &o));
	assert_false(ks_faults_plane(f, &root, &o));
	/* Each new plane gets its own N. */
	ks_faults_plane_created(f, "p2");
	assert_true(ks_faults_plane(f, &p2, &o));
	assert_true(ks_faults_plane(f, &p2, &o));
	assert_false(ks_faults_plane(f, &p2, &o));
	assert_false(ks_faults_plane(f, &p1, &o));
	/* A plane created again (Project deleted and re-created) warms up
	 * again. */
	ks_faults_plane_created(f, "p1");
	assert_true(ks_faults_plane(f, &p1, &o));
	long long m, h;
	counts(f, id, &m, &h);
	assert_int_equal(h, 5);
	assert_true(ks_faults_remove(f, id));

	/* Default N is at least one; a plane filter limits the preset. */
	add(f,
	    "{'match':{'plane':'p4'},"
	    "'action':{'preset':'plane_warmup_429'}}");
	ks_faults_plane_created(f, "p3");
	ks_faults_plane_created(f, "p4");
	ks_fault_req p3 = req_plane("p3"), p4 = req_plane("p4");
	assert_false(ks_faults_plane(f, &p3, &o));
	assert_true(ks_faults_plane(f, &p4, &o));
	ks_faults_destroy(f);
}

static void
test_faultrules_plane_actions(void **state)
{
	(void) state;
	ks_faults   *f = ks_faults_create(1);
	ks_fault     o;
	ks_fault_req p1 = req_plane("p1"), p2 = req_plane("p2"),
	             root = req_plane("");
	uint64_t u        = add(f,
	           "{'match':{'plane':'p1'},"
	                  "'action':{'plane':'unavailable','status':503}}");
	assert_true(ks_faults_plane(f, &p1, &o));
	assert_int_equal(o.action, KS_FA_PLANE_UNAVAILABLE);
	assert_int_equal(o.status, 503);
	assert_false(ks_faults_plane(f, &p2, &o));
	assert_false(ks_faults_plane(f, &root, &o));
	assert_true(ks_faults_remove(f, u));
	assert_false(ks_faults_plane(f, &p1, &o));

	add(f, "{'match':{'plane':'p2'},'action':{'plane':'gone'},'count':1}");
	assert_true(ks_faults_plane(f, &p2, &o));
	assert_int_equal(o.action, KS_FA_PLANE_GONE);
	assert_false(ks_faults_plane(f, &p2, &o)); /* count 1 */

	/* The root plane is never unavailable or gone, even for "*". */
	add(f, "{'match':{'plane':'*'},'action':{'plane':'gone'}}");
	assert_false(ks_faults_plane(f, &root, &o));
	assert_true(ks_faults_plane(f, &p1, &o));
	ks_faults_destroy(f);
}

/* --- bookkeeping -------------------------------------------------------- */

static void
test_faultrules_remove_and_describe(void **state)
{
	(void) state;
	ks_faults  *f  = ks_faults_create(1);
	const char *r2 = "{'match':{'verb':'get'},'action':{'status':500},"
	                 "'count':4}";
	assert_int_equal(add(f, "{'action':{'status':500}}"), 1);
	assert_int_equal(add(f, r2), 2);
	assert_int_equal(add(f, "{'action':{'conn':'reset'}}"), 3);
	ks_fault_req g = req_get();
	eval(f, &g, NULL, NULL);

	json_t *items = ks_faults_describe(f);
	assert_int_equal(json_array_size(items), 3);
	json_t *second = json_array_get(items, 1);
	assert_int_equal(json_integer_value(json_object_get(second, "id")), 2);
	json_t *want = jq(r2);
	assert_true(json_equal(json_object_get(second, "rule"), want));
	json_decref(want);
	assert_true(json_is_integer(json_object_get(second, "matches")));
	assert_true(json_is_integer(json_object_get(second, "hits")));
	json_t *first = json_array_get(items, 0);
	assert_int_equal(
	    json_integer_value(json_object_get(first, "hits")), 1);
	json_decref(items);

	assert_true(ks_faults_remove(f, 2));
	assert_false(ks_faults_remove(f, 2));
	assert_false(ks_faults_remove(f, 77));
	items = ks_faults_describe(f);
	assert_int_equal(json_array_size(items), 2);
	assert_int_equal(json_integer_value(
	                     json_object_get(json_array_get(items, 1), "id")),
	    3);
	json_decref(items);
	/* Ids are not reused after a removal. */
	assert_int_equal(add(f, "{'action':{'status':500}}"), 4);

	assert_true(ks_faults_remove(f, 0));
	assert_true(ks_faults_remove(f, 0)); /* "all" of nothing is fine */
	items = ks_faults_describe(f);
	assert_int_equal(json_array_size(items), 0);
	json_decref(items);
	assert_int_equal(eval(f, &g, NULL, NULL), KS_FA_NONE);
	ks_faults_destroy(f);
}

static void
test_faultrules_null_set(void **state)
{
	(void) state;
	ks_fault     o;
	int64_t      lat  = 5;
	bool         body = true;
	ks_fault_req g    = req_get();
	ks_fault_req p    = req_plane("p1");
	assert_false(ks_faults_eval(NULL, &g, &lat, &body, &o));
	assert_int_equal(lat, 0);
	assert_false(body);
	assert_int_equal(o.action, KS_FA_NONE);
	assert_false(ks_faults_plane(NULL, &p, &o));
	ks_faults_plane_created(NULL, "p1");
	ks_faults_destroy(NULL);
}

/* A table row: human-readable name and function. */
#define T(name, fn)                                                           \
	{                                                                     \
		name, fn, NULL, NULL, NULL                                    \
	}

int
main(void)
{
	mcf_alloc_init_libs();
	const struct CMUnitTest tests[] = {
		T("malformed rules are rejected; every action parses",
		    test_faultrules_parse_errors),
		T("each action hands its fields to the server",
		    test_faultrules_action_fields),
		T("matching by plane, method, verb, group, resource, "
		  "namespace, name, path and UA",
		    test_faultrules_matching),
		T("a rule counts only requests its action can affect",
		    test_faultrules_applies_only_when_applicable),
		T("the first applicable rule decides",
		    test_faultrules_first_rule_decides),
		T("count and after", test_faultrules_count_and_after),
		T("probability is reproducible from the seed",
		    test_faultrules_probability_deterministic),
		T("for_s windows, expire_storm included",
		    test_faultrules_for_s_expiry),
		T("latency rules add up", test_faultrules_latency_accumulates),
		T("plane_warmup_429 counts per new plane",
		    test_faultrules_warmup_per_plane),
		T("plane unavailable and gone", test_faultrules_plane_actions),
		T("remove one, remove all, describe",
		    test_faultrules_remove_and_describe),
		T("a NULL rule set injects nothing", test_faultrules_null_set),
	};
	return cmocka_run_group_tests_name("ks_faultrules", tests, NULL, NULL);
}

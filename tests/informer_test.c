/*
 * informer_test.c — informers (common/informer.h) against kubesim.
 *
 * The group setup starts the kubesim binary named by $KUBESIM (ks_spawn)
 * with bookmarks every second.  Every test works in namespaces of its
 * own, creates its own loop, and frees everything it made.  Objects are
 * written with the REST client (mcf_kc) from the test thread; faults are
 * injected with POST /_sim/faults and cleared after each test.  Nothing
 * waits on a bare sleep: every wait polls a condition until a deadline
 * (scaled by MCF_TEST_TIMEOUT_SCALE under sanitizers).
 *
 * "The cache equals the server" means: the names and resourceVersions of
 * a LIST through mcf_kc equal those of mcf_inf_list, polled until equal.
 */
#include <dirent.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>

#include "alloc.h"
#include "httpserver.h"
#include "informer.h"
#include "kclient.h"
#include "ks_spawn.h"
#include "kubeconfig.h"
#include "log.h"

#define UA "informer_test/0.1.0 (test; 1)"
/* The informers' user agent: tells their requests from the test's. */
#define INF_UA "informer_test-informer/0.1.0 (test; 1)"

static int            scale = 1;
static ks_spawn       sim;
static mcf_kc        *adm; /* the test thread's client of the root plane */
static mcf_kubeconfig kcfg;

#define now_ms() ks_spawn_now_ms()

static void
sleep_ms(int64_t ms)
{
	struct timespec ts
	    = { (time_t) (ms / 1000), (long) (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/* Polls `expr` every 10 ms until it is true or `ms` (scaled) pass; `ok`
 * gets the last value. */
#define WAIT_FOR(ok, expr, ms)                                                \
	do {                                                                  \
		int64_t dl_ = now_ms() + (int64_t) (ms) *scale;               \
		while (!((ok) = (expr)) && now_ms() < dl_)                    \
			sleep_ms(10);                                         \
	} while (0)

/* ---- server helpers ------------------------------------------------- */

static json_t *
sim_request(const char *method, const char *path, const char *body_text)
{
	json_t *body = body_text ? json_loads(body_text, 0, NULL) : NULL;
	if (body_text != NULL)
		assert_non_null(body);
	json_t       *out = NULL;
	mcf_kc_status st;
	int           rc = mcf_kc_request(adm, method, path, body, &out, &st);
	if (rc != 0)
		print_message(
		    "%s %s: %d %s\n", method, path, st.http_code, st.message);
	assert_int_equal(rc, 0);
	json_decref(body);
	return out;
}

static void
add_fault(const char *rule)
{
	json_decref(sim_request("POST", "/_sim/faults", rule));
}

static int
clear_faults(void **state)
{
	(void) state;
	json_decref(sim_request("DELETE", "/_sim/faults", NULL));
	return 0;
}

static void
compact_now(void)
{
	json_decref(sim_request("POST", "/_sim/compact", "{\"plane\":\"\"}"));
}

static void
ns_create(const char *ns)
{
	mcf_kc_ref r   = { NULL, "v1", "namespaces", NULL, NULL };
	json_t    *obj = json_pack("{s:{s:s}}", "metadata", "name", ns);
	int        rc  = mcf_kc_create_object(adm, &r, obj, NULL, NULL);
	assert_true(rc == 0 || rc == MCF_EEXIST);
	json_decref(obj);
}

/* Creates ConfigMap ns/name with data {"v": value}, optional labels
 * (JSON text) and an optional owner uid. */
static void
cm_create(const char *ns, const char *name, const char *value,
    const char *labels, const char *owner_uid)
{
	mcf_kc_ref r   = { NULL, "v1", "configmaps", ns, NULL };
	json_t    *obj = json_pack(
	       "{s:{s:s},s:{s:s}}", "metadata", "name", name, "data", "v", value);
	json_t *meta = json_object_get(obj, "metadata");
	if (labels != NULL)
		json_object_set_new(
		    meta, "labels", json_loads(labels, 0, NULL));
	if (owner_uid != NULL)
		json_object_set_new(meta, "ownerReferences",
		    json_pack("[{s:s,s:s,s:s,s:s}]", "apiVersion", "v1",
		        "kind", "ConfigMap", "name", "owner", "uid",
		        owner_uid));
	mcf_kc_status st;
	int           rc = mcf_kc_create_object(adm, &r, obj, NULL, &st);
	if (rc != 0)
		print_message("create %s/%s: %s\n", ns, name, st.message);
	assert_int_equal(rc, 0);
	json_decref(obj);
}

/* Merge-patches ConfigMap ns/name with the JSON text `patch`. */
static void
cm_patch(const char *ns, const char *name, const char *patch)
{
	mcf_kc_ref r = { NULL, "v1", "configmaps", ns, name };
	json_t    *p = json_loads(patch, 0, NULL);
	assert_non_null(p);
	assert_int_equal(
	    mcf_kc_patch(adm, &r, MCF_KC_PATCH_MERGE, p, NULL, NULL), 0);
	json_decref(p);
}

static void
cm_set(const char *ns, const char *name, const char *value)
{
	char p[256];
	snprintf(p, sizeof(p), "{\"data\":{\"v\":\"%s\"}}", value);
	cm_patch(ns, name, p);
}

static void
cm_delete(const char *ns, const char *name)
{
	mcf_kc_ref r = { NULL, "v1", "configmaps", ns, name };
	assert_int_equal(mcf_kc_delete(adm, &r, NULL, NULL, NULL), 0);
}

/* {"ns/name": rv} of a list of objects. */
static void
state_add(json_t *st, const json_t *o)
{
	const json_t *m  = json_object_get(o, "metadata");
	const char   *ns = json_string_value(json_object_get(m, "namespace"));
	const char   *n  = json_string_value(json_object_get(m, "name"));
	const char   *rv
	    = json_string_value(json_object_get(m, "resourceVersion"));
	char key[512];
	snprintf(key, sizeof(key), "%s/%s", ns ? ns : "", n ? n : "");
	json_object_set_new(st, key, json_string(rv ? rv : ""));
}

static json_t *
server_state(const char *ns, const char *lsel)
{
	mcf_kc_ref       r = { NULL, "v1", "configmaps", ns, NULL };
	mcf_kc_list_opts o = { .label_selector = lsel };
	json_t          *l = NULL;
	assert_int_equal(mcf_kc_list(adm, &r, &o, &l, NULL), 0);
	json_t *st = json_object();
	size_t  i;
	json_t *it;
	json_array_foreach(json_object_get(l, "items"), i, it)
	    state_add(st, it);
	json_decref(l);
	return st;
}

static json_t *
cache_state(mcf_inf *inf)
{
	json_t **objs;
	size_t   n;
	assert_int_equal(mcf_inf_list(inf, NULL, NULL, &objs, &n), 0);
	json_t *st = json_object();
	for (size_t i = 0; i < n; i++)
		state_add(st, objs[i]);
	mcf_inf_objs_free(objs, n);
	return st;
}

static bool
cache_equals_server(mcf_inf *inf, const char *ns, const char *lsel)
{
	json_t *a  = server_state(ns, lsel);
	json_t *b  = cache_state(inf);
	bool    eq = json_equal(a, b);
	json_decref(a);
	json_decref(b);
	return eq;
}

static void
assert_converges(mcf_inf *inf, const char *ns, const char *lsel)
{
	bool ok;
	WAIT_FOR(ok, cache_equals_server(inf, ns, lsel), 20000);
	if (!ok) {
		json_t *a = server_state(ns, lsel), *b = cache_state(inf);
		char   *sa = json_dumps(a, JSON_SORT_KEYS);
		char   *sb = json_dumps(b, JSON_SORT_KEYS);
		print_message("server %s\ncache  %s\n", sa, sb);
		free(sa);
		free(sb);
		json_decref(a);
		json_decref(b);
	}
	assert_true(ok);
}

/* Number of open watches kubesim has in namespace `ns`. */
static size_t
watchers_in(const char *ns)
{
	json_t *w = sim_request("GET", "/_sim/watchers", NULL);
	size_t  n = 0, i;
	json_t *it;
	json_array_foreach(json_object_get(w, "items"), i, it)
	{
		const char *wns = json_string_value(json_object_get(it, "ns"));
		if (wns != NULL && strcmp(wns, ns) == 0)
			n++;
	}
	json_decref(w);
	return n;
}

/* LIST and WATCH requests informers sent for configmaps in `ns`, from
 * kubesim's request log. */
static void
requests_in(const char *ns, size_t *lists, size_t *watches)
{
	char path[256];
	snprintf(path, sizeof(path), "/api/v1/namespaces/%s/configmaps", ns);
	json_t *r = sim_request("GET", "/_sim/requests", NULL);
	size_t  i;
	json_t *it;
	*lists = *watches = 0;
	json_array_foreach(json_object_get(r, "items"), i, it)
	{
		const char *p = json_string_value(json_object_get(it, "path"));
		const char *q
		    = json_string_value(json_object_get(it, "query"));
		const char *m
		    = json_string_value(json_object_get(it, "method"));
		const char *ua
		    = json_string_value(json_object_get(it, "user_agent"));
		if (p == NULL || strcmp(p, path) != 0 || m == NULL
		    || strcmp(m, "GET") != 0 || ua == NULL
		    || strcmp(ua, INF_UA) != 0)
			continue;
		if (q != NULL && strstr(q, "watch=") != NULL)
			(*watches)++;
		else
			(*lists)++;
	}
	json_decref(r);
}

/* ---- informer helpers ----------------------------------------------- */

static mcf_inf_config
cfg_for(const char *ns)
{
	mcf_inf_config c = {
		.cluster            = "test",
		.kc                 = &kcfg,
		.user_agent         = INF_UA,
		.version            = "v1",
		.resource           = "configmaps",
		.namespace          = ns,
		.watch_timeout_s    = 30,
		.backoff_initial_ms = 50,
		.backoff_max_ms     = 400,
	};
	return c;
}

static mcf_inf *
acquire(mcf_inf_loop *loop, const mcf_inf_config *c)
{
	mcf_inf    *inf = NULL;
	mcf_errinfo ei;
	int         rc = mcf_inf_acquire(loop, c, &inf, &ei);
	if (rc != 0)
		print_message("acquire: %s\n", ei.msg);
	assert_int_equal(rc, 0);
	return inf;
}

static mcf_inf_loop *
loop_new(void)
{
	mcf_inf_loop *l = NULL;
	mcf_errinfo   ei;
	assert_int_equal(mcf_inf_loop_create(&l, &ei), 0);
	return l;
}

static mcf_inf_stats
stats(mcf_inf *inf)
{
	mcf_inf_stats s;
	mcf_inf_get_stats(inf, &s);
	return s;
}

/* A handler that records every call as {"op","key","rv","initial"}. */
typedef struct rec {
	pthread_mutex_t mtx;
	json_t         *evs;
	size_t          same_updates; /* on_update with old == new */
} rec;

static void
rec_init(rec *r)
{
	pthread_mutex_init(&r->mtx, NULL);
	r->evs          = json_array();
	r->same_updates = 0;
}

static void
rec_fini(rec *r)
{
	json_decref(r->evs);
	pthread_mutex_destroy(&r->mtx);
}

static void
rec_push(rec *r, const char *op, const json_t *o, bool initial)
{
	const json_t *m = json_object_get(o, "metadata");
	char          key[512];
	const char   *ns = json_string_value(json_object_get(m, "namespace"));
	snprintf(key, sizeof(key), "%s/%s", ns ? ns : "",
	    json_string_value(json_object_get(m, "name")));
	json_t *e = json_pack("{s:s,s:s,s:s?,s:b}", "op", op, "key", key, "rv",
	    json_string_value(json_object_get(m, "resourceVersion")),
	    "initial", initial);
	pthread_mutex_lock(&r->mtx);
	json_array_append_new(r->evs, e);
	pthread_mutex_unlock(&r->mtx);
}

static void
rec_add(void *arg, const json_t *obj, bool initial)
{
	rec_push(arg, "add", obj, initial);
}

static void
rec_update(void *arg, const json_t *old_obj, const json_t *new_obj)
{
	rec *r = arg;
	if (old_obj == new_obj) {
		pthread_mutex_lock(&r->mtx);
		r->same_updates++;
		pthread_mutex_unlock(&r->mtx);
		return;
	}
	rec_push(r, "update", new_obj, false);
}

static void
rec_delete(void *arg, const json_t *obj)
{
	rec_push(arg, "delete", obj, false);
}

static size_t
rec_count(rec *r)
{
	pthread_mutex_lock(&r->mtx);
	size_t n = json_array_size(r->evs);
	pthread_mutex_unlock(&r->mtx);
	return n;
}

static size_t
rec_same(rec *r)
{
	pthread_mutex_lock(&r->mtx);
	size_t n = r->same_updates;
	pthread_mutex_unlock(&r->mtx);
	return n;
}

/* Index `i` of the record as "op key" (static buffer). */
static const char *
rec_at(rec *r, size_t i)
{
	static char buf[600];
	pthread_mutex_lock(&r->mtx);
	json_t *e = json_array_get(r->evs, i);
	snprintf(buf, sizeof(buf), "%s %s",
	    e ? json_string_value(json_object_get(e, "op")) : "-",
	    e ? json_string_value(json_object_get(e, "key")) : "-");
	pthread_mutex_unlock(&r->mtx);
	return buf;
}

static bool
rec_initial_at(rec *r, size_t i)
{
	pthread_mutex_lock(&r->mtx);
	bool b = json_is_true(
	    json_object_get(json_array_get(r->evs, i), "initial"));
	pthread_mutex_unlock(&r->mtx);
	return b;
}

/* Whether the record holds an entry "op key" (with `initial` when
 * `want_initial` >= 0). */
static bool
rec_has(rec *r, const char *op, const char *key, int want_initial)
{
	bool    found = false;
	size_t  i;
	json_t *e;
	pthread_mutex_lock(&r->mtx);
	json_array_foreach(r->evs, i, e)
	{
		if (strcmp(json_string_value(json_object_get(e, "op")), op)
		        == 0
		    && strcmp(
		           json_string_value(json_object_get(e, "key")), key)
		        == 0
		    && (want_initial < 0
		        || json_is_true(json_object_get(e, "initial"))
		            == (want_initial > 0)))
			found = true;
	}
	pthread_mutex_unlock(&r->mtx);
	return found;
}

static const mcf_inf_handler *
rec_handler(rec *r)
{
	static _Thread_local mcf_inf_handler h;
	h = (mcf_inf_handler) { .on_add = rec_add,
		.on_update              = rec_update,
		.on_delete              = rec_delete,
		.arg                    = r };
	return &h;
}

/* ---- tests ---------------------------------------------------------- */

static void
test_informer_list_watch_basic(void **state)
{
	(void) state;
	ns_create("t1");
	cm_create("t1", "a", "1", NULL, NULL);
	cm_create("t1", "b", "1", NULL, NULL);
	cm_create("t1", "c", "1", NULL, NULL);

	mcf_inf_loop  *loop = loop_new();
	mcf_inf_config c    = cfg_for("t1");
	mcf_inf       *inf  = acquire(loop, &c);
	rec            r;
	rec_init(&r);
	uint64_t id;
	assert_int_equal(mcf_inf_add_handler(inf, rec_handler(&r), &id), 0);
	assert_int_equal(mcf_inf_wait_synced(inf, 10000LL * scale), 0);
	assert_true(mcf_inf_has_synced(inf));
	assert_int_equal(mcf_inf_count(inf), 3);
	bool ok;
	WAIT_FOR(ok, rec_count(&r) == 3, 5000);
	assert_true(ok);
	for (size_t i = 0; i < 3; i++)
		assert_true(rec_initial_at(&r, i));
	assert_true(rec_has(&r, "add", "t1/a", 1));
	assert_true(rec_has(&r, "add", "t1/b", 1));
	assert_true(rec_has(&r, "add", "t1/c", 1));

	/* Later changes, in order. */
	cm_create("t1", "d", "1", NULL, NULL);
	cm_set("t1", "a", "2");
	cm_delete("t1", "b");
	WAIT_FOR(ok, rec_count(&r) == 6, 10000);
	assert_true(ok);
	assert_string_equal(rec_at(&r, 3), "add t1/d");
	assert_false(rec_initial_at(&r, 3));
	assert_string_equal(rec_at(&r, 4), "update t1/a");
	assert_string_equal(rec_at(&r, 5), "delete t1/b");
	assert_converges(inf, "t1", NULL);

	json_t *a = mcf_inf_get(inf, "t1/a");
	assert_non_null(a);
	assert_string_equal(json_string_value(json_object_get(
	                        json_object_get(a, "data"), "v")),
	    "2");
	assert_string_equal(
	    json_string_value(json_object_get(a, "kind")), "ConfigMap");
	mcf_inf_obj_release(a);
	assert_null(mcf_inf_get(inf, "t1/b"));

	mcf_inf_stats s = stats(inf);
	assert_int_equal(s.lists, 1);
	assert_true(s.list_pages >= 1);
	assert_true(s.watches >= 1);
	assert_int_equal(s.events, 3);
	assert_int_equal(s.last_err, 0);
	assert_true(s.resource_version[0] != '\0');

	mcf_inf_remove_handler(inf, id);
	mcf_inf_release(inf);
	mcf_inf_loop_destroy(loop);
	rec_fini(&r);
}

static void
test_informer_pagination(void **state)
{
	(void) state;
	json_decref(sim_request("POST", "/_sim/load",
	    "{\"plane\":\"\",\"group\":\"\",\"version\":\"v1\","
	    "\"resource\":\"configmaps\",\"namespace\":\"t2\","
	    "\"op\":\"create\",\"count\":230,\"size\":300,\"rate\":0}"));
	mcf_inf_loop  *loop = loop_new();
	mcf_inf_config c    = cfg_for("t2");
	c.page_size         = 50;
	mcf_inf *inf        = acquire(loop, &c);
	assert_int_equal(mcf_inf_wait_synced(inf, 10000LL * scale), 0);
	assert_int_equal(mcf_inf_count(inf), 230);
	mcf_inf_stats s = stats(inf);
	assert_int_equal(s.lists, 1);
	assert_int_equal(s.list_pages, 5);
	assert_converges(inf, "t2", NULL);
	mcf_inf_release(inf);
	mcf_inf_loop_destroy(loop);
}

static void
test_informer_watch_drops(void **state)
{
	(void) state;
	ns_create("t3");
	for (int i = 0; i < 5; i++) {
		char n[16];
		snprintf(n, sizeof(n), "o%d", i);
		cm_create("t3", n, "0", NULL, NULL);
	}
	/* The first watches end after two events each: three cleanly,
	 * three abruptly (no terminating chunk), three in the middle of a
	 * line; then two responses are truncated after 700 bytes.  The
	 * first matching rule with hits left applies. */
	add_fault("{\"match\":{\"verb\":\"watch\",\"namespace\":\"t3\"},"
	          "\"action\":{\"watch\":\"close\",\"after_events\":2,"
	          "\"mode\":\"clean\"},\"count\":3}");
	add_fault("{\"match\":{\"verb\":\"watch\",\"namespace\":\"t3\"},"
	          "\"action\":{\"watch\":\"close\",\"after_events\":2,"
	          "\"mode\":\"abrupt\"},\"count\":3}");
	add_fault("{\"match\":{\"verb\":\"watch\",\"namespace\":\"t3\"},"
	          "\"action\":{\"watch\":\"close\",\"after_events\":2,"
	          "\"mode\":\"midline\"},\"count\":3}");
	add_fault("{\"match\":{\"verb\":\"watch\",\"namespace\":\"t3\"},"
	          "\"action\":{\"conn\":\"truncate\",\"after_bytes\":700},"
	          "\"count\":2}");
	mcf_inf_loop  *loop = loop_new();
	mcf_inf_config c    = cfg_for("t3");
	mcf_inf       *inf  = acquire(loop, &c);
	assert_int_equal(mcf_inf_wait_synced(inf, 10000LL * scale), 0);

	/* Writes keep events flowing until every faulty watch is used up. */
	int     round = 0;
	int64_t dl    = now_ms() + 60000LL * scale;
	while (stats(inf).watches < 12 && now_ms() < dl) {
		char n[16], v[16];
		snprintf(n, sizeof(n), "o%d", round % 5);
		snprintf(v, sizeof(v), "%d", ++round);
		cm_set("t3", n, v);
		sleep_ms(5);
	}
	assert_true(stats(inf).watches >= 12);
	for (int i = 0; i < 20; i++) {
		char n[16], v[16];
		snprintf(n, sizeof(n), "o%d", i % 5);
		snprintf(v, sizeof(v), "%d", ++round);
		cm_set("t3", n, v);
	}
	assert_converges(inf, "t3", NULL);
	cm_create("t3", "late", "1", NULL, NULL);
	assert_converges(inf, "t3", NULL);
	mcf_inf_stats s = stats(inf);
	print_message("watch drops: lists %llu watches %llu events %llu "
	              "stream_errors %llu request_errors %llu bookmarks "
	              "%llu\n",
	    (unsigned long long) s.lists, (unsigned long long) s.watches,
	    (unsigned long long) s.events,
	    (unsigned long long) s.stream_errors,
	    (unsigned long long) s.request_errors,
	    (unsigned long long) s.bookmarks);
	assert_int_equal(s.lists, 1);
	assert_int_equal(s.relists_gone, 0);
	assert_true(s.watches >= 12);
	assert_true(s.stream_errors >= 6);
	assert_true(s.events >= (uint64_t) round);
	size_t lists, watches;
	requests_in("t3", &lists, &watches);
	assert_int_equal(lists, 1);
	mcf_inf_release(inf);
	mcf_inf_loop_destroy(loop);
}

static void
test_informer_gone_relist(void **state)
{
	(void) state;
	ns_create("t4");
	cm_create("t4", "keep", "1", NULL, NULL);
	cm_create("t4", "gone", "1", NULL, NULL);
	cm_create("t4", "changed", "1", NULL, NULL);
	mcf_inf_loop  *loop = loop_new();
	mcf_inf_config c    = cfg_for("t4");
	c.watch_timeout_s   = 2;
	mcf_inf *inf        = acquire(loop, &c);
	rec      r;
	rec_init(&r);
	uint64_t id;
	assert_int_equal(mcf_inf_add_handler(inf, rec_handler(&r), &id), 0);
	assert_int_equal(mcf_inf_wait_synced(inf, 10000LL * scale), 0);
	bool ok;
	WAIT_FOR(ok, rec_count(&r) == 3, 5000);
	assert_true(ok);

	/* Keep the informer off the server: its watch renews every 2 s
	 * and the renewal fails, so the changes fall in a gap. */
	mcf_inf_stats before = stats(inf);
	add_fault("{\"match\":{\"verb\":\"watch\",\"namespace\":\"t4\"},"
	          "\"action\":{\"status\":500},\"count\":100000}");
	WAIT_FOR(ok, stats(inf).request_errors > before.request_errors, 10000);
	assert_true(ok);
	cm_delete("t4", "gone");
	cm_create("t4", "new", "1", NULL, NULL);
	cm_set("t4", "changed", "2");
	cm_create("t4", "pad", "1", NULL, NULL); /* moves the floor past */
	compact_now();
	clear_faults(NULL);
	WAIT_FOR(ok, rec_count(&r) >= 6, 20000);
	assert_true(ok);
	assert_true(rec_has(&r, "delete", "t4/gone", -1));
	assert_true(rec_has(&r, "add", "t4/new", 0));
	assert_true(rec_has(&r, "add", "t4/pad", 0));
	assert_true(rec_has(&r, "update", "t4/changed", -1));
	assert_false(rec_has(&r, "update", "t4/keep", -1));
	assert_converges(inf, "t4", NULL);
	mcf_inf_stats s = stats(inf);
	assert_true(s.relists_gone >= 1);
	assert_true(s.lists <= s.relists_gone + 1);

	/* A storm of 410s on every watch for four seconds; the open watch
	 * renews within two, so at least two seconds of it are felt. */
	add_fault("{\"match\":{\"verb\":\"watch\",\"namespace\":\"t4\"},"
	          "\"action\":{\"watch\":\"expire_storm\",\"for_s\":4}}");
	uint64_t gone0 = s.relists_gone;
	WAIT_FOR(ok, stats(inf).relists_gone >= gone0 + 2, 20000);
	assert_true(ok);
	cm_create("t4", "after-storm", "1", NULL, NULL);
	cm_delete("t4", "keep");
	assert_converges(inf, "t4", NULL);
	WAIT_FOR(ok, rec_has(&r, "delete", "t4/keep", -1), 20000);
	assert_true(ok);
	s = stats(inf);
	print_message("410: lists %llu relists_gone %llu watches %llu\n",
	    (unsigned long long) s.lists, (unsigned long long) s.relists_gone,
	    (unsigned long long) s.watches);
	assert_true(s.lists <= s.relists_gone + 1);
	mcf_inf_remove_handler(inf, id);
	mcf_inf_release(inf);
	mcf_inf_loop_destroy(loop);
	rec_fini(&r);
}

static void
test_informer_throttled_and_slow(void **state)
{
	(void) state;
	ns_create("t5");
	for (int i = 0; i < 30; i++) {
		char n[16];
		snprintf(n, sizeof(n), "o%02d", i);
		cm_create("t5", n, "0", NULL, NULL);
	}
	add_fault("{\"match\":{\"verb\":\"list\",\"namespace\":\"t5\"},"
	          "\"action\":{\"status\":429},\"count\":2}");
	add_fault("{\"match\":{\"verb\":\"list\",\"namespace\":\"t5\"},"
	          "\"action\":{\"status\":500},\"count\":2}");
	add_fault("{\"match\":{\"verb\":\"list\",\"namespace\":\"t5\"},"
	          "\"action\":{\"latency_ms\":300,\"phase\":\"headers\"},"
	          "\"count\":2}");
	add_fault(
	    "{\"match\":{\"verb\":\"watch\",\"namespace\":\"t5\"},"
	    "\"action\":{\"status\":429,\"retry_after\":1},\"count\":1}");
	add_fault("{\"match\":{\"verb\":\"watch\",\"namespace\":\"t5\"},"
	          "\"action\":{\"status\":503},\"count\":2}");
	add_fault("{\"match\":{\"verb\":\"watch\",\"namespace\":\"t5\"},"
	          "\"action\":{\"latency_ms\":200,\"jitter_ms\":100,"
	          "\"phase\":\"body\"},\"count\":3}");
	add_fault("{\"match\":{\"verb\":\"watch\",\"namespace\":\"t5\"},"
	          "\"action\":{\"conn\":\"reset\"},\"count\":2}");
	mcf_inf_loop  *loop = loop_new();
	mcf_inf_config c    = cfg_for("t5");
	c.page_size         = 10;
	c.watch_timeout_s   = 3;
	mcf_inf *inf        = acquire(loop, &c);
	assert_int_equal(mcf_inf_wait_synced(inf, 20000LL * scale), 0);
	assert_int_equal(mcf_inf_count(inf), 30);
	for (int i = 0; i < 30; i++) {
		char n[16];
		snprintf(n, sizeof(n), "o%02d", i);
		if (i % 3 == 0)
			cm_delete("t5", n);
		else
			cm_set("t5", n, "1");
	}
	cm_create("t5", "new", "1", NULL, NULL);
	assert_converges(inf, "t5", NULL);
	mcf_inf_stats s = stats(inf);
	print_message("throttled: lists %llu pages %llu watches %llu "
	              "request_errors %llu last %s\n",
	    (unsigned long long) s.lists, (unsigned long long) s.list_pages,
	    (unsigned long long) s.watches,
	    (unsigned long long) s.request_errors, s.last_error);
	assert_true(s.request_errors >= 4);
	assert_int_equal(s.relists_gone, 0);
	mcf_inf_release(inf);
	mcf_inf_loop_destroy(loop);
}

/* A resource that is not served yet (its CRD does not exist): the list's
 * 404 is retried and shown in the stats until the CRD appears. */
static void
test_informer_waits_for_crd(void **state)
{
	(void) state;
	mcf_inf_loop  *loop = loop_new();
	mcf_inf_config c    = cfg_for(NULL);
	c.group             = "widgets.example.com";
	c.resource          = "widgets";
	c.namespace         = "t5c";
	mcf_inf *inf        = acquire(loop, &c);
	bool     ok;
	WAIT_FOR(ok, stats(inf).last_http_code == 404, 10000);
	assert_true(ok);
	mcf_inf_stats s = stats(inf);
	assert_int_equal(s.last_err, MCF_ENOENT);
	assert_false(mcf_inf_has_synced(inf));
	assert_int_equal(mcf_inf_wait_synced(inf, 100), MCF_ETIMEDOUT);

	ns_create("t5c");
	json_decref(sim_request("POST",
	    "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
	    "{\"metadata\":{\"name\":\"widgets.widgets.example.com\"},"
	    "\"spec\":{\"group\":\"widgets.example.com\",\"scope\":"
	    "\"Namespaced\",\"names\":{\"plural\":\"widgets\",\"singular\":"
	    "\"widget\",\"kind\":\"Widget\"},\"versions\":[{\"name\":\"v1\","
	    "\"served\":true,\"storage\":true,\"schema\":{\"openAPIV3Schema\":"
	    "{\"type\":\"object\",\"x-kubernetes-preserve-unknown-fields\":"
	    "true}}}]}}"));
	json_decref(sim_request("POST",
	    "/apis/widgets.example.com/v1/namespaces/t5c/widgets",
	    "{\"metadata\":{\"name\":\"w1\"},\"spec\":{\"size\":1}}"));
	assert_int_equal(mcf_inf_wait_synced(inf, 20000LL * scale), 0);
	WAIT_FOR(ok, mcf_inf_count(inf) == 1, 10000);
	assert_true(ok);
	json_t *w = mcf_inf_get(inf, "t5c/w1");
	assert_non_null(w);
	assert_string_equal(
	    json_string_value(json_object_get(w, "kind")), "Widget");
	mcf_inf_obj_release(w);
	assert_int_equal(stats(inf).last_err, 0);
	mcf_inf_release(inf);
	mcf_inf_loop_destroy(loop);
	json_decref(sim_request("DELETE",
	    "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/"
	    "widgets.widgets.example.com",
	    NULL));
}

static void
test_informer_bad_streams(void **state)
{
	(void) state;
	ns_create("t6");
	cm_create("t6", "small", "1", NULL, NULL);
	mcf_inf_loop  *loop = loop_new();
	mcf_inf_config c    = cfg_for("t6");
	c.max_event_bytes   = 2048;
	c.watch_timeout_s   = 2; /* renewals pick up new fault rules */
	mcf_inf *inf        = acquire(loop, &c);
	assert_int_equal(mcf_inf_wait_synced(inf, 10000LL * scale), 0);

	/* An event over the limit ends every stream that reaches it. */
	char big[4096];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	cm_create("t6", "big", big, NULL, NULL);
	bool ok;
	WAIT_FOR(ok, stats(inf).stream_errors >= 2, 10000);
	assert_true(ok);
	mcf_inf_stats s = stats(inf);
	assert_int_equal(s.last_err, MCF_ETOOBIG);
	assert_null(mcf_inf_get(inf, "t6/big"));
	/* Until its history is compacted: the resume then gets a 410 and a
	 * list, which has no event size limit, gets past it. */
	cm_create("t6", "after", "1", NULL, NULL);
	compact_now();
	assert_converges(inf, "t6", NULL);
	json_t *b = mcf_inf_get(inf, "t6/big");
	assert_non_null(b);
	mcf_inf_obj_release(b);

	/* Malformed streams: cut mid-line, and a body truncated. */
	uint64_t errs = stats(inf).stream_errors;
	add_fault("{\"match\":{\"verb\":\"watch\",\"namespace\":\"t6\"},"
	          "\"action\":{\"watch\":\"close\",\"after_events\":1,"
	          "\"mode\":\"midline\"},\"count\":2}");
	add_fault("{\"match\":{\"verb\":\"watch\",\"namespace\":\"t6\"},"
	          "\"action\":{\"conn\":\"truncate\",\"after_bytes\":100},"
	          "\"count\":2}");
	int64_t dl = now_ms() + 30000LL * scale;
	for (int i = 0; stats(inf).stream_errors < errs + 4 && now_ms() < dl;
	     i++) {
		char v[16];
		snprintf(v, sizeof(v), "%d", i);
		cm_set("t6", i % 2 ? "small" : "after", v);
		sleep_ms(20);
	}
	assert_true(stats(inf).stream_errors >= errs + 4);
	assert_converges(inf, "t6", NULL);
	s = stats(inf);
	assert_true(strlen(s.last_error) > 0);
	print_message("bad streams: stream_errors %llu lists %llu relists "
	              "%llu last '%s'\n",
	    (unsigned long long) s.stream_errors, (unsigned long long) s.lists,
	    (unsigned long long) s.relists_gone, s.last_error);
	mcf_inf_release(inf);
	mcf_inf_loop_destroy(loop);
}

typedef struct acq_arg {
	mcf_inf_loop *loop;
	mcf_inf      *got;
} acq_arg;

static void *
acq_thread(void *p)
{
	acq_arg       *a = p;
	mcf_inf_config c = cfg_for("t7");
	mcf_errinfo    ei;
	if (mcf_inf_acquire(a->loop, &c, &a->got, &ei) != 0)
		a->got = NULL;
	return NULL;
}

static void
test_informer_sharing(void **state)
{
	(void) state;
	ns_create("t7");
	cm_create("t7", "a", "1", NULL, NULL);
	json_decref(sim_request("DELETE", "/_sim/requests", NULL));
	mcf_inf_loop  *loop = loop_new();
	mcf_inf_config c    = cfg_for("t7");
	mcf_inf       *one  = acquire(loop, &c);
	c.page_size         = 7; /* not part of the key */
	c.resync_ms         = 1000;
	mcf_inf *two        = acquire(loop, &c);
	assert_ptr_equal(one, two);
	/* Concurrent acquires of the same key. */
	acq_arg   args[4];
	pthread_t th[4];
	for (int i = 0; i < 4; i++) {
		args[i].loop = loop;
		assert_int_equal(
		    pthread_create(&th[i], NULL, acq_thread, &args[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		assert_ptr_equal(args[i].got, one);
	}
	/* Another cluster name is another informer. */
	c.cluster      = "other";
	mcf_inf *other = acquire(loop, &c);
	assert_ptr_not_equal(other, one);
	assert_int_equal(mcf_inf_wait_synced(one, 10000LL * scale), 0);
	assert_int_equal(mcf_inf_wait_synced(other, 10000LL * scale), 0);
	mcf_inf_release(other);
	bool ok;
	WAIT_FOR(ok, watchers_in("t7") == 1, 10000);
	assert_true(ok);
	size_t lists, watches;
	requests_in("t7", &lists, &watches);
	assert_int_equal(lists, 2); /* one per informer */
	for (int i = 0; i < 4; i++)
		mcf_inf_release(args[i].got);
	mcf_inf_release(two);
	/* One reference left: still running. */
	cm_create("t7", "b", "1", NULL, NULL);
	WAIT_FOR(ok, mcf_inf_count(one) == 2, 10000);
	assert_true(ok);
	assert_int_equal(watchers_in("t7"), 1);
	mcf_inf_release(one);
	WAIT_FOR(ok, watchers_in("t7") == 0, 10000);
	assert_true(ok);
	mcf_inf_loop_destroy(loop);
}

/* Custom index: the "tier" label. */
static size_t
index_tier(const json_t *obj, const char **out, size_t cap, void *arg)
{
	(void) arg;
	const char *t = json_string_value(json_object_get(
	    json_object_get(json_object_get(obj, "metadata"), "labels"),
	    "tier"));
	if (t == NULL)
		return 0;
	if (cap > 0)
		out[0] = t;
	return 1;
}

/* Names (sorted, comma-separated) of the objects of an index value. */
static char *
index_names(mcf_inf *inf, const char *index, const char *value)
{
	json_t **objs;
	size_t   n;
	if (mcf_inf_list(inf, index, value, &objs, &n) != 0)
		return mcf_strdup("<error>");
	const char **names = mcf_calloc(n + 1, sizeof(*names));
	for (size_t i = 0; i < n; i++)
		names[i] = json_string_value(json_object_get(
		    json_object_get(objs[i], "metadata"), "name"));
	for (size_t i = 0; i < n; i++)
		for (size_t j = i + 1; j < n; j++)
			if (strcmp(names[j], names[i]) < 0) {
				const char *t = names[i];
				names[i]      = names[j];
				names[j]      = t;
			}
	char *s = mcf_strdup("");
	for (size_t i = 0; i < n; i++) {
		char *t = mcf_asprintf("%s%s%s", s, i ? "," : "", names[i]);
		free(s);
		s = t;
	}
	free(names);
	mcf_inf_objs_free(objs, n);
	return s;
}

static bool
names_eq(mcf_inf *inf, const char *index, const char *value, const char *want,
    bool verbose)
{
	char *s  = index_names(inf, index, value);
	bool  eq = strcmp(s, want) == 0;
	if (!eq && verbose)
		print_message(
		    "index %s=%s: %s (want %s)\n", index, value, s, want);
	free(s);
	return eq;
}

static bool
names_are(mcf_inf *inf, const char *index, const char *value, const char *want)
{
	return names_eq(inf, index, value, want, true);
}

static void
test_informer_handlers_and_indexes(void **state)
{
	(void) state;
	ns_create("t8a");
	ns_create("t8b");
	cm_create("t8a", "web1", "1", "{\"suite\":\"t8\",\"tier\":\"web\"}",
	    "owner-1");
	cm_create("t8a", "db1", "1", "{\"suite\":\"t8\",\"tier\":\"db\"}",
	    "owner-2");
	cm_create("t8b", "web2", "1", "{\"suite\":\"t8\",\"tier\":\"web\"}",
	    "owner-1");
	cm_create("t8b", "other", "1", "{\"suite\":\"x\"}", NULL);

	mcf_inf_loop  *loop = loop_new();
	mcf_inf_config c    = cfg_for(NULL); /* all namespaces */
	c.label_selector    = "suite=t8";
	mcf_inf *inf        = acquire(loop, &c);
	assert_int_equal(mcf_inf_wait_synced(inf, 10000LL * scale), 0);
	assert_int_equal(mcf_inf_count(inf), 3);

	/* A handler added after sync gets the cache as initial adds. */
	rec r1, r2;
	rec_init(&r1);
	rec_init(&r2);
	uint64_t id1, id2;
	assert_int_equal(mcf_inf_add_handler(inf, rec_handler(&r1), &id1), 0);
	bool ok;
	WAIT_FOR(ok, rec_count(&r1) == 3, 5000);
	assert_true(ok);
	for (size_t i = 0; i < 3; i++)
		assert_true(rec_initial_at(&r1, i));
	assert_true(rec_has(&r1, "add", "t8a/web1", 1));
	assert_true(rec_has(&r1, "add", "t8b/web2", 1));

	/* Built-in and custom indexes. */
	assert_true(
	    names_are(inf, MCF_INF_INDEX_NAMESPACE, "t8a", "db1,web1"));
	assert_true(names_are(inf, MCF_INF_INDEX_NAMESPACE, "t8b", "web2"));
	assert_true(
	    names_are(inf, MCF_INF_INDEX_OWNER_UID, "owner-1", "web1,web2"));
	assert_true(names_are(inf, MCF_INF_INDEX_OWNER_UID, "owner-2", "db1"));
	assert_int_equal(mcf_inf_add_index(inf, "tier", index_tier, NULL), 0);
	assert_int_equal(
	    mcf_inf_add_index(inf, "tier", index_tier, NULL), MCF_EEXIST);
	assert_int_equal(
	    mcf_inf_add_index(inf, MCF_INF_INDEX_NAMESPACE, index_tier, NULL),
	    MCF_EEXIST);
	assert_true(names_are(inf, "tier", "web", "web1,web2"));
	assert_true(names_are(inf, "tier", "db", "db1"));
	assert_true(names_are(inf, "tier", "none", ""));
	json_t **objs;
	size_t   n;
	assert_int_equal(
	    mcf_inf_list(inf, "nope", "x", &objs, &n), MCF_ENOENT);
	assert_null(objs);

	/* Changes move objects between index values. */
	cm_patch(
	    "t8a", "web1", "{\"metadata\":{\"labels\":{\"tier\":\"db\"}}}");
	WAIT_FOR(ok, names_eq(inf, "tier", "db", "db1,web1", false), 10000);
	assert_true(ok);
	assert_true(names_are(inf, "tier", "web", "web2"));
	cm_delete("t8b", "web2");
	WAIT_FOR(ok,
	    names_eq(inf, MCF_INF_INDEX_OWNER_UID, "owner-1", "web1", false),
	    10000);
	assert_true(ok);
	assert_true(names_are(inf, "tier", "web", ""));
	assert_true(names_are(inf, MCF_INF_INDEX_NAMESPACE, "t8b", ""));
	/* Leaving the selector is a delete. */
	cm_patch(
	    "t8a", "db1", "{\"metadata\":{\"labels\":{\"suite\":\"y\"}}}");
	WAIT_FOR(ok,
	    names_eq(inf, MCF_INF_INDEX_OWNER_UID, "owner-2", "", false),
	    10000);
	assert_true(ok);
	WAIT_FOR(ok, rec_has(&r1, "delete", "t8a/db1", -1), 5000);
	assert_true(ok);

	/* A second handler; then the first is removed and sees no more. */
	assert_int_equal(mcf_inf_add_handler(inf, rec_handler(&r2), &id2), 0);
	WAIT_FOR(ok, rec_count(&r2) == 1, 5000);
	assert_true(ok);
	mcf_inf_remove_handler(inf, id1);
	size_t n1 = rec_count(&r1);
	cm_create(
	    "t8a", "late", "1", "{\"suite\":\"t8\",\"tier\":\"web\"}", NULL);
	WAIT_FOR(ok, rec_has(&r2, "add", "t8a/late", 0), 10000);
	assert_true(ok);
	assert_int_equal(rec_count(&r1), n1);
	assert_true(names_are(inf, "tier", "web", "late"));
	mcf_inf_remove_handler(inf, 12345); /* unknown: ignored */
	mcf_inf_remove_handler(inf, id2);

	mcf_inf_release(inf);
	mcf_inf_loop_destroy(loop);
	rec_fini(&r1);
	rec_fini(&r2);
}

static int
count_threads(void)
{
	DIR *d = opendir("/proc/self/task");
	assert_non_null(d);
	int            n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

#define MANY 200

static void
test_informer_many_on_one_loop(void **state)
{
	(void) state;
	char ns[MANY][16];
	for (int i = 0; i < MANY; i++) {
		snprintf(ns[i], sizeof(ns[i]), "m%03d", i);
		ns_create(ns[i]);
		if (i % 4 == 0)
			cm_create(ns[i], "x", "1", NULL, NULL);
	}
	int           before = count_threads();
	mcf_inf_loop *loop   = loop_new();
	mcf_inf      *infs[MANY];
	int64_t       t0 = now_ms();
	for (int i = 0; i < MANY; i++) {
		mcf_inf_config c = cfg_for(ns[i]);
		infs[i]          = acquire(loop, &c);
	}
	for (int i = 0; i < MANY; i++)
		assert_int_equal(
		    mcf_inf_wait_synced(infs[i], 30000LL * scale), 0);
	int64_t synced_ms = now_ms() - t0;
	for (int i = 0; i < MANY; i++)
		assert_int_equal(mcf_inf_count(infs[i]), i % 4 == 0 ? 1 : 0);
	bool ok;
	WAIT_FOR(
	    ok, watchers_in("m000") == 1 && watchers_in("m199") == 1, 10000);
	assert_true(ok);
	int after = count_threads();
	print_message("%d informers synced in %lld ms; threads %d -> %d\n",
	    MANY, (long long) synced_ms, before, after);
	assert_true(after <= before + 1);
	/* Events still reach them. */
	cm_create("m123", "y", "1", NULL, NULL);
	WAIT_FOR(ok, mcf_inf_count(infs[123]) == 1, 10000);
	assert_true(ok);
	for (int i = 0; i < MANY; i++)
		mcf_inf_release(infs[i]);
	mcf_inf_loop_destroy(loop);
	assert_int_equal(count_threads(), before);
}

static void
test_informer_resync(void **state)
{
	(void) state;
	ns_create("t10");
	cm_create("t10", "a", "1", NULL, NULL);
	cm_create("t10", "b", "1", NULL, NULL);
	mcf_inf_loop  *loop = loop_new();
	mcf_inf_config c    = cfg_for("t10");
	c.resync_ms         = 200;
	mcf_inf *inf        = acquire(loop, &c);
	rec      r;
	rec_init(&r);
	uint64_t id;
	assert_int_equal(mcf_inf_add_handler(inf, rec_handler(&r), &id), 0);
	assert_int_equal(mcf_inf_wait_synced(inf, 10000LL * scale), 0);
	bool ok;
	WAIT_FOR(ok, rec_same(&r) >= 6, 10000);
	assert_true(ok);
	assert_int_equal(rec_count(&r), 2); /* only the initial adds */
	mcf_inf_remove_handler(inf, id);
	mcf_inf_release(inf);
	mcf_inf_loop_destroy(loop);
	rec_fini(&r);
}

/* Reader threads, and a thread adding and removing handlers, while
 * kubesim's load generator streams events: for the sanitizers. */
typedef struct conc {
	mcf_inf         *inf;
	atomic_bool      stop;
	_Atomic uint64_t reads;
} conc;

static void
conc_add(void *arg, const json_t *obj, bool initial)
{
	(void) obj;
	(void) initial;
	atomic_fetch_add((_Atomic uint64_t *) arg, 1);
}

static void *
conc_reader(void *p)
{
	conc    *c = p;
	uint64_t n = 0;
	while (!atomic_load(&c->stop)) {
		json_t **objs;
		size_t   k;
		if (mcf_inf_list(c->inf, NULL, NULL, &objs, &k) == 0) {
			for (size_t i = 0; i < k; i++)
				n += json_string_length(json_object_get(
				    json_object_get(objs[i], "metadata"),
				    "name"));
			mcf_inf_objs_free(objs, k);
		}
		if (mcf_inf_list(
		        c->inf, MCF_INF_INDEX_NAMESPACE, "tc", &objs, &k)
		    == 0)
			mcf_inf_objs_free(objs, k);
		json_t *o = mcf_inf_get(c->inf, "tc/load-00000001");
		mcf_inf_obj_release(o);
		mcf_inf_stats st;
		mcf_inf_get_stats(c->inf, &st);
		n += mcf_inf_count(c->inf)
		    + (mcf_inf_has_synced(c->inf) ? 1 : 0);
	}
	atomic_fetch_add(&c->reads, n);
	return NULL;
}

static void *
conc_handlers(void *p)
{
	conc            *c     = p;
	_Atomic uint64_t calls = 0;
	mcf_inf_handler  h = { .on_add = conc_add, .arg = (void *) &calls };
	while (!atomic_load(&c->stop)) {
		uint64_t id;
		if (mcf_inf_add_handler(c->inf, &h, &id) == 0)
			mcf_inf_remove_handler(c->inf, id);
	}
	return NULL;
}

static void
test_informer_concurrent_readers(void **state)
{
	(void) state;
	ns_create("tc");
	mcf_inf_loop  *loop = loop_new();
	mcf_inf_config c    = cfg_for("tc");
	mcf_inf       *inf  = acquire(loop, &c);
	assert_int_equal(mcf_inf_wait_synced(inf, 10000LL * scale), 0);
	assert_int_equal(mcf_inf_add_index(inf, "tier", index_tier, NULL), 0);
	conc cc = { .inf = inf };
	atomic_init(&cc.stop, false);
	atomic_init(&cc.reads, 0);
	pthread_t th[3];
	assert_int_equal(pthread_create(&th[0], NULL, conc_reader, &cc), 0);
	assert_int_equal(pthread_create(&th[1], NULL, conc_reader, &cc), 0);
	assert_int_equal(pthread_create(&th[2], NULL, conc_handlers, &cc), 0);
	static const char *const ops[]
	    = { "create", "update", "update", "delete", "create" };
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		char body[512];
		snprintf(body, sizeof(body),
		    "{\"plane\":\"\",\"group\":\"\",\"version\":\"v1\","
		    "\"resource\":\"configmaps\",\"namespace\":\"tc\","
		    "\"op\":\"%s\",\"count\":1500,\"size\":300,"
		    "\"rate\":0}",
		    ops[i]);
		json_decref(sim_request("POST", "/_sim/load", body));
	}
	assert_converges(inf, "tc", NULL);
	atomic_store(&cc.stop, true);
	for (int i = 0; i < 3; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(mcf_inf_count(inf), 1500);
	mcf_inf_release(inf);
	mcf_inf_loop_destroy(loop);
}

/* Throughput of decode + cache + handler: kubesim's load generator
 * writes, one informer reads.  Printed, not asserted (a shared machine). */
static _Atomic uint64_t tp_count;

static void
tp_add(void *arg, const json_t *obj, bool initial)
{
	(void) arg;
	(void) obj;
	(void) initial;
	tp_count++;
}

static void
tp_update(void *arg, const json_t *o, const json_t *n)
{
	(void) arg;
	(void) o;
	(void) n;
	tp_count++;
}

/* Ingest rate: the informer is kept off the server (its watch renewals
 * fail) while kubesim's load generator performs N writes (`op`); then it
 * resumes from its old resourceVersion and kubesim replays the N events
 * from its history as fast as it can send them.  The figure covers
 * decode + cache + handler (and kubesim's sending, on the same two
 * cores): printed, not asserted. */
static void
measure_ingest(mcf_inf *inf, const char *op, int n)
{
	uint64_t errs0 = stats(inf).request_errors;
	uint64_t base  = tp_count;
	add_fault("{\"match\":{\"verb\":\"watch\",\"namespace\":\"tp\"},"
	          "\"action\":{\"status\":500},\"count\":100000}");
	bool ok;
	WAIT_FOR(ok, stats(inf).request_errors > errs0, 10000);
	assert_true(ok);
	char body[512];
	snprintf(body, sizeof(body),
	    "{\"plane\":\"\",\"group\":\"\",\"version\":\"v1\","
	    "\"resource\":\"configmaps\",\"namespace\":\"tp\","
	    "\"op\":\"%s\",\"count\":%d,\"size\":1024,\"rate\":0}",
	    op, n);
	json_decref(sim_request("POST", "/_sim/load", body));
	assert_int_equal(tp_count, base);
	clear_faults(NULL);
	/* This process's CPU time is, but for the test thread's polling,
	 * the loop thread's: events per CPU second is the informer's own
	 * rate on one core. */
	struct rusage ru0, ru1;
	getrusage(RUSAGE_SELF, &ru0);
	int64_t t0 = now_ms();
	WAIT_FOR(ok, tp_count >= base + (uint64_t) n, 120000);
	int64_t t1 = now_ms();
	getrusage(RUSAGE_SELF, &ru1);
	assert_true(ok);
	double cpu = (double) (ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec)
	    + (double) (ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec)
	    + (double) (ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec) / 1e6
	    + (double) (ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec) / 1e6;
	print_message("throughput (%s): %d replayed events of ~1 KiB in "
	              "%lld ms: %.0f events/s wall, %.2f s CPU here: %.0f "
	              "events per CPU second\n",
	    op, n, (long long) (t1 - t0),
	    n * 1000.0 / (double) (t1 - t0 > 0 ? t1 - t0 : 1), cpu,
	    cpu > 0 ? n / cpu : 0.0);
}

static void
test_informer_throughput(void **state)
{
	(void) state;
	ns_create("tp");
	mcf_inf_loop  *loop = loop_new();
	mcf_inf_config c    = cfg_for("tp");
	c.watch_timeout_s   = 2;
	mcf_inf *inf        = acquire(loop, &c);
	assert_int_equal(mcf_inf_wait_synced(inf, 10000LL * scale), 0);
	mcf_inf_handler h = { .on_add = tp_add, .on_update = tp_update };
	uint64_t        id;
	assert_int_equal(mcf_inf_add_handler(inf, &h, &id), 0);
	const int n = 50000;
	measure_ingest(inf, "create", n);
	assert_int_equal(mcf_inf_count(inf), (size_t) n);
	measure_ingest(inf, "update", n);
	assert_converges(inf, "tp", NULL);
	/* Events, not lists: the catch-ups never relisted. */
	assert_int_equal(stats(inf).lists, 1);
	mcf_inf_remove_handler(inf, id);
	mcf_inf_release(inf);
	mcf_inf_loop_destroy(loop);
}

/* ---- a canned server: what kubesim never sends ------------------------ */

/* Serves one namespace "raw" of ConfigMaps: a list whose item carries
 * managedFields and no kind/apiVersion, then one watch stream of events
 * whose objects are compact with managedFields, indented, and escaped;
 * later watches are empty. */
#define RAW_PATH "/api/v1/namespaces/raw/configmaps"

static const char raw_list[]
    = "{\"kind\":\"ConfigMapList\",\"apiVersion\":\"v1\",\"metadata\":{"
      "\"resourceVersion\":\"10\"},\"items\":[{\"metadata\":{\"name\":"
      "\"l1\",\"namespace\":\"raw\",\"resourceVersion\":\"5\","
      "\"managedFields\":[{\"manager\":\"kubectl\"}]},\"data\":{\"a\":"
      "\"b\"}}]}";

static const char raw_watch[]
    = "{\"type\":\"ADDED\",\"object\":{\"kind\":\"ConfigMap\",\"apiVersion\":"
      "\"v1\",\"metadata\":{\"name\":\"w1\",\"namespace\":\"raw\","
      "\"resourceVersion\":\"11\",\"managedFields\":[{\"manager\":\"m\"}]},"
      "\"data\":{\"k\":\"v\"}}}\n"
      "{\"type\":\"ADDED\",\"object\": { \"kind\" : \"ConfigMap\", "
      "\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"w2\",\"namespace\":"
      "\"raw\",\"resourceVersion\":\"12\"},\"data\":{\"k\":\"v w\"} } }\r\n"
      "{\"type\":\"ADDED\",\"object\":{\"kind\":\"ConfigMap\",\"apiVersion\":"
      "\"v1\",\"metadata\":{\"name\":\"w3\",\"namespace\":\"raw\","
      "\"resourceVersion\":\"13\"},\"data\":{\"k\":\"caf\\u00e9\\n\\\"q\\\"\","
      "\"n\":\"\xc3\xa9\"}}}\n"
      "{\"type\":\"MODIFIED\",\"object\":{\"kind\":\"ConfigMap\","
      "\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"l1\",\"namespace\":"
      "\"raw\",\"resourceVersion\":\"14\"},\"data\":{\"a\":\"c\"}}}\n";

static atomic_int raw_watches;

/* A 20 KiB value: a text too large for the loop's store (malloc). */
#define RAW_BIG 20000

static int
raw_handler(const mcf_httpserver_req *r, mcf_httpserver_resp *w, void *arg)
{
	(void) arg;
	mcf_httpserver_resp_content_type(w, "application/json");
	if (strstr(r->query, "watch=") == NULL) {
		mcf_httpserver_resp_body(w, raw_list, strlen(raw_list));
	} else if (atomic_fetch_add(&raw_watches, 1) == 0) {
		mcf_httpserver_resp_printf(w, "%s", raw_watch);
		mcf_httpserver_resp_printf(w,
		    "{\"type\":\"ADDED\",\"object\":{\"kind\":\"ConfigMap\","
		    "\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"big\","
		    "\"namespace\":\"raw\",\"resourceVersion\":\"15\"},"
		    "\"data\":{\"k\":\"%0*d\"}}}\n",
		    RAW_BIG, 7);
	}
	return MCF_OK;
}

/* Records the old and new resourceVersions of updates, for handlers with
 * and without want_old. */
typedef struct old_rec {
	pthread_mutex_t mtx;
	char            log[1024];
	int             same; /* resync calls: old == new */
} old_rec;

static void
old_update(void *arg, const json_t *old_obj, const json_t *new_obj)
{
	old_rec *r = arg;
	pthread_mutex_lock(&r->mtx);
	if (old_obj == new_obj) {
		r->same++;
	} else {
		size_t l = strlen(r->log);
		snprintf(r->log + l, sizeof(r->log) - l, "%s>%s;",
		    old_obj ? json_string_value(
		        json_object_get(json_object_get(old_obj, "metadata"),
		            "resourceVersion"))
		            : "null",
		    json_string_value(
		        json_object_get(json_object_get(new_obj, "metadata"),
		            "resourceVersion")));
	}
	pthread_mutex_unlock(&r->mtx);
}

static bool
old_rec_is(old_rec *r, const char *want, int min_same)
{
	pthread_mutex_lock(&r->mtx);
	bool ok = strcmp(r->log, want) == 0 && r->same >= min_same;
	pthread_mutex_unlock(&r->mtx);
	return ok;
}

static void
assert_cached(mcf_inf *inf, const char *key, const char *want_text)
{
	json_t *want = json_loads(want_text, 0, NULL);
	assert_non_null(want);
	json_t *got = mcf_inf_get(inf, key);
	assert_non_null(got);
	if (!json_equal(want, got)) {
		char *s = json_dumps(got, JSON_COMPACT);
		print_message("%s: cached %s\n", key, s);
		free(s);
	}
	assert_true(json_equal(want, got));
	json_decref(got);
	json_decref(want);
}

static void
test_informer_cached_texts(void **state)
{
	(void) state;
	atomic_store(&raw_watches, 0);
	mcf_httpserver *hs = NULL;
	assert_int_equal(mcf_httpserver_create(&hs, NULL, NULL), 0);
	assert_int_equal(
	    mcf_httpserver_route(hs, RAW_PATH, raw_handler, NULL), 0);
	assert_int_equal(mcf_httpserver_start(hs), 0);
	mcf_kubeconfig kc = { 0 };
	kc.server         = (char *) mcf_httpserver_url(hs);
	kc.namespace      = "default";

	mcf_inf_loop  *loop = loop_new();
	mcf_inf_config c    = cfg_for("raw");
	c.kc                = &kc;
	c.resync_ms         = 200;
	mcf_inf *inf        = acquire(loop, &c);
	old_rec  with, without;
	memset(&with, 0, sizeof(with));
	memset(&without, 0, sizeof(without));
	pthread_mutex_init(&with.mtx, NULL);
	pthread_mutex_init(&without.mtx, NULL);
	mcf_inf_handler hw
	    = { .on_update = old_update, .arg = &with, .want_old = true };
	mcf_inf_handler hn = { .on_update = old_update, .arg = &without };
	uint64_t        idw, idn;
	assert_int_equal(mcf_inf_add_handler(inf, &hw, &idw), 0);
	assert_int_equal(mcf_inf_add_handler(inf, &hn, &idn), 0);
	assert_int_equal(mcf_inf_wait_synced(inf, 10000LL * scale), 0);
	bool ok;
	WAIT_FOR(ok, mcf_inf_count(inf) == 5, 10000);
	assert_true(ok);

	/* A list item: managedFields stripped, kind and apiVersion filled
	 * in from the list.  Then its update, with the old state only for
	 * the handler that asked; resyncs give everyone old == new. */
	WAIT_FOR(ok,
	    old_rec_is(&with, "5>14;", 2)
	        && old_rec_is(&without, "null>14;", 2),
	    10000);
	if (!ok)
		print_message("with '%s' (%d), without '%s' (%d)\n", with.log,
		    with.same, without.log, without.same);
	assert_true(ok);
	assert_cached(inf, "raw/l1",
	    "{\"metadata\":{\"name\":\"l1\",\"namespace\":\"raw\","
	    "\"resourceVersion\":\"14\"},\"data\":{\"a\":\"c\"},"
	    "\"kind\":\"ConfigMap\",\"apiVersion\":\"v1\"}");
	/* Compact event text with managedFields: cached without them. */
	assert_cached(inf, "raw/w1",
	    "{\"kind\":\"ConfigMap\",\"apiVersion\":\"v1\",\"metadata\":{"
	    "\"name\":\"w1\",\"namespace\":\"raw\",\"resourceVersion\":"
	    "\"11\"},\"data\":{\"k\":\"v\"}}");
	/* Indented, and escaped, event texts. */
	assert_cached(inf, "raw/w2",
	    "{\"kind\":\"ConfigMap\",\"apiVersion\":\"v1\",\"metadata\":{"
	    "\"name\":\"w2\",\"namespace\":\"raw\",\"resourceVersion\":"
	    "\"12\"},\"data\":{\"k\":\"v w\"}}");
	assert_cached(inf, "raw/w3",
	    "{\"kind\":\"ConfigMap\",\"apiVersion\":\"v1\",\"metadata\":{"
	    "\"name\":\"w3\",\"namespace\":\"raw\",\"resourceVersion\":"
	    "\"13\"},\"data\":{\"k\":\"caf\xc3\xa9\\n\\\"q\\\"\",\"n\":"
	    "\"\\u00e9\"}}");
	/* Readers get trees of their own, decoded each time. */
	json_t *a = mcf_inf_get(inf, "raw/w1");
	json_t *b = mcf_inf_get(inf, "raw/w1");
	assert_ptr_not_equal(a, b);
	assert_true(json_equal(a, b));
	json_decref(a);
	json_decref(b);
	json_t *big = mcf_inf_get(inf, "raw/big");
	assert_non_null(big);
	assert_int_equal(json_string_length(json_object_get(
	                     json_object_get(big, "data"), "k")),
	    RAW_BIG);
	json_decref(big);
	assert_true(
	    names_are(inf, MCF_INF_INDEX_NAMESPACE, "raw", "big,l1,w1,w2,w3"));

	/* The loop's store holds the texts and entries (unless bypassed,
	 * under ASan), and has them all back once the informer is gone. */
	size_t mapped, in_use;
	mcf_inf_loop_mem(loop, &mapped, &in_use);
	assert_true(in_use <= mapped);
	assert_true(mapped == 0 || in_use > 0);

	mcf_inf_remove_handler(inf, idw);
	mcf_inf_remove_handler(inf, idn);
	mcf_inf_release(inf);
	mcf_inf_loop_mem(loop, NULL, &in_use);
	assert_int_equal(in_use, 0);
	mcf_inf_loop_destroy(loop);
	mcf_httpserver_destroy(hs);
	pthread_mutex_destroy(&with.mtx);
	pthread_mutex_destroy(&without.mtx);
}

static int
group_setup(void **state)
{
	(void) state;
	const char *s = getenv("MCF_TEST_TIMEOUT_SCALE");
	if (s != NULL && atoi(s) > 0)
		scale = atoi(s);
	mcf_log_init("informer_test", MCF_LOG_WARN);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	static const char *const extra[] = { "--bookmark-interval", "1s",
		"--history-events", "200000", NULL };
	if (ks_spawn_start(&sim, extra, scale) != 0)
		return -1;
	kcfg.server    = sim.url;
	kcfg.namespace = "default";
	mcf_errinfo ei;
	if (mcf_kc_create(&kcfg, UA, NULL, &adm, &ei) != 0)
		return -1;
	return 0;
}

static int
group_teardown(void **state)
{
	(void) state;
	mcf_kc_destroy(adm);
	int st = ks_spawn_stop(&sim, scale);
	curl_global_cleanup();
	return st == 0 ? 0 : -1;
}

/* A synced informer whose server starts failing (every request answered
 * 503 once its short watch ends) counts the failures in a row, and the
 * count goes back to 0 once a request succeeds: the worker reports such a
 * project failing although its cache has synced. */
static void
test_informer_fails_after_sync(void **state)
{
	(void) state;
	ns_create("tf");
	cm_create("tf", "a", "1", NULL, NULL);
	mcf_inf_loop  *loop = loop_new();
	mcf_inf_config c    = cfg_for("tf");
	c.watch_timeout_s   = 1;
	mcf_inf *inf        = acquire(loop, &c);
	assert_int_equal(mcf_inf_wait_synced(inf, 10000LL * scale), 0);
	assert_int_equal(stats(inf).consecutive_errors, 0);
	add_fault("{\"match\":{\"namespace\":\"tf\"},"
	          "\"action\":{\"status\":503}}");
	bool ok;
	WAIT_FOR(ok, stats(inf).consecutive_errors >= 3, 20000);
	assert_true(ok);
	assert_true(mcf_inf_has_synced(inf));
	assert_int_not_equal(stats(inf).last_err, 0);
	clear_faults(NULL);
	WAIT_FOR(ok, stats(inf).consecutive_errors == 0, 20000);
	assert_true(ok);
	assert_int_equal(stats(inf).last_err, 0);
	mcf_inf_release(inf);
	mcf_inf_loop_destroy(loop);
}

/* A server whose host name does not resolve: every list fails with a
 * reason and is retried with backoff, for as long as it takes.  (libcurl
 * 7.88 refused a receive buffer option on a handle reused after such a
 * failure; the worker aborted on the second attempt.) */
static void
test_informer_unresolvable_host(void **state)
{
	(void) state;
	mcf_kubeconfig kc = { 0 };
	kc.server         = "http://nonexistent-host.invalid:8080";
	kc.namespace      = "default";
	mcf_inf_loop  *loop = loop_new();
	mcf_inf_config c    = cfg_for("default");
	c.kc                = &kc;
	mcf_inf *inf        = acquire(loop, &c);
	bool     ok;
	WAIT_FOR(ok, stats(inf).request_errors >= 4, 20000);
	assert_true(ok);
	mcf_inf_stats st = stats(inf);
	assert_false(mcf_inf_has_synced(inf));
	assert_non_null(strstr(st.last_error, "resolve"));
	mcf_inf_release(inf);
	mcf_inf_loop_destroy(loop);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(
		    test_informer_list_watch_basic, clear_faults),
		cmocka_unit_test_teardown(
		    test_informer_pagination, clear_faults),
		cmocka_unit_test_teardown(
		    test_informer_watch_drops, clear_faults),
		cmocka_unit_test_teardown(
		    test_informer_gone_relist, clear_faults),
		cmocka_unit_test_teardown(
		    test_informer_throttled_and_slow, clear_faults),
		cmocka_unit_test_teardown(
		    test_informer_waits_for_crd, clear_faults),
		cmocka_unit_test_teardown(
		    test_informer_bad_streams, clear_faults),
		cmocka_unit_test_teardown(test_informer_sharing, clear_faults),
		cmocka_unit_test_teardown(
		    test_informer_handlers_and_indexes, clear_faults),
		cmocka_unit_test_teardown(
		    test_informer_many_on_one_loop, clear_faults),
		cmocka_unit_test_teardown(test_informer_resync, clear_faults),
		cmocka_unit_test_teardown(
		    test_informer_concurrent_readers, clear_faults),
		cmocka_unit_test_teardown(
		    test_informer_cached_texts, clear_faults),
		cmocka_unit_test_teardown(
		    test_informer_throughput, clear_faults),
		cmocka_unit_test_teardown(
		    test_informer_fails_after_sync, clear_faults),
		cmocka_unit_test(test_informer_unresolvable_host),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

/*
 * controller_test.c — the controller runtime (worker/controller.h) against
 * a real kubesim: For / Owns / Watches enqueueing, max concurrency and one
 * key at a time, reconcile results, pause and disengage waiting for running
 * reconciles, several clusters, a resource that appears later (CRD), and
 * the controller-runtime metric names.
 *
 * The test controllers' reconcile functions record every call in `calls`
 * (a mutex-guarded log); each test waits for the log with deadlines.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "controller.h"
#include "kclient.h"
#include "ks_spawn.h"
#include "metrics.h"

#define UA "controller_test/0.1.0 (test; 1)"

static int      scale = 1;
static ks_spawn sim;

/* ---- the call log ---- */

#define MAX_CALLS 4096

typedef struct call {
	char    cluster[64];
	char    key[256];
	int64_t at_ms;
} call;

static pthread_mutex_t log_mtx = PTHREAD_MUTEX_INITIALIZER;
static call            calls[MAX_CALLS];
static int             n_calls;
static atomic_int      running;     /* reconciles in flight */
static atomic_int      max_running; /* the most seen at once */
static atomic_int      same_key_overlap;
static char            in_flight[16][256];

/* What the reconcile of key "NS/NAME" does, chosen by the NAME prefix:
 *   slow-*   sleeps 150 ms
 *   after-*  returns REQUEUE_AFTER 100 ms (the first 3 times)
 *   fail-*   returns ERROR (the first 2 times)
 *   else     DONE */
static int
count_calls(const char *cluster, const char *key)
{
	int n = 0;
	pthread_mutex_lock(&log_mtx);
	for (int i = 0; i < n_calls; i++)
		if (strcmp(calls[i].key, key) == 0 &&
		    (cluster == NULL || strcmp(calls[i].cluster, cluster) == 0))
			n++;
	pthread_mutex_unlock(&log_mtx);
	return n;
}

static void
reset_log(void)
{
	pthread_mutex_lock(&log_mtx);
	n_calls = 0;
	atomic_store(&max_running, 0);
	atomic_store(&same_key_overlap, 0);
	pthread_mutex_unlock(&log_mtx);
}

static mcf_ctrl_result
rec(mcf_ctrl_ctx *ctx, const char *ns, const char *name, int64_t *after)
{
	char key[256];
	snprintf(key, sizeof(key), "%s%s%s", ns ? ns : "", ns ? "/" : "",
	    name);
	int r = atomic_fetch_add(&running, 1) + 1;
	int m = atomic_load(&max_running);
	while (r > m && !atomic_compare_exchange_weak(&max_running, &m, r))
		;
	int slot = -1;
	pthread_mutex_lock(&log_mtx);
	for (int i = 0; i < 16; i++)
		if (strcmp(in_flight[i], key) == 0)
			atomic_fetch_add(&same_key_overlap, 1);
	for (int i = 0; i < 16 && slot < 0; i++)
		if (in_flight[i][0] == '\0') {
			slot = i;
			snprintf(in_flight[i], sizeof(in_flight[i]), "%s", key);
		}
	int prior = 0;
	for (int i = 0; i < n_calls; i++)
		if (strcmp(calls[i].key, key) == 0)
			prior++;
	if (n_calls < MAX_CALLS) {
		call *c = &calls[n_calls++];
		snprintf(c->cluster, sizeof(c->cluster), "%s",
		    mcf_ctrl_ctx_cluster(ctx));
		snprintf(c->key, sizeof(c->key), "%s", key);
		c->at_ms = ks_spawn_now_ms();
	}
	pthread_mutex_unlock(&log_mtx);

	mcf_ctrl_result res = MCF_CTRL_DONE;
	if (strncmp(name, "slow-", 5) == 0) {
		usleep(150 * 1000);
	} else if (strncmp(name, "after-", 6) == 0 && prior < 3) {
		*after = 100;
		res = MCF_CTRL_REQUEUE_AFTER;
	} else if (strncmp(name, "fail-", 5) == 0 && prior < 2) {
		res = MCF_CTRL_ERROR;
	}
	/* The cache holds the object being reconciled (unless deleted). */
	if (strncmp(name, "gone-", 5) != 0 && ns != NULL &&
	    strcmp(mcf_ctrl_ctx_controller(ctx), "cms") == 0) {
		static const mcf_ctrl_gvr cm = {
		    "", "v1", "configmaps", "ConfigMap", true};
		json_t *o = mcf_ctrl_ctx_get(ctx, &cm, key);
		if (o == NULL)
			res = MCF_CTRL_ERROR;
		json_decref(o);
	}

	pthread_mutex_lock(&log_mtx);
	if (slot >= 0)
		in_flight[slot][0] = '\0';
	pthread_mutex_unlock(&log_mtx);
	atomic_fetch_sub(&running, 1);
	return res;
}

/* Leases named "map-X" map to the ConfigMap key "default/X". */
static void
map_lease(const json_t *obj, void (*emit)(void *, const char *), void *ectx,
    void *arg)
{
	(void) arg;
	const char *n = json_string_value(
	    json_object_get(json_object_get(obj, "metadata"), "name"));
	if (n != NULL && strncmp(n, "map-", 4) == 0) {
		char key[256];
		snprintf(key, sizeof(key), "default/%s", n + 4);
		emit(ectx, key);
	}
}

static const mcf_ctrl_gvr secrets_gvr[] = {
    {"", "v1", "secrets", "Secret", true},
};
static const mcf_ctrl_watch lease_watch[] = {
    {{"coordination.k8s.io", "v1", "leases", "Lease", true}, map_lease,
        NULL},
};

static const mcf_ctrl_def cms_ctrl = {
    .name = "cms",
    .for_gvr = {"", "v1", "configmaps", "ConfigMap", true},
    .owns = secrets_gvr,
    .n_owns = 1,
    .watches = lease_watch,
    .n_watches = 1,
    .max_concurrency = 3,
    .reconcile = rec,
};

/* A controller For a resource no cluster serves until its CRD appears. */
static const mcf_ctrl_def widgets_ctrl = {
    .name = "widgets",
    .for_gvr = {"test.mcfleet.io", "v1", "widgets", "Widget", true},
    .max_concurrency = 1,
    .reconcile = rec,
};

static const mcf_ctrl_def *const defs[] = {&cms_ctrl, &widgets_ctrl};

/* ---- helpers ---- */

static mcf_kubeconfig kcfg;

static mcf_kc *
client(void)
{
	mcf_kc     *c = NULL;
	mcf_errinfo ei;
	assert_int_equal(mcf_kc_create(&kcfg, UA, NULL, &c, &ei), 0);
	return c;
}

static void
post(const char *group, const char *version, const char *resource,
    const char *ns, const char *json)
{
	mcf_kc    *c = client();
	mcf_kc_ref ref = {group, version, resource, ns, NULL};
	json_t    *body = json_loads(json, 0, NULL);
	assert_non_null(body);
	mcf_kc_status st;
	int           rc = mcf_kc_create_object(c, &ref, body, NULL, &st);
	if (rc != 0)
		print_message("create %s: %d %s\n", json, st.http_code,
		    st.message);
	assert_int_equal(rc, 0);
	json_decref(body);
	mcf_kc_destroy(c);
}

static void
create_cm(const char *name, const char *extra)
{
	char buf[1024];
	snprintf(buf, sizeof(buf),
	    "{\"metadata\":{\"name\":\"%s\"},\"data\":{\"k\":\"v\"}%s}", name,
	    extra ? extra : "");
	post("", "v1", "configmaps", "default", buf);
}

static json_t *
get_obj(const char *resource, const char *name)
{
	mcf_kc    *c = client();
	mcf_kc_ref ref = {"", "v1", resource, "default", name};
	json_t    *out = NULL;
	mcf_kc_get(c, &ref, &out, NULL);
	mcf_kc_destroy(c);
	return out;
}

/* Waits up to `ms` (scaled) until `key` was reconciled at least `n`
 * times in `cluster` (NULL: any). */
static bool
wait_calls(const char *cluster, const char *key, int n, int64_t ms)
{
	int64_t end = ks_spawn_now_ms() + ms * scale;
	while (ks_spawn_now_ms() < end) {
		if (count_calls(cluster, key) >= n)
			return true;
		usleep(10 * 1000);
	}
	print_message("%s: %d calls, wanted %d\n", key,
	    count_calls(cluster, key), n);
	return false;
}

static mcf_ctrl_mgr *
new_mgr(void)
{
	mcf_ctrl_mgr_config cfg = {
	    .defs = defs,
	    .n_defs = 2,
	    .user_agent = UA,
	    .identity = "controller-test",
	};
	mcf_ctrl_mgr *m = NULL;
	mcf_errinfo   ei = {0};
	int           rc = mcf_ctrl_mgr_create(&cfg, &m, &ei);
	if (rc != 0)
		print_message("mgr: %s\n", ei.msg);
	assert_int_equal(rc, 0);
	return m;
}

/* Controller `ctrl` of cluster `cluster` in mcf_ctrl_mgr_cluster_json. */
static json_t *
cluster_ctrl(mcf_ctrl_mgr *m, const char *cluster, const char *ctrl)
{
	json_t *a = mcf_ctrl_mgr_cluster_json(m, cluster);
	if (a == NULL)
		return NULL;
	json_t *hit = NULL;
	size_t  i;
	json_t *v;
	json_array_foreach(a, i, v)
	{
		if (strcmp(json_string_value(json_object_get(v, "name")), ctrl) ==
		    0)
			hit = json_incref(v);
	}
	json_decref(a);
	return hit;
}

static void
engage(mcf_ctrl_mgr *m, const char *cluster)
{
	mcf_errinfo ei = {0};
	int         rc = mcf_ctrl_mgr_engage(m, cluster, &kcfg, &ei);
	if (rc != 0)
		print_message("engage: %s\n", ei.msg);
	assert_int_equal(rc, 0);
}

static bool
wait_synced(mcf_ctrl_mgr *m, const char *cluster)
{
	int64_t end = ks_spawn_now_ms() + 10000 * scale;
	while (ks_spawn_now_ms() < end) {
		mcf_ctrl_cluster_status st;
		if (mcf_ctrl_mgr_cluster_status(m, cluster, &st) == 0 &&
		    st.state == MCF_CTRL_CLUSTER_SYNCED)
			return true;
		usleep(10 * 1000);
	}
	return false;
}

static int
setup(void **state)
{
	(void) state;
	reset_log();
	return 0;
}

/* ---- tests ---- */

static void
test_controller_config_errors(void **state)
{
	(void) state;
	mcf_ctrl_mgr       *m = NULL;
	mcf_errinfo         ei = {0};
	mcf_ctrl_def        bad = cms_ctrl;
	bad.reconcile = NULL;
	const mcf_ctrl_def *b[] = {&bad};
	mcf_ctrl_mgr_config cfg = {.defs = b, .n_defs = 1, .user_agent = UA};
	assert_int_equal(mcf_ctrl_mgr_create(&cfg, &m, &ei), MCF_EINVAL);
	assert_null(m);
	const mcf_ctrl_def *dup[] = {&cms_ctrl, &cms_ctrl};
	cfg.defs = dup;
	cfg.n_defs = 2;
	assert_int_equal(mcf_ctrl_mgr_create(&cfg, &m, &ei), MCF_EINVAL);
	assert_non_null(strstr(ei.msg, "cms"));
	cfg.n_defs = 0;
	assert_int_equal(mcf_ctrl_mgr_create(&cfg, &m, &ei), MCF_EINVAL);
}

/* For, Owns and Watches each enqueue the right key; a paused manager
 * reconciles nothing and resumes with the queued keys. */
static void
test_controller_for_owns_watches(void **state)
{
	(void) state;
	mcf_ctrl_mgr *m = new_mgr();
	engage(m, "c1");
	assert_true(wait_synced(m, "c1"));
	create_cm("plain", NULL);
	usleep(300 * 1000);
	assert_int_equal(count_calls(NULL, "default/plain"), 0); /* paused */
	mcf_ctrl_mgr_resume(m);
	assert_true(wait_calls("c1", "default/plain", 1, 5000));

	/* Owns: a Secret controlled by the ConfigMap enqueues it. */
	json_t *cm = get_obj("configmaps", "plain");
	assert_non_null(cm);
	const char *uid = json_string_value(
	    json_object_get(json_object_get(cm, "metadata"), "uid"));
	int  before = count_calls("c1", "default/plain");
	char buf[1024];
	snprintf(buf, sizeof(buf),
	    "{\"metadata\":{\"name\":\"owned\",\"ownerReferences\":[{"
	    "\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"name\":\"plain\","
	    "\"uid\":\"%s\",\"controller\":true}]}}",
	    uid);
	post("", "v1", "secrets", "default", buf);
	assert_true(wait_calls("c1", "default/plain", before + 1, 5000));
	json_decref(cm);
	/* A Secret owned by another kind enqueues nothing. */
	post("", "v1", "secrets", "default",
	    "{\"metadata\":{\"name\":\"other\",\"ownerReferences\":[{"
	    "\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"name\":"
	    "\"nope\",\"uid\":\"u1\",\"controller\":true}]}}");
	usleep(300 * 1000);
	assert_int_equal(count_calls(NULL, "default/nope"), 0);

	/* Watches: Lease map-plain maps to default/plain. */
	before = count_calls("c1", "default/plain");
	post("coordination.k8s.io", "v1", "leases", "default",
	    "{\"metadata\":{\"name\":\"map-plain\"},\"spec\":{}}");
	assert_true(wait_calls("c1", "default/plain", before + 1, 5000));

	/* Pause waits for nothing running, then nothing runs. */
	mcf_ctrl_mgr_pause(m);
	assert_int_equal(atomic_load(&running), 0);
	before = count_calls(NULL, "default/paused");
	create_cm("paused", NULL);
	usleep(300 * 1000);
	assert_int_equal(count_calls(NULL, "default/paused"), 0);
	mcf_ctrl_stats st;
	mcf_ctrl_mgr_stats(m, &st);
	assert_true(st.queue_depth >= 1);
	/* The per-cluster view counts c1's keys queued for cms. */
	json_t *cc = cluster_ctrl(m, "c1", "cms");
	assert_non_null(cc);
	assert_true(json_integer_value(json_object_get(cc, "queue_depth")) >= 1);
	assert_string_equal(
	    json_string_value(json_object_get(cc, "sync")), "synced");
	assert_int_equal(json_integer_value(json_object_get(cc, "active")), 0);
	json_decref(cc);
	mcf_ctrl_mgr_resume(m);
	assert_true(wait_calls("c1", "default/paused", 1, 5000));
	mcf_ctrl_mgr_destroy(m);
}

/* max_concurrency bounds the parallel reconciles, a key never runs
 * twice at once, and REQUEUE_AFTER / ERROR come back. */
static void
test_controller_concurrency_and_results(void **state)
{
	(void) state;
	mcf_ctrl_mgr *m = new_mgr();
	engage(m, "c1");
	assert_true(wait_synced(m, "c1"));
	mcf_ctrl_mgr_resume(m);
	for (int i = 0; i < 9; i++) {
		char n[32];
		snprintf(n, sizeof(n), "slow-%d", i);
		create_cm(n, NULL);
	}
	for (int i = 0; i < 9; i++) {
		char k[64];
		snprintf(k, sizeof(k), "default/slow-%d", i);
		assert_true(wait_calls("c1", k, 1, 10000));
	}
	assert_int_equal(atomic_load(&max_running), 3);
	assert_int_equal(atomic_load(&same_key_overlap), 0);

	int64_t t0 = ks_spawn_now_ms();
	create_cm("after-x", NULL);
	assert_true(wait_calls("c1", "default/after-x", 4, 10000));
	pthread_mutex_lock(&log_mtx);
	int64_t first = -1, last = -1;
	for (int i = 0; i < n_calls; i++)
		if (strcmp(calls[i].key, "default/after-x") == 0) {
			if (first < 0)
				first = calls[i].at_ms;
			last = calls[i].at_ms;
		}
	pthread_mutex_unlock(&log_mtx);
	/* Three requeues of at least 100 ms each. */
	assert_true(last - first >= 300);
	(void) t0;
	usleep(300 * 1000);
	assert_int_equal(count_calls("c1", "default/after-x"), 4);

	create_cm("fail-y", NULL);
	assert_true(wait_calls("c1", "default/fail-y", 3, 10000));
	usleep(200 * 1000);
	assert_int_equal(count_calls("c1", "default/fail-y"), 3);
	mcf_ctrl_stats st;
	mcf_ctrl_mgr_stats(m, &st);
	assert_true(st.reconcile_errors >= 2);
	json_t *cc = cluster_ctrl(m, "c1", "cms");
	assert_non_null(cc);
	assert_true(json_integer_value(json_object_get(cc, "errors")) >= 2);
	assert_true(json_integer_value(json_object_get(cc, "reconciles")) >=
	    9 + 4 + 3);
	json_decref(cc);

	/* The metric names controller-runtime dashboards use. */
	char  *text;
	size_t len;
	mcf_metrics_render(mcf_metrics_default(), &text, &len);
	assert_non_null(strstr(text,
	    "controller_runtime_reconcile_total{controller=\"cms\","
	    "result=\"success\"}"));
	assert_non_null(strstr(text,
	    "controller_runtime_reconcile_total{controller=\"cms\","
	    "result=\"requeue_after\"}"));
	assert_non_null(strstr(text,
	    "controller_runtime_reconcile_errors_total{controller=\"cms\"}"));
	assert_non_null(strstr(text,
	    "controller_runtime_reconcile_time_seconds_bucket{controller="
	    "\"cms\",le=\"0.005\"}"));
	assert_non_null(strstr(text, "workqueue_depth{name=\"cms\"}"));
	/* client-go's REST metric, from the informers' lists and watches. */
	assert_non_null(strstr(text,
	    "rest_client_requests_total{code=\"200\",method=\"GET\","
	    "host=\"127.0.0.1:"));
	assert_non_null(strstr(text, "workqueue_adds_total{name=\"cms\"}"));
	assert_non_null(
	    strstr(text, "workqueue_queue_duration_seconds_bucket{name=\"cms\""));
	assert_non_null(strstr(text,
	    "controller_runtime_max_concurrent_reconciles{controller=\"cms\"}"
	    " 3"));
	free(text);
	mcf_ctrl_mgr_destroy(m);
}

/* Two clusters: keys carry their cluster; disengage waits for the running
 * reconcile and the cluster's keys stop. */
static void
test_controller_clusters_and_disengage(void **state)
{
	(void) state;
	mcf_ctrl_mgr *m = new_mgr();
	engage(m, "a");
	engage(m, "b");
	mcf_errinfo ei = {0};
	assert_int_equal(mcf_ctrl_mgr_engage(m, "a", &kcfg, &ei), MCF_EEXIST);
	assert_int_equal(mcf_ctrl_mgr_engage(m, "x/y", &kcfg, &ei), MCF_EINVAL);
	assert_true(wait_synced(m, "a"));
	assert_true(wait_synced(m, "b"));
	mcf_ctrl_mgr_resume(m);
	create_cm("both", NULL);
	assert_true(wait_calls("a", "default/both", 1, 5000));
	assert_true(wait_calls("b", "default/both", 1, 5000));

	char **names = mcf_ctrl_mgr_clusters(m);
	assert_string_equal(names[0], "a");
	assert_string_equal(names[1], "b");
	assert_null(names[2]);
	for (int i = 0; names[i]; i++)
		free(names[i]);
	free(names);

	create_cm("slow-dis", NULL);
	assert_true(wait_calls("b", "default/slow-dis", 1, 5000));
	/* b's slow reconcile may still run: disengage waits for it. */
	/* Reconciles are counted per cluster. */
	json_t *ca = cluster_ctrl(m, "a", "cms");
	json_t *cb = cluster_ctrl(m, "b", "cms");
	assert_true(json_integer_value(json_object_get(ca, "reconciles")) >= 1);
	assert_true(json_integer_value(json_object_get(cb, "reconciles")) >= 2);
	json_decref(ca);
	json_decref(cb);
	assert_int_equal(mcf_ctrl_mgr_disengage(m, "b"), 0);
	mcf_ctrl_cluster_status cs;
	assert_int_equal(mcf_ctrl_mgr_cluster_status(m, "b", &cs), MCF_ENOENT);
	assert_null(mcf_ctrl_mgr_cluster_json(m, "b"));
	assert_int_equal(mcf_ctrl_mgr_disengage(m, "b"), MCF_ENOENT);
	int nb = count_calls("b", "default/later");
	create_cm("later", NULL);
	assert_true(wait_calls("a", "default/later", 1, 5000));
	usleep(200 * 1000);
	assert_int_equal(count_calls("b", "default/later"), nb);
	mcf_ctrl_mgr_destroy(m);
}

/* A resource the cluster does not serve counts as synced ("waiting");
 * once its CRD exists the controller starts. */
static void
test_controller_crd_appears(void **state)
{
	(void) state;
	mcf_ctrl_mgr *m = new_mgr();
	engage(m, "c");
	assert_true(wait_synced(m, "c"));
	mcf_ctrl_cluster_status cs;
	assert_int_equal(mcf_ctrl_mgr_cluster_status(m, "c", &cs), 0);
	assert_non_null(strstr(cs.reason, "waiting for widgets"));
	json_t *cw = cluster_ctrl(m, "c", "widgets");
	assert_string_equal(
	    json_string_value(json_object_get(cw, "sync")), "waiting");
	json_decref(cw);
	mcf_ctrl_mgr_resume(m);
	post("apiextensions.k8s.io", "v1", "customresourcedefinitions", NULL,
	    "{\"metadata\":{\"name\":\"widgets.test.mcfleet.io\"},\"spec\":{"
	    "\"group\":\"test.mcfleet.io\",\"scope\":\"Namespaced\","
	    "\"names\":{\"plural\":\"widgets\",\"singular\":\"widget\","
	    "\"kind\":\"Widget\"},\"versions\":[{\"name\":\"v1\",\"served\":"
	    "true,\"storage\":true,\"schema\":{\"openAPIV3Schema\":{\"type\":"
	    "\"object\",\"x-kubernetes-preserve-unknown-fields\":true}}}]}}");
	post("test.mcfleet.io", "v1", "widgets", "default",
	    "{\"apiVersion\":\"test.mcfleet.io/v1\",\"kind\":\"Widget\","
	    "\"metadata\":{\"name\":\"w1\"}}");
	/* The informer retries its list with backoff (up to 30 s). */
	assert_true(wait_calls("c", "default/w1", 1, 45000));
	assert_int_equal(mcf_ctrl_mgr_cluster_status(m, "c", &cs), 0);
	assert_int_equal(cs.state, MCF_CTRL_CLUSTER_SYNCED);
	cw = cluster_ctrl(m, "c", "widgets");
	assert_string_equal(
	    json_string_value(json_object_get(cw, "sync")), "synced");
	assert_true(json_integer_value(json_object_get(cw, "reconciles")) >= 1);
	json_decref(cw);
	mcf_ctrl_mgr_destroy(m);
}

static int
group_setup(void **state)
{
	(void) state;
	const char *s = getenv("MCF_TEST_TIMEOUT_SCALE");
	if (s != NULL && atoi(s) > 0)
		scale = atoi(s);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (ks_spawn_start(&sim, NULL, scale) != 0)
		return -1;
	kcfg.server = sim.url;
	kcfg.namespace = "default";
	return 0;
}

static int
group_teardown(void **state)
{
	(void) state;
	ks_spawn_stop(&sim, scale);
	curl_global_cleanup();
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_controller_config_errors),
	    cmocka_unit_test_setup(test_controller_for_owns_watches, setup),
	    cmocka_unit_test_setup(
	        test_controller_concurrency_and_results, setup),
	    cmocka_unit_test_setup(
	        test_controller_clusters_and_disengage, setup),
	    cmocka_unit_test_setup(test_controller_crd_appears, setup),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

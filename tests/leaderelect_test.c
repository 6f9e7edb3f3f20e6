/*
 * leaderelect_test.c — the Lease leader elector (common/leaderelect.h)
 * against kubesim (KUBE_API.md §8, C5–C7).
 *
 * The group setup starts the kubesim binary named by $KUBESIM (posix_spawn,
 * --listen 127.0.0.1:0) and reads its "listening on URL" line; it is
 * stopped with SIGTERM by its PID.  Each test uses its own Lease in
 * "default" and short timings (lease 2 s, renew deadline 1.5 s, retry
 * 0.4 s), all multiplied by $MCF_TEST_TIMEOUT_SCALE under sanitizers.
 * Faults are injected with POST /_sim/faults and cleared after each test.
 * The Lease is judged by reading it back with mcf_kc_get.
 */
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>

#include "alloc.h"
#include "kclient.h"
#include "ks_spawn.h"
#include "kubeconfig.h"
#include "leaderelect.h"

extern char **environ;

#define UA "leaderelect_test/0.1.0 (test; 1)"

static int scale = 1;

/* The kubesim child comes from the shared test helper. */
typedef ks_spawn kubesim;
#define now_ms() ks_spawn_now_ms()
#define kubesim_start(ks, extra) ks_spawn_start((ks), (extra), scale)
#define kubesim_stop(ks) ks_spawn_stop((ks), scale)


static kubesim sim; /* the shared kubesim of the group */

/* A client of the shared kubesim (for the test thread only). */
static mcf_kc *
client_for(const char *url)
{
	mcf_kubeconfig kc = { 0 };
	kc.server         = (char *) url;
	kc.namespace      = "default";
	mcf_kc     *c     = NULL;
	mcf_errinfo ei;
	int         rc = mcf_kc_create(&kc, UA, NULL, &c, &ei);
	if (rc != 0)
		print_message("mcf_kc_create: %s\n", ei.msg);
	assert_int_equal(rc, 0);
	return c;
}

static void
add_fault(const char *rule)
{
	mcf_kc *c = client_for(sim.url);
	json_t *r = json_loads(rule, 0, NULL);
	assert_non_null(r);
	json_t       *out = NULL;
	mcf_kc_status st;
	int rc = mcf_kc_request(c, "POST", "/_sim/faults", r, &out, &st);
	if (rc != 0)
		print_message("fault: %d %s\n", st.http_code, st.message);
	assert_int_equal(rc, 0);
	json_decref(out);
	json_decref(r);
	mcf_kc_destroy(c);
}

static int
clear_faults(void **state)
{
	(void) state;
	mcf_kc *c = client_for(sim.url);
	int rc = mcf_kc_request(c, "DELETE", "/_sim/faults", NULL, NULL, NULL);
	mcf_kc_destroy(c);
	return rc;
}

/* Reads Lease `name` in "default"; new json_t. */
static json_t *
get_lease(const char *name)
{
	mcf_kc          *c = client_for(sim.url);
	const mcf_kc_ref ref
	    = { "coordination.k8s.io", "v1", "leases", "default", name };
	json_t       *out = NULL;
	mcf_kc_status st;
	int           rc = mcf_kc_get(c, &ref, &out, &st);
	if (rc != 0)
		print_message("get lease: %d %s\n", st.http_code, st.message);
	assert_int_equal(rc, 0);
	mcf_kc_destroy(c);
	return out;
}

static const char *
lease_holder(json_t *l)
{
	const char *s = json_string_value(
	    json_object_get(json_object_get(l, "spec"), "holderIdentity"));
	return s != NULL ? s : "";
}

static int
lease_int(json_t *l, const char *key)
{
	return (int) json_integer_value(
	    json_object_get(json_object_get(l, "spec"), key));
}

/* ---- a candidate: an elector plus what its callbacks saw ---------------- */

typedef struct cand {
	char            id[32];
	mcf_le         *le;
	atomic_int      started;
	atomic_int      stopped;
	atomic_int      new_leader;
	atomic_int      bad_leader; /* on_new_leader with NULL or "" */
	pthread_mutex_t mtx;
	mcf_le_fence    term; /* from the last on_started_leading */
	int64_t         stopped_ms;
} cand;

static void
cb_started(void *arg, const mcf_le_fence *term)
{
	cand *c = arg;
	pthread_mutex_lock(&c->mtx);
	c->term = *term;
	pthread_mutex_unlock(&c->mtx);
	atomic_fetch_add(&c->started, 1);
}

static void
cb_stopped(void *arg)
{
	cand *c = arg;
	pthread_mutex_lock(&c->mtx);
	c->stopped_ms = now_ms();
	pthread_mutex_unlock(&c->mtx);
	atomic_fetch_add(&c->stopped, 1);
}

static void
cb_new_leader(void *arg, const char *identity)
{
	cand *c = arg;
	/* No cmocka assertion off the test thread: count, check later. */
	if (identity == NULL || identity[0] == '\0')
		atomic_fetch_add(&c->bad_leader, 1);
	atomic_fetch_add(&c->new_leader, 1);
}

static int64_t lease_ms, renew_ms, retry_ms;

static mcf_le_config
config_for(const char *lease, cand *c)
{
	mcf_le_config cfg      = { 0 };
	cfg.namespace          = "default";
	cfg.name               = lease;
	cfg.identity           = c != NULL ? c->id : "x";
	cfg.lease_duration_ms  = lease_ms;
	cfg.renew_deadline_ms  = renew_ms;
	cfg.retry_period_ms    = retry_ms;
	cfg.on_started_leading = cb_started;
	cfg.on_stopped_leading = cb_stopped;
	cfg.on_new_leader      = cb_new_leader;
	cfg.arg                = c;
	static const char *const ann[] = { "mcfleet.io/address",
		"tcp://127.0.0.1:1", NULL };
	cfg.annotations = ann;
	return cfg;
}

static cand *
cand_new(const char *id, const char *lease)
{
	cand *c = mcf_calloc(1, sizeof(*c));
	snprintf(c->id, sizeof(c->id), "%s", id);
	pthread_mutex_init(&c->mtx, NULL);
	mcf_le_config cfg = config_for(lease, c);
	mcf_errinfo   ei;
	int           rc = mcf_le_create(&cfg, &c->le, &ei);
	if (rc != 0)
		print_message("mcf_le_create: %s\n", ei.msg);
	assert_int_equal(rc, 0);
	return c;
}

static void
cand_start(cand *c)
{
	mcf_kubeconfig kc = { 0 };
	kc.server         = sim.url;
	kc.namespace      = "default";
	mcf_errinfo ei;
	int         rc = mcf_le_start(c->le, &kc, UA, &ei);
	if (rc != 0)
		print_message("mcf_le_start: %s\n", ei.msg);
	assert_int_equal(rc, 0);
}

static void
cand_free(cand *c)
{
	if (c == NULL)
		return;
	mcf_le_destroy(c->le);
	pthread_mutex_destroy(&c->mtx);
	free(c);
}

static mcf_le_fence
cand_term(cand *c)
{
	pthread_mutex_lock(&c->mtx);
	mcf_le_fence t = c->term;
	pthread_mutex_unlock(&c->mtx);
	return t;
}

static void
sleep_ms(int64_t ms)
{
	struct timespec ts
	    = { (time_t) (ms / 1000), (long) (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/* Polls every 10 ms until one of a/b (b may be NULL) leads, or the
 * timeout; returns the leader or NULL.  Fails if both lead at once. */
static cand *
wait_leader(cand *a, cand *b, int64_t timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;
	while (now_ms() < deadline) {
		bool la = mcf_le_is_leader(a->le);
		bool lb = b != NULL && mcf_le_is_leader(b->le);
		assert_false(la && lb);
		if (la)
			return a;
		if (lb)
			return b;
		sleep_ms(10);
	}
	return NULL;
}

/* ---- tests ------------------------------------------------------------- */

static void
test_leaderelect_config(void **state)
{
	(void) state;
	mcf_le_config cfg = config_for("cfg", NULL);
	mcf_errinfo   ei;
	assert_int_equal(mcf_le_config_check(&cfg, &ei), 0);

	/* Defaults 15/10/2 s are valid. */
	cfg.lease_duration_ms = cfg.renew_deadline_ms = cfg.retry_period_ms
	    = 0;
	assert_int_equal(mcf_le_config_check(&cfg, &ei), 0);

	/* lease <= renew. */
	cfg                   = config_for("cfg", NULL);
	cfg.lease_duration_ms = 1500;
	cfg.renew_deadline_ms = 1500;
	assert_int_equal(mcf_le_config_check(&cfg, &ei), MCF_EINVAL);
	assert_int_equal(ei.code, MCF_EINVAL);
	assert_non_null(strstr(ei.msg, "renew deadline"));

	/* renew <= 1.2 x retry (1200 = 1.2 x 1000 exactly). */
	cfg                   = config_for("cfg", NULL);
	cfg.lease_duration_ms = 5000;
	cfg.renew_deadline_ms = 1200;
	cfg.retry_period_ms   = 1000;
	assert_int_equal(mcf_le_config_check(&cfg, &ei), MCF_EINVAL);
	cfg.renew_deadline_ms = 1201;
	assert_int_equal(mcf_le_config_check(&cfg, &ei), 0);

	/* Negative timings; a default renew deadline above the lease. */
	cfg                 = config_for("cfg", NULL);
	cfg.retry_period_ms = -1;
	assert_int_equal(mcf_le_config_check(&cfg, &ei), MCF_EINVAL);
	cfg                   = config_for("cfg", NULL);
	cfg.lease_duration_ms = 5000;
	cfg.renew_deadline_ms = 0;
	assert_int_equal(mcf_le_config_check(&cfg, &ei), MCF_EINVAL);

	/* Names. */
	cfg          = config_for("cfg", NULL);
	cfg.identity = "";
	assert_int_equal(mcf_le_config_check(&cfg, &ei), MCF_EINVAL);
	cfg           = config_for("cfg", NULL);
	cfg.namespace = NULL;
	assert_int_equal(mcf_le_config_check(&cfg, &ei), MCF_EINVAL);
	cfg        = config_for("", NULL);
	mcf_le *le = (mcf_le *) 0x1;
	assert_int_equal(mcf_le_create(&cfg, &le, &ei), MCF_EINVAL);
	assert_ptr_equal(le, (mcf_le *) 0x1); /* untouched */
	assert_int_equal(mcf_le_config_check(NULL, NULL), MCF_EINVAL);

	/* Create, stop and destroy without starting; destroy(NULL). */
	cfg = config_for("cfg", NULL);
	assert_int_equal(mcf_le_create(&cfg, &le, &ei), 0);
	assert_false(mcf_le_is_leader(le));
	mcf_le_fence t;
	assert_false(mcf_le_term(le, &t));
	assert_null(mcf_le_leader(le));
	mcf_le_stop(le, true);
	mcf_le_destroy(le);
	mcf_le_destroy(NULL);
}

/* C5: two candidates, one Lease: exactly one leader, named by the Lease. */
static void
test_leaderelect_one_leader(void **state)
{
	(void) state;
	cand *a = cand_new("c5-a", "c5");
	cand *b = cand_new("c5-b", "c5");
	cand_start(a);
	cand_start(b);
	cand *l = wait_leader(a, b, 10 * lease_ms);
	assert_non_null(l);
	cand *o = l == a ? b : a;

	/* Several renew periods: never both, never a change of leader. */
	int64_t until = now_ms() + 3 * lease_ms;
	while (now_ms() < until) {
		assert_true(mcf_le_is_leader(l->le));
		assert_false(mcf_le_is_leader(o->le));
		sleep_ms(20);
	}
	json_t *lease = get_lease("c5");
	assert_string_equal(lease_holder(lease), l->id);
	assert_int_equal(lease_int(lease, "leaseDurationSeconds"),
	    (int) ((lease_ms + 999) / 1000));
	mcf_le_fence t;
	assert_true(mcf_le_term(l->le, &t));
	mcf_le_fence t_o = { { 0 }, -7 };
	assert_false(mcf_le_term(o->le, &t_o));
	assert_int_equal(t_o.transitions, -7); /* untouched */
	assert_string_equal(t.uid,
	    json_string_value(
	        json_object_get(json_object_get(lease, "metadata"), "uid")));
	assert_int_equal(t.transitions, lease_int(lease, "leaseTransitions"));
	/* The leader publishes its annotations with every write. */
	assert_string_equal(json_string_value(json_object_get(
	                        json_object_get(json_object_get(lease,
	                                            "metadata"),
	                            "annotations"),
	                        "mcfleet.io/address")),
	    "tcp://127.0.0.1:1");
	/* MicroTime: "2006-01-02T15:04:05.000000Z". */
	const char *names[] = { "renewTime", "acquireTime" };
	for (size_t i = 0; i < 2; i++) {
		const char *mt = json_string_value(
		    json_object_get(json_object_get(lease, "spec"), names[i]));
		assert_non_null(mt);
		assert_int_equal(strlen(mt), 27);
		assert_int_equal(mt[10], 'T');
		assert_int_equal(mt[19], '.');
		assert_int_equal(mt[26], 'Z');
	}
	json_decref(lease);

	/* Both observe the same holder; one on_started, none stopped. */
	char *h = mcf_le_leader(o->le);
	assert_non_null(h);
	assert_string_equal(h, l->id);
	free(h);
	h = mcf_le_leader(l->le);
	assert_string_equal(h, l->id);
	free(h);
	assert_int_equal(atomic_load(&l->started), 1);
	assert_int_equal(atomic_load(&o->started), 0);
	assert_int_equal(atomic_load(&l->stopped), 0);
	assert_true(atomic_load(&o->new_leader) >= 1);
	assert_int_equal(atomic_load(&o->bad_leader), 0);
	assert_int_equal(atomic_load(&l->bad_leader), 0);

	mcf_le_stop(o->le, true);
	mcf_le_stop(l->le, true);
	assert_int_equal(atomic_load(&l->stopped), 1);
	assert_int_equal(atomic_load(&o->stopped), 0);
	cand_free(a);
	cand_free(b);
}

/* C6: the leader stops without releasing (a crash); the other takes over
 * within leaseDuration + retryPeriod (with a margin), transitions + 1. */
static void
test_leaderelect_crash_takeover(void **state)
{
	(void) state;
	cand *a = cand_new("c6-a", "c6");
	cand_start(a);
	assert_ptr_equal(wait_leader(a, NULL, 10 * lease_ms), a);
	cand *b = cand_new("c6-b", "c6");
	cand_start(b);
	/* b has seen a holding the Lease. */
	int64_t until = now_ms() + 10 * lease_ms;
	char   *h     = NULL;
	while (now_ms() < until) {
		h = mcf_le_leader(b->le);
		if (h != NULL && strcmp(h, a->id) == 0)
			break;
		free(h);
		h = NULL;
		sleep_ms(10);
	}
	assert_non_null(h);
	free(h);
	mcf_le_fence ta  = cand_term(a);
	json_t      *l0  = get_lease("c6");
	int          tr0 = lease_int(l0, "leaseTransitions");
	json_decref(l0);
	assert_int_equal(ta.transitions, tr0);

	int64_t t0 = now_ms();
	mcf_le_stop(a->le, false); /* no release */
	assert_false(mcf_le_is_leader(a->le));
	assert_int_equal(atomic_load(&a->stopped), 1);
	json_t *l1 = get_lease("c6");
	assert_string_equal(lease_holder(l1), a->id); /* left to expire */
	json_decref(l1);

	int64_t bound = lease_ms + retry_ms;
	assert_ptr_equal(wait_leader(b, NULL, 3 * bound), b);
	int64_t took = now_ms() - t0;
	print_message("c6: takeover after %lld ms (bound %lld ms)\n",
	    (long long) took, (long long) bound);
	assert_true(took <= (5 * bound) / 2);
	/* Not before the lease could have expired for b. */
	assert_true(took >= lease_ms - 3 * retry_ms);

	json_t *l2 = get_lease("c6");
	assert_string_equal(lease_holder(l2), b->id);
	assert_int_equal(lease_int(l2, "leaseTransitions"), tr0 + 1);
	json_decref(l2);
	mcf_le_fence tb;
	assert_true(mcf_le_term(b->le, &tb));
	assert_string_equal(tb.uid, ta.uid);
	assert_int_equal(tb.transitions, ta.transitions + 1);
	mcf_le_stop(b->le, true);
	cand_free(a);
	cand_free(b);
}

/* C7: graceful stop releases the Lease (holder "", duration 1,
 * transitions unchanged) and a standby takes over at its next retry. */
static void
test_leaderelect_release(void **state)
{
	(void) state;
	/* Alone, so that nobody takes the released Lease before we read it. */
	cand *a = cand_new("c7-a", "c7");
	cand_start(a);
	assert_ptr_equal(wait_leader(a, NULL, 10 * lease_ms), a);
	mcf_le_fence ta = cand_term(a);
	mcf_le_stop(a->le, true);
	assert_int_equal(atomic_load(&a->stopped), 1);
	json_t *l = get_lease("c7");
	assert_string_equal(lease_holder(l), "");
	assert_int_equal(lease_int(l, "leaseDurationSeconds"), 1);
	assert_int_equal(lease_int(l, "leaseTransitions"), ta.transitions);
	json_decref(l);

	/* Restart a: it takes the released Lease over (transitions + 1). */
	cand_start(a);
	assert_ptr_equal(wait_leader(a, NULL, 10 * lease_ms), a);
	mcf_le_fence ta2 = cand_term(a);
	assert_int_equal(ta2.transitions, ta.transitions + 1);

	/* Then a standby that has seen a lead; a releases. */
	cand *b = cand_new("c7-b", "c7");
	cand_start(b);
	int64_t until = now_ms() + 10 * lease_ms;
	char   *h     = NULL;
	while (now_ms() < until) {
		h = mcf_le_leader(b->le);
		if (h != NULL && strcmp(h, a->id) == 0)
			break;
		free(h);
		h = NULL;
		sleep_ms(10);
	}
	assert_non_null(h);
	free(h);
	int64_t t0 = now_ms();
	mcf_le_stop(a->le, true);
	assert_ptr_equal(wait_leader(b, NULL, 3 * lease_ms), b);
	int64_t took = now_ms() - t0;
	print_message("c7: takeover after %lld ms (lease %lld ms)\n",
	    (long long) took, (long long) lease_ms);
	/* At b's next jittered retry (<= 2.2 x retry), not after expiry. */
	assert_true(took < (lease_ms * 3) / 4);
	mcf_le_fence tb;
	assert_true(mcf_le_term(b->le, &tb));
	assert_int_equal(tb.transitions, ta2.transitions + 1);
	json_t *l2 = get_lease("c7");
	assert_string_equal(lease_holder(l2), b->id);
	assert_int_equal(lease_int(l2, "leaseDurationSeconds"),
	    (int) ((lease_ms + 999) / 1000));
	json_decref(l2);
	mcf_le_stop(b->le, true);
	cand_free(a);
	cand_free(b);
}

/* Renewals fail (500 on update): the leader stops leading within the renew
 * deadline (plus a margin), and leads again once the fault is gone. */
static void
test_leaderelect_renew_failure(void **state)
{
	(void) state;
	cand *a = cand_new("c8-a", "c8");
	cand_start(a);
	assert_ptr_equal(wait_leader(a, NULL, 10 * lease_ms), a);
	mcf_le_fence ta = cand_term(a);
	int64_t      t0 = now_ms();
	add_fault("{\"match\":{\"resource\":\"leases\",\"verb\":\"update\","
	          "\"name\":\"c8\"},\"action\":{\"status\":500}}");
	int64_t until = now_ms() + 4 * renew_ms;
	while (now_ms() < until && atomic_load(&a->stopped) == 0)
		sleep_ms(10);
	assert_int_equal(atomic_load(&a->stopped), 1);
	assert_false(mcf_le_is_leader(a->le));
	pthread_mutex_lock(&a->mtx);
	int64_t took = a->stopped_ms - t0;
	pthread_mutex_unlock(&a->mtx);
	print_message("renew failure: stopped leading after %lld ms "
	              "(deadline %lld ms)\n",
	    (long long) took, (long long) renew_ms);
	/* The last renewal was at most a retry period before the fault; a
	 * leader gives up at its renew deadline, before the Lease could
	 * expire for anyone else. */
	assert_true(took <= renew_ms + 250 * scale);
	assert_true(took < lease_ms);

	/* Still failing: it stays a follower. */
	sleep_ms(2 * retry_ms);
	assert_false(mcf_le_is_leader(a->le));

	assert_int_equal(clear_faults(NULL), 0);
	assert_ptr_equal(wait_leader(a, NULL, 3 * lease_ms), a);
	assert_int_equal(atomic_load(&a->started), 2);
	/* The record never changed holder: same term transitions. */
	mcf_le_fence t2 = cand_term(a);
	assert_string_equal(t2.uid, ta.uid);
	assert_int_equal(t2.transitions, ta.transitions);
	mcf_le_stop(a->le, true);
	assert_int_equal(atomic_load(&a->stopped), 2);
	cand_free(a);
}

static int
group_setup(void **state)
{
	(void) state;
	const char *s = getenv("MCF_TEST_TIMEOUT_SCALE");
	if (s != NULL && atoi(s) > 0)
		scale = atoi(s);
	lease_ms = 2000 * scale;
	renew_ms = 1500 * scale;
	retry_ms = 400 * scale;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	return kubesim_start(&sim, NULL);
}

static int
group_teardown(void **state)
{
	(void) state;
	int st = kubesim_stop(&sim);
	curl_global_cleanup();
	return st == 0 ? 0 : -1;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_leaderelect_config),
		cmocka_unit_test_teardown(
		    test_leaderelect_one_leader, clear_faults),
		cmocka_unit_test_teardown(
		    test_leaderelect_crash_takeover, clear_faults),
		cmocka_unit_test_teardown(
		    test_leaderelect_release, clear_faults),
		cmocka_unit_test_teardown(
		    test_leaderelect_renew_failure, clear_faults),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

/*
 * workqueue_test.c — tests for common/workqueue.c: dedup, FIFO order, one
 * worker per key under concurrency, re-adds while processing, delayed adds,
 * the backoff and token-bucket rate limiters, shutdown with drain, get
 * deadlines and metrics.
 *
 * Timing bounds are generous (at least the delay, at most the delay plus
 * one second, scaled by MCF_TEST_TIMEOUT_SCALE under sanitizers), and every
 * wait is bounded.
 */
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "err.h"
#include "workqueue.h"

static int64_t
mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
sleep_ms(int64_t ms)
{
	struct timespec ts
	    = { (time_t) (ms / 1000), (long) (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0)
		;
}

/* Slack for upper time bounds: one second, times the sanitizer scale. */
static int64_t
slack_ms(void)
{
	const char *s     = getenv("MCF_TEST_TIMEOUT_SCALE");
	int         scale = s != NULL ? atoi(s) : 1;
	return 1000 * (scale > 0 ? scale : 1);
}

static mcf_wq *
new_queue(double qps, int burst)
{
	mcf_wq_opts o;
	mcf_wq     *q = NULL;
	mcf_wq_opts_init(&o);
	o.name  = "test";
	o.qps   = qps;
	o.burst = burst;
	assert_int_equal(mcf_wq_create(&q, &o), MCF_OK);
	assert_non_null(q);
	return q;
}

/* Gets one key and checks it is `want`. */
static void
expect_get(mcf_wq *q, int64_t timeout_ms, const char *want)
{
	const char *k = NULL;
	assert_int_equal(mcf_wq_get(q, timeout_ms, &k), MCF_OK);
	assert_string_equal(k, want);
}

static void
test_workqueue_opts(void **state)
{
	(void) state;
	mcf_wq_opts o;
	mcf_wq     *q = (mcf_wq *) &o; /* must stay untouched on failure */
	mcf_wq_opts_init(&o);
	assert_int_equal(o.base_delay_ms, 5);
	assert_int_equal(o.max_delay_ms, 1000 * 1000);
	assert_true(o.qps == 10.0);
	assert_int_equal(o.burst, 100);

	o.base_delay_ms = 0;
	assert_int_equal(mcf_wq_create(&q, &o), MCF_EINVAL);
	mcf_wq_opts_init(&o);
	o.max_delay_ms = 1;
	assert_int_equal(mcf_wq_create(&q, &o), MCF_EINVAL);
	mcf_wq_opts_init(&o);
	o.burst = 0;
	assert_int_equal(mcf_wq_create(&q, &o), MCF_EINVAL);
	assert_ptr_equal(q, (mcf_wq *) &o);

	/* NULL options: the defaults. */
	assert_int_equal(mcf_wq_create(&q, NULL), MCF_OK);
	assert_string_equal(mcf_wq_name(q), "");
	assert_int_equal(mcf_wq_add(q, NULL), MCF_EINVAL);
	assert_int_equal(mcf_wq_done(q, "nope"), MCF_EINVAL);
	mcf_wq_destroy(q);
	mcf_wq_destroy(NULL);
}

/* Per-prefix counts see queued and delayed keys, not those being
 * processed. */
static void
test_workqueue_count_prefix(void **state)
{
	(void) state;
	mcf_wq *q = new_queue(1e6, 1000000);
	assert_int_equal(mcf_wq_add(q, "a/ns/x"), MCF_OK);
	assert_int_equal(mcf_wq_add(q, "a/ns/y"), MCF_OK);
	assert_int_equal(mcf_wq_add(q, "ab/ns/x"), MCF_OK);
	assert_int_equal(mcf_wq_add(q, "b/ns/x"), MCF_OK);
	assert_int_equal(mcf_wq_add_after(q, "a/ns/later", 60000), MCF_OK);
	mcf_wq_prefix_count c;
	mcf_wq_count_prefix(q, "a/", &c);
	assert_int_equal(c.queued, 2);
	assert_int_equal(c.waiting, 1);
	mcf_wq_count_prefix(q, "b/", &c);
	assert_int_equal(c.queued, 1);
	assert_int_equal(c.waiting, 0);
	expect_get(q, 1000, "a/ns/x");
	mcf_wq_count_prefix(q, "a/", &c);
	assert_int_equal(c.queued, 1);
	mcf_wq_count_prefix(q, "zz/", &c);
	assert_int_equal(c.queued + c.waiting, 0);
	assert_int_equal(mcf_wq_done(q, "a/ns/x"), MCF_OK);
	mcf_wq_destroy(q);
}

static void
test_workqueue_dedup(void **state)
{
	(void) state;
	mcf_wq *q = new_queue(10, 100);
	assert_string_equal(mcf_wq_name(q), "test");
	assert_int_equal(mcf_wq_add(q, "a"), MCF_OK);
	assert_int_equal(mcf_wq_add(q, "a"), MCF_OK);
	assert_int_equal(mcf_wq_add(q, "b"), MCF_OK);
	assert_int_equal(mcf_wq_add(q, "a"), MCF_OK);
	assert_int_equal(mcf_wq_len(q), 2);

	mcf_wq_metrics m;
	mcf_wq_metrics_read(q, &m);
	assert_int_equal(m.adds_total, 2);
	assert_int_equal(m.depth, 2);

	expect_get(q, 0, "a");
	expect_get(q, 0, "b");
	const char *k = NULL;
	assert_int_equal(mcf_wq_get(q, 0, &k), MCF_ETIMEDOUT);
	assert_null(k);
	assert_int_equal(mcf_wq_done(q, "a"), MCF_OK);
	assert_int_equal(mcf_wq_done(q, "b"), MCF_OK);
	assert_int_equal(mcf_wq_done(q, "b"), MCF_EINVAL);
	assert_int_equal(mcf_wq_len(q), 0);
	mcf_wq_destroy(q);
}

static void
test_workqueue_fifo(void **state)
{
	(void) state;
	mcf_wq *q = new_queue(10, 100);
	char    key[32];
	/* Enough keys to grow the hash table several times. */
	for (int i = 0; i < 2000; i++) {
		snprintf(key, sizeof(key), "ns/obj-%d", i);
		assert_int_equal(mcf_wq_add(q, key), MCF_OK);
	}
	/* Re-adding queued keys changes nothing, order included. */
	for (int i = 1999; i >= 0; i -= 7) {
		snprintf(key, sizeof(key), "ns/obj-%d", i);
		assert_int_equal(mcf_wq_add(q, key), MCF_OK);
	}
	assert_int_equal(mcf_wq_len(q), 2000);
	for (int i = 0; i < 2000; i++) {
		const char *k = NULL;
		snprintf(key, sizeof(key), "ns/obj-%d", i);
		assert_int_equal(mcf_wq_get(q, 0, &k), MCF_OK);
		assert_string_equal(k, key);
		/* Passing the borrowed pointer itself is allowed. */
		assert_int_equal(mcf_wq_done(q, k), MCF_OK);
	}
	assert_int_equal(mcf_wq_len(q), 0);
	mcf_wq_destroy(q);
}

static void
test_workqueue_readd_while_processing(void **state)
{
	(void) state;
	mcf_wq     *q = new_queue(10, 100);
	const char *k = NULL;
	assert_int_equal(mcf_wq_add(q, "a"), MCF_OK);
	expect_get(q, 0, "a");
	/* Added twice while processing: held back, and held once. */
	assert_int_equal(mcf_wq_add(q, "a"), MCF_OK);
	assert_int_equal(mcf_wq_add(q, "a"), MCF_OK);
	assert_int_equal(mcf_wq_add(q, "b"), MCF_OK);
	assert_int_equal(mcf_wq_len(q), 1);
	expect_get(q, 0, "b");
	assert_int_equal(mcf_wq_get(q, 0, &k), MCF_ETIMEDOUT);
	assert_int_equal(mcf_wq_done(q, "a"), MCF_OK);
	assert_int_equal(mcf_wq_len(q), 1);
	expect_get(q, 0, "a");
	assert_int_equal(mcf_wq_get(q, 0, &k), MCF_ETIMEDOUT);
	assert_int_equal(mcf_wq_done(q, "a"), MCF_OK);
	assert_int_equal(mcf_wq_done(q, "b"), MCF_OK);
	assert_int_equal(mcf_wq_get(q, 0, &k), MCF_ETIMEDOUT);

	mcf_wq_metrics m;
	mcf_wq_metrics_read(q, &m);
	assert_int_equal(m.adds_total, 3);
	assert_int_equal(m.queue_duration.count, 3);
	assert_int_equal(m.work_duration.count, 3);
	mcf_wq_destroy(q);
}

/* ---- concurrency stress ---- */

#define STRESS_KEYS 64
#define STRESS_WORKERS 4
#define STRESS_ADDS 40000

struct stress {
	mcf_wq     *q;
	atomic_int  inflight[STRESS_KEYS];
	atomic_int  violations;
	atomic_long processed;
	atomic_long last_added[STRESS_KEYS]; /* sequence of last add */
	atomic_long last_seen[STRESS_KEYS];  /* add seq seen at get */
	atomic_long seq;
};

static void *
stress_worker(void *arg)
{
	struct stress *s = arg;
	for (;;) {
		const char *k  = NULL;
		int         rv = mcf_wq_get(s->q, 10000, &k);
		if (rv == MCF_ECLOSED)
			break;
		if (rv != MCF_OK) {
			atomic_fetch_add(&s->violations, 1000);
			break;
		}
		int i = atoi(k + 1);
		if (atomic_fetch_add(&s->inflight[i], 1) != 0)
			atomic_fetch_add(&s->violations, 1);
		atomic_store(&s->last_seen[i], atomic_load(&s->last_added[i]));
		for (int j = 0; j < 50; j++)
			atomic_signal_fence(memory_order_seq_cst);
		if ((atomic_fetch_add(&s->processed, 1) & 15) == 0)
			sched_yield();
		atomic_fetch_sub(&s->inflight[i], 1);
		if (mcf_wq_done(s->q, k) != MCF_OK)
			atomic_fetch_add(&s->violations, 1000);
	}
	return NULL;
}

static void *
stress_producer(void *arg)
{
	struct stress *s    = arg;
	unsigned       seed = 12345;
	char           key[16];
	for (int n = 0; n < STRESS_ADDS; n++) {
		seed  = seed * 1103515245u + 12345u;
		int i = (int) ((seed >> 16) % STRESS_KEYS);
		snprintf(key, sizeof(key), "k%d", i);
		atomic_store(
		    &s->last_added[i], atomic_fetch_add(&s->seq, 1) + 1);
		if (mcf_wq_add(s->q, key) != MCF_OK)
			atomic_fetch_add(&s->violations, 1000);
	}
	return NULL;
}

static void
test_workqueue_one_worker_per_key(void **state)
{
	(void) state;
	struct stress *s = calloc(1, sizeof(*s));
	assert_non_null(s);
	s->q = new_queue(10, 100);
	pthread_t w[STRESS_WORKERS], p[2];
	for (int i = 0; i < STRESS_WORKERS; i++)
		assert_int_equal(
		    pthread_create(&w[i], NULL, stress_worker, s), 0);
	for (int i = 0; i < 2; i++)
		assert_int_equal(
		    pthread_create(&p[i], NULL, stress_producer, s), 0);
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_join(p[i], NULL), 0);
	/* Drain: every key added is processed after its last add. */
	assert_int_equal(mcf_wq_stop(s->q, 20 * slack_ms()), MCF_OK);
	for (int i = 0; i < STRESS_WORKERS; i++)
		assert_int_equal(pthread_join(w[i], NULL), 0);

	assert_int_equal(atomic_load(&s->violations), 0);
	assert_true(atomic_load(&s->processed) > 0);
	assert_true(atomic_load(&s->processed) <= 2 * STRESS_ADDS);
	for (int i = 0; i < STRESS_KEYS; i++) {
		assert_int_equal(atomic_load(&s->inflight[i]), 0);
		assert_int_equal(atomic_load(&s->last_seen[i]),
		    atomic_load(&s->last_added[i]));
	}
	mcf_wq_metrics m;
	mcf_wq_metrics_read(s->q, &m);
	assert_int_equal(m.depth, 0);
	assert_int_equal(m.processing, 0);
	assert_int_equal(
	    (long) m.work_duration.count, atomic_load(&s->processed));
	const char *k = NULL;
	assert_int_equal(mcf_wq_get(s->q, 0, &k), MCF_ECLOSED);
	mcf_wq_destroy(s->q);
	free(s);
}

/* ---- delayed adds ---- */

static void
test_workqueue_add_after_order(void **state)
{
	(void) state;
	mcf_wq *q  = new_queue(10, 100);
	int64_t t0 = mono_ms();
	assert_int_equal(mcf_wq_add_after(q, "c", 300), MCF_OK);
	assert_int_equal(mcf_wq_add_after(q, "a", 100), MCF_OK);
	assert_int_equal(mcf_wq_add_after(q, "b", 200), MCF_OK);
	/* A later deadline for a waiting key does not move it... */
	assert_int_equal(mcf_wq_add_after(q, "a", 5000), MCF_OK);
	/* ...an earlier one does. */
	assert_int_equal(mcf_wq_add_after(q, "d", 60000), MCF_OK);
	assert_int_equal(mcf_wq_add_after(q, "d", 250), MCF_OK);
	assert_int_equal(mcf_wq_len(q), 0);

	static const struct {
		const char *key;
		int64_t     delay;
	} want[] = { { "a", 100 }, { "b", 200 }, { "d", 250 }, { "c", 300 } };
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		expect_get(q, 5000, want[i].key);
		int64_t el = mono_ms() - t0;
		assert_true(el >= want[i].delay);
		assert_true(el <= want[i].delay + slack_ms());
		assert_int_equal(mcf_wq_done(q, want[i].key), MCF_OK);
	}
	/* Zero delay: queued at once. */
	assert_int_equal(mcf_wq_add_after(q, "now", 0), MCF_OK);
	assert_int_equal(mcf_wq_len(q), 1);
	expect_get(q, 0, "now");
	assert_int_equal(mcf_wq_done(q, "now"), MCF_OK);

	/* A delayed key already queued is not queued twice. */
	assert_int_equal(mcf_wq_add(q, "x"), MCF_OK);
	assert_int_equal(mcf_wq_add_after(q, "x", 20), MCF_OK);
	sleep_ms(40);
	assert_int_equal(mcf_wq_len(q), 1);

	mcf_wq_metrics m;
	mcf_wq_metrics_read(q, &m);
	assert_int_equal(m.retries_total, 8);
	assert_int_equal(m.waiting, 0);
	mcf_wq_destroy(q);
}

struct getter {
	mcf_wq     *q;
	int64_t     timeout_ms;
	int         rv;
	char        key[32];
	int64_t     done_at;
	atomic_bool finished;
};

static void *
getter_main(void *arg)
{
	struct getter *g = arg;
	const char    *k = NULL;
	g->rv            = mcf_wq_get(g->q, g->timeout_ms, &k);
	if (g->rv == MCF_OK) {
		snprintf(g->key, sizeof(g->key), "%s", k);
		mcf_wq_done(g->q, k);
	}
	g->done_at = mono_ms();
	atomic_store(&g->finished, true);
	return NULL;
}

static void
test_workqueue_add_after_wakes_getter(void **state)
{
	(void) state;
	mcf_wq       *q = new_queue(10, 100);
	struct getter g = { .q = q, .timeout_ms = 30000 };
	pthread_t     t;
	/* A getter already asleep with no deadline in sight must wake for a
	 * delayed key added later. */
	assert_int_equal(pthread_create(&t, NULL, getter_main, &g), 0);
	sleep_ms(50);
	int64_t t0 = mono_ms();
	assert_int_equal(mcf_wq_add_after(q, "late", 60000), MCF_OK);
	assert_int_equal(mcf_wq_add_after(q, "soon", 100), MCF_OK);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(g.rv, MCF_OK);
	assert_string_equal(g.key, "soon");
	assert_true(g.done_at - t0 >= 100);
	assert_true(g.done_at - t0 <= 100 + slack_ms());
	mcf_wq_destroy(q);
}

/* ---- rate limiting ---- */

static void
test_workqueue_backoff(void **state)
{
	(void) state;
	mcf_wq *q    = new_queue(0, 0); /* bucket off */
	int64_t d    = -1;
	int64_t want = 5;
	for (int i = 0; i < 10; i++) {
		assert_int_equal(mcf_wq_add_rate_limited(q, "a", &d), MCF_OK);
		assert_int_equal(d, want);
		assert_int_equal(mcf_wq_num_requeues(q, "a"), i + 1);
		want *= 2;
	}
	/* Keys back off independently. */
	assert_int_equal(mcf_wq_add_rate_limited(q, "b", &d), MCF_OK);
	assert_int_equal(d, 5);
	assert_int_equal(mcf_wq_num_requeues(q, "b"), 1);
	assert_int_equal(mcf_wq_num_requeues(q, "none"), 0);

	mcf_wq_forget(q, "a");
	mcf_wq_forget(q, "none");
	assert_int_equal(mcf_wq_num_requeues(q, "a"), 0);
	assert_int_equal(mcf_wq_add_rate_limited(q, "a", &d), MCF_OK);
	assert_int_equal(d, 5);
	assert_int_equal(mcf_wq_add_rate_limited(q, "a", &d), MCF_OK);
	assert_int_equal(d, 10);

	/* Both keys come out (each once: "a" keeps the earliest of its
	 * ready times); a processed key is forgotten. */
	for (int i = 0; i < 2; i++) {
		const char *k = NULL;
		assert_int_equal(mcf_wq_get(q, 5000, &k), MCF_OK);
		assert_true(strcmp(k, "a") == 0 || strcmp(k, "b") == 0);
		mcf_wq_forget(q, k);
		assert_int_equal(mcf_wq_num_requeues(q, k), 0);
		assert_int_equal(mcf_wq_done(q, k), MCF_OK);
	}
	const char *k = NULL;
	assert_int_equal(mcf_wq_get(q, 0, &k), MCF_ETIMEDOUT);
	mcf_wq_destroy(q);

	/* The cap: 5, 10, 20, 30, 30 with max 30 ms; huge failure counts
	 * stay at the cap. */
	mcf_wq_opts o;
	mcf_wq_opts_init(&o);
	o.max_delay_ms = 30;
	o.qps          = 0;
	assert_int_equal(mcf_wq_create(&q, &o), MCF_OK);
	static const int64_t capped[] = { 5, 10, 20, 30, 30 };
	for (size_t i = 0; i < 5; i++) {
		assert_int_equal(mcf_wq_add_rate_limited(q, "c", &d), MCF_OK);
		assert_int_equal(d, capped[i]);
	}
	for (int i = 0; i < 100; i++)
		assert_int_equal(
		    mcf_wq_add_rate_limited(q, "c", NULL), MCF_OK);
	assert_int_equal(mcf_wq_add_rate_limited(q, "c", &d), MCF_OK);
	assert_int_equal(d, 30);
	/* Default maximum: 1000 s. */
	mcf_wq_destroy(q);
	q = new_queue(0, 0);
	for (int i = 0; i < 40; i++)
		assert_int_equal(mcf_wq_add_rate_limited(q, "d", &d), MCF_OK);
	assert_int_equal(d, 1000 * 1000);
	mcf_wq_destroy(q);
}

static void
test_workqueue_token_bucket(void **state)
{
	(void) state;
	mcf_wq *q = new_queue(10, 5);
	int64_t d[7];
	int64_t t0 = mono_ms();
	char    key[16];
	for (int i = 0; i < 7; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		assert_int_equal(
		    mcf_wq_add_rate_limited(q, key, &d[i]), MCF_OK);
	}
	/* The burst goes at the backoff's 5 ms; then one token per 100 ms. */
	for (int i = 0; i < 5; i++)
		assert_int_equal(d[i], 5);
	assert_true(d[5] >= 80 && d[5] <= 100);
	assert_true(d[6] >= 180 && d[6] <= 200);

	for (int i = 0; i < 7; i++) {
		const char *k = NULL;
		assert_int_equal(mcf_wq_get(q, 5000, &k), MCF_OK);
		snprintf(key, sizeof(key), "k%d", i);
		assert_string_equal(k, key);
		int64_t el = mono_ms() - t0;
		assert_true(el >= (i < 5 ? 5 : i == 5 ? 80 : 180));
		assert_true(el <= d[i] + slack_ms());
		assert_int_equal(mcf_wq_done(q, k), MCF_OK);
	}

	/* The bucket refills at 10 tokens/s: 7 were taken at t0, and by
	 * now (>= 480 ms later) at least 4.8 came back, so a fresh key
	 * goes at its backoff again. */
	sleep_ms(300);
	assert_int_equal(mcf_wq_add_rate_limited(q, "fresh", &d[0]), MCF_OK);
	assert_int_equal(d[0], 5);

	mcf_wq_metrics m;
	mcf_wq_metrics_read(q, &m);
	assert_int_equal(m.retries_total, 8);
	mcf_wq_destroy(q);
}

static void
test_workqueue_max_of_limiters(void **state)
{
	(void) state;
	/* Large burst: the per-key backoff decides. */
	mcf_wq *q = new_queue(1000, 1000);
	int64_t d = 0;
	for (int i = 0; i < 4; i++)
		assert_int_equal(mcf_wq_add_rate_limited(q, "a", &d), MCF_OK);
	assert_int_equal(d, 40);
	mcf_wq_destroy(q);

	/* Burst 1 at 1 qps: the bucket decides for a fresh key. */
	q = new_queue(1, 1);
	assert_int_equal(mcf_wq_add_rate_limited(q, "a", &d), MCF_OK);
	assert_int_equal(d, 5);
	assert_int_equal(mcf_wq_add_rate_limited(q, "b", &d), MCF_OK);
	assert_true(d >= 950 && d <= 1000);
	mcf_wq_destroy(q);
}

/* ---- shutdown ---- */

struct stopper {
	mcf_wq     *q;
	int64_t     timeout_ms;
	int         rv;
	atomic_bool finished;
};

static void *
stopper_main(void *arg)
{
	struct stopper *s = arg;
	s->rv             = mcf_wq_stop(s->q, s->timeout_ms);
	atomic_store(&s->finished, true);
	return NULL;
}

static void
test_workqueue_shutdown_drain(void **state)
{
	(void) state;
	mcf_wq     *q = new_queue(10, 100);
	const char *k = NULL;
	assert_int_equal(mcf_wq_add(q, "a"), MCF_OK);
	assert_int_equal(mcf_wq_add(q, "b"), MCF_OK);
	assert_int_equal(mcf_wq_add_after(q, "delayed", 20), MCF_OK);
	expect_get(q, 0, "a");

	struct stopper s = { .q = q, .timeout_ms = 10000 };
	pthread_t      t;
	assert_int_equal(pthread_create(&t, NULL, stopper_main, &s), 0);
	sleep_ms(100);
	assert_false(atomic_load(&s.finished));

	/* Closed: adds fail, delayed keys are dropped, queued keys are
	 * still handed out. */
	assert_int_equal(mcf_wq_add(q, "c"), MCF_ECLOSED);
	assert_int_equal(mcf_wq_add_after(q, "c", 1), MCF_ECLOSED);
	assert_int_equal(mcf_wq_add_rate_limited(q, "c", NULL), MCF_ECLOSED);
	assert_int_equal(mcf_wq_num_requeues(q, "c"), 0);
	expect_get(q, 0, "b");
	assert_int_equal(mcf_wq_done(q, "b"), MCF_OK);
	sleep_ms(50);
	assert_false(atomic_load(&s.finished));
	assert_int_equal(mcf_wq_get(q, 0, &k), MCF_ECLOSED);

	assert_int_equal(mcf_wq_done(q, "a"), MCF_OK);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(s.rv, MCF_OK);
	assert_int_equal(mcf_wq_get(q, 1000, &k), MCF_ECLOSED);
	/* Idempotent. */
	mcf_wq_close(q);
	assert_int_equal(mcf_wq_stop(q, 0), MCF_OK);
	mcf_wq_metrics m;
	mcf_wq_metrics_read(q, &m);
	assert_int_equal(m.waiting, 0);
	assert_int_equal(m.processing, 0);
	mcf_wq_destroy(q);
}

static void
test_workqueue_shutdown_requeue_and_timeout(void **state)
{
	(void) state;
	mcf_wq     *q = new_queue(10, 100);
	const char *k = NULL;
	assert_int_equal(mcf_wq_add(q, "a"), MCF_OK);
	expect_get(q, 0, "a");
	assert_int_equal(mcf_wq_add(q, "a"), MCF_OK); /* dirty */

	/* In-flight work not done: stop times out. */
	int64_t t0 = mono_ms();
	assert_int_equal(mcf_wq_stop(q, 100), MCF_ETIMEDOUT);
	assert_true(mono_ms() - t0 >= 100);
	/* Done re-queues the key added before the close; it is handed out
	 * before get reports the close. */
	assert_int_equal(mcf_wq_done(q, "a"), MCF_OK);
	expect_get(q, 0, "a");
	assert_int_equal(mcf_wq_stop(q, 50), MCF_ETIMEDOUT);
	assert_int_equal(mcf_wq_done(q, "a"), MCF_OK);
	assert_int_equal(mcf_wq_stop(q, 1000), MCF_OK);
	assert_int_equal(mcf_wq_get(q, 0, &k), MCF_ECLOSED);
	mcf_wq_destroy(q);
}

static void
test_workqueue_close_wakes_getters(void **state)
{
	(void) state;
	mcf_wq       *q = new_queue(10, 100);
	struct getter g[3];
	pthread_t     t[3];
	for (int i = 0; i < 3; i++) {
		memset(&g[i], 0, sizeof(g[i]));
		g[i].q          = q;
		g[i].timeout_ms = 30000;
		assert_int_equal(
		    pthread_create(&t[i], NULL, getter_main, &g[i]), 0);
	}
	sleep_ms(50);
	int64_t t0 = mono_ms();
	mcf_wq_close(q);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		assert_int_equal(g[i].rv, MCF_ECLOSED);
		assert_true(g[i].done_at - t0 <= slack_ms());
	}
	mcf_wq_destroy(q);
}

/* ---- deadlines and metrics ---- */

static void
test_workqueue_get_deadline(void **state)
{
	(void) state;
	mcf_wq     *q  = new_queue(10, 100);
	const char *k  = NULL;
	int64_t     t0 = mono_ms();
	assert_int_equal(mcf_wq_get(q, 0, &k), MCF_ETIMEDOUT);
	assert_true(mono_ms() - t0 <= slack_ms());
	t0 = mono_ms();
	assert_int_equal(mcf_wq_get(q, 150, &k), MCF_ETIMEDOUT);
	int64_t el = mono_ms() - t0;
	assert_true(el >= 150 && el <= 150 + slack_ms());
	assert_null(k);

	/* A delayed key due after the deadline does not end the wait
	 * early, nor is it returned. */
	assert_int_equal(mcf_wq_add_after(q, "x", 400), MCF_OK);
	t0 = mono_ms();
	assert_int_equal(mcf_wq_get(q, 100, &k), MCF_ETIMEDOUT);
	el = mono_ms() - t0;
	assert_true(el >= 100 && el <= 100 + slack_ms());
	expect_get(q, 5000, "x");
	assert_int_equal(mcf_wq_done(q, "x"), MCF_OK);
	mcf_wq_destroy(q);
}

static void
test_workqueue_metrics(void **state)
{
	(void) state;
	mcf_wq *q = new_queue(10, 100);
	assert_int_equal(mcf_wq_add(q, "a"), MCF_OK);
	assert_int_equal(mcf_wq_add(q, "b"), MCF_OK);
	sleep_ms(20);
	expect_get(q, 0, "a");
	sleep_ms(30);

	mcf_wq_metrics m;
	mcf_wq_metrics_read(q, &m);
	assert_int_equal(m.depth, 1);
	assert_int_equal(m.adds_total, 2);
	assert_int_equal(m.retries_total, 0);
	assert_int_equal(m.processing, 1);
	assert_true(m.longest_running_processor_seconds >= 0.03);
	assert_true(m.unfinished_work_seconds >= 0.03);
	assert_int_equal(m.queue_duration.count, 1);
	assert_true(m.queue_duration.sum >= 0.02);
	/* 20 ms lands in the 0.1 s bucket, not the 0.01 s one. */
	assert_int_equal(m.queue_duration.bucket[6], 0);
	assert_int_equal(m.queue_duration.bucket[7], 1);
	assert_int_equal(m.queue_duration.bucket[9], 1);
	assert_int_equal(m.work_duration.count, 0);

	assert_int_equal(mcf_wq_done(q, "a"), MCF_OK);
	expect_get(q, 0, "b");
	assert_int_equal(mcf_wq_done(q, "b"), MCF_OK);
	assert_int_equal(mcf_wq_add_after(q, "c", 60000), MCF_OK);
	mcf_wq_metrics_read(q, &m);
	assert_int_equal(m.depth, 0);
	assert_int_equal(m.processing, 0);
	assert_int_equal(m.waiting, 1);
	assert_int_equal(m.retries_total, 1);
	assert_true(m.unfinished_work_seconds == 0);
	assert_true(m.longest_running_processor_seconds == 0);
	assert_int_equal(m.work_duration.count, 2);
	assert_true(m.work_duration.sum >= 0.03);
	assert_int_equal(m.queue_duration.count, 2);

	assert_true(mcf_wq_hist_bound(0) == 1e-8);
	assert_true(mcf_wq_hist_bound(9) == 10.0);
	mcf_wq_destroy(q); /* frees the waiting key */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_workqueue_opts),
		cmocka_unit_test(test_workqueue_dedup),
		cmocka_unit_test(test_workqueue_count_prefix),
		cmocka_unit_test(test_workqueue_fifo),
		cmocka_unit_test(test_workqueue_readd_while_processing),
		cmocka_unit_test(test_workqueue_one_worker_per_key),
		cmocka_unit_test(test_workqueue_add_after_order),
		cmocka_unit_test(test_workqueue_add_after_wakes_getter),
		cmocka_unit_test(test_workqueue_backoff),
		cmocka_unit_test(test_workqueue_token_bucket),
		cmocka_unit_test(test_workqueue_max_of_limiters),
		cmocka_unit_test(test_workqueue_shutdown_drain),
		cmocka_unit_test(test_workqueue_shutdown_requeue_and_timeout),
		cmocka_unit_test(test_workqueue_close_wakes_getters),
		cmocka_unit_test(test_workqueue_get_deadline),
		cmocka_unit_test(test_workqueue_metrics),
	};
	return cmocka_run_group_tests_name("workqueue", tests, NULL, NULL);
}

/*
 * metrics_test.c — tests for common/metrics.c: exact text exposition of a
 * small registry, label and help escaping, float formatting, histogram
 * buckets, exact counts under concurrent increments (with renders running
 * alongside), collectors grouped into one family per name, collector
 * removal while a render runs, and the errors.
 *
 * Every registry is private and destroyed at the end of its test, so the
 * sanitizer leak reports mean something; waits have deadlines.
 */
#include <math.h>
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
#include <time.h>

#include <cmocka.h>

#include "err.h"
#include "metrics.h"

#define LABELS(...) ((const char *const[]) { __VA_ARGS__, NULL })
#define VALUES(...) ((const char *const[]) { __VA_ARGS__ })

static mcf_metrics *
new_reg(void)
{
	mcf_metrics *reg = NULL;
	assert_int_equal(mcf_metrics_create(&reg), MCF_OK);
	assert_non_null(reg);
	return reg;
}

/* Renders `reg` and compares with `want`, printing both on mismatch. */
static void
expect_render(mcf_metrics *reg, const char *want)
{
	char  *out = NULL;
	size_t len = 0;
	assert_int_equal(mcf_metrics_render(reg, &out, &len), MCF_OK);
	assert_non_null(out);
	assert_int_equal(len, strlen(out));
	if (strcmp(out, want) != 0)
		fprintf(stderr, "--- want\n%s--- got\n%s---\n", want, out);
	assert_string_equal(out, want);
	free(out);
}

static mcf_metrics_series *
series(mcf_metrics_family *f, const char *const *values)
{
	mcf_metrics_series *s = NULL;
	assert_int_equal(mcf_metrics_series_get(f, values, &s), MCF_OK);
	assert_non_null(s);
	return s;
}

static void
test_metrics_render_exact(void **state)
{
	mcf_metrics        *reg = new_reg();
	mcf_metrics_family *req, *g, *z, *empty, *again;
	mcf_metrics_series *s200, *s404;

	(void) state;
	assert_int_equal(
	    mcf_metrics_counter_register(reg, "http_requests_total",
	        "Requests served.", LABELS("code", "method"), &req),
	    MCF_OK);
	assert_int_equal(
	    mcf_metrics_gauge_register(reg, "a_gauge", "A gauge.", NULL, &g),
	    MCF_OK);
	assert_int_equal(
	    mcf_metrics_counter_register(reg, "zeta_total", NULL, NULL, &z),
	    MCF_OK);
	/* Labelled and never used: not rendered at all. */
	assert_int_equal(mcf_metrics_counter_register(reg, "empty_total",
	                     "Nothing.", LABELS("x"), &empty),
	    MCF_OK);

	/* Created out of order: rendering sorts by label text. */
	s404 = series(req, VALUES("404", "GET"));
	s200 = series(req, VALUES("200", "GET"));
	assert_ptr_equal(series(req, VALUES("200", "GET")), s200);
	mcf_metrics_counter_inc(s200);
	mcf_metrics_counter_inc(s200);
	assert_int_equal(mcf_metrics_counter_add(s200, 1), MCF_OK);
	assert_int_equal(mcf_metrics_counter_add(s404, 0.5), MCF_OK);
	mcf_metrics_gauge_set(series(g, NULL), 4);
	mcf_metrics_gauge_add(series(g, NULL), -1.5);
	assert_true(mcf_metrics_series_value(s200) == 3.0);
	assert_true(mcf_metrics_series_value(series(g, NULL)) == 2.5);

	/* Lazy re-registration gives the same family; help stays. */
	assert_int_equal(
	    mcf_metrics_counter_register(reg, "http_requests_total",
	        "Other help.", LABELS("code", "method"), &again),
	    MCF_OK);
	assert_ptr_equal(again, req);

	expect_render(reg,
	    "# HELP a_gauge A gauge.\n"
	    "# TYPE a_gauge gauge\n"
	    "a_gauge 2.5\n"
	    "# HELP http_requests_total Requests served.\n"
	    "# TYPE http_requests_total counter\n"
	    "http_requests_total{code=\"200\",method=\"GET\"} 3\n"
	    "http_requests_total{code=\"404\",method=\"GET\"} 0.5\n"
	    "# TYPE zeta_total counter\n"
	    "zeta_total 0\n");
	mcf_metrics_destroy(reg);
}

static void
test_metrics_escaping(void **state)
{
	mcf_metrics        *reg = new_reg();
	mcf_metrics_family *f;

	(void) state;
	assert_int_equal(
	    mcf_metrics_gauge_register(reg, "esc",
	        "Back\\slash and\nnewline, \"quotes\" kept.", LABELS("v"), &f),
	    MCF_OK);
	mcf_metrics_gauge_set(series(f, VALUES("a\\b\"c\nd")), 1);
	mcf_metrics_gauge_set(series(f, VALUES("")), 2);
	mcf_metrics_gauge_set(series(f, VALUES("h\xc3\xa9llo")), 3);
	expect_render(reg,
	    "# HELP esc Back\\\\slash and\\nnewline, \"quotes\" kept.\n"
	    "# TYPE esc gauge\n"
	    "esc{v=\"\"} 2\n"
	    "esc{v=\"a\\\\b\\\"c\\nd\"} 1\n"
	    "esc{v=\"h\xc3\xa9llo\"} 3\n");
	mcf_metrics_destroy(reg);
}

static void
test_metrics_floats(void **state)
{
	static const struct {
		double      v;
		const char *want;
	} cases[] = {
		{ 0, "0" },
		{ -2, "-2" },
		{ 0.1, "0.1" },
		{ 1.5e-7, "1.5e-07" },
		{ 123456789012345.0, "123456789012345" },
		{ 1e20, "1e+20" },
		{ 1.0 / 3.0, "0.3333333333333333" },
		{ INFINITY, "+Inf" },
		{ -INFINITY, "-Inf" },
		{ NAN, "NaN" },
	};
	(void) state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		mcf_metrics        *reg = new_reg();
		mcf_metrics_family *f;
		char               *want;
		char                buf[160];

		assert_int_equal(
		    mcf_metrics_gauge_register(reg, "g", NULL, NULL, &f),
		    MCF_OK);
		mcf_metrics_gauge_set(series(f, NULL), cases[i].v);
		snprintf(
		    buf, sizeof(buf), "# TYPE g gauge\ng %s\n", cases[i].want);
		want = buf;
		expect_render(reg, want);
		mcf_metrics_destroy(reg);
	}
}

static void
test_metrics_histogram(void **state)
{
	mcf_metrics        *reg = new_reg();
	mcf_metrics_family *h, *h2, *plain;
	mcf_metrics_series *s;
	const double        b[]     = { 0.1, 0.5, 1 };
	const double        b_inf[] = { 0.1, 0.5, 1, INFINITY };

	(void) state;
	assert_int_equal(mcf_metrics_histogram_register(reg, "lat_seconds",
	                     "Latency.", LABELS("op"), b, 3, &h),
	    MCF_OK);
	/* A trailing +Inf bound is the implicit one: same family. */
	assert_int_equal(mcf_metrics_histogram_register(reg, "lat_seconds",
	                     "Latency.", LABELS("op"), b_inf, 4, &h2),
	    MCF_OK);
	assert_ptr_equal(h, h2);
	assert_int_equal(mcf_metrics_histogram_register(
	                     reg, "plain", NULL, NULL, NULL, 0, &plain),
	    MCF_OK);

	s = series(h, VALUES("get"));
	mcf_metrics_histogram_observe(s, 0.05);
	mcf_metrics_histogram_observe(s, 0.1); /* le is inclusive */
	mcf_metrics_histogram_observe(s, 0.3);
	mcf_metrics_histogram_observe(s, 2);
	mcf_metrics_histogram_observe(s, 0.75);
	mcf_metrics_histogram_observe(series(plain, NULL), 7);

	expect_render(reg,
	    "# HELP lat_seconds Latency.\n"
	    "# TYPE lat_seconds histogram\n"
	    "lat_seconds_bucket{op=\"get\",le=\"0.1\"} 2\n"
	    "lat_seconds_bucket{op=\"get\",le=\"0.5\"} 3\n"
	    "lat_seconds_bucket{op=\"get\",le=\"1\"} 4\n"
	    "lat_seconds_bucket{op=\"get\",le=\"+Inf\"} 5\n"
	    "lat_seconds_sum{op=\"get\"} 3.2\n"
	    "lat_seconds_count{op=\"get\"} 5\n"
	    "# TYPE plain histogram\n"
	    "plain_bucket{le=\"+Inf\"} 1\n"
	    "plain_sum 7\n"
	    "plain_count 1\n");
	mcf_metrics_destroy(reg);
}

/* ---- concurrency ---- */

#define NTHREADS 4
#define NINCS 100000

struct conc {
	mcf_metrics_family *fam;
	mcf_metrics_family *hist;
	mcf_metrics        *reg;
	atomic_bool         stop;
	int                 id;
};

static void *
inc_main(void *arg)
{
	struct conc        *c = arg;
	mcf_metrics_series *cached, *h;
	char                id[8];

	snprintf(id, sizeof(id), "t%d", c->id);
	assert_int_equal(
	    mcf_metrics_series_get(c->fam, VALUES("cached"), &cached), MCF_OK);
	assert_int_equal(mcf_metrics_series_get(c->hist, NULL, &h), MCF_OK);
	for (int i = 0; i < NINCS; i++) {
		mcf_metrics_series *s;
		/* The label lookup on every increment (shared series and
		 * a per-thread one), and a cached pointer. */
		assert_int_equal(
		    mcf_metrics_series_get(c->fam, VALUES("shared"), &s),
		    MCF_OK);
		mcf_metrics_counter_inc(s);
		assert_int_equal(
		    mcf_metrics_series_get(c->fam, VALUES(id), &s), MCF_OK);
		mcf_metrics_counter_inc(s);
		mcf_metrics_counter_inc(cached);
		mcf_metrics_histogram_observe(h, (double) (i % 4));
	}
	return NULL;
}

static void *
render_main(void *arg)
{
	struct conc *c = arg;
	while (!atomic_load(&c->stop)) {
		char  *out;
		size_t len;
		assert_int_equal(
		    mcf_metrics_render(c->reg, &out, &len), MCF_OK);
		free(out);
	}
	return NULL;
}

static void
test_metrics_concurrency(void **state)
{
	mcf_metrics        *reg = new_reg();
	mcf_metrics_family *fam, *hist;
	struct conc         c[NTHREADS], rc;
	pthread_t           th[NTHREADS], rth;
	const double        b[] = { 0.5, 1.5, 2.5 };
	char               *out;
	size_t              len;

	(void) state;
	assert_int_equal(mcf_metrics_counter_register(
	                     reg, "ops_total", "Ops.", LABELS("who"), &fam),
	    MCF_OK);
	assert_int_equal(mcf_metrics_histogram_register(
	                     reg, "vals", NULL, NULL, b, 3, &hist),
	    MCF_OK);
	memset(&rc, 0, sizeof(rc));
	rc.reg = reg;
	atomic_init(&rc.stop, false);
	assert_int_equal(pthread_create(&rth, NULL, render_main, &rc), 0);
	for (int i = 0; i < NTHREADS; i++) {
		c[i].fam  = fam;
		c[i].hist = hist;
		c[i].id   = i;
		assert_int_equal(
		    pthread_create(&th[i], NULL, inc_main, &c[i]), 0);
	}
	for (int i = 0; i < NTHREADS; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);
	atomic_store(&rc.stop, true);
	assert_int_equal(pthread_join(rth, NULL), 0);

	assert_true(mcf_metrics_series_value(series(fam, VALUES("shared")))
	    == (double) NTHREADS * NINCS);
	assert_true(mcf_metrics_series_value(series(fam, VALUES("cached")))
	    == (double) NTHREADS * NINCS);
	for (int i = 0; i < NTHREADS; i++) {
		char id[8];
		snprintf(id, sizeof(id), "t%d", i);
		assert_true(mcf_metrics_series_value(series(fam, VALUES(id)))
		    == (double) NINCS);
	}
	/* Values 0,1,2,3 in turn: a quarter in each bucket; the sum is
	 * exact in doubles (integers far below 2^53). */
	assert_int_equal(mcf_metrics_render(reg, &out, &len), MCF_OK);
	assert_non_null(strstr(out, "ops_total{who=\"shared\"} 400000\n"));
	assert_non_null(strstr(out, "ops_total{who=\"t3\"} 100000\n"));
	assert_non_null(strstr(out,
	    "vals_bucket{le=\"0.5\"} 100000\n"
	    "vals_bucket{le=\"1.5\"} 200000\n"
	    "vals_bucket{le=\"2.5\"} 300000\n"
	    "vals_bucket{le=\"+Inf\"} 400000\n"
	    "vals_sum 600000\n"
	    "vals_count 400000\n"));
	free(out);
	mcf_metrics_destroy(reg);
}

/* ---- collectors ---- */

/* A stand-in for a work queue exposing its own snapshot. */
struct fake_queue {
	const char *name;
	double      depth;
	uint64_t    adds;
	int         calls;
};

static void
queue_collect(mcf_metrics_writer *w, void *arg)
{
	struct fake_queue *q        = arg;
	const double       b[]      = { 0.01, 1 };
	const uint64_t     cum[]    = { 1, 2 };
	const char *const  labels[] = { "name", q->name, NULL };

	q->calls++;
	assert_int_equal(mcf_metrics_write_gauge(w, "workqueue_depth",
	                     "Current depth of the queue.", labels, q->depth),
	    MCF_OK);
	assert_int_equal(mcf_metrics_write_counter(w, "workqueue_adds_total",
	                     "Adds.", labels, (double) q->adds),
	    MCF_OK);
	assert_int_equal(
	    mcf_metrics_write_histogram(w, "workqueue_work_duration_seconds",
	        NULL, labels, b, cum, 2, 3, 4.25),
	    MCF_OK);
}

static void
other_collect(mcf_metrics_writer *w, void *arg)
{
	(void) arg;
	/* No labels, and no help on first sight: a later help fills it. */
	assert_int_equal(
	    mcf_metrics_write_gauge(w, "build_info", NULL, NULL, 1), MCF_OK);
	/* Type clash with the registered counter: dropped. */
	assert_int_equal(mcf_metrics_write_gauge(w, "workqueue_adds_total",
	                     NULL, LABELS("name", "z"), 5),
	    MCF_EINVAL);
	/* A duplicate series: the first one emitted wins. */
	assert_int_equal(mcf_metrics_write_gauge(w, "workqueue_depth", NULL,
	                     LABELS("name", "a"), 99),
	    MCF_OK);
}

static void
test_metrics_collector_grouping(void **state)
{
	mcf_metrics        *reg = new_reg();
	struct fake_queue   qa = { "a", 3, 10, 0 }, qb = { "b", 0, 7, 0 };
	mcf_metrics_family *adds;

	(void) state;
	/* A registered family of the same name merges with the
	 * collectors' samples. */
	assert_int_equal(
	    mcf_metrics_counter_register(
	        reg, "workqueue_adds_total", "Adds.", LABELS("name"), &adds),
	    MCF_OK);
	assert_int_equal(
	    mcf_metrics_counter_add(series(adds, VALUES("static")), 2),
	    MCF_OK);
	/* Added b before a: output is sorted regardless. */
	assert_int_equal(
	    mcf_metrics_add_collector(reg, queue_collect, &qb), MCF_OK);
	assert_int_equal(
	    mcf_metrics_add_collector(reg, queue_collect, &qa), MCF_OK);
	assert_int_equal(
	    mcf_metrics_add_collector(reg, other_collect, NULL), MCF_OK);
	assert_int_equal(
	    mcf_metrics_add_collector(reg, queue_collect, &qa), MCF_EEXIST);

	expect_render(reg,
	    "# TYPE build_info gauge\n"
	    "build_info 1\n"
	    "# HELP workqueue_adds_total Adds.\n"
	    "# TYPE workqueue_adds_total counter\n"
	    "workqueue_adds_total{name=\"a\"} 10\n"
	    "workqueue_adds_total{name=\"b\"} 7\n"
	    "workqueue_adds_total{name=\"static\"} 2\n"
	    "# HELP workqueue_depth Current depth of the queue.\n"
	    "# TYPE workqueue_depth gauge\n"
	    "workqueue_depth{name=\"a\"} 3\n"
	    "workqueue_depth{name=\"b\"} 0\n"
	    "# TYPE workqueue_work_duration_seconds histogram\n"
	    "workqueue_work_duration_seconds_bucket{name=\"a\",le=\"0.01\"} "
	    "1\n"
	    "workqueue_work_duration_seconds_bucket{name=\"a\",le=\"1\"} 2\n"
	    "workqueue_work_duration_seconds_bucket{name=\"a\",le=\"+Inf\"} "
	    "3\n"
	    "workqueue_work_duration_seconds_sum{name=\"a\"} 4.25\n"
	    "workqueue_work_duration_seconds_count{name=\"a\"} 3\n"
	    "workqueue_work_duration_seconds_bucket{name=\"b\",le=\"0.01\"} "
	    "1\n"
	    "workqueue_work_duration_seconds_bucket{name=\"b\",le=\"1\"} 2\n"
	    "workqueue_work_duration_seconds_bucket{name=\"b\",le=\"+Inf\"} "
	    "3\n"
	    "workqueue_work_duration_seconds_sum{name=\"b\"} 4.25\n"
	    "workqueue_work_duration_seconds_count{name=\"b\"} 3\n");
	assert_int_equal(qa.calls, 1);
	assert_int_equal(qb.calls, 1);

	assert_int_equal(
	    mcf_metrics_remove_collector(reg, queue_collect, &qa), MCF_OK);
	assert_int_equal(
	    mcf_metrics_remove_collector(reg, queue_collect, &qa), MCF_ENOENT);
	assert_int_equal(
	    mcf_metrics_remove_collector(reg, other_collect, NULL), MCF_OK);
	expect_render(reg,
	    "# HELP workqueue_adds_total Adds.\n"
	    "# TYPE workqueue_adds_total counter\n"
	    "workqueue_adds_total{name=\"b\"} 7\n"
	    "workqueue_adds_total{name=\"static\"} 2\n"
	    "# HELP workqueue_depth Current depth of the queue.\n"
	    "# TYPE workqueue_depth gauge\n"
	    "workqueue_depth{name=\"b\"} 0\n"
	    "# TYPE workqueue_work_duration_seconds histogram\n"
	    "workqueue_work_duration_seconds_bucket{name=\"b\",le=\"0.01\"} "
	    "1\n"
	    "workqueue_work_duration_seconds_bucket{name=\"b\",le=\"1\"} 2\n"
	    "workqueue_work_duration_seconds_bucket{name=\"b\",le=\"+Inf\"} "
	    "3\n"
	    "workqueue_work_duration_seconds_sum{name=\"b\"} 4.25\n"
	    "workqueue_work_duration_seconds_count{name=\"b\"} 3\n");
	assert_int_equal(qa.calls, 1);
	assert_int_equal(qb.calls, 2);
	mcf_metrics_destroy(reg);
}

/* A collector that blocks until released, to remove it mid-render. */
struct blocker {
	pthread_mutex_t mtx;
	pthread_cond_t  cv;
	bool            entered;
	bool            release;
	bool            removed; /* remove_collector returned */
	mcf_metrics    *reg;
};

static void
blocking_collect(mcf_metrics_writer *w, void *arg)
{
	struct blocker *b = arg;
	(void) w;
	pthread_mutex_lock(&b->mtx);
	b->entered = true;
	pthread_cond_broadcast(&b->cv);
	while (!b->release)
		pthread_cond_wait(&b->cv, &b->mtx);
	/* The remover must still be waiting for us. */
	assert_false(b->removed);
	pthread_mutex_unlock(&b->mtx);
}

static void *
render_once_main(void *arg)
{
	struct blocker *b = arg;
	char           *out;
	size_t          len;
	assert_int_equal(mcf_metrics_render(b->reg, &out, &len), MCF_OK);
	free(out);
	return NULL;
}

static void *
remove_main(void *arg)
{
	struct blocker *b = arg;
	assert_int_equal(
	    mcf_metrics_remove_collector(b->reg, blocking_collect, b), MCF_OK);
	pthread_mutex_lock(&b->mtx);
	b->removed = true;
	pthread_cond_broadcast(&b->cv);
	pthread_mutex_unlock(&b->mtx);
	return NULL;
}

static void
test_metrics_collector_remove_waits(void **state)
{
	struct blocker b;
	pthread_t      rth, mth;

	(void) state;
	memset(&b, 0, sizeof(b));
	pthread_mutex_init(&b.mtx, NULL);
	pthread_cond_init(&b.cv, NULL);
	b.reg = new_reg();
	assert_int_equal(
	    mcf_metrics_add_collector(b.reg, blocking_collect, &b), MCF_OK);
	assert_int_equal(pthread_create(&rth, NULL, render_once_main, &b), 0);
	pthread_mutex_lock(&b.mtx);
	while (!b.entered)
		pthread_cond_wait(&b.cv, &b.mtx);
	pthread_mutex_unlock(&b.mtx);

	assert_int_equal(pthread_create(&mth, NULL, remove_main, &b), 0);
	/* Give the remover a moment to block; it must not finish while
	 * the collector runs (checked in blocking_collect). */
	struct timespec ts = { 0, 50 * 1000000L };
	nanosleep(&ts, NULL);
	pthread_mutex_lock(&b.mtx);
	assert_false(b.removed);
	b.release = true;
	pthread_cond_broadcast(&b.cv);
	pthread_mutex_unlock(&b.mtx);

	assert_int_equal(pthread_join(rth, NULL), 0);
	assert_int_equal(pthread_join(mth, NULL), 0);
	assert_true(b.removed);
	/* Gone: a render no longer calls it (it would block forever). */
	b.release = false;
	render_once_main(&b);
	mcf_metrics_destroy(b.reg);
	pthread_cond_destroy(&b.cv);
	pthread_mutex_destroy(&b.mtx);
}

/* ---- errors ---- */

static void
bad_writes(mcf_metrics_writer *w, void *arg)
{
	const double   b[]     = { 1, 2 };
	const double   bdown[] = { 2, 1 };
	const uint64_t cum[]   = { 1, 2 };
	const uint64_t cdown[] = { 2, 1 };
	int           *ok      = arg;

	assert_int_equal(
	    mcf_metrics_write_gauge(w, "1bad", NULL, NULL, 1), MCF_EINVAL);
	assert_int_equal(
	    mcf_metrics_write_gauge(w, "g", NULL, LABELS("odd"), 1),
	    MCF_EINVAL);
	assert_int_equal(
	    mcf_metrics_write_gauge(w, "g", NULL, LABELS("a-b", "x"), 1),
	    MCF_EINVAL);
	assert_int_equal(mcf_metrics_write_gauge(
	                     w, "g", NULL, LABELS("a", "x", "a", "y"), 1),
	    MCF_EINVAL);
	assert_int_equal(
	    mcf_metrics_write_gauge(w, "g", NULL, LABELS("a", "\xff"), 1),
	    MCF_EINVAL);
	assert_int_equal(
	    mcf_metrics_write_counter(w, "c", NULL, NULL, -1), MCF_EINVAL);
	assert_int_equal(
	    mcf_metrics_write_counter(w, "c", NULL, NULL, NAN), MCF_EINVAL);
	assert_int_equal(mcf_metrics_write_histogram(
	                     w, "h", NULL, NULL, bdown, cum, 2, 2, 0),
	    MCF_EINVAL);
	assert_int_equal(
	    mcf_metrics_write_histogram(w, "h", NULL, NULL, b, cdown, 2, 2, 0),
	    MCF_EINVAL);
	assert_int_equal(
	    mcf_metrics_write_histogram(w, "h", NULL, NULL, b, cum, 2, 1, 0),
	    MCF_EINVAL);
	assert_int_equal(mcf_metrics_write_histogram(
	                     w, "h", NULL, LABELS("le", "1"), b, cum, 2, 2, 0),
	    MCF_EINVAL);
	/* A good one, then clashes with it. */
	assert_int_equal(
	    mcf_metrics_write_histogram(w, "h", NULL, NULL, b, cum, 2, 2, 3),
	    MCF_OK);
	assert_int_equal(
	    mcf_metrics_write_gauge(w, "h_count", NULL, NULL, 1), MCF_EINVAL);
	assert_int_equal(
	    mcf_metrics_write_counter(w, "h", NULL, NULL, 1), MCF_EINVAL);
	/* A gauge named like a histogram's series blocks that
	 * histogram. */
	assert_int_equal(
	    mcf_metrics_write_gauge(w, "k_sum", NULL, NULL, 1), MCF_OK);
	assert_int_equal(
	    mcf_metrics_write_histogram(w, "k", NULL, NULL, b, cum, 2, 2, 3),
	    MCF_EINVAL);
	(*ok)++;
}

static void
test_metrics_errors(void **state)
{
	mcf_metrics        *reg = new_reg();
	mcf_metrics_family *f = NULL, *h = NULL, *keep;
	mcf_metrics_series *s           = NULL;
	const double        b[]         = { 1, 2 };
	const double        bad_order[] = { 2, 1 };
	const double        dup[]       = { 1, 1 };
	const double        nan_b[]     = { NAN };
	const double        other[]     = { 1, 3 };
	int                 ok          = 0;

	(void) state;
	/* Names. */
	assert_false(mcf_metrics_name_valid(""));
	assert_false(mcf_metrics_name_valid("9lives"));
	assert_false(mcf_metrics_name_valid("a-b"));
	assert_false(mcf_metrics_name_valid("a b"));
	assert_true(mcf_metrics_name_valid("a:b_c9"));
	assert_true(mcf_metrics_name_valid("_x"));
	assert_false(mcf_metrics_label_name_valid("a:b"));
	assert_false(mcf_metrics_label_name_valid("__reserved"));
	assert_false(mcf_metrics_label_name_valid("0a"));
	assert_true(mcf_metrics_label_name_valid("_a0"));
	assert_int_equal(
	    mcf_metrics_counter_register(reg, "bad-name", NULL, NULL, &f),
	    MCF_EINVAL);
	assert_int_equal(
	    mcf_metrics_counter_register(reg, NULL, NULL, NULL, &f),
	    MCF_EINVAL);
	assert_int_equal(
	    mcf_metrics_counter_register(reg, "c", NULL, LABELS("__x"), &f),
	    MCF_EINVAL);
	assert_int_equal(
	    mcf_metrics_counter_register(reg, "c", NULL, LABELS("a", "a"), &f),
	    MCF_EINVAL);
	assert_int_equal(mcf_metrics_histogram_register(
	                     reg, "h", NULL, LABELS("le"), b, 2, &f),
	    MCF_EINVAL);
	assert_int_equal(mcf_metrics_histogram_register(
	                     reg, "h", NULL, NULL, bad_order, 2, &f),
	    MCF_EINVAL);
	assert_int_equal(
	    mcf_metrics_histogram_register(reg, "h", NULL, NULL, dup, 2, &f),
	    MCF_EINVAL);
	assert_int_equal(
	    mcf_metrics_histogram_register(reg, "h", NULL, NULL, nan_b, 1, &f),
	    MCF_EINVAL);
	assert_int_equal(
	    mcf_metrics_histogram_register(reg, "h", NULL, NULL, NULL, 2, &f),
	    MCF_EINVAL);
	assert_null(f); /* untouched on failure */

	/* Re-registration with another type, labels or bounds. */
	assert_int_equal(mcf_metrics_counter_register(
	                     reg, "c", NULL, LABELS("a", "b"), &keep),
	    MCF_OK);
	assert_int_equal(
	    mcf_metrics_gauge_register(reg, "c", NULL, LABELS("a", "b"), &f),
	    MCF_EINVAL);
	assert_int_equal(
	    mcf_metrics_counter_register(reg, "c", NULL, LABELS("b", "a"), &f),
	    MCF_EINVAL);
	assert_int_equal(
	    mcf_metrics_counter_register(reg, "c", NULL, LABELS("a"), &f),
	    MCF_EINVAL);
	assert_int_equal(
	    mcf_metrics_counter_register(reg, "c", NULL, NULL, &f),
	    MCF_EINVAL);
	assert_null(f);
	assert_int_equal(
	    mcf_metrics_histogram_register(reg, "h", NULL, NULL, b, 2, &h),
	    MCF_OK);
	assert_int_equal(
	    mcf_metrics_histogram_register(reg, "h", NULL, NULL, other, 2, &f),
	    MCF_EINVAL);
	assert_int_equal(
	    mcf_metrics_gauge_register(reg, "h_bucket", NULL, NULL, &f),
	    MCF_EINVAL);
	assert_int_equal(
	    mcf_metrics_gauge_register(reg, "j_count", NULL, NULL, &f),
	    MCF_OK);
	assert_int_equal(
	    mcf_metrics_histogram_register(reg, "j", NULL, NULL, b, 2, &f),
	    MCF_EINVAL);

	/* Series. */
	assert_int_equal(mcf_metrics_series_get(keep, NULL, &s), MCF_EINVAL);
	assert_int_equal(
	    mcf_metrics_series_get(keep, VALUES("x", NULL), &s), MCF_EINVAL);
	assert_int_equal(mcf_metrics_series_get(
	                     keep, VALUES("x", "\xc0\xaf"), &s), /* overlong */
	    MCF_EINVAL);
	assert_int_equal(mcf_metrics_series_get(
	                     keep, VALUES("x", "\xed\xa0\x80"), &s), /* D800 */
	    MCF_EINVAL);
	assert_null(s);
	s = series(keep, VALUES("x", "y"));
	assert_int_equal(mcf_metrics_counter_add(s, -1), MCF_EINVAL);
	assert_int_equal(mcf_metrics_counter_add(s, NAN), MCF_EINVAL);
	assert_true(mcf_metrics_series_value(s) == 0);

	/* Collectors. */
	assert_int_equal(
	    mcf_metrics_add_collector(reg, NULL, NULL), MCF_EINVAL);
	assert_int_equal(
	    mcf_metrics_remove_collector(reg, bad_writes, &ok), MCF_ENOENT);
	assert_int_equal(
	    mcf_metrics_add_collector(reg, bad_writes, &ok), MCF_OK);
	expect_render(reg,
	    "# TYPE c counter\n"
	    "c{a=\"x\",b=\"y\"} 0\n"
	    "# TYPE h histogram\n"
	    "h_bucket{le=\"1\"} 0\n"
	    "h_bucket{le=\"2\"} 0\n"
	    "h_bucket{le=\"+Inf\"} 0\n"
	    "h_sum 0\n"
	    "h_count 0\n"
	    "# TYPE j_count gauge\n"
	    "j_count 0\n"
	    "# TYPE k_sum gauge\n"
	    "k_sum 1\n");
	assert_int_equal(ok, 1);
	mcf_metrics_destroy(reg);
	mcf_metrics_destroy(NULL);
}

/* The process-wide registry: one instance, usable like any other. */
static void
test_metrics_default_registry(void **state)
{
	mcf_metrics        *d = mcf_metrics_default();
	mcf_metrics_family *f;
	char               *out;
	size_t              len;

	(void) state;
	assert_non_null(d);
	assert_ptr_equal(mcf_metrics_default(), d);
	assert_int_equal(
	    mcf_metrics_counter_register(
	        d, "metrics_test_default_total", "Default.", NULL, &f),
	    MCF_OK);
	mcf_metrics_counter_inc(series(f, NULL));
	assert_int_equal(mcf_metrics_render(d, &out, &len), MCF_OK);
	assert_non_null(strstr(out,
	    "# HELP metrics_test_default_total Default.\n"
	    "# TYPE metrics_test_default_total counter\n"
	    "metrics_test_default_total 1\n"));
	free(out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_metrics_render_exact),
		cmocka_unit_test(test_metrics_escaping),
		cmocka_unit_test(test_metrics_floats),
		cmocka_unit_test(test_metrics_histogram),
		cmocka_unit_test(test_metrics_concurrency),
		cmocka_unit_test(test_metrics_collector_grouping),
		cmocka_unit_test(test_metrics_collector_remove_waits),
		cmocka_unit_test(test_metrics_errors),
		cmocka_unit_test(test_metrics_default_registry),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

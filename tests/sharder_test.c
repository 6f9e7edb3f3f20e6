/*
 * sharder_test.c — tests for common/sharder.c: determinism (and a golden
 * table that pins the hash across versions), independence from input
 * order, one owner per project, the load bound on many random sets,
 * minimal movement when a worker joins or leaves (bound off, bound on but
 * not binding, bound binding), weighted shares, names that would collide
 * under concatenation, zero and one worker, the helpers (caps, loads,
 * count_moves), input errors, and 10,000 x 100 in bounded time.
 *
 * Random inputs come from a fixed-seed splitmix64, so every run sees the
 * same sets.  Statistical bounds are five standard deviations wide.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "alloc.h"
#include "err.h"
#include "sharder.h"

/* ------------------------------------------------------------------ */
/* Helpers                                                              */
/* ------------------------------------------------------------------ */

static uint64_t
rnd(uint64_t *s)
{
	uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));
	z          = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z          = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

/* Uniform in [0, n). */
static size_t
rnd_below(uint64_t *s, size_t n)
{
	return (size_t) (rnd(s) % n);
}

/* n project names "<prefix>-<i>" (sequential, the kind of names real
 * fleets have). */
static char **
names_new(const char *prefix, size_t n)
{
	char **v = mcf_calloc(n > 0 ? n : 1, sizeof(*v));
	for (size_t i = 0; i < n; i++)
		v[i] = mcf_asprintf("%s-%zu", prefix, i);
	return v;
}

static void
names_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* n workers "mcfleet-worker-<i>" of weight 1; names owned by the array. */
static mcf_sharder_worker *
workers_new(size_t n)
{
	mcf_sharder_worker *w = mcf_calloc(n > 0 ? n : 1, sizeof(*w));
	for (size_t i = 0; i < n; i++) {
		w[i].name   = mcf_asprintf("mcfleet-worker-%zu", i);
		w[i].weight = 1;
	}
	return w;
}

static void
workers_free(mcf_sharder_worker *w, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free((char *) w[i].name);
	free(w);
}

static int *
assign(char **projects, size_t np, const mcf_sharder_worker *w, size_t nw,
    double eps)
{
	int        *owner = mcf_calloc(np > 0 ? np : 1, sizeof(*owner));
	mcf_errinfo ei;
	int         rc = mcf_sharder_assign(
	            (const char *const *) projects, np, w, nw, eps, owner, &ei);
	if (rc != MCF_OK)
		fail_msg("assign: %s: %s", mcf_err_name(rc), ei.msg);
	return owner;
}

static size_t *
loads_of(const int *owner, size_t np, size_t nw)
{
	size_t *l    = mcf_calloc(nw > 0 ? nw : 1, sizeof(*l));
	size_t  none = 99;
	assert_int_equal(mcf_sharder_loads(owner, np, nw, l, &none), MCF_OK);
	assert_int_equal(none, 0);
	return l;
}

static mcf_sharder_moves
moves_between(char **p0, size_t np0, const mcf_sharder_worker *w0, size_t nw0,
    const int *o0, char **p1, size_t np1, const mcf_sharder_worker *w1,
    size_t nw1, const int *o1)
{
	mcf_sharder_table a = { (const char *const *) p0, np0, w0, nw0, o0 };
	mcf_sharder_table b = { (const char *const *) p1, np1, w1, nw1, o1 };
	mcf_sharder_moves m;
	assert_int_equal(mcf_sharder_count_moves(&a, &b, &m), MCF_OK);
	return m;
}

/* The load bound, computed independently of sharder.c: in long double,
 * with an absolute slack of 1e-6 against float noise. */
static size_t
bound_of(
    const mcf_sharder_worker *w, size_t nw, size_t j, size_t np, double eps)
{
	if (isinf(eps))
		return np;
	long double total = 0;
	for (size_t k = 0; k < nw; k++)
		total += w[k].weight;
	long double x = (1.0L + eps) * w[j].weight / total * np;
	return (size_t) ceill(x - 1e-6L);
}

static int64_t
mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ------------------------------------------------------------------ */
/* Tests                                                                */
/* ------------------------------------------------------------------ */

/* A fixed table, pinned: changing the hash, the key, the score or the
 * placement order would reshuffle every fleet during a rolling upgrade
 * (two leaders of different versions must build the same table), so such
 * a change must fail here and be made on purpose. */
static void
test_sharder_golden(void **state)
{
	const char        *projects[] = { "alpha", "beta", "gamma", "delta",
		       "epsilon", "zeta", "eta", "theta", "iota", "kappa" };
	mcf_sharder_worker workers[]  = { { "mcfleet-worker-0", 1 },
		 { "mcfleet-worker-1", 2 }, { "mcfleet-worker-2", 1 } };
	/* Without the bound worker-0 gets 4 of 10; its cap is
	 * ceil(1.1 * 10 / 4) = 3, so with it "delta" goes to worker-1. */
	const int    want_inf[] = { 0, 1, 2, 0, 2, 0, 1, 2, 0, 1 };
	const int    want_eps[] = { 0, 1, 2, 1, 2, 0, 1, 2, 0, 1 };
	const double s0 = 26.264649637637916, s1 = 9.6997559474669703;
	int          owner[10];

	assert_int_equal(mcf_sharder_assign(
	                     projects, 10, workers, 3, INFINITY, owner, NULL),
	    MCF_OK);
	assert_memory_equal(owner, want_inf, sizeof(owner));
	assert_int_equal(mcf_sharder_assign(projects, 10, workers, 3,
	                     MCF_SHARDER_EPSILON, owner, NULL),
	    MCF_OK);
	assert_memory_equal(owner, want_eps, sizeof(owner));
	assert_true(
	    fabs(mcf_sharder_score("alpha", "mcfleet-worker-0", 1) - s0)
	    < 1e-12 * s0);
	assert_true(
	    fabs(mcf_sharder_score("kappa", "mcfleet-worker-1", 2) - s1)
	    < 1e-12 * s1);
}

static void
test_sharder_deterministic(void **state)
{
	size_t              np = 3000, nw = 7;
	char              **p = names_new("team/proj", np);
	mcf_sharder_worker *w = workers_new(nw);
	w[3].weight           = 2.5;
	double eps[]          = { 0, MCF_SHARDER_EPSILON, INFINITY };
	for (size_t e = 0; e < 3; e++) {
		int *a = assign(p, np, w, nw, eps[e]);
		int *b = assign(p, np, w, nw, eps[e]);
		assert_memory_equal(a, b, np * sizeof(int));
		free(a);
		free(b);
	}
	names_free(p, np);
	workers_free(w, nw);
}

/* A new leader gets the same sets in some other order: shuffle projects
 * and workers and compare owners by name. */
static void
test_sharder_order_independent(void **state)
{
	size_t              np = 2000, nw = 9;
	char              **p = names_new("proj", np);
	mcf_sharder_worker *w = workers_new(nw);
	uint64_t            s = 42;
	for (size_t j = 0; j < nw; j++)
		w[j].weight = 0.5 + (double) (j % 4) * 0.75;
	char              **pp = mcf_calloc(np, sizeof(*pp));
	mcf_sharder_worker *wp = mcf_calloc(nw, sizeof(*wp));
	size_t             *pi = mcf_calloc(np, sizeof(*pi));
	size_t             *wi = mcf_calloc(nw, sizeof(*wi));
	/* epsilon 0 makes the bound bind hard: the placement order then
	 * matters most. */
	double eps[] = { 0, MCF_SHARDER_EPSILON, INFINITY };
	for (size_t e = 0; e < 3; e++) {
		int *ref = assign(p, np, w, nw, eps[e]);
		for (int round = 0; round < 8; round++) {
			for (size_t i = 0; i < np; i++)
				pi[i] = i;
			for (size_t j = 0; j < nw; j++)
				wi[j] = j;
			for (size_t i = np - 1; i > 0; i--) {
				size_t k = rnd_below(&s, i + 1), t = pi[i];
				pi[i] = pi[k];
				pi[k] = t;
			}
			for (size_t j = nw - 1; j > 0; j--) {
				size_t k = rnd_below(&s, j + 1), t = wi[j];
				wi[j] = wi[k];
				wi[k] = t;
			}
			for (size_t i = 0; i < np; i++)
				pp[i] = p[pi[i]];
			for (size_t j = 0; j < nw; j++)
				wp[j] = w[wi[j]];
			int *o = assign(pp, np, wp, nw, eps[e]);
			for (size_t i = 0; i < np; i++)
				assert_string_equal(
				    wp[o[i]].name, w[ref[pi[i]]].name);
			free(o);
		}
		free(ref);
	}
	free(pp);
	free(wp);
	free(pi);
	free(wi);
	names_free(p, np);
	workers_free(w, nw);
}

/* The score is what assign ranks by: with the bound off, every project
 * sits on its highest-scoring worker. */
static void
test_sharder_score_matches_assign(void **state)
{
	size_t              np = 500, nw = 6;
	char              **p = names_new("x", np);
	mcf_sharder_worker *w = workers_new(nw);
	w[1].weight           = 3;
	w[4].weight           = 0.25;
	int *o                = assign(p, np, w, nw, INFINITY);
	for (size_t i = 0; i < np; i++) {
		size_t best = 0;
		double bs   = -1;
		for (size_t j = 0; j < nw; j++) {
			double sc
			    = mcf_sharder_score(p[i], w[j].name, w[j].weight);
			assert_true(sc > 0 && isfinite(sc));
			if (sc > bs) {
				bs   = sc;
				best = j;
			}
		}
		assert_int_equal(o[i], (int) best);
	}
	free(o);
	names_free(p, np);
	workers_free(w, nw);
}

/* Many random sets: every project has exactly one valid owner, the loads
 * sum to P and no worker exceeds ceil((1+eps) * w_i / sum(w) * P); the
 * caps the module reports are within the same bound and sum to >= P. */
static void
test_sharder_load_bound(void **state)
{
	uint64_t     s       = 7;
	const double epss[]  = { 0, 0.01, 0.05, MCF_SHARDER_EPSILON, 0.5, 1 };
	size_t       binding = 0;
	for (int set = 0; set < 150; set++) {
		size_t np = rnd_below(&s, 2500);
		size_t nw = 1 + rnd_below(&s, 30);
		double eps
		    = epss[rnd_below(&s, sizeof(epss) / sizeof(epss[0]))];
		char              **p = mcf_calloc(np + 1, sizeof(*p));
		mcf_sharder_worker *w = workers_new(nw);
		for (size_t i = 0; i < np; i++)
			p[i] = mcf_asprintf(
			    "s%d-%016llx", set, (unsigned long long) rnd(&s));
		int kind = (int) rnd_below(&s, 3);
		for (size_t j = 0; j < nw; j++)
			w[j].weight = kind == 0 ? 1
			    : kind == 1
			    ? (double) (1 + rnd_below(&s, 4))
			    : 0.1 + (double) rnd_below(&s, 1000) / 100;
		int    *o     = assign(p, np, w, nw, eps);
		size_t *l     = loads_of(o, np, nw);
		size_t *caps  = mcf_calloc(nw, sizeof(*caps));
		size_t  total = 0, capsum = 0;
		assert_int_equal(
		    mcf_sharder_caps(w, nw, np, eps, caps, NULL), MCF_OK);
		for (size_t j = 0; j < nw; j++) {
			size_t b = bound_of(w, nw, j, np, eps);
			if (l[j] > b || caps[j] > b)
				fail_msg(
				    "set %d (P %zu, W %zu, eps %g): "
				    "worker %zu load %zu cap %zu bound %zu",
				    set, np, nw, eps, j, l[j], caps[j], b);
			assert_true(l[j] <= caps[j]);
			binding += l[j] == caps[j];
			total += l[j];
			capsum += caps[j];
		}
		assert_int_equal(total, np);
		assert_true(capsum >= np);
		free(caps);
		free(l);
		free(o);
		names_free(p, np);
		workers_free(w, nw);
	}
	/* The sets must have exercised the bound, not only sat under it. */
	assert_true(binding > 50);
}

/* epsilon 0 with equal weights and P divisible by W: perfect balance. */
static void
test_sharder_epsilon_zero_balanced(void **state)
{
	size_t              np = 1200, nw = 8;
	char              **p = names_new("balanced", np);
	mcf_sharder_worker *w = workers_new(nw);
	int                *o = assign(p, np, w, nw, 0);
	size_t             *l = loads_of(o, np, nw);
	for (size_t j = 0; j < nw; j++)
		assert_int_equal(l[j], np / nw);
	free(l);
	free(o);
	names_free(p, np);
	workers_free(w, nw);
}

/* n -> n+1 workers over P projects: checks that moved projects only go to
 * the new worker and how many move, for one epsilon.  Returns the number
 * moved. */
static size_t
check_add(size_t np, size_t n, double eps, const char *prefix, bool strict)
{
	char              **p     = names_new(prefix, np);
	mcf_sharder_worker *w     = workers_new(n + 1);
	int                *o0    = assign(p, np, w, n, eps);
	int                *o1    = assign(p, np, w, n + 1, eps);
	size_t             *l1    = loads_of(o1, np, n + 1);
	size_t              moved = 0, elsewhere = 0;
	for (size_t i = 0; i < np; i++) {
		if (o0[i] == o1[i])
			continue;
		moved++;
		if (o1[i] != (int) n)
			elsewhere++;
	}
	mcf_sharder_moves m
	    = moves_between(p, np, w, n, o0, p, np, w, n + 1, o1);
	assert_int_equal(m.moved, moved);
	assert_int_equal(m.kept, np - moved);
	assert_int_equal(m.gained, 0);
	assert_int_equal(m.dropped, 0);
	if (strict) {
		/* Only projects the new worker wins move. */
		assert_int_equal(elsewhere, 0);
		assert_int_equal(moved, l1[n]);
	}
	free(l1);
	free(o0);
	free(o1);
	names_free(p, np);
	workers_free(w, n + 1);
	return moved;
}

/* n+1 -> n by removing worker `gone`: returns the number moved and checks
 * that, when `strict`, only the removed worker's projects move. */
static size_t
check_remove(size_t np, size_t n, size_t gone, double eps, const char *prefix,
    bool strict, size_t *gone_load)
{
	char              **p  = names_new(prefix, np);
	mcf_sharder_worker *w  = workers_new(n + 1);
	mcf_sharder_worker *wr = mcf_calloc(n, sizeof(*wr));
	for (size_t j = 0, k = 0; j <= n; j++)
		if (j != gone)
			wr[k++] = w[j];
	int    *o0    = assign(p, np, w, n + 1, eps);
	int    *o1    = assign(p, np, wr, n, eps);
	size_t *l0    = loads_of(o0, np, n + 1);
	size_t  moved = 0, others = 0;
	for (size_t i = 0; i < np; i++) {
		if (strcmp(w[o0[i]].name, wr[o1[i]].name) == 0)
			continue;
		moved++;
		if (o0[i] != (int) gone)
			others++;
	}
	mcf_sharder_moves m
	    = moves_between(p, np, w, n + 1, o0, p, np, wr, n, o1);
	assert_int_equal(m.moved, moved);
	assert_true(moved >= l0[gone]);
	if (strict) {
		assert_int_equal(others, 0);
		assert_int_equal(moved, l0[gone]);
	}
	*gone_load = l0[gone];
	free(l0);
	free(o0);
	free(o1);
	free(wr);
	names_free(p, np);
	workers_free(w, n + 1);
	return moved;
}

/* Bound off: plain rendezvous, movement is minimal by construction; the
 * new worker takes about P/(n+1) (binomial, 5 sigma). */
static void
test_sharder_add_worker_unbounded(void **state)
{
	size_t np = 10000;
	for (size_t n = 1; n <= 10; n += 3) {
		size_t moved = check_add(np, n, INFINITY, "u", true);
		double want  = (double) np / (double) (n + 1);
		double sigma = sqrt(np * (1.0 / (n + 1)) * (n / (n + 1.0)));
		assert_true(fabs((double) moved - want) <= 5 * sigma);
	}
}

/* Bound on (epsilon 0.1) at 10,000 projects: the caps sit 3 to 7
 * standard deviations above the shares, so they rarely bind (for these
 * names, never) and the movement is the same as without them. */
static void
test_sharder_add_worker_bounded(void **state)
{
	size_t np = 10000;
	for (size_t n = 2; n <= 10; n += 4) {
		size_t moved
		    = check_add(np, n, MCF_SHARDER_EPSILON, "b", true);
		double want  = (double) np / (double) (n + 1);
		double sigma = sqrt(np * (1.0 / (n + 1)) * (n / (n + 1.0)));
		assert_true(fabs((double) moved - want) <= 5 * sigma);
	}
}

/* A binding bound (few projects per worker, small epsilon): some extra
 * projects move between old workers, but the bound holds and the total
 * stays near the minimum. */
static void
test_sharder_add_worker_binding(void **state)
{
	size_t moved = 0, want = 0;
	char   prefix[32];
	for (int seed = 0; seed < 20; seed++) {
		snprintf(prefix, sizeof(prefix), "bind%d", seed);
		moved += check_add(400, 5, 0.02, prefix, false);
		want += 400 / 6;
	}
	assert_true(moved >= want * 9 / 10);
	assert_true(moved <= want * 5 / 4);
}

static void
test_sharder_remove_worker(void **state)
{
	size_t gl, moved;
	/* Bound off, bound on at 10,000: only the removed worker's
	 * projects move, whichever worker goes. */
	for (size_t gone = 0; gone <= 6; gone += 3) {
		moved = check_remove(10000, 6, gone, INFINITY, "r", true, &gl);
		assert_int_equal(moved, gl);
		moved = check_remove(
		    10000, 6, gone, MCF_SHARDER_EPSILON, "r", true, &gl);
		assert_int_equal(moved, gl);
	}
	/* Binding: the others' diverted projects may go home too. */
	size_t total = 0, minimum = 0;
	char   prefix[32];
	for (int seed = 0; seed < 20; seed++) {
		snprintf(prefix, sizeof(prefix), "rbind%d", seed);
		total += check_remove(400, 5, 2, 0.02, prefix, false, &gl);
		minimum += gl;
	}
	assert_true(total <= minimum * 5 / 4);
}

/* One worker of weight 2 among weight-1 workers gets twice their share;
 * scaling all weights by 4 (exact in binary) changes nothing. */
static void
test_sharder_weights(void **state)
{
	size_t              np = 12000, nw = 5;
	char              **p = names_new("wt", np);
	mcf_sharder_worker *w = workers_new(nw);
	w[2].weight           = 2;
	double eps[]          = { INFINITY, MCF_SHARDER_EPSILON };
	for (int e = 0; e < 2; e++) {
		int    *o = assign(p, np, w, nw, eps[e]);
		size_t *l = loads_of(o, np, nw);
		for (size_t j = 0; j < nw; j++) {
			double share = w[j].weight / 6.0;
			double want  = np * share;
			double sigma = sqrt(np * share * (1 - share));
			if (fabs((double) l[j] - want) > 5 * sigma)
				fail_msg("eps %g worker %zu: %zu, want %.0f",
				    eps[e], j, l[j], want);
		}
		for (size_t j = 0; j < nw; j++)
			w[j].weight *= 4;
		int *o4 = assign(p, np, w, nw, eps[e]);
		assert_memory_equal(o, o4, np * sizeof(int));
		for (size_t j = 0; j < nw; j++)
			w[j].weight /= 4;
		free(o4);
		free(l);
		free(o);
	}
	/* A fractional weight works the same way. */
	w[2].weight = 1;
	w[0].weight = 0.5;
	int    *o   = assign(p, np, w, nw, INFINITY);
	size_t *l   = loads_of(o, np, nw);
	double  sh = 0.5 / 4.5, sigma = sqrt(np * sh * (1 - sh));
	assert_true(fabs((double) l[0] - np * sh) <= 5 * sigma);
	free(l);
	free(o);
	names_free(p, np);
	workers_free(w, nw);
}

/* Names that collide when concatenated ("worker-1" + "1x" and
 * "worker-11" + "x") score differently, and workers named as prefixes of
 * each other split projects evenly. */
static void
test_sharder_name_collision(void **state)
{
	char buf1[64], buf2[64];
	for (int i = 0; i < 1000; i++) {
		snprintf(buf1, sizeof(buf1), "1x%d", i);
		snprintf(buf2, sizeof(buf2), "x%d", i);
		assert_true(mcf_sharder_score(buf1, "worker-1", 1)
		    != mcf_sharder_score(buf2, "worker-11", 1));
		/* A project and a worker swapping names. */
		assert_true(mcf_sharder_score(buf1, buf2, 1)
		    != mcf_sharder_score(buf2, buf1, 1));
	}
	assert_true(mcf_sharder_score("", "worker-11", 1)
	    != mcf_sharder_score("1", "worker-1", 1));

	/* Workers worker-1, worker-11, worker-111 and projects "0x", "1",
	 * "2", "3x", ...: names that are prefixes of one another, which is
	 * what breaks a hash of the concatenation. */
	mcf_sharder_worker w[]
	    = { { "worker-1", 1 }, { "worker-11", 1 }, { "worker-111", 1 } };
	size_t np = 9000;
	char **p  = mcf_calloc(np, sizeof(*p));
	for (size_t i = 0; i < np; i++)
		p[i] = mcf_asprintf("%zu%s", i, i % 3 == 0 ? "x" : "");
	int    *o     = assign(p, np, w, 3, INFINITY);
	size_t *l     = loads_of(o, np, 3);
	double  sigma = sqrt(np * (1.0 / 3) * (2.0 / 3));
	for (size_t j = 0; j < 3; j++)
		assert_true(fabs((double) l[j] - np / 3.0) <= 5 * sigma);
	free(l);
	free(o);
	names_free(p, np);
}

static void
test_sharder_zero_workers(void **state)
{
	const char        *p[]  = { "a", "b", "c" };
	int                o[3] = { 7, 7, 7 };
	mcf_errinfo        ei;
	mcf_sharder_worker none;
	assert_int_equal(
	    mcf_sharder_assign(p, 3, NULL, 0, MCF_SHARDER_EPSILON, o, &ei),
	    MCF_EUNAVAIL);
	assert_int_equal(ei.code, MCF_EUNAVAIL);
	for (int i = 0; i < 3; i++)
		assert_int_equal(o[i], MCF_SHARDER_NONE);
	assert_int_equal(mcf_sharder_assign(p, 3, &none, 0, INFINITY, o, NULL),
	    MCF_EUNAVAIL);
	/* Input errors still win over "no workers". */
	const char *dup[] = { "a", "a" };
	o[0]              = 7;
	assert_int_equal(
	    mcf_sharder_assign(dup, 2, NULL, 0, 0.1, o, NULL), MCF_EINVAL);
	assert_int_equal(o[0], 7);
	size_t loads, un = 0;
	int    all_none[3]
	    = { MCF_SHARDER_NONE, MCF_SHARDER_NONE, MCF_SHARDER_NONE };
	assert_int_equal(mcf_sharder_loads(all_none, 3, 0, &loads, &un), 0);
	assert_int_equal(un, 3);
}

static void
test_sharder_one_worker(void **state)
{
	size_t             np    = 100;
	char             **p     = names_new("one", np);
	mcf_sharder_worker w[]   = { { "solo", 0.3 } };
	double             eps[] = { 0, MCF_SHARDER_EPSILON, INFINITY };
	for (int e = 0; e < 3; e++) {
		int *o = assign(p, np, w, 1, eps[e]);
		for (size_t i = 0; i < np; i++)
			assert_int_equal(o[i], 0);
		free(o);
	}
	names_free(p, np);
}

static void
test_sharder_no_projects(void **state)
{
	mcf_sharder_worker w[] = { { "a", 1 }, { "b", 1 } };
	size_t             caps[2];
	assert_int_equal(
	    mcf_sharder_assign(NULL, 0, w, 2, 0.1, NULL, NULL), MCF_OK);
	assert_int_equal(mcf_sharder_caps(w, 2, 0, 0.1, caps, NULL), MCF_OK);
	assert_int_equal(caps[0], 0);
	assert_int_equal(caps[1], 0);
}

static void
test_sharder_errors(void **state)
{
	const char        *p[]  = { "a", "b" };
	const char        *pn[] = { "a", NULL };
	int                o[2] = { 5, 5 };
	mcf_errinfo        ei;
	mcf_sharder_worker ok[]  = { { "w0", 1 }, { "w1", 2 } };
	mcf_sharder_worker dup[] = { { "w0", 1 }, { "w1", 1 }, { "w0", 2 } };
	mcf_sharder_worker noname[] = { { "w0", 1 }, { NULL, 1 } };
	mcf_sharder_worker bad[][1] = { { { "w", 0 } }, { { "w", -1 } },
		{ { "w", NAN } }, { { "w", INFINITY } } };

	assert_int_equal(
	    mcf_sharder_assign(p, 2, dup, 3, 0.1, o, &ei), MCF_EINVAL);
	assert_non_null(strstr(ei.msg, "w0"));
	assert_non_null(strstr(ei.msg, "0 and 2"));
	assert_int_equal(
	    mcf_sharder_assign(p, 2, noname, 2, 0.1, o, &ei), MCF_EINVAL);
	for (int i = 0; i < 4; i++)
		assert_int_equal(
		    mcf_sharder_assign(p, 2, bad[i], 1, 0.1, o, &ei),
		    MCF_EINVAL);
	assert_int_equal(
	    mcf_sharder_assign(p, 2, ok, 2, -0.1, o, &ei), MCF_EINVAL);
	assert_int_equal(
	    mcf_sharder_assign(p, 2, ok, 2, NAN, o, &ei), MCF_EINVAL);
	assert_int_equal(
	    mcf_sharder_assign(pn, 2, ok, 2, 0.1, o, &ei), MCF_EINVAL);
	const char *pd[]  = { "b", "a", "b" };
	int         o3[3] = { 5, 5, 5 };
	assert_int_equal(
	    mcf_sharder_assign(pd, 3, ok, 2, 0.1, o3, &ei), MCF_EINVAL);
	assert_non_null(strstr(ei.msg, "\"b\""));
	assert_int_equal(o3[0], 5);
	assert_int_equal(
	    mcf_sharder_assign(NULL, 2, ok, 2, 0.1, o, &ei), MCF_EINVAL);
	assert_int_equal(
	    mcf_sharder_assign(p, 2, NULL, 2, 0.1, o, &ei), MCF_EINVAL);
	assert_int_equal(
	    mcf_sharder_assign(p, 2, ok, 2, 0.1, NULL, &ei), MCF_EINVAL);
	/* Nothing written on any of these. */
	assert_int_equal(o[0], 5);
	assert_int_equal(o[1], 5);
	/* Weights summing to infinity. */
	mcf_sharder_worker huge[] = { { "a", 1e308 }, { "b", 1e308 } };
	assert_int_equal(
	    mcf_sharder_assign(p, 2, huge, 2, 0.1, o, &ei), MCF_ERANGE);
	/* The caps validate the same way. */
	size_t caps[3];
	assert_int_equal(
	    mcf_sharder_caps(dup, 3, 10, 0.1, caps, NULL), MCF_EINVAL);
	assert_int_equal(
	    mcf_sharder_caps(ok, 2, 10, NAN, caps, NULL), MCF_EINVAL);
	assert_int_equal(
	    mcf_sharder_caps(ok, 2, 10, 0.1, NULL, NULL), MCF_EINVAL);
	/* A successful call clears ei. */
	assert_int_equal(mcf_sharder_assign(p, 2, ok, 2, 0.1, o, &ei), MCF_OK);
	assert_int_equal(ei.code, MCF_OK);
}

static void
test_sharder_caps(void **state)
{
	mcf_sharder_worker *w = workers_new(10);
	size_t              caps[10];
	/* 1.1 * 10000 / 4 is 2750 exactly; float noise must not make it
	 * 2751 (the bench's max/mean target relies on this). */
	assert_int_equal(mcf_sharder_caps(w, 4, 10000, 0.1, caps, NULL), 0);
	for (int j = 0; j < 4; j++)
		assert_int_equal(caps[j], 2750);
	assert_int_equal(mcf_sharder_caps(w, 10, 10000, 0.1, caps, NULL), 0);
	for (int j = 0; j < 10; j++)
		assert_int_equal(caps[j], 1100);
	assert_int_equal(mcf_sharder_caps(w, 3, 10, 0, caps, NULL), 0);
	for (int j = 0; j < 3; j++)
		assert_int_equal(caps[j], 4);
	assert_int_equal(mcf_sharder_caps(w, 3, 9, 0, caps, NULL), 0);
	for (int j = 0; j < 3; j++)
		assert_int_equal(caps[j], 3);
	/* Bound off, or huge: never above P. */
	assert_int_equal(mcf_sharder_caps(w, 3, 9, INFINITY, caps, NULL), 0);
	assert_int_equal(mcf_sharder_caps(w, 3, 9, 1e300, caps, NULL), 0);
	for (int j = 0; j < 3; j++)
		assert_int_equal(caps[j], 9);
	/* Weighted: 2 of 5 of 1000 with 10% is 440. */
	w[1].weight = 2;
	assert_int_equal(mcf_sharder_caps(w, 4, 1000, 0.1, caps, NULL), 0);
	assert_int_equal(caps[1], 440);
	assert_int_equal(caps[0], 220);
	/* The top-up: at 10^15 projects float noise is large, three equal
	 * shares round down and the first in name order gets one more. */
	w[1].weight = 1;
	size_t big  = (size_t) 1000000000000000ULL;
	assert_int_equal(mcf_sharder_caps(w, 3, big, 0, caps, NULL), 0);
	assert_true(caps[0] + caps[1] + caps[2] >= big);
	assert_true(caps[0] <= big / 3 + 1 && caps[1] <= big / 3 + 1
	    && caps[2] <= big / 3 + 1);
	workers_free(w, 10);
}

static void
test_sharder_loads(void **state)
{
	int    o[]  = { 0, 2, 2, MCF_SHARDER_NONE, 1, 2 };
	size_t l[3] = { 9, 9, 9 }, un = 9;
	assert_int_equal(mcf_sharder_loads(o, 6, 3, l, &un), MCF_OK);
	assert_int_equal(l[0], 1);
	assert_int_equal(l[1], 1);
	assert_int_equal(l[2], 3);
	assert_int_equal(un, 1);
	assert_int_equal(mcf_sharder_loads(o, 6, 3, l, NULL), MCF_OK);
	assert_int_equal(mcf_sharder_loads(o, 6, 2, l, NULL), MCF_EINVAL);
	int neg[] = { -2 };
	assert_int_equal(mcf_sharder_loads(neg, 1, 3, l, NULL), MCF_EINVAL);
	assert_int_equal(mcf_sharder_loads(NULL, 1, 3, l, NULL), MCF_EINVAL);
}

static void
test_sharder_count_moves(void **state)
{
	/* Worker indices differ between the tables; names decide. */
	mcf_sharder_worker wa[] = { { "w0", 1 }, { "w1", 1 } };
	mcf_sharder_worker wb[] = { { "w2", 1 }, { "w1", 1 }, { "w0", 1 } };
	const char        *pa[]
	    = { "kept", "moved", "dropped", "unowned", "nowhere", "lost" };
	int         oa[] = { 0, 0, 1, MCF_SHARDER_NONE, MCF_SHARDER_NONE, 1 };
	const char *pb[] = { "new", "moved", "unowned", "kept", "lost" };
	int         ob[] = { 0, 1, 0, 2, MCF_SHARDER_NONE };
	mcf_sharder_table a = { pa, 6, wa, 2, oa };
	mcf_sharder_table b = { pb, 5, wb, 3, ob };
	mcf_sharder_moves m = { 9, 9, 9, 9 };
	assert_int_equal(mcf_sharder_count_moves(&a, &b, &m), MCF_OK);
	assert_int_equal(m.kept, 1);    /* kept */
	assert_int_equal(m.moved, 1);   /* moved: w0 -> w1 */
	assert_int_equal(m.gained, 2);  /* new, unowned */
	assert_int_equal(m.dropped, 2); /* dropped, lost */
	/* Reverse direction. */
	assert_int_equal(mcf_sharder_count_moves(&b, &a, &m), MCF_OK);
	assert_int_equal(m.kept, 1);
	assert_int_equal(m.moved, 1);
	assert_int_equal(m.gained, 2);
	assert_int_equal(m.dropped, 2);
	/* Empty tables. */
	mcf_sharder_table e = { NULL, 0, NULL, 0, NULL };
	assert_int_equal(mcf_sharder_count_moves(&e, &a, &m), MCF_OK);
	assert_int_equal(m.gained, 4);
	assert_int_equal(m.moved + m.kept + m.dropped, 0);
	/* Errors: owner out of range, duplicate project, NULLs. */
	int               bad[] = { 0, 0, 2, 0, 0, 0 };
	mcf_sharder_table t     = { pa, 6, wa, 2, bad };
	assert_int_equal(mcf_sharder_count_moves(&t, &b, &m), MCF_EINVAL);
	const char       *pd[] = { "x", "y", "x" };
	int               od[] = { 0, 0, 0 };
	mcf_sharder_table d    = { pd, 3, wa, 2, od };
	assert_int_equal(mcf_sharder_count_moves(&a, &d, &m), MCF_EINVAL);
	assert_int_equal(mcf_sharder_count_moves(NULL, &a, &m), MCF_EINVAL);
	assert_int_equal(mcf_sharder_count_moves(&a, &a, NULL), MCF_EINVAL);
	mcf_sharder_table nul = { pa, 6, wa, 2, NULL };
	assert_int_equal(mcf_sharder_count_moves(&nul, &a, &m), MCF_EINVAL);
}

/* 10,000 projects x 100 workers: a sanity bound on time (the bench
 * measures it properly), and the load bound at that size. */
static void
test_sharder_scale(void **state)
{
	size_t              np = 10000, nw = 100;
	char              **p  = names_new("scale", np);
	mcf_sharder_worker *w  = workers_new(nw);
	const char         *sc = getenv("MCF_TEST_TIMEOUT_SCALE");
	int                 k  = sc != NULL && atoi(sc) > 0 ? atoi(sc) : 1;
	int64_t             t0 = mono_ns();
	int                *o  = assign(p, np, w, nw, MCF_SHARDER_EPSILON);
	int64_t             dt = mono_ns() - t0;
	size_t             *l  = loads_of(o, np, nw);
	for (size_t j = 0; j < nw; j++)
		assert_true(l[j] <= 110);
	assert_true(dt < (int64_t) k * 2000000000);
	free(l);
	free(o);
	names_free(p, np);
	workers_free(w, nw);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sharder_golden),
		cmocka_unit_test(test_sharder_deterministic),
		cmocka_unit_test(test_sharder_order_independent),
		cmocka_unit_test(test_sharder_score_matches_assign),
		cmocka_unit_test(test_sharder_load_bound),
		cmocka_unit_test(test_sharder_epsilon_zero_balanced),
		cmocka_unit_test(test_sharder_add_worker_unbounded),
		cmocka_unit_test(test_sharder_add_worker_bounded),
		cmocka_unit_test(test_sharder_add_worker_binding),
		cmocka_unit_test(test_sharder_remove_worker),
		cmocka_unit_test(test_sharder_weights),
		cmocka_unit_test(test_sharder_name_collision),
		cmocka_unit_test(test_sharder_zero_workers),
		cmocka_unit_test(test_sharder_one_worker),
		cmocka_unit_test(test_sharder_no_projects),
		cmocka_unit_test(test_sharder_errors),
		cmocka_unit_test(test_sharder_caps),
		cmocka_unit_test(test_sharder_loads),
		cmocka_unit_test(test_sharder_count_moves),
		cmocka_unit_test(test_sharder_scale),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

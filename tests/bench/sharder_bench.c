/*
 * sharder_bench.c — the sharder alone (common/sharder.c,
 * docs/BENCHMARKS.md).
 *
 * For each seed s (0 .. seeds-1) the bench makes P project names
 * ("s<seed>-<8 random hex>-proj-<i>") and workers named as StatefulSet
 * pods, "mcfleet-worker-<ordinal>", then prints one line per metric,
 *
 *	metric value unit target PASS|FAIL|smoke
 *
 * each value the median over the seeds.  Lines starting with "# " are
 * information (sizes, the spread over seeds, references without the load
 * bound).  The metrics, n being --workers and epsilon --epsilon:
 *
 *   sharder_moves_ratio_add     n -> n+1 equal-weight workers (ordinal n
 *                               joins, as on a scale-up).  Projects whose
 *                               owner changed, over the minimum: the new
 *                               worker's expected share P * w_new / sum(w)
 *                               = P / (n+1).  No assignment with the new
 *                               worker at its share moves fewer on
 *                               average.                          <= 1.1
 *   sharder_moves_ratio_remove  n+1 -> n: one worker, picked by the seed,
 *                               leaves (a crash or drain; a scale-down is
 *                               the reverse of the add above).  Projects
 *                               whose owner changed, over the minimum: the
 *                               number the leaving worker owned.  <= 1.1
 *   sharder_load_max_mean       busiest worker over the mean P / n, the
 *                               larger of the n and n+1 assignments.
 *                               The bound guarantees <= 1.1 for epsilon
 *                               0.1 whenever (1+epsilon)P/n is whole.
 *                                                                 <= 1.1
 *   sharder_weighted_share      n workers, ordinal 0 of weight 2, the rest
 *                               1: its project count over the expected
 *                               P * 2 / (n+1).                 0.97..1.03
 *   sharder_assign_ms           wall time of one mcf_sharder_assign() of
 *                               P projects over --time-workers workers
 *                               (hashing, sorting, scoring, allocation;
 *                               the names are built beforehand).   <= 100
 *
 * --smoke runs the same code at small sizes (1,000 projects, 3 seeds, 20
 * workers for the timing) so CTest keeps it working; its verdict word is
 * "smoke" because the targets are defined for the full sizes, and explicit
 * --projects/--seeds/--workers/--time-workers still apply.
 *
 * Exit codes: 0 every metric was measured and, in a full run, met its
 * target; 1 a full run missed a target; 2 bad usage or a sharder error.
 *
 * Threads: one.
 */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "err.h"
#include "flags.h"
#include "sharder.h"

enum exit_code {
	EXIT_PASS  = 0,
	EXIT_FAIL  = 1,
	EXIT_ERROR = 2,
};

typedef struct bench {
	size_t projects;
	size_t seeds;
	size_t workers;
	size_t time_workers;
	double epsilon;
	bool   smoke;
	int    code; /* worst exit code so far */
} bench;

static int64_t
now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static uint64_t
rnd(uint64_t *s)
{
	uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));
	z          = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z          = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *) a, y = *(const double *) b;
	return x < y ? -1 : x > y ? 1 : 0;
}

/* Median of n > 0 values; sorts them. */
static double
median(double *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static char **
project_names(size_t seed, size_t n)
{
	uint64_t s   = seed * 1000003 + 17;
	char   **v   = mcf_calloc(n, sizeof(*v));
	uint32_t tag = (uint32_t) rnd(&s);
	for (size_t i = 0; i < n; i++)
		v[i] = mcf_asprintf("s%zu-%08x-proj-%zu", seed, tag, i);
	return v;
}

static void
names_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static mcf_sharder_worker *
worker_set(size_t n)
{
	mcf_sharder_worker *w = mcf_calloc(n, sizeof(*w));
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

/* Assigns or exits with EXIT_ERROR: the inputs are ours, so a failure is a
 * bug worth stopping for. */
static void
assign_or_die(char **p, size_t np, const mcf_sharder_worker *w, size_t nw,
    double eps, int *owner)
{
	mcf_errinfo ei;
	int         rc = mcf_sharder_assign(
	            (const char *const *) p, np, w, nw, eps, owner, &ei);
	if (rc != MCF_OK) {
		fprintf(stderr, "sharder_bench: assign: %s\n", ei.msg);
		exit(EXIT_ERROR);
	}
}

static size_t
moved_between(char **p, size_t np, const mcf_sharder_worker *w0, size_t nw0,
    const int *o0, const mcf_sharder_worker *w1, size_t nw1, const int *o1)
{
	mcf_sharder_table a = { (const char *const *) p, np, w0, nw0, o0 };
	mcf_sharder_table b = { (const char *const *) p, np, w1, nw1, o1 };
	mcf_sharder_moves m;
	if (mcf_sharder_count_moves(&a, &b, &m) != MCF_OK) {
		fprintf(stderr, "sharder_bench: count_moves failed\n");
		exit(EXIT_ERROR);
	}
	return m.moved;
}

static size_t
max_load(const int *owner, size_t np, size_t nw, size_t *loads)
{
	size_t mx = 0;
	if (mcf_sharder_loads(owner, np, nw, loads, NULL) != MCF_OK) {
		fprintf(stderr, "sharder_bench: loads failed\n");
		exit(EXIT_ERROR);
	}
	for (size_t j = 0; j < nw; j++)
		if (loads[j] > mx)
			mx = loads[j];
	return mx;
}

/* Prints a metric line, the value with `prec` decimals, and records a
 * failure. */
static void
report(bench *b, const char *metric, double value, int prec, const char *unit,
    const char *target, bool pass)
{
	char val[64];
	snprintf(val, sizeof(val), "%.*f", prec, value);
	printf("%s %s %s %s %s\n", metric, val, unit, target,
	    b->smoke   ? "smoke"
	        : pass ? "PASS"
	               : "FAIL");
	if (!b->smoke && !pass && b->code < EXIT_FAIL)
		b->code = EXIT_FAIL;
}

/* Prints "# metric: min .. max over N seeds" for v (sorted), with
 * `prec` decimals. */
static void
spread(const char *metric, const double *v, size_t n, int prec)
{
	char lo[64], hi[64];
	snprintf(lo, sizeof(lo), "%.*f", prec, v[0]);
	snprintf(hi, sizeof(hi), "%.*f", prec, v[n - 1]);
	printf("# %s: %s .. %s over %zu seeds\n", metric, lo, hi, n);
}

static void
run(bench *b)
{
	size_t  np = b->projects, n = b->workers, S = b->seeds;
	double *add     = mcf_calloc(S, sizeof(double));
	double *rem     = mcf_calloc(S, sizeof(double));
	double *lmm     = mcf_calloc(S, sizeof(double));
	double *lmm_inf = mcf_calloc(S, sizeof(double));
	double *wsh     = mcf_calloc(S, sizeof(double));
	double *ms      = mcf_calloc(S, sizeof(double));
	double *div     = mcf_calloc(S, sizeof(double));
	size_t  nt      = b->time_workers > n + 1 ? b->time_workers : n + 1;
	mcf_sharder_worker *w     = worker_set(nt);
	mcf_sharder_worker *wr    = mcf_calloc(n, sizeof(*wr));
	mcf_sharder_worker *ww    = mcf_calloc(n, sizeof(*ww));
	int                *o_n   = mcf_calloc(np, sizeof(int));
	int                *o_n1  = mcf_calloc(np, sizeof(int));
	int                *o_r   = mcf_calloc(np, sizeof(int));
	int                *o_inf = mcf_calloc(np, sizeof(int));
	size_t             *loads = mcf_calloc(nt, sizeof(size_t));
	uint64_t            rs    = 99;

	for (size_t s = 0; s < S; s++) {
		char **p = project_names(s, np);

		/* n -> n+1: ordinal n joins. */
		assign_or_die(p, np, w, n, b->epsilon, o_n);
		assign_or_die(p, np, w, n + 1, b->epsilon, o_n1);
		size_t moved = moved_between(p, np, w, n, o_n, w, n + 1, o_n1);
		add[s] = (double) moved / ((double) np / (double) (n + 1));

		/* Busiest over mean, at n and at n+1. */
		double r0 = (double) max_load(o_n, np, n, loads)
		    / ((double) np / (double) n);
		double r1 = (double) max_load(o_n1, np, n + 1, loads)
		    / ((double) np / (double) (n + 1));
		lmm[s] = r0 > r1 ? r0 : r1;

		/* n+1 -> n: a worker picked by the seed leaves. */
		size_t gone = (size_t) (rnd(&rs) % (n + 1));
		for (size_t j = 0, k = 0; j <= n; j++)
			if (j != gone)
				wr[k++] = w[j];
		assign_or_die(p, np, wr, n, b->epsilon, o_r);
		max_load(o_n1, np, n + 1, loads);
		size_t gl = loads[gone];
		moved     = moved_between(p, np, w, n + 1, o_n1, wr, n, o_r);
		rem[s]    = gl > 0 ? (double) moved / (double) gl : 1;

		/* The same without the bound, for reference: how much the
		 * bound buys, and how many projects it diverts. */
		assign_or_die(p, np, w, n + 1, INFINITY, o_inf);
		lmm_inf[s] = (double) max_load(o_inf, np, n + 1, loads)
		    / ((double) np / (double) (n + 1));
		div[s] = (double) moved_between(
		    p, np, w, n + 1, o_inf, w, n + 1, o_n1);

		/* Weighted: ordinal 0 has weight 2. */
		memcpy(ww, w, n * sizeof(*ww));
		ww[0].weight = 2;
		assign_or_die(p, np, ww, n, b->epsilon, o_r);
		max_load(o_r, np, n, loads);
		wsh[s] = (double) loads[0]
		    / ((double) np * 2.0 / (double) (n + 1));
		names_free(p, np);
	}

	/* Timing: P x time_workers, one call per seed. */
	for (size_t s = 0; s < S; s++) {
		char  **p  = project_names(s + 1000, np);
		int64_t t0 = now_ns();
		assign_or_die(p, np, w, b->time_workers, b->epsilon, o_inf);
		ms[s] = (double) (now_ns() - t0) / 1e6;
		names_free(p, np);
	}

	double m;
	m = median(add, S);
	report(b, "sharder_moves_ratio_add", m, 3, "x", "<=1.1", m <= 1.1);
	spread("sharder_moves_ratio_add", add, S, 3);
	m = median(rem, S);
	report(b, "sharder_moves_ratio_remove", m, 3, "x", "<=1.1", m <= 1.1);
	spread("sharder_moves_ratio_remove", rem, S, 3);
	m = median(lmm, S);
	report(b, "sharder_load_max_mean", m, 3, "x", "<=1.1", m <= 1.1);
	spread("sharder_load_max_mean", lmm, S, 3);
	double mi = median(lmm_inf, S);
	double md = median(div, S);
	printf("# without the bound (epsilon inf), n+1 workers: max/mean "
	       "median %.3f (%.3f .. %.3f); the bound diverts a median of "
	       "%.0f projects (%.0f .. %.0f)\n",
	    mi, lmm_inf[0], lmm_inf[S - 1], md, div[0], div[S - 1]);
	m = median(wsh, S);
	report(b, "sharder_weighted_share", m, 3, "x", "0.97..1.03",
	    m >= 0.97 && m <= 1.03);
	spread("sharder_weighted_share", wsh, S, 3);
	m = median(ms, S);
	report(b, "sharder_assign_ms", m, 1, "ms", "<=100", m <= 100);
	spread("sharder_assign_ms", ms, S, 1);

	free(add);
	free(rem);
	free(lmm);
	free(lmm_inf);
	free(wsh);
	free(ms);
	free(div);
	workers_free(w, nt);
	free(wr);
	free(ww);
	free(o_n);
	free(o_n1);
	free(o_r);
	free(o_inf);
	free(loads);
}

int
main(int argc, char **argv)
{
	int64_t        projects = 10000, seeds = 20, workers = 4;
	int64_t        time_workers = 100;
	double         epsilon      = MCF_SHARDER_EPSILON;
	bool           smoke        = false;
	const mcf_flag flags[]      = {
		     { "smoke", MCF_FLAG_BOOL, NULL, "false",
		         "small sizes, for CTest: exit 0 when every metric was "
		              "measured",
		         &smoke },
		     { "projects", MCF_FLAG_INT, "N", "10000",
		         "projects per assignment (smoke: 1000)", &projects },
		     { "seeds", MCF_FLAG_INT, "N", "20",
		         "seeds (project name sets) to take medians over "
		              "(smoke: 3)",
		         &seeds },
		     { "workers", MCF_FLAG_INT, "N", "4",
		         "n: the worker count for moves (n <-> n+1), load and "
		              "weighted shares",
		         &workers },
		     { "time-workers", MCF_FLAG_INT, "N", "100",
		         "workers for sharder_assign_ms (smoke: 20)",
		         &time_workers },
		     { "epsilon", MCF_FLAG_DOUBLE, "E", "0.1",
		         "load-bound slack (the targets assume 0.1)", &epsilon },
	};
	mcf_flagset fs = {
		.prog    = "sharder_bench",
		.summary = "the sharder alone: prints `metric value unit "
		           "target PASS|FAIL` per metric",
		.flags   = flags,
		.count   = sizeof(flags) / sizeof(flags[0]),
	};
	enum mcf_flags_result res;
	mcf_errinfo           ei;
	if (mcf_flags_parse(&fs, argc, argv, &res, &ei) != MCF_OK) {
		fprintf(stderr, "sharder_bench: %s\n", ei.msg);
		mcf_flags_free(&fs);
		return EXIT_ERROR;
	}
	if (res == MCF_FLAGS_EXIT) {
		mcf_flags_free(&fs);
		return EXIT_PASS;
	}
	if (smoke) {
		if (!mcf_flags_is_set(&fs, "projects"))
			projects = 1000;
		if (!mcf_flags_is_set(&fs, "seeds"))
			seeds = 3;
		if (!mcf_flags_is_set(&fs, "time-workers"))
			time_workers = 20;
	}
	mcf_flags_free(&fs);
	if (projects < 1 || projects > 100000000 || seeds < 1 || seeds > 100000
	    || workers < 1 || workers > 100000 || time_workers < 1
	    || time_workers > 100000 || !(epsilon >= 0)) {
		fprintf(stderr,
		    "sharder_bench: want --projects 1..1e8, --seeds "
		    "1..1e5, --workers and --time-workers 1..1e5, "
		    "--epsilon >= 0\n");
		return EXIT_ERROR;
	}

	bench b = {
		.projects     = (size_t) projects,
		.seeds        = (size_t) seeds,
		.workers      = (size_t) workers,
		.time_workers = (size_t) time_workers,
		.epsilon      = epsilon,
		.smoke        = smoke,
		.code         = EXIT_PASS,
	};
	printf("# sharder_bench: %s run, %zu projects, %zu seeds, n = %zu "
	       "workers (n <-> n+1), epsilon %g, timing with %zu workers\n",
	    smoke ? "smoke" : "full", b.projects, b.seeds, b.workers,
	    b.epsilon, b.time_workers);
	fflush(stdout);
	run(&b);
	return b.code;
}

/*
 * sharder.h — which worker owns which project: a pure function.
 *
 * ARCHITECTURE.md "Sharding and membership" and "Sharding math".  The
 * coordinator calls mcf_sharder_assign() with the engaged projects and the
 * live workers and gets, per project, the index of its owner.  The result
 * depends only on the *sets* of project names, worker names and weights,
 * and on epsilon: never on the order of the input arrays, on time, on
 * memory addresses or on earlier calls.  A new leader therefore rebuilds
 * the same table from the same inputs and moves nothing.
 *
 * The math:
 *
 *   - Weighted rendezvous hashing.  Each name is hashed on its own with
 *     SipHash-2-4 (a fixed key per kind, so a project and a worker of the
 *     same name hash apart); the two 64-bit hashes are combined by a
 *     128-bit multiply-fold and a 64-bit finaliser into u in (0,1), and
 *     score = -weight / ln(u).  A project's preferred worker is the one
 *     with the highest score; worker i wins with probability
 *     w_i / sum(w).  Because names are hashed separately, no pair of
 *     names can collide through concatenation ("worker-1" + "1x" versus
 *     "worker-11" + "x").
 *   - Bounded loads.  Worker i may own at most
 *         cap_i = ceil((1 + epsilon) * w_i / sum(w) * P)
 *     projects (P the number of projects; see mcf_sharder_caps() for the
 *     exact rounding).  Projects are placed one by one in a fixed order —
 *     ascending SipHash of the project name, ties by strcmp() — each on
 *     the highest-scoring worker that still has room.  Since
 *     sum(cap_i) >= P, every project gets a worker.  With loose caps this
 *     is plain rendezvous hashing: adding a worker moves only the projects
 *     it wins (about P * w_new / sum(w)), removing one moves only its own.
 *     When a cap binds, a few more projects can move.
 *
 * Cost: O(P log P + W log W) to sort plus O(P * W) scores, each a multiply,
 * a log() and a divide; two allocations per call (the sorted projects and
 * the sorted workers), none per pair.  10,000 projects x 100 workers take
 * 10-15 ms on the 2-core development VM (tests/bench/sharder_bench.c).
 *
 * Determinism across machines rests on log() as well as on the integer
 * hashing: the leaders of one fleet run one image, so one libm.  Another
 * libm may differ in the last bit of a score, which changes an owner only
 * when two workers' scores for one project are that close, about 2^-50
 * per comparison.
 *
 * Thread model: no state, no locks; every function may be called from any
 * thread at any time.  Inputs are borrowed for the call only.
 */
#ifndef MCF_COMMON_SHARDER_H
#define MCF_COMMON_SHARDER_H

#include <stddef.h>

#include "err.h"

/* The owner index of a project that has no worker (zero workers). */
#define MCF_SHARDER_NONE (-1)

/* The default load-bound slack: no worker above 1.1 x its weighted share
 * (rounded up). */
#define MCF_SHARDER_EPSILON 0.1

/* A worker as the sharder sees it.  A plain value type, fields public. */
typedef struct mcf_sharder_worker {
	/* Borrowed for the call.  Unique among the workers of one call;
	 * the StatefulSet pod name ("mcfleet-worker-3"). */
	const char *name;
	/* Capacity, relative to the other workers: finite and > 0. */
	double weight;
} mcf_sharder_worker;

/* Assigns each project to a worker.
 *
 * projects[0..nprojects-1]: borrowed NUL-terminated names, unique.
 * workers[0..nworkers-1]: borrowed; names unique, weights finite and > 0.
 * epsilon: load-bound slack, >= 0 (MCF_SHARDER_EPSILON is the default);
 *   +INFINITY turns the bound off (pure weighted rendezvous hashing).
 * owner[0..nprojects-1]: receives, for projects[i], the index into
 *   `workers` of its owner.
 *
 * Returns MCF_OK; MCF_EUNAVAIL when nworkers is 0 (and the rest is valid):
 * then every owner[i] is MCF_SHARDER_NONE, so callers that only look at
 * the table still see "unassigned".  MCF_EINVAL for a NULL array with a
 * non-zero count, a NULL name, a duplicate project or worker name, a weight
 * that is not finite or not > 0, or an epsilon that is NaN or < 0;
 * MCF_ERANGE for more than INT_MAX workers or weights summing to
 * infinity.  On MCF_EINVAL and MCF_ERANGE `owner` is untouched and `ei`
 * (optional) says which input is wrong; on MCF_OK `ei` is cleared. */
int mcf_sharder_assign(const char *const *projects, size_t nprojects,
    const mcf_sharder_worker *workers, size_t nworkers, double epsilon,
    int *owner, mcf_errinfo *ei);

/* The load caps mcf_sharder_assign() uses: caps[i] for workers[i].
 * cap_i = ceil((1 + epsilon) * w_i * nprojects / sum(w)), computed in
 * double with sum(w) added in name order, rounding a value within 1e-12
 * (relative) above an integer down to it so that float noise never adds
 * one.  Should the caps then sum below nprojects (only possible with
 * epsilon 0 or nearly, or astronomically many projects), the workers whose
 * value was rounded down get one more each, in name order, until they
 * do (then any worker, should float error leave a gap still).  At most
 * nprojects; nprojects for every worker when epsilon is +INFINITY.
 * Validates like mcf_sharder_assign() (projects are not looked at) and
 * returns MCF_OK, MCF_EINVAL or MCF_ERANGE (also when the weights sum to
 * infinity); nworkers == 0 is MCF_OK with nothing written.  `caps` is
 * untouched on error. */
int mcf_sharder_caps(const mcf_sharder_worker *workers, size_t nworkers,
    size_t nprojects, double epsilon, size_t *caps, mcf_errinfo *ei);

/* The rendezvous score of `project` on a worker named `worker` with
 * `weight`: -weight / ln(u), u in (0,1) from the two names' hashes.  The
 * value mcf_sharder_assign() ranks workers by; for tests, debugging ("why
 * is project X on worker Y") and tools.  Both names borrowed, not NULL;
 * `weight` > 0. */
double mcf_sharder_score(
    const char *project, const char *worker, double weight);

/* Counts projects per worker: loads[j] = number of i < nprojects with
 * owner[i] == j, for j < nworkers; *unassigned (optional) the number with
 * MCF_SHARDER_NONE.  Returns MCF_OK, or MCF_EINVAL if an owner is neither
 * MCF_SHARDER_NONE nor in [0, nworkers) (then `loads` holds partial counts
 * and must not be used). */
int mcf_sharder_loads(const int *owner, size_t nprojects, size_t nworkers,
    size_t *loads, size_t *unassigned);

/* An assignment as mcf_sharder_assign() produced it, for
 * mcf_sharder_count_moves().  A plain value type of borrowed pointers;
 * projects[i] is owned by workers[owner[i]] (or by nobody when owner[i] is
 * MCF_SHARDER_NONE). */
typedef struct mcf_sharder_table {
	const char *const        *projects; /* borrowed, nprojects names */
	size_t                    nprojects;
	const mcf_sharder_worker *workers; /* borrowed, nworkers */
	size_t                    nworkers;
	const int                *owner; /* borrowed, nprojects entries */
} mcf_sharder_table;

/* What changed between two tables, matched by project name and comparing
 * owners by worker name (indices may differ between the two tables).  A
 * plain value type. */
typedef struct mcf_sharder_moves {
	/* Owned in both, by workers of different names: a hand-off. */
	size_t moved;
	/* Owned in both by the same worker name. */
	size_t kept;
	/* Owned after, but absent or unowned before (engage only). */
	size_t gained;
	/* Owned before, but absent or unowned after (disengage only). */
	size_t dropped;
} mcf_sharder_moves;

/* Compares `before` with `after` (both borrowed for the call) and fills
 * *out.  For the coordinator's rebalance counters, tests and benchmarks.
 * O((P_before + P_after) log P).  Returns MCF_OK, or MCF_EINVAL for a NULL
 * argument or array with a non-zero count, a NULL name, a duplicate project
 * name within one table, or an owner index out of range; *out is untouched
 * then. */
int mcf_sharder_count_moves(const mcf_sharder_table *before,
    const mcf_sharder_table *after, mcf_sharder_moves *out);

#endif /* MCF_COMMON_SHARDER_H */

/*
 * sharder.c — weighted rendezvous hashing with bounded loads.
 *
 * See sharder.h for the contract and the math.  How it is computed:
 *
 *   1. Workers are validated and sorted by name (strcmp).  Their weights
 *      are summed in that order, so the float sum, and with it every cap,
 *      is the same whatever order the caller passed them in.  Each worker
 *      gets its name hash and its cap (`remain`).
 *   2. Projects are hashed and sorted by (hash, name).  Duplicates end up
 *      next to each other and are rejected.  This order is the placement
 *      order of the bounded-load pass, a pseudo-random one that does not
 *      favour any name pattern (sorting by name would let "a-*" projects
 *      take the best seats).
 *   3. For each project in that order, every worker with room left is
 *      scored and the best one takes the project.  Ties (equal doubles,
 *      astronomically rare) go to the worker first in name order.  Full
 *      workers are skipped without being scored.
 *
 * Hashes.  A name is hashed with SipHash-2-4 under a fixed 128-bit key,
 * one key for project names and another for worker names.  SipHash mixes
 * the length into its last block, and names are hashed separately, so no
 * (project, worker) pair aliases another by concatenation.  Bytes are read
 * little-endian one at a time, so the result does not depend on the host's
 * byte order or alignment.  The pair hash multiplies the two (keyed) name
 * hashes into 128 bits, folds the halves (as wyhash's mum does), adds the
 * raw hashes back in (so a zero factor cannot flatten a row) and runs the
 * splitmix64 finaliser.  The keys and constants are part of the on-the-
 * wire behaviour: changing any of them reshuffles every fleet on upgrade,
 * and the golden test in tests/sharder_test.c will say so.
 */
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "err.h"
#include "sharder.h"

/* SipHash keys (arbitrary, fixed forever; see above). */
#define PROJECT_K0 UINT64_C(0x6d63666c65657470) /* "mcfleetp" */
#define PROJECT_K1 UINT64_C(0x726f6a6563742d31) /* "roject-1" */
#define WORKER_K0 UINT64_C(0x6d63666c65657477)  /* "mcfleetw" */
#define WORKER_K1 UINT64_C(0x6f726b65722d2d31)  /* "orker--1" */
/* Pair-mix constants (wyhash's secrets). */
#define PAIR_K0 UINT64_C(0xa0761d6478bd642f)
#define PAIR_K1 UINT64_C(0xe7037ed1a0b428db)

/* Relative slack under which a cap that is an integer plus float noise is
 * rounded down to the integer (sharder.h, mcf_sharder_caps). */
#define CAP_NOISE 1e-12

/* ------------------------------------------------------------------ */
/* Hashing                                                              */
/* ------------------------------------------------------------------ */

static inline uint64_t
rotl64(uint64_t x, int b)
{
	return (x << b) | (x >> (64 - b));
}

static inline uint64_t
load_le64(const unsigned char *p)
{
	return (uint64_t) p[0] | (uint64_t) p[1] << 8 | (uint64_t) p[2] << 16
	    | (uint64_t) p[3] << 24 | (uint64_t) p[4] << 32
	    | (uint64_t) p[5] << 40 | (uint64_t) p[6] << 48
	    | (uint64_t) p[7] << 56;
}

#define SIPROUND                                                              \
	do {                                                                  \
		v0 += v1;                                                     \
		v1 = rotl64(v1, 13);                                          \
		v1 ^= v0;                                                     \
		v0 = rotl64(v0, 32);                                          \
		v2 += v3;                                                     \
		v3 = rotl64(v3, 16);                                          \
		v3 ^= v2;                                                     \
		v0 += v3;                                                     \
		v3 = rotl64(v3, 21);                                          \
		v3 ^= v0;                                                     \
		v2 += v1;                                                     \
		v1 = rotl64(v1, 17);                                          \
		v1 ^= v2;                                                     \
		v2 = rotl64(v2, 32);                                          \
	} while (0)

/* SipHash-2-4 of data[0..len-1] under the key (k0, k1) (Aumasson and
 * Bernstein's reference, 64-bit output). */
static uint64_t
siphash24(uint64_t k0, uint64_t k1, const void *data, size_t len)
{
	const unsigned char *p  = data;
	uint64_t             v0 = k0 ^ UINT64_C(0x736f6d6570736575);
	uint64_t             v1 = k1 ^ UINT64_C(0x646f72616e646f6d);
	uint64_t             v2 = k0 ^ UINT64_C(0x6c7967656e657261);
	uint64_t             v3 = k1 ^ UINT64_C(0x7465646279746573);
	size_t               i;

	for (i = 0; i + 8 <= len; i += 8) {
		uint64_t m = load_le64(p + i);
		v3 ^= m;
		SIPROUND;
		SIPROUND;
		v0 ^= m;
	}
	uint64_t b = (uint64_t) len << 56;
	for (size_t j = 0; i + j < len; j++)
		b |= (uint64_t) p[i + j] << (8 * j);
	v3 ^= b;
	SIPROUND;
	SIPROUND;
	v0 ^= b;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

static uint64_t
project_hash(const char *name)
{
	return siphash24(PROJECT_K0, PROJECT_K1, name, strlen(name));
}

static uint64_t
worker_hash(const char *name)
{
	return siphash24(WORKER_K0, WORKER_K1, name, strlen(name));
}

/* The 128-bit product of a and b, folded: low half xor high half. */
static inline uint64_t
mum_fold(uint64_t a, uint64_t b)
{
#if defined(__SIZEOF_INT128__)
	unsigned __int128 m = (unsigned __int128) a * b;
	return (uint64_t) m ^ (uint64_t) (m >> 64);
#else
	uint64_t al = a & 0xffffffffu, ah = a >> 32;
	uint64_t bl = b & 0xffffffffu, bh = b >> 32;
	uint64_t ll = al * bl, lh = al * bh, hl = ah * bl, hh = ah * bh;
	uint64_t mid = (ll >> 32) + (lh & 0xffffffffu) + (hl & 0xffffffffu);
	uint64_t lo  = (mid << 32) | (ll & 0xffffffffu);
	uint64_t hi  = hh + (lh >> 32) + (hl >> 32) + (mid >> 32);
	return lo ^ hi;
#endif
}

/* splitmix64's finaliser (Stafford's Mix13): a bijection on 64 bits with
 * full avalanche. */
static inline uint64_t
fmix64(uint64_t x)
{
	x ^= x >> 30;
	x *= UINT64_C(0xbf58476d1ce4e5b9);
	x ^= x >> 27;
	x *= UINT64_C(0x94d049bb133111eb);
	x ^= x >> 31;
	return x;
}

/* Rendezvous score of the project hashed `hp` on the worker hashed `hw`
 * with weight `w`.  u = (2k + 1) / 2^53 for k the top 52 bits of the pair
 * hash: exact in a double and strictly inside (0,1), so ln(u) < 0 and the
 * score is positive and finite. */
static inline double
pair_score(uint64_t hp, uint64_t hw, double w)
{
	uint64_t r = fmix64(
	    mum_fold(hp ^ PAIR_K0, hw ^ PAIR_K1) ^ hp ^ rotl64(hw, 32));
	double u = (double) (((r >> 12) << 1) | 1) * 0x1p-53;
	return -w / log(u);
}

double
mcf_sharder_score(const char *project, const char *worker, double weight)
{
	return pair_score(project_hash(project), worker_hash(worker), weight);
}

/* ------------------------------------------------------------------ */
/* Validation and caps                                                  */
/* ------------------------------------------------------------------ */

/* A worker, in name order. */
typedef struct sh_worker {
	uint64_t    h;      /* worker_hash(name) */
	double      w;      /* weight */
	size_t      remain; /* cap, then room left */
	int         orig;   /* index in the caller's array */
	const char *name;   /* borrowed from the caller */
} sh_worker;

/* A project, in placement order. */
typedef struct sh_proj {
	uint64_t    h;    /* project_hash(name) */
	const char *name; /* borrowed from the caller */
	size_t      orig; /* index in the caller's array */
} sh_proj;

static int
cmp_worker(const void *a, const void *b)
{
	const sh_worker *x = a, *y = b;
	return strcmp(x->name, y->name);
}

static int
cmp_proj(const void *a, const void *b)
{
	const sh_proj *x = a, *y = b;
	if (x->h != y->h)
		return x->h < y->h ? -1 : 1;
	return strcmp(x->name, y->name);
}

/* Cap of a worker whose share before rounding is x (see sharder.h). */
static size_t
cap_round(double x, size_t nprojects, bool *rounded_down)
{
	*rounded_down = false;
	if (!(x < (double) nprojects))
		return nprojects;
	double f = floor(x);
	if (x - f <= CAP_NOISE * x) {
		*rounded_down = x > f;
		return (size_t) f;
	}
	return (size_t) f + 1;
}

/* Validates the workers and epsilon; on success *out is a new array of
 * nworkers sh_worker in name order with `remain` set to the cap (NULL
 * when nworkers is 0). */
static int
prepare_workers(const mcf_sharder_worker *workers, size_t nworkers,
    size_t nprojects, double epsilon, sh_worker **out, mcf_errinfo *ei)
{
	if (isnan(epsilon) || epsilon < 0)
		return mcf_errinfo_set(ei, MCF_EINVAL,
		    "sharder: epsilon %g is not >= 0", epsilon);
	if (nworkers > (size_t) INT_MAX)
		return mcf_errinfo_set(ei, MCF_ERANGE,
		    "sharder: %zu workers, at most %d", nworkers, INT_MAX);
	if (nworkers == 0) {
		*out = NULL;
		return MCF_OK;
	}
	if (workers == NULL)
		return mcf_errinfo_set(
		    ei, MCF_EINVAL, "sharder: workers is NULL");
	for (size_t i = 0; i < nworkers; i++) {
		if (workers[i].name == NULL)
			return mcf_errinfo_set(ei, MCF_EINVAL,
			    "sharder: worker %zu has no name", i);
		double w = workers[i].weight;
		if (!isfinite(w) || !(w > 0))
			return mcf_errinfo_set(ei, MCF_EINVAL,
			    "sharder: worker \"%s\" has weight %g, not a "
			    "finite number > 0",
			    workers[i].name, w);
	}

	sh_worker *ws = mcf_calloc(nworkers, sizeof(*ws));
	for (size_t i = 0; i < nworkers; i++) {
		ws[i].name = workers[i].name;
		ws[i].w    = workers[i].weight;
		ws[i].orig = (int) i;
	}
	qsort(ws, nworkers, sizeof(*ws), cmp_worker);
	double total = 0;
	for (size_t k = 0; k < nworkers; k++) {
		if (k > 0 && strcmp(ws[k - 1].name, ws[k].name) == 0) {
			int rc = mcf_errinfo_set(ei, MCF_EINVAL,
			    "sharder: workers %d and %d have the same name "
			    "\"%s\"",
			    ws[k - 1].orig < ws[k].orig ? ws[k - 1].orig
			                                : ws[k].orig,
			    ws[k - 1].orig < ws[k].orig ? ws[k].orig
			                                : ws[k - 1].orig,
			    ws[k].name);
			free(ws);
			return rc;
		}
		total += ws[k].w;
	}
	if (!isfinite(total)) {
		free(ws);
		return mcf_errinfo_set(
		    ei, MCF_ERANGE, "sharder: the weights sum to infinity");
	}

	/* Caps, in name order (the order matters only for the top-up). */
	size_t sum = 0;
	for (size_t k = 0; k < nworkers; k++) {
		bool down;
		if (isinf(epsilon))
			ws[k].remain = nprojects;
		else
			ws[k].remain = cap_round((1.0 + epsilon)
			        * (ws[k].w / total) * (double) nprojects,
			    nprojects, &down);
		sum += ws[k].remain;
	}
	/* In exact arithmetic the caps sum to at least (1 + epsilon) * P.
	 * Rounding near-integers down can leave them short when epsilon is
	 * 0 (or tiny): give those workers their unit back, then, should
	 * float error still leave a gap, one more each in name order. */
	for (size_t k = 0; k < nworkers && sum < nprojects; k++) {
		bool down;
		cap_round(
		    (1.0 + epsilon) * (ws[k].w / total) * (double) nprojects,
		    nprojects, &down);
		if (down) {
			ws[k].remain++;
			sum++;
		}
	}
	for (size_t k = 0; sum < nprojects; k = (k + 1) % nworkers) {
		if (ws[k].remain < nprojects) {
			ws[k].remain++;
			sum++;
		}
	}
	*out = ws;
	return MCF_OK;
}

int
mcf_sharder_caps(const mcf_sharder_worker *workers, size_t nworkers,
    size_t nprojects, double epsilon, size_t *caps, mcf_errinfo *ei)
{
	sh_worker *ws = NULL;
	if (nworkers > 0 && caps == NULL)
		return mcf_errinfo_set(
		    ei, MCF_EINVAL, "sharder: caps is NULL");
	int rc
	    = prepare_workers(workers, nworkers, nprojects, epsilon, &ws, ei);
	if (rc != MCF_OK)
		return rc;
	for (size_t k = 0; k < nworkers; k++)
		caps[ws[k].orig] = ws[k].remain;
	free(ws);
	return MCF_OK;
}

/* Hashes and sorts `names` into a new array; rejects NULL and duplicate
 * names.  `what` names the table in messages. */
static int
prepare_projects(const char *const *names, size_t n, const char *what,
    sh_proj **out, mcf_errinfo *ei)
{
	*out = NULL;
	if (n == 0)
		return MCF_OK;
	if (names == NULL)
		return mcf_errinfo_set(
		    ei, MCF_EINVAL, "sharder: %sprojects is NULL", what);
	for (size_t i = 0; i < n; i++)
		if (names[i] == NULL)
			return mcf_errinfo_set(ei, MCF_EINVAL,
			    "sharder: %sproject %zu has no name", what, i);
	sh_proj *ps = mcf_malloc(n * sizeof(*ps));
	for (size_t i = 0; i < n; i++) {
		ps[i].h    = project_hash(names[i]);
		ps[i].name = names[i];
		ps[i].orig = i;
	}
	qsort(ps, n, sizeof(*ps), cmp_proj);
	for (size_t k = 1; k < n; k++) {
		if (ps[k - 1].h == ps[k].h
		    && strcmp(ps[k - 1].name, ps[k].name) == 0) {
			int rc = mcf_errinfo_set(ei, MCF_EINVAL,
			    "sharder: %sproject \"%s\" is listed twice", what,
			    ps[k].name);
			free(ps);
			return rc;
		}
	}
	*out = ps;
	return MCF_OK;
}

/* ------------------------------------------------------------------ */
/* Assignment                                                           */
/* ------------------------------------------------------------------ */

int
mcf_sharder_assign(const char *const *projects, size_t nprojects,
    const mcf_sharder_worker *workers, size_t nworkers, double epsilon,
    int *owner, mcf_errinfo *ei)
{
	sh_worker *ws = NULL;
	sh_proj   *ps = NULL;
	if (nprojects > 0 && owner == NULL)
		return mcf_errinfo_set(
		    ei, MCF_EINVAL, "sharder: owner is NULL");
	int rc
	    = prepare_workers(workers, nworkers, nprojects, epsilon, &ws, ei);
	if (rc != MCF_OK)
		return rc;
	rc = prepare_projects(projects, nprojects, "", &ps, ei);
	if (rc != MCF_OK) {
		free(ws);
		return rc;
	}
	if (nworkers == 0) {
		for (size_t i = 0; i < nprojects; i++)
			owner[i] = MCF_SHARDER_NONE;
		free(ps);
		return mcf_errinfo_set(ei, MCF_EUNAVAIL,
		    "sharder: no workers: %zu projects unassigned", nprojects);
	}
	for (size_t k = 0; k < nworkers; k++)
		ws[k].h = worker_hash(ws[k].name);

	for (size_t i = 0; i < nprojects; i++) {
		uint64_t   hp     = ps[i].h;
		sh_worker *best   = NULL;
		double     best_s = 0; /* every score is > 0 */
		for (size_t k = 0; k < nworkers; k++) {
			sh_worker *w = &ws[k];
			if (w->remain == 0)
				continue;
			double s = pair_score(hp, w->h, w->w);
			if (best == NULL || s > best_s) {
				best   = w;
				best_s = s;
			}
		}
		/* The caps sum to >= nprojects, so someone has room. */
		if (best == NULL)
			mcf_panic("sharder: caps sum below the project count");
		best->remain--;
		owner[ps[i].orig] = best->orig;
	}
	free(ps);
	free(ws);
	mcf_errinfo_clear(ei);
	return MCF_OK;
}

int
mcf_sharder_loads(const int *owner, size_t nprojects, size_t nworkers,
    size_t *loads, size_t *unassigned)
{
	size_t none = 0;
	if ((nprojects > 0 && owner == NULL)
	    || (nworkers > 0 && loads == NULL))
		return MCF_EINVAL;
	for (size_t j = 0; j < nworkers; j++)
		loads[j] = 0;
	for (size_t i = 0; i < nprojects; i++) {
		int o = owner[i];
		if (o == MCF_SHARDER_NONE)
			none++;
		else if (o >= 0 && (size_t) o < nworkers)
			loads[o]++;
		else
			return MCF_EINVAL;
	}
	if (unassigned != NULL)
		*unassigned = none;
	return MCF_OK;
}

/* ------------------------------------------------------------------ */
/* Moves between two tables                                             */
/* ------------------------------------------------------------------ */

/* Validates a table's owners; the projects are checked by
 * prepare_projects(). */
static int
check_table(const mcf_sharder_table *t)
{
	if (t->nprojects > 0 && t->owner == NULL)
		return MCF_EINVAL;
	if (t->nworkers > 0 && t->workers == NULL)
		return MCF_EINVAL;
	for (size_t j = 0; j < t->nworkers; j++)
		if (t->workers[j].name == NULL)
			return MCF_EINVAL;
	for (size_t i = 0; i < t->nprojects; i++) {
		int o = t->owner[i];
		if (o != MCF_SHARDER_NONE
		    && (o < 0 || (size_t) o >= t->nworkers))
			return MCF_EINVAL;
	}
	return MCF_OK;
}

/* Name of the owner of the project at caller index i, or NULL. */
static const char *
owner_name(const mcf_sharder_table *t, size_t i)
{
	int o = t->owner[i];
	return o == MCF_SHARDER_NONE ? NULL : t->workers[o].name;
}

int
mcf_sharder_count_moves(const mcf_sharder_table *before,
    const mcf_sharder_table *after, mcf_sharder_moves *out)
{
	sh_proj *pb = NULL, *pa = NULL;
	if (before == NULL || after == NULL || out == NULL)
		return MCF_EINVAL;
	if (check_table(before) != MCF_OK || check_table(after) != MCF_OK)
		return MCF_EINVAL;
	if (prepare_projects(
	        before->projects, before->nprojects, "before ", &pb, NULL)
	    != MCF_OK)
		return MCF_EINVAL;
	if (prepare_projects(
	        after->projects, after->nprojects, "after ", &pa, NULL)
	    != MCF_OK) {
		free(pb);
		return MCF_EINVAL;
	}

	/* Merge walk over the two (hash, name)-sorted lists. */
	mcf_sharder_moves m = { 0 };
	size_t            i = 0, j = 0;
	while (i < before->nprojects || j < after->nprojects) {
		int c;
		if (i == before->nprojects)
			c = 1;
		else if (j == after->nprojects)
			c = -1;
		else
			c = cmp_proj(&pb[i], &pa[j]);
		const char *ob
		    = c <= 0 ? owner_name(before, pb[i].orig) : NULL;
		const char *oa = c >= 0 ? owner_name(after, pa[j].orig) : NULL;
		if (ob != NULL && oa != NULL) {
			if (strcmp(ob, oa) == 0)
				m.kept++;
			else
				m.moved++;
		} else if (ob != NULL) {
			m.dropped++;
		} else if (oa != NULL) {
			m.gained++;
		}
		if (c <= 0)
			i++;
		if (c >= 0)
			j++;
	}
	free(pb);
	free(pa);
	*out = m;
	return MCF_OK;
}

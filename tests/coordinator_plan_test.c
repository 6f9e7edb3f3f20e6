/*
 * coordinator_plan_test.c — tests for coordinator/plan.c, the pure
 * assignment planner: engaging what has no owner, pacing, minimal
 * movement executed as disengage → STOPPED → engage (checked against the
 * sharder's own count of moves), LEAVING, a gone worker's projects engaged
 * directly, a new leader that waits for every report, disengaging what is
 * no longer engageable, and a long randomized run in which no project ever
 * has two workers that may run it.
 *
 * A small simulated world drives the planner the way the coordinator does:
 * it applies the actions (an engage sets the owner and marks the engage in
 * flight; a disengage clears the owner and adds a releasing worker) and
 * plays the workers' answers (synced, STOPPED) when the test says so.
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

#include "alloc.h"
#include "plan.h"
#include "sharder.h"

#define MAXW 8
#define MAXP 400

typedef struct world {
	size_t           nw, np;
	char             wname[MAXW][16];
	double           weight[MAXW];
	mcf_plan_worker  w[MAXW];
	char             pname[MAXP][16];
	mcf_plan_project p[MAXP];
	/* who may run each project: owner plus releasing workers */
	int    rel[MAXP][MAXW]; /* 1: worker may still run it */
	size_t engages, disengages, moves;
	size_t max_engages;
} world;

static void
world_init(world *wd, size_t nw, size_t np)
{
	memset(wd, 0, sizeof(*wd));
	wd->nw          = nw;
	wd->np          = np;
	wd->max_engages = 1000;
	for (size_t i = 0; i < nw; i++) {
		snprintf(wd->wname[i], sizeof(wd->wname[i]), "worker-%zu", i);
		wd->weight[i] = 1;
		wd->w[i]      = (mcf_plan_worker) { true, false, true, true, false };
	}
	for (size_t i = 0; i < np; i++) {
		snprintf(wd->pname[i], sizeof(wd->pname[i]), "p-%03zu", i);
		wd->p[i] = (mcf_plan_project) { true, -1, -1, false, 0 };
	}
}

/* Desired owners from the real sharder over live, non-leaving workers. */
static void
world_shard(world *wd)
{
	mcf_sharder_worker sw[MAXW];
	int                map[MAXW];
	size_t             n = 0;
	for (size_t i = 0; i < wd->nw; i++) {
		if (!wd->w[i].live || wd->w[i].leaving)
			continue;
		sw[n] = (mcf_sharder_worker) { wd->wname[i], wd->weight[i] };
		map[n++] = (int) i;
	}
	const char *names[MAXP] = { 0 };
	size_t      idx[MAXP], k = 0;
	for (size_t i = 0; i < wd->np; i++) {
		wd->p[i].desired = -1;
		if (wd->p[i].engageable) {
			names[k] = wd->pname[i];
			idx[k++] = i;
		}
	}
	int owner[MAXP];
	int rc = mcf_sharder_assign(
	    names, k, sw, n, MCF_SHARDER_EPSILON, owner, NULL);
	assert_true(rc == MCF_OK || rc == MCF_EUNAVAIL);
	for (size_t j = 0; j < k; j++)
		wd->p[idx[j]].desired = owner[j] >= 0 ? map[owner[j]] : -1;
}

static size_t
holders(const world *wd, size_t i)
{
	size_t n = 0;
	for (size_t j = 0; j < wd->nw; j++)
		n += wd->rel[i][j] ? 1 : 0;
	return n;
}

/* Runs the planner once and applies its actions; checks the single-owner
 * invariant on every engage.  Returns the number of actions. */
static size_t
world_plan(world *wd, mcf_plan_stats *st)
{
	mcf_plan_action *a = NULL;
	size_t           n = 0;
	mcf_plan_stats   s;
	mcf_plan_compute(
	    wd->w, wd->nw, wd->p, wd->np, wd->max_engages, &a, &n, &s);
	for (size_t k = 0; k < n; k++) {
		mcf_plan_project *p = &wd->p[a[k].project];
		int               w = a[k].worker;
		assert_true(w >= 0 && (size_t) w < wd->nw);
		if (a[k].kind == MCF_PLAN_ENGAGE) {
			/* Never two outstanding owners. */
			assert_int_equal(p->owner, -1);
			assert_int_equal(p->releasing, 0);
			assert_int_equal(holders(wd, a[k].project), 0);
			assert_true(wd->w[w].live && wd->w[w].known
			    && wd->w[w].connected && !wd->w[w].leaving);
			p->owner                 = w;
			p->inflight              = true;
			wd->rel[a[k].project][w] = 1;
			wd->engages++;
		} else {
			assert_int_equal(p->owner, w);
			p->owner    = -1;
			p->inflight = false;
			p->releasing++;
			wd->disengages++;
			if (a[k].why == MCF_PLAN_WHY_LEAVING
			    || a[k].why == MCF_PLAN_WHY_REBALANCE)
				wd->moves++;
		}
		assert_true(holders(wd, a[k].project) <= 1);
	}
	free(a);
	if (st != NULL)
		*st = s;
	return n;
}

/* Every owner reports synced. */
static void
world_synced(world *wd)
{
	for (size_t i = 0; i < wd->np; i++)
		wd->p[i].inflight = false;
}

/* Every worker that was told to disengage confirms STOPPED. */
static void
world_stopped(world *wd)
{
	for (size_t i = 0; i < wd->np; i++) {
		for (size_t j = 0; j < wd->nw; j++)
			if (wd->rel[i][j] && wd->p[i].owner != (int) j)
				wd->rel[i][j] = 0;
		wd->p[i].releasing = 0;
	}
}

/* Plans and answers until nothing changes; returns the rounds used. */
static int
world_converge(world *wd)
{
	for (int round = 0; round < 100; round++) {
		world_synced(wd);
		world_stopped(wd);
		if (world_plan(wd, NULL) == 0)
			return round;
	}
	fail_msg("no convergence");
	return -1;
}

static void
assert_converged(const world *wd)
{
	for (size_t i = 0; i < wd->np; i++) {
		if (wd->p[i].engageable)
			assert_int_equal(wd->p[i].owner, wd->p[i].desired);
		else
			assert_int_equal(wd->p[i].owner, -1);
	}
}

static void
test_plan_engage_new(void **state)
{
	(void) state;
	world wd;
	world_init(&wd, 3, 30);
	world_shard(&wd);
	mcf_plan_stats st;
	size_t         n = world_plan(&wd, &st);
	assert_int_equal(n, 30);
	assert_int_equal(st.engages, 30);
	assert_int_equal(st.disengages, 0);
	assert_false(st.gated);
	assert_converged(&wd);
	/* Nothing more to do once converged. */
	world_synced(&wd);
	assert_int_equal(world_plan(&wd, NULL), 0);
}

static void
test_plan_pacing(void **state)
{
	(void) state;
	world wd;
	world_init(&wd, 4, 100);
	wd.max_engages = 32;
	world_shard(&wd);
	mcf_plan_stats st;
	world_plan(&wd, &st);
	assert_int_equal(st.engages, 32);
	assert_int_equal(st.paced, 68);
	/* In flight engages hold the budget: nothing more. */
	world_plan(&wd, &st);
	assert_int_equal(st.engages, 0);
	assert_int_equal(st.inflight, 32);
	/* Ten report synced: ten more go out. */
	size_t done = 0;
	for (size_t i = 0; i < wd.np && done < 10; i++)
		if (wd.p[i].inflight) {
			wd.p[i].inflight = false;
			done++;
		}
	world_plan(&wd, &st);
	assert_int_equal(st.engages, 10);
	/* Eventually all converge, never more than 32 in flight. */
	for (int r = 0; r < 20; r++) {
		world_synced(&wd);
		world_plan(&wd, &st);
		assert_true(st.inflight + st.engages <= 32);
	}
	world_synced(&wd);
	assert_converged(&wd);
}

static void
test_plan_minimal_movement_handoff(void **state)
{
	(void) state;
	world wd;
	world_init(&wd, 4, 300);
	wd.w[3].live = false; /* starts with 3 workers */
	world_shard(&wd);
	world_converge(&wd);
	assert_converged(&wd);

	/* Remember the table, add the fourth worker. */
	int before[MAXP];
	for (size_t i = 0; i < wd.np; i++)
		before[i] = wd.p[i].owner;
	wd.w[3].live = true;
	world_shard(&wd);
	size_t want = 0;
	for (size_t i = 0; i < wd.np; i++)
		want += wd.p[i].desired != before[i];
	assert_true(want > 0);

	/* First plan: only disengages, exactly the projects that move. */
	size_t         e0 = wd.engages;
	mcf_plan_stats st;
	world_plan(&wd, &st);
	assert_int_equal(st.engages, 0);
	assert_int_equal(st.moves, want);
	assert_int_equal(wd.engages, e0);
	/* Nothing is engaged before STOPPED. */
	world_plan(&wd, &st);
	assert_int_equal(st.engages, 0);
	assert_int_equal(st.moving, want);
	/* STOPPED: the engages follow on the new owner. */
	world_stopped(&wd);
	world_plan(&wd, &st);
	assert_int_equal(st.engages, want);
	assert_converged(&wd);

	/* The number moved is the sharder's own count, near the minimum
	 * (a quarter of the projects). */
	const char *names[MAXP];
	int         after[MAXP];
	for (size_t i = 0; i < wd.np; i++) {
		names[i] = wd.pname[i];
		after[i] = wd.p[i].owner;
	}
	mcf_sharder_worker sw[MAXW];
	for (size_t i = 0; i < wd.nw; i++)
		sw[i] = (mcf_sharder_worker) { wd.wname[i], 1 };
	mcf_sharder_table b = { names, wd.np, sw, wd.nw, before };
	mcf_sharder_table a = { names, wd.np, sw, wd.nw, after };
	mcf_sharder_moves mv;
	assert_int_equal(mcf_sharder_count_moves(&b, &a, &mv), MCF_OK);
	assert_int_equal(mv.moved, want);
	assert_true(want <= wd.np / 4 + wd.np / 10);
}

static void
test_plan_moves_paced(void **state)
{
	(void) state;
	world wd;
	world_init(&wd, 4, 200);
	wd.w[3].live = false;
	world_shard(&wd);
	world_converge(&wd);
	wd.w[3].live   = true;
	wd.max_engages = 5;
	world_shard(&wd);
	mcf_plan_stats st;
	world_plan(&wd, &st);
	assert_int_equal(st.moves, 5);
	/* Moving projects hold the budget until they are engaged and
	 * synced. */
	world_plan(&wd, &st);
	assert_int_equal(st.moves, 0);
	assert_int_equal(st.moving, 5);
	world_converge(&wd);
	assert_converged(&wd);
}

static void
test_plan_leaving(void **state)
{
	(void) state;
	world wd;
	world_init(&wd, 3, 60);
	world_shard(&wd);
	world_converge(&wd);
	size_t on1 = 0;
	for (size_t i = 0; i < wd.np; i++)
		on1 += wd.p[i].owner == 1;
	assert_true(on1 > 0);

	/* Worker 1 says LEAVING: it leaves the sharder's input. */
	wd.w[1].leaving = true;
	world_shard(&wd);
	mcf_plan_action *a = NULL;
	size_t           n = 0;
	mcf_plan_stats   st;
	mcf_plan_compute(wd.w, wd.nw, wd.p, wd.np, 1000, &a, &n, &st);
	/* Every action is a disengage from worker 1 for LEAVING (rebalance
	 * of the others may follow but the leaving ones come first). */
	size_t leaving = 0;
	for (size_t k = 0; k < n; k++) {
		assert_int_equal(a[k].kind, MCF_PLAN_DISENGAGE);
		if (a[k].why == MCF_PLAN_WHY_LEAVING) {
			assert_int_equal(a[k].worker, 1);
			assert_int_equal(leaving, k);
			leaving++;
		}
	}
	assert_int_equal(leaving, on1);
	free(a);
	world_plan(&wd, NULL);
	world_stopped(&wd);
	world_converge(&wd);
	assert_converged(&wd);
	for (size_t i = 0; i < wd.np; i++)
		assert_int_not_equal(wd.p[i].owner, 1);

	/* Leaving with a budget of 1: leaving moves go before rebalance. */
	world_init(&wd, 3, 60);
	world_shard(&wd);
	world_converge(&wd);
	wd.w[0].leaving = true;
	wd.w[1].live    = false; /* and worker 1 is gone */
	for (size_t i = 0; i < wd.np; i++)
		if (wd.p[i].owner == 1) {
			wd.p[i].owner = -1;
			wd.rel[i][1]  = 0;
		}
	world_shard(&wd);
	wd.max_engages = 1;
	mcf_plan_compute(wd.w, wd.nw, wd.p, wd.np, 1, &a, &n, &st);
	assert_int_equal(n, 1);
	assert_int_equal(a[0].kind, MCF_PLAN_ENGAGE); /* unowned first */
	free(a);
}

static void
test_plan_leaving_without_target_releases(void **state)
{
	(void) state;
	world wd;
	world_init(&wd, 1, 10);
	world_shard(&wd);
	world_converge(&wd);
	/* The only worker leaves: nowhere to go, so its projects are
	 * disengaged at once (paced) rather than held until its drain
	 * timeout; nothing is engaged anywhere. */
	wd.w[0].leaving = true;
	world_shard(&wd);
	mcf_plan_stats st;
	assert_int_equal(world_plan(&wd, &st), 10);
	assert_int_equal(st.disengages, 10);
	assert_int_equal(st.engages, 0);
	world_stopped(&wd);
	assert_int_equal(world_plan(&wd, &st), 0);
	for (size_t i = 0; i < wd.np; i++)
		assert_int_equal(wd.p[i].owner, -1);
	/* A worker that is live but not a target (not connected) is no
	 * reason to wait either when the sharder placed nothing on it. */
	world_init(&wd, 2, 10);
	world_shard(&wd);
	world_converge(&wd);
	wd.w[0].leaving = true;
	world_shard(&wd);
	wd.w[1].connected = false;
	world_plan(&wd, &st);
	assert_int_equal(st.disengages, 0); /* targets exist: they wait */
}

static void
test_plan_gone_direct_engage(void **state)
{
	(void) state;
	world wd;
	world_init(&wd, 3, 60);
	world_shard(&wd);
	world_converge(&wd);
	/* Worker 2 is proven gone: the caller drops its ownership; the
	 * planner engages its projects directly (no disengage). */
	size_t lost  = 0;
	wd.w[2].live = false;
	for (size_t i = 0; i < wd.np; i++)
		if (wd.p[i].owner == 2) {
			wd.p[i].owner = -1;
			wd.rel[i][2]  = 0;
			lost++;
		}
	world_shard(&wd);
	mcf_plan_stats st;
	world_plan(&wd, &st);
	assert_true(st.engages >= lost);
	assert_int_equal(st.moves, 0);
	world_synced(&wd);
	world_converge(&wd);
	assert_converged(&wd);
}

static void
test_plan_new_leader_waits_for_reports(void **state)
{
	(void) state;
	world wd;
	world_init(&wd, 3, 30);
	world_shard(&wd);
	/* A new leader: worker 2 is live but has not reported. */
	wd.w[2].known = false;
	/* One project is no longer engageable and owned by worker 0. */
	wd.p[0].owner      = 0;
	wd.rel[0][0]       = 1;
	wd.p[0].engageable = false;
	mcf_plan_stats st;
	size_t         n = world_plan(&wd, &st);
	assert_true(st.gated);
	assert_int_equal(st.engages, 0);
	assert_int_equal(st.moves, 0);
	/* The unengageable one is still disengaged. */
	assert_int_equal(n, 1);
	assert_int_equal(st.disengages, 1);
	/* Worker 2 reports: engages start. */
	wd.w[2].known = true;
	world_stopped(&wd);
	world_plan(&wd, &st);
	assert_false(st.gated);
	assert_int_equal(st.engages, 29);
	/* A gone worker does not gate: an unknown worker that is not live
	 * is ignored. */
	world_init(&wd, 3, 30);
	wd.w[2].known = false;
	wd.w[2].live  = false;
	world_shard(&wd);
	world_plan(&wd, &st);
	assert_false(st.gated);
	assert_int_equal(st.engages, 30);
	/* Nor does a worker proven to run nothing (its Lease said so this
	 * term) that never connected: the projects placed elsewhere are
	 * engaged, those placed on it wait for it to connect. */
	world_init(&wd, 3, 30);
	wd.w[2].known     = false;
	wd.w[2].empty     = true;
	wd.w[2].connected = false;
	world_shard(&wd);
	size_t elsewhere = 0;
	for (size_t i = 0; i < wd.np; i++)
		elsewhere += wd.p[i].desired != 2;
	assert_true(elsewhere > 0 && elsewhere < 30);
	world_plan(&wd, &st);
	assert_false(st.gated);
	assert_int_equal(st.engages, elsewhere);
	assert_int_equal(st.waiting, 30 - elsewhere);
}

static void
test_plan_targets_must_be_ready(void **state)
{
	(void) state;
	world wd;
	world_init(&wd, 2, 40);
	wd.w[1].connected = false; /* joining: Lease live, no session */
	world_shard(&wd);
	mcf_plan_stats st;
	world_plan(&wd, &st);
	size_t want0 = 0;
	for (size_t i = 0; i < wd.np; i++)
		want0 += wd.p[i].desired == 0;
	assert_int_equal(st.engages, want0);
	assert_int_equal(st.waiting, wd.np - want0);
	/* A project on worker 0 that worker 1 should have: no move while
	 * worker 1 cannot take it. */
	world_synced(&wd);
	world_init(&wd, 2, 40);
	world_shard(&wd);
	for (size_t i = 0; i < wd.np; i++) {
		wd.p[i].owner = 0;
		wd.rel[i][0]  = 1;
	}
	wd.w[1].connected = false;
	world_plan(&wd, &st);
	assert_int_equal(st.moves, 0);
	/* ... nor from a disconnected owner, nor of an engage in flight. */
	wd.w[1].connected = true;
	wd.w[0].connected = false;
	world_plan(&wd, &st);
	assert_int_equal(st.moves, 0);
	wd.w[0].connected = true;
	for (size_t i = 0; i < wd.np; i++)
		wd.p[i].inflight = true;
	world_plan(&wd, &st);
	assert_int_equal(st.moves, 0);
}

static void
test_plan_unengageable(void **state)
{
	(void) state;
	world wd;
	world_init(&wd, 2, 20);
	world_shard(&wd);
	world_converge(&wd);
	/* Five projects stop being engageable: disengaged, unpaced. */
	for (size_t i = 0; i < 5; i++)
		wd.p[i].engageable = false;
	world_shard(&wd);
	wd.max_engages = 0;
	mcf_plan_stats st;
	world_plan(&wd, &st);
	assert_int_equal(st.disengages, 5);
	assert_int_equal(st.moves, 0);
	world_stopped(&wd);
	wd.max_engages = 10;
	assert_int_equal(world_plan(&wd, NULL), 0);
	assert_converged(&wd);
	/* Not engageable and released: never engaged again. */
	for (size_t i = 0; i < 5; i++)
		assert_int_equal(wd.p[i].owner, -1);
}

static void
test_plan_releasing_blocks_engage(void **state)
{
	(void) state;
	world wd;
	world_init(&wd, 2, 1);
	world_shard(&wd);
	/* A worker that may still run it (a report from another worker): no
	 * engage until it confirms. */
	wd.p[0].releasing              = 1;
	wd.rel[0][1 - wd.p[0].desired] = 1;
	mcf_plan_stats st;
	assert_int_equal(world_plan(&wd, &st), 0);
	assert_int_equal(st.waiting, 1);
	world_stopped(&wd);
	assert_int_equal(world_plan(&wd, &st), 1);
}

static uint64_t
rnd(uint64_t *s)
{
	uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));
	z          = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z          = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

/* Random membership, readiness, project and answer events; the world's
 * assertions check on every engage that nobody else may run the project.
 * Answers are delayed and partial, workers die (their projects freed, as
 * the coordinator does for a proven-gone worker) and come back. */
static void
test_plan_never_two_owners(void **state)
{
	(void) state;
	uint64_t seed = 42;
	world    wd;
	world_init(&wd, 6, 150);
	wd.max_engages = 16;
	for (int round = 0; round < 3000; round++) {
		uint64_t r = rnd(&seed) % 100;
		size_t   w = rnd(&seed) % wd.nw;
		size_t   p = rnd(&seed) % wd.np;
		if (r < 3) { /* a worker is proven gone */
			wd.w[w].live = false;
			for (size_t i = 0; i < wd.np; i++) {
				if (wd.p[i].owner == (int) w) {
					wd.p[i].owner    = -1;
					wd.p[i].inflight = false;
				}
				if (wd.rel[i][w] && wd.p[i].owner != (int) w
				    && wd.p[i].releasing > 0)
					wd.p[i].releasing--;
				wd.rel[i][w] = 0;
			}
		} else if (r < 6) { /* a new incarnation joins */
			if (!wd.w[w].live)
				wd.w[w] = (mcf_plan_worker) { true, false,
					rnd(&seed) % 2, true, false };
		} else if (r < 8) {
			wd.w[w].known = true;
		} else if (r < 10) {
			wd.w[w].connected = !wd.w[w].connected;
		} else if (r < 11) {
			wd.w[w].leaving = true;
		} else if (r < 16) {
			wd.p[p].engageable = !wd.p[p].engageable;
		} else if (r < 40) { /* some STOPPED arrive */
			for (size_t i = 0; i < wd.np; i++)
				for (size_t j = 0; j < wd.nw; j++)
					if (wd.rel[i][j]
					    && wd.p[i].owner != (int) j
					    && rnd(&seed) % 3 == 0) {
						wd.rel[i][j] = 0;
						wd.p[i].releasing--;
					}
		} else if (r < 60) { /* some report synced */
			for (size_t i = 0; i < wd.np; i++)
				if (rnd(&seed) % 2)
					wd.p[i].inflight = false;
		}
		world_shard(&wd);
		world_plan(&wd, NULL);
		for (size_t i = 0; i < wd.np; i++) {
			assert_true(holders(&wd, i) <= 1);
			assert_int_equal(
			    wd.p[i].releasing + (wd.p[i].owner >= 0 ? 1 : 0),
			    holders(&wd, i));
		}
	}
	/* Calm: everyone known, connected, answers arrive: converges. */
	for (size_t j = 0; j < wd.nw; j++) {
		wd.w[j].known     = true;
		wd.w[j].connected = true;
	}
	world_shard(&wd);
	world_converge(&wd);
	assert_converged(&wd);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plan_engage_new),
		cmocka_unit_test(test_plan_pacing),
		cmocka_unit_test(test_plan_minimal_movement_handoff),
		cmocka_unit_test(test_plan_moves_paced),
		cmocka_unit_test(test_plan_leaving),
		cmocka_unit_test(test_plan_leaving_without_target_releases),
		cmocka_unit_test(test_plan_gone_direct_engage),
		cmocka_unit_test(test_plan_new_leader_waits_for_reports),
		cmocka_unit_test(test_plan_targets_must_be_ready),
		cmocka_unit_test(test_plan_unengageable),
		cmocka_unit_test(test_plan_releasing_blocks_engage),
		cmocka_unit_test(test_plan_never_two_owners),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

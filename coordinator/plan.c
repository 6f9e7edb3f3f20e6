/*
 * plan.c — the assignment planner (plan.h has the rules).
 *
 * Three passes over the projects, in input order: disengage what is no
 * longer engageable; engage what has no owner; move what sits on a
 * leaving worker, then what the sharder placed elsewhere.  The budget of
 * rule 5 is computed once from the inputs and spent by the engage pass
 * first, then by the move passes.
 */
#include <stdlib.h>

#include "alloc.h"
#include "plan.h"

typedef struct plan {
	const mcf_plan_worker *w;
	size_t                 nw;
	mcf_plan_action       *a;
	size_t                 n, cap;
} plan;

static int
idx(const plan *p, int i)
{
	return i >= 0 && (size_t) i < p->nw ? i : -1;
}

static void
push(plan *p, enum mcf_plan_kind kind, enum mcf_plan_why why, size_t project,
    int worker)
{
	if (p->n == p->cap) {
		p->cap = p->cap ? 2 * p->cap : 16;
		p->a   = mcf_realloc(p->a, p->cap * sizeof(*p->a));
	}
	p->a[p->n++] = (mcf_plan_action) { kind, why, project, worker };
}

/* A worker that may receive an engage now. */
static bool
ready(const plan *p, int i)
{
	if (i < 0)
		return false;
	const mcf_plan_worker *w = &p->w[i];
	return w->live && w->known && w->connected && !w->leaving;
}

void
mcf_plan_compute(const mcf_plan_worker *workers, size_t nworkers,
    const mcf_plan_project *projects, size_t nprojects, size_t max_engages,
    mcf_plan_action **out, size_t *nout, mcf_plan_stats *st)
{
	plan           p = { workers, nworkers, NULL, 0, 0 };
	mcf_plan_stats s = { 0 };

	for (size_t i = 0; i < nworkers; i++) {
		if (workers[i].live && !workers[i].known && !workers[i].empty)
			s.gated = true;
	}
	for (size_t i = 0; i < nprojects; i++) {
		const mcf_plan_project *pr = &projects[i];
		int                     o  = idx(&p, pr->owner);
		if (o >= 0 && pr->inflight)
			s.inflight++;
		if (o < 0 && pr->engageable && pr->releasing > 0)
			s.moving++;
	}
	size_t used   = s.inflight + s.moving;
	size_t budget = used < max_engages ? max_engages - used : 0;

	/* 1. No longer engageable: disengage, unpaced, even when gated. */
	for (size_t i = 0; i < nprojects; i++) {
		const mcf_plan_project *pr = &projects[i];
		int                     o  = idx(&p, pr->owner);
		if (o >= 0 && !pr->engageable) {
			push(&p, MCF_PLAN_DISENGAGE, MCF_PLAN_WHY_UNENGAGEABLE,
			    i, o);
			s.disengages++;
		}
	}

	/* 3. Engage projects nobody runs. */
	for (size_t i = 0; i < nprojects; i++) {
		const mcf_plan_project *pr = &projects[i];
		if (!pr->engageable || idx(&p, pr->owner) >= 0)
			continue;
		int d = idx(&p, pr->desired);
		if (s.gated || pr->releasing > 0 || !ready(&p, d)) {
			s.waiting++;
			continue;
		}
		if (budget == 0) {
			s.paced++;
			continue;
		}
		push(&p, MCF_PLAN_ENGAGE, MCF_PLAN_WHY_NEW, i, d);
		s.engages++;
		budget--;
	}

	/* 4. Moves: first off leaving workers, then rebalance. */
	for (int pass = 0; pass < 2 && !s.gated; pass++) {
		for (size_t i = 0; i < nprojects; i++) {
			const mcf_plan_project *pr = &projects[i];
			int                     o  = idx(&p, pr->owner);
			int                     d  = idx(&p, pr->desired);
			if (o < 0 || !pr->engageable || d == o)
				continue;
			if (workers[o].leaving != (pass == 0))
				continue;
			/* Off a leaving worker with no worker left to take
			 * it: disengage at once (waiting cannot help: a
			 * restarting single worker comes back only after
			 * it exits); the project waits unowned. */
			bool nowhere = pass == 0 && d < 0;
			if ((!nowhere && !ready(&p, d)) || !workers[o].connected
			    || pr->inflight)
				continue;
			if (budget == 0) {
				s.paced++;
				continue;
			}
			push(&p, MCF_PLAN_DISENGAGE,
			    pass == 0 ? MCF_PLAN_WHY_LEAVING
			              : MCF_PLAN_WHY_REBALANCE,
			    i, o);
			s.disengages++;
			s.moves++;
			budget--;
		}
	}

	*out  = p.a;
	*nout = p.n;
	if (st != NULL)
		*st = s;
}

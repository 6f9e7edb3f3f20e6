/*
 * plan.h — the assignment planner: a pure function from the leader's view
 * of the fleet to the engages and disengages to send now.
 *
 * docs/fleet.md ("Planning and pacing", "Hand-off confirmation") is the
 * contract.  The inputs are what the leader knows at one instant:
 *
 *   - per worker: whether its Lease is live, whether it is leaving,
 *     whether the leader knows what it runs (it reported, or holds
 *     nothing), and whether a welcomed session reaches it;
 *   - per project: whether it is engageable, its desired owner (from
 *     mcf_sharder_assign over the live, non-leaving workers), its current
 *     owner (the worker whose table lists it), whether that owner's engage
 *     is still in flight (not reported synced or failing), and how many
 *     workers may still run it after a disengage (no STOPPED yet).
 *
 * The output is a list of actions.  Rules, in this order:
 *
 *   1. A project that is not engageable is disengaged from its owner
 *      (always allowed, never paced).
 *   2. The gate: when any live worker is not known, nothing is engaged and
 *      nothing moves (a new leader waits for every report) — except a
 *      worker proven to run nothing (`empty`), which has nothing to
 *      report.
 *   3. Engage: a project without owner, that no worker may still run, is
 *      engaged on its desired owner when that worker is live, known,
 *      connected and not leaving.
 *   4. Moves off leaving workers, then rebalance moves (desired owner !=
 *      owner): the owner is told to disengage when the desired owner is
 *      ready to take the project (as in 3), the owner is connected and its
 *      engage is not in flight.  The engage follows, by rule 3, once the
 *      owner confirmed it stopped.  A project on a leaving worker with no
 *      desired owner at all (no other live worker) is disengaged at once:
 *      no one can take it, and the leaving worker should not wait.
 *   5. Pacing: engages in flight, plus projects between disengage and
 *      engage (moving: engageable, no owner, someone may still run it),
 *      plus the engages and move-disengages of this plan never exceed
 *      max_engages.  Rule 3 takes the budget before rule 4.
 *
 * So a project never has two outstanding owners: an engage is planned
 * only for a project with no owner and no worker that may still run it.
 * Projects are considered in input order (the caller sorts them), which
 * makes the plan deterministic.
 *
 * Thread model: no state; any thread.  Inputs are borrowed for the call.
 */
#ifndef MCF_COORDINATOR_PLAN_H
#define MCF_COORDINATOR_PLAN_H

#include <stdbool.h>
#include <stddef.h>

/* A worker as the planner sees it: a plain value type. */
typedef struct mcf_plan_worker {
	bool live;      /* its Lease is live (not proven gone) */
	bool leaving;   /* it sent LEAVING */
	bool known;     /* the leader knows what it runs */
	bool connected; /* a welcomed session: a delta reaches it now */
	bool empty;     /* not known, but proven to run nothing (its Lease
	                   said so this term): engages need not wait for it */
} mcf_plan_worker;

/* A project as the planner sees it: a plain value type.  Worker fields
 * are indices into the workers array, or -1. */
typedef struct mcf_plan_project {
	bool     engageable;
	int      desired;  /* owner per the sharder, or -1 (no live worker) */
	int      owner;    /* worker whose table lists it, or -1 */
	bool     inflight; /* owner's engage sent, not yet synced or failing */
	unsigned releasing; /* workers that may still run it after a
	                       disengage (no STOPPED yet) */
} mcf_plan_project;

enum mcf_plan_kind {
	MCF_PLAN_ENGAGE    = 1,
	MCF_PLAN_DISENGAGE = 2,
};

/* Why an action was planned (for logs and counters). */
enum mcf_plan_why {
	MCF_PLAN_WHY_NEW = 1,      /* engage: project has no owner */
	MCF_PLAN_WHY_UNENGAGEABLE, /* disengage: no longer engageable */
	MCF_PLAN_WHY_LEAVING,      /* disengage: owner is leaving */
	MCF_PLAN_WHY_REBALANCE,    /* disengage: desired owner changed */
};

/* One action: a plain value type. */
typedef struct mcf_plan_action {
	enum mcf_plan_kind kind;
	enum mcf_plan_why  why;
	size_t             project; /* index into the projects array */
	int                worker;  /* engage: the new owner; disengage: the
	                               current owner */
} mcf_plan_action;

/* Summary of a plan: a plain value type. */
typedef struct mcf_plan_stats {
	size_t inflight;   /* engages in flight before this plan */
	size_t moving;     /* projects between disengage and engage before */
	size_t engages;    /* planned engages */
	size_t disengages; /* planned disengages (all reasons) */
	size_t moves;      /* planned move-disengages (leaving + rebalance) */
	size_t paced;      /* engages or moves held back by the budget */
	size_t waiting;    /* engageable projects without owner that could
	                      not be engaged for another reason */
	bool gated;        /* a live worker is not known: no engage, no move */
} mcf_plan_stats;

/* Computes the plan.  `workers` (nworkers) and `projects` (nprojects)
 * are borrowed for the call; worker indices out of range are treated as
 * -1.  `max_engages` is the pacing limit (0 means nothing may be engaged
 * or moved).  `*out` receives a new array (free()) of `*nout` actions, in
 * the order to apply them (NULL when none); `st` (may be NULL) receives
 * the summary.  Never fails (alloc.h aborts on out of memory). */
void mcf_plan_compute(const mcf_plan_worker *workers, size_t nworkers,
    const mcf_plan_project *projects, size_t nprojects, size_t max_engages,
    mcf_plan_action **out, size_t *nout, mcf_plan_stats *st);

#endif /* MCF_COORDINATOR_PLAN_H */

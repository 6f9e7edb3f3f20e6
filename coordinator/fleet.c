/*
 * fleet.c — the coordinator's control state machine and its NNG transport
 * (fleet.h describes the threads; docs/fleet.md the behaviour).
 *
 * How it works.  Every input becomes an event on one queue: informer
 * events (projects, Leases), elector changes, NNG pipe additions and
 * removals, received frames, and status requests.  The control thread
 * (mcf_fleet_run) takes the queued events in order and then runs one
 * *step*: timers (Lease expiry, provider grace, heartbeats, report
 * deadlines, retransmission), the sharder when its inputs changed, the
 * planner when anything it reads changed, and finally the flush, which
 * sends each worker at most one ASSIGN_DELTA with everything planned for
 * it in this step.
 *
 * Ownership bookkeeping, per project, while leading:
 *   owner     — the worker whose table lists the project (at most one);
 *   rel[]     — workers that may still run it after it left their table:
 *               (worker, v_d = version of the table that dropped it,
 *               v_engage = version that last engaged it there).  An entry
 *               goes on STOPPED / a `stopped` report (once the worker
 *               acknowledged v_engage), on a full ACK with applied >= v_d
 *               that does not list it, or when the worker is proven gone.
 * The planner engages a project only when it has no owner and no rel
 * entry, so no project ever has two workers that may run it.
 *
 * Per worker (struct wk, one per member, following its incarnation): the
 * current session, what the leader knows about what it runs (`know`), the
 * last table version sent and acknowledged.  A worker's knowledge:
 *   K_UNKNOWN    it may run anything: no snapshot until its report;
 *   K_WAIT_ACK   a snapshot (v = know_v) was sent; known once acked;
 *   K_AFTER_HELLO known to hold nothing of ours, but must get a snapshot
 *                (a revived incarnation); a HELLO sends it;
 *   K_KNOWN      the leader knows its table and what it may still run.
 *
 * Sending: NNG's pair1 polyamorous socket queues only two messages per
 * pipe and drops the rest, so at most two messages go to a session per
 * step; whatever does not fit (heartbeat, delta) waits for the next step,
 * which then comes after a few milliseconds.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/pair1/pair.h>
#include <nng/transport/tcp/tcp.h>

#include "alloc.h"
#include "conn.h"
#include "fleet.h"
#include "json.h"
#include "log.h"
#include "members.h"
#include "metrics.h"
#include "plan.h"
#include "reject.h"
#include "replay.h"
#include "sharder.h"
#include "status.h"
#include "strmap.h"

#define TICK_MS 250
#define REPORT_WAIT_BEATS 3
#define RETRANSMIT_BEATS 5
#define CLOSE_DELAY_MS 500
/* How long stopping waits for nng_close (mcf_proto_close_bounded). */
#define CLOSE_WAIT_MS 2000
/* Least time a worker whose Lease appeared gets to say HELLO before the
 * sharder passes it over (unreachable()); at least 4 heartbeats. */
#define JOIN_GRACE_MIN_MS 3000
/* Cold start (settle_left()): early in a term, engages wait until no new
 * worker has appeared for SETTLE_QUIET_MS, at most SETTLE_MAX_MS into the
 * term. */
#define SETTLE_QUIET_MS 1000
#define SETTLE_MAX_MS 10000
#define MAX_SENDS_PER_STEP 2
#define MAX_QUEUED_FRAMES 65536

/* ---- clocks ------------------------------------------------------------- */

static int64_t
mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t
wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- state -------------------------------------------------------------- */

typedef struct wk   wk;
typedef struct sess sess;
typedef struct proj proj;

enum know { K_UNKNOWN = 0, K_WAIT_ACK, K_AFTER_HELLO, K_KNOWN };

enum pst { PS_PENDING = 0, PS_ENGAGING, PS_SYNCED, PS_FAILING };

static const char *const pst_name[]
    = { "pending", "engaging", "synced", "failing" };

typedef struct rel {
	wk      *w;        /* borrowed */
	uint64_t v_d;      /* table version that dropped it; 0: not sent */
	uint64_t v_engage; /* version that engaged it on w; 0: before us */
} rel;

struct proj {
	char              *name;    /* owned */
	bool               present; /* the provider object exists */
	mcf_provider_state pv;
	char              *endpoint; /* owned, NULL until engageable once */
	wk                *owner;    /* borrowed */
	wk                *desired;  /* borrowed */
	uint64_t           engage_version; /* delta that engaged it on owner */
	bool               inflight;
	enum pst           state;
	char               reason[256];
	int64_t            since_ms; /* unix ms of the last state change */
	rel               *rel;      /* owned array */
	size_t             nrel, caprel;
	bool               moving; /* disengaged for a move */
	bool               armed;  /* engage latency being measured */
	int64_t need_ms;           /* mono: when it started needing an owner */
};

struct wk {
	mcf_member *m;   /* borrowed: same lifetime (freed on FORGET) */
	sess       *s;   /* borrowed: the welcomed session, or NULL */
	char       *inc; /* owned: the incarnation `know` is about */
	enum know   know;
	uint64_t    know_v;
	int64_t     report_deadline_ms;
	uint64_t    acked, sent;
	int64_t     unacked_since_ms;
	int64_t     last_rx_wall_ms;
	size_t      nowned, nrel;
	proj      **eng; /* pending delta: borrowed projects */
	size_t      neng, capeng;
	proj      **dis;
	size_t      ndis, capdis;
	int         pidx;
	bool        waiting_logged;
};

enum sstate { S_NEW = 0, S_WELCOMED, S_CLOSING };

struct sess {
	uint32_t        pipe;
	char            key[16];
	mcf_proto_conn *conn; /* owned */
	char            peer[96];
	enum sstate     st;
	wk             *w;   /* borrowed */
	char           *inc; /* owned, after HELLO */
	uint32_t        minor;
	int64_t         close_at_ms;
	uint64_t        hb_seq;
	int             sends; /* this step */
	int64_t         last_rx_ms;
	bool            suspect;
};

enum ev_kind {
	EV_PROJ = 1,
	EV_LEASE,
	EV_LEAD,
	EV_UNLEAD,
	EV_PIPE_ADD,
	EV_PIPE_REM,
	EV_MSG,
};

enum ev_op { OP_UPSERT = 1, OP_DELETE };

typedef struct ev {
	struct ev   *next;
	enum ev_kind kind;
	enum ev_op   op;
	json_t      *obj; /* owned reference */
	uint32_t     pipe;
	nng_msg     *msg; /* owned */
	mcf_le_fence term;
	char         peer[96];
} ev;

typedef struct metrics_t {
	mcf_metrics_series *leader, *engaged, *version, *handoffs, *engages;
	mcf_metrics_series *fo_leader, *fo_worker, *fo_projects, *latency;
	mcf_metrics_series *pst[4];
	mcf_metrics_family *assign, *workers, *disengages;
} metrics_t;

struct mcf_fleet {
	/* configuration (owned copies) */
	char            *identity, *namespace, *lease_name, *selector;
	char            *core_server, *tmpl, *ua;
	char            *listen_url, *address, *adv_host, *status_url;
	mcf_provider_cfg pcfg;
	int64_t          hb_ms;
	size_t           max_engages;
	double           epsilon;
	size_t           max_frame;
	mcf_kubeconfig  *kc; /* owned copy */
	mcf_le          *le; /* borrowed */

	/* protocol, shared by every session */
	mcf_proto_keys         *keys; /* borrowed */
	mcf_proto_replay       *replay;
	mcf_proto_reject_stats *rstats;
	bool                    collector;

	/* NNG */
	nng_socket   sock;
	nng_listener lst;
	nng_aio     *rx;
	bool         sock_open;

	/* informers */
	mcf_inf_loop *loop; /* borrowed */
	mcf_inf      *pinf, *linf;
	uint64_t      ph, lh;

	/* the queue (mtx) and status hand-off (mtx + cv) */
	pthread_mutex_t mtx;
	pthread_cond_t  cv;
	ev             *qhead, *qtail;
	size_t          qframes;
	uint64_t        qdropped;
	int             efd;
	uint64_t        st_req, st_done;
	char           *st_doc;
	atomic_bool     ready;
	atomic_llong    alive_ms;
	bool            stopped;

	/* control-thread state */
	bool           leading;
	mcf_proto_term term;
	bool           synced;
	mcf_strmap    *projects; /* name → proj */
	proj         **order;    /* sorted by name */
	size_t         norder;
	bool           order_dirty, dirty_shard, dirty_plan, sweep;
	mcf_members   *members;
	mcf_strmap    *sessions; /* pipe id text → sess */
	uint64_t       version;
	int64_t        next_tick_ms, next_hb_ms, grace_deadline_ms;
	int64_t        next_gauges_ms;
	bool           again;
	char         **held; /* names of workers engages wait for */
	size_t         n_unreachable; /* live, passed over by the sharder */
	int64_t        term_ms;       /* mono ms the term began */
	int64_t        settle_until_ms; /* re-plan then; 0: not settling */
	size_t         nheld;
	int64_t        held_logged_ms;

	/* counters (also in /status) */
	uint64_t handoffs, worker_failovers, projects_failed_over;
	uint64_t leader_acquisitions, engages, disengages;
	uint64_t inflight, moving;

	metrics_t met;
};

/* ---- small helpers ------------------------------------------------------ */

static void
lock(mcf_fleet *f)
{
	if (pthread_mutex_lock(&f->mtx) != 0)
		mcf_panic("pthread_mutex_lock");
}

static void
unlock(mcf_fleet *f)
{
	if (pthread_mutex_unlock(&f->mtx) != 0)
		mcf_panic("pthread_mutex_unlock");
}

static void
wake(mcf_fleet *f)
{
	uint64_t one = 1;
	ssize_t  n   = write(f->efd, &one, sizeof(one));
	(void) n; /* a saturated eventfd already wakes the loop */
}

static void
post(mcf_fleet *f, ev *e)
{
	lock(f);
	if (f->stopped) {
		unlock(f);
		json_decref(e->obj);
		if (e->msg != NULL)
			nng_msg_free(e->msg);
		free(e);
		return;
	}
	if (e->kind == EV_MSG) {
		if (f->qframes >= MAX_QUEUED_FRAMES) {
			f->qdropped++;
			unlock(f);
			nng_msg_free(e->msg);
			free(e);
			return;
		}
		f->qframes++;
	}
	if (f->qtail != NULL)
		f->qtail->next = e;
	else
		f->qhead = e;
	f->qtail = e;
	unlock(f);
	wake(f);
}

static void
push_ptr(proj ***arr, size_t *n, size_t *cap, proj *p)
{
	if (*n == *cap) {
		*cap = *cap ? 2 * *cap : 8;
		*arr = mcf_realloc(*arr, *cap * sizeof(**arr));
	}
	(*arr)[(*n)++] = p;
}

/* ---- metrics ------------------------------------------------------------ */

static mcf_metrics_series *
series0(mcf_metrics_family *fam)
{
	mcf_metrics_series *s = NULL;
	mcf_metrics_series_get(fam, NULL, &s);
	return s;
}

static mcf_metrics_series *
series1(mcf_metrics_family *fam, const char *v)
{
	const char *const   vals[] = { v, NULL };
	mcf_metrics_series *s      = NULL;
	mcf_metrics_series_get(fam, vals, &s);
	return s;
}

static void
metrics_init(mcf_fleet *f)
{
	mcf_metrics             *r = mcf_metrics_default();
	mcf_metrics_family      *fam;
	metrics_t               *m          = &f->met;
	static const char *const state_l[]  = { "state", NULL };
	static const char *const worker_l[] = { "worker", NULL };
	static const char *const kind_l[]   = { "kind", NULL };
	static const char *const reason_l[] = { "reason", NULL };
	static const double      bounds[]
	    = { 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120 };

	mcf_metrics_gauge_register(r, "mcfleet_coordinator_leader",
	    "1 while this coordinator leads and streams assignments.", NULL,
	    &fam);
	m->leader = series0(fam);
	mcf_metrics_gauge_register(r, "mcfleet_coordinator_engaged_projects",
	    "Projects assigned to a worker (in some worker's table).", NULL,
	    &fam);
	m->engaged = series0(fam);
	mcf_metrics_gauge_register(r, "mcfleet_coordinator_table_version",
	    "Last assignment table version sent.", NULL, &fam);
	m->version = series0(fam);
	mcf_metrics_gauge_register(r, "mcfleet_coordinator_projects",
	    "Projects by state (leader's view).", state_l, &fam);
	for (int i = 0; i < 4; i++)
		m->pst[i] = series1(fam, pst_name[i]);
	mcf_metrics_gauge_register(r, "mcfleet_coordinator_assignments",
	    "Projects assigned per worker.", worker_l, &m->assign);
	mcf_metrics_gauge_register(r, "mcfleet_coordinator_workers",
	    "Workers by state.", state_l, &m->workers);
	mcf_metrics_counter_register(r, "mcfleet_coordinator_handoffs_total",
	    "Planned moves completed (disengage, STOPPED, engage elsewhere).",
	    NULL, &fam);
	m->handoffs = series0(fam);
	mcf_metrics_counter_register(r, "mcfleet_coordinator_engages_total",
	    "Engages sent.", NULL, &fam);
	m->engages = series0(fam);
	mcf_metrics_counter_register(r, "mcfleet_coordinator_disengages_total",
	    "Disengages sent.", reason_l, &m->disengages);
	mcf_metrics_counter_register(r, "mcfleet_coordinator_failovers_total",
	    "Failovers: kind=leader counts terms this coordinator started "
	    "leading, kind=worker workers proven gone while owning projects.",
	    kind_l, &fam);
	m->fo_leader = series1(fam, "leader");
	m->fo_worker = series1(fam, "worker");
	mcf_metrics_counter_register(r,
	    "mcfleet_coordinator_projects_failed_over_total",
	    "Projects that lost their owner because it was proven gone.", NULL,
	    &fam);
	m->fo_projects = series0(fam);
	mcf_metrics_histogram_register(r,
	    "mcfleet_coordinator_engage_latency_seconds",
	    "From the moment a project needs an owner (Ready seen, owner "
	    "gone, or disengaged for a move) to its new owner reporting it "
	    "synced.",
	    NULL, bounds, sizeof(bounds) / sizeof(bounds[0]), &fam);
	m->latency = series0(fam);
}

/* ---- projects and workers ----------------------------------------------- */

static proj *
proj_get(mcf_fleet *f, const char *name, bool create)
{
	proj *p = mcf_strmap_get(f->projects, name);
	if (p != NULL || !create)
		return p;
	p           = mcf_calloc(1, sizeof(*p));
	p->name     = mcf_strdup(name);
	p->since_ms = wall_ms();
	snprintf(p->reason, sizeof(p->reason), "not seen yet");
	mcf_strmap_put(f->projects, name, p);
	f->order_dirty = true;
	return p;
}

static void
proj_free(proj *p)
{
	free(p->name);
	free(p->endpoint);
	free(p->rel);
	free(p);
}

static void
set_state(proj *p, enum pst st, const char *reason)
{
	if (p->state != st) {
		p->state    = st;
		p->since_ms = wall_ms();
	}
	snprintf(p->reason, sizeof(p->reason), "%s", reason ? reason : "");
}

static void
set_owner(proj *p, wk *w)
{
	if (p->owner != NULL)
		p->owner->nowned--;
	p->owner = w;
	if (w != NULL)
		w->nowned++;
}

static rel *
rel_find(proj *p, const wk *w)
{
	for (size_t i = 0; i < p->nrel; i++)
		if (p->rel[i].w == w)
			return &p->rel[i];
	return NULL;
}

static void
rel_add(proj *p, wk *w, uint64_t v_d, uint64_t v_engage)
{
	rel *r = rel_find(p, w);
	if (r != NULL) {
		/* Still the same worker: keep the newest versions. */
		if (v_d > r->v_d || v_d == 0)
			r->v_d = v_d;
		if (v_engage > r->v_engage)
			r->v_engage = v_engage;
		return;
	}
	if (p->nrel == p->caprel) {
		p->caprel = p->caprel ? 2 * p->caprel : 2;
		p->rel    = mcf_realloc(p->rel, p->caprel * sizeof(rel));
	}
	p->rel[p->nrel++] = (rel) { w, v_d, v_engage };
	w->nrel++;
}

static void
rel_remove(mcf_fleet *f, proj *p, const wk *w)
{
	for (size_t i = 0; i < p->nrel; i++) {
		if (p->rel[i].w != w)
			continue;
		p->rel[i].w->nrel--;
		p->rel[i]     = p->rel[--p->nrel];
		f->dirty_plan = true;
		if (!p->present && p->owner == NULL && p->nrel == 0)
			f->sweep = true;
		return;
	}
}

static wk *
wk_of(mcf_member *m)
{
	if (m->user == NULL) {
		wk *w   = mcf_calloc(1, sizeof(*w));
		w->m    = m;
		w->inc  = mcf_strdup(m->incarnation);
		w->pidx = -1;
		m->user = w;
	}
	return m->user;
}

/* Forgets everything a term taught about `w`'s tables. */
static void
wk_reset(wk *w)
{
	w->know               = K_UNKNOWN;
	w->know_v             = 0;
	w->report_deadline_ms = 0;
	w->acked              = 0;
	w->sent               = 0;
	w->unacked_since_ms   = 0;
	w->neng               = 0;
	w->ndis               = 0;
	w->waiting_logged     = false;
}

/* Sorted project order for the planner and deterministic output. */
static int
cmp_proj(const void *a, const void *b)
{
	return strcmp((*(proj *const *) a)->name, (*(proj *const *) b)->name);
}

static void
order_refresh(mcf_fleet *f)
{
	if (!f->order_dirty)
		return;
	size_t n = mcf_strmap_count(f->projects), pos = 0, i = 0;
	f->order = mcf_realloc(f->order, (n + 1) * sizeof(proj *));
	void *v;
	while (mcf_strmap_next(f->projects, &pos, NULL, &v))
		f->order[i++] = v;
	f->norder = i;
	qsort(f->order, f->norder, sizeof(proj *), cmp_proj);
	f->order_dirty = false;
}

/* ---- sending ------------------------------------------------------------ */

static bool
may_send(const sess *s)
{
	return s != NULL && s->sends < MAX_SENDS_PER_STEP;
}

/* Copies `frame` into an NNG message for `pipe` and hands it to NNG, which
 * owns it from then on (freed here only when the send fails).  Its own,
 * never inlined frame: nng 1.5.2 was seen (about one CI run in five) to
 * leave one such message unfreed at exit when a pipe closes while a send
 * is in flight inside pair1's queues, even after nng_fini(); the
 * sanitizer suppression in tests/lsan.supp names this function, and only
 * messages allocated in it. */
__attribute__((noinline)) static int
nng_handoff(nng_socket sock, uint32_t pipe, const uint8_t *frame, size_t len)
{
	nng_msg *nm;
	int      rv = nng_msg_alloc(&nm, len);
	if (rv != 0)
		return rv;
	memcpy(nng_msg_body(nm), frame, len);
	nng_pipe p;
	p.id = pipe;
	nng_msg_set_pipe(nm, p);
	rv = nng_sendmsg(sock, nm, 0);
	if (rv != 0)
		nng_msg_free(nm);
	return rv;
}

static void
send_msg(mcf_fleet *f, sess *s, const mcf_proto_msg *m)
{
	uint8_t    *frame = NULL;
	size_t      len   = 0;
	mcf_errinfo ei    = { 0 };
	if (mcf_proto_conn_seal(s->conn, m, &frame, &len, &ei) != MCF_OK) {
		mcf_log_error("COORD-SEAL", "cannot seal %s for %s: %s",
		    mcf_proto_msg_type_name(m->type), s->peer, ei.msg);
		return;
	}
	int rv = nng_handoff(f->sock, s->pipe, frame, len);
	free(frame);
	if (rv != 0) {
		mcf_log_debug("COORD-SEND", "send %s to %s: %s",
		    mcf_proto_msg_type_name(m->type), s->peer,
		    nng_strerror(rv));
	}
	s->sends++;
}

static void
send_not_leader(mcf_fleet *f, sess *s, int64_t now)
{
	mcf_members_leader li;
	mcf_proto_msg      m;
	mcf_members_leader_get(f->members, now, &li);
	mcf_proto_msg_init(&m, MCF_PROTO_MSG_NOT_LEADER);
	if (f->leading) {
		/* Leading but not ready yet: name ourselves; the worker
		 * comes back. */
		m.u.not_leader.leader  = f->identity;
		m.u.not_leader.address = f->address;
		m.u.not_leader.term    = f->term;
	} else if (li.live && strcmp(li.identity, f->identity) != 0) {
		m.u.not_leader.leader  = li.identity;
		m.u.not_leader.address = li.address[0] ? li.address : NULL;
		mcf_proto_term_set(
		    &m.u.not_leader.term, li.uid, li.transitions);
	}
	send_msg(f, s, &m);
}

static void
sess_close_later(sess *s, int64_t at)
{
	s->st          = S_CLOSING;
	s->close_at_ms = at;
}

static void
sess_detach(sess *s)
{
	if (s->w != NULL && s->w->s == s)
		s->w->s = NULL;
	s->w = NULL;
}

/* The snapshot of `w`: every project it owns.  Clears its pending
 * delta (the snapshot supersedes it) and fixes the versions of what the
 * pending delta would have carried. */
static uint64_t
send_snapshot(mcf_fleet *f, wk *w)
{
	sess *s = w->s;
	if (s == NULL || s->st != S_WELCOMED)
		return 0;
	size_t                n = 0;
	mcf_proto_assignment *a
	    = mcf_calloc(w->nowned + 1, sizeof(mcf_proto_assignment));
	order_refresh(f);
	for (size_t i = 0; i < f->norder && n < w->nowned; i++) {
		proj *p = f->order[i];
		if (p->owner == w) {
			a[n].name     = p->name;
			a[n].endpoint = p->endpoint;
			n++;
		}
	}
	uint64_t      v = ++f->version;
	mcf_proto_msg m;
	mcf_proto_msg_init(&m, MCF_PROTO_MSG_ASSIGN_SNAPSHOT);
	m.u.snapshot.term      = f->term;
	m.u.snapshot.version   = v;
	m.u.snapshot.projects  = a;
	m.u.snapshot.nprojects = n;
	send_msg(f, s, &m);
	free(a);
	/* What the pending delta carried now travels in this snapshot. */
	for (size_t i = 0; i < w->neng; i++)
		if (w->eng[i]->owner == w)
			w->eng[i]->engage_version = v;
	for (size_t i = 0; i < w->ndis; i++) {
		rel *r = rel_find(w->dis[i], w);
		if (r != NULL && r->v_d == 0)
			r->v_d = v;
	}
	w->neng = w->ndis = 0;
	if (w->acked >= w->sent)
		w->unacked_since_ms = mono_ms();
	w->sent = v;
	mcf_log_debug("COORD-SNAPSHOT",
	    "snapshot v%" PRIu64 " to %s: %zu "
	    "project(s)",
	    v, w->m->name, n);
	return v;
}

/* ---- losing a worker ---------------------------------------------------- */

/* Everything `w` owned or was releasing is free: it is proven gone. */
static void
drop_holdings(mcf_fleet *f, wk *w, const char *why)
{
	size_t n   = 0;
	size_t pos = 0;
	void  *v;
	while (mcf_strmap_next(f->projects, &pos, NULL, &v)) {
		proj *p = v;
		if (p->owner == w) {
			set_owner(p, NULL);
			p->inflight = false;
			char r[256];
			snprintf(r, sizeof(r), "owner %s is gone: %s",
			    w->m->name, why);
			set_state(p, PS_PENDING, r);
			if (p->pv.engageable) {
				p->armed   = true;
				p->need_ms = mono_ms();
			}
			n++;
		}
		rel_remove(f, p, w);
	}
	w->neng = w->ndis = 0;
	if (n > 0) {
		f->worker_failovers++;
		f->projects_failed_over += n;
		mcf_metrics_counter_inc(f->met.fo_worker);
		mcf_metrics_counter_add(f->met.fo_projects, (double) n);
		mcf_log_warn("COORD-FAILOVER",
		    "worker %s is gone (%s): %zu project(s) to engage "
		    "elsewhere",
		    w->m->name, why, n);
	}
	f->dirty_plan  = true;
	f->dirty_shard = true;
}

static bool
on_member(void *arg, mcf_member *m, enum mcf_members_event e, const char *inc)
{
	mcf_fleet *f = arg;
	wk        *w = m->user;
	switch (e) {
	case MCF_MEMBERS_GONE:
		f->dirty_shard = f->dirty_plan = true;
		if (w == NULL)
			return true;
		drop_holdings(f, w, m->gone_reason);
		wk_reset(w);
		/* The same incarnation may come back (its Lease lapsed): it
		 * must then get a snapshot before it counts as known. */
		free(w->inc);
		w->inc  = mcf_strdup(inc);
		w->know = K_AFTER_HELLO;
		if (w->s != NULL && f->leading && f->synced
		    && w->s->inc != NULL && strcmp(w->s->inc, inc) == 0) {
			/* Still connected: tell it at once to stop all. */
			uint64_t sv = send_snapshot(f, w);
			if (sv != 0) {
				w->know   = K_WAIT_ACK;
				w->know_v = sv;
			}
		}
		return true;
	case MCF_MEMBERS_REVIVED:
		f->dirty_shard = f->dirty_plan = true;
		return true;
	case MCF_MEMBERS_FORGET:
		if (w == NULL)
			return true;
		if (w->s != NULL)
			return false;
		{
			size_t pos = 0;
			void  *v;
			while (mcf_strmap_next(f->projects, &pos, NULL, &v)) {
				proj *p = v;
				if (p->desired == w)
					p->desired = NULL;
				if (p->owner == w)
					set_owner(p, NULL);
				rel_remove(f, p, w);
			}
		}
		mcf_metrics_gauge_set(series1(f->met.assign, m->name), 0);
		free(w->inc);
		free(w->eng);
		free(w->dis);
		free(w);
		m->user = NULL;
		return true;
	}
	return true;
}

/* ---- terms -------------------------------------------------------------- */

/* Forgets every ownership fact of the term that ends or begins. */
static void
forget_term(mcf_fleet *f)
{
	size_t pos = 0;
	void  *v;
	while (mcf_strmap_next(f->projects, &pos, NULL, &v)) {
		proj *p = v;
		set_owner(p, NULL);
		for (size_t i = 0; i < p->nrel; i++)
			p->rel[i].w->nrel--;
		p->nrel           = 0;
		p->inflight       = false;
		p->moving         = false;
		p->armed          = false;
		p->engage_version = 0;
		set_state(p, PS_PENDING, p->pv.engageable ? "" : p->pv.reason);
		if (!p->present)
			f->sweep = true;
	}
	pos = 0;
	mcf_member *m;
	while (mcf_members_next(f->members, &pos, &m)) {
		if (m->user != NULL)
			wk_reset(m->user);
	}
	f->inflight = f->moving = 0;
}

static void
start_term(mcf_fleet *f, const mcf_le_fence *t)
{
	forget_term(f);
	mcf_members_new_term(f->members, mono_ms());
	/* Sessions opened while standby were turned away already. */
	size_t      pos = 0;
	const char *k;
	void       *v;
	while (mcf_strmap_next(f->sessions, &pos, &k, &v)) {
		sess *s = v;
		sess_detach(s);
		if (s->st == S_WELCOMED)
			sess_close_later(s, mono_ms());
	}
	f->leading = true;
	f->term_ms = mono_ms();
	mcf_proto_term_set(&f->term, t->uid, t->transitions);
	f->leader_acquisitions++;
	mcf_metrics_counter_inc(f->met.fo_leader);
	mcf_metrics_gauge_set(f->met.leader, 1);
	f->dirty_plan = f->dirty_shard = true;
	mcf_log_info("COORD-LEADING",
	    "leading with term %s/%" PRId64 ": waiting for worker reports",
	    t->uid, (int64_t) t->transitions);
}

static void
end_term(mcf_fleet *f, const char *why)
{
	if (!f->leading)
		return;
	int64_t     now = mono_ms();
	size_t      pos = 0;
	const char *k;
	void       *v;
	f->leading = false;
	while (mcf_strmap_next(f->sessions, &pos, &k, &v)) {
		sess *s = v;
		if (s->st == S_WELCOMED) {
			send_not_leader(f, s, now);
			sess_close_later(s, now + CLOSE_DELAY_MS);
		}
		sess_detach(s);
	}
	forget_term(f);
	memset(&f->term, 0, sizeof(f->term));
	mcf_metrics_gauge_set(f->met.leader, 0);
	mcf_log_warn("COORD-STOPPED-LEADING",
	    "no longer leading (%s): "
	    "assignments stopped",
	    why);
}

/* ---- provider events ---------------------------------------------------- */

static void
on_project(mcf_fleet *f, const json_t *obj, enum ev_op op, int64_t now)
{
	const char *name = mcf_json_path_str(obj, "metadata.name");
	if (name == NULL)
		return;
	proj *p = proj_get(f, name, op == OP_UPSERT);
	if (p == NULL)
		return;
	mcf_provider_obs obs;
	mcf_provider_observe(&f->pcfg, op == OP_UPSERT ? obj : NULL, &obs);
	p->present   = op == OP_UPSERT;
	bool changed = mcf_provider_apply(&f->pcfg, &p->pv, &obs, now);
	if (p->pv.engageable && p->endpoint == NULL)
		p->endpoint = mcf_provider_endpoint(&f->pcfg, name);
	if (changed) {
		f->dirty_shard = f->dirty_plan = true;
		if (p->pv.engageable) {
			p->armed   = true;
			p->need_ms = now;
		} else {
			p->armed = false;
		}
		mcf_log_info("COORD-PROJECT", "project %s is %s%s%s", name,
		    p->pv.engageable ? "engageable" : "not engageable",
		    p->pv.reason[0] ? ": " : "", p->pv.reason);
	}
	if (p->owner == NULL && p->state == PS_PENDING)
		set_state(p, PS_PENDING, p->pv.engageable ? "" : p->pv.reason);
	int64_t d = mcf_provider_deadline(&f->pcfg, &p->pv);
	if (d < f->grace_deadline_ms)
		f->grace_deadline_ms = d;
	if (!p->present)
		f->sweep = true;
}

static void
grace_tick(mcf_fleet *f, int64_t now)
{
	if (now < f->grace_deadline_ms)
		return;
	f->grace_deadline_ms = INT64_MAX;
	size_t pos           = 0;
	void  *v;
	while (mcf_strmap_next(f->projects, &pos, NULL, &v)) {
		proj *p = v;
		if (mcf_provider_tick(&f->pcfg, &p->pv, now)) {
			f->dirty_shard = f->dirty_plan = true;
			p->armed                       = false;
			mcf_log_info("COORD-PROJECT",
			    "project %s is not engageable: %s", p->name,
			    p->pv.reason);
			if (p->owner == NULL)
				set_state(p, PS_PENDING, p->pv.reason);
		}
		int64_t d = mcf_provider_deadline(&f->pcfg, &p->pv);
		if (d < f->grace_deadline_ms)
			f->grace_deadline_ms = d;
	}
}

/* ---- worker messages ---------------------------------------------------- */

static enum pst
pst_of(enum mcf_proto_pstate s)
{
	switch (s) {
	case MCF_PROTO_PSTATE_SYNCED:
		return PS_SYNCED;
	case MCF_PROTO_PSTATE_FAILING:
		return PS_FAILING;
	default:
		return PS_ENGAGING;
	}
}

static bool
running_state(enum mcf_proto_pstate s)
{
	return s == MCF_PROTO_PSTATE_ENGAGING || s == MCF_PROTO_PSTATE_SYNCED
	    || s == MCF_PROTO_PSTATE_FAILING;
}

static void
owner_report(mcf_fleet *f, proj *p, const mcf_proto_report *r, int64_t now)
{
	enum pst st  = pst_of(r->state);
	bool     was = p->inflight;
	p->inflight  = st == PS_ENGAGING;
	if (was != p->inflight)
		f->dirty_plan = true;
	if (st == PS_SYNCED && p->armed) {
		p->armed = false;
		mcf_metrics_histogram_observe(
		    f->met.latency, (double) (now - p->need_ms) / 1000.0);
	}
	set_state(p, st, r->reason);
	if (r->since_ms > 0)
		p->since_ms = r->since_ms; /* the owner's clock knows best */
}

/* A worker W stopped P (STOPPED, or a `stopped` report): taken once W
 * acknowledged the version that last engaged P on it. */
static void
stopped_one(mcf_fleet *f, wk *w, const char *name)
{
	proj *p = proj_get(f, name, false);
	if (p == NULL)
		return;
	rel *r = rel_find(p, w);
	if (r == NULL)
		return; /* owned (a stale repeat) or unknown: ignore */
	if (w->acked < r->v_engage) {
		mcf_log_debug("COORD-STOPPED-EARLY",
		    "%s: STOPPED %s before acknowledging v%" PRIu64
		    ": waiting for a newer confirmation",
		    w->m->name, name, r->v_engage);
		return;
	}
	rel_remove(f, p, w);
	mcf_log_debug("COORD-STOPPED", "%s stopped %s", w->m->name, name);
}

/* The first report of a worker the leader did not know: what it runs is
 * kept where nobody else holds it, released otherwise; then its first
 * snapshot. */
static void
first_report(mcf_fleet *f, wk *w, const mcf_proto_ack *a, int64_t now)
{
	uint64_t next = f->version + 1; /* the snapshot below */
	size_t   kept = 0, released = 0;
	for (size_t i = 0; i < a->nprojects; i++) {
		const mcf_proto_report *r = &a->projects[i];
		if (!running_state(r->state))
			continue;
		proj *p = proj_get(f, r->name, true);
		if (p->owner == NULL && p->nrel == 0 && p->pv.engageable
		    && p->endpoint != NULL) {
			set_owner(p, w);
			p->engage_version = 0;
			p->armed          = false;
			owner_report(f, p, r, now);
			kept++;
		} else if (p->owner != w) {
			rel_add(p, w, next, 0);
			released++;
		}
	}
	w->know    = K_KNOWN;
	uint64_t v = send_snapshot(f, w);
	(void) v;
	f->dirty_plan = true;
	mcf_log_info("COORD-REPORT",
	    "%s reported %zu project(s): kept %zu, releasing %zu", w->m->name,
	    a->nprojects, kept, released);
}

static void
on_ack(mcf_fleet *f, wk *w, const mcf_proto_ack *a, int64_t now)
{
	if (mcf_proto_term_cmp(&f->term, &a->term) != MCF_PROTO_TERM_EQUAL)
		return; /* a report for another term */
	if (w->know == K_UNKNOWN) {
		if (a->full)
			first_report(f, w, a, now);
		return;
	}
	if (a->applied <= w->sent && a->applied > w->acked) {
		w->acked = a->applied;
		if (w->acked >= w->sent)
			w->unacked_since_ms = 0;
		else
			w->unacked_since_ms = mono_ms();
	}
	if (w->know == K_WAIT_ACK && a->full && w->acked >= w->know_v) {
		/* Its full report of the snapshot: what it lists beyond
		 * its table is handled as strays below. */
		w->know       = K_KNOWN;
		f->dirty_plan = true;
	}
	for (size_t i = 0; i < a->nprojects; i++) {
		const mcf_proto_report *r = &a->projects[i];
		proj                   *p = proj_get(f, r->name, false);
		if (r->state == MCF_PROTO_PSTATE_STOPPED) {
			stopped_one(f, w, r->name);
			continue;
		}
		if (!running_state(r->state))
			continue;
		if (p != NULL && p->owner == w) {
			if (a->applied >= p->engage_version)
				owner_report(f, p, r, now);
			continue;
		}
		if (p != NULL && rel_find(p, w) != NULL)
			continue; /* still stopping */
		if (a->applied < w->sent)
			continue; /* may predate a table we sent since */
		/* Runs a project that is not in its table and that it was
		 * never told to drop: make it drop it. */
		p = proj_get(f, r->name, true);
		rel_add(p, w, 0, 0);
		push_ptr(&w->dis, &w->ndis, &w->capdis, p);
		mcf_log_warn("COORD-STRAY",
		    "%s runs %s outside its table: "
		    "disengaging it",
		    w->m->name, r->name);
	}
	if (a->full && w->nrel > 0) {
		/* Absent from a full report, with the table that dropped it
		 * applied: stopped. */
		size_t pos = 0;
		void  *v;
		while (mcf_strmap_next(f->projects, &pos, NULL, &v)) {
			proj *p = v;
			rel  *r = rel_find(p, w);
			if (r == NULL || r->v_d == 0 || a->applied < r->v_d)
				continue;
			bool listed = false;
			for (size_t i = 0; i < a->nprojects && !listed; i++)
				listed
				    = strcmp(a->projects[i].name, p->name) == 0
				    && running_state(a->projects[i].state);
			if (!listed)
				rel_remove(f, p, w);
		}
	}
}

static void
on_hello(mcf_fleet *f, sess *s, const mcf_proto_hello *h, int64_t now)
{
	uint32_t                 minor;
	mcf_proto_version_reject vr;
	mcf_proto_msg            m;
	if (mcf_proto_version_negotiate(h->major, h->minor, &minor, &vr)
	    != MCF_OK) {
		mcf_proto_conn_reject(
		    s->conn, MCF_PROTO_REJECT_VERSION, NULL, "%s", vr.message);
		mcf_proto_msg_init(&m, MCF_PROTO_MSG_VERSION_REJECT);
		m.u.version_reject = vr;
		send_msg(f, s, &m);
		sess_close_later(s, now + CLOSE_DELAY_MS);
		return;
	}
	if (!f->leading || !f->synced) {
		send_not_leader(f, s, now);
		sess_close_later(s, now + CLOSE_DELAY_MS);
		return;
	}
	mcf_member *mb = mcf_members_hello(f->members, h->name, h->incarnation,
	    h->weight, h->status_url, h->lease, now);
	if (mb == NULL) {
		mcf_log_warn("COORD-HELLO-STALE",
		    "%s: HELLO from incarnation %s of %s, already superseded: "
		    "closing",
		    s->peer, h->incarnation, h->name);
		sess_close_later(s, now);
		return;
	}
	wk *w = wk_of(mb);
	if (w->s != NULL && w->s != s) {
		mcf_log_info("COORD-SESSION-REPLACED",
		    "%s reconnected from %s: closing its old session %s",
		    h->name, s->peer, w->s->peer);
		sess *old = w->s;
		sess_detach(old);
		sess_close_later(old, now);
	}
	if (strcmp(w->inc, h->incarnation) != 0) {
		/* A new incarnation: nothing known about it yet. */
		free(w->inc);
		w->inc = mcf_strdup(h->incarnation);
		wk_reset(w);
	}
	sess_detach(s);
	w->s  = s;
	s->w  = w;
	s->st = S_WELCOMED;
	free(s->inc);
	s->inc             = mcf_strdup(h->incarnation);
	s->minor           = minor;
	w->last_rx_wall_ms = wall_ms();

	mcf_proto_msg_init(&m, MCF_PROTO_MSG_WELCOME);
	m.u.welcome.major        = MCF_PROTO_MAJOR;
	m.u.welcome.minor        = minor;
	m.u.welcome.term         = f->term;
	m.u.welcome.leader       = f->identity;
	m.u.welcome.status_url   = f->status_url;
	m.u.welcome.heartbeat_ms = (uint32_t) f->hb_ms;
	send_msg(f, s, &m);

	const char *how;
	if (h->applied == 0 && w->know != K_AFTER_HELLO
	    && w->know != K_WAIT_ACK) {
		w->know = K_KNOWN;
		send_snapshot(f, w);
		how = "holds nothing";
	} else if (w->know == K_KNOWN) {
		if (mcf_proto_term_cmp(&f->term, &h->term)
		        == MCF_PROTO_TERM_EQUAL
		    && h->applied <= w->sent && h->applied > w->acked)
			w->acked = h->applied;
		send_snapshot(f, w);
		how = "reconnected";
	} else if (w->know == K_AFTER_HELLO || w->know == K_WAIT_ACK) {
		uint64_t v = send_snapshot(f, w);
		w->know    = K_WAIT_ACK;
		w->know_v  = v;
		how        = "returns after being gone";
	} else {
		w->know               = K_UNKNOWN;
		w->report_deadline_ms = now + REPORT_WAIT_BEATS * f->hb_ms;
		how                   = "waiting for its report";
	}
	f->dirty_plan = f->dirty_shard = true;
	mcf_log_info("COORD-HELLO",
	    "%s (incarnation %s, weight %" PRIu32 ", applied %" PRIu64
	    ") joined from %s, protocol 1.%" PRIu32 ": %s",
	    h->name, h->incarnation, h->weight, h->applied, s->peer, minor,
	    how);
}

/* The term a worker frame claims to follow (NULL: none).  HELLO's term
 * is only the highest the worker has seen, which may well be older. */
static const mcf_proto_term *
msg_term(const mcf_proto_msg *m)
{
	switch (m->type) {
	case MCF_PROTO_MSG_ACK:
		return &m->u.ack.term;
	case MCF_PROTO_MSG_STOPPED:
		return &m->u.stopped.term;
	case MCF_PROTO_MSG_HEARTBEAT:
		return &m->u.heartbeat.term;
	case MCF_PROTO_MSG_RESYNC_REQUEST:
		return &m->u.resync.term;
	default:
		return NULL;
	}
}

static void
on_frame(mcf_fleet *f, sess *s, const uint8_t *buf, size_t len, int64_t now)
{
	mcf_proto_msg   *m = NULL;
	mcf_proto_hdr    hdr;
	mcf_proto_reject rej;
	memset(&hdr, 0, sizeof(hdr));
	int rc = mcf_proto_conn_open(s->conn, buf, len, &m, &hdr, &rej);
	if (rc != MCF_OK) {
		if (rej.reason == MCF_PROTO_REJECT_VERSION
		    && hdr.type == MCF_PROTO_MSG_HELLO) {
			mcf_proto_msg vm;
			mcf_proto_msg_init(&vm, MCF_PROTO_MSG_VERSION_REJECT);
			mcf_proto_version_negotiate(
			    hdr.major, hdr.minor, NULL, &vm.u.version_reject);
			send_msg(f, s, &vm);
			sess_close_later(s, now + CLOSE_DELAY_MS);
		}
		return;
	}
	s->last_rx_ms            = now;
	s->suspect               = false;
	const mcf_proto_term *mt = msg_term(m);
	if (f->leading && mt != NULL && mcf_proto_term_is_set(mt)
	    && mcf_proto_term_cmp(&f->term, mt) == MCF_PROTO_TERM_LOWER) {
		/* A worker frame of an older term of our Lease: stale or
		 * forged; refused and counted like the worker counts a
		 * deposed leader's frames. */
		mcf_proto_conn_reject(s->conn, MCF_PROTO_REJECT_LOWER_TERM,
		    NULL, "%s with term %s/%lld, below the leader's %s/%lld",
		    mcf_proto_msg_type_name(m->type), mt->uid,
		    (long long) mt->transitions, f->term.uid,
		    (long long) f->term.transitions);
		mcf_proto_msg_destroy(m);
		return;
	}
	if (m->type == MCF_PROTO_MSG_HELLO) {
		on_hello(f, s, &m->u.hello, now);
		mcf_proto_msg_destroy(m);
		return;
	}
	wk *w = s->w;
	if (s->st != S_WELCOMED || w == NULL || !f->leading) {
		if (s->st != S_CLOSING && !f->leading) {
			send_not_leader(f, s, now);
			sess_close_later(s, now + CLOSE_DELAY_MS);
		}
		mcf_proto_msg_destroy(m);
		return;
	}
	w->last_rx_wall_ms = wall_ms();
	switch (m->type) {
	case MCF_PROTO_MSG_ACK:
		on_ack(f, w, &m->u.ack, now);
		break;
	case MCF_PROTO_MSG_STOPPED:
		if (mcf_proto_term_cmp(&f->term, &m->u.stopped.term)
		    == MCF_PROTO_TERM_EQUAL)
			for (size_t i = 0; i < m->u.stopped.nprojects; i++)
				stopped_one(f, w, m->u.stopped.projects[i]);
		break;
	case MCF_PROTO_MSG_LEAVING:
		if (!w->m->leaving) {
			mcf_members_set_leaving(w->m);
			f->dirty_shard = f->dirty_plan = true;
			mcf_log_info("COORD-LEAVING",
			    "%s is leaving (%s, deadline %" PRIu64
			    " ms): moving its %zu project(s)",
			    w->m->name, m->u.leaving.reason,
			    m->u.leaving.deadline_ms, w->nowned);
		}
		break;
	case MCF_PROTO_MSG_HEARTBEAT: {
		const mcf_proto_heartbeat *hb = &m->u.heartbeat;
		if (w->know != K_UNKNOWN
		    && mcf_proto_term_cmp(&f->term, &hb->term)
		        == MCF_PROTO_TERM_EQUAL
		    && hb->applied <= w->sent && hb->applied > w->acked) {
			w->acked = hb->applied;
			w->unacked_since_ms
			    = w->acked >= w->sent ? 0 : mono_ms();
		}
		break;
	}
	case MCF_PROTO_MSG_RESYNC_REQUEST:
		if (w->know != K_UNKNOWN) {
			mcf_log_info("COORD-RESYNC",
			    "%s asks for a snapshot: %s", w->m->name,
			    m->u.resync.reason);
			uint64_t v = send_snapshot(f, w);
			if (w->know == K_WAIT_ACK && v != 0)
				w->know_v = v;
		}
		break;
	default:
		break;
	}
	mcf_proto_msg_destroy(m);
}

/* ---- sessions ----------------------------------------------------------- */

/* The remote address of pipe `p` ("tcp://10.0.0.7:41234",
 * "tcp://[fd00::7]:41234"), or "" when NNG no longer knows the pipe. */
static void
pipe_peer(nng_pipe p, char *out, size_t cap)
{
	nng_sockaddr sa;
	char         host[INET6_ADDRSTRLEN];
	out[0] = '\0';
	if (nng_pipe_get_addr(p, NNG_OPT_REMADDR, &sa) != 0)
		return;
	if (sa.s_family == NNG_AF_INET &&
	    inet_ntop(AF_INET, &sa.s_in.sa_addr, host, sizeof(host)) != NULL)
		snprintf(out, cap, "tcp://%s:%u", host, ntohs(sa.s_in.sa_port));
	else if (sa.s_family == NNG_AF_INET6 &&
	    inet_ntop(AF_INET6, sa.s_in6.sa_addr, host, sizeof(host)) != NULL)
		snprintf(
		    out, cap, "tcp://[%s]:%u", host, ntohs(sa.s_in6.sa_port));
}

static sess *
sess_get(mcf_fleet *f, uint32_t pipe, const char *peer, bool create)
{
	char key[16];
	snprintf(key, sizeof(key), "%" PRIu32, pipe);
	sess *s = mcf_strmap_get(f->sessions, key);
	if (s != NULL || !create)
		return s;
	s       = mcf_calloc(1, sizeof(*s));
	s->pipe = pipe;
	snprintf(s->key, sizeof(s->key), "%s", key);
	if (peer != NULL && peer[0] != '\0') {
		snprintf(s->peer, sizeof(s->peer), "%s", peer);
	} else {
		/* A frame came before the pipe's add event: ask NNG. */
		nng_pipe np;
		np.id = pipe;
		pipe_peer(np, s->peer, sizeof(s->peer));
		if (s->peer[0] == '\0')
			snprintf(s->peer, sizeof(s->peer), "pipe %s", key);
	}
	mcf_proto_conn_opts o = {
		.self      = MCF_PROTO_PEER_COORDINATOR,
		.keys      = f->keys,
		.replay    = f->replay,
		.stats     = f->rstats,
		.max_frame = f->max_frame,
		.peer      = s->peer,
	};
	mcf_errinfo ei = { 0 };
	if (mcf_proto_conn_create(&s->conn, &o, &ei) != MCF_OK)
		mcf_panic("mcf_proto_conn_create");
	s->last_rx_ms = mono_ms();
	mcf_strmap_put(f->sessions, key, s);
	return s;
}

static void
sess_free(mcf_fleet *f, sess *s)
{
	sess_detach(s);
	mcf_strmap_del(f->sessions, s->key);
	mcf_proto_conn_destroy(s->conn);
	free(s->inc);
	free(s);
}

/* ---- the sharder and the planner ---------------------------------------- */

/* A live worker that has not said HELLO in this term, runs nothing (its
 * Lease says so: mcf_members_proven_empty) and has had the join grace to
 * connect: it gets no share until it connects, so a worker that cannot
 * reach the leader (a wrong key, TLS, a network partition) neither holds
 * back engages nor strands projects.  Its share returns when it joins. */
static bool
unreachable(const mcf_fleet *f, const mcf_member *m, int64_t now)
{
	const wk *w = m->user;
	bool connected = w != NULL && w->s != NULL && w->s->st == S_WELCOMED;
	int64_t grace = 4 * f->hb_ms > JOIN_GRACE_MIN_MS ? 4 * f->hb_ms
	                                                : JOIN_GRACE_MIN_MS;
	return !connected && !(w != NULL && w->know == K_KNOWN) &&
	    mcf_members_proven_empty(f->members, m) &&
	    now - m->live_ms >= grace &&
	    (f->term_ms == 0 || now - f->term_ms >= grace);
}

static void
shard(mcf_fleet *f, int64_t now)
{
	if (!f->dirty_shard)
		return;
	f->dirty_shard = false;
	order_refresh(f);
	size_t              nm = mcf_members_count(f->members), nw = 0;
	mcf_sharder_worker *sw  = mcf_calloc(nm + 1, sizeof(*sw));
	wk                **wv  = mcf_calloc(nm + 1, sizeof(*wv));
	size_t              pos = 0;
	mcf_member         *m;
	f->n_unreachable = 0;
	while (mcf_members_next(f->members, &pos, &m)) {
		if (!mcf_members_live(m, now) || m->leaving)
			continue;
		if (unreachable(f, m, now)) {
			f->n_unreachable++;
			continue;
		}
		sw[nw].name   = m->name;
		sw[nw].weight = (double) m->weight;
		wv[nw]        = wk_of(m);
		nw++;
	}
	const char **names = mcf_calloc(f->norder + 1, sizeof(*names));
	proj       **ps    = mcf_calloc(f->norder + 1, sizeof(*ps));
	size_t       np    = 0;
	for (size_t i = 0; i < f->norder; i++) {
		proj *p    = f->order[i];
		p->desired = NULL;
		if (p->pv.engageable && p->endpoint != NULL) {
			names[np] = p->name;
			ps[np++]  = p;
		}
	}
	int        *owner = mcf_calloc(np + 1, sizeof(int));
	mcf_errinfo ei    = { 0 };
	int rc = mcf_sharder_assign(names, np, sw, nw, f->epsilon, owner, &ei);
	if (rc == MCF_OK) {
		for (size_t i = 0; i < np; i++)
			ps[i]->desired = owner[i] >= 0 ? wv[owner[i]] : NULL;
	} else if (rc != MCF_EUNAVAIL) {
		mcf_log_error("COORD-SHARDER", "sharder: %s", ei.msg);
	}
	free(owner);
	free(names);
	free(ps);
	free(sw);
	free(wv);
	f->dirty_plan = true;
}

static void
apply_engage(mcf_fleet *f, proj *p, wk *w, int64_t now)
{
	(void) now;
	set_owner(p, w);
	p->inflight       = true;
	p->engage_version = 0; /* set when the delta is sent */
	set_state(p, PS_ENGAGING, "");
	push_ptr(&w->eng, &w->neng, &w->capeng, p);
	f->engages++;
	mcf_metrics_counter_inc(f->met.engages);
	if (p->moving) {
		p->moving = false;
		f->handoffs++;
		mcf_metrics_counter_inc(f->met.handoffs);
	}
}

static void
apply_disengage(
    mcf_fleet *f, proj *p, wk *w, enum mcf_plan_why why, int64_t now)
{
	static const char *const why_name[]
	    = { "", "new", "unengageable", "leaving", "rebalance" };
	rel_add(p, w, 0, p->engage_version);
	set_owner(p, NULL);
	p->inflight = false;
	char r[256];
	if (why == MCF_PLAN_WHY_UNENGAGEABLE) {
		snprintf(r, sizeof(r), "%s", p->pv.reason);
		p->moving = false;
	} else {
		snprintf(r, sizeof(r), "handing off from %s (%s)", w->m->name,
		    why_name[why]);
		p->moving  = true;
		p->armed   = true;
		p->need_ms = now;
	}
	set_state(p, PS_PENDING, r);
	push_ptr(&w->dis, &w->ndis, &w->capdis, p);
	f->disengages++;
	mcf_metrics_counter_inc(series1(f->met.disengages, why_name[why]));
}

static void
held_clear(mcf_fleet *f)
{
	for (size_t i = 0; i < f->nheld; i++)
		free(f->held[i]);
	f->nheld = 0;
}

/* How long engages still wait for the worker set to settle: at a cold
 * start workers come up one after another, and the first one up would
 * otherwise take every project only to hand most of them off a moment
 * later.  0 once no worker has appeared for SETTLE_QUIET_MS, or the term
 * is SETTLE_MAX_MS old (a takeover with a known worker set: at once). */
static int64_t
settle_left(mcf_fleet *f, int64_t now)
{
	if (now - f->term_ms >= SETTLE_MAX_MS)
		return 0;
	int64_t     last = 0;
	size_t      pos  = 0;
	mcf_member *m;
	while (mcf_members_next(f->members, &pos, &m))
		if (mcf_members_live(m, now) && m->live_ms > last)
			last = m->live_ms;
	int64_t left = last + SETTLE_QUIET_MS - now;
	return left > 0 ? left : 0;
}

static void
plan_step(mcf_fleet *f, int64_t now)
{
	if (!f->dirty_plan)
		return;
	f->dirty_plan = false;
	order_refresh(f);

	size_t           nm = mcf_members_count(f->members), nw = 0;
	mcf_plan_worker *pw  = mcf_calloc(nm + 1, sizeof(*pw));
	wk             **wv  = mcf_calloc(nm + 1, sizeof(*wv));
	size_t           pos = 0;
	mcf_member      *m;
	held_clear(f);
	f->held = mcf_realloc(f->held, (nm + 1) * sizeof(char *));
	while (mcf_members_next(f->members, &pos, &m)) {
		wk *w   = wk_of(m);
		w->pidx = (int) nw;
		wv[nw]  = w;
		pw[nw]  = (mcf_plan_worker) {
			 .live      = mcf_members_live(m, now),
			 .leaving   = m->leaving,
			 .known     = w->know == K_KNOWN,
			 .empty     = mcf_members_proven_empty(f->members, m),
			 .connected = w->s != NULL && w->s->st == S_WELCOMED,
		};
		if (pw[nw].live && !pw[nw].known && !pw[nw].empty)
			f->held[f->nheld++] = mcf_strdup(m->name);
		nw++;
	}
	mcf_plan_project *pp = mcf_calloc(f->norder + 1, sizeof(*pp));
	for (size_t i = 0; i < f->norder; i++) {
		proj *p = f->order[i];
		pp[i]   = (mcf_plan_project) {
			  .engageable = p->pv.engageable && p->endpoint != NULL,
			  .desired    = p->desired ? p->desired->pidx : -1,
			  .owner      = p->owner ? p->owner->pidx : -1,
			  .inflight   = p->inflight,
			  .releasing  = (unsigned) p->nrel,
		};
	}
	mcf_plan_action *act  = NULL;
	size_t           nact = 0;
	mcf_plan_stats   st;
	int64_t settle = settle_left(f, now);
	f->settle_until_ms = settle > 0 ? now + settle : 0;
	/* Settling: a budget of 0 holds engages and moves (disengages of
	 * projects no longer engageable still go out). */
	mcf_plan_compute(pw, nw, pp, f->norder, settle > 0 ? 0 : f->max_engages,
	    &act, &nact, &st);
	for (size_t i = 0; i < nact; i++) {
		proj *p = f->order[act[i].project];
		wk   *w = wv[act[i].worker];
		if (act[i].kind == MCF_PLAN_ENGAGE)
			apply_engage(f, p, w, now);
		else
			apply_disengage(f, p, w, act[i].why, now);
	}
	f->inflight = st.inflight + st.engages;
	f->moving   = st.moving + st.moves;
	/* Say why each project without an owner waits. */
	for (size_t i = 0; i < f->norder; i++) {
		proj *p = f->order[i];
		if (p->owner != NULL)
			continue;
		char r[256];
		if (!pp[i].engageable) {
			snprintf(r, sizeof(r), "%s", p->pv.reason);
		} else if (p->nrel > 0) {
			if (p->moving)
				continue; /* "handing off from …" stays */
			snprintf(r, sizeof(r),
			    "waiting for %s to confirm it stopped",
			    p->rel[0].w->m->name);
		} else if (p->desired == NULL) {
			snprintf(r, sizeof(r), "no live worker");
		} else if (st.gated) {
			snprintf(r, sizeof(r),
			    "waiting for %zu worker(s) to report what they "
			    "run",
			    f->nheld);
		} else if (!pw[p->desired->pidx].connected) {
			snprintf(r, sizeof(r), "waiting for %s to connect",
			    p->desired->m->name);
		} else if (!pw[p->desired->pidx].known
		    || pw[p->desired->pidx].leaving) {
			snprintf(r, sizeof(r), "waiting for %s",
			    p->desired->m->name);
		} else if (settle > 0) {
			snprintf(r, sizeof(r),
			    "waiting for the workers to settle (%lld ms)",
			    (long long) settle);
		} else {
			snprintf(r, sizeof(r),
			    "paced: %zu engage(s) in flight (max %zu)",
			    f->inflight, f->max_engages);
		}
		set_state(p, PS_PENDING, r);
	}
	if (nact > 0)
		mcf_log_info("COORD-PLAN",
		    "plan: %zu engage(s), %zu disengage(s) (%zu move(s)); in "
		    "flight %zu, moving %zu, paced %zu",
		    st.engages, st.disengages, st.moves, st.inflight,
		    st.moving, st.paced);
	if (st.gated && st.waiting > 0 && now - f->held_logged_ms > 10000) {
		f->held_logged_ms = now;
		mcf_log_info("COORD-GATED",
		    "%zu project(s) wait: engages are held until every live "
		    "worker has reported (%zu not yet)",
		    st.waiting, f->nheld);
	}
	/* Some engageable projects may wait for a state the plan does not
	 * see change by itself (pacing frees up on reports, which set
	 * dirty_plan); nothing else to do here. */
	free(act);
	free(pp);
	free(pw);
	free(wv);
}

/* Sends each worker its pending delta (at most one per step). */
static void
flush(mcf_fleet *f)
{
	size_t      pos = 0;
	mcf_member *m;
	while (mcf_members_next(f->members, &pos, &m)) {
		wk *w = m->user;
		if (w == NULL || (w->neng == 0 && w->ndis == 0))
			continue;
		sess *s = w->s;
		if (s == NULL || s->st != S_WELCOMED || w->know == K_UNKNOWN) {
			/* Its next snapshot carries the table. */
			uint64_t v = f->version + 1;
			for (size_t i = 0; i < w->ndis; i++) {
				rel *r = rel_find(w->dis[i], w);
				if (r != NULL && r->v_d == 0)
					r->v_d = v;
			}
			w->neng = w->ndis = 0;
			continue;
		}
		if (!may_send(s)) {
			f->again = true;
			continue;
		}
		mcf_proto_assignment *eng
		    = mcf_calloc(w->neng + 1, sizeof(*eng));
		char **dis = mcf_calloc(w->ndis + 1, sizeof(char *));
		size_t ne = 0, nd = 0;
		for (size_t i = 0; i < w->neng; i++) {
			if (w->eng[i]->owner != w)
				continue;
			eng[ne].name     = w->eng[i]->name;
			eng[ne].endpoint = w->eng[i]->endpoint;
			ne++;
		}
		for (size_t i = 0; i < w->ndis; i++)
			dis[nd++] = w->dis[i]->name;
		uint64_t      v = ++f->version;
		mcf_proto_msg msg;
		mcf_proto_msg_init(&msg, MCF_PROTO_MSG_ASSIGN_DELTA);
		msg.u.delta.term       = f->term;
		msg.u.delta.version    = v;
		msg.u.delta.base       = w->sent;
		msg.u.delta.engage     = eng;
		msg.u.delta.nengage    = ne;
		msg.u.delta.disengage  = dis;
		msg.u.delta.ndisengage = nd;
		send_msg(f, s, &msg);
		free(eng);
		free(dis);
		for (size_t i = 0; i < w->neng; i++)
			if (w->eng[i]->owner == w)
				w->eng[i]->engage_version = v;
		for (size_t i = 0; i < w->ndis; i++) {
			rel *r = rel_find(w->dis[i], w);
			if (r != NULL && r->v_d == 0)
				r->v_d = v;
		}
		if (w->acked >= w->sent)
			w->unacked_since_ms = mono_ms();
		w->sent = v;
		mcf_log_debug("COORD-DELTA",
		    "delta v%" PRIu64 " (base %" PRIu64 ") to %s: +%zu -%zu",
		    v, msg.u.delta.base, m->name, ne, nd);
		w->neng = w->ndis = 0;
	}
	mcf_metrics_gauge_set(f->met.version, (double) f->version);
}

static void
sweep(mcf_fleet *f)
{
	if (!f->sweep)
		return;
	f->sweep        = false;
	size_t      pos = 0;
	const char *k;
	void       *v;
	while (mcf_strmap_next(f->projects, &pos, &k, &v)) {
		proj *p = v;
		if (p->present || p->owner != NULL || p->nrel > 0)
			continue;
		mcf_strmap_del(f->projects, k);
		proj_free(p);
		f->order_dirty = true;
	}
}

/* ---- timers ------------------------------------------------------------- */

static void
timers(mcf_fleet *f, int64_t now)
{
	if (now >= f->next_tick_ms) {
		f->next_tick_ms = now + TICK_MS;
		if (mcf_members_tick(f->members, now))
			f->dirty_shard = f->dirty_plan = true;
		/* A join grace may have run out (unreachable()). */
		size_t np = 0, mpos = 0;
		mcf_member *mm;
		while (mcf_members_next(f->members, &mpos, &mm))
			if (mcf_members_live(mm, now) && !mm->leaving &&
			    unreachable(f, mm, now))
				np++;
		if (np != f->n_unreachable)
			f->dirty_shard = true;
		if (f->settle_until_ms != 0 && now >= f->settle_until_ms) {
			f->settle_until_ms = 0;
			f->dirty_plan      = true;
		}
	}
	grace_tick(f, now);

	/* Sessions: closing, heartbeats, suspicion, report deadlines,
	 * retransmission. */
	bool beat = f->leading && now >= f->next_hb_ms;
	if (beat)
		f->next_hb_ms = now + f->hb_ms;
	size_t      pos = 0;
	const char *k;
	void       *v;
	while (mcf_strmap_next(f->sessions, &pos, &k, &v)) {
		sess *s = v;
		if (s->st == S_CLOSING) {
			if (now >= s->close_at_ms) {
				nng_pipe p;
				p.id = s->pipe;
				nng_pipe_close(p);
				s->close_at_ms = INT64_MAX;
			}
			continue;
		}
		if (s->st == S_NEW && now - s->last_rx_ms > 30000) {
			/* A pipe that never said HELLO: drop our record
			 * if NNG has forgotten it (a late frame of a
			 * closed pipe recreated it). */
			nng_pipe     p;
			nng_sockaddr sa;
			p.id = s->pipe;
			if (nng_pipe_get_addr(p, NNG_OPT_REMADDR, &sa) != 0) {
				sess_free(f, s);
				continue;
			}
			s->last_rx_ms = now;
		}
		if (s->st != S_WELCOMED || s->w == NULL)
			continue;
		wk *w = s->w;
		if (beat) {
			if (may_send(s)) {
				mcf_proto_msg m;
				mcf_proto_msg_init(
				    &m, MCF_PROTO_MSG_HEARTBEAT);
				m.u.heartbeat.time_ms = wall_ms();
				m.u.heartbeat.seq     = ++s->hb_seq;
				m.u.heartbeat.term    = f->term;
				send_msg(f, s, &m);
			} else {
				f->next_hb_ms = now; /* next step */
			}
		}
		if (!s->suspect && now - s->last_rx_ms > 3 * f->hb_ms) {
			s->suspect = true;
			mcf_log_info("COORD-SUSPECT",
			    "%s silent for %lld ms: watching its Lease",
			    w->m->name, (long long) (now - s->last_rx_ms));
		}
		if (w->know == K_UNKNOWN && w->report_deadline_ms != 0
		    && now >= w->report_deadline_ms && may_send(s)) {
			mcf_log_warn("COORD-NO-REPORT",
			    "%s sent no report after WELCOME: sending it an "
			    "empty snapshot (it stops its projects)",
			    w->m->name);
			uint64_t sv = send_snapshot(f, w);
			w->know     = K_WAIT_ACK;
			w->know_v   = sv;
		} else if (w->know != K_UNKNOWN && w->sent > w->acked
		    && w->unacked_since_ms != 0
		    && now - w->unacked_since_ms > RETRANSMIT_BEATS * f->hb_ms
		    && may_send(s)) {
			mcf_log_info("COORD-RETRANSMIT",
			    "%s has not acknowledged v%" PRIu64
			    " (acked v%" PRIu64 "): sending a snapshot",
			    w->m->name, w->sent, w->acked);
			uint64_t sv = send_snapshot(f, w);
			if (w->know == K_WAIT_ACK && sv != 0)
				w->know_v = sv;
			w->unacked_since_ms = now;
		}
	}
}

/* ---- status ------------------------------------------------------------- */

static void
update_gauges(mcf_fleet *f, int64_t now)
{
	double cnt[4]  = { 0 };
	size_t engaged = 0, pos = 0;
	void  *v;
	if (f->leading) {
		while (mcf_strmap_next(f->projects, &pos, NULL, &v)) {
			proj *p = v;
			if (!p->pv.engageable && p->owner == NULL)
				continue;
			cnt[p->state] += 1;
			if (p->owner != NULL)
				engaged++;
		}
	}
	for (int i = 0; i < 4; i++)
		mcf_metrics_gauge_set(f->met.pst[i], cnt[i]);
	mcf_metrics_gauge_set(f->met.engaged, (double) engaged);
	double      ws[4] = { 0 };
	mcf_member *m;
	pos = 0;
	while (mcf_members_next(f->members, &pos, &m)) {
		enum mcf_member_state st = mcf_members_state(m);
		ws[st] += 1;
		wk *w = m->user;
		mcf_metrics_gauge_set(series1(f->met.assign, m->name),
		    f->leading && w != NULL ? (double) w->nowned : 0);
	}
	for (int i = 0; i < 4; i++)
		mcf_metrics_gauge_set(
		    series1(f->met.workers, mcf_members_state_name(i)), ws[i]);
	(void) now;
}

static char *
build_status(mcf_fleet *f, int64_t now)
{
	mcf_members_leader li;
	mcf_status_leader  sl;
	mcf_status_view    sv;
	memset(&sv, 0, sizeof(sv));
	sv.leading  = f->leading;
	sv.identity = f->identity;
	sv.mode     = mcf_provider_mode_name(f->pcfg.mode);
	sv.ready    = f->synced;
	if (f->leading) {
		sl        = (mcf_status_leader) { f->identity, f->term.uid,
			       f->term.transitions, f->address,
                        f->status_url ? f->status_url : "" };
		sv.leader = &sl;
	} else {
		mcf_members_leader_get(f->members, now, &li);
		if (li.live) {
			sl        = (mcf_status_leader) { li.identity, li.uid,
				       li.transitions, li.address, li.status_url };
			sv.leader = &sl;
		}
	}
	size_t             nm = mcf_members_count(f->members), nw = 0;
	mcf_status_worker *ws  = mcf_calloc(nm + 1, sizeof(*ws));
	size_t             pos = 0;
	mcf_member        *m;
	while (mcf_members_next(f->members, &pos, &m)) {
		wk   *w  = m->user;
		sess *s  = w != NULL ? w->s : NULL;
		ws[nw++] = (mcf_status_worker) {
			.name        = m->name,
			.incarnation = m->incarnation,
			.weight      = m->weight,
			.state = mcf_members_state_name(mcf_members_state(m)),
			.projects = f->leading && w ? w->nowned : 0,
			.last_heartbeat_ms
			= f->leading && w ? w->last_rx_wall_ms : 0,
			.address    = s != NULL ? s->peer : "",
			.status_url = m->status_url,
			.connected  = s != NULL && s->st == S_WELCOMED,
		};
	}
	sv.workers  = ws;
	sv.nworkers = nw;
	order_refresh(f);
	mcf_status_project *ps = NULL;
	size_t              np = 0;
	if (f->leading) {
		ps = mcf_calloc(f->norder + 1, sizeof(*ps));
		for (size_t i = 0; i < f->norder; i++) {
			proj *p = f->order[i];
			if (!p->present && p->owner == NULL && p->nrel == 0)
				continue;
			ps[np++] = (mcf_status_project) {
				.name   = p->name,
				.owner  = p->owner ? p->owner->m->name : NULL,
				.state  = pst_name[p->state],
				.reason = p->reason,
				.since_ms = p->since_ms,
				.desired
				= p->desired ? p->desired->m->name : NULL,
			};
		}
	}
	sv.projects  = ps;
	sv.nprojects = np;
	sv.held_for  = (const char *const *) f->held;
	sv.nheld_for = f->leading ? f->nheld : 0;
	sv.counters  = (mcf_status_counters) {
		 .handoffs             = f->handoffs,
		 .worker_failovers     = f->worker_failovers,
		 .projects_failed_over = f->projects_failed_over,
		 .leader_acquisitions  = f->leader_acquisitions,
		 .engages              = f->engages,
		 .disengages           = f->disengages,
		 .engages_in_flight    = f->leading ? f->inflight : 0,
		 .moving               = f->leading ? f->moving : 0,
		 .table_version        = f->version,
	};
	json_t *doc = mcf_status_build(&sv);
	char   *txt = json_dumps(doc, JSON_INDENT(2));
	json_decref(doc);
	free(ws);
	free(ps);
	return txt;
}

/* ---- callbacks from other threads --------------------------------------- */

static ev *
ev_new(enum ev_kind kind)
{
	ev *e   = mcf_calloc(1, sizeof(*e));
	e->kind = kind;
	return e;
}

static void
post_obj(mcf_fleet *f, enum ev_kind kind, enum ev_op op, const json_t *obj)
{
	ev *e  = ev_new(kind);
	e->op  = op;
	e->obj = mcf_inf_obj_ref((json_t *) obj);
	post(f, e);
}

static void
proj_add(void *arg, const json_t *obj, bool initial)
{
	(void) initial;
	post_obj(arg, EV_PROJ, OP_UPSERT, obj);
}

static void
proj_update(void *arg, const json_t *old_obj, const json_t *new_obj)
{
	if (old_obj == new_obj)
		return; /* resync: nothing new */
	post_obj(arg, EV_PROJ, OP_UPSERT, new_obj);
}

static void
proj_delete(void *arg, const json_t *obj)
{
	post_obj(arg, EV_PROJ, OP_DELETE, obj);
}

static void
lease_add(void *arg, const json_t *obj, bool initial)
{
	(void) initial;
	post_obj(arg, EV_LEASE, OP_UPSERT, obj);
}

static void
lease_update(void *arg, const json_t *old_obj, const json_t *new_obj)
{
	(void) old_obj;
	post_obj(arg, EV_LEASE, OP_UPSERT, new_obj);
}

static void
lease_delete(void *arg, const json_t *obj)
{
	post_obj(arg, EV_LEASE, OP_DELETE, obj);
}

void
mcf_fleet_on_started_leading(void *arg, const mcf_le_fence *term)
{
	ev *e   = ev_new(EV_LEAD);
	e->term = *term;
	post(arg, e);
}

void
mcf_fleet_on_stopped_leading(void *arg)
{
	post(arg, ev_new(EV_UNLEAD));
}

static void
pipe_cb(nng_pipe p, nng_pipe_ev pev, void *arg)
{
	mcf_fleet *f = arg;
	ev        *e
	    = ev_new(pev == NNG_PIPE_EV_ADD_POST ? EV_PIPE_ADD : EV_PIPE_REM);
	e->pipe = nng_pipe_id(p);
	if (pev == NNG_PIPE_EV_ADD_POST)
		pipe_peer(p, e->peer, sizeof(e->peer));
	post(f, e);
}

/* A receive aio kept for a socket whose close was left hanging. */
static nng_aio *rx_left_behind;

static void
rx_cb(void *arg)
{
	mcf_fleet *f  = arg;
	int        rv = nng_aio_result(f->rx);
	if (rv == NNG_ECLOSED || rv == NNG_ECANCELED)
		return;
	if (rv == 0) {
		nng_msg *m = nng_aio_get_msg(f->rx);
		ev      *e = ev_new(EV_MSG);
		e->msg     = m;
		e->pipe    = nng_pipe_id(nng_msg_get_pipe(m));
		post(f, e);
	}
	nng_recv_aio(f->sock, f->rx);
}

/* ---- the loop ----------------------------------------------------------- */

static void
handle(mcf_fleet *f, ev *e, int64_t now)
{
	switch (e->kind) {
	case EV_PROJ:
		on_project(f, e->obj, e->op, now);
		break;
	case EV_LEASE:
		if (e->op == OP_UPSERT) {
			if (mcf_members_lease_update(f->members, e->obj, now))
				f->dirty_shard = f->dirty_plan = true;
		} else {
			mcf_members_lease_delete(f->members, e->obj, now);
		}
		break;
	case EV_LEAD:
		if (f->leading)
			end_term(f, "a new term began");
		start_term(f, &e->term);
		break;
	case EV_UNLEAD:
		end_term(f, "lost the Lease");
		break;
	case EV_PIPE_ADD:
		sess_get(f, e->pipe, e->peer, true);
		break;
	case EV_PIPE_REM: {
		sess *s = sess_get(f, e->pipe, NULL, false);
		if (s != NULL) {
			if (s->w != NULL && s->w->s == s)
				mcf_log_info("COORD-DISCONNECTED",
				    "%s disconnected (%s): a hint, the Lease "
				    "decides",
				    s->w->m->name, s->peer);
			if (s->w != NULL)
				f->dirty_plan = true;
			sess_free(f, s);
		}
		break;
	}
	case EV_MSG: {
		lock(f);
		f->qframes--;
		unlock(f);
		sess *s = sess_get(f, e->pipe, NULL, true);
		on_frame(f, s, nng_msg_body(e->msg), nng_msg_len(e->msg), now);
		break;
	}
	}
}

int
mcf_fleet_run(mcf_fleet *f, int stop_fd)
{
	f->next_tick_ms = f->next_hb_ms = mono_ms();
	for (;;) {
		int64_t now = mono_ms();
		atomic_store(&f->alive_ms, (long long) now);
		bool synced_now = f->pinf != NULL
		    && mcf_inf_has_synced(f->pinf)
		    && mcf_inf_has_synced(f->linf);
		lock(f);
		ev      *q      = f->qhead;
		uint64_t st_req = f->st_req;
		f->qhead = f->qtail = NULL;
		unlock(f);
		while (q != NULL) {
			ev *n = q->next;
			handle(f, q, now);
			json_decref(q->obj);
			if (q->msg != NULL)
				nng_msg_free(q->msg);
			free(q);
			q = n;
		}
		if (synced_now && !f->synced) {
			f->synced      = true;
			f->dirty_shard = f->dirty_plan = true;
			atomic_store(&f->ready, true);
			mcf_log_info("COORD-SYNCED",
			    "informers synced: %zu project(s), %zu worker(s)",
			    mcf_strmap_count(f->projects),
			    mcf_members_count(f->members));
		}
		if (f->leading && f->le != NULL && !mcf_le_is_leader(f->le))
			end_term(f, "the elector no longer leads");

		size_t pos = 0;
		void  *v;
		while (mcf_strmap_next(f->sessions, &pos, NULL, &v))
			((sess *) v)->sends = 0;
		f->again = false;
		now      = mono_ms();
		timers(f, now);
		if (f->synced) {
			shard(f, now);
			if (f->leading)
				plan_step(f, now);
		}
		if (f->leading)
			flush(f);
		sweep(f);

		if (now >= f->next_gauges_ms) {
			f->next_gauges_ms = now + 1000;
			update_gauges(f, now);
		}
		if (st_req > f->st_done) {
			char *doc = build_status(f, now);
			lock(f);
			free(f->st_doc);
			f->st_doc  = doc;
			f->st_done = st_req;
			pthread_cond_broadcast(&f->cv);
			unlock(f);
		}

		int64_t next = f->next_tick_ms;
		if (f->leading && f->next_hb_ms < next)
			next = f->next_hb_ms;
		if (f->grace_deadline_ms < next)
			next = f->grace_deadline_ms;
		int64_t wait = next - mono_ms();
		if (f->again || f->dirty_plan)
			wait = 5;
		if (wait < 0)
			wait = 0;
		if (wait > TICK_MS)
			wait = TICK_MS;
		struct pollfd pfd[2] = {
			{ .fd = f->efd, .events = POLLIN },
			{ .fd = stop_fd, .events = POLLIN },
		};
		int pr = poll(pfd, 2, (int) wait);
		if (pr < 0 && errno != EINTR) {
			mcf_log_error(
			    "COORD-POLL", "poll: %s", strerror(errno));
			return MCF_ESYS;
		}
		if (pr > 0 && (pfd[0].revents & POLLIN)) {
			uint64_t cnt;
			ssize_t  n = read(f->efd, &cnt, sizeof(cnt));
			(void) n;
		}
		if (pr > 0 && (pfd[1].revents & (POLLIN | POLLHUP)))
			break;
	}
	end_term(f, "shutting down");
	return MCF_OK;
}

/* ---- public API --------------------------------------------------------- */

static bool
wildcard(const char *h)
{
	return h[0] == '\0' || strcmp(h, "0.0.0.0") == 0 || strcmp(h, "*") == 0
	    || strcmp(h, "::") == 0 || strcmp(h, "[::]") == 0;
}

/* "scheme://host:port": splits host (brackets removed) and port.  False
 * for URLs without a host:port (ipc://, inproc://). */
static bool
split_url(const char *url, char *scheme, size_t scap, char *host, size_t hcap,
    char *port, size_t pcap)
{
	const char *sep = strstr(url, "://");
	if (sep == NULL)
		return false;
	snprintf(scheme, scap, "%.*s", (int) (sep - url), url);
	if (strcmp(scheme, "tcp") != 0 && strcmp(scheme, "tcp4") != 0
	    && strcmp(scheme, "tcp6") != 0 && strcmp(scheme, "tls+tcp") != 0
	    && strcmp(scheme, "tls+tcp4") != 0
	    && strcmp(scheme, "tls+tcp6") != 0)
		return false;
	const char *hp = sep + 3;
	const char *colon;
	if (hp[0] == '[') {
		const char *rb = strchr(hp, ']');
		if (rb == NULL || rb[1] != ':')
			return false;
		snprintf(host, hcap, "%.*s", (int) (rb - hp - 1), hp + 1);
		colon = rb + 1;
	} else {
		colon = strrchr(hp, ':');
		if (colon == NULL)
			return false;
		snprintf(host, hcap, "%.*s", (int) (colon - hp), hp);
	}
	snprintf(port, pcap, "%s", colon + 1);
	return true;
}

static char *
join_host_port(const char *scheme, const char *host, const char *port)
{
	bool v6 = strchr(host, ':') != NULL;
	return mcf_asprintf("%s://%s%s%s:%s", scheme, v6 ? "[" : "", host,
	    v6 ? "]" : "", port);
}

int
mcf_fleet_create(const mcf_fleet_config *cfg, mcf_fleet **out, mcf_errinfo *ei)
{
	if (cfg->identity == NULL || !cfg->identity[0] || cfg->listen == NULL
	    || cfg->namespace == NULL || cfg->lease_name == NULL
	    || cfg->keys == NULL || cfg->heartbeat_ms <= 0
	    || cfg->max_engages < 1 || cfg->kc == NULL)
		return mcf_errinfo_set(
		    ei, MCF_EINVAL, "fleet: bad configuration");
	mcf_fleet *f  = mcf_calloc(1, sizeof(*f));
	f->identity   = mcf_strdup(cfg->identity);
	f->namespace  = mcf_strdup(cfg->namespace);
	f->lease_name = mcf_strdup(cfg->lease_name);
	f->selector   = cfg->project_selector && cfg->project_selector[0]
	      ? mcf_strdup(cfg->project_selector)
	      : NULL;
	f->ua         = mcf_strdup(
	            cfg->user_agent ? cfg->user_agent : "mcfleet-coordinator");
	f->pcfg                   = cfg->provider;
	f->core_server            = mcf_strdup(cfg->kc->server);
	f->tmpl                   = cfg->provider.endpoint_template
	                      ? mcf_strdup(cfg->provider.endpoint_template)
	                      : NULL;
	f->pcfg.core_server       = f->core_server;
	f->pcfg.endpoint_template = f->tmpl;
	f->hb_ms                  = cfg->heartbeat_ms;
	f->max_engages            = cfg->max_engages;
	f->epsilon                = cfg->epsilon;
	f->max_frame
	    = cfg->max_frame ? cfg->max_frame : MCF_PROTO_MAX_FRAME_DEFAULT;
	f->keys              = cfg->keys;
	f->efd               = -1;
	f->grace_deadline_ms = INT64_MAX;
	mcf_kubeconfig_dup(cfg->kc, NULL, &f->kc);
	pthread_mutex_init(&f->mtx, NULL);
	pthread_cond_init(&f->cv, NULL);
	atomic_init(&f->ready, false);
	atomic_init(&f->alive_ms, 0);
	f->projects = mcf_strmap_create();
	f->sessions = mcf_strmap_create();
	f->members  = mcf_members_create(f->lease_name, on_member, f);
	metrics_init(f);
	mcf_proto_replay_create(&f->replay, 0);
	mcf_proto_reject_stats_create(&f->rstats);
	if (mcf_metrics_add_collector(mcf_metrics_default(),
	        mcf_proto_reject_stats_collect, f->rstats)
	    == MCF_OK)
		f->collector = true;

	int rc = MCF_OK;
	f->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (f->efd < 0) {
		rc = mcf_errinfo_set(
		    ei, MCF_ESYS, "eventfd: %s", strerror(errno));
		goto fail;
	}
	int rv = nng_pair1_open_poly(&f->sock);
	if (rv != 0) {
		rc = mcf_errinfo_set(
		    ei, MCF_EIO, "nng_pair1_open_poly: %s", nng_strerror(rv));
		goto fail;
	}
	f->sock_open = true;
	nng_socket_set_size(f->sock, NNG_OPT_RECVMAXSZ, 2 * f->max_frame);
	nng_socket_set_int(f->sock, NNG_OPT_SENDBUF, 1024);
	nng_socket_set_int(f->sock, NNG_OPT_RECVBUF, 1024);
	nng_socket_set_ms(f->sock, NNG_OPT_SENDTIMEO, 1000);
	nng_pipe_notify(f->sock, NNG_PIPE_EV_ADD_POST, pipe_cb, f);
	nng_pipe_notify(f->sock, NNG_PIPE_EV_REM_POST, pipe_cb, f);
	rc = mcf_proto_listen(f->sock, cfg->listen, cfg->tls, &f->lst, ei);
	if (rc != MCF_OK)
		goto fail;

	char scheme[16], host[256], port[32];
	if (split_url(cfg->listen, scheme, sizeof(scheme), host, sizeof(host),
	        port, sizeof(port))) {
		int bound = 0;
		if (nng_listener_get_int(
		        f->lst, NNG_OPT_TCP_BOUND_PORT, &bound)
		        == 0
		    && bound > 0)
			snprintf(port, sizeof(port), "%d", bound);
		const char *shown = wildcard(host) ? "127.0.0.1" : host;
		f->listen_url     = join_host_port(scheme, shown, port);
		const char *pod   = getenv("POD_IP");
		const char *adv   = cfg->advertise;
		if (adv != NULL && adv[0] != '\0') {
			if (strstr(adv, "://") != NULL) {
				char s2[16], h2[256], p2[32];
				f->address  = mcf_strdup(adv);
				f->adv_host = mcf_strdup(
				    split_url(adv, s2, sizeof(s2), h2,
				        sizeof(h2), p2, sizeof(p2))
				        ? h2
				        : shown);
			} else {
				/* "host" or "host:port" ("[v6]:port"). */
				const char *rb  = strrchr(adv, ']');
				const char *col = strrchr(adv, ':');
				bool        hp  = col != NULL
				    && (adv[0] == '['
				            ? rb != NULL && col > rb
				            : strchr(adv, ':') == col);
				if (hp) {
					f->address = mcf_asprintf(
					    "%s://%s", scheme, adv);
					char *h = mcf_strndup(
					    adv, (size_t) (col - adv));
					if (h[0] == '[') {
						memmove(h, h + 1, strlen(h));
						h[strlen(h) - 1] = '\0';
					}
					f->adv_host = h;
				} else {
					f->address = join_host_port(
					    scheme, adv, port);
					f->adv_host = mcf_strdup(adv);
				}
			}
		} else {
			const char *h = pod != NULL && pod[0] ? pod : shown;
			f->address    = join_host_port(scheme, h, port);
			f->adv_host   = mcf_strdup(h);
		}
	} else {
		f->listen_url = mcf_strdup(cfg->listen);
		f->address    = mcf_strdup(cfg->advertise && cfg->advertise[0]
		           ? cfg->advertise
		           : cfg->listen);
		f->adv_host   = mcf_strdup("127.0.0.1");
	}
	*out = f;
	return MCF_OK;
fail:
	mcf_fleet_destroy(f);
	return rc;
}

const char *
mcf_fleet_listen_url(const mcf_fleet *f)
{
	return f->listen_url;
}

const char *
mcf_fleet_address(const mcf_fleet *f)
{
	return f->address;
}

const char *
mcf_fleet_advertise_host(const mcf_fleet *f)
{
	return f->adv_host;
}

void
mcf_fleet_set_status_url(mcf_fleet *f, const char *url)
{
	free(f->status_url);
	f->status_url = url ? mcf_strdup(url) : NULL;
}

void
mcf_fleet_set_elector(mcf_fleet *f, mcf_le *le)
{
	f->le = le;
}

int
mcf_fleet_start(mcf_fleet *f, mcf_inf_loop *loop, mcf_errinfo *ei)
{
	f->loop          = loop;
	mcf_inf_config c = {
		.cluster        = "core",
		.kc             = f->kc,
		.user_agent     = f->ua,
		.group          = mcf_provider_group(f->pcfg.mode),
		.version        = mcf_provider_version(f->pcfg.mode),
		.resource       = mcf_provider_resource(f->pcfg.mode),
		.label_selector = f->selector,
	};
	int rc = mcf_inf_acquire(loop, &c, &f->pinf, ei);
	if (rc != MCF_OK)
		return rc;
	mcf_inf_config lc = {
		.cluster    = "core",
		.kc         = f->kc,
		.user_agent = f->ua,
		.group      = "coordination.k8s.io",
		.version    = "v1",
		.resource   = "leases",
		.namespace  = f->namespace,
	};
	rc = mcf_inf_acquire(loop, &lc, &f->linf, ei);
	if (rc != MCF_OK)
		return rc;
	mcf_inf_handler ph = { .on_add = proj_add,
		.on_update             = proj_update,
		.on_delete             = proj_delete,
		.arg                   = f };
	mcf_inf_handler lh = { .on_add = lease_add,
		.on_update             = lease_update,
		.on_delete             = lease_delete,
		.arg                   = f };
	mcf_inf_add_handler(f->pinf, &ph, &f->ph);
	mcf_inf_add_handler(f->linf, &lh, &f->lh);

	int rv = nng_aio_alloc(&f->rx, rx_cb, f);
	if (rv != 0)
		return mcf_errinfo_set(
		    ei, MCF_EIO, "nng_aio_alloc: %s", nng_strerror(rv));
	nng_recv_aio(f->sock, f->rx);
	return MCF_OK;
}

char *
mcf_fleet_status(mcf_fleet *f, int64_t timeout_ms)
{
	struct timespec dl;
	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += timeout_ms / 1000;
	dl.tv_nsec += (timeout_ms % 1000) * 1000000;
	if (dl.tv_nsec >= 1000000000) {
		dl.tv_sec++;
		dl.tv_nsec -= 1000000000;
	}
	lock(f);
	uint64_t want = ++f->st_req;
	unlock(f);
	wake(f);
	lock(f);
	while (f->st_done < want && !f->stopped) {
		if (pthread_cond_timedwait(&f->cv, &f->mtx, &dl) == ETIMEDOUT)
			break;
	}
	char *doc = f->st_doc != NULL ? mcf_strdup(f->st_doc) : NULL;
	unlock(f);
	return doc;
}

bool
mcf_fleet_ready(mcf_fleet *f)
{
	return atomic_load(&f->ready);
}

bool
mcf_fleet_healthy(mcf_fleet *f)
{
	long long a = atomic_load(&f->alive_ms);
	return a == 0 || mono_ms() - a < 10000;
}

void
mcf_fleet_stop(mcf_fleet *f)
{
	lock(f);
	f->stopped = true; /* from now on post() drops events */
	pthread_cond_broadcast(&f->cv);
	unlock(f);
	/* No callback may reach `f` once nng_close returns, or once it is
	 * left behind: pipe notifications off, the receive stopped first. */
	if (f->sock_open) {
		nng_pipe_notify(f->sock, NNG_PIPE_EV_ADD_POST, NULL, NULL);
		nng_pipe_notify(f->sock, NNG_PIPE_EV_REM_POST, NULL, NULL);
	}
	if (f->rx != NULL)
		nng_aio_stop(f->rx);
	bool closed = true;
	if (f->sock_open) {
		/* Bounded: nng 1.5.2 was seen to hang in nng_close of a
		 * tls+tcp listener on a busy machine. */
		closed = mcf_proto_close_bounded(f->sock, CLOSE_WAIT_MS);
		f->sock_open = false;
	}
	if (f->rx != NULL) {
		if (closed)
			nng_aio_free(f->rx);
		else
			rx_left_behind = f->rx; /* the hung socket may use it */
		f->rx = NULL;
	}
	if (f->pinf != NULL) {
		mcf_inf_remove_handler(f->pinf, f->ph);
		mcf_inf_release(f->pinf);
		f->pinf = NULL;
	}
	if (f->linf != NULL) {
		mcf_inf_remove_handler(f->linf, f->lh);
		mcf_inf_release(f->linf);
		f->linf = NULL;
	}
	lock(f);
	ev *q    = f->qhead;
	f->qhead = f->qtail = NULL;
	unlock(f);
	while (q != NULL) {
		ev *n = q->next;
		json_decref(q->obj);
		if (q->msg != NULL)
			nng_msg_free(q->msg);
		free(q);
		q = n;
	}
}

void
mcf_fleet_destroy(mcf_fleet *f)
{
	if (f == NULL)
		return;
	mcf_fleet_stop(f);
	size_t      pos = 0;
	const char *k;
	void       *v;
	while (mcf_strmap_next(f->sessions, &pos, &k, &v))
		sess_free(f, v);
	mcf_strmap_destroy(f->sessions);
	pos = 0;
	mcf_member *m;
	while (mcf_members_next(f->members, &pos, &m)) {
		wk *w = m->user;
		if (w != NULL) {
			free(w->inc);
			free(w->eng);
			free(w->dis);
			free(w);
			m->user = NULL;
		}
	}
	mcf_members_destroy(f->members);
	pos = 0;
	while (mcf_strmap_next(f->projects, &pos, &k, &v))
		proj_free(v);
	mcf_strmap_destroy(f->projects);
	free(f->order);
	held_clear(f);
	free(f->held);
	if (f->collector)
		mcf_metrics_remove_collector(mcf_metrics_default(),
		    mcf_proto_reject_stats_collect, f->rstats);
	mcf_proto_reject_stats_destroy(f->rstats);
	mcf_proto_replay_destroy(f->replay);
	if (f->efd >= 0)
		close(f->efd);
	pthread_mutex_destroy(&f->mtx);
	pthread_cond_destroy(&f->cv);
	mcf_kubeconfig_destroy(f->kc);
	free(f->st_doc);
	free(f->identity);
	free(f->namespace);
	free(f->lease_name);
	free(f->selector);
	free(f->core_server);
	free(f->tmpl);
	free(f->ua);
	free(f->listen_url);
	free(f->address);
	free(f->adv_host);
	free(f->status_url);
	free(f);
}

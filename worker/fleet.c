/*
 * fleet.c — the worker's fleet mode (fleet.h, docs/fleet.md).
 *
 * The control loop (mcf_fleet_run) polls three descriptors — the caller's
 * signal pipe, the fleet's wake pipe (written by the elector's callbacks
 * and NNG's pipe notifications), and the current session's receive
 * descriptor — with a timeout set by the next timer, and then:
 *
 *   1. follows the own Lease: reconcilers run only while the elector
 *      holds it (mcf_le_is_leader), paused otherwise; caches stay.  After
 *      a lapse (held, then lost) they stay paused, once it is held again,
 *      until a snapshot arrives at least 1.2 lease durations after the
 *      lapse began (a RESYNC_REQUEST asks for one): meanwhile the leader
 *      may have declared this worker gone and moved its projects;
 *   2. handles pipe events of the current socket (ADD → HELLO, REM →
 *      hang up and read the coordinator Lease at once);
 *   3. handles received frames (WELCOME, ASSIGN_SNAPSHOT, ASSIGN_DELTA,
 *      HEARTBEAT, NOT_LEADER, VERSION_REJECT), fencing each term;
 *   4. runs the timers: the coordinator Lease read (every lease_poll_ms),
 *      dialing or hanging up when the holder or address changed, the
 *      session's silence limits, heartbeats (and STOPPED repeats), the
 *      state poll that feeds partial ACKs, a repeated RESYNC_REQUEST, the
 *      drain deadline.
 *
 * Session states: IDLE (no socket) → DIALING (socket dialing, no pipe) →
 * HELLO (pipe up, HELLO sent) → READY (WELCOME accepted).  Any failure
 * goes back to IDLE; the shard is never touched by a hang-up (static
 * stability: the worker keeps its projects through any coordinator
 * outage).
 *
 * Silence: before WELCOME, a session gets 5 heartbeat intervals; after
 * it, a coordinator silent for 3 intervals is suspect (the Lease is read
 * at once, and a new holder or address means a redial) and one silent for
 * 5 intervals is hung up on.
 */
#include <errno.h>
#include <malloc.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "alloc.h"
#include "fleet.h"
#include "kclient.h"
#include "keys.h"
#include "leaderelect.h"
#include "leaderwatch.h"
#include "log.h"
#include "metrics.h"
#include "reject.h"
#include "replay.h"
#include "session.h"
#include "shard.h"

#define LOG_ID "WORKER-FLEET"

/* Session silence limits, in heartbeat intervals. */
#define SUSPECT_INTERVALS 3
#define HANGUP_INTERVALS 5
/* Redial backoff after failed sessions. */
#define BACKOFF_MIN_MS 500
#define BACKOFF_MAX_MS 10000
/* Projects the shard must shrink by before memory is trimmed. */
#define TRIM_AFTER 64
/* /healthz fails when the control loop has not turned for this long. */
#define STUCK_MS 60000

enum sstate { S_IDLE = 0, S_DIALING, S_HELLO, S_READY };

static const char *const sstate_names[]
    = { "idle", "dialing", "hello", "ready" };

typedef struct pipe_ev {
	int  sock;
	bool added;
} pipe_ev;

#define PIPE_EV_MAX 64

/* What the status handlers read, under `mtx`. */
typedef struct published {
	enum sstate    st;
	bool           draining;
	char           holder[256];      /* coordinator Lease holder */
	char           address[512];     /* its fleet address */
	char           status_url[512];  /* its status URL */
	bool           lease_valid;      /* holder valid as observed */
	int            lease_err;        /* last read's error */
	char           coordinator[256]; /* WELCOME's leader */
	char           dialed[512];      /* URL of the current session */
	mcf_proto_term term;             /* highest seen */
	mcf_proto_term applied_term;
	uint64_t       applied;
	bool           resync;
	bool           lapsed;
} published;

struct mcf_fleet {
	/* Configuration (owned copies). */
	char *namespace, *coord_lease, *name, *incarnation, *user_agent;
	char           *status_url, *lease_name;
	char           *tls_ca, *tls_cert, *tls_key, *tls_server_name;
	uint32_t        weight;
	int64_t         heartbeat_ms, drain_timeout_ms, lease_poll_ms;
	long long       engaged_published; /* the Lease's engaged count */
	size_t          trim_high; /* shard size at the last malloc_trim */
	size_t          max_frame;
	int             term_fd;
	mcf_kubeconfig *kc;         /* owned: core API */
	mcf_kubeconfig *project_kc; /* owned: project credentials */

	/* Process-wide protocol objects (shared by every session). */
	mcf_proto_keys         *keys;
	mcf_proto_replay       *replay;
	mcf_proto_reject_stats *stats;

	mcf_ctrl_mgr    *mgr;
	mcf_le          *le;
	mcf_shard       *shard;
	mcf_leaderwatch *lw;
	mcf_kc          *lease_kc; /* control thread: created by run */

	/* Wake-ups from other threads. */
	int                wake[2];
	mcf_session_notify notify; /* outlives every session */
	pthread_mutex_t    evmtx;  /* guards ev, nev, evlost */
	pipe_ev            ev[PIPE_EV_MAX];
	size_t             nev;
	bool               evlost;

	/* Control-thread state. */
	mcf_session   *sess;
	enum sstate    st;
	char           sess_holder[256];
	char           sess_addr[512];
	mcf_proto_term sess_term; /* latest accepted on this session */
	char           coordinator[256];
	int64_t        sess_start_ms, last_rx_ms;
	int64_t        hb_ms, next_hb_ms;
	uint64_t       hb_seq;
	bool           suspect_read;
	int64_t        next_lease_ms, next_poll_ms, next_dial_ms;
	int64_t        backoff_ms;
	char           failed_target[800]; /* holder|addr of a failed dial */
	int64_t        resync_sent_ms;
	bool           running;       /* reconcilers resumed */
	bool           held;          /* own Lease held (last look) */
	int64_t        lease_ms;      /* own Lease duration */
	int64_t        held_since_ms; /* when it was last acquired */
	/* After a lapse of the own Lease the leader may have declared this
	 * worker gone and engaged its projects elsewhere: reconcilers resume
	 * only with a snapshot received once the Lease is held again and
	 * 1.2 lease durations have passed since the lapse (docs/fleet.md,
	 * "Worker liveness"). */
	bool    lapsed;
	int64_t lapse_ms;        /* when the last lapse began */
	int64_t lapse_resync_ms; /* its RESYNC_REQUEST; 0 not yet */
	int64_t unheld_since_ms; /* own Lease not held since */
	int64_t unheld_warn_ms;  /* last warning about that */
	bool    draining, end_now;
	int64_t drain_deadline_ms;
	bool    dialed_once;
	int     lease_err_logged;

	/* Shared with the status thread. */
	pthread_mutex_t mtx;
	published       pub;
	atomic_bool     lease_held;
	atomic_bool     reconciling;
	atomic_llong    loop_ms;

	/* Metrics (default registry; series live forever). */
	mcf_metrics_series *m_engages, *m_disengages, *m_reconnects;
	mcf_metrics_series *m_resyncs, *m_dropped, *m_connected, *m_held;
	mcf_metrics_series *m_applied, *m_engage_s;
	bool                collectors;
};

/* ---- clocks, wake-ups ----------------------------------------------------
 */

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

static void
wake(mcf_fleet *f, char c)
{
	ssize_t n = write(f->wake[1], &c, 1);
	(void) n; /* a full pipe already holds a wake-up */
}

/* Elector callbacks (elector thread): wake the loop, which asks
 * mcf_le_is_leader itself. */
static void
le_started(void *arg, const mcf_le_fence *term)
{
	(void) term;
	wake(arg, 'L');
}

static void
le_stopped(void *arg)
{
	wake(arg, 'S');
}

/* NNG pipe notification (an NNG thread): record and wake. */
static void
pipe_event(void *arg, int sock, bool added)
{
	mcf_fleet *f = arg;
	pthread_mutex_lock(&f->evmtx);
	if (f->nev < PIPE_EV_MAX)
		f->ev[f->nev++] = (pipe_ev) { sock, added };
	else
		f->evlost = true;
	pthread_mutex_unlock(&f->evmtx);
	wake(f, 'P');
}

static void
publish(mcf_fleet *f)
{
	mcf_leaderwatch_view v;
	mcf_leaderwatch_view_get(f->lw, mono_ms(), &v);
	pthread_mutex_lock(&f->mtx);
	published *p = &f->pub;
	p->st        = f->st;
	p->draining  = f->draining;
	snprintf(p->holder, sizeof(p->holder), "%s", v.holder);
	snprintf(p->address, sizeof(p->address), "%s", v.address);
	snprintf(p->status_url, sizeof(p->status_url), "%s", v.status_url);
	p->lease_valid = v.valid;
	p->lease_err   = v.last_err;
	snprintf(p->coordinator, sizeof(p->coordinator), "%s",
	    f->st == S_READY ? f->coordinator : "");
	snprintf(p->dialed, sizeof(p->dialed), "%s",
	    f->sess != NULL ? mcf_session_url(f->sess) : "");
	p->term = *mcf_shard_term_seen(f->shard);
	mcf_shard_applied(f->shard, &p->applied_term, &p->applied);
	p->resync = mcf_shard_resync_pending(f->shard);
	p->lapsed = f->lapsed;
	pthread_mutex_unlock(&f->mtx);
	mcf_metrics_gauge_set(f->m_connected, f->st == S_READY ? 1 : 0);
	mcf_metrics_gauge_set(f->m_applied, (double) p->applied);
}

/* ---- shard callbacks (control thread) ------------------------------------
 */

/* Publishes on the own Lease how many projects may run here (at least
 * `floor`), from the next renew on.  Raised before an engage starts
 * anything, lowered only once the table has shrunk. */
/* Gives memory back to the system once the shard has shrunk a lot (a
 * hand-off, a drain): disengaged projects free their caches, but glibc
 * keeps the freed pages of its arenas (the informer loop's above all)
 * until trimmed. */
static void
trim_after_shrink(mcf_fleet *f, size_t n)
{
	if (n > f->trim_high)
		f->trim_high = n;
	if (f->trim_high - n >= TRIM_AFTER || (n == 0 && f->trim_high > 0)) {
		malloc_trim(0);
		f->trim_high = n;
	}
}

static void
publish_engaged(mcf_fleet *f, size_t floor)
{
	size_t n = mcf_shard_count(f->shard);
	if (floor == 0)
		trim_after_shrink(f, n);
	if (n < floor)
		n = floor;
	if ((long long) n == f->engaged_published)
		return;
	char v[24];
	snprintf(v, sizeof(v), "%zu", n);
	mcf_le_set_annotation(f->le, MCF_FLEET_ENGAGED_ANNOTATION, v);
	f->engaged_published = (long long) n;
}

static int
op_engage(void *arg, const char *name, const char *endpoint, mcf_errinfo *ei)
{
	mcf_fleet      *f   = arg;
	mcf_kubeconfig *pkc = NULL;
	if (mcf_kubeconfig_dup(f->project_kc, endpoint, &pkc) != MCF_OK)
		return mcf_errinfo_set(ei, MCF_EINVAL,
		    "endpoint \"%s\" is not an http(s) URL", endpoint);
	publish_engaged(f, 1);
	int rc = mcf_ctrl_mgr_engage(f->mgr, name, pkc, ei);
	mcf_kubeconfig_destroy(pkc);
	if (rc == MCF_OK) {
		mcf_metrics_counter_inc(f->m_engages);
		mcf_log_info("WORKER-ENGAGED", "engaged project %s at %s",
		    name, endpoint);
	}
	return rc;
}

static void
op_disengage(void *arg, const char *name)
{
	mcf_fleet *f  = arg;
	int64_t    t0 = mono_ms();
	int        rc = mcf_ctrl_mgr_disengage(f->mgr, name);
	if (rc != MCF_OK) {
		mcf_log_warn(
		    LOG_ID, "disengage %s: %s", name, mcf_strerror(rc));
		return;
	}
	mcf_metrics_counter_inc(f->m_disengages);
	mcf_log_info("WORKER-STOPPED",
	    "stopped project %s: reconcilers stopped, caches dropped (%lld "
	    "ms)",
	    name, (long long) (mono_ms() - t0));
}

static int
op_status(void *arg, const char *name, mcf_shard_pstatus *out)
{
	mcf_fleet              *f = arg;
	mcf_ctrl_cluster_status cs;
	int rc = mcf_ctrl_mgr_cluster_status(f->mgr, name, &cs);
	if (rc != MCF_OK)
		return rc;
	switch (cs.state) {
	case MCF_CTRL_CLUSTER_SYNCED:
		out->state = MCF_PROTO_PSTATE_SYNCED;
		break;
	case MCF_CTRL_CLUSTER_FAILING:
		out->state = MCF_PROTO_PSTATE_FAILING;
		break;
	default:
		out->state = MCF_PROTO_PSTATE_ENGAGING;
		break;
	}
	snprintf(out->reason, sizeof(out->reason), "%s", cs.reason);
	out->objects = cs.objects;
	return MCF_OK;
}

static int64_t
op_wall(void *arg)
{
	(void) arg;
	return wall_ms();
}

static int64_t
op_mono(void *arg)
{
	(void) arg;
	return mono_ms();
}

static void
op_synced(void *arg, const char *name, int64_t ms)
{
	mcf_fleet *f = arg;
	mcf_metrics_histogram_observe(f->m_engage_s, (double) ms / 1000.0);
	mcf_log_info("WORKER-SYNCED", "project %s synced %lld ms after engage",
	    name, (long long) ms);
}

/* ---- metrics -------------------------------------------------------------
 */

static mcf_metrics_series *
metric(int kind, const char *name, const char *help)
{
	static const double bounds[]
	    = { 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60 };
	mcf_metrics        *reg = mcf_metrics_default();
	mcf_metrics_family *fam = NULL;
	mcf_metrics_series *s   = NULL;
	int                 rc;
	if (kind == 0)
		rc = mcf_metrics_counter_register(reg, name, help, NULL, &fam);
	else if (kind == 1)
		rc = mcf_metrics_gauge_register(reg, name, help, NULL, &fam);
	else
		rc = mcf_metrics_histogram_register(reg, name, help, NULL,
		    bounds, sizeof(bounds) / sizeof(bounds[0]), &fam);
	if (rc != MCF_OK || mcf_metrics_series_get(fam, NULL, &s) != MCF_OK)
		mcf_panic("fleet: cannot register a metric");
	return s;
}

static void
collect(mcf_metrics_writer *w, void *arg)
{
	mcf_fleet *f = arg;
	size_t     e, s, fl;
	mcf_shard_state_counts(f->shard, &e, &s, &fl);
	static const char *help
	    = "Projects engaged on this worker, by reported state.";
	const char *le[] = { "state", "engaging", NULL };
	const char *ls[] = { "state", "synced", NULL };
	const char *lf[] = { "state", "failing", NULL };
	mcf_metrics_write_gauge(
	    w, "mcfleet_worker_projects", help, le, (double) e);
	mcf_metrics_write_gauge(
	    w, "mcfleet_worker_projects", help, ls, (double) s);
	mcf_metrics_write_gauge(
	    w, "mcfleet_worker_projects", help, lf, (double) fl);
	mcf_metrics_write_gauge(w, "mcfleet_worker_engaged_projects",
	    "Projects engaged on this worker.", NULL, (double) (e + s + fl));
}

static void
metrics_init(mcf_fleet *f)
{
	f->m_engages    = metric(0, "mcfleet_worker_engages_total",
	       "Projects engaged (informers started) by this worker.");
	f->m_disengages = metric(0, "mcfleet_worker_disengages_total",
	    "Projects disengaged (reconcilers stopped, caches dropped).");
	f->m_reconnects = metric(0, "mcfleet_worker_reconnects_total",
	    "Dial sessions to a coordinator after the first one.");
	f->m_resyncs    = metric(0, "mcfleet_worker_resync_requests_total",
	       "RESYNC_REQUEST frames sent after a gap in the deltas.");
	f->m_dropped    = metric(0, "mcfleet_worker_frames_dropped_total",
	       "Frames to the coordinator that could not be queued.");
	f->m_connected  = metric(1, "mcfleet_worker_coordinator_connected",
	     "1 while a coordinator session is established (WELCOME).");
	f->m_held       = metric(1, "mcfleet_worker_own_lease_held",
	          "1 while this worker holds its own Lease (reconcilers run).");
	f->m_applied    = metric(1, "mcfleet_worker_applied_version",
	       "Version of the assignment table last applied.");
	f->m_engage_s   = metric(2, "mcfleet_worker_engage_duration_seconds",
	      "Time from engaging a project to its caches being synced.");
	if (mcf_metrics_add_collector(mcf_metrics_default(), collect, f)
	        == MCF_OK
	    && mcf_metrics_add_collector(mcf_metrics_default(),
	           mcf_proto_reject_stats_collect, f->stats)
	        == MCF_OK)
		f->collectors = true;
}

/* ---- configuration -------------------------------------------------------
 */

static bool
name_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n + strlen(MCF_FLEET_LEASE_PREFIX) > 253)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
		        || c == '-' || c == '.'))
			return false;
	}
	return s[n - 1] != '-' && s[n - 1] != '.';
}

int
mcf_fleet_config_check(const mcf_fleet_config *cfg, mcf_errinfo *ei)
{
	if (cfg->name == NULL || !name_ok(cfg->name))
		return mcf_errinfo_set(ei, MCF_EINVAL,
		    "--name: \"%s\" is not usable in the Lease name %sNAME "
		    "(lowercase letters, digits, '-' and '.')",
		    cfg->name ? cfg->name : "", MCF_FLEET_LEASE_PREFIX);
	if (cfg->weight < 1)
		return mcf_errinfo_set(
		    ei, MCF_EINVAL, "--weight: must be >= 1");
	if (cfg->key_file == NULL || cfg->key_file[0] == '\0')
		return mcf_errinfo_set(ei, MCF_EINVAL,
		    "--key-file: required in fleet mode (the HMAC key shared "
		    "with the coordinators)");
	if (cfg->namespace == NULL || cfg->namespace[0] == '\0')
		return mcf_errinfo_set(ei, MCF_EINVAL, "--namespace: empty");
	if (cfg->coordinator_lease == NULL
	    || cfg->coordinator_lease[0] == '\0')
		return mcf_errinfo_set(
		    ei, MCF_EINVAL, "--coordinator-lease: empty");
	if (cfg->heartbeat_ms < 50 || cfg->heartbeat_ms > 60000)
		return mcf_errinfo_set(ei, MCF_EINVAL,
		    "--heartbeat-interval: must be within 50ms..1m");
	if (cfg->drain_timeout_ms < 0)
		return mcf_errinfo_set(
		    ei, MCF_EINVAL, "--drain-timeout: must not be negative");
	if (cfg->lease_poll_ms < 0)
		return mcf_errinfo_set(ei, MCF_EINVAL, "lease poll: negative");
	if (cfg->max_frame != 0 && cfg->max_frame < MCF_PROTO_MAX_FRAME_MIN)
		return mcf_errinfo_set(
		    ei, MCF_EINVAL, "max frame below 1 KiB");
	mcf_le_config lc = {
		.namespace         = cfg->namespace,
		.name              = "x",
		.identity          = "x",
		.lease_duration_ms = cfg->lease_duration_ms,
		.renew_deadline_ms = cfg->renew_deadline_ms,
		.retry_period_ms   = cfg->renew_period_ms,
	};
	mcf_errinfo lei = { 0 };
	if (cfg->lease_duration_ms <= 0 || cfg->renew_deadline_ms <= 0
	    || cfg->renew_period_ms <= 0
	    || mcf_le_config_check(&lc, &lei) != 0)
		return mcf_errinfo_set(ei, MCF_EINVAL,
		    "--lease-duration, --renew-deadline, --renew-period: need "
		    "lease-duration > renew-deadline > 1.2 x renew-period, "
		    "all "
		    "positive%s%s",
		    lei.msg[0] ? ": " : "", lei.msg);
	mcf_proto_tls_opts tls = {
		.cert_file   = cfg->tls_cert,
		.key_file    = cfg->tls_key,
		.ca_file     = cfg->tls_ca,
		.server_name = cfg->tls_server_name,
	};
	/* TLS options check out now (files readable, cert and key a pair)
	 * rather than at the first dial; a client certificate without a CA
	 * would never be used. */
	if (mcf_proto_tls_configured(&tls)) {
		if (cfg->tls_ca == NULL || cfg->tls_ca[0] == '\0')
			return mcf_errinfo_set(ei, MCF_EINVAL,
			    "--tls-ca: required with the other --tls-* flags");
		if (mcf_proto_tls_check(&tls, false, ei) != MCF_OK)
			return MCF_EINVAL;
	}
	return MCF_OK;
}

/* ---- create / destroy ----------------------------------------------------
 */

int
mcf_fleet_create(const mcf_fleet_config *cfg, mcf_fleet **out, mcf_errinfo *ei)
{
	int rc = mcf_fleet_config_check(cfg, ei);
	if (rc != MCF_OK)
		return rc;
	mcf_fleet *f = mcf_calloc(1, sizeof(*f));
	f->wake[0] = f->wake[1] = -1;
	pthread_mutex_init(&f->mtx, NULL);
	pthread_mutex_init(&f->evmtx, NULL);
	f->namespace   = mcf_strdup(cfg->namespace);
	f->coord_lease = mcf_strdup(cfg->coordinator_lease);
	f->name        = mcf_strdup(cfg->name);
	f->incarnation = mcf_strdup(cfg->incarnation);
	f->user_agent  = mcf_strdup(cfg->user_agent);
	f->status_url  = mcf_strdup(cfg->status_url ? cfg->status_url : "");
	f->tls_ca          = cfg->tls_ca ? mcf_strdup(cfg->tls_ca) : NULL;
	f->tls_cert        = cfg->tls_cert ? mcf_strdup(cfg->tls_cert) : NULL;
	f->tls_key         = cfg->tls_key ? mcf_strdup(cfg->tls_key) : NULL;
	f->tls_server_name = cfg->tls_server_name
	    ? mcf_strdup(cfg->tls_server_name)
	    : NULL;
	f->lease_name
	    = mcf_asprintf("%s%s", MCF_FLEET_LEASE_PREFIX, cfg->name);
	f->weight           = cfg->weight;
	f->heartbeat_ms     = cfg->heartbeat_ms;
	f->hb_ms            = cfg->heartbeat_ms;
	f->lease_ms         = cfg->lease_duration_ms;
	f->drain_timeout_ms = cfg->drain_timeout_ms;
	f->lease_poll_ms    = cfg->lease_poll_ms > 0 ? cfg->lease_poll_ms
	                                             : MCF_FLEET_LEASE_POLL_MS;
	f->max_frame        = cfg->max_frame;
	f->term_fd          = cfg->term_fd;
	f->notify           = (mcf_session_notify) { pipe_event, f };
	if (mcf_kubeconfig_dup(cfg->kc, NULL, &f->kc) != MCF_OK
	    || mcf_kubeconfig_dup(cfg->project_kc ? cfg->project_kc : cfg->kc,
	           NULL, &f->project_kc)
	        != MCF_OK) {
		rc = mcf_errinfo_set(ei, MCF_EINVAL, "copying the kubeconfig");
		goto fail;
	}
	if (pipe2(f->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
		rc = mcf_errinfo_set(
		    ei, MCF_ESYS, "pipe: %s", strerror(errno));
		goto fail;
	}

	mcf_proto_keys_opts ko;
	mcf_proto_keys_opts_init(&ko);
	ko.path          = cfg->key_file;
	ko.previous_path = cfg->key_file_previous;
	if ((rc = mcf_proto_keys_create(&f->keys, &ko, ei)) != MCF_OK) {
		if (ei != NULL) {
			char msg[sizeof(ei->msg)];
			snprintf(msg, sizeof(msg), "%s", ei->msg);
			mcf_errinfo_set(ei, rc, "--key-file: %.480s", msg);
		}
		goto fail;
	}
	if ((rc = mcf_proto_replay_create(&f->replay, 0)) != MCF_OK
	    || (rc = mcf_proto_reject_stats_create(&f->stats)) != MCF_OK) {
		mcf_errinfo_set(ei, rc, "protocol state");
		goto fail;
	}

	mcf_ctrl_mgr_config mc = {
		.defs            = cfg->defs,
		.n_defs          = cfg->n_defs,
		.user_agent      = cfg->user_agent,
		.identity        = cfg->name,
		.namespace       = NULL,
		.resync_ms       = cfg->resync_ms,
		.watch_timeout_s = cfg->watch_timeout_s,
	};
	if ((rc = mcf_ctrl_mgr_create(&mc, &f->mgr, ei)) != MCF_OK)
		goto fail;

	mcf_shard_ops ops = {
		.engage    = op_engage,
		.disengage = op_disengage,
		.status    = op_status,
		.wall_ms   = op_wall,
		.mono_ms   = op_mono,
		.synced    = op_synced,
		.arg       = f,
	};
	if ((rc = mcf_shard_create(&ops, &f->shard)) != MCF_OK) {
		mcf_errinfo_set(ei, rc, "shard");
		goto fail;
	}
	mcf_leaderwatch_create(&f->lw);

	char weight[16];
	snprintf(weight, sizeof(weight), "%u", (unsigned) cfg->weight);
	char *identity = mcf_asprintf("%s/%s", cfg->name, cfg->incarnation);
	const char   *ann[] = { MCF_FLEET_WEIGHT_ANNOTATION, weight,
		  MCF_FLEET_INCARNATION_ANNOTATION, cfg->incarnation,
		  MCF_FLEET_STATUS_ANNOTATION, f->status_url,
		  MCF_FLEET_ENGAGED_ANNOTATION, "0", NULL };
	mcf_le_config lc    = {
		   .namespace          = cfg->namespace,
		   .name               = f->lease_name,
		   .identity           = identity,
		   .lease_duration_ms  = cfg->lease_duration_ms,
		   .renew_deadline_ms  = cfg->renew_deadline_ms,
		   .retry_period_ms    = cfg->renew_period_ms,
		   .on_started_leading = le_started,
		   .on_stopped_leading = le_stopped,
		   .arg                = f,
		   .annotations        = ann,
	};
	rc = mcf_le_create(&lc, &f->le, ei);
	free(identity);
	if (rc != MCF_OK)
		goto fail;
	metrics_init(f);
	publish(f);
	*out = f;
	return MCF_OK;
fail:
	mcf_fleet_destroy(f);
	return rc;
}

void
mcf_fleet_destroy(mcf_fleet *f)
{
	if (f == NULL)
		return;
	if (f->collectors) {
		mcf_metrics_remove_collector(
		    mcf_metrics_default(), collect, f);
		mcf_metrics_remove_collector(mcf_metrics_default(),
		    mcf_proto_reject_stats_collect, f->stats);
	}
	mcf_session_destroy(f->sess);
	f->sess = NULL;
	mcf_le_destroy(f->le);
	/* The manager disengages what is left. */
	mcf_ctrl_mgr_destroy(f->mgr);
	mcf_shard_destroy(f->shard);
	mcf_leaderwatch_destroy(f->lw);
	mcf_kc_destroy(f->lease_kc);
	mcf_proto_reject_stats_destroy(f->stats);
	mcf_proto_replay_destroy(f->replay);
	mcf_proto_keys_destroy(f->keys);
	mcf_kubeconfig_destroy(f->kc);
	mcf_kubeconfig_destroy(f->project_kc);
	if (f->wake[0] >= 0) {
		close(f->wake[0]);
		close(f->wake[1]);
	}
	pthread_mutex_destroy(&f->mtx);
	pthread_mutex_destroy(&f->evmtx);
	free(f->namespace);
	free(f->coord_lease);
	free(f->name);
	free(f->incarnation);
	free(f->user_agent);
	free(f->status_url);
	free(f->lease_name);
	free(f->tls_ca);
	free(f->tls_cert);
	free(f->tls_key);
	free(f->tls_server_name);
	free(f);
}

/* ---- sending -------------------------------------------------------------
 */

static void
send_msg(mcf_fleet *f, const mcf_proto_msg *m)
{
	if (f->sess == NULL)
		return;
	mcf_errinfo ei = { 0 };
	int         rc = mcf_session_send(f->sess, m, &ei);
	if (rc == MCF_OK)
		return;
	mcf_metrics_counter_inc(f->m_dropped);
	if (rc == MCF_EAGAIN)
		mcf_log_debug(LOG_ID, "%s", ei.msg);
	else
		mcf_log_warn(LOG_ID, "cannot send %s: %s",
		    mcf_proto_msg_type_name(m->type), ei.msg);
}

static void
send_hello(mcf_fleet *f)
{
	mcf_proto_msg m;
	mcf_proto_msg_init(&m, MCF_PROTO_MSG_HELLO);
	mcf_proto_hello *h = &m.u.hello;
	h->major           = MCF_PROTO_MAJOR;
	h->minor           = MCF_PROTO_MINOR;
	h->name            = f->name;
	h->incarnation     = f->incarnation;
	h->weight          = f->weight;
	h->term            = *mcf_shard_term_seen(f->shard);
	mcf_shard_applied(f->shard, NULL, &h->applied);
	h->status_url = f->status_url;
	h->lease      = f->lease_name;
	send_msg(f, &m);
}

static bool
term_eq(const mcf_proto_term *a, const mcf_proto_term *b)
{
	return strcmp(a->uid, b->uid) == 0 && a->transitions == b->transitions;
}

/* An ACK.  `pre`: the report right after WELCOME, before any snapshot of
 * the session (docs/fleet.md, "Reports and the first snapshot"): full, in
 * the WELCOME's term, applied = the version last applied whatever its
 * term. */
static void
send_ack(mcf_fleet *f, bool full, bool pre)
{
	mcf_proto_msg m;
	mcf_proto_msg_init(&m, MCF_PROTO_MSG_ACK);
	mcf_proto_ack *a = &m.u.ack;
	mcf_proto_term term;
	uint64_t       applied;
	mcf_shard_applied(f->shard, &term, &applied);
	if (pre) {
		a->term    = f->sess_term;
		a->applied = applied;
		full       = true;
	} else {
		if (!mcf_proto_term_is_set(&term))
			return;
		a->term    = term;
		a->applied = applied;
	}
	a->full = full;
	mcf_shard_reports(f->shard, full, &a->projects, &a->nprojects);
	send_msg(f, &m);
	mcf_shard_reports_free(a->projects, a->nprojects);
}

static void
send_stopped(mcf_fleet *f)
{
	const mcf_proto_term *term = mcf_shard_term_seen(f->shard);
	if (f->st != S_READY || !mcf_proto_term_is_set(term))
		return;
	char **names = NULL;
	size_t n     = 0;
	mcf_shard_stopped_due(f->shard, &names, &n);
	if (n > 0) {
		mcf_proto_msg m;
		mcf_proto_msg_init(&m, MCF_PROTO_MSG_STOPPED);
		m.u.stopped.term      = *term;
		m.u.stopped.projects  = names;
		m.u.stopped.nprojects = n;
		send_msg(f, &m);
	}
	mcf_shard_names_free(names);
}

static void
send_leaving(mcf_fleet *f, int64_t now)
{
	mcf_proto_msg m;
	mcf_proto_msg_init(&m, MCF_PROTO_MSG_LEAVING);
	int64_t left            = f->drain_deadline_ms - now;
	m.u.leaving.deadline_ms = left > 0 ? (uint64_t) left : 0;
	m.u.leaving.reason      = "SIGTERM";
	send_msg(f, &m);
}

static void
send_heartbeat(mcf_fleet *f)
{
	mcf_proto_msg m;
	mcf_proto_msg_init(&m, MCF_PROTO_MSG_HEARTBEAT);
	m.u.heartbeat.time_ms = wall_ms();
	m.u.heartbeat.seq     = ++f->hb_seq;
	m.u.heartbeat.term    = *mcf_shard_term_seen(f->shard);
	mcf_shard_applied(f->shard, NULL, &m.u.heartbeat.applied);
	send_msg(f, &m);
}

static void
send_resync(mcf_fleet *f, const char *why, int64_t now)
{
	mcf_proto_msg m;
	mcf_proto_msg_init(&m, MCF_PROTO_MSG_RESYNC_REQUEST);
	m.u.resync.term = *mcf_shard_term_seen(f->shard);
	mcf_shard_applied(f->shard, NULL, &m.u.resync.applied);
	m.u.resync.reason = (char *) why;
	send_msg(f, &m);
	f->resync_sent_ms = now;
	mcf_metrics_counter_inc(f->m_resyncs);
}

/* ---- the coordinator Lease and the session -------------------------------
 */

static void
read_lease(mcf_fleet *f, int64_t now)
{
	mcf_kc_ref ref = { "coordination.k8s.io", "v1", "leases", f->namespace,
		f->coord_lease };
	json_t    *lease = NULL;
	mcf_kc_status st;
	int           rc = mcf_kc_get(f->lease_kc, &ref, &lease, &st);
	now              = mono_ms();
	bool changed     = mcf_leaderwatch_observe(f->lw, rc, lease, now);
	json_decref(lease);
	f->next_lease_ms = now + f->lease_poll_ms;
	if (rc != MCF_OK && rc != MCF_ENOENT) {
		if (f->lease_err_logged != rc)
			mcf_log_warn(LOG_ID, "reading Lease %s/%s: %s: %s",
			    f->namespace, f->coord_lease, mcf_err_name(rc),
			    st.message);
		f->lease_err_logged = rc;
		return;
	}
	f->lease_err_logged = 0;
	if (changed) {
		mcf_leaderwatch_view v;
		mcf_leaderwatch_view_get(f->lw, now, &v);
		if (!v.exists)
			mcf_log_info(LOG_ID, "coordinator Lease %s/%s: absent",
			    f->namespace, f->coord_lease);
		else
			mcf_log_info(LOG_ID,
			    "coordinator Lease %s/%s: holder \"%s\", address "
			    "\"%s\", uid %s, transitions %lld",
			    f->namespace, f->coord_lease, v.holder, v.address,
			    v.uid, (long long) v.transitions);
	}
}

/* Hangs up the current session.  `failed`: it never became useful
 * (refused, not the leader, no WELCOME), so the next dial to the same
 * target backs off. */
static void hang_up(mcf_fleet *f, bool failed, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
hang_up(mcf_fleet *f, bool failed, const char *fmt, ...)
{
	if (f->sess == NULL)
		return;
	char    why[300];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	mcf_log_info(
	    LOG_ID, "hanging up on %s: %s", mcf_session_url(f->sess), why);
	int64_t now = mono_ms();
	if (failed) {
		f->backoff_ms
		    = f->backoff_ms ? 2 * f->backoff_ms : BACKOFF_MIN_MS;
		if (f->backoff_ms > BACKOFF_MAX_MS)
			f->backoff_ms = BACKOFF_MAX_MS;
		snprintf(f->failed_target, sizeof(f->failed_target), "%s|%s",
		    f->sess_holder, f->sess_addr);
	} else {
		f->backoff_ms       = 0;
		f->failed_target[0] = '\0';
	}
	f->next_dial_ms = now + f->backoff_ms;
	mcf_session_destroy(f->sess);
	f->sess           = NULL;
	f->st             = S_IDLE;
	f->coordinator[0] = '\0';
	/* Who leads now?  Ask at once. */
	f->next_lease_ms = now;
	publish(f);
}

static void
dial(mcf_fleet *f, const mcf_leaderwatch_view *v, int64_t now)
{
	mcf_proto_tls_opts tls = {
		.cert_file   = f->tls_cert,
		.key_file    = f->tls_key,
		.ca_file     = f->tls_ca,
		.server_name = f->tls_server_name,
	};
	mcf_session_opts o = {
		.tls       = &tls,
		.url       = v->address,
		.keys      = f->keys,
		.replay    = f->replay,
		.stats     = f->stats,
		.max_frame = f->max_frame,
		.notify    = &f->notify,
	};
	mcf_errinfo ei = { 0 };
	snprintf(f->sess_holder, sizeof(f->sess_holder), "%s", v->holder);
	snprintf(f->sess_addr, sizeof(f->sess_addr), "%s", v->address);
	if (f->dialed_once)
		mcf_metrics_counter_inc(f->m_reconnects);
	f->dialed_once = true;
	int rc         = mcf_session_create(&f->sess, &o, &ei);
	if (rc != MCF_OK) {
		mcf_log_error(LOG_ID, "coordinator %s at %s: %s", v->holder,
		    v->address, ei.msg);
		f->backoff_ms = BACKOFF_MAX_MS;
		snprintf(f->failed_target, sizeof(f->failed_target), "%s|%s",
		    v->holder, v->address);
		f->next_dial_ms = now + f->backoff_ms;
		return;
	}
	mcf_log_info(
	    LOG_ID, "dialing coordinator %s at %s", v->holder, v->address);
	f->st            = S_DIALING;
	f->sess_start_ms = now;
	f->last_rx_ms    = now;
	f->suspect_read  = false;
	memset(&f->sess_term, 0, sizeof(f->sess_term));
	f->hb_ms = f->heartbeat_ms;
	publish(f);
}

/* Dials, redials or hangs up after a Lease read. */
static void
follow_lease(mcf_fleet *f, int64_t now)
{
	mcf_leaderwatch_view v;
	mcf_leaderwatch_view_get(f->lw, now, &v);
	if (f->sess != NULL && v.read && v.last_err == MCF_OK
	    && (strcmp(v.holder, f->sess_holder) != 0
	        || strcmp(v.address, f->sess_addr) != 0))
		hang_up(f, false,
		    "coordinator Lease now names \"%s\" at \"%s\"", v.holder,
		    v.address);
	if (f->sess != NULL || !v.valid || v.address[0] == '\0')
		return;
	char target[800];
	snprintf(target, sizeof(target), "%s|%s", v.holder, v.address);
	if (strcmp(target, f->failed_target) != 0) {
		/* A new target: no backoff. */
		f->backoff_ms       = 0;
		f->next_dial_ms     = 0;
		f->failed_target[0] = '\0';
	}
	if (now >= f->next_dial_ms)
		dial(f, &v, now);
}

/* ---- receiving -----------------------------------------------------------
 */

static void    follow_own_lease(mcf_fleet *f);
static int64_t lapse_due(const mcf_fleet *f);

/* The fencing rule for a coordinator message carrying `got`. */
static bool
check_term(mcf_fleet *f, const mcf_proto_term *got, const char *what)
{
	const mcf_proto_term *seen = mcf_shard_term_seen(f->shard);
	bool                  gone = false;
	if (mcf_shard_term_order(f->shard, got)
	    == MCF_PROTO_TERM_OTHER_LEASE) {
		gone = mcf_leaderwatch_gone(f->lw, seen->uid);
		if (!gone) {
			/* Our observation may be a second old: look again. */
			read_lease(f, mono_ms());
			gone = mcf_leaderwatch_gone(f->lw, seen->uid);
		}
	}
	if (mcf_shard_term_accept(f->shard, got, gone))
		return true;
	if (strcmp(got->uid, seen->uid) == 0)
		mcf_proto_conn_reject(mcf_session_conn(f->sess),
		    MCF_PROTO_REJECT_LOWER_TERM, NULL,
		    "%s term %s/%lld below %lld", what, got->uid,
		    (long long) got->transitions,
		    (long long) seen->transitions);
	else
		mcf_proto_conn_reject(mcf_session_conn(f->sess),
		    MCF_PROTO_REJECT_LOWER_TERM, NULL,
		    "%s term %s/%lld: the Lease of %s is not gone", what,
		    got->uid, (long long) got->transitions, seen->uid);
	return false;
}

static void
on_welcome(mcf_fleet *f, const mcf_proto_welcome *w, int64_t now)
{
	if (f->st != S_HELLO) {
		mcf_log_debug(LOG_ID, "WELCOME out of turn: dropped");
		return;
	}
	if (!check_term(f, &w->term, "WELCOME")) {
		hang_up(f, true, "WELCOME from a lower term");
		return;
	}
	f->st        = S_READY;
	f->sess_term = w->term;
	f->hb_ms     = w->heartbeat_ms;
	if (f->hb_ms < 50)
		f->hb_ms = 50;
	if (f->hb_ms > 60000)
		f->hb_ms = 60000;
	f->next_hb_ms       = now + f->hb_ms;
	f->backoff_ms       = 0;
	f->failed_target[0] = '\0';
	snprintf(f->coordinator, sizeof(f->coordinator), "%s", w->leader);
	mcf_log_info(LOG_ID,
	    "joined coordinator %s (term %s/%lld, protocol %u.%u, heartbeat "
	    "%lld ms)",
	    w->leader, w->term.uid, (long long) w->term.transitions, w->major,
	    w->minor, (long long) f->hb_ms);
	/* Tell the (possibly new) leader what runs here before it sends a
	 * table: a snapshot omitting a running project stops it. */
	send_ack(f, true, true);
	if (f->draining)
		send_leaving(f, now);
	publish(f);
}

static void
on_snapshot(mcf_fleet *f, const mcf_proto_snapshot *s)
{
	if (!check_term(f, &s->term, "ASSIGN_SNAPSHOT"))
		return;
	f->sess_term = s->term;
	mcf_shard_apply_snapshot(f->shard, s);
	f->next_poll_ms = 0; /* report the new table's states soon */
	mcf_log_info(LOG_ID,
	    "applied snapshot %llu of term %s/%lld: %zu "
	    "project(s)",
	    (unsigned long long) s->version, s->term.uid,
	    (long long) s->term.transitions, mcf_shard_count(f->shard));
	send_stopped(f);
	send_ack(f, true, false);
	int64_t now = mono_ms();
	if (f->lapsed && f->held && now >= lapse_due(f)) {
		f->lapsed = false;
		mcf_log_info(LOG_ID,
		    "snapshot after the lapse of the own Lease: "
		    "reconciling its projects");
		follow_own_lease(f);
	}
	publish(f);
}

static void
on_delta(mcf_fleet *f, const mcf_proto_delta *d, int64_t now)
{
	if (!check_term(f, &d->term, "ASSIGN_DELTA"))
		return;
	f->sess_term  = d->term;
	char why[200] = "";
	switch (mcf_shard_apply_delta(f->shard, d, why, sizeof(why))) {
	case MCF_SHARD_APPLIED:
		mcf_log_debug(LOG_ID, "applied delta %llu: +%zu -%zu",
		    (unsigned long long) d->version, d->nengage,
		    d->ndisengage);
		send_stopped(f);
		send_ack(f, false, false);
		if (d->nengage > 0 &&
		    f->next_poll_ms > now + MCF_FLEET_ENGAGING_POLL_MS)
			f->next_poll_ms = now + MCF_FLEET_ENGAGING_POLL_MS;
		break;
	case MCF_SHARD_GAP:
		mcf_log_info(LOG_ID, "resync: %s", why);
		send_resync(f, why, now);
		break;
	case MCF_SHARD_IGNORED:
		break;
	}
	publish(f);
}

static void
on_message(mcf_fleet *f, const mcf_proto_msg *m, int64_t now)
{
	switch (m->type) {
	case MCF_PROTO_MSG_VERSION_REJECT:
		mcf_log_error(LOG_ID, "coordinator refused protocol %d.%d: %s",
		    MCF_PROTO_MAJOR, MCF_PROTO_MINOR,
		    m->u.version_reject.message);
		hang_up(f, true, "VERSION_REJECT");
		return;
	case MCF_PROTO_MSG_NOT_LEADER:
		hang_up(f, true, "not the leader (leader \"%s\" at \"%s\")",
		    m->u.not_leader.leader, m->u.not_leader.address);
		return;
	case MCF_PROTO_MSG_WELCOME:
		f->last_rx_ms = now;
		on_welcome(f, &m->u.welcome, now);
		return;
	default:
		break;
	}
	if (f->st != S_READY) {
		mcf_log_debug(LOG_ID, "%s before WELCOME: dropped",
		    mcf_proto_msg_type_name(m->type));
		return;
	}
	switch (m->type) {
	case MCF_PROTO_MSG_ASSIGN_SNAPSHOT:
		on_snapshot(f, &m->u.snapshot);
		break;
	case MCF_PROTO_MSG_ASSIGN_DELTA:
		on_delta(f, &m->u.delta, now);
		break;
	case MCF_PROTO_MSG_HEARTBEAT:
		if (!check_term(f, &m->u.heartbeat.term, "HEARTBEAT"))
			return;
		break;
	default:
		return;
	}
	/* Only frames that passed the fencing rule prove the leader alive. */
	f->last_rx_ms   = now;
	f->suspect_read = false;
}

static void
receive(mcf_fleet *f)
{
	for (int i = 0; i < 1000 && f->sess != NULL; i++) {
		mcf_proto_msg *m  = NULL;
		int            rc = mcf_session_recv(f->sess, &m, NULL);
		if (rc == MCF_EAGAIN || rc == MCF_ECLOSED)
			return;
		if (rc != MCF_OK)
			continue; /* rejected: logged and counted */
		on_message(f, m, mono_ms());
		mcf_proto_msg_destroy(m);
	}
}

static void
pipe_events(mcf_fleet *f)
{
	pipe_ev ev[PIPE_EV_MAX];
	pthread_mutex_lock(&f->evmtx);
	size_t n    = f->nev;
	bool   lost = f->evlost;
	memcpy(ev, f->ev, n * sizeof(ev[0]));
	f->nev    = 0;
	f->evlost = false;
	pthread_mutex_unlock(&f->evmtx);
	if (lost)
		mcf_log_warn(
		    LOG_ID, "pipe events lost: hanging up to be safe");
	for (size_t i = 0; i < n && f->sess != NULL; i++) {
		if (ev[i].sock != mcf_session_id(f->sess))
			continue; /* an earlier session's */
		if (ev[i].added && f->st == S_DIALING) {
			f->st            = S_HELLO;
			f->sess_start_ms = mono_ms();
			send_hello(f);
			publish(f);
		} else if (!ev[i].added) {
			hang_up(f, f->st != S_READY, "connection lost");
		}
	}
	if (lost)
		hang_up(f, false, "pipe events lost");
}

/* ---- timers --------------------------------------------------------------
 */

/* When a lapsed worker may take a snapshot as its go-ahead. */
static int64_t
lapse_due(const mcf_fleet *f)
{
	int64_t d = f->lapse_ms + f->lease_ms * 12 / 10;
	return d > f->held_since_ms ? d : f->held_since_ms;
}

static void
follow_own_lease(mcf_fleet *f)
{
	bool    held = mcf_le_is_leader(f->le);
	int64_t now  = mono_ms();
	if (held && !f->held)
		f->held_since_ms = now;
	if (!held && (f->held || f->unheld_since_ms == 0))
		f->unheld_since_ms = now;
	/* The elector logs failed writes at debug level only: say it. */
	if (!held && now - f->unheld_since_ms > 10000
	    && now - f->unheld_warn_ms > 30000) {
		f->unheld_warn_ms = now;
		mcf_log_warn(LOG_ID,
		    "own Lease %s/%s not held for %lld s: is it held by "
		    "another process of this name, or can it not be written "
		    "(namespace missing, RBAC)?",
		    f->namespace, f->lease_name,
		    (long long) ((now - f->unheld_since_ms) / 1000));
	}
	if (!held && f->held) {
		/* A lapse: the leader may declare us gone from now on. */
		f->lapsed          = true;
		f->lapse_ms        = now;
		f->lapse_resync_ms = 0;
	}
	f->held = held;
	atomic_store(&f->lease_held, held);
	mcf_metrics_gauge_set(f->m_held, held ? 1 : 0);
	if (held && !f->running && !f->lapsed) {
		mcf_ctrl_mgr_resume(f->mgr);
		f->running = true;
		atomic_store(&f->reconciling, true);
		mcf_log_info("WORKER-RESUMED",
		    "own Lease %s/%s held: reconciling", f->namespace,
		    f->lease_name);
	} else if (!held && f->running) {
		mcf_ctrl_mgr_pause(f->mgr);
		f->running = false;
		atomic_store(&f->reconciling, false);
		mcf_log_warn("WORKER-PAUSED",
		    "own Lease %s/%s not held: reconcilers paused, caches "
		    "kept; "
		    "they resume with the next snapshot once it is held again",
		    f->namespace, f->lease_name);
	}
	/* Held again after a lapse: ask for the snapshot that says which
	 * projects are still ours (again if it does not come). */
	if (held && f->lapsed && f->st == S_READY && now >= lapse_due(f)
	    && (f->lapse_resync_ms == 0
	        || now - f->lapse_resync_ms > HANGUP_INTERVALS * f->hb_ms)) {
		mcf_log_info(LOG_ID,
		    "own Lease held again after a lapse: "
		    "asking the leader for a snapshot");
		send_resync(f, "own Lease lapsed", now);
		f->lapse_resync_ms = now;
	}
}

static void
timers(mcf_fleet *f, int64_t now)
{
	if (now >= f->next_lease_ms) {
		read_lease(f, now);
		now = mono_ms();
		follow_lease(f, now);
	} else if (f->sess == NULL) {
		follow_lease(f, now); /* a backoff may have ended */
	}

	if (f->sess != NULL) {
		int64_t silent = now - f->last_rx_ms;
		if (f->st != S_READY) {
			if (now - f->sess_start_ms
			    > HANGUP_INTERVALS * f->heartbeat_ms)
				hang_up(f, true, "no WELCOME within %lld ms",
				    (long long) (now - f->sess_start_ms));
		} else if (silent > HANGUP_INTERVALS * f->hb_ms) {
			hang_up(f, false, "coordinator silent for %lld ms",
			    (long long) silent);
		} else if (silent > SUSPECT_INTERVALS * f->hb_ms
		    && !f->suspect_read) {
			f->suspect_read = true;
			mcf_log_info(LOG_ID,
			    "coordinator silent for %lld ms: reading its "
			    "Lease",
			    (long long) silent);
			read_lease(f, now);
			follow_lease(f, mono_ms());
		}
	}

	if (f->st == S_READY && now >= f->next_hb_ms) {
		send_heartbeat(f);
		send_stopped(f); /* STOPPED repeats with the heartbeat */
		f->next_hb_ms = now + f->hb_ms;
	}

	if (now >= f->next_poll_ms) {
		bool   changes = mcf_shard_poll(f->shard);
		size_t engaging, synced, failing;
		mcf_shard_state_counts(f->shard, &engaging, &synced, &failing);
		f->next_poll_ms = now + (engaging > 0 ? MCF_FLEET_ENGAGING_POLL_MS
		                                      : MCF_FLEET_STATE_POLL_MS);
		mcf_proto_term term;
		mcf_shard_applied(f->shard, &term, NULL);
		/* Partial reports only within the session's own table; the
		 * full ACK after its snapshot covers earlier changes. */
		if (changes && f->st == S_READY
		    && term_eq(&term, &f->sess_term))
			send_ack(f, false, false);
		if (f->st == S_READY && mcf_shard_resync_pending(f->shard)
		    && now - f->resync_sent_ms > HANGUP_INTERVALS * f->hb_ms)
			send_resync(
			    f, "no snapshot after a resync request", now);
		publish(f);
	}
}

static int64_t
next_timeout(const mcf_fleet *f, int64_t now)
{
	int64_t t = f->next_poll_ms;
	if (f->next_lease_ms < t)
		t = f->next_lease_ms;
	if (f->st == S_READY && f->next_hb_ms < t)
		t = f->next_hb_ms;
	if (f->sess == NULL && f->next_dial_ms > now && f->next_dial_ms < t)
		t = f->next_dial_ms;
	if (f->draining && f->drain_deadline_ms < t)
		t = f->drain_deadline_ms;
	t -= now;
	return t < 0 ? 0 : t;
}

/* ---- draining ------------------------------------------------------------
 */

static void
begin_drain(mcf_fleet *f, int64_t now)
{
	if (f->draining) {
		mcf_log_warn(LOG_ID, "second signal: ending the drain now");
		f->end_now = true;
		return;
	}
	f->draining          = true;
	f->drain_deadline_ms = now + f->drain_timeout_ms;
	mcf_log_info(LOG_ID,
	    "SIGTERM: leaving; waiting up to %lld ms for the coordinator to "
	    "move %zu project(s) away",
	    (long long) f->drain_timeout_ms, mcf_shard_count(f->shard));
	if (f->st == S_READY)
		send_leaving(f, now);
	publish(f);
}

static bool
drained(mcf_fleet *f, int64_t now)
{
	if (f->end_now)
		return true;
	if (mcf_shard_count(f->shard) == 0
	    && (f->st != S_READY || !mcf_shard_stopped_owed(f->shard))) {
		mcf_log_info(LOG_ID, "drained: every project was moved away");
		return true;
	}
	if (now >= f->drain_deadline_ms) {
		mcf_log_warn(LOG_ID,
		    "drain timeout: %zu project(s) still here",
		    mcf_shard_count(f->shard));
		return true;
	}
	return false;
}

static void
finish(mcf_fleet *f)
{
	size_t n = mcf_shard_count(f->shard);
	if (n > 0) {
		mcf_log_info(
		    LOG_ID, "disengaging %zu remaining project(s)", n);
		mcf_shard_clear(f->shard);
		send_stopped(f);
	}
	/* Single writer: every write of ours ends before the Lease goes. */
	mcf_ctrl_mgr_pause(f->mgr);
	f->running = false;
	atomic_store(&f->reconciling, false);
	if (f->st == S_READY) {
		/* Give the last frames a moment on the wire. */
		struct timespec ts = { 0, 100 * 1000000L };
		nanosleep(&ts, NULL);
	}
	mcf_le_stop(f->le, true);
	atomic_store(&f->lease_held, false);
	mcf_metrics_gauge_set(f->m_held, 0);
	mcf_session_destroy(f->sess);
	f->sess = NULL;
	f->st   = S_IDLE;
	publish(f);
}

/* ---- the loop ------------------------------------------------------------
 */

int
mcf_fleet_run(mcf_fleet *f)
{
	mcf_errinfo ei = { 0 };
	mcf_kc_opts ko = { 0 };
	/* Reads of the coordinator Lease run on this thread: keep each
	 * short, the loop also has heartbeats to send and a Lease of its
	 * own to follow. */
	ko.timeout_ms   = 500;
	ko.max_attempts = 2;
	if (mcf_kc_create(f->kc, f->user_agent, &ko, &f->lease_kc, &ei)
	    != MCF_OK) {
		mcf_log_error(LOG_ID, "core API client: %s", ei.msg);
		return 1;
	}
	if (mcf_le_start(f->le, f->kc, f->user_agent, &ei) != MCF_OK) {
		mcf_log_error(LOG_ID, "own Lease: %s", ei.msg);
		return 1;
	}
	mcf_log_info(LOG_ID,
	    "fleet worker %s (incarnation %s, weight %u): own Lease %s/%s, "
	    "coordinator Lease %s/%s",
	    f->name, f->incarnation, (unsigned) f->weight, f->namespace,
	    f->lease_name, f->namespace, f->coord_lease);

	int64_t now      = mono_ms();
	f->next_lease_ms = now;
	f->next_poll_ms  = now;
	for (;;) {
		now = mono_ms();
		atomic_store(&f->loop_ms, now);
		struct pollfd pfd[3] = {
			{ .fd = f->term_fd, .events = POLLIN },
			{ .fd = f->wake[0], .events = POLLIN },
			{ .fd = -1, .events = POLLIN },
		};
		if (f->sess != NULL)
			pfd[2].fd = mcf_session_fd(f->sess);
		int timeout = (int) next_timeout(f, now);
		if (poll(pfd, 3, timeout) < 0 && errno != EINTR) {
			mcf_log_error(LOG_ID, "poll: %s", strerror(errno));
			break;
		}
		char    buf[64];
		ssize_t r;
		if (pfd[0].revents & (POLLIN | POLLHUP)) {
			while ((r = read(f->term_fd, buf, sizeof(buf))) > 0)
				for (ssize_t i = 0; i < r; i++)
					begin_drain(f, mono_ms());
		}
		if (pfd[1].revents & POLLIN)
			while (read(f->wake[0], buf, sizeof(buf)) > 0)
				;
		follow_own_lease(f);
		pipe_events(f);
		receive(f);
		now = mono_ms();
		timers(f, now);
		publish_engaged(f, 0);
		if (f->draining && drained(f, mono_ms()))
			break;
	}
	finish(f);
	mcf_log_info(LOG_ID, "left the fleet");
	return 0;
}

/* ---- status endpoints (status server thread) -----------------------------
 */

static int
h_healthz(const mcf_httpserver_req *req, mcf_httpserver_resp *resp, void *arg)
{
	(void) req;
	mcf_fleet *f    = arg;
	long long  last = atomic_load(&f->loop_ms);
	int64_t    age  = last > 0 ? mono_ms() - last : 0;
	if (age > STUCK_MS) {
		mcf_httpserver_resp_status(resp, 503);
		mcf_httpserver_resp_printf(
		    resp, "control loop stuck for %lld ms\n", (long long) age);
		return 0;
	}
	mcf_httpserver_resp_printf(resp, "ok\n");
	return 0;
}

/* Ready = holding the own Lease (the worker reconciles only then). */
static int
h_readyz(const mcf_httpserver_req *req, mcf_httpserver_resp *resp, void *arg)
{
	(void) req;
	mcf_fleet *f = arg;
	if (atomic_load(&f->lease_held)) {
		mcf_httpserver_resp_printf(resp, "ok\n");
	} else {
		mcf_httpserver_resp_status(resp, 503);
		mcf_httpserver_resp_printf(resp, "own Lease %s/%s not held\n",
		    f->namespace, f->lease_name);
	}
	return 0;
}

static json_t *
term_json(const mcf_proto_term *t)
{
	if (!mcf_proto_term_is_set(t))
		return json_null();
	return json_pack("{s:s,s:I}", "uid", t->uid, "transitions",
	    (json_int_t) t->transitions);
}

static json_t *
str_or_null(const char *s)
{
	return s[0] ? json_string(s) : json_null();
}

static int
h_status(const mcf_httpserver_req *req, mcf_httpserver_resp *resp, void *arg)
{
	(void) req;
	mcf_fleet *f = arg;
	published  p;
	pthread_mutex_lock(&f->mtx);
	p = f->pub;
	pthread_mutex_unlock(&f->mtx);
	mcf_ctrl_stats st;
	mcf_ctrl_mgr_stats(f->mgr, &st);
	size_t e, s, fl;
	mcf_shard_state_counts(f->shard, &e, &s, &fl);
	json_t *projects = mcf_shard_status_json(f->shard);
	size_t  pi;
	json_t *pv;
	json_array_foreach(projects, pi, pv)
	{
		const char *pn = json_string_value(json_object_get(pv, "name"));
		json_t     *cs = pn ? mcf_ctrl_mgr_cluster_json(f->mgr, pn) : NULL;
		json_object_set_new(pv, "controllers", cs ? cs : json_array());
	}

	json_t *coord  = json_pack("{s:o,s:o,s:o,s:b,s:o,s:s,s:o}", "identity",
	     str_or_null(p.coordinator), "address", str_or_null(p.address),
	     "status_url", str_or_null(p.status_url), "lease_valid",
	     p.lease_valid, "lease_error",
            p.lease_err != MCF_OK && p.lease_err != MCF_ENOENT
	         ? json_string(mcf_err_name(p.lease_err))
	         : json_null(),
	     "session", sstate_names[p.st], "dialed", str_or_null(p.dialed));
	json_t *totals = json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}",
	    "projects", (json_int_t) (e + s + fl), "engaging", (json_int_t) e,
	    "synced", (json_int_t) s, "failing", (json_int_t) fl, "reconciles",
	    (json_int_t) st.reconciles, "errors",
	    (json_int_t) st.reconcile_errors, "queue_depth",
	    (json_int_t) st.queue_depth, "active", (json_int_t) st.active);
	json_t *counters = json_pack("{s:I,s:I,s:I,s:I}", "engages",
	    (json_int_t) mcf_metrics_series_value(f->m_engages), "disengages",
	    (json_int_t) mcf_metrics_series_value(f->m_disengages),
	    "reconnects",
	    (json_int_t) mcf_metrics_series_value(f->m_reconnects),
	    "resync_requests",
	    (json_int_t) mcf_metrics_series_value(f->m_resyncs));
	json_t *doc      = json_pack(
	         "{s:s,s:s,s:s,s:s,s:I,s:s,s:b,s:b,s:b,s:o,s:b,s:o,s:o,s:o,s:I,"
	              "s:b,s:b,s:o,s:o,s:o}",
	         "mode", "fleet", "name", f->name, "incarnation", f->incarnation,
	         "version", MCF_VERSION, "weight", (json_int_t) f->weight, "lease",
	         f->lease_name, "own_lease_held", atomic_load(&f->lease_held),
	         "reconciling", atomic_load(&f->reconciling), "awaiting_snapshot",
	         p.lapsed, "leader", str_or_null(p.holder), "connected",
	         p.st == S_READY, "coordinator", coord, "term", term_json(&p.term),
	         "applied_term", term_json(&p.applied_term), "applied_version",
	         (json_int_t) p.applied, "resync_pending", p.resync, "draining",
	         p.draining, "projects", projects, "totals", totals, "counters",
	         counters);
	char *text = json_dumps(doc, JSON_INDENT(2));
	json_decref(doc);
	if (text == NULL)
		return MCF_ENOMEM;
	mcf_httpserver_resp_content_type(resp, "application/json");
	mcf_httpserver_resp_body_steal(resp, text, strlen(text));
	return 0;
}

int
mcf_fleet_routes(mcf_fleet *f, mcf_httpserver *srv)
{
	int rc;
	if ((rc = mcf_httpserver_route(srv, "/healthz", h_healthz, f)) != 0
	    || (rc = mcf_httpserver_route(srv, "/readyz", h_readyz, f)) != 0
	    || (rc = mcf_httpserver_route(srv, "/metrics", mcf_metrics_serve, NULL)) != 0
	    || (rc = mcf_httpserver_route(srv, "/status", h_status, f)) != 0)
		return rc;
	return MCF_OK;
}

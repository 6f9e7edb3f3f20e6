/*
 * mcfleet-worker — runs the registered controllers.
 *
 * Modes:
 *   --standalone: one cluster (the --kubeconfig's), all namespaces unless
 *     --namespace narrows it, optionally under leader election
 *     (--leader-elect); multicluster-runtime's "single" provider.
 *   fleet mode (the default, the sharded fleet; docs/fleet.md): keeps a
 *     Lease of its own (mcfleet-worker-NAME in --namespace), finds the
 *     leading coordinator through the coordinator Lease, follows its
 *     assignment over NNG and runs the assigned projects (fleet.h).
 *
 * Threads (STYLE.md §7):
 *   main        parses flags, owns the controller manager, the elector and
 *               the status server.  In --standalone it waits on a
 *               self-pipe for signals and leader-election changes and
 *               pauses or resumes the reconcilers accordingly.  In fleet
 *               mode it is the control thread (mcf_fleet_run): it alone
 *               calls the controller manager (engage, disengage, pause,
 *               resume), reads the coordinator Lease (a GET every second
 *               with its own REST client), dials and talks to the
 *               coordinator (one NNG pair1 socket per dial session, polled
 *               through NNG_OPT_RECVFD; no aio), and sends heartbeats,
 *               ACKs and STOPPED.  All lifecycle calls happen here.
 *   informer    one thread (informer.h) drives every list and watch of
 *               every engaged project.
 *   reconcile   max_concurrency threads per controller (controller.h).
 *   elector     --leader-elect, or in fleet mode the worker's own Lease:
 *               renews the Lease (leaderelect.h); its callbacks only
 *               write one byte to a self-pipe.
 *   nng         NNG's own threads move frames; the only code of ours they
 *               run is the pipe notification (session.h), which records
 *               the event under a mutex and writes one byte to the
 *               fleet's self-pipe.
 *   status      the HTTP status server thread (httpserver.h): /healthz,
 *               /readyz, /metrics, /status; it reads the manager's
 *               thread-safe status calls and, in fleet mode, the snapshot
 *               the control thread publishes under a mutex.
 *
 * Stdout carries only the `listening on URL (status)` line; logs are JSON
 * lines on stderr.  SIGTERM/SIGINT: --standalone stops taking work, lets
 * running reconciles finish, releases the Lease, exits 0.  Fleet mode
 * says LEAVING, keeps reconciling until the coordinator has moved every
 * project away (or --drain-timeout passes; a second signal ends the wait),
 * disengages what remains, releases its Lease and exits 0.
 */
#include <curl/curl.h>
#include <nng/nng.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include <jansson.h>

#include "alloc.h"
#include "controller.h"
#include "fleet.h"
#include "flags.h"
#include "httpserver.h"
#include "kubeconfig.h"
#include "leaderelect.h"
#include "log.h"
#include "rand.h"
#include "session.h"
#include "metrics.h"
#include "myresource.h"

#define LOG_ID "worker"

/* The controllers this binary runs, registered at build time. */
static const mcf_ctrl_def *const controllers[] = {
	&mcf_myresource_controller,
};

/* The self-pipe: signal handlers and elector callbacks write one byte. */
static int wake_fd[2] = {-1, -1};

enum {
	WAKE_TERM = 'T',    /* SIGTERM or SIGINT */
	WAKE_LEADING = 'L', /* started leading */
	WAKE_STOPPED = 'S', /* stopped leading */
};

static void
wake(char c)
{
	ssize_t n = write(wake_fd[1], &c, 1);
	(void) n; /* a full pipe already holds a wake-up */
}

static void
on_signal(int sig)
{
	(void) sig;
	int saved = errno;
	wake(WAKE_TERM);
	errno = saved;
}

static void
le_started(void *arg, const mcf_le_fence *term)
{
	(void) arg;
	(void) term;
	wake(WAKE_LEADING);
}

static void
le_stopped(void *arg)
{
	(void) arg;
	wake(WAKE_STOPPED);
}

/* State the status handlers read; written by main. */
typedef struct worker {
	mcf_ctrl_mgr *mgr;
	mcf_le       *le;
	const char   *name;
	const char   *incarnation;
	const char   *mode;
	atomic_bool   running; /* reconcilers resumed */
} worker;

static int
h_healthz(const mcf_httpserver_req *req, mcf_httpserver_resp *resp, void *arg)
{
	(void) req;
	(void) arg;
	mcf_httpserver_resp_printf(resp, "ok\n");
	return 0;
}

/* Ready once every engaged cluster has synced its caches (a standby
 * candidate keeps warm caches and is ready too). */
static int
h_readyz(const mcf_httpserver_req *req, mcf_httpserver_resp *resp, void *arg)
{
	(void) req;
	worker *w = arg;
	char  **names = mcf_ctrl_mgr_clusters(w->mgr);
	bool    ok = true;
	char    why[300] = "";
	for (size_t i = 0; names[i] != NULL; i++) {
		mcf_ctrl_cluster_status st;
		if (ok && mcf_ctrl_mgr_cluster_status(w->mgr, names[i], &st) ==
		        MCF_OK &&
		    st.state != MCF_CTRL_CLUSTER_SYNCED) {
			ok = false;
			snprintf(why, sizeof(why), "cluster \"%s\" not synced\n",
			    names[i]);
		}
		free(names[i]);
	}
	free(names);
	if (ok) {
		mcf_httpserver_resp_printf(resp, "ok\n");
	} else {
		mcf_httpserver_resp_status(resp, 503);
		mcf_httpserver_resp_printf(resp, "%s", why);
	}
	return 0;
}

static const char *
state_name(mcf_ctrl_cluster_state s)
{
	switch (s) {
	case MCF_CTRL_CLUSTER_ENGAGING:
		return "engaging";
	case MCF_CTRL_CLUSTER_SYNCED:
		return "synced";
	case MCF_CTRL_CLUSTER_FAILING:
		return "failing";
	}
	return "unknown";
}

static int
h_status(const mcf_httpserver_req *req, mcf_httpserver_resp *resp, void *arg)
{
	(void) req;
	worker        *w = arg;
	mcf_ctrl_stats st;
	mcf_ctrl_mgr_stats(w->mgr, &st);
	json_t *clusters = json_array();
	char  **names = mcf_ctrl_mgr_clusters(w->mgr);
	for (size_t i = 0; names[i] != NULL; i++) {
		mcf_ctrl_cluster_status cs;
		if (mcf_ctrl_mgr_cluster_status(w->mgr, names[i], &cs) ==
		    MCF_OK)
			json_array_append_new(clusters,
			    json_pack("{s:s,s:s,s:s,s:I}", "name", names[i],
			        "state", state_name(cs.state), "reason",
			        cs.reason, "objects", (json_int_t) cs.objects));
		free(names[i]);
	}
	free(names);
	char *leader = w->le != NULL ? mcf_le_leader(w->le) : NULL;
	json_t *doc = json_pack(
	    "{s:s,s:s,s:s,s:s,s:b,s:o,s:I,s:I,s:I,s:I,s:o}", "mode", w->mode,
	    "name", w->name, "incarnation", w->incarnation, "version",
	    MCF_VERSION, "reconciling", atomic_load(&w->running), "leader",
	    w->le != NULL ? json_pack("{s:b,s:s}", "is_leader",
	                        mcf_le_is_leader(w->le), "identity",
	                        leader != NULL ? leader : "")
	                  : json_null(),
	    "reconciles", (json_int_t) st.reconciles, "reconcile_errors",
	    (json_int_t) st.reconcile_errors, "queue_depth",
	    (json_int_t) st.queue_depth, "active", (json_int_t) st.active,
	    "clusters", clusters);
	free(leader);
	char *text = json_dumps(doc, JSON_INDENT(2));
	json_decref(doc);
	mcf_httpserver_resp_content_type(resp, "application/json");
	mcf_httpserver_resp_body_steal(resp, text, strlen(text));
	return 0;
}

/* The status URL written on the own Lease: the status server's URL, or,
 * when it listens on every interface and the pod's IP is known (POD_IP
 * from the downward API), that IP with the bound port. */
static char *
status_url_for(const mcf_httpserver *srv, const char *listen)
{
	const char *ip = getenv("POD_IP");
	bool        wildcard = listen[0] == ':' ||
	    strncmp(listen, "0.0.0.0:", 8) == 0 ||
	    strncmp(listen, "[::]:", 5) == 0;
	if (wildcard && ip != NULL && ip[0] != '\0')
		return mcf_asprintf("http://%s%s%s:%d/status",
		    strchr(ip, ':') ? "[" : "", ip, strchr(ip, ':') ? "]" : "",
		    mcf_httpserver_port(srv));
	return mcf_asprintf("%s/status", mcf_httpserver_url(srv));
}

/* Flags that belong to one mode only: naming one in the other mode is a
 * usage error rather than a silent no-op. */
static const char *const standalone_only[] = {"leader-elect",
	"leader-elect-namespace", "leader-elect-name", "retry-period", NULL};
static const char *const fleet_only[] = {"coordinator-lease", "weight",
	"key-file", "key-file-previous", "project-kubeconfig",
	"project-context", "renew-period", "heartbeat-interval",
	"drain-timeout", "tls-ca", "tls-cert", "tls-key", "tls-server-name",
	NULL};

int
main(int argc, char **argv)
{
	char   *kubeconfig = NULL, *context = NULL, *namespace = NULL;
	char   *name = NULL, *http = NULL, *log_level = NULL;
	char   *le_namespace = NULL, *le_name = NULL;
	char   *coord_lease = NULL, *key_file = NULL, *key_file_prev = NULL;
	char   *project_kubeconfig = NULL, *project_context = NULL;
	char   *tls_ca = NULL, *tls_cert = NULL, *tls_key = NULL;
	char   *tls_server_name = NULL;
	bool    standalone = false, leader_elect = false;
	int64_t lease_ms = 0, renew_ms = 0, retry_ms = 0, resync_ms = 0;
	int64_t watch_timeout_ms = 0, renew_period_ms = 0, heartbeat_ms = 0;
	int64_t drain_ms = 0, weight = 0;
	const mcf_flag flags[] = {
		{"standalone", MCF_FLAG_BOOL, NULL, "false",
		    "Run the controllers against the one cluster of "
		    "--kubeconfig instead of joining a fleet.",
		    &standalone},
		{"kubeconfig", MCF_FLAG_STRING, "FILE", NULL,
		    "Kubeconfig file(s), ':'-separated; default $KUBECONFIG, "
		    "else the in-cluster service account.  Fleet mode: the "
		    "core API, where the Leases live.",
		    &kubeconfig},
		{"context", MCF_FLAG_STRING, "NAME", NULL,
		    "Kubeconfig context to use; default its current-context.",
		    &context},
		{"namespace", MCF_FLAG_STRING, "NS", NULL,
		    "Standalone: watch only this namespace (default all).  "
		    "Fleet mode: the namespace of the Leases (default "
		    "mcfleet-system).",
		    &namespace},
		{"name", MCF_FLAG_STRING, "NAME", NULL,
		    "This worker's name (Lease identity, User-Agent; in fleet "
		    "mode its Lease is mcfleet-worker-NAME); default the host "
		    "name.",
		    &name},
		{"http", MCF_FLAG_STRING, "HOST:PORT", "0.0.0.0:8080",
		    "Address of the status server (/healthz, /readyz, "
		    "/metrics, /status); port 0 picks a free port.",
		    &http},
		{"leader-elect", MCF_FLAG_BOOL, NULL, "false",
		    "Standalone: reconcile only while holding the Lease "
		    "--leader-elect-name.",
		    &leader_elect},
		{"leader-elect-namespace", MCF_FLAG_STRING, "NS",
		    "mcfleet-system", "Namespace of the leader-election Lease.",
		    &le_namespace},
		{"leader-elect-name", MCF_FLAG_STRING, "NAME",
		    "mcfleet-worker-standalone",
		    "Name of the leader-election Lease.", &le_name},
		{"lease-duration", MCF_FLAG_DURATION, "DURATION", NULL,
		    "How long a Lease holds without renewal (default 15s "
		    "standalone, 3s for the fleet worker's own Lease).",
		    &lease_ms},
		{"renew-deadline", MCF_FLAG_DURATION, "DURATION", NULL,
		    "The holder stops reconciling when it cannot renew within "
		    "this (default 10s standalone; fleet: lease-duration minus "
		    "renew-period).",
		    &renew_ms},
		{"retry-period", MCF_FLAG_DURATION, "DURATION", NULL,
		    "Standalone leader election: time between attempts to "
		    "acquire or renew (default 2s).",
		    &retry_ms},
		{"renew-period", MCF_FLAG_DURATION, "DURATION", NULL,
		    "Fleet: how often the worker renews its own Lease "
		    "(default 1s).",
		    &renew_period_ms},
		{"coordinator-lease", MCF_FLAG_STRING, "NAME",
		    "mcfleet-coordinator",
		    "Fleet: the coordinators' Lease, whose holder is the "
		    "leader to dial.",
		    &coord_lease},
		{"weight", MCF_FLAG_INT, "N", "1",
		    "Fleet: this worker's capacity relative to the others.",
		    &weight},
		{"key-file", MCF_FLAG_STRING, "FILE", NULL,
		    "Fleet (required): the HMAC key file shared with the "
		    "coordinators (proto/README.md); re-read when it changes.",
		    &key_file},
		{"key-file-previous", MCF_FLAG_STRING, "FILE", NULL,
		    "Fleet: a file with the previous key, still accepted "
		    "during a rotation.",
		    &key_file_prev},
		{"tls-ca", MCF_FLAG_STRING, "FILE", NULL,
		    "Fleet: PEM CA bundle to verify a tls+tcp:// coordinator; "
		    "with it set, a plaintext coordinator address is refused.",
		    &tls_ca},
		{"tls-cert", MCF_FLAG_STRING, "FILE", NULL,
		    "Fleet: PEM client certificate for a coordinator that "
		    "requires one (mutual TLS).",
		    &tls_cert},
		{"tls-key", MCF_FLAG_STRING, "FILE", NULL,
		    "Fleet: PEM private key for --tls-cert.",
		    &tls_key},
		{"tls-server-name", MCF_FLAG_STRING, "NAME", NULL,
		    "Fleet: name the coordinator's certificate must carry; "
		    "default the host of its address.",
		    &tls_server_name},
		{"project-kubeconfig", MCF_FLAG_STRING, "FILE", NULL,
		    "Fleet: credentials for the project control planes (the "
		    "server comes from each assignment); default those of "
		    "--kubeconfig.",
		    &project_kubeconfig},
		{"project-context", MCF_FLAG_STRING, "NAME", NULL,
		    "Fleet: context of --project-kubeconfig (or of "
		    "--kubeconfig's files) to take project credentials from.",
		    &project_context},
		{"heartbeat-interval", MCF_FLAG_DURATION, "DURATION", "1s",
		    "Fleet: heartbeat interval until the coordinator's WELCOME "
		    "sets it; a session without WELCOME is dropped after 5.",
		    &heartbeat_ms},
		{"drain-timeout", MCF_FLAG_DURATION, "DURATION", "20s",
		    "Fleet: on SIGTERM, how long to wait for the coordinator "
		    "to move this worker's projects away.",
		    &drain_ms},
		{"resync", MCF_FLAG_DURATION, "DURATION", "10h",
		    "Informer resync period (every object reconciled again); "
		    "0s turns it off.",
		    &resync_ms},
		{"watch-timeout", MCF_FLAG_DURATION, "DURATION", "0s",
		    "Server-side timeout of each watch request; 0s picks a "
		    "random 5-10 minutes, as client-go does.",
		    &watch_timeout_ms},
		{"log-level", MCF_FLAG_STRING, "LEVEL", "info",
		    "debug, info, warn or error.", &log_level},
	};
	mcf_flagset fs = {
		.prog = "mcfleet-worker",
		.summary = "Runs mcfleet's controllers: in a sharded fleet, or "
		           "against one cluster with --standalone.",
		.flags = flags,
		.count = sizeof(flags) / sizeof(flags[0]),
	};
	enum mcf_flags_result res;
	mcf_errinfo           ei = {0};

	mcf_alloc_init_libs();
	mcf_log_init("mcfleet-worker", MCF_LOG_INFO);
	if (mcf_flags_parse(&fs, argc, argv, &res, &ei) != MCF_OK) {
		fprintf(stderr, "mcfleet-worker: %s\n", ei.msg);
		return 2;
	}
	if (res == MCF_FLAGS_EXIT) {
		mcf_flags_free(&fs);
		return 0;
	}

	int                rc = 2;
	enum mcf_log_level lvl;
	mcf_kubeconfig    *kc = NULL, *pkc = NULL;
	mcf_ctrl_mgr      *mgr = NULL;
	mcf_le            *le = NULL;
	mcf_fleet         *fleet = NULL;
	mcf_httpserver    *srv = NULL;
	char               host[256], incarnation[17], *ua = NULL;
	char              *ident = NULL, *status_url = NULL;
	worker             w = {0};

	if (mcf_log_parse_level(log_level, &lvl) != MCF_OK) {
		fprintf(stderr,
		    "mcfleet-worker: --log-level: unknown level \"%s\"\n",
		    log_level);
		goto out;
	}
	mcf_log_set_level(lvl);
	const char *const *other = standalone ? fleet_only : standalone_only;
	for (size_t i = 0; other[i] != NULL; i++) {
		if (mcf_flags_is_set(&fs, other[i])) {
			fprintf(stderr,
			    "mcfleet-worker: --%s: only %s\n", other[i],
			    standalone ? "in fleet mode (without --standalone)"
			               : "with --standalone");
			goto out;
		}
	}
	if (standalone) {
		if (!mcf_flags_is_set(&fs, "lease-duration"))
			lease_ms = 15000;
		if (!mcf_flags_is_set(&fs, "renew-deadline"))
			renew_ms = 10000;
		if (!mcf_flags_is_set(&fs, "retry-period"))
			retry_ms = 2000;
	} else {
		if (!mcf_flags_is_set(&fs, "lease-duration"))
			lease_ms = MCF_FLEET_LEASE_DURATION_MS;
		if (!mcf_flags_is_set(&fs, "renew-period"))
			renew_period_ms = MCF_FLEET_RENEW_PERIOD_MS;
		if (!mcf_flags_is_set(&fs, "renew-deadline"))
			renew_ms = lease_ms - renew_period_ms;
		if (weight < 1 || weight > UINT32_MAX) {
			fprintf(stderr, "mcfleet-worker: --weight: must be "
			                "1..4294967295\n");
			goto out;
		}
	}
	if (leader_elect && (le_namespace == NULL || !le_namespace[0] ||
	                        le_name == NULL || !le_name[0])) {
		fprintf(stderr, "mcfleet-worker: --leader-elect needs "
		                "--leader-elect-namespace and "
		                "--leader-elect-name\n");
		goto out;
	}
	if (resync_ms < 0 || watch_timeout_ms < 0) {
		fprintf(stderr, "mcfleet-worker: %s must not be negative\n",
		    resync_ms < 0 ? "--resync" : "--watch-timeout");
		goto out;
	}
	if (name == NULL || name[0] == '\0') {
		if (gethostname(host, sizeof(host)) != 0)
			snprintf(host, sizeof(host), "mcfleet-worker");
		host[sizeof(host) - 1] = '\0';
		ident = mcf_strdup(host);
	} else {
		ident = mcf_strdup(name);
	}
	mcf_rand_hex(incarnation, 8);
	ua = mcf_asprintf(
	    "mcfleet-worker/%s (%s; %s)", MCF_VERSION, ident, incarnation);

	mcf_fleet_config fc = {
		.defs = controllers,
		.n_defs = sizeof(controllers) / sizeof(controllers[0]),
		.namespace = namespace != NULL ? namespace : MCF_FLEET_NAMESPACE,
		.coordinator_lease = coord_lease,
		.name = ident,
		.incarnation = incarnation,
		.user_agent = ua,
		.key_file = key_file,
		.key_file_previous = key_file_prev,
		.tls_ca = tls_ca,
		.tls_cert = tls_cert,
		.tls_key = tls_key,
		.tls_server_name = tls_server_name,
		.weight = (uint32_t) weight,
		.lease_duration_ms = lease_ms,
		.renew_deadline_ms = renew_ms,
		.renew_period_ms = renew_period_ms,
		.heartbeat_ms = heartbeat_ms,
		.drain_timeout_ms = drain_ms,
		.resync_ms = resync_ms,
		.watch_timeout_s = (int) ((watch_timeout_ms + 999) / 1000),
	};
	if (!standalone && mcf_fleet_config_check(&fc, &ei) != MCF_OK) {
		fprintf(stderr, "mcfleet-worker: %s\n", ei.msg);
		goto out;
	}
	mcf_log_set_field("worker", ident);
	mcf_log_set_field("incarnation", incarnation);

	rc = 1;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (pipe2(wake_fd, O_CLOEXEC | O_NONBLOCK) != 0) {
		mcf_log_error(LOG_ID, "pipe: %s", strerror(errno));
		goto out;
	}
	struct sigaction sa = {.sa_handler = on_signal};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	int lrc = mcf_kubeconfig_resolve(kubeconfig, context, &kc, &ei);
	if (lrc != MCF_OK) {
		mcf_log_error(LOG_ID, "kubeconfig: %s", ei.msg);
		fprintf(stderr, "mcfleet-worker: %s\n", ei.msg);
		goto out;
	}

	if (!standalone) {
		if (project_kubeconfig != NULL ||
		    (project_context != NULL && project_context[0] != '\0')) {
			const char *path =
			    project_kubeconfig != NULL ? project_kubeconfig
			                               : kubeconfig;
			if (mcf_kubeconfig_load(path, project_context, &pkc,
			        &ei) != MCF_OK) {
				mcf_log_error(LOG_ID, "--project-kubeconfig: %s",
				    ei.msg);
				fprintf(stderr,
				    "mcfleet-worker: --project-kubeconfig: %s\n",
				    ei.msg);
				goto out;
			}
		}
		mcf_httpserver_opts ho;
		mcf_httpserver_opts_init(&ho);
		ho.listen = http;
		if (mcf_httpserver_create(&srv, &ho, &ei) != MCF_OK) {
			mcf_log_error(LOG_ID, "--http %s: %s", http, ei.msg);
			fprintf(stderr, "mcfleet-worker: --http %s: %s\n", http,
			    ei.msg);
			goto out;
		}
		status_url = status_url_for(srv, http);
		fc.kc = kc;
		fc.project_kc = pkc != NULL ? pkc : kc;
		fc.status_url = status_url;
		fc.term_fd = wake_fd[0];
		if (mcf_fleet_create(&fc, &fleet, &ei) != MCF_OK) {
			mcf_log_error(LOG_ID, "%s", ei.msg);
			fprintf(stderr, "mcfleet-worker: %s\n", ei.msg);
			goto out;
		}
		if (mcf_fleet_routes(fleet, srv) != MCF_OK ||
		    mcf_httpserver_start(srv) != MCF_OK) {
			mcf_log_error(LOG_ID, "status server: cannot start");
			goto out;
		}
		printf("listening on %s (status)\n", mcf_httpserver_url(srv));
		fflush(stdout);
		rc = mcf_fleet_run(fleet);
		goto out;
	}

	mcf_ctrl_mgr_config mc = {
		.defs = controllers,
		.n_defs = sizeof(controllers) / sizeof(controllers[0]),
		.user_agent = ua,
		.identity = ident,
		.namespace = namespace,
		.resync_ms = resync_ms,
		.watch_timeout_s = (int) ((watch_timeout_ms + 999) / 1000),
	};
	if (mcf_ctrl_mgr_create(&mc, &mgr, &ei) != MCF_OK) {
		mcf_log_error(LOG_ID, "controllers: %s", ei.msg);
		goto out;
	}
	if (mcf_ctrl_mgr_engage(mgr, "", kc, &ei) != MCF_OK) {
		mcf_log_error(LOG_ID, "engage: %s", ei.msg);
		goto out;
	}
	w = (worker) {mgr, NULL, ident, incarnation, "standalone", false};

	if (leader_elect) {
		mcf_le_config lc = {
			.namespace = le_namespace,
			.name = le_name,
			.identity = ident,
			.lease_duration_ms = lease_ms,
			.renew_deadline_ms = renew_ms,
			.retry_period_ms = retry_ms,
			.on_started_leading = le_started,
			.on_stopped_leading = le_stopped,
		};
		if (mcf_le_create(&lc, &le, &ei) != MCF_OK) {
			fprintf(stderr, "mcfleet-worker: leader election: %s\n",
			    ei.msg);
			rc = 2;
			goto out;
		}
		w.le = le;
	}

	mcf_httpserver_opts ho;
	mcf_httpserver_opts_init(&ho);
	ho.listen = http;
	if (mcf_httpserver_create(&srv, &ho, &ei) != MCF_OK) {
		mcf_log_error(LOG_ID, "--http %s: %s", http, ei.msg);
		fprintf(stderr, "mcfleet-worker: --http %s: %s\n", http, ei.msg);
		goto out;
	}
	mcf_httpserver_route(srv, "/healthz", h_healthz, &w);
	mcf_httpserver_route(srv, "/readyz", h_readyz, &w);
	mcf_httpserver_route(srv, "/metrics", mcf_metrics_serve, NULL);
	mcf_httpserver_route(srv, "/status", h_status, &w);
	if (mcf_httpserver_start(srv) != MCF_OK) {
		mcf_log_error(LOG_ID, "status server: cannot start its thread");
		goto out;
	}
	printf("listening on %s (status)\n", mcf_httpserver_url(srv));
	fflush(stdout);

	if (le != NULL) {
		if (mcf_le_start(le, kc, ua, &ei) != MCF_OK) {
			mcf_log_error(LOG_ID, "leader election: %s", ei.msg);
			goto out;
		}
	} else {
		mcf_ctrl_mgr_resume(mgr);
		atomic_store(&w.running, true);
	}
	mcf_log_info(LOG_ID, "running %zu controller(s) on %s%s%s",
	    mc.n_defs, kc->server, namespace ? " namespace " : "",
	    namespace ? namespace : "");

	for (bool done = false; !done;) {
		struct pollfd pfd = {.fd = wake_fd[0], .events = POLLIN};
		if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
			break;
		char buf[64];
		ssize_t n;
		while ((n = read(wake_fd[0], buf, sizeof(buf))) > 0) {
			for (ssize_t i = 0; i < n; i++) {
				if (buf[i] == WAKE_TERM) {
					done = true;
				} else if (buf[i] == WAKE_LEADING && !done &&
				           mcf_le_is_leader(le)) {
					mcf_log_info(LOG_ID, "leading: "
					                     "reconciling");
					mcf_ctrl_mgr_resume(mgr);
					atomic_store(&w.running, true);
				} else if (buf[i] == WAKE_STOPPED) {
					mcf_log_warn(LOG_ID, "lost the lease: "
					                     "reconcilers "
					                     "paused");
					mcf_ctrl_mgr_pause(mgr);
					atomic_store(&w.running, false);
				}
			}
		}
	}
	mcf_log_info(LOG_ID, "stopping: finishing running reconciles");
	/* Single writer: every write of ours ends before the Lease goes. */
	mcf_ctrl_mgr_pause(mgr);
	atomic_store(&w.running, false);
	if (le != NULL)
		mcf_le_stop(le, true);
	rc = 0;

out:
	mcf_httpserver_destroy(srv);
	mcf_fleet_destroy(fleet);
	/* Wait for nng's reaper so frames queued on closed pipes are freed,
	 * unless a close was left hanging (nng_fini would wait on it). */
	if (mcf_proto_nng_quiescent())
		nng_fini();
	mcf_ctrl_mgr_destroy(mgr);
	mcf_le_destroy(le);
	mcf_kubeconfig_destroy(kc);
	mcf_kubeconfig_destroy(pkc);
	free(ua);
	free(ident);
	free(status_url);
	mcf_flags_free(&fs);
	if (wake_fd[0] >= 0) {
		close(wake_fd[0]);
		close(wake_fd[1]);
	}
	if (rc != 2)
		curl_global_cleanup();
	if (rc == 0)
		mcf_log_info(LOG_ID, "stopped");
	return rc;
}

/*
 * mcfleet-coordinator — leads the fleet: leader election on a Lease, the
 * Milo provider, membership from worker Leases, the sharder, and the
 * assignment stream to the workers (docs/fleet.md).
 *
 * Threads (STYLE.md §7):
 *   main      parses flags, creates everything, then runs the fleet's
 *             control loop (mcf_fleet_run), which owns all fleet state:
 *             projects, members, sessions, plans, every NNG send.  It
 *             stops when a signal writes to the self-pipe, then tears down
 *             in order (elector with release, fleet, status server,
 *             informer loop).
 *   informer  one thread (informer.h) runs the LIST/WATCH of Projects (or
 *             ProjectControlPlanes) and of the namespace's Leases; its
 *             handlers only queue events for the control loop.
 *   elector   renews or acquires the coordinator Lease (leaderelect.h);
 *             its callbacks only queue events.
 *   NNG       NNG's own threads run the pipe-event and receive callbacks
 *             of the fleet socket; they only queue events.
 *   status    the HTTP status server thread (httpserver.h): /healthz and
 *             /readyz read atomics; /status asks the control loop for a
 *             fresh document and waits at most 2 s; /metrics renders the
 *             default registry.
 *
 * Stdout carries exactly two lines, `listening on tcp://HOST:PORT (fleet)`
 * and `listening on http://HOST:PORT (status)`; logs are JSON lines on
 * stderr.  Exit codes: 0 after SIGTERM/SIGINT, 1 on a run-time failure,
 * 2 on a usage error (the message names the flag).
 */
#include <curl/curl.h>
#include <nng/nng.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "alloc.h"
#include "flags.h"
#include "fleet.h"
#include "httpserver.h"
#include "informer.h"
#include "keys.h"
#include "kubeconfig.h"
#include "leaderelect.h"
#include "log.h"
#include "rand.h"
#include "metrics.h"
#include "provider.h"
#include "sharder.h"
#include "transport.h"

#define PROG "mcfleet-coordinator"
#define LOG_ID "COORD"

/* The self-pipe: the signal handler writes one byte (a signal flag of
 * the kind STYLE.md §9 allows, as a descriptor). */
static int stop_pipe[2] = { -1, -1 };

static void
on_signal(int sig)
{
	(void) sig;
	int     saved = errno;
	char    c     = 'T';
	ssize_t n     = write(stop_pipe[1], &c, 1);
	(void) n;
	errno = saved;
}

static int
h_healthz(const mcf_httpserver_req *req, mcf_httpserver_resp *resp, void *arg)
{
	(void) req;
	if (mcf_fleet_healthy(arg)) {
		mcf_httpserver_resp_printf(resp, "ok\n");
	} else {
		mcf_httpserver_resp_status(resp, 503);
		mcf_httpserver_resp_printf(resp, "control loop stalled\n");
	}
	return 0;
}

/* Ready once the informers synced, leader or standby alike: a standby is
 * ready so that rollouts proceed (ARCHITECTURE.md conventions). */
static int
h_readyz(const mcf_httpserver_req *req, mcf_httpserver_resp *resp, void *arg)
{
	(void) req;
	if (mcf_fleet_ready(arg)) {
		mcf_httpserver_resp_printf(resp, "ok\n");
	} else {
		mcf_httpserver_resp_status(resp, 503);
		mcf_httpserver_resp_printf(resp, "informers not synced\n");
	}
	return 0;
}

static int
h_status(const mcf_httpserver_req *req, mcf_httpserver_resp *resp, void *arg)
{
	(void) req;
	char *doc = mcf_fleet_status(arg, 2000);
	if (doc == NULL) {
		mcf_httpserver_resp_status(resp, 503);
		mcf_httpserver_resp_printf(resp, "status not available yet\n");
		return 0;
	}
	mcf_httpserver_resp_content_type(resp, "application/json");
	size_t n = strlen(doc);
	doc      = mcf_realloc(doc, n + 2);
	doc[n]   = '\n';
	mcf_httpserver_resp_body_steal(resp, doc, n + 1);
	return 0;
}

/* The host of "HOST:PORT" / "[V6]:PORT" / ":PORT" into `out`. */
static void
http_host(const char *addr, char *out, size_t cap)
{
	out[0] = '\0';
	if (addr == NULL)
		return;
	if (addr[0] == '[') {
		const char *rb = strchr(addr, ']');
		if (rb != NULL)
			snprintf(
			    out, cap, "%.*s", (int) (rb - addr - 1), addr + 1);
		return;
	}
	const char *c = strrchr(addr, ':');
	snprintf(out, cap, "%.*s", (int) (c ? c - addr : (long) strlen(addr)),
	    addr);
}

static bool
wildcard_host(const char *h)
{
	return h[0] == '\0' || strcmp(h, "0.0.0.0") == 0
	    || strcmp(h, "::") == 0 || strcmp(h, "*") == 0;
}

int
main(int argc, char **argv)
{
	char   *kubeconfig = NULL, *context = NULL, *namespace = NULL;
	char   *lease_name = NULL, *listen = NULL, *advertise = NULL;
	char   *http = NULL, *mode_s = NULL, *selector = NULL, *tmpl = NULL;
	char   *key_file = NULL, *key_prev = NULL, *name = NULL;
	char   *log_level = NULL;
	char   *tls_cert = NULL, *tls_key = NULL, *tls_ca = NULL;
	int64_t grace_ms = 0, max_engages = 0, lease_ms = 0, renew_ms = 0;
	int64_t retry_ms = 0, hb_ms = 0;
	double  epsilon        = MCF_SHARDER_EPSILON;
	const mcf_flag flags[] = {
		{ "kubeconfig", MCF_FLAG_STRING, "FILE", NULL,
		    "Kubeconfig of the core API (Projects, Leases); default "
		    "$KUBECONFIG, else the in-cluster service account.",
		    &kubeconfig },
		{ "context", MCF_FLAG_STRING, "NAME", NULL,
		    "Kubeconfig context; default its current-context.",
		    &context },
		{ "namespace", MCF_FLAG_STRING, "NS", "mcfleet-system",
		    "Namespace of the coordinator and worker Leases.",
		    &namespace },
		{ "lease-name", MCF_FLAG_STRING, "NAME", "mcfleet-coordinator",
		    "Name of the coordinators' leader-election Lease.",
		    &lease_name },
		{ "listen", MCF_FLAG_STRING, "URL", "tcp://0.0.0.0:7400",
		    "NNG URL workers dial; port 0 picks a free port.",
		    &listen },
		{ "advertise-address", MCF_FLAG_STRING, "HOST", NULL,
		    "Address published on the Lease for workers to dial (a "
		    "host, host:port or URL); default $POD_IP, else the "
		    "--listen host (a wildcard becomes 127.0.0.1).",
		    &advertise },
		{ "http", MCF_FLAG_STRING, "HOST:PORT", "0.0.0.0:8080",
		    "Address of the status server (/status, /metrics, "
		    "/healthz, /readyz); port 0 picks a free port.",
		    &http },
		{ "mode", MCF_FLAG_STRING, "MODE", "external",
		    "Project discovery: external (Projects, Ready) or "
		    "internal (ProjectControlPlanes, ControlPlaneReady).",
		    &mode_s },
		{ "project-selector", MCF_FLAG_STRING, "SELECTOR", NULL,
		    "Label selector limiting the projects this fleet serves.",
		    &selector },
		{ "internal-endpoint-template", MCF_FLAG_STRING, "URL",
		    MCF_PROVIDER_DEFAULT_TEMPLATE,
		    "Internal mode: project control-plane URL, {name} is the "
		    "project name.",
		    &tmpl },
		{ "key-file", MCF_FLAG_STRING, "FILE", NULL,
		    "HMAC key file for the worker protocol (required; "
		    "re-read when it changes).",
		    &key_file },
		{ "key-file-previous", MCF_FLAG_STRING, "FILE", NULL,
		    "Optional file holding the previous key, accepted during "
		    "a rotation.",
		    &key_prev },
		{ "tls-cert", MCF_FLAG_STRING, "FILE", NULL,
		    "PEM certificate (chain) for a tls+tcp:// --listen URL "
		    "(a TLS Secret's tls.crt).",
		    &tls_cert },
		{ "tls-key", MCF_FLAG_STRING, "FILE", NULL,
		    "PEM private key for --tls-cert (tls.key).",
		    &tls_key },
		{ "tls-ca", MCF_FLAG_STRING, "FILE", NULL,
		    "PEM CA bundle: with it, workers must present a "
		    "certificate it signed (mutual TLS).",
		    &tls_ca },
		{ "disengage-grace", MCF_FLAG_DURATION, "DURATION", "30s",
		    "How long a project's Ready condition may be off before "
		    "it is disengaged.",
		    &grace_ms },
		{ "max-concurrent-engages", MCF_FLAG_INT, "N", "32",
		    "Engages (and moves) in flight at most.", &max_engages },
		{ "load-epsilon", MCF_FLAG_DOUBLE, "E", "0.1",
		    "Sharder load bound: no worker above ceil((1+E) x its "
		    "weighted share).",
		    &epsilon },
		{ "lease-duration", MCF_FLAG_DURATION, "DURATION", "15s",
		    "Leader election: how long the Lease holds without "
		    "renewal.",
		    &lease_ms },
		{ "renew-deadline", MCF_FLAG_DURATION, "DURATION", "10s",
		    "Leader election: the leader steps down when it cannot "
		    "renew within this.",
		    &renew_ms },
		{ "retry-period", MCF_FLAG_DURATION, "DURATION", "2s",
		    "Leader election: time between attempts.", &retry_ms },
		{ "heartbeat-interval", MCF_FLAG_DURATION, "DURATION", "1s",
		    "Heartbeat interval for both sides of every worker "
		    "session.",
		    &hb_ms },
		{ "name", MCF_FLAG_STRING, "NAME", NULL,
		    "This coordinator's identity on the Lease; default "
		    "HOSTNAME_RANDOM.",
		    &name },
		{ "log-level", MCF_FLAG_STRING, "LEVEL", "info",
		    "debug, info, warn or error.", &log_level },
	};
	mcf_flagset fs = {
		.prog = PROG,
		.summary
		= "Leads the mcfleet fleet: leader election, the Milo "
		  "provider, membership, sharding and assignment "
		  "streaming.",
		.flags = flags,
		.count = sizeof(flags) / sizeof(flags[0]),
	};
	enum mcf_flags_result res;
	mcf_errinfo           ei = { 0 };

	mcf_alloc_init_libs();
	mcf_log_init(PROG, MCF_LOG_INFO);
	if (mcf_flags_parse(&fs, argc, argv, &res, &ei) != MCF_OK) {
		fprintf(stderr, PROG ": %s\n", ei.msg);
		return 2;
	}
	if (res == MCF_FLAGS_EXIT) {
		mcf_flags_free(&fs);
		return 0;
	}

	int                    rc = 2;
	enum mcf_log_level     lvl;
	enum mcf_provider_mode mode;
	char                   ident[300], *ua = NULL, *status_url = NULL;
	mcf_kubeconfig        *kc      = NULL;
	mcf_proto_keys        *keys    = NULL;
	mcf_fleet             *fleet   = NULL;
	mcf_httpserver        *srv     = NULL;
	mcf_inf_loop          *loop    = NULL;
	mcf_le                *le      = NULL;
	bool                   curl_up = false;

	if (mcf_log_parse_level(log_level, &lvl) != MCF_OK) {
		fprintf(stderr, PROG ": --log-level: unknown level \"%s\"\n",
		    log_level);
		goto out;
	}
	mcf_log_set_level(lvl);
	if (mcf_provider_mode_parse(mode_s, &mode) != MCF_OK) {
		fprintf(stderr,
		    PROG ": --mode: \"%s\" is neither external nor internal\n",
		    mode_s);
		goto out;
	}
	if (mode == MCF_PROVIDER_INTERNAL
	    && mcf_provider_template_check(tmpl, &ei) != MCF_OK) {
		fprintf(stderr, PROG ": --internal-endpoint-template: %s\n",
		    ei.msg);
		goto out;
	}
	if (key_file == NULL || key_file[0] == '\0') {
		fprintf(stderr,
		    PROG ": --key-file is required (the HMAC key "
		         "shared with the workers)\n");
		goto out;
	}
	if (max_engages < 1) {
		fprintf(stderr,
		    PROG ": --max-concurrent-engages must be at "
		         "least 1\n");
		goto out;
	}
	if (hb_ms <= 0) {
		fprintf(
		    stderr, PROG ": --heartbeat-interval must be above 0\n");
		goto out;
	}
	if (!(epsilon >= 0)) {
		fprintf(stderr, PROG ": --load-epsilon must be >= 0\n");
		goto out;
	}
	if (namespace == NULL || !namespace[0] || lease_name == NULL
	    || !lease_name[0]) {
		fprintf(stderr,
		    PROG ": --namespace and --lease-name must not "
		         "be empty\n");
		goto out;
	}
	if (name != NULL && name[0] != '\0') {
		snprintf(ident, sizeof(ident), "%s", name);
	} else {
		char host[256], rnd[17];
		if (gethostname(host, sizeof(host)) != 0)
			snprintf(host, sizeof(host), "mcfleet-coordinator");
		host[sizeof(host) - 1] = '\0';
		mcf_rand_hex(rnd, 4);
		snprintf(ident, sizeof(ident), "%s_%s", host, rnd);
	}
	{
		mcf_le_config check = {
			.namespace         = namespace,
			.name              = lease_name,
			.identity          = ident,
			.lease_duration_ms = lease_ms,
			.renew_deadline_ms = renew_ms,
			.retry_period_ms   = retry_ms,
		};
		if (mcf_le_config_check(&check, &ei) != MCF_OK) {
			fprintf(stderr,
			    PROG ": --lease-duration/--renew-deadline/"
			         "--retry-period: %s\n",
			    ei.msg);
			goto out;
		}
	}
	mcf_proto_tls_opts tls = {
		.cert_file = tls_cert,
		.key_file  = tls_key,
		.ca_file   = tls_ca,
	};
	if (mcf_proto_url_is_tls(listen)
	        ? mcf_proto_tls_check(&tls, true, &ei) != MCF_OK
	        : mcf_proto_tls_configured(&tls)
	            && mcf_errinfo_set(&ei, MCF_EINVAL,
	                   "--tls-cert/--tls-key/--tls-ca need a tls+tcp:// "
	                   "--listen URL")
	                != MCF_OK) {
		fprintf(stderr, PROG ": %s\n", ei.msg);
		goto out;
	}
	mcf_proto_keys_opts ko;
	mcf_proto_keys_opts_init(&ko);
	ko.path          = key_file;
	ko.previous_path = key_prev;
	if (mcf_proto_keys_create(&keys, &ko, &ei) != MCF_OK) {
		fprintf(stderr, PROG ": --key-file: %s\n", ei.msg);
		goto out;
	}
	mcf_log_set_field("role", "coordinator");
	mcf_log_set_field("identity", ident);

	rc = 1;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	curl_up = true;
	if (pipe2(stop_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
		mcf_log_error(LOG_ID, "pipe: %s", strerror(errno));
		goto out;
	}
	struct sigaction sa = { .sa_handler = on_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	int lrc = mcf_kubeconfig_resolve(kubeconfig, context, &kc, &ei);
	if (lrc != MCF_OK) {
		mcf_log_error(LOG_ID, "kubeconfig: %s", ei.msg);
		fprintf(stderr, PROG ": kubeconfig: %s\n", ei.msg);
		goto out;
	}
	ua = mcf_asprintf("%s/%s (%s)", PROG, MCF_VERSION, ident);

	mcf_fleet_config fc = {
	    .identity  = ident,
	    .listen    = listen,
	    .tls       = &tls,
	    .advertise = advertise,
	    .namespace = namespace,
	    .lease_name = lease_name,
	    .provider =
	        {
	            .mode              = mode,
	            .endpoint_template = tmpl,
	            .grace_ms          = grace_ms,
	        },
	    .project_selector = selector,
	    .keys             = keys,
	    .heartbeat_ms     = hb_ms,
	    .max_engages      = (size_t) max_engages,
	    .epsilon          = epsilon,
	    .kc               = kc,
	    .user_agent       = ua,
	};
	if (mcf_fleet_create(&fc, &fleet, &ei) != MCF_OK) {
		mcf_log_error(LOG_ID, "%s", ei.msg);
		fprintf(stderr, PROG ": %s\n", ei.msg);
		rc = ei.code == MCF_EINVAL ? 2 : 1;
		goto out;
	}
	printf("listening on %s (fleet)\n", mcf_fleet_listen_url(fleet));
	fflush(stdout);

	mcf_httpserver_opts ho;
	mcf_httpserver_opts_init(&ho);
	ho.listen = http;
	if (mcf_httpserver_create(&srv, &ho, &ei) != MCF_OK) {
		mcf_log_error(LOG_ID, "--http %s: %s", http, ei.msg);
		fprintf(stderr, PROG ": --http %s: %s\n", http, ei.msg);
		rc = ei.code == MCF_EINVAL ? 2 : 1;
		goto out;
	}
	mcf_httpserver_route(srv, "/healthz", h_healthz, fleet);
	mcf_httpserver_route(srv, "/readyz", h_readyz, fleet);
	mcf_httpserver_route(srv, "/metrics", mcf_metrics_serve, NULL);
	mcf_httpserver_route(srv, "/status", h_status, fleet);
	{
		char h[256];
		http_host(http, h, sizeof(h));
		const char *host
		    = wildcard_host(h) ? mcf_fleet_advertise_host(fleet) : h;
		bool v6 = strchr(host, ':') != NULL;
		status_url
		    = mcf_asprintf("http://%s%s%s:%d/status", v6 ? "[" : "",
		        host, v6 ? "]" : "", mcf_httpserver_port(srv));
	}
	mcf_fleet_set_status_url(fleet, status_url);

	if (mcf_inf_loop_create(&loop, &ei) != MCF_OK) {
		mcf_log_error(LOG_ID, "informer loop: %s", ei.msg);
		goto out;
	}
	const char *const ann[]
	    = { "mcfleet.io/fleet-address", mcf_fleet_address(fleet),
		      "mcfleet.io/status-url", status_url, NULL };
	mcf_le_config lc = {
		.namespace          = namespace,
		.name               = lease_name,
		.identity           = ident,
		.lease_duration_ms  = lease_ms,
		.renew_deadline_ms  = renew_ms,
		.retry_period_ms    = retry_ms,
		.on_started_leading = mcf_fleet_on_started_leading,
		.on_stopped_leading = mcf_fleet_on_stopped_leading,
		.arg                = fleet,
		.annotations        = ann,
	};
	if (mcf_le_create(&lc, &le, &ei) != MCF_OK) {
		fprintf(stderr, PROG ": leader election: %s\n", ei.msg);
		rc = 2;
		goto out;
	}
	mcf_fleet_set_elector(fleet, le);
	if (mcf_fleet_start(fleet, loop, &ei) != MCF_OK) {
		mcf_log_error(LOG_ID, "fleet: %s", ei.msg);
		goto out;
	}
	if (mcf_httpserver_start(srv) != MCF_OK) {
		mcf_log_error(
		    LOG_ID, "status server: cannot start its thread");
		goto out;
	}
	printf("listening on %s (status)\n", mcf_httpserver_url(srv));
	fflush(stdout);
	if (mcf_le_start(le, kc, ua, &ei) != MCF_OK) {
		mcf_log_error(LOG_ID, "leader election: %s", ei.msg);
		goto out;
	}
	mcf_log_info(LOG_ID,
	    "coordinator %s: %s mode on %s, Lease %s/%s, fleet address %s, "
	    "status %s",
	    ident, mcf_provider_mode_name(mode), kc->server, namespace,
	    lease_name, mcf_fleet_address(fleet), status_url);

	if (mcf_fleet_run(fleet, stop_pipe[0]) != MCF_OK)
		goto out;
	mcf_log_info(LOG_ID, "stopping: releasing the Lease");
	rc = 0;

out:
	/* The elector first (a release lets the standby take over at once),
	 * then the fleet, the status server and the informers. */
	if (le != NULL)
		mcf_le_stop(le, true);
	if (fleet != NULL)
		mcf_fleet_stop(fleet);
	mcf_httpserver_destroy(srv);
	mcf_le_destroy(le);
	mcf_fleet_destroy(fleet);
	mcf_inf_loop_destroy(loop);
	/* nng reaps closed pipes on its own threads; wait for them so the
	 * frames still queued on a pipe are freed before exit (unless a close
	 * was left hanging: nng_fini would wait on it). */
	if (mcf_proto_nng_quiescent())
		nng_fini();
	mcf_proto_keys_destroy(keys);
	mcf_kubeconfig_destroy(kc);
	free(ua);
	free(status_url);
	mcf_flags_free(&fs);
	if (stop_pipe[0] >= 0) {
		close(stop_pipe[0]);
		close(stop_pipe[1]);
	}
	if (curl_up)
		curl_global_cleanup();
	if (rc == 0)
		mcf_log_info(LOG_ID, "stopped");
	return rc;
}

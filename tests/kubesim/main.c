/*
 * kubesim — a Kubernetes API server simulator for mcfleet's tests,
 * benchmarks and local demo (KUBE_API.md part 1 is its contract).
 *
 * Threads: one.  The main thread runs the epoll loop of httpd.c; every
 * request handler, watch stream, timer and simulated controller runs on it,
 * so the store needs no locks.  Signal handlers only call ks_httpd_stop(),
 * which writes to an eventfd.
 *
 * Stdout carries exactly one line, "listening on URL", flushed once the
 * listener is bound and the --kubeconfig-out file is written; logs are JSON
 * lines on stderr.  Exit codes: 0 after SIGTERM/SIGINT, 1 on a run-time
 * failure, 2 on a usage error.
 */
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "api.h"
#include "base64.h"
#include "duration.h"
#include "err.h"
#include "faults.h"
#include "flags.h"
#include "log.h"
#include "milo.h"
#include "ops.h"
#include "sim.h"
#include "watch.h"

/* Set once before the loop starts; read by the signal handler (the only
 * use of global state, for the reason STYLE.md §9 allows). */
static ks_httpd *volatile signal_target;

static void
on_signal(int sig)
{
	(void) sig;
	if (signal_target != NULL)
		ks_httpd_stop(signal_target);
}

static int
write_file(const char *path, const char *text)
{
	char *tmp = mcf_asprintf("%s.tmp%d", path, (int) getpid());
	FILE *f   = fopen(tmp, "w");
	if (f == NULL) {
		free(tmp);
		return -1;
	}
	bool ok = fputs(text, f) >= 0;
	ok      = fclose(f) == 0 && ok;
	ok      = ok && rename(tmp, path) == 0;
	if (!ok)
		unlink(tmp);
	free(tmp);
	return ok ? 0 : -1;
}

static char *
read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return NULL;
	char  *buf = NULL;
	size_t n = 0, cap = 0;
	for (;;) {
		if (n + 4096 > cap) {
			cap = (n + 4096) * 2;
			buf = mcf_realloc(buf, cap);
		}
		size_t r = fread(buf + n, 1, cap - n - 1, f);
		if (r == 0)
			break;
		n += r;
	}
	fclose(f);
	buf[n] = '\0';
	*len   = n;
	return buf;
}

/* A kubeconfig for the core API: context "kubesim", namespace default;
 * with TLS the serving certificate is the trusted CA. */
static int
write_kubeconfig(const char *path, const char *url, const char *cert)
{
	char *ca = NULL;
	if (cert != NULL) {
		size_t n;
		char  *pem = read_file(cert, &n);
		if (pem == NULL)
			return -1;
		char *b64 = mcf_base64_encode(pem, n);
		ca        = mcf_asprintf("    certificate-authority-data: %s\n",
			   b64);
		free(b64);
		free(pem);
	}
	char *text = mcf_asprintf(
	    "apiVersion: v1\n"
	    "kind: Config\n"
	    "clusters:\n"
	    "- name: kubesim\n"
	    "  cluster:\n"
	    "    server: %s\n"
	    "%s"
	    "contexts:\n"
	    "- name: kubesim\n"
	    "  context:\n"
	    "    cluster: kubesim\n"
	    "    user: kubesim\n"
	    "    namespace: default\n"
	    "current-context: kubesim\n"
	    "users:\n"
	    "- name: kubesim\n"
	    "  user:\n"
	    "    token: kubesim\n",
	    url, ca ? ca : "");
	int rc = write_file(path, text);
	free(text);
	free(ca);
	return rc;
}

int
main(int argc, char **argv)
{
	char   *listen = NULL, *tls_cert = NULL, *tls_key = NULL;
	char   *kubeconfig_out = NULL, *discovery = NULL, *gitversion = NULL;
	char   *log_level = NULL, *table = NULL;
	int64_t history = 0, seed = 0, request_log = 0;
	int64_t ready_after = -1, bookmark = 0, watch_timeout = 0;
	bool    rv0_ignores_limit = true;
	const mcf_flag flags[] = {
		{ "listen", MCF_FLAG_STRING, "HOST:PORT", "127.0.0.1:6443",
		    "address to serve on; port 0 picks a free port", &listen },
		{ "tls-cert", MCF_FLAG_STRING, "FILE", NULL,
		    "PEM certificate: serve HTTPS (with --tls-key)", &tls_cert },
		{ "tls-key", MCF_FLAG_STRING, "FILE", NULL,
		    "PEM private key for --tls-cert", &tls_key },
		{ "kubeconfig-out", MCF_FLAG_STRING, "FILE", NULL,
		    "write a kubeconfig for the core API (context kubesim)",
		    &kubeconfig_out },
		{ "history-events", MCF_FLAG_INT, "N", "10000",
		    "events kept per control plane for watch resume, continue "
		    "tokens and Exact lists; older resourceVersions get 410",
		    &history },
		{ "project-ready-after", MCF_FLAG_DURATION, "DURATION", NULL,
		    "run the simulated Milo project controller: a new Project "
		    "is Ready after DURATION (absent: off)",
		    &ready_after },
		{ "bookmark-interval", MCF_FLAG_DURATION, "DURATION", "60s",
		    "how often watches that allow bookmarks get one",
		    &bookmark },
		{ "watch-default-timeout", MCF_FLAG_DURATION, "DURATION",
		    "30m", "how long a watch without timeoutSeconds lasts",
		    &watch_timeout },
		{ "rv0-ignores-limit", MCF_FLAG_BOOL, NULL, "true",
		    "lists with resourceVersion=0 ignore limit, as the 1.32 "
		    "watch cache does",
		    &rv0_ignores_limit },
		{ "discovery", MCF_FLAG_STRING, "aggregated|legacy",
		    "aggregated", "discovery form offered to clients that ask "
				  "for the aggregated one",
		    &discovery },
		{ "table", MCF_FLAG_STRING, "on|off", "on",
		    "answer kubectl get with server-side Table output", &table },
		{ "gitversion", MCF_FLAG_STRING, "VERSION", "v1.32.4",
		    "version reported by /version", &gitversion },
		{ "seed", MCF_FLAG_INT, "N", "0",
		    "seed for fault-injection probabilities", &seed },
		{ "request-log", MCF_FLAG_INT, "N", "10000",
		    "requests kept for /_sim/requests", &request_log },
		{ "log-level", MCF_FLAG_STRING, "LEVEL", "info",
		    "debug, info, warn, error or off", &log_level },
	};
	mcf_flagset fs = {
		.prog    = "kubesim",
		.summary = "Kubernetes API server simulator (Milo projects, "
			   "list/watch, Leases, CRDs). Dependents are "
			   "garbage-collected in the background whatever "
			   "the propagationPolicy (Foreground and Orphan "
			   "behave as Background).",
		.flags   = flags,
		.count   = sizeof(flags) / sizeof(flags[0]),
	};
	enum mcf_flags_result res;
	mcf_errinfo           ei;
	mcf_alloc_init_libs();
	mcf_log_init("kubesim", MCF_LOG_INFO);
	if (mcf_flags_parse(&fs, argc, argv, &res, &ei) != MCF_OK) {
		fprintf(stderr, "kubesim: %s\n", ei.msg);
		mcf_flags_free(&fs);
		return 2;
	}
	if (res == MCF_FLAGS_EXIT) {
		mcf_flags_free(&fs);
		return 0;
	}
	int                rc = 2;
	enum mcf_log_level lvl;
	if (mcf_log_parse_level(log_level, &lvl) != MCF_OK) {
		fprintf(stderr, "kubesim: --log-level: unknown level \"%s\"\n",
		    log_level);
		goto out;
	}
	mcf_log_set_level(lvl);
	if ((tls_cert == NULL) != (tls_key == NULL)) {
		fprintf(stderr, "kubesim: --tls-cert and --tls-key go together\n");
		goto out;
	}
	if (strcmp(discovery, "aggregated") != 0 &&
	    strcmp(discovery, "legacy") != 0) {
		fprintf(stderr,
		    "kubesim: --discovery: want aggregated or legacy, got "
		    "\"%s\"\n",
		    discovery);
		goto out;
	}
	if (strcmp(table, "on") != 0 && strcmp(table, "off") != 0) {
		fprintf(stderr, "kubesim: --table: want on or off, got \"%s\"\n",
		    table);
		goto out;
	}
	if (history < 1 || request_log < 0 || bookmark <= 0 ||
	    watch_timeout <= 0) {
		fprintf(stderr, "kubesim: %s must be positive\n",
		    history < 1		 ? "--history-events"
			: request_log < 0 ? "--request-log"
			: bookmark <= 0	 ? "--bookmark-interval"
					  : "--watch-default-timeout");
		goto out;
	}
	srand((unsigned) seed);
	/* Large list bodies and watch buffers come and go all the time; keep
	 * them on the heap instead of fresh mmaps, whose page faults cost
	 * more than the copying they hold. */
	mallopt(M_MMAP_THRESHOLD, 256 << 20);
	mallopt(M_TRIM_THRESHOLD, 512 << 20);
	signal(SIGPIPE, SIG_IGN);

	ks_sim s = { 0 };
	s.opt    = (ks_sim_options) {
		   .bookmark_ms       = bookmark,
		   .watch_timeout_ms  = watch_timeout,
		   .ready_after_ms    = mcf_flags_is_set(&fs,
			      "project-ready-after")
			   ? ready_after
			   : -1,
		   .history           = (size_t) history,
		   .rv0_ignores_limit = rv0_ignores_limit,
		   .legacy_discovery  = strcmp(discovery, "legacy") == 0,
		   .table             = strcmp(table, "on") == 0,
		   .gitversion        = gitversion,
		   .request_log       = (size_t) request_log,
	};
	s.reqlog = json_array();
	s.faults = ks_faults_create((uint64_t) seed);
	ks_store_create(&s.store, s.opt.history);
	ks_httpd_config hc = { .listen = listen, .tls_cert = tls_cert,
		.tls_key = tls_key, .handler = ks_api_handle,
		.handler_arg = &s };
	char err[256];
	rc = 1;
	if (ks_httpd_create(&s.httpd, &hc, err, sizeof(err)) != 0) {
		fprintf(stderr, "kubesim: %s\n", err);
		ks_store_destroy(s.store);
		ks_faults_destroy(s.faults);
		json_decref(s.reqlog);
		goto out;
	}
	s.hub = ks_watchhub_create(&s);
	ks_ops_init(&s);
	if (s.opt.ready_after_ms >= 0)
		s.milo = ks_milo_create(&s, s.opt.ready_after_ms);
	ks_ops_seed_plane(&s, ks_store_root(s.store));

	char url[300];
	const char *host = listen;
	const char *colon = strrchr(listen, ':');
	snprintf(url, sizeof(url), "%s://%.*s:%d", ks_httpd_scheme(s.httpd),
	    (int) (colon ? colon - host : (long) strlen(host)), host,
	    ks_httpd_port(s.httpd));
	if (kubeconfig_out != NULL &&
	    write_kubeconfig(kubeconfig_out, url, tls_cert) != 0) {
		fprintf(stderr, "kubesim: --kubeconfig-out: cannot write %s\n",
		    kubeconfig_out);
	} else {
		printf("listening on %s\n", url);
		fflush(stdout);
		mcf_log_info("KS-LISTEN", "listening on %s", url);
		signal_target = s.httpd;
		struct sigaction sa;
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = on_signal;
		sigaction(SIGTERM, &sa, NULL);
		sigaction(SIGINT, &sa, NULL);
		int run = ks_httpd_run(s.httpd);
		signal_target = NULL;
		if (run != MCF_OK) {
			mcf_log_error("KS-LOOP", "event loop failed: %s",
			    mcf_strerror(run));
		} else {
			mcf_log_info("KS-STOP", "stopping");
			rc = 0;
		}
	}
	ks_milo_destroy(s.milo);
	ks_ops_fini(&s);
	ks_httpd_destroy(s.httpd);
	ks_watchhub_destroy(s.hub);
	ks_store_destroy(s.store);
	ks_faults_destroy(s.faults);
	json_decref(s.reqlog);
out:
	mcf_flags_free(&fs);
	return rc;
}

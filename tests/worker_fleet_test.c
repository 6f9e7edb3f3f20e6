/*
 * worker_fleet_test.c — the mcfleet-worker binary in fleet mode, against
 * kubesim and a coordinator scripted by this test (a thread holding an NNG
 * pair1 listener and its own mcf_proto_conn), over tcp:// on loopback.
 *
 * One scenario, in order:
 *   join      the coordinator Lease names the test's address; the worker
 *             reads it, dials, says HELLO (name, incarnation, weight, its
 *             Lease, its status URL), takes its own Lease (holder
 *             NAME/INCARNATION, annotations weight, incarnation,
 *             status-url) and, after WELCOME, reports its (empty) set in
 *             a full ACK before any snapshot;
 *   snapshot  p1, p2 engaged at their control-plane endpoints; ACKs report
 *             engaging then synced; MyResources in p1 and p2 get their
 *             ConfigMaps (the worker reconciles through the endpoint with
 *             the --kubeconfig credentials); /status and /readyz agree;
 *   delta     disengage p2, engage p3: STOPPED names p2, the ACK reports
 *             p2 stopped and p3; after STOPPED the worker never writes to
 *             p2's plane again (kubesim's request log, by User-Agent);
 *   gap       a delta whose base is not the applied version gets a
 *             RESYNC_REQUEST and is not applied; a snapshot repairs it;
 *   fencing   a delta with a lower term, and one with another Lease uid
 *             while the coordinator Lease is valid, are refused and
 *             counted (mcfleet_proto_frames_rejected_total{lower_term});
 *   liveness  the own Lease cannot be renewed (kubesim answers 500): the
 *             worker pauses its reconcilers within the renew deadline,
 *             /readyz says 503, projects stay engaged; once renewals work
 *             it takes its Lease back but stays paused until the snapshot
 *             it asks for (RESYNC_REQUEST) arrives, then resumes;
 *   outage    the coordinator goes away: the worker keeps its projects
 *             synced and reconciling; a new leader appears in the Lease at
 *             another address with a higher term: the worker redials,
 *             reports its engaged set in the first ACK, and a snapshot of
 *             the same set moves nothing (engages unchanged);
 *   failing   a project whose plane answers 503 is reported failing, with
 *             a reason, while the others stay synced; it syncs once the
 *             plane is back;
 *   sigterm   LEAVING; the coordinator disengages everything; STOPPED;
 *             the worker exits 0 and its Lease is released.
 *
 * Deadlines scale with MCF_TEST_TIMEOUT_SCALE.  The worker's stderr goes to
 * a file whose tail is printed when a check fails.
 */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <nng/nng.h>
#include <nng/protocol/pair1/pair.h>

#include "alloc.h"
#include "conn.h"
#include "err.h"
#include "kclient.h"
#include "keys.h"
#include "ks_spawn.h"
#include "msg.h"
#include "reject.h"
#include "replay.h"

extern char **environ;

#define KEY "fleet-test-key-0123456789abcdef-0123456789"
#define NS "mcfleet-system"
#define WNAME "w-test"
#define UA "worker-fleet-test"
#define PLANE                                                                 \
	"/apis/resourcemanager.miloapis.com/v1alpha1/projects/%s/"            \
	"control-plane"

static int            scale = 1;
static ks_spawn       sim;
static mcf_kubeconfig kcfg;
static char           dir[256];
static char           kc_path[300], key_path[300], log_path[300];
static pid_t          worker_pid;
static char           worker_url[128];
static char           lease_uid[128];

/* ---- small helpers ---- */

static int64_t
now_ms(void)
{
	return ks_spawn_now_ms();
}

static void
sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long) (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static void
dump_worker_log(void)
{
	FILE *fp = fopen(log_path, "r");
	if (fp == NULL)
		return;
	static char lines[60][1024];
	int         n = 0;
	while (fgets(lines[n % 60], sizeof(lines[0]), fp) != NULL)
		n++;
	fclose(fp);
	fprintf(stderr, "---- worker stderr, last lines ----\n");
	for (int i = n > 60 ? n - 60 : 0; i < n; i++)
		fputs(lines[i % 60], stderr);
	fprintf(stderr, "---- end ----\n");
}

#define CHECK(c)                                                              \
	do {                                                                  \
		if (!(c)) {                                                   \
			dump_worker_log();                                    \
			fail_msg("check failed: %s", #c);                     \
		}                                                             \
	} while (0)

static mcf_kc *
client_at(const char *server)
{
	mcf_kubeconfig k = kcfg;
	k.server         = (char *) server;
	mcf_kc     *c    = NULL;
	mcf_errinfo ei;
	assert_int_equal(mcf_kc_create(&k, UA, NULL, &c, &ei), 0);
	return c;
}

static mcf_kc *
plane(const char *project)
{
	char url[512];
	char path[256];
	snprintf(path, sizeof(path), PLANE, project);
	snprintf(url, sizeof(url), "%s%s", sim.url, path);
	return client_at(url);
}

static json_t *
post(mcf_kc *c, const char *group, const char *version, const char *res,
    const char *ns, const char *json)
{
	mcf_kc_ref ref  = { group, version, res, ns, NULL };
	json_t    *body = json_loads(json, 0, NULL);
	assert_non_null(body);
	json_t       *out = NULL;
	mcf_kc_status st;
	int           rc = mcf_kc_create_object(c, &ref, body, &out, &st);
	if (rc != 0)
		print_message(
		    "create %s: %d %s\n", json, st.http_code, st.message);
	assert_int_equal(rc, 0);
	json_decref(body);
	return out;
}

/* GET `url`; the body as a new string (free), or NULL. */
static size_t
curl_sink(char *p, size_t sz, size_t n, void *arg)
{
	char **s   = arg;
	size_t old = *s ? strlen(*s) : 0;
	*s         = mcf_realloc(*s, old + sz * n + 1);
	memcpy(*s + old, p, sz * n);
	(*s)[old + sz * n] = '\0';
	return sz * n;
}

static char *
http_get(const char *url, long *code)
{
	CURL *h = curl_easy_init();
	/* On the heap: the handle keeps the pointer (GCC's -O2
	 * dangling-pointer check would flag a local). */
	char **box = mcf_calloc(1, sizeof(*box));
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, curl_sink);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, box);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 5000L);
	CURLcode cc = curl_easy_perform(h);
	*code       = 0;
	if (cc == CURLE_OK)
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, code);
	curl_easy_cleanup(h);
	char *body = *box;
	free(box);
	return body;
}

static json_t *
worker_status(void)
{
	char url[256];
	long code;
	snprintf(url, sizeof(url), "%s/status", worker_url);
	char *b = http_get(url, &code);
	if (b == NULL || code != 200) {
		free(b);
		return NULL;
	}
	json_t *j = json_loads(b, 0, NULL);
	free(b);
	return j;
}

static double
worker_metric(const char *series)
{
	char url[256];
	long code;
	snprintf(url, sizeof(url), "%s/metrics", worker_url);
	char  *b      = http_get(url, &code);
	double v      = -1;
	char  *needle = mcf_asprintf("\n%s ", series);
	char  *p      = b != NULL ? strstr(b, needle) : NULL;
	if (p != NULL)
		v = strtod(p + strlen(needle), NULL);
	free(needle);
	free(b);
	return v;
}

/* "p1:synced p3:synced" from /status. */
static void
status_projects(char *out, size_t cap)
{
	out[0]    = '\0';
	json_t *s = worker_status();
	if (s == NULL)
		return;
	size_t  i;
	json_t *p;
	json_array_foreach(json_object_get(s, "projects"), i, p)
	{
		size_t len = strlen(out);
		snprintf(out + len, cap - len, "%s%s:%s", len ? " " : "",
		    json_string_value(json_object_get(p, "name")),
		    json_string_value(json_object_get(p, "state")));
	}
	json_decref(s);
}

static bool
wait_status_projects(const char *want, int64_t ms)
{
	char    got[1024] = "";
	int64_t end       = now_ms() + ms * scale;
	while (now_ms() < end) {
		status_projects(got, sizeof(got));
		if (strcmp(got, want) == 0)
			return true;
		sleep_ms(50);
	}
	print_message(
	    "/status projects: got \"%s\", want \"%s\"\n", got, want);
	return false;
}

/* ---- the scripted coordinator ---- */

typedef struct coord {
	nng_socket      sock;
	bool            open;
	char            url[64];
	mcf_proto_conn *conn;
	pthread_t       thread;
	atomic_bool     stop;
	pthread_mutex_t mtx; /* guards everything below and sends */
	mcf_proto_term  term;
	bool            welcomed;
	uint64_t        hb_seq;
	int             hellos;
	char   hello[512]; /* "name inc weight lease url uid/tr applied" */
	char   log[32768]; /* message summaries, in order */
	char   states[64][2][64]; /* project -> state from ACKs */
	size_t nstates;
} coord;

static mcf_proto_keys         *keys;
static mcf_proto_replay       *c_replay;
static mcf_proto_reject_stats *c_stats;
static coord                   co;

static void
logf_locked(coord *c, const char *fmt, ...)
{
	size_t  len = strlen(c->log);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->log + len, sizeof(c->log) - len, fmt, ap);
	va_end(ap);
}

static void
state_set_locked(coord *c, const char *name, const char *state)
{
	for (size_t i = 0; i < c->nstates; i++) {
		if (strcmp(c->states[i][0], name) == 0) {
			if (strcmp(state, "stopped") == 0) {
				c->nstates--;
				memcpy(c->states[i], c->states[c->nstates],
				    sizeof(c->states[0]));
			} else {
				snprintf(c->states[i][1], 64, "%s", state);
			}
			return;
		}
	}
	if (strcmp(state, "stopped") != 0 && c->nstates < 64) {
		snprintf(c->states[c->nstates][0], 64, "%s", name);
		snprintf(c->states[c->nstates][1], 64, "%s", state);
		c->nstates++;
	}
}

static void
send_locked(coord *c, mcf_proto_msg *m)
{
	uint8_t    *frame;
	size_t      len;
	mcf_errinfo ei = { 0 };
	int         rc = mcf_proto_conn_seal(c->conn, m, &frame, &len, &ei);
	if (rc != MCF_OK) {
		print_message("seal: %s\n", ei.msg);
		abort();
	}
	nng_send(c->sock, frame, len, 0);
	free(frame);
}

static void
coord_send(coord *c, mcf_proto_msg *m)
{
	pthread_mutex_lock(&c->mtx);
	send_locked(c, m);
	pthread_mutex_unlock(&c->mtx);
}

static void
record_locked(coord *c, const mcf_proto_msg *m)
{
	switch (m->type) {
	case MCF_PROTO_MSG_HELLO: {
		const mcf_proto_hello *h = &m->u.hello;
		c->hellos++;
		snprintf(c->hello, sizeof(c->hello),
		    "%s %s %u %s %s %s/%lld %llu", h->name, h->incarnation,
		    h->weight, h->lease, h->status_url,
		    h->term.uid[0] ? h->term.uid : "-",
		    (long long) h->term.transitions,
		    (unsigned long long) h->applied);
		logf_locked(c, "HELLO ");
		break;
	}
	case MCF_PROTO_MSG_ACK: {
		const mcf_proto_ack *a = &m->u.ack;
		logf_locked(c, "ACK(%llu%s", (unsigned long long) a->applied,
		    a->full ? ",full" : "");
		if (a->full) {
			/* Everything not listed is not running. */
			c->nstates = 0;
		}
		for (size_t i = 0; i < a->nprojects; i++) {
			const char *st
			    = mcf_proto_pstate_name(a->projects[i].state);
			logf_locked(c, ",%s:%s", a->projects[i].name, st);
			state_set_locked(c, a->projects[i].name, st);
		}
		logf_locked(c, ") ");
		break;
	}
	case MCF_PROTO_MSG_STOPPED:
		logf_locked(c, "STOPPED(");
		for (size_t i = 0; i < m->u.stopped.nprojects; i++)
			logf_locked(
			    c, "%s%s", i ? "," : "", m->u.stopped.projects[i]);
		logf_locked(c, ") ");
		break;
	case MCF_PROTO_MSG_LEAVING:
		logf_locked(c, "LEAVING(%s) ", m->u.leaving.reason);
		break;
	case MCF_PROTO_MSG_RESYNC_REQUEST:
		logf_locked(c, "RESYNC(%s) ", m->u.resync.reason);
		break;
	default:
		break;
	}
}

static void *
coord_main(void *arg)
{
	coord  *c       = arg;
	int64_t next_hb = 0;
	while (!atomic_load(&c->stop)) {
		nng_msg *msg = NULL;
		int rv = nng_recvmsg(c->sock, &msg, 0); /* 50 ms timeout */
		pthread_mutex_lock(&c->mtx);
		if (rv == 0) {
			mcf_proto_msg *m = NULL;
			if (mcf_proto_conn_open(c->conn, nng_msg_body(msg),
			        nng_msg_len(msg), &m, NULL, NULL)
			    == MCF_OK) {
				record_locked(c, m);
				mcf_proto_msg_destroy(m);
			}
			nng_msg_free(msg);
		}
		if (c->welcomed && now_ms() >= next_hb) {
			mcf_proto_msg hb;
			mcf_proto_msg_init(&hb, MCF_PROTO_MSG_HEARTBEAT);
			hb.u.heartbeat.time_ms = 1;
			hb.u.heartbeat.seq     = ++c->hb_seq;
			hb.u.heartbeat.term    = c->term;
			send_locked(c, &hb);
			next_hb = now_ms() + 200;
		}
		pthread_mutex_unlock(&c->mtx);
	}
	return NULL;
}

static void
coord_open(coord *c)
{
	memset(c, 0, sizeof(*c));
	pthread_mutex_init(&c->mtx, NULL);
	assert_int_equal(nng_pair1_open(&c->sock), 0);
	c->open = true;
	assert_int_equal(
	    nng_socket_set_size(c->sock, NNG_OPT_RECVMAXSZ, 1 << 24), 0);
	assert_int_equal(nng_socket_set_ms(c->sock, NNG_OPT_RECVTIMEO, 50), 0);
	assert_int_equal(
	    nng_socket_set_ms(c->sock, NNG_OPT_SENDTIMEO, 2000), 0);
	assert_int_equal(nng_socket_set_int(c->sock, NNG_OPT_SENDBUF, 256), 0);
	nng_listener l;
	assert_int_equal(nng_listen(c->sock, "tcp://127.0.0.1:0", &l, 0), 0);
	int port = 0;
	assert_int_equal(
	    nng_listener_get_int(l, NNG_OPT_TCP_BOUND_PORT, &port), 0);
	snprintf(c->url, sizeof(c->url), "tcp://127.0.0.1:%d", port);
	mcf_proto_conn_opts o = { MCF_PROTO_PEER_COORDINATOR, keys, c_replay,
		c_stats, 0, "worker" };
	assert_int_equal(mcf_proto_conn_create(&c->conn, &o, NULL), MCF_OK);
	assert_int_equal(pthread_create(&c->thread, NULL, coord_main, c), 0);
}

static void
coord_close(coord *c)
{
	if (!c->open)
		return;
	atomic_store(&c->stop, true);
	pthread_join(c->thread, NULL);
	nng_close(c->sock);
	mcf_proto_conn_destroy(c->conn);
	pthread_mutex_destroy(&c->mtx);
	c->open = false;
}

/* True within `ms` (scaled) once the log holds `needle` after `from`. */
static bool
coord_wait_log(coord *c, size_t from, const char *needle, int64_t ms)
{
	int64_t end = now_ms() + ms * scale;
	while (now_ms() < end) {
		pthread_mutex_lock(&c->mtx);
		bool ok
		    = strlen(c->log) >= from && strstr(c->log + from, needle);
		pthread_mutex_unlock(&c->mtx);
		if (ok)
			return true;
		sleep_ms(20);
	}
	pthread_mutex_lock(&c->mtx);
	print_message("coordinator saw \"%s\", wanted \"%s\"\n",
	    c->log + (from <= strlen(c->log) ? from : 0), needle);
	pthread_mutex_unlock(&c->mtx);
	return false;
}

static size_t
coord_mark(coord *c)
{
	pthread_mutex_lock(&c->mtx);
	size_t n = strlen(c->log);
	pthread_mutex_unlock(&c->mtx);
	return n;
}

/* The project states the ACKs add up to, sorted: "p1:synced p2:engaging". */
static bool
coord_wait_states(coord *c, const char *want, int64_t ms)
{
	int64_t end = now_ms() + ms * scale;
	char    got[1024];
	while (true) {
		pthread_mutex_lock(&c->mtx);
		/* sort by name (tiny n) */
		for (size_t i = 0; i < c->nstates; i++)
			for (size_t j = i + 1; j < c->nstates; j++)
				if (strcmp(c->states[i][0], c->states[j][0])
				    > 0) {
					char t[2][64];
					memcpy(t, c->states[i], sizeof(t));
					memcpy(c->states[i], c->states[j],
					    sizeof(t));
					memcpy(c->states[j], t, sizeof(t));
				}
		got[0] = '\0';
		for (size_t i = 0; i < c->nstates; i++) {
			size_t len = strlen(got);
			snprintf(got + len, sizeof(got) - len, "%s%s:%s",
			    i ? " " : "", c->states[i][0], c->states[i][1]);
		}
		pthread_mutex_unlock(&c->mtx);
		if (strcmp(got, want) == 0)
			return true;
		if (now_ms() >= end)
			break;
		sleep_ms(20);
	}
	print_message("ACK states: got \"%s\", want \"%s\"\n", got, want);
	return false;
}

static void
welcome(coord *c, const char *uid, int64_t transitions, const char *leader)
{
	mcf_proto_msg m;
	mcf_proto_msg_init(&m, MCF_PROTO_MSG_WELCOME);
	m.u.welcome.major = MCF_PROTO_MAJOR;
	m.u.welcome.minor = MCF_PROTO_MINOR;
	mcf_proto_term_set(&m.u.welcome.term, uid, transitions);
	m.u.welcome.leader       = (char *) leader;
	m.u.welcome.heartbeat_ms = 200;
	pthread_mutex_lock(&c->mtx);
	c->term = m.u.welcome.term;
	send_locked(c, &m);
	c->welcomed = true;
	pthread_mutex_unlock(&c->mtx);
}

static void
endpoint(char *out, size_t cap, const char *project)
{
	char path[256];
	snprintf(path, sizeof(path), PLANE, project);
	snprintf(out, cap, "%s%s", sim.url, path);
}

static void
send_snapshot(coord *c, uint64_t version, const char *const *names)
{
	mcf_proto_assignment a[8];
	char                 ep[8][512];
	size_t               n = 0;
	for (; names[n] != NULL; n++) {
		endpoint(ep[n], sizeof(ep[n]), names[n]);
		a[n].name     = (char *) names[n];
		a[n].endpoint = ep[n];
	}
	mcf_proto_msg m;
	mcf_proto_msg_init(&m, MCF_PROTO_MSG_ASSIGN_SNAPSHOT);
	m.u.snapshot.term      = c->term;
	m.u.snapshot.version   = version;
	m.u.snapshot.projects  = a;
	m.u.snapshot.nprojects = n;
	coord_send(c, &m);
}

static void
send_delta(coord *c, const mcf_proto_term *t, uint64_t base, uint64_t version,
    const char *const *engage, const char *const *dis)
{
	mcf_proto_assignment a[8];
	char                 ep[8][512];
	size_t               ne = 0, nd = 0;
	for (; engage != NULL && engage[ne] != NULL; ne++) {
		endpoint(ep[ne], sizeof(ep[ne]), engage[ne]);
		a[ne].name     = (char *) engage[ne];
		a[ne].endpoint = ep[ne];
	}
	while (dis != NULL && dis[nd] != NULL)
		nd++;
	mcf_proto_msg m;
	mcf_proto_msg_init(&m, MCF_PROTO_MSG_ASSIGN_DELTA);
	m.u.delta.term       = *t;
	m.u.delta.base       = base;
	m.u.delta.version    = version;
	m.u.delta.engage     = a;
	m.u.delta.nengage    = ne;
	m.u.delta.disengage  = (char **) dis;
	m.u.delta.ndisengage = nd;
	coord_send(c, &m);
}

/* ---- kubesim fixtures ---- */

static void
put_coordinator_lease(const char *holder, const char *address, int transitions)
{
	mcf_kc    *c   = client_at(sim.url);
	mcf_kc_ref ref = { "coordination.k8s.io", "v1", "leases", NS,
		"mcfleet-coordinator" };
	json_t    *l   = NULL;
	char       now[64];
	time_t     t = time(NULL);
	struct tm  tm;
	gmtime_r(&t, &tm);
	strftime(now, sizeof(now), "%Y-%m-%dT%H:%M:%S.000000Z", &tm);
	if (mcf_kc_get(c, &ref, &l, NULL) == MCF_ENOENT) {
		char body[1024];
		snprintf(body, sizeof(body),
		    "{\"metadata\":{\"name\":\"mcfleet-coordinator\","
		    "\"annotations\":{\"mcfleet.io/fleet-address\":\"%s\","
		    "\"mcfleet.io/status-url\":\"http://x/status\"}},"
		    "\"spec\":{\"holderIdentity\":\"%s\","
		    "\"leaseDurationSeconds\":3600,\"renewTime\":\"%s\","
		    "\"acquireTime\":\"%s\",\"leaseTransitions\":%d}}",
		    address, holder, now, now, transitions);
		l = post(c, "coordination.k8s.io", "v1", "leases", NS, body);
	} else {
		json_t *ann = json_object_get(
		    json_object_get(l, "metadata"), "annotations");
		json_object_set_new(
		    ann, "mcfleet.io/fleet-address", json_string(address));
		json_t *spec = json_object_get(l, "spec");
		json_object_set_new(
		    spec, "holderIdentity", json_string(holder));
		json_object_set_new(spec, "renewTime", json_string(now));
		json_object_set_new(
		    spec, "leaseTransitions", json_integer(transitions));
		json_t *out = NULL;
		assert_int_equal(mcf_kc_update(c, &ref, l, &out, NULL), 0);
		json_decref(l);
		l = out;
	}
	snprintf(lease_uid, sizeof(lease_uid), "%s",
	    json_string_value(
	        json_object_get(json_object_get(l, "metadata"), "uid")));
	json_decref(l);
	mcf_kc_destroy(c);
}

static const char crd[]
    = "{\"metadata\":{\"name\":\"myresources.example.mcfleet.io\"},\"spec\":{"
      "\"group\":\"example.mcfleet.io\",\"scope\":\"Namespaced\","
      "\"names\":{\"plural\":\"myresources\",\"singular\":\"myresource\","
      "\"kind\":\"MyResource\"},\"versions\":[{\"name\":\"v1alpha1\","
      "\"served\":true,\"storage\":true,\"subresources\":{\"status\":{}},"
      "\"schema\":{\"openAPIV3Schema\":{\"type\":\"object\","
      "\"x-kubernetes-preserve-unknown-fields\":true}}}]}}";

static void
project_with_myresource(const char *project)
{
	mcf_kc *root = client_at(sim.url);
	char    body[256];
	snprintf(body, sizeof(body),
	    "{\"metadata\":{\"name\":\"%s\"},\"spec\":{\"ownerRef\":{"
	    "\"kind\":\"Organization\",\"name\":\"org1\"}}}",
	    project);
	json_decref(post(root, "resourcemanager.miloapis.com", "v1alpha1",
	    "projects", NULL, body));
	mcf_kc_destroy(root);
	mcf_kc *p = plane(project);
	/* The plane appears with the Project. */
	int64_t end = now_ms() + 10000 * scale;
	int     rc;
	do {
		mcf_kc_ref ref = { "", "v1", "namespaces", NULL, "default" };
		rc             = mcf_kc_get(p, &ref, NULL, NULL);
		if (rc != 0)
			sleep_ms(50);
	} while (rc != 0 && now_ms() < end);
	assert_int_equal(rc, 0);
	json_decref(post(p, "apiextensions.k8s.io", "v1",
	    "customresourcedefinitions", NULL, crd));
	json_decref(
	    post(p, "example.mcfleet.io", "v1alpha1", "myresources", "default",
	        "{\"apiVersion\":\"example.mcfleet.io/v1alpha1\","
	        "\"kind\":\"MyResource\",\"metadata\":{\"name\":\"m1\"},"
	        "\"spec\":{\"data\":{\"k\":\"v1\"}}}"));
	mcf_kc_destroy(p);
}

/* The data value of ConfigMap default/m1 in `project`, or "" */
static bool
wait_configmap(const char *project, const char *want, int64_t ms)
{
	mcf_kc    *p   = plane(project);
	mcf_kc_ref ref = { "", "v1", "configmaps", "default", "m1" };
	int64_t    end = now_ms() + ms * scale;
	bool       ok  = false;
	while (!ok && now_ms() < end) {
		json_t *cm = NULL;
		if (mcf_kc_get(p, &ref, &cm, NULL) == 0) {
			const char *v = json_string_value(
			    json_object_get(json_object_get(cm, "data"), "k"));
			ok = v != NULL && strcmp(v, want) == 0;
		}
		json_decref(cm);
		if (!ok)
			sleep_ms(50);
	}
	mcf_kc_destroy(p);
	return ok;
}

static void
patch_myresource(const char *project, const char *value)
{
	mcf_kc    *p   = plane(project);
	mcf_kc_ref ref = { "example.mcfleet.io", "v1alpha1", "myresources",
		"default", "m1" };
	char       body[128];
	snprintf(
	    body, sizeof(body), "{\"spec\":{\"data\":{\"k\":\"%s\"}}}", value);
	json_t *patch = json_loads(body, 0, NULL);
	assert_int_equal(
	    mcf_kc_patch(p, &ref, MCF_KC_PATCH_MERGE, patch, NULL, NULL), 0);
	json_decref(patch);
	mcf_kc_destroy(p);
}

/* kubesim's request log: the highest seq so far. */
static int64_t
request_seq(void)
{
	mcf_kc *c   = client_at(sim.url);
	json_t *out = NULL;
	assert_int_equal(
	    mcf_kc_request(c, "GET", "/_sim/requests", NULL, &out, NULL), 0);
	int64_t seq = 0;
	size_t  i;
	json_t *r;
	json_t *items
	    = json_is_array(out) ? out : json_object_get(out, "items");
	json_array_foreach(items, i, r)
	{
		int64_t s = json_integer_value(json_object_get(r, "seq"));
		if (s > seq)
			seq = s;
	}
	json_decref(out);
	mcf_kc_destroy(c);
	return seq;
}

/* Writes by the worker (User-Agent mcfleet-worker/...) to `project`'s
 * plane after seq `since`. */
static int
worker_writes(const char *project, int64_t since, int *total_worker)
{
	mcf_kc *c   = client_at(sim.url);
	json_t *out = NULL;
	char    path[64];
	snprintf(path, sizeof(path), "/_sim/requests?since=%lld",
	    (long long) since);
	assert_int_equal(mcf_kc_request(c, "GET", path, NULL, &out, NULL), 0);
	int     n = 0;
	size_t  i;
	json_t *r;
	json_t *items
	    = json_is_array(out) ? out : json_object_get(out, "items");
	json_array_foreach(items, i, r)
	{
		const char *ua
		    = json_string_value(json_object_get(r, "user_agent"));
		const char *pl
		    = json_string_value(json_object_get(r, "plane"));
		const char *m
		    = json_string_value(json_object_get(r, "method"));
		if (ua == NULL || strncmp(ua, "mcfleet-worker/", 15) != 0)
			continue;
		if (total_worker != NULL)
			(*total_worker)++;
		if (pl != NULL && strcmp(pl, project) == 0 && m != NULL
		    && strcmp(m, "GET") != 0)
			n++;
	}
	json_decref(out);
	mcf_kc_destroy(c);
	return n;
}

/* ---- the worker process ---- */

static void
worker_start(void)
{
	const char *bin = getenv("MCFLEET_WORKER");
	assert_non_null(bin);
	int pfd[2];
	assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
	const char *argv[] = { bin, "--kubeconfig", kc_path, "--http",
		"127.0.0.1:0", "--name", WNAME, "--weight", "3", "--key-file",
		key_path, "--heartbeat-interval", "200ms", "--drain-timeout",
		"20s", "--resync", "0s", NULL };
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
	posix_spawn_file_actions_addopen(
	    &fa, 2, log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
	/* The worker reads KUBECONFIG only without --kubeconfig; fine. */
	int rc = posix_spawn(
	    &worker_pid, bin, &fa, NULL, (char *const *) argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(pfd[1]);
	assert_int_equal(rc, 0);
	char    line[256];
	size_t  n   = 0;
	int64_t end = now_ms() + 20000 * scale;
	bool    ok  = false;
	while (!ok && now_ms() < end) {
		struct pollfd p = { pfd[0], POLLIN, 0 };
		if (poll(&p, 1, 100) <= 0)
			continue;
		ssize_t r = read(pfd[0], line + n, sizeof(line) - 1 - n);
		if (r <= 0)
			break;
		n += (size_t) r;
		line[n]  = '\0';
		char *nl = strchr(line, '\n');
		if (nl != NULL) {
			*nl = '\0';
			ok  = sscanf(line, "listening on %127s (status)",
			          worker_url)
			    == 1;
			break;
		}
	}
	close(pfd[0]);
	CHECK(ok);
}

/* Waits for the worker to exit; its exit status, or -1. */
static int
worker_wait(int64_t ms)
{
	int64_t end = now_ms() + ms * scale;
	int     status;
	while (now_ms() < end) {
		if (waitpid(worker_pid, &status, WNOHANG) == worker_pid) {
			worker_pid = 0;
			return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
		}
		sleep_ms(20);
	}
	return -1;
}

/* ---- the scenario ---- */

static void
test_fleet_join(void **state)
{
	(void) state;
	size_t mark = coord_mark(&co);
	worker_start();
	CHECK(coord_wait_log(&co, mark, "HELLO", 10000));
	char               name[64], inc[64], lease[128], url[256], term[160];
	unsigned           weight;
	unsigned long long applied;
	pthread_mutex_lock(&co.mtx);
	int got = sscanf(co.hello, "%63s %63s %u %127s %255s %159s %llu", name,
	    inc, &weight, lease, url, term, &applied);
	pthread_mutex_unlock(&co.mtx);
	CHECK(got == 7);
	assert_string_equal(name, WNAME);
	assert_int_equal(strlen(inc), 16);
	assert_int_equal(weight, 3);
	assert_string_equal(lease, "mcfleet-worker-" WNAME);
	char want_url[200];
	snprintf(want_url, sizeof(want_url), "%s/status", worker_url);
	assert_string_equal(url, want_url);
	assert_string_equal(term, "-/0");
	assert_int_equal(applied, 0);

	/* Its own Lease: holder NAME/INCARNATION and the annotations. */
	mcf_kc    *c   = client_at(sim.url);
	mcf_kc_ref ref = { "coordination.k8s.io", "v1", "leases", NS,
		"mcfleet-worker-" WNAME };
	json_t    *l   = NULL;
	int64_t    end = now_ms() + 10000 * scale;
	char       holder[128];
	snprintf(holder, sizeof(holder), "%s/%s", WNAME, inc);
	bool ok = false;
	while (!ok && now_ms() < end) {
		json_decref(l);
		l = NULL;
		if (mcf_kc_get(c, &ref, &l, NULL) == 0) {
			const char *h = json_string_value(json_object_get(
			    json_object_get(l, "spec"), "holderIdentity"));
			ok            = h != NULL && strcmp(h, holder) == 0;
		}
		if (!ok)
			sleep_ms(50);
	}
	CHECK(ok);
	json_t *ann
	    = json_object_get(json_object_get(l, "metadata"), "annotations");
	assert_string_equal(
	    json_string_value(json_object_get(ann, "mcfleet.io/weight")), "3");
	assert_string_equal(
	    json_string_value(json_object_get(ann, "mcfleet.io/incarnation")),
	    inc);
	assert_string_equal(
	    json_string_value(json_object_get(ann, "mcfleet.io/status-url")),
	    want_url);
	json_decref(l);
	mcf_kc_destroy(c);

	/* WELCOME: the first answer is a full ACK of what runs (nothing). */
	mark = coord_mark(&co);
	welcome(&co, lease_uid, 5, "coord-a");
	CHECK(coord_wait_log(&co, mark, "ACK(0,full)", 5000));
	json_t *s = worker_status();
	CHECK(s != NULL);
	CHECK(json_is_true(json_object_get(s, "connected")));
	assert_string_equal(
	    json_string_value(json_object_get(s, "leader")), "coord-a");
	assert_string_equal(json_string_value(json_object_get(
	                        json_object_get(s, "term"), "uid")),
	    lease_uid);
	json_decref(s);
}

static void
test_fleet_snapshot(void **state)
{
	(void) state;
	size_t mark = coord_mark(&co);
	send_snapshot(&co, 1, (const char *[]) { "p1", "p2", NULL });
	CHECK(coord_wait_log(&co, mark, "ACK(1,full,p1:", 5000));
	CHECK(coord_wait_states(&co, "p1:synced p2:synced", 15000));
	CHECK(wait_status_projects("p1:synced p2:synced", 5000));
	/* Reconciling through the endpoint, with the --kubeconfig's
	 * credentials: the MyResources got their ConfigMaps. */
	CHECK(wait_configmap("p1", "v1", 20000));
	CHECK(wait_configmap("p2", "v1", 20000));
	char url[256];
	long code = 0;
	snprintf(url, sizeof(url), "%s/readyz", worker_url);
	free(http_get(url, &code));
	assert_int_equal(code, 200);
	assert_true(worker_metric("mcfleet_worker_engages_total") == 2);
	assert_true(
	    worker_metric("mcfleet_worker_projects{state=\"synced\"}") == 2);
	if (getenv("MCF_TEST_PRINT_STATUS") != NULL) {
		json_t *st  = worker_status();
		char   *txt = json_dumps(st, JSON_INDENT(2));
		fprintf(stderr, "%s\n", txt);
		free(txt);
		json_decref(st);
	}
	/* Every request names the worker and its incarnation. */
	int total = 0;
	worker_writes("p1", 0, &total);
	CHECK(total > 0);
}

static void
test_fleet_delta(void **state)
{
	(void) state;
	size_t mark = coord_mark(&co);
	send_delta(&co, &co.term, 1, 2, (const char *[]) { "p3", NULL },
	    (const char *[]) { "p2", NULL });
	CHECK(coord_wait_log(&co, mark, "STOPPED(p2)", 5000));
	CHECK(coord_wait_log(&co, mark, "p2:stopped", 5000));
	int64_t after = request_seq();
	CHECK(coord_wait_states(&co, "p1:synced p3:synced", 15000));
	CHECK(wait_status_projects("p1:synced p3:synced", 5000));
	/* Single writer: p2 changes, nobody here answers. */
	patch_myresource("p2", "v2");
	patch_myresource("p1", "v2");
	CHECK(wait_configmap("p1", "v2", 10000));
	sleep_ms(500 * scale);
	CHECK(worker_writes("p2", after, NULL) == 0);
	CHECK(wait_configmap("p2", "v1", 1));
	assert_true(worker_metric("mcfleet_worker_disengages_total") == 1);
}

static void
test_fleet_gap(void **state)
{
	(void) state;
	size_t mark = coord_mark(&co);
	/* Version 3 is "lost": base 3 at applied 2. */
	send_delta(&co, &co.term, 3, 4, (const char *[]) { "p2", NULL }, NULL);
	CHECK(coord_wait_log(
	    &co, mark, "RESYNC(delta base 3, applied 2)", 5000));
	sleep_ms(300);
	CHECK(wait_status_projects("p1:synced p3:synced", 1000));
	mark = coord_mark(&co);
	send_snapshot(&co, 5, (const char *[]) { "p1", "p3", NULL });
	CHECK(coord_wait_log(
	    &co, mark, "ACK(5,full,p1:synced,p3:synced)", 5000));
	json_t *s = worker_status();
	CHECK(s != NULL);
	assert_int_equal(
	    json_integer_value(json_object_get(s, "applied_version")), 5);
	CHECK(json_is_false(json_object_get(s, "resync_pending")));
	json_decref(s);
}

static void
test_fleet_fencing(void **state)
{
	(void) state;
	const char *lower
	    = "mcfleet_proto_frames_rejected_total{reason=\"lower_term\"}";
	CHECK(worker_metric(lower) == 0);
	mcf_proto_term t4;
	mcf_proto_term_set(&t4, lease_uid, 4);
	send_delta(&co, &t4, 5, 6, (const char *[]) { "p2", NULL }, NULL);
	/* Another uid while the coordinator Lease (lease_uid) is valid. */
	mcf_proto_term other;
	mcf_proto_term_set(&other, "00000000-0000-0000-0000-000000000000", 9);
	send_delta(&co, &other, 5, 6, (const char *[]) { "p2", NULL }, NULL);
	int64_t end = now_ms() + 5000 * scale;
	while (worker_metric(lower) < 2 && now_ms() < end)
		sleep_ms(50);
	CHECK(worker_metric(lower) == 2);
	json_t *s = worker_status();
	CHECK(s != NULL);
	assert_int_equal(
	    json_integer_value(json_object_get(s, "applied_version")), 5);
	assert_int_equal(json_integer_value(json_object_get(
	                     json_object_get(s, "term"), "transitions")),
	    5);
	json_decref(s);
	CHECK(wait_status_projects("p1:synced p3:synced", 1000));
}

/* The own Lease cannot be renewed: reconcilers pause (projects and caches
 * stay engaged); renewals work again: they resume. */
static void
test_fleet_own_lease(void **state)
{
	(void) state;
	mcf_kc *c    = client_at(sim.url);
	json_t *out  = NULL;
	json_t *rule = json_loads(
	    "{\"match\":{\"verb\":\"update\",\"resource\":\"leases\","
	    "\"name\":\"mcfleet-worker-" WNAME "\"},\"action\":{\"status\":"
	    "500}}",
	    0, NULL);
	assert_int_equal(
	    mcf_kc_request(c, "POST", "/_sim/faults", rule, &out, NULL), 0);
	json_decref(rule);
	char path[64];
	snprintf(path, sizeof(path), "/_sim/faults/%lld",
	    (long long) json_integer_value(json_object_get(out, "id")));
	json_decref(out);

	/* Within the renew deadline (2 s) plus a poll. */
	char    url[256];
	long    code = 0;
	int64_t end  = now_ms() + 6000 * scale;
	snprintf(url, sizeof(url), "%s/readyz", worker_url);
	while (now_ms() < end) {
		free(http_get(url, &code));
		if (code == 503)
			break;
		sleep_ms(50);
	}
	CHECK(code == 503);
	json_t *s = worker_status();
	CHECK(s != NULL);
	CHECK(json_is_false(json_object_get(s, "own_lease_held")));
	CHECK(json_is_false(json_object_get(s, "reconciling")));
	CHECK(json_is_true(json_object_get(s, "connected")));
	json_decref(s);
	CHECK(wait_status_projects("p1:synced p3:synced", 1000));
	/* Paused: a change waits. */
	patch_myresource("p1", "paused");
	sleep_ms(700);
	CHECK(wait_configmap("p1", "v2", 1));

	size_t mark = coord_mark(&co);
	assert_int_equal(
	    mcf_kc_request(c, "DELETE", path, NULL, NULL, NULL), 0);
	mcf_kc_destroy(c);
	/* Held again (the old record stays valid for a lease duration), the
	 * worker still waits: the leader may have moved its projects.  It
	 * asks for a snapshot, and resumes what that snapshot lists. */
	CHECK(coord_wait_log(&co, mark, "RESYNC(own Lease lapsed)", 15000));
	free(http_get(url, &code));
	CHECK(code == 200);
	s = worker_status();
	CHECK(s != NULL);
	CHECK(json_is_true(json_object_get(s, "awaiting_snapshot")));
	CHECK(json_is_false(json_object_get(s, "reconciling")));
	json_decref(s);
	CHECK(wait_configmap("p1", "v2", 1));
	mark = coord_mark(&co);
	send_snapshot(&co, 6, (const char *[]) { "p1", "p3", NULL });
	CHECK(coord_wait_log(
	    &co, mark, "ACK(6,full,p1:synced,p3:synced)", 5000));
	CHECK(wait_configmap("p1", "paused", 15000));
	s = worker_status();
	CHECK(s != NULL);
	CHECK(json_is_false(json_object_get(s, "awaiting_snapshot")));
	CHECK(json_is_true(json_object_get(s, "reconciling")));
	json_decref(s);
	free(http_get(url, &code));
	CHECK(code == 200);
	CHECK(worker_metric("mcfleet_worker_disengages_total") == 1);
}

static void
test_fleet_outage(void **state)
{
	(void) state;
	/* The coordinator goes away; the worker keeps reconciling. */
	coord_close(&co);
	int64_t end          = now_ms() + 5000 * scale;
	json_t *s            = NULL;
	bool    disconnected = false;
	while (!disconnected && now_ms() < end) {
		json_decref(s);
		s            = worker_status();
		disconnected = s != NULL
		    && json_is_false(json_object_get(s, "connected"));
		if (!disconnected)
			sleep_ms(50);
	}
	json_decref(s);
	CHECK(disconnected);
	patch_myresource("p1", "v3");
	CHECK(wait_configmap("p1", "v3", 10000));
	CHECK(wait_status_projects("p1:synced p3:synced", 1000));
	double engages = worker_metric("mcfleet_worker_engages_total");

	/* A new leader, elsewhere, with a higher term. */
	coord_open(&co);
	size_t mark = coord_mark(&co);
	put_coordinator_lease("coord-b", co.url, 6);
	CHECK(coord_wait_log(&co, mark, "HELLO", 10000));
	pthread_mutex_lock(&co.mtx);
	char hello[512];
	snprintf(hello, sizeof(hello), "%s", co.hello);
	pthread_mutex_unlock(&co.mtx);
	char want[256];
	snprintf(want, sizeof(want), " %s/5 6", lease_uid);
	CHECK(strstr(hello, want) != NULL);
	welcome(&co, lease_uid, 6, "coord-b");
	/* It learns the engaged set before sending any table. */
	CHECK(coord_wait_log(
	    &co, mark, "ACK(6,full,p1:synced,p3:synced)", 5000));
	mark = coord_mark(&co);
	send_snapshot(&co, 7, (const char *[]) { "p1", "p3", NULL });
	CHECK(coord_wait_log(
	    &co, mark, "ACK(7,full,p1:synced,p3:synced)", 5000));
	/* Nothing moved. */
	CHECK(worker_metric("mcfleet_worker_engages_total") == engages);
	CHECK(worker_metric("mcfleet_worker_reconnects_total") >= 1);
}

/* A plane that does not answer: that project is failing with a reason,
 * the others stay synced; it recovers when the plane does. */
static void
test_fleet_failing(void **state)
{
	(void) state;
	mcf_kc *c    = client_at(sim.url);
	json_t *out  = NULL;
	json_t *rule = json_loads("{\"match\":{\"plane\":\"p4\"},"
	                          "\"action\":{\"plane\":\"unavailable\"}}",
	    0, NULL);
	assert_int_equal(
	    mcf_kc_request(c, "POST", "/_sim/faults", rule, &out, NULL), 0);
	json_decref(rule);
	char path[64];
	snprintf(path, sizeof(path), "/_sim/faults/%lld",
	    (long long) json_integer_value(json_object_get(out, "id")));
	json_decref(out);

	size_t mark = coord_mark(&co);
	send_delta(&co, &co.term, 7, 8, (const char *[]) { "p4", NULL }, NULL);
	CHECK(coord_wait_log(&co, mark, "ACK(8,p4:engaging)", 5000));
	CHECK(coord_wait_states(&co, "p1:synced p3:synced p4:failing", 15000));
	json_t *s = worker_status();
	CHECK(s != NULL);
	size_t  i;
	json_t *p;
	bool    reason = false;
	json_array_foreach(json_object_get(s, "projects"), i, p)
	{
		const char *n = json_string_value(json_object_get(p, "name"));
		const char *r
		    = json_string_value(json_object_get(p, "reason"));
		if (strcmp(n, "p4") == 0)
			reason = r != NULL && r[0] != '\0';
	}
	json_decref(s);
	CHECK(reason);
	assert_int_equal(
	    mcf_kc_request(c, "DELETE", path, NULL, NULL, NULL), 0);
	mcf_kc_destroy(c);
	CHECK(coord_wait_states(&co, "p1:synced p3:synced p4:synced", 40000));
	CHECK(wait_configmap("p4", "v1", 20000));
}

static void
test_fleet_sigterm(void **state)
{
	(void) state;
	size_t mark = coord_mark(&co);
	kill(worker_pid, SIGTERM);
	CHECK(coord_wait_log(&co, mark, "LEAVING(SIGTERM)", 5000));
	/* Still reconciling while it waits for the hand-off. */
	patch_myresource("p3", "v4");
	CHECK(wait_configmap("p3", "v4", 10000));
	send_delta(&co, &co.term, 8, 9, NULL,
	    (const char *[]) { "p1", "p3", "p4", NULL });
	CHECK(coord_wait_log(&co, mark, "STOPPED(p1,p3,p4)", 5000));
	assert_int_equal(worker_wait(10000), 0);
	/* Its Lease is released. */
	mcf_kc    *c   = client_at(sim.url);
	mcf_kc_ref ref = { "coordination.k8s.io", "v1", "leases", NS,
		"mcfleet-worker-" WNAME };
	json_t    *l   = NULL;
	assert_int_equal(mcf_kc_get(c, &ref, &l, NULL), 0);
	assert_string_equal(json_string_value(json_object_get(
	                        json_object_get(l, "spec"), "holderIdentity")),
	    "");
	json_decref(l);
	mcf_kc_destroy(c);
}

static int
group_setup(void **state)
{
	(void) state;
	const char *s = getenv("MCF_TEST_TIMEOUT_SCALE");
	if (s != NULL && atoi(s) > 0)
		scale = atoi(s);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	snprintf(dir, sizeof(dir), "/tmp/worker-fleet-test-XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(kc_path, sizeof(kc_path), "%s/kubeconfig", dir);
	snprintf(key_path, sizeof(key_path), "%s/key", dir);
	snprintf(log_path, sizeof(log_path), "%s/worker.log", dir);
	FILE *fp = fopen(key_path, "w");
	if (fp == NULL)
		return -1;
	fprintf(fp, "# test key\n%s\n", KEY);
	fclose(fp);
	const char *extra[]
	    = { "--kubeconfig-out", kc_path, "--request-log", "100000", NULL };
	if (ks_spawn_start(&sim, extra, scale) != 0)
		return -1;
	kcfg.server    = sim.url;
	kcfg.namespace = "default";

	mcf_proto_keyset ks;
	if (mcf_proto_keyset_init(&ks, KEY, strlen(KEY), NULL, 0, NULL) != 0
	    || mcf_proto_keys_create_static(&keys, &ks) != 0
	    || mcf_proto_replay_create(&c_replay, 0) != 0
	    || mcf_proto_reject_stats_create(&c_stats) != 0)
		return -1;
	mcf_proto_keyset_clear(&ks);

	mcf_kc *c = client_at(sim.url);
	json_decref(post(c, "", "v1", "namespaces", NULL,
	    "{\"metadata\":{\"name\":\"" NS "\"}}"));
	mcf_kc_destroy(c);
	project_with_myresource("p1");
	project_with_myresource("p2");
	project_with_myresource("p3");
	project_with_myresource("p4");
	coord_open(&co);
	put_coordinator_lease("coord-a", co.url, 5);
	return 0;
}

static int
group_teardown(void **state)
{
	(void) state;
	if (worker_pid > 0) {
		kill(worker_pid, SIGKILL);
		waitpid(worker_pid, NULL, 0);
	}
	coord_close(&co);
	ks_spawn_stop(&sim, scale);
	mcf_proto_reject_stats_destroy(c_stats);
	mcf_proto_replay_destroy(c_replay);
	mcf_proto_keys_destroy(keys);
	if (getenv("MCF_TEST_KEEP") == NULL) {
		unlink(kc_path);
		unlink(key_path);
		unlink(log_path);
		rmdir(dir);
	} else {
		fprintf(stderr, "kept %s\n", dir);
	}
	curl_global_cleanup();
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fleet_join),
		cmocka_unit_test(test_fleet_snapshot),
		cmocka_unit_test(test_fleet_delta),
		cmocka_unit_test(test_fleet_gap),
		cmocka_unit_test(test_fleet_fencing),
		cmocka_unit_test(test_fleet_own_lease),
		cmocka_unit_test(test_fleet_outage),
		cmocka_unit_test(test_fleet_failing),
		cmocka_unit_test(test_fleet_sigterm),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

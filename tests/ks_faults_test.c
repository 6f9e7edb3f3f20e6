/*
 * ks_faults_test.c — kubesim's fault injection as a client sees it
 * (KUBE_API.md §7, the contract, and the /_sim/ endpoints of part 1):
 * one test per rule action, the rule matching and counting knobs, rule
 * management, and /_sim/touch, /_sim/bookmark, /_sim/restart, /_sim/load
 * and /_sim/clock.
 *
 * Each test gets a fresh ks_sim (tests/ks_fixture.c) built exactly as
 * kubesim's main.c builds it (fault rules included, with a fixed --seed), listening on 127.0.0.1
 * port 0, with ks_httpd_run() in its own thread.  The test thread drives it
 * with libcurl: every request on a fresh connection (so an injected reset
 * or hang cannot be retried by curl on a reused one), one multi handle per
 * watch stream, and raw sockets where a client must misbehave (a reader
 * that stalls, a connection that is reset before any byte arrives).  What
 * is asserted is what a client observes: status codes, headers, Status
 * bodies, how a stream ends (terminating chunk, abrupt close, half a JSON
 * line), timing with generous bounds, and the /_sim/requests log.
 *
 * Assertions about the contract are soft (EXPECT_*): a test records every
 * broken expectation with the request and the reply, then fails at its end.
 * Steps a test cannot go on without are hard (NEED_*).  Everything a test
 * allocates is registered in the fixture and freed by the teardown.  Every
 * wait is bounded by a deadline stretched by MCF_TEST_TIMEOUT_SCALE under
 * the sanitizers; lower bounds on time are never stretched.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>

#include "alloc.h"
#include "api.h"
#include "err.h"
#include "faults.h"
#include "httpd.h"
#include "json.h"
#include "log.h"
#include "milo.h"
#include "ops.h"
#include "sim.h"
#include "store.h"
#include "watch.h"

#include "ks_fixture.h"

#define MILO_GV "/apis/resourcemanager.miloapis.com/v1alpha1"
#define PROJECTS MILO_GV "/projects"
#define SEED 4242
#define TOO_LARGE_PREFIX "Timeout: Too large resource version"
#define CONTINUE_410_PREFIX                                                   \
	"The provided continue parameter is too old to display a consistent " \
	"list result."

/* Short local names for the shared fixture (tests/ks_fixture.h). */
typedef ks_fx       fx;
typedef ks_fx_resp  resp;
typedef ks_fx_dbuf  dbuf;
typedef ks_fx_watch wstream;

#define timeout_scale ks_fx_timeout_scale()
#define now_ms ks_fx_now_ms
#define deadline ks_fx_deadline
#define sleep_ms ks_fx_sleep_ms
#define J ks_fx_json_at
#define JS ks_fx_json_str
#define JI ks_fx_json_int
#define nz ks_fx_nz
#define rv_num ks_fx_rv_num
#define keep_str ks_fx_keep_str
#define S ks_fx_str
#define Q ks_fx_quote
#define D ks_fx_dump
#define EXPECT KS_FX_EXPECT
#define EXPECT_CODE KS_FX_EXPECT_CODE
#define EXPECT_STR KS_FX_EXPECT_STR
#define EXPECT_JS KS_FX_EXPECT_JS
#define EXPECT_INT KS_FX_EXPECT_INT
#define EXPECT_STATUS KS_FX_EXPECT_STATUS
#define EXPECT_STATUS_PREFIX KS_FX_EXPECT_STATUS_PREFIX
#define NEED_CODE KS_FX_NEED_CODE
#define NEED KS_FX_NEED
#define finish ks_fx_finish
#define GET ks_fx_get
#define POST ks_fx_post
#define PUT ks_fx_put
#define MERGE ks_fx_merge
#define header_in ks_fx_header_in
#define header ks_fx_header
#define watch_open ks_fx_watch_open
#define watch_close ks_fx_watch_close
#define watch_wait ks_fx_watch_wait
#define watch_wait_done ks_fx_watch_wait_done
#define ev ks_fx_ev
#define ev_type ks_fx_ev_type
#define ev_summary ks_fx_ev_summary
typedef ks_fx_ropt ropt;
typedef ks_fx_srv  srv;

#define kept ks_fx_kept
#define esc ks_fx_escape
#define request ks_fx_request
#define DEL(f, path) ks_fx_del((f), (path), NULL)
#define EXPECT_STATUS_OBJ KS_FX_EXPECT_STATUS_OBJ
#define MSG_ANY KS_FX_MSG_ANY
#define MSG_EXACT KS_FX_MSG_EXACT
#define MSG_PREFIX KS_FX_MSG_PREFIX
#define dbuf_add ks_fx_dbuf_add
#define watch_open_ua ks_fx_watch_open_ua
#define watch_idle_all ks_fx_watch_idle_all

/* --- the fixture ------------------------------------------------------ */

/* A kubesim as main.c builds it with the fault rules (fixed seed) and
 * Table output. */
static srv *
srv_start(uint64_t seed, int64_t bookmark_ms)
{
	ks_fx_srv_options o = { .bookmark_ms = bookmark_ms,
		.ready_after_ms                 = -1,
		.table                          = true,
		.faults                         = true,
		.seed                           = seed };
	return ks_fx_srv_start(&o);
}

/* A fresh kubesim per test; every request on a fresh connection. */
static int
fx_setup(void **state, int64_t bookmark_ms)
{
	ks_fx_options o = { .srv = { .bookmark_ms = bookmark_ms,
		                .ready_after_ms       = -1,
		                .table                = true,
		                .faults               = true,
		                .seed                 = SEED },
		.name                               = "ks_faults_test.c",
		.fresh                              = true };
	*state = ks_fx_create(&o);
	return 0;
}

static int
setup(void **state)
{
	return fx_setup(state, 60 * 1000);
}

/* Bookmarks every 300 ms unless a rule says otherwise. */
static int
setup_bm(void **state)
{
	return fx_setup(state, 300);
}

static int
teardown(void **state)
{
	ks_fx_destroy(*state);
	return 0;
}

/* --- the API used by the tests ------------------------------------------- */

static const char *
cm_path(fx *f, const char *pfx, const char *ns, const char *name)
{
	if (name == NULL)
		return S(f, "%s/api/v1/namespaces/%s/configmaps", pfx, ns);
	return S(f, "%s/api/v1/namespaces/%s/configmaps/%s", pfx, ns, name);
}

static const char *
proj_prefix(fx *f, const char *project)
{
	return S(f, PROJECTS "/%s/control-plane", project);
}

/* The plane's RV counter as a namespace list reports it. */
static uint64_t
plane_rv(fx *f, const char *pfx)
{
	resp *r = GET(f, S(f, "%s/api/v1/namespaces", pfx));
	NEED_CODE(f, r, 200);
	const char *rv = JS(r->j, "metadata.resourceVersion");
	NEED(f, rv != NULL);
	return rv_num(rv);
}

static void
mk_ns(fx *f, const char *pfx, const char *name)
{
	resp *r = POST(f, S(f, "%s/api/v1/namespaces", pfx),
	    Q(f, "{'metadata':{'name':'%s'}}", name));
	NEED_CODE(f, r, 201);
}

/* Creates ConfigMap ns/name with data {k: v}; the namespace is created
 * first unless it is "default". */
static resp *
mk_cm(fx *f, const char *pfx, const char *ns, const char *name, const char *k,
    const char *v)
{
	resp *r = POST(f, cm_path(f, pfx, ns, NULL),
	    Q(f, "{'metadata':{'name':'%s'},'data':{'%s':'%s'}}", name, k, v));
	if (r->code == 404 && strcmp(ns, "default") != 0) {
		mk_ns(f, pfx, ns);
		r = POST(f, cm_path(f, pfx, ns, NULL),
		    Q(f, "{'metadata':{'name':'%s'},'data':{'%s':'%s'}}", name,
		        k, v));
	}
	NEED_CODE(f, r, 201);
	return r;
}

static void
mk_project(fx *f, const char *name)
{
	resp *r = POST(f, PROJECTS,
	    Q(f,
	        "{'apiVersion':'resourcemanager.miloapis.com/v1alpha1',"
	        "'kind':'Project','metadata':{'name':'%s'},"
	        "'spec':{'ownerRef':{'kind':'Organization','name':'org1'}}}",
	        name));
	NEED_CODE(f, r, 201);
}

/* Adds a fault rule (' for "); returns its id. */
static uint64_t add_rule(fx *f, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static uint64_t
add_rule(fx *f, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s = mcf_vasprintf(fmt, ap);
	va_end(ap);
	for (char *p = s; *p != '\0'; p++)
		if (*p == '\'')
			*p = '"';
	resp *r = POST(f, "/_sim/faults", keep_str(f, s));
	NEED_CODE(f, r, 201);
	long long id = JI(r->j, "id");
	NEED(f, id > 0);
	return (uint64_t) id;
}

/* The GET /_sim/faults entry of rule `id`, or NULL. */
static json_t *
rule_info(fx *f, uint64_t id)
{
	resp *r = GET(f, "/_sim/faults");
	NEED_CODE(f, r, 200);
	size_t  i;
	json_t *it;
	json_array_foreach(J(r->j, "items"), i, it)
	{
		if (JI(it, "id") == (long long) id)
			return it;
	}
	return NULL;
}

static long long
rule_hits(fx *f, uint64_t id)
{
	return JI(rule_info(f, id), "hits");
}

static long long
rule_matches(fx *f, uint64_t id)
{
	return JI(rule_info(f, id), "matches");
}

/* The last /_sim/requests entry for `path` (query ignored), or NULL. */
static json_t *
log_entry(fx *f, const char *path)
{
	resp *r = GET(f, "/_sim/requests");
	NEED_CODE(f, r, 200);
	json_t *found = NULL;
	size_t  i;
	json_t *it;
	json_array_foreach(J(r->j, "items"), i, it)
	{
		const char *p = JS(it, "path");
		if (p != NULL && strcmp(p, path) == 0)
			found = it;
	}
	return found;
}

/* How many /_sim/requests entries have `path`. */
static size_t
log_count(fx *f, const char *path)
{
	resp *r = GET(f, "/_sim/requests");
	NEED_CODE(f, r, 200);
	size_t  n = 0, i;
	json_t *it;
	json_array_foreach(J(r->j, "items"), i, it)
	{
		const char *p = JS(it, "path");
		n += p != NULL && strcmp(p, path) == 0;
	}
	return n;
}

/* The /_sim/watchers entry whose user_agent is `ua`, or NULL. */
static json_t *
watcher_by_ua(fx *f, const char *ua)
{
	resp *r = GET(f, "/_sim/watchers");
	NEED_CODE(f, r, 200);
	size_t  i;
	json_t *it;
	json_array_foreach(J(r->j, "items"), i, it)
	{
		const char *u = JS(it, "user_agent");
		if (u != NULL && strcmp(u, ua) == 0)
			return it;
	}
	return NULL;
}

static size_t
watcher_count_plane(fx *f, const char *plane)
{
	resp *r = GET(f, "/_sim/watchers");
	NEED_CODE(f, r, 200);
	size_t  n = 0, i;
	json_t *it;
	json_array_foreach(J(r->j, "items"), i, it)
	{
		const char *p = JS(it, "plane");
		n += p != NULL && strcmp(p, plane) == 0;
	}
	return n;
}

/* Standard base64 decoding (continue tokens); NULL when malformed. */
static char *
b64dec(const char *s, size_t *outlen)
{
	size_t         n   = strlen(s);
	unsigned char *out = mcf_malloc(n + 1);
	size_t         o = 0, bits = 0;
	unsigned       acc = 0;
	for (size_t i = 0; i < n && s[i] != '='; i++) {
		const char *tbl = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopq"
		                  "rstuvwxyz0123"
		                  "456789+/";
		const char *p   = strchr(tbl, s[i]);
		if (p == NULL || s[i] == '\0') {
			free(out);
			return NULL;
		}
		acc = (acc << 6) | (unsigned) (p - tbl);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (unsigned char) ((acc >> bits) & 0xff);
		}
	}
	out[o]  = '\0';
	*outlen = o;
	return (char *) out;
}

/* --- watch streams ---------------------------------------------------- */

/* Keeps reading for `ms` (not stretched), even after the stream ended. */
static size_t
watch_idle(wstream *w, int ms)
{
	watch_idle_all(&w, 1, ms);
	return json_array_size(w->events);
}

static size_t
count_type(const wstream *w, const char *type)
{
	size_t n = 0;
	for (size_t i = 0; i < json_array_size(w->events); i++)
		n += ev_type(w, i) && strcmp(ev_type(w, i), type) == 0;
	return n;
}

/* "TYPE:name ..." of the events, for messages. */
/* How the stream ended: "open", "clean" (terminating chunk), "abrupt"
 * (closed without it), or curl's error text. */
static const char *
end_kind(const wstream *w)
{
	if (!w->done)
		return "open";
	if (w->result == CURLE_OK)
		return "clean";
	if (w->result == CURLE_PARTIAL_FILE || w->result == CURLE_RECV_ERROR)
		return "abrupt";
	return curl_easy_strerror(w->result);
}

/* Bytes after the last complete line. */
static size_t
trailing(const wstream *w)
{
	return w->data.len - w->off;
}

/* --- raw sockets ------------------------------------------------------ */

/* Connects to the fixture's server; `rcvbuf` > 0 shrinks the receive
 * buffer first (a reader that stalls then fills up quickly). */
static int
raw_connect(fx *f, int rcvbuf)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	NEED(f, fd >= 0);
	ks_fx_keep_fd(f, fd);
	if (rcvbuf > 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	struct sockaddr_in sa = { .sin_family = AF_INET,
		.sin_port = htons((uint16_t) ks_httpd_port(f->v->s.httpd)) };
	sa.sin_addr.s_addr    = htonl(INADDR_LOOPBACK);
	NEED(f, connect(fd, (struct sockaddr *) &sa, sizeof(sa)) == 0);
	return fd;
}

static void
raw_send(fx *f, int fd, const char *text)
{
	size_t n = strlen(text), o = 0;
	while (o < n) {
		ssize_t k = send(fd, text + o, n - o, MSG_NOSIGNAL);
		NEED(f, k > 0);
		o += (size_t) k;
	}
}

/* A GET request with User-Agent `ua`. */
static int
raw_get(fx *f, const char *path, const char *ua, int rcvbuf)
{
	int fd = raw_connect(f, rcvbuf);
	raw_send(f, fd,
	    S(f,
	        "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: %s\r\n\r\n",
	        path, ua));
	return fd;
}

/* Reads until EOF, an error or `ms`; returns 1 on EOF, -errno on an
 * error, 0 when the time ran out. */
static int
raw_read(int fd, dbuf *out, int ms)
{
	int64_t end = now_ms() + ms;
	char    buf[16384];
	for (;;) {
		int64_t left = end - now_ms();
		if (left <= 0)
			return 0;
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int           k = poll(&p, 1, (int) left);
		if (k == 0)
			return 0;
		if (k < 0)
			return errno == EINTR ? 0 : -errno;
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		if (n == 0)
			return 1;
		if (n < 0)
			return -errno;
		dbuf_add(out, buf, (size_t) n);
	}
}

/* ===================================================================== */
/* Latency                                                                */
/* ===================================================================== */

static void
test_faults_latency_headers(void **state)
{
	fx *f = *state;
	mk_cm(f, "", "default", "lat", "k", "v");
	const char *p  = cm_path(f, "", "default", "lat");
	uint64_t    id = add_rule(f,
	       "{'match':{'verb':'get','resource':"
	          "'configmaps'},'action':{'latency_ms':600}}");

	resp *r = GET(f, p);
	EXPECT_CODE(f, r, 200);
	EXPECT_JS(f, r, "data.k", "v");
	EXPECT(f, r, r->ttfb_ms >= 550,
	    "first byte after %.0f ms, want >= 600 (latency before headers)",
	    r->ttfb_ms);
	EXPECT(f, r, r->total_ms < 600 + 5000.0 * timeout_scale,
	    "took %.0f ms", r->total_ms);
	EXPECT_INT(f, NULL, rule_hits(f, id), 1);
	/* The delayed request is logged once, with its final status. */
	EXPECT_INT(f, NULL, log_count(f, p), 1);
	json_t *e = log_entry(f, p);
	EXPECT(f, NULL, e != NULL, "no /_sim/requests entry for %s", p);
	EXPECT_INT(f, NULL, JI(e, "status"), 200);

	/* Not matched: no delay. */
	r = GET(f, "/api/v1/namespaces/default");
	EXPECT_CODE(f, r, 200);
	EXPECT(f, r, r->total_ms < 450, "unmatched request took %.0f ms",
	    r->total_ms);
	r = GET(f, cm_path(f, "", "default", NULL));
	EXPECT(f, r, r->total_ms < 450, "a list (verb list) took %.0f ms",
	    r->total_ms);

	/* Watches are delayed before their headers too. */
	add_rule(f, "{'match':{'verb':'watch'},'action':{'latency_ms':500}}");
	wstream *w = watch_open(
	    f, S(f, "%s?watch=1", cm_path(f, "", "default", NULL)));
	EXPECT(f, NULL, w->headers_ms - w->opened_ms >= 450,
	    "watch headers after %lld ms, want >= 500",
	    (long long) (w->headers_ms - w->opened_ms));
	EXPECT_INT(f, NULL, w->code, 200);
	watch_wait(w, 1, 3000);
	EXPECT(f, NULL, count_type(w, "ADDED") >= 1,
	    "delayed watch still streams its events: %s", ev_summary(f, w));
	finish(f);
}

static void
test_faults_latency_body(void **state)
{
	fx *f = *state;
	for (int i = 0; i < 3; i++)
		mk_cm(f, "", "lb", S(f, "c%d", i), "k",
		    "some-value-to-make-the-body-longer");
	uint64_t id = add_rule(f,
	    "{'match':{'verb':'list','namespace':'lb'},"
	    "'action':{'latency_ms':800,'phase':'body'}}");
	resp    *r  = GET(f, cm_path(f, "", "lb", NULL));
	EXPECT_CODE(f, r, 200);
	EXPECT(f, r, r->ttfb_ms < 400,
	    "body-phase latency must not hold the headers: first byte "
	    "after %.0f ms",
	    r->ttfb_ms);
	EXPECT(f, r, r->total_ms >= 750,
	    "body completed after %.0f ms, want >= 800", r->total_ms);
	EXPECT(f, r, json_array_size(J(r->j, "items")) == 3,
	    "the delayed body is complete JSON with 3 items");
	EXPECT_JS(f, r, "kind", "ConfigMapList");
	EXPECT_INT(f, NULL, rule_hits(f, id), 1);
	EXPECT_INT(f, NULL,
	    JI(log_entry(f, cm_path(f, "", "lb", NULL)), "status"), 200);
	finish(f);
}

static void
test_faults_latency_jitter(void **state)
{
	fx *f = *state;
	mk_cm(f, "", "default", "jit", "k", "v");
	add_rule(f,
	    "{'match':{'name':'jit'},"
	    "'action':{'latency_ms':100,'jitter_ms':400}}");
	double min = 1e9, max = 0;
	for (int i = 0; i < 8; i++) {
		resp *r = GET(f, cm_path(f, "", "default", "jit"));
		EXPECT_CODE(f, r, 200);
		EXPECT(f, r, r->total_ms >= 95,
		    "latency %.0f ms below latency_ms 100", r->total_ms);
		EXPECT(f, r, r->total_ms < 500 + 2000.0 * timeout_scale,
		    "latency %.0f ms far above latency_ms + jitter_ms",
		    r->total_ms);
		min = r->total_ms < min ? r->total_ms : min;
		max = r->total_ms > max ? r->total_ms : max;
	}
	EXPECT(f, NULL, max - min >= 40,
	    "jitter 400 ms gave latencies between %.0f and %.0f ms", min, max);
	finish(f);
}

static void
test_faults_latency_adds_up(void **state)
{
	fx *f = *state;
	mk_cm(f, "", "default", "sum", "k", "v");
	add_rule(f, "{'match':{'name':'sum'},'action':{'latency_ms':300}}");
	add_rule(f, "{'match':{'verb':'get'},'action':{'latency_ms':400}}");
	add_rule(f,
	    "{'match':{'name':'sum'},'action':{'status':503},"
	    "'count':1}");
	resp *r = GET(f, cm_path(f, "", "default", "sum"));
	EXPECT_STATUS(f, r, 503, "ServiceUnavailable", NULL);
	EXPECT(f, r, r->total_ms >= 650,
	    "two latency rules of 300 and 400 ms: took %.0f ms, want >= 700",
	    r->total_ms);
	r = GET(f, cm_path(f, "", "default", "sum"));
	EXPECT_CODE(f, r, 200);
	EXPECT(f, r, r->total_ms >= 650, "took %.0f ms, want >= 700",
	    r->total_ms);
	finish(f);
}

/* ===================================================================== */
/* Status replies                                                         */
/* ===================================================================== */

/* RFC 3339 with microseconds: 2006-01-02T15:04:05.000000Z. */
static bool
is_micro_time(const char *s)
{
	if (s == NULL || strlen(s) != 27)
		return false;
	static const char pat[] = "dddd-dd-ddTdd:dd:dd.ddddddZ";
	for (size_t i = 0; i < 27; i++) {
		if (pat[i] == 'd' ? !isdigit((unsigned char) s[i])
		                  : s[i] != pat[i])
			return false;
	}
	return true;
}

static void
test_faults_status_429_retry_after(void **state)
{
	fx         *f  = *state;
	const char *p  = cm_path(f, "", "default", NULL);
	uint64_t    id = add_rule(f,
	       "{'match':{'verb':'list','resource':"
	          "'configmaps'},'action':{'status':429,"
	          "'retry_after':3},'count':1}");
	ropt        o  = { .ua = "kubectl/v1.32.4 (linux/amd64)" };
	resp       *r  = request(f, &o, "GET", S(f, "%s?limit=500", p), NULL);
	EXPECT_STATUS(f, r, 429, "TooManyRequests",
	    "Too many requests, please try again later.");
	EXPECT_STR(f, r, header(f, r, "Retry-After"), "3");
	EXPECT_INT(f, r, JI(r->j, "details.retryAfterSeconds"), 3);
	const char *ct = header(f, r, "Content-Type");
	EXPECT(f, r, ct && strncmp(ct, "application/json", 16) == 0,
	    "Content-Type %s", nz(ct, "(none)"));
	EXPECT(f, r, header(f, r, "Content-Length") != NULL,
	    "a Status reply has a Content-Length");

	/* The request log shows the injected answer. */
	json_t *e = log_entry(f, p);
	EXPECT(f, NULL, e != NULL, "no /_sim/requests entry");
	EXPECT_INT(f, NULL, JI(e, "status"), 429);
	EXPECT_STR(f, NULL, JS(e, "method"), "GET");
	EXPECT_STR(f, NULL, JS(e, "query"), "limit=500");
	EXPECT_STR(f, NULL, JS(e, "plane"), "");
	EXPECT_STR(
	    f, NULL, JS(e, "user_agent"), "kubectl/v1.32.4 (linux/amd64)");
	EXPECT(f, NULL, JI(e, "seq") > 0, "seq %lld", JI(e, "seq"));
	EXPECT(f, NULL, is_micro_time(JS(e, "time")),
	    "time \"%s\" is not RFC 3339 with microseconds",
	    nz(JS(e, "time"), "(null)"));

	/* count 1: the retry goes through. */
	r = GET(f, p);
	EXPECT_CODE(f, r, 200);
	json_t *info = rule_info(f, id);
	EXPECT_INT(f, NULL, JI(info, "hits"), 1);

	/* /_sim/requests?since=N lists the entries after N. */
	long long seq = JI(e, "seq");
	r             = GET(f, S(f, "/_sim/requests?since=%lld", seq));
	EXPECT_CODE(f, r, 200);
	json_t *items = J(r->j, "items");
	EXPECT(f, r,
	    json_array_size(items) >= 1 && JI(items, "0.seq") == seq + 1,
	    "since=%lld: first entry has seq %lld", seq, JI(items, "0.seq"));

	/* On a watch, the 429 comes before streaming: a plain Status. */
	add_rule(f,
	    "{'match':{'verb':'watch'},'action':{'status':429,"
	    "'retry_after':1},'count':1}");
	r = GET(f, S(f, "%s?watch=1", p));
	EXPECT_STATUS(f, r, 429, "TooManyRequests", NULL);
	EXPECT_STR(f, r, header(f, r, "Retry-After"), "1");
	EXPECT(f, r, header(f, r, "Content-Length") != NULL,
	    "a 429 on a watch is an ordinary reply, not a stream");
	finish(f);
}

static void
test_faults_status_429_without_retry_after(void **state)
{
	fx *f = *state;
	add_rule(f,
	    "{'match':{'verb':'list'},'action':{'status':429,"
	    "'message':'slow down'},'count':1}");
	resp *r = GET(f, cm_path(f, "", "default", NULL));
	EXPECT_STATUS(f, r, 429, "TooManyRequests", "slow down");
	EXPECT(f, r, header(f, r, "Retry-After") == NULL,
	    "Retry-After: %s without retry_after",
	    nz(header(f, r, "Retry-After"), ""));
	EXPECT(f, r, J(r->j, "details.retryAfterSeconds") == NULL,
	    "details.retryAfterSeconds without retry_after");
	finish(f);
}

static void
test_faults_status_5xx(void **state)
{
	fx *f = *state;
	mk_cm(f, "", "default", "five", "k", "v");
	const char *p = cm_path(f, "", "default", "five");
	add_rule(f,
	    "{'match':{'name':'five'},'action':{'status':500},"
	    "'count':1}");
	add_rule(f,
	    "{'match':{'name':'five'},'action':{'status':503,"
	    "'retry_after':2},'count':1}");
	add_rule(f,
	    "{'match':{'name':'five'},'action':{'status':504,"
	    "'retry_after':null,'message':'gateway says no'},"
	    "'count':1}");

	resp *r = GET(f, p);
	EXPECT_STATUS(f, r, 500, "InternalError", NULL);
	EXPECT(f, r, header(f, r, "Retry-After") == NULL,
	    "500 without retry_after has Retry-After");
	r = GET(f, p);
	EXPECT_STATUS(f, r, 503, "ServiceUnavailable", NULL);
	EXPECT_STR(f, r, header(f, r, "Retry-After"), "2");
	EXPECT_INT(f, r, JI(r->j, "details.retryAfterSeconds"), 2);
	r = GET(f, p);
	EXPECT_STATUS(f, r, 504, "Timeout", "gateway says no");
	EXPECT(f, r, header(f, r, "Retry-After") == NULL,
	    "504 with retry_after null has Retry-After");
	r = GET(f, p);
	EXPECT_CODE(f, r, 200);
	/* Writes get them as well, and nothing is persisted. */
	uint64_t before = plane_rv(f, "");
	add_rule(f,
	    "{'match':{'verb':'create'},'action':{'status':500},"
	    "'count':1}");
	r = POST(f, cm_path(f, "", "default", NULL),
	    Q(f, "{'metadata':{'name':'never'}}"));
	EXPECT_STATUS(f, r, 500, "InternalError", NULL);
	EXPECT_INT(f, NULL, plane_rv(f, ""), before);
	r = GET(f, cm_path(f, "", "default", "never"));
	EXPECT_CODE(f, r, 404);
	finish(f);
}

/* ===================================================================== */
/* Connections                                                            */
/* ===================================================================== */

static void
test_faults_conn_reset(void **state)
{
	fx         *f = *state;
	const char *p = cm_path(f, "", "default", "boom");
	add_rule(f,
	    "{'match':{'name':'boom'},'action':{'conn':'reset'},"
	    "'count':2}");
	resp *r = request(f, NULL, "GET", p, NULL);
	EXPECT(f, r, r->cres == CURLE_RECV_ERROR,
	    "curl result %d (%s), want CURLE_RECV_ERROR", (int) r->cres,
	    curl_easy_strerror(r->cres));
	EXPECT_INT(f, r, r->code, 0);
	EXPECT_INT(f, r, r->body.len, 0);

	/* A raw client sees ECONNRESET and not one byte. */
	int  fd  = raw_get(f, p, "raw", 0);
	dbuf got = { 0 };
	int  rc  = raw_read(fd, &got, 3000 * timeout_scale);
	EXPECT(f, NULL, rc == -ECONNRESET,
	    "raw read ended with %d (%s), want -ECONNRESET", rc,
	    rc < 0        ? strerror(-rc)
	        : rc == 1 ? "EOF"
	                  : "timeout");
	EXPECT_INT(f, NULL, got.len, 0);
	free(got.p);

	/* The server is fine, and the rule is used up. */
	r = GET(f, p);
	EXPECT_STATUS(f, r, 404, "NotFound", NULL);
	r = GET(f, "/version");
	EXPECT_CODE(f, r, 200);
	finish(f);
}

static void
test_faults_conn_hang(void **state)
{
	fx         *f = *state;
	const char *p = cm_path(f, "", "default", "hang");
	add_rule(f,
	    "{'match':{'name':'hang'},'action':{'conn':'hang'},"
	    "'count':2}");
	ropt    o  = { .timeout_ms = 800 };
	int64_t t0 = now_ms();
	resp   *r  = request(f, &o, "GET", p, NULL);
	int64_t el = now_ms() - t0;
	EXPECT(f, r, r->cres == CURLE_OPERATION_TIMEDOUT,
	    "curl result %d (%s), want a client timeout", (int) r->cres,
	    curl_easy_strerror(r->cres));
	EXPECT(f, r, el >= 750, "gave up after %lld ms", (long long) el);
	EXPECT_INT(f, r, r->code, 0);

	/* A second client hangs too, while the server serves others. */
	int fd = raw_get(f, p, "raw-hang", 0);
	r      = GET(f, "/healthz");
	EXPECT_CODE(f, r, 200);
	EXPECT(f, r, r->total_ms < 1000, "healthz took %.0f ms", r->total_ms);
	dbuf got = { 0 };
	int  rc  = raw_read(fd, &got, 700);
	EXPECT(f, NULL, rc == 0 && got.len == 0,
	    "hung request got %zu bytes (read result %d)", got.len, rc);
	free(got.p);
	r = GET(f, cm_path(f, "", "default", NULL));
	EXPECT_CODE(f, r, 200);
	r = GET(f, p);
	EXPECT_CODE(f, r, 404);
	finish(f);
}

static void
test_faults_conn_truncate(void **state)
{
	fx *f = *state;
	mk_cm(f, "", "default", "tr", "key",
	    "a value long enough that twenty bytes are only the start");
	const char *p    = cm_path(f, "", "default", "tr");
	resp       *full = GET(f, p);
	NEED_CODE(f, full, 200);
	add_rule(f,
	    "{'match':{'name':'tr'},'action':{'conn':'truncate',"
	    "'after_bytes':20},'count':1}");
	resp *r = request(f, NULL, "GET", p, NULL);
	EXPECT(f, r, r->cres == CURLE_PARTIAL_FILE,
	    "curl result %d (%s), want CURLE_PARTIAL_FILE", (int) r->cres,
	    curl_easy_strerror(r->cres));
	EXPECT_INT(f, r, r->code, 200);
	EXPECT_INT(f, r, r->body.len, 20);
	EXPECT(f, r, r->j == NULL, "a cut body must not parse as JSON");
	EXPECT(f, r,
	    r->body.p != NULL && memcmp(r->body.p, full->body.p, 20) == 0,
	    "the 20 bytes are the start of the real body");
	const char *cl = header(f, r, "Content-Length");
	EXPECT(f, r, cl != NULL && (size_t) atol(cl) == full->body.len,
	    "Content-Length %s announces the whole body (%zu)",
	    nz(cl, "(none)"), full->body.len);
	r = GET(f, p);
	EXPECT_CODE(f, r, 200);
	EXPECT_INT(f, r, r->body.len, full->body.len);
	finish(f);
}

/* Response shaping on watch streams: the body of a watch is its events,
 * so truncate, throttle and body-phase latency apply to it as well. */
static void
test_faults_shaping_on_watch(void **state)
{
	fx *f = *state;
	for (int i = 0; i < 3; i++)
		mk_cm(f, "", "sw", S(f, "c%d", i), "k", "v");
	const char *wp = S(f, "%s?watch=1", cm_path(f, "", "sw", NULL));

	uint64_t tr = add_rule(f,
	    "{'match':{'verb':'watch','namespace':'sw'},"
	    "'action':{'conn':'truncate','after_bytes':"
	    "30},'count':1}");
	wstream *w  = watch_open(f, wp);
	watch_wait_done(w, 3000);
	EXPECT(f, NULL, w->done && w->data.len <= 30 + 16,
	    "truncate after_bytes 30 on a watch: stream %s after %zu bytes "
	    "(%s)",
	    end_kind(w), w->data.len, ev_summary(f, w));
	EXPECT(f, NULL, strcmp(end_kind(w), "abrupt") == 0,
	    "truncated watch ends %s, want abrupt", end_kind(w));
	EXPECT_INT(f, NULL, rule_hits(f, tr), 1);

	add_rule(f,
	    "{'match':{'verb':'watch','namespace':'sw'},"
	    "'action':{'throttle_bps':200},'count':1}");
	w          = watch_open(f, wp);
	int64_t t0 = w->opened_ms;
	watch_wait(w, 3, 8000);
	int64_t el = now_ms() - t0;
	EXPECT(f, NULL, el >= 1500,
	    "throttle_bps 200: three events (~%zu bytes) arrived in %lld ms",
	    w->data.len, (long long) el);

	add_rule(f,
	    "{'match':{'verb':'watch','namespace':'sw'},"
	    "'action':{'latency_ms':800,'phase':'body'},'count':1}");
	w  = watch_open(f, wp);
	t0 = w->opened_ms;
	watch_wait(w, 3, 5000);
	el = now_ms() - t0;
	EXPECT(f, NULL, el >= 750,
	    "body-phase latency 800 ms: the watch's events all arrived after "
	    "%lld ms",
	    (long long) el);
	finish(f);
}

/* ===================================================================== */
/* Watch close and expire                                                 */
/* ===================================================================== */

/* Three ConfigMaps in `ns`; returns the watch path (RV unset). */
static const char *
three_cms(fx *f, const char *ns)
{
	for (int i = 0; i < 3; i++)
		mk_cm(f, "", ns, S(f, "c%d", i), "k", "v");
	return S(f, "%s?watch=1", cm_path(f, "", ns, NULL));
}

static void
test_faults_watch_close_clean(void **state)
{
	fx         *f  = *state;
	const char *wp = three_cms(f, "wc");
	uint64_t    id = add_rule(f,
	       "{'match':{'namespace':'wc'},'action':{"
	          "'watch':'close','after_events':2,"
	          "'mode':'clean'}}");
	/* A list is not a watch: untouched, and not counted. */
	resp *r = GET(f, cm_path(f, "", "wc", NULL));
	EXPECT_CODE(f, r, 200);
	EXPECT_INT(f, NULL, rule_matches(f, id), 0);

	wstream *w = watch_open(f, wp);
	EXPECT_INT(f, NULL, w->code, 200);
	EXPECT(f, NULL, watch_wait_done(w, 3000), "stream still open");
	EXPECT_INT(f, NULL, json_array_size(w->events), 2);
	EXPECT_INT(f, NULL, count_type(w, "ADDED"), 2);
	EXPECT_STR(f, NULL, end_kind(w), "clean");
	EXPECT_INT(f, NULL, trailing(w), 0);
	EXPECT_INT(f, NULL, rule_hits(f, id), 1);
	EXPECT_INT(f, NULL, rule_matches(f, id), 1);
	finish(f);
}

static void
test_faults_watch_close_abrupt(void **state)
{
	fx         *f  = *state;
	const char *wp = three_cms(f, "wa");
	add_rule(f,
	    "{'match':{'namespace':'wa'},'action':{'watch':'close',"
	    "'after_events':2,'mode':'abrupt'}}");
	wstream *w = watch_open(f, wp);
	EXPECT(f, NULL, watch_wait_done(w, 3000), "stream still open");
	EXPECT_INT(f, NULL, json_array_size(w->events), 2);
	EXPECT_INT(f, NULL, w->bad, 0);
	EXPECT_STR(f, NULL, end_kind(w), "abrupt");
	EXPECT_INT(f, NULL, trailing(w), 0);
	finish(f);
}

static void
test_faults_watch_close_midline(void **state)
{
	fx         *f  = *state;
	const char *wp = three_cms(f, "wm");
	add_rule(f,
	    "{'match':{'namespace':'wm'},'action':{'watch':'close',"
	    "'after_events':1,'mode':'midline'}}");
	wstream *w = watch_open(f, wp);
	EXPECT(f, NULL, watch_wait_done(w, 3000), "stream still open");
	EXPECT_INT(f, NULL, json_array_size(w->events), 1);
	EXPECT_STR(f, NULL, ev_type(w, 0), "ADDED");
	EXPECT_STR(f, NULL, end_kind(w), "abrupt");
	EXPECT(f, NULL, trailing(w) > 0,
	    "midline: half a JSON line after the last event");
	if (trailing(w) > 0) {
		json_error_t e;
		json_t *j = json_loadb(w->data.p + w->off, trailing(w), 0, &e);
		EXPECT(f, NULL, j == NULL,
		    "the half line must not parse: %.*s", (int) trailing(w),
		    w->data.p + w->off);
		json_decref(j);
		EXPECT(f, NULL, w->data.p[w->off] == '{',
		    "the half line starts like an event: %.*s",
		    (int) trailing(w), w->data.p + w->off);
	}
	finish(f);
}

static void
test_faults_watch_close_after_s(void **state)
{
	fx *f = *state;
	mk_ns(f, "", "ws");
	uint64_t    rv = plane_rv(f, "");
	const char *wp = S(f, "%s?watch=1&resourceVersion=%llu",
	    cm_path(f, "", "ws", NULL), (unsigned long long) rv);
	add_rule(f,
	    "{'match':{'namespace':'ws'},'action':{'watch':'close',"
	    "'after_s':1,'mode':'clean'},'count':1}");
	add_rule(f,
	    "{'match':{'namespace':'ws'},'action':{'watch':'close',"
	    "'after_s':0.5,'mode':'abrupt'},'count':1}");
	wstream *a = watch_open(f, wp);
	wstream *b = watch_open(f, wp);
	/* Events before the deadline still flow. */
	mk_cm(f, "", "ws", "early", "k", "v");
	watch_wait_done(a, 4000);
	watch_wait_done(b, 4000);
	int64_t la = a->done_ms - a->opened_ms, lb = b->done_ms - b->opened_ms;
	EXPECT(f, NULL,
	    a->done && la >= 900 && la < 1000 + 3000 * timeout_scale,
	    "after_s 1 ended after %lld ms (%s)", (long long) la, end_kind(a));
	EXPECT_STR(f, NULL, end_kind(a), "clean");
	EXPECT(f, NULL,
	    b->done && lb >= 450 && lb < 500 + 3000 * timeout_scale,
	    "after_s 0.5 ended after %lld ms (%s)", (long long) lb,
	    end_kind(b));
	EXPECT_STR(f, NULL, end_kind(b), "abrupt");
	EXPECT_INT(f, NULL, count_type(a, "ADDED"), 1);
	EXPECT_INT(f, NULL, count_type(b, "ADDED"), 1);
	finish(f);
}

static void
test_faults_watch_expire_event(void **state)
{
	fx *f = *state;
	mk_cm(f, "", "we", "a", "k", "v");
	uint64_t    rv  = plane_rv(f, "");
	const char *col = cm_path(f, "", "we", NULL);
	uint64_t    id  = add_rule(f,
	        "{'match':{'namespace':'we'},"
	            "'action':{'watch':'expire'}}");
	/* RV unset and RV 0 are not expired. */
	wstream *w0 = watch_open(f, S(f, "%s?watch=1", col));
	wstream *w1 = watch_open(f, S(f, "%s?watch=1&resourceVersion=0", col));
	watch_wait(w0, 1, 2000);
	watch_wait(w1, 1, 2000);
	wstream *ws[] = { w0, w1 };
	watch_idle_all(ws, 2, 300);
	for (size_t i = 0; i < 2; i++) {
		EXPECT(f, NULL,
		    !ws[i]->done && count_type(ws[i], "ERROR") == 0,
		    "watch with RV %s: %s, events %s", i ? "0" : "unset",
		    end_kind(ws[i]), ev_summary(f, ws[i]));
		EXPECT_INT(f, NULL, count_type(ws[i], "ADDED"), 1);
	}
	EXPECT_INT(f, NULL, rule_matches(f, id), 0);

	wstream *w = watch_open(f,
	    S(f, "%s?watch=1&resourceVersion=%llu", col,
	        (unsigned long long) rv));
	EXPECT_INT(f, NULL, w->code, 200);
	EXPECT(f, NULL, watch_wait_done(w, 3000), "expired watch still open");
	EXPECT_INT(f, NULL, json_array_size(w->events), 1);
	EXPECT_STR(f, NULL, ev_type(w, 0), "ERROR");
	EXPECT_STATUS_OBJ(f, NULL, J(ev(w, 0), "object"), 410, "Expired",
	    MSG_PREFIX, "too old resource version");
	EXPECT_STR(f, NULL, end_kind(w), "clean");
	EXPECT_INT(f, NULL, rule_hits(f, id), 1);
	finish(f);
}

static void
test_faults_watch_expire_http(void **state)
{
	fx *f = *state;
	mk_cm(f, "", "wh", "a", "k", "v");
	uint64_t    rv  = plane_rv(f, "");
	const char *col = cm_path(f, "", "wh", NULL);
	add_rule(f,
	    "{'match':{'namespace':'wh'},'action':{'watch':'expire',"
	    "'form':'http'}}");
	resp *r = GET(f,
	    S(f, "%s?watch=1&resourceVersion=%llu", col,
	        (unsigned long long) rv));
	EXPECT_STATUS_PREFIX(f, r, 410, "Expired", "too old resource version");
	EXPECT(f, r, header(f, r, "Content-Length") != NULL,
	    "HTTP 410 form is a plain reply, not a stream");
	/* RV unset: a normal stream. */
	wstream *w = watch_open(f, S(f, "%s?watch=1", col));
	EXPECT_INT(f, NULL, w->code, 200);
	watch_wait(w, 1, 2000);
	EXPECT_STR(f, NULL, ev_type(w, 0), "ADDED");
	finish(f);
}

static void
test_faults_watch_expire_storm(void **state)
{
	fx *f = *state;
	mk_cm(f, "", "es", "a", "k", "v");
	uint64_t    rv  = plane_rv(f, "");
	const char *col = cm_path(f, "", "es", NULL);
	const char *wrv = S(f, "%s?watch=1&resourceVersion=%llu", col,
	    (unsigned long long) rv);
	int64_t     t0  = now_ms(); /* the storm starts after t0 ... */
	add_rule(f,
	    "{'match':{'namespace':'es'},'action':{'watch':"
	    "'expire_storm','for_s':2}}");
	int64_t t1 = now_ms(); /* ... and before t1 */
	for (int i = 0; i < 4; i++) {
		wstream *w = watch_open(f, wrv);
		watch_wait_done(w, 2000);
		EXPECT(f, NULL,
		    w->done && count_type(w, "ERROR") == 1
		        && JI(ev(w, 0), "object.code") == 410,
		    "watch %d in the storm: %s, events %s", i, end_kind(w),
		    ev_summary(f, w));
		watch_close(w);
	}
	NEED(f, now_ms() - t0 < 1800); /* still inside the window */
	wstream *plain = watch_open(f, S(f, "%s?watch=1", col));
	watch_wait(plain, 1, 2000);
	EXPECT(f, NULL, !plain->done && count_type(plain, "ADDED") == 1,
	    "RV-unset watch during the storm: %s %s", end_kind(plain),
	    ev_summary(f, plain));

	/* After the window: watches resume normally. */
	while (now_ms() - t1 < 2200)
		sleep_ms(50);
	wstream *w = watch_open(f, wrv);
	watch_idle(w, 300);
	EXPECT(f, NULL, !w->done && count_type(w, "ERROR") == 0,
	    "watch after the storm: %s %s", end_kind(w), ev_summary(f, w));
	mk_cm(f, "", "es", "b", "k", "v");
	watch_wait(w, 1, 2000);
	EXPECT_STR(f, NULL, ev_type(w, 0), "ADDED");
	finish(f);
}

/* ===================================================================== */
/* Lists                                                                  */
/* ===================================================================== */

static void
test_faults_list_expire_continue(void **state)
{
	fx *f = *state;
	for (int i = 0; i < 5; i++)
		mk_cm(f, "", "ec", S(f, "c%d", i), "k", "v");
	const char *col = cm_path(f, "", "ec", NULL);
	uint64_t    id  = add_rule(f,
	        "{'match':{'namespace':'ec'},'action':{"
	            "'list':'expire_continue'},'count':1}");
	resp       *r   = GET(f, S(f, "%s?limit=2", col));
	NEED_CODE(f, r, 200);
	EXPECT_INT(f, NULL, rule_matches(f, id), 0);
	const char *tok = JS(r->j, "metadata.continue");
	NEED(f, tok != NULL);
	tok = S(f, "%s", tok);

	r = GET(f, S(f, "%s?limit=2&continue=%s", col, esc(f, tok)));
	EXPECT_STATUS_PREFIX(f, r, 410, "Expired", CONTINUE_410_PREFIX);
	const char *tok2 = JS(r->j, "metadata.continue");
	EXPECT(f, r, tok2 != NULL, "410 without metadata.continue");
	NEED(f, tok2 != NULL);
	tok2 = S(f, "%s", tok2);
	size_t n;
	char  *dec = b64dec(tok2, &n);
	EXPECT(f, r, dec != NULL, "continue token is not base64: %s", tok2);
	if (dec != NULL) {
		json_error_t e;
		json_t *j = kept(f, json_loadb(dec, n, JSON_ALLOW_NUL, &e));
		EXPECT(f, r, JI(j, "rv") == -1,
		    "the 410 token's rv is %lld, want -1 (%s)", JI(j, "rv"),
		    dec);
		free(dec);
	}
	/* The rv=-1 token continues at the latest state. */
	uint64_t cur = plane_rv(f, "");
	r = GET(f, S(f, "%s?limit=10&continue=%s", col, esc(f, tok2)));
	EXPECT_CODE(f, r, 200);
	json_t *items = J(r->j, "items");
	EXPECT(f, r,
	    json_array_size(items) == 3
	        && strcmp(nz(JS(items, "0.metadata.name"), ""), "c2") == 0
	        && strcmp(nz(JS(items, "2.metadata.name"), ""), "c4") == 0,
	    "the rv=-1 token lists the rest (c2..c4)");
	EXPECT_INT(f, r, rv_num(JS(r->j, "metadata.resourceVersion")), cur);
	EXPECT(f, r, JS(r->j, "metadata.continue") == NULL,
	    "last page has a continue token");
	finish(f);
}

/* Without a count the rule stays; the rv=-1 token it hands out carries
 * no snapshot that could have expired, so the pager can go on with it
 * ("the next continue token gets 410 with an rv=-1 token"). */
static void
test_faults_list_expire_continue_token_works(void **state)
{
	fx *f = *state;
	for (int i = 0; i < 5; i++)
		mk_cm(f, "", "ek", S(f, "c%d", i), "k", "v");
	const char *col = cm_path(f, "", "ek", NULL);
	add_rule(f,
	    "{'match':{'namespace':'ek'},'action':{'list':"
	    "'expire_continue'}}");
	resp *r = GET(f, S(f, "%s?limit=2", col));
	NEED_CODE(f, r, 200);
	const char *tok = JS(r->j, "metadata.continue");
	NEED(f, tok != NULL);
	r = GET(f, S(f, "%s?limit=2&continue=%s", col, esc(f, tok)));
	EXPECT_STATUS_PREFIX(f, r, 410, "Expired", CONTINUE_410_PREFIX);
	const char *tok2 = JS(r->j, "metadata.continue");
	NEED(f, tok2 != NULL);
	r = GET(f, S(f, "%s?limit=10&continue=%s", col, esc(f, tok2)));
	EXPECT_CODE(f, r, 200);
	EXPECT_INT(f, r, json_array_size(J(r->j, "items")), 3);
	finish(f);
}

static void
test_faults_list_too_large_rv(void **state)
{
	fx *f = *state;
	mk_cm(f, "", "tl", "a", "k", "v");
	const char *col = cm_path(f, "", "tl", NULL);
	add_rule(f,
	    "{'match':{'namespace':'tl'},'action':{'list':"
	    "'too_large_rv'}}");
	resp *r = GET(f, S(f, "%s?resourceVersion=0", col));
	EXPECT_STATUS_PREFIX(f, r, 504, "Timeout", TOO_LARGE_PREFIX);
	EXPECT_STR(f, r, header(f, r, "Retry-After"), "1");
	EXPECT_JS(f, r, "details.causes.0.reason", "ResourceVersionTooLarge");
	EXPECT_INT(f, r, JI(r->j, "details.retryAfterSeconds"), 1);
	r = GET(f, col);
	EXPECT_STATUS_PREFIX(f, r, 504, "Timeout", TOO_LARGE_PREFIX);

	/* A watch gets it too: HTTP 504 or one ERROR event with it. */
	wstream *w = watch_open(f, S(f, "%s?watch=1", col));
	watch_wait_done(w, 3000);
	if (w->code == 504) {
		json_error_t e;
		json_t *j = kept(f, json_loadb(w->data.p, w->data.len, 0, &e));
		EXPECT_STATUS_OBJ(
		    f, NULL, j, 504, "Timeout", MSG_PREFIX, TOO_LARGE_PREFIX);
		EXPECT_STR(f, NULL, JS(j, "details.causes.0.reason"),
		    "ResourceVersionTooLarge");
	} else {
		EXPECT_INT(f, NULL, w->code, 200);
		EXPECT_STR(f, NULL, ev_type(w, 0), "ERROR");
		EXPECT_STATUS_OBJ(f, NULL, J(ev(w, 0), "object"), 504,
		    "Timeout", MSG_PREFIX, TOO_LARGE_PREFIX);
		EXPECT(f, NULL, w->done, "watch still open");
	}
	/* A GET of one object is neither a list nor a watch. */
	r = GET(f, cm_path(f, "", "tl", "a"));
	EXPECT_CODE(f, r, 200);
	finish(f);
}

static void
test_faults_list_stale(void **state)
{
	fx *f = *state;
	mk_cm(f, "", "st", "s", "v", "1");
	uint64_t    r1 = plane_rv(f, "");
	const char *p  = cm_path(f, "", "st", "s");
	NEED_CODE(f, MERGE(f, p, "{\"data\":{\"v\":\"2\"}}"), 200);
	NEED_CODE(f, MERGE(f, p, "{\"data\":{\"v\":\"3\"}}"), 200);
	uint64_t    r3  = plane_rv(f, "");
	const char *col = cm_path(f, "", "st", NULL);
	NEED(f, r3 == r1 + 2);

	uint64_t id = add_rule(f,
	    "{'match':{'namespace':'st'},'action':{"
	    "'list':'stale','lag_rv':2}}");
	resp    *r  = GET(f, S(f, "%s?resourceVersion=0", col));
	EXPECT_CODE(f, r, 200);
	EXPECT_INT(f, r, rv_num(JS(r->j, "metadata.resourceVersion")), r1);
	EXPECT_JS(f, r, "items.0.data.v", "1");
	/* Consistent reads are never stale. */
	r = GET(f, col);
	EXPECT_CODE(f, r, 200);
	EXPECT_INT(f, r, rv_num(JS(r->j, "metadata.resourceVersion")), r3);
	EXPECT_JS(f, r, "items.0.data.v", "3");
	NEED(f,
	    DEL(f, S(f, "/_sim/faults/%llu", (unsigned long long) id))->code
	        == 200);

	/* count 1: the one stale answer goes to the first RV=0 list, not
	 * to a consistent list the rule cannot affect. */
	add_rule(f,
	    "{'match':{'namespace':'st'},'action':{'list':'stale',"
	    "'lag_rv':2},'count':1}");
	r = GET(f, col);
	EXPECT_JS(f, r, "items.0.data.v", "3");
	r = GET(f, S(f, "%s?resourceVersion=0", col));
	EXPECT_INT(f, r, rv_num(JS(r->j, "metadata.resourceVersion")), r1);
	EXPECT_JS(f, r, "items.0.data.v", "1");
	r = GET(f, S(f, "%s?resourceVersion=0", col));
	EXPECT_JS(f, r, "items.0.data.v", "3");
	finish(f);
}

/* ===================================================================== */
/* Bookmarks, buffers, throttling, conflicts                              */
/* ===================================================================== */

static void
test_faults_bookmarks_off(void **state)
{
	fx *f = *state; /* global bookmark interval: 300 ms */
	mk_ns(f, "", "bo");
	mk_ns(f, "", "bc");
	uint64_t id   = add_rule(f,
	      "{'match':{'namespace':'bo'},"
	        "'action':{'bookmarks':'off'}}");
	wstream *off  = watch_open(f,
	     S(f, "%s?watch=1&allowWatchBookmarks=true",
	         cm_path(f, "", "bo", NULL)));
	wstream *ctl  = watch_open(f,
	     S(f, "%s?watch=1&allowWatchBookmarks=true",
	         cm_path(f, "", "bc", NULL)));
	wstream *ws[] = { off, ctl };
	watch_idle_all(ws, 2, 1500);
	EXPECT(f, NULL, count_type(ctl, "BOOKMARK") >= 2,
	    "control watch got %zu bookmarks in 1.5 s at a 300 ms interval",
	    count_type(ctl, "BOOKMARK"));
	EXPECT_INT(f, NULL, count_type(off, "BOOKMARK"), 0);
	EXPECT(f, NULL, !off->done, "bookmarks off must not end the watch");
	EXPECT_INT(f, NULL, rule_hits(f, id), 1);
	finish(f);
}

static void
test_faults_bookmarks_every(void **state)
{
	fx *f = *state; /* global bookmark interval: 60 s */
	mk_ns(f, "", "be");
	mk_ns(f, "", "bc");
	add_rule(f,
	    "{'match':{'namespace':'be'},"
	    "'action':{'bookmarks':'every_s:0.25'}}");
	wstream *fast = watch_open(f,
	    S(f, "%s?watch=1&allowWatchBookmarks=true",
	        cm_path(f, "", "be", NULL)));
	wstream *ctl  = watch_open(f,
	     S(f, "%s?watch=1&allowWatchBookmarks=true",
	         cm_path(f, "", "bc", NULL)));
	wstream *nob
	    = watch_open(f, S(f, "%s?watch=1", cm_path(f, "", "be", NULL)));
	wstream *ws[] = { fast, ctl, nob };
	watch_idle_all(ws, 3, 1300);
	uint64_t cur = plane_rv(f, "");
	EXPECT(f, NULL, count_type(fast, "BOOKMARK") >= 3,
	    "every_s:0.25 gave %zu bookmarks in 1.3 s",
	    count_type(fast, "BOOKMARK"));
	EXPECT_INT(f, NULL, count_type(ctl, "BOOKMARK"), 0);
	EXPECT_INT(f, NULL, count_type(nob, "BOOKMARK"), 0);
	if (json_array_size(fast->events) > 0) {
		json_t *b = ev(fast, json_array_size(fast->events) - 1);
		EXPECT_STR(f, NULL, JS(b, "object.kind"), "ConfigMap");
		EXPECT_STR(f, NULL, JS(b, "object.apiVersion"), "v1");
		EXPECT_INT(f, NULL,
		    rv_num(JS(b, "object.metadata.resourceVersion")), cur);
	}
	finish(f);
}

static void
test_faults_watch_buffer(void **state)
{
	fx *f = *state;
	mk_ns(f, "", "bench");
	const char *wp = S(f, "%s?watch=1", cm_path(f, "", "bench", NULL));
	uint64_t    id = add_rule(f,
	       "{'match':{'ua_regex':'^stalled-limited$'},"
	          "'action':{'watch_buffer':5}}");
	raw_get(f, wp, "stalled-limited", 4096);
	raw_get(f, wp, "stalled-control", 4096);
	int64_t end = deadline(3000);
	while ((watcher_by_ua(f, "stalled-limited") == NULL
	           || watcher_by_ua(f, "stalled-control") == NULL)
	    && now_ms() < end)
		sleep_ms(20);
	NEED(f, watcher_by_ua(f, "stalled-limited") != NULL);
	NEED(f, watcher_by_ua(f, "stalled-control") != NULL);

	/* ~12 MB of events to readers that never read. */
	resp *r = POST(f, "/_sim/load",
	    Q(f,
	        "{'namespace':'bench','resource':'configmaps','op':'create',"
	        "'count':3000,'size':4096}"));
	NEED_CODE(f, r, 200);
	end = deadline(3000);
	while (watcher_by_ua(f, "stalled-limited") != NULL && now_ms() < end)
		sleep_ms(50);
	EXPECT(f, NULL, watcher_by_ua(f, "stalled-limited") == NULL,
	    "a stalled watch with watch_buffer 5 is still listed after 3000 "
	    "events: %s",
	    D(f, watcher_by_ua(f, "stalled-limited")));
	json_t *ctl = watcher_by_ua(f, "stalled-control");
	EXPECT(f, NULL, ctl != NULL,
	    "the stalled watch without the rule was dropped too");
	EXPECT(f, NULL, JI(ctl, "queued") > 0,
	    "the control watch has bytes queued (the reader really "
	    "stalled): %s",
	    D(f, ctl));
	EXPECT_INT(f, NULL, rule_hits(f, id), 1);
	finish(f);
}

static void
test_faults_throttle_bps(void **state)
{
	fx   *f   = *state;
	char *big = mcf_malloc(4097);
	memset(big, 'x', 4096);
	big[4096] = '\0';
	mk_cm(f, "", "default", "big", "pad", keep_str(f, big));
	const char *p = cm_path(f, "", "default", "big");
	add_rule(f,
	    "{'match':{'name':'big'},'action':{'throttle_bps':2048},"
	    "'count':1}");
	resp *r = GET(f, p);
	EXPECT_CODE(f, r, 200);
	EXPECT(f, r, r->body.len >= 4096, "body %zu bytes", r->body.len);
	EXPECT(f, r, r->total_ms >= 1500,
	    "a %zu-byte body at 2048 bytes/s took %.0f ms", r->body.len,
	    r->total_ms);
	EXPECT(f, r, r->total_ms < 3000 + 5000.0 * timeout_scale,
	    "took %.0f ms", r->total_ms);
	resp *plain = GET(f, p);
	EXPECT_CODE(f, plain, 200);
	EXPECT(f, r, r->j != NULL && json_equal(r->j, plain->j),
	    "the throttled body equals the unthrottled one");
	EXPECT(f, plain, plain->total_ms < 1000, "unthrottled took %.0f ms",
	    plain->total_ms);
	finish(f);
}

static void
test_faults_conflict(void **state)
{
	fx *f = *state;
	mk_cm(f, "", "default", "cf", "v", "1");
	const char *p  = cm_path(f, "", "default", "cf");
	resp       *g0 = GET(f, p);
	NEED_CODE(f, g0, 200);
	const char *rv0 = S(f, "%s", JS(g0->j, "metadata.resourceVersion"));
	uint64_t    id  = add_rule(f,
	        "{'match':{'name':'cf'},"
	            "'action':{'conflict':true},'count':2}");
	wstream    *w   = watch_open(f,
	         S(f,
	             "%s?watch=1&resourceVersion=%s&fieldSelector="
	                  "metadata.name%%3Dcf",
	             cm_path(f, "", "default", NULL), rv0));
	const char *upd = Q(f,
	    "{'metadata':{'name':'cf','resourceVersion':'%s'},'data':{'v':'2'}"
	    "}",
	    rv0);

	EXPECT_CODE(f, GET(f, p), 200); /* a GET is not an update */
	resp *r = PUT(f, p, upd);
	EXPECT_STATUS(f, r, 409, "Conflict", NULL);
	const char *m = JS(r->j, "message");
	EXPECT(f, r, m && strstr(m, "the object has been modified") != NULL,
	    "message %s", nz(m, "(null)"));
	r = MERGE(f, p, "{\"data\":{\"v\":\"3\"}}");
	EXPECT_STATUS(f, r, 409, "Conflict", NULL);

	r = GET(f, p);
	EXPECT_JS(f, r, "data.v", "1");
	EXPECT_JS(f, r, "metadata.resourceVersion", rv0);
	EXPECT_INT(f, NULL, plane_rv(f, ""), rv_num(rv0));
	watch_idle(w, 200);
	EXPECT_INT(f, NULL, json_array_size(w->events), 0);
	EXPECT_INT(f, NULL, rule_hits(f, id), 2);

	/* Used up: the same update now succeeds. */
	r = PUT(f, p, upd);
	EXPECT_CODE(f, r, 200);
	EXPECT_JS(f, r, "data.v", "2");
	watch_wait(w, 1, 2000);
	EXPECT_STR(f, NULL, ev_type(w, 0), "MODIFIED");
	finish(f);
}

/* ===================================================================== */
/* Planes                                                                 */
/* ===================================================================== */

static void
test_faults_plane_unavailable(void **state)
{
	fx *f = *state;
	mk_project(f, "p1");
	mk_project(f, "p2");
	uint64_t id = add_rule(f,
	    "{'match':{'plane':'p1'},'action':{"
	    "'plane':'unavailable','status':503}}");
	resp *r = GET(f, S(f, "%s/api/v1/namespaces", proj_prefix(f, "p1")));
	EXPECT_STATUS(f, r, 503, "ServiceUnavailable", NULL);
	r = GET(f, "/projects/p1/control-plane/api/v1/namespaces/default");
	EXPECT_STATUS(f, r, 503, "ServiceUnavailable", NULL);
	r = GET(f, S(f, "%s/version", proj_prefix(f, "p1")));
	EXPECT_CODE(f, r, 503);
	r = GET(f, S(f, "%s/api/v1/namespaces", proj_prefix(f, "p2")));
	EXPECT_CODE(f, r, 200);
	r = GET(f, "/api/v1/namespaces");
	EXPECT_CODE(f, r, 200);
	json_t *e
	    = log_entry(f, S(f, "%s/api/v1/namespaces", proj_prefix(f, "p1")));
	EXPECT_STR(f, NULL, JS(e, "plane"), "p1");
	EXPECT_INT(f, NULL, JI(e, "status"), 503);
	NEED_CODE(f,
	    DEL(f, S(f, "/_sim/faults/%llu", (unsigned long long) id)), 200);
	r = GET(f, S(f, "%s/api/v1/namespaces", proj_prefix(f, "p1")));
	EXPECT_CODE(f, r, 200);
	finish(f);
}

static void
test_faults_plane_gone(void **state)
{
	fx *f = *state;
	mk_project(f, "p1");
	const char *pfx = proj_prefix(f, "p1");
	mk_cm(f, pfx, "default", "a", "k", "v");
	wstream *pw = watch_open(
	    f, S(f, "%s?watch=1", cm_path(f, pfx, "default", NULL)));
	wstream *root = watch_open(
	    f, S(f, "%s?watch=1", cm_path(f, "", "default", NULL)));
	watch_wait(pw, 1, 2000);
	NEED(f, watcher_count_plane(f, "p1") == 1);

	add_rule(f, "{'match':{'plane':'p1'},'action':{'plane':'gone'}}");
	/* As if the Project were deleted: its watches close, without
	 * waiting for another request to the plane. */
	watch_wait_done(pw, 2000);
	EXPECT(f, NULL, pw->done,
	    "the plane's watch is still open 2 s after the plane went away "
	    "(no request to the plane in between)");

	resp *r = GET(f, S(f, "%s/api/v1/namespaces", pfx));
	EXPECT_STATUS(f, r, 404, "NotFound",
	    "projects.resourcemanager.miloapis.com \"p1\" not found");
	watch_wait_done(pw, 2000);
	EXPECT(f, NULL, pw->done, "the plane's watch is still open");
	EXPECT_STR(f, NULL, end_kind(pw), "clean");
	EXPECT_INT(f, NULL, watcher_count_plane(f, "p1"), 0);
	/* A new watch there is refused; the root is untouched. */
	r = GET(f, S(f, "%s?watch=1", cm_path(f, pfx, "default", NULL)));
	EXPECT_STATUS(f, r, 404, "NotFound", NULL);
	watch_idle(root, 100);
	EXPECT(f, NULL, !root->done, "the root plane's watch was closed");
	EXPECT_CODE(f, GET(f, cm_path(f, "", "default", NULL)), 200);
	finish(f);
}

static void
test_faults_plane_warmup_429(void **state)
{
	fx *f = *state;
	mk_project(f, "early");
	uint64_t id = add_rule(f,
	    "{'action':{'preset':'plane_warmup_429',"
	    "'requests':3}}");
	mk_project(f, "late");
	const char *p = S(f, "%s/api/v1/namespaces", proj_prefix(f, "late"));
	for (int i = 0; i < 3; i++) {
		resp *r = GET(f, p);
		EXPECT_STATUS(f, r, 429, "TooManyRequests",
		    "storage is (re)initializing");
		EXPECT_STR(f, r, header(f, r, "Retry-After"), "1");
	}
	resp *r = GET(f, p);
	EXPECT_CODE(f, r, 200);
	r = GET(f, S(f, "%s/api/v1/namespaces", proj_prefix(f, "early")));
	EXPECT_CODE(f, r, 200);
	r = GET(f, "/api/v1/namespaces");
	EXPECT_CODE(f, r, 200);
	EXPECT_INT(f, NULL, rule_hits(f, id), 3);
	finish(f);
}

/* ===================================================================== */
/* Matching and counting                                                  */
/* ===================================================================== */

static void
test_faults_match_plane(void **state)
{
	fx *f = *state;
	mk_project(f, "p1");
	const char *pp = S(f, "%s/api/v1/namespaces", proj_prefix(f, "p1"));
	const char *rp = "/api/v1/namespaces";
	uint64_t    id = add_rule(f,
	       "{'match':{'plane':'p1'},"
	          "'action':{'status':500}}");
	EXPECT_CODE(f, GET(f, pp), 500);
	EXPECT_CODE(f, GET(f, rp), 200);
	NEED_CODE(f,
	    DEL(f, S(f, "/_sim/faults/%llu", (unsigned long long) id)), 200);
	id = add_rule(f, "{'match':{'plane':''},'action':{'status':500}}");
	EXPECT_CODE(f, GET(f, pp), 200);
	EXPECT_CODE(f, GET(f, rp), 500);
	NEED_CODE(f,
	    DEL(f, S(f, "/_sim/faults/%llu", (unsigned long long) id)), 200);
	add_rule(f, "{'match':{'plane':'*'},'action':{'status':500}}");
	EXPECT_CODE(f, GET(f, pp), 500);
	EXPECT_CODE(f, GET(f, rp), 500);
	/* /_sim/ itself is never subject to rules. */
	EXPECT_CODE(f, GET(f, "/_sim/faults"), 200);
	finish(f);
}

static void
test_faults_match_verb_method_resource(void **state)
{
	fx *f = *state;
	mk_cm(f, "", "default", "a", "k", "v");
	const char *col = cm_path(f, "", "default", NULL);
	uint64_t    id  = add_rule(f,
	        "{'match':{'verb':'list','resource':"
	            "'configmaps'},'action':{'status':500}}");
	EXPECT_CODE(f, GET(f, col), 500);
	EXPECT_CODE(f, GET(f, cm_path(f, "", "default", "a")), 200);
	EXPECT_CODE(f, GET(f, "/api/v1/namespaces/default/secrets"), 200);
	wstream *w = watch_open(f, S(f, "%s?watch=1", col));
	EXPECT_INT(f, NULL, w->code, 200);
	NEED_CODE(f,
	    DEL(f, S(f, "/_sim/faults/%llu", (unsigned long long) id)), 200);
	add_rule(f,
	    "{'match':{'method':'DELETE','group':''},"
	    "'action':{'status':500}}");
	EXPECT_CODE(f, DEL(f, cm_path(f, "", "default", "a")), 500);
	EXPECT_CODE(f, GET(f, cm_path(f, "", "default", "a")), 200);
	add_rule(f,
	    "{'match':{'group':'coordination.k8s.io'},"
	    "'action':{'status':503}}");
	EXPECT_CODE(f,
	    GET(f,
	        "/apis/coordination.k8s.io/v1/namespaces/"
	        "default/leases"),
	    503);
	EXPECT_CODE(f, GET(f, col), 200);
	finish(f);
}

static void
test_faults_match_namespace_name(void **state)
{
	fx *f = *state;
	mk_cm(f, "", "m1", "a", "k", "v");
	mk_cm(f, "", "m1", "b", "k", "v");
	mk_cm(f, "", "m2", "a", "k", "v");
	add_rule(f,
	    "{'match':{'namespace':'m1','name':'a'},"
	    "'action':{'status':500}}");
	EXPECT_CODE(f, GET(f, cm_path(f, "", "m1", "a")), 500);
	EXPECT_CODE(f, GET(f, cm_path(f, "", "m1", "b")), 200);
	EXPECT_CODE(f, GET(f, cm_path(f, "", "m2", "a")), 200);
	EXPECT_CODE(f, GET(f, cm_path(f, "", "m1", NULL)), 200);
	finish(f);
}

static void
test_faults_match_path_regex(void **state)
{
	fx *f = *state;
	mk_cm(f, "", "default", "b12", "k", "v");
	mk_cm(f, "", "default", "a1", "k", "v");
	mk_cm(f, "", "default", "b12x", "k", "v");
	add_rule(f,
	    "{'match':{'path_regex':'/configmaps/b[0-9]+$'},"
	    "'action':{'status':500}}");
	EXPECT_CODE(f, GET(f, cm_path(f, "", "default", "b12")), 500);
	EXPECT_CODE(f, GET(f, cm_path(f, "", "default", "a1")), 200);
	EXPECT_CODE(f, GET(f, cm_path(f, "", "default", "b12x")), 200);
	finish(f);
}

static void
test_faults_match_ua_regex(void **state)
{
	fx *f = *state;
	add_rule(f,
	    "{'match':{'ua_regex':'^python-kubernetes/'},"
	    "'action':{'status':500}}");
	const char *p  = "/api/v1/namespaces/default";
	ropt        py = { .ua = "OpenAPI-Generator/22.6.0/python" };
	ropt        pk = { .ua = "python-kubernetes/22.6.0" };
	ropt        kc = { .ua = "kubectl/v1.32.4 (linux/amd64)" };
	EXPECT_CODE(f, request(f, &pk, "GET", p, NULL), 500);
	EXPECT_CODE(f, request(f, &py, "GET", p, NULL), 200);
	EXPECT_CODE(f, request(f, &kc, "GET", p, NULL), 200);
	EXPECT_CODE(f, request(f, NULL, "GET", p, NULL), 200);
	finish(f);
}

static void
test_faults_count_and_after(void **state)
{
	fx *f = *state;
	mk_cm(f, "", "default", "ca", "k", "v");
	const char       *p      = cm_path(f, "", "default", "ca");
	uint64_t          id     = add_rule(f,
	                 "{'match':{'name':'ca'},'action':"
	                              "{'status':500},'count':2,'after':1}");
	static const long want[] = { 200, 500, 500, 200, 200 };
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		resp *r = GET(f, p);
		EXPECT(f, r, r->code == want[i], "request %zu: %ld, want %ld",
		    i + 1, r->code, want[i]);
	}
	EXPECT_INT(f, NULL, rule_hits(f, id), 2);
	EXPECT(f, NULL, rule_matches(f, id) >= 3, "matches %lld",
	    rule_matches(f, id));
	finish(f);
}

/* Status codes of `n` GETs of `path` on `v`, as "5" / "2" per request. */
static const char *
pattern(fx *f, const srv *v, const char *path, int n)
{
	char *out = mcf_calloc((size_t) n + 1, 1);
	ropt  o   = { .v = v };
	for (int i = 0; i < n; i++) {
		resp *r = request(f, &o, "GET", path, NULL);
		out[i]  = (char) ('0' + r->code / 100);
	}
	return keep_str(f, out);
}

static void
test_faults_probability_seeded(void **state)
{
	fx *f            = *state;
	f->extra         = srv_start(SEED, 60 * 1000);
	const char *p    = "/api/v1/namespaces/default";
	const char *rule = Q(f,
	    "{'match':{'path_regex':'^/api/v1/namespaces/"
	    "default$'},'action':{'status':500},"
	    "'probability':0.5}");
	ropt        o    = { .v = f->extra };
	NEED_CODE(f, POST(f, "/_sim/faults", rule), 201);
	resp *r = request(f, &o, "POST", "/_sim/faults", rule);
	NEED_CODE(f, r, 201);
	const char *a = pattern(f, f->v, p, 40);
	const char *b = pattern(f, f->extra, p, 40);
	EXPECT(f, NULL, strcmp(a, b) == 0,
	    "same --seed, different sequences:\n      %s\n      %s", a, b);
	EXPECT(f, NULL, strchr(a, '5') != NULL && strchr(a, '2') != NULL,
	    "probability 0.5 over 40 requests: %s", a);
	for (const char *c = a; *c != '\0'; c++)
		EXPECT(f, NULL, *c == '2' || *c == '5',
		    "unexpected code in %s", a);

	/* 0 never, 1 always. */
	NEED_CODE(f, DEL(f, "/_sim/faults"), 200);
	add_rule(f,
	    "{'match':{'path_regex':'^/api/v1/namespaces/default$'},"
	    "'action':{'status':500},'probability':0}");
	const char *never = pattern(f, f->v, p, 20);
	EXPECT(
	    f, NULL, strchr(never, '5') == NULL, "probability 0: %s", never);
	NEED_CODE(f, DEL(f, "/_sim/faults"), 200);
	add_rule(f,
	    "{'match':{'path_regex':'^/api/v1/namespaces/default$'},"
	    "'action':{'status':500},'probability':1}");
	const char *always = pattern(f, f->v, p, 20);
	EXPECT(
	    f, NULL, strchr(always, '2') == NULL, "probability 1: %s", always);
	finish(f);
}

static void
test_faults_for_s_window(void **state)
{
	fx *f = *state;
	mk_cm(f, "", "default", "fs", "k", "v");
	const char *p  = cm_path(f, "", "default", "fs");
	int64_t     t0 = now_ms(); /* the window opens after t0 ... */
	add_rule(f,
	    "{'match':{'name':'fs'},'action':{'status':503},"
	    "'for_s':1}");
	int64_t t1 = now_ms(); /* ... and before t1 */
	resp   *r  = GET(f, p);
	if (now_ms() - t0 < 900) /* surely inside the window */
		EXPECT_CODE(f, r, 503);
	while (now_ms() - t1 < 1100)
		sleep_ms(20);
	EXPECT_CODE(f, GET(f, p), 200);
	EXPECT_CODE(f, GET(f, p), 200);
	finish(f);
}

/* ===================================================================== */
/* Rule management                                                        */
/* ===================================================================== */

static void
test_faults_delete_one_and_all(void **state)
{
	fx *f = *state;
	for (int i = 1; i <= 3; i++)
		mk_cm(f, "", "default", S(f, "d%d", i), "k", "v");
	uint64_t a = add_rule(f,
	    "{'match':{'name':'d1'},'action':{'status':"
	    "500}}");
	uint64_t b = add_rule(f,
	    "{'match':{'name':'d2'},'action':{'status':"
	    "500},'count':5}");
	uint64_t c = add_rule(f,
	    "{'match':{'name':'d3'},'action':{'status':"
	    "500}}");
	EXPECT(f, NULL, a < b && b < c, "ids %llu %llu %llu",
	    (unsigned long long) a, (unsigned long long) b,
	    (unsigned long long) c);
	resp *r = GET(f, "/_sim/faults");
	EXPECT_CODE(f, r, 200);
	EXPECT_INT(f, r, json_array_size(J(r->j, "items")), 3);
	json_t *info = rule_info(f, b);
	json_t *want = kept(f,
	    json_loads(Q(f,
	                   "{'match':{'name':'d2'},"
	                   "'action':{'status':500},"
	                   "'count':5}"),
	        0, NULL));
	EXPECT(f, NULL, info && json_equal(J(info, "rule"), want),
	    "GET /_sim/faults echoes the rule: %s", D(f, info));
	EXPECT(f, NULL,
	    json_is_integer(J(info, "matches"))
	        && json_is_integer(J(info, "hits")),
	    "matches and hits: %s", D(f, info));

	r = DEL(f, S(f, "/_sim/faults/%llu", (unsigned long long) b));
	EXPECT_CODE(f, r, 200);
	EXPECT_CODE(f, GET(f, cm_path(f, "", "default", "d2")), 200);
	EXPECT_CODE(f, GET(f, cm_path(f, "", "default", "d1")), 500);
	EXPECT_CODE(f, GET(f, cm_path(f, "", "default", "d3")), 500);
	r = GET(f, "/_sim/faults");
	EXPECT(f, r,
	    json_array_size(J(r->j, "items")) == 2
	        && JI(r->j, "items.0.id") == (long long) a
	        && JI(r->j, "items.1.id") == (long long) c,
	    "after deleting %llu", (unsigned long long) b);
	r = DEL(f, S(f, "/_sim/faults/%llu", (unsigned long long) b));
	EXPECT_CODE(f, r, 404);
	r = DEL(f, "/_sim/faults/999");
	EXPECT_CODE(f, r, 404);

	r = DEL(f, "/_sim/faults");
	EXPECT_CODE(f, r, 200);
	r = GET(f, "/_sim/faults");
	EXPECT(f, r,
	    json_is_array(J(r->j, "items"))
	        && json_array_size(J(r->j, "items")) == 0,
	    "items after DELETE /_sim/faults");
	EXPECT_CODE(f, GET(f, cm_path(f, "", "default", "d1")), 200);
	EXPECT_CODE(f, GET(f, cm_path(f, "", "default", "d3")), 200);
	finish(f);
}

static void
test_faults_malformed_rules_400(void **state)
{
	fx                      *f     = *state;
	static const char *const bad[] = {
		"not json",
		"[]",
		"{}",
		"{'action':'status'}",
		"{'action':{}}",
		"{'action':{'nothing':1}}",
		"{'match':'x','action':{'status':500}}",
		"{'action':{'status':200}}",
		"{'action':{'conn':'explode'}}",
		"{'action':{'watch':'close','mode':'sideways'}}",
		"{'action':{'watch':'wander'}}",
		"{'action':{'list':'shuffle'}}",
		"{'action':{'bookmarks':'sometimes'}}",
		"{'action':{'throttle_bps':0}}",
		"{'action':{'latency_ms':-1}}",
		"{'action':{'preset':'plane_cooldown'}}",
		"{'action':{'plane':'exploded'}}",
		"{'match':{'path_regex':'(unclosed'},'action':{'status':500}}",
		"{'action':{'status':500},'probability':1.5}",
		"{'action':{'status':500},'after':-1}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		resp *r = POST(f, "/_sim/faults", Q(f, "%s", bad[i]));
		EXPECT_STATUS(f, r, 400, "BadRequest", NULL);
	}
	resp *r = GET(f, "/_sim/faults");
	EXPECT(f, r, json_array_size(J(r->j, "items")) == 0,
	    "a malformed rule was stored");
	EXPECT_CODE(f, GET(f, "/api/v1/namespaces"), 200);
	finish(f);
}

/* ===================================================================== */
/* /_sim/ endpoints                                                       */
/* ===================================================================== */

static void
test_faults_sim_touch(void **state)
{
	fx         *f = *state;
	resp       *c = mk_cm(f, "", "default", "t", "k", "v");
	const char *rv0
	    = S(f, "%s", nz(JS(c->j, "metadata.resourceVersion"), "0"));
	wstream *w = watch_open(f,
	    S(f, "%s?watch=1&resourceVersion=%s",
	        cm_path(f, "", "default", NULL), rv0));
	resp    *r = POST(f, "/_sim/touch",
	       Q(f,
	           "{'plane':'','path':'/api/v1/namespaces/default/"
	              "configmaps/t'}"));
	EXPECT_CODE(f, r, 200);
	uint64_t want = rv_num(rv0) + 1;
	EXPECT_INT(f, NULL, plane_rv(f, ""), want);
	r = GET(f, cm_path(f, "", "default", "t"));
	EXPECT_INT(f, r, rv_num(JS(r->j, "metadata.resourceVersion")), want);
	EXPECT_JS(f, r, "data.k", "v");
	watch_wait(w, 1, 2000);
	EXPECT_STR(f, NULL, ev_type(w, 0), "MODIFIED");
	EXPECT_STR(f, NULL, JS(ev(w, 0), "object.metadata.name"), "t");
	EXPECT_INT(f, NULL,
	    ev(w, 0) ? rv_num(JS(ev(w, 0),
	        "object.metadata."
	        "resourceVersion"))
	             : 0,
	    want);

	/* In a project plane, without "plane" meaning the root. */
	mk_project(f, "p1");
	uint64_t prv = plane_rv(f, proj_prefix(f, "p1"));
	r            = POST(f, "/_sim/touch",
	               Q(f, "{'plane':'p1','path':'/api/v1/namespaces/default'}"));
	EXPECT_CODE(f, r, 200);
	EXPECT_INT(f, NULL, plane_rv(f, proj_prefix(f, "p1")), prv + 1);
	r = POST(f, "/_sim/touch",
	    Q(f, "{'path':'/api/v1/namespaces/default/configmaps/none'}"));
	EXPECT_STATUS(f, r, 404, "NotFound", NULL);
	r = POST(f, "/_sim/touch", "{}");
	EXPECT_STATUS(f, r, 400, "BadRequest", NULL);
	finish(f);
}

static void
test_faults_sim_bookmark(void **state)
{
	fx *f = *state; /* global interval 60 s: no periodic bookmarks */
	const char *col  = cm_path(f, "", "default", NULL);
	wstream    *bw   = watch_open_ua(f,
	         S(f, "%s?watch=1&resourceVersion=%llu&allowWatchBookmarks=true",
	             col, (unsigned long long) plane_rv(f, "")),
	         "bm-yes", 5000);
	wstream    *nw   = watch_open_ua(f,
	         S(f, "%s?watch=1&resourceVersion=%llu", col,
	             (unsigned long long) plane_rv(f, "")),
	         "bm-no", 5000);
	wstream    *ws[] = { bw, nw };
	mk_cm(f, "", "other", "x", "k", "v"); /* moves the RV */
	uint64_t cur = plane_rv(f, "");
	resp    *r   = POST(f, "/_sim/bookmark", "{\"watch\":\"all\"}");
	EXPECT_CODE(f, r, 200);
	EXPECT_INT(f, r, JI(r->j, "sent"), 1);
	watch_wait(bw, 1, 2000);
	watch_idle_all(ws, 2, 300);
	EXPECT_INT(f, NULL, count_type(bw, "BOOKMARK"), 1);
	EXPECT_STR(f, NULL, JS(ev(bw, 0), "object.kind"), "ConfigMap");
	EXPECT_INT(f, NULL,
	    rv_num(JS(ev(bw, 0), "object.metadata.resourceVersion")), cur);
	EXPECT_INT(f, NULL, count_type(nw, "BOOKMARK"), 0);

	/* By id, as a string and as a number. */
	json_t *wi = watcher_by_ua(f, "bm-yes");
	json_t *ni = watcher_by_ua(f, "bm-no");
	NEED(f, wi != NULL && ni != NULL);
	long long bid = JI(wi, "id"), nid = JI(ni, "id");
	r = POST(f, "/_sim/bookmark", S(f, "{\"watch\":\"%lld\"}", bid));
	EXPECT_INT(f, r, JI(r->j, "sent"), 1);
	r = POST(f, "/_sim/bookmark", S(f, "{\"watch\":%lld}", bid));
	EXPECT_INT(f, r, JI(r->j, "sent"), 1);
	watch_wait(bw, 3, 2000);
	EXPECT_INT(f, NULL, count_type(bw, "BOOKMARK"), 3);
	/* A watch that did not allow bookmarks never gets one (§3.3). */
	r = POST(f, "/_sim/bookmark", S(f, "{\"watch\":\"%lld\"}", nid));
	EXPECT_CODE(f, r, 200);
	EXPECT_INT(f, r, JI(r->j, "sent"), 0);
	watch_idle_all(ws, 2, 300);
	EXPECT_INT(f, NULL, count_type(nw, "BOOKMARK"), 0);
	finish(f);
}

static void
test_faults_sim_restart_drop_state(void **state)
{
	fx *f = *state;
	mk_cm(f, "", "default", "gone", "k", "v");
	mk_project(f, "p1");
	wstream *rw = watch_open(
	    f, S(f, "%s?watch=1", cm_path(f, "", "default", NULL)));
	wstream *pw = watch_open(f,
	    S(f, "%s?watch=1",
	        cm_path(f, proj_prefix(f, "p1"), "default", NULL)));
	int      fd = raw_connect(f, 0); /* an idle keep-alive connection */

	resp *r = POST(f, "/_sim/restart", "{\"keep_state\":false}");
	EXPECT_CODE(f, r, 200);
	EXPECT(f, NULL, watch_wait_done(rw, 2000), "root watch survived");
	EXPECT(f, NULL, watch_wait_done(pw, 2000), "plane watch survived");
	dbuf got = { 0 };
	int  rc  = raw_read(fd, &got, 2000 * timeout_scale);
	EXPECT(f, NULL, rc != 0, "an idle connection survived the restart");
	free(got.p);

	EXPECT_CODE(f, GET(f, cm_path(f, "", "default", "gone")), 404);
	EXPECT_CODE(f, GET(f, PROJECTS "/p1"), 404);
	EXPECT_CODE(f,
	    GET(f, S(f, "%s/api/v1/namespaces", proj_prefix(f, "p1"))), 404);
	EXPECT_CODE(f, GET(f, "/api/v1/namespaces/default"), 200);
	r = GET(f, "/_sim/watchers");
	EXPECT_INT(f, r, json_array_size(J(r->j, "items")), 0);
	/* And it works as new. */
	mk_cm(f, "", "default", "again", "k", "v");
	finish(f);
}

static void
test_faults_sim_restart_reset_rv(void **state)
{
	fx *f = *state;
	for (int i = 0; i < 5; i++)
		mk_cm(f, "", "default", S(f, "r%d", i), "k", "v");
	uint64_t remembered = plane_rv(f, "");
	resp    *r          = POST(
	                f, "/_sim/restart", "{\"keep_state\":true,\"reset_rv\":true}");
	EXPECT_CODE(f, r, 200);
	uint64_t cur = plane_rv(f, "");
	NEED(f, cur < remembered);
	EXPECT_CODE(f, GET(f, cm_path(f, "", "default", "r3")), 200);

	wstream *w = watch_open(f,
	    S(f, "%s?watch=1&resourceVersion=%llu",
	        cm_path(f, "", "default", NULL),
	        (unsigned long long) remembered));
	EXPECT_INT(f, NULL, w->code, 200);
	EXPECT(f, NULL, watch_wait_done(w, 6000), "watch still open");
	EXPECT_INT(f, NULL, json_array_size(w->events), 1);
	EXPECT_STR(f, NULL, ev_type(w, 0), "ERROR");
	json_t *st = J(ev(w, 0), "object");
	EXPECT_STATUS_OBJ(
	    f, NULL, st, 504, "Timeout", MSG_PREFIX, TOO_LARGE_PREFIX);
	EXPECT_STR(f, NULL, JS(st, "details.causes.0.reason"),
	    "ResourceVersionTooLarge");
	EXPECT_INT(f, NULL, JI(st, "details.retryAfterSeconds"), 1);

	r = GET(f,
	    S(f, "%s?resourceVersion=%llu", cm_path(f, "", "default", NULL),
	        (unsigned long long) remembered));
	EXPECT_STATUS_PREFIX(f, r, 504, "Timeout", TOO_LARGE_PREFIX);
	EXPECT_STR(f, r, header(f, r, "Retry-After"), "1");
	/* Relisting with RV="" recovers. */
	r = GET(f, cm_path(f, "", "default", NULL));
	EXPECT_CODE(f, r, 200);
	EXPECT_INT(f, r, json_array_size(J(r->j, "items")), 5);
	finish(f);
}

static void
test_faults_sim_watchers(void **state)
{
	fx *f = *state;
	mk_cm(f, "", "default", "y", "app", "x");
	uint64_t rv = plane_rv(f, "");
	watch_open_ua(f,
	    S(f,
	        "%s?watch=1&resourceVersion=%llu&labelSelector=app%%3Dx&"
	        "fieldSelector=metadata.name%%3Dy",
	        cm_path(f, "", "default", NULL), (unsigned long long) rv),
	    "watchers-test", 5000);
	json_t *e = watcher_by_ua(f, "watchers-test");
	NEED(f, e != NULL);
	static const char *const keys[] = { "id", "plane", "gvr", "ns",
		"selectors", "startRV", "sentRV", "queued", "age" };
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		EXPECT(f, NULL, J(e, keys[i]) != NULL,
		    "/_sim/watchers entry has no \"%s\": %s", keys[i],
		    D(f, e));
	EXPECT_STR(f, NULL, JS(e, "plane"), "");
	EXPECT_STR(f, NULL, JS(e, "ns"), "default");
	EXPECT(f, NULL, JS(e, "gvr") && strstr(JS(e, "gvr"), "configmaps"),
	    "gvr %s", D(f, J(e, "gvr")));
	EXPECT_INT(f, NULL, JI(e, "startRV"), rv);
	const char *sel = D(f, J(e, "selectors"));
	EXPECT(f, NULL, strstr(sel, "app=x") && strstr(sel, "metadata.name=y"),
	    "selectors %s", sel);
	finish(f);
}

static void
test_faults_sim_compact(void **state)
{
	fx *f = *state;
	mk_cm(f, "", "default", "c1", "k", "v");
	uint64_t old = plane_rv(f, "");
	mk_cm(f, "", "default", "c2", "k", "v");
	mk_cm(f, "", "default", "c3", "k", "v");
	uint64_t cur = plane_rv(f, "");
	resp    *r
	    = POST(f, "/_sim/compact", "{\"plane\":\"\",\"rv\":\"current\"}");
	EXPECT_CODE(f, r, 200);
	EXPECT_INT(f, r, JI(r->j, "floor"), cur);
	wstream *w = watch_open(f,
	    S(f, "%s?watch=1&resourceVersion=%llu",
	        cm_path(f, "", "default", NULL), (unsigned long long) old));
	watch_wait_done(w, 3000);
	EXPECT_STR(f, NULL, ev_type(w, 0), "ERROR");
	EXPECT_INT(f, NULL, JI(ev(w, 0), "object.code"), 410);
	r = GET(f,
	    S(f, "%s?resourceVersion=%llu&resourceVersionMatch=Exact",
	        cm_path(f, "", "default", NULL), (unsigned long long) old));
	EXPECT_STATUS(f, r, 410, "Expired", NULL);
	finish(f);
}

/* Checks a /_sim/load answer: count, first_rv/last_rv strings `count`
 * revisions apart, seconds. */
static void
check_load_answer(fx *f, const resp *r, long long count)
{
	EXPECT_CODE(f, r, 200);
	EXPECT_INT(f, r, JI(r->j, "count"), count);
	const char *first = JS(r->j, "first_rv"), *last = JS(r->j, "last_rv");
	EXPECT(f, r, first != NULL && last != NULL,
	    "first_rv and last_rv are strings");
	EXPECT_INT(f, r, rv_num(last) - rv_num(first), count - 1);
	EXPECT(f, r,
	    json_is_number(J(r->j, "seconds"))
	        && json_number_value(J(r->j, "seconds")) >= 0,
	    "seconds is a number");
}

static void
test_faults_sim_load_ops(void **state)
{
	fx *f = *state;
	mk_ns(f, "", "bench");
	const char *col  = cm_path(f, "", "bench", NULL);
	wstream    *w    = watch_open(f,
	          S(f, "%s?watch=1&resourceVersion=%llu", col,
	              (unsigned long long) plane_rv(f, "")));
	const char *spec = Q(f,
	    "{'plane':'','group':'','version':'v1',"
	    "'resource':'configmaps','namespace':'bench',"
	    "'op':'create','count':50,'size':600,"
	    "'rate':0}");
	resp       *r    = POST(f, "/_sim/load", spec);
	check_load_answer(f, r, 50);
	EXPECT_INT(f, NULL, rv_num(JS(r->j, "last_rv")), plane_rv(f, ""));
	watch_wait(w, 50, 5000);
	watch_idle(w, 200);
	EXPECT_INT(f, NULL, json_array_size(w->events), 50);
	EXPECT_INT(f, NULL, count_type(w, "ADDED"), 50);
	EXPECT_STR(
	    f, NULL, JS(ev(w, 0), "object.metadata.name"), "load-00000001");
	r = GET(f, cm_path(f, "", "bench", "load-00000050"));
	EXPECT_CODE(f, r, 200);
	EXPECT(f, r, r->body.len >= 400 && r->body.len <= 900,
	    "size 600 gave a %zu-byte object", r->body.len);

	r = POST(f, "/_sim/load",
	    Q(f,
	        "{'resource':'configmaps','namespace':'bench','op':'update',"
	        "'count':50}"));
	check_load_answer(f, r, 50);
	watch_wait(w, 100, 5000);
	watch_idle(w, 200);
	EXPECT_INT(f, NULL, count_type(w, "MODIFIED"), 50);

	r = POST(f, "/_sim/load",
	    Q(f,
	        "{'resource':'configmaps','namespace':'bench','op':'delete',"
	        "'count':50}"));
	check_load_answer(f, r, 50);
	watch_wait(w, 150, 5000);
	watch_idle(w, 200);
	EXPECT_INT(f, NULL, count_type(w, "DELETED"), 50);
	EXPECT_INT(f, NULL, json_array_size(w->events), 150);
	r = GET(f, col);
	EXPECT_INT(f, r, json_array_size(J(r->j, "items")), 0);

	/* A namespace that does not exist yet is created. */
	r = POST(f, "/_sim/load",
	    Q(f,
	        "{'resource':'configmaps','namespace':'fresh','op':'create',"
	        "'count':3}"));
	check_load_answer(f, r, 3);
	EXPECT_CODE(f, GET(f, "/api/v1/namespaces/fresh"), 200);
	r = POST(f, "/_sim/load",
	    Q(f,
	        "{'resource':'configmaps','op':'jump',"
	        "'namespace':'x','count':1}"));
	EXPECT_CODE(f, r, 400);
	finish(f);
}

static void
test_faults_sim_load_rate(void **state)
{
	fx     *f  = *state;
	int64_t t0 = now_ms();
	resp   *r  = POST(f, "/_sim/load",
	       Q(f,
	           "{'resource':'configmaps','namespace':'paced','op':'create',"
	              "'count':100,'rate':200}"));
	int64_t el = now_ms() - t0;
	check_load_answer(f, r, 100);
	EXPECT(f, r, el >= 400, "100 writes at 200/s answered after %lld ms",
	    (long long) el);
	EXPECT(f, r, json_number_value(J(r->j, "seconds")) >= 0.4,
	    "seconds %.3f", json_number_value(J(r->j, "seconds")));
	finish(f);
}

/* Seconds since the epoch of "2006-01-02T15:04:05Z", or -1. */
static long long
parse_time(const char *s)
{
	struct tm tm = { 0 };
	if (s == NULL
	    || sscanf(s, "%d-%d-%dT%d:%d:%d", &tm.tm_year, &tm.tm_mon,
	           &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec)
	        != 6)
		return -1;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return (long long) timegm(&tm);
}

static void
test_faults_sim_clock(void **state)
{
	fx   *f = *state;
	resp *r = POST(f, "/_sim/clock", "{\"offset_s\":86400}");
	EXPECT_CODE(f, r, 200);
	resp     *c   = mk_cm(f, "", "default", "future", "k", "v");
	long long now = (long long) time(NULL);
	long long ts  = parse_time(JS(c->j, "metadata.creationTimestamp"));
	EXPECT(f, c, ts >= now + 86400 - 60 && ts <= now + 86400 + 60,
	    "creationTimestamp %s with offset_s 86400 (now %lld)",
	    nz(JS(c->j, "metadata.creationTimestamp"), "(null)"), now);
	json_t   *e  = log_entry(f, cm_path(f, "", "default", NULL));
	long long lt = parse_time(JS(e, "time"));
	EXPECT(f, NULL, lt >= now + 86400 - 60 && lt <= now + 86400 + 60,
	    "request log time %s follows the server clock",
	    nz(JS(e, "time"), "(null)"));

	r = POST(f, "/_sim/clock", "{\"offset_s\":0}");
	EXPECT_CODE(f, r, 200);
	c   = mk_cm(f, "", "default", "present", "k", "v");
	now = (long long) time(NULL);
	ts  = parse_time(JS(c->j, "metadata.creationTimestamp"));
	EXPECT(f, c, ts >= now - 60 && ts <= now + 60,
	    "creationTimestamp %s after offset 0",
	    nz(JS(c->j, "metadata.creationTimestamp"), "(null)"));
	finish(f);
}

#define T(name, fn)                                                           \
	{                                                                     \
		name, fn, setup, teardown, NULL                               \
	}
#define TB(name, fn)                                                          \
	{                                                                     \
		name, fn, setup_bm, teardown, NULL                            \
	}

int
main(void)
{
	mcf_alloc_init_libs();
	mcf_log_init("ks_faults_test", MCF_LOG_WARN);
	const struct CMUnitTest tests[] = {
		/* latency */
		T("latency_ms: headers phase (gets and watches)",
		    test_faults_latency_headers),
		T("latency_ms: body phase", test_faults_latency_body),
		T("jitter_ms varies the delay", test_faults_latency_jitter),
		T("latency rules add up", test_faults_latency_adds_up),
		/* status */
		T("status 429 with retry_after",
		    test_faults_status_429_retry_after),
		T("status 429 without retry_after",
		    test_faults_status_429_without_retry_after),
		T("status 500, 503, 504", test_faults_status_5xx),
		/* connections */
		T("conn reset", test_faults_conn_reset),
		T("conn hang", test_faults_conn_hang),
		T("conn truncate after_bytes", test_faults_conn_truncate),
		T("truncate, throttle and body latency on a watch",
		    test_faults_shaping_on_watch),
		/* watch */
		T("watch close after_events, clean",
		    test_faults_watch_close_clean),
		T("watch close after_events, abrupt",
		    test_faults_watch_close_abrupt),
		T("watch close after_events, midline",
		    test_faults_watch_close_midline),
		T("watch close after_s", test_faults_watch_close_after_s),
		T("watch expire, ERROR event form",
		    test_faults_watch_expire_event),
		T("watch expire, HTTP 410 form",
		    test_faults_watch_expire_http),
		T("watch expire_storm for_s", test_faults_watch_expire_storm),
		/* list */
		T("list expire_continue", test_faults_list_expire_continue),
		T("list expire_continue: the rv=-1 token works while the "
		  "rule stays",
		    test_faults_list_expire_continue_token_works),
		T("list too_large_rv", test_faults_list_too_large_rv),
		T("list stale lag_rv", test_faults_list_stale),
		/* bookmarks, buffers, throttling, conflicts */
		TB("bookmarks off", test_faults_bookmarks_off),
		T("bookmarks every_s", test_faults_bookmarks_every),
		T("watch_buffer drops a stalled reader",
		    test_faults_watch_buffer),
		T("throttle_bps", test_faults_throttle_bps),
		T("conflict", test_faults_conflict),
		/* planes */
		T("plane unavailable", test_faults_plane_unavailable),
		T("plane gone", test_faults_plane_gone),
		T("preset plane_warmup_429", test_faults_plane_warmup_429),
		/* matching and counting */
		T("match plane", test_faults_match_plane),
		T("match verb, method, group, resource",
		    test_faults_match_verb_method_resource),
		T("match namespace and name",
		    test_faults_match_namespace_name),
		T("match path_regex", test_faults_match_path_regex),
		T("match ua_regex", test_faults_match_ua_regex),
		T("count and after", test_faults_count_and_after),
		T("probability with --seed", test_faults_probability_seeded),
		T("for_s window", test_faults_for_s_window),
		/* rule management */
		T("DELETE one rule and all", test_faults_delete_one_and_all),
		T("malformed rules are 400", test_faults_malformed_rules_400),
		/* endpoints */
		T("/_sim/touch", test_faults_sim_touch),
		T("/_sim/bookmark", test_faults_sim_bookmark),
		T("/_sim/restart keep_state false",
		    test_faults_sim_restart_drop_state),
		T("/_sim/restart keep_state, reset_rv",
		    test_faults_sim_restart_reset_rv),
		T("/_sim/watchers fields", test_faults_sim_watchers),
		T("/_sim/compact", test_faults_sim_compact),
		T("/_sim/load create, update, delete",
		    test_faults_sim_load_ops),
		T("/_sim/load rate", test_faults_sim_load_rate),
		T("/_sim/clock", test_faults_sim_clock),
	};
	return cmocka_run_group_tests_name(
	    "ks_faults", tests, ks_fx_group_setup, ks_fx_group_teardown);
}

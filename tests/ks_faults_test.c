/*
 * ks_faults_test.c — kubesim's fault injection as a client sees it
 * (KUBE_API.md §7, the contract, and the /_sim/ endpoints of part 1):
 * one test per rule action, the rule matching and counting knobs, rule
 * management, and /_sim/touch, /_sim/bookmark, /_sim/restart, /_sim/load
 * and /_sim/clock.
 *
 * Each test gets a fresh ks_sim built exactly as kubesim's main.c builds
 * it (fault rules included, with a fixed --seed), listening on 127.0.0.1
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

#define MILO_GV "/apis/resourcemanager.miloapis.com/v1alpha1"
#define PROJECTS MILO_GV "/projects"
#define SEED 4242
#define TOO_LARGE_PREFIX "Timeout: Too large resource version"
#define CONTINUE_410_PREFIX                                                   \
	"The provided continue parameter is too old to display a consistent " \
	"list result."

static int timeout_scale = 1;

/* --- time ------------------------------------------------------------ */

static int64_t
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A deadline `ms` from now, stretched under the sanitizers. */
static int64_t
deadline(int ms)
{
	return now_ms() + (int64_t) ms * timeout_scale;
}

static void
sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long) (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/* --- buffers and JSON access ------------------------------------------ */

typedef struct dbuf {
	char  *p;
	size_t len;
} dbuf;

static void
dbuf_add(dbuf *b, const void *p, size_t n)
{
	b->p = mcf_realloc(b->p, b->len + n + 1);
	memcpy(b->p + b->len, p, n);
	b->len += n;
	b->p[b->len] = '\0';
}

/* Value at a dotted path; a numeric segment indexes an array. Borrowed. */
static json_t *
J(const json_t *root, const char *path)
{
	const json_t *cur = root;
	const char   *p   = path;
	char          seg[256];
	while (cur != NULL && *p != '\0') {
		const char *e = strchr(p, '.');
		size_t      n = e ? (size_t) (e - p) : strlen(p);
		snprintf(seg, sizeof(seg), "%.*s", (int) n, p);
		if (json_is_array(cur) && isdigit((unsigned char) seg[0]))
			cur = json_array_get(cur, (size_t) atoi(seg));
		else
			cur = json_object_get(cur, seg);
		p = e ? e + 1 : p + n;
	}
	return (json_t *) cur;
}

static const char *
JS(const json_t *root, const char *path)
{
	return json_string_value(J(root, path));
}

/* Integer at `path`, or -1 when absent or not an integer. */
static long long
JI(const json_t *root, const char *path)
{
	json_t *v = J(root, path);
	return json_is_integer(v) ? (long long) json_integer_value(v) : -1;
}

static const char *
nz(const char *s, const char *dflt)
{
	return s != NULL ? s : dflt;
}

static uint64_t
rv_num(const char *s)
{
	return s ? strtoull(s, NULL, 10) : 0;
}

/* --- the server ------------------------------------------------------- */

/* One in-process kubesim, built as main.c builds it. */
typedef struct srv {
	ks_sim    s;
	pthread_t th;
	char      base[64];
} srv;

static void *
server_main(void *arg)
{
	srv *v  = arg;
	int  rc = ks_httpd_run(v->s.httpd);
	if (rc != MCF_OK)
		fprintf(stderr, "ks_httpd_run: %s\n", mcf_strerror(rc));
	return NULL;
}

static srv *
srv_start(uint64_t seed, int64_t bookmark_ms)
{
	srv *v   = mcf_calloc(1, sizeof(*v));
	v->s.opt = (ks_sim_options) {
		.bookmark_ms       = bookmark_ms,
		.watch_timeout_ms  = 30 * 60 * 1000,
		.ready_after_ms    = -1,
		.history           = 10000,
		.rv0_ignores_limit = true,
		.legacy_discovery  = false,
		.table             = true,
		.gitversion        = "v1.32.4",
		.request_log       = 10000,
	};
	v->s.reqlog = json_array();
	v->s.faults = ks_faults_create(seed);
	if (ks_store_create(&v->s.store, v->s.opt.history) != 0)
		fail_msg("ks_store_create failed");
	ks_httpd_config hc       = { .listen = "127.0.0.1:0",
		      .handler               = ks_api_handle,
		      .handler_arg           = &v->s };
	char            err[256] = "";
	int rc = ks_httpd_create(&v->s.httpd, &hc, err, sizeof(err));
	if (rc != MCF_OK)
		fail_msg("ks_httpd_create: %s: %s", mcf_strerror(rc), err);
	v->s.hub = ks_watchhub_create(&v->s);
	ks_ops_init(&v->s);
	ks_ops_seed_plane(&v->s, ks_store_root(v->s.store));
	snprintf(v->base, sizeof(v->base), "%s://127.0.0.1:%d",
	    ks_httpd_scheme(v->s.httpd), ks_httpd_port(v->s.httpd));
	assert_int_equal(pthread_create(&v->th, NULL, server_main, v), 0);
	return v;
}

/* Stops the loop and frees everything in main.c's order. */
static void
srv_stop(srv *v)
{
	if (v == NULL)
		return;
	ks_httpd_stop(v->s.httpd);
	pthread_join(v->th, NULL);
	ks_milo_destroy(v->s.milo);
	ks_ops_fini(&v->s);
	ks_httpd_destroy(v->s.httpd);
	ks_watchhub_destroy(v->s.hub);
	ks_store_destroy(v->s.store);
	ks_faults_destroy(v->s.faults);
	json_decref(v->s.reqlog);
	free(v);
}

/* --- the fixture ------------------------------------------------------ */

typedef struct resp {
	char        *what; /* "METHOD PATH" */
	long         code;
	CURLcode     cres;
	double       total_ms; /* whole exchange */
	double       ttfb_ms;  /* until the first response byte */
	dbuf         body;
	dbuf         head;
	json_t      *j; /* parsed body or NULL */
	struct resp *next;
} resp;

typedef struct wstream wstream;

typedef struct rawc {
	int          fd;
	struct rawc *next;
} rawc;

typedef struct fx {
	srv     *v;     /* the server of the test */
	srv     *extra; /* a second server (seed test), or NULL */
	CURL    *curl;
	resp    *resps;   /* every response, freed at teardown */
	wstream *watches; /* open watch streams */
	rawc    *raws;    /* raw sockets */
	char   **strs;    /* arena of strings */
	size_t   nstrs;
	json_t  *keep;  /* JSON values kept until teardown */
	int      nfail; /* soft expectations broken */
} fx;

static int
fx_setup(void **state, int64_t bookmark_ms)
{
	fx *f   = mcf_calloc(1, sizeof(*f));
	f->keep = json_array();
	f->v    = srv_start(SEED, bookmark_ms);
	f->curl = curl_easy_init();
	assert_non_null(f->curl);
	*state = f;
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

static void watch_close(wstream *w);

static int
teardown(void **state)
{
	fx *f = *state;
	while (f->watches != NULL)
		watch_close(f->watches);
	while (f->raws != NULL) {
		rawc *r = f->raws;
		f->raws = r->next;
		if (r->fd >= 0)
			close(r->fd);
		free(r);
	}
	curl_easy_cleanup(f->curl);
	srv_stop(f->v);
	srv_stop(f->extra);
	while (f->resps != NULL) {
		resp *r  = f->resps;
		f->resps = r->next;
		free(r->what);
		free(r->body.p);
		free(r->head.p);
		json_decref(r->j);
		free(r);
	}
	for (size_t i = 0; i < f->nstrs; i++)
		free(f->strs[i]);
	free(f->strs);
	json_decref(f->keep);
	free(f);
	return 0;
}

/* --- strings ---------------------------------------------------------- */

static const char *
keep_str(fx *f, char *s)
{
	f->strs = mcf_realloc(f->strs, (f->nstrs + 1) * sizeof(*f->strs));
	f->strs[f->nstrs++] = s;
	return s;
}

static const char *S(fx *f, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* printf into a string freed at teardown. */
static const char *
S(fx *f, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s = mcf_vasprintf(fmt, ap);
	va_end(ap);
	return keep_str(f, s);
}

static const char *Q(fx *f, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Like S, then every ' becomes " (JSON without escapes). */
static const char *
Q(fx *f, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s = mcf_vasprintf(fmt, ap);
	va_end(ap);
	for (char *p = s; *p != '\0'; p++)
		if (*p == '\'')
			*p = '"';
	return keep_str(f, s);
}

/* Compact JSON text of `v` ("(null)" for NULL), freed at teardown. */
static const char *
D(fx *f, const json_t *v)
{
	if (v == NULL)
		return "(null)";
	return keep_str(f, mcf_json_dump(v));
}

/* Keeps `v` (a new reference) until teardown; returns it. */
static json_t *
kept(fx *f, json_t *v)
{
	if (v != NULL)
		json_array_append_new(f->keep, v);
	return v;
}

/* Percent-encodes a query value. */
static const char *
esc(fx *f, const char *s)
{
	char *e = curl_easy_escape(f->curl, s, 0);
	if (e == NULL)
		fail_msg("curl_easy_escape failed");
	const char *out = S(f, "%s", e);
	curl_free(e);
	return out;
}

/* --- expectations ----------------------------------------------------- */

static void
report(fx *f, int line, const resp *r, const char *fmt, va_list ap)
{
	char msg[1024];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	fprintf(stderr, "  ks_faults_test.c:%d: EXPECTATION FAILED: %s\n",
	    line, msg);
	if (r != NULL)
		fprintf(stderr,
		    "    request: %s\n    reply: %ld (curl: %s) %.*s\n",
		    r->what, r->code, curl_easy_strerror(r->cres),
		    r->body.len > 700 ? 700 : (int) r->body.len,
		    r->body.p ? r->body.p : "");
	f->nfail++;
}

static bool expect_at(fx *f, int line, const resp *r, bool ok, const char *fmt,
    ...) __attribute__((format(printf, 5, 6)));

static bool
expect_at(fx *f, int line, const resp *r, bool ok, const char *fmt, ...)
{
	if (ok)
		return true;
	va_list ap;
	va_start(ap, fmt);
	report(f, line, r, fmt, ap);
	va_end(ap);
	return false;
}

#define EXPECT(f, r, cond, ...)                                               \
	expect_at((f), __LINE__, (r), (cond), __VA_ARGS__)

static bool
expect_code_at(fx *f, int line, const resp *r, long code)
{
	return expect_at(
	    f, line, r, r->code == code, "HTTP %ld, want %ld", r->code, code);
}
#define EXPECT_CODE(f, r, c) expect_code_at((f), __LINE__, (r), (c))

static bool
expect_str_at(fx *f, int line, const resp *r, const char *what,
    const char *got, const char *want)
{
	bool ok = got != NULL && want != NULL ? strcmp(got, want) == 0
	                                      : got == want;
	return expect_at(f, line, r, ok, "%s = %s%s%s, want %s%s%s", what,
	    got ? "\"" : "", got ? got : "(null)", got ? "\"" : "",
	    want ? "\"" : "", want ? want : "(null)", want ? "\"" : "");
}
#define EXPECT_STR(f, r, got, want)                                           \
	expect_str_at((f), __LINE__, (r), #got, (got), (want))
#define EXPECT_JS(f, r, path, want)                                           \
	expect_str_at((f), __LINE__, (r), path, JS((r)->j, path), (want))

static bool
expect_int_at(fx *f, int line, const resp *r, const char *what, long long got,
    long long want)
{
	return expect_at(
	    f, line, r, got == want, "%s = %lld, want %lld", what, got, want);
}
#define EXPECT_INT(f, r, got, want)                                           \
	expect_int_at(                                                        \
	    (f), __LINE__, (r), #got, (long long) (got), (long long) (want))

enum msg_match { MSG_ANY, MSG_EXACT, MSG_PREFIX };

/* A Status object (a reply body or an ERROR event's object). */
static bool
expect_status_obj_at(fx *f, int line, const resp *r, const json_t *st,
    long code, const char *reason, enum msg_match mm, const char *msg)
{
	bool ok = expect_at(
	    f, line, r, json_is_object(st), "body is not a JSON object");
	if (!json_is_object(st))
		return false;
	ok &= expect_str_at(f, line, r, "kind", JS(st, "kind"), "Status");
	ok &= expect_str_at(
	    f, line, r, "apiVersion", JS(st, "apiVersion"), "v1");
	ok &= expect_str_at(f, line, r, "status", JS(st, "status"), "Failure");
	ok &= expect_str_at(f, line, r, "reason", JS(st, "reason"), reason);
	ok &= expect_int_at(f, line, r, "code", JI(st, "code"), code);
	const char *m = JS(st, "message");
	if (mm == MSG_EXACT)
		ok &= expect_str_at(f, line, r, "message", m, msg);
	else if (mm == MSG_PREFIX)
		ok &= expect_at(f, line, r,
		    m != NULL && strncmp(m, msg, strlen(msg)) == 0,
		    "message \"%s\" does not start with \"%s\"",
		    m ? m : "(null)", msg);
	return ok;
}

static bool
expect_status_at(fx *f, int line, const resp *r, long code, const char *reason,
    enum msg_match mm, const char *msg)
{
	bool ok = expect_code_at(f, line, r, code);
	return expect_status_obj_at(f, line, r, r->j, code, reason, mm, msg)
	    && ok;
}
#define EXPECT_STATUS(f, r, code, reason, msg)                                \
	expect_status_at((f), __LINE__, (r), (code), (reason),                \
	    (msg) ? MSG_EXACT : MSG_ANY, (msg))
#define EXPECT_STATUS_PREFIX(f, r, code, reason, msg)                         \
	expect_status_at(                                                     \
	    (f), __LINE__, (r), (code), (reason), MSG_PREFIX, (msg))
#define EXPECT_STATUS_OBJ(f, r, st, code, reason, mm, msg)                    \
	expect_status_obj_at(                                                 \
	    (f), __LINE__, (r), (st), (code), (reason), (mm), (msg))

static void
need_code_at(fx *f, int line, const resp *r, long code)
{
	if (r->code == code && r->cres == CURLE_OK)
		return;
	fprintf(stderr,
	    "  ks_faults_test.c:%d: REQUIRED: %s -> %ld (curl: %s; want %ld): "
	    "%.*s\n",
	    line, r->what, r->code, curl_easy_strerror(r->cres), code,
	    r->body.len > 700 ? 700 : (int) r->body.len,
	    r->body.p ? r->body.p : "");
	fail_msg("ks_faults_test.c:%d: %s got %ld, want %ld (%d soft "
	         "failures before)",
	    line, r->what, r->code, code, f->nfail);
}
#define NEED_CODE(f, r, c) need_code_at((f), __LINE__, (r), (c))

static void
need_at(fx *f, int line, bool ok, const char *what)
{
	if (!ok)
		fail_msg("ks_faults_test.c:%d: required: %s (%d soft failures "
		         "before)",
		    line, what, f->nfail);
}
#define NEED(f, cond) need_at((f), __LINE__, (cond), #cond)

static void
finish(fx *f)
{
	if (f->nfail > 0)
		fail_msg("%d expectation(s) failed (see above)", f->nfail);
}

/* --- requests --------------------------------------------------------- */

static size_t
on_data(char *p, size_t sz, size_t n, void *arg)
{
	dbuf_add(arg, p, sz * n);
	return sz * n;
}

typedef struct ropt {
	const srv  *v;          /* NULL: the fixture's server */
	const char *ua;         /* User-Agent, NULL: none */
	const char *ctype;      /* body Content-Type */
	long        timeout_ms; /* 0: 20 s (scaled) */
} ropt;

/* One request on a fresh connection; never fails the test, the curl
 * result is in `cres`. */
static resp *
request(fx *f, const ropt *o, const char *method, const char *path,
    const char *body)
{
	static const ropt none = { 0 };
	if (o == NULL)
		o = &none;
	const srv *v = o->v ? o->v : f->v;
	resp      *r = mcf_calloc(1, sizeof(*r));
	r->what      = mcf_asprintf("%s %s", method, path);
	r->next      = f->resps;
	f->resps     = r;
	CURL *c      = f->curl;
	curl_easy_reset(c);
	char              *url = mcf_asprintf("%s%s", v->base, path);
	struct curl_slist *h   = NULL;
	char              *ct  = NULL;
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_FRESH_CONNECT, 1L);
	curl_easy_setopt(c, CURLOPT_FORBID_REUSE, 1L);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	if (body != NULL) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(
		    c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) strlen(body));
		ct = mcf_asprintf("Content-Type: %s",
		    o->ctype ? o->ctype : "application/json");
		h  = curl_slist_append(h, ct);
	}
	if (o->ua != NULL)
		curl_easy_setopt(c, CURLOPT_USERAGENT, o->ua);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &r->body);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &r->head);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS,
	    o->timeout_ms > 0 ? o->timeout_ms : 20000L * timeout_scale);
	r->cres = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->code);
	curl_off_t us = 0;
	curl_easy_getinfo(c, CURLINFO_TOTAL_TIME_T, &us);
	r->total_ms = (double) us / 1000.0;
	us          = 0;
	curl_easy_getinfo(c, CURLINFO_STARTTRANSFER_TIME_T, &us);
	r->ttfb_ms = (double) us / 1000.0;
	curl_slist_free_all(h);
	free(url);
	free(ct);
	if (r->body.len > 0) {
		json_error_t e;
		r->j = json_loadb(r->body.p, r->body.len, 0, &e);
	}
	return r;
}

/* A request whose transfer must complete (any HTTP code). */
static resp *
req_ok(fx *f, const char *method, const char *path, const char *body)
{
	resp *r = request(f, NULL, method, path, body);
	if (r->cres != CURLE_OK)
		fail_msg("%s: curl: %s", r->what, curl_easy_strerror(r->cres));
	return r;
}

static resp *
GET(fx *f, const char *path)
{
	return req_ok(f, "GET", path, NULL);
}

static resp *
POST(fx *f, const char *path, const char *body)
{
	return req_ok(f, "POST", path, body);
}

static resp *
PUT(fx *f, const char *path, const char *body)
{
	return req_ok(f, "PUT", path, body);
}

static resp *
MERGE(fx *f, const char *path, const char *body)
{
	ropt  o = { .ctype = "application/merge-patch+json" };
	resp *r = request(f, &o, "PATCH", path, body);
	if (r->cres != CURLE_OK)
		fail_msg("%s: curl: %s", r->what, curl_easy_strerror(r->cres));
	return r;
}

static resp *
DEL(fx *f, const char *path)
{
	return req_ok(f, "DELETE", path, NULL);
}

/* Value of response header `name` (last occurrence) or NULL. */
static const char *
header_in(fx *f, const dbuf *head, const char *name)
{
	const char *found = NULL;
	size_t      flen  = 0;
	size_t      nl    = strlen(name);
	const char *p     = head->p;
	while (p != NULL && *p != '\0') {
		const char *e = strstr(p, "\r\n");
		size_t      n = e ? (size_t) (e - p) : strlen(p);
		if (n > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
			found = p + nl + 1;
			while (*found == ' ')
				found++;
			flen = n - (size_t) (found - p);
		}
		p = e ? e + 2 : p + n;
	}
	return found ? S(f, "%.*s", (int) flen, found) : NULL;
}

static const char *
header(fx *f, const resp *r, const char *name)
{
	return header_in(f, &r->head, name);
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

struct wstream {
	fx      *f;
	CURLM   *m;
	CURL    *e;
	char    *url;
	dbuf     data;
	dbuf     head;
	size_t   off;    /* bytes already split into lines */
	json_t  *events; /* every complete line, parsed */
	int      bad;    /* complete lines that were not JSON */
	bool     done;
	CURLcode result;
	long     code;
	int64_t  opened_ms;
	int64_t  headers_ms; /* when the headers arrived */
	int64_t  done_ms;
	wstream *next;
};

static size_t
on_watch_data(char *p, size_t sz, size_t n, void *arg)
{
	wstream *w = arg;
	dbuf_add(&w->data, p, sz * n);
	for (;;) {
		char *nl
		    = memchr(w->data.p + w->off, '\n', w->data.len - w->off);
		if (nl == NULL)
			break;
		size_t       len = (size_t) (nl - (w->data.p + w->off));
		json_error_t e;
		json_t      *j = json_loadb(w->data.p + w->off, len, 0, &e);
		if (!json_is_object(j)) {
			w->bad++;
			json_decref(j);
			j = json_pack("{s:s}", "bad", "line");
		}
		json_array_append_new(w->events, j);
		w->off += len + 1;
	}
	return sz * n;
}

static void
watch_pump(wstream *w, int wait_ms)
{
	int running = 0;
	if (w->done)
		return;
	curl_multi_perform(w->m, &running);
	if (running > 0) {
		curl_multi_poll(w->m, NULL, 0, wait_ms, NULL);
		curl_multi_perform(w->m, &running);
	}
	if (w->code == 0) {
		curl_easy_getinfo(w->e, CURLINFO_RESPONSE_CODE, &w->code);
		if (w->code != 0)
			w->headers_ms = now_ms();
	}
	int      q;
	CURLMsg *msg;
	while ((msg = curl_multi_info_read(w->m, &q)) != NULL) {
		if (msg->msg == CURLMSG_DONE) {
			w->done    = true;
			w->done_ms = now_ms();
			w->result  = msg->data.result;
			curl_easy_getinfo(
			    w->e, CURLINFO_RESPONSE_CODE, &w->code);
			if (w->headers_ms == 0)
				w->headers_ms = w->done_ms;
		}
	}
}

/* Opens a watch (User-Agent `ua` or none) and returns once its response
 * headers arrived or the request finished; waits at most `ms`. */
static wstream *
watch_open_ua(fx *f, const char *path, const char *ua, int ms)
{
	wstream *w   = mcf_calloc(1, sizeof(*w));
	w->f         = f;
	w->events    = json_array();
	w->next      = f->watches;
	f->watches   = w;
	w->url       = mcf_asprintf("%s%s", f->v->base, path);
	w->m         = curl_multi_init();
	w->e         = curl_easy_init();
	w->opened_ms = now_ms();
	curl_easy_setopt(w->e, CURLOPT_URL, w->url);
	curl_easy_setopt(w->e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(w->e, CURLOPT_WRITEFUNCTION, on_watch_data);
	curl_easy_setopt(w->e, CURLOPT_WRITEDATA, w);
	curl_easy_setopt(w->e, CURLOPT_HEADERFUNCTION, on_data);
	curl_easy_setopt(w->e, CURLOPT_HEADERDATA, &w->head);
	curl_easy_setopt(w->e, CURLOPT_TIMEOUT_MS, 60000L * timeout_scale);
	if (ua != NULL)
		curl_easy_setopt(w->e, CURLOPT_USERAGENT, ua);
	curl_multi_add_handle(w->m, w->e);
	int64_t end = deadline(ms);
	while (!w->done && w->code == 0 && now_ms() < end)
		watch_pump(w, 20);
	if (!w->done && w->code == 0)
		fail_msg("watch %s: no response headers", path);
	return w;
}

static wstream *
watch_open(fx *f, const char *path)
{
	return watch_open_ua(f, path, NULL, 5000);
}

static void
watch_close(wstream *w)
{
	fx *f = w->f;
	for (wstream **pp = &f->watches; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == w) {
			*pp = w->next;
			break;
		}
	}
	curl_multi_remove_handle(w->m, w->e);
	curl_easy_cleanup(w->e);
	curl_multi_cleanup(w->m);
	free(w->url);
	free(w->data.p);
	free(w->head.p);
	json_decref(w->events);
	free(w);
}

/* Waits until `n` events arrived, the stream ended or `ms` passed. */
static size_t
watch_wait(wstream *w, size_t n, int ms)
{
	int64_t end = deadline(ms);
	while (json_array_size(w->events) < n && !w->done && now_ms() < end)
		watch_pump(w, 20);
	return json_array_size(w->events);
}

/* Keeps reading every stream of `ws` for `ms` (not stretched). */
static void
watch_idle_all(wstream **ws, size_t n, int ms)
{
	int64_t end = now_ms() + ms;
	while (now_ms() < end)
		for (size_t i = 0; i < n; i++)
			watch_pump(ws[i], 10);
}

static size_t
watch_idle(wstream *w, int ms)
{
	watch_idle_all(&w, 1, ms);
	return json_array_size(w->events);
}

static bool
watch_wait_done(wstream *w, int ms)
{
	int64_t end = deadline(ms);
	while (!w->done && now_ms() < end)
		watch_pump(w, 20);
	return w->done;
}

static json_t *
ev(const wstream *w, size_t i)
{
	return json_array_get(w->events, i);
}

static const char *
ev_type(const wstream *w, size_t i)
{
	return JS(ev(w, i), "type");
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
static const char *
ev_summary(fx *f, const wstream *w)
{
	char *out = mcf_strdup("");
	for (size_t i = 0; i < json_array_size(w->events); i++) {
		const char *name = JS(ev(w, i), "object.metadata.name");
		char       *n    = mcf_asprintf("%s%s%s:%s", out, i ? " " : "",
		             nz(ev_type(w, i), "?"),
                    name ? name
		                  : nz(JS(ev(w, i), "object.metadata.resourceVersion"),
		                      "-"));
		free(out);
		out = n;
	}
	return keep_str(f, out);
}

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
	rawc *r = mcf_calloc(1, sizeof(*r));
	r->fd   = fd;
	r->next = f->raws;
	f->raws = r;
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

/* --------------------------------------------------------------------- */

static int
group_setup(void **state)
{
	(void) state;
	const char *sc = getenv("MCF_TEST_TIMEOUT_SCALE");
	if (sc != NULL && atoi(sc) > 0)
		timeout_scale = atoi(sc);
	return curl_global_init(CURL_GLOBAL_ALL) == CURLE_OK ? 0 : -1;
}

static int
group_teardown(void **state)
{
	(void) state;
	curl_global_cleanup();
	return 0;
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
	    "ks_faults", tests, group_setup, group_teardown);
}

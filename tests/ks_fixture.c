/*
 * ks_fixture.c — the in-process kubesim fixture and libcurl helpers shared
 * by the kubesim API tests; see ks_fixture.h.
 */
#include "ks_fixture.h"

#include <ctype.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "alloc.h"
#include "api.h"
#include "err.h"
#include "faults.h"
#include "httpd.h"
#include "json.h"
#include "milo.h"
#include "ops.h"
#include "store.h"
#include "watch.h"

/* MCF_TEST_TIMEOUT_SCALE: a test-program setting, written once by the
 * group setup before any server thread starts, read-only afterwards. */
static int timeout_scale = 1;

int
ks_fx_group_setup(void **state)
{
	(void) state;
	const char *sc = getenv("MCF_TEST_TIMEOUT_SCALE");
	if (sc != NULL && atoi(sc) > 0)
		timeout_scale = atoi(sc);
	return curl_global_init(CURL_GLOBAL_ALL) == CURLE_OK ? 0 : -1;
}

int
ks_fx_group_teardown(void **state)
{
	(void) state;
	curl_global_cleanup();
	return 0;
}

int
ks_fx_timeout_scale(void)
{
	return timeout_scale;
}

/* --- time ------------------------------------------------------------ */

int64_t
ks_fx_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
ks_fx_deadline(int ms)
{
	return ks_fx_now_ms() + (int64_t) ms * timeout_scale;
}

void
ks_fx_sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long) (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/* --- buffers and JSON access ------------------------------------------ */

void
ks_fx_dbuf_add(ks_fx_dbuf *b, const void *p, size_t n)
{
	b->p = mcf_realloc(b->p, b->len + n + 1);
	memcpy(b->p + b->len, p, n);
	b->len += n;
	b->p[b->len] = '\0';
}

json_t *
ks_fx_json_at(const json_t *root, const char *path)
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

const char *
ks_fx_json_str(const json_t *root, const char *path)
{
	return json_string_value(ks_fx_json_at(root, path));
}

long long
ks_fx_json_int(const json_t *root, const char *path)
{
	json_t *v = ks_fx_json_at(root, path);
	return json_is_integer(v) ? (long long) json_integer_value(v) : -1;
}

const char *
ks_fx_nz(const char *s, const char *dflt)
{
	return s != NULL ? s : dflt;
}

uint64_t
ks_fx_rv_num(const char *s)
{
	return s ? strtoull(s, NULL, 10) : 0;
}

/* --- the server ------------------------------------------------------- */

static void *
server_main(void *arg)
{
	ks_fx_srv *v  = arg;
	int        rc = ks_httpd_run(v->s.httpd);
	if (rc != MCF_OK)
		fprintf(stderr, "ks_httpd_run: %s\n", mcf_strerror(rc));
	return NULL;
}

ks_fx_srv *
ks_fx_srv_start(const ks_fx_srv_options *o)
{
	ks_fx_srv *v = mcf_calloc(1, sizeof(*v));
	v->s.opt     = (ks_sim_options) {
		.bookmark_ms       = o->bookmark_ms,
		.watch_timeout_ms  = 30 * 60 * 1000,
		.ready_after_ms    = o->ready_after_ms,
		.history           = 10000,
		.rv0_ignores_limit = true,
		.legacy_discovery  = false,
		.table             = o->table,
		.gitversion        = "v1.32.4",
		.request_log       = 10000,
	};
	v->s.reqlog = json_array();
	if (o->faults)
		v->s.faults = ks_faults_create(o->seed);
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
	if (v->s.opt.ready_after_ms >= 0)
		v->s.milo = ks_milo_create(&v->s, v->s.opt.ready_after_ms);
	ks_ops_seed_plane(&v->s, ks_store_root(v->s.store));
	snprintf(v->base, sizeof(v->base), "%s://127.0.0.1:%d",
	    ks_httpd_scheme(v->s.httpd), ks_httpd_port(v->s.httpd));
	assert_int_equal(pthread_create(&v->th, NULL, server_main, v), 0);
	return v;
}

void
ks_fx_srv_stop(ks_fx_srv *v)
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
	if (v->s.faults != NULL)
		ks_faults_destroy(v->s.faults);
	json_decref(v->s.reqlog);
	free(v);
}

/* --- the fixture ------------------------------------------------------ */

struct ks_fx_rawc {
	int         fd;
	ks_fx_rawc *next;
};

ks_fx *
ks_fx_create(const ks_fx_options *o)
{
	ks_fx *f = mcf_calloc(1, sizeof(*f));
	f->name  = o->name;
	f->fresh = o->fresh;
	f->keep  = json_array();
	f->v     = ks_fx_srv_start(&o->srv);
	f->curl  = curl_easy_init();
	assert_non_null(f->curl);
	return f;
}

void
ks_fx_destroy(ks_fx *f)
{
	while (f->watches != NULL)
		ks_fx_watch_close(f->watches);
	while (f->raws != NULL) {
		ks_fx_rawc *r = f->raws;
		f->raws       = r->next;
		if (r->fd >= 0)
			close(r->fd);
		free(r);
	}
	curl_easy_cleanup(f->curl);
	ks_fx_srv_stop(f->v);
	ks_fx_srv_stop(f->extra);
	while (f->resps != NULL) {
		ks_fx_resp *r = f->resps;
		f->resps      = r->next;
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
}

int
ks_fx_keep_fd(ks_fx *f, int fd)
{
	ks_fx_rawc *r = mcf_calloc(1, sizeof(*r));
	r->fd         = fd;
	r->next       = f->raws;
	f->raws       = r;
	return fd;
}

/* --- strings and values kept until teardown --------------------------- */

const char *
ks_fx_keep_str(ks_fx *f, char *s)
{
	f->strs = mcf_realloc(f->strs, (f->nstrs + 1) * sizeof(*f->strs));
	f->strs[f->nstrs++] = s;
	return s;
}

const char *
ks_fx_str(ks_fx *f, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s = mcf_vasprintf(fmt, ap);
	va_end(ap);
	return ks_fx_keep_str(f, s);
}

const char *
ks_fx_quote(ks_fx *f, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s = mcf_vasprintf(fmt, ap);
	va_end(ap);
	for (char *p = s; *p != '\0'; p++)
		if (*p == '\'')
			*p = '"';
	return ks_fx_keep_str(f, s);
}

const char *
ks_fx_dump(ks_fx *f, const json_t *v)
{
	if (v == NULL)
		return "(null)";
	return ks_fx_keep_str(f, mcf_json_dump(v));
}

json_t *
ks_fx_copy(ks_fx *f, const json_t *v)
{
	json_t *c = json_deep_copy(v);
	assert_non_null(c);
	json_array_append_new(f->keep, c);
	return c;
}

json_t *
ks_fx_kept(ks_fx *f, json_t *v)
{
	if (v != NULL)
		json_array_append_new(f->keep, v);
	return v;
}

const char *
ks_fx_escape(ks_fx *f, const char *s)
{
	char *e = curl_easy_escape(f->curl, s, 0);
	if (e == NULL)
		fail_msg("curl_easy_escape failed");
	const char *out = ks_fx_str(f, "%s", e);
	curl_free(e);
	return out;
}

/* --- expectations ----------------------------------------------------- */

static void
report(ks_fx *f, int line, const ks_fx_resp *r, const char *fmt, va_list ap)
{
	char msg[1024];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	fprintf(stderr, "  %s:%d: EXPECTATION FAILED: %s\n", f->name, line,
	    msg);
	if (r != NULL)
		fprintf(stderr,
		    "    request: %s\n    reply: %ld (curl: %s) %.*s\n",
		    r->what, r->code, curl_easy_strerror(r->cres),
		    r->body.len > 700 ? 700 : (int) r->body.len,
		    r->body.p ? r->body.p : "");
	f->nfail++;
}

bool
ks_fx_expect_at(
    ks_fx *f, int line, const ks_fx_resp *r, bool ok, const char *fmt, ...)
{
	if (ok)
		return true;
	va_list ap;
	va_start(ap, fmt);
	report(f, line, r, fmt, ap);
	va_end(ap);
	return false;
}

bool
ks_fx_expect_code_at(ks_fx *f, int line, const ks_fx_resp *r, long code)
{
	return ks_fx_expect_at(
	    f, line, r, r->code == code, "HTTP %ld, want %ld", r->code, code);
}

bool
ks_fx_expect_str_at(ks_fx *f, int line, const ks_fx_resp *r, const char *what,
    const char *got, const char *want)
{
	bool ok = got != NULL && want != NULL ? strcmp(got, want) == 0
	                                      : got == want;
	return ks_fx_expect_at(f, line, r, ok, "%s = %s%s%s, want %s%s%s",
	    what, got ? "\"" : "", got ? got : "(null)", got ? "\"" : "",
	    want ? "\"" : "", want ? want : "(null)", want ? "\"" : "");
}

bool
ks_fx_expect_int_at(ks_fx *f, int line, const ks_fx_resp *r, const char *what,
    long long got, long long want)
{
	return ks_fx_expect_at(
	    f, line, r, got == want, "%s = %lld, want %lld", what, got, want);
}

bool
ks_fx_expect_status_obj_at(ks_fx *f, int line, const ks_fx_resp *r,
    const json_t *st, long code, const char *reason, enum ks_fx_msg_match mm,
    const char *msg)
{
	bool ok = ks_fx_expect_at(
	    f, line, r, json_is_object(st), "body is not a JSON object");
	if (!json_is_object(st))
		return false;
	ok &= ks_fx_expect_str_at(
	    f, line, r, "kind", ks_fx_json_str(st, "kind"), "Status");
	ok &= ks_fx_expect_str_at(
	    f, line, r, "apiVersion", ks_fx_json_str(st, "apiVersion"), "v1");
	ok &= ks_fx_expect_str_at(
	    f, line, r, "status", ks_fx_json_str(st, "status"), "Failure");
	ok &= ks_fx_expect_str_at(
	    f, line, r, "reason", ks_fx_json_str(st, "reason"), reason);
	ok &= ks_fx_expect_int_at(
	    f, line, r, "code", ks_fx_json_int(st, "code"), code);
	const char *m = ks_fx_json_str(st, "message");
	switch (mm) {
	case KS_FX_MSG_ANY:
		break;
	case KS_FX_MSG_EXACT:
		ok &= ks_fx_expect_str_at(f, line, r, "message", m, msg);
		break;
	case KS_FX_MSG_PREFIX:
		ok &= ks_fx_expect_at(f, line, r,
		    m != NULL && strncmp(m, msg, strlen(msg)) == 0,
		    "message \"%s\" does not start with \"%s\"",
		    m ? m : "(null)", msg);
		break;
	case KS_FX_MSG_CONTAINS:
		ok &= ks_fx_expect_at(f, line, r,
		    m != NULL && strstr(m, msg) != NULL,
		    "message \"%s\" does not contain \"%s\"", m ? m : "(null)",
		    msg);
		break;
	}
	return ok;
}

bool
ks_fx_expect_status_at(ks_fx *f, int line, const ks_fx_resp *r, long code,
    const char *reason, enum ks_fx_msg_match mm, const char *msg)
{
	bool ok = ks_fx_expect_code_at(f, line, r, code);
	return ks_fx_expect_status_obj_at(
	           f, line, r, r->j, code, reason, mm, msg)
	    && ok;
}

void
ks_fx_need_code_at(ks_fx *f, int line, const ks_fx_resp *r, long code)
{
	if (r->code == code && r->cres == CURLE_OK)
		return;
	fprintf(stderr,
	    "  %s:%d: REQUIRED: %s -> %ld (curl: %s; want %ld): "
	    "%.*s\n",
	    f->name, line, r->what, r->code, curl_easy_strerror(r->cres), code,
	    r->body.len > 700 ? 700 : (int) r->body.len,
	    r->body.p ? r->body.p : "");
	fail_msg("%s:%d: %s got %ld, want %ld (%d soft failures before)",
	    f->name, line, r->what, r->code, code, f->nfail);
}

void
ks_fx_need_at(ks_fx *f, int line, bool ok, const char *what)
{
	if (!ok)
		fail_msg("%s:%d: required: %s (%d soft failures before)",
		    f->name, line, what, f->nfail);
}

void
ks_fx_finish(ks_fx *f)
{
	if (f->nfail > 0)
		fail_msg("%d expectation(s) failed (see above)", f->nfail);
}

/* --- requests --------------------------------------------------------- */

static size_t
on_data(char *p, size_t sz, size_t n, void *arg)
{
	ks_fx_dbuf_add(arg, p, sz * n);
	return sz * n;
}

ks_fx_resp *
ks_fx_request(ks_fx *f, const ks_fx_ropt *o, const char *method,
    const char *path, const char *body)
{
	static const ks_fx_ropt none = { 0 };
	if (o == NULL)
		o = &none;
	const ks_fx_srv *v = o->v ? o->v : f->v;
	ks_fx_resp      *r = mcf_calloc(1, sizeof(*r));
	r->what            = mcf_asprintf("%s %s", method, path);
	r->next            = f->resps;
	f->resps           = r;
	CURL *c            = f->curl;
	curl_easy_reset(c);
	char              *url = mcf_asprintf("%s%s", v->base, path);
	struct curl_slist *h   = NULL;
	char              *ct = NULL, *ac = NULL;
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	if (f->fresh) {
		/* An injected reset or hang must not be retried by curl on a
		 * reused connection. */
		curl_easy_setopt(c, CURLOPT_FRESH_CONNECT, 1L);
		curl_easy_setopt(c, CURLOPT_FORBID_REUSE, 1L);
	}
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	if (body != NULL) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(
		    c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) strlen(body));
		ct = mcf_asprintf("Content-Type: %s",
		    o->ctype ? o->ctype : "application/json");
		h  = curl_slist_append(h, ct);
	}
	if (o->accept != NULL) {
		ac = mcf_asprintf("Accept: %s", o->accept);
		h  = curl_slist_append(h, ac);
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
	free(ac);
	if (r->body.len > 0) {
		json_error_t e;
		r->j = json_loadb(r->body.p, r->body.len, 0, &e);
	}
	return r;
}

ks_fx_resp *
ks_fx_req_ok(ks_fx *f, const ks_fx_ropt *o, const char *method,
    const char *path, const char *body)
{
	ks_fx_resp *r = ks_fx_request(f, o, method, path, body);
	if (r->cres != CURLE_OK)
		fail_msg("%s: curl: %s", r->what, curl_easy_strerror(r->cres));
	return r;
}

ks_fx_resp *
ks_fx_get(ks_fx *f, const char *path)
{
	return ks_fx_req_ok(f, NULL, "GET", path, NULL);
}

ks_fx_resp *
ks_fx_post(ks_fx *f, const char *path, const char *body)
{
	return ks_fx_req_ok(f, NULL, "POST", path, body);
}

ks_fx_resp *
ks_fx_put(ks_fx *f, const char *path, const char *body)
{
	return ks_fx_req_ok(f, NULL, "PUT", path, body);
}

ks_fx_resp *
ks_fx_merge(ks_fx *f, const char *path, const char *body)
{
	ks_fx_ropt o = { .ctype = "application/merge-patch+json" };
	return ks_fx_req_ok(f, &o, "PATCH", path, body);
}

ks_fx_resp *
ks_fx_del(ks_fx *f, const char *path, const char *body)
{
	return ks_fx_req_ok(f, NULL, "DELETE", path, body);
}

const char *
ks_fx_header_in(ks_fx *f, const ks_fx_dbuf *head, const char *name)
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
	return found ? ks_fx_str(f, "%.*s", (int) flen, found) : NULL;
}

const char *
ks_fx_header(ks_fx *f, const ks_fx_resp *r, const char *name)
{
	return ks_fx_header_in(f, &r->head, name);
}

/* --- watch streams ---------------------------------------------------- */

static size_t
on_watch_data(char *p, size_t sz, size_t n, void *arg)
{
	ks_fx_watch *w = arg;
	ks_fx_dbuf_add(&w->data, p, sz * n);
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

void
ks_fx_watch_pump(ks_fx_watch *w, int wait_ms)
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
			w->headers_ms = ks_fx_now_ms();
	}
	int      q;
	CURLMsg *msg;
	while ((msg = curl_multi_info_read(w->m, &q)) != NULL) {
		if (msg->msg == CURLMSG_DONE) {
			w->done    = true;
			w->done_ms = ks_fx_now_ms();
			w->result  = msg->data.result;
			curl_easy_getinfo(
			    w->e, CURLINFO_RESPONSE_CODE, &w->code);
			if (w->headers_ms == 0)
				w->headers_ms = w->done_ms;
		}
	}
}

ks_fx_watch *
ks_fx_watch_open_ua(ks_fx *f, const char *path, const char *ua, int ms)
{
	ks_fx_watch *w = mcf_calloc(1, sizeof(*w));
	w->f           = f;
	w->events      = json_array();
	w->next        = f->watches;
	f->watches     = w;
	w->url         = mcf_asprintf("%s%s", f->v->base, path);
	w->m           = curl_multi_init();
	w->e           = curl_easy_init();
	w->opened_ms   = ks_fx_now_ms();
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
	int64_t end = ks_fx_deadline(ms);
	while (!w->done && w->code == 0 && ks_fx_now_ms() < end)
		ks_fx_watch_pump(w, 20);
	if (!w->done && w->code == 0)
		fail_msg("watch %s: no response headers", path);
	return w;
}

ks_fx_watch *
ks_fx_watch_open(ks_fx *f, const char *path)
{
	return ks_fx_watch_open_ua(f, path, NULL, 5000);
}

void
ks_fx_watch_close(ks_fx_watch *w)
{
	ks_fx *f = w->f;
	for (ks_fx_watch **pp = &f->watches; *pp != NULL; pp = &(*pp)->next) {
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

size_t
ks_fx_watch_wait(ks_fx_watch *w, size_t n, int ms)
{
	int64_t end = ks_fx_deadline(ms);
	while (json_array_size(w->events) < n && !w->done
	    && ks_fx_now_ms() < end)
		ks_fx_watch_pump(w, 20);
	return json_array_size(w->events);
}

size_t
ks_fx_watch_idle(ks_fx_watch *w, int ms)
{
	int64_t end = ks_fx_now_ms() + ms;
	while (!w->done && ks_fx_now_ms() < end)
		ks_fx_watch_pump(w, 20);
	return json_array_size(w->events);
}

void
ks_fx_watch_idle_all(ks_fx_watch **ws, size_t n, int ms)
{
	int64_t end = ks_fx_now_ms() + ms;
	while (ks_fx_now_ms() < end)
		for (size_t i = 0; i < n; i++)
			ks_fx_watch_pump(ws[i], 10);
}

bool
ks_fx_watch_wait_done(ks_fx_watch *w, int ms)
{
	int64_t end = ks_fx_deadline(ms);
	while (!w->done && ks_fx_now_ms() < end)
		ks_fx_watch_pump(w, 20);
	return w->done;
}

json_t *
ks_fx_ev(const ks_fx_watch *w, size_t i)
{
	return json_array_get(w->events, i);
}

const char *
ks_fx_ev_type(const ks_fx_watch *w, size_t i)
{
	return ks_fx_json_str(ks_fx_ev(w, i), "type");
}

const char *
ks_fx_ev_name(const ks_fx_watch *w, size_t i)
{
	return ks_fx_json_str(ks_fx_ev(w, i), "object.metadata.name");
}

uint64_t
ks_fx_ev_rv(const ks_fx_watch *w, size_t i)
{
	return ks_fx_rv_num(
	    ks_fx_json_str(ks_fx_ev(w, i), "object.metadata.resourceVersion"));
}

const char *
ks_fx_ev_summary(ks_fx *f, const ks_fx_watch *w)
{
	char *out = mcf_strdup("");
	for (size_t i = 0; i < json_array_size(w->events); i++) {
		const char *name = ks_fx_ev_name(w, i);
		char       *n    = mcf_asprintf("%s%s%s:%s", out, i ? " " : "",
		             ks_fx_nz(ks_fx_ev_type(w, i), "?"),
		             name ? name
		                  : ks_fx_nz(ks_fx_json_str(ks_fx_ev(w, i),
		                                 "object.metadata.resourceVersion"),
		                      "-"));
		free(out);
		out = n;
	}
	return ks_fx_keep_str(f, out);
}

/*
 * api.c — the HTTP face of kubesim.
 *
 * A request is routed in three steps.  /_sim/ paths go to the simulator's
 * own control endpoints.  A Milo project prefix (either form of KUBE_API.md
 * §5.3) selects that project's plane and is stripped; anything else is the
 * root plane.  Inside a plane the path is discovery (/api, /apis, ...),
 * OpenAPI, /version and health, or a resource path, which becomes one of
 * the verbs: get, list, watch, create, update, patch, delete,
 * deletecollection.  Every request is recorded for /_sim/requests.
 */
#include "api.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "base64.h"
#include "faults.h"
#include "json.h"
#include "load.h"
#include "log.h"
#include "ops.h"
#include "patch.h"
#include "protobuf.h"
#include "selector.h"
#include "status.h"
#include "table.h"
#include "watch.h"

#define MAX_SEGMENTS 16
#define MAX_PARAMS 32
#define MILO_PREFIX "/apis/resourcemanager.miloapis.com/v1alpha1/projects/"

typedef struct param {
	char *key;
	char *val;
} param;

/* One request in flight (lives for the duration of the handler). */
typedef struct rq {
	ks_sim       *sim;
	ks_conn      *conn;
	const ks_req *req;
	ks_plane     *plane;
	char          prefix[512]; /* the project prefix as requested */
	char         *seg[MAX_SEGMENTS]; /* decoded path segments (owned) */
	size_t        nseg;
	param         params[MAX_PARAMS];
	size_t        nparams;
	json_t       *log; /* this request's log entry (own reference) */
	ks_fault      fault;      /* the injected action for this request */
	bool          redispatch; /* second pass after injected latency */
	int64_t       trunc;      /* cut the response after N body bytes */
	int64_t       throttle;   /* response bytes per second, 0: off */
	int64_t       body_delay; /* pause in the middle of the body (ms) */
} rq;

static void dispatch(ks_sim *s, ks_conn *c, const ks_req *req,
    const ks_fault *preset, json_t *log);

/* ---- small helpers ------------------------------------------------- */

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Percent-decodes [s, s+n) into a new string; `plus` turns '+' into ' '.
 * Returns NULL on a malformed escape or an embedded NUL. */
static char *
pct_decode(const char *s, size_t n, bool plus)
{
	char  *out = mcf_malloc(n + 1);
	size_t o   = 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == '%') {
			int hi = i + 1 < n ? hexval(s[i + 1]) : -1;
			int lo = i + 2 < n ? hexval(s[i + 2]) : -1;
			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
				free(out);
				return NULL;
			}
			out[o++] = (char) (hi * 16 + lo);
			i += 2;
		} else if (c == '+' && plus) {
			out[o++] = ' ';
		} else {
			out[o++] = c;
		}
	}
	out[o] = '\0';
	return out;
}

static const char *
param_get(const rq *q, const char *key)
{
	for (size_t i = 0; i < q->nparams; i++)
		if (strcmp(q->params[i].key, key) == 0)
			return q->params[i].val;
	return NULL;
}

/* Kubernetes booleans: present and neither "0" nor "false". */
static bool
param_bool(const rq *q, const char *key)
{
	const char *v = param_get(q, key);
	if (v == NULL)
		return false;
	return strcmp(v, "0") != 0 && strcasecmp(v, "false") != 0;
}

static void
rq_free(rq *q)
{
	for (size_t i = 0; i < q->nseg; i++)
		free(q->seg[i]);
	for (size_t i = 0; i < q->nparams; i++) {
		free(q->params[i].key);
		free(q->params[i].val);
	}
	json_decref(q->log);
}

/* ---- responses ----------------------------------------------------- */

static void
log_status(rq *q, int code)
{
	if (q->log != NULL)
		json_object_set_new(q->log, "status", json_integer(code));
}

/* ---- response shaping (injected faults) ---------------------------- */

/* Work left on a connection for later: the rest of a throttled or delayed
 * body, or a request whose handling waits for injected latency.  It is
 * cancelled if the connection closes first. */
typedef struct later {
	ks_sim       *sim;
	ks_conn      *conn;   /* borrowed; valid until on_close */
	const ks_req *req;    /* borrowed; valid while the request is open */
	ks_fault      fault;  /* redispatch: the action already decided */
	json_t       *log;    /* the request's log entry (own reference) */
	char         *data;   /* body bytes still to send (owned) */
	size_t        len, off;
	int64_t       bps;    /* bytes per tick (one tick a second) */
	uint64_t      timer;
} later;

static void
later_free(later *l)
{
	json_decref(l->log);
	free(l->data);
	free(l);
}

static void
later_on_close(void *arg, ks_conn *c)
{
	(void) c;
	later *l = arg;
	ks_httpd_timer_cancel(l->sim->httpd, l->timer);
	later_free(l);
}

static void
trickle(void *arg)
{
	later *l = arg;
	l->timer = 0;
	size_t n = l->bps > 0 ? (size_t) l->bps : l->len - l->off;
	if (n > l->len - l->off)
		n = l->len - l->off;
	if (n > 0)
		ks_conn_stream_write(l->conn, l->data + l->off, n);
	l->off += n;
	if (l->off >= l->len) {
		ks_conn_on_close(l->conn, NULL, NULL);
		ks_conn_stream_end(l->conn, KS_END_CLEAN);
		later_free(l);
		return;
	}
	l->timer = ks_httpd_timer_add(l->sim->httpd, 1000, trickle, l);
}

static void
redispatch(void *arg)
{
	later *l = arg;
	l->timer = 0;
	ks_conn_on_close(l->conn, NULL, NULL);
	dispatch(l->sim, l->conn, l->req, &l->fault, l->log);
	later_free(l);
}

/* Every response of the API goes through here, so truncation, throttling
 * and body-phase latency apply to all of them. */
static void
respond(rq *q, int code, const char *ctype, const char *headers,
    const char *body, size_t len)
{
	log_status(q, code);
	if (q->trunc >= 0) {
		char head[1024];
		int  hn = snprintf(head, sizeof(head),
		     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: "
		     "%zu\r\n%s\r\n",
		     code, ks_status_reason(code), ctype, len,
		     headers ? headers : "");
		ks_conn_write_raw(q->conn, head, (size_t) hn);
		size_t n = (size_t) q->trunc < len ? (size_t) q->trunc : len;
		ks_conn_write_raw(q->conn, body, n);
		ks_conn_close(q->conn, false);
		return;
	}
	if (q->throttle <= 0 && q->body_delay <= 0) {
		ks_conn_respond(q->conn, code, ctype, headers, body, len);
		return;
	}
	later *l = mcf_calloc(1, sizeof(*l));
	l->sim   = q->sim;
	l->conn  = q->conn;
	l->data  = mcf_malloc(len + 1);
	memcpy(l->data, body, len);
	l->len = len;
	ks_conn_stream_begin(q->conn, code, ctype, headers);
	if (q->throttle > 0) {
		l->bps = q->throttle;
		ks_conn_on_close(q->conn, later_on_close, l);
		trickle(l);
		return;
	}
	/* Half the body now, the rest after the pause. */
	size_t half = len / 2;
	if (half > 0)
		ks_conn_stream_write(q->conn, body, half);
	l->off = half;
	ks_conn_on_close(q->conn, later_on_close, l);
	l->timer = ks_httpd_timer_add(q->sim->httpd, q->body_delay, trickle, l);
}

static void
send_json(rq *q, int code, const json_t *body, const char *headers)
{
	char  *text = mcf_json_dump(body);
	size_t n    = strlen(text);
	text        = mcf_realloc(text, n + 2);
	text[n]     = '\n';
	text[n + 1] = '\0';
	respond(q, code, "application/json", headers, text, n + 1);
	free(text);
}

static void
send_result(rq *q, ks_result *r)
{
	char headers[512] = "";
	size_t o          = 0;
	if (r->warning != NULL) {
		/* Warning: 299 - "text" with quotes escaped. */
		o += (size_t) snprintf(headers + o, sizeof(headers) - o,
		    "Warning: 299 - \"");
		for (const char *p = r->warning;
		     *p != '\0' && o + 4 < sizeof(headers) - 3; p++) {
			if (*p == '"' || *p == '\\')
				headers[o++] = '\\';
			headers[o++] = *p;
		}
		o += (size_t) snprintf(headers + o, sizeof(headers) - o,
		    "\"\r\n");
	}
	if (r->retry_after > 0 && o < sizeof(headers))
		snprintf(headers + o, sizeof(headers) - o,
		    "Retry-After: %d\r\n", r->retry_after);
	send_json(q, r->code, r->body, headers[0] ? headers : NULL);
}

static void
send_empty(rq *q)
{
	json_t *empty = json_object();
	send_json(q, 200, empty, NULL);
	json_decref(empty);
}

static void
send_fail(rq *q, int code, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
send_fail(rq *q, int code, const char *reason, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *msg = mcf_vasprintf(fmt, ap);
	va_end(ap);
	json_t *st = ks_status_new(code, reason, msg);
	json_object_set_new(st, "details", json_object());
	send_json(q, code, st, NULL);
	json_decref(st);
	free(msg);
}

static void
send_not_found(rq *q)
{
	send_fail(q, 404, "NotFound",
	    "the server could not find the requested resource");
}

static void
send_text(rq *q, int code, const char *text)
{
	respond(q, code, "text/plain; charset=utf-8", NULL, text, strlen(text));
}

static bool
wants_table(rq *q)
{
	return q->sim->opt.table &&
	    ks_table_wanted(ks_req_header(q->conn, "Accept"));
}

/* ---- request log --------------------------------------------------- */

static void
log_request(rq *q)
{
	ks_sim *s = q->sim;
	if (s->opt.request_log == 0)
		return;
	if (json_array_size(s->reqlog) >= 2 * s->opt.request_log) {
		/* Trim in one go so appends stay amortised O(1). */
		json_t *keep = json_array();
		size_t  n    = json_array_size(s->reqlog);
		for (size_t i = n - s->opt.request_log; i < n; i++)
			json_array_append(keep, json_array_get(s->reqlog, i));
		json_decref(s->reqlog);
		s->reqlog = keep;
	}
	char            ts[48];
	struct timespec now;
	ks_sim_now(s, &now);
	struct tm tm;
	gmtime_r(&now.tv_sec, &tm);
	snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, (int) (now.tv_nsec / 1000));
	const char *ua     = ks_req_header(q->conn, "User-Agent");
	const char *accept = ks_req_header(q->conn, "Accept");
	const char *ctype  = ks_req_header(q->conn, "Content-Type");
	q->log             = json_pack("{s:I,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:i}",
		"seq", (json_int_t) ++s->reqseq, "time", ts, "plane",
		q->plane ? ks_plane_name(q->plane) : "", "method",
		q->req->method, "path", q->req->path, "query", q->req->query,
		"user_agent", ua ? ua : "", "accept", accept ? accept : "",
		"content_type", ctype ? ctype : "", "status", 0);
	json_array_append(s->reqlog, q->log);
}

/* ---- /_sim/ -------------------------------------------------------- */

static json_t *
body_json(rq *q)
{
	json_error_t e;
	if (q->req->body_len == 0)
		return json_object();
	return json_loadb(q->req->body, q->req->body_len, 0, &e);
}

static ks_plane *
sim_plane(rq *q, const json_t *body)
{
	const char *plane = json_string_value(json_object_get(body, "plane"));
	if (plane == NULL || plane[0] == '\0')
		return ks_store_root(q->sim->store);
	return ks_store_plane(q->sim->store, plane);
}

typedef struct gone_ctx {
	ks_sim     *sim;
	const char *plane; /* "" for every project plane */
} gone_ctx;

static void
end_gone_plane(void *arg, ks_plane *p)
{
	gone_ctx *g = arg;
	if (ks_plane_is_root(p))
		return;
	if (g->plane[0] == '\0' || strcmp(g->plane, ks_plane_name(p)) == 0)
		ks_watchhub_end_plane(g->sim->hub, p);
}

static void
handle_sim_faults(rq *q)
{
	ks_sim     *s = q->sim;
	const char *m = q->req->method;
	if (strcmp(m, "GET") == 0) {
		json_t *out = json_pack("{s:o}", "items",
		    ks_faults_describe(s->faults));
		send_json(q, 200, out, NULL);
		json_decref(out);
	} else if (strcmp(m, "DELETE") == 0) {
		uint64_t id = q->nseg > 2 ? strtoull(q->seg[2], NULL, 10) : 0;
		if (q->nseg > 2 && id == 0) {
			send_fail(q, 404, "NotFound", "no fault rule %s",
			    q->seg[2]);
			return;
		}
		if (!ks_faults_remove(s->faults, id)) {
			send_fail(q, 404, "NotFound", "no fault rule %llu",
			    (unsigned long long) id);
			return;
		}
		send_empty(q);
	} else if (strcmp(m, "POST") == 0 && q->nseg == 2) {
		json_t *rule = body_json(q);
		char    err[256];
		uint64_t id = rule ? ks_faults_add(s->faults, rule,
					 ks_httpd_now_ms(s->httpd), err,
					 sizeof(err))
				   : 0;
		if (rule == NULL)
			snprintf(err, sizeof(err), "body is not JSON");
		json_decref(rule);
		if (id == 0) {
			send_fail(q, 400, "BadRequest", "invalid fault rule: %s",
			    err);
			return;
		}
		json_t *out = json_pack("{s:I}", "id", (json_int_t) id);
		send_json(q, 201, out, NULL);
		json_decref(out);
		/* A gone plane closes its watches at once, as a deleted
		 * Project does. */
		const char *gone = NULL;
		if (ks_faults_gone_plane(s->faults, id, &gone)) {
			gone_ctx g = { s, gone ? gone : "" };
			ks_store_foreach_plane(s->store, end_gone_plane, &g);
		}
	} else {
		send_not_found(q);
	}
}

/* POST /_sim/touch {"plane","path"}: a real write to the object at path
 * (an annotation changes), as a concurrent client would make. */
static void
sim_touch(rq *q, const json_t *body)
{
	ks_plane   *p    = sim_plane(q, body);
	const char *path = json_string_value(json_object_get(body, "path"));
	if (p == NULL || path == NULL) {
		send_fail(q, 400, "BadRequest", "touch needs a plane and a path");
		return;
	}
	char *segs[8];
	size_t n = 0;
	char  *copy = mcf_strdup(path), *save = NULL;
	for (char *tok = strtok_r(copy, "/", &save); tok != NULL && n < 8;
	     tok = strtok_r(NULL, "/", &save))
		segs[n++] = tok;
	const char *group = NULL, *version = NULL;
	size_t      i     = 0;
	if (n >= 2 && strcmp(segs[0], "api") == 0) {
		group = "", version = segs[1], i = 2;
	} else if (n >= 3 && strcmp(segs[0], "apis") == 0) {
		group = segs[1], version = segs[2], i = 3;
	}
	const char    *ns = NULL, *name = NULL;
	const ks_type *t  = NULL;
	if (group != NULL && n - i == 4 && strcmp(segs[i], "namespaces") == 0) {
		ns   = segs[i + 1];
		t    = ks_plane_type(p, group, version, segs[i + 2]);
		name = segs[i + 3];
	} else if (group != NULL && n - i == 2) {
		t    = ks_plane_type(p, group, version, segs[i]);
		name = segs[i + 1];
	}
	const json_t *cur = t ? ks_plane_get(p, t, ns, name) : NULL;
	if (cur == NULL) {
		send_fail(q, 404, "NotFound", "nothing to touch at %s", path);
		free(copy);
		return;
	}
	json_t *obj  = json_deep_copy(cur);
	json_t *meta = json_object_get(obj, "metadata");
	json_t *ann  = mcf_json_object_ensure(meta, "annotations");
	char    val[32];
	snprintf(val, sizeof(val), "%llu",
	    (unsigned long long) ks_plane_rv(p) + 1);
	json_object_set_new(ann, "kubesim.io/touched", json_string(val));
	const json_t *res = ks_plane_put(p, t, obj);
	send_json(q, 200, res, NULL);
	free(copy);
}

static void
handle_sim(rq *q)
{
	ks_sim     *s    = q->sim;
	const char *what = q->nseg > 1 ? q->seg[1] : "";
	if (strcmp(what, "requests") == 0 && strcmp(q->req->method, "GET") == 0) {
		const char *since = param_get(q, "since");
		uint64_t    from  = since ? strtoull(since, NULL, 10) : 0;
		json_t     *out   = json_array();
		size_t      i;
		json_t     *e;
		json_array_foreach (s->reqlog, i, e) {
			if ((uint64_t) json_integer_value(
				json_object_get(e, "seq")) > from)
				json_array_append(out, e);
		}
		json_t *body = json_pack("{s:o}", "items", out);
		send_json(q, 200, body, NULL);
		json_decref(body);
		return;
	}
	if (strcmp(what, "requests") == 0 &&
	    strcmp(q->req->method, "DELETE") == 0) {
		json_array_clear(s->reqlog);
		send_empty(q);
		return;
	}
	if (strcmp(what, "faults") == 0) {
		handle_sim_faults(q);
		return;
	}
	if (strcmp(what, "watchers") == 0) {
		json_t *body = json_pack("{s:o}", "items",
		    ks_watchhub_describe(s->hub));
		send_json(q, 200, body, NULL);
		json_decref(body);
		return;
	}
	if (strcmp(q->req->method, "POST") != 0) {
		send_not_found(q);
		return;
	}
	json_t *body = body_json(q);
	if (!json_is_object(body)) {
		json_decref(body);
		send_fail(q, 400, "BadRequest", "body must be a JSON object");
		return;
	}
	if (strcmp(what, "compact") == 0) {
		ks_plane *p = sim_plane(q, body);
		if (p == NULL) {
			send_fail(q, 404, "NotFound", "no such plane");
		} else {
			json_t  *rv = json_object_get(body, "rv");
			uint64_t to = ks_plane_rv(p);
			if (json_is_integer(rv))
				to = (uint64_t) json_integer_value(rv);
			ks_plane_compact(p, to);
			json_t *out = json_pack("{s:I}", "floor",
			    (json_int_t) ks_plane_floor(p));
			send_json(q, 200, out, NULL);
			json_decref(out);
		}
	} else if (strcmp(what, "touch") == 0) {
		sim_touch(q, body);
	} else if (strcmp(what, "bookmark") == 0) {
		json_t     *w  = json_object_get(body, "watch");
		uint64_t    id = 0;
		const char *ws = json_string_value(w);
		if (json_is_integer(w))
			id = (uint64_t) json_integer_value(w);
		else if (ws != NULL && strcmp(ws, "all") != 0)
			id = strtoull(ws, NULL, 10);
		json_t *out = json_pack("{s:I}", "sent",
		    (json_int_t) ks_watchhub_bookmark(s->hub, id));
		send_json(q, 200, out, NULL);
		json_decref(out);
	} else if (strcmp(what, "restart") == 0) {
		bool keep  = json_is_true(json_object_get(body, "keep_state"));
		bool reset = json_is_true(json_object_get(body, "reset_rv"));
		ks_store_restart(s->store, keep, reset);
		if (!keep) {
			json_object_clear(s->owners);
			ks_ops_seed_plane(s, ks_store_root(s->store));
		}
		json_t *out = json_pack("{s:b,s:b}", "keep_state", keep,
		    "reset_rv", reset);
		send_json(q, 200, out, NULL);
		json_decref(out);
		/* Every connection drops, this one after its answer. */
		ks_httpd_close_all(s->httpd, false);
	} else if (strcmp(what, "load") == 0) {
		ks_load_start(s, q->conn, body, q->log);
	} else if (strcmp(what, "clock") == 0) {
		s->clock_offset_s =
		    json_integer_value(json_object_get(body, "offset_s"));
		json_t *out = json_pack("{s:I}", "offset_s",
		    (json_int_t) s->clock_offset_s);
		send_json(q, 200, out, NULL);
		json_decref(out);
	} else {
		send_not_found(q);
	}
	json_decref(body);
}

/* ---- discovery ----------------------------------------------------- */

static json_t *
verbs_json(void)
{
	return json_pack("[s,s,s,s,s,s,s,s]", "create", "delete",
	    "deletecollection", "get", "list", "patch", "update", "watch");
}

static json_t *
strv_json(const char *const *v)
{
	json_t *a = json_array();
	for (size_t i = 0; v != NULL && v[i] != NULL; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

static json_t *
aggregated_resource(const ks_type *t)
{
	json_t *kind = json_pack("{s:s,s:s,s:s}", "group", t->group, "version",
	    t->version, "kind", t->kind);
	json_t *r    = json_pack("{s:s,s:O,s:s,s:s,s:o}", "resource",
		   t->resource, "responseKind", kind, "scope",
		   t->namespaced ? "Namespaced" : "Cluster", "singularResource",
		   t->singular, "verbs", verbs_json());
	if (t->short_names != NULL)
		json_object_set_new(r, "shortNames", strv_json(t->short_names));
	if (t->categories != NULL)
		json_object_set_new(r, "categories", strv_json(t->categories));
	if (t->has_status)
		json_object_set_new(r, "subresources",
		    json_pack("[{s:s,s:O,s:[s,s,s]}]", "subresource", "status",
			"responseKind", kind, "verbs", "get", "patch",
			"update"));
	json_decref(kind);
	return r;
}

static json_t *
legacy_resources(const ks_type **types, size_t n, const char *group,
    const char *version)
{
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++) {
		const ks_type *t = types[i];
		if (strcmp(t->group, group) != 0 ||
		    strcmp(t->version, version) != 0)
			continue;
		json_t *r = json_pack("{s:s,s:s,s:b,s:s,s:o}", "name",
		    t->resource, "singularName", t->singular, "namespaced",
		    t->namespaced, "kind", t->kind, "verbs", verbs_json());
		if (t->short_names != NULL)
			json_object_set_new(r, "shortNames",
			    strv_json(t->short_names));
		if (t->categories != NULL)
			json_object_set_new(r, "categories",
			    strv_json(t->categories));
		json_array_append_new(arr, r);
		if (t->has_status) {
			char sub[300];
			snprintf(sub, sizeof(sub), "%s/status", t->resource);
			json_array_append_new(arr,
			    json_pack("{s:s,s:s,s:b,s:s,s:[s,s,s]}", "name",
				sub, "singularName", "", "namespaced",
				t->namespaced, "kind", t->kind, "verbs", "get",
				"patch", "update"));
		}
	}
	return arr;
}

/* Groups in first-seen order, each with its versions in first-seen
 * order: {"group": {"versions": ["v1", ...]}}. */
static json_t *
group_map(const ks_type **types, size_t n)
{
	json_t *groups = json_object();
	for (size_t i = 0; i < n; i++) {
		const ks_type *t = types[i];
		if (t->group[0] == '\0')
			continue;
		json_t *vs = json_object_get(groups, t->group);
		if (vs == NULL) {
			vs = json_array();
			json_object_set_new(groups, t->group, vs);
		}
		bool    found = false;
		size_t  j;
		json_t *v;
		json_array_foreach (vs, j, v)
			if (strcmp(json_string_value(v), t->version) == 0)
				found = true;
		if (!found)
			json_array_append_new(vs, json_string(t->version));
	}
	return groups;
}

static bool
wants_aggregated(rq *q)
{
	const char *accept = ks_req_header(q->conn, "Accept");
	return !q->sim->opt.legacy_discovery && accept != NULL &&
	    strstr(accept, "as=APIGroupDiscoveryList") != NULL;
}

static void
send_aggregated(rq *q, json_t *items)
{
	json_t *body = json_pack("{s:s,s:s,s:{},s:o}", "kind",
	    "APIGroupDiscoveryList", "apiVersion", "apidiscovery.k8s.io/v2",
	    "metadata", "items", items);
	char  *text = mcf_json_dump(body);
	size_t n    = strlen(text);
	text        = mcf_realloc(text, n + 2);
	text[n]     = '\n';
	respond(q, 200,
	    "application/json;g=apidiscovery.k8s.io;v=v2;as="
	    "APIGroupDiscoveryList",
	    NULL, text, n + 1);
	free(text);
	json_decref(body);
}

static void
handle_discovery(rq *q)
{
	const ks_type **types;
	size_t          n    = ks_plane_types(q->plane, &types);
	const char     *root = q->seg[0];
	if (strcmp(root, "api") == 0 && q->nseg == 1) {
		if (wants_aggregated(q)) {
			json_t *res = json_array();
			for (size_t i = 0; i < n; i++)
				if (types[i]->group[0] == '\0')
					json_array_append_new(res,
					    aggregated_resource(types[i]));
			json_t *items = json_pack(
			    "[{s:{s:s},s:[{s:s,s:o,s:s}]}]", "metadata", "name",
			    "", "versions", "version", "v1", "resources", res,
			    "freshness", "Current");
			send_aggregated(q, items);
		} else {
			char addr[64];
			snprintf(addr, sizeof(addr), "127.0.0.1:%d",
			    ks_httpd_port(q->sim->httpd));
			json_t *b = json_pack(
			    "{s:s,s:[s],s:[{s:s,s:s}]}", "kind", "APIVersions",
			    "versions", "v1", "serverAddressByClientCIDRs",
			    "clientCIDR", "0.0.0.0/0", "serverAddress", addr);
			send_json(q, 200, b, NULL);
			json_decref(b);
		}
	} else if (strcmp(root, "api") == 0 && q->nseg == 2 &&
		   strcmp(q->seg[1], "v1") == 0) {
		json_t *b = json_pack("{s:s,s:s,s:s,s:o}", "kind",
		    "APIResourceList", "apiVersion", "v1", "groupVersion", "v1",
		    "resources", legacy_resources(types, n, "", "v1"));
		send_json(q, 200, b, NULL);
		json_decref(b);
	} else if (strcmp(root, "apis") == 0 && q->nseg == 1) {
		json_t     *groups = group_map(types, n);
		const char *g;
		json_t     *vs;
		if (wants_aggregated(q)) {
			json_t *items = json_array();
			json_object_foreach (groups, g, vs) {
				json_t *versions = json_array();
				size_t  j;
				json_t *v;
				json_array_foreach (vs, j, v) {
					json_t *res = json_array();
					for (size_t i = 0; i < n; i++)
						if (strcmp(types[i]->group, g) ==
							0 &&
						    strcmp(types[i]->version,
							json_string_value(v)) ==
							0)
							json_array_append_new(res,
							    aggregated_resource(
								types[i]));
					json_array_append_new(versions,
					    json_pack("{s:O,s:o,s:s}", "version",
						v, "resources", res,
						"freshness", "Current"));
				}
				json_array_append_new(items,
				    json_pack("{s:{s:s},s:o}", "metadata", "name",
					g, "versions", versions));
			}
			send_aggregated(q, items);
		} else {
			json_t *list = json_array();
			json_object_foreach (groups, g, vs) {
				json_t *versions = json_array();
				size_t  j;
				json_t *v;
				json_array_foreach (vs, j, v) {
					char gv[300];
					snprintf(gv, sizeof(gv), "%s/%s", g,
					    json_string_value(v));
					json_array_append_new(versions,
					    json_pack("{s:s,s:O}", "groupVersion",
						gv, "version", v));
				}
				json_array_append_new(list,
				    json_pack("{s:s,s:O,s:O}", "name", g,
					"versions", versions, "preferredVersion",
					json_array_get(versions, 0)));
				json_decref(versions);
			}
			json_t *b = json_pack("{s:s,s:s,s:o}", "kind",
			    "APIGroupList", "apiVersion", "v1", "groups", list);
			send_json(q, 200, b, NULL);
			json_decref(b);
		}
		json_decref(groups);
	} else if (strcmp(root, "apis") == 0 && q->nseg == 2) {
		json_t *groups = group_map(types, n);
		json_t *vs     = json_object_get(groups, q->seg[1]);
		if (vs == NULL) {
			send_not_found(q);
		} else {
			json_t *versions = json_array();
			size_t  j;
			json_t *v;
			json_array_foreach (vs, j, v) {
				char gv[300];
				snprintf(gv, sizeof(gv), "%s/%s", q->seg[1],
				    json_string_value(v));
				json_array_append_new(versions,
				    json_pack("{s:s,s:O}", "groupVersion", gv,
					"version", v));
			}
			json_t *b = json_pack("{s:s,s:s,s:s,s:O,s:O}", "kind",
			    "APIGroup", "apiVersion", "v1", "name", q->seg[1],
			    "versions", versions, "preferredVersion",
			    json_array_get(versions, 0));
			json_decref(versions);
			send_json(q, 200, b, NULL);
			json_decref(b);
		}
		json_decref(groups);
	} else if (strcmp(root, "apis") == 0 && q->nseg == 3) {
		json_t *res = legacy_resources(types, n, q->seg[1], q->seg[2]);
		if (json_array_size(res) == 0) {
			json_decref(res);
			send_not_found(q);
		} else {
			char gv[300];
			snprintf(gv, sizeof(gv), "%s/%s", q->seg[1], q->seg[2]);
			json_t *b = json_pack("{s:s,s:s,s:s,s:o}", "kind",
			    "APIResourceList", "apiVersion", "v1",
			    "groupVersion", gv, "resources", res);
			send_json(q, 200, b, NULL);
			json_decref(b);
		}
	} else {
		send_not_found(q);
	}
	free(types);
}

/* ---- OpenAPI v3 ------------------------------------------------------ */

static uint32_t
fnv1a(const char *s, uint32_t h)
{
	for (; *s != '\0'; s++) {
		h ^= (unsigned char) *s;
		h *= 16777619u;
	}
	return h;
}

static void
handle_openapi(rq *q)
{
	const ks_type **types;
	size_t          n = ks_plane_types(q->plane, &types);
	if (q->nseg == 2 && strcmp(q->seg[1], "v3") == 0) {
		json_t *paths = json_object();
		for (size_t i = 0; i < n; i++) {
			const ks_type *t = types[i];
			char           key[300];
			if (t->group[0] == '\0')
				snprintf(key, sizeof(key), "api/%s", t->version);
			else
				snprintf(key, sizeof(key), "apis/%s/%s",
				    t->group, t->version);
			uint32_t h = fnv1a(key, 2166136261u);
			for (size_t j = 0; j < n; j++)
				if (strcmp(types[j]->group, t->group) == 0)
					h = fnv1a(types[j]->resource, h);
			char url[1024];
			snprintf(url, sizeof(url), "%s/openapi/v3/%s?hash=%08X",
			    q->prefix, key, h);
			json_object_set_new(paths, key,
			    json_pack("{s:s}", "serverRelativeURL", url));
		}
		json_t *b = json_pack("{s:o}", "paths", paths);
		send_json(q, 200, b, NULL);
		json_decref(b);
		free(types);
		return;
	}
	/* /openapi/v3/api/v1 or /openapi/v3/apis/{g}/{v} */
	const char *group = NULL, *version = NULL;
	if (q->nseg == 4 && strcmp(q->seg[1], "v3") == 0 &&
	    strcmp(q->seg[2], "api") == 0) {
		group   = "";
		version = q->seg[3];
	} else if (q->nseg == 5 && strcmp(q->seg[1], "v3") == 0 &&
		   strcmp(q->seg[2], "apis") == 0) {
		group   = q->seg[3];
		version = q->seg[4];
	}
	json_t *paths = json_object();
	for (size_t i = 0; group != NULL && i < n; i++) {
		const ks_type *t = types[i];
		if (strcmp(t->group, group) != 0 ||
		    strcmp(t->version, version) != 0)
			continue;
		char base[300], path[600];
		if (group[0] == '\0')
			snprintf(base, sizeof(base), "/api/%s", version);
		else
			snprintf(base, sizeof(base), "/apis/%s/%s", group,
			    version);
		if (t->namespaced)
			snprintf(path, sizeof(path),
			    "%s/namespaces/{namespace}/%s/{name}", base,
			    t->resource);
		else
			snprintf(path, sizeof(path), "%s/%s/{name}", base,
			    t->resource);
		json_t *op = json_pack(
		    "{s:{s:s,s:s,s:s},s:s,s:[{s:s,s:s,s:{s:s}},{s:s,s:s,s:{s:"
		    "s}}],s:{s:{s:{s:{s:s}},s:{s:{s:s}}}},s:{s:{s:s}}}",
		    "x-kubernetes-group-version-kind", "group", t->group,
		    "version", t->version, "kind", t->kind,
		    "x-kubernetes-action", "patch", "parameters", "name",
		    "fieldValidation", "in", "query", "schema", "type", "string",
		    "name", "dryRun", "in", "query", "schema", "type", "string",
		    "requestBody", "content", "application/json-patch+json",
		    "schema", "type", "object", "application/merge-patch+json",
		    "schema", "type", "object", "responses", "200",
		    "description", "OK");
		json_object_set_new(paths, path, json_pack("{s:o}", "patch", op));
	}
	free(types);
	if (json_object_size(paths) == 0) {
		json_decref(paths);
		send_not_found(q);
		return;
	}
	json_t *b = json_pack("{s:s,s:{s:s,s:s},s:{s:{}},s:o}", "openapi",
	    "3.0.0", "info", "title", "Kubernetes", "version",
	    q->sim->opt.gitversion, "components", "schemas", "paths", paths);
	send_json(q, 200, b, NULL);
	json_decref(b);
}

/* ---- lists --------------------------------------------------------- */

static bool
parse_rv(const char *s, uint64_t *out)
{
	if (s == NULL || s[0] == '\0')
		return false;
	for (const char *p = s; *p != '\0'; p++)
		if (!isdigit((unsigned char) *p))
			return false;
	if (strlen(s) > 19)
		return false;
	*out = strtoull(s, NULL, 10);
	return true;
}

/* 422 for invalid ListOptions; `msg` is the field error's text
 * ("Forbidden: ..." or "Unsupported value: ..."). */
static void
list_options_invalid(rq *q, const char *field, const char *reason,
    const char *msg)
{
	char *full = mcf_asprintf("ListOptions.meta.k8s.io \"\" is invalid: %s: %s",
	    field, msg);
	json_t *st = ks_status_new(422, "Invalid", full);
	json_object_set_new(st, "details",
	    json_pack("{s:s,s:s,s:[{s:s,s:s,s:s}]}", "group", "meta.k8s.io",
		"kind", "ListOptions", "causes", "reason", reason, "message",
		msg, "field", field));
	send_json(q, 422, st, NULL);
	json_decref(st);
	free(full);
}

static void
send_list_options_invalid(rq *q, const char *field, const char *msg)
{
	char *full = mcf_asprintf("Forbidden: %s", msg);
	list_options_invalid(q, field, "FieldValueForbidden", full);
	free(full);
}

static void
send_too_large(rq *q, uint64_t rv)
{
	char msg[160];
	snprintf(msg, sizeof(msg),
	    "Timeout: Too large resource version: %llu, current: %llu",
	    (unsigned long long) rv,
	    (unsigned long long) ks_plane_rv(q->plane));
	json_t *st = ks_status_new(504, "Timeout", msg);
	json_object_set_new(st, "details",
	    json_pack("{s:[{s:s,s:s}],s:i}", "causes", "reason",
		"ResourceVersionTooLarge", "message", "Too large resource version",
		"retryAfterSeconds", 1));
	send_json(q, 504, st, "Retry-After: 1\r\n");
	json_decref(st);
}

/* Continue tokens: base64url-free standard base64 of
 * {"v":"meta.k8s.io/v1","rv":N,"start":"<key>\u0000"}. */
static char *
make_continue(uint64_t rv, const char *key, bool latest)
{
	/* The start key carries a trailing NUL in real tokens; jansson
	 * strings can hold it (the key's own terminator is included). */
	json_t *tok = json_pack("{s:s,s:I,s:o}", "v", "meta.k8s.io/v1", "rv",
	    latest ? (json_int_t) -1 : (json_int_t) rv, "start",
	    json_stringn(key, strlen(key) + 1));
	char *text = json_dumps(tok, JSON_COMPACT);
	json_decref(tok);
	char *out = mcf_base64_encode(text, strlen(text));
	free(text);
	return out;
}

/* Decodes a continue token; false when malformed. `*rv` is 0 for "-1"
 * (continue at latest). */
static bool
parse_continue(const char *tok, uint64_t *rv, char **start)
{
	size_t n = strlen(tok);
	if (n == 0 || n > 8192)
		return false;
	unsigned char *buf;
	size_t         o;
	if (!mcf_base64_decode(tok, n, &buf, &o))
		return false;
	json_error_t e;
	json_t *j = json_loadb((const char *) buf, o, JSON_ALLOW_NUL, &e);
	free(buf);
	if (!json_is_object(j)) {
		json_decref(j);
		return false;
	}
	json_t     *jrv = json_object_get(j, "rv");
	json_t     *js  = json_object_get(j, "start");
	const char *v   = json_string_value(json_object_get(j, "v"));
	if (!json_is_integer(jrv) || !json_is_string(js) || v == NULL ||
	    strcmp(v, "meta.k8s.io/v1") != 0) {
		json_decref(j);
		return false;
	}
	json_int_t r = json_integer_value(jrv);
	*rv          = r < 0 ? 0 : (uint64_t) r;
	size_t sl    = json_string_length(js);
	const char *sv = json_string_value(js);
	if (sl > 0 && sv[sl - 1] == '\0')
		sl--;
	*start = mcf_strndup(sv, sl);
	json_decref(j);
	return true;
}

/* Room kept in front of a list body for its head (kind, metadata with the
 * continue token, Table columns). */
#define LIST_PREFIX 4096

typedef struct list_acc {
	rq            *q;
	bool           table; /* rows of a Table instead of items */
	time_t         now;
	ks_labelsel   *lsel;
	ks_fieldsel   *fsel;
	const ks_type *type;
	size_t         limit; /* 0: no limit */
	size_t         count;
	size_t         remaining; /* matches past the limit */
	char          *last_key;
	char          *buf; /* "[obj,obj" */
	size_t         len, cap;
} list_acc;

static void
acc_append(list_acc *a, const char *s, size_t n)
{
	if (a->len + n + 1 > a->cap) {
		a->cap = (a->len + n + 1) * 2;
		a->buf = mcf_realloc(a->buf, a->cap);
	}
	memcpy(a->buf + a->len, s, n);
	a->len += n;
}

static bool
list_one(void *arg, const char *key, const json_t *obj)
{
	list_acc     *a    = arg;
	const json_t *meta = json_object_get(obj, "metadata");
	if (a->lsel != NULL &&
	    !ks_labelsel_match(a->lsel, json_object_get(meta, "labels")))
		return true;
	if (a->fsel != NULL && !ks_fieldsel_match(a->fsel, obj))
		return true;
	if (a->limit > 0 && a->count >= a->limit) {
		a->remaining++;
		/* Counting the rest is only needed without selectors
		 * (remainingItemCount); with them, one more proves a next
		 * page exists. */
		return a->lsel == NULL && a->fsel == NULL;
	}
	char       *text   = NULL;
	size_t      len    = 0;
	const char *cached = a->table ? NULL
				      : ks_plane_text(a->q->plane, a->type, key,
					    obj, &len);
	if (a->table) {
		json_t *row = ks_table_row(a->type, obj, a->now);
		text        = mcf_json_dump(row);
		json_decref(row);
	} else if (cached == NULL) {
		text = mcf_json_dump(obj);
	}
	if (a->count > 0)
		acc_append(a, ",", 1);
	if (cached != NULL)
		acc_append(a, cached, len);
	else
		acc_append(a, text, strlen(text));
	free(text);
	a->count++;
	free(a->last_key);
	a->last_key = mcf_strdup(key);
	return true;
}

static void
handle_list(rq *q, const ks_type *t, const char *ns, ks_labelsel *lsel,
    ks_fieldsel *fsel)
{
	ks_plane   *p     = q->plane;
	const char *rvs   = param_get(q, "resourceVersion");
	const char *match = param_get(q, "resourceVersionMatch");
	const char *cont  = param_get(q, "continue");
	const char *lims  = param_get(q, "limit");
	uint64_t    rv    = 0;
	bool        has_rv = rvs != NULL && rvs[0] != '\0';
	if (has_rv && !parse_rv(rvs, &rv)) {
		send_fail(q, 400, "BadRequest", "invalid resource version: %s",
		    rvs);
		return;
	}
	if (match != NULL && match[0] != '\0') {
		if (!has_rv) {
			send_list_options_invalid(q, "resourceVersionMatch",
			    "resourceVersionMatch is forbidden unless "
			    "resourceVersion is provided");
			return;
		}
		if (cont != NULL && cont[0] != '\0') {
			send_list_options_invalid(q, "resourceVersionMatch",
			    "resourceVersionMatch is forbidden when continue "
			    "is provided");
			return;
		}
		if (strcmp(match, "Exact") != 0 &&
		    strcmp(match, "NotOlderThan") != 0) {
			char *msg = mcf_asprintf(
			    "Unsupported value: \"%s\": supported values: "
			    "\"Exact\", \"NotOlderThan\"",
			    match);
			list_options_invalid(q, "resourceVersionMatch",
			    "FieldValueNotSupported", msg);
			free(msg);
			return;
		}
		if (strcmp(match, "Exact") == 0 && rv == 0) {
			send_list_options_invalid(q, "resourceVersionMatch",
			    "resourceVersionMatch \"exact\" is forbidden for "
			    "resourceVersion \"0\"");
			return;
		}
	}
	if (param_get(q, "sendInitialEvents") != NULL) {
		send_list_options_invalid(q, "sendInitialEvents",
		    "sendInitialEvents is forbidden for list");
		return;
	}
	size_t limit = 0;
	if (lims != NULL && lims[0] != '\0') {
		char *end;
		long long l = strtoll(lims, &end, 10);
		if (*end != '\0' || l < 0) {
			send_fail(q, 400, "BadRequest", "invalid limit: %s",
			    lims);
			return;
		}
		limit = (size_t) l;
	}
	uint64_t at     = 0; /* 0 = latest */
	char    *after  = NULL;
	uint64_t cur    = ks_plane_rv(p);
	if (cont != NULL && cont[0] != '\0') {
		if (has_rv && rv != 0) {
			send_fail(q, 400, "BadRequest",
			    "specifying resource version is not allowed when "
			    "using continue");
			return;
		}
		if (!parse_continue(cont, &at, &after)) {
			send_fail(q, 400, "BadRequest",
			    "continue key is not valid: invalid continue token");
			return;
		}
		/* A token that already says "continue at latest" (rv -1)
		 * is never expired. */
		if (at != 0 && (q->fault.action == KS_FA_EXPIRE_CONTINUE ||
				   at < ks_plane_floor(p))) {
			char   *tok = make_continue(0, after, true);
			json_t *st  = ks_status_new(410, "Expired",
			     "The provided continue parameter is too old to "
			     "display a consistent list result. You can start a "
			     "new list without the continue parameter, or use "
			     "the continue token in this response to retrieve "
			     "the remainder of the results. Continuing with the "
			     "provided token results in an inconsistent list - "
			     "objects that were created, modified, or deleted "
			     "between the time the first chunk was returned and "
			     "now may show up in the list.");
			json_object_set_new(st, "metadata",
			    json_pack("{s:s}", "continue", tok));
			json_object_set_new(st, "details", json_object());
			send_json(q, 410, st, NULL);
			json_decref(st);
			free(tok);
			free(after);
			return;
		}
	} else if (has_rv && rv == 0) {
		if (q->sim->opt.rv0_ignores_limit)
			limit = 0;
		if (q->fault.action == KS_FA_STALE) {
			/* A lagging cache: the state K revisions ago. */
			uint64_t lag = (uint64_t) q->fault.lag_rv;
			at           = cur > lag ? cur - lag : ks_plane_floor(p);
			if (at < ks_plane_floor(p))
				at = ks_plane_floor(p);
			if (at == 0)
				at = cur;
		}
	} else if (has_rv) {
		bool exact = (match != NULL && strcmp(match, "Exact") == 0) ||
		    ((match == NULL || match[0] == '\0') && limit > 0);
		if (rv > cur) {
			send_too_large(q, rv);
			return;
		}
		if (exact) {
			if (rv < ks_plane_floor(p)) {
				send_fail(q, 410, "Expired",
				    "The resourceVersion for the provided list "
				    "is too old.");
				return;
			}
			at = rv;
		}
	}
	uint64_t snapshot = at != 0 ? at : cur;
	list_acc a        = { .q = q, .lsel = lsel, .fsel = fsel, .type = t,
		       .limit = limit, .table = wants_table(q),
		       .now = time(NULL) };
	/* The items are written after a reserved prefix where the list's
	 * head goes once the continue token is known, so the body is built
	 * in one buffer, sized for the likely result up front. */
	a.cap = LIST_PREFIX + 512 * (ks_plane_count(p, t) + 1);
	a.buf = mcf_malloc(a.cap);
	a.len = LIST_PREFIX;
	int rc = ks_plane_list(p, t, ns, at, after, list_one, &a);
	free(after);
	if (rc != 0) {
		send_fail(q, 410, "Expired",
		    "The resourceVersion for the provided list is too old.");
		free(a.buf);
		free(a.last_key);
		return;
	}
	char gv[300];
	ks_type_gv(t, gv, sizeof(gv));
	json_t *meta = json_object();
	char    rvbuf[32];
	snprintf(rvbuf, sizeof(rvbuf), "%llu", (unsigned long long) snapshot);
	json_object_set_new(meta, "resourceVersion", json_string(rvbuf));
	if (a.remaining > 0 && a.last_key != NULL) {
		char *tok = make_continue(snapshot, a.last_key, false);
		json_object_set_new(meta, "continue", json_string(tok));
		free(tok);
		if (lsel == NULL && fsel == NULL)
			json_object_set_new(meta, "remainingItemCount",
			    json_integer((json_int_t) a.remaining));
	}
	char *metatext = mcf_json_dump(meta);
	json_decref(meta);
	char *head;
	if (a.table) {
		json_t *cols     = ks_table_columns(t);
		char   *colstext = mcf_json_dump(cols);
		json_decref(cols);
		head = mcf_asprintf("{\"kind\":\"Table\",\"apiVersion\":"
				    "\"meta.k8s.io/v1\",\"metadata\":%s,"
				    "\"columnDefinitions\":%s,\"rows\":[",
		    metatext, colstext);
		free(colstext);
	} else {
		head = mcf_asprintf(
		    "{\"kind\":\"%s\",\"apiVersion\":\"%s\",\"metadata\":%s,"
		    "\"items\":[",
		    t->list_kind, gv, metatext);
	}
	free(metatext);
	size_t hl = strlen(head);
	acc_append(&a, "]}\n", 3);
	if (hl <= LIST_PREFIX) {
		memcpy(a.buf + LIST_PREFIX - hl, head, hl);
		respond(q, 200, "application/json", NULL,
		    a.buf + LIST_PREFIX - hl, a.len - LIST_PREFIX + hl);
	} else {
		size_t total = hl + a.len - LIST_PREFIX;
		char  *out   = mcf_malloc(total);
		memcpy(out, head, hl);
		memcpy(out + hl, a.buf + LIST_PREFIX, a.len - LIST_PREFIX);
		respond(q, 200, "application/json", NULL, out, total);
		free(out);
	}
	free(head);
	free(a.buf);
	free(a.last_key);
}

/* ---- watch --------------------------------------------------------- */

static void
handle_watch(rq *q, const ks_type *t, const char *ns, ks_labelsel *lsel,
    ks_fieldsel *fsel)
{
	const char *rvs   = param_get(q, "resourceVersion");
	const char *match = param_get(q, "resourceVersionMatch");
	const char *sie   = param_get(q, "sendInitialEvents");
	const char *tos   = param_get(q, "timeoutSeconds");
	uint64_t    rv    = 0;
	bool        has_rv = rvs != NULL && rvs[0] != '\0';
	ks_watch_params wp = { .plane = q->plane, .type = t, .ns = ns,
		.lsel = lsel, .fsel = fsel,
		.bookmarks = param_bool(q, "allowWatchBookmarks"),
		.timeout_ms = q->sim->opt.watch_timeout_ms,
		.user_agent = ks_req_header(q->conn, "User-Agent"),
		.table = wants_table(q),
		.label_selector = param_get(q, "labelSelector"),
		.field_selector = param_get(q, "fieldSelector") };
	const ks_fault *f = &q->fault;
	wp.truncate       = q->trunc >= 0;
	wp.trunc_after    = q->trunc;
	wp.throttle_bps   = q->throttle;
	wp.body_delay_ms  = q->body_delay;
	if (f->action == KS_FA_WATCH_CLOSE) {
		wp.fault_close        = true;
		wp.close_after_events = f->after_events;
		wp.close_after_ms     = f->after_ms;
		wp.close_mode         = (int) f->mode;
	} else if (f->action == KS_FA_BOOKMARKS) {
		wp.bookmarks_off     = f->bookmarks_off;
		wp.bookmark_every_ms = f->bookmark_every_ms;
	} else if (f->action == KS_FA_WATCH_BUFFER) {
		wp.buffer_events = f->watch_buffer > 0 ? f->watch_buffer : 1;
	}
	if (has_rv && !parse_rv(rvs, &rv)) {
		send_fail(q, 400, "BadRequest", "invalid resource version: %s",
		    rvs);
		goto fail;
	}
	if (tos != NULL && tos[0] != '\0') {
		char     *end;
		long long s = strtoll(tos, &end, 10);
		if (*end != '\0' || s < 0) {
			send_fail(q, 400, "BadRequest",
			    "invalid timeoutSeconds: %s", tos);
			goto fail;
		}
		if (s > 0)
			wp.timeout_ms = s * 1000;
	}
	bool match_set = match != NULL && match[0] != '\0';
	if (sie != NULL) {
		bool send = param_bool(q, "sendInitialEvents");
		if (!match_set || strcmp(match, "NotOlderThan") != 0) {
			send_list_options_invalid(q, "sendInitialEvents",
			    "sendInitialEvents requires setting "
			    "resourceVersionMatch to NotOlderThan");
			goto fail;
		}
		if (send) {
			if (has_rv && rv > ks_plane_rv(q->plane)) {
				send_too_large(q, rv);
				goto fail;
			}
			wp.start                = KS_WATCH_INITIAL;
			wp.initial_end_bookmark = true;
		} else if (!has_rv || rv == 0) {
			wp.start = KS_WATCH_LATEST;
		} else {
			wp.start = KS_WATCH_FROM_RV;
			wp.rv    = rv;
		}
	} else {
		if (match_set) {
			send_list_options_invalid(q, "resourceVersionMatch",
			    "resourceVersionMatch is forbidden for watch "
			    "unless sendInitialEvents is provided");
			goto fail;
		}
		if (!has_rv || rv == 0) {
			wp.start = KS_WATCH_INITIAL;
		} else {
			wp.start = KS_WATCH_FROM_RV;
			wp.rv    = rv;
		}
	}
	log_status(q, 200);
	ks_watch_start(q->sim->hub, q->conn, &wp);
	return;
fail:
	ks_labelsel_free(wp.lsel);
	ks_fieldsel_free(wp.fsel);
}

/* ---- resources ----------------------------------------------------- */

static bool
content_is(rq *q, const char *type)
{
	const char *ct = ks_req_header(q->conn, "Content-Type");
	if (ct == NULL)
		return false;
	size_t n = strlen(type);
	return strncasecmp(ct, type, n) == 0 &&
	    (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

/* Parses the body as JSON.  Protobuf bodies are answered with 415 until
 * the protobuf decoder exists. */
static json_t *
parse_body(rq *q, const ks_type *t, bool patch)
{
	json_error_t e;
	json_t      *body = NULL;
	if (content_is(q, "application/vnd.kubernetes.protobuf") && !patch) {
		char err[256];
		int  rc = ks_pb_decode((const unsigned char *) q->req->body,
		     q->req->body_len, &body, err, sizeof(err));
		if (rc == KS_PB_UNSUPPORTED) {
			send_fail(q, 415, "UnsupportedMediaType", "%s", err);
			return NULL;
		}
		if (rc != KS_PB_OK) {
			send_fail(q, 400, "BadRequest", "%s", err);
			return NULL;
		}
	} else {
		body = json_loadb(q->req->body, q->req->body_len,
		    JSON_REJECT_DUPLICATES, &e);
	}
	if (body == NULL) {
		send_fail(q, 400, "BadRequest",
		    "the body of the request could not be decoded as JSON: %s "
		    "(line %d, column %d)",
		    e.text, e.line, e.column);
		return NULL;
	}
	if (patch)
		return body;
	if (!json_is_object(body)) {
		json_decref(body);
		send_fail(q, 400, "BadRequest",
		    "the body of the request must be a JSON object");
		return NULL;
	}
	char        gv[300];
	const char *kind = json_string_value(json_object_get(body, "kind"));
	const char *av = json_string_value(json_object_get(body, "apiVersion"));
	ks_type_gv(t, gv, sizeof(gv));
	if ((kind != NULL && kind[0] != '\0' && strcmp(kind, t->kind) != 0) ||
	    (av != NULL && av[0] != '\0' && strcmp(av, gv) != 0)) {
		send_fail(q, 400, "BadRequest",
		    "the API version in the data (%s) does not match the "
		    "expected API version (%s), or the kind (%s) does not "
		    "match %s",
		    av ? av : "", gv, kind ? kind : "", t->kind);
		json_decref(body);
		return NULL;
	}
	return body;
}

static bool
admit_opts(rq *q, ks_admit_opts *o)
{
	const char *fv = param_get(q, "fieldValidation");
	o->fv          = KS_FV_WARN;
	if (fv != NULL && strcmp(fv, "Strict") == 0)
		o->fv = KS_FV_STRICT;
	else if (fv != NULL && strcmp(fv, "Ignore") == 0)
		o->fv = KS_FV_IGNORE;
	else if (fv != NULL && fv[0] != '\0' && strcmp(fv, "Warn") != 0) {
		send_fail(q, 400, "BadRequest",
		    "fieldValidation must be one of Ignore, Warn or Strict, "
		    "got %s",
		    fv);
		return false;
	}
	const char *dry = param_get(q, "dryRun");
	o->dry_run      = false;
	if (dry != NULL && dry[0] != '\0') {
		if (strcmp(dry, "All") != 0) {
			send_fail(q, 400, "BadRequest",
			    "dryRun: Unsupported value: \"%s\": supported "
			    "values: \"All\"",
			    dry);
			return false;
		}
		o->dry_run = true;
	}
	return true;
}

static bool
collect_all(void *arg, const char *key, const json_t *obj)
{
	(void) key;
	json_array_append((json_t *) arg, (json_t *) obj);
	return true;
}

static void
handle_delete_collection(rq *q, const ks_type *t, const char *ns,
    ks_labelsel *lsel, ks_fieldsel *fsel, bool dry)
{
	/* Collect the matches first: deleting while iterating would change
	 * the table under the iteration. */
	json_t *all = json_array();
	ks_plane_list(q->plane, t, ns, 0, NULL, collect_all, all);
	json_t *done = json_array();
	size_t  i;
	json_t *o;
	json_array_foreach (all, i, o) {
		const json_t *meta = json_object_get(o, "metadata");
		if (lsel != NULL &&
		    !ks_labelsel_match(lsel, json_object_get(meta, "labels")))
			continue;
		if (fsel != NULL && !ks_fieldsel_match(fsel, o))
			continue;
		ks_result   r = { 0 };
		const char *name =
		    json_string_value(json_object_get(meta, "name"));
		const char *ons =
		    json_string_value(json_object_get(meta, "namespace"));
		if (ks_ops_delete(q->sim, q->plane, t, ons, name, NULL, dry,
			&r) == 0)
			json_array_append(done, o);
		ks_result_fini(&r);
	}
	json_decref(all);
	char gv[300];
	ks_type_gv(t, gv, sizeof(gv));
	char rvbuf[32];
	snprintf(rvbuf, sizeof(rvbuf), "%llu",
	    (unsigned long long) ks_plane_rv(q->plane));
	json_t *b = json_pack("{s:s,s:s,s:{s:s},s:o}", "kind", t->list_kind,
	    "apiVersion", gv, "metadata", "resourceVersion", rvbuf, "items",
	    done);
	send_json(q, 200, b, NULL);
	json_decref(b);
}

/* The Kubernetes verb of a resource request. */
static const char *
verb_of(rq *q, const char *name)
{
	const char *m = q->req->method;
	if (strcmp(m, "GET") == 0)
		return name ? "get" : param_bool(q, "watch") ? "watch" : "list";
	if (strcmp(m, "POST") == 0)
		return "create";
	if (strcmp(m, "PUT") == 0)
		return "update";
	if (strcmp(m, "PATCH") == 0)
		return "patch";
	if (strcmp(m, "DELETE") == 0)
		return name ? "delete" : "deletecollection";
	return "unknown";
}

static void
send_fault_status(rq *q, const ks_fault *f)
{
	json_t *st = ks_status_new(f->status, ks_status_reason(f->status),
	    f->message);
	char    hdr[64] = "";
	if (f->retry_after > 0) {
		snprintf(hdr, sizeof(hdr), "Retry-After: %d\r\n", f->retry_after);
		json_object_set_new(st, "details",
		    json_pack("{s:i}", "retryAfterSeconds", f->retry_after));
	} else {
		json_object_set_new(st, "details", json_object());
	}
	send_json(q, f->status, st, hdr[0] ? hdr : NULL);
	json_decref(st);
}

/* Consults the fault rules once the request is understood.  Returns 0 to
 * go on (possibly with response shaping or watch options set in `q`),
 * -1 when the request has been answered (or deliberately left hanging). */
static int
apply_faults(rq *q, const ks_type *t, const char *ns, const char *name)
{
	ks_fault *f = &q->fault;
	if (!q->redispatch) {
		const char  *rvs = param_get(q, "resourceVersion");
		const char  *cnt = param_get(q, "continue");
		ks_fault_req fr  = { .plane = ks_plane_name(q->plane),
			 .method = q->req->method, .verb = verb_of(q, name),
			 .group = t->group, .resource = t->resource, .ns = ns,
			 .name = name, .path = q->req->path,
			 .ua = ks_req_header(q->conn, "User-Agent"),
			 .is_watch = name == NULL && param_bool(q, "watch") &&
			     strcmp(q->req->method, "GET") == 0,
			 .has_rv = rvs != NULL && rvs[0] != '\0' &&
			     strcmp(rvs, "0") != 0,
			 .rv_zero = rvs != NULL && strcmp(rvs, "0") == 0,
			 .has_continue = cnt != NULL && cnt[0] != '\0',
			 .now_ms = ks_httpd_now_ms(q->sim->httpd) };
		int64_t latency = 0;
		bool    body    = false;
		if (!ks_faults_eval(q->sim->faults, &fr, &latency, &body, f))
			return 0;
		if (latency > 0 && body) {
			q->body_delay = latency;
		} else if (latency > 0) {
			later *l = mcf_calloc(1, sizeof(*l));
			l->sim   = q->sim;
			l->conn  = q->conn;
			l->req   = q->req;
			l->fault = *f;
			l->log   = json_incref(q->log);
			ks_conn_on_close(q->conn, later_on_close, l);
			l->timer = ks_httpd_timer_add(q->sim->httpd, latency,
			    redispatch, l);
			return -1;
		}
	}
	switch (f->action) {
	case KS_FA_STATUS:
		send_fault_status(q, f);
		return -1;
	case KS_FA_CONN_RESET:
		ks_conn_close(q->conn, true);
		return -1;
	case KS_FA_CONN_HANG:
		return -1; /* never answered; the client gives up */
	case KS_FA_CONN_TRUNCATE:
		q->trunc = f->after_bytes;
		return 0;
	case KS_FA_THROTTLE:
		q->throttle = f->throttle_bps;
		return 0;
	case KS_FA_CONFLICT: {
		char gr[300];
		ks_type_gr(t, gr, sizeof(gr));
		json_t *st = ks_status_new(409, "Conflict", "");
		char   *msg = mcf_asprintf("Operation cannot be fulfilled on %s "
					   "\"%s\": the object has been "
					   "modified; please apply your "
					   "changes to the latest version "
					   "and try again",
		      gr, name ? name : "");
		json_object_set_new(st, "message", json_string(msg));
		json_object_set_new(st, "details",
		    json_pack("{s:s,s:s,s:s}", "name", name ? name : "",
			"group", t->group, "kind", t->resource));
		if (t->group[0] == '\0')
			json_object_del(json_object_get(st, "details"), "group");
		send_json(q, 409, st, NULL);
		json_decref(st);
		free(msg);
		return -1;
	}
	case KS_FA_TOO_LARGE_RV: {
		uint64_t    rv  = ks_plane_rv(q->plane) + 1000;
		const char *rvs = param_get(q, "resourceVersion");
		if (rvs != NULL && parse_rv(rvs, &rv) && rv <= ks_plane_rv(q->plane))
			rv = ks_plane_rv(q->plane) + 1000;
		send_too_large(q, rv);
		return -1;
	}
	case KS_FA_WATCH_EXPIRE: {
		const char *rvs = param_get(q, "resourceVersion");
		char        msg[160];
		snprintf(msg, sizeof(msg), "too old resource version: %s (%llu)",
		    rvs ? rvs : "", (unsigned long long) ks_plane_rv(q->plane));
		if (f->http_form) {
			send_fail(q, 410, "Expired", "%s", msg);
		} else {
			log_status(q, 200);
			ks_watch_send_error(q->conn, 410, "Expired", msg, NULL);
		}
		return -1;
	}
	default:
		return 0;
	}
}

static void
handle_resource(rq *q, size_t first)
{
	/* segs[first..] after /api/v1 or /apis/g/v */
	const char *group, *version;
	if (strcmp(q->seg[0], "api") == 0) {
		group   = "";
		version = q->seg[1];
	} else {
		group   = q->seg[1];
		version = q->seg[2];
	}
	char  **s = q->seg + first;
	size_t  n = q->nseg - first;
	const char    *ns = NULL, *resource, *name = NULL, *sub = NULL;
	const ks_type *t;
	if (n >= 3 && strcmp(s[0], "namespaces") == 0 &&
	    (t = ks_plane_type(q->plane, group, version, s[2])) != NULL &&
	    t->namespaced) {
		ns       = s[1];
		resource = s[2];
		name     = n > 3 ? s[3] : NULL;
		sub      = n > 4 ? s[4] : NULL;
		if (n > 5) {
			send_not_found(q);
			return;
		}
	} else {
		resource = s[0];
		name     = n > 1 ? s[1] : NULL;
		sub      = n > 2 ? s[2] : NULL;
		if (n > 3) {
			send_not_found(q);
			return;
		}
		t = ks_plane_type(q->plane, group, version, resource);
		if (t != NULL && t->namespaced && strcmp(q->req->method, "GET") &&
		    name != NULL) {
			/* A namespaced resource needs a namespace to name
			 * one object. */
			send_not_found(q);
			return;
		}
	}
	if (t == NULL) {
		send_not_found(q);
		return;
	}
	bool status_sub = false;
	if (sub != NULL) {
		if (strcmp(sub, "status") != 0 || !t->has_status) {
			send_not_found(q);
			return;
		}
		status_sub = true;
	}
	if (apply_faults(q, t, ns, name) != 0)
		return;
	const char *m = q->req->method;
	if (name == NULL && (strcmp(m, "GET") == 0 || strcmp(m, "DELETE") == 0)) {
		char         err[512];
		const char  *ls   = param_get(q, "labelSelector");
		const char  *fs   = param_get(q, "fieldSelector");
		ks_labelsel *lsel = NULL;
		ks_fieldsel *fsel = NULL;
		if (ls != NULL && ls[0] != '\0') {
			lsel = ks_labelsel_parse(ls, err, sizeof(err));
			if (lsel == NULL) {
				send_fail(q, 400, "BadRequest", "%s", err);
				return;
			}
		}
		if (fs != NULL && fs[0] != '\0') {
			fsel = ks_fieldsel_parse(fs, t->fields, err, sizeof(err));
			if (fsel == NULL) {
				ks_labelsel_free(lsel);
				send_fail(q, 400, "BadRequest", "%s", err);
				return;
			}
		}
		if (strcmp(m, "DELETE") == 0) {
			ks_admit_opts o;
			if (admit_opts(q, &o))
				handle_delete_collection(q, t, ns, lsel, fsel,
				    o.dry_run);
			ks_labelsel_free(lsel);
			ks_fieldsel_free(fsel);
		} else if (param_bool(q, "watch")) {
			handle_watch(q, t, ns, lsel, fsel);
		} else {
			handle_list(q, t, ns, lsel, fsel);
			ks_labelsel_free(lsel);
			ks_fieldsel_free(fsel);
		}
		return;
	}
	ks_result     r = { 0 };
	ks_admit_opts o;
	if (strcmp(m, "GET") == 0) {
		if (param_bool(q, "watch")) {
			/* Deprecated GET …/name?watch=true: a watch with the
			 * metadata.name field selector. */
			char  sel[600];
			char  err[256];
			snprintf(sel, sizeof(sel), "metadata.name=%s", name);
			handle_watch(q, t, ns, NULL,
			    ks_fieldsel_parse(sel, t->fields, err, sizeof(err)));
			return;
		}
		if (ks_ops_get(q->sim, q->plane, t, ns, name, &r) == 0 &&
		    wants_table(q)) {
			const char *rv = mcf_json_path_str(r.body,
			    "metadata.resourceVersion");
			json_t *tbl = json_pack("{s:s,s:s,s:{s:s},s:o,s:[o]}",
			    "kind", "Table", "apiVersion", "meta.k8s.io/v1",
			    "metadata", "resourceVersion", rv ? rv : "",
			    "columnDefinitions", ks_table_columns(t), "rows",
			    ks_table_row(t, r.body, time(NULL)));
			ks_ok(&r, 200, tbl);
		}
	} else if (strcmp(m, "POST") == 0) {
		if (name != NULL) {
			send_fail(q, 405, "MethodNotAllowed",
			    "the server does not allow this method on the "
			    "requested resource");
			return;
		}
		json_t *body;
		if (!admit_opts(q, &o) || (body = parse_body(q, t, false)) == NULL)
			return;
		ks_ops_create(q->sim, q->plane, t, ns, body, &o, &r);
	} else if (strcmp(m, "PUT") == 0) {
		json_t *body;
		if (name == NULL) {
			send_fail(q, 405, "MethodNotAllowed",
			    "the server does not allow this method on the "
			    "requested resource");
			return;
		}
		if (!admit_opts(q, &o) || (body = parse_body(q, t, false)) == NULL)
			return;
		ks_ops_update(q->sim, q->plane, t, ns, name, body, status_sub,
		    &o, &r);
	} else if (strcmp(m, "PATCH") == 0) {
		enum ks_patch_type pt;
		if (name == NULL) {
			send_fail(q, 405, "MethodNotAllowed",
			    "the server does not allow this method on the "
			    "requested resource");
			return;
		}
		if (content_is(q, "application/merge-patch+json"))
			pt = KS_PATCH_MERGE;
		else if (content_is(q, "application/json-patch+json"))
			pt = KS_PATCH_JSON;
		else if (content_is(q, "application/strategic-merge-patch+json"))
			pt = KS_PATCH_STRATEGIC;
		else {
			/* Server-side apply included: kubectl then says
			 * "Server-side apply not available". */
			send_fail(q, 415, "UnsupportedMediaType",
			    "the body of the request was in an unknown format "
			    "- accepted media types include: "
			    "application/json-patch+json, "
			    "application/merge-patch+json, "
			    "application/strategic-merge-patch+json");
			return;
		}
		json_t *patch;
		if (!admit_opts(q, &o) || (patch = parse_body(q, t, true)) == NULL)
			return;
		ks_ops_patch(q->sim, q->plane, t, ns, name, pt, patch,
		    status_sub, &o, &r);
		json_decref(patch);
	} else if (strcmp(m, "DELETE") == 0) {
		if (!admit_opts(q, &o))
			return;
		json_t *opts = NULL;
		if (q->req->body_len > 0) {
			json_error_t e;
			opts = json_loadb(q->req->body, q->req->body_len, 0, &e);
			if (!json_is_object(opts)) {
				json_decref(opts);
				send_fail(q, 400, "BadRequest",
				    "the body of the request could not be "
				    "decoded as DeleteOptions");
				return;
			}
		}
		ks_ops_delete(q->sim, q->plane, t, ns, name, opts, o.dry_run,
		    &r);
		json_decref(opts);
	} else {
		send_fail(q, 405, "MethodNotAllowed",
		    "the server does not allow this method on the requested "
		    "resource");
		return;
	}
	send_result(q, &r);
	ks_result_fini(&r);
}

/* ---- routing ------------------------------------------------------- */

/* Splits and decodes `path` into q->seg.  Rejects ".", "..", empty
 * segments in the middle, encoded slashes and NULs. */
static bool
split_path(rq *q, const char *path)
{
	if (path[0] != '/')
		return false;
	const char *p = path + 1;
	while (*p != '\0') {
		const char *e = strchr(p, '/');
		size_t      n = e ? (size_t) (e - p) : strlen(p);
		if (n == 0) {
			if (e == NULL || e[1] == '\0')
				break; /* trailing slash */
			return false;
		}
		if (q->nseg >= MAX_SEGMENTS)
			return false;
		char *seg = pct_decode(p, n, false);
		if (seg == NULL || strchr(seg, '/') != NULL ||
		    strcmp(seg, ".") == 0 || strcmp(seg, "..") == 0) {
			free(seg);
			return false;
		}
		q->seg[q->nseg++] = seg;
		if (e == NULL)
			break;
		p = e + 1;
	}
	return true;
}

static bool
parse_query(rq *q, const char *query)
{
	const char *p = query;
	while (*p != '\0') {
		const char *e  = strchr(p, '&');
		size_t      n  = e ? (size_t) (e - p) : strlen(p);
		const char *eq = memchr(p, '=', n);
		if (n > 0) {
			if (q->nparams >= MAX_PARAMS)
				return false;
			size_t kl  = eq ? (size_t) (eq - p) : n;
			char  *key = pct_decode(p, kl, true);
			char  *val = eq ? pct_decode(eq + 1, n - kl - 1, true)
					: mcf_strdup("");
			if (key == NULL || val == NULL) {
				free(key);
				free(val);
				return false;
			}
			q->params[q->nparams].key   = key;
			q->params[q->nparams++].val = val;
		}
		if (e == NULL)
			break;
		p = e + 1;
	}
	return true;
}

/* Finds a project prefix.  Returns the offset of the in-plane path or 0
 * when the path is for the root; -1 when the path names a project
 * prefix without anything after it. */
static long
project_prefix(const char *path, char *project, size_t len)
{
	const char *p = NULL;
	if (strncmp(path, MILO_PREFIX, strlen(MILO_PREFIX)) == 0)
		p = path + strlen(MILO_PREFIX);
	else if (strncmp(path, "/projects/", 10) == 0)
		p = path + 10;
	if (p == NULL)
		return 0;
	const char *slash = strchr(p, '/');
	if (slash == NULL || slash == p)
		return 0;
	static const char cp[] = "/control-plane";
	if (strncmp(slash, cp, sizeof(cp) - 1) != 0)
		return 0;
	const char *rest = slash + sizeof(cp) - 1;
	if (*rest != '/')
		return rest[0] == '\0' ? -1 : 0;
	snprintf(project, len, "%.*s", (int) (slash - p), p);
	return rest - path;
}

static void
begin_log(rq *q, json_t *log)
{
	if (log != NULL) {
		q->log = json_incref(log);
		json_object_set_new(q->log, "plane",
		    json_string(q->plane ? ks_plane_name(q->plane) : ""));
	} else {
		log_request(q);
	}
}

/* Plane-level faults: a project plane unavailable, gone, or warming up.
 * True when the request has been answered. */
static bool
plane_faults(rq *q)
{
	ks_fault     f;
	ks_fault_req fr = { .plane = ks_plane_name(q->plane),
		.method = q->req->method, .path = q->req->path,
		.ua     = ks_req_header(q->conn, "User-Agent"),
		.now_ms = ks_httpd_now_ms(q->sim->httpd) };
	if (!ks_faults_plane(q->sim->faults, &fr, &f))
		return false;
	if (f.action == KS_FA_PLANE_GONE) {
		ks_watchhub_end_plane(q->sim->hub, q->plane);
		json_t *st = ks_status_new(404, "NotFound", "");
		char   *msg = mcf_asprintf(
		      "projects.resourcemanager.miloapis.com \"%s\" not found",
		      ks_plane_name(q->plane));
		json_object_set_new(st, "message", json_string(msg));
		json_object_set_new(st, "details",
		    json_pack("{s:s,s:s,s:s}", "name", ks_plane_name(q->plane),
			"group", "resourcemanager.miloapis.com", "kind",
			"projects"));
		send_json(q, 404, st, NULL);
		json_decref(st);
		free(msg);
		return true;
	}
	send_fault_status(q, &f);
	return true;
}

void
ks_api_handle(void *arg, ks_conn *c, const ks_req *req)
{
	dispatch(arg, c, req, NULL, NULL);
}

/* Logs a request (unless this is its second pass after injected latency,
 * `log` then being its entry) and routes it. */
static void
dispatch(ks_sim *s, ks_conn *c, const ks_req *req, const ks_fault *preset,
    json_t *log)
{
	rq q = { .sim = s, .conn = c, .req = req, .trunc = -1 };
	q.plane          = ks_store_root(s->store);
	const char *path = req->path;
	if (preset != NULL) {
		q.fault      = *preset;
		q.redispatch = true;
	}

	char project[256] = "";
	long off          = project_prefix(path, project, sizeof(project));
	if (off > 0) {
		char *decoded = pct_decode(project, strlen(project), false);
		snprintf(q.prefix, sizeof(q.prefix), "%.*s", (int) off, path);
		q.plane = decoded ? ks_store_plane(s->store, decoded) : NULL;
		begin_log(&q, log);
		if (q.plane == NULL) {
			json_t *st = ks_status_new(404, "NotFound", "");
			char   *msg = mcf_asprintf(
			      "projects.resourcemanager.miloapis.com \"%s\" not "
			      "found",
			      decoded ? decoded : project);
			json_object_set_new(st, "message", json_string(msg));
			json_object_set_new(st, "details",
			    json_pack("{s:s,s:s,s:s}", "name",
				decoded ? decoded : project, "group",
				"resourcemanager.miloapis.com", "kind",
				"projects"));
			send_json(&q, 404, st, NULL);
			json_decref(st);
			free(msg);
			free(decoded);
			rq_free(&q);
			return;
		}
		free(decoded);
		path += off;
		if (!q.redispatch && plane_faults(&q)) {
			rq_free(&q);
			return;
		}
	} else {
		begin_log(&q, log);
	}
	if (off < 0 || !split_path(&q, path) || !parse_query(&q, req->query)) {
		send_not_found(&q);
		rq_free(&q);
		return;
	}
	if (q.nseg == 0) {
		json_t *paths = json_pack("{s:[s,s,s,s,s,s,s]}", "paths", "/api",
		    "/apis", "/healthz", "/livez", "/openapi/v3", "/readyz",
		    "/version");
		send_json(&q, 200, paths, NULL);
		json_decref(paths);
		rq_free(&q);
		return;
	}
	const char *s0 = q.seg[0];
	if (strcmp(s0, "_sim") == 0 && off == 0) {
		handle_sim(&q);
	} else if (q.nseg == 1 && (strcmp(s0, "healthz") == 0 ||
				     strcmp(s0, "readyz") == 0 ||
				     strcmp(s0, "livez") == 0)) {
		send_text(&q, 200, "ok");
	} else if (q.nseg == 1 && strcmp(s0, "version") == 0) {
		const char *gv    = s->opt.gitversion;
		int         major = 1, minor = 32;
		sscanf(gv, "v%d.%d", &major, &minor);
		char mj[16], mn[16];
		snprintf(mj, sizeof(mj), "%d", major);
		snprintf(mn, sizeof(mn), "%d", minor);
		json_t *b = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}",
		    "major", mj, "minor", mn, "gitVersion", gv, "gitCommit",
		    "0000000000000000000000000000000000000000", "gitTreeState",
		    "clean", "buildDate", "2025-01-01T00:00:00Z", "goVersion",
		    "go1.23.0", "compiler", "gc", "platform", "linux/amd64");
		send_json(&q, 200, b, NULL);
		json_decref(b);
	} else if (strcmp(s0, "openapi") == 0) {
		if (q.nseg >= 2 && strcmp(q.seg[1], "v3") == 0)
			handle_openapi(&q);
		else
			send_not_found(&q);
	} else if (strcmp(s0, "api") == 0 || strcmp(s0, "apis") == 0) {
		bool core  = strcmp(s0, "api") == 0;
		size_t gvn = core ? 2 : 3; /* segments of the group-version */
		if (q.nseg <= gvn) {
			if (strcmp(req->method, "GET") != 0)
				send_fail(&q, 405, "MethodNotAllowed",
				    "the server does not allow this method on "
				    "the requested resource");
			else
				handle_discovery(&q);
		} else {
			handle_resource(&q, gvn);
		}
	} else {
		send_not_found(&q);
	}
	rq_free(&q);
}

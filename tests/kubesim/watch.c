/*
 * watch.c — watch streams fed by the store's events.
 *
 * Each plane's watches form a doubly linked list hung on the plane's user
 * slot, so an event only visits the watches of its own plane.  Everything
 * runs on the loop thread: a store write calls on_event(), which formats
 * the event once and writes a chunk to every matching watch before the
 * write returns.  Per watch there are at most two timers (timeout,
 * bookmark); a watch is freed when its connection closes, whoever closed
 * it.
 */
#include "watch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "faults.h"
#include "json.h"
#include "log.h"
#include "status.h"
#include "table.h"

#define DEFAULT_BUFFER_LIMIT (16u << 20)

typedef struct watch watch;

struct ks_watchhub {
	ks_sim *sim;
	size_t  count;
	size_t  buffer_limit;
	uint64_t next_id;
	watch  *all; /* every watch, via all_next */
};

struct watch {
	ks_watchhub   *hub;
	uint64_t       id;
	ks_conn       *conn;  /* borrowed; valid until on_close */
	ks_plane      *plane; /* borrowed; valid until plane gone */
	char          *gr;    /* "group/resource" (owned) */
	char          *kind;  /* owned: the type may go away (CRD update) */
	char          *gv;    /* owned */
	bool           namespaced;
	char          *ns;    /* owned or NULL */
	ks_labelsel   *lsel;  /* owned or NULL */
	ks_fieldsel   *fsel;  /* owned or NULL */
	bool           bookmarks;
	uint64_t       start_rv;
	uint64_t       sent_rv;
	uint64_t       timeout_timer;
	uint64_t       bookmark_timer;
	int64_t        started_ms;
	char          *ua;    /* owned */
	char          *lsel_text; /* owned, "" when none */
	char          *fsel_text; /* owned, "" when none */
	char          *gvr;   /* "group/version/resource" (owned) */
	ks_type       *ttype; /* Table form: private copy of what rows need
				 (owned), NULL for plain JSON */
	bool           columns_sent;
	int64_t        bookmark_ms;  /* 0: no periodic bookmarks */
	int64_t        close_after_events; /* fault: -1 none */
	int            close_mode;
	uint64_t       close_timer;
	int64_t        buffer_events; /* fault: 0 none */
	int64_t        events_sent;
	int64_t        queued_events; /* written since the queue was empty */
	int64_t        trunc_left;    /* fault: bytes until the cut, -1 none */
	bool           cut;           /* the cut happened: end abruptly */
	int64_t        throttle_bps;  /* fault: 0 none */
	int64_t        body_delay_ms; /* fault: 0 none */
	char          *hold;          /* bytes held back by throttle/delay
					 (owned) */
	size_t         hold_len, hold_cap;
	uint64_t       hold_timer;
	watch         *prev, *next;         /* plane list */
	watch         *all_prev, *all_next; /* hub list */
};

static watch **
plane_head(ks_plane *p)
{
	return (watch **) ks_plane_user(p);
}

static void
gr_of(const ks_type *t, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", t->group, t->resource);
}

static bool
matches(const watch *w, const json_t *obj)
{
	if (obj == NULL)
		return false;
	const json_t *meta = json_object_get(obj, "metadata");
	if (w->ns != NULL && w->namespaced) {
		const char *ns =
		    json_string_value(json_object_get(meta, "namespace"));
		if (ns == NULL || strcmp(ns, w->ns) != 0)
			return false;
	}
	if (w->lsel != NULL &&
	    !ks_labelsel_match(w->lsel, json_object_get(meta, "labels")))
		return false;
	if (w->fsel != NULL && !ks_fieldsel_match(w->fsel, obj))
		return false;
	return true;
}

static void
hold_flush(void *arg)
{
	watch *w      = arg;
	w->hold_timer = 0;
	size_t n      = w->hold_len;
	if (w->throttle_bps > 0 && (size_t) w->throttle_bps < n)
		n = (size_t) w->throttle_bps;
	if (n > 0) {
		ks_conn_stream_write(w->conn, w->hold, n);
		memmove(w->hold, w->hold + n, w->hold_len - n);
		w->hold_len -= n;
	}
	if (w->hold_len > 0)
		w->hold_timer = ks_httpd_timer_add(w->hub->sim->httpd,
		    w->throttle_bps > 0 ? 1000 : w->body_delay_ms, hold_flush, w);
}

/* Everything a watch writes passes here, so the injected truncation,
 * throttling and body latency apply to events and bookmarks alike. */
static void
stream_out(watch *w, const char *buf, size_t len)
{
	if (w->cut)
		return;
	if (w->trunc_left >= 0 && (int64_t) len > w->trunc_left) {
		len     = (size_t) w->trunc_left;
		w->cut  = true;
	}
	if (w->trunc_left >= 0)
		w->trunc_left -= (int64_t) len;
	if (len == 0)
		return;
	if (w->throttle_bps <= 0 && w->body_delay_ms <= 0) {
		ks_conn_stream_write(w->conn, buf, len);
		return;
	}
	if (w->hold_len + len > w->hold_cap) {
		w->hold_cap = (w->hold_len + len) * 2;
		w->hold     = mcf_realloc(w->hold, w->hold_cap);
	}
	memcpy(w->hold + w->hold_len, buf, len);
	w->hold_len += len;
	if (w->hold_timer == 0)
		w->hold_timer = ks_httpd_timer_add(w->hub->sim->httpd,
		    w->throttle_bps > 0 ? 0 : w->body_delay_ms, hold_flush, w);
}

/* Writes {"type":T,"object":<text>}\n as one chunk. */
static void
write_event(watch *w, const char *type, const char *objtext, size_t objlen)
{
	size_t tl  = strlen(type);
	size_t len = 9 + tl + 12 + objlen + 2;
	char   stackbuf[4096];
	char  *buf = len <= sizeof(stackbuf) ? stackbuf : mcf_malloc(len);
	size_t o   = 0;
	memcpy(buf + o, "{\"type\":\"", 9);
	o += 9;
	memcpy(buf + o, type, tl);
	o += tl;
	memcpy(buf + o, "\",\"object\":", 11);
	o += 11;
	memcpy(buf + o, objtext, objlen);
	o += objlen;
	buf[o++] = '}';
	buf[o++] = '\n';
	stream_out(w, buf, o);
	if (buf != stackbuf)
		free(buf);
}

static void
write_json_event(watch *w, const char *type, const json_t *obj)
{
	char *text = mcf_json_dump(obj);
	write_event(w, type, text, strlen(text));
	free(text);
}

/* An object event in the Table form: a one-row Table; only the first
 * carries the column definitions, as the real server's watch encoder does
 * (kubectl would print the header again otherwise). */
static void
write_table_event(watch *w, const char *type, const json_t *obj)
{
	const char *rv = mcf_json_path_str(obj, "metadata.resourceVersion");
	json_t *tbl = json_pack("{s:s,s:s,s:{s:s},s:o,s:[o]}", "kind", "Table",
	    "apiVersion", "meta.k8s.io/v1", "metadata", "resourceVersion",
	    rv ? rv : "", "columnDefinitions",
	    w->columns_sent ? json_array() : ks_table_columns(w->ttype),
	    "rows", ks_table_row(w->ttype, obj, time(NULL)));
	w->columns_sent = true;
	write_json_event(w, type, tbl);
	json_decref(tbl);
}

static void
write_obj_event(watch *w, const char *type, const json_t *obj)
{
	if (w->ttype != NULL)
		write_table_event(w, type, obj);
	else
		write_json_event(w, type, obj);
}

static void watch_end(watch *w);

/* Drops a watch whose client does not keep up (real servers do the same,
 * without an ERROR event). */
static void fault_end(watch *w);

static bool
check_backlog(watch *w)
{
	if (w->cut) {
		/* An injected truncation: the half-written line stays. */
		w->close_mode = KS_CLOSE_ABRUPT;
		fault_end(w);
		return false;
	}
	if (ks_conn_pending(w->conn) + w->hold_len <= w->hub->buffer_limit)
		return true;
	mcf_log_info("KS-WATCH-SLOW",
	    "watch %llu dropped: %zu bytes queued for a slow reader",
	    (unsigned long long) w->id, ks_conn_pending(w->conn));
	watch_end(w);
	return false;
}

static void
send_bookmark(watch *w, uint64_t rv, bool initial_end)
{
	char rvs[32];
	snprintf(rvs, sizeof(rvs), "%llu", (unsigned long long) rv);
	json_t *meta = json_pack("{s:s}", "resourceVersion", rvs);
	if (initial_end)
		json_object_set_new(meta, "annotations",
		    json_pack("{s:s}", "k8s.io/initial-events-end", "true"));
	json_t *obj = json_pack("{s:s,s:s,s:o}", "kind", w->kind,
	    "apiVersion", w->gv, "metadata", meta);
	write_json_event(w, "BOOKMARK", obj);
	json_decref(obj);
	w->sent_rv = rv;
}

static void
unlink_watch(watch *w)
{
	if (w->plane != NULL) {
		if (w->prev != NULL)
			w->prev->next = w->next;
		else
			*plane_head(w->plane) = w->next;
		if (w->next != NULL)
			w->next->prev = w->prev;
		w->plane = NULL;
	}
}

static void
watch_free(watch *w)
{
	ks_watchhub *h = w->hub;
	unlink_watch(w);
	if (w->all_prev != NULL)
		w->all_prev->all_next = w->all_next;
	else
		h->all = w->all_next;
	if (w->all_next != NULL)
		w->all_next->all_prev = w->all_prev;
	h->count--;
	ks_httpd_timer_cancel(h->sim->httpd, w->timeout_timer);
	ks_httpd_timer_cancel(h->sim->httpd, w->bookmark_timer);
	ks_httpd_timer_cancel(h->sim->httpd, w->close_timer);
	ks_httpd_timer_cancel(h->sim->httpd, w->hold_timer);
	free(w->hold);
	ks_labelsel_free(w->lsel);
	ks_fieldsel_free(w->fsel);
	free(w->gr);
	free(w->kind);
	free(w->gv);
	free(w->ns);
	free(w->ua);
	free(w->lsel_text);
	free(w->fsel_text);
	free(w->gvr);
	ks_type_free(w->ttype);
	free(w);
}

static void
on_conn_close(void *arg, ks_conn *c)
{
	(void) c;
	watch_free(arg);
}

/* Ends the stream cleanly; the close of the response frees the watch via
 * the connection's close callback or right here when the connection
 * stays open for keep-alive. */
static void
watch_end(watch *w)
{
	ks_conn *c = w->conn;
	ks_conn_on_close(c, NULL, NULL);
	ks_conn_on_drain(c, NULL, NULL);
	watch_free(w);
	ks_conn_stream_end(c, KS_END_CLEAN);
}

/* Injected end of stream: clean (terminating chunk), abrupt (socket
 * closed without it) or midline (half a JSON line, then abrupt). */
static void
fault_end(watch *w)
{
	if (w->close_mode == KS_CLOSE_CLEAN) {
		watch_end(w);
		return;
	}
	ks_conn *c    = w->conn;
	bool     half = w->close_mode == KS_CLOSE_MIDLINE;
	ks_conn_on_close(c, NULL, NULL);
	ks_conn_on_drain(c, NULL, NULL);
	watch_free(w);
	if (half) {
		static const char part[] = "{\"type\":\"MODIFIED\",\"object\":{\"kind\":";
		ks_conn_stream_write(c, part, sizeof(part) - 1);
	}
	ks_conn_stream_end(c, KS_END_ABRUPT);
}

static void
on_close_timer(void *arg)
{
	watch *w       = arg;
	w->close_timer = 0;
	fault_end(w);
}

/* Accounting after one object event was written; false when the watch was
 * ended (by a fault or a full buffer) and must not be used again. */
static bool
after_event(watch *w)
{
	w->events_sent++;
	if (ks_conn_pending(w->conn) == 0)
		w->queued_events = 0;
	else
		w->queued_events++;
	if (w->close_after_events >= 0 &&
	    w->events_sent >= w->close_after_events) {
		fault_end(w);
		return false;
	}
	if (w->buffer_events > 0 && w->queued_events > w->buffer_events) {
		mcf_log_info("KS-WATCH-SLOW",
		    "watch %llu dropped: more than %lld events queued",
		    (unsigned long long) w->id, (long long) w->buffer_events);
		watch_end(w);
		return false;
	}
	return check_backlog(w);
}

static void
on_timeout(void *arg)
{
	watch *w         = arg;
	w->timeout_timer = 0;
	watch_end(w);
}

static void
on_bookmark_timer(void *arg)
{
	watch *w          = arg;
	w->bookmark_timer = 0;
	if (w->plane == NULL)
		return;
	send_bookmark(w, ks_plane_rv(w->plane), false);
	if (!check_backlog(w))
		return;
	w->bookmark_timer = ks_httpd_timer_add(w->hub->sim->httpd,
	    w->bookmark_ms, on_bookmark_timer, w);
}

/* Writes the event if it concerns the watch; false when the watch ended
 * because of it. */
static bool
deliver(watch *w, const ks_event *ev, const char **text, size_t *textlen)
{
	bool m_new, m_old;
	switch (ev->type) {
	case KS_ADDED:
		m_old = false;
		m_new = matches(w, ev->obj);
		break;
	case KS_MODIFIED:
		m_old = matches(w, ev->old);
		m_new = matches(w, ev->obj);
		break;
	default:
		m_old = matches(w, ev->obj);
		m_new = false;
		break;
	}
	const char *type;
	if (m_old && m_new)
		type = "MODIFIED";
	else if (!m_old && m_new)
		type = "ADDED";
	else if (m_old && !m_new)
		type = "DELETED";
	else
		return true;
	if (w->ttype != NULL) {
		write_table_event(w, type, ev->obj);
	} else {
		if (*text == NULL) {
			char *t  = mcf_json_dump(ev->obj);
			*text    = t;
			*textlen = strlen(t);
		}
		write_event(w, type, *text, *textlen);
	}
	w->sent_rv = ev->rv;
	return after_event(w);
}

static void
on_event(void *arg, ks_plane *p, const ks_event *ev)
{
	(void) arg;
	const char *gr      = ev->gr;
	const char *text    = NULL;
	size_t      textlen = 0;
	watch      *w       = *plane_head(p);
	while (w != NULL) {
		watch *next = w->next;
		if (strcmp(w->gr, gr) == 0)
			deliver(w, ev, &text, &textlen);
		w = next;
	}
	free((char *) text);
}

static void
on_plane_gone(void *arg, ks_plane *p)
{
	(void) arg;
	while (*plane_head(p) != NULL)
		watch_end(*plane_head(p));
}

void
ks_watchhub_end_plane(ks_watchhub *h, ks_plane *p)
{
	on_plane_gone(h, p);
}

size_t
ks_watchhub_bookmark(ks_watchhub *h, uint64_t id)
{
	size_t n = 0;
	watch *w = h->all;
	while (w != NULL) {
		watch *next = w->all_next;
		if (w->bookmarks && (id == 0 || w->id == id)) {
			if (w->plane != NULL) {
				send_bookmark(w, ks_plane_rv(w->plane), false);
				n++;
				check_backlog(w);
			}
		}
		w = next;
	}
	return n;
}

ks_watchhub *
ks_watchhub_create(ks_sim *s)
{
	ks_watchhub *h  = mcf_calloc(1, sizeof(*h));
	h->sim          = s;
	h->buffer_limit = DEFAULT_BUFFER_LIMIT;
	ks_store_observer obs = { .on_event = on_event,
		.on_plane_gone = on_plane_gone, .arg = h };
	ks_store_observe(s->store, &obs);
	return h;
}

void
ks_watchhub_destroy(ks_watchhub *h)
{
	if (h == NULL)
		return;
	while (h->all != NULL) {
		ks_conn_on_close(h->all->conn, NULL, NULL);
		watch_free(h->all);
	}
	free(h);
}

size_t
ks_watchhub_count(const ks_watchhub *h)
{
	return h->count;
}

void
ks_watchhub_set_buffer_limit(ks_watchhub *h, size_t bytes)
{
	h->buffer_limit = bytes > 0 ? bytes : DEFAULT_BUFFER_LIMIT;
}

void
ks_watch_send_error(ks_conn *c, int code, const char *reason,
    const char *msg, json_t *details)
{
	json_t *st  = ks_status_new(code, reason, msg);
	if (details != NULL)
		json_object_set_new(st, "details", details);
	json_t *ev  = json_pack("{s:s,s:o}", "type", "ERROR", "object", st);
	char   *txt = mcf_json_dump(ev);
	size_t  n   = strlen(txt);
	char   *line = mcf_malloc(n + 2);
	memcpy(line, txt, n);
	line[n] = '\n';
	ks_conn_stream_begin(c, 200, "application/json", NULL);
	ks_conn_stream_write(c, line, n + 1);
	ks_conn_stream_end(c, KS_END_CLEAN);
	free(line);
	free(txt);
	json_decref(ev);
}

typedef struct start_ctx {
	watch         *w;
	const ks_type *type; /* borrowed during the start */
	bool           ended; /* a fault ended the watch during its start */
} start_ctx;

static bool
initial_one(void *arg, const char *key, const json_t *obj)
{
	start_ctx *sc = arg;
	if (!matches(sc->w, obj))
		return true;
	size_t      len;
	const char *text = sc->w->ttype == NULL
	    ? ks_plane_text(sc->w->plane, sc->type, key, obj, &len)
	    : NULL;
	if (text != NULL)
		write_event(sc->w, "ADDED", text, len);
	else
		write_obj_event(sc->w, "ADDED", obj);
	if (!after_event(sc->w)) {
		sc->ended = true;
		return false;
	}
	return true;
}

static void
replay_one(void *arg, const ks_event *ev)
{
	start_ctx *sc = arg;
	if (sc->ended || strcmp(ev->gr, sc->w->gr) != 0)
		return;
	const char *text = NULL;
	size_t      len  = 0;
	if (!deliver(sc->w, ev, &text, &len))
		sc->ended = true;
	free((char *) text);
}

void
ks_watch_start(ks_watchhub *h, ks_conn *c, ks_watch_params *wp)
{
	ks_plane *p   = wp->plane;
	uint64_t  cur = ks_plane_rv(p);
	if (wp->start == KS_WATCH_FROM_RV && wp->rv < ks_plane_floor(p)) {
		char msg[128];
		snprintf(msg, sizeof(msg), "too old resource version: %llu (%llu)",
		    (unsigned long long) wp->rv,
		    (unsigned long long) ks_plane_floor(p));
		ks_watch_send_error(c, 410, "Expired", msg, NULL);
		goto free_params;
	}
	if (wp->start == KS_WATCH_FROM_RV && wp->rv > cur) {
		char msg[160];
		snprintf(msg, sizeof(msg),
		    "Timeout: Too large resource version: %llu, current: %llu",
		    (unsigned long long) wp->rv, (unsigned long long) cur);
		ks_watch_send_error(c, 504, "Timeout", msg,
		    json_pack("{s:[{s:s,s:s}],s:i}", "causes", "reason",
			"ResourceVersionTooLarge", "message",
			"Too large resource version", "retryAfterSeconds", 1));
		goto free_params;
	}
	watch *w      = mcf_calloc(1, sizeof(*w));
	w->hub        = h;
	w->id         = ++h->next_id;
	w->conn       = c;
	w->plane      = p;
	char gr[512], gv[256];
	gr_of(wp->type, gr, sizeof(gr));
	ks_type_gv(wp->type, gv, sizeof(gv));
	w->gr         = mcf_strdup(gr);
	w->kind       = mcf_strdup(wp->type->kind);
	w->gv         = mcf_strdup(gv);
	w->namespaced = wp->type->namespaced;
	w->ns         = wp->ns ? mcf_strdup(wp->ns) : NULL;
	w->lsel       = wp->lsel;
	w->fsel       = wp->fsel;
	w->bookmarks  = wp->bookmarks;
	w->started_ms = ks_httpd_now_ms(h->sim->httpd);
	w->ua         = mcf_strdup(wp->user_agent ? wp->user_agent : "");
	w->lsel_text  = mcf_strdup(wp->label_selector ? wp->label_selector : "");
	w->fsel_text  = mcf_strdup(wp->field_selector ? wp->field_selector : "");
	w->gvr        = mcf_asprintf("%s/%s/%s", wp->type->group,
		   wp->type->version, wp->type->resource);
	w->start_rv   = wp->start == KS_WATCH_FROM_RV ? wp->rv : cur;
	if (wp->table) {
		ks_type *tt   = mcf_calloc(1, sizeof(*tt));
		tt->group     = mcf_strdup(wp->type->group);
		tt->resource  = mcf_strdup(wp->type->resource);
		tt->rules     = wp->type->rules;
		tt->printer_columns = wp->type->printer_columns
		    ? json_deep_copy(wp->type->printer_columns)
		    : NULL;
		w->ttype = tt;
	}
	w->sent_rv    = w->start_rv;
	w->close_after_events = wp->fault_close ? wp->close_after_events : -1;
	w->close_mode         = wp->close_mode;
	w->buffer_events      = wp->buffer_events;
	w->trunc_left         = wp->truncate ? wp->trunc_after : -1;
	w->throttle_bps       = wp->throttle_bps;
	w->body_delay_ms      = wp->body_delay_ms;
	w->bookmark_ms        = wp->bookmarks_off ? 0
	    : wp->bookmark_every_ms > 0           ? wp->bookmark_every_ms
						  : h->sim->opt.bookmark_ms;
	wp->lsel = NULL;
	wp->fsel = NULL;

	/* Linked before anything is written: a fault may end the watch
	 * while its initial events go out. */
	w->next = *plane_head(p);
	if (w->next != NULL)
		w->next->prev = w;
	*plane_head(p) = w;
	w->all_next    = h->all;
	if (h->all != NULL)
		h->all->all_prev = w;
	h->all = w;
	h->count++;
	ks_conn_on_close(c, on_conn_close, w);
	w->timeout_timer =
	    ks_httpd_timer_add(h->sim->httpd, wp->timeout_ms, on_timeout, w);
	if (w->bookmarks && w->bookmark_ms > 0)
		w->bookmark_timer = ks_httpd_timer_add(h->sim->httpd,
		    w->bookmark_ms, on_bookmark_timer, w);
	if (wp->fault_close && wp->close_after_ms >= 0)
		w->close_timer = ks_httpd_timer_add(h->sim->httpd,
		    wp->close_after_ms, on_close_timer, w);

	ks_conn_stream_begin(c, 200, "application/json", NULL);
	start_ctx sc = { .w = w, .type = wp->type };
	if (wp->start == KS_WATCH_INITIAL) {
		ks_plane_list(p, wp->type, w->ns, 0, NULL, initial_one, &sc);
		if (!sc.ended && wp->initial_end_bookmark && w->bookmarks)
			send_bookmark(w, cur, true);
	} else if (wp->start == KS_WATCH_FROM_RV) {
		ks_plane_events_since(p, wp->rv, replay_one, &sc);
	}
	if (!sc.ended && w->close_after_events == 0)
		fault_end(w);
	else if (!sc.ended)
		check_backlog(w);
	return;
free_params:
	ks_labelsel_free(wp->lsel);
	ks_fieldsel_free(wp->fsel);
	wp->lsel = NULL;
	wp->fsel = NULL;
}

void
ks_watchhub_end_resource(ks_watchhub *h, ks_plane *p, const char *group,
    const char *resource)
{
	(void) h;
	char gr[512];
	snprintf(gr, sizeof(gr), "%s/%s", group, resource);
	watch *w = *plane_head(p);
	while (w != NULL) {
		watch *next = w->next;
		if (strcmp(w->gr, gr) == 0)
			watch_end(w);
		w = next;
	}
}

json_t *
ks_watchhub_describe(const ks_watchhub *h)
{
	json_t *arr = json_array();
	int64_t now = ks_httpd_now_ms(h->sim->httpd);
	for (const watch *w = h->all; w != NULL; w = w->all_next) {
		json_array_append_new(arr,
		    json_pack("{s:I,s:s,s:s,s:s,s:{s:s,s:s},s:I,s:I,s:I,s:f,s:s}",
			"id", (json_int_t) w->id, "plane",
			w->plane ? ks_plane_name(w->plane) : "", "gvr", w->gvr,
			"ns", w->ns ? w->ns : "", "selectors", "label",
			w->lsel_text, "field", w->fsel_text, "startRV",
			(json_int_t) w->start_rv, "sentRV",
			(json_int_t) w->sent_rv, "queued",
			(json_int_t) ks_conn_pending(w->conn), "age",
			(double) (now - w->started_ms) / 1000.0, "user_agent",
			w->ua));
	}
	return arr;
}

/*
 * watchstream.c — push parser for Kubernetes watch streams.
 *
 * The server writes one JSON object per line and flushes it, but the
 * transport (chunked encoding, TCP, libcurl's write callback) may deliver
 * any split of those bytes.  mcf_ws_feed() therefore looks for '\n' in each
 * chunk with memchr.  A line that lies wholly inside the chunk and has no
 * earlier part pending is parsed straight from the caller's bytes; otherwise
 * its bytes are appended to one buffer that is reused for every line and
 * grows by doubling, never beyond max_line_bytes.  The limit is checked as
 * bytes arrive, so a server that never sends '\n' cannot make us allocate
 * without bound.  No strtok (STYLE.md §16): the input is not NUL-terminated
 * and may contain NUL bytes.
 *
 * Every failure (oversize line, malformed line, callback stop) is sticky:
 * the stream is over and later calls repeat the error until mcf_ws_reset().
 * The informer then reconnects and resumes from the last resourceVersion
 * whose event the callback accepted.
 */
#include <assert.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "alloc.h"
#include "err.h"
#include "json.h"
#include "watchstream.h"

/* First buffer size; most events are a few KiB. */
#define WS_INITIAL_CAP 1024

struct mcf_ws {
	size_t      max;     /* longest accepted line, '\r' included */
	char       *buf;     /* owned: pending partial line */
	size_t      len;     /* bytes pending in buf */
	size_t      cap;     /* allocated size of buf, <= max */
	char       *last_rv; /* owned, NUL-terminated, or NULL */
	size_t      rv_cap;  /* allocated size of last_rv */
	bool        in_cb;   /* a callback is running: refuse re-entry */
	mcf_errinfo err;     /* sticky error; err.code == MCF_OK while open */
};

static const struct {
	const char *name;
	mcf_ws_type type;
} ws_types[] = {
	{ "ADDED", MCF_WS_ADDED },
	{ "MODIFIED", MCF_WS_MODIFIED },
	{ "DELETED", MCF_WS_DELETED },
	{ "BOOKMARK", MCF_WS_BOOKMARK },
	{ "ERROR", MCF_WS_ERROR },
};

const char *
mcf_ws_type_name(mcf_ws_type type)
{
	for (size_t i = 0; i < sizeof(ws_types) / sizeof(ws_types[0]); i++)
		if (ws_types[i].type == type)
			return ws_types[i].name;
	return "UNKNOWN";
}

int
mcf_ws_create(mcf_ws **out, size_t max_line_bytes)
{
	mcf_ws *p;

	if (out == NULL || max_line_bytes == 0)
		return MCF_EINVAL;
	p      = mcf_calloc(1, sizeof(*p));
	p->max = max_line_bytes;
	*out   = p;
	return MCF_OK;
}

void
mcf_ws_destroy(mcf_ws *p)
{
	if (p == NULL)
		return;
	free(p->buf);
	free(p->last_rv);
	free(p);
}

void
mcf_ws_reset(mcf_ws *p)
{
	p->len = 0;
	mcf_errinfo_clear(&p->err);
}

const char *
mcf_ws_last_rv(const mcf_ws *p)
{
	return p->last_rv;
}

/* Ends the stream with `code`; the message is kept for later calls. */
static int
ws_fail(mcf_ws *p, mcf_errinfo *ei, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int
ws_fail(mcf_ws *p, mcf_errinfo *ei, int code, const char *fmt, ...)
{
	va_list ap;
	char   *msg;

	va_start(ap, fmt);
	msg = mcf_vasprintf(fmt, ap);
	va_end(ap);
	mcf_errinfo_set(&p->err, code, "%s", msg);
	free(msg);
	p->len = 0;
	return mcf_errinfo_set(ei, code, "%s", p->err.msg);
}

/* Appends to the pending line; the caller has checked the limit. */
static void
ws_append(mcf_ws *p, const char *s, size_t n)
{
	size_t need = p->len + n;

	if (n == 0)
		return;
	if (need > p->cap) {
		size_t cap = p->cap != 0 ? p->cap : WS_INITIAL_CAP;
		while (cap < need && cap <= p->max / 2)
			cap *= 2;
		if (cap < need || cap > p->max)
			cap = p->max;
		p->buf = mcf_realloc(p->buf, cap);
		p->cap = cap;
	}
	memcpy(p->buf + p->len, s, n);
	p->len = need;
}

static bool
ws_blank(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
			return false;
	return true;
}

static void
ws_set_last_rv(mcf_ws *p, const char *rv)
{
	size_t n = strlen(rv) + 1;

	if (n > p->rv_cap) {
		p->last_rv = mcf_realloc(p->last_rv, n);
		p->rv_cap  = n;
	}
	memcpy(p->last_rv, rv, n);
}

static bool
ws_type_from(json_t *t, mcf_ws_type *out)
{
	const char *s = json_string_value(t);
	size_t      n = json_string_length(t);

	for (size_t i = 0; i < sizeof(ws_types) / sizeof(ws_types[0]); i++) {
		if (strlen(ws_types[i].name) == n &&
		    memcmp(ws_types[i].name, s, n) == 0) {
			*out = ws_types[i].type;
			return true;
		}
	}
	return false;
}

/* Parses one complete line (without its '\n') and delivers the event. */
static int
ws_line(mcf_ws *p, const char *s, size_t n, mcf_ws_cb cb, void *arg,
    mcf_errinfo *ei)
{
	mcf_errinfo  jei;
	json_t      *v = NULL;
	json_t      *t;
	json_t      *obj;
	mcf_ws_event ev;
	int          stop;

	if (ws_blank(s, n))
		return MCF_OK;
	if (mcf_json_parse(s, n, &v, &jei) != MCF_OK)
		return ws_fail(p, ei, MCF_EPROTO,
		    "malformed watch event (%zu bytes): %s", n, jei.msg);
	if (!json_is_object(v)) {
		json_decref(v);
		return ws_fail(p, ei, MCF_EPROTO,
		    "watch event is not a JSON object");
	}
	memset(&ev, 0, sizeof(ev));
	t = json_object_get(v, "type");
	if (!json_is_string(t)) {
		json_decref(v);
		return ws_fail(p, ei, MCF_EPROTO,
		    "watch event has no string \"type\"");
	}
	if (!ws_type_from(t, &ev.type)) {
		int rc = ws_fail(p, ei, MCF_EPROTO,
		    "unknown watch event type \"%.64s\"", json_string_value(t));
		json_decref(v);
		return rc;
	}
	obj = json_object_get(v, "object");
	if (!json_is_object(obj)) {
		json_decref(v);
		return ws_fail(p, ei, MCF_EPROTO,
		    "%s watch event has no \"object\" object",
		    mcf_ws_type_name(ev.type));
	}
	ev.object           = obj;
	ev.resource_version = mcf_json_path_str(obj, "metadata.resourceVersion");
	if (ev.type == MCF_WS_ERROR) {
		json_t *c = json_object_get(obj, "code");
		if (json_is_integer(c)) {
			json_int_t ci = json_integer_value(c);
			if (ci >= INT_MIN && ci <= INT_MAX)
				ev.code = (int) ci;
		}
		ev.reason  = json_string_value(json_object_get(obj, "reason"));
		ev.message = json_string_value(json_object_get(obj, "message"));
	}

	p->in_cb = true;
	stop     = cb(&ev, arg);
	p->in_cb = false;
	if (stop != 0) {
		json_decref(v);
		return ws_fail(p, ei, MCF_ECANCELED,
		    "watch stream stopped by its event callback");
	}
	if (ev.type != MCF_WS_ERROR && ev.resource_version != NULL)
		ws_set_last_rv(p, ev.resource_version);
	json_decref(v);
	return MCF_OK;
}

int
mcf_ws_feed(mcf_ws *p, const void *bytes, size_t len, mcf_ws_cb cb,
    void *arg, mcf_errinfo *ei)
{
	const char *s = bytes;
	size_t      n = len;

	assert(cb != NULL);
	if (p->in_cb)
		return mcf_errinfo_set(ei, MCF_EBUSY,
		    "mcf_ws_feed called from its own callback");
	if (p->err.code != MCF_OK)
		return mcf_errinfo_set(ei, p->err.code, "%s", p->err.msg);

	while (n > 0) {
		const char *nl   = memchr(s, '\n', n);
		size_t      take = nl != NULL ? (size_t) (nl - s) : n;
		int         rc;

		if (take > p->max - p->len)
			return ws_fail(p, ei, MCF_ETOOBIG,
			    "watch event line longer than %zu bytes", p->max);
		if (nl == NULL) {
			ws_append(p, s, n);
			break;
		}
		if (p->len == 0) {
			rc = ws_line(p, s, take, cb, arg, ei);
		} else {
			ws_append(p, s, take);
			rc = ws_line(p, p->buf, p->len, cb, arg, ei);
			p->len = 0;
		}
		if (rc != MCF_OK)
			return rc;
		s += take + 1;
		n -= take + 1;
	}
	mcf_errinfo_clear(ei);
	return MCF_OK;
}

int
mcf_ws_finish(mcf_ws *p, mcf_errinfo *ei)
{
	if (p->in_cb)
		return mcf_errinfo_set(ei, MCF_EBUSY,
		    "mcf_ws_finish called from its own callback");
	if (p->err.code != MCF_OK)
		return mcf_errinfo_set(ei, p->err.code, "%s", p->err.msg);
	if (!ws_blank(p->buf, p->len))
		return ws_fail(p, ei, MCF_EPROTO,
		    "watch stream cut inside an event (%zu bytes pending)",
		    p->len);
	p->len = 0;
	mcf_errinfo_clear(ei);
	return MCF_OK;
}

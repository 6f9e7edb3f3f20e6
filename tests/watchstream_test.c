/*
 * watchstream_test.c — tests for common/watchstream.c.
 *
 * Every canned stream is fed whole, byte by byte, and split in two at every
 * possible boundary; the events delivered, the error code and last_rv must
 * be the same each time (STYLE.md §13).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "alloc.h"
#include "err.h"
#include "json.h"
#include "watchstream.h"

/* What one run of a stream produced. */
typedef struct ws_result {
	char  *log;     /* owned: one line per event */
	size_t log_len;
	int    nevents;
	int    rc;      /* first error of feed or finish, else MCF_OK */
	char  *last_rv; /* owned copy, or NULL */
	char   msg[512];
} ws_result;

typedef struct ws_rec {
	ws_result *res;
	int        stop_after; /* stop on this event number (1-based); 0 never */
} ws_rec;

static void
log_append(ws_result *r, const char *s)
{
	size_t n = strlen(s);
	r->log   = mcf_realloc(r->log, r->log_len + n + 1);
	memcpy(r->log + r->log_len, s, n + 1);
	r->log_len += n;
}

static int
record_cb(const mcf_ws_event *ev, void *arg)
{
	ws_rec *rec = arg;
	char   *obj = mcf_json_dump(ev->object);
	char   *line;

	line = mcf_asprintf("%s rv=%s code=%d reason=%s msg=%s obj=%s\n",
	    mcf_ws_type_name(ev->type),
	    ev->resource_version ? ev->resource_version : "-", ev->code,
	    ev->reason ? ev->reason : "-", ev->message ? ev->message : "-",
	    obj);
	log_append(rec->res, line);
	free(line);
	free(obj);
	rec->res->nevents++;
	if (rec->stop_after != 0 && rec->res->nevents == rec->stop_after)
		return 1;
	return 0;
}

static void
result_free(ws_result *r)
{
	free(r->log);
	free(r->last_rv);
	memset(r, 0, sizeof(*r));
}

/* Feeds `s[0..len)` in chunks ending at `cuts` (ascending offsets), then
 * finishes.  Stops at the first error. */
static void
run_cuts(const char *s, size_t len, const size_t *cuts, size_t ncuts,
    size_t max, int stop_after, ws_result *out)
{
	mcf_ws     *p = NULL;
	ws_rec      rec;
	mcf_errinfo ei;
	size_t      at = 0;
	int         rc = MCF_OK;

	memset(out, 0, sizeof(*out));
	log_append(out, "");
	rec.res        = out;
	rec.stop_after = stop_after;
	assert_int_equal(mcf_ws_create(&p, max), MCF_OK);
	for (size_t i = 0; i <= ncuts && rc == MCF_OK; i++) {
		size_t end = i < ncuts ? cuts[i] : len;
		rc = mcf_ws_feed(p, s + at, end - at, record_cb, &rec, &ei);
		at = end;
	}
	if (rc == MCF_OK)
		rc = mcf_ws_finish(p, &ei);
	out->rc = rc;
	if (rc != MCF_OK) {
		assert_int_equal(ei.code, rc);
		assert_true(ei.msg[0] != '\0');
		strcpy(out->msg, ei.msg);
	}
	if (mcf_ws_last_rv(p) != NULL)
		out->last_rv = mcf_strdup(mcf_ws_last_rv(p));
	mcf_ws_destroy(p);
}

static void
run_whole(const char *s, size_t max, ws_result *out)
{
	run_cuts(s, strlen(s), NULL, 0, max, 0, out);
}

static void
assert_same(const ws_result *a, const ws_result *b, const char *how)
{
	if (a->rc != b->rc || strcmp(a->log, b->log) != 0 ||
	    (a->last_rv == NULL) != (b->last_rv == NULL) ||
	    (a->last_rv != NULL && strcmp(a->last_rv, b->last_rv) != 0))
		fail_msg("%s differs: rc %s vs %s\n--- whole\n%s--- split\n%s",
		    how, mcf_err_name(a->rc), mcf_err_name(b->rc), a->log,
		    b->log);
}

/* Whole, byte by byte, and every two-chunk split give `*whole`. */
static void
check_splits(const char *s, size_t max, int stop_after, ws_result *whole)
{
	size_t    len = strlen(s);
	size_t   *cuts;
	ws_result r;

	run_cuts(s, len, NULL, 0, max, stop_after, whole);

	cuts = mcf_calloc(len + 1, sizeof(*cuts));
	for (size_t i = 0; i < len; i++)
		cuts[i] = i + 1;
	run_cuts(s, len, cuts, len, max, stop_after, &r);
	assert_same(whole, &r, "byte by byte");
	result_free(&r);
	free(cuts);

	for (size_t i = 0; i <= len; i++) {
		size_t cut = i;
		run_cuts(s, len, &cut, 1, max, stop_after, &r);
		assert_same(whole, &r, "two-chunk split");
		result_free(&r);
	}
}

#define EV_ADDED_A                                                         \
	"{\"type\":\"ADDED\",\"object\":{\"kind\":\"ConfigMap\",\"metadata\":" \
	"{\"name\":\"a\",\"resourceVersion\":\"11\"},\"data\":{\"k\":\"v\"}}}"
#define EV_MODIFIED_A                                                         \
	"{\"type\":\"MODIFIED\",\"object\":{\"kind\":\"ConfigMap\",\"metadata\":" \
	"{\"name\":\"a\",\"resourceVersion\":\"12\"},\"data\":{\"k\":\"w\\n\"}}}"
#define EV_BOOKMARK                                                         \
	"{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"ConfigMap\","        \
	"\"apiVersion\":\"v1\",\"metadata\":{\"resourceVersion\":\"15\","     \
	"\"annotations\":{\"k8s.io/initial-events-end\":\"true\"}}}}"
#define EV_DELETED_A                                                         \
	"{\"type\":\"DELETED\",\"object\":{\"kind\":\"ConfigMap\",\"metadata\":" \
	"{\"name\":\"a\",\"resourceVersion\":\"16\"}}}"
#define EV_ERROR_410                                                        \
	"{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"apiVersion\":" \
	"\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":"          \
	"\"too old resource version: 5 (10)\",\"reason\":\"Expired\","       \
	"\"code\":410}}"

static const char stream_main[] = EV_ADDED_A "\n" EV_MODIFIED_A
    "\n" EV_BOOKMARK "\n" EV_DELETED_A "\n" EV_ERROR_410 "\n";

static void
test_watchstream_events_at_every_split(void **state)
{
	ws_result w;

	(void) state;
	check_splits(stream_main, 4096, 0, &w);
	assert_int_equal(w.rc, MCF_OK);
	assert_int_equal(w.nevents, 5);
	assert_string_equal(w.log,
	    "ADDED rv=11 code=0 reason=- msg=- obj={\"kind\":\"ConfigMap\","
	    "\"metadata\":{\"name\":\"a\",\"resourceVersion\":\"11\"},"
	    "\"data\":{\"k\":\"v\"}}\n"
	    "MODIFIED rv=12 code=0 reason=- msg=- obj={\"kind\":\"ConfigMap\","
	    "\"metadata\":{\"name\":\"a\",\"resourceVersion\":\"12\"},"
	    "\"data\":{\"k\":\"w\\n\"}}\n"
	    "BOOKMARK rv=15 code=0 reason=- msg=- obj={\"kind\":\"ConfigMap\","
	    "\"apiVersion\":\"v1\",\"metadata\":{\"resourceVersion\":\"15\","
	    "\"annotations\":{\"k8s.io/initial-events-end\":\"true\"}}}\n"
	    "DELETED rv=16 code=0 reason=- msg=- obj={\"kind\":\"ConfigMap\","
	    "\"metadata\":{\"name\":\"a\",\"resourceVersion\":\"16\"}}\n"
	    "ERROR rv=- code=410 reason=Expired "
	    "msg=too old resource version: 5 (10) obj={\"kind\":\"Status\","
	    "\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\","
	    "\"message\":\"too old resource version: 5 (10)\","
	    "\"reason\":\"Expired\",\"code\":410}\n");
	/* The ERROR event does not move last_rv. */
	assert_string_equal(w.last_rv, "16");
	result_free(&w);
}

static void
test_watchstream_crlf_and_blank_lines(void **state)
{
	static const char crlf[] = "\r\n" EV_ADDED_A "\r\n\r\n" EV_BOOKMARK
	    "\r\n  \t \n\n" EV_DELETED_A "\r\n\r";
	static const char lf[] = EV_ADDED_A "\n" EV_BOOKMARK "\n" EV_DELETED_A
	    "\n";
	ws_result a;
	ws_result b;

	(void) state;
	check_splits(crlf, 4096, 0, &a);
	run_whole(lf, 4096, &b);
	assert_int_equal(a.rc, MCF_OK);
	assert_int_equal(a.nevents, 3);
	assert_same(&b, &a, "CRLF vs LF");
	assert_string_equal(a.last_rv, "16");
	result_free(&a);
	result_free(&b);

	/* An empty stream, and one of blank lines only, are fine. */
	check_splits("", 16, 0, &a);
	assert_int_equal(a.rc, MCF_OK);
	assert_int_equal(a.nevents, 0);
	assert_null(a.last_rv);
	result_free(&a);
	check_splits("\n\r\n \n", 16, 0, &a);
	assert_int_equal(a.rc, MCF_OK);
	assert_int_equal(a.nevents, 0);
	result_free(&a);
}

static void
test_watchstream_oversize_line(void **state)
{
	static const char line[] = EV_ADDED_A "\n" EV_DELETED_A "\n";
	size_t            n1     = strlen(EV_ADDED_A);
	size_t            n2     = strlen(EV_DELETED_A);
	size_t            big    = n1 > n2 ? n1 : n2;
	ws_result         w;
	char             *s;

	(void) state;
	/* A line exactly at the limit is accepted... */
	check_splits(line, big, 0, &w);
	assert_int_equal(w.rc, MCF_OK);
	assert_int_equal(w.nevents, 2);
	result_free(&w);
	/* ...one byte more is not, with the events before it delivered. */
	s = mcf_asprintf("%s\n%s\n", n1 < n2 ? EV_ADDED_A : EV_DELETED_A,
	    n1 < n2 ? EV_DELETED_A : EV_ADDED_A);
	check_splits(s, big - 1, 0, &w);
	assert_int_equal(w.rc, MCF_ETOOBIG);
	assert_int_equal(w.nevents, 1);
	assert_non_null(strstr(w.msg, "longer than"));
	result_free(&w);
	free(s);

	/* The '\r' of CRLF counts toward the limit. */
	s = mcf_asprintf("%s\r\n", EV_ADDED_A);
	check_splits(s, n1, 0, &w);
	assert_int_equal(w.rc, MCF_ETOOBIG);
	result_free(&w);
	check_splits(s, n1 + 1, 0, &w);
	assert_int_equal(w.rc, MCF_OK);
	result_free(&w);
	free(s);

	/* A line that never ends fails as soon as it passes the limit, and
	 * the parser then refuses everything. */
	{
		mcf_ws     *p = NULL;
		ws_result   r;
		ws_rec      rec = { &r, 0 };
		mcf_errinfo ei;
		char        junk[100];

		memset(&r, 0, sizeof(r));
		memset(junk, 'x', sizeof(junk));
		assert_int_equal(mcf_ws_create(&p, 250), MCF_OK);
		assert_int_equal(mcf_ws_feed(p, junk, 100, record_cb, &rec, NULL),
		    MCF_OK);
		assert_int_equal(mcf_ws_feed(p, junk, 100, record_cb, &rec, NULL),
		    MCF_OK);
		assert_int_equal(mcf_ws_feed(p, junk, 51, record_cb, &rec, &ei),
		    MCF_ETOOBIG);
		assert_int_equal(ei.code, MCF_ETOOBIG);
		assert_int_equal(mcf_ws_feed(p, "\n" EV_ADDED_A "\n",
				     strlen(EV_ADDED_A) + 2, record_cb, &rec, &ei),
		    MCF_ETOOBIG);
		assert_int_equal(mcf_ws_finish(p, NULL), MCF_ETOOBIG);
		assert_int_equal(r.nevents, 0);
		/* reset starts a new stream. */
		mcf_ws_reset(p);
		assert_int_equal(mcf_ws_feed(p, EV_ADDED_A "\n",
				     strlen(EV_ADDED_A) + 1, record_cb, &rec, &ei),
		    MCF_OK);
		assert_int_equal(mcf_ws_finish(p, &ei), MCF_OK);
		assert_int_equal(r.nevents, 1);
		assert_string_equal(mcf_ws_last_rv(p), "11");
		mcf_ws_destroy(p);
		result_free(&r);
	}
}

/* Each bad line ends the stream with MCF_EPROTO after the good event
 * before it; the good event after it is never delivered. */
static void
check_proto(const char *bad, const char *msg_part)
{
	char     *s = mcf_asprintf("%s\n%s\n%s\n", EV_ADDED_A, bad, EV_DELETED_A);
	ws_result w;

	check_splits(s, 4096, 0, &w);
	if (w.rc != MCF_EPROTO || w.nevents != 1 ||
	    strstr(w.msg, msg_part) == NULL)
		fail_msg("line %s: rc %s, %d events, msg \"%s\"", bad,
		    mcf_err_name(w.rc), w.nevents, w.msg);
	assert_string_equal(w.last_rv, "11");
	result_free(&w);
	free(s);
}

static void
test_watchstream_malformed_json(void **state)
{
	(void) state;
	check_proto("{\"type\":\"ADDED\",\"object\":{}", "malformed");
	check_proto("{\"type\":\"ADDED\",\"object\":{}} trailing", "malformed");
	check_proto("not json", "malformed");
	check_proto("{\"type\":\"ADDED\",\"object\":{\"a\":\"\\ud800\"}}",
	    "malformed");
	check_proto("[1,2]", "not a JSON object");
	check_proto("\"ADDED\"", "not a JSON object");
	check_proto("{\"object\":{}}", "no string \"type\"");
	check_proto("{\"type\":7,\"object\":{}}", "no string \"type\"");
	check_proto("{\"type\":\"ADDED\"}", "no \"object\" object");
	check_proto("{\"type\":\"ADDED\",\"object\":[]}", "no \"object\" object");
	check_proto("{\"type\":\"ERROR\",\"object\":\"gone\"}",
	    "no \"object\" object");
}

static void
test_watchstream_unknown_type(void **state)
{
	(void) state;
	check_proto("{\"type\":\"RENAMED\",\"object\":{}}",
	    "unknown watch event type \"RENAMED\"");
	check_proto("{\"type\":\"added\",\"object\":{}}",
	    "unknown watch event type");
	check_proto("{\"type\":\"\",\"object\":{}}", "unknown watch event type");
	/* jansson refuses "ADDED\u0000x" before we would compare it. */
	check_proto("{\"type\":\"ADDED\\u0000x\",\"object\":{}}",
	    "malformed");
	check_proto("{\"type\":\"ADDED \",\"object\":{}}",
	    "unknown watch event type");
}

static void
test_watchstream_truncated_stream(void **state)
{
	ws_result w;
	char     *s;
	size_t    full = strlen(stream_main);

	(void) state;
	/* Cut at every point inside the last event: the events before it
	 * are delivered and finish reports the cut. */
	size_t start = full - strlen(EV_ERROR_410) - 1;
	for (size_t keep = start; keep < full; keep++) {
		s = mcf_strndup(stream_main, keep);
		run_whole(s, 4096, &w);
		if (keep == start) {
			/* Exactly at a line start: nothing is pending. */
			assert_int_equal(w.rc, MCF_OK);
		} else {
			assert_int_equal(w.rc, MCF_EPROTO);
			assert_non_null(strstr(w.msg, "cut inside an event"));
		}
		assert_int_equal(w.nevents, 4);
		assert_string_equal(w.last_rv, "16");
		result_free(&w);
		free(s);
	}
	/* A complete object without its newline is still a cut. */
	check_splits(EV_ADDED_A, 4096, 0, &w);
	assert_int_equal(w.rc, MCF_EPROTO);
	assert_int_equal(w.nevents, 0);
	assert_null(w.last_rv);
	result_free(&w);
}

static void
test_watchstream_callback_stop(void **state)
{
	ws_result w;

	(void) state;
	check_splits(stream_main, 4096, 2, &w);
	assert_int_equal(w.rc, MCF_ECANCELED);
	assert_int_equal(w.nevents, 2);
	/* The event whose callback stopped does not count as seen. */
	assert_string_equal(w.last_rv, "11");
	result_free(&w);

	/* After the stop the parser refuses input until reset. */
	{
		mcf_ws   *p = NULL;
		ws_result r;
		ws_rec    rec = { &r, 1 };

		memset(&r, 0, sizeof(r));
		assert_int_equal(mcf_ws_create(&p, 4096), MCF_OK);
		assert_int_equal(mcf_ws_feed(p, stream_main, strlen(stream_main),
				     record_cb, &rec, NULL),
		    MCF_ECANCELED);
		assert_int_equal(mcf_ws_feed(p, stream_main, strlen(stream_main),
				     record_cb, &rec, NULL),
		    MCF_ECANCELED);
		assert_int_equal(r.nevents, 1);
		assert_null(mcf_ws_last_rv(p));
		mcf_ws_reset(p);
		rec.stop_after = 0;
		assert_int_equal(mcf_ws_feed(p, stream_main, strlen(stream_main),
				     record_cb, &rec, NULL),
		    MCF_OK);
		assert_int_equal(r.nevents, 6);
		assert_string_equal(mcf_ws_last_rv(p), "16");
		mcf_ws_destroy(p);
		result_free(&r);
	}
}

typedef struct rv_track {
	mcf_ws *p;
	char    seen[8][16]; /* last_rv as seen inside each callback */
	int     n;
	json_t *kept;        /* an object kept past its callback */
} rv_track;

static int
track_cb(const mcf_ws_event *ev, void *arg)
{
	rv_track   *t  = arg;
	const char *rv = mcf_ws_last_rv(t->p);

	strcpy(t->seen[t->n++], rv != NULL ? rv : "-");
	if (ev->type == MCF_WS_BOOKMARK) {
		json_incref(ev->object);
		t->kept = ev->object;
	}
	/* Re-entry is refused. */
	assert_int_equal(mcf_ws_feed(t->p, "\n", 1, track_cb, arg, NULL),
	    MCF_EBUSY);
	assert_int_equal(mcf_ws_finish(t->p, NULL), MCF_EBUSY);
	return 0;
}

static void
test_watchstream_last_rv_tracking(void **state)
{
	static const char s[] = EV_ADDED_A "\n"
	    "{\"type\":\"MODIFIED\",\"object\":{\"metadata\":{}}}\n"
	    "{\"type\":\"MODIFIED\",\"object\":{\"metadata\":"
	    "{\"resourceVersion\":12}}}\n" EV_BOOKMARK "\n" EV_ERROR_410 "\n"
	    "{\"type\":\"ADDED\",\"object\":{\"metadata\":"
	    "{\"resourceVersion\":\"a-much-longer-resource-version-string\"}}}"
	    "\n";
	mcf_ws  *p = NULL;
	rv_track t;

	(void) state;
	memset(&t, 0, sizeof(t));
	assert_int_equal(mcf_ws_create(&p, 4096), MCF_OK);
	t.p = p;
	assert_null(mcf_ws_last_rv(p));
	assert_int_equal(mcf_ws_feed(p, s, strlen(s), track_cb, &t, NULL),
	    MCF_OK);
	assert_int_equal(mcf_ws_finish(p, NULL), MCF_OK);
	assert_int_equal(t.n, 6);
	/* Inside a callback last_rv is still the previous event's. */
	assert_string_equal(t.seen[0], "-");
	assert_string_equal(t.seen[1], "11");
	assert_string_equal(t.seen[2], "11"); /* no resourceVersion */
	assert_string_equal(t.seen[3], "11"); /* not a string */
	assert_string_equal(t.seen[4], "15"); /* the bookmark counts */
	assert_string_equal(t.seen[5], "15"); /* ERROR does not */
	assert_string_equal(mcf_ws_last_rv(p),
	    "a-much-longer-resource-version-string");
	/* A short one after a long one reuses the copy. */
	assert_int_equal(mcf_ws_feed(p, EV_DELETED_A "\n",
			     strlen(EV_DELETED_A) + 1, track_cb, &t, NULL),
	    MCF_OK);
	assert_string_equal(mcf_ws_last_rv(p), "16");
	mcf_ws_destroy(p);

	/* The object the callback kept outlives the parser. */
	assert_non_null(t.kept);
	assert_string_equal(
	    mcf_json_path_str(t.kept, "metadata.resourceVersion"), "15");
	json_decref(t.kept);
}

static void
test_watchstream_create_rejects_zero(void **state)
{
	mcf_ws *p = (mcf_ws *) (uintptr_t) 1;

	(void) state;
	assert_int_equal(mcf_ws_create(&p, 0), MCF_EINVAL);
	assert_true(p == (mcf_ws *) (uintptr_t) 1);
	mcf_ws_destroy(NULL);
	assert_string_equal(mcf_ws_type_name(MCF_WS_BOOKMARK), "BOOKMARK");
	assert_string_equal(mcf_ws_type_name((mcf_ws_type) 99), "UNKNOWN");
}

static int
count_cb(const mcf_ws_event *ev, void *arg)
{
	int *n = arg;

	/* Touch what the event points to so ASan sees a bad pointer. */
	if (ev->resource_version != NULL)
		(void) strlen(ev->resource_version);
	if (ev->reason != NULL)
		(void) strlen(ev->reason);
	if (ev->message != NULL)
		(void) strlen(ev->message);
	assert_true(json_is_object(ev->object));
	(*n)++;
	return (*n % 97) == 0;
}

static uint32_t
rnd(uint32_t *s)
{
	*s = *s * 1103515245u + 12345u;
	return *s >> 8;
}

static void
test_watchstream_random_bytes_never_crash(void **state)
{
	static const char *frags[] = { EV_ADDED_A, EV_MODIFIED_A, EV_BOOKMARK,
		EV_DELETED_A, EV_ERROR_410, "\n", "\r\n", "\r", "{", "}", "\"",
		"\"type\":", "\"ERROR\"", "\"object\":", "{\"code\":1e999}",
		"\\", "\\u", "\xff\xfe", "[", "null", " " };
	uint32_t seed = 12345;
	char     buf[1024];
	int      events = 0;
	mcf_ws  *p      = NULL;

	(void) state;
	assert_int_equal(mcf_ws_create(&p, 300), MCF_OK);
	for (int iter = 0; iter < 3000; iter++) {
		size_t n = 0;
		size_t want = rnd(&seed) % sizeof(buf);
		while (n < want) {
			if (rnd(&seed) % 3 == 0) {
				const char *f =
				    frags[rnd(&seed) % (sizeof(frags) /
							   sizeof(frags[0]))];
				size_t fl = strlen(f);
				if (n + fl > sizeof(buf))
					break;
				memcpy(buf + n, f, fl);
				n += fl;
			} else {
				buf[n++] = (char) (rnd(&seed) & 0xff);
			}
		}
		/* Feed in random chunks; reset after any error. */
		for (size_t at = 0; at < n;) {
			size_t      c = 1 + rnd(&seed) % (n - at);
			mcf_errinfo ei;
			int rc = mcf_ws_feed(p, buf + at, c, count_cb, &events,
			    &ei);
			if (rc != MCF_OK) {
				assert_true(rc == MCF_EPROTO ||
				    rc == MCF_ETOOBIG || rc == MCF_ECANCELED);
				assert_int_equal(ei.code, rc);
				mcf_ws_reset(p);
			}
			at += c;
		}
		if (rnd(&seed) % 4 == 0) {
			(void) mcf_ws_finish(p, NULL);
			mcf_ws_reset(p);
		}
	}
	mcf_ws_destroy(p);
	/* The fragments make some well-formed events get through. */
	assert_true(events > 0);
}

/* ---- the decoder against jansson ------------------------------------ */

/* A growing text. */
typedef struct gtext {
	char  *p;
	size_t n, cap;
} gtext;

static void
gt_add(gtext *t, const char *s, size_t n)
{
	if (t->n + n + 1 > t->cap) {
		t->cap = (t->n + n + 1) * 2;
		t->p   = mcf_realloc(t->p, t->cap);
	}
	memcpy(t->p + t->n, s, n);
	t->n += n;
	t->p[t->n] = '\0';
}

static void
gt_adds(gtext *t, const char *s)
{
	gt_add(t, s, strlen(s));
}

/* Pieces of strings: plain runs, every escape, \u forms (good, \u0000,
 * lone and paired surrogates, bad hex), raw UTF-8 good and bad, control
 * bytes.  `bad` pieces are ones jansson refuses. */
static const char *const str_good[] = { "a", "hello world", "x-y_z.0/9",
	"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
	"0123456789abcdef", "\\\"", "\\\\", "\\/", "\\b", "\\f", "\\n", "\\r",
	"\\t", "\\u0041", "\\u00e9", "\\u20AC", "\\uD83D\\uDE00", "\\u007f",
	"\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xef\xbf\xbf",
	"\xf4\x8f\xbf\xbf", "\x7f", "{}[],:", " " };
static const char *const str_bad[]  = { "\\u0000", "\\uD800", "\\uDC00",
	 "\\uD800\\u0041", "\\u12G4", "\\x", "\\", "\xc0\x80", "\xc1\xbf",
	 "\xe0\x80\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xf5\x80\x80\x80",
	 "\x80", "\xc3", "\x01", "\x1f", "\t" };
static const char *const num_good[] = { "0", "-0", "7", "-12",
	"123456789012345678", "-123456789012345678", "1.5", "-0.25", "1e5",
	"1E+5", "2.5e-3", "1e-400", "0.1", "3.141592653589793",
	"1234567890123456789", "-9223372036854775808", "9223372036854775807",
	"123456789012345678901234567890.5" };
static const char *const num_bad[]
    = { "01", "-", "1.", ".5", "1e", "1e+", "+1", "1e400", "-1e400",
	      "9223372036854775808", "--1", "0x10", "99999999999999999999" };

static void gen_value(gtext *t, uint32_t *seed, int depth, bool bad, bool ws);

static void
gen_ws(gtext *t, uint32_t *seed, bool ws)
{
	static const char *const w[] = { " ", "\t", "\n", "\r\n", "  " };
	if (ws && rnd(seed) % 4 == 0)
		gt_adds(t, w[rnd(seed) % 5]);
}

static void
gen_string(gtext *t, uint32_t *seed, bool bad)
{
	gt_adds(t, "\"");
	int parts = (int) (rnd(seed) % 5);
	for (int i = 0; i < parts; i++) {
		if (bad && rnd(seed) % 8 == 0)
			gt_adds(t,
			    str_bad[rnd(seed)
			        % (sizeof(str_bad) / sizeof(str_bad[0]))]);
		else
			gt_adds(t,
			    str_good[rnd(seed)
			        % (sizeof(str_good) / sizeof(str_good[0]))]);
	}
	gt_adds(t, "\"");
}

static void
gen_value(gtext *t, uint32_t *seed, int depth, bool bad, bool ws)
{
	uint32_t k = rnd(seed) % (depth < 4 ? 10 : 6);
	switch (k) {
	case 0:
	case 1:
		gen_string(t, seed, bad);
		break;
	case 2:
		if (bad && rnd(seed) % 6 == 0)
			gt_adds(t,
			    num_bad[rnd(seed)
			        % (sizeof(num_bad) / sizeof(num_bad[0]))]);
		else
			gt_adds(t,
			    num_good[rnd(seed)
			        % (sizeof(num_good) / sizeof(num_good[0]))]);
		break;
	case 3:
		gt_adds(t, rnd(seed) % 2 ? "true" : "false");
		break;
	case 4:
		gt_adds(t, bad && rnd(seed) % 8 == 0 ? "nul" : "null");
		break;
	case 5:
		gen_string(t, seed, bad);
		break;
	case 6:
	case 7: {
		gt_adds(t, "[");
		int n = (int) (rnd(seed) % 4);
		for (int i = 0; i < n; i++) {
			if (i > 0)
				gt_adds(t, ",");
			gen_ws(t, seed, ws);
			gen_value(t, seed, depth + 1, bad, ws);
			gen_ws(t, seed, ws);
		}
		gt_adds(t, "]");
		break;
	}
	default: {
		/* Objects; keys from a small set so duplicates happen. */
		static const char *const keys[] = { "\"a\"", "\"b\"",
			"\"metadata\"", "\"k\\u00e9y\"", "\"\"", "\"a\\nb\"",
			"\"\xc3\xa9\"", "\"type\"", "\"object\"" };
		gt_adds(t, "{");
		int n = (int) (rnd(seed) % 5);
		for (int i = 0; i < n; i++) {
			if (i > 0)
				gt_adds(t, ",");
			gen_ws(t, seed, ws);
			if (bad && rnd(seed) % 16 == 0)
				gen_string(t, seed, true);
			else
				gt_adds(t,
				    keys[rnd(seed)
				        % (sizeof(keys) / sizeof(keys[0]))]);
			gen_ws(t, seed, ws);
			gt_adds(t, ":");
			gen_ws(t, seed, ws);
			gen_value(t, seed, depth + 1, bad, ws);
			gen_ws(t, seed, ws);
		}
		gt_adds(t, "}");
		break;
	}
	}
}

/* One top-level object. */
static void
gen_object(gtext *t, uint32_t *seed, bool bad, bool ws)
{
	t->n = 0;
	gt_adds(t, "");
	while (true) {
		gen_value(t, seed, 0, bad, ws);
		if (t->p[0] == '{')
			return;
		t->n = 0;
	}
}

/* mcf_ws_decode(s) must answer what json_loadb(s, 0) answers: refused
 * both, or the same tree with the same key order (compared as text). */
static bool
decode_agrees(const char *s, size_t n)
{
	json_error_t je;
	json_t      *ref = json_loadb(s, n, 0, &je);
	json_t      *got = NULL;
	int          rc  = mcf_ws_decode(s, n, &got, NULL);
	bool         ok;

	if (ref == NULL || !json_is_object(ref)) {
		ok = rc == MCF_EPROTO && got == NULL;
	} else if (rc != MCF_OK) {
		ok = false;
	} else {
		char *a = json_dumps(ref, JSON_COMPACT | JSON_ENCODE_ANY);
		char *b = json_dumps(got, JSON_COMPACT | JSON_ENCODE_ANY);
		ok      = strcmp(a, b) == 0;
		free(a);
		free(b);
	}
	if (!ok)
		print_message("disagree on %zu bytes: \"%.*s\" jansson %s, "
		              "decoder %s\n",
		    n, (int) n, s, ref ? "ok" : je.text, mcf_err_name(rc));
	json_decref(ref);
	json_decref(got);
	return ok;
}

static void
test_watchstream_decode_matches_jansson(void **state)
{
	static const char alphabet[] = "{}[]\":,\\/ u0e19.-+tfnla\x80\xc3";
	uint32_t          seed       = 4242;
	gtext             t          = { 0 };
	int               accepted = 0, refused = 0;

	(void) state;
	for (int iter = 0; iter < 20000; iter++) {
		bool bad = iter % 2 == 1;
		gen_object(&t, &seed, bad, iter % 3 == 0);
		assert_true(decode_agrees(t.p, t.n));
		json_t *v = json_loadb(t.p, t.n, 0, NULL);
		if (v != NULL)
			accepted++;
		else
			refused++;
		json_decref(v);
		/* Mutations: a byte replaced, removed or inserted. */
		for (int m = 0; m < 3 && t.n > 0; m++) {
			size_t at = rnd(&seed) % t.n;
			char c = alphabet[rnd(&seed) % (sizeof(alphabet) - 1)];
			char  *s = mcf_malloc(t.n + 2);
			size_t n = t.n;
			memcpy(s, t.p, t.n);
			if (m == 0) {
				s[at] = c;
			} else if (m == 1) {
				memmove(s + at, s + at + 1, n - at - 1);
				n--;
			} else {
				memmove(s + at + 1, s + at, n - at);
				s[at] = c;
				n++;
			}
			assert_true(decode_agrees(s, n));
			free(s);
		}
	}
	/* Both outcomes were exercised. */
	assert_true(accepted > 1000 && refused > 1000);
	/* Fixed corner cases. */
	static const char *const fixed[] = { "{}", " {} ", "{} x", "[]",
		"\"s\"", "1", "", "{", "{\"a\":1,}", "{\"a\" 1}", "{,}",
		"{\"a\":1 \"b\":2}", "{\"a\":[1,]}", "{\"a\":\"\xff\"}",
		"{\"a\":1}\r\n", "{\"a\":1}\x00", "{\"a\":tRue}",
		"{\"a\":\"\\u0000\"}", "{\"\\u0000\":1}", "{\"a\":1,\"a\":2}",
		"{\"a\":{\"b\":{\"c\":[[[[[]]]]]}}}" };
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		assert_true(decode_agrees(fixed[i], strlen(fixed[i])));
	assert_true(decode_agrees("{\"a\":1}\0", 8));
	/* Nesting past the fast path's depth (and past jansson's). */
	for (int depth = 500; depth <= 2100; depth += 800) {
		t.n = 0;
		gt_adds(&t, "{\"a\":");
		for (int i = 0; i < depth; i++)
			gt_adds(&t, "[");
		for (int i = 0; i < depth; i++)
			gt_adds(&t, "]");
		gt_adds(&t, "}");
		assert_true(decode_agrees(t.p, t.n));
	}
	free(t.p);
}

/* What the fast path reports of an event: its object and, for a compact
 * one, the object's bytes. */
typedef struct span_rec {
	json_t *obj;
	char   *text;
	int     events;
} span_rec;

static int
span_cb(const mcf_ws_event *ev, void *arg)
{
	span_rec *r = arg;
	r->events++;
	json_decref(r->obj);
	r->obj = json_incref(ev->object);
	free(r->text);
	r->text = ev->object_text != NULL
	    ? mcf_strndup(ev->object_text, ev->object_len)
	    : NULL;
	return 0;
}

static void
test_watchstream_object_text(void **state)
{
	uint32_t seed = 777;
	gtext    obj = { 0 }, line = { 0 };
	int      spans = 0;

	(void) state;
	for (int iter = 0; iter < 5000; iter++) {
		bool ws = iter % 2 == 1;
		gen_object(&obj, &seed, false, ws);
		/* One line: good strings hold no raw CR or LF, so these are
		 * whitespace between tokens. */
		for (size_t i = 0; i < obj.n; i++)
			if (obj.p[i] == '\n' || obj.p[i] == '\r')
				obj.p[i] = ' ';
		json_t *ref = json_loadb(obj.p, obj.n, 0, NULL);
		if (ref == NULL)
			continue; /* an integer out of range, say */
		line.n = 0;
		gt_adds(&line,
		    ws ? "{ \"type\" : \"MODIFIED\" , \"object\" : "
		       : "{\"type\":\"MODIFIED\",\"object\":");
		gt_add(&line, obj.p, obj.n);
		gt_adds(&line, ws ? " }\r\n" : "}\n");
		mcf_ws  *p = NULL;
		span_rec r = { 0 };
		assert_int_equal(mcf_ws_create(&p, 1 << 20), MCF_OK);
		assert_int_equal(
		    mcf_ws_feed(p, line.p, line.n, span_cb, &r, NULL), MCF_OK);
		assert_int_equal(r.events, 1);
		assert_true(json_equal(ref, r.obj));
		/* Compact text is reported exactly; with whitespace inside
		 * the object, never. */
		bool inner_ws = strpbrk(obj.p, " \t\r\n") != NULL;
		if (r.text != NULL) {
			assert_string_equal(r.text, obj.p);
			spans++;
		} else {
			/* Whitespace, or a form the fast path leaves to
			 * jansson (a long integer). */
			assert_true(inner_ws || strstr(obj.p, "9223") != NULL
			    || strstr(obj.p, "1234567890123456789") != NULL);
		}
		mcf_ws_destroy(p);
		json_decref(r.obj);
		free(r.text);
		json_decref(ref);
	}
	assert_true(spans > 1000);
	free(obj.p);
	free(line.p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_watchstream_events_at_every_split),
		cmocka_unit_test(test_watchstream_crlf_and_blank_lines),
		cmocka_unit_test(test_watchstream_oversize_line),
		cmocka_unit_test(test_watchstream_malformed_json),
		cmocka_unit_test(test_watchstream_unknown_type),
		cmocka_unit_test(test_watchstream_truncated_stream),
		cmocka_unit_test(test_watchstream_callback_stop),
		cmocka_unit_test(test_watchstream_last_rv_tracking),
		cmocka_unit_test(test_watchstream_create_rejects_zero),
		cmocka_unit_test(test_watchstream_random_bytes_never_crash),
		cmocka_unit_test(test_watchstream_decode_matches_jansson),
		cmocka_unit_test(test_watchstream_object_text),
	};

	mcf_alloc_init_libs();
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * ks_fixture.h — test support shared by the in-process kubesim tests
 * (ks_api_test.c, ks_faults_test.c, and the time and buffer helpers of
 * ks_httpd_test.c).
 *
 * A ks_fx_srv is a ks_sim built as tests/kubesim/main.c builds it,
 * listening on 127.0.0.1 port 0, with ks_httpd_run() in its own thread.
 * A ks_fx is one test's fixture: a server, one libcurl easy handle for
 * ordinary requests, one multi handle per watch stream (received bytes are
 * split into JSON lines as they arrive), an arena of strings and JSON
 * values, and the count of soft expectations that broke.  Everything a
 * test allocates through the fixture is freed by ks_fx_destroy(), even
 * when the test stops early.
 *
 * Threads: everything here runs on the test thread except the server loop
 * (ks_fx_srv's own thread, touched only through ks_httpd_stop()).
 */
#ifndef KS_FIXTURE_H
#define KS_FIXTURE_H

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>
#include <jansson.h>

#include "sim.h"

/* --- setup of the whole test program --------------------------------- */

/* cmocka group setup: reads MCF_TEST_TIMEOUT_SCALE and initialises
 * libcurl; the teardown undoes the latter. */
int ks_fx_group_setup(void **state);
int ks_fx_group_teardown(void **state);

/* MCF_TEST_TIMEOUT_SCALE (>= 1) as read by ks_fx_group_setup(). */
int ks_fx_timeout_scale(void);

/* --- time ------------------------------------------------------------ */

int64_t ks_fx_now_ms(void);
/* A deadline `ms` from now, stretched under the sanitizers. */
int64_t ks_fx_deadline(int ms);
void    ks_fx_sleep_ms(int ms);

/* --- buffers and JSON access ------------------------------------------ */

/* A growing NUL-terminated byte buffer; `p` is owned (free()). */
typedef struct ks_fx_dbuf {
	char  *p;
	size_t len;
} ks_fx_dbuf;

void ks_fx_dbuf_add(ks_fx_dbuf *b, const void *p, size_t n);

/* Value at a dotted path; a numeric segment indexes an array.  Borrowed;
 * NULL when anything on the way is missing. */
json_t     *ks_fx_json_at(const json_t *root, const char *path);
const char *ks_fx_json_str(const json_t *root, const char *path);
/* Integer at `path`, or -1 when absent or not an integer. */
long long ks_fx_json_int(const json_t *root, const char *path);
/* `s`, or `dflt` when it is NULL. */
const char *ks_fx_nz(const char *s, const char *dflt);
/* A resourceVersion as a number; 0 for NULL. */
uint64_t ks_fx_rv_num(const char *s);

/* --- the server ------------------------------------------------------- */

typedef struct ks_fx_srv_options {
	int64_t  bookmark_ms;
	int64_t  ready_after_ms; /* >= 0 also runs the Milo controller */
	bool     table;          /* kubesim --table */
	bool     faults;         /* create the fault rules, seeded with seed */
	uint64_t seed;
} ks_fx_srv_options;

/* One in-process kubesim.  The test may read `s` (its loop runs on `th`)
 * only through thread-safe calls such as ks_httpd_port(). */
typedef struct ks_fx_srv {
	ks_sim    s;
	pthread_t th;
	char      base[64]; /* "http://127.0.0.1:PORT" */
} ks_fx_srv;

/* Builds and starts a server; fails the test when it cannot. */
ks_fx_srv *ks_fx_srv_start(const ks_fx_srv_options *o);
/* Stops the loop and frees everything in main.c's order; NULL is a
 * no-op. */
void ks_fx_srv_stop(ks_fx_srv *v);

/* --- the fixture ------------------------------------------------------ */

/* One response; owned by the fixture. */
typedef struct ks_fx_resp {
	char              *what; /* "METHOD PATH" */
	long               code;
	CURLcode           cres;
	double             total_ms; /* whole exchange */
	double             ttfb_ms;  /* until the first response byte */
	ks_fx_dbuf         body;
	ks_fx_dbuf         head;
	json_t            *j; /* parsed body or NULL */
	struct ks_fx_resp *next;
} ks_fx_resp;

typedef struct ks_fx_watch ks_fx_watch;
typedef struct ks_fx_rawc  ks_fx_rawc;

typedef struct ks_fx_options {
	ks_fx_srv_options srv;
	const char       *name;  /* test file named in messages */
	bool              fresh; /* every request on a fresh connection */
} ks_fx_options;

typedef struct ks_fx {
	ks_fx_srv    *v;     /* the server of the test */
	ks_fx_srv    *extra; /* a second server started by the test, or NULL */
	const char   *name;
	bool          fresh;
	CURL         *curl;
	ks_fx_resp   *resps;   /* every response, freed at teardown */
	ks_fx_watch  *watches; /* open watch streams */
	ks_fx_rawc   *raws;    /* sockets closed at teardown */
	char        **strs;    /* arena of strings */
	size_t        nstrs;
	json_t       *keep;  /* JSON values kept until teardown */
	int           nfail; /* soft expectations broken */
} ks_fx;

ks_fx *ks_fx_create(const ks_fx_options *o);
/* Closes the watches and sockets, stops the servers, frees the rest. */
void ks_fx_destroy(ks_fx *f);

/* Closes `fd` at teardown; returns it. */
int ks_fx_keep_fd(ks_fx *f, int fd);

/* --- strings and values kept until teardown --------------------------- */

/* Takes `s` (malloc'd) into the arena; returns it. */
const char *ks_fx_keep_str(ks_fx *f, char *s);
/* printf into a string freed at teardown. */
const char *ks_fx_str(ks_fx *f, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Like ks_fx_str, then every ' becomes " (JSON without escapes). */
const char *ks_fx_quote(ks_fx *f, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Compact JSON text of `v` ("(null)" for NULL), freed at teardown. */
const char *ks_fx_dump(ks_fx *f, const json_t *v);
/* A deep copy of `v` freed at teardown. */
json_t *ks_fx_copy(ks_fx *f, const json_t *v);
/* Keeps `v` (a new reference) until teardown; returns it. */
json_t *ks_fx_kept(ks_fx *f, json_t *v);
/* Percent-encodes a query value. */
const char *ks_fx_escape(ks_fx *f, const char *s);

/* --- expectations ----------------------------------------------------- */

/* Soft checks record a failure (with the request and reply of `r`, which
 * may be NULL) and return false; ks_fx_finish() fails the test at its
 * end.  Hard checks (need) fail the test at once. */
bool ks_fx_expect_at(ks_fx *f, int line, const ks_fx_resp *r, bool ok,
    const char *fmt, ...) __attribute__((format(printf, 5, 6)));
bool ks_fx_expect_code_at(ks_fx *f, int line, const ks_fx_resp *r, long code);
bool ks_fx_expect_str_at(ks_fx *f, int line, const ks_fx_resp *r,
    const char *what, const char *got, const char *want);
bool ks_fx_expect_int_at(ks_fx *f, int line, const ks_fx_resp *r,
    const char *what, long long got, long long want);

enum ks_fx_msg_match {
	KS_FX_MSG_ANY,
	KS_FX_MSG_EXACT,
	KS_FX_MSG_PREFIX,
	KS_FX_MSG_CONTAINS
};

/* A Status object (a reply body or an ERROR event's object): kind,
 * apiVersion, status Failure, reason, code field, and the message. */
bool ks_fx_expect_status_obj_at(ks_fx *f, int line, const ks_fx_resp *r,
    const json_t *st, long code, const char *reason, enum ks_fx_msg_match mm,
    const char *msg);
/* The same for the body of `r`, and its HTTP code. */
bool ks_fx_expect_status_at(ks_fx *f, int line, const ks_fx_resp *r,
    long code, const char *reason, enum ks_fx_msg_match mm, const char *msg);
void ks_fx_need_code_at(ks_fx *f, int line, const ks_fx_resp *r, long code);
void ks_fx_need_at(ks_fx *f, int line, bool ok, const char *what);
/* Ends a test: fails it when any soft expectation broke. */
void ks_fx_finish(ks_fx *f);

#define KS_FX_EXPECT(f, r, cond, ...)                                         \
	ks_fx_expect_at((f), __LINE__, (r), (cond), __VA_ARGS__)
#define KS_FX_EXPECT_CODE(f, r, c)                                            \
	ks_fx_expect_code_at((f), __LINE__, (r), (c))
#define KS_FX_EXPECT_STR(f, r, got, want)                                     \
	ks_fx_expect_str_at((f), __LINE__, (r), #got, (got), (want))
/* JSON string at `path` of the response body. */
#define KS_FX_EXPECT_JS(f, r, path, want)                                     \
	ks_fx_expect_str_at(                                                  \
	    (f), __LINE__, (r), path, ks_fx_json_str((r)->j, path), (want))
#define KS_FX_EXPECT_INT(f, r, got, want)                                     \
	ks_fx_expect_int_at(                                                  \
	    (f), __LINE__, (r), #got, (long long) (got), (long long) (want))
#define KS_FX_EXPECT_STATUS(f, r, code, reason, msg)                          \
	ks_fx_expect_status_at((f), __LINE__, (r), (code), (reason),          \
	    (msg) ? KS_FX_MSG_EXACT : KS_FX_MSG_ANY, (msg))
#define KS_FX_EXPECT_STATUS_PREFIX(f, r, code, reason, msg)                   \
	ks_fx_expect_status_at(                                               \
	    (f), __LINE__, (r), (code), (reason), KS_FX_MSG_PREFIX, (msg))
#define KS_FX_EXPECT_STATUS_CONTAINS(f, r, code, reason, msg)                 \
	ks_fx_expect_status_at(                                               \
	    (f), __LINE__, (r), (code), (reason), KS_FX_MSG_CONTAINS, (msg))
#define KS_FX_EXPECT_STATUS_OBJ(f, r, st, code, reason, mm, msg)              \
	ks_fx_expect_status_obj_at(                                           \
	    (f), __LINE__, (r), (st), (code), (reason), (mm), (msg))
#define KS_FX_NEED_CODE(f, r, c) ks_fx_need_code_at((f), __LINE__, (r), (c))
#define KS_FX_NEED(f, cond) ks_fx_need_at((f), __LINE__, (cond), #cond)

/* --- requests --------------------------------------------------------- */

typedef struct ks_fx_ropt {
	const ks_fx_srv *v;          /* NULL: the fixture's server */
	const char      *ua;         /* User-Agent, NULL: none */
	const char      *ctype;      /* body Content-Type, NULL: JSON */
	const char      *accept;     /* Accept header, NULL: none */
	long             timeout_ms; /* 0: 20 s (scaled) */
} ks_fx_ropt;

/* One request (`o` and `body` may be NULL); never fails the test, the
 * curl result is in `cres`.  The response is owned by the fixture. */
ks_fx_resp *ks_fx_request(ks_fx *f, const ks_fx_ropt *o, const char *method,
    const char *path, const char *body);
/* A request whose transfer must complete (any HTTP code). */
ks_fx_resp *ks_fx_req_ok(ks_fx *f, const ks_fx_ropt *o, const char *method,
    const char *path, const char *body);
ks_fx_resp *ks_fx_get(ks_fx *f, const char *path);
ks_fx_resp *ks_fx_post(ks_fx *f, const char *path, const char *body);
ks_fx_resp *ks_fx_put(ks_fx *f, const char *path, const char *body);
/* A merge patch. */
ks_fx_resp *ks_fx_merge(ks_fx *f, const char *path, const char *body);
ks_fx_resp *ks_fx_del(ks_fx *f, const char *path, const char *body);

/* Value of header `name` (last occurrence) in raw header bytes, copied
 * into the arena, or NULL. */
const char *ks_fx_header_in(ks_fx *f, const ks_fx_dbuf *head, const char *name);
const char *ks_fx_header(ks_fx *f, const ks_fx_resp *r, const char *name);

/* --- watch streams ---------------------------------------------------- */

/* One watch stream; owned by the fixture until ks_fx_watch_close(). */
struct ks_fx_watch {
	ks_fx       *f;
	CURLM       *m;
	CURL        *e;
	char        *url;
	ks_fx_dbuf   data;
	ks_fx_dbuf   head;   /* response headers */
	size_t       off;    /* bytes already split into lines */
	json_t      *events; /* every complete line, parsed */
	int          bad;    /* complete lines that were not JSON objects */
	bool         done;
	CURLcode     result;
	long         code;
	int64_t      opened_ms;
	int64_t      headers_ms; /* when the headers arrived */
	int64_t      done_ms;
	ks_fx_watch *next;
};

/* Opens a watch (User-Agent `ua` or none) and returns once its response
 * headers arrived (so the server has registered it) or the request
 * finished; waits at most `ms` (scaled), then fails the test. */
ks_fx_watch *ks_fx_watch_open_ua(
    ks_fx *f, const char *path, const char *ua, int ms);
ks_fx_watch *ks_fx_watch_open(ks_fx *f, const char *path);
void         ks_fx_watch_close(ks_fx_watch *w);
/* Reads what is there, waiting at most `wait_ms` for more. */
void ks_fx_watch_pump(ks_fx_watch *w, int wait_ms);
/* Waits until `n` events arrived, the stream ended or `ms` passed;
 * returns the number of events. */
size_t ks_fx_watch_wait(ks_fx_watch *w, size_t n, int ms);
/* Keeps reading for `ms` (not stretched) or until the stream ends. */
size_t ks_fx_watch_idle(ks_fx_watch *w, int ms);
/* Keeps reading every stream of `ws` for `ms` (not stretched). */
void ks_fx_watch_idle_all(ks_fx_watch **ws, size_t n, int ms);
bool ks_fx_watch_wait_done(ks_fx_watch *w, int ms);

json_t     *ks_fx_ev(const ks_fx_watch *w, size_t i);
const char *ks_fx_ev_type(const ks_fx_watch *w, size_t i);
const char *ks_fx_ev_name(const ks_fx_watch *w, size_t i);
uint64_t    ks_fx_ev_rv(const ks_fx_watch *w, size_t i);
/* "TYPE:name TYPE:name" of the events, for messages. */
const char *ks_fx_ev_summary(ks_fx *f, const ks_fx_watch *w);

#endif /* KS_FIXTURE_H */

/*
 * ks_concurrency_test.c — kubesim under concurrent writers and watchers
 * (KUBE_API.md §2 and §3.3).
 *
 * Each test starts the kubesim binary named by $KUBESIM as a child
 * (posix_spawn; --listen 127.0.0.1:0 --history-events 100000
 * --bookmark-interval 200ms), reads its "listening on" line from a pipe
 * with a deadline, and stops it with SIGTERM at the end, asserting exit
 * status 0 and no sanitizer report in its stderr (kept in a temporary
 * file and printed when something is wrong).
 *
 * Writer threads create, update, patch, no-op patch and delete configmaps
 * in a few namespaces, each with its own curl handle and its own objects,
 * and record what every response implies: the returned resourceVersion,
 * the object's uid and its label before and after.  A delete answers with
 * a Status that carries no resourceVersion, so its RV is bracketed by the
 * writer's previous and next responses.  Watcher threads each list, then
 * hold a watch from the list's RV (all namespaces, one namespace, label
 * selectors; two connect only after half the writes, so they replay
 * history and then go live).  Their curl write callbacks split the stream
 * into lines across arbitrary chunk boundaries and parse each with
 * jansson.  When the writers are done, a sentinel write and a list give
 * the final plane RV; every watcher must reach it (by an event or a
 * bookmark) before a deadline.  Then each watcher's events must be in
 * strictly increasing RV order, none duplicated, and exactly the set the
 * writers' responses imply for its filter, with the types of the §3.3
 * selector-transition table.  A slow reader with a tiny socket buffer
 * makes kubesim queue and finish partial writes.
 *
 * The other tests: concurrent read-modify-write updates of one object
 * (409 Conflict for the losers, no lost update, a watcher sees every
 * value once and in order); watchers that hang up mid-stream in every
 * watch form while the writers run; and SIGTERM while watches are open.
 *
 * Threads never call cmocka; they collect problems as text, and the test
 * asserts on the count after freeing everything.  Every loop is bounded by
 * a count or a deadline scaled by MCF_TEST_TIMEOUT_SCALE.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
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
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>

#include "alloc.h"

extern char **environ;

#define N_NS 3
#define N_WRITERS 4
#define OPS_PER_WRITER 250
#define SLOTS 6
#define N_WATCHERS 6
#define MAX_RECONNECTS 10
#define SHOW_PROBLEMS 25
#define COUNTER_THREADS 4
#define COUNTER_INCREMENTS 50
#define COUNTER_ATTEMPTS 2000
#define SIGTERM_WATCHERS 4

static const char *const ns_names[N_NS] = { "cc-a", "cc-b", "cc-c" };

static int scale = 1;

/* ---- time ----------------------------------------------------------- */

static int64_t
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long) (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/* ---- growable byte buffer and problem reports ----------------------- */

typedef struct sbuf {
	char  *p; /* owned */
	size_t n, cap;
} sbuf;

static void
sbuf_add(sbuf *b, const char *d, size_t n)
{
	if (b->n + n + 1 > b->cap) {
		b->cap = (b->n + n + 1) * 2;
		b->p   = mcf_realloc(b->p, b->cap);
	}
	memcpy(b->p + b->n, d, n);
	b->n += n;
	b->p[b->n] = '\0';
}

static void
sbuf_free(sbuf *b)
{
	free(b->p);
	b->p   = NULL;
	b->n   = 0;
	b->cap = 0;
}

/* Problems found by one thread: the first SHOW_PROBLEMS as text, all
 * counted. */
typedef struct report {
	sbuf text;
	int  count;
} report;

static void report_add(report *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
report_add(report *r, const char *fmt, ...)
{
	if (r->count++ >= SHOW_PROBLEMS)
		return;
	va_list ap;
	va_start(ap, fmt);
	char *line = mcf_vasprintf(fmt, ap);
	va_end(ap);
	sbuf_add(&r->text, "  ", 2);
	sbuf_add(&r->text, line, strlen(line));
	sbuf_add(&r->text, "\n", 1);
	free(line);
}

/* Prints and frees a report; returns its count. */
static int
report_flush(report *r, const char *who)
{
	int n = r->count;
	if (n > 0)
		print_message("%s: %d problem(s)%s\n%s", who, n,
		    n > SHOW_PROBLEMS ? " (first shown)" : "",
		    r->text.p ? r->text.p : "");
	sbuf_free(&r->text);
	r->count = 0;
	return n;
}

/* ---- the kubesim child ---------------------------------------------- */

typedef struct kubesim {
	pid_t pid;    /* 0 once reaped */
	int   out_fd; /* read end of its stdout, -1 when closed */
	int   err_fd; /* its stderr file, -1 when closed */
	char  err_path[64];
	char  url[128]; /* http://127.0.0.1:PORT */
} kubesim;

static void
kubesim_print_stderr_tail(kubesim *ks)
{
	if (ks->err_fd < 0)
		return;
	off_t   end  = lseek(ks->err_fd, 0, SEEK_END);
	off_t   from = end > 6000 ? end - 6000 : 0;
	char    buf[6001];
	ssize_t n = pread(ks->err_fd, buf, sizeof(buf) - 1, from);
	if (n < 0)
		n = 0;
	buf[n] = '\0';
	print_message(
	    "---- kubesim stderr (tail) ----\n%s\n---- end ----\n", buf);
}

static bool
kubesim_stderr_has_sanitizer_report(kubesim *ks)
{
	if (ks->err_fd < 0)
		return false;
	off_t end   = lseek(ks->err_fd, 0, SEEK_END);
	bool  found = false;
	char  buf[65536 + 64];
	/* Overlapping windows: a marker across a boundary is seen. */
	for (off_t off = 0; off < end && !found; off += 65536) {
		ssize_t n = pread(ks->err_fd, buf, sizeof(buf) - 1, off);
		if (n <= 0)
			break;
		buf[n] = '\0';
		found  = strstr(buf, "ERROR: AddressSanitizer") != NULL
		    || strstr(buf, "LeakSanitizer") != NULL
		    || strstr(buf, "runtime error:") != NULL;
	}
	return found;
}

/* Starts kubesim; returns 0, or -1 with *why set (static text). */
static int
kubesim_start(kubesim *ks, const char **why)
{
	memset(ks, 0, sizeof(*ks));
	ks->out_fd      = -1;
	ks->err_fd      = -1;
	const char *bin = getenv("KUBESIM");
	if (bin == NULL || bin[0] == '\0') {
		*why = "KUBESIM is not set (the kubesim binary's path)";
		return -1;
	}
	snprintf(ks->err_path, sizeof(ks->err_path),
	    "/tmp/ks_concurrency_err_XXXXXX");
	ks->err_fd = mkostemp(ks->err_path, O_CLOEXEC);
	if (ks->err_fd < 0) {
		*why = "mkostemp failed";
		return -1;
	}
	int pfd[2];
	if (pipe2(pfd, O_CLOEXEC) != 0) {
		*why = "pipe2 failed";
		return -1;
	}
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
	posix_spawn_file_actions_adddup2(&fa, ks->err_fd, 2);
	char *argv[]
	    = { (char *) bin, "--listen", "127.0.0.1:0", "--history-events",
		      "100000", "--bookmark-interval", "200ms", NULL };
	int rc = posix_spawn(&ks->pid, bin, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(pfd[1]);
	ks->out_fd = pfd[0];
	if (rc != 0) {
		ks->pid = 0;
		*why    = "posix_spawn failed (is $KUBESIM executable?)";
		return -1;
	}
	int64_t deadline = now_ms() + 20000LL * scale;
	char    line[256];
	size_t  n = 0;
	for (int i = 0; i < 10000; i++) {
		int64_t left = deadline - now_ms();
		if (left <= 0) {
			*why = "no \"listening on\" line before the deadline";
			return -1;
		}
		struct pollfd p  = { .fd = ks->out_fd, .events = POLLIN };
		int           pr = poll(&p, 1, (int) left);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr <= 0)
			continue;
		ssize_t r = read(ks->out_fd, line + n, sizeof(line) - 1 - n);
		if (r <= 0) {
			*why = "kubesim closed stdout before listening";
			return -1;
		}
		n += (size_t) r;
		line[n]  = '\0';
		char *nl = strchr(line, '\n');
		if (nl != NULL) {
			*nl      = '\0';
			int port = 0;
			if (sscanf(line, "listening on http://127.0.0.1:%d",
			        &port)
			        != 1
			    || port <= 0) {
				*why = "unexpected first stdout line";
				print_message("kubesim said: %s\n", line);
				return -1;
			}
			snprintf(ks->url, sizeof(ks->url),
			    "http://127.0.0.1:%d", port);
			return 0;
		}
		if (n == sizeof(line) - 1) {
			*why = "overlong first stdout line";
			return -1;
		}
	}
	*why = "no \"listening on\" line";
	return -1;
}

/* SIGTERM, then wait up to 10 s (scaled), then SIGKILL.  Returns the wait
 * status, or -1 if there was no child or it had to be killed; *early is
 * set when it had exited before the SIGTERM. */
static int
kubesim_stop(kubesim *ks, bool *early)
{
	int status = -1;
	*early     = false;
	if (ks->pid > 0) {
		if (waitpid(ks->pid, &status, WNOHANG) == ks->pid) {
			*early  = true;
			ks->pid = 0;
			return status;
		}
		kill(ks->pid, SIGTERM);
		int64_t deadline = now_ms() + 10000LL * scale;
		bool    reaped   = false;
		for (int i = 0; i < 100000 && now_ms() < deadline; i++) {
			pid_t r = waitpid(ks->pid, &status, WNOHANG);
			if (r == ks->pid) {
				reaped = true;
				break;
			}
			if (r < 0 && errno != EINTR)
				break;
			sleep_ms(10);
		}
		if (!reaped) {
			print_message("kubesim ignored SIGTERM: killing it\n");
			kill(ks->pid, SIGKILL);
			waitpid(ks->pid, &status, 0);
			status = -1;
		}
		ks->pid = 0;
	}
	return status;
}

/* Stops kubesim and checks its exit; returns the number of problems.
 * `before` is the number of problems the test found so far: kubesim's
 * stderr is printed when there were any. */
static int
kubesim_stop_and_check(kubesim *ks, int before)
{
	bool early;
	int  status   = kubesim_stop(ks, &early);
	int  problems = 0;
	if (early) {
		print_message("kubesim exited by itself before the SIGTERM "
		              "(status 0x%x)\n",
		    (unsigned) status);
		problems++;
	} else if (status == -1) {
		print_message("kubesim did not exit on SIGTERM\n");
		problems++;
	} else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		if (WIFSIGNALED(status))
			print_message(
			    "kubesim died of signal %d\n", WTERMSIG(status));
		else
			print_message("kubesim exited with status %d\n",
			    WEXITSTATUS(status));
		problems++;
	}
	if (kubesim_stderr_has_sanitizer_report(ks)) {
		print_message("kubesim's stderr has a sanitizer report\n");
		problems++;
	}
	if (problems + before > 0)
		kubesim_print_stderr_tail(ks);
	return problems;
}

static void
kubesim_cleanup(kubesim *ks)
{
	if (ks->pid > 0) {
		kill(ks->pid, SIGKILL);
		waitpid(ks->pid, NULL, 0);
		ks->pid = 0;
	}
	if (ks->out_fd >= 0)
		close(ks->out_fd);
	ks->out_fd = -1;
	if (ks->err_fd >= 0) {
		close(ks->err_fd);
		unlink(ks->err_path);
	}
	ks->err_fd = -1;
}

/* ---- HTTP ------------------------------------------------------------ */

static size_t
collect_cb(char *d, size_t sz, size_t nm, void *ud)
{
	sbuf_add(ud, d, sz * nm);
	return sz * nm;
}

static CURL *
http_handle(void)
{
	CURL *h = curl_easy_init();
	if (h == NULL)
		mcf_panic("curl_easy_init failed");
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 10000L * scale);
	return h;
}

/* One request; returns the HTTP status, or -1 on a transport error.  *out
 * (new reference) gets the parsed body or NULL. */
static long
http_call(CURL *h, const char *method, const char *url, const char *ctype,
    const char *body, json_t **out)
{
	sbuf               b = { 0 };
	struct curl_slist *hdrs
	    = curl_slist_append(NULL, "Accept: application/json");
	if (ctype != NULL) {
		char line[128];
		snprintf(line, sizeof(line), "Content-Type: %s", ctype);
		hdrs = curl_slist_append(hdrs, line);
	}
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
	if (body != NULL) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(
		    h, CURLOPT_POSTFIELDSIZE, (long) strlen(body));
	}
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect_cb);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 15000L * scale);
	CURLcode rc   = curl_easy_perform(h);
	long     code = -1;
	if (rc == CURLE_OK)
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, NULL);
	curl_slist_free_all(hdrs);
	if (out != NULL) {
		json_error_t e;
		*out = rc == CURLE_OK && b.n > 0 ? json_loadb(b.p, b.n, 0, &e)
		                                 : NULL;
	}
	sbuf_free(&b);
	return code;
}

static uint64_t
parse_rv(const char *s)
{
	if (s == NULL || s[0] == '\0')
		return 0;
	for (const char *c = s; *c; c++)
		if (*c < '0' || *c > '9')
			return 0;
	return strtoull(s, NULL, 10);
}

static uint64_t
obj_rv(const json_t *obj)
{
	return parse_rv(json_string_value(json_object_get(
	    json_object_get(obj, "metadata"), "resourceVersion")));
}

static const char *
obj_meta_str(const json_t *obj, const char *field)
{
	const char *s = json_string_value(
	    json_object_get(json_object_get(obj, "metadata"), field));
	return s ? s : "";
}

/* ---- labels and selectors ------------------------------------------- */

enum { LBL_NONE, LBL_GOLD, LBL_SILVER, LBL_OTHER };

enum { SEL_ALL, SEL_GOLD, SEL_NOT_GOLD };
static const char *const sel_query[]
    = { NULL, "tier%3Dgold", "tier%21%3Dgold" };

static int
obj_label(const json_t *obj)
{
	const char *v = json_string_value(json_object_get(
	    json_object_get(json_object_get(obj, "metadata"), "labels"),
	    "tier"));
	if (v == NULL)
		return LBL_NONE;
	if (strcmp(v, "gold") == 0)
		return LBL_GOLD;
	if (strcmp(v, "silver") == 0)
		return LBL_SILVER;
	return LBL_OTHER;
}

static int
ns_index(const char *ns)
{
	for (int i = 0; i < N_NS; i++)
		if (strcmp(ns, ns_names[i]) == 0)
			return i;
	return -1;
}

static bool
sel_match(int sel, int lbl)
{
	switch (sel) {
	case SEL_GOLD:
		return lbl == LBL_GOLD;
	case SEL_NOT_GOLD:
		return lbl != LBL_GOLD;
	default:
		return true;
	}
}

/* ---- write records --------------------------------------------------- */

enum wop { W_CREATE, W_UPDATE, W_PATCH, W_NOOP, W_DELETE };
static const char *const wop_name[]
    = { "create", "update", "patch", "no-op patch", "delete" };

typedef struct wrec {
	enum wop op;
	int      ns;
	char     name[32];
	char     uid[48];
	uint64_t rv;     /* returned RV; 0 for W_DELETE */
	uint64_t lo, hi; /* W_DELETE: its RV lies strictly between */
	uint64_t del_rv; /* W_DELETE: RV the first watcher reported */
	int      lbl_old, lbl_new;
	int      val;       /* data.k after the write */
	bool     persisted; /* false for a no-op that kept the RV */
} wrec;

typedef struct ctx ctx;

typedef struct writer {
	int       id;
	ctx      *c;    /* borrowed */
	wrec     *recs; /* owned, OPS_PER_WRITER */
	size_t    nrec;
	report    rep;
	int       pending_delete; /* index whose hi is not known, or -1 */
	uint64_t  last_rv;        /* newest RV in this writer's replies */
	pthread_t thr;
} writer;

/* ---- watchers -------------------------------------------------------- */

typedef struct wev {
	uint64_t rv;
	char     type; /* 'A', 'M', 'D' */
	int      ns;
	int      lbl;
	int      val;
	char     name[32];
	char     uid[48];
	bool     matched;
} wev;

typedef struct watcher {
	const char *desc;
	int         ns;  /* index, or -1 for all namespaces */
	int         sel; /* SEL_* */
	bool        bookmarks;
	bool        late;      /* connect after half of the writes */
	bool        small_buf; /* 1 KiB curl buffer: lines split more */
	bool        list_any;  /* the initial list may hold objects */
	bool        slow;      /* tiny socket buffer, one 1.5 s stall */
	ctx        *c;         /* borrowed */
	/* Written by the watcher thread; read by the main thread after
	 * join, except the atomics. */
	uint64_t         list_rv;
	uint64_t         last_rv; /* last event or bookmark RV */
	_Atomic uint64_t progress;
	atomic_int       state; /* 0 new, 1 listed, 2 connected, 3 done */
	wev             *evs;   /* owned */
	size_t           nev, cap;
	size_t           nbookmarks;
	int              reconnects;
	bool             ordered; /* every event RV above the previous */
	bool             stalled; /* the slow watcher's stall is over */
	sbuf             line;    /* the partial line (owned) */
	report           rep;
	pthread_t        thr;
} watcher;

struct ctx {
	const char *base;        /* kubesim URL (borrowed) */
	atomic_bool stop;        /* watchers: end now */
	atomic_bool no_resume;   /* watchers: a stream end is the end */
	atomic_int  writes_done; /* writes answered so far */
	int         late_after;  /* late watchers start after this many */
	int64_t     hard_deadline;
};

static void
watcher_url(const watcher *w, char *buf, size_t len, bool watch, uint64_t rv)
{
	char path[128];
	if (w->ns < 0)
		snprintf(path, sizeof(path), "/api/v1/configmaps");
	else
		snprintf(path, sizeof(path),
		    "/api/v1/namespaces/%s/configmaps", ns_names[w->ns]);
	char sel[64] = "";
	if (w->sel != SEL_ALL)
		snprintf(
		    sel, sizeof(sel), "labelSelector=%s", sel_query[w->sel]);
	if (!watch)
		snprintf(buf, len, "%s%s%s%s", w->c->base, path,
		    sel[0] ? "?" : "", sel);
	else
		snprintf(buf, len,
		    "%s%s?watch=true&resourceVersion=%" PRIu64 "%s%s%s",
		    w->c->base, path, rv,
		    w->bookmarks ? "&allowWatchBookmarks=true" : "",
		    sel[0] ? "&" : "", sel);
}

static void
progress_raise(watcher *w, uint64_t rv)
{
	uint64_t cur = atomic_load(&w->progress);
	while (rv > cur
	    && !atomic_compare_exchange_weak(&w->progress, &cur, rv)) { }
}

static void
watcher_line(watcher *w, const char *p, size_t n)
{
	json_error_t e;
	json_t      *ev = json_loadb(p, n, 0, &e);
	if (ev == NULL) {
		report_add(
		    &w->rep, "unparseable line (%s): %.200s", e.text, p);
		return;
	}
	const char   *type = json_string_value(json_object_get(ev, "type"));
	const json_t *obj  = json_object_get(ev, "object");
	uint64_t      rv   = obj_rv(obj);
	if (type == NULL || !json_is_object(obj)) {
		report_add(&w->rep, "event without type/object: %.200s", p);
	} else if (strcmp(type, "BOOKMARK") == 0) {
		if (rv == 0)
			report_add(
			    &w->rep, "bookmark without an RV: %.200s", p);
		else if (rv < w->last_rv)
			report_add(&w->rep,
			    "bookmark RV %" PRIu64
			    " below the last RV %" PRIu64,
			    rv, w->last_rv);
		else
			w->last_rv = rv;
		w->nbookmarks++;
		progress_raise(w, rv);
	} else if (strcmp(type, "ERROR") == 0) {
		char *s = json_dumps(obj, JSON_COMPACT);
		report_add(&w->rep, "ERROR event: %.300s", s ? s : "?");
		free(s);
	} else if (strcmp(type, "ADDED") == 0 || strcmp(type, "MODIFIED") == 0
	    || strcmp(type, "DELETED") == 0) {
		if (rv == 0)
			report_add(
			    &w->rep, "%s without an RV: %.200s", type, p);
		if (rv <= w->last_rv) {
			w->ordered = false;
			report_add(&w->rep,
			    "%s RV %" PRIu64 " (%s/%s) not above the previous "
			    "RV %" PRIu64,
			    type, rv, obj_meta_str(obj, "namespace"),
			    obj_meta_str(obj, "name"), w->last_rv);
		} else {
			w->last_rv = rv;
		}
		if (w->nev == w->cap) {
			w->cap = w->cap ? w->cap * 2 : 256;
			w->evs = mcf_realloc(w->evs, w->cap * sizeof(wev));
		}
		wev *x = &w->evs[w->nev++];
		memset(x, 0, sizeof(*x));
		x->rv           = rv;
		x->type         = type[0];
		x->ns           = ns_index(obj_meta_str(obj, "namespace"));
		x->lbl          = obj_label(obj);
		const char *val = json_string_value(
		    json_object_get(json_object_get(obj, "data"), "k"));
		x->val = val ? atoi(val) : -1;
		snprintf(
		    x->name, sizeof(x->name), "%s", obj_meta_str(obj, "name"));
		snprintf(
		    x->uid, sizeof(x->uid), "%s", obj_meta_str(obj, "uid"));
		if (w->ns >= 0 && x->ns != w->ns)
			report_add(&w->rep,
			    "%s of %s/%s outside the watched "
			    "namespace",
			    type, obj_meta_str(obj, "namespace"), x->name);
		/* A DELETED for a selector transition carries the new state,
		 * which no longer matches (§3.3); the others must match. */
		if (x->type != 'D' && !sel_match(w->sel, x->lbl))
			report_add(&w->rep,
			    "%s of %s (RV %" PRIu64 ") does not match the "
			    "selector",
			    type, x->name, rv);
		progress_raise(w, rv);
	} else {
		report_add(&w->rep, "unknown event type %s", type);
	}
	json_decref(ev);
}

/* Splits the stream into lines, whatever the chunk boundaries. */
static size_t
watcher_write_cb(char *d, size_t sz, size_t nm, void *ud)
{
	watcher *w = ud;
	size_t   n = sz * nm;
	sbuf_add(&w->line, d, n);
	size_t start = 0;
	for (size_t i = 0; i < w->line.n; i++) {
		if (w->line.p[i] != '\n')
			continue;
		if (i > start)
			watcher_line(w, w->line.p + start, i - start);
		start = i + 1;
	}
	if (start > 0) {
		memmove(w->line.p, w->line.p + start, w->line.n - start);
		w->line.n -= start;
		w->line.p[w->line.n] = '\0';
	}
	/* The slow reader stops reading for a while, so kubesim must queue
	 * its events and finish partial writes later. */
	if (w->slow && !w->stalled && w->nev >= 20) {
		w->stalled = true;
		sleep_ms(1500);
	}
	return n;
}

static int
small_rcvbuf_cb(void *ud, curl_socket_t fd, curlsocktype purpose)
{
	int sz = 4096;
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	return CURL_SOCKOPT_OK;
}

static size_t
watcher_header_cb(char *d, size_t sz, size_t nm, void *ud)
{
	watcher *w = ud;
	size_t   n = sz * nm;
	if (n == 2 && d[0] == '\r' && d[1] == '\n')
		atomic_store(&w->state, 2);
	return n;
}

static int
watcher_xfer_cb(
    void *ud, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
	watcher *w = ud;
	return atomic_load(&w->c->stop) || now_ms() > w->c->hard_deadline;
}

static void *
watcher_main(void *arg)
{
	watcher *w = arg;
	ctx     *c = w->c;
	CURL    *h = http_handle();
	char     url[512];
	w->ordered = true;

	watcher_url(w, url, sizeof(url), false, 0);
	json_t *lst  = NULL;
	long    code = http_call(h, "GET", url, NULL, NULL, &lst);
	w->list_rv   = obj_rv(lst);
	if (code != 200 || w->list_rv == 0) {
		report_add(&w->rep, "list %s: HTTP %ld, RV %" PRIu64, url,
		    code, w->list_rv);
		json_decref(lst);
		curl_easy_cleanup(h);
		atomic_store(&w->state, 3);
		return NULL;
	}
	if (!w->list_any
	    && json_array_size(json_object_get(lst, "items")) != 0)
		report_add(&w->rep, "initial list not empty");
	json_decref(lst);
	w->last_rv = w->list_rv;
	atomic_store(&w->state, 1);

	for (int i = 0; w->late && i < 1000000; i++) {
		if (atomic_load(&c->writes_done) >= c->late_after
		    || atomic_load(&c->stop) || now_ms() > c->hard_deadline)
			break;
		sleep_ms(2);
	}

	uint64_t from = w->list_rv;
	for (int attempt = 0; attempt <= MAX_RECONNECTS; attempt++) {
		if (atomic_load(&c->stop))
			break;
		watcher_url(w, url, sizeof(url), true, from);
		curl_easy_setopt(h, CURLOPT_URL, url);
		curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
		curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 0L);
		curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, watcher_write_cb);
		curl_easy_setopt(h, CURLOPT_WRITEDATA, w);
		curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, watcher_header_cb);
		curl_easy_setopt(h, CURLOPT_HEADERDATA, w);
		curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
		curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, watcher_xfer_cb);
		curl_easy_setopt(h, CURLOPT_XFERINFODATA, w);
		if (w->small_buf)
			curl_easy_setopt(h, CURLOPT_BUFFERSIZE, 1024L);
		if (w->slow)
			curl_easy_setopt(
			    h, CURLOPT_SOCKOPTFUNCTION, small_rcvbuf_cb);
		CURLcode rc = curl_easy_perform(h);
		code        = 0;
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
		if (atomic_load(&c->stop))
			break;
		if (w->line.n > 0) {
			report_add(&w->rep,
			    "stream ended inside a line: %.100s", w->line.p);
			w->line.n = 0;
		}
		if (atomic_load(&c->no_resume))
			break;
		if (rc == CURLE_OK && code == 200) {
			/* A clean end (a server may end any watch): resume
			 * from the last RV, as a client would. */
			w->reconnects++;
			print_message("%s: stream ended cleanly after RV "
			              "%" PRIu64 "; resuming\n",
			    w->desc, w->last_rv);
			from = w->last_rv;
			continue;
		}
		report_add(&w->rep, "watch %s: %s, HTTP %ld", url,
		    curl_easy_strerror(rc), code);
		break;
	}
	curl_easy_cleanup(h);
	atomic_store(&w->state, 3);
	return NULL;
}

static void
watcher_free(watcher *w)
{
	free(w->evs);
	w->evs = NULL;
	sbuf_free(&w->line);
	sbuf_free(&w->rep.text);
}

/* Waits until every watcher's state is at least `state` (or done);
 * returns false at the deadline. */
static bool
watchers_wait_state(
    watcher *ws, int n, int state, bool skip_late, int64_t deadline)
{
	for (int i = 0; i < 1000000; i++) {
		bool all = true;
		for (int k = 0; k < n; k++)
			if (!(skip_late && ws[k].late)
			    && atomic_load(&ws[k].state) < state)
				all = false;
		if (all)
			return true;
		if (now_ms() > deadline)
			return false;
		sleep_ms(5);
	}
	return false;
}

/* ---- writers ---------------------------------------------------------- */

typedef struct slot {
	bool     live;
	int      ns;
	char     name[32];
	char     uid[48];
	uint64_t rv;
	int      lbl;
	int      val;
} slot;

static uint32_t
xorshift(uint32_t *s)
{
	uint32_t x = *s;
	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	*s = x;
	return x;
}

/* The labels object for `lbl` as JSON text ("null" removes in a merge
 * patch when `for_patch`). */
static const char *
labels_json(int lbl, bool for_patch)
{
	switch (lbl) {
	case LBL_GOLD:
		return "{\"tier\":\"gold\"}";
	case LBL_SILVER:
		return "{\"tier\":\"silver\"}";
	default:
		return for_patch ? "{\"tier\":null}" : "{}";
	}
}

/* Notes a reply's RV: closes a pending delete's bracket and checks that
 * one writer's RVs increase. */
static void
writer_saw_rv(writer *wr, uint64_t rv, const char *what)
{
	if (wr->pending_delete >= 0) {
		wr->recs[wr->pending_delete].hi = rv;
		wr->pending_delete              = -1;
	}
	if (rv <= wr->last_rv)
		report_add(&wr->rep,
		    "%s returned RV %" PRIu64 ", not above this writer's "
		    "previous %" PRIu64,
		    what, rv, wr->last_rv);
	else
		wr->last_rv = rv;
}

static void *
writer_main(void *arg)
{
	writer  *wr   = arg;
	ctx     *c    = wr->c;
	CURL    *h    = http_handle();
	uint32_t seed = 0x9e3779b9u * (uint32_t) (wr->id + 1);
	slot     slots[SLOTS];
	memset(slots, 0, sizeof(slots));
	wr->pending_delete = -1;

	for (int k = 0; k < OPS_PER_WRITER; k++) {
		uint32_t r   = xorshift(&seed);
		slot    *s   = &slots[r % SLOTS];
		uint32_t r2  = xorshift(&seed);
		wrec    *rec = &wr->recs[wr->nrec];
		memset(rec, 0, sizeof(*rec));
		char    url[512], *body = NULL;
		json_t *out = NULL;
		long    code;
		bool    ok = true;

		if (!s->live) {
			s->ns  = (int) (r2 % N_NS);
			s->lbl = (int) ((r2 >> 4) % 3);
			s->val = 0;
			snprintf(
			    s->name, sizeof(s->name), "w%d-%03d", wr->id, k);
			snprintf(url, sizeof(url),
			    "%s/api/v1/namespaces/%s/configmaps", c->base,
			    ns_names[s->ns]);
			body = mcf_asprintf("{\"metadata\":{\"name\":\"%s\","
			                    "\"labels\":%s},\"data\":{\"k\":"
			                    "\"0\"}}",
			    s->name, labels_json(s->lbl, false));
			code = http_call(
			    h, "POST", url, "application/json", body, &out);
			rec->op      = W_CREATE;
			rec->lbl_old = LBL_NONE;
			if (code != 201 || obj_rv(out) == 0) {
				report_add(&wr->rep, "create %s: HTTP %ld",
				    s->name, code);
				ok = false;
			} else {
				s->live = true;
				s->rv   = obj_rv(out);
				snprintf(s->uid, sizeof(s->uid), "%s",
				    obj_meta_str(out, "uid"));
				rec->rv        = s->rv;
				rec->persisted = true;
				writer_saw_rv(wr, s->rv, "create");
			}
		} else {
			uint32_t pick = (r2 >> 8) % 10;
			int      lbl  = (int) ((r2 >> 16) % 3);
			snprintf(url, sizeof(url),
			    "%s/api/v1/namespaces/%s/configmaps/%s", c->base,
			    ns_names[s->ns], s->name);
			rec->lbl_old = s->lbl;
			if (pick < 3) {
				rec->op = W_UPDATE;
				body    = mcf_asprintf(
				       "{\"metadata\":{\"name\":\"%s\","
				          "\"namespace\":\"%s\",\"resourceVersion\":"
				          "\"%" PRIu64 "\",\"labels\":%s},\"data\":"
				          "{\"k\":\"%d\"}}",
				       s->name, ns_names[s->ns], s->rv,
				       labels_json(lbl, false), k + 1);
				code = http_call(h, "PUT", url,
				    "application/json", body, &out);
			} else if (pick < 6) {
				rec->op = W_PATCH;
				body    = mcf_asprintf(
				       "{\"metadata\":{\"labels\":%s},\"data\":"
				          "{\"k\":\"%d\"}}",
				       labels_json(lbl, true), k + 1);
				code = http_call(h, "PATCH", url,
				    "application/merge-patch+json", body,
				    &out);
			} else if (pick < 7) {
				rec->op = W_NOOP;
				lbl     = s->lbl;
				body    = mcf_asprintf(
				       "{\"data\":{\"k\":\"%d\"}}", s->val);
				code = http_call(h, "PATCH", url,
				    "application/merge-patch+json", body,
				    &out);
			} else {
				rec->op = W_DELETE;
				code    = http_call(
				       h, "DELETE", url, NULL, NULL, &out);
			}
			if (rec->op == W_DELETE) {
				const char *st = json_string_value(
				    json_object_get(out, "status"));
				if (code != 200 || st == NULL
				    || strcmp(st, "Success") != 0) {
					report_add(&wr->rep,
					    "delete %s: HTTP %ld, status %s",
					    s->name, code, st ? st : "-");
					ok = false;
				} else {
					rec->lo            = wr->last_rv;
					rec->hi            = UINT64_MAX;
					wr->pending_delete = (int) wr->nrec;
					s->live            = false;
				}
			} else if (code != 200 || obj_rv(out) == 0) {
				report_add(&wr->rep, "%s %s: HTTP %ld",
				    wop_name[rec->op], s->name, code);
				ok = false;
			} else {
				uint64_t rv = obj_rv(out);
				if (rec->op == W_NOOP) {
					rec->persisted = rv != s->rv;
					if (rec->persisted)
						report_add(&wr->rep,
						    "no-op patch of %s moved "
						    "the RV from %" PRIu64
						    " to %" PRIu64,
						    s->name, s->rv, rv);
				} else {
					rec->persisted = true;
					s->val         = k + 1;
				}
				if (obj_label(out) != lbl)
					report_add(&wr->rep,
					    "%s %s: label %d in the reply, "
					    "want %d",
					    wop_name[rec->op], s->name,
					    obj_label(out), lbl);
				if (rec->persisted)
					writer_saw_rv(
					    wr, rv, wop_name[rec->op]);
				s->rv   = rv;
				s->lbl  = lbl;
				rec->rv = rv;
			}
		}
		free(body);
		json_decref(out);
		atomic_fetch_add(&c->writes_done, 1);
		if (!ok)
			break; /* the expected sets are unknown from here */
		rec->ns      = s->ns;
		rec->lbl_new = s->lbl;
		rec->val     = s->val;
		snprintf(rec->name, sizeof(rec->name), "%s", s->name);
		snprintf(rec->uid, sizeof(rec->uid), "%s", s->uid);
		wr->nrec++;
	}
	curl_easy_cleanup(h);
	return NULL;
}

/* ---- verification ------------------------------------------------------ */

static bool
w_match(const watcher *w, int ns, int lbl)
{
	return (w->ns < 0 || w->ns == ns) && sel_match(w->sel, lbl);
}

/* The event type a watcher must see for a write, or 0. */
static char
expected_type(const watcher *w, const wrec *r)
{
	if (r->op == W_DELETE)
		return w_match(w, r->ns, r->lbl_old) ? 'D' : 0;
	if (!r->persisted)
		return 0;
	bool m_old = r->op != W_CREATE && w_match(w, r->ns, r->lbl_old);
	bool m_new = w_match(w, r->ns, r->lbl_new);
	if (m_old && m_new)
		return 'M';
	if (m_new)
		return 'A';
	if (m_old)
		return 'D';
	return 0;
}

static wev *
find_by_rv(watcher *w, uint64_t rv)
{
	if (w->ordered) {
		size_t lo = 0, hi = w->nev;
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;
			if (w->evs[mid].rv < rv)
				lo = mid + 1;
			else
				hi = mid;
		}
		return lo < w->nev && w->evs[lo].rv == rv ? &w->evs[lo] : NULL;
	}
	for (size_t i = 0; i < w->nev; i++)
		if (w->evs[i].rv == rv)
			return &w->evs[i];
	return NULL;
}

/* Compares a watcher's events with what the writes imply; returns the
 * number of problems (printed). */
static int
verify_watcher(watcher *w, wrec **all, size_t nall, uint64_t final_rv)
{
	report *rep      = &w->rep;
	size_t  expected = 0;
	if (atomic_load(&w->progress) < final_rv)
		report_add(rep,
		    "reached RV %" PRIu64 ", not the final %" PRIu64
		    " (events %zu, bookmarks %zu)",
		    (uint64_t) atomic_load(&w->progress), final_rv, w->nev,
		    w->nbookmarks);
	for (size_t i = 0; i < nall; i++) {
		wrec *r = all[i];
		char  t = expected_type(w, r);
		if (t == 0)
			continue;
		expected++;
		if (r->op == W_DELETE) {
			wev *hit = NULL;
			int  n   = 0;
			for (size_t k = 0; k < w->nev; k++) {
				wev *e = &w->evs[k];
				if (e->type == 'D'
				    && strcmp(e->uid, r->uid) == 0
				    && e->rv > r->lo && e->rv < r->hi
				    && !e->matched) {
					n++;
					if (hit == NULL)
						hit = e;
				}
			}
			if (n != 1) {
				report_add(rep,
				    "delete of %s/%s (RV in (%" PRIu64
				    ",%" PRIu64
				    ")): %d DELETED events, want 1",
				    ns_names[r->ns], r->name, r->lo, r->hi, n);
				if (hit == NULL)
					continue;
			}
			hit->matched = true;
			if (r->del_rv == 0)
				r->del_rv = hit->rv;
			else if (r->del_rv != hit->rv)
				report_add(rep,
				    "delete of %s/%s seen at RV %" PRIu64
				    ", another watcher saw %" PRIu64,
				    ns_names[r->ns], r->name, hit->rv,
				    r->del_rv);
			if (hit->lbl != r->lbl_old || hit->ns != r->ns)
				report_add(rep,
				    "DELETED %s at RV %" PRIu64 ": label %d "
				    "ns %d, want the last state (label %d)",
				    r->name, hit->rv, hit->lbl, hit->ns,
				    r->lbl_old);
			continue;
		}
		wev *e = find_by_rv(w, r->rv);
		if (e == NULL) {
			report_add(rep,
			    "missing %c for %s of %s/%s at RV %" PRIu64, t,
			    wop_name[r->op], ns_names[r->ns], r->name, r->rv);
			continue;
		}
		if (e->matched) {
			report_add(rep, "RV %" PRIu64 " claimed twice", r->rv);
			continue;
		}
		e->matched = true;
		if (e->type != t || strcmp(e->uid, r->uid) != 0
		    || strcmp(e->name, r->name) != 0 || e->ns != r->ns
		    || e->lbl != r->lbl_new || e->val != r->val)
			report_add(rep,
			    "RV %" PRIu64 ": got %c %s label %d k=%d, want %c "
			    "%s label %d k=%d (%s, label was %d)",
			    r->rv, e->type, e->name, e->lbl, e->val, t,
			    r->name, r->lbl_new, r->val, wop_name[r->op],
			    r->lbl_old);
	}
	for (size_t k = 0; k < w->nev; k++) {
		wev *e = &w->evs[k];
		if (!e->matched)
			report_add(rep,
			    "unexpected %c of %s (ns %d) at RV %" PRIu64,
			    e->type, e->name, e->ns, e->rv);
	}
	print_message("%-28s list RV %" PRIu64 ": %zu events (%zu expected), "
	              "%zu bookmarks, %d reconnects\n",
	    w->desc, w->list_rv, w->nev, expected, w->nbookmarks,
	    w->reconnects);
	return report_flush(rep, w->desc);
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
	return x < y ? -1 : x > y;
}

/* ---- fixtures ------------------------------------------------------------
 */

static int
group_setup(void **state)
{
	const char *s = getenv("MCF_TEST_TIMEOUT_SCALE");
	if (s != NULL && atoi(s) > 0)
		scale = atoi(s);
	mcf_alloc_init_libs();
	return curl_global_init(CURL_GLOBAL_ALL) == CURLE_OK ? 0 : -1;
}

static int
group_teardown(void **state)
{
	curl_global_cleanup();
	return 0;
}

static int
setup_kubesim(void **state)
{
	kubesim    *ks  = mcf_calloc(1, sizeof(*ks));
	const char *why = NULL;
	if (kubesim_start(ks, &why) != 0) {
		print_error("cannot start kubesim: %s\n", why);
		kubesim_print_stderr_tail(ks);
		kubesim_cleanup(ks);
		free(ks);
		return -1;
	}
	*state = ks;
	return 0;
}

static int
teardown_kubesim(void **state)
{
	kubesim *ks = *state;
	kubesim_cleanup(ks);
	free(ks);
	*state = NULL;
	return 0;
}

static void
create_namespaces(CURL *h, const char *base)
{
	char url[256];
	snprintf(url, sizeof(url), "%s/api/v1/namespaces", base);
	for (int i = 0; i < N_NS; i++) {
		char body[128];
		snprintf(body, sizeof(body),
		    "{\"metadata\":{\"name\":\"%s\"}}", ns_names[i]);
		long code = http_call(
		    h, "POST", url, "application/json", body, NULL);
		assert_int_equal(code, 201);
	}
}

static void
watchers_start(watcher *ws, int n, ctx *c)
{
	for (int i = 0; i < n; i++) {
		ws[i].c = c;
		atomic_init(&ws[i].state, 0);
		atomic_init(&ws[i].progress, 0);
		if (pthread_create(&ws[i].thr, NULL, watcher_main, &ws[i])
		    != 0)
			mcf_panic("pthread_create");
	}
}

static void
watchers_join(watcher *ws, int n)
{
	for (int i = 0; i < n; i++)
		pthread_join(ws[i].thr, NULL);
}

/* ---- tests
 * ------------------------------------------------------------------ */

/* Runs N_WRITERS writers to completion. */
static void
writers_run(writer *wrs, ctx *c)
{
	memset(wrs, 0, N_WRITERS * sizeof(*wrs));
	for (int i = 0; i < N_WRITERS; i++) {
		wrs[i].id   = i;
		wrs[i].c    = c;
		wrs[i].recs = mcf_calloc(OPS_PER_WRITER, sizeof(wrec));
		if (pthread_create(&wrs[i].thr, NULL, writer_main, &wrs[i])
		    != 0)
			mcf_panic("pthread_create");
	}
	for (int i = 0; i < N_WRITERS; i++)
		pthread_join(wrs[i].thr, NULL);
}

/* The sentinel: a last write (cc-a, tier=gold) after the writers, seen by
 * the all-namespace, cc-a and tier=gold watchers; the others reach the
 * final RV by bookmarks.  Then a list gives the final plane RV.  Returns
 * the number of problems. */
static int
write_sentinel(CURL *h, const char *base, wrec *sentinel, uint64_t *final_rv)
{
	int     problems = 0;
	char    url[512];
	json_t *out = NULL;
	memset(sentinel, 0, sizeof(*sentinel));
	sentinel->op        = W_CREATE;
	sentinel->lbl_new   = LBL_GOLD;
	sentinel->persisted = true;
	snprintf(sentinel->name, sizeof(sentinel->name), "sentinel");
	snprintf(
	    url, sizeof(url), "%s/api/v1/namespaces/cc-a/configmaps", base);
	long code    = http_call(h, "POST", url, "application/json",
	       "{\"metadata\":{\"name\":\"sentinel\",\"labels\":{\"tier\":"
	          "\"gold\"}},\"data\":{\"k\":\"0\"}}",
	       &out);
	sentinel->rv = obj_rv(out);
	snprintf(sentinel->uid, sizeof(sentinel->uid), "%s",
	    obj_meta_str(out, "uid"));
	json_decref(out);
	if (code != 201 || sentinel->rv == 0) {
		print_message("sentinel create: HTTP %ld\n", code);
		problems++;
	}
	snprintf(url, sizeof(url), "%s/api/v1/configmaps", base);
	code      = http_call(h, "GET", url, NULL, NULL, &out);
	*final_rv = obj_rv(out);
	json_decref(out);
	if (code != 200 || *final_rv != sentinel->rv) {
		print_message("final list: HTTP %ld RV %" PRIu64
		              ", want the sentinel's RV %" PRIu64 "\n",
		    code, *final_rv, sentinel->rv);
		problems++;
	}
	if (*final_rv < sentinel->rv)
		*final_rv = sentinel->rv;
	return problems;
}

/* Keeps the watchers going until each reached `rv` (or ended), then
 * stops and joins them. */
static void
watchers_finish(watcher *ws, int n, ctx *c, uint64_t rv)
{
	int64_t deadline = now_ms() + 30000LL * scale;
	for (int i = 0; i < 1000000 && now_ms() < deadline; i++) {
		bool all = true;
		for (int k = 0; k < n; k++)
			if (atomic_load(&ws[k].progress) < rv
			    && atomic_load(&ws[k].state) != 3)
				all = false;
		if (all)
			break;
		sleep_ms(10);
	}
	atomic_store(&c->stop, true);
	watchers_join(ws, n);
}

/* Puts every write in one list (*all, new), closes deletes still open at
 * the sentinel, prints the writers' problems and checks that no two
 * writes got the same RV.  Returns the number of problems. */
static int
writes_collect(writer *wrs, wrec *sentinel, wrec ***all, size_t *nall)
{
	int    problems = 0;
	size_t cap      = 1;
	for (int i = 0; i < N_WRITERS; i++)
		cap += wrs[i].nrec;
	wrec    **list = mcf_calloc(cap, sizeof(*list));
	uint64_t *rvs  = mcf_calloc(cap, sizeof(*rvs));
	size_t    n = 0, nrv = 0, ops[5] = { 0 };
	for (int i = 0; i < N_WRITERS; i++) {
		for (size_t k = 0; k < wrs[i].nrec; k++) {
			wrec *r = &wrs[i].recs[k];
			if (r->op == W_DELETE && r->hi == UINT64_MAX
			    && sentinel->rv != 0)
				r->hi = sentinel->rv;
			if (r->op != W_DELETE && r->persisted)
				rvs[nrv++] = r->rv;
			ops[r->op]++;
			list[n++] = r;
		}
		char who[32];
		snprintf(who, sizeof(who), "writer %d", i);
		problems += report_flush(&wrs[i].rep, who);
		if (wrs[i].nrec != OPS_PER_WRITER) {
			print_message("writer %d stopped after %zu writes\n",
			    i, wrs[i].nrec);
			problems++;
		}
	}
	list[n++]  = sentinel;
	rvs[nrv++] = sentinel->rv;
	print_message("writes: %zu creates, %zu updates, %zu patches, %zu "
	              "no-op patches, %zu deletes\n",
	    ops[W_CREATE] + 1, ops[W_UPDATE], ops[W_PATCH], ops[W_NOOP],
	    ops[W_DELETE]);
	qsort(rvs, nrv, sizeof(*rvs), cmp_u64);
	for (size_t i = 1; i < nrv; i++) {
		if (rvs[i] == rvs[i - 1]) {
			print_message(
			    "two writes returned RV %" PRIu64 "\n", rvs[i]);
			problems++;
		}
	}
	free(rvs);
	*all  = list;
	*nall = n;
	return problems;
}

static void
writers_free(writer *wrs)
{
	for (int i = 0; i < N_WRITERS; i++) {
		free(wrs[i].recs);
		wrs[i].recs = NULL;
		sbuf_free(&wrs[i].rep.text);
	}
}

/* Four writers, six watchers (two joining late, one reading slowly),
 * selector transitions, no-op writes and deletes: every watcher sees
 * exactly its share of the writes, in order, once. */
static void
test_concurrency_watchers_see_every_write(void **state)
{
	kubesim *ks       = *state;
	int      problems = 0;
	CURL    *h        = http_handle();
	create_namespaces(h, ks->url);

	ctx c = { .base        = ks->url,
		.late_after    = N_WRITERS * OPS_PER_WRITER / 2,
		.hard_deadline = now_ms() + 100000LL * scale };
	atomic_init(&c.stop, false);
	atomic_init(&c.no_resume, false);
	atomic_init(&c.writes_done, 0);
	watcher ws[N_WATCHERS] = {
		{ .desc   = "all namespaces, slow reader",
		    .ns   = -1,
		    .sel  = SEL_ALL,
		    .slow = true },
		{ .desc        = "all namespaces, late",
		    .ns        = -1,
		    .sel       = SEL_ALL,
		    .bookmarks = true,
		    .late      = true,
		    .small_buf = true },
		{ .desc        = "cc-a",
		    .ns        = 0,
		    .sel       = SEL_ALL,
		    .bookmarks = true,
		    .small_buf = true },
		{ .desc        = "cc-b, late",
		    .ns        = 1,
		    .sel       = SEL_ALL,
		    .bookmarks = true,
		    .late      = true },
		{ .desc        = "cc-c, tier!=gold",
		    .ns        = 2,
		    .sel       = SEL_NOT_GOLD,
		    .bookmarks = true },
		{ .desc        = "all namespaces, tier=gold",
		    .ns        = -1,
		    .sel       = SEL_GOLD,
		    .bookmarks = true },
	};
	watchers_start(ws, N_WATCHERS, &c);
	int64_t deadline = now_ms() + 20000LL * scale;
	if (!watchers_wait_state(ws, N_WATCHERS, 1, false, deadline)) {
		print_message("not every watcher listed in time\n");
		problems++;
	}
	if (!watchers_wait_state(ws, N_WATCHERS, 2, true, deadline)) {
		print_message("a watch got no response headers within %d s "
		              "(headers should come at once)\n",
		    20 * scale);
		problems++;
	}

	writer wrs[N_WRITERS];
	writers_run(wrs, &c);
	wrec     sentinel;
	uint64_t final_rv;
	problems += write_sentinel(h, ks->url, &sentinel, &final_rv);
	watchers_finish(ws, N_WATCHERS, &c, final_rv);

	wrec **all;
	size_t nall;
	problems += writes_collect(wrs, &sentinel, &all, &nall);
	for (int i = 0; i < N_WATCHERS; i++)
		problems += verify_watcher(&ws[i], all, nall, final_rv);

	for (int i = 0; i < N_WATCHERS; i++)
		watcher_free(&ws[i]);
	writers_free(wrs);
	free(all);
	curl_easy_cleanup(h);
	problems += kubesim_stop_and_check(ks, problems);
	assert_int_equal(problems, 0);
}

/* A watcher that hangs up: it opens a watch (several forms), reads a
 * random number of events, then closes the connection, again and again
 * while the writers run. */
typedef struct churner {
	int       id;
	ctx      *c;       /* borrowed */
	uint64_t  from_rv; /* the initial list's RV */
	int       budget;  /* lines to read before hanging up */
	int       seen;
	int       opened, hung_up, ended;
	report    rep;
	pthread_t thr;
} churner;

static size_t
churn_write_cb(char *d, size_t sz, size_t nm, void *ud)
{
	churner *ch = ud;
	for (size_t i = 0; i < sz * nm; i++)
		if (d[i] == '\n')
			ch->seen++;
	return ch->seen >= ch->budget ? 0 : sz * nm;
}

static int
churn_xfer_cb(void *ud, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
	churner *ch = ud;
	return atomic_load(&ch->c->stop) || now_ms() > ch->c->hard_deadline;
}

static void *
churner_main(void *arg)
{
	churner *ch   = arg;
	ctx     *c    = ch->c;
	uint32_t seed = 0x85ebca6bu * (uint32_t) (ch->id + 1);
	CURL    *h    = http_handle();
	/* Watch forms; those marked take the initial list's RV. */
	static const struct {
		const char *path;
		bool        with_rv;
	} forms[] = {
		{ "/api/v1/configmaps?watch=true", true },
		{ "/api/v1/configmaps?watch=true&resourceVersion=0", false },
		{ "/api/v1/namespaces/cc-a/configmaps?watch=true&"
		  "allowWatchBookmarks=true",
		    true },
		{ "/api/v1/configmaps?watch=true&labelSelector=tier%3Dgold",
		    false },
		{ "/api/v1/configmaps?watch=true&sendInitialEvents=true&"
		  "resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true",
		    false },
	};
	for (int i = 0; i < 200 && !atomic_load(&c->stop)
	     && atomic_load(&c->writes_done) < N_WRITERS * OPS_PER_WRITER;
	     i++) {
		uint32_t r = xorshift(&seed);
		char     url[512], path[256];
		snprintf(path, sizeof(path), "%s", forms[r % 5].path);
		if (forms[r % 5].with_rv)
			snprintf(url, sizeof(url),
			    "%s%s&resourceVersion=%" PRIu64, c->base, path,
			    ch->from_rv);
		else
			snprintf(url, sizeof(url), "%s%s", c->base, path);
		ch->budget = 1 + (int) ((r >> 8) % 40);
		ch->seen   = 0;
		curl_easy_setopt(h, CURLOPT_URL, url);
		curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
		curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 5000L * scale);
		curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, churn_write_cb);
		curl_easy_setopt(h, CURLOPT_WRITEDATA, ch);
		curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
		curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, churn_xfer_cb);
		curl_easy_setopt(h, CURLOPT_XFERINFODATA, ch);
		ch->opened++;
		CURLcode rc = curl_easy_perform(h);
		if (rc == CURLE_WRITE_ERROR)
			ch->hung_up++;
		else if (rc == CURLE_OK || rc == CURLE_OPERATION_TIMEDOUT
		    || rc == CURLE_ABORTED_BY_CALLBACK)
			ch->ended++;
		else
			report_add(&ch->rep, "watch %s: %s", path,
			    curl_easy_strerror(rc));
	}
	curl_easy_cleanup(h);
	return NULL;
}

/* Watchers hanging up mid-stream, in every watch form, while four
 * writers run: kubesim keeps serving, a steady watcher still sees every
 * write once and in order, and kubesim exits 0 without a sanitizer
 * report. */
static void
test_concurrency_watchers_hanging_up_mid_stream(void **state)
{
	kubesim *ks       = *state;
	int      problems = 0;
	CURL    *h        = http_handle();
	create_namespaces(h, ks->url);
	ctx c = { .base        = ks->url,
		.hard_deadline = now_ms() + 100000LL * scale };
	atomic_init(&c.stop, false);
	atomic_init(&c.no_resume, false);
	atomic_init(&c.writes_done, 0);
	watcher w = { .desc = "steady, all namespaces",
		.ns         = -1,
		.sel        = SEL_ALL,
		.bookmarks  = true };
	watchers_start(&w, 1, &c);
	int64_t deadline = now_ms() + 20000LL * scale;
	if (!watchers_wait_state(&w, 1, 2, false, deadline)) {
		print_message("the steady watch did not start\n");
		problems++;
	}
	churner chs[N_WATCHERS];
	memset(chs, 0, sizeof(chs));
	for (int i = 0; i < N_WATCHERS; i++) {
		chs[i].id      = i;
		chs[i].c       = &c;
		chs[i].from_rv = w.list_rv;
		if (pthread_create(&chs[i].thr, NULL, churner_main, &chs[i])
		    != 0)
			mcf_panic("pthread_create");
	}
	writer wrs[N_WRITERS];
	writers_run(wrs, &c);
	int opened = 0, hung_up = 0;
	for (int i = 0; i < N_WATCHERS; i++) {
		pthread_join(chs[i].thr, NULL);
		opened += chs[i].opened;
		hung_up += chs[i].hung_up;
		char who[32];
		snprintf(who, sizeof(who), "churner %d", i);
		problems += report_flush(&chs[i].rep, who);
	}
	print_message(
	    "%d watches opened, %d hung up by the client\n", opened, hung_up);
	wrec     sentinel;
	uint64_t final_rv;
	problems += write_sentinel(h, ks->url, &sentinel, &final_rv);
	watchers_finish(&w, 1, &c, final_rv);
	wrec **all;
	size_t nall;
	problems += writes_collect(wrs, &sentinel, &all, &nall);
	problems += verify_watcher(&w, all, nall, final_rv);
	watcher_free(&w);
	writers_free(wrs);
	free(all);
	curl_easy_cleanup(h);
	problems += kubesim_stop_and_check(ks, problems);
	assert_int_equal(problems, 0);
}

typedef struct counter_thread {
	const char *base;
	int         done, conflicts;
	report      rep;
	pthread_t   thr;
} counter_thread;

/* Read-modify-write increments with optimistic concurrency. */
static void *
counter_main(void *arg)
{
	counter_thread *t = arg;
	CURL           *h = http_handle();
	char            url[512];
	snprintf(url, sizeof(url),
	    "%s/api/v1/namespaces/cc-a/configmaps/counter", t->base);
	for (int i = 0; i < COUNTER_ATTEMPTS && t->done < COUNTER_INCREMENTS;
	     i++) {
		json_t     *cur  = NULL;
		long        code = http_call(h, "GET", url, NULL, NULL, &cur);
		const char *v    = json_string_value(
		       json_object_get(json_object_get(cur, "data"), "k"));
		if (code != 200 || v == NULL) {
			report_add(&t->rep, "GET counter: HTTP %ld", code);
			json_decref(cur);
			break;
		}
		char *body = mcf_asprintf(
		    "{\"metadata\":{\"name\":\"counter\",\"resourceVersion\":"
		    "\"%s\"},\"data\":{\"k\":\"%d\"}}",
		    obj_meta_str(cur, "resourceVersion"), atoi(v) + 1);
		json_decref(cur);
		json_t *out = NULL;
		code
		    = http_call(h, "PUT", url, "application/json", body, &out);
		free(body);
		if (code == 200) {
			t->done++;
		} else if (code == 409) {
			const char *reason = json_string_value(
			    json_object_get(out, "reason"));
			if (reason == NULL || strcmp(reason, "Conflict") != 0)
				report_add(&t->rep, "409 with reason %s",
				    reason ? reason : "-");
			t->conflicts++;
		} else {
			report_add(&t->rep, "PUT counter: HTTP %ld", code);
			json_decref(out);
			break;
		}
		json_decref(out);
	}
	curl_easy_cleanup(h);
	return NULL;
}

/* Concurrent read-modify-write with resourceVersion preconditions: no
 * lost update, 409 Conflict for the losers, and a watcher sees the
 * counter's values 1..N once each, in order. */
static void
test_concurrency_conflicting_updates_lose_nothing(void **state)
{
	kubesim *ks       = *state;
	int      problems = 0;
	CURL    *h        = http_handle();
	create_namespaces(h, ks->url);
	char url[512];
	snprintf(
	    url, sizeof(url), "%s/api/v1/namespaces/cc-a/configmaps", ks->url);
	long code = http_call(h, "POST", url, "application/json",
	    "{\"metadata\":{\"name\":\"counter\"},\"data\":{\"k\":\"0\"}}",
	    NULL);
	assert_int_equal(code, 201);

	ctx c = { .base        = ks->url,
		.hard_deadline = now_ms() + 100000LL * scale };
	atomic_init(&c.stop, false);
	atomic_init(&c.no_resume, false);
	atomic_init(&c.writes_done, 0);
	watcher w = { .desc = "cc-a",
		.ns         = 0,
		.sel        = SEL_ALL,
		.bookmarks  = true,
		.list_any   = true };
	watchers_start(&w, 1, &c);
	int64_t deadline = now_ms() + 20000LL * scale;
	if (!watchers_wait_state(&w, 1, 2, false, deadline)) {
		print_message("the watch did not start\n");
		problems++;
	}

	counter_thread ts[COUNTER_THREADS];
	memset(ts, 0, sizeof(ts));
	for (int i = 0; i < COUNTER_THREADS; i++) {
		ts[i].base = ks->url;
		if (pthread_create(&ts[i].thr, NULL, counter_main, &ts[i])
		    != 0)
			mcf_panic("pthread_create");
	}
	int done = 0, conflicts = 0;
	for (int i = 0; i < COUNTER_THREADS; i++) {
		pthread_join(ts[i].thr, NULL);
		done += ts[i].done;
		conflicts += ts[i].conflicts;
		char who[32];
		snprintf(who, sizeof(who), "updater %d", i);
		problems += report_flush(&ts[i].rep, who);
	}
	json_t *cur = NULL;
	snprintf(url, sizeof(url),
	    "%s/api/v1/namespaces/cc-a/configmaps/counter", ks->url);
	code          = http_call(h, "GET", url, NULL, NULL, &cur);
	const char *v = json_string_value(
	    json_object_get(json_object_get(cur, "data"), "k"));
	int      final    = v ? atoi(v) : -1;
	uint64_t final_rv = obj_rv(cur);
	json_decref(cur);
	print_message("%d increments, %d conflicts, final value %d\n", done,
	    conflicts, final);
	if (code != 200 || final != COUNTER_THREADS * COUNTER_INCREMENTS
	    || done != final) {
		print_message(
		    "counter is %d after %d successful updates, want "
		    "%d\n",
		    final, done, COUNTER_THREADS * COUNTER_INCREMENTS);
		problems++;
	}

	deadline = now_ms() + 30000LL * scale;
	for (int i = 0; i < 1000000 && now_ms() < deadline
	     && atomic_load(&w.progress) < final_rv
	     && atomic_load(&w.state) != 3;
	     i++)
		sleep_ms(10);
	atomic_store(&c.stop, true);
	watchers_join(&w, 1);
	int want = 1;
	for (size_t i = 0; i < w.nev; i++) {
		wev *e = &w.evs[i];
		if (e->type != 'M' || strcmp(e->name, "counter") != 0
		    || e->val != want) {
			report_add(&w.rep,
			    "event %zu: %c %s k=%d, want M "
			    "counter k=%d",
			    i, e->type, e->name, e->val, want);
			break;
		}
		want++;
	}
	if (want != final + 1)
		report_add(
		    &w.rep, "saw values up to %d, want %d", want - 1, final);
	if (atomic_load(&w.progress) < final_rv)
		report_add(&w.rep,
		    "watch reached RV %" PRIu64 ", want %" PRIu64,
		    (uint64_t) atomic_load(&w.progress), final_rv);
	problems += report_flush(&w.rep, "counter watcher");
	watcher_free(&w);
	curl_easy_cleanup(h);
	problems += kubesim_stop_and_check(ks, problems);
	assert_int_equal(problems, 0);
}

/* SIGTERM while watches are open: kubesim exits 0 (no leak report) and
 * every stream ends. */
static void
test_concurrency_sigterm_with_open_watches_exits_zero(void **state)
{
	kubesim *ks       = *state;
	int      problems = 0;
	CURL    *h        = http_handle();
	create_namespaces(h, ks->url);
	ctx c = { .base        = ks->url,
		.hard_deadline = now_ms() + 100000LL * scale };
	atomic_init(&c.stop, false);
	atomic_init(&c.no_resume, true);
	atomic_init(&c.writes_done, 0);
	watcher ws[SIGTERM_WATCHERS] = {
		{ .desc = "all", .ns = -1, .sel = SEL_ALL, .bookmarks = true },
		{ .desc = "cc-a", .ns = 0, .sel = SEL_ALL },
		{ .desc = "cc-b", .ns = 1, .sel = SEL_ALL, .bookmarks = true },
		{ .desc = "gold", .ns = -1, .sel = SEL_GOLD },
	};
	watchers_start(ws, SIGTERM_WATCHERS, &c);
	int64_t deadline = now_ms() + 20000LL * scale;
	if (!watchers_wait_state(ws, SIGTERM_WATCHERS, 2, false, deadline)) {
		print_message("watches did not start\n");
		problems++;
	}
	char url[512];
	snprintf(
	    url, sizeof(url), "%s/api/v1/namespaces/cc-a/configmaps", ks->url);
	json_t  *out  = NULL;
	long     code = http_call(h, "POST", url, "application/json",
	        "{\"metadata\":{\"name\":\"x\",\"labels\":{\"tier\":\"gold\"}}}",
	        &out);
	uint64_t rv   = obj_rv(out);
	json_decref(out);
	if (code != 201) {
		print_message("create: HTTP %ld\n", code);
		problems++;
	}
	/* Wait for the event on the watchers that see it. */
	for (int i = 0; i < 100000 && now_ms() < deadline; i++) {
		if (atomic_load(&ws[0].progress) >= rv
		    && atomic_load(&ws[1].progress) >= rv
		    && atomic_load(&ws[3].progress) >= rv)
			break;
		sleep_ms(5);
	}
	curl_easy_cleanup(h);
	problems += kubesim_stop_and_check(ks, problems);
	/* The streams end with the server; nothing more to wait for. */
	deadline = now_ms() + 10000LL * scale;
	if (!watchers_wait_state(ws, SIGTERM_WATCHERS, 3, false, deadline)) {
		print_message("a watch stream outlived kubesim\n");
		problems++;
	}
	atomic_store(&c.stop, true);
	watchers_join(ws, SIGTERM_WATCHERS);
	for (int i = 0; i < SIGTERM_WATCHERS; i++) {
		if (ws[i].rep.count > 0 || (i != 2 && ws[i].nev != 1)) {
			print_message(
			    "%s: %zu events\n", ws[i].desc, ws[i].nev);
			problems += report_flush(&ws[i].rep, ws[i].desc);
			if (i != 2 && ws[i].nev != 1)
				problems++;
		}
		watcher_free(&ws[i]);
	}
	assert_int_equal(problems, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		{ "4 writers, 6 watchers: every write seen once, in order",
		    test_concurrency_watchers_see_every_write, setup_kubesim,
		    teardown_kubesim, NULL },
		{ "conflicting updates: no lost update, 409s, values in order",
		    test_concurrency_conflicting_updates_lose_nothing,
		    setup_kubesim, teardown_kubesim, NULL },
		{ "watchers hanging up mid-stream while writers run",
		    test_concurrency_watchers_hanging_up_mid_stream,
		    setup_kubesim, teardown_kubesim, NULL },
		{ "SIGTERM with open watches exits 0",
		    test_concurrency_sigterm_with_open_watches_exits_zero,
		    setup_kubesim, teardown_kubesim, NULL },
	};
	return cmocka_run_group_tests_name(
	    "ks_concurrency", tests, group_setup, group_teardown);
}

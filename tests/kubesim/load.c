/*
 * load.c — the /_sim/load generator.
 *
 * Objects are named load-00000001, load-00000002, ...; `size` pads a
 * `data.pad` string so the object's JSON is about that many bytes.  The
 * writes bypass request parsing but not the store: each one takes the next
 * resourceVersion and reaches watchers as an ordinary event.
 */
#include "load.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admit.h"
#include "alloc.h"
#include "json.h"
#include "ops.h"
#include "status.h"

#define BATCH 512
#define TICK_MS 10

enum load_op {
	OP_CREATE,
	OP_UPDATE,
	OP_DELETE,
};

typedef struct job {
	ks_sim        *sim;
	ks_conn       *conn;  /* borrowed; valid until on_close */
	json_t        *log;   /* own reference */
	char          *plane; /* owned */
	char          *ns;    /* owned, NULL for cluster scope */
	char          *gr;    /* "group/resource" to find the type again */
	char          *version;
	enum load_op   op;
	int64_t        count, done;
	int64_t        size;
	double         rate; /* writes per second, 0: as fast as possible */
	double         credit;
	uint64_t       first_rv, last_rv;
	struct timespec start;
	uint64_t       timer;
	char          *pad;   /* owned padding text */
	int            flip;  /* alternates the padding for updates */
} job;

static void
reply(ks_conn *c, json_t *log, int code, json_t *body)
{
	char  *text = mcf_json_dump(body);
	size_t n    = strlen(text);
	text        = mcf_realloc(text, n + 2);
	text[n]     = '\n';
	ks_conn_respond(c, code, "application/json", NULL, text, n + 1);
	if (log != NULL)
		json_object_set_new(log, "status", json_integer(code));
	free(text);
	json_decref(body);
}

static void
fail(ks_conn *c, json_t *log, int code, const char *msg)
{
	json_t *st = ks_status_new(code, ks_status_reason(code), msg);
	json_object_set_new(st, "details", json_object());
	reply(c, log, code, st);
}

static void
job_free(job *j)
{
	json_decref(j->log);
	free(j->plane);
	free(j->ns);
	free(j->gr);
	free(j->version);
	free(j->pad);
	free(j);
}

static void
on_close(void *arg, ks_conn *c)
{
	(void) c;
	job *j = arg;
	ks_httpd_timer_cancel(j->sim->httpd, j->timer);
	job_free(j);
}

static ks_plane *
job_plane(job *j)
{
	return j->plane[0] == '\0' ? ks_store_root(j->sim->store)
				   : ks_store_plane(j->sim->store, j->plane);
}

static const ks_type *
job_type(job *j, ks_plane *p)
{
	const char *slash = strchr(j->gr, '/');
	char        group[256];
	snprintf(group, sizeof(group), "%.*s", (int) (slash - j->gr), j->gr);
	return ks_plane_type(p, group, j->version, slash + 1);
}

/* One write; false when the object is missing (update/delete). */
static bool
write_one(job *j, ks_plane *p, const ks_type *t, int64_t i)
{
	char name[32];
	snprintf(name, sizeof(name), "load-%08lld", (long long) i);
	if (j->op == OP_DELETE) {
		json_t *last = ks_plane_remove(p, t, j->ns, name, NULL);
		if (last == NULL)
			return false;
		json_decref(last);
		return true;
	}
	json_t *obj;
	if (j->op == OP_UPDATE) {
		const json_t *cur = ks_plane_get(p, t, j->ns, name);
		if (cur == NULL)
			return false;
		obj = json_deep_copy(cur);
		/* A different padding makes every update a real change. */
		j->pad[0] = j->flip ? 'x' : 'y';
	} else {
		char uid[40], now[40];
		ks_uuid(uid);
		ks_sim_time(j->sim, now, sizeof(now));
		obj = json_pack("{s:s,s:s,s:{s:s,s:s,s:s}}", "kind", t->kind,
		    "apiVersion", t->group[0] ? "" : "v1", "metadata", "name",
		    name, "uid", uid, "creationTimestamp", now);
		if (t->group[0] != '\0') {
			char gv[300];
			ks_type_gv(t, gv, sizeof(gv));
			json_object_set_new(obj, "apiVersion", json_string(gv));
		}
		if (j->ns != NULL)
			json_object_set_new(json_object_get(obj, "metadata"),
			    "namespace", json_string(j->ns));
	}
	json_object_set_new(obj, "data",
	    json_pack("{s:s}", "pad", j->pad));
	ks_plane_put(p, t, obj);
	return true;
}

static void
finish(job *j)
{
	struct timespec end;
	clock_gettime(CLOCK_MONOTONIC, &end);
	double secs = (double) (end.tv_sec - j->start.tv_sec) +
	    (double) (end.tv_nsec - j->start.tv_nsec) / 1e9;
	char first[32], last[32];
	snprintf(first, sizeof(first), "%llu", (unsigned long long) j->first_rv);
	snprintf(last, sizeof(last), "%llu", (unsigned long long) j->last_rv);
	ks_conn_on_close(j->conn, NULL, NULL);
	reply(j->conn, j->log, 200,
	    json_pack("{s:I,s:s,s:s,s:f}", "count", (json_int_t) j->done,
		"first_rv", first, "last_rv", last, "seconds", secs));
	job_free(j);
}

static void
tick(void *arg)
{
	job *j   = arg;
	j->timer = 0;
	ks_plane      *p = job_plane(j);
	const ks_type *t = p ? job_type(j, p) : NULL;
	if (t == NULL) {
		finish(j);
		return;
	}
	int64_t budget = BATCH;
	if (j->rate > 0) {
		j->credit += j->rate * TICK_MS / 1000.0;
		budget = (int64_t) j->credit;
		j->credit -= (double) budget;
	}
	j->flip ^= 1;
	while (budget-- > 0 && j->done < j->count) {
		int64_t i = j->done + 1;
		j->done++;
		if (!write_one(j, p, t, i))
			continue;
		if (j->first_rv == 0)
			j->first_rv = ks_plane_rv(p);
		j->last_rv = ks_plane_rv(p);
	}
	if (j->done >= j->count) {
		finish(j);
		return;
	}
	j->timer = ks_httpd_timer_add(j->sim->httpd, j->rate > 0 ? TICK_MS : 0,
	    tick, j);
}

void
ks_load_start(ks_sim *s, ks_conn *c, const json_t *spec, json_t *log)
{
	const char *plane = json_string_value(json_object_get(spec, "plane"));
	const char *group = json_string_value(json_object_get(spec, "group"));
	const char *version =
	    json_string_value(json_object_get(spec, "version"));
	const char *resource =
	    json_string_value(json_object_get(spec, "resource"));
	const char *ns = json_string_value(json_object_get(spec, "namespace"));
	const char *op = json_string_value(json_object_get(spec, "op"));
	json_t     *count = json_object_get(spec, "count");
	json_t     *size  = json_object_get(spec, "size");
	json_t     *rate  = json_object_get(spec, "rate");
	if (resource == NULL || op == NULL || !json_is_integer(count) ||
	    json_integer_value(count) < 0 ||
	    (size != NULL && !json_is_integer(size)) ||
	    (rate != NULL && !json_is_number(rate))) {
		fail(c, log, 400,
		    "load needs resource, op and a non-negative integer count "
		    "(size and rate optional numbers)");
		return;
	}
	enum load_op o;
	if (strcmp(op, "create") == 0)
		o = OP_CREATE;
	else if (strcmp(op, "update") == 0)
		o = OP_UPDATE;
	else if (strcmp(op, "delete") == 0)
		o = OP_DELETE;
	else {
		fail(c, log, 400, "op must be create, update or delete");
		return;
	}
	ks_plane *p = plane == NULL || plane[0] == '\0'
	    ? ks_store_root(s->store)
	    : ks_store_plane(s->store, plane);
	if (p == NULL) {
		fail(c, log, 404, "no such plane");
		return;
	}
	const ks_type *t = ks_plane_type(p, group ? group : "",
	    version ? version : "v1", resource);
	if (t == NULL) {
		fail(c, log, 404, "the server could not find the requested "
				  "resource");
		return;
	}
	if (t->namespaced && (ns == NULL || ns[0] == '\0')) {
		fail(c, log, 400, "a namespaced resource needs a namespace");
		return;
	}
	if (t->namespaced) {
		const ks_type *nst = ks_plane_type(p, "", "v1", "namespaces");
		if (ks_plane_get(p, nst, NULL, ns) == NULL)
			ks_plane_put(p, nst, ks_admit_namespace(s, ns, NULL));
	}
	job *j   = mcf_calloc(1, sizeof(*j));
	j->sim   = s;
	j->conn  = c;
	j->log   = json_incref(log);
	j->plane = mcf_strdup(ks_plane_name(p));
	j->ns    = t->namespaced ? mcf_strdup(ns) : NULL;
	char gr[512];
	snprintf(gr, sizeof(gr), "%s/%s", t->group, t->resource);
	j->gr      = mcf_strdup(gr);
	j->version = mcf_strdup(t->version);
	j->op      = o;
	j->count   = json_integer_value(count);
	j->size    = size ? json_integer_value(size) : 0;
	j->rate    = rate ? json_number_value(rate) : 0;
	/* About `size` bytes of JSON in all: the envelope is ~200 bytes.
	 * A multiple of four keeps it valid base64 for Secrets. */
	size_t padlen = j->size > 260 ? (size_t) (j->size - 200) : 60;
	padlen -= padlen % 4;
	j->pad = mcf_malloc(padlen + 1);
	memset(j->pad, 'A', padlen);
	j->pad[padlen] = '\0';
	clock_gettime(CLOCK_MONOTONIC, &j->start);
	ks_conn_on_close(c, on_close, j);
	j->timer = ks_httpd_timer_add(s->httpd, 0, tick, j);
}

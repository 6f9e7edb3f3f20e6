/*
 * status.c — builds the /status document (status.h has its shape).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "status.h"

char *
mcf_status_time(int64_t unix_ms, char *buf)
{
	time_t    s = (time_t) (unix_ms / 1000);
	struct tm tm;
	gmtime_r(&s, &tm);
	char date[24];
	strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, MCF_STATUS_TIME_LEN, "%.20s.%03dZ", date,
	    (int) (unix_ms % 1000));
	return buf;
}

static json_t *
time_or_null(int64_t ms)
{
	char buf[MCF_STATUS_TIME_LEN];
	return ms > 0 ? json_string(mcf_status_time(ms, buf)) : json_null();
}

static json_t *
str_or_null(const char *s)
{
	return s != NULL ? json_string(s) : json_null();
}

static const char *
nz(const char *s)
{
	return s != NULL ? s : "";
}

static int
cmp_worker(const void *a, const void *b)
{
	const mcf_status_worker *const *x = a, *const *y = b;
	return strcmp((*x)->name, (*y)->name);
}

static int
cmp_project(const void *a, const void *b)
{
	const mcf_status_project *const *x = a, *const *y = b;
	return strcmp((*x)->name, (*y)->name);
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *) a, *(const char *const *) b);
}

json_t *
mcf_status_build(const mcf_status_view *v)
{
	json_t *doc = json_object();
	json_object_set_new(
	    doc, "role", json_string(v->leading ? "leader" : "standby"));
	json_object_set_new(doc, "identity", json_string(nz(v->identity)));
	json_object_set_new(doc, "version", json_string(MCF_VERSION));
	json_object_set_new(doc, "mode", json_string(nz(v->mode)));
	json_object_set_new(doc, "ready", json_boolean(v->ready));

	if (v->leader != NULL) {
		const mcf_status_leader *l = v->leader;
		json_object_set_new(doc, "leader",
		    json_pack("{s:s, s:{s:s, s:I}, s:s, s:s}", "identity",
		        nz(l->identity), "term", "uid", nz(l->term_uid),
		        "transitions", (json_int_t) l->term_transitions,
		        "address", nz(l->address), "status_url",
		        nz(l->status_url)));
	} else {
		json_object_set_new(doc, "leader", json_null());
	}

	const mcf_status_worker **ws
	    = mcf_calloc(v->nworkers + 1, sizeof(*ws));
	for (size_t i = 0; i < v->nworkers; i++)
		ws[i] = &v->workers[i];
	qsort(ws, v->nworkers, sizeof(*ws), cmp_worker);
	json_t *wa = json_array();
	for (size_t i = 0; i < v->nworkers; i++) {
		const mcf_status_worker *w = ws[i];
		json_t                  *o = json_object();
		json_object_set_new(o, "name", json_string(nz(w->name)));
		json_object_set_new(
		    o, "incarnation", json_string(nz(w->incarnation)));
		json_object_set_new(o, "weight", json_integer(w->weight));
		json_object_set_new(o, "state", json_string(nz(w->state)));
		json_object_set_new(
		    o, "projects", json_integer((json_int_t) w->projects));
		json_object_set_new(
		    o, "last_heartbeat", time_or_null(w->last_heartbeat_ms));
		json_object_set_new(o, "address", json_string(nz(w->address)));
		json_object_set_new(
		    o, "status_url", json_string(nz(w->status_url)));
		json_object_set_new(
		    o, "connected", json_boolean(w->connected));
		json_array_append_new(wa, o);
	}
	free(ws);
	json_object_set_new(doc, "workers", wa);

	json_t *pa = json_array();
	if (v->leading) {
		const mcf_status_project **ps
		    = mcf_calloc(v->nprojects + 1, sizeof(*ps));
		for (size_t i = 0; i < v->nprojects; i++)
			ps[i] = &v->projects[i];
		qsort(ps, v->nprojects, sizeof(*ps), cmp_project);
		for (size_t i = 0; i < v->nprojects; i++) {
			const mcf_status_project *p = ps[i];
			json_t                   *o = json_object();
			json_object_set_new(
			    o, "name", json_string(nz(p->name)));
			json_object_set_new(o, "owner", str_or_null(p->owner));
			json_object_set_new(
			    o, "state", json_string(nz(p->state)));
			json_object_set_new(
			    o, "reason", json_string(nz(p->reason)));
			json_object_set_new(
			    o, "since", time_or_null(p->since_ms));
			json_object_set_new(
			    o, "desired", str_or_null(p->desired));
			json_array_append_new(pa, o);
		}
		free(ps);
	}
	json_object_set_new(doc, "projects", pa);

	const char **hf = mcf_calloc(v->nheld_for + 1, sizeof(*hf));
	for (size_t i = 0; i < v->nheld_for; i++)
		hf[i] = v->held_for[i];
	qsort(hf, v->nheld_for, sizeof(*hf), cmp_str);
	json_t *ha = json_array();
	for (size_t i = 0; i < v->nheld_for; i++)
		json_array_append_new(ha, json_string(hf[i]));
	free(hf);
	json_object_set_new(doc, "engages_held_for", ha);

	const mcf_status_counters *c = &v->counters;
	json_object_set_new(doc, "rebalance",
	    json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
	        "handoffs", (json_int_t) c->handoffs, "worker_failovers",
	        (json_int_t) c->worker_failovers, "projects_failed_over",
	        (json_int_t) c->projects_failed_over, "leader_acquisitions",
	        (json_int_t) c->leader_acquisitions, "engages",
	        (json_int_t) c->engages, "disengages",
	        (json_int_t) c->disengages, "engages_in_flight",
	        (json_int_t) c->engages_in_flight, "moving",
	        (json_int_t) c->moving, "table_version",
	        (json_int_t) c->table_version));
	return doc;
}

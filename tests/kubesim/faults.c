/*
 * faults.c — the fault-injection rule set.
 *
 * Rules are kept in the order they were added; a request walks them once.
 * Latency rules add up; the first other rule that applies decides the
 * action.  A rule only counts a match when its action can apply to the
 * request (a watch-close rule ignores lists), so `after` and `count` mean
 * "the Kth request this fault could affect".  Probabilities come from a
 * splitmix64 generator seeded by --seed, so a run is reproducible.
 */
#include "faults.h"

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"

typedef struct rule {
	uint64_t     id;
	json_t      *json; /* the rule as added (owned) */
	char        *m_plane, *m_method, *m_verb, *m_group, *m_resource;
	char        *m_ns, *m_name; /* owned, NULL: any */
	regex_t      path_re, ua_re;
	bool         has_path_re, has_ua_re;
	ks_fault     act;
	char        *message; /* owned */
	int64_t      jitter_ms;
	int64_t      count;      /* -1: unlimited */
	int64_t      after;
	double       probability;
	int64_t      expires_ms; /* -1: never */
	int64_t      matches, hits;
	int64_t      warm_requests;
	json_t      *warm_planes; /* plane → remaining (owned) */
	struct rule *next;
} rule;

struct ks_faults {
	rule    *rules;
	uint64_t next_id;
	uint64_t rng;
};

static uint64_t
rng_next(ks_faults *f)
{
	uint64_t z = (f->rng += 0x9e3779b97f4a7c15ull);
	z          = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z          = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static double
rng_unit(ks_faults *f)
{
	return (double) (rng_next(f) >> 11) / 9007199254740992.0;
}

ks_faults *
ks_faults_create(uint64_t seed)
{
	ks_faults *f = mcf_calloc(1, sizeof(*f));
	f->rng       = seed;
	return f;
}

static void
rule_free(rule *r)
{
	json_decref(r->json);
	free(r->m_plane);
	free(r->m_method);
	free(r->m_verb);
	free(r->m_group);
	free(r->m_resource);
	free(r->m_ns);
	free(r->m_name);
	if (r->has_path_re)
		regfree(&r->path_re);
	if (r->has_ua_re)
		regfree(&r->ua_re);
	free(r->message);
	json_decref(r->warm_planes);
	free(r);
}

void
ks_faults_destroy(ks_faults *f)
{
	if (f == NULL)
		return;
	while (f->rules != NULL) {
		rule *n = f->rules->next;
		rule_free(f->rules);
		f->rules = n;
	}
	free(f);
}

static char *
opt_str(const json_t *obj, const char *key)
{
	const char *s = json_string_value(json_object_get(obj, key));
	return s ? mcf_strdup(s) : NULL;
}

static int64_t
opt_int(const json_t *obj, const char *key, int64_t def)
{
	const json_t *v = json_object_get(obj, key);
	if (json_is_integer(v))
		return json_integer_value(v);
	if (json_is_real(v))
		return (int64_t) json_real_value(v);
	return def;
}

static const char *
default_message(int status)
{
	switch (status) {
	case 429:
		return "Too many requests, please try again later.";
	case 500:
		return "Internal error occurred: injected fault";
	case 503:
		return "The server is currently unable to handle the request";
	case 504:
		return "The server was unable to return a response in the time "
		       "allotted, but may still be processing the request";
	default:
		return "injected fault";
	}
}

/* Parses the action object into `r`; false with `err` on a bad one. */
static bool
parse_action(rule *r, const json_t *a, char *err, size_t errlen)
{
	ks_fault *x     = &r->act;
	x->after_events = -1;
	x->after_ms     = -1;
	const char *s;
	if (!json_is_object(a)) {
		snprintf(err, errlen, "action must be an object");
		return false;
	}
	if ((s = json_string_value(json_object_get(a, "preset"))) != NULL) {
		if (strcmp(s, "plane_warmup_429") != 0) {
			snprintf(err, errlen, "unknown preset \"%s\"", s);
			return false;
		}
		x->action        = KS_FA_PLANE_WARMUP;
		r->warm_requests = opt_int(a, "requests", 1);
		r->warm_planes   = json_object();
		x->status        = 429;
		x->retry_after   = 1;
		r->message       = mcf_strdup("storage is (re)initializing");
	} else if ((s = json_string_value(json_object_get(a, "plane"))) !=
	    NULL) {
		if (strcmp(s, "unavailable") == 0) {
			x->action = KS_FA_PLANE_UNAVAILABLE;
			x->status = (int) opt_int(a, "status", 503);
		} else if (strcmp(s, "gone") == 0) {
			x->action = KS_FA_PLANE_GONE;
		} else {
			snprintf(err, errlen, "unknown plane action \"%s\"", s);
			return false;
		}
	} else if (json_object_get(a, "latency_ms") != NULL) {
		x->action     = KS_FA_LATENCY;
		x->latency_ms = opt_int(a, "latency_ms", 0);
		r->jitter_ms  = opt_int(a, "jitter_ms", 0);
		s             = json_string_value(json_object_get(a, "phase"));
		x->body_phase = s != NULL && strcmp(s, "body") == 0;
		if (x->latency_ms < 0 || r->jitter_ms < 0) {
			snprintf(err, errlen, "latency must not be negative");
			return false;
		}
	} else if (json_object_get(a, "status") != NULL) {
		x->action      = KS_FA_STATUS;
		x->status      = (int) opt_int(a, "status", 0);
		x->retry_after = (int) opt_int(a, "retry_after", 0);
		if (x->status < 400 || x->status > 599) {
			snprintf(err, errlen, "status must be 4xx or 5xx");
			return false;
		}
	} else if ((s = json_string_value(json_object_get(a, "conn"))) !=
	    NULL) {
		if (strcmp(s, "reset") == 0)
			x->action = KS_FA_CONN_RESET;
		else if (strcmp(s, "hang") == 0)
			x->action = KS_FA_CONN_HANG;
		else if (strcmp(s, "truncate") == 0) {
			x->action      = KS_FA_CONN_TRUNCATE;
			x->after_bytes = opt_int(a, "after_bytes", 0);
		} else {
			snprintf(err, errlen, "unknown conn action \"%s\"", s);
			return false;
		}
	} else if ((s = json_string_value(json_object_get(a, "watch"))) !=
	    NULL) {
		if (strcmp(s, "close") == 0) {
			x->action       = KS_FA_WATCH_CLOSE;
			x->after_events = opt_int(a, "after_events", -1);
			int64_t secs    = opt_int(a, "after_s", -1);
			const json_t *as = json_object_get(a, "after_s");
			x->after_ms      = json_is_real(as)
				 ? (int64_t) (json_real_value(as) * 1000)
				 : (secs >= 0 ? secs * 1000 : -1);
			const char *m = json_string_value(json_object_get(a, "mode"));
			x->mode       = KS_CLOSE_CLEAN;
			if (m != NULL && strcmp(m, "abrupt") == 0)
				x->mode = KS_CLOSE_ABRUPT;
			else if (m != NULL && strcmp(m, "midline") == 0)
				x->mode = KS_CLOSE_MIDLINE;
			else if (m != NULL && strcmp(m, "clean") != 0) {
				snprintf(err, errlen, "unknown mode \"%s\"", m);
				return false;
			}
			if (x->after_events < 0 && x->after_ms < 0)
				x->after_events = 0;
		} else if (strcmp(s, "expire") == 0 ||
			   strcmp(s, "expire_storm") == 0) {
			x->action = KS_FA_WATCH_EXPIRE;
			const char *form =
			    json_string_value(json_object_get(a, "form"));
			x->http_form = form != NULL && strcmp(form, "http") == 0;
			const json_t *fs = json_object_get(a, "for_s");
			if (strcmp(s, "expire_storm") == 0 && json_is_number(fs))
				/* made absolute by the caller */
				r->expires_ms =
				    (int64_t) (json_number_value(fs) * 1000);
		} else {
			snprintf(err, errlen, "unknown watch action \"%s\"", s);
			return false;
		}
	} else if ((s = json_string_value(json_object_get(a, "list"))) !=
	    NULL) {
		if (strcmp(s, "expire_continue") == 0)
			x->action = KS_FA_EXPIRE_CONTINUE;
		else if (strcmp(s, "too_large_rv") == 0)
			x->action = KS_FA_TOO_LARGE_RV;
		else if (strcmp(s, "stale") == 0) {
			x->action = KS_FA_STALE;
			x->lag_rv = opt_int(a, "lag_rv", 1);
		} else {
			snprintf(err, errlen, "unknown list action \"%s\"", s);
			return false;
		}
	} else if ((s = json_string_value(json_object_get(a, "bookmarks"))) !=
	    NULL) {
		x->action = KS_FA_BOOKMARKS;
		double every;
		if (strcmp(s, "off") == 0)
			x->bookmarks_off = true;
		else if (sscanf(s, "every_s:%lf", &every) == 1 && every > 0)
			x->bookmark_every_ms = (int64_t) (every * 1000);
		else {
			snprintf(err, errlen, "bookmarks: want off or every_s:X");
			return false;
		}
	} else if (json_object_get(a, "watch_buffer") != NULL) {
		x->action       = KS_FA_WATCH_BUFFER;
		x->watch_buffer = opt_int(a, "watch_buffer", 1);
	} else if (json_object_get(a, "throttle_bps") != NULL) {
		x->action       = KS_FA_THROTTLE;
		x->throttle_bps = opt_int(a, "throttle_bps", 1);
		if (x->throttle_bps <= 0) {
			snprintf(err, errlen, "throttle_bps must be positive");
			return false;
		}
	} else if (json_is_true(json_object_get(a, "conflict"))) {
		x->action = KS_FA_CONFLICT;
	} else {
		snprintf(err, errlen, "unknown action");
		return false;
	}
	if (r->message == NULL) {
		const char *m = json_string_value(json_object_get(a, "message"));
		r->message    = mcf_strdup(m ? m : default_message(x->status));
	}
	x->message = r->message;
	return true;
}

uint64_t
ks_faults_add(ks_faults *f, const json_t *j, int64_t now_ms, char *err,
    size_t errlen)
{
	if (!json_is_object(j)) {
		snprintf(err, errlen, "rule must be a JSON object");
		return 0;
	}
	rule         *r = mcf_calloc(1, sizeof(*r));
	const json_t *m = json_object_get(j, "match");
	r->expires_ms   = -1;
	if (m != NULL && !json_is_object(m)) {
		snprintf(err, errlen, "match must be an object");
		goto fail;
	}
	r->m_plane    = opt_str(m, "plane");
	r->m_method   = opt_str(m, "method");
	r->m_verb     = opt_str(m, "verb");
	r->m_group    = opt_str(m, "group");
	r->m_resource = opt_str(m, "resource");
	r->m_ns       = opt_str(m, "namespace");
	r->m_name     = opt_str(m, "name");
	if (r->m_plane != NULL && strcmp(r->m_plane, "*") == 0) {
		free(r->m_plane);
		r->m_plane = NULL;
	}
	const char *re = json_string_value(json_object_get(m, "path_regex"));
	if (re != NULL) {
		if (regcomp(&r->path_re, re, REG_EXTENDED | REG_NOSUB) != 0) {
			snprintf(err, errlen, "path_regex does not compile");
			goto fail;
		}
		r->has_path_re = true;
	}
	re = json_string_value(json_object_get(m, "ua_regex"));
	if (re != NULL) {
		if (regcomp(&r->ua_re, re, REG_EXTENDED | REG_NOSUB) != 0) {
			snprintf(err, errlen, "ua_regex does not compile");
			goto fail;
		}
		r->has_ua_re = true;
	}
	if (!parse_action(r, json_object_get(j, "action"), err, errlen))
		goto fail;
	if (r->expires_ms >= 0)
		r->expires_ms += now_ms;
	r->count       = opt_int(j, "count", -1);
	r->after       = opt_int(j, "after", 0);
	const json_t *p = json_object_get(j, "probability");
	r->probability = json_is_number(p) ? json_number_value(p) : 1.0;
	const json_t *fs = json_object_get(j, "for_s");
	if (json_is_number(fs))
		r->expires_ms = now_ms + (int64_t) (json_number_value(fs) * 1000);
	if (r->probability < 0 || r->probability > 1 || r->after < 0) {
		snprintf(err, errlen, "probability must be in [0,1] and after "
				      "not negative");
		goto fail;
	}
	r->id       = ++f->next_id;
	r->act.rule_id = r->id;
	r->json     = json_deep_copy(j);
	rule **tail = &f->rules;
	while (*tail != NULL)
		tail = &(*tail)->next;
	*tail = r;
	return r->id;
fail:
	rule_free(r);
	return 0;
}

bool
ks_faults_remove(ks_faults *f, uint64_t id)
{
	bool found = false;
	for (rule **pp = &f->rules; *pp != NULL;) {
		rule *r = *pp;
		if (id == 0 || r->id == id) {
			*pp = r->next;
			rule_free(r);
			found = true;
		} else {
			pp = &r->next;
		}
	}
	return found || id == 0;
}

json_t *
ks_faults_describe(const ks_faults *f)
{
	json_t *arr = json_array();
	for (const rule *r = f->rules; r != NULL; r = r->next)
		json_array_append_new(arr,
		    json_pack("{s:I,s:O,s:I,s:I}", "id", (json_int_t) r->id,
			"rule", r->json, "matches", (json_int_t) r->matches,
			"hits", (json_int_t) r->hits));
	return arr;
}

static bool
str_match(const char *want, const char *have)
{
	return want == NULL || (have != NULL && strcmp(want, have) == 0);
}

static bool
req_match(const rule *r, const ks_fault_req *q)
{
	if (r->expires_ms >= 0 && q->now_ms >= r->expires_ms)
		return false;
	if (!str_match(r->m_plane, q->plane) || !str_match(r->m_method, q->method))
		return false;
	if (r->m_verb || r->m_group || r->m_resource || r->m_ns || r->m_name) {
		if (q->verb == NULL)
			return false;
		if (!str_match(r->m_verb, q->verb) ||
		    !str_match(r->m_group, q->group) ||
		    !str_match(r->m_resource, q->resource) ||
		    !str_match(r->m_ns, q->ns) || !str_match(r->m_name, q->name))
			return false;
	}
	if (r->has_path_re && regexec(&r->path_re, q->path, 0, NULL, 0) != 0)
		return false;
	if (r->has_ua_re &&
	    regexec(&r->ua_re, q->ua ? q->ua : "", 0, NULL, 0) != 0)
		return false;
	return true;
}

/* Whether the rule's action can apply to this request at all. */
static bool
applies(const rule *r, const ks_fault_req *q)
{
	bool list = q->verb != NULL && strcmp(q->verb, "list") == 0;
	switch (r->act.action) {
	case KS_FA_PLANE_UNAVAILABLE:
	case KS_FA_PLANE_GONE:
	case KS_FA_PLANE_WARMUP:
		return false; /* plane-level: ks_faults_plane */
	case KS_FA_WATCH_CLOSE:
	case KS_FA_BOOKMARKS:
	case KS_FA_WATCH_BUFFER:
		return q->is_watch;
	case KS_FA_WATCH_EXPIRE:
		return q->is_watch && q->has_rv;
	case KS_FA_EXPIRE_CONTINUE:
		return list && q->has_continue;
	case KS_FA_TOO_LARGE_RV:
		return list || q->is_watch;
	case KS_FA_STALE:
		return list && q->rv_zero;

	case KS_FA_CONFLICT:
		return q->verb != NULL && (strcmp(q->verb, "update") == 0 ||
		    strcmp(q->verb, "patch") == 0);
	default:
		return q->verb != NULL;
	}
}

/* Counts a match and decides whether the rule fires this time. */
static bool
fire(ks_faults *f, rule *r)
{
	if (r->count >= 0 && r->hits >= r->count)
		return false;
	r->matches++;
	if (r->matches <= r->after)
		return false;
	if (r->probability < 1.0 && rng_unit(f) >= r->probability)
		return false;
	r->hits++;
	return true;
}

static void
fill(ks_faults *f, const rule *r, ks_fault *out)
{
	*out = r->act;
	if (r->act.action == KS_FA_LATENCY && r->jitter_ms > 0)
		out->latency_ms +=
		    (int64_t) (rng_next(f) % (uint64_t) (r->jitter_ms + 1));
}

bool
ks_faults_eval(ks_faults *f, const ks_fault_req *q, int64_t *latency_ms,
    bool *body_phase, ks_fault *out)
{
	bool any    = false;
	*latency_ms = 0;
	*body_phase = false;
	memset(out, 0, sizeof(*out));
	if (f == NULL)
		return false;
	for (rule *r = f->rules; r != NULL; r = r->next) {
		if (!applies(r, q) || !req_match(r, q))
			continue;
		if (r->act.action == KS_FA_LATENCY) {
			if (!fire(f, r))
				continue;
			ks_fault lat;
			fill(f, r, &lat);
			*latency_ms += lat.latency_ms;
			*body_phase = *body_phase || lat.body_phase;
			any         = true;
			continue;
		}
		if (out->action != KS_FA_NONE || !fire(f, r))
			continue;
		fill(f, r, out);
		any = true;
	}
	return any;
}

bool
ks_faults_plane(ks_faults *f, const ks_fault_req *q, ks_fault *out)
{
	if (f == NULL || q->plane == NULL || q->plane[0] == '\0')
		return false;
	for (rule *r = f->rules; r != NULL; r = r->next) {
		enum ks_fault_action a = r->act.action;
		if (a != KS_FA_PLANE_UNAVAILABLE && a != KS_FA_PLANE_GONE &&
		    a != KS_FA_PLANE_WARMUP)
			continue;
		if (!req_match(r, q))
			continue;
		if (a == KS_FA_PLANE_WARMUP) {
			json_t *left = json_object_get(r->warm_planes, q->plane);
			if (!json_is_integer(left) || json_integer_value(left) <= 0)
				continue;
			json_object_set_new(r->warm_planes, q->plane,
			    json_integer(json_integer_value(left) - 1));
			r->matches++;
			r->hits++;
			fill(f, r, out);
			return true;
		}
		if (!fire(f, r))
			continue;
		fill(f, r, out);
		return true;
	}
	return false;
}

bool
ks_faults_gone_plane(const ks_faults *f, uint64_t id, const char **plane)
{
	for (const rule *r = f ? f->rules : NULL; r != NULL; r = r->next) {
		if (r->id == id && r->act.action == KS_FA_PLANE_GONE) {
			*plane = r->m_plane;
			return true;
		}
	}
	return false;
}

void
ks_faults_plane_created(ks_faults *f, const char *plane)
{
	if (f == NULL)
		return;
	for (rule *r = f->rules; r != NULL; r = r->next)
		if (r->act.action == KS_FA_PLANE_WARMUP &&
		    (r->m_plane == NULL || strcmp(r->m_plane, plane) == 0))
			json_object_set_new(r->warm_planes, plane,
			    json_integer(r->warm_requests));
}

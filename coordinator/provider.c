/*
 * provider.c — the Milo provider's pure rules: which objects to watch,
 * what their condition says, the grace period, and endpoints.
 */
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "json.h"
#include "provider.h"

int
mcf_provider_mode_parse(const char *s, enum mcf_provider_mode *out)
{
	if (s != NULL && strcmp(s, "external") == 0) {
		*out = MCF_PROVIDER_EXTERNAL;
		return MCF_OK;
	}
	if (s != NULL && strcmp(s, "internal") == 0) {
		*out = MCF_PROVIDER_INTERNAL;
		return MCF_OK;
	}
	return MCF_EINVAL;
}

const char *
mcf_provider_mode_name(enum mcf_provider_mode mode)
{
	return mode == MCF_PROVIDER_INTERNAL ? "internal" : "external";
}

const char *
mcf_provider_group(enum mcf_provider_mode mode)
{
	return mode == MCF_PROVIDER_INTERNAL ? "infrastructure.miloapis.com"
	                                     : "resourcemanager.miloapis.com";
}

const char *
mcf_provider_version(enum mcf_provider_mode mode)
{
	(void) mode;
	return "v1alpha1";
}

const char *
mcf_provider_resource(enum mcf_provider_mode mode)
{
	return mode == MCF_PROVIDER_INTERNAL ? "projectcontrolplanes"
	                                     : "projects";
}

const char *
mcf_provider_condition(enum mcf_provider_mode mode)
{
	return mode == MCF_PROVIDER_INTERNAL ? "ControlPlaneReady" : "Ready";
}

int
mcf_provider_template_check(const char *tmpl, mcf_errinfo *ei)
{
	if (tmpl == NULL || strstr(tmpl, "{name}") == NULL)
		return mcf_errinfo_set(
		    ei, MCF_EINVAL, "the template must contain {name}");
	if (strncmp(tmpl, "http://", 7) != 0
	    && strncmp(tmpl, "https://", 8) != 0)
		return mcf_errinfo_set(ei, MCF_EINVAL,
		    "the template must start with http:// or https://");
	return MCF_OK;
}

char *
mcf_provider_endpoint(const mcf_provider_cfg *cfg, const char *name)
{
	if (cfg->mode == MCF_PROVIDER_EXTERNAL) {
		const char *srv
		    = cfg->core_server != NULL ? cfg->core_server : "";
		size_t n = strlen(srv);
		while (n > 0 && srv[n - 1] == '/')
			n--;
		return mcf_asprintf("%.*s/apis/resourcemanager.miloapis.com/"
		                    "v1alpha1/projects/%s/control-plane",
		    (int) n, srv, name);
	}
	const char *t = cfg->endpoint_template != NULL
	    ? cfg->endpoint_template
	    : MCF_PROVIDER_DEFAULT_TEMPLATE;
	/* Replace every "{name}". */
	size_t nl = strlen(name), cnt = 0;
	for (const char *q = t; (q = strstr(q, "{name}")) != NULL; q += 6)
		cnt++;
	char *out = mcf_malloc(strlen(t) + cnt * nl + 1), *o = out;
	for (const char *q = t; *q != '\0';) {
		if (strncmp(q, "{name}", 6) == 0) {
			memcpy(o, name, nl);
			o += nl;
			q += 6;
		} else {
			*o++ = *q++;
		}
	}
	*o = '\0';
	return out;
}

void
mcf_provider_observe(
    const mcf_provider_cfg *cfg, const json_t *obj, mcf_provider_obs *out)
{
	memset(out, 0, sizeof(*out));
	if (obj == NULL)
		return;
	out->exists         = true;
	const json_t *dt    = mcf_json_path(obj, "metadata.deletionTimestamp");
	out->deleting       = dt != NULL && !json_is_null(dt);
	const json_t *conds = mcf_json_path(obj, "status.conditions");
	const char   *want  = mcf_provider_condition(cfg->mode);
	size_t        i;
	json_t       *c;
	if (!json_is_array(conds))
		return;
	json_array_foreach(conds, i, c)
	{
		const char *type
		    = json_string_value(json_object_get(c, "type"));
		if (type == NULL || strcmp(type, want) != 0)
			continue;
		const char *st
		    = json_string_value(json_object_get(c, "status"));
		const char *rs
		    = json_string_value(json_object_get(c, "reason"));
		if (st != NULL && strcmp(st, "True") == 0)
			out->cond = MCF_PROVIDER_COND_TRUE;
		else if (st != NULL && strcmp(st, "False") == 0)
			out->cond = MCF_PROVIDER_COND_FALSE;
		else
			out->cond = MCF_PROVIDER_COND_UNKNOWN;
		snprintf(out->reason, sizeof(out->reason), "%s",
		    rs != NULL ? rs : "");
		return;
	}
}

static const char *
cond_text(enum mcf_provider_cond c)
{
	switch (c) {
	case MCF_PROVIDER_COND_TRUE:
		return "True";
	case MCF_PROVIDER_COND_FALSE:
		return "False";
	case MCF_PROVIDER_COND_UNKNOWN:
		return "Unknown";
	default:
		return "absent";
	}
}

bool
mcf_provider_apply(const mcf_provider_cfg *cfg, mcf_provider_state *st,
    const mcf_provider_obs *obs, int64_t now_ms)
{
	bool        was  = st->engageable;
	const char *cond = mcf_provider_condition(cfg->mode);

	if (!obs->exists || obs->deleting) {
		st->engageable = false;
		st->in_grace   = false;
		snprintf(st->reason, sizeof(st->reason), "%s",
		    obs->exists ? "being deleted" : "deleted");
		return was;
	}
	if (obs->cond == MCF_PROVIDER_COND_TRUE) {
		st->engageable = true;
		st->in_grace   = false;
		st->reason[0]  = '\0';
		return !was;
	}
	if (!was) {
		snprintf(st->reason, sizeof(st->reason), "%s is %s%s%.100s",
		    cond, cond_text(obs->cond), obs->reason[0] ? ": " : "",
		    obs->reason);
		return false;
	}
	/* Engageable, condition no longer True: start or continue the
	 * grace period. */
	if (!st->in_grace) {
		st->in_grace     = true;
		st->not_ready_ms = now_ms;
	}
	snprintf(st->reason, sizeof(st->reason),
	    "%s is %s%s%.100s (disengaging after the grace period)", cond,
	    cond_text(obs->cond), obs->reason[0] ? ": " : "", obs->reason);
	return mcf_provider_tick(cfg, st, now_ms);
}

bool
mcf_provider_tick(
    const mcf_provider_cfg *cfg, mcf_provider_state *st, int64_t now_ms)
{
	if (!st->engageable || !st->in_grace
	    || now_ms < mcf_provider_deadline(cfg, st))
		return false;
	st->engageable = false;
	st->in_grace   = false;
	/* "… (disengaging after the grace period)" → "… for longer than
	 * the grace period". */
	char *p = strstr(st->reason, " (disengaging");
	if (p != NULL)
		*p = '\0';
	size_t n = strlen(st->reason);
	snprintf(st->reason + n, sizeof(st->reason) - n,
	    " for longer than the grace period");
	return true;
}

int64_t
mcf_provider_deadline(
    const mcf_provider_cfg *cfg, const mcf_provider_state *st)
{
	if (!st->engageable || !st->in_grace)
		return INT64_MAX;
	int64_t g = cfg->grace_ms > 0 ? cfg->grace_ms : 0;
	return st->not_ready_ms + g;
}

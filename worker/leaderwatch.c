/*
 * leaderwatch.c — interpreting reads of the coordinator Lease
 * (leaderwatch.h).
 *
 * The record compared between reads is the uid plus the spec serialised
 * with sorted keys, as client-go compares the raw LeaderElectionRecord.
 * Expiry needs two instants: when the record last changed (observed_ms)
 * and when a read last confirmed it unchanged (read_ms); a Lease is proved
 * expired only when read_ms >= observed_ms + duration.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "err.h"
#include "leaderwatch.h"

struct mcf_leaderwatch {
	mcf_leaderwatch_view v;
	char                *record; /* owned: uid + sorted spec, or NULL */
};

void
mcf_leaderwatch_create(mcf_leaderwatch **out)
{
	*out = mcf_calloc(1, sizeof(**out));
}

void
mcf_leaderwatch_destroy(mcf_leaderwatch *lw)
{
	if (lw == NULL)
		return;
	free(lw->record);
	free(lw);
}

static void
copy_str(char *dst, size_t cap, const char *s)
{
	snprintf(dst, cap, "%s", s != NULL ? s : "");
}

bool
mcf_leaderwatch_observe(
    mcf_leaderwatch *lw, int rc, const json_t *lease, int64_t now_ms)
{
	mcf_leaderwatch_view *v = &lw->v;
	v->last_err             = rc;
	if (rc == MCF_ENOENT) {
		bool changed = !v->read || v->exists;
		free(lw->record);
		lw->record = NULL;
		memset(v, 0, sizeof(*v));
		v->read     = true;
		v->read_ms  = now_ms;
		v->last_err = rc;
		return changed;
	}
	if (rc != MCF_OK || !json_is_object(lease))
		return false;

	const json_t *meta = json_object_get(lease, "metadata");
	const json_t *spec = json_object_get(lease, "spec");
	const json_t *ann  = json_object_get(meta, "annotations");
	const char   *uid  = json_string_value(json_object_get(meta, "uid"));
	const char   *holder
	    = json_string_value(json_object_get(spec, "holderIdentity"));
	const char *addr = json_string_value(
	    json_object_get(ann, MCF_LEADERWATCH_ADDRESS_ANNOTATION));
	const char *surl = json_string_value(
	    json_object_get(ann, MCF_LEADERWATCH_STATUS_ANNOTATION));

	char *specs  = json_is_object(spec)
	     ? json_dumps(spec, JSON_COMPACT | JSON_SORT_KEYS)
	     : NULL;
	char *record = mcf_asprintf(
	    "%s|%s", uid != NULL ? uid : "", specs != NULL ? specs : "{}");
	free(specs);

	bool changed = !v->read || !v->exists
	    || strcmp(v->uid, uid != NULL ? uid : "") != 0
	    || strcmp(v->holder, holder != NULL ? holder : "") != 0
	    || strcmp(v->address, addr != NULL ? addr : "") != 0;

	if (lw->record == NULL || strcmp(lw->record, record) != 0) {
		free(lw->record);
		lw->record     = record;
		v->observed_ms = now_ms;
	} else {
		free(record);
	}
	v->read    = true;
	v->exists  = true;
	v->read_ms = now_ms;
	copy_str(v->uid, sizeof(v->uid), uid);
	copy_str(v->holder, sizeof(v->holder), holder);
	copy_str(v->address, sizeof(v->address), addr);
	copy_str(v->status_url, sizeof(v->status_url), surl);
	v->transitions
	    = json_integer_value(json_object_get(spec, "leaseTransitions"));
	v->duration_ms = 1000
	    * json_integer_value(
	        json_object_get(spec, "leaseDurationSeconds"));
	return changed;
}

void
mcf_leaderwatch_view_get(
    const mcf_leaderwatch *lw, int64_t now_ms, mcf_leaderwatch_view *out)
{
	*out       = lw->v;
	out->valid = lw->v.exists && lw->v.holder[0] != '\0'
	    && now_ms < lw->v.observed_ms + lw->v.duration_ms;
}

bool
mcf_leaderwatch_gone(const mcf_leaderwatch *lw, const char *uid)
{
	const mcf_leaderwatch_view *v = &lw->v;
	if (uid == NULL || uid[0] == '\0' || !v->read)
		return false;
	if (!v->exists || strcmp(v->uid, uid) != 0)
		return true;
	if (v->holder[0] == '\0')
		return true;
	return v->read_ms >= v->observed_ms + v->duration_ms;
}

/*
 * members.c — membership from Leases (members.h has the rules).
 *
 * Two maps: member name → member, and Lease name → member name (a
 * released Lease has no holder to take the name from).  The coordinator
 * Lease is kept apart as the leader record.
 *
 * Expiry is observation-based, as client-go's leader election judges a
 * Lease: we never compare the worker's renewTime with our wall clock, we
 * remember when (on our monotonic clock) the holder or renewTime last
 * changed, and allow 1.1 × leaseDurationSeconds from there.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "json.h"
#include "log.h"
#include "members.h"
#include "strmap.h"

typedef struct leader_rec {
	bool    known;
	char   *holder;
	char   *renew;
	char   *uid;
	int64_t transitions;
	char   *address;
	char   *status_url;
	int64_t seen_ms;
	int64_t duration_ms;
} leader_rec;

struct mcf_members {
	char          *coord_lease;
	mcf_members_cb cb;
	void          *arg;
	mcf_strmap    *byname;  /* name → mcf_member */
	mcf_strmap    *bylease; /* lease name → char * member name */
	leader_rec     leader;
	int64_t        term_ms; /* when the current term began */
};

static void
set_str(char **dst, const char *v)
{
	if (v == NULL)
		v = "";
	if (*dst != NULL && strcmp(*dst, v) == 0)
		return;
	free(*dst);
	*dst = mcf_strdup(v);
}

mcf_members *
mcf_members_create(const char *coordinator_lease, mcf_members_cb cb, void *arg)
{
	mcf_members *ms       = mcf_calloc(1, sizeof(*ms));
	ms->coord_lease       = mcf_strdup(coordinator_lease);
	ms->cb                = cb;
	ms->arg               = arg;
	ms->byname            = mcf_strmap_create();
	ms->bylease           = mcf_strmap_create();
	ms->leader.holder     = mcf_strdup("");
	ms->leader.renew      = mcf_strdup("");
	ms->leader.uid        = mcf_strdup("");
	ms->leader.address    = mcf_strdup("");
	ms->leader.status_url = mcf_strdup("");
	return ms;
}

static void
member_free(mcf_member *m)
{
	free(m->name);
	free(m->incarnation);
	free(m->prev_incarnation);
	free(m->status_url);
	free(m->lease);
	free(m->lease_renew);
	free(m);
}

void
mcf_members_destroy(mcf_members *ms)
{
	if (ms == NULL)
		return;
	size_t      pos = 0;
	const char *k;
	void       *v;
	while (mcf_strmap_next(ms->byname, &pos, &k, &v))
		member_free(v);
	pos = 0;
	while (mcf_strmap_next(ms->bylease, &pos, &k, &v))
		free(v);
	mcf_strmap_destroy(ms->byname);
	mcf_strmap_destroy(ms->bylease);
	free(ms->leader.holder);
	free(ms->leader.renew);
	free(ms->leader.uid);
	free(ms->leader.address);
	free(ms->leader.status_url);
	free(ms->coord_lease);
	free(ms);
}

static mcf_member *
member_new(mcf_members *ms, const char *name)
{
	mcf_member *m        = mcf_calloc(1, sizeof(*m));
	m->name              = mcf_strdup(name);
	m->incarnation       = mcf_strdup("");
	m->prev_incarnation  = mcf_strdup("");
	m->status_url        = mcf_strdup("");
	m->lease             = mcf_strdup("");
	m->lease_renew       = mcf_strdup("");
	m->weight            = 1;
	m->lease_duration_ms = MCF_MEMBERS_DEFAULT_DURATION_MS;
	mcf_strmap_put(ms->byname, name, m);
	return m;
}

static void
emit(
    mcf_members *ms, mcf_member *m, enum mcf_members_event ev, const char *inc)
{
	if (ms->cb != NULL)
		ms->cb(ms->arg, m, ev, inc);
}

static void
go(mcf_members *ms, mcf_member *m, int64_t now, const char *why)
{
	if (m->gone)
		return;
	m->gone    = true;
	m->gone_ms = now;
	m->active  = false;
	snprintf(m->gone_reason, sizeof(m->gone_reason), "%s", why);
	mcf_log_info("COORD-MEMBER-GONE",
	    "worker %s (incarnation %s) is gone: %s", m->name, m->incarnation,
	    why);
	emit(ms, m, MCF_MEMBERS_GONE, m->incarnation);
}

/* Switches `m` to a newer incarnation `inc`, proving the current one
 * gone. */
static void
new_incarnation(mcf_members *ms, mcf_member *m, const char *inc, int64_t now,
    const char *why)
{
	if (m->incarnation[0] != '\0') {
		if (!m->gone) {
			char buf[160];
			snprintf(buf, sizeof(buf), "%s (%s)", why, inc);
			go(ms, m, now, buf);
		}
		set_str(&m->prev_incarnation, m->incarnation);
	}
	set_str(&m->incarnation, inc);
	m->gone           = false;
	m->gone_ms        = 0;
	m->gone_reason[0] = '\0';
	m->active         = false;
	m->leaving        = false;
	m->lease_held     = false;
	m->hello_ms       = 0;
	m->live_ms        = now;
	m->empty_ms       = 0;
}

static uint32_t
parse_weight(const char *s)
{
	if (s == NULL || *s == '\0')
		return 1;
	char         *end;
	unsigned long v = strtoul(s, &end, 10);
	if (*end != '\0' || v < 1 || v > 1000000)
		return 1;
	return (uint32_t) v;
}

static const char *
ann(const json_t *lease, const char *key)
{
	const json_t *a = mcf_json_path(lease, "metadata.annotations");
	return json_string_value(json_object_get(a, key));
}

static int64_t
duration_ms(const json_t *lease)
{
	int64_t d;
	if (mcf_json_path_int(lease, "spec.leaseDurationSeconds", &d) != MCF_OK
	    || d <= 0)
		return MCF_MEMBERS_DEFAULT_DURATION_MS;
	return d * 1000;
}

static void
leader_update(mcf_members *ms, const json_t *lease, int64_t now)
{
	leader_rec *l      = &ms->leader;
	const char *holder = mcf_json_path_str(lease, "spec.holderIdentity");
	const char *renew  = mcf_json_path_str(lease, "spec.renewTime");
	const char *uid    = mcf_json_path_str(lease, "metadata.uid");
	int64_t     tr     = 0;
	mcf_json_path_int(lease, "spec.leaseTransitions", &tr);
	holder = holder != NULL ? holder : "";
	renew  = renew != NULL ? renew : "";
	if (!l->known || strcmp(holder, l->holder) != 0
	    || strcmp(renew, l->renew) != 0)
		l->seen_ms = now;
	l->known = true;
	set_str(&l->holder, holder);
	set_str(&l->renew, renew);
	set_str(&l->uid, uid);
	l->transitions = tr;
	l->duration_ms = duration_ms(lease);
	set_str(&l->address, ann(lease, MCF_MEMBERS_ANN_FLEET_ADDRESS));
	set_str(&l->status_url, ann(lease, MCF_MEMBERS_ANN_STATUS_URL));
}

bool
mcf_members_lease_update(mcf_members *ms, const json_t *lease, int64_t now)
{
	const char *lname = mcf_json_path_str(lease, "metadata.name");
	if (lname == NULL)
		return false;
	if (strcmp(lname, ms->coord_lease) == 0) {
		leader_update(ms, lease, now);
		return false;
	}
	const char *holder = mcf_json_path_str(lease, "spec.holderIdentity");
	const char *inc_a  = ann(lease, MCF_MEMBERS_ANN_INCARNATION);
	const char *known  = mcf_strmap_get(ms->bylease, lname);
	if (holder == NULL)
		holder = "";

	if (holder[0] == '\0') {
		/* Released (or never held): proof for the member that held
		 * it, if we follow this Lease. */
		mcf_member *m = known ? mcf_members_get(ms, known) : NULL;
		if (m == NULL || !m->lease_held)
			return false;
		m->lease_held = false;
		if (!m->gone) {
			go(ms, m, now, "released its Lease");
			return true;
		}
		return false;
	}
	if (inc_a == NULL && known == NULL)
		return false; /* not a worker Lease */

	/* "{name}/{incarnation}", split at the last '/'. */
	char       *name;
	const char *inc;
	const char *slash = strrchr(holder, '/');
	if (slash != NULL && slash != holder && slash[1] != '\0') {
		name = mcf_strndup(holder, (size_t) (slash - holder));
		inc  = slash + 1;
	} else {
		name = mcf_strdup(holder);
		inc  = inc_a != NULL ? inc_a : "";
	}
	if (inc[0] == '\0') {
		free(name);
		return false;
	}
	bool        changed = false;
	mcf_member *m       = mcf_members_get(ms, name);
	if (m == NULL) {
		m       = member_new(ms, name);
		changed = true;
	}
	if (known == NULL || strcmp(known, name) != 0)
		free(mcf_strmap_put(ms->bylease, lname, mcf_strdup(name)));
	set_str(&m->lease, lname);
	free(name);

	if (strcmp(m->prev_incarnation, inc) == 0) {
		/* The Lease still shows an incarnation already proven gone
		 * (its successor said HELLO first): nothing to learn. */
		return changed;
	}
	if (strcmp(m->incarnation, inc) != 0) {
		new_incarnation(
		    ms, m, inc, now, "a new incarnation took the Lease");
		changed = true;
	}
	const char *renew = mcf_json_path_str(lease, "spec.renewTime");
	renew             = renew != NULL ? renew : "";
	if (!m->lease_held || strcmp(renew, m->lease_renew) != 0)
		m->lease_seen_ms = now;
	if (!m->lease_held)
		changed = true;
	m->lease_held = true;
	set_str(&m->lease_renew, renew);
	int64_t d = duration_ms(lease);
	if (d != m->lease_duration_ms)
		changed = true;
	m->lease_duration_ms = d;
	uint32_t w = parse_weight(ann(lease, MCF_MEMBERS_ANN_WEIGHT));
	if (w != m->weight)
		changed = true;
	m->weight      = w;
	const char *su = ann(lease, MCF_MEMBERS_ANN_STATUS_URL);
	if (su != NULL && su[0] != '\0')
		set_str(&m->status_url, su);
	const char *eng      = ann(lease, MCF_MEMBERS_ANN_ENGAGED);
	bool        was_empty = mcf_members_proven_empty(ms, m);
	m->empty_ms = eng != NULL && strcmp(eng, "0") == 0 ? now : 0;
	if (mcf_members_proven_empty(ms, m) != was_empty)
		changed = true;
	if (m->gone) {
		m->gone           = false;
		m->gone_ms        = 0;
		m->gone_reason[0] = '\0';
		mcf_log_info("COORD-MEMBER-REVIVED",
		    "worker %s (incarnation %s) holds its Lease again",
		    m->name, m->incarnation);
		emit(ms, m, MCF_MEMBERS_REVIVED, m->incarnation);
		changed = true;
	}
	return changed;
}

void
mcf_members_lease_delete(mcf_members *ms, const json_t *lease, int64_t now)
{
	(void) now;
	const char *lname = mcf_json_path_str(lease, "metadata.name");
	if (lname != NULL && strcmp(lname, ms->coord_lease) == 0) {
		ms->leader.known = false;
		set_str(&ms->leader.holder, "");
	}
	/* A worker's member keeps counting from its last renewal. */
}

mcf_member *
mcf_members_hello(mcf_members *ms, const char *name, const char *incarnation,
    uint32_t weight, const char *status_url, const char *lease, int64_t now)
{
	mcf_member *m = mcf_members_get(ms, name);
	if (m == NULL)
		m = member_new(ms, name);
	if (m->incarnation[0] != '\0'
	    && strcmp(m->prev_incarnation, incarnation) == 0
	    && strcmp(m->incarnation, incarnation) != 0)
		return NULL;
	if (strcmp(m->incarnation, incarnation) != 0)
		new_incarnation(
		    ms, m, incarnation, now, "a new incarnation said HELLO");
	m->hello_ms = now;
	m->active   = true;
	if (!m->lease_held && weight > 0)
		m->weight = weight;
	if (status_url != NULL && status_url[0] != '\0')
		set_str(&m->status_url, status_url);
	if (lease != NULL && lease[0] != '\0' && m->lease[0] == '\0') {
		set_str(&m->lease, lease);
		free(mcf_strmap_put(ms->bylease, lease, mcf_strdup(name)));
	}
	return m;
}

void
mcf_members_set_leaving(mcf_member *m)
{
	m->leaving = true;
}

void
mcf_members_new_term(mcf_members *ms, int64_t now)
{
	size_t      pos = 0;
	mcf_member *m;
	ms->term_ms = now;
	while (mcf_members_next(ms, &pos, &m))
		m->active = false;
}

bool
mcf_members_proven_empty(const mcf_members *ms, const mcf_member *m)
{
	return m->empty_ms != 0 && m->empty_ms > ms->term_ms;
}

static int64_t
expiry(const mcf_member *m)
{
	return m->lease_seen_ms
	    + (int64_t) ((double) m->lease_duration_ms * MCF_MEMBERS_DRIFT);
}

bool
mcf_members_live(const mcf_member *m, int64_t now)
{
	if (m->gone)
		return false;
	if (m->lease_held)
		return now < expiry(m);
	return m->hello_ms != 0
	    && now < m->hello_ms + MCF_MEMBERS_JOIN_GRACE_MS;
}

bool
mcf_members_tick(mcf_members *ms, int64_t now)
{
	bool        changed = false;
	size_t      pos     = 0;
	const char *k;
	void       *v;
	while (mcf_strmap_next(ms->byname, &pos, &k, &v)) {
		mcf_member *m = v;
		if (m->gone) {
			if (now - m->gone_ms < MCF_MEMBERS_FORGET_MS)
				continue;
			if (ms->cb != NULL
			    && !ms->cb(ms->arg, m, MCF_MEMBERS_FORGET,
			        m->incarnation))
				continue;
			mcf_strmap_del(ms->byname, k);
			member_free(m);
			continue;
		}
		if (m->lease_held && now >= expiry(m)) {
			char why[96];
			snprintf(why, sizeof(why),
			    "its Lease expired (not renewed for %lld ms)",
			    (long long) (now - m->lease_seen_ms));
			go(ms, m, now, why);
			changed = true;
		} else if (!m->lease_held
		    && now >= m->hello_ms + MCF_MEMBERS_JOIN_GRACE_MS) {
			go(ms, m, now,
			    m->hello_ms != 0 ? "it did not take its Lease "
			                       "within 15 s of HELLO"
			                     : "no Lease");
			changed = true;
		}
	}
	return changed;
}

enum mcf_member_state
mcf_members_state(const mcf_member *m)
{
	if (m->gone)
		return MCF_MEMBER_GONE;
	if (m->leaving)
		return MCF_MEMBER_LEAVING;
	if (m->active)
		return MCF_MEMBER_ACTIVE;
	return MCF_MEMBER_JOINING;
}

const char *
mcf_members_state_name(enum mcf_member_state s)
{
	switch (s) {
	case MCF_MEMBER_JOINING:
		return "joining";
	case MCF_MEMBER_ACTIVE:
		return "active";
	case MCF_MEMBER_LEAVING:
		return "leaving";
	case MCF_MEMBER_GONE:
		return "gone";
	}
	return "unknown";
}

mcf_member *
mcf_members_get(const mcf_members *ms, const char *name)
{
	return mcf_strmap_get(ms->byname, name);
}

bool
mcf_members_next(const mcf_members *ms, size_t *pos, mcf_member **m)
{
	void *v;
	if (!mcf_strmap_next(ms->byname, pos, NULL, &v))
		return false;
	*m = v;
	return true;
}

size_t
mcf_members_count(const mcf_members *ms)
{
	return mcf_strmap_count(ms->byname);
}

void
mcf_members_leader_get(
    const mcf_members *ms, int64_t now, mcf_members_leader *out)
{
	const leader_rec *l = &ms->leader;
	memset(out, 0, sizeof(*out));
	out->known = l->known;
	if (!l->known)
		return;
	out->live = l->holder[0] != '\0' && now < l->seen_ms + l->duration_ms;
	snprintf(out->identity, sizeof(out->identity), "%s", l->holder);
	snprintf(out->uid, sizeof(out->uid), "%s", l->uid);
	out->transitions = l->transitions;
	snprintf(out->address, sizeof(out->address), "%s", l->address);
	snprintf(
	    out->status_url, sizeof(out->status_url), "%s", l->status_url);
}

/*
 * members.h — fleet membership from the Leases of the namespace, plus what
 * workers said in HELLO and LEAVING.
 *
 * docs/fleet.md "Leases are the source of truth" is the contract.  Every
 * Lease of the namespace goes through mcf_members_lease_update():
 *
 *   - the coordinator Lease (`--lease-name`) gives the leader's identity,
 *     term, fleet address and status URL (mcf_members_leader());
 *   - a worker Lease (annotation mcfleet.io/incarnation, holder
 *     "{name}/{incarnation}") makes worker `name` a member.
 *
 * A member is live while its Lease is held by its current incarnation and
 * has changed within 1.1 × leaseDurationSeconds on our monotonic clock
 * (10% clock-rate drift margin), or — for an incarnation that said HELLO
 * before its Lease showed it — for MCF_MEMBERS_JOIN_GRACE_MS after that
 * HELLO.  It is proven gone when that time passes, when it releases its
 * Lease (holder ""), or when a new incarnation of the same name takes the
 * Lease or says HELLO.  A gone member whose same incarnation renews its
 * Lease again is revived (the caller treats it as holding nothing).  Gone
 * members are forgotten MCF_MEMBERS_FORGET_MS later.
 *
 * The caller learns of gone, revived and forgotten members through one
 * callback, run synchronously from the call that noticed it.
 *
 * Time: every call takes `now_ms` from one monotonic clock.
 *
 * Thread model: a members table belongs to one thread (the coordinator's
 * control thread); no locks.
 */
#ifndef MCF_COORDINATOR_MEMBERS_H
#define MCF_COORDINATOR_MEMBERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define MCF_MEMBERS_ANN_WEIGHT "mcfleet.io/weight"
#define MCF_MEMBERS_ANN_INCARNATION "mcfleet.io/incarnation"
#define MCF_MEMBERS_ANN_STATUS_URL "mcfleet.io/status-url"
#define MCF_MEMBERS_ANN_FLEET_ADDRESS "mcfleet.io/fleet-address"
#define MCF_MEMBERS_ANN_ENGAGED "mcfleet.io/engaged"

/* Expiry margin for clock-rate drift: 10%. */
#define MCF_MEMBERS_DRIFT 1.1
/* How long an incarnation known only from its HELLO counts as live. */
#define MCF_MEMBERS_JOIN_GRACE_MS 15000
/* How long a gone member stays listed. */
#define MCF_MEMBERS_FORGET_MS 300000
/* leaseDurationSeconds assumed when a Lease has none. */
#define MCF_MEMBERS_DEFAULT_DURATION_MS 15000

enum mcf_member_state {
	MCF_MEMBER_JOINING = 0, /* live Lease, no HELLO in this term */
	MCF_MEMBER_ACTIVE,      /* said HELLO to this leader */
	MCF_MEMBER_LEAVING,     /* sent LEAVING */
	MCF_MEMBER_GONE,        /* proven gone */
};

/* A member.  Owned by the table; fields are read-only outside
 * members.c except `user`.  Strings are never NULL. */
typedef struct mcf_member {
	char    *name;
	char    *incarnation;      /* current incarnation; "" unknown */
	char    *prev_incarnation; /* the last one proven gone by a newer */
	uint32_t weight;        /* from the Lease (HELLO until it has one) */
	char    *status_url;    /* from the Lease or HELLO; "" */
	char    *lease;         /* its Lease's name; "" before seen */
	bool     lease_held;    /* the Lease names this incarnation */
	int64_t  lease_seen_ms; /* when holder or renewTime last changed */
	int64_t  lease_duration_ms;
	char    *lease_renew; /* renewTime text last seen */
	int64_t  hello_ms;    /* last HELLO of this incarnation, 0 never */
	int64_t  live_ms;     /* this incarnation first seen (Lease or HELLO) */
	int64_t  empty_ms;    /* last Lease update whose mcfleet.io/engaged
	                         said 0; 0: the last said otherwise */
	bool     active;      /* HELLO in this term */
	bool     leaving;
	bool     gone;
	int64_t  gone_ms;
	char     gone_reason[160];
	void    *user; /* the caller's per-worker data (borrowed) */
} mcf_member;

enum mcf_members_event {
	/* `incarnation` (borrowed for the call) is proven gone; the member
	 * may already show a newer one. */
	MCF_MEMBERS_GONE = 1,
	/* A gone incarnation holds its Lease again. */
	MCF_MEMBERS_REVIVED,
	/* The member is about to be freed: drop `user`.  Return false to
	 * keep it a while longer (e.g. a session is still attached). */
	MCF_MEMBERS_FORGET,
};

/* The callback: runs on the caller's thread inside the call that noticed
 * the event.  It may read the table but must not add, remove or change
 * members.  Its return value matters only for MCF_MEMBERS_FORGET. */
typedef bool (*mcf_members_cb)(void *arg, mcf_member *m,
    enum mcf_members_event ev, const char *incarnation);

typedef struct mcf_members mcf_members;

/* Creates an empty table.  `coordinator_lease` (copied) is the name of
 * the leader's Lease.  `cb` may be NULL; `arg` is borrowed.  New. */
mcf_members *mcf_members_create(
    const char *coordinator_lease, mcf_members_cb cb, void *arg);

/* Frees the table and its members (no callbacks).  Accepts NULL. */
void mcf_members_destroy(mcf_members *ms);

/* A Lease (borrowed) was added or updated.  Returns true when something
 * that matters for placement changed (a member appeared, its incarnation,
 * weight or liveness changed); a renewal alone returns false. */
bool mcf_members_lease_update(
    mcf_members *ms, const json_t *lease, int64_t now_ms);

/* A Lease (borrowed) was deleted.  Its member stays until it expires. */
void mcf_members_lease_delete(
    mcf_members *ms, const json_t *lease, int64_t now_ms);

/* A HELLO from `incarnation` of worker `name`.  A new incarnation proves
 * the previous one gone (callback first).  Returns the member, or NULL
 * when `incarnation` is one already proven gone by a newer one (the
 * caller refuses the connection).  Strings borrowed; `status_url` and
 * `lease` may be NULL or "". */
mcf_member *mcf_members_hello(mcf_members *ms, const char *name,
    const char *incarnation, uint32_t weight, const char *status_url,
    const char *lease, int64_t now_ms);

/* The member sent LEAVING. */
void mcf_members_set_leaving(mcf_member *m);

/* A new leadership term, begun at `now_ms`: every member's `active` is
 * cleared. */
void mcf_members_new_term(mcf_members *ms, int64_t now_ms);

/* True when `m`'s Lease, in an update observed during this term, said it
 * runs no project (annotation mcfleet.io/engaged "0"), and no later update
 * said otherwise.  A worker engages only what a leader sent it; the old
 * leader stopped sending at least (its lease duration − renew deadline)
 * before this term began, so a Lease written since cannot predate an
 * engage of the old leader (docs/fleet.md "Reports and the first
 * snapshot"). */
bool mcf_members_proven_empty(const mcf_members *ms, const mcf_member *m);

/* Expiry and forgetting at `now_ms`.  Returns true when a member went
 * gone (placement changes). */
bool mcf_members_tick(mcf_members *ms, int64_t now_ms);

/* True while `m` is live (see the file comment). */
bool mcf_members_live(const mcf_member *m, int64_t now_ms);

enum mcf_member_state mcf_members_state(const mcf_member *m);
const char           *mcf_members_state_name(enum mcf_member_state s);

/* The member named `name`, or NULL. */
mcf_member *mcf_members_get(const mcf_members *ms, const char *name);

/* Iteration as mcf_strmap_next(); the table must not change meanwhile. */
bool mcf_members_next(const mcf_members *ms, size_t *pos, mcf_member **m);

size_t mcf_members_count(const mcf_members *ms);

/* The leader as the coordinator Lease shows it: a plain value type. */
typedef struct mcf_members_leader {
	bool    known; /* the Lease was seen */
	bool    live;  /* held, and renewed within its duration */
	char    identity[256];
	char    uid[128];
	int64_t transitions;
	char    address[256];    /* mcfleet.io/fleet-address */
	char    status_url[256]; /* mcfleet.io/status-url */
} mcf_members_leader;

void mcf_members_leader_get(
    const mcf_members *ms, int64_t now_ms, mcf_members_leader *out);

#endif /* MCF_COORDINATOR_MEMBERS_H */

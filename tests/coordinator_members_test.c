/*
 * coordinator_members_test.c — tests for coordinator/members.c:
 * membership from worker Leases (holder "{name}/{incarnation}", weight
 * and status URL annotations), expiry by observation plus the 10% drift
 * margin (a renewal restarts it, an unchanged Lease does not), release,
 * a new incarnation proving the old one gone (through the Lease or a
 * HELLO), the join grace of an incarnation known only from HELLO, a
 * stale HELLO refused, revival, forgetting, LEAVING and terms, and the
 * leader record from the coordinator Lease.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <jansson.h>

#include "members.h"

typedef struct rec {
	int  gone, revived, forgot;
	char last_inc[64];
	bool veto_forget;
} rec;

static bool
cb(void *arg, mcf_member *m, enum mcf_members_event ev, const char *inc)
{
	(void) m;
	rec *r = arg;
	switch (ev) {
	case MCF_MEMBERS_GONE:
		r->gone++;
		snprintf(r->last_inc, sizeof(r->last_inc), "%s", inc);
		break;
	case MCF_MEMBERS_REVIVED:
		r->revived++;
		break;
	case MCF_MEMBERS_FORGET:
		if (r->veto_forget)
			return false;
		r->forgot++;
		break;
	}
	return true;
}

static json_t *
lease(const char *name, const char *holder, const char *renew, int dur,
    const char *inc, const char *weight)
{
	json_t *l = json_pack("{s:{s:s, s:s, s:{}}, s:{s:s, s:i, s:s}}",
	    "metadata", "name", name, "uid", "u-1", "annotations", "spec",
	    "holderIdentity", holder, "leaseDurationSeconds", dur, "renewTime",
	    renew);
	json_t *a
	    = json_object_get(json_object_get(l, "metadata"), "annotations");
	if (inc != NULL)
		json_object_set_new(
		    a, MCF_MEMBERS_ANN_INCARNATION, json_string(inc));
	if (weight != NULL)
		json_object_set_new(
		    a, MCF_MEMBERS_ANN_WEIGHT, json_string(weight));
	return l;
}

static bool
upd(mcf_members *ms, json_t *l, int64_t now)
{
	bool c = mcf_members_lease_update(ms, l, now);
	json_decref(l);
	return c;
}

/* A worker Lease with mcfleet.io/engaged. */
static json_t *
lease_engaged(const char *holder, const char *renew, const char *inc,
    const char *engaged)
{
	json_t *l = lease("mcfleet-worker-e", holder, renew, 3, inc, "1");
	json_t *a
	    = json_object_get(json_object_get(l, "metadata"), "annotations");
	if (engaged != NULL)
		json_object_set_new(
		    a, MCF_MEMBERS_ANN_ENGAGED, json_string(engaged));
	return l;
}

/* "Runs nothing" counts only from a Lease update observed in this term,
 * and only until an update says otherwise. */
static void
test_members_proven_empty(void **state)
{
	(void) state;
	rec          r  = { 0 };
	mcf_members *ms = mcf_members_create("c", cb, &r);
	upd(ms, lease_engaged("e/i1", "t1", "i1", "0"), 1000);
	mcf_member *m = mcf_members_get(ms, "e");
	assert_int_equal(m->live_ms, 1000);
	/* Seen before the term began: not proof. */
	mcf_members_new_term(ms, 2000);
	assert_false(mcf_members_proven_empty(ms, m));
	/* A renewal in the term that still says 0: proof, and a change
	 * that matters for placement. */
	assert_true(upd(ms, lease_engaged("e/i1", "t2", "i1", "0"), 2500));
	assert_true(mcf_members_proven_empty(ms, m));
	/* It engaged something: no longer. */
	assert_true(upd(ms, lease_engaged("e/i1", "t3", "i1", "2"), 3000));
	assert_false(mcf_members_proven_empty(ms, m));
	/* No annotation (an older worker): never proof. */
	upd(ms, lease_engaged("e/i1", "t4", "i1", NULL), 3500);
	assert_false(mcf_members_proven_empty(ms, m));
	upd(ms, lease_engaged("e/i1", "t5", "i1", "0"), 4000);
	assert_true(mcf_members_proven_empty(ms, m));
	/* A new term forgets the proof until the next renewal. */
	mcf_members_new_term(ms, 4500);
	assert_false(mcf_members_proven_empty(ms, m));
	/* A new incarnation starts over. */
	upd(ms, lease_engaged("e/i2", "t6", "i2", "1"), 5000);
	assert_int_equal(m->live_ms, 5000);
	assert_false(mcf_members_proven_empty(ms, m));
	mcf_members_destroy(ms);
}

static void
test_members_from_lease(void **state)
{
	(void) state;
	rec          r  = { 0 };
	mcf_members *ms = mcf_members_create("mcfleet-coordinator", cb, &r);
	assert_true(upd(ms,
	    lease("mcfleet-worker-w-0", "w-0/inc1", "t1", 3, "inc1", "2"),
	    1000));
	mcf_member *m = mcf_members_get(ms, "w-0");
	assert_non_null(m);
	assert_string_equal(m->incarnation, "inc1");
	assert_int_equal(m->weight, 2);
	assert_true(m->lease_held);
	assert_true(mcf_members_live(m, 1000));
	assert_int_equal(mcf_members_state(m), MCF_MEMBER_JOINING);

	/* A renewal alone changes nothing for placement. */
	assert_false(upd(ms,
	    lease("mcfleet-worker-w-0", "w-0/inc1", "t2", 3, "inc1", "2"),
	    2000));
	/* A weight change does. */
	assert_true(upd(ms,
	    lease("mcfleet-worker-w-0", "w-0/inc1", "t2", 3, "inc1", "3"),
	    2000));
	assert_int_equal(m->weight, 3);
	/* A bad weight counts as 1. */
	upd(ms, lease("mcfleet-worker-w-0", "w-0/inc1", "t2", 3, "inc1", "x"),
	    2000);
	assert_int_equal(m->weight, 1);

	/* Other Leases are not workers: no annotation, unknown name. */
	assert_false(
	    upd(ms, lease("other", "someone", "t", 15, NULL, NULL), 0));
	assert_null(mcf_members_get(ms, "someone"));
	assert_int_equal(mcf_members_count(ms), 1);
	mcf_members_destroy(ms);
}

static void
test_members_expiry_margin(void **state)
{
	(void) state;
	rec          r  = { 0 };
	mcf_members *ms = mcf_members_create("c", cb, &r);
	upd(ms, lease("l", "w/i", "t1", 3, "i", NULL), 0);
	mcf_member *m = mcf_members_get(ms, "w");
	/* 3 s duration, 10% margin: live until 3300 ms. */
	assert_false(mcf_members_tick(ms, 3299));
	assert_true(mcf_members_live(m, 3299));
	/* An unchanged Lease (resync) does not restart the clock. */
	upd(ms, lease("l", "w/i", "t1", 3, "i", NULL), 3000);
	assert_true(mcf_members_tick(ms, 3300));
	assert_true(m->gone);
	assert_int_equal(r.gone, 1);
	assert_string_equal(r.last_inc, "i");
	assert_false(mcf_members_live(m, 3300));
	assert_int_equal(mcf_members_state(m), MCF_MEMBER_GONE);
	assert_non_null(strstr(m->gone_reason, "expired"));

	/* The same incarnation renews again: revived. */
	assert_true(upd(ms, lease("l", "w/i", "t2", 3, "i", NULL), 4000));
	assert_false(m->gone);
	assert_int_equal(r.revived, 1);
	/* A renewal restarts the clock. */
	upd(ms, lease("l", "w/i", "t3", 3, "i", NULL), 6000);
	assert_false(mcf_members_tick(ms, 9299));
	assert_true(mcf_members_tick(ms, 9300));
	mcf_members_destroy(ms);
}

static void
test_members_release_and_new_incarnation(void **state)
{
	(void) state;
	rec          r  = { 0 };
	mcf_members *ms = mcf_members_create("c", cb, &r);
	upd(ms, lease("l0", "w/a", "t1", 3, "a", NULL), 0);
	mcf_member *m = mcf_members_get(ms, "w");
	/* Released: gone at once (the name comes from the Lease name). */
	assert_true(upd(ms, lease("l0", "", "t1", 1, "a", NULL), 100));
	assert_true(m->gone);
	assert_non_null(strstr(m->gone_reason, "released"));
	/* A new incarnation takes the Lease: a member again. */
	assert_true(upd(ms, lease("l0", "w/b", "t2", 3, "b", NULL), 200));
	assert_false(m->gone);
	assert_string_equal(m->incarnation, "b");
	assert_int_equal(r.gone, 1);
	/* A newer incarnation takes it while b is live: b is proven gone. */
	assert_true(upd(ms, lease("l0", "w/c", "t3", 3, "c", NULL), 300));
	assert_int_equal(r.gone, 2);
	assert_string_equal(r.last_inc, "b");
	assert_string_equal(m->incarnation, "c");
	assert_true(mcf_members_live(m, 300));
	mcf_members_destroy(ms);
}

static void
test_members_hello(void **state)
{
	(void) state;
	rec          r  = { 0 };
	mcf_members *ms = mcf_members_create("c", cb, &r);
	upd(ms, lease("l0", "w/a", "t1", 3, "a", "1"), 0);
	mcf_member *m
	    = mcf_members_hello(ms, "w", "a", 5, "http://x/status", "l0", 100);
	assert_non_null(m);
	assert_int_equal(mcf_members_state(m), MCF_MEMBER_ACTIVE);
	/* The Lease's weight wins over HELLO's while it holds the Lease. */
	assert_int_equal(m->weight, 1);
	assert_string_equal(m->status_url, "http://x/status");
	assert_int_equal(r.gone, 0);

	/* A new incarnation says HELLO before taking the Lease: a proven
	 * gone for a; b is live by the join grace. */
	m = mcf_members_hello(ms, "w", "b", 4, NULL, NULL, 1000);
	assert_non_null(m);
	assert_int_equal(r.gone, 1);
	assert_string_equal(r.last_inc, "a");
	assert_string_equal(m->incarnation, "b");
	assert_false(m->lease_held);
	assert_int_equal(m->weight, 4);
	assert_true(mcf_members_live(m, 1000 + MCF_MEMBERS_JOIN_GRACE_MS - 1));
	/* The old holder's Lease record still shows a: ignored. */
	assert_false(upd(ms, lease("l0", "w/a", "t2", 3, "a", "1"), 1500));
	assert_string_equal(m->incarnation, "b");
	/* A HELLO from the superseded incarnation is refused. */
	assert_null(mcf_members_hello(ms, "w", "a", 1, NULL, NULL, 1600));
	/* b takes the Lease. */
	upd(ms, lease("l0", "w/b", "t3", 3, "b", "1"), 4000);
	assert_true(m->lease_held);
	assert_false(mcf_members_tick(ms, 5000));
	assert_true(mcf_members_live(m, 5000));

	/* LEAVING and a new term. */
	mcf_members_set_leaving(m);
	assert_int_equal(mcf_members_state(m), MCF_MEMBER_LEAVING);
	mcf_members_new_term(ms, 5000);
	assert_false(m->active);
	assert_int_equal(mcf_members_state(m), MCF_MEMBER_LEAVING);
	mcf_members_destroy(ms);

	/* A HELLO that never takes its Lease: gone after the grace. */
	ms            = mcf_members_create("c", cb, &r);
	mcf_member *n = mcf_members_hello(ms, "v", "x", 1, NULL, NULL, 10000);
	assert_true(mcf_members_live(n, 10000));
	assert_false(
	    mcf_members_tick(ms, 10000 + MCF_MEMBERS_JOIN_GRACE_MS - 1));
	assert_true(mcf_members_tick(ms, 10000 + MCF_MEMBERS_JOIN_GRACE_MS));
	assert_true(n->gone);
	assert_non_null(strstr(n->gone_reason, "did not take its Lease"));
	mcf_members_destroy(ms);
}

static void
test_members_forget(void **state)
{
	(void) state;
	rec          r  = { 0 };
	mcf_members *ms = mcf_members_create("c", cb, &r);
	upd(ms, lease("l0", "w/a", "t1", 3, "a", NULL), 0);
	upd(ms, lease("l0", "", "t1", 1, "a", NULL), 10);
	r.veto_forget = true;
	mcf_members_tick(ms, 10 + MCF_MEMBERS_FORGET_MS);
	assert_non_null(mcf_members_get(ms, "w"));
	r.veto_forget = false;
	mcf_members_tick(ms, 20 + MCF_MEMBERS_FORGET_MS);
	assert_null(mcf_members_get(ms, "w"));
	assert_int_equal(r.forgot, 1);
	/* A released Lease seen again creates nothing. */
	assert_false(upd(ms, lease("l0", "", "t1", 1, "a", NULL), 30));
	assert_int_equal(mcf_members_count(ms), 0);
	mcf_members_destroy(ms);
}

static void
test_members_leader(void **state)
{
	(void) state;
	rec          r  = { 0 };
	mcf_members *ms = mcf_members_create("mcfleet-coordinator", cb, &r);
	mcf_members_leader li;
	mcf_members_leader_get(ms, 0, &li);
	assert_false(li.known);
	json_t *l
	    = lease("mcfleet-coordinator", "coord-a", "t1", 15, NULL, NULL);
	json_t *a
	    = json_object_get(json_object_get(l, "metadata"), "annotations");
	json_object_set_new(a, MCF_MEMBERS_ANN_FLEET_ADDRESS,
	    json_string("tcp://10.0.0.5:7400"));
	json_object_set_new(a, MCF_MEMBERS_ANN_STATUS_URL,
	    json_string("http://10.0.0.5:8080/status"));
	json_object_set_new(
	    json_object_get(l, "spec"), "leaseTransitions", json_integer(4));
	assert_false(upd(ms, l, 1000));
	assert_int_equal(mcf_members_count(ms), 0);
	mcf_members_leader_get(ms, 2000, &li);
	assert_true(li.known);
	assert_true(li.live);
	assert_string_equal(li.identity, "coord-a");
	assert_string_equal(li.uid, "u-1");
	assert_int_equal(li.transitions, 4);
	assert_string_equal(li.address, "tcp://10.0.0.5:7400");
	assert_string_equal(li.status_url, "http://10.0.0.5:8080/status");
	/* Not renewed within its duration: not live. */
	mcf_members_leader_get(ms, 16000, &li);
	assert_false(li.live);
	mcf_members_destroy(ms);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_members_from_lease),
		cmocka_unit_test(test_members_proven_empty),
		cmocka_unit_test(test_members_expiry_margin),
		cmocka_unit_test(test_members_release_and_new_incarnation),
		cmocka_unit_test(test_members_hello),
		cmocka_unit_test(test_members_forget),
		cmocka_unit_test(test_members_leader),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

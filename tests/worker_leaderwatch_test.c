/*
 * worker_leaderwatch_test.c — tests for worker/leaderwatch.c: how a worker
 * reads the coordinator Lease.  Validity follows client-go (expiry counted
 * from when the record was seen to change, never from renewTime), the
 * fleet address and status URL come from annotations, and "gone or
 * expired" for the fencing rule needs a successful read as proof.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "err.h"
#include "leaderwatch.h"

static json_t *
lease(const char *uid, const char *holder, const char *renew, int dur,
    int transitions, const char *addr)
{
	json_t *ann = json_object();
	if (addr != NULL) {
		json_object_set_new(
		    ann, "mcfleet.io/fleet-address", json_string(addr));
		json_object_set_new(ann, "mcfleet.io/status-url",
		    json_string("http://c/status"));
	}
	return json_pack("{s:{s:s,s:s,s:s,s:o},s:{s:s,s:s,s:i,s:i}}",
	    "metadata", "name", "mcfleet-coordinator", "namespace", "ns",
	    "uid", uid, "annotations", ann, "spec", "holderIdentity", holder,
	    "renewTime", renew, "leaseDurationSeconds", dur,
	    "leaseTransitions", transitions);
}

static void
observe(mcf_leaderwatch *lw, json_t *l, int64_t now)
{
	mcf_leaderwatch_observe(lw, MCF_OK, l, now);
	json_decref(l);
}

static void
test_leaderwatch_valid_and_expiry(void **state)
{
	(void) state;
	mcf_leaderwatch     *lw;
	mcf_leaderwatch_view v;
	mcf_leaderwatch_create(&lw);
	mcf_leaderwatch_view_get(lw, 0, &v);
	assert_false(v.read);
	assert_false(v.valid);

	json_t *l = lease("u1", "coord-a", "T1", 15, 2, "tcp://10.0.0.1:7000");
	assert_true(mcf_leaderwatch_observe(lw, MCF_OK, l, 1000));
	json_decref(l);
	mcf_leaderwatch_view_get(lw, 1000, &v);
	assert_true(v.valid);
	assert_string_equal(v.holder, "coord-a");
	assert_string_equal(v.address, "tcp://10.0.0.1:7000");
	assert_string_equal(v.status_url, "http://c/status");
	assert_string_equal(v.uid, "u1");
	assert_int_equal(v.transitions, 2);
	assert_int_equal(v.duration_ms, 15000);

	/* The same record read again does not restart the clock... */
	l = lease("u1", "coord-a", "T1", 15, 2, "tcp://10.0.0.1:7000");
	assert_false(mcf_leaderwatch_observe(lw, MCF_OK, l, 9000));
	json_decref(l);
	mcf_leaderwatch_view_get(lw, 15999, &v);
	assert_true(v.valid);
	mcf_leaderwatch_view_get(lw, 16000, &v);
	assert_false(v.valid);
	/* ...a renewal does. */
	observe(lw, lease("u1", "coord-a", "T2", 15, 2, "tcp://10.0.0.1:7000"),
	    17000);
	mcf_leaderwatch_view_get(lw, 31999, &v);
	assert_true(v.valid);

	/* A failed read changes nothing but the error. */
	assert_false(mcf_leaderwatch_observe(lw, MCF_EUNAVAIL, NULL, 18000));
	mcf_leaderwatch_view_get(lw, 18000, &v);
	assert_true(v.valid);
	assert_int_equal(v.last_err, MCF_EUNAVAIL);
	assert_string_equal(v.holder, "coord-a");

	/* Released: no holder, not valid. */
	observe(lw, lease("u1", "", "T3", 1, 2, "tcp://10.0.0.1:7000"), 19000);
	mcf_leaderwatch_view_get(lw, 19000, &v);
	assert_false(v.valid);
	mcf_leaderwatch_destroy(lw);
}

static void
test_leaderwatch_changes(void **state)
{
	(void) state;
	mcf_leaderwatch *lw;
	mcf_leaderwatch_create(&lw);
	json_t *l = lease("u1", "a", "T1", 15, 0, "tcp://a");
	assert_true(mcf_leaderwatch_observe(lw, MCF_OK, l, 1));
	json_decref(l);
	/* An address change alone is a change (redial); the renewal alone
	 * is not. */
	l = lease("u1", "a", "T2", 15, 0, "tcp://a");
	assert_false(mcf_leaderwatch_observe(lw, MCF_OK, l, 2));
	json_decref(l);
	l = lease("u1", "a", "T2", 15, 0, "tcp://a2");
	assert_true(mcf_leaderwatch_observe(lw, MCF_OK, l, 3));
	json_decref(l);
	l = lease("u1", "b", "T3", 15, 1, "tcp://a2");
	assert_true(mcf_leaderwatch_observe(lw, MCF_OK, l, 4));
	json_decref(l);
	assert_true(mcf_leaderwatch_observe(lw, MCF_ENOENT, NULL, 5));
	assert_false(mcf_leaderwatch_observe(lw, MCF_ENOENT, NULL, 6));
	mcf_leaderwatch_view v;
	mcf_leaderwatch_view_get(lw, 6, &v);
	assert_true(v.read);
	assert_false(v.exists);
	assert_false(v.valid);
	/* Without the annotation there is nowhere to dial. */
	l = lease("u2", "c", "T1", 15, 0, NULL);
	assert_true(mcf_leaderwatch_observe(lw, MCF_OK, l, 7));
	json_decref(l);
	mcf_leaderwatch_view_get(lw, 7, &v);
	assert_true(v.valid);
	assert_string_equal(v.address, "");
	mcf_leaderwatch_destroy(lw);
}

static void
test_leaderwatch_gone_needs_proof(void **state)
{
	(void) state;
	mcf_leaderwatch *lw;
	mcf_leaderwatch_create(&lw);
	/* Nothing read: nothing proved. */
	assert_false(mcf_leaderwatch_gone(lw, "u1"));
	assert_false(mcf_leaderwatch_gone(lw, ""));

	observe(lw, lease("u1", "a", "T1", 10, 4, "tcp://a"), 1000);
	assert_false(mcf_leaderwatch_gone(lw, "u1"));
	/* Reads keep failing long after the expiry: still no proof. */
	mcf_leaderwatch_observe(lw, MCF_ETIMEDOUT, NULL, 60000);
	assert_false(mcf_leaderwatch_gone(lw, "u1"));
	/* A read after the expiry that sees the same record: expired. */
	observe(lw, lease("u1", "a", "T1", 10, 4, "tcp://a"), 11000);
	assert_true(mcf_leaderwatch_gone(lw, "u1"));
	/* Renewed: not any more. */
	observe(lw, lease("u1", "a", "T2", 10, 4, "tcp://a"), 12000);
	assert_false(mcf_leaderwatch_gone(lw, "u1"));
	/* Another uid now: the Lease of u1 is gone. */
	observe(lw, lease("u2", "b", "T1", 10, 0, "tcp://b"), 13000);
	assert_true(mcf_leaderwatch_gone(lw, "u1"));
	assert_false(mcf_leaderwatch_gone(lw, "u2"));
	/* Released (no holder): u2 is expired at once. */
	observe(lw, lease("u2", "", "T2", 1, 0, "tcp://b"), 14000);
	assert_true(mcf_leaderwatch_gone(lw, "u2"));
	/* Deleted: gone. */
	mcf_leaderwatch_observe(lw, MCF_ENOENT, NULL, 15000);
	assert_true(mcf_leaderwatch_gone(lw, "u2"));
	mcf_leaderwatch_destroy(lw);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_leaderwatch_valid_and_expiry),
		cmocka_unit_test(test_leaderwatch_changes),
		cmocka_unit_test(test_leaderwatch_gone_needs_proof),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

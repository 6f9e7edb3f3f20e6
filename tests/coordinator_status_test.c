/*
 * coordinator_status_test.c — tests for coordinator/status.c: the /status
 * document's shape (issue 5 §4): role, leader {identity, term, address,
 * status_url}, workers with every field, projects with owner (a string or
 * null), state, reason, since; RFC 3339 UTC times; sorted lists; a
 * standby that lists no projects; the rebalance counters.
 */
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <jansson.h>

#include "status.h"

static void
assert_rfc3339(const json_t *v)
{
	assert_true(json_is_string(v));
	regex_t re;
	assert_int_equal(regcomp(&re,
	                     "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:"
	                     "[0-9]{2}(\\.[0-9]+)?Z$",
	                     REG_EXTENDED | REG_NOSUB),
	    0);
	assert_int_equal(regexec(&re, json_string_value(v), 0, NULL, 0), 0);
	regfree(&re);
}

static const mcf_status_worker workers[] = {
	{ "mcfleet-worker-1", "bbbb", 2, "active", 1, 1700000000123,
	    "tcp://127.0.0.1:5000", "http://127.0.0.1:9001/status", true },
	{ "mcfleet-worker-0", "aaaa", 1, "joining", 0, 0, "", "", false },
};

static const mcf_status_project projects[] = {
	{ "p2", NULL, "pending", "no live worker", 1700000000000, NULL },
	{ "p1", "mcfleet-worker-1", "synced", "", 1700000001000,
	    "mcfleet-worker-1" },
};

static const char *const held[] = { "mcfleet-worker-0" };

static mcf_status_view
view(bool leading)
{
	static const mcf_status_leader l = { "coord-a_1234", "uid-1", 3,
		"tcp://10.0.0.5:7400", "http://10.0.0.5:8080/status" };
	mcf_status_view                v = {
		               .leading = leading,
		               .identity = leading ? "coord-a_1234" : "coord-b_5678",
		               .mode      = "external",
		               .ready     = true,
		               .leader    = &l,
		               .workers   = workers,
		               .nworkers  = 2,
		               .projects  = projects,
		               .nprojects = 2,
		               .held_for  = held,
		               .nheld_for = 1,
		               .counters  = { .handoffs   = 4,
		                    .worker_failovers     = 1,
		                    .projects_failed_over = 7,
		                    .leader_acquisitions  = 2,
		                    .engages              = 40,
		                    .disengages           = 9,
		                    .engages_in_flight    = 3,
		                    .moving               = 1,
		                    .table_version        = 77 },
	};
	return v;
}

static void
test_status_time(void **state)
{
	(void) state;
	char buf[MCF_STATUS_TIME_LEN];
	assert_string_equal(
	    mcf_status_time(0, buf), "1970-01-01T00:00:00.000Z");
	assert_string_equal(
	    mcf_status_time(1700000000123, buf), "2023-11-14T22:13:20.123Z");
}

static void
test_status_leader_shape(void **state)
{
	(void) state;
	mcf_status_view v   = view(true);
	json_t         *doc = mcf_status_build(&v);
	assert_string_equal(
	    json_string_value(json_object_get(doc, "role")), "leader");
	assert_string_equal(
	    json_string_value(json_object_get(doc, "identity")),
	    "coord-a_1234");
	assert_true(json_is_true(json_object_get(doc, "ready")));

	json_t *l = json_object_get(doc, "leader");
	assert_true(json_is_object(l));
	assert_string_equal(
	    json_string_value(json_object_get(l, "identity")), "coord-a_1234");
	json_t *t = json_object_get(l, "term");
	assert_string_equal(
	    json_string_value(json_object_get(t, "uid")), "uid-1");
	assert_int_equal(
	    json_integer_value(json_object_get(t, "transitions")), 3);
	assert_string_equal(json_string_value(json_object_get(l, "address")),
	    "tcp://10.0.0.5:7400");
	assert_string_equal(
	    json_string_value(json_object_get(l, "status_url")),
	    "http://10.0.0.5:8080/status");

	/* Workers: sorted by name, every field with its type. */
	json_t *ws = json_object_get(doc, "workers");
	assert_int_equal(json_array_size(ws), 2);
	json_t *w0 = json_array_get(ws, 0), *w1 = json_array_get(ws, 1);
	assert_string_equal(json_string_value(json_object_get(w0, "name")),
	    "mcfleet-worker-0");
	assert_string_equal(
	    json_string_value(json_object_get(w0, "state")), "joining");
	assert_true(json_is_null(json_object_get(w0, "last_heartbeat")));
	assert_string_equal(
	    json_string_value(json_object_get(w1, "incarnation")), "bbbb");
	assert_int_equal(json_integer_value(json_object_get(w1, "weight")), 2);
	assert_int_equal(
	    json_integer_value(json_object_get(w1, "projects")), 1);
	assert_rfc3339(json_object_get(w1, "last_heartbeat"));
	assert_string_equal(
	    json_string_value(json_object_get(w1, "last_heartbeat")),
	    "2023-11-14T22:13:20.123Z");
	assert_true(json_is_true(json_object_get(w1, "connected")));
	assert_true(json_is_string(json_object_get(w1, "status_url")));
	assert_true(json_is_string(json_object_get(w1, "address")));

	/* Projects: sorted, owner a string or null. */
	json_t *ps = json_object_get(doc, "projects");
	assert_int_equal(json_array_size(ps), 2);
	json_t *p1 = json_array_get(ps, 0), *p2 = json_array_get(ps, 1);
	assert_string_equal(
	    json_string_value(json_object_get(p1, "name")), "p1");
	assert_string_equal(json_string_value(json_object_get(p1, "owner")),
	    "mcfleet-worker-1");
	assert_string_equal(
	    json_string_value(json_object_get(p1, "state")), "synced");
	assert_string_equal(
	    json_string_value(json_object_get(p1, "reason")), "");
	assert_rfc3339(json_object_get(p1, "since"));
	assert_true(json_is_null(json_object_get(p2, "owner")));
	assert_string_equal(
	    json_string_value(json_object_get(p2, "state")), "pending");
	assert_string_equal(json_string_value(json_object_get(p2, "reason")),
	    "no live worker");

	json_t *hf = json_object_get(doc, "engages_held_for");
	assert_int_equal(json_array_size(hf), 1);
	json_t *r = json_object_get(doc, "rebalance");
	assert_int_equal(
	    json_integer_value(json_object_get(r, "handoffs")), 4);
	assert_int_equal(
	    json_integer_value(json_object_get(r, "worker_failovers")), 1);
	assert_int_equal(
	    json_integer_value(json_object_get(r, "projects_failed_over")), 7);
	assert_int_equal(
	    json_integer_value(json_object_get(r, "leader_acquisitions")), 2);
	assert_int_equal(
	    json_integer_value(json_object_get(r, "engages")), 40);
	assert_int_equal(
	    json_integer_value(json_object_get(r, "disengages")), 9);
	assert_int_equal(
	    json_integer_value(json_object_get(r, "table_version")), 77);
	json_decref(doc);
}

static void
test_status_standby_lists_no_projects(void **state)
{
	(void) state;
	mcf_status_view v   = view(false);
	json_t         *doc = mcf_status_build(&v);
	assert_string_equal(
	    json_string_value(json_object_get(doc, "role")), "standby");
	json_t *ps = json_object_get(doc, "projects");
	assert_true(json_is_array(ps));
	assert_int_equal(json_array_size(ps), 0);
	/* It names the leader and its status URL (mcfleetctl follows). */
	json_t *l = json_object_get(doc, "leader");
	assert_string_equal(
	    json_string_value(json_object_get(l, "identity")), "coord-a_1234");
	assert_string_equal(
	    json_string_value(json_object_get(l, "status_url")),
	    "http://10.0.0.5:8080/status");
	json_decref(doc);

	/* No leader known: null. */
	v.leader = NULL;
	doc      = mcf_status_build(&v);
	assert_true(json_is_null(json_object_get(doc, "leader")));
	json_decref(doc);
}

static void
test_status_empty(void **state)
{
	(void) state;
	mcf_status_view v
	    = { .leading = true, .identity = "c", .mode = "internal" };
	json_t *doc = mcf_status_build(&v);
	assert_int_equal(json_array_size(json_object_get(doc, "workers")), 0);
	assert_int_equal(json_array_size(json_object_get(doc, "projects")), 0);
	assert_false(json_is_true(json_object_get(doc, "ready")));
	assert_string_equal(
	    json_string_value(json_object_get(doc, "mode")), "internal");
	char *txt = json_dumps(doc, 0);
	assert_non_null(txt);
	free(txt);
	json_decref(doc);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_status_time),
		cmocka_unit_test(test_status_leader_shape),
		cmocka_unit_test(test_status_standby_lists_no_projects),
		cmocka_unit_test(test_status_empty),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

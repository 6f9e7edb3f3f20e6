/*
 * worker_shard_test.c — tests for worker/shard.c, the assignment table a
 * fleet worker applies: snapshots (desired set, endpoint changes,
 * duplicates), deltas (base and term checks, gaps, ignoring until the next
 * snapshot, idempotent disengage), the fencing rule as the worker applies
 * it, state reports (full and partial), STOPPED repeats, failed engages
 * and their retry, clearing at the end of a drain, and the status JSON.
 *
 * The callbacks are a recorder with fake clocks: no network.
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

#include "alloc.h"
#include "err.h"
#include "shard.h"

/* ---- the recorder ---- */

#define MAXP 64

typedef struct fake {
	char    log[8192]; /* "+a@E -b ..." */
	char    running[MAXP][32];
	char    endpoint[MAXP][64];
	int     state[MAXP]; /* enum mcf_proto_pstate */
	size_t  n;
	int64_t wall, mono;
	char    fail_engage[32]; /* engage of this name fails */
	int     synced_calls;
} fake;

static ssize_t
fake_find(fake *f, const char *name)
{
	for (size_t i = 0; i < f->n; i++)
		if (strcmp(f->running[i], name) == 0)
			return (ssize_t) i;
	return -1;
}

static void
logf_(fake *f, const char *fmt, ...)
{
	size_t  len = strlen(f->log);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(f->log + len, sizeof(f->log) - len, fmt, ap);
	va_end(ap);
}

static int
f_engage(void *arg, const char *name, const char *ep, mcf_errinfo *ei)
{
	fake *f = arg;
	if (strcmp(f->fail_engage, name) == 0) {
		logf_(f, "!%s ", name);
		return mcf_errinfo_set(ei, MCF_EINVAL, "bad endpoint %s", ep);
	}
	assert_true(fake_find(f, name) < 0); /* never engaged twice */
	logf_(f, "+%s@%s ", name, ep);
	snprintf(f->running[f->n], 32, "%s", name);
	snprintf(f->endpoint[f->n], 64, "%s", ep);
	f->state[f->n] = MCF_PROTO_PSTATE_ENGAGING;
	f->n++;
	return MCF_OK;
}

static void
f_disengage(void *arg, const char *name)
{
	fake   *f = arg;
	ssize_t i = fake_find(f, name);
	assert_true(i >= 0); /* never stopped when not running */
	logf_(f, "-%s ", name);
	f->n--;
	memmove(f->running[i], f->running[f->n], 32);
	memmove(f->endpoint[i], f->endpoint[f->n], 64);
	f->state[i] = f->state[f->n];
}

static int
f_status(void *arg, const char *name, mcf_shard_pstatus *out)
{
	fake   *f = arg;
	ssize_t i = fake_find(f, name);
	if (i < 0)
		return MCF_ENOENT;
	out->state = f->state[i];
	snprintf(out->reason, sizeof(out->reason), "%s",
	    f->state[i] == MCF_PROTO_PSTATE_FAILING ? "plane unavailable"
	                                            : "");
	out->objects = 7;
	return MCF_OK;
}

static int64_t
f_wall(void *arg)
{
	return ((fake *) arg)->wall;
}

static int64_t
f_mono(void *arg)
{
	return ((fake *) arg)->mono;
}

static void
f_synced(void *arg, const char *name, int64_t ms)
{
	(void) name;
	(void) ms;
	((fake *) arg)->synced_calls++;
}

static void
set_state(fake *f, const char *name, int st)
{
	ssize_t i = fake_find(f, name);
	assert_true(i >= 0);
	f->state[i] = st;
}

static mcf_shard *
shard_new(fake *f)
{
	memset(f, 0, sizeof(*f));
	f->wall = 1700000000000;
	f->mono = 1000;
	mcf_shard_ops ops
	    = { f_engage, f_disengage, f_status, f_wall, f_mono, f_synced, f };
	mcf_shard *sh = NULL;
	assert_int_equal(mcf_shard_create(&ops, &sh), MCF_OK);
	return sh;
}

static void
log_is(fake *f, const char *want)
{
	if (strcmp(f->log, want) != 0)
		fail_msg("calls: got \"%s\", want \"%s\"", f->log, want);
	f->log[0] = '\0';
}

static mcf_proto_term
term(const char *uid, int64_t tr)
{
	mcf_proto_term t;
	mcf_proto_term_set(&t, uid, tr);
	return t;
}

/* A snapshot from "name=endpoint" words (endpoint "E" + name if omitted). */
static void
snapshot(mcf_shard *sh, mcf_proto_term t, uint64_t version,
    const char *const *names)
{
	mcf_proto_assignment a[MAXP];
	char                 ep[MAXP][64];
	char                 nm[MAXP][32];
	size_t               n = 0;
	for (; names[n] != NULL; n++) {
		const char *eq = strchr(names[n], '=');
		if (eq != NULL) {
			snprintf(nm[n], 32, "%.*s", (int) (eq - names[n]),
			    names[n]);
			snprintf(ep[n], 64, "%s", eq + 1);
		} else {
			snprintf(nm[n], 32, "%s", names[n]);
			snprintf(ep[n], 64, "E%s", names[n]);
		}
		a[n].name     = nm[n];
		a[n].endpoint = ep[n];
	}
	mcf_proto_snapshot s = { t, version, a, n };
	mcf_shard_apply_snapshot(sh, &s);
}

static enum mcf_shard_apply
delta(mcf_shard *sh, mcf_proto_term t, uint64_t base, uint64_t version,
    const char *const *engage, const char *const *disengage, char *why)
{
	mcf_proto_assignment a[MAXP];
	char                 ep[MAXP][64];
	size_t               ne = 0, nd = 0;
	for (; engage != NULL && engage[ne] != NULL; ne++) {
		snprintf(ep[ne], 64, "E%s", engage[ne]);
		a[ne].name     = (char *) engage[ne];
		a[ne].endpoint = ep[ne];
	}
	while (disengage != NULL && disengage[nd] != NULL)
		nd++;
	mcf_proto_delta d
	    = { t, version, base, a, ne, (char **) disengage, nd };
	return mcf_shard_apply_delta(sh, &d, why, why ? 200 : 0);
}

/* "a:synced b:stopped" from a report list, in order. */
static void
reports_are(mcf_shard *sh, bool full, const char *want)
{
	mcf_proto_report *r         = NULL;
	size_t            n         = 0;
	char              got[2048] = "";
	mcf_shard_reports(sh, full, &r, &n);
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(got);
		snprintf(got + len, sizeof(got) - len, "%s%s:%s", i ? " " : "",
		    r[i].name, mcf_proto_pstate_name(r[i].state));
		assert_true(r[i].since_ms > 0);
	}
	mcf_shard_reports_free(r, n);
	if (strcmp(got, want) != 0)
		fail_msg("reports: got \"%s\", want \"%s\"", got, want);
}

static void
stopped_are(mcf_shard *sh, const char *want)
{
	char **names     = NULL;
	size_t n         = 0;
	char   got[1024] = "";
	mcf_shard_stopped_due(sh, &names, &n);
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(got);
		snprintf(got + len, sizeof(got) - len, "%s%s", i ? " " : "",
		    names[i]);
	}
	mcf_shard_names_free(names);
	if (strcmp(got, want) != 0)
		fail_msg("STOPPED: got \"%s\", want \"%s\"", got, want);
}

/* ---- tests ---- */

static void
test_shard_snapshot_desired_set(void **state)
{
	(void) state;
	fake           f;
	mcf_shard     *sh = shard_new(&f);
	mcf_proto_term t  = term("uid-1", 3);

	snapshot(sh, t, 10, (const char *[]) { "b", "a", "c", NULL });
	log_is(&f, "+a@Ea +b@Eb +c@Ec ");
	mcf_proto_term at;
	uint64_t       v;
	mcf_shard_applied(sh, &at, &v);
	assert_string_equal(at.uid, "uid-1");
	assert_int_equal(at.transitions, 3);
	assert_int_equal(v, 10);
	assert_int_equal(mcf_shard_count(sh), 3);

	/* Keep a and c untouched, stop b, start d, move c nowhere. */
	snapshot(sh, t, 11, (const char *[]) { "c", "d", "a", NULL });
	log_is(&f, "-b +d@Ed ");
	assert_int_equal(mcf_shard_count(sh), 3);

	/* Endpoint change restarts in place, without a STOPPED. */
	stopped_are(sh, "b");
	snapshot(sh, t, 12, (const char *[]) { "a", "c=Enew", "d", NULL });
	log_is(&f, "-c +c@Enew ");
	stopped_are(sh, "");

	/* Duplicates: the first entry wins. */
	snapshot(sh, t, 13,
	    (const char *[]) { "a", "c=Enew", "d=X1", "d=X2", NULL });
	log_is(&f, "-d +d@X1 ");

	/* An empty snapshot stops everything and queues every STOPPED. */
	snapshot(sh, t, 14, (const char *[]) { NULL });
	log_is(&f, "-a -c -d ");
	assert_int_equal(mcf_shard_count(sh), 0);
	stopped_are(sh, "a c d");
	mcf_shard_destroy(sh);
}

static void
test_shard_delta_applies_on_base(void **state)
{
	(void) state;
	fake           f;
	mcf_shard     *sh = shard_new(&f);
	mcf_proto_term t  = term("uid-1", 3);
	char           why[200];

	snapshot(sh, t, 5, (const char *[]) { "a", "b", NULL });
	log_is(&f, "+a@Ea +b@Eb ");
	reports_are(sh, true, "a:engaging b:engaging");

	assert_int_equal(
	    delta(sh, t, 5, 7, (const char *[]) { "c", "a", NULL },
	        (const char *[]) { "b", NULL }, why),
	    MCF_SHARD_APPLIED);
	/* Disengages before engages; a (already running) is not touched. */
	log_is(&f, "-b +c@Ec ");
	uint64_t v;
	mcf_shard_applied(sh, NULL, &v);
	assert_int_equal(v, 7);
	/* The partial report: the listed ones and the stop. */
	reports_are(sh, false, "a:engaging c:engaging b:stopped");
	reports_are(sh, false, "");
	stopped_are(sh, "b");

	/* Disengaging a project not running still confirms it. */
	assert_int_equal(
	    delta(sh, t, 7, 8, NULL, (const char *[]) { "zz", NULL }, why),
	    MCF_SHARD_APPLIED);
	log_is(&f, "");
	stopped_are(sh, "b zz");
	reports_are(sh, false, "zz:stopped");

	/* Same name in engage and disengage of one delta: stop then run. */
	assert_int_equal(delta(sh, t, 8, 9, (const char *[]) { "a", NULL },
	                     (const char *[]) { "a", NULL }, why),
	    MCF_SHARD_APPLIED);
	log_is(&f, "-a +a@Ea ");
	mcf_shard_destroy(sh);
}

static void
test_shard_delta_gap_then_snapshot(void **state)
{
	(void) state;
	fake           f;
	mcf_shard     *sh       = shard_new(&f);
	mcf_proto_term t        = term("uid-1", 3);
	char           why[200] = "";

	snapshot(sh, t, 16, (const char *[]) { "a", NULL });
	log_is(&f, "+a@Ea ");
	/* A lost delta (16→17) shows as base 17 at applied 16. */
	assert_int_equal(
	    delta(sh, t, 17, 18, (const char *[]) { "b", NULL }, NULL, why),
	    MCF_SHARD_GAP);
	assert_string_equal(why, "delta base 17, applied 16");
	assert_true(mcf_shard_resync_pending(sh));
	/* Later deltas are ignored, even one that would fit. */
	assert_int_equal(
	    delta(sh, t, 16, 17, (const char *[]) { "c", NULL }, NULL, why),
	    MCF_SHARD_IGNORED);
	log_is(&f, "");
	snapshot(sh, t, 20, (const char *[]) { "a", "b", NULL });
	log_is(&f, "+b@Eb ");
	assert_false(mcf_shard_resync_pending(sh));
	assert_int_equal(
	    delta(sh, t, 20, 21, (const char *[]) { "c", NULL }, NULL, why),
	    MCF_SHARD_APPLIED);
	log_is(&f, "+c@Ec ");

	/* A delta of another term never applies, even with a matching
	 * base: a new term starts with a snapshot. */
	mcf_proto_term t2 = term("uid-1", 4);
	assert_int_equal(
	    delta(sh, t2, 21, 22, (const char *[]) { "d", NULL }, NULL, why),
	    MCF_SHARD_GAP);
	assert_non_null(strstr(why, "delta of term uid-1/4"));
	log_is(&f, "");
	mcf_shard_destroy(sh);
}

static void
test_shard_term_rule(void **state)
{
	(void) state;
	fake       f;
	mcf_shard *sh = shard_new(&f);
	assert_false(mcf_proto_term_is_set(mcf_shard_term_seen(sh)));

	mcf_proto_term a3 = term("uid-a", 3), a2 = term("uid-a", 2);
	mcf_proto_term a4 = term("uid-a", 4), b0 = term("uid-b", 0);
	/* Nothing seen: anything goes. */
	assert_true(mcf_shard_term_accept(sh, &a3, false));
	assert_string_equal(mcf_shard_term_seen(sh)->uid, "uid-a");
	/* Lower refused, whatever the observation says. */
	assert_int_equal(mcf_shard_term_order(sh, &a2), MCF_PROTO_TERM_LOWER);
	assert_false(mcf_shard_term_accept(sh, &a2, true));
	assert_int_equal(mcf_shard_term_seen(sh)->transitions, 3);
	/* Equal accepted, higher accepted and remembered. */
	assert_true(mcf_shard_term_accept(sh, &a3, false));
	assert_true(mcf_shard_term_accept(sh, &a4, false));
	assert_int_equal(mcf_shard_term_seen(sh)->transitions, 4);
	assert_false(mcf_shard_term_accept(sh, &a3, false));
	/* Another uid only once the old Lease is gone or expired. */
	assert_int_equal(
	    mcf_shard_term_order(sh, &b0), MCF_PROTO_TERM_OTHER_LEASE);
	assert_false(mcf_shard_term_accept(sh, &b0, false));
	assert_string_equal(mcf_shard_term_seen(sh)->uid, "uid-a");
	assert_true(mcf_shard_term_accept(sh, &b0, true));
	assert_string_equal(mcf_shard_term_seen(sh)->uid, "uid-b");
	assert_int_equal(mcf_shard_term_seen(sh)->transitions, 0);
	/* And now the old uid is the other one. */
	assert_false(mcf_shard_term_accept(sh, &a4, false));
	mcf_shard_destroy(sh);
}

static void
test_shard_state_reports(void **state)
{
	(void) state;
	fake           f;
	mcf_shard     *sh = shard_new(&f);
	mcf_proto_term t  = term("uid-1", 1);

	snapshot(sh, t, 1, (const char *[]) { "a", "b", "c", NULL });
	reports_are(sh, true, "a:engaging b:engaging c:engaging");
	/* Nothing changed: no changes, an empty partial report. */
	assert_false(mcf_shard_poll(sh));
	reports_are(sh, false, "");

	set_state(&f, "a", MCF_PROTO_PSTATE_SYNCED);
	set_state(&f, "c", MCF_PROTO_PSTATE_FAILING);
	f.wall += 5000;
	f.mono += 5000;
	assert_true(mcf_shard_poll(sh));
	assert_int_equal(f.synced_calls, 1);
	assert_true(mcf_shard_has_changes(sh));
	reports_are(sh, false, "a:synced c:failing");
	assert_false(mcf_shard_has_changes(sh));

	/* The same state again is not a change; a reason alone is not. */
	assert_false(mcf_shard_poll(sh));
	/* A full report lists all, and clears marks. */
	set_state(&f, "b", MCF_PROTO_PSTATE_SYNCED);
	assert_true(mcf_shard_poll(sh));
	reports_are(sh, true, "a:synced b:synced c:failing");
	reports_are(sh, false, "");
	assert_int_equal(f.synced_calls, 2);

	size_t e, s, fl;
	mcf_shard_state_counts(sh, &e, &s, &fl);
	assert_int_equal(e, 0);
	assert_int_equal(s, 2);
	assert_int_equal(fl, 1);

	/* Status JSON: sorted, with RFC 3339 since and the reason. */
	json_t *j = mcf_shard_status_json(sh);
	assert_int_equal(json_array_size(j), 3);
	json_t *c = json_array_get(j, 2);
	assert_string_equal(
	    json_string_value(json_object_get(c, "name")), "c");
	assert_string_equal(
	    json_string_value(json_object_get(c, "state")), "failing");
	assert_string_equal(json_string_value(json_object_get(c, "reason")),
	    "plane unavailable");
	assert_string_equal(json_string_value(json_object_get(c, "since")),
	    "2023-11-14T22:13:25.000Z");
	assert_int_equal(json_integer_value(json_object_get(c, "objects")), 7);
	json_decref(j);
	mcf_shard_destroy(sh);
}

static void
test_shard_stopped_repeats(void **state)
{
	(void) state;
	fake           f;
	mcf_shard     *sh = shard_new(&f);
	mcf_proto_term t  = term("uid-1", 1);

	snapshot(sh, t, 1, (const char *[]) { "a", "b", "c", NULL });
	reports_are(sh, true, "a:engaging b:engaging c:engaging");
	delta(sh, t, 1, 2, NULL, (const char *[]) { "a", NULL }, NULL);
	assert_true(mcf_shard_stopped_owed(sh));
	/* Handed out MCF_SHARD_STOPPED_SENDS times, then settled once the
	 * ACK also reported it. */
	stopped_are(sh, "a");
	assert_false(mcf_shard_stopped_owed(sh));
	delta(sh, t, 2, 3, NULL, (const char *[]) { "b", NULL }, NULL);
	stopped_are(sh, "a b");
	stopped_are(sh, "a b");
	stopped_are(sh, "b");
	reports_are(sh, false, "a:stopped b:stopped");
	stopped_are(sh, "");

	/* Engaging it again forgets the debt. */
	delta(sh, t, 3, 4, NULL, (const char *[]) { "c", NULL }, NULL);
	delta(sh, t, 4, 5, (const char *[]) { "c", NULL }, NULL, NULL);
	stopped_are(sh, "");

	/* A snapshot settles older debts (its full ACK says it) and owes
	 * the ones it stops itself. */
	delta(sh, t, 5, 6, NULL, (const char *[]) { "x", NULL }, NULL);
	snapshot(sh, t, 7, (const char *[]) { NULL });
	stopped_are(sh, "c");
	mcf_shard_destroy(sh);
}

static void
test_shard_engage_failure_retried(void **state)
{
	(void) state;
	fake           f;
	mcf_shard     *sh = shard_new(&f);
	mcf_proto_term t  = term("uid-1", 1);

	snprintf(f.fail_engage, sizeof(f.fail_engage), "bad");
	snapshot(sh, t, 1, (const char *[]) { "ok", "bad", NULL });
	log_is(&f, "!bad +ok@Eok ");
	mcf_proto_report *r = NULL;
	size_t            n = 0;
	mcf_shard_reports(sh, true, &r, &n);
	assert_int_equal(n, 2);
	assert_string_equal(r[0].name, "bad");
	assert_int_equal(r[0].state, MCF_PROTO_PSTATE_FAILING);
	assert_string_equal(r[0].reason, "engage: bad endpoint Ebad");
	mcf_shard_reports_free(r, n);

	/* Not retried before its time, then retried. */
	f.mono += MCF_SHARD_ENGAGE_RETRY_MS - 1;
	mcf_shard_poll(sh);
	log_is(&f, "");
	f.mono += 1;
	f.fail_engage[0] = '\0';
	assert_true(mcf_shard_poll(sh));
	log_is(&f, "+bad@Ebad ");
	reports_are(sh, false, "bad:engaging");

	/* Stopping a project whose engage failed calls no disengage. */
	snprintf(f.fail_engage, sizeof(f.fail_engage), "bad2");
	delta(sh, t, 1, 2, (const char *[]) { "bad2", NULL }, NULL, NULL);
	log_is(&f, "!bad2 ");
	delta(sh, t, 2, 3, NULL, (const char *[]) { "bad2", NULL }, NULL);
	log_is(&f, "");
	stopped_are(sh, "bad2");
	mcf_shard_destroy(sh);
}

static void
test_shard_clear(void **state)
{
	(void) state;
	fake           f;
	mcf_shard     *sh = shard_new(&f);
	mcf_proto_term t  = term("uid-1", 1);
	snapshot(sh, t, 1, (const char *[]) { "a", "b", NULL });
	log_is(&f, "+a@Ea +b@Eb ");
	mcf_shard_clear(sh);
	log_is(&f, "-b -a ");
	assert_int_equal(mcf_shard_count(sh), 0);
	stopped_are(sh, "b a");
	/* The applied table stays (HELLO reports it). */
	uint64_t v;
	mcf_shard_applied(sh, NULL, &v);
	assert_int_equal(v, 1);
	mcf_shard_destroy(sh);
}

/* Counting callbacks for the large test. */
typedef struct counter {
	size_t  up, down, running;
	int64_t clock;
} counter;

static int
c_engage(void *arg, const char *name, const char *ep, mcf_errinfo *ei)
{
	(void) name;
	(void) ep;
	(void) ei;
	counter *c = arg;
	c->up++;
	c->running++;
	return MCF_OK;
}

static void
c_disengage(void *arg, const char *name)
{
	(void) name;
	counter *c = arg;
	c->down++;
	c->running--;
}

static int
c_status(void *arg, const char *name, mcf_shard_pstatus *out)
{
	(void) arg;
	(void) name;
	out->state = MCF_PROTO_PSTATE_SYNCED;
	return MCF_OK;
}

static int64_t
c_clock(void *arg)
{
	return ++((counter *) arg)->clock;
}

static void
test_shard_many(void **state)
{
	(void) state;
	counter       c = { 0 };
	mcf_shard_ops ops
	    = { c_engage, c_disengage, c_status, c_clock, c_clock, NULL, &c };
	mcf_shard *sh = NULL;
	assert_int_equal(mcf_shard_create(&ops, &sh), MCF_OK);
	/* 3000 projects in scrambled order, then a snapshot keeping every
	 * other one plus 1000 new ones. */
	size_t                n = 3000;
	mcf_proto_assignment *a = mcf_calloc(2 * n, sizeof(*a));
	for (size_t i = 0; i < 2 * n; i++) {
		a[i].name     = mcf_asprintf("p%05zu", (i * 7919) % (2 * n));
		a[i].endpoint = mcf_strdup("http://x");
	}
	mcf_proto_snapshot s = { term("uid-1", 1), 1, a, n };
	mcf_shard_apply_snapshot(sh, &s);
	assert_int_equal(c.up, n);
	assert_int_equal(mcf_shard_count(sh), n);
	/* Keep the first half of the array, add 1000 of the other half. */
	mcf_proto_snapshot s2
	    = { term("uid-1", 1), 2, a + n / 2, n / 2 + 1000 };
	mcf_shard_apply_snapshot(sh, &s2);
	assert_int_equal(mcf_shard_count(sh), n / 2 + 1000);
	assert_int_equal(c.running, n / 2 + 1000);
	assert_int_equal(c.down, n / 2);
	assert_int_equal(c.up, n + 1000);
	assert_true(mcf_shard_poll(sh));
	mcf_proto_report *r  = NULL;
	size_t            nr = 0;
	mcf_shard_reports(sh, true, &r, &nr);
	assert_int_equal(nr, n / 2 + 1000);
	for (size_t i = 1; i < nr; i++)
		assert_true(strcmp(r[i - 1].name, r[i].name) < 0);
	mcf_shard_reports_free(r, nr);
	mcf_shard_clear(sh);
	assert_int_equal(c.running, 0);
	mcf_shard_destroy(sh);
	for (size_t i = 0; i < 2 * n; i++) {
		free(a[i].name);
		free(a[i].endpoint);
	}
	free(a);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_shard_snapshot_desired_set),
		cmocka_unit_test(test_shard_delta_applies_on_base),
		cmocka_unit_test(test_shard_delta_gap_then_snapshot),
		cmocka_unit_test(test_shard_term_rule),
		cmocka_unit_test(test_shard_state_reports),
		cmocka_unit_test(test_shard_stopped_repeats),
		cmocka_unit_test(test_shard_engage_failure_retried),
		cmocka_unit_test(test_shard_clear),
		cmocka_unit_test(test_shard_many),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

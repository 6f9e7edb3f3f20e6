/*
 * coordinator_provider_test.c — tests for coordinator/provider.c, the
 * Milo provider's pure rules: reading the Ready / ControlPlaneReady
 * condition and the deletionTimestamp, engageability, the disengage grace
 * (absorbing a flap, ending at the deadline, zero grace, deletion and
 * disappearance at once), endpoints in both modes, template and mode
 * parsing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <jansson.h>

#include "provider.h"

static json_t *
project(const char *name, const char *cond_type, const char *status,
    const char *reason, bool deleting)
{
	json_t *o = json_pack("{s:s, s:s, s:{s:s}}", "apiVersion",
	    "resourcemanager.miloapis.com/v1alpha1", "kind", "Project",
	    "metadata", "name", name);
	if (deleting)
		json_object_set_new(json_object_get(o, "metadata"),
		    "deletionTimestamp", json_string("2026-01-01T00:00:00Z"));
	if (cond_type != NULL)
		json_object_set_new(o, "status",
		    json_pack("{s:[{s:s, s:s, s:s, s:s, s:s}]}", "conditions",
		        "type", cond_type, "status", status, "reason", reason,
		        "message", "m", "lastTransitionTime",
		        "2026-01-01T00:00:00Z"));
	return o;
}

static const mcf_provider_cfg ext = {
	.mode        = MCF_PROVIDER_EXTERNAL,
	.core_server = "http://127.0.0.1:6443/",
	.grace_ms    = 30000,
};

static void
apply(const mcf_provider_cfg *cfg, mcf_provider_state *st, json_t *obj,
    int64_t now, bool want_changed)
{
	mcf_provider_obs obs;
	mcf_provider_observe(cfg, obj, &obs);
	assert_int_equal(mcf_provider_apply(cfg, st, &obs, now), want_changed);
	json_decref(obj);
}

static void
test_provider_observe(void **state)
{
	(void) state;
	mcf_provider_obs obs;
	json_t          *o = project("p1", "Ready", "True", "Ready", false);
	mcf_provider_observe(&ext, o, &obs);
	assert_true(obs.exists);
	assert_false(obs.deleting);
	assert_int_equal(obs.cond, MCF_PROVIDER_COND_TRUE);
	assert_string_equal(obs.reason, "Ready");
	json_decref(o);

	o = project("p1", "Ready", "False", "Provisioning", true);
	mcf_provider_observe(&ext, o, &obs);
	assert_true(obs.deleting);
	assert_int_equal(obs.cond, MCF_PROVIDER_COND_FALSE);
	json_decref(o);

	o = project("p1", "Ready", "Unknown", "Unknown", false);
	mcf_provider_observe(&ext, o, &obs);
	assert_int_equal(obs.cond, MCF_PROVIDER_COND_UNKNOWN);
	json_decref(o);

	/* No status at all (a fresh Project), or another condition only. */
	o = project("p1", NULL, NULL, NULL, false);
	mcf_provider_observe(&ext, o, &obs);
	assert_int_equal(obs.cond, MCF_PROVIDER_COND_ABSENT);
	json_decref(o);
	o = project("p1", "ResourceCleanup", "True", "CleanupStarted", false);
	mcf_provider_observe(&ext, o, &obs);
	assert_int_equal(obs.cond, MCF_PROVIDER_COND_ABSENT);
	json_decref(o);

	/* Internal mode reads ControlPlaneReady, not Ready. */
	mcf_provider_cfg in = { .mode = MCF_PROVIDER_INTERNAL };
	o                   = project("p1", "Ready", "True", "Ready", false);
	mcf_provider_observe(&in, o, &obs);
	assert_int_equal(obs.cond, MCF_PROVIDER_COND_ABSENT);
	json_decref(o);
	o = project("p1", "ControlPlaneReady", "True", "Ready", false);
	mcf_provider_observe(&in, o, &obs);
	assert_int_equal(obs.cond, MCF_PROVIDER_COND_TRUE);
	json_decref(o);

	/* Gone. */
	mcf_provider_observe(&ext, NULL, &obs);
	assert_false(obs.exists);
}

static void
test_provider_engageable(void **state)
{
	(void) state;
	mcf_provider_state st = { 0 };
	/* Created without status: not engageable. */
	apply(&ext, &st, project("p", NULL, NULL, NULL, false), 1000, false);
	assert_false(st.engageable);
	assert_non_null(strstr(st.reason, "Ready is absent"));
	/* Never Ready, False: still not, no grace counting. */
	apply(&ext, &st, project("p", "Ready", "False", "Provisioning", false),
	    2000, false);
	assert_false(st.engageable);
	assert_false(st.in_grace);
	assert_non_null(strstr(st.reason, "Provisioning"));
	assert_int_equal(mcf_provider_deadline(&ext, &st), INT64_MAX);
	/* Ready. */
	apply(&ext, &st, project("p", "Ready", "True", "Ready", false), 3000,
	    true);
	assert_true(st.engageable);
	assert_string_equal(st.reason, "");
	/* An update that changes nothing. */
	apply(&ext, &st, project("p", "Ready", "True", "Ready", false), 3500,
	    false);
	assert_true(st.engageable);
}

static void
test_provider_grace(void **state)
{
	(void) state;
	mcf_provider_state st = { 0 };
	apply(
	    &ext, &st, project("p", "Ready", "True", "Ready", false), 0, true);
	/* Turns False: still engageable during the grace. */
	apply(&ext, &st, project("p", "Ready", "False", "Provisioning", false),
	    10000, false);
	assert_true(st.engageable);
	assert_true(st.in_grace);
	assert_int_equal(mcf_provider_deadline(&ext, &st), 40000);
	assert_false(mcf_provider_tick(&ext, &st, 39999));
	/* A further not-ready update does not restart the period. */
	apply(&ext, &st, project("p", "Ready", "Unknown", "Unknown", false),
	    20000, false);
	assert_int_equal(mcf_provider_deadline(&ext, &st), 40000);
	/* The deadline passes. */
	assert_true(mcf_provider_tick(&ext, &st, 40000));
	assert_false(st.engageable);
	assert_false(st.in_grace);
	assert_non_null(strstr(st.reason, "longer than the grace period"));
	assert_false(mcf_provider_tick(&ext, &st, 50000));
	assert_int_equal(mcf_provider_deadline(&ext, &st), INT64_MAX);
	/* Ready again: engageable again. */
	apply(&ext, &st, project("p", "Ready", "True", "Ready", false), 60000,
	    true);
	assert_true(st.engageable);

	/* A flap shorter than the grace is absorbed. */
	apply(&ext, &st, project("p", "Ready", "False", "X", false), 70000,
	    false);
	apply(&ext, &st, project("p", "Ready", "True", "Ready", false), 75000,
	    false);
	assert_true(st.engageable);
	assert_false(st.in_grace);
	assert_false(mcf_provider_tick(&ext, &st, 200000));
	assert_true(st.engageable);

	/* An observation arriving after the deadline ends it at once. */
	apply(&ext, &st, project("p", "Ready", "False", "X", false), 300000,
	    false);
	apply(&ext, &st, project("p", "Ready", "False", "Y", false), 330001,
	    true);
	assert_false(st.engageable);
}

static void
test_provider_grace_zero(void **state)
{
	(void) state;
	mcf_provider_cfg   cfg = ext;
	mcf_provider_state st  = { 0 };
	cfg.grace_ms           = 0;
	apply(
	    &cfg, &st, project("p", "Ready", "True", "Ready", false), 0, true);
	apply(&cfg, &st, project("p", "Ready", "False", "X", false), 1, true);
	assert_false(st.engageable);
}

static void
test_provider_delete_immediate(void **state)
{
	(void) state;
	mcf_provider_state st = { 0 };
	apply(
	    &ext, &st, project("p", "Ready", "True", "Ready", false), 0, true);
	/* deletionTimestamp: at once, even with Ready still True. */
	apply(
	    &ext, &st, project("p", "Ready", "True", "Ready", true), 1, true);
	assert_false(st.engageable);
	assert_string_equal(st.reason, "being deleted");

	st = (mcf_provider_state) { 0 };
	apply(
	    &ext, &st, project("p", "Ready", "True", "Ready", false), 0, true);
	/* During a grace period, deletion ends it at once too. */
	apply(&ext, &st, project("p", "Ready", "False", "X", false), 1, false);
	assert_true(st.in_grace);
	mcf_provider_obs gone;
	mcf_provider_observe(&ext, NULL, &gone);
	assert_true(mcf_provider_apply(&ext, &st, &gone, 2));
	assert_false(st.engageable);
	assert_false(st.in_grace);
	assert_string_equal(st.reason, "deleted");
}

static void
test_provider_endpoint(void **state)
{
	(void) state;
	char *e = mcf_provider_endpoint(&ext, "p1");
	assert_string_equal(e,
	    "http://127.0.0.1:6443/apis/"
	    "resourcemanager.miloapis.com/v1alpha1/"
	    "projects/p1/control-plane");
	free(e);
	mcf_provider_cfg in = { .mode = MCF_PROVIDER_INTERNAL };
	e                   = mcf_provider_endpoint(&in, "p1");
	assert_string_equal(
	    e, "https://milo-apiserver.project-p1.svc.cluster.local:6443");
	free(e);
	in.endpoint_template = "http://127.0.0.1:9/projects/{name}/"
	                       "control-plane?x={name}";
	e                    = mcf_provider_endpoint(&in, "abc");
	assert_string_equal(
	    e, "http://127.0.0.1:9/projects/abc/control-plane?x=abc");
	free(e);
}

static void
test_provider_parse(void **state)
{
	(void) state;
	enum mcf_provider_mode m;
	assert_int_equal(mcf_provider_mode_parse("external", &m), MCF_OK);
	assert_int_equal(m, MCF_PROVIDER_EXTERNAL);
	assert_int_equal(mcf_provider_mode_parse("internal", &m), MCF_OK);
	assert_int_equal(m, MCF_PROVIDER_INTERNAL);
	assert_int_equal(mcf_provider_mode_parse("both", &m), MCF_EINVAL);
	assert_int_equal(mcf_provider_mode_parse(NULL, &m), MCF_EINVAL);
	assert_string_equal(
	    mcf_provider_resource(MCF_PROVIDER_EXTERNAL), "projects");
	assert_string_equal(mcf_provider_group(MCF_PROVIDER_INTERNAL),
	    "infrastructure.miloapis.com");
	assert_string_equal(mcf_provider_resource(MCF_PROVIDER_INTERNAL),
	    "projectcontrolplanes");
	assert_string_equal(mcf_provider_condition(MCF_PROVIDER_INTERNAL),
	    "ControlPlaneReady");

	mcf_errinfo ei;
	assert_int_equal(
	    mcf_provider_template_check(MCF_PROVIDER_DEFAULT_TEMPLATE, &ei),
	    MCF_OK);
	assert_int_equal(
	    mcf_provider_template_check("https://x/no-name", &ei), MCF_EINVAL);
	assert_non_null(strstr(ei.msg, "{name}"));
	assert_int_equal(
	    mcf_provider_template_check("ftp://{name}", &ei), MCF_EINVAL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_provider_observe),
		cmocka_unit_test(test_provider_engageable),
		cmocka_unit_test(test_provider_grace),
		cmocka_unit_test(test_provider_grace_zero),
		cmocka_unit_test(test_provider_delete_immediate),
		cmocka_unit_test(test_provider_endpoint),
		cmocka_unit_test(test_provider_parse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

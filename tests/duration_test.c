/*
 * duration_test.c — tests for common/duration.c.
 *
 * The accepted values and the overflow limit are Go's time.ParseDuration
 * ones (checked against Go's own test table), truncated to milliseconds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "duration.h"
#include "err.h"

static void
test_duration_parses_go_forms(void **state)
{
	static const struct {
		const char *in;
		int64_t     ms;
	} cases[] = {
		{ "0", 0 },
		{ "0s", 0 },
		{ "500ms", 500 },
		{ "15s", 15000 },
		{ "2m", 120000 },
		{ "1h", 3600000 },
		{ "1m30s", 90000 },
		{ "1h2m3s4ms", 3723004 },
		{ "1.5s", 1500 },
		{ ".5s", 500 },
		{ "1.s", 1000 },
		{ "0.25m", 15000 },
		{ "2.5h", 9000000 },
		{ "1000000ns", 1 },
		{ "2000us", 2 },
		{ "1s500ms", 1500 },
		/* Units may repeat, as in Go; the parts add up. */
		{ "1s1s", 2000 },
		{ "007s", 7000 },
		/* Digits beyond nanoseconds are ignored, not an error. */
		{ "1.0000000000000000000000001s", 1000 },
	};

	(void) state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int64_t     ms = -1;
		mcf_errinfo ei;
		int         rc = mcf_duration_parse(cases[i].in, &ms, &ei);
		if (rc != MCF_OK)
			fail_msg("\"%s\": %s", cases[i].in, ei.msg);
		assert_int_equal(ms, cases[i].ms);
	}
}

static void
test_duration_truncates_below_a_millisecond(void **state)
{
	int64_t ms;

	(void) state;
	assert_int_equal(mcf_duration_parse("999us", &ms, NULL), MCF_OK);
	assert_int_equal(ms, 0);
	assert_int_equal(mcf_duration_parse("1.9999ms", &ms, NULL), MCF_OK);
	assert_int_equal(ms, 1);
	assert_int_equal(mcf_duration_parse("999999ns", &ms, NULL), MCF_OK);
	assert_int_equal(ms, 0);
	/* The parts are summed before truncating. */
	assert_int_equal(mcf_duration_parse("500us500us", &ms, NULL), MCF_OK);
	assert_int_equal(ms, 1);
}

static void
test_duration_rejects_malformed(void **state)
{
	static const char *bad[] = {
		"",      /* empty */
		"5",     /* no unit (only a bare 0 may omit it) */
		"1.5",   /* no unit */
		"0.0",   /* no unit */
		"s",     /* no number */
		".s",    /* no digits */
		"5x",    /* unknown unit */
		"5sec",  /* unknown unit */
		"5S",    /* units are case-sensitive */
		"5 s",   /* blank inside */
		" 5s",   /* leading blank */
		"5s ",   /* trailing blank */
		"1e3s",  /* no exponents */
		"+5s",   /* no sign */
		"-5s",   /* negative */
		"-0",    /* negative zero is still a sign */
		"1..5s", /* two dots */
		"1h-5m", /* sign inside */
		"5µs",   /* only the ASCII "us" */
	};

	(void) state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int64_t     ms = 12345;
		mcf_errinfo ei;
		int         rc = mcf_duration_parse(bad[i], &ms, &ei);
		if (rc != MCF_EINVAL)
			fail_msg("\"%s\": rc %d, want MCF_EINVAL", bad[i], rc);
		assert_int_equal(ei.code, MCF_EINVAL);
		/* The message quotes the input. */
		char quoted[64];
		snprintf(quoted, sizeof(quoted), "\"%s\"", bad[i]);
		assert_non_null(strstr(ei.msg, quoted));
		/* Nothing is stored on failure. */
		assert_int_equal(ms, 12345);
	}
	assert_int_equal(mcf_duration_parse(NULL, NULL, NULL), MCF_EINVAL);
}

static void
test_duration_error_messages_say_why(void **state)
{
	mcf_errinfo ei;
	int64_t     ms;

	(void) state;
	mcf_duration_parse("5x", &ms, &ei);
	assert_non_null(strstr(ei.msg, "unknown unit \"x\""));
	mcf_duration_parse("5", &ms, &ei);
	assert_non_null(strstr(ei.msg, "missing unit"));
	mcf_duration_parse("-5s", &ms, &ei);
	assert_non_null(strstr(ei.msg, "negative"));
}

static void
test_duration_rejects_overflow(void **state)
{
	static const char *big[] = {
		"9223372036854775808ns", /* 2^63 ns */
		"18446744073709551616ns",
		"99999999999999999999s",
		"2562048h",    /* just over 2^63 ns */
		"2562047h48m", /* also just over */
		"9223372036854775807ns1ns",
	};
	int64_t     ms;
	mcf_errinfo ei;

	(void) state;
	for (size_t i = 0; i < sizeof(big) / sizeof(big[0]); i++) {
		int rc = mcf_duration_parse(big[i], &ms, &ei);
		if (rc != MCF_ERANGE)
			fail_msg("\"%s\": rc %d, want MCF_ERANGE", big[i], rc);
		assert_non_null(strstr(ei.msg, big[i]));
	}
	/* "d" is not a unit: that is malformed, not out of range. */
	assert_int_equal(mcf_duration_parse("106751d", &ms, NULL), MCF_EINVAL);

	/* The largest value Go accepts. */
	assert_int_equal(
	    mcf_duration_parse("9223372036854775807ns", &ms, NULL), MCF_OK);
	assert_int_equal(ms, INT64_C(9223372036854));
	assert_int_equal(mcf_duration_parse("2562047h", &ms, NULL), MCF_OK);
	assert_int_equal(ms, INT64_C(2562047) * 3600000);
}

static void
test_duration_formats_short_forms(void **state)
{
	static const struct {
		int64_t     ms;
		const char *want;
	} cases[] = {
		{ 0, "0s" },
		{ 1, "1ms" },
		{ 500, "500ms" },
		{ 999, "999ms" },
		{ 1000, "1s" },
		{ 1500, "1.5s" },
		{ 1050, "1.05s" },
		{ 1001, "1.001s" },
		{ 15000, "15s" },
		{ 60000, "1m0s" },
		{ 90000, "1m30s" },
		{ 120000, "2m0s" },
		{ 61001, "1m1.001s" },
		{ 3600000, "1h0m0s" },
		{ 3723004, "1h2m3.004s" },
		{ -1500, "-1.5s" },
		{ -5, "-5ms" },
		{ INT64_MAX, "2562047788015h12m55.807s" },
		{ INT64_MIN, "-2562047788015h12m55.808s" },
	};

	(void) state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char buf[64];
		mcf_duration_format(cases[i].ms, buf, sizeof(buf));
		assert_string_equal(buf, cases[i].want);
	}
}

static void
test_duration_format_truncates_to_buffer(void **state)
{
	char buf[4];

	(void) state;
	memset(buf, 'X', sizeof(buf));
	mcf_duration_format(3723004, buf, sizeof(buf));
	assert_string_equal(buf, "1h2");
	buf[0] = 'X';
	mcf_duration_format(1500, buf, 1);
	assert_string_equal(buf, "");
	/* A zero-length buffer is left alone. */
	buf[0] = 'X';
	mcf_duration_format(1500, buf, 0);
	assert_int_equal(buf[0], 'X');
}

static void
test_duration_format_round_trips(void **state)
{
	static const int64_t values[] = { 0, 1, 999, 1000, 1234, 59999, 60000,
		3599999, 3600000, 86400000, INT64_C(9223372036854) };

	(void) state;
	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		char    buf[64];
		int64_t back = -1;
		mcf_duration_format(values[i], buf, sizeof(buf));
		assert_int_equal(mcf_duration_parse(buf, &back, NULL), MCF_OK);
		assert_int_equal(back, values[i]);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_duration_parses_go_forms),
		cmocka_unit_test(test_duration_truncates_below_a_millisecond),
		cmocka_unit_test(test_duration_rejects_malformed),
		cmocka_unit_test(test_duration_error_messages_say_why),
		cmocka_unit_test(test_duration_rejects_overflow),
		cmocka_unit_test(test_duration_formats_short_forms),
		cmocka_unit_test(test_duration_format_truncates_to_buffer),
		cmocka_unit_test(test_duration_format_round_trips),
	};
	return cmocka_run_group_tests_name("duration", tests, NULL, NULL);
}

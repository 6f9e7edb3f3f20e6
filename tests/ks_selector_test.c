/*
 * ks_selector_test.c — unit tests for kubesim's label and field selectors
 * (tests/kubesim/selector.c).
 *
 * Expected error texts are the ones k8s.io/apimachinery produces for the
 * same input, so a mismatch here means kubesim words an error differently
 * from a real API server.  The random-input tests feed a fixed pseudo-random
 * sequence, so a failure reproduces.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "alloc.h"
#include "selector.h"

#define QNAME_REGEX                                                           \
	"must consist of alphanumeric characters, '-', '_' or '.', and must " \
	"start and end with an alphanumeric character (e.g. 'MyName',  or "   \
	"'my.name',  or '123-abc', regex used for validation is "             \
	"'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
#define VALUE_REGEX                                                           \
	"a valid label must be an empty string or consist of alphanumeric "   \
	"characters, '-', '_' or '.', and must start and end with an "        \
	"alphanumeric character (e.g. 'MyValue',  or 'my_value',  or "        \
	"'12345', regex used for validation is "                              \
	"'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
#define PREFIX_REGEX                                                          \
	"prefix part a lowercase RFC 1123 subdomain must consist of lower "   \
	"case alphanumeric characters, '-' or '.', and must start and end "   \
	"with an alphanumeric character (e.g. 'example.com', regex used for " \
	"validation is "                                                      \
	"'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"

static json_t *
J(const char *text)
{
	json_error_t e;
	json_t      *v = json_loads(text, JSON_DECODE_ANY, &e);
	if (v == NULL)
		fail_msg("bad test JSON %s: %s", text, e.text);
	return v;
}

/* Parses `sel`, which must succeed, and returns whether it matches the
 * labels in `labels_json` ("null" for none). */
static int
lmatch(const char *sel, const char *labels_json)
{
	char         err[512] = "";
	ks_labelsel *s        = ks_labelsel_parse(sel, err, sizeof(err));
	if (s == NULL)
		fail_msg("selector \"%s\" failed: %s", sel, err);
	json_t *labels = J(labels_json);
	int     m      = ks_labelsel_match(s, labels);
	json_decref(labels);
	ks_labelsel_free(s);
	return m;
}

/* Parses `sel`, which must fail with exactly `want`. */
static void
lerr(const char *sel, const char *want)
{
	char         err[4096] = "";
	ks_labelsel *s         = ks_labelsel_parse(sel, err, sizeof(err));
	if (s != NULL) {
		ks_labelsel_free(s);
		fail_msg("selector \"%s\" parsed, expected: %s", sel, want);
	}
	if (strcmp(err, want) != 0)
		fail_msg(
		    "selector \"%s\"\n got: %s\nwant: %s", sel, err, want);
}

static const char *const fields[] = { "metadata.name", "metadata.namespace",
	"spec.replicas", "spec.ok", NULL };

static int
fmatch(const char *sel, const char *obj_json)
{
	char         err[512] = "";
	ks_fieldsel *s = ks_fieldsel_parse(sel, fields, err, sizeof(err));
	if (s == NULL)
		fail_msg("field selector \"%s\" failed: %s", sel, err);
	json_t *obj = J(obj_json);
	int     m   = ks_fieldsel_match(s, obj);
	json_decref(obj);
	ks_fieldsel_free(s);
	return m;
}

static void
ferr(const char *sel, const char *want)
{
	char         err[4096] = "";
	ks_fieldsel *s = ks_fieldsel_parse(sel, fields, err, sizeof(err));
	if (s != NULL) {
		ks_fieldsel_free(s);
		fail_msg(
		    "field selector \"%s\" parsed, expected: %s", sel, want);
	}
	if (strcmp(err, want) != 0)
		fail_msg("field selector \"%s\"\n got: %s\nwant: %s", sel, err,
		    want);
}

/* Whether s is valid UTF-8 (jansson refuses anything else). */
static int
utf8_ok(const char *s)
{
	json_t *v = json_string(s);
	json_decref(v);
	return v != NULL;
}

static uint32_t
rnd(uint32_t *state)
{
	*state = *state * 1103515245u + 12345u;
	return *state >> 8;
}

/* ---- label selectors --------------------------------------------------- */

static void
test_selector_empty_matches_everything(void **state)
{
	(void) state;
	const char *empties[] = { "", "   ", "\t\r\n " };
	for (size_t i = 0; i < sizeof(empties) / sizeof(empties[0]); i++) {
		char         err[64];
		ks_labelsel *s
		    = ks_labelsel_parse(empties[i], err, sizeof(err));
		assert_non_null(s);
		assert_true(ks_labelsel_empty(s));
		assert_true(ks_labelsel_match(s, NULL));
		ks_labelsel_free(s);
	}
	assert_true(lmatch("", "{\"a\":\"b\"}"));
	assert_true(lmatch("", "{}"));

	char         err[64];
	ks_labelsel *s = ks_labelsel_parse("a", err, sizeof(err));
	assert_non_null(s);
	assert_false(ks_labelsel_empty(s));
	ks_labelsel_free(s);
	ks_labelsel_free(NULL);
}

static void
test_selector_exists(void **state)
{
	(void) state;
	assert_true(lmatch("app", "{\"app\":\"web\"}"));
	assert_true(lmatch("app", "{\"app\":\"\"}"));
	assert_false(lmatch("app", "{\"other\":\"x\"}"));
	assert_false(lmatch("app", "null"));
	assert_false(lmatch("app", "{}"));
}

static void
test_selector_does_not_exist(void **state)
{
	(void) state;
	assert_true(lmatch("!app", "{}"));
	assert_true(lmatch("!app", "null"));
	assert_true(lmatch("!app", "{\"other\":\"x\"}"));
	assert_false(lmatch("!app", "{\"app\":\"\"}"));
	assert_true(lmatch("! app", "{}"));
}

static void
test_selector_equals(void **state)
{
	(void) state;
	assert_true(lmatch("a=b", "{\"a\":\"b\"}"));
	assert_true(lmatch("a==b", "{\"a\":\"b\"}"));
	assert_false(lmatch("a=b", "{\"a\":\"c\"}"));
	assert_false(lmatch("a==b", "{\"a\":\"c\"}"));
	assert_false(lmatch("a=b", "{}"));
	assert_false(lmatch("a=b", "null"));
	assert_false(lmatch("a=b", "{\"a\":\"bb\"}"));
}

static void
test_selector_not_equals_matches_missing_key(void **state)
{
	(void) state;
	assert_true(lmatch("a!=b", "{}"));
	assert_true(lmatch("a!=b", "null"));
	assert_true(lmatch("a!=b", "{\"x\":\"b\"}"));
	assert_true(lmatch("a!=b", "{\"a\":\"c\"}"));
	assert_false(lmatch("a!=b", "{\"a\":\"b\"}"));
}

static void
test_selector_in(void **state)
{
	(void) state;
	const char *sel = "env in (prod, staging)";
	assert_true(lmatch(sel, "{\"env\":\"prod\"}"));
	assert_true(lmatch(sel, "{\"env\":\"staging\"}"));
	assert_false(lmatch(sel, "{\"env\":\"dev\"}"));
	assert_false(lmatch(sel, "{}"));
	assert_true(lmatch("env in (prod)", "{\"env\":\"prod\"}"));
	assert_true(lmatch("env in (a,a,prod)", "{\"env\":\"prod\"}"));
}

static void
test_selector_notin_matches_missing_key(void **state)
{
	(void) state;
	const char *sel = "env notin (prod, staging)";
	assert_true(lmatch(sel, "{}"));
	assert_true(lmatch(sel, "null"));
	assert_true(lmatch(sel, "{\"env\":\"dev\"}"));
	assert_false(lmatch(sel, "{\"env\":\"prod\"}"));
	assert_false(lmatch(sel, "{\"env\":\"staging\"}"));
}

static void
test_selector_empty_values(void **state)
{
	(void) state;
	assert_true(lmatch("a=", "{\"a\":\"\"}"));
	assert_false(lmatch("a=", "{\"a\":\"x\"}"));
	assert_true(lmatch("a==,b", "{\"a\":\"\",\"b\":\"1\"}"));
	assert_true(lmatch("a!=", "{\"a\":\"x\"}"));
	assert_false(lmatch("a!=", "{\"a\":\"\"}"));
	/* set-based values may be empty: "()", "(,x)", "(x,)", "(x,,y)" */
	assert_true(lmatch("a in ()", "{\"a\":\"\"}"));
	assert_false(lmatch("a in ()", "{\"a\":\"x\"}"));
	assert_true(lmatch("a in (,x)", "{\"a\":\"\"}"));
	assert_true(lmatch("a in (,x)", "{\"a\":\"x\"}"));
	assert_true(lmatch("a in (x,)", "{\"a\":\"\"}"));
	assert_true(lmatch("a in (x,,y)", "{\"a\":\"\"}"));
	assert_true(lmatch("a in (x,,y)", "{\"a\":\"y\"}"));
	assert_true(lmatch("a in (,)", "{\"a\":\"\"}"));
	assert_false(lmatch("a notin (,x)", "{\"a\":\"\"}"));
	assert_true(lmatch("a notin (,x)", "{\"a\":\"y\"}"));
}

static void
test_selector_gt_lt(void **state)
{
	(void) state;
	assert_true(lmatch("n>5", "{\"n\":\"6\"}"));
	assert_false(lmatch("n>5", "{\"n\":\"5\"}"));
	assert_false(lmatch("n>5", "{\"n\":\"-7\"}"));
	assert_true(lmatch("n<5", "{\"n\":\"-7\"}"));
	assert_true(lmatch("n<5", "{\"n\":\"+4\"}"));
	assert_false(lmatch("n<5", "{\"n\":\"5\"}"));
	/* A missing or non-integer label never compares. */
	assert_false(lmatch("n>5", "{}"));
	assert_false(lmatch("n<5", "{}"));
	assert_false(lmatch("n>5", "{\"n\":\"abc\"}"));
	assert_false(lmatch("n<5", "{\"n\":\"\"}"));
	assert_false(lmatch("n<5", "{\"n\":\"1_0\"}"));
	/* int64 range, with overflow rejected. */
	assert_true(lmatch(
	    "n > 9223372036854775806", "{\"n\":\"9223372036854775807\"}"));
	assert_false(lmatch("n > 1", "{\"n\":\"9223372036854775808\"}"));
	assert_true(lmatch("n<0", "{\"n\":\"-9223372036854775808\"}"));
	assert_false(lmatch("n<0", "{\"n\":\"-9223372036854775809\"}"));
	assert_true(lmatch("n>0,n<10", "{\"n\":\"3\"}"));
}

static void
test_selector_gt_lt_need_integers(void **state)
{
	(void) state;
	lerr("n>abc",
	    "unable to parse requirement: values[0]: Invalid value: \"abc\": "
	    "for 'Gt', 'Lt' operators, the value must be an integer");
	lerr("n<",
	    "unable to parse requirement: values[0]: Invalid value: "
	    "\"\": for 'Gt', 'Lt' operators, the value must be an "
	    "integer");
	/* "-5" is an integer but not a label value: both rules apply. */
	lerr("n>-5",
	    "unable to parse requirement: values[0][n]: Invalid "
	    "value: \"-5\": " VALUE_REGEX);
	lerr("n>-x",
	    "unable to parse requirement: [values[0]: Invalid value: \"-x\": "
	    "for 'Gt', 'Lt' operators, the value must be an integer, "
	    "values[0][n]: Invalid value: \"-x\": " VALUE_REGEX "]");
	lerr("n>99999999999999999999",
	    "unable to parse requirement: values[0]: Invalid value: "
	    "\"99999999999999999999\": for 'Gt', 'Lt' operators, the value "
	    "must be an integer");
}

static void
test_selector_and(void **state)
{
	(void) state;
	const char *sel = "a=b,c in (d, e),!f,g";
	assert_true(lmatch(sel, "{\"a\":\"b\",\"c\":\"e\",\"g\":\"1\"}"));
	assert_false(lmatch(sel, "{\"a\":\"b\",\"c\":\"e\"}"));
	assert_false(lmatch(sel,
	    "{\"a\":\"b\",\"c\":\"e\",\"g\":\"\","
	    "\"f\":\"\"}"));
	assert_false(lmatch(sel, "{\"a\":\"x\",\"c\":\"e\",\"g\":\"1\"}"));
}

static void
test_selector_whitespace(void **state)
{
	(void) state;
	const char *sel = "  a = b ,\tc\nin ( d , e ) ,\r! f , g!= h ,n > 3 ";
	assert_true(lmatch(sel, "{\"a\":\"b\",\"c\":\"d\",\"n\":\"4\"}"));
	assert_false(lmatch(sel,
	    "{\"a\":\"b\",\"c\":\"d\",\"n\":\"4\","
	    "\"g\":\"h\"}"));
	assert_true(lmatch("a\t==\tb", "{\"a\":\"b\"}"));
	assert_true(lmatch("x notin(a)", "{}"));
	assert_true(lmatch("x in(a),y", "{\"x\":\"a\",\"y\":\"\"}"));
}

static void
test_selector_keywords_as_keys_and_values(void **state)
{
	(void) state;
	assert_true(lmatch("in in (in, notin)", "{\"in\":\"notin\"}"));
	assert_true(lmatch("notin notin (in)", "{\"notin\":\"x\"}"));
	assert_true(lmatch("a=in", "{\"a\":\"in\"}"));
	assert_true(lmatch("!in", "{}"));
	assert_true(lmatch("notin", "{\"notin\":\"\"}"));
}

static void
test_selector_prefixed_keys(void **state)
{
	(void) state;
	assert_true(
	    lmatch("example.com/app=x", "{\"example.com/app\":\"x\"}"));
	assert_true(lmatch("app.kubernetes.io/name in (web)",
	    "{\"app.kubernetes.io/name\":\"web\"}"));
	assert_true(lmatch("a-b.c/D_e.F-1", "{\"a-b.c/D_e.F-1\":\"\"}"));
	lerr("Example.com/app",
	    "unable to parse requirement: <nil>: Invalid "
	    "value: \"Example.com/app\": " PREFIX_REGEX);
	lerr("/app",
	    "unable to parse requirement: <nil>: Invalid value: "
	    "\"/app\": prefix part must be non-empty");
	lerr("a..b/app",
	    "unable to parse requirement: <nil>: Invalid value: "
	    "\"a..b/app\": " PREFIX_REGEX);
	lerr("example.com/",
	    "unable to parse requirement: <nil>: Invalid "
	    "value: \"example.com/\": name part must be "
	    "non-empty; name part " QNAME_REGEX);
	lerr("a/b/c",
	    "unable to parse requirement: <nil>: Invalid value: \"a/b/c\": a "
	    "qualified name " QNAME_REGEX " with an optional DNS subdomain "
	    "prefix and '/' (e.g. 'example.com/MyName')");
}

static void
test_selector_invalid_key_chars(void **state)
{
	(void) state;
	lerr("a@b=c",
	    "unable to parse requirement: <nil>: Invalid value: "
	    "\"a@b\": name part " QNAME_REGEX);
	lerr("-a",
	    "unable to parse requirement: <nil>: Invalid value: \"-a\": "
	    "name part " QNAME_REGEX);
	lerr("a.",
	    "unable to parse requirement: <nil>: Invalid value: \"a.\": "
	    "name part " QNAME_REGEX);
	lerr("!a_",
	    "unable to parse requirement: <nil>: Invalid value: "
	    "\"a_\": name part " QNAME_REGEX);
	/* The key is quoted as Go's %q quotes it. */
	lerr("a\"\\b",
	    "unable to parse requirement: <nil>: Invalid value: "
	    "\"a\\\"\\\\b\": name part " QNAME_REGEX);
	lerr("\xc3\xa9t\xc3\xa9",
	    "unable to parse requirement: <nil>: "
	    "Invalid value: \"\xc3\xa9t\xc3\xa9\": "
	    "name part " QNAME_REGEX);
	lerr("a\x01",
	    "unable to parse requirement: <nil>: Invalid value: "
	    "\"a\\x01\": name part " QNAME_REGEX);
	lerr("a\xff",
	    "unable to parse requirement: <nil>: Invalid value: "
	    "\"a\\xff\": name part " QNAME_REGEX);
}

static void
test_selector_key_length_limits(void **state)
{
	(void) state;
	char key[400], sel[800];
	memset(key, 'k', 63);
	key[63] = '\0';
	assert_true(lmatch(key,
	    "{\"kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"
	    "kkkkkkkkkkkkkkkkkkkkkk\":\"\"}"));
	memset(key, 'k', 64);
	key[64] = '\0';
	snprintf(sel, sizeof(sel),
	    "unable to parse requirement: <nil>: Invalid value: \"%s\": name "
	    "part must be no more than 63 characters",
	    key);
	lerr(key, sel);

	/* A 253-byte prefix is fine, 254 is not. */
	memset(key, 'p', 253);
	memcpy(key + 253, "/n", 3);
	char         err[2048];
	ks_labelsel *s = ks_labelsel_parse(key, err, sizeof(err));
	assert_non_null(s);
	ks_labelsel_free(s);
	memset(key, 'p', 254);
	memcpy(key + 254, "/n", 3);
	snprintf(sel, sizeof(sel),
	    "unable to parse requirement: <nil>: Invalid value: \"%s\": "
	    "prefix part must be no more than 253 characters",
	    key);
	lerr(key, sel);
}

static void
test_selector_invalid_values(void **state)
{
	(void) state;
	char val[100], sel[200], want[600];
	memset(val, 'v', 63);
	val[63] = '\0';
	snprintf(sel, sizeof(sel), "a=%s", val);
	char         err[1024];
	ks_labelsel *s = ks_labelsel_parse(sel, err, sizeof(err));
	assert_non_null(s);
	ks_labelsel_free(s);

	memset(val, 'v', 64);
	val[64] = '\0';
	snprintf(sel, sizeof(sel), "a=%s", val);
	snprintf(want, sizeof(want),
	    "unable to parse requirement: values[0][a]: Invalid value: "
	    "\"%s\": must be no more than 63 characters",
	    val);
	lerr(sel, want);

	lerr("a=-b",
	    "unable to parse requirement: values[0][a]: Invalid "
	    "value: \"-b\": " VALUE_REGEX);
	lerr("a!=b.",
	    "unable to parse requirement: values[0][a]: Invalid "
	    "value: \"b.\": " VALUE_REGEX);
	lerr("a=b/c",
	    "unable to parse requirement: values[0][a]: Invalid "
	    "value: \"b/c\": " VALUE_REGEX);
	/* Set values are validated in sorted order: "_y" sorts before "x". */
	lerr("a in (x, _y)",
	    "unable to parse requirement: values[0][a]: "
	    "Invalid value: \"_y\": " VALUE_REGEX);
	lerr("a notin (x, y@)",
	    "unable to parse requirement: values[1][a]: "
	    "Invalid value: \"y@\": " VALUE_REGEX);
	lerr("a in (-x, -y)",
	    "unable to parse requirement: [values[0][a]: Invalid value: "
	    "\"-x\": " VALUE_REGEX
	    ", values[1][a]: Invalid value: \"-y\": " VALUE_REGEX "]");
}

static void
test_selector_syntax_errors(void **state)
{
	(void) state;
	static const struct {
		const char *in;
		const char *want;
	} cases[] = {
		{ "a b",
		    "unable to parse requirement: found 'b', expected: "
		    "in, notin, =, ==, !=, gt, lt" },
		{ ",a",
		    "found ',', expected: !, identifier, or 'end of "
		    "string'" },
		{ "(",
		    "found '(', expected: !, identifier, or 'end of "
		    "string'" },
		{ "=b",
		    "found '=', expected: !, identifier, or 'end of "
		    "string'" },
		{ "a,", "found '', expected: identifier after ','" },
		{ "a,,b", "found ',', expected: identifier after ','" },
		{ "a,=", "found '=', expected: identifier after ','" },
		{ "a in b",
		    "unable to parse requirement: found 'b' expected: "
		    "'('" },
		{ "a in",
		    "unable to parse requirement: found '' expected: "
		    "'('" },
		{ "a in (b",
		    "unable to parse requirement: found '', "
		    "expected: ',' or ')'" },
		{ "a in (b c)",
		    "unable to parse requirement: found 'c', "
		    "expected: ',' or ')'" },
		{ "a in (=)",
		    "unable to parse requirement: found '=', "
		    "expected: ',', ')' or identifier" },
		{ "a in (",
		    "unable to parse requirement: found '', "
		    "expected: ',', ')' or identifier" },
		{ "a in (b,=)",
		    "unable to parse requirement: found '=', "
		    "expected: ',', or identifier" },
		{ "a in (,",
		    "unable to parse requirement: found '', "
		    "expected: ',', or identifier" },
		{ "a=(",
		    "unable to parse requirement: found '(', expected: "
		    "identifier" },
		{ "a<=5",
		    "unable to parse requirement: found '=', expected: "
		    "identifier" },
		{ "a=b c", "found 'c', expected: ',' or 'end of string'" },
		{ "a=b)", "found ')', expected: ',' or 'end of string'" },
		{ "!a=b", "found '=', expected: ',' or 'end of string'" },
		{ "!",
		    "unable to parse requirement: found '', expected: "
		    "identifier" },
		{ "!!a",
		    "unable to parse requirement: found '!', expected: "
		    "identifier" },
		{ "!=a",
		    "found '!=', expected: !, identifier, or 'end of "
		    "string'" },
		{ "a in (b))", "found ')', expected: ',' or 'end of string'" },
		{ "a===b",
		    "unable to parse requirement: found '=', "
		    "expected: identifier" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		lerr(cases[i].in, cases[i].want);
	/* Accepted oddities that a real server accepts too. */
	assert_true(lmatch("a!=", "{}"));
	assert_true(lmatch("a in (b,)", "{\"a\":\"\"}"));
}

static void
test_selector_non_string_labels(void **state)
{
	(void) state;
	assert_true(lmatch("a", "{\"a\":1}"));
	assert_false(lmatch("a=1", "{\"a\":1}"));
	assert_true(lmatch("a!=1", "{\"a\":1}"));
	assert_false(lmatch("a>0", "{\"a\":1}"));
	assert_true(lmatch("!a", "[\"a\"]")); /* not an object: no labels */
}

static void
test_selector_error_buffer(void **state)
{
	(void) state;
	/* NULL or tiny buffers are fine; text is cut on a UTF-8 boundary. */
	assert_null(ks_labelsel_parse("a b", NULL, 0));
	char         one[1] = { 'x' };
	ks_labelsel *s      = ks_labelsel_parse("a b", one, sizeof(one));
	assert_null(s);
	assert_int_equal(one[0], '\0');
	char small[12];
	assert_null(ks_labelsel_parse("a b", small, sizeof(small)));
	assert_string_equal(small, "unable to p");
	/* An invalid byte in an unquoted literal becomes U+FFFD. */
	char err[256];
	assert_null(ks_labelsel_parse("a \xff", err, sizeof(err)));
	assert_string_equal(err,
	    "unable to parse requirement: found "
	    "'\xef\xbf\xbd', expected: in, notin, =, "
	    "==, !=, gt, lt");
	/* Never split a multi-byte character. */
	char cut[31];
	assert_null(
	    ks_labelsel_parse("a \xc3\xa9\xc3\xa9\xc3\xa9", cut, sizeof(cut)));
	assert_true(utf8_ok(cut));
	assert_true(strlen(cut) < sizeof(cut));
}

static void
test_selector_random_input_never_crashes(void **state)
{
	(void) state;
	static const char alphabet[] = "ab=!(),<> \tin notin-_./\\~9\xff\xc3";
	uint32_t          seed       = 12345;
	json_t           *labels
	    = J("{\"a\":\"b\",\"in\":\"5\",\"b\":\"\",\"a9\":\"-1\"}");
	for (int iter = 0; iter < 20000; iter++) {
		char   buf[80];
		size_t n = rnd(&seed) % (sizeof(buf) - 1);
		for (size_t i = 0; i < n; i++) {
			if (iter % 2 == 0)
				buf[i] = alphabet[rnd(&seed)
				    % (sizeof(alphabet) - 1)];
			else
				buf[i] = (char) (1 + rnd(&seed) % 255);
		}
		buf[n] = '\0';
		char         err[96];
		size_t       errlen = 1 + rnd(&seed) % sizeof(err);
		ks_labelsel *s      = ks_labelsel_parse(buf, err, errlen);
		if (s != NULL) {
			(void) ks_labelsel_match(s, labels);
			(void) ks_labelsel_match(s, NULL);
			ks_labelsel_free(s);
		} else {
			assert_true(strlen(err) < errlen);
			assert_true(utf8_ok(err));
		}
		ks_fieldsel *f = ks_fieldsel_parse(buf, fields, err, errlen);
		if (f != NULL) {
			(void) ks_fieldsel_match(f, labels);
			(void) ks_fieldsel_name(f);
			ks_fieldsel_free(f);
		} else {
			assert_true(strlen(err) < errlen);
			assert_true(utf8_ok(err));
		}
	}
	json_decref(labels);
}

static void
test_selector_very_long_input(void **state)
{
	(void) state;
	size_t n   = 1u << 18;
	char  *buf = mcf_malloc(n + 1);
	char   err[256];

	/* Many requirements. */
	for (size_t i = 0; i + 4 <= n; i += 4)
		memcpy(buf + i, "a=b,", 4);
	memcpy(buf + n - 4, "c  ", 4);
	ks_labelsel *s = ks_labelsel_parse(buf, err, sizeof(err));
	assert_non_null(s);
	json_t *labels = J("{\"a\":\"b\",\"c\":\"\"}");
	assert_true(ks_labelsel_match(s, labels));
	json_decref(labels);
	ks_labelsel_free(s);

	/* One huge key, a huge value list, nothing but operators. */
	memset(buf, 'k', n);
	buf[n] = '\0';
	assert_null(ks_labelsel_parse(buf, err, sizeof(err)));
	const char *pre = "unable to parse requirement: <nil>: Invalid "
	                  "value: \"kkk";
	assert_true(strncmp(err, pre, strlen(pre)) == 0);
	assert_true(strlen(err) == sizeof(err) - 1);
	memcpy(buf, "k in (", 6);
	for (size_t i = 6; i < n; i++)
		buf[i] = (i % 2) ? ',' : 'v';
	assert_null(ks_labelsel_parse(buf, err, sizeof(err)));
	buf[n - 1] = ')';
	s          = ks_labelsel_parse(buf, err, sizeof(err));
	assert_non_null(s);
	ks_labelsel_free(s);
	/* Many distinct values, sorted backwards, then all invalid. */
	size_t pos = (size_t) sprintf(buf, "k in (");
	for (unsigned i = 999999; pos + 16 < n; i--)
		pos += (size_t) sprintf(buf + pos, "v%u,", i);
	buf[pos - 1] = ')';
	buf[pos]     = '\0';
	s            = ks_labelsel_parse(buf, err, sizeof(err));
	assert_non_null(s);
	labels = J("{\"k\":\"v999999\"}");
	assert_true(ks_labelsel_match(s, labels));
	json_decref(labels);
	ks_labelsel_free(s);
	pos = (size_t) sprintf(buf, "k in (");
	for (unsigned i = 0; pos + 16 < n; i++)
		pos += (size_t) sprintf(buf + pos, "-%u,", i);
	buf[pos - 1] = ')';
	buf[pos]     = '\0';
	assert_null(ks_labelsel_parse(buf, err, sizeof(err)));
	pre = "unable to parse requirement: [values[0][k]: Invalid value: "
	      "\"-0\": a valid label";
	assert_true(strncmp(err, pre, strlen(pre)) == 0);

	memset(buf, '(', n);
	assert_null(ks_labelsel_parse(buf, err, sizeof(err)));
	memset(buf, ',', n);
	ks_fieldsel *f = ks_fieldsel_parse(buf, fields, err, sizeof(err));
	assert_non_null(f);
	assert_true(ks_fieldsel_empty(f));
	ks_fieldsel_free(f);
	for (size_t i = 0; i + 20 <= n; i += 20)
		memcpy(buf + i, "metadata.name=abc\\\\,", 20);
	f = ks_fieldsel_parse(buf, fields, err, sizeof(err));
	assert_non_null(f);
	ks_fieldsel_free(f);
	memset(buf, '\\', n);
	assert_null(ks_fieldsel_parse(buf, fields, err, sizeof(err)));
	free(buf);
}

/* ---- field selectors --------------------------------------------------- */

static const char *obj_foo
    = "{\"metadata\":{\"name\":\"foo\",\"namespace\":\"ns1\"},"
      "\"spec\":{\"replicas\":3,\"ok\":true}}";

static void
test_selector_field_empty(void **state)
{
	(void) state;
	const char *empties[] = { "", ",", ",,," };
	for (size_t i = 0; i < sizeof(empties) / sizeof(empties[0]); i++) {
		char         err[64];
		ks_fieldsel *s
		    = ks_fieldsel_parse(empties[i], fields, err, sizeof(err));
		assert_non_null(s);
		assert_true(ks_fieldsel_empty(s));
		assert_null(ks_fieldsel_name(s));
		assert_true(ks_fieldsel_match(s, NULL));
		ks_fieldsel_free(s);
	}
	ks_fieldsel_free(NULL);
}

static void
test_selector_field_equals(void **state)
{
	(void) state;
	assert_true(fmatch("metadata.name=foo", obj_foo));
	assert_true(fmatch("metadata.name==foo", obj_foo));
	assert_false(fmatch("metadata.name=bar", obj_foo));
	assert_false(fmatch("metadata.name=fo", obj_foo));

	char         err[64];
	ks_fieldsel *s = ks_fieldsel_parse("metadata.namespace=ns1,"
	                                   "metadata.name==foo",
	    fields, err, sizeof(err));
	assert_non_null(s);
	assert_false(ks_fieldsel_empty(s));
	assert_string_equal(ks_fieldsel_name(s), "foo");
	ks_fieldsel_free(s);
	s = ks_fieldsel_parse("metadata.name!=foo", fields, err, sizeof(err));
	assert_non_null(s);
	assert_null(ks_fieldsel_name(s));
	ks_fieldsel_free(s);
}

static void
test_selector_field_not_equals(void **state)
{
	(void) state;
	assert_false(fmatch("metadata.name!=foo", obj_foo));
	assert_true(fmatch("metadata.name!=bar", obj_foo));
	assert_true(fmatch("metadata.name!=bar", "{}"));
}

static void
test_selector_field_missing_is_empty(void **state)
{
	(void) state;
	assert_true(fmatch("metadata.namespace=", "{\"metadata\":{}}"));
	assert_true(fmatch("metadata.namespace=", "{}"));
	assert_true(fmatch("metadata.namespace=", "{\"metadata\":\"x\"}"));
	assert_true(fmatch(
	    "metadata.namespace=", "{\"metadata\":{\"namespace\":null}}"));
	assert_false(fmatch("metadata.namespace!=", "{\"metadata\":{}}"));
	assert_false(fmatch("metadata.namespace=ns1", "{}"));
	assert_true(fmatch("metadata.namespace!=ns1", "{}"));
}

static void
test_selector_field_and(void **state)
{
	(void) state;
	assert_true(
	    fmatch("metadata.name=foo,metadata.namespace=ns1", obj_foo));
	assert_false(
	    fmatch("metadata.name=foo,metadata.namespace=ns2", obj_foo));
	assert_true(
	    fmatch("metadata.name=foo,,metadata.namespace!=ns2,", obj_foo));
}

static void
test_selector_field_numbers_and_booleans(void **state)
{
	(void) state;
	assert_true(fmatch("spec.replicas=3", obj_foo));
	assert_false(fmatch("spec.replicas=03", obj_foo));
	assert_true(fmatch("spec.ok=true", obj_foo));
	assert_true(fmatch("spec.ok!=false", obj_foo));
}

static void
test_selector_field_escapes(void **state)
{
	(void) state;
	assert_true(fmatch(
	    "metadata.name=a\\,b", "{\"metadata\":{\"name\":\"a,b\"}}"));
	assert_true(fmatch(
	    "metadata.name=a\\=b", "{\"metadata\":{\"name\":\"a=b\"}}"));
	assert_true(fmatch(
	    "metadata.name=a\\\\b", "{\"metadata\":{\"name\":\"a\\\\b\"}}"));
	/* An escaped comma does not split terms; a real one does. */
	ferr("metadata.name=x\\,metadata.namespace=y",
	    "invalid field selector: unescaped character in value: 61");
	assert_true(fmatch("metadata.name=x\\,metadata.namespace\\=y",
	    "{\"metadata\":{\"name\":\"x,metadata.namespace=y\"}}"));

	char         err[64];
	ks_fieldsel *s = ks_fieldsel_parse(
	    "metadata.name=a\\,b", fields, err, sizeof(err));
	assert_non_null(s);
	assert_string_equal(ks_fieldsel_name(s), "a,b");
	ks_fieldsel_free(s);
	/* The value keeps everything after the first operator. */
	assert_true(
	    fmatch("metadata.name==!x", "{\"metadata\":{\"name\":\"!x\"}}"));
	assert_true(
	    fmatch("metadata.name=!x", "{\"metadata\":{\"name\":\"!x\"}}"));
}

static void
test_selector_field_bad_escapes(void **state)
{
	(void) state;
	ferr("metadata.name=a\\b",
	    "invalid field selector: invalid escape sequence: \\b");
	ferr("metadata.name=a\\",
	    "invalid field selector: invalid escape sequence: \\");
	ferr("metadata.name=a=b",
	    "invalid field selector: unescaped character in value: 61");
	ferr("metadata.name=a\\\xc3\xa9",
	    "invalid field selector: invalid escape sequence: \\\xc3\xa9");
	/* Every term parses before any field is checked. */
	ferr("aaa=1,metadata.name=x=y",
	    "invalid field selector: unescaped character in value: 61");
}

static void
test_selector_field_unsupported(void **state)
{
	(void) state;
	ferr("spec.foo=1", "field label not supported: spec.foo");
	ferr("metadata.name = foo",
	    "field label not supported: metadata.name ");
	ferr(
	    " metadata.name=foo", "field label not supported:  metadata.name");
	ferr("=foo", "field label not supported: ");
	/* Terms are checked in sorted order. */
	ferr("zz=1,metadata.name=x,bb!=2", "field label not supported: bb");

	char         err[64];
	ks_fieldsel *s
	    = ks_fieldsel_parse("anything.at.all=1", NULL, err, sizeof(err));
	assert_non_null(s);
	json_t *o = J("{\"anything\":{\"at\":{\"all\":1}}}");
	assert_true(ks_fieldsel_match(s, o));
	json_decref(o);
	ks_fieldsel_free(s);
}

static void
test_selector_field_malformed(void **state)
{
	(void) state;
	ferr("foo", "invalid selector: 'foo'; can't understand 'foo'");
	ferr("metadata.name=a,bar",
	    "invalid selector: 'metadata.name=a,bar'; can't understand 'bar'");
	ferr("metadata.name!foo",
	    "invalid selector: 'metadata.name!foo'; "
	    "can't understand 'metadata.name!foo'");
}

int
main(void)
{
	mcf_alloc_init_libs();
	const struct CMUnitTest tests[] = {
		{ "empty label selector matches everything",
		    test_selector_empty_matches_everything, NULL, NULL, NULL },
		{ "k: key exists", test_selector_exists, NULL, NULL, NULL },
		{ "!k: key does not exist", test_selector_does_not_exist, NULL,
		    NULL, NULL },
		{ "k=v and k==v", test_selector_equals, NULL, NULL, NULL },
		{ "k!=v matches a missing key",
		    test_selector_not_equals_matches_missing_key, NULL, NULL,
		    NULL },
		{ "k in (...)", test_selector_in, NULL, NULL, NULL },
		{ "k notin (...) matches a missing key",
		    test_selector_notin_matches_missing_key, NULL, NULL,
		    NULL },
		{ "empty values", test_selector_empty_values, NULL, NULL,
		    NULL },
		{ "k>n and k<n compare integers", test_selector_gt_lt, NULL,
		    NULL, NULL },
		{ "k>n and k<n need integers",
		    test_selector_gt_lt_need_integers, NULL, NULL, NULL },
		{ "requirements are ANDed", test_selector_and, NULL, NULL,
		    NULL },
		{ "whitespace around tokens", test_selector_whitespace, NULL,
		    NULL, NULL },
		{ "in and notin as keys and values",
		    test_selector_keywords_as_keys_and_values, NULL, NULL,
		    NULL },
		{ "prefixed keys", test_selector_prefixed_keys, NULL, NULL,
		    NULL },
		{ "invalid key characters", test_selector_invalid_key_chars,
		    NULL, NULL, NULL },
		{ "key length limits", test_selector_key_length_limits, NULL,
		    NULL, NULL },
		{ "invalid values", test_selector_invalid_values, NULL, NULL,
		    NULL },
		{ "syntax errors word as apimachinery's",
		    test_selector_syntax_errors, NULL, NULL, NULL },
		{ "labels that are not strings",
		    test_selector_non_string_labels, NULL, NULL, NULL },
		{ "error buffer handling", test_selector_error_buffer, NULL,
		    NULL, NULL },
		{ "random input never crashes",
		    test_selector_random_input_never_crashes, NULL, NULL,
		    NULL },
		{ "very long input", test_selector_very_long_input, NULL, NULL,
		    NULL },
		{ "empty field selector", test_selector_field_empty, NULL,
		    NULL, NULL },
		{ "field = and ==", test_selector_field_equals, NULL, NULL,
		    NULL },
		{ "field !=", test_selector_field_not_equals, NULL, NULL,
		    NULL },
		{ "missing field compares as empty",
		    test_selector_field_missing_is_empty, NULL, NULL, NULL },
		{ "field terms are ANDed", test_selector_field_and, NULL, NULL,
		    NULL },
		{ "numbers and booleans compare as JSON text",
		    test_selector_field_numbers_and_booleans, NULL, NULL,
		    NULL },
		{ "field value escapes", test_selector_field_escapes, NULL,
		    NULL, NULL },
		{ "bad field value escapes", test_selector_field_bad_escapes,
		    NULL, NULL, NULL },
		{ "unsupported field", test_selector_field_unsupported, NULL,
		    NULL, NULL },
		{ "malformed field term", test_selector_field_malformed, NULL,
		    NULL, NULL },
	};
	return cmocka_run_group_tests_name("ks_selector", tests, NULL, NULL);
}

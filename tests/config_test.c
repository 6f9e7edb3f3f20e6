/*
 * config_test.c — tests for common/config.c: flat config files and
 * YAML-to-JSON, including the hostile inputs (deep nesting, aliases,
 * several documents, bad bytes) that must fail cleanly.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "alloc.h"
#include "config.h"
#include "err.h"
#include "json.h"

static mcf_config *
cfg_ok(const char *text)
{
	mcf_config *cfg = NULL;
	mcf_errinfo ei;
	if (mcf_config_parse(text, strlen(text), "cfg.yaml", &cfg, &ei)
	    != MCF_OK)
		fail_msg("%s", ei.msg);
	return cfg;
}

/* Parses `text`, which must fail, and checks the message starts with
 * `prefix` and contains `part`. */
static void
cfg_bad(const char *text, const char *prefix, const char *part)
{
	mcf_config *cfg = (mcf_config *) 0x1;
	mcf_errinfo ei;
	int rc = mcf_config_parse(text, strlen(text), "cfg.yaml", &cfg, &ei);
	if (rc != MCF_EINVAL)
		fail_msg("accepted: %s", text);
	assert_int_equal(ei.code, MCF_EINVAL);
	assert_ptr_equal(cfg, (mcf_config *) 0x1);
	if (strncmp(ei.msg, prefix, strlen(prefix)) != 0)
		fail_msg("message \"%s\" does not start with \"%s\"", ei.msg,
		    prefix);
	if (part != NULL && strstr(ei.msg, part) == NULL)
		fail_msg("message \"%s\" lacks \"%s\"", ei.msg, part);
}

static void
test_config_reads_entries_in_order(void **state)
{
	(void) state;
	mcf_config *cfg = cfg_ok("# comment\n"
	                         "listen: 127.0.0.1:8080\n"
	                         "\n"
	                         "lease: 15s\n"
	                         "verbose: true\n"
	                         "name: \"quoted # not a comment\"\n"
	                         "empty: ''\n"
	                         "port: 0x10\n");
	assert_int_equal(mcf_config_count(cfg), 6);
	assert_string_equal(mcf_config_name(cfg), "cfg.yaml");
	assert_string_equal(mcf_config_key(cfg, 0), "listen");
	assert_string_equal(mcf_config_value(cfg, 0), "127.0.0.1:8080");
	assert_int_equal(mcf_config_line(cfg, 0), 2);
	assert_string_equal(mcf_config_key(cfg, 1), "lease");
	assert_int_equal(mcf_config_line(cfg, 1), 4);
	/* Values keep their text; the flag parses them. */
	assert_string_equal(mcf_config_value(cfg, 2), "true");
	assert_string_equal(
	    mcf_config_value(cfg, 3), "quoted # not a comment");
	assert_string_equal(mcf_config_value(cfg, 4), "");
	assert_string_equal(mcf_config_value(cfg, 5), "0x10");
	assert_int_equal(mcf_config_line(cfg, 5), 8);

	assert_string_equal(mcf_config_get(cfg, "lease"), "15s");
	assert_null(mcf_config_get(cfg, "nope"));
	assert_null(mcf_config_key(cfg, 6));
	assert_null(mcf_config_value(cfg, 99));
	assert_int_equal(mcf_config_line(cfg, 99), 0);
	mcf_config_destroy(cfg);
	mcf_config_destroy(NULL);
}

static void
test_config_joins_sequences(void **state)
{
	(void) state;
	mcf_config *cfg = cfg_ok("peers: [a:1, b:2, c:3]\n"
	                         "shards:\n"
	                         "  - 1\n"
	                         "  - 2\n"
	                         "none: []\n");
	assert_string_equal(mcf_config_get(cfg, "peers"), "a:1,b:2,c:3");
	assert_string_equal(mcf_config_get(cfg, "shards"), "1,2");
	assert_string_equal(mcf_config_get(cfg, "none"), "");
	assert_int_equal(mcf_config_line(cfg, 1), 2);
	mcf_config_destroy(cfg);
}

static void
test_config_empty_documents(void **state)
{
	static const char *empty[]
	    = { "", "# only a comment\n", "---\n", "~\n", "{}\n" };

	(void) state;
	for (size_t i = 0; i < sizeof(empty) / sizeof(empty[0]); i++) {
		mcf_config *cfg = cfg_ok(empty[i]);
		assert_int_equal(mcf_config_count(cfg), 0);
		mcf_config_destroy(cfg);
	}
	mcf_config *cfg = NULL;
	assert_int_equal(mcf_config_parse(NULL, 0, NULL, &cfg, NULL), MCF_OK);
	assert_string_equal(mcf_config_name(cfg), "<config>");
	mcf_config_destroy(cfg);
}

static void
test_config_malformed_yaml_reports_line(void **state)
{
	(void) state;
	/* A mapping value where none may start, on line 3. */
	cfg_bad("a: 1\nb: 2\n  c: 3\n",
	    "cfg.yaml:3:", "mapping values are not allowed");
	/* A tab used for indentation, line 2. */
	cfg_bad("a: 1\n\tb: 2\n", "cfg.yaml:2:", "tab");
	/* An unterminated flow sequence that started on line 2. */
	cfg_bad("a: 1\nb: [1, 2\nc: 3\n", "cfg.yaml:3:", "line 2");
	/* A byte that is not UTF-8, on line 3. */
	cfg_bad("a: 1\nb: 2\nc: \xff\n", "cfg.yaml:3:", "UTF-8");
	/* An unterminated quote. */
	cfg_bad("a: \"open\n", "cfg.yaml:", "quoted scalar");
}

static void
test_config_rejects_wrong_shapes(void **state)
{
	(void) state;
	cfg_bad("- a\n- b\n", "cfg.yaml:1:", "top level must be a mapping");
	cfg_bad("just text\n", "cfg.yaml:1:", "top level must be a mapping");
	cfg_bad("a: 1\nb:\n  c: 1\n",
	    "cfg.yaml:3:", "value of \"b\" must be a scalar");
	cfg_bad("a: {x: 1}\n", "cfg.yaml:1:", "value of \"a\"");
	cfg_bad("a: [1, [2]]\n", "cfg.yaml:1:", "items of \"a\"");
	cfg_bad("a: [1, ~]\n", "cfg.yaml:1:", "items of \"a\"");
	cfg_bad("? [a, b]\n: 1\n", "cfg.yaml:1:", "keys must be flag names");
}

static void
test_config_rejects_null_values(void **state)
{
	(void) state;
	cfg_bad("a: 1\nb:\n", "cfg.yaml:2:", "\"b\" has no value");
	cfg_bad("a: ~\n", "cfg.yaml:1:", "\"a\" has no value");
	cfg_bad("x: 1\n\na: null\n", "cfg.yaml:3:", "\"a\" has no value");
	/* A quoted null is just text. */
	mcf_config *cfg = cfg_ok("a: 'null'\n");
	assert_string_equal(mcf_config_get(cfg, "a"), "null");
	mcf_config_destroy(cfg);
}

static void
test_config_rejects_duplicate_keys(void **state)
{
	(void) state;
	cfg_bad("listen: a\nlease: 1s\nlisten: b\n",
	    "cfg.yaml:3:", "duplicate key \"listen\" (first at line 1)");
}

static void
test_config_rejects_aliases_and_documents(void **state)
{
	(void) state;
	cfg_bad(
	    "a: &x 1\nb: *x\n", "cfg.yaml:2:", "aliases are not supported");
	cfg_bad("a: 1\n---\nb: 2\n", "cfg.yaml:2:", "only one YAML document");
	cfg_bad("a: \"x\\0y\"\n", "cfg.yaml:1:", "NUL");
}

/* Writes `text` to a new temp file; returns its path (new string). */
static char *
write_temp(const char *text)
{
	const char *dir  = getenv("TMPDIR");
	char       *path = mcf_asprintf(
	          "%s/mcf_config_test.XXXXXX.yaml", dir ? dir : "/tmp");
	int fd = mkstemps(path, 5);
	assert_true(fd >= 0);
	size_t len = strlen(text);
	assert_int_equal(write(fd, text, len), (ssize_t) len);
	close(fd);
	return path;
}

static void
test_config_load_file(void **state)
{
	(void) state;
	char       *path = write_temp("listen: :8080\nlease: 5s\n");
	mcf_config *cfg  = NULL;
	mcf_errinfo ei;

	assert_int_equal(mcf_config_load(path, &cfg, &ei), MCF_OK);
	assert_string_equal(mcf_config_name(cfg), path);
	assert_string_equal(mcf_config_get(cfg, "listen"), ":8080");
	mcf_config_destroy(cfg);
	unlink(path);
	free(path);
}

static void
test_config_load_errors_name_the_file(void **state)
{
	(void) state;
	mcf_config *cfg = NULL;
	mcf_errinfo ei;

	assert_int_equal(
	    mcf_config_load("/nonexistent/dir/cfg.yaml", &cfg, &ei),
	    MCF_ENOENT);
	assert_null(cfg);
	assert_non_null(strstr(ei.msg, "/nonexistent/dir/cfg.yaml"));

	assert_int_equal(mcf_config_load("/", &cfg, &ei), MCF_EINVAL);
	assert_non_null(strstr(ei.msg, "directory"));

	/* A syntax error carries the real path and line. */
	char *path = write_temp("a: 1\nb: [\n");
	assert_int_equal(mcf_config_load(path, &cfg, &ei), MCF_EINVAL);
	char *want = mcf_asprintf("%s:3:", path);
	assert_memory_equal(ei.msg, want, strlen(want));
	free(want);
	unlink(path);
	free(path);
}

static json_t *
yaml_ok(const char *text)
{
	json_t     *v = NULL;
	mcf_errinfo ei;
	if (mcf_yaml_parse_json(text, strlen(text), "doc.yaml", &v, &ei)
	    != MCF_OK)
		fail_msg("%s", ei.msg);
	return v;
}

static void
yaml_bad(const char *text, size_t len, const char *prefix, const char *part)
{
	json_t     *v = (json_t *) 0x1;
	mcf_errinfo ei;
	if (mcf_yaml_parse_json(text, len, "doc.yaml", &v, &ei) != MCF_EINVAL)
		fail_msg("accepted: %.200s", text);
	assert_ptr_equal(v, (json_t *) 0x1);
	if (strncmp(ei.msg, prefix, strlen(prefix)) != 0)
		fail_msg("message \"%s\" does not start with \"%s\"", ei.msg,
		    prefix);
	if (part != NULL && strstr(ei.msg, part) == NULL)
		fail_msg("message \"%s\" lacks \"%s\"", ei.msg, part);
}

/* Compares the compact dump of `v` with `want`, then frees `v`. */
static void
assert_json(json_t *v, const char *want)
{
	char *s = mcf_json_dump(v);
	if (strcmp(s, want) != 0)
		fail_msg("got %s, want %s", s, want);
	free(s);
	json_decref(v);
}

static void
test_config_yaml_to_json_tree(void **state)
{
	(void) state;
	assert_json(yaml_ok("apiVersion: v1\n"
	                    "kind: Pod\n"
	                    "metadata:\n"
	                    "  name: w-0\n"
	                    "  labels: {app: mcf, tier: worker}\n"
	                    "spec:\n"
	                    "  containers:\n"
	                    "    - name: c\n"
	                    "      args: [\"--a\", b]\n"
	                    "      ports:\n"
	                    "        - containerPort: 8080\n"),
	    "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":"
	    "\"w-0\",\"labels\":{\"app\":\"mcf\",\"tier\":\"worker\"}},"
	    "\"spec\":{\"containers\":[{\"name\":\"c\",\"args\":[\"--a\","
	    "\"b\"],\"ports\":[{\"containerPort\":8080}]}]}}");
}

static void
test_config_yaml_scalar_types(void **state)
{
	(void) state;
	assert_json(yaml_ok("i: 42\n"
	                    "neg: -7\n"
	                    "oct: 0o17\n"
	                    "hex: 0xff\n"
	                    "f: 1.5\n"
	                    "e: 1e3\n"
	                    "t: true\n"
	                    "F: False\n"
	                    "n: null\n"
	                    "tilde: ~\n"
	                    "empty:\n"
	                    "qi: \"42\"\n"
	                    "qt: 'true'\n"
	                    "yes: yes\n"
	                    "lead: 0644\n"
	                    "str: !!str 12\n"
	                    "inf: .inf\n"
	                    "big: 99999999999999999999\n"
	                    "ver: 1.2.3\n"
	                    "block: |\n"
	                    "  7\n"),
	    "{\"i\":42,\"neg\":-7,\"oct\":15,\"hex\":255,\"f\":1.5,"
	    "\"e\":1000.0,\"t\":true,\"F\":false,\"n\":null,\"tilde\":null,"
	    "\"empty\":null,\"qi\":\"42\",\"qt\":\"true\",\"yes\":\"yes\","
	    "\"lead\":644,\"str\":\"12\",\"inf\":\".inf\","
	    "\"big\":\"99999999999999999999\",\"ver\":\"1.2.3\","
	    "\"block\":\"7\\n\"}");

	/* A document that is only a scalar. */
	assert_json(yaml_ok("hello\n"), "\"hello\"");
	assert_json(yaml_ok("- 1\n- two\n"), "[1,\"two\"]");
}

static void
test_config_yaml_empty_is_null(void **state)
{
	(void) state;
	assert_json(yaml_ok(""), "null");
	assert_json(yaml_ok("# nothing\n"), "null");
	assert_json(yaml_ok("---\n"), "null");
	json_t *v = NULL;
	assert_int_equal(mcf_yaml_parse_json(NULL, 0, NULL, &v, NULL), MCF_OK);
	assert_json(v, "null");
}

static void
test_config_yaml_errors_carry_line_and_column(void **state)
{
	const char *t = "a: 1\nb: 2\n  c: 3\n";

	(void) state;
	yaml_bad(t, strlen(t), "doc.yaml:3:4:", "mapping values");
	t = "a:\n  - x\n  - y\n - z\n";
	yaml_bad(t, strlen(t), "doc.yaml:4:", NULL);
	t = "k: v\nk: w\n";
	yaml_bad(t, strlen(t), "doc.yaml:2:1:", "duplicate key \"k\"");
	t = "? [x]\n: 1\n";
	yaml_bad(t, strlen(t), "doc.yaml:1:3:", "keys must be scalars");
	t = "a: \"\\x\"\n";
	yaml_bad(t, strlen(t), "doc.yaml:1:", NULL);
}

static void
test_config_yaml_rejects_aliases(void **state)
{
	/* The start of a "billion laughs" document: rejected at the first
	 * alias, before anything is expanded. */
	const char *t = "a: &a [x, x, x, x, x, x, x, x, x]\n"
	                "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
	                "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n";

	(void) state;
	yaml_bad(t, strlen(t), "doc.yaml:2:8:", "aliases are not supported");
	/* An anchor alone is harmless. */
	assert_json(yaml_ok("a: &x 1\n"), "{\"a\":1}");
}

static void
test_config_yaml_rejects_second_document(void **state)
{
	const char *t = "a: 1\n---\nb: 2\n";

	(void) state;
	yaml_bad(t, strlen(t), "doc.yaml:2:1:", "more than one YAML document");
	t = "---\na: 1\n...\n---\nb: 2\n";
	yaml_bad(t, strlen(t), "doc.yaml:4:1:", "more than one");
}

/* `n` '[' then `n` ']'; new string. */
static char *
nested(size_t n)
{
	char *s = mcf_malloc(2 * n + 1);
	memset(s, '[', n);
	memset(s + n, ']', n);
	s[2 * n] = '\0';
	return s;
}

static void
test_config_yaml_nesting_is_bounded(void **state)
{
	(void) state;
	char   *s = nested(64);
	json_t *v = yaml_ok(s);
	/* 64 levels are fine... */
	json_t *cur = v;
	for (int i = 1; i < 64; i++)
		cur = json_array_get(cur, 0);
	assert_true(json_is_array(cur));
	assert_int_equal(json_array_size(cur), 0);
	json_decref(v);
	free(s);

	/* ...the 65th is not. */
	s = nested(65);
	yaml_bad(s, strlen(s), "doc.yaml:1:65:", "nesting deeper than 64");
	free(s);

	/* Block mappings count the same way. */
	char  *m   = mcf_malloc(70 * 200);
	size_t len = 0;
	for (int i = 0; i < 70; i++)
		len += (size_t) sprintf(m + len, "%*sk%d:\n", 2 * i, "", i);
	yaml_bad(m, len, "doc.yaml:65:", "nesting deeper than 64");
	free(m);
}

static void
test_config_yaml_hostile_input_fails_cleanly(void **state)
{
	(void) state;
	/* A million open brackets: must fail fast, not recurse or grow. */
	size_t n = 1000000;
	char  *s = mcf_malloc(n);
	memset(s, '[', n);
	yaml_bad(s, n, "doc.yaml:1:65:", "nesting");
	free(s);

	/* NUL and other control bytes. */
	yaml_bad("a: \0b", 5, "doc.yaml:1:4:", NULL);
	yaml_bad("a: \x01", 4, "doc.yaml:1:4:", NULL);
	/* Truncated UTF-8 at the end. */
	yaml_bad("a: \xc3", 4, "doc.yaml:1:", NULL);

	/* A NUL written as an escape is a valid string value. */
	json_t *v = yaml_ok("a: \"x\\0y\"\n");
	assert_int_equal(json_string_length(json_object_get(v, "a")), 3);
	json_decref(v);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config_reads_entries_in_order),
		cmocka_unit_test(test_config_joins_sequences),
		cmocka_unit_test(test_config_empty_documents),
		cmocka_unit_test(test_config_malformed_yaml_reports_line),
		cmocka_unit_test(test_config_rejects_wrong_shapes),
		cmocka_unit_test(test_config_rejects_null_values),
		cmocka_unit_test(test_config_rejects_duplicate_keys),
		cmocka_unit_test(test_config_rejects_aliases_and_documents),
		cmocka_unit_test(test_config_load_file),
		cmocka_unit_test(test_config_load_errors_name_the_file),
		cmocka_unit_test(test_config_yaml_to_json_tree),
		cmocka_unit_test(test_config_yaml_scalar_types),
		cmocka_unit_test(test_config_yaml_empty_is_null),
		cmocka_unit_test(
		    test_config_yaml_errors_carry_line_and_column),
		cmocka_unit_test(test_config_yaml_rejects_aliases),
		cmocka_unit_test(test_config_yaml_rejects_second_document),
		cmocka_unit_test(test_config_yaml_nesting_is_bounded),
		cmocka_unit_test(test_config_yaml_hostile_input_fails_cleanly),
	};
	mcf_alloc_init_libs();
	return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}

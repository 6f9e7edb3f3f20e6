/*
 * flags_test.c — tests for common/flags.c: the accepted forms, the YAML
 * merge (flags win), --help/--version, and every usage error naming the
 * flag or file:line.
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

#include "alloc.h"
#include "err.h"
#include "flags.h"

static char   *f_listen;
static int64_t f_workers;
static bool    f_verbose;
static int64_t f_lease;
static double  f_ratio;
static char   *f_name;

static const mcf_flag table[] = {
	{ "listen", MCF_FLAG_STRING, "HOST:PORT", "127.0.0.1:0",
	    "address to listen on", &f_listen },
	{ "workers", MCF_FLAG_INT, "N", "3", "number of workers", &f_workers },
	{ "verbose", MCF_FLAG_BOOL, NULL, NULL, "log more", &f_verbose },
	{ "lease", MCF_FLAG_DURATION, NULL, "15s", "lease duration",
	    &f_lease },
	{ "ratio", MCF_FLAG_DOUBLE, NULL, "0.5", "a ratio", &f_ratio },
	{ "name", MCF_FLAG_STRING, "NAME", NULL, "worker name", &f_name },
};

static mcf_flagset fs;

/* True once a parse has run, so the destinations hold only NULL or
 * strings the parser allocated. */
static bool parsed;

/* Parses into `fs`, first releasing what an earlier parse stored, as a
 * binary that re-parses would. */
static int
parse(int argc, char **argv, enum mcf_flags_result *res, mcf_errinfo *ei)
{
	if (parsed)
		mcf_flags_free(&fs);
	parsed = true;
	return mcf_flags_parse(&fs, argc, argv, res, ei);
}

static int
setup(void **state)
{
	(void) state;
	memset(&fs, 0, sizeof(fs));
	fs.prog    = "testprog";
	fs.summary = "Exercises the flag parser.";
	fs.flags   = table;
	fs.count   = sizeof(table) / sizeof(table[0]);
	/* Garbage in every destination: parse must not read or free it. */
	f_listen  = (char *) 0x1;
	f_name    = (char *) 0x1;
	f_workers = -99;
	f_verbose = true;
	f_lease   = -99;
	f_ratio   = -99;
	parsed    = false;
	return 0;
}

static int
teardown(void **state)
{
	(void) state;
	if (parsed) {
		mcf_flags_free(&fs);
		assert_null(f_listen);
		assert_null(f_name);
	}
	return 0;
}

#define ARGC(a) ((int) (sizeof(a) / sizeof((a)[0])))

static void
parse_ok(int argc, char **argv)
{
	enum mcf_flags_result res = MCF_FLAGS_EXIT;
	mcf_errinfo           ei;
	if (parse(argc, argv, &res, &ei) != MCF_OK)
		fail_msg("%s", ei.msg);
	assert_int_equal(res, MCF_FLAGS_RUN);
}

/* The parse must fail with a message containing `part`; all strings are
 * then NULL. */
static void
parse_bad(int argc, char **argv, const char *part)
{
	enum mcf_flags_result res;
	mcf_errinfo           ei;
	if (parse(argc, argv, &res, &ei) != MCF_EINVAL)
		fail_msg("accepted %s ...", argc > 1 ? argv[1] : "");
	assert_int_equal(ei.code, MCF_EINVAL);
	if (strstr(ei.msg, part) == NULL)
		fail_msg("message \"%s\" lacks \"%s\"", ei.msg, part);
	assert_null(f_listen);
	assert_null(f_name);
}

static void
test_flags_defaults(void **state)
{
	char *argv[] = { "testprog" };

	(void) state;
	parse_ok(ARGC(argv), argv);
	assert_string_equal(f_listen, "127.0.0.1:0");
	assert_int_equal(f_workers, 3);
	assert_false(f_verbose);
	assert_int_equal(f_lease, 15000);
	assert_true(f_ratio == 0.5);
	assert_null(f_name);
	assert_false(mcf_flags_is_set(&fs, "listen"));
	assert_false(mcf_flags_is_set(&fs, "verbose"));
	assert_false(mcf_flags_is_set(&fs, "no-such-flag"));
}

static void
test_flags_both_value_forms(void **state)
{
	char *argv[]
	    = { "testprog", "--listen", "0.0.0.0:80", "--workers=7", "--lease",
		      "1m30s", "--ratio=-2.5e-1", "--name=", "--verbose" };

	(void) state;
	parse_ok(ARGC(argv), argv);
	assert_string_equal(f_listen, "0.0.0.0:80");
	assert_int_equal(f_workers, 7);
	assert_int_equal(f_lease, 90000);
	assert_true(f_ratio == -0.25);
	assert_string_equal(f_name, "");
	assert_true(f_verbose);
	assert_true(mcf_flags_is_set(&fs, "listen"));
	assert_true(mcf_flags_is_set(&fs, "name"));
	assert_true(mcf_flags_is_set(&fs, "verbose"));
}

static void
test_flags_last_value_wins(void **state)
{
	char *argv[] = { "testprog", "--name", "a", "--name=b", "--workers",
		"1", "--workers", "2" };

	(void) state;
	parse_ok(ARGC(argv), argv);
	assert_string_equal(f_name, "b");
	assert_int_equal(f_workers, 2);
}

static void
test_flags_bool_forms(void **state)
{
	(void) state;
	char *a1[] = { "testprog", "--verbose=false" };
	parse_ok(ARGC(a1), a1);
	assert_false(f_verbose);
	assert_true(mcf_flags_is_set(&fs, "verbose"));

	char *a2[] = { "testprog", "--verbose=1" };
	parse_ok(ARGC(a2), a2);
	assert_true(f_verbose);

	char *a3[] = { "testprog", "--verbose=yes" };
	parse_bad(ARGC(a3), a3, "for flag --verbose");

	/* A boolean never takes the next argument. */
	char *a4[] = { "testprog", "--verbose", "false" };
	parse_bad(ARGC(a4), a4, "unexpected argument \"false\"");
}

static void
test_flags_negative_values_are_not_flags(void **state)
{
	char *argv[] = { "testprog", "--workers", "-5", "--ratio", "-1" };

	(void) state;
	parse_ok(ARGC(argv), argv);
	assert_int_equal(f_workers, -5);
	assert_true(f_ratio == -1.0);
}

static void
test_flags_missing_value(void **state)
{
	(void) state;
	char *a1[] = { "testprog", "--listen" };
	parse_bad(ARGC(a1), a1, "flag --listen needs a value");
	/* The next flag is not taken as the value. */
	char *a2[] = { "testprog", "--listen", "--verbose" };
	parse_bad(ARGC(a2), a2, "flag --listen needs a value");
	char *a3[] = { "testprog", "--config" };
	parse_bad(ARGC(a3), a3, "flag --config needs a value");
}

static void
test_flags_unknown_and_positional(void **state)
{
	(void) state;
	char *a1[] = { "testprog", "--lisen=x" };
	parse_bad(ARGC(a1), a1, "unknown flag --lisen");
	char *a2[] = { "testprog", "-v" };
	parse_bad(ARGC(a2), a2, "unknown flag -v");
	char *a3[] = { "testprog", "extra" };
	parse_bad(ARGC(a3), a3, "unexpected argument \"extra\"");
	char *a4[] = { "testprog", "--", "extra" };
	parse_bad(ARGC(a4), a4, "unexpected argument \"extra\"");
	char *a5[] = { "testprog", "-" };
	parse_bad(ARGC(a5), a5, "unexpected argument \"-\"");
	/* A bare "--" at the end is harmless. */
	char *a6[] = { "testprog", "--verbose", "--" };
	parse_ok(ARGC(a6), a6);
	assert_true(f_verbose);
}

static void
test_flags_malformed_values(void **state)
{
	(void) state;
	char *a1[] = { "testprog", "--workers", "12abc" };
	parse_bad(ARGC(a1), a1, "invalid value \"12abc\" for flag --workers");
	char *a2[] = { "testprog", "--workers=" };
	parse_bad(ARGC(a2), a2, "for flag --workers: not an integer");
	char *a3[] = { "testprog", "--workers= 5" };
	parse_bad(ARGC(a3), a3, "for flag --workers");
	char *a4[] = { "testprog", "--workers=99999999999999999999" };
	parse_bad(ARGC(a4), a4, "out of range");
	char *a5[] = { "testprog", "--lease=5" };
	parse_bad(ARGC(a5), a5, "for flag --lease: invalid duration \"5\"");
	char *a6[] = { "testprog", "--lease=-1s" };
	parse_bad(ARGC(a6), a6, "for flag --lease");
	char *a7[] = { "testprog", "--ratio=abc" };
	parse_bad(ARGC(a7), a7, "for flag --ratio: not a number");
	char *a8[] = { "testprog", "--ratio=inf" };
	parse_bad(ARGC(a8), a8, "for flag --ratio");
	char *a9[] = { "testprog", "--ratio=1e999" };
	parse_bad(ARGC(a9), a9, "for flag --ratio");
	/* The good flag before the bad one is freed too. */
	char *a10[] = { "testprog", "--name", "n", "--workers=x" };
	parse_bad(ARGC(a10), a10, "--workers");
}

/* Runs the parse with stdout sent to a temp file; returns what was
 * printed (new string). */
static char *
parse_stdout(int argc, char **argv, int *rc, enum mcf_flags_result *res)
{
	const char *dir = getenv("TMPDIR");
	char       *path
	    = mcf_asprintf("%s/mcf_flags_out.XXXXXX", dir ? dir : "/tmp");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	unlink(path);
	free(path);

	fflush(stdout);
	int saved = dup(1);
	assert_true(saved >= 0);
	dup2(fd, 1);
	*rc = parse(argc, argv, res, NULL);
	fflush(stdout);
	dup2(saved, 1);
	close(saved);

	off_t size = lseek(fd, 0, SEEK_END);
	char *out  = mcf_malloc((size_t) size + 1);
	assert_int_equal(pread(fd, out, (size_t) size, 0), size);
	out[size] = '\0';
	close(fd);
	return out;
}

static void
test_flags_help_prints_usage_and_exits(void **state)
{
	char *argv[] = { "testprog", "--workers=9", "--help", "--bogus" };
	int   rc;
	enum mcf_flags_result res;

	(void) state;
	char *out = parse_stdout(ARGC(argv), argv, &rc, &res);
	assert_int_equal(rc, MCF_OK);
	assert_int_equal(res, MCF_FLAGS_EXIT);
	assert_memory_equal(out, "usage: testprog", 15);
	assert_non_null(strstr(out, "Exercises the flag parser."));
	assert_non_null(strstr(out, "--listen HOST:PORT"));
	assert_non_null(strstr(out, "(default: 127.0.0.1:0)"));
	assert_non_null(strstr(out, "--lease DURATION"));
	assert_non_null(strstr(out, "--config FILE"));
	assert_non_null(strstr(out, "--help"));
	assert_non_null(strstr(out, "--version"));
	free(out);

	/* An error before --help is still an error. */
	char *a2[] = { "testprog", "--bogus", "--help" };
	parse_bad(ARGC(a2), a2, "unknown flag --bogus");
	char *a3[] = { "testprog", "--help=yes" };
	parse_bad(ARGC(a3), a3, "flag --help takes no value");
}

static void
test_flags_version_prints_version(void **state)
{
	char                 *argv[] = { "testprog", "--version" };
	int                   rc;
	enum mcf_flags_result res;

	(void) state;
	char *out = parse_stdout(ARGC(argv), argv, &rc, &res);
	assert_int_equal(rc, MCF_OK);
	assert_int_equal(res, MCF_FLAGS_EXIT);
	char *want = mcf_asprintf("testprog %s\n", MCF_VERSION);
	assert_string_equal(out, want);
	free(want);
	free(out);
}

static void
test_flags_usage_to_stream(void **state)
{
	char  *buf = NULL;
	size_t len = 0;

	(void) state;
	FILE *fp = open_memstream(&buf, &len);
	assert_non_null(fp);
	mcf_flags_usage(&fs, fp);
	fclose(fp);
	assert_non_null(strstr(buf, "--verbose "));
	assert_null(strstr(buf, "--verbose VALUE"));
	assert_non_null(strstr(buf, "log more"));
	assert_non_null(strstr(buf, "--ratio NUMBER"));
	/* Help texts line up. */
	char *l1 = strstr(buf, "  --workers N");
	char *l2 = strstr(buf, "  --name NAME");
	assert_non_null(l1);
	assert_non_null(l2);
	assert_int_equal(
	    strstr(l1, "number of") - l1, strstr(l2, "worker name") - l2);
	free(buf);
}

/* Writes `text` to a new temp file; returns its path (new string). */
static char *
write_temp(const char *text)
{
	const char *dir  = getenv("TMPDIR");
	char       *path = mcf_asprintf(
	          "%s/mcf_flags_test.XXXXXX.yaml", dir ? dir : "/tmp");
	int fd = mkstemps(path, 5);
	assert_true(fd >= 0);
	size_t len = strlen(text);
	assert_int_equal(write(fd, text, len), (ssize_t) len);
	close(fd);
	return path;
}

static void
test_flags_config_merges_and_flags_win(void **state)
{
	(void) state;
	char *path   = write_temp("# a config\n"
	                            "listen: 10.0.0.1:9000\n"
	                            "workers: 5\n"
	                            "verbose: true\n"
	                            "name: [a, b]\n");
	char *argv[] = { "testprog", "--workers=8", "--config", path };

	parse_ok(ARGC(argv), argv);
	assert_string_equal(f_listen, "10.0.0.1:9000");
	assert_int_equal(f_workers, 8);
	assert_true(f_verbose);
	assert_string_equal(f_name, "a,b");
	assert_int_equal(f_lease, 15000);
	assert_true(mcf_flags_is_set(&fs, "listen"));
	assert_true(mcf_flags_is_set(&fs, "workers"));
	assert_false(mcf_flags_is_set(&fs, "lease"));
	unlink(path);
	free(path);
}

static void
test_flags_config_errors_name_file_and_line(void **state)
{
	(void) state;
	char *path   = write_temp("listen: :1\n"
	                            "\n"
	                            "lisen: :2\n");
	char *argv[] = { "testprog", "--config=" };
	char *arg    = mcf_asprintf("--config=%s", path);
	argv[1]      = arg;
	char *want   = mcf_asprintf("%s:3: unknown key \"lisen\"", path);
	parse_bad(ARGC(argv), argv, want);
	free(want);
	unlink(path);
	free(path);
	free(arg);

	path    = write_temp("workers: 5\nlease: soon\n");
	arg     = mcf_asprintf("--config=%s", path);
	argv[1] = arg;
	want
	    = mcf_asprintf("%s:2: invalid value \"soon\" for \"lease\"", path);
	parse_bad(ARGC(argv), argv, want);
	free(want);
	unlink(path);
	free(path);
	free(arg);

	/* Built-in flags are not config keys. */
	path    = write_temp("config: other.yaml\n");
	arg     = mcf_asprintf("--config=%s", path);
	argv[1] = arg;
	want    = mcf_asprintf("%s:1: unknown key \"config\"", path);
	parse_bad(ARGC(argv), argv, want);
	free(want);
	unlink(path);
	free(path);
	free(arg);

	/* Malformed YAML. */
	path    = write_temp("workers: 5\nlisten: [\n");
	arg     = mcf_asprintf("--config=%s", path);
	argv[1] = arg;
	want    = mcf_asprintf("%s:3:", path);
	parse_bad(ARGC(argv), argv, want);
	free(want);
	unlink(path);
	free(path);
	free(arg);
}

static void
test_flags_config_missing_or_twice(void **state)
{
	(void) state;
	char *a1[] = { "testprog", "--config", "/nonexistent/x.yaml" };
	parse_bad(ARGC(a1), a1, "/nonexistent/x.yaml");

	char *a2[] = { "testprog", "--config", "a.yaml", "--config=b.yaml" };
	parse_bad(ARGC(a2), a2, "--config given more than once");
}

static void
test_flags_reparse_frees_previous_strings(void **state)
{
	(void) state;
	char *a1[] = { "testprog", "--name", "first" };
	parse_ok(ARGC(a1), a1);
	assert_string_equal(f_name, "first");
	/* mcf_flags_free() (called by parse()) leaves NULLs that a second
	 * parse fills again. */
	mcf_flags_free(&fs);
	assert_null(f_name);
	assert_null(f_listen);
	char *a2[] = { "testprog", "--name", "second" };
	parse_ok(ARGC(a2), a2);
	assert_string_equal(f_name, "second");
}

#define FLAGS_TEST(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		FLAGS_TEST(test_flags_defaults),
		FLAGS_TEST(test_flags_both_value_forms),
		FLAGS_TEST(test_flags_last_value_wins),
		FLAGS_TEST(test_flags_bool_forms),
		FLAGS_TEST(test_flags_negative_values_are_not_flags),
		FLAGS_TEST(test_flags_missing_value),
		FLAGS_TEST(test_flags_unknown_and_positional),
		FLAGS_TEST(test_flags_malformed_values),
		FLAGS_TEST(test_flags_help_prints_usage_and_exits),
		FLAGS_TEST(test_flags_version_prints_version),
		FLAGS_TEST(test_flags_usage_to_stream),
		FLAGS_TEST(test_flags_config_merges_and_flags_win),
		FLAGS_TEST(test_flags_config_errors_name_file_and_line),
		FLAGS_TEST(test_flags_config_missing_or_twice),
		FLAGS_TEST(test_flags_reparse_frees_previous_strings),
	};
	return cmocka_run_group_tests_name("flags", tests, NULL, NULL);
}

/*
 * log_test.c — tests for common/log.c.
 *
 * Each test points the logger at a fresh O_APPEND temp file with
 * mcf_log_set_fd(), then reads the file back and parses every line with
 * jansson (rejecting duplicate keys), so the checks are on the JSON a
 * reader sees, not on the bytes we meant to write.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "alloc.h"
#include "err.h"
#include "log.h"

static int cap_fd = -1;

static int
setup(void **state)
{
	const char *dir = getenv("TMPDIR");
	char       *path;

	(void) state;
	path   = mcf_asprintf("%s/mcf_log_test.XXXXXX", dir ? dir : "/tmp");
	cap_fd = mkstemp(path);
	assert_true(cap_fd >= 0);
	unlink(path);
	free(path);
	/* O_APPEND: concurrent writers each land whole at the end. */
	assert_int_equal(fcntl(cap_fd, F_SETFL, O_APPEND), 0);
	mcf_log_set_fd(cap_fd);
	mcf_log_init("logtest", MCF_LOG_INFO);
	return 0;
}

static int
teardown(void **state)
{
	(void) state;
	mcf_log_set_fd(2);
	close(cap_fd);
	cap_fd = -1;
	return 0;
}

/* Everything logged so far; new string, `*len` gets its length. */
static char *
capture_read(size_t *len)
{
	off_t size = lseek(cap_fd, 0, SEEK_END);
	assert_true(size >= 0);
	char   *buf = mcf_malloc((size_t) size + 1);
	ssize_t n   = pread(cap_fd, buf, (size_t) size, 0);
	assert_int_equal(n, size);
	buf[size] = '\0';
	if (len != NULL)
		*len = (size_t) size;
	return buf;
}

static json_t *
parse_line(const char *line, size_t len)
{
	json_error_t jerr;
	json_t      *v = json_loadb(
	         line, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
	if (v == NULL)
		fail_msg(
		    "line is not JSON (%s): %.*s", jerr.text, (int) len, line);
	assert_true(json_is_object(v));
	return v;
}

/* The single line logged so far, parsed (new). */
static json_t *
capture_one(void)
{
	size_t len;
	char  *buf = capture_read(&len);

	assert_true(len > 0);
	assert_int_equal(buf[len - 1], '\n');
	/* Exactly one newline: the terminator. */
	assert_ptr_equal(strchr(buf, '\n'), buf + len - 1);
	json_t *v = parse_line(buf, len - 1);
	free(buf);
	return v;
}

static void
assert_str_field(const json_t *o, const char *key, const char *want)
{
	const json_t *v = json_object_get(o, key);
	assert_non_null(v);
	assert_true(json_is_string(v));
	assert_string_equal(json_string_value(v), want);
}

static void
test_log_line_has_all_fields(void **state)
{
	(void) state;
	mcf_log_set_field("role", "worker");
	mcf_log_set_field("shard", "7");
	mcf_log_info("T-ONE", "hello %d %s", 42, "there");

	size_t len;
	char  *raw = capture_read(&len);
	/* The header promises the order ts, level, component, id, msg. */
	assert_memory_equal(raw, "{\"ts\":\"", 7);
	char *lv = strstr(raw, "\"level\"");
	char *co = strstr(raw, "\"component\"");
	char *id = strstr(raw, "\"id\"");
	char *ms = strstr(raw, "\"msg\"");
	char *ro = strstr(raw, "\"role\"");
	assert_true(lv != NULL && co != NULL && id != NULL && ms != NULL
	    && ro != NULL);
	assert_true(lv < co && co < id && id < ms && ms < ro);
	free(raw);

	json_t *o = capture_one();
	assert_str_field(o, "level", "info");
	assert_str_field(o, "component", "logtest");
	assert_str_field(o, "id", "T-ONE");
	assert_str_field(o, "msg", "hello 42 there");
	assert_str_field(o, "role", "worker");
	assert_str_field(o, "shard", "7");
	assert_null(json_object_get(o, "truncated"));
	json_decref(o);
}

static void
test_log_timestamp_is_rfc3339_utc_micro(void **state)
{
	(void) state;
	time_t before = time(NULL);
	mcf_log_warn("T-TS", "tick");
	time_t after = time(NULL);

	json_t     *o  = capture_one();
	const char *ts = json_string_value(json_object_get(o, "ts"));
	assert_non_null(ts);
	/* 2026-11-24T15:04:05.123456Z */
	assert_int_equal(strlen(ts), 27);
	for (int i = 0; i < 27; i++) {
		char c = ts[i];
		switch (i) {
		case 4:
		case 7:
			assert_int_equal(c, '-');
			break;
		case 10:
			assert_int_equal(c, 'T');
			break;
		case 13:
		case 16:
			assert_int_equal(c, ':');
			break;
		case 19:
			assert_int_equal(c, '.');
			break;
		case 26:
			assert_int_equal(c, 'Z');
			break;
		default:
			assert_true(c >= '0' && c <= '9');
		}
	}
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	assert_non_null(strptime(ts, "%Y-%m-%dT%H:%M:%S", &tm));
	time_t t = timegm(&tm);
	assert_true(t >= before && t <= after);
	assert_str_field(o, "level", "warn");
	json_decref(o);
}

static void
test_log_level_filters_lines(void **state)
{
	(void) state;
	assert_int_equal(mcf_log_get_level(), MCF_LOG_INFO);
	assert_false(mcf_log_enabled(MCF_LOG_DEBUG));
	assert_true(mcf_log_enabled(MCF_LOG_INFO));
	assert_true(mcf_log_enabled(MCF_LOG_ERROR));
	assert_false(mcf_log_enabled(MCF_LOG_OFF));
	mcf_log_debug("T-DBG", "hidden");

	size_t len;
	char  *raw = capture_read(&len);
	assert_int_equal(len, 0);
	free(raw);

	mcf_log_set_level(MCF_LOG_ERROR);
	assert_int_equal(mcf_log_get_level(), MCF_LOG_ERROR);
	mcf_log_warn("T-W", "hidden too");
	mcf_log_error("T-E", "shown");
	json_t *o = capture_one();
	assert_str_field(o, "level", "error");
	assert_str_field(o, "msg", "shown");
	json_decref(o);

	/* OFF silences even errors. */
	mcf_log_set_level(MCF_LOG_OFF);
	assert_false(mcf_log_enabled(MCF_LOG_ERROR));
	mcf_log_error("T-E", "hidden");
	mcf_log_write(MCF_LOG_OFF, "T-OFF", "never a level of its own");
	raw = capture_read(&len);
	assert_null(strstr(raw, "hidden"));
	assert_null(strstr(raw, "T-OFF"));
	free(raw);

	mcf_log_set_level(MCF_LOG_DEBUG);
	assert_true(mcf_log_enabled(MCF_LOG_DEBUG));
	mcf_log_set_level(MCF_LOG_INFO);
}

static int eval_count;

static int
side_effect(void)
{
	return ++eval_count;
}

static void
test_log_level_checked_before_formatting(void **state)
{
	(void) state;
	eval_count = 0;
	mcf_log_debug("T-DBG", "%d", side_effect());
	assert_int_equal(eval_count, 0);
	mcf_log_info("T-INF", "%d", side_effect());
	assert_int_equal(eval_count, 1);
	json_t *o = capture_one();
	assert_str_field(o, "msg", "1");
	json_decref(o);
}

static void
test_log_parse_level(void **state)
{
	enum mcf_log_level l;

	(void) state;
	assert_int_equal(mcf_log_parse_level("debug", &l), MCF_OK);
	assert_int_equal(l, MCF_LOG_DEBUG);
	assert_int_equal(mcf_log_parse_level("info", &l), MCF_OK);
	assert_int_equal(l, MCF_LOG_INFO);
	assert_int_equal(mcf_log_parse_level("warn", &l), MCF_OK);
	assert_int_equal(l, MCF_LOG_WARN);
	assert_int_equal(mcf_log_parse_level("error", &l), MCF_OK);
	assert_int_equal(l, MCF_LOG_ERROR);
	assert_int_equal(mcf_log_parse_level("off", &l), MCF_OK);
	assert_int_equal(l, MCF_LOG_OFF);
	assert_int_equal(mcf_log_parse_level("INFO", &l), MCF_OK);
	assert_int_equal(l, MCF_LOG_INFO);

	l = MCF_LOG_WARN;
	assert_int_equal(mcf_log_parse_level("verbose", &l), MCF_EINVAL);
	assert_int_equal(mcf_log_parse_level("", &l), MCF_EINVAL);
	assert_int_equal(mcf_log_parse_level("info ", &l), MCF_EINVAL);
	assert_int_equal(mcf_log_parse_level(NULL, &l), MCF_EINVAL);
	assert_int_equal(l, MCF_LOG_WARN);
}

static void
test_log_escapes_json_specials(void **state)
{
	const char *msg = "q\"b\\s/n\nr\rt\tc\x01\x1f"
	                  "d\x7f"
	                  "e\xc3\xa9 smile\xf0\x9f\x99\x82";
	(void) state;
	mcf_log_info("T-ESC", "%s", msg);

	size_t len;
	char  *raw = capture_read(&len);
	/* No raw control byte may reach the file; DEL is escaped too. */
	for (size_t i = 0; i + 1 < len; i++)
		assert_true((unsigned char) raw[i] >= 0x20 && raw[i] != 0x7f);
	assert_non_null(strstr(raw, "\\u0001"));
	assert_non_null(strstr(raw, "\\u001f"));
	assert_non_null(strstr(raw, "\\u007f"));
	assert_non_null(strstr(raw, "q\\\"b\\\\s"));
	free(raw);

	/* Valid UTF-8 survives unchanged. */
	json_t *o = capture_one();
	assert_str_field(o, "msg", msg);
	json_decref(o);
}

static void
test_log_escapes_id_and_fields(void **state)
{
	(void) state;
	mcf_log_set_field("worker", "w\"1\n");
	mcf_log_info("T-\"ID\"", "x");
	json_t *o = capture_one();
	assert_str_field(o, "id", "T-\"ID\"");
	assert_str_field(o, "worker", "w\"1\n");
	json_decref(o);
}

static void
test_log_replaces_invalid_utf8(void **state)
{
	static const struct {
		const char *in;
		const char *want;
	} cases[] = {
		{ "a\xff!", "a\xef\xbf\xbd!" },
		/* Truncated at the end of the message. */
		{ "end\xc3", "end\xef\xbf\xbd" },
		/* Overlong "/": C0 never starts a sequence, AF is a stray
		 * continuation byte. */
		{ "\xc0\xaf", "\xef\xbf\xbd\xef\xbf\xbd" },
		/* Maximal subpart: E2 82 is one broken sequence. */
		{ "\xe2\x82x", "\xef\xbf\xbdx" },
		/* A surrogate (U+D800) is three bad bytes. */
		{ "\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" },
		/* Above U+10FFFF. */
		{ "\xf4\x90\x80\x80",
		    "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" },
		/* A valid 4-byte sequence right after a broken one. */
		{ "\xf0\x9f\xf0\x9f\x99\x82", "\xef\xbf\xbd\xf0\x9f\x99\x82" },
	};

	(void) state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(ftruncate(cap_fd, 0), 0);
		mcf_log_info("T-UTF8", "%s", cases[i].in);
		/* capture_one parses with jansson, which rejects any
		 * invalid UTF-8: parsing at all is half the test. */
		json_t *o = capture_one();
		assert_str_field(o, "msg", cases[i].want);
		json_decref(o);
	}
}

static void
test_log_embedded_nul_is_escaped(void **state)
{
	(void) state;
	mcf_log_info("T-NUL", "a%cb", 0);
	json_t       *o = capture_one();
	const json_t *m = json_object_get(o, "msg");
	assert_int_equal(json_string_length(m), 3);
	assert_memory_equal(json_string_value(m), "a\0b", 3);
	json_decref(o);
}

static void
test_log_long_message_is_whole(void **state)
{
	(void) state;
	char *big = mcf_malloc(5001);
	memset(big, 'x', 5000);
	big[5000] = '\0';
	mcf_log_info("T-LONG", "%s", big);
	json_t *o = capture_one();
	assert_str_field(o, "msg", big);
	assert_null(json_object_get(o, "truncated"));
	json_decref(o);
	free(big);
}

static void
test_log_huge_message_is_truncated(void **state)
{
	(void) state;
	size_t n   = 200000;
	char  *big = mcf_malloc(n + 1);
	memset(big, 'y', n);
	big[n] = '\0';
	mcf_log_info("T-HUGE", "%s", big);
	json_t       *o = capture_one();
	const json_t *m = json_object_get(o, "msg");
	assert_true(json_string_length(m) < n);
	assert_true(json_string_length(m) >= 16 * 1024);
	assert_true(json_is_true(json_object_get(o, "truncated")));
	json_decref(o);
	free(big);
}

static void
test_log_set_field_replaces_value(void **state)
{
	(void) state;
	mcf_log_set_field("role", "coordinator");
	mcf_log_set_field("role", "worker");
	mcf_log_info("T-R", "x");
	/* capture_one rejects duplicate keys. */
	json_t *o = capture_one();
	assert_str_field(o, "role", "worker");
	json_decref(o);
}

static void
test_log_null_id_is_omitted(void **state)
{
	(void) state;
	mcf_log_write(MCF_LOG_INFO, NULL, "no id");
	json_t *o = capture_one();
	assert_null(json_object_get(o, "id"));
	assert_str_field(o, "msg", "no id");
	json_decref(o);
}

static void
test_log_init_changes_component(void **state)
{
	(void) state;
	mcf_log_init("other", MCF_LOG_WARN);
	assert_int_equal(mcf_log_get_level(), MCF_LOG_WARN);
	mcf_log_warn("T-C", "x");
	json_t *o = capture_one();
	assert_str_field(o, "component", "other");
	json_decref(o);
}

static void
test_log_preserves_errno(void **state)
{
	(void) state;
	errno = ENOENT;
	mcf_log_info("T-ERRNO", "after a failed call");
	assert_int_equal(errno, ENOENT);
	json_t *o = capture_one();
	json_decref(o);
}

#define LOG_THREADS 4
#define LOG_PER_THREAD 250

static void *
log_thread(void *arg)
{
	int t = (int) (intptr_t) arg;
	for (int i = 0; i < LOG_PER_THREAD; i++)
		mcf_log_info("T-MT", "thread %d line %d %s", t, i,
		    "padding padding padding padding padding padding");
	return NULL;
}

static void
test_log_threads_never_interleave(void **state)
{
	pthread_t th[LOG_THREADS];
	int       seen[LOG_THREADS][LOG_PER_THREAD];

	(void) state;
	memset(seen, 0, sizeof(seen));
	for (int t = 0; t < LOG_THREADS; t++)
		assert_int_equal(pthread_create(&th[t], NULL, log_thread,
		                     (void *) (intptr_t) t),
		    0);
	for (int t = 0; t < LOG_THREADS; t++)
		assert_int_equal(pthread_join(th[t], NULL), 0);

	size_t len;
	char  *raw   = capture_read(&len);
	int    lines = 0;
	for (char *p = raw; p < raw + len;) {
		char *nl = memchr(p, '\n', (size_t) (raw + len - p));
		assert_non_null(nl);
		json_t     *o = parse_line(p, (size_t) (nl - p));
		const char *m = json_string_value(json_object_get(o, "msg"));
		int         t, i;
		assert_non_null(m);
		assert_int_equal(sscanf(m, "thread %d line %d", &t, &i), 2);
		assert_true(t >= 0 && t < LOG_THREADS);
		assert_true(i >= 0 && i < LOG_PER_THREAD);
		seen[t][i]++;
		json_decref(o);
		lines++;
		p = nl + 1;
	}
	free(raw);
	assert_int_equal(lines, LOG_THREADS * LOG_PER_THREAD);
	for (int t = 0; t < LOG_THREADS; t++)
		for (int i = 0; i < LOG_PER_THREAD; i++)
			assert_int_equal(seen[t][i], 1);
}

#define LOG_TEST(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		LOG_TEST(test_log_line_has_all_fields),
		LOG_TEST(test_log_timestamp_is_rfc3339_utc_micro),
		LOG_TEST(test_log_level_filters_lines),
		LOG_TEST(test_log_level_checked_before_formatting),
		LOG_TEST(test_log_parse_level),
		LOG_TEST(test_log_escapes_json_specials),
		LOG_TEST(test_log_escapes_id_and_fields),
		LOG_TEST(test_log_replaces_invalid_utf8),
		LOG_TEST(test_log_embedded_nul_is_escaped),
		LOG_TEST(test_log_long_message_is_whole),
		LOG_TEST(test_log_huge_message_is_truncated),
		LOG_TEST(test_log_set_field_replaces_value),
		LOG_TEST(test_log_null_id_is_omitted),
		LOG_TEST(test_log_init_changes_component),
		LOG_TEST(test_log_preserves_errno),
		LOG_TEST(test_log_threads_never_interleave),
	};
	return cmocka_run_group_tests_name("log", tests, NULL, NULL);
}

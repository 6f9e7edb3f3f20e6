/*
 * alloc_test.c — tests for common/alloc.c.
 *
 * The fatal paths (out of memory, mcf_panic) are checked in a forked child
 * that must die of SIGABRT after writing its JSON line to stderr.  The
 * child only calls our own code before it dies, never nng or curl
 * (STYLE.md §8), and the test process is single-threaded when it forks.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "alloc.h"

static void
test_alloc_malloc_and_realloc_keep_data(void **state)
{
	(void) state;
	char *p = mcf_malloc(16);
	memcpy(p, "0123456789abcdef", 16);
	p = mcf_realloc(p, 1 << 20);
	assert_memory_equal(p, "0123456789abcdef", 16);
	p = mcf_realloc(p, 4);
	assert_memory_equal(p, "0123", 4);
	free(p);
}

static void
test_alloc_zero_sizes_return_pointers(void **state)
{
	(void) state;
	void *a = mcf_malloc(0);
	void *b = mcf_calloc(0, 8);
	void *c = mcf_calloc(8, 0);
	void *d = mcf_realloc(NULL, 0);
	assert_non_null(a);
	assert_non_null(b);
	assert_non_null(c);
	assert_non_null(d);
	free(a);
	free(b);
	free(c);
	free(d);
}

static void
test_alloc_calloc_zeroes(void **state)
{
	(void) state;
	unsigned char *p = mcf_calloc(100, 3);
	for (int i = 0; i < 300; i++)
		assert_int_equal(p[i], 0);
	free(p);
}

static void
test_alloc_strdup_and_strndup(void **state)
{
	(void) state;
	char *a = mcf_strdup("hello");
	assert_string_equal(a, "hello");
	char *b = mcf_strndup("hello", 3);
	assert_string_equal(b, "hel");
	/* n beyond the string stops at its NUL. */
	char *c = mcf_strndup("hi", 100);
	assert_string_equal(c, "hi");
	char *d = mcf_strdup("");
	assert_string_equal(d, "");
	free(a);
	free(b);
	free(c);
	free(d);
}

static char *vfmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *
vfmt(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s = mcf_vasprintf(fmt, ap);
	va_end(ap);
	return s;
}

static void
test_alloc_asprintf_formats(void **state)
{
	(void) state;
	char *a = mcf_asprintf("%s-%d-%05.1f", "x", 42, 3.14159);
	assert_string_equal(a, "x-42-003.1");
	char *b = vfmt("%c%c", 'o', 'k');
	assert_string_equal(b, "ok");
	char *c = mcf_asprintf("%s", "");
	assert_string_equal(c, "");

	/* Longer than any internal first guess. */
	char big[5000];
	memset(big, 'q', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	char *d              = mcf_asprintf("<%s>", big);
	assert_int_equal(strlen(d), sizeof(big) + 1);
	assert_int_equal(d[0], '<');
	assert_int_equal(d[sizeof(big)], '>');
	free(a);
	free(b);
	free(c);
	free(d);
}

static void
test_alloc_init_libs_routes_jansson(void **state)
{
	(void) state;
	mcf_alloc_init_libs();
	json_t *o = json_pack("{s:s, s:[i,i]}", "a", "b", "c", 1, 2);
	assert_non_null(o);
	char *s = json_dumps(o, JSON_COMPACT);
	assert_string_equal(s, "{\"a\":\"b\",\"c\":[1,2]}");
	/* Freed with free(): the hooks are malloc-compatible. */
	free(s);
	json_decref(o);
}

/* Runs `fn` in a child with stderr on a pipe; returns the child's wait
 * status and what it wrote (new string). */
static int
run_child(void (*fn)(void), char **err_out)
{
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(fds[1], 2);
		close(fds[0]);
		close(fds[1]);
		fn();
		_exit(0);
	}
	close(fds[1]);
	size_t cap = 4096, len = 0;
	char  *buf = mcf_malloc(cap);
	for (;;) {
		if (len + 1 == cap)
			buf = mcf_realloc(buf, cap *= 2);
		ssize_t n = read(fds[0], buf + len, cap - len - 1);
		if (n <= 0)
			break;
		len += (size_t) n;
	}
	buf[len] = '\0';
	close(fds[0]);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	*err_out = buf;
	return status;
}

static void
child_panic(void)
{
	mcf_panic("invariant broken");
}

static void
test_alloc_panic_logs_and_aborts(void **state)
{
	char *err;

	(void) state;
	int st = run_child(child_panic, &err);
	assert_true(WIFSIGNALED(st));
	assert_int_equal(WTERMSIG(st), SIGABRT);
	assert_non_null(strstr(err, "MCF-PANIC"));
	assert_non_null(strstr(err, "invariant broken"));
	assert_non_null(strstr(err, "alloc_test.c"));
	free(err);
}

static void
child_oom(void)
{
	/* More than any address space: malloc must fail. */
	void *p = mcf_malloc(SIZE_MAX / 2);
	free(p);
}

static void
test_alloc_out_of_memory_aborts(void **state)
{
	char *err;

	(void) state;
#if defined(__SANITIZE_ADDRESS__)
	/* ASan reports an impossible allocation itself instead of
	 * returning NULL, so our wrapper never sees the failure. */
	skip();
#endif
	int st = run_child(child_oom, &err);
	assert_true(WIFSIGNALED(st));
	assert_int_equal(WTERMSIG(st), SIGABRT);
	assert_non_null(strstr(err, "MCF-OOM"));
	free(err);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_alloc_malloc_and_realloc_keep_data),
		cmocka_unit_test(test_alloc_zero_sizes_return_pointers),
		cmocka_unit_test(test_alloc_calloc_zeroes),
		cmocka_unit_test(test_alloc_strdup_and_strndup),
		cmocka_unit_test(test_alloc_asprintf_formats),
		cmocka_unit_test(test_alloc_init_libs_routes_jansson),
		cmocka_unit_test(test_alloc_panic_logs_and_aborts),
		cmocka_unit_test(test_alloc_out_of_memory_aborts),
	};
	return cmocka_run_group_tests_name("alloc", tests, NULL, NULL);
}

/*
 * base64_test.c — RFC 4648 vectors, URL-safe input, and rejection of
 * malformed input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base64.h"

static const struct {
	const char *plain;
	const char *enc;
} vectors[] = {
	{ "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" }, { "foo", "Zm9v" },
	{ "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" },
	{ "foobar", "Zm9vYmFy" },
};

static void
test_base64_rfc4648_vectors(void **state)
{
	(void) state;
	for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
		char *e = mcf_base64_encode(vectors[i].plain,
		    strlen(vectors[i].plain));
		assert_string_equal(e, vectors[i].enc);
		free(e);
		unsigned char *d;
		size_t         n;
		assert_true(mcf_base64_decode(vectors[i].enc,
		    strlen(vectors[i].enc), &d, &n));
		assert_int_equal(n, strlen(vectors[i].plain));
		assert_memory_equal(d, vectors[i].plain, n);
		free(d);
		assert_true(mcf_base64_valid(vectors[i].enc));
	}
}

static void
test_base64_binary_and_url_safe(void **state)
{
	(void) state;
	unsigned char bin[] = { 0xfb, 0xff, 0x00, 0x3e };
	char         *e     = mcf_base64_encode(bin, sizeof(bin));
	assert_string_equal(e, "+/8APg==");
	free(e);
	unsigned char *d;
	size_t         n;
	assert_true(mcf_base64_decode("-_8APg", 6, &d, &n)); /* no padding */
	assert_int_equal(n, 4);
	assert_memory_equal(d, bin, 4);
	free(d);
	assert_false(mcf_base64_valid("-_8APg=="));
}

static void
test_base64_rejects_malformed(void **state)
{
	(void) state;
	static const char *bad[] = { "Z", "Zm9v!", "Zm=v", "Zg===", "Z===",
		"Zm9vY" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		unsigned char *d = NULL;
		size_t         n;
		assert_false(mcf_base64_decode(bad[i], strlen(bad[i]), &d, &n));
		assert_null(d);
	}
	assert_false(mcf_base64_valid("Zm9"));
	assert_false(mcf_base64_valid("Zm=v"));
	assert_false(mcf_base64_valid("Z=9v"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_base64_rfc4648_vectors),
		cmocka_unit_test(test_base64_binary_and_url_safe),
		cmocka_unit_test(test_base64_rejects_malformed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

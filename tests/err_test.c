/*
 * err_test.c — tests for common/err.c: the error table, mcf_errinfo and
 * the errno translation.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "err.h"

static void
test_err_every_code_has_text_and_name(void **state)
{
	(void) state;
	for (int c = 0; c < MCF_ERR_COUNT; c++) {
		const char *text = mcf_strerror(c);
		const char *name = mcf_err_name(c);
		assert_non_null(text);
		assert_non_null(name);
		assert_true(strlen(text) > 0);
		assert_string_not_equal(text, "unknown error");
		/* Names are the enum's spelling. */
		assert_memory_equal(name, "MCF_", 4);
		for (int d = 0; d < c; d++) {
			assert_string_not_equal(name, mcf_err_name(d));
			assert_string_not_equal(text, mcf_strerror(d));
		}
	}
	assert_string_equal(mcf_err_name(MCF_OK), "MCF_OK");
	assert_string_equal(mcf_err_name(MCF_ENOENT), "MCF_ENOENT");
	assert_string_equal(mcf_strerror(MCF_ENOENT), "not found");
	assert_string_equal(mcf_err_name(MCF_EGONE), "MCF_EGONE");
}

static void
test_err_unknown_codes_are_safe(void **state)
{
	(void) state;
	assert_string_equal(mcf_strerror(-1), "unknown error");
	assert_string_equal(mcf_strerror(MCF_ERR_COUNT), "unknown error");
	assert_string_equal(mcf_strerror(1000000), "unknown error");
	assert_non_null(mcf_err_name(-5));
	assert_non_null(mcf_err_name(MCF_ERR_COUNT));
}

static void
test_err_errinfo_set_formats_and_returns_code(void **state)
{
	mcf_errinfo ei;

	(void) state;
	int rc = mcf_errinfo_set(&ei, MCF_ECONFLICT, "lease %s at %d", "a", 7);
	assert_int_equal(rc, MCF_ECONFLICT);
	assert_int_equal(ei.code, MCF_ECONFLICT);
	assert_string_equal(ei.msg, "lease a at 7");

	mcf_errinfo_clear(&ei);
	assert_int_equal(ei.code, MCF_OK);
	assert_string_equal(ei.msg, "");
}

static void
test_err_errinfo_accepts_null(void **state)
{
	(void) state;
	assert_int_equal(mcf_errinfo_set(NULL, MCF_EIO, "x %d", 1), MCF_EIO);
	mcf_errinfo_clear(NULL);
}

static void
test_err_errinfo_truncates_long_messages(void **state)
{
	mcf_errinfo ei;
	char        big[2000];

	(void) state;
	memset(big, 'z', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	mcf_errinfo_set(&ei, MCF_EINVAL, "%s", big);
	assert_int_equal(strlen(ei.msg), sizeof(ei.msg) - 1);
	assert_int_equal(ei.code, MCF_EINVAL);
}

static void
test_err_from_errno_maps_common_values(void **state)
{
	(void) state;
	assert_int_equal(mcf_err_from_errno(0), MCF_OK);
	assert_int_equal(mcf_err_from_errno(ENOMEM), MCF_ENOMEM);
	assert_int_equal(mcf_err_from_errno(EINVAL), MCF_EINVAL);
	assert_int_equal(mcf_err_from_errno(ENOENT), MCF_ENOENT);
	assert_int_equal(mcf_err_from_errno(EEXIST), MCF_EEXIST);
	assert_int_equal(mcf_err_from_errno(ETIMEDOUT), MCF_ETIMEDOUT);
	assert_int_equal(mcf_err_from_errno(EACCES), MCF_EPERM);
	assert_int_equal(mcf_err_from_errno(EPERM), MCF_EPERM);
	assert_int_equal(mcf_err_from_errno(EAGAIN), MCF_EAGAIN);
	assert_int_equal(mcf_err_from_errno(EBUSY), MCF_EBUSY);
	assert_int_equal(mcf_err_from_errno(ERANGE), MCF_ERANGE);
	assert_int_equal(mcf_err_from_errno(ECONNREFUSED), MCF_EUNAVAIL);
	assert_int_equal(mcf_err_from_errno(ECANCELED), MCF_ECANCELED);
	assert_int_equal(mcf_err_from_errno(EIO), MCF_EIO);
	assert_int_equal(mcf_err_from_errno(EPIPE), MCF_EIO);
	assert_int_equal(mcf_err_from_errno(ECONNRESET), MCF_EIO);
	/* Anything else is a generic system-call failure. */
	assert_int_equal(mcf_err_from_errno(EXDEV), MCF_ESYS);
	assert_int_equal(mcf_err_from_errno(ENOTDIR), MCF_ESYS);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_err_every_code_has_text_and_name),
		cmocka_unit_test(test_err_unknown_codes_are_safe),
		cmocka_unit_test(
		    test_err_errinfo_set_formats_and_returns_code),
		cmocka_unit_test(test_err_errinfo_accepts_null),
		cmocka_unit_test(test_err_errinfo_truncates_long_messages),
		cmocka_unit_test(test_err_from_errno_maps_common_values),
	};
	return cmocka_run_group_tests_name("err", tests, NULL, NULL);
}

/*
 * duration.c — Go/Kubernetes-style durations ("1m30s", "1.5s", "250ms").
 *
 * Parsing follows Go's time.ParseDuration so that a value copied from a
 * Kubernetes manifest or a Go tool means the same here: a sequence of
 * decimal numbers, each with an optional fraction and a mandatory unit,
 * summed.  The sum is computed in nanoseconds with the same overflow limit
 * as Go (2^63-1 ns, about 292 years), so anything Go accepts we accept and
 * anything Go rejects as overflow we reject; only then is it truncated to
 * milliseconds, which is what mcfleet stores.  Unlike Go we reject a sign:
 * no setting of ours takes a negative duration, and "-5s" in a config file
 * is far more likely a mistake than a wish.  Only the ASCII unit "us" is
 * accepted for microseconds (not Go's "µs"), as duration.h lists.
 *
 * Formatting follows Go's Duration.String at millisecond resolution:
 * "0s", "500ms", "1.5s", "2m0s", "1h0m0s".
 */
#include "duration.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* 2^63: intermediate sums may reach it, the final value must stay below. */
#define DUR_LIMIT (UINT64_C(1) << 63)

/* A fraction keeps at most this many digits; 10^18 still fits in uint64_t
 * and is far below a nanosecond for any unit we have. */
#define DUR_FRAC_DIGITS 18

static const struct {
	const char *name;
	uint64_t    ns;
} dur_units[] = {
	{ "ns", UINT64_C(1) },
	{ "us", UINT64_C(1000) },
	{ "ms", UINT64_C(1000000) },
	{ "s", UINT64_C(1000000000) },
	{ "m", UINT64_C(60000000000) },
	{ "h", UINT64_C(3600000000000) },
};

static bool
dur_digit(char c)
{
	return c >= '0' && c <= '9';
}

static uint64_t
dur_unit(const char *u, size_t n)
{
	for (size_t i = 0; i < sizeof(dur_units) / sizeof(dur_units[0]); i++) {
		if (strlen(dur_units[i].name) == n
		    && memcmp(dur_units[i].name, u, n) == 0)
			return dur_units[i].ns;
	}
	return 0;
}

int
mcf_duration_parse(const char *s, int64_t *out_ms, mcf_errinfo *ei)
{
	if (s == NULL || s[0] == '\0')
		return mcf_errinfo_set(
		    ei, MCF_EINVAL, "invalid duration \"\": empty value");
	/* Go accepts a bare zero without a unit, and so do we. */
	if (strcmp(s, "0") == 0) {
		*out_ms = 0;
		return MCF_OK;
	}
	if (s[0] == '-')
		return mcf_errinfo_set(ei, MCF_EINVAL,
		    "invalid duration \"%.200s\": negative durations are not "
		    "allowed",
		    s);

	const char *p     = s;
	uint64_t    total = 0;
	while (*p != '\0') {
		uint64_t v = 0, f = 0, scale = 1;
		int      fdigits = 0;
		bool     digits  = false;

		while (dur_digit(*p)) {
			digits = true;
			if (v > DUR_LIMIT / 10)
				goto range;
			v = v * 10 + (uint64_t) (*p - '0');
			if (v > DUR_LIMIT)
				goto range;
			p++;
		}
		if (*p == '.') {
			p++;
			while (dur_digit(*p)) {
				digits = true;
				/* Digits beyond the precision are below a
				 * nanosecond; Go drops them too. */
				if (fdigits < DUR_FRAC_DIGITS) {
					f = f * 10 + (uint64_t) (*p - '0');
					scale *= 10;
					fdigits++;
				}
				p++;
			}
		}
		if (!digits)
			return mcf_errinfo_set(ei, MCF_EINVAL,
			    "invalid duration \"%.200s\": "
			    "expected a number at \"%.40s\"",
			    s, p);

		const char *u = p;
		while (*p != '\0' && *p != '.' && !dur_digit(*p))
			p++;
		if (p == u)
			return mcf_errinfo_set(ei, MCF_EINVAL,
			    "invalid duration \"%.200s\": "
			    "missing unit (one of ns, us, ms, s, m, h)",
			    s);
		uint64_t unit = dur_unit(u, (size_t) (p - u));
		if (unit == 0)
			return mcf_errinfo_set(ei, MCF_EINVAL,
			    "invalid duration \"%.200s\": unknown unit "
			    "\"%.*s\" (one of ns, us, ms, s, m, h)",
			    s, (int) (p - u > 40 ? 40 : p - u), u);

		if (v > DUR_LIMIT / unit)
			goto range;
		v *= unit;
		if (f > 0) {
			/* Same float arithmetic as Go: f/scale < 1, so the
			 * product is below `unit` and cannot overflow. */
			v += (uint64_t) ((double) f
			    * ((double) unit / (double) scale));
			if (v > DUR_LIMIT)
				goto range;
		}
		total += v;
		if (total > DUR_LIMIT)
			goto range;
	}
	if (total > (uint64_t) INT64_MAX)
		goto range;
	*out_ms = (int64_t) (total / 1000000);
	return MCF_OK;

range:
	return mcf_errinfo_set(ei, MCF_ERANGE,
	    "invalid duration \"%.200s\": out of range (at most about 292 "
	    "years)",
	    s);
}

void
mcf_duration_format(int64_t ms, char *buf, size_t len)
{
	char        tmp[64];
	size_t      n    = 0;
	const char *sign = ms < 0 ? "-" : "";
	/* Unsigned magnitude, well defined also for INT64_MIN. */
	uint64_t u = ms < 0 ? UINT64_C(0) - (uint64_t) ms : (uint64_t) ms;

	if (buf == NULL || len == 0)
		return;
	if (u == 0) {
		snprintf(tmp, sizeof(tmp), "0s");
	} else if (u < 1000) {
		snprintf(tmp, sizeof(tmp), "%s%" PRIu64 "ms", sign, u);
	} else {
		uint64_t h    = u / 3600000;
		uint64_t m    = (u / 60000) % 60;
		uint64_t s    = (u / 1000) % 60;
		uint64_t frac = u % 1000;

		n += (size_t) snprintf(tmp + n, sizeof(tmp) - n, "%s", sign);
		if (h > 0)
			n += (size_t) snprintf(
			    tmp + n, sizeof(tmp) - n, "%" PRIu64 "h", h);
		if (h > 0 || m > 0)
			n += (size_t) snprintf(
			    tmp + n, sizeof(tmp) - n, "%" PRIu64 "m", m);
		n += (size_t) snprintf(
		    tmp + n, sizeof(tmp) - n, "%" PRIu64, s);
		if (frac > 0) {
			char f[16];
			snprintf(f, sizeof(f), ".%03u", (unsigned) frac);
			/* Go prints the shortest fraction: "1.5s". */
			size_t fl = strlen(f);
			while (fl > 1 && f[fl - 1] == '0')
				f[--fl] = '\0';
			n += (size_t) snprintf(
			    tmp + n, sizeof(tmp) - n, "%s", f);
		}
		snprintf(tmp + n, sizeof(tmp) - n, "s");
	}
	snprintf(buf, len, "%s", tmp);
}

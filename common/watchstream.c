/*
 * watchstream.c — push parser for Kubernetes watch streams.
 *
 * The server writes one JSON object per line and flushes it, but the
 * transport (chunked encoding, TCP, libcurl's write callback) may deliver
 * any split of those bytes.  mcf_ws_feed() therefore looks for '\n' in each
 * chunk with memchr.  A line that lies wholly inside the chunk and has no
 * earlier part pending is parsed straight from the caller's bytes; otherwise
 * its bytes are appended to one buffer that is reused for every line and
 * grows by doubling, never beyond max_line_bytes.  The limit is checked as
 * bytes arrive, so a server that never sends '\n' cannot make us allocate
 * without bound.  No strtok (STYLE.md §16): the input is not NUL-terminated
 * and may contain NUL bytes.
 *
 * Decoding.  A line is decoded once, by the fast decoder below: the
 * envelope's members are walked without building an envelope object,
 * "object" becomes a tree of its own, and its byte span is reported when
 * it is compact, so the informer can cache those bytes without
 * serialising the tree again.  If the fast path gives up, the line is
 * decoded by jansson as before and its messages describe a bad line.
 *
 * Every failure (oversize line, malformed line, callback stop) is sticky:
 * the stream is over and later calls repeat the error until mcf_ws_reset().
 * The informer then reconnects and resumes from the last resourceVersion
 * whose event the callback accepted.
 */
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "alloc.h"
#include "err.h"
#include "json.h"
#include "watchstream.h"

/* First buffer size; most events are a few KiB. */
#define WS_INITIAL_CAP 1024

struct mcf_ws {
	size_t      max;     /* longest accepted line, '\r' included */
	char       *buf;     /* owned: pending partial line */
	size_t      len;     /* bytes pending in buf */
	size_t      cap;     /* allocated size of buf, <= max */
	char       *last_rv; /* owned, NUL-terminated, or NULL */
	size_t      rv_cap;  /* allocated size of last_rv */
	bool        in_cb;   /* a callback is running: refuse re-entry */
	mcf_errinfo err;     /* sticky error; err.code == MCF_OK while open */
};

static const struct {
	const char *name;
	mcf_ws_type type;
} ws_types[] = {
	{ "ADDED", MCF_WS_ADDED },
	{ "MODIFIED", MCF_WS_MODIFIED },
	{ "DELETED", MCF_WS_DELETED },
	{ "BOOKMARK", MCF_WS_BOOKMARK },
	{ "ERROR", MCF_WS_ERROR },
};

const char *
mcf_ws_type_name(mcf_ws_type type)
{
	for (size_t i = 0; i < sizeof(ws_types) / sizeof(ws_types[0]); i++)
		if (ws_types[i].type == type)
			return ws_types[i].name;
	return "UNKNOWN";
}

int
mcf_ws_create(mcf_ws **out, size_t max_line_bytes)
{
	mcf_ws *p;

	if (out == NULL || max_line_bytes == 0)
		return MCF_EINVAL;
	p      = mcf_calloc(1, sizeof(*p));
	p->max = max_line_bytes;
	*out   = p;
	return MCF_OK;
}

void
mcf_ws_destroy(mcf_ws *p)
{
	if (p == NULL)
		return;
	free(p->buf);
	free(p->last_rv);
	free(p);
}

void
mcf_ws_reset(mcf_ws *p)
{
	p->len = 0;
	mcf_errinfo_clear(&p->err);
}

const char *
mcf_ws_last_rv(const mcf_ws *p)
{
	return p->last_rv;
}

/* Ends the stream with `code`; the message is kept for later calls. */
static int
ws_fail(mcf_ws *p, mcf_errinfo *ei, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int
ws_fail(mcf_ws *p, mcf_errinfo *ei, int code, const char *fmt, ...)
{
	va_list ap;
	char   *msg;

	va_start(ap, fmt);
	msg = mcf_vasprintf(fmt, ap);
	va_end(ap);
	mcf_errinfo_set(&p->err, code, "%s", msg);
	free(msg);
	p->len = 0;
	return mcf_errinfo_set(ei, code, "%s", p->err.msg);
}

/* Appends to the pending line; the caller has checked the limit. */
static void
ws_append(mcf_ws *p, const char *s, size_t n)
{
	size_t need = p->len + n;

	if (n == 0)
		return;
	if (need > p->cap) {
		size_t cap = p->cap != 0 ? p->cap : WS_INITIAL_CAP;
		while (cap < need && cap <= p->max / 2)
			cap *= 2;
		if (cap < need || cap > p->max)
			cap = p->max;
		p->buf = mcf_realloc(p->buf, cap);
		p->cap = cap;
	}
	memcpy(p->buf + p->len, s, n);
	p->len = need;
}

static bool
ws_blank(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
			return false;
	return true;
}

static void
ws_set_last_rv(mcf_ws *p, const char *rv)
{
	size_t n = strlen(rv) + 1;

	if (n > p->rv_cap) {
		p->last_rv = mcf_realloc(p->last_rv, n);
		p->rv_cap  = n;
	}
	memcpy(p->last_rv, rv, n);
}

/* ---- the decoder ----------------------------------------------------- */

/*
 * A JSON decoder that builds the same jansson tree json_loadb(text, len, 0)
 * builds, several times faster on Kubernetes objects.  jansson reads its
 * input through a byte-at-a-time stream with a UTF-8 check per byte, which
 * costs ~15 ns per byte of string: most of the decode of a ConfigMap is
 * spent walking its data strings.  Here a string without escapes is found
 * eight bytes at a time and handed to jansson's json_stringn_nocheck (one
 * copy); values are built with jansson's own constructors, so the result
 * is an ordinary tree in every way (key order, duplicate keys: the last
 * one wins in the first one's place, as json_object_setn does).
 *
 * The fast path only ever accepts what jansson accepts.  Whatever it is
 * not sure of — a syntax error, an integer of 19 digits or more, a real
 * that overflows, "\u0000", a lone surrogate, nesting deeper than
 * DEC_MAX_DEPTH — makes it give up, and the input is decoded again by
 * json_loadb, whose result (tree or error text) is then the answer.  So
 * errors are always jansson's, and so is every corner case the fast path
 * declines.  tests/watchstream_test.c compares the two on generated and
 * mutated inputs.
 */

#define DEC_MAX_DEPTH 512
#define DEC_SCRATCH 512

typedef struct dec {
	const char *p, *end;
	bool        ws; /* whitespace was skipped between tokens */
	int         depth;
	char       *sbuf; /* scratch for unescaped strings: stack or owned */
	size_t      scap;
	bool        sheap; /* sbuf is owned (mcf_malloc) */
	char        stack[DEC_SCRATCH];
} dec;

static void
dec_init(dec *d, const char *s, size_t n)
{
	d->p     = s;
	d->end   = s + n;
	d->ws    = false;
	d->depth = 0;
	d->sbuf  = d->stack;
	d->scap  = sizeof(d->stack);
	d->sheap = false;
}

static void
dec_fini(dec *d)
{
	if (d->sheap)
		free(d->sbuf);
	d->sbuf = NULL;
}

static inline void
dec_skip_ws(dec *d)
{
	const char *p = d->p;
	while (p < d->end
	    && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
		p++;
	if (p != d->p)
		d->ws = true;
	d->p = p;
}

/* Locale "C" for strtod_l: jansson's strtod is made locale-proof by
 * rewriting the decimal point; a fixed "C" locale gives the same values.
 * Created once, never changed or freed (STYLE.md §9: immutable,
 * process-wide). */
static locale_t       dec_c_locale;
static pthread_once_t dec_locale_once = PTHREAD_ONCE_INIT;

static void
dec_locale_init(void)
{
	dec_c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t) 0);
}

/* True when none of the 8 bytes of `x` is '"', '\\', a control character
 * (< 0x20) or non-ASCII (>= 0x80): the classic "has a zero byte" and
 * "has a byte less than n" word tricks, exact as a yes/no answer. */
static inline bool
dec_plain8(uint64_t x)
{
	const uint64_t ones = 0x0101010101010101ULL;
	const uint64_t high = 0x8080808080808080ULL;
	uint64_t       q    = x ^ (ones * '"');
	uint64_t       b    = x ^ (ones * '\\');
	uint64_t       bad  = x | ((x - ones * 0x20) & ~x) | ((q - ones) & ~q)
	    | ((b - ones) & ~b);
	return (bad & high) == 0;
}

/* Length of the UTF-8 sequence starting at `p` (< end) as jansson's
 * utf8_check_full accepts it, or 0. */
static size_t
dec_utf8(const unsigned char *p, const unsigned char *end)
{
	unsigned c = p[0];
	size_t   n;
	uint32_t v;
	if (c >= 0xC2 && c <= 0xDF) {
		n = 2;
		v = c & 0x1F;
	} else if (c >= 0xE0 && c <= 0xEF) {
		n = 3;
		v = c & 0x0F;
	} else if (c >= 0xF0 && c <= 0xF4) {
		n = 4;
		v = c & 0x07;
	} else {
		return 0;
	}
	if ((size_t) (end - p) < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xC0) != 0x80)
			return 0;
		v = (v << 6) | (p[i] & 0x3F);
	}
	if ((n == 3 && v < 0x800) || (v >= 0xD800 && v <= 0xDFFF)
	    || (n == 4 && (v < 0x10000 || v > 0x10FFFF)))
		return 0;
	return n;
}

static void
dec_scratch_need(dec *d, size_t need)
{
	if (need <= d->scap)
		return;
	size_t cap = d->scap * 2;
	while (cap < need)
		cap *= 2;
	if (d->sheap) {
		d->sbuf = mcf_realloc(d->sbuf, cap);
	} else {
		char *b = mcf_malloc(cap);
		memcpy(b, d->sbuf, d->scap);
		d->sbuf  = b;
		d->sheap = true;
	}
	d->scap = cap;
}

static int
dec_hex4(const char *p)
{
	int v = 0;
	for (int i = 0; i < 4; i++) {
		char c = p[i];
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= c - '0';
		else if (c >= 'a' && c <= 'f')
			v |= c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			v |= c - 'A' + 10;
		else
			return -1;
	}
	return v;
}

/* Decodes the string whose opening quote is at d->p.  `*s` gets its
 * bytes: in the input when it has no escape, else in the scratch buffer
 * (valid until the next string).  False: give up. */
static bool
dec_string(dec *d, const char **s, size_t *n)
{
	const char *p     = d->p + 1;
	const char *start = p;
	const char *end   = d->end;
	/* Plain runs, eight bytes at a time, then byte by byte. */
	for (;;) {
		while (end - p >= 8) {
			uint64_t x;
			memcpy(&x, p, 8);
			if (!dec_plain8(x))
				break;
			p += 8;
		}
		if (p >= end)
			return false;
		unsigned char c = (unsigned char) *p;
		if (c == '"') {
			*s   = start;
			*n   = (size_t) (p - start);
			d->p = p + 1;
			return true;
		}
		if (c == '\\')
			break;
		if (c < 0x20)
			return false;
		if (c >= 0x80) {
			size_t k = dec_utf8((const unsigned char *) p,
			    (const unsigned char *) end);
			if (k == 0)
				return false;
			p += k;
		} else {
			p++;
		}
	}
	/* An escape: unescape into the scratch buffer, which grows with the
	 * output. */
	size_t o = (size_t) (p - start);
	dec_scratch_need(d, o + 4);
	char *out = d->sbuf;
	memcpy(out, start, o);
	while (p < end) {
		unsigned char c = (unsigned char) *p;
		/* One step writes at most four bytes. */
		if (o + 4 > d->scap) {
			dec_scratch_need(d, o + 4);
			out = d->sbuf;
		}
		if (c == '"') {
			*s   = out;
			*n   = o;
			d->p = p + 1;
			return true;
		}
		if (c < 0x20)
			return false;
		if (c >= 0x80) {
			size_t k = dec_utf8((const unsigned char *) p,
			    (const unsigned char *) end);
			if (k == 0)
				return false;
			memcpy(out + o, p, k);
			o += k;
			p += k;
			continue;
		}
		if (c != '\\') {
			out[o++] = (char) c;
			p++;
			continue;
		}
		if (end - p < 2)
			return false;
		switch (p[1]) {
		case '"':
		case '\\':
		case '/':
			out[o++] = p[1];
			p += 2;
			continue;
		case 'b':
			out[o++] = '\b';
			p += 2;
			continue;
		case 'f':
			out[o++] = '\f';
			p += 2;
			continue;
		case 'n':
			out[o++] = '\n';
			p += 2;
			continue;
		case 'r':
			out[o++] = '\r';
			p += 2;
			continue;
		case 't':
			out[o++] = '\t';
			p += 2;
			continue;
		case 'u':
			break;
		default:
			return false;
		}
		if (end - p < 6)
			return false;
		int32_t v = dec_hex4(p + 2);
		p += 6;
		if (v <= 0 || (v >= 0xDC00 && v <= 0xDFFF))
			return false; /* \u0000, bad hex, lone low surrogate */
		if (v >= 0xD800 && v <= 0xDBFF) {
			if (end - p < 6 || p[0] != '\\' || p[1] != 'u')
				return false;
			int32_t lo = dec_hex4(p + 2);
			if (lo < 0xDC00 || lo > 0xDFFF)
				return false;
			p += 6;
			v = 0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00);
		}
		if (v < 0x80) {
			out[o++] = (char) v;
		} else if (v < 0x800) {
			out[o++] = (char) (0xC0 | (v >> 6));
			out[o++] = (char) (0x80 | (v & 0x3F));
		} else if (v < 0x10000) {
			out[o++] = (char) (0xE0 | (v >> 12));
			out[o++] = (char) (0x80 | ((v >> 6) & 0x3F));
			out[o++] = (char) (0x80 | (v & 0x3F));
		} else {
			out[o++] = (char) (0xF0 | (v >> 18));
			out[o++] = (char) (0x80 | ((v >> 12) & 0x3F));
			out[o++] = (char) (0x80 | ((v >> 6) & 0x3F));
			out[o++] = (char) (0x80 | (v & 0x3F));
		}
	}
	return false;
}

static inline bool
dec_digit(const char *p, const char *end)
{
	return p < end && *p >= '0' && *p <= '9';
}

/* A number, with jansson's grammar: integers of up to 18 digits here,
 * longer ones left to jansson (range errors); reals through strtod in
 * the "C" locale, overflow left to jansson. */
static json_t *
dec_number(dec *d)
{
	const char *s = d->p, *p = d->p, *end = d->end;
	bool        neg = false, real = false;
	if (*p == '-') {
		neg = true;
		p++;
	}
	if (!dec_digit(p, end))
		return NULL;
	if (*p == '0') {
		p++;
		if (dec_digit(p, end))
			return NULL;
	} else {
		while (dec_digit(p, end))
			p++;
	}
	if (p < end && *p == '.') {
		p++;
		if (!dec_digit(p, end))
			return NULL;
		while (dec_digit(p, end))
			p++;
		real = true;
	}
	if (p < end && (*p == 'e' || *p == 'E')) {
		p++;
		if (p < end && (*p == '+' || *p == '-'))
			p++;
		if (!dec_digit(p, end))
			return NULL;
		while (dec_digit(p, end))
			p++;
		real = true;
	}
	d->p = p;
	if (!real) {
		const char *q = s + (neg ? 1 : 0);
		if (p - q > 18)
			return NULL;
		int64_t v = 0;
		for (; q < p; q++)
			v = v * 10 + (*q - '0');
		return json_integer(neg ? -v : v);
	}
	char   buf[64];
	size_t len = (size_t) (p - s);
	if (len >= sizeof(buf))
		return NULL;
	memcpy(buf, s, len);
	buf[len] = '\0';
	pthread_once(&dec_locale_once, dec_locale_init);
	if (dec_c_locale == (locale_t) 0)
		return NULL;
	errno    = 0;
	double v = strtod_l(buf, NULL, dec_c_locale);
	if (errno == ERANGE && (v == HUGE_VAL || v == -HUGE_VAL))
		return NULL;
	return json_real(v);
}

static json_t *dec_value(dec *d);

static json_t *
dec_object(dec *d)
{
	if (++d->depth > DEC_MAX_DEPTH)
		return NULL;
	json_t *obj = json_object();
	d->p++; /* '{' */
	dec_skip_ws(d);
	if (d->p < d->end && *d->p == '}') {
		d->p++;
		d->depth--;
		return obj;
	}
	for (;;) {
		const char *k;
		size_t      kl;
		char       *kcopy = NULL;
		if (d->p >= d->end || *d->p != '"' || !dec_string(d, &k, &kl))
			goto fail;
		if (k == d->sbuf) {
			/* The value may reuse the scratch buffer. */
			kcopy = mcf_malloc(kl + 1);
			memcpy(kcopy, k, kl);
			k = kcopy;
		}
		dec_skip_ws(d);
		if (d->p >= d->end || *d->p != ':') {
			free(kcopy);
			goto fail;
		}
		d->p++;
		dec_skip_ws(d);
		json_t *v = dec_value(d);
		if (v == NULL) {
			free(kcopy);
			goto fail;
		}
		int rc = json_object_setn_new_nocheck(obj, k, kl, v);
		free(kcopy);
		if (rc != 0)
			goto fail;
		dec_skip_ws(d);
		if (d->p >= d->end)
			goto fail;
		if (*d->p == ',') {
			d->p++;
			dec_skip_ws(d);
			continue;
		}
		if (*d->p == '}') {
			d->p++;
			d->depth--;
			return obj;
		}
		goto fail;
	}
fail:
	json_decref(obj);
	return NULL;
}

static json_t *
dec_array(dec *d)
{
	if (++d->depth > DEC_MAX_DEPTH)
		return NULL;
	json_t *arr = json_array();
	d->p++; /* '[' */
	dec_skip_ws(d);
	if (d->p < d->end && *d->p == ']') {
		d->p++;
		d->depth--;
		return arr;
	}
	for (;;) {
		json_t *v = dec_value(d);
		if (v == NULL || json_array_append_new(arr, v) != 0)
			goto fail;
		dec_skip_ws(d);
		if (d->p >= d->end)
			goto fail;
		if (*d->p == ',') {
			d->p++;
			dec_skip_ws(d);
			continue;
		}
		if (*d->p == ']') {
			d->p++;
			d->depth--;
			return arr;
		}
		goto fail;
	}
fail:
	json_decref(arr);
	return NULL;
}

static bool
dec_word(dec *d, const char *w, size_t n)
{
	if ((size_t) (d->end - d->p) < n || memcmp(d->p, w, n) != 0)
		return false;
	d->p += n;
	return true;
}

/* A value at d->p (no leading whitespace); NULL: give up. */
static json_t *
dec_value(dec *d)
{
	if (d->p >= d->end)
		return NULL;
	switch (*d->p) {
	case '{':
		return dec_object(d);
	case '[':
		return dec_array(d);
	case '"': {
		const char *s;
		size_t      n;
		if (!dec_string(d, &s, &n))
			return NULL;
		return json_stringn_nocheck(s, n);
	}
	case 't':
		return dec_word(d, "true", 4) ? json_true() : NULL;
	case 'f':
		return dec_word(d, "false", 5) ? json_false() : NULL;
	case 'n':
		return dec_word(d, "null", 4) ? json_null() : NULL;
	default:
		return dec_number(d);
	}
}

int
mcf_ws_decode(const char *text, size_t len, json_t **out, mcf_errinfo *ei)
{
	dec     d;
	json_t *v = NULL;
	if (text == NULL)
		text = "";
	dec_init(&d, text, len);
	dec_skip_ws(&d);
	if (d.p < d.end && *d.p == '{') {
		v = dec_object(&d);
		dec_skip_ws(&d);
		if (v != NULL && d.p != d.end) {
			json_decref(v);
			v = NULL;
		}
	}
	dec_fini(&d);
	if (v == NULL) {
		/* Not sure, or not JSON: jansson decides. */
		json_error_t je;
		v = json_loadb(text, len, 0, &je);
		if (v == NULL)
			return mcf_errinfo_set(ei, MCF_EPROTO,
			    "line %d, column %d: %s", je.line, je.column,
			    je.text);
		if (!json_is_object(v)) {
			json_decref(v);
			return mcf_errinfo_set(
			    ei, MCF_EPROTO, "not a JSON object");
		}
	}
	*out = v;
	mcf_errinfo_clear(ei);
	return MCF_OK;
}

/* Type of the name `s[0..n)`; false when unknown. */
static bool
ws_type_of(const char *s, size_t n, mcf_ws_type *out)
{
	for (size_t i = 0; i < sizeof(ws_types) / sizeof(ws_types[0]); i++) {
		if (strlen(ws_types[i].name) == n &&
		    memcmp(ws_types[i].name, s, n) == 0) {
			*out = ws_types[i].type;
			return true;
		}
	}
	return false;
}

/* The event line `s[0..n)` by the decoder's fast path: its type, its
 * "object" (new, a root of its own) and, when the object's bytes hold no
 * whitespace between tokens, their span.  False when the fast path gives
 * up on anything: the line is then decoded by jansson, whose errors are
 * the ones reported. */
static bool
ws_fast_line(const char *s, size_t n, mcf_ws_type *type, json_t **obj,
    const char **otext, size_t *olen)
{
	dec         d;
	json_t     *o  = NULL;
	const char *ts = NULL, *os = NULL;
	size_t      tl = 0, ol = 0;
	bool        compact = false, ok = false;

	dec_init(&d, s, n);
	dec_skip_ws(&d);
	if (d.p >= d.end || *d.p != '{')
		goto out;
	d.p++;
	d.depth = 1;
	dec_skip_ws(&d);
	for (;;) {
		const char *k;
		size_t      kl;
		int         which = 0;
		if (d.p >= d.end || *d.p != '"' || !dec_string(&d, &k, &kl))
			goto out;
		if (kl == 4 && memcmp(k, "type", 4) == 0)
			which = 1;
		else if (kl == 6 && memcmp(k, "object", 6) == 0)
			which = 2;
		dec_skip_ws(&d);
		if (d.p >= d.end || *d.p != ':')
			goto out;
		d.p++;
		dec_skip_ws(&d);
		if (which == 1) {
			if (d.p >= d.end || *d.p != '"'
			    || !dec_string(&d, &ts, &tl) || ts == d.sbuf)
				goto out; /* escaped: jansson's path */
		} else if (which == 2) {
			if (d.p >= d.end || *d.p != '{')
				goto out;
			const char *at = d.p;
			d.ws           = false;
			json_t *v      = dec_object(&d);
			if (v == NULL)
				goto out;
			json_decref(o); /* a duplicate key: the last wins */
			o       = v;
			os      = at;
			ol      = (size_t) (d.p - at);
			compact = !d.ws;
		} else {
			json_t *v = dec_value(&d);
			if (v == NULL)
				goto out;
			json_decref(v);
		}
		dec_skip_ws(&d);
		if (d.p >= d.end)
			goto out;
		if (*d.p == ',') {
			d.p++;
			dec_skip_ws(&d);
			continue;
		}
		if (*d.p != '}')
			goto out;
		d.p++;
		break;
	}
	dec_skip_ws(&d);
	ok = d.p == d.end && ts != NULL && o != NULL
	    && ws_type_of(ts, tl, type);
out:
	dec_fini(&d);
	if (!ok) {
		json_decref(o);
		return false;
	}
	*obj   = o;
	*otext = compact ? os : NULL;
	*olen  = compact ? ol : 0;
	return true;
}

/* The event line `s[0..n)` by jansson, with the error messages of a bad
 * line: its type and its object (new). */
static int
ws_slow_line(mcf_ws *p, const char *s, size_t n, mcf_ws_type *type,
    json_t **obj, mcf_errinfo *ei)
{
	mcf_errinfo jei;
	json_t     *v = NULL;
	json_t     *t;
	json_t     *o;

	if (mcf_json_parse(s, n, &v, &jei) != MCF_OK)
		return ws_fail(p, ei, MCF_EPROTO,
		    "malformed watch event (%zu bytes): %s", n, jei.msg);
	if (!json_is_object(v)) {
		json_decref(v);
		return ws_fail(p, ei, MCF_EPROTO,
		    "watch event is not a JSON object");
	}
	t = json_object_get(v, "type");
	if (!json_is_string(t)) {
		json_decref(v);
		return ws_fail(p, ei, MCF_EPROTO,
		    "watch event has no string \"type\"");
	}
	if (!ws_type_of(json_string_value(t), json_string_length(t), type)) {
		int rc = ws_fail(p, ei, MCF_EPROTO,
		    "unknown watch event type \"%.64s\"", json_string_value(t));
		json_decref(v);
		return rc;
	}
	o = json_object_get(v, "object");
	if (!json_is_object(o)) {
		json_decref(v);
		return ws_fail(p, ei, MCF_EPROTO,
		    "%s watch event has no \"object\" object",
		    mcf_ws_type_name(*type));
	}
	*obj = json_incref(o);
	json_decref(v);
	return MCF_OK;
}

/* Drops the parser's reference to an event's object.  A callback may
 * keep the object (json_incref) and hand it to other threads, so this is
 * json_decref with an atomic read of the count and an acquire-release
 * decrement: jansson's inline json_decref reads the count with a plain
 * load, a data race (for ThreadSanitizer) when another thread holds the
 * object too. */
static void
ws_obj_release(json_t *obj)
{
	if (obj == NULL
	    || __atomic_load_n(&obj->refcount, __ATOMIC_RELAXED)
	        == (size_t) -1)
		return;
	if (__atomic_sub_fetch(&obj->refcount, 1, __ATOMIC_ACQ_REL) == 0)
		json_delete(obj);
}

/* Parses one complete line (without its '\n') and delivers the event. */
static int
ws_line(mcf_ws *p, const char *s, size_t n, mcf_ws_cb cb, void *arg,
    mcf_errinfo *ei)
{
	json_t      *obj = NULL;
	mcf_ws_event ev;
	int          stop;

	if (ws_blank(s, n))
		return MCF_OK;
	memset(&ev, 0, sizeof(ev));
	if (!ws_fast_line(
	        s, n, &ev.type, &obj, &ev.object_text, &ev.object_len)) {
		int rc = ws_slow_line(p, s, n, &ev.type, &obj, ei);
		if (rc != MCF_OK)
			return rc;
	}
	ev.object           = obj;
	ev.resource_version = mcf_json_path_str(obj, "metadata.resourceVersion");
	if (ev.type == MCF_WS_ERROR) {
		json_t *c = json_object_get(obj, "code");
		if (json_is_integer(c)) {
			json_int_t ci = json_integer_value(c);
			if (ci >= INT_MIN && ci <= INT_MAX)
				ev.code = (int) ci;
		}
		ev.reason  = json_string_value(json_object_get(obj, "reason"));
		ev.message = json_string_value(json_object_get(obj, "message"));
	}

	p->in_cb = true;
	stop     = cb(&ev, arg);
	p->in_cb = false;
	if (stop != 0) {
		ws_obj_release(obj);
		return ws_fail(p, ei, MCF_ECANCELED,
		    "watch stream stopped by its event callback");
	}
	if (ev.type != MCF_WS_ERROR && ev.resource_version != NULL)
		ws_set_last_rv(p, ev.resource_version);
	ws_obj_release(obj);
	return MCF_OK;
}

int
mcf_ws_feed(mcf_ws *p, const void *bytes, size_t len, mcf_ws_cb cb,
    void *arg, mcf_errinfo *ei)
{
	const char *s = bytes;
	size_t      n = len;

	assert(cb != NULL);
	if (p->in_cb)
		return mcf_errinfo_set(ei, MCF_EBUSY,
		    "mcf_ws_feed called from its own callback");
	if (p->err.code != MCF_OK)
		return mcf_errinfo_set(ei, p->err.code, "%s", p->err.msg);

	while (n > 0) {
		const char *nl   = memchr(s, '\n', n);
		size_t      take = nl != NULL ? (size_t) (nl - s) : n;
		int         rc;

		if (take > p->max - p->len)
			return ws_fail(p, ei, MCF_ETOOBIG,
			    "watch event line longer than %zu bytes", p->max);
		if (nl == NULL) {
			ws_append(p, s, n);
			break;
		}
		if (p->len == 0) {
			rc = ws_line(p, s, take, cb, arg, ei);
		} else {
			ws_append(p, s, take);
			rc = ws_line(p, p->buf, p->len, cb, arg, ei);
			p->len = 0;
		}
		if (rc != MCF_OK)
			return rc;
		s += take + 1;
		n -= take + 1;
	}
	mcf_errinfo_clear(ei);
	return MCF_OK;
}

int
mcf_ws_finish(mcf_ws *p, mcf_errinfo *ei)
{
	if (p->in_cb)
		return mcf_errinfo_set(ei, MCF_EBUSY,
		    "mcf_ws_finish called from its own callback");
	if (p->err.code != MCF_OK)
		return mcf_errinfo_set(ei, p->err.code, "%s", p->err.msg);
	if (!ws_blank(p->buf, p->len))
		return ws_fail(p, ei, MCF_EPROTO,
		    "watch stream cut inside an event (%zu bytes pending)",
		    p->len);
	p->len = 0;
	mcf_errinfo_clear(ei);
	return MCF_OK;
}

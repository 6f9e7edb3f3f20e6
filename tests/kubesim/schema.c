/*
 * schema.c — structural schemas of CustomResourceDefinitions: pruning,
 * defaulting and validation of custom resources, as apiextensions-apiserver
 * (Kubernetes 1.32) and kube-openapi do them.
 *
 * How it works.  ks_schema_compile() turns an openAPIV3Schema into a tree of
 * `node`s, checking every keyword it enforces for the right JSON type and
 * compiling each `pattern` once.  Kubernetes patterns are Go RE2 syntax;
 * they are translated to POSIX extended regular expressions (re2_to_ere())
 * and compiled with regcomp(); syntax with no POSIX equivalent (Unicode
 * classes, backreferences, most flags) makes the compile fail with a clear
 * message rather than silently change meaning.  The tree is never nested
 * deeper than MAX_DEPTH levels, and every walk below follows the tree, so
 * no hostile object can drive the recursion deeper than the schema is.
 *
 * ks_schema_apply() then runs the same steps, in the same order, as the
 * apiserver's decoder and validator:
 *   1. prune: drop fields the schema does not declare (unless
 *      x-kubernetes-preserve-unknown-fields or additionalProperties allows
 *      them), recording each path, and drop `null`s of non-nullable fields
 *      that have no default (PruneNonNullableNullsWithoutDefaults);
 *   2. default: for every object present, absent properties (and
 *      non-nullable nulls) with a `default` get a deep copy of it, which is
 *      itself defaulted;
 *   3. validate: collect one field.Error per failed check, with the cause
 *      reason, the field path and the text apimachinery's ErrorBody() would
 *      print (kubeOpenAPIResultToFieldErrors decides the reason).
 *
 * Field paths follow kube-openapi: "spec.ownerRef.kind",
 * "status.conditions[0].reason"; values of additionalProperties maps are
 * written "spec.labels[key]" (field.Path.Key form; kube-openapi itself
 * writes ".key").  At the root, `apiVersion`, `kind` and `metadata` are
 * never pruned or validated (apiserver handles them).  As in kube-openapi,
 * a failed `format: date-time` is FieldValueTypeInvalid ("must be of type
 * date-time"), and maxItems is FieldValueTooMany.
 *
 * Known differences from the real server: `.` and bracket expressions in
 * patterns match bytes, not UTF-8 characters (regcomp runs in the C locale;
 * changing the locale would be process-wide state); a value that fails its
 * type gets only the type error (kube-openapi may add an enum error too);
 * only the "date-time" format is checked; defaults are not validated or
 * pruned when the schema is compiled; an array schema without `items`
 * (not structural, so refused by a real server) leaves its elements
 * unconstrained instead of failing the compile.
 */
#include "schema.h"

#include <math.h>
#include <regex.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"

/* Levels of properties/items/additionalProperties a schema may nest.
 * Real CRDs use a dozen at most; the limit keeps every recursion in this
 * file bounded (and the C stack safe) whatever a client sends. */
#define MAX_DEPTH 64

/* RE2 rejects repeat counts above this. */
#define RE2_MAX_REPEAT 1000

/* Longest rendering of an object or array value inside a message. */
#define MAX_VALUE_TEXT 256

/* ---- growable strings ---- */

typedef struct sbuf {
	char  *buf; /* owned, NUL-terminated when non-NULL */
	size_t len;
	size_t cap;
} sbuf;

static void
sb_reserve(sbuf *sb, size_t more)
{
	if (sb->len + more + 1 <= sb->cap)
		return;
	size_t cap = sb->cap ? sb->cap : 64;
	while (cap < sb->len + more + 1)
		cap *= 2;
	sb->buf = mcf_realloc(sb->buf, cap);
	sb->cap = cap;
}

static void
sb_putn(sbuf *sb, const char *s, size_t n)
{
	sb_reserve(sb, n);
	memcpy(sb->buf + sb->len, s, n);
	sb->len += n;
	sb->buf[sb->len] = '\0';
}

static void
sb_puts(sbuf *sb, const char *s)
{
	sb_putn(sb, s, strlen(s));
}

static void
sb_putc(sbuf *sb, char c)
{
	sb_putn(sb, &c, 1);
}

static void sb_printf(sbuf *sb, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
sb_printf(sbuf *sb, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s = mcf_vasprintf(fmt, ap);
	va_end(ap);
	sb_puts(sb, s);
	free(s);
}

/* Cuts the string back to `len` bytes (a length saved earlier). */
static void
sb_truncate(sbuf *sb, size_t len)
{
	if (sb->buf == NULL || len > sb->len)
		return;
	sb->len          = len;
	sb->buf[sb->len] = '\0';
}

/* The text, as a new string (never NULL); the buffer is left empty. */
static char *
sb_take(sbuf *sb)
{
	char *s = sb->buf ? sb->buf : mcf_strdup("");
	sb->buf = NULL;
	sb->len = sb->cap = 0;
	return s;
}

static const char *
sb_str(const sbuf *sb)
{
	return sb->buf ? sb->buf : "";
}

/* Appends a map key or property name to a path; NUL bytes (jansson keys
 * may hold them) are written as \x00 so the path stays one C string. */
static void
sb_put_key(sbuf *sb, const char *k, size_t klen)
{
	for (size_t i = 0; i < klen; i++) {
		if (k[i] == '\0')
			sb_puts(sb, "\\x00");
		else
			sb_putc(sb, k[i]);
	}
}

/* ---- Go-style rendering of values (strconv.Quote, fmt %v) ---- */

/* Length of the valid UTF-8 sequence at s[0..n), or 0 if invalid. */
static size_t
utf8_len(const unsigned char *s, size_t n, uint32_t *cp)
{
	unsigned char c = s[0];
	size_t        len;
	uint32_t      v, min;
	if (c < 0x80) {
		*cp = c;
		return 1;
	} else if ((c & 0xe0) == 0xc0) {
		len = 2;
		v   = c & 0x1f;
		min = 0x80;
	} else if ((c & 0xf0) == 0xe0) {
		len = 3;
		v   = c & 0x0f;
		min = 0x800;
	} else if ((c & 0xf8) == 0xf0) {
		len = 4;
		v   = c & 0x07;
		min = 0x10000;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		v = (v << 6) | (s[i] & 0x3f);
	}
	if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
		return 0;
	*cp = v;
	return len;
}

/* strconv.Quote: the result is always valid UTF-8, whatever `s` holds. */
static void
go_quote(sbuf *sb, const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *) s;
	sb_reserve(sb, n + 2);
	sb_putc(sb, '"');
	for (size_t i = 0; i < n;) {
		unsigned char c = u[i];
		uint32_t      cp;
		size_t        l;
		switch (c) {
		case '"':
			sb_puts(sb, "\\\"");
			i++;
			continue;
		case '\\':
			sb_puts(sb, "\\\\");
			i++;
			continue;
		case '\a':
			sb_puts(sb, "\\a");
			i++;
			continue;
		case '\b':
			sb_puts(sb, "\\b");
			i++;
			continue;
		case '\f':
			sb_puts(sb, "\\f");
			i++;
			continue;
		case '\n':
			sb_puts(sb, "\\n");
			i++;
			continue;
		case '\r':
			sb_puts(sb, "\\r");
			i++;
			continue;
		case '\t':
			sb_puts(sb, "\\t");
			i++;
			continue;
		case '\v':
			sb_puts(sb, "\\v");
			i++;
			continue;
		default:
			break;
		}
		if (c < 0x20 || c == 0x7f) {
			sb_printf(sb, "\\x%02x", c);
			i++;
		} else if (c < 0x80) {
			sb_putc(sb, (char) c);
			i++;
		} else if ((l = utf8_len(u + i, n - i, &cp)) == 0) {
			sb_printf(sb, "\\x%02x", c);
			i++;
		} else if (cp < 0xa0) {
			sb_printf(sb, "\\u%04x", (unsigned) cp);
			i += l;
		} else {
			sb_putn(sb, s + i, l);
			i += l;
		}
	}
	sb_putc(sb, '"');
}

static void
go_quote_str(sbuf *sb, const char *s)
{
	go_quote(sb, s, strlen(s));
}

/* Go's %v of a float64: the shortest text that reads back as `d`, in %e
 * form when the exponent is below -4 or at least 6 (a shortest-precision
 * quirk of strconv's 'g'). */
static void
go_float(sbuf *sb, double d)
{
	char buf[64];
	if (isnan(d)) {
		sb_puts(sb, "NaN");
		return;
	}
	if (isinf(d)) {
		sb_puts(sb, d > 0 ? "+Inf" : "-Inf");
		return;
	}
	int prec = 1;
	for (; prec < 17; prec++) {
		snprintf(buf, sizeof(buf), "%.*e", prec - 1, d);
		if (strtod(buf, NULL) == d)
			break;
	}
	snprintf(buf, sizeof(buf), "%.*e", prec - 1, d);
	const char *e   = strchr(buf, 'e');
	int         exp = e ? atoi(e + 1) : 0;
	if (exp < -4 || exp >= 6) {
		sb_puts(sb, buf);
		return;
	}
	int decimals = prec - 1 - exp;
	sb_printf(sb, "%.*f", decimals > 0 ? decimals : 0, d);
}

/* Compact JSON with quoted keys and strings, cut at MAX_VALUE_TEXT bytes
 * and at a small depth so that no value can make a message huge. */
static void
render_json(sbuf *sb, const json_t *v, size_t start, int depth)
{
	if (sb->len - start > MAX_VALUE_TEXT || depth > 8) {
		sb_puts(sb, "...");
		return;
	}
	switch (json_typeof(v)) {
	case JSON_OBJECT: {
		sb_putc(sb, '{');
		bool  first = true;
		void *it    = json_object_iter((json_t *) v);
		for (; it != NULL;
		     it = json_object_iter_next((json_t *) v, it)) {
			if (!first)
				sb_putc(sb, ',');
			first = false;
			if (sb->len - start > MAX_VALUE_TEXT) {
				sb_puts(sb, "...");
				break;
			}
			go_quote(sb, json_object_iter_key(it),
			    json_object_iter_key_len(it));
			sb_putc(sb, ':');
			render_json(
			    sb, json_object_iter_value(it), start, depth + 1);
		}
		sb_putc(sb, '}');
		break;
	}
	case JSON_ARRAY:
		sb_putc(sb, '[');
		for (size_t i = 0; i < json_array_size(v); i++) {
			if (i > 0)
				sb_putc(sb, ',');
			if (sb->len - start > MAX_VALUE_TEXT) {
				sb_puts(sb, "...");
				break;
			}
			render_json(
			    sb, json_array_get(v, i), start, depth + 1);
		}
		sb_putc(sb, ']');
		break;
	case JSON_STRING:
		go_quote(sb, json_string_value(v), json_string_length(v));
		break;
	case JSON_INTEGER:
		sb_printf(sb, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		break;
	case JSON_REAL:
		go_float(sb, json_real_value(v));
		break;
	case JSON_TRUE:
		sb_puts(sb, "true");
		break;
	case JSON_FALSE:
		sb_puts(sb, "false");
		break;
	case JSON_NULL:
		sb_puts(sb, "null");
		break;
	}
}

/* field.Error's rendering of a bad value: strings quoted, numbers and
 * booleans plain, null as "null", anything else as (short) JSON. */
static void
go_value(sbuf *sb, const json_t *v)
{
	render_json(sb, v, sb->len, 0);
}

/* ---- compiled schema ---- */

enum node_type {
	TY_NONE = 0, /* no `type`: anything goes */
	TY_OBJECT,
	TY_ARRAY,
	TY_STRING,
	TY_INTEGER,
	TY_NUMBER,
	TY_BOOLEAN,
};

static const char *const type_names[] = {
	[TY_NONE]    = "",
	[TY_OBJECT]  = "object",
	[TY_ARRAY]   = "array",
	[TY_STRING]  = "string",
	[TY_INTEGER] = "integer",
	[TY_NUMBER]  = "number",
	[TY_BOOLEAN] = "boolean",
};

typedef struct node node;

typedef struct name {
	char  *s; /* owned; may hold NUL bytes, len says how long */
	size_t len;
} name;

typedef struct prop {
	name  key;
	node *schema; /* owned */
} prop;

/* A numeric bound (minimum or maximum). */
typedef struct bound {
	bool       set;
	bool       exclusive;
	bool       is_int; /* the schema wrote an integer */
	json_int_t i;
	double     d;
} bound;

struct node {
	enum node_type type;
	bool           nullable;
	bool           preserve; /* x-kubernetes-preserve-unknown-fields */
	bool           int_or_string; /* x-kubernetes-int-or-string */
	bool           embedded;      /* x-kubernetes-embedded-resource */
	bool           date_time;     /* format: date-time */
	prop          *props;         /* owned, sorted by key */
	size_t         nprops;
	name          *required; /* owned */
	size_t         nrequired;
	node          *items;    /* owned; NULL: elements unconstrained */
	node          *addl;     /* owned: additionalProperties schema */
	bool           addl_any; /* additionalProperties: true */
	json_t        *enums;    /* owned non-empty array, or NULL */
	json_t        *def;      /* owned default, or NULL */
	char          *pattern;  /* owned RE2 text as written, or NULL */
	regex_t        re;       /* compiled when pattern != NULL */
	json_int_t     min_len, max_len, min_items, max_items; /* -1: unset */
	bound          min, max;
};

struct ks_schema {
	node *root; /* owned */
};

static void
node_free(node *n)
{
	if (n == NULL)
		return;
	for (size_t i = 0; i < n->nprops; i++) {
		free(n->props[i].key.s);
		node_free(n->props[i].schema);
	}
	free(n->props);
	for (size_t i = 0; i < n->nrequired; i++)
		free(n->required[i].s);
	free(n->required);
	node_free(n->items);
	node_free(n->addl);
	json_decref(n->enums);
	json_decref(n->def);
	if (n->pattern != NULL)
		regfree(&n->re);
	free(n->pattern);
	free(n);
}

static int
name_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);
	if (c != 0)
		return c;
	return alen < blen ? -1 : alen > blen;
}

static int
prop_cmp(const void *a, const void *b)
{
	const prop *x = a, *y = b;
	return name_cmp(x->key.s, x->key.len, y->key.s, y->key.len);
}

/* The schema of property `k`, or NULL. */
static const node *
node_prop(const node *n, const char *k, size_t klen)
{
	size_t lo = 0, hi = n->nprops;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int    c   = name_cmp(
		         k, klen, n->props[mid].key.s, n->props[mid].key.len);
		if (c == 0)
			return n->props[mid].schema;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

static json_t *
deep_copy(const json_t *v)
{
	json_t *c = json_deep_copy(v);
	if (c == NULL)
		mcf_panic("out of memory (json_deep_copy)");
	return c;
}

/* ---- RE2 to POSIX ERE ---- */

typedef struct re_conv {
	const char *p; /* pattern, borrowed */
	size_t      n;
	size_t      i;
	sbuf        out;
	bool        dot_nl; /* (?s): `.` matches \n */
	const char *why;    /* static text of the first error */
} re_conv;

static bool
is_punct_ascii(int c)
{
	return (c >= 0x21 && c <= 0x2f) || (c >= 0x3a && c <= 0x40)
	    || (c >= 0x5b && c <= 0x60) || (c >= 0x7b && c <= 0x7e);
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Parses \x escapes after the `x`: `HH` or `{H...}`.  -1 if malformed. */
static long
re_hex(re_conv *rc)
{
	long v = 0;
	if (rc->i < rc->n && rc->p[rc->i] == '{') {
		size_t ndig = 0;
		rc->i++;
		while (rc->i < rc->n && rc->p[rc->i] != '}') {
			int h = hexval((unsigned char) rc->p[rc->i]);
			if (h < 0 || ++ndig > 8)
				return -1;
			v = v * 16 + h;
			rc->i++;
		}
		if (rc->i >= rc->n || ndig == 0)
			return -1;
		rc->i++;
	} else {
		for (int k = 0; k < 2; k++) {
			if (rc->i >= rc->n)
				return -1;
			int h = hexval((unsigned char) rc->p[rc->i]);
			if (h < 0)
				return -1;
			v = v * 16 + h;
			rc->i++;
		}
	}
	/* A NUL cannot be written into regcomp()'s C string. */
	return v == 0 || v > 0x10ffff ? -1 : v;
}

/* Writes one literal character outside a bracket expression. */
static void
ere_literal(sbuf *sb, unsigned char c)
{
	if (c == ']')
		sb_puts(sb, "[]]");
	else if (c == '}')
		sb_puts(sb, "[}]");
	else if (strchr(".[()*+?{|^$\\", c) != NULL && c != '\0') {
		sb_putc(sb, '\\');
		sb_putc(sb, (char) c);
	} else {
		sb_putc(sb, (char) c);
	}
}

static void
ere_codepoint(sbuf *sb, long cp)
{
	if (cp < 0x80) {
		ere_literal(sb, (unsigned char) cp);
		return;
	}
	char b[4];
	int  n;
	if (cp < 0x800) {
		b[0] = (char) (0xc0 | (cp >> 6));
		b[1] = (char) (0x80 | (cp & 0x3f));
		n    = 2;
	} else if (cp < 0x10000) {
		b[0] = (char) (0xe0 | (cp >> 12));
		b[1] = (char) (0x80 | ((cp >> 6) & 0x3f));
		b[2] = (char) (0x80 | (cp & 0x3f));
		n    = 3;
	} else {
		b[0] = (char) (0xf0 | (cp >> 18));
		b[1] = (char) (0x80 | ((cp >> 12) & 0x3f));
		b[2] = (char) (0x80 | ((cp >> 6) & 0x3f));
		b[3] = (char) (0x80 | (cp & 0x3f));
		n    = 4;
	}
	sb_putn(sb, b, (size_t) n);
}

/* Control-character escapes common to both contexts; -1 if `c` is not
 * one. */
static int
re_ctl(int c)
{
	switch (c) {
	case 'a':
		return '\a';
	case 'f':
		return '\f';
	case 'n':
		return '\n';
	case 'r':
		return '\r';
	case 't':
		return '\t';
	case 'v':
		return '\v';
	default:
		return -1;
	}
}

/* The items of a bracket expression, regrouped so that POSIX reads them
 * as RE2 did: `]` first, `[` `^` `-` last, never a class opener. */
typedef struct bracket {
	sbuf body;
	bool rbracket, lbracket, caret, dash;
} bracket;

static void
br_char(bracket *b, int c)
{
	switch (c) {
	case ']':
		b->rbracket = true;
		break;
	case '[':
		b->lbracket = true;
		break;
	case '^':
		b->caret = true;
		break;
	case '-':
		b->dash = true;
		break;
	default:
		sb_putc(&b->body, (char) c);
	}
}

/* One bracket item's single character: returns it, -2 for a class escape
 * already written to `b`, -1 on error. */
static int
br_atom(re_conv *rc, bracket *b)
{
	unsigned char c = (unsigned char) rc->p[rc->i++];
	if (c != '\\')
		return c;
	if (rc->i >= rc->n) {
		rc->why = "trailing backslash";
		return -1;
	}
	c = (unsigned char) rc->p[rc->i++];
	switch (c) {
	case 'd':
		sb_puts(&b->body, "0-9");
		return -2;
	case 'w':
		sb_puts(&b->body, "0-9A-Za-z_");
		return -2;
	case 's':
		sb_puts(&b->body, "\t\n\f\r ");
		return -2;
	case 'D':
	case 'W':
	case 'S':
	case 'p':
	case 'P':
		rc->why = "negated or Unicode class inside [...] is not "
		          "supported";
		return -1;
	case 'x': {
		long cp = re_hex(rc);
		if (cp < 0) {
			rc->why = "invalid \\x escape";
			return -1;
		}
		if (cp >= 0x80) {
			rc->why = "non-ASCII \\x escape inside [...] is not "
			          "supported";
			return -1;
		}
		return (int) cp;
	}
	default:
		break;
	}
	int ctl = re_ctl(c);
	if (ctl >= 0)
		return ctl;
	if (is_punct_ascii(c))
		return c;
	rc->why = "invalid escape sequence inside [...]";
	return -1;
}

/* Translates `[...]`; rc->i is just past the `[`. */
static bool
re_bracket(re_conv *rc)
{
	bracket b      = { 0 };
	bool    negate = false;
	bool    first  = true;
	if (rc->i < rc->n && rc->p[rc->i] == '^') {
		negate = true;
		rc->i++;
	}
	for (;;) {
		if (rc->i >= rc->n) {
			rc->why = "missing closing ]";
			goto fail;
		}
		char c = rc->p[rc->i];
		if (c == ']' && !first) {
			rc->i++;
			break;
		}
		first = false;
		if (c == '[' && rc->i + 1 < rc->n && rc->p[rc->i + 1] == ':') {
			const char *end = NULL;
			for (size_t j = rc->i + 2; j + 1 < rc->n; j++) {
				if (rc->p[j] == ':' && rc->p[j + 1] == ']') {
					end = rc->p + j;
					break;
				}
			}
			if (end != NULL) {
				const char *nm  = rc->p + rc->i + 2;
				size_t      len = (size_t) (end - nm);
				if (len > 0 && nm[0] == '^') {
					rc->why = "negated [:class:] is not "
					          "supported";
					goto fail;
				}
				sb_putn(&b.body, rc->p + rc->i,
				    len + 4); /* "[:" name ":]" */
				rc->i += len + 4;
				continue;
			}
		}
		int lo = br_atom(rc, &b);
		if (lo == -1)
			goto fail;
		if (lo == -2)
			continue;
		if (rc->i + 1 < rc->n && rc->p[rc->i] == '-'
		    && rc->p[rc->i + 1] != ']') {
			rc->i++;
			int hi = br_atom(rc, &b);
			if (hi == -1)
				goto fail;
			if (hi == -2 || hi < lo) {
				rc->why = "invalid character class range";
				goto fail;
			}
			/* POSIX cannot spell these as range ends. */
			if (lo == ']' || lo == '-' || hi == ']' || hi == '-') {
				rc->why = "a range from or to ']' or '-' is "
				          "not supported";
				goto fail;
			}
			if (lo == hi) {
				br_char(&b, lo);
			} else {
				sb_putc(&b.body, (char) lo);
				sb_putc(&b.body, '-');
				sb_putc(&b.body, (char) hi);
			}
			continue;
		}
		br_char(&b, lo);
	}
	if (!negate && b.body.len == 0 && !b.rbracket && !b.lbracket && !b.dash
	    && b.caret) {
		sb_puts(&rc->out, "\\^"); /* `[\^]` alone */
	} else {
		sb_putc(&rc->out, '[');
		if (negate)
			sb_putc(&rc->out, '^');
		if (b.rbracket)
			sb_putc(&rc->out, ']');
		sb_puts(&rc->out, sb_str(&b.body));
		if (b.lbracket)
			sb_putc(&rc->out, '[');
		if (b.caret)
			sb_putc(&rc->out, '^');
		if (b.dash)
			sb_putc(&rc->out, '-');
		sb_putc(&rc->out, ']');
	}
	free(b.body.buf);
	return true;
fail:
	free(b.body.buf);
	return false;
}

/* A `{n}`, `{n,}` or `{n,m}` at rc->i?  Sets *len to its length.  RE2
 * reads any other `{` as a literal. */
static bool
re_repeat(const re_conv *rc, size_t *len, bool *too_big)
{
	size_t j = rc->i + 1;
	long   a = -1, b = -1;
	*too_big = false;
	for (long v = 0; j < rc->n && rc->p[j] >= '0' && rc->p[j] <= '9'; j++)
		a = v = (v > 100000 ? v : v * 10 + (rc->p[j] - '0'));
	if (a < 0 || j >= rc->n)
		return false;
	if (rc->p[j] == ',') {
		j++;
		for (long v = 0;
		     j < rc->n && rc->p[j] >= '0' && rc->p[j] <= '9'; j++)
			b = v = (v > 100000 ? v : v * 10 + (rc->p[j] - '0'));
	} else {
		b = a;
	}
	if (j >= rc->n || rc->p[j] != '}')
		return false;
	*len = j + 1 - rc->i;
	*too_big
	    = a > RE2_MAX_REPEAT || b > RE2_MAX_REPEAT || (b >= 0 && b < a);
	return true;
}

/* Skips RE2's non-greedy marker after a quantifier: it changes which
 * match is found, never whether one is. */
static void
re_skip_lazy(re_conv *rc)
{
	if (rc->i < rc->n && rc->p[rc->i] == '?')
		rc->i++;
}

static bool
re_escape(re_conv *rc)
{
	if (rc->i >= rc->n) {
		rc->why = "trailing backslash";
		return false;
	}
	unsigned char c = (unsigned char) rc->p[rc->i++];
	switch (c) {
	case 'd':
		sb_puts(&rc->out, "[0-9]");
		return true;
	case 'D':
		sb_puts(&rc->out, "[^0-9]");
		return true;
	case 'w':
		sb_puts(&rc->out, "[0-9A-Za-z_]");
		return true;
	case 'W':
		sb_puts(&rc->out, "[^0-9A-Za-z_]");
		return true;
	case 's':
		sb_puts(&rc->out, "[\t\n\f\r ]");
		return true;
	case 'S':
		sb_puts(&rc->out, "[^\t\n\f\r ]");
		return true;
	case 'A':
		sb_putc(&rc->out, '^');
		return true;
	case 'z':
		sb_putc(&rc->out, '$');
		return true;
	case 'b':
	case 'B':
		sb_putc(&rc->out, '\\');
		sb_putc(&rc->out, (char) c);
		return true;
	case 'x': {
		long cp = re_hex(rc);
		if (cp < 0) {
			rc->why = "invalid \\x escape";
			return false;
		}
		ere_codepoint(&rc->out, cp);
		return true;
	}
	case 'Q': {
		while (rc->i < rc->n) {
			if (rc->p[rc->i] == '\\' && rc->i + 1 < rc->n
			    && rc->p[rc->i + 1] == 'E') {
				rc->i += 2;
				break;
			}
			ere_literal(&rc->out, (unsigned char) rc->p[rc->i++]);
		}
		return true;
	}
	case 'E':
		return true; /* stray \E: RE2 ignores it */
	case 'p':
	case 'P':
		rc->why = "Unicode classes (\\p, \\P) are not supported";
		return false;
	default:
		break;
	}
	int ctl = re_ctl(c);
	if (ctl >= 0) {
		sb_putc(&rc->out, (char) ctl);
		return true;
	}
	if (c >= '0' && c <= '9') {
		rc->why = "backreferences and octal escapes are not supported";
		return false;
	}
	if (is_punct_ascii(c)) {
		ere_literal(&rc->out, c);
		return true;
	}
	rc->why = "invalid escape sequence";
	return false;
}

/* `(?...`: non-capturing and named groups become plain groups, a leading
 * `(?i)` / `(?s)` becomes a compile flag; anything else is refused. */
static bool
re_group(re_conv *rc, int *cflags)
{
	rc->i++; /* the '?' */
	if (rc->i < rc->n && rc->p[rc->i] == ':') {
		rc->i++;
		sb_putc(&rc->out, '(');
		return true;
	}
	if (rc->i < rc->n
	    && (rc->p[rc->i] == '<'
	        || (rc->p[rc->i] == 'P' && rc->i + 1 < rc->n
	            && rc->p[rc->i + 1] == '<'))) {
		const char *gt = memchr(rc->p + rc->i, '>', rc->n - rc->i);
		if (gt == NULL) {
			rc->why = "invalid named capture";
			return false;
		}
		rc->i = (size_t) (gt - rc->p) + 1;
		sb_putc(&rc->out, '(');
		return true;
	}
	/* Flags: only as the very first thing, and only i and s. */
	bool at_start = rc->i == 2;
	while (rc->i < rc->n && (rc->p[rc->i] == 'i' || rc->p[rc->i] == 's')) {
		if (rc->p[rc->i] == 'i')
			*cflags |= REG_ICASE;
		else
			rc->dot_nl = true;
		rc->i++;
	}
	if (!at_start || rc->i >= rc->n || rc->p[rc->i] != ')' || rc->i == 2) {
		rc->why = "unsupported group flags (only a leading (?i) or "
		          "(?s) is supported)";
		return false;
	}
	rc->i++;
	return true;
}

/* Translates an RE2 pattern to POSIX ERE.  Returns a new string, or NULL
 * with rc->why set. */
static char *
re2_to_ere(const char *p, size_t n, int *cflags, const char **why)
{
	re_conv rc = { .p = p, .n = n };
	while (rc.i < rc.n) {
		unsigned char c = (unsigned char) rc.p[rc.i];
		if (c == '\0') {
			rc.why = "NUL byte in pattern";
			goto fail;
		}
		switch (c) {
		case '\\':
			rc.i++;
			if (!re_escape(&rc))
				goto fail;
			break;
		case '[':
			rc.i++;
			if (!re_bracket(&rc))
				goto fail;
			break;
		case '(':
			if (rc.i + 1 < rc.n && rc.p[rc.i + 1] == '?') {
				rc.i++;
				if (!re_group(&rc, cflags))
					goto fail;
			} else {
				sb_putc(&rc.out, '(');
				rc.i++;
			}
			break;
		case '.':
			sb_puts(&rc.out, rc.dot_nl ? "." : "[^\n]");
			rc.i++;
			break;
		case '*':
		case '+':
		case '?':
			sb_putc(&rc.out, (char) c);
			rc.i++;
			re_skip_lazy(&rc);
			break;
		case '{': {
			size_t len;
			bool   too_big;
			if (re_repeat(&rc, &len, &too_big)) {
				if (too_big) {
					rc.why = "invalid repeat count";
					goto fail;
				}
				sb_putn(&rc.out, rc.p + rc.i, len);
				rc.i += len;
				re_skip_lazy(&rc);
			} else {
				sb_puts(&rc.out, "\\{");
				rc.i++;
			}
			break;
		}
		case '}':
			sb_puts(&rc.out, "[}]");
			rc.i++;
			break;
		case ']':
			sb_puts(&rc.out, "[]]");
			rc.i++;
			break;
		default:
			sb_putc(&rc.out, (char) c);
			rc.i++;
		}
	}
	return sb_take(&rc.out);
fail:
	free(rc.out.buf);
	*why = rc.why;
	return NULL;
}

/* ---- compiling ---- */

typedef struct compiler {
	sbuf   path; /* "properties[spec].properties[ownerRef]" */
	char  *err;  /* caller's buffer, may be NULL */
	size_t errlen;
	bool   failed;
} compiler;

static void cc_fail(compiler *cc, const char *keyword, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Copies `s` into err[0..errlen), cutting only between UTF-8
 * characters so the text stays valid for a JSON Status. */
static void
copy_utf8(char *err, size_t errlen, const char *s)
{
	size_t n = strlen(s);
	if (n >= errlen) {
		n = errlen - 1;
		while (n > 0 && ((unsigned char) s[n] & 0xc0) == 0x80)
			n--;
	}
	memcpy(err, s, n);
	err[n] = '\0';
}

/* Records the first error as "<path>.<keyword>: <text>".  When that does
 * not fit the caller's buffer, the front of the path is elided ("...") so
 * that the text itself survives. */
static void
cc_fail(compiler *cc, const char *keyword, const char *fmt, ...)
{
	if (cc->failed)
		return;
	cc->failed = true;
	if (cc->err == NULL || cc->errlen == 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	char *msg = mcf_vasprintf(fmt, ap);
	va_end(ap);
	const char *path = sb_str(&cc->path);
	char       *tail = mcf_asprintf("%s%s%s", keyword ? keyword : "",
            path[0] || keyword ? ": " : "", msg);
	size_t      plen = strlen(path), tlen = strlen(tail);
	size_t      sep = path[0] && keyword ? 1 : 0;
	if (plen > 0 && plen + sep + tlen >= cc->errlen) {
		size_t      room = cc->errlen > tlen + sep + 4
		         ? cc->errlen - 1 - tlen - sep - 3
		         : 0;
		const char *p    = path + plen - (room < plen ? room : plen);
		while (*p != '\0' && ((unsigned char) *p & 0xc0) == 0x80)
			p++;
		char *all = mcf_asprintf("...%s%s%s", p, sep ? "." : "", tail);
		copy_utf8(cc->err, cc->errlen, all);
		free(all);
	} else {
		char *all = mcf_asprintf("%s%s%s", path, sep ? "." : "", tail);
		copy_utf8(cc->err, cc->errlen, all);
		free(all);
	}
	free(tail);
	free(msg);
}

static bool
get_bool(compiler *cc, const json_t *js, const char *kw, bool *out)
{
	const json_t *v = json_object_get(js, kw);
	if (v == NULL)
		return true;
	if (!json_is_boolean(v)) {
		cc_fail(cc, kw, "must be a boolean");
		return false;
	}
	*out = json_is_true(v);
	return true;
}

/* A non-negative integer keyword (minLength...); -1 when absent. */
static bool
get_count(compiler *cc, const json_t *js, const char *kw, json_int_t *out)
{
	const json_t *v = json_object_get(js, kw);
	*out            = -1;
	if (v == NULL)
		return true;
	if (!json_is_integer(v) || json_integer_value(v) < 0) {
		cc_fail(cc, kw, "must be a non-negative integer");
		return false;
	}
	*out = json_integer_value(v);
	return true;
}

static bool
get_bound(
    compiler *cc, const json_t *js, const char *kw, const char *excl, bound *b)
{
	const json_t *v = json_object_get(js, kw);
	if (!get_bool(cc, js, excl, &b->exclusive))
		return false;
	if (v == NULL)
		return true;
	if (!json_is_number(v)
	    || (json_is_real(v) && !isfinite(json_real_value(v)))) {
		cc_fail(cc, kw, "must be a number");
		return false;
	}
	b->set    = true;
	b->is_int = json_is_integer(v);
	b->i      = b->is_int ? json_integer_value(v) : 0;
	b->d      = json_number_value(v);
	return true;
}

static node *compile_node(compiler *cc, const json_t *js, int depth);

/* Compiles a child schema found under `suffix` of the current path. */
static node *
compile_child(compiler *cc, const json_t *js, int depth, const char *suffix,
    const char *key, size_t klen)
{
	size_t saved = cc->path.len;
	if (cc->path.len > 0)
		sb_putc(&cc->path, '.');
	sb_puts(&cc->path, suffix);
	if (key != NULL) {
		sb_putc(&cc->path, '[');
		sb_put_key(&cc->path, key, klen);
		sb_putc(&cc->path, ']');
	}
	node *n = compile_node(cc, js, depth);
	sb_truncate(&cc->path, saved);
	return n;
}

static bool
compile_type(compiler *cc, const json_t *js, node *n)
{
	const json_t *t = json_object_get(js, "type");
	if (t == NULL)
		return true;
	if (!json_is_string(t)) {
		cc_fail(cc, "type", "must be a string");
		return false;
	}
	const char *s = json_string_value(t);
	for (size_t i = 1; i < sizeof(type_names) / sizeof(type_names[0]);
	     i++) {
		if (strcmp(s, type_names[i]) == 0
		    && strlen(s) == json_string_length(t)) {
			n->type = (enum node_type) i;
			return true;
		}
	}
	if (json_string_length(t) == 0)
		return true;
	sbuf sb = { 0 };
	go_quote(&sb, s, json_string_length(t));
	cc_fail(cc, "type",
	    "Unsupported value: %s: supported values: \"array\", "
	    "\"boolean\", \"integer\", \"number\", \"object\", \"string\"",
	    sb_str(&sb));
	free(sb.buf);
	return false;
}

static bool
compile_properties(compiler *cc, const json_t *js, node *n, int depth)
{
	const json_t *props = json_object_get(js, "properties");
	if (props == NULL)
		return true;
	if (!json_is_object(props)) {
		cc_fail(cc, "properties", "must be an object");
		return false;
	}
	n->props = mcf_calloc(json_object_size(props) + 1, sizeof(prop));
	void *it = json_object_iter((json_t *) props);
	for (; it != NULL; it = json_object_iter_next((json_t *) props, it)) {
		const char *k    = json_object_iter_key(it);
		size_t      klen = json_object_iter_key_len(it);
		node       *c = compile_child(cc, json_object_iter_value(it),
		          depth + 1, "properties", k, klen);
		if (c == NULL)
			return false;
		prop *p  = &n->props[n->nprops++];
		p->key.s = mcf_malloc(klen + 1);
		memcpy(p->key.s, k, klen);
		p->key.s[klen] = '\0';
		p->key.len     = klen;
		p->schema      = c;
	}
	qsort(n->props, n->nprops, sizeof(prop), prop_cmp);
	return true;
}

static bool
compile_required(compiler *cc, const json_t *js, node *n)
{
	const json_t *req = json_object_get(js, "required");
	if (req == NULL)
		return true;
	if (!json_is_array(req)) {
		cc_fail(cc, "required", "must be an array of strings");
		return false;
	}
	n->required = mcf_calloc(json_array_size(req) + 1, sizeof(name));
	for (size_t i = 0; i < json_array_size(req); i++) {
		const json_t *r = json_array_get(req, i);
		if (!json_is_string(r)) {
			cc_fail(cc, "required", "must be an array of strings");
			return false;
		}
		size_t len = json_string_length(r);
		name  *nm  = &n->required[n->nrequired++];
		nm->s      = mcf_malloc(len + 1);
		nm->len    = len;
		memcpy(nm->s, json_string_value(r), len + 1);
	}
	return true;
}

static bool
compile_pattern(compiler *cc, const json_t *js, node *n)
{
	const json_t *pat = json_object_get(js, "pattern");
	if (pat == NULL)
		return true;
	if (!json_is_string(pat)) {
		cc_fail(cc, "pattern", "must be a string");
		return false;
	}
	const char *why    = NULL;
	int         cflags = REG_EXTENDED | REG_NOSUB;
	char       *ere    = re2_to_ere(
	             json_string_value(pat), json_string_length(pat), &cflags, &why);
	sbuf q = { 0 };
	go_quote(&q, json_string_value(pat), json_string_length(pat));
	if (ere == NULL) {
		cc_fail(cc, "pattern",
		    "Invalid value: %s: must be a valid regular expression, "
		    "but isn't: %s",
		    sb_str(&q), why);
		free(q.buf);
		return false;
	}
	int rc = regcomp(&n->re, ere, cflags);
	free(ere);
	if (rc != 0) {
		char buf[128];
		regerror(rc, &n->re, buf, sizeof(buf));
		cc_fail(cc, "pattern",
		    "Invalid value: %s: must be a valid regular expression, "
		    "but isn't: %s",
		    sb_str(&q), buf);
		free(q.buf);
		return false;
	}
	free(q.buf);
	n->pattern = mcf_strdup(json_string_value(pat));
	return true;
}

static node *
compile_node(compiler *cc, const json_t *js, int depth)
{
	if (depth > MAX_DEPTH) {
		cc_fail(cc, NULL, "schema is nested more than %d levels deep",
		    MAX_DEPTH);
		return NULL;
	}
	if (!json_is_object(js)) {
		cc_fail(cc, NULL, "must be a schema object");
		return NULL;
	}
	node *n    = mcf_calloc(1, sizeof(*n));
	n->min_len = n->max_len = n->min_items = n->max_items = -1;
	if (!compile_type(cc, js, n)
	    || !get_bool(cc, js, "nullable", &n->nullable)
	    || !get_bool(
	        cc, js, "x-kubernetes-preserve-unknown-fields", &n->preserve)
	    || !get_bool(
	        cc, js, "x-kubernetes-int-or-string", &n->int_or_string)
	    || !get_bool(
	        cc, js, "x-kubernetes-embedded-resource", &n->embedded)
	    || !get_count(cc, js, "minLength", &n->min_len)
	    || !get_count(cc, js, "maxLength", &n->max_len)
	    || !get_count(cc, js, "minItems", &n->min_items)
	    || !get_count(cc, js, "maxItems", &n->max_items)
	    || !get_bound(cc, js, "minimum", "exclusiveMinimum", &n->min)
	    || !get_bound(cc, js, "maximum", "exclusiveMaximum", &n->max)
	    || !compile_properties(cc, js, n, depth)
	    || !compile_required(cc, js, n) || !compile_pattern(cc, js, n))
		goto fail;

	const json_t *fmt = json_object_get(js, "format");
	if (fmt != NULL && !json_is_string(fmt)) {
		cc_fail(cc, "format", "must be a string");
		goto fail;
	}
	n->date_time
	    = fmt != NULL && strcmp(json_string_value(fmt), "date-time") == 0;

	const json_t *items = json_object_get(js, "items");
	if (items != NULL) {
		if (!json_is_object(items)) {
			cc_fail(cc, "items",
			    "must be a schema object (tuple form is not "
			    "supported)");
			goto fail;
		}
		n->items
		    = compile_child(cc, items, depth + 1, "items", NULL, 0);
		if (n->items == NULL)
			goto fail;
	}

	const json_t *ap = json_object_get(js, "additionalProperties");
	if (json_is_boolean(ap)) {
		n->addl_any = json_is_true(ap);
	} else if (ap != NULL) {
		if (!json_is_object(ap)) {
			cc_fail(cc, "additionalProperties",
			    "must be a schema object or a boolean");
			goto fail;
		}
		n->addl = compile_child(
		    cc, ap, depth + 1, "additionalProperties", NULL, 0);
		if (n->addl == NULL)
			goto fail;
	}

	const json_t *en = json_object_get(js, "enum");
	if (en != NULL) {
		if (!json_is_array(en)) {
			cc_fail(cc, "enum", "must be an array");
			goto fail;
		}
		if (json_array_size(en) > 0)
			n->enums = deep_copy(en);
	}

	/* `default: null` is no default, as in apiextensions. */
	const json_t *def = json_object_get(js, "default");
	if (def != NULL && !json_is_null(def))
		n->def = deep_copy(def);
	return n;
fail:
	node_free(n);
	return NULL;
}

ks_schema *
ks_schema_compile(const json_t *openapi, char *err, size_t errlen)
{
	compiler cc = { .err = err, .errlen = errlen };
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	node *root = compile_node(&cc, openapi, 0);
	free(cc.path.buf);
	if (root == NULL)
		return NULL;
	ks_schema *s = mcf_calloc(1, sizeof(*s));
	s->root      = root;
	return s;
}

void
ks_schema_free(ks_schema *s)
{
	if (s == NULL)
		return;
	node_free(s->root);
	free(s);
}

/* ---- walking objects ---- */

typedef struct walk {
	ks_schema_result *res;
	sbuf              path; /* field path of the value being visited */
} walk;

static size_t
path_push_key(walk *w, const char *k, size_t klen)
{
	size_t saved = w->path.len;
	if (w->path.len > 0)
		sb_putc(&w->path, '.');
	sb_put_key(&w->path, k, klen);
	return saved;
}

static size_t
path_push_map(walk *w, const char *k, size_t klen)
{
	size_t saved = w->path.len;
	sb_putc(&w->path, '[');
	sb_put_key(&w->path, k, klen);
	sb_putc(&w->path, ']');
	return saved;
}

static size_t
path_push_index(walk *w, size_t i)
{
	size_t saved = w->path.len;
	sb_printf(&w->path, "[%zu]", i);
	return saved;
}

static void
path_pop(walk *w, size_t saved)
{
	sb_truncate(&w->path, saved);
}

/* Grows an array of `n` elements to hold n + 1: doubling at powers of
 * two, so the capacity need not be stored. */
static void *
grow(void *arr, size_t n, size_t size)
{
	if (n != 0 && (n & (n - 1)) != 0)
		return arr;
	return mcf_realloc(arr, (n ? 2 * n : 1) * size);
}

/* Adds a cause for the current path; steals `msg`. */
static void
add_cause(walk *w, const char *reason, char *msg)
{
	ks_schema_result *r = w->res;
	r->causes           = grow(r->causes, r->count, sizeof(*r->causes));
	ks_schema_cause *c  = &r->causes[r->count++];
	c->reason           = mcf_strdup(reason);
	c->field            = mcf_strdup(sb_str(&w->path));
	c->message          = msg;
}

static void
add_unknown(walk *w)
{
	ks_schema_result *r = w->res;
	r->unknown = grow(r->unknown, r->unknown_count, sizeof(*r->unknown));
	r->unknown[r->unknown_count++] = mcf_strdup(sb_str(&w->path));
}

/* `metadata`, `apiVersion` and `kind` of a resource (the root, or an
 * x-kubernetes-embedded-resource object). */
static bool
is_meta_key(const char *k, size_t klen)
{
	return (klen == 8 && memcmp(k, "metadata", 8) == 0)
	    || (klen == 10 && memcmp(k, "apiVersion", 10) == 0)
	    || (klen == 4 && memcmp(k, "kind", 4) == 0);
}

static bool
embedded_meta(const char *k, size_t klen, const json_t *v)
{
	if (klen == 8 && memcmp(k, "metadata", 8) == 0)
		return json_is_object(v);
	if (is_meta_key(k, klen))
		return json_is_string(v);
	return false;
}

/* Step 1: pruning (and PruneNonNullableNullsWithoutDefaults). */
static void
prune(walk *w, const node *n, json_t *v, int depth, bool root)
{
	if (n == NULL || depth > MAX_DEPTH)
		return;
	if (json_is_object(v)) {
		void *it = json_object_iter(v);
		while (it != NULL) {
			const char *k    = json_object_iter_key(it);
			size_t      klen = json_object_iter_key_len(it);
			json_t     *val  = json_object_iter_value(it);
			void       *next = json_object_iter_next(v, it);
			if ((root && is_meta_key(k, klen))
			    || (n->embedded && embedded_meta(k, klen, val))) {
				it = next;
				continue;
			}
			const node *c     = node_prop(n, k, klen);
			bool        mapv  = c == NULL && n->addl != NULL;
			size_t      saved = 0;
			if (mapv)
				c = n->addl;
			if (c != NULL) {
				if (json_is_null(val) && !c->nullable
				    && c->def == NULL) {
					json_object_deln(v, k, klen);
				} else {
					saved = mapv
					    ? path_push_map(w, k, klen)
					    : path_push_key(w, k, klen);
					prune(w, c, val, depth + 1, false);
					path_pop(w, saved);
				}
			} else if (!n->addl_any && !n->preserve) {
				saved = path_push_key(w, k, klen);
				add_unknown(w);
				path_pop(w, saved);
				json_object_deln(v, k, klen);
			}
			it = next;
		}
	} else if (json_is_array(v) && n->items != NULL) {
		for (size_t i = 0; i < json_array_size(v); i++) {
			size_t saved = path_push_index(w, i);
			prune(w, n->items, json_array_get(v, i), depth + 1,
			    false);
			path_pop(w, saved);
		}
	}
}

/* Step 2: defaulting (structuraldefaulting.Default). */
static void
apply_defaults(const node *n, json_t *v, int depth)
{
	if (n == NULL || depth > MAX_DEPTH)
		return;
	if (json_is_object(v)) {
		for (size_t i = 0; i < n->nprops; i++) {
			const prop *p = &n->props[i];
			if (p->schema->def == NULL)
				continue;
			json_t *cur
			    = json_object_getn(v, p->key.s, p->key.len);
			if (cur == NULL
			    || (json_is_null(cur) && !p->schema->nullable))
				json_object_setn_new(v, p->key.s, p->key.len,
				    deep_copy(p->schema->def));
		}
		for (void *it = json_object_iter(v); it != NULL;
		     it       = json_object_iter_next(v, it)) {
			const node *c = node_prop(n, json_object_iter_key(it),
			    json_object_iter_key_len(it));
			if (c == NULL && n->addl != NULL) {
				c = n->addl;
				if (json_is_null(json_object_iter_value(it))
				    && !c->nullable && c->def != NULL)
					json_object_iter_set_new(
					    v, it, deep_copy(c->def));
			}
			apply_defaults(
			    c, json_object_iter_value(it), depth + 1);
		}
	} else if (json_is_array(v) && n->items != NULL) {
		const node *c = n->items;
		for (size_t i = 0; i < json_array_size(v); i++) {
			if (json_is_null(json_array_get(v, i)) && !c->nullable
			    && c->def != NULL)
				json_array_set_new(v, i, deep_copy(c->def));
			apply_defaults(c, json_array_get(v, i), depth + 1);
		}
	}
}

/* Step 3: validation. */

/* swag.IsFloat64AJSONInteger: a whole number a float64 holds exactly. */
static bool
is_whole(double d)
{
	return isfinite(d) && fabs(d) <= 9007199254740992.0 && d == trunc(d);
}

static const char *
json_type_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "object";
	case JSON_ARRAY:
		return "array";
	case JSON_STRING:
		return "string";
	case JSON_INTEGER:
		return "integer";
	case JSON_REAL:
		return "number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "boolean";
	case JSON_NULL:
		break;
	}
	return "null";
}

static const char *
node_type_name(const node *n)
{
	return n->int_or_string ? "integer,string" : type_names[n->type];
}

static bool
type_ok(const node *n, const json_t *v)
{
	bool whole = json_is_real(v) && is_whole(json_real_value(v));
	if (n->int_or_string)
		return json_is_integer(v) || whole || json_is_string(v);
	switch (n->type) {
	case TY_NONE:
		return true;
	case TY_OBJECT:
		return json_is_object(v);
	case TY_ARRAY:
		return json_is_array(v);
	case TY_STRING:
		return json_is_string(v);
	case TY_INTEGER:
		return json_is_integer(v) || whole;
	case TY_NUMBER:
		return json_is_number(v);
	case TY_BOOLEAN:
		return json_is_boolean(v);
	}
	return false;
}

/* "<path> in body", the subject of kube-openapi's messages. */
static void
subject(sbuf *sb, const walk *w)
{
	sb_puts(sb, sb_str(&w->path));
	sb_puts(sb, " in body");
}

static void
cause_type(walk *w, const char *want, const char *got)
{
	sbuf sb = { 0 };
	sb_puts(&sb, "Invalid value: ");
	go_quote_str(&sb, got);
	sb_puts(&sb, ": ");
	subject(&sb, w);
	sb_printf(&sb, " must be of type %s: ", want);
	go_quote_str(&sb, got);
	add_cause(w, "FieldValueTypeInvalid", sb_take(&sb));
}

/* field.Invalid(path, value, "<path> in body <detail>"). */
static void cause_invalid(walk *w, const json_t *v, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
cause_invalid(walk *w, const json_t *v, const char *fmt, ...)
{
	sbuf sb = { 0 };
	sb_puts(&sb, "Invalid value: ");
	go_value(&sb, v);
	sb_puts(&sb, ": ");
	subject(&sb, w);
	sb_putc(&sb, ' ');
	va_list ap;
	va_start(ap, fmt);
	char *detail = mcf_vasprintf(fmt, ap);
	va_end(ap);
	sb_puts(&sb, detail);
	free(detail);
	add_cause(w, "FieldValueInvalid", sb_take(&sb));
}

static void
cause_enum(walk *w, const node *n, const json_t *v)
{
	sbuf sb = { 0 };
	sb_puts(&sb, "Unsupported value: ");
	go_value(&sb, v);
	sb_puts(&sb, ": supported values: ");
	for (size_t i = 0; i < json_array_size(n->enums); i++) {
		const json_t *e = json_array_get(n->enums, i);
		if (i > 0)
			sb_puts(&sb, ", ");
		if (json_is_string(e)) {
			go_quote(
			    &sb, json_string_value(e), json_string_length(e));
		} else {
			sbuf js = { 0 };
			render_json(&js, e, 0, 0);
			go_quote(&sb, sb_str(&js), js.len);
			free(js.buf);
		}
	}
	add_cause(w, "FieldValueNotSupported", sb_take(&sb));
}

/* Equality as kube-openapi's Enum() sees it: numbers compare by value
 * whether written as integers or not. */
static bool
enum_equal(const json_t *a, const json_t *b)
{
	if (json_is_number(a) && json_is_number(b)) {
		if (json_is_integer(a) && json_is_integer(b))
			return json_integer_value(a) == json_integer_value(b);
		return json_number_value(a) == json_number_value(b);
	}
	return json_equal((json_t *) a, (json_t *) b) == 1;
}

static void
check_enum(walk *w, const node *n, const json_t *v)
{
	if (n->enums == NULL)
		return;
	for (size_t i = 0; i < json_array_size(n->enums); i++)
		if (enum_equal(v, json_array_get(n->enums, i)))
			return;
	cause_enum(w, n, v);
}

static size_t
rune_count(const char *s, size_t n)
{
	size_t count = 0;
	for (size_t i = 0; i < n; i++)
		if (((unsigned char) s[i] & 0xc0) != 0x80)
			count++;
	return count;
}

static int
days_in_month(int y, int m)
{
	static const int days[]
	    = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return 29;
	return days[m - 1];
}

static bool
digits(const char *s, size_t n, int *out)
{
	int v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return true;
}

/* "z" or "+hh:mm" / "-hh:mm" filling s[0..n) exactly. */
static bool
tz_ok(const char *s, size_t n)
{
	int h, m;
	if (n == 1)
		return s[0] == 'z' || s[0] == 'Z';
	return n == 6 && (s[0] == '+' || s[0] == '-') && digits(s + 1, 2, &h)
	    && s[3] == ':' && digits(s + 4, 2, &m);
}

/* strfmt's date-time: YYYY-MM-DD, 'T' (any case), hh:mm:ss, an optional
 * fraction, then 'Z' or an offset. */
static bool
is_date_time(const char *s, size_t n)
{
	int y, mo, d, h, mi, se;
	if (n < 20 || !digits(s, 4, &y) || s[4] != '-'
	    || !digits(s + 5, 2, &mo) || s[7] != '-' || !digits(s + 8, 2, &d)
	    || (s[10] != 'T' && s[10] != 't') || !digits(s + 11, 2, &h)
	    || s[13] != ':' || !digits(s + 14, 2, &mi) || s[16] != ':'
	    || !digits(s + 17, 2, &se))
		return false;
	if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23
	    || mi > 59 || se > 59)
		return false;
	size_t i = 19;
	if (tz_ok(s + i, n - i))
		return true;
	/* Fraction: strfmt's regex accepts any one character before the
	 * digits, not only '.'. */
	if (i + 1 >= n || s[i + 1] < '0' || s[i + 1] > '9')
		return false;
	i += 1;
	while (i < n && s[i] >= '0' && s[i] <= '9')
		i++;
	return tz_ok(s + i, n - i);
}

static bool
pattern_matches(const node *n, const char *s, size_t len)
{
	if (len > (size_t) INT32_MAX)
		return false;
	regmatch_t m[1];
	m[0].rm_so = 0;
	m[0].rm_eo = (regoff_t) len;
	return regexec(&n->re, s, 1, m, REG_STARTEND) == 0;
}

static void
check_string(walk *w, const node *n, const json_t *v)
{
	const char *s     = json_string_value(v);
	size_t      len   = json_string_length(v);
	size_t      runes = 0;
	if (n->max_len >= 0 || n->min_len >= 0)
		runes = rune_count(s, len);
	if (n->max_len >= 0 && runes > (size_t) n->max_len) {
		char *msg = mcf_asprintf("Too long: may not be longer than "
		                         "%" JSON_INTEGER_FORMAT,
		    n->max_len);
		add_cause(w, "FieldValueTooLong", msg);
	}
	if (n->min_len >= 0 && runes < (size_t) n->min_len)
		cause_invalid(w, v,
		    "should be at least %" JSON_INTEGER_FORMAT " chars long",
		    n->min_len);
	if (n->pattern != NULL && !pattern_matches(n, s, len))
		cause_invalid(w, v, "should match '%s'", n->pattern);
	if (n->date_time && !is_date_time(s, len)) {
		sbuf sb = { 0 };
		sb_puts(&sb, "Invalid value: ");
		go_quote(&sb, s, len);
		sb_puts(&sb, ": ");
		subject(&sb, w);
		sb_puts(&sb, " must be of type date-time: ");
		go_quote(&sb, s, len);
		add_cause(w, "FieldValueTypeInvalid", sb_take(&sb));
	}
}

/* Is `v` beyond bound `b`?  `upper` selects maximum semantics. */
static bool
out_of_bound(const bound *b, const json_t *v, bool upper)
{
	int cmp; /* sign of v - bound */
	if (json_is_integer(v) && b->is_int) {
		json_int_t x = json_integer_value(v);
		cmp          = x < b->i ? -1 : x > b->i;
	} else {
		double x = json_number_value(v);
		cmp      = x < b->d ? -1 : x > b->d;
	}
	if (upper)
		return b->exclusive ? cmp >= 0 : cmp > 0;
	return b->exclusive ? cmp <= 0 : cmp < 0;
}

static void
check_bound(walk *w, const bound *b, const json_t *v, bool upper)
{
	if (!b->set || !out_of_bound(b, v, upper))
		return;
	sbuf num = { 0 };
	if (b->is_int)
		sb_printf(&num, "%" JSON_INTEGER_FORMAT, b->i);
	else
		go_float(&num, b->d);
	cause_invalid(w, v, "should be %s than%s %s",
	    upper ? "less" : "greater", b->exclusive ? "" : " or equal to",
	    sb_str(&num));
	free(num.buf);
}

static void validate(
    walk *w, const node *n, const json_t *v, int depth, bool root);

static void
check_array(walk *w, const node *n, const json_t *v, int depth)
{
	size_t size = json_array_size(v);
	if (n->items != NULL) {
		for (size_t i = 0; i < size; i++) {
			size_t saved = path_push_index(w, i);
			validate(w, n->items, json_array_get(v, i), depth + 1,
			    false);
			path_pop(w, saved);
		}
	}
	if (n->min_items >= 0 && size < (size_t) n->min_items) {
		json_t *sz = json_integer((json_int_t) size);
		cause_invalid(w, sz,
		    "should have at least %" JSON_INTEGER_FORMAT " items",
		    n->min_items);
		json_decref(sz);
	}
	if (n->max_items >= 0 && size > (size_t) n->max_items) {
		char *msg = mcf_asprintf("Too many: %zu: must have at most "
		                         "%" JSON_INTEGER_FORMAT " items",
		    size, n->max_items);
		add_cause(w, "FieldValueTooMany", msg);
	}
}

static void
check_object(walk *w, const node *n, const json_t *v, int depth, bool root)
{
	for (size_t i = 0; i < n->nprops; i++) {
		const prop *p = &n->props[i];
		if (root && is_meta_key(p->key.s, p->key.len))
			continue;
		const json_t *val = json_object_getn(v, p->key.s, p->key.len);
		if (val == NULL)
			continue;
		size_t saved = path_push_key(w, p->key.s, p->key.len);
		validate(w, p->schema, val, depth + 1, false);
		path_pop(w, saved);
	}
	if (n->addl != NULL) {
		void *it = json_object_iter((json_t *) v);
		for (; it != NULL;
		     it = json_object_iter_next((json_t *) v, it)) {
			const char *k    = json_object_iter_key(it);
			size_t      klen = json_object_iter_key_len(it);
			if (node_prop(n, k, klen) != NULL
			    || (root && is_meta_key(k, klen)))
				continue;
			size_t saved = path_push_map(w, k, klen);
			validate(w, n->addl, json_object_iter_value(it),
			    depth + 1, false);
			path_pop(w, saved);
		}
	}
	for (size_t i = 0; i < n->nrequired; i++) {
		const name *r = &n->required[i];
		if (json_object_getn(v, r->s, r->len) != NULL)
			continue;
		size_t saved = path_push_key(w, r->s, r->len);
		add_cause(
		    w, "FieldValueRequired", mcf_strdup("Required value"));
		path_pop(w, saved);
	}
}

static void
validate(walk *w, const node *n, const json_t *v, int depth, bool root)
{
	if (n == NULL || depth > MAX_DEPTH)
		return;
	if (json_is_null(v)) {
		if (n->nullable) {
			check_enum(w, n, v);
		} else if (n->type != TY_NONE || n->int_or_string) {
			cause_type(w, node_type_name(n), "null");
		}
		return;
	}
	if (!type_ok(n, v)) {
		cause_type(w, node_type_name(n), json_type_name(v));
		return;
	}
	if (json_is_string(v))
		check_string(w, n, v);
	if (json_is_number(v)) {
		check_bound(w, &n->min, v, false);
		check_bound(w, &n->max, v, true);
	}
	if (json_is_array(v))
		check_array(w, n, v, depth);
	check_enum(w, n, v);
	if (json_is_object(v))
		check_object(w, n, v, depth, root);
}

size_t
ks_schema_apply(const ks_schema *s, json_t *obj, ks_schema_result *res)
{
	memset(res, 0, sizeof(*res));
	if (s == NULL || obj == NULL)
		return 0;
	walk w = { .res = res };
	prune(&w, s->root, obj, 0, true);
	apply_defaults(s->root, obj, 0);
	validate(&w, s->root, obj, 0, true);
	free(w.path.buf);
	return res->count;
}

void
ks_schema_default(const ks_schema *s, json_t *obj)
{
	if (s == NULL || obj == NULL)
		return;
	apply_defaults(s->root, obj, 0);
}

void
ks_schema_result_fini(ks_schema_result *res)
{
	if (res == NULL)
		return;
	for (size_t i = 0; i < res->count; i++) {
		free(res->causes[i].reason);
		free(res->causes[i].field);
		free(res->causes[i].message);
	}
	free(res->causes);
	for (size_t i = 0; i < res->unknown_count; i++)
		free(res->unknown[i]);
	free(res->unknown);
	memset(res, 0, sizeof(*res));
}

typedef struct msg_ent {
	const char *text; /* borrowed from the `texts` array */
	size_t      idx;
} msg_ent;

static int
msg_cmp(const void *a, const void *b)
{
	const msg_ent *x = a, *y = b;
	int            c = strcmp(x->text, y->text);
	if (c != 0)
		return c;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

char *
ks_schema_result_message(const ks_schema_result *res)
{
	/* apimachinery's aggregate error: distinct "field: message" texts
	 * joined with ", ", in brackets when there is more than one.  The
	 * duplicates are found by sorting, so a huge list stays cheap. */
	size_t   n     = res->count;
	char   **texts = mcf_calloc(n + 1, sizeof(*texts));
	msg_ent *ents  = mcf_calloc(n + 1, sizeof(*ents));
	bool    *dup   = mcf_calloc(n + 1, sizeof(*dup));
	for (size_t i = 0; i < n; i++) {
		texts[i] = mcf_asprintf(
		    "%s: %s", res->causes[i].field, res->causes[i].message);
		ents[i] = (msg_ent) { texts[i], i };
	}
	qsort(ents, n, sizeof(*ents), msg_cmp);
	for (size_t i = 1; i < n; i++)
		if (strcmp(ents[i].text, ents[i - 1].text) == 0)
			dup[ents[i].idx] = true;
	sbuf   sb       = { 0 };
	size_t distinct = 0;
	for (size_t i = 0; i < n; i++) {
		if (dup[i])
			continue;
		if (distinct++ > 0)
			sb_puts(&sb, ", ");
		sb_puts(&sb, texts[i]);
	}
	for (size_t i = 0; i < n; i++)
		free(texts[i]);
	free(texts);
	free(ents);
	free(dup);
	char *body = sb_take(&sb);
	if (distinct <= 1)
		return body;
	char *all = mcf_asprintf("[%s]", body);
	free(body);
	return all;
}

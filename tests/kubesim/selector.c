/*
 * selector.c — Kubernetes label and field selectors (KUBE_API.md §3.4).
 *
 * Both parsers follow k8s.io/apimachinery (v0.32) step by step, so that
 * kubesim accepts, rejects and words its errors as a real API server does.
 *
 * Label selectors (apimachinery pkg/labels/selector.go).  A lexer turns the
 * whole string into tokens first: whitespace is ' ', '\t', '\r', '\n'; the
 * "special" bytes = ! ( ) , > < form the longest operator that is still a
 * token ("!=", "==", ...); any other run of bytes is an identifier, and the
 * identifiers "in" and "notin" are keywords except where a value or key is
 * expected.  A recursive-descent parser then builds one requirement per
 * comma-separated term and validates keys (qualified names) and values
 * (label values) with the same rules and messages as
 * apimachinery's util/validation.  Errors found inside a requirement are
 * prefixed with "unable to parse requirement: "; the few errors found
 * between requirements (a leading ',', a stray token after a requirement)
 * are not, exactly as apimachinery returns them.
 *
 * Field selectors (apimachinery pkg/fields/selector.go).  The string is cut
 * at every ',' not preceded by a backslash, the terms are sorted (so the
 * first failing term in sorted order names the error), each term is split
 * at its first "!=", "==" or "=", and the value is unescaped (\\ \, \= only;
 * a bare ',' or '=' is an error).  Only after every term parsed are the
 * field names checked against the caller's list, as the API server does
 * when it converts field labels.  Nothing is trimmed: "a = b" names the
 * field "a ".
 *
 * Error text is made valid UTF-8 before it is handed out (invalid bytes
 * become U+FFFD, as Go's JSON encoder does when it writes the Status), so
 * callers can put it straight into a JSON string.
 *
 * A parsed selector is a flat array; matching never allocates.
 */
#include "selector.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"

/* ---- growable string, for error messages ------------------------------ */

struct sbuf {
	char  *p; /* owned; NUL-terminated once anything was added */
	size_t len;
	size_t cap;
};

static void
sb_putn(struct sbuf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 64;
		while (cap < b->len + n + 1)
			cap *= 2;
		b->p   = mcf_realloc(b->p, cap);
		b->cap = cap;
	}
	if (n > 0)
		memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void
sb_puts(struct sbuf *b, const char *s)
{
	sb_putn(b, s, strlen(s));
}

static void sb_printf(struct sbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
sb_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s = mcf_vasprintf(fmt, ap);
	va_end(ap);
	sb_puts(b, s);
	free(s);
}

static void
sb_free(struct sbuf *b)
{
	free(b->p);
	b->p   = NULL;
	b->len = b->cap = 0;
}

/* ---- UTF-8, the way Go's decoder sees it ------------------------------ */

#define RUNE_ERROR 0xFFFDu

/* Decodes one rune at s[0..n), n > 0.  Invalid or truncated sequences,
 * overlong forms, surrogates and values above U+10FFFF decode as
 * RUNE_ERROR with width 1 (Go's utf8.DecodeRuneInString). */
static size_t
utf8_decode(const unsigned char *s, size_t n, uint32_t *r)
{
	unsigned char c = s[0];
	if (c < 0x80) {
		*r = c;
		return 1;
	}
	size_t   w;
	uint32_t v, min;
	if (c >= 0xC2 && c <= 0xDF) {
		w = 2, v = c & 0x1F, min = 0x80;
	} else if (c >= 0xE0 && c <= 0xEF) {
		w = 3, v = c & 0x0F, min = 0x800;
	} else if (c >= 0xF0 && c <= 0xF4) {
		w = 4, v = c & 0x07, min = 0x10000;
	} else {
		*r = RUNE_ERROR;
		return 1;
	}
	if (n < w) {
		*r = RUNE_ERROR;
		return 1;
	}
	for (size_t i = 1; i < w; i++) {
		if ((s[i] & 0xC0) != 0x80) {
			*r = RUNE_ERROR;
			return 1;
		}
		v = (v << 6) | (s[i] & 0x3F);
	}
	if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) {
		*r = RUNE_ERROR;
		return 1;
	}
	*r = v;
	return w;
}

static void
sb_rune(struct sbuf *b, uint32_t r)
{
	char buf[4];
	if (r < 0x80) {
		buf[0] = (char) r;
		sb_putn(b, buf, 1);
	} else if (r < 0x800) {
		buf[0] = (char) (0xC0 | (r >> 6));
		buf[1] = (char) (0x80 | (r & 0x3F));
		sb_putn(b, buf, 2);
	} else if (r < 0x10000) {
		buf[0] = (char) (0xE0 | (r >> 12));
		buf[1] = (char) (0x80 | ((r >> 6) & 0x3F));
		buf[2] = (char) (0x80 | (r & 0x3F));
		sb_putn(b, buf, 3);
	} else {
		buf[0] = (char) (0xF0 | (r >> 18));
		buf[1] = (char) (0x80 | ((r >> 12) & 0x3F));
		buf[2] = (char) (0x80 | ((r >> 6) & 0x3F));
		buf[3] = (char) (0x80 | (r & 0x3F));
		sb_putn(b, buf, 4);
	}
}

/* Whether Go's strconv.IsPrint would print rune r (r >= 0x80) as is.  An
 * approximation: it knows the non-printing runes a label key is likely to
 * carry (C1 controls, non-ASCII spaces, format characters, private use,
 * noncharacters) and calls every other assigned-looking rune printable. */
static int
rune_printable(uint32_t r)
{
	if (r < 0xA0 || r == 0xA0 || r == 0xAD)
		return 0;
	if (r == 0x1680 || (r >= 0x2000 && r <= 0x200F)
	    || (r >= 0x2028 && r <= 0x202F) || (r >= 0x205F && r <= 0x2064)
	    || r == 0x3000 || r == 0xFEFF)
		return 0;
	if (r >= 0xE000 && r <= 0xF8FF)
		return 0;
	if ((r & 0xFFFE) == 0xFFFE || (r >= 0xFDD0 && r <= 0xFDEF))
		return 0;
	if (r >= 0xF0000)
		return 0;
	return 1;
}

/* Appends s[0..n) quoted like Go's %q verb. */
static void
sb_quote(struct sbuf *b, const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *) s;
	sb_putn(b, "\"", 1);
	for (size_t i = 0; i < n;) {
		uint32_t r;
		size_t   w = utf8_decode(u + i, n - i, &r);
		if (r == RUNE_ERROR && w == 1) {
			sb_printf(b, "\\x%02x", u[i]);
			i += 1;
			continue;
		}
		i += w;
		switch (r) {
		case '"':
			sb_puts(b, "\\\"");
			continue;
		case '\\':
			sb_puts(b, "\\\\");
			continue;
		case '\a':
			sb_puts(b, "\\a");
			continue;
		case '\b':
			sb_puts(b, "\\b");
			continue;
		case '\f':
			sb_puts(b, "\\f");
			continue;
		case '\n':
			sb_puts(b, "\\n");
			continue;
		case '\r':
			sb_puts(b, "\\r");
			continue;
		case '\t':
			sb_puts(b, "\\t");
			continue;
		case '\v':
			sb_puts(b, "\\v");
			continue;
		default:
			break;
		}
		if (r < 0x20 || r == 0x7F)
			sb_printf(b, "\\x%02x", (unsigned) r);
		else if (r < 0x80 || rune_printable(r))
			sb_rune(b, r);
		else if (r < 0x10000)
			sb_printf(b, "\\u%04x", (unsigned) r);
		else
			sb_printf(b, "\\U%08x", (unsigned) r);
	}
	sb_putn(b, "\"", 1);
}

/* Copies `msg` into err[0..errlen) as valid UTF-8 (invalid bytes become
 * U+FFFD), truncating on a character boundary. */
static void
set_err(char *err, size_t errlen, const char *msg)
{
	if (err == NULL || errlen == 0)
		return;
	const unsigned char *u   = (const unsigned char *) msg;
	size_t               n   = strlen(msg);
	size_t               out = 0;
	for (size_t i = 0; i < n;) {
		uint32_t r;
		size_t   w = utf8_decode(u + i, n - i, &r);
		char     tmp[4];
		size_t   tl;
		if (r == RUNE_ERROR && w == 1) {
			memcpy(tmp, "\xEF\xBF\xBD", 3);
			tl = 3;
		} else {
			memcpy(tmp, msg + i, w);
			tl = w;
		}
		if (out + tl >= errlen)
			break;
		memcpy(err + out, tmp, tl);
		out += tl;
		i += w;
	}
	err[out] = '\0';
}

/* ---- validation (apimachinery util/validation) ----------------------- */

#define QNAME_FMT "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
#define QNAME_MSG                                                             \
	"must consist of alphanumeric characters, '-', '_' or '.', and must " \
	"start and end with an alphanumeric character"
#define QNAME_EXAMPLES "(e.g. 'MyName',  or 'my.name',  or '123-abc', "
#define QNAME_REGEX_ERR                                                       \
	QNAME_MSG " " QNAME_EXAMPLES                                          \
	          "regex used for validation is '" QNAME_FMT "')"
#define DNS1123_SUB_FMT                                                       \
	"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
#define DNS1123_SUB_REGEX_ERR                                                 \
	"a lowercase RFC 1123 subdomain must consist of lower case "          \
	"alphanumeric characters, '-' or '.', and must start and end with "   \
	"an alphanumeric character (e.g. 'example.com', regex used for "      \
	"validation is '" DNS1123_SUB_FMT "')"
#define LABEL_VALUE_REGEX_ERR                                                 \
	"a valid label must be an empty string or consist of alphanumeric "   \
	"characters, '-', '_' or '.', and must start and end with an "        \
	"alphanumeric character (e.g. 'MyValue',  or 'my_value',  or "        \
	"'12345', regex used for validation is "                              \
	"'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"

static int
is_alnum(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
	    || (c >= '0' && c <= '9');
}

/* ^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$ */
static int
qname_match(const char *s, size_t n)
{
	if (n == 0 || !is_alnum((unsigned char) s[0])
	    || !is_alnum((unsigned char) s[n - 1]))
		return 0;
	for (size_t i = 1; i + 1 < n; i++) {
		unsigned char c = (unsigned char) s[i];
		if (!is_alnum(c) && c != '-' && c != '_' && c != '.')
			return 0;
	}
	return 1;
}

static int
is_lower_alnum(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* ^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$ */
static int
dns1123_subdomain_match(const char *s, size_t n)
{
	size_t start = 0;
	for (size_t i = 0; i <= n; i++) {
		if (i < n && s[i] != '.')
			continue;
		size_t len = i - start;
		if (len == 0 || !is_lower_alnum((unsigned char) s[start])
		    || !is_lower_alnum((unsigned char) s[i - 1]))
			return 0;
		for (size_t j = start + 1; j + 1 < i; j++) {
			unsigned char c = (unsigned char) s[j];
			if (!is_lower_alnum(c) && c != '-')
				return 0;
		}
		start = i + 1;
	}
	return 1;
}

static void
sb_sep(struct sbuf *b, size_t start)
{
	if (b->len > start)
		sb_puts(b, "; ");
}

/* IsQualifiedName: appends the "; "-joined problems with key s[0..n) to
 * `d`; returns whether there were any. */
static int
qualified_name_errors(const char *s, size_t n, struct sbuf *d)
{
	size_t      start   = d->len;
	size_t      slashes = 0, slash = 0;
	const char *name    = s;
	size_t      namelen = n;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '/') {
			if (slashes++ == 0)
				slash = i;
		}
	}
	if (slashes > 1) {
		sb_puts(d,
		    "a qualified name " QNAME_REGEX_ERR
		    " with an optional DNS subdomain prefix and '/' (e.g. "
		    "'example.com/MyName')");
		return 1;
	}
	if (slashes == 1) {
		size_t plen = slash;
		name        = s + slash + 1;
		namelen     = n - slash - 1;
		if (plen == 0) {
			sb_puts(d, "prefix part must be non-empty");
		} else {
			if (plen > 253) {
				sb_sep(d, start);
				sb_puts(d,
				    "prefix part must be no more than "
				    "253 characters");
			}
			if (!dns1123_subdomain_match(s, plen)) {
				sb_sep(d, start);
				sb_puts(
				    d, "prefix part " DNS1123_SUB_REGEX_ERR);
			}
		}
	}
	if (namelen == 0) {
		sb_sep(d, start);
		sb_puts(d, "name part must be non-empty");
	} else if (namelen > 63) {
		sb_sep(d, start);
		sb_puts(d, "name part must be no more than 63 characters");
	}
	if (!qname_match(name, namelen)) {
		sb_sep(d, start);
		sb_puts(d, "name part " QNAME_REGEX_ERR);
	}
	return d->len > start;
}

/* IsValidLabelValue. */
static int
label_value_errors(const char *s, size_t n, struct sbuf *d)
{
	size_t start = d->len;
	if (n > 63)
		sb_puts(d, "must be no more than 63 characters");
	if (n > 0 && !qname_match(s, n)) {
		sb_sep(d, start);
		sb_puts(d, LABEL_VALUE_REGEX_ERR);
	}
	return d->len > start;
}

/* strconv.ParseInt(s, 10, 64): optional sign, one or more digits, no
 * overflow. */
static int
go_parse_int64(const char *s, size_t n, int64_t *out)
{
	size_t i   = 0;
	int    neg = 0;
	if (n > 0 && (s[0] == '+' || s[0] == '-')) {
		neg = s[0] == '-';
		i   = 1;
	}
	if (i == n)
		return 0;
	uint64_t v   = 0;
	uint64_t lim = neg ? (uint64_t) INT64_MAX + 1 : (uint64_t) INT64_MAX;
	for (; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return 0;
		unsigned d = (unsigned) (s[i] - '0');
		if (v > (lim - d) / 10)
			return 0;
		v = v * 10 + d;
	}
	if (neg)
		*out
		    = v == (uint64_t) INT64_MAX + 1 ? INT64_MIN : -(int64_t) v;
	else
		*out = (int64_t) v;
	return 1;
}

/* ---- label selector: lexer -------------------------------------------- */

enum tok {
	TOK_ERROR = 0,
	TOK_EOS,
	TOK_CLOSEPAR,
	TOK_COMMA,
	TOK_NOT,
	TOK_DEQ,
	TOK_EQ,
	TOK_GT,
	TOK_ID,
	TOK_IN,
	TOK_LT,
	TOK_NEQ,
	TOK_NOTIN,
	TOK_OPENPAR,
};

struct token {
	enum tok    tok;
	const char *lit; /* borrowed from the input (or a static "") */
	size_t      len;
};

static int
is_ws(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int
is_special(unsigned char c)
{
	return c == '=' || c == '!' || c == '(' || c == ')' || c == ','
	    || c == '>' || c == '<';
}

static enum tok
special_token(const char *s, size_t n)
{
	if (n == 1) {
		switch (s[0]) {
		case ')':
			return TOK_CLOSEPAR;
		case ',':
			return TOK_COMMA;
		case '!':
			return TOK_NOT;
		case '=':
			return TOK_EQ;
		case '>':
			return TOK_GT;
		case '<':
			return TOK_LT;
		case '(':
			return TOK_OPENPAR;
		default:
			return TOK_ERROR;
		}
	}
	if (n == 2 && s[1] == '=') {
		if (s[0] == '=')
			return TOK_DEQ;
		if (s[0] == '!')
			return TOK_NEQ;
	}
	return TOK_ERROR;
}

/* Splits `s` into tokens ending with one TOK_EOS.  Returns a new array. */
static struct token *
lex(const char *s, size_t *count)
{
	size_t        cap = 16, n = 0, pos = 0;
	struct token *t = mcf_malloc(cap * sizeof(*t));
	for (;;) {
		if (n == cap) {
			cap *= 2;
			t = mcf_realloc(t, cap * sizeof(*t));
		}
		while (is_ws((unsigned char) s[pos]))
			pos++;
		unsigned char c     = (unsigned char) s[pos];
		size_t        start = pos;
		if (c == '\0') {
			t[n++] = (struct token) { TOK_EOS, "", 0 };
			break;
		}
		if (is_special(c)) {
			/* Longest run of special bytes that is still a token;
			 * every single special byte is one. */
			enum tok last = special_token(s + start, 1);
			size_t   len  = 1;
			while (is_special((unsigned char) s[start + len])) {
				enum tok k = special_token(s + start, len + 1);
				if (k == TOK_ERROR)
					break;
				last = k;
				len++;
			}
			pos    = start + len;
			t[n++] = (struct token) { last, s + start, len };
			continue;
		}
		while (s[pos] != '\0' && !is_special((unsigned char) s[pos])
		    && !is_ws((unsigned char) s[pos]))
			pos++;
		size_t   len = pos - start;
		enum tok k   = TOK_ID;
		if (len == 2 && memcmp(s + start, "in", 2) == 0)
			k = TOK_IN;
		else if (len == 5 && memcmp(s + start, "notin", 5) == 0)
			k = TOK_NOTIN;
		t[n++] = (struct token) { k, s + start, len };
	}
	*count = n;
	return t;
}

/* ---- label selector: parser ------------------------------------------- */

enum op {
	OP_EXISTS,
	OP_NOT_EXISTS,
	OP_IN,
	OP_NOTIN,
	OP_EQ,
	OP_DEQ,
	OP_NEQ,
	OP_GT,
	OP_LT,
};

struct labelreq {
	char   *key; /* owned */
	enum op op;
	char  **values; /* owned, sorted, without duplicates */
	size_t *vlens;  /* owned */
	size_t  nvalues;
	int64_t num; /* OP_GT, OP_LT: the parsed value */
};

struct ks_labelsel {
	struct labelreq *reqs; /* owned */
	size_t           nreqs;
};

struct parser {
	struct token *t; /* owned */
	size_t        n;
	size_t        pos;
};

enum ctx { CTX_KEY_AND_OP, CTX_VALUES };

static struct token
tok_at(const struct parser *p, size_t i, enum ctx ctx)
{
	/* Positions never pass the final TOK_EOS. */
	struct token t = p->t[i < p->n ? i : p->n - 1];
	if (ctx == CTX_VALUES && (t.tok == TOK_IN || t.tok == TOK_NOTIN))
		t.tok = TOK_ID;
	return t;
}

static struct token
lookahead(const struct parser *p, enum ctx ctx)
{
	return tok_at(p, p->pos, ctx);
}

static struct token
consume(struct parser *p, enum ctx ctx)
{
	struct token t = tok_at(p, p->pos, ctx);
	if (p->pos < p->n - 1)
		p->pos++;
	return t;
}

static int
bytes_cmp(const char *a, size_t al, const char *b, size_t bl)
{
	int c = memcmp(a, b, al < bl ? al : bl);
	if (c != 0)
		return c;
	return al < bl ? -1 : al > bl;
}

/* A piece of the input. */
struct slice {
	const char *s;
	size_t      len;
};

/* Go string order: bytewise, a prefix first. */
static int
slice_cmp(const void *a, const void *b)
{
	const struct slice *x = a, *y = b;
	return bytes_cmp(x->s, x->len, y->s, y->len);
}

/* A value set under construction: slices of the input. */
struct vset {
	struct slice *v; /* owned array */
	size_t        n, cap;
};

static void
vset_add(struct vset *v, const char *s, size_t len)
{
	if (v->n == v->cap) {
		v->cap = v->cap ? v->cap * 2 : 4;
		v->v   = mcf_realloc(v->v, v->cap * sizeof(*v->v));
	}
	v->v[v->n++] = (struct slice) { s, len };
}

static void
vset_free(struct vset *v)
{
	free(v->v);
	v->v = NULL;
	v->n = v->cap = 0;
}

/* Sorts (Go string order) and drops duplicates, as sets.String.List(). */
static void
vset_normalize(struct vset *v)
{
	if (v->n > 1)
		qsort(v->v, v->n, sizeof(*v->v), slice_cmp);
	size_t out = 0;
	for (size_t i = 0; i < v->n; i++) {
		if (out > 0 && slice_cmp(&v->v[out - 1], &v->v[i]) == 0)
			continue;
		v->v[out++] = v->v[i];
	}
	v->n = out;
}

static const char *
op_list(void)
{
	return "in, notin, =, ==, !=, gt, lt";
}

/* parseValues: "(" list ")".  Appends problems to `e`. */
static int
parse_values(struct parser *p, struct vset *v, struct sbuf *e)
{
	struct token t = consume(p, CTX_VALUES);
	if (t.tok != TOK_OPENPAR) {
		sb_puts(e, "found '");
		sb_putn(e, t.lit, t.len);
		sb_puts(e, "' expected: '('");
		return -1;
	}
	struct token first = lookahead(p, CTX_VALUES);
	if (first.tok == TOK_CLOSEPAR) {
		consume(p, CTX_VALUES);
		vset_add(v, "", 0);
		return 0;
	}
	if (first.tok != TOK_ID && first.tok != TOK_COMMA) {
		sb_puts(e, "found '");
		sb_putn(e, first.lit, first.len);
		sb_puts(e, "', expected: ',', ')' or identifier");
		return -1;
	}
	/* parseIdentifiersList */
	for (;;) {
		t = consume(p, CTX_VALUES);
		if (t.tok == TOK_ID) {
			vset_add(v, t.lit, t.len);
			struct token t2 = lookahead(p, CTX_VALUES);
			if (t2.tok == TOK_COMMA)
				continue;
			if (t2.tok == TOK_CLOSEPAR)
				break;
			sb_puts(e, "found '");
			sb_putn(e, t2.lit, t2.len);
			sb_puts(e, "', expected: ',' or ')'");
			return -1;
		} else if (t.tok == TOK_COMMA) {
			if (v->n == 0)
				vset_add(v, "", 0);
			struct token t2 = lookahead(p, CTX_VALUES);
			if (t2.tok == TOK_CLOSEPAR) {
				vset_add(v, "", 0);
				break;
			}
			if (t2.tok == TOK_COMMA) {
				consume(p, CTX_VALUES);
				vset_add(v, "", 0);
			}
		} else {
			sb_puts(e, "found '");
			sb_putn(e, t.lit, t.len);
			sb_puts(e, "', expected: ',', or identifier");
			return -1;
		}
	}
	t = consume(p, CTX_VALUES);
	if (t.tok != TOK_CLOSEPAR) {
		/* Unreachable: the list above stops only before ')'.  The
		 * message quotes the first value, as apimachinery does. */
		sb_puts(e, "found '");
		sb_putn(e, first.lit, first.len);
		sb_puts(e, "', expected: ')'");
		return -1;
	}
	return 0;
}

/* parseExactValue. */
static int
parse_exact_value(struct parser *p, struct vset *v, struct sbuf *e)
{
	struct token t = lookahead(p, CTX_VALUES);
	if (t.tok == TOK_EOS || t.tok == TOK_COMMA) {
		vset_add(v, "", 0);
		return 0;
	}
	t = consume(p, CTX_VALUES);
	if (t.tok == TOK_ID) {
		vset_add(v, t.lit, t.len);
		return 0;
	}
	sb_puts(e, "found '");
	sb_putn(e, t.lit, t.len);
	sb_puts(e, "', expected: identifier");
	return -1;
}

/* An aggregate of field errors, worded as utilerrors.NewAggregate.  A
 * hostile "k in (...)" can hold a million bad values; past ERRLIST_CAP bytes
 * of text further errors are dropped, which only changes text far beyond
 * any caller's buffer and keeps the deduplication below cheap. */
#define ERRLIST_CAP 65536

struct errlist {
	char **msg; /* owned */
	size_t n;
	size_t total; /* bytes of text held */
};

static void
errlist_add(struct errlist *l, struct sbuf *m)
{
	for (size_t i = 0; i < l->n; i++) {
		if (strcmp(l->msg[i], m->p) == 0) {
			sb_free(m);
			return;
		}
	}
	l->total += m->len;
	l->msg         = mcf_realloc(l->msg, (l->n + 1) * sizeof(*l->msg));
	l->msg[l->n++] = m->p;
	m->p           = NULL;
	m->len = m->cap = 0;
}

static void
errlist_render(struct errlist *l, struct sbuf *e)
{
	if (l->n > 1)
		sb_puts(e, "[");
	for (size_t i = 0; i < l->n; i++) {
		if (i > 0)
			sb_puts(e, ", ");
		sb_puts(e, l->msg[i]);
	}
	if (l->n > 1)
		sb_puts(e, "]");
	for (size_t i = 0; i < l->n; i++)
		free(l->msg[i]);
	free(l->msg);
	l->msg = NULL;
	l->n   = 0;
}

static void
labelreq_fini(struct labelreq *r)
{
	for (size_t i = 0; i < r->nvalues; i++)
		free(r->values[i]);
	free(r->values);
	free(r->vlens);
	free(r->key);
	memset(r, 0, sizeof(*r));
}

/* NewRequirement: validates the values of a binary requirement and fills
 * `r`.  Key already validated. */
static int
new_requirement(struct labelreq *r, const char *key, size_t keylen, enum op op,
    struct vset *v, struct sbuf *e)
{
	struct errlist errs = { NULL, 0, 0 };
	vset_normalize(v);
	if (op == OP_GT || op == OP_LT) {
		/* parseExactValue always yields exactly one value. */
		for (size_t i = 0; i < v->n; i++) {
			if (go_parse_int64(v->v[i].s, v->v[i].len, &r->num))
				continue;
			struct sbuf m = { NULL, 0, 0 };
			sb_printf(&m, "values[%zu]: Invalid value: ", i);
			sb_quote(&m, v->v[i].s, v->v[i].len);
			sb_puts(&m,
			    ": for 'Gt', 'Lt' operators, the value "
			    "must be an integer");
			errlist_add(&errs, &m);
		}
	}
	for (size_t i = 0; i < v->n && errs.total < ERRLIST_CAP; i++) {
		struct sbuf d = { NULL, 0, 0 };
		if (!label_value_errors(v->v[i].s, v->v[i].len, &d)) {
			sb_free(&d);
			continue;
		}
		struct sbuf m = { NULL, 0, 0 };
		sb_printf(&m, "values[%zu][", i);
		sb_putn(&m, key, keylen);
		sb_puts(&m, "]: Invalid value: ");
		sb_quote(&m, v->v[i].s, v->v[i].len);
		sb_puts(&m, ": ");
		sb_puts(&m, d.p);
		sb_free(&d);
		errlist_add(&errs, &m);
	}
	if (errs.n > 0) {
		errlist_render(&errs, e);
		return -1;
	}
	r->key     = mcf_strndup(key, keylen);
	r->op      = op;
	r->nvalues = v->n;
	r->values  = mcf_calloc(v->n, sizeof(*r->values));
	r->vlens   = mcf_calloc(v->n, sizeof(*r->vlens));
	for (size_t i = 0; i < v->n; i++) {
		r->values[i] = mcf_strndup(v->v[i].s, v->v[i].len);
		r->vlens[i]  = v->v[i].len;
	}
	return 0;
}

/* parseRequirement; on error appends the unprefixed message to `e`. */
static int
parse_requirement(struct parser *p, struct labelreq *r, struct sbuf *e)
{
	/* parseKeyAndInferOperator */
	int          not_exists = 0;
	struct token t          = consume(p, CTX_VALUES);
	if (t.tok == TOK_NOT) {
		not_exists = 1;
		t          = consume(p, CTX_VALUES);
	}
	if (t.tok != TOK_ID) {
		sb_puts(e, "found '");
		sb_putn(e, t.lit, t.len);
		sb_puts(e, "', expected: identifier");
		return -1;
	}
	const char *key    = t.lit;
	size_t      keylen = t.len;
	struct sbuf d      = { NULL, 0, 0 };
	if (qualified_name_errors(key, keylen, &d)) {
		sb_puts(e, "<nil>: Invalid value: ");
		sb_quote(e, key, keylen);
		sb_puts(e, ": ");
		sb_puts(e, d.p);
		sb_free(&d);
		return -1;
	}
	sb_free(&d);
	struct token la = lookahead(p, CTX_VALUES);
	if (not_exists || la.tok == TOK_EOS || la.tok == TOK_COMMA) {
		r->key = mcf_strndup(key, keylen);
		r->op  = not_exists ? OP_NOT_EXISTS : OP_EXISTS;
		return 0;
	}

	/* parseOperator */
	enum op op;
	t = consume(p, CTX_KEY_AND_OP);
	switch (t.tok) {
	case TOK_IN:
		op = OP_IN;
		break;
	case TOK_EQ:
		op = OP_EQ;
		break;
	case TOK_DEQ:
		op = OP_DEQ;
		break;
	case TOK_GT:
		op = OP_GT;
		break;
	case TOK_LT:
		op = OP_LT;
		break;
	case TOK_NOTIN:
		op = OP_NOTIN;
		break;
	case TOK_NEQ:
		op = OP_NEQ;
		break;
	default:
		sb_puts(e, "found '");
		sb_putn(e, t.lit, t.len);
		sb_puts(e, "', expected: ");
		sb_puts(e, op_list());
		return -1;
	}

	struct vset v = { NULL, 0, 0 };
	int rc = (op == OP_IN || op == OP_NOTIN) ? parse_values(p, &v, e)
	                                         : parse_exact_value(p, &v, e);
	if (rc == 0)
		rc = new_requirement(r, key, keylen, op, &v, e);
	vset_free(&v);
	return rc;
}

void
ks_labelsel_free(ks_labelsel *sel)
{
	if (sel == NULL)
		return;
	for (size_t i = 0; i < sel->nreqs; i++)
		labelreq_fini(&sel->reqs[i]);
	free(sel->reqs);
	free(sel);
}

ks_labelsel *
ks_labelsel_parse(const char *s, char *err, size_t errlen)
{
	if (s == NULL)
		s = "";
	struct parser p   = { NULL, 0, 0 };
	p.t               = lex(s, &p.n);
	ks_labelsel *sel  = mcf_calloc(1, sizeof(*sel));
	size_t       cap  = 0;
	struct sbuf  e    = { NULL, 0, 0 };
	int          fail = 0;

	for (;;) {
		struct token t = lookahead(&p, CTX_VALUES);
		if (t.tok == TOK_EOS)
			break;
		if (t.tok != TOK_ID && t.tok != TOK_NOT) {
			sb_puts(&e, "found '");
			sb_putn(&e, t.lit, t.len);
			sb_puts(&e,
			    "', expected: !, identifier, or 'end of string'");
			fail = 1;
			break;
		}
		if (sel->nreqs == cap) {
			cap = cap ? cap * 2 : 4;
			sel->reqs
			    = mcf_realloc(sel->reqs, cap * sizeof(*sel->reqs));
		}
		struct labelreq r   = { 0 };
		struct sbuf     sub = { NULL, 0, 0 };
		if (parse_requirement(&p, &r, &sub) != 0) {
			sb_puts(&e, "unable to parse requirement: ");
			sb_puts(&e, sub.p);
			sb_free(&sub);
			labelreq_fini(&r);
			fail = 1;
			break;
		}
		sel->reqs[sel->nreqs++] = r;
		t                       = consume(&p, CTX_VALUES);
		if (t.tok == TOK_EOS)
			break;
		if (t.tok == TOK_COMMA) {
			struct token t2 = lookahead(&p, CTX_VALUES);
			if (t2.tok != TOK_ID && t2.tok != TOK_NOT) {
				sb_puts(&e, "found '");
				sb_putn(&e, t2.lit, t2.len);
				sb_puts(
				    &e, "', expected: identifier after ','");
				fail = 1;
				break;
			}
			continue;
		}
		sb_puts(&e, "found '");
		sb_putn(&e, t.lit, t.len);
		sb_puts(&e, "', expected: ',' or 'end of string'");
		fail = 1;
		break;
	}
	free(p.t);
	if (fail) {
		set_err(err, errlen, e.p);
		sb_free(&e);
		ks_labelsel_free(sel);
		return NULL;
	}
	sb_free(&e);
	return sel;
}

static int
req_has_value(const struct labelreq *r, const char *v, size_t len)
{
	for (size_t i = 0; i < r->nvalues; i++) {
		if (r->vlens[i] == len && memcmp(r->values[i], v, len) == 0)
			return 1;
	}
	return 0;
}

static int
req_match(const struct labelreq *r, const json_t *labels)
{
	const json_t *v   = labels ? json_object_get(labels, r->key) : NULL;
	const char   *s   = json_is_string(v) ? json_string_value(v) : NULL;
	size_t        len = s ? json_string_length(v) : 0;
	int64_t       n;

	switch (r->op) {
	case OP_EXISTS:
		return v != NULL;
	case OP_NOT_EXISTS:
		return v == NULL;
	case OP_IN:
	case OP_EQ:
	case OP_DEQ:
		return s != NULL && req_has_value(r, s, len);
	case OP_NOTIN:
	case OP_NEQ:
		return v == NULL || s == NULL || !req_has_value(r, s, len);
	case OP_GT:
	case OP_LT:
		if (s == NULL || !go_parse_int64(s, len, &n))
			return 0;
		return r->op == OP_GT ? n > r->num : n < r->num;
	}
	return 0;
}

bool
ks_labelsel_match(const ks_labelsel *sel, const json_t *labels)
{
	if (!json_is_object(labels))
		labels = NULL;
	for (size_t i = 0; i < sel->nreqs; i++) {
		if (!req_match(&sel->reqs[i], labels))
			return false;
	}
	return true;
}

bool
ks_labelsel_empty(const ks_labelsel *sel)
{
	return sel->nreqs == 0;
}

/* ---- field selector ---------------------------------------------------- */

struct fieldterm {
	char  *field; /* owned */
	char  *value; /* owned, unescaped */
	size_t vlen;
	int    neg; /* "!=" */
};

struct ks_fieldsel {
	struct fieldterm *terms; /* owned */
	size_t            nterms;
	const char       *name; /* borrowed from terms[], or NULL */
};

/* UnescapeValue: 0 and the value in `out`, or -1 and the error in `e`. */
static int
unescape_value(const char *s, size_t n, struct sbuf *out, struct sbuf *e)
{
	int special = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\\' || s[i] == ',' || s[i] == '=')
			special = 1;
	}
	if (!special) {
		sb_putn(out, s, n);
		return 0;
	}
	/* Go ranges over runes here, so invalid UTF-8 turns into U+FFFD. */
	const unsigned char *u        = (const unsigned char *) s;
	int                  in_slash = 0;
	for (size_t i = 0; i < n;) {
		uint32_t r;
		size_t   w = utf8_decode(u + i, n - i, &r);
		i += w;
		if (in_slash) {
			if (r != '\\' && r != ',' && r != '=') {
				sb_puts(e,
				    "invalid field selector: invalid "
				    "escape sequence: \\");
				sb_rune(e, r);
				return -1;
			}
			sb_rune(out, r);
			in_slash = 0;
			continue;
		}
		if (r == '\\') {
			in_slash = 1;
		} else if (r == ',' || r == '=') {
			sb_printf(e,
			    "invalid field selector: unescaped character in "
			    "value: %u",
			    (unsigned) r);
			return -1;
		} else {
			sb_rune(out, r);
		}
	}
	if (in_slash) {
		sb_puts(
		    e, "invalid field selector: invalid escape sequence: \\");
		return -1;
	}
	if (out->p == NULL)
		sb_putn(out, "", 0);
	return 0;
}

void
ks_fieldsel_free(ks_fieldsel *sel)
{
	if (sel == NULL)
		return;
	for (size_t i = 0; i < sel->nterms; i++) {
		free(sel->terms[i].field);
		free(sel->terms[i].value);
	}
	free(sel->terms);
	free(sel);
}

static int
field_allowed(const char *const *allowed, const char *field)
{
	if (allowed == NULL)
		return 1;
	for (size_t i = 0; allowed[i] != NULL; i++) {
		if (strcmp(allowed[i], field) == 0)
			return 1;
	}
	return 0;
}

ks_fieldsel *
ks_fieldsel_parse(
    const char *s, const char *const *allowed, char *err, size_t errlen)
{
	if (s == NULL)
		s = "";
	size_t n = strlen(s);

	/* splitTerms: cut at ',' unless escaped. */
	size_t nparts = 1;
	for (size_t i = 0; i < n; i++)
		nparts += s[i] == ',';
	struct slice *parts = mcf_calloc(nparts, sizeof(*parts));
	size_t        np = 0, start = 0;
	int           in_slash = 0;
	for (size_t i = 0; i < n; i++) {
		if (in_slash)
			in_slash = 0;
		else if (s[i] == '\\')
			in_slash = 1;
		else if (s[i] == ',') {
			parts[np++] = (struct slice) { s + start, i - start };
			start       = i + 1;
		}
	}
	if (n > 0)
		parts[np++] = (struct slice) { s + start, n - start };
	qsort(parts, np, sizeof(*parts), slice_cmp);

	ks_fieldsel *sel = mcf_calloc(1, sizeof(*sel));
	sel->terms       = mcf_calloc(np ? np : 1, sizeof(*sel->terms));
	struct sbuf e    = { NULL, 0, 0 };
	int         fail = 0;

	for (size_t k = 0; k < np && !fail; k++) {
		const char *t  = parts[k].s;
		size_t      tl = parts[k].len;
		if (tl == 0)
			continue;
		/* splitTerm: first "!=", "==" or "=", in that order at each
		 * position. */
		size_t i, oplen = 0;
		int    neg = 0;
		for (i = 0; i < tl; i++) {
			if (i + 1 < tl && t[i] == '!' && t[i + 1] == '=') {
				oplen = 2, neg = 1;
				break;
			}
			if (i + 1 < tl && t[i] == '=' && t[i + 1] == '=') {
				oplen = 2;
				break;
			}
			if (t[i] == '=') {
				oplen = 1;
				break;
			}
		}
		if (oplen == 0) {
			sb_printf(&e,
			    "invalid selector: '%s'; can't understand '", s);
			sb_putn(&e, t, tl);
			sb_puts(&e, "'");
			fail = 1;
			break;
		}
		struct sbuf v = { NULL, 0, 0 };
		if (unescape_value(t + i + oplen, tl - i - oplen, &v, &e)
		    != 0) {
			sb_free(&v);
			fail = 1;
			break;
		}
		struct fieldterm *ft = &sel->terms[sel->nterms++];
		ft->field            = mcf_strndup(t, i);
		ft->value            = v.p;
		ft->vlen             = v.len;
		ft->neg              = neg;
	}
	/* The server converts field labels only once the whole selector
	 * parsed, term by term in sorted order. */
	for (size_t k = 0; k < sel->nterms && !fail; k++) {
		if (!field_allowed(allowed, sel->terms[k].field)) {
			sb_printf(&e, "field label not supported: %s",
			    sel->terms[k].field);
			fail = 1;
		}
	}
	free(parts);
	if (fail) {
		set_err(err, errlen, e.p);
		sb_free(&e);
		ks_fieldsel_free(sel);
		return NULL;
	}
	sb_free(&e);
	for (size_t k = 0; k < sel->nterms; k++) {
		if (!sel->terms[k].neg
		    && strcmp(sel->terms[k].field, "metadata.name") == 0) {
			sel->name = sel->terms[k].value;
			break;
		}
	}
	return sel;
}

/* Borrowed value at dotted `path` in `obj`, or NULL. */
static const json_t *
field_lookup(const json_t *obj, const char *path)
{
	const json_t *cur = obj;
	const char   *p   = path;
	for (;;) {
		const char *dot = strchr(p, '.');
		size_t      len = dot ? (size_t) (dot - p) : strlen(p);
		if (!json_is_object(cur))
			return NULL;
		cur = json_object_getn(cur, p, len);
		if (cur == NULL || dot == NULL)
			return cur;
		p = dot + 1;
	}
}

/* Whether the compact JSON text of `v` (a number, boolean, object or
 * array) is want[0..wlen).  Uses a stack buffer unless the text is long. */
static int
json_text_equals(const json_t *v, const char *want, size_t wlen)
{
	const size_t flags = JSON_ENCODE_ANY | JSON_COMPACT;
	char         buf[128];
	size_t       n = json_dumpb(v, buf, sizeof(buf), flags);
	if (n == 0 || n != wlen)
		return n == wlen && wlen == 0;
	if (n <= sizeof(buf))
		return memcmp(buf, want, n) == 0;
	char  *big = mcf_malloc(n);
	size_t m   = json_dumpb(v, big, n, flags);
	int    eq  = m == n && memcmp(big, want, n) == 0;
	free(big);
	return eq;
}

static int
term_match(const struct fieldterm *t, const json_t *obj)
{
	const json_t *v = field_lookup(obj, t->field);
	int           eq;
	if (v == NULL || json_is_null(v)) {
		eq = t->vlen == 0;
	} else if (json_is_string(v)) {
		eq = json_string_length(v) == t->vlen
		    && memcmp(json_string_value(v), t->value, t->vlen) == 0;
	} else {
		eq = json_text_equals(v, t->value, t->vlen);
	}
	return t->neg ? !eq : eq;
}

bool
ks_fieldsel_match(const ks_fieldsel *sel, const json_t *obj)
{
	for (size_t i = 0; i < sel->nterms; i++) {
		if (!term_match(&sel->terms[i], obj))
			return false;
	}
	return true;
}

bool
ks_fieldsel_empty(const ks_fieldsel *sel)
{
	return sel->nterms == 0;
}

const char *
ks_fieldsel_name(const ks_fieldsel *sel)
{
	return sel->name;
}

/*
 * config.c — YAML configuration files, and YAML documents as jansson trees.
 *
 * Both parsers read libyaml's event stream (yaml_parser_parse) rather than
 * its document API: events carry the line and column we need for every
 * error, and walking them with an explicit stack bounds both the memory and
 * the nesting we accept, so hostile input (a kubeconfig or manifest from
 * somewhere else) can never recurse us off the stack.
 *
 * Config files (mcf_config_parse) are deliberately flat: one mapping from
 * flag names to scalars, or to sequences of scalars that are joined with
 * ",".  Anything else — nested mappings, a second document, duplicate keys,
 * aliases, null values — is an error naming the file and the line, because
 * a config file that does something other than what its author meant is
 * worse than one that fails to load.  Values keep their text exactly as
 * written ("8080", "yes", "1.5s"); the flag that receives a value parses
 * it, so the type rules live in one place (flags.c).  An empty file, or one
 * holding only comments, is an empty config.
 *
 * mcf_yaml_parse_json follows the YAML 1.2 core schema for plain scalars
 * (see resolve_plain).  Decisions for the awkward parts of YAML:
 *   - Aliases are rejected, not resolved.  Expanding them is how the
 *     "billion laughs" document turns a kilobyte into gigabytes, and neither
 *     kubeconfig files nor Kubernetes manifests need them.  Anchors alone
 *     are harmless and ignored.
 *   - A stream with more than one document is an error at the second
 *     "---": silently dropping documents would lose objects of a manifest.
 *     An empty stream yields JSON null, like an empty document.
 *   - Nesting deeper than YAML_MAX_DEPTH (64) sequences and mappings is an
 *     error.  Real documents stay under 20 levels.
 *   - Duplicate mapping keys are an error, as the YAML spec says.
 *   - Mapping keys must be scalars and are always JSON strings.
 *
 * Reader errors (bad UTF-8, control characters) carry a byte offset instead
 * of a mark; we count lines up to it so those messages name a line too.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yaml.h>

#include "alloc.h"

/* Deepest nesting of sequences and mappings mcf_yaml_parse_json accepts. */
#define YAML_MAX_DEPTH 64

/* Largest config file mcf_config_load reads.  Real ones are a few hundred
 * bytes; the cap only keeps a wrong path (a log file, a device) from being
 * read whole into memory. */
#define CONFIG_MAX_BYTES (1024 * 1024)

typedef struct cfg_entry {
	char *key;   /* owned */
	char *value; /* owned */
	int   line;
} cfg_entry;

struct mcf_config {
	char      *name;    /* owned */
	cfg_entry *entries; /* owned array of `count` */
	size_t     count;
	size_t     cap;
};

/* A libyaml parser over a string plus what error messages need. */
typedef struct yrd {
	yaml_parser_t parser;
	const char   *text; /* borrowed input */
	size_t        len;
	const char   *name; /* borrowed, for messages */
	bool          cols; /* put the column in semantic errors too */
} yrd;

static void
yrd_init(yrd *r, const char *text, size_t len, const char *name, bool cols)
{
	/* libyaml asserts on a NULL input even when the length is 0. */
	r->text = text != NULL ? text : "";
	r->len  = text != NULL ? len : 0;
	r->name = name;
	r->cols = cols;
	if (!yaml_parser_initialize(&r->parser))
		mcf_panic("libyaml: out of memory");
	yaml_parser_set_input_string(
	    &r->parser, (const unsigned char *) r->text, r->len);
}

static void
yrd_fini(yrd *r)
{
	yaml_parser_delete(&r->parser);
}

/* Line and column (1-based) of byte `off` of the input. */
static void
yrd_offset_pos(const yrd *r, size_t off, size_t *line, size_t *col)
{
	size_t l = 1, c = 1;

	for (size_t i = 0; i < off && i < r->len; i++) {
		if (r->text[i] == '\n') {
			l++;
			c = 1;
		} else {
			c++;
		}
	}
	*line = l;
	*col  = c;
}

/* Translates the parser's error into MCF_EINVAL and a message
 * "name:line:column: problem (context at line N)". */
static int
yrd_syntax_error(const yrd *r, mcf_errinfo *ei)
{
	const yaml_parser_t *p = &r->parser;
	const char          *problem
	    = p->problem != NULL ? p->problem : "malformed YAML";
	size_t line, col;

	if (p->error == YAML_MEMORY_ERROR)
		mcf_panic("libyaml: out of memory");
	if (p->error == YAML_READER_ERROR) {
		yrd_offset_pos(r, p->problem_offset, &line, &col);
		if (p->problem_value >= 0)
			return mcf_errinfo_set(ei, MCF_EINVAL,
			    "%s:%zu:%zu: %s (byte 0x%02x)", r->name, line, col,
			    problem, (unsigned) p->problem_value & 0xffu);
		return mcf_errinfo_set(ei, MCF_EINVAL, "%s:%zu:%zu: %s",
		    r->name, line, col, problem);
	}
	line = p->problem_mark.line + 1;
	col  = p->problem_mark.column + 1;
	if (p->context != NULL)
		return mcf_errinfo_set(ei, MCF_EINVAL,
		    "%s:%zu:%zu: %s (%s at line %zu)", r->name, line, col,
		    problem, p->context, p->context_mark.line + 1);
	return mcf_errinfo_set(
	    ei, MCF_EINVAL, "%s:%zu:%zu: %s", r->name, line, col, problem);
}

/* Next event into `ev`; on failure nothing is left to delete. */
static int
yrd_next(yrd *r, yaml_event_t *ev, mcf_errinfo *ei)
{
	if (!yaml_parser_parse(&r->parser, ev))
		return yrd_syntax_error(r, ei);
	return MCF_OK;
}

/* A semantic error at `mark`: "name:line: problem", or with the column
 * when the reader wants it. */
static int yrd_fail(const yrd *r, const yaml_mark_t *mark, mcf_errinfo *ei,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int
yrd_fail(const yrd *r, const yaml_mark_t *mark, mcf_errinfo *ei,
    const char *fmt, ...)
{
	char    what[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (r->cols)
		return mcf_errinfo_set(ei, MCF_EINVAL, "%s:%zu:%zu: %s",
		    r->name, mark->line + 1, mark->column + 1, what);
	return mcf_errinfo_set(
	    ei, MCF_EINVAL, "%s:%zu: %s", r->name, mark->line + 1, what);
}

static bool
text_is(const char *s, size_t n, const char *lit)
{
	return strlen(lit) == n && memcmp(s, lit, n) == 0;
}

/* True for a plain, untagged scalar that YAML reads as null. */
static bool
scalar_is_null(const yaml_event_t *ev)
{
	const char *s = (const char *) ev->data.scalar.value;
	size_t      n = ev->data.scalar.length;

	if (!ev->data.scalar.plain_implicit
	    || ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	return n == 0 || text_is(s, n, "~") || text_is(s, n, "null")
	    || text_is(s, n, "Null") || text_is(s, n, "NULL");
}

/* Error for an event that is not what the grammar wants here; aliases get
 * their own message because "aliases are not supported" is the real
 * reason. */
static int
yrd_unexpected(
    const yrd *r, const yaml_event_t *ev, mcf_errinfo *ei, const char *what)
{
	if (ev->type == YAML_ALIAS_EVENT)
		return yrd_fail(r, &ev->start_mark, ei,
		    "aliases are not supported (*%.100s)",
		    (const char *) ev->data.alias.anchor);
	return yrd_fail(r, &ev->start_mark, ei, "%s", what);
}

/*
 * Config files.
 */

static void
cfg_add(mcf_config *cfg, char *key, char *value, int line)
{
	if (cfg->count == cfg->cap) {
		cfg->cap     = cfg->cap == 0 ? 8 : cfg->cap * 2;
		cfg->entries = mcf_realloc(
		    cfg->entries, cfg->cap * sizeof(cfg->entries[0]));
	}
	cfg->entries[cfg->count].key   = key;
	cfg->entries[cfg->count].value = value;
	cfg->entries[cfg->count].line  = line;
	cfg->count++;
}

/* Reads the value of `key` (a scalar or a sequence of scalars) into a new
 * string. */
static int
cfg_value(yrd *r, const char *key, char **out, mcf_errinfo *ei)
{
	yaml_event_t ev;
	int          rc;

	if ((rc = yrd_next(r, &ev, ei)) != MCF_OK)
		return rc;
	if (ev.type == YAML_SCALAR_EVENT) {
		const char *s = (const char *) ev.data.scalar.value;
		size_t      n = ev.data.scalar.length;
		if (scalar_is_null(&ev))
			rc = yrd_fail(r, &ev.start_mark, ei,
			    "key \"%s\" has no value (remove it to use the "
			    "default, or quote an empty string)",
			    key);
		else if (memchr(s, '\0', n) != NULL)
			rc = yrd_fail(r, &ev.start_mark, ei,
			    "value of \"%s\" contains a NUL byte", key);
		else
			*out = mcf_strndup(s, n);
		yaml_event_delete(&ev);
		return rc;
	}
	if (ev.type != YAML_SEQUENCE_START_EVENT) {
		if (ev.type == YAML_ALIAS_EVENT)
			rc = yrd_unexpected(r, &ev, ei, "");
		else
			rc = yrd_fail(r, &ev.start_mark, ei,
			    "value of \"%s\" must be a scalar or a list of "
			    "scalars",
			    key);
		yaml_event_delete(&ev);
		return rc;
	}
	yaml_event_delete(&ev);

	/* A sequence: join the items with ",". */
	char  *buf = mcf_strdup("");
	size_t len = 0;
	for (bool first = true;; first = false) {
		if ((rc = yrd_next(r, &ev, ei)) != MCF_OK)
			break;
		if (ev.type == YAML_SEQUENCE_END_EVENT) {
			yaml_event_delete(&ev);
			*out = buf;
			return MCF_OK;
		}
		if (ev.type != YAML_SCALAR_EVENT || scalar_is_null(&ev)
		    || memchr(
		           ev.data.scalar.value, '\0', ev.data.scalar.length)
		        != NULL) {
			if (ev.type == YAML_ALIAS_EVENT)
				rc = yrd_unexpected(r, &ev, ei, "");
			else
				rc = yrd_fail(r, &ev.start_mark, ei,
				    "items of \"%s\" must be non-null "
				    "scalars",
				    key);
			yaml_event_delete(&ev);
			break;
		}
		size_t n = ev.data.scalar.length;
		buf      = mcf_realloc(buf, len + n + 2);
		if (!first)
			buf[len++] = ',';
		memcpy(buf + len, ev.data.scalar.value, n);
		len += n;
		buf[len] = '\0';
		yaml_event_delete(&ev);
	}
	free(buf);
	return rc;
}

/* Reads the entries of the top-level mapping up to its end. */
static int
cfg_mapping(yrd *r, mcf_config *cfg, mcf_errinfo *ei)
{
	for (;;) {
		yaml_event_t ev;
		int          rc;

		if ((rc = yrd_next(r, &ev, ei)) != MCF_OK)
			return rc;
		if (ev.type == YAML_MAPPING_END_EVENT) {
			yaml_event_delete(&ev);
			return MCF_OK;
		}
		if (ev.type != YAML_SCALAR_EVENT
		    || memchr(
		           ev.data.scalar.value, '\0', ev.data.scalar.length)
		        != NULL) {
			rc = yrd_unexpected(r, &ev, ei,
			    "keys must be flag names (plain scalars)");
			yaml_event_delete(&ev);
			return rc;
		}
		char *key  = mcf_strndup((const char *) ev.data.scalar.value,
		     ev.data.scalar.length);
		int   line = (int) ev.start_mark.line + 1;
		for (size_t i = 0; i < cfg->count; i++) {
			if (strcmp(cfg->entries[i].key, key) == 0) {
				rc = yrd_fail(r, &ev.start_mark, ei,
				    "duplicate key \"%s\" (first at line %d)",
				    key, cfg->entries[i].line);
				yaml_event_delete(&ev);
				free(key);
				return rc;
			}
		}
		yaml_event_delete(&ev);

		char *value = NULL;
		if ((rc = cfg_value(r, key, &value, ei)) != MCF_OK) {
			free(key);
			return rc;
		}
		cfg_add(cfg, key, value, line);
	}
}

/* Reads the whole stream: zero or one document holding a mapping (or
 * nothing). */
static int
cfg_stream(yrd *r, mcf_config *cfg, mcf_errinfo *ei)
{
	yaml_event_t ev;
	int          rc;

	/* STREAM-START, then DOCUMENT-START or STREAM-END. */
	if ((rc = yrd_next(r, &ev, ei)) != MCF_OK)
		return rc;
	yaml_event_delete(&ev);
	if ((rc = yrd_next(r, &ev, ei)) != MCF_OK)
		return rc;
	if (ev.type == YAML_STREAM_END_EVENT) {
		yaml_event_delete(&ev);
		return MCF_OK;
	}
	yaml_event_delete(&ev);

	/* The document's root node. */
	if ((rc = yrd_next(r, &ev, ei)) != MCF_OK)
		return rc;
	if (ev.type == YAML_MAPPING_START_EVENT) {
		yaml_event_delete(&ev);
		if ((rc = cfg_mapping(r, cfg, ei)) != MCF_OK)
			return rc;
	} else if (ev.type == YAML_SCALAR_EVENT && scalar_is_null(&ev)) {
		/* "---" alone, or "~": an empty config. */
		yaml_event_delete(&ev);
	} else {
		rc = yrd_unexpected(r, &ev, ei,
		    "the top level must be a mapping of flag names to values");
		yaml_event_delete(&ev);
		return rc;
	}

	/* DOCUMENT-END, then STREAM-END: a second document is an error. */
	if ((rc = yrd_next(r, &ev, ei)) != MCF_OK)
		return rc;
	yaml_event_delete(&ev);
	if ((rc = yrd_next(r, &ev, ei)) != MCF_OK)
		return rc;
	if (ev.type != YAML_STREAM_END_EVENT)
		rc = yrd_fail(r, &ev.start_mark, ei,
		    "only one YAML document is allowed in a config file");
	yaml_event_delete(&ev);
	return rc;
}

int
mcf_config_parse(const char *text, size_t len, const char *name,
    mcf_config **out, mcf_errinfo *ei)
{
	mcf_config *cfg = mcf_calloc(1, sizeof(*cfg));
	yrd         r;
	int         rc;

	cfg->name = mcf_strdup(name != NULL ? name : "<config>");
	yrd_init(&r, text, len, cfg->name, false);
	rc = cfg_stream(&r, cfg, ei);
	yrd_fini(&r);
	if (rc != MCF_OK) {
		mcf_config_destroy(cfg);
		return rc;
	}
	*out = cfg;
	return MCF_OK;
}

/* Reads all of `path` (at most CONFIG_MAX_BYTES) into a new buffer. */
static int
read_file(const char *path, char **out, size_t *outlen, mcf_errinfo *ei)
{
	char        ebuf[128];
	struct stat st;
	int         fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		int e = errno;
		return mcf_errinfo_set(ei, mcf_err_from_errno(e), "%s: %s",
		    path, strerror_r(e, ebuf, sizeof(ebuf)));
	}
	if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
		close(fd);
		return mcf_errinfo_set(
		    ei, MCF_EINVAL, "%s: is a directory", path);
	}

	size_t cap = 4096, len = 0;
	char  *buf = mcf_malloc(cap);
	for (;;) {
		if (len == cap) {
			if (cap > CONFIG_MAX_BYTES) {
				free(buf);
				close(fd);
				return mcf_errinfo_set(ei, MCF_ETOOBIG,
				    "%s: larger than %d bytes", path,
				    CONFIG_MAX_BYTES);
			}
			cap *= 2;
			buf = mcf_realloc(buf, cap);
		}
		ssize_t n = read(fd, buf + len, cap - len);
		if (n < 0) {
			int e = errno;
			if (e == EINTR)
				continue;
			free(buf);
			close(fd);
			return mcf_errinfo_set(ei, mcf_err_from_errno(e),
			    "%s: %s", path, strerror_r(e, ebuf, sizeof(ebuf)));
		}
		if (n == 0)
			break;
		len += (size_t) n;
	}
	close(fd);
	if (len > CONFIG_MAX_BYTES) {
		free(buf);
		return mcf_errinfo_set(ei, MCF_ETOOBIG,
		    "%s: larger than %d bytes", path, CONFIG_MAX_BYTES);
	}
	*out    = buf;
	*outlen = len;
	return MCF_OK;
}

int
mcf_config_load(const char *path, mcf_config **out, mcf_errinfo *ei)
{
	char  *text;
	size_t len;
	int    rc;

	if ((rc = read_file(path, &text, &len, ei)) != MCF_OK)
		return rc;
	rc = mcf_config_parse(text, len, path, out, ei);
	free(text);
	return rc;
}

void
mcf_config_destroy(mcf_config *cfg)
{
	if (cfg == NULL)
		return;
	for (size_t i = 0; i < cfg->count; i++) {
		free(cfg->entries[i].key);
		free(cfg->entries[i].value);
	}
	free(cfg->entries);
	free(cfg->name);
	free(cfg);
}

size_t
mcf_config_count(const mcf_config *cfg)
{
	return cfg != NULL ? cfg->count : 0;
}

const char *
mcf_config_key(const mcf_config *cfg, size_t i)
{
	return cfg != NULL && i < cfg->count ? cfg->entries[i].key : NULL;
}

const char *
mcf_config_value(const mcf_config *cfg, size_t i)
{
	return cfg != NULL && i < cfg->count ? cfg->entries[i].value : NULL;
}

int
mcf_config_line(const mcf_config *cfg, size_t i)
{
	return cfg != NULL && i < cfg->count ? cfg->entries[i].line : 0;
}

const char *
mcf_config_name(const mcf_config *cfg)
{
	return cfg != NULL ? cfg->name : NULL;
}

const char *
mcf_config_get(const mcf_config *cfg, const char *key)
{
	if (cfg == NULL || key == NULL)
		return NULL;
	for (size_t i = 0; i < cfg->count; i++) {
		if (strcmp(cfg->entries[i].key, key) == 0)
			return cfg->entries[i].value;
	}
	return NULL;
}

/*
 * YAML to JSON.
 */

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool
all_of(const char *s, size_t n, const char *set)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\0' || strchr(set, s[i]) == NULL)
			return false;
	}
	return true;
}

/* True when s[0..n) matches the core schema's float:
 * [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)? */
static bool
is_float(const char *s, size_t n)
{
	size_t i = 0, d;

	if (i < n && (s[i] == '-' || s[i] == '+'))
		i++;
	if (i < n && s[i] == '.') {
		i++;
		for (d = 0; i < n && is_digit(s[i]); i++)
			d++;
		if (d == 0)
			return false;
	} else {
		for (d = 0; i < n && is_digit(s[i]); i++)
			d++;
		if (d == 0)
			return false;
		if (i < n && s[i] == '.')
			for (i++; i < n && is_digit(s[i]); i++)
				;
	}
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		if (i < n && (s[i] == '-' || s[i] == '+'))
			i++;
		for (d = 0; i < n && is_digit(s[i]); i++)
			d++;
		if (d == 0)
			return false;
	}
	return i == n;
}

/* Integer value of s[0..n) in `base`, if it fits in json_int_t. */
static json_t *
int_json(const char *s, size_t n, int base)
{
	char *copy = mcf_strndup(s, n);
	char *end;

	errno        = 0;
	long long v  = strtoll(copy, &end, base);
	bool      ok = errno == 0 && *end == '\0';
	free(copy);
	return ok ? json_integer((json_int_t) v) : NULL;
}

/* The YAML 1.2 core schema for a plain scalar: null, booleans, integers
 * (decimal, 0o octal, 0x hex) and floats.  Returns NULL when the text is
 * none of these, or is a number JSON cannot hold exactly (an integer
 * beyond 64 bits, .inf, .nan): such scalars stay strings rather than
 * silently change value.  Kubernetes' own YAML reader is YAML 1.1, which
 * also reads yes/no/on/off as booleans and 0644 as octal; we follow 1.2,
 * where those are the string "yes" and the integer 644. */
static json_t *
resolve_plain(const char *s, size_t n)
{
	if (n == 0 || text_is(s, n, "~") || text_is(s, n, "null")
	    || text_is(s, n, "Null") || text_is(s, n, "NULL"))
		return json_null();
	if (text_is(s, n, "true") || text_is(s, n, "True")
	    || text_is(s, n, "TRUE"))
		return json_true();
	if (text_is(s, n, "false") || text_is(s, n, "False")
	    || text_is(s, n, "FALSE"))
		return json_false();
	if (n > 2 && s[0] == '0' && s[1] == 'o'
	    && all_of(s + 2, n - 2, "01234567"))
		return int_json(s + 2, n - 2, 8);
	if (n > 2 && s[0] == '0' && s[1] == 'x'
	    && all_of(s + 2, n - 2, "0123456789abcdefABCDEF"))
		return int_json(s + 2, n - 2, 16);
	size_t sign = (s[0] == '-' || s[0] == '+') ? 1 : 0;
	if (all_of(s + sign, n - sign, "0123456789"))
		return int_json(s, n, 10);
	if (is_float(s, n)) {
		char  *copy = mcf_strndup(s, n);
		double d    = strtod(copy, NULL);
		free(copy);
		return isfinite(d) ? json_real(d) : NULL;
	}
	return NULL;
}

/* The JSON value of a scalar event, or NULL when jansson refuses it. */
static json_t *
scalar_json(const yaml_event_t *ev)
{
	const char *s   = (const char *) ev->data.scalar.value;
	size_t      n   = ev->data.scalar.length;
	const char *tag = (const char *) ev->data.scalar.tag;
	bool        resolve;

	/* Quoted and block scalars are strings; so is anything tagged !!str
	 * or with the non-specific tag "!".  Other explicit tags (!!int,
	 * !!bool, ...) get the plain-scalar rules, and a scalar that does not
	 * match them stays a string. */
	if (tag != NULL)
		resolve
		    = strcmp(tag, YAML_STR_TAG) != 0 && strcmp(tag, "!") != 0;
	else
		resolve = ev->data.scalar.plain_implicit
		    && ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
	if (resolve) {
		json_t *v = resolve_plain(s, n);
		if (v != NULL)
			return v;
	}
	return json_stringn(s, n);
}

/* One open sequence or mapping. */
typedef struct yframe {
	json_t     *node; /* borrowed: owned by its parent or the root */
	char       *key;  /* owned: a mapping's pending key, or NULL */
	size_t      key_len;
	yaml_mark_t key_mark;
} yframe;

/* The event-walking state of mcf_yaml_parse_json. */
typedef struct ystate {
	yrd     r;
	yframe  st[YAML_MAX_DEPTH];
	size_t  depth;
	json_t *root; /* owned */
} ystate;

/* Puts `v` (stolen) where the open container expects the next value. */
static int
ys_attach(ystate *s, json_t *v, const yaml_mark_t *mark, mcf_errinfo *ei)
{
	if (s->depth == 0) {
		s->root = v;
		return MCF_OK;
	}
	yframe *top = &s->st[s->depth - 1];
	if (json_is_array(top->node)) {
		if (json_array_append_new(top->node, v) != 0)
			mcf_panic("jansson: out of memory");
		return MCF_OK;
	}
	int rc = json_object_setn_new(top->node, top->key, top->key_len, v);
	free(top->key);
	top->key = NULL;
	if (rc != 0)
		return yrd_fail(&s->r, mark, ei, "invalid mapping key");
	return MCF_OK;
}

/* Handles one event; sets `*done` at the end of the stream. */
static int
ys_event(
    ystate *s, const yaml_event_t *ev, int *docs, bool *done, mcf_errinfo *ei)
{
	yframe *top = s->depth > 0 ? &s->st[s->depth - 1] : NULL;
	bool    want_key
	    = top != NULL && json_is_object(top->node) && top->key == NULL;
	json_t *v;

	switch (ev->type) {
	case YAML_STREAM_START_EVENT:
	case YAML_DOCUMENT_END_EVENT:
		return MCF_OK;
	case YAML_STREAM_END_EVENT:
		*done = true;
		return MCF_OK;
	case YAML_DOCUMENT_START_EVENT:
		if (++*docs > 1)
			return yrd_fail(&s->r, &ev->start_mark, ei,
			    "more than one YAML document (only one is "
			    "accepted)");
		return MCF_OK;
	case YAML_ALIAS_EVENT:
		return yrd_unexpected(&s->r, ev, ei, "");
	case YAML_SCALAR_EVENT:
		if (want_key) {
			const char *k = (const char *) ev->data.scalar.value;
			size_t      n = ev->data.scalar.length;
			if (json_object_getn(top->node, k, n) != NULL)
				return yrd_fail(&s->r, &ev->start_mark, ei,
				    "duplicate key \"%.*s\"",
				    (int) (n > 100 ? 100 : n), k);
			top->key = mcf_malloc(n + 1);
			memcpy(top->key, k, n);
			top->key[n]   = '\0';
			top->key_len  = n;
			top->key_mark = ev->start_mark;
			return MCF_OK;
		}
		v = scalar_json(ev);
		if (v == NULL)
			return yrd_fail(&s->r, &ev->start_mark, ei,
			    "scalar is not valid UTF-8");
		return ys_attach(s, v, &ev->start_mark, ei);
	case YAML_SEQUENCE_START_EVENT:
	case YAML_MAPPING_START_EVENT:
		if (want_key)
			return yrd_fail(&s->r, &ev->start_mark, ei,
			    "mapping keys must be scalars");
		if (s->depth == YAML_MAX_DEPTH)
			return yrd_fail(&s->r, &ev->start_mark, ei,
			    "nesting deeper than %d levels", YAML_MAX_DEPTH);
		v = ev->type == YAML_SEQUENCE_START_EVENT ? json_array()
		                                          : json_object();
		if (v == NULL)
			mcf_panic("jansson: out of memory");
		int rc = ys_attach(s, v, &ev->start_mark, ei);
		if (rc != MCF_OK)
			return rc;
		/* `v` is owned by its parent now; the frame borrows it. */
		s->st[s->depth].node    = v;
		s->st[s->depth].key     = NULL;
		s->st[s->depth].key_len = 0;
		s->depth++;
		return MCF_OK;
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT:
		/* libyaml only emits balanced ends, and a mapping always
		 * ends after a value, so the frame holds no key. */
		s->depth--;
		return MCF_OK;
	case YAML_NO_EVENT:
		break;
	}
	return yrd_fail(&s->r, &ev->start_mark, ei, "unexpected YAML event");
}

int
mcf_yaml_parse_json(const char *text, size_t len, const char *name,
    json_t **out, mcf_errinfo *ei)
{
	/* The frame stack is a few kilobytes: on the heap, so deep callers
	 * on small thread stacks do not pay for it. */
	ystate *s    = mcf_calloc(1, sizeof(*s));
	int     docs = 0, rc = MCF_OK;
	bool    done = false;

	yrd_init(&s->r, text, len, name != NULL ? name : "<yaml>", true);
	while (!done) {
		yaml_event_t ev;
		if ((rc = yrd_next(&s->r, &ev, ei)) != MCF_OK)
			break;
		rc = ys_event(s, &ev, &docs, &done, ei);
		yaml_event_delete(&ev);
		if (rc != MCF_OK)
			break;
	}
	yrd_fini(&s->r);
	for (size_t i = 0; i < s->depth; i++)
		free(s->st[i].key);
	if (rc == MCF_OK) {
		/* An empty stream reads as null, like an empty document. */
		*out = s->root != NULL ? s->root : json_null();
	} else {
		json_decref(s->root);
	}
	free(s);
	return rc;
}

/*
 * json.c — small helpers over jansson: strict parsing, compact dumping and
 * dotted paths.
 *
 * Paths.  A path is split on '.' into object keys; empty segments ("a..b",
 * ".a", "a.") never match and make mcf_json_path_set() fail, because a
 * Kubernetes field name is never empty and such a path is always a typo.
 * Segments are looked up with jansson's length-taking calls, so the path is
 * never copied.
 *
 * Memory.  jansson allocates through its own hooks, which main() points at
 * the aborting wrappers (mcf_alloc_init_libs()); a NULL from a jansson
 * constructor is out of memory and, as alloc.h decides, fatal.
 * mcf_json_dump() builds its string in memory from mcf_malloc() through
 * jansson's callback interface, so the caller frees it with free() whatever
 * allocator jansson was given.
 */
#include "json.h"

#include <stdlib.h>
#include <string.h>

#include "alloc.h"

/* Length of the segment starting at `p` (up to '.' or the end). */
static size_t
seg_len(const char *p)
{
	const char *dot = strchr(p, '.');
	return dot != NULL ? (size_t) (dot - p) : strlen(p);
}

/* True when `path` is non-empty and has no empty segment. */
static bool
path_valid(const char *path)
{
	if (path == NULL || path[0] == '\0')
		return false;
	for (const char *p = path;;) {
		size_t n = seg_len(p);
		if (n == 0)
			return false;
		if (p[n] == '\0')
			return true;
		p += n + 1;
	}
}

int
mcf_json_parse(const char *buf, size_t len, json_t **out, mcf_errinfo *ei)
{
	json_error_t jerr;
	json_t      *v;

	/* JSON_DECODE_ANY: a bare scalar is one JSON value too.  Without
	 * JSON_DISABLE_EOF_CHECK jansson rejects anything but whitespace
	 * after the value, which is the contract in json.h. */
	v = json_loadb(buf != NULL ? buf : "", buf != NULL ? len : 0,
	    JSON_DECODE_ANY, &jerr);
	if (v == NULL)
		return mcf_errinfo_set(ei, MCF_EINVAL,
		    "line %d, column %d: %s", jerr.line, jerr.column,
		    jerr.text);
	*out = v;
	return MCF_OK;
}

typedef struct dump_buf {
	char  *p; /* owned, mcf_malloc */
	size_t len;
	size_t cap;
} dump_buf;

static int
dump_cb(const char *s, size_t n, void *data)
{
	dump_buf *d = data;

	/* Keep one byte for the terminating NUL. */
	if (d->cap - d->len <= n) {
		while (d->cap - d->len <= n)
			d->cap *= 2;
		d->p = mcf_realloc(d->p, d->cap);
	}
	memcpy(d->p + d->len, s, n);
	d->len += n;
	return 0;
}

char *
mcf_json_dump(const json_t *v)
{
	dump_buf d = { mcf_malloc(256), 0, 256 };

	/* The only ways to fail are NULL, a reference cycle (both bugs in
	 * the caller) and out of memory (fatal), hence the panic. */
	if (v == NULL
	    || json_dump_callback(v, dump_cb, &d,
	           JSON_COMPACT | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER)
	        != 0) {
		free(d.p);
		mcf_panic("mcf_json_dump: cannot serialise value");
	}
	d.p[d.len] = '\0';
	return d.p;
}

json_t *
mcf_json_path(const json_t *root, const char *path)
{
	const json_t *cur = root;

	if (root == NULL || !path_valid(path))
		return NULL;
	for (const char *p = path;;) {
		size_t n = seg_len(p);
		if (!json_is_object(cur))
			return NULL;
		cur = json_object_getn(cur, p, n);
		if (cur == NULL)
			return NULL;
		if (p[n] == '\0')
			return (json_t *) cur;
		p += n + 1;
	}
}

const char *
mcf_json_path_str(const json_t *root, const char *path)
{
	json_t *v = mcf_json_path(root, path);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

int
mcf_json_path_int(const json_t *root, const char *path, int64_t *out)
{
	json_t *v = mcf_json_path(root, path);

	if (v == NULL)
		return MCF_ENOENT;
	if (!json_is_integer(v))
		return MCF_EINVAL;
	*out = (int64_t) json_integer_value(v);
	return MCF_OK;
}

int
mcf_json_path_set(json_t *root, const char *path, json_t *value)
{
	json_t *cur = root;

	/* Check everything that can fail before creating anything, so a
	 * failed call leaves `root` as it was (short of a path that is not
	 * UTF-8, which jansson alone detects). */
	if (value == NULL || !json_is_object(root) || !path_valid(path)) {
		json_decref(value);
		return MCF_EINVAL;
	}
	for (const char *p = path;;) {
		size_t n = seg_len(p);
		if (p[n] == '\0') {
			/* setn_new steals `value` also when it fails. */
			if (json_object_setn_new(cur, p, n, value) != 0)
				return MCF_EINVAL;
			return MCF_OK;
		}
		json_t *next = json_object_getn(cur, p, n);
		if (next == NULL) {
			/* Once we create an object, every later segment
			 * lands in a fresh one, so no later check can fail
			 * and leave a half-built path behind. */
			next = json_object();
			if (next == NULL)
				mcf_panic("jansson: out of memory");
			if (json_object_setn_new(cur, p, n, next) != 0) {
				json_decref(value);
				return MCF_EINVAL;
			}
		} else if (!json_is_object(next)) {
			json_decref(value);
			return MCF_EINVAL;
		}
		cur = next;
		p += n + 1;
	}
}

void
mcf_json_path_del(json_t *root, const char *path)
{
	json_t *cur = root;

	if (!json_is_object(root) || !path_valid(path))
		return;
	for (const char *p = path;;) {
		size_t n = seg_len(p);
		if (p[n] == '\0') {
			json_object_deln(cur, p, n);
			return;
		}
		cur = json_object_getn(cur, p, n);
		if (!json_is_object(cur))
			return;
		p += n + 1;
	}
}

json_t *
mcf_json_object_ensure(json_t *obj, const char *key)
{
	if (!json_is_object(obj) || key == NULL)
		return NULL;
	json_t *v = json_object_get(obj, key);
	if (v != NULL)
		return json_is_object(v) ? v : NULL;
	v = json_object();
	if (v == NULL)
		mcf_panic("jansson: out of memory");
	/* Fails only for a key that is not valid UTF-8; `v` is freed. */
	if (json_object_set_new(obj, key, v) != 0)
		return NULL;
	return v;
}

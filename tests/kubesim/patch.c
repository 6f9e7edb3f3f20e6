/*
 * patch.c — the three PATCH dialects kubesim accepts (KUBE_API.md §4.5).
 *
 * Every entry point deep-copies the target first and works on the copy, so
 * the caller's values are never touched and a failure part-way through
 * simply throws the copy away (this is what makes JSON patch atomic).
 * Values taken from a patch are deep-copied too: the result shares no
 * storage with either input.
 *
 * Merge patch (RFC 7386) is the textbook recursive algorithm.
 *
 * JSON patch (RFC 6902).  The whole document is checked before anything is
 * applied: it must be an array of objects, each naming a known "op" and
 * carrying the members that op needs ("path"; "value" for add, replace and
 * test; "from" for move and copy), and every pointer must be well formed
 * (empty or starting with '/', '~' only in "~0" and "~1").  Any of these is
 * KS_PATCH_BAD_REQUEST.  Operations then apply in order; anything that
 * depends on the target (a missing path, an index out of range, "-" where
 * only add allows it, a failed test, moving a value into its own child) is
 * KS_PATCH_INVALID.  Array indices follow RFC 6901: "0" or digits without a
 * leading zero.  "test" compares with deep equality where numbers are equal
 * when numerically equal (1 equals 1.0, as RFC 6902 §4.6 says; jansson's
 * json_equal would call them different).
 *
 * Strategic merge patch, the subset for ConfigMap, Secret, Namespace and
 * Lease (apimachinery pkg/util/strategicpatch, applied as the API server
 * does with IgnoreUnmatchedNulls and MergeParallelList):
 *   - maps merge recursively and null deletes, as in a merge patch;
 *   - lists replace, except metadata.finalizers (a set of scalars: the
 *     result is the union) and metadata.ownerReferences (merged element by
 *     element on "uid"; an element {"uid":U,"$patch":"delete"} removes U,
 *     an element {"$patch":"replace"} makes the other elements the whole
 *     list).  The order of a merged list is the API server's: items named
 *     by the patch in patch order, interleaved with the remaining server
 *     items by their server order, a new item going before a server item
 *     (so adding "c" to finalizers ["a","b"] gives ["c","a","b"]);
 *   - "$deleteFromPrimitiveList/<field>": [..] removes those scalars from
 *     the list <field>, before the rest of the map is merged;
 *   - "$setElementOrder/<field>" and "$retainKeys" are checked to be lists
 *     and otherwise ignored;
 *   - "$patch" in a map: "replace" makes the map exactly the rest of the
 *     patch map, "delete" removes the map (the top level becomes {}),
 *     "merge" is the default.  The API server answers "merge" in a map
 *     with an error; kubesim accepts it, as its header promises.
 * Differences from the API server that only show on odd input: a map or a
 * merged list that the target lacks is still run through these rules (the
 * server copies the patch value raw, nulls and directives included), and
 * "$patch: delete" removes a nested map where the server leaves {}, which
 * it then drops from the map-typed fields of these kinds anyway.  Malformed
 * directives are KS_PATCH_BAD_REQUEST.
 *
 * Out of memory inside jansson is fatal, as everywhere (alloc.h).
 */
#include "patch.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"

/* ---- helpers ----------------------------------------------------------- */

static int seterr(char *err, size_t errlen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Formats the error message (if the caller wants one) and returns rc. */
static int
seterr(char *err, size_t errlen, int rc, const char *fmt, ...)
{
	if (err != NULL && errlen > 0) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return rc;
}

static json_t *
jcheck(json_t *v)
{
	if (v == NULL)
		mcf_panic("jansson: out of memory");
	return v;
}

static json_t *
jcopy(const json_t *v)
{
	return jcheck(json_deep_copy(v));
}

/* Sets obj[key] = v (steals v). */
static void
jset(json_t *obj, const char *key, size_t keylen, json_t *v)
{
	if (json_object_setn_new(obj, key, keylen, v) != 0)
		mcf_panic("jansson: object set failed");
}

static void
jappend(json_t *arr, json_t *v)
{
	if (json_array_append_new(arr, v) != 0)
		mcf_panic("jansson: array append failed");
}

/* Compact JSON text of v, cut to about 200 bytes, for error messages.
 * New string. */
static char *
jtext(const json_t *v)
{
	const size_t flags = JSON_ENCODE_ANY | JSON_COMPACT;
	size_t       n     = json_dumpb(v, NULL, 0, flags);
	char        *buf   = mcf_malloc(n + 1);
	if (n > 0 && json_dumpb(v, buf, n, flags) != n)
		n = 0;
	buf[n] = '\0';
	if (n > 200)
		memcpy(buf + 197, "...", 4);
	return buf;
}

/* The JSON type as Go's encoding/json names it in unmarshal errors. */
static const char *
go_type(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "object";
	case JSON_ARRAY:
		return "array";
	case JSON_STRING:
		return "string";
	case JSON_INTEGER:
	case JSON_REAL:
		return "number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "bool";
	default:
		return "null";
	}
}

/* Deep equality; numbers compare by value whatever their jansson type. */
static bool
jequal(const json_t *a, const json_t *b)
{
	if (json_is_number(a) && json_is_number(b)) {
		if (json_is_integer(a) && json_is_integer(b))
			return json_integer_value(a) == json_integer_value(b);
		if (json_is_real(a) && json_is_real(b))
			return json_real_value(a) == json_real_value(b);
		const json_t *i = json_is_integer(a) ? a : b;
		double        r = json_real_value(json_is_real(a) ? a : b);
		/* 2^63 is exact as a double; beyond it no int64 can match. */
		if (!(r >= -9223372036854775808.0
		        && r < 9223372036854775808.0))
			return false;
		int64_t ri = (int64_t) r;
		return (double) ri == r && ri == json_integer_value(i);
	}
	if (json_typeof(a) != json_typeof(b))
		return false;
	switch (json_typeof(a)) {
	case JSON_OBJECT: {
		if (json_object_size(a) != json_object_size(b))
			return false;
		const char *k;
		size_t      kl;
		json_t     *va;
		json_object_keylen_foreach((json_t *) a, k, kl, va)
		{
			const json_t *vb = json_object_getn(b, k, kl);
			if (vb == NULL || !jequal(va, vb))
				return false;
		}
		return true;
	}
	case JSON_ARRAY: {
		size_t n = json_array_size(a);
		if (n != json_array_size(b))
			return false;
		for (size_t i = 0; i < n; i++) {
			if (!jequal(
			        json_array_get(a, i), json_array_get(b, i)))
				return false;
		}
		return true;
	}
	case JSON_STRING:
		return json_string_length(a) == json_string_length(b)
		    && memcmp(json_string_value(a), json_string_value(b),
		           json_string_length(a))
		    == 0;
	default:
		return true; /* true, false, null */
	}
}

/* ---- RFC 7386 merge patch ---------------------------------------------- */

/* Merges `patch` into `target` (steals it; NULL for none) and returns the
 * result (new). */
static json_t *
merge7386(json_t *target, const json_t *patch)
{
	if (!json_is_object(patch)) {
		json_decref(target);
		return jcopy(patch);
	}
	if (!json_is_object(target)) {
		json_decref(target);
		target = jcheck(json_object());
	}
	const char *k;
	size_t      kl;
	json_t     *v;
	json_object_keylen_foreach((json_t *) patch, k, kl, v)
	{
		if (json_is_null(v)) {
			json_object_deln(target, k, kl);
			continue;
		}
		json_t *cur = json_object_getn(target, k, kl);
		jset(target, k, kl, merge7386(json_incref(cur), v));
	}
	return target;
}

int
ks_patch_merge(const json_t *target, const json_t *patch, json_t **out,
    char *err, size_t errlen)
{
	if (patch == NULL)
		return seterr(err, errlen, KS_PATCH_BAD_REQUEST,
		    "merge patch: no patch document");
	json_t *t = NULL;
	if (target != NULL && json_is_object(patch))
		t = jcopy(target);
	*out = merge7386(t, patch);
	return KS_PATCH_OK;
}

/* ---- RFC 6901 pointers ------------------------------------------------- */

struct ptok {
	char  *s; /* owned, unescaped */
	size_t len;
};

struct ptr {
	struct ptok *tok; /* owned */
	size_t       n;
	const char  *text; /* borrowed: the pointer as written */
};

static void
ptr_fini(struct ptr *p)
{
	for (size_t i = 0; i < p->n; i++)
		free(p->tok[i].s);
	free(p->tok);
	p->tok = NULL;
	p->n   = 0;
}

/* Parses the string `v`.  Returns 0 or -1 for a malformed pointer. */
static int
ptr_parse(const json_t *v, struct ptr *p)
{
	const char *s = json_string_value(v);
	size_t      n = json_string_length(v);
	p->tok        = NULL;
	p->n          = 0;
	p->text       = s;
	if (n == 0)
		return 0;
	if (s[0] != '/')
		return -1;
	size_t count = 0;
	for (size_t i = 0; i < n; i++)
		count += s[i] == '/';
	p->tok = mcf_calloc(count, sizeof(*p->tok));
	for (size_t i = 1; i <= n;) {
		size_t end = i;
		while (end < n && s[end] != '/')
			end++;
		char  *t  = mcf_malloc(end - i + 1);
		size_t tl = 0;
		for (size_t j = i; j < end; j++) {
			if (s[j] != '~') {
				t[tl++] = s[j];
				continue;
			}
			if (j + 1 < end
			    && (s[j + 1] == '0' || s[j + 1] == '1')) {
				t[tl++] = s[j + 1] == '0' ? '~' : '/';
				j++;
				continue;
			}
			free(t);
			ptr_fini(p);
			return -1;
		}
		t[tl]            = '\0';
		p->tok[p->n].s   = t;
		p->tok[p->n].len = tl;
		p->n++;
		i = end + 1;
	}
	return 0;
}

/* RFC 6901 array index: "0" or [1-9][0-9]*, kept well below SIZE_MAX. */
static bool
arr_index(const struct ptok *t, size_t *out)
{
	if (t->len == 0 || t->len > 15 || (t->len > 1 && t->s[0] == '0'))
		return false;
	size_t v = 0;
	for (size_t i = 0; i < t->len; i++) {
		if (t->s[i] < '0' || t->s[i] > '9')
			return false;
		v = v * 10 + (size_t) (t->s[i] - '0');
	}
	*out = v;
	return true;
}

static bool
is_dash(const struct ptok *t)
{
	return t->len == 1 && t->s[0] == '-';
}

/* Borrowed child of `node` named by `t`, or NULL. */
static json_t *
ptr_child(json_t *node, const struct ptok *t)
{
	size_t idx;
	if (json_is_object(node))
		return json_object_getn(node, t->s, t->len);
	if (json_is_array(node) && arr_index(t, &idx))
		return json_array_get(node, idx);
	return NULL;
}

/* Borrowed value at the first `depth` tokens of `p`, or NULL. */
static json_t *
ptr_walk(json_t *root, const struct ptr *p, size_t depth)
{
	json_t *cur = root;
	for (size_t i = 0; i < depth && cur != NULL; i++)
		cur = ptr_child(cur, &p->tok[i]);
	return cur;
}

static bool
ptr_equal_prefix(const struct ptr *a, const struct ptr *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (a->tok[i].len != b->tok[i].len
		    || memcmp(a->tok[i].s, b->tok[i].s, a->tok[i].len) != 0)
			return false;
	}
	return true;
}

/* ---- RFC 6902 operations ---------------------------------------------- */

struct jp {
	json_t *doc; /* owned: the working copy */
	char   *err;
	size_t  errlen;
};

/* add: steals `value` whatever happens. */
static int
jp_add(struct jp *jp, const struct ptr *p, json_t *value, const char *opname)
{
	if (p->n == 0) {
		json_decref(jp->doc);
		jp->doc = value;
		return KS_PATCH_OK;
	}
	json_t            *parent = ptr_walk(jp->doc, p, p->n - 1);
	const struct ptok *last   = &p->tok[p->n - 1];
	size_t             idx;
	if (json_is_object(parent)) {
		jset(parent, last->s, last->len, value);
		return KS_PATCH_OK;
	}
	if (json_is_array(parent)) {
		if (is_dash(last)) {
			jappend(parent, value);
			return KS_PATCH_OK;
		}
		if (arr_index(last, &idx) && idx <= json_array_size(parent)) {
			if (json_array_insert_new(parent, idx, value) != 0)
				mcf_panic("jansson: array insert failed");
			return KS_PATCH_OK;
		}
		json_decref(value);
		return seterr(jp->err, jp->errlen, KS_PATCH_INVALID,
		    "%s operation does not apply: invalid array index in "
		    "path: \"%s\"",
		    opname, p->text);
	}
	json_decref(value);
	return seterr(jp->err, jp->errlen, KS_PATCH_INVALID,
	    "%s operation does not apply: doc is missing path: \"%s\"", opname,
	    p->text);
}

/* remove; on success hands the removed value to *removed (new) if asked. */
static int
jp_remove(struct jp *jp, const struct ptr *p, json_t **removed,
    const char *opname, const char *what)
{
	if (p->n == 0)
		return seterr(jp->err, jp->errlen, KS_PATCH_INVALID,
		    "%s operation does not apply: cannot remove the whole "
		    "document",
		    opname);
	json_t            *parent = ptr_walk(jp->doc, p, p->n - 1);
	const struct ptok *last   = &p->tok[p->n - 1];
	json_t            *v      = ptr_child(parent, last);
	if (v == NULL)
		return seterr(jp->err, jp->errlen, KS_PATCH_INVALID,
		    "%s operation does not apply: doc is missing %s: \"%s\"",
		    opname, what, p->text);
	if (removed != NULL)
		*removed = json_incref(v);
	if (json_is_object(parent)) {
		json_object_deln(parent, last->s, last->len);
	} else {
		size_t idx = 0;
		(void) arr_index(last, &idx); /* ptr_child checked it */
		json_array_remove(parent, idx);
	}
	return KS_PATCH_OK;
}

static int
jp_replace(struct jp *jp, const struct ptr *p, const json_t *value)
{
	if (p->n == 0) {
		json_decref(jp->doc);
		jp->doc = jcopy(value);
		return KS_PATCH_OK;
	}
	json_t            *parent = ptr_walk(jp->doc, p, p->n - 1);
	const struct ptok *last   = &p->tok[p->n - 1];
	if (ptr_child(parent, last) == NULL)
		return seterr(jp->err, jp->errlen, KS_PATCH_INVALID,
		    "replace operation does not apply: doc is missing path: "
		    "\"%s\"",
		    p->text);
	if (json_is_object(parent)) {
		jset(parent, last->s, last->len, jcopy(value));
	} else {
		size_t idx = 0;
		(void) arr_index(last, &idx);
		if (json_array_set_new(parent, idx, jcopy(value)) != 0)
			mcf_panic("jansson: array set failed");
	}
	return KS_PATCH_OK;
}

static int
jp_move(struct jp *jp, const struct ptr *from, const struct ptr *path)
{
	if (from->n < path->n && ptr_equal_prefix(from, path, from->n))
		return seterr(jp->err, jp->errlen, KS_PATCH_INVALID,
		    "move operation does not apply: \"%s\" is a child of "
		    "\"%s\"",
		    path->text, from->text);
	if (from->n == path->n && ptr_equal_prefix(from, path, from->n)) {
		if (ptr_walk(jp->doc, from, from->n) == NULL)
			return seterr(jp->err, jp->errlen, KS_PATCH_INVALID,
			    "move operation does not apply: doc is missing "
			    "from path: \"%s\"",
			    from->text);
		return KS_PATCH_OK;
	}
	json_t *v  = NULL;
	int     rc = jp_remove(jp, from, &v, "move", "from path");
	if (rc != KS_PATCH_OK)
		return rc;
	return jp_add(jp, path, v, "move");
}

static int
jp_copy(struct jp *jp, const struct ptr *from, const struct ptr *path)
{
	json_t *v = ptr_walk(jp->doc, from, from->n);
	if (v == NULL)
		return seterr(jp->err, jp->errlen, KS_PATCH_INVALID,
		    "copy operation does not apply: doc is missing from path: "
		    "\"%s\"",
		    from->text);
	return jp_add(jp, path, jcopy(v), "copy");
}

static int
jp_test(struct jp *jp, const struct ptr *p, const json_t *value)
{
	json_t *v = ptr_walk(jp->doc, p, p->n);
	if (v == NULL || !jequal(v, value))
		return seterr(jp->err, jp->errlen, KS_PATCH_INVALID,
		    "testing value %s failed: test failed", p->text);
	return KS_PATCH_OK;
}

enum jp_op { JP_ADD, JP_REMOVE, JP_REPLACE, JP_MOVE, JP_COPY, JP_TEST };

static const char *const jp_names[]
    = { "add", "remove", "replace", "move", "copy", "test" };

/* Checks operation `i`: shape, op name, members, pointer syntax. */
static int
jp_check(
    const json_t *op, size_t i, enum jp_op *kind, char *err, size_t errlen)
{
	if (!json_is_object(op))
		return seterr(err, errlen, KS_PATCH_BAD_REQUEST,
		    "json: cannot unmarshal %s into Go value of type "
		    "jsonpatch.Operation",
		    go_type(op));
	const json_t *name = json_object_get(op, "op");
	if (!json_is_string(name))
		return seterr(err, errlen, KS_PATCH_BAD_REQUEST,
		    "operation %zu: missing or non-string \"op\"", i);
	size_t k;
	for (k = 0; k < sizeof(jp_names) / sizeof(jp_names[0]); k++) {
		if (strcmp(json_string_value(name), jp_names[k]) == 0)
			break;
	}
	if (k == sizeof(jp_names) / sizeof(jp_names[0]))
		return seterr(err, errlen, KS_PATCH_BAD_REQUEST,
		    "operation %zu: Unexpected kind: %s", i,
		    json_string_value(name));
	*kind = (enum jp_op) k;

	const char *members[2] = { "path", NULL };
	if (*kind == JP_MOVE || *kind == JP_COPY)
		members[1] = "from";
	for (size_t m = 0; m < 2 && members[m] != NULL; m++) {
		const json_t *v = json_object_get(op, members[m]);
		struct ptr    p;
		if (!json_is_string(v))
			return seterr(err, errlen, KS_PATCH_BAD_REQUEST,
			    "operation %zu (%s): missing or non-string \"%s\"",
			    i, jp_names[k], members[m]);
		if (ptr_parse(v, &p) != 0)
			return seterr(err, errlen, KS_PATCH_BAD_REQUEST,
			    "operation %zu (%s): invalid JSON pointer in "
			    "\"%s\": \"%s\"",
			    i, jp_names[k], members[m], json_string_value(v));
		ptr_fini(&p);
	}
	if ((*kind == JP_ADD || *kind == JP_REPLACE || *kind == JP_TEST)
	    && json_object_get(op, "value") == NULL)
		return seterr(err, errlen, KS_PATCH_BAD_REQUEST,
		    "operation %zu (%s): missing \"value\"", i, jp_names[k]);
	return KS_PATCH_OK;
}

static int
jp_apply(struct jp *jp, const json_t *op, enum jp_op kind)
{
	struct ptr    path, from = { NULL, 0, NULL };
	const json_t *value = json_object_get(op, "value");
	int           rc;
	(void) ptr_parse(json_object_get(op, "path"), &path);
	if (kind == JP_MOVE || kind == JP_COPY)
		(void) ptr_parse(json_object_get(op, "from"), &from);
	switch (kind) {
	case JP_ADD:
		rc = jp_add(jp, &path, jcopy(value), "add");
		break;
	case JP_REMOVE:
		rc = jp_remove(jp, &path, NULL, "remove", "path");
		break;
	case JP_REPLACE:
		rc = jp_replace(jp, &path, value);
		break;
	case JP_MOVE:
		rc = jp_move(jp, &from, &path);
		break;
	case JP_COPY:
		rc = jp_copy(jp, &from, &path);
		break;
	default:
		rc = jp_test(jp, &path, value);
		break;
	}
	ptr_fini(&path);
	ptr_fini(&from);
	return rc;
}

int
ks_patch_json(const json_t *target, const json_t *patch, json_t **out,
    char *err, size_t errlen)
{
	if (!json_is_array(patch))
		return seterr(err, errlen, KS_PATCH_BAD_REQUEST,
		    "json: cannot unmarshal %s into Go value of type "
		    "jsonpatch.Patch",
		    patch ? go_type(patch) : "null");
	size_t      n     = json_array_size(patch);
	enum jp_op *kinds = mcf_calloc(n, sizeof(*kinds));
	for (size_t i = 0; i < n; i++) {
		int rc = jp_check(
		    json_array_get(patch, i), i, &kinds[i], err, errlen);
		if (rc != KS_PATCH_OK) {
			free(kinds);
			return rc;
		}
	}
	struct jp jp
	    = { target ? jcopy(target) : jcheck(json_null()), err, errlen };
	for (size_t i = 0; i < n; i++) {
		int rc = jp_apply(&jp, json_array_get(patch, i), kinds[i]);
		if (rc != KS_PATCH_OK) {
			json_decref(jp.doc);
			free(kinds);
			return rc;
		}
	}
	free(kinds);
	*out = jp.doc;
	return KS_PATCH_OK;
}

/* ---- strategic merge patch --------------------------------------------- */

enum smp_ctx { SMP_ROOT, SMP_METADATA, SMP_OTHER };

#define DIR_PATCH "$patch"
#define DIR_RETAIN "$retainKeys"
#define DIR_ORDER "$setElementOrder"
#define DIR_DELETE "$deleteFromPrimitiveList"

static bool
has_prefix(const char *s, size_t n, const char *prefix)
{
	size_t pl = strlen(prefix);
	return n >= pl && memcmp(s, prefix, pl) == 0;
}

static bool
key_is(const char *s, size_t n, const char *word)
{
	return n == strlen(word) && memcmp(s, word, n) == 0;
}

static int smp_map(json_t *orig, const json_t *patch, enum smp_ctx ctx,
    json_t **out, char *err, size_t errlen);

static int
bad_patch_type(const json_t *dir, const json_t *map, char *err, size_t errlen)
{
	char *d = json_is_string(dir) ? mcf_strdup(json_string_value(dir))
	                              : jtext(dir);
	char *m = jtext(map);
	seterr(err, errlen, KS_PATCH_BAD_REQUEST,
	    "unknown patch type: %s in map: %s", d, m);
	free(d);
	free(m);
	return KS_PATCH_BAD_REQUEST;
}

/* Index of the first element of `list` equal to `v`, or -1. */
static long
find_equal(const json_t *const *list, size_t n, const json_t *v)
{
	for (size_t i = 0; i < n; i++) {
		if (v != NULL && list[i] != NULL && jequal(list[i], v))
			return (long) i;
	}
	return -1;
}

/* The API server's mergeSortedSlice: `left` (server-only items) and
 * `right` (patch items) keep their own order; a left item goes first only
 * when both items are in the server list and it comes earlier there.
 * `lkey`/`rkey` are the items' identities (the item, or its merge key) and
 * `order` the identities of the server list.  Appends deep copies of the
 * items to `out`. */
static void
merge_sorted(const json_t *const *left, const json_t *const *lkey, size_t nl,
    const json_t *const *right, const json_t *const *rkey, size_t nr,
    const json_t *const *order, size_t norder, json_t *out)
{
	size_t i = 0, j = 0;
	while (i < nl || j < nr) {
		bool take_left;
		if (i >= nl) {
			take_left = false;
		} else if (j >= nr) {
			take_left = true;
		} else {
			long li   = find_equal(order, norder, lkey[i]);
			long ri   = find_equal(order, norder, rkey[j]);
			take_left = li >= 0 && ri >= 0 && li < ri;
		}
		if (take_left)
			jappend(out, jcopy(left[i++]));
		else
			jappend(out, jcopy(right[j++]));
	}
}

/* metadata.finalizers: the union of the server list `cur` (borrowed; not
 * an array means empty) and the patch list. */
static int
smp_union(const json_t *cur, const json_t *patch, json_t **out, char *err,
    size_t errlen)
{
	size_t np = json_array_size(patch);
	size_t no = json_is_array(cur) ? json_array_size(cur) : 0;
	for (size_t i = 0; i < np; i++) {
		const json_t *v = json_array_get(patch, i);
		if (json_is_object(v) || json_is_array(v))
			return seterr(err, errlen, KS_PATCH_BAD_REQUEST,
			    "list element types are not identical: a list of "
			    "scalars holds %s",
			    go_type(v));
	}
	const json_t **order  = mcf_calloc(no, sizeof(*order));
	const json_t **pitems = mcf_calloc(np, sizeof(*pitems));
	const json_t **sonly  = mcf_calloc(no, sizeof(*sonly));
	const json_t **porder = mcf_calloc(np, sizeof(*porder));
	size_t         npi = 0, nso = 0;
	for (size_t i = 0; i < no; i++)
		order[i] = json_array_get(cur, i);
	for (size_t i = 0; i < np; i++)
		porder[i] = json_array_get(patch, i);
	/* Patch items, deduplicated, in patch order. */
	for (size_t i = 0; i < np; i++) {
		if (find_equal(pitems, npi, porder[i]) < 0)
			pitems[npi++] = porder[i];
	}
	/* Server items the patch does not name, in server order. */
	for (size_t i = 0; i < no; i++) {
		if (find_equal(porder, np, order[i]) < 0
		    && find_equal(sonly, nso, order[i]) < 0)
			sonly[nso++] = order[i];
	}
	json_t *res = jcheck(json_array());
	merge_sorted(sonly, sonly, nso, pitems, pitems, npi, order, no, res);
	free(order);
	free(pitems);
	free(sonly);
	free(porder);
	*out = res;
	return KS_PATCH_OK;
}

/* Elements of `list` whose `mkey` equals `key` (skipping non-objects). */
static long
find_by_key(const json_t *list, const char *mkey, const json_t *key)
{
	for (size_t i = 0; i < json_array_size(list); i++) {
		const json_t *e = json_array_get(list, i);
		const json_t *k = json_object_get(e, mkey);
		if (k != NULL && jequal(k, key))
			return (long) i;
	}
	return -1;
}

static int
no_merge_key(const json_t *e, const char *mkey, char *err, size_t errlen)
{
	char *m = jtext(e);
	seterr(err, errlen, KS_PATCH_BAD_REQUEST,
	    "map: %s does not contain declared merge key: %s", m, mkey);
	free(m);
	return KS_PATCH_BAD_REQUEST;
}

/* metadata.ownerReferences: merge the server list `cur` (borrowed) and the
 * patch list element by element on `mkey`. */
static int
smp_keyed(const json_t *cur, const json_t *patch, const char *mkey,
    json_t **out, char *err, size_t errlen)
{
	size_t np = json_array_size(patch);
	for (size_t i = 0; i < np; i++) {
		const json_t *e = json_array_get(patch, i);
		if (!json_is_object(e))
			return seterr(err, errlen, KS_PATCH_BAD_REQUEST,
			    "list element types are not identical: a list "
			    "merged on \"%s\" holds %s",
			    mkey, go_type(e));
	}
	json_t *list = json_is_array(cur) ? jcopy(cur) : jcheck(json_array());
	const json_t **plain   = mcf_calloc(np, sizeof(*plain));
	size_t         npl     = 0;
	bool           replace = false;
	int            rc      = KS_PATCH_OK;

	/* Special elements first: deletions and "replace". */
	for (size_t i = 0; i < np && rc == KS_PATCH_OK; i++) {
		const json_t *e   = json_array_get(patch, i);
		const json_t *dir = json_object_get(e, DIR_PATCH);
		if (dir == NULL) {
			plain[npl++] = e;
			continue;
		}
		const char *d = json_string_value(dir);
		if (d != NULL && strcmp(d, "delete") == 0) {
			const json_t *key = json_object_get(e, mkey);
			if (key == NULL) {
				rc = no_merge_key(e, mkey, err, errlen);
				break;
			}
			long at;
			while ((at = find_by_key(list, mkey, key)) >= 0)
				json_array_remove(list, (size_t) at);
		} else if (d != NULL && strcmp(d, "replace") == 0) {
			replace = true;
		} else if (d != NULL && strcmp(d, "merge") == 0) {
			rc = seterr(err, errlen, KS_PATCH_BAD_REQUEST,
			    "merging lists cannot yet be specified in the "
			    "patch");
		} else {
			rc = bad_patch_type(dir, e, err, errlen);
		}
	}
	if (rc == KS_PATCH_OK && replace) {
		json_decref(list);
		list = jcheck(json_array());
	}
	for (size_t i = 0; i < npl && rc == KS_PATCH_OK; i++) {
		if (json_object_get(plain[i], mkey) == NULL)
			rc = no_merge_key(plain[i], mkey, err, errlen);
	}
	if (rc != KS_PATCH_OK) {
		json_decref(list);
		free(plain);
		return rc;
	}

	/* The server order, by merge key, before the patch elements merge
	 * (after a "replace", the patch elements are the server list). */
	json_t *server = jcopy(list);
	for (size_t i = 0; i < npl && rc == KS_PATCH_OK; i++) {
		const json_t *key = json_object_get(plain[i], mkey);
		long          at = replace ? -1 : find_by_key(list, mkey, key);
		json_t       *res = NULL;
		if (at >= 0) {
			json_t *old = json_array_get(list, (size_t) at);
			rc = smp_map(json_incref(old), plain[i], SMP_OTHER,
			    &res, err, errlen);
			if (rc == KS_PATCH_OK
			    && json_array_set_new(list, (size_t) at,
			           res ? res : jcheck(json_object()))
			        != 0)
				mcf_panic("jansson: array set failed");
		} else {
			rc = smp_map(
			    NULL, plain[i], SMP_OTHER, &res, err, errlen);
			if (rc == KS_PATCH_OK)
				jappend(
				    list, res ? res : jcheck(json_object()));
		}
	}
	if (rc != KS_PATCH_OK) {
		json_decref(server);
		json_decref(list);
		free(plain);
		return rc;
	}
	if (replace) {
		/* Nothing is left to interleave: the list is the patch's. */
		json_decref(server);
		free(plain);
		*out = list;
		return KS_PATCH_OK;
	}

	size_t         nl     = json_array_size(list);
	size_t         ns     = json_array_size(server);
	const json_t **order  = mcf_calloc(ns, sizeof(*order));
	const json_t **pkeys  = mcf_calloc(npl, sizeof(*pkeys));
	const json_t **pitems = mcf_calloc(nl, sizeof(*pitems));
	const json_t **pikeys = mcf_calloc(nl, sizeof(*pikeys));
	const json_t **sonly  = mcf_calloc(nl, sizeof(*sonly));
	const json_t **sokeys = mcf_calloc(nl, sizeof(*sokeys));
	size_t         npi = 0, nso = 0;
	for (size_t i = 0; i < ns; i++)
		order[i] = json_object_get(json_array_get(server, i), mkey);
	for (size_t i = 0; i < npl; i++)
		pkeys[i] = json_object_get(plain[i], mkey);
	/* Split the merged list: items the patch names (stably sorted by
	 * where the patch names them) and server-only items (in list order,
	 * which is server order). */
	long *prank = mcf_calloc(nl, sizeof(*prank));
	for (size_t i = 0; i < nl; i++) {
		const json_t *e    = json_array_get(list, i);
		const json_t *k    = json_object_get(e, mkey);
		long          rank = k ? find_equal(pkeys, npl, k) : -1;
		if (rank < 0) {
			sonly[nso]    = e;
			sokeys[nso++] = k;
			continue;
		}
		size_t j = npi++;
		while (j > 0 && prank[j - 1] > rank) {
			pitems[j] = pitems[j - 1];
			pikeys[j] = pikeys[j - 1];
			prank[j]  = prank[j - 1];
			j--;
		}
		pitems[j] = e;
		pikeys[j] = k;
		prank[j]  = rank;
	}
	free(prank);
	json_t *res = jcheck(json_array());
	merge_sorted(sonly, sokeys, nso, pitems, pikeys, npi, order, ns, res);
	free(order);
	free(pkeys);
	free(pitems);
	free(pikeys);
	free(sonly);
	free(sokeys);
	free(plain);
	json_decref(server);
	json_decref(list);
	*out = res;
	return KS_PATCH_OK;
}

/* Applies "$deleteFromPrimitiveList/<field>" and checks the directives
 * that are ignored.  `orig` is an object we own. */
static int
smp_directives(json_t *orig, const json_t *patch, char *err, size_t errlen)
{
	const char *k;
	size_t      kl;
	json_t     *v;
	json_object_keylen_foreach((json_t *) patch, k, kl, v)
	{
		if (key_is(k, kl, DIR_RETAIN)) {
			if (!json_is_array(v))
				return seterr(err, errlen,
				    KS_PATCH_BAD_REQUEST,
				    "invalid patch format of retainKeys");
		} else if (has_prefix(k, kl, DIR_ORDER)) {
			if (!has_prefix(k, kl, DIR_ORDER "/")
			    || !json_is_array(v))
				return seterr(err, errlen,
				    KS_PATCH_BAD_REQUEST,
				    "invalid patch format of setElementOrder "
				    "list");
		} else if (has_prefix(k, kl, DIR_DELETE)) {
			size_t pl = strlen(DIR_DELETE "/");
			if (!has_prefix(k, kl, DIR_DELETE "/")
			    || !json_is_array(v))
				return seterr(err, errlen,
				    KS_PATCH_BAD_REQUEST,
				    "invalid patch format of primitive list");
			json_t *list = json_object_getn(orig, k + pl, kl - pl);
			if (!json_is_array(list))
				continue;
			for (size_t i = json_array_size(list); i-- > 0;) {
				json_t *e = json_array_get(list, i);
				for (size_t j = 0; j < json_array_size(v);
				     j++) {
					if (jequal(e, json_array_get(v, j))) {
						json_array_remove(list, i);
						break;
					}
				}
			}
		}
	}
	return KS_PATCH_OK;
}

static bool
is_directive(const char *k, size_t kl)
{
	return key_is(k, kl, DIR_PATCH) || key_is(k, kl, DIR_RETAIN)
	    || has_prefix(k, kl, DIR_ORDER) || has_prefix(k, kl, DIR_DELETE);
}

/* Merges the patch map into `orig` (steals it; NULL or a non-object for
 * none).  On success *out is the new map, or NULL when the patch asked for
 * the map to be deleted. */
static int
smp_map(json_t *orig, const json_t *patch, enum smp_ctx ctx, json_t **out,
    char *err, size_t errlen)
{
	const json_t *dir = json_object_get(patch, DIR_PATCH);
	if (dir != NULL) {
		const char *d = json_string_value(dir);
		if (d != NULL && strcmp(d, "delete") == 0) {
			json_decref(orig);
			*out = NULL;
			return KS_PATCH_OK;
		}
		if (d != NULL && strcmp(d, "replace") == 0) {
			json_decref(orig);
			orig = NULL;
		} else if (d == NULL || strcmp(d, "merge") != 0) {
			json_decref(orig);
			return bad_patch_type(dir, patch, err, errlen);
		}
	}
	if (!json_is_object(orig)) {
		json_decref(orig);
		orig = jcheck(json_object());
	}
	int rc = smp_directives(orig, patch, err, errlen);
	if (rc != KS_PATCH_OK) {
		json_decref(orig);
		return rc;
	}

	const char *k;
	size_t      kl;
	json_t     *v;
	json_object_keylen_foreach((json_t *) patch, k, kl, v)
	{
		if (is_directive(k, kl))
			continue;
		if (json_is_null(v)) {
			json_object_deln(orig, k, kl);
			continue;
		}
		json_t *cur = json_object_getn(orig, k, kl);
		json_t *res = NULL;
		if (json_is_object(v)) {
			enum smp_ctx sub
			    = ctx == SMP_ROOT && key_is(k, kl, "metadata")
			    ? SMP_METADATA
			    : SMP_OTHER;
			rc = smp_map(
			    json_is_object(cur) ? json_incref(cur) : NULL, v,
			    sub, &res, err, errlen);
		} else if (json_is_array(v) && ctx == SMP_METADATA
		    && key_is(k, kl, "finalizers")) {
			rc = smp_union(cur, v, &res, err, errlen);
		} else if (json_is_array(v) && ctx == SMP_METADATA
		    && key_is(k, kl, "ownerReferences")) {
			rc = smp_keyed(cur, v, "uid", &res, err, errlen);
		} else {
			res = jcopy(v);
		}
		if (rc != KS_PATCH_OK) {
			json_decref(orig);
			return rc;
		}
		if (res == NULL)
			json_object_deln(orig, k, kl);
		else
			jset(orig, k, kl, res);
	}
	*out = orig;
	return KS_PATCH_OK;
}

int
ks_patch_strategic(const json_t *target, const json_t *patch, json_t **out,
    char *err, size_t errlen)
{
	if (!json_is_object(patch))
		return seterr(err, errlen, KS_PATCH_BAD_REQUEST,
		    "json: cannot unmarshal %s into Go value of type "
		    "map[string]interface {}",
		    patch ? go_type(patch) : "null");
	json_t *orig = json_is_object(target) ? jcopy(target) : NULL;
	json_t *res  = NULL;
	int     rc   = smp_map(orig, patch, SMP_ROOT, &res, err, errlen);
	if (rc != KS_PATCH_OK)
		return rc;
	*out = res ? res : jcheck(json_object());
	return KS_PATCH_OK;
}

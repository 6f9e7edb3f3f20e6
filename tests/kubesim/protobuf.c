/*
 * protobuf.c — a minimal protobuf reader for three Kubernetes kinds.
 *
 * Wire types 0 (varint) and 2 (length-delimited) are decoded; 1 and 5
 * (fixed 64/32) are skipped; anything else is malformed.  Every read is
 * bounds-checked against the enclosing message, so a hostile body can only
 * produce an error.  Nesting is fixed by the schema (at most four levels),
 * so there is no recursion on input-controlled depth.
 */
#include "protobuf.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "base64.h"

typedef struct pb {
	const unsigned char *p;
	const unsigned char *end;
} pb;

typedef struct pb_field {
	uint32_t             num;
	int                  wire;
	uint64_t             varint;
	const unsigned char *data; /* wire type 2 */
	size_t               len;
} pb_field;

static bool
pb_varint(pb *r, uint64_t *out)
{
	uint64_t v = 0;
	for (int shift = 0; shift < 64; shift += 7) {
		if (r->p >= r->end)
			return false;
		unsigned char b = *r->p++;
		v |= (uint64_t) (b & 0x7f) << shift;
		if ((b & 0x80) == 0) {
			*out = v;
			return true;
		}
	}
	return false;
}

/* Reads the next field; returns 1 on a field, 0 at the end, -1 when
 * malformed. */
static int
pb_next(pb *r, pb_field *f)
{
	if (r->p >= r->end)
		return 0;
	uint64_t key;
	if (!pb_varint(r, &key) || (key >> 3) == 0 || (key >> 3) > UINT32_MAX)
		return -1;
	f->num  = (uint32_t) (key >> 3);
	f->wire = (int) (key & 7);
	switch (f->wire) {
	case 0:
		return pb_varint(r, &f->varint) ? 1 : -1;
	case 1:
		if (r->end - r->p < 8)
			return -1;
		r->p += 8;
		return 1;
	case 2: {
		uint64_t n;
		if (!pb_varint(r, &n) || n > (uint64_t) (r->end - r->p))
			return -1;
		f->data = r->p;
		f->len  = (size_t) n;
		r->p += n;
		return 1;
	}
	case 5:
		if (r->end - r->p < 4)
			return -1;
		r->p += 4;
		return 1;
	default:
		return -1;
	}
}

static json_t *
str_of(const pb_field *f)
{
	return json_stringn((const char *) f->data, f->len);
}

/* A map entry {1: key, 2: value} into `obj`; bytes values base64. */
static bool
map_entry(const pb_field *f, json_t *obj, bool bytes)
{
	pb       r = { f->data, f->data + f->len };
	pb_field e = { 0 };
	char    *key = NULL;
	json_t  *val = NULL;
	int      rc;
	while ((rc = pb_next(&r, &e)) == 1) {
		if (e.wire != 2)
			continue;
		if (e.num == 1) {
			free(key);
			key = mcf_strndup((const char *) e.data, e.len);
			if (strlen(key) != e.len) {
				rc = -1;
				break;
			}
		} else if (e.num == 2) {
			json_decref(val);
			if (bytes) {
				char *enc = mcf_base64_encode(e.data, e.len);
				val       = json_string(enc);
				free(enc);
			} else {
				val = str_of(&e);
			}
		}
	}
	if (rc < 0 || key == NULL) {
		free(key);
		json_decref(val);
		return false;
	}
	json_object_set_new(obj, key, val ? val : json_string(""));
	free(key);
	return true;
}

static json_t *
ensure(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);
	if (v == NULL) {
		v = json_object();
		json_object_set_new(obj, key, v);
	}
	return v;
}

static bool
decode_meta(const pb_field *f, json_t *meta)
{
	pb       r = { f->data, f->data + f->len };
	pb_field e = { 0 };
	int      rc;
	while ((rc = pb_next(&r, &e)) == 1) {
		if (e.wire == 0) {
			if (e.num == 7 && e.varint != 0)
				json_object_set_new(meta, "generation",
				    json_integer((json_int_t) e.varint));
			continue;
		}
		if (e.wire != 2)
			continue;
		const char *names[] = { [1] = "name", [2] = "generateName",
			[3] = "namespace", [5] = "uid",
			[6] = "resourceVersion" };
		if (e.num <= 6 && e.num != 4 && e.len > 0) {
			json_object_set_new(meta, names[e.num], str_of(&e));
		} else if (e.num == 11 || e.num == 12) {
			if (!map_entry(&e, ensure(meta,
					       e.num == 11 ? "labels"
							   : "annotations"),
				false))
				return false;
		} else if (e.num == 14) {
			json_t *fins = json_object_get(meta, "finalizers");
			if (fins == NULL) {
				fins = json_array();
				json_object_set_new(meta, "finalizers", fins);
			}
			json_array_append_new(fins, str_of(&e));
		} else if (e.num == 13) {
			/* OwnerReference {1 kind, 3 name, 4 uid,
			 * 5 apiVersion, 6 controller, 7 blockOwnerDeletion} */
			pb       o = { e.data, e.data + e.len };
			pb_field g = { 0 };
			json_t  *ref = json_object();
			int      orc;
			while ((orc = pb_next(&o, &g)) == 1) {
				if (g.wire == 2 && g.num == 1)
					json_object_set_new(ref, "kind",
					    str_of(&g));
				else if (g.wire == 2 && g.num == 3)
					json_object_set_new(ref, "name",
					    str_of(&g));
				else if (g.wire == 2 && g.num == 4)
					json_object_set_new(ref, "uid",
					    str_of(&g));
				else if (g.wire == 2 && g.num == 5)
					json_object_set_new(ref, "apiVersion",
					    str_of(&g));
				else if (g.wire == 0 && g.num == 6)
					json_object_set_new(ref, "controller",
					    json_boolean(g.varint));
				else if (g.wire == 0 && g.num == 7)
					json_object_set_new(ref,
					    "blockOwnerDeletion",
					    json_boolean(g.varint));
			}
			if (orc < 0) {
				json_decref(ref);
				return false;
			}
			json_t *refs = json_object_get(meta, "ownerReferences");
			if (refs == NULL) {
				refs = json_array();
				json_object_set_new(meta, "ownerReferences",
				    refs);
			}
			json_array_append_new(refs, ref);
		}
	}
	return rc == 0;
}

/* Decodes the object message of `kind` into `obj`. */
static bool
decode_object(const char *kind, const unsigned char *data, size_t len,
    json_t *obj)
{
	pb       r = { data, data + len };
	pb_field f = { 0 };
	int      rc;
	bool     cm = strcmp(kind, "ConfigMap") == 0;
	bool     se = strcmp(kind, "Secret") == 0;
	while ((rc = pb_next(&r, &f)) == 1) {
		if (f.num == 1 && f.wire == 2) {
			if (!decode_meta(&f, ensure(obj, "metadata")))
				return false;
		} else if ((cm || se) && f.num == 2 && f.wire == 2) {
			if (!map_entry(&f, ensure(obj, "data"), se))
				return false;
		} else if (cm && f.num == 3 && f.wire == 2) {
			if (!map_entry(&f, ensure(obj, "binaryData"), true))
				return false;
		} else if (cm && f.num == 4 && f.wire == 0) {
			json_object_set_new(obj, "immutable",
			    json_boolean(f.varint));
		} else if (se && f.num == 3 && f.wire == 2) {
			if (f.len > 0)
				json_object_set_new(obj, "type", str_of(&f));
		} else if (se && f.num == 4 && f.wire == 2) {
			if (!map_entry(&f, ensure(obj, "stringData"), false))
				return false;
		} else if (se && f.num == 5 && f.wire == 0) {
			json_object_set_new(obj, "immutable",
			    json_boolean(f.varint));
		} else if (!cm && !se && f.num == 2 && f.wire == 2) {
			/* NamespaceSpec {1: finalizers} */
			pb       s = { f.data, f.data + f.len };
			pb_field g = { 0 };
			json_t  *fins = json_array();
			int      src;
			while ((src = pb_next(&s, &g)) == 1)
				if (g.num == 1 && g.wire == 2)
					json_array_append_new(fins, str_of(&g));
			if (src < 0) {
				json_decref(fins);
				return false;
			}
			if (json_array_size(fins) > 0)
				json_object_set_new(ensure(obj, "spec"),
				    "finalizers", fins);
			else
				json_decref(fins);
		}
	}
	return rc == 0;
}

int
ks_pb_decode(const unsigned char *buf, size_t len, json_t **out, char *err,
    size_t errlen)
{
	static const unsigned char magic[4] = { 'k', '8', 's', 0 };
	if (len < 4 || memcmp(buf, magic, 4) != 0) {
		snprintf(err, errlen, "protobuf body lacks the k8s envelope");
		return KS_PB_MALFORMED;
	}
	pb                   r = { buf + 4, buf + len };
	pb_field             f = { 0 };
	char                 api[128] = "", kind[128] = "";
	const unsigned char *raw      = NULL;
	size_t               rawlen   = 0;
	int                  rc;
	while ((rc = pb_next(&r, &f)) == 1) {
		if (f.num == 1 && f.wire == 2) {
			pb       t = { f.data, f.data + f.len };
			pb_field g = { 0 };
			int      trc;
			while ((trc = pb_next(&t, &g)) == 1) {
				if (g.wire != 2)
					continue;
				char *dst = g.num == 1 ? api
				    : g.num == 2       ? kind
						       : NULL;
				if (dst != NULL)
					snprintf(dst, 128, "%.*s",
					    (int) (g.len < 127 ? g.len : 127),
					    (const char *) g.data);
			}
			if (trc < 0)
				rc = -1;
		} else if (f.num == 2 && f.wire == 2) {
			raw    = f.data;
			rawlen = f.len;
		}
		if (rc < 0)
			break;
	}
	if (rc < 0 || raw == NULL) {
		snprintf(err, errlen, "malformed protobuf envelope");
		return KS_PB_MALFORMED;
	}
	if (strcmp(kind, "ConfigMap") != 0 && strcmp(kind, "Secret") != 0 &&
	    strcmp(kind, "Namespace") != 0) {
		snprintf(err, errlen,
		    "protobuf bodies are supported for ConfigMap, Secret and "
		    "Namespace only, not \"%s\"",
		    kind);
		return KS_PB_UNSUPPORTED;
	}
	json_t *obj = json_object();
	json_object_set_new(obj, "kind", json_string(kind));
	json_object_set_new(obj, "apiVersion", json_string(api));
	if (!decode_object(kind, raw, rawlen, obj)) {
		json_decref(obj);
		snprintf(err, errlen, "malformed protobuf %s", kind);
		return KS_PB_MALFORMED;
	}
	*out = obj;
	return KS_PB_OK;
}

/*
 * admit.c — admission for every kind kubesim serves.
 *
 * The order follows the real API server: decode (done by the caller), name
 * and generateName, system fields, namespace lifecycle, kind defaulting,
 * pruning of unknown fields (reported per fieldValidation), validation.
 * Messages copy apimachinery's field.Error forms because clients show them
 * and tests compare them.
 */
#include "admit.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

#include "alloc.h"
#include "base64.h"
#include "json.h"
#include "schema.h"
#include "store.h"

#define SUBDOMAIN_MSG                                                        \
	"a lowercase RFC 1123 subdomain must consist of lower case "         \
	"alphanumeric characters, '-' or '.', and must start and end with "  \
	"an alphanumeric character (e.g. 'example.com', regex used for "     \
	"validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]" \
	"*[a-z0-9])?)*')"
#define LABEL_MSG                                                            \
	"a lowercase RFC 1123 label must consist of lower case alphanumeric " \
	"characters or '-', and must start and end with an alphanumeric "    \
	"character (e.g. 'my-name',  or '123-abc', regex used for "          \
	"validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"

/* Collected validation errors for one object: printed as one 422. */
typedef struct errs {
	json_t *causes; /* array of {reason, message, field} */
} errs;

static void
err_add(errs *e, const char *reason, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
err_add(errs *e, const char *reason, const char *field, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *msg = mcf_vasprintf(fmt, ap);
	va_end(ap);
	if (e->causes == NULL)
		e->causes = json_array();
	json_array_append_new(e->causes,
	    json_pack("{s:s,s:s,s:s}", "reason", reason, "message", msg,
		"field", field));
	free(msg);
}

static void
qualified_kind(const ks_type *t, char *buf, size_t len)
{
	if (t->group[0] == '\0')
		snprintf(buf, len, "%s", t->kind);
	else
		snprintf(buf, len, "%s.%s", t->kind, t->group);
}

/* Turns collected errors into the 422 Invalid Status.  Returns -1 when
 * there were errors, else 0. */
static int
err_finish(errs *e, const ks_type *t, const char *name, ks_result *r)
{
	if (e->causes == NULL)
		return 0;
	char qk[256];
	qualified_kind(t, qk, sizeof(qk));
	size_t  n   = json_array_size(e->causes);
	char   *all = mcf_strdup("");
	for (size_t i = 0; i < n; i++) {
		json_t     *c   = json_array_get(e->causes, i);
		const char *fld = json_string_value(json_object_get(c, "field"));
		const char *msg =
		    json_string_value(json_object_get(c, "message"));
		char *next = mcf_asprintf("%s%s%s: %s", all,
		    i ? ", " : (n > 1 ? "[" : ""), fld, msg);
		free(all);
		all = next;
	}
	ks_fail(r, 422, "Invalid", t, name, "%s \"%s\" is invalid: %s%s", qk,
	    name ? name : "", all, n > 1 ? "]" : "");
	free(all);
	json_t *details = json_object_get(r->body, "details");
	json_object_set_new(details, "causes", e->causes);
	e->causes = NULL;
	return -1;
}

void
ks_uuid(char *buf)
{
	unsigned char b[16];
	if (RAND_bytes(b, sizeof(b)) != 1) {
		for (size_t i = 0; i < sizeof(b); i++)
			b[i] = (unsigned char) rand();
	}
	b[6] = (b[6] & 0x0f) | 0x40;
	b[8] = (b[8] & 0x3f) | 0x80;
	snprintf(buf, 37,
	    "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x"
	    "%02x",
	    b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10],
	    b[11], b[12], b[13], b[14], b[15]);
}

static bool
is_dns_label(const char *s, size_t max)
{
	size_t n = strlen(s);
	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
			continue;
		if (c == '-' && i > 0 && i + 1 < n)
			continue;
		return false;
	}
	return true;
}

static bool
is_dns_subdomain(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 253)
		return false;
	char *copy = mcf_strdup(s);
	bool  ok   = true;
	char *save = NULL;
	if (copy[0] == '.' || copy[n - 1] == '.' || strstr(copy, "..") != NULL)
		ok = false;
	for (char *part = strtok_r(copy, ".", &save); ok && part != NULL;
	     part = strtok_r(NULL, ".", &save))
		ok = is_dns_label(part, 253);
	free(copy);
	return ok;
}

int
ks_admit_name(const ks_type *t, const char *name, ks_result *r)
{
	errs e = { 0 };
	if (t->rules == KS_RULES_NAMESPACE) {
		if (!is_dns_label(name, 63))
			err_add(&e, "FieldValueInvalid", "metadata.name",
			    "Invalid value: \"%s\": %s", name, LABEL_MSG);
	} else if (!is_dns_subdomain(name)) {
		err_add(&e, "FieldValueInvalid", "metadata.name",
		    "Invalid value: \"%s\": %s", name, SUBDOMAIN_MSG);
	}
	return err_finish(&e, t, name, r);
}

/* Label keys: [prefix/]name, prefix a DNS subdomain, name ≤ 63 of
 * [A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?. */
static bool
is_qualified_name(const char *s)
{
	const char *slash = strchr(s, '/');
	const char *name  = s;
	if (slash != NULL) {
		char prefix[300];
		if ((size_t) (slash - s) >= sizeof(prefix))
			return false;
		snprintf(prefix, sizeof(prefix), "%.*s", (int) (slash - s), s);
		if (!is_dns_subdomain(prefix))
			return false;
		name = slash + 1;
	}
	size_t n = strlen(name);
	if (n == 0 || n > 63)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (isalnum((unsigned char) c))
			continue;
		if ((c == '-' || c == '_' || c == '.') && i > 0 && i + 1 < n)
			continue;
		return false;
	}
	return true;
}

static bool
is_label_value(const char *s)
{
	size_t n = strlen(s);
	if (n == 0)
		return true;
	if (n > 63)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (isalnum((unsigned char) c))
			continue;
		if ((c == '-' || c == '_' || c == '.') && i > 0 && i + 1 < n)
			continue;
		return false;
	}
	return true;
}

static void
check_string_map(errs *e, json_t *meta, const char *field, bool labels)
{
	json_t *m = json_object_get(meta, field);
	if (m == NULL || json_is_null(m)) {
		json_object_del(meta, field);
		return;
	}
	char path[128];
	snprintf(path, sizeof(path), "metadata.%s", field);
	if (json_is_object(m) && json_object_size(m) == 0) {
		/* Go drops empty maps (omitempty): {} is no change. */
		json_object_del(meta, field);
		return;
	}
	if (!json_is_object(m)) {
		err_add(e, "FieldValueTypeInvalid", path,
		    "Invalid value: must be a map of strings");
		return;
	}
	const char *k;
	json_t     *v;
	size_t      total = 0;
	json_object_foreach (m, k, v) {
		if (!json_is_string(v)) {
			err_add(e, "FieldValueTypeInvalid", path,
			    "Invalid value: \"%s\": value must be a string", k);
			continue;
		}
		if (!is_qualified_name(k))
			err_add(e, "FieldValueInvalid", path,
			    "Invalid value: \"%s\": name part must consist of "
			    "alphanumeric characters, '-', '_' or '.', and must "
			    "start and end with an alphanumeric character",
			    k);
		if (labels && !is_label_value(json_string_value(v)))
			err_add(e, "FieldValueInvalid", path,
			    "Invalid value: \"%s\": a valid label must be an "
			    "empty string or consist of alphanumeric "
			    "characters, '-', '_' or '.', and must start and "
			    "end with an alphanumeric character",
			    json_string_value(v));
		total += strlen(k) + json_string_length(v);
	}
	if (!labels && total > 256 * 1024)
		err_add(e, "FieldValueTooLong", path,
		    "Too long: must have at most 262144 bytes");
}

static const char *const meta_known[] = { "name", "generateName",
	"namespace", "uid", "resourceVersion", "generation",
	"creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
	"labels", "annotations", "ownerReferences", "finalizers", NULL };

static bool
in_list(const char *const *list, const char *s)
{
	for (size_t i = 0; list[i] != NULL; i++)
		if (strcmp(list[i], s) == 0)
			return true;
	return false;
}

/* Drops what clients may send but servers never store, and validates the
 * user-settable metadata. */
static void
clean_metadata(errs *e, json_t *meta)
{
	json_object_del(meta, "managedFields");
	json_object_del(meta, "selfLink");
	const char *k;
	json_t     *v;
	void       *tmp;
	json_object_foreach_safe (meta, tmp, k, v) {
		if (!in_list(meta_known, k) || json_is_null(v))
			json_object_del(meta, k);
	}
	check_string_map(e, meta, "labels", true);
	check_string_map(e, meta, "annotations", false);
	json_t *fin = json_object_get(meta, "finalizers");
	if (fin != NULL) {
		size_t  i;
		json_t *f;
		if (!json_is_array(fin))
			err_add(e, "FieldValueTypeInvalid", "metadata.finalizers",
			    "Invalid value: must be a list of strings");
		else
			json_array_foreach (fin, i, f) {
				if (!json_is_string(f) ||
				    !is_qualified_name(json_string_value(f))) {
					char p[64];
					snprintf(p, sizeof(p),
					    "metadata.finalizers[%zu]", i);
					err_add(e, "FieldValueInvalid", p,
					    "Invalid value: %s: must be a "
					    "qualified name",
					    json_is_string(f)
						? json_string_value(f)
						: "non-string");
				}
			}
		if (json_is_array(fin) && json_array_size(fin) == 0)
			json_object_del(meta, "finalizers");
	}
	json_t *owners = json_object_get(meta, "ownerReferences");
	if (owners != NULL) {
		size_t  i;
		json_t *o;
		if (!json_is_array(owners))
			err_add(e, "FieldValueTypeInvalid",
			    "metadata.ownerReferences",
			    "Invalid value: must be a list");
		else
			json_array_foreach (owners, i, o) {
				static const char *const req[] = { "apiVersion",
					"kind", "name", "uid", NULL };
				for (size_t j = 0; req[j] != NULL; j++) {
					const char *s = json_string_value(
					    json_object_get(o, req[j]));
					if (s == NULL || s[0] == '\0') {
						char p[96];
						snprintf(p, sizeof(p),
						    "metadata.ownerReferences[%"
						    "zu].%s",
						    i, req[j]);
						err_add(e, "FieldValueRequired",
						    p, "Required value");
					}
				}
			}
		if (json_is_array(owners) && json_array_size(owners) == 0)
			json_object_del(meta, "ownerReferences");
	}
}

/* Records top-level fields of `obj` not in `known` (plus kind, apiVersion,
 * metadata) into `unknown` and removes them. */
static void
prune_top(json_t *obj, const char *const *known, json_t *unknown)
{
	const char *k;
	json_t     *v;
	void       *tmp;
	json_object_foreach_safe (obj, tmp, k, v) {
		if (strcmp(k, "kind") == 0 || strcmp(k, "apiVersion") == 0 ||
		    strcmp(k, "metadata") == 0 || in_list(known, k))
			continue;
		json_array_append_new(unknown, json_string(k));
		json_object_del(obj, k);
	}
}

static void
prune_sub(json_t *obj, const char *field, const char *const *known,
    json_t *unknown)
{
	json_t *sub = json_object_get(obj, field);
	if (!json_is_object(sub))
		return;
	const char *k;
	json_t     *v;
	void       *tmp;
	json_object_foreach_safe (sub, tmp, k, v) {
		if (in_list(known, k))
			continue;
		char *p = mcf_asprintf("%s.%s", field, k);
		json_array_append_new(unknown, json_string(p));
		free(p);
		json_object_del(sub, k);
	}
}

static bool
is_config_key(const char *k)
{
	size_t n = strlen(k);
	if (n == 0 || n > 253 || strcmp(k, ".") == 0 || strcmp(k, "..") == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = k[i];
		if (!isalnum((unsigned char) c) && c != '-' && c != '_' &&
		    c != '.')
			return false;
	}
	return true;
}

static void
check_data_map(errs *e, json_t *obj, const char *field, bool base64)
{
	json_t *m = json_object_get(obj, field);
	if (m == NULL)
		return;
	if (json_is_null(m)) {
		json_object_del(obj, field);
		return;
	}
	if (!json_is_object(m)) {
		err_add(e, "FieldValueTypeInvalid", field,
		    "Invalid value: must be a map of strings");
		return;
	}
	const char *k;
	json_t     *v;
	json_object_foreach (m, k, v) {
		char path[300];
		snprintf(path, sizeof(path), "%s[%s]", field, k);
		if (!is_config_key(k))
			err_add(e, "FieldValueInvalid", path,
			    "Invalid value: \"%s\": a valid config key must "
			    "consist of alphanumeric characters, '-', '_' or "
			    "'.' (e.g. 'key.name',  or 'KEY_NAME',  or "
			    "'key-name', regex used for validation is "
			    "'[-._a-zA-Z0-9]+')",
			    k);
		if (!json_is_string(v))
			err_add(e, "FieldValueTypeInvalid", path,
			    "Invalid value: must be a string");
		else if (base64 && !mcf_base64_valid(json_string_value(v)))
			err_add(e, "FieldValueInvalid", path,
			    "Invalid value: illegal base64 data");
	}
}

/* Parses RFC 3339 with 'Z' or a numeric offset and optional fraction. */
static bool
parse_time(const char *s, struct timespec *out)
{
	struct tm tm = { 0 };
	int       n  = 0;
	if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon,
		&tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6 ||
	    n != 19)
		return false;
	if (tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 ||
	    tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 ||
	    tm.tm_sec > 60)
		return false;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	const char *p    = s + 19;
	long        nsec = 0;
	if (*p == '.') {
		p++;
		long scale = 100000000;
		if (!isdigit((unsigned char) *p))
			return false;
		while (isdigit((unsigned char) *p)) {
			nsec += (*p - '0') * scale;
			scale /= 10;
			p++;
		}
	}
	long off = 0;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int hh, mm;
		if (sscanf(p + 1, "%2d:%2d", &hh, &mm) != 2 || strlen(p) != 6)
			return false;
		off = (hh * 3600 + mm * 60) * (*p == '+' ? 1 : -1);
		p += 6;
	} else {
		return false;
	}
	if (*p != '\0')
		return false;
	out->tv_sec  = timegm(&tm) - off;
	out->tv_nsec = nsec;
	return true;
}

static void
format_micro(const struct timespec *ts, char *buf, size_t len)
{
	struct tm tm;
	gmtime_r(&ts->tv_sec, &tm);
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, (int) (ts->tv_nsec / 1000));
}

static void
lease_rules(errs *e, json_t *obj, json_t *unknown)
{
	static const char *const top[]  = { "spec", NULL };
	static const char *const spec[] = { "holderIdentity",
		"leaseDurationSeconds", "acquireTime", "renewTime",
		"leaseTransitions", "strategy", "preferredHolder", NULL };
	prune_top(obj, top, unknown);
	prune_sub(obj, "spec", spec, unknown);
	json_t *sp = json_object_get(obj, "spec");
	if (sp == NULL || json_is_null(sp)) {
		json_object_set_new(obj, "spec", json_object());
		return;
	}
	if (!json_is_object(sp)) {
		err_add(e, "FieldValueTypeInvalid", "spec",
		    "Invalid value: must be an object");
		return;
	}
	static const char *const times[] = { "acquireTime", "renewTime",
		NULL };
	for (size_t i = 0; times[i] != NULL; i++) {
		json_t *v = json_object_get(sp, times[i]);
		if (v == NULL)
			continue;
		if (json_is_null(v)) {
			json_object_del(sp, times[i]);
			continue;
		}
		struct timespec ts;
		char            path[64];
		snprintf(path, sizeof(path), "spec.%s", times[i]);
		if (!json_is_string(v) ||
		    !parse_time(json_string_value(v), &ts)) {
			err_add(e, "FieldValueInvalid", path,
			    "Invalid value: must be an RFC 3339 time");
			continue;
		}
		char buf[80];
		format_micro(&ts, buf, sizeof(buf));
		json_object_set_new(sp, times[i], json_string(buf));
	}
	static const char *const ints[] = { "leaseDurationSeconds",
		"leaseTransitions", NULL };
	for (size_t i = 0; ints[i] != NULL; i++) {
		json_t *v = json_object_get(sp, ints[i]);
		char    path[64];
		snprintf(path, sizeof(path), "spec.%s", ints[i]);
		if (v == NULL)
			continue;
		if (json_is_null(v)) {
			json_object_del(sp, ints[i]);
			continue;
		}
		if (!json_is_integer(v)) {
			err_add(e, "FieldValueTypeInvalid", path,
			    "Invalid value: must be an integer");
			continue;
		}
		json_int_t n = json_integer_value(v);
		if (i == 0 && n <= 0)
			err_add(e, "FieldValueInvalid", path,
			    "Invalid value: %lld: must be greater than 0",
			    (long long) n);
		if (i == 1 && n < 0)
			err_add(e, "FieldValueInvalid", path,
			    "Invalid value: %lld: must be greater than or equal "
			    "to 0",
			    (long long) n);
	}
	json_t *h = json_object_get(sp, "holderIdentity");
	if (h != NULL && json_is_null(h))
		json_object_del(sp, "holderIdentity");
	else if (h != NULL && !json_is_string(h))
		err_add(e, "FieldValueTypeInvalid", "spec.holderIdentity",
		    "Invalid value: must be a string");
}

static void
configmap_rules(errs *e, json_t *obj, json_t *unknown)
{
	static const char *const top[] = { "data", "binaryData", "immutable",
		NULL };
	prune_top(obj, top, unknown);
	check_data_map(e, obj, "data", false);
	check_data_map(e, obj, "binaryData", true);
	json_t *im = json_object_get(obj, "immutable");
	if (im != NULL && json_is_null(im))
		json_object_del(obj, "immutable");
	else if (im != NULL && !json_is_boolean(im))
		err_add(e, "FieldValueTypeInvalid", "immutable",
		    "Invalid value: must be a boolean");
}

static void
secret_rules(errs *e, json_t *obj, json_t *unknown)
{
	static const char *const top[] = { "data", "stringData", "type",
		"immutable", NULL };
	prune_top(obj, top, unknown);
	check_data_map(e, obj, "data", true);
	check_data_map(e, obj, "stringData", false);
	json_t *sd = json_object_get(obj, "stringData");
	if (json_is_object(sd)) {
		json_t *data = mcf_json_object_ensure(obj, "data");
		const char *k;
		json_t     *v;
		json_object_foreach (sd, k, v) {
			if (!json_is_string(v))
				continue;
			char *enc = mcf_base64_encode(json_string_value(v),
			    json_string_length(v));
			json_object_set_new(data, k, json_string(enc));
			free(enc);
		}
	}
	json_object_del(obj, "stringData");
	json_t *type = json_object_get(obj, "type");
	if (type == NULL || json_is_null(type) ||
	    (json_is_string(type) && json_string_length(type) == 0))
		json_object_set_new(obj, "type", json_string("Opaque"));
	else if (!json_is_string(type))
		err_add(e, "FieldValueTypeInvalid", "type",
		    "Invalid value: must be a string");
}

static void
namespace_rules(errs *e, json_t *obj, json_t *unknown, bool create)
{
	static const char *const top[]    = { "spec", "status", NULL };
	static const char *const spec[]   = { "finalizers", NULL };
	static const char *const status[] = { "phase", "conditions", NULL };
	(void) e;
	prune_top(obj, top, unknown);
	prune_sub(obj, "spec", spec, unknown);
	prune_sub(obj, "status", status, unknown);
	json_t     *meta   = json_object_get(obj, "metadata");
	const char *name   = json_string_value(json_object_get(meta, "name"));
	json_t     *labels = mcf_json_object_ensure(meta, "labels");
	if (labels != NULL && name != NULL)
		json_object_set_new(labels, "kubernetes.io/metadata.name",
		    json_string(name));
	if (create) {
		json_t *sp = mcf_json_object_ensure(obj, "spec");
		if (sp != NULL && json_object_get(sp, "finalizers") == NULL)
			json_object_set_new(sp, "finalizers",
			    json_pack("[s]", "kubernetes"));
		json_t *st = json_object();
		json_object_set_new(st, "phase", json_string("Active"));
		json_object_set_new(obj, "status", st);
	}
}

/* Custom resources: prune, default and validate against the schema. */
static void
custom_rules(errs *e, const ks_type *t, json_t *obj, json_t *unknown)
{
	if (t->schema == NULL)
		return;
	ks_schema_result res = { 0 };
	ks_schema_apply(t->schema, obj, &res);
	for (size_t i = 0; i < res.unknown_count; i++)
		json_array_append_new(unknown, json_string(res.unknown[i]));
	for (size_t i = 0; i < res.count; i++)
		err_add(e, res.causes[i].reason, res.causes[i].field, "%s",
		    res.causes[i].message);
	ks_schema_result_fini(&res);
}

static void
crd_rules(errs *e, json_t *obj)
{
	ks_type **types = NULL;
	char      err[512];
	size_t    n = ks_types_from_crd(obj, &types, err, sizeof(err));
	if (n == 0) {
		const char *colon = strchr(err, ':');
		char        field[128];
		snprintf(field, sizeof(field), "%.*s",
		    colon ? (int) (colon - err) : 4, colon ? err : "spec");
		err_add(e, "FieldValueInvalid", field, "%s",
		    colon ? colon + 2 : err);
		return;
	}
	for (size_t i = 0; i < n; i++)
		ks_type_free(types[i]);
	free(types);
}

/* Applies the kind's rules, then reports unknown fields per
 * fieldValidation.  Returns -1 on failure. */
static int
kind_rules(const ks_type *t, json_t *obj, bool create, const char *name,
    const ks_admit_opts *o, ks_result *r)
{
	errs    e       = { 0 };
	json_t *unknown = json_array();
	switch (t->rules) {
	case KS_RULES_NAMESPACE:
		namespace_rules(&e, obj, unknown, create);
		break;
	case KS_RULES_CONFIGMAP:
		configmap_rules(&e, obj, unknown);
		break;
	case KS_RULES_SECRET:
		secret_rules(&e, obj, unknown);
		break;
	case KS_RULES_LEASE:
		lease_rules(&e, obj, unknown);
		break;
	case KS_RULES_EVENT:
	case KS_RULES_EVENT_V1:
		break; /* Events keep every field. */
	case KS_RULES_CRD:
		crd_rules(&e, obj);
		break;
	case KS_RULES_CUSTOM:
		custom_rules(&e, t, obj, unknown);
		break;
	}
	if (json_array_size(unknown) > 0 && o->fv != KS_FV_IGNORE) {
		char  *list = mcf_strdup("");
		size_t i;
		json_t *u;
		json_array_foreach (unknown, i, u) {
			char *next = mcf_asprintf("%s%sunknown field \"%s\"", list,
			    i ? ", " : "", json_string_value(u));
			free(list);
			list = next;
		}
		if (o->fv == KS_FV_STRICT) {
			char qk[256];
			qualified_kind(t, qk, sizeof(qk));
			ks_fail(r, 400, "BadRequest", t, name,
			    "%s in body is invalid: strict decoding error: %s",
			    qk, list);
			free(list);
			json_decref(unknown);
			json_decref(e.causes);
			return -1;
		}
		free(r->warning);
		r->warning = list;
	}
	json_decref(unknown);
	return err_finish(&e, t, name, r);
}

static void
set_type_meta(const ks_type *t, json_t *obj)
{
	char gv[256];
	ks_type_gv(t, gv, sizeof(gv));
	/* Put kind and apiVersion first, as servers print them. */
	json_t *copy = json_copy(obj);
	json_object_clear(obj);
	json_object_set_new(obj, "kind", json_string(t->kind));
	json_object_set_new(obj, "apiVersion", json_string(gv));
	const char *k;
	json_t     *v;
	json_object_foreach (copy, k, v) {
		if (strcmp(k, "kind") != 0 && strcmp(k, "apiVersion") != 0)
			json_object_set(obj, k, v);
	}
	json_decref(copy);
}

static bool
has_generation(const ks_type *t)
{
	return t->rules == KS_RULES_CUSTOM || t->rules == KS_RULES_CRD;
}

/* Namespace lifecycle checks for a create in `ns`. */
static int
check_namespace(ks_plane *p, const ks_type *t, const char *ns,
    const char *name, ks_result *r)
{
	const ks_type *nst = ks_plane_type(p, "", "v1", "namespaces");
	const json_t  *nso = ks_plane_get(p, nst, NULL, ns);
	if (nso == NULL)
		return ks_fail(r, 404, "NotFound", nst, ns,
		    "namespaces \"%s\" not found", ns);
	if (mcf_json_path(nso, "metadata.deletionTimestamp") != NULL)
		return ks_fail(r, 403, "Forbidden", t, name,
		    "%s \"%s\" is forbidden: unable to create new content in "
		    "namespace %s because it is being terminated",
		    t->resource, name, ns);
	return 0;
}

int
ks_admit_create(ks_sim *s, ks_plane *p, const ks_type *t, const char *ns,
    json_t *obj, const ks_admit_opts *o, ks_result *r)
{
	json_t *meta = json_object_get(obj, "metadata");
	if (meta == NULL || json_is_null(meta)) {
		meta = json_object();
		json_object_set_new(obj, "metadata", meta);
	}
	if (!json_is_object(meta))
		return ks_fail(r, 400, "BadRequest", t, NULL,
		    "metadata must be an object");
	const char *name = json_string_value(json_object_get(meta, "name"));
	const char *gen =
	    json_string_value(json_object_get(meta, "generateName"));
	if ((name == NULL || name[0] == '\0') && gen != NULL &&
	    gen[0] != '\0') {
		static const char alphabet[] = "bcdfghjklmnpqrstvwxz2456789";
		for (int attempt = 0; attempt < 8; attempt++) {
			unsigned char rnd[5];
			if (RAND_bytes(rnd, sizeof(rnd)) != 1)
				for (int i = 0; i < 5; i++)
					rnd[i] = (unsigned char) rand();
			char suffix[6];
			for (int i = 0; i < 5; i++)
				suffix[i] = alphabet[rnd[i] % 27];
			suffix[5] = '\0';
			char *cand = mcf_asprintf("%.58s%s", gen, suffix);
			json_object_set_new(meta, "name", json_string(cand));
			bool taken = ks_plane_get(p, t, ns, cand) != NULL;
			free(cand);
			if (!taken)
				break;
		}
		name = json_string_value(json_object_get(meta, "name"));
	}
	if (name == NULL || name[0] == '\0') {
		errs e = { 0 };
		err_add(&e, "FieldValueRequired", "metadata.name",
		    "Required value: name or generateName is required");
		return err_finish(&e, t, "", r);
	}
	char *name_copy = mcf_strdup(name);
	int   rc        = -1;
	if (ks_admit_name(t, name_copy, r) != 0)
		goto out;
	const char *rv =
	    json_string_value(json_object_get(meta, "resourceVersion"));
	if (rv != NULL && rv[0] != '\0') {
		ks_fail(r, 500, "InternalError", t, name_copy,
		    "resourceVersion should not be set on objects to be "
		    "created");
		goto out;
	}
	if (t->namespaced) {
		const char *bns =
		    json_string_value(json_object_get(meta, "namespace"));
		if (bns != NULL && bns[0] != '\0' && strcmp(bns, ns) != 0) {
			ks_fail(r, 400, "BadRequest", t, name_copy,
			    "the namespace of the provided object does not "
			    "match the namespace sent on the request");
			goto out;
		}
		json_object_set_new(meta, "namespace", json_string(ns));
		if (check_namespace(p, t, ns, name_copy, r) != 0)
			goto out;
	} else {
		json_object_del(meta, "namespace");
	}
	errs e = { 0 };
	clean_metadata(&e, meta);
	if (err_finish(&e, t, name_copy, r) != 0)
		goto out;
	json_object_del(meta, "deletionTimestamp");
	json_object_del(meta, "deletionGracePeriodSeconds");
	json_object_del(meta, "resourceVersion");
	char uid[40], now[40];
	ks_uuid(uid);
	ks_sim_time(s, now, sizeof(now));
	json_object_set_new(meta, "uid", json_string(uid));
	json_object_set_new(meta, "creationTimestamp", json_string(now));
	if (has_generation(t))
		json_object_set_new(meta, "generation", json_integer(1));
	else
		json_object_del(meta, "generation");
	if (t->has_status && t->rules != KS_RULES_NAMESPACE)
		json_object_del(obj, "status");
	set_type_meta(t, obj);
	rc = kind_rules(t, obj, true, name_copy, o, r);
out:
	free(name_copy);
	return rc;
}

/* Everything outside metadata and status (what bumps generation). */
static bool
spec_changed(const json_t *a, const json_t *b)
{
	json_t *ca = json_copy((json_t *) a);
	json_t *cb = json_copy((json_t *) b);
	json_object_del(ca, "metadata");
	json_object_del(cb, "metadata");
	json_object_del(ca, "status");
	json_object_del(cb, "status");
	bool changed = !json_equal(ca, cb);
	json_decref(ca);
	json_decref(cb);
	return changed;
}

int
ks_admit_update(ks_sim *s, ks_plane *p, const ks_type *t,
    const json_t *stored, json_t *obj, bool status_sub,
    const ks_admit_opts *o, ks_result *r)
{
	(void) s;
	(void) p;
	const json_t *smeta = json_object_get(stored, "metadata");
	const char   *name = json_string_value(json_object_get(smeta, "name"));
	json_t       *meta = json_object_get(obj, "metadata");
	if (meta == NULL || json_is_null(meta)) {
		meta = json_object();
		json_object_set_new(obj, "metadata", meta);
	}
	if (!json_is_object(meta))
		return ks_fail(r, 400, "BadRequest", t, name,
		    "metadata must be an object");
	const char *bname = json_string_value(json_object_get(meta, "name"));
	if (bname != NULL && bname[0] != '\0' && strcmp(bname, name) != 0)
		return ks_fail(r, 400, "BadRequest", t, name,
		    "the name of the object (%s) does not match the name on "
		    "the URL (%s)",
		    bname, name);
	json_object_set_new(meta, "name", json_string(name));
	if (t->namespaced) {
		const char *sns =
		    json_string_value(json_object_get(smeta, "namespace"));
		const char *bns =
		    json_string_value(json_object_get(meta, "namespace"));
		if (bns != NULL && bns[0] != '\0' && strcmp(bns, sns) != 0)
			return ks_fail(r, 400, "BadRequest", t, name,
			    "the namespace of the provided object does not "
			    "match the namespace sent on the request");
		json_object_set_new(meta, "namespace", json_string(sns));
	} else {
		json_object_del(meta, "namespace");
	}
	const char *suid = json_string_value(json_object_get(smeta, "uid"));
	const char *buid = json_string_value(json_object_get(meta, "uid"));
	if (buid != NULL && buid[0] != '\0' && strcmp(buid, suid) != 0) {
		errs e = { 0 };
		err_add(&e, "FieldValueInvalid", "metadata.uid",
		    "Invalid value: \"%s\": field is immutable", buid);
		return err_finish(&e, t, name, r);
	}
	static const char *const deletion_fields[] = { "deletionTimestamp",
		"deletionGracePeriodSeconds", NULL };
	for (size_t i = 0; !status_sub && deletion_fields[i] != NULL; i++) {
		json_t *bv = json_object_get(meta, deletion_fields[i]);
		json_t *sv = json_object_get(smeta, deletion_fields[i]);
		if (bv != NULL && !json_is_null(bv) && sv == NULL) {
			char *val  = mcf_json_dump(bv);
			char  field[64];
			errs  e    = { 0 };
			snprintf(field, sizeof(field), "metadata.%s",
			    deletion_fields[i]);
			err_add(&e, "FieldValueInvalid", field,
			    "Invalid value: %s: field is immutable", val);
			free(val);
			return err_finish(&e, t, name, r);
		}
	}
	if (status_sub) {
		/* Only status comes from the body; metadata changes are
		 * ignored on /status. */
		json_t *status = json_object_get(obj, "status");
		json_t *copy   = json_deep_copy(stored);
		if (status != NULL)
			json_object_set(copy, "status", status);
		else
			json_object_del(copy, "status");
		json_object_clear(obj);
		json_object_update(obj, copy);
		json_decref(copy);
		meta = json_object_get(obj, "metadata");
	} else {
		errs e = { 0 };
		clean_metadata(&e, meta);
		if (err_finish(&e, t, name, r) != 0)
			return -1;
		static const char *const sys[] = { "uid", "creationTimestamp",
			"deletionTimestamp", "deletionGracePeriodSeconds",
			"generation", NULL };
		for (size_t i = 0; sys[i] != NULL; i++) {
			json_t *v = json_object_get(smeta, sys[i]);
			if (v != NULL)
				json_object_set(meta, sys[i], v);
			else
				json_object_del(meta, sys[i]);
		}
		if (t->has_status) {
			json_t *st = json_object_get(stored, "status");
			if (st != NULL)
				json_object_set(obj, "status", st);
			else
				json_object_del(obj, "status");
		}
		if (json_object_get(smeta, "deletionTimestamp") != NULL) {
			json_t *sf = json_object_get(smeta, "finalizers");
			json_t *nf = json_object_get(meta, "finalizers");
			json_t *added = json_array();
			size_t  i;
			json_t *f;
			json_array_foreach (nf, i, f) {
				bool   found = false;
				size_t j;
				json_t *g;
				json_array_foreach (sf, j, g)
					if (json_equal(f, g))
						found = true;
				if (!found)
					json_array_append(added, f);
			}
			if (json_array_size(added) > 0) {
				/* Go's %#v of a []string, as the real
				 * message prints it. */
				char  *list = mcf_strdup("[]string{");
				size_t k;
				json_t *a;
				json_array_foreach (added, k, a) {
					char *q    = mcf_json_dump(a);
					char *next = mcf_asprintf("%s%s%s", list,
					    k ? ", " : "", q);
					free(q);
					free(list);
					list = next;
				}
				char *closed = mcf_asprintf("%s}", list);
				free(list);
				list = closed;
				errs  e2   = { 0 };
				err_add(&e2, "FieldValueForbidden",
				    "metadata.finalizers",
				    "Forbidden: no new finalizers can be added "
				    "if the object is being deleted, found new "
				    "finalizers %s",
				    list);
				free(list);
				json_decref(added);
				return err_finish(&e2, t, name, r);
			}
			json_decref(added);
		}
	}
	set_type_meta(t, obj);
	if (kind_rules(t, obj, false, name, o, r) != 0)
		return -1;
	if (has_generation(t)) {
		json_int_t g =
		    json_integer_value(json_object_get(smeta, "generation"));
		if (!status_sub && spec_changed(stored, obj))
			g++;
		json_object_set_new(json_object_get(obj, "metadata"),
		    "generation", json_integer(g));
	}
	return 0;
}

json_t *
ks_admit_namespace(ks_sim *s, const char *name, const json_t *labels)
{
	char uid[40], now[40];
	ks_uuid(uid);
	ks_sim_time(s, now, sizeof(now));
	json_t *l = labels ? json_deep_copy(labels) : json_object();
	json_object_set_new(l, "kubernetes.io/metadata.name", json_string(name));
	return json_pack("{s:s,s:s,s:{s:s,s:s,s:s,s:o},s:{s:[s]},s:{s:s}}",
	    "kind", "Namespace", "apiVersion", "v1", "metadata", "name", name,
	    "uid", uid, "creationTimestamp", now, "labels", l, "spec",
	    "finalizers", "kubernetes", "status", "phase", "Active");
}

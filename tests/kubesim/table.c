/*
 * table.c — Table rendering for kubectl get.
 *
 * The cells are what the real printers compute (pkg/printers/internalversion
 * for the built-in kinds, apiextensions' column evaluator for CRDs); only
 * the JSONPath forms that printer columns actually use are understood.
 */
#include "table.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "json.h"

bool
ks_table_wanted(const char *accept)
{
	if (accept == NULL)
		return false;
	/* The first media type decides: kubectl lists Table first. */
	const char *comma = strchr(accept, ',');
	size_t      n     = comma ? (size_t) (comma - accept) : strlen(accept);
	char        first[256];
	snprintf(first, sizeof(first), "%.*s", (int) (n < 255 ? n : 255),
	    accept);
	return strstr(first, "as=Table") != NULL &&
	    strstr(first, "g=meta.k8s.io") != NULL;
}

void
ks_table_human_duration(long long s, char *buf, size_t len)
{
	if (s < -1) {
		snprintf(buf, len, "<invalid>");
		return;
	}
	if (s < 0)
		s = 0;
	long long m = s / 60, h = s / 3600, d = h / 24;
	if (s < 120)
		snprintf(buf, len, "%llds", s);
	else if (m < 10)
		s % 60 ? snprintf(buf, len, "%lldm%llds", m, s % 60)
		       : snprintf(buf, len, "%lldm", m);
	else if (m < 180)
		snprintf(buf, len, "%lldm", m);
	else if (h < 8)
		m % 60 ? snprintf(buf, len, "%lldh%lldm", h, m % 60)
		       : snprintf(buf, len, "%lldh", h);
	else if (h < 48)
		snprintf(buf, len, "%lldh", h);
	else if (h < 24 * 8)
		h % 24 ? snprintf(buf, len, "%lldd%lldh", d, h % 24)
		       : snprintf(buf, len, "%lldd", d);
	else if (h < 24 * 365 * 2)
		snprintf(buf, len, "%lldd", d);
	else if (h < 24 * 365 * 8)
		d % 365 ? snprintf(buf, len, "%lldy%lldd", d / 365, d % 365)
			: snprintf(buf, len, "%lldy", d / 365);
	else
		snprintf(buf, len, "%lldy", d / 365);
}

static json_t *
col(const char *name, const char *type, const char *format,
    const char *desc, int priority)
{
	return json_pack("{s:s,s:s,s:s,s:s,s:i}", "name", name, "type", type,
	    "format", format, "description", desc, "priority", priority);
}

#define NAME_DESC                                                           \
	"Name must be unique within a namespace. Is required when creating " \
	"resources, although some resources may allow a client to request "  \
	"the generation of an appropriate name automatically."
#define AGE_DESC                                                             \
	"CreationTimestamp is a timestamp representing the server time when " \
	"this object was created."

json_t *
ks_table_columns(const ks_type *t)
{
	json_t *c = json_array();
	json_array_append_new(c, col("Name", "string", "name", NAME_DESC, 0));
	if (t->printer_columns != NULL) {
		size_t  i;
		json_t *pc;
		json_array_foreach (t->printer_columns, i, pc) {
			const char *n =
			    json_string_value(json_object_get(pc, "name"));
			const char *ty =
			    json_string_value(json_object_get(pc, "type"));
			const char *f =
			    json_string_value(json_object_get(pc, "format"));
			const char *d = json_string_value(
			    json_object_get(pc, "description"));
			json_int_t prio = json_integer_value(
			    json_object_get(pc, "priority"));
			json_array_append_new(c,
			    col(n ? n : "", ty ? ty : "string", f ? f : "",
				d ? d : "", (int) prio));
		}
		return c;
	}
	switch (t->rules) {
	case KS_RULES_CONFIGMAP:
		json_array_append_new(c, col("Data", "integer", "",
		    "Data contains the configuration data.", 0));
		break;
	case KS_RULES_SECRET:
		json_array_append_new(c, col("Type", "string", "",
		    "The type of the secret.", 0));
		json_array_append_new(c, col("Data", "integer", "",
		    "The number of entries in the secret data.", 0));
		break;
	case KS_RULES_NAMESPACE:
		json_array_append_new(c, col("Status", "string", "",
		    "The status of the namespace.", 0));
		break;
	case KS_RULES_LEASE:
		json_array_append_new(c, col("Holder", "string", "",
		    "The holder of the lease.", 0));
		break;
	case KS_RULES_CUSTOM:
		if (strcmp(t->resource, "projects") == 0 &&
		    strcmp(t->group, "resourcemanager.miloapis.com") == 0)
			json_array_append_new(c, col("Ready", "string", "",
			    "", 0));
		break;
	default:
		break;
	}
	json_array_append_new(c, col("Age", "string", "", AGE_DESC, 0));
	return c;
}

/* Evaluates the printer-column JSONPath subset: ".a.b", and ".a[?(@.k==
 * 'v')].b" over arrays.  Returns a borrowed value or NULL. */
static const json_t *
eval_path(const json_t *obj, const char *path)
{
	const json_t *cur = obj;
	const char   *p   = path;
	while (cur != NULL && *p != '\0') {
		if (*p == '.') {
			p++;
			size_t n = strcspn(p, ".[");
			char   key[256];
			snprintf(key, sizeof(key), "%.*s", (int) (n < 255 ? n : 255),
			    p);
			cur = json_object_get(cur, key);
			p += n;
		} else if (strncmp(p, "[?(@.", 5) == 0) {
			p += 5;
			const char *eq  = strstr(p, "==");
			const char *end = strstr(p, ")]");
			if (eq == NULL || end == NULL || eq > end)
				return NULL;
			char field[128], want[256];
			snprintf(field, sizeof(field), "%.*s", (int) (eq - p), p);
			const char *v  = eq + 2;
			size_t      vl = (size_t) (end - v);
			if (vl >= 2 && (v[0] == '\'' || v[0] == '"')) {
				v++;
				vl -= 2;
			}
			snprintf(want, sizeof(want), "%.*s", (int) vl, v);
			const json_t *found = NULL;
			size_t        i;
			json_t       *it;
			json_array_foreach (cur, i, it) {
				const char *s = json_string_value(
				    json_object_get(it, field));
				if (s != NULL && strcmp(s, want) == 0) {
					found = it;
					break;
				}
			}
			cur = found;
			p   = end + 2;
		} else {
			return NULL;
		}
	}
	return cur;
}

static json_t *
age_cell(const json_t *obj, time_t now)
{
	const char *ts = mcf_json_path_str(obj, "metadata.creationTimestamp");
	struct tm   tm = { 0 };
	if (ts == NULL || strptime(ts, "%Y-%m-%dT%H:%M:%SZ", &tm) == NULL)
		return json_string("<unknown>");
	char buf[32];
	ks_table_human_duration((long long) (now - timegm(&tm)), buf,
	    sizeof(buf));
	return json_string(buf);
}

static json_t *
partial_meta(const json_t *obj)
{
	return json_pack("{s:s,s:s,s:O}", "kind", "PartialObjectMetadata",
	    "apiVersion", "meta.k8s.io/v1", "metadata",
	    json_object_get(obj, "metadata"));
}

json_t *
ks_table_row(const ks_type *t, const json_t *obj, time_t now)
{
	json_t     *cells = json_array();
	const char *name  = mcf_json_path_str(obj, "metadata.name");
	json_array_append_new(cells, json_string(name ? name : ""));
	if (t->printer_columns != NULL) {
		size_t  i;
		json_t *pc;
		json_array_foreach (t->printer_columns, i, pc) {
			const char *jp =
			    json_string_value(json_object_get(pc, "jsonPath"));
			const char *ty =
			    json_string_value(json_object_get(pc, "type"));
			const json_t *v = jp ? eval_path(obj, jp) : NULL;
			if (ty != NULL && strcmp(ty, "date") == 0 &&
			    json_is_string(v)) {
				struct tm tm = { 0 };
				char      buf[32];
				if (strptime(json_string_value(v),
					"%Y-%m-%dT%H:%M:%SZ", &tm) != NULL) {
					ks_table_human_duration(
					    (long long) (now - timegm(&tm)), buf,
					    sizeof(buf));
					json_array_append_new(cells,
					    json_string(buf));
					continue;
				}
			}
			json_array_append_new(cells,
			    v ? json_deep_copy(v) : json_null());
		}
	} else {
		switch (t->rules) {
		case KS_RULES_CONFIGMAP:
			json_array_append_new(cells,
			    json_integer((json_int_t) (json_object_size(
				json_object_get(obj, "data")) +
				json_object_size(
				    json_object_get(obj, "binaryData")))));
			break;
		case KS_RULES_SECRET: {
			const char *ty = mcf_json_path_str(obj, "type");
			json_array_append_new(cells, json_string(ty ? ty : ""));
			json_array_append_new(cells,
			    json_integer((json_int_t) json_object_size(
				json_object_get(obj, "data"))));
			break;
		}
		case KS_RULES_NAMESPACE: {
			const char *ph = mcf_json_path_str(obj, "status.phase");
			json_array_append_new(cells, json_string(ph ? ph : ""));
			break;
		}
		case KS_RULES_LEASE: {
			const char *h =
			    mcf_json_path_str(obj, "spec.holderIdentity");
			json_array_append_new(cells,
			    json_string(h ? h : "<none>"));
			break;
		}
		case KS_RULES_CUSTOM:
			if (strcmp(t->resource, "projects") == 0 &&
			    strcmp(t->group, "resourcemanager.miloapis.com") ==
				0) {
				const json_t *v = eval_path(obj,
				    ".status.conditions[?(@.type=='Ready')]"
				    ".status");
				json_array_append_new(cells,
				    json_string(json_is_string(v)
					    ? json_string_value(v)
					    : "<none>"));
			}
			break;
		default:
			break;
		}
		json_array_append_new(cells, age_cell(obj, now));
	}
	return json_pack("{s:o,s:o}", "cells", cells, "object",
	    partial_meta(obj));
}

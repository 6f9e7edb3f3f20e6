/*
 * types.c — built-in resource types and the types a CRD defines.
 *
 * The built-in table is the one of KUBE_API.md §1.2 plus the additions of
 * part 1 (events, customresourcedefinitions).  Project and
 * ProjectControlPlane are custom resources in real Milo, so they carry a
 * compiled schema (Milo's openAPIV3Schema) and go through the same
 * admission path as any CRD-defined type.  The schemas are compiled once,
 * lazily, on first use from the loop thread.
 */
#include "types.h"

#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "log.h"

static const char *const ns_short[]  = { "ns", NULL };
static const char *const cm_short[]  = { "cm", NULL };
static const char *const ev_short[]  = { "ev", NULL };
static const char *const crd_short[] = { "crd", "crds", NULL };
static const char *const api_ext_cat[] = { "api-extensions", NULL };

static const char *const meta_fields[] = { "metadata.name",
	"metadata.namespace", NULL };
static const char *const ns_fields[]     = { "metadata.name",
	    "metadata.namespace", "status.phase", NULL };
static const char *const secret_fields[] = { "metadata.name",
	"metadata.namespace", "type", NULL };
static const char *const event_fields[]  = { "metadata.name",
	 "metadata.namespace", "involvedObject.kind",
	 "involvedObject.namespace", "involvedObject.name",
	 "involvedObject.uid", "involvedObject.apiVersion",
	 "involvedObject.resourceVersion", "involvedObject.fieldPath", "reason",
	 "reportingComponent", "source", "type", NULL };
static const char *const event_v1_fields[] = { "metadata.name",
	"metadata.namespace", "regarding.kind", "regarding.namespace",
	"regarding.name", "regarding.uid", "reason", "type", NULL };

/* metav1.Condition as Milo's CRDs declare it (KUBE_API.md §5.1). */
#define CONDITION_ITEMS                                                      \
	"{\"type\":\"object\",\"required\":[\"lastTransitionTime\","        \
	"\"message\",\"reason\",\"status\",\"type\"],\"properties\":{"      \
	"\"type\":{\"type\":\"string\",\"maxLength\":316,\"pattern\":"      \
	"\"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\\\.[a-z0-9]([-a-z0-9]*[a-z0-9])" \
	"?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$\"},"              \
	"\"status\":{\"type\":\"string\",\"enum\":[\"True\",\"False\","     \
	"\"Unknown\"]},"                                                     \
	"\"observedGeneration\":{\"type\":\"integer\",\"format\":\"int64\","\
	"\"minimum\":0},"                                                    \
	"\"lastTransitionTime\":{\"type\":\"string\",\"format\":"           \
	"\"date-time\"},"                                                    \
	"\"reason\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":1024,"\
	"\"pattern\":\"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$\"},"         \
	"\"message\":{\"type\":\"string\",\"maxLength\":32768}}}"

static const char project_schema[] =
    "{\"type\":\"object\",\"required\":[\"spec\"],\"properties\":{"
    "\"spec\":{\"type\":\"object\",\"required\":[\"ownerRef\"],"
    "\"properties\":{\"ownerRef\":{\"type\":\"object\",\"required\":"
    "[\"kind\",\"name\"],\"properties\":{\"kind\":{\"type\":\"string\","
    "\"enum\":[\"Organization\"]},\"name\":{\"type\":\"string\"}}}}},"
    "\"status\":{\"type\":\"object\",\"properties\":{\"conditions\":{"
    "\"type\":\"array\",\"default\":[{\"type\":\"Ready\",\"status\":"
    "\"Unknown\",\"reason\":\"Unknown\",\"message\":\"Waiting for control "
    "plane to reconcile\",\"lastTransitionTime\":"
    "\"1970-01-01T00:00:00Z\"}],\"items\":" CONDITION_ITEMS "}}}}}";

static const char pcp_schema[] =
    "{\"type\":\"object\",\"required\":[\"spec\"],\"properties\":{"
    "\"spec\":{\"type\":\"object\"},"
    "\"status\":{\"type\":\"object\",\"default\":{\"conditions\":[{"
    "\"type\":\"ControlPlaneReady\",\"status\":\"False\",\"reason\":"
    "\"Creating\",\"message\":\"Creating a new control plane for the "
    "project\",\"lastTransitionTime\":\"1970-01-01T00:00:00Z\"}]},"
    "\"properties\":{\"conditions\":{\"type\":\"array\",\"items\":"
    CONDITION_ITEMS "}}}}}";

static ks_type t_namespaces = {
	.group = "", .version = "v1", .resource = "namespaces",
	.singular = "namespace", .kind = "Namespace",
	.list_kind = "NamespaceList", .namespaced = false,
	.has_status = true, .rules = KS_RULES_NAMESPACE,
	.short_names = ns_short, .fields = ns_fields,
};
static ks_type t_configmaps = {
	.group = "", .version = "v1", .resource = "configmaps",
	.singular = "configmap", .kind = "ConfigMap",
	.list_kind = "ConfigMapList", .namespaced = true,
	.rules = KS_RULES_CONFIGMAP, .short_names = cm_short,
	.fields = meta_fields,
};
static ks_type t_secrets = {
	.group = "", .version = "v1", .resource = "secrets",
	.singular = "secret", .kind = "Secret", .list_kind = "SecretList",
	.namespaced = true, .rules = KS_RULES_SECRET,
	.fields = secret_fields,
};
static ks_type t_events = {
	.group = "", .version = "v1", .resource = "events",
	.singular = "event", .kind = "Event", .list_kind = "EventList",
	.namespaced = true, .rules = KS_RULES_EVENT,
	.short_names = ev_short, .fields = event_fields,
};
static ks_type t_events_v1 = {
	.group = "events.k8s.io", .version = "v1", .resource = "events",
	.singular = "event", .kind = "Event", .list_kind = "EventList",
	.namespaced = true, .rules = KS_RULES_EVENT_V1,
	.short_names = ev_short, .fields = event_v1_fields,
};
static ks_type t_leases = {
	.group = "coordination.k8s.io", .version = "v1", .resource = "leases",
	.singular = "lease", .kind = "Lease", .list_kind = "LeaseList",
	.namespaced = true, .rules = KS_RULES_LEASE, .fields = meta_fields,
};
static ks_type t_crds = {
	.group = "apiextensions.k8s.io", .version = "v1",
	.resource = "customresourcedefinitions",
	.singular = "customresourcedefinition",
	.kind = "CustomResourceDefinition",
	.list_kind = "CustomResourceDefinitionList", .namespaced = false,
	.has_status = true, .rules = KS_RULES_CRD, .short_names = crd_short,
	.categories = api_ext_cat, .fields = meta_fields,
};
static ks_type t_projects = {
	.group = "resourcemanager.miloapis.com", .version = "v1alpha1",
	.resource = "projects", .singular = "project", .kind = "Project",
	.list_kind = "ProjectList", .namespaced = false, .has_status = true,
	.root_only = true, .rules = KS_RULES_CUSTOM, .fields = meta_fields,
};
static ks_type t_pcps = {
	.group = "infrastructure.miloapis.com", .version = "v1alpha1",
	.resource = "projectcontrolplanes", .singular = "projectcontrolplane",
	.kind = "ProjectControlPlane", .list_kind = "ProjectControlPlaneList",
	.namespaced = false, .has_status = true, .root_only = true,
	.rules = KS_RULES_CUSTOM, .fields = meta_fields,
};

/* Discovery order: core first, then groups in a stable order. */
static const ks_type *const builtin[] = {
	&t_namespaces,
	&t_configmaps,
	&t_secrets,
	&t_events,
	&t_events_v1,
	&t_leases,
	&t_crds,
	&t_projects,
	&t_pcps,
};

static ks_schema *
compile_static(const char *text)
{
	char          err[256];
	json_error_t  jerr;
	json_t       *js = json_loads(text, 0, &jerr);
	if (js == NULL)
		mcf_panic("built-in schema is not JSON");
	ks_schema *s = ks_schema_compile(js, err, sizeof(err));
	json_decref(js);
	if (s == NULL) {
		mcf_log_error("KS-SCHEMA", "built-in schema: %s", err);
		mcf_panic("built-in schema does not compile");
	}
	return s;
}

const ks_type *const *
ks_types_builtin(size_t *count)
{
	/* Compiled once on the loop thread (kubesim's only thread that
	 * handles requests); the static types never change afterwards. */
	if (t_projects.schema == NULL) {
		t_projects.schema = compile_static(project_schema);
		t_pcps.schema     = compile_static(pcp_schema);
	}
	*count = sizeof(builtin) / sizeof(builtin[0]);
	return builtin;
}

void
ks_type_gr(const ks_type *t, char *buf, size_t len)
{
	if (t->group[0] == '\0')
		snprintf(buf, len, "%s", t->resource);
	else
		snprintf(buf, len, "%s.%s", t->resource, t->group);
}

void
ks_type_gv(const ks_type *t, char *buf, size_t len)
{
	if (t->group[0] == '\0')
		snprintf(buf, len, "%s", t->version);
	else
		snprintf(buf, len, "%s/%s", t->group, t->version);
}

bool
ks_type_is_custom(const ks_type *t)
{
	return t->rules == KS_RULES_CUSTOM;
}

/* Copies a JSON array of strings into a new NULL-terminated vector. */
static const char *const *
strvec(const json_t *arr)
{
	if (!json_is_array(arr) || json_array_size(arr) == 0)
		return NULL;
	size_t       n = json_array_size(arr);
	const char **v = mcf_calloc(n + 1, sizeof(*v));
	size_t       j = 0;
	for (size_t i = 0; i < n; i++) {
		const char *s = json_string_value(json_array_get(arr, i));
		if (s != NULL)
			v[j++] = mcf_strdup(s);
	}
	return v;
}

static void
strvec_free(const char *const *v)
{
	if (v == NULL)
		return;
	for (size_t i = 0; v[i] != NULL; i++)
		free((char *) v[i]);
	free((void *) v);
}

static bool
dns_label(const char *s, size_t max)
{
	size_t n = strlen(s);
	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    (c == '-' && i > 0 && i + 1 < n);
		if (!ok)
			return false;
	}
	return true;
}

size_t
ks_types_from_crd(const json_t *crd, ks_type ***out, char *err,
    size_t errlen)
{
	const json_t *spec  = json_object_get(crd, "spec");
	const json_t *names = json_object_get(spec, "names");
	const char   *group = json_string_value(json_object_get(spec, "group"));
	const char   *plural =
	    json_string_value(json_object_get(names, "plural"));
	const char *kind  = json_string_value(json_object_get(names, "kind"));
	const char *scope = json_string_value(json_object_get(spec, "scope"));
	const char *name =
	    json_string_value(json_object_get(json_object_get(crd, "metadata"),
		"name"));
	*out = NULL;
	if (!json_is_object(spec)) {
		snprintf(err, errlen, "spec: Required value");
		return 0;
	}
	if (group == NULL || group[0] == '\0' || strchr(group, '.') == NULL) {
		snprintf(err, errlen,
		    "spec.group: Invalid value: \"%s\": should be a domain with "
		    "at least one dot",
		    group ? group : "");
		return 0;
	}
	if (plural == NULL || !dns_label(plural, 63)) {
		snprintf(err, errlen,
		    "spec.names.plural: Invalid value: \"%s\": a lowercase RFC "
		    "1123 label must consist of lower case alphanumeric "
		    "characters or '-'",
		    plural ? plural : "");
		return 0;
	}
	if (kind == NULL || kind[0] == '\0') {
		snprintf(err, errlen, "spec.names.kind: Required value");
		return 0;
	}
	if (scope == NULL ||
	    (strcmp(scope, "Namespaced") != 0 && strcmp(scope, "Cluster") != 0)) {
		snprintf(err, errlen,
		    "spec.scope: Unsupported value: \"%s\": supported values: "
		    "\"Cluster\", \"Namespaced\"",
		    scope ? scope : "");
		return 0;
	}
	char want[512];
	snprintf(want, sizeof(want), "%s.%s", plural, group);
	if (name == NULL || strcmp(name, want) != 0) {
		snprintf(err, errlen,
		    "metadata.name: Invalid value: \"%s\": must be spec.names."
		    "plural+\".\"+spec.group",
		    name ? name : "");
		return 0;
	}
	const json_t *versions = json_object_get(spec, "versions");
	if (!json_is_array(versions) || json_array_size(versions) == 0) {
		snprintf(err, errlen, "spec.versions: Invalid value: null: must "
				      "have exactly one version marked as "
				      "storage version");
		return 0;
	}
	size_t    n     = json_array_size(versions);
	ks_type **types = mcf_calloc(n, sizeof(*types));
	size_t    count = 0;
	for (size_t i = 0; i < n; i++) {
		const json_t *v     = json_array_get(versions, i);
		const char   *vname = json_string_value(json_object_get(v, "name"));
		if (vname == NULL || !dns_label(vname, 63)) {
			snprintf(err, errlen,
			    "spec.versions[%zu].name: Invalid value: \"%s\"", i,
			    vname ? vname : "");
			goto fail;
		}
		if (json_is_false(json_object_get(v, "served")))
			continue;
		const json_t *oas = json_object_get(
		    json_object_get(v, "schema"), "openAPIV3Schema");
		ks_schema *schema = NULL;
		if (json_is_object(oas)) {
			char serr[200];
			schema = ks_schema_compile(oas, serr, sizeof(serr));
			if (schema == NULL) {
				snprintf(err, errlen,
				    "spec.versions[%zu].schema.openAPIV3Schema: "
				    "Invalid value: %s",
				    i, serr);
				goto fail;
			}
		} else {
			/* No schema: keep every field, as
			 * x-kubernetes-preserve-unknown-fields would. */
			json_t *any = json_pack("{s:s,s:b}", "type", "object",
			    "x-kubernetes-preserve-unknown-fields", 1);
			char    serr[200];
			schema = ks_schema_compile(any, serr, sizeof(serr));
			json_decref(any);
		}
		ks_type *t   = mcf_calloc(1, sizeof(*t));
		t->group     = mcf_strdup(group);
		t->version   = mcf_strdup(vname);
		t->resource  = mcf_strdup(plural);
		const char *singular =
		    json_string_value(json_object_get(names, "singular"));
		t->singular = mcf_strdup(singular ? singular : "");
		t->kind     = mcf_strdup(kind);
		const char *lk =
		    json_string_value(json_object_get(names, "listKind"));
		t->list_kind  = lk ? mcf_strdup(lk) : mcf_asprintf("%sList", kind);
		t->namespaced = strcmp(scope, "Namespaced") == 0;
		t->has_status = json_is_object(json_object_get(
		    json_object_get(v, "subresources"), "status"));
		t->rules       = KS_RULES_CUSTOM;
		t->short_names = strvec(json_object_get(names, "shortNames"));
		t->categories  = strvec(json_object_get(names, "categories"));
		static const char *const f[] = { "metadata.name",
			"metadata.namespace", NULL };
		t->fields   = f;
		t->schema   = schema;
		t->crd_name = mcf_strdup(name);
		json_t *cols =
		    json_object_get(v, "additionalPrinterColumns");
		t->printer_columns = json_is_array(cols) ? json_deep_copy(cols)
							 : NULL;
		types[count++] = t;
	}
	if (count == 0) {
		snprintf(err, errlen, "spec.versions: Invalid value: must have "
				      "at least one served version");
		goto fail;
	}
	*out = types;
	return count;
fail:
	for (size_t i = 0; i < count; i++)
		ks_type_free(types[i]);
	free(types);
	return 0;
}

void
ks_type_free(ks_type *t)
{
	if (t == NULL)
		return;
	free((char *) t->group);
	free((char *) t->version);
	free((char *) t->resource);
	free((char *) t->singular);
	free((char *) t->kind);
	free((char *) t->list_kind);
	strvec_free(t->short_names);
	strvec_free(t->categories);
	ks_schema_free(t->schema);
	free((char *) t->crd_name);
	json_decref(t->printer_columns);
	free(t);
}

/*
 * status.c — building metav1.Status replies (KUBE_API.md §4.1).
 */
#include "status.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "alloc.h"

void
ks_result_fini(ks_result *r)
{
	json_decref(r->body);
	r->body = NULL;
	free(r->warning);
	r->warning = NULL;
}

json_t *
ks_status_new(int code, const char *reason, const char *message)
{
	return json_pack("{s:s,s:s,s:{},s:s,s:s,s:s,s:i}", "kind", "Status",
	    "apiVersion", "v1", "metadata", "status", "Failure", "message",
	    message, "reason", reason, "code", code);
}

const char *
ks_status_reason(int code)
{
	switch (code) {
	case 400:
		return "BadRequest";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "NotFound";
	case 405:
		return "MethodNotAllowed";
	case 406:
		return "NotAcceptable";
	case 409:
		return "Conflict";
	case 410:
		return "Expired";
	case 413:
		return "RequestEntityTooLarge";
	case 415:
		return "UnsupportedMediaType";
	case 422:
		return "Invalid";
	case 429:
		return "TooManyRequests";
	case 500:
		return "InternalError";
	case 503:
		return "ServiceUnavailable";
	case 504:
		return "Timeout";
	default:
		return "Unknown";
	}
}

int
ks_fail(ks_result *r, int code, const char *reason, const ks_type *t,
    const char *name, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *msg = mcf_vasprintf(fmt, ap);
	va_end(ap);
	json_decref(r->body);
	r->code = code;
	r->body = ks_status_new(code, reason ? reason : ks_status_reason(code),
	    msg);
	free(msg);
	if (t != NULL || name != NULL) {
		json_t *d = json_object();
		if (name != NULL)
			json_object_set_new(d, "name", json_string(name));
		if (t != NULL && t->group[0] != '\0')
			json_object_set_new(d, "group", json_string(t->group));
		if (t != NULL)
			json_object_set_new(d, "kind",
			    json_string(t->resource));
		json_object_set_new(r->body, "details", d);
	} else {
		json_object_set_new(r->body, "details", json_object());
	}
	return -1;
}

void
ks_fail_cause(ks_result *r, const char *reason, const char *message,
    const char *field)
{
	json_t *d = json_object_get(r->body, "details");
	if (d == NULL) {
		d = json_object();
		json_object_set_new(r->body, "details", d);
	}
	json_t *causes = json_object_get(d, "causes");
	if (causes == NULL) {
		causes = json_array();
		json_object_set_new(d, "causes", causes);
	}
	json_t *c = json_object();
	json_object_set_new(c, "reason", json_string(reason));
	json_object_set_new(c, "message", json_string(message));
	if (field != NULL)
		json_object_set_new(c, "field", json_string(field));
	json_array_append_new(causes, c);
}

int
ks_ok(ks_result *r, int code, json_t *body)
{
	json_decref(r->body);
	r->code = code;
	r->body = body;
	return 0;
}

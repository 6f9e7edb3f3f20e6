/*
 * meta.h — helpers controllers use on Kubernetes objects held as jansson
 * json_t values: status conditions, finalizers, owner references, object
 * metadata accessors, cache keys and Events.
 *
 * The rules are those of the Go libraries controllers are written with:
 * apimachinery's meta.SetStatusCondition and friends
 * (k8s.io/apimachinery/pkg/api/meta/conditions.go), controller-runtime's
 * controllerutil (finalizers, SetControllerReference), metav1's
 * GetControllerOf/IsControlledBy, client-go's cache.MetaNamespaceKeyFunc /
 * SplitMetaNamespaceKey, and client-go's legacy event recorder
 * (tools/record).  Where this module differs from them, the function
 * comment says so.
 *
 * Objects are never validated as a whole: a function reads or writes only
 * the fields it names, and fails with MCF_EINVAL when one of them, or an
 * object on the way to it, has the wrong JSON type; a JSON null reads as
 * absent, as Go decodes it.  Strings coming from
 * the caller must be valid UTF-8 (jansson refuses anything else; such
 * input is MCF_EINVAL).
 *
 * Ownership: every `const json_t *` and `const char *` argument is
 * borrowed for the call and copied where it is kept.  Values returned as
 * borrowed live until the object they were found in is changed or freed.
 *
 * Threads: none of these functions keeps state, except the event name
 * suffix generator, which is thread-safe.  A json_t must not be used by two
 * threads at once (jansson's rule).
 */
#ifndef MCF_COMMON_META_H
#define MCF_COMMON_META_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>

#include "err.h"
#include "kclient.h"

/* ---- time ------------------------------------------------------------- */

/* Buffer size for a metav1.Time text "2006-01-02T15:04:05Z" plus NUL. */
#define MCF_META_TIME_LEN 21

/* Formats `t` as a metav1.Time: RFC 3339, seconds, UTC, "Z".  `buf` must
 * hold MCF_META_TIME_LEN bytes.  Returns `buf`. */
char *mcf_meta_time_format(time_t t, char *buf);

/* ---- status conditions ------------------------------------------------ */

/* One metav1.Condition to set.  A plain value type; all strings borrowed
 * for the call.  NULL reason and message mean "".  A NULL or empty
 * last_transition_time means "not given" (Go's zero metav1.Time). */
typedef struct mcf_meta_condition {
	const char *type;   /* required, non-empty */
	const char *status; /* "True", "False", "Unknown"; required */
	const char *reason;
	const char *message;
	int64_t     observed_generation; /* 0: left out of the JSON */
	const char *last_transition_time;
} mcf_meta_condition;

/* SetStatusCondition on `obj`'s status.conditions, creating `status` and
 * the array when absent.  Exactly apimachinery's rules:
 *   - no condition of that type: `c` is appended, with lastTransitionTime
 *     set to `now` unless `c` gives one; changed.
 *   - otherwise, on the first condition of that type: when the status
 *     differs, status is replaced and lastTransitionTime set to the one
 *     `c` gives, else to `now`; reason, message and observedGeneration are
 *     each replaced when they differ.  A given lastTransitionTime is
 *     ignored when the status is unchanged.
 * A missing string field of the existing condition compares as "", a
 * missing observedGeneration as 0.  The condition is written with the
 * field set metav1.Condition marshals to (observedGeneration left out when
 * 0, the others always present).  `*changed` (may be NULL) tells whether
 * anything was written.  Errors: MCF_EINVAL (`c` lacks type or status, a
 * string is not UTF-8, or status / status.conditions / an element has the
 * wrong JSON type); `obj` is then unchanged. */
int mcf_meta_condition_set(
    json_t *obj, const mcf_meta_condition *c, time_t now, bool *changed);

/* The first condition of `type` in status.conditions (borrowed), or NULL
 * when there is none or the fields have the wrong type. */
json_t *mcf_meta_condition_find(const json_t *obj, const char *type);

/* Removes every condition of `type`; returns whether one was removed.
 * Malformed status.conditions are left alone (false). */
bool mcf_meta_condition_remove(json_t *obj, const char *type);

/* IsStatusConditionPresentAndEqual: the first condition of `type` exists
 * and its status is `status`. */
bool mcf_meta_condition_is(
    const json_t *obj, const char *type, const char *status);
/* IsStatusConditionTrue / IsStatusConditionFalse. */
bool mcf_meta_condition_is_true(const json_t *obj, const char *type);
bool mcf_meta_condition_is_false(const json_t *obj, const char *type);

/* ---- finalizers (metadata.finalizers) --------------------------------- */

/* Whether `finalizer` is in metadata.finalizers. */
bool mcf_meta_finalizer_has(const json_t *obj, const char *finalizer);

/* controllerutil.AddFinalizer: appends `finalizer` unless present,
 * creating metadata and the array when absent.  `*changed` (may be NULL)
 * tells whether it was added.  Errors: MCF_EINVAL (empty or non-UTF-8
 * name, metadata or finalizers of the wrong type). */
int mcf_meta_finalizer_add(json_t *obj, const char *finalizer, bool *changed);

/* controllerutil.RemoveFinalizer: removes every copy of `finalizer`.
 * `*changed` (may be NULL) tells whether one was removed.  Unlike Go,
 * where the emptied list is dropped by omitempty, an emptied array stays
 * as [] so that a merge patch computed from the object still clears it.
 * Errors: MCF_EINVAL (metadata or finalizers of the wrong type). */
int mcf_meta_finalizer_remove(
    json_t *obj, const char *finalizer, bool *changed);

/* ---- owner references ------------------------------------------------- */

/* Builds a controller ownerReference for `owner`: apiVersion, kind, name
 * and uid copied from it, controller and blockOwnerDeletion true.  On
 * success `*out` is new.  Errors: MCF_EINVAL when one of the four fields
 * is missing or empty. */
int mcf_meta_owner_ref_new(const json_t *owner, json_t **out);

/* controllerutil.SetControllerReference: makes `owner` the controller of
 * `obj`.  An existing reference to the same object (same API group, kind
 * and name, as controller-runtime compares them) is replaced in place,
 * else the new one is appended to metadata.ownerReferences.  `*changed`
 * (may be NULL) tells whether the references changed.  Errors:
 * MCF_EEXIST (AlreadyOwnedError: another controller reference exists),
 * MCF_EINVAL (owner lacks a field, cross-namespace owner, namespaced owner
 * of a cluster-scoped object, fields of the wrong type); `ei` (may be
 * NULL) gets the message; `obj` is then unchanged. */
int mcf_meta_controller_set(
    json_t *obj, const json_t *owner, bool *changed, mcf_errinfo *ei);

/* metav1.GetControllerOf: the first ownerReference with controller true
 * (borrowed), or NULL. */
json_t *mcf_meta_controller_of(const json_t *obj);

/* metav1.IsControlledBy: `obj`'s controller reference has `owner`'s uid.
 * Unlike Go, an owner without a uid controls nothing. */
bool mcf_meta_is_controlled_by(const json_t *obj, const json_t *owner);

/* ---- object accessors ------------------------------------------------- */

/* metadata.namespace (borrowed); NULL when absent or "" (cluster-scoped
 * objects). */
const char *mcf_meta_namespace(const json_t *obj);
/* metadata.name, metadata.uid, metadata.resourceVersion (borrowed); NULL
 * when absent or not a string. */
const char *mcf_meta_name(const json_t *obj);
const char *mcf_meta_uid(const json_t *obj);
const char *mcf_meta_resource_version(const json_t *obj);
/* metadata.generation, 0 when absent. */
int64_t mcf_meta_generation(const json_t *obj);
/* metadata.deletionTimestamp is set: the object is being deleted. */
bool mcf_meta_is_deleting(const json_t *obj);
/* metadata.labels (borrowed object), or NULL. */
json_t *mcf_meta_labels(const json_t *obj);
/* The value of label `key` (borrowed), or NULL. */
const char *mcf_meta_label(const json_t *obj, const char *key);

/* ---- cache keys ------------------------------------------------------- */

/* "namespace/name", or "name" when `ns` is NULL or "" (new string).
 * `name` must not be NULL. */
char *mcf_meta_key_join(const char *ns, const char *name);

/* cache.MetaNamespaceKeyFunc: the key of `obj` into `*out` (new).
 * Errors: MCF_EINVAL when metadata.name is missing or empty (client-go
 * would return "" or "ns/"). */
int mcf_meta_key(const json_t *obj, char **out);

/* cache.SplitMetaNamespaceKey: "ns/name" gives both, "name" gives
 * `*ns` NULL.  On success `*ns` (NULL or new) and `*name` (new) are set;
 * on failure both untouched.  Errors: MCF_EINVAL for more than one '/'
 * ("a/b/c") and, stricter than client-go, for an empty key, namespace or
 * name ("", "/x", "x/"). */
int mcf_meta_key_split(const char *key, char **ns, char **name);

/* ---- events ----------------------------------------------------------- */

/* Apiserver limit on an Event message, in bytes. */
#define MCF_META_EVENT_MESSAGE_MAX 1024

/* Who records Events: source.component and reportingComponent
 * (`component`, required), reportingInstance and source.host (`instance`,
 * a host or pod name; NULL leaves them out).  A plain value type; strings
 * borrowed for the call. */
typedef struct mcf_meta_recorder {
	const char *component;
	const char *instance;
} mcf_meta_recorder;

/* Builds a core/v1 Event about `obj` as client-go's recorder does:
 * involvedObject (apiVersion, kind, name, namespace, uid, resourceVersion,
 * each when `obj` has it), reason, message, type, source, reporting
 * fields, firstTimestamp = lastTimestamp = `now`, count 1, and metadata
 * name "<obj name>.<16 hex digits>" (random; the object name is cut so the
 * result stays a 253-byte DNS subdomain) in `obj`'s namespace, "default"
 * for cluster-scoped objects.  `message` longer than
 * MCF_META_EVENT_MESSAGE_MAX bytes is cut there, on a UTF-8 character
 * boundary.  On success `*out` is new.  Errors: MCF_EINVAL (`type` not
 * "Normal" or "Warning", empty reason, no component, `obj` without
 * apiVersion, kind or name, non-UTF-8 strings). */
int mcf_meta_event_build(const json_t *obj, const mcf_meta_recorder *rec,
    const char *type, const char *reason, const char *message, time_t now,
    json_t **out);

/* Builds an Event with the printf-formatted message and `time(NULL)`,
 * and POSTs it to core v1 events in its namespace with `client` (on the
 * calling thread, which must be allowed to use `client`).  Recording an
 * Event is best effort: a failure is logged ("META-EVENT-FAILED") and its
 * code returned, and the caller may ignore it.  Errors: those of
 * mcf_meta_event_build() and mcf_kc_create_object(). */
int mcf_meta_event_emit(mcf_kc *client, const mcf_meta_recorder *rec,
    const json_t *obj, const char *type, const char *reason, const char *fmt,
    ...) __attribute__((format(printf, 6, 7)));

#endif /* MCF_COMMON_META_H */

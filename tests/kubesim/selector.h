/*
 * selector.h — Kubernetes label and field selectors (KUBE_API.md §3.4).
 *
 * Parsing happens once per request; matching runs for every object and
 * every watch event, so a parsed selector is a flat array of requirements.
 * Selectors are immutable after parsing and may be shared read-only.
 */
#ifndef KS_SELECTOR_H
#define KS_SELECTOR_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

typedef struct ks_labelsel ks_labelsel;
typedef struct ks_fieldsel ks_fieldsel;

/* Parses a labelSelector that is already percent-decoded ('+' already turned
 * into ' ').  Grammar: requirements separated by ',' (AND), spaces allowed
 * around tokens; `k`, `!k`, `k=v`, `k==v`, `k!=v`, `k in (v1,v2)`,
 * `k notin (v1,v2)`, `k>n`, `k<n` (integers).  Keys: optional DNS-1123
 * subdomain prefix (≤253) + '/' + name (≤63, [A-Za-z0-9]([-A-Za-z0-9_.]*
 * [A-Za-z0-9])?); values: empty or the name pattern, ≤63.  "" matches
 * everything.  On error returns NULL and writes into `err` a message that
 * starts with "unable to parse requirement: " (what a real server says).
 * Result is new. */
ks_labelsel *ks_labelsel_parse(const char *s, char *err, size_t errlen);
void         ks_labelsel_free(ks_labelsel *sel);

/* True when `labels` (a JSON object of string values, or NULL for none)
 * satisfies every requirement.  `!=` and `notin` match objects without the
 * key. */
bool ks_labelsel_match(const ks_labelsel *sel, const json_t *labels);

/* True for the empty selector. */
bool ks_labelsel_empty(const ks_labelsel *sel);

/* Parses a fieldSelector (already decoded): terms separated by ',' (AND),
 * operators `=`, `==`, `!=`, escapes `\,` `\=` `\\` in values.  `allowed`
 * is a NULL-terminated list of supported field paths ("metadata.name",
 * "metadata.namespace", "involvedObject.kind", ...).  An unsupported field
 * returns NULL with err "field label not supported: <field>"; a malformed
 * term returns NULL with err "invalid selector: '<term>'; can't understand
 * '<term>'".  Result is new. */
ks_fieldsel *ks_fieldsel_parse(const char *s, const char *const *allowed,
    char *err, size_t errlen);
void         ks_fieldsel_free(ks_fieldsel *sel);

/* True when `obj` matches: each field path is looked up with dots in the
 * object; a missing field compares as "" (as Kubernetes field sets do);
 * numbers and booleans compare as their JSON text. */
bool ks_fieldsel_match(const ks_fieldsel *sel, const json_t *obj);

bool ks_fieldsel_empty(const ks_fieldsel *sel);

/* If the selector pins metadata.name with `=` (kubectl delete/wait), the
 * name, else NULL.  Borrowed until free.  Lets lists skip a scan. */
const char *ks_fieldsel_name(const ks_fieldsel *sel);

#endif /* KS_SELECTOR_H */

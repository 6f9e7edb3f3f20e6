/*
 * config.h — YAML configuration files (libyaml).
 *
 * A config file is a YAML mapping whose keys are flag names without "--"
 * and whose values are scalars (or sequences of scalars, joined with ",").
 * Every error names the file and the line: "cfg.yaml:7: unknown key
 * \"lisen\"".  mcf_yaml_parse_json() turns any YAML document into a jansson
 * value for the callers (kubeconfig, manifests) that need the whole tree.
 */
#ifndef MCF_COMMON_CONFIG_H
#define MCF_COMMON_CONFIG_H

#include <stddef.h>

#include <jansson.h>

#include "err.h"

typedef struct mcf_config mcf_config;

/* Reads and parses `path`.  `*out` is new (mcf_config_destroy). */
int mcf_config_load(const char *path, mcf_config **out, mcf_errinfo *ei);

/* Parses `text`; `name` is used in error messages in place of a path.
 * An empty stream (or only comments) is an empty config.  Rejected with
 * MCF_EINVAL and "name:line: ...": a top level other than a mapping,
 * nested mappings, null values, duplicate keys, aliases and a second
 * document.  Values keep their text as written; flags.c parses them. */
int mcf_config_parse(const char *text, size_t len, const char *name,
    mcf_config **out, mcf_errinfo *ei);

void mcf_config_destroy(mcf_config *cfg);

/* Entries in file order.  Strings are borrowed until destroy. */
size_t      mcf_config_count(const mcf_config *cfg);
const char *mcf_config_key(const mcf_config *cfg, size_t i);
const char *mcf_config_value(const mcf_config *cfg, size_t i);
int         mcf_config_line(const mcf_config *cfg, size_t i);
const char *mcf_config_name(const mcf_config *cfg);

/* Value for `key`, or NULL.  Borrowed until destroy. */
const char *mcf_config_get(const mcf_config *cfg, const char *key);

/* Parses one YAML document into a jansson value (mappings → objects,
 * sequences → arrays; plain scalars that read as integers, floats, true,
 * false or null become those types, quoted scalars stay strings).  Errors
 * carry "name:line:column: problem".  `*out` is new.
 *
 * Plain scalars follow the YAML 1.2 core schema (so "yes" and "0644" are
 * the string "yes" and the integer 644, unlike YAML 1.1); numbers JSON
 * cannot hold exactly (.inf, .nan, integers beyond 64 bits) stay strings.
 * Rejected with MCF_EINVAL: aliases (never expanded; anchors alone are
 * ignored), a second document in the stream, nesting deeper than 64
 * sequences/mappings, duplicate keys, non-scalar keys.  An empty stream
 * gives JSON null.  `name` may be NULL ("<yaml>"). */
int mcf_yaml_parse_json(const char *text, size_t len, const char *name,
    json_t **out, mcf_errinfo *ei);

#endif /* MCF_COMMON_CONFIG_H */

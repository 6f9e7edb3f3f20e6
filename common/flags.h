/*
 * flags.h — command-line flags shared by every binary.
 *
 * A binary describes its flags in a table; mcf_flags_parse() fills the
 * destinations from the defaults, then from the YAML `--config FILE` (keys
 * are the flag names without "--"), then from the command line — flags win
 * over the file.  Accepted forms: `--name value`, `--name=value`, and for
 * booleans `--name` / `--name=true|false`.  `--help` prints the usage to
 * stdout; `--version` prints "PROG VERSION".
 *
 * Usage errors (unknown flag, missing or malformed value, unknown config
 * key, a positional argument) return MCF_EINVAL with a message that names
 * the flag, or file:line for config keys; binaries print it and exit 2.
 */
#ifndef MCF_COMMON_FLAGS_H
#define MCF_COMMON_FLAGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

enum mcf_flag_type {
	MCF_FLAG_STRING,   /* dest: char ** (new string or NULL) */
	MCF_FLAG_INT,      /* dest: int64_t * */
	MCF_FLAG_BOOL,     /* dest: bool * */
	MCF_FLAG_DURATION, /* dest: int64_t * milliseconds (duration.h) */
	MCF_FLAG_DOUBLE,   /* dest: double * */
};

typedef struct mcf_flag {
	const char        *name;    /* without "--" */
	enum mcf_flag_type type;
	const char        *metavar; /* "HOST:PORT"; NULL for booleans */
	const char        *def;     /* default as text, or NULL for none */
	const char        *help;    /* one sentence */
	void              *dest;    /* borrowed; see the type */
} mcf_flag;

typedef struct mcf_flagset {
	const char     *prog;    /* "kubesim" */
	const char     *summary; /* one line for --help */
	const mcf_flag *flags;   /* borrowed table */
	size_t          count;   /* at most MCF_FLAGS_MAX */
	bool            seen[64]; /* private: set by mcf_flags_parse() */
} mcf_flagset;

#define MCF_FLAGS_MAX 64

/* Outcome of a successful parse. */
enum mcf_flags_result {
	MCF_FLAGS_RUN  = 0, /* go on */
	MCF_FLAGS_EXIT = 1, /* --help or --version was printed: exit 0 */
};

/* Parses argv into the destinations.  On success returns MCF_OK and sets
 * `*result`; on a usage error returns MCF_EINVAL and fills `ei`.  Adds the
 * built-in flags --config, --help and --version.  The destinations' old
 * contents are overwritten, never read or freed (call mcf_flags_free()
 * before parsing again).  After MCF_OK, string destinations are new
 * strings or NULL, also when `*result` is MCF_FLAGS_EXIT; after an error
 * they are all NULL and there is nothing to free.  A bad table (more than
 * MCF_FLAGS_MAX flags, a duplicate or built-in name, a default that does
 * not parse) is a programming error and panics. */
int mcf_flags_parse(mcf_flagset *fs, int argc, char **argv,
    enum mcf_flags_result *result, mcf_errinfo *ei);

/* True when the flag `name` was given on the command line or in the config
 * file (not only defaulted).  Valid after mcf_flags_parse(). */
bool mcf_flags_is_set(const mcf_flagset *fs, const char *name);

/* Frees the strings mcf_flags_parse() stored in MCF_FLAG_STRING
 * destinations and sets them to NULL. */
void mcf_flags_free(const mcf_flagset *fs);

/* Writes the --help text to `fp` (FILE *). */
void mcf_flags_usage(const mcf_flagset *fs, void *fp);

#endif /* MCF_COMMON_FLAGS_H */

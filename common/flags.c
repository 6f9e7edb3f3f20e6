/*
 * flags.c — command-line flags, merged with an optional YAML config file.
 *
 * mcf_flags_parse() works in three passes so that precedence never depends
 * on the order of the arguments:
 *   1. every destination gets its default (or its zero value);
 *   2. argv is scanned once: each argument is matched to a flag and its
 *      value text is remembered, --config FILE is noted, and --help or
 *      --version stop everything (they print and return MCF_FLAGS_EXIT as
 *      soon as they are reached, so "--help" still works next to a config
 *      file that does not load);
 *   3. the config file's entries are applied, then the remembered
 *      command-line values, so flags win over the file.  A flag given
 *      twice keeps its last value.
 *
 * Values are parsed strictly: an integer is base 10 and must fill the
 * whole text and fit int64_t, a double must be finite, a boolean is one of
 * Go's strconv.ParseBool spellings (true/false/1/0/t/f in the usual cases),
 * a duration follows duration.h.  A non-boolean flag takes its value from
 * "=" or from the next argument, but never from a next argument that
 * starts with "--": "--listen --verbose" is a forgotten value, not a
 * listen address.  Single-dash values ("--offset -5") are fine.
 *
 * Strings.  MCF_FLAG_STRING destinations always hold NULL or a string this
 * module allocated once pass 1 has run, so replacing a value frees the old
 * one; after a failed parse they are all freed and NULL, so the caller has
 * nothing to clean up.  After success or MCF_FLAGS_EXIT they hold the
 * parsed values and the caller releases them with mcf_flags_free().
 *
 * Every usage error returns MCF_EINVAL (binaries exit 2 on it), including
 * a --config file that cannot be read; the message says why.
 */
#include "flags.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "config.h"
#include "duration.h"

/* Longest value text quoted in an error message; keeps the message (512
 * bytes) readable when someone passes a whole file as a value. */
#define FLAGS_QUOTE_MAX 100

/* Built-in flags, not in the caller's table. */
static const char *const flags_builtin[] = { "config", "help", "version" };

static bool
flags_is_builtin(const char *name, size_t n)
{
	for (size_t i = 0; i < 3; i++) {
		if (strlen(flags_builtin[i]) == n
		    && memcmp(flags_builtin[i], name, n) == 0)
			return true;
	}
	return false;
}

/* Index of the table flag named name[0..n), or -1. */
static int
flags_find(const mcf_flagset *fs, const char *name, size_t n)
{
	for (size_t i = 0; i < fs->count; i++) {
		if (strlen(fs->flags[i].name) == n
		    && memcmp(fs->flags[i].name, name, n) == 0)
			return (int) i;
	}
	return -1;
}

static int
parse_bool(const char *s, bool *out)
{
	static const char *const yes[]
	    = { "1", "t", "T", "true", "TRUE", "True" };
	static const char *const no[]
	    = { "0", "f", "F", "false", "FALSE", "False" };

	for (size_t i = 0; i < 6; i++) {
		if (strcmp(s, yes[i]) == 0) {
			*out = true;
			return MCF_OK;
		}
		if (strcmp(s, no[i]) == 0) {
			*out = false;
			return MCF_OK;
		}
	}
	return MCF_EINVAL;
}

/* Parses `val` for flag `f` and stores it.  On failure returns MCF_EINVAL
 * and a short reason in `ei` (the caller adds which flag and where). */
static int
flag_store(const mcf_flag *f, const char *val, mcf_errinfo *ei)
{
	char *end;

	switch (f->type) {
	case MCF_FLAG_STRING: {
		char **dest = f->dest;
		free(*dest);
		*dest = mcf_strdup(val);
		return MCF_OK;
	}
	case MCF_FLAG_INT: {
		/* strtoll would skip leading blanks and take a "+"; a value
		 * must start with a digit or "-". */
		if (val[0] != '-' && (val[0] < '0' || val[0] > '9'))
			return mcf_errinfo_set(
			    ei, MCF_EINVAL, "not an integer");
		errno       = 0;
		long long v = strtoll(val, &end, 10);
		if (*end != '\0' || end == val)
			return mcf_errinfo_set(
			    ei, MCF_EINVAL, "not an integer");
		if (errno == ERANGE)
			return mcf_errinfo_set(
			    ei, MCF_EINVAL, "integer out of range (64 bits)");
		*(int64_t *) f->dest = (int64_t) v;
		return MCF_OK;
	}
	case MCF_FLAG_BOOL:
		if (parse_bool(val, f->dest) != MCF_OK)
			return mcf_errinfo_set(
			    ei, MCF_EINVAL, "not a boolean (true or false)");
		return MCF_OK;
	case MCF_FLAG_DURATION: {
		mcf_errinfo dei;
		int64_t     ms;
		if (mcf_duration_parse(val, &ms, &dei) != MCF_OK)
			return mcf_errinfo_set(ei, MCF_EINVAL, "%s", dei.msg);
		*(int64_t *) f->dest = ms;
		return MCF_OK;
	}
	case MCF_FLAG_DOUBLE: {
		if (val[0] == '\0' || val[0] == ' ' || val[0] == '\t')
			return mcf_errinfo_set(ei, MCF_EINVAL, "not a number");
		errno    = 0;
		double d = strtod(val, &end);
		if (*end != '\0' || end == val)
			return mcf_errinfo_set(ei, MCF_EINVAL, "not a number");
		/* ERANGE with a tiny result is underflow to (almost) zero,
		 * which is a fine value; only overflow is an error. */
		if (!isfinite(d) || (errno == ERANGE && fabs(d) > 1.0))
			return mcf_errinfo_set(ei, MCF_EINVAL,
			    "number out of range or not finite");
		*(double *) f->dest = d;
		return MCF_OK;
	}
	}
	mcf_panic("flags: unknown flag type");
}

/* Frees every string destination and sets it to NULL. */
static void
flags_free_strings(const mcf_flagset *fs)
{
	for (size_t i = 0; i < fs->count; i++) {
		if (fs->flags[i].type == MCF_FLAG_STRING) {
			char **dest = fs->flags[i].dest;
			free(*dest);
			*dest = NULL;
		}
	}
}

/* Pass 1: defaults.  A default that does not parse is a bug in the
 * binary's table, hence the panic. */
static void
flags_defaults(const mcf_flagset *fs)
{
	for (size_t i = 0; i < fs->count; i++) {
		const mcf_flag *f = &fs->flags[i];
		mcf_errinfo     dei;

		switch (f->type) {
		case MCF_FLAG_STRING:
			*(char **) f->dest = NULL;
			break;
		case MCF_FLAG_INT:
		case MCF_FLAG_DURATION:
			*(int64_t *) f->dest = 0;
			break;
		case MCF_FLAG_BOOL:
			*(bool *) f->dest = false;
			break;
		case MCF_FLAG_DOUBLE:
			*(double *) f->dest = 0.0;
			break;
		}
		if (f->def != NULL && flag_store(f, f->def, &dei) != MCF_OK)
			mcf_panic("flags: a default value does not parse");
	}
}

/* Checks the caller's table once per parse; every failure is a bug in
 * the binary, not a usage error. */
static void
flags_check_table(const mcf_flagset *fs)
{
	if (fs->count > MCF_FLAGS_MAX)
		mcf_panic("flags: more than MCF_FLAGS_MAX flags");
	for (size_t i = 0; i < fs->count; i++) {
		const char *name = fs->flags[i].name;
		if (name == NULL || name[0] == '\0'
		    || fs->flags[i].dest == NULL)
			mcf_panic("flags: flag without a name or destination");
		if (strchr(name, '=') != NULL
		    || flags_is_builtin(name, strlen(name)))
			mcf_panic("flags: reserved or malformed flag name");
		if (flags_find(fs, name, strlen(name)) != (int) i)
			mcf_panic("flags: flag defined twice");
	}
}

/* One command-line assignment remembered by pass 2. */
typedef struct flag_assign {
	int         idx;
	const char *val; /* borrowed from argv */
} flag_assign;

/* Pass 3a: the config file. */
static int
flags_apply_config(mcf_flagset *fs, const char *path, mcf_errinfo *ei)
{
	mcf_config *cfg;
	mcf_errinfo cei;
	int         rc = MCF_OK;

	if (mcf_config_load(path, &cfg, &cei) != MCF_OK)
		return mcf_errinfo_set(ei, MCF_EINVAL, "%s", cei.msg);
	for (size_t i = 0; i < mcf_config_count(cfg) && rc == MCF_OK; i++) {
		const char *key = mcf_config_key(cfg, i);
		const char *val = mcf_config_value(cfg, i);
		int         idx = flags_find(fs, key, strlen(key));

		if (idx < 0) {
			rc = mcf_errinfo_set(ei, MCF_EINVAL,
			    "%s:%d: unknown key \"%.*s\"",
			    mcf_config_name(cfg), mcf_config_line(cfg, i),
			    FLAGS_QUOTE_MAX, key);
		} else if (flag_store(&fs->flags[idx], val, &cei) != MCF_OK) {
			rc = mcf_errinfo_set(ei, MCF_EINVAL,
			    "%s:%d: invalid value \"%.*s\" for \"%s\": %s",
			    mcf_config_name(cfg), mcf_config_line(cfg, i),
			    FLAGS_QUOTE_MAX, val, key, cei.msg);
		} else {
			fs->seen[idx] = true;
		}
	}
	mcf_config_destroy(cfg);
	return rc;
}

/* Pass 2: scans argv.  Fills `as` and `*config`; returns MCF_FLAGS_EXIT in
 * `*result` after printing for --help and --version. */
static int
flags_scan(mcf_flagset *fs, int argc, char **argv, flag_assign *as,
    size_t *nas, const char **config, enum mcf_flags_result *result,
    mcf_errinfo *ei)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "--") == 0) {
			/* The conventional end of flags; we take no
			 * positional arguments, so only a bare "--" at the
			 * end is harmless. */
			if (i + 1 < argc)
				return mcf_errinfo_set(ei, MCF_EINVAL,
				    "unexpected argument \"%.*s\"",
				    FLAGS_QUOTE_MAX, argv[i + 1]);
			break;
		}
		if (a[0] != '-' || a[1] == '\0')
			return mcf_errinfo_set(ei, MCF_EINVAL,
			    "unexpected argument \"%.*s\" (this program takes "
			    "only flags)",
			    FLAGS_QUOTE_MAX, a);
		if (a[1] != '-')
			return mcf_errinfo_set(ei, MCF_EINVAL,
			    "unknown flag %.*s (flags start with \"--\")",
			    FLAGS_QUOTE_MAX, a);

		const char *name = a + 2;
		const char *eq   = strchr(name, '=');
		size_t n = eq != NULL ? (size_t) (eq - name) : strlen(name);
		const char *val = eq != NULL ? eq + 1 : NULL;

		if ((n == 4 && memcmp(name, "help", 4) == 0)
		    || (n == 7 && memcmp(name, "version", 7) == 0)) {
			if (val != NULL)
				return mcf_errinfo_set(ei, MCF_EINVAL,
				    "flag --%.*s takes no value", (int) n,
				    name);
			if (n == 4)
				mcf_flags_usage(fs, stdout);
			else
				printf("%s %s\n", fs->prog, MCF_VERSION);
			fflush(stdout);
			*result = MCF_FLAGS_EXIT;
			return MCF_OK;
		}

		int idx = flags_find(fs, name, n);
		if (idx < 0 && !(n == 6 && memcmp(name, "config", 6) == 0))
			return mcf_errinfo_set(ei, MCF_EINVAL,
			    "unknown flag --%.*s",
			    (int) (n > FLAGS_QUOTE_MAX ? FLAGS_QUOTE_MAX : n),
			    name);
		if (idx >= 0 && fs->flags[idx].type == MCF_FLAG_BOOL) {
			/* Booleans never take the next argument: "--v
			 * false" would otherwise depend on what follows. */
			if (val == NULL)
				val = "true";
		} else if (val == NULL) {
			if (i + 1 >= argc
			    || strncmp(argv[i + 1], "--", 2) == 0)
				return mcf_errinfo_set(ei, MCF_EINVAL,
				    "flag --%.*s needs a value", (int) n,
				    name);
			val = argv[++i];
		}
		if (idx < 0) {
			if (*config != NULL)
				return mcf_errinfo_set(ei, MCF_EINVAL,
				    "flag --config given more than once");
			*config = val;
			continue;
		}
		as[*nas].idx = idx;
		as[*nas].val = val;
		(*nas)++;
	}
	return MCF_OK;
}

int
mcf_flags_parse(mcf_flagset *fs, int argc, char **argv,
    enum mcf_flags_result *result, mcf_errinfo *ei)
{
	const char  *config = NULL;
	size_t       nas    = 0;
	flag_assign *as;
	int          rc;

	flags_check_table(fs);
	mcf_errinfo_clear(ei);
	memset(fs->seen, 0, sizeof(fs->seen));
	*result = MCF_FLAGS_RUN;

	flags_defaults(fs);
	as = mcf_calloc(argc > 0 ? (size_t) argc : 1, sizeof(*as));
	rc = flags_scan(fs, argc, argv, as, &nas, &config, result, ei);
	if (rc == MCF_OK && *result == MCF_FLAGS_RUN && config != NULL)
		rc = flags_apply_config(fs, config, ei);
	for (size_t i = 0; rc == MCF_OK && *result == MCF_FLAGS_RUN && i < nas;
	     i++) {
		const mcf_flag *f = &fs->flags[as[i].idx];
		mcf_errinfo     vei;

		if (flag_store(f, as[i].val, &vei) != MCF_OK) {
			rc = mcf_errinfo_set(ei, MCF_EINVAL,
			    "invalid value \"%.*s\" for flag --%s: %s",
			    FLAGS_QUOTE_MAX, as[i].val, f->name, vei.msg);
			break;
		}
		fs->seen[as[i].idx] = true;
	}
	free(as);
	if (rc != MCF_OK) {
		flags_free_strings(fs);
		memset(fs->seen, 0, sizeof(fs->seen));
	}
	return rc;
}

bool
mcf_flags_is_set(const mcf_flagset *fs, const char *name)
{
	int idx = flags_find(fs, name, strlen(name));
	return idx >= 0 && fs->seen[idx];
}

void
mcf_flags_free(const mcf_flagset *fs)
{
	flags_free_strings(fs);
}

/* Metavariable shown in the usage for flag `f` ("" for booleans). */
static const char *
flag_metavar(const mcf_flag *f)
{
	if (f->type == MCF_FLAG_BOOL)
		return "";
	if (f->metavar != NULL)
		return f->metavar;
	switch (f->type) {
	case MCF_FLAG_INT:
		return "N";
	case MCF_FLAG_DURATION:
		return "DURATION";
	case MCF_FLAG_DOUBLE:
		return "NUMBER";
	default:
		return "VALUE";
	}
}

/* Writes one usage line, the help text starting in column `width`. */
static void
usage_line(FILE *fp, int width, const char *name, const char *metavar,
    const char *help, const char *def)
{
	int n = fprintf(
	    fp, "  --%s%s%s", name, metavar[0] != '\0' ? " " : "", metavar);
	if (n >= width)
		fprintf(fp, "\n%*s", width, "");
	else
		fprintf(fp, "%*s", width - n, "");
	fprintf(fp, "%s", help != NULL ? help : "");
	if (def != NULL)
		fprintf(fp, " (default: %s)", def);
	fprintf(fp, "\n");
}

void
mcf_flags_usage(const mcf_flagset *fs, void *out)
{
	FILE *fp    = out;
	int   width = 0;

	/* Help texts line up one column after the longest "--name VALUE",
	 * but a very long one does not push every line to the right. */
	for (size_t i = 0; i < fs->count; i++) {
		const mcf_flag *f  = &fs->flags[i];
		const char     *mv = flag_metavar(f);
		int w = 4 + (int) strlen(f->name) + (mv[0] != '\0' ? 1 : 0)
		    + (int) strlen(mv) + 2;
		if (w > width)
			width = w;
	}
	if (width < 19) /* "  --config FILE" plus two spaces */
		width = 19;
	if (width > 32)
		width = 32;

	fprintf(fp, "usage: %s [flags]\n", fs->prog);
	if (fs->summary != NULL)
		fprintf(fp, "%s\n", fs->summary);
	fprintf(fp, "\nflags:\n");
	for (size_t i = 0; i < fs->count; i++) {
		const mcf_flag *f = &fs->flags[i];
		usage_line(
		    fp, width, f->name, flag_metavar(f), f->help, f->def);
	}
	usage_line(fp, width, "config", "FILE",
	    "read flags from a YAML file (the command line wins)", NULL);
	usage_line(fp, width, "help", "", "print this help and exit", NULL);
	usage_line(
	    fp, width, "version", "", "print the version and exit", NULL);
}

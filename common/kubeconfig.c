/*
 * kubeconfig.c — kubeconfig files and in-cluster config.
 *
 * Loading works in three passes, mirroring client-go's clientcmd:
 *   1. choose the files (explicit path, KUBECONFIG, ~/.kube/config);
 *   2. read each file, turn its YAML into a jansson tree with
 *      mcf_yaml_parse_json() (which reports file:line:column), and check
 *      the shape of every entry: field types, base64 in -data fields,
 *      names unique within the file.  After this pass the trees are known
 *      to be well-typed, so resolution needs no further type checks;
 *   3. resolve: pick the context (override, else the first file's
 *      current-context), then find the context, cluster and user by name,
 *      scanning files in order so the first definition wins, which is
 *      kubectl's merge rule.  Relative paths are resolved against the
 *      directory of the file whose entry holds them.
 * Entries are never copied between files: each lookup returns the file
 * and the index, so an error can say "kc.yaml: users[2].user...".
 */
#include "kubeconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "alloc.h"
#include "base64.h"
#include "config.h"
#include "err.h"

/* Kubeconfigs, CA bundles and token files are small; a larger file is a
 * mistake (or /dev/zero), not something to read into memory. */
#define KC_MAX_BYTES (16 * 1024 * 1024)

typedef struct kc_file {
	char   *path; /* owned: as given, used in messages */
	char   *dir;  /* owned: absolute directory of `path` */
	json_t *root; /* owned: a JSON object */
} kc_file;

typedef struct kc_files {
	kc_file *v; /* owned array */
	size_t   n;
} kc_files;

/* An entry found by name: borrowed from a kc_files. */
typedef struct kc_ref {
	const kc_file *file;
	size_t         index;
	json_t *body; /* the "cluster"/"user"/"context" object or NULL */
} kc_ref;

/* The three named lists and the key of each entry's body. */
static const struct {
	const char *list;
	const char *body;
	const char *what;
} kc_sections[] = {
	{ "clusters", "cluster", "cluster" },
	{ "users", "user", "user" },
	{ "contexts", "context", "context" },
};

/* Known fields and their types, per section.  's' string, 'b' boolean,
 * 'd' base64 string, 'o' mapping, '*' anything (checked elsewhere). */
typedef struct kc_field {
	const char *name;
	char        type;
} kc_field;

static const kc_field kc_cluster_fields[] = {
	{ "server", 's' },
	{ "certificate-authority", 's' },
	{ "certificate-authority-data", 'd' },
	{ "insecure-skip-tls-verify", 'b' },
	{ "tls-server-name", 's' },
	{ "proxy-url", 's' },
	{ "disable-compression", 'b' },
	{ NULL, 0 },
};

static const kc_field kc_user_fields[] = {
	{ "client-certificate", 's' },
	{ "client-certificate-data", 'd' },
	{ "client-key", 's' },
	{ "client-key-data", 'd' },
	{ "token", 's' },
	{ "tokenFile", 's' },
	{ "as", 's' },
	{ "username", 's' },
	{ "password", 's' },
	{ "exec", 'o' },
	{ "auth-provider", 'o' },
	{ NULL, 0 },
};

static const kc_field kc_context_fields[] = {
	{ "cluster", 's' },
	{ "user", 's' },
	{ "namespace", 's' },
	{ NULL, 0 },
};

static const kc_field *const kc_section_fields[] = {
	kc_cluster_fields,
	kc_user_fields,
	kc_context_fields,
};

static int kc_fail(mcf_errinfo *ei, int code, const char *file,
    const char *field, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* "file: field: what", or "file: what" when `field` is NULL. */
static int
kc_fail(mcf_errinfo *ei, int code, const char *file, const char *field,
    const char *fmt, ...)
{
	char    what[384];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (field != NULL)
		return mcf_errinfo_set(
		    ei, code, "%s: %s: %s", file, field, what);
	return mcf_errinfo_set(ei, code, "%s: %s", file, what);
}

static const char *
kc_type_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "a mapping";
	case JSON_ARRAY:
		return "a sequence";
	case JSON_STRING:
		return "a string";
	case JSON_INTEGER:
		return "an integer";
	case JSON_REAL:
		return "a number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "a boolean";
	case JSON_NULL:
		return "null";
	}
	return "unknown";
}

/* Reads all of `path` into a new NUL-terminated buffer.  Messages name
 * `label` (may be NULL) and then the path. */
static int
kc_read_file(const char *path, const char *file, const char *field,
    unsigned char **out, size_t *outlen, mcf_errinfo *ei)
{
	char        ebuf[128];
	struct stat st;
	int         fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		int e = errno;
		if (file == NULL)
			return mcf_errinfo_set(ei, mcf_err_from_errno(e),
			    "%s: %s", path, strerror_r(e, ebuf, sizeof(ebuf)));
		return kc_fail(ei, mcf_err_from_errno(e), file, field,
		    "%s: %s", path, strerror_r(e, ebuf, sizeof(ebuf)));
	}
	if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
		close(fd);
		if (file == NULL)
			return mcf_errinfo_set(
			    ei, MCF_EINVAL, "%s: is a directory", path);
		return kc_fail(
		    ei, MCF_EINVAL, file, field, "%s: is a directory", path);
	}

	size_t         cap = 4096, len = 0;
	unsigned char *buf = mcf_malloc(cap);
	for (;;) {
		if (len + 1 >= cap) {
			if (cap > KC_MAX_BYTES)
				break;
			cap *= 2;
			buf = mcf_realloc(buf, cap);
		}
		ssize_t n = read(fd, buf + len, cap - 1 - len);
		if (n < 0) {
			int e = errno;
			if (e == EINTR)
				continue;
			free(buf);
			close(fd);
			if (file == NULL)
				return mcf_errinfo_set(ei,
				    mcf_err_from_errno(e), "%s: %s", path,
				    strerror_r(e, ebuf, sizeof(ebuf)));
			return kc_fail(ei, mcf_err_from_errno(e), file, field,
			    "%s: %s", path, strerror_r(e, ebuf, sizeof(ebuf)));
		}
		if (n == 0)
			break;
		len += (size_t) n;
	}
	close(fd);
	if (len > KC_MAX_BYTES) {
		free(buf);
		if (file == NULL)
			return mcf_errinfo_set(ei, MCF_ETOOBIG,
			    "%s: larger than %d bytes", path, KC_MAX_BYTES);
		return kc_fail(ei, MCF_ETOOBIG, file, field,
		    "%s: larger than %d bytes", path, KC_MAX_BYTES);
	}
	buf[len] = '\0';
	*out     = buf;
	*outlen  = len;
	return MCF_OK;
}

/* New absolute directory of `path` (which may be relative). */
static char *
kc_dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	char       *dir;

	if (slash == NULL)
		dir = mcf_strdup(".");
	else if (slash == path)
		dir = mcf_strdup("/");
	else
		dir = mcf_strndup(path, (size_t) (slash - path));
	if (dir[0] != '/') {
		char *cwd = getcwd(NULL, 0);
		if (cwd != NULL) {
			char *abs = mcf_asprintf("%s/%s", cwd, dir);
			free(cwd);
			free(dir);
			dir = abs;
		}
	}
	return dir;
}

/* New path: `p` if absolute, else `dir`/`p`. */
static char *
kc_resolve(const char *dir, const char *p)
{
	if (p[0] == '/')
		return mcf_strdup(p);
	return mcf_asprintf("%s/%s", dir, p);
}

/* Decodes a base64 -data value.  Go's decoder skips CR and LF, so a value
 * wrapped over lines (a quoted YAML scalar keeps them) is accepted too. */
static bool
kc_decode(const json_t *v, unsigned char **out, size_t *outlen)
{
	const char *s = json_string_value(v);
	size_t      n = json_string_length(v), m = 0;
	char       *tmp = mcf_malloc(n + 1);
	bool        ok;

	for (size_t i = 0; i < n; i++)
		if (s[i] != '\r' && s[i] != '\n')
			tmp[m++] = s[i];
	tmp[m] = '\0';
	ok     = mcf_base64_decode(tmp, m, out, outlen);
	free(tmp);
	return ok;
}

/* Checks the known fields of one entry body against `fields`. */
static int
kc_check_body(const kc_file *f, const char *prefix, const json_t *body,
    const kc_field *fields, mcf_errinfo *ei)
{
	char field[512];

	for (const kc_field *k = fields; k->name != NULL; k++) {
		json_t *v = json_object_get(body, k->name);
		if (v == NULL || json_is_null(v))
			continue;
		snprintf(field, sizeof(field), "%s.%s", prefix, k->name);
		switch (k->type) {
		case 's':
		case 'd':
			if (!json_is_string(v))
				return kc_fail(ei, MCF_EINVAL, f->path, field,
				    "expected a string, got %s",
				    kc_type_name(v));
			if (k->type == 'd' && json_string_length(v) > 0) {
				unsigned char *dec;
				size_t         declen;
				if (!kc_decode(v, &dec, &declen))
					return kc_fail(ei, MCF_EINVAL, f->path,
					    field, "not valid base64");
				free(dec);
			}
			break;
		case 'b':
			if (!json_is_boolean(v))
				return kc_fail(ei, MCF_EINVAL, f->path, field,
				    "expected a boolean, got %s",
				    kc_type_name(v));
			break;
		case 'o':
			if (!json_is_object(v))
				return kc_fail(ei, MCF_EINVAL, f->path, field,
				    "expected a mapping, got %s",
				    kc_type_name(v));
			break;
		}
	}
	return MCF_OK;
}

/* Checks entry `i` of list `s`; `seen` maps the names so far to their
 * index, which keeps a hostile file with many entries linear. */
static int
kc_check_entry(const kc_file *f, size_t s, size_t i, const json_t *e,
    json_t *seen, mcf_errinfo *ei)
{
	const char *list = kc_sections[s].list;
	char        field[256];

	snprintf(field, sizeof(field), "%s[%zu]", list, i);
	if (!json_is_object(e))
		return kc_fail(ei, MCF_EINVAL, f->path, field,
		    "expected a mapping, got %s", kc_type_name(e));
	json_t *name = json_object_get(e, "name");
	snprintf(field, sizeof(field), "%s[%zu].name", list, i);
	if (name == NULL || json_is_null(name))
		return kc_fail(ei, MCF_EINVAL, f->path, field, "missing");
	if (!json_is_string(name))
		return kc_fail(ei, MCF_EINVAL, f->path, field,
		    "expected a string, got %s", kc_type_name(name));
	if (json_string_length(name) == 0)
		return kc_fail(ei, MCF_EINVAL, f->path, field, "empty");
	json_t *prev = json_object_get(seen, json_string_value(name));
	if (prev != NULL)
		return kc_fail(ei, MCF_EINVAL, f->path, field,
		    "duplicate name \"%s\" (also %s[%zu])",
		    json_string_value(name), list,
		    (size_t) json_integer_value(prev));
	if (json_object_set_new(
	        seen, json_string_value(name), json_integer((json_int_t) i))
	    != 0)
		mcf_panic("jansson: out of memory");

	json_t *body = json_object_get(e, kc_sections[s].body);
	snprintf(
	    field, sizeof(field), "%s[%zu].%s", list, i, kc_sections[s].body);
	if (body == NULL || json_is_null(body))
		return MCF_OK;
	if (!json_is_object(body))
		return kc_fail(ei, MCF_EINVAL, f->path, field,
		    "expected a mapping, got %s", kc_type_name(body));
	return kc_check_body(f, field, body, kc_section_fields[s], ei);
}

/* Checks one file's tree: top-level types, every entry's shape, unique
 * names per list. */
static int
kc_check_file(const kc_file *f, mcf_errinfo *ei)
{
	json_t *cc = json_object_get(f->root, "current-context");
	int     rc = MCF_OK;

	if (cc != NULL && !json_is_null(cc) && !json_is_string(cc))
		return kc_fail(ei, MCF_EINVAL, f->path, "current-context",
		    "expected a string, got %s", kc_type_name(cc));
	for (size_t s = 0; s < sizeof(kc_sections) / sizeof(kc_sections[0]);
	     s++) {
		const char *list = kc_sections[s].list;
		json_t     *arr  = json_object_get(f->root, list);
		if (arr == NULL || json_is_null(arr))
			continue;
		if (!json_is_array(arr))
			return kc_fail(ei, MCF_EINVAL, f->path, list,
			    "expected a sequence, got %s", kc_type_name(arr));
		json_t *seen = json_object();
		if (seen == NULL)
			mcf_panic("jansson: out of memory");
		for (size_t i = 0; i < json_array_size(arr) && rc == MCF_OK;
		     i++)
			rc = kc_check_entry(
			    f, s, i, json_array_get(arr, i), seen, ei);
		json_decref(seen);
		if (rc != MCF_OK)
			return rc;
	}
	return MCF_OK;
}

static void
kc_files_free(kc_files *fs)
{
	for (size_t i = 0; i < fs->n; i++) {
		free(fs->v[i].path);
		free(fs->v[i].dir);
		json_decref(fs->v[i].root);
	}
	free(fs->v);
	fs->v = NULL;
	fs->n = 0;
}

/* Reads, parses and checks `path`, appending it to `fs`. */
static int
kc_files_add(kc_files *fs, const char *path, mcf_errinfo *ei)
{
	unsigned char *text;
	size_t         len;
	json_t        *root;
	int            rc;

	if ((rc = kc_read_file(path, NULL, NULL, &text, &len, ei)) != MCF_OK)
		return rc;
	rc = mcf_yaml_parse_json((const char *) text, len, path, &root, ei);
	free(text);
	if (rc != MCF_OK)
		return rc;
	if (json_is_null(root)) {
		/* An empty file is an empty config, as in kubectl. */
		json_decref(root);
		root = json_object();
		if (root == NULL)
			mcf_panic("jansson: out of memory");
	} else if (!json_is_object(root)) {
		rc = mcf_errinfo_set(ei, MCF_EINVAL,
		    "%s: expected a mapping at the top level, got %s", path,
		    kc_type_name(root));
		json_decref(root);
		return rc;
	}

	kc_file f = { .path = mcf_strdup(path), .root = root };
	if ((rc = kc_check_file(&f, ei)) != MCF_OK) {
		free(f.path);
		json_decref(root);
		return rc;
	}
	f.dir          = kc_dir_of(path);
	fs->v          = mcf_realloc(fs->v, (fs->n + 1) * sizeof(*fs->v));
	fs->v[fs->n++] = f;
	return MCF_OK;
}

/* Fills `fs` from the KUBECONFIG list `list`. */
static int
kc_files_from_env(kc_files *fs, const char *list, mcf_errinfo *ei)
{
	char  *copy  = mcf_strdup(list);
	char **seen  = NULL;
	size_t nseen = 0;
	int    rc    = MCF_OK;

	for (char *p = copy, *next; p != NULL; p = next) {
		char *colon = strchr(p, ':');
		next        = NULL;
		if (colon != NULL) {
			*colon = '\0';
			next   = colon + 1;
		}
		if (*p == '\0')
			continue;
		bool dup = false;
		for (size_t i = 0; i < nseen; i++)
			if (strcmp(seen[i], p) == 0)
				dup = true;
		if (dup)
			continue;
		seen          = mcf_realloc(seen, (nseen + 1) * sizeof(*seen));
		seen[nseen++] = p;

		struct stat st;
		if (stat(p, &st) != 0 && errno == ENOENT)
			continue; /* kubectl skips missing files */
		if ((rc = kc_files_add(fs, p, ei)) != MCF_OK)
			break;
	}
	if (rc == MCF_OK && fs->n == 0)
		rc = mcf_errinfo_set(ei, MCF_ENOENT,
		    "KUBECONFIG=%s: none of the files exists", list);
	free(seen);
	free(copy);
	return rc;
}

/* Finds the entry named `name` in list `s` of the first file defining
 * it. */
static bool
kc_find(const kc_files *fs, size_t s, const char *name, kc_ref *out)
{
	for (size_t i = 0; i < fs->n; i++) {
		json_t *arr
		    = json_object_get(fs->v[i].root, kc_sections[s].list);
		for (size_t j = 0; j < json_array_size(arr); j++) {
			json_t *e = json_array_get(arr, j);
			if (strcmp(
			        json_string_value(json_object_get(e, "name")),
			        name)
			    == 0) {
				out->file  = &fs->v[i];
				out->index = j;
				out->body
				    = json_object_get(e, kc_sections[s].body);
				if (out->body != NULL
				    && !json_is_object(out->body))
					out->body = NULL;
				return true;
			}
		}
	}
	return false;
}

/* The non-empty string field `key` of `body`, or NULL.  Types were
 * checked by kc_check_file. */
static const char *
kc_str(const json_t *body, const char *key)
{
	const char *s = json_string_value(json_object_get(body, key));
	return s != NULL && s[0] != '\0' ? s : NULL;
}

/* Loads PEM bytes for `data_key` / `file_key` of entry `r` in list
 * `sect` ("clusters", whose entry bodies are "cluster") into `*out`. */
static int
kc_pem(const kc_ref *r, const char *sect, const char *data_key,
    const char *file_key, unsigned char **out, size_t *outlen, mcf_errinfo *ei)
{
	char        field[256];
	const char *data = kc_str(r->body, data_key);
	const char *file = kc_str(r->body, file_key);

	if (data != NULL && file != NULL) {
		snprintf(field, sizeof(field), "%s[%zu].%.*s.%s", sect,
		    r->index, (int) strlen(sect) - 1, sect, data_key);
		return kc_fail(ei, MCF_EINVAL, r->file->path, field,
		    "%s is set too; set only one", file_key);
	}
	if (data != NULL) {
		/* Checked by kc_check_file: decoding cannot fail here. */
		if (!kc_decode(
		        json_object_get(r->body, data_key), out, outlen))
			mcf_panic("kubeconfig: checked base64 failed");
		return MCF_OK;
	}
	if (file != NULL) {
		char *p = kc_resolve(r->file->dir, file);
		snprintf(field, sizeof(field), "%s[%zu].%.*s.%s", sect,
		    r->index, (int) strlen(sect) - 1, sect, file_key);
		int rc
		    = kc_read_file(p, r->file->path, field, out, outlen, ei);
		free(p);
		return rc;
	}
	return MCF_OK;
}

static int
kc_resolve_cluster(const kc_ref *r, mcf_kubeconfig *kc, mcf_errinfo *ei)
{
	char        field[256];
	const char *server = kc_str(r->body, "server");
	int         rc;

	snprintf(
	    field, sizeof(field), "clusters[%zu].cluster.server", r->index);
	if (server == NULL)
		return kc_fail(
		    ei, MCF_EINVAL, r->file->path, field, "missing");
	if (strncmp(server, "https://", 8) != 0
	    && strncmp(server, "http://", 7) != 0)
		return kc_fail(ei, MCF_EINVAL, r->file->path, field,
		    "\"%s\" does not start with http:// or https://", server);
	size_t n = strlen(server);
	while (n > 0 && server[n - 1] == '/')
		n--;
	const char *host = strstr(server, "://") + 3;
	if ((size_t) (host - server) >= n || *host == '/')
		return kc_fail(ei, MCF_EINVAL, r->file->path, field,
		    "\"%s\" has no host", server);

	rc = kc_pem(r, "clusters", "certificate-authority-data",
	    "certificate-authority", &kc->ca_pem, &kc->ca_pem_len, ei);
	if (rc != MCF_OK)
		return rc;
	kc->server   = mcf_strndup(server, n);
	kc->insecure = json_is_true(
	    json_object_get(r->body, "insecure-skip-tls-verify"));
	const char *sni = kc_str(r->body, "tls-server-name");
	if (sni != NULL)
		kc->tls_server_name = mcf_strdup(sni);
	return MCF_OK;
}

static int
kc_resolve_user(const kc_ref *r, mcf_kubeconfig *kc, mcf_errinfo *ei)
{
	char field[256];
	int  rc;

	static const char *const unsupported[]
	    = { "exec", "auth-provider", "username", "password", "as" };
	for (size_t i = 0; i < sizeof(unsupported) / sizeof(unsupported[0]);
	     i++) {
		json_t *v = json_object_get(r->body, unsupported[i]);
		if (v == NULL || json_is_null(v)
		    || (json_is_string(v) && json_string_length(v) == 0))
			continue;
		snprintf(field, sizeof(field), "users[%zu].user.%s", r->index,
		    unsupported[i]);
		return kc_fail(ei, MCF_EUNSUPP, r->file->path, field,
		    "not supported by mcfleet; use a token or a client "
		    "certificate");
	}

	rc = kc_pem(r, "users", "client-certificate-data",
	    "client-certificate", &kc->cert_pem, &kc->cert_pem_len, ei);
	if (rc != MCF_OK)
		return rc;
	rc = kc_pem(r, "users", "client-key-data", "client-key", &kc->key_pem,
	    &kc->key_pem_len, ei);
	if (rc != MCF_OK)
		return rc;
	if ((kc->cert_pem == NULL) != (kc->key_pem == NULL)) {
		snprintf(field, sizeof(field), "users[%zu].user", r->index);
		return kc_fail(ei, MCF_EINVAL, r->file->path, field,
		    kc->cert_pem != NULL
		        ? "client-certificate without client-key"
		        : "client-key without client-certificate");
	}

	const char *token = kc_str(r->body, "token");
	const char *tfile = kc_str(r->body, "tokenFile");
	if (token != NULL)
		kc->token = mcf_strdup(token);
	if (tfile != NULL) {
		unsigned char *tmp;
		size_t         tmplen;
		kc->token_file = kc_resolve(r->file->dir, tfile);
		snprintf(field, sizeof(field), "users[%zu].user.tokenFile",
		    r->index);
		rc = kc_read_file(
		    kc->token_file, r->file->path, field, &tmp, &tmplen, ei);
		if (rc != MCF_OK)
			return rc;
		free(tmp);
	}
	return MCF_OK;
}

/* The context to use: `override`, else the first current-context.
 * Borrowed from `override` or `fs`. */
static int
kc_pick_context(const kc_files *fs, const char *override, const char *list,
    const char **name, const kc_file **from, mcf_errinfo *ei)
{
	if (override != NULL && override[0] != '\0') {
		*name = override;
		*from = NULL;
		return MCF_OK;
	}
	for (size_t i = 0; i < fs->n; i++) {
		const char *cc = kc_str(fs->v[i].root, "current-context");
		if (cc != NULL) {
			*name = cc;
			*from = &fs->v[i];
			return MCF_OK;
		}
	}
	return mcf_errinfo_set(ei, MCF_EINVAL,
	    "%s: current-context: not set, and no context was given", list);
}

static unsigned char *
dup_bytes(const unsigned char *p, size_t n)
{
	if (p == NULL)
		return NULL;
	unsigned char *d = mcf_malloc(n + 1);
	memcpy(d, p, n);
	d[n] = 0;
	return d;
}

int
mcf_kubeconfig_dup(
    const mcf_kubeconfig *kc, const char *server, mcf_kubeconfig **out)
{
	if (server != NULL && strncmp(server, "http://", 7) != 0 &&
	    strncmp(server, "https://", 8) != 0)
		return MCF_EINVAL;
	mcf_kubeconfig *d = mcf_calloc(1, sizeof(*d));
	d->server = mcf_strdup(server != NULL ? server : kc->server);
	for (size_t n = strlen(d->server); n > 0 && d->server[n - 1] == '/';
	     n--)
		d->server[n - 1] = '\0';
	d->ca_pem = dup_bytes(kc->ca_pem, kc->ca_pem_len);
	d->ca_pem_len = kc->ca_pem_len;
	d->cert_pem = dup_bytes(kc->cert_pem, kc->cert_pem_len);
	d->cert_pem_len = kc->cert_pem_len;
	d->key_pem = dup_bytes(kc->key_pem, kc->key_pem_len);
	d->key_pem_len = kc->key_pem_len;
	d->token = kc->token != NULL ? mcf_strdup(kc->token) : NULL;
	d->token_file =
	    kc->token_file != NULL ? mcf_strdup(kc->token_file) : NULL;
	d->insecure = kc->insecure;
	d->tls_server_name = kc->tls_server_name != NULL
	    ? mcf_strdup(kc->tls_server_name)
	    : NULL;
	d->namespace = mcf_strdup(kc->namespace != NULL ? kc->namespace
	                                                 : "default");
	d->context = kc->context != NULL ? mcf_strdup(kc->context) : NULL;
	d->cluster = kc->cluster != NULL ? mcf_strdup(kc->cluster) : NULL;
	d->user = kc->user != NULL ? mcf_strdup(kc->user) : NULL;
	*out = d;
	return MCF_OK;
}

void
mcf_kubeconfig_destroy(mcf_kubeconfig *kc)
{
	if (kc == NULL)
		return;
	free(kc->server);
	free(kc->ca_pem);
	free(kc->cert_pem);
	free(kc->key_pem);
	free(kc->token);
	free(kc->token_file);
	free(kc->tls_server_name);
	free(kc->namespace);
	free(kc->context);
	free(kc->cluster);
	free(kc->user);
	free(kc);
}

static int
kc_resolve_all(const kc_files *fs, const char *context, const char *list,
    mcf_kubeconfig *kc, mcf_errinfo *ei)
{
	const char    *ctxname = NULL;
	const kc_file *from    = NULL;
	kc_ref         ctx, cl, us;
	char           field[256];
	int            rc;

	rc = kc_pick_context(fs, context, list, &ctxname, &from, ei);
	if (rc != MCF_OK)
		return rc;
	if (!kc_find(fs, 2, ctxname, &ctx)) {
		if (from != NULL)
			return kc_fail(ei, MCF_ENOENT, from->path,
			    "current-context", "context \"%s\" not found",
			    ctxname);
		return mcf_errinfo_set(ei, MCF_ENOENT,
		    "%s: context \"%s\" not found", list, ctxname);
	}
	kc->context = mcf_strdup(ctxname);

	const char *clname = kc_str(ctx.body, "cluster");
	snprintf(
	    field, sizeof(field), "contexts[%zu].context.cluster", ctx.index);
	if (clname == NULL)
		return kc_fail(
		    ei, MCF_EINVAL, ctx.file->path, field, "missing");
	if (!kc_find(fs, 0, clname, &cl))
		return kc_fail(ei, MCF_ENOENT, ctx.file->path, field,
		    "cluster \"%s\" not found", clname);
	kc->cluster = mcf_strdup(clname);
	if ((rc = kc_resolve_cluster(&cl, kc, ei)) != MCF_OK)
		return rc;

	const char *usname = kc_str(ctx.body, "user");
	if (usname != NULL) {
		snprintf(field, sizeof(field), "contexts[%zu].context.user",
		    ctx.index);
		if (!kc_find(fs, 1, usname, &us))
			return kc_fail(ei, MCF_ENOENT, ctx.file->path, field,
			    "user \"%s\" not found", usname);
		kc->user = mcf_strdup(usname);
		if ((rc = kc_resolve_user(&us, kc, ei)) != MCF_OK)
			return rc;
	}

	const char *ns = kc_str(ctx.body, "namespace");
	kc->namespace  = mcf_strdup(ns != NULL ? ns : "default");
	return MCF_OK;
}

int
mcf_kubeconfig_load(const char *path, const char *context,
    mcf_kubeconfig **out, mcf_errinfo *ei)
{
	kc_files    fs   = { NULL, 0 };
	char       *home = NULL;
	const char *list;
	int         rc;

	if (path != NULL) {
		list = path;
		rc   = kc_files_add(&fs, path, ei);
	} else {
		const char *env = getenv("KUBECONFIG");
		if (env != NULL && env[0] != '\0') {
			list = env;
			rc   = kc_files_from_env(&fs, env, ei);
		} else {
			const char *h = getenv("HOME");
			if (h == NULL || h[0] == '\0')
				return mcf_errinfo_set(ei, MCF_ENOENT,
				    "no kubeconfig: KUBECONFIG and HOME are "
				    "unset");
			home = mcf_asprintf("%s/.kube/config", h);
			list = home;
			rc   = kc_files_add(&fs, home, ei);
		}
	}
	if (rc != MCF_OK) {
		kc_files_free(&fs);
		free(home);
		return rc;
	}

	mcf_kubeconfig *kc = mcf_calloc(1, sizeof(*kc));
	rc                 = kc_resolve_all(&fs, context, list, kc, ei);
	kc_files_free(&fs);
	free(home);
	if (rc != MCF_OK) {
		mcf_kubeconfig_destroy(kc);
		return rc;
	}
	mcf_errinfo_clear(ei);
	*out = kc;
	return MCF_OK;
}

static bool
kc_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

int
mcf_kubeconfig_in_cluster(
    const char *sa_dir, mcf_kubeconfig **out, mcf_errinfo *ei)
{
	const char    *host = getenv("KUBERNETES_SERVICE_HOST");
	const char    *port = getenv("KUBERNETES_SERVICE_PORT");
	unsigned char *buf;
	size_t         len;
	int            rc;

	if (sa_dir == NULL)
		sa_dir = MCF_KUBECONFIG_SA_DIR;
	if (host == NULL || host[0] == '\0' || port == NULL || port[0] == '\0')
		return mcf_errinfo_set(ei, MCF_ENOENT,
		    "not in a cluster: KUBERNETES_SERVICE_HOST and "
		    "KUBERNETES_SERVICE_PORT must be set");
	char         *end;
	unsigned long p = (errno = 0, strtoul(port, &end, 10));
	if (port[0] < '0' || port[0] > '9' || *end != '\0' || errno != 0
	    || p == 0 || p > 65535)
		return mcf_errinfo_set(ei, MCF_EINVAL,
		    "KUBERNETES_SERVICE_PORT: \"%s\" is not a port number",
		    port);
	if (strpbrk(host, "/?#@ ") != NULL)
		return mcf_errinfo_set(ei, MCF_EINVAL,
		    "KUBERNETES_SERVICE_HOST: \"%s\" is not a host", host);

	mcf_kubeconfig *kc = mcf_calloc(1, sizeof(*kc));
	/* An IPv6 literal needs brackets in a URL (net.JoinHostPort). */
	if (strchr(host, ':') != NULL && host[0] != '[')
		kc->server = mcf_asprintf("https://[%s]:%lu", host, p);
	else
		kc->server = mcf_asprintf("https://%s:%lu", host, p);

	/* The path is kept for re-reading: make it absolute. */
	char *dir = mcf_strdup(sa_dir);
	if (sa_dir[0] != '/') {
		char *cwd = getcwd(NULL, 0);
		if (cwd != NULL) {
			free(dir);
			dir = mcf_asprintf("%s/%s", cwd, sa_dir);
			free(cwd);
		}
	}
	kc->token_file = mcf_asprintf("%s/token", dir);
	rc = kc_read_file(kc->token_file, NULL, NULL, &buf, &len, ei);
	if (rc != MCF_OK) {
		free(dir);
		mcf_kubeconfig_destroy(kc);
		return rc;
	}
	free(buf);

	char *ca = mcf_asprintf("%s/ca.crt", dir);
	rc = kc_read_file(ca, NULL, NULL, &kc->ca_pem, &kc->ca_pem_len, ei);
	free(ca);
	if (rc == MCF_ENOENT) {
		/* client-go logs and goes on with the system roots. */
		rc = MCF_OK;
	} else if (rc != MCF_OK) {
		free(dir);
		mcf_kubeconfig_destroy(kc);
		return rc;
	}

	char *nsfile = mcf_asprintf("%s/namespace", dir);
	free(dir);
	if (kc_read_file(nsfile, NULL, NULL, &buf, &len, NULL) == MCF_OK) {
		size_t a = 0, b = len;
		while (a < b && kc_space(buf[a]))
			a++;
		while (b > a && kc_space(buf[b - 1]))
			b--;
		if (b > a && memchr(buf + a, '\0', b - a) == NULL)
			kc->namespace = mcf_strndup((char *) buf + a, b - a);
		free(buf);
	}
	free(nsfile);
	if (kc->namespace == NULL)
		kc->namespace = mcf_strdup("default");
	mcf_errinfo_clear(ei);
	*out = kc;
	return MCF_OK;
}

int
mcf_kubeconfig_resolve(const char *path, const char *context,
    mcf_kubeconfig **out, mcf_errinfo *ei)
{
	if (path != NULL || getenv("KUBECONFIG") != NULL)
		return mcf_kubeconfig_load(path, context, out, ei);
	return mcf_kubeconfig_in_cluster(NULL, out, ei);
}

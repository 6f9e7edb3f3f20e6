/*
 * kubeconfig_test.c — tests for common/kubeconfig.c: loading and merging
 * kubeconfig files as kubectl does, in-cluster config, and every error
 * form with its exact message.  Each test runs in its own temporary
 * directory with KUBECONFIG, HOME and KUBERNETES_SERVICE_* saved and
 * restored around it.
 */
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "alloc.h"
#include "base64.h"
#include "err.h"
#include "kubeconfig.h"

static const char *const saved_vars[] = { "KUBECONFIG", "HOME",
	"KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT" };
#define NSAVED (sizeof(saved_vars) / sizeof(saved_vars[0]))

typedef struct fixture {
	char  dir[64];       /* the test's temporary directory */
	char *saved[NSAVED]; /* owned copies of the variables, or NULL */
} fixture;

static int
setup(void **state)
{
	fixture *fx = mcf_calloc(1, sizeof(*fx));
	snprintf(fx->dir, sizeof(fx->dir), "/tmp/mcf-kc-XXXXXX");
	if (mkdtemp(fx->dir) == NULL) {
		free(fx);
		return -1;
	}
	for (size_t i = 0; i < NSAVED; i++) {
		const char *v = getenv(saved_vars[i]);
		fx->saved[i]  = v != NULL ? mcf_strdup(v) : NULL;
		unsetenv(saved_vars[i]);
	}
	*state = fx;
	return 0;
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void) st;
	(void) flag;
	(void) ftw;
	return remove(path);
}

static int
teardown(void **state)
{
	fixture *fx = *state;
	for (size_t i = 0; i < NSAVED; i++) {
		if (fx->saved[i] != NULL)
			setenv(saved_vars[i], fx->saved[i], 1);
		else
			unsetenv(saved_vars[i]);
		free(fx->saved[i]);
	}
	nftw(fx->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(fx);
	return 0;
}

/* Writes `text` to dir/name (creating one level of subdirectory if `name`
 * has one) and returns the new full path. */
static char *
put(const fixture *fx, const char *name, const char *text)
{
	const char *slash = strchr(name, '/');
	if (slash != NULL) {
		char *sub = mcf_asprintf(
		    "%s/%.*s", fx->dir, (int) (slash - name), name);
		mkdir(sub, 0700);
		free(sub);
	}
	char *path = mcf_asprintf("%s/%s", fx->dir, name);
	FILE *f    = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
	assert_int_equal(fclose(f), 0);
	return path;
}

static mcf_kubeconfig *
load_ok(const char *path, const char *context)
{
	mcf_kubeconfig *kc = NULL;
	mcf_errinfo     ei;
	if (mcf_kubeconfig_load(path, context, &kc, &ei) != MCF_OK)
		fail_msg("load failed: %s", ei.msg);
	assert_non_null(kc);
	assert_int_equal(ei.code, MCF_OK);
	return kc;
}

/* Loads, expecting `code` and exactly the message `want`. */
static void
load_bad(const char *path, const char *context, int code, const char *want)
{
	mcf_kubeconfig *kc = (mcf_kubeconfig *) 0x1;
	mcf_errinfo     ei;
	int             rc = mcf_kubeconfig_load(path, context, &kc, &ei);
	if (rc != code)
		fail_msg("got %s (%s), want %s", mcf_err_name(rc), ei.msg,
		    mcf_err_name(code));
	assert_int_equal(ei.code, code);
	assert_ptr_equal(kc, (mcf_kubeconfig *) 0x1);
	assert_string_equal(ei.msg, want);
}

/* Writes `text` as kc.yaml and expects the error "<path>: <rest>". */
static void
file_bad(const fixture *fx, const char *text, int code, const char *rest)
{
	char *path = put(fx, "kc.yaml", text);
	char *want = mcf_asprintf("%s: %s", path, rest);
	load_bad(path, NULL, code, want);
	free(want);
	free(path);
}

static const char single_kc[] = "apiVersion: v1\n"
                                "kind: Config\n"
                                "current-context: dev\n"
                                "preferences: {}\n"
                                "clusters:\n"
                                "- name: c1\n"
                                "  cluster:\n"
                                "    server: https://10.0.0.1:6443\n"
                                "- name: c2\n"
                                "  cluster:\n"
                                "    server: http://127.0.0.1:8080\n"
                                "users:\n"
                                "- name: u1\n"
                                "  user:\n"
                                "    token: tok-1\n"
                                "contexts:\n"
                                "- name: dev\n"
                                "  context:\n"
                                "    cluster: c1\n"
                                "    user: u1\n"
                                "    namespace: team-a\n"
                                "- name: anon\n"
                                "  context:\n"
                                "    cluster: c2\n";

static void
test_kubeconfig_single_file(void **state)
{
	fixture        *fx   = *state;
	char           *path = put(fx, "kc.yaml", single_kc);
	mcf_kubeconfig *kc   = load_ok(path, NULL);

	assert_string_equal(kc->server, "https://10.0.0.1:6443");
	assert_string_equal(kc->context, "dev");
	assert_string_equal(kc->cluster, "c1");
	assert_string_equal(kc->user, "u1");
	assert_string_equal(kc->namespace, "team-a");
	assert_string_equal(kc->token, "tok-1");
	assert_null(kc->token_file);
	assert_null(kc->ca_pem);
	assert_null(kc->cert_pem);
	assert_null(kc->key_pem);
	assert_null(kc->tls_server_name);
	assert_false(kc->insecure);
	mcf_kubeconfig_destroy(kc);
	mcf_kubeconfig_destroy(NULL);

	/* The same file through KUBECONFIG, and through $HOME/.kube. */
	setenv("KUBECONFIG", path, 1);
	kc = load_ok(NULL, NULL);
	assert_string_equal(kc->context, "dev");
	mcf_kubeconfig_destroy(kc);
	unsetenv("KUBECONFIG");

	char *home = put(fx, ".kube/config", single_kc);
	setenv("HOME", fx->dir, 1);
	kc = load_ok(NULL, "anon");
	assert_string_equal(kc->server, "http://127.0.0.1:8080");
	mcf_kubeconfig_destroy(kc);
	free(home);
	free(path);
}

static void
test_kubeconfig_merge_first_wins(void **state)
{
	fixture *fx = *state;
	/* a.yaml has no current-context: it comes from b.yaml.  Both
	 * define cluster "shared" and user "me": a.yaml's win. */
	char *a       = put(fx, "a.yaml",
	          "clusters:\n"
	                "- name: shared\n"
	                "  cluster: {server: 'https://a.example:443'}\n"
	                "users:\n"
	                "- name: me\n"
	                "  user: {token: from-a}\n"
	                "contexts:\n"
	                "- name: ctx-a\n"
	                "  context: {cluster: shared, user: me, namespace: na}\n");
	char *b       = put(fx, "b.yaml",
	          "current-context: ctx-b\n"
	                "clusters:\n"
	                "- name: shared\n"
	                "  cluster: {server: 'https://b.example:443'}\n"
	                "- name: only-b\n"
	                "  cluster: {server: 'https://onlyb.example'}\n"
	                "users:\n"
	                "- name: me\n"
	                "  user: {token: from-b}\n"
	                "contexts:\n"
	                "- name: ctx-b\n"
	                "  context: {cluster: shared, user: me}\n"
	                "- name: ctx-a\n"
	                "  context: {cluster: only-b, user: me, namespace: nb}\n");
	char *c       = put(fx, "c.yaml", "current-context: ctx-a\n");
	char *missing = mcf_asprintf("%s/nope.yaml", fx->dir);

	/* Missing files, empty entries and repeats are skipped. */
	char *list = mcf_asprintf("%s::%s:%s:%s", missing, a, b, a);
	setenv("KUBECONFIG", list, 1);
	mcf_kubeconfig *kc = load_ok(NULL, NULL);
	assert_string_equal(kc->context, "ctx-b");
	assert_string_equal(kc->server, "https://a.example:443");
	assert_string_equal(kc->token, "from-a");
	assert_string_equal(kc->namespace, "default");
	mcf_kubeconfig_destroy(kc);

	/* ctx-a is defined in both: a.yaml's definition wins. */
	kc = load_ok(NULL, "ctx-a");
	assert_string_equal(kc->server, "https://a.example:443");
	assert_string_equal(kc->namespace, "na");
	mcf_kubeconfig_destroy(kc);
	free(list);

	/* Reversed order: b.yaml wins everything. */
	list = mcf_asprintf("%s:%s", b, a);
	setenv("KUBECONFIG", list, 1);
	kc = load_ok(NULL, "ctx-a");
	assert_string_equal(kc->server, "https://onlyb.example");
	assert_string_equal(kc->token, "from-b");
	assert_string_equal(kc->namespace, "nb");
	mcf_kubeconfig_destroy(kc);
	free(list);

	/* current-context from the first file that sets it. */
	list = mcf_asprintf("%s:%s:%s", a, c, b);
	setenv("KUBECONFIG", list, 1);
	kc = load_ok(NULL, NULL);
	assert_string_equal(kc->context, "ctx-a");
	mcf_kubeconfig_destroy(kc);

	/* An explicit path overrides KUBECONFIG. */
	kc = load_ok(b, NULL);
	assert_string_equal(kc->context, "ctx-b");
	assert_string_equal(kc->server, "https://b.example:443");
	assert_string_equal(kc->token, "from-b");
	mcf_kubeconfig_destroy(kc);
	free(list);

	/* Only missing files. */
	list = mcf_asprintf("%s:", missing);
	setenv("KUBECONFIG", list, 1);
	char *want
	    = mcf_asprintf("KUBECONFIG=%s: none of the files exists", list);
	load_bad(NULL, NULL, MCF_ENOENT, want);
	free(want);
	free(list);

	/* A bad file in the list is reported even when another has the
	 * context. */
	char *bad = put(fx, "bad.yaml", "clusters: 3\n");
	list      = mcf_asprintf("%s:%s", a, bad);
	setenv("KUBECONFIG", list, 1);
	want = mcf_asprintf("%s: clusters: expected a sequence, got an "
	                    "integer",
	    bad);
	load_bad(NULL, "ctx-a", MCF_EINVAL, want);
	free(want);
	free(list);
	free(bad);
	free(missing);
	free(a);
	free(b);
	free(c);
}

static void
test_kubeconfig_context_override(void **state)
{
	fixture        *fx   = *state;
	char           *path = put(fx, "kc.yaml", single_kc);
	mcf_kubeconfig *kc   = load_ok(path, "anon");

	assert_string_equal(kc->context, "anon");
	assert_string_equal(kc->cluster, "c2");
	assert_null(kc->user);
	assert_null(kc->token);
	assert_string_equal(kc->namespace, "default");
	mcf_kubeconfig_destroy(kc);

	/* An empty override means none. */
	kc = load_ok(path, "");
	assert_string_equal(kc->context, "dev");
	mcf_kubeconfig_destroy(kc);

	char *want = mcf_asprintf("%s: context \"prod\" not found", path);
	load_bad(path, "prod", MCF_ENOENT, want);
	free(want);
	free(path);
}

static void
test_kubeconfig_server_path_prefix(void **state)
{
	fixture        *fx   = *state;
	char           *path = put(fx, "kc.yaml",
	              "current-context: p1\n"
	                        "clusters:\n"
	                        "- name: p1\n"
	                        "  cluster:\n"
	                        "    server: http://127.0.0.1:41234/apis/"
	                        "resourcemanager.miloapis.com/v1alpha1/projects/p1/"
	                        "control-plane\n"
	                        "- name: slash\n"
	                        "  cluster:\n"
	                        "    server: https://h:1/prefix//\n"
	                        "contexts:\n"
	                        "- {name: p1, context: {cluster: p1}}\n"
	                        "- {name: slash, context: {cluster: slash}}\n");
	mcf_kubeconfig *kc   = load_ok(path, NULL);
	assert_string_equal(kc->server,
	    "http://127.0.0.1:41234/apis/resourcemanager.miloapis.com/"
	    "v1alpha1/projects/p1/control-plane");
	mcf_kubeconfig_destroy(kc);
	kc = load_ok(path, "slash");
	assert_string_equal(kc->server, "https://h:1/prefix");
	mcf_kubeconfig_destroy(kc);
	free(path);
}

static void
test_kubeconfig_relative_paths(void **state)
{
	fixture *fx = *state;
	char *p1 = put(fx, "conf/ca.pem", "-----BEGIN CERTIFICATE-----\nCA\n");
	char *p2 = put(fx, "conf/client.crt", "CERT\n");
	char *p3 = put(fx, "conf/client.key", "KEY\n");
	char *p4 = put(fx, "conf/token", "file-token\n");
	char *path = put(fx, "conf/kc.yaml",
	    "current-context: x\n"
	    "clusters:\n"
	    "- name: x\n"
	    "  cluster:\n"
	    "    server: https://x\n"
	    "    certificate-authority: ca.pem\n"
	    "users:\n"
	    "- name: x\n"
	    "  user:\n"
	    "    client-certificate: ./client.crt\n"
	    "    client-key: client.key\n"
	    "    tokenFile: token\n"
	    "contexts:\n"
	    "- {name: x, context: {cluster: x, user: x}}\n");

	/* Load through a relative path from another working directory:
	 * the files are still found next to the kubeconfig. */
	char *cwd = getcwd(NULL, 0);
	assert_non_null(cwd);
	assert_int_equal(chdir(fx->dir), 0);
	mcf_kubeconfig *kc = load_ok("conf/kc.yaml", NULL);
	assert_int_equal(chdir("/"), 0);

	assert_int_equal(
	    kc->ca_pem_len, strlen("-----BEGIN CERTIFICATE-----\nCA\n"));
	assert_string_equal(
	    (char *) kc->ca_pem, "-----BEGIN CERTIFICATE-----\nCA\n");
	assert_string_equal((char *) kc->cert_pem, "CERT\n");
	assert_int_equal(kc->cert_pem_len, 5);
	assert_string_equal((char *) kc->key_pem, "KEY\n");
	assert_string_equal(kc->token_file, p4);
	assert_null(kc->token);
	mcf_kubeconfig_destroy(kc);

	/* An absolute path stays as it is. */
	char *abs   = mcf_asprintf("current-context: x\n"
	                             "clusters:\n"
	                             "- name: x\n"
	                             "  cluster:\n"
	                             "    server: https://x\n"
	                             "    certificate-authority: %s\n"
	                             "contexts:\n"
	                             "- {name: x, context: {cluster: x}}\n",
	      p1);
	char *other = put(fx, "kc2.yaml", abs);
	kc          = load_ok(other, NULL);
	assert_string_equal(
	    (char *) kc->ca_pem, "-----BEGIN CERTIFICATE-----\nCA\n");
	mcf_kubeconfig_destroy(kc);

	assert_int_equal(chdir(cwd), 0);
	free(cwd);
	free(other);
	free(abs);
	free(path);
	free(p1);
	free(p2);
	free(p3);
	free(p4);
}

static void
test_kubeconfig_data_fields_decode(void **state)
{
	fixture        *fx   = *state;
	const char     *ca   = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END "
	                       "CERTIFICATE-----\n";
	const char     *cert = "-----BEGIN CERTIFICATE-----\nCLIENT\n";
	const char     *key  = "-----BEGIN EC PRIVATE KEY-----\nKEY\n";
	char           *b1   = mcf_base64_encode(ca, strlen(ca));
	char           *b2   = mcf_base64_encode(cert, strlen(cert));
	char           *b3   = mcf_base64_encode(key, strlen(key));
	char           *text = mcf_asprintf("current-context: x\n"
	                                              "clusters:\n"
	                                              "- name: x\n"
	                                              "  cluster:\n"
	                                              "    server: https://x\n"
	                                              "    certificate-authority-data: %s\n"
	                                              "users:\n"
	                                              "- name: x\n"
	                                              "  user:\n"
	                                              "    client-certificate-data: %s\n"
	                                              "    client-key-data: \"%s\"\n"
	                                              "contexts:\n"
	                                              "- {name: x, context: {cluster: x, "
	                                              "user: x}}\n",
	              b1, b2, b3);
	char           *path = put(fx, "kc.yaml", text);
	mcf_kubeconfig *kc   = load_ok(path, NULL);

	assert_int_equal(kc->ca_pem_len, strlen(ca));
	assert_memory_equal(kc->ca_pem, ca, strlen(ca));
	assert_int_equal(kc->ca_pem[kc->ca_pem_len], '\0');
	assert_int_equal(kc->cert_pem_len, strlen(cert));
	assert_memory_equal(kc->cert_pem, cert, strlen(cert));
	assert_int_equal(kc->key_pem_len, strlen(key));
	assert_memory_equal(kc->key_pem, key, strlen(key));
	assert_null(kc->token);
	assert_null(kc->token_file);
	mcf_kubeconfig_destroy(kc);
	free(path);
	free(text);

	/* A quoted value wrapped with "\n" escapes decodes as in Go. */
	text = mcf_asprintf("current-context: x\n"
	                    "clusters:\n"
	                    "- name: x\n"
	                    "  cluster:\n"
	                    "    server: https://x\n"
	                    "    certificate-authority-data: \"%.8s\\n%s\"\n"
	                    "contexts:\n"
	                    "- {name: x, context: {cluster: x}}\n",
	    b1, b1 + 8);
	path = put(fx, "kc.yaml", text);
	kc   = load_ok(path, NULL);
	assert_memory_equal(kc->ca_pem, ca, strlen(ca));
	mcf_kubeconfig_destroy(kc);
	free(path);
	free(text);
	free(b1);
	free(b2);
	free(b3);
}

static void
test_kubeconfig_token_and_token_file(void **state)
{
	fixture *fx   = *state;
	char    *tf   = put(fx, "sa-token", "abc\n");
	char    *text = mcf_asprintf(
	       "current-context: lit\n"
	          "clusters:\n"
	          "- {name: c, cluster: {server: 'https://c'}}\n"
	          "users:\n"
	          "- {name: lit, user: {token: literal}}\n"
	          "- {name: file, user: {tokenFile: %s}}\n"
	          "- {name: both, user: {token: t, tokenFile: "
	          "sa-token}}\n"
	          "- {name: empty, user: {token: '', tokenFile: ''}}\n"
	          "contexts:\n"
	          "- {name: lit, context: {cluster: c, user: lit}}\n"
	          "- {name: file, context: {cluster: c, user: file}}\n"
	          "- {name: both, context: {cluster: c, user: both}}\n"
	          "- {name: empty, context: {cluster: c, user: "
	          "empty}}\n",
	       tf);
	char           *path = put(fx, "kc.yaml", text);
	mcf_kubeconfig *kc   = load_ok(path, NULL);
	assert_string_equal(kc->token, "literal");
	assert_null(kc->token_file);
	mcf_kubeconfig_destroy(kc);

	kc = load_ok(path, "file");
	assert_null(kc->token);
	assert_string_equal(kc->token_file, tf);
	mcf_kubeconfig_destroy(kc);

	kc = load_ok(path, "both");
	assert_string_equal(kc->token, "t");
	assert_string_equal(kc->token_file, tf);
	mcf_kubeconfig_destroy(kc);

	kc = load_ok(path, "empty");
	assert_string_equal(kc->user, "empty");
	assert_null(kc->token);
	assert_null(kc->token_file);
	mcf_kubeconfig_destroy(kc);
	free(path);
	free(text);
	free(tf);
}

static void
test_kubeconfig_insecure(void **state)
{
	fixture        *fx   = *state;
	char           *path = put(fx, "kc.yaml",
	              "current-context: i\n"
	                        "clusters:\n"
	                        "- name: i\n"
	                        "  cluster:\n"
	                        "    server: https://i\n"
	                        "    insecure-skip-tls-verify: true\n"
	                        "    tls-server-name: api.internal\n"
	                        "- name: s\n"
	                        "  cluster:\n"
	                        "    server: https://s\n"
	                        "    insecure-skip-tls-verify: false\n"
	                        "contexts:\n"
	                        "- {name: i, context: {cluster: i}}\n"
	                        "- {name: s, context: {cluster: s}}\n");
	mcf_kubeconfig *kc   = load_ok(path, NULL);
	assert_true(kc->insecure);
	assert_string_equal(kc->tls_server_name, "api.internal");
	mcf_kubeconfig_destroy(kc);
	kc = load_ok(path, "s");
	assert_false(kc->insecure);
	mcf_kubeconfig_destroy(kc);
	free(path);
}

static void
test_kubeconfig_in_cluster(void **state)
{
	fixture        *fx = *state;
	mcf_kubeconfig *kc = (mcf_kubeconfig *) 0x1;
	mcf_errinfo     ei;
	char           *sa = mcf_asprintf("%s/sa", fx->dir);
	char           *t  = put(fx, "sa/token", "sa-token");
	char           *ca = put(fx, "sa/ca.crt", "PEM");
	char           *ns = put(fx, "sa/namespace", "  kube-work\n");

	/* Not in a pod. */
	assert_int_equal(mcf_kubeconfig_in_cluster(sa, &kc, &ei), MCF_ENOENT);
	assert_string_equal(ei.msg,
	    "not in a cluster: KUBERNETES_SERVICE_HOST and "
	    "KUBERNETES_SERVICE_PORT must be set");
	setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
	assert_int_equal(mcf_kubeconfig_in_cluster(sa, &kc, &ei), MCF_ENOENT);
	setenv("KUBERNETES_SERVICE_PORT", "x443", 1);
	assert_int_equal(mcf_kubeconfig_in_cluster(sa, &kc, &ei), MCF_EINVAL);
	assert_string_equal(
	    ei.msg, "KUBERNETES_SERVICE_PORT: \"x443\" is not a port number");
	setenv("KUBERNETES_SERVICE_PORT", "70000", 1);
	assert_int_equal(mcf_kubeconfig_in_cluster(sa, &kc, &ei), MCF_EINVAL);
	assert_ptr_equal(kc, (mcf_kubeconfig *) 0x1);

	setenv("KUBERNETES_SERVICE_PORT", "443", 1);
	assert_int_equal(mcf_kubeconfig_in_cluster(sa, &kc, &ei), MCF_OK);
	assert_string_equal(kc->server, "https://10.96.0.1:443");
	assert_string_equal(kc->token_file, t);
	assert_null(kc->token);
	assert_string_equal((char *) kc->ca_pem, "PEM");
	assert_int_equal(kc->ca_pem_len, 3);
	assert_string_equal(kc->namespace, "kube-work");
	assert_null(kc->context);
	assert_null(kc->cluster);
	assert_null(kc->user);
	assert_false(kc->insecure);
	mcf_kubeconfig_destroy(kc);

	/* IPv6 hosts are bracketed; no ca.crt means system roots; no
	 * namespace file means "default". */
	setenv("KUBERNETES_SERVICE_HOST", "fd00:10:96::1", 1);
	unlink(ca);
	unlink(ns);
	assert_int_equal(mcf_kubeconfig_in_cluster(sa, &kc, &ei), MCF_OK);
	assert_string_equal(kc->server, "https://[fd00:10:96::1]:443");
	assert_null(kc->ca_pem);
	assert_string_equal(kc->namespace, "default");
	mcf_kubeconfig_destroy(kc);

	/* The token must be there. */
	unlink(t);
	kc = (mcf_kubeconfig *) 0x1;
	assert_int_equal(mcf_kubeconfig_in_cluster(sa, &kc, &ei), MCF_ENOENT);
	char *want = mcf_asprintf("%s: No such file or directory", t);
	assert_string_equal(ei.msg, want);
	assert_ptr_equal(kc, (mcf_kubeconfig *) 0x1);
	free(want);

	/* The default directory does not exist here either. */
	assert_int_not_equal(
	    mcf_kubeconfig_in_cluster(NULL, &kc, NULL), MCF_OK);
	assert_ptr_equal(kc, (mcf_kubeconfig *) 0x1);
	free(sa);
	free(t);
	free(ca);
	free(ns);
}

static void
test_kubeconfig_reference_errors(void **state)
{
	fixture *fx = *state;

	file_bad(fx,
	    "clusters:\n"
	    "- {name: c, cluster: {server: 'https://c'}}\n"
	    "contexts:\n"
	    "- {name: x, context: {cluster: c}}\n",
	    MCF_EINVAL, "current-context: not set, and no context was given");
	file_bad(fx,
	    "current-context: ghost\n"
	    "clusters:\n"
	    "- {name: c, cluster: {server: 'https://c'}}\n",
	    MCF_ENOENT, "current-context: context \"ghost\" not found");
	file_bad(fx,
	    "current-context: b\n"
	    "clusters:\n"
	    "- {name: c, cluster: {server: 'https://c'}}\n"
	    "contexts:\n"
	    "- {name: a, context: {cluster: c}}\n"
	    "- {name: b, context: {cluster: nope}}\n",
	    MCF_ENOENT,
	    "contexts[1].context.cluster: cluster \"nope\" not "
	    "found");
	file_bad(fx,
	    "current-context: a\n"
	    "clusters:\n"
	    "- {name: c, cluster: {server: 'https://c'}}\n"
	    "contexts:\n"
	    "- {name: a, context: {cluster: c, user: who}}\n",
	    MCF_ENOENT, "contexts[0].context.user: user \"who\" not found");
	file_bad(fx,
	    "current-context: a\n"
	    "contexts:\n"
	    "- {name: a, context: {user: who}}\n",
	    MCF_EINVAL, "contexts[0].context.cluster: missing");
	file_bad(fx,
	    "current-context: a\n"
	    "contexts:\n"
	    "- {name: a}\n",
	    MCF_EINVAL, "contexts[0].context.cluster: missing");
	file_bad(fx,
	    "current-context: a\n"
	    "clusters:\n"
	    "- {name: c, cluster: {insecure-skip-tls-verify: true}}\n"
	    "contexts:\n"
	    "- {name: a, context: {cluster: c}}\n",
	    MCF_EINVAL, "clusters[0].cluster.server: missing");
	file_bad(fx,
	    "current-context: a\n"
	    "clusters:\n"
	    "- {name: c, cluster: {server: '10.0.0.1:6443'}}\n"
	    "contexts:\n"
	    "- {name: a, context: {cluster: c}}\n",
	    MCF_EINVAL,
	    "clusters[0].cluster.server: \"10.0.0.1:6443\" does not start "
	    "with http:// or https://");
	file_bad(fx,
	    "current-context: a\n"
	    "clusters:\n"
	    "- {name: c, cluster: {server: 'https:///api'}}\n"
	    "contexts:\n"
	    "- {name: a, context: {cluster: c}}\n",
	    MCF_EINVAL,
	    "clusters[0].cluster.server: \"https:///api\" has no host");
}

static void
test_kubeconfig_type_errors(void **state)
{
	fixture *fx = *state;

	file_bad(fx, "- a\n- b\n", MCF_EINVAL,
	    "expected a mapping at the top level, got a sequence");
	file_bad(fx, "current-context: [a]\n", MCF_EINVAL,
	    "current-context: expected a string, got a sequence");
	file_bad(fx, "clusters: {a: b}\n", MCF_EINVAL,
	    "clusters: expected a sequence, got a mapping");
	file_bad(fx, "users:\n- just-a-name\n", MCF_EINVAL,
	    "users[0]: expected a mapping, got a string");
	file_bad(fx, "contexts:\n- {context: {cluster: c}}\n", MCF_EINVAL,
	    "contexts[0].name: missing");
	file_bad(fx, "contexts:\n- {name: 7}\n", MCF_EINVAL,
	    "contexts[0].name: expected a string, got an integer");
	file_bad(fx, "contexts:\n- {name: ''}\n", MCF_EINVAL,
	    "contexts[0].name: empty");
	file_bad(fx,
	    "clusters:\n"
	    "- {name: a, cluster: {server: 'https://a'}}\n"
	    "- {name: b, cluster: {server: 'https://b'}}\n"
	    "- {name: a, cluster: {server: 'https://c'}}\n",
	    MCF_EINVAL,
	    "clusters[2].name: duplicate name \"a\" (also clusters[0])");
	file_bad(fx, "clusters:\n- {name: a, cluster: [x]}\n", MCF_EINVAL,
	    "clusters[0].cluster: expected a mapping, got a sequence");
	file_bad(fx, "clusters:\n- {name: a, cluster: {server: 6443}}\n",
	    MCF_EINVAL,
	    "clusters[0].cluster.server: expected a string, got an integer");
	file_bad(fx,
	    "clusters:\n"
	    "- name: a\n"
	    "  cluster:\n"
	    "    server: https://a\n"
	    "    insecure-skip-tls-verify: \"true\"\n",
	    MCF_EINVAL,
	    "clusters[0].cluster.insecure-skip-tls-verify: expected a "
	    "boolean, got a string");
	file_bad(fx, "users:\n- {name: u, user: {token: 12345}}\n", MCF_EINVAL,
	    "users[0].user.token: expected a string, got an integer");
	file_bad(fx, "users:\n- {name: u, user: {exec: cmd}}\n", MCF_EINVAL,
	    "users[0].user.exec: expected a mapping, got a string");
	file_bad(fx, "contexts:\n- {name: x, context: {namespace: 1.5}}\n",
	    MCF_EINVAL,
	    "contexts[0].context.namespace: expected a string, got a "
	    "number");
}

static void
test_kubeconfig_base64_errors(void **state)
{
	fixture *fx = *state;

	/* Reported for any entry, not only the one in use. */
	file_bad(fx,
	    "current-context: a\n"
	    "clusters:\n"
	    "- {name: c, cluster: {server: 'https://c'}}\n"
	    "users:\n"
	    "- name: unused\n"
	    "  user:\n"
	    "    client-certificate-data: 'not*base64'\n"
	    "contexts:\n"
	    "- {name: a, context: {cluster: c}}\n",
	    MCF_EINVAL,
	    "users[0].user.client-certificate-data: not valid "
	    "base64");
	file_bad(fx,
	    "clusters:\n"
	    "- name: c\n"
	    "  cluster:\n"
	    "    server: https://c\n"
	    "    certificate-authority-data: QUJD=RA==\n",
	    MCF_EINVAL,
	    "clusters[0].cluster.certificate-authority-data: not valid "
	    "base64");
	file_bad(fx,
	    "users:\n"
	    "- {name: a, user: {}}\n"
	    "- {name: b, user: {client-key-data: 'QUJD RA=='}}\n",
	    MCF_EINVAL, "users[1].user.client-key-data: not valid base64");
}

static void
test_kubeconfig_credential_errors(void **state)
{
	fixture *fx = *state;
	char    *ca = put(fx, "ca.crt", "PEM");
	free(ca);
	const char *head = "current-context: a\n"
	                   "clusters:\n"
	                   "- {name: c, cluster: {server: 'https://c'}}\n"
	                   "contexts:\n"
	                   "- {name: a, context: {cluster: c, user: u}}\n"
	                   "users:\n";
	char       *t;

	t = mcf_asprintf("%s- {name: u, user: {client-certificate-data: "
	                 "QUJD}}\n",
	    head);
	file_bad(fx, t, MCF_EINVAL,
	    "users[0].user: client-certificate without client-key");
	free(t);
	t = mcf_asprintf("%s- {name: u, user: {client-key: ca.crt}}\n", head);
	file_bad(fx, t, MCF_EINVAL,
	    "users[0].user: client-key without client-certificate");
	free(t);
	t = mcf_asprintf("%s- {name: u, user: {client-certificate-data: "
	                 "QUJD, client-certificate: ca.crt}}\n",
	    head);
	file_bad(fx, t, MCF_EINVAL,
	    "users[0].user.client-certificate-data: client-certificate is "
	    "set too; set only one");
	free(t);
	t = mcf_asprintf(
	    "%s- {name: u, user: {exec: {command: aws}}}\n", head);
	file_bad(fx, t, MCF_EUNSUPP,
	    "users[0].user.exec: not supported by mcfleet; use a token or a "
	    "client certificate");
	free(t);

	char *want;
	t    = mcf_asprintf("%s- {name: u, user: {tokenFile: gone}}\n", head);
	want = mcf_asprintf("users[0].user.tokenFile: %s/gone: No such file "
	                    "or directory",
	    fx->dir);
	file_bad(fx, t, MCF_ENOENT, want);
	free(want);
	free(t);

	t    = mcf_asprintf("current-context: a\n"
	                       "clusters:\n"
	                       "- name: c\n"
	                       "  cluster:\n"
	                       "    server: https://c\n"
	                       "    certificate-authority: missing/ca.pem\n"
	                       "contexts:\n"
	                       "- {name: a, context: {cluster: c}}\n");
	want = mcf_asprintf("clusters[0].cluster.certificate-authority: "
	                    "%s/missing/ca.pem: No such file or directory",
	    fx->dir);
	file_bad(fx, t, MCF_ENOENT, want);
	free(want);
	free(t);

	t = mcf_asprintf("current-context: a\n"
	                 "clusters:\n"
	                 "- name: c\n"
	                 "  cluster:\n"
	                 "    server: https://c\n"
	                 "    certificate-authority: ca.crt\n"
	                 "    certificate-authority-data: QUJD\n"
	                 "contexts:\n"
	                 "- {name: a, context: {cluster: c}}\n");
	file_bad(fx, t, MCF_EINVAL,
	    "clusters[0].cluster.certificate-authority-data: "
	    "certificate-authority is set too; set only one");
	free(t);

	t    = mcf_asprintf("current-context: a\n"
	                       "clusters:\n"
	                       "- name: c\n"
	                       "  cluster:\n"
	                       "    server: https://c\n"
	                       "    certificate-authority: .\n"
	                       "contexts:\n"
	                       "- {name: a, context: {cluster: c}}\n");
	want = mcf_asprintf("clusters[0].cluster.certificate-authority: "
	                    "%s/.: is a directory",
	    fx->dir);
	file_bad(fx, t, MCF_EINVAL, want);
	free(want);
	free(t);
}

static void
test_kubeconfig_file_errors(void **state)
{
	fixture *fx   = *state;
	char    *path = mcf_asprintf("%s/absent.yaml", fx->dir);
	char    *want = mcf_asprintf("%s: No such file or directory", path);

	load_bad(path, NULL, MCF_ENOENT, want);
	free(want);
	free(path);

	want = mcf_asprintf("%s: is a directory", fx->dir);
	load_bad(fx->dir, NULL, MCF_EINVAL, want);
	free(want);

	/* No KUBECONFIG and no HOME. */
	load_bad(NULL, NULL, MCF_ENOENT,
	    "no kubeconfig: KUBECONFIG and HOME are unset");
	setenv("HOME", fx->dir, 1);
	want = mcf_asprintf(
	    "%s/.kube/config: No such file or directory", fx->dir);
	load_bad(NULL, NULL, MCF_ENOENT, want);
	free(want);

	/* An empty file is an empty config. */
	path = put(fx, "empty.yaml", "# nothing\n");
	want = mcf_asprintf(
	    "%s: current-context: not set, and no context was given", path);
	load_bad(path, NULL, MCF_EINVAL, want);
	free(want);
	free(path);
}

static void
test_kubeconfig_malformed_yaml(void **state)
{
	fixture        *fx   = *state;
	char           *path = put(fx, "kc.yaml",
	              "apiVersion: v1\n"
	                        "clusters:\n"
	                        "- name: a\n"
	                        "  cluster:\n"
	                        "    server: https://a\n"
	                        "contexts: []\n"
	                        "kind: Config: x\n");
	char           *want = mcf_asprintf("%s:7:", path);
	mcf_kubeconfig *kc   = (mcf_kubeconfig *) 0x1;
	mcf_errinfo     ei;

	assert_int_equal(
	    mcf_kubeconfig_load(path, NULL, &kc, &ei), MCF_EINVAL);
	assert_ptr_equal(kc, (mcf_kubeconfig *) 0x1);
	if (strncmp(ei.msg, want, strlen(want)) != 0
	    || strstr(ei.msg, "mapping values are not allowed") == NULL)
		fail_msg("message: %s", ei.msg);
	free(want);
	free(path);

	/* Duplicate keys and a second document are malformed too. */
	path = put(fx, "kc.yaml", "current-context: a\ncurrent-context: b\n");
	want = mcf_asprintf("%s:2:", path);
	assert_int_equal(
	    mcf_kubeconfig_load(path, NULL, &kc, &ei), MCF_EINVAL);
	if (strncmp(ei.msg, want, strlen(want)) != 0)
		fail_msg("message: %s", ei.msg);
	free(want);
	free(path);
}

/* Every prefix of a valid kubeconfig and a set of odd documents must fail
 * or succeed cleanly (the sanitizers judge "cleanly"). */
static void
test_kubeconfig_hostile_input(void **state)
{
	fixture           *fx    = *state;
	static const char *odd[] = {
		"",
		"~",
		"null",
		"[]",
		"{}",
		"\"str\"",
		"42",
		"clusters: null\nusers: ~\ncontexts:\n",
		"clusters: [~]\n",
		"clusters: [{name: a, cluster: ~}]\n",
		"contexts: [{name: a, context: ~}]\ncurrent-context: a\n",
		"current-context: ''\n",
		"\xff\xfe\x00",
		"clusters: [{name: a, cluster: {server: 'http://'}}]\n"
		"contexts: [{name: a, context: {cluster: a}}]\n"
		"current-context: a\n",
		"clusters: [{name: a, cluster: {server: 'http://x'}}]\n"
		"contexts: [{name: a, context: {cluster: a, user: ''}}]\n"
		"current-context: a\n",
		"&a x: *a\n",
		"users: [{name: u, user: {client-key-data: '='}}]\n",
		"users: [{name: u, user: {client-key-data: ''}}]\n",
	};
	mcf_kubeconfig *kc;
	size_t          n = strlen(single_kc);

	for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++) {
		char *path = put(fx, "kc.yaml", odd[i]);
		kc         = NULL;
		if (mcf_kubeconfig_load(path, NULL, &kc, NULL) == MCF_OK)
			mcf_kubeconfig_destroy(kc);
		kc = NULL;
		if (mcf_kubeconfig_load(path, "a", &kc, NULL) == MCF_OK)
			mcf_kubeconfig_destroy(kc);
		free(path);
	}
	for (size_t cut = 0; cut <= n; cut++) {
		char *text = mcf_strndup(single_kc, cut);
		char *path = put(fx, "kc.yaml", text);
		kc         = NULL;
		if (mcf_kubeconfig_load(path, NULL, &kc, NULL) == MCF_OK)
			mcf_kubeconfig_destroy(kc);
		free(path);
		free(text);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_kubeconfig_single_file, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_kubeconfig_merge_first_wins, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_kubeconfig_context_override, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_kubeconfig_server_path_prefix, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_kubeconfig_relative_paths, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_kubeconfig_data_fields_decode, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_kubeconfig_token_and_token_file, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_kubeconfig_insecure, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_kubeconfig_in_cluster, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_kubeconfig_reference_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_kubeconfig_type_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_kubeconfig_base64_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_kubeconfig_credential_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_kubeconfig_file_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_kubeconfig_malformed_yaml, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_kubeconfig_hostile_input, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

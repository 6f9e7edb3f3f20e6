/*
 * kclient_test.c — the REST client (common/kclient.h) against kubesim.
 *
 * The group setup starts the kubesim binary named by $KUBESIM (posix_spawn,
 * --listen 127.0.0.1:0) and reads its "listening on URL" line; the TLS test
 * starts its own kubesim with a self-signed certificate made by the openssl
 * CLI in a temporary directory.  Faults are injected with POST
 * /_sim/faults through a client of the root plane and cleared after each
 * test.  Every kubesim started here is stopped with SIGTERM by its PID.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>

#include "alloc.h"
#include "kclient.h"
#include "ks_spawn.h"
#include "kubeconfig.h"

extern char **environ;

#define UA "kclient_test/0.1.0 (test; 1)"

static int scale = 1;

/* The kubesim child comes from the shared test helper. */
typedef ks_spawn kubesim;
#define now_ms() ks_spawn_now_ms()
#define kubesim_start(ks, extra) ks_spawn_start((ks), (extra), scale)
#define kubesim_stop(ks) ks_spawn_stop((ks), scale)


static kubesim sim; /* the shared plain-HTTP kubesim of the group */

/* A client for `url` with optional options. */
static mcf_kc *
client_for(const char *url, const mcf_kc_opts *o)
{
	mcf_kubeconfig kc = { 0 };
	kc.server         = (char *) url;
	kc.namespace      = "default";
	mcf_kc     *c     = NULL;
	mcf_errinfo ei;
	int         rc = mcf_kc_create(&kc, UA, o, &c, &ei);
	if (rc != 0)
		print_message("mcf_kc_create: %s\n", ei.msg);
	assert_int_equal(rc, 0);
	return c;
}

/* Adds a fault rule given as JSON text. */
static void
add_fault(const char *rule)
{
	mcf_kc *c = client_for(sim.url, NULL);
	json_t *r = json_loads(rule, 0, NULL);
	assert_non_null(r);
	json_t       *out = NULL;
	mcf_kc_status st;
	int rc = mcf_kc_request(c, "POST", "/_sim/faults", r, &out, &st);
	if (rc != 0)
		print_message("fault: %d %s\n", st.http_code, st.message);
	assert_int_equal(rc, 0);
	json_decref(out);
	json_decref(r);
	mcf_kc_destroy(c);
}

static int
clear_faults(void **state)
{
	(void) state;
	mcf_kc *c = client_for(sim.url, NULL);
	int rc = mcf_kc_request(c, "DELETE", "/_sim/faults", NULL, NULL, NULL);
	mcf_kc_destroy(c);
	return rc;
}

static const mcf_kc_ref cm_ref = { NULL, "v1", "configmaps", "default", NULL };

static json_t *
make_cm(const char *name, const char *label)
{
	json_t *o = json_pack(
	    "{s:{s:s},s:{s:s}}", "metadata", "name", name, "data", "k", "v1");
	if (label != NULL)
		json_object_set_new(json_object_get(o, "metadata"), "labels",
		    json_pack("{s:s}", "app", label));
	return o;
}

static const char *
jpath_str(json_t *o, const char *a, const char *b)
{
	return json_string_value(json_object_get(json_object_get(o, a), b));
}

/* ---- tests ----------------------------------------------------------- */

static void
test_kclient_configmap_crud(void **state)
{
	(void) state;
	mcf_kc       *c = client_for(sim.url, NULL);
	mcf_kc_status st;
	json_t       *out = NULL;

	json_t *cm = make_cm("crud-a", NULL);
	assert_int_equal(mcf_kc_create_object(c, &cm_ref, cm, &out, &st), 0);
	assert_int_equal(st.http_code, 201);
	char *uid = mcf_strdup(jpath_str(out, "metadata", "uid"));
	char *rv1 = mcf_strdup(jpath_str(out, "metadata", "resourceVersion"));
	json_decref(out);

	/* AlreadyExists. */
	assert_int_equal(
	    mcf_kc_create_object(c, &cm_ref, cm, &out, &st), MCF_EEXIST);
	assert_null(out);
	assert_int_equal(st.http_code, 409);
	assert_string_equal(st.reason, "AlreadyExists");
	assert_non_null(strstr(st.message, "crud-a"));

	mcf_kc_ref r = cm_ref;
	r.name       = "crud-a";
	assert_int_equal(mcf_kc_get(c, &r, &out, &st), 0);
	assert_string_equal(jpath_str(out, "data", "k"), "v1");

	/* Update with the current RV. */
	json_object_set_new(
	    json_object_get(out, "data"), "k", json_string("v2"));
	json_t *upd = NULL;
	assert_int_equal(mcf_kc_update(c, &r, out, &upd, &st), 0);
	assert_string_equal(jpath_str(upd, "data", "k"), "v2");
	json_decref(upd);

	/* Update with the stale RV: Conflict. */
	json_object_set_new(json_object_get(out, "metadata"),
	    "resourceVersion", json_string(rv1));
	assert_int_equal(mcf_kc_update(c, &r, out, &upd, &st), MCF_ECONFLICT);
	assert_int_equal(st.http_code, 409);
	assert_string_equal(st.reason, "Conflict");
	assert_true(strlen(st.message) > 0);
	json_decref(out);

	/* Merge patch and JSON patch. */
	json_t *mp = json_pack("{s:{s:s}}", "data", "m", "merged");
	assert_int_equal(
	    mcf_kc_patch(c, &r, MCF_KC_PATCH_MERGE, mp, &out, &st), 0);
	assert_string_equal(jpath_str(out, "data", "m"), "merged");
	json_decref(out);
	json_decref(mp);
	json_t *jp = json_pack("[{s:s,s:s,s:s}]", "op", "replace", "path",
	    "/data/k", "value", "v3");
	assert_int_equal(
	    mcf_kc_patch(c, &r, MCF_KC_PATCH_JSON, jp, &out, &st), 0);
	assert_string_equal(jpath_str(out, "data", "k"), "v3");
	json_decref(out);
	json_decref(jp);

	/* Delete with a wrong uid precondition, then the right one. */
	mcf_kc_delete_opts dopt = { .precondition_uid = "nope",
		.propagation_policy                   = "Background" };
	assert_int_equal(
	    mcf_kc_delete(c, &r, &dopt, &out, &st), MCF_ECONFLICT);
	assert_int_equal(st.http_code, 409);
	dopt.precondition_uid = uid;
	assert_int_equal(mcf_kc_delete(c, &r, &dopt, &out, &st), 0);
	json_decref(out);

	/* NotFound, with a name that needs encoding in another call. */
	assert_int_equal(mcf_kc_get(c, &r, &out, &st), MCF_ENOENT);
	assert_null(out);
	assert_int_equal(st.http_code, 404);
	assert_string_equal(st.reason, "NotFound");
	assert_non_null(strstr(st.message, "not found"));
	r.name = "a b/c?d";
	assert_int_equal(mcf_kc_get(c, &r, &out, &st), MCF_ENOENT);
	assert_string_equal(st.reason, "NotFound");

	json_decref(cm);
	free(uid);
	free(rv1);
	mcf_kc_destroy(c);
}

static void
test_kclient_project_crud(void **state)
{
	(void) state;
	mcf_kc          *c = client_for(sim.url, NULL);
	mcf_kc_status    st;
	json_t          *out = NULL;
	const mcf_kc_ref pr  = { "resourcemanager.miloapis.com", "v1alpha1",
		 "projects", NULL, NULL };
	json_t          *p   = json_pack("{s:s,s:s,s:{s:s},s:{s:{s:s,s:s}}}",
	               "apiVersion", "resourcemanager.miloapis.com/v1alpha1", "kind",
	               "Project", "metadata", "name", "crud-proj", "spec", "ownerRef",
	               "kind", "Organization", "name", "org-1");
	int              rc  = mcf_kc_create_object(c, &pr, p, &out, &st);
	if (rc != 0)
		print_message("create project: %s\n", st.message);
	assert_int_equal(rc, 0);
	json_decref(out);
	mcf_kc_ref r = pr;
	r.name       = "crud-proj";
	assert_int_equal(mcf_kc_get(c, &r, &out, &st), 0);
	assert_string_equal(
	    json_string_value(json_object_get(
	        json_object_get(json_object_get(out, "spec"), "ownerRef"),
	        "name")),
	    "org-1");
	/* Status subresource: the write succeeds, whatever is kept. */
	json_object_set_new(out, "status",
	    json_pack("{s:[{s:s,s:s,s:s,s:s,s:s}]}", "conditions", "type",
	        "Ready", "status", "False", "reason", "Testing", "message",
	        "x", "lastTransitionTime", "2026-01-01T00:00:00Z"));
	json_t *upd = NULL;
	rc          = mcf_kc_update_status(c, &r, out, &upd, &st);
	if (rc != 0)
		print_message("update status: %s\n", st.message);
	assert_int_equal(rc, 0);
	json_decref(upd);
	json_decref(out);
	/* Invalid: a project without ownerRef. */
	json_t *bad = json_pack(
	    "{s:{s:s},s:{}}", "metadata", "name", "bad-proj", "spec");
	rc = mcf_kc_create_object(c, &pr, bad, &out, &st);
	assert_int_equal(rc, MCF_EINVAL);
	assert_int_equal(st.http_code, 422);
	assert_string_equal(st.reason, "Invalid");
	json_decref(bad);
	assert_int_equal(mcf_kc_delete(c, &r, NULL, &out, &st), 0);
	json_decref(out);
	json_decref(p);
	mcf_kc_destroy(c);
}

static void
test_kclient_list_pages_and_selector(void **state)
{
	(void) state;
	mcf_kc       *c = client_for(sim.url, NULL);
	mcf_kc_status st;
	json_t       *out = NULL;
	for (int i = 0; i < 7; i++) {
		char name[32];
		snprintf(name, sizeof(name), "page-%d", i);
		json_t *cm = make_cm(name, i % 2 ? "odd" : "even");
		assert_int_equal(
		    mcf_kc_create_object(c, &cm_ref, cm, NULL, &st), 0);
		json_decref(cm);
	}
	int   seen = 0, pages = 0;
	char *cont = NULL;
	do {
		mcf_kc_list_opts lo = { .label_selector = "app in (odd,even)",
			.limit                          = 3,
			.cont                           = cont };
		assert_int_equal(mcf_kc_list(c, &cm_ref, &lo, &out, &st), 0);
		seen += (int) json_array_size(json_object_get(out, "items"));
		pages++;
		free(cont);
		const char *nc = jpath_str(out, "metadata", "continue");
		cont = (nc != NULL && nc[0] != '\0') ? mcf_strdup(nc) : NULL;
		json_decref(out);
	} while (cont != NULL && pages < 10);
	assert_int_equal(seen, 7);
	assert_int_equal(pages, 3);

	mcf_kc_list_opts lo = { .label_selector = "app=odd" };
	assert_int_equal(mcf_kc_list(c, &cm_ref, &lo, &out, &st), 0);
	assert_int_equal(json_array_size(json_object_get(out, "items")), 3);
	json_decref(out);
	lo = (mcf_kc_list_opts) { .field_selector = "metadata.name=page-2" };
	assert_int_equal(mcf_kc_list(c, &cm_ref, &lo, &out, &st), 0);
	assert_int_equal(json_array_size(json_object_get(out, "items")), 1);
	json_decref(out);
	mcf_kc_destroy(c);
}

static void
test_kclient_retry_429(void **state)
{
	(void) state;
	add_fault(
	    "{\"match\":{\"verb\":\"get\",\"resource\":\"namespaces\"},"
	    "\"action\":{\"status\":429,\"retry_after\":1},\"count\":2}");
	mcf_kc          *c = client_for(sim.url, NULL);
	mcf_kc_status    st;
	json_t          *out = NULL;
	const mcf_kc_ref r   = { NULL, "v1", "namespaces", NULL, "default" };
	int64_t          t0  = now_ms();
	assert_int_equal(mcf_kc_get(c, &r, &out, &st), 0);
	assert_true(now_ms() - t0 >= 2000);
	assert_int_equal(st.http_code, 200);
	json_decref(out);
	/* With one attempt the 429 comes back classified. */
	add_fault(
	    "{\"match\":{\"verb\":\"get\",\"resource\":\"namespaces\"},"
	    "\"action\":{\"status\":429,\"retry_after\":1},\"count\":1}");
	mcf_kc_opts o  = { .max_attempts = 1 };
	mcf_kc     *c1 = client_for(sim.url, &o);
	assert_int_equal(mcf_kc_get(c1, &r, &out, &st), MCF_EAGAIN);
	assert_int_equal(st.http_code, 429);
	assert_int_equal(st.retry_after, 1);
	assert_string_equal(st.reason, "TooManyRequests");
	mcf_kc_destroy(c1);
	mcf_kc_destroy(c);
}

static void
test_kclient_retry_500(void **state)
{
	(void) state;
	add_fault("{\"match\":{\"verb\":\"get\",\"resource\":\"namespaces\"},"
	          "\"action\":{\"status\":500},\"count\":2}");
	mcf_kc          *c = client_for(sim.url, NULL);
	mcf_kc_status    st;
	json_t          *out = NULL;
	const mcf_kc_ref r   = { NULL, "v1", "namespaces", NULL, "default" };
	assert_int_equal(mcf_kc_get(c, &r, &out, &st), 0);
	json_decref(out);
	add_fault("{\"match\":{\"verb\":\"get\",\"resource\":\"namespaces\"},"
	          "\"action\":{\"status\":503},\"count\":100}");
	mcf_kc_opts o  = { .max_attempts = 3, .backoff_ms = 10 };
	mcf_kc     *c1 = client_for(sim.url, &o);
	assert_int_equal(mcf_kc_get(c1, &r, &out, &st), MCF_EUNAVAIL);
	assert_int_equal(st.http_code, 503);
	mcf_kc_destroy(c1);
	mcf_kc_destroy(c);
}

static void
test_kclient_deadline(void **state)
{
	(void) state;
	add_fault("{\"match\":{\"verb\":\"get\",\"resource\":\"namespaces\"},"
	          "\"action\":{\"latency_ms\":4000},\"count\":5}");
	mcf_kc_opts      o = { .timeout_ms = 1000 };
	mcf_kc          *c = client_for(sim.url, &o);
	mcf_kc_status    st;
	json_t          *out = NULL;
	const mcf_kc_ref r   = { NULL, "v1", "namespaces", NULL, "default" };
	int64_t          t0  = now_ms();
	assert_int_equal(mcf_kc_get(c, &r, &out, &st), MCF_ETIMEDOUT);
	int64_t el = now_ms() - t0;
	assert_true(el >= 900 && el < 3000);
	assert_null(out);
	mcf_kc_destroy(c);
}

static void
test_kclient_malformed(void **state)
{
	(void) state;
	add_fault("{\"match\":{\"verb\":\"get\",\"resource\":\"namespaces\"},"
	          "\"action\":{\"conn\":\"truncate\",\"after_bytes\":20},"
	          "\"count\":100}");
	mcf_kc_opts      o = { .max_attempts = 2, .backoff_ms = 10 };
	mcf_kc          *c = client_for(sim.url, &o);
	mcf_kc_status    st;
	json_t          *out = NULL;
	const mcf_kc_ref r   = { NULL, "v1", "namespaces", NULL, "default" };
	int              rc  = mcf_kc_get(c, &r, &out, &st);
	print_message(
	    "truncated body: %s: %s\n", mcf_err_name(rc), st.message);
	assert_true(rc == MCF_EIO || rc == MCF_EPROTO);
	assert_null(out);
	assert_true(strlen(st.message) > 0);
	/* An error body that is not a Status still gives a clean error. */
	rc = mcf_kc_request(c, "GET", "/no/such/path", NULL, &out, &st);
	print_message("non-Status error: %s: %d [%s] %s\n", mcf_err_name(rc),
	    st.http_code, st.reason, st.message);
	assert_int_not_equal(rc, 0);
	assert_null(out);
	assert_true(st.http_code >= 400);
	assert_true(strlen(st.message) > 0);
	/* Response over the size limit. */
	clear_faults(NULL);
	mcf_kc_opts o2 = { .max_body = 50 };
	mcf_kc     *c2 = client_for(sim.url, &o2);
	assert_int_equal(mcf_kc_get(c2, &r, &out, &st), MCF_ETOOBIG);
	assert_null(out);
	mcf_kc_destroy(c2);
	mcf_kc_destroy(c);
}

static void
test_kclient_path_prefix(void **state)
{
	(void) state;
	mcf_kc          *root = client_for(sim.url, NULL);
	mcf_kc_status    st;
	json_t          *out = NULL;
	const mcf_kc_ref pr  = { "resourcemanager.miloapis.com", "v1alpha1",
		 "projects", NULL, NULL };
	json_t *p = json_pack("{s:{s:s},s:{s:{s:s,s:s}}}", "metadata", "name",
	    "p1", "spec", "ownerRef", "kind", "Organization", "name", "org-1");
	assert_int_equal(mcf_kc_create_object(root, &pr, p, NULL, &st), 0);
	json_decref(p);
	char   *purl = mcf_asprintf("%s/apis/resourcemanager.miloapis.com/"
	                              "v1alpha1/projects/p1/control-plane/",
	      sim.url);
	mcf_kc *pc   = client_for(purl, NULL);
	json_t *cm   = make_cm("in-plane", NULL);
	int     rc   = mcf_kc_create_object(pc, &cm_ref, cm, &out, &st);
	if (rc != 0)
		print_message(
		    "plane create: %d %s\n", st.http_code, st.message);
	assert_int_equal(rc, 0);
	json_decref(out);
	mcf_kc_ref r = cm_ref;
	r.name       = "in-plane";
	assert_int_equal(mcf_kc_get(pc, &r, &out, &st), 0);
	json_decref(out);
	/* The root plane does not have it. */
	assert_int_equal(mcf_kc_get(root, &r, &out, &st), MCF_ENOENT);
	json_decref(cm);
	free(purl);
	mcf_kc_destroy(pc);
	mcf_kc_destroy(root);
}

static char *
read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return NULL;
	char  *p = mcf_malloc(65536);
	size_t n = fread(p, 1, 65535, f);
	fclose(f);
	p[n] = '\0';
	*len = n;
	return p;
}

static int
make_cert(const char *dir, const char *stem)
{
	char *cmd = mcf_asprintf(
	    "openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 "
	    "-addext subjectAltName=IP:127.0.0.1 -days 1 -keyout %s/%s.key "
	    "-out %s/%s.crt >/dev/null 2>&1",
	    dir, stem, dir, stem);
	int rc = system(cmd);
	free(cmd);
	return rc;
}

static void
test_kclient_tls(void **state)
{
	(void) state;
	char dir[] = "/tmp/kclient_tls_XXXXXX";
	assert_non_null(mkdtemp(dir));
	assert_int_equal(make_cert(dir, "srv"), 0);
	assert_int_equal(make_cert(dir, "other"), 0);
	char       *crt     = mcf_asprintf("%s/srv.crt", dir);
	char       *key     = mcf_asprintf("%s/srv.key", dir);
	const char *extra[] = { "--tls-cert", crt, "--tls-key", key, NULL };
	kubesim     ts;
	assert_int_equal(kubesim_start(&ts, extra), 0);
	assert_int_equal(strncmp(ts.url, "https://", 8), 0);

	char  *ocrt   = mcf_asprintf("%s/other.crt", dir);
	size_t ca_len = 0, other_len = 0;
	char  *ca    = read_file(crt, &ca_len);
	char  *other = read_file(ocrt, &other_len);
	assert_non_null(ca);
	assert_non_null(other);

	const mcf_kc_ref r = { NULL, "v1", "namespaces", NULL, "default" };
	mcf_kc_status    st;
	json_t          *out = NULL;
	mcf_kubeconfig   kc  = { 0 };
	kc.server            = ts.url;
	kc.namespace         = "default";
	mcf_kc *c            = NULL;

	/* Right CA. */
	kc.ca_pem     = (unsigned char *) ca;
	kc.ca_pem_len = ca_len;
	assert_int_equal(mcf_kc_create(&kc, UA, NULL, &c, NULL), 0);
	int rc = mcf_kc_get(c, &r, &out, &st);
	if (rc != 0)
		print_message("tls: %s\n", st.message);
	assert_int_equal(rc, 0);
	json_decref(out);
	mcf_kc_destroy(c);

	/* Wrong CA. */
	kc.ca_pem     = (unsigned char *) other;
	kc.ca_pem_len = other_len;
	mcf_kc_opts o = { .max_attempts = 2, .backoff_ms = 10 };
	assert_int_equal(mcf_kc_create(&kc, UA, &o, &c, NULL), 0);
	assert_int_equal(mcf_kc_get(c, &r, &out, &st), MCF_EIO);
	assert_int_equal(st.http_code, 0);
	assert_true(strlen(st.message) > 0);
	mcf_kc_destroy(c);

	/* Insecure. */
	kc.insecure = true;
	assert_int_equal(mcf_kc_create(&kc, UA, NULL, &c, NULL), 0);
	assert_int_equal(mcf_kc_get(c, &r, &out, &st), 0);
	json_decref(out);
	mcf_kc_destroy(c);

	assert_int_equal(kubesim_stop(&ts), 0);
	char *rm = mcf_asprintf("rm -rf %s", dir);
	assert_int_equal(system(rm), 0);
	free(rm);
	free(ca);
	free(other);
	free(crt);
	free(key);
	free(ocrt);
}

static void
write_token(const char *path, const char *tok, time_t mtime)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "%s\n", tok);
	fclose(f);
	struct timespec ts[2] = { { mtime, 0 }, { mtime, 0 } };
	assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
}

static void
test_kclient_token_file(void **state)
{
	(void) state;
	char path[] = "/tmp/kclient_token_XXXXXX";
	int  fd     = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	time_t t0 = time(NULL);
	write_token(path, "token-one", t0 - 100);
	mcf_kubeconfig kc = { 0 };
	kc.server         = sim.url;
	kc.namespace      = "default";
	kc.token          = "literal";
	kc.token_file     = path;
	mcf_kc *c         = NULL;
	assert_int_equal(mcf_kc_create(&kc, UA, NULL, &c, NULL), 0);
	char *t = mcf_kc_current_token(c);
	assert_string_equal(t, "token-one");
	free(t);
	/* Rotated: same length, new mtime. */
	write_token(path, "token-two", t0 - 50);
	t = mcf_kc_current_token(c);
	assert_string_equal(t, "token-two");
	free(t);
	/* Requests still work with the token sent. */
	const mcf_kc_ref r = { NULL, "v1", "namespaces", NULL, "default" };
	assert_int_equal(mcf_kc_get(c, &r, NULL, NULL), 0);
	mcf_kc_destroy(c);
	/* Literal token when there is no file. */
	kc.token_file = NULL;
	assert_int_equal(mcf_kc_create(&kc, UA, NULL, &c, NULL), 0);
	t = mcf_kc_current_token(c);
	assert_string_equal(t, "literal");
	free(t);
	mcf_kc_destroy(c);
	unlink(path);
}

static void
test_kclient_classify(void **state)
{
	(void) state;
	assert_int_equal(mcf_kc_classify("NotFound", 404), MCF_ENOENT);
	assert_int_equal(mcf_kc_classify("AlreadyExists", 409), MCF_EEXIST);
	assert_int_equal(mcf_kc_classify("Conflict", 409), MCF_ECONFLICT);
	assert_int_equal(mcf_kc_classify("", 409), MCF_ECONFLICT);
	assert_int_equal(mcf_kc_classify("Expired", 410), MCF_EGONE);
	assert_int_equal(mcf_kc_classify(NULL, 410), MCF_EGONE);
	assert_int_equal(mcf_kc_classify("TooManyRequests", 429), MCF_EAGAIN);
	assert_int_equal(mcf_kc_classify("Invalid", 422), MCF_EINVAL);
	assert_int_equal(mcf_kc_classify("Forbidden", 403), MCF_EPERM);
	assert_int_equal(mcf_kc_classify(NULL, 401), MCF_EPERM);
	assert_int_equal(mcf_kc_classify(NULL, 503), MCF_EUNAVAIL);
	assert_int_equal(mcf_kc_classify(NULL, 500), MCF_EINTERNAL);
	/* Reason wins over the code. */
	assert_int_equal(mcf_kc_classify("NotFound", 500), MCF_ENOENT);
	assert_int_equal(mcf_kc_classify(NULL, 200), 0);
}

static void
test_kclient_rate_limit(void **state)
{
	(void) state;
	mcf_kc_opts      o  = { .qps = 5, .burst = 1 };
	mcf_kc          *c  = client_for(sim.url, &o);
	const mcf_kc_ref r  = { NULL, "v1", "namespaces", NULL, "default" };
	int64_t          t0 = now_ms();
	for (int i = 0; i < 4; i++)
		assert_int_equal(mcf_kc_get(c, &r, NULL, NULL), 0);
	/* One token at once, then one per 200 ms. */
	assert_true(now_ms() - t0 >= 550);
	mcf_kc_destroy(c);
	/* A deadline shorter than the wait for a token. */
	mcf_kc_opts o2 = { .qps = 0.5, .burst = 1, .timeout_ms = 300 };
	c              = client_for(sim.url, &o2);
	mcf_kc_status st;
	assert_int_equal(mcf_kc_get(c, &r, NULL, &st), 0);
	assert_int_equal(mcf_kc_get(c, &r, NULL, &st), MCF_ETIMEDOUT);
	mcf_kc_destroy(c);
}

/* A one-shot HTTP server on loopback that answers `n` requests, each with
 * the canned `reply`, and closes each connection. */
typedef struct canned {
	int         lfd;
	int         n;
	const char *reply; /* borrowed */
	pthread_t   thr;
} canned;

static void *
canned_run(void *arg)
{
	canned *cs = arg;
	for (int i = 0; i < cs->n; i++) {
		struct pollfd p = { .fd = cs->lfd, .events = POLLIN };
		if (poll(&p, 1, 10000) <= 0)
			break;
		int fd = accept(cs->lfd, NULL, NULL);
		if (fd < 0)
			break;
		char    buf[4096];
		size_t  got = 0;
		ssize_t r;
		while (got < sizeof(buf) - 1
		    && (r = read(fd, buf + got, sizeof(buf) - 1 - got)) > 0) {
			got += (size_t) r;
			buf[got] = '\0';
			if (strstr(buf, "\r\n\r\n") != NULL)
				break;
		}
		ssize_t w = write(fd, cs->reply, strlen(cs->reply));
		(void) w;
		close(fd);
	}
	return NULL;
}

static void
canned_start(canned *cs, const char *reply, int n, char *url, size_t ul)
{
	cs->reply             = reply;
	cs->n                 = n;
	cs->lfd               = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET,
		.sin_addr.s_addr              = htonl(INADDR_LOOPBACK) };
	socklen_t          sl = sizeof(sa);
	assert_int_equal(bind(cs->lfd, (struct sockaddr *) &sa, sl), 0);
	assert_int_equal(listen(cs->lfd, 8), 0);
	assert_int_equal(
	    getsockname(cs->lfd, (struct sockaddr *) &sa, &sl), 0);
	snprintf(url, ul, "http://127.0.0.1:%d", ntohs(sa.sin_port));
	assert_int_equal(pthread_create(&cs->thr, NULL, canned_run, cs), 0);
}

static void
canned_stop(canned *cs)
{
	shutdown(cs->lfd, SHUT_RDWR);
	pthread_join(cs->thr, NULL);
	close(cs->lfd);
}

static void
test_kclient_non_json_bodies(void **state)
{
	(void) state;
	const mcf_kc_ref r = { NULL, "v1", "namespaces", NULL, "default" };
	mcf_kc_status    st;
	json_t          *out = NULL;
	char             url[64];
	canned           cs;
	mcf_kc_opts      o = { .max_attempts = 2, .backoff_ms = 10 };

	/* A 502 with an HTML body: retried, then classified by code. */
	canned_start(&cs,
	    "HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/html\r\n"
	    "Content-Length: 17\r\nConnection: close\r\n\r\n"
	    "<html>bad\x01</html>",
	    2, url, sizeof(url));
	mcf_kc *c = client_for(url, &o);
	assert_int_equal(mcf_kc_get(c, &r, &out, &st), MCF_EUNAVAIL);
	assert_null(out);
	assert_int_equal(st.http_code, 502);
	assert_string_equal(st.reason, "");
	assert_non_null(strstr(st.message, "<html>bad?</html>"));
	mcf_kc_destroy(c);
	canned_stop(&cs);

	/* A 409 whose Status is cut short: classified by code. */
	canned_start(&cs,
	    "HTTP/1.1 409 Conflict\r\nContent-Type: application/json\r\n"
	    "Content-Length: 29\r\nConnection: close\r\n\r\n"
	    "{\"kind\":\"Status\",\"reason\":\"Al",
	    1, url, sizeof(url));
	c = client_for(url, &o);
	assert_int_equal(mcf_kc_get(c, &r, &out, &st), MCF_ECONFLICT);
	assert_int_equal(st.http_code, 409);
	mcf_kc_destroy(c);
	canned_stop(&cs);

	/* A 200 whose body is not JSON. */
	canned_start(&cs,
	    "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"
	    "Connection: close\r\n\r\nhello",
	    1, url, sizeof(url));
	c = client_for(url, &o);
	assert_int_equal(mcf_kc_get(c, &r, &out, &st), MCF_EPROTO);
	assert_null(out);
	assert_int_equal(st.http_code, 200);
	mcf_kc_destroy(c);
	canned_stop(&cs);
}

static int
group_setup(void **state)
{
	(void) state;
	const char *s = getenv("MCF_TEST_TIMEOUT_SCALE");
	if (s != NULL && atoi(s) > 0)
		scale = atoi(s);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	return kubesim_start(&sim, NULL);
}

static int
group_teardown(void **state)
{
	(void) state;
	int st = kubesim_stop(&sim);
	curl_global_cleanup();
	return st == 0 ? 0 : -1;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kclient_classify),
		cmocka_unit_test_teardown(
		    test_kclient_configmap_crud, clear_faults),
		cmocka_unit_test_teardown(
		    test_kclient_project_crud, clear_faults),
		cmocka_unit_test_teardown(
		    test_kclient_list_pages_and_selector, clear_faults),
		cmocka_unit_test_teardown(
		    test_kclient_retry_429, clear_faults),
		cmocka_unit_test_teardown(
		    test_kclient_retry_500, clear_faults),
		cmocka_unit_test_teardown(test_kclient_deadline, clear_faults),
		cmocka_unit_test_teardown(
		    test_kclient_malformed, clear_faults),
		cmocka_unit_test_teardown(
		    test_kclient_path_prefix, clear_faults),
		cmocka_unit_test(test_kclient_rate_limit),
		cmocka_unit_test(test_kclient_non_json_bodies),
		cmocka_unit_test(test_kclient_tls),
		cmocka_unit_test_teardown(
		    test_kclient_token_file, clear_faults),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

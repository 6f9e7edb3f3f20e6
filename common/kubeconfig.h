/*
 * kubeconfig.h — where and how to reach a Kubernetes API server.
 *
 * Two sources, both resolved into one mcf_kubeconfig:
 *   - kubeconfig files, loaded and merged the way kubectl does
 *     (mcf_kubeconfig_load);
 *   - in-cluster config: the pod's service-account files plus
 *     KUBERNETES_SERVICE_HOST/PORT (mcf_kubeconfig_in_cluster).
 *
 * Every error names the file, the field and what is wrong, for example
 *   kc.yaml: contexts[1].context.cluster: cluster "nope" not found
 *   kc.yaml:7:3: mapping values are not allowed here
 *   kc.yaml: users[0].user.client-certificate-data: not valid base64
 * The file is named as it was given (explicit path, KUBECONFIG entry or
 * $HOME/.kube/config); indexes count entries within that file.
 *
 * These functions read files and the environment and keep no state; call
 * them from any thread, but not while another thread changes the
 * environment.
 */
#ifndef MCF_COMMON_KUBECONFIG_H
#define MCF_COMMON_KUBECONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"

/* Default service-account directory of a pod. */
#define MCF_KUBECONFIG_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

/* A resolved connection.  A plain value type with public fields (STYLE.md
 * §2): the REST client reads them directly.  Every pointer is owned by the
 * struct and freed by mcf_kubeconfig_destroy(); treat them as read-only. */
typedef struct mcf_kubeconfig {
	/* Server URL exactly as configured, including any path prefix
	 * ("http://127.0.0.1:P/apis/.../projects/p1/control-plane"); only
	 * trailing '/' are removed, so callers append "/api/v1/...".
	 * Always starts with "http://" or "https://".  Never NULL. */
	char *server;
	/* CA bundle (PEM bytes, NUL-terminated for convenience; the length
	 * excludes the NUL), from certificate-authority-data, the
	 * certificate-authority file or the pod's ca.crt.  NULL: trust the
	 * system roots. */
	unsigned char *ca_pem;
	size_t         ca_pem_len;
	/* Client certificate and key (PEM bytes, NUL-terminated), from the
	 * -data fields or the files.  Both NULL or both set. */
	unsigned char *cert_pem;
	size_t         cert_pem_len;
	unsigned char *key_pem;
	size_t         key_pem_len;
	/* Literal bearer token from the kubeconfig's `token`, or NULL. */
	char *token;
	/* Absolute path of a bearer-token file (kubeconfig `tokenFile`, or
	 * the pod's service-account token), or NULL.  It was readable at
	 * load time.  When set it takes precedence over `token`, as in
	 * client-go: the client re-reads it, because projected tokens
	 * rotate. */
	char *token_file;
	/* insecure-skip-tls-verify: do not verify the server certificate. */
	bool insecure;
	/* tls-server-name: name to verify the server certificate against
	 * instead of the URL's host, or NULL. */
	char *tls_server_name;
	/* Namespace of the context (or the pod's namespace file); "default"
	 * when unset.  Never NULL. */
	char *namespace;
	/* Names of the context, cluster and user that were used.  NULL for
	 * in-cluster config; `user` is also NULL when the context names no
	 * user (anonymous). */
	char *context;
	char *cluster;
	char *user;
} mcf_kubeconfig;

/* Loads kubeconfig files and resolves one context, as kubectl does.
 *
 * Files: `path` if not NULL (it must exist; KUBECONFIG is then ignored);
 * else the ':'-separated list in KUBECONFIG if set and non-empty (empty
 * entries and repeated paths are skipped, missing files are ignored, at
 * least one must exist); else $HOME/.kube/config.
 *
 * Merging: the first file that defines a cluster, user or context name
 * wins that whole entry; current-context comes from the first file that
 * sets it.  A name defined twice within one file is an error.
 *
 * Context: `context` if not NULL and non-empty (kubectl --context), else
 * the merged current-context.  Its cluster must exist and have a server;
 * its user, when named, must exist.  Relative certificate-authority,
 * client-certificate, client-key and tokenFile paths are resolved against
 * the directory of the file that defined the entry.  A -data field (base64)
 * and its file form may not both be set; a client certificate needs a key.
 * Empty strings count as unset, as in kubectl.  Unknown fields are ignored;
 * exec and auth-provider credentials are rejected with MCF_EUNSUPP.
 *
 * Every file is checked in full (YAML syntax, field types, base64), not
 * only the entries the chosen context uses.  Errors: MCF_EINVAL for a bad
 * file, MCF_ENOENT for a missing file or name, MCF_EUNSUPP, MCF_ETOOBIG,
 * or the errno translation of a failed read; `ei` (may be NULL) gets the
 * message.  `path` and `context` are borrowed for the call.  On success
 * `*out` is new (mcf_kubeconfig_destroy); on failure it is untouched. */
int mcf_kubeconfig_load(const char *path, const char *context,
    mcf_kubeconfig **out, mcf_errinfo *ei);

/* In-cluster config, as client-go's rest.InClusterConfig: server
 * "https://HOST:PORT" from KUBERNETES_SERVICE_HOST and _PORT (an IPv6
 * host is bracketed), token_file `sa_dir`/token (must be readable),
 * ca_pem from `sa_dir`/ca.crt (NULL when that file is missing), namespace
 * from `sa_dir`/namespace (trimmed; "default" when missing or empty).
 * `sa_dir` NULL means MCF_KUBECONFIG_SA_DIR; borrowed for the call.
 * MCF_ENOENT when either variable is unset or empty (not in a pod),
 * MCF_EINVAL for a bad port.  `*out` as for mcf_kubeconfig_load. */
int mcf_kubeconfig_in_cluster(
    const char *sa_dir, mcf_kubeconfig **out, mcf_errinfo *ei);

/* What a controller binary uses: mcf_kubeconfig_load(path, context) when
 * `path` is given or $KUBECONFIG is set, else mcf_kubeconfig_in_cluster()
 * (client-go's order).  Errors and `*out` as for those. */
int mcf_kubeconfig_resolve(const char *path, const char *context,
    mcf_kubeconfig **out, mcf_errinfo *ei);

/* A deep copy of `kc` (borrowed for the call) in `*out` (new; destroy it
 * with mcf_kubeconfig_destroy).  When `server` is not NULL it replaces
 * the copy's server URL (trailing '/' removed), as for a project control
 * plane reached with the same credentials under another URL.  Errors:
 * MCF_EINVAL when `server` does not start with http:// or https://;
 * `*out` is untouched then. */
int mcf_kubeconfig_dup(
    const mcf_kubeconfig *kc, const char *server, mcf_kubeconfig **out);

/* Frees `kc` and everything it owns.  NULL is allowed. */
void mcf_kubeconfig_destroy(mcf_kubeconfig *kc);

#endif /* MCF_COMMON_KUBECONFIG_H */

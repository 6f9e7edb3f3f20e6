/*
 * transport.h — TLS for the fleet's NNG transport (tls+tcp://).
 *
 * The coordinator listens on tls+tcp:// with a certificate and key (PEM
 * files, as a Kubernetes TLS Secret mounts them: tls.crt and tls.key);
 * given a CA it also requires and verifies worker certificates (mutual
 * TLS).  A worker that dials tls+tcp:// verifies the coordinator against
 * its CA and, when given a certificate and key, presents them.
 *
 * TLS protects the transport (privacy, and the peer's identity when
 * verified); every frame is still authenticated with the HMAC key
 * (proto/README.md), with or without TLS.
 */
#ifndef MCF_PROTO_TRANSPORT_H
#define MCF_PROTO_TRANSPORT_H

#include <stdbool.h>

#include <nng/nng.h>

#include "err.h"

typedef struct mcf_proto_tls_opts {
	const char *cert_file;   /* PEM certificate (chain); NULL: none */
	const char *key_file;    /* PEM private key; with cert_file */
	const char *ca_file;     /* PEM CA bundle to verify the peer */
	const char *server_name; /* client: name to verify; NULL: the
	                            URL's host */
} mcf_proto_tls_opts;

/* True if `url` uses NNG's TLS transport (tls+tcp://, tls+tcp4://,
 * tls+tcp6://). */
bool mcf_proto_url_is_tls(const char *url);

/* True if any of the options is set. */
bool mcf_proto_tls_configured(const mcf_proto_tls_opts *o);

/* Starts a listener on `sock` at `url`.  A tls+tcp:// URL needs
 * cert_file and key_file (and with ca_file verifies client certificates);
 * a plain URL with TLS options set is an error, as is TLS on a plain URL.
 * *out is the started listener. */
int mcf_proto_listen(nng_socket sock, const char *url,
    const mcf_proto_tls_opts *o, nng_listener *out, mcf_errinfo *ei);

/* Starts a non-blocking dialer on `sock` to `url`.  A tls+tcp:// URL
 * needs ca_file; with ca_file set a plain URL is refused (no silent
 * downgrade to plaintext when the Lease names a plain address). */
int mcf_proto_dial(nng_socket sock, const char *url,
    const mcf_proto_tls_opts *o, nng_dialer *out, mcf_errinfo *ei);

/* Checks that the options' files exist and parse (cert and key match),
 * for flag validation at start.  `server` selects the listener side. */
int mcf_proto_tls_check(
    const mcf_proto_tls_opts *o, bool server, mcf_errinfo *ei);

/* nng_close(sock) on a thread of its own, waited for at most `wait_ms`.
 * With nng 1.5.2, nng_close was seen to wait forever on a condition
 * variable inside libnng (a dialing pair1 socket on a worker's SIGTERM,
 * a tls+tcp listener on the coordinator's, mostly on a busy machine); a
 * process must still exit, so after `wait_ms` it goes on without it and
 * the closing thread is left behind (logged NNG-CLOSE).  True if the close
 * returned. */
bool mcf_proto_close_bounded(nng_socket sock, int wait_ms);

/* False once a close was left behind: nng_fini() at exit would then wait
 * on it forever, so skip it. */
bool mcf_proto_nng_quiescent(void);

#endif

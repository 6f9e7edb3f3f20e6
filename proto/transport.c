/*
 * transport.c — TLS for the fleet's NNG transport (transport.h).
 */
#include "transport.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <nng/supplemental/tls/tls.h>
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "alloc.h"
#include "log.h"

/* Cap for a PEM file: a certificate chain or a CA bundle. */
#define PEM_MAX (1024 * 1024)

bool
mcf_proto_url_is_tls(const char *url)
{
	return url != NULL && strncmp(url, "tls+tcp", 7) == 0 &&
	    (strncmp(url + 7, "://", 3) == 0 ||
	        strncmp(url + 7, "4://", 4) == 0 ||
	        strncmp(url + 7, "6://", 4) == 0);
}

static bool
set(const char *s)
{
	return s != NULL && s[0] != '\0';
}

bool
mcf_proto_tls_configured(const mcf_proto_tls_opts *o)
{
	return o != NULL &&
	    (set(o->cert_file) || set(o->key_file) || set(o->ca_file) ||
	        set(o->server_name));
}

static int
nng_code(int rv)
{
	switch (rv) {
	case NNG_ENOMEM:
		return MCF_ENOMEM;
	case NNG_EINVAL:
	case NNG_EADDRINVAL:
	case NNG_ENOTSUP: /* a scheme this NNG lacks: the URL is wrong */
		return MCF_EINVAL;
	case NNG_EADDRINUSE:
		return MCF_ESYS;
	case NNG_ECRYPTO:
	case NNG_EPEERAUTH:
		return MCF_EAUTH;
	default:
		return MCF_EIO;
	}
}

/* Reads a PEM file into a NUL-terminated string. */
static int
read_pem(const char *flag, const char *path, char **out, mcf_errinfo *ei)
{
	FILE *fp = fopen(path, "rb");
	if (fp == NULL)
		return mcf_errinfo_set(ei, mcf_err_from_errno(errno),
		    "%s %s: %s", flag, path, strerror(errno));
	size_t cap = 4096, len = 0;
	char  *buf = mcf_malloc(cap);
	for (;;) {
		if (len + 1 == cap) {
			if (cap >= PEM_MAX) {
				fclose(fp);
				free(buf);
				return mcf_errinfo_set(ei, MCF_ETOOBIG,
				    "%s %s: larger than %d bytes", flag, path,
				    PEM_MAX);
			}
			cap *= 2;
			buf = mcf_realloc(buf, cap);
		}
		size_t n = fread(buf + len, 1, cap - len - 1, fp);
		if (n == 0)
			break;
		len += n;
	}
	bool bad = ferror(fp) != 0;
	fclose(fp);
	buf[len] = '\0';
	if (bad || strstr(buf, "-----BEGIN ") == NULL) {
		free(buf);
		return mcf_errinfo_set(ei, MCF_EINVAL,
		    "%s %s: %s", flag, path,
		    bad ? "read error" : "no PEM block in the file");
	}
	*out = buf;
	return MCF_OK;
}

/* NNG's engine (mbedTLS) accepts a key that is not the certificate's and
 * fails every handshake later; check the pair with OpenSSL up front. */
static int
check_pair(const mcf_proto_tls_opts *o, const char *cert, const char *key,
    mcf_errinfo *ei)
{
	BIO      *cb = BIO_new_mem_buf(cert, -1);
	BIO      *kb = BIO_new_mem_buf(key, -1);
	X509     *x  = cb ? PEM_read_bio_X509(cb, NULL, NULL, NULL) : NULL;
	EVP_PKEY *k  = kb ? PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL) : NULL;
	int       rc = MCF_OK;
	if (x == NULL)
		rc = mcf_errinfo_set(ei, MCF_EINVAL,
		    "--tls-cert %s: no PEM certificate", o->cert_file);
	else if (k == NULL)
		rc = mcf_errinfo_set(ei, MCF_EINVAL,
		    "--tls-key %s: no unencrypted PEM private key", o->key_file);
	else if (X509_check_private_key(x, k) != 1)
		rc = mcf_errinfo_set(ei, MCF_EINVAL,
		    "--tls-key %s is not the key of --tls-cert %s", o->key_file,
		    o->cert_file);
	EVP_PKEY_free(k);
	X509_free(x);
	BIO_free(kb);
	BIO_free(cb);
	return rc;
}

static bool
ip_literal(const char *host)
{
	unsigned char buf[16];
	return inet_pton(AF_INET, host, buf) == 1 ||
	    inet_pton(AF_INET6, host, buf) == 1;
}

/* Builds a TLS configuration for one side; NULL-safe on failure. */
static int
tls_config(const mcf_proto_tls_opts *o, bool server, const char *host,
    nng_tls_config **out, mcf_errinfo *ei)
{
	nng_tls_config *cfg = NULL;
	char           *cert = NULL, *key = NULL;
	int             rc   = MCF_OK, rv;
	if (set(o->cert_file) != set(o->key_file))
		return mcf_errinfo_set(ei, MCF_EINVAL,
		    "--tls-cert and --tls-key go together");
	if (server && !set(o->cert_file))
		return mcf_errinfo_set(ei, MCF_EINVAL,
		    "a tls+tcp:// listener needs --tls-cert and --tls-key");
	if (!server && !set(o->ca_file))
		return mcf_errinfo_set(ei, MCF_EINVAL,
		    "dialing a tls+tcp:// coordinator needs --tls-ca to "
		    "verify it");
	rv = nng_tls_config_alloc(&cfg,
	    server ? NNG_TLS_MODE_SERVER : NNG_TLS_MODE_CLIENT);
	if (rv != 0)
		return mcf_errinfo_set(ei, nng_code(rv), "TLS: %s",
		    nng_strerror(rv));
	if (set(o->cert_file)) {
		if ((rc = read_pem("--tls-cert", o->cert_file, &cert, ei)) !=
		        MCF_OK ||
		    (rc = read_pem("--tls-key", o->key_file, &key, ei)) !=
		        MCF_OK ||
		    (rc = check_pair(o, cert, key, ei)) != MCF_OK)
			goto fail;
		rv = nng_tls_config_own_cert(cfg, cert, key, NULL);
		if (rv != 0) {
			rc = mcf_errinfo_set(ei, nng_code(rv),
			    "--tls-cert %s / --tls-key %s: %s", o->cert_file,
			    o->key_file, nng_strerror(rv));
			goto fail;
		}
	}
	if (set(o->ca_file)) {
		rv = nng_tls_config_ca_file(cfg, o->ca_file);
		if (rv == 0)
			rv = nng_tls_config_auth_mode(
			    cfg, NNG_TLS_AUTH_MODE_REQUIRED);
		if (rv != 0) {
			rc = mcf_errinfo_set(ei, nng_code(rv), "--tls-ca %s: %s",
			    o->ca_file, nng_strerror(rv));
			goto fail;
		}
	}
	if (!server) {
		const char *name = set(o->server_name) ? o->server_name : host;
		if (!set(o->server_name) && set(host) && ip_literal(host)) {
			/* mbedTLS 2.28 matches DNS names only, never IP
			 * addresses: say so rather than fail each handshake. */
			rc = mcf_errinfo_set(ei, MCF_EINVAL,
			    "the coordinator's address %s is an IP address; set "
			    "--tls-server-name to a DNS name in its certificate "
			    "(NNG's TLS engine does not match IP addresses)",
			    host);
			goto fail;
		}
		if (set(name) && (rv = nng_tls_config_server_name(cfg, name)) !=
		        0) {
			rc = mcf_errinfo_set(ei, nng_code(rv),
			    "TLS server name %s: %s", name, nng_strerror(rv));
			goto fail;
		}
	}
	free(cert);
	free(key);
	*out = cfg;
	return MCF_OK;
fail:
	free(cert);
	free(key);
	nng_tls_config_free(cfg);
	return rc;
}

/* The host of "scheme://host:port" ("[v6]:port" unbracketed), or "". */
static void
url_host(const char *url, char *host, size_t cap)
{
	host[0] = '\0';
	const char *p = strstr(url, "://");
	if (p == NULL || cap == 0)
		return;
	p += 3;
	const char *end;
	if (*p == '[') {
		p++;
		end = strchr(p, ']');
	} else {
		end = strrchr(p, ':');
	}
	if (end == NULL)
		end = p + strlen(p);
	size_t n = (size_t) (end - p);
	if (n >= cap)
		n = cap - 1;
	memcpy(host, p, n);
	host[n] = '\0';
}

int
mcf_proto_tls_check(
    const mcf_proto_tls_opts *o, bool server, mcf_errinfo *ei)
{
	nng_tls_config *cfg = NULL;
	int rc = tls_config(o, server, "localhost", &cfg, ei);
	if (rc == MCF_OK)
		nng_tls_config_free(cfg);
	return rc;
}

int
mcf_proto_listen(nng_socket sock, const char *url,
    const mcf_proto_tls_opts *o, nng_listener *out, mcf_errinfo *ei)
{
	bool tls = mcf_proto_url_is_tls(url);
	if (!tls && mcf_proto_tls_configured(o))
		return mcf_errinfo_set(ei, MCF_EINVAL,
		    "--listen %s: TLS options are set but the URL is not "
		    "tls+tcp://",
		    url);
	nng_listener l;
	int          rv = nng_listener_create(&l, sock, url);
	if (rv != 0)
		return mcf_errinfo_set(ei, nng_code(rv), "--listen %s: %s", url,
		    nng_strerror(rv));
	if (tls) {
		nng_tls_config *cfg = NULL;
		int rc = tls_config(o, true, NULL, &cfg, ei);
		if (rc != MCF_OK) {
			nng_listener_close(l);
			return rc;
		}
		rv = nng_listener_set_ptr(l, NNG_OPT_TLS_CONFIG, cfg);
		nng_tls_config_free(cfg); /* the listener holds its own */
		if (rv != 0) {
			nng_listener_close(l);
			return mcf_errinfo_set(ei, nng_code(rv),
			    "--listen %s: TLS: %s", url, nng_strerror(rv));
		}
	}
	rv = nng_listener_start(l, 0);
	if (rv != 0) {
		nng_listener_close(l);
		return mcf_errinfo_set(ei, nng_code(rv), "--listen %s: %s", url,
		    nng_strerror(rv));
	}
	*out = l;
	return MCF_OK;
}

int
mcf_proto_dial(nng_socket sock, const char *url,
    const mcf_proto_tls_opts *o, nng_dialer *out, mcf_errinfo *ei)
{
	bool tls = mcf_proto_url_is_tls(url);
	if (!tls && o != NULL && set(o->ca_file))
		return mcf_errinfo_set(ei, MCF_EPERM,
		    "the coordinator's address %s is not tls+tcp:// but "
		    "--tls-ca is set: refusing plaintext",
		    url);
	nng_dialer d;
	int        rv = nng_dialer_create(&d, sock, url);
	if (rv != 0)
		return mcf_errinfo_set(ei, nng_code(rv), "dial %s: %s", url,
		    nng_strerror(rv));
	if (tls) {
		char host[256];
		url_host(url, host, sizeof(host));
		nng_tls_config    *cfg   = NULL;
		mcf_proto_tls_opts empty = {0};
		int rc = tls_config(o != NULL ? o : &empty, false, host, &cfg, ei);
		if (rc != MCF_OK) {
			nng_dialer_close(d);
			return rc;
		}
		rv = nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, cfg);
		nng_tls_config_free(cfg);
		if (rv != 0) {
			nng_dialer_close(d);
			return mcf_errinfo_set(ei, nng_code(rv), "dial %s: TLS: %s",
			    url, nng_strerror(rv));
		}
	}
	rv = nng_dialer_start(d, NNG_FLAG_NONBLOCK);
	if (rv != 0) {
		nng_dialer_close(d);
		return mcf_errinfo_set(ei, nng_code(rv), "dial %s: %s", url,
		    nng_strerror(rv));
	}
	*out = d;
	return MCF_OK;
}

/* ---- bounded nng_close (transport.h) ---- */

static atomic_bool close_stuck;

bool
mcf_proto_nng_quiescent(void)
{
	return !atomic_load(&close_stuck);
}

typedef struct closer {
	nng_socket      sock;
	pthread_mutex_t mtx;
	pthread_cond_t  cv;
	bool            done;
	int             refs; /* the closing thread and the waiter */
} closer;

static void
closer_unref(closer *c)
{
	pthread_mutex_lock(&c->mtx);
	bool last = --c->refs == 0;
	pthread_mutex_unlock(&c->mtx);
	if (last) {
		pthread_cond_destroy(&c->cv);
		pthread_mutex_destroy(&c->mtx);
		free(c);
	}
}

static void *
close_main(void *arg)
{
	closer *c = arg;
	nng_close(c->sock);
	pthread_mutex_lock(&c->mtx);
	c->done = true;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mtx);
	closer_unref(c);
	return NULL;
}

bool
mcf_proto_close_bounded(nng_socket sock, int wait_ms)
{
	closer *c = mcf_calloc(1, sizeof(*c));
	c->sock   = sock;
	c->refs   = 2;
	pthread_mutex_init(&c->mtx, NULL);
	pthread_cond_init(&c->cv, NULL);
	pthread_t      t;
	pthread_attr_t a;
	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &a, close_main, c) != 0) {
		pthread_attr_destroy(&a);
		c->refs = 1;
		nng_close(sock);
		closer_unref(c);
		return true;
	}
	pthread_attr_destroy(&a);
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += wait_ms / 1000;
	until.tv_nsec += (long) (wait_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&c->mtx);
	int rc = 0;
	while (!c->done && rc != ETIMEDOUT)
		rc = pthread_cond_timedwait(&c->cv, &c->mtx, &until);
	bool done = c->done;
	pthread_mutex_unlock(&c->mtx);
	if (!done) {
		atomic_store(&close_stuck, true);
		mcf_log_warn("NNG-CLOSE",
		    "nng_close did not return within %d ms; going on without "
		    "it",
		    wait_ms);
	}
	closer_unref(c);
	return done;
}


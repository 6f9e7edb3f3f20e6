/*
 * proto_transport_test.c — tests for proto/transport.c: TLS on the fleet's
 * NNG transport.  Certificates are made by the openssl command line tool
 * in a temporary directory: a CA, a server certificate for 127.0.0.1 and
 * a client certificate it signed, and an unrelated CA.  A pair1 listener
 * and dialer on tls+tcp://127.0.0.1 exchange a message when the dialer
 * trusts the server's CA; an unrelated CA, a missing client certificate
 * under mutual TLS, a plaintext URL with a CA set, and incomplete options
 * are refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <nng/nng.h>
#include <nng/protocol/pair1/pair.h>

#include "err.h"
#include "transport.h"

static char dir[] = "/tmp/mcf-transport-test.XXXXXX";
static char path_buf[8][256];

static const char *
path(int slot, const char *name)
{
	snprintf(path_buf[slot], sizeof(path_buf[slot]), "%s/%s", dir, name);
	return path_buf[slot];
}

static int
sh(const char *fmt, ...)
{
	char    cmd[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return system(cmd);
}

static int
group_setup(void **state)
{
	(void) state;
	if (mkdtemp(dir) == NULL)
		return -1;
	/* EC P-256 keys: quick to make, and mbedTLS (NNG's engine) takes
	 * them. */
	const char *ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
	                 "-nodes";
	int rc = 0;
	rc |= sh("cd %s && openssl req -x509 %s -subj /CN=mcfleet-test-ca "
	         "-days 1 -keyout ca.key -out ca.crt >/dev/null 2>&1",
	    dir, ec);
	rc |= sh("cd %s && openssl req -x509 %s -subj /CN=other-ca -days 1 "
	         "-keyout other.key -out other.crt >/dev/null 2>&1",
	    dir, ec);
	rc |= sh("cd %s && openssl req %s -subj /CN=127.0.0.1 -keyout srv.key "
	         "-out srv.csr >/dev/null 2>&1 && printf "
	         "'subjectAltName=IP:127.0.0.1,DNS:coordinator.test\\n' "
	         ">srv.ext && openssl x509 -req -in srv.csr -CA ca.crt -CAkey "
	         "ca.key -CAcreateserial -days 1 -extfile srv.ext -out srv.crt "
	         ">/dev/null 2>&1",
	    dir, ec);
	rc |= sh("cd %s && openssl req %s -subj /CN=mcfleet-worker-0 -keyout "
	         "cli.key -out cli.csr >/dev/null 2>&1 && openssl x509 -req "
	         "-in cli.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 1 "
	         "-out cli.crt >/dev/null 2>&1",
	    dir, ec);
	rc |= sh("printf 'not a certificate\\n' >%s/junk.pem", dir);
	return rc == 0 ? 0 : -1;
}

static int
group_teardown(void **state)
{
	(void) state;
	sh("rm -rf %s", dir);
	return 0;
}

/* A listener with `so`; returns its URL (bound port) in `url`. */
static nng_socket
listen_on(const mcf_proto_tls_opts *so, char *url, size_t cap)
{
	nng_socket   s;
	nng_listener l;
	mcf_errinfo  ei = {0};
	assert_int_equal(nng_pair1_open(&s), 0);
	int rc = mcf_proto_listen(s, "tls+tcp://127.0.0.1:0", so, &l, &ei);
	if (rc != MCF_OK)
		print_message("listen: %s\n", ei.msg);
	assert_int_equal(rc, MCF_OK);
	int port = 0;
	assert_int_equal(nng_listener_get_int(l, NNG_OPT_TCP_BOUND_PORT, &port),
	    0);
	snprintf(url, cap, "tls+tcp://127.0.0.1:%d", port);
	nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 3000);
	return s;
}

/* Dials `url` with `co`; true if a message makes it across within a few
 * seconds. */
static bool
exchange(nng_socket srv, const char *url, const mcf_proto_tls_opts *co)
{
	nng_socket  c;
	nng_dialer  d;
	mcf_errinfo ei = {0};
	assert_int_equal(nng_pair1_open(&c), 0);
	nng_socket_set_ms(c, NNG_OPT_RECONNMINT, 100);
	nng_socket_set_ms(c, NNG_OPT_SENDTIMEO, 3000);
	int rc = mcf_proto_dial(c, url, co, &d, &ei);
	if (rc != MCF_OK)
		print_message("dial: %s\n", ei.msg);
	assert_int_equal(rc, MCF_OK);
	/* pair1 holds a send until a peer exists; a refused handshake
	 * leaves none, and the send times out. */
	bool ok = nng_send(c, "hello", 6, 0) == 0;
	if (ok) {
		char  *buf = NULL;
		size_t len = 0;
		ok = nng_recv(srv, &buf, &len, NNG_FLAG_ALLOC) == 0 && len == 6 &&
		    memcmp(buf, "hello", 6) == 0;
		if (buf != NULL)
			nng_free(buf, len);
	}
	nng_close(c);
	return ok;
}

static void
test_tls_server_verified(void **state)
{
	(void) state;
	mcf_proto_tls_opts so = {.cert_file = path(0, "srv.crt"),
	    .key_file = path(1, "srv.key")};
	char       url[64];
	nng_socket srv = listen_on(&so, url, sizeof(url));

	/* The name the certificate carries (NNG's mbedTLS matches DNS
	 * names only, so an IP address needs an explicit name). */
	mcf_proto_tls_opts good = {.ca_file = path(2, "ca.crt"),
	    .server_name = "coordinator.test"};
	assert_true(exchange(srv, url, &good));
	/* A CA that did not sign the server's certificate. */
	mcf_proto_tls_opts other = {.ca_file = path(3, "other.crt"),
	    .server_name = "coordinator.test"};
	assert_false(exchange(srv, url, &other));
	/* A name the certificate does not carry. */
	mcf_proto_tls_opts wrong = {.ca_file = path(2, "ca.crt"),
	    .server_name = "elsewhere.test"};
	assert_false(exchange(srv, url, &wrong));
	nng_close(srv);
}

static void
test_tls_mutual(void **state)
{
	(void) state;
	mcf_proto_tls_opts so = {.cert_file = path(0, "srv.crt"),
	    .key_file = path(1, "srv.key"), .ca_file = path(2, "ca.crt")};
	char       url[64];
	nng_socket srv = listen_on(&so, url, sizeof(url));
	mcf_proto_tls_opts with = {.ca_file = path(3, "ca.crt"),
	    .cert_file = path(4, "cli.crt"), .key_file = path(5, "cli.key"),
	    .server_name = "coordinator.test"};
	assert_true(exchange(srv, url, &with));
	mcf_proto_tls_opts without = {.ca_file = path(3, "ca.crt"),
	    .server_name = "coordinator.test"};
	assert_false(exchange(srv, url, &without));
	nng_close(srv);
}

static void
test_tls_refusals(void **state)
{
	(void) state;
	nng_socket   s;
	nng_listener l;
	nng_dialer   d;
	mcf_errinfo  ei = {0};
	assert_int_equal(nng_pair1_open(&s), 0);

	/* A TLS listener needs a certificate and key. */
	mcf_proto_tls_opts none = {0};
	assert_int_equal(
	    mcf_proto_listen(s, "tls+tcp://127.0.0.1:0", &none, &l, &ei),
	    MCF_EINVAL);
	assert_non_null(strstr(ei.msg, "--tls-cert"));
	mcf_proto_tls_opts half = {.cert_file = path(6, "srv.crt")};
	assert_int_equal(
	    mcf_proto_listen(s, "tls+tcp://127.0.0.1:0", &half, &l, &ei),
	    MCF_EINVAL);
	/* TLS options on a plaintext URL. */
	mcf_proto_tls_opts so = {.cert_file = path(0, "srv.crt"),
	    .key_file = path(1, "srv.key")};
	assert_int_equal(mcf_proto_listen(s, "tcp://127.0.0.1:0", &so, &l, &ei),
	    MCF_EINVAL);
	assert_non_null(strstr(ei.msg, "tls+tcp"));
	/* Unreadable and non-PEM files name the flag and the file. */
	mcf_proto_tls_opts missing = {.cert_file = path(6, "nope.crt"),
	    .key_file = path(7, "srv.key")};
	assert_int_not_equal(mcf_proto_tls_check(&missing, true, &ei), MCF_OK);
	assert_non_null(strstr(ei.msg, "--tls-cert"));
	assert_non_null(strstr(ei.msg, "nope.crt"));
	mcf_proto_tls_opts junk = {.cert_file = path(6, "junk.pem"),
	    .key_file = path(7, "srv.key")};
	assert_int_equal(mcf_proto_tls_check(&junk, true, &ei), MCF_EINVAL);
	/* A key that is not the certificate's. */
	mcf_proto_tls_opts mismatch = {.cert_file = path(6, "srv.crt"),
	    .key_file = path(7, "cli.key")};
	assert_int_equal(mcf_proto_tls_check(&mismatch, true, &ei), MCF_EINVAL);
	assert_non_null(strstr(ei.msg, "is not the key of"));
	assert_int_equal(mcf_proto_tls_check(&so, true, &ei), MCF_OK);

	/* A dialer: TLS needs a CA; a CA refuses a plaintext address. */
	assert_int_equal(
	    mcf_proto_dial(s, "tls+tcp://127.0.0.1:1", &none, &d, &ei),
	    MCF_EINVAL);
	assert_non_null(strstr(ei.msg, "--tls-ca"));
	mcf_proto_tls_opts ca = {.ca_file = path(2, "ca.crt")};
	/* An IP address without --tls-server-name: a clear error. */
	assert_int_equal(
	    mcf_proto_dial(s, "tls+tcp://127.0.0.1:1", &ca, &d, &ei),
	    MCF_EINVAL);
	assert_non_null(strstr(ei.msg, "--tls-server-name"));
	assert_int_equal(mcf_proto_dial(s, "tcp://127.0.0.1:1", &ca, &d, &ei),
	    MCF_EPERM);
	assert_non_null(strstr(ei.msg, "refusing plaintext"));
	/* No options, plaintext: fine. */
	assert_int_equal(mcf_proto_dial(s, "tcp://127.0.0.1:1", NULL, &d, &ei),
	    MCF_OK);

	assert_true(mcf_proto_url_is_tls("tls+tcp://h:1"));
	assert_true(mcf_proto_url_is_tls("tls+tcp6://[::1]:1"));
	assert_false(mcf_proto_url_is_tls("tcp://h:1"));
	assert_false(mcf_proto_url_is_tls("tls+tcpx://h:1"));
	assert_false(mcf_proto_url_is_tls(NULL));
	nng_close(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tls_server_verified),
		cmocka_unit_test(test_tls_mutual),
		cmocka_unit_test(test_tls_refusals),
	};
	int rc = cmocka_run_group_tests(tests, group_setup, group_teardown);
	nng_fini();
	return rc;
}

/*
 * httpserver_test.c — tests for common/httpserver.c, with libcurl for
 * well-behaved clients and raw sockets for everything a real client would
 * not send: 200 with a body and the query, 404, 405 with Allow, HEAD,
 * keep-alive reuse, pipelining, 414 and 431, garbage and malformed
 * requests (and the server serving on afterwards), half-sent requests,
 * clients vanishing mid-response, the idle timeout against silent and
 * trickling (slowloris) clients, the connection limit, port 0 URLs on
 * IPv4 and IPv6, and a prompt stop with connections open.
 *
 * All servers listen on loopback port 0.  Every wait has a deadline,
 * scaled by MCF_TEST_TIMEOUT_SCALE under sanitizers; no assertion depends
 * on a fixed sleep being long enough.
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <curl/curl.h>

#include "alloc.h"
#include "err.h"
#include "httpserver.h"

#define BIG_LEN (4u << 20) /* larger than any socket buffer */

static int64_t
mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A generous bound for "promptly": seconds times the sanitizer scale. */
static int64_t
bound_ms(int64_t seconds)
{
	const char *s     = getenv("MCF_TEST_TIMEOUT_SCALE");
	int         scale = s != NULL ? atoi(s) : 1;
	return seconds * 1000 * (scale > 0 ? scale : 1);
}

/* ---- the server under test ---- */

struct fixture {
	mcf_httpserver *srv;
	atomic_int      hello_calls;
	char            last_peer[96]; /* written on the server thread */
	char            last_ua[128];
};

static int
hello_handler(const mcf_httpserver_req *r, mcf_httpserver_resp *w, void *arg)
{
	struct fixture *f  = arg;
	const char     *ua = mcf_httpserver_req_header(r, "user-agent");

	atomic_fetch_add(&f->hello_calls, 1);
	snprintf(f->last_peer, sizeof(f->last_peer), "%s", r->peer);
	snprintf(f->last_ua, sizeof(f->last_ua), "%s", ua ? ua : "");
	assert_int_equal(mcf_httpserver_resp_content_type(
	                     w, "text/plain; version=0.0.4; charset=utf-8"),
	    MCF_OK);
	assert_int_equal(
	    mcf_httpserver_resp_header(w, "X-Test", "yes"), MCF_OK);
	assert_int_equal(
	    mcf_httpserver_resp_header(w, "Content-Length", "1"), MCF_EINVAL);
	assert_int_equal(
	    mcf_httpserver_resp_header(w, "Bad Name", "1"), MCF_EINVAL);
	assert_int_equal(
	    mcf_httpserver_resp_header(w, "X-Bad", "a\r\nb"), MCF_EINVAL);
	mcf_httpserver_resp_printf(w, "hello %s\n", "world");
	mcf_httpserver_resp_printf(
	    w, "method=%s path=%s query=%s\n", r->method, r->path, r->query);
	return MCF_OK;
}

static int
fail_handler(const mcf_httpserver_req *r, mcf_httpserver_resp *w, void *arg)
{
	(void) r;
	(void) arg;
	mcf_httpserver_resp_printf(w, "never sent");
	return MCF_EIO;
}

static int
big_handler(const mcf_httpserver_req *r, mcf_httpserver_resp *w, void *arg)
{
	char *body = mcf_malloc(BIG_LEN);
	(void) r;
	(void) arg;
	for (size_t i = 0; i < BIG_LEN; i++)
		body[i] = (char) ('a' + i % 26);
	mcf_httpserver_resp_body_steal(w, body, BIG_LEN);
	return MCF_OK;
}

static int
empty_handler(const mcf_httpserver_req *r, mcf_httpserver_resp *w, void *arg)
{
	(void) r;
	(void) arg;
	assert_int_equal(mcf_httpserver_resp_status(w, 99), MCF_EINVAL);
	assert_int_equal(mcf_httpserver_resp_status(w, 600), MCF_EINVAL);
	assert_int_equal(mcf_httpserver_resp_status(w, 204), MCF_OK);
	mcf_httpserver_resp_body(w, "dropped", 7);
	return MCF_OK;
}

static struct fixture *
start_opts(const mcf_httpserver_opts *o)
{
	struct fixture *f = mcf_calloc(1, sizeof(*f));
	mcf_errinfo     ei;

	atomic_init(&f->hello_calls, 0);
	assert_int_equal(mcf_httpserver_create(&f->srv, o, &ei), MCF_OK);
	assert_int_equal(
	    mcf_httpserver_route(f->srv, "/hello", hello_handler, f), MCF_OK);
	assert_int_equal(
	    mcf_httpserver_route(f->srv, "/fail", fail_handler, f), MCF_OK);
	assert_int_equal(
	    mcf_httpserver_route(f->srv, "/big", big_handler, f), MCF_OK);
	assert_int_equal(
	    mcf_httpserver_route(f->srv, "/empty", empty_handler, f), MCF_OK);
	assert_int_equal(mcf_httpserver_start(f->srv), MCF_OK);
	return f;
}

static struct fixture *
start_default(void)
{
	return start_opts(NULL);
}

static void
finish(struct fixture *f)
{
	mcf_httpserver_stop(f->srv);
	mcf_httpserver_destroy(f->srv);
	free(f);
}

/* ---- libcurl ---- */

struct cbuf {
	char  *p;
	size_t len;
};

static size_t
cbuf_write(char *data, size_t size, size_t n, void *arg)
{
	struct cbuf *b = arg;
	b->p           = mcf_realloc(b->p, b->len + size * n + 1);
	memcpy(b->p + b->len, data, size * n);
	b->len += size * n;
	b->p[b->len] = '\0';
	return size * n;
}

struct cresult {
	long        code;
	struct cbuf body;
	struct cbuf headers;
	long        new_conns;
};

static void
cresult_free(struct cresult *r)
{
	free(r->body.p);
	free(r->headers.p);
	memset(r, 0, sizeof(*r));
}

/* Performs one request on `h` (which may be reused for keep-alive). */
static CURLcode
curl_do(CURL *h, const char *url, struct cresult *r)
{
	CURLcode rc;
	memset(r, 0, sizeof(*r));
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, cbuf_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &r->body);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, cbuf_write);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, &r->headers);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long) bound_ms(10));
	curl_easy_setopt(h, CURLOPT_USERAGENT, "httpserver_test");
	rc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->code);
	curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &r->new_conns);
	return rc;
}

/* One GET on a fresh handle; returns the status code. */
static long
curl_get(const char *base, const char *path, struct cresult *r)
{
	CURL *h   = curl_easy_init();
	char *url = mcf_asprintf("%s%s", base, path);
	assert_non_null(h);
	assert_int_equal(curl_do(h, url, r), CURLE_OK);
	curl_easy_cleanup(h);
	free(url);
	return r->code;
}

/* ---- raw sockets ---- */

static int
raw_connect(const mcf_httpserver *s)
{
	struct sockaddr_in a;
	int                fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	memset(&a, 0, sizeof(a));
	a.sin_family      = AF_INET;
	a.sin_port        = htons((uint16_t) mcf_httpserver_port(s));
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *) &a, sizeof(a)), 0);
	return fd;
}

static void
raw_send(int fd, const char *data, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
		assert_true(n > 0);
		data += n;
		len -= (size_t) n;
	}
}

static void
raw_sends(int fd, const char *s)
{
	raw_send(fd, s, strlen(s));
}

/* Reads into `b` until the peer closes, an error, or `deadline` (mono
 * ms).  Returns 0 on EOF, -1 on a reset, -2 on the deadline. */
static int
raw_read_to_close(int fd, struct cbuf *b, int64_t deadline)
{
	for (;;) {
		struct pollfd p    = { fd, POLLIN, 0 };
		int64_t       left = deadline - mono_ms();
		char          tmp[65536];
		ssize_t       n;

		if (left <= 0)
			return -2;
		if (poll(&p, 1, (int) left) <= 0)
			continue;
		n = recv(fd, tmp, sizeof(tmp), 0);
		if (n == 0)
			return 0;
		if (n < 0)
			return errno == EINTR ? 0 : -1;
		cbuf_write(tmp, 1, (size_t) n, b);
	}
}

/* Reads one response (head, then Content-Length bytes unless `head`);
 * returns its length, with the bytes in b->p[0..len).  Extra bytes read
 * stay in `b` after it. */
static size_t
raw_read_response(int fd, struct cbuf *b, bool head)
{
	int64_t deadline = mono_ms() + bound_ms(10);
	for (;;) {
		char *e = b->p != NULL ? strstr(b->p, "\r\n\r\n") : NULL;
		if (e != NULL) {
			size_t      hl = (size_t) (e + 4 - b->p);
			const char *cl = strstr(b->p, "Content-Length: ");
			size_t      bl = 0;
			if (cl != NULL && cl < e && !head)
				bl = (size_t) strtoul(cl + 16, NULL, 10);
			if (b->len >= hl + bl)
				return hl + bl;
		}
		struct pollfd p    = { fd, POLLIN, 0 };
		int64_t       left = deadline - mono_ms();
		char          tmp[4096];
		ssize_t       n;
		assert_true(left > 0);
		if (poll(&p, 1, (int) left) <= 0)
			continue;
		n = recv(fd, tmp, sizeof(tmp), 0);
		assert_true(n > 0);
		cbuf_write(tmp, 1, (size_t) n, b);
	}
}

/* Drops the first `n` bytes of `b`. */
static void
cbuf_consume(struct cbuf *b, size_t n)
{
	memmove(b->p, b->p + n, b->len - n + 1);
	b->len -= n;
}

/* Sends `req` on a new connection and reads until the server closes it;
 * the whole reply goes to `b` (new, caller frees b->p). */
static void
raw_exchange_close(
    const mcf_httpserver *s, const char *req, size_t len, struct cbuf *b)
{
	int fd = raw_connect(s);
	memset(b, 0, sizeof(*b));
	raw_send(fd, req, len);
	assert_int_equal(
	    raw_read_to_close(fd, b, mono_ms() + bound_ms(10)), 0);
	close(fd);
	assert_non_null(b->p);
}

/* The server still answers a normal request. */
static void
expect_serving(struct fixture *f)
{
	struct cresult r;
	assert_int_equal(
	    curl_get(mcf_httpserver_url(f->srv), "/hello", &r), 200);
	cresult_free(&r);
}

/* ---- tests ---- */

static void
test_httpserver_get_200(void **state)
{
	struct fixture *f = start_default();
	struct cresult  r;
	char           *want;

	(void) state;
	assert_int_equal(
	    curl_get(mcf_httpserver_url(f->srv), "/hello?name=x&y=%20z", &r),
	    200);
	assert_string_equal(r.body.p,
	    "hello world\nmethod=GET path=/hello query=name=x&y=%20z\n");
	assert_non_null(strstr(r.headers.p,
	    "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
	want = mcf_asprintf("Content-Length: %zu\r\n", r.body.len);
	assert_non_null(strstr(r.headers.p, want));
	free(want);
	assert_non_null(strstr(r.headers.p, "X-Test: yes\r\n"));
	assert_string_equal(f->last_ua, "httpserver_test");
	assert_int_equal(strncmp(f->last_peer, "127.0.0.1:", 10), 0);
	cresult_free(&r);

	/* A handler error becomes a 500 with the error's text. */
	assert_int_equal(
	    curl_get(mcf_httpserver_url(f->srv), "/fail", &r), 500);
	want = mcf_asprintf("%s\n", mcf_strerror(MCF_EIO));
	assert_string_equal(r.body.p, want);
	free(want);
	cresult_free(&r);

	/* 204 goes without a body or Content-Length. */
	assert_int_equal(
	    curl_get(mcf_httpserver_url(f->srv), "/empty", &r), 204);
	assert_null(r.body.p);
	assert_null(strstr(r.headers.p, "Content-Length"));
	cresult_free(&r);

	/* A body far larger than the socket buffers: partial writes. */
	assert_int_equal(
	    curl_get(mcf_httpserver_url(f->srv), "/big", &r), 200);
	assert_int_equal(r.body.len, BIG_LEN);
	for (size_t i = 0; i < BIG_LEN; i += 4099)
		assert_int_equal(r.body.p[i], 'a' + (int) (i % 26));
	cresult_free(&r);
	finish(f);
}

static void
test_httpserver_404(void **state)
{
	struct fixture   *f = start_default();
	struct cresult    r;
	struct cbuf       b;
	static const char req[] = "POST /nope HTTP/1.1\r\nHost: x\r\n"
	                          "Content-Length: 0\r\n\r\n";

	(void) state;
	assert_int_equal(
	    curl_get(mcf_httpserver_url(f->srv), "/nope", &r), 404);
	cresult_free(&r);
	/* Exact match only: a prefix or a trailing slash is another
	 * path. */
	assert_int_equal(
	    curl_get(mcf_httpserver_url(f->srv), "/hello/", &r), 404);
	cresult_free(&r);
	assert_int_equal(curl_get(mcf_httpserver_url(f->srv), "/", &r), 404);
	cresult_free(&r);
	/* Unknown path with another method: still 404. */
	int fd = raw_connect(f->srv);
	memset(&b, 0, sizeof(b));
	raw_sends(fd, req);
	raw_read_response(fd, &b, false);
	assert_int_equal(strncmp(b.p, "HTTP/1.1 404 Not Found\r\n", 24), 0);
	close(fd);
	free(b.p);
	assert_int_equal(atomic_load(&f->hello_calls), 0);
	finish(f);
}

static void
test_httpserver_405(void **state)
{
	struct fixture *f = start_default();
	struct cresult  r;
	CURL           *h = curl_easy_init();
	char           *url;
	struct cbuf     b;
	size_t          n;
	int             fd;

	(void) state;
	url = mcf_asprintf("%s/hello", mcf_httpserver_url(f->srv));
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, "a=b&c=d");
	assert_int_equal(curl_do(h, url, &r), CURLE_OK);
	assert_int_equal(r.code, 405);
	assert_non_null(strstr(r.headers.p, "Allow: GET, HEAD\r\n"));
	cresult_free(&r);
	curl_easy_cleanup(h);
	free(url);

	/* The body of a POST is skipped, and the connection kept. */
	fd = raw_connect(f->srv);
	memset(&b, 0, sizeof(b));
	raw_sends(fd,
	    "DELETE /hello HTTP/1.1\r\nHost: x\r\n"
	    "Content-Length: 5\r\n\r\nhelloGET /hello HTTP/1.1\r\n"
	    "Host: x\r\n\r\n");
	n = raw_read_response(fd, &b, false);
	assert_int_equal(
	    strncmp(b.p, "HTTP/1.1 405 Method Not Allowed\r\n", 33), 0);
	assert_non_null(strstr(b.p, "Allow: GET, HEAD\r\n"));
	cbuf_consume(&b, n);
	raw_read_response(fd, &b, false);
	assert_int_equal(strncmp(b.p, "HTTP/1.1 200 OK\r\n", 17), 0);
	close(fd);
	free(b.p);
	assert_int_equal(atomic_load(&f->hello_calls), 1);
	finish(f);
}

static void
test_httpserver_head(void **state)
{
	struct fixture *f = start_default();
	struct cresult  r, g;
	CURL           *h = curl_easy_init();
	char           *url, *cl;
	struct cbuf     b;
	size_t          n;
	int             fd;

	(void) state;
	url = mcf_asprintf("%s/hello", mcf_httpserver_url(f->srv));
	assert_int_equal(
	    curl_get(mcf_httpserver_url(f->srv), "/hello", &g), 200);
	curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	assert_int_equal(curl_do(h, url, &r), CURLE_OK);
	assert_int_equal(r.code, 200);
	assert_null(r.body.p);
	/* HEAD reports the length GET would send (the handler saw HEAD,
	 * so the text differs by one character: "HEAD" vs "GET"). */
	cl = mcf_asprintf("Content-Length: %zu\r\n", g.body.len + 1);
	assert_non_null(strstr(r.headers.p, cl));
	free(cl);
	cresult_free(&r);
	cresult_free(&g);
	curl_easy_cleanup(h);
	free(url);

	/* No body bytes follow a HEAD response: the next response starts
	 * right after its head. */
	fd = raw_connect(f->srv);
	memset(&b, 0, sizeof(b));
	raw_sends(fd,
	    "HEAD /hello HTTP/1.1\r\nHost: x\r\n\r\n"
	    "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
	n = raw_read_response(fd, &b, true);
	assert_int_equal(strncmp(b.p, "HTTP/1.1 200 OK\r\n", 17), 0);
	cbuf_consume(&b, n);
	raw_read_response(fd, &b, false);
	assert_int_equal(strncmp(b.p, "HTTP/1.1 200 OK\r\n", 17), 0);
	assert_non_null(strstr(b.p, "method=GET"));
	close(fd);
	free(b.p);
	finish(f);
}

static void
test_httpserver_keepalive(void **state)
{
	struct fixture *f = start_default();
	struct cresult  r;
	CURL           *h = curl_easy_init();
	char           *url;
	char            peer[96];
	struct cbuf     b;
	int             fd;

	(void) state;
	url = mcf_asprintf("%s/hello", mcf_httpserver_url(f->srv));
	assert_int_equal(curl_do(h, url, &r), CURLE_OK);
	assert_int_equal(r.code, 200);
	assert_int_equal(r.new_conns, 1);
	snprintf(peer, sizeof(peer), "%s", f->last_peer);
	cresult_free(&r);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(curl_do(h, url, &r), CURLE_OK);
		assert_int_equal(r.code, 200);
		assert_int_equal(r.new_conns, 0); /* reused */
		assert_string_equal(f->last_peer, peer);
		cresult_free(&r);
	}
	curl_easy_cleanup(h);
	free(url);

	/* Pipelined: three requests in one write, answered in order. */
	fd = raw_connect(f->srv);
	memset(&b, 0, sizeof(b));
	raw_sends(fd,
	    "GET /hello?1 HTTP/1.1\r\nHost: x\r\n\r\n"
	    "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"
	    "GET /hello?3 HTTP/1.1\r\nHost: x\r\n"
	    "Connection: close\r\n\r\n");
	assert_int_equal(
	    raw_read_to_close(fd, &b, mono_ms() + bound_ms(10)), 0);
	char *p1 = strstr(b.p, "query=1\n");
	char *p2 = strstr(b.p, "HTTP/1.1 404");
	char *p3 = strstr(b.p, "query=3\n");
	assert_non_null(p1);
	assert_non_null(p2);
	assert_non_null(p3);
	assert_true(p1 < p2 && p2 < p3);
	assert_non_null(strstr(p2, "Connection: close\r\n"));
	close(fd);
	free(b.p);

	/* HTTP/1.0 closes unless asked to keep alive. */
	raw_exchange_close(f->srv, "GET /hello HTTP/1.0\r\n\r\n", 23, &b);
	assert_int_equal(strncmp(b.p, "HTTP/1.1 200 OK\r\n", 17), 0);
	assert_non_null(strstr(b.p, "Connection: close\r\n"));
	free(b.p);
	fd = raw_connect(f->srv);
	memset(&b, 0, sizeof(b));
	raw_sends(fd, "GET /hello HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
	size_t n = raw_read_response(fd, &b, false);
	assert_non_null(strstr(b.p, "Connection: keep-alive\r\n"));
	cbuf_consume(&b, n);
	raw_sends(fd, "GET /hello HTTP/1.0\r\n\r\n");
	raw_read_response(fd, &b, false);
	assert_int_equal(strncmp(b.p, "HTTP/1.1 200 OK\r\n", 17), 0);
	close(fd);
	free(b.p);
	finish(f);
}

static void
test_httpserver_oversize(void **state)
{
	struct fixture    *f = start_default();
	struct cresult     r;
	CURL              *h = curl_easy_init();
	struct curl_slist *hl;
	char              *big, *url, *req;
	struct cbuf        b;

	(void) state;
	/* 431 for a header section over 16 KiB, through curl. */
	big = mcf_malloc(20001);
	memcpy(big, "X-Big: ", 7);
	memset(big + 7, 'a', 20000 - 7);
	big[20000] = '\0';
	hl         = curl_slist_append(NULL, big);
	url        = mcf_asprintf("%s/hello", mcf_httpserver_url(f->srv));
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
	assert_int_equal(curl_do(h, url, &r), CURLE_OK);
	assert_int_equal(r.code, 431);
	cresult_free(&r);
	curl_easy_cleanup(h);
	curl_slist_free_all(hl);
	free(url);

	/* 431 for too many header fields. */
	req = mcf_strdup("GET /hello HTTP/1.1\r\nHost: x\r\n");
	for (int i = 0; i < 120; i++) {
		char *n = mcf_asprintf("%sX-%d: v\r\n", req, i);
		free(req);
		req = n;
	}
	char *full = mcf_asprintf("%s\r\n", req);
	raw_exchange_close(f->srv, full, strlen(full), &b);
	assert_int_equal(strncmp(b.p, "HTTP/1.1 431 ", 13), 0);
	free(b.p);
	free(full);
	free(req);

	/* 414 for a request line over 4 KiB, decided before its end. */
	req = mcf_malloc(6000);
	memcpy(req, "GET /", 5);
	memset(req + 5, 'a', 6000 - 5);
	raw_exchange_close(f->srv, req, 6000, &b);
	assert_int_equal(strncmp(b.p, "HTTP/1.1 414 URI Too Long\r\n", 27), 0);
	assert_non_null(strstr(b.p, "Connection: close\r\n"));
	free(b.p);
	free(req);
	assert_int_equal(atomic_load(&f->hello_calls), 0);
	expect_serving(f);
	free(big);
	finish(f);
}

static void
test_httpserver_garbage(void **state)
{
	static const struct {
		const char *req;
		const char *status;
	} cases[] = {
		/* A TLS ClientHello's first bytes (no NUL: sent with
		 * strlen). */
		{ "\x16\x03\x01\x02\x01\xfc\x03\x03\r\n\r\n", "400" },
		{ "hello\r\n\r\n", "400" },
		{ "GET /hello\r\n\r\n", "400" },
		{ "GET /hello HTTP/1.1\r\n\r\n", "400" }, /* no Host */
		{ "GET /hello HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "400" },
		{ "GET /hello HTTP/2.0\r\nHost: x\r\n\r\n", "505" },
		{ "GET /hello HTTP/1.1x\r\nHost: x\r\n\r\n", "400" },
		{ "GET hello HTTP/1.1\r\nHost: x\r\n\r\n", "400" },
		{ "GET /he llo HTTP/1.1\r\nHost: x\r\n\r\n", "400" },
		{ "GET /hello HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n", "400" },
		{ "GET /hello HTTP/1.1\r\nHost: x\r\nBad Name: v\r\n\r\n",
		    "400" },
		{ "GET /hello HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", "400" },
		{ "GET /hello HTTP/1.1\r\nHost: x\r\nA: b\rc\r\n\r\n", "400" },
		{ "GET /hello HTTP/1.1\r\nHost: x\r\nContent-Length: "
		  "-1\r\n\r\n",
		    "400" },
		{ "GET /hello HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n"
		  "Content-Length: 2\r\n\r\n",
		    "400" },
		{ "GET /hello HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n"
		  "Transfer-Encoding: chunked\r\n\r\n",
		    "400" },
		{ "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "505" },
	};
	struct fixture *f = start_default();
	struct cbuf     b;

	(void) state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char want[32];
		snprintf(want, sizeof(want), "HTTP/1.1 %s ", cases[i].status);
		raw_exchange_close(
		    f->srv, cases[i].req, strlen(cases[i].req), &b);
		if (strncmp(b.p, want, strlen(want)) != 0)
			fprintf(stderr, "case %zu: got %s\n", i, b.p);
		assert_int_equal(strncmp(b.p, want, strlen(want)), 0);
		assert_non_null(strstr(b.p, "Connection: close\r\n"));
		free(b.p);
	}
	/* Binary noise with NULs and no line end at all, then close. */
	{
		char noise[3000];
		int  fd = raw_connect(f->srv);
		for (size_t i = 0; i < sizeof(noise); i++)
			noise[i] = (char) (i * 7);
		raw_send(fd, noise, sizeof(noise));
		close(fd);
	}
	/* Tolerated: leading blank lines, bare LF line ends,
	 * absolute-form targets. */
	static const char lf[]
	    = "\r\n\nGET /hello?q HTTP/1.1\nHost: x\nConnection: close\n\n";
	raw_exchange_close(f->srv, lf, sizeof(lf) - 1, &b);
	assert_int_equal(strncmp(b.p, "HTTP/1.1 200 OK\r\n", 17), 0);
	assert_non_null(strstr(b.p, "query=q\n"));
	free(b.p);
	static const char abs[]
	    = "GET http://example.com/hello?z HTTP/1.1\r\n"
	      "Host: example.com\r\nConnection: close\r\n\r\n";
	raw_exchange_close(f->srv, abs, sizeof(abs) - 1, &b);
	assert_non_null(strstr(b.p, "path=/hello query=z\n"));
	free(b.p);
	expect_serving(f);
	finish(f);
}

static void
test_httpserver_half_request_then_close(void **state)
{
	static const char *const partial[] = {
		"GET /hello HT",
		"GET /hello HTTP/1.1\r\nHost: x\r\nX-A: b",
		"GET /hello HTTP/1.1\r\nHost: x\r\nContent-Length: "
		"10\r\n\r\nab",
		"",
	};
	struct fixture *f = start_default();
	struct cbuf     b;

	(void) state;
	for (size_t i = 0; i < sizeof(partial) / sizeof(partial[0]); i++) {
		int fd = raw_connect(f->srv);
		raw_sends(fd, partial[i]);
		close(fd);
	}
	/* Half-close after a full request: the answer still comes. */
	{
		int fd = raw_connect(f->srv);
		raw_sends(fd, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
		shutdown(fd, SHUT_WR);
		memset(&b, 0, sizeof(b));
		assert_int_equal(
		    raw_read_to_close(fd, &b, mono_ms() + bound_ms(10)), 0);
		assert_int_equal(strncmp(b.p, "HTTP/1.1 200 OK\r\n", 17), 0);
		free(b.p);
		close(fd);
	}
	/* Vanish in the middle of a large response, with a reset. */
	for (int i = 0; i < 3; i++) {
		int           fd = raw_connect(f->srv);
		struct linger lg = { 1, 0 };
		char          tmp[1024];
		raw_sends(fd, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n");
		assert_true(recv(fd, tmp, sizeof(tmp), 0) > 0);
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		close(fd);
	}
	expect_serving(f);
	finish(f);
}

/* Waits until the server closes `fd`, sending `trickle` (if not NULL)
 * every 50 ms meanwhile.  Returns how long it took, or -1 after `limit`
 * ms. */
static int64_t
wait_closed(int fd, const char *trickle, int64_t limit)
{
	int64_t start = mono_ms();
	for (;;) {
		struct pollfd p = { fd, POLLIN, 0 };
		char          tmp[512];
		if (mono_ms() - start > limit)
			return -1;
		if (poll(&p, 1, 50) > 0) {
			ssize_t n = recv(fd, tmp, sizeof(tmp), 0);
			if (n <= 0)
				return mono_ms() - start;
			continue; /* an answer: keep reading */
		}
		if (trickle != NULL
		    && send(fd, trickle, strlen(trickle), MSG_NOSIGNAL) < 0)
			return mono_ms() - start;
	}
}

static void
test_httpserver_idle_timeout(void **state)
{
	mcf_httpserver_opts o;
	struct fixture     *f;
	int                 fd;
	int64_t             t;

	(void) state;
	mcf_httpserver_opts_init(&o);
	o.idle_timeout_ms = 300;
	f                 = start_opts(&o);

	/* A client that sends nothing. */
	fd = raw_connect(f->srv);
	t  = wait_closed(fd, NULL, bound_ms(10));
	assert_true(t >= 0);
	close(fd);

	/* Slowloris: a header line every 50 ms never completes the request
	 * and does not extend the deadline. */
	fd = raw_connect(f->srv);
	raw_sends(fd, "GET /hello HTTP/1.1\r\nHost: x\r\n");
	t = wait_closed(fd, "X-Slow: 1\r\n", bound_ms(10));
	assert_true(t >= 0);
	close(fd);

	/* Idle after a response on a kept-alive connection. */
	fd = raw_connect(f->srv);
	raw_sends(fd, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
	t = wait_closed(fd, NULL, bound_ms(10));
	assert_true(t >= 0);
	close(fd);
	assert_int_equal(atomic_load(&f->hello_calls), 1);
	expect_serving(f);
	finish(f);
}

static void
test_httpserver_max_conns(void **state)
{
	mcf_httpserver_opts o;
	struct fixture     *f;
	int                 a, b, c;
	struct cbuf         buf;
	int64_t             deadline;
	bool                served = false;

	(void) state;
	mcf_httpserver_opts_init(&o);
	o.max_conns = 2;
	f           = start_opts(&o);
	a           = raw_connect(f->srv);
	b           = raw_connect(f->srv);
	/* Accepted in order: the first two fill the table, the third is
	 * turned away. */
	c = raw_connect(f->srv);
	memset(&buf, 0, sizeof(buf));
	assert_int_equal(
	    raw_read_to_close(c, &buf, mono_ms() + bound_ms(10)), 0);
	assert_int_equal(
	    strncmp(buf.p, "HTTP/1.1 503 Service Unavailable\r\n", 34), 0);
	free(buf.p);
	close(c);

	/* Once one leaves, a new client gets in (the server notices the
	 * close at its own pace: retry until a deadline). */
	close(a);
	deadline = mono_ms() + bound_ms(10);
	while (!served && mono_ms() < deadline) {
		c = raw_connect(f->srv);
		raw_sends(c,
		    "GET /hello HTTP/1.1\r\nHost: x\r\n"
		    "Connection: close\r\n\r\n");
		memset(&buf, 0, sizeof(buf));
		(void) raw_read_to_close(c, &buf, mono_ms() + bound_ms(10));
		served = buf.p != NULL
		    && strncmp(buf.p, "HTTP/1.1 200 OK\r\n", 17) == 0;
		free(buf.p);
		close(c);
	}
	assert_true(served);
	close(b);
	finish(f);
}

static void
test_httpserver_port0_url(void **state)
{
	mcf_httpserver_opts o;
	mcf_httpserver     *s = NULL;
	mcf_errinfo         ei;
	struct fixture     *f;
	struct cresult      r;
	char                want[64];
	int                 rv;

	(void) state;
	f = start_default();
	assert_true(mcf_httpserver_port(f->srv) > 0);
	snprintf(want, sizeof(want), "http://127.0.0.1:%d",
	    mcf_httpserver_port(f->srv));
	assert_string_equal(mcf_httpserver_url(f->srv), want);
	expect_serving(f);

	/* The port is taken: a second server on it fails, with a reason. */
	mcf_httpserver_opts_init(&o);
	char *addr = mcf_asprintf("127.0.0.1:%d", mcf_httpserver_port(f->srv));
	o.listen   = addr;
	rv         = mcf_httpserver_create(&s, &o, &ei);
	assert_int_not_equal(rv, MCF_OK);
	assert_null(s);
	assert_int_equal(ei.code, rv);
	assert_non_null(strstr(ei.msg, addr));
	free(addr);
	finish(f);

	/* A wildcard bind is reported as loopback. */
	o.listen = ":0";
	f        = start_opts(&o);
	snprintf(want, sizeof(want), "http://127.0.0.1:%d",
	    mcf_httpserver_port(f->srv));
	assert_string_equal(mcf_httpserver_url(f->srv), want);
	expect_serving(f);
	finish(f);

	/* IPv6 loopback. */
	o.listen = "[::1]:0";
	rv       = mcf_httpserver_create(&s, &o, &ei);
	if (rv != MCF_OK) {
		/* Only a host without IPv6 may fail here. */
		fprintf(stderr, "no IPv6 loopback here: %s\n", ei.msg);
		skip();
	}
	mcf_httpserver_destroy(s);
	f = start_opts(&o);
	snprintf(want, sizeof(want), "http://[::1]:%d",
	    mcf_httpserver_port(f->srv));
	assert_string_equal(mcf_httpserver_url(f->srv), want);
	assert_int_equal(
	    curl_get(mcf_httpserver_url(f->srv), "/hello", &r), 200);
	assert_int_equal(strncmp(f->last_peer, "[::1]:", 6), 0);
	cresult_free(&r);
	finish(f);
}

static void
test_httpserver_stop_with_idle_conn(void **state)
{
	struct fixture *f = start_default();
	int             idle, partial, kept;
	int64_t         t0, took;
	struct cbuf     b;
	size_t          n;

	(void) state;
	/* Default idle timeout (15 s): only stop can close these soon. */
	idle    = raw_connect(f->srv);
	partial = raw_connect(f->srv);
	raw_sends(partial, "GET /hello HTTP/1.1\r\n");
	kept = raw_connect(f->srv);
	raw_sends(kept, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
	memset(&b, 0, sizeof(b));
	n = raw_read_response(kept, &b, false);
	assert_true(n > 0);
	free(b.p);

	t0 = mono_ms();
	mcf_httpserver_stop(f->srv);
	took = mono_ms() - t0;
	assert_true(took < bound_ms(2));
	mcf_httpserver_stop(f->srv); /* idempotent */

	/* Every connection is closed (EOF or reset), at once. */
	int fds[] = { idle, partial, kept };
	for (int i = 0; i < 3; i++) {
		memset(&b, 0, sizeof(b));
		assert_int_not_equal(
		    raw_read_to_close(fds[i], &b, mono_ms() + bound_ms(2)),
		    -2);
		free(b.p);
		close(fds[i]);
	}
	assert_int_equal(mcf_httpserver_start(f->srv), MCF_EBUSY);
	finish(f);
}

static int
noop_handler(const mcf_httpserver_req *r, mcf_httpserver_resp *w, void *arg)
{
	(void) r;
	(void) w;
	(void) arg;
	return MCF_OK;
}

static void
test_httpserver_api_errors(void **state)
{
	static const char *const bad[]
	    = { "nohost", "127.0.0.1", "127.0.0.1:", "127.0.0.1:99999",
		      "127.0.0.1:8x", "::1:80", "[::1]80", "[::1", "" };
	mcf_httpserver_opts o;
	mcf_httpserver     *s = NULL;
	mcf_errinfo         ei;

	(void) state;
	mcf_httpserver_opts_init(&o);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		o.listen = bad[i];
		assert_int_equal(
		    mcf_httpserver_create(&s, &o, &ei), MCF_EINVAL);
		assert_int_equal(ei.code, MCF_EINVAL);
		assert_null(s);
	}
	/* Names resolve (from /etc/hosts: no DNS needed). */
	o.listen = "localhost:0";
	assert_int_equal(mcf_httpserver_create(&s, &o, &ei), MCF_OK);
	assert_true(
	    strncmp(mcf_httpserver_url(s), "http://127.0.0.1:", 17) == 0
	    || strncmp(mcf_httpserver_url(s), "http://[::1]:", 13) == 0);
	mcf_httpserver_destroy(s);
	s = NULL;
	mcf_httpserver_opts_init(&o);
	o.max_conns = 0;
	assert_int_equal(mcf_httpserver_create(&s, &o, NULL), MCF_EINVAL);
	mcf_httpserver_opts_init(&o);
	o.idle_timeout_ms = 0;
	assert_int_equal(mcf_httpserver_create(&s, &o, NULL), MCF_EINVAL);
	assert_null(s);

	assert_int_equal(mcf_httpserver_create(&s, NULL, &ei), MCF_OK);
	assert_int_equal(
	    mcf_httpserver_route(s, "nope", noop_handler, NULL), MCF_EINVAL);
	assert_int_equal(
	    mcf_httpserver_route(s, "/a b", noop_handler, NULL), MCF_EINVAL);
	assert_int_equal(
	    mcf_httpserver_route(s, "/a?b", noop_handler, NULL), MCF_EINVAL);
	assert_int_equal(
	    mcf_httpserver_route(s, "/a", NULL, NULL), MCF_EINVAL);
	assert_int_equal(
	    mcf_httpserver_route(s, "/a", noop_handler, NULL), MCF_OK);
	assert_int_equal(
	    mcf_httpserver_route(s, "/a", noop_handler, NULL), MCF_EEXIST);
	assert_int_equal(mcf_httpserver_start(s), MCF_OK);
	assert_int_equal(mcf_httpserver_start(s), MCF_EBUSY);
	assert_int_equal(
	    mcf_httpserver_route(s, "/b", noop_handler, NULL), MCF_EBUSY);
	/* Destroy without stop stops first. */
	mcf_httpserver_destroy(s);
	s = NULL;
	/* Never started. */
	assert_int_equal(mcf_httpserver_create(&s, NULL, NULL), MCF_OK);
	mcf_httpserver_destroy(s);
	mcf_httpserver_destroy(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_httpserver_get_200),
		cmocka_unit_test(test_httpserver_404),
		cmocka_unit_test(test_httpserver_405),
		cmocka_unit_test(test_httpserver_head),
		cmocka_unit_test(test_httpserver_keepalive),
		cmocka_unit_test(test_httpserver_oversize),
		cmocka_unit_test(test_httpserver_garbage),
		cmocka_unit_test(test_httpserver_half_request_then_close),
		cmocka_unit_test(test_httpserver_idle_timeout),
		cmocka_unit_test(test_httpserver_max_conns),
		cmocka_unit_test(test_httpserver_port0_url),
		cmocka_unit_test(test_httpserver_stop_with_idle_conn),
		cmocka_unit_test(test_httpserver_api_errors),
	};
	int rv;

	/* Process-wide libcurl setup before any thread (STYLE.md §9). */
	curl_global_init(CURL_GLOBAL_DEFAULT);
	rv = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return rv;
}

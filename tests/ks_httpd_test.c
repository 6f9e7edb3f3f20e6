/*
 * ks_httpd_test.c — tests for kubesim's HTTP/1.1 server
 * (tests/kubesim/httpd.c).
 *
 * Each test starts a server on 127.0.0.1 port 0 whose loop runs in its own
 * thread, and drives it with libcurl easy handles (real client behaviour:
 * Expect: 100-continue, chunked uploads, connection reuse, TLS) and with
 * raw sockets (byte-exact framing, pipelining, malformed input, hang-ups
 * and resets).  Handlers run on the loop thread and report to the test
 * through atomics.  Every wait is bounded by a deadline, scaled by
 * MCF_TEST_TIMEOUT_SCALE under the sanitizers.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
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
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "alloc.h"
#include "err.h"
#include "httpd.h"

#include "ks_fixture.h"

#define FLOOD_TOTAL (8 * 1024 * 1024)
#define FLOOD_BLOCK (64 * 1024)
#define STATUS_413                                                            \
	"{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},"         \
	"\"status\":\"Failure\",\"message\":\"Request entity too large: "     \
	"limit is 3145728\",\"reason\":\"RequestEntityTooLarge\","            \
	"\"code\":413}"

/* --- helpers: time, buffers ----------------------------------------- */

/* Time, buffers and the timeout scale come from tests/ks_fixture.h. */
typedef ks_fx_dbuf dbuf;

#define timeout_scale ks_fx_timeout_scale()
#define now_ms ks_fx_now_ms
#define deadline ks_fx_deadline
#define sleep_ms ks_fx_sleep_ms
#define dbuf_add ks_fx_dbuf_add

static void
dbuf_drop(dbuf *b, size_t n)
{
	memmove(b->p, b->p + n, b->len - n);
	b->len -= n;
	b->p[b->len] = '\0';
}

static void
dbuf_free(dbuf *b)
{
	free(b->p);
	b->p   = NULL;
	b->len = 0;
}

/* Waits until `*v` reaches `want` or the deadline passes. */
static bool
wait_atomic(atomic_int *v, int want, int ms)
{
	int64_t end = deadline(ms);
	while (atomic_load(v) < want) {
		if (now_ms() > end)
			return false;
		sleep_ms(2);
	}
	return true;
}

/* Waits until `*v` is zero or the deadline passes. */
static bool
wait_zero(atomic_int *v, int ms)
{
	int64_t end = deadline(ms);
	while (atomic_load(v) != 0) {
		if (now_ms() > end)
			return false;
		sleep_ms(2);
	}
	return true;
}

/* --- the server under test ------------------------------------------ */

typedef struct tsrv {
	ks_httpd  *h;
	pthread_t  th;
	int        port;
	char       base[64];
	atomic_int closes;  /* close callbacks fired */
	atomic_int drains;  /* drain callbacks fired */
	atomic_int posts;   /* posted calls run */
	atomic_int live;    /* request contexts not yet freed */
	atomic_int streams; /* /watch streams started */
} tsrv;

/* Per-request state for handlers that answer later. */
typedef struct rctx {
	tsrv    *s;
	ks_conn *c;
	uint64_t timer;
	int      n;
	size_t   total;
} rctx;

static char flood_block[FLOOD_BLOCK];

static rctx *
rctx_new(tsrv *s, ks_conn *c)
{
	rctx *x = mcf_calloc(1, sizeof(*x));
	x->s    = s;
	x->c    = c;
	atomic_fetch_add(&s->live, 1);
	return x;
}

static void
rctx_free(rctx *x)
{
	atomic_fetch_sub(&x->s->live, 1);
	free(x);
}

/* Close callback: the client went away before we finished. */
static void
rctx_on_close(void *arg, ks_conn *c)
{
	rctx *x = arg;
	(void) c;
	ks_httpd_timer_cancel(x->s->h, x->timer);
	atomic_fetch_add(&x->s->closes, 1);
	rctx_free(x);
}

/* The response is complete: detach from the connection. */
static void
rctx_done(rctx *x)
{
	ks_conn_on_close(x->c, NULL, NULL);
	ks_conn_on_drain(x->c, NULL, NULL);
	rctx_free(x);
}

static void
count_close(void *arg, ks_conn *c)
{
	tsrv *s = arg;
	(void) c;
	atomic_fetch_add(&s->closes, 1);
}

static void
pending_fire(void *arg)
{
	rctx *x  = arg;
	x->timer = 0;
	ks_conn_respond(x->c, 200, "text/plain", NULL, "late\n", 5);
	rctx_done(x);
}

static void
stream_tick(void *arg)
{
	rctx *x = arg;
	char  line[32];
	int   n;

	x->timer = 0;
	n        = snprintf(line, sizeof(line), "{\"n\":%d}\n", ++x->n);
	ks_conn_stream_write(x->c, line, (size_t) n);
	if (x->n == 4) {
		ks_conn_stream_end(x->c, KS_END_CLEAN);
		rctx_done(x);
		return;
	}
	x->timer = ks_httpd_timer_add(x->s->h, 50, stream_tick, x);
}

static void flood_pump(rctx *x);

static void
flood_drain(void *arg, ks_conn *c)
{
	rctx *x = arg;
	(void) c;
	atomic_fetch_add(&x->s->drains, 1);
	flood_pump(x);
}

/* Writes until the socket pushes back, then waits for the drain. */
static void
flood_pump(rctx *x)
{
	while (x->total < FLOOD_TOTAL && ks_conn_pending(x->c) == 0) {
		ks_conn_stream_write(x->c, flood_block, FLOOD_BLOCK);
		x->total += FLOOD_BLOCK;
	}
	if (x->total >= FLOOD_TOTAL) {
		ks_conn_stream_end(x->c, KS_END_CLEAN);
		rctx_done(x);
		return;
	}
	ks_conn_on_drain(x->c, flood_drain, x);
}

static int
query_int(const char *q, const char *key, int def)
{
	size_t kl = strlen(key);
	for (const char *p = q; p && *p; p = strchr(p, '&'), p = p ? p + 1 : p)
		if (strncmp(p, key, kl) == 0 && p[kl] == '=')
			return atoi(p + kl + 1);
	return def;
}

static void
handler(void *arg, ks_conn *c, const ks_req *req)
{
	tsrv *s = arg;
	char  hdr[256];
	char  body[1024];
	int   n;

	if (strcmp(req->path, "/hello") == 0) {
		ks_conn_respond(c, 200, "text/plain", NULL, "hello\n", 6);
	} else if (strcmp(req->path, "/echo") == 0) {
		snprintf(hdr, sizeof(hdr),
		    "X-Method: %s\r\nX-Conn: %llu\r\nX-Req: %llu\r\n",
		    req->method, (unsigned long long) ks_conn_id(c),
		    (unsigned long long) req->id);
		ks_conn_respond(c, 200, "application/octet-stream", hdr,
		    req->body, req->body_len);
	} else if (strcmp(req->path, "/info") == 0) {
		const char *t = ks_req_header(c, "x-TEST");
		n = snprintf(body, sizeof(body), "%s|%s|%s|%s|%s|%s|%zu",
		    req->method, req->path, req->query, req->target,
		    t ? t : "-",
		    strncmp(req->peer, "127.0.0.1:", 10) == 0 ? "peer-ok"
		                                              : req->peer,
		    strlen(req->body));
		ks_conn_respond(c, 200, "text/plain", NULL, body, (size_t) n);
	} else if (strcmp(req->path, "/slow") == 0) {
		rctx *x  = rctx_new(s, c);
		x->timer = ks_httpd_timer_add(
		    s->h, query_int(req->query, "ms", 100), pending_fire, x);
		ks_conn_on_close(c, rctx_on_close, x);
	} else if (strcmp(req->path, "/stream") == 0) {
		rctx *x = rctx_new(s, c);
		ks_conn_stream_begin(c, 200, "application/json", NULL);
		ks_conn_on_close(c, rctx_on_close, x);
		stream_tick(x);
	} else if (strcmp(req->path, "/watch") == 0) {
		/* Count first: the client may see the event at once. */
		atomic_fetch_add(&s->streams, 1);
		ks_conn_stream_begin(c, 200, "application/json", NULL);
		ks_conn_stream_write(c, "{\"type\":\"ADDED\"}\n", 17);
		ks_conn_on_close(c, count_close, s);
	} else if (strcmp(req->path, "/abrupt") == 0) {
		ks_conn_stream_begin(c, 200, "application/json", NULL);
		ks_conn_stream_write(c, "{\"half\":", 8);
		ks_conn_on_close(c, count_close, s);
		ks_conn_stream_end(c, KS_END_ABRUPT);
		/* Closed: every further call must be a no-op. */
		ks_conn_stream_write(c, "x", 1);
		ks_conn_respond(c, 200, NULL, NULL, "x", 1);
	} else if (strcmp(req->path, "/reset") == 0) {
		ks_conn_on_close(c, count_close, s);
		ks_conn_close(c, true);
	} else if (strcmp(req->path, "/flood") == 0) {
		rctx *x = rctx_new(s, c);
		ks_conn_stream_begin(c, 200, "application/octet-stream", NULL);
		ks_conn_on_close(c, rctx_on_close, x);
		flood_pump(x);
	} else if (strcmp(req->path, "/closeall") == 0) {
		ks_conn_respond(c, 200, "text/plain", NULL, "bye\n", 4);
		ks_httpd_close_all(s->h, false);
	} else if (strcmp(req->path, "/nocontent") == 0) {
		ks_conn_respond(c, 204, NULL, NULL, NULL, 0);
	} else {
		ks_conn_respond(c, 404, "text/plain", "X-Why: nope\r\n",
		    "not found\n", 10);
	}
}

static void *
server_main(void *arg)
{
	tsrv *s  = arg;
	int   rc = ks_httpd_run(s->h);
	if (rc != MCF_OK)
		fprintf(stderr, "ks_httpd_run: %s\n", mcf_strerror(rc));
	return NULL;
}

static tsrv *
server_start_cfg(const char *cert, const char *key, size_t max_body)
{
	tsrv           *s        = mcf_calloc(1, sizeof(*s));
	char            err[256] = "";
	ks_httpd_config cfg      = {
		     .listen      = "127.0.0.1:0",
		     .tls_cert    = cert,
		     .tls_key     = key,
		     .max_body    = max_body,
		     .handler     = handler,
		     .handler_arg = s,
	};
	int rc = ks_httpd_create(&s->h, &cfg, err, sizeof(err));
	if (rc != MCF_OK)
		fail_msg("ks_httpd_create: %s: %s", mcf_strerror(rc), err);
	s->port = ks_httpd_port(s->h);
	assert_true(s->port > 0);
	snprintf(s->base, sizeof(s->base), "%s://127.0.0.1:%d",
	    ks_httpd_scheme(s->h), s->port);
	assert_int_equal(pthread_create(&s->th, NULL, server_main, s), 0);
	return s;
}

static void
server_stop(tsrv *s)
{
	ks_httpd_stop(s->h);
	assert_int_equal(pthread_join(s->th, NULL), 0);
	ks_httpd_destroy(s->h);
	assert_int_equal(atomic_load(&s->live), 0);
	free(s);
}

static int
setup_server(void **state)
{
	*state = server_start_cfg(NULL, NULL, 0);
	return 0;
}

static int
teardown_server(void **state)
{
	server_stop(*state);
	return 0;
}

/* --- helpers: libcurl ----------------------------------------------- */

typedef struct cresp {
	long   code;
	dbuf   body;
	dbuf   head;
	double secs;
	long   connects;
} cresp;

static size_t
curl_sink(char *p, size_t sz, size_t n, void *ud)
{
	dbuf_add(ud, p, sz * n);
	return sz * n;
}

static void
cresp_free(cresp *r)
{
	dbuf_free(&r->body);
	dbuf_free(&r->head);
}

static CURL *
curl_new(const char *url, cresp *r)
{
	CURL *e = curl_easy_init();
	assert_non_null(e);
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 10000L * timeout_scale);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, curl_sink);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, &r->body);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, curl_sink);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, &r->head);
	return e;
}

static void
curl_run(CURL *e, cresp *r)
{
	CURLcode cc = curl_easy_perform(e);
	if (cc != CURLE_OK)
		fail_msg("curl: %s", curl_easy_strerror(cc));
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &r->code);
	curl_easy_getinfo(e, CURLINFO_TOTAL_TIME, &r->secs);
	curl_easy_getinfo(e, CURLINFO_NUM_CONNECTS, &r->connects);
}

/* One GET with a fresh handle. */
static void
curl_get(const char *url, cresp *r)
{
	CURL *e = curl_new(url, r);
	curl_run(e, r);
	curl_easy_cleanup(e);
}

/* --- helpers: raw sockets ------------------------------------------- */

static int
raw_connect_rcvbuf(int port, int rcvbuf)
{
	struct sockaddr_in a
	    = { .sin_family = AF_INET, .sin_port = htons((uint16_t) port) };
	int fd  = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	assert_true(fd >= 0);
	if (rcvbuf > 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *) &a, sizeof(a)) != 0)
		fail_msg("connect: %s", strerror(errno));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

static int
raw_connect(int port)
{
	return raw_connect_rcvbuf(port, 0);
}

static void
raw_send_n(int fd, const void *p, size_t n)
{
	const char *q = p;
	while (n > 0) {
		ssize_t w = send(fd, q, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			fail_msg("send: %s", strerror(errno));
		q += w;
		n -= (size_t) w;
	}
}

static void
raw_send(int fd, const char *s)
{
	raw_send_n(fd, s, strlen(s));
}

/* One recv into `b` before `end`: > 0 bytes, 0 EOF, -1 timeout, -2 error
 * (errno kept). */
static int
raw_fill(int fd, dbuf *b, int64_t end)
{
	char          tmp[65536];
	struct pollfd pfd  = { .fd = fd, .events = POLLIN };
	int64_t       left = end - now_ms();
	ssize_t       n;

	if (left < 0)
		return -1;
	if (poll(&pfd, 1, (int) left) <= 0)
		return -1;
	n = recv(fd, tmp, sizeof(tmp), 0);
	if (n < 0)
		return -2;
	if (n > 0)
		dbuf_add(b, tmp, (size_t) n);
	return n > 0 ? 1 : 0;
}

/* Reads until `needle` appears in `b`; false on EOF, error or timeout. */
static bool
raw_read_until(int fd, dbuf *b, const char *needle, int ms)
{
	int64_t end = deadline(ms);
	while (b->p == NULL || strstr(b->p, needle) == NULL)
		if (raw_fill(fd, b, end) <= 0)
			return false;
	return true;
}

/* Reads until EOF (true) or timeout/error (false), keeping the bytes. */
static bool
raw_read_eof(int fd, dbuf *b, int ms)
{
	int64_t end = deadline(ms);
	for (;;) {
		int r = raw_fill(fd, b, end);
		if (r == 0)
			return true;
		if (r < 0)
			return false;
	}
}

/* Reads until the connection fails; returns the errno (0 for a clean EOF,
 * -1 for a timeout). */
static int
raw_read_error(int fd, int ms)
{
	dbuf    b   = { 0 };
	int64_t end = deadline(ms);
	for (;;) {
		int r = raw_fill(fd, &b, end);
		if (r > 0)
			continue;
		dbuf_free(&b);
		if (r == 0)
			return 0;
		if (r == -1)
			return -1;
		return errno;
	}
}

/* Value of header `name` in a raw response head, copied to `out`. */
static bool
resp_header(const char *resp, const char *name, char *out, size_t outlen)
{
	const char *end = strstr(resp, "\r\n\r\n");
	size_t      nl  = strlen(name);
	const char *p   = strstr(resp, "\r\n");

	while (p != NULL && p < end) {
		p += 2;
		if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
			const char *v = p + nl + 1;
			const char *e = strstr(v, "\r\n");
			size_t      n;
			while (*v == ' ')
				v++;
			n = (size_t) (e - v);
			if (n >= outlen)
				n = outlen - 1;
			memcpy(out, v, n);
			out[n] = '\0';
			return true;
		}
		p = strstr(p, "\r\n");
	}
	return false;
}

/* Length of the first complete response in p[0, len), 0 if incomplete.
 * Knows Content-Length, chunked bodies (no trailers) and 1xx/204. */
static size_t
resp_complete(const char *p, size_t len)
{
	const char *he = memmem(p, len, "\r\n\r\n", 4);
	char        v[64];
	char       *head;
	size_t      hl, pos;
	bool        chunked;

	if (he == NULL)
		return 0;
	hl   = (size_t) (he - p) + 4;
	head = mcf_strndup(p, hl);
	if (strncmp(head, "HTTP/1.1 1", 10) == 0
	    || strncmp(head, "HTTP/1.1 204", 12) == 0) {
		free(head);
		return hl;
	}
	chunked = resp_header(head, "Transfer-Encoding", v, sizeof(v))
	    && strcmp(v, "chunked") == 0;
	if (!chunked) {
		size_t cl = 0;
		if (resp_header(head, "Content-Length", v, sizeof(v)))
			cl = strtoul(v, NULL, 10);
		free(head);
		return len >= hl + cl ? hl + cl : 0;
	}
	free(head);
	pos = hl;
	for (;;) {
		const char *le = memmem(p + pos, len - pos, "\r\n", 2);
		size_t      sz;
		if (le == NULL)
			return 0;
		sz  = strtoul(p + pos, NULL, 16);
		pos = (size_t) (le - p) + 2;
		if (sz == 0)
			return len >= pos + 2 ? pos + 2 : 0;
		if (len < pos + sz + 2)
			return 0;
		pos += sz + 2;
	}
}

/* Reads one complete response into `out` (new), keeping any following
 * bytes in `acc`. */
static bool
raw_read_response(int fd, dbuf *acc, dbuf *out, int ms)
{
	int64_t end = deadline(ms);
	size_t  n;
	while ((n = acc->p ? resp_complete(acc->p, acc->len) : 0) == 0)
		if (raw_fill(fd, acc, end) <= 0)
			return false;
	dbuf_add(out, acc->p, n);
	dbuf_drop(acc, n);
	return true;
}

/* The body of a raw response: after the head, de-chunked if needed. */
static void
resp_body(const char *resp, size_t len, dbuf *out)
{
	const char *he = strstr(resp, "\r\n\r\n");
	char        v[64];
	size_t      pos;

	assert_non_null(he);
	pos = (size_t) (he - resp) + 4;
	if (!resp_header(resp, "Transfer-Encoding", v, sizeof(v))) {
		dbuf_add(out, resp + pos, len - pos);
		return;
	}
	for (;;) {
		const char *le = strstr(resp + pos, "\r\n");
		size_t      sz;
		assert_non_null(le);
		sz  = strtoul(resp + pos, NULL, 16);
		pos = (size_t) (le - resp) + 2;
		if (sz == 0)
			break;
		assert_true(pos + sz + 2 <= len);
		dbuf_add(out, resp + pos, sz);
		assert_memory_equal(resp + pos + sz, "\r\n", 2);
		pos += sz + 2;
	}
}

/* Sends `req` on a new connection and returns the first response. */
static void
raw_exchange(int port, const char *req, dbuf *out)
{
	int  fd  = raw_connect(port);
	dbuf acc = { 0 };
	raw_send(fd, req);
	if (!raw_read_response(fd, &acc, out, 5000))
		fail_msg("no response to %.40s", req);
	dbuf_free(&acc);
	close(fd);
}

/* --- tests ---------------------------------------------------------- */

static void
test_httpd_simple_get(void **state)
{
	tsrv *s = *state;
	cresp r = { 0 };
	char  url[128];

	snprintf(url, sizeof(url), "%s/hello", s->base);
	curl_get(url, &r);
	assert_int_equal(r.code, 200);
	assert_string_equal(r.body.p, "hello\n");
	assert_non_null(strstr(r.head.p, "HTTP/1.1 200 OK\r\n"));
	assert_non_null(strstr(r.head.p, "Content-Type: text/plain\r\n"));
	assert_non_null(strstr(r.head.p, "Content-Length: 6\r\n"));
	assert_non_null(strstr(r.head.p, "Date: "));
	assert_non_null(strstr(r.head.p, " GMT\r\n"));
	cresp_free(&r);

	snprintf(url, sizeof(url), "%s/missing", s->base);
	curl_get(url, &r);
	assert_int_equal(r.code, 404);
	assert_non_null(strstr(r.head.p, "HTTP/1.1 404 Not Found\r\n"));
	assert_non_null(strstr(r.head.p, "X-Why: nope\r\n"));
	cresp_free(&r);

	snprintf(url, sizeof(url), "%s/nocontent", s->base);
	curl_get(url, &r);
	assert_int_equal(r.code, 204);
	assert_null(strstr(r.head.p, "Content-Length"));
	cresp_free(&r);
}

static void
test_httpd_request_fields(void **state)
{
	tsrv *s    = *state;
	dbuf  out  = { 0 };
	dbuf  body = { 0 };

	raw_exchange(s->port,
	    "GET /info?limit=1&x=%20y HTTP/1.1\r\nHost: a\r\n"
	    "X-Test: one\r\nx-test:   two  \r\nX-TEST:three\r\n\r\n",
	    &out);
	resp_body(out.p, out.len, &body);
	assert_string_equal(body.p,
	    "GET|/info|limit=1&x=%20y|/info?limit=1&x=%20y|one, two, three|"
	    "peer-ok|0");
	dbuf_free(&out);
	dbuf_free(&body);

	raw_exchange(s->port, "DELETE /info HTTP/1.1\r\n\r\n", &out);
	resp_body(out.p, out.len, &body);
	assert_string_equal(body.p, "DELETE|/info||/info|-|peer-ok|0");
	dbuf_free(&out);
	dbuf_free(&body);
}

static void
test_httpd_post_body(void **state)
{
	tsrv *s = *state;
	cresp r = { 0 };
	char  url[128];
	CURL *e;

	snprintf(url, sizeof(url), "%s/echo", s->base);
	e = curl_new(url, &r);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, "{\"a\":1}");
	curl_run(e, &r);
	assert_int_equal(r.code, 200);
	assert_string_equal(r.body.p, "{\"a\":1}");
	assert_non_null(strstr(r.head.p, "X-Method: POST\r\n"));
	curl_easy_cleanup(e);
	cresp_free(&r);
}

static void
test_httpd_expect_continue_fast(void **state)
{
	tsrv              *s    = *state;
	cresp              r    = { 0 };
	size_t             len  = 200000;
	char              *data = mcf_malloc(len);
	struct curl_slist *hl   = NULL;
	char               url[128];
	CURL              *e;

	for (size_t i = 0; i < len; i++)
		data[i] = (char) ('a' + i % 26);
	snprintf(url, sizeof(url), "%s/echo", s->base);
	e  = curl_new(url, &r);
	hl = curl_slist_append(hl, "Expect: 100-continue");
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, data);
	curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long) len);
	curl_run(e, &r);
	assert_int_equal(r.code, 200);
	assert_int_equal(r.body.len, len);
	assert_memory_equal(r.body.p, data, len);
	assert_non_null(strstr(r.head.p, "HTTP/1.1 100 Continue\r\n"));
	/* Without the 100, libcurl would wait a full second. */
	if (r.secs >= 0.5 * timeout_scale)
		fail_msg("POST with Expect took %.3f s", r.secs);
	curl_slist_free_all(hl);
	curl_easy_cleanup(e);
	cresp_free(&r);
	free(data);
}

typedef struct upload {
	const char *data;
	size_t      len;
	size_t      pos;
	unsigned    seed;
} upload;

static size_t
upload_read(char *buf, size_t sz, size_t n, void *ud)
{
	upload *u    = ud;
	size_t  want = 1 + (u->seed = u->seed * 1103515245u + 12345u) % 3000;
	if (want > sz * n)
		want = sz * n;
	if (want > u->len - u->pos)
		want = u->len - u->pos;
	memcpy(buf, u->data + u->pos, want);
	u->pos += want;
	return want;
}

static void
test_httpd_chunked_request_body(void **state)
{
	tsrv              *s    = *state;
	cresp              r    = { 0 };
	size_t             len  = 100000;
	char              *data = mcf_malloc(len);
	upload             u    = { data, len, 0, 7 };
	struct curl_slist *hl   = NULL;
	char               url[128];
	dbuf               out = { 0 }, body = { 0 };
	CURL              *e;

	for (size_t i = 0; i < len; i++)
		data[i] = (char) (i * 7 + 3);
	snprintf(url, sizeof(url), "%s/echo", s->base);
	e  = curl_new(url, &r);
	hl = curl_slist_append(hl, "Transfer-Encoding: chunked");
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(e, CURLOPT_POST, 1L);
	curl_easy_setopt(e, CURLOPT_READFUNCTION, upload_read);
	curl_easy_setopt(e, CURLOPT_READDATA, &u);
	curl_run(e, &r);
	assert_int_equal(r.code, 200);
	assert_int_equal(r.body.len, len);
	assert_memory_equal(r.body.p, data, len);
	curl_slist_free_all(hl);
	curl_easy_cleanup(e);
	cresp_free(&r);
	free(data);

	/* Extensions, upper-case hex, bare LF and a trailer. */
	raw_exchange(s->port,
	    "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "5;name=val\r\nhello\r\nA\r\n world!!! \r\n1\nx\n"
	    "0\r\nX-Trailer: yes\r\n\r\n",
	    &out);
	assert_non_null(strstr(out.p, "HTTP/1.1 200 OK\r\n"));
	resp_body(out.p, out.len, &body);
	assert_string_equal(body.p, "hello world!!! x");
	dbuf_free(&out);
	dbuf_free(&body);
}

static void
test_httpd_keepalive_reuse(void **state)
{
	tsrv *s   = *state;
	int   fd  = raw_connect(s->port);
	dbuf  acc = { 0 }, r1 = { 0 }, r2 = { 0 };
	char  c1[32], c2[32], q1[32], q2[32];
	cresp r = { 0 };
	char  url[128];
	CURL *e;

	raw_send(fd, "POST /echo HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc");
	assert_true(raw_read_response(fd, &acc, &r1, 5000));
	raw_send(fd, "POST /echo HTTP/1.1\r\nContent-Length: 2\r\n\r\nde");
	assert_true(raw_read_response(fd, &acc, &r2, 5000));
	assert_true(resp_header(r1.p, "X-Conn", c1, sizeof(c1)));
	assert_true(resp_header(r2.p, "X-Conn", c2, sizeof(c2)));
	assert_string_equal(c1, c2);
	assert_true(resp_header(r1.p, "X-Req", q1, sizeof(q1)));
	assert_true(resp_header(r2.p, "X-Req", q2, sizeof(q2)));
	assert_int_equal(strtoul(q2, NULL, 10), strtoul(q1, NULL, 10) + 1);
	assert_null(strstr(r1.p, "Connection: close"));
	assert_int_equal(acc.len, 0);
	dbuf_free(&acc);
	dbuf_free(&r1);
	dbuf_free(&r2);
	close(fd);

	/* libcurl reuses the connection for a second request. */
	snprintf(url, sizeof(url), "%s/hello", s->base);
	e = curl_new(url, &r);
	curl_run(e, &r);
	assert_int_equal(r.connects, 1);
	cresp_free(&r);
	curl_run(e, &r);
	assert_int_equal(r.code, 200);
	assert_int_equal(r.connects, 0);
	curl_easy_cleanup(e);
	cresp_free(&r);
}

static void
test_httpd_pipelining(void **state)
{
	tsrv *s   = *state;
	int   fd  = raw_connect(s->port);
	dbuf  acc = { 0 }, r1 = { 0 }, r2 = { 0 }, r3 = { 0 };
	dbuf  b = { 0 };

	/* The first answer is pending for 150 ms; the others must wait. */
	raw_send(fd,
	    "GET /slow?ms=150 HTTP/1.1\r\n\r\n"
	    "GET /hello HTTP/1.1\r\n\r\n"
	    "POST /echo HTTP/1.1\r\nContent-Length: 4\r\n\r\nping"
	    "\r\n" /* stray CRLF between requests is allowed */
	    "HEAD /hello HTTP/1.1\r\n\r\n");
	assert_true(raw_read_response(fd, &acc, &r1, 5000));
	assert_true(raw_read_response(fd, &acc, &r2, 5000));
	assert_true(raw_read_response(fd, &acc, &r3, 5000));
	resp_body(r1.p, r1.len, &b);
	assert_string_equal(b.p, "late\n");
	dbuf_free(&b);
	resp_body(r2.p, r2.len, &b);
	assert_string_equal(b.p, "hello\n");
	dbuf_free(&b);
	resp_body(r3.p, r3.len, &b);
	assert_string_equal(b.p, "ping");
	dbuf_free(&b);
	/* HEAD: the length of the GET body, and no body. */
	assert_true(raw_read_until(fd, &acc, "\r\n\r\n", 5000));
	assert_non_null(strstr(acc.p, "Content-Length: 6\r\n"));
	assert_string_equal(strstr(acc.p, "\r\n\r\n"), "\r\n\r\n");
	assert_int_equal(raw_fill(fd, &acc, now_ms() + 50), -1);
	dbuf_free(&acc);
	dbuf_free(&r1);
	dbuf_free(&r2);
	dbuf_free(&r3);
	close(fd);
}

static void
test_httpd_oversize_body_413(void **state)
{
	tsrv  *s    = *state;
	cresp  r    = { 0 };
	size_t len  = 3 * 1024 * 1024 + 1;
	char  *data = mcf_calloc(1, len);
	char   url[128];
	dbuf   out = { 0 }, b = { 0 };
	CURL  *e;
	int    fd;
	tsrv  *small;

	memset(data, 'z', len);
	snprintf(url, sizeof(url), "%s/echo", s->base);
	e = curl_new(url, &r);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, data);
	curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long) len);
	curl_run(e, &r);
	assert_int_equal(r.code, 413);
	assert_string_equal(r.body.p, STATUS_413);
	assert_non_null(strstr(r.head.p, "Content-Type: application/json"));
	curl_easy_cleanup(e);
	cresp_free(&r);
	free(data);

	/* Announced length too big: answered before any body byte. */
	fd = raw_connect(s->port);
	raw_send(fd, "PUT /echo HTTP/1.1\r\nContent-Length: 3145729\r\n\r\n");
	assert_true(raw_read_eof(fd, &out, 5000));
	assert_true(
	    strncmp(out.p, "HTTP/1.1 413 Request Entity Too Large\r\n", 39)
	    == 0);
	assert_non_null(strstr(out.p, "Connection: close\r\n"));
	resp_body(out.p, out.len, &b);
	assert_string_equal(b.p, STATUS_413);
	dbuf_free(&out);
	dbuf_free(&b);
	close(fd);

	/* Chunked: the limit applies to the sum of the chunks. */
	small = server_start_cfg(NULL, NULL, 1000);
	fd    = raw_connect(small->port);
	raw_send(
	    fd, "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
	for (int i = 0; i < 2; i++) {
		char chunk[700];
		snprintf(chunk, sizeof(chunk), "258\r\n%0600d\r\n", 0);
		raw_send(fd, chunk);
	}
	assert_true(raw_read_eof(fd, &out, 5000));
	assert_true(strncmp(out.p, "HTTP/1.1 413 ", 13) == 0);
	assert_non_null(strstr(out.p,
	    "\"message\":\"Request entity too "
	    "large: limit is 1000\""));
	dbuf_free(&out);
	close(fd);
	server_stop(small);
}

static void
test_httpd_malformed_400(void **state)
{
	tsrv *s = *state;
	static const struct {
		const char *req;
		const char *status;
	} cases[] = {
		{ "GARBAGE\r\n\r\n", "400" },
		{ "GET / HTTP/1.1\r\nBad Header\r\n\r\n", "400" },
		{ "GET / HTTP/1.1\r\n: novalue\r\n\r\n", "400" },
		{ "GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", "400" },
		{ "GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n", "400" },
		{ "GET  / HTTP/1.1\r\n\r\n", "400" },
		{ "GET / FOO/1.1\r\n\r\n", "400" },
		{ "GET / HTTP/1.1 \r\n\r\n", "400" },
		{ "G(T / HTTP/1.1\r\n\r\n", "400" },
		{ "GET / HTTP/2.0\r\n\r\n", "505" },
		{ "GET /\x01 HTTP/1.1\r\n\r\n", "400" },
		{ "GET / HTTP/1.1\r\nA: b\x01\r\n\r\n", "400" },
		{ "GET / HTTP/1.1\r\nA: b\rc\r\n\r\n", "400" },
		{ "POST / HTTP/1.1\r\nContent-Length: abc\r\n\r\n", "400" },
		{ "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", "400" },
		{ "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1"
		  "\r\n\r\nx",
		    "400" },
		{ "POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999"
		  "\r\n\r\n",
		    "413" },
		{ "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
		  "Content-Length: 3\r\n\r\nabc",
		    "400" },
		{ "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
		    "400" },
		{ "POST / HTTP/1.1\r\nTransfer-Encoding: gzip, "
		  "chunked\r\n\r\n",
		    "501" },
		{ "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
		    "400" },
		{ "POST / HTTP/1.1\r\nTransfer-Encoding: "
		  "chunked\r\n\r\nzz\r\n",
		    "400" },
		{ "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
		  "3\r\nabcX",
		    "400" },
		{ "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
		  "ffffffffffffffffffff\r\n",
		    "413" },
		{ "\rGET / HTTP/1.1\r\n\r\n", "400" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int  fd  = raw_connect(s->port);
		dbuf out = { 0 };
		char want[32];
		raw_send(fd, cases[i].req);
		if (!raw_read_eof(fd, &out, 5000))
			fail_msg("case %zu: no close", i);
		snprintf(want, sizeof(want), "HTTP/1.1 %s ", cases[i].status);
		if (out.p == NULL || strncmp(out.p, want, strlen(want)) != 0)
			fail_msg("case %zu: got \"%.30s\", want %s", i,
			    out.p ? out.p : "", want);
		assert_non_null(strstr(out.p, "\"kind\":\"Status\""));
		dbuf_free(&out);
		close(fd);
	}

	/* A NUL byte inside a header line. */
	{
		static const char req[] = "GET / HTTP/1.1\r\nA: b\0c\r\n\r\n";
		int               fd    = raw_connect(s->port);
		dbuf              out   = { 0 };
		raw_send_n(fd, req, sizeof(req) - 1);
		assert_true(raw_read_eof(fd, &out, 5000));
		assert_true(strncmp(out.p, "HTTP/1.1 400 ", 13) == 0);
		dbuf_free(&out);
		close(fd);
	}

	/* Headers over 64 KiB: 431, whether or not they ever end. */
	for (int ends = 0; ends < 2; ends++) {
		int    fd  = raw_connect(s->port);
		dbuf   out = { 0 };
		size_t n   = 70000;
		char  *big = mcf_malloc(n + 64);
		memcpy(big, "GET / HTTP/1.1\r\nX-Big: ", 23);
		memset(big + 23, 'a', n - 23);
		strcpy(big + n, ends ? "\r\n\r\n" : "");
		raw_send(fd, big);
		assert_true(raw_read_eof(fd, &out, 5000));
		assert_true(strncmp(out.p, "HTTP/1.1 431 ", 13) == 0);
		dbuf_free(&out);
		free(big);
		close(fd);
	}

	/* Random binary junk: any answer or a close, never a crash. */
	{
		unsigned seed = 12345;
		for (int k = 0; k < 50; k++) {
			int  fd  = raw_connect(s->port);
			dbuf out = { 0 };
			char junk[512];
			for (size_t i = 0; i < sizeof(junk); i++)
				junk[i] = (char) ((seed = seed * 1103515245u
				                          + 12345u)
				    >> 16);
			/* The server may answer 400 early and close. */
			(void) !send(fd, junk, sizeof(junk), MSG_NOSIGNAL);
			(void) !send(fd, "\r\n\r\n", 4, MSG_NOSIGNAL);
			(void) raw_read_eof(fd, &out, 5000);
			dbuf_free(&out);
			close(fd);
		}
	}
	/* The server still works. */
	{
		dbuf out = { 0 };
		raw_exchange(s->port, "GET /hello HTTP/1.1\r\n\r\n", &out);
		assert_true(strncmp(out.p, "HTTP/1.1 200 OK\r\n", 17) == 0);
		dbuf_free(&out);
	}
}

static void
test_httpd_headers_split_bytewise(void **state)
{
	tsrv       *s   = *state;
	const char *req = "GET /info?q=1 HTTP/1.1\r\nHost: x\r\nX-Test: a\r\n"
	                  "X-Test: b\r\n\r\n";
	const char *post
	    = "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
	      "Expect: 100-continue\r\n\r\n4;e=1\r\nabcd\r\n2\r\nef\r\n"
	      "0\r\nT: 1\r\n\r\n";
	int  fd  = raw_connect(s->port);
	dbuf acc = { 0 }, out = { 0 }, b = { 0 };

	for (const char *p = req; *p; p++) {
		raw_send_n(fd, p, 1);
		sleep_ms(1);
	}
	assert_true(raw_read_response(fd, &acc, &out, 5000));
	resp_body(out.p, out.len, &b);
	assert_string_equal(b.p, "GET|/info|q=1|/info?q=1|a, b|peer-ok|0");
	dbuf_free(&out);
	dbuf_free(&b);

	/* A chunked upload split at every position, on one connection. */
	for (size_t k = 1; k < strlen(post); k++) {
		raw_send_n(fd, post, k);
		sleep_ms(1);
		raw_send(fd, post + k);
		/* The 100 Continue comes first. */
		assert_true(raw_read_response(fd, &acc, &out, 5000));
		assert_true(
		    strncmp(out.p, "HTTP/1.1 100 Continue\r\n\r\n", 25) == 0);
		dbuf_free(&out);
		assert_true(raw_read_response(fd, &acc, &out, 5000));
		resp_body(out.p, out.len, &b);
		assert_string_equal(b.p, "abcdef");
		dbuf_free(&out);
		dbuf_free(&b);
	}
	dbuf_free(&acc);
	close(fd);
}

static void
test_httpd_stream_chunks_incremental(void **state)
{
	tsrv   *s   = *state;
	int     fd  = raw_connect(s->port);
	dbuf    acc = { 0 };
	int64_t t0, t1;
	cresp   r = { 0 };
	char    url[128];

	raw_send(fd, "GET /stream HTTP/1.1\r\n\r\n");
	assert_true(raw_read_until(fd, &acc, "{\"n\":1}\n\r\n", 5000));
	t0 = now_ms();
	assert_non_null(strstr(acc.p, "Transfer-Encoding: chunked\r\n"));
	assert_null(strstr(acc.p, "Content-Length"));
	/* The first event arrives alone, long before the end. */
	assert_null(strstr(acc.p, "{\"n\":2}"));
	assert_true(raw_read_until(fd, &acc, "\r\n0\r\n\r\n", 5000));
	t1 = now_ms();
	assert_true(t1 - t0 >= 100);
	assert_non_null(strstr(acc.p,
	    "\r\n\r\n8\r\n{\"n\":1}\n\r\n8\r\n{\"n\":2}\n\r\n"
	    "8\r\n{\"n\":3}\n\r\n8\r\n{\"n\":4}\n\r\n0\r\n\r\n"));
	dbuf_free(&acc);
	close(fd);

	snprintf(url, sizeof(url), "%s/stream", s->base);
	curl_get(url, &r);
	assert_int_equal(r.code, 200);
	assert_string_equal(
	    r.body.p, "{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n{\"n\":4}\n");
	cresp_free(&r);
}

static void
test_httpd_pending_response_timer(void **state)
{
	tsrv   *s = *state;
	cresp   r = { 0 };
	char    url[128];
	int64_t t0 = now_ms();

	snprintf(url, sizeof(url), "%s/slow?ms=120", s->base);
	curl_get(url, &r);
	assert_int_equal(r.code, 200);
	assert_string_equal(r.body.p, "late\n");
	assert_true(now_ms() - t0 >= 110);
	cresp_free(&r);
	assert_int_equal(atomic_load(&s->closes), 0);
}

static void
test_httpd_hangup_fires_close(void **state)
{
	tsrv   *s   = *state;
	int     fd  = raw_connect(s->port);
	dbuf    acc = { 0 };
	int64_t t0;

	/* An idle watch stream: nothing to read or write on our side. */
	raw_send(fd, "GET /watch HTTP/1.1\r\n\r\n");
	assert_true(
	    raw_read_until(fd, &acc, "{\"type\":\"ADDED\"}\n\r\n", 5000));
	dbuf_free(&acc);
	sleep_ms(50);
	assert_int_equal(atomic_load(&s->closes), 0);
	t0 = now_ms();
	close(fd);
	assert_true(wait_atomic(&s->closes, 1, 2000));
	assert_true(now_ms() - t0 < 1000 * timeout_scale);

	/* A pending response whose client leaves: callback, no answer. */
	fd = raw_connect(s->port);
	raw_send(fd, "GET /slow?ms=10000 HTTP/1.1\r\n\r\n");
	sleep_ms(50);
	shutdown(fd, SHUT_RDWR);
	close(fd);
	assert_true(wait_atomic(&s->closes, 2, 2000));
	assert_true(wait_zero(&s->live, 2000));

	/* The same with pipelined input paused behind the pending one. */
	fd = raw_connect(s->port);
	raw_send(fd,
	    "GET /slow?ms=10000 HTTP/1.1\r\n\r\nGET /hello HTTP/1.1"
	    "\r\n\r\n");
	sleep_ms(50);
	close(fd);
	assert_true(wait_atomic(&s->closes, 3, 2000));
	sleep_ms(20);
	assert_int_equal(atomic_load(&s->closes), 3);
}

static void
test_httpd_reset_seen_as_econnreset(void **state)
{
	tsrv *s  = *state;
	int   fd = raw_connect(s->port);
	int   e;

	raw_send(fd, "GET /reset HTTP/1.1\r\n\r\n");
	e = raw_read_error(fd, 5000);
	assert_int_equal(e, ECONNRESET);
	close(fd);
	assert_true(wait_atomic(&s->closes, 1, 2000));
}

static void
test_httpd_abrupt_stream_end(void **state)
{
	tsrv *s   = *state;
	int   fd  = raw_connect(s->port);
	dbuf  out = { 0 };

	raw_send(fd, "GET /abrupt HTTP/1.1\r\n\r\n");
	assert_true(raw_read_eof(fd, &out, 5000));
	assert_non_null(strstr(out.p, "\r\n\r\n8\r\n{\"half\":\r\n"));
	assert_null(strstr(out.p, "0\r\n\r\n"));
	assert_true(out.len > 10);
	assert_string_equal(out.p + out.len - 10, "{\"half\":\r\n");
	dbuf_free(&out);
	close(fd);
	assert_int_equal(atomic_load(&s->closes), 1);
}

static void
test_httpd_http10_and_connection_close(void **state)
{
	tsrv *s   = *state;
	dbuf  out = { 0 }, b = { 0 };
	int   fd;

	fd = raw_connect(s->port);
	raw_send(fd, "GET /hello HTTP/1.0\r\n\r\n");
	assert_true(raw_read_eof(fd, &out, 5000));
	assert_true(strncmp(out.p, "HTTP/1.1 200 OK\r\n", 17) == 0);
	assert_non_null(strstr(out.p, "Connection: close\r\n"));
	dbuf_free(&out);
	close(fd);

	/* HTTP/1.0 keep-alive on request. */
	fd = raw_connect(s->port);
	raw_send(fd,
	    "GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
	    "GET /hello HTTP/1.0\r\n\r\n");
	assert_true(raw_read_eof(fd, &out, 5000));
	assert_non_null(strstr(out.p, "Connection: keep-alive\r\n"));
	assert_non_null(
	    strstr(strstr(out.p, "hello\n") + 6, "Connection: close\r\n"));
	dbuf_free(&out);
	close(fd);

	/* A stream to an HTTP/1.0 client: raw bytes, ended by the close. */
	fd = raw_connect(s->port);
	raw_send(fd, "GET /stream HTTP/1.0\r\n\r\n");
	assert_true(raw_read_eof(fd, &out, 5000));
	assert_null(strstr(out.p, "Transfer-Encoding"));
	assert_non_null(strstr(out.p,
	    "\r\n\r\n{\"n\":1}\n{\"n\":2}\n"
	    "{\"n\":3}\n{\"n\":4}\n"));
	dbuf_free(&out);
	close(fd);

	fd = raw_connect(s->port);
	raw_send(fd,
	    "POST /echo HTTP/1.1\r\nConnection: Close\r\n"
	    "Content-Length: 2\r\n\r\nhi");
	assert_true(raw_read_eof(fd, &out, 5000));
	assert_non_null(strstr(out.p, "Connection: close\r\n"));
	resp_body(out.p, out.len, &b);
	assert_string_equal(b.p, "hi");
	dbuf_free(&out);
	dbuf_free(&b);
	close(fd);
}

static void
test_httpd_backpressure_drain(void **state)
{
	tsrv  *s   = *state;
	int    fd  = raw_connect_rcvbuf(s->port, 32 * 1024);
	dbuf   acc = { 0 }, b = { 0 };
	size_t i;

	raw_send(fd, "GET /flood HTTP/1.1\r\n\r\n");
	sleep_ms(300); /* let the server's queue back up */
	assert_true(raw_read_until(fd, &acc, "\r\n0\r\n\r\n", 20000));
	resp_body(acc.p, acc.len, &b);
	assert_int_equal(b.len, FLOOD_TOTAL);
	for (i = 0; i < b.len && b.p[i] == 'f'; i++)
		;
	assert_int_equal(i, b.len);
	assert_true(atomic_load(&s->drains) >= 1);
	dbuf_free(&acc);
	dbuf_free(&b);
	close(fd);
}

static void
test_httpd_destroy_closes_streams(void **state)
{
	tsrv *s = server_start_cfg(NULL, NULL, 0);
	int   fds[3];
	(void) state;

	for (int i = 0; i < 3; i++) {
		dbuf acc = { 0 };
		fds[i]   = raw_connect(s->port);
		raw_send(fds[i], "GET /watch HTTP/1.1\r\n\r\n");
		assert_true(raw_read_until(fds[i], &acc, "ADDED", 5000));
		dbuf_free(&acc);
	}
	ks_httpd_stop(s->h);
	assert_int_equal(pthread_join(s->th, NULL), 0);
	ks_httpd_destroy(s->h);
	assert_int_equal(atomic_load(&s->closes), 3);
	for (int i = 0; i < 3; i++) {
		dbuf out = { 0 };
		assert_true(raw_read_eof(fds[i], &out, 5000));
		dbuf_free(&out);
		close(fds[i]);
	}
	free(s);
}

static void
test_httpd_close_all(void **state)
{
	tsrv *s   = *state;
	int   w   = raw_connect(s->port);
	int   fd  = raw_connect(s->port);
	dbuf  acc = { 0 }, out = { 0 };

	raw_send(w, "GET /watch HTTP/1.1\r\n\r\n");
	assert_true(raw_read_until(w, &acc, "ADDED", 5000));
	dbuf_free(&acc);
	raw_send(fd, "GET /closeall HTTP/1.1\r\n\r\n");
	/* The response queued before close_all is still delivered. */
	assert_true(raw_read_eof(fd, &out, 5000));
	assert_non_null(strstr(out.p, "\r\n\r\nbye\n"));
	dbuf_free(&out);
	assert_true(raw_read_eof(w, &out, 5000));
	dbuf_free(&out);
	assert_true(wait_atomic(&s->closes, 1, 2000));
	close(w);
	close(fd);
}

static void
test_httpd_many_idle_streams(void **state)
{
	tsrv *s = *state;
	enum { N = 400 };
	int *fds = mcf_calloc(N, sizeof(int));

	for (int i = 0; i < N; i++) {
		fds[i] = raw_connect(s->port);
		raw_send(fds[i], "GET /watch?x=1 HTTP/1.1\r\nHost: a\r\n\r\n");
	}
	for (int i = 0; i < N; i++) {
		dbuf acc = { 0 };
		assert_true(raw_read_until(fds[i], &acc, "ADDED", 5000));
		dbuf_free(&acc);
	}
	assert_int_equal(atomic_load(&s->streams), N);
	for (int i = 0; i < N; i++)
		close(fds[i]);
	assert_true(wait_atomic(&s->closes, N, 5000));
	free(fds);
}

/* --- timers and posts (loop in the test thread) --------------------- */

typedef struct tlog {
	ks_httpd *h;
	char      order[64];
	uint64_t  victim;
	int       fired;
	int64_t   last_deadline;
	bool      out_of_order;
} tlog;

typedef struct tmark {
	tlog   *log;
	char    tag;
	int64_t due;
	bool    cancelled;
	bool    fired;
} tmark;

static void
mark_fire(void *arg)
{
	tmark *m = arg;
	size_t n = strlen(m->log->order);
	if (n + 1 < sizeof(m->log->order)) {
		m->log->order[n]     = m->tag;
		m->log->order[n + 1] = '\0';
	}
	m->fired = true;
}

static void
mark_chain(void *arg)
{
	tmark *m = arg;
	mark_fire(m);
	/* Cancel a later timer from inside a callback, and add one with no
	 * delay: it must run, but after the current batch. */
	ks_httpd_timer_cancel(m->log->h, m->log->victim);
	ks_httpd_timer_add(m->log->h, 0, mark_fire, m + 1);
}

static void
stop_fire(void *arg)
{
	ks_httpd_stop(arg);
}

static void
stress_fire(void *arg)
{
	tmark *m = arg;
	m->fired = true;
	/* `due` was read just before ks_httpd_timer_add read the clock
	 * itself; allow the clock to have ticked in between. */
	if (m->due + 2 < m->log->last_deadline)
		m->log->out_of_order = true;
	if (m->due > m->log->last_deadline)
		m->log->last_deadline = m->due;
	m->log->fired++;
}

static void
test_httpd_timers_order_and_cancel(void **state)
{
	ks_httpd       *h;
	char            err[256];
	ks_httpd_config cfg = { .listen = "127.0.0.1:0" };
	tlog            log = { 0 };
	tmark           m[10];
	uint64_t        x;
	int64_t         t0;
	(void) state;

	assert_int_equal(ks_httpd_create(&h, &cfg, err, sizeof(err)), MCF_OK);
	log.h = h;
	for (int i = 0; i < 10; i++)
		m[i] = (tmark) { .log = &log };
	m[0].tag = 'c';
	m[1].tag = 'a';
	m[2].tag = 'b';
	m[3].tag = 'A';
	m[4].tag = 'x';
	m[5].tag = 'z';
	m[6].tag = 'K';
	m[7].tag = 'k';
	m[8].tag = 'v';
	ks_httpd_timer_add(h, 150, mark_fire, &m[0]);
	ks_httpd_timer_add(h, 20, mark_fire, &m[1]);
	ks_httpd_timer_add(h, 40, mark_fire, &m[2]);
	ks_httpd_timer_add(h, 20, mark_fire, &m[3]); /* same deadline: FIFO */
	x = ks_httpd_timer_add(h, 30, mark_fire, &m[4]);
	ks_httpd_timer_add(h, 0, mark_fire, &m[5]);
	ks_httpd_timer_add(h, 50, mark_chain, &m[6]); /* then m[7] */
	log.victim = ks_httpd_timer_add(h, 55, mark_fire, &m[8]);
	ks_httpd_timer_cancel(h, x);
	ks_httpd_timer_cancel(h, x); /* twice: no-op */
	ks_httpd_timer_cancel(h, 0);
	ks_httpd_timer_cancel(h, 0xdeadbeef00000001ull);
	ks_httpd_timer_add(h, 200, stop_fire, h);
	t0 = ks_httpd_now_ms(h);
	assert_int_equal(ks_httpd_run(h), MCF_OK);
	assert_true(ks_httpd_now_ms(h) - t0 >= 200);
	assert_string_equal(log.order, "zaAbKkc");
	assert_false(m[4].fired);
	assert_false(m[8].fired);

	/* A fired id is stale: cancelling it must not hit a new timer that
	 * reuses the slot. */
	{
		tmark    y = { .log = &log, .tag = 'y' };
		uint64_t id;
		log.order[0] = '\0';
		id           = ks_httpd_timer_add(h, 0, mark_fire, &y);
		ks_httpd_timer_add(h, 5, stop_fire, h);
		assert_int_equal(ks_httpd_run(h), MCF_OK);
		ks_httpd_timer_add(h, 0, mark_fire, &m[9]);
		m[9].tag = 'w';
		ks_httpd_timer_cancel(h, id);
		ks_httpd_timer_add(h, 5, stop_fire, h);
		assert_int_equal(ks_httpd_run(h), MCF_OK);
		assert_string_equal(log.order, "yw");
	}

	/* Many timers, half cancelled: the rest fire in deadline order. */
	{
		enum { N = 2000 };
		tmark    *ms      = mcf_calloc(N, sizeof(tmark));
		uint64_t *ids     = mcf_calloc(N, sizeof(uint64_t));
		unsigned  seed    = 99;
		int       want    = 0;
		log.fired         = 0;
		log.last_deadline = 0;
		for (int i = 0; i < N; i++) {
			int d = (int) ((seed = seed * 1103515245u + 12345u)
			            >> 16)
			    % 40;
			ms[i].log = &log;
			ms[i].due = ks_httpd_now_ms(h) + d;
			ids[i] = ks_httpd_timer_add(h, d, stress_fire, &ms[i]);
		}
		for (int i = 0; i < N; i += 2) {
			ks_httpd_timer_cancel(h, ids[i]);
			ms[i].cancelled = true;
		}
		for (int i = 0; i < N; i++)
			want += !ms[i].cancelled;
		ks_httpd_timer_add(h, 80, stop_fire, h);
		assert_int_equal(ks_httpd_run(h), MCF_OK);
		assert_int_equal(log.fired, want);
		assert_false(log.out_of_order);
		for (int i = 0; i < N; i++)
			assert_true(ms[i].fired == !ms[i].cancelled);
		free(ms);
		free(ids);
	}

	/* Pending timers are dropped by destroy. */
	ks_httpd_timer_add(h, 100000, mark_fire, &m[0]);
	ks_httpd_destroy(h);
	ks_httpd_destroy(NULL);
}

static void
post_inc(void *arg)
{
	tsrv *s = arg;
	atomic_fetch_add(&s->posts, 1);
}

static void *
poster(void *arg)
{
	tsrv *s = arg;
	for (int i = 0; i < 1000; i++)
		ks_httpd_post(s->h, post_inc, s);
	return NULL;
}

static void
test_httpd_post_from_threads(void **state)
{
	tsrv     *s = *state;
	pthread_t t[2];

	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, poster, s), 0);
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_join(t[i], NULL), 0);
	assert_true(wait_atomic(&s->posts, 2000, 5000));
	sleep_ms(10);
	assert_int_equal(atomic_load(&s->posts), 2000);
}

static void
test_httpd_create_errors(void **state)
{
	ks_httpd       *h = NULL;
	char            err[256];
	ks_httpd_config cfg = { .listen = "nonsense" };
	(void) state;

	assert_int_equal(
	    ks_httpd_create(&h, &cfg, err, sizeof(err)), MCF_EINVAL);
	assert_null(h);
	assert_true(strlen(err) > 0);
	cfg.listen = "127.0.0.1:99999";
	assert_int_equal(
	    ks_httpd_create(&h, &cfg, err, sizeof(err)), MCF_EINVAL);
	cfg.listen   = "127.0.0.1:0";
	cfg.tls_cert = "/nonexistent/cert.pem";
	cfg.tls_key  = "/nonexistent/key.pem";
	assert_int_equal(
	    ks_httpd_create(&h, &cfg, err, sizeof(err)), MCF_EINVAL);
	assert_non_null(strstr(err, "tls"));
	cfg.tls_key = NULL;
	assert_int_equal(ks_httpd_create(&h, &cfg, NULL, 0), MCF_EINVAL);
	assert_null(h);
}

/* --- TLS ------------------------------------------------------------ */

/* Writes a self-signed P-256 certificate for 127.0.0.1 and localhost. */
static void
make_cert(const char *cert, const char *key)
{
	EVP_PKEY       *pk = EVP_EC_gen("P-256");
	X509           *x  = X509_new();
	X509_NAME      *n;
	X509V3_CTX      v3;
	X509_EXTENSION *ext;
	FILE           *f;

	assert_non_null(pk);
	assert_non_null(x);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, pk);
	n = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
	    (const unsigned char *) "localhost", -1, -1, 0);
	X509_set_issuer_name(x, n);
	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(
	    NULL, &v3, NID_subject_alt_name, "IP:127.0.0.1,DNS:localhost");
	assert_non_null(ext);
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	ext = X509V3_EXT_conf_nid(
	    NULL, &v3, NID_basic_constraints, "critical,CA:TRUE");
	assert_non_null(ext);
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	assert_true(X509_sign(x, pk, EVP_sha256()) > 0);

	f = fopen(cert, "w");
	assert_non_null(f);
	assert_int_equal(PEM_write_X509(f, x), 1);
	fclose(f);
	f = fopen(key, "w");
	assert_non_null(f);
	assert_int_equal(
	    PEM_write_PrivateKey(f, pk, NULL, NULL, 0, NULL, NULL), 1);
	fclose(f);
	X509_free(x);
	EVP_PKEY_free(pk);
}

static void
test_httpd_tls(void **state)
{
	char   dir[] = "/tmp/ks_httpd_test.XXXXXX";
	char   cert[64], key[64], url[128];
	tsrv  *s;
	cresp  r = { 0 };
	CURL  *e;
	size_t len  = 1000000;
	char  *data = mcf_malloc(len);
	(void) state;

	assert_non_null(mkdtemp(dir));
	snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
	snprintf(key, sizeof(key), "%s/key.pem", dir);
	make_cert(cert, key);
	s = server_start_cfg(cert, key, 0);
	assert_string_equal(ks_httpd_scheme(s->h), "https");
	assert_true(strncmp(s->base, "https://", 8) == 0);

	snprintf(url, sizeof(url), "%s/hello", s->base);
	e = curl_new(url, &r);
	curl_easy_setopt(e, CURLOPT_CAINFO, cert);
	curl_run(e, &r);
	assert_int_equal(r.code, 200);
	assert_string_equal(r.body.p, "hello\n");
	cresp_free(&r);

	/* A large body both ways (partial TLS writes), same connection. */
	for (size_t i = 0; i < len; i++)
		data[i] = (char) (i % 251);
	snprintf(url, sizeof(url), "%s/echo", s->base);
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, data);
	curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long) len);
	curl_run(e, &r);
	assert_int_equal(r.code, 200);
	assert_int_equal(r.body.len, len);
	assert_memory_equal(r.body.p, data, len);
	assert_int_equal(r.connects, 0);
	cresp_free(&r);

	/* A chunked stream over TLS. */
	snprintf(url, sizeof(url), "%s/stream", s->base);
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
	curl_run(e, &r);
	assert_int_equal(r.code, 200);
	assert_string_equal(
	    r.body.p, "{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n{\"n\":4}\n");
	cresp_free(&r);
	curl_easy_cleanup(e);

	/* Plain HTTP at the TLS port: dropped, no crash. */
	{
		int  fd  = raw_connect(s->port);
		dbuf out = { 0 };
		raw_send(fd, "GET /hello HTTP/1.1\r\n\r\n");
		(void) raw_read_eof(fd, &out, 5000);
		dbuf_free(&out);
		close(fd);
	}
	/* A TLS client that hangs up on a watch fires the callback. */
	{
		cresp w = { 0 };
		snprintf(url, sizeof(url), "%s/slow?ms=20000", s->base);
		e = curl_new(url, &w);
		curl_easy_setopt(e, CURLOPT_CAINFO, cert);
		curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 500L * timeout_scale);
		assert_int_equal(
		    curl_easy_perform(e), CURLE_OPERATION_TIMEDOUT);
		curl_easy_cleanup(e);
		cresp_free(&w);
		assert_true(wait_atomic(&s->closes, 1, 2000));
	}
	server_stop(s);
	unlink(cert);
	unlink(key);
	rmdir(dir);
	free(data);
}

static int
group_setup(void **state)
{
	memset(flood_block, 'f', sizeof(flood_block));
	return ks_fx_group_setup(state);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		{ "simple GET, 404, 204", test_httpd_simple_get, setup_server,
		    teardown_server, NULL },
		{ "request fields and joined headers",
		    test_httpd_request_fields, setup_server, teardown_server,
		    NULL },
		{ "POST with a body", test_httpd_post_body, setup_server,
		    teardown_server, NULL },
		{ "Expect: 100-continue answered at once",
		    test_httpd_expect_continue_fast, setup_server,
		    teardown_server, NULL },
		{ "chunked request body", test_httpd_chunked_request_body,
		    setup_server, teardown_server, NULL },
		{ "keep-alive reuse", test_httpd_keepalive_reuse, setup_server,
		    teardown_server, NULL },
		{ "pipelined requests in order", test_httpd_pipelining,
		    setup_server, teardown_server, NULL },
		{ "oversize body gets 413", test_httpd_oversize_body_413,
		    setup_server, teardown_server, NULL },
		{ "malformed requests get 400", test_httpd_malformed_400,
		    setup_server, teardown_server, NULL },
		{ "requests split byte by byte",
		    test_httpd_headers_split_bytewise, setup_server,
		    teardown_server, NULL },
		{ "stream chunks arrive one by one",
		    test_httpd_stream_chunks_incremental, setup_server,
		    teardown_server, NULL },
		{ "pending response answered by a timer",
		    test_httpd_pending_response_timer, setup_server,
		    teardown_server, NULL },
		{ "hang-up fires the close callback",
		    test_httpd_hangup_fires_close, setup_server,
		    teardown_server, NULL },
		{ "reset is seen as ECONNRESET",
		    test_httpd_reset_seen_as_econnreset, setup_server,
		    teardown_server, NULL },
		{ "abrupt stream end", test_httpd_abrupt_stream_end,
		    setup_server, teardown_server, NULL },
		{ "HTTP/1.0 and Connection: close",
		    test_httpd_http10_and_connection_close, setup_server,
		    teardown_server, NULL },
		{ "backpressure and drain callback",
		    test_httpd_backpressure_drain, setup_server,
		    teardown_server, NULL },
		{ "destroy closes open streams",
		    test_httpd_destroy_closes_streams, NULL, NULL, NULL },
		{ "close_all", test_httpd_close_all, setup_server,
		    teardown_server, NULL },
		{ "many idle streams", test_httpd_many_idle_streams,
		    setup_server, teardown_server, NULL },
		{ "timers: order and cancel",
		    test_httpd_timers_order_and_cancel, NULL, NULL, NULL },
		{ "post from other threads", test_httpd_post_from_threads,
		    setup_server, teardown_server, NULL },
		{ "create errors", test_httpd_create_errors, NULL, NULL,
		    NULL },
		{ "TLS with a self-signed certificate", test_httpd_tls, NULL,
		    NULL, NULL },
	};
	return cmocka_run_group_tests_name(
	    "ks_httpd", tests, group_setup, ks_fx_group_teardown);
}

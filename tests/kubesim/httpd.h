/*
 * httpd.h — kubesim's HTTP/1.1 server: one thread, one epoll loop.
 *
 * Why our own server and not libmicrohttpd: kubesim's fault injection needs
 * byte-level control of each connection (TCP reset, a watch cut in the middle
 * of a line, a response that never comes, throttled bytes), and idle watch
 * streams must notice a client that went away.  libmicrohttpd's only way to
 * park a streaming response is MHD_suspend_connection(), and a suspended
 * connection is not polled at all, so 10,000 idle watches would never see
 * their clients disconnect.  A single epoll loop with non-blocking sockets
 * (OpenSSL for TLS) gives all of that in one small module.
 *
 * Threads: everything here runs on the thread that calls ks_httpd_run(),
 * including every handler, timer and close callback.  The only functions
 * safe from other threads are ks_httpd_stop() and ks_httpd_post(); only
 * ks_httpd_stop() is also safe from a signal handler.
 *
 * Requests: the loop parses the request line, headers (at most 64 KiB), and
 * a body framed by Content-Length or chunked transfer coding (at most
 * `max_body` bytes; larger gets 413 before the handler runs).  It answers
 * `Expect: 100-continue` itself.  Malformed requests get 400 and the
 * connection is closed.  Keep-alive is on for HTTP/1.1 unless the client
 * says `Connection: close`.  One request at a time per connection: the next
 * pipelined request is parsed only after the current response has ended.
 *
 * Responses: the handler either answers at once (ks_conn_respond), starts a
 * chunked stream (ks_conn_stream_begin ... ks_conn_stream_end), or keeps the
 * request pending and answers later from a timer or another event — the
 * connection stays open and is still watched for hang-ups.  A peer that
 * shuts down its sending side while a response is pending or streaming is
 * treated as gone (as nginx and Go's net/http do), so half-closing clients
 * only get responses the handler sends at once.
 *
 * Closing and re-entrancy: the close callback (ks_conn_on_close) runs
 * exactly once per connection.  It runs synchronously inside
 * ks_conn_close() and ks_conn_stream_end(KS_END_ABRUPT); every other close
 * (peer hang-up, I/O error, the end of a response without keep-alive,
 * ks_httpd_destroy) is noticed by the loop itself and never runs a callback
 * from inside another ks_conn_* call, so a writer looping over many streams
 * is not re-entered by a failing write.  After the close callback the
 * connection must not be used by the caller, but its memory (and that of
 * its request) stays valid until the current loop iteration ends, and
 * every ks_conn_* call on a closed connection is a harmless no-op.  Calls
 * that do not fit the response state (respond twice, stream_write without
 * stream_begin) are ignored.
 */
#ifndef KS_HTTPD_H
#define KS_HTTPD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ks_httpd ks_httpd;
typedef struct ks_conn  ks_conn;

/* A parsed request.  It and its headers stay valid until its response has
 * ended (ks_conn_respond, ks_conn_stream_end, ks_conn_close) or the
 * connection closes, so a pending response may keep using them. */
typedef struct ks_req {
	const char *method;   /* "GET" */
	const char *target;   /* raw request target: "/api/v1/x?limit=1" */
	const char *path;     /* raw path part, not percent-decoded */
	const char *query;    /* raw query after '?', "" when none */
	const char *body;     /* NUL-terminated copy of the body ("" none) */
	size_t      body_len;
	uint64_t    id;       /* per-server request counter, from 1 */
	const char *peer;     /* "127.0.0.1:53422" */
} ks_req;

/* Value of header `name` (case-insensitive) of the current request, or NULL.
 * When a header repeats, the values are joined with ", ".  Borrowed like the
 * request. */
const char *ks_req_header(const ks_conn *c, const char *name);

typedef void (*ks_handler_fn)(void *arg, ks_conn *c, const ks_req *req);
typedef void (*ks_timer_fn)(void *arg);
typedef void (*ks_close_fn)(void *arg, ks_conn *c);

typedef struct ks_httpd_config {
	const char *listen;   /* "127.0.0.1:0" */
	const char *tls_cert; /* PEM file or NULL for plain HTTP */
	const char *tls_key;  /* PEM file or NULL */
	size_t      max_body; /* 0: 3 MiB, the Kubernetes limit */
	ks_handler_fn handler;
	void         *handler_arg;
} ks_httpd_config;

/* Binds and listens (SO_REUSEADDR, backlog 4096) and raises RLIMIT_NOFILE to
 * its hard limit.  Errors: MCF_EINVAL (bad address), MCF_ESYS (bind),
 * MCF_EINVAL (TLS files); `err` (may be NULL, 256 bytes) gets the reason. */
int  ks_httpd_create(ks_httpd **out, const ks_httpd_config *cfg, char *err,
     size_t errlen);
void ks_httpd_destroy(ks_httpd *h);

/* The bound port (useful with port 0) and "http" or "https". */
int         ks_httpd_port(const ks_httpd *h);
const char *ks_httpd_scheme(const ks_httpd *h);

/* Runs the loop until ks_httpd_stop().  Returns MCF_OK, or MCF_ESYS if
 * epoll_wait() fails.  A stop requested before the call makes it return at
 * once.  Timers and posted calls still queued at ks_httpd_destroy() are
 * dropped without running. */
int ks_httpd_run(ks_httpd *h);

/* Async-signal-safe and thread-safe: makes ks_httpd_run() return soon. */
void ks_httpd_stop(ks_httpd *h);

/* Thread-safe: runs `fn(arg)` once on the loop thread soon (queued; the
 * queue is unbounded). */
void ks_httpd_post(ks_httpd *h, ks_timer_fn fn, void *arg);

/* Milliseconds on the loop's monotonic clock. */
int64_t ks_httpd_now_ms(const ks_httpd *h);

/* One-shot timer after `delay_ms`; returns an id > 0 for cancelling.
 * Timers run on the loop thread in deadline order. */
uint64_t ks_httpd_timer_add(ks_httpd *h, int64_t delay_ms, ks_timer_fn fn,
    void *arg);
/* Cancels a timer that has not fired; no-op for unknown or fired ids. */
void ks_httpd_timer_cancel(ks_httpd *h, uint64_t id);

/* Connections currently owning a socket (open ones plus closed ones still
 * flushing their last bytes).  Loop thread. */
size_t ks_httpd_conn_count(const ks_httpd *h);

/* ks_conn_close() on every open connection (for a simulated restart).
 * Close callbacks run before it returns.  Loop thread. */
void ks_httpd_close_all(ks_httpd *h, bool reset);

/* --- per connection -------------------------------------------------- */

/* Sends a complete response with Content-Length.  `headers` is NULL or extra
 * header lines each ending in "\r\n" ("Retry-After: 1\r\n").  Allowed once
 * per request, and not after ks_conn_stream_begin. */
void ks_conn_respond(ks_conn *c, int status, const char *content_type,
    const char *headers, const void *body, size_t len);

/* Starts a chunked response. */
void ks_conn_stream_begin(ks_conn *c, int status, const char *content_type,
    const char *headers);
/* Queues one chunk (len > 0) and flushes as far as the socket allows. */
void ks_conn_stream_write(ks_conn *c, const void *data, size_t len);

enum ks_stream_end {
	KS_END_CLEAN,  /* terminating zero chunk; keep-alive may go on */
	KS_END_ABRUPT, /* close the socket without the terminator */
};
/* Ends the stream.  With KS_END_ABRUPT the bytes already queued are still
 * sent before the close. */
void ks_conn_stream_end(ks_conn *c, enum ks_stream_end how);

/* Writes raw bytes straight to the connection (no chunk framing); for fault
 * injection (a body cut in the middle).  Follow with ks_conn_close(). */
void ks_conn_write_raw(ks_conn *c, const void *data, size_t len);

/* Closes after queued bytes are sent (or at once with `reset`, which sets
 * SO_LINGER 0 so the peer sees a TCP RST).  The close callback runs. */
void ks_conn_close(ks_conn *c, bool reset);

/* Bytes queued and not yet written to the socket. */
size_t ks_conn_pending(const ks_conn *c);

/* Called once when the connection closes for any reason (peer hang-up,
 * error, ks_conn_close, server shutdown), before `c` is freed.  One callback
 * per connection; set to NULL to clear. */
void ks_conn_on_close(ks_conn *c, ks_close_fn fn, void *arg);

/* Called each time the output queue drains to empty (for backpressure-aware
 * writers) after a write had to wait for the socket; never from inside a
 * ks_conn_* call.  NULL to clear. */
void ks_conn_on_drain(ks_conn *c, ks_close_fn fn, void *arg);

/* Connection id (unique per server) and peer address. */
uint64_t    ks_conn_id(const ks_conn *c);
const char *ks_conn_peer(const ks_conn *c);

#endif /* KS_HTTPD_H */

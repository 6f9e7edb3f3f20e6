/*
 * httpserver.h — a small HTTP/1.1 server for status endpoints.
 *
 * Every mcfleet binary serves /status, /metrics, /healthz and /readyz with
 * it.  It is built for a handful of scrapers and probes, not for traffic:
 *
 *   - One thread of its own runs a poll(2) loop over the listening socket,
 *     a wake-up pipe and at most `max_conns` non-blocking connections.
 *     More connections are accepted, answered 503 and closed.
 *   - Routes map an exact path to a handler, registered before start.  An
 *     unknown path gets 404; a known path with a method other than GET or
 *     HEAD gets 405 with "Allow: GET, HEAD".  The path is matched as sent
 *     (not percent-decoded); the query string, without its '?', is handed
 *     to the handler separately.
 *   - Requests are parsed strictly and with bounds: a request line longer
 *     than `max_request_line` gets 414, a header section longer than
 *     `max_header_bytes` (or more than 100 header fields) gets 431,
 *     anything malformed (bad request line, bad header field, an HTTP/1.1
 *     request without Host, a bad Content-Length) gets 400, an HTTP major
 *     version other than 1 gets 505.  Those answers close the connection.
 *     A request body (Content-Length) of up to 1 MiB is read and
 *     discarded; a larger one or a Transfer-Encoding body is answered and
 *     the connection then closed.
 *   - Keep-alive as HTTP/1.1 defines it (HTTP/1.0 only with
 *     "Connection: keep-alive"); pipelined requests are answered in order.
 *   - One timeout, `idle_timeout_ms`, bounds each step a client controls:
 *     from the connection's start or the end of its last response to the
 *     end of the next request's header (so a slowloris client trickling
 *     bytes is cut off too), and from the start of a response to its last
 *     byte being written.  On expiry the connection is closed silently.
 *   - A connection being closed after an error answer is shut down for
 *     writing and drained for up to a second, so the client reads the
 *     answer instead of a reset.
 *
 * Thread model: create, route and start run on the owner's thread, before
 * the server thread exists.  After mcf_httpserver_start() only
 * mcf_httpserver_url(), mcf_httpserver_port(), mcf_httpserver_stop() and
 * mcf_httpserver_destroy() may be called, from any one thread other than
 * the server thread.  Handlers run on the server thread, one at a time;
 * they must be quick (every other client waits meanwhile) and must only
 * touch the rest of the program through thread-safe calls (a metrics
 * render, an atomic flag, a snapshot taken under a lock).  A handler must
 * not call mcf_httpserver_stop() or mcf_httpserver_destroy().
 *
 * Shutdown follows STYLE.md §3 in two steps: mcf_httpserver_stop() wakes
 * the loop, joins its thread and closes the listening socket and every
 * connection (idle or mid-request), so no handler can run afterwards;
 * mcf_httpserver_destroy() frees.
 *
 * Ownership: strings passed in are borrowed for the call and copied;
 * request fields are borrowed for the handler call; response bodies are
 * copied or, with mcf_httpserver_resp_body_steal(), taken.
 */
#ifndef MCF_COMMON_HTTPSERVER_H
#define MCF_COMMON_HTTPSERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

typedef struct mcf_httpserver      mcf_httpserver;
typedef struct mcf_httpserver_resp mcf_httpserver_resp;

/* A parsed request, as the handler sees it.  Every pointer is borrowed
 * until the handler returns.  Fields below `priv` are private. */
typedef struct mcf_httpserver_req {
	const char *method; /* "GET" or "HEAD" */
	const char *path;   /* "/metrics": the target before '?', raw */
	const char *query;  /* the raw target after '?', "" when none */
	const char *peer;   /* "127.0.0.1:53422" or "[::1]:53422" */
	bool        head;   /* HEAD: the body the handler sets is not sent */
	const void *priv;   /* private: the server's request state */
} mcf_httpserver_req;

/* A route's handler.  Fills `w` (status 200, content type "text/plain;
 * charset=utf-8" and an empty body unless it says otherwise) and returns
 * MCF_OK; any other return discards what it set and sends 500 with the
 * error's text.  Runs on the server thread (see the file comment).  `w`
 * is borrowed for the call. */
typedef int (*mcf_httpserver_handler_fn)(
    const mcf_httpserver_req *r, mcf_httpserver_resp *w, void *arg);

/* Options for mcf_httpserver_create().  Fill with
 * mcf_httpserver_opts_init() first; a plain value type. */
typedef struct mcf_httpserver_opts {
	/* "HOST:PORT", "[V6ADDR]:PORT" or ":PORT" (all IPv4 interfaces);
	 * HOST may be a name, the first address it resolves to is bound.
	 * Port 0 picks a free port.  Borrowed for the create call.
	 * Default "127.0.0.1:0". */
	const char *listen;
	/* Concurrent connections; more are answered 503.  Default 64. */
	int max_conns;
	/* See the file comment.  Default 15000 (15 s). */
	int64_t idle_timeout_ms;
	/* Longest request line, without CRLF (414 beyond).  Default
	 * 4096. */
	size_t max_request_line;
	/* Longest header section after the request line, including line
	 * ends (431 beyond).  Default 16384. */
	size_t max_header_bytes;
} mcf_httpserver_opts;

/* Fills `o` with the defaults above. */
void mcf_httpserver_opts_init(mcf_httpserver_opts *o);

/* Binds and listens on opts->listen (`opts` borrowed; NULL means the
 * defaults).  MCF_EINVAL for a malformed address or option (max_conns <
 * 1, idle_timeout_ms < 1, a limit below 64 bytes), MCF_ENOENT when a host
 * name does not resolve, MCF_EPERM for a port we may not bind, MCF_ESYS
 * when binding fails otherwise (address in use, not available); `ei`
 * (may be NULL) gets a message naming the address.
 * On success *out is new: the caller destroys it; on failure it is
 * untouched. */
int mcf_httpserver_create(
    mcf_httpserver **out, const mcf_httpserver_opts *opts, mcf_errinfo *ei);

/* Routes GET and HEAD of exactly `path` (borrowed, copied; must start
 * with '/') to `fn(req, resp, arg)`.  `arg` is borrowed until
 * mcf_httpserver_stop() returns.  MCF_EINVAL for a bad path, MCF_EEXIST
 * for a path routed already, MCF_EBUSY once started. */
int mcf_httpserver_route(mcf_httpserver *s, const char *path,
    mcf_httpserver_handler_fn fn, void *arg);

/* Starts the server thread.  MCF_EBUSY if started before (also after a
 * stop: a server runs once), MCF_ESYS if the thread cannot start. */
int mcf_httpserver_start(mcf_httpserver *s);

/* "http://127.0.0.1:40123", "http://[::1]:40123": the bound address with
 * the real port, a wildcard address given as its loopback so the URL can
 * be dialled.  Borrowed until mcf_httpserver_destroy(). */
const char *mcf_httpserver_url(const mcf_httpserver *s);

/* The bound port. */
int mcf_httpserver_port(const mcf_httpserver *s);

/* Stops serving: wakes the loop, joins the server thread, closes every
 * connection and the listening socket.  Idempotent; returns promptly
 * however many connections are open or idle.  Must not be called from a
 * handler. */
void mcf_httpserver_stop(mcf_httpserver *s);

/* Stops (if needed) and frees.  Accepts NULL. */
void mcf_httpserver_destroy(mcf_httpserver *s);

/* ---- for handlers: the request ---- */

/* The value of header `name` (case-insensitive) of the request, with
 * surrounding blanks removed, or NULL.  A repeated header gives its first
 * value.  Borrowed until the handler returns. */
const char *mcf_httpserver_req_header(
    const mcf_httpserver_req *r, const char *name);

/* ---- for handlers: the response ---- */

/* Sets the status code; MCF_EINVAL (and no change) outside 200..599.
 * 204 and 304 are sent without a body. */
int mcf_httpserver_resp_status(mcf_httpserver_resp *w, int code);

/* Sets the Content-Type (borrowed, copied).  MCF_EINVAL for NULL or a
 * value with control characters. */
int mcf_httpserver_resp_content_type(mcf_httpserver_resp *w, const char *type);

/* Adds a response header (both borrowed, copied), e.g. Retry-After.
 * MCF_EINVAL for an invalid name or a value with control characters, or
 * for the headers the server writes itself (Content-Length,
 * Content-Type, Connection, Transfer-Encoding). */
int mcf_httpserver_resp_header(
    mcf_httpserver_resp *w, const char *name, const char *value);

/* Replaces the body with a copy of `len` bytes at `data`. */
void mcf_httpserver_resp_body(
    mcf_httpserver_resp *w, const void *data, size_t len);

/* Replaces the body with `data` (steals: a malloc'ed buffer the server
 * frees), e.g. the output of mcf_metrics_render(). */
void mcf_httpserver_resp_body_steal(
    mcf_httpserver_resp *w, char *data, size_t len);

/* Appends printf-formatted text to the body. */
void mcf_httpserver_resp_printf(mcf_httpserver_resp *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif /* MCF_COMMON_HTTPSERVER_H */

/*
 * httpserver.c — a small HTTP/1.1 server for status endpoints.
 *
 * One thread runs a poll(2) loop.  Its pollfd array is rebuilt on every
 * iteration from three sources: the read end of a wake-up pipe (written by
 * mcf_httpserver_stop()), the listening socket (left out for a moment
 * after accept() ran out of file descriptors, so the loop does not spin),
 * and the connections.  The connections are few (max_conns), so
 * rebuilding the array and scanning for the nearest deadline are cheap
 * and keep the loop simple.
 *
 * Each connection is in one of three states:
 *
 *   READ    waiting for (the rest of) a request.  Each readable event does
 *           one read() into a fixed buffer sized so that the request line
 *           and header limits are always decided before it fills, then
 *           the buffer is parsed from its start.  A complete request is
 *           answered at once (handler or error) and the connection moves
 *           to WRITE; the parsed bytes stay in the buffer until then,
 *           because the request fields point into it.
 *   WRITE   sending the response, a header block and a body, with
 *           sendmsg(MSG_NOSIGNAL) so a vanished peer never raises SIGPIPE.
 *           When it is all sent the connection goes back to READ (and
 *           parses any pipelined request already buffered), or to LINGER
 *           when it must close.
 *   LINGER  shut down for writing and drained for up to a second, so the
 *           peer reads our last answer before the close instead of a
 *           reset caused by its unread request bytes.
 *
 * Every state has a deadline: READ and WRITE get idle_timeout_ms from
 * entering the state (never extended by partial progress, so a client
 * trickling bytes is cut off as surely as a silent one), LINGER its
 * second.  A connection is closed on deadline, peer close, or any I/O
 * error, silently.  Connections are only marked dead while events are
 * processed and swept at the end of the iteration, so the mapping from
 * pollfd slots to connections stays valid throughout.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <netinet/in.h>

#include "alloc.h"
#include "err.h"
#include "httpserver.h"
#include "log.h"

#define MAX_HEADERS 100
#define MAX_DISCARD_BODY (1u << 20) /* bodies up to this are read, dropped */
#define LINGER_MS 1000
#define ACCEPT_PAUSE_MS 100
#define DEFAULT_CTYPE "text/plain; charset=utf-8"

typedef struct hfield {
	const char *name;  /* borrowed: points into the conn's buffer */
	const char *value; /* borrowed: likewise */
} hfield;

enum cstate {
	C_READ,
	C_WRITE,
	C_LINGER,
};

typedef struct conn {
	int         fd;
	enum cstate state;
	bool        dead; /* close at the end of this loop iteration */
	int64_t     deadline;
	char        peer[96];

	char    *in; /* owned, s->in_cap bytes */
	size_t   in_len;
	size_t   consumed; /* bytes of `in` the current request used */
	uint64_t discard;  /* request body bytes still to drop */

	/* Headers of the current request, for mcf_httpserver_req_header. */
	hfield hdrs[MAX_HEADERS];
	size_t nhdrs;

	/* The response being written: out_hdr then out_body. */
	char  *out_hdr; /* owned */
	size_t out_hdr_len;
	char  *out_body; /* owned, may be NULL */
	size_t out_body_len;
	size_t out_off; /* bytes of both sent so far */
	bool   close_after;
} conn;

typedef struct route {
	char                     *path; /* owned */
	mcf_httpserver_handler_fn fn;
	void                     *arg; /* borrowed */
} route;

struct mcf_httpserver_resp {
	int    status;
	char  *ctype; /* owned, NULL for the default */
	char  *extra; /* owned: extra header lines, "Name: value\r\n"... */
	size_t extra_len;
	char  *body; /* owned */
	size_t body_len;
	size_t body_cap;
};

struct mcf_httpserver {
	/* Fixed at create. */
	int     listen_fd;
	int     wake_rd; /* wake-up pipe, read end: polled by the loop */
	int     wake_wr; /* write end: written by stop */
	int     port;
	char    url[96];
	int     max_conns;
	int64_t idle_ms;
	size_t  max_line;
	size_t  max_hdr;
	size_t  in_cap;

	/* Fixed before start. */
	route *routes; /* owned array */
	size_t nroutes;

	/* Owner thread only. */
	bool      started;
	bool      stopped;
	pthread_t thread;

	atomic_bool stopping; /* set by stop, read by the loop */

	/* Server thread only (and stop after the join). */
	conn         **conns; /* owned array of owned conns */
	size_t         nconns;
	struct pollfd *pfds; /* owned, 2 + max_conns */
	int64_t        accept_paused_until;
};

/* ---- helpers ---- */

static int64_t
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *
reason_phrase(int code)
{
	switch (code) {
	case 200:
		return "OK";
	case 201:
		return "Created";
	case 202:
		return "Accepted";
	case 204:
		return "No Content";
	case 301:
		return "Moved Permanently";
	case 302:
		return "Found";
	case 304:
		return "Not Modified";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 408:
		return "Request Timeout";
	case 413:
		return "Content Too Large";
	case 414:
		return "URI Too Long";
	case 429:
		return "Too Many Requests";
	case 431:
		return "Request Header Fields Too Large";
	case 500:
		return "Internal Server Error";
	case 501:
		return "Not Implemented";
	case 503:
		return "Service Unavailable";
	case 505:
		return "HTTP Version Not Supported";
	}
	if (code >= 200 && code < 300)
		return "OK";
	if (code >= 300 && code < 400)
		return "Redirection";
	if (code >= 400 && code < 500)
		return "Client Error";
	return "Server Error";
}

/* RFC 9110 tchar. */
static bool
is_tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
	    || (c >= '0' && c <= '9'))
		return true;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool
is_token(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++)
		if (!is_tchar((unsigned char) *s))
			return false;
	return true;
}

/* Field values: visible ASCII, blanks and obs-text; no other controls. */
static bool
is_field_value(const char *s)
{
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char) *s;
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return false;
	}
	return true;
}

/* True when the comma-separated list `list` holds `tok`
 * (case-insensitive), as in "Connection: keep-alive, Upgrade". */
static bool
list_has(const char *list, const char *tok)
{
	size_t tl = strlen(tok);
	while (*list != '\0') {
		while (*list == ' ' || *list == '\t' || *list == ',')
			list++;
		const char *e = list;
		while (*e != '\0' && *e != ',')
			e++;
		const char *t = e;
		while (t > list && (t[-1] == ' ' || t[-1] == '\t'))
			t--;
		if ((size_t) (t - list) == tl
		    && strncasecmp(list, tok, tl) == 0)
			return true;
		list = e;
	}
	return false;
}

static void
format_peer(const struct sockaddr *sa, socklen_t len, char *buf, size_t n)
{
	char host[64], serv[16];
	if (getnameinfo(sa, len, host, sizeof(host), serv, sizeof(serv),
	        NI_NUMERICHOST | NI_NUMERICSERV)
	    != 0) {
		snprintf(buf, n, "?");
		return;
	}
	if (sa->sa_family == AF_INET6)
		snprintf(buf, n, "[%s]:%s", host, serv);
	else
		snprintf(buf, n, "%s:%s", host, serv);
}

/* ---- responses ---- */

static void
resp_init(mcf_httpserver_resp *w)
{
	memset(w, 0, sizeof(*w));
	w->status = 200;
}

static void
resp_fini(mcf_httpserver_resp *w)
{
	free(w->ctype);
	free(w->extra);
	free(w->body);
	memset(w, 0, sizeof(*w));
}

static void
resp_reserve(mcf_httpserver_resp *w, size_t n)
{
	if (w->body_len + n + 1 <= w->body_cap)
		return;
	size_t cap = w->body_cap < 256 ? 256 : w->body_cap;
	while (cap < w->body_len + n + 1)
		cap *= 2;
	w->body     = mcf_realloc(w->body, cap);
	w->body_cap = cap;
}

int
mcf_httpserver_resp_status(mcf_httpserver_resp *w, int code)
{
	if (code < 200 || code > 599)
		return MCF_EINVAL;
	w->status = code;
	return MCF_OK;
}

int
mcf_httpserver_resp_content_type(mcf_httpserver_resp *w, const char *type)
{
	if (type == NULL || *type == '\0' || !is_field_value(type))
		return MCF_EINVAL;
	free(w->ctype);
	w->ctype = mcf_strdup(type);
	return MCF_OK;
}

int
mcf_httpserver_resp_header(
    mcf_httpserver_resp *w, const char *name, const char *value)
{
	static const char *const reserved[] = { "Content-Length",
		"Content-Type", "Connection", "Transfer-Encoding" };
	char                    *line;
	size_t                   len;

	if (name == NULL || value == NULL || !is_token(name)
	    || !is_field_value(value))
		return MCF_EINVAL;
	for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
		if (strcasecmp(name, reserved[i]) == 0)
			return MCF_EINVAL;
	line     = mcf_asprintf("%s: %s\r\n", name, value);
	len      = strlen(line);
	w->extra = mcf_realloc(w->extra, w->extra_len + len + 1);
	memcpy(w->extra + w->extra_len, line, len + 1);
	w->extra_len += len;
	free(line);
	return MCF_OK;
}

void
mcf_httpserver_resp_body(mcf_httpserver_resp *w, const void *data, size_t len)
{
	w->body_len = 0;
	resp_reserve(w, len);
	if (len > 0)
		memcpy(w->body, data, len);
	w->body_len          = len;
	w->body[w->body_len] = '\0';
}

void
mcf_httpserver_resp_body_steal(mcf_httpserver_resp *w, char *data, size_t len)
{
	free(w->body);
	w->body     = data;
	w->body_len = len;
	/* Unknown capacity: the next append reallocates. */
	w->body_cap = len;
}

void
mcf_httpserver_resp_printf(mcf_httpserver_resp *w, const char *fmt, ...)
{
	va_list ap;
	int     n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	resp_reserve(w, (size_t) n);
	va_start(ap, fmt);
	vsnprintf(w->body + w->body_len, (size_t) n + 1, fmt, ap);
	va_end(ap);
	w->body_len += (size_t) n;
}

/* Replaces whatever `w` holds with a plain-text answer. */
static void
resp_simple(mcf_httpserver_resp *w, int code, const char *text)
{
	resp_fini(w);
	resp_init(w);
	w->status = code;
	mcf_httpserver_resp_printf(w, "%s\n", text);
}

/* ---- connections ---- */

static void
conn_free(conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	free(c->in);
	free(c->out_hdr);
	free(c->out_body);
	free(c);
}

static void
conn_read_state(mcf_httpserver *s, conn *c)
{
	c->state    = C_READ;
	c->deadline = now_ms() + s->idle_ms;
}

static void
conn_linger(mcf_httpserver *s, conn *c)
{
	int64_t t = s->idle_ms < LINGER_MS ? s->idle_ms : LINGER_MS;
	(void) shutdown(c->fd, SHUT_WR);
	c->state    = C_LINGER;
	c->deadline = now_ms() + t;
}

/* Sends what it can of the response; when it is all sent, moves to READ
 * or LINGER. */
static void
conn_write(mcf_httpserver *s, conn *c)
{
	for (;;) {
		size_t        total = c->out_hdr_len + c->out_body_len;
		struct iovec  iov[2];
		int           n = 0;
		struct msghdr m;
		ssize_t       r;

		if (c->out_off >= total)
			break;
		if (c->out_off < c->out_hdr_len) {
			iov[n].iov_base = c->out_hdr + c->out_off;
			iov[n].iov_len  = c->out_hdr_len - c->out_off;
			n++;
			if (c->out_body_len > 0) {
				iov[n].iov_base = c->out_body;
				iov[n].iov_len  = c->out_body_len;
				n++;
			}
		} else {
			size_t off      = c->out_off - c->out_hdr_len;
			iov[n].iov_base = c->out_body + off;
			iov[n].iov_len  = c->out_body_len - off;
			n++;
		}
		memset(&m, 0, sizeof(m));
		m.msg_iov    = iov;
		m.msg_iovlen = (size_t) n;
		r            = sendmsg(c->fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return; /* wait for POLLOUT */
			c->dead = true; /* EPIPE, ECONNRESET, ... */
			return;
		}
		c->out_off += (size_t) r;
	}

	free(c->out_hdr);
	free(c->out_body);
	c->out_hdr     = NULL;
	c->out_body    = NULL;
	c->out_hdr_len = c->out_body_len = c->out_off = 0;
	/* The request's bytes were kept for the handler; drop them now. */
	memmove(c->in, c->in + c->consumed, c->in_len - c->consumed);
	c->in_len -= c->consumed;
	c->consumed = 0;
	c->nhdrs    = 0;
	if (c->close_after) {
		conn_linger(s, c);
		return;
	}
	conn_read_state(s, c);
	/* A pipelined request may be buffered already: process() loops
	 * (or the server loop calls it) rather than recursing from here. */
}

/* Appends printf-formatted text to the string *p of length *len. */
static void __attribute__((format(printf, 3, 4)))
append(char **p, size_t *len, const char *fmt, ...)
{
	va_list ap;
	int     n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		mcf_panic("httpserver: vsnprintf failed");
	*p = mcf_realloc(*p, *len + (size_t) n + 1);
	va_start(ap, fmt);
	vsnprintf(*p + *len, (size_t) n + 1, fmt, ap);
	va_end(ap);
	*len += (size_t) n;
}

/* Turns `w` into the bytes to send and starts sending.  Takes the body
 * out of `w`. */
static void
conn_respond(mcf_httpserver *s, conn *c, mcf_httpserver_resp *w, bool head,
    bool keep_alive, bool http10, bool allow)
{
	char  *hdr      = NULL;
	size_t hlen     = 0;
	bool   bodyless = w->status == 204 || w->status == 304;

	append(&hdr, &hlen, "HTTP/1.1 %d %s\r\n", w->status,
	    reason_phrase(w->status));
	if (!bodyless)
		append(&hdr, &hlen,
		    "Content-Type: %s\r\nContent-Length: %zu\r\n",
		    w->ctype != NULL ? w->ctype : DEFAULT_CTYPE, w->body_len);
	if (allow)
		append(&hdr, &hlen, "Allow: GET, HEAD\r\n");
	if (w->extra != NULL)
		append(&hdr, &hlen, "%s", w->extra);
	if (!keep_alive)
		append(&hdr, &hlen, "Connection: close\r\n");
	else if (http10)
		append(&hdr, &hlen, "Connection: keep-alive\r\n");
	append(&hdr, &hlen, "\r\n");

	c->out_hdr     = hdr;
	c->out_hdr_len = hlen;
	c->out_off     = 0;
	if (!head && !bodyless && w->body_len > 0) {
		c->out_body     = w->body;
		c->out_body_len = w->body_len;
		w->body         = NULL;
		w->body_len     = 0;
		w->body_cap     = 0;
	}
	c->close_after = !keep_alive;
	c->state       = C_WRITE;
	c->deadline    = now_ms() + s->idle_ms;
	conn_write(s, c);
}

/* Answers a request we could not parse, and closes afterwards. */
static void
conn_error(mcf_httpserver *s, conn *c, int code)
{
	mcf_httpserver_resp w;
	resp_init(&w);
	resp_simple(&w, code, reason_phrase(code));
	c->nhdrs    = 0;
	c->consumed = c->in_len;
	conn_respond(s, c, &w, false, false, false, false);
	resp_fini(&w);
}

/* ---- request parsing ---- */

enum { P_MORE = 0, P_DONE = 1 };

typedef struct preq {
	char       *method; /* borrowed: these point into the conn buffer */
	char       *target;
	const char *path; /* into the buffer, or a literal "/" */
	const char *query;
	int         minor; /* HTTP/1.minor */
	bool        has_cl;
	uint64_t    cl;
	bool        has_te;
	int         nhost;
	const char *connection;
} preq;

/* Finds the end of the line starting at `p` (before `end`): returns a
 * pointer to its '\n', or NULL. */
static char *
line_end(char *p, char *end)
{
	return memchr(p, '\n', (size_t) (end - p));
}

/* Cuts the line [p, nl) into a C string: drops one CR before LF.  Returns
 * false if any other CR or a NUL is inside. */
static bool
cut_line(char *p, char *nl)
{
	char *e = nl;
	if (e > p && e[-1] == '\r')
		e--;
	if (memchr(p, '\r', (size_t) (e - p)) != NULL
	    || memchr(p, '\0', (size_t) (e - p)) != NULL)
		return false;
	*e = '\0';
	return true;
}

/* Splits and checks the request line (a C string).  Returns 0 or an HTTP
 * error status. */
static int
parse_request_line(char *line, preq *q)
{
	char *sp1 = strchr(line, ' ');
	char *sp2;
	char *v;

	if (sp1 == NULL)
		return 400;
	*sp1 = '\0';
	sp2  = strchr(sp1 + 1, ' ');
	if (sp2 == NULL)
		return 400;
	*sp2      = '\0';
	q->method = line;
	q->target = sp1 + 1;
	v         = sp2 + 1;
	if (!is_token(q->method) || *q->target == '\0')
		return 400;
	for (const char *t = q->target; *t != '\0'; t++) {
		unsigned char ch = (unsigned char) *t;
		if (ch <= 0x20 || ch >= 0x7f || ch == '#')
			return 400;
	}
	if (strncmp(v, "HTTP/", 5) != 0 || v[5] < '0' || v[5] > '9'
	    || v[6] != '.' || v[7] < '0' || v[7] > '9' || v[8] != '\0')
		return 400;
	if (v[5] != '1')
		return 505;
	q->minor = v[7] - '0';

	/* origin-form, or absolute-form (which servers must accept). */
	char *t = q->target;
	if (strncasecmp(t, "http://", 7) == 0
	    || strncasecmp(t, "https://", 8) == 0) {
		t           = strstr(t, "//") + 2;
		size_t alen = strcspn(t, "/?");
		if (alen == 0)
			return 400; /* no authority */
		t += alen;
		if (*t != '/') {
			/* No path: it is "/"; the query, if any, follows. */
			q->path  = "/";
			q->query = *t == '?' ? t + 1 : t;
			return 0;
		}
	} else if (*t != '/') {
		return 400; /* "*" and authority-form are not served */
	}
	q->path  = t;
	char *qm = strchr(t, '?');
	if (qm != NULL) {
		*qm      = '\0';
		q->query = qm + 1;
	} else {
		q->query = t + strlen(t); /* "" */
	}
	return 0;
}

/* Parses one header line (a C string) into c->hdrs.  Returns 0 or an HTTP
 * error status. */
static int
parse_header(conn *c, char *line, preq *q)
{
	char *colon, *v, *e;

	if (*line == ' ' || *line == '\t')
		return 400; /* obsolete line folding */
	colon = strchr(line, ':');
	if (colon == NULL)
		return 400;
	*colon = '\0';
	if (!is_token(line))
		return 400;
	v = colon + 1;
	while (*v == ' ' || *v == '\t')
		v++;
	e = v + strlen(v);
	while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
		e--;
	*e = '\0';
	if (!is_field_value(v))
		return 400;
	if (c->nhdrs == MAX_HEADERS)
		return 431;
	c->hdrs[c->nhdrs].name  = line;
	c->hdrs[c->nhdrs].value = v;
	c->nhdrs++;

	if (strcasecmp(line, "Host") == 0) {
		q->nhost++;
	} else if (strcasecmp(line, "Content-Length") == 0) {
		uint64_t n = 0;
		if (*v == '\0' || strlen(v) > 18)
			return 400;
		for (const char *p = v; *p != '\0'; p++) {
			if (*p < '0' || *p > '9')
				return 400;
			n = n * 10 + (uint64_t) (*p - '0');
		}
		if (q->has_cl && q->cl != n)
			return 400;
		q->has_cl = true;
		q->cl     = n;
	} else if (strcasecmp(line, "Transfer-Encoding") == 0) {
		q->has_te = true;
	} else if (strcasecmp(line, "Connection") == 0) {
		if (q->connection == NULL)
			q->connection = v;
	}
	return 0;
}

/* Skips empty lines before a request (RFC 9112 §2.2). */
static void
skip_leading_blank_lines(conn *c)
{
	size_t i = 0;
	while (i < c->in_len) {
		if (c->in[i] == '\n')
			i++;
		else if (c->in[i] == '\r' && i + 1 < c->in_len
		    && c->in[i + 1] == '\n')
			i += 2;
		else
			break;
	}
	if (i > 0) {
		memmove(c->in, c->in + i, c->in_len - i);
		c->in_len -= i;
	}
}

static const route *
find_route(const mcf_httpserver *s, const char *path)
{
	for (size_t i = 0; i < s->nroutes; i++)
		if (strcmp(s->routes[i].path, path) == 0)
			return &s->routes[i];
	return NULL;
}

/* Runs the handler (or the built-in answer) and starts the response. */
static void
dispatch(mcf_httpserver *s, conn *c, preq *q)
{
	mcf_httpserver_resp w;
	const route        *rt   = find_route(s, q->path);
	bool                head = strcmp(q->method, "HEAD") == 0;
	bool                get  = strcmp(q->method, "GET") == 0;
	bool                keep, allow = false;

	if (q->minor == 0)
		keep = q->connection != NULL
		    && list_has(q->connection, "keep-alive");
	else
		keep = q->connection == NULL
		    || !list_has(q->connection, "close");
	/* A body we do not read to its end ends the connection. */
	if (q->has_te || (q->has_cl && q->cl > MAX_DISCARD_BODY))
		keep = false;

	resp_init(&w);
	if (rt == NULL) {
		resp_simple(&w, 404, "Not Found");
	} else if (!get && !head) {
		resp_simple(&w, 405, "Method Not Allowed");
		allow = true;
	} else {
		mcf_httpserver_req r;
		int                rv;

		r.method = q->method;
		r.path   = q->path;
		r.query  = q->query;
		r.peer   = c->peer;
		r.head   = head;
		r.priv   = c;
		rv       = rt->fn(&r, &w, rt->arg);
		if (rv != MCF_OK)
			resp_simple(&w, 500, mcf_strerror(rv));
	}
	if (keep && q->has_cl)
		c->discard = q->cl;
	conn_respond(s, c, &w, head, keep, q->minor == 0, allow);
	resp_fini(&w);
}

/* Parses what the buffer holds and answers one complete request, if any;
 * returns true when it did and the connection is ready for the next. */
static bool
process_one(mcf_httpserver *s, conn *c)
{
	char *buf, *end, *nl, *p, *hstart;
	preq  q;
	int   err;

	if (c->state != C_READ || c->dead)
		return false;

	/* Drop the previous request's body. */
	if (c->discard > 0) {
		size_t n
		    = c->in_len < c->discard ? c->in_len : (size_t) c->discard;
		memmove(c->in, c->in + n, c->in_len - n);
		c->in_len -= n;
		c->discard -= n;
		if (c->discard > 0)
			return false;
	}
	skip_leading_blank_lines(c);
	if (c->in_len == 0)
		return false;

	buf = c->in;
	end = buf + c->in_len;
	nl  = line_end(buf, end);
	if (nl == NULL) {
		if (c->in_len > s->max_line + 1) /* +1: a CR may follow */
			conn_error(s, c, 414);
		return false;
	}
	if ((size_t) (nl - buf) - (nl > buf && nl[-1] == '\r') > s->max_line) {
		conn_error(s, c, 414);
		return false;
	}

	/* Find the end of the header section before changing anything, so
	 * an incomplete request stays intact for the next read. */
	hstart = nl + 1;
	p      = hstart;
	for (;;) {
		char *e = line_end(p, end);
		if (e == NULL) {
			if ((size_t) (end - hstart) > s->max_hdr
			    || c->in_len == s->in_cap)
				conn_error(s, c, 431);
			return false;
		}
		if ((size_t) (e + 1 - hstart) > s->max_hdr) {
			conn_error(s, c, 431);
			return false;
		}
		if (e == p || (e == p + 1 && *p == '\r')) {
			p = e + 1;
			break; /* the empty line */
		}
		p = e + 1;
	}

	/* A whole request head is in [buf, p): parse it in place. */
	memset(&q, 0, sizeof(q));
	c->nhdrs    = 0;
	c->consumed = (size_t) (p - buf);
	if (!cut_line(buf, nl)) {
		conn_error(s, c, 400);
		return false;
	}
	if ((err = parse_request_line(buf, &q)) != 0) {
		conn_error(s, c, err);
		return false;
	}
	for (char *l = hstart; l < p;) {
		char *e    = line_end(l, end);
		char *next = e + 1;
		if (e == l || (e == l + 1 && *l == '\r'))
			break;
		if (!cut_line(l, e)) {
			conn_error(s, c, 400);
			return false;
		}
		if ((err = parse_header(c, l, &q)) != 0) {
			conn_error(s, c, err);
			return false;
		}
		l = next;
	}
	if ((q.minor >= 1 && q.nhost != 1) || q.nhost > 1
	    || (q.has_cl && q.has_te)) {
		conn_error(s, c, 400);
		return false;
	}
	dispatch(s, c, &q);
	return c->state == C_READ && !c->dead;
}

/* Answers every complete request buffered, in order, as long as each
 * response is sent at once (pipelining). */
static void
process(mcf_httpserver *s, conn *c)
{
	while (process_one(s, c))
		;
}

static void
conn_readable(mcf_httpserver *s, conn *c)
{
	ssize_t n;

	if (c->state == C_LINGER) {
		char scratch[4096];
		for (;;) {
			n = read(c->fd, scratch, sizeof(scratch));
			if (n > 0)
				continue;
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
				return;
			c->dead = true; /* EOF or error: done lingering */
			return;
		}
	}
	if (c->in_len == s->in_cap) {
		/* Cannot happen: a full buffer is always decided. */
		c->dead = true;
		return;
	}
	do
		n = read(c->fd, c->in + c->in_len, s->in_cap - c->in_len);
	while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return;
	if (n <= 0) {
		/* EOF or error: a half-sent request is dropped silently. */
		c->dead = true;
		return;
	}
	c->in_len += (size_t) n;
	process(s, c);
}

/* ---- the loop ---- */

static void
accept_all(mcf_httpserver *s)
{
	for (;;) {
		struct sockaddr_storage ss;
		socklen_t               len = sizeof(ss);
		int fd = accept4(s->listen_fd, (struct sockaddr *) &ss, &len,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			if (errno == EINTR || errno == ECONNABORTED
			    || errno == EPROTO)
				continue;
			/* EMFILE, ENFILE, ENOBUFS, ENOMEM: back off so the
			 * loop does not spin on a readable listener. */
			mcf_log_warn("MCF-HTTP-ACCEPT",
			    "httpserver %s: accept: %s", s->url,
			    strerror(errno));
			s->accept_paused_until = now_ms() + ACCEPT_PAUSE_MS;
			return;
		}
		if (s->nconns >= (size_t) s->max_conns) {
			static const char busy[]
			    = "HTTP/1.1 503 Service Unavailable\r\n"
			      "Content-Type: text/plain; charset=utf-8\r\n"
			      "Content-Length: 20\r\n"
			      "Connection: close\r\n\r\n"
			      "Too many connections";
			/* Best effort: the socket buffer of a fresh
			 * connection holds this easily. */
			(void) !send(fd, busy, sizeof(busy) - 1,
			    MSG_NOSIGNAL | MSG_DONTWAIT);
			close(fd);
			continue;
		}
		conn *c = mcf_calloc(1, sizeof(*c));
		c->fd   = fd;
		c->in   = mcf_malloc(s->in_cap);
		format_peer(
		    (struct sockaddr *) &ss, len, c->peer, sizeof(c->peer));
		conn_read_state(s, c);
		s->conns[s->nconns++] = c;
	}
}

static void
sweep(mcf_httpserver *s)
{
	size_t j = 0;
	for (size_t i = 0; i < s->nconns; i++) {
		if (s->conns[i]->dead)
			conn_free(s->conns[i]);
		else
			s->conns[j++] = s->conns[i];
	}
	s->nconns = j;
}

static void *
server_main(void *arg)
{
	mcf_httpserver *s = arg;

	while (!atomic_load(&s->stopping)) {
		int64_t now   = now_ms();
		int64_t next  = now + 60000;
		nfds_t  np    = 0;
		size_t  nc    = s->nconns;
		int     lslot = -1;
		int     timeout;

		s->pfds[np++] = (struct pollfd) { s->wake_rd, POLLIN, 0 };
		if (now >= s->accept_paused_until) {
			lslot = (int) np;
			s->pfds[np++]
			    = (struct pollfd) { s->listen_fd, POLLIN, 0 };
		} else if (s->accept_paused_until < next) {
			next = s->accept_paused_until;
		}
		for (size_t i = 0; i < nc; i++) {
			conn *c       = s->conns[i];
			s->pfds[np++] = (struct pollfd) { c->fd,
				c->state == C_WRITE ? POLLOUT : POLLIN, 0 };
			if (c->deadline < next)
				next = c->deadline;
		}
		timeout = next <= now ? 0 : (int) (next - now);

		int r = poll(s->pfds, np, timeout);
		if (r < 0 && errno != EINTR) {
			mcf_log_error("MCF-HTTP-POLL",
			    "httpserver %s: poll: %s", s->url,
			    strerror(errno));
			(void) poll(NULL, 0, ACCEPT_PAUSE_MS);
			continue;
		}
		if (r > 0 && (s->pfds[0].revents & POLLIN) != 0) {
			char drain[64];
			while (read(s->wake_rd, drain, sizeof(drain)) > 0)
				;
		}
		if (atomic_load(&s->stopping))
			break;

		for (size_t i = 0; r > 0 && i < nc; i++) {
			conn *c  = s->conns[i];
			short ev = s->pfds[(size_t) np - nc + i].revents;
			if (ev == 0 || c->dead)
				continue;
			if ((ev & POLLNVAL) != 0)
				c->dead = true;
			else if (c->state == C_WRITE) {
				conn_write(
				    s, c); /* POLLOUT, POLLERR, POLLHUP */
				process(s, c);
			} else
				conn_readable(s, c);
		}
		now = now_ms();
		for (size_t i = 0; i < nc; i++)
			if (s->conns[i]->deadline <= now)
				s->conns[i]->dead = true;
		sweep(s);
		if (r > 0 && lslot >= 0 && s->pfds[lslot].revents != 0)
			accept_all(s);
	}

	for (size_t i = 0; i < s->nconns; i++)
		conn_free(s->conns[i]);
	s->nconns = 0;
	return NULL;
}

/* ---- lifecycle ---- */

void
mcf_httpserver_opts_init(mcf_httpserver_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->listen           = "127.0.0.1:0";
	o->max_conns        = 64;
	o->idle_timeout_ms  = 15000;
	o->max_request_line = 4096;
	o->max_header_bytes = 16384;
}

/* Splits "HOST:PORT", "[V6]:PORT" or ":PORT" into new strings. */
static int
split_listen(const char *addr, char **host, char **port, mcf_errinfo *ei)
{
	const char *colon;
	const char *h0 = addr, *h1;

	if (addr[0] == '[') {
		h0 = addr + 1;
		h1 = strchr(h0, ']');
		if (h1 == NULL || h1[1] != ':')
			goto bad;
		colon = h1 + 1;
	} else {
		colon = strrchr(addr, ':');
		if (colon == NULL
		    || memchr(addr, ':', (size_t) (colon - addr)) != NULL)
			goto bad; /* a bare IPv6 address needs brackets */
		h1 = colon;
	}
	const char *pp = colon + 1;
	if (*pp == '\0' || strlen(pp) > 5)
		goto bad;
	long pn = 0;
	for (const char *d = pp; *d != '\0'; d++) {
		if (*d < '0' || *d > '9')
			goto bad;
		pn = pn * 10 + (*d - '0');
	}
	if (pn > 65535)
		goto bad;
	*host = h1 == h0 ? mcf_strdup("0.0.0.0")
	                 : mcf_strndup(h0, (size_t) (h1 - h0));
	*port = mcf_strdup(pp);
	return MCF_OK;
bad:
	return mcf_errinfo_set(ei, MCF_EINVAL,
	    "listen address \"%s\": want HOST:PORT, [IPV6]:PORT or :PORT",
	    addr);
}

static int
bind_listen(mcf_httpserver *s, const char *addr, mcf_errinfo *ei)
{
	struct addrinfo hints, *ai = NULL;
	char           *host = NULL, *port = NULL;
	int             rv, fd = -1, one = 1, gai;

	if ((rv = split_listen(addr, &host, &port, ei)) != MCF_OK)
		return rv;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family   = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags    = AI_PASSIVE | AI_NUMERICSERV;
	gai               = getaddrinfo(host, port, &hints, &ai);
	if (gai != 0) {
		rv = mcf_errinfo_set(ei,
		    gai == EAI_NONAME || gai == EAI_NODATA ? MCF_ENOENT
		                                           : MCF_EINVAL,
		    "listen address \"%s\": %s", addr, gai_strerror(gai));
		goto out;
	}
	fd = socket(ai->ai_family,
	    ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
	if (fd < 0) {
		rv = mcf_errinfo_set(ei, mcf_err_from_errno(errno),
		    "socket for \"%s\": %s", addr, strerror(errno));
		goto out;
	}
	(void) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0
	    || listen(fd, SOMAXCONN) != 0) {
		rv = mcf_errinfo_set(ei, mcf_err_from_errno(errno),
		    "listen on \"%s\": %s", addr, strerror(errno));
		goto out;
	}

	/* The URL from the address actually bound, wildcards as their
	 * loopback so the URL can be dialled. */
	struct sockaddr_storage ss;
	socklen_t               len = sizeof(ss);
	char                    h[64], sv[16];
	if (getsockname(fd, (struct sockaddr *) &ss, &len) != 0
	    || getnameinfo((struct sockaddr *) &ss, len, h, sizeof(h), sv,
	           sizeof(sv), NI_NUMERICHOST | NI_NUMERICSERV)
	        != 0) {
		rv = mcf_errinfo_set(ei, MCF_ESYS,
		    "listen on \"%s\": cannot read the bound address", addr);
		goto out;
	}
	s->port = atoi(sv);
	if (ss.ss_family == AF_INET6) {
		snprintf(s->url, sizeof(s->url), "http://[%s]:%d",
		    strcmp(h, "::") == 0 ? "::1" : h, s->port);
	} else {
		snprintf(s->url, sizeof(s->url), "http://%s:%d",
		    strcmp(h, "0.0.0.0") == 0 ? "127.0.0.1" : h, s->port);
	}
	s->listen_fd = fd;
	fd           = -1;
	rv           = MCF_OK;
out:
	if (fd >= 0)
		close(fd);
	if (ai != NULL)
		freeaddrinfo(ai);
	free(host);
	free(port);
	return rv;
}

int
mcf_httpserver_create(
    mcf_httpserver **out, const mcf_httpserver_opts *opts, mcf_errinfo *ei)
{
	mcf_httpserver_opts o;
	mcf_httpserver     *s;
	int                 p[2], rv;

	if (out == NULL)
		return mcf_errinfo_set(ei, MCF_EINVAL, "out is NULL");
	if (opts != NULL)
		o = *opts;
	else
		mcf_httpserver_opts_init(&o);
	if (o.listen == NULL || o.max_conns < 1 || o.idle_timeout_ms < 1
	    || o.max_request_line < 64 || o.max_header_bytes < 64)
		return mcf_errinfo_set(
		    ei, MCF_EINVAL, "httpserver: invalid options");

	s            = mcf_calloc(1, sizeof(*s));
	s->listen_fd = -1;
	s->max_conns = o.max_conns;
	s->idle_ms   = o.idle_timeout_ms;
	s->max_line  = o.max_request_line;
	s->max_hdr   = o.max_header_bytes;
	/* Request line with CRLF, the header section, one spare byte: a
	 * full buffer always exceeds one of the two limits. */
	s->in_cap = s->max_line + 2 + s->max_hdr + 1;
	atomic_init(&s->stopping, false);
	if ((rv = bind_listen(s, o.listen, ei)) != MCF_OK) {
		free(s);
		return rv;
	}
	if (pipe2(p, O_NONBLOCK | O_CLOEXEC) != 0) {
		rv = mcf_errinfo_set(ei, mcf_err_from_errno(errno),
		    "httpserver: pipe: %s", strerror(errno));
		close(s->listen_fd);
		free(s);
		return rv;
	}
	s->wake_rd = p[0];
	s->wake_wr = p[1];
	s->conns   = mcf_calloc((size_t) s->max_conns, sizeof(*s->conns));
	s->pfds    = mcf_calloc((size_t) s->max_conns + 2, sizeof(*s->pfds));
	*out       = s;
	return MCF_OK;
}

int
mcf_httpserver_route(mcf_httpserver *s, const char *path,
    mcf_httpserver_handler_fn fn, void *arg)
{
	if (s == NULL || path == NULL || path[0] != '/' || fn == NULL)
		return MCF_EINVAL;
	for (const char *p = path; *p != '\0'; p++)
		if ((unsigned char) *p <= 0x20 || (unsigned char) *p >= 0x7f
		    || *p == '?' || *p == '#')
			return MCF_EINVAL;
	if (s->started)
		return MCF_EBUSY;
	if (find_route(s, path) != NULL)
		return MCF_EEXIST;
	s->routes = mcf_realloc(s->routes, (s->nroutes + 1) * sizeof(route));
	s->routes[s->nroutes].path = mcf_strdup(path);
	s->routes[s->nroutes].fn   = fn;
	s->routes[s->nroutes].arg  = arg;
	s->nroutes++;
	return MCF_OK;
}

int
mcf_httpserver_start(mcf_httpserver *s)
{
	int rv;

	if (s == NULL)
		return MCF_EINVAL;
	if (s->started || s->stopped)
		return MCF_EBUSY;
	rv = pthread_create(&s->thread, NULL, server_main, s);
	if (rv != 0)
		return MCF_ESYS;
	s->started = true;
	return MCF_OK;
}

const char *
mcf_httpserver_url(const mcf_httpserver *s)
{
	return s->url;
}

int
mcf_httpserver_port(const mcf_httpserver *s)
{
	return s->port;
}

void
mcf_httpserver_stop(mcf_httpserver *s)
{
	if (s == NULL || s->stopped)
		return;
	s->stopped = true;
	if (s->started) {
		if (pthread_equal(pthread_self(), s->thread))
			mcf_panic("httpserver: stop called from a handler");
		atomic_store(&s->stopping, true);
		while (write(s->wake_wr, "x", 1) < 0 && errno == EINTR)
			;
		if (pthread_join(s->thread, NULL) != 0)
			mcf_panic("httpserver: pthread_join failed");
	}
	if (s->listen_fd >= 0)
		close(s->listen_fd);
	s->listen_fd = -1;
}

void
mcf_httpserver_destroy(mcf_httpserver *s)
{
	if (s == NULL)
		return;
	mcf_httpserver_stop(s);
	for (size_t i = 0; i < s->nroutes; i++)
		free(s->routes[i].path);
	free(s->routes);
	free(s->conns);
	free(s->pfds);
	close(s->wake_rd);
	close(s->wake_wr);
	free(s);
}

/* ---- request accessors ---- */

const char *
mcf_httpserver_req_header(const mcf_httpserver_req *r, const char *name)
{
	const conn *c;

	if (r == NULL || name == NULL)
		return NULL;
	c = r->priv;
	for (size_t i = 0; i < c->nhdrs; i++)
		if (strcasecmp(c->hdrs[i].name, name) == 0)
			return c->hdrs[i].value;
	return NULL;
}

/*
 * httpd.c — kubesim's HTTP/1.1 server: one thread, one epoll loop.
 *
 * How it works.  ks_httpd_run() is a classic level-triggered epoll loop.
 * Each iteration:
 *
 *   1. waits in epoll_wait() for at most the time until the nearest timer;
 *   2. handles the ready descriptors: the listener (accept), the eventfd
 *      (stop and the queue of posted calls) and connections (read, write);
 *   3. runs the timers that are due;
 *   4. services the "touched" list: connections whose state changed from
 *      inside a callback (a response ended from a timer, a write hit EAGAIN,
 *      a write failed) and that need more work or a new epoll interest set;
 *   5. frees the connections closed and the requests retired during this
 *      iteration.
 *
 * Step 5 is what makes re-entrancy safe: a handler, timer or close callback
 * may close any connection, including the one being processed further up
 * the stack.  Closing marks the connection closed and releases its socket,
 * but its memory (and the memory of its request) lives until the end of the
 * iteration, so every caller up the stack can still look at its flags.
 *
 * A connection is either open (parsing requests, running a handler, or
 * streaming a response) or closed.  The close callback runs exactly once,
 * when it becomes closed.  A closed connection may still own its socket for
 * a while (a "zombie"): ks_conn_close(c, false) and error responses first
 * flush the queued bytes, then shut down the write side and read and discard
 * whatever the peer still sends until it closes too ("lingering close"), so
 * that unread request bytes do not make the kernel answer with a RST that
 * would destroy the response in flight.  Zombies are bounded by a timer.
 *
 * Parsing is incremental: the head is searched for its blank line with a
 * resumable scan, so bytes arriving one at a time cost O(n) in total.  Once
 * complete, the head is copied into one block holding the ks_req, the header
 * table and the strings, and the input buffer is consumed; an idle
 * connection (a watch) keeps no input buffer and at most a small output
 * buffer.  Socket reads go through one 64 KiB scratch buffer per server.
 *
 * Output is appended to a per-connection buffer and written at once; only
 * what the socket does not take stays queued, with EPOLLOUT armed until it
 * drains.  Every connection always listens for EPOLLRDHUP, so a peer that
 * hangs up on an idle watch (where we have nothing to read or write) is
 * noticed immediately.
 *
 * TLS uses OpenSSL on the same non-blocking sockets through a small BIO that
 * sends with MSG_NOSIGNAL (OpenSSL's socket BIO uses write(2), which would
 * raise SIGPIPE on a closed peer).  WANT_READ from SSL_write and WANT_WRITE
 * from SSL_read are remembered and retried on the opposite readiness; data
 * OpenSSL has already decrypted (SSL_has_pending) is drained without waiting
 * for epoll.
 *
 * Timers live in a binary min-heap keyed by (deadline, sequence).  Timer
 * ids name a slot in a slot array plus a generation, so cancelling is O(log
 * n) and a stale id can never cancel a newer timer.
 */
#include "httpd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "alloc.h"
#include "err.h"

/* Request line plus headers (Kubernetes and Go allow 1 MiB; 64 KiB is what
 * our clients could ever need and keeps a slow-loris client cheap). */
#define KS_HEAD_MAX (64 * 1024)
/* Header lines per request; more gets 431 (keeps duplicate merging cheap). */
#define KS_MAX_HEADERS 1024
#define KS_DEFAULT_MAX_BODY (3 * 1024 * 1024)
/* Longest chunk-size line (size plus extensions). */
#define KS_CHUNK_LINE_MAX 4096
/* Unconsumed input above which reading pauses (pipelined requests pile up
 * while a response is pending). */
#define KS_IN_CAP (256 * 1024)
/* Queued output above which the next pipelined request waits. */
#define KS_OUT_PIPELINE_CAP (1024 * 1024)
/* Scratch read size, and reads per readiness event (fairness). */
#define KS_RBUF_SIZE (64 * 1024)
#define KS_READS_PER_EVENT 16
#define KS_ACCEPTS_PER_EVENT 128
#define KS_EPOLL_EVENTS 256
/* Output buffers larger than this are freed when they drain. */
#define KS_OUT_KEEP 4096
/* A closing connection that makes no progress for this long is dropped. */
#define KS_CLOSE_IDLE_MS 10000
/* Lingering close: how long to discard input after shutdown(SHUT_WR). */
#define KS_LINGER_MS 2000
/* Pause after accept() fails for lack of descriptors. */
#define KS_ACCEPT_PAUSE_MS 100

/* Results of the I/O wrappers and the parsing steps. */
enum {
	IO_AGAIN = -1,
	IO_EOF   = -2,
	IO_ERR   = -3,
};
enum {
	STEP_MORE     = 0, /* need more input */
	STEP_PROGRESS = 1, /* state changed; call again */
};

/* Connection read states. */
enum ks_rstate {
	RS_HEAD,     /* reading a request line and headers */
	RS_BODY,     /* reading a request body */
	RS_HANDLING, /* the handler owns the request; response not ended */
	RS_DONE,     /* response ended and no keep-alive: close when flushed */
};

/* Response states while RS_HANDLING. */
enum ks_resp {
	RESP_NONE,
	RESP_STREAM,
};

/* Body framing and chunked sub-states. */
enum ks_body {
	BODY_NONE,
	BODY_LENGTH,
	BODY_CHUNKED,
};
enum ks_chunk {
	CH_SIZE,
	CH_DATA,
	CH_DATA_END,
	CH_TRAILER,
};

/* A byte buffer: live bytes are data[off, len). */
typedef struct ks_buf {
	char  *data; /* owned, NULL until first use */
	size_t off;
	size_t len;
	size_t cap;
} ks_buf;

typedef struct ks_hdr {
	const char *name;  /* borrowed from the request block */
	const char *value; /* borrowed from the request block or `joined` */
} ks_hdr;

/* One request: a single allocation holding this struct, the header table
 * and the head strings. */
typedef struct ks_reqdata {
	ks_req             req;
	ks_hdr            *hdrs; /* points into this block */
	size_t             nhdrs;
	char              *joined; /* owned: values of repeated headers */
	ks_buf             body;   /* owned */
	struct ks_reqdata *next_garbage;
} ks_reqdata;

struct ks_conn {
	ks_httpd   *h;  /* borrowed: the server */
	int         fd; /* -1 once released */
	uint32_t    ev; /* epoll interest currently registered */
	uint64_t    id;
	SSL        *ssl; /* owned; NULL for plain HTTP */
	ks_buf      in;
	ks_buf      out;
	ks_reqdata *req; /* owned: request being read or handled */

	uint8_t rs;   /* enum ks_rstate */
	uint8_t resp; /* enum ks_resp */
	uint8_t body; /* enum ks_body */
	uint8_t cs;   /* enum ks_chunk */

	/* Parser positions, relative to in.off. */
	size_t   hscan;     /* head: bytes already scanned */
	size_t   hline;     /* head: start of the current line */
	size_t   lscan;     /* chunked: bytes of the current line scanned */
	size_t   trailers;  /* chunked: trailer bytes so far */
	uint64_t remaining; /* body bytes left (length or current chunk) */

	bool keepalive;
	bool http10;
	bool head_only;  /* HEAD request: no body in the response */
	bool stream_raw; /* stream without chunk framing (HTTP/1.0) */
	bool closed;     /* close callback has run; API calls are no-ops */
	bool zombie;     /* closed, still flushing or lingering */
	bool shut;       /* shutdown(SHUT_WR) done (lingering) */
	bool failed;     /* I/O error seen; close at top level */
	bool peer_eof;   /* peer finished sending */
	bool ssl_fatal;  /* no more SSL calls except SSL_free */
	bool touched;    /* on h->touched */
	bool need_input; /* touched: run the parser */
	bool try_read;   /* touched: attempt a read (TLS data buffered) */
	bool rd_want_wr; /* SSL_read wants the socket writable */
	bool wr_want_rd; /* SSL_write wants the socket readable */

	uint64_t timer;    /* close/linger timer id, 0 when none */
	uint64_t progress; /* bytes moved; lets the close timer see activity */
	uint64_t timer_progress;

	ks_close_fn close_fn;
	void       *close_arg;
	ks_close_fn drain_fn;
	void       *drain_arg;

	ks_conn *prev; /* h->conns: every connection owning a socket */
	ks_conn *next;
	ks_conn *next_touched;
	ks_conn *next_dead;
	char     peer[INET6_ADDRSTRLEN + 8];
};

/* A timer slot.  While armed, `pos` is its heap index; while free, the next
 * free slot. */
typedef struct ks_tslot {
	int64_t     deadline;
	uint64_t    seq;
	ks_timer_fn fn;
	void       *arg;
	uint32_t    gen;
	uint32_t    pos;
	bool        armed;
} ks_tslot;

typedef struct ks_post {
	ks_timer_fn     fn;
	void           *arg;
	struct ks_post *next;
} ks_post;

struct ks_httpd {
	int           lfd;  /* listening socket */
	int           efd;  /* eventfd: stop and posts */
	int           epfd; /* epoll instance */
	int           port;
	SSL_CTX      *ctx;  /* owned; NULL for plain HTTP */
	BIO_METHOD   *biom; /* owned; NULL for plain HTTP */
	size_t        max_body;
	ks_handler_fn handler;
	void         *handler_arg;

	atomic_int stop;
	bool       accept_paused;
	bool       destroying;

	uint64_t    next_conn_id;
	uint64_t    next_req_id;
	size_t      nconns;
	ks_conn    *conns;   /* every connection owning a socket */
	ks_conn    *touched; /* needing service at the end of the iteration */
	ks_conn    *dead;    /* released; freed at the end of the iteration */
	ks_reqdata *garbage; /* retired requests, freed likewise */

	/* Timers. */
	ks_tslot *tslots;
	uint32_t  ntslots;
	uint32_t  tslotcap;
	uint32_t  tfree; /* free slot list head, UINT32_MAX when empty */
	uint32_t *theap;
	uint32_t  nheap;
	uint64_t  tseq;

	/* Posted calls from other threads. */
	pthread_mutex_t mtx;
	ks_post        *post_head; /* owned */
	ks_post        *post_tail;

	time_t date_sec;
	char   date[40];
	char   rbuf[KS_RBUF_SIZE]; /* scratch for socket reads */
};

static void conn_touch(ks_conn *c);
static void conn_close_graceful(ks_conn *c);
static void conn_close_hard(ks_conn *c, bool reset);
static void conn_read(ks_conn *c);
static void process_input(ks_conn *c);

/* --- small helpers --------------------------------------------------- */

static int64_t
mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
lock(pthread_mutex_t *m)
{
	if (pthread_mutex_lock(m) != 0)
		mcf_panic("pthread_mutex_lock");
}

static void
unlock(pthread_mutex_t *m)
{
	if (pthread_mutex_unlock(m) != 0)
		mcf_panic("pthread_mutex_unlock");
}

static void seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static size_t
buf_used(const ks_buf *b)
{
	return b->len - b->off;
}

static void
buf_free(ks_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->off = b->len = b->cap = 0;
}

/* Makes room for `n` more bytes after data[len]. */
static void
buf_reserve(ks_buf *b, size_t n)
{
	size_t need;
	size_t cap;

	if (b->cap - b->len >= n)
		return;
	if (b->off > 0) {
		memmove(b->data, b->data + b->off, b->len - b->off);
		b->len -= b->off;
		b->off = 0;
		if (b->cap - b->len >= n)
			return;
	}
	if (n > SIZE_MAX / 2 - b->len)
		mcf_panic("buffer size overflow");
	need = b->len + n;
	cap  = b->cap ? b->cap : 256;
	while (cap < need)
		cap *= 2;
	b->data = mcf_realloc(b->data, cap);
	b->cap  = cap;
}

static void
buf_append(ks_buf *b, const void *p, size_t n)
{
	if (n == 0)
		return;
	buf_reserve(b, n);
	memcpy(b->data + b->len, p, n);
	b->len += n;
}

static void
buf_puts(ks_buf *b, const char *s)
{
	buf_append(b, s, strlen(s));
}

static void buf_printf(ks_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
buf_printf(ks_buf *b, const char *fmt, ...)
{
	va_list ap;
	int     n;

	buf_reserve(b, 128);
	va_start(ap, fmt);
	n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	if (n < 0)
		mcf_panic("vsnprintf");
	if ((size_t) n >= b->cap - b->len) {
		buf_reserve(b, (size_t) n + 1);
		va_start(ap, fmt);
		vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
	}
	b->len += (size_t) n;
}

static void
buf_consume(ks_buf *b, size_t n)
{
	b->off += n;
	if (b->off == b->len)
		b->off = b->len = 0;
}

static bool
is_tchar(unsigned char ch)
{
	if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')
	    || (ch >= '0' && ch <= '9'))
		return true;
	return ch != 0 && strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

/* True when the comma-separated list `list` holds `tok` (any case). */
static bool
token_in_list(const char *list, const char *tok)
{
	size_t      tl = strlen(tok);
	const char *p  = list;

	while (*p) {
		const char *e;
		size_t      n;
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		e = p;
		while (*e && *e != ',')
			e++;
		n = (size_t) (e - p);
		while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
			n--;
		if (n == tl && strncasecmp(p, tok, tl) == 0)
			return true;
		p = e;
	}
	return false;
}

static const char *
status_reason(int status)
{
	switch (status) {
	case 100:
		return "Continue";
	case 101:
		return "Switching Protocols";
	case 200:
		return "OK";
	case 201:
		return "Created";
	case 202:
		return "Accepted";
	case 203:
		return "Non-Authoritative Information";
	case 204:
		return "No Content";
	case 206:
		return "Partial Content";
	case 301:
		return "Moved Permanently";
	case 302:
		return "Found";
	case 303:
		return "See Other";
	case 304:
		return "Not Modified";
	case 307:
		return "Temporary Redirect";
	case 308:
		return "Permanent Redirect";
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
	case 406:
		return "Not Acceptable";
	case 408:
		return "Request Timeout";
	case 409:
		return "Conflict";
	case 410:
		return "Gone";
	case 411:
		return "Length Required";
	case 412:
		return "Precondition Failed";
	case 413:
		return "Request Entity Too Large";
	case 414:
		return "URI Too Long";
	case 415:
		return "Unsupported Media Type";
	case 416:
		return "Range Not Satisfiable";
	case 417:
		return "Expectation Failed";
	case 422:
		return "Unprocessable Entity";
	case 425:
		return "Too Early";
	case 426:
		return "Upgrade Required";
	case 428:
		return "Precondition Required";
	case 429:
		return "Too Many Requests";
	case 431:
		return "Request Header Fields Too Large";
	case 500:
		return "Internal Server Error";
	case 501:
		return "Not Implemented";
	case 502:
		return "Bad Gateway";
	case 503:
		return "Service Unavailable";
	case 504:
		return "Gateway Timeout";
	case 505:
		return "HTTP Version Not Supported";
	default:
		return "Unknown";
	}
}

/* IMF-fixdate, formatted by hand so the locale cannot change it; cached
 * for the current second. */
static const char *
http_date(ks_httpd *h)
{
	static const char wd[7][4]
	    = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
	static const char mo[12][4] = { "Jan", "Feb", "Mar", "Apr", "May",
		"Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	time_t            now       = time(NULL);
	struct tm         tm;

	if (now == h->date_sec && h->date[0] != '\0')
		return h->date;
	gmtime_r(&now, &tm);
	snprintf(h->date, sizeof(h->date),
	    "%s, %02d %s %04d %02d:%02d:%02d GMT", wd[tm.tm_wday % 7],
	    tm.tm_mday, mo[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour,
	    tm.tm_min, tm.tm_sec);
	h->date_sec = now;
	return h->date;
}

/* --- timers ---------------------------------------------------------- */

static bool
timer_less(const ks_httpd *h, uint32_t a, uint32_t b)
{
	const ks_tslot *x = &h->tslots[a];
	const ks_tslot *y = &h->tslots[b];
	if (x->deadline != y->deadline)
		return x->deadline < y->deadline;
	return x->seq < y->seq;
}

static void
heap_set(ks_httpd *h, uint32_t i, uint32_t slot)
{
	h->theap[i]         = slot;
	h->tslots[slot].pos = i;
}

static void
heap_up(ks_httpd *h, uint32_t i)
{
	uint32_t slot = h->theap[i];
	while (i > 0) {
		uint32_t parent = (i - 1) / 2;
		if (!timer_less(h, slot, h->theap[parent]))
			break;
		heap_set(h, i, h->theap[parent]);
		i = parent;
	}
	heap_set(h, i, slot);
}

static void
heap_down(ks_httpd *h, uint32_t i)
{
	uint32_t slot = h->theap[i];
	for (;;) {
		uint32_t l = 2 * i + 1;
		uint32_t m;
		if (l >= h->nheap)
			break;
		m = l;
		if (l + 1 < h->nheap
		    && timer_less(h, h->theap[l + 1], h->theap[l]))
			m = l + 1;
		if (!timer_less(h, h->theap[m], slot))
			break;
		heap_set(h, i, h->theap[m]);
		i = m;
	}
	heap_set(h, i, slot);
}

static void
heap_remove(ks_httpd *h, uint32_t i)
{
	uint32_t last = h->theap[--h->nheap];
	if (i == h->nheap)
		return;
	heap_set(h, i, last);
	heap_down(h, i);
	heap_up(h, h->tslots[last].pos);
}

static void
tslot_free(ks_httpd *h, uint32_t slot)
{
	ks_tslot *s = &h->tslots[slot];
	s->armed    = false;
	s->fn       = NULL;
	s->arg      = NULL;
	if (++s->gen == 0)
		s->gen = 1;
	s->pos   = h->tfree;
	h->tfree = slot;
}

uint64_t
ks_httpd_timer_add(ks_httpd *h, int64_t delay_ms, ks_timer_fn fn, void *arg)
{
	uint32_t  slot;
	ks_tslot *s;

	if (delay_ms < 0)
		delay_ms = 0;
	if (delay_ms > INT64_MAX / 4)
		delay_ms = INT64_MAX / 4;
	if (h->tfree != UINT32_MAX) {
		slot     = h->tfree;
		h->tfree = h->tslots[slot].pos;
	} else {
		if (h->ntslots == h->tslotcap) {
			uint32_t cap = h->tslotcap ? h->tslotcap * 2 : 64;
			if (cap <= h->tslotcap || cap == UINT32_MAX)
				mcf_panic("too many timers");
			h->tslots
			    = mcf_realloc(h->tslots, cap * sizeof(ks_tslot));
			h->theap
			    = mcf_realloc(h->theap, cap * sizeof(uint32_t));
			h->tslotcap = cap;
		}
		slot                = h->ntslots++;
		h->tslots[slot].gen = 1;
	}
	s                  = &h->tslots[slot];
	s->deadline        = mono_ms() + delay_ms;
	s->seq             = h->tseq++;
	s->fn              = fn;
	s->arg             = arg;
	s->armed           = true;
	h->theap[h->nheap] = slot;
	s->pos             = h->nheap++;
	heap_up(h, s->pos);
	return ((uint64_t) s->gen << 32) | slot;
}

void
ks_httpd_timer_cancel(ks_httpd *h, uint64_t id)
{
	uint32_t slot = (uint32_t) id;
	uint32_t gen  = (uint32_t) (id >> 32);

	if (h == NULL || id == 0 || slot >= h->ntslots)
		return;
	if (!h->tslots[slot].armed || h->tslots[slot].gen != gen)
		return;
	heap_remove(h, h->tslots[slot].pos);
	tslot_free(h, slot);
}

/* epoll_wait timeout for the nearest timer, -1 when there is none. */
static int
timers_timeout(const ks_httpd *h)
{
	int64_t d;
	if (h->nheap == 0)
		return -1;
	d = h->tslots[h->theap[0]].deadline - mono_ms();
	if (d < 0)
		return 0;
	if (d > INT_MAX)
		return INT_MAX;
	return (int) d;
}

/* Runs the timers that are due.  Timers added by the callbacks wait for the
 * next iteration (their sequence is past the limit), so a timer that re-arms
 * itself with no delay cannot starve the loop. */
static void
timers_run(ks_httpd *h)
{
	int64_t  now   = mono_ms();
	uint64_t limit = h->tseq;

	while (h->nheap > 0) {
		uint32_t    slot = h->theap[0];
		ks_tslot   *s    = &h->tslots[slot];
		ks_timer_fn fn;
		void       *arg;
		if (s->deadline > now || s->seq >= limit)
			break;
		fn  = s->fn;
		arg = s->arg;
		heap_remove(h, 0);
		tslot_free(h, slot);
		fn(arg);
	}
}

/* --- TLS ------------------------------------------------------------- */

/* A socket BIO that sends with MSG_NOSIGNAL; the descriptor is the BIO's
 * data pointer. */
static int
tbio_write(BIO *b, const char *data, int len)
{
	int     fd = (int) (intptr_t) BIO_get_data(b);
	ssize_t n;

	BIO_clear_retry_flags(b);
	do
		n = send(fd, data, (size_t) len, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		BIO_set_retry_write(b);
	return (int) n;
}

static int
tbio_read(BIO *b, char *data, int len)
{
	int     fd = (int) (intptr_t) BIO_get_data(b);
	ssize_t n;

	BIO_clear_retry_flags(b);
	do
		n = recv(fd, data, (size_t) len, 0);
	while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		BIO_set_retry_read(b);
	return (int) n;
}

static int
tbio_puts(BIO *b, const char *s)
{
	return tbio_write(b, s, (int) strlen(s));
}

static long
tbio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	(void) b;
	(void) num;
	(void) ptr;
	switch (cmd) {
	case BIO_CTRL_FLUSH:
	case BIO_CTRL_DUP:
		return 1;
	default:
		return 0;
	}
}

static int
tbio_create(BIO *b)
{
	BIO_set_init(b, 1);
	return 1;
}

static int
tbio_destroy(BIO *b)
{
	(void) b;
	return 1;
}

/* Selects http/1.1 when the client offers it over ALPN. */
static int
alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
    const unsigned char *in, unsigned int inlen, void *arg)
{
	unsigned int i = 0;
	(void) ssl;
	(void) arg;
	while (i < inlen) {
		unsigned int n = in[i];
		if (i + 1 + n > inlen)
			break;
		if (n == 8 && memcmp(in + i + 1, "http/1.1", 8) == 0) {
			*out    = in + i + 1;
			*outlen = (unsigned char) n;
			return SSL_TLSEXT_ERR_OK;
		}
		i += 1 + n;
	}
	return SSL_TLSEXT_ERR_NOACK;
}

static int
tls_setup(
    ks_httpd *h, const char *cert, const char *key, char *err, size_t errlen)
{
	char          ebuf[256];
	unsigned long e;

	ERR_clear_error();
	h->ctx = SSL_CTX_new(TLS_server_method());
	if (h->ctx == NULL)
		goto fail;
	SSL_CTX_set_min_proto_version(h->ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(
	    h->ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_mode(h->ctx,
	    SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER
	        | SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_alpn_select_cb(h->ctx, alpn_select, NULL);
	if (SSL_CTX_use_certificate_chain_file(h->ctx, cert) != 1)
		goto fail;
	if (SSL_CTX_use_PrivateKey_file(h->ctx, key, SSL_FILETYPE_PEM) != 1)
		goto fail;
	if (SSL_CTX_check_private_key(h->ctx) != 1)
		goto fail;

	h->biom = BIO_meth_new(
	    BIO_get_new_index() | BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR,
	    "ks-socket");
	if (h->biom == NULL)
		mcf_panic("BIO_meth_new");
	BIO_meth_set_write(h->biom, tbio_write);
	BIO_meth_set_read(h->biom, tbio_read);
	BIO_meth_set_puts(h->biom, tbio_puts);
	BIO_meth_set_ctrl(h->biom, tbio_ctrl);
	BIO_meth_set_create(h->biom, tbio_create);
	BIO_meth_set_destroy(h->biom, tbio_destroy);
	return MCF_OK;

fail:
	e = ERR_get_error();
	ERR_error_string_n(e, ebuf, sizeof(ebuf));
	ERR_clear_error();
	seterr(err, errlen, "tls: cannot use certificate %s / key %s: %s",
	    cert, key, e ? ebuf : "unknown error");
	return MCF_EINVAL;
}

/* --- socket I/O ------------------------------------------------------ */

/* Returns bytes written (> 0), IO_AGAIN or IO_ERR. */
static ssize_t
conn_send(ks_conn *c, const char *p, size_t n)
{
	if (c->ssl != NULL) {
		int r, e;
		if (c->ssl_fatal)
			return IO_ERR;
		if (n > INT_MAX)
			n = INT_MAX;
		ERR_clear_error();
		r = SSL_write(c->ssl, p, (int) n);
		if (r > 0)
			return r;
		e = SSL_get_error(c->ssl, r);
		if (e == SSL_ERROR_WANT_WRITE)
			return IO_AGAIN;
		if (e == SSL_ERROR_WANT_READ) {
			c->wr_want_rd = true;
			return IO_AGAIN;
		}
		c->ssl_fatal = true;
		ERR_clear_error();
		return IO_ERR;
	}
	for (;;) {
		ssize_t r = send(c->fd, p, n, MSG_NOSIGNAL);
		if (r >= 0)
			return r > 0 ? r : IO_AGAIN;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return IO_AGAIN;
		return IO_ERR;
	}
}

/* Returns bytes read (> 0), IO_AGAIN, IO_EOF or IO_ERR. */
static ssize_t
conn_recv(ks_conn *c, char *p, size_t n)
{
	if (c->ssl != NULL) {
		int r, e;
		if (c->ssl_fatal)
			return IO_ERR;
		ERR_clear_error();
		r = SSL_read(c->ssl, p, (int) n);
		if (r > 0)
			return r;
		e = SSL_get_error(c->ssl, r);
		if (e == SSL_ERROR_WANT_READ)
			return IO_AGAIN;
		if (e == SSL_ERROR_WANT_WRITE) {
			c->rd_want_wr = true;
			return IO_AGAIN;
		}
		if (e == SSL_ERROR_ZERO_RETURN)
			return IO_EOF;
		c->ssl_fatal = true;
		ERR_clear_error();
		return IO_ERR;
	}
	for (;;) {
		ssize_t r = recv(c->fd, p, n, 0);
		if (r > 0)
			return r;
		if (r == 0)
			return IO_EOF;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return IO_AGAIN;
		return IO_ERR;
	}
}

/* Writes as much queued output as the socket takes.  Never runs callbacks:
 * an error only marks the connection failed and touched, and the loop
 * closes it at top level. */
static void
conn_flush(ks_conn *c)
{
	ks_buf *b = &c->out;

	if (c->fd < 0 || c->failed)
		return;
	while (buf_used(b) > 0) {
		ssize_t n = conn_send(c, b->data + b->off, buf_used(b));
		if (n > 0) {
			b->off += (size_t) n;
			c->progress += (uint64_t) n;
			continue;
		}
		if (n == IO_ERR) {
			c->failed = true;
			conn_touch(c);
		}
		break;
	}
	if (b->off == b->len) {
		b->off = b->len = 0;
		if (b->cap > KS_OUT_KEEP)
			buf_free(b);
	} else if (c->wr_want_rd ? !(c->ev & EPOLLIN) : !(c->ev & EPOLLOUT)) {
		/* The loop must arm the readiness this write waits for. */
		conn_touch(c);
	}
}

/* --- connection lifecycle -------------------------------------------- */

static void
conn_touch(ks_conn *c)
{
	ks_httpd *h = c->h;
	if (c->touched || c->fd < 0)
		return;
	c->touched      = true;
	c->next_touched = h->touched;
	h->touched      = c;
}

static bool
reading_enabled(const ks_conn *c)
{
	return !c->closed && !c->failed && !c->peer_eof && c->rs != RS_DONE
	    && buf_used(&c->in) < KS_IN_CAP;
}

static void
conn_update_events(ks_conn *c)
{
	uint32_t want = 0;

	if (c->fd < 0)
		return;
	if (!c->zombie) {
		want |= EPOLLRDHUP;
		if (reading_enabled(c) || c->wr_want_rd)
			want |= EPOLLIN;
		if ((buf_used(&c->out) > 0 && !c->wr_want_rd) || c->rd_want_wr)
			want |= EPOLLOUT;
	} else {
		if (buf_used(&c->out) > 0 && !c->wr_want_rd)
			want |= EPOLLOUT;
		if (c->shut || c->wr_want_rd)
			want |= EPOLLIN | EPOLLRDHUP;
	}
	if (want != c->ev) {
		struct epoll_event ev = { .events = want, .data.ptr = c };
		if (epoll_ctl(c->h->epfd, EPOLL_CTL_MOD, c->fd, &ev) == 0) {
			c->ev = want;
		} else {
			c->failed = true;
			conn_touch(c);
		}
	}
}

static void
req_retire(ks_conn *c)
{
	ks_reqdata *r = c->req;
	if (r == NULL)
		return;
	c->req          = NULL;
	r->next_garbage = c->h->garbage;
	c->h->garbage   = r;
}

static void
req_free(ks_reqdata *r)
{
	buf_free(&r->body);
	free(r->joined);
	free(r);
}

/* Marks the connection closed and runs its close callback (once). */
static void
conn_logical_close(ks_conn *c)
{
	ks_close_fn fn;
	void       *arg;

	if (c->closed)
		return;
	c->closed = true;
	req_retire(c);
	fn          = c->close_fn;
	arg         = c->close_arg;
	c->close_fn = NULL;
	c->drain_fn = NULL;
	if (fn != NULL)
		fn(arg, c);
}

/* Closes the socket now; the memory goes at the end of the iteration. */
static void
conn_release(ks_conn *c, bool reset)
{
	ks_httpd *h = c->h;

	if (c->fd < 0)
		return;
	if (reset) {
		struct linger lg = { .l_onoff = 1, .l_linger = 0 };
		setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	}
	close(c->fd);
	c->fd = -1;
	ks_httpd_timer_cancel(h, c->timer);
	c->timer = 0;
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		h->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
	h->nconns--;
	c->next_dead = h->dead;
	h->dead      = c;
}

static void
conn_free(ks_conn *c)
{
	if (c->ssl != NULL)
		SSL_free(c->ssl);
	buf_free(&c->in);
	buf_free(&c->out);
	if (c->req != NULL)
		req_free(c->req);
	free(c);
}

static void
conn_close_hard(ks_conn *c, bool reset)
{
	conn_logical_close(c);
	conn_release(c, reset);
}

/* The zombie timer: drop a closing connection that made no progress. */
static void
conn_timer_cb(void *arg)
{
	ks_conn *c = arg;
	c->timer   = 0;
	if (!c->shut && c->progress != c->timer_progress) {
		c->timer_progress = c->progress;
		c->timer          = ks_httpd_timer_add(
		             c->h, KS_CLOSE_IDLE_MS, conn_timer_cb, c);
		return;
	}
	conn_release(c, false);
}

static void
conn_close_graceful(ks_conn *c)
{
	if (c->closed)
		return;
	c->zombie = true;
	c->rs     = RS_DONE;
	conn_logical_close(c);
	if (c->fd < 0)
		return;
	buf_free(&c->in);
	c->timer_progress = c->progress;
	c->timer
	    = ks_httpd_timer_add(c->h, KS_CLOSE_IDLE_MS, conn_timer_cb, c);
	conn_touch(c);
}

/* Advances a zombie: flush, then shut down the write side, then linger. */
static void
zombie_step(ks_conn *c)
{
	if (c->fd < 0)
		return;
	if (c->failed) {
		conn_release(c, false);
		return;
	}
	if (buf_used(&c->out) > 0) {
		conn_flush(c);
		if (c->failed) {
			conn_release(c, false);
			return;
		}
		if (buf_used(&c->out) > 0) {
			conn_update_events(c);
			return;
		}
	}
	if (!c->shut) {
		if (c->ssl != NULL && !c->ssl_fatal
		    && SSL_is_init_finished(c->ssl)) {
			ERR_clear_error();
			SSL_shutdown(c->ssl);
			ERR_clear_error();
		}
		shutdown(c->fd, SHUT_WR);
		c->shut = true;
		if (c->peer_eof) {
			conn_release(c, false);
			return;
		}
		ks_httpd_timer_cancel(c->h, c->timer);
		c->timer
		    = ks_httpd_timer_add(c->h, KS_LINGER_MS, conn_timer_cb, c);
	}
	conn_update_events(c);
}

static void
zombie_io(ks_conn *c, uint32_t ev)
{
	if ((ev & EPOLLOUT) || (c->wr_want_rd && (ev & EPOLLIN))) {
		c->wr_want_rd = false;
		conn_flush(c);
	}
	if (c->shut && (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) {
		/* Lingering: discard until the peer closes. */
		for (int i = 0; i < KS_READS_PER_EVENT; i++) {
			ssize_t n
			    = recv(c->fd, c->h->rbuf, sizeof(c->h->rbuf), 0);
			if (n > 0)
				continue;
			if (n < 0 && (errno == EINTR))
				continue;
			if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
				break;
			conn_release(c, false);
			return;
		}
	} else if (ev & (EPOLLHUP | EPOLLERR)) {
		conn_release(c, false);
		return;
	}
	zombie_step(c);
}

/* --- responses ------------------------------------------------------- */

/* Writes the status line and headers.  `framing` is the Content-Length or
 * Transfer-Encoding line, or NULL. */
static void
put_head(ks_conn *c, int status, const char *ctype, const char *headers,
    const char *framing)
{
	ks_buf *b = &c->out;

	if (status < 100 || status > 999)
		status = 500;
	buf_printf(b, "HTTP/1.1 %d %s\r\nDate: %s\r\n", status,
	    status_reason(status), http_date(c->h));
	if (ctype != NULL)
		buf_printf(b, "Content-Type: %s\r\n", ctype);
	if (headers != NULL)
		buf_puts(b, headers);
	if (framing != NULL)
		buf_puts(b, framing);
	if (!c->keepalive)
		buf_puts(b, "Connection: close\r\n");
	else if (c->http10)
		buf_puts(b, "Connection: keep-alive\r\n");
	buf_puts(b, "\r\n");
}

/* The response for the current request has ended (fully queued). */
static void
response_end(ks_conn *c)
{
	req_retire(c);
	c->resp       = RESP_NONE;
	c->stream_raw = false;
	c->head_only  = false;
	c->body       = BODY_NONE;
	c->rs         = c->keepalive ? RS_HEAD : RS_DONE;
	c->need_input = true;
	conn_touch(c);
}

static bool
can_respond(const ks_conn *c)
{
	return c != NULL && !c->closed && c->rs == RS_HANDLING
	    && c->resp == RESP_NONE;
}

void
ks_conn_respond(ks_conn *c, int status, const char *content_type,
    const char *headers, const void *body, size_t len)
{
	bool has_body;
	char cl[48];

	if (!can_respond(c))
		return;
	if (body == NULL)
		len = 0;
	has_body = !(status < 200 || status == 204 || status == 304);
	if (has_body)
		snprintf(cl, sizeof(cl), "Content-Length: %zu\r\n", len);
	put_head(c, status, content_type, headers, has_body ? cl : NULL);
	if (has_body && !c->head_only)
		buf_append(&c->out, body, len);
	response_end(c);
	conn_flush(c);
}

void
ks_conn_stream_begin(
    ks_conn *c, int status, const char *content_type, const char *headers)
{
	if (!can_respond(c))
		return;
	c->resp = RESP_STREAM;
	if (c->http10) {
		/* No chunked coding in HTTP/1.0: the close ends the body. */
		c->keepalive  = false;
		c->stream_raw = true;
		put_head(c, status, content_type, headers, NULL);
	} else {
		put_head(c, status, content_type, headers,
		    "Transfer-Encoding: chunked\r\n");
	}
	conn_flush(c);
}

void
ks_conn_stream_write(ks_conn *c, const void *data, size_t len)
{
	if (c == NULL || c->closed || c->rs != RS_HANDLING
	    || c->resp != RESP_STREAM || len == 0 || c->head_only)
		return;
	if (c->stream_raw) {
		buf_append(&c->out, data, len);
	} else {
		buf_reserve(&c->out, len + 24);
		buf_printf(&c->out, "%zx\r\n", len);
		buf_append(&c->out, data, len);
		buf_append(&c->out, "\r\n", 2);
	}
	conn_flush(c);
}

void
ks_conn_stream_end(ks_conn *c, enum ks_stream_end how)
{
	if (c == NULL || c->closed || c->rs != RS_HANDLING
	    || c->resp != RESP_STREAM)
		return;
	if (how == KS_END_ABRUPT) {
		ks_conn_close(c, false);
		return;
	}
	if (!c->stream_raw && !c->head_only)
		buf_append(&c->out, "0\r\n\r\n", 5);
	response_end(c);
	conn_flush(c);
}

void
ks_conn_write_raw(ks_conn *c, const void *data, size_t len)
{
	if (c == NULL || c->closed || len == 0)
		return;
	buf_append(&c->out, data, len);
	conn_flush(c);
}

void
ks_conn_close(ks_conn *c, bool reset)
{
	if (c == NULL || c->closed)
		return;
	if (reset)
		conn_close_hard(c, true);
	else
		conn_close_graceful(c);
}

size_t
ks_conn_pending(const ks_conn *c)
{
	return c == NULL ? 0 : buf_used(&c->out);
}

void
ks_conn_on_close(ks_conn *c, ks_close_fn fn, void *arg)
{
	if (c == NULL || c->closed)
		return;
	c->close_fn  = fn;
	c->close_arg = fn != NULL ? arg : NULL;
}

void
ks_conn_on_drain(ks_conn *c, ks_close_fn fn, void *arg)
{
	if (c == NULL || c->closed)
		return;
	c->drain_fn  = fn;
	c->drain_arg = fn != NULL ? arg : NULL;
}

uint64_t
ks_conn_id(const ks_conn *c)
{
	return c->id;
}

const char *
ks_conn_peer(const ks_conn *c)
{
	return c->peer;
}

const char *
ks_req_header(const ks_conn *c, const char *name)
{
	const ks_reqdata *r;
	if (c == NULL || name == NULL || (r = c->req) == NULL)
		return NULL;
	for (size_t i = 0; i < r->nhdrs; i++)
		if (strcasecmp(r->hdrs[i].name, name) == 0)
			return r->hdrs[i].value;
	return NULL;
}

/* --- request parsing ------------------------------------------------- */

static const char *
hdr_get(const ks_reqdata *r, const char *name)
{
	for (size_t i = 0; i < r->nhdrs; i++)
		if (strcasecmp(r->hdrs[i].name, name) == 0)
			return r->hdrs[i].value;
	return NULL;
}

/* Answers a request the loop rejects itself with a Kubernetes Status, then
 * closes the connection. */
static int
fail_request(ks_conn *c, int status)
{
	const char *reason = "BadRequest";
	char        msg[128];
	char        body[512];
	char        cl[48];
	int         n;

	switch (status) {
	case 413:
		reason = "RequestEntityTooLarge";
		snprintf(msg, sizeof(msg),
		    "Request entity too large: limit is %zu", c->h->max_body);
		break;
	case 431:
		snprintf(msg, sizeof(msg), "request header fields too large");
		break;
	case 501:
		snprintf(msg, sizeof(msg), "transfer coding not implemented");
		break;
	case 505:
		snprintf(msg, sizeof(msg), "HTTP version not supported");
		break;
	default:
		snprintf(msg, sizeof(msg), "malformed HTTP request");
		break;
	}
	n = snprintf(body, sizeof(body),
	    "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},"
	    "\"status\":\"Failure\",\"message\":\"%s\",\"reason\":\"%s\","
	    "\"code\":%d}",
	    msg, reason, status);
	snprintf(cl, sizeof(cl), "Content-Length: %d\r\n", n);
	req_retire(c);
	c->keepalive = false;
	put_head(c, status, "application/json", NULL, cl);
	buf_append(&c->out, body, (size_t) n);
	conn_flush(c);
	conn_close_graceful(c);
	return STEP_PROGRESS;
}

static int
dispatch(ks_conn *c)
{
	ks_httpd   *h = c->h;
	ks_reqdata *r = c->req;

	if (r->body.len > 0) {
		buf_reserve(&r->body, 1);
		r->body.data[r->body.len] = '\0';
		r->req.body               = r->body.data;
		r->req.body_len           = r->body.len;
	} else {
		buf_free(&r->body);
		r->req.body     = "";
		r->req.body_len = 0;
	}
	r->req.id = ++h->next_req_id;
	c->rs     = RS_HANDLING;
	c->resp   = RESP_NONE;
	if (h->handler != NULL)
		h->handler(h->handler_arg, c, &r->req);
	else
		ks_conn_respond(c, 404, "text/plain", NULL, "not found\n", 10);
	return STEP_PROGRESS;
}

/* Parses the request line and the header lines of the NUL-terminated copy
 * `head`.  Returns 0 or the HTTP status to reject the request with. */
static int
parse_head_lines(
    ks_conn *c, ks_reqdata *r, char *head, size_t hlen, char *pathbuf)
{
	char  *end  = head + hlen;
	char  *line = head;
	char  *nl, *sp1, *sp2, *ver, *t;
	size_t len, pl;

	/* Request line. */
	nl  = memchr(line, '\n', (size_t) (end - line));
	len = (size_t) (nl - line);
	*nl = '\0';
	if (len > 0 && line[len - 1] == '\r')
		line[--len] = '\0';
	if (strlen(line) != len)
		return 400;
	sp1 = strchr(line, ' ');
	if (sp1 == NULL || sp1 == line)
		return 400;
	*sp1 = '\0';
	for (const char *p = line; *p; p++)
		if (!is_tchar((unsigned char) *p))
			return 400;
	t   = sp1 + 1;
	sp2 = strchr(t, ' ');
	if (sp2 == NULL || sp2 == t)
		return 400;
	*sp2 = '\0';
	for (const unsigned char *p = (unsigned char *) t; *p; p++)
		if (*p <= 0x20 || *p == 0x7f)
			return 400;
	ver = sp2 + 1;
	if (strncmp(ver, "HTTP/", 5) != 0 || ver[5] < '0' || ver[5] > '9'
	    || ver[6] != '.' || ver[7] < '0' || ver[7] > '9' || ver[8] != '\0')
		return 400;
	if (ver[5] != '1')
		return ver[5] > '1' ? 505 : 400;
	c->http10 = ver[7] == '0';

	pl = strcspn(t, "?");
	memcpy(pathbuf, t, pl);
	pathbuf[pl]   = '\0';
	r->req.method = line;
	r->req.target = t;
	r->req.path   = pathbuf;
	r->req.query  = t[pl] == '?' ? t + pl + 1 : "";
	r->req.peer   = c->peer;

	/* Header lines, up to the blank line. */
	for (line = nl + 1; line < end; line = nl + 1) {
		char *colon, *v, *ve;
		nl  = memchr(line, '\n', (size_t) (end - line));
		len = (size_t) (nl - line);
		*nl = '\0';
		if (len > 0 && line[len - 1] == '\r')
			line[--len] = '\0';
		if (len == 0)
			break;
		if (strlen(line) != len)
			return 400;
		if (*line == ' ' || *line == '\t')
			return 400; /* obsolete line folding */
		colon = strchr(line, ':');
		if (colon == NULL || colon == line)
			return 400;
		*colon = '\0';
		for (const char *p = line; *p; p++)
			if (!is_tchar((unsigned char) *p))
				return 400;
		v = colon + 1;
		while (*v == ' ' || *v == '\t')
			v++;
		ve = line + len;
		while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
			ve--;
		*ve = '\0';
		for (const unsigned char *p = (unsigned char *) v; *p; p++)
			if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
				return 400;
		if (r->nhdrs >= KS_MAX_HEADERS)
			return 431;
		r->hdrs[r->nhdrs].name  = line;
		r->hdrs[r->nhdrs].value = v;
		r->nhdrs++;
	}

	/* Join repeated headers with ", ".  Each joined value is shorter than
	 * the lines it came from, so one arena of hlen + 1 bytes suffices. */
	{
		size_t apos = 0, n = r->nhdrs, k = 0;
		for (size_t i = 0; i < n; i++) {
			size_t vl;
			bool   dup = false;
			if (r->hdrs[i].name == NULL)
				continue;
			for (size_t j = i + 1; j < n && !dup; j++)
				dup = r->hdrs[j].name != NULL
				    && strcasecmp(
				           r->hdrs[i].name, r->hdrs[j].name)
				        == 0;
			if (!dup)
				continue;
			if (r->joined == NULL)
				r->joined = mcf_malloc(hlen + 1);
			vl = strlen(r->hdrs[i].value);
			memcpy(r->joined + apos, r->hdrs[i].value, vl);
			for (size_t j = i + 1; j < n; j++) {
				size_t l2;
				if (r->hdrs[j].name == NULL
				    || strcasecmp(
				        r->hdrs[i].name, r->hdrs[j].name))
					continue;
				l2 = strlen(r->hdrs[j].value);
				memcpy(r->joined + apos + vl, ", ", 2);
				memcpy(r->joined + apos + vl + 2,
				    r->hdrs[j].value, l2);
				vl += 2 + l2;
				r->hdrs[j].name = NULL;
			}
			r->joined[apos + vl] = '\0';
			r->hdrs[i].value     = r->joined + apos;
			apos += vl + 1;
		}
		for (size_t i = 0; i < n; i++)
			if (r->hdrs[i].name != NULL)
				r->hdrs[k++] = r->hdrs[i];
		r->nhdrs = k;
	}
	return 0;
}

/* Decides framing and keep-alive once the head is parsed. */
static int
setup_request(ks_conn *c, ks_reqdata *r)
{
	const char *te   = hdr_get(r, "Transfer-Encoding");
	const char *cl   = hdr_get(r, "Content-Length");
	const char *conn = hdr_get(r, "Connection");
	const char *exp  = hdr_get(r, "Expect");

	c->keepalive = !c->http10;
	if (conn != NULL) {
		if (token_in_list(conn, "close"))
			c->keepalive = false;
		else if (c->http10 && token_in_list(conn, "keep-alive"))
			c->keepalive = true;
	}
	c->head_only = strcmp(r->req.method, "HEAD") == 0;
	c->body      = BODY_NONE;
	c->remaining = 0;

	if (te != NULL) {
		const char *last;
		if (c->http10 || cl != NULL)
			return fail_request(c, 400);
		last = strrchr(te, ',');
		last = last != NULL ? last + 1 : te;
		while (*last == ' ' || *last == '\t')
			last++;
		if (strcasecmp(last, "chunked") != 0)
			return fail_request(c, 400);
		if (strcasecmp(te, "chunked") != 0)
			return fail_request(c, 501);
		c->body     = BODY_CHUNKED;
		c->cs       = CH_SIZE;
		c->lscan    = 0;
		c->trailers = 0;
	} else if (cl != NULL) {
		uint64_t v = 0;
		if (*cl == '\0')
			return fail_request(c, 400);
		for (const char *p = cl; *p; p++) {
			if (*p < '0' || *p > '9')
				return fail_request(c, 400);
			if (v > (UINT64_MAX - 9) / 10)
				return fail_request(c, 413);
			v = v * 10 + (uint64_t) (*p - '0');
		}
		if (v > c->h->max_body)
			return fail_request(c, 413);
		if (v > 0) {
			c->body      = BODY_LENGTH;
			c->remaining = v;
		}
	}
	if (c->body == BODY_NONE)
		return dispatch(c);
	if (exp != NULL && !c->http10
	    && strcasecmp(exp, "100-continue") == 0) {
		buf_puts(&c->out, "HTTP/1.1 100 Continue\r\n\r\n");
		conn_flush(c);
	}
	c->rs = RS_BODY;
	return STEP_PROGRESS;
}

static int
start_request(ks_conn *c, size_t hlen)
{
	const char *src    = c->in.data + c->in.off;
	const char *nl1    = memchr(src, '\n', hlen);
	size_t      l1     = (size_t) (nl1 - src);
	size_t      nlines = 0;
	size_t      sz;
	ks_reqdata *r;
	char       *head, *pathbuf;
	int         st;

	for (const char *p = src;
	     (p = memchr(p, '\n', hlen - (size_t) (p - src))); p++)
		nlines++;
	sz = sizeof(ks_reqdata) + nlines * sizeof(ks_hdr) + hlen + 1 + l1 + 1;
	r  = mcf_calloc(1, sz);
	r->hdrs = (ks_hdr *) (r + 1);
	head    = (char *) (r->hdrs + nlines);
	pathbuf = head + hlen + 1;
	memcpy(head, src, hlen);
	head[hlen] = '\0';
	buf_consume(&c->in, hlen);
	c->req    = r;
	c->http10 = false;

	st = parse_head_lines(c, r, head, hlen, pathbuf);
	if (st != 0)
		return fail_request(c, st);
	return setup_request(c, r);
}

static int
parse_head(ks_conn *c)
{
	ks_buf     *b = &c->in;
	const char *p;
	size_t      avail, i, end = 0;

	if (c->hscan == 0) {
		/* Ignore empty lines before a request line (RFC 9112 2.2). */
		while (buf_used(b) > 0) {
			char ch = b->data[b->off];
			if (ch == '\n') {
				buf_consume(b, 1);
			} else if (ch == '\r') {
				if (buf_used(b) < 2)
					return STEP_MORE;
				if (b->data[b->off + 1] != '\n')
					return fail_request(c, 400);
				buf_consume(b, 2);
			} else {
				break;
			}
		}
	}
	avail = buf_used(b);
	if (avail == 0)
		return STEP_MORE;
	p = b->data + b->off;
	i = c->hscan;
	while (i < avail) {
		const char *nl = memchr(p + i, '\n', avail - i);
		size_t      at, ll;
		if (nl == NULL) {
			i = avail;
			break;
		}
		at = (size_t) (nl - p);
		ll = at - c->hline;
		if (ll == 0 || (ll == 1 && p[c->hline] == '\r')) {
			end = at + 1;
			break;
		}
		c->hline = at + 1;
		i        = at + 1;
	}
	if (end == 0) {
		c->hscan = i;
		if (avail > KS_HEAD_MAX)
			return fail_request(c, 431);
		return STEP_MORE;
	}
	c->hscan = c->hline = 0;
	if (end > KS_HEAD_MAX)
		return fail_request(c, 431);
	return start_request(c, end);
}

/* Finds the end of the current line of input (resuming the scan).  Returns
 * its length without CRLF and sets *adv to the bytes to consume, or returns
 * SIZE_MAX when the line is incomplete. */
static size_t
next_line(ks_conn *c, size_t *adv)
{
	ks_buf     *b     = &c->in;
	size_t      avail = buf_used(b);
	const char *p     = b->data + b->off;
	const char *nl;
	size_t      at;

	if (avail <= c->lscan) {
		return SIZE_MAX;
	}
	nl = memchr(p + c->lscan, '\n', avail - c->lscan);
	if (nl == NULL) {
		c->lscan = avail;
		return SIZE_MAX;
	}
	at       = (size_t) (nl - p);
	c->lscan = 0;
	*adv     = at + 1;
	if (at > 0 && p[at - 1] == '\r')
		at--;
	return at;
}

static int
parse_chunked(ks_conn *c)
{
	ks_buf     *b = &c->in;
	ks_reqdata *r = c->req;
	size_t      adv, ll, n;

	switch (c->cs) {
	case CH_SIZE: {
		const char *p;
		uint64_t    v = 0;
		size_t      i = 0;
		ll            = next_line(c, &adv);
		if (ll == SIZE_MAX) {
			if (c->lscan > KS_CHUNK_LINE_MAX)
				return fail_request(c, 400);
			return STEP_MORE;
		}
		if (ll > KS_CHUNK_LINE_MAX)
			return fail_request(c, 400);
		p = b->data + b->off;
		for (; i < ll; i++) {
			int  d;
			char ch = p[i];
			if (ch >= '0' && ch <= '9')
				d = ch - '0';
			else if (ch >= 'a' && ch <= 'f')
				d = ch - 'a' + 10;
			else if (ch >= 'A' && ch <= 'F')
				d = ch - 'A' + 10;
			else
				break;
			v = v * 16 + (uint64_t) d;
			if (v > c->h->max_body || v > (UINT64_MAX >> 8))
				return fail_request(c, 413);
		}
		if (i == 0)
			return fail_request(c, 400);
		while (i < ll && (p[i] == ' ' || p[i] == '\t'))
			i++;
		if (i < ll && p[i] != ';')
			return fail_request(c, 400);
		for (; i < ll; i++)
			if (p[i] == '\r' || p[i] == '\0')
				return fail_request(c, 400);
		buf_consume(b, adv);
		if (v == 0) {
			c->cs = CH_TRAILER;
			return STEP_PROGRESS;
		}
		if (v > c->h->max_body - r->body.len)
			return fail_request(c, 413);
		c->remaining = v;
		c->cs        = CH_DATA;
		return STEP_PROGRESS;
	}
	case CH_DATA:
		n = buf_used(b);
		if (n == 0)
			return STEP_MORE;
		if (n > c->remaining)
			n = (size_t) c->remaining;
		buf_append(&r->body, b->data + b->off, n);
		buf_consume(b, n);
		c->remaining -= n;
		if (c->remaining == 0)
			c->cs = CH_DATA_END;
		return STEP_PROGRESS;
	case CH_DATA_END:
		if (buf_used(b) == 0)
			return STEP_MORE;
		if (b->data[b->off] == '\n') {
			buf_consume(b, 1);
		} else if (b->data[b->off] == '\r') {
			if (buf_used(b) < 2)
				return STEP_MORE;
			if (b->data[b->off + 1] != '\n')
				return fail_request(c, 400);
			buf_consume(b, 2);
		} else {
			return fail_request(c, 400);
		}
		c->cs = CH_SIZE;
		return STEP_PROGRESS;
	case CH_TRAILER:
	default:
		ll = next_line(c, &adv);
		if (ll == SIZE_MAX) {
			if (c->trailers + c->lscan > KS_HEAD_MAX)
				return fail_request(c, 431);
			return STEP_MORE;
		}
		buf_consume(b, adv);
		if (ll == 0)
			return dispatch(c);
		c->trailers += adv;
		if (c->trailers > KS_HEAD_MAX)
			return fail_request(c, 431);
		return STEP_PROGRESS;
	}
}

static int
parse_body(ks_conn *c)
{
	ks_buf *b = &c->in;
	size_t  n;

	if (c->body == BODY_CHUNKED)
		return parse_chunked(c);
	n = buf_used(b);
	if (n == 0)
		return STEP_MORE;
	if (n > c->remaining)
		n = (size_t) c->remaining;
	buf_append(&c->req->body, b->data + b->off, n);
	buf_consume(b, n);
	c->remaining -= n;
	if (c->remaining > 0)
		return STEP_MORE;
	return dispatch(c);
}

/* Parses and dispatches buffered requests, one at a time.  Runs only at top
 * level of the loop (never from inside an API call). */
static void
process_input(ks_conn *c)
{
	while (!c->closed && !c->failed) {
		int r;
		if (c->rs == RS_HEAD) {
			if (buf_used(&c->out) > KS_OUT_PIPELINE_CAP)
				break;
			r = parse_head(c);
		} else if (c->rs == RS_BODY) {
			r = parse_body(c);
		} else {
			break;
		}
		if (r == STEP_MORE)
			break;
	}
	if (buf_used(&c->in) == 0)
		buf_free(&c->in);
}

/* Reads what the socket has (bounded), parsing as it goes. */
static void
conn_read(ks_conn *c)
{
	ks_httpd *h = c->h;

	for (int i = 0; i < KS_READS_PER_EVENT; i++) {
		ssize_t n;
		if (!reading_enabled(c))
			return;
		n = conn_recv(c, h->rbuf, sizeof(h->rbuf));
		if (n > 0) {
			c->progress += (uint64_t) n;
			buf_append(&c->in, h->rbuf, (size_t) n);
			process_input(c);
			if (c->closed || c->fd < 0)
				return;
			continue;
		}
		if (n == IO_AGAIN)
			return;
		if (n == IO_EOF) {
			c->peer_eof = true;
			conn_close_graceful(c);
		} else {
			conn_close_hard(c, false);
		}
		return;
	}
	/* Out of turns: decrypted TLS data would not wake epoll again. */
	if (c->ssl != NULL && SSL_has_pending(c->ssl)) {
		c->try_read = true;
		conn_touch(c);
	}
}

static void
conn_io(ks_conn *c, uint32_t ev)
{
	if (c->fd < 0)
		return;
	if (c->zombie) {
		zombie_io(c, ev);
		return;
	}
	if ((ev & EPOLLOUT) || (c->wr_want_rd && (ev & EPOLLIN))) {
		size_t had    = buf_used(&c->out);
		c->wr_want_rd = false;
		conn_flush(c);
		if (c->failed) {
			conn_close_hard(c, false);
			return;
		}
		if (had > 0 && buf_used(&c->out) == 0) {
			/* Pipelined requests may have waited for the drain. */
			c->need_input = true;
			conn_touch(c);
			if (c->drain_fn != NULL) {
				c->drain_fn(c->drain_arg, c);
				if (c->closed)
					return;
			}
		}
	}
	if ((ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
	    || (c->rd_want_wr && (ev & EPOLLOUT))) {
		if (reading_enabled(c)) {
			c->rd_want_wr = false;
			conn_read(c);
			if (c->closed || c->fd < 0)
				return;
		} else if (ev & (EPOLLHUP | EPOLLERR)) {
			conn_close_hard(c, false);
			return;
		} else if (ev & EPOLLRDHUP) {
			/* Peer hung up while we were not reading (a
			 * response pending with input paused). */
			c->peer_eof = true;
			conn_close_graceful(c);
			return;
		}
	}
	if (c->failed) {
		conn_close_hard(c, false);
		return;
	}
	conn_update_events(c);
}

/* Services the connections touched during this iteration. */
static void
touched_run(ks_httpd *h)
{
	while (h->touched != NULL) {
		ks_conn *c      = h->touched;
		h->touched      = c->next_touched;
		c->next_touched = NULL;
		c->touched      = false;
		if (c->fd < 0)
			continue;
		if (c->zombie) {
			zombie_step(c);
			continue;
		}
		if (c->failed) {
			conn_close_hard(c, false);
			continue;
		}
		if (c->rs == RS_DONE) {
			conn_close_graceful(c);
			continue;
		}
		if (c->need_input) {
			c->need_input = false;
			process_input(c);
			if (c->closed || c->fd < 0)
				continue;
		}
		/* Input may have been paused, and OpenSSL may hold decrypted
		 * bytes that epoll cannot report. */
		if (c->try_read
		    || (c->ssl != NULL && SSL_has_pending(c->ssl))) {
			c->try_read = false;
			if (reading_enabled(c)) {
				conn_read(c);
				if (c->closed || c->fd < 0)
					continue;
			}
		}
		if (c->failed) {
			conn_close_hard(c, false);
			continue;
		}
		if (c->rs == RS_DONE) {
			conn_close_graceful(c);
			continue;
		}
		conn_update_events(c);
	}
}

static void
collect_garbage(ks_httpd *h)
{
	while (h->dead != NULL) {
		ks_conn *c = h->dead;
		h->dead    = c->next_dead;
		conn_free(c);
	}
	while (h->garbage != NULL) {
		ks_reqdata *r = h->garbage;
		h->garbage    = r->next_garbage;
		req_free(r);
	}
}

/* --- accepting ------------------------------------------------------- */

static void
format_peer(char *out, size_t outlen, const struct sockaddr_storage *ss)
{
	char host[INET6_ADDRSTRLEN];
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const void *) ss;
		inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
		snprintf(out, outlen, "[%s]:%u", host, ntohs(a->sin6_port));
	} else if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *a = (const void *) ss;
		inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
		snprintf(out, outlen, "%s:%u", host, ntohs(a->sin_port));
	} else {
		snprintf(out, outlen, "unknown");
	}
}

static void
accept_resume(void *arg)
{
	ks_httpd          *h  = arg;
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &h->lfd };
	if (epoll_ctl(h->epfd, EPOLL_CTL_MOD, h->lfd, &ev) == 0)
		h->accept_paused = false;
	else
		ks_httpd_timer_add(h, KS_ACCEPT_PAUSE_MS, accept_resume, h);
}

static void
conn_new(ks_httpd *h, int fd, const struct sockaddr_storage *ss)
{
	ks_conn           *c;
	struct epoll_event ev;
	int                one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c     = mcf_calloc(1, sizeof(*c));
	c->h  = h;
	c->fd = fd;
	c->id = ++h->next_conn_id;
	c->rs = RS_HEAD;
	format_peer(c->peer, sizeof(c->peer), ss);
	if (h->ctx != NULL) {
		BIO *bio;
		c->ssl = SSL_new(h->ctx);
		bio    = BIO_new(h->biom);
		if (c->ssl == NULL || bio == NULL)
			mcf_panic("SSL_new/BIO_new");
		BIO_set_data(bio, (void *) (intptr_t) fd);
		SSL_set_bio(c->ssl, bio, bio);
		SSL_set_accept_state(c->ssl);
	}
	c->ev       = EPOLLIN | EPOLLRDHUP;
	ev.events   = c->ev;
	ev.data.ptr = c;
	if (epoll_ctl(h->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
		close(fd);
		conn_free(c);
		return;
	}
	c->next = h->conns;
	if (h->conns != NULL)
		h->conns->prev = c;
	h->conns = c;
	h->nconns++;
}

static void
on_accept(ks_httpd *h)
{
	for (int i = 0; i < KS_ACCEPTS_PER_EVENT; i++) {
		struct sockaddr_storage ss;
		socklen_t               sl = sizeof(ss);
		int fd = accept4(h->lfd, (struct sockaddr *) &ss, &sl,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED
			    || errno == EPROTO)
				continue;
			if (errno == EMFILE || errno == ENFILE
			    || errno == ENOBUFS || errno == ENOMEM) {
				/* Level-triggered: stop listening for a
				 * moment rather than spin. */
				struct epoll_event ev
				    = { .events = 0, .data.ptr = &h->lfd };
				epoll_ctl(h->epfd, EPOLL_CTL_MOD, h->lfd, &ev);
				h->accept_paused = true;
				ks_httpd_timer_add(
				    h, KS_ACCEPT_PAUSE_MS, accept_resume, h);
			}
			return;
		}
		conn_new(h, fd, &ss);
	}
}

static void
on_wake(ks_httpd *h)
{
	uint64_t v;
	ks_post *p;

	while (read(h->efd, &v, sizeof(v)) < 0 && errno == EINTR)
		;
	lock(&h->mtx);
	p            = h->post_head;
	h->post_head = h->post_tail = NULL;
	unlock(&h->mtx);
	while (p != NULL) {
		ks_post *next = p->next;
		p->fn(p->arg);
		free(p);
		p = next;
	}
}

/* --- server ---------------------------------------------------------- */

static void
wake(ks_httpd *h)
{
	uint64_t one   = 1;
	int      saved = errno;
	while (write(h->efd, &one, sizeof(one)) < 0 && errno == EINTR)
		;
	errno = saved;
}

static int
open_listener(ks_httpd *h, const char *listen_addr, char *err, size_t errlen)
{
	char            host[256];
	const char     *port;
	const char     *colon;
	struct addrinfo hints, *res = NULL, *ai;
	int             rc, saved   = 0;
	char           *endp;
	long            pv;

	if (listen_addr[0] == '[') {
		const char *rb = strchr(listen_addr, ']');
		if (rb == NULL || rb[1] != ':'
		    || (size_t) (rb - listen_addr - 1) >= sizeof(host))
			goto bad;
		memcpy(host, listen_addr + 1, (size_t) (rb - listen_addr - 1));
		host[rb - listen_addr - 1] = '\0';
		port                       = rb + 2;
	} else {
		colon = strrchr(listen_addr, ':');
		if (colon == NULL
		    || (size_t) (colon - listen_addr) >= sizeof(host))
			goto bad;
		memcpy(host, listen_addr, (size_t) (colon - listen_addr));
		host[colon - listen_addr] = '\0';
		port                      = colon + 1;
	}
	errno = 0;
	pv    = strtol(port, &endp, 10);
	if (*port == '\0' || *endp != '\0' || errno != 0 || pv < 0
	    || pv > 65535)
		goto bad;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family   = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags    = AI_PASSIVE | AI_NUMERICSERV;
	rc                = getaddrinfo(
	                   host[0] && strcmp(host, "*") ? host : NULL, port, &hints, &res);
	if (rc != 0) {
		seterr(err, errlen, "listen %s: %s", listen_addr,
		    gai_strerror(rc));
		return MCF_EINVAL;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		int one = 1;
		int fd  = socket(ai->ai_family,
		     ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
		     ai->ai_protocol);
		if (fd < 0) {
			saved = errno;
			continue;
		}
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0
		    || listen(fd, 4096) != 0) {
			saved = errno;
			close(fd);
			continue;
		}
		h->lfd = fd;
		break;
	}
	freeaddrinfo(res);
	if (h->lfd < 0) {
		seterr(err, errlen, "listen %s: %s", listen_addr,
		    strerror(saved));
		return MCF_ESYS;
	}
	{
		struct sockaddr_storage ss;
		socklen_t               sl = sizeof(ss);
		if (getsockname(h->lfd, (struct sockaddr *) &ss, &sl) == 0) {
			if (ss.ss_family == AF_INET6)
				h->port = ntohs(
				    ((struct sockaddr_in6 *) &ss)->sin6_port);
			else
				h->port = ntohs(
				    ((struct sockaddr_in *) &ss)->sin_port);
		}
	}
	return MCF_OK;

bad:
	seterr(err, errlen, "listen: bad address \"%s\" (want HOST:PORT)",
	    listen_addr);
	return MCF_EINVAL;
}

static void
raise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static void
httpd_free(ks_httpd *h)
{
	ks_post *p;

	if (h->lfd >= 0)
		close(h->lfd);
	if (h->efd >= 0)
		close(h->efd);
	if (h->epfd >= 0)
		close(h->epfd);
	SSL_CTX_free(h->ctx);
	BIO_meth_free(h->biom);
	while ((p = h->post_head) != NULL) {
		h->post_head = p->next;
		free(p);
	}
	free(h->tslots);
	free(h->theap);
	pthread_mutex_destroy(&h->mtx);
	free(h);
}

int
ks_httpd_create(
    ks_httpd **out, const ks_httpd_config *cfg, char *err, size_t errlen)
{
	ks_httpd          *h;
	struct epoll_event ev;
	int                rc;

	if (out == NULL || cfg == NULL) {
		seterr(err, errlen, "missing argument");
		return MCF_EINVAL;
	}
	if ((cfg->tls_cert == NULL) != (cfg->tls_key == NULL)) {
		seterr(err, errlen, "tls: need both a certificate and a key");
		return MCF_EINVAL;
	}
	h      = mcf_calloc(1, sizeof(*h));
	h->lfd = h->efd = h->epfd = -1;
	h->tfree                  = UINT32_MAX;
	h->max_body    = cfg->max_body ? cfg->max_body : KS_DEFAULT_MAX_BODY;
	h->handler     = cfg->handler;
	h->handler_arg = cfg->handler_arg;
	atomic_init(&h->stop, 0);
	if (pthread_mutex_init(&h->mtx, NULL) != 0)
		mcf_panic("pthread_mutex_init");

	rc = open_listener(
	    h, cfg->listen ? cfg->listen : "127.0.0.1:0", err, errlen);
	if (rc != MCF_OK)
		goto fail;
	if (cfg->tls_cert != NULL) {
		rc = tls_setup(h, cfg->tls_cert, cfg->tls_key, err, errlen);
		if (rc != MCF_OK)
			goto fail;
	}
	h->epfd = epoll_create1(EPOLL_CLOEXEC);
	h->efd  = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (h->epfd < 0 || h->efd < 0) {
		seterr(err, errlen, "epoll/eventfd: %s", strerror(errno));
		rc = MCF_ESYS;
		goto fail;
	}
	ev.events   = EPOLLIN;
	ev.data.ptr = &h->lfd;
	if (epoll_ctl(h->epfd, EPOLL_CTL_ADD, h->lfd, &ev) != 0)
		goto sysfail;
	ev.events   = EPOLLIN;
	ev.data.ptr = &h->efd;
	if (epoll_ctl(h->epfd, EPOLL_CTL_ADD, h->efd, &ev) != 0)
		goto sysfail;
	raise_nofile();
	*out = h;
	return MCF_OK;

sysfail:
	seterr(err, errlen, "epoll_ctl: %s", strerror(errno));
	rc = MCF_ESYS;
fail:
	httpd_free(h);
	return rc;
}

void
ks_httpd_destroy(ks_httpd *h)
{
	if (h == NULL)
		return;
	h->destroying = true;
	while (h->conns != NULL)
		conn_close_hard(h->conns, false);
	h->touched = NULL;
	collect_garbage(h);
	httpd_free(h);
}

int
ks_httpd_port(const ks_httpd *h)
{
	return h->port;
}

const char *
ks_httpd_scheme(const ks_httpd *h)
{
	return h->ctx != NULL ? "https" : "http";
}

size_t
ks_httpd_conn_count(const ks_httpd *h)
{
	return h->nconns;
}

void
ks_httpd_close_all(ks_httpd *h, bool reset)
{
	ks_conn **snap;
	size_t    n = 0;

	/* Close callbacks may close or release other connections and so
	 * change the list; a snapshot stays valid because released
	 * connections are freed only at the end of the loop iteration. */
	snap = mcf_malloc((h->nconns + 1) * sizeof(*snap));
	for (ks_conn *c = h->conns; c != NULL; c = c->next)
		if (!c->closed)
			snap[n++] = c;
	for (size_t i = 0; i < n; i++)
		ks_conn_close(snap[i], reset);
	free(snap);
}

int
ks_httpd_run(ks_httpd *h)
{
	struct epoll_event evs[KS_EPOLL_EVENTS];
	int                rc = MCF_OK;

	while (!atomic_load(&h->stop)) {
		int timeout = h->touched != NULL ? 0 : timers_timeout(h);
		int n = epoll_wait(h->epfd, evs, KS_EPOLL_EVENTS, timeout);
		if (n < 0) {
			if (errno != EINTR) {
				rc = MCF_ESYS;
				break;
			}
			n = 0;
		}
		for (int i = 0; i < n; i++) {
			void *p = evs[i].data.ptr;
			if (p == &h->lfd)
				on_accept(h);
			else if (p == &h->efd)
				on_wake(h);
			else
				conn_io(p, evs[i].events);
		}
		timers_run(h);
		touched_run(h);
		collect_garbage(h);
	}
	atomic_store(&h->stop, 0);
	return rc;
}

void
ks_httpd_stop(ks_httpd *h)
{
	atomic_store(&h->stop, 1);
	wake(h);
}

void
ks_httpd_post(ks_httpd *h, ks_timer_fn fn, void *arg)
{
	ks_post *p = mcf_malloc(sizeof(*p));
	p->fn      = fn;
	p->arg     = arg;
	p->next    = NULL;
	lock(&h->mtx);
	if (h->post_tail != NULL)
		h->post_tail->next = p;
	else
		h->post_head = p;
	h->post_tail = p;
	unlock(&h->mtx);
	wake(h);
}

int64_t
ks_httpd_now_ms(const ks_httpd *h)
{
	(void) h;
	return mono_ms();
}

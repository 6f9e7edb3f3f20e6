/*
 * kclient.c — synchronous Kubernetes REST client over one libcurl easy
 * handle.
 *
 * A call builds its URL (base path, /api/V or /apis/G/V, namespace,
 * resource, name, subresource, each segment percent-encoded, then the
 * query), serialises the body once, and runs attempts until one gives an
 * answer that is not worth retrying, the attempts run out or the deadline
 * would pass.  Each attempt first takes a token from the optional bucket,
 * then sets the per-request options on the shared easy handle (method,
 * body, headers, a timeout equal to the time left) and performs it.  The
 * write callback collects the body up to max_body; the header callback
 * picks up Retry-After.  Connection-level options (TLS material, user
 * agent, keep-alive) are set once in mcf_kc_create, so curl keeps the
 * connection between calls.
 *
 * An error body is parsed as a Status when it is one; otherwise a
 * printable excerpt stands in for the message, so a non-JSON or truncated
 * body still gives a clean error.
 */
#include <ctype.h>
#include <pthread.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "alloc.h"
#include "kclient.h"
#include "log.h"
#include "metrics.h"

#define KC_DEFAULT_TIMEOUT_MS 30000
#define KC_DEFAULT_ATTEMPTS 10
#define KC_DEFAULT_BACKOFF_MS 200
#define KC_DEFAULT_BACKOFF_MAX_MS 5000
#define KC_DEFAULT_MAX_BODY ((size_t) 64 << 20)
#define KC_CONNECT_TIMEOUT_MS 10000

/* A growable byte buffer, NUL-terminated. */
typedef struct kc_buf {
	char  *p; /* owned */
	size_t n, cap;
} kc_buf;

struct mcf_kc {
	CURL *curl;       /* owned */
	char *base;       /* owned: server URL, no trailing '/' */
	char *token;      /* owned: literal token, or NULL */
	char *token_file; /* owned: path, or NULL */
	char *file_token; /* owned: last token read from token_file */
	char  host[256];  /* the server's host[:port], the metrics label */
	/* Connection settings, kept for mcf_kc_easy_setup. */
	char           *user_agent; /* owned */
	bool            insecure;
	unsigned char  *ca_pem, *cert_pem, *key_pem; /* owned copies or NULL */
	size_t          ca_pem_len, cert_pem_len, key_pem_len;
	struct timespec tf_mtime;
	off_t           tf_size;
	bool            tf_loaded;
	mcf_kc_opts     opts;
	/* Token bucket (qps > 0). */
	double   tokens;
	int64_t  bucket_ms;
	unsigned seed; /* jitter */
	/* Per-attempt scratch. */
	kc_buf resp;
	bool   too_big;
	int    retry_after;
	char   errbuf[CURL_ERROR_SIZE];
};

static int64_t
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
sleep_ms(int64_t ms)
{
	if (ms <= 0)
		return;
	struct timespec ts
	    = { (time_t) (ms / 1000), (long) (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static void
buf_add(kc_buf *b, const char *d, size_t n)
{
	if (b->n + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->n + n + 1)
			cap *= 2;
		b->p   = mcf_realloc(b->p, cap);
		b->cap = cap;
	}
	memcpy(b->p + b->n, d, n);
	b->n += n;
	b->p[b->n] = '\0';
}

static void
buf_adds(kc_buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

/* Appends `s` percent-encoded: RFC 3986 unreserved characters stay. */
static void
buf_add_enc(kc_buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
		if (isalnum(*p) || *p == '-' || *p == '.' || *p == '_'
		    || *p == '~') {
			buf_add(b, (const char *) p, 1);
		} else {
			char e[3] = { '%', hex[*p >> 4], hex[*p & 15] };
			buf_add(b, e, 3);
		}
	}
}

static void
buf_add_query(kc_buf *b, bool *first, const char *key, const char *val)
{
	if (val == NULL || val[0] == '\0')
		return;
	buf_adds(b, *first ? "?" : "&");
	*first = false;
	buf_adds(b, key);
	buf_adds(b, "=");
	buf_add_enc(b, val);
}

/* ---- classification ------------------------------------------------- */

int
mcf_kc_classify(const char *reason, int code)
{
	static const struct {
		const char *reason;
		int         err;
	} by_reason[] = {
		{ "NotFound", MCF_ENOENT },
		{ "AlreadyExists", MCF_EEXIST },
		{ "Conflict", MCF_ECONFLICT },
		{ "Expired", MCF_EGONE },
		{ "Gone", MCF_EGONE },
		{ "TooManyRequests", MCF_EAGAIN },
		{ "Invalid", MCF_EINVAL },
		{ "BadRequest", MCF_EINVAL },
		{ "Forbidden", MCF_EPERM },
		{ "Unauthorized", MCF_EPERM },
		{ "MethodNotAllowed", MCF_EUNSUPP },
		{ "NotAcceptable", MCF_EUNSUPP },
		{ "UnsupportedMediaType", MCF_EUNSUPP },
		{ "RequestEntityTooLarge", MCF_ETOOBIG },
		{ "InternalError", MCF_EINTERNAL },
		{ "ServiceUnavailable", MCF_EUNAVAIL },
		{ "Timeout", MCF_EUNAVAIL },
		{ "ServerTimeout", MCF_EUNAVAIL },
	};
	if (code >= 200 && code < 300)
		return MCF_OK;
	if (reason != NULL && reason[0] != '\0') {
		for (size_t i = 0;
		     i < sizeof(by_reason) / sizeof(by_reason[0]); i++)
			if (strcmp(reason, by_reason[i].reason) == 0)
				return by_reason[i].err;
	}
	switch (code) {
	case 400:
	case 422:
		return MCF_EINVAL;
	case 401:
	case 403:
		return MCF_EPERM;
	case 404:
		return MCF_ENOENT;
	case 405:
	case 406:
	case 415:
	case 501:
		return MCF_EUNSUPP;
	case 409:
		return MCF_ECONFLICT;
	case 410:
		return MCF_EGONE;
	case 413:
		return MCF_ETOOBIG;
	case 429:
		return MCF_EAGAIN;
	case 502:
	case 503:
	case 504:
		return MCF_EUNAVAIL;
	default:
		break;
	}
	if (code >= 500)
		return MCF_EINTERNAL;
	if (code >= 400)
		return MCF_EINVAL;
	return MCF_EPROTO;
}

/* ---- curl callbacks ------------------------------------------------- */

static size_t
on_body(char *data, size_t size, size_t nmemb, void *arg)
{
	mcf_kc *c = arg;
	size_t  n = size * nmemb;
	if (c->resp.n + n > c->opts.max_body) {
		c->too_big = true;
		return 0;
	}
	buf_add(&c->resp, data, n);
	return n;
}

int
mcf_kc_retry_after(const char *line, size_t n)
{
	static const char name[] = "retry-after:";
	if (n <= sizeof(name) - 1
	    || strncasecmp(line, name, sizeof(name) - 1) != 0)
		return 0;
	char   v[32];
	size_t vl = n - (sizeof(name) - 1);
	if (vl >= sizeof(v))
		vl = sizeof(v) - 1;
	memcpy(v, line + sizeof(name) - 1, vl);
	v[vl]   = '\0';
	char *e = NULL;
	long  s = strtol(v, &e, 10);
	return e != v && s > 0 && s < 3600 ? (int) s : 0;
}

static size_t
on_header(char *data, size_t size, size_t nmemb, void *arg)
{
	mcf_kc *c  = arg;
	size_t  n  = size * nmemb;
	int     ra = mcf_kc_retry_after(data, n);
	if (ra > 0)
		c->retry_after = ra;
	return n;
}

/* ---- lifecycle ------------------------------------------------------ */

static int
set_blob(CURL *h, CURLoption opt, const unsigned char *p, size_t n)
{
	struct curl_blob b
	    = { .data = (void *) p, .len = n, .flags = CURL_BLOB_COPY };
	return curl_easy_setopt(h, opt, &b) == CURLE_OK ? 0 : -1;
}

/* A copy of PEM bytes (NUL-terminated), or NULL for NULL. */
static unsigned char *
pem_dup(const unsigned char *p, size_t n, size_t *len)
{
	*len = 0;
	if (p == NULL)
		return NULL;
	unsigned char *d = mcf_malloc(n + 1);
	memcpy(d, p, n);
	d[n] = '\0';
	*len = n;
	return d;
}

/* The connection-level options of `c` on `h`: user agent, no signals,
 * keep-alive, protocols, TLS verification and material.  0, or -1 when
 * libcurl refused one. */
static int
conn_opts(mcf_kc *c, CURL *h)
{
	int bad = 0;
	bad |= curl_easy_setopt(h, CURLOPT_USERAGENT, c->user_agent)
	    != CURLE_OK;
	bad |= curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) != CURLE_OK;
	bad |= curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L) != CURLE_OK;
	bad |= curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https")
	    != CURLE_OK;
	if (c->insecure) {
		bad |= curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L)
		    != CURLE_OK;
		bad |= curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L)
		    != CURLE_OK;
	} else if (c->ca_pem != NULL) {
		bad |= set_blob(
		           h, CURLOPT_CAINFO_BLOB, c->ca_pem, c->ca_pem_len)
		    != 0;
	}
	if (c->cert_pem != NULL && c->key_pem != NULL) {
		bad |= set_blob(h, CURLOPT_SSLCERT_BLOB, c->cert_pem,
		           c->cert_pem_len)
		    != 0;
		bad |= set_blob(
		           h, CURLOPT_SSLKEY_BLOB, c->key_pem, c->key_pem_len)
		    != 0;
		bad |= curl_easy_setopt(h, CURLOPT_SSLCERTTYPE, "PEM")
		    != CURLE_OK;
		bad |= curl_easy_setopt(h, CURLOPT_SSLKEYTYPE, "PEM")
		    != CURLE_OK;
	}
	return bad ? -1 : 0;
}

/* The client's own libcurl handle, made on first use (mcf_kc_create checks
 * the options once).  MCF_EIO if libcurl refuses one. */
static int
easy_handle(mcf_kc *c)
{
	if (c->curl != NULL)
		return MCF_OK;
	CURL *h = curl_easy_init();
	if (h == NULL)
		mcf_panic("curl_easy_init failed");
	int bad = conn_opts(c, h) != 0;
	bad |= curl_easy_setopt(h, CURLOPT_ERRORBUFFER, c->errbuf) != CURLE_OK;
	bad |= curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body) != CURLE_OK;
	bad |= curl_easy_setopt(h, CURLOPT_WRITEDATA, c) != CURLE_OK;
	bad |= curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header)
	    != CURLE_OK;
	bad |= curl_easy_setopt(h, CURLOPT_HEADERDATA, c) != CURLE_OK;
	bad |= curl_easy_setopt(
	           h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t) c->opts.max_body)
	    != CURLE_OK;
	c->curl = h; /* freed by the caller or mcf_kc_destroy either way */
	return bad ? MCF_EIO : MCF_OK;
}

int
mcf_kc_create(const mcf_kubeconfig *kc, const char *user_agent,
    const mcf_kc_opts *opts, mcf_kc **out, mcf_errinfo *ei)
{
	if (kc == NULL || kc->server == NULL || user_agent == NULL
	    || out == NULL)
		return mcf_errinfo_set(ei, MCF_EINVAL,
		    "kclient: missing "
		    "server or user agent");
	if (strncmp(kc->server, "http://", 7) != 0
	    && strncmp(kc->server, "https://", 8) != 0)
		return mcf_errinfo_set(ei, MCF_EINVAL,
		    "kclient: server %s: not an http(s) URL", kc->server);
	mcf_kc *c = mcf_calloc(1, sizeof(*c));
	c->base   = mcf_strdup(kc->server);
	size_t bl = strlen(c->base);
	while (bl > 0 && c->base[bl - 1] == '/')
		c->base[--bl] = '\0';
	c->token      = kc->token ? mcf_strdup(kc->token) : NULL;
	c->token_file = kc->token_file ? mcf_strdup(kc->token_file) : NULL;
	if (opts != NULL)
		c->opts = *opts;
	if (c->opts.timeout_ms <= 0)
		c->opts.timeout_ms = KC_DEFAULT_TIMEOUT_MS;
	if (c->opts.max_attempts <= 0)
		c->opts.max_attempts = KC_DEFAULT_ATTEMPTS;
	if (c->opts.backoff_ms <= 0)
		c->opts.backoff_ms = KC_DEFAULT_BACKOFF_MS;
	if (c->opts.backoff_max_ms <= 0)
		c->opts.backoff_max_ms = KC_DEFAULT_BACKOFF_MAX_MS;
	if (c->opts.max_body == 0)
		c->opts.max_body = KC_DEFAULT_MAX_BODY;
	if (c->opts.qps > 0 && c->opts.burst <= 0)
		c->opts.burst = 1;
	c->tokens    = c->opts.burst;
	c->bucket_ms = now_ms();
	c->seed      = (unsigned) (now_ms() ^ (intptr_t) c);
	mcf_kc_url_host(kc->server, c->host, sizeof(c->host));

	c->user_agent = mcf_strdup(user_agent);
	c->insecure   = kc->insecure;
	c->ca_pem     = pem_dup(kc->ca_pem, kc->ca_pem_len, &c->ca_pem_len);
	if (kc->cert_pem != NULL && kc->key_pem != NULL) {
		c->cert_pem = pem_dup(
		    kc->cert_pem, kc->cert_pem_len, &c->cert_pem_len);
		c->key_pem
		    = pem_dup(kc->key_pem, kc->key_pem_len, &c->key_pem_len);
	}

	/* The options are checked now, on a handle that is dropped again:
	 * a client an informer keeps only for mcf_kc_easy_setup() never
	 * holds a libcurl handle (5 KiB each, two per engaged project). */
	if (easy_handle(c) != MCF_OK) {
		mcf_kc_destroy(c);
		return mcf_errinfo_set(ei, MCF_EIO,
		    "kclient: libcurl refused an option (TLS support?)");
	}
	curl_easy_cleanup(c->curl);
	c->curl = NULL;
	if (kc->tls_server_name != NULL)
		mcf_log_warn("KC-TLS-SERVER-NAME",
		    "tls-server-name %s is not honoured yet",
		    kc->tls_server_name);
	*out = c;
	return MCF_OK;
}

void
mcf_kc_destroy(mcf_kc *c)
{
	if (c == NULL)
		return;
	curl_easy_cleanup(c->curl);
	free(c->base);
	free(c->token);
	free(c->token_file);
	free(c->file_token);
	free(c->user_agent);
	free(c->ca_pem);
	free(c->cert_pem);
	if (c->key_pem != NULL)
		memset(c->key_pem, 0, c->key_pem_len);
	free(c->key_pem);
	free(c->resp.p);
	free(c);
}

/* ---- token ---------------------------------------------------------- */

/* Re-reads the token file when its mtime or size changed.  On a failed
 * read the previous token stays (a rotation writes a new file in place of
 * the old, and a short gap must not drop authentication). */
static void
refresh_token_file(mcf_kc *c)
{
	struct stat sb;
	if (stat(c->token_file, &sb) != 0) {
		mcf_log_warn("KC-TOKEN-FILE", "stat %s: %s", c->token_file,
		    strerror(errno));
		return;
	}
	if (c->tf_loaded && sb.st_mtim.tv_sec == c->tf_mtime.tv_sec
	    && sb.st_mtim.tv_nsec == c->tf_mtime.tv_nsec
	    && sb.st_size == c->tf_size)
		return;
	FILE *f = fopen(c->token_file, "re");
	if (f == NULL) {
		mcf_log_warn("KC-TOKEN-FILE", "open %s: %s", c->token_file,
		    strerror(errno));
		return;
	}
	kc_buf b = { 0 };
	char   tmp[4096];
	size_t n;
	while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0 && b.n < (1u << 20))
		buf_add(&b, tmp, n);
	bool err = ferror(f);
	fclose(f);
	if (err || b.p == NULL) {
		free(b.p);
		mcf_log_warn("KC-TOKEN-FILE", "read %s: empty or failed",
		    c->token_file);
		return;
	}
	char *s = b.p;
	while (*s && isspace((unsigned char) *s))
		s++;
	size_t l = strlen(s);
	while (l > 0 && isspace((unsigned char) s[l - 1]))
		s[--l] = '\0';
	free(c->file_token);
	c->file_token = mcf_strdup(s);
	free(b.p);
	c->tf_mtime  = sb.st_mtim;
	c->tf_size   = sb.st_size;
	c->tf_loaded = true;
}

/* Borrowed until the next call on `c`. */
static const char *
current_token(mcf_kc *c)
{
	if (c->token_file != NULL) {
		refresh_token_file(c);
		if (c->file_token != NULL && c->file_token[0] != '\0')
			return c->file_token;
	}
	return c->token;
}

char *
mcf_kc_current_token(mcf_kc *c)
{
	const char *t = current_token(c);
	return t ? mcf_strdup(t) : NULL;
}

/* ---- transfers run by the caller ------------------------------------ */

int
mcf_kc_easy_setup(
    mcf_kc *c, void *easy, struct curl_slist **headers, mcf_errinfo *ei)
{
	if (c == NULL || easy == NULL || headers == NULL)
		return mcf_errinfo_set(
		    ei, MCF_EINVAL, "kclient: easy_setup: missing argument");
	if (conn_opts(c, easy) != 0)
		return mcf_errinfo_set(ei, MCF_EIO,
		    "kclient: libcurl refused an option (TLS support?)");
	struct curl_slist *h = *headers, *h2;
	h2 = curl_slist_append(h, "Accept: application/json");
	if (h2 == NULL)
		mcf_panic("curl_slist_append");
	h               = h2;
	const char *tok = current_token(c);
	if (tok != NULL && tok[0] != '\0') {
		char *auth = mcf_asprintf("Authorization: Bearer %s", tok);
		h2         = curl_slist_append(h, auth);
		/* curl_slist_append copied it: wipe ours. */
		memset(auth, 0, strlen(auth));
		free(auth);
		if (h2 == NULL)
			mcf_panic("curl_slist_append");
		h = h2;
	}
	*headers = h;
	return MCF_OK;
}

/* ---- rate limit and backoff ---------------------------------------- */

/* Takes one token, sleeping for it; false if that would pass the
 * deadline. */
static bool
bucket_take(mcf_kc *c, int64_t deadline)
{
	if (c->opts.qps <= 0)
		return true;
	int64_t now = now_ms();
	c->tokens += (double) (now - c->bucket_ms) * c->opts.qps / 1000.0;
	if (c->tokens > c->opts.burst)
		c->tokens = c->opts.burst;
	c->bucket_ms = now;
	if (c->tokens >= 1.0) {
		c->tokens -= 1.0;
		return true;
	}
	int64_t wait
	    = (int64_t) ((1.0 - c->tokens) * 1000.0 / c->opts.qps) + 1;
	if (now + wait >= deadline)
		return false;
	sleep_ms(wait);
	c->tokens    = 0;
	c->bucket_ms = now_ms();
	return true;
}

/* Jittered exponential backoff for retry number `n` (1-based): the
 * doubled delay capped at the maximum, then a random point in its upper
 * half, so clients that failed together spread out. */
static int64_t
backoff_ms(mcf_kc *c, int n)
{
	int64_t d = c->opts.backoff_ms;
	for (int i = 1; i < n && d < c->opts.backoff_max_ms; i++)
		d *= 2;
	if (d > c->opts.backoff_max_ms)
		d = c->opts.backoff_max_ms;
	return d / 2 + (int64_t) (rand_r(&c->seed) % (unsigned) (d / 2 + 1));
}

/* ---- one call ------------------------------------------------------- */

static void
status_set(mcf_kc_status *st, int code, const char *reason, const char *msg)
{
	if (st == NULL)
		return;
	st->http_code = code;
	snprintf(st->reason, sizeof(st->reason), "%s", reason ? reason : "");
	snprintf(st->message, sizeof(st->message), "%s", msg ? msg : "");
}

/* Fills `st` from a non-2xx answer in c->resp and returns the code. */
static int
api_error(mcf_kc *c, long code, mcf_kc_status *st)
{
	const char *reason = "";
	char        msg[512];
	snprintf(msg, sizeof(msg), "HTTP %ld", code);
	json_t *j = NULL;
	if (c->resp.n > 0)
		j = json_loadb(c->resp.p, c->resp.n, 0, NULL);
	if (json_is_object(j)) {
		const char *r
		    = json_string_value(json_object_get(j, "reason"));
		const char *m
		    = json_string_value(json_object_get(j, "message"));
		if (r != NULL)
			reason = r;
		if (m != NULL)
			snprintf(msg, sizeof(msg), "%s", m);
	} else if (c->resp.n > 0) {
		/* Not a Status: a printable excerpt of the body. */
		size_t k = 0;
		int    w = snprintf(msg, sizeof(msg), "HTTP %ld: ", code);
		k        = (size_t) w;
		for (size_t i = 0; i < c->resp.n && k < 200; i++) {
			unsigned char ch = (unsigned char) c->resp.p[i];
			msg[k++]         = isprint(ch) ? (char) ch : '?';
		}
		msg[k] = '\0';
	}
	status_set(st, (int) code, reason, msg);
	int err = mcf_kc_classify(reason, (int) code);
	json_decref(j);
	return err;
}

static bool
retryable_code(long code)
{
	return code == 429 || (code >= 500 && code != 501);
}

/* Runs `method` on `url` with `body` (serialised JSON, may be NULL). */
static int
do_call(mcf_kc *c, const char *method, const char *url, const char *body,
    const char *ctype, json_t **out, mcf_kc_status *st)
{
	if (out != NULL)
		*out = NULL;
	if (st != NULL)
		memset(st, 0, sizeof(*st));
	int64_t start    = now_ms();
	int64_t deadline = start + c->opts.timeout_ms;
	bool    is_get   = strcmp(method, "GET") == 0;
	int     err      = MCF_ETIMEDOUT;
	if (easy_handle(c) != MCF_OK) {
		status_set(st, 0, "", "libcurl refused an option");
		return MCF_EIO;
	}
	status_set(st, 0, "", "deadline passed before the first attempt");

	for (int attempt = 1; attempt <= c->opts.max_attempts; attempt++) {
		if (!bucket_take(c, deadline)) {
			status_set(st, 0, "",
			    "client rate limit: deadline "
			    "would pass");
			return MCF_ETIMEDOUT;
		}
		int64_t left = deadline - now_ms();
		if (left <= 0)
			return err == MCF_OK ? MCF_ETIMEDOUT : err;

		c->resp.n = 0;
		if (c->resp.p != NULL)
			c->resp.p[0] = '\0';
		c->too_big     = false;
		c->retry_after = 0;
		c->errbuf[0]   = '\0';

		struct curl_slist *hdr = NULL, *h2;
#define KC_HDR(s)                                                             \
	do {                                                                  \
		h2 = curl_slist_append(hdr, (s));                             \
		if (h2 == NULL)                                               \
			mcf_panic("curl_slist_append");                       \
		hdr = h2;                                                     \
	} while (0)
		KC_HDR("Accept: application/json");
		KC_HDR("Expect:");
		char *ct = NULL, *auth = NULL;
		if (body != NULL) {
			ct = mcf_asprintf("Content-Type: %s", ctype);
			KC_HDR(ct);
		}
		const char *tok = current_token(c);
		if (tok != NULL && tok[0] != '\0') {
			auth = mcf_asprintf("Authorization: Bearer %s", tok);
			KC_HDR(auth);
		}
#undef KC_HDR
		CURL *h = c->curl;
		curl_easy_setopt(h, CURLOPT_URL, url);
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
		if (body != NULL) {
			curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
			curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
			    (curl_off_t) strlen(body));
		} else {
			curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
		}
		curl_easy_setopt(
		    h, CURLOPT_CUSTOMREQUEST, is_get ? NULL : method);
		curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long) left);
		curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
		    (long) (left < KC_CONNECT_TIMEOUT_MS
		            ? left
		            : KC_CONNECT_TIMEOUT_MS));
		CURLcode cc = curl_easy_perform(h);
		long     rcode = 0;
		if (cc == CURLE_OK)
			curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &rcode);
		mcf_kc_metrics_record(method, c->host, cc == CURLE_OK ? (int) rcode : 0);
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
		curl_slist_free_all(hdr);
		/* The token may be in the Authorization header: wipe it. */
		if (auth != NULL)
			memset(auth, 0, strlen(auth));
		free(auth);
		free(ct);

		long code = 0;
		bool retry;
		if (cc != CURLE_OK) {
			if (c->too_big || cc == CURLE_FILESIZE_EXCEEDED) {
				status_set(st, 0, "",
				    "response body over the size limit");
				return MCF_ETOOBIG;
			}
			const char *m = c->errbuf[0] ? c->errbuf
			                             : curl_easy_strerror(cc);
			status_set(st, 0, "", m);
			/* A connect timeout below the deadline is a transport
			 * error like any other. */
			if (cc == CURLE_OPERATION_TIMEDOUT
			    && now_ms() >= deadline - 20)
				return MCF_ETIMEDOUT;
			err   = MCF_EIO;
			retry = is_get;
		} else {
			curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
			if (code >= 200 && code < 300) {
				json_t *j = NULL;
				if (c->resp.n == 0) {
					j = json_null();
				} else {
					json_error_t je;
					j = json_loadb(
					    c->resp.p, c->resp.n, 0, &je);
					if (j == NULL) {
						char m[300];
						snprintf(m, sizeof(m),
						    "response body is not "
						    "JSON: %s",
						    je.text);
						status_set(
						    st, (int) code, "", m);
						return MCF_EPROTO;
					}
				}
				status_set(st, (int) code, "", "");
				if (out != NULL)
					*out = j;
				else
					json_decref(j);
				return MCF_OK;
			}
			err = api_error(c, code, st);
			if (st != NULL)
				st->retry_after = c->retry_after;
			retry = retryable_code(code);
		}
		if (!retry || attempt == c->opts.max_attempts)
			return err;
		int64_t wait = c->retry_after > 0
		    ? (int64_t) c->retry_after * 1000
		    : backoff_ms(c, attempt);
		if (now_ms() + wait >= deadline)
			return err;
		mcf_log_debug("KC-RETRY",
		    "%s %s: attempt %d: %s (HTTP %ld); retrying in %lld ms",
		    method, url, attempt, mcf_err_name(err), code,
		    (long long) wait);
		sleep_ms(wait);
	}
	return err;
}

/* ---- URL building --------------------------------------------------- */

static void
build_path(
    mcf_kc *c, kc_buf *b, const mcf_kc_ref *r, bool with_name, const char *sub)
{
	buf_adds(b, c->base);
	if (r->group == NULL || r->group[0] == '\0') {
		buf_adds(b, "/api/");
	} else {
		buf_adds(b, "/apis/");
		buf_add_enc(b, r->group);
		buf_adds(b, "/");
	}
	buf_add_enc(b, r->version);
	if (r->namespace != NULL && r->namespace[0] != '\0') {
		buf_adds(b, "/namespaces/");
		buf_add_enc(b, r->namespace);
	}
	buf_adds(b, "/");
	buf_add_enc(b, r->resource);
	if (with_name) {
		buf_adds(b, "/");
		buf_add_enc(b, r->name);
	}
	if (sub != NULL) {
		buf_adds(b, "/");
		buf_adds(b, sub);
	}
}

static bool
ref_ok(const mcf_kc_ref *r, bool want_name)
{
	if (r == NULL || r->version == NULL || r->version[0] == '\0'
	    || r->resource == NULL || r->resource[0] == '\0')
		return false;
	bool has = r->name != NULL && r->name[0] != '\0';
	return has == want_name;
}

static int
bad_ref(json_t **out, mcf_kc_status *st)
{
	if (out != NULL)
		*out = NULL;
	if (st != NULL) {
		memset(st, 0, sizeof(*st));
		status_set(
		    st, 0, "", "kclient: incomplete resource reference");
	}
	return MCF_EINVAL;
}

static int
call_json(mcf_kc *c, const char *method, kc_buf *url, const json_t *body,
    const char *ctype, json_t **out, mcf_kc_status *st)
{
	char *s = NULL;
	if (body != NULL) {
		s = json_dumps(body, JSON_COMPACT);
		if (s == NULL) {
			free(url->p);
			if (out != NULL)
				*out = NULL;
			if (st != NULL) {
				memset(st, 0, sizeof(*st));
				status_set(st, 0, "",
				    "kclient: body cannot be serialised");
			}
			return MCF_EINVAL;
		}
	}
	int rc = do_call(c, method, url->p, s, ctype, out, st);
	free(s);
	free(url->p);
	url->p = NULL;
	return rc;
}

int
mcf_kc_get(mcf_kc *c, const mcf_kc_ref *ref, json_t **out, mcf_kc_status *st)
{
	if (!ref_ok(ref, true))
		return bad_ref(out, st);
	kc_buf u = { 0 };
	build_path(c, &u, ref, true, NULL);
	return call_json(c, "GET", &u, NULL, NULL, out, st);
}

int
mcf_kc_list(mcf_kc *c, const mcf_kc_ref *ref, const mcf_kc_list_opts *o,
    json_t **out, mcf_kc_status *st)
{
	if (!ref_ok(ref, false))
		return bad_ref(out, st);
	kc_buf u = { 0 };
	build_path(c, &u, ref, false, NULL);
	if (o != NULL) {
		bool first = true;
		char lim[32];
		snprintf(lim, sizeof(lim), "%lld", (long long) o->limit);
		buf_add_query(&u, &first, "labelSelector", o->label_selector);
		buf_add_query(&u, &first, "fieldSelector", o->field_selector);
		if (o->limit > 0)
			buf_add_query(&u, &first, "limit", lim);
		buf_add_query(&u, &first, "continue", o->cont);
		buf_add_query(
		    &u, &first, "resourceVersion", o->resource_version);
		buf_add_query(&u, &first, "resourceVersionMatch",
		    o->resource_version_match);
	}
	return call_json(c, "GET", &u, NULL, NULL, out, st);
}

int
mcf_kc_create_object(mcf_kc *c, const mcf_kc_ref *ref, const json_t *body,
    json_t **out, mcf_kc_status *st)
{
	if (!ref_ok(ref, false) || body == NULL)
		return bad_ref(out, st);
	kc_buf u = { 0 };
	build_path(c, &u, ref, false, NULL);
	return call_json(c, "POST", &u, body, "application/json", out, st);
}

int
mcf_kc_update(mcf_kc *c, const mcf_kc_ref *ref, const json_t *body,
    json_t **out, mcf_kc_status *st)
{
	if (!ref_ok(ref, true) || body == NULL)
		return bad_ref(out, st);
	kc_buf u = { 0 };
	build_path(c, &u, ref, true, NULL);
	return call_json(c, "PUT", &u, body, "application/json", out, st);
}

int
mcf_kc_update_status(mcf_kc *c, const mcf_kc_ref *ref, const json_t *body,
    json_t **out, mcf_kc_status *st)
{
	if (!ref_ok(ref, true) || body == NULL)
		return bad_ref(out, st);
	kc_buf u = { 0 };
	build_path(c, &u, ref, true, "status");
	return call_json(c, "PUT", &u, body, "application/json", out, st);
}

int
mcf_kc_patch(mcf_kc *c, const mcf_kc_ref *ref, enum mcf_kc_patch_type type,
    const json_t *patch, json_t **out, mcf_kc_status *st)
{
	const char *ct;
	switch (type) {
	case MCF_KC_PATCH_MERGE:
		ct = "application/merge-patch+json";
		break;
	case MCF_KC_PATCH_JSON:
		ct = "application/json-patch+json";
		break;
	case MCF_KC_PATCH_STRATEGIC:
		ct = "application/strategic-merge-patch+json";
		break;
	default:
		return bad_ref(out, st);
	}
	if (!ref_ok(ref, true) || patch == NULL)
		return bad_ref(out, st);
	kc_buf u = { 0 };
	build_path(c, &u, ref, true, NULL);
	return call_json(c, "PATCH", &u, patch, ct, out, st);
}

int
mcf_kc_delete(mcf_kc *c, const mcf_kc_ref *ref, const mcf_kc_delete_opts *o,
    json_t **out, mcf_kc_status *st)
{
	if (!ref_ok(ref, true))
		return bad_ref(out, st);
	kc_buf  u    = { 0 };
	json_t *body = NULL;
	build_path(c, &u, ref, true, NULL);
	if (o != NULL
	    && (o->precondition_uid || o->precondition_rv
	        || o->propagation_policy)) {
		body = json_pack(
		    "{s:s,s:s}", "kind", "DeleteOptions", "apiVersion", "v1");
		if (o->precondition_uid || o->precondition_rv) {
			json_t *pre = json_object();
			if (o->precondition_uid)
				json_object_set_new(pre, "uid",
				    json_string(o->precondition_uid));
			if (o->precondition_rv)
				json_object_set_new(pre, "resourceVersion",
				    json_string(o->precondition_rv));
			json_object_set_new(body, "preconditions", pre);
		}
		if (o->propagation_policy)
			json_object_set_new(body, "propagationPolicy",
			    json_string(o->propagation_policy));
	}
	int rc = call_json(c, "DELETE", &u, body, "application/json", out, st);
	json_decref(body);
	return rc;
}

int
mcf_kc_request(mcf_kc *c, const char *method, const char *path,
    const json_t *body, json_t **out, mcf_kc_status *st)
{
	if (method == NULL || path == NULL || path[0] != '/')
		return bad_ref(out, st);
	kc_buf u = { 0 };
	buf_adds(&u, c->base);
	buf_adds(&u, path);
	return call_json(c, method, &u, body, "application/json", out, st);
}

void
mcf_kc_url_host(const char *url, char *out, size_t cap)
{
	const char *p = strstr(url, "://");
	p = p != NULL ? p + 3 : url;
	size_t n = strcspn(p, "/?#");
	if (n >= cap)
		n = cap - 1;
	memcpy(out, p, n);
	out[n] = '\0';
}

/* rest_client_requests_total: the family is registered once; a series is
 * looked up per request (a short critical section in the family). */
static pthread_once_t       rest_once = PTHREAD_ONCE_INIT;
static mcf_metrics_family *rest_family;

static void
rest_register(void)
{
	static const char *const labels[] = {"code", "method", "host", NULL};
	if (mcf_metrics_counter_register(mcf_metrics_default(),
	        "rest_client_requests_total",
	        "Number of HTTP requests, partitioned by status code, method, "
	        "and host.",
	        labels, &rest_family) != MCF_OK)
		rest_family = NULL;
}

void
mcf_kc_metrics_record(const char *method, const char *host, int http_code)
{
	pthread_once(&rest_once, rest_register);
	if (rest_family == NULL)
		return;
	char code[16];
	if (http_code > 0)
		snprintf(code, sizeof(code), "%d", http_code);
	else
		snprintf(code, sizeof(code), "<error>");
	const char *const   values[] = {code, method, host, NULL};
	mcf_metrics_series *s;
	if (mcf_metrics_series_get(rest_family, values, &s) == MCF_OK)
		mcf_metrics_counter_inc(s);
}

/*
 * log.c — JSON-lines logger (the line format is in log.h).
 *
 * How it works.  mcf_log_write() formats the caller's message first, with
 * no lock held, then builds the whole line in one buffer (on the stack for
 * ordinary lines, on the heap for long ones) and hands it to the kernel
 * with a single write(2).  One write per line is what keeps lines from
 * different threads, and from different processes sharing one stderr pipe,
 * from interleaving: the kernel never splits a write of up to PIPE_BUF
 * bytes to a pipe, and O_APPEND files get whole writes too.  Longer lines
 * may still be split by a pipe, which is one reason messages are capped at
 * LOG_MSG_MAX bytes; a capped message gets a "truncated":true field so the
 * reader knows.
 *
 * Settings.  The component and the process fields are the logger settings
 * STYLE.md §9 allows as global state.  They are written at startup but read
 * by every line, so a mutex guards them: the header promises that every
 * function is thread-safe, and a stray late mcf_log_set_field() must not
 * become a use-after-free.  The lock is held only while copying those
 * strings into the line, never across formatting or write(2); growing the
 * line buffer there may call mcf_realloc(), which is safe because alloc.c
 * never logs through this module.  The level and the file descriptor are
 * atomics because they are read before any formatting, on every call,
 * including the disabled ones.
 *
 * Escaping.  The message is arbitrary bytes (it often quotes peer data), so
 * it is escaped as a JSON string: quote, backslash and control characters
 * get their JSON escapes, DEL is escaped as \u007f so a terminal never sees
 * it raw, and bytes that are not well-formed UTF-8 become U+FFFD.  Invalid
 * sequences are replaced as Unicode §3.9 recommends ("maximal subpart"):
 * one U+FFFD per maximal prefix of a valid sequence, else per byte.  This
 * keeps every line valid JSON that jansson, jq and Go all accept.
 *
 * errno is saved and restored around a call, so code may log between a
 * failing system call and its own use of errno.
 */
#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "err.h"

/* At most this many process fields (log.h). */
#define LOG_FIELDS_MAX 8

/* Longest message (after printf formatting) written in full.  32 KiB holds
 * any sane message and a few dumped objects, while a runaway loop that logs
 * a whole watch cache cannot turn into megabyte lines. */
#define LOG_MSG_MAX (32 * 1024)

typedef struct log_field {
	char *key;   /* owned */
	char *value; /* owned */
} log_field;

/* Logger settings (STYLE.md §9: set at startup, read by every line). */
static pthread_mutex_t log_mtx = PTHREAD_MUTEX_INITIALIZER;
static char           *log_component; /* owned; NULL: program name */
static log_field       log_fields[LOG_FIELDS_MAX];
static size_t          log_nfields;
static atomic_int      log_level = MCF_LOG_INFO;
static atomic_int      log_fd    = 2;

/* Keys written by the logger itself; a process field may not reuse them or
 * the line would carry a duplicate key. */
static const char *const log_reserved[] = {
	"ts",
	"level",
	"component",
	"id",
	"msg",
	"truncated",
};

static const char *const log_level_names[] = {
	[MCF_LOG_DEBUG] = "debug",
	[MCF_LOG_INFO]  = "info",
	[MCF_LOG_WARN]  = "warn",
	[MCF_LOG_ERROR] = "error",
	[MCF_LOG_OFF]   = "off",
};

static void
log_lock(void)
{
	if (pthread_mutex_lock(&log_mtx) != 0)
		mcf_panic("log: pthread_mutex_lock failed");
}

static void
log_unlock(void)
{
	if (pthread_mutex_unlock(&log_mtx) != 0)
		mcf_panic("log: pthread_mutex_unlock failed");
}

/* Line buffer: starts in `small` and moves to the heap when a line is
 * longer, so ordinary lines cost no allocation. */
typedef struct log_buf {
	char  *p; /* `small` or owned heap memory */
	size_t len;
	size_t cap;
	char   small[1024];
} log_buf;

static void
lb_init(log_buf *b)
{
	b->p   = b->small;
	b->len = 0;
	b->cap = sizeof(b->small);
}

static void
lb_fini(log_buf *b)
{
	if (b->p != b->small)
		free(b->p);
	b->p = NULL;
}

static void
lb_reserve(log_buf *b, size_t n)
{
	if (b->cap - b->len >= n)
		return;
	size_t cap = b->cap * 2;
	while (cap - b->len < n)
		cap *= 2;
	if (b->p == b->small) {
		char *p = mcf_malloc(cap);
		memcpy(p, b->small, b->len);
		b->p = p;
	} else {
		b->p = mcf_realloc(b->p, cap);
	}
	b->cap = cap;
}

static void
lb_add(log_buf *b, const char *s, size_t n)
{
	lb_reserve(b, n);
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

static void
lb_adds(log_buf *b, const char *s)
{
	lb_add(b, s, strlen(s));
}

/* Length of the UTF-8 sequence at `s` (n > 0 bytes available, s[0] >= 0x80)
 * and whether it is well-formed.  When it is not, the length is that of the
 * maximal subpart to replace with one U+FFFD (at least 1).  The byte ranges
 * are those of Unicode Table 3-7, which exclude overlong forms, surrogates
 * and code points above U+10FFFF. */
static size_t
utf8_seq(const unsigned char *s, size_t n, int *ok)
{
	unsigned char c = s[0];
	size_t        need;
	unsigned char lo = 0x80, hi = 0xbf;

	*ok = 0;
	if (c >= 0xc2 && c <= 0xdf) {
		need = 1;
	} else if (c == 0xe0) {
		need = 2;
		lo   = 0xa0;
	} else if ((c >= 0xe1 && c <= 0xec) || c == 0xee || c == 0xef) {
		need = 2;
	} else if (c == 0xed) {
		need = 2;
		hi   = 0x9f;
	} else if (c == 0xf0) {
		need = 3;
		lo   = 0x90;
	} else if (c >= 0xf1 && c <= 0xf3) {
		need = 3;
	} else if (c == 0xf4) {
		need = 3;
		hi   = 0x8f;
	} else {
		return 1; /* 0x80..0xc1 or 0xf5..0xff never start a sequence */
	}
	for (size_t i = 1; i <= need; i++) {
		if (i >= n)
			return i;
		unsigned char lo_i = i == 1 ? lo : 0x80;
		unsigned char hi_i = i == 1 ? hi : 0xbf;
		if (s[i] < lo_i || s[i] > hi_i)
			return i;
	}
	*ok = 1;
	return need + 1;
}

/* Appends `s[0..n)` as a quoted JSON string (see the file comment). */
static void
lb_add_json(log_buf *b, const char *str, size_t n)
{
	static const char    hex[] = "0123456789abcdef";
	const unsigned char *s     = (const unsigned char *) str;
	size_t               i     = 0;

	lb_add(b, "\"", 1);
	while (i < n) {
		/* Copy the longest run that needs no escaping in one go. */
		size_t j = i;
		while (j < n && s[j] >= 0x20 && s[j] < 0x7f && s[j] != '"'
		    && s[j] != '\\')
			j++;
		if (j > i) {
			lb_add(b, str + i, j - i);
			i = j;
			continue;
		}
		unsigned char c = s[i];
		char          esc[7];
		switch (c) {
		case '"':
			lb_add(b, "\\\"", 2);
			break;
		case '\\':
			lb_add(b, "\\\\", 2);
			break;
		case '\n':
			lb_add(b, "\\n", 2);
			break;
		case '\r':
			lb_add(b, "\\r", 2);
			break;
		case '\t':
			lb_add(b, "\\t", 2);
			break;
		case '\b':
			lb_add(b, "\\b", 2);
			break;
		case '\f':
			lb_add(b, "\\f", 2);
			break;
		default:
			if (c < 0x80) {
				/* Other C0 controls and DEL. */
				memcpy(esc, "\\u00", 4);
				esc[4] = hex[c >> 4];
				esc[5] = hex[c & 0xf];
				lb_add(b, esc, 6);
				break;
			}
			int    ok;
			size_t len = utf8_seq(s + i, n - i, &ok);
			if (ok)
				lb_add(b, str + i, len);
			else
				lb_add(b, "\xef\xbf\xbd", 3); /* U+FFFD */
			i += len;
			continue;
		}
		i++;
	}
	lb_add(b, "\"", 1);
}

/* Appends `,"key":"value"`. */
static void
lb_add_member(log_buf *b, const char *key, const char *value, size_t vlen)
{
	lb_add(b, ",", 1);
	lb_add_json(b, key, strlen(key));
	lb_add(b, ":", 1);
	lb_add_json(b, value, vlen);
}

/* Writes all of `p[0..n)` to the log descriptor.  One write(2) unless the
 * kernel takes less (a full pipe, a signal), in which case the rest follows;
 * other errors drop the line, since there is nowhere left to report them. */
static void
log_emit(const char *p, size_t n)
{
	int fd = atomic_load(&log_fd);

	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		p += w;
		n -= (size_t) w;
	}
}

void
mcf_log_init(const char *component, enum mcf_log_level level)
{
	char *copy = component != NULL ? mcf_strdup(component) : NULL;

	log_lock();
	free(log_component);
	log_component = copy;
	log_unlock();
	mcf_log_set_level(level);
}

void
mcf_log_set_field(const char *key, const char *value)
{
	if (key == NULL || key[0] == '\0')
		mcf_panic("mcf_log_set_field: empty key");
	for (size_t i = 0; i < sizeof(log_reserved) / sizeof(log_reserved[0]);
	     i++) {
		if (strcmp(key, log_reserved[i]) == 0)
			mcf_panic("mcf_log_set_field: reserved key");
	}
	char *v = mcf_strdup(value != NULL ? value : "");

	log_lock();
	for (size_t i = 0; i < log_nfields; i++) {
		if (strcmp(log_fields[i].key, key) == 0) {
			/* Setting a field again replaces its value. */
			free(log_fields[i].value);
			log_fields[i].value = v;
			log_unlock();
			return;
		}
	}
	if (log_nfields == LOG_FIELDS_MAX) {
		log_unlock();
		free(v);
		mcf_panic("mcf_log_set_field: more than 8 fields");
	}
	log_fields[log_nfields].key   = mcf_strdup(key);
	log_fields[log_nfields].value = v;
	log_nfields++;
	log_unlock();
}

void
mcf_log_set_level(enum mcf_log_level level)
{
	if ((int) level < MCF_LOG_DEBUG)
		level = MCF_LOG_DEBUG;
	if ((int) level > MCF_LOG_OFF)
		level = MCF_LOG_OFF;
	atomic_store(&log_level, (int) level);
}

enum mcf_log_level
mcf_log_get_level(void)
{
	return (enum mcf_log_level) atomic_load(&log_level);
}

int
mcf_log_parse_level(const char *s, enum mcf_log_level *out)
{
	if (s == NULL)
		return MCF_EINVAL;
	for (int l = MCF_LOG_DEBUG; l <= MCF_LOG_OFF; l++) {
		/* Case-insensitive, so "INFO" from an environment variable
		 * works as well as "info" from a flag. */
		if (strcasecmp(s, log_level_names[l]) == 0) {
			*out = (enum mcf_log_level) l;
			return MCF_OK;
		}
	}
	return MCF_EINVAL;
}

void
mcf_log_set_fd(int fd)
{
	atomic_store(&log_fd, fd);
}

bool
mcf_log_enabled(enum mcf_log_level level)
{
	return (int) level >= MCF_LOG_DEBUG && (int) level < MCF_LOG_OFF
	    && (int) level >= atomic_load(&log_level);
}

void
mcf_log_write(enum mcf_log_level level, const char *id, const char *fmt, ...)
{
	if (!mcf_log_enabled(level))
		return;

	int saved_errno = errno;

	/* Timestamp first, so it is the time of the call, not of the
	 * formatting or of the lock. */
	struct timespec now;
	struct tm       tm;
	char            ts[64];
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, (long) (now.tv_nsec / 1000));

	/* Format the message: into the stack for short ones, else once more
	 * into a heap buffer of the right size (capped at LOG_MSG_MAX). */
	char    small[512];
	char   *msg = small;
	size_t  mlen;
	bool    truncated = false;
	va_list ap;
	va_start(ap, fmt);
	va_list ap2;
	va_copy(ap2, ap);
	int n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0) {
		snprintf(small, sizeof(small), "(unformattable message)");
		mlen = strlen(small);
	} else if ((size_t) n < sizeof(small)) {
		mlen = (size_t) n;
	} else {
		size_t want = (size_t) n;
		if (want > LOG_MSG_MAX) {
			want      = LOG_MSG_MAX;
			truncated = true;
		}
		msg = mcf_malloc(want + 1);
		vsnprintf(msg, want + 1, fmt, ap2);
		mlen = want;
	}
	va_end(ap2);

	log_buf b;
	lb_init(&b);
	lb_add(&b, "{\"ts\":\"", 7);
	lb_adds(&b, ts);
	lb_add(&b, "\",\"level\":\"", 11);
	lb_adds(&b, log_level_names[level]);
	lb_add(&b, "\"", 1);

	log_lock();
	const char *comp = log_component != NULL
	    ? log_component
	    : program_invocation_short_name;
	lb_add_member(&b, "component", comp, strlen(comp));
	log_unlock();

	if (id != NULL)
		lb_add_member(&b, "id", id, strlen(id));
	lb_add_member(&b, "msg", msg, mlen);
	if (truncated)
		lb_adds(&b, ",\"truncated\":true");

	log_lock();
	for (size_t i = 0; i < log_nfields; i++)
		lb_add_member(&b, log_fields[i].key, log_fields[i].value,
		    strlen(log_fields[i].value));
	log_unlock();

	lb_add(&b, "}\n", 2);
	log_emit(b.p, b.len);

	lb_fini(&b);
	if (msg != small)
		free(msg);
	errno = saved_errno;
}

/*
 * watchstream.h — push parser for Kubernetes watch streams.
 *
 * A watch response body is a sequence of JSON objects, one per line:
 * {"type":"ADDED|MODIFIED|DELETED|BOOKMARK|ERROR","object":{...}}
 * (KUBE_API.md §3.3).  The transport hands us bytes in chunks that split
 * lines anywhere; mcf_ws_feed() reassembles lines in one reusable buffer
 * and calls back once per event.  Bad input from the server never crashes
 * the parser: it ends the stream with an error code and a message, and the
 * caller resumes from mcf_ws_last_rv().  Lines are decoded by the module's
 * own decoder (mcf_ws_decode), which builds the same jansson trees as
 * json_loadb, faster.
 *
 * A parser belongs to one thread; it takes no locks.
 */
#ifndef MCF_COMMON_WATCHSTREAM_H
#define MCF_COMMON_WATCHSTREAM_H

#include <stddef.h>

#include <jansson.h>

#include "err.h"

typedef struct mcf_ws mcf_ws;

typedef enum mcf_ws_type {
	MCF_WS_ADDED = 1,
	MCF_WS_MODIFIED,
	MCF_WS_DELETED,
	MCF_WS_BOOKMARK,
	MCF_WS_ERROR,
} mcf_ws_type;

/* One event, valid only during the callback.  Plain value type. */
typedef struct mcf_ws_event {
	mcf_ws_type type;
	/* Borrowed: a tree of its own (not a member of an envelope object),
	 * released when the callback returns.  The callback may modify it
	 * and may json_incref() it to keep it, also to hand it to other
	 * threads: the parser drops its reference with an atomic decrement,
	 * never with jansson's inline json_decref. */
	json_t *object;
	/* Borrowed from `object`: object.metadata.resourceVersion, or NULL
	 * when absent or not a string. */
	const char *resource_version;
	/* MCF_WS_ERROR only (0 / NULL otherwise): the Status fields `code`
	 * (0 when absent), `reason` and `message` (borrowed from `object`,
	 * NULL when absent). */
	int         code;
	const char *reason;
	const char *message;
	/* The bytes of the line's "object" value when they are compact JSON
	 * (no whitespace between tokens), so that a cache can keep them as
	 * they came instead of serialising `object` again; NULL (and 0) when
	 * the value had whitespace, or the line took the decoder's slow path
	 * (see mcf_ws_decode).  Borrowed from the line: valid only during the
	 * callback. */
	const char *object_text;
	size_t      object_len;
} mcf_ws_event;

/* Called once per event.  Return 0 to continue, non-zero to stop the
 * stream: mcf_ws_feed() then returns MCF_ECANCELED.  The callback must not
 * call mcf_ws_feed/finish/reset/destroy on the same parser. */
typedef int (*mcf_ws_cb)(const mcf_ws_event *ev, void *arg);

/* Creates a parser whose lines (bytes before the '\n', a '\r' included)
 * may be at most `max_line_bytes` long; the line buffer starts small and
 * grows only up to that.  MCF_EINVAL when `max_line_bytes` is 0.  On
 * success `*out` is new (mcf_ws_destroy); on failure it is untouched. */
int mcf_ws_create(mcf_ws **out, size_t max_line_bytes);

/* Frees the parser; NULL is allowed. */
void mcf_ws_destroy(mcf_ws *p);

/* Pushes `len` bytes of the stream (`bytes` may be NULL when `len` is 0).
 * Every complete line is parsed and delivered to `cb` in order; a partial
 * line is kept for the next call.  Blank lines, whitespace-only lines and
 * "\r\n" endings are accepted.
 *
 * Returns MCF_OK, or ends the stream with:
 *   MCF_ETOOBIG   a line exceeds max_line_bytes (detected as soon as the
 *                 limit is passed, before its '\n' arrives);
 *   MCF_EPROTO    a malformed line: not JSON, not an object, missing or
 *                 unknown "type", "object" missing or not an object;
 *   MCF_ECANCELED the callback returned non-zero.
 * Events before the bad line have been delivered.  After an error, every
 * later feed/finish returns the same code until mcf_ws_reset().  `ei`
 * (optional) receives the code and a message.  MCF_EBUSY if called from
 * inside the callback. */
int mcf_ws_feed(mcf_ws *p, const void *bytes, size_t len, mcf_ws_cb cb,
    void *arg, mcf_errinfo *ei);

/* Ends the stream: MCF_EPROTO when a non-blank partial line is pending (a
 * stream cut mid-line), the stored error if the stream already ended with
 * one, MCF_OK otherwise.  The pending bytes are discarded either way. */
int mcf_ws_finish(mcf_ws *p, mcf_errinfo *ei);

/* Clears the pending line and any stored error so the parser can read the
 * next watch response.  Keeps last_rv and the buffer memory. */
void mcf_ws_reset(mcf_ws *p);

/* resourceVersion of the last ADDED/MODIFIED/DELETED/BOOKMARK event the
 * callback accepted (returned 0 for), or NULL before the first.  An event
 * whose callback stops the stream does not count, so a resumed watch sees
 * it again.  Borrowed: valid until the next feed, or destroy. */
const char *mcf_ws_last_rv(const mcf_ws *p);

/* Decodes `len` bytes of `text` (not NUL-terminated; NULL when `len` is 0)
 * holding one JSON object, with the decoder the stream parser uses: the
 * result is what json_loadb(text, len, 0, ...) gives — an equal tree with
 * the same key order, and the same inputs refused — several times faster
 * on Kubernetes objects (strings are scanned eight bytes at a time and
 * copied once).  Inputs the fast path is unsure of (syntax errors,
 * integers of 19 digits or more, real overflow, "\u0000", nesting over
 * 512 levels) are handed to json_loadb.  On success `*out` is new; on
 * failure it is untouched and MCF_EPROTO comes back, with jansson's
 * message (or "not a JSON object") in `ei` (optional).  Any thread. */
int mcf_ws_decode(const char *text, size_t len, json_t **out, mcf_errinfo *ei);

/* "ADDED", "MODIFIED", ...; "UNKNOWN" for other values.  Never NULL. */
const char *mcf_ws_type_name(mcf_ws_type type);

#endif /* MCF_COMMON_WATCHSTREAM_H */

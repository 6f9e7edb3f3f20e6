/*
 * msg.c — message schemas, msgpack encoding and decoding (rules in msg.h).
 *
 * Schemas.  Every message, and every map nested in one (a term, an
 * assignment, a report), is described by a table of fields: wire key,
 * kind, flags and where the value lives in the C struct (offsetof).  One
 * generic encoder and one generic decoder walk these tables, so adding a
 * field is one table line plus one struct member, and the encoder cannot
 * write what the decoder would refuse.
 *
 * Decoding is three passes over untrusted bytes, each bounded:
 *   1. scan: a structural walk of the raw msgpack that checks every length
 *      against the bytes left, refuses reserved bytes, bounds nesting
 *      (MAX_DEPTH) and the number of objects (MAX_OBJECTS).  msgpack-c
 *      allocates an array of N objects as soon as it reads a header that
 *      says N, so a 6-byte payload claiming 2^32 elements must never reach
 *      it; after the scan every claimed element has at least one byte
 *      behind it, and the tree msgpack-c builds is at most a few tens of
 *      bytes per payload byte.
 *   2. msgpack_unpack_next(): builds the object tree (strings point into
 *      the payload; nothing is copied).
 *   3. the schema walk: checks types, ranges, UTF-8, required and
 *      duplicate fields, and copies values into a freshly allocated
 *      mcf_proto_msg, which mcf_proto_msg_destroy() can free at any point
 *      of a failed walk because every array's count is set as soon as the
 *      (zeroed) array is allocated.
 */
#include "msg.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "alloc.h"

#define MAX_DEPTH 16
#define MAX_OBJECTS (1u << 20)

/* ---- schemas ---- */

enum kind {
	K_STR,    /* char *, owned when decoded */
	K_STRBUF, /* char[size] inline */
	K_U32,
	K_U64,
	K_I64,
	K_BOOL,
	K_TERM,   /* mcf_proto_term */
	K_PSTATE, /* enum mcf_proto_pstate, a string on the wire */
	K_LIST,   /* array of maps: elem pointer at off, size_t at cnt_off */
	K_NAMES,  /* array of non-empty strings: char ** at off, count */
};

/* Field flags. */
#define REQ 0x1      /* required */
#define NONEMPTY 0x2 /* a string or term must not be empty */
#define REQ_FROM_COORD                                                        \
	0x4 /* required (and set) when the coordinator sent                   \
	       it, optional from a worker */

typedef struct schema schema;

typedef struct field {
	const char   *key;
	enum kind     kind;
	unsigned      flags;
	size_t        off;
	size_t        cnt_off; /* K_LIST, K_NAMES */
	size_t        size;    /* K_STRBUF: buffer size; K_LIST: elem size */
	const schema *sub;     /* K_LIST */
} field;

struct schema {
	const char  *name;
	const field *f;
	size_t       n;
};

#define NFIELDS(a) (sizeof(a) / sizeof((a)[0]))
#define F(st, key, kind, flags, member)                                       \
	{                                                                     \
		key, kind, flags, offsetof(st, member), 0, 0, NULL            \
	}
#define FBUF(st, key, flags, member)                                          \
	{                                                                     \
		key, K_STRBUF, flags, offsetof(st, member), 0,                \
		    sizeof(((st *) 0)->member), NULL                          \
	}
#define FLIST(st, key, flags, member, count, elem, sub)                       \
	{                                                                     \
		key, K_LIST, flags, offsetof(st, member),                     \
		    offsetof(st, count), sizeof(elem), sub                    \
	}
#define FNAMES(st, key, flags, member, count)                                 \
	{                                                                     \
		key, K_NAMES, flags, offsetof(st, member),                    \
		    offsetof(st, count), 0, NULL                              \
	}

static const field assignment_fields[] = {
	F(mcf_proto_assignment, "name", K_STR, REQ | NONEMPTY, name),
	F(mcf_proto_assignment, "endpoint", K_STR, REQ | NONEMPTY, endpoint),
};
static const schema assignment_schema
    = { "assignment", assignment_fields, NFIELDS(assignment_fields) };

static const field report_fields[] = {
	F(mcf_proto_report, "name", K_STR, REQ | NONEMPTY, name),
	F(mcf_proto_report, "state", K_PSTATE, REQ, state),
	F(mcf_proto_report, "reason", K_STR, 0, reason),
	F(mcf_proto_report, "since_ms", K_I64, 0, since_ms),
};
static const schema report_schema
    = { "report", report_fields, NFIELDS(report_fields) };

static const field hello_fields[] = {
	F(mcf_proto_hello, "major", K_U32, REQ, major),
	F(mcf_proto_hello, "minor", K_U32, REQ, minor),
	F(mcf_proto_hello, "name", K_STR, REQ | NONEMPTY, name),
	F(mcf_proto_hello, "incarnation", K_STR, REQ | NONEMPTY, incarnation),
	F(mcf_proto_hello, "weight", K_U32, REQ, weight),
	F(mcf_proto_hello, "term", K_TERM, 0, term),
	F(mcf_proto_hello, "applied", K_U64, 0, applied),
	/* 1.1 */
	F(mcf_proto_hello, "status_url", K_STR, 0, status_url),
	F(mcf_proto_hello, "lease", K_STR, 0, lease),
};

static const field version_reject_fields[] = {
	F(mcf_proto_version_reject, "major", K_U32, REQ, major),
	F(mcf_proto_version_reject, "min_minor", K_U32, REQ, min_minor),
	F(mcf_proto_version_reject, "max_minor", K_U32, REQ, max_minor),
	F(mcf_proto_version_reject, "peer_major", K_U32, 0, peer_major),
	F(mcf_proto_version_reject, "peer_minor", K_U32, 0, peer_minor),
	FBUF(mcf_proto_version_reject, "message", REQ, message),
};

static const field welcome_fields[] = {
	F(mcf_proto_welcome, "major", K_U32, REQ, major),
	F(mcf_proto_welcome, "minor", K_U32, REQ, minor),
	F(mcf_proto_welcome, "term", K_TERM, REQ | NONEMPTY, term),
	F(mcf_proto_welcome, "leader", K_STR, REQ | NONEMPTY, leader),
	F(mcf_proto_welcome, "status_url", K_STR, 0, status_url),
	F(mcf_proto_welcome, "heartbeat_ms", K_U32, REQ, heartbeat_ms),
};

static const field snapshot_fields[] = {
	F(mcf_proto_snapshot, "term", K_TERM, REQ | NONEMPTY, term),
	F(mcf_proto_snapshot, "version", K_U64, REQ, version),
	FLIST(mcf_proto_snapshot, "projects", REQ, projects, nprojects,
	    mcf_proto_assignment, &assignment_schema),
};

static const field delta_fields[] = {
	F(mcf_proto_delta, "term", K_TERM, REQ | NONEMPTY, term),
	F(mcf_proto_delta, "version", K_U64, REQ, version),
	F(mcf_proto_delta, "base", K_U64, REQ, base),
	FLIST(mcf_proto_delta, "engage", 0, engage, nengage,
	    mcf_proto_assignment, &assignment_schema),
	FNAMES(mcf_proto_delta, "disengage", 0, disengage, ndisengage),
};

static const field ack_fields[] = {
	F(mcf_proto_ack, "term", K_TERM, REQ | NONEMPTY, term),
	F(mcf_proto_ack, "applied", K_U64, REQ, applied),
	F(mcf_proto_ack, "full", K_BOOL, 0, full),
	FLIST(mcf_proto_ack, "projects", 0, projects, nprojects,
	    mcf_proto_report, &report_schema),
};

static const field stopped_fields[] = {
	F(mcf_proto_stopped, "term", K_TERM, REQ | NONEMPTY, term),
	FNAMES(mcf_proto_stopped, "projects", REQ, projects, nprojects),
};

static const field leaving_fields[] = {
	F(mcf_proto_leaving, "deadline_ms", K_U64, 0, deadline_ms),
	F(mcf_proto_leaving, "reason", K_STR, 0, reason),
};

static const field heartbeat_fields[] = {
	F(mcf_proto_heartbeat, "time_ms", K_I64, REQ, time_ms),
	F(mcf_proto_heartbeat, "seq", K_U64, REQ, seq),
	F(mcf_proto_heartbeat, "term", K_TERM, REQ_FROM_COORD | NONEMPTY,
	    term),
	F(mcf_proto_heartbeat, "applied", K_U64, 0, applied),
};

static const field resync_fields[] = {
	F(mcf_proto_resync, "term", K_TERM, 0, term),
	F(mcf_proto_resync, "applied", K_U64, 0, applied),
	F(mcf_proto_resync, "reason", K_STR, 0, reason),
};

static const field not_leader_fields[] = {
	F(mcf_proto_not_leader, "leader", K_STR, 0, leader),
	F(mcf_proto_not_leader, "address", K_STR, 0, address),
	F(mcf_proto_not_leader, "term", K_TERM, 0, term),
};

#define C MCF_PROTO_PEER_COORDINATOR
#define W MCF_PROTO_PEER_WORKER

static const struct {
	schema   s;
	unsigned senders; /* bit (1 << peer) per allowed sender */
} types[MCF_PROTO_MSG_TYPE_MAX + 1] = {
	[MCF_PROTO_MSG_HELLO]
	= { { "HELLO", hello_fields, NFIELDS(hello_fields) }, 1u << W },
	[MCF_PROTO_MSG_VERSION_REJECT]
	= { { "VERSION_REJECT", version_reject_fields,
	        NFIELDS(version_reject_fields) },
	    1u << C },
	[MCF_PROTO_MSG_WELCOME]
	= { { "WELCOME", welcome_fields, NFIELDS(welcome_fields) }, 1u << C },
	[MCF_PROTO_MSG_ASSIGN_SNAPSHOT]
	= { { "ASSIGN_SNAPSHOT", snapshot_fields, NFIELDS(snapshot_fields) },
	    1u << C },
	[MCF_PROTO_MSG_ASSIGN_DELTA]
	= { { "ASSIGN_DELTA", delta_fields, NFIELDS(delta_fields) }, 1u << C },
	[MCF_PROTO_MSG_ACK]
	= { { "ACK", ack_fields, NFIELDS(ack_fields) }, 1u << W },
	[MCF_PROTO_MSG_STOPPED]
	= { { "STOPPED", stopped_fields, NFIELDS(stopped_fields) }, 1u << W },
	[MCF_PROTO_MSG_LEAVING]
	= { { "LEAVING", leaving_fields, NFIELDS(leaving_fields) }, 1u << W },
	[MCF_PROTO_MSG_HEARTBEAT]
	= { { "HEARTBEAT", heartbeat_fields, NFIELDS(heartbeat_fields) },
	    (1u << C) | (1u << W) },
	[MCF_PROTO_MSG_RESYNC_REQUEST]
	= { { "RESYNC_REQUEST", resync_fields, NFIELDS(resync_fields) },
	    1u << W },
	[MCF_PROTO_MSG_NOT_LEADER]
	= { { "NOT_LEADER", not_leader_fields, NFIELDS(not_leader_fields) },
	    1u << C },
};

#undef C
#undef W

static const char *const pstate_names[] = {
	[MCF_PROTO_PSTATE_UNKNOWN]  = "unknown",
	[MCF_PROTO_PSTATE_ENGAGING] = "engaging",
	[MCF_PROTO_PSTATE_SYNCED]   = "synced",
	[MCF_PROTO_PSTATE_FAILING]  = "failing",
	[MCF_PROTO_PSTATE_STOPPED]  = "stopped",
};
#define NPSTATES ((int) NFIELDS(pstate_names))

static bool
type_known(int type)
{
	return type >= 1 && type <= MCF_PROTO_MSG_TYPE_MAX
	    && types[type].s.name != NULL;
}

void
mcf_proto_msg_init(mcf_proto_msg *m, enum mcf_proto_type type)
{
	memset(m, 0, sizeof(*m));
	m->type = type;
}

const char *
mcf_proto_msg_type_name(int type)
{
	return type_known(type) ? types[type].s.name : "UNKNOWN";
}

bool
mcf_proto_msg_allowed(int type, enum mcf_proto_peer from)
{
	if (!type_known(type)
	    || (from != MCF_PROTO_PEER_COORDINATOR
	        && from != MCF_PROTO_PEER_WORKER))
		return false;
	return (types[type].senders & (1u << from)) != 0;
}

const char *
mcf_proto_pstate_name(enum mcf_proto_pstate s)
{
	if ((int) s < 0 || (int) s >= NPSTATES)
		return "unknown";
	return pstate_names[s];
}

static const char *
peer_name(enum mcf_proto_peer p)
{
	return p == MCF_PROTO_PEER_COORDINATOR ? "coordinator" : "worker";
}

/* True when the field must be present for a message from `from`. */
static bool
required(const field *f, enum mcf_proto_peer from)
{
	return (f->flags & REQ) != 0
	    || ((f->flags & REQ_FROM_COORD) != 0
	        && from == MCF_PROTO_PEER_COORDINATOR);
}

/* Formats a field path for error messages; a path too long for `cap` is
 * cut, which only shortens a message. */
static void mkpath(char *dst, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
mkpath(char *dst, size_t cap, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(dst, cap, fmt, ap);
	va_end(ap);
}

/* A term flagged NONEMPTY must be set when the field is required from
 * this sender: a worker's HEARTBEAT may carry an empty term. */
static bool
term_must_be_set(const field *f, enum mcf_proto_peer from)
{
	return (f->flags & NONEMPTY) != 0 && required(f, from);
}

/* ---- UTF-8 ---- */

/* True when s[0..n) is well-formed UTF-8 (no overlongs, no surrogates,
 * nothing above U+10FFFF) without NUL bytes. */
static bool
utf8_ok(const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *) str;
	size_t               i = 0;
	while (i < n) {
		unsigned c = s[i];
		if (c == 0)
			return false;
		if (c < 0x80) {
			i++;
			continue;
		}
		size_t   len;
		unsigned min, cp;
		if (c >= 0xc2 && c <= 0xdf) {
			len = 2;
			min = 0x80;
			cp  = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			len = 3;
			min = 0x800;
			cp  = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			len = 4;
			min = 0x10000;
			cp  = c & 0x07;
		} else {
			return false;
		}
		if (n - i < len)
			return false;
		for (size_t k = 1; k < len; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff
		    || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += len;
	}
	return true;
}

/* ---- encoding ---- */

typedef struct enc {
	msgpack_packer      pk;
	enum mcf_proto_peer from;
	const char         *msg; /* message name for errors */
	mcf_errinfo        *ei;
} enc;

/* msgpack-c reports only allocation failures, which are fatal here. */
static void
chk(int rv)
{
	if (rv != 0)
		mcf_panic("proto msg: msgpack packing ran out of memory");
}

static void
pack_str(enc *e, const char *s, size_t n)
{
	chk(msgpack_pack_str(&e->pk, n));
	chk(msgpack_pack_str_body(&e->pk, s, n));
}

static void
pack_key(enc *e, const char *k)
{
	pack_str(e, k, strlen(k));
}

static int
enc_bad(enc *e, const char *path, const char *what)
{
	return mcf_errinfo_set(
	    e->ei, MCF_EINVAL, "%s: field '%s': %s", e->msg, path, what);
}

static int
enc_check_str(enc *e, const char *path, const char *s, bool nonempty)
{
	if (s == NULL)
		return enc_bad(e, path, "is NULL");
	if (nonempty && s[0] == '\0')
		return enc_bad(e, path, "must not be empty");
	if (!utf8_ok(s, strlen(s)))
		return enc_bad(e, path, "is not valid UTF-8");
	return MCF_OK;
}

static int enc_map(
    enc *e, const schema *s, const void *base, const char *prefix);

/* True when an optional field holds a value worth sending. */
static bool
present(const field *f, const void *base)
{
	const char *p = (const char *) base + f->off;
	switch (f->kind) {
	case K_STR:
		return *(char *const *) p != NULL;
	case K_STRBUF:
		return true;
	case K_U32:
		return *(const uint32_t *) p != 0;
	case K_U64:
		return *(const uint64_t *) p != 0;
	case K_I64:
		return *(const int64_t *) p != 0;
	case K_BOOL:
		return *(const bool *) p;
	case K_TERM:
		return mcf_proto_term_is_set((const mcf_proto_term *) p);
	case K_PSTATE:
		return true;
	case K_LIST:
	case K_NAMES:
		return *(const size_t *) ((const char *) base + f->cnt_off)
		    != 0;
	}
	return false;
}

static int
enc_term(enc *e, const char *path, const mcf_proto_term *t, bool nonempty)
{
	size_t n = strnlen(t->uid, sizeof(t->uid));
	if (n == sizeof(t->uid))
		return enc_bad(e, path, "uid is not NUL-terminated");
	if (nonempty && n == 0)
		return enc_bad(e, path, "must be set (a leader's term)");
	if (!utf8_ok(t->uid, n))
		return enc_bad(e, path, "uid is not valid UTF-8");
	if (t->transitions < 0)
		return enc_bad(e, path, "transitions is negative");
	chk(msgpack_pack_map(&e->pk, 2));
	pack_key(e, "uid");
	pack_str(e, t->uid, n);
	pack_key(e, "transitions");
	chk(msgpack_pack_int64(&e->pk, t->transitions));
	return MCF_OK;
}

static int
enc_field(enc *e, const field *f, const void *base, const char *path)
{
	const char *p = (const char *) base + f->off;
	int         rv;

	switch (f->kind) {
	case K_STR: {
		const char *s = *(char *const *) p;
		if ((rv = enc_check_str(e, path, s, f->flags & NONEMPTY)) != 0)
			return rv;
		pack_str(e, s, strlen(s));
		return MCF_OK;
	}
	case K_STRBUF: {
		size_t n = strnlen(p, f->size);
		if (n == f->size)
			return enc_bad(e, path, "is not NUL-terminated");
		if ((rv = enc_check_str(e, path, p, f->flags & NONEMPTY)) != 0)
			return rv;
		pack_str(e, p, n);
		return MCF_OK;
	}
	case K_U32:
		chk(msgpack_pack_uint32(&e->pk, *(const uint32_t *) p));
		return MCF_OK;
	case K_U64:
		chk(msgpack_pack_uint64(&e->pk, *(const uint64_t *) p));
		return MCF_OK;
	case K_I64:
		chk(msgpack_pack_int64(&e->pk, *(const int64_t *) p));
		return MCF_OK;
	case K_BOOL:
		chk(*(const bool *) p ? msgpack_pack_true(&e->pk)
		                      : msgpack_pack_false(&e->pk));
		return MCF_OK;
	case K_TERM:
		return enc_term(e, path, (const mcf_proto_term *) p,
		    term_must_be_set(f, e->from));
	case K_PSTATE: {
		int st = (int) *(const enum mcf_proto_pstate *) p;
		if (st <= MCF_PROTO_PSTATE_UNKNOWN || st >= NPSTATES)
			return enc_bad(
			    e, path, "is not a known project state");
		pack_key(e, pstate_names[st]);
		return MCF_OK;
	}
	case K_LIST: {
		const char *arr = *(const char *const *) p;
		size_t      n
		    = *(const size_t *) ((const char *) base + f->cnt_off);
		if (n > 0 && arr == NULL)
			return enc_bad(e, path, "has a count but no array");
		if (n > UINT32_MAX)
			return enc_bad(e, path, "has too many entries");
		chk(msgpack_pack_array(&e->pk, n));
		for (size_t i = 0; i < n; i++) {
			char sub[192];
			mkpath(sub, sizeof(sub), "%s[%zu]", path, i);
			rv = enc_map(e, f->sub, arr + i * f->size, sub);
			if (rv != MCF_OK)
				return rv;
		}
		return MCF_OK;
	}
	case K_NAMES: {
		char *const *arr = *(char *const *const *) p;
		size_t       n
		    = *(const size_t *) ((const char *) base + f->cnt_off);
		if (n > 0 && arr == NULL)
			return enc_bad(e, path, "has a count but no array");
		if (n > UINT32_MAX)
			return enc_bad(e, path, "has too many entries");
		chk(msgpack_pack_array(&e->pk, n));
		for (size_t i = 0; i < n; i++) {
			char sub[192];
			mkpath(sub, sizeof(sub), "%s[%zu]", path, i);
			if ((rv = enc_check_str(e, sub, arr[i], true)) != 0)
				return rv;
			pack_str(e, arr[i], strlen(arr[i]));
		}
		return MCF_OK;
	}
	}
	return enc_bad(e, path, "has an unknown kind");
}

static int
enc_map(enc *e, const schema *s, const void *base, const char *prefix)
{
	size_t n = 0;
	for (size_t i = 0; i < s->n; i++)
		if (required(&s->f[i], e->from) || present(&s->f[i], base))
			n++;
	chk(msgpack_pack_map(&e->pk, n));
	for (size_t i = 0; i < s->n; i++) {
		const field *f = &s->f[i];
		if (!required(f, e->from) && !present(f, base))
			continue;
		char path[192];
		if (prefix[0] != '\0')
			mkpath(path, sizeof(path), "%s.%s", prefix, f->key);
		else
			mkpath(path, sizeof(path), "%s", f->key);
		pack_key(e, f->key);
		int rv = enc_field(e, f, base, path);
		if (rv != MCF_OK)
			return rv;
	}
	return MCF_OK;
}

int
mcf_proto_msg_encode(const mcf_proto_msg *m, enum mcf_proto_peer from,
    uint8_t **out, size_t *len, mcf_errinfo *ei)
{
	if (m == NULL || out == NULL || len == NULL)
		return mcf_errinfo_set(ei, MCF_EINVAL, "missing argument");
	if (!type_known((int) m->type))
		return mcf_errinfo_set(
		    ei, MCF_EINVAL, "unknown message type %d", (int) m->type);
	if (!mcf_proto_msg_allowed((int) m->type, from))
		return mcf_errinfo_set(ei, MCF_EINVAL, "a %s does not send %s",
		    peer_name(from), types[m->type].s.name);
	if (m->type == MCF_PROTO_MSG_ASSIGN_DELTA
	    && m->u.delta.version <= m->u.delta.base)
		return mcf_errinfo_set(ei, MCF_EINVAL,
		    "ASSIGN_DELTA: version %llu is not above base %llu",
		    (unsigned long long) m->u.delta.version,
		    (unsigned long long) m->u.delta.base);
	if (m->type == MCF_PROTO_MSG_ASSIGN_SNAPSHOT
	    && m->u.snapshot.version == 0)
		return mcf_errinfo_set(ei, MCF_EINVAL,
		    "ASSIGN_SNAPSHOT: version must be at least 1");

	msgpack_sbuffer sb;
	enc             e;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&e.pk, &sb, msgpack_sbuffer_write);
	e.from = from;
	e.msg  = types[m->type].s.name;
	e.ei   = ei;
	int rv = enc_map(&e, &types[m->type].s, &m->u, "");
	if (rv != MCF_OK) {
		msgpack_sbuffer_destroy(&sb);
		return rv;
	}
	*len = sb.size;
	*out = (uint8_t *) msgpack_sbuffer_release(&sb);
	if (*out == NULL) /* an empty buffer cannot happen: a map header */
		mcf_panic("proto msg: empty encoding");
	msgpack_sbuffer_destroy(&sb);
	mcf_errinfo_clear(ei);
	return MCF_OK;
}

/* ---- pass 1: structural scan ---- */

typedef struct scanner {
	const uint8_t *p;
	size_t         len;
	size_t         pos;
	size_t         objects;
	const char    *err; /* static text */
} scanner;

static bool
sc_need(scanner *sc, uint64_t n)
{
	if (n > sc->len - sc->pos) {
		sc->err = "truncated msgpack";
		return false;
	}
	return true;
}

static uint64_t
sc_uint(scanner *sc, int bytes)
{
	uint64_t v = 0;
	for (int i = 0; i < bytes; i++)
		v = v << 8 | sc->p[sc->pos + (size_t) i];
	sc->pos += (size_t) bytes;
	return v;
}

/* Reads a big-endian length of `bytes` bytes, then skips `extra` plus
 * that many bytes. */
static bool
sc_skip_sized(scanner *sc, int bytes, int extra)
{
	if (!sc_need(sc, (uint64_t) bytes))
		return false;
	uint64_t n = sc_uint(sc, bytes) + (uint64_t) extra;
	if (!sc_need(sc, n))
		return false;
	sc->pos += (size_t) n;
	return true;
}

static bool sc_obj(scanner *sc, int depth);

static bool
sc_items(scanner *sc, uint64_t n, int depth)
{
	/* Each item takes at least one byte. */
	if (n > sc->len - sc->pos) {
		sc->err = "truncated msgpack: a container claims more "
		          "elements than there are bytes left";
		return false;
	}
	for (uint64_t i = 0; i < n; i++)
		if (!sc_obj(sc, depth + 1))
			return false;
	return true;
}

static bool
sc_obj(scanner *sc, int depth)
{
	if (depth > MAX_DEPTH) {
		sc->err = "msgpack nested too deeply";
		return false;
	}
	if (++sc->objects > MAX_OBJECTS) {
		sc->err = "too many msgpack objects";
		return false;
	}
	if (!sc_need(sc, 1))
		return false;
	uint8_t b = sc->p[sc->pos++];
	if (b <= 0x7f || b >= 0xe0) /* fixint */
		return true;
	if (b <= 0x8f)
		return sc_items(sc, 2u * (b & 0x0f), depth);
	if (b <= 0x9f)
		return sc_items(sc, b & 0x0f, depth);
	if (b <= 0xbf) {
		if (!sc_need(sc, b & 0x1f))
			return false;
		sc->pos += b & 0x1f;
		return true;
	}
	switch (b) {
	case 0xc0: /* nil */
	case 0xc2: /* false */
	case 0xc3: /* true */
		return true;
	case 0xc4: /* bin 8/16/32 */
	case 0xd9: /* str 8/16/32 */
		return sc_skip_sized(sc, 1, 0);
	case 0xc5:
	case 0xda:
		return sc_skip_sized(sc, 2, 0);
	case 0xc6:
	case 0xdb:
		return sc_skip_sized(sc, 4, 0);
	case 0xc7: /* ext 8/16/32: length, type byte, data */
		return sc_skip_sized(sc, 1, 1);
	case 0xc8:
		return sc_skip_sized(sc, 2, 1);
	case 0xc9:
		return sc_skip_sized(sc, 4, 1);
	case 0xcc: /* uint 8 .. int 64, float 32/64, fixext 1..16 */
	case 0xd0:
		return sc_need(sc, 1) && (sc->pos += 1, true);
	case 0xcd:
	case 0xd1:
	case 0xd4:
		return sc_need(sc, 2) && (sc->pos += 2, true);
	case 0xd5:
		return sc_need(sc, 3) && (sc->pos += 3, true);
	case 0xca:
	case 0xce:
	case 0xd2:
		return sc_need(sc, 4) && (sc->pos += 4, true);
	case 0xd6:
		return sc_need(sc, 5) && (sc->pos += 5, true);
	case 0xcb:
	case 0xcf:
	case 0xd3:
		return sc_need(sc, 8) && (sc->pos += 8, true);
	case 0xd7:
		return sc_need(sc, 9) && (sc->pos += 9, true);
	case 0xd8:
		return sc_need(sc, 17) && (sc->pos += 17, true);
	case 0xdc: /* array 16/32 */
		return sc_need(sc, 2) && sc_items(sc, sc_uint(sc, 2), depth);
	case 0xdd:
		return sc_need(sc, 4) && sc_items(sc, sc_uint(sc, 4), depth);
	case 0xde: /* map 16/32 */
		return sc_need(sc, 2)
		    && sc_items(sc, 2 * sc_uint(sc, 2), depth);
	case 0xdf:
		return sc_need(sc, 4)
		    && sc_items(sc, 2 * sc_uint(sc, 4), depth);
	default: /* 0xc1, never used */
		sc->err = "msgpack byte 0xc1 is reserved";
		return false;
	}
}

/* ---- pass 3: schema walk ---- */

typedef struct dec {
	enum mcf_proto_peer from;
	const char         *msg; /* message name */
	mcf_proto_reject   *rej;
} dec;

static int dec_bad(dec *d, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
dec_bad(dec *d, const char *path, const char *fmt, ...)
{
	char    what[160];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	return mcf_proto_reject_set(d->rej, MCF_PROTO_REJECT_MALFORMED,
	    "%s: field '%s': %s", d->msg, path, what);
}

static const char *
obj_type_name(const msgpack_object *o)
{
	switch (o->type) {
	case MSGPACK_OBJECT_NIL:
		return "nil";
	case MSGPACK_OBJECT_BOOLEAN:
		return "a boolean";
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		return "an unsigned integer";
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		return "a negative integer";
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		return "a float";
	case MSGPACK_OBJECT_STR:
		return "a string";
	case MSGPACK_OBJECT_ARRAY:
		return "an array";
	case MSGPACK_OBJECT_MAP:
		return "a map";
	case MSGPACK_OBJECT_BIN:
		return "binary data";
	case MSGPACK_OBJECT_EXT:
		return "an extension";
	}
	return "an unknown object";
}

static int
dec_str(dec *d, const char *path, const msgpack_object *o, bool nonempty,
    const char **s, size_t *n)
{
	if (o->type != MSGPACK_OBJECT_STR)
		return dec_bad(
		    d, path, "expected a string, got %s", obj_type_name(o));
	if (nonempty && o->via.str.size == 0)
		return dec_bad(d, path, "must not be empty");
	if (!utf8_ok(o->via.str.ptr, o->via.str.size))
		return dec_bad(
		    d, path, "is not valid UTF-8 or holds a NUL byte");
	*s = o->via.str.ptr;
	*n = o->via.str.size;
	return MCF_OK;
}

static int
dec_u64(dec *d, const char *path, const msgpack_object *o, uint64_t max,
    uint64_t *v)
{
	if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
		return dec_bad(d, path, "expected an unsigned integer, got %s",
		    obj_type_name(o));
	if (o->via.u64 > max)
		return dec_bad(d, path, "%llu is above the maximum %llu",
		    (unsigned long long) o->via.u64, (unsigned long long) max);
	*v = o->via.u64;
	return MCF_OK;
}

static int
dec_i64(dec *d, const char *path, const msgpack_object *o, int64_t *v)
{
	if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
		*v = o->via.i64;
		return MCF_OK;
	}
	if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
		if (o->via.u64 > (uint64_t) INT64_MAX)
			return dec_bad(d, path,
			    "%llu is above the maximum of a signed 64-bit "
			    "integer",
			    (unsigned long long) o->via.u64);
		*v = (int64_t) o->via.u64;
		return MCF_OK;
	}
	return dec_bad(
	    d, path, "expected an integer, got %s", obj_type_name(o));
}

static bool
key_is(const msgpack_object *k, const char *name)
{
	size_t n = strlen(name);
	return k->type == MSGPACK_OBJECT_STR && k->via.str.size == n
	    && memcmp(k->via.str.ptr, name, n) == 0;
}

static int
dec_term(dec *d, const char *path, const msgpack_object *o, bool nonempty,
    mcf_proto_term *t)
{
	bool seen_uid = false, seen_tr = false;
	char sub[192];
	int  rv;

	if (o->type != MSGPACK_OBJECT_MAP)
		return dec_bad(d, path,
		    "expected a map {uid, transitions}, got %s",
		    obj_type_name(o));
	for (uint32_t i = 0; i < o->via.map.size; i++) {
		const msgpack_object *k = &o->via.map.ptr[i].key;
		const msgpack_object *v = &o->via.map.ptr[i].val;
		if (v->type == MSGPACK_OBJECT_NIL)
			continue;
		if (key_is(k, "uid")) {
			const char *s;
			size_t      n;
			mkpath(sub, sizeof(sub), "%s.uid", path);
			if (seen_uid)
				return dec_bad(d, sub, "appears twice");
			seen_uid = true;
			if ((rv = dec_str(d, sub, v, false, &s, &n)) != 0)
				return rv;
			if (n >= sizeof(t->uid))
				return dec_bad(d, sub,
				    "is %zu bytes long; at most %zu allowed",
				    n, sizeof(t->uid) - 1);
			memcpy(t->uid, s, n);
			t->uid[n] = '\0';
		} else if (key_is(k, "transitions")) {
			mkpath(sub, sizeof(sub), "%s.transitions", path);
			if (seen_tr)
				return dec_bad(d, sub, "appears twice");
			seen_tr = true;
			if ((rv = dec_i64(d, sub, v, &t->transitions)) != 0)
				return rv;
			if (t->transitions < 0)
				return dec_bad(d, sub, "must not be negative");
		}
	}
	if (!seen_uid)
		return dec_bad(d, path, "missing required field 'uid'");
	if (!seen_tr)
		return dec_bad(
		    d, path, "missing required field 'transitions'");
	if (nonempty && t->uid[0] == '\0')
		return dec_bad(d, path, "must be set (a leader's term)");
	return MCF_OK;
}

static int dec_map(dec *d, const schema *s, const msgpack_object *o,
    void *base, const char *prefix);

static int
dec_field(dec *d, const field *f, const msgpack_object *o, void *base,
    const char *path)
{
	char       *p = (char *) base + f->off;
	const char *s;
	size_t      n;
	uint64_t    u = 0;
	int         rv;

	switch (f->kind) {
	case K_STR:
		if ((rv = dec_str(d, path, o, f->flags & NONEMPTY, &s, &n))
		    != 0)
			return rv;
		*(char **) p = mcf_strndup(s, n);
		return MCF_OK;
	case K_STRBUF:
		if ((rv = dec_str(d, path, o, f->flags & NONEMPTY, &s, &n))
		    != 0)
			return rv;
		if (n >= f->size)
			n = f->size
			    - 1; /* a human sentence: cut, not refused */
		memcpy(p, s, n);
		p[n] = '\0';
		return MCF_OK;
	case K_U32:
		if ((rv = dec_u64(d, path, o, UINT32_MAX, &u)) != 0)
			return rv;
		*(uint32_t *) p = (uint32_t) u;
		return MCF_OK;
	case K_U64:
		return dec_u64(d, path, o, UINT64_MAX, (uint64_t *) p);
	case K_I64:
		return dec_i64(d, path, o, (int64_t *) p);
	case K_BOOL:
		if (o->type != MSGPACK_OBJECT_BOOLEAN)
			return dec_bad(d, path, "expected a boolean, got %s",
			    obj_type_name(o));
		*(bool *) p = o->via.boolean;
		return MCF_OK;
	case K_TERM:
		return dec_term(d, path, o, term_must_be_set(f, d->from),
		    (mcf_proto_term *) p);
	case K_PSTATE: {
		if ((rv = dec_str(d, path, o, false, &s, &n)) != 0)
			return rv;
		int st = MCF_PROTO_PSTATE_UNKNOWN;
		for (int i = 1; i < NPSTATES; i++)
			if (strlen(pstate_names[i]) == n
			    && memcmp(pstate_names[i], s, n) == 0)
				st = i;
		*(enum mcf_proto_pstate *) p = (enum mcf_proto_pstate) st;
		return MCF_OK;
	}
	case K_LIST:
	case K_NAMES: {
		if (o->type != MSGPACK_OBJECT_ARRAY)
			return dec_bad(d, path, "expected an array, got %s",
			    obj_type_name(o));
		size_t cnt   = o->via.array.size;
		size_t elem  = f->kind == K_LIST ? f->size : sizeof(char *);
		char  *arr   = cnt > 0 ? mcf_calloc(cnt, elem) : NULL;
		*(char **) p = arr;
		*(size_t *) ((char *) base + f->cnt_off) = cnt;
		for (size_t i = 0; i < cnt; i++) {
			char sub[192];
			mkpath(sub, sizeof(sub), "%s[%zu]", path, i);
			const msgpack_object *e = &o->via.array.ptr[i];
			if (f->kind == K_LIST) {
				rv = dec_map(
				    d, f->sub, e, arr + i * elem, sub);
			} else {
				rv = dec_str(d, sub, e, true, &s, &n);
				if (rv == MCF_OK)
					((char **) arr)[i] = mcf_strndup(s, n);
			}
			if (rv != MCF_OK)
				return rv;
		}
		return MCF_OK;
	}
	}
	return dec_bad(d, path, "has an unknown kind");
}

static int
dec_map(dec *d, const schema *s, const msgpack_object *o, void *base,
    const char *prefix)
{
	uint32_t seen = 0; /* keys met (schemas have fewer than 32 fields) */
	uint32_t set  = 0; /* fields given a non-nil value */
	char     path[160];
	int      rv;

	if (o->type != MSGPACK_OBJECT_MAP) {
		if (prefix[0] == '\0')
			return mcf_proto_reject_set(d->rej,
			    MCF_PROTO_REJECT_MALFORMED,
			    "%s: payload is %s, not a map", d->msg,
			    obj_type_name(o));
		return dec_bad(
		    d, prefix, "expected a map, got %s", obj_type_name(o));
	}
	for (uint32_t i = 0; i < o->via.map.size; i++) {
		const msgpack_object *k = &o->via.map.ptr[i].key;
		const msgpack_object *v = &o->via.map.ptr[i].val;
		size_t                j;
		for (j = 0; j < s->n; j++)
			if (key_is(k, s->f[j].key))
				break;
		if (j == s->n)
			continue; /* unknown key: a newer minor's field */
		if (prefix[0] != '\0')
			mkpath(
			    path, sizeof(path), "%s.%s", prefix, s->f[j].key);
		else
			mkpath(path, sizeof(path), "%s", s->f[j].key);
		if (seen & (1u << j))
			return dec_bad(d, path, "appears twice");
		seen |= 1u << j;
		if (v->type == MSGPACK_OBJECT_NIL)
			continue; /* nil: as if absent */
		if ((rv = dec_field(d, &s->f[j], v, base, path)) != MCF_OK)
			return rv;
		set |= 1u << j;
	}
	for (size_t j = 0; j < s->n; j++) {
		const field *f = &s->f[j];
		char        *p = (char *) base + f->off;
		if ((set & (1u << j)) != 0)
			continue;
		if (required(f, d->from)) {
			if (prefix[0] != '\0')
				return mcf_proto_reject_set(d->rej,
				    MCF_PROTO_REJECT_MALFORMED,
				    "%s: field '%s': missing required field "
				    "'%s'",
				    d->msg, prefix, f->key);
			return mcf_proto_reject_set(d->rej,
			    MCF_PROTO_REJECT_MALFORMED,
			    "%s: missing required field '%s'%s", d->msg,
			    f->key,
			    (f->flags & REQ) == 0 ? " (from a coordinator)"
			                          : "");
		}
		if (f->kind == K_STR)
			*(char **) p = mcf_strdup("");
	}
	return MCF_OK;
}

/* Frees what the decoder allocated inside one map's struct. */
static void
free_map(const schema *s, void *base)
{
	for (size_t j = 0; j < s->n; j++) {
		const field *f = &s->f[j];
		char        *p = (char *) base + f->off;
		switch (f->kind) {
		case K_STR:
			free(*(char **) p);
			*(char **) p = NULL;
			break;
		case K_LIST: {
			char  *arr = *(char **) p;
			size_t n   = *(size_t *) ((char *) base + f->cnt_off);
			for (size_t i = 0; arr != NULL && i < n; i++)
				free_map(f->sub, arr + i * f->size);
			free(arr);
			*(char **) p = NULL;
			break;
		}
		case K_NAMES: {
			char **arr = *(char ***) p;
			size_t n   = *(size_t *) ((char *) base + f->cnt_off);
			for (size_t i = 0; arr != NULL && i < n; i++)
				free(arr[i]);
			free(arr);
			*(char ***) p = NULL;
			break;
		}
		default:
			break;
		}
	}
}

void
mcf_proto_msg_destroy(mcf_proto_msg *m)
{
	if (m == NULL)
		return;
	if (type_known((int) m->type))
		free_map(&types[m->type].s, &m->u);
	free(m);
}

int
mcf_proto_msg_decode(int type, int minor, const void *payload, size_t len,
    enum mcf_proto_peer from, mcf_proto_msg **out, mcf_proto_reject *rej)
{
	mcf_proto_reject_clear(rej);
	if (!type_known(type)) {
		if (minor > MCF_PROTO_MINOR)
			return mcf_proto_reject_set(rej,
			    MCF_PROTO_REJECT_UNKNOWN_TYPE,
			    "message type %d from a peer of minor version %d "
			    "(this side %d.%d) ignored",
			    type, minor, MCF_PROTO_MAJOR, MCF_PROTO_MINOR);
		return mcf_proto_reject_set(rej, MCF_PROTO_REJECT_MALFORMED,
		    "unknown message type %d from a peer of minor version %d",
		    type, minor);
	}
	if (!mcf_proto_msg_allowed(type, from))
		return mcf_proto_reject_set(rej, MCF_PROTO_REJECT_UNEXPECTED,
		    "%s received from a %s, which never sends it",
		    types[type].s.name, peer_name(from));

	scanner sc = { payload, len, 0, 0, NULL };
	if (payload == NULL || len == 0)
		return mcf_proto_reject_set(rej, MCF_PROTO_REJECT_MALFORMED,
		    "%s: empty payload", types[type].s.name);
	if (!sc_obj(&sc, 0))
		return mcf_proto_reject_set(rej, MCF_PROTO_REJECT_MALFORMED,
		    "%s: %s at byte %zu of %zu", types[type].s.name, sc.err,
		    sc.pos, len);
	if (sc.pos != len)
		return mcf_proto_reject_set(rej, MCF_PROTO_REJECT_MALFORMED,
		    "%s: %zu bytes of trailing data after the msgpack map",
		    types[type].s.name, len - sc.pos);

	msgpack_unpacked u;
	size_t           off = 0;
	msgpack_unpacked_init(&u);
	msgpack_unpack_return ur
	    = msgpack_unpack_next(&u, (const char *) payload, len, &off);
	if (ur != MSGPACK_UNPACK_SUCCESS || off != len) {
		msgpack_unpacked_destroy(&u);
		return mcf_proto_reject_set(rej, MCF_PROTO_REJECT_MALFORMED,
		    "%s: msgpack could not be decoded (msgpack-c %d)",
		    types[type].s.name, (int) ur);
	}

	mcf_proto_msg *m = mcf_calloc(1, sizeof(*m));
	m->type          = (enum mcf_proto_type) type;
	dec d            = { from, types[type].s.name, rej };
	int rv           = dec_map(&d, &types[type].s, &u.data, &m->u, "");
	msgpack_unpacked_destroy(&u);
	if (rv == MCF_OK && type == MCF_PROTO_MSG_ASSIGN_DELTA
	    && m->u.delta.version <= m->u.delta.base)
		rv = mcf_proto_reject_set(rej, MCF_PROTO_REJECT_MALFORMED,
		    "ASSIGN_DELTA: version %llu is not above base %llu",
		    (unsigned long long) m->u.delta.version,
		    (unsigned long long) m->u.delta.base);
	if (rv == MCF_OK && type == MCF_PROTO_MSG_ASSIGN_SNAPSHOT
	    && m->u.snapshot.version == 0)
		rv = mcf_proto_reject_set(rej, MCF_PROTO_REJECT_MALFORMED,
		    "ASSIGN_SNAPSHOT: version must be at least 1");
	if (rv != MCF_OK) {
		mcf_proto_msg_destroy(m);
		return rv;
	}
	*out = m;
	return MCF_OK;
}

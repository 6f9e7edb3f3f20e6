/*
 * proto_test.c — tests for proto/: round trips of every message type, a
 * frame of the older minor version 1.0 checked in as bytes, forward
 * compatibility (unknown fields and types), every rejection reason (bad
 * msgpack, wrong types, missing fields, oversize, bad HMAC, wrong key,
 * replay, wrong direction, lower term, other major), the previous key,
 * version negotiation, the key file (formats, errors, rotation), the
 * rejection counters and their log lines, and 2 x 100k random mutations
 * of valid frames and payloads that must never crash (run it under ASan).
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <msgpack.h>

#include "conn.h"
#include "err.h"
#include "frame.h"
#include "keys.h"
#include "log.h"
#include "metrics.h"
#include "msg.h"
#include "reject.h"
#include "replay.h"
#include "term.h"
#include "version.h"

/* ---- fixtures ---- */

#define KEY_A "mcfleet-test-key-0123456789abcdef" /* 33 bytes */
#define KEY_B "second-test-key-for-rotation-0000"
#define KEY_C "a-key-nobody-in-the-fleet-has-0000"

static void
keyset(mcf_proto_keyset *ks, const char *cur, const char *prev)
{
	assert_int_equal(mcf_proto_keyset_init(ks, cur, strlen(cur), prev,
	                     prev != NULL ? strlen(prev) : 0, NULL),
	    MCF_OK);
}

/* A coordinator and a worker, each with its own conn, replay tracker and
 * counters, sharing keys (A current, B previous unless changed). */
typedef struct pair {
	mcf_proto_keys         *keys;
	mcf_proto_replay       *rp_c, *rp_w;
	mcf_proto_reject_stats *st_c, *st_w;
	mcf_proto_conn         *coord, *worker;
} pair;

static void
pair_init_keys(pair *p, mcf_proto_keys *keys)
{
	mcf_proto_conn_opts o;
	memset(p, 0, sizeof(*p));
	p->keys = keys;
	assert_int_equal(mcf_proto_replay_create(&p->rp_c, 0), MCF_OK);
	assert_int_equal(mcf_proto_replay_create(&p->rp_w, 0), MCF_OK);
	assert_int_equal(mcf_proto_reject_stats_create(&p->st_c), MCF_OK);
	assert_int_equal(mcf_proto_reject_stats_create(&p->st_w), MCF_OK);
	memset(&o, 0, sizeof(o));
	o.self   = MCF_PROTO_PEER_COORDINATOR;
	o.keys   = keys;
	o.replay = p->rp_c;
	o.stats  = p->st_c;
	o.peer   = "test-worker";
	assert_int_equal(mcf_proto_conn_create(&p->coord, &o, NULL), MCF_OK);
	o.self   = MCF_PROTO_PEER_WORKER;
	o.replay = p->rp_w;
	o.stats  = p->st_w;
	o.peer   = "test-coordinator";
	assert_int_equal(mcf_proto_conn_create(&p->worker, &o, NULL), MCF_OK);
}

static void
pair_init(pair *p)
{
	mcf_proto_keyset ks;
	mcf_proto_keys  *keys = NULL;
	keyset(&ks, KEY_A, KEY_B);
	assert_int_equal(mcf_proto_keys_create_static(&keys, &ks), MCF_OK);
	mcf_proto_keyset_clear(&ks);
	pair_init_keys(p, keys);
}

static void
pair_fini(pair *p)
{
	mcf_proto_conn_destroy(p->coord);
	mcf_proto_conn_destroy(p->worker);
	mcf_proto_reject_stats_destroy(p->st_c);
	mcf_proto_reject_stats_destroy(p->st_w);
	mcf_proto_replay_destroy(p->rp_c);
	mcf_proto_replay_destroy(p->rp_w);
	mcf_proto_keys_destroy(p->keys);
}

/* Seals `m` on `from` and opens it on `to`; returns the decoded copy. */
static mcf_proto_msg *
through(mcf_proto_conn *from, mcf_proto_conn *to, const mcf_proto_msg *m)
{
	uint8_t         *f   = NULL;
	size_t           len = 0;
	mcf_errinfo      ei;
	mcf_proto_msg   *out = NULL;
	mcf_proto_hdr    h;
	mcf_proto_reject rej;

	int rv = mcf_proto_conn_seal(from, m, &f, &len, &ei);
	if (rv != MCF_OK)
		fail_msg("seal: %s", ei.msg);
	rv = mcf_proto_conn_open(to, f, len, &out, &h, &rej);
	if (rv != MCF_OK)
		fail_msg("open: %s: %s",
		    mcf_proto_reject_reason_name(rej.reason), rej.msg);
	assert_int_equal(h.major, MCF_PROTO_MAJOR);
	assert_int_equal(h.minor, MCF_PROTO_MINOR);
	assert_int_equal(h.type, m->type);
	assert_int_equal(h.session, mcf_proto_conn_session(from));
	assert_int_equal(out->type, m->type);
	free(f);
	return out;
}

static void
term_eq(const mcf_proto_term *a, const mcf_proto_term *b)
{
	assert_string_equal(a->uid, b->uid);
	assert_int_equal(a->transitions, b->transitions);
}

static mcf_proto_term
mkterm(const char *uid, int64_t tr)
{
	mcf_proto_term t;
	mcf_proto_term_set(&t, uid, tr);
	return t;
}

#define UID1 "0b3c6a2e-5d1f-4c8e-9a7b-2f4e6d8c0a1b"
#define UID2 "7d9e1f20-3a4b-4c5d-8e6f-708192a3b4c5"

/* A small msgpack builder for hand-made payloads. */
typedef struct mp {
	msgpack_sbuffer sb;
	msgpack_packer  pk;
} mp;

static void
mp_init(mp *b)
{
	msgpack_sbuffer_init(&b->sb);
	msgpack_packer_init(&b->pk, &b->sb, msgpack_sbuffer_write);
}

static void
mp_fini(mp *b)
{
	msgpack_sbuffer_destroy(&b->sb);
}

static void
mp_str(mp *b, const char *s)
{
	msgpack_pack_str(&b->pk, strlen(s));
	msgpack_pack_str_body(&b->pk, s, strlen(s));
}

static void
mp_term(mp *b, const char *uid, int64_t tr)
{
	msgpack_pack_map(&b->pk, 2);
	mp_str(b, "uid");
	mp_str(b, uid);
	mp_str(b, "transitions");
	msgpack_pack_int64(&b->pk, tr);
}

/* Re-packs the top-level map `in` with `key` replaced by what `val` packs,
 * removed (val NULL), or added (key absent). */
typedef void (*val_fn)(msgpack_packer *pk);

static void
repack(const uint8_t *in, size_t len, const char *key, val_fn val, mp *out)
{
	msgpack_unpacked u;
	size_t           off = 0;
	msgpack_unpacked_init(&u);
	assert_int_equal(msgpack_unpack_next(&u, (const char *) in, len, &off),
	    MSGPACK_UNPACK_SUCCESS);
	assert_int_equal(u.data.type, MSGPACK_OBJECT_MAP);
	const msgpack_object_map *m     = &u.data.via.map;
	bool                      found = false;
	size_t                    n     = 0;
	for (uint32_t i = 0; i < m->size; i++) {
		const msgpack_object *k     = &m->ptr[i].key;
		bool                  match = k->via.str.size == strlen(key)
		    && memcmp(k->via.str.ptr, key, strlen(key)) == 0;
		found |= match;
		n += (!match || val != NULL) ? 1 : 0;
	}
	if (!found && val != NULL)
		n++;
	mp_init(out);
	msgpack_pack_map(&out->pk, n);
	for (uint32_t i = 0; i < m->size; i++) {
		const msgpack_object *k     = &m->ptr[i].key;
		bool                  match = k->via.str.size == strlen(key)
		    && memcmp(k->via.str.ptr, key, strlen(key)) == 0;
		if (match && val == NULL)
			continue;
		msgpack_pack_object(&out->pk, *k);
		if (match)
			val(&out->pk);
		else
			msgpack_pack_object(&out->pk, m->ptr[i].val);
	}
	if (!found && val != NULL) {
		msgpack_pack_str(&out->pk, strlen(key));
		msgpack_pack_str_body(&out->pk, key, strlen(key));
		val(&out->pk);
	}
	msgpack_unpacked_destroy(&u);
}

static void
fill_hello(mcf_proto_msg *m)
{
	mcf_proto_msg_init(m, MCF_PROTO_MSG_HELLO);
	m->u.hello.major       = MCF_PROTO_MAJOR;
	m->u.hello.minor       = MCF_PROTO_MINOR;
	m->u.hello.name        = "mcfleet-worker-2";
	m->u.hello.incarnation = "6f1c9e2a-0001";
	m->u.hello.weight      = 3;
	m->u.hello.term        = mkterm(UID1, 7);
	m->u.hello.applied     = 41;
	m->u.hello.status_url  = "http://10.0.0.7:8081/status";
	m->u.hello.lease       = "mcfleet-worker-mcfleet-worker-2";
}

static void
encode_ok(const mcf_proto_msg *m, enum mcf_proto_peer from, uint8_t **out,
    size_t *len)
{
	mcf_errinfo ei;
	int         rv = mcf_proto_msg_encode(m, from, out, len, &ei);
	if (rv != MCF_OK)
		fail_msg("encode: %s", ei.msg);
}

/* Decodes and expects a rejection whose message holds `want`. */
static void
expect_reject(int type, const void *p, size_t len, enum mcf_proto_peer from,
    enum mcf_proto_reason reason, const char *want)
{
	mcf_proto_msg   *m = NULL;
	mcf_proto_reject rej;
	int              rv = mcf_proto_msg_decode(
	                 type, MCF_PROTO_MINOR, p, len, from, &m, &rej);
	if (rv == MCF_OK) {
		mcf_proto_msg_destroy(m);
		fail_msg("decoded, expected a rejection with \"%s\"", want);
	}
	assert_null(m);
	assert_int_equal(rej.reason, reason);
	assert_int_equal(rv, mcf_proto_reject_code(reason));
	if (want != NULL && strstr(rej.msg, want) == NULL)
		fail_msg(
		    "rejection \"%s\" does not mention \"%s\"", rej.msg, want);
}

static mcf_proto_msg *
decode_ok(
    int type, int minor, const void *p, size_t len, enum mcf_proto_peer from)
{
	mcf_proto_msg   *m = NULL;
	mcf_proto_reject rej;
	if (mcf_proto_msg_decode(type, minor, p, len, from, &m, &rej)
	    != MCF_OK)
		fail_msg("decode: %s", rej.msg);
	return m;
}

/* ---- round trips ---- */

static void
test_proto_roundtrip_hello(void **state)
{
	pair          p;
	mcf_proto_msg m;
	pair_init(&p);
	fill_hello(&m);
	mcf_proto_msg *d = through(p.worker, p.coord, &m);
	assert_int_equal(d->u.hello.major, MCF_PROTO_MAJOR);
	assert_int_equal(d->u.hello.minor, MCF_PROTO_MINOR);
	assert_string_equal(d->u.hello.name, "mcfleet-worker-2");
	assert_string_equal(d->u.hello.incarnation, "6f1c9e2a-0001");
	assert_int_equal(d->u.hello.weight, 3);
	term_eq(&d->u.hello.term, &m.u.hello.term);
	assert_int_equal(d->u.hello.applied, 41);
	assert_string_equal(d->u.hello.status_url, m.u.hello.status_url);
	assert_string_equal(d->u.hello.lease, m.u.hello.lease);
	mcf_proto_msg_destroy(d);

	/* Optional fields left out come back empty, never NULL. */
	m.u.hello.term       = mkterm("", 0);
	m.u.hello.applied    = 0;
	m.u.hello.status_url = NULL;
	m.u.hello.lease      = NULL;
	d                    = through(p.worker, p.coord, &m);
	assert_false(mcf_proto_term_is_set(&d->u.hello.term));
	assert_int_equal(d->u.hello.applied, 0);
	assert_string_equal(d->u.hello.status_url, "");
	assert_string_equal(d->u.hello.lease, "");
	mcf_proto_msg_destroy(d);
	assert_int_equal(mcf_proto_reject_stats_accepted(p.st_c), 2);
	pair_fini(&p);
}

static void
test_proto_roundtrip_version_reject(void **state)
{
	pair          p;
	mcf_proto_msg m;
	pair_init(&p);
	mcf_proto_msg_init(&m, MCF_PROTO_MSG_VERSION_REJECT);
	assert_int_equal(
	    mcf_proto_version_negotiate(2, 0, NULL, &m.u.version_reject),
	    MCF_EUNSUPP);
	mcf_proto_msg *d = through(p.coord, p.worker, &m);
	assert_int_equal(d->u.version_reject.major, 1);
	assert_int_equal(d->u.version_reject.min_minor, MCF_PROTO_MINOR_MIN);
	assert_int_equal(d->u.version_reject.max_minor, MCF_PROTO_MINOR);
	assert_int_equal(d->u.version_reject.peer_major, 2);
	assert_int_equal(d->u.version_reject.peer_minor, 0);
	assert_string_equal(
	    d->u.version_reject.message, m.u.version_reject.message);
	mcf_proto_msg_destroy(d);
	pair_fini(&p);
}

static void
test_proto_roundtrip_welcome(void **state)
{
	pair          p;
	mcf_proto_msg m;
	pair_init(&p);
	mcf_proto_msg_init(&m, MCF_PROTO_MSG_WELCOME);
	m.u.welcome.major        = 1;
	m.u.welcome.minor        = 0;
	m.u.welcome.term         = mkterm(UID1, 4);
	m.u.welcome.leader       = "mcfleet-coordinator-7c9f-abcde";
	m.u.welcome.status_url   = "http://10.0.0.3:8080/status";
	m.u.welcome.heartbeat_ms = 1000;
	mcf_proto_msg *d         = through(p.coord, p.worker, &m);
	assert_int_equal(d->u.welcome.major, 1);
	assert_int_equal(d->u.welcome.minor, 0);
	term_eq(&d->u.welcome.term, &m.u.welcome.term);
	assert_string_equal(d->u.welcome.leader, m.u.welcome.leader);
	assert_string_equal(d->u.welcome.status_url, m.u.welcome.status_url);
	assert_int_equal(d->u.welcome.heartbeat_ms, 1000);
	mcf_proto_msg_destroy(d);
	pair_fini(&p);
}

static mcf_proto_assignment assigns[] = {
	{ "alpha",
	    "https://core.example:6443/apis/resourcemanager.miloapis.com/"
	    "v1alpha1/projects/alpha/control-plane" },
	{ "beta",
	    "https://milo-apiserver.project-beta.svc.cluster.local:6443" },
	{ "gamma-\xc3\xa9t\xc3\xa9", "http://127.0.0.1:40123" },
};

static void
assigns_eq(const mcf_proto_assignment *a, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		assert_string_equal(a[i].name, assigns[i].name);
		assert_string_equal(a[i].endpoint, assigns[i].endpoint);
	}
}

static void
test_proto_roundtrip_snapshot(void **state)
{
	pair          p;
	mcf_proto_msg m;
	pair_init(&p);
	mcf_proto_msg_init(&m, MCF_PROTO_MSG_ASSIGN_SNAPSHOT);
	m.u.snapshot.term      = mkterm(UID1, 4);
	m.u.snapshot.version   = 17;
	m.u.snapshot.projects  = assigns;
	m.u.snapshot.nprojects = 3;
	mcf_proto_msg *d       = through(p.coord, p.worker, &m);
	term_eq(&d->u.snapshot.term, &m.u.snapshot.term);
	assert_int_equal(d->u.snapshot.version, 17);
	assert_int_equal(d->u.snapshot.nprojects, 3);
	assigns_eq(d->u.snapshot.projects, 3);
	mcf_proto_msg_destroy(d);

	/* An empty table is a valid snapshot: stop everything. */
	m.u.snapshot.projects  = NULL;
	m.u.snapshot.nprojects = 0;
	m.u.snapshot.version   = 18;
	d                      = through(p.coord, p.worker, &m);
	assert_int_equal(d->u.snapshot.nprojects, 0);
	assert_null(d->u.snapshot.projects);
	mcf_proto_msg_destroy(d);
	pair_fini(&p);
}

static void
test_proto_roundtrip_delta(void **state)
{
	pair          p;
	mcf_proto_msg m;
	char         *gone[] = { "delta", "epsilon" };
	pair_init(&p);
	mcf_proto_msg_init(&m, MCF_PROTO_MSG_ASSIGN_DELTA);
	m.u.delta.term       = mkterm(UID1, 4);
	m.u.delta.version    = 18;
	m.u.delta.base       = 17;
	m.u.delta.engage     = assigns;
	m.u.delta.nengage    = 2;
	m.u.delta.disengage  = gone;
	m.u.delta.ndisengage = 2;
	mcf_proto_msg *d     = through(p.coord, p.worker, &m);
	assert_int_equal(d->u.delta.version, 18);
	assert_int_equal(d->u.delta.base, 17);
	assert_int_equal(d->u.delta.nengage, 2);
	assigns_eq(d->u.delta.engage, 2);
	assert_int_equal(d->u.delta.ndisengage, 2);
	assert_string_equal(d->u.delta.disengage[0], "delta");
	assert_string_equal(d->u.delta.disengage[1], "epsilon");
	mcf_proto_msg_destroy(d);

	/* Both lists are optional. */
	m.u.delta.nengage    = 0;
	m.u.delta.ndisengage = 0;
	d                    = through(p.coord, p.worker, &m);
	assert_int_equal(d->u.delta.nengage, 0);
	assert_int_equal(d->u.delta.ndisengage, 0);
	mcf_proto_msg_destroy(d);
	pair_fini(&p);
}

static void
test_proto_roundtrip_ack(void **state)
{
	pair             p;
	mcf_proto_msg    m;
	mcf_proto_report r[] = {
		{ "alpha", MCF_PROTO_PSTATE_SYNCED, "", 1732460000123 },
		{ "beta", MCF_PROTO_PSTATE_FAILING,
		    "dial tcp 10.0.0.9:6443: connection refused",
		    1732460001000 },
		{ "gamma", MCF_PROTO_PSTATE_ENGAGING, NULL, 0 },
		{ "delta", MCF_PROTO_PSTATE_STOPPED, "disengaged", -5 },
	};
	pair_init(&p);
	mcf_proto_msg_init(&m, MCF_PROTO_MSG_ACK);
	m.u.ack.term      = mkterm(UID1, 4);
	m.u.ack.applied   = 18;
	m.u.ack.full      = true;
	m.u.ack.projects  = r;
	m.u.ack.nprojects = 4;
	mcf_proto_msg *d  = through(p.worker, p.coord, &m);
	term_eq(&d->u.ack.term, &m.u.ack.term);
	assert_int_equal(d->u.ack.applied, 18);
	assert_true(d->u.ack.full);
	assert_int_equal(d->u.ack.nprojects, 4);
	for (size_t i = 0; i < 4; i++) {
		assert_string_equal(d->u.ack.projects[i].name, r[i].name);
		assert_int_equal(d->u.ack.projects[i].state, r[i].state);
		assert_string_equal(d->u.ack.projects[i].reason,
		    r[i].reason != NULL ? r[i].reason : "");
		assert_int_equal(d->u.ack.projects[i].since_ms, r[i].since_ms);
	}
	assert_string_equal(
	    mcf_proto_pstate_name(d->u.ack.projects[1].state), "failing");
	mcf_proto_msg_destroy(d);
	pair_fini(&p);
}

static void
test_proto_roundtrip_stopped(void **state)
{
	pair          p;
	mcf_proto_msg m;
	char         *names[] = { "alpha", "beta" };
	pair_init(&p);
	mcf_proto_msg_init(&m, MCF_PROTO_MSG_STOPPED);
	m.u.stopped.term      = mkterm(UID1, 4);
	m.u.stopped.projects  = names;
	m.u.stopped.nprojects = 2;
	mcf_proto_msg *d      = through(p.worker, p.coord, &m);
	term_eq(&d->u.stopped.term, &m.u.stopped.term);
	assert_int_equal(d->u.stopped.nprojects, 2);
	assert_string_equal(d->u.stopped.projects[0], "alpha");
	assert_string_equal(d->u.stopped.projects[1], "beta");
	mcf_proto_msg_destroy(d);
	pair_fini(&p);
}

static void
test_proto_roundtrip_leaving(void **state)
{
	pair          p;
	mcf_proto_msg m;
	pair_init(&p);
	mcf_proto_msg_init(&m, MCF_PROTO_MSG_LEAVING);
	mcf_proto_msg *d = through(p.worker, p.coord, &m);
	assert_int_equal(d->u.leaving.deadline_ms, 0);
	assert_string_equal(d->u.leaving.reason, "");
	mcf_proto_msg_destroy(d);
	m.u.leaving.deadline_ms = 25000;
	m.u.leaving.reason      = "SIGTERM";
	d                       = through(p.worker, p.coord, &m);
	assert_int_equal(d->u.leaving.deadline_ms, 25000);
	assert_string_equal(d->u.leaving.reason, "SIGTERM");
	mcf_proto_msg_destroy(d);
	pair_fini(&p);
}

static void
test_proto_roundtrip_heartbeat(void **state)
{
	pair          p;
	mcf_proto_msg m;
	pair_init(&p);
	mcf_proto_msg_init(&m, MCF_PROTO_MSG_HEARTBEAT);
	m.u.heartbeat.time_ms = 1732460000123;
	m.u.heartbeat.seq     = 99;
	m.u.heartbeat.term    = mkterm(UID1, 4);
	mcf_proto_msg *d      = through(p.coord, p.worker, &m);
	assert_int_equal(d->u.heartbeat.time_ms, 1732460000123);
	assert_int_equal(d->u.heartbeat.seq, 99);
	term_eq(&d->u.heartbeat.term, &m.u.heartbeat.term);
	mcf_proto_msg_destroy(d);

	/* A worker's heartbeat needs no term; it may carry its version. */
	m.u.heartbeat.term    = mkterm("", 0);
	m.u.heartbeat.applied = 18;
	d                     = through(p.worker, p.coord, &m);
	assert_false(mcf_proto_term_is_set(&d->u.heartbeat.term));
	assert_int_equal(d->u.heartbeat.applied, 18);
	mcf_proto_msg_destroy(d);

	/* ...but a coordinator's must. */
	uint8_t    *f = NULL;
	size_t      len;
	mcf_errinfo ei;
	assert_int_equal(
	    mcf_proto_conn_seal(p.coord, &m, &f, &len, &ei), MCF_EINVAL);
	assert_non_null(strstr(ei.msg, "term"));
	assert_null(f);
	pair_fini(&p);
}

static void
test_proto_roundtrip_resync(void **state)
{
	pair          p;
	mcf_proto_msg m;
	pair_init(&p);
	mcf_proto_msg_init(&m, MCF_PROTO_MSG_RESYNC_REQUEST);
	m.u.resync.term    = mkterm(UID1, 4);
	m.u.resync.applied = 16;
	m.u.resync.reason  = "delta base 17, applied 16";
	mcf_proto_msg *d   = through(p.worker, p.coord, &m);
	term_eq(&d->u.resync.term, &m.u.resync.term);
	assert_int_equal(d->u.resync.applied, 16);
	assert_string_equal(d->u.resync.reason, m.u.resync.reason);
	mcf_proto_msg_destroy(d);
	pair_fini(&p);
}

static void
test_proto_roundtrip_not_leader(void **state)
{
	pair          p;
	mcf_proto_msg m;
	pair_init(&p);
	mcf_proto_msg_init(&m, MCF_PROTO_MSG_NOT_LEADER);
	m.u.not_leader.leader  = "mcfleet-coordinator-7c9f-abcde";
	m.u.not_leader.address = "tcp://10.0.0.3:7400";
	m.u.not_leader.term    = mkterm(UID2, 1);
	mcf_proto_msg *d       = through(p.coord, p.worker, &m);
	assert_string_equal(d->u.not_leader.leader, m.u.not_leader.leader);
	assert_string_equal(d->u.not_leader.address, m.u.not_leader.address);
	term_eq(&d->u.not_leader.term, &m.u.not_leader.term);
	mcf_proto_msg_destroy(d);
	pair_fini(&p);
}

/* ---- older and newer minor versions ---- */

/*
 * A HELLO exactly as a protocol 1.0 worker sends it, before 1.1 added
 * "status_url" and "lease".  Built by hand, not by our encoder:
 *   header: "MCFP" 1 0 type=1 key_id=0xaa session=0x0102030405060708 seq=1
 *           payload_len=136
 *   payload: {"major":1, "minor":0, "name":"mcfleet-worker-0",
 *             "incarnation":"6f1c9e2a", "weight":1,
 *             "term":{"uid":"0b3c6a2e-5d1f-4c8e-9a7b-2f4e6d8c0a1b",
 *                     "transitions":3},
 *             "applied":42}
 *   mac: HMAC-SHA256 with key "mcfleet-test-key-0123456789abcdef"
 * (key id 0xaa = first byte of SHA-256("mcfleet-proto-key-id" || key)).
 * Never regenerate this from the current code: it is the old wire format.
 */
/* clang-format off */
static const uint8_t hello_1_0[] = {
	0x4d, 0x43, 0x46, 0x50, 0x01, 0x00, 0x01, 0xaa, 0x01, 0x02, 0x03, 0x04,
	0x05, 0x06, 0x07, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
	0x00, 0x00, 0x00, 0x88, 0x87, 0xa5, 0x6d, 0x61, 0x6a, 0x6f, 0x72, 0x01,
	0xa5, 0x6d, 0x69, 0x6e, 0x6f, 0x72, 0x00, 0xa4, 0x6e, 0x61, 0x6d, 0x65,
	0xb0, 0x6d, 0x63, 0x66, 0x6c, 0x65, 0x65, 0x74, 0x2d, 0x77, 0x6f, 0x72,
	0x6b, 0x65, 0x72, 0x2d, 0x30, 0xab, 0x69, 0x6e, 0x63, 0x61, 0x72, 0x6e,
	0x61, 0x74, 0x69, 0x6f, 0x6e, 0xa8, 0x36, 0x66, 0x31, 0x63, 0x39, 0x65,
	0x32, 0x61, 0xa6, 0x77, 0x65, 0x69, 0x67, 0x68, 0x74, 0x01, 0xa4, 0x74,
	0x65, 0x72, 0x6d, 0x82, 0xa3, 0x75, 0x69, 0x64, 0xd9, 0x24, 0x30, 0x62,
	0x33, 0x63, 0x36, 0x61, 0x32, 0x65, 0x2d, 0x35, 0x64, 0x31, 0x66, 0x2d,
	0x34, 0x63, 0x38, 0x65, 0x2d, 0x39, 0x61, 0x37, 0x62, 0x2d, 0x32, 0x66,
	0x34, 0x65, 0x36, 0x64, 0x38, 0x63, 0x30, 0x61, 0x31, 0x62, 0xab, 0x74,
	0x72, 0x61, 0x6e, 0x73, 0x69, 0x74, 0x69, 0x6f, 0x6e, 0x73, 0x03, 0xa7,
	0x61, 0x70, 0x70, 0x6c, 0x69, 0x65, 0x64, 0x2a, 0xe0, 0x3b, 0xed, 0x71,
	0xb2, 0x0a, 0x97, 0xc9, 0xbe, 0x65, 0x4c, 0x2f, 0x2b, 0x90, 0xda, 0x03,
	0x87, 0x4a, 0x24, 0x90, 0x6e, 0xaa, 0x61, 0x4a, 0x8e, 0x64, 0xea, 0x2f,
	0x57, 0x47, 0xde, 0x39,
};
/* clang-format on */

static void
test_proto_hello_from_1_0_worker(void **state)
{
	pair             p;
	mcf_proto_msg   *m = NULL;
	mcf_proto_hdr    h;
	mcf_proto_reject rej;
	uint32_t         minor = 99;

	pair_init(&p);
	assert_int_equal(mcf_proto_keys_id(KEY_A, strlen(KEY_A)), 0xaa);
	assert_int_equal(mcf_proto_conn_open(p.coord, hello_1_0,
	                     sizeof(hello_1_0), &m, &h, &rej),
	    MCF_OK);
	assert_int_equal(h.major, 1);
	assert_int_equal(h.minor, 0);
	assert_int_equal(h.session, 0x0102030405060708ULL);
	assert_int_equal(h.seq, 1);
	assert_int_equal(m->type, MCF_PROTO_MSG_HELLO);
	assert_int_equal(m->u.hello.major, 1);
	assert_int_equal(m->u.hello.minor, 0);
	assert_string_equal(m->u.hello.name, "mcfleet-worker-0");
	assert_string_equal(m->u.hello.incarnation, "6f1c9e2a");
	assert_int_equal(m->u.hello.weight, 1);
	assert_string_equal(m->u.hello.term.uid, UID1);
	assert_int_equal(m->u.hello.term.transitions, 3);
	assert_int_equal(m->u.hello.applied, 42);
	/* The 1.1 fields take their defaults. */
	assert_string_equal(m->u.hello.status_url, "");
	assert_string_equal(m->u.hello.lease, "");
	/* And the coordinator serves it at 1.0. */
	assert_int_equal(mcf_proto_version_negotiate(
	                     m->u.hello.major, m->u.hello.minor, &minor, NULL),
	    MCF_OK);
	assert_int_equal(minor, 0);
	mcf_proto_msg_destroy(m);
	pair_fini(&p);
}

static void
pack_zone(msgpack_packer *pk)
{
	msgpack_pack_str(pk, 9);
	msgpack_pack_str_body(pk, "europe-w1", 9);
}

static void
pack_nested(msgpack_packer *pk)
{
	msgpack_pack_array(pk, 3);
	msgpack_pack_float(pk, 1.5f);
	msgpack_pack_bin(pk, 2);
	msgpack_pack_bin_body(pk, "\x00\xff", 2);
	msgpack_pack_map(pk, 1);
	msgpack_pack_int(
	    pk, 7); /* a non-string key, inside an unknown value */
	msgpack_pack_nil(pk);
}

static void
pack_nil(msgpack_packer *pk)
{
	msgpack_pack_nil(pk);
}

static void
test_proto_unknown_fields_ignored(void **state)
{
	mcf_proto_msg m;
	uint8_t      *enc = NULL;
	size_t        len = 0;
	mp            a, b, c;

	/* A HELLO from a newer minor with fields this build does not know. */
	fill_hello(&m);
	encode_ok(&m, MCF_PROTO_PEER_WORKER, &enc, &len);
	repack(enc, len, "zone", pack_zone, &a);
	repack(
	    (uint8_t *) a.sb.data, a.sb.size, "capabilities", pack_nested, &b);
	/* nil is as if absent, for an optional field. */
	repack((uint8_t *) b.sb.data, b.sb.size, "status_url", pack_nil, &c);
	mcf_proto_msg *d = decode_ok(MCF_PROTO_MSG_HELLO, MCF_PROTO_MINOR + 1,
	    c.sb.data, c.sb.size, MCF_PROTO_PEER_WORKER);
	assert_string_equal(d->u.hello.name, "mcfleet-worker-2");
	assert_string_equal(d->u.hello.status_url, "");
	assert_string_equal(d->u.hello.lease, m.u.hello.lease);
	mcf_proto_msg_destroy(d);
	mp_fini(&a);
	mp_fini(&b);
	mp_fini(&c);
	free(enc);
}

static void
test_proto_unknown_type(void **state)
{
	pair             p;
	mcf_proto_keyset ks;
	mcf_proto_hdr    h = { 0 };
	mcf_proto_msg   *m = NULL;
	mcf_proto_reject rej;
	uint8_t         *f;
	size_t           len;
	const uint8_t    payload[] = { 0x80 }; /* {} */

	pair_init(&p);
	keyset(&ks, KEY_A, NULL);
	/* Type 42 from a newer minor: ignored and counted as unknown_type. */
	h.major   = MCF_PROTO_MAJOR;
	h.minor   = MCF_PROTO_MINOR + 1;
	h.type    = 42;
	h.session = 77;
	h.seq     = 1;
	assert_int_equal(
	    mcf_proto_frame_seal(&h, &ks, payload, 1, 0, &f, &len, NULL),
	    MCF_OK);
	assert_int_equal(
	    mcf_proto_conn_open(p.coord, f, len, &m, NULL, &rej), MCF_EUNSUPP);
	assert_null(m);
	assert_int_equal(rej.reason, MCF_PROTO_REJECT_UNKNOWN_TYPE);
	free(f);
	/* The same type from our own minor is malformed. */
	h.minor = MCF_PROTO_MINOR;
	h.seq   = 2;
	assert_int_equal(
	    mcf_proto_frame_seal(&h, &ks, payload, 1, 0, &f, &len, NULL),
	    MCF_OK);
	assert_int_equal(
	    mcf_proto_conn_open(p.coord, f, len, &m, NULL, &rej), MCF_EPROTO);
	assert_int_equal(rej.reason, MCF_PROTO_REJECT_MALFORMED);
	assert_non_null(strstr(rej.msg, "unknown message type 42"));
	free(f);
	assert_int_equal(
	    mcf_proto_reject_stats_get(p.st_c, MCF_PROTO_REJECT_UNKNOWN_TYPE),
	    1);
	assert_int_equal(
	    mcf_proto_reject_stats_get(p.st_c, MCF_PROTO_REJECT_MALFORMED), 1);
	mcf_proto_keyset_clear(&ks);
	pair_fini(&p);
}

/* ---- malformed payloads ---- */

static void
test_proto_reject_truncated_msgpack(void **state)
{
	mcf_proto_msg    m;
	mcf_proto_report r[] = {
		{ "alpha", MCF_PROTO_PSTATE_SYNCED, "ok", 1 },
		{ "beta", MCF_PROTO_PSTATE_FAILING, "no route", 2 },
	};
	uint8_t *enc = NULL;
	size_t   len = 0;

	mcf_proto_msg_init(&m, MCF_PROTO_MSG_ACK);
	m.u.ack.term      = mkterm(UID1, 4);
	m.u.ack.applied   = 3;
	m.u.ack.projects  = r;
	m.u.ack.nprojects = 2;
	encode_ok(&m, MCF_PROTO_PEER_WORKER, &enc, &len);
	/* Every proper prefix is refused, never read past. */
	for (size_t cut = 0; cut < len; cut++) {
		uint8_t *copy = malloc(cut + 1);
		memcpy(copy, enc, cut);
		expect_reject(MCF_PROTO_MSG_ACK, copy, cut,
		    MCF_PROTO_PEER_WORKER, MCF_PROTO_REJECT_MALFORMED,
		    cut == 0 ? "empty payload" : "truncated");
		free(copy);
	}
	/* Trailing bytes after the map are refused too. */
	uint8_t *longer = malloc(len + 1);
	memcpy(longer, enc, len);
	longer[len] = 0xc0;
	expect_reject(MCF_PROTO_MSG_ACK, longer, len + 1,
	    MCF_PROTO_PEER_WORKER, MCF_PROTO_REJECT_MALFORMED, "trailing");
	free(longer);
	free(enc);
}

static void
pack_str_one(msgpack_packer *pk)
{
	msgpack_pack_str(pk, 1);
	msgpack_pack_str_body(pk, "1", 1);
}
static void
pack_int_5(msgpack_packer *pk)
{
	msgpack_pack_int(pk, 5);
}
static void
pack_neg(msgpack_packer *pk)
{
	msgpack_pack_int(pk, -1);
}
static void
pack_big(msgpack_packer *pk)
{
	msgpack_pack_uint64(pk, (uint64_t) UINT32_MAX + 1);
}
static void
pack_array0(msgpack_packer *pk)
{
	msgpack_pack_array(pk, 0);
}
static void
pack_true(msgpack_packer *pk)
{
	msgpack_pack_true(pk);
}
static void
pack_float(msgpack_packer *pk)
{
	msgpack_pack_double(pk, 1.0);
}
static void
pack_bin(msgpack_packer *pk)
{
	msgpack_pack_bin(pk, 3);
	msgpack_pack_bin_body(pk, "abc", 3);
}
static void
pack_empty_str(msgpack_packer *pk)
{
	msgpack_pack_str(pk, 0);
}
static void
pack_bad_utf8(msgpack_packer *pk)
{
	msgpack_pack_str(pk, 3);
	msgpack_pack_str_body(pk, "a\xc0\xaf", 3); /* overlong '/' */
}
static void
pack_nul_str(msgpack_packer *pk)
{
	msgpack_pack_str(pk, 3);
	msgpack_pack_str_body(pk, "a\0b", 3);
}
static void
pack_term_neg(msgpack_packer *pk)
{
	msgpack_pack_map(pk, 2);
	msgpack_pack_str(pk, 3);
	msgpack_pack_str_body(pk, "uid", 3);
	msgpack_pack_str(pk, 1);
	msgpack_pack_str_body(pk, "u", 1);
	msgpack_pack_str(pk, 11);
	msgpack_pack_str_body(pk, "transitions", 11);
	msgpack_pack_int(pk, -3);
}
static void
pack_term_long_uid(msgpack_packer *pk)
{
	char uid[200];
	memset(uid, 'u', sizeof(uid));
	msgpack_pack_map(pk, 2);
	msgpack_pack_str(pk, 3);
	msgpack_pack_str_body(pk, "uid", 3);
	msgpack_pack_str(pk, sizeof(uid));
	msgpack_pack_str_body(pk, uid, sizeof(uid));
	msgpack_pack_str(pk, 11);
	msgpack_pack_str_body(pk, "transitions", 11);
	msgpack_pack_int(pk, 1);
}
static void
pack_term_no_uid(msgpack_packer *pk)
{
	msgpack_pack_map(pk, 1);
	msgpack_pack_str(pk, 11);
	msgpack_pack_str_body(pk, "transitions", 11);
	msgpack_pack_int(pk, 1);
}

static void
test_proto_reject_wrong_types(void **state)
{
	mcf_proto_msg m;
	uint8_t      *enc = NULL;
	size_t        len = 0;
	static const struct {
		const char *key;
		val_fn      val;
		const char *want;
	} cases[] = {
		{ "weight", pack_str_one,
		    "field 'weight': expected an unsigned integer, got a "
		    "string" },
		{ "weight", pack_neg, "field 'weight': expected an unsigned" },
		{ "weight", pack_big, "field 'weight': 4294967296 is above" },
		{ "weight", pack_float, "got a float" },
		{ "name", pack_int_5,
		    "field 'name': expected a string, got an unsigned "
		    "integer" },
		{ "name", pack_bin, "got binary data" },
		{ "name", pack_empty_str, "field 'name': must not be empty" },
		{ "name", pack_bad_utf8, "field 'name': is not valid UTF-8" },
		{ "incarnation", pack_nul_str,
		    "field 'incarnation': is not valid UTF-8 or holds a NUL" },
		{ "applied", pack_true,
		    "field 'applied': expected an unsigned" },
		{ "term", pack_array0, "field 'term': expected a map" },
		{ "term", pack_term_neg,
		    "field 'term.transitions': must not be negative" },
		{ "term", pack_term_long_uid,
		    "field 'term.uid': is 200 bytes" },
		{ "term", pack_term_no_uid,
		    "field 'term': missing required field 'uid'" },
		{ "lease", pack_array0, "field 'lease': expected a string" },
	};

	fill_hello(&m);
	encode_ok(&m, MCF_PROTO_PEER_WORKER, &enc, &len);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		mp b;
		repack(enc, len, cases[i].key, cases[i].val, &b);
		expect_reject(MCF_PROTO_MSG_HELLO, b.sb.data, b.sb.size,
		    MCF_PROTO_PEER_WORKER, MCF_PROTO_REJECT_MALFORMED,
		    cases[i].want);
		mp_fini(&b);
	}
	free(enc);

	/* A payload that is not a map at all. */
	const uint8_t arr[] = { 0x91, 0x01 };
	expect_reject(MCF_PROTO_MSG_HELLO, arr, sizeof(arr),
	    MCF_PROTO_PEER_WORKER, MCF_PROTO_REJECT_MALFORMED,
	    "HELLO: payload is an array, not a map");

	/* A project state this build does not know (a newer minor's)
	 * decodes as unknown; a state that is not a string is refused. */
	mp b;
	mp_init(&b);
	msgpack_pack_map(&b.pk, 3);
	mp_str(&b, "term");
	mp_term(&b, UID1, 1);
	mp_str(&b, "applied");
	msgpack_pack_uint64(&b.pk, 1);
	mp_str(&b, "projects");
	msgpack_pack_array(&b.pk, 2);
	msgpack_pack_map(&b.pk, 2);
	mp_str(&b, "name");
	mp_str(&b, "a");
	mp_str(&b, "state");
	mp_str(&b, "hibernating");
	msgpack_pack_map(&b.pk, 2);
	mp_str(&b, "name");
	mp_str(&b, "b");
	mp_str(&b, "state");
	msgpack_pack_int(&b.pk, 2);
	expect_reject(MCF_PROTO_MSG_ACK, b.sb.data, b.sb.size,
	    MCF_PROTO_PEER_WORKER, MCF_PROTO_REJECT_MALFORMED,
	    "ACK: field 'projects[1].state': expected a string");
	mp_fini(&b);

	mp_init(&b);
	msgpack_pack_map(&b.pk, 3);
	mp_str(&b, "term");
	mp_term(&b, UID1, 1);
	mp_str(&b, "applied");
	msgpack_pack_uint64(&b.pk, 1);
	mp_str(&b, "projects");
	msgpack_pack_array(&b.pk, 1);
	msgpack_pack_map(&b.pk, 2);
	mp_str(&b, "name");
	mp_str(&b, "a");
	mp_str(&b, "state");
	mp_str(&b, "hibernating");
	mcf_proto_msg *d = decode_ok(MCF_PROTO_MSG_ACK, MCF_PROTO_MINOR,
	    b.sb.data, b.sb.size, MCF_PROTO_PEER_WORKER);
	assert_int_equal(d->u.ack.projects[0].state, MCF_PROTO_PSTATE_UNKNOWN);
	mcf_proto_msg_destroy(d);
	mp_fini(&b);
}

static void
test_proto_reject_missing_fields(void **state)
{
	mcf_proto_msg m;
	uint8_t      *enc = NULL;
	size_t        len = 0;
	const char   *req[]
	    = { "major", "minor", "name", "incarnation", "weight" };
	char want[96];

	fill_hello(&m);
	encode_ok(&m, MCF_PROTO_PEER_WORKER, &enc, &len);
	for (size_t i = 0; i < sizeof(req) / sizeof(req[0]); i++) {
		mp b;
		repack(enc, len, req[i], NULL, &b);
		snprintf(want, sizeof(want),
		    "HELLO: missing required field '%s'", req[i]);
		expect_reject(MCF_PROTO_MSG_HELLO, b.sb.data, b.sb.size,
		    MCF_PROTO_PEER_WORKER, MCF_PROTO_REJECT_MALFORMED, want);
		mp_fini(&b);
		/* nil is as if absent: a required field set to nil is
		 * missing. */
		repack(enc, len, req[i], pack_nil, &b);
		expect_reject(MCF_PROTO_MSG_HELLO, b.sb.data, b.sb.size,
		    MCF_PROTO_PEER_WORKER, MCF_PROTO_REJECT_MALFORMED, want);
		mp_fini(&b);
	}
	free(enc);

	/* A coordinator heartbeat without a term; the same from a worker
	 * is fine. */
	mp b;
	mp_init(&b);
	msgpack_pack_map(&b.pk, 2);
	mp_str(&b, "time_ms");
	msgpack_pack_int64(&b.pk, 1);
	mp_str(&b, "seq");
	msgpack_pack_uint64(&b.pk, 1);
	expect_reject(MCF_PROTO_MSG_HEARTBEAT, b.sb.data, b.sb.size,
	    MCF_PROTO_PEER_COORDINATOR, MCF_PROTO_REJECT_MALFORMED,
	    "HEARTBEAT: missing required field 'term' (from a coordinator)");
	mcf_proto_msg *d = decode_ok(MCF_PROTO_MSG_HEARTBEAT, MCF_PROTO_MINOR,
	    b.sb.data, b.sb.size, MCF_PROTO_PEER_WORKER);
	mcf_proto_msg_destroy(d);
	mp_fini(&b);
	/* An explicit empty term: fine from a worker, not from the
	 * coordinator. */
	mp_init(&b);
	msgpack_pack_map(&b.pk, 3);
	mp_str(&b, "time_ms");
	msgpack_pack_int64(&b.pk, 1);
	mp_str(&b, "seq");
	msgpack_pack_uint64(&b.pk, 1);
	mp_str(&b, "term");
	mp_term(&b, "", 0);
	d = decode_ok(MCF_PROTO_MSG_HEARTBEAT, MCF_PROTO_MINOR, b.sb.data,
	    b.sb.size, MCF_PROTO_PEER_WORKER);
	assert_false(mcf_proto_term_is_set(&d->u.heartbeat.term));
	mcf_proto_msg_destroy(d);
	expect_reject(MCF_PROTO_MSG_HEARTBEAT, b.sb.data, b.sb.size,
	    MCF_PROTO_PEER_COORDINATOR, MCF_PROTO_REJECT_MALFORMED,
	    "HEARTBEAT: field 'term': must be set");
	mp_fini(&b);

	/* A coordinator term must be set. */
	mp_init(&b);
	msgpack_pack_map(&b.pk, 3);
	mp_str(&b, "term");
	mp_term(&b, "", 0);
	mp_str(&b, "version");
	msgpack_pack_uint64(&b.pk, 1);
	mp_str(&b, "projects");
	msgpack_pack_array(&b.pk, 0);
	expect_reject(MCF_PROTO_MSG_ASSIGN_SNAPSHOT, b.sb.data, b.sb.size,
	    MCF_PROTO_PEER_COORDINATOR, MCF_PROTO_REJECT_MALFORMED,
	    "field 'term': must be set");
	mp_fini(&b);

	/* A nested required field. */
	mp_init(&b);
	msgpack_pack_map(&b.pk, 3);
	mp_str(&b, "term");
	mp_term(&b, UID1, 2);
	mp_str(&b, "version");
	msgpack_pack_uint64(&b.pk, 5);
	mp_str(&b, "projects");
	msgpack_pack_array(&b.pk, 2);
	msgpack_pack_map(&b.pk, 2);
	mp_str(&b, "name");
	mp_str(&b, "a");
	mp_str(&b, "endpoint");
	mp_str(&b, "http://x");
	msgpack_pack_map(&b.pk, 1);
	mp_str(&b, "name");
	mp_str(&b, "b");
	expect_reject(MCF_PROTO_MSG_ASSIGN_SNAPSHOT, b.sb.data, b.sb.size,
	    MCF_PROTO_PEER_COORDINATOR, MCF_PROTO_REJECT_MALFORMED,
	    "ASSIGN_SNAPSHOT: field 'projects[1]': missing required field "
	    "'endpoint'");
	mp_fini(&b);

	/* Delta version must be above its base. */
	mp_init(&b);
	msgpack_pack_map(&b.pk, 3);
	mp_str(&b, "term");
	mp_term(&b, UID1, 2);
	mp_str(&b, "version");
	msgpack_pack_uint64(&b.pk, 5);
	mp_str(&b, "base");
	msgpack_pack_uint64(&b.pk, 5);
	expect_reject(MCF_PROTO_MSG_ASSIGN_DELTA, b.sb.data, b.sb.size,
	    MCF_PROTO_PEER_COORDINATOR, MCF_PROTO_REJECT_MALFORMED,
	    "version 5 is not above base 5");
	mp_fini(&b);
}

static void
test_proto_reject_bad_msgpack(void **state)
{
	/* Duplicate field. */
	mp b;
	mp_init(&b);
	msgpack_pack_map(&b.pk, 3);
	mp_str(&b, "time_ms");
	msgpack_pack_int64(&b.pk, 1);
	mp_str(&b, "seq");
	msgpack_pack_uint64(&b.pk, 1);
	mp_str(&b, "seq");
	msgpack_pack_uint64(&b.pk, 2);
	expect_reject(MCF_PROTO_MSG_HEARTBEAT, b.sb.data, b.sb.size,
	    MCF_PROTO_PEER_WORKER, MCF_PROTO_REJECT_MALFORMED,
	    "field 'seq': appears twice");
	mp_fini(&b);

	/* A map claiming 2^32-1 entries in 6 bytes: refused before any
	 * allocation. */
	const uint8_t huge_map[] = { 0xdf, 0xff, 0xff, 0xff, 0xff, 0x00 };
	expect_reject(MCF_PROTO_MSG_LEAVING, huge_map, sizeof(huge_map),
	    MCF_PROTO_PEER_WORKER, MCF_PROTO_REJECT_MALFORMED,
	    "claims more elements");
	const uint8_t huge_arr[]
	    = { 0x81, 0xa1, 'x', 0xdd, 0x7f, 0xff, 0xff, 0xff };
	expect_reject(MCF_PROTO_MSG_LEAVING, huge_arr, sizeof(huge_arr),
	    MCF_PROTO_PEER_WORKER, MCF_PROTO_REJECT_MALFORMED,
	    "claims more elements");
	/* A string longer than the payload. */
	const uint8_t long_str[] = { 0x81, 0xdb, 0x7f, 0xff, 0xff, 0xff, 'a' };
	expect_reject(MCF_PROTO_MSG_LEAVING, long_str, sizeof(long_str),
	    MCF_PROTO_PEER_WORKER, MCF_PROTO_REJECT_MALFORMED, "truncated");
	/* The reserved byte. */
	const uint8_t reserved[] = { 0x81, 0xa1, 'x', 0xc1 };
	expect_reject(MCF_PROTO_MSG_LEAVING, reserved, sizeof(reserved),
	    MCF_PROTO_PEER_WORKER, MCF_PROTO_REJECT_MALFORMED, "0xc1");
	/* Nesting far too deep. */
	uint8_t deep[64];
	deep[0] = 0x81;
	deep[1] = 0xa1;
	deep[2] = 'x';
	for (size_t i = 3; i < sizeof(deep) - 1; i++)
		deep[i] = 0x91; /* [[[[...]]]] */
	deep[sizeof(deep) - 1] = 0x00;
	expect_reject(MCF_PROTO_MSG_LEAVING, deep, sizeof(deep),
	    MCF_PROTO_PEER_WORKER, MCF_PROTO_REJECT_MALFORMED,
	    "nested too deeply");
	/* Ext types, floats and bins in an unknown field are skipped. */
	const uint8_t  exotic[] = { 0x82, 0xa1, 'x', 0xd6, 0x01, 1, 2, 3, 4,
		 0xa1, 'y', 0xcb, 0, 0, 0, 0, 0, 0, 0, 0 };
	mcf_proto_msg *d = decode_ok(MCF_PROTO_MSG_LEAVING, MCF_PROTO_MINOR,
	    exotic, sizeof(exotic), MCF_PROTO_PEER_WORKER);
	mcf_proto_msg_destroy(d);
}

/* ---- frames ---- */

static uint8_t *
seal_raw(const mcf_proto_keyset *ks, int major, int type, uint64_t session,
    uint64_t seq, const void *payload, size_t plen, size_t *len)
{
	mcf_proto_hdr h = { 0 };
	uint8_t      *f = NULL;
	h.major         = (uint8_t) major;
	h.minor         = MCF_PROTO_MINOR;
	h.type          = (uint8_t) type;
	h.session       = session;
	h.seq           = seq;
	assert_int_equal(
	    mcf_proto_frame_seal(&h, ks, payload, plen, 0, &f, len, NULL),
	    MCF_OK);
	return f;
}

/* A valid LEAVING payload. */
static const uint8_t leaving_payload[]
    = { 0x81, 0xa6, 'r', 'e', 'a', 's', 'o', 'n', 0xa3, 'b', 'y', 'e' };

static void
expect_open(const void *f, size_t len, const mcf_proto_keyset *ks,
    mcf_proto_replay *rp, size_t max, enum mcf_proto_reason reason,
    const char *want)
{
	mcf_proto_frame  fr;
	mcf_proto_reject rej;
	int rv = mcf_proto_frame_open(f, len, ks, rp, max, &fr, &rej);
	if (reason == MCF_PROTO_REJECT_NONE) {
		if (rv != MCF_OK)
			fail_msg("open: %s", rej.msg);
		return;
	}
	assert_int_equal(rv, mcf_proto_reject_code(reason));
	assert_int_equal(rej.reason, reason);
	if (want != NULL && strstr(rej.msg, want) == NULL)
		fail_msg(
		    "rejection \"%s\" does not mention \"%s\"", rej.msg, want);
}

static void
test_proto_reject_oversize(void **state)
{
	mcf_proto_keyset ks;
	size_t           len;
	keyset(&ks, KEY_A, NULL);
	uint8_t *f = seal_raw(&ks, 1, MCF_PROTO_MSG_LEAVING, 5, 1,
	    leaving_payload, sizeof(leaving_payload), &len);
	expect_open(f, len, &ks, NULL, len, MCF_PROTO_REJECT_NONE, NULL);
	expect_open(
	    f, len, &ks, NULL, len - 1, MCF_PROTO_REJECT_TOO_BIG, "exceeds");
	assert_int_equal(
	    mcf_proto_reject_code(MCF_PROTO_REJECT_TOO_BIG), MCF_ETOOBIG);
	free(f);

	/* The default bound is 4 MiB: a frame one byte over it. */
	size_t   big    = MCF_PROTO_MAX_FRAME_DEFAULT + 1;
	uint8_t *bigbuf = calloc(1, big);
	expect_open(
	    bigbuf, big, &ks, NULL, 0, MCF_PROTO_REJECT_TOO_BIG, "4194304");
	free(bigbuf);

	/* The sender refuses to build one. */
	pair                p;
	mcf_proto_conn_opts o;
	mcf_proto_conn     *small = NULL;
	mcf_errinfo         ei;
	pair_init(&p);
	memset(&o, 0, sizeof(o));
	o.self      = MCF_PROTO_PEER_COORDINATOR;
	o.keys      = p.keys;
	o.replay    = p.rp_c;
	o.max_frame = 2048;
	assert_int_equal(mcf_proto_conn_create(&small, &o, NULL), MCF_OK);
	mcf_proto_assignment many[40];
	for (size_t i = 0; i < 40; i++) {
		many[i].name     = "a-project-with-a-long-name";
		many[i].endpoint = "https://milo-apiserver.project-x.svc:6443";
	}
	mcf_proto_msg m;
	mcf_proto_msg_init(&m, MCF_PROTO_MSG_ASSIGN_SNAPSHOT);
	m.u.snapshot.term      = mkterm(UID1, 1);
	m.u.snapshot.version   = 1;
	m.u.snapshot.projects  = many;
	m.u.snapshot.nprojects = 40;
	f                      = NULL;
	assert_int_equal(
	    mcf_proto_conn_seal(small, &m, &f, &len, &ei), MCF_ETOOBIG);
	assert_non_null(strstr(ei.msg, "2048-byte frame"));
	assert_null(f);
	/* max_frame below the minimum is refused. */
	mcf_proto_conn *tiny = NULL;
	o.max_frame          = 100;
	assert_int_equal(mcf_proto_conn_create(&tiny, &o, &ei), MCF_EINVAL);
	assert_null(tiny);
	mcf_proto_conn_destroy(small);
	pair_fini(&p);
	mcf_proto_keyset_clear(&ks);
}

static void
test_proto_reject_bad_header(void **state)
{
	mcf_proto_keyset ks;
	size_t           len;
	keyset(&ks, KEY_A, NULL);
	uint8_t *f = seal_raw(&ks, 1, MCF_PROTO_MSG_LEAVING, 5, 1,
	    leaving_payload, sizeof(leaving_payload), &len);

	expect_open(f, 0, &ks, NULL, 0, MCF_PROTO_REJECT_MALFORMED, "shorter");
	expect_open(f, MCF_PROTO_OVERHEAD - 1, &ks, NULL, 0,
	    MCF_PROTO_REJECT_MALFORMED, "shorter than the 60-byte minimum");
	expect_open(NULL, 100, &ks, NULL, 0, MCF_PROTO_REJECT_MALFORMED, NULL);
	/* Every cut of a valid frame is refused. */
	for (size_t cut = 0; cut < len; cut++)
		expect_open(
		    f, cut, &ks, NULL, 0, MCF_PROTO_REJECT_MALFORMED, NULL);

	uint8_t *g = malloc(len + 1);
	memcpy(g, f, len);
	g[0] = 'X';
	expect_open(g, len, &ks, NULL, 0, MCF_PROTO_REJECT_MALFORMED, "magic");
	memcpy(g, f, len);
	g[27] ^= 1; /* payload_len */
	expect_open(
	    g, len, &ks, NULL, 0, MCF_PROTO_REJECT_MALFORMED, "payload bytes");
	memcpy(g, f, len);
	g[len] = 0; /* one extra byte */
	expect_open(g, len + 1, &ks, NULL, 0, MCF_PROTO_REJECT_MALFORMED,
	    "payload bytes");
	memcpy(g, f, len);
	memset(g + 8, 0, 8); /* session 0 */
	expect_open(
	    g, len, &ks, NULL, 0, MCF_PROTO_REJECT_MALFORMED, "zero session");
	memcpy(g, f, len);
	memset(g + 16, 0, 8); /* seq 0 */
	expect_open(
	    g, len, &ks, NULL, 0, MCF_PROTO_REJECT_MALFORMED, "zero sequence");
	memcpy(g, f, len);
	g[6] = 0; /* type 0 */
	expect_open(g, len, &ks, NULL, 0, MCF_PROTO_REJECT_MALFORMED,
	    "zero message type");
	free(g);
	free(f);
	mcf_proto_keyset_clear(&ks);
}

static void
test_proto_reject_bad_hmac(void **state)
{
	mcf_proto_keyset ks;
	size_t           len;
	keyset(&ks, KEY_A, KEY_B);
	uint8_t *f = seal_raw(&ks, 1, MCF_PROTO_MSG_LEAVING, 5, 1,
	    leaving_payload, sizeof(leaving_payload), &len);
	expect_open(f, len, &ks, NULL, 0, MCF_PROTO_REJECT_NONE, NULL);
	/* Any single flipped bit in the header (after the magic and the
	 * sanity-checked lengths), the payload or the MAC. */
	for (size_t i = 4; i < len; i++) {
		if (i >= 24 && i < 28)
			continue; /* payload_len: malformed, tested above */
		for (int bit = 0; bit < 8; bit++) {
			f[i] ^= (uint8_t) (1 << bit);
			mcf_proto_frame  fr;
			mcf_proto_reject rej;
			int              rv = mcf_proto_frame_open(
			                 f, len, &ks, NULL, 0, &fr, &rej);
			assert_int_not_equal(rv, MCF_OK);
			if (!((i == 6 && f[6] == 0)
			        || (i >= 8 && i < 24
			            && rej.reason
			                == MCF_PROTO_REJECT_MALFORMED)))
				assert_int_equal(
				    rej.reason, MCF_PROTO_REJECT_BAD_AUTH);
			f[i] ^= (uint8_t) (1 << bit);
		}
	}
	expect_open(f, len, &ks, NULL, 0, MCF_PROTO_REJECT_NONE, NULL);
	free(f);
	mcf_proto_keyset_clear(&ks);
}

static void
test_proto_reject_wrong_key(void **state)
{
	mcf_proto_keyset signer, receiver, solo;
	size_t           len;
	keyset(&signer, KEY_C, NULL);
	keyset(&receiver, KEY_A, KEY_B);
	keyset(&solo, KEY_A, NULL);
	uint8_t *f = seal_raw(&signer, 1, MCF_PROTO_MSG_LEAVING, 5, 1,
	    leaving_payload, sizeof(leaving_payload), &len);
	expect_open(f, len, &receiver, NULL, 0, MCF_PROTO_REJECT_BAD_AUTH,
	    "neither the current key");
	expect_open(f, len, &solo, NULL, 0, MCF_PROTO_REJECT_BAD_AUTH,
	    "the only one configured");
	assert_int_equal(
	    mcf_proto_reject_code(MCF_PROTO_REJECT_BAD_AUTH), MCF_EAUTH);
	free(f);

	/* A frame signed with B is refused once B is no longer configured. */
	keyset(&signer, KEY_B, NULL);
	f = seal_raw(&signer, 1, MCF_PROTO_MSG_LEAVING, 5, 2, leaving_payload,
	    sizeof(leaving_payload), &len);
	expect_open(f, len, &solo, NULL, 0, MCF_PROTO_REJECT_BAD_AUTH, NULL);
	free(f);
	mcf_proto_keyset_clear(&signer);
	mcf_proto_keyset_clear(&receiver);
	mcf_proto_keyset_clear(&solo);
}

static void
test_proto_previous_key_accepted(void **state)
{
	mcf_proto_keyset signer, receiver;
	mcf_proto_frame  fr;
	size_t           len;

	/* Signed with B (the signer's current); the receiver has A current
	 * and B previous. */
	keyset(&signer, KEY_B, NULL);
	keyset(&receiver, KEY_A, KEY_B);
	uint8_t *f = seal_raw(&signer, 1, MCF_PROTO_MSG_LEAVING, 5, 1,
	    leaving_payload, sizeof(leaving_payload), &len);
	assert_int_equal(f[7], signer.current.id);
	assert_int_equal(
	    mcf_proto_frame_open(f, len, &receiver, NULL, 0, &fr, NULL),
	    MCF_OK);
	assert_true(fr.by_previous);
	assert_int_equal(fr.payload_len, sizeof(leaving_payload));
	assert_memory_equal(
	    fr.payload, leaving_payload, sizeof(leaving_payload));
	free(f);

	/* The key id is only a hint: a frame signed with A but claiming B's
	 * id (both keys of the receiver) is still accepted, with A. */
	keyset(&signer, KEY_A, NULL);
	signer.current.id = receiver.previous.id;
	f = seal_raw(&signer, 1, MCF_PROTO_MSG_LEAVING, 5, 2, leaving_payload,
	    sizeof(leaving_payload), &len);
	assert_int_equal(
	    mcf_proto_frame_open(f, len, &receiver, NULL, 0, &fr, NULL),
	    MCF_OK);
	assert_false(fr.by_previous);
	free(f);
	mcf_proto_keyset_clear(&signer);
	mcf_proto_keyset_clear(&receiver);
}

static void
test_proto_reject_replay(void **state)
{
	pair             p;
	mcf_proto_msg    m;
	mcf_proto_msg   *d = NULL;
	mcf_proto_reject rej;
	mcf_proto_hdr    h;
	uint8_t         *f1, *f2;
	size_t           l1, l2;

	pair_init(&p);
	mcf_proto_msg_init(&m, MCF_PROTO_MSG_LEAVING);
	assert_int_equal(
	    mcf_proto_conn_seal(p.worker, &m, &f1, &l1, NULL), MCF_OK);
	assert_int_equal(
	    mcf_proto_conn_seal(p.worker, &m, &f2, &l2, NULL), MCF_OK);
	/* In order: both accepted. */
	assert_int_equal(
	    mcf_proto_conn_open(p.coord, f1, l1, &d, &h, &rej), MCF_OK);
	assert_int_equal(h.seq, 1);
	mcf_proto_msg_destroy(d);
	assert_int_equal(
	    mcf_proto_conn_open(p.coord, f2, l2, &d, &h, &rej), MCF_OK);
	assert_int_equal(h.seq, 2);
	mcf_proto_msg_destroy(d);
	/* The same frame again, and an older one: replays. */
	assert_int_equal(
	    mcf_proto_conn_open(p.coord, f2, l2, &d, &h, &rej), MCF_EPROTO);
	assert_null(d);
	assert_int_equal(rej.reason, MCF_PROTO_REJECT_REPLAY);
	assert_non_null(strstr(rej.msg, "sequence number 2 is not above 2"));
	assert_int_equal(h.seq, 2); /* the header is authentic */
	assert_int_equal(
	    mcf_proto_conn_open(p.coord, f1, l1, &d, NULL, &rej), MCF_EPROTO);
	assert_int_equal(rej.reason, MCF_PROTO_REJECT_REPLAY);

	/* Replayed on another connection of the same process: the tracker
	 * is shared, so still a replay. */
	mcf_proto_conn     *coord2 = NULL;
	mcf_proto_conn_opts o;
	memset(&o, 0, sizeof(o));
	o.self   = MCF_PROTO_PEER_COORDINATOR;
	o.keys   = p.keys;
	o.replay = p.rp_c;
	o.stats  = p.st_c;
	assert_int_equal(mcf_proto_conn_create(&coord2, &o, NULL), MCF_OK);
	assert_int_equal(
	    mcf_proto_conn_open(coord2, f2, l2, &d, NULL, &rej), MCF_EPROTO);
	assert_int_equal(rej.reason, MCF_PROTO_REJECT_REPLAY);
	assert_int_equal(
	    mcf_proto_reject_stats_get(p.st_c, MCF_PROTO_REJECT_REPLAY), 3);
	mcf_proto_conn_destroy(coord2);

	/* A new session starts again at 1. */
	mcf_proto_conn *worker2 = NULL;
	o.self                  = MCF_PROTO_PEER_WORKER;
	o.replay                = p.rp_w;
	assert_int_equal(mcf_proto_conn_create(&worker2, &o, NULL), MCF_OK);
	assert_int_not_equal(
	    mcf_proto_conn_session(worker2), mcf_proto_conn_session(p.worker));
	free(f1);
	assert_int_equal(
	    mcf_proto_conn_seal(worker2, &m, &f1, &l1, NULL), MCF_OK);
	assert_int_equal(
	    mcf_proto_conn_open(p.coord, f1, l1, &d, &h, &rej), MCF_OK);
	assert_int_equal(h.seq, 1);
	mcf_proto_msg_destroy(d);
	mcf_proto_conn_destroy(worker2);
	free(f1);
	free(f2);
	pair_fini(&p);
}

static void
test_proto_replay_bounded(void **state)
{
	mcf_proto_replay *rp = NULL;
	uint64_t          last;
	assert_int_equal(mcf_proto_replay_create(&rp, 4), MCF_OK);
	for (uint64_t s = 1; s <= 10; s++)
		assert_int_equal(
		    mcf_proto_replay_check(rp, s, 5, NULL), MCF_OK);
	assert_int_equal(mcf_proto_replay_sessions(rp), 4);
	assert_int_equal(mcf_proto_replay_evictions(rp), 6);
	/* The four most recent are remembered. */
	for (uint64_t s = 7; s <= 10; s++) {
		assert_int_equal(
		    mcf_proto_replay_check(rp, s, 5, &last), MCF_EPROTO);
		assert_int_equal(last, 5);
	}
	/* Touching a session keeps it: 7 is used, then a new one evicts
	 * the least recently used (8), not 7. */
	assert_int_equal(mcf_proto_replay_check(rp, 7, 6, NULL), MCF_OK);
	assert_int_equal(mcf_proto_replay_check(rp, 11, 1, NULL), MCF_OK);
	assert_int_equal(mcf_proto_replay_check(rp, 7, 6, NULL), MCF_EPROTO);
	assert_int_equal(mcf_proto_replay_check(rp, 8, 1, NULL), MCF_OK);
	/* Gaps are fine, seq 0 never is. */
	assert_int_equal(mcf_proto_replay_check(rp, 11, 1000, NULL), MCF_OK);
	assert_int_equal(mcf_proto_replay_check(rp, 12, 0, NULL), MCF_EPROTO);
	mcf_proto_replay_destroy(rp);

	/* Many sessions through a default-size tracker. */
	assert_int_equal(mcf_proto_replay_create(&rp, 0), MCF_OK);
	for (uint64_t s = 1; s <= 100000; s++)
		assert_int_equal(mcf_proto_replay_check(
		                     rp, s * 0x9e3779b97f4a7c15ULL, 1, NULL),
		    MCF_OK);
	assert_int_equal(
	    mcf_proto_replay_sessions(rp), MCF_PROTO_REPLAY_DEFAULT_CAPACITY);
	mcf_proto_replay_destroy(rp);
}

static void
test_proto_reject_wrong_direction(void **state)
{
	pair             p;
	mcf_proto_msg    m;
	mcf_proto_msg   *d = NULL;
	mcf_proto_reject rej;
	uint8_t         *f;
	size_t           len;
	mcf_errinfo      ei;

	pair_init(&p);
	/* A worker does not send WELCOME... */
	mcf_proto_msg_init(&m, MCF_PROTO_MSG_WELCOME);
	m.u.welcome.term         = mkterm(UID1, 1);
	m.u.welcome.leader       = "x";
	m.u.welcome.heartbeat_ms = 1;
	assert_int_equal(
	    mcf_proto_conn_seal(p.worker, &m, &f, &len, &ei), MCF_EINVAL);
	/* ...and a coordinator refuses one, e.g. its own frame reflected
	 * back at it. */
	assert_int_equal(
	    mcf_proto_conn_seal(p.coord, &m, &f, &len, &ei), MCF_OK);
	assert_int_equal(
	    mcf_proto_conn_open(p.coord, f, len, &d, NULL, &rej), MCF_EPROTO);
	assert_int_equal(rej.reason, MCF_PROTO_REJECT_UNEXPECTED);
	assert_non_null(strstr(rej.msg, "WELCOME received from a worker"));
	free(f);
	/* A worker refuses a HELLO. */
	fill_hello(&m);
	assert_int_equal(
	    mcf_proto_conn_seal(p.worker, &m, &f, &len, &ei), MCF_OK);
	assert_int_equal(
	    mcf_proto_conn_open(p.worker, f, len, &d, NULL, &rej), MCF_EPROTO);
	assert_int_equal(rej.reason, MCF_PROTO_REJECT_UNEXPECTED);
	free(f);
	assert_int_equal(
	    mcf_proto_reject_stats_get(p.st_c, MCF_PROTO_REJECT_UNEXPECTED),
	    1);
	assert_int_equal(
	    mcf_proto_reject_stats_get(p.st_w, MCF_PROTO_REJECT_UNEXPECTED),
	    1);
	pair_fini(&p);
}

/* ---- fencing term ---- */

static void
test_proto_term_cmp(void **state)
{
	mcf_proto_term none = mkterm("", 0);
	mcf_proto_term a3   = mkterm(UID1, 3);
	mcf_proto_term a4   = mkterm(UID1, 4);
	mcf_proto_term b0   = mkterm(UID2, 0);

	assert_int_equal(mcf_proto_term_cmp(&a4, &a3), MCF_PROTO_TERM_LOWER);
	assert_int_equal(mcf_proto_term_cmp(&a4, &a4), MCF_PROTO_TERM_EQUAL);
	assert_int_equal(mcf_proto_term_cmp(&a3, &a4), MCF_PROTO_TERM_HIGHER);
	assert_int_equal(
	    mcf_proto_term_cmp(&a4, &b0), MCF_PROTO_TERM_OTHER_LEASE);
	assert_int_equal(
	    mcf_proto_term_cmp(&none, &a3), MCF_PROTO_TERM_HIGHER);
	assert_int_equal(mcf_proto_term_cmp(&a3, &none), MCF_PROTO_TERM_LOWER);
	assert_int_equal(
	    mcf_proto_term_cmp(&none, &none), MCF_PROTO_TERM_EQUAL);

	/* A lower term is refused whatever the worker observes. */
	assert_false(mcf_proto_term_accept(&a4, &a3, true));
	assert_false(mcf_proto_term_accept(&a4, &a3, false));
	assert_true(mcf_proto_term_accept(&a4, &a4, false));
	assert_true(mcf_proto_term_accept(&a3, &a4, false));
	/* A re-created Lease (new uid, transitions restarted at 0) only
	 * once the old one is gone or expired. */
	assert_false(mcf_proto_term_accept(&a4, &b0, false));
	assert_true(mcf_proto_term_accept(&a4, &b0, true));
	assert_true(mcf_proto_term_accept(&none, &b0, false));
	assert_false(mcf_proto_term_is_set(&none));
	assert_true(mcf_proto_term_is_set(&a3));
}

static void
test_proto_reject_lower_term(void **state)
{
	pair             p;
	mcf_proto_msg    m;
	mcf_proto_reject rej;
	mcf_proto_term   seen = mkterm(UID1, 5);

	pair_init(&p);
	mcf_proto_msg_init(&m, MCF_PROTO_MSG_HEARTBEAT);
	m.u.heartbeat.time_ms = 1;
	m.u.heartbeat.seq     = 1;
	m.u.heartbeat.term    = mkterm(UID1, 4); /* a deposed leader */
	mcf_proto_msg *d      = through(p.coord, p.worker, &m);
	/* What a worker does with every coordinator message. */
	assert_false(
	    mcf_proto_term_accept(&seen, &d->u.heartbeat.term, false));
	assert_int_equal(
	    mcf_proto_conn_reject(p.worker, MCF_PROTO_REJECT_LOWER_TERM, &rej,
	        "HEARTBEAT term %s/%lld is below %s/%lld",
	        d->u.heartbeat.term.uid,
	        (long long) d->u.heartbeat.term.transitions, seen.uid,
	        (long long) seen.transitions),
	    MCF_EPERM);
	assert_int_equal(rej.reason, MCF_PROTO_REJECT_LOWER_TERM);
	assert_non_null(strstr(rej.msg, "is below"));
	assert_int_equal(
	    mcf_proto_reject_stats_get(p.st_w, MCF_PROTO_REJECT_LOWER_TERM),
	    1);
	mcf_proto_msg_destroy(d);
	pair_fini(&p);
}

/* ---- versions ---- */

static void
test_proto_negotiate(void **state)
{
	uint32_t                 minor = 99;
	mcf_proto_version_reject vr;

	assert_int_equal(
	    mcf_proto_version_negotiate(1, 0, &minor, &vr), MCF_OK);
	assert_int_equal(minor, 0);
	assert_int_equal(
	    mcf_proto_version_negotiate(1, 1, &minor, &vr), MCF_OK);
	assert_int_equal(minor, 1);
	/* A newer minor is served at ours. */
	assert_int_equal(
	    mcf_proto_version_negotiate(1, 9, &minor, &vr), MCF_OK);
	assert_int_equal(minor, MCF_PROTO_MINOR);
	/* Another major is not. */
	assert_int_equal(
	    mcf_proto_version_negotiate(2, 0, &minor, &vr), MCF_EUNSUPP);
	assert_string_equal(vr.message,
	    "coordinator speaks 1.0\xe2\x80\x93"
	    "1.1, worker sent 2.0; the worker is newer: upgrade the "
	    "coordinator first");
	assert_int_equal(vr.major, 1);
	assert_int_equal(vr.min_minor, 0);
	assert_int_equal(vr.max_minor, 1);
	assert_int_equal(vr.peer_major, 2);
	assert_int_equal(
	    mcf_proto_version_negotiate(0, 3, NULL, &vr), MCF_EUNSUPP);
	assert_non_null(strstr(vr.message, "worker sent 0.3"));
	assert_non_null(strstr(vr.message, "too old"));
}

static void
test_proto_version_too_new(void **state)
{
	pair             p;
	mcf_proto_keyset ks;
	mcf_proto_msg   *d = NULL;
	mcf_proto_hdr    h;
	mcf_proto_reject rej;
	size_t           len;

	pair_init(&p);
	keyset(&ks, KEY_A, NULL);
	/* A 2.0 worker's HELLO: its payload may mean anything to us. */
	const uint8_t v2_payload[] = { 0x92, 0x02, 0xa3, 'n', 'e', 'w' };
	uint8_t      *f            = NULL;
	mcf_proto_hdr hh           = { 0 };
	hh.major                   = 2;
	hh.minor                   = 0;
	hh.type                    = MCF_PROTO_MSG_HELLO;
	hh.session                 = 0x2222;
	hh.seq                     = 1;
	assert_int_equal(mcf_proto_frame_seal(&hh, &ks, v2_payload,
	                     sizeof(v2_payload), 0, &f, &len, NULL),
	    MCF_OK);
	assert_int_equal(
	    mcf_proto_conn_open(p.coord, f, len, &d, &h, &rej), MCF_EUNSUPP);
	assert_null(d);
	assert_int_equal(rej.reason, MCF_PROTO_REJECT_VERSION);
	assert_non_null(strstr(rej.msg, "peer speaks protocol 2.0"));
	assert_int_equal(h.type, MCF_PROTO_MSG_HELLO);
	assert_int_equal(h.major, 2);
	assert_int_equal(
	    mcf_proto_reject_stats_get(p.st_c, MCF_PROTO_REJECT_VERSION), 1);
	free(f);

	/* The coordinator answers with VERSION_REJECT... */
	mcf_proto_msg m;
	mcf_proto_msg_init(&m, MCF_PROTO_MSG_VERSION_REJECT);
	assert_int_equal(mcf_proto_version_negotiate(
	                     h.major, h.minor, NULL, &m.u.version_reject),
	    MCF_EUNSUPP);
	d = through(p.coord, p.worker, &m);
	assert_string_equal(d->u.version_reject.message,
	    "coordinator speaks 1.0\xe2\x80\x93"
	    "1.1, worker sent 2.0; the worker is newer: upgrade the "
	    "coordinator first");
	assert_int_equal(d->u.version_reject.max_minor, MCF_PROTO_MINOR);
	mcf_proto_msg_destroy(d);

	/* ...whose frozen format any major reads: here a worker of ours
	 * reads one from a (future) 3.x coordinator. */
	mp b;
	mp_init(&b);
	msgpack_pack_map(&b.pk, 5);
	mp_str(&b, "major");
	msgpack_pack_uint32(&b.pk, 3);
	mp_str(&b, "min_minor");
	msgpack_pack_uint32(&b.pk, 0);
	mp_str(&b, "max_minor");
	msgpack_pack_uint32(&b.pk, 2);
	mp_str(&b, "message");
	mp_str(&b,
	    "coordinator speaks 3.0\xe2\x80\x93"
	    "3.2, worker sent 1.1");
	mp_str(&b, "extra");
	msgpack_pack_true(&b.pk);
	hh.major = 3;
	hh.type  = MCF_PROTO_MSG_VERSION_REJECT;
	hh.seq   = 2;
	assert_int_equal(mcf_proto_frame_seal(&hh, &ks, b.sb.data, b.sb.size,
	                     0, &f, &len, NULL),
	    MCF_OK);
	assert_int_equal(
	    mcf_proto_conn_open(p.worker, f, len, &d, &h, &rej), MCF_OK);
	assert_int_equal(d->type, MCF_PROTO_MSG_VERSION_REJECT);
	assert_int_equal(d->u.version_reject.major, 3);
	assert_int_equal(d->u.version_reject.max_minor, 2);
	assert_non_null(strstr(d->u.version_reject.message, "speaks 3.0"));
	mcf_proto_msg_destroy(d);
	free(f);
	mp_fini(&b);
	/* Other message types of another major are refused. */
	hh.type = MCF_PROTO_MSG_HEARTBEAT;
	hh.seq  = 3;
	assert_int_equal(mcf_proto_frame_seal(&hh, &ks, leaving_payload,
	                     sizeof(leaving_payload), 0, &f, &len, NULL),
	    MCF_OK);
	assert_int_equal(
	    mcf_proto_conn_open(p.worker, f, len, &d, &h, &rej), MCF_EUNSUPP);
	assert_int_equal(rej.reason, MCF_PROTO_REJECT_VERSION);
	free(f);
	mcf_proto_keyset_clear(&ks);
	pair_fini(&p);
}

/* ---- key files ---- */

static char tmpdir[64];

static void
make_tmpdir(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/proto_test.XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
}

static void
remove_tmpdir(void)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	assert_int_equal(system(cmd), 0);
}

/* Writes `text` to `name` in tmpdir atomically (new inode), as the kubelet
 * updates a mounted Secret. */
static void
write_file(const char *path, const char *text)
{
	char tmp[256];
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	FILE *fp = fopen(tmp, "w");
	assert_non_null(fp);
	assert_int_equal(fwrite(text, 1, strlen(text), fp), strlen(text));
	assert_int_equal(fclose(fp), 0);
	assert_int_equal(rename(tmp, path), 0);
}

static void
path_in_tmp(char *out, size_t cap, const char *name)
{
	snprintf(out, cap, "%s/%s", tmpdir, name);
}

static void
parse_ok(const char *text, const char *cur, const char *prev)
{
	mcf_proto_keyset ks;
	mcf_errinfo      ei;
	if (mcf_proto_keys_parse(
	        "k", text, strlen(text), true, false, &ks, &ei)
	    != MCF_OK)
		fail_msg("parse: %s", ei.msg);
	assert_int_equal(ks.current.len, strlen(cur));
	assert_memory_equal(ks.current.bytes, cur, strlen(cur));
	assert_int_equal(ks.current.id, mcf_proto_keys_id(cur, strlen(cur)));
	if (prev == NULL) {
		assert_int_equal(ks.previous.len, 0);
	} else {
		assert_int_equal(ks.previous.len, strlen(prev));
		assert_memory_equal(ks.previous.bytes, prev, strlen(prev));
	}
	mcf_proto_keyset_clear(&ks);
}

static void
parse_bad(const char *text, const char *want)
{
	mcf_proto_keyset ks;
	mcf_errinfo      ei;
	assert_int_equal(mcf_proto_keys_parse("/etc/mcfleet/fleet-key", text,
	                     strlen(text), true, false, &ks, &ei),
	    MCF_EINVAL);
	assert_non_null(strstr(ei.msg, "key file /etc/mcfleet/fleet-key"));
	if (strstr(ei.msg, want) == NULL)
		fail_msg("\"%s\" does not mention \"%s\"", ei.msg, want);
}

static void
test_proto_keys_formats(void **state)
{
	/* The bytes as written, trimmed. */
	parse_ok(KEY_A, KEY_A, NULL);
	parse_ok("  mcfleet-test-key-0123456789abcdef \r\n", KEY_A, NULL);
	/* Current then previous, with comments and blank lines. */
	parse_ok("# rotated 2024-11-24\n\n" KEY_B "\n# old:\n" KEY_A "\n",
	    KEY_B, KEY_A);
	/* hex: and base64: carry binary keys. */
	parse_ok("hex:"
	         "6d63666c6565742d746573742d6b65792d30313233343536373839616263"
	         "646566",
	    KEY_A, NULL);
	parse_ok(
	    "base64:bWNmbGVldC10ZXN0LWtleS0wMTIzNDU2Nzg5YWJjZGVm\n"
	    "hex:"
	    "7365636f6e642d746573742d6b65792d666f722d726f746174696f6e2d3030"
	    "3030",
	    KEY_A, KEY_B);

	parse_bad("short-key\n",
	    "line 1: the key is 9 bytes long; keys are "
	    "32 to 256 bytes");
	char longkey[300];
	memset(longkey, 'k', 299);
	longkey[299] = '\0';
	parse_bad(longkey, "the key is 299 bytes long");
	parse_bad(
	    KEY_A "\n" KEY_B "\n" KEY_C "\n", "line 3: more than 2 keys");
	parse_bad("hex:abc", "odd number of digits");
	parse_bad(
	    "hex:"
	    "zz63666c6565742d746573742d6b65792d30313233343536373839616263"
	    "646566",
	    "not a hex digit");
	parse_bad("hex:00", "line 1: the key is 1 bytes long");
	parse_bad("base64:@@@@", "invalid base64");
	parse_bad("base64:AAAA", "the key is 3 bytes long");
	parse_bad("", "holds no key");
	parse_bad("# nothing\n\n", "holds no key");
	parse_bad("\n\n" KEY_A "\nshort\n", "line 4: the key is 5 bytes");

	/* keyset_init checks lengths too. */
	mcf_proto_keyset ks;
	mcf_errinfo      ei;
	assert_int_equal(
	    mcf_proto_keyset_init(&ks, "short", 5, NULL, 0, &ei), MCF_EINVAL);
	assert_non_null(strstr(ei.msg, "the current key is 5 bytes long"));
	assert_int_equal(
	    mcf_proto_keyset_init(&ks, KEY_A, strlen(KEY_A), "short", 5, &ei),
	    MCF_EINVAL);
	assert_non_null(strstr(ei.msg, "previous key"));
}

static void
test_proto_keys_file_errors(void **state)
{
	mcf_proto_keys     *k = NULL;
	mcf_proto_keys_opts o;
	mcf_errinfo         ei;
	char                path[128], prev[128];

	make_tmpdir();
	path_in_tmp(path, sizeof(path), "missing");
	mcf_proto_keys_opts_init(&o);
	o.path = path;
	assert_int_equal(mcf_proto_keys_create(&k, &o, &ei), MCF_ENOENT);
	assert_null(k);
	assert_non_null(strstr(ei.msg, path));
	assert_non_null(strstr(ei.msg, "cannot open"));

	o.path = tmpdir; /* a directory */
	assert_int_equal(mcf_proto_keys_create(&k, &o, &ei), MCF_EINVAL);
	assert_non_null(strstr(ei.msg, "not a regular file"));

	path_in_tmp(path, sizeof(path), "key");
	write_file(path, "too-short\n");
	o.path = path;
	assert_int_equal(mcf_proto_keys_create(&k, &o, &ei), MCF_EINVAL);
	assert_non_null(strstr(ei.msg, path));
	assert_non_null(strstr(ei.msg, "line 1"));

	o.path = NULL;
	assert_int_equal(mcf_proto_keys_create(&k, &o, &ei), MCF_EINVAL);

	/* The previous key in both places. */
	path_in_tmp(prev, sizeof(prev), "previous");
	write_file(path, KEY_A "\n" KEY_B "\n");
	write_file(prev, KEY_C "\n");
	o.path          = path;
	o.previous_path = prev;
	assert_int_equal(mcf_proto_keys_create(&k, &o, &ei), MCF_EINVAL);
	assert_non_null(strstr(ei.msg, "give it in one place only"));
	/* Two keys in the previous file. */
	write_file(path, KEY_A "\n");
	write_file(prev, KEY_B "\n" KEY_C "\n");
	assert_int_equal(mcf_proto_keys_create(&k, &o, &ei), MCF_EINVAL);
	assert_non_null(strstr(ei.msg, prev));
	assert_non_null(strstr(ei.msg, "only the previous key"));
	/* A missing or empty previous file: no previous key. */
	unlink(prev);
	assert_int_equal(mcf_proto_keys_create(&k, &o, &ei), MCF_OK);
	mcf_proto_keyset ks;
	mcf_proto_keys_get(k, &ks);
	assert_int_equal(ks.previous.len, 0);
	mcf_proto_keys_destroy(k);
	write_file(prev, "");
	assert_int_equal(mcf_proto_keys_create(&k, &o, &ei), MCF_OK);
	mcf_proto_keys_get(k, &ks);
	assert_int_equal(ks.previous.len, 0);
	mcf_proto_keys_destroy(k);
	write_file(prev, KEY_B);
	assert_int_equal(mcf_proto_keys_create(&k, &o, &ei), MCF_OK);
	mcf_proto_keys_get(k, &ks);
	assert_int_equal(ks.previous.len, strlen(KEY_B));
	assert_memory_equal(ks.previous.bytes, KEY_B, strlen(KEY_B));
	mcf_proto_keyset_clear(&ks);
	mcf_proto_keys_destroy(k);
	remove_tmpdir();
}

/* Seals a LEAVING on `from` and returns the reason `to` gives it. */
static enum mcf_proto_reason
send_leaving(mcf_proto_conn *from, mcf_proto_conn *to)
{
	mcf_proto_msg    m;
	mcf_proto_msg   *d = NULL;
	mcf_proto_reject rej;
	uint8_t         *f;
	size_t           len;
	mcf_proto_msg_init(&m, MCF_PROTO_MSG_LEAVING);
	assert_int_equal(
	    mcf_proto_conn_seal(from, &m, &f, &len, NULL), MCF_OK);
	int rv = mcf_proto_conn_open(to, f, len, &d, NULL, &rej);
	free(f);
	mcf_proto_msg_destroy(d);
	return rv == MCF_OK ? MCF_PROTO_REJECT_NONE : rej.reason;
}

static mcf_proto_conn *
conn_with_keys(
    mcf_proto_keys *keys, mcf_proto_replay *rp, enum mcf_proto_peer self)
{
	mcf_proto_conn     *c = NULL;
	mcf_proto_conn_opts o;
	memset(&o, 0, sizeof(o));
	o.self   = self;
	o.keys   = keys;
	o.replay = rp;
	assert_int_equal(mcf_proto_conn_create(&c, &o, NULL), MCF_OK);
	return c;
}

static void
test_proto_keys_rotation(void **state)
{
	mcf_proto_keys *coord_keys = NULL, *old_keys = NULL, *new_keys = NULL;
	mcf_proto_keys_opts o;
	mcf_proto_replay   *rp = NULL;
	mcf_proto_keyset    ks;
	mcf_errinfo         ei;
	char                path[128];

	make_tmpdir();
	path_in_tmp(path, sizeof(path), "fleet-key");
	write_file(path, KEY_A "\n");
	mcf_proto_keys_opts_init(&o);
	o.path              = path;
	o.check_interval_ms = 0; /* stat at every use */
	assert_int_equal(mcf_proto_keys_create(&coord_keys, &o, &ei), MCF_OK);
	assert_int_equal(mcf_proto_keys_generation(coord_keys), 1);
	assert_int_equal(mcf_proto_replay_create(&rp, 0), MCF_OK);

	/* Two workers: one still on the old key A, one already on B. */
	keyset(&ks, KEY_A, NULL);
	assert_int_equal(mcf_proto_keys_create_static(&old_keys, &ks), MCF_OK);
	keyset(&ks, KEY_B, NULL);
	assert_int_equal(mcf_proto_keys_create_static(&new_keys, &ks), MCF_OK);
	mcf_proto_keyset_clear(&ks);
	mcf_proto_conn *coord
	    = conn_with_keys(coord_keys, rp, MCF_PROTO_PEER_COORDINATOR);
	mcf_proto_conn *w_old
	    = conn_with_keys(old_keys, rp, MCF_PROTO_PEER_WORKER);
	mcf_proto_conn *w_new
	    = conn_with_keys(new_keys, rp, MCF_PROTO_PEER_WORKER);

	assert_int_equal(send_leaving(w_old, coord), MCF_PROTO_REJECT_NONE);
	assert_int_equal(
	    send_leaving(w_new, coord), MCF_PROTO_REJECT_BAD_AUTH);

	/* Rotate: B current, A previous.  No restart. */
	write_file(path, KEY_B "\n" KEY_A "\n");
	assert_int_equal(send_leaving(w_new, coord), MCF_PROTO_REJECT_NONE);
	assert_int_equal(send_leaving(w_old, coord), MCF_PROTO_REJECT_NONE);
	assert_int_equal(mcf_proto_keys_generation(coord_keys), 2);
	mcf_proto_keys_get(coord_keys, &ks);
	assert_memory_equal(ks.current.bytes, KEY_B, strlen(KEY_B));
	assert_memory_equal(ks.previous.bytes, KEY_A, strlen(KEY_A));

	/* A broken rewrite keeps the keys in use (and is logged once). */
	write_file(path, "oops\n");
	assert_int_equal(send_leaving(w_new, coord), MCF_PROTO_REJECT_NONE);
	assert_int_equal(send_leaving(w_old, coord), MCF_PROTO_REJECT_NONE);
	assert_int_equal(mcf_proto_keys_generation(coord_keys), 2);
	assert_int_not_equal(mcf_proto_keys_reload(coord_keys, &ei), MCF_OK);
	assert_non_null(strstr(ei.msg, path));

	/* The old key retired. */
	write_file(path, KEY_B "\n");
	assert_int_equal(send_leaving(w_new, coord), MCF_PROTO_REJECT_NONE);
	assert_int_equal(
	    send_leaving(w_old, coord), MCF_PROTO_REJECT_BAD_AUTH);
	assert_int_equal(mcf_proto_keys_generation(coord_keys), 3);

	/* The coordinator's own frames are signed with its new current key:
	 * a worker that has only A refuses them, one with B accepts. */
	mcf_proto_conn *coord_as_sender
	    = conn_with_keys(coord_keys, rp, MCF_PROTO_PEER_COORDINATOR);
	mcf_proto_msg m;
	uint8_t      *f;
	size_t        len;
	mcf_proto_msg_init(&m, MCF_PROTO_MSG_NOT_LEADER);
	assert_int_equal(
	    mcf_proto_conn_seal(coord_as_sender, &m, &f, &len, NULL), MCF_OK);
	assert_int_equal(f[7], mcf_proto_keys_id(KEY_B, strlen(KEY_B)));
	mcf_proto_msg   *d = NULL;
	mcf_proto_reject rej;
	assert_int_equal(
	    mcf_proto_conn_open(w_old, f, len, &d, NULL, &rej), MCF_EAUTH);
	assert_int_equal(
	    mcf_proto_conn_open(w_new, f, len, &d, NULL, &rej), MCF_OK);
	mcf_proto_msg_destroy(d);
	free(f);

	mcf_proto_keyset_clear(&ks);
	mcf_proto_conn_destroy(coord_as_sender);
	mcf_proto_conn_destroy(coord);
	mcf_proto_conn_destroy(w_old);
	mcf_proto_conn_destroy(w_new);
	mcf_proto_keys_destroy(coord_keys);
	mcf_proto_keys_destroy(old_keys);
	mcf_proto_keys_destroy(new_keys);
	mcf_proto_replay_destroy(rp);
	remove_tmpdir();
}

static void
test_proto_keys_check_interval(void **state)
{
	mcf_proto_keys     *k = NULL;
	mcf_proto_keys_opts o;
	mcf_proto_keyset    ks;
	char                path[128], prev[128];

	make_tmpdir();
	path_in_tmp(path, sizeof(path), "key");
	path_in_tmp(prev, sizeof(prev), "previous");
	write_file(path, KEY_A);
	mcf_proto_keys_opts_init(&o);
	assert_int_equal(o.check_interval_ms, 1000);
	o.path              = path;
	o.previous_path     = prev; /* absent for now */
	o.check_interval_ms = 3600 * 1000;
	assert_int_equal(mcf_proto_keys_create(&k, &o, NULL), MCF_OK);
	/* Changed, but not checked again within the interval... */
	write_file(path, KEY_B);
	write_file(prev, KEY_A);
	mcf_proto_keys_get(k, &ks);
	assert_memory_equal(ks.current.bytes, KEY_A, strlen(KEY_A));
	assert_int_equal(ks.previous.len, 0);
	/* ...until an explicit reload. */
	assert_int_equal(mcf_proto_keys_reload(k, NULL), MCF_OK);
	mcf_proto_keys_get(k, &ks);
	assert_memory_equal(ks.current.bytes, KEY_B, strlen(KEY_B));
	assert_memory_equal(ks.previous.bytes, KEY_A, strlen(KEY_A));
	assert_int_equal(ks.generation, 2);
	/* A reload that changes nothing keeps the generation. */
	assert_int_equal(mcf_proto_keys_reload(k, NULL), MCF_OK);
	assert_int_equal(mcf_proto_keys_generation(k), 2);
	mcf_proto_keyset_clear(&ks);
	mcf_proto_keys_destroy(k);
	remove_tmpdir();
}

/* ---- counters and log lines ---- */

static void
test_proto_stats_one_count_per_rogue_frame(void **state)
{
	pair             p;
	mcf_proto_keyset ks, wrong;
	mcf_proto_msg   *d = NULL;
	mcf_proto_reject rej;
	uint64_t         before[MCF_PROTO_REJECT_COUNT];
	char             logpath[128];

	make_tmpdir();
	path_in_tmp(logpath, sizeof(logpath), "log");
	int logfd = open(logpath, O_CREAT | O_WRONLY | O_TRUNC, 0600);
	assert_true(logfd >= 0);
	mcf_log_set_fd(logfd);
	mcf_log_set_level(MCF_LOG_WARN);

	pair_init(&p);
	keyset(&ks, KEY_A, NULL);
	keyset(&wrong, KEY_C, NULL);
	struct {
		enum mcf_proto_reason reason;
		uint8_t              *frame;
		size_t                len;
	} rogue[8];
	int n = 0;

	/* too big */
	rogue[n].reason = MCF_PROTO_REJECT_TOO_BIG;
	rogue[n].len    = MCF_PROTO_MAX_FRAME_DEFAULT + 100;
	rogue[n].frame  = calloc(1, rogue[n].len);
	n++;
	/* malformed header */
	rogue[n].reason = MCF_PROTO_REJECT_MALFORMED;
	rogue[n].frame  = calloc(1, 10);
	rogue[n].len    = 10;
	n++;
	/* bad auth */
	rogue[n].reason = MCF_PROTO_REJECT_BAD_AUTH;
	rogue[n].frame  = seal_raw(&wrong, 1, MCF_PROTO_MSG_LEAVING, 9, 1,
	     leaving_payload, sizeof(leaving_payload), &rogue[n].len);
	n++;
	/* malformed payload (authentic) */
	const uint8_t bad_payload[] = { 0x81, 0xa1 };
	rogue[n].reason             = MCF_PROTO_REJECT_MALFORMED;
	rogue[n].frame = seal_raw(&ks, 1, MCF_PROTO_MSG_LEAVING, 9, 2,
	    bad_payload, sizeof(bad_payload), &rogue[n].len);
	n++;
	/* replay of that same session's seq 2 */
	rogue[n].reason = MCF_PROTO_REJECT_REPLAY;
	rogue[n].frame  = seal_raw(&ks, 1, MCF_PROTO_MSG_LEAVING, 9, 2,
	     leaving_payload, sizeof(leaving_payload), &rogue[n].len);
	n++;
	/* other major */
	rogue[n].reason = MCF_PROTO_REJECT_VERSION;
	rogue[n].frame  = seal_raw(&ks, 9, MCF_PROTO_MSG_LEAVING, 9, 3,
	     leaving_payload, sizeof(leaving_payload), &rogue[n].len);
	n++;
	/* wrong direction */
	rogue[n].reason = MCF_PROTO_REJECT_UNEXPECTED;
	rogue[n].frame  = seal_raw(&ks, 1, MCF_PROTO_MSG_WELCOME, 9, 4,
	     leaving_payload, sizeof(leaving_payload), &rogue[n].len);
	n++;
	/* unknown type from a newer minor */
	mcf_proto_hdr h = { 1, MCF_PROTO_MINOR + 1, 200, 0, 9, 5, 0 };
	rogue[n].reason = MCF_PROTO_REJECT_UNKNOWN_TYPE;
	assert_int_equal(mcf_proto_frame_seal(&h, &ks, leaving_payload,
	                     sizeof(leaving_payload), 0, &rogue[n].frame,
	                     &rogue[n].len, NULL),
	    MCF_OK);
	n++;

	for (int i = 0; i < n; i++) {
		for (int r = 0; r < MCF_PROTO_REJECT_COUNT; r++)
			before[r] = mcf_proto_reject_stats_get(
			    p.st_c, (enum mcf_proto_reason) r);
		uint64_t acc = mcf_proto_reject_stats_accepted(p.st_c);
		int      rv  = mcf_proto_conn_open(
		          p.coord, rogue[i].frame, rogue[i].len, &d, NULL, &rej);
		assert_int_equal(rv, mcf_proto_reject_code(rogue[i].reason));
		assert_int_equal(rej.reason, rogue[i].reason);
		for (int r = 0; r < MCF_PROTO_REJECT_COUNT; r++)
			assert_int_equal(mcf_proto_reject_stats_get(p.st_c,
			                     (enum mcf_proto_reason) r),
			    before[r] + (r == (int) rogue[i].reason ? 1 : 0));
		assert_int_equal(mcf_proto_reject_stats_accepted(p.st_c), acc);
		free(rogue[i].frame);
	}
	/* lower term: decided by the caller, counted the same way */
	mcf_proto_conn_reject(p.coord, MCF_PROTO_REJECT_LOWER_TERM, NULL,
	    "term %d below %d", 3, 4);
	assert_int_equal(
	    mcf_proto_reject_stats_get(p.st_c, MCF_PROTO_REJECT_LOWER_TERM),
	    1);

	/* The counters as Prometheus sees them. */
	mcf_metrics *reg = NULL;
	char        *text;
	assert_int_equal(mcf_metrics_create(&reg), MCF_OK);
	assert_int_equal(mcf_metrics_add_collector(
	                     reg, mcf_proto_reject_stats_collect, p.st_c),
	    MCF_OK);
	assert_int_equal(mcf_metrics_render(reg, &text, NULL), MCF_OK);
	assert_non_null(strstr(text,
	    "mcfleet_proto_frames_rejected_total{reason=\"malformed\"} 2\n"));
	assert_non_null(strstr(text,
	    "mcfleet_proto_frames_rejected_total{reason=\"bad_auth\"} 1\n"));
	assert_non_null(strstr(text,
	    "mcfleet_proto_frames_rejected_total{reason=\"lower_term\"} 1\n"));
	assert_non_null(
	    strstr(text, "mcfleet_proto_frames_accepted_total 0\n"));
	free(text);
	assert_int_equal(mcf_metrics_remove_collector(
	                     reg, mcf_proto_reject_stats_collect, p.st_c),
	    MCF_OK);
	mcf_metrics_destroy(reg);

	/* Each rejection was logged with its reason and the peer. */
	mcf_log_set_fd(2);
	mcf_log_set_level(MCF_LOG_ERROR);
	close(logfd);
	FILE *fp = fopen(logpath, "r");
	assert_non_null(fp);
	char   buf[16384];
	size_t got = fread(buf, 1, sizeof(buf) - 1, fp);
	buf[got]   = '\0';
	fclose(fp);
	assert_non_null(strstr(buf, "\"id\":\"PROTO-REJECT\""));
	assert_non_null(strstr(buf, "test-worker (reason bad_auth)"));
	assert_non_null(strstr(buf, "(reason replay)"));
	assert_non_null(strstr(buf, "(reason lower_term): term 3 below 4"));

	mcf_proto_keyset_clear(&ks);
	mcf_proto_keyset_clear(&wrong);
	pair_fini(&p);
	remove_tmpdir();
}

static void
test_proto_stats_log_rate_limited(void **state)
{
	mcf_proto_reject_stats *st = NULL;
	mcf_proto_reject        r;
	char                    logpath[128];

	make_tmpdir();
	path_in_tmp(logpath, sizeof(logpath), "log");
	int logfd = open(logpath, O_CREAT | O_WRONLY | O_TRUNC, 0600);
	assert_true(logfd >= 0);
	mcf_log_set_fd(logfd);
	mcf_log_set_level(MCF_LOG_WARN);
	assert_int_equal(mcf_proto_reject_stats_create(&st), MCF_OK);
	mcf_proto_reject_set(&r, MCF_PROTO_REJECT_BAD_AUTH, "flood %d", 1);
	for (int i = 0; i < 1000; i++)
		mcf_proto_reject_stats_record(st, &r, "flooder");
	assert_int_equal(
	    mcf_proto_reject_stats_get(st, MCF_PROTO_REJECT_BAD_AUTH), 1000);
	mcf_log_set_fd(2);
	mcf_log_set_level(MCF_LOG_ERROR);
	close(logfd);
	FILE *fp = fopen(logpath, "r");
	assert_non_null(fp);
	int  lines = 0;
	char line[2048];
	while (fgets(line, sizeof(line), fp) != NULL)
		lines++;
	fclose(fp);
	assert_int_equal(lines, 20);
	mcf_proto_reject_stats_destroy(st);
	remove_tmpdir();
}

/* ---- fuzz ---- */

static uint64_t rng_state;

static uint64_t
rng(void)
{
	uint64_t x = rng_state;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return rng_state = x;
}

/* One valid payload per message type, built with the encoder. */
static void
sample_payloads(
    uint8_t **pl, size_t *plen, int *ptype, enum mcf_proto_peer *pfrom, int *n)
{
	mcf_proto_msg    m;
	mcf_proto_report r[]
	    = { { "alpha", MCF_PROTO_PSTATE_SYNCED, "ok", 1732460000123 } };
	char *names[] = { "x", "yy" };
	int   k       = 0;

#define ADD(from)                                                             \
	do {                                                                  \
		encode_ok(&m, from, &pl[k], &plen[k]);                        \
		ptype[k] = (int) m.type;                                      \
		pfrom[k] = from;                                              \
		k++;                                                          \
	} while (0)
	fill_hello(&m);
	ADD(MCF_PROTO_PEER_WORKER);
	mcf_proto_msg_init(&m, MCF_PROTO_MSG_VERSION_REJECT);
	mcf_proto_version_negotiate(2, 0, NULL, &m.u.version_reject);
	ADD(MCF_PROTO_PEER_COORDINATOR);
	mcf_proto_msg_init(&m, MCF_PROTO_MSG_WELCOME);
	m.u.welcome.major        = 1;
	m.u.welcome.minor        = 1;
	m.u.welcome.term         = mkterm(UID1, 2);
	m.u.welcome.leader       = "leader";
	m.u.welcome.heartbeat_ms = 1000;
	ADD(MCF_PROTO_PEER_COORDINATOR);
	mcf_proto_msg_init(&m, MCF_PROTO_MSG_ASSIGN_SNAPSHOT);
	m.u.snapshot.term      = mkterm(UID1, 2);
	m.u.snapshot.version   = 3;
	m.u.snapshot.projects  = assigns;
	m.u.snapshot.nprojects = 3;
	ADD(MCF_PROTO_PEER_COORDINATOR);
	mcf_proto_msg_init(&m, MCF_PROTO_MSG_ASSIGN_DELTA);
	m.u.delta.term       = mkterm(UID1, 2);
	m.u.delta.version    = 4;
	m.u.delta.base       = 3;
	m.u.delta.engage     = assigns;
	m.u.delta.nengage    = 1;
	m.u.delta.disengage  = names;
	m.u.delta.ndisengage = 2;
	ADD(MCF_PROTO_PEER_COORDINATOR);
	mcf_proto_msg_init(&m, MCF_PROTO_MSG_ACK);
	m.u.ack.term      = mkterm(UID1, 2);
	m.u.ack.applied   = 4;
	m.u.ack.full      = true;
	m.u.ack.projects  = r;
	m.u.ack.nprojects = 1;
	ADD(MCF_PROTO_PEER_WORKER);
	mcf_proto_msg_init(&m, MCF_PROTO_MSG_STOPPED);
	m.u.stopped.term      = mkterm(UID1, 2);
	m.u.stopped.projects  = names;
	m.u.stopped.nprojects = 2;
	ADD(MCF_PROTO_PEER_WORKER);
	mcf_proto_msg_init(&m, MCF_PROTO_MSG_LEAVING);
	m.u.leaving.deadline_ms = 30000;
	m.u.leaving.reason      = "SIGTERM";
	ADD(MCF_PROTO_PEER_WORKER);
	mcf_proto_msg_init(&m, MCF_PROTO_MSG_HEARTBEAT);
	m.u.heartbeat.time_ms = 1732460000123;
	m.u.heartbeat.seq     = 7;
	m.u.heartbeat.term    = mkterm(UID1, 2);
	ADD(MCF_PROTO_PEER_COORDINATOR);
	mcf_proto_msg_init(&m, MCF_PROTO_MSG_RESYNC_REQUEST);
	m.u.resync.term    = mkterm(UID1, 2);
	m.u.resync.applied = 2;
	m.u.resync.reason  = "gap";
	ADD(MCF_PROTO_PEER_WORKER);
	mcf_proto_msg_init(&m, MCF_PROTO_MSG_NOT_LEADER);
	m.u.not_leader.leader  = "other";
	m.u.not_leader.address = "tcp://10.0.0.1:7400";
	ADD(MCF_PROTO_PEER_COORDINATOR);
#undef ADD
	*n = k;
}

/* Mutates buf[0..*len) in place (cap bytes available); with `keep_len`
 * only bytes change, never the length. */
static void
mutate(uint8_t *buf, size_t *len, size_t cap, bool keep_len)
{
	static const int in_place[] = { 0, 1, 6 };
	int              rounds     = 1 + (int) (rng() % 4);
	for (int r = 0; r < rounds; r++) {
		size_t n = *len;
		switch (keep_len ? in_place[rng() % 3] : (int) (rng() % 7)) {
		case 0: /* flip a bit */
			if (n > 0)
				buf[rng() % n]
				    ^= (uint8_t) (1u << (rng() % 8));
			break;
		case 1: /* set a byte to an interesting value */
			if (n > 0) {
				static const uint8_t v[]
				    = { 0x00, 0xff, 0x7f, 0x80, 0xc0, 0xc1,
					      0xdc, 0xdd, 0xde, 0xdf, 0xd9,
					      0xdb, 0xc6, 0xc9, 0x9f, 0x8f };
				buf[rng() % n] = v[rng() % sizeof(v)];
			}
			break;
		case 2: /* truncate */
			if (n > 0)
				*len = rng() % n;
			break;
		case 3: /* append random bytes */
			for (int i = (int) (rng() % 8); i > 0 && *len < cap;
			     i--)
				buf[(*len)++] = (uint8_t) rng();
			break;
		case 4: /* duplicate a chunk somewhere */
			if (n > 0 && n < cap) {
				uint8_t tmp[64];
				size_t  from = rng() % n;
				size_t  cnt  = 1 + rng() % (n - from);
				if (cnt > sizeof(tmp))
					cnt = sizeof(tmp);
				if (cnt > cap - n)
					cnt = cap - n;
				memcpy(tmp, buf + from, cnt);
				size_t to = rng() % (n + 1);
				memmove(buf + to + cnt, buf + to, n - to);
				memcpy(buf + to, tmp, cnt);
				*len = n + cnt;
			}
			break;
		case 5: /* delete a chunk */
			if (n > 1) {
				size_t at  = rng() % n;
				size_t cnt = 1 + rng() % (n - at);
				memmove(
				    buf + at, buf + at + cnt, n - at - cnt);
				*len = n - cnt;
			}
			break;
		default: /* random byte */
			if (n > 0)
				buf[rng() % n] = (uint8_t) rng();
			break;
		}
	}
}

/* MCF_PROTO_FUZZ_ITERATIONS and MCF_PROTO_FUZZ_SEED change the run
 * (default 100000 and a fixed seed, so a failure reproduces). */
static int
fuzz_iterations(void)
{
	const char *s = getenv("MCF_PROTO_FUZZ_ITERATIONS");
	return s != NULL ? atoi(s) : 100000;
}

static void
test_proto_fuzz_frames(void **state)
{
	uint8_t            *pl[16];
	size_t              plen[16];
	int                 ptype[16];
	enum mcf_proto_peer pfrom[16];
	int                 n;
	mcf_proto_keyset    ks;
	uint8_t            *frames[16];
	size_t              flen[16];
	uint8_t             buf[4096];
	int                 accepted = 0, rejected[MCF_PROTO_REJECT_COUNT];
	const int           iters    = fuzz_iterations();

	memset(rejected, 0, sizeof(rejected));
	const char *seed = getenv("MCF_PROTO_FUZZ_SEED");
	rng_state        = seed != NULL ? strtoull(seed, NULL, 0) : 0;
	if (rng_state == 0)
		rng_state = 0x6d63666c65657431ULL;
	keyset(&ks, KEY_A, KEY_B);
	sample_payloads(pl, plen, ptype, pfrom, &n);
	for (int i = 0; i < n; i++)
		frames[i] = seal_raw(&ks, 1, ptype[i], 1 + (uint64_t) i, 1,
		    pl[i], plen[i], &flen[i]);

	/* 1: mutated frames through the whole frame check and decoder. */
	for (int it = 0; it < iters; it++) {
		int    k   = (int) (rng() % (uint64_t) n);
		size_t len = flen[k];
		memcpy(buf, frames[k], len);
		mutate(buf, &len, sizeof(buf), it % 2 == 0);
		mcf_proto_frame  fr;
		mcf_proto_reject rej;
		int              rv = mcf_proto_frame_open(
		                 buf, len, &ks, NULL, 2048, &fr, &rej);
		if (rv == MCF_OK) {
			mcf_proto_msg *m = NULL;
			rv = mcf_proto_msg_decode(fr.hdr.type, fr.hdr.minor,
			    fr.payload, fr.payload_len, pfrom[k], &m, &rej);
			mcf_proto_msg_destroy(m);
		}
		if (rv == MCF_OK) {
			/* Only a mutation that changed nothing passes. */
			assert_int_equal(len, flen[k]);
			assert_memory_equal(buf, frames[k], len);
			accepted++;
		} else {
			rejected[rej.reason]++;
		}
	}
	/* Every mutated frame fails a check before the payload: its MAC,
	 * or a header check that comes first (a changed length).  The
	 * in-place half of the mutations reach the MAC check. */
	print_message("fuzz frames: too_big %d malformed %d bad_auth %d "
	              "other %d accepted %d\n",
	    rejected[MCF_PROTO_REJECT_TOO_BIG],
	    rejected[MCF_PROTO_REJECT_MALFORMED],
	    rejected[MCF_PROTO_REJECT_BAD_AUTH],
	    iters - accepted - rejected[MCF_PROTO_REJECT_TOO_BIG]
	        - rejected[MCF_PROTO_REJECT_MALFORMED]
	        - rejected[MCF_PROTO_REJECT_BAD_AUTH],
	    accepted);
	assert_true(rejected[MCF_PROTO_REJECT_BAD_AUTH] > iters / 3);

	/* 2: mutated payloads, re-signed so they pass the MAC and reach the
	 * decoder, under both sender roles. */
	int dec_ok = 0, dec_bad = 0;
	for (int it = 0; it < iters; it++) {
		int    k   = (int) (rng() % (uint64_t) n);
		size_t len = plen[k];
		memcpy(buf, pl[k], len);
		mutate(buf, &len, sizeof(buf), false);
		enum mcf_proto_peer from = (rng() & 1) ? pfrom[k]
		    : pfrom[k] == MCF_PROTO_PEER_WORKER
		    ? MCF_PROTO_PEER_COORDINATOR
		    : MCF_PROTO_PEER_WORKER;
		int type = (rng() % 16 == 0) ? (int) (rng() % 256) : ptype[k];
		mcf_proto_msg   *m = NULL;
		mcf_proto_reject rej;
		int              rv = mcf_proto_msg_decode(
		                 type, (int) (rng() % 3), buf, len, from, &m, &rej);
		if (rv == MCF_OK) {
			/* What decodes must re-encode (the encoder checks
			 * what the decoder checks). */
			uint8_t    *again = NULL;
			size_t      alen  = 0;
			mcf_errinfo ei;
			if (mcf_proto_msg_encode(m, from, &again, &alen, &ei)
			        != MCF_OK
			    /* the one thing decoding keeps and encoding
			     * refuses: a project state of a newer minor */
			    && strstr(ei.msg, "project state") == NULL)
				fail_msg("decoded %s does not re-encode: %s",
				    mcf_proto_msg_type_name(type), ei.msg);
			free(again);
			mcf_proto_msg_destroy(m);
			dec_ok++;
		} else {
			assert_null(m);
			assert_true(rej.reason == MCF_PROTO_REJECT_MALFORMED
			    || rej.reason == MCF_PROTO_REJECT_UNKNOWN_TYPE
			    || rej.reason == MCF_PROTO_REJECT_UNEXPECTED);
			dec_bad++;
		}
	}
	assert_true(dec_ok > 0);
	assert_true(dec_bad > 0);
	print_message("fuzz: %d iterations x 2; frames accepted %d; payloads "
	              "decoded %d, refused %d\n",
	    iters, accepted, dec_ok, dec_bad);

	for (int i = 0; i < n; i++) {
		free(pl[i]);
		free(frames[i]);
	}
	mcf_proto_keyset_clear(&ks);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_proto_roundtrip_hello),
		cmocka_unit_test(test_proto_roundtrip_version_reject),
		cmocka_unit_test(test_proto_roundtrip_welcome),
		cmocka_unit_test(test_proto_roundtrip_snapshot),
		cmocka_unit_test(test_proto_roundtrip_delta),
		cmocka_unit_test(test_proto_roundtrip_ack),
		cmocka_unit_test(test_proto_roundtrip_stopped),
		cmocka_unit_test(test_proto_roundtrip_leaving),
		cmocka_unit_test(test_proto_roundtrip_heartbeat),
		cmocka_unit_test(test_proto_roundtrip_resync),
		cmocka_unit_test(test_proto_roundtrip_not_leader),
		cmocka_unit_test(test_proto_hello_from_1_0_worker),
		cmocka_unit_test(test_proto_unknown_fields_ignored),
		cmocka_unit_test(test_proto_unknown_type),
		cmocka_unit_test(test_proto_reject_truncated_msgpack),
		cmocka_unit_test(test_proto_reject_wrong_types),
		cmocka_unit_test(test_proto_reject_missing_fields),
		cmocka_unit_test(test_proto_reject_bad_msgpack),
		cmocka_unit_test(test_proto_reject_oversize),
		cmocka_unit_test(test_proto_reject_bad_header),
		cmocka_unit_test(test_proto_reject_bad_hmac),
		cmocka_unit_test(test_proto_reject_wrong_key),
		cmocka_unit_test(test_proto_previous_key_accepted),
		cmocka_unit_test(test_proto_reject_replay),
		cmocka_unit_test(test_proto_replay_bounded),
		cmocka_unit_test(test_proto_reject_wrong_direction),
		cmocka_unit_test(test_proto_term_cmp),
		cmocka_unit_test(test_proto_reject_lower_term),
		cmocka_unit_test(test_proto_negotiate),
		cmocka_unit_test(test_proto_version_too_new),
		cmocka_unit_test(test_proto_keys_formats),
		cmocka_unit_test(test_proto_keys_file_errors),
		cmocka_unit_test(test_proto_keys_rotation),
		cmocka_unit_test(test_proto_keys_check_interval),
		cmocka_unit_test(test_proto_stats_one_count_per_rogue_frame),
		cmocka_unit_test(test_proto_stats_log_rate_limited),
		cmocka_unit_test(test_proto_fuzz_frames),
	};
	/* Rejections are logged at warn level; keep the test output to
	 * errors, except where a test captures the log itself. */
	mcf_log_init("proto_test", MCF_LOG_ERROR);
	return cmocka_run_group_tests_name("proto", tests, NULL, NULL);
}

/*
 * ks_protobuf_test.c — decoding kubectl's protobuf request bodies, and
 * refusing every malformed or truncated one without crashing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "alloc.h"
#include "json.h"
#include "protobuf.h"

typedef struct buf {
	unsigned char d[4096];
	size_t        n;
} buf;

static void
put_varint(buf *b, uint64_t v)
{
	while (v >= 0x80) {
		b->d[b->n++] = (unsigned char) (v | 0x80);
		v >>= 7;
	}
	b->d[b->n++] = (unsigned char) v;
}

static void
put_bytes(buf *b, uint32_t field, const void *data, size_t len)
{
	put_varint(b, (uint64_t) field << 3 | 2);
	put_varint(b, len);
	memcpy(b->d + b->n, data, len);
	b->n += len;
}

static void
put_str(buf *b, uint32_t field, const char *s)
{
	put_bytes(b, field, s, strlen(s));
}

static void
put_msg(buf *b, uint32_t field, const buf *m)
{
	put_bytes(b, field, m->d, m->n);
}

static void
put_entry(buf *b, uint32_t field, const char *k, const char *v)
{
	buf e = { .n = 0 };
	put_str(&e, 1, k);
	put_str(&e, 2, v);
	put_msg(b, field, &e);
}

/* Envelope as kubectl writes it: "k8s\0", TypeMeta, raw, then empty
 * contentEncoding/contentType. */
static void
envelope(buf *out, const char *api, const char *kind, const buf *raw)
{
	memcpy(out->d, "k8s\0", 4);
	out->n  = 4;
	buf tm  = { .n = 0 };
	put_str(&tm, 1, api);
	put_str(&tm, 2, kind);
	put_msg(out, 1, &tm);
	put_msg(out, 2, raw);
	put_str(out, 3, "");
	put_str(out, 4, "");
}

static void
test_protobuf_configmap(void **state)
{
	(void) state;
	buf meta = { .n = 0 }, obj = { .n = 0 }, env = { .n = 0 };
	put_str(&meta, 1, "cm1");
	put_str(&meta, 2, ""); /* gogo's empty generateName: unset */
	put_varint(&meta, 7 << 3);
	put_varint(&meta, 0); /* generation 0: unset */
	put_entry(&meta, 11, "app", "demo");
	put_msg(&obj, 1, &meta);
	put_entry(&obj, 2, "a", "1");
	put_entry(&obj, 2, "b", "2");
	put_entry(&obj, 3, "bin", "\x01\x02");
	envelope(&env, "v1", "ConfigMap", &obj);
	json_t *out = NULL;
	char    err[128];
	assert_int_equal(ks_pb_decode(env.d, env.n, &out, err, sizeof(err)),
	    KS_PB_OK);
	assert_string_equal(mcf_json_path_str(out, "kind"), "ConfigMap");
	assert_string_equal(mcf_json_path_str(out, "metadata.name"), "cm1");
	assert_null(mcf_json_path(out, "metadata.generateName"));
	assert_null(mcf_json_path(out, "metadata.generation"));
	assert_string_equal(mcf_json_path_str(out, "metadata.labels.app"),
	    "demo");
	assert_string_equal(mcf_json_path_str(out, "data.a"), "1");
	assert_string_equal(mcf_json_path_str(out, "data.b"), "2");
	assert_string_equal(mcf_json_path_str(out, "binaryData.bin"), "AQI=");
	json_decref(out);
}

static void
test_protobuf_secret_and_namespace(void **state)
{
	(void) state;
	buf meta = { .n = 0 }, obj = { .n = 0 }, env = { .n = 0 };
	put_str(&meta, 1, "s1");
	put_msg(&obj, 1, &meta);
	put_entry(&obj, 2, "pw", "x");
	put_str(&obj, 3, "");
	envelope(&env, "v1", "Secret", &obj);
	json_t *out = NULL;
	char    err[128];
	assert_int_equal(ks_pb_decode(env.d, env.n, &out, err, sizeof(err)),
	    KS_PB_OK);
	assert_string_equal(mcf_json_path_str(out, "data.pw"), "eA==");
	assert_null(mcf_json_path(out, "type")); /* empty: defaulted later */
	json_decref(out);

	buf nmeta = { .n = 0 }, nobj = { .n = 0 }, spec = { .n = 0 };
	env.n     = 0;
	put_str(&nmeta, 1, "ns1");
	put_msg(&nobj, 1, &nmeta);
	put_str(&spec, 1, "kubernetes");
	put_msg(&nobj, 2, &spec);
	envelope(&env, "v1", "Namespace", &nobj);
	assert_int_equal(ks_pb_decode(env.d, env.n, &out, err, sizeof(err)),
	    KS_PB_OK);
	assert_string_equal(mcf_json_path_str(out, "metadata.name"), "ns1");
	assert_int_equal(json_array_size(mcf_json_path(out, "spec.finalizers")),
	    1);
	json_decref(out);
}

static void
test_protobuf_rejects_other_kinds(void **state)
{
	(void) state;
	buf obj = { .n = 0 }, env = { .n = 0 };
	envelope(&env, "v1", "Pod", &obj);
	json_t *out = NULL;
	char    err[128];
	assert_int_equal(ks_pb_decode(env.d, env.n, &out, err, sizeof(err)),
	    KS_PB_UNSUPPORTED);
	assert_null(out);
	assert_non_null(strstr(err, "Pod"));
}

static void
test_protobuf_rejects_malformed(void **state)
{
	(void) state;
	json_t *out = NULL;
	char    err[128];
	/* No magic. */
	assert_int_equal(ks_pb_decode((const unsigned char *) "{}", 2, &out,
			     err, sizeof(err)),
	    KS_PB_MALFORMED);
	/* Every truncation of a valid body fails cleanly or decodes. */
	buf meta = { .n = 0 }, obj = { .n = 0 }, env = { .n = 0 };
	put_str(&meta, 1, "cm1");
	put_entry(&meta, 12, "note", "hello");
	put_msg(&obj, 1, &meta);
	put_entry(&obj, 2, "k", "v");
	envelope(&env, "v1", "ConfigMap", &obj);
	for (size_t n = 0; n < env.n; n++) {
		out    = NULL;
		int rc = ks_pb_decode(env.d, n, &out, err, sizeof(err));
		assert_true(rc == KS_PB_MALFORMED || rc == KS_PB_OK ||
		    rc == KS_PB_UNSUPPORTED);
		json_decref(out);
	}
	/* A length that runs past the end, and a bad wire type. */
	unsigned char bad1[] = { 'k', '8', 's', 0, 0x12, 0x7f, 0x01 };
	assert_int_equal(ks_pb_decode(bad1, sizeof(bad1), &out, err,
			     sizeof(err)),
	    KS_PB_MALFORMED);
	unsigned char bad2[] = { 'k', '8', 's', 0, 0x0b, 0x00 };
	assert_int_equal(ks_pb_decode(bad2, sizeof(bad2), &out, err,
			     sizeof(err)),
	    KS_PB_MALFORMED);
	/* A map key with an embedded NUL is refused. */
	buf m2 = { .n = 0 }, o2 = { .n = 0 }, e2 = { .n = 0 }, ent = { .n = 0 };
	put_str(&m2, 1, "x");
	put_msg(&o2, 1, &m2);
	put_bytes(&ent, 1, "a\0b", 3);
	put_str(&ent, 2, "v");
	put_msg(&o2, 2, &ent);
	envelope(&e2, "v1", "ConfigMap", &o2);
	assert_int_equal(ks_pb_decode(e2.d, e2.n, &out, err, sizeof(err)),
	    KS_PB_MALFORMED);
}

int
main(void)
{
	mcf_alloc_init_libs();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_protobuf_configmap),
		cmocka_unit_test(test_protobuf_secret_and_namespace),
		cmocka_unit_test(test_protobuf_rejects_other_kinds),
		cmocka_unit_test(test_protobuf_rejects_malformed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
